//! NAR hashing: the SHA-256 of a tree's Nix archive serialisation, the value
//! `nix hash path` prints and the one Nix records for store paths.
//!
//! The serialisation is written here rather than with nix-nar's encoder
//! because hashing is a hot path: one thread walks the tree and reads files
//! straight into 128 KiB blocks while another hashes them. The blocks come
//! from a small fixed pool and go back to it once hashed, so memory stays
//! bounded whatever the tree's size, and no byte is copied twice. When two
//! trees are compared, a third stage checks each hashed block against the
//! other tree before returning it. nix-nar remains the reference:
//! a test checks that both produce the same bytes, and `tests/e2e/repro.rs`
//! checks the hash against the real `nix hash path`. NAR inputs are decoded
//! with nix-nar.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

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
///
/// Three stages run at once: this thread walks both trees and reads
/// `path`'s files into blocks; a second hashes each block; a third reads
/// the matching bytes of `other`'s files and compares them with the block
/// before handing it back for reuse.
pub fn hash_comparing(path: &Path, other: Option<&Path>, modes: bool) -> Result<([u8; 32], bool), NarError> {
    let pool = if other.is_some() { COMPARING_POOL } else { POOL };
    let (full_sender, full_receiver) = std::sync::mpsc::sync_channel::<Block>(pool);
    // Every block fits in the pool channel, so returning one never waits.
    let (empty_sender, empty_receiver) = std::sync::mpsc::sync_channel::<Block>(pool);
    for _ in 0..pool {
        let block = Block { bytes: vec![0u8; BLOCK], filled: 0, mirrored: Vec::new() };
        empty_sender.send(block).expect("the receiver is alive");
    }
    let differs = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (hashed_sender, comparer) = match other {
        Some(_) => {
            let (sender, receiver) = std::sync::mpsc::sync_channel::<Block>(pool);
            let differs = differs.clone();
            let empty = empty_sender.clone();
            (sender, Some(std::thread::spawn(move || compare_blocks(receiver, empty, &differs))))
        }
        None => (empty_sender.clone(), None),
    };
    drop(empty_sender);
    let hasher = std::thread::spawn(move || {
        let mut hasher = Sha256::new();
        for block in full_receiver {
            hasher.update(&block.bytes[..block.filled]);
            // Once the walk has finished nobody takes blocks back; that is fine.
            let _ = hashed_sender.send(block);
        }
        <[u8; 32]>::from(hasher.finalize())
    });
    let mut sink = HashSink { block: None, full: full_sender, empty: empty_receiver };
    let mut state = Walk { same: other.is_some(), modes, differs: differs.clone() };
    let written = token(&mut sink, b"nix-archive-1")
        .and_then(|_| write_node(path, other, &mut sink, &mut state))
        .and_then(|_| sink.flush());
    drop(sink);
    let digest = hasher.join().expect("the hashing thread does not panic");
    if let Some(comparer) = comparer {
        comparer.join().expect("the comparing thread does not panic");
    }
    written.map_err(|e| NarError::Encode { path: path.display().to_string(), message: e.to_string() })?;
    let same = state.same && !differs.load(std::sync::atomic::Ordering::Relaxed);
    Ok((digest, same))
}

/// The comparing stage: for each hashed block, reads the mirror files'
/// bytes its contents correspond to and compares them, until the first
/// difference; then returns the block to the pool.
fn compare_blocks(
    hashed: std::sync::mpsc::Receiver<Block>,
    empty: std::sync::mpsc::SyncSender<Block>,
    differs: &std::sync::atomic::AtomicBool,
) {
    use std::sync::atomic::Ordering;
    let mut buffer = vec![0u8; BLOCK];
    let mut current: Option<(Arc<Path>, std::fs::File)> = None;
    // Whether the mirror file just finished ends where the original did.
    let at_end = |file: &mut std::fs::File, buffer: &mut [u8]| matches!(read_retrying(file, &mut buffer[..1]), Ok(0));
    for mut block in hashed {
        for segment in block.mirrored.drain(..) {
            if differs.load(Ordering::Relaxed) {
                break;
            }
            let matches = (|| {
                if current.as_ref().is_none_or(|(path, _)| !Arc::ptr_eq(path, &segment.path)) {
                    if let Some((_, mut file)) = current.take()
                        && !at_end(&mut file, &mut buffer)
                    {
                        return false;
                    }
                    match std::fs::File::open(&segment.path) {
                        Ok(file) => current = Some((segment.path.clone(), file)),
                        Err(_) => return false,
                    }
                }
                let (_, file) = current.as_mut().expect("a mirror file is open");
                let theirs = &mut buffer[..segment.len];
                file.read_exact(theirs).is_ok() && *theirs == block.bytes[segment.start..segment.start + segment.len]
            })();
            if !matches {
                differs.store(true, Ordering::Relaxed);
            }
        }
        let _ = empty.send(block);
    }
    if let Some((_, mut file)) = current.take()
        && !differs.load(Ordering::Relaxed)
        && !at_end(&mut file, &mut buffer)
    {
        differs.store(true, Ordering::Relaxed);
    }
}

/// Writes the NAR serialisation of `path` to `out`.
pub fn write_nar(path: &Path, out: &mut impl Write) -> std::io::Result<()> {
    let mut sink = WriterSink { out, buffer: vec![0u8; BLOCK] };
    token(&mut sink, b"nix-archive-1")?;
    let mut state = Walk { same: false, modes: false, differs: Default::default() };
    write_node(path, None, &mut sink, &mut state)
}

/// Whether the mirror tree still matches, as far as the walk has seen,
/// and whether the comparing stage has found a difference in contents.
struct Walk {
    same: bool,
    modes: bool,
    differs: Arc<std::sync::atomic::AtomicBool>,
}

impl Walk {
    /// Whether comparing is still worth doing.
    fn still_same(&mut self) -> bool {
        if self.same && self.differs.load(std::sync::atomic::Ordering::Relaxed) {
            self.same = false;
        }
        self.same
    }
}

/// Size of a block handed to the hashing thread: small enough that the
/// blocks in flight stay in the CPU's caches between the reading core and
/// the hashing core.
const BLOCK: usize = 128 << 10;

/// Blocks in circulation when only hashing: few, so that the walk stays
/// just ahead of the hasher and the blocks it reads are still in cache.
/// With the block size, this bounds memory whatever the tree's size.
const POOL: usize = 6;

/// Blocks in circulation when comparing too: more, to absorb the third
/// stage's scheduling on a machine with fewer cores than stages.
const COMPARING_POOL: usize = 16;

/// A fixed-size buffer whose first `filled` bytes are NAR data, and which
/// of those bytes are file contents to compare with the mirror tree.
struct Block {
    bytes: Vec<u8>,
    filled: usize,
    mirrored: Vec<Mirrored>,
}

/// `len` bytes of a block, from `start`, that continue the mirror file at
/// `path` (consecutive segments of one file share the `Arc`).
struct Mirrored {
    path: Arc<Path>,
    start: usize,
    len: usize,
}

/// Where the walk puts the serialisation: tokens are written to it, and
/// file contents are read straight into it.
trait Sink: Write {
    /// Reads up to `limit` bytes of `from` into the serialisation and
    /// returns how many (0 at end of file). With `mirror`, those bytes are
    /// to be compared with the next bytes of that file.
    fn read_from(&mut self, from: &mut std::fs::File, limit: u64, mirror: Option<&Arc<Path>>)
    -> std::io::Result<usize>;

    /// Marks the start of a file whose contents are compared with `mirror`
    /// (so that an empty file's mirror is checked too).
    fn start_mirror(&mut self, mirror: &Arc<Path>) -> std::io::Result<()>;
}

/// Feeds the hashing thread: fills a block from the pool, sends it when
/// full, and reads file contents into it without another copy.
struct HashSink {
    block: Option<Block>,
    full: std::sync::mpsc::SyncSender<Block>,
    empty: std::sync::mpsc::Receiver<Block>,
}

impl HashSink {
    /// The current block, with room for at least one byte.
    fn room(&mut self) -> std::io::Result<&mut Block> {
        if self.block.as_ref().is_some_and(|b| b.filled == BLOCK) {
            self.flush()?;
        }
        if self.block.is_none() {
            let mut block = self.empty.recv().map_err(|_| std::io::Error::other("the hashing thread stopped"))?;
            block.filled = 0;
            block.mirrored.clear();
            self.block = Some(block);
        }
        Ok(self.block.as_mut().expect("a block was just taken"))
    }
}

impl Write for HashSink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let block = self.room()?;
        let n = bytes.len().min(BLOCK - block.filled);
        block.bytes[block.filled..block.filled + n].copy_from_slice(&bytes[..n]);
        block.filled += n;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.block.take() {
            Some(block) if block.filled > 0 => {
                self.full.send(block).map_err(|_| std::io::Error::other("the hashing thread stopped"))
            }
            unused => {
                self.block = unused;
                Ok(())
            }
        }
    }
}

impl Sink for HashSink {
    fn read_from(
        &mut self,
        from: &mut std::fs::File,
        limit: u64,
        mirror: Option<&Arc<Path>>,
    ) -> std::io::Result<usize> {
        let block = self.room()?;
        let start = block.filled;
        let end = start + (BLOCK - start).min(usize::try_from(limit).unwrap_or(usize::MAX));
        let n = read_retrying(from, &mut block.bytes[start..end])?;
        block.filled += n;
        if let Some(path) = mirror {
            block.mirrored.push(Mirrored { path: path.clone(), start, len: n });
        }
        Ok(n)
    }

    fn start_mirror(&mut self, mirror: &Arc<Path>) -> std::io::Result<()> {
        let block = self.room()?;
        let start = block.filled;
        block.mirrored.push(Mirrored { path: mirror.clone(), start, len: 0 });
        Ok(())
    }
}

/// A sink over any writer, reading file contents through its own buffer.
struct WriterSink<'a, W: Write> {
    out: &'a mut W,
    buffer: Vec<u8>,
}

impl<W: Write> Write for WriterSink<'_, W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.out.write(bytes)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

impl<W: Write> Sink for WriterSink<'_, W> {
    fn read_from(
        &mut self,
        from: &mut std::fs::File,
        limit: u64,
        _mirror: Option<&Arc<Path>>,
    ) -> std::io::Result<usize> {
        let end = self.buffer.len().min(usize::try_from(limit).unwrap_or(usize::MAX));
        let n = read_retrying(from, &mut self.buffer[..end])?;
        self.out.write_all(&self.buffer[..n])?;
        Ok(n)
    }

    fn start_mirror(&mut self, _mirror: &Arc<Path>) -> std::io::Result<()> {
        Ok(())
    }
}

/// One `read`, repeated if interrupted by a signal.
fn read_retrying(from: &mut std::fs::File, buffer: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match from.read(buffer) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            result => return result,
        }
    }
}

/// A NAR string: little-endian length, bytes, zero padding to 8.
fn token(out: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    out.write_all(&(bytes.len() as u64).to_le_bytes())?;
    out.write_all(bytes)?;
    out.write_all(&[0u8; 8][..(8 - bytes.len() % 8) % 8])
}

/// Copies the `size` bytes of `from` into `out`, to be compared with
/// `mirror` while the trees still match.
fn copy_contents(
    from: &mut std::fs::File,
    size: u64,
    mirror: Option<Arc<Path>>,
    out: &mut impl Sink,
    state: &mut Walk,
) -> std::io::Result<u64> {
    let mut mirror = mirror;
    if let Some(path) = &mirror {
        out.start_mirror(path)?;
    }
    let mut total = 0;
    while total < size {
        if mirror.is_some() && !state.still_same() {
            mirror = None;
        }
        let n = out.read_from(from, size - total, mirror.as_ref())?;
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    Ok(total)
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

fn write_node(path: &Path, other: Option<&Path>, out: &mut impl Sink, state: &mut Walk) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;
    let meta = path.symlink_metadata()?;
    if state.still_same() && other.is_some_and(|o| !same_node(path, &meta, o, state.modes)) {
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
        let mirror = other.map(Arc::<Path>::from);
        let copied = copy_contents(&mut std::fs::File::open(path)?, size, mirror, out, state)?;
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
            let mirrored = other.filter(|_| state.still_same()).map(|o| o.join(&name));
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

crate::util::error::usage_errors!(NarError);

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
    fn a_difference_after_the_pool_has_cycled_is_found() {
        // More data than the blocks in circulation, so blocks are reused;
        // many files, so mirror segments of several files share a block.
        let dir = tempfile::tempdir().unwrap();
        let make = |name: &str| {
            let root = dir.path().join(name);
            std::fs::create_dir_all(&root).unwrap();
            for i in 0..40 {
                std::fs::write(root.join(format!("f{i:02}")), vec![i as u8; BLOCK / 3 + i]).unwrap();
            }
            std::fs::write(root.join("large"), vec![9u8; COMPARING_POOL * BLOCK * 2]).unwrap();
            std::fs::write(root.join("zz-empty"), b"").unwrap();
            root
        };
        let a = make("a");
        let b = make("b");
        let expected = hash_path(&a).unwrap();
        assert_eq!(hash_comparing(&a, Some(&b), true).unwrap(), (expected, true));
        let mut large = vec![9u8; COMPARING_POOL * BLOCK * 2];
        *large.last_mut().unwrap() = 8;
        std::fs::write(b.join("large"), &large).unwrap();
        assert_eq!(hash_comparing(&a, Some(&b), true).unwrap(), (expected, false), "the last byte of a large file");
        std::fs::write(b.join("large"), vec![9u8; COMPARING_POOL * BLOCK * 2]).unwrap();
        let mut small = vec![39u8; BLOCK / 3 + 39];
        small[0] = 0;
        std::fs::write(b.join("f39"), &small).unwrap();
        assert_eq!(hash_comparing(&a, Some(&b), true).unwrap(), (expected, false), "the first byte of a small file");
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
