//! Where pgbin's data lives: the repository layout.
//!
//! The driver reads its data (catalog, target matrix, source lock, keys,
//! evidence) from a pgbin checkout and writes the generated Nix data into
//! it. The checkout is `--repo`, else `PGBIN_REPO`, else the nearest
//! directory at or above the working directory holding `data/catalog.toml`.

use std::path::{Path, PathBuf};

/// Environment variable naming the repository.
pub const REPO_ENV: &str = "PGBIN_REPO";

/// The release catalog, relative to the root.
pub const CATALOG: &str = "data/catalog.toml";

/// The target matrix, relative to the root.
pub const TARGETS: &str = "data/targets.toml";

/// The source lock, relative to the root.
pub const LOCK: &str = "data/sources.lock.json";

/// The trust policy's directory (`policy.toml`, certificates), relative to the root.
pub const KEYS: &str = "keys";

/// A pgbin checkout.
#[derive(Debug, Clone)]
pub struct Repo {
    root: PathBuf,
}

/// The repository could not be found.
#[derive(Debug, thiserror::Error)]
#[error(
    "no pgbin repository found at or above {0} (looked for data/catalog.toml); run inside a pgbin checkout or pass --repo DIR"
)]
pub struct RepoNotFound(pub String);

impl Repo {
    /// Locates the repository.
    pub fn discover(explicit: Option<&Path>) -> Result<Repo, RepoNotFound> {
        let start = match explicit {
            Some(path) => path.to_path_buf(),
            None => match std::env::var_os(REPO_ENV) {
                Some(path) => PathBuf::from(path),
                None => std::env::current_dir().map_err(|e| RepoNotFound(e.to_string()))?,
            },
        };
        let found = if explicit.is_some() || std::env::var_os(REPO_ENV).is_some() {
            start.join(CATALOG).is_file().then(|| start.clone())
        } else {
            start.ancestors().find(|dir| dir.join(CATALOG).is_file()).map(Path::to_path_buf)
        };
        found.map(|root| Repo { root }).ok_or_else(|| RepoNotFound(start.display().to_string()))
    }

    /// The checkout root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `data/catalog.toml`.
    pub fn catalog(&self) -> PathBuf {
        self.root.join(CATALOG)
    }

    /// `data/targets.toml`.
    pub fn targets(&self) -> PathBuf {
        self.root.join(TARGETS)
    }

    /// `data/sources.lock.json`.
    pub fn lock(&self) -> PathBuf {
        self.root.join(LOCK)
    }

    /// `keys/` (certificates and `policy.toml`).
    pub fn keys(&self) -> PathBuf {
        self.root.join(KEYS)
    }

    /// `nix/generated/`.
    pub fn generated(&self) -> PathBuf {
        self.root.join("nix/generated")
    }
}

/// Why a git command failed, in one line.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct GitError(pub String);

/// Runs `git -C root ARGS` and returns its standard output, or one line
/// saying why it failed (git missing, not a checkout, unknown revision).
pub fn git(root: &Path, args: &[&str]) -> Result<Vec<u8>, GitError> {
    git_limited(root, args, u64::MAX)
}

/// Runs `git -C root args` and returns its standard output, refusing (and
/// stopping git) once it passes `limit` bytes: for output whose size data
/// decides, such as a file of another revision.
pub fn git_limited(root: &Path, args: &[&str], limit: u64) -> Result<Vec<u8>, GitError> {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| GitError(format!("cannot run git: {e}")))?;
    let mut stdout = Vec::new();
    let read = child.stdout.take().expect("piped").take(limit.saturating_add(1)).read_to_end(&mut stdout);
    if read.is_ok() && stdout.len() as u64 > limit {
        let _ = child.kill();
        let _ = child.wait();
        return Err(GitError(format!("git {} printed more than {limit} bytes; refusing it", args.join(" "))));
    }
    let output = child.wait_with_output().map_err(|e| GitError(format!("cannot run git: {e}")))?;
    read.map_err(|e| GitError(format!("cannot read git's output: {e}")))?;
    if output.status.success() {
        Ok(stdout)
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(GitError(stderr.lines().next().unwrap_or("git failed").to_string()))
    }
}

crate::util::error::usage_errors!(GitError, RepoNotFound);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_output_past_its_bound_is_refused_and_git_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let run = |args: &[&str]| {
            assert!(std::process::Command::new("git").arg("-C").arg(root).args(args).status().unwrap().success())
        };
        run(&["init", "-q"]);
        std::fs::write(root.join("big"), vec![b'x'; 1 << 20]).unwrap();
        run(&["add", "big"]);
        run(&["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "big"]);
        let error = git_limited(root, &["show", "HEAD:big"], 4096).unwrap_err();
        assert!(error.0.contains("more than 4096 bytes"), "{}", error.0);
        assert_eq!(git_limited(root, &["show", "HEAD:big"], 1 << 20).unwrap().len(), 1 << 20);
    }
}
