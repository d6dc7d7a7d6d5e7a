//! `pgbin build`: build, relocate, package and smoke-test one release.

use std::path::PathBuf;

use pgbin::pipeline::build::{self as pipeline, BackendChoice, BuildRequest, DockerOutcome, PipelineError};

use super::progress::TerminalProgress;
use super::{Context, Failure, print_json};

/// Which backend to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendArg {
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
    #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
    backend: BackendArg,
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

/// Runs the command.
pub fn run(ctx: &Context, args: Args) -> Result<(), Failure> {
    let version = super::exact_version(&args.version)?;
    let project = ctx.project()?;
    let target = super::chosen_target(&project, args.target.as_deref())?;
    let request = BuildRequest {
        version,
        target,
        out: &args.out,
        cache: args.cache.as_deref(),
        jobs: args.jobs,
        keep_failed: args.keep_failed,
    };
    let mut progress = TerminalProgress::downloads();
    let backend = match args.backend {
        BackendArg::Auto => BackendChoice::Auto,
        BackendArg::Nix => BackendChoice::Nix,
        BackendArg::Host => BackendChoice::Host,
        BackendArg::Docker => return docker(&project, &request, args.dry_run, args.json, &mut progress),
    };
    if args.dry_run {
        return Err(Failure::usage("--dry-run is supported by --backend docker only"));
    }
    let result = pipeline::build(&project, &request, backend, &mut progress);
    progress.finish_phases();
    let published = match result {
        Ok(published) => published,
        Err(error) => {
            if let PipelineError::Build { log, tail, .. } = &error {
                if !tail.is_empty() {
                    eprintln!("pgbin: last lines of {}:", log.display());
                    for line in tail {
                        eprintln!("  {line}");
                    }
                }
            }
            return Err(error.into());
        }
    };
    if args.json {
        print_json(&published)?;
        return Ok(());
    }
    eprintln!("pgbin: {} in {:.2}s", published.summary, published.seconds);
    let artifacts = &published.artifacts;
    for path in
        [&artifacts.archive, &artifacts.checksum_file, &artifacts.manifest_file, &published.provenance, &published.sbom]
    {
        println!("{}", path.display());
    }
    Ok(())
}

/// The docker backend: the plan (`--dry-run`) or the published files.
fn docker(
    project: &pgbin::source::project::Project,
    request: &BuildRequest,
    dry_run: bool,
    json: bool,
    progress: &mut TerminalProgress,
) -> Result<(), Failure> {
    match pipeline::build_docker(project, request, dry_run, progress)? {
        DockerOutcome::Planned { plan, command } => {
            if json {
                print_json(&serde_json::json!({ "plan": plan, "command": command }))?;
            } else {
                let quoted: Vec<String> = command
                    .iter()
                    .map(|a| if a.contains(' ') { format!("'{}'", a.replace('\'', r"'\''")) } else { a.clone() })
                    .collect();
                println!("docker {}", quoted.join(" "));
            }
        }
        DockerOutcome::Published(files) => {
            for file in files {
                println!("{}", file.display());
            }
        }
    }
    Ok(())
}
