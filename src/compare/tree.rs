//! Inputs of `hash` and `diff`: a directory, a Nix store path, a file, or
//! the contents of a `.tar`, `.tar.gz`, `.tar.zst` or NAR file. A tar
//! archive of up to [`memory_limit`] bytes (compressed and not) is read
//! into memory ([`crate::util::archive::memory`]) and never written to
//! disk; a larger one, and a NAR, are streamed into a temporary directory
//! ([`crate::util::archive::extract`], [`crate::nix::nar::unpack`]). Both
//! apply the same rules to hostile members. An archive whose members all
//! sit under one top-level directory (the `postgresql-X.Y.0-<triple>/`
//! convention) is rooted at that directory, as consumers extract it.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::util::archive::memory::{MemoryEntry, MemoryTree};

/// Largest archive, compressed or decompressed, read into memory; larger
/// ones are extracted to disk.
pub const MAX_IN_MEMORY: usize = 1 << 30;

/// The environment variable that lowers (or raises) [`MAX_IN_MEMORY`], in
/// bytes, for machines with less memory to spare.
pub const MEMORY_LIMIT_ENV: &str = "PGBIN_ARCHIVE_MEMORY_LIMIT";

/// The in-memory limit in force: [`MEMORY_LIMIT_ENV`] if set to a number,
/// else [`MAX_IN_MEMORY`].
pub fn memory_limit() -> usize {
    std::env::var(MEMORY_LIMIT_ENV).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(MAX_IN_MEMORY)
}

/// What kind of input a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// A directory (including a store path).
    Directory,
    /// A single regular file or symlink, compared as itself.
    File,
    /// An uncompressed tar archive.
    Tar,
    /// A gzip-compressed tar archive.
    TarGz,
    /// A zstd-compressed tar archive.
    TarZst,
    /// A Nix archive.
    Nar,
}

impl Format {
    /// Whether the input is a tar archive (in any compression).
    pub fn is_tar(self) -> bool {
        matches!(self, Format::Tar | Format::TarGz | Format::TarZst)
    }
}

impl Tree {
    /// Whether the input carries meaningful permission bits: NAR files and
    /// Nix store paths keep only the executable bit (stores make everything
    /// read-only).
    pub fn keeps_modes(&self) -> bool {
        self.format != Format::Nar && !self.source.starts_with(crate::nix::store::store_dir())
    }

    /// The NAR hash of the contents.
    pub fn nar_hash(&self) -> Result<[u8; 32], crate::nix::nar::NarError> {
        match &self.contents {
            Contents::Disk(root) => crate::nix::nar::hash_path(root),
            Contents::Memory(tree) => Ok(crate::nix::nar::hash_memory(tree)),
        }
    }

    /// Every path by its exact relative name (`.` for the root), with what
    /// it is: permission bits all kept with `modes`, else only a file's
    /// executable bit. Names that are not UTF-8 are kept by their bytes.
    pub fn nodes(&self, modes: bool) -> Result<BTreeMap<PathBuf, Node>, TreeError> {
        let mask = |mode: u32, file: bool| {
            if modes {
                mode & 0o7777
            } else if file {
                mode & 0o100
            } else {
                0
            }
        };
        match &self.contents {
            Contents::Memory(tree) => Ok(tree
                .entries()
                .map(|(path, entry)| {
                    let relative = if path.as_os_str().is_empty() { PathBuf::from(".") } else { path.to_path_buf() };
                    let node = match entry {
                        MemoryEntry::Directory { mode } => Node::Directory { mode: mask(*mode, false) },
                        MemoryEntry::File { mode, len, .. } => {
                            Node::File { mode: mask(*mode, true), size: *len as u64 }
                        }
                        MemoryEntry::Symlink { target } => Node::Symlink { target: target.clone() },
                    };
                    (relative, node)
                })
                .collect()),
            Contents::Disk(root) => {
                use std::os::unix::fs::PermissionsExt;
                let mut nodes = BTreeMap::new();
                for entry in walkdir::WalkDir::new(root).follow_links(false) {
                    let entry = entry.map_err(|e| io_error(root, e))?;
                    let relative = entry.path().strip_prefix(root).expect("under root");
                    let relative =
                        if relative.as_os_str().is_empty() { PathBuf::from(".") } else { relative.to_path_buf() };
                    let meta = entry.path().symlink_metadata().map_err(|e| io_error(entry.path(), e))?;
                    let mode = mask(meta.permissions().mode(), meta.is_file());
                    let node = if meta.file_type().is_symlink() {
                        Node::Symlink {
                            target: std::fs::read_link(entry.path()).map_err(|e| io_error(entry.path(), e))?,
                        }
                    } else if meta.is_dir() {
                        Node::Directory { mode }
                    } else if meta.is_file() {
                        Node::File { mode, size: meta.len() }
                    } else {
                        Node::Other
                    };
                    nodes.insert(relative, node);
                }
                Ok(nodes)
            }
        }
    }

    /// The bytes of the file at `relative` (as [`Tree::nodes`] names it).
    pub fn read(&self, relative: &Path) -> Result<Cow<'_, [u8]>, TreeError> {
        match &self.contents {
            Contents::Memory(tree) => {
                let key = if relative == Path::new(".") { Path::new("") } else { relative };
                Ok(Cow::Borrowed(tree.get(key).map_or(&[][..], |entry| tree.contents(entry))))
            }
            Contents::Disk(root) => {
                let path = if relative == Path::new(".") { root.clone() } else { root.join(relative) };
                std::fs::read(&path).map(Cow::Owned).map_err(|e| io_error(&path, e))
            }
        }
    }

    /// Where the contents are on disk, if they are.
    pub fn disk_root(&self) -> Option<&Path> {
        match &self.contents {
            Contents::Disk(root) => Some(root),
            Contents::Memory(_) => None,
        }
    }
}

/// What a path of a tree is, without its contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A directory and its (masked) permission bits.
    Directory {
        /// Permission bits.
        mode: u32,
    },
    /// A regular file, its (masked) permission bits and size.
    File {
        /// Permission bits.
        mode: u32,
        /// Size in bytes.
        size: u64,
    },
    /// A symbolic link and its target.
    Symlink {
        /// The target.
        target: PathBuf,
    },
    /// Anything else (a device, a FIFO, a socket).
    Other,
}

/// Where a tree's contents are.
#[derive(Debug)]
pub enum Contents {
    /// In a directory (the input itself, or where it was extracted).
    Disk(PathBuf),
    /// In memory, read from an archive.
    Memory(MemoryTree),
}

/// Why an input could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// Local I/O, or an unreadable archive.
    #[error("{path}: {message}")]
    Io {
        /// The input.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// An archive that is refused or cannot be read.
    #[error("{path}: {error}")]
    Archive {
        /// The input.
        path: String,
        /// What is wrong with it.
        error: crate::util::archive::ArchiveError,
    },
}

/// Header fields of one tar member, kept while extracting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Path as stored (without a trailing `/`).
    pub path: String,
    /// Modification time.
    pub mtime: u64,
    /// Owner ids.
    pub uid: u64,
    /// Group id.
    pub gid: u64,
    /// Owner name.
    pub uname: Vec<u8>,
    /// Group name.
    pub gname: Vec<u8>,
    /// Mode bits.
    pub mode: u32,
    /// PAX extended records, in order.
    pub pax: Vec<(String, Vec<u8>)>,
}

/// An input opened as a tree.
#[derive(Debug)]
pub struct Tree {
    /// The path given.
    pub source: PathBuf,
    /// Its format.
    pub format: Format,
    /// Where its contents are (the input itself for directories and files).
    pub contents: Contents,
    /// For tar archives: every member's header, in archive order.
    pub members: Vec<Member>,
    _extracted: Option<crate::util::scratch::ScratchDir>,
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const NAR_MAGIC: &[u8] = b"\x0d\0\0\0\0\0\0\0nix-archive-1";

/// Detects the format of `path` from its content.
pub fn detect(path: &Path) -> Result<Format, TreeError> {
    let meta = path.symlink_metadata().map_err(|e| io_error(path, e))?;
    if meta.is_dir() {
        return Ok(Format::Directory);
    }
    if meta.file_type().is_symlink() {
        return Ok(if path.is_dir() { Format::Directory } else { Format::File });
    }
    let mut head = [0u8; 512];
    let mut file = File::open(path).map_err(|e| io_error(path, e))?;
    let mut filled = 0;
    while filled < head.len() {
        match file.read(&mut head[filled..]).map_err(|e| io_error(path, e))? {
            0 => break,
            n => filled += n,
        }
    }
    let head = &head[..filled];
    Ok(if head.starts_with(GZIP_MAGIC) {
        Format::TarGz
    } else if head.starts_with(ZSTD_MAGIC) {
        Format::TarZst
    } else if head.starts_with(NAR_MAGIC) {
        Format::Nar
    } else if head.len() >= 262 && &head[257..262] == b"ustar" {
        Format::Tar
    } else {
        Format::File
    })
}

fn io_error(path: &Path, error: impl std::error::Error + 'static) -> TreeError {
    TreeError::Io { path: path.display().to_string(), message: crate::util::io::explain(&error) }
}

/// A decompressing reader for a tar archive in `format`.
pub fn tar_reader(path: &Path, format: Format) -> Result<Box<dyn Read>, TreeError> {
    tar_reader_of(File::open(path).map_err(|e| io_error(path, e))?, format)
        .map_err(|e| TreeError::Io { path: path.display().to_string(), message: e })
}

/// A decompressing reader over `file`, a tar archive in `format`.
fn tar_reader_of(file: File, format: Format) -> Result<Box<dyn Read>, String> {
    let file = BufReader::with_capacity(1 << 20, file);
    Ok(match format {
        Format::TarGz => Box::new(flate2::bufread::MultiGzDecoder::new(file)),
        Format::TarZst => {
            Box::new(zstd::stream::read::Decoder::with_buffer(file).map_err(|e| crate::util::io::explain(&e))?)
        }
        _ => Box::new(file),
    })
}

/// Opens `path`: a tar archive into memory when it fits in
/// [`memory_limit`], else (and a NAR always) extracted under `scratch`.
pub fn open(path: &Path, scratch: &Path) -> Result<Tree, TreeError> {
    let format = detect(path)?;
    if format.is_tar()
        && let Some(tree) = open_in_memory(path, format)?
    {
        return Ok(tree);
    }
    open_on_disk_as(path, format, scratch)
}

/// Opens `path` with its contents on disk: archives and NARs extracted
/// under `scratch`, for readers that need files.
pub fn open_on_disk(path: &Path, scratch: &Path) -> Result<Tree, TreeError> {
    open_on_disk_as(path, detect(path)?, scratch)
}

fn open_on_disk_as(path: &Path, format: Format, scratch: &Path) -> Result<Tree, TreeError> {
    if matches!(format, Format::Directory | Format::File) {
        return Ok(Tree {
            source: path.to_path_buf(),
            format,
            contents: Contents::Disk(path.to_path_buf()),
            members: Vec::new(),
            _extracted: None,
        });
    }
    let dir = crate::util::scratch::swept_dir(scratch, "pgbin-tree-").map_err(|e| io_error(scratch, e))?;
    let root = dir.path().join("root");
    let mut members = Vec::new();
    if format == Format::Nar {
        let file = BufReader::with_capacity(1 << 20, File::open(path).map_err(|e| io_error(path, e))?);
        crate::nix::nar::unpack(file, &root, &crate::nix::nar::NarLimits::DEFAULT).map_err(|e| io_error(path, e))?;
    } else {
        std::fs::create_dir(&root).map_err(|e| io_error(&root, e))?;
        let extracted = crate::util::archive::extract(tar_reader(path, format)?, &root).map_err(archive_error(path))?;
        members = extracted.into_iter().map(member).collect();
    }
    let root = single_top_directory(&root).unwrap_or(root);
    Ok(Tree { source: path.to_path_buf(), format, contents: Contents::Disk(root), members, _extracted: Some(dir) })
}

/// Reads the tar archive `path` into memory, or `None` when it (or what
/// it decompresses to) is larger than [`memory_limit`].
fn open_in_memory(path: &Path, format: Format) -> Result<Option<Tree>, TreeError> {
    use crate::util::archive::decompress;
    let limit = memory_limit();
    let size = std::fs::metadata(path).map_err(|e| io_error(path, e))?.len();
    if size > limit as u64 {
        return Ok(None);
    }
    let file = File::open(path).map_err(|e| io_error(path, e))?;
    let expected = match format {
        Format::TarGz => decompress::announced_gzip_size(&file).unwrap_or(0).max(size as usize),
        Format::TarZst => (size as usize).saturating_mul(4),
        _ => size as usize,
    };
    let data = decompress::read_bounded(
        tar_reader_of(file, format).map_err(|message| TreeError::Io { path: path.display().to_string(), message })?,
        limit,
        expected,
    )
    .map_err(archive_error(path))?;
    let Some(data) = data else { return Ok(None) };
    let (tree, extracted) = crate::util::archive::memory::read(data).map_err(archive_error(path))?;
    Ok(Some(Tree {
        source: path.to_path_buf(),
        format,
        contents: Contents::Memory(tree.rooted_at_single_directory()),
        members: extracted.into_iter().map(member).collect(),
        _extracted: None,
    }))
}

fn archive_error(path: &Path) -> impl Fn(crate::util::archive::ArchiveError) -> TreeError + '_ {
    move |error| TreeError::Archive { path: path.display().to_string(), error }
}

/// The header fields of an extracted member that `diff` compares.
fn member(extracted: crate::util::archive::Extracted) -> Member {
    let header = &extracted.header;
    Member {
        path: extracted.name,
        mtime: header.mtime().unwrap_or(0),
        uid: header.uid().unwrap_or(0),
        gid: header.gid().unwrap_or(0),
        uname: header.username_bytes().unwrap_or_default().to_vec(),
        gname: header.groupname_bytes().unwrap_or_default().to_vec(),
        mode: header.mode().unwrap_or(0),
        pax: extracted.pax,
    }
}

/// The only entry of `dir`, if it is a directory.
fn single_top_directory(dir: &Path) -> Option<PathBuf> {
    let mut entries = std::fs::read_dir(dir).ok()?;
    let only = entries.next()?.ok()?;
    if entries.next().is_some() || !only.file_type().ok()?.is_dir() {
        return None;
    }
    Some(only.path())
}

crate::util::error::usage_errors!(TreeError);

/// Why an input could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// It could not be opened.
    #[error(transparent)]
    Tree(#[from] TreeError),
    /// Its contents cannot be serialised.
    #[error(transparent)]
    Nar(#[from] crate::nix::nar::NarError),
}

crate::util::error::usage_errors!(HashError);

/// The NAR hash of an input, and what kind of input it was.
#[derive(Debug, Clone, Copy)]
pub struct Hashed {
    /// Its format.
    pub format: Format,
    /// The SHA-256 of its contents' NAR serialisation.
    pub digest: [u8; 32],
}

/// `pgbin hash`: opens `path` as [`open`] does and hashes its contents.
pub fn hash(path: &Path, scratch: &Path) -> Result<Hashed, HashError> {
    let opened = open(path, scratch)?;
    Ok(Hashed { format: opened.format, digest: opened.nar_hash()? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_detected_from_content() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, bytes: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            detect(&path).unwrap()
        };
        assert_eq!(detect(dir.path()).unwrap(), Format::Directory);
        assert_eq!(file("a.tar.gz", &[0x1f, 0x8b, 8, 0]), Format::TarGz);
        assert_eq!(file("b", &[0x28, 0xb5, 0x2f, 0xfd, 0]), Format::TarZst);
        assert_eq!(file("c", NAR_MAGIC), Format::Nar);
        let mut tar = vec![0u8; 512];
        tar[257..262].copy_from_slice(b"ustar");
        assert_eq!(file("d.tar", &tar), Format::Tar);
        assert_eq!(file("e.txt", b"plain"), Format::File);
    }

    #[test]
    fn an_archive_with_one_top_directory_is_rooted_there() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.tar");
        let mut builder = tar::Builder::new(File::create(&path).unwrap());
        let mut header = tar::Header::new_gnu();
        header.set_size(2);
        header.set_mode(0o755);
        builder.append_data(&mut header, "top/bin/tool", &b"hi"[..]).unwrap();
        builder.into_inner().unwrap();
        let tree = open(&path, dir.path()).unwrap();
        assert_eq!(tree.format, Format::Tar);
        assert_eq!(&*tree.read(Path::new("bin/tool")).unwrap(), b"hi");
        let on_disk = open_on_disk(&path, dir.path()).unwrap();
        assert!(on_disk.disk_root().unwrap().ends_with("top"));
        assert!(on_disk.disk_root().unwrap().join("bin/tool").is_file());
        assert_eq!(tree.nar_hash().unwrap(), on_disk.nar_hash().unwrap());
    }
}
