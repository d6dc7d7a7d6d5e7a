//! Hostile paths and names in the data (issue 14, class 3): evidence and
//! certificates must stay under evidence/ and keys/, every file named by data
//! is a regular file within its size bound reached through no link, and every
//! name that goes into a URL or a file name follows its grammar. Each case
//! runs the real binary with a watchdog and a memory cap, so a hang or an
//! endless read fails the test instead of stalling or exhausting the machine,
//! and must end non-zero with one line on stderr, changing nothing.
//!
//! Each test says why it fails on the code before this change.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use crate::util::{json, one_line_error, pgbin_in, repo, scratch_repo, snapshot, with_blob_line};

/// How long a refusal may take before the watchdog kills the binary.
const WATCHDOG: Duration = Duration::from_secs(60);

/// Address space the binary may use: these commands need well under 100 MiB,
/// and an endless read hits the cap within a second instead of taking the
/// machine's memory.
const MEMORY_CAP: u64 = 1 << 30;

const WITNESS_17_11: &str = "evidence/witness/17.11-docker-library-postgres-50396468cf03.txt";
const WITNESS_16_15: &str = "evidence/witness/16.15-docker-library-postgres-ca414b060b2e.txt";
const CERTIFICATE: &str = "5C48FE6157F49179597087C64C5A6BAB12D2A7AE.asc";

/// Runs pgbin over `repo` under the watchdog and the memory cap; a run that
/// outlives the watchdog is killed and fails the test.
fn guarded(repo: &Path, args: &[&str]) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_pgbin"));
    command
        .arg("--repo")
        .arg(repo)
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: the closure only calls setrlimit, which is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            let cap = libc::rlimit { rlim_cur: MEMORY_CAP as libc::rlim_t, rlim_max: MEMORY_CAP as libc::rlim_t };
            if libc::setrlimit(libc::RLIMIT_AS, &cap) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().expect("pgbin starts");
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        let mut pipe = pipe.expect("piped");
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            pipe.read_to_end(&mut bytes).expect("pipe reads");
            bytes
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for pgbin") {
            break status;
        }
        if started.elapsed() > WATCHDOG {
            let _ = child.kill();
            let _ = child.wait();
            panic!("pgbin {args:?} still ran after {} s and was killed: it hangs", WATCHDOG.as_secs());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output { status, stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap() }
}

/// Asserts that `args` over `repo` exits with `code` and one line on stderr
/// containing `needle`, prints nothing, and changes no file under `repo` or
/// any of `also`.
fn assert_refused(repo: &Path, also: &[&Path], args: &[&str], code: i32, needle: &str) {
    let dirs: Vec<&Path> = std::iter::once(repo).chain(also.iter().copied()).collect();
    let before: Vec<_> = dirs.iter().map(|d| snapshot(d)).collect();
    let output = guarded(repo, args);
    assert_eq!(
        output.status.code(),
        Some(code),
        "{args:?}: {:?}, stderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let line = one_line_error(&output);
    assert!(line.contains(needle), "{args:?}: expected '{needle}' in: {line}");
    assert!(output.stdout.is_empty(), "{args:?} printed: {}", String::from_utf8_lossy(&output.stdout));
    let after: Vec<_> = dirs.iter().map(|d| snapshot(d)).collect();
    assert!(after == before, "{args:?} changed files");
}

/// Rewrites the scratch lock through `change`.
fn edit_lock(dir: &Path, change: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("data/sources.lock.json");
    let mut lock: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    change(&mut lock);
    std::fs::write(&path, serde_json::to_string_pretty(&lock).unwrap() + "\n").unwrap();
}

/// The lock entry of `version`.
fn entry<'a>(lock: &'a mut serde_json::Value, version: &str) -> &'a mut serde_json::Value {
    lock["sources"].as_array_mut().unwrap().iter_mut().find(|s| s["version"] == version).unwrap()
}

/// Points the document of the 17.11 docker-library witness at `document`.
fn witness_document(dir: &Path, document: &str) {
    edit_lock(dir, |lock| {
        for evidence in entry(lock, "17.11")["evidence"].as_array_mut().unwrap() {
            if evidence["document"] == WITNESS_17_11 {
                evidence["document"] = document.into();
            }
        }
    });
}

/// Replaces `path` by a symbolic link to `target`.
fn replace_with_link(path: &Path, target: &Path) {
    std::fs::remove_file(path).unwrap();
    std::os::unix::fs::symlink(target, path).unwrap();
}

/// Replaces `path` (if it exists) by a FIFO nobody writes to.
fn replace_with_fifo(path: &Path) {
    let _ = std::fs::remove_file(path);
    let name = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `name` is NUL-terminated.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o644) }, 0, "mkfifo {}", path.display());
}

/// Sets the certificate file of the policy's first signer.
fn certificate_path(dir: &Path, certificate: &str) {
    let path = dir.join("keys/policy.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let edited =
        text.replacen(&format!("certificate = \"{CERTIFICATE}\""), &format!("certificate = {certificate:?}"), 1);
    assert_ne!(text, edited);
    std::fs::write(&path, edited).unwrap();
}

// Before: the lock's own validation already refused an evidence document
// that is absolute or contains `..` ("must be a relative path under
// evidence/"), so this test passed on the old code too; it guards that rule,
// which keeps such a path from ever reaching the confined reader.
#[test]
fn an_absolute_or_dotdot_evidence_path_is_refused_at_load() {
    for document in ["/etc/passwd", "evidence/../../../etc/passwd", "evidence/witness/../../data/catalog.toml"] {
        let scratch = scratch_repo();
        witness_document(scratch.path(), document);
        assert_refused(scratch.path(), &[], &["versions"], 2, "must be a relative path under evidence/");
    }
}

// Before: `assess` read `repo.join(document)` with std::fs::read, which
// follows links; the copy outside has the recorded bytes, so `versions`
// succeeded (exit 0) on a document that is not in the repository at all.
#[test]
fn an_evidence_document_linked_to_a_file_outside_is_refused() {
    let scratch = scratch_repo();
    let outside = tempfile::tempdir().unwrap();
    let copy = outside.path().join("witness.txt");
    std::fs::copy(scratch.path().join(WITNESS_17_11), &copy).unwrap();
    replace_with_link(&scratch.path().join(WITNESS_17_11), &copy);
    assert_refused(scratch.path(), &[outside.path()], &["versions"], 2, "it is a symbolic link");
}

// Before: std::fs::read of a link to /dev/zero never reaches end of file; the
// read grew until the memory cap stopped it ("cannot read ...: out of
// memory"); without the cap it takes all the machine's memory.
#[test]
fn an_evidence_document_linked_to_dev_zero_is_refused() {
    let scratch = scratch_repo();
    replace_with_link(&scratch.path().join(WITNESS_17_11), Path::new("/dev/zero"));
    assert_refused(scratch.path(), &[], &["versions"], 2, "it is a symbolic link");
}

// Before: std::fs::read opens a FIFO blocking until a writer appears, which
// never happens: the binary hangs and the watchdog kills it after 60 s.
#[test]
fn an_evidence_document_that_is_a_fifo_does_not_hang() {
    let scratch = scratch_repo();
    replace_with_fifo(&scratch.path().join(WITNESS_17_11));
    assert_refused(scratch.path(), &[], &["versions"], 2, "it is a FIFO, not a regular file");
}

// Own case. Before: the whole evidence/ directory could be a link to a copy
// kept anywhere; every read went through it and `versions` succeeded.
#[test]
fn a_linked_evidence_directory_is_refused() {
    let scratch = scratch_repo();
    let outside = tempfile::tempdir().unwrap();
    std::fs::rename(scratch.path().join("evidence"), outside.path().join("evidence")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("evidence"), scratch.path().join("evidence")).unwrap();
    let link = scratch.path().join("evidence").display().to_string();
    assert_refused(scratch.path(), &[outside.path()], &["versions"], 2, &format!("{link} is a symbolic link"));
}

// Own case. Before: `lock add` wrote the new document with write_atomic at
// `root.join(document)`, creating and following evidence/witness, which here
// links outside: the document landed outside the repository and the command
// succeeded (exit 0), recording a lock entry whose evidence is elsewhere.
#[test]
fn lock_add_does_not_write_through_a_linked_evidence_directory() {
    let scratch = scratch_repo();
    edit_lock(scratch.path(), |lock| lock["sources"].as_array_mut().unwrap().retain(|s| s["version"] != "16.15"));
    std::fs::remove_file(scratch.path().join(WITNESS_16_15)).unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::rename(scratch.path().join("evidence/witness"), outside.path().join("witness")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("witness"), scratch.path().join("evidence/witness")).unwrap();
    let given = tempfile::tempdir().unwrap();
    let document = given.path().join("16.15.txt");
    std::fs::write(&document, with_blob_line(&std::fs::read_to_string(repo().join(WITNESS_16_15)).unwrap())).unwrap();
    assert_refused(
        scratch.path(),
        &[outside.path()],
        &["lock", "add", "16.15", "--evidence", document.to_str().unwrap()],
        2,
        "evidence/witness is a symbolic link",
    );
}

// Before: Policy::load read `keys_dir.join(certificate)`: `..` climbed out of
// keys/, an absolute name replaced the directory altogether, and a link was
// followed; each copy holds the right certificate, so `versions` succeeded.
#[test]
fn a_certificate_outside_keys_is_refused() {
    let outside = tempfile::tempdir().unwrap();
    let copy = outside.path().join(CERTIFICATE);
    std::fs::copy(repo().join("keys").join(CERTIFICATE), &copy).unwrap();
    for certificate in [format!("../evidence/{CERTIFICATE}"), copy.display().to_string()] {
        let scratch = scratch_repo();
        std::fs::copy(&copy, scratch.path().join("evidence").join(CERTIFICATE)).unwrap();
        certificate_path(scratch.path(), &certificate);
        assert_refused(scratch.path(), &[outside.path()], &["versions"], 2, "must name a file inside keys/");
    }
    let scratch = scratch_repo();
    replace_with_link(&scratch.path().join("keys").join(CERTIFICATE), &copy);
    assert_refused(scratch.path(), &[outside.path()], &["versions"], 2, "it is a symbolic link");
}

// Before: std::fs::read of a FIFO certificate blocks forever (watchdog).
#[test]
fn a_certificate_that_is_a_fifo_does_not_hang() {
    let scratch = scratch_repo();
    replace_with_fifo(&scratch.path().join("keys").join(CERTIFICATE));
    assert_refused(scratch.path(), &[], &["versions"], 2, "it is a FIFO, not a regular file");
}

// Own case. Before: keys/policy.toml itself was read with read_to_string,
// which blocks forever on a FIFO (watchdog).
#[test]
fn a_policy_that_is_a_fifo_does_not_hang() {
    let scratch = scratch_repo();
    replace_with_fifo(&scratch.path().join("keys/policy.toml"));
    assert_refused(scratch.path(), &[], &["versions"], 2, "it is a FIFO, not a regular file");
}

// Before: SourceLock::load read the lock with read_to_string through the
// link, an endless read of zeros stopped only by the memory cap ("cannot
// access source lock ...: out of memory").
#[test]
fn a_lock_linked_to_dev_zero_is_refused() {
    let scratch = scratch_repo();
    replace_with_link(&scratch.path().join("data/sources.lock.json"), Path::new("/dev/zero"));
    assert_refused(scratch.path(), &[], &["versions"], 2, "it is a symbolic link");
}

// Own case. Before: data/targets.toml was read with read_to_string, which
// blocks forever on a FIFO (watchdog).
#[test]
fn a_target_matrix_that_is_a_fifo_does_not_hang() {
    let scratch = scratch_repo();
    replace_with_fifo(&scratch.path().join("data/targets.toml"));
    assert_refused(scratch.path(), &[], &["versions"], 2, "it is a FIFO, not a regular file");
}

// Own case. Before: `lock add` read its --evidence files with std::fs::read,
// which blocks forever on a FIFO (watchdog).
#[test]
fn lock_add_refuses_a_named_fifo_without_hanging() {
    let scratch = scratch_repo();
    let outside = tempfile::tempdir().unwrap();
    let fifo = outside.path().join("evidence.txt");
    replace_with_fifo(&fifo);
    assert_refused(
        scratch.path(),
        &[],
        &["lock", "add", "16.15", "--evidence", fifo.to_str().unwrap()],
        2,
        "it is a FIFO, not a regular file",
    );
}

// Own case. Before: `pgbin verify` read its --evidence files with
// std::fs::read, which blocks forever on a FIFO (watchdog).
#[test]
fn verify_refuses_a_named_fifo_without_hanging() {
    let scratch = scratch_repo();
    let outside = tempfile::tempdir().unwrap();
    let fifo = outside.path().join("evidence.txt");
    replace_with_fifo(&fifo);
    let tarball = outside.path().join("postgresql-18.6.tar.bz2");
    std::fs::write(&tarball, b"not the tarball").unwrap();
    assert_refused(
        scratch.path(),
        &[],
        &["verify", "18.6", tarball.to_str().unwrap(), "--evidence", fifo.to_str().unwrap()],
        2,
        "it is a FIFO, not a regular file",
    );
}

// Before: `attests.name` was checked nowhere (not at load, not against the
// signed .dsc) and went straight into the mirror URL; `resolve 18.6`
// succeeded (exit 0) with a name that climbs out of the pool directory.
#[test]
fn an_attested_file_name_with_a_path_is_refused_at_load() {
    for name in ["../../../../private/postgresql-18_18.6.orig.tar.bz2", "pool/postgresql-18_18.6.orig.tar.bz2"] {
        let scratch = scratch_repo();
        edit_lock(scratch.path(), |lock| {
            for evidence in entry(lock, "18.6")["evidence"].as_array_mut().unwrap() {
                if evidence["kind"] == "debian-dsc" {
                    evidence["attests"]["name"] = name.into();
                }
            }
        });
        assert_refused(
            scratch.path(),
            &[],
            &["resolve", "18.6"],
            2,
            &format!("Debian file name {name:?} is not valid"),
        );
    }
}

/// The 16.15 docker-library excerpt with its owner spelled `owner`, written
/// outside the repository.
fn respelled_witness(owner: &str, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(repo().join(WITNESS_16_15)).unwrap();
    let respelled = text.replace("docker-library/postgres", &format!("{owner}/postgres"));
    assert_ne!(text, respelled);
    let path = dir.join(format!("{owner}.txt"));
    std::fs::write(&path, with_blob_line(&respelled)).unwrap();
    path
}

// Before: owners were accepted as any run of [A-Za-z0-9._-], so
// `docker_library` (which GitHub cannot have) counted as a second owner
// beside `docker-library`: `lock add` succeeded (exit 0) and made 16.15
// corroborated from one publisher.
#[test]
fn a_witness_owner_github_cannot_have_is_refused() {
    let outside = tempfile::tempdir().unwrap();
    for owner in ["docker_library", "docker.library", "-docker-library", "docker--library"] {
        let scratch = scratch_repo();
        let excerpt = respelled_witness(owner, outside.path());
        assert_refused(
            scratch.path(),
            &[],
            &["lock", "add", "16.15", "--evidence", excerpt.to_str().unwrap()],
            1,
            &format!("GitHub owner {owner:?} is not valid"),
        );
    }
}

// Before: this passed too: parse_witness_document already lower-cased the
// owner, so the old code counted `Docker-Library` and `docker-library` once
// (tests/e2e/trust.rs checks the level the same way). Kept as the end-to-end
// guard of the rule; level_of now lower-cases as well, and its unit test
// fails on the old code.
#[test]
fn owners_that_differ_only_in_case_are_one_witness() {
    let scratch = scratch_repo();
    let outside = tempfile::tempdir().unwrap();
    let excerpt = respelled_witness("Docker-Library", outside.path());
    let added = guarded(scratch.path(), &["lock", "add", "16.15", "--evidence", excerpt.to_str().unwrap()]);
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let mut lock: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(scratch.path().join("data/sources.lock.json")).unwrap()).unwrap();
    assert_eq!(entry(&mut lock, "16.15")["evidence"].as_array().unwrap().len(), 2, "both excerpts are recorded");
    let answer = json(&pgbin_in(scratch.path()).args(["resolve", "16.15", "--json"]).output().unwrap());
    assert_eq!(answer["trust"], "unverified", "one owner under two spellings is one witness");
    let cache = tempfile::tempdir().unwrap();
    assert_refused(
        scratch.path(),
        &[cache.path()],
        &["fetch", "16.15", "--cache", cache.path().to_str().unwrap()],
        1,
        "PostgreSQL 16.15 is unverified",
    );
}
