//! `release`: what a release of one PostgreSQL version publishes, and
//! whether it may be released at all.
//!
//! What is already released is read from a record of release tags
//! (`postgresql-X.Y`, one per line, as `gh release list` prints them) and/or
//! a directory of published artifacts (`postgresql-X.Y.0-<triple>.tar.gz`).
//! A version already released is refused, and so is a downgrade: a version
//! lower than one already released in the same major (releasing 16.x after
//! 17.x is normal; releasing 17.5 after 17.6 is not).

use std::collections::BTreeSet;
use std::path::Path;

use crate::data::version::Version;

/// Prefix of release tags: `postgresql-18.6`.
pub const TAG_PREFIX: &str = "postgresql-";

/// The files published for one archive, in the order a user needs them.
pub const ARTIFACT_SUFFIXES: [&str; 7] =
    ["", ".sha256", ".manifest.json", ".intoto.json", ".spdx.json", ".asc", ".intoto.json.asc"];

/// Why a version may not be released.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// It was released before.
    #[error("PostgreSQL {0} is already released (tag {TAG_PREFIX}{0}); nothing to do")]
    AlreadyReleased(Version),
    /// A higher release of the same major is out.
    #[error("PostgreSQL {version} would be a downgrade: {released} is already released; release {released} or later")]
    Downgrade {
        /// The version asked for.
        version: Version,
        /// The higher version already released.
        released: Version,
    },
}

/// The release tag of a version.
pub fn tag(version: Version) -> String {
    format!("{TAG_PREFIX}{version}")
}

/// Every file published for `archive` (its name).
pub fn artifact_names(archive: &str) -> Vec<String> {
    ARTIFACT_SUFFIXES.iter().map(|suffix| format!("{archive}{suffix}")).collect()
}

/// Versions named by release tags, one per line; other lines (other tags,
/// blanks) are ignored.
pub fn versions_from_tags(text: &str) -> BTreeSet<Version> {
    text.lines().filter_map(|line| line.trim().strip_prefix(TAG_PREFIX)?.parse().ok()).collect()
}

/// Versions of the `postgresql-X.Y.0-<triple>.tar.gz` archives in `dir`.
pub fn versions_in_directory(dir: &Path) -> std::io::Result<BTreeSet<Version>> {
    let mut versions = BTreeSet::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix(TAG_PREFIX).filter(|_| name.ends_with(".tar.gz")) else { continue };
        if let Some(Ok(version)) = rest.split('-').next().map(str::parse::<Version>) {
            versions.insert(version);
        }
    }
    Ok(versions)
}

/// Checks that `version` may be released given what is `released`.
pub fn check_releasable(version: Version, released: &BTreeSet<Version>) -> Result<(), Refusal> {
    if released.contains(&version) {
        return Err(Refusal::AlreadyReleased(version));
    }
    match released.iter().filter(|r| r.major == version.major && **r > version).max() {
        Some(&higher) => Err(Refusal::Downgrade { version, released: higher }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        text.parse().unwrap()
    }

    #[test]
    fn tags_and_archive_names_give_versions() {
        let tags = versions_from_tags("postgresql-17.6\nv1.0\n\npostgresql-18.6\npostgresql-nonsense\n");
        assert_eq!(tags, BTreeSet::from([v("17.6"), v("18.6")]));
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "postgresql-17.6.0-x86_64-unknown-linux-gnu.tar.gz",
            "postgresql-17.6.0-x86_64-unknown-linux-gnu.tar.gz.sha256",
            "postgresql-16.10.0-aarch64-apple-darwin.tar.gz",
            "README",
        ] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        assert_eq!(versions_in_directory(dir.path()).unwrap(), BTreeSet::from([v("16.10"), v("17.6")]));
    }

    #[test]
    fn refuses_re_releases_and_downgrades_within_a_major_only() {
        let released = BTreeSet::from([v("17.6"), v("18.3")]);
        assert_eq!(check_releasable(v("17.6"), &released), Err(Refusal::AlreadyReleased(v("17.6"))));
        assert_eq!(
            check_releasable(v("17.5"), &released),
            Err(Refusal::Downgrade { version: v("17.5"), released: v("17.6") })
        );
        assert_eq!(check_releasable(v("17.11"), &released), Ok(()));
        assert_eq!(check_releasable(v("16.15"), &released), Ok(()));
        assert_eq!(check_releasable(v("18.6"), &BTreeSet::new()), Ok(()));
    }

    #[test]
    fn every_archive_ships_with_checksum_manifest_provenance_sbom_and_signatures() {
        let names = artifact_names("postgresql-18.6.0-x86_64-unknown-linux-gnu.tar.gz");
        assert_eq!(names.len(), 7);
        assert!(names.contains(&"postgresql-18.6.0-x86_64-unknown-linux-gnu.tar.gz.intoto.json.asc".to_string()));
    }
}
