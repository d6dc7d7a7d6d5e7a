//! `pgbin sign`: armored detached OpenPGP signatures (`<artifact>.asc`) for
//! archives and provenance, and optionally a DSSE envelope of a provenance
//! statement (`<archive>.dsse.json`).

use std::path::PathBuf;

use serde::Serialize;

use pgbin::attest::provenance;
use pgbin::attest::signing::{self, SigningKey};
use pgbin::util::fs as fsutil;

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

#[derive(Debug, Serialize)]
struct Signed {
    artifact: PathBuf,
    signature: PathBuf,
    signer: String,
}

/// Runs the command. Every input is checked before anything is written.
pub fn run(_ctx: &Context, args: Args) -> Result<(), Failure> {
    let key = SigningKey::load(&args.key)?;
    let mut jobs = Vec::new();
    for artifact in &args.artifacts {
        let name = artifact.to_string_lossy();
        if !artifact.is_file() {
            return Err(Failure::usage(format!("{name} is not a file")));
        }
        let envelope = match name.strip_suffix(provenance::SUFFIX) {
            Some(stem) if args.dsse => Some(PathBuf::from(format!("{stem}.dsse.json"))),
            _ => None,
        };
        if envelope.is_some() {
            let statement = std::fs::read_to_string(artifact).map_err(|e| Failure::usage(format!("{name}: {e}")))?;
            provenance::parse(&statement).map_err(|e| Failure::usage(format!("{name}: {e}")))?;
        }
        jobs.push((artifact, PathBuf::from(format!("{name}{}", signing::SIGNATURE_SUFFIX)), envelope));
    }
    if args.dsse && jobs.iter().all(|(_, _, envelope)| envelope.is_none()) {
        return Err(Failure::usage("--dsse wraps in-toto statements: give at least one *.intoto.json file"));
    }
    // Everything is signed in memory first, so a failure writes nothing.
    let mut outputs: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    let mut signed = Vec::new();
    for (artifact, signature_path, envelope_path) in jobs {
        let io = |e: std::io::Error| Failure::usage(format!("{}: {e}", artifact.display()));
        let mut file = std::fs::File::open(artifact).map_err(io)?;
        outputs.push((signature_path.clone(), key.sign_armored(&mut file)?));
        signed.push(Signed { artifact: artifact.clone(), signature: signature_path, signer: key.fingerprint() });
        if let Some(envelope_path) = envelope_path {
            let statement = std::fs::read(artifact).map_err(io)?;
            let envelope = key.dsse_envelope(&statement)?;
            let text = serde_json::to_string_pretty(&envelope).expect("envelopes serialize") + "\n";
            outputs.push((envelope_path.clone(), text.into_bytes()));
            signed.push(Signed { artifact: artifact.clone(), signature: envelope_path, signer: key.fingerprint() });
        }
    }
    for (path, bytes) in &outputs {
        fsutil::write_atomic(path, bytes)
            .map_err(|e| Failure::usage(format!("cannot write {}: {e}", path.display())))?;
    }
    if args.json {
        print_json(&signed);
    } else {
        for s in &signed {
            println!("{}", s.signature.display());
        }
        eprintln!("pgbin: signed {} file(s) with {}", args.artifacts.len(), key.fingerprint());
    }
    Ok(())
}
