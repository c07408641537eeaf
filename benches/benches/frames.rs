//! Criterion: raw AES-256-GCM of each backend against isec's framed encryption, over 64 MiB
//! of plaintext, at 4 KiB, 64 KiB and 1 MiB frames.
//!
//! Benchmark ids: `<op>/<backend>/<variant>/<frame>`, with op `encrypt` or `decrypt` and
//! variant
//! * `raw`: in-place backend call per frame-sized chunk, empty AAD;
//! * `raw-out-of-place` (aws-lc only): `seal_out_of_place_scatter` / `open_separate_gather`
//!   from one buffer into another;
//! * `framed`: the copying streaming API, `Encryptor::update` + `finish` or
//!   `Decryptor::new` + `update` + `finish`, into a reused buffer;
//! * `framed-in-place`: the in-place frame API, `seal_frame_in_place` + `finish_in_place`
//!   or `open_frame_in_place` + `finish`, on a reused buffer already laid out as frames.
//!
//! In-place opens destroy their input: the ciphertext is restored before each iteration,
//! outside the timing. Throughput is plaintext bytes.
//!
//! `cargo bench -p isec-benches --bench frames` (add `-- --quick` for a smoke run).

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use criterion::{
    Bencher, BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
    measurement::WallTime,
};
use isec_benches::{FRAME_SIZES, Framed, OutOfPlace, Raw, RawAead, RawAwsLc, RawRustCrypto, TOTAL, frame_label};
use isec_core::{AwsLc, FrameCipher, RustCrypto};

fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    // One iteration is 64 MiB (10-60 ms): few, flat samples keep the whole run to minutes.
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Bytes(TOTAL as u64));
}

/// Times `run` alone, calling `setup` before each iteration outside the timed region.
fn with_setup<T>(b: &mut Bencher<'_>, fixture: &mut T, setup: fn(&mut T), run: fn(&mut T)) {
    b.iter_custom(|iters| {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            setup(fixture);
            let t = Instant::now();
            run(fixture);
            total += t.elapsed();
        }
        total
    });
}

fn backend<A: RawAead, C: FrameCipher>(c: &mut Criterion, oop: Option<OutOfPlace<A>>) {
    for fs in FRAME_SIZES {
        let label = frame_label(fs);
        let mut raw = Raw::<A>::new(fs);
        let mut framed = Framed::<C>::new(fs);

        let mut g = c.benchmark_group(format!("encrypt/{}", C::NAME));
        configure(&mut g);
        g.bench_function(format!("raw/{label}"), |b| b.iter(|| raw.seal_all()));
        if let Some(f) = oop {
            g.bench_function(format!("raw-out-of-place/{label}"), |b| b.iter(|| f(&mut raw, true)));
        }
        g.bench_function(format!("framed/{label}"), |b| b.iter(|| framed.encrypt()));
        // Re-seals the slots' content each iteration: AES-GCM's cost does not depend on it.
        g.bench_function(format!("framed-in-place/{label}"), |b| b.iter(|| framed.encrypt_in_place()));
        g.finish();

        let mut g = c.benchmark_group(format!("decrypt/{}", C::NAME));
        configure(&mut g);
        g.bench_function(format!("raw/{label}"), |b| with_setup(b, &mut raw, Raw::prepare_open, Raw::open_all));
        if let Some(f) = oop {
            g.bench_function(format!("raw-out-of-place/{label}"), |b| b.iter(|| f(&mut raw, false)));
        }
        g.bench_function(format!("framed/{label}"), |b| b.iter(|| framed.decrypt()));
        g.bench_function(format!("framed-in-place/{label}"), |b| {
            with_setup(b, &mut framed, Framed::prepare_decrypt_in_place, |f| {
                f.decrypt_in_place();
            });
        });
        g.finish();
    }
}

fn aws_lc(c: &mut Criterion) {
    backend::<RawAwsLc, AwsLc>(c, Some(Raw::out_of_place));
}

fn rust_crypto(c: &mut Criterion) {
    backend::<RawRustCrypto, RustCrypto>(c, None);
}

criterion_group!(benches, aws_lc, rust_crypto);
criterion_main!(benches);
