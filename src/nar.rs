//! NAR hashing: the SHA-256 of a tree's Nix archive serialisation, the value
//! `nix hash path` prints and the one Nix records for store paths.
//!
//! The serialisation is written here rather than with nix-nar's encoder
//! because hashing is a hot path: one thread walks the tree and reads files
//! in 1 MiB blocks while another hashes, through a bounded channel (memory
//! stays bounded whatever the tree's size). nix-nar remains the reference:
//! a test checks that both produce the same bytes, and `tests/repro.rs`
//! checks the hash against the real `nix hash path`. NAR inputs are decoded
//! with nix-nar.

use std::io::{Read, Write};
use std::path::Path;

use base64::Engine;
use sha2::{Digest, Sha256};

/// Why a NAR hash could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum NarError {
    /// Reading the tree failed, or it holds something NAR cannot represent.
    #[error("cannot serialise {path} as a NAR: {message}")]
    Encode {
        /// The tree.
        path: String,
        /// What went wrong.
        message: String,
    },
}

/// Streams the NAR serialisation of `path` (a directory, file or symlink)
/// into SHA-256.
pub fn hash_path(path: &Path) -> Result<[u8; 32], NarError> {
    hash_comparing(path, None, false).map(|(digest, _)| digest)
}

/// Hashes `path` like [`hash_path`] and, in the same pass, compares it with
/// `other`: names, file types, symlink targets, contents, and permission
/// bits (all of them with `modes`, else only what NAR keeps: the owner's
/// executable bit). Returns the digest and whether the two trees are
/// identical (then `other` has the same NAR hash). Comparison stops at the
/// first difference; hashing always completes.
pub fn hash_comparing(path: &Path, other: Option<&Path>, modes: bool) -> Result<([u8; 32], bool), NarError> {
    let (sender, receiver) = std::sync::mpsc::sync_channel::<Vec<u8>>(8);
    let hasher = std::thread::spawn(move || {
        let mut hasher = Sha256::new();
        for block in receiver {
            hasher.update(&block);
        }
        <[u8; 32]>::from(hasher.finalize())
    });
    let mut writer = BlockWriter { block: Vec::with_capacity(BLOCK), sender };
    let mut state = Walk { buffer: vec![0u8; BLOCK], other_buffer: Vec::new(), same: other.is_some(), modes };
    if other.is_some() {
        state.other_buffer = vec![0u8; BLOCK];
    }
    let written = token(&mut writer, b"nix-archive-1")
        .and_then(|_| write_node(path, other, &mut writer, &mut state))
        .and_then(|_| writer.flush());
    drop(writer);
    let digest = hasher.join().expect("the hashing thread does not panic");
    written.map_err(|e| NarError::Encode { path: path.display().to_string(), message: e.to_string() })?;
    Ok((digest, state.same))
}

/// Writes the NAR serialisation of `path` to `out`.
pub fn write_nar(path: &Path, out: &mut impl Write) -> std::io::Result<()> {
    token(out, b"nix-archive-1")?;
    let mut state = Walk { buffer: vec![0u8; BLOCK], other_buffer: Vec::new(), same: false, modes: false };
    write_node(path, None, out, &mut state)
}

/// Buffers of one serialisation, and whether the mirror tree still matches.
struct Walk {
    buffer: Vec<u8>,
    other_buffer: Vec<u8>,
    same: bool,
    modes: bool,
}

const BLOCK: usize = 1 << 20;

/// Collects bytes into blocks and sends each full one to the hasher.
struct BlockWriter {
    block: Vec<u8>,
    sender: std::sync::mpsc::SyncSender<Vec<u8>>,
}

impl Write for BlockWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let room = BLOCK - self.block.len();
        let n = bytes.len().min(room);
        self.block.extend_from_slice(&bytes[..n]);
        if self.block.len() == BLOCK {
            self.flush()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.block.is_empty() {
            return Ok(());
        }
        let full = std::mem::replace(&mut self.block, Vec::with_capacity(BLOCK));
        self.sender.send(full).map_err(|_| std::io::Error::other("the hashing thread stopped"))
    }
}

/// A NAR string: little-endian length, bytes, zero padding to 8.
fn token(out: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    out.write_all(&(bytes.len() as u64).to_le_bytes())?;
    out.write_all(bytes)?;
    out.write_all(&[0u8; 8][..(8 - bytes.len() % 8) % 8])
}

/// Copies `from` to `out` in large reads (few system calls on big files),
/// comparing with `mirror` as long as `state.same` holds.
fn copy_contents(
    from: &mut impl Read,
    mut mirror: Option<std::fs::File>,
    out: &mut impl Write,
    state: &mut Walk,
) -> std::io::Result<u64> {
    let mut total = 0;
    loop {
        let n = match from.read(&mut state.buffer) {
            Ok(0) => {
                if let Some(file) = mirror.as_mut()
                    && state.same
                    && file.read(&mut state.other_buffer[..1])? != 0
                {
                    state.same = false;
                }
                return Ok(total);
            }
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        out.write_all(&state.buffer[..n])?;
        if let Some(file) = mirror.as_mut()
            && state.same
            && (file.read_exact(&mut state.other_buffer[..n]).is_err() || state.other_buffer[..n] != state.buffer[..n])
        {
            state.same = false;
        }
        total += n as u64;
    }
}

/// Whether `other` has the same type, permission bits and (for symlinks)
/// target as `path` with metadata `meta`.
fn same_node(path: &Path, meta: &std::fs::Metadata, other: &Path, modes: bool) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Ok(theirs) = other.symlink_metadata() else { return false };
    if meta.file_type() != theirs.file_type() {
        return false;
    }
    if meta.file_type().is_symlink() {
        return std::fs::read_link(path).ok() == std::fs::read_link(other).ok();
    }
    let mask = if modes {
        0o7777
    } else if meta.is_file() {
        0o100
    } else {
        0
    };
    meta.permissions().mode() & mask == theirs.permissions().mode() & mask
        && (!meta.is_file() || meta.len() == theirs.len())
}

fn write_node(path: &Path, other: Option<&Path>, out: &mut impl Write, state: &mut Walk) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;
    let meta = path.symlink_metadata()?;
    if state.same && other.is_some_and(|o| !same_node(path, &meta, o, state.modes)) {
        state.same = false;
    }
    let other = other.filter(|_| state.same);
    token(out, b"(")?;
    token(out, b"type")?;
    if meta.file_type().is_symlink() {
        token(out, b"symlink")?;
        token(out, b"target")?;
        token(out, std::fs::read_link(path)?.as_os_str().as_bytes())?;
    } else if meta.is_file() {
        token(out, b"regular")?;
        if meta.permissions().mode() & 0o100 != 0 {
            token(out, b"executable")?;
            token(out, b"")?;
        }
        token(out, b"contents")?;
        let size = meta.len();
        out.write_all(&size.to_le_bytes())?;
        let mirror = match other {
            Some(o) => Some(std::fs::File::open(o)?),
            None => None,
        };
        let copied = copy_contents(&mut std::fs::File::open(path)?.take(size), mirror, out, state)?;
        if copied != size {
            return Err(std::io::Error::other(format!("{} changed size while being read", path.display())));
        }
        out.write_all(&[0u8; 8][..((8 - size % 8) % 8) as usize])?;
    } else if meta.is_dir() {
        token(out, b"directory")?;
        let mut names: Vec<std::ffi::OsString> =
            std::fs::read_dir(path)?.map(|e| e.map(|e| e.file_name())).collect::<Result<_, _>>()?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        if let Some(other) = other {
            let theirs: Result<Vec<std::ffi::OsString>, _> =
                std::fs::read_dir(other)?.map(|e| e.map(|e| e.file_name())).collect();
            let mut theirs = theirs?;
            theirs.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            if theirs != names {
                state.same = false;
            }
        }
        for name in names {
            token(out, b"entry")?;
            token(out, b"(")?;
            token(out, b"name")?;
            token(out, name.as_bytes())?;
            token(out, b"node")?;
            let mirrored = other.filter(|_| state.same).map(|o| o.join(&name));
            write_node(&path.join(&name), mirrored.as_deref(), out, state)?;
            token(out, b")")?;
        }
    } else {
        return Err(std::io::Error::other(format!("{} is not a file, directory or symlink", path.display())));
    }
    token(out, b")")
}

/// `sha256-<base64>`, as `nix hash path` prints by default.
pub fn sri(digest: &[u8; 32]) -> String {
    format!("sha256-{}", base64::engine::general_purpose::STANDARD.encode(digest))
}

/// `sha256:<nixbase32>`, as `nix hash path --base32` prints (without the prefix).
pub fn base32(digest: &[u8; 32]) -> String {
    nix_base32::to_nix_base32(digest)
}

/// Lower-case hex, as `nix hash path --base16` prints.
pub fn base16(digest: &[u8; 32]) -> String {
    hex::encode(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_file_hashes_like_nix() {
        // `printf hello > f; nix hash path f` = sha256-…(the NAR of a regular file)
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"hello").unwrap();
        let digest = hash_path(&dir.path().join("f")).unwrap();
        let mut nar = Vec::new();
        for token in ["nix-archive-1", "(", "type", "regular", "contents"] {
            nar.extend_from_slice(&(token.len() as u64).to_le_bytes());
            nar.extend_from_slice(token.as_bytes());
            nar.resize(nar.len().div_ceil(8) * 8, 0);
        }
        nar.extend_from_slice(&5u64.to_le_bytes());
        nar.extend_from_slice(b"hello\0\0\0");
        nar.extend_from_slice(&1u64.to_le_bytes());
        nar.extend_from_slice(b")\0\0\0\0\0\0\0");
        assert_eq!(digest, <[u8; 32]>::from(Sha256::digest(&nar)), "the NAR framing of one regular file");
        assert_eq!(sri(&digest).len(), "sha256-".len() + 44);
        assert_eq!(base16(&digest).len(), 64);
        assert_eq!(base32(&digest).len(), 52);
    }

    #[test]
    fn hashing_while_comparing_finds_each_kind_of_difference() {
        let dir = tempfile::tempdir().unwrap();
        let make = |name: &str| {
            let root = dir.path().join(name);
            std::fs::create_dir_all(root.join("bin")).unwrap();
            std::fs::write(root.join("bin/tool"), vec![1u8; BLOCK + 3]).unwrap();
            std::os::unix::fs::symlink("tool", root.join("bin/link")).unwrap();
            root
        };
        let a = make("a");
        let b = make("b");
        let (digest, same) = hash_comparing(&a, Some(&b), true).unwrap();
        assert!(same);
        assert_eq!(digest, hash_path(&b).unwrap());
        let mut content = vec![1u8; BLOCK + 3];
        content[BLOCK + 1] = 2;
        std::fs::write(b.join("bin/tool"), &content).unwrap();
        assert!(!hash_comparing(&a, Some(&b), true).unwrap().1, "a byte in the second block");
        std::fs::write(b.join("bin/tool"), vec![1u8; BLOCK + 3]).unwrap();
        std::fs::set_permissions(b.join("bin"), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        assert!(!hash_comparing(&a, Some(&b), true).unwrap().1, "a mode");
        std::fs::set_permissions(b.join("bin"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        std::fs::set_permissions(a.join("bin"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        assert!(hash_comparing(&a, Some(&b), true).unwrap().1);
        std::fs::remove_file(b.join("bin/link")).unwrap();
        std::os::unix::fs::symlink("elsewhere", b.join("bin/link")).unwrap();
        assert!(!hash_comparing(&a, Some(&b), true).unwrap().1, "a symlink target");
        std::fs::remove_file(b.join("bin/link")).unwrap();
        assert!(!hash_comparing(&a, Some(&b), true).unwrap().1, "a missing entry");
        assert_eq!(hash_comparing(&a, Some(&b), true).unwrap().0, hash_path(&a).unwrap(), "A's hash either way");
    }

    #[test]
    fn the_serialisation_equals_nix_nars_encoder() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("tree");
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::create_dir_all(root.join("empty")).unwrap();
        std::fs::write(root.join("bin/tool"), vec![7u8; 3 * BLOCK + 5]).unwrap();
        std::fs::set_permissions(root.join("bin/tool"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        std::fs::write(root.join("B-upper"), b"sorted by bytes").unwrap();
        std::os::unix::fs::symlink("bin/tool", root.join("link")).unwrap();
        let mut ours = Vec::new();
        write_nar(&root, &mut ours).unwrap();
        let mut reference = Vec::new();
        nix_nar::Encoder::new(&root).unwrap().read_to_end(&mut reference).unwrap();
        assert_eq!(ours, reference);
        assert_eq!(hash_path(&root).unwrap(), <[u8; 32]>::from(Sha256::digest(&reference)));
    }
}
