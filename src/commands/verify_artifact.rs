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

use std::path::{Path, PathBuf};

use serde::Serialize;

use pgbin::attest::provenance;
use pgbin::attest::signing::{self, DsseEnvelope, SigningError};
use pgbin::build::package;
use pgbin::source::verify::Level;

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

/// What the checks established so far.
#[derive(Default)]
struct Established {
    sha256: Option<String>,
    signer: Option<String>,
    provenance_signer: Option<String>,
    source_trust: Option<String>,
    evidence: Vec<String>,
}

fn keyring_path(ctx: &Context, given: Option<PathBuf>) -> Result<PathBuf, Failure> {
    if let Some(path) = given.or_else(|| std::env::var_os("PGBIN_KEYRING").map(PathBuf::from)) {
        return Ok(path);
    }
    let in_repo = ctx.repo().ok().map(|repo| repo.root().join(RELEASE_KEYRING)).filter(|p| p.is_file());
    in_repo.ok_or_else(|| Failure::usage("no keyring of accepted signers: pass --keyring FILE (or set PGBIN_KEYRING)"))
}

fn sibling(archive: &Path, suffix: &str) -> PathBuf {
    let mut name = archive.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn verify_signature(keyring: &[sequoia_openpgp::Cert], file: &Path, signature_file: &Path) -> Result<String, String> {
    let signature = std::fs::read(signature_file)
        .map_err(|e| format!("cannot read the signature {}: {e}", signature_file.display()))?;
    let mut data = std::fs::File::open(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let name = file.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    signing::verify_detached(keyring, &mut data, &signature, &name).map_err(|e| match e {
        SigningError::Rejected(reason) => format!("signature rejected: {reason}"),
        other => other.to_string(),
    })
}

/// Runs checks 1–4, filling `found` as they pass.
fn check(keyring: &[sequoia_openpgp::Cert], archive: &Path, name: &str, found: &mut Established) -> Result<(), String> {
    let checksum_file = sibling(archive, ".sha256");
    let recorded = std::fs::read_to_string(&checksum_file)
        .map_err(|e| format!("missing {}: {e}; download it with the archive", checksum_file.display()))?;
    let digest = pgbin::util::digest::digest_file(archive).map_err(|e| e.to_string())?;
    if recorded != package::checksum_line(&digest.sha256, name) {
        return Err(format!(
            "{name} does not match its .sha256 (the archive or the checksum was modified); download both again"
        ));
    }
    found.sha256 = Some(digest.sha256.clone());

    found.signer = Some(verify_signature(keyring, archive, &sibling(archive, signing::SIGNATURE_SUFFIX))?);

    let statement_file = sibling(archive, provenance::SUFFIX);
    let text = std::fs::read_to_string(&statement_file)
        .map_err(|e| format!("missing provenance {}: {e}", statement_file.display()))?;
    let statement_signature = sibling(&statement_file, signing::SIGNATURE_SUFFIX);
    let envelope_file = sibling(archive, ".dsse.json");
    found.provenance_signer = Some(if statement_signature.is_file() || !envelope_file.is_file() {
        verify_signature(keyring, &statement_file, &statement_signature)?
    } else {
        let envelope: DsseEnvelope = serde_json::from_str(
            &std::fs::read_to_string(&envelope_file).map_err(|e| format!("{}: {e}", envelope_file.display()))?,
        )
        .map_err(|e| format!("{} is not a DSSE envelope: {e}", envelope_file.display()))?;
        let (payload, signer) =
            signing::verify_dsse(keyring, &envelope, name).map_err(|e| format!("signature rejected: {e}"))?;
        if payload != text.as_bytes() {
            return Err(format!(
                "{} signs a different statement than {}",
                envelope_file.display(),
                statement_file.display()
            ));
        }
        signer
    });

    let statement = provenance::parse(&text).map_err(|e| format!("{}: {e}", statement_file.display()))?;
    if !statement.covers(name, &digest.sha256) {
        return Err(format!(
            "the provenance is for {}, not this archive ({name}, sha256 {})",
            statement.subjects(),
            &digest.sha256[..12]
        ));
    }
    let level = statement.source_trust().unwrap_or("none");
    found.source_trust = Some(level.to_string());
    found.evidence = statement
        .source()
        .and_then(|s| s.annotations.get("evidence"))
        .and_then(|e| serde_json::from_value(e.clone()).ok())
        .unwrap_or_default();
    let buildable =
        serde_json::from_value::<Level>(serde_json::Value::String(level.to_string())).is_ok_and(|l| l.buildable());
    if !buildable {
        return Err(format!(
            "the provenance records source trust level '{level}'; pgbin builds only from signed or corroborated sources"
        ));
    }
    Ok(())
}

/// Runs the command.
pub fn run(ctx: &Context, args: Args) -> Result<(), Failure> {
    let keyring_file = keyring_path(ctx, args.keyring)?;
    let keyring = signing::read_keyring(&keyring_file).map_err(|e| Failure::usage(e.to_string()))?;
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
            problem: outcome.as_ref().err().cloned(),
        });
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
