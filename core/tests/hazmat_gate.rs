//! Nonce choice is `hazmat`: a crate that depends on isec-core without that feature cannot
//! name a segment's nonce prefix and positions itself (`ObjectKey::sealer`) nor take a raw
//! segment key (`ObjectKey::segment_key`). Checked by compiling such a crate.

use std::process::Command;

#[test]
fn sealer_and_segment_key_need_hazmat() {
    let dir = std::env::temp_dir().join(format!("isec-hazmat-gate-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("src")).unwrap();
    let core = env!("CARGO_MANIFEST_DIR");
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"gate\"\nversion = \"0.0.0\"\nedition = \"2024\"\n[workspace]\n\
             [dependencies]\nisec-core = {{ path = {core:?} }}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("src/main.rs"),
        "fn main() {\n    let kek = isec_core::Kek::from_bytes([1; 32]);\n    \
         let (_, key) = isec_core::Envelope::create(&kek, \"k\", isec_core::Params::default()).unwrap();\n    \
         let _ = key.sealer::<isec_core::RustCrypto>(0, [0; 7]);\n    let _ = key.segment_key(0);\n}\n",
    )
    .unwrap();
    // Share one target directory across runs: only the tiny crate is checked each time.
    let target = std::path::Path::new(core).join("../target/hazmat-gate");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", target)
        .args(["check", "--quiet", "--offline", "--message-format", "short"])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "compiled without hazmat");
    assert!(err.contains("no method named `sealer`"), "{err}");
    assert!(err.contains("no method named `segment_key`"), "{err}");
}
