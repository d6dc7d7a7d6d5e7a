//! Evidence documents: recognise a file's kind and turn it into a lock record.
//!
//! Four document kinds exist, told apart by content:
//! - an OpenPGP clearsigned Debian `.dsc` (`debian-dsc`);
//! - a Debian archive proof: a suite's signed `InRelease` and the tail of
//!   its `Sources` index (`debian-archive`, [`crate::source::debian_archive`]);
//! - a witness excerpt: `Publisher:`, `Reference:` and `Blob:` header lines
//!   (the last the git blob id of the whole file at the pinned commit), a
//!   blank line, then the verbatim lines of the public record (`witness`);
//! - a sha256sum-format line naming the upstream tarball (`upstream-checksum`).
//!
//! A record is only built from a document after its signature (if any) has
//! been verified; [`crate::source::verify::verify_evidence`] re-checks it later.

use jiff::Timestamp;
use sha2::{Digest, Sha256};

use crate::data::catalog;
use crate::data::lock::{Attestation, Evidence, is_sha256_hex};
use crate::data::names;
use crate::data::version::Version;
use crate::source::error::TrustError;
use crate::source::openpgp::{MAX_DOCUMENT_BYTES, Policy, verify_clearsigned};
use crate::source::{debian, debian_archive};
use crate::util::confined::Bound;
use crate::util::time::format_time;

/// The most bytes an evidence document may hold: a `.dsc` lists a handful of
/// files in about 5 KiB and a witness excerpt is a few lines, so 1 MiB is
/// generous and bounds what a replaced (or endless) file can take.
pub const EVIDENCE_BOUND: Bound = Bound { bytes: MAX_DOCUMENT_BYTES, what: "an evidence document" };

/// An evidence document that does not say what a witness excerpt or an
/// upstream checksum file must say.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FormatError(pub String);

impl From<&str> for FormatError {
    fn from(text: &str) -> FormatError {
        FormatError(text.to_string())
    }
}

/// A witness excerpt's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessHeader {
    /// Who publishes the record.
    pub publisher: String,
    /// Repository, commit and path (or URL) of the record.
    pub reference: String,
    /// The git blob id of the whole file at that commit, if recorded.
    pub blob: Option<String>,
    /// The verbatim excerpt after the header.
    pub body: String,
}

/// Parses a witness excerpt's header, if the document is one.
pub fn parse_witness(text: &str) -> Option<WitnessHeader> {
    let (head, body) = text.split_once("\n\n")?;
    let mut publisher = None;
    let mut reference = None;
    let mut blob = None;
    for line in head.lines() {
        if let Some(v) = line.strip_prefix("Publisher:") {
            publisher = Some(v.trim().to_string());
        } else if let Some(v) = line.strip_prefix("Reference:") {
            reference = Some(v.trim().to_string());
        } else if let Some(v) = line.strip_prefix("Blob:") {
            blob = Some(v.trim().to_string());
        } else {
            return None;
        }
    }
    Some(WitnessHeader { publisher: publisher?, reference: reference?, blob, body: body.to_string() })
}

/// Owners whose records are not independent witnesses: upstream itself and
/// Debian (whose evidence has kinds of its own).
const NOT_WITNESSES: &[&str] = &["postgres", "postgresql", "debian"];

/// A witness excerpt that passed every rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Witness {
    /// `OWNER/REPO` as written in the header.
    pub publisher: String,
    /// The owner, lower-cased: independence is counted per owner.
    pub owner: String,
    /// `github:OWNER/REPO@COMMIT:PATH`.
    pub reference: String,
    /// The pinned commit.
    pub commit: String,
    /// The file's path at that commit.
    pub path: String,
    /// The git blob id of the whole file at that commit (40 lowercase hex),
    /// when the excerpt records one.
    pub blob: Option<String>,
    /// The one SHA-256 the excerpt contains.
    pub sha256: String,
    /// The excerpt's record lines.
    pub body: String,
}

/// Parses and checks a witness excerpt about `version`. The same rules apply
/// when evidence is added and every time it is re-verified.
pub fn parse_witness_document(text: &str, version: Version) -> Result<Witness, FormatError> {
    let header =
        parse_witness(text).ok_or("is not a witness excerpt (Publisher:/Reference: header, blank line, record)")?;
    let (owner, repo, commit, path) = parse_github_reference(&header.reference)?;
    if let Some(blob) = &header.blob {
        names::git_commit(blob)
            .ok()
            .filter(|()| !blob.bytes().any(|b| b.is_ascii_uppercase()))
            .ok_or_else(|| FormatError(format!("Blob {blob:?} must be a git blob id, 40 lowercase hex digits")))?;
    }
    if !header.publisher.eq_ignore_ascii_case(&format!("{owner}/{repo}")) {
        return Err(FormatError(format!(
            "Publisher {} does not match the reference's {owner}/{repo}",
            header.publisher
        )));
    }
    let owner = owner.to_ascii_lowercase();
    if NOT_WITNESSES.iter().any(|n| owner == *n || owner.starts_with("debian")) {
        return Err(FormatError(format!("{owner} cannot be an independent witness")));
    }
    let hashes = hex_runs(&header.body);
    let [sha256] = hashes.as_slice() else {
        return Err(FormatError(format!("a witness excerpt must contain exactly one SHA-256, found {}", hashes.len())));
    };
    if !contains_version_token(&header.body, version) {
        return Err(FormatError(format!("does not name version {version}")));
    }
    Ok(Witness {
        publisher: header.publisher,
        owner,
        commit: commit.to_string(),
        path: path.to_string(),
        reference: header.reference,
        blob: header.blob,
        sha256: sha256.clone(),
        body: header.body,
    })
}

/// Splits `github:OWNER/REPO@COMMIT:PATH` into (owner, repo), checking each
/// part against GitHub's grammar: an owner GitHub cannot have (`docker_library`)
/// would count as a second, independent witness.
fn parse_github_reference(reference: &str) -> Result<(&str, &str, &str, &str), FormatError> {
    let shape = || FormatError("Reference must be github:OWNER/REPO@COMMIT:PATH with a full 40-hex commit".into());
    let rest = reference.strip_prefix("github:").ok_or_else(shape)?;
    let (repository, rest) = rest.split_once('@').ok_or_else(shape)?;
    let (commit, path) = rest.split_once(':').ok_or_else(shape)?;
    let (owner, repo) = repository.split_once('/').ok_or_else(shape)?;
    let named = |e: names::NameError| FormatError(format!("Reference {reference:?}: {e}"));
    names::github_owner(owner).map_err(named)?;
    names::github_repository(repo).map_err(named)?;
    names::git_commit(commit).map_err(named)?;
    names::repository_path(path).map_err(named)?;
    Ok((owner, repo, commit, path))
}

/// Whether `text` names `version` as a whole token (`17.1` is not in `17.11`).
pub fn contains_version_token(text: &str, version: Version) -> bool {
    let needle = version.to_string();
    let bytes = text.as_bytes();
    text.match_indices(&needle).any(|(at, _)| {
        let before = at.checked_sub(1).map(|i| bytes[i]);
        let after = bytes.get(at + needle.len()).copied();
        let after_next = bytes.get(at + needle.len() + 1).copied();
        let digit_or_dot = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_digit() || b == b'.');
        let continues_number = match after {
            Some(b'.') => after_next.is_some_and(|b| b.is_ascii_digit()),
            Some(b) => b.is_ascii_digit(),
            None => false,
        };
        !digit_or_dot(before) && !continues_number
    })
}

/// The SHA-256 a sha256sum-format document gives for `tarball`: exactly one
/// line must name it; the hash is lower-cased.
pub fn parse_upstream_checksum(text: &str, tarball: &str) -> Result<String, FormatError> {
    let listed: Vec<String> = text
        .lines()
        .filter_map(|line| {
            let (hash, name) = line.trim_end().split_once(char::is_whitespace)?;
            (name.trim_start().trim_start_matches('*') == tarball).then(|| hash.to_ascii_lowercase())
        })
        .collect();
    match listed.as_slice() {
        [hash] if is_sha256_hex(hash) => Ok(hash.clone()),
        [_] => Err(FormatError("the checksum line has no SHA-256".into())),
        [] => Err(FormatError(format!("does not list {tarball}"))),
        _ => Err(FormatError(format!("lists {tarball} more than once"))),
    }
}

/// The distinct runs of exactly 64 hex digits in `text`, lower-cased, in
/// order of appearance (linear in the text, however many runs it holds).
fn hex_runs(text: &str) -> Vec<String> {
    let mut runs = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut current = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_hexdigit() {
            current.push(c.to_ascii_lowercase());
        } else {
            if current.len() == 64 && seen.insert(current.clone()) {
                runs.push(current.clone());
            }
            current.clear();
        }
    }
    runs
}

/// The directory (under `evidence/`) and file name a document is committed
/// as. A `.dsc`'s package and version must follow Debian's grammars, so the
/// file name they make is one name in `evidence/debian/`, never a path.
pub fn committed_path(evidence: &Evidence, version: Version, document: &[u8]) -> Result<String, FormatError> {
    Ok(match evidence {
        Evidence::DebianDsc { package, debian_version, .. } => {
            names::debian_package(package).map_err(|e| FormatError(e.to_string()))?;
            names::debian_version(debian_version).map_err(|e| FormatError(e.to_string()))?;
            format!("evidence/debian/{}", debian::dsc_name(package, debian_version))
        }
        Evidence::DebianArchive { package, debian_version, suite, .. } => {
            names::debian_package(package).map_err(|e| FormatError(e.to_string()))?;
            names::debian_version(debian_version).map_err(|e| FormatError(e.to_string()))?;
            if suite.is_empty() || !suite.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
                return Err(FormatError(format!("suite {suite:?} is not a Debian suite name")));
            }
            let without_epoch = debian_version.split_once(':').map_or(debian_version.as_str(), |(_, rest)| rest);
            format!("evidence/debian-archive/{package}_{without_epoch}_{suite}.proof")
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
    })
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
    if document.len() as u64 > MAX_DOCUMENT_BYTES {
        return Err(mismatch(format!("larger than the limit of {MAX_DOCUMENT_BYTES} bytes")));
    }
    let document_sha256 = hex::encode(Sha256::digest(document));
    let text = String::from_utf8_lossy(document);
    let evidence = if debian_archive::is_proof(document) {
        let (_, checked) = debian_archive::check_proof(policy, document, now, name)?;
        let paragraph = &checked.paragraph;
        let upstream = debian::upstream_version(&paragraph.version);
        if upstream != version.to_string() {
            return Err(mismatch(format!("is for PostgreSQL {upstream}, not {version}")));
        }
        let orig = debian::orig_tarball_name(version);
        let listed = paragraph
            .sha256
            .iter()
            .find(|f| f.name == orig)
            .ok_or_else(|| mismatch(format!("its Sources paragraph does not list {orig}")))?;
        Evidence::DebianArchive {
            attests: Attestation { name: orig, sha256: listed.sha256.clone(), size: Some(listed.size) },
            package: paragraph.source.clone(),
            debian_version: paragraph.version.clone(),
            suite: checked.release.codename.clone(),
            release_date: format_time(checked.release.date),
            document: String::new(),
            document_sha256,
            signer: checked.signed.signer,
            signature_created: format_time(checked.signed.created),
            reference_time: format_time(now),
        }
    } else if document.starts_with(b"-----BEGIN PGP SIGNED MESSAGE-----") {
        let signed = verify_clearsigned(policy, "debian-dsc", document, now, name)?;
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
            signature_created: format_time(signed.created),
            reference_time: format_time(now),
        }
    } else if parse_witness(&text).is_some() {
        let witness = parse_witness_document(&text, version).map_err(|e| mismatch(e.0))?;
        Evidence::Witness {
            attests: Attestation { name: catalog::tarball_name(version), sha256: witness.sha256, size: None },
            publisher: witness.publisher,
            reference: witness.reference,
            blob: witness.blob,
            document: String::new(),
            document_sha256,
        }
    } else {
        let tarball = catalog::tarball_name(version);
        let hash = parse_upstream_checksum(&text, &tarball).map_err(|e| {
            mismatch(format!(
                "not a recognised evidence document (clearsigned .dsc, witness excerpt, or .sha256 file): {e}"
            ))
        })?;
        Evidence::UpstreamChecksum {
            attests: Attestation { name: tarball, sha256: hash, size: None },
            url: format!("{}.sha256", catalog::upstream_url(version)),
            document: String::new(),
            document_sha256,
        }
    };
    with_document(evidence, version, document).map_err(|e| mismatch(e.0))
}

fn with_document(mut evidence: Evidence, version: Version, document: &[u8]) -> Result<Evidence, FormatError> {
    let path = committed_path(&evidence, version, document)?;
    match &mut evidence {
        Evidence::DebianDsc { document, .. }
        | Evidence::DebianArchive { document, .. }
        | Evidence::UpstreamChecksum { document, .. }
        | Evidence::Witness { document, .. } => *document = path,
    }
    Ok(evidence)
}

crate::util::error::usage_errors!(FormatError);

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

    const GOOD: &str = "Publisher: docker-library/postgres\nReference: github:docker-library/postgres@e34fc9d23c4eab656e9037701d71962c9b46a2e7:17/alpine3.22/Dockerfile\n\nENV PG_VERSION 17.6\nENV PG_SHA256 e0630a3600aea27511715563259ec2111cd5f4353a4b040e0be827f94cd7a8b0\n";

    #[test]
    fn witness_rules() {
        let v = Version::new(17, 6);
        let w = parse_witness_document(GOOD, v).unwrap();
        assert_eq!(w.owner, "docker-library");
        assert!(parse_witness_document(GOOD, Version::new(17, 1)).is_err(), "17.1 is not named by 17.6");
        let renamed = GOOD.replace("Publisher: docker-library/postgres", "Publisher: Docker-Library/Other");
        assert!(parse_witness_document(&renamed, v).unwrap_err().0.contains("does not match"));
        let short_commit = GOOD.replace("@e34fc9d23c4eab656e9037701d71962c9b46a2e7:", "@e34fc9d:");
        assert!(parse_witness_document(&short_commit, v).is_err());
        let debian = GOOD.replace("docker-library/postgres", "debian/postgresql");
        assert!(parse_witness_document(&debian, v).unwrap_err().0.contains("independent"));
        let two = format!("{GOOD}sha256 {}\n", "ab".repeat(32));
        assert!(parse_witness_document(&two, v).unwrap_err().0.contains("exactly one"));
    }

    #[test]
    fn witness_references_follow_githubs_grammar() {
        let v = Version::new(17, 6);
        for (from, to, needle) in [
            ("docker-library/postgres", "docker_library/postgres", "GitHub owner \"docker_library\""),
            ("docker-library/postgres", "-docker-library/postgres", "GitHub owner"),
            ("docker-library/postgres", "docker--library/postgres", "GitHub owner"),
            ("docker-library/postgres", "docker-library/..", "GitHub repository name \"..\""),
            ("docker-library/postgres", "docker-library/post gres", "GitHub repository name"),
            (":17/alpine3.22/Dockerfile", ":17/../../Dockerfile", "path in the repository"),
            (":17/alpine3.22/Dockerfile", ":/etc/passwd", "path in the repository"),
        ] {
            let text = GOOD.replace(from, to);
            assert_ne!(text, GOOD);
            let err = parse_witness_document(&text, v).unwrap_err();
            assert!(err.0.contains(needle), "{to}: {err}");
        }
        let mixed = GOOD.replace("docker-library/postgres", "Docker-Library/postgres");
        assert_eq!(
            parse_witness_document(&mixed, v).unwrap().owner,
            "docker-library",
            "owners are compared lower-cased"
        );
    }

    #[test]
    fn a_dsc_committed_path_is_one_file_name_under_evidence_debian() {
        let record = |package: &str, debian_version: &str| Evidence::DebianDsc {
            attests: Attestation { name: "postgresql-18_18.6.orig.tar.bz2".into(), sha256: String::new(), size: None },
            package: package.into(),
            debian_version: debian_version.into(),
            document: String::new(),
            document_sha256: String::new(),
            signer: String::new(),
            signature_created: String::new(),
            reference_time: String::new(),
        };
        let v = Version::new(18, 6);
        assert_eq!(
            committed_path(&record("postgresql-18", "18.6-3"), v, b"").unwrap(),
            "evidence/debian/postgresql-18_18.6-3.dsc"
        );
        assert!(committed_path(&record("postgresql-18", "18.6-3/../../../x"), v, b"").is_err());
        assert!(committed_path(&record("../../x", "18.6-3"), v, b"").is_err());
    }

    #[test]
    fn version_tokens_are_whole() {
        let v = Version::new(17, 1);
        assert!(contains_version_token("version 17.1 is", v));
        assert!(contains_version_token("\"17.1\"", v));
        assert!(!contains_version_token("17.11", v));
        assert!(!contains_version_token("117.1", v));
        assert!(!contains_version_token("17.1.5", v));
        assert!(contains_version_token("postgresql-17.1.tar.bz2", v));
    }

    #[test]
    fn upstream_checksum_rules() {
        let t = "postgresql-18.6.tar.bz2";
        let h = "555610c24d53e4316da5b7d3fc25c279d96856d5e0e23ee308c328c5fa881d9f";
        assert_eq!(parse_upstream_checksum(&format!("{}  {t}\n", h.to_uppercase()), t).unwrap(), h);
        assert_eq!(parse_upstream_checksum(&format!("{h} *{t}\n"), t).unwrap(), h);
        assert!(parse_upstream_checksum(&format!("{h}  {t}\n{h}  {t}\n"), t).unwrap_err().0.contains("more than once"));
        assert!(parse_upstream_checksum(&format!("{h}  other.tar.bz2\n"), t).is_err());
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::util::fuzz;
    use proptest::prelude::*;

    const WITNESS: &str = include_str!("../../evidence/witness/17.6-docker-library-postgres-8e962a5138ef.txt");
    const CHECKSUM: &str =
        "e0630a3600aea27511715563259ec2111cd5f4353a4b040e0be827f94cd7a8b0  postgresql-17.6.tar.bz2\n";

    #[test]
    fn many_hashes_are_counted_in_linear_time() {
        let body: String = (0..15_000u32).map(|i| format!("{:064x}\n", i)).collect();
        let text = format!("{}\n\n{body}", WITNESS.split_once("\n\n").unwrap().0);
        let started = std::time::Instant::now();
        let error = parse_witness_document(&text, Version::new(17, 6)).unwrap_err();
        assert!(error.0.contains("found 15000"), "{error}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
    }

    proptest! {
        #![proptest_config(fuzz::config(1536))]

        #[test]
        fn fuzz_witness_mutated(mutations in fuzz::mutations(6)) {
            let text = String::from_utf8_lossy(&fuzz::apply(WITNESS.as_bytes(), &mutations)).into_owned();
            match parse_witness_document(&text, Version::new(17, 6)) {
                Ok(witness) => prop_assert!(is_sha256_hex(&witness.sha256)),
                Err(error) => prop_assert!(fuzz::one_line(&error.0), "{}", error),
            }
        }

        #[test]
        fn fuzz_upstream_checksum_mutated(mutations in fuzz::mutations(4)) {
            let text = String::from_utf8_lossy(&fuzz::apply(CHECKSUM.as_bytes(), &mutations)).into_owned();
            match parse_upstream_checksum(&text, "postgresql-17.6.tar.bz2") {
                Ok(hash) => prop_assert!(is_sha256_hex(&hash)),
                Err(error) => prop_assert!(fuzz::one_line(&error.0), "{}", error),
            }
        }

        #[test]
        fn fuzz_documents_arbitrary(text in "(.|\n){0,300}", major in 0u32..30, minor in 0u32..30) {
            let version = Version::new(major, minor);
            let _ = parse_witness_document(&text, version);
            let _ = parse_upstream_checksum(&text, "postgresql-17.6.tar.bz2");
            let _ = contains_version_token(&text, version);
        }
    }
}
