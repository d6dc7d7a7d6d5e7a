//! OpenPGP for source trust: the pinned policy keys and clearsigned-document
//! verification with sequoia-openpgp under `StandardPolicy` at a recorded
//! reference time.

use std::io::Read;
use std::path::{Component, Path};
use std::time::SystemTime;

use jiff::Timestamp;
use openpgp::cert::{Cert, CertParser};
use openpgp::parse::Parse;
use openpgp::parse::stream::{MessageLayer, MessageStructure, VerificationError, VerificationHelper, VerifierBuilder};
use openpgp::policy::StandardPolicy;
use sequoia_openpgp as openpgp;
use serde::{Deserialize, Serialize};

use super::error::TrustError;
use crate::data::repo::{self, Repo};
use crate::util::confined::{Bound, read_confined, read_confined_text};

/// The most bytes `keys/policy.toml` may hold: a signer takes about 500
/// The largest OpenPGP document or evidence file pgbin reads (a `.dsc` is
/// a few KiB); larger ones are refused before any parsing.
pub const MAX_DOCUMENT_BYTES: u64 = 1 << 20;

/// bytes, so 1 MiB is room for any policy and bounds a replaced file.
pub const POLICY_BOUND: Bound = Bound { bytes: 1 << 20, what: "the trust policy" };

/// The most bytes a certificate may hold: the committed `export-minimal`
/// certificates take about 7 KiB, and even one with many third-party
/// signatures stays well below 1 MiB.
pub const CERTIFICATE_BOUND: Bound = Bound { bytes: 1 << 20, what: "a certificate" };

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

impl Policy {
    /// Loads `keys/policy.toml` and every certificate it names (a file
    /// inside `keys/`): each a regular file within its bound, reached through
    /// no link.
    pub fn load(repo: &Repo) -> Result<Policy, TrustError> {
        let keys = Path::new(repo::KEYS);
        let path = repo.keys().join("policy.toml");
        let text = read_confined_text(repo.root(), &keys.join("policy.toml"), POLICY_BOUND)?;
        let file: PolicyFile =
            toml::from_str(&text).map_err(|e| TrustError::Policy(format!("{}: {}", path.display(), e.message())))?;
        let mut signers = Vec::new();
        for signer in file.signers {
            let certificate = Path::new(&signer.certificate);
            let inside = certificate.components().all(|c| matches!(c, Component::Normal(_)));
            if !inside || signer.certificate.is_empty() {
                return Err(TrustError::Policy(format!(
                    "{}: certificate {:?} of {} must name a file inside {}/ (relative, without `..`)",
                    path.display(),
                    signer.certificate,
                    signer.fingerprint,
                    repo::KEYS
                )));
            }
            let cert_path = repo.keys().join(certificate);
            let bytes = read_confined(repo.root(), &keys.join(certificate), CERTIFICATE_BOUND)?;
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
    if document.len() as u64 > MAX_DOCUMENT_BYTES {
        return Err(fail(format!("larger than the limit of {MAX_DOCUMENT_BYTES} bytes")));
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::time::parse_time;

    fn repo() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR"))
    }

    fn policy() -> Policy {
        Policy::load(&Repo::discover(Some(repo())).unwrap()).unwrap()
    }

    #[test]
    fn committed_policy_loads_with_matching_fingerprints() {
        let policy = policy();
        assert!(policy.signer("5C48FE6157F49179597087C64C5A6BAB12D2A7AE").is_some());
    }

    #[test]
    fn real_debian_dsc_verifies_with_the_maintainer_key() {
        let policy = policy();
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
        let policy = policy();
        let doc = std::fs::read(repo().join("evidence/debian/postgresql-18_18.6-3.dsc")).unwrap();
        let before_key = parse_time("2005-01-01T00:00:00Z").unwrap();
        assert!(verify_clearsigned(&policy, "debian-dsc", &doc, before_key, "dsc").is_err());
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::util::fuzz;
    use crate::util::time::parse_time;
    use proptest::prelude::*;

    const DOCUMENTS: [&[u8]; 3] = [
        include_bytes!("../../evidence/debian/postgresql-13_13.16-0+deb11u1.dsc"),
        include_bytes!("../../evidence/debian/postgresql-15_15.18-0+deb12u1.dsc"),
        include_bytes!("../../evidence/debian/postgresql-18_18.6-3.dsc"),
    ];

    fn policy() -> &'static Policy {
        static POLICY: std::sync::OnceLock<Policy> = std::sync::OnceLock::new();
        POLICY.get_or_init(|| {
            Policy::load(&crate::data::repo::Repo::discover(Some(Path::new(env!("CARGO_MANIFEST_DIR")))).unwrap())
                .unwrap()
        })
    }

    /// What pgbin interprets in a `.dsc`.
    fn fields(content: &[u8]) -> Option<crate::source::debian::SourceControl> {
        crate::source::debian::parse_dsc(&String::from_utf8_lossy(content)).ok()
    }

    #[test]
    fn a_document_over_the_limit_is_refused_before_parsing() {
        let mut document = DOCUMENTS[2].to_vec();
        document.resize(MAX_DOCUMENT_BYTES as usize + 1, b'\n');
        let at = parse_time("2026-11-01T00:00:00Z").unwrap();
        let error = verify_clearsigned(policy(), "debian-dsc", &document, at, "big.dsc").unwrap_err();
        assert_eq!(error.to_string(), "big.dsc: larger than the limit of 1048576 bytes");
    }

    proptest! {
        #![proptest_config(fuzz::config(288))]

        #[test]
        fn fuzz_verify_clearsigned_mutated(which in 0usize..3, mutations in fuzz::mutations(4)) {
            let original = DOCUMENTS[which];
            let document = fuzz::apply(original, &mutations);
            let at = parse_time("2026-11-01T00:00:00Z").unwrap();
            match verify_clearsigned(policy(), "debian-dsc", &document, at, "fuzzed.dsc") {
                // A change that keeps the signature valid cannot change what pgbin reads.
                Ok(signed) => {
                    let before = verify_clearsigned(policy(), "debian-dsc", original, at, "original.dsc").unwrap();
                    prop_assert_eq!(fields(&signed.content), fields(&before.content));
                    prop_assert_eq!(signed.signer, before.signer);
                }
                Err(error) => prop_assert!(fuzz::one_line(&error.to_string()), "{}", error),
            }
        }
    }
}
