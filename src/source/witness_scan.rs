//! Finding witness records in a local clone of a witness repository: every
//! (version, tarball SHA-256) a known publisher recorded on its branches,
//! with the oldest commit that holds it, the file's blob id and the lines
//! that make the excerpt. What is found is a proposal: `pgbin lock add`
//! verifies it like any other evidence.
//!
//! One [`RecordShape`] per known publisher says where its records live and
//! which lines carry the version, the tarball URL and the hash.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use gix_hash::ObjectId;
use gix_object::Kind;
use serde::Serialize;

use crate::data::lock::is_sha256_hex;
use crate::data::version::Version;
use crate::source::git::{Clone, CloneError};
use crate::source::witness_clone::MAX_WITNESSED_FILE_BYTES;

/// One step of a record file's path.
#[derive(Debug, Clone, Copy)]
pub enum Segment {
    /// Exactly this name.
    Exact(&'static str),
    /// Any name with this prefix.
    Prefix(&'static str),
    /// A name of digits only (a PostgreSQL major's directory).
    Digits,
}

impl Segment {
    fn matches(self, name: &[u8]) -> bool {
        match self {
            Segment::Exact(exact) => name == exact.as_bytes(),
            Segment::Prefix(prefix) => name.starts_with(prefix.as_bytes()),
            Segment::Digits => !name.is_empty() && name.iter().all(u8::is_ascii_digit),
        }
    }
}

/// Where one publisher records PostgreSQL tarball hashes, and how.
#[derive(Debug)]
pub struct RecordShape {
    /// The GitHub repository, spelled as GitHub spells it.
    pub repository: &'static str,
    /// The record files' paths, one segment per directory level.
    pub path: &'static [Segment],
    /// The version a line sets, if it is the version line.
    pub version_of: fn(&str) -> Option<&str>,
    /// The SHA-256 a line states, if it is the hash line.
    pub sha256_of: fn(&str) -> Option<&str>,
    /// Whether a line names the upstream `.tar.bz2` the hash is of.
    pub names_tarball: fn(&str) -> bool,
}

/// docker-library/postgres: `ENV PG_VERSION` and `ENV PG_SHA256` in the
/// Alpine Dockerfiles (`MAJOR/alpineX.Y/Dockerfile`), which download the
/// upstream `.tar.bz2` and check it with `sha256sum -c`.
const DOCKER_LIBRARY: RecordShape = RecordShape {
    repository: "docker-library/postgres",
    path: &[Segment::Digits, Segment::Prefix("alpine"), Segment::Exact("Dockerfile")],
    version_of: |line| line.strip_prefix("ENV PG_VERSION "),
    sha256_of: |line| line.strip_prefix("ENV PG_SHA256 "),
    names_tarball: |line| line.contains("postgresql-$PG_VERSION.tar.bz2"),
};

/// conda-forge/postgresql-feedstock: the recipe's `{% set version %}` and
/// its source `sha256` (a `sha256:` key or a `{% set sha256 %}`), on every
/// version branch.
const CONDA_FORGE: RecordShape = RecordShape {
    repository: "conda-forge/postgresql-feedstock",
    path: &[Segment::Exact("recipe"), Segment::Exact("meta.yaml")],
    version_of: |line| jinja_set(line, "version"),
    sha256_of: |line| jinja_set(line, "sha256").or_else(|| line.trim_start().strip_prefix("sha256: ")),
    names_tarball: |line| line.trim_start().starts_with("url:") && line.contains("postgresql-{{ version }}.tar.bz2"),
};

/// `{% set NAME = "VALUE" %}` → VALUE.
fn jinja_set<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let rest = line.strip_prefix("{% set ")?.strip_prefix(name)?.trim_start().strip_prefix('=')?.trim_start();
    rest.strip_prefix('"')?.strip_suffix("\" %}")
}

impl RecordShape {
    /// Whether `path` is one of this publisher's record files.
    pub fn is_record_path(&self, path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').collect();
        parts.len() == self.path.len() && parts.iter().zip(self.path).all(|(part, seg)| seg.matches(part.as_bytes()))
    }
}

/// The most record files one tree may hold: a publisher keeps a few per
/// major; more is a crafted repository.
const MAX_RECORD_FILES: usize = 10_000;

/// Whether a tree entry's name can be part of a record's path: UTF-8,
/// not `.` or `..`, no `/` or NUL (git never writes such names; a crafted
/// tree may).
fn usable_name(name: &[u8]) -> bool {
    std::str::from_utf8(name).is_ok() && name != b"." && name != b".." && !name.iter().any(|b| *b == b'/' || *b == 0)
}

/// Every publisher whose records pgbin can find in a clone.
pub const SHAPES: &[RecordShape] = &[DOCKER_LIBRARY, CONDA_FORGE];

/// The shape of `repository` (any case), if pgbin knows it.
pub fn shape_of(repository: &str) -> Option<&'static RecordShape> {
    SHAPES.iter().find(|s| s.repository.eq_ignore_ascii_case(repository))
}

/// One record found: a publisher's statement of one release's tarball hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FoundRecord {
    /// The release.
    pub version: Version,
    /// The SHA-256 the record states.
    pub sha256: String,
    /// `github:OWNER/REPO@COMMIT:PATH` of the oldest commit holding it.
    pub reference: String,
    /// The git blob id of the whole file there.
    pub blob: String,
    /// The committer time of that commit (seconds since the epoch).
    pub committed: i64,
    /// The witness excerpt to propose: header and the record's lines.
    pub excerpt: String,
}

/// What scanning one clone found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScanReport {
    /// The repository scanned.
    pub repository: String,
    /// Commits walked on its branches.
    pub commits: usize,
    /// Distinct record files read.
    pub files: usize,
    /// One record per (version, SHA-256), oldest first.
    pub records: Vec<FoundRecord>,
    /// Versions this publisher recorded with more than one SHA-256 on its
    /// branches: none of its records for them is proposed.
    pub conflicting: BTreeMap<Version, Vec<String>>,
    /// Version strings the publisher recorded that are not `MAJOR.MINOR`
    /// releases (betas, release candidates, pre-10 three-part versions).
    pub other_versions: Vec<String>,
}

/// The record a file states, if it states exactly one version and one hash
/// and names the upstream tarball: (version, SHA-256, the record's lines).
pub fn record_in(shape: &RecordShape, text: &str) -> Option<(String, String, Vec<String>)> {
    let mut version = None;
    let mut sha256 = None;
    let mut tarball = None;
    let mut lines = Vec::new();
    for line in text.lines() {
        if let Some(v) = (shape.version_of)(line) {
            if version.replace(v.trim()).is_some() {
                return None;
            }
            lines.push(line.to_string());
        } else if let Some(h) = (shape.sha256_of)(line) {
            if sha256.replace(h.trim()).is_some() || !is_sha256_hex(h.trim()) {
                return None;
            }
            lines.push(line.to_string());
        } else if tarball.is_none() && (shape.names_tarball)(line) {
            tarball = Some(());
            lines.push(line.to_string());
        }
    }
    tarball?;
    Some((version?.to_string(), sha256?.to_string(), lines))
}

/// The record files under `tree` (at `depth` of the shape's path), with
/// their paths: memoised per tree, since most trees repeat from commit to
/// commit.
fn record_files(
    clone: &Clone,
    shape: &RecordShape,
    tree: ObjectId,
    depth: usize,
    memo: &mut HashMap<(ObjectId, usize), Vec<(String, ObjectId)>>,
) -> Result<Vec<(String, ObjectId)>, CloneError> {
    if let Some(found) = memo.get(&(tree, depth)) {
        return Ok(found.clone());
    }
    let mut found = Vec::new();
    let segment = shape.path[depth];
    let last = depth + 1 == shape.path.len();
    for entry in clone.tree(&tree)? {
        if !usable_name(&entry.name) || !segment.matches(&entry.name) {
            continue;
        }
        let name = String::from_utf8_lossy(&entry.name).into_owned();
        if last && entry.is_file {
            found.push((name, entry.id));
        } else if !last && entry.is_tree {
            for (below, blob) in record_files(clone, shape, entry.id, depth + 1, memo)? {
                found.push((format!("{name}/{below}"), blob));
            }
        }
        if found.len() > MAX_RECORD_FILES {
            return Err(CloneError::Unusable {
                dir: clone.dir().display().to_string(),
                reason: format!("one tree holds more than {MAX_RECORD_FILES} {} record files", shape.repository),
            });
        }
    }
    memo.insert((tree, depth), found.clone());
    Ok(found)
}

/// Scans the branches of the clone in `dir` for `shape`'s records.
pub fn scan_clone(dir: &Path, shape: &RecordShape) -> Result<ScanReport, CloneError> {
    let clone = Clone::open(dir)?;
    let mut commits = clone.branch_history()?;
    commits.sort_by_key(|c| (c.time, c.id));
    let mut memo = HashMap::new();
    let mut read: HashSet<ObjectId> = HashSet::new();
    let mut by_version: BTreeMap<Version, BTreeMap<String, FoundRecord>> = BTreeMap::new();
    let mut other_versions = Vec::new();
    for commit in &commits {
        for (path, blob) in record_files(&clone, shape, commit.tree, 0, &mut memo)? {
            if !read.insert(blob) {
                continue;
            }
            let Some(bytes) = clone.try_read(&blob, Kind::Blob, MAX_WITNESSED_FILE_BYTES)? else { continue };
            let Some((version_text, sha256, lines)) = record_in(shape, &String::from_utf8_lossy(&bytes)) else {
                continue;
            };
            let Ok(version) = version_text.parse::<Version>() else {
                other_versions.push(version_text);
                continue;
            };
            let reference = format!("github:{}@{}:{path}", shape.repository, commit.id);
            let excerpt = format!(
                "Publisher: {}\nReference: {reference}\nBlob: {blob}\n\n{}\n",
                shape.repository,
                lines.join("\n")
            );
            by_version.entry(version).or_default().entry(sha256.clone()).or_insert(FoundRecord {
                version,
                sha256,
                reference,
                blob: blob.to_string(),
                committed: commit.time,
                excerpt,
            });
        }
    }
    let mut report = ScanReport {
        repository: shape.repository.to_string(),
        commits: commits.len(),
        files: read.len(),
        ..ScanReport::default()
    };
    for (version, records) in by_version {
        if records.len() > 1 {
            report.conflicting.insert(version, records.into_keys().collect());
        } else {
            report.records.extend(records.into_values());
        }
    }
    other_versions.sort();
    other_versions.dedup();
    report.other_versions = other_versions;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::documents::parse_witness_document;
    use crate::source::git::tests::git;
    use crate::source::witness_clone::{WitnessedFile, check_witness_in_clone};

    const HASH_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const HASH_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn dockerfile(version: &str, hash: &str) -> String {
        format!(
            "FROM alpine\nENV PG_MAJOR 17\nENV PG_VERSION {version}\nENV PG_SHA256 {hash}\nRUN set -eux; \\\n\twget -O postgresql.tar.bz2 \"https://example.org/v$PG_VERSION/postgresql-$PG_VERSION.tar.bz2\"; \\\n\ttrue\n"
        )
    }

    /// Commits `path` = `text`, one second after the previous commit (the
    /// scan orders commits by committer time; commits made within one
    /// second would tie).
    fn commit_file(dir: &Path, path: &str, text: &str, message: &str) -> String {
        static CLOCK: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(1_700_000_000);
        let file = dir.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
        git(dir, &["add", "-A"]);
        let when = format!("@{} +0000", CLOCK.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
        let status = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "commit.gpgsign=false"])
            .args(["commit", "-q", "-m", message])
            .env("GIT_COMMITTER_DATE", &when)
            .env("GIT_AUTHOR_DATE", &when)
            .status()
            .unwrap();
        assert!(status.success());
        git(dir, &["rev-parse", "HEAD"])
    }

    #[test]
    fn records_on_branches_become_checkable_excerpts() {
        let dir = tempfile::tempdir().unwrap();
        git(dir.path(), &["init", "-q", "-b", "main"]);
        let first = commit_file(dir.path(), "17/alpine3.20/Dockerfile", &dockerfile("17.5", HASH_A), "17.5");
        commit_file(dir.path(), "17/bookworm/Dockerfile", "ENV PG_VERSION 17.5\n", "no hash here");
        commit_file(dir.path(), "17/alpine3.20/Dockerfile", &dockerfile("17.6", HASH_B), "17.6");
        // A pull request's commit lies about 17.6: it is not on a branch.
        git(dir.path(), &["checkout", "-q", "-b", "pr"]);
        let lie = commit_file(dir.path(), "17/alpine3.21/Dockerfile", &dockerfile("17.6", HASH_A), "lie");
        git(dir.path(), &["checkout", "-q", "main"]);
        git(dir.path(), &["update-ref", "refs/pull/7/head", &lie]);
        git(dir.path(), &["branch", "-q", "-D", "pr"]);
        commit_file(dir.path(), "17/alpine3.21/Dockerfile", &dockerfile("18rc1", HASH_A), "rc");

        let report = scan_clone(dir.path(), &DOCKER_LIBRARY).unwrap();
        assert_eq!(report.commits, 4);
        assert!(report.conflicting.is_empty(), "{:?}", report.conflicting);
        assert_eq!(report.other_versions, vec!["18rc1".to_string()]);
        let versions: Vec<String> = report.records.iter().map(|r| r.version.to_string()).collect();
        assert_eq!(versions, ["17.5", "17.6"]);
        let first_record = &report.records[0];
        assert_eq!(first_record.reference, format!("github:docker-library/postgres@{first}:17/alpine3.20/Dockerfile"));
        for record in &report.records {
            let witness = parse_witness_document(&record.excerpt, record.version).unwrap();
            assert_eq!(witness.sha256, record.sha256);
            check_witness_in_clone(
                dir.path(),
                &WitnessedFile {
                    reference: &witness.reference,
                    commit: &witness.commit,
                    path: &witness.path,
                    blob: witness.blob.as_deref().unwrap(),
                    excerpt: &witness.body,
                },
            )
            .unwrap();
        }
        assert!(first_record.excerpt.contains("postgresql-$PG_VERSION.tar.bz2"), "the excerpt names the tarball");

        // Once a branch holds the lie, the publisher contradicts itself.
        git(dir.path(), &["branch", "-q", "other", &lie]);
        let report = scan_clone(dir.path(), &DOCKER_LIBRARY).unwrap();
        assert_eq!(report.conflicting.keys().map(ToString::to_string).collect::<Vec<_>>(), ["17.6"]);
        assert!(report.records.iter().all(|r| r.version.to_string() != "17.6"));
    }

    #[test]
    fn conda_recipes_in_both_spellings() {
        let shape = &CONDA_FORGE;
        let url = "  url: https://example.org/v{{ version }}/postgresql-{{ version }}.tar.bz2";
        let key = format!("{{% set version = \"16.4\" %}}\nsource:\n{url}\n  sha256: {HASH_A}\n");
        let (version, hash, lines) = record_in(shape, &key).unwrap();
        assert_eq!((version.as_str(), hash.as_str(), lines.len()), ("16.4", HASH_A, 3));
        let set = format!("{{% set version = \"16.4\" %}}\n{{% set sha256 = \"{HASH_A}\" %}}\nsource:\n{url}\n");
        assert_eq!(record_in(shape, &set).unwrap().1, HASH_A);
        assert!(record_in(shape, &key.replace(".tar.bz2", ".tar.gz")).is_none(), "another tarball's hash");
        let two = format!("{key}  sha256: {HASH_B}\n");
        assert!(record_in(shape, &two).is_none(), "two hashes in one file are no record");
    }
}
