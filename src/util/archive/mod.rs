//! Reading untrusted tar archives. This is the one place pgbin turns an
//! archive it did not make into a tree, and one walk ([`walk`]) applies the
//! rules whichever the tree's home: it refuses (with one line naming the
//! member) anything that could reach outside the tree: absolute names, `..`
//! components, symbolic links whose target is absolute or climbs out, hard
//! links to anything but a regular file already read, device nodes, FIFOs
//! and other special members, and a member path that passes through a link.
//! The number of members, the length of names and the bytes held are bounded.
//!
//! Two homes: [`extract`] writes files into a directory pgbin made (created
//! new, never opened through an existing name, contents streamed), and
//! [`memory::read`] keeps the tree in memory, file contents being ranges of
//! the decompressed archive ([`decompress`]), so that `hash` and `diff`
//! never write an archive they were given to disk.

pub mod decompress;
mod extract;
pub mod memory;

pub use extract::extract;

use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use crate::util::fs::link_stays_inside;
use crate::util::io::IoError;

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

pub(crate) fn refused(member: &[u8], reason: impl Into<String>) -> ArchiveError {
    ArchiveError::Refused { member: shown(member), reason: reason.into() }
}

/// The member's name as a path of normal components under the root (empty
/// for the root itself, as in `./`), or why it cannot be one.
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
    Ok(confined)
}

/// The error for a tree whose files together exceed [`MAX_TOTAL_BYTES`].
pub(crate) fn too_large() -> ArchiveError {
    ArchiveError::TooLarge(format!("{} GiB of contents", MAX_TOTAL_BYTES >> 30))
}

/// What a path under the tree's root currently is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Existing {
    /// Nothing yet.
    Nothing,
    /// A directory.
    Directory,
    /// A regular file.
    File,
    /// A symbolic link.
    Symlink,
}

/// Where a walk puts the members it accepts. The walk has already checked
/// every rule: a target only records what it is told.
pub(crate) trait Home<R: Read> {
    /// What `relative` is now.
    fn existing(&self, relative: &Path) -> Result<Existing, ArchiveError>;
    /// Makes the directory `relative` (its parent exists), or records the
    /// mode of one that exists; `mode` is `None` for a parent no member named.
    fn directory(&mut self, relative: &Path, mode: Option<u32>) -> Result<(), ArchiveError>;
    /// Removes the non-directory at `relative`, which a later member replaces.
    fn remove(&mut self, relative: &Path) -> Result<(), ArchiveError>;
    /// Stores the regular file `relative` from `entry`, whose size the
    /// header announces; `left` is what all files may still hold.
    fn file(
        &mut self,
        relative: &Path,
        mode: u32,
        entry: &mut tar::Entry<R>,
        name: &[u8],
        left: &mut u64,
    ) -> Result<(), ArchiveError>;
    /// Makes the symbolic link `relative` pointing to `target`.
    fn symlink(&mut self, relative: &Path, target: &[u8]) -> Result<(), ArchiveError>;
    /// Makes `relative` another name of the regular file `source`.
    fn hard_link(&mut self, relative: &Path, source: &Path) -> Result<(), ArchiveError>;
    /// Called once after the last member.
    fn finish(&mut self) -> Result<(), ArchiveError>;
}

/// Turns a read error into [`ArchiveError::Unreadable`], naming a truncation.
pub(crate) fn unreadable(e: std::io::Error) -> ArchiveError {
    let text = crate::util::io::explain(&e);
    let eof = e.kind() == std::io::ErrorKind::UnexpectedEof || text.contains("unexpected EOF");
    let text = if eof && !text.contains("unexpected end of file") {
        format!("unexpected end of file ({text}); the archive is truncated")
    } else {
        text
    };
    ArchiveError::Unreadable(format!("cannot read the archive: {}", one_line(&text)))
}

/// The error for a member whose contents end before its announced size.
pub(crate) fn truncated_member(name: &[u8], got: u64, announced: u64) -> ArchiveError {
    ArchiveError::Unreadable(format!(
        "cannot read the archive: unexpected end of file in member '{}' ({got} of {announced} bytes); the archive is truncated",
        shown(name)
    ))
}

/// Makes the directories leading to `relative`, refusing a path that
/// passes through anything but a directory (such as a link an earlier
/// member made).
fn make_parents<R: Read>(home: &mut impl Home<R>, relative: &Path, member: &[u8]) -> Result<(), ArchiveError> {
    let mut current = PathBuf::new();
    let parents: Vec<_> = relative.components().collect();
    for part in &parents[..parents.len().saturating_sub(1)] {
        current.push(part);
        match home.existing(&current)? {
            Existing::Directory => {}
            Existing::Nothing => home.directory(&current, None)?,
            Existing::File | Existing::Symlink => {
                return Err(refused(member, "passes through a member that is not a directory"));
            }
        }
    }
    Ok(())
}

/// Clears the way for a non-directory member at `relative`: an earlier
/// file or link of that name is replaced, as tar does; a directory is not.
fn clear<R: Read>(home: &mut impl Home<R>, relative: &Path, member: &[u8]) -> Result<(), ArchiveError> {
    match home.existing(relative)? {
        Existing::Nothing => Ok(()),
        Existing::Directory => Err(refused(member, "replaces a directory")),
        Existing::File | Existing::Symlink => home.remove(relative),
    }
}

/// Reads every member of `entries` into `home` under the rules above and
/// returns each with its header, in archive order.
pub(crate) fn walk<R: Read>(
    entries: tar::Entries<'_, R>,
    home: &mut impl Home<R>,
) -> Result<Vec<Extracted>, ArchiveError> {
    let mut extracted = Vec::new();
    let mut left = MAX_TOTAL_BYTES;
    for entry in entries {
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
        if relative.as_os_str().is_empty() && !kind.is_dir() {
            return Err(refused(&name, "has an empty name"));
        }
        let pax = match entry.pax_extensions().map_err(unreadable)? {
            Some(records) => records
                .filter_map(Result::ok)
                .map(|r| (r.key().unwrap_or("?").to_string(), r.value_bytes().to_vec()))
                .collect(),
            None => Vec::new(),
        };
        let header = entry.header().clone();
        let mode = header.mode().unwrap_or(0o644) & 0o777;
        make_parents(home, &relative, &name)?;
        if kind.is_dir() {
            if matches!(home.existing(&relative)?, Existing::File | Existing::Symlink) {
                home.remove(&relative)?;
            }
            home.directory(&relative, Some(mode))?;
        } else if kind.is_file() || kind == tar::EntryType::Continuous {
            clear(home, &relative, &name)?;
            home.file(&relative, mode, &mut entry, &name, &mut left)?;
        } else if kind.is_symlink() {
            let link = entry.link_name_bytes().map(|l| l.into_owned()).unwrap_or_default();
            if link.len() > MAX_NAME_BYTES
                || !link_stays_inside(&relative, Path::new(std::ffi::OsStr::from_bytes(&link)))
            {
                return Err(refused(&name, format!("is a link to '{}', outside the archive", shown(&link))));
            }
            clear(home, &relative, &name)?;
            home.symlink(&relative, &link)?;
        } else if kind.is_hard_link() {
            let link = entry.link_name_bytes().map(|l| l.into_owned()).unwrap_or_default();
            let source = confined_path(&link)
                .ok()
                .filter(|p| !p.as_os_str().is_empty())
                .ok_or_else(|| refused(&name, format!("is a hard link to '{}', outside the archive", shown(&link))))?;
            if home.existing(&source)? != Existing::File {
                return Err(refused(&name, format!("is a hard link to '{}', not an earlier file", shown(&link))));
            }
            clear(home, &relative, &name)?;
            home.hard_link(&relative, &source)?;
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
    home.finish()?;
    Ok(extracted)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// One raw member: name, type, link target, contents.
    pub(crate) type RawMember<'a> = (&'a [u8], tar::EntryType, &'a [u8], &'a [u8]);

    /// A tar stream with one member of each given (name, type, link, data).
    pub(crate) fn tar_of(members: &[RawMember]) -> Vec<u8> {
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
            let in_memory = memory::read(bytes).unwrap_err().to_string();
            assert_eq!(in_memory, error, "memory and disk refuse alike");
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
        assert!(memory::read(bytes).unwrap_err().to_string().contains("not a directory"));
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
        let error = memory::read(bytes).unwrap_err().to_string();
        assert!(error.contains("unexpected end of file") && error.contains("truncated"), "{error}");
    }
}
