//! The loaded project data: catalog, matrix, lock and trust policy together.
//!
//! Commands that need more than one of these load them through [`Project`],
//! so every command sees the same data and the same verification.

use std::collections::BTreeMap;

use crate::data::catalog::{Catalog, CatalogError};
use crate::data::lock::{LockError, LockedSource, SourceLock};
use crate::data::matrix::{Matrix, MatrixError};
use crate::data::repo::Repo;
use crate::data::version::Version;
use crate::source::error::TrustError;
use crate::source::openpgp::Policy;
use crate::source::verify::{self, Assessment, Level};
use crate::util::error::{Classify, FailureKind};

/// Everything the driver knows, loaded from one repository.
#[derive(Debug, Clone)]
pub struct Project {
    /// Where it was loaded from.
    pub repo: Repo,
    /// The version catalog.
    pub catalog: Catalog,
    /// The target matrix.
    pub matrix: Matrix,
    /// The source lock.
    pub lock: SourceLock,
    /// The trust policy with its keys.
    pub policy: Policy,
}

/// Any failure to load the project data.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    /// Catalog problem.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// Matrix problem.
    #[error(transparent)]
    Matrix(#[from] MatrixError),
    /// Lock problem.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// Policy or evidence problem.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// A release that is not in the source lock.
    #[error("PostgreSQL {0} is not in the source lock; add it with `pgbin lock add {0} --evidence ...`")]
    NotLocked(Version),
    /// A locked release whose evidence does not reach a buildable level.
    #[error(
        "PostgreSQL {version} is {level}: its source is not trusted enough to {purpose}; add signed or independent evidence with `pgbin lock add`"
    )]
    NotBuildable {
        /// The release.
        version: Version,
        /// The level its evidence reached.
        level: Level,
        /// What was refused ("package").
        purpose: String,
    },
    /// The lock names a release the catalog does not list.
    #[error("the source lock has {0}, which the catalog does not list; add it to data/catalog.toml first")]
    Uncatalogued(Version),
}

impl Classify for ProjectError {
    fn kind(&self) -> FailureKind {
        match self {
            ProjectError::Trust(e) => e.kind(),
            ProjectError::NotLocked(_) | ProjectError::NotBuildable { .. } => FailureKind::Check,
            _ => FailureKind::Usage,
        }
    }

    fn message(&self) -> String {
        match self {
            ProjectError::Trust(e) => e.message(),
            other => other.to_string(),
        }
    }
}

impl Project {
    /// Loads and cross-checks all data.
    pub fn load(repo: &Repo) -> Result<Project, ProjectError> {
        let catalog = Catalog::load(repo)?;
        let matrix = Matrix::load(repo)?;
        let lock = SourceLock::load(repo)?;
        let policy = Policy::load(repo)?;
        if let Some(entry) = lock.sources.iter().find(|s| catalog.release(s.version).is_none()) {
            return Err(ProjectError::Uncatalogued(entry.version));
        }
        Ok(Project { repo: repo.clone(), catalog, matrix, lock, policy })
    }

    /// The lock entry of a release, or a failed check saying how to add it.
    pub fn locked(&self, version: Version) -> Result<&LockedSource, ProjectError> {
        self.lock.get(version).ok_or(ProjectError::NotLocked(version))
    }

    /// Re-verifies the evidence of a locked release and requires a level
    /// that may be built; `purpose` says what was refused ("package").
    pub fn buildable_assessment(&self, version: Version, purpose: &str) -> Result<Assessment, ProjectError> {
        let entry = self.locked(version)?;
        let assessment = verify::assess(self.repo.root(), &self.policy, entry)?;
        if !assessment.level.buildable() {
            return Err(ProjectError::NotBuildable { version, level: assessment.level, purpose: purpose.to_string() });
        }
        Ok(assessment)
    }

    /// Verifies one locked release's evidence; `None` when it is not locked.
    pub fn assess(&self, version: Version) -> Result<Option<Assessment>, TrustError> {
        self.lock.get(version).map(|entry| verify::assess(self.repo.root(), &self.policy, entry)).transpose()
    }

    /// Verifies every locked release; the first failure is an error.
    pub fn assess_all(&self) -> Result<BTreeMap<Version, Assessment>, TrustError> {
        self.lock
            .sources
            .iter()
            .map(|entry| Ok((entry.version, verify::assess(self.repo.root(), &self.policy, entry)?)))
            .collect()
    }
}
