//! Reading a Debian suite's source index from a mirror, verified end to end:
//! the `InRelease` signature by a Debian archive key (at the time of
//! reading), the compressed `Sources.xz` against the hash and size the
//! `InRelease` lists for it, and the decompressed `Sources` against the
//! hash and size listed for that. Every size read is bounded by the signed
//! listing and by a fixed ceiling; nothing is allocated from what a server
//! announces. The PostgreSQL releases the index lists are then read from
//! its paragraphs.

use std::io::{Read, Write};
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;

use super::debian::{self, FileChecksum};
use super::debian_archive::{self, KIND, ReleaseFacts, SOURCES_INDEX};
use super::openpgp::{MAX_DOCUMENT_BYTES, Policy, SignedDocument, verify_clearsigned};
use crate::data::version::Version;
use crate::util::digest::sha256_hex;
use crate::util::error::{Classify, FailureKind};

/// The largest uncompressed `Sources` index pgbin reads (sid's is about
/// 60 MiB).
pub const MAX_INDEX_BYTES: u64 = 512 << 20;

/// The suites `pgbin catalog refresh --debian` reads: where Debian carries
/// `postgresql-NN` source packages, from unstable and experimental to the
/// supported stable releases and their security updates (bullseye's LTS
/// carries 13). Proposed updates are left out: not every mirror carries
/// them, and a suite a mirror lacks is an error, not a silent skip.
pub const DEFAULT_SUITES: &[&str] =
    &["experimental", "sid", "trixie", "trixie-security", "bookworm", "bookworm-security", "bullseye-security"];

/// Why a suite's index could not be read or did not verify.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The mirror did not serve a file.
    #[error("{url}: {reason}")]
    Download {
        /// What was asked for.
        url: String,
        /// Why it failed.
        reason: String,
    },
    /// A file did not verify: a signature, a hash, a size or a format.
    #[error("{suite}: {reason}")]
    Invalid {
        /// The suite.
        suite: String,
        /// What failed.
        reason: String,
    },
    /// The signature check itself failed.
    #[error(transparent)]
    Trust(#[from] super::error::TrustError),
}

impl Classify for IndexError {
    fn kind(&self) -> FailureKind {
        match self {
            IndexError::Download { .. } => FailureKind::Usage,
            IndexError::Invalid { .. } => FailureKind::Check,
            IndexError::Trust(e) => e.kind(),
        }
    }
}

/// A suite's verified `InRelease` and its uncompressed `Sources` index.
#[derive(Debug, Clone)]
pub struct SuiteIndex {
    /// The suite as asked for (`trixie-security`).
    pub suite: String,
    /// The `InRelease` as served.
    pub release: Vec<u8>,
    /// Its verified signature.
    pub signed: SignedDocument,
    /// Its facts about `main/source/Sources`.
    pub facts: ReleaseFacts,
    /// `main/source/Sources`, uncompressed, hash and size checked.
    pub sources: Vec<u8>,
}

/// An HTTP agent for archive indexes.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(15)))
        .timeout_recv_body(Some(Duration::from_secs(300)))
        .user_agent(concat!("pgbin/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

fn get(agent: &ureq::Agent, url: &str, limit: u64) -> Result<Vec<u8>, IndexError> {
    let failed = |reason: String| IndexError::Download { url: url.to_string(), reason };
    let response = agent.get(url).call().map_err(|e| failed(crate::util::io::explain(&e)))?;
    let mut body = Vec::new();
    response
        .into_body()
        .into_reader()
        .take(limit + 1)
        .read_to_end(&mut body)
        .map_err(|e| failed(crate::util::io::explain(&e)))?;
    if body.len() as u64 > limit {
        return Err(failed(format!("larger than the {limit} bytes expected")));
    }
    Ok(body)
}

/// A writer that refuses to grow past a limit.
struct Bounded {
    bytes: Vec<u8>,
    limit: u64,
}

impl Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() as u64 + buf.len() as u64 > self.limit {
            return Err(std::io::Error::other("decompresses to more than the InRelease lists"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Reads and verifies `suite`'s `InRelease` and `main/source/Sources` from
/// `mirror` (the archive's base URI), the signature checked at `now`.
pub fn fetch_suite(
    agent: &ureq::Agent,
    policy: &Policy,
    mirror: &str,
    suite: &str,
    now: Timestamp,
) -> Result<SuiteIndex, IndexError> {
    let invalid = |reason: String| IndexError::Invalid { suite: suite.to_string(), reason };
    if suite.is_empty() || !suite.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return Err(invalid("is not a Debian suite name".into()));
    }
    let base = format!("{}/dists/{suite}", mirror.trim_end_matches('/'));
    let release = get(agent, &format!("{base}/InRelease"), MAX_DOCUMENT_BYTES)?;
    let signed = verify_clearsigned(policy, KIND, &release, now, &format!("{suite} InRelease"))?;
    let text = String::from_utf8_lossy(&signed.content).into_owned();
    let facts = debian_archive::release_facts(&text, SOURCES_INDEX).map_err(|e| invalid(e.0))?;
    let names_suite = text.lines().any(|l| l.strip_prefix("Suite:").is_some_and(|v| v.trim() == suite));
    if facts.codename != suite && !names_suite {
        return Err(invalid(format!("the mirror served the InRelease of {}", facts.codename)));
    }
    let compressed_name = format!("{SOURCES_INDEX}.xz");
    let hashes = debian_archive::release_hashes(&text).map_err(|e| invalid(e.0))?;
    let compressed: &FileChecksum = hashes
        .iter()
        .find(|f| f.name == compressed_name)
        .ok_or_else(|| invalid(format!("the InRelease does not list {compressed_name}")))?;
    if facts.index_size > MAX_INDEX_BYTES || compressed.size > MAX_INDEX_BYTES {
        return Err(invalid(format!("the InRelease lists an index larger than {MAX_INDEX_BYTES} bytes")));
    }
    let xz = get(agent, &format!("{base}/{compressed_name}"), compressed.size)?;
    if xz.len() as u64 != compressed.size || sha256_hex(&xz) != compressed.sha256 {
        return Err(invalid(format!("{compressed_name} differs from the one its InRelease lists")));
    }
    let mut out = Bounded { bytes: Vec::new(), limit: facts.index_size };
    lzma_rs::xz_decompress(&mut std::io::BufReader::new(xz.as_slice()), &mut out)
        .map_err(|e| invalid(format!("{compressed_name}: {e}")))?;
    let sources = out.bytes;
    if sources.len() as u64 != facts.index_size || sha256_hex(&sources) != facts.index_sha256 {
        return Err(invalid(format!("{SOURCES_INDEX} differs from the one its InRelease lists")));
    }
    Ok(SuiteIndex { suite: suite.to_string(), release, signed, facts, sources })
}

/// A PostgreSQL source package release a suite lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DebianRelease {
    /// The suite.
    pub suite: String,
    /// Source package (`postgresql-17`).
    pub package: String,
    /// Debian version (`17.12-0+deb13u1`).
    pub debian_version: String,
    /// The upstream version as Debian spells it (`17.12`, `19~rc1`).
    pub upstream: String,
    /// The release, when it is a final one pgbin can name.
    pub version: Option<Version>,
    /// The orig tarball as the paragraph lists it.
    pub orig: Option<OrigTarball>,
}

/// An orig tarball's listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrigTarball {
    /// File name.
    pub name: String,
    /// SHA-256.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

impl DebianRelease {
    /// Whether Debian's upstream version is a pre-release (`19~rc1`,
    /// `19~beta2`): Debian spells them with `~` so that they sort first.
    pub fn is_pre_release(&self) -> bool {
        self.upstream.contains('~')
    }
}

/// Every `postgresql-NN` paragraph of a suite's index.
pub fn postgresql_releases(index: &SuiteIndex) -> Vec<DebianRelease> {
    let mut found = Vec::new();
    let mut at = 0;
    let needle = b"\nPackage: postgresql-";
    while let Some(offset) = memchr::memmem::find(&index.sources[at..], needle) {
        let start = at + offset + 1;
        at = start;
        let end = memchr::memmem::find(&index.sources[start..], b"\n\n").map_or(index.sources.len(), |i| start + i + 1);
        let Ok(paragraph) = debian::parse_control(&String::from_utf8_lossy(&index.sources[start..end]), "Package")
        else {
            continue;
        };
        let Some(major) = paragraph.source.strip_prefix("postgresql-") else { continue };
        if major.is_empty() || !major.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let upstream = debian::upstream_version(&paragraph.version).to_string();
        let version = upstream.parse::<Version>().ok().filter(|v| v.major.to_string() == major);
        let orig = version.and_then(|v| {
            let name = debian::orig_tarball_name(v);
            paragraph.sha256.iter().find(|f| f.name == name).map(|f| OrigTarball {
                name: f.name.clone(),
                sha256: f.sha256.clone(),
                size: f.size,
            })
        });
        found.push(DebianRelease {
            suite: index.suite.clone(),
            package: paragraph.source.clone(),
            debian_version: paragraph.version.clone(),
            upstream,
            version,
            orig,
        });
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgresql_paragraphs_are_read_and_pre_releases_told_apart() {
        let sources = "Package: postgis\nVersion: 3\nChecksums-Sha256:\n\nPackage: postgresql-17\nVersion: 17.12-0+deb13u1\nChecksums-Sha256:\n 9cf136a7aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 22292547 postgresql-17_17.12.orig.tar.bz2\n\nPackage: postgresql-19\nVersion: 19~rc1-1\nChecksums-Sha256:\n bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb 1 postgresql-19_19~rc1.orig.tar.bz2\n\nPackage: postgresql-common\nVersion: 1\nChecksums-Sha256:\n";
        let index = SuiteIndex {
            suite: "trixie".into(),
            release: Vec::new(),
            signed: SignedDocument { signer: String::new(), created: Timestamp::UNIX_EPOCH, content: Vec::new() },
            facts: ReleaseFacts {
                codename: "trixie".into(),
                date: Timestamp::UNIX_EPOCH,
                index_sha256: String::new(),
                index_size: 0,
            },
            sources: sources.as_bytes().to_vec(),
        };
        let found = postgresql_releases(&index);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].version, Some(Version::new(17, 12)));
        assert_eq!(found[0].orig.as_ref().unwrap().size, 22292547);
        assert!(!found[0].is_pre_release());
        assert_eq!(found[1].upstream, "19~rc1");
        assert!(found[1].is_pre_release());
        assert_eq!(found[1].version, None);
    }
}
