//! PostgreSQL version numbers and version specs.
//!
//! Since PostgreSQL 10 a release is `MAJOR.MINOR` (`17.6`). Consumers of the
//! archive convention spell it `MAJOR.MINOR.0`, so `17.6.0` is accepted as the
//! same version. A [`VersionSpec`] is what a user types: a bare major (`17`,
//! meaning the highest known 17.x) or an exact version.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Highest major or minor number accepted; PostgreSQL is far from either.
const MAX_COMPONENT: u32 = 999;

/// An exact PostgreSQL release, `MAJOR.MINOR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Major version (13..).
    pub major: u32,
    /// Minor (patch) release within the major.
    pub minor: u32,
}

/// A pre-release of a major: `19beta2`, `19rc1`. pgbin lists pre-releases
/// but never takes one for a major alias, and builds final releases only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PreRelease {
    /// The major it precedes.
    pub major: u32,
    /// Beta or release candidate (betas sort first).
    pub stage: PreStage,
    /// Its number within the stage (1..).
    pub number: u32,
}

/// The stage of a pre-release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PreStage {
    /// `beta`.
    Beta,
    /// `rc`.
    Rc,
}

impl PreRelease {
    /// The upstream tarball's name (`postgresql-19rc1.tar.bz2`).
    pub fn tarball_name(&self) -> String {
        format!("postgresql-{self}.tar.bz2")
    }

    /// How Debian spells it in an upstream version (`19~rc1`).
    pub fn debian_spelling(&self) -> String {
        let text = self.to_string();
        let at = self.major.to_string().len();
        format!("{}~{}", &text[..at], &text[at..])
    }
}

impl fmt::Display for PreRelease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stage = match self.stage {
            PreStage::Beta => "beta",
            PreStage::Rc => "rc",
        };
        write!(f, "{}{stage}{}", self.major, self.number)
    }
}

impl FromStr for PreRelease {
    type Err = VersionError;

    /// Parses `19rc1`, `19beta2`, or Debian's `19~rc1`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let syntax = || VersionError::Syntax(text.to_string());
        let digits = text.bytes().take_while(u8::is_ascii_digit).count();
        let major = component(&text[..digits]).ok_or_else(syntax)?;
        let rest = &text[digits..];
        let rest = rest.strip_prefix('~').unwrap_or(rest);
        let (stage, number) = if let Some(n) = rest.strip_prefix("beta") {
            (PreStage::Beta, n)
        } else if let Some(n) = rest.strip_prefix("rc") {
            (PreStage::Rc, n)
        } else {
            return Err(syntax());
        };
        let number = component(number).filter(|n| *n > 0).ok_or_else(syntax)?;
        if major < 10 {
            return Err(VersionError::PreTen(text.to_string()));
        }
        Ok(PreRelease { major, stage, number })
    }
}

impl Serialize for PreRelease {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PreRelease {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// What a user asked for: a whole major or one exact release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSpec {
    /// `17`: the highest known release of that major.
    Major(u32),
    /// `17.6` or `17.6.0`: exactly that release.
    Exact(Version),
}

/// Why a version or spec string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    /// Not digits and dots at all.
    #[error("'{0}' is not a PostgreSQL version: expected MAJOR (17), MAJOR.MINOR (17.6) or MAJOR.MINOR.0 (17.6.0)")]
    Syntax(String),
    /// Three components whose last is not zero.
    #[error(
        "'{0}' is not a PostgreSQL version: since PostgreSQL 10 versions have two parts; a third part may only be .0"
    )]
    ThirdComponent(String),
    /// Pre-10 numbering.
    #[error("'{0}' uses pre-10 numbering; pgbin supports PostgreSQL 10 and later")]
    PreTen(String),
}

impl Version {
    /// A version from its parts.
    pub const fn new(major: u32, minor: u32) -> Self {
        Version { major, minor }
    }

    /// The `MAJOR.MINOR.0` spelling used in archive names.
    pub fn archive_version(&self) -> String {
        format!("{}.{}.0", self.major, self.minor)
    }

    /// The form used in Nix attribute names: `17_6`.
    pub fn attr_version(&self) -> String {
        format!("{}_{}", self.major, self.minor)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl fmt::Display for VersionSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionSpec::Major(m) => write!(f, "{m}"),
            VersionSpec::Exact(v) => v.fmt(f),
        }
    }
}

/// Parses one numeric component: ASCII digits, no sign, no leading zeros.
fn component(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if text.len() > 1 && text.starts_with('0') {
        return None;
    }
    text.parse::<u32>().ok().filter(|n| *n <= MAX_COMPONENT)
}

impl FromStr for VersionSpec {
    type Err = VersionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let syntax = || VersionError::Syntax(text.to_string());
        let parts: Vec<&str> = text.split('.').collect();
        let numbers: Vec<u32> = parts.iter().map(|p| component(p)).collect::<Option<_>>().ok_or_else(syntax)?;
        let spec = match numbers.as_slice() {
            [major] => VersionSpec::Major(*major),
            [major, minor] => VersionSpec::Exact(Version::new(*major, *minor)),
            [major, minor, 0] => VersionSpec::Exact(Version::new(*major, *minor)),
            [_, _, _] => return Err(VersionError::ThirdComponent(text.to_string())),
            _ => return Err(syntax()),
        };
        let major = match spec {
            VersionSpec::Major(m) => m,
            VersionSpec::Exact(v) => v.major,
        };
        if major < 10 {
            return Err(VersionError::PreTen(text.to_string()));
        }
        Ok(spec)
    }
}

impl FromStr for Version {
    type Err = VersionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.parse::<VersionSpec>()? {
            VersionSpec::Exact(v) => Ok(v),
            VersionSpec::Major(_) => Err(VersionError::Syntax(text.to_string())),
        }
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

crate::util::error::usage_errors!(VersionError);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_majors_and_exact_versions() {
        assert_eq!("17".parse(), Ok(VersionSpec::Major(17)));
        assert_eq!("17.6".parse(), Ok(VersionSpec::Exact(Version::new(17, 6))));
        assert_eq!("17.6.0".parse(), Ok(VersionSpec::Exact(Version::new(17, 6))));
        assert_eq!("18.10".parse(), Ok(VersionSpec::Exact(Version::new(18, 10))));
    }

    #[test]
    fn rejects_malformed_specs() {
        for bad in ["abc", "", "17.", ".6", "17..6", "17.6.1", "17.6.0.0", "-17", "17.06", "+1", "17 .6", "1e3"] {
            assert!(bad.parse::<VersionSpec>().is_err(), "{bad} should be rejected");
        }
        assert!(matches!("9.6".parse::<VersionSpec>(), Err(VersionError::PreTen(_))));
        assert!(matches!("17.6.1".parse::<VersionSpec>(), Err(VersionError::ThirdComponent(_))));
    }

    #[test]
    fn orders_numerically_not_lexically() {
        let v = |s: &str| s.parse::<Version>().unwrap();
        assert!(v("17.10") > v("17.9"));
        assert!(v("18.0") > v("17.12"));
        assert_eq!(v("17.6").archive_version(), "17.6.0");
        let rc: PreRelease = "19rc1".parse().unwrap();
        assert_eq!(rc, "19~rc1".parse().unwrap());
        assert_eq!(rc.debian_spelling(), "19~rc1");
        assert_eq!(rc.tarball_name(), "postgresql-19rc1.tar.bz2");
        let beta: PreRelease = "19beta2".parse().unwrap();
        assert!(beta < rc, "betas come before release candidates");
        for bad in ["19", "19rc", "19rc0", "19rc01", "rc1", "19alpha1", "9rc1", "19rc1x", "19.0rc1"] {
            assert!(bad.parse::<PreRelease>().is_err(), "{bad}");
        }
        assert_eq!(v("17.6").attr_version(), "17_6");
    }

    #[test]
    fn exact_version_refuses_bare_major() {
        assert!("17".parse::<Version>().is_err());
    }
}
