//! The build machine's Debian packages: which package owns a file, which
//! versions are installed, and installing what a build needs (apt-get, as
//! root). Only the host backend uses this; nothing here decides trust.

use std::collections::BTreeMap;
use std::path::Path;

use crate::build::smoke::running_as_root;
use crate::util::progress::Progress;

/// The Debian package owning a file and its installed version, if dpkg
/// knows it (tries the path as given, resolved, and with or without `/usr`).
pub fn owning_package(path: &Path) -> (Option<String>, Option<String>) {
    let mut candidates = vec![path.to_path_buf()];
    if let Ok(real) = std::fs::canonicalize(path) {
        candidates.push(real);
    }
    for candidate in candidates.clone() {
        let text = candidate.display().to_string();
        match text.strip_prefix("/usr") {
            Some(rest) => candidates.push(rest.into()),
            None => candidates.push(format!("/usr{text}").into()),
        }
    }
    for candidate in candidates {
        let Ok(output) = std::process::Command::new("dpkg").arg("-S").arg(&candidate).output() else { continue };
        if !output.status.success() {
            continue;
        }
        let text = String::from_utf8_lossy(&output.stdout);
        let Some(package) = text.lines().next().and_then(|l| l.split(':').next()) else { continue };
        let version = installed_versions(&[package.to_string()]).into_values().next();
        return (Some(package.to_string()), version);
    }
    (None, None)
}

/// Installed versions of the given Debian packages (absent ones are
/// omitted), read from the status file [`crate::build::inputs`] reads, so
/// that the versions a manifest records agree with the cache key's record.
pub fn installed_versions(packages: &[String]) -> BTreeMap<String, String> {
    if packages.is_empty() {
        return BTreeMap::new();
    }
    crate::build::inputs::read_status().map(|database| database.installed_versions(packages)).unwrap_or_default()
}

/// The packages of `wanted` that are not installed.
pub fn missing_packages(wanted: &[String]) -> Vec<String> {
    let installed = installed_versions(wanted);
    wanted.iter().filter(|p| !installed.contains_key(*p)).cloned().collect()
}

/// apt's option to wait for the dpkg lock (seconds) instead of failing.
const DPKG_LOCK_WAIT: [&str; 2] = ["-o", "DPkg::Lock::Timeout=600"];

/// Installs `packages` with apt-get (as root), refreshing the package
/// lists and trying once more if the first attempt fails; whether it worked.
/// apt-get waits up to ten minutes for the dpkg lock, so that concurrent
/// pgbin runs (or the machine's own apt) install one after the other
/// instead of failing.
pub fn install_packages(packages: &[String]) -> bool {
    let install = |update: bool| {
        if update {
            let _ = std::process::Command::new("apt-get").args(["update", "-qq"]).args(DPKG_LOCK_WAIT).status();
        }
        std::process::Command::new("apt-get")
            .args(["install", "-y", "-qq"])
            .args(DPKG_LOCK_WAIT)
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    install(false) || install(true)
}

/// Build dependencies that are missing and cannot be installed here.
#[derive(Debug, thiserror::Error)]
pub enum AptError {
    /// Not root, so apt-get cannot run.
    #[error("build dependencies missing; run: sudo {0}")]
    NotRoot(String),
    /// apt-get failed.
    #[error("installing build dependencies failed; run: {0}")]
    Failed(String),
}

/// Installs the packages of `packages` that are missing (as root; otherwise
/// the error names the command to run).
pub fn ensure_installed(packages: &[String], progress: &mut dyn Progress) -> Result<(), AptError> {
    let missing = missing_packages(packages);
    if missing.is_empty() {
        return Ok(());
    }
    let command = format!("apt-get install -y {}", missing.join(" "));
    if !running_as_root() {
        return Err(AptError::NotRoot(command));
    }
    progress.note(&format!("installing build dependencies: {}", missing.join(" ")));
    if install_packages(&missing) { Ok(()) } else { Err(AptError::Failed(command)) }
}

crate::util::error::usage_errors!(AptError);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpkg_knows_the_c_library() {
        let (package, version) = owning_package(Path::new("/lib/x86_64-linux-gnu/libc.so.6"));
        if std::env::consts::ARCH == "x86_64" {
            assert_eq!(package.as_deref(), Some("libc6"));
            assert!(version.is_some());
        }
        assert_eq!(missing_packages(&["libc6".into(), "no-such-package-pgbin".into()]), vec!["no-such-package-pgbin"]);
    }
}
