//! `signing`: armored detached OpenPGP signatures over release artifacts,
//! DSSE envelopes of provenance statements, and their offline verification.
//!
//! Signatures are made and checked with sequoia under `StandardPolicy`.
//! A detached signature is an ordinary `.asc` file, so `sqv --keyring KEYS
//! FILE.asc FILE` and `gpgv` verify it too. The DSSE envelope follows the
//! DSSE v1 protocol: the signature covers
//! `PAE(type, body) = "DSSEv1" SP len(type) SP type SP len(body) SP body`;
//! with an OpenPGP key, `sig` is the base64 of a binary detached OpenPGP
//! signature over the PAE bytes and `keyid` the signing certificate's
//! fingerprint.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use base64::Engine;
use openpgp::cert::{Cert, CertParser};
use openpgp::parse::Parse;
use openpgp::parse::stream::DetachedVerifierBuilder;
use openpgp::policy::StandardPolicy;
use openpgp::serialize::stream::{Armorer, Message, Signer};
use sequoia_openpgp as openpgp;
use serde::{Deserialize, Serialize};

use crate::attest::verify_artifact::sibling;
use crate::source::openpgp::{SignatureCheck, one_line};
use crate::util::io::{IoError, context};

/// File name suffix of a detached signature.
pub const SIGNATURE_SUFFIX: &str = ".asc";
/// `payloadType` of an in-toto statement in a DSSE envelope.
pub const DSSE_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// What went wrong while signing or verifying.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// A file could not be read or written.
    #[error(transparent)]
    Io(#[from] IoError),
    /// The signing key is unusable.
    #[error("{0}")]
    Key(String),
    /// A keyring could not be used.
    #[error("{0}")]
    Keyring(String),
    /// A signature did not verify.
    #[error("{0}")]
    Rejected(String),
}

/// A secret signing key, ready to sign.
pub struct SigningKey {
    cert: Cert,
    keypair: openpgp::crypto::KeyPair,
}

impl SigningKey {
    /// Reads an OpenPGP secret key (armored or binary) from `path` and picks
    /// its signing-capable, unencrypted, valid (sub)key.
    pub fn load(path: &Path) -> Result<SigningKey, SigningError> {
        let bytes = std::fs::read(path).map_err(context(path.display().to_string()))?;
        let cert = Cert::from_bytes(&bytes)
            .map_err(|e| SigningError::Key(format!("{} is not an OpenPGP key: {}", path.display(), one_line(&e))))?;
        let policy = StandardPolicy::new();
        let key = cert
            .keys()
            .with_policy(&policy, None)
            .supported()
            .alive()
            .revoked(false)
            .for_signing()
            .secret()
            .next()
            .ok_or_else(|| {
                SigningError::Key(format!(
                    "{} holds no valid signing key with secret material (export it with --export-secret-keys)",
                    path.display()
                ))
            })?
            .key()
            .clone();
        if !key.has_unencrypted_secret() {
            return Err(SigningError::Key(format!(
                "the signing key in {} is password-protected; give pgbin an unprotected copy (e.g. from a CI secret)",
                path.display()
            )));
        }
        let keypair = key.into_keypair().map_err(|e| SigningError::Key(one_line(&e)))?;
        Ok(SigningKey { cert, keypair })
    }

    /// The certificate's primary fingerprint, upper-case hex.
    pub fn fingerprint(&self) -> String {
        self.cert.fingerprint().to_hex()
    }

    /// An armored detached signature over everything `data` yields.
    pub fn sign_armored(&self, data: &mut dyn Read) -> Result<Vec<u8>, SigningError> {
        self.sign(data, true)
    }

    fn sign(&self, data: &mut dyn Read, armored: bool) -> Result<Vec<u8>, SigningError> {
        let failed = |e: anyhow::Error| SigningError::Key(format!("signing failed: {}", one_line(&e)));
        let mut sink = Vec::new();
        {
            let mut message = Message::new(&mut sink);
            if armored {
                message = Armorer::new(message).kind(openpgp::armor::Kind::Signature).build().map_err(failed)?;
            }
            let mut signer =
                Signer::new(message, self.keypair.clone()).map_err(failed)?.detached().build().map_err(failed)?;
            std::io::copy(data, &mut signer).map_err(|e| failed(e.into()))?;
            signer.finalize().map_err(failed)?;
        }
        Ok(sink)
    }

    /// A DSSE envelope of an in-toto statement (`statement` is its JSON).
    pub fn dsse_envelope(&self, statement: &[u8]) -> Result<DsseEnvelope, SigningError> {
        let signature = self.sign(&mut &pae(DSSE_PAYLOAD_TYPE, statement)[..], false)?;
        let base64 = base64::engine::general_purpose::STANDARD;
        Ok(DsseEnvelope {
            payload_type: DSSE_PAYLOAD_TYPE.into(),
            payload: base64.encode(statement),
            signatures: vec![DsseSignature { keyid: self.fingerprint(), sig: base64.encode(signature) }],
        })
    }
}

/// DSSE v1 pre-authentication encoding.
pub fn pae(payload_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!("DSSEv1 {} {payload_type} {} ", payload_type.len(), body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

/// A DSSE envelope.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DsseEnvelope {
    /// The payload's media type.
    pub payload_type: String,
    /// The payload, base64.
    pub payload: String,
    /// Signatures over `PAE(payloadType, payload)`.
    pub signatures: Vec<DsseSignature>,
}

/// One DSSE signature.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DsseSignature {
    /// The signing certificate's fingerprint.
    pub keyid: String,
    /// A binary detached OpenPGP signature over the PAE, base64.
    pub sig: String,
}

/// Reads every certificate in a keyring file (armored or binary, one or
/// many certificates).
pub fn read_keyring(path: &Path) -> Result<Vec<Cert>, SigningError> {
    let bytes = std::fs::read(path).map_err(context(path.display().to_string()))?;
    let certs: Vec<Cert> =
        CertParser::from_bytes(&bytes).and_then(|parser| parser.collect::<openpgp::Result<Vec<Cert>>>()).map_err(
            |e| SigningError::Keyring(format!("{} is not an OpenPGP keyring: {}", path.display(), one_line(&e))),
        )?;
    if certs.is_empty() {
        return Err(SigningError::Keyring(format!("{} holds no OpenPGP certificate", path.display())));
    }
    Ok(certs.into_iter().map(|c| c.strip_secret_key_material()).collect())
}

/// Verifies a detached signature (armored or binary) over `data` against
/// `keyring`, now, under `StandardPolicy`. Returns the signer's primary
/// fingerprint. `name` labels messages.
pub fn verify_detached(
    keyring: &[Cert],
    data: &mut (dyn Read + Send + Sync),
    signature: &[u8],
    name: &str,
) -> Result<String, SigningError> {
    let reject = |reason: String| SigningError::Rejected(format!("{name}: {reason}"));
    let policy = StandardPolicy::new();
    let helper = SignatureCheck::new(keyring.to_vec(), "which is not in the keyring");
    let mut verifier = DetachedVerifierBuilder::from_bytes(signature)
        .and_then(|b| b.with_policy(&policy, None, helper))
        .map_err(|e| reject(one_line(&e)))?;
    verifier.verify_reader(data).map_err(|e| reject(one_line(&e)))?;
    let (signer, _) =
        verifier.into_helper().good.into_iter().next().ok_or_else(|| reject("no valid signature".into()))?;
    let cert = keyring.iter().find(|c| c.fingerprint().to_hex() == signer).expect("the signer came from the keyring");
    let valid = cert
        .with_policy(&policy, SystemTime::now())
        .map_err(|e| reject(format!("key {signer} is not valid now: {}", one_line(&e))))?;
    if let openpgp::types::RevocationStatus::Revoked(_) = valid.revocation_status() {
        return Err(reject(format!("key {signer} is revoked")));
    }
    Ok(signer)
}

/// Verifies a DSSE envelope of an in-toto statement against `keyring` and
/// returns the payload and the fingerprint of the first signer that
/// verified. Another `payloadType` is refused, as DSSE requires.
pub fn verify_dsse(keyring: &[Cert], envelope: &DsseEnvelope, name: &str) -> Result<(Vec<u8>, String), SigningError> {
    let reject = |reason: String| SigningError::Rejected(format!("{name}: {reason}"));
    if envelope.payload_type != DSSE_PAYLOAD_TYPE {
        return Err(reject(format!("payloadType is {:?}, not {DSSE_PAYLOAD_TYPE}", envelope.payload_type)));
    }
    let base64 = base64::engine::general_purpose::STANDARD;
    let payload = base64.decode(&envelope.payload).map_err(|e| reject(format!("payload is not base64: {e}")))?;
    let message = pae(&envelope.payload_type, &payload);
    let mut last = reject("the envelope has no signature".into());
    for signature in &envelope.signatures {
        let bytes = base64.decode(&signature.sig).map_err(|e| reject(format!("sig is not base64: {e}")))?;
        match verify_detached(keyring, &mut &message[..], &bytes, name) {
            Ok(signer) => return Ok((payload, signer)),
            Err(error) => last = error,
        }
    }
    Err(last)
}

crate::util::error::usage_errors!(SigningError);

/// One signature or envelope written by [`sign_files`]. In JSON, a path
/// that is not UTF-8 is shown with U+FFFD in place of the bytes JSON cannot
/// hold (the files themselves have their exact names).
#[derive(Debug, Clone, Serialize)]
pub struct Signed {
    /// The file signed.
    #[serde(serialize_with = "lossy_path")]
    pub artifact: PathBuf,
    /// The `.asc` or `.dsse.json` written.
    #[serde(serialize_with = "lossy_path")]
    pub signature: PathBuf,
    /// The signing key's fingerprint.
    pub signer: String,
}

fn lossy_path<S: serde::Serializer>(path: &Path, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&path.to_string_lossy())
}

/// Why nothing was signed.
#[derive(Debug, thiserror::Error)]
pub enum SignFilesError {
    /// An input is not a regular file.
    #[error("{0} is not a file")]
    NotAFile(String),
    /// A statement to wrap cannot be read or is not a pgbin statement.
    #[error("{0}")]
    Statement(String),
    /// `--dsse` without any statement.
    #[error("--dsse wraps in-toto statements: give at least one *.intoto.json file")]
    NoStatement,
    /// Signing failed.
    #[error(transparent)]
    Signing(#[from] SigningError),
    /// A file cannot be read or written.
    #[error(transparent)]
    Io(#[from] IoError),
}

crate::util::error::usage_errors!(SignFilesError);

/// Signs every artifact with `key` (`<artifact>.asc`) and, with `dsse`,
/// wraps each `*.intoto.json` statement in `<archive>.dsse.json`. Every
/// input is checked and everything signed in memory before anything is
/// written, so a failure writes nothing.
pub fn sign_files(key: &SigningKey, artifacts: &[PathBuf], dsse: bool) -> Result<Vec<Signed>, SignFilesError> {
    use std::os::unix::ffi::OsStrExt;
    let mut jobs = Vec::new();
    for artifact in artifacts {
        let name = artifact.display();
        if !artifact.is_file() {
            return Err(SignFilesError::NotAFile(name.to_string()));
        }
        // Output names are built from the artifact's own bytes, so that a
        // name that is not UTF-8 gets its signature beside it, not beside a
        // lossy look-alike.
        let statement_stem = artifact.as_os_str().as_bytes().strip_suffix(crate::attest::provenance::SUFFIX.as_bytes());
        let envelope = match statement_stem {
            Some(stem) if dsse => Some(sibling(Path::new(std::ffi::OsStr::from_bytes(stem)), ".dsse.json")),
            _ => None,
        };
        if envelope.is_some() {
            let statement =
                std::fs::read_to_string(artifact).map_err(|e| SignFilesError::Statement(format!("{name}: {e}")))?;
            crate::attest::provenance::parse(&statement)
                .map_err(|e| SignFilesError::Statement(format!("{name}: {e}")))?;
        }
        jobs.push((artifact, sibling(artifact, SIGNATURE_SUFFIX), envelope));
    }
    if dsse && jobs.iter().all(|(_, _, envelope)| envelope.is_none()) {
        return Err(SignFilesError::NoStatement);
    }
    let mut outputs: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    let mut signed = Vec::new();
    for (artifact, signature_path, envelope_path) in jobs {
        let mut file = std::fs::File::open(artifact).map_err(context(artifact.display().to_string()))?;
        outputs.push((signature_path.clone(), key.sign_armored(&mut file)?));
        signed.push(Signed { artifact: artifact.clone(), signature: signature_path, signer: key.fingerprint() });
        if let Some(envelope_path) = envelope_path {
            let statement = std::fs::read(artifact).map_err(context(artifact.display().to_string()))?;
            let envelope = key.dsse_envelope(&statement)?;
            let text = serde_json::to_string_pretty(&envelope).expect("envelopes serialize") + "\n";
            outputs.push((envelope_path.clone(), text.into_bytes()));
            signed.push(Signed { artifact: artifact.clone(), signature: envelope_path, signer: key.fingerprint() });
        }
    }
    for (path, bytes) in &outputs {
        crate::util::fs::write_atomic(path, bytes).map_err(context(format!("cannot write {}", path.display())))?;
    }
    Ok(signed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openpgp::cert::CertBuilder;
    use openpgp::serialize::Serialize as _;

    fn key_file(dir: &Path) -> (std::path::PathBuf, Cert) {
        let (cert, _) = CertBuilder::general_purpose(Some("pgbin unit <unit@pgbin.invalid>")).generate().unwrap();
        let path = dir.join("key.pgp");
        let mut bytes = Vec::new();
        cert.as_tsk().serialize(&mut bytes).unwrap();
        std::fs::write(&path, bytes).unwrap();
        (path, cert)
    }

    #[test]
    fn detached_signatures_verify_and_bind_the_data() {
        let dir = tempfile::tempdir().unwrap();
        let (path, cert) = key_file(dir.path());
        let key = SigningKey::load(&path).unwrap();
        let signature = key.sign_armored(&mut &b"archive bytes"[..]).unwrap();
        assert!(signature.starts_with(b"-----BEGIN PGP SIGNATURE-----"));
        let keyring = vec![cert.clone().strip_secret_key_material()];
        assert_eq!(verify_detached(&keyring, &mut &b"archive bytes"[..], &signature, "a").unwrap(), key.fingerprint());
        let err = verify_detached(&keyring, &mut &b"archive bytez"[..], &signature, "a").unwrap_err();
        assert!(err.to_string().contains("bad signature"), "{err}");
        let (other, _) = CertBuilder::general_purpose(Some("other")).generate().unwrap();
        let err = verify_detached(&[other], &mut &b"archive bytes"[..], &signature, "a").unwrap_err();
        assert!(err.to_string().contains("not in the keyring"), "{err}");
    }

    #[test]
    fn pae_matches_the_dsse_specification_example() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    #[test]
    fn dsse_envelopes_verify_and_detect_a_changed_payload() {
        let dir = tempfile::tempdir().unwrap();
        let (path, cert) = key_file(dir.path());
        let key = SigningKey::load(&path).unwrap();
        let mut envelope = key.dsse_envelope(br#"{"_type":"x"}"#).unwrap();
        let keyring = vec![cert];
        let (payload, signer) = verify_dsse(&keyring, &envelope, "e").unwrap();
        assert_eq!(payload, br#"{"_type":"x"}"#);
        assert_eq!(signer, key.fingerprint());
        envelope.payload_type = "application/json".into();
        assert!(verify_dsse(&keyring, &envelope, "e").is_err());
    }

    #[test]
    fn signatures_of_names_that_are_not_utf8_go_beside_them() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = key_file(dir.path());
        let key = SigningKey::load(&path).unwrap();
        let archive = dir.path().join(std::ffi::OsStr::from_bytes(b"postgresql-\xff.tar.gz"));
        let statement = dir.path().join(std::ffi::OsStr::from_bytes(b"postgresql-\xff.tar.gz.intoto.json"));
        std::fs::write(&archive, b"archive").unwrap();
        std::fs::write(&statement, b"{}").unwrap();
        let signed = sign_files(&key, std::slice::from_ref(&archive), false).unwrap();
        let expected = dir.path().join(std::ffi::OsStr::from_bytes(b"postgresql-\xff.tar.gz.asc"));
        assert_eq!(signed[0].signature, expected);
        assert!(expected.is_file());
        let json = serde_json::to_value(&signed).unwrap();
        assert!(json[0]["signature"].as_str().unwrap().ends_with("postgresql-\u{fffd}.tar.gz.asc"));
        let err = sign_files(&key, &[statement], true).unwrap_err();
        assert!(matches!(err, SignFilesError::Statement(_)), "the statement is read from its own path: {err}");
    }

    #[test]
    fn a_public_certificate_is_not_a_signing_key() {
        let dir = tempfile::tempdir().unwrap();
        let (_, cert) = key_file(dir.path());
        let public = dir.path().join("public.pgp");
        let mut bytes = Vec::new();
        cert.serialize(&mut bytes).unwrap();
        std::fs::write(&public, bytes).unwrap();
        let err = SigningKey::load(&public).err().unwrap();
        assert!(err.to_string().contains("no valid signing key with secret material"), "{err}");
    }
}
