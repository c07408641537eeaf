//! Writes the corpus: `cargo run -p isec-vectors [-- OUT_DIR]` (default `tests/vectors`).

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../vectors"), PathBuf::from);
    std::fs::create_dir_all(&dir)?;
    for (name, text) in isec_vectors::generate()? {
        std::fs::write(dir.join(&name), text)?;
        println!("wrote {}", dir.join(name).display());
    }
    Ok(())
}
