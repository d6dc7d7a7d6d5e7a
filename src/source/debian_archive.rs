//! The Debian archive chain as evidence (`debian-archive`): a suite's
//! `InRelease`, clearsigned by a Debian archive key, lists the SHA-256 and
//! size of `main/source/Sources`; that index's paragraph for a source package
//! lists the SHA-256 and size of its orig tarball.
//!
//! The signed file covers a paragraph only through the hash of the whole
//! index (tens of MiB), so a proof commits, besides the `InRelease`
//! verbatim, the SHA-256 chaining state after the index's first bytes (a
//! whole number of 64-byte blocks before the paragraph) and every byte from
//! there to the index's end. Verification resumes SHA-256 from that state
//! over those bytes and must reach the hash and size the `InRelease` lists.
//! The bytes before the paragraph are thus represented by the chaining
//! state alone; forging one for other bytes would need a free-start
//! preimage of SHA-256's compression function (docs/trust-model.md).
//!
//! A proof document is text:
//!
//! ```text
//! pgbin-debian-archive-proof: 1
//! Source-Package: postgresql-17
//! Source-Version: 17.12-0+deb13u1
//! Index: main/source/Sources
//! Index-Prefix-Length: 7091328
//! Index-Prefix-State: <64 hex: the eight state words, big-endian>
//! Release-Length: 43409
//!
//! <InRelease, Release-Length bytes><the index from Index-Prefix-Length to its end>
//! ```

use jiff::Timestamp;
use sha2::digest::generic_array::GenericArray;

use super::debian::{self, FileChecksum, SourceControl};
use super::documents::FormatError;
use super::error::TrustError;
use super::openpgp::{MAX_DOCUMENT_BYTES, Policy, SignedDocument, verify_clearsigned};
use crate::data::names;

/// The first line of every proof document.
pub const PROOF_MAGIC: &str = "pgbin-debian-archive-proof: 1";

/// The evidence kind, and what the policy must let a key sign.
pub const KIND: &str = "debian-archive";

/// The only index a proof may cover: PostgreSQL is in `main`.
pub const SOURCES_INDEX: &str = "main/source/Sources";

/// SHA-256's initial chaining state (FIPS 180-4, 5.3.3).
const SHA256_INITIAL: [u32; 8] =
    [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

/// The chaining state after the whole 64-byte blocks of `prefix`, whose
/// length must be a multiple of 64.
pub fn chaining_state(prefix: &[u8]) -> [u32; 8] {
    assert!(prefix.len() % 64 == 0, "a chaining state is taken at a block boundary");
    let mut state = SHA256_INITIAL;
    compress(&mut state, prefix);
    state
}

fn compress(state: &mut [u32; 8], blocks: &[u8]) {
    for block in blocks.chunks_exact(64) {
        sha2::compress256(state, &[*GenericArray::from_slice(block)]);
    }
}

/// SHA-256 of a message whose first `prefix_length` bytes (a multiple of 64)
/// left the chaining state `state`, and whose remaining bytes are `rest`.
pub fn resume_sha256(mut state: [u32; 8], prefix_length: u64, rest: &[u8]) -> [u8; 32] {
    let whole = rest.len() - rest.len() % 64;
    compress(&mut state, &rest[..whole]);
    let total_bits = (prefix_length + rest.len() as u64).wrapping_mul(8);
    let mut tail = rest[whole..].to_vec();
    tail.push(0x80);
    while tail.len() % 64 != 56 {
        tail.push(0);
    }
    tail.extend_from_slice(&total_bits.to_be_bytes());
    compress(&mut state, &tail);
    let mut digest = [0u8; 32];
    for (out, word) in digest.chunks_exact_mut(4).zip(state) {
        out.copy_from_slice(&word.to_be_bytes());
    }
    digest
}

/// What a proof document holds, parsed but not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof<'a> {
    /// The source package the proof is about (`postgresql-17`).
    pub package: String,
    /// Its Debian version (`17.12-0+deb13u1`).
    pub debian_version: String,
    /// The index, as the `InRelease` names it.
    pub index: String,
    /// How many leading bytes of the index the chaining state stands for.
    pub prefix_length: u64,
    /// The SHA-256 chaining state after them.
    pub prefix_state: [u32; 8],
    /// The clearsigned `InRelease`.
    pub release: &'a [u8],
    /// The index from `prefix_length` to its end.
    pub suffix: &'a [u8],
}

/// Whether a document is a proof (by its first line).
pub fn is_proof(document: &[u8]) -> bool {
    document.starts_with(format!("{PROOF_MAGIC}\n").as_bytes())
}

/// Parses a proof document's structure; every length is checked against the
/// document's own size, so nothing is allocated from what it announces.
pub fn parse_proof(document: &[u8]) -> Result<Proof<'_>, FormatError> {
    if !is_proof(document) {
        return Err(FormatError(format!("is not a Debian archive proof (first line {PROOF_MAGIC:?})")));
    }
    let header_end = memchr::memmem::find(document, b"\n\n")
        .ok_or("a Debian archive proof has a header, a blank line, then the InRelease and the index")?;
    let header = std::str::from_utf8(&document[..header_end]).map_err(|_| "the proof's header is not UTF-8")?;
    let body = &document[header_end + 2..];
    let mut fields = std::collections::BTreeMap::new();
    for line in header.lines().skip(1) {
        let (name, value) =
            line.split_once(": ").ok_or_else(|| FormatError(format!("malformed proof header line {line:?}")))?;
        if fields.insert(name, value).is_some() {
            return Err(FormatError(format!("the proof's header repeats {name}")));
        }
    }
    let mut field =
        |name: &str| fields.remove(name).ok_or_else(|| FormatError(format!("the proof's header has no {name} field")));
    let package = field("Source-Package")?.to_string();
    let debian_version = field("Source-Version")?.to_string();
    let index = field("Index")?.to_string();
    let number = |text: &str, name: &str| {
        text.parse::<u64>().map_err(|_| FormatError(format!("the proof's {name} must be a decimal number")))
    };
    let prefix_length = number(field("Index-Prefix-Length")?, "Index-Prefix-Length")?;
    let state_hex = field("Index-Prefix-State")?;
    let release_length = number(field("Release-Length")?, "Release-Length")?;
    if let Some(extra) = fields.keys().next() {
        return Err(FormatError(format!("the proof's header has an unknown field {extra}")));
    }
    names::debian_package(&package).map_err(|e| FormatError(e.to_string()))?;
    names::debian_version(&debian_version).map_err(|e| FormatError(e.to_string()))?;
    if prefix_length % 64 != 0 {
        return Err("the proof's Index-Prefix-Length must be a multiple of 64 (a SHA-256 block)".into());
    }
    let state_bytes = (state_hex.len() == 64 && !state_hex.bytes().any(|b| b.is_ascii_uppercase()))
        .then(|| hex::decode(state_hex).ok())
        .flatten()
        .ok_or("the proof's Index-Prefix-State must be 64 lowercase hex digits")?;
    let mut prefix_state = [0u32; 8];
    for (word, bytes) in prefix_state.iter_mut().zip(state_bytes.chunks_exact(4)) {
        *word = u32::from_be_bytes(bytes.try_into().expect("four bytes"));
    }
    let release_length = usize::try_from(release_length)
        .ok()
        .filter(|n| *n <= body.len())
        .ok_or("the proof's Release-Length is larger than the document")?;
    let (release, suffix) = body.split_at(release_length);
    Ok(Proof { package, debian_version, index, prefix_length, prefix_state, release, suffix })
}

/// The facts of a suite's `InRelease` that a proof relies on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseFacts {
    /// `Codename:` (`trixie-security`).
    pub codename: String,
    /// `Date:`, when the archive generated it.
    pub date: Timestamp,
    /// SHA-256 of the index, as listed.
    pub index_sha256: String,
    /// Size of the index, as listed.
    pub index_size: u64,
}

/// Every index a (verified) `InRelease` lists under `SHA256:`, by name.
pub fn release_hashes(text: &str) -> Result<Vec<FileChecksum>, FormatError> {
    let mut listed = Vec::new();
    let mut in_sha256 = false;
    let mut seen_sha256 = false;
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            if in_sha256 {
                let parts: Vec<&str> = line.split_whitespace().collect();
                let [hash, size, name] = parts.as_slice() else {
                    return Err(FormatError(format!("malformed SHA256 line in the InRelease: {line:?}")));
                };
                let size =
                    size.parse().map_err(|_| FormatError(format!("malformed size in the InRelease: {line:?}")))?;
                if !crate::data::lock::is_sha256_hex(hash) {
                    return Err(FormatError(format!("malformed SHA-256 in the InRelease: {line:?}")));
                }
                listed.push(FileChecksum { sha256: hash.to_string(), size, name: name.to_string() });
            }
            continue;
        }
        in_sha256 = line.trim_end() == "SHA256:";
        if in_sha256 {
            if seen_sha256 {
                return Err("the InRelease repeats its SHA256 field".into());
            }
            seen_sha256 = true;
        }
    }
    Ok(listed)
}

/// A single-line field of a (verified) `InRelease`; a repeated field is an
/// error.
fn release_field<'a>(text: &'a str, name: &str) -> Result<&'a str, FormatError> {
    let mut values = text.lines().filter_map(|line| line.strip_prefix(name)?.strip_prefix(':')).map(str::trim);
    let value = values.next().ok_or_else(|| FormatError(format!("the InRelease has no {name} field")))?;
    if values.next().is_some() {
        return Err(FormatError(format!("the InRelease repeats its {name} field")));
    }
    Ok(value)
}

/// Parses the facts of a verified `InRelease` about `index`.
pub fn release_facts(text: &str, index: &str) -> Result<ReleaseFacts, FormatError> {
    let codename = release_field(text, "Codename")?.to_string();
    if codename.is_empty() || !codename.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return Err(FormatError(format!("the InRelease's Codename {codename:?} is not a suite name")));
    }
    let date = parse_release_date(release_field(text, "Date")?)?;
    let hashes = release_hashes(text)?;
    let mut matching = hashes.iter().filter(|f| f.name == index);
    let listed = matching.next().ok_or_else(|| FormatError(format!("the InRelease does not list {index}")))?;
    if matching.next().is_some() {
        return Err(FormatError(format!("the InRelease lists {index} more than once")));
    }
    Ok(ReleaseFacts { codename, date, index_sha256: listed.sha256.clone(), index_size: listed.size })
}

/// Parses an archive `Date:` (`Sat, 21 Nov 2026 09:15:44 UTC`).
pub fn parse_release_date(text: &str) -> Result<Timestamp, FormatError> {
    let broken = jiff::fmt::strtime::parse("%a, %d %b %Y %H:%M:%S UTC", text).map_err(|_| {
        FormatError(format!("the InRelease's Date {text:?} is not of the form 'Sat, 21 Nov 2026 09:15:44 UTC'"))
    })?;
    broken
        .to_datetime()
        .and_then(|dt| dt.to_zoned(jiff::tz::TimeZone::UTC))
        .map(|z| z.timestamp())
        .map_err(|_| FormatError(format!("the InRelease's Date {text:?} is not a valid time")))
}

/// The paragraphs of an index that begin inside `bytes`: when `bytes` do not
/// start the index, the text before the first blank line may be the tail of
/// a paragraph and is skipped.
fn paragraphs(bytes: &[u8], starts_index: bool) -> impl Iterator<Item = (usize, &[u8])> {
    let mut at = if starts_index { 0 } else { memchr::memmem::find(bytes, b"\n\n").map_or(bytes.len(), |i| i + 2) };
    std::iter::from_fn(move || {
        while at < bytes.len() && bytes[at] == b'\n' {
            at += 1;
        }
        if at >= bytes.len() {
            return None;
        }
        let start = at;
        let end = memchr::memmem::find(&bytes[start..], b"\n\n").map_or(bytes.len(), |i| start + i + 1);
        at = end;
        Some((start, &bytes[start..end]))
    })
}

/// Every paragraph of `package` in an index region, parsed, with its offset.
pub fn source_paragraphs<'a>(
    bytes: &'a [u8],
    starts_index: bool,
    package: &'a str,
) -> impl Iterator<Item = (usize, Result<SourceControl, debian::DscError>)> + 'a {
    let first_line = format!("Package: {package}\n");
    paragraphs(bytes, starts_index).filter_map(move |(at, paragraph)| {
        let named = paragraph.starts_with(first_line.as_bytes())
            || paragraph.split(|b| *b == b'\n').any(|line| line == &first_line.as_bytes()[..first_line.len() - 1]);
        named.then(|| (at, debian::parse_control(&String::from_utf8_lossy(paragraph), "Package")))
    })
}

/// A proof whose signature, chain and paragraph all checked out.
#[derive(Debug, Clone)]
pub struct CheckedProof {
    /// The signed `InRelease`.
    pub signed: SignedDocument,
    /// Its facts.
    pub release: ReleaseFacts,
    /// The source package's paragraph in the index.
    pub paragraph: SourceControl,
}

/// Verifies a proof document: the `InRelease` signature by a key the policy
/// allows for `debian-archive` at `reference_time`, the index's hash and size
/// through the resumed SHA-256, and exactly one paragraph of the proof's
/// package and version after the committed state.
pub fn check_proof<'a>(
    policy: &Policy,
    document: &'a [u8],
    reference_time: Timestamp,
    name: &str,
) -> Result<(Proof<'a>, CheckedProof), TrustError> {
    let mismatch = |reason: String| TrustError::Mismatch { document: name.to_string(), reason };
    if document.len() as u64 > MAX_DOCUMENT_BYTES {
        return Err(mismatch(format!("larger than the limit of {MAX_DOCUMENT_BYTES} bytes")));
    }
    let proof = parse_proof(document).map_err(|e| mismatch(e.0))?;
    if proof.index != SOURCES_INDEX {
        return Err(mismatch(format!("covers {}, not {SOURCES_INDEX}", proof.index)));
    }
    let signed = verify_clearsigned(policy, KIND, proof.release, reference_time, name)?;
    let release = release_facts(&String::from_utf8_lossy(&signed.content), &proof.index).map_err(|e| mismatch(e.0))?;
    if proof.prefix_length.checked_add(proof.suffix.len() as u64) != Some(release.index_size) {
        return Err(mismatch(format!(
            "its index bytes ({} + {}) do not make the {} bytes the InRelease lists for {}",
            proof.prefix_length,
            proof.suffix.len(),
            release.index_size,
            proof.index
        )));
    }
    let digest = hex::encode(resume_sha256(proof.prefix_state, proof.prefix_length, proof.suffix));
    if digest != release.index_sha256 {
        return Err(mismatch(format!(
            "its index bytes hash to {digest}, the InRelease lists {} for {}",
            release.index_sha256, proof.index
        )));
    }
    let mut found = Vec::new();
    for (_, paragraph) in source_paragraphs(proof.suffix, proof.prefix_length == 0, &proof.package) {
        let paragraph = paragraph.map_err(|e| mismatch(format!("{}'s paragraph: {e}", proof.package)))?;
        if paragraph.source == proof.package && paragraph.version == proof.debian_version {
            found.push(paragraph);
        }
    }
    let paragraph = match found.len() {
        1 => found.remove(0),
        0 => {
            return Err(mismatch(format!(
                "{} of {} lists no {} {} after its committed state",
                proof.index, release.codename, proof.package, proof.debian_version
            )));
        }
        n => {
            return Err(mismatch(format!(
                "{} of {} lists {} {} {n} times",
                proof.index, release.codename, proof.package, proof.debian_version
            )));
        }
    };
    Ok((proof, CheckedProof { signed, release, paragraph }))
}

/// Why a proof cannot be made from an index.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The index has no paragraph of that package and version.
    #[error("{index} lists no {package} {version}")]
    NotListed {
        /// The index.
        index: String,
        /// Source package.
        package: String,
        /// Debian version.
        version: String,
    },
    /// The paragraph is too far from the index's end for a proof to fit.
    #[error(
        "{package} {version} lies {suffix} bytes before the end of {index}: a proof holds at most {limit} bytes; a smaller suite's index (SUITE-security, SUITE-updates) may list it"
    )]
    TooLarge {
        /// The index.
        index: String,
        /// Source package.
        package: String,
        /// Debian version.
        version: String,
        /// Bytes from the block before the paragraph to the index's end.
        suffix: usize,
        /// The document limit.
        limit: u64,
    },
}

/// Makes a proof document for `package` `version` from a suite's clearsigned
/// `InRelease` and the whole, uncompressed index it lists (both as fetched;
/// the caller has checked neither, and [`check_proof`] checks both).
pub fn make_proof(
    release: &[u8],
    index_name: &str,
    index: &[u8],
    package: &str,
    version: &str,
) -> Result<Vec<u8>, ProofError> {
    let not_listed =
        || ProofError::NotListed { index: index_name.into(), package: package.into(), version: version.into() };
    let (offset, _) = source_paragraphs(index, true, package)
        .find(|(_, p)| p.as_ref().is_ok_and(|p| p.source == package && p.version == version))
        .ok_or_else(not_listed)?;
    // The committed bytes must hold the blank line before the paragraph, so
    // that the verifier sees where it starts.
    let prefix_length = if offset < 2 { 0 } else { (offset - 2) / 64 * 64 };
    let state = chaining_state(&index[..prefix_length]);
    let mut document = format!(
        "{PROOF_MAGIC}\nSource-Package: {package}\nSource-Version: {version}\nIndex: {index_name}\nIndex-Prefix-Length: {prefix_length}\nIndex-Prefix-State: {}\nRelease-Length: {}\n\n",
        state.iter().map(|w| format!("{w:08x}")).collect::<String>(),
        release.len()
    )
    .into_bytes();
    document.extend_from_slice(release);
    document.extend_from_slice(&index[prefix_length..]);
    if document.len() as u64 > MAX_DOCUMENT_BYTES {
        return Err(ProofError::TooLarge {
            index: index_name.into(),
            package: package.into(),
            version: version.into(),
            suffix: index.len() - prefix_length,
            limit: MAX_DOCUMENT_BYTES,
        });
    }
    Ok(document)
}

crate::util::error::usage_errors!(ProofError);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::digest::sha256_hex;
    use sha2::Digest;

    #[test]
    fn resumed_sha256_equals_sha256_at_every_block_boundary_and_length() {
        let message: Vec<u8> = (0..700u32).map(|i| (i * 7 + 3) as u8).collect();
        for length in [0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 200, 700] {
            let message = &message[..length];
            for prefix in (0..=length).step_by(64) {
                let state = chaining_state(&message[..prefix]);
                assert_eq!(
                    resume_sha256(state, prefix as u64, &message[prefix..]).to_vec(),
                    sha2::Sha256::digest(message).to_vec(),
                    "length {length}, prefix {prefix}"
                );
            }
        }
    }

    const INDEX: &str = "Package: aide\nVersion: 1\nChecksums-Sha256:\n 1111111111111111111111111111111111111111111111111111111111111111 1 aide_1.orig.tar.gz\n\nPackage: postgresql-17\nBinary: libpq5\nVersion: 17.12-0+deb13u1\nChecksums-Sha256:\n 9cf136a7aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 22292547 postgresql-17_17.12.orig.tar.bz2\nDirectory: pool/main/p/postgresql-17\n\nPackage: zsh\nVersion: 5\n";

    #[test]
    fn paragraphs_of_a_package_are_found_whole_and_a_partial_first_one_is_skipped() {
        let all: Vec<_> = source_paragraphs(INDEX.as_bytes(), true, "postgresql-17").collect();
        assert_eq!(all.len(), 1);
        let paragraph = all[0].1.as_ref().unwrap();
        assert_eq!(paragraph.version, "17.12-0+deb13u1");
        assert_eq!(paragraph.sha256[0].size, 22292547);
        let inside = INDEX.find("Version: 17.12").unwrap();
        assert_eq!(source_paragraphs(&INDEX.as_bytes()[inside..], false, "postgresql-17").count(), 0);
        assert_eq!(source_paragraphs(INDEX.as_bytes(), true, "postgresql").count(), 0);
    }

    #[test]
    fn a_proof_round_trips_its_structure_and_resumes_to_the_index_hash() {
        let release = b"-----BEGIN PGP SIGNED MESSAGE-----\nnot checked here\n";
        let mut index = String::new();
        for i in 0..40 {
            index.push_str(&format!("Package: filler{i}\nVersion: 1\nChecksums-Sha256:\n\n"));
        }
        index.push_str(INDEX);
        let document =
            make_proof(release, SOURCES_INDEX, index.as_bytes(), "postgresql-17", "17.12-0+deb13u1").unwrap();
        let proof = parse_proof(&document).unwrap();
        assert_eq!(proof.release, release);
        assert!(proof.prefix_length > 0 && proof.prefix_length % 64 == 0);
        assert_eq!(proof.prefix_length + proof.suffix.len() as u64, index.len() as u64);
        assert_eq!(
            hex::encode(resume_sha256(proof.prefix_state, proof.prefix_length, proof.suffix)),
            sha256_hex(index.as_bytes())
        );
        let found: Vec<_> = source_paragraphs(proof.suffix, false, "postgresql-17").collect();
        assert_eq!(found.len(), 1, "the paragraph starts after the blank line the proof keeps");
        assert!(matches!(
            make_proof(release, SOURCES_INDEX, index.as_bytes(), "postgresql-17", "17.11-0+deb13u1"),
            Err(ProofError::NotListed { .. })
        ));
    }

    #[test]
    fn malformed_proof_headers_are_refused() {
        let good = "pgbin-debian-archive-proof: 1\nSource-Package: postgresql-17\nSource-Version: 17.12-0+deb13u1\nIndex: main/source/Sources\nIndex-Prefix-Length: 64\nIndex-Prefix-State: 6a09e667bb67ae853c6ef372a54ff53a510e527f9b05688c1f83d9ab5be0cd19\nRelease-Length: 3\n\nabcdef";
        assert!(parse_proof(good.as_bytes()).is_ok());
        for (from, to) in [
            ("Index-Prefix-Length: 64", "Index-Prefix-Length: 65"),
            ("Release-Length: 3", "Release-Length: 7"),
            ("Release-Length: 3", "Release-Length: 99999999999999999999"),
            ("6a09e667bb", "6A09E667BB"),
            ("Source-Package: postgresql-17", "Source-Package: ../x"),
            ("Index: main/source/Sources\n", "Index: main/source/Sources\nIndex: x\n"),
            ("Index: main/source/Sources\n", "Index: main/source/Sources\nExtra: x\n"),
            ("Index: main/source/Sources\n", ""),
            ("pgbin-debian-archive-proof: 1", "pgbin-debian-archive-proof: 2"),
        ] {
            let bad = good.replacen(from, to, 1);
            assert!(parse_proof(bad.as_bytes()).is_err(), "{from} -> {to}");
        }
    }

    #[test]
    fn release_facts_need_one_listing_of_the_index_and_a_date() {
        let text = "Origin: Debian\nCodename: trixie-security\nDate: Sat, 21 Nov 2026 09:15:44 UTC\nSHA256:\n aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 7314849 main/source/Sources\n bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb 1 main/source/Sources.xz\n";
        let facts = release_facts(text, SOURCES_INDEX).unwrap();
        assert_eq!(facts.codename, "trixie-security");
        assert_eq!(facts.index_size, 7314849);
        assert_eq!(facts.date.to_string(), "2026-11-21T09:15:44Z");
        let twice =
            format!("{text} aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 1 main/source/Sources\n");
        assert!(release_facts(&twice, SOURCES_INDEX).is_err());
        assert!(release_facts(&text.replace("Codename: trixie-security", "Codename: ../x"), SOURCES_INDEX).is_err());
        assert!(release_facts(&text.replace("Date:", "Dated:"), SOURCES_INDEX).is_err());
        assert!(release_facts(text, "main/source/Sources.gz").is_err());
    }
}
