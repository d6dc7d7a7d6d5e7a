//! `pgbin sbom`: write `<archive>.spdx.json` (SPDX 2.3) for an archive from
//! its manifest. `pgbin build` writes it after every build; the Nix route
//! runs this command after `nix build`.

use std::path::PathBuf;

use super::provenance::{Documents, described_archive, now, parent_dir, report, run_context, write_documents};
use super::{Context, Failure};

/// Arguments of `pgbin sbom`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The archive (its manifest must be beside it, or given with --manifest)
    archive: PathBuf,
    /// The archive's manifest (default: ARCHIVE.manifest.json)
    #[arg(long, value_name = "FILE")]
    manifest: Option<PathBuf>,
    /// Directory to write into (default: the archive's)
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
}

/// Runs the command.
pub fn run(ctx: &Context, args: Args) -> Result<(), Failure> {
    let project = ctx.project()?;
    let artifacts = described_archive(&args.archive, args.manifest.as_deref())?;
    let out = args.out.clone().unwrap_or_else(|| parent_dir(&args.archive));
    let run = run_context(&project, &artifacts.manifest, None, Some(now()), None, false);
    let written = write_documents(&project, &artifacts, &out, &run, Documents::Sbom)?;
    report(&written, args.json);
    Ok(())
}
