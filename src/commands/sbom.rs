//! `pgbin sbom`: write `<archive>.spdx.json` (SPDX 2.3) for an archive from
//! its manifest. `pgbin build` writes it after every build; the Nix route
//! runs this command after `nix build`.

use super::provenance::{DocumentArgs, Documents, now, report, run_context, write_documents};
use super::{Context, Failure};

/// Arguments of `pgbin sbom`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    document: DocumentArgs,
}

/// Runs the command.
pub fn run(ctx: &Context, args: Args) -> Result<(), Failure> {
    let project = ctx.project()?;
    let (artifacts, out) = args.document.resolve()?;
    let run = run_context(&project, &artifacts.manifest, None, Some(now()), None, false);
    let written = write_documents(&project, &artifacts, &out, &run, Documents::Sbom)?;
    report(&written, args.document.json);
    Ok(())
}
