//! Inputs of `hash` and `diff`: a directory, a Nix store path, a file, or
//! the contents of a `.tar`, `.tar.gz`, `.tar.zst` or NAR file. Archives and
//! NARs are streamed to disk into a temporary directory (never held in
//! memory); an archive whose members all sit under one top-level directory
//! (the `postgresql-X.Y.0-<triple>/` convention) is rooted at that
//! directory, as consumers extract it.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use serde::Serialize;

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

/// An input materialised as a tree on disk.
#[derive(Debug)]
pub struct Tree {
    /// The path given.
    pub source: PathBuf,
    /// Its format.
    pub format: Format,
    /// Where its contents are (the input itself for directories and files).
    pub root: PathBuf,
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
    let file = BufReader::with_capacity(1 << 20, File::open(path).map_err(|e| io_error(path, e))?);
    Ok(match format {
        Format::TarGz => Box::new(flate2::read::MultiGzDecoder::new(file)),
        Format::TarZst => Box::new(zstd::stream::read::Decoder::with_buffer(file).map_err(|e| io_error(path, e))?),
        _ => Box::new(file),
    })
}

/// Opens `path`, extracting archives and NARs under `scratch`.
pub fn open(path: &Path, scratch: &Path) -> Result<Tree, TreeError> {
    let format = detect(path)?;
    if matches!(format, Format::Directory | Format::File) {
        return Ok(Tree {
            source: path.to_path_buf(),
            format,
            root: path.to_path_buf(),
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
        members = extract_tar(path, format, &root)?;
    }
    let root = single_top_directory(&root).unwrap_or(root);
    Ok(Tree { source: path.to_path_buf(), format, root, members, _extracted: Some(dir) })
}

/// Extracts a tar archive into `root` in one pass through
/// [`crate::util::archive::extract`] (which refuses members that reach
/// outside `root`), keeping each member's header.
fn extract_tar(path: &Path, format: Format, root: &Path) -> Result<Vec<Member>, TreeError> {
    let extracted = crate::util::archive::extract(tar_reader(path, format)?, root)
        .map_err(|error| TreeError::Archive { path: path.display().to_string(), error })?;
    Ok(extracted
        .into_iter()
        .map(|member| {
            let header = &member.header;
            Member {
                path: member.name,
                mtime: header.mtime().unwrap_or(0),
                uid: header.uid().unwrap_or(0),
                gid: header.gid().unwrap_or(0),
                uname: header.username_bytes().unwrap_or_default().to_vec(),
                gname: header.groupname_bytes().unwrap_or_default().to_vec(),
                mode: header.mode().unwrap_or(0),
                pax: member.pax,
            }
        })
        .collect())
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
        assert!(tree.root.ends_with("top"));
        assert!(tree.root.join("bin/tool").is_file());
    }
}
