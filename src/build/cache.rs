//! The build cache: finished artifacts under `cache/builds/<key>/`, checked
//! against their `.sha256` before use, a lock per key so that one set of
//! inputs is built once, and copying artifacts out atomically.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::build::manifest::Manifest;
use crate::build::package;
use crate::util::io::{IoError, context};

/// Files of one finished build.
#[derive(Debug, Clone, Serialize)]
pub struct Artifacts {
    /// The archive.
    pub archive: PathBuf,
    /// Its `.sha256`.
    pub checksum_file: PathBuf,
    /// Its manifest.
    pub manifest_file: PathBuf,
    /// The manifest itself.
    #[serde(skip)]
    pub manifest: Manifest,
}

/// Names of the three files of an archive.
pub fn artifact_names(archive_name: &str) -> [String; 3] {
    [archive_name.to_string(), format!("{archive_name}.sha256"), format!("{archive_name}.manifest.json")]
}

/// Returns the cached artifacts for `key` if they are complete and intact.
pub fn cached(cache: &Path, key: &str, archive_name: &str) -> Option<Artifacts> {
    artifacts_in(&cache.join("builds").join(key), archive_name)
}

/// The three artifact files of `archive_name` in `dir`, if complete and the
/// archive's bytes match both its `.sha256` and the SHA-256 its manifest
/// records (so a published set never contradicts its own provenance).
pub fn artifacts_in(dir: &Path, archive_name: &str) -> Option<Artifacts> {
    let [archive, checksum, manifest] = artifact_names(archive_name).map(|n| dir.join(n));
    let recorded = std::fs::read_to_string(&checksum).ok()?;
    let parsed: Manifest = serde_json::from_str(&std::fs::read_to_string(&manifest).ok()?).ok()?;
    let digest = crate::util::digest::digest_file(&archive).ok()?;
    let intact = recorded == package::checksum_line(&digest.sha256, archive_name)
        && parsed.archive == archive_name
        && parsed.archive_sha256 == digest.sha256;
    intact.then_some(Artifacts { archive, checksum_file: checksum, manifest_file: manifest, manifest: parsed })
}

/// Copies artifacts into `out_dir`, each file atomically.
pub fn publish(artifacts: &Artifacts, out_dir: &Path) -> Result<Artifacts, IoError> {
    let mut copies = Vec::new();
    for source in [&artifacts.archive, &artifacts.checksum_file, &artifacts.manifest_file] {
        let target = out_dir.join(source.file_name().expect("artifact files have names"));
        crate::util::fs::copy_atomic(source, &target).map_err(context(format!(
            "cannot copy {} to {}",
            source.display(),
            target.display()
        )))?;
        copies.push(target);
    }
    let [archive, checksum_file, manifest_file]: [PathBuf; 3] = copies.try_into().expect("three files");
    Ok(Artifacts { archive, checksum_file, manifest_file, manifest: artifacts.manifest.clone() })
}

/// An exclusive lock on one cache key, held while that key is built, so that
/// concurrent builds of the same inputs run once: the second waits, then
/// finds the first one's result in the cache. Released on drop.
pub struct KeyLock {
    _file: std::fs::File,
}

/// Waits for and takes the lock of `key` in `cache`.
pub fn lock_key(cache: &Path, key: &str) -> Result<KeyLock, IoError> {
    use std::os::fd::AsRawFd;
    let builds = cache.join("builds");
    std::fs::create_dir_all(&builds).map_err(context(format!("cannot create {}", builds.display())))?;
    let path = builds.join(format!("{key}.lock"));
    let file = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(context(format!("cannot open {}", path.display())))?;
    // SAFETY: flock on a descriptor this function owns; blocks until granted.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(IoError::new(format!("cannot lock {}", path.display()), std::io::Error::last_os_error()));
    }
    Ok(KeyLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_names_follow_the_convention() {
        let names = artifact_names("postgresql-18.6.0-x86_64-unknown-linux-gnu.tar.gz");
        assert_eq!(names[1], "postgresql-18.6.0-x86_64-unknown-linux-gnu.tar.gz.sha256");
        assert_eq!(names[2], "postgresql-18.6.0-x86_64-unknown-linux-gnu.tar.gz.manifest.json");
    }

    #[test]
    fn a_key_lock_excludes_a_second_holder_until_dropped() {
        let cache = tempfile::tempdir().unwrap();
        let first = lock_key(cache.path(), "k").unwrap();
        let path = cache.path().join("builds/k.lock");
        let probe = std::fs::File::open(&path).unwrap();
        use std::os::fd::AsRawFd;
        let try_lock = || unsafe { libc::flock(probe.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        assert_ne!(try_lock(), 0, "held by the first lock");
        drop(first);
        assert_eq!(try_lock(), 0, "free after drop");
    }

    #[test]
    fn a_corrupt_cache_entry_is_not_used() {
        let cache = tempfile::tempdir().unwrap();
        let dir = cache.path().join("builds/k");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.tar.gz"), b"archive").unwrap();
        std::fs::write(dir.join("a.tar.gz.sha256"), package::checksum_line(&"0".repeat(64), "a.tar.gz")).unwrap();
        std::fs::write(dir.join("a.tar.gz.manifest.json"), b"{}").unwrap();
        assert!(cached(cache.path(), "k", "a.tar.gz").is_none());
    }

    #[test]
    fn an_archive_that_matches_its_sha256_but_not_its_manifest_is_not_used() {
        let cache = tempfile::tempdir().unwrap();
        let dir = cache.path().join("builds/k");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.tar.gz"), b"archive").unwrap();
        let sha256 = crate::util::digest::sha256_hex(b"archive");
        std::fs::write(dir.join("a.tar.gz.sha256"), package::checksum_line(&sha256, "a.tar.gz")).unwrap();
        let fixture =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/manifest-18.6-host.json"))
                .unwrap();
        let mut manifest: serde_json::Value = serde_json::from_str(&fixture).unwrap();
        manifest["archive"] = "a.tar.gz".into();
        std::fs::write(dir.join("a.tar.gz.manifest.json"), manifest.to_string()).unwrap();
        assert!(cached(cache.path(), "k", "a.tar.gz").is_none(), "the manifest records another SHA-256");
        manifest["archive_sha256"] = sha256.into();
        std::fs::write(dir.join("a.tar.gz.manifest.json"), manifest.to_string()).unwrap();
        assert!(cached(cache.path(), "k", "a.tar.gz").is_some(), "archive, .sha256 and manifest agree");
    }
}
