//! `pgbin smoke`: extract an archive somewhere new and prove it runs.

use std::path::PathBuf;

use super::{Context, Failure, print_json};

/// Arguments of `pgbin smoke`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The archive (postgresql-X.Y.0-<triple>.tar.gz)
    archive: PathBuf,
    /// Run the executables with this ELF interpreter instead of the
    /// standard one (for sandboxes without it, such as Nix builds)
    #[arg(long, value_name = "PATH")]
    interpreter: Option<PathBuf>,
    /// The qemu-user emulator for an archive of another architecture
    /// (default: qemu-<arch> on PATH, from Debian's qemu-user package)
    #[arg(long, value_name = "PATH")]
    emulator: Option<PathBuf>,
    /// The target's root file system for the emulator (its loader and C
    /// library), such as the sysroot a cross build unpacked under the
    /// cache's sysroots/ (default: the multiarch ones installed here)
    #[arg(long, value_name = "DIR")]
    sysroot: Option<PathBuf>,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
}

/// Runs the command.
pub fn run(_ctx: &Context, args: Args) -> Result<(), Failure> {
    let run = pgbin::build::smoke::Run {
        interpreter: args.interpreter.as_deref(),
        emulator: args.emulator.as_deref(),
        sysroot: args.sysroot.as_deref(),
    };
    let report = pgbin::build::smoke::smoke_with(&args.archive, &std::env::temp_dir(), &run)?;
    if args.json {
        print_json(&report)?;
    } else {
        for check in &report.checks {
            println!("{} {:<16} {}", if check.passed { "ok  " } else { "FAIL" }, check.name, check.detail);
        }
    }
    match report.failure() {
        None => Ok(()),
        Some(check) => Err(Failure::check(format!("smoke test failed at check '{}': {}", check.name, check.detail))),
    }
}
