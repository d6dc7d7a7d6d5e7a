//! Running `nix build` on the flake: build an attribute, or rebuild one and
//! report whether Nix found the result identical.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::error::{Classify, FailureKind};
use crate::util::fs::log_tail;
use crate::util::io::{IoError, context};

/// Why `nix build` did not give a result.
#[derive(Debug, thiserror::Error)]
pub enum NixBuildError {
    /// Nix could not be run or its log not written.
    #[error(transparent)]
    Io(#[from] IoError),
    /// `nix build` failed or answered unexpectedly.
    #[error("{0}")]
    Nix(String),
}

impl Classify for NixBuildError {
    fn kind(&self) -> FailureKind {
        FailureKind::Usage
    }
}

/// Runs `nix build <extra> -L <repo>#<attribute>` with its log in `log`;
/// returns the installable and the finished process.
fn run_nix_build(
    repo: &Path,
    attribute: &str,
    log: &Path,
    extra: &[&str],
) -> Result<(String, std::process::Output), NixBuildError> {
    let log_file = std::fs::File::create(log).map_err(context(format!("cannot create {}", log.display())))?;
    let installable = format!("{}#{attribute}", repo.display());
    let mut command = Command::new("nix");
    command
        .args(["--extra-experimental-features", "nix-command flakes", "build"])
        .args(extra)
        .args(["--no-link", "-L"])
        .arg(&installable)
        .stdin(std::process::Stdio::null())
        .stderr(log_file);
    let output = crate::util::process::supervise(&mut command)
        .and_then(|command| command.output())
        .map_err(context("cannot run nix (install Nix, or use --backend host)"))?;
    Ok((installable, output))
}

/// Builds flake attribute `attribute` (a package, or its `.archive`) of
/// the flake at `repo` with `nix build` (its log to `log`) and returns its
/// output path.
pub fn nix_build(repo: &Path, attribute: &str, log: &Path) -> Result<PathBuf, NixBuildError> {
    let (installable, output) = run_nix_build(repo, attribute, log, &["--json"])?;
    if !output.status.success() {
        let tail = log_tail(log, 40);
        let cause = tail.iter().rev().find(|l| l.trim_start().starts_with("error:")).or(tail.last());
        let cause = cause.map_or("no message", |l| l.trim());
        return Err(NixBuildError::Nix(format!("nix build {installable} failed: {cause}")));
    }
    let built: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| NixBuildError::Nix(format!("nix build printed no JSON result: {e}")))?;
    built[0]["outputs"]["out"]
        .as_str()
        .map(PathBuf::from)
        .ok_or_else(|| NixBuildError::Nix("nix build did not name an output path".into()))
}

/// Rebuilds the derivation of `attribute` (already built) with `nix build
/// --rebuild --keep-failed`: `None` when Nix found the rebuild identical,
/// or the kept `<out>.check` path when it differs. Only that derivation is
/// rebuilt, not its dependencies.
pub fn nix_rebuild(repo: &Path, attribute: &str, log: &Path) -> Result<Option<PathBuf>, NixBuildError> {
    let (installable, output) = run_nix_build(repo, attribute, log, &["--rebuild", "--keep-failed"])?;
    if output.status.success() {
        return Ok(None);
    }
    // Nix's own message ends the log ("... differs from '<out>.check'");
    // the build's output before it may name anything.
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let check = text
        .split_whitespace()
        .rev()
        .map(|w| w.trim_matches(|c: char| c == '\'' || c == '`' || c == ','))
        .find(|w| w.ends_with(".check") && w.starts_with('/'))
        .map(PathBuf::from);
    check.filter(|p| p.exists()).map(Some).ok_or_else(|| {
        NixBuildError::Nix(format!(
            "nix build --rebuild {installable} failed without a .check output; see {}",
            log.display()
        ))
    })
}
