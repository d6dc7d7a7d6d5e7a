//! Obtaining verified source tarballs into a content-addressed cache.
//!
//! Candidates are tried in order: the locked upstream URLs (HTTPS, with
//! certificate verification always on), then the Debian archive copy of the
//! same bytes (`…orig.tar.bz2`, named by the locked `.dsc` evidence) on the
//! configured mirror. Transport is never trusted: every download is streamed
//! through SHA-256 into a temporary file and only renamed into the cache when
//! its size and hash equal the lock. A partial or wrong file is never visible
//! under its final name.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::data::catalog::today_utc;
use crate::data::lock::{Evidence, LockedSource};
use crate::data::names::NameError;
use crate::data::version::Version;
use crate::source::debian;
use crate::source::project::{Project, ProjectError};
use crate::source::verify;
use crate::source::verify::Assessment;
use crate::util::digest::FileDigest;
use crate::util::error::{Classify, FailureKind};
use crate::util::progress::Progress;
use crate::util::scratch::{ScratchFile, Swept, sweep};

/// Environment variable overriding the cache directory.
pub const CACHE_ENV: &str = "PGBIN_CACHE";

/// Download cap when the lock records no size (PostgreSQL tarballs are ~25 MB).
const MAX_UNKNOWN_SIZE: u64 = 256 << 20;

/// Attempts per URL for transient failures.
const ATTEMPTS: u32 = 3;

/// Prefix of a download in progress, beside the name it gets once verified.
pub const DOWNLOAD_PREFIX: &str = ".download-";

/// Prefix of a host build's work directory in `<cache>/builds/`.
pub const WORK_PREFIX: &str = ".work-";

/// Where a tarball is cached: `<cache>/sources/sha256/<hex>/<name>`.
pub fn cache_path(cache: &Path, entry: &LockedSource) -> PathBuf {
    cache.join("sources/sha256").join(&entry.sha256).join(&entry.tarball)
}

/// The cache directory: `$PGBIN_CACHE`, else `$XDG_CACHE_HOME/pgbin`, else `~/.cache/pgbin`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(CACHE_ENV) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("pgbin");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache/pgbin")
}

/// One place a tarball may be downloaded from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The URL.
    pub url: String,
    /// Where the URL came from (`upstream`, `debian mirror`).
    pub origin: &'static str,
}

/// Download candidates for an entry: its locked URLs, then the Debian
/// mirror's copy for each locked `.dsc`. Plain HTTP is allowed only for the
/// mirror, whose content is bound to the signed `.dsc` by hash. The package
/// and file names that make the mirror URL must follow Debian's grammars.
pub fn candidates(entry: &LockedSource, mirror: Option<&str>) -> Result<Vec<Candidate>, NameError> {
    let mut list: Vec<Candidate> =
        entry.urls.iter().map(|url| Candidate { url: url.clone(), origin: "upstream" }).collect();
    if let Some(mirror) = mirror {
        for evidence in &entry.evidence {
            if let Evidence::DebianDsc { package, attests, .. } = evidence {
                let url = format!("{mirror}/{}", debian::pool_path(package, &attests.name)?);
                if !list.iter().any(|c| c.url == url) {
                    list.push(Candidate { url, origin: "debian mirror" });
                }
            }
        }
    }
    Ok(list)
}

/// Why obtaining a tarball failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Every candidate failed; each failure is listed.
    #[error("could not obtain {tarball}: {}", attempts.join("; "))]
    Exhausted {
        /// Tarball name.
        tarball: String,
        /// One line per candidate.
        attempts: Vec<String>,
        /// Whether any candidate delivered bytes that failed verification.
        tampered: bool,
    },
    /// A name in the lock that cannot become part of a URL.
    #[error("cannot build a download URL: {0}")]
    Name(#[from] NameError),
    /// Local file trouble.
    #[error("cannot write {path}: {source}")]
    Io {
        /// Path.
        path: String,
        /// Underlying error.
        source: std::io::Error,
    },
}

impl Classify for FetchError {
    fn kind(&self) -> FailureKind {
        match self {
            FetchError::Exhausted { tampered: true, .. } => FailureKind::Check,
            _ => FailureKind::Usage,
        }
    }

    fn message(&self) -> String {
        match self.kind() {
            FailureKind::Check => format!("verification failed: {self}"),
            FailureKind::Usage => self.to_string(),
        }
    }
}

/// Why a verified tarball could not be had: the release may not be built,
/// or no candidate delivered the locked bytes.
#[derive(Debug, thiserror::Error)]
pub enum ObtainError {
    /// Not locked, not trusted enough, or its evidence does not verify.
    #[error(transparent)]
    Project(#[from] ProjectError),
    /// Downloading failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
}

impl Classify for ObtainError {
    fn kind(&self) -> FailureKind {
        match self {
            ObtainError::Project(e) => e.kind(),
            ObtainError::Fetch(e) => e.kind(),
        }
    }

    fn message(&self) -> String {
        match self {
            ObtainError::Project(e) => e.message(),
            ObtainError::Fetch(e) => e.message(),
        }
    }
}

/// Verifies the lock entry of `version` (it must be buildable) and obtains
/// its tarball into `cache` (default: [`default_cache_dir`]) from the locked
/// URLs or the configured Debian mirror.
pub fn obtain_verified(
    project: &Project,
    version: Version,
    cache: Option<&Path>,
    progress: &mut dyn Progress,
) -> Result<(Obtained, Assessment), ObtainError> {
    let entry = project.locked(version)?;
    let assessment = project.buildable_assessment(version, "fetch for building")?;
    if project.catalog.release(version).is_some_and(|(major, _)| major.is_end_of_life(today_utc())) {
        progress.note(&format!("warning: PostgreSQL {} is past end of life and gets no security fixes", version.major));
    }
    let cache = cache.map_or_else(default_cache_dir, Path::to_path_buf);
    report_sweep(&cache, &sweep_cache(&cache), progress);
    let mirror = debian::configured_mirror(Path::new("/etc/apt"));
    let candidates = candidates(entry, mirror.as_deref()).map_err(FetchError::from)?;
    let obtained = obtain(entry, &cache, &candidates, progress)?;
    Ok((obtained, assessment))
}

/// Removes what killed pgbin processes left in `cache`: downloads in
/// progress and build work directories whose owner is gone (a running
/// pgbin's are kept; see [`crate::util::scratch`]).
pub fn sweep_cache(cache: &Path) -> Swept {
    let mut swept = Swept::default();
    if let Ok(sources) = std::fs::read_dir(cache.join("sources/sha256")) {
        for entry in sources.filter_map(Result::ok) {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                swept.merge(sweep(&entry.path(), DOWNLOAD_PREFIX));
            }
        }
    }
    swept.merge(sweep(&cache.join("builds"), WORK_PREFIX));
    swept
}

fn report_sweep(cache: &Path, swept: &Swept, progress: &mut dyn Progress) {
    if !swept.removed.is_empty() {
        progress.note(&format!(
            "removed {} temporary file(s) left in {} by an interrupted pgbin",
            swept.removed.len(),
            cache.display()
        ));
    }
    for (path, error) in &swept.failed {
        progress.note(&format!("warning: cannot remove {}: {}", path.display(), crate::util::io::explain(error)));
    }
}

/// How a tarball was obtained.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Obtained {
    /// Its verified path in the cache.
    pub path: PathBuf,
    /// Its digest.
    #[serde(flatten)]
    pub digest: FileDigest,
    /// The URL it came from; `None` when it was already cached.
    pub url: Option<String>,
}

enum AttemptError {
    Transient(String),
    Permanent(String),
    Mismatch(String),
    Local(std::io::Error),
}

/// Returns the verified cached tarball, downloading it first if needed.
pub fn obtain(
    entry: &LockedSource,
    cache: &Path,
    candidates: &[Candidate],
    progress: &mut dyn Progress,
) -> Result<Obtained, FetchError> {
    let target = cache_path(cache, entry);
    if target.is_file() {
        match verify::check_tarball(&target, entry) {
            Ok(digest) => return Ok(Obtained { path: target, digest, url: None }),
            Err(_) => {
                std::fs::remove_file(&target)
                    .map_err(|source| FetchError::Io { path: target.display().to_string(), source })?;
            }
        }
    }
    let dir = target.parent().expect("cache paths have a parent");
    std::fs::create_dir_all(dir).map_err(|source| FetchError::Io { path: dir.display().to_string(), source })?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(15)))
        .timeout_recv_body(Some(Duration::from_secs(60)))
        .user_agent(concat!("pgbin/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let mut attempts = Vec::new();
    let mut tampered = false;
    for candidate in candidates {
        let mut delay = Duration::from_millis(500);
        for attempt in 1..=ATTEMPTS {
            match download_one(&agent, candidate, entry, dir, &target, progress) {
                Ok(digest) => return Ok(Obtained { path: target, digest, url: Some(candidate.url.clone()) }),
                Err(AttemptError::Transient(_)) if attempt < ATTEMPTS => {
                    std::thread::sleep(delay);
                    delay *= 2;
                }
                Err(AttemptError::Transient(message) | AttemptError::Permanent(message)) => {
                    attempts.push(format!("{} ({}): {message}", candidate.url, candidate.origin));
                    break;
                }
                Err(AttemptError::Mismatch(message)) => {
                    tampered = true;
                    attempts.push(format!("{} ({}): {message}", candidate.url, candidate.origin));
                    break;
                }
                Err(AttemptError::Local(source)) => {
                    return Err(FetchError::Io { path: dir.display().to_string(), source });
                }
            }
        }
    }
    Err(FetchError::Exhausted { tarball: entry.tarball.clone(), attempts, tampered })
}

fn download_one(
    agent: &ureq::Agent,
    candidate: &Candidate,
    entry: &LockedSource,
    dir: &Path,
    target: &Path,
    progress: &mut dyn Progress,
) -> Result<FileDigest, AttemptError> {
    if !candidate.url.starts_with("https://") && candidate.origin == "upstream" {
        return Err(AttemptError::Permanent("refusing a non-HTTPS upstream URL".into()));
    }
    let response = agent.get(&candidate.url).call().map_err(|e| match e {
        ureq::Error::StatusCode(code) if (500..600).contains(&code) || code == 429 => {
            AttemptError::Transient(format!("HTTP {code}"))
        }
        ureq::Error::StatusCode(code) => AttemptError::Permanent(format!("HTTP {code}")),
        ureq::Error::HostNotFound => AttemptError::Permanent("host not found".into()),
        ureq::Error::Io(io) if io.to_string().contains("lookup address") => AttemptError::Permanent(io.to_string()),
        ureq::Error::Io(io) => AttemptError::Transient(io.to_string()),
        ureq::Error::Timeout(t) => AttemptError::Transient(format!("timed out ({t})")),
        other => AttemptError::Permanent(crate::util::io::explain(&other)),
    })?;
    let total =
        response.headers().get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if let (Some(total), Some(size)) = (total, entry.size) {
        if total != size {
            return Err(AttemptError::Mismatch(format!("server announces {total} bytes, the lock says {size}")));
        }
    }
    let limit = entry.size.map_or(MAX_UNKNOWN_SIZE, |s| s + 1);
    let mut reader = response.into_body().into_reader().take(limit);
    let mut temp = ScratchFile::new_in(dir, DOWNLOAD_PREFIX).map_err(AttemptError::Local)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut size = 0u64;
    progress.start(&candidate.url, total.or(entry.size));
    let result = loop {
        let n = match reader.read(&mut buffer) {
            Ok(0) => break Ok(()),
            Ok(n) => n,
            Err(e) => {
                let cause = crate::util::io::explain(&e);
                break Err(AttemptError::Transient(format!("connection lost after {size} bytes: {cause}")));
            }
        };
        hasher.update(&buffer[..n]);
        if let Err(e) = temp.write_all(&buffer[..n]) {
            break Err(AttemptError::Local(e));
        }
        size += n as u64;
        progress.advance(n as u64);
    };
    progress.finish();
    result?;
    let digest = FileDigest { size, sha256: hex::encode(hasher.finalize()) };
    if entry.size.is_some_and(|s| s != size) {
        return Err(AttemptError::Mismatch(format!(
            "received {size} bytes, the lock says {}",
            entry.size.unwrap_or(0)
        )));
    }
    if digest.sha256 != entry.sha256 {
        return Err(AttemptError::Mismatch(format!("SHA-256 {} does not match the lock", digest.sha256)));
    }
    crate::util::fs::publishable(temp.as_file()).map_err(AttemptError::Local)?;
    temp.persist(target).map_err(AttemptError::Local)?;
    Ok(digest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::lock::SourceLock;
    use crate::util::scratch::ScratchDir;

    fn lock() -> SourceLock {
        let repo = crate::data::repo::Repo::discover(Some(Path::new(env!("CARGO_MANIFEST_DIR")))).unwrap();
        SourceLock::load(&repo).unwrap()
    }

    #[test]
    fn candidates_put_upstream_first_then_the_debian_copy() {
        let lock = lock();
        let entry = lock.get(crate::data::version::Version::new(18, 6)).unwrap();
        let list = candidates(entry, Some("http://mirror.invalid/debian")).unwrap();
        assert_eq!(list[0].url, "https://ftp.postgresql.org/pub/source/v18.6/postgresql-18.6.tar.bz2");
        assert_eq!(
            list.last().unwrap().url,
            "http://mirror.invalid/debian/pool/main/p/postgresql-18/postgresql-18_18.6.orig.tar.bz2"
        );
        assert_eq!(candidates(entry, None).unwrap().len(), 1);
    }

    #[test]
    fn a_hostile_file_name_never_becomes_a_mirror_url() {
        let lock = lock();
        let mut entry = lock.get(crate::data::version::Version::new(18, 6)).unwrap().clone();
        for evidence in &mut entry.evidence {
            if let Evidence::DebianDsc { attests, .. } = evidence {
                attests.name = "../../../../private/postgresql-18.6.tar.bz2".into();
            }
        }
        assert!(candidates(&entry, Some("http://mirror.invalid/debian")).is_err());
    }

    #[test]
    fn the_cache_sweep_removes_abandoned_downloads_and_work_directories_only() {
        let cache = tempfile::tempdir().unwrap();
        let sources = cache.path().join("sources/sha256/abc");
        let builds = cache.path().join("builds");
        std::fs::create_dir_all(&sources).unwrap();
        std::fs::create_dir_all(builds.join(".work-dead0001/build")).unwrap();
        std::fs::write(builds.join(".work-dead0001.lock"), b"").unwrap();
        std::fs::write(sources.join(".download-dead0002"), b"partial").unwrap();
        std::fs::write(sources.join(".download-dead0002.lock"), b"").unwrap();
        std::fs::write(sources.join("postgresql-18.6.tar.bz2"), b"verified").unwrap();
        let live = ScratchDir::new_in(&builds, WORK_PREFIX).unwrap();
        let downloading = ScratchFile::new_in(&sources, DOWNLOAD_PREFIX).unwrap();

        let mut swept = sweep_cache(cache.path()).removed;
        swept.sort();
        assert_eq!(swept, vec![builds.join(".work-dead0001"), sources.join(".download-dead0002")]);
        assert!(live.path().is_dir() && downloading.path().is_file(), "a running pgbin's entries are kept");
        assert!(sources.join("postgresql-18.6.tar.bz2").is_file());
        assert!(sweep_cache(&cache.path().join("missing")).removed.is_empty());
    }

    #[test]
    fn cache_is_content_addressed() {
        let lock = lock();
        let entry = lock.get(crate::data::version::Version::new(18, 6)).unwrap();
        let path = cache_path(Path::new("/c"), entry);
        assert_eq!(path, Path::new("/c/sources/sha256").join(&entry.sha256).join("postgresql-18.6.tar.bz2"));
    }
}
