//! `pgbin seed`: put a verified tarball into the Nix store at the exact
//! fixed-output path the flake's `fetchurl` expects, so that evaluation and
//! build need no network.

use std::path::PathBuf;

use serde::Serialize;

use pgbin::data::version::Version;
use pgbin::nix::data::sri_sha256;
use pgbin::nix::seed::seed_store;
use pgbin::source::fetch::obtain_verified;

use super::progress::TerminalProgress;
use super::{Context, Failure, print_json};

/// Arguments of `pgbin seed`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Exact version (18.6)
    version: String,
    /// Cache directory (as for `pgbin fetch`)
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct Seeded {
    version: Version,
    name: String,
    hash: String,
    store_path: String,
}

/// Runs the command.
pub fn run(ctx: &Context, args: Args) -> Result<(), Failure> {
    let version = super::exact_version(&args.version)?;
    let project = ctx.project()?;
    let (obtained, _) = obtain_verified(&project, version, args.cache.as_deref(), &mut TerminalProgress::downloads())?;
    let added = seed_store(&project, version, &obtained.path)?;
    let entry = project.locked(version)?;
    if args.json {
        print_json(&Seeded {
            version,
            name: entry.tarball.clone(),
            hash: sri_sha256(&entry.sha256),
            store_path: added,
        })?;
    } else {
        println!("{added}");
    }
    Ok(())
}
