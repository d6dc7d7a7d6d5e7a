//! `pgbin deps`: the Debian packages a host build needs here, native or
//! cross, and (with `--install`) installing them, as `pgbin build` would.
//! A cross build's target libraries are listed apart: `pgbin build`
//! unpacks them into its sysroot and never installs them.

use super::{Context, Failure, chosen_target, exact_version, print_json};
use crate::commands::progress::TerminalProgress;

/// Arguments of `pgbin deps`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Exact version (18.6); its features decide the libraries
    version: String,
    /// The target triple (default: this machine's); another Debian
    /// architecture's is a cross build
    #[arg(long)]
    target: Option<String>,
    /// Install the missing packages (as root: dpkg --add-architecture and apt-get)
    #[arg(long)]
    install: bool,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
}

/// Runs the command: exit 0 when every package is installed, 1 when some are missing.
pub fn run(ctx: &Context, args: Args) -> Result<(), Failure> {
    let project = ctx.project()?;
    let version = exact_version(&args.version)?;
    let target = chosen_target(&project, args.target.as_deref())?;
    let mut progress = TerminalProgress::downloads();
    let report = pgbin::pipeline::build::host_dependencies(&project, version, target, args.install, &mut progress)?;
    if args.json {
        print_json(&report)?;
    } else {
        for dependency in &report.packages {
            println!("{:<40} {}", dependency.package, dependency.installed.as_deref().unwrap_or("missing"));
        }
        for package in &report.sysroot_packages {
            println!("{package:<40} sysroot (unpacked by pgbin build)");
        }
    }
    let missing = report.missing();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Failure::check(format!(
        "{} of {} packages missing for {} {}; run: pgbin deps {} --target {} --install",
        missing.len(),
        report.packages.len(),
        report.target,
        report.version,
        report.version,
        report.target
    )))
}
