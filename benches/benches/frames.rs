//! Criterion: raw AES-256-GCM of each backend against isec's framed streaming, over 64 MiB
//! of plaintext, at 4 KiB, 64 KiB and 1 MiB frames.
//!
//! Benchmark ids: `<op>/<backend>/<variant>/<frame>`, with op `encrypt` or `decrypt` and
//! variant `raw` (in-place backend call per frame-sized chunk, empty AAD) or `framed`
//! (`Encryptor::update` + `finish`, or `Decryptor::new` + `update` + `finish`, into a
//! reused buffer). Throughput is plaintext bytes.
//!
//! `cargo bench -p isec-benches --bench frames` (add `-- --quick` for a smoke run).

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use criterion::{
    BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_group, criterion_main, measurement::WallTime,
};
use isec_benches::{FRAME_SIZES, Framed, Raw, RawAead, RawAwsLc, RawRustCrypto, TOTAL, frame_label};
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

fn backend<A: RawAead, C: FrameCipher>(c: &mut Criterion) {
    for fs in FRAME_SIZES {
        let label = frame_label(fs);
        let mut raw = Raw::<A>::new(fs);
        let mut framed = Framed::<C>::new(fs);

        let mut g = c.benchmark_group(format!("encrypt/{}", C::NAME));
        configure(&mut g);
        g.bench_function(format!("raw/{label}"), |b| b.iter(|| raw.seal_all()));
        g.bench_function(format!("framed/{label}"), |b| b.iter(|| framed.encrypt()));
        g.finish();

        let mut g = c.benchmark_group(format!("decrypt/{}", C::NAME));
        configure(&mut g);
        // In-place open destroys its input: restore the ciphertext outside the timed region.
        g.bench_function(format!("raw/{label}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    raw.prepare_open();
                    let t = Instant::now();
                    raw.open_all();
                    total += t.elapsed();
                }
                total
            });
        });
        g.bench_function(format!("framed/{label}"), |b| b.iter(|| framed.decrypt()));
        g.finish();
    }
}

fn aws_lc(c: &mut Criterion) {
    backend::<RawAwsLc, AwsLc>(c);
}

fn rust_crypto(c: &mut Criterion) {
    backend::<RawRustCrypto, RustCrypto>(c);
}

criterion_group!(benches, aws_lc, rust_crypto);
criterion_main!(benches);
