//! The framed/raw table: times each variant itself with `Instant` (criterion does not
//! compute ratios) and prints MB/s and framed/raw ratios as a Markdown table.
//!
//! Two comparisons, each API against its fair peer:
//! * the in-place frame API (`seal_frame_in_place` / `open_frame_in_place` on a buffer
//!   already laid out as frames) against the raw in-place call;
//! * the copying streaming API (`update`) against the raw out-of-place call (aws-lc only;
//!   RustCrypto `aes-gcm` 0.10 has none), and for reference against raw in-place.
//!
//! Each round runs every variant of one (backend, frame size) once, interleaved, so drift on
//! a shared machine hits raw and framed alike; the table reports the median over rounds
//! (and the best-of ratios). `ISEC_BENCH_ROUNDS` overrides the number of rounds (default 15).
//!
//! `cargo bench -p isec-benches --bench ratios`

use std::time::{Duration, Instant};

use isec_benches::{FRAME_SIZES, Framed, OutOfPlace, Raw, RawAead, RawAwsLc, RawRustCrypto, TOTAL, frame_label};
use isec_core::{AwsLc, FrameCipher, RustCrypto};

/// Durations of one variant over all rounds.
#[derive(Default)]
struct Samples(Vec<Duration>);

impl Samples {
    /// Runs `f`, recording its duration if `keep` (the warm-up round is not kept).
    fn time(&mut self, keep: bool, f: impl FnOnce()) {
        let t = Instant::now();
        f();
        if keep {
            self.0.push(t.elapsed());
        }
    }

    fn median(&self) -> f64 {
        let mut v = self.0.clone();
        v.sort();
        mbps(v[v.len() / 2])
    }

    fn best(&self) -> f64 {
        mbps(self.0.iter().copied().min().unwrap_or_default())
    }
}

fn mbps(d: Duration) -> f64 {
    TOTAL as f64 / d.as_secs_f64() / 1e6
}

/// One (backend, frame size, op) measurement.
struct Row {
    backend: &'static str,
    frame: String,
    op: &'static str,
    /// Raw in-place call per frame-sized chunk.
    raw: Samples,
    /// aws-lc only: raw out-of-place call (`seal_out_of_place_scatter` / `open_separate_gather`).
    oop: Option<Samples>,
    /// In-place frame API.
    in_place: Samples,
    /// Copying streaming API.
    stream: Samples,
}

fn run_backend<A: RawAead, C: FrameCipher>(rounds: usize, rows: &mut Vec<Row>, oop: Option<OutOfPlace<A>>) {
    for fs in FRAME_SIZES {
        let mut raw = Raw::<A>::new(fs);
        let mut framed = Framed::<C>::new(fs);
        let new_row = |op| Row {
            backend: C::NAME,
            frame: frame_label(fs),
            op,
            raw: Samples::default(),
            oop: oop.map(|_| Samples::default()),
            in_place: Samples::default(),
            stream: Samples::default(),
        };
        let (mut enc, mut dec) = (new_row("encrypt"), new_row("decrypt"));
        // One untimed warm-up round, then the timed rounds.
        for round in 0..=rounds {
            let keep = round > 0;
            enc.raw.time(keep, || raw.seal_all());
            // Re-seals the slots' content (ciphertext after the first round): same cost.
            enc.in_place.time(keep, || framed.encrypt_in_place());
            if let (Some(f), Some(s)) = (oop, enc.oop.as_mut()) {
                s.time(keep, || f(&mut raw, true));
            }
            enc.stream.time(keep, || {
                framed.encrypt();
            });

            // In-place opens destroy their input: restore it untimed, just before each.
            raw.prepare_open();
            dec.raw.time(keep, || raw.open_all());
            framed.prepare_decrypt_in_place();
            dec.in_place.time(keep, || {
                framed.decrypt_in_place();
            });
            if let (Some(f), Some(s)) = (oop, dec.oop.as_mut()) {
                s.time(keep, || f(&mut raw, false));
            }
            dec.stream.time(keep, || {
                framed.decrypt();
            });
        }
        eprintln!("  {} {}: done", C::NAME, frame_label(fs));
        rows.push(enc);
        rows.push(dec);
    }
}

fn main() {
    let rounds = std::env::var("ISEC_BENCH_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(15usize).max(1);
    eprintln!("framed/raw: {} MiB per run, {rounds} rounds (+1 warm-up), median reported", TOTAL >> 20);
    let start = Instant::now();
    let mut rows = Vec::new();
    run_backend::<RawAwsLc, AwsLc>(rounds, &mut rows, Some(Raw::out_of_place));
    run_backend::<RawRustCrypto, RustCrypto>(rounds, &mut rows, None);

    println!();
    println!(
        "| backend | frame | op | raw in-place MB/s | framed in-place MB/s | in-place / raw in-place | (best-of) | raw out-of-place MB/s | framed streaming MB/s | streaming / raw out-of-place | (best-of) | streaming / raw in-place |"
    );
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        let (raw, in_place, stream) = (r.raw.median(), r.in_place.median(), r.stream.median());
        let (oop, oop_ratio, oop_best) = match &r.oop {
            Some(s) => {
                let m = s.median();
                (format!("{m:.0}"), format!("{:.2}", stream / m), format!("{:.2}", r.stream.best() / s.best()))
            }
            None => ("-".into(), "-".into(), "-".into()),
        };
        println!(
            "| {} | {} | {} | {raw:.0} | {in_place:.0} | {:.2} | {:.2} | {oop} | {stream:.0} | {oop_ratio} | {oop_best} | {:.2} |",
            r.backend,
            r.frame,
            r.op,
            in_place / raw,
            r.in_place.best() / r.raw.best(),
            stream / raw,
        );
    }
    println!();
    println!(
        "MB/s = 10^6 plaintext bytes per second over a {} MiB buffer, median of {rounds} rounds; (best-of) = the same ratio of the fastest rounds. raw in-place / out-of-place = the backend call per frame-sized chunk (empty AAD); framed in-place = Encryptor::seal_frame_in_place + finish_in_place / Decryptor::open_frame_in_place on a buffer laid out as frames; framed streaming = Encryptor/Decryptor update + finish into a reused buffer. Total time {:.0} s.",
        TOTAL >> 20,
        start.elapsed().as_secs_f64()
    );
}
