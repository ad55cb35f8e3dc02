//! Runs every committed fuzz seed (`fuzz/corpus/<target>/*`) through the fuzz targets' oracle, so
//! plain `cargo test` (and CI, which has no nightly libFuzzer) exercises them.
//!
//! Hand-written seeds carry an extension (`.json`, `.bin`) and are real frames: each must decode
//! in at least one direction. Files libFuzzer adds (named by hash, no extension) need only pass
//! the oracle.

// The oracle lives in the fuzz crate, which cannot be a dev-dependency (it links libFuzzer);
// including its source keeps one copy of the checks.
#[path = "../../fuzz/src/lib.rs"]
mod oracle;

use std::path::{Path, PathBuf};

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("cannot list {}: {err}", dir.display()))
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(
        files.len() >= 5,
        "{} should hold a handful of seeds",
        dir.display()
    );
    files
}

fn run(target: &str, check: fn(&[u8]) -> usize) {
    for path in corpus(target) {
        let data = std::fs::read(&path)
            .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
        let decoded = check(&data);
        if path.extension().is_some() {
            assert!(
                decoded > 0,
                "seed {} is meant to be a real frame but decodes in neither direction",
                path.display()
            );
        }
    }
}

#[test]
fn decode_v2_text_seeds() {
    run("decode_v2_text", oracle::decode_v2_text);
}

#[test]
fn decode_v2_binary_seeds() {
    run("decode_v2_binary", oracle::decode_v2_binary);
}

#[test]
fn decode_v1_text_seeds() {
    run("decode_v1_text", oracle::decode_v1_text);
}
