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
use std::path::Path;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::documents::{EVIDENCE_BOUND, FormatError, record_from_document};
use super::error::TrustError;
use super::openpgp::MAX_DOCUMENT_BYTES;
use super::openpgp::{Policy, SignedDocument, verify_clearsigned};
use crate::source::witness_clone::{CloneReport, WitnessClone, check_witnesses, witness_documents};
use crate::util::confined::read_confined;
use crate::util::digest::{FileDigest, digest_file, sha256_hex};
use crate::util::time::{format_time, parse_time};

use crate::data::lock::{Evidence, LockedSource};
use crate::source::{debian, debian_archive};

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
    /// A witness's repository name (`postgresql-feedstock`), lower-cased:
    /// two owners' repositories of one name are taken for a fork and its
    /// upstream, and counted once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// A witness's blob id: two owners' witnesses of the same file are
    /// counted once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blob: Option<String>,
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

    /// What the level rests on, in a few words: the signed kinds, else the
    /// independent publishers; for a level below `corroborated`, what is
    /// missing.
    pub fn basis(&self) -> String {
        basis_of(&self.evidence)
    }

    /// Fingerprints of every signer, sorted and unique.
    pub fn signers(&self) -> Vec<String> {
        let set: BTreeSet<String> = self.evidence.iter().filter_map(|e| e.signer.clone()).collect();
        set.into_iter().collect()
    }
}

/// Decides the level from verified evidence. Unsigned evidence counts once
/// per independent group ([`independent_groups`]).
pub fn level_of(evidence: &[VerifiedEvidence]) -> Level {
    if evidence.iter().any(|e| e.signed) {
        return Level::Signed;
    }
    if independent_groups(evidence).len() >= 2 { Level::Corroborated } else { Level::Unverified }
}

/// The unsigned evidence grouped into independent sources, each group the
/// publishers it holds (sorted). Publishers are compared lower-cased (GitHub
/// owners are case-insensitive, so `Docker-Library` and `docker-library` are
/// one); two owners whose witnessed repositories share a name (a fork and
/// its upstream: `someone/postgresql-feedstock`), or whose witnesses are the
/// same file (one blob id), are one group.
pub fn independent_groups(evidence: &[VerifiedEvidence]) -> Vec<Vec<String>> {
    let mut groups: Vec<(BTreeSet<String>, BTreeSet<String>)> = Vec::new();
    for item in evidence.iter().filter(|e| !e.signed) {
        let publisher = item.publisher.to_ascii_lowercase();
        let mut keys = BTreeSet::from([format!("owner:{publisher}")]);
        keys.extend(item.repository.iter().map(|r| format!("repository:{r}")));
        keys.extend(item.blob.iter().map(|b| format!("blob:{b}")));
        let mut merged = (keys, BTreeSet::from([publisher]));
        groups.retain(|(group_keys, publishers)| {
            if group_keys.is_disjoint(&merged.0) {
                return true;
            }
            merged.0.extend(group_keys.iter().cloned());
            merged.1.extend(publishers.iter().cloned());
            false
        });
        groups.push(merged);
    }
    let mut publishers: Vec<Vec<String>> = groups.into_iter().map(|(_, p)| p.into_iter().collect()).collect();
    publishers.sort();
    publishers
}

/// The basis of a level decided from `evidence` (see [`Assessment::basis`]).
pub fn basis_of(evidence: &[VerifiedEvidence]) -> String {
    let signed: BTreeSet<&str> = evidence.iter().filter(|e| e.signed).map(|e| e.kind.as_str()).collect();
    let publishers: Vec<String> = independent_groups(evidence).into_iter().map(|group| group.join(" = ")).collect();
    if !signed.is_empty() {
        let mut parts: Vec<String> = signed.into_iter().map(str::to_string).collect();
        if !publishers.is_empty() {
            parts.push(format!("witnessed by {}", publishers.join(", ")));
        }
        return parts.join("; ");
    }
    match publishers.len() {
        0 => "no evidence locked".into(),
        1 if publishers[0].contains(" = ") => {
            format!("{} count once (a fork, or the same file); a second independent record is needed", publishers[0])
        }
        1 => format!("only {} records it; a second owner's record is needed", publishers[0]),
        _ => format!("witnessed by {}", publishers.join(", ")),
    }
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
    if document.len() as u64 > MAX_DOCUMENT_BYTES {
        return Err(mismatch(format!("larger than the limit of {MAX_DOCUMENT_BYTES} bytes")));
    }
    if sha256_hex(document) != doc_sha256 {
        return Err(mismatch("document differs from the one recorded in the lock (SHA-256 changed)".into()));
    }
    let expected_path =
        crate::source::documents::committed_path(evidence, entry.version, document).map_err(|e| mismatch(e.0))?;
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
    let expected_name = match evidence {
        Evidence::DebianDsc { .. } | Evidence::DebianArchive { .. } => debian::orig_tarball_name(entry.version),
        _ => entry.tarball.clone(),
    };
    if attests.name != expected_name {
        return Err(mismatch(format!(
            "{} evidence attests a different tarball than the lock entry for {}: it names {:?}, not {expected_name}",
            evidence.kind(),
            entry.version,
            attests.name
        )));
    }
    match evidence {
        Evidence::DebianDsc { package, debian_version, signer, signature_created, reference_time, .. } => {
            let at = reference_time_of(reference_time, signature_created, entry, attests.size).map_err(mismatch)?;
            let signed = verify_clearsigned(policy, evidence.kind(), document, at, doc_name)?;
            check_signature_record(&signed, signer, signature_created).map_err(mismatch)?;
            let text = String::from_utf8_lossy(&signed.content);
            let dsc = debian::parse_dsc(&text).map_err(|e| mismatch(e.to_string()))?;
            check_dsc_matches(&dsc, entry, package, debian_version).map_err(|e| mismatch(e.0))?;
            let policy_signer = policy.signer(&signed.signer);
            Ok(VerifiedEvidence {
                kind: evidence.kind().into(),
                signed: true,
                publisher: "debian".into(),
                signer: Some(signed.signer.clone()),
                signer_name: policy_signer.map(|s| s.name.clone()),
                signature_created: Some(format_time(signed.created)),
                reference: format!("Debian source package {package} {debian_version}"),
                repository: None,
                blob: None,
            })
        }
        Evidence::DebianArchive {
            package,
            debian_version,
            suite,
            release_date,
            signer,
            signature_created,
            reference_time,
            ..
        } => {
            let at = reference_time_of(reference_time, signature_created, entry, attests.size).map_err(mismatch)?;
            let (proof, checked) = debian_archive::check_proof(policy, document, at, doc_name)?;
            check_signature_record(&checked.signed, signer, signature_created).map_err(mismatch)?;
            if checked.release.codename != *suite || format_time(checked.release.date) != *release_date {
                return Err(mismatch(format!(
                    "is the InRelease of {} dated {}, the lock records {suite} dated {release_date}",
                    checked.release.codename,
                    format_time(checked.release.date)
                )));
            }
            if proof.package != *package || proof.debian_version != *debian_version {
                return Err(mismatch(format!(
                    "is about {} {}, the lock records {package} {debian_version}",
                    proof.package, proof.debian_version
                )));
            }
            check_dsc_matches(&checked.paragraph, entry, package, debian_version).map_err(|e| mismatch(e.0))?;
            let policy_signer = policy.signer(&checked.signed.signer);
            Ok(VerifiedEvidence {
                kind: evidence.kind().into(),
                signed: true,
                publisher: "debian".into(),
                signer: Some(checked.signed.signer.clone()),
                signer_name: policy_signer.map(|s| s.name.clone()),
                signature_created: Some(format_time(checked.signed.created)),
                reference: format!("Debian archive {suite} ({release_date}): {package} {debian_version}"),
                repository: None,
                blob: None,
            })
        }
        Evidence::UpstreamChecksum { url, .. } => {
            let hash =
                crate::source::documents::parse_upstream_checksum(&String::from_utf8_lossy(document), &entry.tarball)
                    .map_err(|e| mismatch(e.0))?;
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
                repository: None,
                blob: None,
            })
        }
        Evidence::Witness { publisher, reference, blob, .. } => {
            let witness =
                crate::source::documents::parse_witness_document(&String::from_utf8_lossy(document), entry.version)
                    .map_err(|e| mismatch(e.0))?;
            if witness.publisher != *publisher || witness.reference != *reference || witness.blob != *blob {
                return Err(mismatch("its header names another publisher, reference or blob than the lock".into()));
            }
            if witness.sha256 != entry.sha256 {
                return Err(mismatch("states another SHA-256 than the lock".into()));
            }
            let repository = witness.publisher.split_once('/').map(|(_, repo)| repo.to_ascii_lowercase());
            Ok(VerifiedEvidence {
                kind: evidence.kind().into(),
                signed: false,
                publisher: witness.owner,
                signer: None,
                signer_name: None,
                signature_created: None,
                reference: reference.clone(),
                repository,
                blob: witness.blob,
            })
        }
    }
}

/// The reference time of signed evidence, which must lie between the
/// signature and now; signed Debian evidence states the tarball size, so the
/// entry must record it.
fn reference_time_of(
    reference_time: &str,
    signature_created: &str,
    entry: &LockedSource,
    attested_size: Option<u64>,
) -> Result<Timestamp, String> {
    let at = parse_time(reference_time).map_err(|e| e.to_string())?;
    let created = parse_time(signature_created).map_err(|e| e.to_string())?;
    if at < created || at > Timestamp::now() {
        return Err(format!(
            "reference time {reference_time} must lie between the signature ({signature_created}) and now"
        ));
    }
    if attested_size.is_none() || entry.size != attested_size {
        return Err("signed Debian evidence states the tarball size; the lock must record the same size".into());
    }
    Ok(at)
}

/// The verified signature must be the one the lock records.
fn check_signature_record(signed: &SignedDocument, signer: &str, signature_created: &str) -> Result<(), String> {
    if !signed.signer.eq_ignore_ascii_case(signer) {
        return Err(format!("signed by {}, the lock records {signer}", signed.signer));
    }
    if format_time(signed.created) != signature_created {
        return Err(format!("signature made at {}, the lock records {signature_created}", format_time(signed.created)));
    }
    Ok(())
}

/// The rules binding a verified `.dsc`, or a verified index's paragraph, to
/// one lock entry.
fn check_dsc_matches(
    dsc: &debian::SourceControl,
    entry: &LockedSource,
    package: &str,
    debian_version: &str,
) -> Result<(), FormatError> {
    let expected_package = debian::source_package(entry.version.major);
    if dsc.source != expected_package || package != expected_package {
        return Err(FormatError(format!("is for source package {}, expected {expected_package}", dsc.source)));
    }
    if dsc.version != debian_version {
        return Err(FormatError(format!("is version {}, the lock records {debian_version}", dsc.version)));
    }
    let upstream = debian::upstream_version(&dsc.version);
    if upstream != entry.version.to_string() {
        return Err(FormatError(format!("is for PostgreSQL {upstream}, not {}", entry.version)));
    }
    let orig = debian::orig_tarball_name(entry.version);
    let mut matching = dsc.sha256.iter().filter(|f| f.name == orig);
    let listed = matching.next().ok_or_else(|| FormatError(format!("does not list {orig}")))?;
    if matching.next().is_some() {
        return Err(FormatError(format!("lists {orig} more than once")));
    }
    if listed.sha256 != entry.sha256 {
        return Err(FormatError(format!("lists SHA-256 {} for {orig}, the lock has {}", listed.sha256, entry.sha256)));
    }
    if entry.size != Some(listed.size) {
        return Err(FormatError(format!("lists size {} for {orig}, the lock has {:?}", listed.size, entry.size)));
    }
    Ok(())
}

/// Verifies every piece of evidence of an entry from the documents committed
/// under `repo`, and decides its level. Any failing evidence is an error.
pub fn assess(repo: &Path, policy: &Policy, entry: &LockedSource) -> Result<Assessment, TrustError> {
    let mut evidence = Vec::new();
    for item in &entry.evidence {
        let document = read_confined(repo, Path::new(item.document().0), EVIDENCE_BOUND)?;
        evidence.push(verify_evidence(policy, entry, item, &document)?);
    }
    Ok(Assessment { level: level_of(&evidence), evidence })
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

/// A local tarball checked against the lock.
#[derive(Debug, Clone, Serialize)]
pub struct LocalVerification {
    /// The tarball's size and SHA-256.
    #[serde(flatten)]
    pub digest: FileDigest,
    /// The release's verified evidence and level.
    #[serde(flatten)]
    pub assessment: Assessment,
    /// Witnesses checked against local clones, when clones were given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub witness_clones: Option<CloneReport>,
}

/// Verifies a local `tarball` of `entry` and, beside the committed evidence,
/// any further evidence `documents` (path, bytes); with `clones`, every
/// witness (committed or given) of a repository a clone is of is checked
/// against it. Hashing runs while the evidence is verified.
pub fn verify_local(
    repo: &Path,
    policy: &Policy,
    entry: &LockedSource,
    tarball: &Path,
    documents: &[(String, Vec<u8>)],
    clones: &[WitnessClone],
) -> Result<LocalVerification, TrustError> {
    let file = tarball.to_path_buf();
    let hashing = std::thread::spawn(move || digest_file(&file));
    let assessment = assess(repo, policy, entry)?;
    for (name, bytes) in documents {
        let record = record_from_document(policy, entry.version, bytes, name, Timestamp::now())?;
        let known = entry.evidence.iter().find(|e| e.document().1 == record.document().1);
        let checked = match known {
            Some(locked) => locked.clone(),
            None => record,
        };
        verify_evidence(policy, entry, &checked, bytes)?;
    }
    let witness_clones = if clones.is_empty() {
        None
    } else {
        let witnessed = witness_documents(repo, entry)?;
        let mut all: Vec<_> = witnessed.iter().map(|bytes| (entry.version, bytes.as_slice())).collect();
        all.extend(documents.iter().map(|(_, bytes)| (entry.version, bytes.as_slice())));
        Some(check_witnesses(&all, clones)?)
    };
    let digest = hashing.join().expect("the hashing thread does not panic")?;
    let digest = check_digest(tarball, digest, entry)?;
    Ok(LocalVerification { digest, assessment, witness_clones })
}

#[cfg(test)]
mod tests {
    use super::*;

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
            repository: None,
            blob: None,
        };
        assert_eq!(level_of(&[]), Level::Unverified);
        assert_eq!(level_of(&[unsigned("a"), unsigned("a")]), Level::Unverified);
        assert_eq!(level_of(&[unsigned("a"), unsigned("b")]), Level::Corroborated);
        assert_eq!(level_of(&[unsigned("Docker-Library"), unsigned("docker-library")]), Level::Unverified);
        let mut signed = unsigned("debian");
        signed.signed = true;
        assert_eq!(level_of(&[signed]), Level::Signed);
        assert!(!Level::Unverified.buildable() && Level::Corroborated.buildable());
    }

    #[test]
    fn a_fork_or_the_same_file_under_another_owner_counts_once() {
        let witness = |owner: &str, repository: &str, blob: &str| VerifiedEvidence {
            kind: "witness".into(),
            signed: false,
            publisher: owner.into(),
            signer: None,
            signer_name: None,
            signature_created: None,
            reference: String::new(),
            repository: Some(repository.into()),
            blob: Some(blob.into()),
        };
        let upstream = witness("conda-forge", "postgresql-feedstock", "a");
        let fork = witness("someone", "postgresql-feedstock", "b");
        let copy = witness("other", "mirror", "a");
        let independent = witness("docker-library", "postgres", "c");
        assert_eq!(level_of(&[upstream.clone(), fork.clone()]), Level::Unverified);
        assert_eq!(level_of(&[upstream.clone(), copy.clone()]), Level::Unverified);
        assert_eq!(
            basis_of(&[upstream.clone(), fork.clone()]),
            "conda-forge = someone count once (a fork, or the same file); a second independent record is needed"
        );
        assert_eq!(
            independent_groups(&[fork.clone(), independent.clone(), copy.clone(), upstream.clone()]),
            vec![vec!["conda-forge".to_string(), "other".into(), "someone".into()], vec!["docker-library".to_string()]]
        );
        assert_eq!(level_of(&[upstream, fork, copy, independent]), Level::Corroborated);
    }
}
