//! `docker`: the non-Nix parity build for the musl targets
//! (`dockerfiles/Dockerfile.linux-musl`).
//!
//! pgbin verifies the source first, as for every backend, and copies the
//! verified tarball into a fresh build context (the Dockerfile never
//! downloads it). It passes the tarball's SHA-256, which the Dockerfile
//! checks again, together with the configure, compiler and linker flags of
//! this release and target from the same data the flake reads. The image's
//! last stage holds only the archive and its `.sha256`, which
//! `docker build --output` writes to disk.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;

use crate::data::matrix::{Matrix, Target};
use crate::data::version::Version;
use crate::util::io::{self, IoError};

/// The Dockerfile, relative to the repository.
pub const DOCKERFILE: &str = "dockerfiles/Dockerfile.linux-musl";
/// The relocation script it runs, relative to the repository.
pub const RELOCATE_SCRIPT: &str = "dockerfiles/relocate-musl.sh";
/// Name of the verified tarball inside the build context.
pub const CONTEXT_TARBALL: &str = "postgresql.tar.bz2";

/// Why the docker backend cannot build.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// The target is not one the Dockerfile builds.
    #[error("the docker backend builds only the musl targets; {0} is not one (use --backend nix or host)")]
    NotMusl(String),
    /// No Docker engine answers.
    #[error("no Docker engine is reachable (`docker info` failed: {0}); the docker backend needs a running engine")]
    NoEngine(String),
    /// Local I/O.
    #[error(transparent)]
    Io(#[from] IoError),
    /// `docker build` failed.
    #[error("docker build failed with {0}")]
    Build(String),
}

/// Everything one `docker build` needs.
#[derive(Debug, Clone, Serialize)]
pub struct DockerPlan {
    /// `linux/amd64` or `linux/arm64`.
    pub platform: String,
    /// `--build-arg` name → value.
    pub build_args: BTreeMap<String, String>,
    /// The archive the build writes.
    pub archive: String,
}

/// The Docker platform of a target triple.
fn platform(triple: &str) -> Option<&'static str> {
    match triple.split('-').next() {
        Some("x86_64") => Some("linux/amd64"),
        Some("aarch64") => Some("linux/arm64"),
        Some("i686") => Some("linux/386"),
        Some("powerpc64le") => Some("linux/ppc64le"),
        _ => None,
    }
}

/// The plan for one release and musl target.
pub fn plan(
    matrix: &Matrix,
    target: &Target,
    version: Version,
    sha256: &str,
    source_date_epoch: i64,
) -> Result<DockerPlan, DockerError> {
    let platform = platform(&target.triple).filter(|_| target.libc == "musl");
    let platform = platform.ok_or_else(|| DockerError::NotMusl(target.triple.clone()))?;
    let archive = target.archive_name(version);
    let stem = archive.trim_end_matches(".tar.gz").to_string();
    let build_args = BTreeMap::from([
        ("PG_VERSION".to_string(), version.to_string()),
        ("PG_SHA256".to_string(), sha256.to_string()),
        ("ARCHIVE_STEM".to_string(), stem),
        ("SOURCE_DATE_EPOCH".to_string(), source_date_epoch.to_string()),
        ("CONFIGURE_FLAGS".to_string(), matrix.configure_flags(target, version).join(" ")),
        ("CFLAGS".to_string(), matrix.host.cflags.join(" ")),
        ("LDFLAGS".to_string(), matrix.host.ldflags.join(" ")),
    ]);
    Ok(DockerPlan { platform: platform.to_string(), build_args, archive })
}

impl DockerPlan {
    /// The `docker build` arguments for a context directory and an output
    /// directory.
    pub fn command(&self, context: &Path, out: &Path) -> Vec<String> {
        let mut args = vec!["build".to_string(), "--platform".into(), self.platform.clone()];
        for (name, value) in &self.build_args {
            args.push("--build-arg".into());
            args.push(format!("{name}={value}"));
        }
        args.push("--file".into());
        args.push(context.join("Dockerfile").display().to_string());
        args.push("--output".into());
        args.push(format!("type=local,dest={}", out.display()));
        args.push(context.display().to_string());
        args
    }
}

/// Checks that a Docker engine answers.
pub fn engine_available() -> Result<(), DockerError> {
    let output = Command::new("docker").args(["info", "--format", "{{.ServerVersion}}"]).output();
    match output {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stderr);
            Err(DockerError::NoEngine(text.lines().find(|l| !l.trim().is_empty()).unwrap_or("no output").trim().into()))
        }
        Err(e) => Err(DockerError::NoEngine(format!("cannot run docker: {e}"))),
    }
}

/// Writes the build context: the Dockerfile, the relocation script and the
/// verified tarball (copied, never downloaded by the build).
pub fn write_context(repo: &Path, tarball: &Path, context: &Path) -> Result<(), DockerError> {
    std::fs::create_dir_all(context.join("dockerfiles"))
        .map_err(io::context(format!("cannot create {}", context.display())))?;
    for (from, to) in [
        (repo.join(DOCKERFILE), context.join("Dockerfile")),
        (repo.join(RELOCATE_SCRIPT), context.join(RELOCATE_SCRIPT)),
        (tarball.to_path_buf(), context.join(CONTEXT_TARBALL)),
    ] {
        std::fs::copy(&from, &to)
            .map_err(io::context(format!("cannot copy {} into the build context", from.display())))?;
    }
    Ok(())
}

/// Runs `docker build` and returns the directory it wrote the archive to.
pub fn build(plan: &DockerPlan, context: &Path, out: &Path, log: &Path) -> Result<PathBuf, DockerError> {
    let log_file = std::fs::File::create(log).map_err(io::context(format!("cannot create {}", log.display())))?;
    let mut command = Command::new("docker");
    command
        .args(plan.command(context, out))
        .stdin(std::process::Stdio::null())
        .stdout(log_file.try_clone().map_err(io::context("log"))?)
        .stderr(log_file);
    let status = crate::util::process::supervise(&mut command)
        .and_then(|command| command.status())
        .map_err(|e| DockerError::Build(format!("cannot run docker: {e}")))?;
    if !status.success() {
        return Err(DockerError::Build(format!("{status}; full log: {}", log.display())));
    }
    Ok(out.to_path_buf())
}

crate::util::error::usage_errors!(DockerError);
