//! Source trust: verify evidence with real cryptography and decide a level.
//!
//! PostgreSQL upstream signs nothing, so trust rests on evidence that exists:
//! Debian `.dsc` files clearsigned by the PostgreSQL maintainers (checked
//! with sequoia-openpgp under `StandardPolicy` at the reference time
//! recorded in the lock), and unsigned public records of the hash. Every
//! piece of evidence is re-verified from its committed document each time a
//! lock entry is used; any failure is an error, never a silent downgrade.
//!
//! Levels: `signed` (at least one verified OpenPGP evidence), `corroborated`
//! (at least two independent unsigned publishers agree), else `unverified`.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use jiff::Timestamp;
use openpgp::cert::{Cert, CertParser};
use openpgp::parse::Parse;
use openpgp::parse::stream::{MessageLayer, MessageStructure, VerificationError, VerificationHelper, VerifierBuilder};
use openpgp::policy::StandardPolicy;
use sequoia_openpgp as openpgp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::debian;
use crate::lock::{Evidence, LockedSource};

/// Publisher name under which upstream's own `.sha256` files count.
const UPSTREAM_PUBLISHER: &str = "postgresql.org";

/// How much the source of a release is trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// No sufficient evidence: listed, never built by default.
    Unverified,
    /// Two or more independent unsigned publishers agree on the hash.
    Corroborated,
    /// At least one OpenPGP signature by a policy key covers the hash.
    Signed,
}

impl Level {
    /// The level's name as shown to users.
    pub fn as_str(&self) -> &'static str {
        match self {
            Level::Unverified => "unverified",
            Level::Corroborated => "corroborated",
            Level::Signed => "signed",
        }
    }

    /// Whether the default policy lets this level be built.
    pub fn buildable(&self) -> bool {
        *self >= Level::Corroborated
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A key the policy trusts, and for which evidence kinds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signer {
    /// Primary key fingerprint, uppercase hex.
    pub fingerprint: String,
    /// Who holds it.
    pub name: String,
    /// Why they are trusted.
    pub role: String,
    /// Armored certificate file, relative to the keys directory.
    pub certificate: String,
    /// Evidence kinds this key may sign.
    pub may_sign: Vec<String>,
    /// Where the certificate was obtained.
    pub origin: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    signers: Vec<Signer>,
}

/// The trust policy with its certificates loaded and checked.
#[derive(Debug, Clone)]
pub struct Policy {
    signers: Vec<(Signer, Cert)>,
}

/// Why verification failed. [`TrustError::is_verification_failure`] separates
/// "the evidence is bad" (exit 1) from "could not even check" (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// Path.
        path: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The policy or a certificate is unusable.
    #[error("trust policy: {0}")]
    Policy(String),
    /// The signature did not verify.
    #[error("{document}: {reason}")]
    Signature {
        /// Which document.
        document: String,
        /// What is wrong, in one line.
        reason: String,
    },
    /// The evidence verified but says something else than the lock.
    #[error("{document}: {reason}")]
    Mismatch {
        /// Which document.
        document: String,
        /// What disagrees.
        reason: String,
    },
    /// The tarball's bytes are not the locked ones.
    #[error("{path}: {reason}")]
    Tarball {
        /// Which file.
        path: String,
        /// What differs.
        reason: String,
    },
}

impl TrustError {
    /// True for failures of the evidence or the file itself (exit code 1);
    /// false for I/O and configuration trouble (exit code 2).
    pub fn is_verification_failure(&self) -> bool {
        matches!(self, TrustError::Signature { .. } | TrustError::Mismatch { .. } | TrustError::Tarball { .. })
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> TrustError + '_ {
    move |source| TrustError::Io { path: path.display().to_string(), source }
}

/// Parses an RFC 3339 time as a timestamp.
pub fn parse_time(text: &str) -> Result<Timestamp, String> {
    text.parse::<Timestamp>().map_err(|e| format!("'{text}' is not an RFC 3339 time: {e}"))
}

/// Formats a timestamp as RFC 3339 UTC with second precision.
pub fn format_time(time: Timestamp) -> String {
    time.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl Policy {
    /// Loads `policy.toml` and every certificate it names from `keys_dir`.
    pub fn load(keys_dir: &Path) -> Result<Policy, TrustError> {
        let path = keys_dir.join("policy.toml");
        let text = std::fs::read_to_string(&path).map_err(io_error(&path))?;
        let file: PolicyFile =
            toml::from_str(&text).map_err(|e| TrustError::Policy(format!("{}: {}", path.display(), e.message())))?;
        let mut signers = Vec::new();
        for signer in file.signers {
            let cert_path = keys_dir.join(&signer.certificate);
            let bytes = std::fs::read(&cert_path).map_err(io_error(&cert_path))?;
            let certs: Vec<Cert> = CertParser::from_bytes(&bytes)
                .and_then(|parser| parser.collect::<openpgp::Result<Vec<Cert>>>())
                .map_err(|e| TrustError::Policy(format!("{}: not an OpenPGP certificate: {e}", cert_path.display())))?;
            let [cert] = certs.as_slice() else {
                return Err(TrustError::Policy(format!("{}: must hold exactly one certificate", cert_path.display())));
            };
            if cert.fingerprint().to_hex() != signer.fingerprint {
                return Err(TrustError::Policy(format!(
                    "{}: certificate is {}, policy names {}",
                    cert_path.display(),
                    cert.fingerprint().to_hex(),
                    signer.fingerprint
                )));
            }
            signers.push((signer, cert.clone()));
        }
        Ok(Policy { signers })
    }

    /// The trusted signers.
    pub fn signers(&self) -> impl Iterator<Item = &Signer> {
        self.signers.iter().map(|(s, _)| s)
    }

    /// The signer with this fingerprint, if trusted at all.
    pub fn signer(&self, fingerprint: &str) -> Option<&Signer> {
        self.signers().find(|s| s.fingerprint.eq_ignore_ascii_case(fingerprint))
    }

    fn certs_for(&self, kind: &str) -> Vec<Cert> {
        self.signers.iter().filter(|(s, _)| s.may_sign.iter().any(|k| k == kind)).map(|(_, c)| c.clone()).collect()
    }
}

/// A clearsigned document whose signature checked out.
#[derive(Debug, Clone)]
pub struct SignedDocument {
    /// Primary fingerprint of the signing certificate.
    pub signer: String,
    /// Signature creation time.
    pub created: Timestamp,
    /// The signed text (only this may be interpreted).
    pub content: Vec<u8>,
}

/// Collects the outcome of signature checking inside sequoia's verifier.
pub(crate) struct SignatureCheck {
    certs: Vec<Cert>,
    /// Why a key outside `certs` is refused, for messages.
    unknown_key: &'static str,
    /// Primary fingerprint and creation time of each good signature.
    pub(crate) good: Vec<(String, Option<SystemTime>)>,
    problems: Vec<String>,
}

impl SignatureCheck {
    /// A check that accepts signatures by `certs` only; `unknown_key` ends
    /// the message for a signature by any other key.
    pub(crate) fn new(certs: Vec<Cert>, unknown_key: &'static str) -> SignatureCheck {
        SignatureCheck { certs, unknown_key, good: Vec::new(), problems: Vec::new() }
    }
}

impl VerificationHelper for SignatureCheck {
    fn get_certs(&mut self, _ids: &[openpgp::KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        Ok(self.certs.clone())
    }

    fn check(&mut self, structure: MessageStructure) -> openpgp::Result<()> {
        for layer in structure {
            match layer {
                MessageLayer::SignatureGroup { results } => {
                    for result in results {
                        match result {
                            Ok(good) => self
                                .good
                                .push((good.ka.cert().fingerprint().to_hex(), good.sig.signature_creation_time())),
                            Err(error) => self.problems.push(describe_failure(&error, self.unknown_key)),
                        }
                    }
                }
                MessageLayer::Compression { .. } => self.problems.push("unexpected compressed layer".into()),
                MessageLayer::Encryption { .. } => self.problems.push("unexpected encrypted layer".into()),
            }
        }
        if self.good.is_empty() {
            let reason = self.problems.first().cloned().unwrap_or_else(|| "no signature found".into());
            return Err(anyhow::anyhow!(reason));
        }
        Ok(())
    }
}

/// One line describing why a signature was not accepted.
fn describe_failure(error: &VerificationError, unknown_key: &str) -> String {
    let issuer = |sig: &openpgp::packet::Signature| {
        sig.get_issuers().first().map(|h| h.to_hex()).unwrap_or_else(|| "an unnamed key".into())
    };
    match error {
        VerificationError::MissingKey { sig } => {
            format!("signed by {} {unknown_key}", issuer(sig))
        }
        VerificationError::UnboundKey { cert, error, .. } => {
            format!("signing key of {} is not valid at the reference time: {error}", cert.fingerprint().to_hex())
        }
        VerificationError::BadKey { ka, error, .. } => {
            format!("signing key of {} is not usable at the reference time: {error}", ka.cert().fingerprint().to_hex())
        }
        VerificationError::BadSignature { sig, ka, error } => {
            format!("bad signature by {} (hash {}): {error}", ka.cert().fingerprint().to_hex(), sig.hash_algo())
        }
        VerificationError::MalformedSignature { error, .. } => format!("malformed signature: {error}"),
        other => format!("signature not accepted: {other}"),
    }
}

/// Verifies an OpenPGP clearsigned document against the policy keys allowed
/// for `kind`, under `StandardPolicy` at `reference_time`.
pub fn verify_clearsigned(
    policy: &Policy,
    kind: &str,
    document: &[u8],
    reference_time: Timestamp,
    name: &str,
) -> Result<SignedDocument, TrustError> {
    let fail = |reason: String| TrustError::Signature { document: name.to_string(), reason };
    if !document.starts_with(b"-----BEGIN PGP SIGNED MESSAGE-----") {
        return Err(fail("not an OpenPGP clearsigned document".into()));
    }
    let standard = StandardPolicy::new();
    let helper = SignatureCheck::new(policy.certs_for(kind), "which the trust policy does not allow for this evidence");
    let at = SystemTime::from(reference_time);
    let mut verifier = VerifierBuilder::from_bytes(document)
        .and_then(|b| b.with_policy(&standard, Some(at), helper))
        .map_err(|e| fail(one_line(&e)))?;
    let mut content = Vec::new();
    verifier.read_to_end(&mut content).map_err(|e| fail(one_line(&anyhow::Error::from(e))))?;
    let check = verifier.into_helper();
    let (signer, created) = check.good.into_iter().next().ok_or_else(|| fail("no valid signature".into()))?;
    let cert =
        check.certs.iter().find(|c| c.fingerprint().to_hex() == signer).expect("the signer came from these certs");
    let valid = cert
        .with_policy(&standard, at)
        .map_err(|e| fail(format!("key {signer} is not valid at the reference time: {}", one_line(&e))))?;
    if let openpgp::types::RevocationStatus::Revoked(_) = valid.revocation_status() {
        return Err(fail(format!("key {signer} is revoked at the reference time")));
    }
    valid.alive().map_err(|e| fail(format!("key {signer} is expired at the reference time: {}", one_line(&e))))?;
    let created = created
        .and_then(|t| Timestamp::try_from(t).ok())
        .ok_or_else(|| fail("signature has no creation time".into()))?;
    Ok(SignedDocument { signer, created, content })
}

pub(crate) fn one_line(error: &anyhow::Error) -> String {
    let text = format!("{error:#}");
    text.lines().next().unwrap_or("").to_string()
}

/// What one piece of evidence proved, after verification.
#[derive(Debug, Clone, Serialize)]
pub struct VerifiedEvidence {
    /// Evidence kind.
    pub kind: String,
    /// Whether a cryptographic signature backs it.
    pub signed: bool,
    /// Who publishes it (independence is counted per publisher).
    pub publisher: String,
    /// Signer fingerprint, for signed evidence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    /// Signer's name from the policy, for signed evidence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer_name: Option<String>,
    /// Signature creation time, for signed evidence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature_created: Option<String>,
    /// Where the evidence came from.
    pub reference: String,
}

/// The verdict on one locked release.
#[derive(Debug, Clone, Serialize)]
pub struct Assessment {
    /// The level reached.
    pub level: Level,
    /// Every piece of evidence, verified.
    pub evidence: Vec<VerifiedEvidence>,
}

impl Assessment {
    /// Kinds of the verified evidence, sorted and unique.
    pub fn evidence_kinds(&self) -> Vec<String> {
        let set: BTreeSet<String> = self.evidence.iter().map(|e| e.kind.clone()).collect();
        set.into_iter().collect()
    }

    /// Fingerprints of every signer, sorted and unique.
    pub fn signers(&self) -> Vec<String> {
        let set: BTreeSet<String> = self.evidence.iter().filter_map(|e| e.signer.clone()).collect();
        set.into_iter().collect()
    }
}

/// Decides the level from verified evidence.
pub fn level_of(evidence: &[VerifiedEvidence]) -> Level {
    if evidence.iter().any(|e| e.signed) {
        return Level::Signed;
    }
    let publishers: BTreeSet<&str> = evidence.iter().map(|e| e.publisher.as_str()).collect();
    if publishers.len() >= 2 { Level::Corroborated } else { Level::Unverified }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Verifies one piece of evidence given its document bytes, against the
/// locked entry it belongs to.
pub fn verify_evidence(
    policy: &Policy,
    entry: &LockedSource,
    evidence: &Evidence,
    document: &[u8],
) -> Result<VerifiedEvidence, TrustError> {
    let (doc_name, doc_sha256) = evidence.document();
    let mismatch = |reason: String| TrustError::Mismatch { document: doc_name.to_string(), reason };
    if sha256_hex(document) != doc_sha256 {
        return Err(mismatch("document differs from the one recorded in the lock (SHA-256 changed)".into()));
    }
    let expected_path = crate::evidence::committed_path(evidence, entry.version, document);
    if doc_name != expected_path {
        return Err(mismatch(format!("evidence documents must be committed as {expected_path}")));
    }
    let attests = evidence.attests();
    if attests.sha256 != entry.sha256 || attests.size.is_some() && attests.size != entry.size {
        return Err(mismatch(format!(
            "{} evidence attests a different tarball than the lock entry for {}",
            evidence.kind(),
            entry.version
        )));
    }
    match evidence {
        Evidence::DebianDsc { package, debian_version, signer, signature_created, reference_time, .. } => {
            let at = parse_time(reference_time).map_err(&mismatch)?;
            let created = parse_time(signature_created).map_err(&mismatch)?;
            if at < created || at > Timestamp::now() {
                return Err(mismatch(format!(
                    "reference time {reference_time} must lie between the signature ({signature_created}) and now"
                )));
            }
            if attests.size.is_none() || entry.size != attests.size {
                return Err(mismatch("a .dsc states the tarball size; the lock must record the same size".into()));
            }
            let signed = verify_clearsigned(policy, evidence.kind(), document, at, doc_name)?;
            if !signed.signer.eq_ignore_ascii_case(signer) {
                return Err(mismatch(format!("signed by {}, the lock records {signer}", signed.signer)));
            }
            if format_time(signed.created) != *signature_created {
                return Err(mismatch(format!(
                    "signature made at {}, the lock records {signature_created}",
                    format_time(signed.created)
                )));
            }
            let text = String::from_utf8_lossy(&signed.content);
            let dsc = debian::parse_dsc(&text).map_err(|e| mismatch(e.to_string()))?;
            check_dsc_matches(&dsc, entry, package, debian_version).map_err(mismatch)?;
            let policy_signer = policy.signer(&signed.signer);
            Ok(VerifiedEvidence {
                kind: evidence.kind().into(),
                signed: true,
                publisher: "debian".into(),
                signer: Some(signed.signer.clone()),
                signer_name: policy_signer.map(|s| s.name.clone()),
                signature_created: Some(format_time(signed.created)),
                reference: format!("Debian source package {package} {debian_version}"),
            })
        }
        Evidence::UpstreamChecksum { url, .. } => {
            let hash = crate::evidence::parse_upstream_checksum(&String::from_utf8_lossy(document), &entry.tarball)
                .map_err(&mismatch)?;
            if hash != entry.sha256 {
                return Err(mismatch("lists a different SHA-256 for the tarball".into()));
            }
            Ok(VerifiedEvidence {
                kind: evidence.kind().into(),
                signed: false,
                publisher: UPSTREAM_PUBLISHER.into(),
                signer: None,
                signer_name: None,
                signature_created: None,
                reference: url.clone(),
            })
        }
        Evidence::Witness { publisher, reference, .. } => {
            let witness = crate::evidence::parse_witness_document(&String::from_utf8_lossy(document), entry.version)
                .map_err(&mismatch)?;
            if witness.publisher != *publisher || witness.reference != *reference {
                return Err(mismatch("its header names another publisher or reference than the lock".into()));
            }
            if witness.sha256 != entry.sha256 {
                return Err(mismatch("states another SHA-256 than the lock".into()));
            }
            Ok(VerifiedEvidence {
                kind: evidence.kind().into(),
                signed: false,
                publisher: witness.owner,
                signer: None,
                signer_name: None,
                signature_created: None,
                reference: reference.clone(),
            })
        }
    }
}

/// The rules binding a verified `.dsc` to one lock entry.
fn check_dsc_matches(
    dsc: &debian::SourceControl,
    entry: &LockedSource,
    package: &str,
    debian_version: &str,
) -> Result<(), String> {
    let expected_package = debian::source_package(entry.version.major);
    if dsc.source != expected_package || package != expected_package {
        return Err(format!("is for source package {}, expected {expected_package}", dsc.source));
    }
    if dsc.version != debian_version {
        return Err(format!("is version {}, the lock records {debian_version}", dsc.version));
    }
    let upstream = debian::upstream_version(&dsc.version);
    if upstream != entry.version.to_string() {
        return Err(format!("is for PostgreSQL {upstream}, not {}", entry.version));
    }
    let orig = debian::orig_tarball_name(entry.version);
    let mut matching = dsc.sha256.iter().filter(|f| f.name == orig);
    let listed = matching.next().ok_or_else(|| format!("does not list {orig}"))?;
    if matching.next().is_some() {
        return Err(format!("lists {orig} more than once"));
    }
    if listed.sha256 != entry.sha256 {
        return Err(format!("lists SHA-256 {} for {orig}, the lock has {}", listed.sha256, entry.sha256));
    }
    if entry.size != Some(listed.size) {
        return Err(format!("lists size {} for {orig}, the lock has {:?}", listed.size, entry.size));
    }
    Ok(())
}

/// Verifies every piece of evidence of an entry from the documents committed
/// under `repo`, and decides its level. Any failing evidence is an error.
pub fn assess(repo: &Path, policy: &Policy, entry: &LockedSource) -> Result<Assessment, TrustError> {
    let mut evidence = Vec::new();
    for item in &entry.evidence {
        let path: PathBuf = repo.join(item.document().0);
        let document = std::fs::read(&path).map_err(io_error(&path))?;
        evidence.push(verify_evidence(policy, entry, item, &document)?);
    }
    Ok(Assessment { level: level_of(&evidence), evidence })
}

/// Size and SHA-256 of a file, streamed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileDigest {
    /// Bytes read.
    pub size: u64,
    /// Lowercase hex SHA-256.
    pub sha256: String,
}

/// Streams a file through SHA-256.
pub fn digest_file(path: &Path) -> Result<FileDigest, TrustError> {
    let mut file = std::fs::File::open(path).map_err(io_error(path))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buffer).map_err(io_error(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        size += n as u64;
    }
    Ok(FileDigest { size, sha256: hex::encode(hasher.finalize()) })
}

/// Checks a tarball's bytes against its lock entry.
pub fn check_tarball(path: &Path, entry: &LockedSource) -> Result<FileDigest, TrustError> {
    check_digest(path, digest_file(path)?, entry)
}

/// Checks an already computed digest of `path` against its lock entry.
pub fn check_digest(path: &Path, digest: FileDigest, entry: &LockedSource) -> Result<FileDigest, TrustError> {
    let fail = |reason: String| TrustError::Tarball { path: path.display().to_string(), reason };
    if let Some(size) = entry.size {
        if digest.size != size {
            return Err(fail(format!(
                "size is {} bytes, PostgreSQL {} is {size} bytes (truncated or wrong file)",
                digest.size, entry.version
            )));
        }
    }
    if digest.sha256 != entry.sha256 {
        return Err(fail(format!(
            "SHA-256 is {}, PostgreSQL {} must be {} (corrupted or tampered)",
            digest.sha256, entry.version, entry.sha256
        )));
    }
    Ok(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn committed_policy_loads_with_matching_fingerprints() {
        let policy = Policy::load(&repo().join("keys")).unwrap();
        assert!(policy.signer("5C48FE6157F49179597087C64C5A6BAB12D2A7AE").is_some());
    }

    #[test]
    fn real_debian_dsc_verifies_with_the_maintainer_key() {
        let policy = Policy::load(&repo().join("keys")).unwrap();
        let doc = std::fs::read(repo().join("evidence/debian/postgresql-18_18.6-3.dsc")).unwrap();
        let at = parse_time("2026-11-01T00:00:00Z").unwrap();
        let signed = verify_clearsigned(&policy, "debian-dsc", &doc, at, "18.6 dsc").unwrap();
        assert_eq!(signed.signer, "5C48FE6157F49179597087C64C5A6BAB12D2A7AE");
        assert!(String::from_utf8(signed.content).unwrap().contains("Source: postgresql-18"));
        let err = verify_clearsigned(&policy, "witness", &doc, at, "18.6 dsc").unwrap_err();
        assert!(err.to_string().contains("does not allow"), "{err}");
    }

    #[test]
    fn a_signature_from_before_the_key_existed_is_refused() {
        let policy = Policy::load(&repo().join("keys")).unwrap();
        let doc = std::fs::read(repo().join("evidence/debian/postgresql-18_18.6-3.dsc")).unwrap();
        let before_key = parse_time("2005-01-01T00:00:00Z").unwrap();
        assert!(verify_clearsigned(&policy, "debian-dsc", &doc, before_key, "dsc").is_err());
    }

    #[test]
    fn levels_count_independent_publishers() {
        let unsigned = |p: &str| VerifiedEvidence {
            kind: "witness".into(),
            signed: false,
            publisher: p.into(),
            signer: None,
            signer_name: None,
            signature_created: None,
            reference: String::new(),
        };
        assert_eq!(level_of(&[]), Level::Unverified);
        assert_eq!(level_of(&[unsigned("a"), unsigned("a")]), Level::Unverified);
        assert_eq!(level_of(&[unsigned("a"), unsigned("b")]), Level::Corroborated);
        let mut signed = unsigned("debian");
        signed.signed = true;
        assert_eq!(level_of(&[signed]), Level::Signed);
        assert!(!Level::Unverified.buildable() && Level::Corroborated.buildable());
    }
}
