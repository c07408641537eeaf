//! The checked-in corpus must be exactly what the generator writes.

#[test]
fn checked_in_corpus_matches_generator() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors");
    let files = isec_vectors::generate().expect("generator runs");
    for (name, text) in &files {
        let on_disk = std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("tests/vectors/{name}: {e}"));
        assert!(on_disk == *text, "tests/vectors/{name} differs from the generator; run `cargo run -p isec-vectors`");
    }
    let listed: Vec<_> = std::fs::read_dir(&dir)
        .expect("vectors dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    for n in listed {
        assert!(files.contains_key(&n), "tests/vectors/{n} is not produced by the generator");
    }
}
