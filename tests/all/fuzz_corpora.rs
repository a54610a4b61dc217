//! Every input the fuzz targets keep (tests/fuzz/corpus: seeds and what
//! fuzzing found worth keeping; tests/fuzz/regressions: inputs that once
//! crashed) runs through the same entry points, so a parser change that
//! brings a crash back fails here, without a fuzzer (docs/FUZZING.md).

use std::path::PathBuf;

fn inputs(kind: &str, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(kind)
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .map(|e| e.expect("a corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).expect("read a corpus file");
            (p, bytes)
        })
        .collect()
}

#[test]
fn every_kept_fuzz_input_runs_without_a_panic() {
    for (target, entry) in sandbot::fuzz::TARGETS {
        let corpus = inputs("corpus", target);
        assert!(
            !corpus.is_empty(),
            "tests/fuzz/corpus/{target} holds no inputs"
        );
        for (path, bytes) in corpus.iter().chain(&inputs("regressions", target)) {
            let outcome = std::panic::catch_unwind(|| entry(bytes));
            assert!(outcome.is_ok(), "{target}: {} panicked", path.display());
        }
    }
}

#[test]
fn fuzz_targets_match_the_entry_points() {
    // Each entry point has its cargo-fuzz binary, and each binary an entry.
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/fuzz_targets");
    let mut binaries: Vec<String> = std::fs::read_dir(&dir)
        .expect("tests/fuzz/fuzz_targets")
        .map(|e| {
            let name = e.expect("an entry").file_name();
            name.to_string_lossy().trim_end_matches(".rs").to_string()
        })
        .collect();
    binaries.sort();
    let mut entries: Vec<String> = sandbot::fuzz::TARGETS
        .iter()
        .map(|(name, _)| name.to_string())
        .collect();
    entries.sort();
    assert_eq!(binaries, entries);
}
