//! Witnesses checked against real git clones: `pgbin catalog refresh` finds
//! records on a repository's branches and proposes excerpts, `pgbin lock
//! add --witness-clone` checks each against its clone before recording it,
//! and the committed witnesses of the real repositories, where a clone of
//! them is on this machine, are exactly what a scan of the clone proposes.

use std::path::{Path, PathBuf};

use crate::util::{git, json, one_line_error, pgbin, pgbin_in, repo, scratch_repo, scratch_without, snapshot};

/// 16.14's tarball SHA-256, as conda-forge/postgresql-feedstock records it.
const HASH_16_14: &str = "f6d077142737920858ce958ccdb75c6ee137a63b5b0853c70693d401ac7e3471";

/// A git repository with one commit holding `path` = `text`, on branch main.
fn repository_with(path: &str, text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q", "-b", "main"]);
    let file = dir.path().join(path);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(file, text).unwrap();
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-q", "-m", "record"]);
    dir
}

fn docker_library(version: &str, hash: &str) -> tempfile::TempDir {
    let major = version.split('.').next().unwrap();
    repository_with(
        &format!("{major}/alpine3.20/Dockerfile"),
        &format!(
            "FROM alpine:3.20\nENV PG_MAJOR {major}\nENV PG_VERSION {version}\nENV PG_SHA256 {hash}\nRUN set -eux; \\\n\twget -O postgresql.tar.bz2 \"https://ftp.postgresql.org/pub/source/v$PG_VERSION/postgresql-$PG_VERSION.tar.bz2\"; \\\n\ttrue\n"
        ),
    )
}

fn conda_forge(version: &str, hash: &str) -> tempfile::TempDir {
    repository_with(
        "recipe/meta.yaml",
        &format!(
            "{{% set version = \"{version}\" %}}\n\npackage:\n  name: postgresql-split\n\nsource:\n  url: https://ftp.postgresql.org/pub/source/v{{{{ version }}}}/postgresql-{{{{ version }}}}.tar.bz2\n  sha256: {hash}\n"
        ),
    )
}

fn clone_arg(repository: &str, dir: &Path) -> String {
    format!("{repository}={}", dir.display())
}

fn refresh(scratch: &Path, clones: &[String], proposals: &Path) -> std::process::Output {
    let mut command = pgbin_in(scratch);
    command.args(["catalog", "refresh", "--json", "--proposals"]).arg(proposals);
    for clone in clones {
        command.args(["--witness-clone", clone]);
    }
    command.output().unwrap()
}

fn proposals_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}

#[test]
fn refresh_proposes_what_lock_add_checks_against_the_clones() {
    let scratch = scratch_without("16.14");
    let docker = docker_library("16.14", HASH_16_14);
    let conda = conda_forge("16.14", HASH_16_14);
    let clones = [
        clone_arg("docker-library/postgres", docker.path()),
        clone_arg("conda-forge/postgresql-feedstock", conda.path()),
    ];
    let proposals = tempfile::tempdir().unwrap();
    let output = refresh(scratch.path(), &clones, proposals.path());
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report = json(&output);
    let release = report["releases"].as_array().unwrap().iter().find(|r| r["version"] == "16.14").unwrap();
    assert_eq!(release["catalogued"], true);
    assert_eq!(release["records"].as_array().unwrap().len(), 2);
    let files = proposals_in(proposals.path());
    assert_eq!(files.len(), 2, "one proposal per owner");
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        assert!(text.contains("\nBlob: "), "a proposal records the blob id: {text}");
    }

    // A proposal edited after the scan no longer checks out against its clone.
    let edited = proposals.path().join("edited.txt");
    let original = std::fs::read_to_string(&files[0]).unwrap();
    std::fs::write(&edited, original.replace("\n\n", "\n\n# added\n")).unwrap();
    let mut add = vec!["lock".to_string(), "add".into(), "16.14".into(), "--allow-downgrade".into()];
    add.extend(["--reason".into(), "backfill".into()]);
    for clone in &clones {
        add.extend(["--witness-clone".into(), clone.clone()]);
    }
    let before = snapshot(scratch.path());
    let output = pgbin_in(scratch.path()).args(&add).arg("--evidence").arg(&edited).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
    let line = one_line_error(&output);
    assert!(line.contains("witness check failed") && line.contains("not lines of"), "{line}");
    assert_eq!(snapshot(scratch.path()), before, "nothing is written");

    let output = pgbin_in(scratch.path()).args(&add).arg("--evidence").args(&files).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("2 checked against a clone"));
    let answer = json(&pgbin_in(scratch.path()).args(["resolve", "16.14", "--json"]).output().unwrap());
    assert_eq!(answer["trust"], "corroborated");

    // Scanned again, both records are now the lock's own.
    let again = json(&refresh(scratch.path(), &clones, tempfile::tempdir().unwrap().path()));
    let release = again["releases"].as_array().unwrap().iter().find(|r| r["version"] == "16.14").unwrap();
    assert!(release["records"].as_array().unwrap().iter().all(|r| r["locked"] == true));

    // The whole lock checked against the clones (here a lock of 16.14
    // alone, since the clones hold no other release): both witnesses check out.
    let lock_path = scratch.path().join("data/sources.lock.json");
    let mut lock: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&lock_path).unwrap()).unwrap();
    lock["sources"].as_array_mut().unwrap().retain(|s| s["version"] == "16.14");
    std::fs::write(&lock_path, serde_json::to_string_pretty(&lock).unwrap() + "\n").unwrap();
    let mut check = vec!["lock".to_string(), "witnesses".into(), "--json".into()];
    for clone in &clones {
        check.extend(["--witness-clone".into(), clone.clone()]);
    }
    let answer = json(&pgbin_in(scratch.path()).args(&check).output().unwrap());
    let checked: Vec<&str> = answer["checked"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    assert_eq!(checked.len(), 2, "{answer}");

    // Once no branch holds the commit (only a pull request's reference
    // does), the witness no longer checks out.
    let commit = git(docker.path(), &["rev-parse", "HEAD"]);
    git(docker.path(), &["update-ref", "refs/pull/9/head", &commit]);
    git(docker.path(), &["checkout", "-q", "--orphan", "other"]);
    git(docker.path(), &["commit", "-q", "--allow-empty", "-m", "unrelated"]);
    git(docker.path(), &["update-ref", "-d", "refs/heads/main"]);
    let output = pgbin_in(scratch.path()).args(&check).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(one_line_error(&output).contains("on none of the clone's branches"), "{}", one_line_error(&output));
}

#[test]
fn owners_that_disagree_are_refused_naming_both() {
    let scratch = scratch_repo();
    let docker = docker_library("16.14", HASH_16_14);
    let conda = conda_forge("16.14", &"e".repeat(64));
    let clones = [
        clone_arg("docker-library/postgres", docker.path()),
        clone_arg("conda-forge/postgresql-feedstock", conda.path()),
    ];
    let proposals = tempfile::tempdir().unwrap();
    let output = refresh(scratch.path(), &clones, proposals.path());
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let release = report["releases"].as_array().unwrap().iter().find(|r| r["version"] == "16.14").unwrap();
    let reason = release["refused"].as_str().unwrap();
    assert!(
        reason.contains("docker-library/postgres") && reason.contains("conda-forge/postgresql-feedstock"),
        "{reason}"
    );
    assert!(proposals_in(proposals.path()).is_empty(), "nothing is proposed for a disputed release");
}

#[test]
fn a_clone_of_an_unknown_repository_or_no_repository_is_a_usage_error() {
    let scratch = scratch_repo();
    let empty = tempfile::tempdir().unwrap();
    let proposals = tempfile::tempdir().unwrap();
    let output = refresh(scratch.path(), &[clone_arg("example/other", empty.path())], proposals.path());
    assert_eq!(output.status.code(), Some(2));
    assert!(one_line_error(&output).contains("no record shape"), "{}", one_line_error(&output));
    let output = refresh(scratch.path(), &[clone_arg("docker-library/postgres", empty.path())], proposals.path());
    assert_eq!(output.status.code(), Some(2));
    assert!(one_line_error(&output).contains("no git repository here"), "{}", one_line_error(&output));
}

/// Where this machine keeps full clones of public repositories, if it does
/// (`PGBIN_WITNESS_MIRRORS`, else the work area's mirror directory).
fn mirror_of(repository: &str) -> Option<PathBuf> {
    let base = std::env::var_os("PGBIN_WITNESS_MIRRORS").map_or_else(|| PathBuf::from("/work/.mirror"), PathBuf::from);
    let wanted = repository.replace('/', "+").to_ascii_lowercase();
    let name = std::fs::read_dir(&base)
        .ok()?
        .flatten()
        .map(|e| e.file_name())
        .find(|n| n.to_string_lossy().to_ascii_lowercase() == wanted)?;
    let dir = base.join(name).join("repo");
    dir.is_dir().then_some(dir)
}

#[test]
fn committed_witnesses_are_exactly_what_the_real_clones_propose() {
    let lock: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("data/sources.lock.json")).unwrap()).unwrap();
    let mut clones = Vec::new();
    for repository in ["docker-library/postgres", "conda-forge/postgresql-feedstock"] {
        match mirror_of(repository) {
            Some(dir) => clones.push((repository, dir)),
            None => {
                eprintln!("no clone of {repository} on this machine: its witnesses are checked by the CI workflow only")
            }
        }
    }
    if clones.is_empty() {
        return;
    }
    let args: Vec<String> = clones.iter().map(|(r, d)| clone_arg(r, d)).collect();
    let report = json(&refresh(&repo(), &args, tempfile::tempdir().unwrap().path()));
    let found: std::collections::BTreeSet<String> = report["releases"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["records"].as_array().unwrap().iter())
        .filter(|r| r["locked"] == true)
        .map(|r| r["reference"].as_str().unwrap().to_string())
        .collect();
    let mut check = pgbin_in(&repo());
    check.args(["lock", "witnesses", "--json"]);
    for arg in &args {
        check.args(["--witness-clone", arg]);
    }
    let answer = json(&check.output().unwrap());
    assert!(answer["checked"].as_array().unwrap().len() >= found.len().min(1), "pgbin lock witnesses checks them too");
    let mut checked = 0;
    for entry in lock["sources"].as_array().unwrap() {
        for evidence in entry["evidence"].as_array().unwrap() {
            let (Some(reference), Some(_blob)) = (evidence["reference"].as_str(), evidence["blob"].as_str()) else {
                continue;
            };
            if clones.iter().any(|(r, _)| reference.starts_with(&format!("github:{r}@"))) {
                assert!(found.contains(reference), "{reference}: the clone does not propose this committed witness");
                checked += 1;
            }
        }
    }
    assert!(checked > 0, "the lock holds witnesses of the cloned repositories");
}

/// A fork's copy of a witness (another owner, the same repository name)
/// is recorded but counts once: the release stays unverified and the note
/// says why.
#[test]
fn a_forks_witness_counts_once_with_its_upstream() {
    let scratch = scratch_repo();
    let original =
        std::fs::read_to_string(repo().join("evidence/witness/16.15-docker-library-postgres-ca414b060b2e.txt"))
            .unwrap();
    let fork = crate::util::with_blob_line(&original.replace("docker-library/postgres", "someone-else/postgres"));
    let file = scratch.path().join("fork.txt");
    std::fs::write(&file, fork).unwrap();
    let output = pgbin_in(scratch.path()).args(["lock", "add", "16.15", "--evidence"]).arg(&file).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("docker-library = someone-else count once"), "{stderr}");
    let versions =
        crate::util::json(&pgbin_in(scratch.path()).args(["versions", "--major", "16", "--json"]).output().unwrap());
    let row = versions.as_array().unwrap().iter().find(|r| r["version"] == "16.15").unwrap();
    assert_eq!(row["trust"], "unverified", "{row}");
}

/// Every committed witness of a repository this machine has a full clone
/// of checks out against that clone: commit on a branch, blob, excerpt
/// lines. (The CI and watch workflows do the same against GitHub for all.)
#[test]
fn every_committed_witness_checks_out_against_the_clones_here() {
    let listed = pgbin().args(["lock", "witnesses", "--repositories"]).output().unwrap();
    assert!(listed.status.success());
    let mut check = pgbin();
    check.args(["lock", "witnesses", "--json"]);
    let mut cloned = 0;
    for repository in String::from_utf8(listed.stdout).unwrap().split_whitespace() {
        if let Some(dir) = mirror_of(repository) {
            check.args(["--witness-clone", &clone_arg(repository, &dir)]);
            cloned += 1;
        }
    }
    if cloned == 0 {
        eprintln!("no clone of a witness repository on this machine: the CI workflow checks them");
        return;
    }
    let report = json(&check.output().unwrap());
    let checked = report["checked"].as_array().unwrap().len();
    assert!(checked >= cloned, "{cloned} repositories cloned here, {checked} witnesses checked: {report}");
}
