//! `pgbin audit` through the binary: every corpus case under tests/audit/bad
//! triggers exactly its rule, the good files none, this repository passes,
//! the original pipeline's flaws are reported rule by rule, SARIF output
//! validates against the SARIF 2.1.0 schema, pgbin's data rules fire on real
//! data broken in scratch copies, and the workflow rules are compared with
//! zizmor on the same corpus (docs/audit.md explains each disagreement).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{git, pgbin, python_tool, repo, scratch_repo};

fn corpus() -> PathBuf {
    repo().join("tests/audit")
}

/// Runs the audit with `--format json`; returns the exit code and findings.
fn audit(path: &Path, extra: &[&str]) -> (i32, Vec<serde_json::Value>) {
    let output = pgbin().arg("audit").arg(path).args(["--format", "json"]).args(extra).output().unwrap();
    let code = output.status.code().unwrap();
    assert!(code == 0 || code == 1, "audit failed to run: {}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON report");
    (code, report["findings"].as_array().unwrap().clone())
}

fn rules(findings: &[serde_json::Value]) -> BTreeSet<String> {
    findings.iter().map(|f| f["rule"].as_str().unwrap().to_string()).collect()
}

#[test]
fn each_bad_corpus_case_triggers_exactly_its_rule() {
    let mut seen = BTreeSet::new();
    for entry in std::fs::read_dir(corpus().join("bad")).unwrap() {
        let dir = entry.unwrap().path();
        let rule = dir.file_name().unwrap().to_string_lossy().into_owned();
        let (code, findings) = audit(&dir, &[]);
        assert_eq!(code, 1, "{rule}: findings exit 1");
        assert_eq!(rules(&findings), BTreeSet::from([rule.clone()]), "{rule}: {findings:#?}");
        for finding in &findings {
            assert!(finding["line"].as_u64().unwrap() >= 1);
            assert!(!finding["fix"].as_str().unwrap().is_empty());
        }
        seen.insert(rule);
    }
    // Every rule that reads files has a corpus case; the PGB rules are
    // exercised on real data below.
    let expected: BTreeSet<String> = [
        "AUD001", "DKR001", "DKR002", "DKR003", "DKR004", "DKR005", "GHA001", "GHA002", "GHA003", "GHA004", "GHA005",
        "GHA006", "GHA007", "NIX001", "NIX002", "NIX003", "TLS001",
    ]
    .map(String::from)
    .into();
    assert_eq!(seen, expected);
}

#[test]
fn good_files_trigger_nothing() {
    let (code, findings) = audit(&corpus().join("good"), &[]);
    assert_eq!((code, findings.len()), (0, 0), "{findings:#?}");
}

#[test]
fn this_repository_passes() {
    let output = pgbin().arg("audit").output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("no findings in "));
}

#[test]
fn the_original_pipelines_flaws_are_reported_rule_by_rule() {
    let (code, findings) = audit(&corpus().join("original-pipeline"), &[]);
    assert_eq!(code, 1);
    let located: BTreeSet<(String, String, u64)> = findings
        .iter()
        .map(|f| (f["rule"].as_str().unwrap().into(), f["path"].as_str().unwrap().into(), f["line"].as_u64().unwrap()))
        .collect();
    let expected: BTreeSet<(String, String, u64)> = [
        ("GHA001", ".github/workflows/build.yml", 9),
        ("DKR001", "Dockerfile", 1),
        ("DKR002", "Dockerfile", 2),
        ("TLS001", "Dockerfile", 3),
    ]
    .into_iter()
    .map(|(r, p, l)| (r.to_string(), p.to_string(), l))
    .collect();
    assert_eq!(located, expected);
    // The text format says each with its fix.
    let output = pgbin().arg("audit").arg(corpus().join("original-pipeline")).output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("Dockerfile:1: DKR001 unpinned-base-image (high): `FROM alpine:3.19.0`"), "{text}");
    assert!(text.contains("    fix: pin `FROM image:tag@sha256:<64 hex>`"), "{text}");
    assert!(text.trim_end().ends_with("4 finding(s): 3 high, 1 medium, 0 low, in 2 files"), "{text}");
}

/// The SARIF 2.1.0 schema as published by OASIS, shipped inside the
/// `serde-sarif` crate that pgbin builds its SARIF with (found through
/// `cargo metadata`, nothing copied into this repository).
fn sarif_schema() -> PathBuf {
    let output = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked", "--manifest-path"])
        .arg(repo().join("Cargo.toml"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let package = metadata["packages"].as_array().unwrap().iter().find(|p| p["name"] == "serde-sarif").unwrap();
    let schema = Path::new(package["manifest_path"].as_str().unwrap()).parent().unwrap().join("src/schema.json");
    let text = std::fs::read_to_string(&schema).unwrap();
    assert!(text.contains("Static Analysis Results Format (SARIF) Version 2.1.0 JSON Schema"));
    schema
}

/// check-jsonschema against the SARIF schema. The published schema's
/// `language` pattern (`…-[a-zA-Z]{2}]?$`) has a stray `]` that ECMAScript's
/// unicode mode rejects, so patterns are read as Python regexes, which take
/// the `]` literally, as the schema's authors meant.
fn check_sarif(schema: &Path, file: &Path) -> std::process::Output {
    Command::new(python_tool("check-jsonschema"))
        .args(["--regex-variant", "python", "--schemafile"])
        .arg(schema)
        .arg(file)
        .output()
        .unwrap()
}

#[test]
fn sarif_output_validates_against_the_sarif_2_1_0_schema() {
    let schema = sarif_schema();
    let dir = tempfile::tempdir().unwrap();
    for (name, path) in [("findings", corpus().join("original-pipeline")), ("clean", repo())] {
        let output = pgbin().arg("audit").arg(&path).args(["--format", "sarif"]).output().unwrap();
        let sarif: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(sarif["version"], "2.1.0");
        let file = dir.path().join(format!("{name}.sarif"));
        std::fs::write(&file, &output.stdout).unwrap();
        let check = check_sarif(&schema, &file);
        assert!(
            check.status.success(),
            "{name}: {}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        let results = sarif["runs"][0]["results"].as_array().unwrap();
        assert_eq!(results.is_empty(), name == "clean");
    }
    // And the schema check is real: a result without its message fails it.
    let output =
        pgbin().arg("audit").arg(corpus().join("original-pipeline")).args(["--format", "sarif"]).output().unwrap();
    let mut sarif: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    sarif["runs"][0]["results"][0].as_object_mut().unwrap().remove("message");
    let broken = dir.path().join("broken.sarif");
    std::fs::write(&broken, sarif.to_string()).unwrap();
    let check =
        Command::new(python_tool("check-jsonschema")).arg("--schemafile").arg(&schema).arg(&broken).output().unwrap();
    assert!(!check.status.success());
}

#[test]
fn pgbin_data_rules_fire_on_broken_copies_of_the_real_data() {
    // Clean copy: nothing.
    let clean = scratch_repo();
    let (code, findings) = audit(clean.path(), &[]);
    assert_eq!((code, findings.len()), (0, 0), "{findings:#?}");

    // PGB001: a committed evidence document altered.
    let tampered = scratch_repo();
    let dsc = tampered.path().join("evidence/debian/postgresql-18_18.6-3.dsc");
    let text = std::fs::read_to_string(&dsc).unwrap().replacen("Maintainer:", "Maintainer: x", 1);
    std::fs::write(&dsc, text).unwrap();
    let (code, findings) = audit(tampered.path(), &[]);
    assert_eq!(code, 1);
    assert_eq!(rules(&findings), BTreeSet::from(["PGB001".to_string()]), "{findings:#?}");
    assert!(findings[0]["message"].as_str().unwrap().starts_with("18.6: "));

    // PGB002: generated data edited by hand.
    let stale = scratch_repo();
    let generated = stale.path().join("nix/generated/postgresql-18.json");
    let text = std::fs::read_to_string(&generated).unwrap().replacen("18.6", "18.7", 1);
    std::fs::write(&generated, text).unwrap();
    let (_, findings) = audit(stale.path(), &[]);
    assert_eq!(rules(&findings), BTreeSet::from(["PGB002".to_string()]), "{findings:#?}");
}

#[test]
fn a_lock_downgrade_against_the_base_revision_is_reported() {
    let scratch = scratch_repo();
    let lock_path = scratch.path().join("data/sources.lock.json");
    let original = std::fs::read_to_string(&lock_path).unwrap();
    // The base holds 17.12 but not 17.6; the change adds 17.6 by hand,
    // with valid evidence and no downgrade override.
    let mut lock: serde_json::Value = serde_json::from_str(&original).unwrap();
    lock["sources"].as_array_mut().unwrap().retain(|s| s["version"] != "17.6");
    std::fs::write(&lock_path, serde_json::to_string_pretty(&lock).unwrap() + "\n").unwrap();
    git(scratch.path(), &["init", "-q"]);
    git(scratch.path(), &["add", "-A"]);
    git(scratch.path(), &["commit", "-q", "-m", "base"]);
    std::fs::write(&lock_path, &original).unwrap();

    let (_, without_base) = audit(scratch.path(), &[]);
    assert!(!rules(&without_base).contains("PGB003"), "no base, no comparison");
    let (code, findings) = audit(scratch.path(), &["--base", "HEAD"]);
    assert_eq!(code, 1);
    let rollback: Vec<&serde_json::Value> = findings.iter().filter(|f| f["rule"] == "PGB003").collect();
    assert_eq!(rollback.len(), 1, "{findings:#?}");
    assert!(rollback[0]["message"].as_str().unwrap().contains("17.6 added below the already locked 17.12"));

    let output = pgbin().arg("audit").arg(scratch.path()).args(["--base", "no-such-revision"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(crate::util::one_line_error(&output).contains("no-such-revision"));
}

/// zizmor (offline, auditor persona) on the same workflow corpus. The
/// expected sets are what zizmor 1.32.0 reports; docs/audit.md explains
/// each rule where it and pgbin disagree.
#[test]
fn zizmor_on_the_workflow_corpus_agrees_where_docs_audit_md_says() {
    let expectations: [(&str, &[&str]); 9] = [
        ("bad/GHA001", &["anonymous-definition", "concurrency-limits", "unpinned-uses"]),
        ("bad/GHA002", &["anonymous-definition", "concurrency-limits"]),
        ("bad/GHA003", &["anonymous-definition", "concurrency-limits", "excessive-permissions"]),
        (
            "bad/GHA004",
            &["anonymous-definition", "concurrency-limits", "excessive-permissions", "undocumented-permissions"],
        ),
        ("bad/GHA005", &["anonymous-definition", "concurrency-limits", "dangerous-triggers"]),
        ("bad/GHA006", &["anonymous-definition", "concurrency-limits", "template-injection"]),
        ("bad/GHA007", &["secrets-inherit", "self-repository"]),
        ("good", &["concurrency-limits", "self-repository"]),
        ("original-pipeline", &["anonymous-definition", "artipacked", "concurrency-limits", "unpinned-uses"]),
    ];
    for (case, expected) in expectations {
        let output = Command::new(python_tool("zizmor"))
            .args(["--offline", "--no-config", "--persona", "auditor", "--format", "json", "--no-progress"])
            .arg(corpus().join(case))
            .env_remove("GH_TOKEN")
            .env_remove("GITHUB_TOKEN")
            .output()
            .unwrap();
        let findings: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!("{case}: zizmor output is not JSON ({e}): {}", String::from_utf8_lossy(&output.stderr))
        });
        let idents: BTreeSet<&str> =
            findings.as_array().unwrap().iter().map(|f| f["ident"].as_str().unwrap()).collect();
        assert_eq!(idents, expected.iter().copied().collect(), "{case}");
    }
    // An unparsable workflow: zizmor skips it with a warning unless told to
    // be strict; pgbin reports AUD001.
    let output = Command::new(python_tool("zizmor"))
        .args(["--offline", "--no-config", "--format", "json", "--no-progress"])
        .arg(corpus().join("bad/AUD001"))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&output.stderr).to_lowercase().contains("failed"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_workflow_whose_name_is_not_utf8_is_audited_not_skipped() {
    // Before, the file was listed under a lossy name that did not exist, so
    // it was silently left out and the audit passed.
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let workflows = dir.path().join(".github/workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    let bad = std::fs::read(corpus().join("bad/GHA001/.github/workflows/ci.yml")).unwrap();
    std::fs::write(workflows.join(std::ffi::OsStr::from_bytes(b"c\xe9.yml")), bad).unwrap();
    let (code, findings) = audit(dir.path(), &[]);
    assert_eq!(code, 1);
    assert!(rules(&findings).contains("GHA001"), "{findings:?}");
}
