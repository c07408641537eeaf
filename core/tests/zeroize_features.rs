//! Key material inside dependencies is wiped only if their `zeroize` features are on (AES
//! round keys in `aes`, the GHASH key in `ghash`/`polyval`, the CTR state in `ctr`, HMAC and
//! SHA-256 states in `hmac`/`sha2`). Those features are easy to lose in a version bump, so
//! this reads the resolved feature graph of core's normal dependencies from `cargo tree`, for
//! the default build and for the no_std build the browser package uses.

use std::process::Command;

fn features(args: &[&str]) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["tree", "-q", "-p", "isec-core", "-e", "features,normal", "--prefix", "none", "--offline"])
        .args(args)
        .output()
        .expect("cargo tree runs");
    assert!(out.status.success(), "cargo tree: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn key_holding_dependencies_wipe_their_keys() {
    for build in [&[][..], &["--no-default-features", "--features", "alloc"][..]] {
        let tree = features(build);
        for dep in ["aes", "ghash", "polyval", "ctr", "hmac", "sha2", "digest"] {
            let line = format!("{dep} feature \"zeroize\"");
            assert!(tree.lines().any(|l| l.starts_with(&line)), "{dep} without zeroize in build {build:?}");
        }
    }
}
