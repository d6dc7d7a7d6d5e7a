//! The provenance and SBOM documents of an archive, written from its
//! manifest: which archive a manifest describes (checked by name and
//! SHA-256), the run's facts from the environment, and writing
//! `<archive>.intoto.json` and `<archive>.spdx.json` atomically.
//!
//! Run facts come from the environment: inside GitHub Actions the builder id
//! is the workflow reference and the invocation id the run attempt's URL;
//! elsewhere the builder is `urn:pgbin:builder:local` and the invocation a
//! random `urn:uuid`. pgbin's revision is `GITHUB_SHA` or the checkout's git
//! HEAD.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::attest::provenance::{self, PgbinRevision, RunContext};
use crate::attest::sbom;
use crate::build::cache::Artifacts;
use crate::build::manifest::{Backend, Manifest};
use crate::source::project::Project;
use crate::util::digest::digest_file;
use crate::util::error::{Classify, FailureKind};
use crate::util::io::{IoError, context};
use crate::util::time::now;

/// Why a document was not written.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// A file could not be read or written.
    #[error(transparent)]
    Io(#[from] IoError),
    /// The archive path has no file name.
    #[error("{0} is not a file name")]
    NotAFile(String),
    /// The manifest is missing or not a pgbin manifest.
    #[error("{0}")]
    BadManifest(String),
    /// The manifest describes another archive.
    #[error("{0}")]
    OtherArchive(String),
}

impl Classify for DocumentError {
    fn kind(&self) -> FailureKind {
        match self {
            DocumentError::OtherArchive(_) => FailureKind::Check,
            _ => FailureKind::Usage,
        }
    }
}

/// What was written.
#[derive(Debug, Serialize)]
pub struct Written {
    /// The archive described.
    pub archive: PathBuf,
    /// Its SHA-256.
    pub sha256: String,
    /// The document written.
    pub path: PathBuf,
}

/// Which documents [`write_documents`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Documents {
    /// `<archive>.intoto.json` only.
    Provenance,
    /// `<archive>.spdx.json` only.
    Sbom,
    /// Both.
    Both,
}

/// The directory holding `path` (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> PathBuf {
    path.parent().filter(|p| !p.as_os_str().is_empty()).map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Reads the manifest of `archive` and checks that it describes exactly
/// this file (name and SHA-256).
pub fn described_archive(archive: &Path, manifest: Option<&Path>) -> Result<Artifacts, DocumentError> {
    let name = archive
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| DocumentError::NotAFile(archive.display().to_string()))?;
    let manifest_file =
        manifest.map_or_else(|| parent_dir(archive).join(format!("{name}.manifest.json")), Path::to_path_buf);
    let text = std::fs::read_to_string(&manifest_file).map_err(|e| {
        DocumentError::BadManifest(format!(
            "cannot read the manifest {}: {e}; pass --manifest FILE",
            manifest_file.display()
        ))
    })?;
    let parsed: Manifest = serde_json::from_str(&text)
        .map_err(|e| DocumentError::BadManifest(format!("{} is not a pgbin manifest: {e}", manifest_file.display())))?;
    let digest = digest_file(archive)?;
    if parsed.archive != name || parsed.archive_sha256 != digest.sha256 {
        return Err(DocumentError::OtherArchive(format!(
            "{} describes {} (sha256 {}), not {name} (sha256 {}); use the manifest written with this archive",
            manifest_file.display(),
            parsed.archive,
            parsed.archive_sha256.chars().take(12).collect::<String>(),
            &digest.sha256[..12]
        )));
    }
    Ok(Artifacts {
        archive: archive.to_path_buf(),
        checksum_file: parent_dir(archive).join(format!("{name}.sha256")),
        manifest_file,
        manifest: parsed,
    })
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn git(root: &Path, args: &[&str]) -> Option<String> {
    crate::data::repo::git(root, args).ok().map(|out| String::from_utf8_lossy(&out).trim().to_string())
}

/// pgbin's revision: GitHub's, else the checkout's.
fn pgbin_revision(root: &Path) -> PgbinRevision {
    if let (Some(server), Some(repository), Some(sha)) =
        (env("GITHUB_SERVER_URL"), env("GITHUB_REPOSITORY"), env("GITHUB_SHA"))
    {
        return PgbinRevision {
            repository: Some(format!("git+{server}/{repository}")),
            commit: Some(sha),
            dirty: false,
        };
    }
    let Some(commit) = git(root, &["rev-parse", "--verify", "HEAD"]) else {
        return PgbinRevision::default();
    };
    let repository = git(root, &["remote", "get-url", "origin"])
        .filter(|url| url.starts_with("https://"))
        .map(|url| format!("git+{url}"));
    let dirty = git(root, &["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    PgbinRevision { repository, commit: Some(commit), dirty }
}

/// A random `urn:uuid` (version 4).
fn random_invocation_id() -> String {
    let mut bytes = [0u8; 16];
    sequoia_openpgp::crypto::random(&mut bytes).expect("the system random generator works");
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex::encode(bytes);
    format!("urn:uuid:{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// The run's facts, from the environment and the checkout.
pub fn run_context(
    project: &Project,
    manifest: &Manifest,
    started_on: Option<String>,
    finished_on: Option<String>,
    flake_attr: Option<String>,
    cached: bool,
) -> RunContext {
    let github = env("GITHUB_ACTIONS").as_deref() == Some("true");
    let (builder_id, invocation_id) = match (
        github,
        env("GITHUB_SERVER_URL"),
        env("GITHUB_WORKFLOW_REF"),
        env("GITHUB_REPOSITORY"),
        env("GITHUB_RUN_ID"),
    ) {
        (true, Some(server), Some(workflow), Some(repository), Some(run_id)) => {
            let attempt = env("GITHUB_RUN_ATTEMPT").unwrap_or_else(|| "1".into());
            (format!("{server}/{workflow}"), format!("{server}/{repository}/actions/runs/{run_id}/attempts/{attempt}"))
        }
        _ => (provenance::LOCAL_BUILDER.to_string(), random_invocation_id()),
    };
    let flake_attribute = match manifest.backend {
        Backend::Nix => {
            flake_attr.or_else(|| project.matrix.target(&manifest.target).ok().map(|t| t.attr_name(manifest.version)))
        }
        Backend::Host => None,
    };
    RunContext {
        builder_id,
        invocation_id,
        started_on,
        finished_on,
        flake_attribute,
        cached,
        pgbin: pgbin_revision(project.repo.root()),
        derivation: None,
    }
}

/// Writes the provenance and/or SBOM of `artifacts` into `out`, each file
/// atomically.
pub fn write_documents(
    project: &Project,
    artifacts: &Artifacts,
    out: &Path,
    run: &RunContext,
    which: Documents,
) -> Result<Vec<Written>, DocumentError> {
    let manifest = &artifacts.manifest;
    let urls = project.lock.get(manifest.version).map(|entry| entry.urls.clone()).unwrap_or_default();
    let mut documents = Vec::new();
    if which != Documents::Sbom {
        let manifest_sha256 = digest_file(&artifacts.manifest_file)?.sha256;
        let statement = provenance::statement(manifest, &manifest_sha256, &urls, run);
        let text = serde_json::to_string_pretty(&statement).expect("statements serialize");
        documents.push((provenance::SUFFIX, text));
    }
    if which != Documents::Provenance {
        let created = run.finished_on.clone().unwrap_or_else(now);
        let text = serde_json::to_string_pretty(&sbom::document(manifest, &urls, &created)).expect("JSON serializes");
        documents.push((sbom::SUFFIX, text));
    }
    std::fs::create_dir_all(out).map_err(context(format!("cannot create {}", out.display())))?;
    let mut written = Vec::new();
    for (suffix, text) in documents {
        let path = out.join(format!("{}{suffix}", manifest.archive));
        crate::util::fs::write_atomic(&path, format!("{text}\n").as_bytes())
            .map_err(context(format!("cannot write {}", path.display())))?;
        written.push(Written { archive: artifacts.archive.clone(), sha256: manifest.archive_sha256.clone(), path });
    }
    Ok(written)
}
