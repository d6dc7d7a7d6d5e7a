//! `pgbin catalog refresh`: what the public records know that the project
//! does not. It scans local clones of witness repositories
//! ([`crate::source::witness_scan`]) and verified Debian source indexes
//! ([`crate::source::debian_index`]), compares every record found with the
//! catalog and the lock, and writes the new excerpts and archive proofs as
//! proposals, which `pgbin lock add` then verifies like any other evidence.
//! It records nothing in the lock or the catalog itself.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::data::lock::Evidence;
use crate::data::version::{PreRelease, Version};
use crate::source::debian_archive::{ProofError, SOURCES_INDEX, make_proof};
use crate::source::debian_index::{DebianRelease, IndexError, SuiteIndex, fetch_suite, postgresql_releases};
use crate::source::documents::record_from_document;
use crate::source::error::TrustError;
use crate::source::git::CloneError;
use crate::source::project::Project;
use crate::source::witness_clone::WitnessClone;
use crate::source::witness_scan::{FoundRecord, SHAPES, ScanReport, scan_clone, shape_of};
use crate::util::error::{Classify, FailureKind};
use crate::util::io::IoError;
use crate::util::time::format_time;

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
    /// No mirror is configured for a suite.
    #[error("no Debian mirror is configured for {suite}: set {variable} or add the archive to the apt sources")]
    NoMirror {
        /// The suite.
        suite: String,
        /// The variable that names its mirror.
        variable: &'static str,
    },
    /// A Debian index could not be read or did not verify.
    #[error(transparent)]
    Index(#[from] IndexError),
}

fn known_repositories() -> String {
    SHAPES.iter().map(|s| s.repository).collect::<Vec<_>>().join(", ")
}

impl Classify for RefreshError {
    fn kind(&self) -> FailureKind {
        match self {
            RefreshError::Trust(e) => e.kind(),
            RefreshError::Index(e) => e.kind(),
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
    /// Per Debian suite read: its InRelease date and signer.
    pub suites: Vec<SuiteRead>,
    /// Every final PostgreSQL release the Debian suites list, as judged.
    pub debian: Vec<DebianFinding>,
    /// Pre-releases the Debian suites list (`19~rc1`): reported, never
    /// proposed.
    pub pre_releases: Vec<DebianRelease>,
    /// Those of them the catalog's `pre_releases` lacks (`19rc1`).
    pub uncatalogued_pre_releases: Vec<String>,
    /// Proposals written.
    pub proposals: Vec<PathBuf>,
}

/// One Debian suite read.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteRead {
    /// The suite.
    pub suite: String,
    /// Its InRelease's `Date:`.
    pub date: String,
    /// The archive key that signed it.
    pub signer: String,
}

/// A final release a Debian suite lists, as the refresh judged it.
#[derive(Debug, Clone, Serialize)]
pub struct DebianFinding {
    /// What the suite lists.
    #[serde(flatten)]
    pub release: DebianRelease,
    /// Whether the catalog lists the release.
    pub catalogued: bool,
    /// Whether the lock already holds archive evidence for this package
    /// version.
    pub locked: bool,
    /// Why nothing is proposed: the index contradicts the lock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// Why no proof could be made from this suite (too far from its
    /// index's end), when none was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unprovable: Option<String>,
    /// Where its proof was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proposal: Option<PathBuf>,
}

impl RefreshReport {
    /// Releases refused because records disagree.
    pub fn refused(&self) -> impl Iterator<Item = &str> {
        let witnessed = self.releases.iter().filter_map(|r| r.refused.as_deref());
        witnessed.chain(self.debian.iter().filter_map(|f| f.refused.as_deref()))
    }
}

/// Scans every clone and Debian index, judges each record against the
/// catalog, the lock and the other records, and writes each new, agreeing
/// excerpt or archive proof into `proposals` (when given) under the name
/// `pgbin lock add` would commit it as.
pub fn refresh(
    project: &Project,
    clones: &[WitnessClone],
    debian: &DebianSuites,
    proposals: Option<&Path>,
) -> Result<RefreshReport, RefreshError> {
    let indexes = read_suites(project, debian)?;
    let indexes = indexes.as_slice();
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
    let older_majors_skipped: usize = older.iter().map(|v| by_version.remove(v).map_or(0, |r| r.len())).sum();
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
                let path = write_proposal(dir, &evidence, record.excerpt.as_bytes())?;
                written.push(path.clone());
                proposal = Some(path);
            }
            findings.push(Finding { record, publisher, locked: in_lock, proposal });
        }
        releases.push(ReleaseFindings { version, catalogued, locked_sha256, records: findings, refused });
    }
    let (debian, pre_releases, older_debian) =
        judge_debian(project, indexes, oldest_major, proposals, now, &mut uncatalogued, &mut written)?;
    uncatalogued.sort();
    uncatalogued.dedup();
    let mut uncatalogued_pre_releases: Vec<String> = pre_releases
        .iter()
        .filter_map(|r| r.upstream.parse::<PreRelease>().ok())
        .filter(|p| !project.catalog.pre_releases.iter().any(|known| known.version == *p))
        .map(|p| p.to_string())
        .collect();
    uncatalogued_pre_releases.sort();
    uncatalogued_pre_releases.dedup();
    let suites = indexes
        .iter()
        .map(|i| SuiteRead { suite: i.suite.clone(), date: format_time(i.facts.date), signer: i.signed.signer.clone() })
        .collect();
    Ok(RefreshReport {
        scans,
        releases,
        uncatalogued,
        older_majors_skipped: older_majors_skipped + older_debian,
        suites,
        debian,
        pre_releases,
        uncatalogued_pre_releases,
        proposals: written,
    })
}

/// Which Debian suites a refresh reads, and from where.
#[derive(Debug, Clone, Default)]
pub struct DebianSuites {
    /// Suite names (`trixie`, `trixie-security`); none reads no index.
    pub suites: Vec<String>,
    /// The archive's mirror (base URI), for every suite but `*-security`.
    pub mirror: Option<String>,
    /// The security archive's mirror, for `*-security` suites.
    pub security_mirror: Option<String>,
}

impl DebianSuites {
    /// The suites, with the mirrors configured on this machine
    /// ([`crate::source::debian::configured_mirror`]).
    pub fn configured(suites: Vec<String>) -> DebianSuites {
        let apt = Path::new("/etc/apt");
        DebianSuites {
            suites,
            mirror: crate::source::debian::configured_mirror(apt),
            security_mirror: crate::source::debian::configured_security_mirror(apt),
        }
    }
}

/// Reads and verifies every suite's index.
fn read_suites(project: &Project, debian: &DebianSuites) -> Result<Vec<SuiteIndex>, RefreshError> {
    let agent = crate::source::debian_index::agent();
    let now = jiff::Timestamp::now();
    let mut indexes = Vec::new();
    for suite in &debian.suites {
        let (mirror, variable) = if suite.ends_with("-security") {
            (&debian.security_mirror, crate::source::debian::SECURITY_MIRROR_ENV)
        } else {
            (&debian.mirror, crate::source::debian::MIRROR_ENV)
        };
        let mirror = mirror.as_deref().ok_or_else(|| RefreshError::NoMirror { suite: suite.clone(), variable })?;
        indexes.push(fetch_suite(&agent, &project.policy, mirror, suite, now)?);
    }
    Ok(indexes)
}

/// Writes a verified proposal under the name `pgbin lock add` commits it as.
fn write_proposal(dir: &Path, evidence: &Evidence, document: &[u8]) -> Result<PathBuf, RefreshError> {
    let name = Path::new(evidence.document().0).file_name().expect("evidence paths name a file");
    let path = dir.join(name);
    std::fs::create_dir_all(dir).map_err(|e| IoError::new(format!("cannot create {}", dir.display()), e))?;
    crate::util::fs::write_atomic(&path, document)
        .map_err(|e| IoError::new(format!("cannot write {}", path.display()), e))?;
    Ok(path)
}

type DebianJudgement = (Vec<DebianFinding>, Vec<DebianRelease>, usize);

/// Judges every PostgreSQL release the Debian indexes list: a final release
/// of the catalog's majors (or newer) whose lock entry has no archive
/// evidence yet gets a proof from the suite where the proof is smallest;
/// one whose listed hash contradicts the lock is refused.
fn judge_debian(
    project: &Project,
    indexes: &[SuiteIndex],
    oldest_major: u32,
    proposals: Option<&Path>,
    now: jiff::Timestamp,
    uncatalogued: &mut Vec<Version>,
    written: &mut Vec<PathBuf>,
) -> Result<DebianJudgement, RefreshError> {
    let mut findings: Vec<DebianFinding> = Vec::new();
    let mut pre_releases = Vec::new();
    let mut older = 0;
    let mut proofs: BTreeMap<(String, String), (usize, Vec<u8>, Evidence)> = BTreeMap::new();
    for index in indexes {
        for release in postgresql_releases(index) {
            if release.is_pre_release() {
                pre_releases.push(release);
                continue;
            }
            let (Some(version), Some(orig)) = (release.version, release.orig.clone()) else { continue };
            if version.major < oldest_major {
                older += 1;
                continue;
            }
            let catalogued = project.catalog.release(version).is_some();
            if !catalogued {
                uncatalogued.push(version);
            }
            let entry = project.lock.get(version);
            let refused =
                entry.filter(|e| e.sha256 != orig.sha256 || e.size.is_some_and(|s| s != orig.size)).map(|e| {
                    format!(
                        "{version}: the lock holds {} ({:?} bytes), Debian {} lists {} ({} bytes) for {} {}",
                        e.sha256, e.size, index.suite, orig.sha256, orig.size, release.package, release.debian_version
                    )
                });
            let locked = entry.is_some_and(|e| {
                e.evidence.iter().any(|item| {
                    matches!(item, Evidence::DebianArchive { package, debian_version, .. }
                        if *package == release.package && *debian_version == release.debian_version)
                })
            });
            let mut unprovable = None;
            if refused.is_none() && !locked {
                match make_proof(
                    &index.release,
                    SOURCES_INDEX,
                    &index.sources,
                    &release.package,
                    &release.debian_version,
                ) {
                    Ok(document) => {
                        let name = format!("{} {}", index.suite, release.package);
                        let evidence = record_from_document(&project.policy, version, &document, &name, now)?;
                        let key = (release.package.clone(), release.debian_version.clone());
                        if proofs.get(&key).is_none_or(|(size, ..)| document.len() < *size) {
                            proofs.insert(key, (document.len(), document, evidence));
                        }
                    }
                    Err(e @ ProofError::TooLarge { .. }) => unprovable = Some(e.to_string()),
                    Err(e @ ProofError::NotListed { .. }) => unprovable = Some(e.to_string()),
                }
            }
            findings.push(DebianFinding { release, catalogued, locked, refused, unprovable, proposal: None });
        }
    }
    for ((package, debian_version), (_, document, evidence)) in proofs {
        let Some(dir) = proposals else { break };
        let path = write_proposal(dir, &evidence, &document)?;
        written.push(path.clone());
        let suite = match &evidence {
            Evidence::DebianArchive { suite, .. } => suite.clone(),
            _ => unreachable!("proofs make archive evidence"),
        };
        for finding in &mut findings {
            let same = finding.release.package == package && finding.release.debian_version == debian_version;
            if same && finding.release.suite == suite {
                finding.proposal = Some(path.clone());
            }
        }
    }
    Ok((findings, pre_releases, older))
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
