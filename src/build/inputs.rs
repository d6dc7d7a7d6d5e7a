//! The build machine's inputs as the host backend's cache key sees them: the
//! installed Debian packages a build can read, with their versions.
//!
//! The record is taken from dpkg's database (`/var/lib/dpkg/status`, or the
//! file named by [`STATUS_ENV`]), parsed here as deb822 with a bounded read.
//! It holds the build packages, every package of the Essential and required
//! sets (the shell, coreutils, sed, grep, awk, tar, dpkg, `libc-bin`'s
//! `ldconfig` and locales, which configure and the relocation step run), and
//! the whole installed `Depends`/`Pre-Depends` closure of those, which brings
//! in the run-time libraries a `-dev` package links against (`libssl-dev` →
//! `libssl3`), the compiler's parts (`gcc` → `cpp`, `binutils`) and the C
//! library (`libc6-dev` → `libc6`). Native and `all` packages are recorded
//! by name, another architecture's as `name:arch`, so a cross build's target
//! packages are recorded apart from the build machine's.
//!
//! The key is computed before the build, so after relocation
//! [`check_covered`] proves that every library that was bundled comes from a
//! package in the record, at the recorded version.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::build::relocate::BundledLibrary;
use crate::util::io::{IoError, read_limited};

/// The environment variable that names another dpkg status file (for tests
/// and for recording a chroot's packages).
pub const STATUS_ENV: &str = "PGBIN_DPKG_STATUS";

/// dpkg's status file.
pub const DEFAULT_STATUS: &str = "/var/lib/dpkg/status";

/// The most bytes the status file may hold (a full desktop system's is a
/// few megabytes).
pub const STATUS_BOUND: u64 = 64 << 20;

/// The installed package name → version record of a build's inputs.
pub type PackageRecord = BTreeMap<String, String>;

/// Why the inputs could not be recorded, or do not cover a build.
#[derive(Debug, thiserror::Error)]
pub enum InputsError {
    /// The status file could not be read.
    #[error("cannot record the installed packages: {0}")]
    Io(#[from] IoError),
    /// A bundled library belongs to no Debian package.
    #[error(
        "{library} (from {origin}) belongs to no installed Debian package, so the build cache's key cannot cover it; remove it or install the library from a package"
    )]
    Unpackaged {
        /// The library's file name.
        library: String,
        /// Where it was copied from.
        origin: String,
    },
    /// A bundled library's package is not among the recorded inputs.
    #[error(
        "{library} comes from {package}, which is not among the build's recorded packages; add it to the build packages of data/targets.toml"
    )]
    NotRecorded {
        /// The library's file name.
        library: String,
        /// Its package.
        package: String,
    },
    /// A bundled library's package changed version during the build.
    #[error(
        "{package} changed during the build ({recorded} when the build started, {now} when {library} was bundled); build again"
    )]
    Changed {
        /// The library's file name.
        library: String,
        /// Its package.
        package: String,
        /// The version the key covers.
        recorded: String,
        /// The version found when bundling.
        now: String,
    },
}

crate::util::error::usage_errors!(InputsError);

/// One dependency alternative: a name and an optional architecture
/// qualifier (`any`, `native` or an architecture).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Dependency {
    name: String,
    arch: Option<String>,
}

/// One package paragraph of the status file.
#[derive(Debug, Clone, Default)]
struct Entry {
    name: String,
    arch: String,
    version: String,
    state: String,
    priority: String,
    essential: bool,
    foreign: bool,
    depends: Vec<Vec<Dependency>>,
    provides: Vec<String>,
}

impl Entry {
    /// Whether its files are on disk (anything but not-installed or
    /// config-files).
    fn present(&self) -> bool {
        matches!(
            self.state.as_str(),
            "installed" | "triggers-pending" | "triggers-awaited" | "half-configured" | "unpacked" | "half-installed"
        )
    }

    /// Whether it is configured (what `apt-get install` would leave).
    fn configured(&self) -> bool {
        matches!(self.state.as_str(), "installed" | "triggers-pending" | "triggers-awaited")
    }
}

/// dpkg's database of installed packages, as parsed from a status file.
#[derive(Debug, Clone)]
pub struct Database {
    native: String,
    entries: Vec<Entry>,
}

/// The Debian architecture of this machine (`amd64`, `arm64`, …).
pub fn native_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "i386",
        "arm" => "armhf",
        "powerpc64" => "ppc64el",
        "s390x" => "s390x",
        "mips64" => "mips64el",
        other => other,
    }
}

/// The status file pgbin reads: [`STATUS_ENV`] if set, else dpkg's.
pub fn status_path() -> PathBuf {
    std::env::var_os(STATUS_ENV).filter(|v| !v.is_empty()).map_or_else(|| PathBuf::from(DEFAULT_STATUS), PathBuf::from)
}

/// Reads and parses the machine's status file ([`status_path`]).
pub fn read_status() -> Result<Database, InputsError> {
    read_status_file(&status_path())
}

/// Reads and parses the status file at `path` (at most [`STATUS_BOUND`] bytes).
pub fn read_status_file(path: &Path) -> Result<Database, InputsError> {
    let bytes = read_limited(path, STATUS_BOUND)?;
    Ok(Database::parse(&String::from_utf8_lossy(&bytes), native_arch()))
}

/// Parses one relationship field (`a (>= 1) | b:any, c [amd64]`).
fn parse_relations(value: &str) -> Vec<Vec<Dependency>> {
    value
        .split(',')
        .map(|group| {
            group
                .split('|')
                .filter_map(|alternative| {
                    let token = alternative.trim().split([' ', '(', '[', '<', '\t']).next().unwrap_or("");
                    if token.is_empty() {
                        return None;
                    }
                    let (name, arch) = match token.split_once(':') {
                        Some((name, arch)) => (name, Some(arch.to_string())),
                        None => (token, None),
                    };
                    Some(Dependency { name: name.to_string(), arch })
                })
                .collect::<Vec<_>>()
        })
        .filter(|group| !group.is_empty())
        .collect()
}

impl Database {
    /// Parses the text of a status file; `native` is the machine's Debian
    /// architecture. Malformed paragraphs (no name) are skipped.
    pub fn parse(text: &str, native: &str) -> Database {
        let mut entries = Vec::new();
        for paragraph in text.split("\n\n") {
            let mut fields: BTreeMap<String, String> = BTreeMap::new();
            let mut last: Option<String> = None;
            for line in paragraph.lines() {
                if line.starts_with([' ', '\t']) {
                    if let Some(field) = &last {
                        let value = fields.entry(field.clone()).or_default();
                        value.push(' ');
                        value.push_str(line.trim());
                    }
                    continue;
                }
                let Some((field, value)) = line.split_once(':') else { continue };
                let field = field.trim().to_ascii_lowercase();
                fields.insert(field.clone(), value.trim().to_string());
                last = Some(field);
            }
            let field = |name: &str| fields.get(name).cloned().unwrap_or_default();
            let name = field("package");
            if name.is_empty() {
                continue;
            }
            let mut depends = parse_relations(&field("depends"));
            depends.extend(parse_relations(&field("pre-depends")));
            entries.push(Entry {
                name,
                arch: field("architecture"),
                version: field("version"),
                state: field("status").split_whitespace().nth(2).unwrap_or("").to_string(),
                priority: field("priority"),
                essential: field("essential").eq_ignore_ascii_case("yes"),
                foreign: field("multi-arch") == "foreign",
                depends,
                provides: parse_relations(&field("provides")).into_iter().flatten().map(|d| d.name).collect(),
            });
        }
        Database { native: native.to_string(), entries }
    }

    /// The record's name of an entry: `name`, or `name:arch` for another
    /// architecture's package.
    fn key(&self, entry: &Entry) -> String {
        if entry.arch == self.native || entry.arch == "all" || entry.arch.is_empty() {
            entry.name.clone()
        } else {
            format!("{}:{}", entry.name, entry.arch)
        }
    }

    /// The version recorded for an entry: its version, with its state when
    /// it is not fully installed.
    fn recorded_version(entry: &Entry) -> String {
        if entry.configured() { entry.version.clone() } else { format!("{} ({})", entry.version, entry.state) }
    }

    /// Every configured package: its record name → version.
    pub fn all_versions(&self) -> PackageRecord {
        self.entries.iter().filter(|e| e.configured()).map(|e| (self.key(e), e.version.clone())).collect()
    }

    /// Configured versions of the named packages (`name` or `name:arch`);
    /// absent ones are omitted.
    pub fn installed_versions(&self, packages: &[String]) -> BTreeMap<String, String> {
        let mut versions = BTreeMap::new();
        for package in packages {
            let wanted = qualified(package);
            // An explicit architecture (`pkgconf:arm64`) must be installed
            // for that architecture: the build machine's own does not count.
            let arch_ok = |e: &Entry| match wanted.arch.as_deref() {
                None | Some("any") => true,
                Some("native") => e.arch == self.native || e.arch == "all",
                Some(arch) => e.arch == arch || e.arch == "all",
            };
            let found = self
                .resolve(&wanted, &self.native)
                .into_iter()
                .map(|i| &self.entries[i])
                .find(|e| e.name == wanted.name && e.configured() && arch_ok(e));
            if let Some(entry) = found {
                versions.insert(package.clone(), entry.version.clone());
            }
        }
        versions
    }

    /// Indices of the present entries a dependency on `dependency` from a
    /// package of architecture `from` can be satisfied by: real packages of
    /// that name and providers of it. Ambiguity resolves to more entries,
    /// never fewer, since the record may cover more than is used but never
    /// less.
    fn resolve(&self, dependency: &Dependency, from: &str) -> Vec<usize> {
        let from = if from == "all" || from.is_empty() { self.native.as_str() } else { from };
        let candidates: Vec<usize> = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.present() && (e.name == dependency.name || e.provides.contains(&dependency.name)))
            .map(|(i, _)| i)
            .collect();
        let arch_matches = |e: &Entry, arch: &str| e.arch == arch || e.arch == "all";
        let chosen: Vec<usize> = match dependency.arch.as_deref() {
            Some("any") => candidates.clone(),
            Some("native") => {
                candidates.iter().copied().filter(|&i| arch_matches(&self.entries[i], &self.native)).collect()
            }
            Some(arch) => candidates.iter().copied().filter(|&i| arch_matches(&self.entries[i], arch)).collect(),
            None => candidates
                .iter()
                .copied()
                .filter(|&i| arch_matches(&self.entries[i], from) || self.entries[i].foreign)
                .collect(),
        };
        if chosen.is_empty() { candidates } else { chosen }
    }

    /// The record of `roots` (`name` or `name:arch`), every package of the
    /// Essential and required sets, and everything they depend on,
    /// transitively: package → version.
    pub fn closure(&self, roots: &[String]) -> PackageRecord {
        let mut queue: Vec<usize> = Vec::new();
        for root in roots {
            queue.extend(self.resolve(&qualified(root), &self.native));
        }
        queue.extend(
            self.entries
                .iter()
                .enumerate()
                .filter(|(_, e)| e.present() && (e.essential || e.priority == "required"))
                .map(|(i, _)| i),
        );
        let mut seen = BTreeSet::new();
        while let Some(index) = queue.pop() {
            if !seen.insert(index) {
                continue;
            }
            let entry = &self.entries[index];
            for group in &entry.depends {
                for alternative in group {
                    queue.extend(self.resolve(alternative, &entry.arch));
                }
            }
        }
        seen.into_iter().map(|i| (self.key(&self.entries[i]), Self::recorded_version(&self.entries[i]))).collect()
    }
}

/// `name` or `name:arch` as a dependency.
fn qualified(package: &str) -> Dependency {
    match package.split_once(':') {
        Some((name, arch)) => Dependency { name: name.to_string(), arch: Some(arch.to_string()) },
        None => Dependency { name: package.to_string(), arch: None },
    }
}

/// One package whose recorded version differs between two records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageChange {
    /// The package (`name` or `name:arch`).
    pub package: String,
    /// Its version in the first record (absent: not installed).
    pub before: Option<String>,
    /// Its version in the second record (absent: not installed).
    pub after: Option<String>,
}

impl std::fmt::Display for PackageChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = |v: &Option<String>| v.clone().unwrap_or_else(|| "(not installed)".into());
        write!(f, "{} {} → {}", self.package, shown(&self.before), shown(&self.after))
    }
}

/// The packages whose versions differ between `before` and `after`, by name.
pub fn changes(before: &PackageRecord, after: &PackageRecord) -> Vec<PackageChange> {
    let names: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    names
        .into_iter()
        .filter(|name| before.get(*name) != after.get(*name))
        .map(|name| PackageChange {
            package: name.clone(),
            before: before.get(name).cloned(),
            after: after.get(name).cloned(),
        })
        .collect()
}

/// Checks that every bundled library comes from a package in `record`, at
/// the recorded version: the key computed from the record before the build
/// then covers everything that was bundled.
pub fn check_covered(bundled: &[BundledLibrary], record: &PackageRecord) -> Result<(), InputsError> {
    for library in bundled {
        let Some(package) = &library.package else {
            return Err(InputsError::Unpackaged { library: library.name.clone(), origin: library.origin.clone() });
        };
        let Some(recorded) = record.get(package) else {
            return Err(InputsError::NotRecorded { library: library.name.clone(), package: package.clone() });
        };
        if library.package_version.as_deref() != Some(recorded.as_str()) {
            return Err(InputsError::Changed {
                library: library.name.clone(),
                package: package.clone(),
                recorded: recorded.clone(),
                now: library.package_version.clone().unwrap_or_else(|| "unknown".into()),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "\
Package: libssl-dev
Status: install ok installed
Priority: optional
Architecture: amd64
Multi-Arch: same
Version: 3.0.19-1~deb12u2
Depends: libssl3 (= 3.0.19-1~deb12u2)

Package: libssl3
Status: install ok installed
Architecture: amd64
Multi-Arch: same
Version: 3.0.19-1~deb12u2
Depends: libc6 (>= 2.34)
Description: Secure Sockets Layer toolkit
 a continuation line: with a colon

Package: libssl3
Status: install ok installed
Architecture: arm64
Multi-Arch: same
Version: 3.0.19-1~deb12u2
Depends: libc6 (>= 2.34)

Package: libc6
Status: install ok installed
Architecture: amd64
Version: 2.36-9+deb12u14
Depends: libgcc-s1

Package: libc6
Status: install ok installed
Architecture: arm64
Version: 2.36-9+deb12u14

Package: libgcc-s1
Status: install ok installed
Architecture: amd64
Version: 12.2.0-14+deb12u1
Depends: gcc-12-base (= 12.2.0-14+deb12u1), libc6 (>= 2.35)

Package: gcc-12-base
Status: install ok installed
Architecture: amd64
Version: 12.2.0-14+deb12u1

Package: sed
Essential: yes
Status: install ok installed
Priority: required
Architecture: amd64
Version: 4.9-1

Package: perl
Status: install ok installed
Architecture: amd64
Multi-Arch: allowed
Version: 5.36.0-7+deb12u3
Pre-Depends: dpkg (>= 1.17.17)
Depends: perl-base | perl-tiny, awk

Package: mawk
Status: install ok installed
Architecture: amd64
Multi-Arch: foreign
Version: 1.3.4.20200120-3.1
Provides: awk

Package: dpkg
Status: install ok installed
Architecture: amd64
Version: 1.21.22

Package: perl-base
Status: deinstall ok config-files
Architecture: amd64
Version: 5.36.0-7+deb12u2

Package: gone
Status: purge ok not-installed
Architecture: amd64
";

    fn database() -> Database {
        Database::parse(STATUS, "amd64")
    }

    #[test]
    fn the_closure_follows_depends_pre_depends_and_provides() {
        let record = database().closure(&["libssl-dev".into(), "perl".into()]);
        assert_eq!(record["libssl3"], "3.0.19-1~deb12u2", "libssl-dev → libssl3");
        assert_eq!(record["libc6"], "2.36-9+deb12u14", "libssl3 → libc6");
        assert!(record.contains_key("gcc-12-base"), "libc6 → libgcc-s1 → gcc-12-base");
        assert!(record.contains_key("dpkg"), "Pre-Depends are followed");
        assert!(record.contains_key("mawk"), "a virtual package resolves to its provider");
        assert!(record.contains_key("sed"), "the Essential set is always recorded");
        assert!(!record.contains_key("perl-base"), "only config files are left of it");
        assert!(!record.contains_key("libssl3:arm64"), "another architecture only when asked for");
        assert!(!record.contains_key("gone"));
    }

    #[test]
    fn a_cross_builds_target_packages_are_recorded_by_architecture() {
        let record = database().closure(&["libssl3:arm64".into()]);
        assert_eq!(record["libssl3:arm64"], "3.0.19-1~deb12u2");
        assert_eq!(record["libc6:arm64"], "2.36-9+deb12u14", "same-architecture dependencies");
    }

    #[test]
    fn installed_versions_are_read_from_the_status_file() {
        let versions = database().installed_versions(&["libssl3".into(), "perl-base".into(), "nothing".into()]);
        assert_eq!(versions, BTreeMap::from([("libssl3".to_string(), "3.0.19-1~deb12u2".to_string())]));
    }

    #[test]
    fn a_package_asked_for_another_architecture_is_not_the_build_machines() {
        let versions = database().installed_versions(&["libssl3:arm64".into(), "libssl-dev:arm64".into()]);
        assert_eq!(versions.keys().collect::<Vec<_>>(), vec!["libssl3:arm64"], "libssl-dev is amd64 only");
    }

    #[test]
    fn a_half_installed_package_records_its_state() {
        let text = STATUS.replace(
            "Package: dpkg\nStatus: install ok installed",
            "Package: dpkg\nPriority: required\nStatus: install reinstreq half-installed",
        );
        let record = Database::parse(&text, "amd64").closure(&[]);
        assert_eq!(record["dpkg"], "1.21.22 (half-installed)");
    }

    #[test]
    fn changes_name_each_package_and_both_versions() {
        let before = database().closure(&["libssl-dev".into()]);
        let mut after = before.clone();
        after.insert("libssl3".into(), "3.0.22-1~deb12u2".into());
        after.remove("sed");
        let changed = changes(&before, &after);
        assert_eq!(changed.len(), 2);
        assert_eq!(changed[0].to_string(), "libssl3 3.0.19-1~deb12u2 → 3.0.22-1~deb12u2");
        assert_eq!(changed[1].to_string(), "sed 4.9-1 → (not installed)");
    }

    #[test]
    fn every_bundled_library_must_be_covered_by_the_record() {
        let record = database().closure(&["libssl-dev".into()]);
        let library = |package: Option<&str>, version: Option<&str>| BundledLibrary {
            name: "libssl.so.3".into(),
            origin: "/usr/lib/x86_64-linux-gnu/libssl.so.3".into(),
            package: package.map(String::from),
            package_version: version.map(String::from),
        };
        assert!(check_covered(&[library(Some("libssl3"), Some("3.0.19-1~deb12u2"))], &record).is_ok());
        assert!(matches!(
            check_covered(&[library(Some("libssl3"), Some("3.0.22-1~deb12u2"))], &record),
            Err(InputsError::Changed { .. })
        ));
        assert!(matches!(
            check_covered(&[library(Some("libfoo1"), Some("1"))], &record),
            Err(InputsError::NotRecorded { .. })
        ));
        assert!(matches!(check_covered(&[library(None, None)], &record), Err(InputsError::Unpackaged { .. })));
    }

    #[test]
    fn the_real_status_file_covers_the_c_library() {
        let Ok(database) = read_status_file(Path::new(DEFAULT_STATUS)) else { return };
        let record = database.closure(&["libc6-dev".into()]);
        if std::env::consts::ARCH == "x86_64" && record.contains_key("libc6-dev") {
            assert!(record.contains_key("libc6"));
        }
    }
}
