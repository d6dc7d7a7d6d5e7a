//! `build`: from a verified source to a tested, relocatable archive.
//!
//! The host backend runs [`crate::build::host`], [`crate::build::relocate`],
//! the ISA check [`crate::build::isa`] and [`crate::build::package`], writes the manifest, and runs [`crate::build::smoke`] on the
//! result before anything is published. Results are cached under a key over
//! every input (source hash, target, configure and compiler flags, backend,
//! toolchain identity with every installed package the build can read, see
//! [`crate::build::inputs`], recipe version): the same inputs are never built
//! twice, and a host build whose bundled libraries the key does not cover is
//! refused.
//! Publishing copies the archive, its `.sha256` and its manifest atomically.

pub mod apt;
pub mod cache;
pub mod cross;
pub mod docker;
pub mod elf;
pub mod host;
pub mod inputs;
pub mod isa;
pub mod manifest;
pub mod package;
pub mod prebuilt;
pub mod relocate;
pub mod smoke;
pub mod sysroot;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::build::cache::{Artifacts, cached};
use crate::build::host::{HostBuild, Variation};
use crate::build::manifest::{Backend, HardeningEntry, Manifest, ManifestSource, RECIPE_VERSION, Toolchain};
use crate::data::lock::LockedSource;
use crate::data::matrix::{Matrix, Target};
use crate::data::version::Version;
use crate::source::fetch::WORK_PREFIX;
use crate::source::verify::Assessment;
use crate::util::io::{IoError, context};
use crate::util::progress::Progress;
use crate::util::scratch::ScratchDir;

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Local I/O.
    #[error(transparent)]
    Io(#[from] IoError),
    /// The host build failed.
    #[error(transparent)]
    Host(#[from] crate::build::host::HostBuildError),
    /// Relocation failed.
    #[error(transparent)]
    Relocate(#[from] relocate::RelocateError),
    /// A file is built for another instruction set than the target's.
    #[error(transparent)]
    Isa(Box<isa::IsaError>),
    /// Packaging failed.
    #[error(transparent)]
    Package(#[from] package::PackageError),
    /// The smoke test could not run.
    #[error(transparent)]
    Smoke(#[from] smoke::SmokeError),
    /// The installed packages could not be recorded, or do not cover what
    /// was bundled.
    #[error(transparent)]
    Inputs(Box<inputs::InputsError>),
    /// A build failed and its work directory was kept for inspection.
    #[error("{error} (work directory kept: {work})")]
    Kept {
        /// The failure.
        error: Box<BuildError>,
        /// The kept directory.
        work: String,
    },
}

impl BuildError {
    /// Whether the machine's packages stopped the build (not recordable, not
    /// covering a bundled library, or changed during the build): a problem of
    /// the machine, not a failed check of the build.
    pub fn is_inputs(&self) -> bool {
        match self {
            BuildError::Inputs(_) => true,
            BuildError::Kept { error, .. } => error.is_inputs(),
            _ => false,
        }
    }
}

impl From<isa::IsaError> for BuildError {
    fn from(error: isa::IsaError) -> BuildError {
        BuildError::Isa(Box::new(error))
    }
}

impl From<inputs::InputsError> for BuildError {
    fn from(error: inputs::InputsError) -> BuildError {
        BuildError::Inputs(Box::new(error))
    }
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

impl HostInputs<'_> {
    /// The cross toolchain of the build, when it is a cross build.
    pub fn cross(&self) -> Option<&cross::CrossBuild> {
        self.assembly.cross
    }
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
    /// The cross toolchain, when the host backend cross-compiles.
    pub cross: Option<&'a cross::CrossBuild>,
}

impl AssemblyInputs<'_> {
    /// The archive stem (`postgresql-18.6.0-<triple>`).
    pub fn stem(&self) -> String {
        self.target.archive_name(self.version).trim_end_matches(package::TAR_GZ).to_string()
    }

    /// SHA-256 over a canonical JSON of every input.
    pub fn cache_key(&self) -> String {
        let mut inputs = serde_json::json!({
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
        if let Some(cross) = self.cross {
            inputs["cross"] = serde_json::json!({
                "build": cross.build_gnu_type,
                "host": cross.debian,
                "emulator": cross.emulator,
                "configure_answers": cross.answers,
                "sysroot": cross.sysroot.as_ref().and_then(|s| s.root.file_name()).map(|n| n.to_string_lossy()),
                "wrappers": cross.wrappers_for_key(),
            });
        }
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
/// its `.sha256` and its manifest (with `configure_checks`, what a host
/// build's configure settled on) into `out_dir`, and returns them.
pub fn assemble(
    prefix: &Path,
    inputs: &AssemblyInputs,
    policy: &relocate::Policy,
    out_dir: &Path,
    configure_checks: Option<BTreeMap<String, String>>,
    progress: &mut dyn Progress,
) -> Result<Assembled, BuildError> {
    progress.phase("relocate");
    let relocation = relocate::relocate(prefix, policy)?;
    if inputs.backend == Backend::Host {
        inputs::check_covered(&relocation.bundled, &inputs.toolchain.packages)?;
    }
    let isa = inputs.target.isa().map(|target_isa| isa::check_tree(prefix, target_isa)).transpose()?;
    progress.phase("package");
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
        isa,
        cross_compiled_on: inputs.cross.map(|c| c.build_gnu_type.clone()),
        configure_checks,
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
    crate::util::fs::write_atomic(&manifest_file, text.as_bytes()).map_err(context("cannot write the manifest"))?;
    Ok(Assembled { packaged, manifest_file, manifest })
}

/// Prefix of a failed build's work directory kept with `--keep-failed`
/// (outside the sweep of [`WORK_PREFIX`] directories).
pub const KEPT_PREFIX: &str = "failed-";

/// Runs a full host build into `cache/builds/<key>/` (published there only
/// after the smoke test passed) and returns the cached artifacts. The work
/// directory is a scratch directory that a later pgbin removes if this
/// one is killed.
pub fn host_build(
    inputs: &HostInputs,
    cache: &Path,
    log: &Path,
    keep_failed: bool,
    progress: &mut dyn Progress,
) -> Result<Artifacts, BuildError> {
    let builds = cache.join("builds");
    std::fs::create_dir_all(&builds).map_err(context(format!("cannot create {}", builds.display())))?;
    let work = ScratchDir::new_in(&builds, WORK_PREFIX).map_err(context("cannot create a work directory"))?;
    let result = host_build_in(inputs, cache, work.path(), log, progress);
    match result {
        Err(e) if keep_failed => {
            let work = work
                .keep(KEPT_PREFIX)
                .map_or_else(|k| format!("none, renaming it failed: {k}"), |kept| kept.display().to_string());
            Err(BuildError::Kept { error: Box::new(e), work })
        }
        result => result,
    }
}

fn host_build_in(
    inputs: &HostInputs,
    cache: &Path,
    work: &Path,
    log: &Path,
    progress: &mut dyn Progress,
) -> Result<Artifacts, BuildError> {
    let key = inputs.assembly.cache_key();
    let archive_name = format!("{}{}", inputs.assembly.stem(), package::TAR_GZ);
    let builds = cache.join("builds");
    let forbidden = [cache.display().to_string()];
    let assembled = build_and_assemble(inputs, work, log, &Variation::default(), &forbidden, progress)?;

    progress.phase("smoke");
    // The system temporary directory: an unprivileged server user must be
    // able to reach the scratch cluster, which a private cache may not allow.
    let sysroot = inputs.cross().and_then(|c| c.sysroot.as_ref()).map(|s| s.root.as_path());
    let run = smoke::Run { sysroot, ..smoke::Run::default() };
    smoke::smoke_passing_with(&assembled.packaged.archive, &std::env::temp_dir(), &run)?;

    let final_dir = builds.join(&key);
    if final_dir.exists() {
        std::fs::remove_dir_all(&final_dir).map_err(context(format!("cannot replace {}", final_dir.display())))?;
    }
    let staging = assembled.manifest_file.parent().expect("the manifest is in the staging directory");
    std::fs::rename(staging, &final_dir).map_err(context(format!("cannot publish into {}", final_dir.display())))?;
    cached(cache, &key, &archive_name).ok_or_else(|| {
        BuildError::Io(IoError::new(
            "the cached build is incomplete right after writing it",
            std::io::Error::from(std::io::ErrorKind::InvalidData),
        ))
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
    progress: &mut dyn Progress,
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
        cross: inputs.cross().cloned(),
        recorded_checks: assembly.matrix.host.cross.configure_answers.keys().cloned().collect(),
    };
    let output = host.run(progress)?;
    let prefix = output.prefix;
    // The source and object tree (tens of thousands of files) is no longer
    // needed: remove it while relocation and packaging run.
    let source_tree = work.join("build/src");
    let cleanup = std::thread::spawn(move || std::fs::remove_dir_all(source_tree));

    let system = match inputs.cross() {
        Some(cross) => cross.libraries().map_err(host::HostBuildError::from)?,
        None => relocate::system_libraries()?,
    };
    let mut forbidden_paths = vec![work.display().to_string()];
    forbidden_paths.extend(forbidden.iter().cloned());
    let mut policy = relocate::Policy::host(&system, assembly.target, forbidden_paths);
    let cross_owner = |path: &Path| inputs.cross().expect("set for cross builds").owner(path);
    if inputs.cross().is_some() {
        policy.describe = &cross_owner;
    }
    let assembled = assemble(&prefix, assembly, &policy, &work.join("out"), Some(output.configure_checks), progress)?;
    cleanup.join().expect("the cleanup thread does not panic").map_err(context("cannot remove the build tree"))?;
    Ok(assembled)
}

/// The host's toolchain identity: the compiler's version line (of
/// `compiler`, `cc` or the cross compiler, as the build's pinned `PATH`
/// finds it) and the record of every installed package the build can read
/// ([`inputs::Database::closure`] of `packages`).
pub fn host_toolchain(packages: &[String], compiler: &str) -> Result<Toolchain, BuildError> {
    let output = Command::new(compiler)
        .arg("--version")
        .env("PATH", host::BUILD_PATH)
        .output()
        .map_err(context(format!("cannot run {compiler} --version")))?;
    let compiler = String::from_utf8_lossy(&output.stdout).lines().next().unwrap_or("").to_string();
    Ok(Toolchain { compiler, packages: inputs::read_status()?.closure(packages), nixpkgs: None })
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

crate::util::error::usage_errors!(BuildError);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::lock::SourceLock;
    use crate::data::repo::Repo;
    use crate::source::verify::Level;

    fn key_with(packages: BTreeMap<String, String>) -> String {
        let repo = Repo::discover(Some(Path::new(env!("CARGO_MANIFEST_DIR")))).unwrap();
        let (matrix, lock) = (Matrix::load(&repo).unwrap(), SourceLock::load(&repo).unwrap());
        let version: Version = "18.6".parse().unwrap();
        let assessment = Assessment { level: Level::Signed, evidence: Vec::new() };
        let toolchain = Toolchain { compiler: "cc (Debian 12.2.0-14+deb12u1) 12.2.0".into(), packages, nixpkgs: None };
        let inputs = AssemblyInputs {
            version,
            entry: lock.get(version).unwrap(),
            assessment: &assessment,
            target: matrix.target("x86_64-unknown-linux-gnu").unwrap(),
            matrix: &matrix,
            source_date_epoch: 1_700_000_000,
            toolchain: &toolchain,
            backend: Backend::Host,
            cross: None,
        };
        inputs.cache_key()
    }

    #[test]
    fn a_bundled_librarys_package_version_is_part_of_the_cache_key() {
        let record = |libssl3: &str| {
            BTreeMap::from([
                ("libssl-dev".to_string(), "3.0.19-1~deb12u2".to_string()),
                ("libssl3".to_string(), libssl3.to_string()),
            ])
        };
        let before = key_with(record("3.0.19-1~deb12u2"));
        assert_eq!(before, key_with(record("3.0.19-1~deb12u2")), "the same inputs give the same key");
        assert_ne!(before, key_with(record("3.0.22-1~deb12u2")), "an upgraded libssl3 gives another key");
    }

    #[test]
    fn a_build_stopped_by_the_machines_packages_says_so_even_when_kept() {
        let uncovered =
            || BuildError::from(inputs::InputsError::Unpackaged { library: "libx.so.1".into(), origin: "/opt".into() });
        assert!(uncovered().is_inputs());
        assert!(BuildError::Kept { error: Box::new(uncovered()), work: "w".into() }.is_inputs());
        let io = BuildError::Io(IoError::new("x", std::io::Error::from(std::io::ErrorKind::NotFound)));
        assert!(!io.is_inputs());
    }
}
