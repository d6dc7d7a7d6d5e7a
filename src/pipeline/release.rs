//! `pgbin release plan` as one library call: resolve a version spec, refuse
//! a re-release or a downgrade, require a buildable source, and list one
//! build row and every artifact per target. Planning writes nothing.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;

use crate::data::catalog::{self, CatalogError};
use crate::data::release::{self, Refusal};
use crate::data::version::{Version, VersionError, VersionSpec};
use crate::nix::ci::{self, CiMatrixError, Row};
use crate::source::project::{Project, ProjectError};
use crate::util::error::{Classify, FailureKind};
use crate::util::io::{IoError, context};

/// What was released before, and what to plan.
#[derive(Debug, Clone)]
pub struct PlanRequest<'a> {
    /// Version spec: 17 (the highest known 17.x) or 17.6 (exactly).
    pub spec: &'a str,
    /// Release tags already published, one per line (`gh release list`).
    pub released_tags: Option<&'a Path>,
    /// A directory of published artifacts.
    pub published: Option<&'a Path>,
    /// Allow a major past its end of life.
    pub allow_eol: bool,
}

/// One target of a release.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedTarget {
    /// Target triple.
    pub target: String,
    /// Archive file name.
    pub archive: String,
    /// Flake attribute.
    pub attr: String,
    /// Nix system that builds it.
    pub system: String,
    /// GitHub-hosted runner.
    pub runner: &'static str,
    /// Cross-compiled.
    pub cross: bool,
    /// Smoke-tested where built.
    pub smoke: bool,
    /// Every file the release publishes for it.
    pub artifacts: Vec<String>,
}

/// A release plan.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// The spec asked for.
    pub spec: String,
    /// The version it resolved to.
    pub version: Version,
    /// The release tag.
    pub tag: String,
    /// The source's trust level.
    pub trust: String,
    /// Always true: planning writes nothing.
    pub dry_run: bool,
    /// Versions already released.
    pub released: BTreeSet<Version>,
    /// One entry per target.
    pub targets: Vec<PlannedTarget>,
    /// The build rows as a GitHub Actions matrix.
    pub matrix: serde_json::Value,
    /// Every artifact of the release.
    pub artifacts: Vec<String>,
}

/// Why no plan was made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The spec does not parse.
    #[error(transparent)]
    Spec(#[from] VersionError),
    /// The spec resolves to no release.
    #[error(transparent)]
    Resolve(#[from] CatalogError),
    /// The release tags or the published directory cannot be read.
    #[error(transparent)]
    Io(#[from] IoError),
    /// A re-release or a downgrade.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The source is not buildable.
    #[error(transparent)]
    Project(#[from] ProjectError),
    /// The build rows cannot be made.
    #[error(transparent)]
    Matrix(#[from] CiMatrixError),
}

impl Classify for PlanError {
    fn kind(&self) -> FailureKind {
        match self {
            PlanError::Refused(_) => FailureKind::Check,
            PlanError::Project(e) => e.kind(),
            PlanError::Matrix(e) => e.kind(),
            _ => FailureKind::Usage,
        }
    }

    fn message(&self) -> String {
        match self {
            PlanError::Project(e) => e.message(),
            PlanError::Matrix(e) => e.message(),
            other => other.to_string(),
        }
    }
}

/// Versions already released, from the tag record and the published directory.
fn released_versions(request: &PlanRequest) -> Result<BTreeSet<Version>, IoError> {
    let mut released = BTreeSet::new();
    if let Some(file) = request.released_tags {
        let text = std::fs::read_to_string(file)
            .map_err(context(format!("cannot read the release tags {}", file.display())))?;
        released.extend(release::versions_from_tags(&text));
    }
    if let Some(dir) = request.published {
        released.extend(
            release::versions_in_directory(dir)
                .map_err(context(format!("cannot list published artifacts in {}", dir.display())))?,
        );
    }
    Ok(released)
}

/// One build row per target: the native build where there is one, else the
/// cross build on x86_64-linux, else the first.
fn release_rows(rows: Vec<Row>) -> Vec<Row> {
    let targets: BTreeSet<String> = rows.iter().map(|r| r.target.clone()).collect();
    targets
        .into_iter()
        .filter_map(|target| {
            let candidates: Vec<&Row> = rows.iter().filter(|r| r.target == target).collect();
            candidates
                .iter()
                .find(|r| !r.cross)
                .or_else(|| candidates.iter().find(|r| r.system == "x86_64-linux"))
                .or(candidates.first())
                .map(|r| (*r).clone())
        })
        .collect()
}

/// Plans the release `request.spec` resolves to.
pub fn plan(project: &Project, request: &PlanRequest) -> Result<Plan, PlanError> {
    let spec: VersionSpec = request.spec.parse()?;
    let resolved = project.catalog.resolve(spec, catalog::today_utc(), request.allow_eol)?;
    let version = resolved.version;
    let released = released_versions(request)?;
    release::check_releasable(version, &released)?;
    let assessment = project.buildable_assessment(version, "release")?;
    let rows = release_rows(ci::rows(project, Some(&version.to_string()), None)?);
    let targets: Vec<PlannedTarget> = rows
        .iter()
        .map(|row| PlannedTarget {
            target: row.target.clone(),
            archive: row.archive.clone(),
            attr: row.attr.clone(),
            system: row.system.clone(),
            runner: row.runner,
            cross: row.cross,
            smoke: row.smoke,
            artifacts: release::artifact_names(&row.archive),
        })
        .collect();
    let artifacts: Vec<String> = targets.iter().flat_map(|t| t.artifacts.iter().cloned()).collect();
    Ok(Plan {
        spec: request.spec.to_string(),
        version,
        tag: release::tag(version),
        trust: assessment.level.to_string(),
        dry_run: true,
        released,
        matrix: serde_json::json!({ "include": rows }),
        targets,
        artifacts,
    })
}
