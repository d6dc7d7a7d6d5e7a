//! Recording a release in the source lock, with anti-rollback: a release
//! below the highest one locked for its major, or evidence attesting a
//! different hash for an already locked release, is refused unless
//! explicitly overridden; an override is recorded in the entry with its time
//! and reason. Every piece of evidence is verified before anything is
//! written, and evidence documents are written before the lock, which is
//! replaced in one rename; a failure removes the documents it wrote.
//! Documents are read and written only inside `evidence/`, through no link.

use std::path::{Path, PathBuf};

use crate::data::catalog::{default_urls, tarball_name};
use crate::data::lock::{Evidence, LockError, LockedSource, Override};
use crate::data::version::Version;
use crate::source::documents::{EVIDENCE_BOUND, record_from_document};
use crate::source::error::TrustError;
use crate::source::project::Project;
use crate::source::verify::{Level, basis_of, level_of, verify_evidence};
use crate::source::witness_clone::{CloneCheckError, WitnessClone, check_witnesses};
use crate::util::confined::{ConfinedError, read_confined, read_regular_file, write_confined};
use crate::util::error::{Classify, FailureKind};
use crate::util::time::format_time;

/// A release and its evidence files to record.
#[derive(Debug, Clone)]
pub struct AddRequest<'a> {
    /// The release (must be in the catalog).
    pub version: Version,
    /// Evidence files: clearsigned `.dsc`, witness excerpt or upstream `.sha256`.
    pub evidence: &'a [PathBuf],
    /// Accept a release lower than the highest locked one of its major.
    pub allow_downgrade: bool,
    /// Accept evidence attesting a different hash for a locked release.
    pub allow_changed_evidence: bool,
    /// Why an override is needed; stored in the lock.
    pub reason: Option<&'a str>,
    /// Local clones new witnesses are checked against before recording.
    pub witness_clones: &'a [WitnessClone],
}

/// What recording did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// The release is already locked with this evidence.
    Unchanged,
    /// The lock was written.
    Locked {
        /// The level the entry's evidence reaches.
        level: Level,
        /// How many evidence documents were added.
        new_documents: usize,
        /// How many of the new witnesses were checked against a clone.
        witnesses_checked: usize,
        /// What the level rests on, or what is missing
        /// ([`crate::source::verify::basis_of`]).
        basis: String,
    },
}

/// Why nothing was recorded.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The release is not in the catalog.
    #[error("PostgreSQL {0} is not in the catalog; add it to data/catalog.toml first")]
    Uncatalogued(Version),
    /// Evidence that does not verify.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// A refused lock change (disagreeing evidence, downgrade, changed hash).
    #[error("{0}")]
    Refused(String),
    /// A new witness does not check out against the clone given for it.
    #[error(transparent)]
    Clone(#[from] CloneCheckError),
    /// The new lock does not validate.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// An evidence document exists with other content.
    #[error("{0} exists with other content; refusing to overwrite evidence")]
    Exists(String),
    /// An evidence file that is not a regular file within the bound, or a
    /// document path that leaves `evidence/` or passes through a link:
    /// nothing was read or written there, so a data error (exit 2).
    #[error(transparent)]
    File(#[from] ConfinedError),
}

impl Classify for RecordError {
    fn kind(&self) -> FailureKind {
        match self {
            RecordError::Trust(e) => e.kind(),
            RecordError::Clone(e) => e.kind(),
            RecordError::Refused(_) => FailureKind::Check,
            _ => FailureKind::Usage,
        }
    }

    fn message(&self) -> String {
        match self {
            RecordError::Trust(e) => e.message(),
            RecordError::Clone(e) => e.message(),
            other => other.to_string(),
        }
    }
}

/// Verifies the evidence files of `request` and records the release in the
/// project's lock (and its documents under evidence/).
pub fn add(project: &Project, request: &AddRequest) -> Result<Recorded, RecordError> {
    let version = request.version;
    if project.catalog.release(version).is_none() {
        return Err(RecordError::Uncatalogued(version));
    }
    let now = jiff::Timestamp::now();
    let now = jiff::Timestamp::from_second(now.as_second()).expect("whole seconds are in range");
    let mut documents: Vec<(Evidence, Vec<u8>)> = Vec::new();
    for path in request.evidence {
        let bytes = read_regular_file(path, EVIDENCE_BOUND)?;
        let record = record_from_document(&project.policy, version, &bytes, &path.display().to_string(), now)?;
        documents.push((record, bytes));
    }
    let Some((first, _)) = documents.first() else {
        return Err(RecordError::Refused("no evidence document given; nothing to lock".into()));
    };
    let sha256 = first.attests().sha256.clone();
    if let Some((odd, _)) = documents.iter().find(|(e, _)| e.attests().sha256 != sha256) {
        return Err(RecordError::Refused(format!(
            "evidence disagrees: {} attests {}, {} attests {sha256}; refusing to lock",
            odd.document().0,
            odd.attests().sha256,
            first.document().0
        )));
    }
    let sizes: Vec<u64> = documents.iter().filter_map(|(e, _)| e.attests().size).collect();
    if sizes.windows(2).any(|w| w[0] != w[1]) {
        return Err(RecordError::Refused("evidence disagrees on the tarball size; refusing to lock".into()));
    }

    let mut overrides = Vec::new();
    let existing = project.lock.get(version).cloned();
    if let Some(latest) = project.lock.latest_of_major(version.major) {
        if version < latest.version && existing.is_none() {
            if !request.allow_downgrade {
                return Err(RecordError::Refused(format!(
                    "refusing downgrade: the lock already holds {} as the latest {}.x; pass --allow-downgrade --reason TEXT if this is intended",
                    latest.version, version.major
                )));
            }
            overrides.push(Override {
                rule: "downgrade".into(),
                at: format_time(now),
                reason: request.reason.unwrap_or_default().to_string(),
            });
        }
    }
    let mut entry = match &existing {
        Some(old) if old.sha256 != sha256 => {
            if !request.allow_changed_evidence {
                return Err(RecordError::Refused(format!(
                    "refusing changed evidence: {version} is locked with SHA-256 {}, the new evidence attests {sha256}; pass --allow-changed-evidence --reason TEXT if upstream really re-released",
                    old.sha256
                )));
            }
            overrides.push(Override {
                rule: "changed-evidence".into(),
                at: format_time(now),
                reason: request.reason.unwrap_or_default().to_string(),
            });
            LockedSource { evidence: Vec::new(), sha256: sha256.clone(), size: sizes.first().copied(), ..old.clone() }
        }
        Some(old) => old.clone(),
        None => LockedSource {
            version,
            tarball: tarball_name(version),
            size: sizes.first().copied(),
            sha256: sha256.clone(),
            urls: default_urls(version),
            evidence: Vec::new(),
            overrides: Vec::new(),
        },
    };
    if entry.size.is_none() {
        entry.size = sizes.first().copied();
    }
    entry.overrides.extend(overrides);
    let mut new_documents = Vec::new();
    for (record, bytes) in documents {
        if entry.evidence.iter().any(|e| e.document().1 == record.document().1) {
            continue;
        }
        entry.evidence.push(record.clone());
        new_documents.push((record, bytes));
    }
    for (record, _) in &new_documents {
        if let Evidence::Witness { blob: None, document, .. } = record {
            return Err(RecordError::Refused(format!(
                "{document}: a new witness excerpt must record the git blob id of the whole file (a Blob: header line), so that it can be checked"
            )));
        }
    }
    let new_bytes: Vec<_> = new_documents.iter().map(|(_, bytes)| (version, bytes.as_slice())).collect();
    let witnesses_checked = check_witnesses(&new_bytes, request.witness_clones)?.checked.len();
    if new_documents.is_empty() && entry.overrides.len() == existing.as_ref().map_or(0, |e| e.overrides.len()) {
        return Ok(Recorded::Unchanged);
    }
    let mut verified = Vec::new();
    for item in &entry.evidence {
        let bytes = match new_documents.iter().find(|(r, _)| r == item) {
            Some((_, bytes)) => bytes.clone(),
            None => read_confined(project.repo.root(), Path::new(item.document().0), EVIDENCE_BOUND)?,
        };
        verified.push(verify_evidence(&project.policy, &entry, item, &bytes)?);
    }
    let level = level_of(&verified);
    let basis = basis_of(&verified);

    let mut lock = project.lock.clone();
    lock.upsert(entry);
    lock.validate()?;
    let root = project.repo.root();
    let mut written = Vec::new();
    let cleanup = |written: &[PathBuf]| written.iter().for_each(|p| drop(std::fs::remove_file(root.join(p))));
    for (record, bytes) in &new_documents {
        let relative = PathBuf::from(record.document().0);
        match read_confined(root, &relative, EVIDENCE_BOUND) {
            Ok(existing) if existing == *bytes => continue,
            Ok(_) => {
                cleanup(&written);
                return Err(RecordError::Exists(root.join(&relative).display().to_string()));
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => {
                cleanup(&written);
                return Err(e.into());
            }
        }
        if let Err(e) = write_confined(root, &relative, bytes) {
            cleanup(&written);
            return Err(e.into());
        }
        written.push(relative);
    }
    if let Err(e) = lock.save(&project.repo.lock()) {
        cleanup(&written);
        return Err(e.into());
    }
    Ok(Recorded::Locked { level, new_documents: new_documents.len(), witnesses_checked, basis })
}
