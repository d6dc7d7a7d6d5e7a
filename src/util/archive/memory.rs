//! The in-memory home of [`super::walk`]: a tar archive's tree held as a
//! map from path to entry, each regular file's contents being a range of
//! the decompressed archive itself (no copy). Paths sort component by
//! component, which is the order NAR serialises a directory's entries in,
//! so a walk of the map in order is a walk of the NAR.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::{ArchiveError, Existing, Extracted, Home, truncated_member, unreadable};

/// The mode of a directory no member named (the root, or a parent of a
/// member that comes before it or without it).
pub const IMPLIED_DIRECTORY_MODE: u32 = 0o755;

/// One path of a [`MemoryTree`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemoryEntry {
    /// A directory and its permission bits.
    Directory {
        /// Permission bits.
        mode: u32,
    },
    /// A regular file: permission bits and where its bytes are.
    File {
        /// Permission bits.
        mode: u32,
        /// Offset of its contents in the archive.
        start: usize,
        /// Length of its contents.
        len: usize,
    },
    /// A symbolic link and its target.
    Symlink {
        /// The target, as stored.
        target: PathBuf,
    },
}

/// A tree read from an archive, held in memory.
pub struct MemoryTree {
    data: Vec<u8>,
    entries: BTreeMap<PathBuf, MemoryEntry>,
}

impl std::fmt::Debug for MemoryTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MemoryTree({} paths, {} bytes)", self.entries.len(), self.data.len())
    }
}

impl MemoryTree {
    /// Every path (the root is the empty path, first) with its entry, in
    /// NAR order.
    pub fn entries(&self) -> impl Iterator<Item = (&Path, &MemoryEntry)> {
        self.entries.iter().map(|(path, entry)| (path.as_path(), entry))
    }

    /// The entry at `relative` (empty for the root).
    pub fn get(&self, relative: &Path) -> Option<&MemoryEntry> {
        self.entries.get(relative)
    }

    /// The contents of a file entry (empty for other entries).
    pub fn contents(&self, entry: &MemoryEntry) -> &[u8] {
        match entry {
            MemoryEntry::File { start, len, .. } => &self.data[*start..*start + *len],
            _ => &[],
        }
    }

    /// Whether `other` has the same NAR serialisation: the same paths, each
    /// of the same kind, files with the same executable bit and bytes,
    /// links with the same target. Compares bytes directly, which is much
    /// cheaper than hashing `other` too.
    pub fn same_nar(&self, other: &MemoryTree) -> bool {
        self.entries.len() == other.entries.len()
            && self.entries.iter().zip(&other.entries).all(|((path, mine), (their_path, theirs))| {
                path == their_path
                    && match (mine, theirs) {
                        (MemoryEntry::Directory { .. }, MemoryEntry::Directory { .. }) => true,
                        (MemoryEntry::File { mode: a, .. }, MemoryEntry::File { mode: b, .. }) => {
                            a & 0o100 == b & 0o100 && self.contents(mine) == other.contents(theirs)
                        }
                        (MemoryEntry::Symlink { target: a }, MemoryEntry::Symlink { target: b }) => a == b,
                        _ => false,
                    }
            })
    }

    /// The tree rooted at its only top-level entry when that is a
    /// directory (the `postgresql-X.Y.0-<triple>/` convention), as
    /// consumers extract it; else the tree itself.
    pub fn rooted_at_single_directory(self) -> MemoryTree {
        let mut top = self.entries.keys().filter(|p| p.components().count() == 1);
        let (Some(only), None) = (top.next(), top.next()) else { return self };
        if !matches!(self.entries.get(only), Some(MemoryEntry::Directory { .. })) {
            return self;
        }
        let only = only.clone();
        let entries = self
            .entries
            .into_iter()
            .filter_map(|(path, entry)| Some((path.strip_prefix(&only).ok()?.to_path_buf(), entry)))
            .collect();
        MemoryTree { data: self.data, entries }
    }
}

/// Reads the tar stream `data` (already decompressed) into a tree under
/// [`super::walk`]'s rules, and returns it with every member's header.
pub fn read(data: Vec<u8>) -> Result<(MemoryTree, Vec<Extracted>), ArchiveError> {
    let (entries, members) = {
        let mut archive = tar::Archive::new(Bounds { cursor: std::io::Cursor::new(&data[..]) });
        let mut home = Memory {
            entries: BTreeMap::from([(PathBuf::new(), MemoryEntry::Directory { mode: IMPLIED_DIRECTORY_MODE })]),
            len: data.len(),
        };
        let members = super::walk(archive.entries_with_seek().map_err(unreadable)?, &mut home)?;
        (home.entries, members)
    };
    Ok((MemoryTree { data, entries }, members))
}

/// A cursor over the archive that refuses to seek past its end (where a
/// reader would have met the end of the file while skipping a member),
/// so that a member announcing more than the archive holds is a
/// truncation, as in a streamed read, and never a silent end.
struct Bounds<'a> {
    cursor: std::io::Cursor<&'a [u8]>,
}

impl Read for Bounds<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.cursor.read(buf)
    }
}

impl Seek for Bounds<'_> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        let len = self.cursor.get_ref().len() as u64;
        let target = match pos {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(delta) => self.cursor.position().checked_add_signed(delta),
            SeekFrom::End(delta) => len.checked_add_signed(delta),
        };
        match target {
            Some(target) if target <= len => self.cursor.seek(SeekFrom::Start(target)),
            _ => Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "unexpected EOF during skip")),
        }
    }
}

/// The map being built, and the archive's length.
struct Memory {
    entries: BTreeMap<PathBuf, MemoryEntry>,
    len: usize,
}

impl<R: Read> Home<R> for Memory {
    fn existing(&self, relative: &Path) -> Result<Existing, ArchiveError> {
        Ok(match self.entries.get(relative) {
            None => Existing::Nothing,
            Some(MemoryEntry::Directory { .. }) => Existing::Directory,
            Some(MemoryEntry::File { .. }) => Existing::File,
            Some(MemoryEntry::Symlink { .. }) => Existing::Symlink,
        })
    }

    fn directory(&mut self, relative: &Path, mode: Option<u32>) -> Result<(), ArchiveError> {
        match (self.entries.get_mut(relative), mode) {
            // A later member naming a directory sets its mode, as tar does.
            (Some(MemoryEntry::Directory { mode: existing }), Some(mode)) => *existing = mode,
            (Some(MemoryEntry::Directory { .. }), None) => {}
            _ => {
                let mode = mode.unwrap_or(IMPLIED_DIRECTORY_MODE);
                self.entries.insert(relative.to_path_buf(), MemoryEntry::Directory { mode });
            }
        }
        Ok(())
    }

    fn remove(&mut self, relative: &Path) -> Result<(), ArchiveError> {
        self.entries.remove(relative);
        Ok(())
    }

    fn file(
        &mut self,
        relative: &Path,
        mode: u32,
        entry: &mut tar::Entry<R>,
        name: &[u8],
        left: &mut u64,
    ) -> Result<(), ArchiveError> {
        let announced = entry.header().size().unwrap_or(0);
        let start = entry.raw_file_position();
        let available = (self.len as u64).saturating_sub(start);
        if announced > available {
            return Err(truncated_member(name, available, announced));
        }
        *left = left.checked_sub(announced).ok_or_else(super::too_large)?;
        let (start, len) = (start as usize, announced as usize);
        self.entries.insert(relative.to_path_buf(), MemoryEntry::File { mode, start, len });
        Ok(())
    }

    fn symlink(&mut self, relative: &Path, target: &[u8]) -> Result<(), ArchiveError> {
        let target = PathBuf::from(std::ffi::OsStr::from_bytes(target));
        self.entries.insert(relative.to_path_buf(), MemoryEntry::Symlink { target });
        Ok(())
    }

    fn hard_link(&mut self, relative: &Path, source: &Path) -> Result<(), ArchiveError> {
        let entry = self.entries.get(source).cloned().expect("the walk checked that the source is a file");
        self.entries.insert(relative.to_path_buf(), entry);
        Ok(())
    }

    fn finish(&mut self) -> Result<(), ArchiveError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::archive::tests::tar_of;
    use tar::EntryType::{Directory, Link, Regular, Symlink};

    #[test]
    fn members_become_entries_in_nar_order_and_later_members_replace_earlier_ones() {
        let bytes = tar_of(&[
            (b"./", Directory, b"", b""),
            (b"top/a-c", Regular, b"", b"dash"),
            (b"top/a/b", Regular, b"", b"nested"),
            (b"top/a/b", Regular, b"", b"again"),
            (b"top/link", Symlink, b"a/b", b""),
            (b"top/hard", Link, b"top/a-c", b""),
        ]);
        let (tree, members) = read(bytes).unwrap();
        assert_eq!(members.len(), 6);
        let paths: Vec<String> = tree.entries().map(|(p, _)| p.display().to_string()).collect();
        assert_eq!(paths, ["", "top", "top/a", "top/a/b", "top/a-c", "top/hard", "top/link"]);
        let contents = |p: &str| tree.contents(tree.get(Path::new(p)).unwrap()).to_vec();
        assert_eq!(contents("top/a/b"), b"again");
        assert_eq!(contents("top/hard"), b"dash");
        let tree = tree.rooted_at_single_directory();
        assert_eq!(tree.get(Path::new("link")), Some(&MemoryEntry::Symlink { target: "a/b".into() }));
    }

    #[test]
    fn a_member_announcing_more_than_the_archive_holds_is_a_truncation() {
        let mut bytes = tar_of(&[(b"top/file", Regular, b"", &[7u8; 4000])]);
        bytes.truncate(512 + 2000);
        let error = read(bytes).unwrap_err().to_string();
        assert!(error.contains("unexpected end of file"), "{error}");
        // A directory announcing a size skips past the end: also a truncation.
        let mut header = tar::Header::new_ustar();
        header.set_path("top/").unwrap();
        header.set_entry_type(Directory);
        header.set_size(1 << 40);
        header.set_cksum();
        let error = read(header.as_bytes().to_vec()).unwrap_err().to_string();
        assert!(error.contains("unexpected end of file") || error.contains("EOF"), "{error}");
    }
}
