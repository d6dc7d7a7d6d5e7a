//! `pgbin verify-artifact`: check a downloaded archive offline, with no
//! trust in the place it came from. In order, failing closed at the first
//! problem:
//!
//! 1. `<archive>.sha256` exists, names the archive, and matches its bytes;
//! 2. `<archive>.asc` is a good signature over the archive by a key in the
//!    keyring;
//! 3. `<archive>.intoto.json` is a pgbin SLSA v1 statement whose subject is
//!    this archive (name and SHA-256), and `<archive>.intoto.json.asc` (or
//!    the DSSE envelope `<archive>.dsse.json`) is a good signature over it
//!    by a key in the keyring;
//! 4. the provenance records a source trust level pgbin builds from
//!    (`signed` or `corroborated`).
//!
//! One verdict line; exit 0 when every check passed, 1 when one failed,
//! 2 when the keyring cannot be read.

use std::path::PathBuf;

use serde::Serialize;

use pgbin::attest::signing;
use pgbin::attest::verify_artifact::{Established, check};

use super::{Context, Failure, print_json};

/// The keyring file looked for in the repository when none is given.
pub const RELEASE_KEYRING: &str = "keys/release-signing.pgp";

/// Arguments of `pgbin verify-artifact`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The archive; its .sha256, .asc, .intoto.json and the statement's
    /// signature are expected beside it
    archive: PathBuf,
    /// OpenPGP keyring of accepted signers (default: $PGBIN_KEYRING, else
    /// keys/release-signing.pgp in the pgbin checkout)
    #[arg(long, value_name = "FILE")]
    keyring: Option<PathBuf>,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct Verdict {
    archive: String,
    ok: bool,
    sha256: Option<String>,
    signer: Option<String>,
    provenance_signer: Option<String>,
    source_trust: Option<String>,
    evidence: Vec<String>,
    problem: Option<String>,
}

fn keyring_path(ctx: &Context, given: Option<PathBuf>) -> Result<PathBuf, Failure> {
    if let Some(path) = given.or_else(|| std::env::var_os("PGBIN_KEYRING").map(PathBuf::from)) {
        return Ok(path);
    }
    let in_repo = ctx.repo().ok().map(|repo| repo.root().join(RELEASE_KEYRING)).filter(|p| p.is_file());
    in_repo.ok_or_else(|| Failure::usage("no keyring of accepted signers: pass --keyring FILE (or set PGBIN_KEYRING)"))
}

/// Runs the command.
pub fn run(ctx: &Context, args: Args) -> Result<(), Failure> {
    let keyring_file = keyring_path(ctx, args.keyring)?;
    let keyring = signing::read_keyring(&keyring_file)?;
    let name = args
        .archive
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| Failure::usage(format!("{} is not a file name", args.archive.display())))?;
    if !args.archive.is_file() {
        return Err(Failure::usage(format!("{} is not a file", args.archive.display())));
    }
    let mut found = Established::default();
    let outcome = check(&keyring, &args.archive, &name, &mut found);
    if args.json {
        print_json(&Verdict {
            archive: name,
            ok: outcome.is_ok(),
            sha256: found.sha256,
            signer: found.signer,
            provenance_signer: found.provenance_signer,
            source_trust: found.source_trust,
            evidence: found.evidence,
            problem: outcome.as_ref().err().map(|e| e.0.clone()),
        })?;
        return outcome.map_err(|_| Failure::silent_check());
    }
    match outcome {
        Ok(()) => {
            println!(
                "OK {name}: sha256 matches, signed by {}, provenance (signed by {}) is for this archive, source trust {} ({})",
                found.signer.unwrap_or_default(),
                found.provenance_signer.unwrap_or_default(),
                found.source_trust.unwrap_or_default(),
                found.evidence.join(", ")
            );
            Ok(())
        }
        Err(problem) => Err(Failure::check(format!("REJECTED {name}: {problem}"))),
    }
}
