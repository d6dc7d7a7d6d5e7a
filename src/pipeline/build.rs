//! `pgbin build` as one library call: verify and obtain the source, build
//! it with one backend (host toolchain, the flake's Nix derivation, or the
//! musl Dockerfile), and publish the archive into `--out` together with its
//! `.sha256`, manifest, provenance and SBOM, all-or-nothing.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::attest::documents::{DocumentError, Documents, run_context, write_documents};
use crate::build::apt::{self, AptError};
use crate::build::cache::{self, Artifacts};
use crate::build::cross::{CrossBuild, CrossError};
use crate::build::docker::{self, DockerError, DockerPlan};
use crate::build::inputs::native_arch;
use crate::build::manifest::{Backend, Toolchain};
use crate::build::smoke::{self, SmokeError};
use crate::build::sysroot::{self, SysrootError};
use crate::build::{self as host, AssemblyInputs, BuildError, HostInputs};
use crate::data::matrix::Target;
use crate::data::version::Version;
use crate::nix::build::{NixBuildError, nix_build};
use crate::nix::seed::{SeedError, seed_store};
use crate::nix::store::pinned_nixpkgs_available;
use crate::source::fetch::{ObtainError, default_cache_dir, obtain_verified};
use crate::source::project::{Project, ProjectError};
use crate::source::verify::Assessment;
use crate::util::error::{Classify, FailureKind};
use crate::util::fs::log_tail;
use crate::util::io::{IoError, context};
use crate::util::progress::Progress;
use crate::util::publish::{STAGING_PREFIX, publish_set};
use crate::util::scratch::{ScratchDir, swept_dir};
use crate::util::time::now;

/// Which backend [`build`] uses (the Docker parity build is [`build_docker`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendChoice {
    /// Nix when the pinned nixpkgs is in the local store, else host.
    Auto,
    /// The flake's generic builder.
    Nix,
    /// The machine's own toolchain.
    Host,
}

/// What to build and where to publish it.
#[derive(Debug, Clone)]
pub struct BuildRequest<'a> {
    /// The release.
    pub version: Version,
    /// The target.
    pub target: &'a Target,
    /// Where the published files go.
    pub out: &'a Path,
    /// The cache directory (default: [`default_cache_dir`]).
    pub cache: Option<&'a Path>,
    /// Parallel make jobs (default: the number of CPUs).
    pub jobs: Option<usize>,
    /// Keep the work directory of a failed host build.
    pub keep_failed: bool,
}

/// What a finished build published.
#[derive(Debug, Serialize)]
pub struct Published {
    /// The release.
    pub version: Version,
    /// The target triple.
    pub target: String,
    /// The backend that built it.
    pub backend: Backend,
    /// Whether the build cache answered.
    pub cached: bool,
    /// Seconds from start to published.
    pub seconds: f64,
    /// The build log, when a build ran.
    pub log: Option<PathBuf>,
    /// The published archive, `.sha256` and manifest.
    #[serde(flatten)]
    pub artifacts: Artifacts,
    /// The archive's SHA-256.
    pub sha256: String,
    /// The published provenance.
    pub provenance: PathBuf,
    /// The published SBOM.
    pub sbom: PathBuf,
    /// One line saying how it was made (and smoke-tested).
    pub summary: String,
}

/// Why a build did not publish anything.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The release is not locked or not trusted enough.
    #[error(transparent)]
    Project(#[from] ProjectError),
    /// The verified source could not be obtained.
    #[error(transparent)]
    Obtain(#[from] ObtainError),
    /// The source could not be put into the Nix store.
    #[error(transparent)]
    Seed(#[from] SeedError),
    /// Local I/O.
    #[error(transparent)]
    Io(#[from] IoError),
    /// The provenance or SBOM could not be written.
    #[error(transparent)]
    Documents(#[from] DocumentError),
    /// The host backend cannot build the target here.
    #[error(
        "the host backend builds Linux glibc targets with a Debian architecture, natively or with Debian's cross toolchains on a Debian {host} machine; {target} needs --backend nix"
    )]
    NotHostTarget {
        /// This machine's triple.
        host: String,
        /// The one asked for.
        target: String,
    },
    /// The target is withheld: its archives would not run.
    #[error("{target} is withheld: {reason}")]
    Withheld {
        /// The target asked for.
        target: String,
        /// Why (data/targets.toml).
        reason: String,
    },
    /// Build dependencies are missing and cannot be installed.
    #[error(transparent)]
    Dependencies(#[from] AptError),
    /// The cross build cannot be planned.
    #[error(transparent)]
    Cross(#[from] CrossError),
    /// The cross build's sysroot cannot be prepared.
    #[error(transparent)]
    Sysroot(#[from] SysrootError),
    /// The toolchain could not be identified, or the cache not locked.
    #[error(transparent)]
    Prepare(BuildError),
    /// The build (configure, make, relocation, packaging or smoke test) failed.
    #[error("build failed: {error}")]
    Build {
        /// The failure.
        error: BuildError,
        /// The build log.
        log: PathBuf,
        /// The log's last lines, when the compiler failed.
        tail: Vec<String>,
    },
    /// `nix build` failed.
    #[error("{error}; full log: {}", log.display())]
    Nix {
        /// The failure.
        error: NixBuildError,
        /// Nix's log.
        log: PathBuf,
    },
    /// The Nix output does not hold the archive set.
    #[error("{output} does not hold an intact {archive} with .sha256 and manifest")]
    NixOutput {
        /// The store path.
        output: String,
        /// The archive expected in it.
        archive: String,
    },
    /// The smoke test could not run or failed.
    #[error(transparent)]
    Smoke(#[from] SmokeError),
    /// The store could not say which derivation built the Nix output.
    #[error(transparent)]
    Closure(#[from] crate::nix::closure::ClosureError),
    /// The Docker plan or engine failed before building.
    #[error(transparent)]
    Docker(DockerError),
    /// `docker build` failed.
    #[error(transparent)]
    DockerBuild(DockerError),
    /// The Docker build's archive does not match its `.sha256`.
    #[error("the docker build's {0} does not match its .sha256")]
    DockerChecksum(String),
}

impl Classify for PipelineError {
    fn kind(&self) -> FailureKind {
        match self {
            PipelineError::Project(e) => e.kind(),
            PipelineError::Obtain(e) => e.kind(),
            PipelineError::Seed(e) => e.kind(),
            PipelineError::Documents(e) => e.kind(),
            PipelineError::Smoke(e) => e.kind(),
            PipelineError::Build { error, .. } if error.is_inputs() => FailureKind::Usage,
            PipelineError::Build { .. }
            | PipelineError::NixOutput { .. }
            | PipelineError::DockerBuild(_)
            | PipelineError::DockerChecksum(_) => FailureKind::Check,
            PipelineError::Io(_)
            | PipelineError::Closure(_)
            | PipelineError::NotHostTarget { .. }
            | PipelineError::Withheld { .. }
            | PipelineError::Dependencies(_)
            | PipelineError::Cross(_)
            | PipelineError::Sysroot(_)
            | PipelineError::Prepare(_)
            | PipelineError::Nix { .. }
            | PipelineError::Docker(_) => FailureKind::Usage,
        }
    }

    fn message(&self) -> String {
        match self {
            PipelineError::Project(e) => e.message(),
            PipelineError::Obtain(e) => e.message(),
            PipelineError::Seed(e) => e.message(),
            other => other.to_string(),
        }
    }
}

/// One Debian package a host build needs, and whether it is installed.
#[derive(Debug, Clone, Serialize)]
pub struct Dependency {
    /// The package (`libssl-dev`).
    pub package: String,
    /// Its installed version, if installed.
    pub installed: Option<String>,
}

/// The Debian packages a host build of one release for one target needs here.
#[derive(Debug, Clone, Serialize)]
pub struct Dependencies {
    /// The release.
    pub version: Version,
    /// The target triple.
    pub target: String,
    /// The target's Debian architecture, when the build is a cross build.
    pub cross_arch: Option<String>,
    /// Every package the build machine needs, sorted.
    pub packages: Vec<Dependency>,
    /// The target's packages a cross build unpacks into its sysroot
    /// (`libssl-dev:arm64`; fetched by `pgbin build`, never installed).
    pub sysroot_packages: Vec<String>,
    /// Whether this call installed the missing ones.
    pub installed_now: bool,
}

impl Dependencies {
    /// The packages not installed.
    pub fn missing(&self) -> Vec<&str> {
        self.packages.iter().filter(|d| d.installed.is_none()).map(|d| d.package.as_str()).collect()
    }
}

/// The Debian packages a host build of `version` for `target` needs on
/// this machine (native or cross), installing the missing ones first when
/// `install` is set (as `pgbin build` does), so that a machine can be
/// prepared before builds run in parallel.
pub fn host_dependencies(
    project: &Project,
    version: Version,
    target: &Target,
    install: bool,
    progress: &mut dyn Progress,
) -> Result<Dependencies, PipelineError> {
    let machine = HostMachine::plan(project, version, target)?;
    if install {
        apt::ensure_installed(&machine.packages, progress)?;
    }
    let installed = apt::installed_versions(&machine.packages);
    Ok(Dependencies {
        version,
        target: target.triple.clone(),
        cross_arch: machine.cross.map(|c| c.debian.arch),
        packages: machine
            .packages
            .iter()
            .map(|p| Dependency { package: p.clone(), installed: installed.get(p).cloned() })
            .collect(),
        sysroot_packages: machine.sysroot_packages,
        installed_now: install,
    })
}

/// What the host backend needs on this machine for one build: the build
/// machine's packages, and for a cross build the cross plan and the
/// packages of its sysroot.
struct HostMachine {
    packages: Vec<String>,
    cross: Option<CrossBuild>,
    sysroot_packages: Vec<String>,
}

impl HostMachine {
    /// Checks that the host backend can build `target` here (natively, or
    /// with Debian's cross toolchain for the target's architecture).
    fn plan(project: &Project, version: Version, target: &Target) -> Result<HostMachine, PipelineError> {
        let build_arch = native_arch();
        let machine = host::host_triple().and_then(|triple| project.matrix.target(triple).ok());
        let build_debian = match (machine.and_then(|m| m.debian.as_ref()), &target.debian) {
            (Some(debian), Some(_)) => debian,
            _ => {
                return Err(PipelineError::NotHostTarget {
                    host: build_arch.to_string(),
                    target: target.triple.clone(),
                });
            }
        };
        Ok(HostMachine {
            packages: project.matrix.host_packages(target, version, build_arch),
            cross: CrossBuild::plan(&project.matrix, target, build_arch, &build_debian.gnu_type)?,
            sysroot_packages: project.matrix.sysroot_packages(target, version, build_arch),
        })
    }
}

/// What a host build needs beyond the project data: the verified tarball,
/// its evidence and the toolchain identity. Shared with `pgbin repro`.
pub struct HostPlan {
    version: Version,
    tarball: PathBuf,
    assessment: Assessment,
    packages: Vec<String>,
    toolchain: Toolchain,
    source_date_epoch: i64,
    cross: Option<CrossBuild>,
}

impl HostPlan {
    /// Checks that the host backend can build `target` here (natively, or
    /// with Debian's cross toolchain for the target's architecture),
    /// installs build dependencies, prepares a cross build's sysroot and
    /// obtains the verified tarball.
    pub fn prepare(
        project: &Project,
        version: Version,
        target: &Target,
        cache: Option<&Path>,
        progress: &mut dyn Progress,
    ) -> Result<HostPlan, PipelineError> {
        let HostMachine { packages, cross, sysroot_packages } = HostMachine::plan(project, version, target)?;
        apt::ensure_installed(&packages, progress)?;
        let cross = match cross {
            Some(cross) => {
                apt::ensure_architectures(&sysroot_packages, progress)?;
                let cache_dir = cache.map_or_else(default_cache_dir, Path::to_path_buf);
                let root = sysroot::prepare(&cache_dir, &cross.debian.arch, &sysroot_packages, progress)?;
                Some(cross.with_sysroot(root))
            }
            None => None,
        };
        let (obtained, assessment) = obtain_verified(project, version, cache, progress)?;
        let (_, release) = project.catalog.release(version).expect("the lock only holds catalogued releases");
        let toolchain = record_toolchain(&packages, cross.as_ref())?;
        Ok(HostPlan {
            version,
            tarball: obtained.path,
            assessment,
            packages,
            toolchain,
            source_date_epoch: release.source_date_epoch(),
            cross,
        })
    }

    /// The toolchain identity recorded for the next build: the compiler and
    /// every installed package it can read (what the cache key covers).
    pub fn toolchain(&self) -> &Toolchain {
        &self.toolchain
    }

    /// The machine's toolchain identity now, recorded afresh.
    pub fn record_toolchain(&self) -> Result<Toolchain, PipelineError> {
        record_toolchain(&self.packages, self.cross.as_ref())
    }

    /// Records the toolchain identity afresh for the builds that follow.
    pub fn rerecord(&mut self) -> Result<(), PipelineError> {
        self.toolchain = self.record_toolchain()?;
        Ok(())
    }

    /// The build's inputs; `jobs` defaults to the number of CPUs.
    pub fn inputs<'a>(&'a self, project: &'a Project, target: &'a Target, jobs: Option<usize>) -> HostInputs<'a> {
        HostInputs {
            assembly: AssemblyInputs {
                version: self.version,
                entry: project.lock.get(self.version).expect("prepare checked the lock"),
                assessment: &self.assessment,
                target,
                matrix: &project.matrix,
                source_date_epoch: self.source_date_epoch,
                toolchain: &self.toolchain,
                backend: Backend::Host,
                cross: self.cross.as_ref(),
            },
            tarball: &self.tarball,
            jobs: jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        }
    }
}

/// The toolchain identity of a host build: the compiler (the cross
/// compiler for a cross build), the record of the machine's `packages`,
/// and every package of a cross build's sysroot.
fn record_toolchain(packages: &[String], cross: Option<&CrossBuild>) -> Result<Toolchain, PipelineError> {
    let compiler = cross.map_or_else(|| "cc".to_string(), CrossBuild::compiler);
    let mut toolchain = host::host_toolchain(packages, &compiler).map_err(PipelineError::Prepare)?;
    if let Some(sysroot) = cross.and_then(|c| c.sysroot.as_ref()) {
        toolchain.packages.extend(sysroot.record.clone());
    }
    Ok(toolchain)
}

/// The backend `choice` resolves to for this project.
pub fn resolve_backend(project: &Project, choice: BackendChoice) -> Backend {
    match choice {
        BackendChoice::Nix => Backend::Nix,
        BackendChoice::Host => Backend::Host,
        BackendChoice::Auto if pinned_nixpkgs_available(project.repo.root()) => Backend::Nix,
        BackendChoice::Auto => Backend::Host,
    }
}

/// Builds with the host or Nix backend and publishes the archive set.
pub fn build(
    project: &Project,
    request: &BuildRequest,
    backend: BackendChoice,
    progress: &mut dyn Progress,
) -> Result<Published, PipelineError> {
    let started = Instant::now();
    let started_on = now();
    if let Some(reason) = &request.target.withheld {
        return Err(PipelineError::Withheld { target: request.target.triple.clone(), reason: reason.clone() });
    }
    match resolve_backend(project, backend) {
        Backend::Nix => nix_backend(project, request, started, started_on, progress),
        Backend::Host => host_backend(project, request, started, started_on, progress),
    }
}

fn host_backend(
    project: &Project,
    request: &BuildRequest,
    started: Instant,
    started_on: String,
    progress: &mut dyn Progress,
) -> Result<Published, PipelineError> {
    let (version, target) = (request.version, request.target);
    let cache = request.cache.map_or_else(default_cache_dir, Path::to_path_buf);
    let plan = HostPlan::prepare(project, version, target, Some(&cache), progress)?;
    let inputs = plan.inputs(project, target, request.jobs);
    let key = inputs.assembly.cache_key();
    let archive_name = target.archive_name(version);

    let _lock = cache::lock_key(&cache, &key)?;
    let (artifacts, cached, log) = match cache::cached(&cache, &key, &archive_name) {
        Some(artifacts) => (artifacts, true, None),
        None => {
            if cache.join("builds").join(&key).exists() {
                progress.note(&format!(
                    "the cached build {} is incomplete or does not match its manifest; building it again",
                    &key[..12]
                ));
            }
            let log = log_file(&cache, &format!("{archive_name}.{}.log", &key[..12]))?;
            let _ = std::fs::remove_file(&log);
            progress.note(&format!("building PostgreSQL {version} for {}; full log: {}", target.triple, log.display()));
            match host::host_build(&inputs, &cache, &log, request.keep_failed, &mut *progress) {
                Ok(artifacts) => (artifacts, false, Some(log)),
                Err(error) => return Err(build_failure(error, log)),
            }
        }
    };
    let summary = if cached {
        format!("{archive_name} is already built from these exact inputs (cache key {})", &key[..12])
    } else {
        "built, relocated and smoke-tested".to_string()
    };
    let outcome = Outcome {
        version,
        target: &target.triple,
        backend: Backend::Host,
        cached,
        log,
        summary,
        started_on,
        derivation: None,
    };
    publish(project, &artifacts, request.out, outcome, started)
}

/// A failed host build, with the log's last lines when the compiler failed.
fn build_failure(error: BuildError, log: PathBuf) -> PipelineError {
    let compile_error = match &error {
        BuildError::Kept { error, .. } => matches!(**error, BuildError::Host(_)),
        other => matches!(other, BuildError::Host(_)),
    };
    let tail = if compile_error { log_tail(&log, 15) } else { Vec::new() };
    PipelineError::Build { error, log, tail }
}

/// How a build ended, for the report.
struct Outcome<'a> {
    version: Version,
    target: &'a str,
    backend: Backend,
    cached: bool,
    log: Option<PathBuf>,
    summary: String,
    /// When the build started, RFC 3339.
    started_on: String,
    /// The derivation that built the archive and its closure (nix backend).
    derivation: Option<crate::nix::closure::DerivationInputs>,
}

/// Publishes the artifacts into `out` with their provenance and SBOM. Every
/// file is staged in a directory inside `out` first and then published with
/// [`publish_set`], the `.sha256` last, so that neither a failure nor a kill
/// leaves a set that a reader requiring the `.sha256` would take as whole.
fn publish(
    project: &Project,
    artifacts: &Artifacts,
    out: &Path,
    outcome: Outcome,
    started: Instant,
) -> Result<Published, PipelineError> {
    std::fs::create_dir_all(out).map_err(context(format!("cannot create {}", out.display())))?;
    let staging = staging_dir(out)?;
    let staged = cache::publish(artifacts, staging.path())?;
    let mut run = run_context(project, &staged.manifest, Some(outcome.started_on), Some(now()), None, outcome.cached);
    run.derivation = outcome.derivation;
    let documents = write_documents(project, &staged, staging.path(), &run, Documents::Both)?;
    let mut files = vec![staged.archive.clone(), staged.manifest_file.clone()];
    files.extend(documents.iter().map(|d| d.path.clone()));
    files.push(staged.checksum_file.clone());
    let published = publish_set(&files, &staged.checksum_file, out)?;
    let [archive, manifest_file, provenance, sbom, checksum_file]: [PathBuf; 5] =
        published.try_into().expect("archive, manifest, provenance, SBOM and .sha256");
    let published = Artifacts { archive, checksum_file, manifest_file, manifest: staged.manifest.clone() };
    Ok(Published {
        version: outcome.version,
        target: outcome.target.to_string(),
        backend: outcome.backend,
        cached: outcome.cached,
        seconds: started.elapsed().as_secs_f64(),
        log: outcome.log,
        sha256: published.manifest.archive_sha256.clone(),
        artifacts: published,
        provenance,
        sbom,
        summary: outcome.summary,
    })
}

/// The path of the build log `name` under `cache/logs/`, which is created.
fn log_file(cache: &Path, name: &str) -> Result<PathBuf, IoError> {
    let logs = cache.join("logs");
    std::fs::create_dir_all(&logs).map_err(context(format!("cannot create {}", logs.display())))?;
    Ok(logs.join(name))
}

/// A scratch directory inside `out` to stage published files in (a killed
/// pgbin's staging directories are removed first).
fn staging_dir(out: &Path) -> Result<ScratchDir, IoError> {
    swept_dir(out, STAGING_PREFIX).map_err(context(format!("cannot stage into {}", out.display())))
}

/// The nix backend: seed the verified source, `nix build` the target's
/// archive derivation (relocation and packaging happen inside Nix), smoke-test
/// the result where it can run, and publish it.
fn nix_backend(
    project: &Project,
    request: &BuildRequest,
    started: Instant,
    started_on: String,
    progress: &mut dyn Progress,
) -> Result<Published, PipelineError> {
    let (version, target) = (request.version, request.target);
    let cache = request.cache.map_or_else(default_cache_dir, Path::to_path_buf);
    let (obtained, _) = obtain_verified(project, version, Some(&cache), progress)?;
    seed_store(project, version, &obtained.path)?;
    let attr = target.attr_name(version);
    let archive_name = target.archive_name(version);
    // One log per run: two builds of one target (two checkouts, or two
    // flakes) may run at once, and each reports from its own log.
    let log = log_file(&cache, &format!("{archive_name}.nix.{}.log", std::process::id()))?;
    progress.note(&format!("nix build {attr}.archive; full log: {}", log.display()));
    progress.phase("nix build");
    let output = nix_build(project.repo.root(), &format!("{attr}.archive"), &log)
        .map_err(|error| PipelineError::Nix { error, log: log.clone() })?;
    let artifacts = cache::artifacts_in(&output, &archive_name).ok_or_else(|| PipelineError::NixOutput {
        output: output.display().to_string(),
        archive: archive_name.clone(),
    })?;
    // A native archive is smoke-tested here, with the machine's own loader
    // and C library, as a user will run it; any other glibc Linux archive
    // by the flake's smoke check, under nixpkgs' emulator for the target.
    let smoked = if Some(target.triple.as_str()) == host::host_triple() {
        smoke::smoke_passing(&artifacts.archive, &std::env::temp_dir(), None)?;
        "; smoke-tested here"
    } else if target.smoke_tested_where_built() {
        let smoke_log = log_file(&cache, &format!("{archive_name}.nix-smoke.{}.log", std::process::id()))?;
        progress.note(&format!("nix build {attr}.tests.smoke; full log: {}", smoke_log.display()));
        progress.phase("nix smoke check");
        nix_build(project.repo.root(), &format!("{attr}.tests.smoke"), &smoke_log)
            .map_err(|error| PipelineError::Nix { error, log: smoke_log.clone() })?;
        "; smoke-tested under the target's emulator by the flake's check"
    } else {
        "; not smoke-tested (no smoke check runs where it is built)"
    };
    // Recorded in the provenance, so that a later `pgbin diff` can tell
    // differing inputs from non-determinism.
    let derivation = Some(crate::nix::closure::derivation_inputs(&output)?);
    let summary = format!("built with Nix ({}){smoked}", output.display());
    let outcome = Outcome {
        version,
        target: &target.triple,
        backend: Backend::Nix,
        cached: false,
        log: Some(log),
        summary,
        started_on,
        derivation,
    };
    publish(project, &artifacts, request.out, outcome, started)
}

/// What the docker backend did.
#[derive(Debug)]
pub enum DockerOutcome {
    /// `--dry-run`: the plan and the exact `docker build` arguments.
    Planned {
        /// The plan.
        plan: DockerPlan,
        /// `docker` arguments with CONTEXT and OUTPUT placeholders.
        command: Vec<String>,
    },
    /// The archive and its `.sha256`, published.
    Published(Vec<PathBuf>),
}

/// The docker backend: verify the source, plan the build from the same data
/// the flake reads, and (unless `dry_run`) run it where an engine exists.
/// Only the archive and its `.sha256` come out; parity with the Nix build is
/// checked with `pgbin parity`.
pub fn build_docker(
    project: &Project,
    request: &BuildRequest,
    dry_run: bool,
    progress: &mut dyn Progress,
) -> Result<DockerOutcome, PipelineError> {
    let (version, target) = (request.version, request.target);
    let entry = project.locked(version)?;
    let (_, release) = project.catalog.release(version).expect("the lock only holds catalogued releases");
    let plan = docker::plan(&project.matrix, target, version, &entry.sha256, release.source_date_epoch())
        .map_err(PipelineError::Docker)?;
    if dry_run {
        project.buildable_assessment(version, "build")?;
        let command = plan.command(Path::new("CONTEXT"), Path::new("OUTPUT"));
        return Ok(DockerOutcome::Planned { plan, command });
    }
    docker::engine_available().map_err(PipelineError::Docker)?;
    let cache = request.cache.map_or_else(default_cache_dir, Path::to_path_buf);
    let (obtained, _) = obtain_verified(project, version, Some(&cache), progress)?;
    let scratch = |what: &str| {
        swept_dir(&std::env::temp_dir(), &format!("pgbin-docker-{what}-"))
            .map_err(context("cannot create a temporary directory"))
    };
    let (context_dir, output_dir) = (scratch("context")?, scratch("output")?);
    let (context_dir, output_dir) = (context_dir.path(), output_dir.path());
    docker::write_context(project.repo.root(), &obtained.path, context_dir).map_err(PipelineError::Docker)?;
    let log = log_file(&cache, &format!("{}.docker.log", plan.archive))?;
    progress.note(&format!("docker build of {}; full log: {}", plan.archive, log.display()));
    let built = docker::build(&plan, context_dir, output_dir, &log).map_err(PipelineError::DockerBuild)?;
    if crate::build::package::matches_checksum_file(&built.join(&plan.archive), &plan.archive) != Some(true) {
        return Err(PipelineError::DockerChecksum(plan.archive.clone()));
    }
    let out = request.out;
    std::fs::create_dir_all(out).map_err(context(format!("cannot create {}", out.display())))?;
    let staging = staging_dir(out)?;
    let names = [plan.archive.clone(), format!("{}.sha256", plan.archive)];
    let mut staged = Vec::new();
    for name in &names {
        let file = staging.path().join(name);
        std::fs::copy(built.join(name), &file).map_err(context(format!("cannot publish {name}")))?;
        staged.push(file);
    }
    let published = publish_set(&staged, &staged[1], out)?;
    Ok(DockerOutcome::Published(published))
}
