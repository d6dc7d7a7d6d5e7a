//! Comparing two build outputs and explaining every difference.
//!
//! Inputs are anything [`crate::compare::tree`] opens: directories, store paths, tar
//! archives (plain, gzip, zstd) and NAR files, in any combination. Passes:
//!
//! 1. Archives: the compression header (gzip mtime, OS byte, file name; zstd
//!    frame descriptor) and every member header (order, mtime, owner ids and
//!    names, mode, PAX records), streamed: only headers are kept.
//! 2. Contents: one pass computes A's NAR hash and compares B with A
//!    (names, types, permission bits, symlink targets, bytes). Identical
//!    trees end here, B's NAR hash being A's. Otherwise B is hashed too;
//!    equal NAR hashes then leave only permission bits to compare.
//! 3. Per path, in parallel: only in A / only in B, file type, permission
//!    bits, symlink target, then content. Differing content is explained:
//!    for ELF files, which sections differ; for text, a bounded unified diff;
//!    for both, the likely cause read from the differing bytes (an embedded
//!    build path, a timestamp, a Nix store hash) and the usual fix.
//!
//! Domain logic only: the report is data; `pgbin diff` prints it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::compare::tree::{self, Contents, Format, Member, Node, Tree};

/// What kind of difference a finding is: a stable reason code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    /// A path exists only in A.
    OnlyInA,
    /// A path exists only in B.
    OnlyInB,
    /// The same path is a different kind of file.
    FileType,
    /// Permission bits differ.
    Mode,
    /// A symlink points elsewhere.
    SymlinkTarget,
    /// File contents differ (see `sections`, `diff` and `cause`).
    Content,
    /// Archive members are in a different order.
    ArchiveMemberOrder,
    /// Archive member mtimes differ.
    ArchiveMtime,
    /// Archive member uid/gid differ.
    ArchiveOwner,
    /// Archive member user/group names differ.
    ArchiveOwnerName,
    /// Archive member modes differ.
    ArchiveMode,
    /// Archive PAX records differ.
    ArchivePax,
    /// The gzip header's mtime differs.
    GzipMtime,
    /// The gzip header's OS byte differs.
    GzipOs,
    /// The gzip header's stored file name differs.
    GzipName,
    /// The zstd frame header differs (checksum, content size, window, dictionary).
    ZstdFrame,
    /// The archives differ only in their compressed bytes (level, library).
    CompressedBytes,
}

/// The likely cause of a difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    /// A build directory path is embedded.
    BuildPath,
    /// A date or time is embedded.
    EmbeddedTimestamp,
    /// A Nix store path with a different hash is embedded.
    StorePathHash,
    /// Only the ELF build ID differs.
    BuildId,
    /// Archive metadata (times, owners, order, modes, PAX).
    ArchiveMetadata,
    /// Compression header or settings.
    Compression,
    /// File system permissions (umask).
    Permissions,
    /// A file is missing or of another type.
    FileSet,
    /// A recorded input differs (a bundled library's package version):
    /// set by [`crate::compare::inputs::explain`] from the manifests.
    InputChanged,
    /// Not recognised.
    Unknown,
}

impl Cause {
    /// The usual fix.
    pub fn fix(self) -> &'static str {
        match self {
            Cause::BuildPath => {
                "build at a fixed path, or map it away: -ffile-prefix-map=$PWD=. (C), and keep DESTDIR/staging paths out of installed files"
            }
            Cause::EmbeddedTimestamp => {
                "set SOURCE_DATE_EPOCH and make the tool honour it; avoid __DATE__/__TIME__ (-Werror=date-time)"
            }
            Cause::StorePathHash => "an input store path differs: compare the two derivations with nix-diff",
            Cause::BuildId => {
                "the build ID hashes the linked objects: find the object that differs; never link with --build-id=uuid"
            }
            Cause::ArchiveMetadata => {
                "normalise members: sorted names, mtime = SOURCE_DATE_EPOCH, uid/gid 0 with empty names, fixed modes, no PAX times (tar --sort=name --mtime=@$SOURCE_DATE_EPOCH --owner=0 --group=0 --numeric-owner)"
            }
            Cause::Compression => {
                "fix the compressor's header fields: gzip -n (no name, mtime 0), a fixed OS byte, fixed zstd flags and level"
            }
            Cause::Permissions => "build with a fixed umask (022) or normalise modes when archiving",
            Cause::FileSet => "a step was skipped or added: compare the two build logs",
            Cause::InputChanged => {
                "not a reproducibility problem: the builds were made from different inputs; rebuild both from the same package versions to test reproducibility"
            }
            Cause::Unknown => "inspect the bytes around the first difference (diffoscope shows them in full)",
        }
    }
}

/// One difference, explained.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Path inside the trees (or the archive member), or "" for the archive itself.
    pub path: String,
    /// Reason code.
    pub code: Code,
    /// Likely cause.
    pub cause: Cause,
    /// What differs, in one line.
    pub detail: String,
    /// The usual fix for the cause.
    pub fix: &'static str,
    /// For ELF files: the sections whose bytes differ.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sections: Vec<String>,
    /// For text files: a bounded unified diff.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

impl Finding {
    fn new(path: impl Into<String>, code: Code, cause: Cause, detail: impl Into<String>) -> Finding {
        Finding {
            path: path.into(),
            code,
            cause,
            detail: detail.into(),
            fix: cause.fix(),
            sections: Vec::new(),
            diff: None,
        }
    }
}

/// One side of the comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Side {
    /// The input path.
    pub path: String,
    /// Its format.
    pub format: Format,
    /// NAR hash of its contents (SRI).
    pub nar_hash: String,
}

/// The whole answer. `--json` prints exactly this (schema in docs/reproducibility.md).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Schema version.
    pub schema: u32,
    /// `true` when nothing differs.
    pub identical: bool,
    /// Side A.
    pub a: Side,
    /// Side B.
    pub b: Side,
    /// Number of findings per cause.
    pub causes: BTreeMap<Cause, usize>,
    /// The findings, in path order, up to the report size cap.
    pub findings: Vec<Finding>,
    /// Findings left out by the cap.
    pub omitted: usize,
}

/// Limits of the comparison.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Upper bound on the serialised size of the findings.
    pub max_report: usize,
    /// Upper bound on each text diff, in lines.
    pub max_diff_lines: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options { max_report: 1 << 20, max_diff_lines: 40 }
    }
}

/// Why the comparison could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// An input could not be opened.
    #[error(transparent)]
    Tree(#[from] tree::TreeError),
    /// Hashing failed.
    #[error(transparent)]
    Nar(#[from] crate::nix::nar::NarError),
    /// Local I/O.
    #[error("{0}")]
    Io(String),
}

/// Compares `a` and `b`; archives too large for memory are extracted under
/// `scratch`.
pub fn diff(a: &Path, b: &Path, scratch: &Path, options: Options) -> Result<Report, DiffError> {
    // Each side is opened in its own thread, so that both decompress at
    // once; A, read into memory, is hashed in its thread too.
    let (opened_a, tree_b) = std::thread::scope(|s| {
        let b_thread = s.spawn(|| tree::open(b, scratch));
        let a_tree = tree::open(a, scratch).map_err(DiffError::from).and_then(|tree| {
            let hash = match tree.contents {
                Contents::Memory(_) => Some(tree.nar_hash()?),
                Contents::Disk(_) => None,
            };
            Ok((tree, hash))
        });
        (a_tree, b_thread.join().expect("opening does not panic"))
    });
    let ((tree_a, hash_a), tree_b) = (opened_a?, tree_b?);
    // B in memory with A's serialisation has A's hash: comparing the bytes
    // is much cheaper than hashing them.
    let hash_b = match (&tree_a.contents, &tree_b.contents, hash_a) {
        (Contents::Memory(mine), Contents::Memory(theirs), Some(hash)) if mine.same_nar(theirs) => Some(hash),
        (_, Contents::Memory(_), _) => Some(tree_b.nar_hash()?),
        _ => None,
    };
    let mut findings = Vec::new();
    let archives_differ = tree_a.format.is_tar() && tree_b.format.is_tar() && !same_file_bytes(a, b)?;
    if archives_differ {
        findings.extend(compare_archives(&tree_a, &tree_b)?);
    }
    let modes = tree_a.keeps_modes() && tree_b.keeps_modes();
    let (hash_a, hash_b, same) = match (tree_a.disk_root(), tree_b.disk_root(), hash_a, hash_b) {
        // Two trees on disk: one pass hashes A and compares B with it
        // (names, types, modes, symlinks, bytes): when they agree, B's NAR
        // hash is A's and nothing else needs reading.
        (Some(root_a), Some(root_b), _, _) => {
            let (hash_a, same) = crate::nix::nar::hash_comparing(root_a, Some(root_b), modes)?;
            let hash_b = if same { hash_a } else { crate::nix::nar::hash_path(root_b)? };
            (hash_a, hash_b, same)
        }
        (_, _, hash_a, hash_b) => {
            let hash_a = hash_a.map_or_else(|| tree_a.nar_hash(), Ok)?;
            let hash_b = hash_b.map_or_else(|| tree_b.nar_hash(), Ok)?;
            (hash_a, hash_b, false)
        }
    };
    if !same {
        // Equal NAR hashes mean equal contents and executable bits; other
        // permission bits are still compared (they end up in archives).
        findings.extend(compare_trees(&tree_a, &tree_b, options, hash_a != hash_b, modes)?);
    }
    // Compressed bytes are compared only between archives of one format: a
    // .tar.gz and the .tar inside it hold the same members.
    if findings.is_empty() && archives_differ && tree_a.format == tree_b.format {
        findings.push(Finding::new(
            "",
            Code::CompressedBytes,
            Cause::Compression,
            "same members and headers, different compressed bytes (compression level or library)",
        ));
    }
    let mut causes = BTreeMap::new();
    for finding in &findings {
        *causes.entry(finding.cause).or_insert(0) += 1;
    }
    let identical = findings.is_empty() && hash_a == hash_b;
    let (findings, omitted) = cap(findings, options.max_report);
    let side = |t: &Tree, h: &[u8; 32]| Side {
        path: t.source.display().to_string(),
        format: t.format,
        nar_hash: crate::nix::nar::sri(h),
    };
    Ok(Report { schema: 1, identical, a: side(&tree_a, &hash_a), b: side(&tree_b, &hash_b), causes, findings, omitted })
}

/// Keeps findings while their JSON stays under `max` bytes.
fn cap(findings: Vec<Finding>, max: usize) -> (Vec<Finding>, usize) {
    let mut kept = Vec::new();
    let mut size = 0;
    let total = findings.len();
    for finding in findings {
        size += serde_json::to_vec(&finding).map_or(0, |v| v.len());
        if size > max {
            break;
        }
        kept.push(finding);
    }
    let omitted = total - kept.len();
    (kept, omitted)
}

/// Whether two files hold the same bytes: sizes first, then the bytes in
/// blocks until the first difference.
fn same_file_bytes(a: &Path, b: &Path) -> Result<bool, DiffError> {
    fn io(p: &Path) -> impl Fn(std::io::Error) -> DiffError + '_ {
        move |e| DiffError::Io(format!("{}: {e}", p.display()))
    }
    let (size_a, size_b) = (std::fs::metadata(a).map_err(io(a))?.len(), std::fs::metadata(b).map_err(io(b))?.len());
    if size_a != size_b {
        return Ok(false);
    }
    let (mut fa, mut fb) = (std::fs::File::open(a).map_err(io(a))?, std::fs::File::open(b).map_err(io(b))?);
    same_stream(&mut fa, &mut fb, 1 << 20)
}

/// Whether two readers yield the same bytes, read in blocks of `block`
/// bytes (small for the many files of a tree, large for two archives).
fn same_stream(a: &mut impl Read, b: &mut impl Read, block: usize) -> Result<bool, DiffError> {
    let (mut ba, mut bb) = (vec![0u8; block], vec![0u8; block]);
    loop {
        let na = read_full(a, &mut ba)?;
        let nb = read_full(b, &mut bb)?;
        if na != nb || ba[..na] != bb[..nb] {
            return Ok(false);
        }
        if na == 0 {
            return Ok(true);
        }
    }
}

// ------------------------------------------------------------------ archives

/// The compression header fields that commonly differ, as (code, value).
fn compression_header(path: &Path, format: Format) -> Result<Vec<(Code, String)>, DiffError> {
    let mut head = [0u8; 64];
    let mut file = std::fs::File::open(path).map_err(|e| DiffError::Io(format!("{}: {e}", path.display())))?;
    let n = file.read(&mut head).map_err(|e| DiffError::Io(e.to_string()))?;
    let head = &head[..n];
    Ok(match format {
        Format::TarGz if head.len() >= 10 => {
            let flags = head[3];
            let name = if flags & 0x08 != 0 {
                let end = head[10..].iter().position(|&b| b == 0).map_or(head.len(), |p| 10 + p);
                String::from_utf8_lossy(&head[10..end]).to_string()
            } else {
                String::new()
            };
            vec![
                (Code::GzipMtime, u32::from_le_bytes([head[4], head[5], head[6], head[7]]).to_string()),
                (Code::GzipOs, head[9].to_string()),
                (Code::GzipName, name),
            ]
        }
        Format::TarZst if head.len() >= 5 => vec![(Code::ZstdFrame, format!("descriptor {:#04x}", head[4]))],
        _ => Vec::new(),
    })
}

fn compare_archives(a: &Tree, b: &Tree) -> Result<Vec<Finding>, DiffError> {
    let mut findings = Vec::new();
    let (header_a, header_b) = (compression_header(&a.source, a.format)?, compression_header(&b.source, b.format)?);
    for ((code, va), (_, vb)) in header_a.iter().zip(&header_b) {
        if va != vb {
            findings.push(Finding::new("", *code, Cause::Compression, format!("{va:?} vs {vb:?}")));
        }
    }
    let (members_a, members_b) = (&a.members, &b.members);
    let order_a: Vec<&str> = members_a.iter().map(|m| m.path.as_str()).collect();
    let order_b: Vec<&str> = members_b.iter().map(|m| m.path.as_str()).collect();
    let set_a: BTreeSet<&str> = order_a.iter().copied().collect();
    let set_b: BTreeSet<&str> = order_b.iter().copied().collect();
    if set_a == set_b && order_a != order_b {
        let at = order_a.iter().zip(&order_b).position(|(x, y)| x != y).unwrap_or(0);
        findings.push(Finding::new(
            order_a[at],
            Code::ArchiveMemberOrder,
            Cause::ArchiveMetadata,
            format!("members are in a different order from position {at}: {} vs {}", order_a[at], order_b[at]),
        ));
    }
    let by_path_b: BTreeMap<&str, &Member> = members_b.iter().map(|m| (m.path.as_str(), m)).collect();
    type Field = (Code, fn(&Member) -> String);
    let fields: [Field; 5] = [
        (Code::ArchiveMtime, |m| m.mtime.to_string()),
        (Code::ArchiveOwner, |m| format!("{}:{}", m.uid, m.gid)),
        (Code::ArchiveOwnerName, |m| {
            format!("{}:{}", String::from_utf8_lossy(&m.uname), String::from_utf8_lossy(&m.gname))
        }),
        (Code::ArchiveMode, |m| format!("{:o}", m.mode)),
        (Code::ArchivePax, |m| {
            m.pax.iter().map(|(k, v)| format!("{k}={}", String::from_utf8_lossy(v))).collect::<Vec<_>>().join(" ")
        }),
    ];
    for (code, field) in fields {
        let differing: Vec<(&str, String, String)> = members_a
            .iter()
            .filter_map(|member| {
                let other = by_path_b.get(member.path.as_str())?;
                let (va, vb) = (field(member), field(other));
                (va != vb).then_some((member.path.as_str(), va, vb))
            })
            .collect();
        if let Some((path, va, vb)) = differing.first() {
            findings.push(Finding::new(
                *path,
                code,
                Cause::ArchiveMetadata,
                format!("{} member(s) differ, first {path}: {va:?} vs {vb:?}", differing.len()),
            ));
        }
    }
    Ok(findings)
}

// --------------------------------------------------------------------- trees

fn kind(node: &Node) -> &'static str {
    match node {
        Node::Directory { .. } => "directory",
        Node::File { .. } => "regular file",
        Node::Symlink { .. } => "symlink",
        Node::Other => "special file",
    }
}

/// Compares paths, types and symlinks; permission bits when `modes` is set
/// (else only the executable bit); file contents when `contents` is set.
fn compare_trees(a: &Tree, b: &Tree, options: Options, contents: bool, modes: bool) -> Result<Vec<Finding>, DiffError> {
    let (index_a, index_b) = std::thread::scope(|s| {
        let b_thread = s.spawn(|| b.nodes(modes));
        (a.nodes(modes), b_thread.join().expect("indexing does not panic"))
    });
    let (index_a, index_b) = (index_a?, index_b?);
    let mut findings = Vec::new();
    let mut same_kind_files = Vec::new();
    for (relative, node) in &index_a {
        let path = &shown(relative);
        let Some(other) = index_b.get(relative) else {
            if !inside_missing_directory(relative, &index_b) {
                findings.push(Finding::new(path, Code::OnlyInA, Cause::FileSet, format!("{} only in A", kind(node))));
            }
            continue;
        };
        match (node, other) {
            (Node::File { mode: ma, size: sa }, Node::File { mode: mb, size: sb }) => {
                if ma != mb {
                    findings.push(mode_finding(path, *ma, *mb));
                }
                same_kind_files.push((relative.clone(), *sa == *sb));
            }
            (Node::Directory { mode: ma }, Node::Directory { mode: mb }) if ma != mb => {
                findings.push(mode_finding(path, *ma, *mb));
            }
            (Node::Symlink { target: ta }, Node::Symlink { target: tb }) if ta != tb => {
                let cause = cause_of_strings(&ta.to_string_lossy(), &tb.to_string_lossy());
                findings.push(Finding::new(
                    path,
                    Code::SymlinkTarget,
                    cause,
                    format!("points to {} vs {}", ta.display(), tb.display()),
                ));
            }
            (x, y) if std::mem::discriminant(x) != std::mem::discriminant(y) => {
                findings.push(Finding::new(
                    path,
                    Code::FileType,
                    Cause::FileSet,
                    format!("{} in A, {} in B", kind(x), kind(y)),
                ));
            }
            _ => {}
        }
    }
    for (relative, node) in &index_b {
        if !index_a.contains_key(relative) && !inside_missing_directory(relative, &index_a) {
            findings.push(Finding::new(
                shown(relative),
                Code::OnlyInB,
                Cause::FileSet,
                format!("{} only in B", kind(node)),
            ));
        }
    }
    if contents {
        findings.extend(compare_contents(a, b, &same_kind_files, options)?);
    }
    findings.sort_by(|x, y| x.path.cmp(&y.path).then(x.code.cmp(&y.code)));
    Ok(findings)
}

/// Whether `path`'s parent directory is itself missing from `other`: a
/// missing directory is reported once, not each file inside it.
fn inside_missing_directory(path: &Path, other: &BTreeMap<PathBuf, Node>) -> bool {
    path.parent().is_some_and(|p| !p.as_os_str().is_empty() && !other.contains_key(p))
}

/// A relative path as findings show it.
fn shown(relative: &Path) -> String {
    relative.to_string_lossy().into_owned()
}

fn mode_finding(path: &str, a: u32, b: u32) -> Finding {
    Finding::new(path, Code::Mode, Cause::Permissions, format!("mode {a:o} vs {b:o}"))
}

/// Compares file contents on all cores; explains each differing file.
fn compare_contents(
    a: &Tree,
    b: &Tree,
    files: &[(PathBuf, bool)],
    options: Options,
) -> Result<Vec<Finding>, DiffError> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).max(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    let error = std::sync::Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((path, same_size)) = files.get(i) else { break };
                    match explain_file(a, b, path, *same_size, options) {
                        Ok(Some(finding)) => results.lock().expect("not poisoned").push(finding),
                        Ok(None) => {}
                        Err(e) => {
                            *error.lock().expect("not poisoned") = Some(e);
                            break;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = error.into_inner().expect("not poisoned") {
        return Err(e);
    }
    Ok(results.into_inner().expect("not poisoned"))
}

/// Whether the file `relative` has the same bytes in both trees: on disk
/// read in blocks until the first difference, in memory compared at once.
fn same_content(a: &Tree, b: &Tree, relative: &Path) -> Result<bool, DiffError> {
    match (a.disk_root(), b.disk_root()) {
        (Some(root_a), Some(root_b)) => {
            let under = |root: &Path| if relative == Path::new(".") { root.to_path_buf() } else { root.join(relative) };
            let open = |p: PathBuf| std::fs::File::open(&p).map_err(|e| DiffError::Io(format!("{}: {e}", p.display())));
            same_stream(&mut open(under(root_a))?, &mut open(under(root_b))?, 1 << 16)
        }
        _ => Ok(a.read(relative)? == b.read(relative)?),
    }
}

fn read_full(file: &mut impl Read, buffer: &mut [u8]) -> Result<usize, DiffError> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..]).map_err(|e| DiffError::Io(e.to_string()))? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

fn explain_file(
    a: &Tree,
    b: &Tree,
    relative: &Path,
    same_size: bool,
    options: Options,
) -> Result<Option<Finding>, DiffError> {
    if same_size && same_content(a, b, relative)? {
        return Ok(None);
    }
    let path = &shown(relative);
    let (bytes_a, bytes_b) = (a.read(relative)?, b.read(relative)?);
    if crate::build::elf::is_elf(&bytes_a) && crate::build::elf::is_elf(&bytes_b) {
        return Ok(Some(explain_elf(path, &bytes_a, &bytes_b)));
    }
    let text = |bytes: &[u8]| !bytes.contains(&0) && std::str::from_utf8(bytes).is_ok();
    if text(&bytes_a) && text(&bytes_b) {
        let (ta, tb) = (String::from_utf8_lossy(&bytes_a), String::from_utf8_lossy(&bytes_b));
        let unified = similar::TextDiff::from_lines(ta.as_ref(), tb.as_ref())
            .unified_diff()
            .context_radius(2)
            .header("a", "b")
            .to_string();
        let changed: Vec<&str> = unified.lines().filter(|l| l.starts_with('-') || l.starts_with('+')).collect();
        let removed = changed.iter().filter(|l| l.starts_with('-') && !l.starts_with("---")).count();
        let added = changed.iter().filter(|l| l.starts_with('+') && !l.starts_with("+++")).count();
        let cause = cause_of_bytes(&bytes_a, &bytes_b);
        let mut finding =
            Finding::new(path, Code::Content, cause, format!("text: {removed} line(s) removed, {added} added"));
        let mut bounded: Vec<&str> = unified.lines().take(options.max_diff_lines).collect();
        if unified.lines().count() > options.max_diff_lines {
            bounded.push("... (diff truncated)");
        }
        finding.diff = Some(bounded.join("\n"));
        return Ok(Some(finding));
    }
    let at = first_difference(&bytes_a, &bytes_b);
    let cause = cause_of_bytes(&bytes_a, &bytes_b);
    Ok(Some(Finding::new(
        path,
        Code::Content,
        cause,
        format!("binary: {} vs {} bytes, first difference at offset {at}", bytes_a.len(), bytes_b.len()),
    )))
}

fn first_difference(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()))
}

/// Names the ELF sections whose bytes differ, and the likely cause.
fn explain_elf(path: &str, a: &[u8], b: &[u8]) -> Finding {
    let sections = |bytes: &[u8]| -> Option<BTreeMap<String, (usize, usize)>> {
        let elf = goblin::elf::Elf::parse(bytes).ok()?;
        Some(
            elf.section_headers
                .iter()
                .filter_map(|h| {
                    let name = elf.shdr_strtab.get_at(h.sh_name)?.to_string();
                    let range = if h.sh_type == goblin::elf::section_header::SHT_NOBITS {
                        (0, 0)
                    } else {
                        (h.sh_offset as usize, h.sh_size as usize)
                    };
                    Some((name, range))
                })
                .collect(),
        )
    };
    let (Some(sa), Some(sb)) = (sections(a), sections(b)) else {
        let at = first_difference(a, b);
        return Finding::new(
            path,
            Code::Content,
            cause_of_bytes(a, b),
            format!("ELF (unparsable), first difference at {at}"),
        );
    };
    let slice =
        |bytes: &'_ [u8], (offset, size): (usize, usize)| bytes.get(offset..offset + size).unwrap_or(&[]).to_vec();
    let names: BTreeSet<&String> = sa.keys().chain(sb.keys()).collect();
    let mut differing = Vec::new();
    let mut cause = Cause::Unknown;
    for name in names {
        let (ra, rb) = (sa.get(name).map(|r| slice(a, *r)), sb.get(name).map(|r| slice(b, *r)));
        if ra == rb {
            continue;
        }
        differing.push(name.clone());
        if cause == Cause::Unknown
            && name != ".note.gnu.build-id"
            && let (Some(ra), Some(rb)) = (&ra, &rb)
        {
            cause = cause_of_bytes(ra, rb);
        }
    }
    if differing.is_empty() {
        let at = first_difference(a, b);
        cause = cause_of_bytes(a, b);
        differing.push(format!("(headers or padding at offset {at})"));
    } else if differing == [".note.gnu.build-id"] {
        cause = Cause::BuildId;
    }
    let mut finding =
        Finding::new(path, Code::Content, cause, format!("ELF sections differ: {}", differing.join(", ")));
    finding.sections = differing;
    finding
}

/// The printable run around `at` in `bytes`.
fn printable_run(bytes: &[u8], at: usize) -> String {
    let printable = |b: &u8| b.is_ascii_graphic() || *b == b' ';
    let at = at.min(bytes.len().saturating_sub(1));
    let start = bytes[..at].iter().rposition(|b| !printable(b)).map_or(0, |p| p + 1);
    let end = bytes[at..].iter().position(|b| !printable(b)).map_or(bytes.len(), |p| at + p);
    String::from_utf8_lossy(&bytes[start.min(end)..end]).to_string()
}

/// The likely cause of two byte strings differing, read from the printable
/// text around their first difference.
pub fn cause_of_bytes(a: &[u8], b: &[u8]) -> Cause {
    if a.is_empty() || b.is_empty() {
        return Cause::Unknown;
    }
    let at = first_difference(a, b);
    cause_of_strings(&printable_run(a, at), &printable_run(b, at))
}

/// The likely cause of two strings differing.
pub fn cause_of_strings(a: &str, b: &str) -> Cause {
    if a.contains("/nix/store/") || b.contains("/nix/store/") {
        return Cause::StorePathHash;
    }
    let looks_like_time = |s: &str| {
        const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
        let bytes = s.as_bytes();
        let clock = bytes
            .windows(8)
            .any(|w| w[2] == b':' && w[5] == b':' && [0, 1, 3, 4, 6, 7].iter().all(|&i| w[i].is_ascii_digit()));
        let date = bytes
            .windows(10)
            .any(|w| w[4] == b'-' && w[7] == b'-' && [0, 1, 2, 3, 5, 6, 8, 9].iter().all(|&i| w[i].is_ascii_digit()));
        let month = MONTHS.iter().any(|m| s.contains(m)) && s.bytes().any(|c| c.is_ascii_digit());
        let epoch = s
            .split(|c: char| !c.is_ascii_digit())
            .any(|d| d.len() == 10 && d.parse::<u64>().is_ok_and(|n| (1_000_000_000..2_200_000_000).contains(&n)));
        clock || date || month || epoch
    };
    if looks_like_time(a) && looks_like_time(b) {
        return Cause::EmbeddedTimestamp;
    }
    let has_path = |s: &str| s.contains('/') && s.split('/').filter(|p| !p.is_empty()).count() >= 2;
    if has_path(a) && has_path(b) {
        return Cause::BuildPath;
    }
    Cause::Unknown
}

crate::util::error::usage_errors!(DiffError);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_are_read_from_the_differing_text() {
        assert_eq!(cause_of_strings("/tmp/build-a/src/x.c", "/tmp/build-b/src/x.c"), Cause::BuildPath);
        assert_eq!(
            cause_of_strings("built Nov 24 2026 18:42:17", "built Nov 24 2026 18:43:09"),
            Cause::EmbeddedTimestamp
        );
        assert_eq!(cause_of_strings("2026-11-24", "2026-11-25"), Cause::EmbeddedTimestamp);
        assert_eq!(cause_of_strings("t=1795545025", "t=1795545099"), Cause::EmbeddedTimestamp);
        assert_eq!(
            cause_of_strings("/nix/store/aaaa-gcc/bin/gcc", "/nix/store/bbbb-gcc/bin/gcc"),
            Cause::StorePathHash
        );
        assert_eq!(cause_of_strings("hello", "world"), Cause::Unknown);
        assert_eq!(cause_of_bytes(b"\0\0/work/a/lib\0", b"\0\0/work/b/lib\0"), Cause::BuildPath);
    }

    #[test]
    fn files_whose_names_are_not_utf8_are_compared_by_their_own_names() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let name = std::ffi::OsStr::from_bytes(b"lib\xff.so");
        for (side, content) in [("a", "one\n"), ("b", "two\n")] {
            std::fs::create_dir_all(dir.path().join(side)).unwrap();
            std::fs::write(dir.path().join(side).join(name), content).unwrap();
        }
        let report = diff(&dir.path().join("a"), &dir.path().join("b"), dir.path(), Options::default()).unwrap();
        assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
        assert_eq!(report.findings[0].code, Code::Content);
        assert_eq!(report.findings[0].path, "lib\u{fffd}.so");
    }

    #[test]
    fn the_report_is_capped() {
        let findings: Vec<Finding> =
            (0..100).map(|i| Finding::new(format!("f{i}"), Code::Content, Cause::Unknown, "x")).collect();
        let (kept, omitted) = cap(findings, 2000);
        assert!(!kept.is_empty() && omitted > 0 && kept.len() + omitted == 100);
    }
}
