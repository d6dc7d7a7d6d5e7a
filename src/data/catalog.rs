//! The version catalog: which PostgreSQL releases exist and when.
//!
//! Read from `data/catalog.toml`. The catalog holds facts only (majors, their
//! release and end-of-life dates, and every minor release with its date).
//! Source hashes and the evidence behind them live in the source lock
//! ([`crate::data::lock`]); what may be built is decided by [`crate::source::verify`].

use std::collections::BTreeSet;
use std::path::Path;

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::data::repo::{self, Repo};
use crate::data::version::{PreRelease, Version, VersionSpec};
use crate::util::confined::{Bound, ConfinedError, read_confined_text};

/// The most bytes the catalog may hold: the catalog is about 6 KiB for every major today; 1 MiB is room
/// for decades of releases and still bounds the memory a replaced (or
/// endless) file can take.
pub const CATALOG_BOUND: Bound = Bound { bytes: 1 << 20, what: "the catalog" };

/// Upstream tarball location, by version.
const UPSTREAM_URL_BASE: &str = "https://ftp.postgresql.org/pub/source";

/// The whole catalog.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    /// One entry per supported major, any order in the file.
    pub majors: Vec<Major>,
    /// Pre-releases seen (`19rc1`): listed, resolved only with `--pre`,
    /// never built and never the target of a major alias.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pre_releases: Vec<PreReleaseEntry>,
    /// Versions that were withdrawn before publication (18.5), with why:
    /// absent from the releases on purpose.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub withdrawn: Vec<Withdrawn>,
}

/// A version upstream withdrew before publishing it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Withdrawn {
    /// The version that never shipped.
    pub version: Version,
    /// Why, in one line, with where that is recorded.
    pub reason: String,
}

/// A pre-release and where it was seen.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreReleaseEntry {
    /// The pre-release.
    pub version: PreRelease,
    /// Where its existence was read (`Debian experimental 19~rc1-1`).
    pub seen: String,
}

/// A major version with its support window and releases.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Major {
    /// The major number.
    pub major: u32,
    /// Date of the MAJOR.0 release.
    pub released: Date,
    /// Date of the final release (end of life), per the upstream versioning policy.
    pub eol: Date,
    /// Every minor release of this major.
    pub releases: Vec<Release>,
}

/// One minor release.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    /// The exact version.
    pub version: Version,
    /// Upstream release date.
    pub date: Date,
}

/// Problems loading or querying the catalog.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The file is not a regular file inside the repository, is too large,
    /// or could not be read.
    #[error(transparent)]
    Read(#[from] ConfinedError),
    /// The file is not valid catalog TOML.
    #[error("malformed catalog {path}: {message}")]
    Parse {
        /// File path.
        path: String,
        /// Parser message.
        message: String,
    },
    /// The data is well-formed but inconsistent.
    #[error("inconsistent catalog: {0}")]
    Invalid(String),
    /// The spec names a major the catalog does not know.
    #[error("PostgreSQL {0} is not in the catalog; known majors: {1}")]
    UnknownMajor(u32, String),
    /// The spec names a major that has only pre-releases, and the caller did
    /// not ask for one.
    #[error("PostgreSQL {major} has only pre-releases so far ({list}); pass --pre to resolve the newest")]
    OnlyPreReleases {
        /// The major.
        major: u32,
        /// Its pre-releases.
        list: String,
    },
    /// The spec names a version upstream withdrew.
    #[error("PostgreSQL {version} was withdrawn upstream and never published: {reason}")]
    Withdrawn {
        /// The version.
        version: Version,
        /// Why.
        reason: String,
    },
    /// The spec names a release the catalog does not know.
    #[error("PostgreSQL {0} is not a known release; known {1}.x releases: {2}")]
    UnknownVersion(Version, u32, String),
    /// The major is past its end of life and the caller did not allow that.
    #[error(
        "PostgreSQL {major} reached end of life on {eol} and gets no security fixes; pass --allow-eol to use it anyway"
    )]
    EndOfLife {
        /// The major.
        major: u32,
        /// Its EOL date.
        eol: Date,
    },
}

/// A resolved spec: the release and what the catalog says about it.
#[derive(Debug, Clone, Serialize)]
pub struct Resolved {
    /// What the user asked for.
    pub spec: String,
    /// The release it resolved to.
    pub version: Version,
    /// Upstream release date.
    pub released: Date,
    /// End of life of its major.
    pub eol: Date,
    /// Whether the major is past end of life at the reference date.
    pub end_of_life: bool,
}

impl Catalog {
    /// Loads and validates the repository's `data/catalog.toml` (a regular file of at
    /// most [`CATALOG_BOUND`], reached through no link).
    pub fn load(repo: &Repo) -> Result<Catalog, CatalogError> {
        let text = read_confined_text(repo.root(), Path::new(repo::CATALOG), CATALOG_BOUND)?;
        Catalog::parse(&text, &repo.root().join(repo::CATALOG).display().to_string())
    }

    /// Parses and validates catalog text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Catalog, CatalogError> {
        let mut catalog: Catalog = toml::from_str(text)
            .map_err(|e| CatalogError::Parse { path: origin.to_string(), message: e.message().to_string() })?;
        catalog.validate()?;
        catalog.pre_releases.sort_by_key(|p| p.version);
        catalog.majors.sort_by_key(|m| m.major);
        for major in &mut catalog.majors {
            major.releases.sort_by_key(|r| r.version);
        }
        Ok(catalog)
    }

    fn validate(&self) -> Result<(), CatalogError> {
        let invalid = |m: String| Err(CatalogError::Invalid(m));
        let mut seen_majors = BTreeSet::new();
        for major in &self.majors {
            if !seen_majors.insert(major.major) {
                return invalid(format!("major {} listed twice", major.major));
            }
            if major.eol <= major.released {
                return invalid(format!("major {}: eol is not after its release", major.major));
            }
            if major.releases.is_empty() {
                return invalid(format!("major {} has no releases", major.major));
            }
            let mut seen = BTreeSet::new();
            for release in &major.releases {
                if release.version.major != major.major {
                    return invalid(format!("{} is listed under major {}", release.version, major.major));
                }
                if !seen.insert(release.version) {
                    return invalid(format!("{} listed twice", release.version));
                }
                if release.date < major.released {
                    return invalid(format!("{} is dated before its major's release", release.version));
                }
            }
            let mut by_version: Vec<&Release> = major.releases.iter().collect();
            by_version.sort_by_key(|r| r.version);
            if by_version.windows(2).any(|w| w[1].date < w[0].date) {
                return invalid(format!("major {}: release dates go backwards as versions rise", major.major));
            }
        }
        for withdrawn in &self.withdrawn {
            if self.majors.iter().flat_map(|m| &m.releases).any(|r| r.version == withdrawn.version) {
                return invalid(format!("{} is listed both as a release and as withdrawn", withdrawn.version));
            }
            if withdrawn.reason.trim().is_empty() || withdrawn.reason.len() > 300 || withdrawn.reason.contains('\n') {
                return invalid(format!("withdrawn {}: give the reason in one line", withdrawn.version));
            }
        }
        let mut seen_pre = BTreeSet::new();
        for pre in &self.pre_releases {
            if !seen_pre.insert(pre.version) {
                return invalid(format!("pre-release {} listed twice", pre.version));
            }
            if pre.seen.trim().is_empty() || pre.seen.len() > 200 || pre.seen.contains('\n') {
                return invalid(format!("pre-release {}: say in one line where it was seen", pre.version));
            }
        }
        Ok(())
    }

    /// The major entry, if known.
    pub fn major(&self, major: u32) -> Option<&Major> {
        self.majors.iter().find(|m| m.major == major)
    }

    /// Every release, ascending.
    pub fn releases(&self) -> impl Iterator<Item = (&Major, &Release)> {
        self.majors.iter().flat_map(|m| m.releases.iter().map(move |r| (m, r)))
    }

    /// The catalog entry of one exact release.
    pub fn release(&self, version: Version) -> Option<(&Major, &Release)> {
        self.releases().find(|(_, r)| r.version == version)
    }

    /// Why a version was withdrawn, if it was.
    pub fn withdrawn(&self, version: Version) -> Option<&Withdrawn> {
        self.withdrawn.iter().find(|w| w.version == version)
    }

    /// The pre-releases of a major, ascending.
    pub fn pre_releases_of(&self, major: u32) -> impl Iterator<Item = &PreReleaseEntry> {
        self.pre_releases.iter().filter(move |p| p.version.major == major)
    }

    /// The newest pre-release of a major that has no final release yet
    /// (`resolve 19 --pre`); a major with final releases resolves to them.
    pub fn newest_pre_release(&self, major: u32) -> Option<&PreReleaseEntry> {
        if self.major(major).is_some() {
            return None;
        }
        self.pre_releases_of(major).max_by_key(|p| p.version)
    }

    /// Resolves a spec to a release. `today` decides end of life; an EOL
    /// major is an error unless `allow_eol`.
    pub fn resolve(&self, spec: VersionSpec, today: Date, allow_eol: bool) -> Result<Resolved, CatalogError> {
        let major_number = match spec {
            VersionSpec::Major(m) => m,
            VersionSpec::Exact(v) => v.major,
        };
        let major = self.major(major_number).ok_or_else(|| {
            let pre: Vec<String> = self.pre_releases_of(major_number).map(|p| p.version.to_string()).collect();
            if !pre.is_empty() {
                return CatalogError::OnlyPreReleases { major: major_number, list: pre.join(", ") };
            }
            let known: Vec<String> = self.majors.iter().map(|m| m.major.to_string()).collect();
            CatalogError::UnknownMajor(major_number, known.join(", "))
        })?;
        let release = match spec {
            VersionSpec::Major(_) => major.releases.iter().max_by_key(|r| r.version),
            VersionSpec::Exact(v) => major.releases.iter().find(|r| r.version == v),
        }
        .ok_or_else(|| {
            let VersionSpec::Exact(v) = spec else { unreachable!("majors always have releases") };
            if let Some(withdrawn) = self.withdrawn(v) {
                return CatalogError::Withdrawn { version: v, reason: withdrawn.reason.clone() };
            }
            let known: Vec<String> = major.releases.iter().map(|r| r.version.to_string()).collect();
            CatalogError::UnknownVersion(v, major.major, known.join(", "))
        })?;
        let end_of_life = major.is_end_of_life(today);
        if end_of_life && !allow_eol {
            return Err(CatalogError::EndOfLife { major: major.major, eol: major.eol });
        }
        Ok(Resolved {
            spec: spec.to_string(),
            version: release.version,
            released: release.date,
            eol: major.eol,
            end_of_life,
        })
    }
}

impl Release {
    /// The release date at midnight UTC, in seconds since the epoch: the
    /// `SOURCE_DATE_EPOCH` of every build of this release.
    pub fn source_date_epoch(&self) -> i64 {
        self.date.to_zoned(jiff::tz::TimeZone::UTC).expect("catalog dates are valid").timestamp().as_second()
    }
}

impl Major {
    /// Whether the major is past its end of life at `today`.
    pub fn is_end_of_life(&self, today: Date) -> bool {
        today > self.eol
    }
}

/// File name of the upstream tarball.
pub fn tarball_name(version: Version) -> String {
    format!("postgresql-{version}.tar.bz2")
}

/// The canonical upstream URL of a release's tarball.
pub fn upstream_url(version: Version) -> String {
    format!("{UPSTREAM_URL_BASE}/v{version}/{}", tarball_name(version))
}

/// The upstream URL list for a release (canonical first).
pub fn default_urls(version: Version) -> Vec<String> {
    vec![upstream_url(version)]
}

/// Today's date in UTC, the reference for end-of-life decisions.
pub fn today_utc() -> Date {
    jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date()
}

crate::util::error::usage_errors!(CatalogError);

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
[[majors]]
major = 17
released = "2024-09-26"
eol = "2029-11-08"
releases = [
  { version = "17.0", date = "2024-09-26" },
  { version = "17.10", date = "2026-05-14" },
  { version = "17.9", date = "2026-02-26" },
]

[[majors]]
major = 13
released = "2020-09-24"
eol = "2025-11-13"
releases = [{ version = "13.16", date = "2024-08-08" }]
"#;

    fn date(s: &str) -> Date {
        s.parse().unwrap()
    }

    #[test]
    fn resolves_major_to_highest_minor_numerically() {
        let catalog = Catalog::parse(SAMPLE, "sample").unwrap();
        let r = catalog.resolve("17".parse().unwrap(), date("2026-11-24"), false).unwrap();
        assert_eq!(r.version, Version::new(17, 10));
    }

    #[test]
    fn a_major_with_only_pre_releases_resolves_only_when_asked() {
        let text = format!(
            "{SAMPLE}\n[[pre_releases]]\nversion = \"19rc1\"\nseen = \"Debian experimental 19~rc1-1\"\n\n[[pre_releases]]\nversion = \"19beta2\"\nseen = \"Debian experimental 19~beta2-1\"\n"
        );
        let catalog = Catalog::parse(&text, "sample").unwrap();
        let err = catalog.resolve("19".parse().unwrap(), date("2026-11-24"), false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "PostgreSQL 19 has only pre-releases so far (19beta2, 19rc1); pass --pre to resolve the newest"
        );
        assert_eq!(catalog.newest_pre_release(19).unwrap().version.to_string(), "19rc1");
        assert!(catalog.newest_pre_release(17).is_none(), "a major with final releases resolves to them");
        let twice = format!("{text}\n[[pre_releases]]\nversion = \"19~rc1\"\nseen = \"again\"\n");
        assert!(Catalog::parse(&twice, "sample").is_err());
    }

    #[test]
    fn a_withdrawn_version_is_refused_with_its_reason() {
        let text = format!("{SAMPLE}\n[[withdrawn]]\nversion = \"17.7\"\nreason = \"never published\"\n");
        let catalog = Catalog::parse(&text, "sample").unwrap();
        let err = catalog.resolve("17.7".parse().unwrap(), date("2026-11-24"), false).unwrap_err();
        assert_eq!(err.to_string(), "PostgreSQL 17.7 was withdrawn upstream and never published: never published");
        let listed = text.replace("version = \"17.7\"", "version = \"17.10\"");
        assert!(Catalog::parse(&listed, "sample").is_err(), "a release cannot also be withdrawn");
    }

    #[test]
    fn exact_versions_must_exist() {
        let catalog = Catalog::parse(SAMPLE, "sample").unwrap();
        let err = catalog.resolve("17.60".parse().unwrap(), date("2026-11-24"), false).unwrap_err();
        assert!(matches!(err, CatalogError::UnknownVersion(..)), "{err}");
        let err = catalog.resolve("12".parse().unwrap(), date("2026-11-24"), false).unwrap_err();
        assert!(matches!(err, CatalogError::UnknownMajor(..)), "{err}");
    }

    #[test]
    fn end_of_life_needs_explicit_permission() {
        let catalog = Catalog::parse(SAMPLE, "sample").unwrap();
        let spec = "13.16".parse().unwrap();
        assert!(matches!(
            catalog.resolve(spec, date("2026-11-24"), false),
            Err(CatalogError::EndOfLife { major: 13, .. })
        ));
        let allowed = catalog.resolve(spec, date("2026-11-24"), true).unwrap();
        assert!(allowed.end_of_life);
        assert!(!catalog.resolve(spec, date("2025-11-13"), false).unwrap().end_of_life);
    }

    #[test]
    fn rejects_inconsistent_data() {
        let misfiled = SAMPLE.replace("{ version = \"17.0\"", "{ version = \"16.0\"");
        assert!(matches!(Catalog::parse(&misfiled, "x"), Err(CatalogError::Invalid(_))));
        let backwards = SAMPLE.replace("2026-02-26", "2026-06-01");
        assert!(matches!(Catalog::parse(&backwards, "x"), Err(CatalogError::Invalid(_))));
        let unknown_field = format!("{SAMPLE}\nextra = 1\n");
        assert!(matches!(Catalog::parse(&unknown_field, "x"), Err(CatalogError::Parse { .. })));
    }

    #[test]
    fn upstream_locations() {
        let v = Version::new(17, 6);
        assert_eq!(tarball_name(v), "postgresql-17.6.tar.bz2");
        assert_eq!(upstream_url(v), "https://ftp.postgresql.org/pub/source/v17.6/postgresql-17.6.tar.bz2");
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::util::fuzz;
    use proptest::prelude::*;

    const COMMITTED: &str = include_str!("../../data/catalog.toml");

    #[test]
    fn deeply_nested_toml_is_an_error_not_a_stack_overflow() {
        let text = format!("x = {}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(matches!(Catalog::parse(&text, "deep"), Err(CatalogError::Parse { .. })));
        let tables = format!("x = {}1{}", "{a = ".repeat(100_000), "}".repeat(100_000));
        assert!(matches!(Catalog::parse(&tables, "deep"), Err(CatalogError::Parse { .. })));
    }

    proptest! {
        #![proptest_config(fuzz::config(768))]

        #[test]
        fn fuzz_catalog_mutated(mutations in fuzz::mutations(6)) {
            let text = String::from_utf8_lossy(&fuzz::apply(COMMITTED.as_bytes(), &mutations)).into_owned();
            let _ = Catalog::parse(&text, "fuzzed");
        }
    }
}
