//! The on-disk home of [`super::walk`]: members become files under a
//! directory pgbin made. Files are created new with `O_NOFOLLOW` (never
//! opened through an existing name), contents are streamed and counted
//! against [`super::MAX_TOTAL_BYTES`], and directory modes are applied at the
//! end, children first, as tar does; set-id and sticky bits are never applied.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::{ArchiveError, Existing, Extracted, Home, MAX_TOTAL_BYTES, too_large, truncated_member, unreadable};
use crate::util::io::context;

/// Extracts the tar stream `reader` into `root` (an existing, empty
/// directory that pgbin made) and returns every member with its header, in
/// archive order.
pub fn extract(reader: impl Read, root: &Path) -> Result<Vec<Extracted>, ArchiveError> {
    let mut archive = tar::Archive::new(reader);
    let mut home = Disk { root: root.to_path_buf(), directories: Vec::new() };
    let members = super::walk(archive.entries().map_err(unreadable)?, &mut home)?;
    // Read on past the end-of-archive blocks to the end of the stream, so
    // that a compressed archive's checksum is verified as when it is read
    // whole ([`super::memory`]): a corrupt archive is refused either way.
    let mut rest = archive.into_inner().take(MAX_TOTAL_BYTES);
    std::io::copy(&mut rest, &mut std::io::sink()).map_err(unreadable)?;
    Ok(members)
}

/// Files under `root`, and the directory modes still to apply.
struct Disk {
    root: PathBuf,
    directories: Vec<(PathBuf, u32)>,
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
            return Err(std::io::Error::other(EXCEEDED));
        }
        *self.left -= n as u64;
        Ok(n)
    }
}

/// The message of [`Bounded`]'s error.
const EXCEEDED: &str = "the archive exceeds its bound of contents";

impl<R: Read> Home<R> for Disk {
    fn existing(&self, relative: &Path) -> Result<Existing, ArchiveError> {
        let path = self.root.join(relative);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => Ok(Existing::Directory),
            Ok(meta) if meta.is_file() => Ok(Existing::File),
            Ok(_) => Ok(Existing::Symlink),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Existing::Nothing),
            Err(e) => Err(context(format!("cannot inspect {}", path.display()))(e).into()),
        }
    }

    fn directory(&mut self, relative: &Path, mode: Option<u32>) -> Result<(), ArchiveError> {
        let path = self.root.join(relative);
        if !path.is_dir() {
            std::fs::create_dir(&path).map_err(context(format!("cannot create {}", path.display())))?;
        }
        if let Some(mode) = mode {
            self.directories.push((path, mode));
        }
        Ok(())
    }

    fn remove(&mut self, relative: &Path) -> Result<(), ArchiveError> {
        let path = self.root.join(relative);
        std::fs::remove_file(&path).map_err(|e| context(format!("cannot replace {}", path.display()))(e).into())
    }

    fn file(
        &mut self,
        relative: &Path,
        mode: u32,
        entry: &mut tar::Entry<R>,
        name: &[u8],
        left: &mut u64,
    ) -> Result<(), ArchiveError> {
        let target = self.root.join(relative);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&target)
            .map_err(context(format!("cannot create {}", target.display())))?;
        let announced = entry.header().size().unwrap_or(0);
        let mut bounded = Bounded { inner: entry, left };
        let written = std::io::copy(&mut bounded, &mut file).map_err(|e| match e.kind() {
            std::io::ErrorKind::Other if e.to_string() == EXCEEDED => too_large(),
            _ if e.raw_os_error().is_some() => context(format!("cannot write {}", target.display()))(e).into(),
            _ => unreadable(e),
        })?;
        if written != announced {
            return Err(truncated_member(name, written, announced));
        }
        file.flush().map_err(context(format!("cannot write {}", target.display())))?;
        std::fs::set_permissions(&target, std::os::unix::fs::PermissionsExt::from_mode(mode))
            .map_err(|e| context(format!("cannot chmod {}", target.display()))(e).into())
    }

    fn symlink(&mut self, relative: &Path, target: &[u8]) -> Result<(), ArchiveError> {
        let path = self.root.join(relative);
        std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(target), &path)
            .map_err(|e| context(format!("cannot create {}", path.display()))(e).into())
    }

    fn hard_link(&mut self, relative: &Path, source: &Path) -> Result<(), ArchiveError> {
        let path = self.root.join(relative);
        std::fs::hard_link(self.root.join(source), &path)
            .map_err(|e| context(format!("cannot create {}", path.display()))(e).into())
    }

    fn finish(&mut self) -> Result<(), ArchiveError> {
        // Children before parents; of two members naming one directory, the later's mode.
        let mut applied = std::collections::HashSet::new();
        for (directory, mode) in self.directories.drain(..).rev() {
            if !applied.insert(directory.clone()) {
                continue;
            }
            std::fs::set_permissions(&directory, std::os::unix::fs::PermissionsExt::from_mode(mode))
                .map_err(context(format!("cannot chmod {}", directory.display())))?;
        }
        Ok(())
    }
}
