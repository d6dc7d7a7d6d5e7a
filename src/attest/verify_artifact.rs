//! Checking a downloaded archive offline, as a consumer would: its
//! `.sha256`, its detached signature, its provenance's signature (detached
//! or DSSE), that the provenance's subject is this archive, and that the
//! recorded source trust level is buildable. The first failure rejects.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::attest::provenance;
use crate::attest::signing::{self, DsseEnvelope, SigningError};
use crate::build::package;
use crate::source::verify::Level;
use crate::util::error::{Classify, FailureKind};
use crate::util::io::{read_limited, read_text_limited};

/// Why an archive was rejected, in one line.
#[derive(Debug, Clone, thiserror::Error, Serialize)]
#[error("{0}")]
#[serde(transparent)]
pub struct Rejected(pub String);

impl Classify for Rejected {
    fn kind(&self) -> FailureKind {
        FailureKind::Check
    }
}

/// What the checks established so far.
#[derive(Debug, Default)]
pub struct Established {
    /// The archive's SHA-256, once it matched its `.sha256`.
    pub sha256: Option<String>,
    /// The archive's signer.
    pub signer: Option<String>,
    /// The provenance's signer.
    pub provenance_signer: Option<String>,
    /// The source trust level the provenance records.
    pub source_trust: Option<String>,
    /// The source evidence kinds the provenance records.
    pub evidence: Vec<String>,
}

/// The largest `.sha256`, signature, provenance or DSSE file read (each is
/// a few KiB); a larger download is rejected unparsed.
pub const MAX_ATTESTATION_BYTES: u64 = 16 << 20;

/// `archive` with `suffix` appended to its name.
pub fn sibling(archive: &Path, suffix: &str) -> PathBuf {
    let mut name = archive.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn verify_signature(keyring: &[sequoia_openpgp::Cert], file: &Path, signature_file: &Path) -> Result<String, Rejected> {
    let signature = read_limited(signature_file, MAX_ATTESTATION_BYTES)
        .map_err(|e| Rejected(format!("cannot read the signature {}: {}", signature_file.display(), e.source)))?;
    let mut data = std::fs::File::open(file).map_err(|e| Rejected(format!("{}: {e}", file.display())))?;
    let name = file.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    signing::verify_detached(keyring, &mut data, &signature, &name).map_err(|e| match e {
        SigningError::Rejected(reason) => Rejected(format!("signature rejected: {reason}")),
        other => Rejected(other.to_string()),
    })
}

/// Checks the archive, its `.sha256`, signatures and provenance against
/// `keyring`, filling `found` as checks pass; the first failure rejects.
pub fn check(
    keyring: &[sequoia_openpgp::Cert],
    archive: &Path,
    name: &str,
    found: &mut Established,
) -> Result<(), Rejected> {
    let checksum_file = sibling(archive, ".sha256");
    let recorded = read_text_limited(&checksum_file, MAX_ATTESTATION_BYTES).map_err(|e| {
        Rejected(format!("missing {}: {}; download it with the archive", checksum_file.display(), e.source))
    })?;
    let digest = crate::util::digest::digest_file(archive).map_err(|e| Rejected(e.to_string()))?;
    if recorded != package::checksum_line(&digest.sha256, name) {
        return Err(Rejected(format!(
            "{name} does not match its .sha256 (the archive or the checksum was modified); download both again"
        )));
    }
    found.sha256 = Some(digest.sha256.clone());

    found.signer = Some(verify_signature(keyring, archive, &sibling(archive, signing::SIGNATURE_SUFFIX))?);

    let statement_file = sibling(archive, provenance::SUFFIX);
    let text = read_text_limited(&statement_file, MAX_ATTESTATION_BYTES)
        .map_err(|e| Rejected(format!("missing provenance {}: {}", statement_file.display(), e.source)))?;
    let statement_signature = sibling(&statement_file, signing::SIGNATURE_SUFFIX);
    let envelope_file = sibling(archive, ".dsse.json");
    found.provenance_signer = Some(if statement_signature.is_file() || !envelope_file.is_file() {
        verify_signature(keyring, &statement_file, &statement_signature)?
    } else {
        let envelope: DsseEnvelope = serde_json::from_str(
            &read_text_limited(&envelope_file, MAX_ATTESTATION_BYTES)
                .map_err(|e| Rejected(format!("{}: {}", envelope_file.display(), e.source)))?,
        )
        .map_err(|e| Rejected(format!("{} is not a DSSE envelope: {e}", envelope_file.display())))?;
        let (payload, signer) =
            signing::verify_dsse(keyring, &envelope, name).map_err(|e| Rejected(format!("signature rejected: {e}")))?;
        if payload != text.as_bytes() {
            return Err(Rejected(format!(
                "{} signs a different statement than {}",
                envelope_file.display(),
                statement_file.display()
            )));
        }
        signer
    });

    let statement = provenance::parse(&text).map_err(|e| Rejected(format!("{}: {e}", statement_file.display())))?;
    if !statement.covers(name, &digest.sha256) {
        return Err(Rejected(format!(
            "the provenance is for {}, not this archive ({name}, sha256 {})",
            statement.subjects(),
            &digest.sha256[..12]
        )));
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
        return Err(Rejected(format!(
            "the provenance records source trust level '{level}'; pgbin builds only from signed or corroborated sources"
        )));
    }
    Ok(())
}
