//! Extracting untrusted tar archives. This is the one place pgbin turns an
//! archive it did not make into files, and it refuses (with one line naming
//! the member) anything that could reach outside the extraction directory:
//! absolute names, `..` components, symbolic links whose target is absolute
//! or climbs out, hard links to anything but a regular file it already
//! extracted, device nodes, FIFOs and other special members, and a member
//! path that passes through a link. Files are created new (never opened
//! through an existing name), contents are streamed, and the number of
//! members, the length of names and the bytes written are bounded.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use crate::util::fs::link_stays_inside;
use crate::util::io::{IoError, context};

/// Most members an archive may have.
pub const MAX_MEMBERS: usize = 1_000_000;
/// Longest member name or link target, in bytes (Linux's `PATH_MAX`).
pub const MAX_NAME_BYTES: usize = 4096;
/// Most bytes all extracted files may hold together (a PostgreSQL install
/// is well under 1 GiB; this bounds a decompression bomb).
pub const MAX_TOTAL_BYTES: u64 = 8 << 30;

/// Why an archive was refused or could not be extracted: bad input data
/// (exit 2) whichever command met it.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// A member whose name or link would reach outside the extraction directory.
    #[error("archive member '{member}' {reason}; refusing the archive")]
    Refused {
        /// The member's name as stored.
        member: String,
        /// What is wrong with it.
        reason: String,
    },
    /// More members or bytes than any PostgreSQL archive has.
    #[error("the archive exceeds {0}; refusing it")]
    TooLarge(String),
    /// The archive cannot be read (truncated, corrupt, or not a tar).
    #[error("{0}")]
    Unreadable(String),
    /// Local I/O while writing the extracted files.
    #[error(transparent)]
    Io(#[from] IoError),
}

crate::util::error::usage_errors!(ArchiveError);

/// One extracted member: its confined relative path and its header.
#[derive(Debug, Clone)]
pub struct Extracted {
    /// The path under the extraction root.
    pub path: PathBuf,
    /// The member's name as stored (lossy UTF-8, without a trailing `/`).
    pub name: String,
    /// Its tar header.
    pub header: tar::Header,
    /// Its PAX extended-header records, if any.
    pub pax: Vec<(String, Vec<u8>)>,
}

/// A member's name, for messages: lossy UTF-8 with control characters
/// escaped, so that a name cannot break the one-line message.
fn shown(bytes: &[u8]) -> String {
    one_line(String::from_utf8_lossy(bytes).trim_end_matches('/'))
}

/// `text` with control characters (newlines above all) escaped.
fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

fn refused(member: &[u8], reason: impl Into<String>) -> ArchiveError {
    ArchiveError::Refused { member: shown(member), reason: reason.into() }
}

/// The member's name as a path of normal components under the root, or
/// why it cannot be one.
fn confined_path(name: &[u8]) -> Result<PathBuf, ArchiveError> {
    if name.len() > MAX_NAME_BYTES {
        return Err(refused(&name[..64], format!("has a name longer than {MAX_NAME_BYTES} bytes")));
    }
    if name.contains(&0) {
        return Err(refused(name, "has a NUL byte in its name"));
    }
    let path = Path::new(std::ffi::OsStr::from_bytes(name));
    let mut confined = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => confined.push(part),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(refused(name, "has an absolute name"));
            }
            Component::ParentDir => return Err(refused(name, "has a '..' component")),
        }
    }
    if confined.as_os_str().is_empty() {
        return Err(refused(name, "has an empty name"));
    }
    Ok(confined)
}

/// Creates the directories leading to `relative` under `root`, refusing a
/// path that passes through anything but a real directory (such as a link
/// an earlier member made).
fn make_parents(root: &Path, relative: &Path, member: &[u8]) -> Result<(), ArchiveError> {
    let mut current = root.to_path_buf();
    let parents: Vec<_> = relative.components().collect();
    for part in &parents[..parents.len().saturating_sub(1)] {
        current.push(part);
        match std::fs::symlink_metadata(&current) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(refused(member, "passes through a member that is not a directory")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir(&current).map_err(context(format!("cannot create {}", current.display())))?;
            }
            Err(e) => return Err(context(format!("cannot inspect {}", current.display()))(e).into()),
        }
    }
    Ok(())
}

/// Removes an earlier member at `path` (a later member of the same name
/// replaces it, as tar does); a directory is kept for a directory member.
fn clear(path: &Path, member: &[u8], keep_directory: bool) -> Result<(), ArchiveError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => {
            if keep_directory {
                Ok(())
            } else {
                Err(refused(member, "replaces a directory"))
            }
        }
        Ok(_) => {
            std::fs::remove_file(path).map_err(|e| context(format!("cannot replace {}", path.display()))(e).into())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(context(format!("cannot inspect {}", path.display()))(e).into()),
    }
}

/// A reader that fails once more than `left` bytes have passed.
struct Bounded<'a, R> {
    inner: R,
    left: &'a mut u64,
}

impl<R: Read> Read for Bounded<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > *self.left {
            return Err(std::io::Error::other(format!("the archive exceeds {} of contents", bytes(MAX_TOTAL_BYTES))));
        }
        *self.left -= n as u64;
        Ok(n)
    }
}

fn bytes(n: u64) -> String {
    format!("{} GiB", n >> 30)
}

/// Extracts the tar stream `reader` into `root` (an existing, empty
/// directory that pgbin made) and returns every member with its header, in
/// archive order. Directory modes are applied at the end, as tar does;
/// set-id and sticky bits are never applied.
pub fn extract(reader: impl Read, root: &Path) -> Result<Vec<Extracted>, ArchiveError> {
    let unreadable = |e: std::io::Error| {
        let text = crate::util::io::explain(&e);
        let eof = e.kind() == std::io::ErrorKind::UnexpectedEof || text.contains("unexpected EOF");
        let text = if eof && !text.contains("unexpected end of file") {
            format!("unexpected end of file ({text}); the archive is truncated")
        } else {
            text
        };
        ArchiveError::Unreadable(format!("cannot read the archive: {}", one_line(&text)))
    };
    let mut archive = tar::Archive::new(reader);
    let mut extracted = Vec::new();
    let mut directories = Vec::new();
    let mut left = MAX_TOTAL_BYTES;
    for entry in archive.entries().map_err(unreadable)? {
        let mut entry = entry.map_err(unreadable)?;
        if extracted.len() >= MAX_MEMBERS {
            return Err(ArchiveError::TooLarge(format!("{MAX_MEMBERS} members")));
        }
        let name = entry.path_bytes().into_owned();
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            continue;
        }
        let relative = confined_path(&name)?;
        let pax = match entry.pax_extensions().map_err(unreadable)? {
            Some(records) => records
                .filter_map(Result::ok)
                .map(|r| (r.key().unwrap_or("?").to_string(), r.value_bytes().to_vec()))
                .collect(),
            None => Vec::new(),
        };
        let header = entry.header().clone();
        let mode = header.mode().unwrap_or(0o644) & 0o777;
        make_parents(root, &relative, &name)?;
        let target = root.join(&relative);
        if kind.is_dir() {
            clear(&target, &name, true)?;
            if !target.is_dir() {
                std::fs::create_dir(&target).map_err(context(format!("cannot create {}", target.display())))?;
            }
            directories.push((target, mode));
        } else if kind.is_file() || kind == tar::EntryType::Continuous {
            clear(&target, &name, false)?;
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&target)
                .map_err(context(format!("cannot create {}", target.display())))?;
            let announced = header.size().unwrap_or(0);
            let mut bounded = Bounded { inner: &mut entry, left: &mut left };
            let written = std::io::copy(&mut bounded, &mut file).map_err(|e| match e.kind() {
                std::io::ErrorKind::Other if e.to_string().contains("exceeds") => {
                    ArchiveError::TooLarge(bytes(MAX_TOTAL_BYTES) + " of contents")
                }
                _ if e.raw_os_error().is_some() => context(format!("cannot write {}", target.display()))(e).into(),
                _ => unreadable(e),
            })?;
            if written != announced {
                return Err(ArchiveError::Unreadable(format!(
                    "cannot read the archive: unexpected end of file in member '{}' ({written} of {announced} bytes); the archive is truncated",
                    shown(&name)
                )));
            }
            file.flush().map_err(context(format!("cannot write {}", target.display())))?;
            std::fs::set_permissions(&target, std::os::unix::fs::PermissionsExt::from_mode(mode))
                .map_err(context(format!("cannot chmod {}", target.display())))?;
        } else if kind.is_symlink() {
            let link = entry.link_name_bytes().map(|l| l.into_owned()).unwrap_or_default();
            if link.len() > MAX_NAME_BYTES
                || !link_stays_inside(&relative, Path::new(std::ffi::OsStr::from_bytes(&link)))
            {
                return Err(refused(&name, format!("is a link to '{}', outside the archive", shown(&link))));
            }
            clear(&target, &name, false)?;
            std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&link), &target)
                .map_err(context(format!("cannot create {}", target.display())))?;
        } else if kind.is_hard_link() {
            let link = entry.link_name_bytes().map(|l| l.into_owned()).unwrap_or_default();
            let source = confined_path(&link)
                .map_err(|_| refused(&name, format!("is a hard link to '{}', outside the archive", shown(&link))))?;
            let source = root.join(source);
            let is_file = std::fs::symlink_metadata(&source).is_ok_and(|m| m.is_file());
            if !is_file {
                return Err(refused(&name, format!("is a hard link to '{}', not an earlier file", shown(&link))));
            }
            clear(&target, &name, false)?;
            std::fs::hard_link(&source, &target).map_err(context(format!("cannot create {}", target.display())))?;
        } else {
            let what = match kind {
                tar::EntryType::Char => "a character device",
                tar::EntryType::Block => "a block device",
                tar::EntryType::Fifo => "a FIFO",
                _ => "a special member",
            };
            return Err(refused(&name, format!("is {what}")));
        }
        extracted.push(Extracted { path: relative, name: shown(&name), header, pax });
    }
    for (directory, mode) in directories.into_iter().rev() {
        std::fs::set_permissions(&directory, std::os::unix::fs::PermissionsExt::from_mode(mode))
            .map_err(context(format!("cannot chmod {}", directory.display())))?;
    }
    Ok(extracted)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One raw member: name, type, link target, contents.
    type RawMember<'a> = (&'a [u8], tar::EntryType, &'a [u8], &'a [u8]);

    /// A tar stream with one member of each given (name, type, link, data).
    fn tar_of(members: &[RawMember]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, kind, link, data) in members {
            let mut header = tar::Header::new_ustar();
            header.as_mut_bytes()[..name.len()].copy_from_slice(name);
            header.set_entry_type(*kind);
            header.set_mode(0o755);
            header.set_size(data.len() as u64);
            if !link.is_empty() {
                header.as_mut_bytes()[157..157 + link.len()].copy_from_slice(link);
            }
            header.set_cksum();
            out.extend_from_slice(header.as_bytes());
            out.extend_from_slice(data);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
        out.resize(out.len() + 1024, 0);
        out
    }

    fn extract_bytes(bytes: &[u8]) -> (tempfile::TempDir, Result<Vec<Extracted>, ArchiveError>) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let result = extract(bytes, &root);
        (dir, result)
    }

    #[test]
    fn ordinary_members_are_extracted() {
        let bytes = tar_of(&[
            (b"top/", tar::EntryType::Directory, b"", b""),
            (b"top/bin/tool", tar::EntryType::Regular, b"", b"hi"),
            (b"top/lib/libx.so", tar::EntryType::Symlink, b"libx.so.1", b""),
            (b"top/lib/libx.so.1", tar::EntryType::Regular, b"", b"x"),
            (b"top/lib/again", tar::EntryType::Link, b"top/lib/libx.so.1", b""),
        ]);
        let (dir, result) = extract_bytes(&bytes);
        let members = result.unwrap();
        assert_eq!(members.len(), 5);
        let root = dir.path().join("root");
        assert_eq!(std::fs::read(root.join("top/bin/tool")).unwrap(), b"hi");
        assert_eq!(std::fs::read_link(root.join("top/lib/libx.so")).unwrap(), Path::new("libx.so.1"));
        assert_eq!(std::fs::read(root.join("top/lib/again")).unwrap(), b"x");
    }

    #[test]
    fn escaping_and_special_members_are_refused_by_name() {
        let cases: &[(&[u8], tar::EntryType, &[u8], &str)] = &[
            (b"/etc/x", tar::EntryType::Regular, b"", "absolute"),
            (b"top/../../x", tar::EntryType::Regular, b"", "'..'"),
            (b"top/../../tmp/", tar::EntryType::Directory, b"", "'..'"),
            (b"top/link", tar::EntryType::Symlink, b"/etc", "outside"),
            (b"top/link", tar::EntryType::Symlink, b"../../etc", "outside"),
            (b"top/hard", tar::EntryType::Link, b"/etc/passwd", "outside"),
            (b"top/hard", tar::EntryType::Link, b"top/missing", "not an earlier file"),
            (b"top/dev", tar::EntryType::Char, b"", "character device"),
            (b"top/fifo", tar::EntryType::Fifo, b"", "FIFO"),
        ];
        for (name, kind, link, needle) in cases {
            let bytes = tar_of(&[(name, *kind, link, b"")]);
            let (_dir, result) = extract_bytes(&bytes);
            let error = result.unwrap_err().to_string();
            assert!(error.contains(needle) && error.contains(&shown(name)), "{error}");
        }
    }

    #[test]
    fn a_member_never_goes_through_a_link_an_earlier_member_made() {
        let outside = tempfile::tempdir().unwrap();
        let link = format!("../../../../../../../../..{}", outside.path().display());
        let bytes = tar_of(&[
            (b"top/lib", tar::EntryType::Symlink, b"bin", b""),
            (b"top/lib/libssl.so", tar::EntryType::Regular, b"", b"evil"),
        ]);
        let (dir, result) = extract_bytes(&bytes);
        assert!(result.unwrap_err().to_string().contains("not a directory"));
        assert!(!dir.path().join("root/top/bin/libssl.so").exists());
        let bytes = tar_of(&[(b"top/x", tar::EntryType::Symlink, link.as_bytes(), b"")]);
        let (_dir, result) = extract_bytes(&bytes);
        assert!(result.is_err());
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_truncated_archive_says_so() {
        let mut bytes = tar_of(&[(b"top/file", tar::EntryType::Regular, b"", &[7u8; 4000])]);
        bytes.truncate(1500);
        let (_dir, result) = extract_bytes(&bytes);
        let error = result.unwrap_err().to_string();
        assert!(error.contains("unexpected end of file") && error.contains("truncated"), "{error}");
    }
}
