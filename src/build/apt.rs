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
        let Some(package) = text.lines().find_map(owner_of_search_line) else { continue };
        let version = installed_versions(std::slice::from_ref(&package)).into_values().next();
        return (Some(package), version);
    }
    (None, None)
}

/// The package of one `dpkg -S` line (`libssl3:arm64: /usr/lib/…`), named
/// as the build's package record names it: by name when it is of the build
/// machine's architecture (or has none), as `name:arch` otherwise. A
/// diversion line (`diversion by dash from: /bin/sh`) names no owner.
fn owner_of_search_line(line: &str) -> Option<String> {
    if line.starts_with("diversion by ") {
        return None;
    }
    let (owner, _path) = line.split_once(": ")?;
    let owner = owner.split(", ").next()?;
    Some(match owner.split_once(':') {
        Some((name, arch)) if arch == crate::build::inputs::native_arch() => name.to_string(),
        Some((name, arch)) => format!("{name}:{arch}"),
        None => owner.to_string(),
    })
}

/// The foreign Debian architectures `packages` name (`libssl-dev:arm64`)
/// that dpkg is not yet configured for.
pub fn missing_architectures(packages: &[String]) -> Vec<String> {
    let configured = std::process::Command::new("dpkg")
        .arg("--print-foreign-architectures")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .unwrap_or_default();
    let mut missing: Vec<String> = packages
        .iter()
        .filter_map(|p| p.split_once(':').map(|(_, arch)| arch.to_string()))
        .filter(|arch| arch != crate::build::inputs::native_arch() && !configured.contains(arch))
        .collect();
    missing.sort();
    missing.dedup();
    missing
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
/// lists first when `update_first`, else trying once more after refreshing
/// if the first attempt fails. On failure, the reason is apt's first error
/// line (apt's own output never reaches pgbin's stderr). apt-get waits up
/// to ten minutes for the dpkg lock, so that concurrent pgbin runs (or the
/// machine's own apt) install one after the other instead of failing.
pub fn install_packages(packages: &[String], update_first: bool) -> Result<(), String> {
    let install = |update: bool| -> Result<(), String> {
        if update {
            refresh_lists();
        }
        let output = std::process::Command::new("apt-get")
            .args(["install", "-y", "-qq"])
            .args(DPKG_LOCK_WAIT)
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| format!("cannot run apt-get: {e}"))?;
        if output.status.success() {
            return Ok(());
        }
        Err(failure_reason(&output))
    };
    if update_first {
        return install(true);
    }
    install(false).or_else(|_| install(true))
}

/// Why another architecture's packages cannot be installed beside the
/// build machine's, when that is the reason: a `Multi-Arch: same` package
/// must have one version on every architecture, and the archive may not
/// carry the machine's version for the target's (Debian's security and LTS
/// updates cover only some architectures). Names the first such package of
/// `missing` (`name:arch` whose `name` is installed natively).
fn version_skew(missing: &[String]) -> Option<String> {
    for package in missing {
        let Some((name, arch)) = package.split_once(':') else { continue };
        let Some(native) = installed_versions(&[name.to_string()]).remove(name) else { continue };
        let output = std::process::Command::new("apt-cache").args(["madison", package]).output().ok()?;
        let available: Vec<String> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| line.split('|').nth(1).map(|v| v.trim().to_string()))
            .collect();
        if !available.is_empty() && !available.contains(&native) {
            return Some(format!(
                "{package} is not in the archive at {native}, the build machine's {name}, and Multi-Arch packages must match (the archive has {} for {arch}): Debian has no update of it for {arch}",
                available.join(", ")
            ));
        }
    }
    None
}

/// Build dependencies that are missing and cannot be installed here.
#[derive(Debug, thiserror::Error)]
pub enum AptError {
    /// Not root, so apt-get cannot run.
    #[error("build dependencies missing; run: sudo {0}")]
    NotRoot(String),
    /// apt-get failed.
    #[error("installing build dependencies failed ({reason}); run: {command}")]
    Failed {
        /// apt's first error line.
        reason: String,
        /// The commands to run.
        command: String,
    },
}

/// Installs the packages of `packages` that are missing (as root; otherwise
/// the error names the commands to run). A package of another architecture
/// (`libc6:arm64`) first has dpkg configured for that architecture and the
/// package lists refreshed.
pub fn ensure_installed(packages: &[String], progress: &mut dyn Progress) -> Result<(), AptError> {
    let missing = missing_packages(packages);
    if missing.is_empty() {
        return Ok(());
    }
    let architectures = missing_architectures(&missing);
    let mut commands = architecture_commands(&architectures);
    commands.push(format!("apt-get install -y {}", missing.join(" ")));
    if !running_as_root() {
        return Err(AptError::NotRoot(commands.join(" && sudo ")));
    }
    add_architectures(&architectures, &commands, progress)?;
    progress.note(&format!("installing build dependencies: {}", missing.join(" ")));
    install_packages(&missing, false).map_err(|reason| AptError::Failed {
        reason: version_skew(&missing).unwrap_or(reason),
        command: commands.join(" && "),
    })
}

/// Configures dpkg for every foreign architecture `packages` name
/// (`libssl-dev:arm64`) and refreshes the package lists, so that apt knows
/// that architecture's packages (as root; otherwise the error names the
/// commands to run).
pub fn ensure_architectures(packages: &[String], progress: &mut dyn Progress) -> Result<(), AptError> {
    let architectures = missing_architectures(packages);
    if architectures.is_empty() {
        return Ok(());
    }
    let commands = architecture_commands(&architectures);
    if !running_as_root() {
        return Err(AptError::NotRoot(commands.join(" && sudo ")));
    }
    add_architectures(&architectures, &commands, progress)
}

/// `dpkg --add-architecture` for each of `architectures`, then `apt-get update`.
fn architecture_commands(architectures: &[String]) -> Vec<String> {
    let mut commands: Vec<String> = architectures.iter().map(|a| format!("dpkg --add-architecture {a}")).collect();
    if !architectures.is_empty() {
        commands.push("apt-get update".to_string());
    }
    commands
}

/// Runs what [`architecture_commands`] names (`commands`, for the error).
fn add_architectures(
    architectures: &[String],
    commands: &[String],
    progress: &mut dyn Progress,
) -> Result<(), AptError> {
    if architectures.is_empty() {
        return Ok(());
    }
    for arch in architectures {
        progress.note(&format!("adding the Debian architecture {arch} for a cross build"));
        let added = std::process::Command::new("dpkg").args(["--add-architecture", arch]).status();
        if !added.is_ok_and(|s| s.success()) {
            let reason = format!("dpkg --add-architecture {arch} failed");
            return Err(AptError::Failed { reason, command: commands.join(" && ") });
        }
    }
    refresh_lists();
    Ok(())
}

/// `apt-get update`, quietly; a failure shows in the apt command that follows.
fn refresh_lists() {
    let _ = std::process::Command::new("apt-get")
        .args(["update", "-qq"])
        .args(DPKG_LOCK_WAIT)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

/// Why an apt command failed: its first `E:` line, or its exit status.
pub fn failure_reason(output: &std::process::Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    stderr.lines().find(|l| l.starts_with("E: ")).map_or_else(
        || format!("apt-get exited with {}", output.status),
        |l| format!("apt-get: {}", l.trim_start_matches("E: ")),
    )
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

    #[test]
    fn a_foreign_owner_keeps_its_architecture() {
        let native = crate::build::inputs::native_arch();
        assert_eq!(owner_of_search_line(&format!("libssl3:{native}: /usr/lib/x/libssl.so.3")).unwrap(), "libssl3");
        assert_eq!(owner_of_search_line("libssl3:sparc64: /usr/lib/y/libssl.so.3").unwrap(), "libssl3:sparc64");
        assert_eq!(owner_of_search_line("libc-bin: /sbin/ldconfig").unwrap(), "libc-bin");
        assert_eq!(owner_of_search_line("diversion by dash from: /bin/sh"), None);
        assert_eq!(owner_of_search_line("libx1:sparc64, libx1:s390x: /usr/share/doc/x").unwrap(), "libx1:sparc64");
        assert!(missing_architectures(&["zlib1g-dev".into(), format!("libc6:{native}")]).is_empty());
        assert_eq!(missing_architectures(&["a:sparc64".into(), "b:sparc64".into()]), vec!["sparc64"]);
    }
}
