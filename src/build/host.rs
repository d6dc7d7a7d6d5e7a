//! The host backend: build PostgreSQL with the machine's own toolchain.
//!
//! Same recipe as the Nix builder, from the same data: unpack the verified
//! tarball into a fresh directory, `configure` with the target's flags and a
//! fixed, neutral prefix, `make world-bin`, and `make install-world-bin`
//! with `DESTDIR` into a staging directory. The prefix baked into the
//! binaries is the same on every machine, so no build or staging path ends
//! up in the output. The environment is cleared and pinned (locale, time
//! zone, `SOURCE_DATE_EPOCH`), and every line of output goes to a log file.

use crate::build::cross::{CrossBuild, CrossError};
use crate::util::io::{IoError, context};
use crate::util::progress::{Activity, Progress};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The `PATH` every build step runs with.
pub const BUILD_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Prefix under which PostgreSQL is configured (its path contains
/// "postgresql", so modules land in `lib/` and data in `share/`).
pub fn install_prefix(archive_stem: &str) -> String {
    format!("/opt/{archive_stem}")
}

/// Everything one host build needs.
#[derive(Debug, Clone)]
pub struct HostBuild {
    /// The verified source tarball.
    pub tarball: PathBuf,
    /// Top-level directory of the tarball (`postgresql-18.6`).
    pub source_dir_name: String,
    /// Archive stem (`postgresql-18.6.0-x86_64-unknown-linux-gnu`).
    pub archive_stem: String,
    /// Configure flags from the generated data (without the prefix).
    pub configure_flags: Vec<String>,
    /// C compiler flags.
    pub cflags: Vec<String>,
    /// Linker flags.
    pub ldflags: Vec<String>,
    /// `SOURCE_DATE_EPOCH`.
    pub source_date_epoch: i64,
    /// Parallel make jobs.
    pub jobs: usize,
    /// Fresh, empty working directory.
    pub work_dir: PathBuf,
    /// Log file.
    pub log: PathBuf,
    /// Deliberate changes to the build conditions (`pgbin repro`).
    pub variation: Variation,
    /// The cross toolchain, when the target is another architecture.
    pub cross: Option<CrossBuild>,
    /// configure cache variables whose values the build records (the run
    /// tests a cross build answers), where this release's configure has
    /// them; see [`crate::build::cross::configure_results`].
    pub recorded_checks: Vec<String>,
}

/// What a finished host build leaves.
#[derive(Debug, Clone)]
pub struct HostOutput {
    /// The staged install prefix.
    pub prefix: PathBuf,
    /// The values configure settled on for [`HostBuild::recorded_checks`].
    pub configure_checks: BTreeMap<String, String>,
}

/// Build conditions `pgbin repro` varies between its two builds. The
/// default is the normal build: `TZ=UTC`, `LC_ALL=C`, the caller's umask,
/// nothing else in the (cleared) environment.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Variation {
    /// `TZ` instead of UTC.
    pub time_zone: Option<String>,
    /// `LC_ALL` instead of C.
    pub locale: Option<String>,
    /// The umask of every build step.
    pub umask: Option<u32>,
    /// Extra environment variables.
    pub extra_env: Vec<(String, String)>,
}

/// The phases of a build, reported as they start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Unpacking the tarball.
    Unpack,
    /// Running configure.
    Configure,
    /// Compiling.
    Compile,
    /// Installing into the staging directory.
    Install,
}

impl Phase {
    /// Lower-case name.
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Unpack => "unpack",
            Phase::Configure => "configure",
            Phase::Compile => "compile",
            Phase::Install => "install",
        }
    }
}

/// Why a host build failed.
#[derive(Debug, thiserror::Error)]
pub enum HostBuildError {
    /// Local I/O.
    #[error(transparent)]
    Io(#[from] IoError),
    /// The cross build cannot be configured.
    #[error(transparent)]
    Cross(#[from] CrossError),
    /// A build step exited non-zero.
    #[error("{phase} failed (exit status {status}); see {log}")]
    Step {
        /// Which phase.
        phase: &'static str,
        /// Its exit status.
        status: String,
        /// The log file.
        log: String,
    },
}

impl HostBuild {
    /// The staged install tree (`<work>/stage/opt/<stem>`).
    pub fn staged_prefix(&self) -> PathBuf {
        self.stage_root().join(install_prefix(&self.archive_stem).trim_start_matches('/'))
    }

    fn stage_root(&self) -> PathBuf {
        self.work_dir.join("stage")
    }

    fn source_path(&self) -> PathBuf {
        self.work_dir.join("src").join(&self.source_dir_name)
    }

    /// Runs every phase, reporting each as it starts and, while a step
    /// runs, what its log shows; returns the staged prefix and the recorded
    /// configure results.
    pub fn run(&self, progress: &mut dyn Progress) -> Result<HostOutput, HostBuildError> {
        let on_phase = |phase: Phase, progress: &mut dyn Progress| progress.phase(phase.name());
        on_phase(Phase::Unpack, progress);
        self.unpack()?;
        self.write_cross_wrappers()?;
        let src = self.source_path();

        on_phase(Phase::Configure, progress);
        let mut configure = self.command(&src, "./configure");
        configure
            .arg(format!("--prefix={}", install_prefix(&self.archive_stem)))
            .args(&self.configure_flags)
            .env("CFLAGS", self.cflags.join(" "))
            .env("LDFLAGS", self.ldflags.join(" "));
        let guesses = crate::build::cross::configure_guesses(&src)?;
        if let Some(cross) = &self.cross {
            cross.check_configure(&src, &guesses)?;
            configure.args(cross.configure_args()).envs(cross.configure_env(&guesses));
        }
        self.step(Phase::Configure, configure, progress)?;
        let recorded: Vec<&String> = self.recorded_checks.iter().filter(|v| guesses.contains(v)).collect();
        let configure_checks = crate::build::cross::configure_results(&src.join("config.log"), &recorded)?;

        on_phase(Phase::Compile, progress);
        let mut make = self.command(&src, "make");
        make.arg(format!("-j{}", self.jobs)).arg("world-bin");
        self.step(Phase::Compile, make, progress)?;

        on_phase(Phase::Install, progress);
        let mut install = self.command(&src, "make");
        install.arg("install-world-bin").arg(format!("DESTDIR={}", self.stage_root().display()));
        self.step(Phase::Install, install, progress)?;
        let mut rewrites = vec![(src.display().to_string(), neutral_source_dir(&self.source_dir_name))];
        if let Some(cross) = &self.cross {
            rewrites.extend(cross.installed_text_rewrites());
        }
        rewrite_installed_text(&self.staged_prefix(), &rewrites)?;
        Ok(HostOutput { prefix: self.staged_prefix(), configure_checks })
    }

    /// The directory first on `PATH` in a cross build with a sysroot.
    fn wrapper_dir(&self) -> PathBuf {
        self.work_dir.join("cross-bin")
    }

    /// Writes the cross build's tool wrappers ([`CrossBuild::wrappers`]).
    fn write_cross_wrappers(&self) -> Result<(), HostBuildError> {
        use std::os::unix::fs::PermissionsExt;
        let wrappers = self.cross.as_ref().map(CrossBuild::wrappers).unwrap_or_default();
        if wrappers.is_empty() {
            return Ok(());
        }
        let dir = self.wrapper_dir();
        std::fs::create_dir_all(&dir).map_err(context(format!("cannot create {}", dir.display())))?;
        for (name, script) in wrappers {
            let path = dir.join(name);
            std::fs::write(&path, script).map_err(context(format!("cannot write {}", path.display())))?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .map_err(context(format!("cannot make {} executable", path.display())))?;
        }
        Ok(())
    }

    fn unpack(&self) -> Result<(), HostBuildError> {
        let dest = self.work_dir.join("src");
        std::fs::create_dir_all(&dest).map_err(context(format!("cannot create {}", dest.display())))?;
        let file = File::open(&self.tarball).map_err(context(format!("cannot open {}", self.tarball.display())))?;
        let mut archive = tar::Archive::new(bzip2::read::BzDecoder::new(std::io::BufReader::new(file)));
        archive.set_preserve_mtime(true);
        archive.unpack(&dest).map_err(context(format!("cannot unpack {}", self.tarball.display())))?;
        if !self.source_path().join("configure").is_file() {
            return Err(HostBuildError::Io(IoError::new(
                format!("{} has no {}/configure", self.tarball.display(), self.source_dir_name),
                std::io::Error::from(std::io::ErrorKind::NotFound),
            )));
        }
        Ok(())
    }

    /// A command with a cleared, pinned environment, writing to the log.
    fn command(&self, dir: &Path, program: &str) -> Command {
        let variation = &self.variation;
        let mut command = Command::new(program);
        command
            .current_dir(dir)
            .env_clear()
            .env("PATH", BUILD_PATH)
            .env("LC_ALL", variation.locale.as_deref().unwrap_or("C"))
            .env("TZ", variation.time_zone.as_deref().unwrap_or("UTC"))
            .env("SOURCE_DATE_EPOCH", self.source_date_epoch.to_string())
            .envs(variation.extra_env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        if let Some(cross) = self.cross.as_ref().filter(|c| c.sysroot.is_some()) {
            command.env("PATH", format!("{}:{BUILD_PATH}", self.wrapper_dir().display())).envs(cross.build_env());
        }
        if let Some(mask) = variation.umask {
            use std::os::unix::process::CommandExt;
            // SAFETY: umask is async-signal-safe and cannot fail.
            unsafe {
                command.pre_exec(move || {
                    libc::umask(mask as libc::mode_t);
                    Ok(())
                });
            }
        }
        command
    }

    fn step(&self, phase: Phase, mut command: Command, progress: &mut dyn Progress) -> Result<(), HostBuildError> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(context(format!("cannot open log {}", self.log.display())))?;
        let err = log.try_clone().map_err(context("cannot duplicate the log handle"))?;
        // configure and make start process trees (sub-makes, compilers):
        // all of them end when pgbin does, however it ends.
        crate::util::process::supervise(&mut command).map_err(context("cannot prepare a build step"))?;
        let start = log.metadata().map_err(context(format!("cannot stat log {}", self.log.display())))?.len();
        let mut watcher = LogWatcher::open(&self.log, start)?;
        let mut child =
            command.stdout(log).stderr(err).spawn().map_err(context(format!("cannot start {}", phase.name())))?;
        let status = loop {
            if let Some(status) = child.try_wait().map_err(context(format!("cannot wait for {}", phase.name())))? {
                break status;
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
            if watcher.poll() {
                progress.activity(&watcher.activity());
            }
        };
        if watcher.poll() {
            progress.activity(&watcher.activity());
        }
        if !status.success() {
            return Err(HostBuildError::Step {
                phase: phase.name(),
                status: status.code().map_or_else(|| "killed".to_string(), |c| c.to_string()),
                log: self.log.display().to_string(),
            });
        }
        Ok(())
    }
}

/// Follows a build step's log as the step appends to it: counts compiler
/// invocations and keeps the last complete line, reading at most a bounded
/// amount per poll and keeping no more than one partial line.
struct LogWatcher {
    file: File,
    partial: Vec<u8>,
    last_line: String,
    compiled: usize,
}

/// The most bytes one poll reads, and the longest partial line kept.
const WATCH_CHUNK: usize = 1 << 20;

impl LogWatcher {
    fn open(log: &Path, start: u64) -> Result<LogWatcher, HostBuildError> {
        use std::io::Seek;
        let mut file = File::open(log).map_err(context(format!("cannot read log {}", log.display())))?;
        file.seek(std::io::SeekFrom::Start(start)).map_err(context(format!("cannot read log {}", log.display())))?;
        Ok(LogWatcher { file, partial: Vec::new(), last_line: String::new(), compiled: 0 })
    }

    /// Reads what was appended since the last poll; whether anything new
    /// was seen.
    fn poll(&mut self) -> bool {
        use std::io::Read;
        let mut chunk = vec![0u8; WATCH_CHUNK];
        let Ok(read) = self.file.read(&mut chunk) else { return false };
        if read == 0 {
            return false;
        }
        self.partial.extend_from_slice(&chunk[..read]);
        let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') else {
            if self.partial.len() > WATCH_CHUNK {
                self.partial.clear();
            }
            return false;
        };
        let complete: Vec<u8> = self.partial.drain(..=end).collect();
        for line in complete.split(|&b| b == b'\n') {
            let line = String::from_utf8_lossy(line);
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let shown = if is_compile_line(line) {
                self.compiled += 1;
                // The compiler's flags fill any width: show what it compiles.
                line.split_whitespace().find(|w| w.ends_with(".c")).map_or(line, |source| source)
            } else {
                line
            };
            self.last_line = shown.chars().take(300).collect();
        }
        true
    }

    fn activity(&self) -> Activity<'_> {
        Activity { compiled: self.compiled, last_line: &self.last_line }
    }
}

/// Whether a make output line is one compiler invocation producing an
/// object (`gcc ... -c -o pg_dump.o pg_dump.c`).
fn is_compile_line(line: &str) -> bool {
    line.contains(" -c ") && line.split_whitespace().any(|word| word.ends_with(".o"))
}

/// The path that stands for the build's source directory in installed text
/// files (PGXS's `Makefile.global` records `abs_top_srcdir`).
pub fn neutral_source_dir(source_dir_name: &str) -> String {
    format!("/usr/src/{source_dir_name}")
}

/// Applies each (`needle`, `replacement`) to every installed text (non-ELF)
/// file: the source directory becomes a neutral path, so the build
/// directory leaves no trace (ELF files are left to the leak scan), and a
/// cross build's own settings become a native build's.
fn rewrite_installed_text(prefix: &Path, rewrites: &[(String, String)]) -> Result<(), HostBuildError> {
    let finders: Vec<_> = rewrites.iter().map(|(needle, _)| memchr::memmem::Finder::new(needle.as_bytes())).collect();
    for entry in walkdir::WalkDir::new(prefix) {
        let entry = entry.map_err(|e| IoError::new("cannot walk the install tree", e))?;
        if !entry.file_type().is_file() {
            continue;
        }
        let bytes = std::fs::read(entry.path()).map_err(context(format!("cannot read {}", entry.path().display())))?;
        if crate::build::elf::is_elf(&bytes) || finders.iter().all(|f| f.find(&bytes).is_none()) {
            continue;
        }
        let permissions = entry.metadata().map_err(|e| IoError::new("cannot stat", e))?.permissions();
        let mut text = String::from_utf8_lossy(&bytes).into_owned();
        for (needle, replacement) in rewrites {
            text = text.replace(needle, replacement);
        }
        crate::util::fs::write_atomic(entry.path(), text.as_bytes())
            .map_err(context(format!("cannot rewrite {}", entry.path().display())))?;
        std::fs::set_permissions(entry.path(), permissions)
            .map_err(context(format!("cannot chmod {}", entry.path().display())))?;
    }
    Ok(())
}

crate::util::error::usage_errors!(HostBuildError);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_is_neutral_and_names_postgresql() {
        let prefix = install_prefix("postgresql-18.6.0-x86_64-unknown-linux-gnu");
        assert_eq!(prefix, "/opt/postgresql-18.6.0-x86_64-unknown-linux-gnu");
        assert!(prefix.contains("postgres"));
    }

    /// A build in `dir` whose tarball does not exist.
    fn scratch_build(dir: &Path, source_date_epoch: i64, variation: Variation) -> HostBuild {
        HostBuild {
            tarball: dir.join("missing.tar.bz2"),
            source_dir_name: "x".into(),
            archive_stem: "postgresql-0.0.0-test".into(),
            configure_flags: vec![],
            cflags: vec![],
            ldflags: vec![],
            source_date_epoch,
            jobs: 1,
            work_dir: dir.to_path_buf(),
            log: dir.join("build.log"),
            variation,
            cross: None,
            recorded_checks: Vec::new(),
        }
    }

    /// Records every activity a step reports.
    #[derive(Default)]
    struct Recorder(Vec<(usize, String)>);

    impl Progress for Recorder {
        fn activity(&mut self, activity: &Activity<'_>) {
            self.0.push((activity.compiled, activity.last_line.to_string()));
        }
    }

    #[test]
    fn a_running_step_reports_objects_compiled_and_its_last_line_while_it_runs() {
        let dir = tempfile::tempdir().unwrap();
        let build = scratch_build(dir.path(), 0, Variation::default());
        std::fs::write(&build.log, "from an earlier step: gcc -c -o old.o old.c\n").unwrap();
        let script = "for i in 1 2 3; do echo \"gcc -O2 -c -o f$i.o f$i.c\"; sleep 0.4; done; echo 'make: leaving'";
        let compiling = |activity: &(usize, String)| activity.1.starts_with('f') && activity.1.ends_with(".c");
        let mut command = build.command(dir.path(), "sh");
        command.args(["-c", script]);
        let mut recorder = Recorder::default();
        build.step(Phase::Compile, command, &mut recorder).unwrap();
        assert!(recorder.0.len() >= 2, "reported while running, not only at the end: {:?}", recorder.0);
        assert!(recorder.0.windows(2).all(|w| w[0].0 <= w[1].0), "the count only grows: {:?}", recorder.0);
        assert!(recorder.0.iter().any(compiling), "a compile shows its source file, not its flags: {:?}", recorder.0);
        assert_eq!(recorder.0.last().unwrap(), &(3, "make: leaving".to_string()), "the earlier step is not counted");
        let log = std::fs::read_to_string(&build.log).unwrap();
        assert!(log.contains("gcc -O2 -c -o f3.o f3.c"), "the log keeps everything");
    }

    #[test]
    fn compile_lines_are_compiler_invocations_making_objects() {
        assert!(is_compile_line("gcc -Wall -O2 -I../include -c -o pg_dump.o pg_dump.c -MMD -MP"));
        assert!(!is_compile_line("gcc -o pg_dump pg_dump.o common.o -lpq"));
        assert!(!is_compile_line("checking whether gcc -c -o works... yes"), "configure's checks are not objects");
    }

    #[test]
    fn a_failing_step_names_its_phase_and_log() {
        let dir = tempfile::tempdir().unwrap();
        let build = scratch_build(dir.path(), 0, Variation::default());
        let err = build
            .step(Phase::Compile, build.command(dir.path(), "false"), &mut crate::util::progress::Silent)
            .unwrap_err();
        assert!(err.to_string().contains("compile failed"), "{err}");
        assert!(build.run(&mut crate::util::progress::Silent).is_err());
    }

    #[test]
    fn a_variation_reaches_every_step() {
        let dir = tempfile::tempdir().unwrap();
        let variation = Variation {
            time_zone: Some("XST-14".into()),
            locale: Some("C.UTF-8".into()),
            umask: Some(0o077),
            extra_env: vec![("NOISE".into(), "yes".into())],
        };
        let build = scratch_build(dir.path(), 1700000000, variation);
        let mut probe = build.command(dir.path(), "sh");
        probe.args(["-c", "echo \"$TZ $LC_ALL $NOISE $SOURCE_DATE_EPOCH $(umask)\""]);
        build.step(Phase::Configure, probe, &mut crate::util::progress::Silent).unwrap();
        let log = std::fs::read_to_string(dir.path().join("build.log")).unwrap();
        assert_eq!(log.trim(), "XST-14 C.UTF-8 yes 1700000000 0077");
    }
}
