//! `pgbin sign`: armored detached OpenPGP signatures (`<artifact>.asc`) for
//! archives and provenance, and optionally a DSSE envelope of a provenance
//! statement (`<archive>.dsse.json`).

use std::path::PathBuf;

use pgbin::attest::signing::{SigningKey, sign_files};

use super::{Context, Failure, print_json};

/// Arguments of `pgbin sign`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files to sign (archives, `.intoto.json` statements, anything)
    #[arg(required = true)]
    artifacts: Vec<PathBuf>,
    /// OpenPGP secret key file (armored or binary, not password-protected)
    #[arg(long, value_name = "KEYFILE")]
    key: PathBuf,
    /// Also wrap each `.intoto.json` statement in a DSSE envelope
    /// (`<archive>.dsse.json`)
    #[arg(long)]
    dsse: bool,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
}

/// Runs the command. Every input is checked before anything is written.
pub fn run(_ctx: &Context, args: Args) -> Result<(), Failure> {
    let key = SigningKey::load(&args.key)?;
    let signed = sign_files(&key, &args.artifacts, args.dsse)?;
    if args.json {
        print_json(&signed)?;
    } else {
        for s in &signed {
            println!("{}", s.signature.display());
        }
        eprintln!("pgbin: signed {} file(s) with {}", args.artifacts.len(), key.fingerprint());
    }
    Ok(())
}
