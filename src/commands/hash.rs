//! `pgbin hash`: the NAR hash of a directory, file, archive or NAR, printed
//! like `nix hash path` (same bytes in, same answer out).

use std::path::PathBuf;

use serde::Serialize;

use pgbin::compare::tree;
use pgbin::nix::nar;

use super::{Context, Failure, print_json};

/// Arguments of `pgbin hash`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A directory, file, store path, .tar/.tar.gz/.tar.zst archive or NAR file
    path: PathBuf,
    /// Print lower-case hex instead of SRI
    #[arg(long, conflicts_with = "base32")]
    base16: bool,
    /// Print nixbase32 instead of SRI
    #[arg(long)]
    base32: bool,
    /// Machine-readable output (every encoding)
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct Hashed {
    path: PathBuf,
    format: tree::Format,
    sri: String,
    base16: String,
    base32: String,
}

/// Runs the command.
pub fn run(_ctx: &Context, args: Args) -> Result<(), Failure> {
    let scratch = std::env::temp_dir();
    let hashed = tree::hash(&args.path, &scratch)?;
    let digest = hashed.digest;
    if args.json {
        print_json(&Hashed {
            path: args.path,
            format: hashed.format,
            sri: nar::sri(&digest),
            base16: nar::base16(&digest),
            base32: nar::base32(&digest),
        })?;
    } else if args.base16 {
        println!("{}", nar::base16(&digest));
    } else if args.base32 {
        println!("{}", nar::base32(&digest));
    } else {
        println!("{}", nar::sri(&digest));
    }
    Ok(())
}
