//! `build`: from a verified source to a tested, relocatable archive.
//!
//! The host backend runs [`crate::build::host`], [`crate::build::relocate`] and
//! [`crate::build::package`], writes the manifest, and runs [`crate::build::smoke`] on the
//! result before anything is published. Results are cached under a key over
//! every input (source hash, target, configure and compiler flags, backend,
//! toolchain identity, recipe version): the same inputs are never built twice.
//! Publishing copies the archive, its `.sha256` and its manifest atomically.

pub mod docker;
pub mod elf;
pub mod host;
pub mod package;
pub mod relocate;
pub mod smoke;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::build::host::{HostBuild, Phase, Variation};
use crate::build::relocate::BundledLibrary;
use crate::data::lock::LockedSource;
use crate::data::matrix::{FeatureState, Matrix, Target};
use crate::data::version::Version;
use crate::source::verify::Assessment;

/// Bump when the recipe changes in a way the key does not otherwise see.
pub const RECIPE_VERSION: u32 = 2;

/// How a build is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The machine's own toolchain.
    Host,
    /// The flake's generic builder.
    Nix,
}

impl Backend {
    /// Lower-case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Backend::Host => "host",
            Backend::Nix => "nix",
        }
    }
}

/// The toolchain a build uses, as far as it can change the output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Toolchain {
    /// The compiler: `cc --version`, first line (host), or the name of
    /// nixpkgs' compiler derivation (nix).
    pub compiler: String,
    /// Debian package name → version, for every build package (host).
    pub packages: BTreeMap<String, String>,
    /// The pinned nixpkgs every tool and library came from (nix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nixpkgs: Option<crate::nix::store::FlakePin>,
}

/// The source as recorded in the manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManifestSource {
    /// Tarball name.
    pub name: String,
    /// Its SHA-256.
    pub sha256: String,
    /// Its size.
    pub size: Option<u64>,
    /// Trust level reached.
    pub trust: String,
    /// Evidence kinds that verified.
    pub evidence: Vec<String>,
    /// Signer fingerprints.
    pub signers: Vec<String>,
}

/// Hardening of one ELF file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HardeningEntry {
    /// Path inside the archive's top directory.
    pub path: String,
    /// PIE / shared object.
    pub pie: bool,
    /// Full RELRO (RELRO + BIND_NOW).
    pub full_relro: bool,
    /// BIND_NOW.
    pub bind_now: bool,
    /// Stack protector.
    pub stack_protector: bool,
    /// Non-executable stack.
    pub nx: bool,
}

/// `<archive>.manifest.json`: what is in an archive and how it was made.
/// Deterministic: no timestamps, sorted collections.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// Manifest format.
    pub format: u32,
    /// PostgreSQL version.
    pub version: Version,
    /// Target triple.
    pub target: String,
    /// Backend.
    pub backend: Backend,
    /// Archive file name.
    pub archive: String,
    /// Archive SHA-256.
    pub archive_sha256: String,
    /// Configure flags (without the prefix).
    pub configure_flags: Vec<String>,
    /// Names of the enabled features.
    pub features_enabled: Vec<String>,
    /// Every feature with its state.
    pub features: BTreeMap<String, FeatureState>,
    /// Libraries bundled into `lib/`.
    pub bundled_libraries: Vec<BundledLibrary>,
    /// Nix store paths whose references were neutralised (nix backend).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scrubbed_store_references: Vec<String>,
    /// Highest `GLIBC_x.y` required (the glibc floor).
    pub glibc_floor: Option<String>,
    /// Regular files and symlinks in the archive.
    pub file_count: usize,
    /// The verified source.
    pub source: ManifestSource,
    /// The toolchain.
    pub toolchain: Toolchain,
    /// Hardening of every ELF file.
    pub hardening: Vec<HardeningEntry>,
    /// `SOURCE_DATE_EPOCH` used.
    pub source_date_epoch: i64,
    /// The build cache key.
    pub cache_key: String,
    /// The pgbin version that built it.
    pub pgbin_version: String,
}

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Local I/O.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The host build failed.
    #[error(transparent)]
    Host(#[from] crate::build::host::HostBuildError),
    /// Relocation failed.
    #[error(transparent)]
    Relocate(#[from] relocate::RelocateError),
    /// Packaging failed.
    #[error(transparent)]
    Package(#[from] package::PackageError),
    /// The smoke test could not run.
    #[error(transparent)]
    Smoke(#[from] smoke::SmokeError),
    /// A build failed and its work directory was kept for inspection.
    #[error("{error} (work directory kept: {work})")]
    Kept {
        /// The failure.
        error: Box<BuildError>,
        /// The kept directory.
        work: String,
    },
    /// `nix build` failed or answered unexpectedly.
    #[error("{0}")]
    Nix(String),
    /// A smoke check failed.
    #[error("smoke test failed at check '{check}': {detail}")]
    SmokeFailed {
        /// The check.
        check: String,
        /// What was seen.
        detail: String,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BuildError {
    let what = what.into();
    move |source| BuildError::Io { what, source }
}

/// Everything a host build is made from.
#[derive(Debug, Clone)]
pub struct HostInputs<'a> {
    /// What the archive is assembled from (backend: host).
    pub assembly: AssemblyInputs<'a>,
    /// The verified tarball.
    pub tarball: &'a Path,
    /// Parallel jobs.
    pub jobs: usize,
}

/// Everything that goes into an archive and its manifest besides the
/// install tree itself, whichever backend built that tree.
#[derive(Debug, Clone)]
pub struct AssemblyInputs<'a> {
    /// The release.
    pub version: Version,
    /// Its lock entry.
    pub entry: &'a LockedSource,
    /// Its verified evidence.
    pub assessment: &'a Assessment,
    /// The target.
    pub target: &'a Target,
    /// The matrix (flags, features).
    pub matrix: &'a Matrix,
    /// `SOURCE_DATE_EPOCH` (the release date).
    pub source_date_epoch: i64,
    /// The toolchain identity.
    pub toolchain: &'a Toolchain,
    /// The backend that built the tree.
    pub backend: Backend,
}

impl AssemblyInputs<'_> {
    /// The archive stem (`postgresql-18.6.0-<triple>`).
    pub fn stem(&self) -> String {
        self.target.archive_name(self.version).trim_end_matches(package::TAR_GZ).to_string()
    }

    /// SHA-256 over a canonical JSON of every input.
    pub fn cache_key(&self) -> String {
        let inputs = serde_json::json!({
            "recipe": RECIPE_VERSION,
            "backend": self.backend.as_str(),
            "source_sha256": self.entry.sha256,
            "target": self.target.triple,
            "configure_flags": self.matrix.configure_flags(self.target, self.version),
            "cflags": self.matrix.host.cflags,
            "ldflags": self.matrix.host.ldflags,
            "source_date_epoch": self.source_date_epoch,
            "toolchain": self.toolchain,
        });
        hex::encode(Sha256::digest(serde_json::to_vec(&inputs).expect("inputs serialize")))
    }
}

/// An archive with its `.sha256` and manifest, freshly written.
#[derive(Debug, Clone)]
pub struct Assembled {
    /// The archive and its checksum.
    pub packaged: package::Packaged,
    /// The manifest written beside it.
    pub manifest_file: PathBuf,
    /// Its content.
    pub manifest: Manifest,
}

/// Relocates the install tree at `prefix` under `policy`, writes the archive,
/// its `.sha256` and its manifest into `out_dir`, and returns them.
pub fn assemble(
    prefix: &Path,
    inputs: &AssemblyInputs,
    policy: &relocate::Policy,
    out_dir: &Path,
    on_phase: &mut dyn FnMut(&str),
) -> Result<Assembled, BuildError> {
    on_phase("relocate");
    let relocation = relocate::relocate(prefix, policy)?;
    on_phase("package");
    let stem = inputs.stem();
    let mtime = u64::try_from(inputs.source_date_epoch).unwrap_or(0);
    let packaged = package::write_archive(prefix, &stem, mtime, out_dir)?;
    let archive_name = format!("{stem}{}", package::TAR_GZ);
    let states = inputs.matrix.features_for(inputs.target, inputs.version);
    let manifest = Manifest {
        format: 1,
        version: inputs.version,
        target: inputs.target.triple.clone(),
        backend: inputs.backend,
        archive: archive_name.clone(),
        archive_sha256: packaged.sha256.clone(),
        configure_flags: inputs.matrix.configure_flags(inputs.target, inputs.version),
        features_enabled: states.iter().filter(|(_, s)| s.enabled).map(|(n, _)| n.clone()).collect(),
        features: states,
        bundled_libraries: relocation.bundled.clone(),
        scrubbed_store_references: relocation.scrubbed_store_references.clone(),
        glibc_floor: relocation.glibc_floor.clone(),
        file_count: packaged.file_count,
        source: ManifestSource {
            name: inputs.entry.tarball.clone(),
            sha256: inputs.entry.sha256.clone(),
            size: inputs.entry.size,
            trust: inputs.assessment.level.to_string(),
            evidence: inputs.assessment.evidence_kinds(),
            signers: inputs.assessment.signers(),
        },
        toolchain: inputs.toolchain.clone(),
        hardening: relocation
            .elf_files
            .iter()
            .map(|f| HardeningEntry {
                path: f.path.clone(),
                pie: f.info.hardening.pie,
                full_relro: f.info.hardening.relro && f.info.hardening.bind_now,
                bind_now: f.info.hardening.bind_now,
                stack_protector: f.info.hardening.stack_protector,
                nx: f.info.hardening.nx,
            })
            .collect(),
        source_date_epoch: inputs.source_date_epoch,
        cache_key: inputs.cache_key(),
        pgbin_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let manifest_file = out_dir.join(format!("{archive_name}.manifest.json"));
    let mut text = serde_json::to_string_pretty(&manifest).expect("manifest serializes");
    text.push('\n');
    crate::util::fs::write_atomic(&manifest_file, text.as_bytes()).map_err(io("cannot write the manifest"))?;
    Ok(Assembled { packaged, manifest_file, manifest })
}

/// Files of one finished build.
#[derive(Debug, Clone, Serialize)]
pub struct Artifacts {
    /// The archive.
    pub archive: PathBuf,
    /// Its `.sha256`.
    pub checksum_file: PathBuf,
    /// Its manifest.
    pub manifest_file: PathBuf,
    /// The manifest itself.
    #[serde(skip)]
    pub manifest: Manifest,
}

/// Names of the three files of an archive.
pub fn artifact_names(archive_name: &str) -> [String; 3] {
    [archive_name.to_string(), format!("{archive_name}.sha256"), format!("{archive_name}.manifest.json")]
}

/// Returns the cached artifacts for `key` if they are complete and intact.
pub fn cached(cache: &Path, key: &str, archive_name: &str) -> Option<Artifacts> {
    artifacts_in(&cache.join("builds").join(key), archive_name)
}

/// The three artifact files of `archive_name` in `dir`, if complete and the
/// archive matches its `.sha256`.
pub fn artifacts_in(dir: &Path, archive_name: &str) -> Option<Artifacts> {
    let [archive, checksum, manifest] = artifact_names(archive_name).map(|n| dir.join(n));
    if !package::matches_checksum_file(&archive, archive_name)? {
        return None;
    }
    let parsed: Manifest = serde_json::from_str(&std::fs::read_to_string(&manifest).ok()?).ok()?;
    Some(Artifacts { archive, checksum_file: checksum, manifest_file: manifest, manifest: parsed })
}

/// Copies artifacts into `out_dir`, each file atomically.
pub fn publish(artifacts: &Artifacts, out_dir: &Path) -> Result<Artifacts, BuildError> {
    let mut copies = Vec::new();
    for source in [&artifacts.archive, &artifacts.checksum_file, &artifacts.manifest_file] {
        let target = out_dir.join(source.file_name().expect("artifact files have names"));
        crate::util::fs::copy_atomic(source, &target).map_err(io(format!(
            "cannot copy {} to {}",
            source.display(),
            target.display()
        )))?;
        copies.push(target);
    }
    let [archive, checksum_file, manifest_file]: [PathBuf; 3] = copies.try_into().expect("three files");
    Ok(Artifacts { archive, checksum_file, manifest_file, manifest: artifacts.manifest.clone() })
}

/// An exclusive lock on one cache key, held while that key is built, so that
/// concurrent builds of the same inputs run once: the second waits, then
/// finds the first one's result in the cache. Released on drop.
pub struct KeyLock {
    _file: std::fs::File,
}

/// Waits for and takes the lock of `key` in `cache`.
pub fn lock_key(cache: &Path, key: &str) -> Result<KeyLock, BuildError> {
    use std::os::fd::AsRawFd;
    let builds = cache.join("builds");
    std::fs::create_dir_all(&builds).map_err(io(format!("cannot create {}", builds.display())))?;
    let path = builds.join(format!("{key}.lock"));
    let file = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io(format!("cannot open {}", path.display())))?;
    // SAFETY: flock on a descriptor this function owns; blocks until granted.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(BuildError::Io {
            what: format!("cannot lock {}", path.display()),
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(KeyLock { _file: file })
}

/// Runs a full host build into `cache/builds/<key>/` (published there only
/// after the smoke test passed) and returns the cached artifacts.
pub fn host_build(
    inputs: &HostInputs,
    cache: &Path,
    log: &Path,
    keep_failed: bool,
    on_phase: &mut dyn FnMut(&str),
) -> Result<Artifacts, BuildError> {
    let builds = cache.join("builds");
    std::fs::create_dir_all(&builds).map_err(io(format!("cannot create {}", builds.display())))?;
    let work =
        tempfile::Builder::new().prefix(".work-").tempdir_in(&builds).map_err(io("cannot create a work directory"))?;
    let result = host_build_in(inputs, cache, work.path(), log, on_phase);
    if result.is_err() && keep_failed {
        let kept = work.keep();
        return result.map_err(|e| BuildError::Kept { error: Box::new(e), work: kept.display().to_string() });
    }
    result
}

fn host_build_in(
    inputs: &HostInputs,
    cache: &Path,
    work: &Path,
    log: &Path,
    on_phase: &mut dyn FnMut(&str),
) -> Result<Artifacts, BuildError> {
    let key = inputs.assembly.cache_key();
    let archive_name = format!("{}{}", inputs.assembly.stem(), package::TAR_GZ);
    let builds = cache.join("builds");
    let forbidden = [cache.display().to_string()];
    let assembled = build_and_assemble(inputs, work, log, &Variation::default(), &forbidden, on_phase)?;

    on_phase("smoke");
    // The system temporary directory: an unprivileged server user must be
    // able to reach the scratch cluster, which a private cache may not allow.
    let report = smoke::smoke(&assembled.packaged.archive, &std::env::temp_dir(), None)?;
    if let Some(failed) = report.failure() {
        return Err(BuildError::SmokeFailed { check: failed.name.clone(), detail: failed.detail.clone() });
    }

    let final_dir = builds.join(&key);
    if final_dir.exists() {
        std::fs::remove_dir_all(&final_dir).map_err(io(format!("cannot replace {}", final_dir.display())))?;
    }
    let staging = assembled.manifest_file.parent().expect("the manifest is in the staging directory");
    std::fs::rename(staging, &final_dir).map_err(io(format!("cannot publish into {}", final_dir.display())))?;
    cached(cache, &key, &archive_name).ok_or_else(|| BuildError::Io {
        what: "the cached build is incomplete right after writing it".into(),
        source: std::io::Error::from(std::io::ErrorKind::InvalidData),
    })
}

/// Builds in `work` under `variation`, then relocates and packages into
/// `work/out`. No file may mention `work` or any of `forbidden`.
pub fn build_and_assemble(
    inputs: &HostInputs,
    work: &Path,
    log: &Path,
    variation: &Variation,
    forbidden: &[String],
    on_phase: &mut dyn FnMut(&str),
) -> Result<Assembled, BuildError> {
    let assembly = &inputs.assembly;
    let host = HostBuild {
        tarball: inputs.tarball.to_path_buf(),
        source_dir_name: format!("postgresql-{}", assembly.version),
        archive_stem: assembly.stem(),
        configure_flags: assembly.matrix.configure_flags(assembly.target, assembly.version),
        cflags: assembly.matrix.host.cflags.clone(),
        ldflags: assembly.matrix.host.ldflags.clone(),
        source_date_epoch: assembly.source_date_epoch,
        jobs: inputs.jobs,
        work_dir: work.join("build"),
        log: log.to_path_buf(),
        variation: variation.clone(),
    };
    let prefix = host.run(&mut |phase: Phase| on_phase(phase.name()))?;
    // The source and object tree (tens of thousands of files) is no longer
    // needed: remove it while relocation and packaging run.
    let source_tree = work.join("build/src");
    let cleanup = std::thread::spawn(move || std::fs::remove_dir_all(source_tree));

    let system = relocate::system_libraries()?;
    let mut forbidden_paths = vec![work.display().to_string()];
    forbidden_paths.extend(forbidden.iter().cloned());
    let policy = relocate::Policy {
        search: relocate::LibrarySearch::System(&system),
        interpreter: assembly.target.standard_interpreter(),
        forbidden: forbidden_paths,
        scrub_store: None,
        describe: &crate::source::debian::owning_package,
    };
    let assembled = assemble(&prefix, assembly, &policy, &work.join("out"), on_phase)?;
    cleanup.join().expect("the cleanup thread does not panic").map_err(io("cannot remove the build tree"))?;
    Ok(assembled)
}

/// Runs `nix build <extra> -L <repo>#<attribute>` with its log in `log`;
/// returns the installable and the finished process.
fn run_nix_build(
    repo: &Path,
    attribute: &str,
    log: &Path,
    extra: &[&str],
) -> Result<(String, std::process::Output), BuildError> {
    let log_file = std::fs::File::create(log).map_err(io(format!("cannot create {}", log.display())))?;
    let installable = format!("{}#{attribute}", repo.display());
    let output = Command::new("nix")
        .args(["--extra-experimental-features", "nix-command flakes", "build"])
        .args(extra)
        .args(["--no-link", "-L"])
        .arg(&installable)
        .stderr(log_file)
        .output()
        .map_err(io("cannot run nix (install Nix, or use --backend host)"))?;
    Ok((installable, output))
}

/// Builds flake attribute `attribute` (a package, or its `.archive`) of
/// the flake at `repo` with `nix build` (its log to `log`) and returns its
/// output path.
pub fn nix_build(repo: &Path, attribute: &str, log: &Path) -> Result<PathBuf, BuildError> {
    let (installable, output) = run_nix_build(repo, attribute, log, &["--json"])?;
    if !output.status.success() {
        let tail = crate::build::host::log_tail(log, 40);
        let cause = tail.iter().rev().find(|l| l.trim_start().starts_with("error:")).or(tail.last());
        let cause = cause.map_or("no message", |l| l.trim());
        return Err(BuildError::Nix(format!("nix build {installable} failed: {cause}")));
    }
    let built: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| BuildError::Nix(format!("nix build printed no JSON result: {e}")))?;
    built[0]["outputs"]["out"]
        .as_str()
        .map(PathBuf::from)
        .ok_or_else(|| BuildError::Nix("nix build did not name an output path".into()))
}

/// Rebuilds the derivation of `attribute` (already built) with `nix build
/// --rebuild --keep-failed`: `None` when Nix found the rebuild identical,
/// or the kept `<out>.check` path when it differs. Only that derivation is
/// rebuilt, not its dependencies.
pub fn nix_rebuild(repo: &Path, attribute: &str, log: &Path) -> Result<Option<PathBuf>, BuildError> {
    let (installable, output) = run_nix_build(repo, attribute, log, &["--rebuild", "--keep-failed"])?;
    if output.status.success() {
        return Ok(None);
    }
    // Nix's own message ends the log ("... differs from '<out>.check'");
    // the build's output before it may name anything.
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let check = text
        .split_whitespace()
        .rev()
        .map(|w| w.trim_matches(|c: char| c == '\'' || c == '`' || c == ','))
        .find(|w| w.ends_with(".check") && w.starts_with('/'))
        .map(PathBuf::from);
    check.filter(|p| p.exists()).map(Some).ok_or_else(|| {
        BuildError::Nix(format!(
            "nix build --rebuild {installable} failed without a .check output; see {}",
            log.display()
        ))
    })
}

/// The host's toolchain identity: compiler version and Debian package versions.
pub fn host_toolchain(packages: &[String]) -> Result<Toolchain, BuildError> {
    let output = Command::new("cc").arg("--version").output().map_err(io("cannot run cc --version"))?;
    let compiler = String::from_utf8_lossy(&output.stdout).lines().next().unwrap_or("").to_string();
    Ok(Toolchain { compiler, packages: crate::source::debian::installed_versions(packages), nixpkgs: None })
}

/// The machine's own target triple, if pgbin knows it.
pub fn host_triple() -> Option<&'static str> {
    match (std::env::consts::ARCH, std::env::consts::OS, cfg!(target_env = "musl")) {
        ("x86_64", "linux", false) => Some("x86_64-unknown-linux-gnu"),
        ("aarch64", "linux", false) => Some("aarch64-unknown-linux-gnu"),
        ("x86_64", "linux", true) => Some("x86_64-unknown-linux-musl"),
        ("aarch64", "linux", true) => Some("aarch64-unknown-linux-musl"),
        ("aarch64", "macos", _) => Some("aarch64-apple-darwin"),
        ("x86_64", "macos", _) => Some("x86_64-apple-darwin"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_names_follow_the_convention() {
        let names = artifact_names("postgresql-18.6.0-x86_64-unknown-linux-gnu.tar.gz");
        assert_eq!(names[1], "postgresql-18.6.0-x86_64-unknown-linux-gnu.tar.gz.sha256");
        assert_eq!(names[2], "postgresql-18.6.0-x86_64-unknown-linux-gnu.tar.gz.manifest.json");
    }

    #[test]
    fn a_key_lock_excludes_a_second_holder_until_dropped() {
        let cache = tempfile::tempdir().unwrap();
        let first = lock_key(cache.path(), "k").unwrap();
        let path = cache.path().join("builds/k.lock");
        let probe = std::fs::File::open(&path).unwrap();
        use std::os::fd::AsRawFd;
        let try_lock = || unsafe { libc::flock(probe.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        assert_ne!(try_lock(), 0, "held by the first lock");
        drop(first);
        assert_eq!(try_lock(), 0, "free after drop");
    }

    #[test]
    fn a_corrupt_cache_entry_is_not_used() {
        let cache = tempfile::tempdir().unwrap();
        let dir = cache.path().join("builds/k");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.tar.gz"), b"archive").unwrap();
        std::fs::write(dir.join("a.tar.gz.sha256"), package::checksum_line(&"0".repeat(64), "a.tar.gz")).unwrap();
        std::fs::write(dir.join("a.tar.gz.manifest.json"), b"{}").unwrap();
        assert!(cached(cache.path(), "k", "a.tar.gz").is_none());
    }
}
