//! The source lock: per release, the tarball's identity and the evidence for it.
//!
//! `data/sources.lock.json` is committed and reviewed. Each entry binds the
//! version, the tarball name, size and SHA-256, and every piece of evidence
//! (each naming the hash it attests and, when signed, the signer and times)
//! into one record, so that no part can be swapped for another release's.
//! Evidence documents themselves are committed under `evidence/` and are
//! re-verified by [`crate::source::verify`] every time the lock is used.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::data::names::{self, NameError};
use crate::data::repo::{self, Repo};
use crate::data::version::Version;
use crate::util::confined::{Bound, ConfinedError, read_confined_text};
use crate::util::fs;

/// Format version of the lock file.
pub const LOCK_FORMAT: u32 = 1;

/// The most bytes the lock may hold: an entry takes about 2 KiB, so 16 MiB
/// leaves room for thousands of releases and still bounds the memory a
/// replaced (or endless) file can take.
pub const LOCK_BOUND: Bound = Bound { bytes: 16 << 20, what: "the source lock" };

/// The whole lock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceLock {
    /// Format version; must equal [`LOCK_FORMAT`].
    pub format: u32,
    /// One entry per locked release, ascending by version.
    pub sources: Vec<LockedSource>,
}

/// One locked release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedSource {
    /// The release.
    pub version: Version,
    /// Upstream tarball file name.
    pub tarball: String,
    /// Tarball size in bytes, when some evidence states it.
    pub size: Option<u64>,
    /// Tarball SHA-256, lowercase hex.
    pub sha256: String,
    /// Where the tarball may be downloaded (tried in order).
    pub urls: Vec<String>,
    /// The evidence for the hash.
    pub evidence: Vec<Evidence>,
    /// Overrides of the anti-rollback rules that were accepted for this entry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<Override>,
}

/// What a piece of evidence states about a tarball.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attestation {
    /// File name the evidence uses for the tarball (Debian renames it).
    pub name: String,
    /// SHA-256 it states, lowercase hex.
    pub sha256: String,
    /// Size it states, if any.
    pub size: Option<u64>,
}

/// One piece of evidence for a tarball hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Evidence {
    /// A Debian source package `.dsc`, OpenPGP clearsigned by an uploader.
    DebianDsc {
        /// What it attests.
        attests: Attestation,
        /// Debian source package name (`postgresql-18`).
        package: String,
        /// Debian version (`18.6-3`).
        debian_version: String,
        /// Committed copy of the `.dsc`, relative to the repository root.
        document: String,
        /// SHA-256 of that document.
        document_sha256: String,
        /// Fingerprint of the key that made the signature.
        signer: String,
        /// Signature creation time (RFC 3339, UTC).
        signature_created: String,
        /// Policy reference time the signature is evaluated at (RFC 3339, UTC).
        reference_time: String,
    },
    /// The Debian archive chain: a suite's `InRelease`, clearsigned by a
    /// Debian archive key, lists the hash of `main/source/Sources`, whose
    /// paragraph for the source package lists the orig tarball's hash (see
    /// [`crate::source::debian_archive`]).
    DebianArchive {
        /// What it attests.
        attests: Attestation,
        /// Debian source package name (`postgresql-17`).
        package: String,
        /// Debian version (`17.12-0+deb13u1`).
        debian_version: String,
        /// The suite whose `InRelease` signs the chain (`trixie-security`).
        suite: String,
        /// The `InRelease`'s `Date:` (RFC 3339, UTC).
        release_date: String,
        /// Committed proof (the `InRelease` and the index's tail), relative
        /// to the repository root.
        document: String,
        /// SHA-256 of that document.
        document_sha256: String,
        /// Fingerprint of the archive key whose signature was verified.
        signer: String,
        /// Signature creation time (RFC 3339, UTC).
        signature_created: String,
        /// Policy reference time the signature is evaluated at (RFC 3339, UTC).
        reference_time: String,
    },
    /// The `.sha256` file published upstream beside the tarball (unsigned).
    UpstreamChecksum {
        /// What it attests.
        attests: Attestation,
        /// Where it is published.
        url: String,
        /// Committed copy, relative to the repository root.
        document: String,
        /// SHA-256 of that document.
        document_sha256: String,
    },
    /// An independent public record of the hash (unsigned).
    Witness {
        /// What it attests.
        attests: Attestation,
        /// Who publishes the record (`docker-library/postgres`): witnesses
        /// from one publisher count once.
        publisher: String,
        /// Precise reference: repository, commit and path, or URL.
        reference: String,
        /// The git blob id of the whole witnessed file at that commit, which
        /// `--witness-clone` and the CI workflow check (absent only in
        /// witnesses recorded before blob ids were).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        blob: Option<String>,
        /// Committed excerpt of the record, relative to the repository root.
        document: String,
        /// SHA-256 of that excerpt.
        document_sha256: String,
    },
}

/// An explicitly accepted exception to the anti-rollback rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Override {
    /// Which rule was overridden (`downgrade`, `changed-evidence`).
    pub rule: String,
    /// When (RFC 3339, UTC).
    pub at: String,
    /// The reason given.
    pub reason: String,
}

/// Problems with the lock file.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The lock file is not a regular file inside the repository, is too
    /// large, or could not be read.
    #[error(transparent)]
    File(#[from] ConfinedError),
    /// Could not write.
    #[error("cannot access source lock {path}: {source}")]
    Io {
        /// File path.
        path: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// Not valid lock JSON.
    #[error("malformed source lock {path}: {message}; restore it from version control")]
    Parse {
        /// File path.
        path: String,
        /// Parser message.
        message: String,
    },
    /// Well-formed but inconsistent.
    #[error("inconsistent source lock: {0}")]
    Invalid(String),
}

impl Evidence {
    /// The evidence kind as written in the lock (`debian-dsc`).
    pub fn kind(&self) -> &'static str {
        match self {
            Evidence::DebianDsc { .. } => "debian-dsc",
            Evidence::DebianArchive { .. } => "debian-archive",
            Evidence::UpstreamChecksum { .. } => "upstream-checksum",
            Evidence::Witness { .. } => "witness",
        }
    }

    /// What the evidence attests.
    pub fn attests(&self) -> &Attestation {
        match self {
            Evidence::DebianDsc { attests, .. }
            | Evidence::DebianArchive { attests, .. }
            | Evidence::UpstreamChecksum { attests, .. }
            | Evidence::Witness { attests, .. } => attests,
        }
    }

    /// Checks the names the evidence puts into file names and URLs: the
    /// tarball name it attests (a Debian file name) and, for a `.dsc`, the
    /// package name and version (Debian's grammars).
    pub fn check_names(&self) -> Result<(), NameError> {
        names::debian_file_name(&self.attests().name)?;
        if let Evidence::DebianDsc { package, debian_version, .. }
        | Evidence::DebianArchive { package, debian_version, .. } = self
        {
            names::debian_package(package)?;
            names::debian_version(debian_version)?;
        }
        Ok(())
    }

    /// The committed document and its recorded SHA-256.
    pub fn document(&self) -> (&str, &str) {
        match self {
            Evidence::DebianDsc { document, document_sha256, .. }
            | Evidence::DebianArchive { document, document_sha256, .. }
            | Evidence::UpstreamChecksum { document, document_sha256, .. }
            | Evidence::Witness { document, document_sha256, .. } => (document, document_sha256),
        }
    }
}

/// Whether `text` is 64 lowercase hex digits.
pub fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl SourceLock {
    /// Loads and validates the repository's lock (`data/sources.lock.json`,
    /// a regular file of at most [`LOCK_BOUND`], reached through no link).
    pub fn load(repo: &Repo) -> Result<SourceLock, LockError> {
        let text = read_confined_text(repo.root(), Path::new(repo::LOCK), LOCK_BOUND)?;
        SourceLock::parse(&text, &repo.lock().display().to_string())
    }

    /// Parses and validates lock text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<SourceLock, LockError> {
        let lock: SourceLock = serde_json::from_str(text)
            .map_err(|e| LockError::Parse { path: origin.to_string(), message: e.to_string() })?;
        lock.validate()?;
        Ok(lock)
    }

    /// Checks the structural rules every lock obeys.
    pub fn validate(&self) -> Result<(), LockError> {
        let invalid = |m: String| Err(LockError::Invalid(m));
        if self.format != LOCK_FORMAT {
            return invalid(format!("format {} is not supported (expected {LOCK_FORMAT})", self.format));
        }
        if self.sources.windows(2).any(|w| w[0].version >= w[1].version) {
            return invalid("entries are not in strictly ascending version order".to_string());
        }
        for entry in &self.sources {
            let v = entry.version;
            if entry.tarball != crate::data::catalog::tarball_name(v) {
                return invalid(format!("{v}: tarball name {} does not match the version", entry.tarball));
            }
            if !is_sha256_hex(&entry.sha256) {
                return invalid(format!("{v}: sha256 is not 64 lowercase hex digits"));
            }
            let file_suffix = format!("/v{v}/{}", entry.tarball);
            if entry.urls.is_empty()
                || entry.urls.iter().any(|u| !u.starts_with("https://") || !u.ends_with(&file_suffix))
            {
                return invalid(format!("{v}: needs at least one URL, all https and ending in {file_suffix}"));
            }
            if let Some(twin) = self.sources.iter().find(|o| o.version != v && o.sha256 == entry.sha256) {
                return invalid(format!(
                    "{v} and {} have the same SHA-256; one tarball cannot be two releases",
                    twin.version
                ));
            }
            for evidence in &entry.evidence {
                let document = std::path::Path::new(evidence.document().0);
                let tidy = document.components().all(|c| matches!(c, std::path::Component::Normal(_)));
                if !tidy || !document.starts_with("evidence") {
                    return invalid(format!(
                        "{v}: evidence document {} must be a relative path under evidence/",
                        document.display()
                    ));
                }
                let attests = evidence.attests();
                if !is_sha256_hex(&attests.sha256) || !is_sha256_hex(evidence.document().1) {
                    return invalid(format!("{v}: {} evidence has a malformed hash", evidence.kind()));
                }
                evidence.check_names().map_err(|e| {
                    LockError::Invalid(format!(
                        "{v}: {} evidence: {e}; restore the lock from version control",
                        evidence.kind()
                    ))
                })?;
            }
        }
        Ok(())
    }

    /// The entry of one release.
    pub fn get(&self, version: Version) -> Option<&LockedSource> {
        self.sources.iter().find(|s| s.version == version)
    }

    /// The highest locked release of a major.
    pub fn latest_of_major(&self, major: u32) -> Option<&LockedSource> {
        self.sources.iter().filter(|s| s.version.major == major).max_by_key(|s| s.version)
    }

    /// Inserts or replaces an entry, keeping version order.
    pub fn upsert(&mut self, entry: LockedSource) {
        self.sources.retain(|s| s.version != entry.version);
        self.sources.push(entry);
        self.sources.sort_by_key(|s| s.version);
    }

    /// The canonical text: pretty JSON with a trailing newline.
    pub fn to_text(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("lock serializes");
        text.push('\n');
        text
    }

    /// Writes the lock atomically (temporary file, then rename).
    pub fn save(&self, path: &Path) -> Result<(), LockError> {
        fs::write_atomic(path, self.to_text().as_bytes())
            .map_err(|source| LockError::Io { path: path.display().to_string(), source })
    }
}

crate::util::error::usage_errors!(LockError);

#[cfg(test)]
mod tests {
    use super::*;

    fn committed() -> SourceLock {
        SourceLock::load(&Repo::discover(Some(Path::new(env!("CARGO_MANIFEST_DIR")))).unwrap()).unwrap()
    }

    #[test]
    fn committed_lock_round_trips_byte_for_byte() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sources.lock.json");
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(committed().to_text(), text, "the committed lock is not in canonical form");
    }

    #[test]
    fn rejects_out_of_order_and_malformed_entries() {
        let lock = committed();
        let mut reversed = lock.clone();
        reversed.sources.reverse();
        assert!(reversed.validate().is_err());
        let mut bad_hash = lock.clone();
        bad_hash.sources[0].sha256 = "ABC".into();
        assert!(bad_hash.validate().is_err());
        let mut http = lock;
        http.sources[0].urls = vec!["http://example.invalid/x".into()];
        assert!(http.validate().is_err());
        assert!(matches!(SourceLock::parse("{", "x"), Err(LockError::Parse { .. })));
    }

    /// Sets a field of the first `.dsc` evidence of 18.6 and validates.
    fn with_dsc_field(field: &str, value: &str) -> Result<(), LockError> {
        let mut lock = committed();
        let entry = lock.sources.iter_mut().find(|s| s.version == Version::new(18, 6)).unwrap();
        let evidence = entry.evidence.iter_mut().find(|e| e.kind() == "debian-dsc").unwrap();
        let Evidence::DebianDsc { attests, package, debian_version, .. } = evidence else { unreachable!() };
        match field {
            "name" => attests.name = value.into(),
            "package" => *package = value.into(),
            _ => *debian_version = value.into(),
        }
        lock.validate()
    }

    #[test]
    fn names_that_make_paths_and_urls_are_checked_at_load() {
        assert!(with_dsc_field("name", "postgresql-18_18.6.orig.tar.bz2").is_ok());
        for (field, value) in [
            ("name", "../../../etc/passwd"),
            ("name", "sub/postgresql-18_18.6.orig.tar.bz2"),
            ("name", ".."),
            ("name", ""),
            ("package", ""),
            ("package", "../postgresql-18"),
            ("package", "PostgreSQL-18"),
            ("version", "18.6-3/../../x"),
            ("version", ""),
        ] {
            let err = with_dsc_field(field, value).unwrap_err();
            assert!(matches!(err, LockError::Invalid(_)) && err.to_string().contains("is not valid"), "{field}: {err}");
        }
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::util::fuzz;
    use proptest::prelude::*;

    const COMMITTED: &str = include_str!("../../data/sources.lock.json");

    #[test]
    fn deeply_nested_json_is_an_error_not_a_stack_overflow() {
        let text = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(matches!(SourceLock::parse(&text, "deep"), Err(LockError::Parse { .. })));
    }

    proptest! {
        #![proptest_config(fuzz::config(768))]

        #[test]
        fn fuzz_lock_mutated(mutations in fuzz::mutations(6)) {
            let text = String::from_utf8_lossy(&fuzz::apply(COMMITTED.as_bytes(), &mutations)).into_owned();
            if let Ok(lock) = SourceLock::parse(&text, "fuzzed") {
                prop_assert!(lock.validate().is_ok());
                prop_assert!(SourceLock::parse(&lock.to_text(), "again").is_ok(), "what parses prints and parses again");
            }
        }
    }
}
