//! Replays every file of the fuzz corpus (`fuzz/corpus/<target>/`) through
//! the fuzz targets' own entry points (`fuzz/src/lib.rs`, included here), on
//! stable Rust and without libFuzzer: each input must pass the target's
//! invariants (no panic, sane results). `scripts/fuzz.sh` grows the corpus;
//! a crash input found there is added to the corpus with its fix.

#[allow(unreachable_pub, dead_code)]
#[path = "../../fuzz/src/lib.rs"]
mod entry;

use std::{fs, path::Path};

#[test]
fn every_corpus_file_passes_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let mut replayed = 0;
    for (name, target) in entry::TARGETS {
        let dir = root.join(name);
        let mut files: Vec<_> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
            .map(|entry| entry.expect("corpus entry").path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "corpus of {name} is empty");
        for file in files {
            let data = fs::read(&file).expect("corpus file");
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(outcome.is_ok(), "{name}: {} fails", file.display());
            replayed += 1;
        }
    }
    println!("replayed {replayed} corpus files");
}
