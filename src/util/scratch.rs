//! Scratch files and directories that announce their owner, for places
//! several pgbin processes share (the cache), and the sweep that removes
//! those a killed pgbin left behind without touching a running one's.
//!
//! Each entry `<prefix><random>` has a companion `<prefix><random>.lock`
//! beside it, created first, locked with `flock` for the entry's whole life
//! and removed last. The kernel releases the lock when its owner dies,
//! however it dies, so a lock that can be taken means a dead owner; age
//! means nothing (a build runs for many minutes). [`sweep`] takes each lock
//! without waiting and removes only what it could lock.
//!
//! Creating a lock file and locking it are two steps, and so are a sweep's
//! opening and locking it: once either side holds the lock, it checks that
//! the name still refers to the file it locked. A sweep that took a lock
//! in the instant between its creation and its locking removes a lock file
//! whose owner then sees the name gone, and starts over with a new name.
//!
//! An entry without a lock comes from a pgbin before this scheme, which may
//! still be running: it is removed only once it is a day old. Removal never
//! follows a symbolic link (a link is removed, not its target).

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Suffix of the companion lock of a scratch entry.
pub const LOCK_SUFFIX: &str = ".lock";

/// Age after which an entry without a lock (made by a pgbin before owner
/// locks existed) counts as abandoned.
pub const UNLOCKED_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// How many names are tried before giving up creating an entry.
const ATTEMPTS: usize = 8;

/// The held lock of one entry; removes the lock file when dropped.
#[derive(Debug)]
struct OwnerLock {
    path: PathBuf,
    _file: File,
}

impl OwnerLock {
    /// Creates and locks `<prefix><random>.lock` in `parent`; returns the
    /// lock and the path of the entry it guards.
    fn create(parent: &Path, prefix: &str) -> io::Result<(OwnerLock, PathBuf)> {
        for _ in 0..ATTEMPTS {
            let (file, path) = tempfile::Builder::new()
                .prefix(prefix)
                .suffix(LOCK_SUFFIX)
                .rand_bytes(8)
                .tempfile_in(parent)?
                .into_parts();
            let path = path.keep().map_err(|e| e.error)?;
            flock(&file, libc::LOCK_EX)?;
            if still_names(&path, &file)? {
                let entry = entry_of(&path).expect("the lock's name ends in its suffix");
                return Ok((OwnerLock { path, _file: file }, entry));
            }
        }
        Err(io::Error::new(io::ErrorKind::WouldBlock, "every new scratch name was taken by a concurrent sweep"))
    }
}

impl Drop for OwnerLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A scratch directory: removed when dropped, and by a later [`sweep`] if
/// its owner is killed first.
#[derive(Debug)]
pub struct ScratchDir {
    path: PathBuf,
    remove: bool,
    _lock: OwnerLock,
}

impl ScratchDir {
    /// Creates `<prefix><random>` (mode 0700) in `parent`, owned by this process.
    pub fn new_in(parent: &Path, prefix: &str) -> io::Result<ScratchDir> {
        let (lock, path) = OwnerLock::create(parent, prefix)?;
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        Ok(ScratchDir { path, remove: true, _lock: lock })
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keeps the directory for inspection: renames it to `kept_prefix` and
    /// its random part, a name no sweep of its own prefix removes, and
    /// returns the new path.
    pub fn keep(mut self, kept_prefix: &str) -> io::Result<PathBuf> {
        let name = self.path.file_name().expect("scratch paths have a name").as_bytes();
        let random = &name[name.len() - 8..];
        let mut kept = OsString::from(kept_prefix);
        kept.push(OsStr::from_bytes(random));
        let kept = self.path.with_file_name(kept);
        std::fs::rename(&self.path, &kept)?;
        self.remove = false;
        Ok(kept)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if self.remove {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// A scratch file, for content that gets its final name only when complete:
/// removed when dropped unless persisted, and by a later [`sweep`] if its
/// owner is killed first.
#[derive(Debug)]
pub struct ScratchFile {
    path: PathBuf,
    file: File,
    persisted: bool,
    _lock: OwnerLock,
}

impl ScratchFile {
    /// Creates `<prefix><random>` (mode 0600) in `parent`, owned by this process.
    pub fn new_in(parent: &Path, prefix: &str) -> io::Result<ScratchFile> {
        let (lock, path) = OwnerLock::create(parent, prefix)?;
        let file = File::options().read(true).write(true).create_new(true).mode(0o600).open(&path)?;
        Ok(ScratchFile { path, file, persisted: false, _lock: lock })
    }

    /// Its path (until persisted).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open file.
    pub fn as_file(&self) -> &File {
        &self.file
    }

    /// Renames the file to `target` (in the same file system).
    pub fn persist(mut self, target: &Path) -> io::Result<()> {
        std::fs::rename(&self.path, target)?;
        self.persisted = true;
        Ok(())
    }
}

impl Write for ScratchFile {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.file.write(bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Drop for ScratchFile {
    fn drop(&mut self) {
        if !self.persisted {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A new scratch directory `<prefix><random>` in `parent`, after removing
/// the ones of that prefix whose owners are gone (a killed pgbin's).
pub fn swept_dir(parent: &Path, prefix: &str) -> io::Result<ScratchDir> {
    sweep(parent, prefix);
    ScratchDir::new_in(parent, prefix)
}

/// What a [`sweep`] did.
#[derive(Debug, Default)]
pub struct Swept {
    /// Entries removed: their owners are gone.
    pub removed: Vec<PathBuf>,
    /// Entries that could not be removed, and why.
    pub failed: Vec<(PathBuf, io::Error)>,
}

impl Swept {
    /// Adds another sweep's outcome to this one.
    pub fn merge(&mut self, other: Swept) {
        self.removed.extend(other.removed);
        self.failed.extend(other.failed);
    }
}

/// Removes the scratch entries `<prefix>*` in `dir` whose owner is gone:
/// those whose lock can be taken (the running owner of any other holds
/// it), and those without a lock once [`UNLOCKED_AGE`] old. A missing
/// `dir` has nothing to sweep.
pub fn sweep(dir: &Path, prefix: &str) -> Swept {
    let mut swept = Swept::default();
    let listing = match std::fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return swept,
        Err(e) => {
            swept.failed.push((dir.to_path_buf(), e));
            return swept;
        }
    };
    let mut names: Vec<OsString> = listing
        .filter_map(Result::ok)
        .map(|entry| entry.file_name())
        .filter(|name| name.as_bytes().starts_with(prefix.as_bytes()))
        .collect();
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let outcome = match entry_of(&path) {
            Some(entry) => sweep_locked(&entry, &path),
            None => sweep_unlocked(&path),
        };
        match outcome {
            Ok(Some(removed)) => swept.removed.push(removed),
            Ok(None) => {}
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {}
            Err(e) => swept.failed.push((path, e)),
        }
    }
    swept
}

/// The entry guarded by `lock`, when its lock is free: the entry is
/// removed, then the lock file; returns the entry's path.
fn sweep_locked(entry: &Path, lock: &Path) -> io::Result<Option<PathBuf>> {
    let file = match File::options().read(true).write(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(lock)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ELOOP) => return Ok(None),
        Err(e) => return Err(e),
    };
    if !file.metadata()?.is_file() {
        return Ok(None);
    }
    match flock(&file, libc::LOCK_EX | libc::LOCK_NB) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
        Err(e) => return Err(e),
    }
    if !still_names(lock, &file)? {
        return Ok(None);
    }
    let existed = remove_entry(entry)?;
    std::fs::remove_file(lock)?;
    Ok(existed.then(|| entry.to_path_buf()))
}

/// An entry: left to its lock if it has one, else removed once old.
fn sweep_unlocked(entry: &Path) -> io::Result<Option<PathBuf>> {
    let mut lock = entry.as_os_str().to_owned();
    lock.push(LOCK_SUFFIX);
    if Path::new(&lock).symlink_metadata().is_ok() {
        return Ok(None);
    }
    let modified = match entry.symlink_metadata() {
        Ok(meta) => meta.modified()?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if SystemTime::now().duration_since(modified).unwrap_or_default() < UNLOCKED_AGE {
        return Ok(None);
    }
    Ok(remove_entry(entry)?.then(|| entry.to_path_buf()))
}

/// Removes a directory tree or a single name (a file, or a symbolic link
/// itself, never what it points to); whether there was anything.
fn remove_entry(path: &Path) -> io::Result<bool> {
    let removed = match path.symlink_metadata() {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) => Err(e),
    };
    match removed {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// The entry a lock file's path guards, if `path` names a lock.
fn entry_of(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.as_bytes().strip_suffix(LOCK_SUFFIX.as_bytes())?;
    Some(path.with_file_name(OsStr::from_bytes(name)))
}

/// Whether `path` still names the open `file` (and not a newer file, or nothing).
fn still_names(path: &Path, file: &File) -> io::Result<bool> {
    let held = file.metadata()?;
    match path.symlink_metadata() {
        Ok(named) => Ok(named.dev() == held.dev() && named.ino() == held.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// `flock(file, operation)`, retried when interrupted.
fn flock(file: &File, operation: libc::c_int) -> io::Result<()> {
    loop {
        // SAFETY: flock on a descriptor `file` owns.
        if unsafe { libc::flock(file.as_raw_fd(), operation) } == 0 {
            return Ok(());
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    /// An entry and its lock as a killed owner leaves them: both present,
    /// the lock free.
    fn abandoned(dir: &Path, name: &str, is_dir: bool) -> PathBuf {
        let path = dir.join(name);
        if is_dir {
            std::fs::create_dir_all(path.join("build/src")).unwrap();
            std::fs::write(path.join("build/src/x.o"), b"object").unwrap();
        } else {
            std::fs::write(&path, b"partial download").unwrap();
        }
        std::fs::write(dir.join(format!("{name}{LOCK_SUFFIX}")), b"").unwrap();
        path
    }

    #[test]
    fn a_scratch_entry_and_its_lock_disappear_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let work = ScratchDir::new_in(dir.path(), ".work-").unwrap();
        std::fs::write(work.path().join("file"), b"x").unwrap();
        assert_eq!(names(dir.path()).len(), 2, "the entry and its lock: {:?}", names(dir.path()));
        drop(work);
        let mut file = ScratchFile::new_in(dir.path(), ".download-").unwrap();
        file.write_all(b"bytes").unwrap();
        drop(file);
        assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));
    }

    #[test]
    fn a_persisted_file_and_a_kept_directory_stay_under_their_new_names() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = ScratchFile::new_in(dir.path(), ".download-").unwrap();
        file.write_all(b"verified").unwrap();
        file.persist(&dir.path().join("tarball")).unwrap();
        let work = ScratchDir::new_in(dir.path(), ".work-").unwrap();
        let kept = work.keep("kept-work-").unwrap();
        assert!(kept.is_dir());
        assert_eq!(names(dir.path()), vec![kept.file_name().unwrap().to_string_lossy().into_owned(), "tarball".into()]);
        assert!(sweep(dir.path(), ".work-").removed.is_empty());
        assert!(kept.is_dir(), "a kept directory is out of the sweep");
    }

    #[test]
    fn the_sweep_removes_what_dead_owners_left_and_spares_live_owners() {
        let dir = tempfile::tempdir().unwrap();
        let live_dir = ScratchDir::new_in(dir.path(), ".work-").unwrap();
        let live_file = ScratchFile::new_in(dir.path(), ".download-").unwrap();
        let dead_dir = abandoned(dir.path(), ".work-dead0001", true);
        let dead_file = abandoned(dir.path(), ".download-dead0002", false);
        std::fs::write(dir.path().join(".work-orphan01.lock"), b"").unwrap();
        std::fs::write(dir.path().join("cache-key.lock"), b"").unwrap();

        let swept = sweep(dir.path(), ".work-");
        assert!(swept.failed.is_empty(), "{:?}", swept.failed);
        assert_eq!(swept.removed, vec![dead_dir.clone()]);
        let swept = sweep(dir.path(), ".download-");
        assert_eq!(swept.removed, vec![dead_file.clone()]);

        assert!(live_dir.path().is_dir() && live_file.path().is_file(), "live entries are kept");
        assert!(!dead_dir.exists() && !dead_file.exists());
        let left = names(dir.path());
        assert_eq!(left.len(), 5, "two live entries with their locks, and the other lock: {left:?}");
        assert!(left.contains(&"cache-key.lock".to_string()));
        drop((live_dir, live_file));
        assert_eq!(names(dir.path()), vec!["cache-key.lock"]);
    }

    #[test]
    fn an_entry_without_a_lock_is_removed_only_when_old() {
        let dir = tempfile::tempdir().unwrap();
        let young = dir.path().join(".work-young001");
        let old = dir.path().join(".work-old00001");
        std::fs::create_dir(&young).unwrap();
        std::fs::create_dir(&old).unwrap();
        let long_ago = SystemTime::now() - UNLOCKED_AGE - Duration::from_secs(60);
        File::open(&old).unwrap().set_modified(long_ago).unwrap();
        assert_eq!(sweep(dir.path(), ".work-").removed, vec![old.clone()]);
        assert!(young.is_dir(), "a young entry without a lock may belong to an older pgbin still running");
    }

    #[test]
    fn the_sweep_never_follows_a_symbolic_link() {
        let dir = tempfile::tempdir().unwrap();
        let precious = tempfile::tempdir().unwrap();
        std::fs::write(precious.path().join("keep-me"), b"x").unwrap();
        let link = dir.path().join(".work-link0001");
        std::os::unix::fs::symlink(precious.path(), &link).unwrap();
        std::fs::write(dir.path().join(".work-link0001.lock"), b"").unwrap();
        let lock_link = dir.path().join(".work-link0002.lock");
        std::os::unix::fs::symlink(precious.path().join("keep-me"), &lock_link).unwrap();
        let swept = sweep(dir.path(), ".work-");
        assert_eq!(swept.removed, vec![link.clone()], "{:?}", swept.failed);
        assert!(link.symlink_metadata().is_err(), "the link itself is removed");
        assert!(precious.path().join("keep-me").is_file(), "its target is untouched");
        assert!(lock_link.symlink_metadata().is_ok(), "a lock that is a link is not taken");
    }

    #[test]
    fn a_lock_taken_by_a_sweep_before_its_owner_is_never_used() {
        let dir = tempfile::tempdir().unwrap();
        let (lock, entry) = OwnerLock::create(dir.path(), ".work-").unwrap();
        // A sweep that opened the lock file before the owner locked it, and
        // removed it: the owner's check finds the name gone.
        std::fs::remove_file(&lock.path).unwrap();
        assert!(!still_names(&lock.path, &lock._file).unwrap());
        assert!(!entry.exists());
    }
}
