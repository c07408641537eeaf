//! Envelopes per second, native: creating and opening under an AES-KWP KEK against an
//! HPKE-X25519 recipient (SPEC.md §3.5), interleaved in rounds on the same machine, with the
//! envelope text length of each. The wasm numbers come from `benches/wasm/recipients.mjs`.
//!
//! `cargo bench -p isec-benches --bench recipients`

use std::hint::black_box;
use std::time::{Duration, Instant};

use isec_core::recipient::PrivateKey;
use isec_core::{Kek, KeyState, Keyring, Params};

/// Operations per second of `f`, run for about `budget`.
fn rate(budget: Duration, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        for _ in 0..32 {
            f();
        }
        n += 32;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let mut kwp = Keyring::new();
    kwp.add_kek("kek-a", Kek::from_bytes([7; 32]), KeyState::Active).unwrap();
    let mut hpke = Keyring::new();
    hpke.add_private_key("pub-a", PrivateKey::derive(&[9; 32]).unwrap(), KeyState::Active).unwrap();
    let rounds: usize = std::env::var("ISEC_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let budget = Duration::from_millis(300);
    let mut best = [[0f64; 2]; 2];
    for _ in 0..rounds {
        for (i, ring) in [&kwp, &hpke].into_iter().enumerate() {
            let (env, _) = ring.create_envelope(Params::default()).unwrap();
            best[i][0] = best[i][0].max(rate(budget, || {
                black_box(ring.create_envelope(Params::default()).unwrap());
            }));
            best[i][1] = best[i][1].max(rate(budget, || {
                black_box(ring.open(&env).unwrap());
            }));
        }
    }
    println!("| wrap | create / s | open / s | envelope (bytes) | text (chars) |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (i, (name, ring)) in [("aes-kwp", &kwp), ("hpke-x25519", &hpke)].into_iter().enumerate() {
        let (env, _) = ring.create_envelope(Params::default()).unwrap();
        println!(
            "| {name} | {:.0} | {:.0} | {} | {} |",
            best[i][0],
            best[i][1],
            env.encoded_len(),
            env.to_text().len()
        );
    }
    println!("\nhpke-x25519 / aes-kwp: create {:.3}x, open {:.3}x", best[1][0] / best[0][0], best[1][1] / best[0][1]);
}
