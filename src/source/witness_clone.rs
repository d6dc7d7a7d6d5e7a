//! Checking a witness against a local clone of its repository: the pinned
//! commit is on one of the clone's branches, holds exactly the recorded
//! blob at the recorded path, and that blob contains the committed
//! excerpt's lines, in order. The clone is read as untrusted data
//! ([`crate::source::git`]): every object is re-hashed before it is
//! believed, so what is checked is that the commit id pins this blob, which
//! is the same in every honest copy of the repository. That the commit is on
//! GitHub under `OWNER/REPO`, on a branch, is what the CI workflow checks
//! against GitHub itself.

use std::path::{Path, PathBuf};

use gix_object::Kind;

use crate::source::git::{Clone, CloneError};
use crate::util::error::{Classify, FailureKind};

/// The largest witnessed file read from a clone: records of source hashes
/// (Dockerfiles, recipes, package files that list many versions) are a few
/// KiB to a few hundred KiB.
pub const MAX_WITNESSED_FILE_BYTES: u64 = 4 << 20;

/// Why a witness does not check out against a clone.
#[derive(Debug, thiserror::Error)]
pub enum CloneCheckError {
    /// The clone cannot be read or lacks an object (a usage error).
    #[error(transparent)]
    Clone(#[from] CloneError),
    /// The clone contradicts the witness (a failed check).
    #[error("{reference}: {reason}")]
    Contradicted {
        /// The witness's reference.
        reference: String,
        /// What disagrees.
        reason: String,
    },
}

impl Classify for CloneCheckError {
    fn kind(&self) -> FailureKind {
        match self {
            CloneCheckError::Contradicted { .. } => FailureKind::Check,
            CloneCheckError::Clone(e) => e.kind(),
        }
    }

    fn message(&self) -> String {
        match self {
            CloneCheckError::Contradicted { .. } => format!("witness check failed: {self}"),
            other => other.to_string(),
        }
    }
}

/// What a witness claims about its repository.
#[derive(Debug, Clone, Copy)]
pub struct WitnessedFile<'a> {
    /// `github:OWNER/REPO@COMMIT:PATH`, for messages.
    pub reference: &'a str,
    /// The pinned commit, 40 hex digits.
    pub commit: &'a str,
    /// The file's path at that commit.
    pub path: &'a str,
    /// The git blob id recorded for the whole file.
    pub blob: &'a str,
    /// The committed excerpt's record lines.
    pub excerpt: &'a str,
}

/// Checks `witness` against the clone in `dir`.
pub fn check_witness_in_clone(dir: &Path, witness: &WitnessedFile) -> Result<(), CloneCheckError> {
    check_witness(&Clone::open(dir)?, witness).map(drop)
}

/// Checks `witness` against an opened clone; returns the witnessed file.
fn check_witness(clone: &Clone, witness: &WitnessedFile) -> Result<Vec<u8>, CloneCheckError> {
    let contradicted =
        |reason: String| CloneCheckError::Contradicted { reference: witness.reference.to_string(), reason };
    let parse_id = |hex: &str, what: &str| {
        gix_hash::ObjectId::from_hex(hex.as_bytes())
            .map_err(|e| contradicted(format!("{what} {hex:?} is not a SHA-1 object id: {e}")))
    };
    let commit_id = parse_id(witness.commit, "commit")?;
    let blob_id = parse_id(witness.blob, "blob")?;
    match clone.kind_of(&commit_id)? {
        Some(Kind::Commit) => {}
        Some(other) => return Err(contradicted(format!("{commit_id} is a {other}, not a commit"))),
        // A full clone lacks only commits the repository never had on its
        // branches (a fork's); a shallow one may just be cut off.
        None if !clone.is_shallow() => {
            return Err(contradicted(format!("commit {commit_id} is not in the repository's history")));
        }
        None => {}
    }
    let found = clone.file_at(&commit_id, witness.path)?.map_err(contradicted)?;
    if found != blob_id {
        return Err(contradicted(format!(
            "{} is blob {found} at that commit, the witness records {blob_id}",
            witness.path
        )));
    }
    if !clone.on_a_branch(&commit_id)? {
        return Err(contradicted(format!(
            "commit {commit_id} is on none of the clone's branches (a pull request's or a fork's commit is not the repository's record)"
        )));
    }
    let blob = clone.read(&blob_id, Kind::Blob, MAX_WITNESSED_FILE_BYTES, "blob")?;
    let text = String::from_utf8_lossy(&blob);
    if !lines_appear_in_order(witness.excerpt, &text) {
        return Err(contradicted(format!(
            "the excerpt's lines are not lines of {} at that commit, in that order",
            witness.path
        )));
    }
    Ok(blob)
}

/// Whether every non-empty line of `excerpt` is a whole line of `file`, in
/// the same order (the excerpt keeps only the lines that carry the version
/// and the hash, so others may lie between them).
pub fn lines_appear_in_order(excerpt: &str, file: &str) -> bool {
    let mut lines = file.lines();
    excerpt.lines().filter(|l| !l.trim().is_empty()).all(|wanted| lines.any(|line| line == wanted))
}

/// A local clone of one witness repository: `OWNER/REPO=DIR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessClone {
    /// The GitHub repository the clone is of, as witnesses name it.
    pub repository: String,
    /// Where the clone is.
    pub dir: PathBuf,
}

impl std::str::FromStr for WitnessClone {
    type Err = String;

    fn from_str(text: &str) -> Result<WitnessClone, String> {
        let (repository, dir) = text.split_once('=').ok_or_else(|| format!("{text:?}: expected OWNER/REPO=DIR"))?;
        let (owner, repo) = repository.split_once('/').ok_or_else(|| format!("{repository:?}: expected OWNER/REPO"))?;
        crate::data::names::github_owner(owner).map_err(|e| e.to_string())?;
        crate::data::names::github_repository(repo).map_err(|e| e.to_string())?;
        if dir.is_empty() {
            return Err(format!("{text:?}: the directory is empty"));
        }
        Ok(WitnessClone { repository: repository.to_string(), dir: PathBuf::from(dir) })
    }
}

/// What checking witnesses against clones found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CloneReport {
    /// References of the witnesses that checked out against a clone.
    pub checked: Vec<String>,
    /// References of witnesses whose repository no clone was given for.
    pub not_covered: Vec<String>,
    /// References of witnesses recorded before blob ids were, which no
    /// clone can check.
    pub not_checkable: Vec<String>,
}

/// Checks every witness document in `documents` (other evidence is skipped)
/// whose repository one of `clones` is of. A witness recorded without a
/// blob id is listed as not checkable (`lock add` refuses new ones). Where
/// pgbin knows the publisher's record shape, the file must also be one of
/// its record files and state exactly the witness's version and hash, so
/// that lines of two different records cannot make one excerpt.
pub fn check_witnesses(
    documents: &[(crate::data::version::Version, &[u8])],
    clones: &[WitnessClone],
) -> Result<CloneReport, CloneCheckError> {
    let mut report = CloneReport::default();
    let mut opened: Vec<Option<Clone>> = clones.iter().map(|_| None).collect();
    for &(version, bytes) in documents {
        let text = String::from_utf8_lossy(bytes);
        if crate::source::documents::parse_witness(&text).is_none() {
            continue;
        }
        let witness = crate::source::documents::parse_witness_document(&text, version)
            .map_err(|e| CloneCheckError::Contradicted { reference: "witness excerpt".into(), reason: e.0 })?;
        let Some(index) = clones.iter().position(|c| c.repository.eq_ignore_ascii_case(&witness.publisher)) else {
            report.not_covered.push(witness.reference);
            continue;
        };
        let Some(blob) = witness.blob.as_deref() else {
            report.not_checkable.push(witness.reference);
            continue;
        };
        let clone = match &mut opened[index] {
            Some(clone) => clone,
            slot => slot.insert(Clone::open(&clones[index].dir)?),
        };
        let file = check_witness(
            clone,
            &WitnessedFile {
                reference: &witness.reference,
                commit: &witness.commit,
                path: &witness.path,
                blob,
                excerpt: &witness.body,
            },
        )?;
        if let Some(shape) = crate::source::witness_scan::shape_of(&witness.publisher) {
            let stated = shape
                .is_record_path(&witness.path)
                .then(|| crate::source::witness_scan::record_in(shape, &String::from_utf8_lossy(&file)))
                .flatten();
            match stated {
                Some((v, sha256, _)) if v == version.to_string() && sha256 == witness.sha256 => {}
                _ => {
                    return Err(CloneCheckError::Contradicted {
                        reference: witness.reference,
                        reason: format!(
                            "the file is not one {} record stating {version} with SHA-256 {}",
                            shape.repository, witness.sha256
                        ),
                    });
                }
            }
        }
        report.checked.push(witness.reference);
    }
    Ok(report)
}

/// Every committed witness of the lock, and what checking them against
/// `clones` found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LockWitnesses {
    /// The repositories (`OWNER/REPO`) of the witnesses that record a blob
    /// id: the clones a full check needs.
    pub repositories: Vec<String>,
    /// What the clones given showed.
    #[serde(flatten)]
    pub report: CloneReport,
}

/// The committed witness excerpts of one lock entry, read from `repo`.
pub fn witness_documents(
    repo: &Path,
    entry: &crate::data::lock::LockedSource,
) -> Result<Vec<Vec<u8>>, crate::source::error::TrustError> {
    let mut documents = Vec::new();
    for item in &entry.evidence {
        if matches!(item, crate::data::lock::Evidence::Witness { .. }) {
            documents.push(crate::util::confined::read_confined(
                repo,
                Path::new(item.document().0),
                crate::source::documents::EVIDENCE_BOUND,
            )?);
        }
    }
    Ok(documents)
}

/// Checks every witness committed for every locked release against
/// `clones` (each release's witnesses under its own version).
pub fn check_lock_witnesses(
    repo: &Path,
    lock: &crate::data::lock::SourceLock,
    clones: &[WitnessClone],
) -> Result<LockWitnesses, crate::source::error::TrustError> {
    let mut result = LockWitnesses::default();
    let mut documents = Vec::new();
    for entry in &lock.sources {
        for item in &entry.evidence {
            if let crate::data::lock::Evidence::Witness { publisher, blob: Some(_), .. } = item {
                let named: WitnessClone = format!("{publisher}=.").parse().map_err(|reason: String| {
                    crate::source::error::TrustError::Mismatch { document: item.document().0.to_string(), reason }
                })?;
                result.repositories.push(named.repository.to_ascii_lowercase());
            }
        }
        documents.extend(witness_documents(repo, entry)?.into_iter().map(|bytes| (entry.version, bytes)));
    }
    let slices: Vec<_> = documents.iter().map(|(version, bytes)| (*version, bytes.as_slice())).collect();
    result.report = check_witnesses(&slices, clones)?;
    result.repositories.sort();
    result.repositories.dedup();
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::git::blob_id;
    use crate::source::git::tests::git;

    /// A real repository made with git: one commit holding a Dockerfile-like
    /// record two directories down.
    fn repository() -> (tempfile::TempDir, String, String) {
        let dir = tempfile::tempdir().unwrap();
        git(dir.path(), &["init", "-q", "-b", "main"]);
        std::fs::create_dir_all(dir.path().join("17/alpine")).unwrap();
        std::fs::write(
            dir.path().join("17/alpine/Dockerfile"),
            "FROM x\nENV PG_VERSION 17.6\nENV OTHER 1\nENV PG_SHA256 abc\n",
        )
        .unwrap();
        git(dir.path(), &["add", "."]);
        git(dir.path(), &["commit", "-q", "-m", "one"]);
        let commit = git(dir.path(), &["rev-parse", "HEAD"]);
        let blob = git(dir.path(), &["rev-parse", "HEAD:17/alpine/Dockerfile"]);
        (dir, commit, blob)
    }

    #[test]
    fn a_witness_checks_out_against_a_real_repository_and_each_lie_is_caught() {
        let (dir, commit, blob) = repository();
        let content = std::fs::read(dir.path().join("17/alpine/Dockerfile")).unwrap();
        assert_eq!(blob_id(&content).unwrap(), blob, "blob ids are computed as git computes them");
        let good = WitnessedFile {
            reference: "github:o/r@c:17/alpine/Dockerfile",
            commit: &commit,
            path: "17/alpine/Dockerfile",
            blob: &blob,
            excerpt: "ENV PG_VERSION 17.6\nENV PG_SHA256 abc\n",
        };
        check_witness_in_clone(dir.path(), &good).unwrap();
        let fail = |w: WitnessedFile| check_witness_in_clone(dir.path(), &w).unwrap_err();
        let wrong_blob = "0".repeat(40);
        assert!(matches!(fail(WitnessedFile { blob: &wrong_blob, ..good }), CloneCheckError::Contradicted { .. }));
        let e = fail(WitnessedFile { excerpt: "ENV PG_SHA256 abc\nENV PG_VERSION 17.6\n", ..good });
        assert!(e.to_string().contains("in that order"), "{e}");
        let e = fail(WitnessedFile { excerpt: "ENV PG_VERSION 17.6 \n", ..good });
        assert!(matches!(e, CloneCheckError::Contradicted { .. }), "lines match whole, not as substrings");
        let e = fail(WitnessedFile { path: "17/alpine/Dockerfile.other", ..good });
        assert!(e.to_string().contains("has no 17/alpine/Dockerfile.other"), "{e}");
        let e = fail(WitnessedFile { path: "17/alpine", ..good });
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let absent = "1".repeat(40);
        let e = fail(WitnessedFile { commit: &absent, ..good });
        assert!(
            e.to_string().contains("not in the repository's history"),
            "a full clone lacks only false commits: {e}"
        );
        assert_eq!(e.kind(), FailureKind::Check);
        let e = fail(WitnessedFile { commit: &blob, ..good });
        assert!(e.to_string().contains("is a blob, not a commit"), "{e}");
        std::fs::write(dir.path().join(".git/shallow"), format!("{commit}\n")).unwrap();
        let e = fail(WitnessedFile { commit: &absent, ..good });
        assert!(
            matches!(e, CloneCheckError::Clone(CloneError::Missing { .. })),
            "a shallow clone may just be cut off: {e}"
        );
        assert_eq!(e.kind(), FailureKind::Usage);
        let elsewhere = tempfile::tempdir().unwrap();
        assert!(matches!(
            check_witness_in_clone(elsewhere.path(), &good).unwrap_err(),
            CloneCheckError::Clone(CloneError::Unusable { .. })
        ));
    }

    #[test]
    fn a_known_publishers_witness_must_be_one_of_its_records() {
        // Lines of a docker-library record, but in a file that is not one of
        // its record files (and holds two records): refused.
        let dir = tempfile::tempdir().unwrap();
        git(dir.path(), &["init", "-q", "-b", "main"]);
        let hash = "a".repeat(64);
        let other = "b".repeat(64);
        let text = format!(
            "ENV PG_VERSION 17.6\nENV PG_SHA256 {other}\nENV PG_VERSION 17.7\nENV PG_SHA256 {hash}\nwget postgresql-$PG_VERSION.tar.bz2\n"
        );
        std::fs::create_dir_all(dir.path().join("17/alpine3.20")).unwrap();
        std::fs::write(dir.path().join("17/alpine3.20/Dockerfile"), &text).unwrap();
        git(dir.path(), &["add", "."]);
        git(dir.path(), &["commit", "-q", "-m", "two records"]);
        let commit = git(dir.path(), &["rev-parse", "HEAD"]);
        let blob = git(dir.path(), &["rev-parse", "HEAD:17/alpine3.20/Dockerfile"]);
        let excerpt = format!(
            "Publisher: docker-library/postgres\nReference: github:docker-library/postgres@{commit}:17/alpine3.20/Dockerfile\nBlob: {blob}\n\nENV PG_VERSION 17.6\nENV PG_SHA256 {hash}\n"
        );
        let clones = [WitnessClone { repository: "docker-library/postgres".into(), dir: dir.path().to_path_buf() }];
        let version = crate::data::version::Version::new(17, 6);
        let e = check_witnesses(&[(version, excerpt.as_bytes())], &clones).unwrap_err();
        assert!(e.to_string().contains("is not one docker-library/postgres record stating 17.6"), "{e}");
    }

    #[test]
    fn an_altered_object_store_is_refused() {
        let (dir, commit, blob) = repository();
        // Replace the loose blob object with one that decompresses to other
        // content under the same name.
        let object = dir.path().join(".git/objects").join(&blob[..2]).join(&blob[2..]);
        let forged = {
            use std::io::Write;
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            let body = b"ENV PG_VERSION 17.6\nENV PG_SHA256 abc\n";
            z.write_all(format!("blob {}\0", body.len()).as_bytes()).unwrap();
            z.write_all(body).unwrap();
            z.finish().unwrap()
        };
        let mut permissions = std::fs::metadata(&object).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        permissions.set_readonly(false);
        std::fs::set_permissions(&object, permissions).unwrap();
        std::fs::write(&object, forged).unwrap();
        let witness = WitnessedFile {
            reference: "github:o/r@c:17/alpine/Dockerfile",
            commit: &commit,
            path: "17/alpine/Dockerfile",
            blob: &blob,
            excerpt: "ENV PG_VERSION 17.6\n",
        };
        let e = check_witness_in_clone(dir.path(), &witness).unwrap_err();
        assert!(e.to_string().contains("does not hash to its id"), "{e}");
    }
}
