//! `pgbin catalog refresh`: what the public records know that the project
//! does not. It scans local clones of witness repositories
//! ([`crate::source::witness_scan`]), compares every record found with the
//! catalog and the lock, and writes the new excerpts as proposals, which
//! `pgbin lock add` then verifies like any other evidence. It records
//! nothing in the lock itself.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::data::version::Version;
use crate::source::documents::record_from_document;
use crate::source::error::TrustError;
use crate::source::git::CloneError;
use crate::source::project::Project;
use crate::source::witness_clone::WitnessClone;
use crate::source::witness_scan::{FoundRecord, SHAPES, ScanReport, scan_clone, shape_of};
use crate::util::error::{Classify, FailureKind};
use crate::util::io::IoError;

/// Why a refresh could not run.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// A clone of a repository pgbin has no record shape for.
    #[error("{0}: pgbin knows no record shape for this repository; known: {known}", known = known_repositories())]
    UnknownRepository(String),
    /// A clone that cannot be read.
    #[error(transparent)]
    Clone(#[from] CloneError),
    /// A record that does not make a valid excerpt (a defect of its shape).
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// Writing a proposal failed.
    #[error(transparent)]
    Io(#[from] IoError),
}

fn known_repositories() -> String {
    SHAPES.iter().map(|s| s.repository).collect::<Vec<_>>().join(", ")
}

impl Classify for RefreshError {
    fn kind(&self) -> FailureKind {
        match self {
            RefreshError::Trust(e) => e.kind(),
            _ => FailureKind::Usage,
        }
    }
}

/// One record found, as the refresh judged it.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// The record.
    #[serde(flatten)]
    pub record: FoundRecord,
    /// The record's owner (`OWNER/REPO`).
    pub publisher: String,
    /// Already in the lock (the same excerpt).
    pub locked: bool,
    /// Where its proposal was written, when it is new and agrees.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proposal: Option<PathBuf>,
}

/// Everything found about one release.
#[derive(Debug, Clone, Serialize)]
pub struct ReleaseFindings {
    /// The release.
    pub version: Version,
    /// Whether the catalog lists it.
    pub catalogued: bool,
    /// The SHA-256 the lock holds for it, if locked.
    pub locked_sha256: Option<String>,
    /// The records found.
    pub records: Vec<Finding>,
    /// Why nothing is proposed for this release, when records disagree
    /// with each other or with the lock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

/// What a refresh found and wrote.
#[derive(Debug, Clone, Serialize)]
pub struct RefreshReport {
    /// Per clone: commits walked, files read, self-contradictions.
    pub scans: Vec<ScanReport>,
    /// Per release, every record found.
    pub releases: Vec<ReleaseFindings>,
    /// Releases found that the catalog lacks, of its majors or newer ones.
    pub uncatalogued: Vec<Version>,
    /// Records of majors older than the catalog's oldest, left out.
    pub older_majors_skipped: usize,
    /// Proposals written.
    pub proposals: Vec<PathBuf>,
}

impl RefreshReport {
    /// Releases refused because records disagree.
    pub fn refused(&self) -> impl Iterator<Item = &ReleaseFindings> {
        self.releases.iter().filter(|r| r.refused.is_some())
    }
}

/// Scans every clone, judges each record against the catalog, the lock and
/// the other records, and writes each new, agreeing excerpt into
/// `proposals` (when given) under the name `pgbin lock add` would commit it
/// as.
pub fn refresh(
    project: &Project,
    clones: &[WitnessClone],
    proposals: Option<&Path>,
) -> Result<RefreshReport, RefreshError> {
    let mut scans = Vec::new();
    for clone in clones {
        let shape =
            shape_of(&clone.repository).ok_or_else(|| RefreshError::UnknownRepository(clone.repository.clone()))?;
        scans.push(scan_clone(&clone.dir, shape)?);
    }
    let mut by_version: BTreeMap<Version, Vec<(String, FoundRecord)>> = BTreeMap::new();
    for scan in &scans {
        for record in &scan.records {
            by_version.entry(record.version).or_default().push((scan.repository.clone(), record.clone()));
        }
    }
    let oldest_major = project.catalog.releases().map(|(major, _)| major.major).min().unwrap_or(0);
    let older: Vec<Version> = by_version.keys().copied().filter(|v| v.major < oldest_major).collect();
    let older_majors_skipped = older.iter().map(|v| by_version.remove(v).map_or(0, |r| r.len())).sum();
    let now = jiff::Timestamp::now();
    let mut releases = Vec::new();
    let mut uncatalogued = Vec::new();
    let mut written = Vec::new();
    for (version, records) in by_version {
        let catalogued = project.catalog.release(version).is_some();
        if !catalogued {
            uncatalogued.push(version);
        }
        let locked = project.lock.get(version);
        let locked_sha256 = locked.map(|l| l.sha256.clone());
        let refused = disagreement(version, &records, locked_sha256.as_deref());
        let mut findings = Vec::new();
        for (publisher, record) in records {
            let evidence =
                record_from_document(&project.policy, version, record.excerpt.as_bytes(), &record.reference, now)?;
            let document_sha256 = evidence.document().1.to_string();
            let in_lock = locked.is_some_and(|l| l.evidence.iter().any(|e| e.document().1 == document_sha256));
            let mut proposal = None;
            if let (Some(dir), false, None, true) = (proposals, in_lock, &refused, catalogued) {
                let name = Path::new(evidence.document().0).file_name().expect("evidence paths name a file");
                let path = dir.join(name);
                std::fs::create_dir_all(dir)
                    .map_err(|e| IoError::new(format!("cannot create {}", dir.display()), e))?;
                crate::util::fs::write_atomic(&path, record.excerpt.as_bytes())
                    .map_err(|e| IoError::new(format!("cannot write {}", path.display()), e))?;
                written.push(path.clone());
                proposal = Some(path);
            }
            findings.push(Finding { record, publisher, locked: in_lock, proposal });
        }
        releases.push(ReleaseFindings { version, catalogued, locked_sha256, records: findings, refused });
    }
    Ok(RefreshReport { scans, releases, uncatalogued, older_majors_skipped, proposals: written })
}

/// Why the records of one release cannot be proposed: two owners state
/// different hashes, or a record contradicts the lock. Names both sides.
fn disagreement(version: Version, records: &[(String, FoundRecord)], locked: Option<&str>) -> Option<String> {
    let (first_owner, first) = records.first()?;
    if let Some((owner, odd)) = records.iter().find(|(_, r)| r.sha256 != first.sha256) {
        return Some(format!(
            "{version}: {first_owner} records {} ({}), {owner} records {} ({})",
            first.sha256, first.reference, odd.sha256, odd.reference
        ));
    }
    match locked {
        Some(locked) if locked != first.sha256 => Some(format!(
            "{version}: the lock holds {locked}, {first_owner} records {} ({})",
            first.sha256, first.reference
        )),
        _ => None,
    }
}
