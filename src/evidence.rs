//! Evidence documents: recognise a file's kind and turn it into a lock record.
//!
//! Three document kinds exist, told apart by content:
//! - an OpenPGP clearsigned Debian `.dsc` (`debian-dsc`);
//! - a witness excerpt: a `Publisher:` and a `Reference:` header line, a
//!   blank line, then the verbatim lines of the public record (`witness`);
//! - a sha256sum-format line naming the upstream tarball (`upstream-checksum`).
//!
//! A record is only built from a document after its signature (if any) has
//! been verified; [`crate::trust::verify_evidence`] re-checks it later.

use jiff::Timestamp;
use sha2::{Digest, Sha256};

use crate::catalog;
use crate::debian;
use crate::lock::{Attestation, Evidence, is_sha256_hex};
use crate::trust::{self, Policy, TrustError};
use crate::version::Version;

/// A witness excerpt's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessHeader {
    /// Who publishes the record.
    pub publisher: String,
    /// Repository, commit and path (or URL) of the record.
    pub reference: String,
    /// The verbatim excerpt after the header.
    pub body: String,
}

/// Parses a witness excerpt's header, if the document is one.
pub fn parse_witness(text: &str) -> Option<WitnessHeader> {
    let (head, body) = text.split_once("\n\n")?;
    let mut publisher = None;
    let mut reference = None;
    for line in head.lines() {
        if let Some(v) = line.strip_prefix("Publisher:") {
            publisher = Some(v.trim().to_string());
        } else if let Some(v) = line.strip_prefix("Reference:") {
            reference = Some(v.trim().to_string());
        } else {
            return None;
        }
    }
    Some(WitnessHeader { publisher: publisher?, reference: reference?, body: body.to_string() })
}

fn hex_runs(text: &str) -> Vec<String> {
    let mut runs = Vec::new();
    let mut current = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_hexdigit() {
            current.push(c.to_ascii_lowercase());
        } else {
            if current.len() == 64 && !runs.contains(&current) {
                runs.push(current.clone());
            }
            current.clear();
        }
    }
    runs
}

/// The directory (under `evidence/`) and file name a document is committed as.
pub fn committed_path(evidence: &Evidence, version: Version, document: &[u8]) -> String {
    match evidence {
        Evidence::DebianDsc { package, debian_version, .. } => {
            format!("evidence/debian/{}", debian::dsc_name(package, debian_version))
        }
        Evidence::UpstreamChecksum { .. } => format!("evidence/upstream/postgresql-{version}.tar.bz2.sha256"),
        Evidence::Witness { publisher, .. } => {
            let slug: String = publisher
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
                .collect();
            let short = &hex::encode(Sha256::digest(document))[..12];
            format!("evidence/witness/{version}-{slug}-{short}.txt")
        }
    }
}

/// Builds the lock record for a document about `version`, verifying its
/// signature (at `now`) when it is signed. The record's `document` path is
/// where it will be committed.
pub fn record_from_document(
    policy: &Policy,
    version: Version,
    document: &[u8],
    name: &str,
    now: Timestamp,
) -> Result<Evidence, TrustError> {
    let mismatch = |reason: String| TrustError::Mismatch { document: name.to_string(), reason };
    let document_sha256 = hex::encode(Sha256::digest(document));
    let text = String::from_utf8_lossy(document);
    let evidence = if document.starts_with(b"-----BEGIN PGP SIGNED MESSAGE-----") {
        let signed = trust::verify_clearsigned(policy, "debian-dsc", document, now, name)?;
        let dsc = debian::parse_dsc(&String::from_utf8_lossy(&signed.content)).map_err(|e| mismatch(e.to_string()))?;
        let upstream = debian::upstream_version(&dsc.version);
        if upstream != version.to_string() {
            return Err(mismatch(format!("is for PostgreSQL {upstream}, not {version}")));
        }
        let orig = debian::orig_tarball_name(version);
        let listed =
            dsc.sha256.iter().find(|f| f.name == orig).ok_or_else(|| mismatch(format!("does not list {orig}")))?;
        Evidence::DebianDsc {
            attests: Attestation { name: orig, sha256: listed.sha256.clone(), size: Some(listed.size) },
            package: dsc.source.clone(),
            debian_version: dsc.version.clone(),
            document: String::new(),
            document_sha256,
            signer: signed.signer,
            signature_created: trust::format_time(signed.created),
            reference_time: trust::format_time(now),
        }
    } else if let Some(witness) = parse_witness(&text) {
        let hashes = hex_runs(&witness.body);
        let [sha256] = hashes.as_slice() else {
            return Err(mismatch(format!(
                "a witness excerpt must contain exactly one SHA-256, found {}",
                hashes.len()
            )));
        };
        if !witness.body.contains(&version.to_string()) {
            return Err(mismatch(format!("does not name version {version}")));
        }
        Evidence::Witness {
            attests: Attestation { name: catalog::tarball_name(version), sha256: sha256.clone(), size: None },
            publisher: witness.publisher,
            reference: witness.reference,
            document: String::new(),
            document_sha256,
        }
    } else {
        let tarball = catalog::tarball_name(version);
        let line = text.lines().find(|l| l.trim_end().ends_with(&tarball)).ok_or_else(|| {
            mismatch("not a recognised evidence document (clearsigned .dsc, witness excerpt, or .sha256 file)".into())
        })?;
        let hash = line.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
        if !is_sha256_hex(&hash) {
            return Err(mismatch("the checksum line has no SHA-256".into()));
        }
        Evidence::UpstreamChecksum {
            attests: Attestation { name: tarball, sha256: hash, size: None },
            url: format!("{}.sha256", catalog::upstream_url(version)),
            document: String::new(),
            document_sha256,
        }
    };
    Ok(with_document(evidence, version, document))
}

fn with_document(mut evidence: Evidence, version: Version, document: &[u8]) -> Evidence {
    let path = committed_path(&evidence, version, document);
    match &mut evidence {
        Evidence::DebianDsc { document, .. }
        | Evidence::UpstreamChecksum { document, .. }
        | Evidence::Witness { document, .. } => *document = path,
    }
    evidence
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn witness_header_and_hash_extraction() {
        let text = "Publisher: Homebrew/homebrew-core\nReference: github:Homebrew/homebrew-core@abc:Formula/p/postgresql@18.rb\n\n  url \"https://ftp.postgresql.org/pub/source/v18.6/postgresql-18.6.tar.bz2\"\n  sha256 \"555610c24d53e4316da5b7d3fc25c279d96856d5e0e23ee308c328c5fa881d9f\"\n";
        let w = parse_witness(text).unwrap();
        assert_eq!(w.publisher, "Homebrew/homebrew-core");
        assert_eq!(hex_runs(&w.body), vec!["555610c24d53e4316da5b7d3fc25c279d96856d5e0e23ee308c328c5fa881d9f"]);
        assert!(parse_witness("Source: x\n\nbody").is_none());
    }
}
