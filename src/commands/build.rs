//! `pgbin build`: build, relocate, package and smoke-test one release.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use pgbin::build::{self, Artifacts, Backend, HostInputs};
use pgbin::data::version::Version;

use super::{Context, Failure, print_json};

/// Which backend to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    /// nix when the pinned nixpkgs is already in the local store (so the
    /// build works offline), else host
    Auto,
    /// the flake's generic builder
    Nix,
    /// the machine's own toolchain (its own target only)
    Host,
    /// dockerfiles/Dockerfile.linux-musl: the non-Nix parity build of the
    /// musl targets (needs a Docker engine)
    Docker,
}

/// Arguments of `pgbin build`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Exact version (18.6)
    version: String,
    /// Target triple or attribute suffix (default: this machine's)
    #[arg(long, value_name = "TRIPLE")]
    target: Option<String>,
    /// Build backend
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
    backend: BackendChoice,
    /// Where the archive, .sha256 and manifest are written
    #[arg(long, value_name = "DIR", default_value = "dist")]
    out: PathBuf,
    /// Cache directory (sources and builds; as for `pgbin fetch`)
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// Parallel make jobs (default: the number of CPUs)
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// Keep the work directory of a failed build and print its path
    #[arg(long)]
    keep_failed: bool,
    /// Print what would run, without building (docker backend: the exact
    /// `docker build` arguments)
    #[arg(long)]
    dry_run: bool,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct Built<'a> {
    version: Version,
    target: &'a str,
    backend: Backend,
    cached: bool,
    seconds: f64,
    log: Option<PathBuf>,
    #[serde(flatten)]
    artifacts: &'a Artifacts,
    sha256: &'a str,
    provenance: &'a Path,
    sbom: &'a Path,
}

/// Shows the current phase and elapsed time on a terminal, or one line per
/// phase otherwise.
struct PhaseDisplay {
    bar: Option<indicatif::ProgressBar>,
    started: Instant,
}

impl PhaseDisplay {
    fn new() -> PhaseDisplay {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {msg} [{elapsed_precise}]")
                    .expect("static template"),
            );
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            bar
        });
        PhaseDisplay { bar, started: Instant::now() }
    }

    fn phase(&mut self, name: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(name.to_string()),
            None => eprintln!("pgbin: [{:>6.1}s] {name}", self.started.elapsed().as_secs_f64()),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn ensure_packages(packages: &[String]) -> Result<(), Failure> {
    let missing = pgbin::source::debian::missing_packages(packages);
    if missing.is_empty() {
        return Ok(());
    }
    let command = format!("apt-get install -y {}", missing.join(" "));
    if !pgbin::build::smoke::running_as_root() {
        return Err(Failure::usage(format!("build dependencies missing; run: sudo {command}")));
    }
    eprintln!("pgbin: installing build dependencies: {}", missing.join(" "));
    if pgbin::source::debian::install_packages(&missing) {
        Ok(())
    } else {
        Err(Failure::usage(format!("installing build dependencies failed; run: {command}")))
    }
}

/// What a host build needs beyond the project data: the verified tarball,
/// its evidence and the toolchain identity. Shared with `pgbin repro`.
pub struct HostPlan {
    version: Version,
    tarball: PathBuf,
    assessment: pgbin::source::verify::Assessment,
    toolchain: build::Toolchain,
    source_date_epoch: i64,
}

impl HostPlan {
    /// Checks that `target` is this machine's, installs build dependencies
    /// and obtains the verified tarball.
    pub fn prepare(
        project: &pgbin::source::project::Project,
        version: Version,
        target: &pgbin::data::matrix::Target,
        cache: Option<&Path>,
    ) -> Result<HostPlan, Failure> {
        let host_triple = build::host_triple();
        if Some(target.triple.as_str()) != host_triple {
            return Err(Failure::usage(format!(
                "the host backend builds only for this machine's target ({}); {} needs --backend nix",
                host_triple.unwrap_or("unknown"),
                target.triple
            )));
        }
        let packages = project.matrix.host_packages(target, version);
        ensure_packages(&packages)?;
        let (obtained, assessment) = super::fetch::obtain_verified(project, version, cache)?;
        let (_, release) = project.catalog.release(version).expect("the lock only holds catalogued releases");
        let toolchain = build::host_toolchain(&packages).map_err(|e| Failure::usage(e.to_string()))?;
        Ok(HostPlan {
            version,
            tarball: obtained.path,
            assessment,
            toolchain,
            source_date_epoch: release.source_date_epoch(),
        })
    }

    /// The build's inputs; `jobs` defaults to the number of CPUs.
    pub fn inputs<'a>(
        &'a self,
        project: &'a pgbin::source::project::Project,
        target: &'a pgbin::data::matrix::Target,
        jobs: Option<usize>,
    ) -> HostInputs<'a> {
        HostInputs {
            assembly: build::AssemblyInputs {
                version: self.version,
                entry: project.lock.get(self.version).expect("prepare checked the lock"),
                assessment: &self.assessment,
                target,
                matrix: &project.matrix,
                source_date_epoch: self.source_date_epoch,
                toolchain: &self.toolchain,
                backend: Backend::Host,
            },
            tarball: &self.tarball,
            jobs: jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        }
    }
}

/// Runs the command.
pub fn run(ctx: &Context, args: Args) -> Result<(), Failure> {
    let started = Instant::now();
    let started_on = super::provenance::now();
    let version = super::exact_version(&args.version)?;
    let project = ctx.project()?;
    let target = super::chosen_target(&project, args.target.as_deref())?;
    let nix_ready = pgbin::nix::store::pinned_nixpkgs_available(project.repo.root());
    let backend = match args.backend {
        BackendChoice::Docker => return docker_backend(&project, version, target, &args),
        BackendChoice::Nix => Backend::Nix,
        BackendChoice::Host => Backend::Host,
        BackendChoice::Auto if nix_ready => Backend::Nix,
        BackendChoice::Auto => Backend::Host,
    };
    if args.dry_run {
        return Err(Failure::usage("--dry-run is supported by --backend docker only"));
    }
    if backend == Backend::Nix {
        return nix_backend(&project, version, target, &args, started, started_on);
    }
    let cache = args.cache.clone().unwrap_or_else(pgbin::source::fetch::default_cache_dir);
    let plan = HostPlan::prepare(&project, version, target, Some(&cache))?;
    let inputs = plan.inputs(&project, target, args.jobs);
    let key = inputs.assembly.cache_key();
    let archive_name = target.archive_name(version);

    let _lock = build::lock_key(&cache, &key).map_err(|e| Failure::usage(e.to_string()))?;
    let (artifacts, cached, log) = match build::cached(&cache, &key, &archive_name) {
        Some(artifacts) => (artifacts, true, None),
        None => {
            let log = cache.join("logs").join(format!("{archive_name}.{}.log", &key[..12]));
            std::fs::create_dir_all(log.parent().expect("log has a parent"))
                .map_err(|e| Failure::usage(e.to_string()))?;
            let _ = std::fs::remove_file(&log);
            eprintln!("pgbin: building PostgreSQL {version} for {}; full log: {}", target.triple, log.display());
            let mut display = PhaseDisplay::new();
            let result = build::host_build(&inputs, &cache, &log, args.keep_failed, &mut |phase| display.phase(phase));
            display.finish();
            match result {
                Ok(artifacts) => (artifacts, false, Some(log)),
                Err(e) => return Err(build_failure(&e, &log)),
            }
        }
    };
    let summary = if cached {
        format!("{archive_name} is already built from these exact inputs (cache key {})", &key[..12])
    } else {
        "built, relocated and smoke-tested".to_string()
    };
    let outcome = Outcome { version, target: &target.triple, backend: Backend::Host, cached, log, summary, started_on };
    report(&project, &artifacts, &args, outcome, started)
}

/// How a build ended, for the report.
struct Outcome<'a> {
    version: Version,
    target: &'a str,
    backend: Backend,
    cached: bool,
    log: Option<PathBuf>,
    summary: String,
    /// When the command started, RFC 3339.
    started_on: String,
}

/// Publishes the artifacts into `--out` with their provenance and SBOM, and
/// prints where they are.
fn report(
    project: &pgbin::source::project::Project,
    artifacts: &Artifacts,
    args: &Args,
    outcome: Outcome,
    started: Instant,
) -> Result<(), Failure> {
    std::fs::create_dir_all(&args.out)
        .map_err(|e| Failure::usage(format!("cannot create {}: {e}", args.out.display())))?;
    // Everything is staged next to its destination first, so that a failure
    // leaves no archive without its provenance and SBOM in --out.
    let staging = staging_dir(&args.out)?;
    let staged = build::publish(artifacts, staging.path()).map_err(|e| Failure::usage(e.to_string()))?;
    let run = super::provenance::run_context(
        project,
        &staged.manifest,
        Some(outcome.started_on),
        Some(super::provenance::now()),
        None,
        outcome.cached,
    );
    let documents =
        super::provenance::write_documents(project, &staged, staging.path(), &run, super::provenance::Documents::Both)?;
    let publish = |staged: &Path| move_into(staged, &args.out);
    let published = Artifacts {
        archive: publish(&staged.archive)?,
        checksum_file: publish(&staged.checksum_file)?,
        manifest_file: publish(&staged.manifest_file)?,
        manifest: staged.manifest.clone(),
    };
    let documents: Vec<PathBuf> = documents.iter().map(|d| publish(&d.path)).collect::<Result<_, _>>()?;
    let seconds = started.elapsed().as_secs_f64();
    if args.json {
        print_json(&Built {
            version: outcome.version,
            target: outcome.target,
            backend: outcome.backend,
            cached: outcome.cached,
            seconds,
            log: outcome.log,
            artifacts: &published,
            sha256: &published.manifest.archive_sha256,
            provenance: &documents[0],
            sbom: &documents[1],
        });
        return Ok(());
    }
    eprintln!("pgbin: {} in {seconds:.2}s", outcome.summary);
    for path in [&published.archive, &published.checksum_file, &published.manifest_file] {
        println!("{}", path.display());
    }
    for document in &documents {
        println!("{}", document.display());
    }
    Ok(())
}

/// A temporary directory inside `out` to stage published files in.
fn staging_dir(out: &Path) -> Result<tempfile::TempDir, Failure> {
    tempfile::Builder::new()
        .prefix(".pgbin-publish-")
        .tempdir_in(out)
        .map_err(|e| Failure::usage(format!("cannot stage into {}: {e}", out.display())))
}

/// Moves a staged file into `out` (a rename within one directory tree).
fn move_into(staged: &Path, out: &Path) -> Result<PathBuf, Failure> {
    let target = out.join(staged.file_name().expect("staged files have names"));
    std::fs::rename(staged, &target)
        .map_err(|e| Failure::usage(format!("cannot publish {}: {e}", target.display())))?;
    Ok(target)
}

/// The nix backend: seed the verified source, `nix build` the target's
/// archive derivation (relocation and packaging happen inside Nix), smoke-test
/// the result where it can run, and publish it.
fn nix_backend(
    project: &pgbin::source::project::Project,
    version: Version,
    target: &pgbin::data::matrix::Target,
    args: &Args,
    started: Instant,
    started_on: String,
) -> Result<(), Failure> {
    let cache = args.cache.clone().unwrap_or_else(pgbin::source::fetch::default_cache_dir);
    let (obtained, _) = super::fetch::obtain_verified(project, version, Some(&cache))?;
    super::seed::seed_store(project, version, &obtained.path)?;
    let attr = target.attr_name(version);
    let archive_name = target.archive_name(version);
    let log = cache.join("logs").join(format!("{archive_name}.nix.log"));
    std::fs::create_dir_all(log.parent().expect("log has a parent")).map_err(|e| Failure::usage(e.to_string()))?;
    eprintln!("pgbin: nix build {attr}.archive; full log: {}", log.display());
    let mut display = PhaseDisplay::new();
    display.phase("nix build");
    let result = build::nix_build(project.repo.root(), &format!("{attr}.archive"), &log);
    display.finish();
    let output = result.map_err(|e| Failure::usage(format!("{e}; full log: {}", log.display())))?;
    let artifacts = build::artifacts_in(&output, &archive_name).ok_or_else(|| {
        Failure::check(format!("{} does not hold an intact {archive_name} with .sha256 and manifest", output.display()))
    })?;
    if Some(target.triple.as_str()) == build::host_triple() {
        let report = pgbin::build::smoke::smoke(&artifacts.archive, &std::env::temp_dir(), None)
            .map_err(|e| Failure::usage(e.to_string()))?;
        if let Some(check) = report.failure() {
            return Err(Failure::check(format!("smoke test failed at check '{}': {}", check.name, check.detail)));
        }
    }
    let summary = format!("built with Nix ({})", output.display());
    let outcome = Outcome {
        version,
        target: &target.triple,
        backend: Backend::Nix,
        cached: false,
        log: Some(log),
        summary,
        started_on,
    };
    report(project, &artifacts, args, outcome, started)
}

/// A failed build: the cause, the last lines of the log, and its path.
fn build_failure(error: &build::BuildError, log: &Path) -> Failure {
    let tail = pgbin::build::host::log_tail(log, 15);
    let compile_error = match error {
        build::BuildError::Kept { error, .. } => matches!(**error, build::BuildError::Host(_)),
        other => matches!(other, build::BuildError::Host(_)),
    };
    if !tail.is_empty() && compile_error {
        eprintln!("pgbin: last lines of {}:", log.display());
        for line in &tail {
            eprintln!("  {line}");
        }
    }
    Failure::check(format!("build failed: {error}"))
}

/// The docker backend: verify the source, plan the build from the same data
/// the flake reads, and (where an engine exists) run it. Only the archive
/// and its `.sha256` come out; parity with the Nix build is checked with
/// `pgbin parity`.
fn docker_backend(
    project: &pgbin::source::project::Project,
    version: Version,
    target: &pgbin::data::matrix::Target,
    args: &Args,
) -> Result<(), Failure> {
    use pgbin::build::docker;
    let entry = super::locked_entry(project, version)?;
    let (_, release) = project.catalog.release(version).expect("the lock only holds catalogued releases");
    let plan = docker::plan(&project.matrix, target, version, &entry.sha256, release.source_date_epoch())
        .map_err(|e| Failure::usage(e.to_string()))?;
    if args.dry_run {
        super::fetch::buildable_assessment(project, version, "build")?;
        let command = plan.command(Path::new("CONTEXT"), Path::new("OUTPUT"));
        if args.json {
            print_json(&serde_json::json!({ "plan": plan, "command": command }));
        } else {
            let quoted: Vec<String> = command
                .iter()
                .map(|a| if a.contains(' ') { format!("'{}'", a.replace('\'', r"'\''")) } else { a.clone() })
                .collect();
            println!("docker {}", quoted.join(" "));
        }
        return Ok(());
    }
    docker::engine_available().map_err(|e| Failure::usage(e.to_string()))?;
    let cache = args.cache.clone().unwrap_or_else(pgbin::source::fetch::default_cache_dir);
    let (obtained, _) = super::fetch::obtain_verified(project, version, Some(&cache))?;
    let scratch = |what: &str| {
        tempfile::Builder::new()
            .prefix(&format!("pgbin-docker-{what}-"))
            .tempdir()
            .map_err(|e| Failure::usage(format!("cannot create a temporary directory: {e}")))
    };
    let (context, out) = (scratch("context")?, scratch("output")?);
    let (context, out) = (context.path(), out.path());
    docker::write_context(project.repo.root(), &obtained.path, context).map_err(|e| Failure::usage(e.to_string()))?;
    let log = cache.join("logs").join(format!("{}.docker.log", plan.archive));
    std::fs::create_dir_all(log.parent().expect("log has a parent")).map_err(|e| Failure::usage(e.to_string()))?;
    eprintln!("pgbin: docker build of {}; full log: {}", plan.archive, log.display());
    let built = docker::build(&plan, context, out, &log).map_err(|e| Failure::check(e.to_string()))?;
    if pgbin::build::package::matches_checksum_file(&built.join(&plan.archive), &plan.archive) != Some(true) {
        return Err(Failure::check(format!("the docker build's {} does not match its .sha256", plan.archive)));
    }
    std::fs::create_dir_all(&args.out)
        .map_err(|e| Failure::usage(format!("cannot create {}: {e}", args.out.display())))?;
    let staging = staging_dir(&args.out)?;
    let names = [plan.archive.clone(), format!("{}.sha256", plan.archive)];
    for name in &names {
        std::fs::copy(built.join(name), staging.path().join(name))
            .map_err(|e| Failure::usage(format!("cannot publish {name}: {e}")))?;
    }
    for name in &names {
        println!("{}", move_into(&staging.path().join(name), &args.out)?.display());
    }
    Ok(())
}
