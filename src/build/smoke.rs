//! The smoke test: does an archive run, anywhere, on its own?
//!
//! The archive is extracted into a fresh temporary directory (never the path
//! it was built at). Before anything runs, every ELF file must declare the
//! instruction set of the triple in the archive's name ([`crate::build::isa`]).
//! Then every program runs with an empty environment (no
//! `LD_LIBRARY_PATH`): `ldd` must resolve every library, `initdb` creates a
//! UTF8 cluster, the server starts on a Unix socket in the temporary
//! directory, and SQL checks the version, encoding, PL/pgSQL, pgcrypto,
//! uuid-ossp, ICU collation, LZ4 TOAST compression and zstd WAL compression
//! (each where the build enabled it, read from `pg_config --configure`),
//! then the server shuts down cleanly. PostgreSQL refuses to run as root, so
//! as root the cluster runs as `nobody`.

use crate::util::shell::shell_quote;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Serialize;

use crate::util::error::{Classify, FailureKind};
use crate::util::io::{IoError, context};

/// The uid/gid used for the server when pgbin runs as root (`nobody`).
const UNPRIVILEGED: u32 = 65534;

/// Why one check failed: what was seen, in one line (the check's detail).
#[derive(Debug, Clone, PartialEq, Eq)]
struct CheckFailed(String);

impl From<String> for CheckFailed {
    fn from(detail: String) -> CheckFailed {
        CheckFailed(detail)
    }
}

/// One named check and its outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Name (`initdb`, `pgcrypto`).
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// What was seen.
    pub detail: String,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The archive tested.
    pub archive: String,
    /// Every check run, in order (stops at the first failure).
    pub checks: Vec<Check>,
}

impl Report {
    /// The first failed check.
    pub fn failure(&self) -> Option<&Check> {
        self.checks.iter().find(|c| !c.passed)
    }
}

/// Why the smoke test could not run at all (as opposed to a failed check).
#[derive(Debug, thiserror::Error)]
pub enum SmokeError {
    /// Local I/O.
    #[error(transparent)]
    Io(#[from] IoError),
    /// The archive is not in the expected shape.
    #[error("{0}")]
    Layout(String),
    /// The archive's executables cannot run here: no emulator for them.
    #[error("{0}")]
    Emulator(String),
    /// A check failed (only from [`smoke_passing`]).
    #[error("smoke test failed at check '{check}': {detail}")]
    Failed {
        /// The check.
        check: String,
        /// What was seen.
        detail: String,
    },
}

impl Classify for SmokeError {
    fn kind(&self) -> FailureKind {
        match self {
            SmokeError::Failed { .. } => FailureKind::Check,
            _ => FailureKind::Usage,
        }
    }
}

/// The target triple an archive name claims
/// (`postgresql-18.6.0-aarch64-unknown-linux-gnu` → `aarch64-unknown-linux-gnu`).
pub fn triple_from_archive_name(name: &str) -> Option<&str> {
    let rest = name.strip_prefix("postgresql-")?;
    let (_, triple) = rest.split_once('-')?;
    (!triple.is_empty()).then_some(triple)
}

/// The PostgreSQL version an archive name claims (`postgresql-18.6.0-…` → `18.6`).
pub fn version_from_archive_name(name: &str) -> Option<String> {
    let rest = name.strip_prefix("postgresql-")?;
    let version = rest.split('-').next()?;
    let parts: Vec<&str> = version.split('.').collect();
    match parts.as_slice() {
        [major, minor, "0"] => Some(format!("{major}.{minor}")),
        _ => None,
    }
}

struct Cluster {
    prefix: PathBuf,
    data: PathBuf,
    socket: PathBuf,
    port: u16,
    run_as: Option<u32>,
    started: bool,
    /// The server's supervised process, while it runs.
    server: Option<std::process::Child>,
}

impl Cluster {
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.prefix.join("bin").join(program));
        command.env_clear().stdin(Stdio::null());
        if let Some(id) = self.run_as {
            command.uid(id).gid(id);
        }
        command
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<String, CheckFailed> {
        let mut command = self.command(program);
        let output = crate::util::process::supervise(command.args(args))
            .and_then(|command| command.output())
            .map_err(|e| format!("cannot run {program}: {e}"))?;
        let stdout = String::from_utf8_lossy(&output.stdout).trim().to_string();
        if output.status.success() {
            Ok(stdout)
        } else {
            let stderr = String::from_utf8_lossy(&output.stderr);
            Err(CheckFailed(format!("{program} failed: {}", stderr.trim().lines().last().unwrap_or("no message"))))
        }
    }

    fn sql(&self, query: &str) -> Result<String, CheckFailed> {
        let port = self.port.to_string();
        let socket = self.socket.display().to_string();
        self.run(
            "psql",
            &[
                "-X",
                "-A",
                "-t",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                &socket,
                "-p",
                &port,
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-c",
                query,
            ],
        )
    }

    /// Runs the server in the foreground, supervised so that it dies with
    /// pgbin (`pg_ctl start` would detach it into its own session, out of
    /// reach), logging to `log`; waits up to 60 s until it is ready.
    fn start(&mut self, log: &Path) -> Result<(), CheckFailed> {
        let cannot = |e: std::io::Error| CheckFailed(format!("cannot start postgres: {e}"));
        let output = std::fs::File::create(log).map_err(cannot)?;
        let mut command = self.command("postgres");
        command
            .arg("-D")
            .arg(&self.data)
            .args(["-p", &self.port.to_string(), "-c", "listen_addresses="])
            .arg("-k")
            .arg(&self.socket)
            .stdout(output.try_clone().map_err(cannot)?)
            .stderr(output);
        crate::util::process::supervise(&mut command).map_err(cannot)?;
        let server = self.server.insert(command.spawn().map_err(cannot)?);
        self.started = true;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            // The postmaster's status line in postmaster.pid, as `pg_ctl -w` reads it.
            let pid_file = std::fs::read_to_string(self.data.join("postmaster.pid")).unwrap_or_default();
            if pid_file.lines().nth(7).is_some_and(|status| status.trim() == "ready") {
                return Ok(());
            }
            if let Ok(Some(status)) = server.try_wait() {
                self.started = false;
                self.server = None;
                let text = std::fs::read_to_string(log).unwrap_or_default();
                return Err(CheckFailed(format!("postgres {status}: {}", server_failure_line(&text))));
            }
            if std::time::Instant::now() >= deadline {
                return Err(CheckFailed("the server was not ready within 60 s".into()));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    fn stop(&mut self) -> Result<String, CheckFailed> {
        if !self.started {
            return Ok(String::new());
        }
        self.started = false;
        let data = self.data.display().to_string();
        let stopped = self.run("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"]);
        if let Some(mut server) = self.server.take() {
            if stopped.is_err() {
                let _ = server.kill();
            }
            let _ = server.wait();
        }
        stopped
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// The line of a server log that says why the server stopped: the first
/// FATAL or PANIC, else the last line.
fn server_failure_line(log: &str) -> &str {
    let lines = || log.lines().map(str::trim).filter(|l| !l.is_empty());
    lines().find(|l| l.contains("FATAL:") || l.contains("PANIC:")).or_else(|| lines().next_back()).unwrap_or("")
}

fn chown_tree(root: &Path, id: u32) -> Result<(), SmokeError> {
    for entry in walkdir::WalkDir::new(root) {
        let entry = entry.map_err(|e| IoError::new("cannot walk the extracted tree", e))?;
        std::os::unix::fs::lchown(entry.path(), Some(id), Some(id))
            .map_err(context(format!("cannot chown {}", entry.path().display())))?;
    }
    Ok(())
}

/// The longest path of a Unix socket PostgreSQL accepts: `sun_path` of
/// Linux's `sockaddr_un` is 108 bytes with the terminating NUL (PostgreSQL
/// refuses a longer one: "Unix-domain socket path ... is too long").
const SOCKET_PATH_MAX: usize = 107;

/// The directory the server's socket goes in: `run`, unless
/// `run/.s.PGSQL.<port>` would be too long for a Unix socket (a Nix build
/// without the sandbox runs in `/tmp/nix-build-<name>-0/`), then a new
/// short-named directory in `/tmp`, returned with it so that it lives as
/// long as the cluster.
fn socket_directory(run: &Path, is_root: bool) -> Result<(PathBuf, Option<tempfile::TempDir>), SmokeError> {
    let longest = run.join(".s.PGSQL.65535");
    if longest.as_os_str().len() <= SOCKET_PATH_MAX {
        return Ok((run.to_path_buf(), None));
    }
    let short = tempfile::Builder::new()
        .prefix("pgbin-socket-")
        .tempdir_in("/tmp")
        .map_err(context(format!("{} is too long for a Unix socket, and /tmp has no room", longest.display())))?;
    if is_root {
        chown_tree(short.path(), UNPRIVILEGED)?;
    }
    Ok((short.path().to_path_buf(), Some(short)))
}

fn free_port() -> Result<u16, SmokeError> {
    Ok(TcpListener::bind("127.0.0.1:0")
        .map_err(context("cannot find a free port"))?
        .local_addr()
        .map_err(context("cannot read the port"))?
        .port())
}

/// [`smoke`], with the first failed check as an error: for callers that
/// publish only what passed.
pub fn smoke_passing(archive: &Path, scratch_parent: &Path, interpreter: Option<&Path>) -> Result<Report, SmokeError> {
    smoke_passing_with(archive, scratch_parent, &Run { interpreter, ..Run::default() })
}

/// [`smoke_passing`] with every option.
pub fn smoke_passing_with(archive: &Path, scratch_parent: &Path, options: &Run) -> Result<Report, SmokeError> {
    let report = smoke_with(archive, scratch_parent, options)?;
    if let Some(failed) = report.failure() {
        return Err(SmokeError::Failed { check: failed.name.clone(), detail: failed.detail.clone() });
    }
    Ok(report)
}

/// Extracts `archive` under a fresh directory in `scratch_parent` and runs
/// every check. With `interpreter`, the extracted executables are first
/// pointed at that ELF interpreter (for build sandboxes such as Nix's, which
/// lack the standard one); their libraries must still come from `lib/`.
pub fn smoke(archive: &Path, scratch_parent: &Path, interpreter: Option<&Path>) -> Result<Report, SmokeError> {
    smoke_with(archive, scratch_parent, &Run { interpreter, ..Run::default() })
}

/// How the smoke test runs the archive's executables.
#[derive(Debug, Clone, Copy, Default)]
pub struct Run<'a> {
    /// Point the executables at this ELF interpreter for the test (see [`smoke`]).
    pub interpreter: Option<&'a Path>,
    /// The qemu-user emulator for executables of another architecture than
    /// this machine's; by default `qemu-<arch>` found on `PATH`.
    pub emulator: Option<&'a Path>,
    /// The target's root file system for the emulator (`-L`): where it
    /// finds the target's loader and C library, such as the sysroot a cross
    /// build unpacked. By default the multiarch ones at their standard paths.
    pub sysroot: Option<&'a Path>,
}

/// [`smoke`] with every option. An archive for another architecture runs
/// under qemu-user: each executable in `bin/` of the scratch copy is
/// replaced by a wrapper that execs the emulator on the real one, so that a
/// program executing another (initdb runs postgres) is emulated too, as
/// qemu-user follows no `execve` itself. Without [`Run::sysroot`] the
/// emulator gets no `-L`: the target's loader is the multiarch one at its
/// standard path.
pub fn smoke_with(archive: &Path, scratch_parent: &Path, options: &Run) -> Result<Report, SmokeError> {
    let interpreter = options.interpreter;
    let name = archive
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| SmokeError::Layout("archive has no file name".into()))?;
    let stem = name
        .strip_suffix(crate::build::package::TAR_GZ)
        .ok_or_else(|| SmokeError::Layout(format!("{name} is not a .tar.gz")))?;
    let unconventional = || SmokeError::Layout(format!("{name} does not follow postgresql-X.Y.0-<triple>.tar.gz"));
    let expected_version = version_from_archive_name(stem).ok_or_else(unconventional)?;
    let triple = triple_from_archive_name(stem).ok_or_else(unconventional)?;
    let isa = crate::data::isa::for_triple(triple)
        .ok_or_else(|| SmokeError::Layout(format!("{name}: no instruction set is known for target {triple}")))?;
    let scratch = crate::util::scratch::swept_dir(scratch_parent, "pgbin-smoke-")
        .map_err(context("cannot create a scratch directory"))?;
    // The archive is extracted into its own directory and the cluster runs
    // in another, so no member of the archive can stand where the server's
    // data directory, socket or log goes.
    let (extracted, run) = (scratch.path().join("archive"), scratch.path().join("run"));
    for dir in [&extracted, &run] {
        std::fs::create_dir(dir).map_err(context(format!("cannot create {}", dir.display())))?;
    }
    let file = std::fs::File::open(archive).map_err(context(format!("cannot open {}", archive.display())))?;
    crate::util::archive::extract(std::io::BufReader::new(flate2::read::MultiGzDecoder::new(file)), &extracted)
        .map_err(|e| SmokeError::Layout(format!("{name}: {e}")))?;
    let prefix = extracted.join(stem);
    if !prefix.join("bin/postgres").is_file() {
        return Err(SmokeError::Layout(format!("{name} has no {stem}/bin/postgres")));
    }
    let is_root = running_as_root();
    if is_root {
        std::fs::set_permissions(scratch.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .map_err(context("cannot chmod"))?;
        chown_tree(scratch.path(), UNPRIVILEGED)?;
    }
    let mut checks = Vec::new();
    let mut record = |name: &str, result: Result<String, CheckFailed>| -> bool {
        let passed = result.is_ok();
        checks.push(Check { name: name.to_string(), passed, detail: result.unwrap_or_else(|e| e.0) });
        passed
    };
    let report = |checks: Vec<Check>| Report { archive: archive.display().to_string(), checks };

    // Nothing runs before every ELF file is known to be the named target's.
    let isa_check = match crate::build::isa::check_tree(&extracted, isa) {
        Ok(record) => Ok(format!("{} ELF files are {} ({})", record.elf_files, record.elf, record.baseline)),
        Err(crate::build::isa::IsaError::Io(e)) => return Err(SmokeError::Io(e)),
        Err(e) => Err(CheckFailed(e.to_string())),
    };
    if !record("isa", isa_check) {
        return Ok(report(checks));
    }
    let emulator = if is_foreign(isa) { Some(find_emulator(isa, options.emulator)?) } else { None };
    if let Some(root) = options.sysroot.filter(|r| !r.is_dir()) {
        return Err(SmokeError::Emulator(format!("the target root {} is not a directory", root.display())));
    }
    // The server user may not reach a sysroot in root's cache: the target's
    // loader and C library are copied beside the scratch cluster.
    let target_root = match (options.sysroot, &emulator) {
        (Some(root), Some(_)) => {
            let copy = scratch.path().join(TARGET_ROOT_DIR);
            crate::util::fs::copy_tree_parts(root, &copy, &C_LIBRARY_DIRS)
                .map_err(context(format!("cannot copy the C library of {}", root.display())))?;
            link_interpreter_from_lib(&copy, isa.interpreter)
                .map_err(context(format!("cannot place {} in the target root", isa.interpreter)))?;
            Some(copy)
        }
        _ => None,
    };
    if let Some(emulator) = &emulator {
        if !record("emulator", wrap_executables(&prefix, emulator, target_root.as_deref())) {
            return Ok(report(checks));
        }
        if is_root {
            chown_tree(&prefix, UNPRIVILEGED)?;
        }
    }
    if let Some(interpreter) = interpreter
        && !record("interpreter", use_interpreter(&prefix, interpreter))
    {
        return Ok(report(checks));
    }
    let libraries = if emulator.is_some() { check_needed(&prefix) } else { check_ldd(&prefix) };
    if !record("ldd", libraries) {
        return Ok(report(checks));
    }
    let (socket, _short_socket_dir) = socket_directory(&run, is_root)?;
    let mut cluster = Cluster {
        data: run.join("data"),
        socket,
        port: free_port()?,
        prefix: prefix.clone(),
        run_as: is_root.then_some(UNPRIVILEGED),
        started: false,
        server: None,
    };
    let configure = match cluster.run("pg_config", &["--configure"]) {
        Ok(text) => text,
        Err(e) => {
            record("pg_config", Err(e));
            return Ok(report(checks));
        }
    };
    let has = |flag: &str| configure.contains(&format!("'{flag}'"));
    let data = cluster.data.display().to_string();
    if !record(
        "initdb",
        cluster
            .run("initdb", &["-D", &data, "-U", "postgres", "-E", "UTF8", "--locale=C", "--auth=trust"])
            .map(|_| "UTF8 cluster created".into()),
    ) {
        return Ok(report(checks));
    }
    let log = run.join("server.log").display().to_string();
    let started = cluster.start(Path::new(&log));
    if !record("start", started.map(|()| format!("listening on socket port {}", cluster.port))) {
        return Ok(report(checks));
    }
    let expect = |query: &str, wanted: &str| -> Result<String, CheckFailed> {
        let got = cluster.sql(query)?;
        if got == wanted { Ok(got) } else { Err(CheckFailed(format!("expected {wanted:?}, got {got:?}"))) }
    };
    let mut sql_checks: Vec<(&str, Result<String, CheckFailed>)> = vec![
        ("server_version", expect("SHOW server_version", &expected_version)),
        ("server_encoding", expect("SHOW server_encoding", "UTF8")),
        ("plpgsql", expect("SELECT lanname FROM pg_language WHERE lanname = 'plpgsql'", "plpgsql")),
        (
            "pgcrypto",
            expect(
                "CREATE EXTENSION pgcrypto; SELECT encode(digest('abc', 'sha256'), 'hex')",
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
        ),
        (
            "uuid-ossp",
            expect(
                "CREATE EXTENSION \"uuid-ossp\"; SELECT uuid_generate_v5(uuid_ns_url(), 'https://www.postgresql.org/')::text ~ '^[0-9a-f-]{36}$' AND substr(uuid_generate_v4()::text, 15, 1) = '4'",
                "t",
            ),
        ),
    ];
    if has("--with-icu") {
        sql_checks.push((
            "icu-collation",
            expect(
                "SELECT string_agg(x, ',' ORDER BY x COLLATE \"und-x-icu\") FROM (VALUES ('b'), ('A'), ('ä'), ('a')) v(x)",
                "a,A,ä,b",
            ),
        ));
    }
    if has("--with-lz4") {
        sql_checks.push((
            "lz4-toast",
            expect(
                "CREATE TABLE pgbin_lz4 (v text COMPRESSION lz4); INSERT INTO pgbin_lz4 SELECT repeat('pgbin', 10000); SELECT pg_column_compression(v) FROM pgbin_lz4",
                "lz4",
            ),
        ));
    }
    if has("--with-zstd") {
        sql_checks.push(("zstd-wal", expect("SET wal_compression = 'zstd'; SHOW wal_compression", "zstd")));
    }
    for (name, result) in sql_checks {
        if !record(name, result) {
            return Ok(report(checks));
        }
    }
    let stopped = cluster.stop();
    let log_text = final_log(Path::new(&log));
    let clean = stopped.and_then(|_| {
        if log_text.contains("PANIC") || !log_text.contains("database system is shut down") {
            Err(CheckFailed("the server log does not show a clean shutdown".to_string()))
        } else {
            Ok("database system is shut down".to_string())
        }
    });
    record("shutdown", clean);
    Ok(report(checks))
}

/// The server log once the postmaster has written its last line. PostgreSQL
/// removes `postmaster.pid` (which `pg_ctl stop -w` waits for) just before
/// it logs "database system is shut down", so the line may lag the stop by
/// a moment: wait up to five seconds for it.
fn final_log(log: &Path) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains("database system is shut down") || std::time::Instant::now() >= deadline {
            return text;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Whether this process runs with effective uid 0.
pub fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Points every executable under `bin/` at `interpreter` (this copy only).
fn use_interpreter(prefix: &Path, interpreter: &Path) -> Result<String, CheckFailed> {
    let mut patched = Vec::new();
    for entry in std::fs::read_dir(prefix.join("bin")).map_err(|e| format!("cannot list bin/: {e}"))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        // Only the archive's own executables are patched: never a file
        // reached through a link.
        if !std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
            continue;
        }
        let Ok(info) = crate::build::elf::inspect(&path) else { continue };
        if info.interpreter.is_some() {
            patched.push(path.strip_prefix(prefix).expect("listed under the prefix").to_path_buf());
        }
    }
    patched.sort();
    let loader = interpreter.to_str().ok_or_else(|| format!("{} is not a UTF-8 path", interpreter.display()))?;
    crate::build::relocate::patchelf(prefix, &["--set-interpreter", loader], &patched).map_err(|e| e.to_string())?;
    Ok(format!("{} executables use {} for this test only", patched.len(), interpreter.display()))
}

/// Gives a target root that keeps its loader in `lib/` only, as nixpkgs'
/// glibc does (it has no `lib64/`), the standard interpreter's path
/// (`/lib64/ld64.so.2`) as a link to that loader. A root that has the path,
/// or no such loader, is left as it is (the smoke test then names what is
/// missing).
fn link_interpreter_from_lib(root: &Path, interpreter: &str) -> std::io::Result<()> {
    let standard = root.join(interpreter.trim_start_matches('/'));
    let Some(name) = Path::new(interpreter).file_name() else { return Ok(()) };
    if std::fs::symlink_metadata(&standard).is_ok() || !root.join("lib").join(name).is_file() {
        return Ok(());
    }
    let directory = standard.parent().expect("an interpreter path has a directory");
    std::fs::create_dir_all(directory)?;
    let depth = directory.strip_prefix(root).map_or(0, |d| d.components().count());
    let mut target = PathBuf::new();
    (0..depth).for_each(|_| target.push(".."));
    std::os::unix::fs::symlink(target.join("lib").join(name), &standard)
}

/// Whether executables of `isa` need an emulator here: another machine,
/// class or byte order than this process's own.
fn is_foreign(isa: &crate::data::isa::Isa) -> bool {
    let Ok(exe) = std::fs::read("/proc/self/exe") else { return true };
    match goblin::elf::Elf::parse_header(&exe) {
        Ok(header) => {
            header.e_machine != isa.machine
                || (header.e_ident[goblin::elf::header::EI_CLASS] == goblin::elf::header::ELFCLASS64) != isa.class64
                || (header.e_ident[goblin::elf::header::EI_DATA] == goblin::elf::header::ELFDATA2LSB)
                    != isa.little_endian
        }
        Err(_) => true,
    }
}

/// Where the smoke test's scratch directory holds the target's C library.
const TARGET_ROOT_DIR: &str = "target-root";

/// The top-level directories of a target root that hold the loader and the
/// C library (Debian's libc6 installs into `/lib/<multiarch>`, and each
/// loader path, `/lib/ld-linux-aarch64.so.1` or `/lib64/ld.so.1`, links there).
const C_LIBRARY_DIRS: [&str; 4] = ["lib", "lib32", "lib64", "libx32"];

/// The Debian package that provides the qemu-user emulators.
pub const QEMU_PACKAGE: &str = "qemu-user";

/// The emulator for `isa`: `explicit`, which must be an executable file,
/// or `qemu-<arch>` on `PATH`.
fn find_emulator(isa: &crate::data::isa::Isa, explicit: Option<&Path>) -> Result<PathBuf, SmokeError> {
    use std::os::unix::fs::PermissionsExt;
    let runnable =
        |path: &Path| std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if let Some(path) = explicit {
        if !runnable(path) {
            return Err(SmokeError::Emulator(format!("the emulator {} is not an executable file", path.display())));
        }
        return std::path::absolute(path).map_err(|e| SmokeError::Io(IoError::new("cannot resolve the emulator", e)));
    }
    let program = format!("qemu-{}", isa.qemu);
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(&program))
        .find(|path| runnable(path))
        .ok_or_else(|| {
            SmokeError::Emulator(format!(
                "{} executables need an emulator here, and {program} is not on PATH: install the {QEMU_PACKAGE} package, or pass --emulator PATH",
                isa.triple
            ))
        })
}

/// The directory of the scratch copy that holds the real executables while
/// `bin/` holds their wrappers: beside `bin/`, so that their `$ORIGIN/../lib`
/// RUNPATH still names the archive's `lib/`.
const EMULATED_DIR: &str = "bin.emulated";

/// Replaces each ELF executable in `bin/` (regular files with an execute
/// bit, dynamic or static) by a shell
/// wrapper that execs `emulator` on the real file, moved into
/// [`EMULATED_DIR`]. `-0 "$0"` keeps the wrapper's path as the program's
/// `argv[0]`, from which PostgreSQL finds its other programs and `share/`.
fn wrap_executables(prefix: &Path, emulator: &Path, sysroot: Option<&Path>) -> Result<String, CheckFailed> {
    use std::os::unix::fs::PermissionsExt;
    let real_dir = prefix.join(EMULATED_DIR);
    std::fs::create_dir(&real_dir).map_err(|e| format!("cannot create {EMULATED_DIR}/: {e}"))?;
    let emulator_text = emulator.to_str().ok_or_else(|| format!("{} is not a UTF-8 path", emulator.display()))?;
    let root_option = match sysroot {
        Some(root) => {
            let root = std::path::absolute(root).map_err(|e| format!("cannot resolve {}: {e}", root.display()))?;
            let text = root.to_str().ok_or_else(|| format!("{} is not a UTF-8 path", root.display()))?;
            format!(" -L {}", shell_quote(text))
        }
        None => String::new(),
    };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(prefix.join("bin")).map_err(|e| format!("cannot list bin/: {e}"))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        let executable =
            std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
        if executable && crate::build::elf::file_is_elf(&path) {
            names.push(path.file_name().expect("listed in bin/").to_owned());
        }
    }
    names.sort();
    for name in &names {
        let (wrapper, real) = (prefix.join("bin").join(name), real_dir.join(name));
        let real_text = real.to_str().ok_or_else(|| format!("{} is not a UTF-8 path", real.display()))?;
        std::fs::rename(&wrapper, &real).map_err(|e| format!("cannot move {}: {e}", wrapper.display()))?;
        let script = format!(
            "#!/bin/sh\nexec {}{root_option} -0 \"$0\" {} \"$@\"\n",
            shell_quote(emulator_text),
            shell_quote(real_text)
        );
        std::fs::write(&wrapper, script).map_err(|e| format!("cannot write {}: {e}", wrapper.display()))?;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("cannot chmod {}: {e}", wrapper.display()))?;
    }
    let with_root = sysroot.map_or_else(String::new, |r| format!(" with the target root {}", r.display()));
    Ok(format!("{} executables run under {}{with_root}", names.len(), emulator.display()))
}

/// For an archive that cannot run `ldd` here: every library an ELF file
/// under `bin/` or `lib/` needs, outside the C library, is in the
/// archive's `lib/`.
fn check_needed(prefix: &Path) -> Result<String, CheckFailed> {
    let lib = std::fs::canonicalize(prefix.join("lib")).map_err(|e| format!("the archive has no lib/: {e}"))?;
    let mut count = 0;
    for dir in ["bin", EMULATED_DIR, "lib"] {
        for entry in walkdir::WalkDir::new(prefix.join(dir)).sort_by_file_name() {
            let entry = entry.map_err(|e| e.to_string())?;
            if !entry.file_type().is_file() || !crate::build::elf::file_is_elf(entry.path()) {
                continue;
            }
            let relative = entry.path().strip_prefix(prefix).unwrap_or(entry.path());
            let info = crate::build::elf::inspect(entry.path()).map_err(|e| e.to_string())?;
            let inside = |needed: &str| std::fs::canonicalize(lib.join(needed)).is_ok_and(|p| p.starts_with(&lib));
            if let Some(missing) = info.needed.iter().find(|n| !crate::build::relocate::is_libc(n) && !inside(n)) {
                return Err(CheckFailed(format!("{}: {missing} is not in the archive's lib/", relative.display())));
            }
            count += 1;
        }
    }
    Ok(format!("{count} ELF files; every library but libc is in the archive's lib/"))
}

/// Every ELF file under `bin/` and `lib/` must have all libraries found by
/// `ldd`, with an empty environment, and every library outside the C
/// library must resolve into the archive's own `lib/`.
fn check_ldd(prefix: &Path) -> Result<String, CheckFailed> {
    let lib = std::fs::canonicalize(prefix.join("lib")).map_err(|e| format!("the archive has no lib/: {e}"))?;
    let mut count = 0;
    for dir in ["bin", "lib"] {
        for entry in walkdir::WalkDir::new(prefix.join(dir)).sort_by_file_name() {
            let entry = entry.map_err(|e| e.to_string())?;
            if !entry.file_type().is_file() || !crate::build::elf::file_is_elf(entry.path()) {
                continue;
            }
            let output = Command::new("ldd")
                .arg(entry.path())
                .env_clear()
                .output()
                .map_err(|e| format!("cannot run ldd: {e}"))?;
            let text = String::from_utf8_lossy(&output.stdout);
            let relative = entry.path().strip_prefix(prefix).unwrap_or(entry.path());
            for line in text.lines() {
                if line.contains("not found") {
                    return Err(CheckFailed(format!("{}: {}", relative.display(), line.trim())));
                }
                let Some((name, resolved)) = line.trim().split_once(" => ") else { continue };
                let path = resolved.split(" (").next().unwrap_or("");
                let inside = std::fs::canonicalize(path).is_ok_and(|p| p.starts_with(&lib));
                // The loader is listed by its path ("/lib64/ld-… => …").
                let is_loader = name.starts_with('/');
                if !crate::build::relocate::is_libc(name) && !is_loader && !inside {
                    return Err(CheckFailed(format!(
                        "{}: {name} resolves to {path}, outside the archive's lib/",
                        relative.display()
                    )));
                }
            }
            count += 1;
        }
    }
    Ok(format!("{count} ELF files; every library resolved, all but libc from the archive's lib/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_start_is_reported_by_its_fatal_line() {
        let log = "2026-12-02 LOG:  starting PostgreSQL 18.6\n\
                   2026-12-02 FATAL:  Unix-domain socket path \"/tmp/x/.s.PGSQL.5432\" is too long\n\
                   2026-12-02 LOG:  database system is shut down\n";
        assert!(server_failure_line(log).contains("is too long"));
        assert_eq!(server_failure_line("a\nlast line\n\n"), "last line");
        assert_eq!(server_failure_line(""), "");
    }

    #[test]
    fn a_socket_too_deep_for_sockaddr_un_goes_into_a_short_directory() {
        let shallow = tempfile::tempdir().unwrap();
        let (socket, kept) = socket_directory(shallow.path(), false).unwrap();
        assert_eq!(socket, shallow.path());
        assert!(kept.is_none());
        let deep = shallow.path().join("d".repeat(100));
        let (socket, kept) = socket_directory(&deep, false).unwrap();
        assert!(socket.join(".s.PGSQL.65535").as_os_str().len() <= SOCKET_PATH_MAX, "{}", socket.display());
        assert!(socket.is_dir() && kept.is_some());
        drop(kept);
        assert!(!socket.exists(), "removed with the cluster");
    }

    #[test]
    fn a_root_with_its_loader_in_lib_only_gets_the_standard_path_linked() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("lib")).unwrap();
        std::fs::write(root.path().join("lib/ld64.so.2"), b"loader").unwrap();
        link_interpreter_from_lib(root.path(), "/lib64/ld64.so.2").unwrap();
        assert_eq!(std::fs::read_link(root.path().join("lib64/ld64.so.2")).unwrap(), Path::new("../lib/ld64.so.2"));
        assert_eq!(std::fs::read(root.path().join("lib64/ld64.so.2")).unwrap(), b"loader");
        // A path already there, or no loader in lib/, is left alone.
        link_interpreter_from_lib(root.path(), "/lib/ld64.so.2").unwrap();
        assert!(root.path().join("lib/ld64.so.2").is_file());
        link_interpreter_from_lib(root.path(), "/lib64/ld-linux-x86-64.so.2").unwrap();
        assert!(std::fs::symlink_metadata(root.path().join("lib64/ld-linux-x86-64.so.2")).is_err());
    }

    /// Debian's qemu-aarch64 (package qemu-user, installed by scripts/setup.sh).
    fn qemu_aarch64() -> PathBuf {
        let isa = crate::data::isa::for_triple("aarch64-unknown-linux-gnu").unwrap();
        find_emulator(isa, None).unwrap_or_else(|e| panic!("{e} (scripts/setup.sh installs it)"))
    }

    #[test]
    fn wrapped_executables_run_emulated_with_the_wrapper_as_argv0_and_their_origin_beside_bin() {
        use std::os::unix::fs::PermissionsExt;
        let emulator = qemu_aarch64();
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("it's here");
        std::fs::create_dir_all(prefix.join("bin")).unwrap();
        // tests/fixtures/isa/README.md: a static AArch64 program that prints
        // its argv[0] and /proc/self/exe.
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/isa/aarch64-argv0.elf");
        std::fs::copy(&fixture, prefix.join("bin/prog")).unwrap();
        std::fs::set_permissions(prefix.join("bin/prog"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(prefix.join("bin/script"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(prefix.join("bin/script"), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            wrap_executables(&prefix, &emulator, None).unwrap(),
            format!("1 executables run under {}", emulator.display())
        );
        let output = Command::new(prefix.join("bin/prog")).env_clear().output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let text = String::from_utf8(output.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [prefix.join("bin/prog").to_str().unwrap(), prefix.join("bin.emulated/prog").to_str().unwrap()]
        );
        assert_eq!(std::fs::read_to_string(prefix.join("bin/script")).unwrap(), "#!/bin/sh\n", "scripts stay");
    }

    #[test]
    fn an_explicit_emulator_must_be_an_executable_file() {
        let isa = crate::data::isa::for_triple("armv7-unknown-linux-gnueabihf").unwrap();
        let error = find_emulator(isa, Some(Path::new("/nonexistent/qemu-arm"))).unwrap_err();
        assert_eq!(error.to_string(), "the emulator /nonexistent/qemu-arm is not an executable file");
        assert_eq!(error.kind(), FailureKind::Usage);
        assert_eq!(shell_quote("a'b"), "'a'\\''b'");
    }

    #[test]
    fn archive_names_give_the_version() {
        assert_eq!(version_from_archive_name("postgresql-18.6.0-x86_64-unknown-linux-gnu").as_deref(), Some("18.6"));
        assert_eq!(version_from_archive_name("postgresql-18.6-x86_64-unknown-linux-gnu"), None);
        assert_eq!(version_from_archive_name("mysql-8.0.0-x"), None);
        assert_eq!(
            triple_from_archive_name("postgresql-18.6.0-armv7-unknown-linux-gnueabihf"),
            Some("armv7-unknown-linux-gnueabihf")
        );
        assert_eq!(triple_from_archive_name("postgresql-18.6.0-"), None);
        assert_eq!(triple_from_archive_name("postgresql-18.6.0"), None);
    }
}
