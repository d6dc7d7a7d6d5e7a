//! Parsers of untrusted input through the binary (issue 14, classes 2 and
//! 7): an announced size never makes pgbin allocate it, an oversized file is
//! refused before it is parsed, and no input makes pgbin panic or abort.

use std::path::Path;
use std::process::Output;

use proptest::prelude::*;

use crate::util::{one_line_error, pgbin, pgbin_in, scratch_repo, snapshot};

/// A NAR string: length, bytes, zero padding to 8.
fn string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
    out.resize(out.len().div_ceil(8) * 8, 0);
}

/// The 139-byte NAR of issue 14: a directory whose first entry announces a
/// name of 2^64 - 1 bytes.
fn huge_name_nar() -> Vec<u8> {
    let mut nar = Vec::new();
    for token in [&b"nix-archive-1"[..], b"(", b"type", b"directory", b"entry", b"(", b"name"] {
        string(&mut nar, token);
    }
    nar.extend_from_slice(&u64::MAX.to_le_bytes());
    nar.extend_from_slice(b"abc");
    nar
}

/// A valid NAR of a small directory.
fn small_nar() -> Vec<u8> {
    let mut nar = Vec::new();
    string(&mut nar, b"nix-archive-1");
    for token in [&b"("[..], b"type", b"directory"] {
        string(&mut nar, token);
    }
    for (name, contents) in [(&b"a"[..], &b"hello"[..]), (b"b", b"")] {
        for token in [&b"entry"[..], b"(", b"name", name, b"node", b"(", b"type", b"regular", b"contents", contents] {
            string(&mut nar, token);
        }
        string(&mut nar, b")");
        string(&mut nar, b")");
    }
    string(&mut nar, b")");
    nar
}

/// `pgbin hash FILE` with its own temporary directory, which it returns
/// with the output so that a test can check nothing was left there.
fn hash(bytes: &[u8]) -> (Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.nar");
    std::fs::write(&input, bytes).unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let output = pgbin().arg("hash").arg(&input).env("TMPDIR", &tmp).output().unwrap();
    (output, dir)
}

/// Exit 0, or exit 2 with one line; never a signal, an abort (134) or a
/// panic (101); nothing left in the temporary directory.
fn assert_handled(output: &Output, dir: &Path) {
    let code = output.status.code();
    assert!(
        code == Some(0) || code == Some(2),
        "pgbin hash ended with {:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    if code == Some(2) {
        one_line_error(output);
    }
    let left: Vec<_> = std::fs::read_dir(dir.join("tmp")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

// Needs compare::tree to unpack NARs with nix::nar::unpack: nix-nar
// allocates the announced length and aborts.
#[test]
fn hash_of_the_139_byte_nar_announcing_a_huge_name_exits_2_with_one_line() {
    let nar = huge_name_nar();
    assert_eq!(nar.len(), 139);
    let (output, dir) = hash(&nar);
    assert_handled(&output, dir.path());
    assert_eq!(output.status.code(), Some(2));
    let error = one_line_error(&output);
    assert!(error.contains("longer than the limit of 255"), "{error}");
}

#[test]
fn hash_of_a_valid_nar_is_the_sha256_of_its_bytes() {
    use sha2::Digest;
    let nar = small_nar();
    let (output, dir) = hash(&nar);
    assert_handled(&output, dir.path());
    assert!(output.status.success());
    let expected = format!("sha256-{}", base64_standard(&sha2::Sha256::digest(&nar)));
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), expected);
}

fn base64_standard(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// One change to a NAR: an 8-byte word (a length or size) set to a value
/// that breaks parsers trusting it, or a cut.
#[derive(Debug, Clone)]
enum Change {
    Word(prop::sample::Index, u64),
    Cut(prop::sample::Index),
}

fn change() -> impl Strategy<Value = Change> {
    let word = prop::sample::select(vec![0, 1, 255, 256, 4097, 1 << 31, 1 << 40, 1 << 62, u64::MAX - 7, u64::MAX]);
    prop_oneof![
        4 => (any::<prop::sample::Index>(), word).prop_map(|(i, w)| Change::Word(i, w)),
        1 => any::<prop::sample::Index>().prop_map(Change::Cut),
    ]
}

/// A run of `base` cases, few since each is a process; `PGBIN_FUZZ_SCALE`
/// multiplies them and `PGBIN_FUZZ_SEED` picks the seed (a number, or
/// `random`), as for the unit fuzz targets.
fn config(base: u32) -> ProptestConfig {
    use proptest::test_runner::RngSeed;
    let scale = std::env::var("PGBIN_FUZZ_SCALE").ok().and_then(|s| s.parse::<u32>().ok()).unwrap_or(1).max(1);
    let rng_seed = match std::env::var("PGBIN_FUZZ_SEED").ok().as_deref() {
        Some("random") => RngSeed::Random,
        Some(seed) => RngSeed::Fixed(seed.parse().unwrap_or(14)),
        None => RngSeed::Fixed(14),
    };
    ProptestConfig { cases: base * scale, failure_persistence: None, rng_seed, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config(32))]

    // Needs compare::tree to unpack NARs with nix::nar::unpack, like the
    // test above.
    #[test]
    fn fuzz_hash_of_nars_with_hostile_lengths_never_crashes(changes in prop::collection::vec(change(), 1..3)) {
        let mut nar = small_nar();
        for change in &changes {
            match change {
                Change::Word(i, w) => {
                    let at = i.index(nar.len() / 8) * 8;
                    nar[at..at + 8].copy_from_slice(&w.to_le_bytes());
                }
                Change::Cut(i) => nar.truncate(i.index(nar.len())),
            }
        }
        let (output, dir) = hash(&nar);
        assert_handled(&output, dir.path());
    }
}

/// A sparse regular file of `size` bytes that starts with `head`.
fn large_file(path: &Path, head: &[u8], size: u64) {
    std::fs::write(path, head).unwrap();
    std::fs::OpenOptions::new().write(true).open(path).unwrap().set_len(size).unwrap();
}

#[test]
fn verify_refuses_a_multi_gigabyte_evidence_file_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let dsc = dir.path().join("huge.dsc");
    large_file(&dsc, b"-----BEGIN PGP SIGNED MESSAGE-----\n", 8 << 30);
    let output = pgbin()
        .args(["verify", "18.6"])
        .arg(dir.path().join("absent.tar.bz2"))
        .arg("--evidence")
        .arg(&dsc)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let error = one_line_error(&output);
    assert!(error.contains("huge.dsc: it holds more than 1 MiB"), "{error}");
}

#[test]
fn lock_add_refuses_an_oversized_evidence_file_and_writes_nothing() {
    let scratch = scratch_repo();
    let before = snapshot(scratch.path());
    let witness = scratch.path().join("witness.txt");
    large_file(&witness, b"Publisher: a/b\nReference: x\n\n", 2 << 20);
    let output = pgbin_in(scratch.path()).args(["lock", "add", "18.6", "--evidence"]).arg(&witness).output().unwrap();
    std::fs::remove_file(&witness).unwrap();
    assert_eq!(output.status.code(), Some(2));
    let error = one_line_error(&output);
    assert!(error.contains("witness.txt: it holds more than 1 MiB"), "{error}");
    assert_eq!(snapshot(scratch.path()), before);
}

#[test]
fn an_oversized_lock_file_is_refused_before_it_is_parsed() {
    let scratch = scratch_repo();
    large_file(&scratch.path().join("data/sources.lock.json"), b"{", 4 << 30);
    let output = pgbin_in(scratch.path()).args(["resolve", "18.6"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let error = one_line_error(&output);
    assert!(error.contains("sources.lock.json: it holds more than 16 MiB"), "{error}");
}

#[test]
fn an_oversized_catalog_is_refused_before_it_is_parsed() {
    let scratch = scratch_repo();
    large_file(&scratch.path().join("data/catalog.toml"), b"[[majors]]\n", 4 << 30);
    let output = pgbin_in(scratch.path()).args(["resolve", "18.6"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let error = one_line_error(&output);
    assert!(error.contains("catalog.toml: it holds more than 1 MiB"), "{error}");
}

#[test]
fn audit_of_a_large_workflow_of_many_steps_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let workflows = dir.path().join(".github/workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    let steps = "      - uses: actions/checkout@v4\n".repeat(60_000);
    let text = format!("on: push\npermissions: {{}}\njobs:\n  a:\n    permissions: {{}}\n    steps:\n{steps}");
    std::fs::write(workflows.join("big.yml"), text).unwrap();
    let started = std::time::Instant::now();
    let output = pgbin().arg("audit").arg(dir.path()).args(["--format", "json"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "{:?}", started.elapsed());
}
