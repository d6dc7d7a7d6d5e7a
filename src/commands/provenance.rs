//! `pgbin provenance`: write `<archive>.intoto.json` (in-toto Statement v1,
//! SLSA v1 provenance) for an archive from its manifest. `pgbin build`
//! writes it after every build; the Nix route runs this command after `nix
//! build`, because times and invocation ids cannot be part of a
//! reproducible derivation's output.

use pgbin::attest::documents::{Documents, described_archive, run_context, write_documents};
use pgbin::util::time::{format_time, now, parse_time};

use super::{Context, DocumentArgs, Failure, print_written};

/// Arguments of `pgbin provenance`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    document: DocumentArgs,
    /// When the build started (RFC 3339); omitted from the statement if not given
    #[arg(long, value_name = "TIME")]
    started_on: Option<String>,
    /// When the build finished (RFC 3339; default: now)
    #[arg(long, value_name = "TIME")]
    finished_on: Option<String>,
    /// The flake attribute that was built (nix backend; default: the target's)
    #[arg(long, value_name = "ATTR")]
    flake_attr: Option<String>,
}

fn rfc3339(text: &str) -> Result<String, Failure> {
    parse_time(text).map(format_time).map_err(Failure::from)
}

/// Runs the command.
pub fn run(ctx: &Context, args: Args) -> Result<(), Failure> {
    let project = ctx.project()?;
    let artifacts = described_archive(&args.document.archive, args.document.manifest.as_deref())?;
    let started_on = args.started_on.as_deref().map(rfc3339).transpose()?;
    let finished_on = Some(args.finished_on.as_deref().map(rfc3339).transpose()?.unwrap_or_else(now));
    let run = run_context(&project, &artifacts.manifest, started_on, finished_on, args.flake_attr, false);
    let written = write_documents(&project, &artifacts, &args.document.out_dir(), &run, Documents::Provenance)?;
    print_written(&written, args.document.json)
}
