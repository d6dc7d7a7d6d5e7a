//! A hostile process environment end to end: pgbin killed with SIGKILL in
//! the middle of a build, a download and a smoke test (nothing of it may
//! keep running, and the next pgbin removes what it left in the cache, but
//! not what a running pgbin is using); a full disk and a truncated archive
//! reported with their cause; file names that are not UTF-8 kept exact.
//!
//! The build tests compile PostgreSQL 18.6 from the verified tarball (from
//! a cache the tests share, fetched through the configured Debian mirror)
//! until the compilers run, then kill pgbin.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sequoia_openpgp::serialize::Serialize as _;

use crate::util::keys::make_cert;
use crate::util::{json, one_line_error, pgbin, repo, scratch_repo};

const ARCHIVE: &str = "postgresql-18.6.0-x86_64-unknown-linux-gnu.tar.gz";

/// How long what a killed pgbin started may take to disappear.
const GRACE: Duration = Duration::from_secs(30);

/// The shared cache the end-to-end tests fetch the real tarballs into.
fn shared_cache() -> PathBuf {
    std::env::temp_dir().join("pgbin-test-cache")
}

/// The verified 18.6 tarball in the shared cache.
fn tarball_18_6() -> PathBuf {
    let output = pgbin().args(["fetch", "18.6", "--cache"]).arg(shared_cache()).output().unwrap();
    assert!(output.status.success(), "fetch 18.6: {}", String::from_utf8_lossy(&output.stderr));
    PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
}

/// A fresh cache that already holds the verified 18.6 tarball.
fn cache_with_18_6() -> tempfile::TempDir {
    let tarball = tarball_18_6();
    let cache = tempfile::tempdir().unwrap();
    let relative = tarball.strip_prefix(shared_cache()).unwrap();
    std::fs::create_dir_all(cache.path().join(relative).parent().unwrap()).unwrap();
    std::fs::copy(&tarball, cache.path().join(relative)).unwrap();
    cache
}

/// The real binary as a plain process, for running it in the background.
fn pgbin_process(repo: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pgbin"));
    command.arg("--repo").arg(repo).env("NO_COLOR", "1").stdin(Stdio::null());
    command
}

/// Live processes (zombies are not) working inside `dir`: their working
/// directory is under it, or their command line names it. Pid and name.
fn processes_in(dir: &Path) -> Vec<(i32, String)> {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let needle = dir.as_os_str().as_bytes();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        let Some((name, state)) = stat.split_once(" (").and_then(|(_, rest)| rest.rsplit_once(") ")) else { continue };
        if state.starts_with('Z') {
            continue;
        }
        let cwd = std::fs::read_link(entry.path().join("cwd")).is_ok_and(|cwd| cwd.starts_with(&dir));
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if cwd || cmdline.windows(needle.len()).any(|w| w == needle) {
            found.push((pid, name.to_string()));
        }
    }
    found
}

/// Waits until nothing works inside `dir` any more, up to [`GRACE`];
/// returns what is still there.
fn left_running(dir: &Path) -> Vec<(i32, String)> {
    let deadline = Instant::now() + GRACE;
    loop {
        let left = processes_in(dir);
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A pgbin running in the background. Dropping it kills it and every
/// process still working inside `scope`, so that a failing test leaves
/// nothing compiling.
struct Background {
    child: Child,
    scope: PathBuf,
    stderr: PathBuf,
}

impl Background {
    fn spawn(mut command: Command, scope: &Path, stderr: &Path) -> Background {
        let file = std::fs::File::create(stderr).unwrap();
        let child = command.stdout(Stdio::null()).stderr(file).spawn().unwrap();
        Background { child, scope: scope.to_path_buf(), stderr: stderr.to_path_buf() }
    }

    /// Panics with pgbin's output if it has ended.
    fn assert_running(&mut self, waiting_for: &str) {
        if let Some(status) = self.child.try_wait().unwrap() {
            let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
            panic!("pgbin ended ({status}) before {waiting_for}: {text}");
        }
    }

    /// Kills pgbin with SIGKILL (no handler can run) and reaps it.
    fn kill_9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for (pid, _) in processes_in(&self.scope) {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// Starts `pgbin build 18.6` with the host backend in `cache` and waits
/// until it compiles: sub-makes below the top `make`, and a compiler.
fn build_until_compiling(cache: &Path, logs: &Path) -> Background {
    let mut command = pgbin_process(&repo());
    command.args(["build", "18.6", "--backend", "host", "--jobs", "2", "--cache"]).arg(cache);
    command.arg("--out").arg(logs.join("out"));
    let mut build = Background::spawn(command, cache, &logs.join("build.stderr"));
    let deadline = Instant::now() + Duration::from_secs(20 * 60);
    loop {
        let running = processes_in(cache);
        let makes = running.iter().filter(|(_, name)| name == "make").count();
        if makes >= 2 && running.iter().any(|(_, name)| name == "cc1") {
            return build;
        }
        build.assert_running("compiling");
        assert!(Instant::now() < deadline, "no compiler after 20 minutes: {running:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The names in `dir` that start with `prefix`.
fn entries(dir: &Path, prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|read| read.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.retain(|n| n.starts_with(prefix));
    names.sort();
    names
}

/// The old code ran make in pgbin's own process group with nothing tying
/// it to pgbin: after `kill -9`, make and its sub-makes went on compiling
/// for minutes, and the `.work-*` directory stayed in the cache for ever.
#[test]
fn a_killed_build_takes_its_processes_along_and_the_next_start_removes_its_work_directory() {
    let cache = cache_with_18_6();
    let logs = tempfile::tempdir().unwrap();
    let mut build = build_until_compiling(cache.path(), logs.path());
    build.kill_9();
    let left = left_running(cache.path());
    assert!(left.is_empty(), "still running {}s after pgbin was killed: {left:?}", GRACE.as_secs());

    let builds = cache.path().join("builds");
    assert!(!entries(&builds, ".work-").is_empty(), "the killed build left its work directory");
    let next = pgbin().args(["fetch", "18.6", "--cache"]).arg(cache.path()).output().unwrap();
    assert!(next.status.success(), "{}", String::from_utf8_lossy(&next.stderr));
    assert!(String::from_utf8_lossy(&next.stderr).contains("left in"), "the sweep is reported");
    assert_eq!(entries(&builds, ".work-"), Vec::<String>::new(), "the next start removes the work directory");
}

/// The sweep must tell a running build from a dead one. The old code never
/// swept: the planted leftover of a killed build stayed (the running
/// build's directory stayed too, for the wrong reason).
#[test]
fn the_sweep_spares_the_work_directory_of_a_running_build() {
    let cache = cache_with_18_6();
    let logs = tempfile::tempdir().unwrap();
    let mut build = build_until_compiling(cache.path(), logs.path());
    let builds = cache.path().join("builds");
    let live = entries(&builds, ".work-");
    assert!(!live.is_empty(), "the running build has a work directory");
    // What a build killed earlier leaves: its directory, its lock file, free.
    let dead = builds.join(".work-dead0001");
    std::fs::create_dir_all(dead.join("build/src")).unwrap();
    std::fs::write(dead.join("build/src/x.o"), b"object").unwrap();
    std::fs::write(builds.join(".work-dead0001.lock"), b"").unwrap();

    let other = pgbin().args(["fetch", "18.6", "--cache"]).arg(cache.path()).output().unwrap();
    assert!(other.status.success(), "{}", String::from_utf8_lossy(&other.stderr));
    assert!(!dead.exists(), "the other pgbin removes the dead build's work directory");
    assert_eq!(entries(&builds, ".work-"), live, "and nothing of the running build");
    build.assert_running("the end of the test");
    assert!(processes_in(cache.path()).iter().any(|(_, name)| name == "cc1"), "the build goes on compiling");
    build.kill_9();
    assert_eq!(left_running(cache.path()), Vec::new());
}

/// A mirror that sends the headers of the 18.6 tarball and its first
/// megabyte, then nothing (the download stays in progress).
fn stalling_mirror(size: u64) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut stream in listener.incoming().filter_map(Result::ok) {
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
                request.push(byte[0]);
            }
            let head =
                format!("HTTP/1.1 200 OK\r\nContent-Length: {size}\r\nContent-Type: application/x-bzip2\r\n\r\n");
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&vec![0u8; 1 << 20]);
            let _ = stream.flush();
            std::thread::sleep(Duration::from_secs(600));
        }
    });
    url
}

/// The old code downloaded into a plain temporary file: killed, it left
/// `.download-*` in the cache for ever.
#[test]
fn a_killed_download_is_removed_at_the_next_start() {
    let scratch = scratch_repo();
    let lock_path = scratch.path().join("data/sources.lock.json");
    let mut lock: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&lock_path).unwrap()).unwrap();
    let entry = lock["sources"].as_array_mut().unwrap().iter_mut().find(|s| s["version"] == "18.6").unwrap();
    // No upstream to reach: the download comes from the stalling mirror.
    entry["urls"] = serde_json::json!(["https://127.0.0.1:1/v18.6/postgresql-18.6.tar.bz2"]);
    let (size, sha256) = (entry["size"].as_u64().unwrap(), entry["sha256"].as_str().unwrap().to_string());
    std::fs::write(&lock_path, serde_json::to_string_pretty(&lock).unwrap() + "\n").unwrap();

    let cache = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let mut command = pgbin_process(scratch.path());
    command.args(["fetch", "18.6", "--cache"]).arg(cache.path()).env("PGBIN_DEBIAN_MIRROR", stalling_mirror(size));
    let mut fetch = Background::spawn(command, cache.path(), &logs.path().join("fetch.stderr"));
    let dir = cache.path().join("sources/sha256").join(&sha256);
    let deadline = Instant::now() + Duration::from_secs(60);
    let partial = loop {
        let partial = entries(&dir, ".download-").into_iter().find(|n| !n.ends_with(".lock"));
        if let Some(name) = partial.filter(|n| std::fs::metadata(dir.join(n)).is_ok_and(|m| m.len() >= 1 << 20)) {
            break name;
        }
        fetch.assert_running("the download started");
        assert!(Instant::now() < deadline, "no download in progress after 60 s");
        std::thread::sleep(Duration::from_millis(100));
    };
    fetch.kill_9();
    assert!(dir.join(&partial).is_file(), "the killed download left its file");

    let tarball = tarball_18_6();
    std::fs::copy(&tarball, dir.join(tarball.file_name().unwrap())).unwrap();
    let next = pgbin().args(["fetch", "18.6", "--cache"]).arg(cache.path()).output().unwrap();
    assert!(next.status.success(), "{}", String::from_utf8_lossy(&next.stderr));
    assert_eq!(entries(&dir, ".download-"), Vec::<String>::new(), "the next start removes the partial download");
}

/// The old code started the server with `pg_ctl start`, which detaches it
/// into its own session: after `kill -9` of pgbin the server and its
/// backends went on running in the deleted-on-drop scratch directory.
#[test]
fn a_killed_smoke_test_takes_its_server_along() {
    let out = tempfile::tempdir().unwrap();
    let answer = json(
        &pgbin().args(["build", "18.6", "--backend", "host", "--json", "--out"]).arg(out.path()).output().unwrap(),
    );
    let archive = PathBuf::from(answer["archive"].as_str().unwrap());
    for attempt in 1..=3 {
        let scratch = tempfile::tempdir().unwrap();
        let mut command = pgbin_process(&repo());
        command.arg("smoke").arg(&archive).env("TMPDIR", scratch.path());
        let mut smoke = Background::spawn(command, scratch.path(), &out.path().join("smoke.stderr"));
        let deadline = Instant::now() + Duration::from_secs(120);
        let ready = loop {
            let logs = entries(scratch.path(), "pgbin-smoke-");
            let ready = logs.iter().any(|dir| {
                let log = std::fs::read_to_string(scratch.path().join(dir).join("run/server.log")).unwrap_or_default();
                log.contains("ready to accept connections")
            });
            if ready || smoke.child.try_wait().unwrap().is_some() {
                break ready;
            }
            assert!(Instant::now() < deadline, "the smoke server did not start within 120 s");
            std::thread::sleep(Duration::from_millis(20));
        };
        if !ready || smoke.child.try_wait().unwrap().is_some() {
            assert!(attempt < 3, "the smoke test ended before it could be killed, three times");
            continue;
        }
        smoke.kill_9();
        let left = left_running(scratch.path());
        assert!(left.is_empty(), "still running {}s after pgbin was killed: {left:?}", GRACE.as_secs());
        return;
    }
}

/// A `.tar.gz` in `dir` named like a pgbin archive, holding `size` bytes
/// that do not compress.
fn incompressible_archive(dir: &Path, size: usize) -> PathBuf {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let content: Vec<u8> = (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let path = dir.join(ARCHIVE);
    let gzip = flate2::write::GzEncoder::new(std::fs::File::create(&path).unwrap(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(gzip);
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o755);
    let top = ARCHIVE.trim_end_matches(".tar.gz");
    builder.append_data(&mut header, format!("{top}/bin/postgres"), &content[..]).unwrap();
    builder.into_inner().unwrap().finish().unwrap();
    path
}

/// Runs pgbin with `args` (and `TMPDIR` when given): it must fail with
/// exit 2 and one line that contains `cause`.
fn assert_fails_saying(args: &[&OsStr], tmpdir: Option<&Path>, cause: &str) {
    let mut command = pgbin();
    command.args(args);
    if let Some(tmpdir) = tmpdir {
        command.env("TMPDIR", tmpdir);
    }
    let output = command.output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    let line = one_line_error(&output);
    assert!(line.contains(cause), "{args:?}: expected '{cause}' in: {line}");
}

/// A small tmpfs, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a 1 MiB tmpfs; `None` (with the reason printed) where this
    /// user cannot mount. As root, failing to mount fails the test.
    fn mount() -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let output = Command::new("mount").args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"]).arg(dir.path()).output();
        match output {
            Ok(output) if output.status.success() => Some(Tmpfs { dir }),
            failed => {
                let reason = match failed {
                    Ok(output) => String::from_utf8_lossy(&output.stderr).into_owned(),
                    Err(e) => e.to_string(),
                };
                // SAFETY: geteuid has no preconditions.
                assert_ne!(unsafe { libc::geteuid() }, 0, "root cannot mount a tmpfs: {reason}");
                eprintln!("skipped: cannot mount a tmpfs as this user: {reason}");
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// The old code reported a full disk while extracting as "failed to unpack
/// `<path>`" only: the tar crate's error hides its cause.
#[test]
fn a_full_disk_is_reported_as_such() {
    let Some(full) = Tmpfs::mount() else { return };
    let dir = tempfile::tempdir().unwrap();
    let archive = incompressible_archive(dir.path(), 3 << 20);
    let archive = archive.as_os_str();
    let tmp = Some(full.dir.path());
    let cause = "No space left on device";
    // hash and diff read an archive this small in memory: a full disk does
    // not concern them. Above the memory limit they extract it, and say so.
    for args in [&["hash".as_ref(), archive][..], &["diff".as_ref(), archive, archive]] {
        let output = pgbin().args(args).env("TMPDIR", full.dir.path()).output().unwrap();
        assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    }
    for args in [&["hash".as_ref(), archive][..], &["diff".as_ref(), archive, archive]] {
        let output = pgbin()
            .args(args)
            .env("TMPDIR", full.dir.path())
            .env("PGBIN_ARCHIVE_MEMORY_LIMIT", "1048576")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(one_line_error(&output).contains(cause), "{args:?}: {}", one_line_error(&output));
    }
    assert_fails_saying(&["smoke".as_ref(), archive], tmp, cause);
}

/// The old code reported a truncated archive as "failed to unpack
/// `<path>`" only, exactly like a full disk.
#[test]
fn a_truncated_archive_is_reported_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let archive = incompressible_archive(dir.path(), 300_000);
    let bytes = std::fs::read(&archive).unwrap();
    std::fs::write(&archive, &bytes[..bytes.len() / 2]).unwrap();
    let whole = tempfile::tempdir().unwrap();
    let other = incompressible_archive(whole.path(), 1000);
    let (archive, other) = (archive.as_os_str(), other.as_os_str());
    let cause = "unexpected end of file";
    assert_fails_saying(&["hash".as_ref(), archive], None, cause);
    assert_fails_saying(&["diff".as_ref(), other, archive], None, cause);
    assert_fails_saying(&["smoke".as_ref(), archive], None, cause);
}

/// The old code built the signature's name from the lossy text of the
/// path: `postgresql-<U+FFFD>.tar.gz.asc`, not beside the file (and
/// `--json` panicked on the path).
#[test]
fn sign_writes_the_signature_beside_a_file_whose_name_is_not_utf8() {
    let dir = tempfile::tempdir().unwrap();
    let name = b"postgresql-18.6.0-\xff.tar.gz";
    let artifact = dir.path().join(OsStr::from_bytes(name));
    std::fs::write(&artifact, b"archive bytes").unwrap();
    let cert = make_cert(std::time::SystemTime::now() - Duration::from_secs(60), None);
    let key = dir.path().join("release.key");
    let mut bytes = Vec::new();
    cert.as_tsk().serialize(&mut bytes).unwrap();
    std::fs::write(&key, bytes).unwrap();

    let sign = |json: bool| {
        let mut command = pgbin();
        command.arg("sign").arg(&artifact).arg("--key").arg(&key);
        if json {
            command.arg("--json");
        }
        let output = command.output().unwrap();
        assert!(output.status.success(), "json: {json}: {}", String::from_utf8_lossy(&output.stderr));
        output
    };
    sign(false);
    let signature = dir.path().join(OsStr::from_bytes(&[&name[..], b".asc"].concat()));
    assert!(signature.is_file(), "no {} beside the file", signature.display());
    let written: Vec<String> = entries(dir.path(), "").into_iter().filter(|n| n.ends_with(".asc")).collect();
    assert_eq!(written.len(), 1, "{written:?}");
    let answer = json(&sign(true));
    assert!(answer[0]["signature"].as_str().unwrap().ends_with("postgresql-18.6.0-\u{fffd}.tar.gz.asc"), "{answer}");
}

/// The old code indexed trees by the lossy text of each path and opened
/// files by it: a name that is not UTF-8 failed with "No such file or
/// directory" (exit 2) instead of being compared.
#[test]
fn diff_compares_files_whose_names_are_not_utf8() {
    let dir = tempfile::tempdir().unwrap();
    for (side, content) in [("a", "one\n"), ("b", "two\n")] {
        std::fs::create_dir_all(dir.path().join(side)).unwrap();
        std::fs::write(dir.path().join(side).join(OsStr::from_bytes(b"lib\xff.so")), content).unwrap();
    }
    let output = pgbin().arg("diff").arg(dir.path().join("a")).arg(dir.path().join("b")).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("[content] lib\u{fffd}.so: text: 1 line(s) removed, 1 added"), "{text}");
}
