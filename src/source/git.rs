//! Reading a local git clone of a witness repository as untrusted data.
//!
//! Objects are read with gitoxide's object database (`gix-odb`) and parsed
//! with `gix-object`; no git program runs and no configuration, hook or
//! working tree of the clone is used. Every object read is re-hashed with
//! collision-detecting SHA-1 before it is believed, and bounded in size, so
//! a clone whose object files were edited cannot pass and a huge object
//! cannot be loaded. The clone's branch references are the one thing taken
//! on trust: they say which commits count as the repository's own history
//! (fork commits that GitHub serves under the parent's name are not on its
//! branches); the CI workflow checks the same against GitHub itself.

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};

use gix_hash::ObjectId;
use gix_object::{Find, Kind};

use crate::util::error::{Classify, FailureKind};

/// A tree or commit object read on the way is bounded: a tree of a large
/// repository's top directory is well under 1 MiB.
pub const MAX_OBJECT_BYTES: u64 = 8 << 20;

/// The most commits one walk of a clone's branches visits.
pub const MAX_COMMITS: usize = 1_000_000;

/// The most bytes of branch references read (`packed-refs` of a large
/// repository is a few MiB).
const REFS_BOUND: crate::util::confined::Bound =
    crate::util::confined::Bound { bytes: 64 << 20, what: "a git reference file" };

/// Why a clone could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CloneError {
    /// The directory is not a git repository pgbin can read, or an object
    /// in it is damaged or too large.
    #[error("{dir}: {reason}; pass a git clone (or bare repository) of the witness's repository")]
    Unusable {
        /// The directory given.
        dir: String,
        /// What is wrong.
        reason: String,
    },
    /// The clone lacks an object that is needed.
    #[error("{dir}: {what} is not in this clone; fetch the repository's history and retry")]
    Missing {
        /// The directory given.
        dir: String,
        /// Which object.
        what: String,
    },
}

impl Classify for CloneError {
    fn kind(&self) -> FailureKind {
        FailureKind::Usage
    }
}

/// An opened clone: its object database and where its references are.
pub struct Clone {
    dir: PathBuf,
    git_dir: PathBuf,
    odb: gix_odb::Handle,
    /// The commits on the branches, walked once, on first need.
    on_branches: std::cell::OnceCell<HashSet<ObjectId>>,
    /// Bytes of objects this clone may still be read for.
    budget: std::cell::Cell<u64>,
}

/// The most bytes of objects read from one clone in all: a full history
/// walk of a large repository reads a few hundred MiB of commits and trees.
pub const MAX_HISTORY_BYTES: u64 = 4 << 30;

/// The most files and directories the object store may hold.
const MAX_STORE_ENTRIES: usize = 4_000_000;

/// Refuses an object store that could make reading it follow a link, block
/// or leave the clone: anything but regular files and directories under
/// `objects/` (links, FIFOs, devices), and alternates (other object stores
/// named by path).
fn check_object_store(objects: &Path) -> Result<(), String> {
    if std::fs::symlink_metadata(objects.join("info/alternates")).is_ok() {
        return Err("objects/info/alternates names other object stores; pass a self-contained clone".into());
    }
    let mut pending = vec![objects.to_path_buf()];
    let mut seen = 0usize;
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
            seen += 1;
            if seen > MAX_STORE_ENTRIES {
                return Err(format!("its object store holds more than {MAX_STORE_ENTRIES} entries"));
            }
            let kind = entry.file_type().map_err(|e| format!("{}: {e}", entry.path().display()))?;
            if kind.is_dir() {
                pending.push(entry.path());
            } else if !kind.is_file() {
                return Err(format!("{} is not a regular file or directory", entry.path().display()));
            }
        }
    }
    Ok(())
}

/// One commit of a walk: its id, committer time and root tree.
#[derive(Debug, Clone)]
pub struct CommitInfo {
    /// The commit id.
    pub id: ObjectId,
    /// Committer time, seconds since the epoch.
    pub time: i64,
    /// The commit's root tree.
    pub tree: ObjectId,
}

/// One entry of a tree.
#[derive(Debug, Clone)]
pub struct TreeEntry {
    /// The entry's name (raw bytes, as git stores them).
    pub name: Vec<u8>,
    /// The object it names.
    pub id: ObjectId,
    /// A subdirectory.
    pub is_tree: bool,
    /// A regular file (executable or not); links and submodules are neither.
    pub is_file: bool,
}

fn is_real_dir(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_dir())
}

fn is_real_file(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file())
}

impl Clone {
    /// Opens the clone in `dir`: `DIR/.git` for a clone with a work tree,
    /// `DIR` itself for a bare repository. Neither may be a link.
    pub fn open(dir: &Path) -> Result<Clone, CloneError> {
        let unusable = |reason: String| CloneError::Unusable { dir: dir.display().to_string(), reason };
        let dot_git = dir.join(".git");
        let git_dir = if is_real_dir(&dot_git) {
            dot_git
        } else if std::fs::symlink_metadata(&dot_git).is_ok() {
            return Err(unusable(".git is a file or link (a worktree or submodule), not a repository".into()));
        } else {
            dir.to_path_buf()
        };
        let objects = git_dir.join("objects");
        if !is_real_dir(&objects) || !is_real_file(&git_dir.join("HEAD")) {
            return Err(unusable("no git repository here (no objects directory and HEAD)".into()));
        }
        check_object_store(&objects).map_err(unusable)?;
        let options =
            gix_odb::store::init::Options { alloc_limit_bytes: Some(MAX_OBJECT_BYTES as usize), ..Default::default() };
        let odb = gix_odb::at_opts(&objects, gix_hash::Kind::Sha1, std::iter::empty(), options)
            .map_err(|e| unusable(format!("cannot open its object database: {e}")))?;
        Ok(Clone {
            dir: dir.to_path_buf(),
            git_dir,
            odb,
            on_branches: std::cell::OnceCell::new(),
            budget: std::cell::Cell::new(MAX_HISTORY_BYTES),
        })
    }

    /// The directory the clone was opened from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn unusable(&self, reason: String) -> CloneError {
        CloneError::Unusable { dir: self.dir.display().to_string(), reason }
    }

    /// Reads one object of kind `expected`, at most `bound` bytes, and
    /// proves its id by hashing it. `Ok(None)` when the clone lacks it.
    pub fn try_read(&self, id: &gix_hash::oid, expected: Kind, bound: u64) -> Result<Option<Vec<u8>>, CloneError> {
        let unusable = |e: &dyn std::fmt::Display| self.unusable(format!("reading {expected} {id}: {e}"));
        let Some(header) = gix_odb::Header::try_header(&self.odb, id).map_err(|e| unusable(&e))? else {
            return Ok(None);
        };
        if header.size() > bound {
            return Err(unusable(&format!(
                "{} bytes, more than the {bound} such an object may have here",
                header.size()
            )));
        }
        let left = self.budget.get().checked_sub(header.size()).ok_or_else(|| {
            self.unusable(format!("reading {id} would pass the {MAX_HISTORY_BYTES} bytes pgbin reads from one clone"))
        })?;
        self.budget.set(left);
        let mut buffer = Vec::new();
        let Some(data) = self.odb.try_find(id, &mut buffer).map_err(|e| unusable(&e))? else {
            return Ok(None);
        };
        if data.kind != expected {
            return Err(unusable(&format!("is a {}, not a {expected}", data.kind)));
        }
        let bytes = data.data.to_vec();
        if object_id(expected, &bytes).map_err(|()| unusable(&"a SHA-1 collision attack was detected"))?
            != id.as_bytes()
        {
            return Err(unusable(&"its content does not hash to its id (the object store was altered)"));
        }
        Ok(Some(bytes))
    }

    /// [`Clone::try_read`], with a missing object an error naming `what`.
    pub fn read(&self, id: &gix_hash::oid, expected: Kind, bound: u64, what: &str) -> Result<Vec<u8>, CloneError> {
        self.try_read(id, expected, bound)?
            .ok_or_else(|| CloneError::Missing { dir: self.dir.display().to_string(), what: format!("{what} {id}") })
    }

    /// The commit `id`: its time, tree and parents.
    pub fn commit(&self, id: &gix_hash::oid) -> Result<(CommitInfo, Vec<ObjectId>), CloneError> {
        self.try_commit(id)?
            .ok_or_else(|| CloneError::Missing { dir: self.dir.display().to_string(), what: format!("commit {id}") })
    }

    /// The kind of object `id` is, if the clone holds it.
    pub fn kind_of(&self, id: &gix_hash::oid) -> Result<Option<Kind>, CloneError> {
        gix_odb::Header::try_header(&self.odb, id)
            .map(|header| header.map(|h| h.kind()))
            .map_err(|e| self.unusable(format!("reading {id}: {e}")))
    }

    /// Whether the clone is shallow (its history cut off on purpose).
    pub fn is_shallow(&self) -> bool {
        std::fs::symlink_metadata(self.git_dir.join("shallow")).is_ok()
    }

    /// [`Clone::commit`], `Ok(None)` when the clone lacks it.
    fn try_commit(&self, id: &gix_hash::oid) -> Result<Option<(CommitInfo, Vec<ObjectId>)>, CloneError> {
        let Some(bytes) = self.try_read(id, Kind::Commit, MAX_OBJECT_BYTES)? else { return Ok(None) };
        let commit = gix_object::CommitRef::from_bytes(&bytes, gix_hash::Kind::Sha1)
            .map_err(|e| self.unusable(format!("commit {id} does not parse: {e}")))?;
        let time = commit.committer().ok().and_then(|s| s.time().ok()).map_or(0, |t| t.seconds);
        let info = CommitInfo { id: id.to_owned(), time, tree: commit.tree() };
        Ok(Some((info, commit.parents().collect())))
    }

    /// The entries of tree `id`.
    pub fn tree(&self, id: &gix_hash::oid) -> Result<Vec<TreeEntry>, CloneError> {
        let bytes = self.read(id, Kind::Tree, MAX_OBJECT_BYTES, "tree")?;
        let tree = gix_object::TreeRef::from_bytes(&bytes, gix_hash::Kind::Sha1)
            .map_err(|e| self.unusable(format!("tree {id} does not parse: {e}")))?;
        Ok(tree
            .entries
            .iter()
            .map(|e| TreeEntry {
                name: e.filename.to_vec(),
                id: e.oid.to_owned(),
                is_tree: e.mode.is_tree(),
                is_file: e.mode.is_blob(),
            })
            .collect())
    }

    /// The tips of the clone's branches: `refs/heads/*` and
    /// `refs/remotes/origin/*` (the remote `git clone` makes for the
    /// repository it cloned), loose or packed. Pull-request references, and
    /// other remotes' branches (a fork added as a remote), are not branches
    /// of the repository and are left out.
    pub fn branch_tips(&self) -> Result<Vec<ObjectId>, CloneError> {
        let mut tips = Vec::new();
        if std::fs::symlink_metadata(self.git_dir.join("packed-refs")).is_ok() {
            let text = self.read_ref(Path::new("packed-refs"))?;
            for line in text.lines() {
                if let Some((hex, name)) = line.split_once(' ') {
                    if is_branch(name) {
                        tips.push(self.parse_id(hex, name)?);
                    }
                }
            }
        }
        for top in ["refs/heads", "refs/remotes/origin"] {
            let mut pending = vec![PathBuf::from(top)];
            while let Some(relative) = pending.pop() {
                if !is_real_dir(&self.git_dir.join(&relative)) {
                    continue;
                }
                let dir = self.git_dir.join(&relative);
                let entries = std::fs::read_dir(&dir).map_err(|e| self.unusable(format!("{}: {e}", dir.display())))?;
                for entry in entries {
                    let entry = entry.map_err(|e| self.unusable(format!("{}: {e}", dir.display())))?;
                    let child = relative.join(entry.file_name());
                    let kind = entry.file_type().map_err(|e| self.unusable(format!("{}: {e}", child.display())))?;
                    if kind.is_dir() {
                        pending.push(child);
                    } else {
                        let text = self.read_ref(&child)?;
                        let name = child.display().to_string();
                        let text = text.trim();
                        if !text.starts_with("ref:") {
                            tips.push(self.parse_id(text, &name)?);
                        }
                    }
                }
            }
        }
        tips.sort();
        tips.dedup();
        if tips.is_empty() {
            return Err(self.unusable("it has no branches (refs/heads or refs/remotes/origin)".into()));
        }
        Ok(tips)
    }

    /// Reads a reference file below the git directory: regular files only,
    /// no link followed on the way, bounded.
    fn read_ref(&self, relative: &Path) -> Result<String, CloneError> {
        crate::util::confined::read_confined(&self.git_dir, relative, REFS_BOUND)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .map_err(|e| self.unusable(e.to_string()))
    }

    fn parse_id(&self, hex: &str, name: &str) -> Result<ObjectId, CloneError> {
        ObjectId::from_hex(hex.trim().as_bytes())
            .map_err(|e| self.unusable(format!("reference {name} holds no object id: {e}")))
    }

    /// Every commit reachable from the branches, each once, at most
    /// [`MAX_COMMITS`]. Commits of a shallow clone's cut-off history are
    /// simply absent.
    pub fn branch_history(&self) -> Result<Vec<CommitInfo>, CloneError> {
        let tips = self.branch_tips()?;
        let mut seen: HashSet<ObjectId> = tips.iter().copied().collect();
        let mut queue: VecDeque<ObjectId> = tips.into_iter().collect();
        let mut commits = Vec::new();
        while let Some(id) = queue.pop_front() {
            let Some((info, parents)) = self.try_commit(&id)? else { continue };
            commits.push(info);
            for parent in parents {
                if seen.insert(parent) {
                    if seen.len() > MAX_COMMITS {
                        return Err(self.unusable(format!("its branches hold more than {MAX_COMMITS} commits")));
                    }
                    queue.push_back(parent);
                }
            }
        }
        Ok(commits)
    }

    /// Whether `commit` is on one of the clone's branches (the branches
    /// are walked once per opened clone).
    pub fn on_a_branch(&self, commit: &gix_hash::oid) -> Result<bool, CloneError> {
        if self.on_branches.get().is_none() {
            let commits = self.branch_history()?.into_iter().map(|c| c.id).collect();
            let _ = self.on_branches.set(commits);
        }
        Ok(self.on_branches.get().is_some_and(|set| set.contains(commit)))
    }

    /// The blob at `path` in `commit`'s tree: `Ok(Err(reason))` when the
    /// commit has no regular file there.
    pub fn file_at(&self, commit: &gix_hash::oid, path: &str) -> Result<Result<ObjectId, String>, CloneError> {
        let (info, _) = self.commit(commit)?;
        let mut tree_id = info.tree;
        let components: Vec<&str> = path.split('/').collect();
        for (depth, name) in components.iter().enumerate() {
            let shown = components[..=depth].join("/");
            let entries = self.tree(&tree_id)?;
            let Some(entry) = entries.iter().find(|e| e.name == name.as_bytes()) else {
                return Ok(Err(format!("the commit has no {shown}")));
            };
            if depth + 1 == components.len() {
                if !entry.is_file {
                    return Ok(Err(format!("{shown} is not a regular file at that commit")));
                }
                return Ok(Ok(entry.id));
            }
            if !entry.is_tree {
                return Ok(Err(format!("{shown} is not a directory at that commit")));
            }
            tree_id = entry.id;
        }
        Ok(Err("the path is empty".into()))
    }
}

fn is_branch(name: &str) -> bool {
    name.starts_with("refs/heads/") || (name.starts_with("refs/remotes/origin/") && name != "refs/remotes/origin/HEAD")
}

/// The git object id of `content` as an object of `kind` (SHA-1 of
/// `<kind> <len>\0` and the bytes), computed with collision detection:
/// `Err` when the content carries a known collision attack.
fn object_id(kind: Kind, content: &[u8]) -> Result<[u8; 20], ()> {
    let mut hasher = sha1collisiondetection::Sha1CD::default();
    sha1collisiondetection::Digest::update(&mut hasher, format!("{kind} {}\0", content.len()).as_bytes());
    sha1collisiondetection::Digest::update(&mut hasher, content);
    hasher.finalize_cd().map(Into::into).map_err(|_| ())
}

/// The git blob id of `content`, as `git hash-object` computes it (40
/// lowercase hex digits; a content carrying a SHA-1 collision attack gets
/// no id).
pub fn blob_id(content: &[u8]) -> Option<String> {
    object_id(Kind::Blob, content).ok().map(hex::encode)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::process::Command;

    /// Runs git in `dir` with a fixed identity.
    pub(crate) fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "commit.gpgsign=false"])
            .args(args)
            .output()
            .expect("git runs");
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    #[test]
    fn branches_not_pull_requests_are_history() {
        let dir = tempfile::tempdir().unwrap();
        git(dir.path(), &["init", "-q", "-b", "main"]);
        std::fs::write(dir.path().join("f"), "one\n").unwrap();
        git(dir.path(), &["add", "f"]);
        git(dir.path(), &["commit", "-q", "-m", "one"]);
        let first = git(dir.path(), &["rev-parse", "HEAD"]);
        std::fs::write(dir.path().join("f"), "two\n").unwrap();
        git(dir.path(), &["commit", "-q", "-am", "two"]);
        let fork = git(dir.path(), &["rev-parse", "HEAD"]);
        git(dir.path(), &["update-ref", "refs/pull/1/head", &fork]);
        git(dir.path(), &["update-ref", "refs/remotes/someone/main", &fork]);
        git(dir.path(), &["reset", "-q", "--hard", &first]);
        git(dir.path(), &["update-ref", "refs/remotes/origin/main", &first]);
        let clone = Clone::open(dir.path()).unwrap();
        let first = ObjectId::from_hex(first.as_bytes()).unwrap();
        let fork = ObjectId::from_hex(fork.as_bytes()).unwrap();
        assert!(clone.on_a_branch(&first).unwrap());
        assert!(
            !clone.on_a_branch(&fork).unwrap(),
            "a commit only a pull request or another remote (a fork) holds is not the repository's"
        );
        git(dir.path(), &["pack-refs", "--all"]);
        assert_eq!(clone.branch_tips().unwrap(), vec![first], "packed references are read too");
        let blob = clone.file_at(&first, "f").unwrap().unwrap();
        assert!(clone.kind_of(&blob).unwrap() == Some(Kind::Blob));
        assert_eq!(blob.to_string(), blob_id(b"one\n").unwrap());
        assert_eq!(clone.file_at(&first, "g").unwrap().unwrap_err(), "the commit has no g");
    }

    #[test]
    fn a_clone_that_would_lead_elsewhere_is_refused() {
        let make = || {
            let dir = tempfile::tempdir().unwrap();
            git(dir.path(), &["init", "-q", "-b", "main"]);
            std::fs::write(dir.path().join("f"), "one\n").unwrap();
            git(dir.path(), &["add", "f"]);
            git(dir.path(), &["commit", "-q", "-m", "one"]);
            dir
        };
        let unusable = |dir: &Path| match Clone::open(dir).and_then(|c| c.branch_tips()) {
            Err(CloneError::Unusable { reason, .. }) => reason,
            other => panic!("expected a refusal, got {:?}", other.map(|t| t.len())),
        };

        let alternates = make();
        std::fs::create_dir_all(alternates.path().join(".git/objects/info")).unwrap();
        std::fs::write(alternates.path().join(".git/objects/info/alternates"), "/dev/zero\n").unwrap();
        assert!(unusable(alternates.path()).contains("alternates"));

        let fifo = make();
        let pipe = fifo.path().join(".git/objects/pack/pack-0.idx");
        std::fs::create_dir_all(pipe.parent().unwrap()).unwrap();
        let c = std::ffi::CString::new(pipe.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo on a path this test owns.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(unusable(fifo.path()).contains("not a regular file or directory"));

        let linked_ref = make();
        let head = linked_ref.path().join(".git/refs/heads/main");
        let outside = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(outside.path(), "1111111111111111111111111111111111111111\n").unwrap();
        std::fs::remove_file(&head).unwrap();
        std::os::unix::fs::symlink(outside.path(), &head).unwrap();
        unusable(linked_ref.path());

        let linked_dir = make();
        let heads = linked_dir.path().join(".git/refs/heads");
        std::fs::remove_dir_all(&heads).unwrap();
        let elsewhere = make();
        std::os::unix::fs::symlink(elsewhere.path().join(".git/refs/heads"), &heads).unwrap();
        assert!(unusable(linked_dir.path()).contains("no branches"), "a linked refs/heads is not followed");
    }
}
