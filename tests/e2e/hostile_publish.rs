//! Publishing under hostile conditions: a pgbin killed at any rename never
//! leaves a set in `--out` that looks whole but is not, and a corrupted
//! build cache is never republished. Kills are injected with strace at each
//! rename pgbin makes, so the test exercises the real binary unchanged.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::Digest;

use crate::util::{json, pgbin, repo};

const ARCHIVE: &str = "postgresql-18.6.0-x86_64-unknown-linux-gnu.tar.gz";
const SIDECARS: [&str; 4] = [".sha256", ".manifest.json", ".intoto.json", ".spdx.json"];

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

fn file(dir: &Path, suffix: &str) -> PathBuf {
    dir.join(format!("{ARCHIVE}{suffix}"))
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn write_json(path: &Path, value: &serde_json::Value) {
    std::fs::write(path, serde_json::to_string_pretty(value).unwrap() + "\n").unwrap();
}

/// Builds 18.6 with the host backend (a cache hit once any test built it).
fn build_18_6(out: &Path) {
    json(&pgbin().args(["build", "18.6", "--backend", "host", "--json", "--out"]).arg(out).output().unwrap());
}

/// Puts an earlier, self-consistent set of the same names into `out`: its
/// archive is other bytes, and its .sha256, manifest, provenance and SBOM
/// all describe those bytes.
fn earlier_set(real: &Path, out: &Path) -> String {
    let old = b"an earlier build of this release".to_vec();
    let sha = sha256_hex(&old);
    std::fs::write(file(out, ""), &old).unwrap();
    std::fs::write(file(out, ".sha256"), format!("{sha}  {ARCHIVE}\n")).unwrap();
    let mut manifest = read_json(&file(real, ".manifest.json"));
    manifest["archive_sha256"] = sha.clone().into();
    write_json(&file(out, ".manifest.json"), &manifest);
    let mut statement = read_json(&file(real, ".intoto.json"));
    statement["subject"][0]["digest"]["sha256"] = sha.clone().into();
    write_json(&file(out, ".intoto.json"), &statement);
    let mut sbom = read_json(&file(real, ".spdx.json"));
    sbom["packages"][0]["checksums"][0]["checksumValue"] = sha.clone().into();
    write_json(&file(out, ".spdx.json"), &sbom);
    sha
}

/// The set in `out` as a reader that requires the `.sha256` sees it: absent
/// (`None`), or whole: archive, manifest, provenance and SBOM all agree with
/// the `.sha256`. Returns the archive's SHA-256 when whole.
fn whole_set(out: &Path) -> Option<String> {
    let line = std::fs::read_to_string(file(out, ".sha256")).ok()?;
    let recorded = line.split_whitespace().next().unwrap().to_string();
    let archive = std::fs::read(file(out, "")).expect("a .sha256 without its archive");
    assert_eq!(sha256_hex(&archive), recorded, "the archive does not match the published .sha256");
    let manifest = read_json(&file(out, ".manifest.json"));
    assert_eq!(manifest["archive_sha256"], recorded.as_str(), "the manifest describes another archive");
    let statement = read_json(&file(out, ".intoto.json"));
    assert_eq!(statement["subject"][0]["digest"]["sha256"], recorded.as_str(), "the provenance is for another archive");
    let sbom = read_json(&file(out, ".spdx.json"));
    assert_eq!(
        sbom["packages"][0]["checksums"][0]["checksumValue"],
        recorded.as_str(),
        "the SBOM is for another archive"
    );
    Some(recorded)
}

/// How often the main pgbin process calls each rename system call while
/// publishing a cached build into a fresh `--out`.
fn rename_calls(out: &Path) -> Vec<(String, usize)> {
    let log = out.with_extension("strace");
    let status = Command::new("strace")
        .args(["-qq", "-e", "trace=rename,renameat,renameat2", "-o"])
        .arg(&log)
        .arg(assert_cmd::cargo::cargo_bin("pgbin"))
        .arg("--repo")
        .arg(repo())
        .args(["build", "18.6", "--backend", "host", "--out"])
        .arg(out)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("strace runs (scripts/setup.sh installs it)");
    assert!(status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    ["rename", "renameat", "renameat2"]
        .iter()
        .map(|call| (call.to_string(), text.lines().filter(|l| l.starts_with(&format!("{call}("))).count()))
        .filter(|(_, n)| *n > 0)
        .collect()
}

#[test]
fn a_kill_at_any_rename_never_leaves_a_set_that_looks_whole_but_is_not() {
    let real = tempfile::tempdir().unwrap();
    build_18_6(real.path());
    let new_sha = whole_set(real.path()).expect("a normal build publishes a whole set");
    let counting = tempfile::tempdir().unwrap();
    let calls = rename_calls(&counting.path().join("out"));
    assert!(calls.iter().map(|(_, n)| n).sum::<usize>() >= 5, "publishing renames at least the five files: {calls:?}");
    let mut killed = 0;
    for (call, count) in &calls {
        for when in 1..=*count {
            let out = tempfile::tempdir().unwrap();
            let old_sha = earlier_set(real.path(), out.path());
            let status = Command::new("strace")
                .args(["-qq", "-o", "/dev/null", "-e"])
                .arg(format!("trace={call}"))
                .arg("-e")
                .arg(format!("inject={call}:signal=KILL:when={when}"))
                .arg(assert_cmd::cargo::cargo_bin("pgbin"))
                .arg("--repo")
                .arg(repo())
                .args(["build", "18.6", "--backend", "host", "--out"])
                .arg(out.path())
                .env("NO_COLOR", "1")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap();
            killed += usize::from(!status.success());
            match whole_set(out.path()) {
                None => {}
                Some(sha) => assert!(sha == old_sha || sha == new_sha, "killed at {call} #{when}: a third set {sha}"),
            }
        }
    }
    assert!(killed >= 5, "the injected kills took effect only {killed} times");
}

/// The build cache of this machine, as pgbin finds it without `--cache`.
fn shared_cache() -> PathBuf {
    if let Some(dir) = std::env::var_os("PGBIN_CACHE") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache"));
    base.join("pgbin")
}

#[test]
fn a_cached_archive_that_no_longer_matches_its_manifest_is_not_republished() {
    let real = tempfile::tempdir().unwrap();
    build_18_6(real.path());
    let manifest = read_json(&file(real.path(), ".manifest.json"));
    let key = manifest["cache_key"].as_str().unwrap();
    let (source_sha, source_name) =
        (manifest["source"]["sha256"].as_str().unwrap(), manifest["source"]["name"].as_str().unwrap());

    // A private cache holding the verified source and a copy of the cached
    // build whose archive was changed and its .sha256 rewritten to match,
    // so that only the manifest still records the genuine hash.
    let cache = tempfile::tempdir().unwrap();
    let source_dir = format!("sources/sha256/{source_sha}");
    std::fs::create_dir_all(cache.path().join(&source_dir)).unwrap();
    std::fs::copy(shared_cache().join(&source_dir).join(source_name), cache.path().join(&source_dir).join(source_name))
        .unwrap();
    let entry = cache.path().join("builds").join(key);
    std::fs::create_dir_all(&entry).unwrap();
    for suffix in ["", ".sha256", ".manifest.json"] {
        std::fs::copy(file(real.path(), suffix), file(&entry, suffix)).unwrap();
    }
    let mut archive = std::fs::read(file(&entry, "")).unwrap();
    let middle = archive.len() / 2;
    archive[middle] ^= 0x01;
    std::fs::write(file(&entry, ""), &archive).unwrap();
    let tampered = sha256_hex(&archive);
    std::fs::write(file(&entry, ".sha256"), format!("{tampered}  {ARCHIVE}\n")).unwrap();

    // pgbin must treat the entry as a miss and start building; it is
    // stopped (with its whole process group) as soon as it says so.
    let out = tempfile::tempdir().unwrap();
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("pgbin"))
        .arg("--repo")
        .arg(repo())
        .args(["build", "18.6", "--backend", "host", "--cache"])
        .arg(cache.path())
        .arg("--out")
        .arg(out.path())
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut said = Vec::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        let building = line.contains("building PostgreSQL 18.6");
        said.push(line);
        if building {
            // SAFETY: signals the process group this test started.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            break;
        }
    }
    let _ = child.wait();
    let text = said.join("\n");
    assert!(text.contains("does not match its manifest; building it again"), "{text}");
    assert!(text.contains("building PostgreSQL 18.6"), "{text}");
    for suffix in std::iter::once("").chain(SIDECARS) {
        assert!(!file(out.path(), suffix).exists(), "{ARCHIVE}{suffix} was published from a corrupt cache entry");
    }
}
