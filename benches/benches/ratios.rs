//! The framed/raw table: times each variant itself with `Instant` (criterion does not
//! compute ratios) and prints MB/s and framed/raw ratios as a Markdown table.
//!
//! Each round runs every variant of one (backend, frame size) once, interleaved, so drift on
//! a shared machine hits raw and framed alike; the table reports the median over rounds
//! (and the best-of ratio). `ISEC_BENCH_ROUNDS` overrides the number of rounds (default 15).
//!
//! `cargo bench -p isec-benches --bench ratios`

use std::time::{Duration, Instant};

use isec_benches::{FRAME_SIZES, Framed, Raw, RawAead, RawAwsLc, RawRustCrypto, TOTAL, frame_label};
use isec_core::{AwsLc, FrameCipher, RustCrypto};

/// Durations of one variant over all rounds.
#[derive(Default)]
struct Samples(Vec<Duration>);

impl Samples {
    fn time(&mut self, f: impl FnOnce()) {
        let t = Instant::now();
        f();
        self.0.push(t.elapsed());
    }

    fn median(&self) -> Duration {
        let mut v = self.0.clone();
        v.sort();
        v[v.len() / 2]
    }

    fn best(&self) -> Duration {
        self.0.iter().copied().min().unwrap_or_default()
    }
}

fn mbps(d: Duration) -> f64 {
    TOTAL as f64 / d.as_secs_f64() / 1e6
}

/// One (backend, frame size) measurement.
struct Row {
    backend: &'static str,
    frame: String,
    op: &'static str,
    raw: Samples,
    framed: Samples,
    /// aws-lc only: raw out-of-place call (`seal_out_of_place_scatter` / `open_separate_gather`).
    oop: Option<Samples>,
}

fn run_backend<A: RawAead, C: FrameCipher>(rounds: usize, rows: &mut Vec<Row>, oop: Option<fn(&mut Raw<A>, bool)>) {
    for fs in FRAME_SIZES {
        let mut raw = Raw::<A>::new(fs);
        let mut framed = Framed::<C>::new(fs);
        let new_row = |op| Row {
            backend: C::NAME,
            frame: frame_label(fs),
            op,
            raw: Samples::default(),
            framed: Samples::default(),
            oop: oop.map(|_| Samples::default()),
        };
        let (mut enc, mut dec) = (new_row("encrypt"), new_row("decrypt"));
        // One untimed warm-up round, then the timed rounds.
        for round in 0..=rounds {
            let (mut e, mut d) = (new_row("encrypt"), new_row("decrypt"));
            e.raw.time(|| raw.seal_all());
            e.framed.time(|| {
                framed.encrypt();
            });
            raw.prepare_open();
            d.raw.time(|| raw.open_all());
            d.framed.time(|| {
                framed.decrypt();
            });
            if let Some(f) = oop {
                if let Some(s) = e.oop.as_mut() {
                    s.time(|| f(&mut raw, true));
                }
                if let Some(s) = d.oop.as_mut() {
                    s.time(|| f(&mut raw, false));
                }
            }
            if round > 0 {
                for (acc, new) in [(&mut enc, e), (&mut dec, d)] {
                    acc.raw.0.extend(new.raw.0);
                    acc.framed.0.extend(new.framed.0);
                    if let (Some(a), Some(n)) = (acc.oop.as_mut(), new.oop) {
                        a.0.extend(n.0);
                    }
                }
            }
        }
        eprintln!("  {} {}: done", C::NAME, frame_label(fs));
        rows.push(enc);
        rows.push(dec);
    }
}

fn aws_lc_oop(raw: &mut Raw<RawAwsLc>, encrypt: bool) {
    if encrypt { raw.seal_all_out_of_place() } else { raw.open_all_out_of_place() }
}

fn main() {
    let rounds = std::env::var("ISEC_BENCH_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(15usize).max(1);
    eprintln!("framed/raw: {} MiB per run, {rounds} rounds (+1 warm-up), median reported", TOTAL >> 20);
    let start = Instant::now();
    let mut rows = Vec::new();
    run_backend::<RawAwsLc, AwsLc>(rounds, &mut rows, Some(aws_lc_oop));
    run_backend::<RawRustCrypto, RustCrypto>(rounds, &mut rows, None);

    println!();
    println!(
        "| backend | frame | op | raw MB/s | framed MB/s | framed/raw | framed/raw (best-of) | raw out-of-place MB/s | framed/out-of-place |"
    );
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        let (raw, framed) = (mbps(r.raw.median()), mbps(r.framed.median()));
        let best = mbps(r.framed.best()) / mbps(r.raw.best());
        let (oop, oop_ratio) = match &r.oop {
            Some(s) => {
                let m = mbps(s.median());
                (format!("{m:.0}"), format!("{:.2}", framed / m))
            }
            None => ("-".into(), "-".into()),
        };
        println!(
            "| {} | {} | {} | {raw:.0} | {framed:.0} | {:.2} | {best:.2} | {oop} | {oop_ratio} |",
            r.backend,
            r.frame,
            r.op,
            framed / raw
        );
    }
    println!();
    println!(
        "MB/s = 10^6 plaintext bytes per second over a {} MiB buffer, median of {rounds} rounds; raw = in-place backend call per frame-sized chunk (empty AAD); framed = isec Encryptor/Decryptor into a reused buffer. Total time {:.0} s.",
        TOTAL >> 20,
        start.elapsed().as_secs_f64()
    );
}
