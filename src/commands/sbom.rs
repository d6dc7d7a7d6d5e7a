//! `pgbin sbom`: write `<archive>.spdx.json` (SPDX 2.3) for an archive from
//! its manifest. `pgbin build` writes it after every build; the Nix route
//! runs this command after `nix build`.

use pgbin::attest::documents::{Documents, described_archive, run_context, write_documents};
use pgbin::util::time::now;

use super::{Context, DocumentArgs, Failure, print_written};

/// Arguments of `pgbin sbom`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    document: DocumentArgs,
}

/// Runs the command.
pub fn run(ctx: &Context, args: Args) -> Result<(), Failure> {
    let project = ctx.project()?;
    let artifacts = described_archive(&args.document.archive, args.document.manifest.as_deref())?;
    let run = run_context(&project, &artifacts.manifest, None, Some(now()), None, false);
    let written = write_documents(&project, &artifacts, &args.document.out_dir(), &run, Documents::Sbom)?;
    print_written(&written, args.document.json)
}
