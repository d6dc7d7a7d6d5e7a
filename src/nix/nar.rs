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
//! checks the hash against the real `nix hash path`.
//!
//! NAR inputs are untrusted: [`decode`] reads one with hard limits (short
//! framing tokens, entry names of at most [`MAX_NAME_BYTES`], symlink
//! targets of at most [`MAX_TARGET_BYTES`], bounded nesting and entry count,
//! file contents streamed and bounded in total, zero padding, entries in
//! strictly increasing order as Nix writes them, nothing after the end), and
//! [`unpack`] writes what it reads into a new directory. Neither allocates by
//! an announced size. nix-nar's decoder is the reference they are tested
//! against.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use base64::Engine;

use crate::util::archive::memory::{MemoryEntry, MemoryTree};
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

/// The NAR hash of a tree read into memory: the serialisation goes
/// straight into SHA-256, file contents included without a copy. Equal to
/// [`hash_path`] of the same tree on disk (a test checks both).
pub fn hash_memory(tree: &MemoryTree) -> [u8; 32] {
    let mut hasher = Sha256::new();
    serialise_memory(tree, &mut |bytes: &[u8]| hasher.update(bytes));
    hasher.finalize().into()
}

/// Writes the NAR serialisation of an in-memory tree to `out`.
pub fn write_memory_nar(tree: &MemoryTree, out: &mut impl Write) -> std::io::Result<()> {
    let mut result = Ok(());
    serialise_memory(tree, &mut |bytes: &[u8]| {
        if result.is_ok() {
            result = out.write_all(bytes);
        }
    });
    result
}

/// Serialises `tree` into `out`. The tree's paths are in NAR order (each
/// directory's entries sorted by name, a directory before its contents),
/// so one pass over them, with the directories still open on a stack, is
/// the whole serialisation.
fn serialise_memory(tree: &MemoryTree, out: &mut impl FnMut(&[u8])) {
    use std::os::unix::ffi::OsStrExt;
    let mut put = |bytes: &[u8]| {
        out(&(bytes.len() as u64).to_le_bytes());
        out(bytes);
        out(&[0u8; 8][..(8 - bytes.len() % 8) % 8]);
    };
    put(b"nix-archive-1");
    let mut open: Vec<&Path> = Vec::new();
    for (path, entry) in tree.entries() {
        let root = path.as_os_str().is_empty();
        if !root {
            let parent = path.parent().expect("a path under the root has a parent");
            while open.last().is_some_and(|dir| *dir != parent) {
                open.pop();
                put(b")");
                put(b")");
            }
            put(b"entry");
            put(b"(");
            put(b"name");
            put(path.file_name().expect("a path under the root has a name").as_bytes());
            put(b"node");
        }
        put(b"(");
        put(b"type");
        match entry {
            MemoryEntry::Directory { .. } => {
                put(b"directory");
                open.push(path);
                continue;
            }
            MemoryEntry::File { mode, .. } => {
                put(b"regular");
                if mode & 0o100 != 0 {
                    put(b"executable");
                    put(b"");
                }
                put(b"contents");
                put(tree.contents(entry));
            }
            MemoryEntry::Symlink { target } => {
                put(b"symlink");
                put(b"target");
                put(target.as_os_str().as_bytes());
            }
        }
        put(b")");
        if !root {
            put(b")");
        }
    }
    while let Some(dir) = open.pop() {
        put(b")");
        if !dir.as_os_str().is_empty() {
            put(b")");
        }
    }
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

/// The longest entry name [`decode`] accepts (Linux's `NAME_MAX`).
pub const MAX_NAME_BYTES: usize = 255;

/// The longest symlink target [`decode`] accepts (Linux's `PATH_MAX`).
pub const MAX_TARGET_BYTES: usize = 4096;

/// The longest framing token: `nix-archive-1` padded to 8 bytes.
const MAX_TOKEN_BYTES: usize = 16;

/// How much a NAR may hold before [`decode`] refuses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NarLimits {
    /// Total bytes of file contents.
    pub max_contents: u64,
    /// Nodes (regular files, directories and symlinks, the root included).
    pub max_nodes: u64,
    /// Directory levels below the root.
    pub max_depth: usize,
}

impl NarLimits {
    /// Far above any PostgreSQL install (about 110 MB in 2,000 nodes at
    /// most 10 levels deep), far below what would exhaust a build machine.
    pub const DEFAULT: NarLimits = NarLimits { max_contents: 16 << 30, max_nodes: 1 << 20, max_depth: 128 };
}

impl Default for NarLimits {
    fn default() -> NarLimits {
        NarLimits::DEFAULT
    }
}

/// Why a NAR could not be decoded or unpacked; every message is one line
/// and names the byte offset where reading stopped.
#[derive(Debug, thiserror::Error)]
pub enum NarFormatError {
    /// The input ends inside the archive.
    #[error("the NAR ends early, at byte {offset}")]
    Truncated {
        /// Bytes read.
        offset: u64,
    },
    /// A framing token other than the one the format requires here.
    #[error("not a valid NAR at byte {offset}: expected {expected}, found {found}")]
    Unexpected {
        /// Where the token starts.
        offset: u64,
        /// What the format requires.
        expected: &'static str,
        /// What was there.
        found: String,
    },
    /// A string announces more bytes than its kind may have.
    #[error("not a valid NAR at byte {offset}: {what} of {length} bytes is longer than the limit of {limit}")]
    TooLong {
        /// Where the string starts.
        offset: u64,
        /// What the string is, with its article.
        what: &'static str,
        /// The length it announces.
        length: u64,
        /// The most this kind may have.
        limit: usize,
    },
    /// An entry name Nix refuses (empty, `.`, `..`, with `/` or NUL).
    #[error("not a valid NAR at byte {offset}: entry name {name} {reason}")]
    BadName {
        /// Where the name starts.
        offset: u64,
        /// The name, escaped.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Entries of a directory not in strictly increasing byte order.
    #[error("not a valid NAR at byte {offset}: entry {name} does not sort after {previous}")]
    Unsorted {
        /// Where the name starts.
        offset: u64,
        /// The name, escaped.
        name: String,
        /// The entry before it, escaped.
        previous: String,
    },
    /// A symlink target that no file system can hold (empty, or with NUL).
    #[error("not a valid NAR at byte {offset}: symlink target {target} {reason}")]
    BadTarget {
        /// Where the target starts.
        offset: u64,
        /// The target, escaped.
        target: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Padding after a string that is not zero.
    #[error("not a valid NAR at byte {offset}: non-zero padding")]
    Padding {
        /// Where the padding starts.
        offset: u64,
    },
    /// Directories nested deeper than [`NarLimits::max_depth`].
    #[error("not a valid NAR at byte {offset}: directories nest deeper than {limit} levels")]
    TooDeep {
        /// Where the entry starts.
        offset: u64,
        /// The limit.
        limit: usize,
    },
    /// More nodes than [`NarLimits::max_nodes`].
    #[error("not a valid NAR at byte {offset}: more than {limit} files, directories and symlinks")]
    TooManyNodes {
        /// Where the node starts.
        offset: u64,
        /// The limit.
        limit: u64,
    },
    /// More file contents than [`NarLimits::max_contents`].
    #[error("not a valid NAR at byte {offset}: file contents exceed the limit of {limit} bytes in total")]
    TooLarge {
        /// Where the file's size is.
        offset: u64,
        /// The limit.
        limit: u64,
    },
    /// Bytes after the archive's end.
    #[error("not a valid NAR at byte {offset}: data after the end of the archive")]
    Trailing {
        /// Where the archive ends.
        offset: u64,
    },
    /// Reading the input failed.
    #[error("cannot read the NAR at byte {offset}: {source}")]
    Read {
        /// Bytes read before the failure.
        offset: u64,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The visitor failed (for [`unpack`]: creating a file).
    #[error(transparent)]
    Visit(#[from] crate::util::io::IoError),
}

/// What [`decode`] hands each node to, in archive order: a directory before
/// its entries, entries in increasing name order.
pub trait NarVisitor {
    /// A directory at `path` (relative to the root; empty for the root).
    fn directory(&mut self, path: &Path) -> Result<(), crate::util::io::IoError>;

    /// A regular file of `size` bytes; `contents` yields exactly those bytes
    /// and fails if the NAR ends early. Bytes left unread are skipped.
    fn regular(
        &mut self,
        path: &Path,
        executable: bool,
        size: u64,
        contents: &mut dyn Read,
    ) -> Result<(), crate::util::io::IoError>;

    /// A symbolic link to `target` (never empty, without NUL).
    fn symlink(&mut self, path: &Path, target: &Path) -> Result<(), crate::util::io::IoError>;
}

/// What a decoded NAR held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NarSummary {
    /// Nodes, the root included.
    pub nodes: u64,
    /// Total bytes of file contents.
    pub contents: u64,
    /// Length of the archive.
    pub bytes: u64,
}

/// Reads the NAR in `reader` to its end within `limits`, handing every node
/// to `visitor`. Memory use is bounded by the limits on names and targets
/// whatever the input announces; file contents are streamed to the visitor.
pub fn decode(
    reader: impl Read,
    limits: &NarLimits,
    visitor: &mut impl NarVisitor,
) -> Result<NarSummary, NarFormatError> {
    use std::os::unix::ffi::OsStrExt;
    let mut input = Input { inner: reader, offset: 0, failure: None, summary: NarSummary::default() };
    input.expect(b"nix-archive-1")?;
    input.expect(b"(")?;
    let mut path = std::path::PathBuf::new();
    // For each open directory, the name of its last entry so far.
    let mut open: Vec<Vec<u8>> = Vec::new();
    if input.node(&path, limits, visitor)? == Node::Directory {
        open.push(Vec::new());
    }
    let mut name = Vec::with_capacity(MAX_NAME_BYTES);
    while let Some(previous) = open.last_mut() {
        let at = input.offset;
        let token = input.token("`entry` or `)`")?;
        if token.bytes() == b")" {
            open.pop();
            if !open.is_empty() {
                input.expect(b")")?;
                path.pop();
            }
            continue;
        }
        if token.bytes() != b"entry" {
            return Err(token.unexpected(at, "`entry` or `)`"));
        }
        input.expect(b"(")?;
        input.expect(b"name")?;
        let at = input.offset;
        input.string("an entry name", MAX_NAME_BYTES, &mut name)?;
        check_name(&name, at)?;
        if !previous.is_empty() && name <= *previous {
            return Err(NarFormatError::Unsorted { offset: at, name: escaped(&name), previous: escaped(previous) });
        }
        previous.clone_from(&name);
        input.expect(b"node")?;
        input.expect(b"(")?;
        if open.len() > limits.max_depth {
            return Err(NarFormatError::TooDeep { offset: at, limit: limits.max_depth });
        }
        path.push(std::ffi::OsStr::from_bytes(&name));
        if input.node(&path, limits, visitor)? == Node::Directory {
            open.push(Vec::new());
        } else {
            input.expect(b")")?;
            path.pop();
        }
    }
    let mut byte = [0u8; 1];
    loop {
        match input.inner.read(&mut byte) {
            Ok(0) => break,
            Ok(_) => return Err(NarFormatError::Trailing { offset: input.offset }),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(source) => return Err(NarFormatError::Read { offset: input.offset, source }),
        }
    }
    input.summary.bytes = input.offset;
    Ok(input.summary)
}

/// Unpacks the NAR in `reader` into `destination`, which must not exist,
/// within `limits`. Creates only directories (mode 755), regular files
/// (444, or 555 when executable, as nix-nar and the Nix store do) and
/// symlinks, each new (`create_new`, `O_NOFOLLOW`): no existing file is
/// followed or overwritten, and since every parent is a directory this call
/// made, no symlink it made is followed either. On error, whatever it
/// created is removed.
pub fn unpack(reader: impl Read, destination: &Path, limits: &NarLimits) -> Result<NarSummary, NarFormatError> {
    let mut unpacker = Unpacker { root: destination, created: false };
    let result = decode(reader, limits, &mut unpacker);
    if result.is_err() && unpacker.created {
        let _ = match destination.symlink_metadata() {
            Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(destination),
            _ => std::fs::remove_file(destination),
        };
    }
    result
}

/// Whether a node opened a directory (whose entries follow) or was a leaf.
#[derive(Debug, PartialEq, Eq)]
enum Node {
    Directory,
    Leaf,
}

/// A framing token read into a fixed buffer.
struct Token {
    bytes: [u8; MAX_TOKEN_BYTES],
    len: usize,
}

impl Token {
    fn bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    fn unexpected(&self, offset: u64, expected: &'static str) -> NarFormatError {
        NarFormatError::Unexpected { offset, expected, found: escaped(self.bytes()) }
    }
}

/// The reader, the bytes consumed, what a contents reader ran into, and
/// what was seen so far.
struct Input<R> {
    inner: R,
    offset: u64,
    failure: Option<NarFormatError>,
    summary: NarSummary,
}

impl<R: Read> Input<R> {
    /// Fills `buffer` from the input.
    fn fill(&mut self, buffer: &mut [u8]) -> Result<(), NarFormatError> {
        let mut filled = 0;
        while filled < buffer.len() {
            match self.inner.read(&mut buffer[filled..]) {
                Ok(0) => return Err(NarFormatError::Truncated { offset: self.offset }),
                Ok(n) => {
                    filled += n;
                    self.offset += n as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(NarFormatError::Read { offset: self.offset, source }),
            }
        }
        Ok(())
    }

    fn number(&mut self) -> Result<u64, NarFormatError> {
        let mut bytes = [0u8; 8];
        self.fill(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    /// The zero padding after a string of `len` bytes.
    fn padding(&mut self, len: u64) -> Result<(), NarFormatError> {
        let at = self.offset;
        let mut bytes = [0u8; 8];
        let padding = &mut bytes[..((8 - len % 8) % 8) as usize];
        self.fill(padding)?;
        if padding.iter().any(|&b| b != 0) {
            return Err(NarFormatError::Padding { offset: at });
        }
        Ok(())
    }

    /// A string of at most `limit` bytes, into `out`.
    fn string(&mut self, what: &'static str, limit: usize, out: &mut Vec<u8>) -> Result<(), NarFormatError> {
        let at = self.offset;
        let length = self.number()?;
        let len = usize::try_from(length).ok().filter(|&len| len <= limit);
        let Some(len) = len else { return Err(NarFormatError::TooLong { offset: at, what, length, limit }) };
        out.clear();
        out.resize(len, 0);
        self.fill(out)?;
        self.padding(length)
    }

    /// A framing token (a string of a few bytes), where the format
    /// requires `expected`.
    fn token(&mut self, expected: &'static str) -> Result<Token, NarFormatError> {
        let at = self.offset;
        let length = self.number()?;
        let Some(len) = usize::try_from(length).ok().filter(|&len| len <= MAX_TOKEN_BYTES) else {
            return Err(NarFormatError::Unexpected {
                offset: at,
                expected,
                found: format!("a string of {length} bytes"),
            });
        };
        let mut token = Token { bytes: [0; MAX_TOKEN_BYTES], len };
        self.fill(&mut token.bytes[..len])?;
        self.padding(length)?;
        Ok(token)
    }

    /// Exactly `expected`.
    fn expect(&mut self, expected: &'static [u8]) -> Result<(), NarFormatError> {
        let at = self.offset;
        let token = self.token(expected_name(expected))?;
        if token.bytes() != expected {
            return Err(token.unexpected(at, expected_name(expected)));
        }
        Ok(())
    }

    /// One node after its `(`: a file or symlink up to and including its
    /// `)`, or a directory's type (its entries follow).
    fn node(&mut self, path: &Path, limits: &NarLimits, visitor: &mut impl NarVisitor) -> Result<Node, NarFormatError> {
        use std::os::unix::ffi::OsStrExt;
        if self.summary.nodes >= limits.max_nodes {
            return Err(NarFormatError::TooManyNodes { offset: self.offset, limit: limits.max_nodes });
        }
        self.summary.nodes += 1;
        self.expect(b"type")?;
        let at = self.offset;
        let kind = self.token("`regular`, `directory` or `symlink`")?;
        match kind.bytes() {
            b"regular" => {
                let mut at = self.offset;
                let mut tag = self.token("`executable` or `contents`")?;
                let executable = tag.bytes() == b"executable";
                if executable {
                    let marker_at = self.offset;
                    let marker = self.token("an empty string after `executable`")?;
                    if !marker.bytes().is_empty() {
                        return Err(marker.unexpected(marker_at, "an empty string after `executable`"));
                    }
                    at = self.offset;
                    tag = self.token("`contents`")?;
                }
                if tag.bytes() != b"contents" {
                    let expected = if executable { "`contents`" } else { "`executable` or `contents`" };
                    return Err(tag.unexpected(at, expected));
                }
                let at = self.offset;
                let size = self.number()?;
                if size > limits.max_contents - self.summary.contents {
                    return Err(NarFormatError::TooLarge { offset: at, limit: limits.max_contents });
                }
                self.summary.contents += size;
                let mut contents = Contents { input: self, remaining: size };
                let visited = visitor.regular(path, executable, size, &mut contents);
                let drained = visited.and_then(|()| {
                    std::io::copy(&mut contents, &mut std::io::sink())
                        .map(drop)
                        .map_err(crate::util::io::context("cannot skip file contents"))
                });
                if let Err(error) = drained {
                    return Err(self.failure.take().unwrap_or(NarFormatError::Visit(error)));
                }
                self.padding(size)?;
                self.expect(b")")?;
                Ok(Node::Leaf)
            }
            b"symlink" => {
                self.expect(b"target")?;
                let at = self.offset;
                let mut target = Vec::new();
                self.string("a symlink target", MAX_TARGET_BYTES, &mut target)?;
                let reason = if target.is_empty() {
                    Some("is empty")
                } else if target.contains(&0) {
                    Some("contains NUL")
                } else {
                    None
                };
                if let Some(reason) = reason {
                    return Err(NarFormatError::BadTarget { offset: at, target: escaped(&target), reason });
                }
                visitor.symlink(path, Path::new(std::ffi::OsStr::from_bytes(&target)))?;
                self.expect(b")")?;
                Ok(Node::Leaf)
            }
            b"directory" => {
                visitor.directory(path)?;
                Ok(Node::Directory)
            }
            _ => Err(kind.unexpected(at, "`regular`, `directory` or `symlink`")),
        }
    }
}

/// The contents of one regular file: exactly its bytes, then end of file.
struct Contents<'a, R> {
    input: &'a mut Input<R>,
    remaining: u64,
}

impl<R: Read> Read for Contents<'_, R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        if self.remaining == 0 || buffer.is_empty() {
            return Ok(0);
        }
        let want = buffer.len().min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        match self.input.inner.read(&mut buffer[..want]) {
            Ok(0) => {
                self.input.failure = Some(NarFormatError::Truncated { offset: self.input.offset });
                Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the NAR ends inside a file"))
            }
            Ok(n) => {
                self.input.offset += n as u64;
                self.remaining -= n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                let source = std::io::Error::new(e.kind(), e.to_string());
                self.input.failure = Some(NarFormatError::Read { offset: self.input.offset, source });
                Err(e)
            }
        }
    }
}

/// Nix's rules for a directory entry's name.
fn check_name(name: &[u8], offset: u64) -> Result<(), NarFormatError> {
    let reason = if name.is_empty() {
        "is empty"
    } else if name == b"." || name == b".." {
        "is not a file name"
    } else if name.contains(&b'/') {
        "contains /"
    } else if name.contains(&0) {
        "contains NUL"
    } else {
        return Ok(());
    };
    Err(NarFormatError::BadName { offset, name: escaped(name), reason })
}

/// How an expected token is named in messages.
fn expected_name(token: &'static [u8]) -> &'static str {
    match token {
        b"nix-archive-1" => "`nix-archive-1`",
        b"(" => "`(`",
        b")" => "`)`",
        b"type" => "`type`",
        b"name" => "`name`",
        b"node" => "`node`",
        b"target" => "`target`",
        _ => "another token",
    }
}

/// `bytes` quoted, with anything but printable ASCII escaped, and cut at 64
/// bytes, so that it fits in a one-line message.
fn escaped(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(64)];
    let more = if bytes.len() > shown.len() { "..." } else { "" };
    format!("\"{}\"{more}", shown.escape_ascii())
}

/// The visitor of [`unpack`].
struct Unpacker<'a> {
    root: &'a Path,
    created: bool,
}

impl Unpacker<'_> {
    fn full(&self, path: &Path) -> std::path::PathBuf {
        if path.as_os_str().is_empty() { self.root.to_path_buf() } else { self.root.join(path) }
    }
}

impl NarVisitor for Unpacker<'_> {
    fn directory(&mut self, path: &Path) -> Result<(), crate::util::io::IoError> {
        use std::os::unix::fs::DirBuilderExt;
        let full = self.full(path);
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(&full)
            .map_err(crate::util::io::context(format!("cannot create {}", full.display())))?;
        self.created = true;
        Ok(())
    }

    fn regular(
        &mut self,
        path: &Path,
        executable: bool,
        _size: u64,
        contents: &mut dyn Read,
    ) -> Result<(), crate::util::io::IoError> {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let full = self.full(path);
        let fail = |e| crate::util::io::IoError::new(format!("cannot write {}", full.display()), e);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(0o600)
            .open(&full)
            .map_err(fail)?;
        self.created = true;
        std::io::copy(contents, &mut file).map_err(fail)?;
        let mode = if executable { 0o555 } else { 0o444 };
        file.set_permissions(std::fs::Permissions::from_mode(mode)).map_err(fail)
    }

    fn symlink(&mut self, path: &Path, target: &Path) -> Result<(), crate::util::io::IoError> {
        let full = self.full(path);
        std::os::unix::fs::symlink(target, &full)
            .map_err(crate::util::io::context(format!("cannot create {}", full.display())))?;
        self.created = true;
        Ok(())
    }
}

crate::util::error::usage_errors!(NarError, NarFormatError);

#[cfg(test)]
mod tests {
    #[test]
    fn a_tree_in_memory_serialises_as_the_same_tree_on_disk() {
        use crate::util::archive::tests::tar_of;
        use tar::EntryType::{Directory, Link, Regular, Symlink};
        let bytes = tar_of(&[
            (b"top/", Directory, b"", b""),
            (b"top/bin/tool", Regular, b"", b"#!/bin/sh\n"),
            (b"top/lib/a-c", Regular, b"", b"dash sorts before slash in a path, not in a directory"),
            (b"top/lib/a/b.so", Regular, b"", &[0u8; 1000]),
            (b"top/lib/a.so", Symlink, b"a/b.so", b""),
            (b"top/lib/hard", Link, b"top/lib/a-c", b""),
            (b"top/empty/", Directory, b"", b""),
            (b"top/share/z", Regular, b"", b""),
        ]);
        let dir = tempfile::tempdir().unwrap();
        crate::util::archive::extract(&bytes[..], dir.path()).unwrap();
        let (tree, _) = crate::util::archive::memory::read(bytes).unwrap();
        let (mut from_memory, mut from_disk) = (Vec::new(), Vec::new());
        write_memory_nar(&tree, &mut from_memory).unwrap();
        write_nar(dir.path(), &mut from_disk).unwrap();
        assert!(from_memory == from_disk, "the two serialisations differ");
        assert_eq!(hash_memory(&tree), hash_path(dir.path()).unwrap());
        let top = tree.rooted_at_single_directory();
        assert_eq!(hash_memory(&top), hash_path(&dir.path().join("top")).unwrap());
    }

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

#[cfg(test)]
mod decoding {
    use super::*;
    use crate::util::fuzz;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// A tree in memory, as a NAR describes it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(crate) enum Tree {
        File { executable: bool, contents: Vec<u8> },
        Link(Vec<u8>),
        Dir(BTreeMap<Vec<u8>, Tree>),
    }

    fn string(out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        out.extend_from_slice(bytes);
        out.resize(out.len().div_ceil(8) * 8, 0);
    }

    fn node(out: &mut Vec<u8>, tree: &Tree) {
        string(out, b"(");
        string(out, b"type");
        match tree {
            Tree::File { executable, contents } => {
                string(out, b"regular");
                if *executable {
                    string(out, b"executable");
                    string(out, b"");
                }
                string(out, b"contents");
                string(out, contents);
            }
            Tree::Link(target) => {
                string(out, b"symlink");
                string(out, b"target");
                string(out, target);
            }
            Tree::Dir(entries) => {
                string(out, b"directory");
                for (name, child) in entries {
                    string(out, b"entry");
                    string(out, b"(");
                    string(out, b"name");
                    string(out, name);
                    string(out, b"node");
                    node(out, child);
                    string(out, b")");
                }
            }
        }
        string(out, b")");
    }

    /// The NAR serialisation of `tree`.
    pub(crate) fn serialise(tree: &Tree) -> Vec<u8> {
        let mut out = Vec::new();
        string(&mut out, b"nix-archive-1");
        node(&mut out, tree);
        out
    }

    /// Rebuilds the tree from the visitor's calls.
    #[derive(Default)]
    struct Collect {
        root: Option<Tree>,
    }

    impl Collect {
        fn put(&mut self, path: &Path, tree: Tree) {
            use std::os::unix::ffi::OsStrExt;
            let names: Vec<&[u8]> = path.iter().map(|c| c.as_bytes()).collect();
            let Some((last, parents)) = names.split_last() else {
                self.root = Some(tree);
                return;
            };
            let mut at = self.root.as_mut().expect("the root comes first");
            for name in parents {
                let Tree::Dir(entries) = at else { panic!("a parent is not a directory") };
                at = entries.get_mut(*name).expect("parents come before their entries");
            }
            let Tree::Dir(entries) = at else { panic!("a parent is not a directory") };
            assert!(entries.insert(last.to_vec(), tree).is_none(), "an entry came twice");
        }
    }

    impl NarVisitor for Collect {
        fn directory(&mut self, path: &Path) -> Result<(), crate::util::io::IoError> {
            self.put(path, Tree::Dir(BTreeMap::new()));
            Ok(())
        }

        fn regular(
            &mut self,
            path: &Path,
            executable: bool,
            size: u64,
            contents: &mut dyn Read,
        ) -> Result<(), crate::util::io::IoError> {
            let mut bytes = Vec::new();
            contents.read_to_end(&mut bytes).map_err(crate::util::io::context("contents"))?;
            assert_eq!(bytes.len() as u64, size);
            self.put(path, Tree::File { executable, contents: bytes });
            Ok(())
        }

        fn symlink(&mut self, path: &Path, target: &Path) -> Result<(), crate::util::io::IoError> {
            use std::os::unix::ffi::OsStrExt;
            self.put(path, Tree::Link(target.as_os_str().as_bytes().to_vec()));
            Ok(())
        }
    }

    /// Decodes `nar` into memory.
    pub(crate) fn decode_tree(nar: &[u8], limits: &NarLimits) -> Result<Tree, NarFormatError> {
        let mut collect = Collect::default();
        decode(nar, limits, &mut collect)?;
        Ok(collect.root.expect("a decoded NAR has a root"))
    }

    fn entries(list: &[(&str, Tree)]) -> Tree {
        Tree::Dir(list.iter().map(|(n, t)| (n.as_bytes().to_vec(), t.clone())).collect())
    }

    fn file(contents: &[u8]) -> Tree {
        Tree::File { executable: false, contents: contents.to_vec() }
    }

    fn sample() -> Tree {
        entries(&[
            ("a", file(b"")),
            ("bin", entries(&[("tool", Tree::File { executable: true, contents: vec![7; 1000] })])),
            ("empty", entries(&[])),
            ("link", Tree::Link(b"bin/tool".to_vec())),
        ])
    }

    /// The 139-byte NAR of issue 14: a directory whose first entry
    /// announces a name of 2^64 - 1 bytes.
    pub(crate) fn huge_name_nar() -> Vec<u8> {
        let mut nar = Vec::new();
        for token in [&b"nix-archive-1"[..], b"(", b"type", b"directory", b"entry", b"(", b"name"] {
            string(&mut nar, token);
        }
        nar.extend_from_slice(&u64::MAX.to_le_bytes());
        nar.extend_from_slice(b"abc");
        nar
    }

    fn refused(nar: &[u8], limits: &NarLimits) -> String {
        let error = decode_tree(nar, limits).expect_err("the NAR is refused");
        let message = error.to_string();
        assert!(fuzz::one_line(&message), "{message}");
        message
    }

    #[test]
    fn the_139_byte_nar_announcing_a_huge_name_is_refused_without_allocating() {
        let nar = huge_name_nar();
        assert_eq!(nar.len(), 139);
        let message = refused(&nar, &NarLimits::DEFAULT);
        assert_eq!(
            message,
            "not a valid NAR at byte 128: an entry name of 18446744073709551615 bytes is longer than the limit of 255"
        );
        let dir = tempfile::tempdir().unwrap();
        assert!(unpack(&nar[..], &dir.path().join("out"), &NarLimits::DEFAULT).is_err());
        assert!(!dir.path().join("out").exists(), "nothing is left behind");
    }

    #[test]
    fn decoding_returns_what_was_serialised() {
        let tree = sample();
        let nar = serialise(&tree);
        assert_eq!(decode_tree(&nar, &NarLimits::DEFAULT).unwrap(), tree);
        let summary = decode(&nar[..], &NarLimits::DEFAULT, &mut Collect::default()).unwrap();
        assert_eq!(summary, NarSummary { nodes: 6, contents: 1000, bytes: nar.len() as u64 });
        for root in [file(b"x"), Tree::Link(b"/nix/store/x".to_vec()), entries(&[])] {
            assert_eq!(decode_tree(&serialise(&root), &NarLimits::DEFAULT).unwrap(), root);
        }
    }

    #[test]
    fn unpacking_gives_the_same_files_as_nix_nar() {
        let dir = tempfile::tempdir().unwrap();
        let nar = serialise(&sample());
        unpack(&nar[..], &dir.path().join("ours"), &NarLimits::DEFAULT).unwrap();
        nix_nar::Decoder::new(&nar[..]).unwrap().unpack(dir.path().join("theirs")).unwrap();
        same_files(&dir.path().join("ours"), &dir.path().join("theirs"));
        let mut again = Vec::new();
        write_nar(&dir.path().join("ours"), &mut again).unwrap();
        assert_eq!(again, nar);
    }

    /// Both trees hold the same names, types, contents, targets and file modes.
    fn same_files(ours: &Path, theirs: &Path) {
        use std::os::unix::fs::PermissionsExt;
        let list = |root: &Path| -> Vec<(std::path::PathBuf, String, Vec<u8>, u32)> {
            walkdir::WalkDir::new(root)
                .follow_root_links(false)
                .sort_by_file_name()
                .into_iter()
                .map(|e| {
                    let e = e.unwrap();
                    let meta = e.path().symlink_metadata().unwrap();
                    let relative = e.path().strip_prefix(root).unwrap().to_path_buf();
                    if meta.file_type().is_symlink() {
                        let target = std::fs::read_link(e.path()).unwrap();
                        (relative, "symlink".into(), target.into_os_string().into_encoded_bytes(), 0)
                    } else if meta.is_dir() {
                        (relative, "directory".into(), Vec::new(), 0)
                    } else {
                        (relative, "file".into(), std::fs::read(e.path()).unwrap(), meta.permissions().mode() & 0o7777)
                    }
                })
                .collect()
        };
        assert_eq!(list(ours), list(theirs));
    }

    #[test]
    fn malformed_nars_are_refused_with_one_line() {
        let limits = NarLimits::DEFAULT;
        let nar = serialise(&sample());
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (nar[..nar.len() - 8].to_vec(), "ends early"),
            ([&nar[..], b"x"].concat(), "data after the end"),
            (serialise(&entries(&[("..", file(b""))])), "is not a file name"),
            (serialise(&entries(&[(".", file(b""))])), "is not a file name"),
            (serialise(&entries(&[("", file(b""))])), "is empty"),
            (serialise(&entries(&[("a/b", file(b""))])), "contains /"),
            (serialise(&entries(&[("a\0", file(b""))])), "contains NUL"),
            (serialise(&Tree::Link(Vec::new())), "symlink target \"\" is empty"),
            (serialise(&Tree::Link(b"a\0b".to_vec())), "contains NUL"),
            (serialise(&Tree::Link(vec![b'a'; MAX_TARGET_BYTES + 1])), "longer than the limit of 4096"),
            (serialise(&entries(&[(&"n".repeat(256), file(b""))])), "longer than the limit of 255"),
        ];
        for (nar, expected) in cases {
            let message = refused(&nar, &limits);
            assert!(message.contains(expected), "{message} does not say {expected}");
        }
        let unsorted = serialise(&entries(&[("a", file(b"")), ("b", file(b""))]));
        let swapped = String::from_utf8_lossy(&unsorted).replacen("\u{1}\0\0\0\0\0\0\0a", "\u{1}\0\0\0\0\0\0\0c", 1);
        assert!(refused(swapped.as_bytes(), &limits).contains("does not sort after \"c\""));
        let twice = String::from_utf8_lossy(&unsorted).replacen("\u{1}\0\0\0\0\0\0\0b", "\u{1}\0\0\0\0\0\0\0a", 1);
        assert!(refused(twice.as_bytes(), &limits).contains("entry \"a\" does not sort after \"a\""));
        let mut padded = serialise(&file(b"x"));
        let at = padded.len() - 16 - 1;
        padded[at] = 1;
        assert!(refused(&padded, &limits).contains("non-zero padding"));
        let marked = serialise(&Tree::File { executable: true, contents: Vec::new() });
        let marked = String::from_utf8_lossy(&marked).replacen(
            "\0\0\0\0\0\0\0\0\u{8}",
            "\u{1}\0\0\0\0\0\0\0x\0\0\0\0\0\0\0\u{8}",
            1,
        );
        assert!(refused(marked.as_bytes(), &limits).contains("an empty string after `executable`"));
        let strange = String::from_utf8_lossy(&serialise(&file(b""))).replacen("regular", "regulax", 1);
        assert!(refused(strange.as_bytes(), &limits).contains("found \"regulax\""));
        assert!(refused(b"\x0d\0\0\0\0\0\0\0nix-archive-2\0\0\0", &limits).contains("expected `nix-archive-1`"));
    }

    #[test]
    fn limits_are_enforced_before_anything_is_read() {
        let nar = serialise(&sample());
        let small = |change: fn(&mut NarLimits)| {
            let mut limits = NarLimits::DEFAULT;
            change(&mut limits);
            refused(&nar, &limits)
        };
        assert!(small(|l| l.max_contents = 999).contains("exceed the limit of 999 bytes"));
        assert!(small(|l| l.max_nodes = 5).contains("more than 5 files"));
        assert!(small(|l| l.max_depth = 0).contains("deeper than 0 levels"));
        let mut huge = serialise(&file(b""));
        let size_at = huge.len() - 24;
        huge[size_at..size_at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(refused(&huge, &NarLimits::DEFAULT).contains("exceed the limit of 17179869184 bytes"));
        let mut deep = entries(&[]);
        for _ in 0..200 {
            deep = entries(&[("d", deep)]);
        }
        assert!(refused(&serialise(&deep), &NarLimits::DEFAULT).contains("deeper than 128 levels"));
    }

    #[test]
    fn a_file_cut_short_is_truncation_not_a_write_error() {
        let nar = serialise(&file(&[1; 100]));
        let message = refused(&nar[..60], &NarLimits::DEFAULT);
        assert_eq!(message, "the NAR ends early, at byte 60");
        let dir = tempfile::tempdir().unwrap();
        let error = unpack(&nar[..60], &dir.path().join("out"), &NarLimits::DEFAULT).unwrap_err();
        assert_eq!(error.to_string(), "the NAR ends early, at byte 60");
        assert!(!dir.path().join("out").exists(), "the partial file is removed");
    }

    #[test]
    fn unpacking_never_replaces_or_follows_what_exists() {
        let dir = tempfile::tempdir().unwrap();
        let existing = dir.path().join("existing");
        std::fs::create_dir(&existing).unwrap();
        std::fs::write(existing.join("keep"), b"mine").unwrap();
        let error = unpack(&serialise(&sample())[..], &existing, &NarLimits::DEFAULT).unwrap_err();
        assert!(error.to_string().starts_with(&format!("cannot create {}", existing.display())), "{error}");
        assert_eq!(std::fs::read(existing.join("keep")).unwrap(), b"mine", "an existing destination is left alone");
        let outside = dir.path().join("outside");
        std::os::unix::fs::symlink(&outside, dir.path().join("dangling")).unwrap();
        assert!(unpack(&serialise(&file(b"x"))[..], &dir.path().join("dangling"), &NarLimits::DEFAULT).is_err());
        assert!(!outside.exists(), "a symlink at the destination is not followed");
    }

    /// Small trees with names that sort in interesting ways.
    fn tree() -> impl Strategy<Value = Tree> {
        let name = prop::sample::select(vec!["a", "B", "b", "ab", "a.b", "-", "ä", "bin", "lib", "z"]);
        let leaf = prop_oneof![
            (any::<bool>(), prop::collection::vec(any::<u8>(), 0..40))
                .prop_map(|(executable, contents)| Tree::File { executable, contents }),
            prop::sample::select(vec!["a", "../x", "/nix/store/abc", "ä/ö"]).prop_map(|t| Tree::Link(t.into())),
        ];
        leaf.prop_recursive(4, 24, 5, move |inner| {
            prop::collection::btree_map(name.clone().prop_map(|n| n.as_bytes().to_vec()), inner, 0..5)
                .prop_map(Tree::Dir)
        })
    }

    proptest! {
        #![proptest_config(fuzz::config(768))]

        #[test]
        fn fuzz_decoding_round_trips(tree in tree()) {
            let nar = serialise(&tree);
            prop_assert_eq!(decode_tree(&nar, &NarLimits::DEFAULT).unwrap(), tree);
        }

        #[test]
        fn fuzz_decoding_mutated_nars(tree in tree(), mutations in fuzz::mutations(4)) {
            let nar = fuzz::apply(&serialise(&tree), &mutations);
            match decode_tree(&nar, &NarLimits::DEFAULT) {
                // Whatever is accepted is canonical: it serialises back to itself.
                Ok(decoded) => prop_assert_eq!(serialise(&decoded), nar),
                Err(error) => prop_assert!(fuzz::one_line(&error.to_string())),
            }
        }
    }

    proptest! {
        #![proptest_config(fuzz::config(144))]

        #[test]
        fn fuzz_unpacking_agrees_with_nix_nar(tree in tree()) {
            let dir = tempfile::tempdir().unwrap();
            let nar = serialise(&tree);
            unpack(&nar[..], &dir.path().join("ours"), &NarLimits::DEFAULT).unwrap();
            nix_nar::Decoder::new(&nar[..]).unwrap().unpack(dir.path().join("theirs")).unwrap();
            same_files(&dir.path().join("ours"), &dir.path().join("theirs"));
            let mut again = Vec::new();
            write_nar(&dir.path().join("ours"), &mut again).unwrap();
            prop_assert_eq!(again, nar);
        }

        #[test]
        fn fuzz_unpacking_mutated_nars_leaves_nothing_on_error(tree in tree(), mutations in fuzz::mutations(3)) {
            let dir = tempfile::tempdir().unwrap();
            let nar = fuzz::apply(&serialise(&tree), &mutations);
            let out = dir.path().join("out");
            match unpack(&nar[..], &out, &NarLimits::DEFAULT) {
                Ok(_) => {
                    let mut again = Vec::new();
                    write_nar(&out, &mut again).unwrap();
                    prop_assert_eq!(again, nar);
                }
                Err(error) => {
                    prop_assert!(fuzz::one_line(&error.to_string()));
                    prop_assert!(out.symlink_metadata().is_err());
                }
            }
        }
    }
}
