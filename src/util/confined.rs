//! Reading and writing files named by data, confined under a base directory.
//!
//! A path that comes from data (a lock's evidence document, a policy's
//! certificate, the data files themselves) must not move a read or a write
//! anywhere else: [`read_confined`] and [`write_confined`] take a relative
//! path without `..`, walk it from the base one component at a time with
//! `openat(O_NOFOLLOW)`, so no symbolic link is ever followed below the base
//! (checked on the opened descriptors, not by a racy look-up first), accept
//! only a regular file at the end (a FIFO is opened non-blocking so the open
//! cannot hang, and refused), and read at most a stated [`Bound`] (through
//! `take(bound + 1)`, so a file that grows while it is read cannot exceed it).
//! The base itself is the caller's choice (`--repo`) and may be a link.
//!
//! [`read_regular_file`] is the same bounded, regular-file-only read for a
//! file the user named on the command line, where following links is right.

use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::util::error::{Classify, FailureKind};
use crate::util::io::IoError;

/// The most bytes a kind of file may hold, and what it is, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    /// The limit in bytes.
    pub bytes: u64,
    /// What kind of file this bounds, with its article ("an evidence document").
    pub what: &'static str,
}

/// A file pgbin refuses to read or write, or could not.
///
/// Every variant is a usage/data error (exit 2): the file was never read, so
/// nothing was verified and nothing failed verification; the data is laid
/// out wrongly, like a missing or malformed file.
#[derive(Debug, thiserror::Error)]
pub enum ConfinedError {
    /// The path is absolute, contains `..`, or is empty.
    #[error("refusing {path}: {reason}; data may name only files inside {base}, by a relative path without `..`")]
    Path {
        /// The path as given.
        path: String,
        /// The directory it must stay in.
        base: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A component of the path is a symbolic link.
    #[error(
        "refusing {path}: {link} is a symbolic link, which could point anywhere; replace it with the real file or directory inside {base}"
    )]
    Link {
        /// The whole path.
        path: String,
        /// The component that is a link ("it" for the file itself).
        link: String,
        /// The directory the path must stay in.
        base: String,
    },
    /// A directory component is something else.
    #[error("refusing {path}: {component} is {kind}, not a directory")]
    NotDirectory {
        /// The whole path.
        path: String,
        /// The component that is not a directory.
        component: String,
        /// What it is instead.
        kind: &'static str,
    },
    /// The file is a FIFO, device, directory or socket.
    #[error("refusing {path}: it is {kind}, not a regular file; replace it with the real file")]
    NotRegular {
        /// The file.
        path: String,
        /// What it is instead.
        kind: &'static str,
    },
    /// The file holds more than its bound.
    #[error(
        "refusing {path}: it holds more than {limit}, the most {what} may hold; check that it is the right file",
        limit = human(.bound.bytes),
        what = .bound.what
    )]
    TooLarge {
        /// The file.
        path: String,
        /// The bound it exceeds.
        bound: Bound,
    },
    /// The operating system refused (missing file, permissions).
    #[error(transparent)]
    Io(#[from] IoError),
}

impl ConfinedError {
    /// Whether the file (or a directory on its way) does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ConfinedError::Io(e) if e.source.kind() == ErrorKind::NotFound)
    }
}

impl Classify for ConfinedError {
    fn kind(&self) -> FailureKind {
        FailureKind::Usage
    }
}

/// Reads the regular file at `relative` under `base`, at most `bound` bytes,
/// following no symbolic link below `base`.
pub fn read_confined(base: &Path, relative: &Path, bound: Bound) -> Result<Vec<u8>, ConfinedError> {
    let walk = Walk::new(base, relative)?;
    let dir = walk.open_parent(false)?;
    let name = walk.last();
    let shown = walk.shown();
    let stat = lstat_at(dir.as_fd(), name).map_err(|e| walk.io("read", e))?;
    refuse_unless_regular(&walk, walk.names.len() - 1, mode_kind(stat.st_mode))?;
    let fd = open_at(dir.as_fd(), name, libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY, 0)
        .map_err(|e| walk.io_or_link("read", walk.names.len() - 1, e))?;
    read_bounded(File::from(fd), &shown, bound)
}

/// [`read_confined`] for UTF-8 text.
pub fn read_confined_text(base: &Path, relative: &Path, bound: Bound) -> Result<String, ConfinedError> {
    let bytes = read_confined(base, relative, bound)?;
    text(bytes, &base.join(relative))
}

/// Writes `bytes` atomically to `relative` under `base` (temporary file in
/// the same directory, then rename), creating missing directories, following
/// no symbolic link below `base` and replacing nothing but a regular file.
pub fn write_confined(base: &Path, relative: &Path, bytes: &[u8]) -> Result<(), ConfinedError> {
    static SERIAL: AtomicU64 = AtomicU64::new(0);
    let walk = Walk::new(base, relative)?;
    let dir = walk.open_parent(true)?;
    let name = walk.last();
    match lstat_at(dir.as_fd(), name) {
        Ok(stat) => refuse_unless_regular(&walk, walk.names.len() - 1, mode_kind(stat.st_mode))?,
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(walk.io("write", e)),
    }
    let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
    let temporary = c_name(OsStr::new(&format!(".pgbin-{}-{serial}.tmp", std::process::id())));
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
    let fd = open_at(dir.as_fd(), &temporary, flags, 0o600).map_err(|e| walk.io("write", e))?;
    let mut file = File::from(fd);
    let written = file
        .write_all(bytes)
        .and_then(|()| crate::util::fs::publishable(&file))
        .and_then(|()| rename_at(dir.as_fd(), &temporary, name));
    if let Err(e) = written {
        // SAFETY: both names are NUL-terminated and `dir` is an open directory.
        unsafe { libc::unlinkat(dir.as_raw_fd(), temporary.as_ptr(), 0) };
        return Err(walk.io("write", e));
    }
    Ok(())
}

/// Reads a file the user named (links followed: the user chose the path),
/// refusing anything but a regular file of at most `bound` bytes.
pub fn read_regular_file(path: &Path, bound: Bound) -> Result<Vec<u8>, ConfinedError> {
    let shown = path.display().to_string();
    let io = |e: std::io::Error| ConfinedError::Io(IoError::new(format!("cannot read {shown}"), e));
    let kind = file_kind(&std::fs::metadata(path).map_err(io)?.file_type());
    if kind != REGULAR {
        return Err(ConfinedError::NotRegular { path: shown, kind });
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(io)?;
    read_bounded(file, &shown, bound)
}

/// [`read_regular_file`] for UTF-8 text.
pub fn read_regular_text(path: &Path, bound: Bound) -> Result<String, ConfinedError> {
    text(read_regular_file(path, bound)?, path)
}

const REGULAR: &str = "a regular file";
const DIRECTORY: &str = "a directory";
const SYMLINK: &str = "a symbolic link";

/// A relative path split into checked components, walked from `base`.
struct Walk<'a> {
    base: &'a Path,
    names: Vec<CString>,
    parts: Vec<&'a OsStr>,
}

impl<'a> Walk<'a> {
    fn new(base: &'a Path, relative: &'a Path) -> Result<Walk<'a>, ConfinedError> {
        let refuse = |reason| ConfinedError::Path {
            path: relative.display().to_string(),
            base: base.display().to_string(),
            reason,
        };
        if relative.is_absolute() {
            return Err(refuse("it is an absolute path"));
        }
        let mut parts = Vec::new();
        for component in relative.components() {
            match component {
                Component::Normal(part) if part.as_bytes().contains(&0) => {
                    return Err(refuse("it contains a NUL byte"));
                }
                Component::Normal(part) => parts.push(part),
                Component::CurDir => {}
                Component::ParentDir => return Err(refuse("it contains `..`")),
                Component::RootDir | Component::Prefix(_) => return Err(refuse("it is an absolute path")),
            }
        }
        if parts.is_empty() {
            return Err(refuse("it names no file"));
        }
        let names = parts.iter().map(|p| c_name(p)).collect();
        Ok(Walk { base, names, parts })
    }

    fn last(&self) -> &CStr {
        self.names.last().expect("a walk has at least one component")
    }

    /// The base joined with the first `count` components.
    fn prefix(&self, count: usize) -> PathBuf {
        self.parts[..count].iter().fold(self.base.to_path_buf(), |path, part| path.join(part))
    }

    fn shown(&self) -> String {
        self.prefix(self.parts.len()).display().to_string()
    }

    fn io(&self, action: &str, error: std::io::Error) -> ConfinedError {
        ConfinedError::Io(IoError::new(format!("cannot {action} {}", self.shown()), error))
    }

    /// The error for a failed open of component `index`: a link if `O_NOFOLLOW`
    /// refused one (`ELOOP`, or `ENOTDIR` for a link to a directory), else I/O.
    fn io_or_link(&self, action: &str, index: usize, error: std::io::Error) -> ConfinedError {
        if matches!(error.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)) {
            return self.link(index);
        }
        self.io(action, error)
    }

    fn link(&self, index: usize) -> ConfinedError {
        let link =
            if index + 1 == self.parts.len() { "it".into() } else { self.prefix(index + 1).display().to_string() };
        ConfinedError::Link { path: self.shown(), link, base: self.base.display().to_string() }
    }

    /// Opens the directory holding the last component, one component at a
    /// time without following links, creating missing ones if `create`.
    fn open_parent(&self, create: bool) -> Result<OwnedFd, ConfinedError> {
        let action = if create { "write" } else { "read" };
        let base = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(self.base)
            .map_err(|e| ConfinedError::Io(IoError::new(format!("cannot open {}", self.base.display()), e)))?;
        let mut dir = OwnedFd::from(base);
        for (index, name) in self.names[..self.names.len() - 1].iter().enumerate() {
            let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;
            let next = match open_at(dir.as_fd(), name, flags, 0) {
                Err(e) if create && e.kind() == ErrorKind::NotFound => {
                    // SAFETY: `name` is NUL-terminated and `dir` is an open directory.
                    if unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), 0o755) } != 0 {
                        let e = std::io::Error::last_os_error();
                        if e.kind() != ErrorKind::AlreadyExists {
                            return Err(self.io(action, e));
                        }
                    }
                    open_at(dir.as_fd(), name, flags, 0)
                }
                other => other,
            };
            dir = match next {
                Ok(fd) => fd,
                Err(e) => {
                    return Err(match lstat_at(dir.as_fd(), name) {
                        Ok(stat) if mode_kind(stat.st_mode) == SYMLINK => self.link(index),
                        Ok(stat) if mode_kind(stat.st_mode) != DIRECTORY => ConfinedError::NotDirectory {
                            path: self.shown(),
                            component: self.prefix(index + 1).display().to_string(),
                            kind: mode_kind(stat.st_mode),
                        },
                        _ => self.io(action, e),
                    });
                }
            };
        }
        Ok(dir)
    }
}

/// Refuses component `index` of `walk` unless `kind` is a regular file.
fn refuse_unless_regular(walk: &Walk, index: usize, kind: &'static str) -> Result<(), ConfinedError> {
    match kind {
        REGULAR => Ok(()),
        SYMLINK => Err(walk.link(index)),
        kind => Err(ConfinedError::NotRegular { path: walk.shown(), kind }),
    }
}

/// Reads an opened file after checking (on the descriptor) that it is a
/// regular file, at most `bound` bytes.
fn read_bounded(file: File, shown: &str, bound: Bound) -> Result<Vec<u8>, ConfinedError> {
    let io = |e: std::io::Error| ConfinedError::Io(IoError::new(format!("cannot read {shown}"), e));
    let metadata = file.metadata().map_err(io)?;
    let kind = file_kind(&metadata.file_type());
    if kind != REGULAR {
        return Err(ConfinedError::NotRegular { path: shown.to_string(), kind });
    }
    let too_large = || ConfinedError::TooLarge { path: shown.to_string(), bound };
    if metadata.len() > bound.bytes {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    file.take(bound.bytes + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > bound.bytes {
        return Err(too_large());
    }
    Ok(bytes)
}

fn text(bytes: Vec<u8>, path: &Path) -> Result<String, ConfinedError> {
    String::from_utf8(bytes).map_err(|_| {
        ConfinedError::Io(IoError::new(
            format!("cannot read {}", path.display()),
            std::io::Error::new(ErrorKind::InvalidData, "it is not UTF-8 text"),
        ))
    })
}

fn c_name(part: &OsStr) -> CString {
    CString::new(part.as_bytes()).expect("NUL bytes are refused before")
}

fn open_at(dir: BorrowedFd, name: &CStr, flags: libc::c_int, mode: libc::c_uint) -> std::io::Result<OwnedFd> {
    // SAFETY: `name` is NUL-terminated and `dir` is an open directory.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags | libc::O_CLOEXEC, mode) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn lstat_at(dir: BorrowedFd, name: &CStr) -> std::io::Result<libc::stat> {
    // SAFETY: an all-zero `stat` is a valid value for fstatat to overwrite.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `name` is NUL-terminated, `dir` is open and `stat` is writable.
    if unsafe { libc::fstatat(dir.as_raw_fd(), name.as_ptr(), &mut stat, libc::AT_SYMLINK_NOFOLLOW) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(stat)
}

fn rename_at(dir: BorrowedFd, from: &CStr, to: &CStr) -> std::io::Result<()> {
    // SAFETY: both names are NUL-terminated and `dir` is an open directory.
    if unsafe { libc::renameat(dir.as_raw_fd(), from.as_ptr(), dir.as_raw_fd(), to.as_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn mode_kind(mode: libc::mode_t) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFREG => REGULAR,
        libc::S_IFDIR => DIRECTORY,
        libc::S_IFLNK => SYMLINK,
        libc::S_IFIFO => "a FIFO",
        libc::S_IFSOCK => "a socket",
        libc::S_IFCHR => "a character device",
        libc::S_IFBLK => "a block device",
        _ => "a special file",
    }
}

fn file_kind(kind: &std::fs::FileType) -> &'static str {
    if kind.is_file() {
        REGULAR
    } else if kind.is_dir() {
        DIRECTORY
    } else if kind.is_symlink() {
        SYMLINK
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else {
        "a special file"
    }
}

/// A byte count for messages: whole MiB or KiB where exact, else bytes.
fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: Bound = Bound { bytes: 8, what: "a test file" };

    fn fifo(path: &Path) {
        let name = CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: `name` is NUL-terminated.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o644) }, 0);
    }

    fn base() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("repo/evidence/witness")).unwrap();
        std::fs::write(dir.path().join("repo/evidence/witness/a.txt"), b"12345678").unwrap();
        std::fs::write(dir.path().join("outside.txt"), b"outside").unwrap();
        dir
    }

    fn read(dir: &tempfile::TempDir, relative: &str) -> Result<Vec<u8>, ConfinedError> {
        read_confined(&dir.path().join("repo"), Path::new(relative), SMALL)
    }

    #[test]
    fn reads_a_regular_file_up_to_its_bound() {
        let dir = base();
        assert_eq!(read(&dir, "evidence/witness/a.txt").unwrap(), b"12345678");
        assert_eq!(read(&dir, "./evidence/witness/a.txt").unwrap(), b"12345678");
        std::fs::write(dir.path().join("repo/evidence/witness/a.txt"), b"123456789").unwrap();
        let err = read(&dir, "evidence/witness/a.txt").unwrap_err();
        assert!(matches!(err, ConfinedError::TooLarge { .. }), "{err}");
        assert!(err.to_string().contains("more than 8 bytes, the most a test file may hold"), "{err}");
    }

    #[test]
    fn refuses_absolute_parent_and_empty_paths() {
        let dir = base();
        for (path, reason) in [
            ("/etc/passwd", "absolute"),
            ("evidence/../../outside.txt", "`..`"),
            ("../outside.txt", "`..`"),
            ("", "names no file"),
            (".", "names no file"),
        ] {
            let err = read(&dir, path).unwrap_err();
            assert!(matches!(err, ConfinedError::Path { .. }) && err.to_string().contains(reason), "{path}: {err}");
        }
    }

    #[test]
    fn refuses_links_at_the_end_and_on_the_way() {
        let dir = base();
        let repo = dir.path().join("repo");
        std::os::unix::fs::symlink(dir.path().join("outside.txt"), repo.join("evidence/witness/link.txt")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", repo.join("evidence/witness/zero")).unwrap();
        std::os::unix::fs::symlink(dir.path(), repo.join("evidence/up")).unwrap();
        std::os::unix::fs::symlink("a.txt", repo.join("evidence/witness/relative.txt")).unwrap();
        for path in [
            "evidence/witness/link.txt",
            "evidence/witness/zero",
            "evidence/up/outside.txt",
            "evidence/witness/relative.txt",
        ] {
            let err = read(&dir, path).unwrap_err();
            assert!(matches!(err, ConfinedError::Link { .. }), "{path}: {err}");
        }
        let err = read(&dir, "evidence/witness/link.txt").unwrap_err();
        assert!(err.to_string().contains("link.txt: it is a symbolic link"), "{err}");
        let err = read(&dir, "evidence/up/outside.txt").unwrap_err();
        assert!(
            err.to_string().contains(&format!("{} is a symbolic link", repo.join("evidence/up").display())),
            "{err}"
        );
    }

    #[test]
    fn refuses_fifos_directories_and_devices_without_blocking() {
        let dir = base();
        fifo(&dir.path().join("repo/evidence/witness/fifo"));
        let err = read(&dir, "evidence/witness/fifo").unwrap_err();
        assert!(err.to_string().contains("it is a FIFO, not a regular file"), "{err}");
        let err = read(&dir, "evidence/witness").unwrap_err();
        assert!(err.to_string().contains("it is a directory"), "{err}");
        let err = read(&dir, "evidence/witness/a.txt/x").unwrap_err();
        assert!(matches!(err, ConfinedError::NotDirectory { .. }), "{err}");
        let err = read_regular_file(Path::new("/dev/zero"), SMALL).unwrap_err();
        assert!(err.to_string().contains("a character device"), "{err}");
        let err = read_regular_file(&dir.path().join("repo/evidence/witness/fifo"), SMALL).unwrap_err();
        assert!(err.to_string().contains("a FIFO"), "{err}");
    }

    #[test]
    fn a_missing_file_is_not_found() {
        let dir = base();
        assert!(read(&dir, "evidence/witness/missing.txt").unwrap_err().is_not_found());
        assert!(read(&dir, "evidence/none/missing.txt").unwrap_err().is_not_found());
    }

    #[test]
    fn a_named_file_may_be_reached_through_a_link() {
        let dir = base();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path().join("outside.txt"), &link).unwrap();
        assert_eq!(read_regular_file(&link, SMALL).unwrap(), b"outside");
    }

    #[test]
    fn writes_create_directories_and_follow_no_link() {
        let dir = base();
        let repo = dir.path().join("repo");
        write_confined(&repo, Path::new("evidence/debian/x.dsc"), b"dsc").unwrap();
        assert_eq!(std::fs::read(repo.join("evidence/debian/x.dsc")).unwrap(), b"dsc");
        write_confined(&repo, Path::new("evidence/debian/x.dsc"), b"again").unwrap();
        assert_eq!(std::fs::read(repo.join("evidence/debian/x.dsc")).unwrap(), b"again");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(repo.join("evidence/debian/x.dsc")).unwrap().permissions().mode() & 0o777, 0o644);
        let names: Vec<_> =
            std::fs::read_dir(repo.join("evidence/debian")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("x.dsc")], "no temporary file is left");

        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, repo.join("evidence/linked")).unwrap();
        let err = write_confined(&repo, Path::new("evidence/linked/y.txt"), b"y").unwrap_err();
        assert!(matches!(err, ConfinedError::Link { .. }), "{err}");
        std::os::unix::fs::symlink(dir.path().join("outside.txt"), repo.join("evidence/witness/over.txt")).unwrap();
        let err = write_confined(&repo, Path::new("evidence/witness/over.txt"), b"y").unwrap_err();
        assert!(matches!(err, ConfinedError::Link { .. }), "{err}");
        assert!(write_confined(&repo, Path::new("../escape.txt"), b"y").is_err());
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0, "nothing was written through the link");
        assert_eq!(std::fs::read(dir.path().join("outside.txt")).unwrap(), b"outside");
        assert!(!dir.path().join("escape.txt").exists());
    }

    #[test]
    fn sizes_read_as_units() {
        assert_eq!(human(1 << 20), "1 MiB");
        assert_eq!(human(16 << 20), "16 MiB");
        assert_eq!(human(4096), "4 KiB");
        assert_eq!(human(8), "8 bytes");
    }
}
