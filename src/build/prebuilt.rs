//! `pgbin package`: relocate, archive and describe an install tree that was
//! built elsewhere (the Nix builder's output inside the archive derivation,
//! or any tree installed with the same recipe), with the same relocation
//! checks, archive format and manifest as a host build.

use std::path::Path;

use crate::build::inputs::native_arch;
use crate::build::manifest::{Backend, Toolchain};
use crate::build::relocate::{self, LibrarySearch};
use crate::build::{Assembled, AssemblyInputs, BuildError, assemble, host_toolchain};
use crate::data::matrix::{DebianArch, Target};
use crate::data::version::Version;
use crate::nix::store;
use crate::source::error::TrustError;
use crate::source::project::{Project, ProjectError};
use crate::source::verify::check_tarball;
use crate::util::error::{Classify, FailureKind};
use crate::util::io::{IoError, context};
use crate::util::publish::{STAGING_PREFIX, publish_set};
use crate::util::scratch::swept_dir;

/// An install tree to package.
#[derive(Debug, Clone)]
pub struct TreeRequest<'a> {
    /// The installed tree (its bin/, lib/, share/ and include/); left unchanged.
    pub tree: &'a Path,
    /// The release it was built from.
    pub version: Version,
    /// Its target.
    pub target: &'a Target,
    /// The source tarball it was built from; checked against the lock.
    pub source: &'a Path,
    /// The backend that built it.
    pub built_by: Backend,
    /// The compiler's name, recorded in the manifest.
    pub compiler: Option<&'a str>,
    /// Where the archive, `.sha256` and manifest are written.
    pub out: &'a Path,
}

/// Why a tree was not packaged.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// The tree is not an installed PostgreSQL.
    #[error("{0} is not an installed PostgreSQL tree (no bin/postgres); pass the install prefix")]
    NotInstalled(String),
    /// The release may not be packaged.
    #[error(transparent)]
    Project(#[from] ProjectError),
    /// The source tarball is not the locked one.
    #[error(transparent)]
    Source(#[from] TrustError),
    /// The toolchain or the system library index could not be read.
    #[error(transparent)]
    Setup(BuildError),
    /// Local I/O.
    #[error(transparent)]
    Io(#[from] IoError),
    /// Relocation or packaging failed.
    #[error("packaging failed: {0}")]
    Packaging(BuildError),
}

impl Classify for TreeError {
    fn kind(&self) -> FailureKind {
        match self {
            TreeError::Project(e) => e.kind(),
            TreeError::Source(e) => e.kind(),
            TreeError::Packaging(_) => FailureKind::Check,
            _ => FailureKind::Usage,
        }
    }

    fn message(&self) -> String {
        match self {
            TreeError::Project(e) => e.message(),
            TreeError::Source(e) => e.message(),
            other => other.to_string(),
        }
    }
}

/// Copies the tree, relocates it under the backend's policy and writes the
/// archive, its `.sha256` and its manifest into `request.out`.
pub fn package_tree(project: &Project, request: &TreeRequest) -> Result<Assembled, TreeError> {
    let (version, target) = (request.version, request.target);
    if !request.tree.join("bin/postgres").is_file() {
        return Err(TreeError::NotInstalled(request.tree.display().to_string()));
    }
    let assessment = project.buildable_assessment(version, "package")?;
    let entry = project.locked(version)?;
    check_tarball(request.source, entry)?;
    let (_, release) = project.catalog.release(version).expect("the lock only holds catalogued releases");
    let toolchain = match request.built_by {
        Backend::Nix => Toolchain {
            compiler: request.compiler.unwrap_or("unrecorded").to_string(),
            packages: Default::default(),
            nixpkgs: store::nixpkgs_pin(project.repo.root()),
        },
        Backend::Host => {
            // A tree cross-built elsewhere bundles the target's libraries
            // from this machine's multiarch directories (dpkg's packages).
            let mut packages = project.matrix.host_packages(target, version, native_arch());
            packages.extend(project.matrix.sysroot_packages(target, version, native_arch()));
            let compiler =
                target.cross_arch(native_arch()).map_or_else(|| "cc".to_string(), DebianArch::cross_compiler);
            let mut toolchain = host_toolchain(&packages, &compiler).map_err(TreeError::Setup)?;
            if let Some(compiler) = request.compiler {
                toolchain.compiler = compiler.to_string();
            }
            toolchain
        }
    };
    let inputs = AssemblyInputs {
        version,
        entry,
        assessment: &assessment,
        target,
        matrix: &project.matrix,
        source_date_epoch: release.source_date_epoch(),
        toolchain: &toolchain,
        backend: request.built_by,
        cross: None,
    };

    let work = swept_dir(&std::env::temp_dir(), "pgbin-package-").map_err(context("cannot create a work directory"))?;
    let prefix = work.path().join(inputs.stem());
    crate::util::fs::copy_tree(request.tree, &prefix)
        .map_err(context(format!("cannot copy {}", request.tree.display())))?;
    let tree = std::path::absolute(request.tree).unwrap_or_else(|_| request.tree.to_path_buf());
    let forbidden = vec![tree.display().to_string(), work.path().display().to_string()];
    let store_dir = store::store_dir();
    let owning_store = store_dir.clone();
    let describe_store = move |path: &Path| match store::package_of(&owning_store, &path.display().to_string()) {
        Some((name, version)) => (Some(name), version),
        None => (None, None),
    };
    let system;
    let policy = match request.built_by {
        Backend::Nix => relocate::Policy {
            search: LibrarySearch::Runpath,
            interpreter: target.standard_interpreter(),
            forbidden,
            scrub_store: Some(store_dir),
            describe: &describe_store,
        },
        Backend::Host => {
            system = match target.cross_arch(native_arch()) {
                Some(debian) => {
                    crate::build::cross::target_libraries(&crate::build::cross::library_directories(&debian.multiarch))
                        .map_err(|e| TreeError::Setup(crate::build::host::HostBuildError::from(e).into()))?
                }
                None => relocate::system_libraries().map_err(|e| TreeError::Setup(e.into()))?,
            };
            relocate::Policy::host(&system, target, forbidden)
        }
    };
    let out = request.out;
    std::fs::create_dir_all(out).map_err(context(format!("cannot create {}", out.display())))?;
    let staging = swept_dir(out, STAGING_PREFIX).map_err(context(format!("cannot stage into {}", out.display())))?;
    let mut assembled = assemble(&prefix, &inputs, &policy, staging.path(), None, &mut crate::util::progress::Silent)
        .map_err(TreeError::Packaging)?;
    let staged =
        [assembled.packaged.archive.clone(), assembled.manifest_file.clone(), assembled.packaged.checksum_file.clone()];
    let [archive, manifest_file, checksum_file]: [std::path::PathBuf; 3] =
        publish_set(&staged, &staged[2], out)?.try_into().expect("archive, manifest and .sha256");
    assembled.packaged.archive = archive;
    assembled.packaged.checksum_file = checksum_file;
    assembled.manifest_file = manifest_file;
    Ok(assembled)
}
