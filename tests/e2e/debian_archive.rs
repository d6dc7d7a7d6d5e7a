//! The Debian archive chain end to end: `pgbin catalog refresh` reads a real
//! suite's signed index from the configured mirror and proposes a proof that
//! `pgbin lock add` verifies; every altered proof, index or InRelease is
//! refused with one line and nothing written.

use std::path::{Path, PathBuf};

use crate::util::{LocalMirror, json, one_line_error, pgbin_in, repo, scratch_without, snapshot};

const PROOF_17_12: &str = "evidence/debian-archive/postgresql-17_17.12-0+deb13u1_trixie-security.proof";

/// A scratch repository without 17.12 in its lock, its evidence or its
/// catalog.
fn scratch_without_17_12() -> tempfile::TempDir {
    let scratch = scratch_without("17.12");
    let catalog = scratch.path().join("data/catalog.toml");
    let text = std::fs::read_to_string(&catalog).unwrap();
    let line = "  { version = \"17.12\", date = \"2026-11-12\" },\n";
    assert!(text.contains(line));
    std::fs::write(&catalog, text.replace(line, "")).unwrap();
    scratch
}

fn add_catalog_line(repo: &Path) {
    let catalog = repo.join("data/catalog.toml");
    let text = std::fs::read_to_string(&catalog).unwrap();
    let anchor = "  { version = \"17.11\", date = \"2026-08-13\" },\n";
    std::fs::write(
        &catalog,
        text.replace(anchor, &format!("{anchor}  {{ version = \"17.12\", date = \"2026-11-12\" }},\n")),
    )
    .unwrap();
}

#[test]
fn refresh_reads_the_real_mirror_reports_17_12_and_its_proof_is_locked() {
    let scratch = scratch_without_17_12();
    let proposals = tempfile::tempdir().unwrap();
    let output = pgbin_in(scratch.path())
        .args(["catalog", "refresh", "--debian-suite", "trixie-security", "--json", "--proposals"])
        .arg(proposals.path())
        .output()
        .unwrap();
    let report = json(&output);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(report["uncatalogued"].as_array().unwrap().iter().any(|v| v == "17.12"), "{report}");
    let finding = report["debian"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["upstream"] == "17.12")
        .unwrap_or_else(|| panic!("trixie-security lists 17.12: {report}"));
    assert_eq!(finding["catalogued"], false);
    let proposal = PathBuf::from(finding["proposal"].as_str().expect("a proof is proposed"));
    assert_eq!(proposal.file_name().unwrap(), Path::new(PROOF_17_12).file_name().unwrap());
    let before = snapshot(scratch.path());
    let refused =
        pgbin_in(scratch.path()).args(["lock", "add", "17.12", "--evidence"]).arg(&proposal).output().unwrap();
    assert_eq!(refused.status.code(), Some(2), "not in the catalog yet");
    assert_eq!(snapshot(scratch.path()), before);
    add_catalog_line(scratch.path());
    let added = pgbin_in(scratch.path()).args(["lock", "add", "17.12", "--evidence"]).arg(&proposal).output().unwrap();
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    assert!(scratch.path().join(PROOF_17_12).is_file());
    let resolved = json(&pgbin_in(scratch.path()).args(["resolve", "17", "--json"]).output().unwrap());
    assert_eq!(resolved["version"], "17.12");
    assert_eq!(resolved["trust"], "signed", "{resolved}");
}

/// Runs `lock add 17.12` with an altered copy of the committed proof and
/// asserts it fails with `code` and one line containing `needle`, writing
/// nothing.
fn assert_proof_refused(version: &str, alter: impl Fn(&mut Vec<u8>), code: i32, needle: &str) {
    let scratch = scratch_without(version);
    let mut proof = std::fs::read(repo().join(PROOF_17_12)).unwrap();
    alter(&mut proof);
    let file = scratch.path().join("candidate.proof");
    std::fs::write(&file, &proof).unwrap();
    let before = snapshot(scratch.path());
    let output = pgbin_in(scratch.path()).args(["lock", "add", version, "--evidence"]).arg(&file).output().unwrap();
    assert_eq!(output.status.code(), Some(code), "{needle}: {}", String::from_utf8_lossy(&output.stderr));
    let line = one_line_error(&output);
    assert!(line.contains(needle), "expected '{needle}' in: {line}");
    assert_eq!(snapshot(scratch.path()), before);
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack.windows(needle.len()).position(|w| w == needle).unwrap()
}

#[test]
fn altered_proofs_and_a_proof_of_another_release_are_refused_with_nothing_written() {
    assert_proof_refused(
        "17.12",
        |p| {
            let at = find(p, b"\nPackage: postgresql-17\n") + 200;
            p[at] ^= 1;
        },
        1,
        "hash to",
    );
    assert_proof_refused(
        "17.12",
        |p| {
            let at = find(p, b"\nDate: ") + 10;
            p[at] ^= 1;
        },
        1,
        "signature",
    );
    assert_proof_refused(
        "17.12",
        |p| {
            let at = find(p, b"Index-Prefix-State: ") + 20;
            p[at] = if p[at] == b'0' { b'1' } else { b'0' };
        },
        1,
        "hash to",
    );
    assert_proof_refused(
        "17.12",
        |p| {
            let at = find(p, b"Source-Version: 17.12-0+deb13u1") + "Source-Version: 17.12-0+deb13u".len();
            p[at] = b'2';
        },
        1,
        "lists no postgresql-17 17.12-0+deb13u2",
    );
    assert_proof_refused("17.11", |_| {}, 1, "is for PostgreSQL 17.12, not 17.11");
    assert_proof_refused("17.12", |p| p.truncate(p.len() - 1), 1, "do not make the");
}

#[test]
fn a_mirror_serving_an_unlisted_index_or_an_altered_inrelease_is_refused() {
    let proof = std::fs::read(repo().join(PROOF_17_12)).unwrap();
    let header_end = find(&proof, b"\n\n");
    let header = std::str::from_utf8(&proof[..header_end]).unwrap();
    let length: usize = header.lines().find_map(|l| l.strip_prefix("Release-Length: ")).unwrap().parse().unwrap();
    let release = &proof[header_end + 2..header_end + 2 + length];
    for (altered, needle) in [(false, "Sources.xz differs"), (true, "signature")] {
        let root = tempfile::tempdir().unwrap();
        let dists = root.path().join("dists/trixie-security");
        std::fs::create_dir_all(dists.join("main/source")).unwrap();
        let mut served = release.to_vec();
        if altered {
            let at = find(&served, b"\nCodename: ") + 12;
            served[at] ^= 1;
        }
        std::fs::write(dists.join("InRelease"), &served).unwrap();
        std::fs::write(dists.join("main/source/Sources.xz"), b"not the index the InRelease lists").unwrap();
        let mirror = LocalMirror::serve(root.path());
        let scratch = scratch_without_17_12();
        let proposals = scratch.path().join("proposals");
        let before = snapshot(scratch.path());
        let output = pgbin_in(scratch.path())
            .env("PGBIN_DEBIAN_SECURITY_MIRROR", &mirror.url)
            .args(["catalog", "refresh", "--debian-suite", "trixie-security", "--proposals"])
            .arg(&proposals)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
        let line = one_line_error(&output);
        assert!(line.contains(needle), "expected '{needle}' in: {line}");
        assert_eq!(snapshot(scratch.path()), before, "nothing written");
    }
}

/// The watch workflow's script, run as the workflow runs it, against the
/// real mirror: it records 17.12 from its proof, regenerates the flake's
/// data and describes the change.
#[test]
fn the_watch_script_records_what_the_refresh_proposes() {
    let scratch = scratch_without("17.12");
    let out = scratch.path().join("watch");
    let output = std::process::Command::new("bash")
        .arg(repo().join("scripts/watch.sh"))
        .arg(&out)
        .current_dir(scratch.path())
        .env("PGBIN", env!("CARGO_BIN_EXE_pgbin"))
        .env("PGBIN_WATCH_SUITES", "trixie-security experimental")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let body = std::fs::read_to_string(out.join("body.md")).unwrap();
    assert!(body.contains("- 17.12: recorded (locked 17.12: signed)"), "{body}");
    assert!(!body.contains("pre-release"), "the catalog lists experimental's pre-releases: {body}");
    assert!(scratch.path().join(PROOF_17_12).is_file());
    let generated = std::fs::read_to_string(scratch.path().join("nix/generated/postgresql-17.json")).unwrap();
    assert!(generated.contains("\"17.12\""), "pgbin generate ran");
    let resolved = json(&pgbin_in(scratch.path()).args(["resolve", "17", "--json"]).output().unwrap());
    assert_eq!(resolved["trust"], "signed");
}
