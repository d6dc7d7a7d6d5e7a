//! Seeding the Nix store: a verified tarball is added at exactly the
//! fixed-output path the flake's `fetchurl` expects, so that evaluation and
//! build need no network.

use std::path::Path;
use std::process::Command;

use crate::data::version::Version;
use crate::nix::data::sri_sha256;
use crate::nix::store;
use crate::source::project::{Project, ProjectError};
use crate::util::error::{Classify, FailureKind};

/// Why a tarball was not seeded.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// The release is not locked.
    #[error(transparent)]
    Project(#[from] ProjectError),
    /// `nix-store` could not be run or failed.
    #[error("{0}")]
    NixStore(String),
    /// The generated data cannot be read as JSON.
    #[error("{path}: {reason}")]
    GeneratedData {
        /// The file.
        path: String,
        /// The parser's message.
        reason: String,
    },
    /// The generated data is missing or names another source; or the store
    /// path is not the one the flake expects.
    #[error("{0}")]
    Mismatch(String),
}

impl Classify for SeedError {
    fn kind(&self) -> FailureKind {
        match self {
            SeedError::Project(e) => e.kind(),
            SeedError::NixStore(_) | SeedError::GeneratedData { .. } => FailureKind::Usage,
            SeedError::Mismatch(_) => FailureKind::Check,
        }
    }

    fn message(&self) -> String {
        match self {
            SeedError::Project(e) => e.message(),
            other => other.to_string(),
        }
    }
}

/// Adds the verified `tarball` of `version` to the Nix store and checks that
/// it landed at the fixed-output path the flake's `fetchurl` expects.
pub fn seed_store(project: &Project, version: Version, tarball: &Path) -> Result<String, SeedError> {
    let entry = project.locked(version)?;
    check_generated_source(project, version, &entry.tarball, &sri_sha256(&entry.sha256))?;
    let expected = store::fixed_output_path(&store::store_dir(), &entry.sha256, &entry.tarball);
    let output = Command::new("nix-store").args(["--add-fixed", "sha256"]).arg(tarball).output().map_err(|e| {
        SeedError::NixStore(format!("cannot run nix-store: {e}; install Nix (Debian: apt-get install nix-bin)"))
    })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(SeedError::NixStore(format!(
            "nix-store --add-fixed failed: {}",
            stderr.trim().lines().last().unwrap_or("")
        )));
    }
    let added = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if added != expected {
        return Err(SeedError::Mismatch(format!(
            "nix-store added {added}, but the flake expects {expected}; not seeded correctly"
        )));
    }
    Ok(added)
}

/// The generated Nix data must name exactly this source.
fn check_generated_source(project: &Project, version: Version, name: &str, hash: &str) -> Result<(), SeedError> {
    let path = project.repo.generated().join(format!("postgresql-{}.json", version.major));
    let text = std::fs::read_to_string(&path)
        .map_err(|e| SeedError::Mismatch(format!("{}: {e}; run `pgbin generate`", path.display())))?;
    let data: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| SeedError::GeneratedData { path: path.display().to_string(), reason: e.to_string() })?;
    let entries = data["entries"].as_array().map(Vec::as_slice).unwrap_or_default();
    let sources: Vec<&serde_json::Value> =
        entries.iter().filter(|e| e["version"] == version.to_string()).map(|e| &e["source"]).collect();
    if sources.is_empty() {
        return Err(SeedError::Mismatch(format!(
            "{} has no entry for {version}; run `pgbin generate`",
            path.display()
        )));
    }
    if sources.iter().any(|s| s["name"] != name || s["hash"] != hash) {
        return Err(SeedError::Mismatch(format!(
            "{} names another source for {version}; run `pgbin generate`",
            path.display()
        )));
    }
    Ok(())
}
