//! Cross builds in the host backend: Debian's cross toolchain for a target
//! of another Debian architecture than the build machine's.
//!
//! A cross build differs from a native one only where it must:
//!
//! - the target's libraries are Debian's packages of the target's
//!   architecture, unpacked into a private sysroot ([`crate::build::sysroot`])
//!   rather than installed beside the build machine's own;
//! - configure runs with `--build`/`--host`, the target's compiler
//!   (`aarch64-linux-gnu-gcc`, from `crossbuild-essential-arm64`) and a
//!   pkg-config for the target (`aarch64-linux-gnu-pkg-config`). Both are
//!   small wrappers, first on the build's `PATH`, that point Debian's cross
//!   compiler (`--sysroot`, and `-I/usr/…`, `-L/usr/…` read inside it) and
//!   pkg-config (`PKG_CONFIG_LIBDIR`) at the sysroot, so that configure
//!   records the same tool names and flags as a native build and no cache
//!   path reaches `pg_config` or PGXS;
//! - configure cannot run its run tests, and guesses. The recipe's answers
//!   (data/targets.toml, `[host.cross]`) replace the guesses, and a
//!   configure script that guesses anything the recipe neither answers nor
//!   excuses is refused before it runs ([`unanswered_guesses`]). Native
//!   host builds record what their configure found for the same variables
//!   ([`configure_results`]), so the two can be compared;
//! - the time zone files are compiled by the target's own `zic` (built
//!   from the same source, as in a native build) run under qemu-user with
//!   the sysroot's loader and C library (`QEMU_LD_PREFIX`), so native and
//!   cross builds install the same `share/timezone`;
//! - libraries are bundled from the sysroot's multiarch directories
//!   ([`target_libraries`]) instead of the build machine's `ldconfig` index.

use crate::util::shell::shell_quote;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::build::sysroot::Sysroot;
use crate::data::isa::Isa;
use crate::data::matrix::{DebianArch, Matrix, Target};
use crate::util::io::{IoError, context};

/// The directories the target's libraries are installed in, by multiarch
/// name (Debian's multiarch layout: `/lib/<multiarch>`, `/usr/lib/<multiarch>`).
pub fn library_directories(multiarch: &str) -> [PathBuf; 2] {
    [PathBuf::from(format!("/usr/lib/{multiarch}")), PathBuf::from(format!("/lib/{multiarch}"))]
}

/// Why a cross build cannot start.
#[derive(Debug, thiserror::Error)]
pub enum CrossError {
    /// Local I/O.
    #[error(transparent)]
    Io(#[from] IoError),
    /// The target has no instruction set pgbin knows (so no emulator).
    #[error("{0} has no known instruction set, so it cannot be cross-built here")]
    NoIsa(String),
    /// configure guesses a run test the recipe does not answer.
    #[error(
        "configure of {source_dir} guesses {variables} when cross-compiling, which data/targets.toml neither answers nor excuses; add each to [host.cross.configure_answers] with the value a native build finds"
    )]
    Unanswered {
        /// The source directory.
        source_dir: String,
        /// The variables, comma-separated.
        variables: String,
    },
}

crate::util::error::usage_errors!(CrossError);

/// Everything one cross build needs beyond a native build's recipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrossBuild {
    /// The target's Debian architecture.
    pub debian: DebianArch,
    /// The build machine's GNU type (`x86_64-linux-gnu`).
    pub build_gnu_type: String,
    /// The qemu-user emulator for the target (`/usr/bin/qemu-aarch64`).
    pub emulator: PathBuf,
    /// The recipe's answers to configure's run tests.
    pub answers: BTreeMap<String, String>,
    /// The guesses the recipe excuses, with the reason.
    pub excused: BTreeMap<String, String>,
    /// The target's libraries, once unpacked ([`CrossBuild::with_sysroot`]).
    pub sysroot: Option<Sysroot>,
}

/// Where Debian's qemu-user installs its emulators.
const QEMU_DIR: &str = "/usr/bin";

impl CrossBuild {
    /// The cross build of `target` on a machine of Debian architecture
    /// `build_arch` and GNU type `build_gnu_type`, or `None` when the build is native.
    pub fn plan(
        matrix: &Matrix,
        target: &Target,
        build_arch: &str,
        build_gnu_type: &str,
    ) -> Result<Option<CrossBuild>, CrossError> {
        let Some(debian) = target.cross_arch(build_arch) else { return Ok(None) };
        let isa: &Isa = target.isa().ok_or_else(|| CrossError::NoIsa(target.triple.clone()))?;
        Ok(Some(CrossBuild {
            debian: debian.clone(),
            build_gnu_type: build_gnu_type.to_string(),
            emulator: Path::new(QEMU_DIR).join(format!("qemu-{}", isa.qemu)),
            answers: matrix.host.cross.configure_answers.clone(),
            excused: matrix.host.cross.not_run_on_linux.clone(),
            sysroot: None,
        }))
    }

    /// This cross build with its libraries in `sysroot`.
    pub fn with_sysroot(mut self, sysroot: Sysroot) -> CrossBuild {
        self.sysroot = Some(sysroot);
        self
    }

    /// The wrappers written into the directory put first on the build's
    /// `PATH` (file name, script): the target's compiler and pkg-config,
    /// pointed at the sysroot. Nothing without a sysroot.
    pub fn wrappers(&self) -> Vec<(String, String)> {
        let Some(sysroot) = &self.sysroot else { return Vec::new() };
        let root = shell_quote(&sysroot.root.display().to_string());
        let multiarch = &self.debian.multiarch;
        // `-I/usr/…` and `-L/usr/…` (or `/lib/…`) from pkg-config or
        // configure become `=/usr/…`, which gcc and ld read inside the
        // sysroot; configure records them as given, as a native build does.
        let gcc = format!(
            "#!/bin/sh\n\
             for arg; do\n\
             \x20 shift\n\
             \x20 case $arg in\n\
             \x20   -I/usr/*) arg=\"-I=${{arg#-I}}\" ;;\n\
             \x20   -L/usr/* | -L/lib/*) arg=\"-L=${{arg#-L}}\" ;;\n\
             \x20 esac\n\
             \x20 set -- \"$@\" \"$arg\"\n\
             done\n\
             exec /usr/bin/{compiler} --sysroot={root} -ffile-prefix-map={root}= \"$@\"\n",
            compiler = self.compiler()
        );
        // The target's .pc files only, with the target's system directories
        // left out of what they print, as Debian's TRIPLET-pkg-config does.
        let pkg_config = format!(
            "#!/bin/sh\n\
             export PKG_CONFIG_LIBDIR={root}/usr/lib/{multiarch}/pkgconfig:{root}/usr/share/pkgconfig\n\
             export PKG_CONFIG_SYSTEM_LIBRARY_PATH=/usr/lib/{multiarch}:/lib/{multiarch}:/usr/lib:/lib\n\
             export PKG_CONFIG_SYSTEM_INCLUDE_PATH=/usr/include\n\
             exec /usr/bin/pkg-config \"$@\"\n"
        );
        vec![(self.compiler(), gcc), (self.pkg_config(), pkg_config)]
    }

    /// [`CrossBuild::wrappers`] with the sysroot's directory left out, for
    /// the cache key (which names the sysroot by its packages instead).
    pub fn wrappers_for_key(&self) -> Vec<(String, String)> {
        let Some(sysroot) = &self.sysroot else { return Vec::new() };
        let root = shell_quote(&sysroot.root.display().to_string());
        self.wrappers().into_iter().map(|(name, script)| (name, script.replace(&root, "$SYSROOT"))).collect()
    }

    /// The environment every build step gets besides the native one: the
    /// sysroot as the emulator's root for the target's loader and C library.
    pub fn build_env(&self) -> Vec<(String, String)> {
        self.sysroot.iter().map(|s| ("QEMU_LD_PREFIX".to_string(), s.root.display().to_string())).collect()
    }

    /// The target's pkg-config (`aarch64-linux-gnu-pkg-config`).
    pub fn pkg_config(&self) -> String {
        format!("{}-pkg-config", self.debian.gnu_type)
    }

    /// The target's C compiler (`aarch64-linux-gnu-gcc`).
    pub fn compiler(&self) -> String {
        self.debian.cross_compiler()
    }

    /// The `ZIC` configure is given: the target's own zic, built in
    /// `src/timezone` and run there under the emulator.
    pub fn zic(&self) -> String {
        format!("{} ./zic", self.emulator.display())
    }

    /// configure's cross arguments.
    pub fn configure_args(&self) -> Vec<String> {
        vec![format!("--build={}", self.build_gnu_type), format!("--host={}", self.debian.gnu_type)]
    }

    /// configure's environment: the compiler, pkg-config, zic and the
    /// answers to the run tests `guesses` names (what this configure
    /// script would guess, [`cross_guesses`]), so that config.log records
    /// exactly the variables a native configure sets.
    pub fn configure_env(&self, guesses: &[String]) -> Vec<(String, String)> {
        let mut env = vec![
            ("CC".to_string(), self.compiler()),
            ("PKG_CONFIG".to_string(), self.pkg_config()),
            ("ZIC".to_string(), self.zic()),
        ];
        env.extend(self.answers.iter().filter(|(k, _)| guesses.contains(k)).map(|(k, v)| (k.clone(), v.clone())));
        env
    }

    /// Replacements in installed text files that make them what a native
    /// build installs: PGXS's `Makefile.global` records `ZIC`, which a
    /// native build leaves empty.
    pub fn installed_text_rewrites(&self) -> Vec<(String, String)> {
        vec![(format!("ZIC = {}\n", self.zic()), "ZIC = \n".to_string())]
    }

    /// Refuses the source at `source_dir` when its configure script guesses
    /// (`guesses`, [`configure_guesses`]) anything the recipe does not cover.
    pub fn check_configure(&self, source_dir: &Path, guesses: &[String]) -> Result<(), CrossError> {
        let unanswered: Vec<&String> =
            guesses.iter().filter(|v| !self.answers.contains_key(*v) && !self.excused.contains_key(*v)).collect();
        if unanswered.is_empty() {
            return Ok(());
        }
        let variables = unanswered.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ");
        Err(CrossError::Unanswered { source_dir: source_dir.display().to_string(), variables })
    }

    /// The soname → path index of the target's libraries (the sysroot's,
    /// else the machine's multiarch directories).
    pub fn libraries(&self) -> Result<BTreeMap<String, PathBuf>, CrossError> {
        match &self.sysroot {
            Some(sysroot) => target_libraries(&sysroot.library_directories(&self.debian.multiarch)),
            None => target_libraries(&library_directories(&self.debian.multiarch)),
        }
    }

    /// The package and version of a bundled library: the sysroot's owner
    /// of it, else dpkg's.
    pub fn owner(&self, path: &Path) -> (Option<String>, Option<String>) {
        match &self.sysroot {
            Some(sysroot) => sysroot.owner(path),
            None => crate::build::apt::owning_package(path),
        }
    }
}

/// The configure cache variables configure sets to a guess when it cannot
/// run a test (the assignment right after `if test "$cross_compiling" = yes; then :`),
/// in order of appearance, without repeats.
pub fn cross_guesses(configure: &str) -> Vec<String> {
    let mut guesses: Vec<String> = Vec::new();
    let mut lines = configure.lines();
    while let Some(line) = lines.next() {
        if line.trim() != r#"if test "$cross_compiling" = yes; then :"# {
            continue;
        }
        let Some(next) = lines.next() else { break };
        let next = next.trim_start();
        let name: String = next.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        let is_assignment =
            !name.is_empty() && !name.starts_with(|c: char| c.is_ascii_digit()) && next[name.len()..].starts_with('=');
        if is_assignment && !guesses.contains(&name) {
            guesses.push(name);
        }
    }
    guesses
}

/// The guesses of the configure script in `source_dir` ([`cross_guesses`];
/// reads at most 4 MiB of it).
pub fn configure_guesses(source_dir: &Path) -> Result<Vec<String>, CrossError> {
    let bytes = crate::util::io::read_limited(&source_dir.join("configure"), CONFIGURE_BOUND)?;
    Ok(cross_guesses(&String::from_utf8_lossy(&bytes)))
}

/// The guesses of `configure` that are neither answered nor excused.
pub fn unanswered_guesses(
    configure: &str,
    answers: &BTreeMap<String, String>,
    excused: &BTreeMap<String, String>,
) -> Vec<String> {
    cross_guesses(configure).into_iter().filter(|v| !answers.contains_key(v) && !excused.contains_key(v)).collect()
}

/// The most bytes of a configure script read (PostgreSQL's is about 600 KB).
const CONFIGURE_BOUND: u64 = 4 << 20;

/// The values configure settled on for `variables`, read from the cache
/// variables section of `config.log` (native: what the tests found; cross:
/// the answers given). Variables configure never set are omitted.
pub fn configure_results(config_log: &Path, variables: &[&String]) -> Result<BTreeMap<String, String>, CrossError> {
    let bytes = crate::util::io::read_limited(config_log, CONFIG_LOG_BOUND)?;
    let text = String::from_utf8_lossy(&bytes);
    let mut results = BTreeMap::new();
    let section = text.split("## Cache variables. ##").nth(1).unwrap_or("");
    for line in section.lines().skip_while(|l| !l.contains('=')).take_while(|l| !l.starts_with("## ")) {
        let Some((name, value)) = line.split_once('=') else { continue };
        if variables.iter().any(|v| v.as_str() == name) {
            results.insert(name.to_string(), value.trim_matches('\'').to_string());
        }
    }
    Ok(results)
}

/// The most bytes of `config.log` read (PostgreSQL's is about 1 MB).
const CONFIG_LOG_BOUND: u64 = 32 << 20;

/// Soname → path for the shared libraries in `directories` (earlier
/// directories win): every regular file or link named `lib*.so.*`, as
/// Debian installs each library under its soname.
pub fn target_libraries(directories: &[PathBuf]) -> Result<BTreeMap<String, PathBuf>, CrossError> {
    let mut index = BTreeMap::new();
    for dir in directories {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(IoError::new(format!("cannot list {}", dir.display()), e).into()),
        };
        for entry in entries {
            let entry = entry.map_err(context(format!("cannot list {}", dir.display())))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("lib") && name.contains(".so.") {
                index.entry(name).or_insert_with(|| entry.path());
            }
        }
    }
    Ok(index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::repo::Repo;

    fn matrix() -> Matrix {
        Matrix::load(&Repo::discover(Some(Path::new(env!("CARGO_MANIFEST_DIR")))).unwrap()).unwrap()
    }

    /// The shape of autoconf's run tests in PostgreSQL's configure.
    const CONFIGURE: &str = r#"
if ${pgac_cv_prog_cc_LDFLAGS_EX_BE__Wl___export_dynamic+:} false; then :
  $as_echo_n "(cached) " >&6
else
  if test "$cross_compiling" = yes; then :
  pgac_cv_prog_cc_LDFLAGS_EX_BE__Wl___export_dynamic="assuming no"
else
if test "$cross_compiling" = yes; then :
  { $as_echo "$as_me:${as_lineno-$LINENO}: result: cross-compiling" >&5
if test "$cross_compiling" = yes; then :
  :
if test "$cross_compiling" = yes; then :
  pgac_cv_new_run_test=unknown
"#;

    #[test]
    fn every_guess_configure_would_make_is_found() {
        assert_eq!(
            cross_guesses(CONFIGURE),
            vec!["pgac_cv_prog_cc_LDFLAGS_EX_BE__Wl___export_dynamic", "pgac_cv_new_run_test"]
        );
        let m = matrix();
        let cross = &m.host.cross;
        assert_eq!(
            unanswered_guesses(CONFIGURE, &cross.configure_answers, &cross.not_run_on_linux),
            vec!["pgac_cv_new_run_test"]
        );
    }

    #[test]
    fn the_recipe_answers_export_dynamic_as_native_linux_builds_find_it() {
        let m = matrix();
        let answers = &m.host.cross.configure_answers;
        assert_eq!(answers["pgac_cv_prog_cc_LDFLAGS_EX_BE__Wl___export_dynamic"], "yes");
        assert_eq!(answers["pgac_cv_prog_cc_LDFLAGS__Wl___as_needed"], "yes");
    }

    #[test]
    fn a_cross_build_configures_with_the_targets_toolchain() {
        let m = matrix();
        let target = m.target("aarch64-unknown-linux-gnu").unwrap();
        let cross = CrossBuild::plan(&m, target, "amd64", "x86_64-linux-gnu").unwrap().unwrap();
        assert_eq!(cross.configure_args(), vec!["--build=x86_64-linux-gnu", "--host=aarch64-linux-gnu"]);
        let guesses = vec!["pgac_cv_prog_cc_LDFLAGS_EX_BE__Wl___export_dynamic".to_string()];
        let env: BTreeMap<String, String> = cross.configure_env(&guesses).into_iter().collect();
        assert!(!env.contains_key("pgac_cv_prog_cc_ldflags__Wl___as_needed"), "only what this configure guesses");
        assert_eq!(env["CC"], "aarch64-linux-gnu-gcc");
        assert_eq!(env["PKG_CONFIG"], "aarch64-linux-gnu-pkg-config");
        assert_eq!(env["ZIC"], "/usr/bin/qemu-aarch64 ./zic");
        assert_eq!(env["pgac_cv_prog_cc_LDFLAGS_EX_BE__Wl___export_dynamic"], "yes");
        let i686 = m.target("i686-unknown-linux-gnu").unwrap();
        let cross = CrossBuild::plan(&m, i686, "amd64", "x86_64-linux-gnu").unwrap().unwrap();
        assert_eq!(cross.compiler(), "i686-linux-gnu-gcc");
        assert_eq!(cross.emulator, Path::new("/usr/bin/qemu-i386"));
        assert!(
            CrossBuild::plan(&m, m.target("x86_64-unknown-linux-gnu").unwrap(), "amd64", "x86_64-linux-gnu")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_sysroot_reaches_the_tools_through_wrappers_never_through_configure() {
        let m = matrix();
        let target = m.target("s390x-unknown-linux-gnu").unwrap();
        let plan = CrossBuild::plan(&m, target, "amd64", "x86_64-linux-gnu").unwrap().unwrap();
        assert!(plan.wrappers().is_empty() && plan.build_env().is_empty(), "nothing before the sysroot exists");
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("var/lib/dpkg/info")).unwrap();
        std::fs::write(dir.path().join("var/lib/dpkg/status"), "").unwrap();
        let root = dir.path().display().to_string();
        let cross = plan.with_sysroot(crate::build::sysroot::open(dir.path(), "s390x").unwrap());
        let wrappers: BTreeMap<String, String> = cross.wrappers().into_iter().collect();
        let gcc = &wrappers["s390x-linux-gnu-gcc"];
        assert!(
            gcc.contains(&format!("exec /usr/bin/s390x-linux-gnu-gcc --sysroot='{root}' -ffile-prefix-map='{root}'="))
        );
        let pkg_config = &wrappers["s390x-linux-gnu-pkg-config"];
        assert!(pkg_config.contains(&format!("PKG_CONFIG_LIBDIR='{root}'/usr/lib/s390x-linux-gnu/pkgconfig:")));
        assert!(pkg_config.contains("PKG_CONFIG_SYSTEM_LIBRARY_PATH=/usr/lib/s390x-linux-gnu:"));
        // The compiler wrapper reads system include and library flags inside the sysroot.
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let echo = gcc.replace("exec /usr/bin/s390x-linux-gnu-gcc", "exec echo");
        std::fs::write(bin.join("gcc"), echo).unwrap();
        let output = std::process::Command::new("sh")
            .arg(bin.join("gcc"))
            .args(["-I/usr/include/libxml2", "-Isrc/include", "-L/lib/x", "-L../port", "a b.c"])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8(output.stdout).unwrap().trim_end(),
            format!(
                "--sysroot={root} -ffile-prefix-map={root}= -I=/usr/include/libxml2 -Isrc/include -L=/lib/x -L../port a b.c"
            )
        );
        assert_eq!(cross.build_env(), vec![("QEMU_LD_PREFIX".to_string(), root.clone())]);
        // configure records CC and PKG_CONFIG in pg_config and PGXS: names only.
        for (name, value) in cross.configure_env(&[]) {
            assert!(!value.contains(&root), "{name}={value} names the sysroot");
        }
    }

    #[test]
    fn configure_results_come_from_the_cache_variables_section() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("config.log");
        std::fs::write(
            &log,
            "pgac_cv_x=not this one\n## ---------------- ##\n## Cache variables. ##\n## ---------------- ##\n\nac_cv_c_bigendian=no\npgac_cv_x=yes\npgac_cv_y='assuming no'\n\n## ----------------- ##\n## Output variables. ##\npgac_cv_x=no\n",
        )
        .unwrap();
        let (x, y, z) = ("pgac_cv_x".to_string(), "pgac_cv_y".to_string(), "pgac_cv_z".to_string());
        let results = configure_results(&log, &[&x, &y, &z]).unwrap();
        assert_eq!(results, BTreeMap::from([(x.clone(), "yes".to_string()), (y.clone(), "assuming no".to_string())]));
    }

    #[test]
    fn target_libraries_are_indexed_by_file_name_first_directory_first() {
        let dir = tempfile::tempdir().unwrap();
        let (usr, lib) = (dir.path().join("usr"), dir.path().join("lib"));
        std::fs::create_dir_all(&usr).unwrap();
        std::fs::create_dir_all(&lib).unwrap();
        std::fs::write(usr.join("libz.so.1"), b"").unwrap();
        std::fs::write(lib.join("libz.so.1"), b"").unwrap();
        std::fs::write(lib.join("libc.so.6"), b"").unwrap();
        std::fs::write(lib.join("libz.so"), b"").unwrap();
        let index = target_libraries(&[usr.clone(), lib.clone(), dir.path().join("absent")]).unwrap();
        assert_eq!(index.len(), 2);
        assert_eq!(index["libz.so.1"], usr.join("libz.so.1"));
        assert_eq!(index["libc.so.6"], lib.join("libc.so.6"));
    }
}
