//! Debian source-package facts: `.dsc` fields, archive pool paths, the mirror.
//!
//! Debian ships PostgreSQL's upstream tarball unchanged as
//! `postgresql-MAJOR_X.Y.orig.tar.bz2` and lists its SHA-256 in the `.dsc`.
//! This module only parses text that [`crate::source::verify`] has already
//! signature-checked; it never decides trust itself.

use std::path::Path;

use crate::data::names::{self, NameError};
use crate::data::version::Version;

/// Environment variable naming a Debian mirror (base URI of the archive).
pub const MIRROR_ENV: &str = "PGBIN_DEBIAN_MIRROR";

/// One line of a `Checksums-Sha256` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChecksum {
    /// Lowercase hex SHA-256.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// File name.
    pub name: String,
}

/// The fields of a `.dsc` that pgbin relies on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceControl {
    /// `Source:` (package name).
    pub source: String,
    /// `Version:` (Debian version).
    pub version: String,
    /// `Checksums-Sha256:` entries.
    pub sha256: Vec<FileChecksum>,
}

/// Problems with `.dsc` text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DscError {
    /// A required field is absent.
    #[error("the source control paragraph has no {0} field")]
    MissingField(&'static str),
    /// A field appears twice.
    #[error("the source control paragraph repeats the {0} field")]
    DuplicateField(String),
    /// A checksum line is malformed.
    #[error("malformed Checksums-Sha256 line: '{0}'")]
    BadChecksumLine(String),
}

/// Parses the (already verified) body of a `.dsc`.
pub fn parse_dsc(text: &str) -> Result<SourceControl, DscError> {
    parse_control(text, "Source")
}

/// Parses the first paragraph of `text` as a source control paragraph whose
/// package name is in the field `name_field`: `Source` in a `.dsc`,
/// `Package` in an archive's `Sources` index.
pub fn parse_control(text: &str, name_field: &'static str) -> Result<SourceControl, DscError> {
    let mut fields: Vec<(String, String)> = Vec::new();
    // Lower-cased names seen, so that a document of many fields costs
    // linear time, not a comparison with every earlier field.
    let mut seen = std::collections::HashSet::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if fields.is_empty() {
                continue;
            }
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                value.push('\n');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim().to_string();
            if !seen.insert(name.to_ascii_lowercase()) {
                return Err(DscError::DuplicateField(name));
            }
            fields.push((name, value.trim().to_string()));
        }
    }
    let field = |name: &'static str| {
        fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .ok_or(DscError::MissingField(name))
    };
    let sha256 = field("Checksums-Sha256")?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let parts: Vec<&str> = line.split_whitespace().collect();
            match parts.as_slice() {
                [hash, size, name] if crate::data::lock::is_sha256_hex(hash) => Ok(FileChecksum {
                    sha256: hash.to_string(),
                    size: size.parse().map_err(|_| DscError::BadChecksumLine(line.to_string()))?,
                    name: name.to_string(),
                }),
                _ => Err(DscError::BadChecksumLine(line.to_string())),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SourceControl { source: field(name_field)?, version: field("Version")?, sha256 })
}

/// The upstream part of a Debian version: no epoch, no Debian revision.
pub fn upstream_version(debian_version: &str) -> &str {
    let without_epoch = debian_version.split_once(':').map_or(debian_version, |(_, rest)| rest);
    without_epoch.rsplit_once('-').map_or(without_epoch, |(upstream, _)| upstream)
}

/// The Debian source package that carries a major (`postgresql-18`).
pub fn source_package(major: u32) -> String {
    format!("postgresql-{major}")
}

/// The name Debian gives the unchanged upstream tarball.
pub fn orig_tarball_name(version: Version) -> String {
    format!("postgresql-{}_{version}.orig.tar.bz2", version.major)
}

/// The archive path of a file of a source package (`pool/main/p/PKG/FILE`).
/// Both names must follow Debian's grammars, so the path (and a URL made of
/// it) can only name a file in that package's pool directory.
pub fn pool_path(package: &str, file: &str) -> Result<String, NameError> {
    names::debian_package(package)?;
    names::debian_file_name(file)?;
    let prefix = if package.starts_with("lib") && package.len() > 3 { &package[..4] } else { &package[..1] };
    Ok(format!("pool/main/{prefix}/{package}/{file}"))
}

/// The `.dsc` file name of a source package version.
pub fn dsc_name(package: &str, debian_version: &str) -> String {
    let without_epoch = debian_version.split_once(':').map_or(debian_version, |(_, rest)| rest);
    format!("{package}_{without_epoch}.dsc")
}

/// The Debian mirror to use: the environment variable if set, else the first
/// `URIs:` (deb822) or `deb` line URI of the machine's apt sources.
pub fn configured_mirror(apt_dir: &Path) -> Option<String> {
    configured(apt_dir, MIRROR_ENV, Archive::Main)
}

/// Environment variable naming the Debian security archive's mirror.
pub const SECURITY_MIRROR_ENV: &str = "PGBIN_DEBIAN_SECURITY_MIRROR";

/// The Debian security archive to use (it carries the `SUITE-security`
/// suites): the environment variable if set, else the first apt source URI
/// ending in `-security`.
pub fn configured_security_mirror(apt_dir: &Path) -> Option<String> {
    configured(apt_dir, SECURITY_MIRROR_ENV, Archive::Security)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Archive {
    Main,
    Security,
}

fn configured(apt_dir: &Path, env: &str, archive: Archive) -> Option<String> {
    if let Ok(uri) = std::env::var(env) {
        let uri = uri.trim().trim_end_matches('/').to_string();
        if !uri.is_empty() {
            return Some(uri);
        }
    }
    let mut files: Vec<_> = std::fs::read_dir(apt_dir.join("sources.list.d"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "sources" || e == "list"))
        .collect();
    files.sort();
    files.insert(0, apt_dir.join("sources.list"));
    files.iter().find_map(|path| mirror_from_sources(&std::fs::read_to_string(path).ok()?, archive))
}

/// The first Debian archive URI in apt sources text (deb822 or one-line
/// format) of the wanted archive: the main archive skips security archives,
/// since they carry no pool of ordinary uploads; the security archive is the
/// URI ending in `-security`.
fn mirror_from_sources(text: &str, archive: Archive) -> Option<String> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            if let Some(uris) = line.strip_prefix("URIs:") {
                uris.split_whitespace().next().map(str::to_string)
            } else if line.starts_with("deb ") || line.starts_with("deb-src ") {
                line.split_whitespace().skip(1).find(|w| !w.starts_with('[')).map(str::to_string)
            } else {
                None
            }
        })
        .find(|uri| {
            uri.contains("://") && uri.trim_end_matches('/').ends_with("-security") == (archive == Archive::Security)
        })
        .map(|uri| uri.trim_end_matches('/').to_string())
}

crate::util::error::usage_errors!(DscError);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_checksums_and_identity() {
        let text = "Format: 3.0 (quilt)\nSource: postgresql-18\nVersion: 18.6-3\nChecksums-Sha256:\n 555610c24d53e4316da5b7d3fc25c279d96856d5e0e23ee308c328c5fa881d9f 22632314 postgresql-18_18.6.orig.tar.bz2\n 5efd00aa59930757931d13e3b2a343b5ac983fdf646a54a3b96caa30cb40512b 34488 postgresql-18_18.6-3.debian.tar.xz\n";
        let dsc = parse_dsc(text).unwrap();
        assert_eq!(dsc.source, "postgresql-18");
        assert_eq!(dsc.version, "18.6-3");
        assert_eq!(dsc.sha256.len(), 2);
        assert_eq!(dsc.sha256[0].size, 22632314);
        assert_eq!(dsc.sha256[0].name, orig_tarball_name(Version::new(18, 6)));
    }

    #[test]
    fn rejects_repeated_fields_and_bad_lines() {
        assert!(matches!(parse_dsc("Source: a\nSource: b\n"), Err(DscError::DuplicateField(_))));
        let bad = "Source: a\nVersion: 1-1\nChecksums-Sha256:\n nothex 1 x\n";
        assert!(matches!(parse_dsc(bad), Err(DscError::BadChecksumLine(_))));
        assert!(matches!(parse_dsc("Source: a\n"), Err(DscError::MissingField(_))));
    }

    #[test]
    fn debian_version_arithmetic() {
        assert_eq!(upstream_version("18.6-3"), "18.6");
        assert_eq!(upstream_version("15.18-0+deb12u1"), "15.18");
        assert_eq!(upstream_version("1:13.16-0+deb11u1"), "13.16");
        assert_eq!(dsc_name("postgresql-13", "13.16-0+deb11u1"), "postgresql-13_13.16-0+deb11u1.dsc");
        assert_eq!(pool_path("postgresql-18", "x.dsc").unwrap(), "pool/main/p/postgresql-18/x.dsc");
        assert_eq!(pool_path("libpq", "x").unwrap(), "pool/main/libp/libpq/x");
        assert_eq!(pool_path("lib", "x").unwrap(), "pool/main/l/lib/x");
    }

    #[test]
    fn pool_paths_are_made_of_valid_names_only() {
        for (package, file) in [
            ("postgresql-18", "../../../etc/passwd"),
            ("postgresql-18", "a/b.orig.tar.bz2"),
            ("postgresql-18", ".."),
            ("", "x"),
            ("../postgresql-18", "x"),
            ("Postgresql-18", "x"),
        ] {
            assert!(pool_path(package, file).is_err(), "{package} {file}");
        }
    }

    #[test]
    fn reads_mirror_from_apt_sources() {
        let deb822 = "Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm\n\nTypes: deb\nURIs: http://mirror.invalid/debian-security\n";
        assert_eq!(mirror_from_sources(deb822, Archive::Main).as_deref(), Some("http://mirror.invalid/debian"));
        assert_eq!(
            mirror_from_sources(deb822, Archive::Security).as_deref(),
            Some("http://mirror.invalid/debian-security")
        );
        let one_line = "# comment\ndeb [arch=amd64] http://mirror.invalid/debian/ bookworm main\n";
        assert_eq!(mirror_from_sources(one_line, Archive::Main).as_deref(), Some("http://mirror.invalid/debian"));
        assert_eq!(mirror_from_sources(one_line, Archive::Security), None);
        assert_eq!(mirror_from_sources("Types: deb\n", Archive::Main), None);
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::util::fuzz;
    use proptest::prelude::*;

    /// The signed body of a real `.dsc`.
    fn body() -> &'static str {
        let dsc = include_str!("../../evidence/debian/postgresql-18_18.6-3.dsc");
        let start = dsc.find("\n\n").expect("armor header") + 2;
        let end = dsc.find("-----BEGIN PGP SIGNATURE-----").expect("signature");
        &dsc[start..end]
    }

    #[test]
    fn the_real_body_parses() {
        let dsc = parse_dsc(body()).unwrap();
        assert_eq!(dsc.version, "18.6-3");
    }

    #[test]
    fn a_megabyte_of_fields_parses_in_linear_time() {
        let text: String = (0..100_000).map(|i| format!("F{i}: v\n")).collect();
        let started = std::time::Instant::now();
        assert_eq!(parse_dsc(&text), Err(DscError::MissingField("Checksums-Sha256")));
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
    }

    proptest! {
        #![proptest_config(fuzz::config(1536))]

        #[test]
        fn fuzz_parse_dsc_mutated(mutations in fuzz::mutations(6)) {
            let text = String::from_utf8_lossy(&fuzz::apply(body().as_bytes(), &mutations)).into_owned();
            if let Err(error) = parse_dsc(&text) {
                prop_assert!(fuzz::one_line(&error.to_string()), "{}", error);
            }
        }

        #[test]
        fn fuzz_parse_dsc_arbitrary(text in ".{0,400}") {
            let _ = parse_dsc(&text);
            let _ = upstream_version(&text);
            let _ = pool_path(&text, "f");
        }
    }
}
