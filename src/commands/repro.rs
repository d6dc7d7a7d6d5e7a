//! `pgbin repro`: build one release twice under deliberately different
//! conditions and prove the outputs identical, or explain each difference
//! (the pipeline is `pgbin::pipeline::repro`).

use std::path::{Path, PathBuf};

use pgbin::compare::inputs::Verdict;
use pgbin::pipeline::repro::{self, Repro, ReproBackend};

use super::progress::TerminalProgress;
use super::{Context, Failure, print_json};

/// Which backend to test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendArg {
    /// the machine's own toolchain
    Host,
    /// the flake's archive derivation, rebuilt with `nix build --rebuild`
    Nix,
}

/// Arguments of `pgbin repro`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Exact version (18.6)
    version: String,
    /// Target triple or attribute suffix (default: this machine's)
    #[arg(long, value_name = "TRIPLE")]
    target: Option<String>,
    /// Backend to test
    #[arg(long, value_enum, default_value_t = BackendArg::Host)]
    backend: BackendArg,
    /// Where both outputs and the report are kept
    #[arg(long, value_name = "DIR", default_value = "repro")]
    out: PathBuf,
    /// Cache directory for the verified source (as for `pgbin fetch`)
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// Machine-readable output (the verdict and the diff report)
    #[arg(long)]
    json: bool,
}

/// Runs the command.
pub fn run(ctx: &Context, args: Args) -> Result<(), Failure> {
    let version = super::exact_version(&args.version)?;
    let project = ctx.project()?;
    let target = super::chosen_target(&project, args.target.as_deref())?;
    let backend = match args.backend {
        BackendArg::Host => ReproBackend::Host,
        BackendArg::Nix => ReproBackend::Nix,
    };
    let mut progress = TerminalProgress::downloads();
    let verdict = repro::repro(&project, version, target, backend, &args.out, args.cache.as_deref(), &mut progress)?;
    progress.finish_phases();
    let out = std::path::absolute(&args.out).unwrap_or(args.out.clone());
    print_outcome(&verdict, &out, args.json)
}

fn print_outcome(summary: &Repro, out: &Path, json: bool) -> Result<(), Failure> {
    if json {
        print_json(summary)?;
    } else {
        let verdict = match summary.verdict {
            Verdict::Identical => "REPRODUCIBLE",
            Verdict::Inconclusive => "INCONCLUSIVE (the machine changed during the run)",
            other => super::diff::headline(other),
        };
        println!(
            "{verdict}: PostgreSQL {} for {}, two builds in {:.0}s",
            summary.version, summary.target, summary.seconds
        );
        for change in &summary.report.machine_changes {
            println!("  changed on this machine: {change}");
        }
        let sha = |s: &Option<String>| s.clone().unwrap_or_else(|| "(none: the install tree differs)".into());
        println!("archive sha256: {} / {}", sha(&summary.archive_sha256[0]), sha(&summary.archive_sha256[1]));
        let report = &summary.report.report;
        println!("{} contents (NAR): {} / {}", summary.compared, report.a.nar_hash, report.b.nar_hash);
        super::diff::print_input_changes(&summary.report);
        for finding in &report.findings {
            println!("  {}: {}", if finding.path.is_empty() { "(archive)" } else { &finding.path }, finding.detail);
        }
        println!("outputs and report.json kept in {}", out.display());
    }
    match summary.verdict {
        Verdict::Identical => Ok(()),
        verdict => Err(Failure::silent(verdict.exit_code())),
    }
}
