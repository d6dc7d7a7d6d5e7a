//! The CI build matrix: one row per buildable version × target × build
//! system, from the same verified data the flake reads, with the
//! GitHub-hosted runner of each system.

use serde::Serialize;

use crate::data::catalog;
use crate::data::version::{VersionError, VersionSpec};
use crate::nix::data as nixdata;
use crate::source::project::{Project, ProjectError};
use crate::util::error::{Classify, FailureKind};

/// Why no matrix could be made.
#[derive(Debug, thiserror::Error)]
pub enum CiMatrixError {
    /// The version spec does not parse.
    #[error(transparent)]
    Spec(#[from] VersionError),
    /// The spec resolves to no release.
    #[error(transparent)]
    Resolve(#[from] catalog::CatalogError),
    /// Evidence does not verify.
    #[error(transparent)]
    Project(#[from] ProjectError),
    /// The release has no buildable row.
    #[error("PostgreSQL {0} has no buildable entry (its source is not verified enough); see `pgbin versions`")]
    NotBuildable(crate::data::version::Version),
}

impl Classify for CiMatrixError {
    fn kind(&self) -> FailureKind {
        match self {
            CiMatrixError::Project(e) => e.kind(),
            CiMatrixError::NotBuildable(_) => FailureKind::Check,
            _ => FailureKind::Usage,
        }
    }

    fn message(&self) -> String {
        match self {
            CiMatrixError::Project(e) => e.message(),
            other => other.to_string(),
        }
    }
}

/// One CI job.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Flake attribute (`postgresql-18_6-x86_64-linux`).
    pub attr: String,
    /// PostgreSQL version.
    pub version: String,
    /// Target triple.
    pub target: String,
    /// Nix system that builds it.
    pub system: String,
    /// GitHub-hosted runner for that system.
    pub runner: &'static str,
    /// Cross-compiled.
    pub cross: bool,
    /// The smoke test runs where it is built (`checks.<system>.<attr>-smoke`):
    /// glibc Linux archives, natively or under the target's emulator.
    pub smoke: bool,
    /// Archive file name.
    pub archive: String,
}

/// The GitHub-hosted runner label for a Nix system.
pub fn runner(system: &str) -> &'static str {
    match system {
        "x86_64-linux" => "ubuntu-24.04",
        "aarch64-linux" => "ubuntu-24.04-arm",
        "aarch64-darwin" => "macos-14",
        // macos-13 was retired in December 2025; macos-15-intel is the last
        // Intel image GitHub offers (announced until August 2027).
        "x86_64-darwin" => "macos-15-intel",
        _ => "unsupported",
    }
}

/// The matrix rows, for one version spec or, without one, for the newest
/// buildable release of each major (what the flake's hydraJobs build), and
/// optionally for one build system. A version with no buildable row is a
/// check failure.
pub fn rows(project: &Project, version: Option<&str>, system: Option<&str>) -> Result<Vec<Row>, CiMatrixError> {
    let version = match version {
        None => None,
        Some(text) => {
            let spec: VersionSpec = text.parse()?;
            let resolved = project.catalog.resolve(spec, catalog::today_utc(), true)?;
            Some(resolved.version)
        }
    };
    let assessments = project.assess_all().map_err(ProjectError::from)?;
    let rows: Vec<Row> = nixdata::entries(&project.catalog, &project.matrix, &project.lock, &assessments)
        .into_iter()
        .filter(|e| version.map_or(!e.aliases.is_empty(), |v| e.version == v))
        .filter(|e| system.is_none_or(|s| e.system == s))
        .map(|e| Row {
            runner: runner(&e.system),
            smoke: crate::data::matrix::smoke_tested_where_built(&e.os, &e.libc),
            attr: e.attr,
            version: e.version.to_string(),
            target: e.target,
            system: e.system,
            cross: e.cross,
            archive: e.archive_name,
        })
        .collect();
    if let (Some(v), true) = (version, rows.is_empty()) {
        return Err(CiMatrixError::NotBuildable(v));
    }
    Ok(rows)
}
