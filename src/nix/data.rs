//! Generated Nix data: the only thing the flake reads.
//!
//! `pgbin generate` writes `nix/generated/postgresql-MAJOR.json`, one file
//! per major with at least one buildable release, each holding one entry per
//! buildable (version, target, build system). Output is deterministic:
//! entries sorted, keys sorted, two-space JSON, trailing newline. Only
//! releases whose evidence verified to a buildable level are emitted, so the
//! flake never sees a hash the driver has not checked.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;
use serde::Serialize;

use crate::data::catalog::Catalog;
use crate::data::lock::SourceLock;
use crate::data::matrix::{FeatureState, Matrix};
use crate::data::version::Version;
use crate::source::error::TrustError;
use crate::source::project::Project;
use crate::source::verify::Assessment;
use crate::util::error::{Classify, FailureKind};
use crate::util::io::{IoError, context};

/// One buildable (version, target, build system).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NixEntry {
    /// Flake attribute name (`postgresql-17_6-aarch64-linux`).
    pub attr: String,
    /// PostgreSQL version.
    pub version: Version,
    /// Its major.
    pub major: u32,
    /// Target triple.
    pub target: String,
    /// Attribute suffix of the target.
    pub target_suffix: String,
    /// Nix system that builds it.
    pub system: String,
    /// Attribute path of the nixpkgs package set (empty: the system's own).
    pub package_set: Vec<String>,
    /// Whether this is a cross build.
    pub cross: bool,
    /// Target OS family.
    pub os: String,
    /// Target C library.
    pub libc: String,
    /// The verified source.
    pub source: NixSource,
    /// Configure flags (without the prefix).
    pub configure_flags: Vec<String>,
    /// Every feature with its state.
    pub features: BTreeMap<String, FeatureState>,
    /// Archive file name.
    pub archive_name: String,
    /// Release date as seconds since the epoch, for `SOURCE_DATE_EPOCH`.
    pub source_date_epoch: i64,
    /// Other flake attribute names of this entry: `postgresql-MAJOR-SUFFIX`
    /// when it is the newest buildable release of its major for this target
    /// and system, and `postgresql-SUFFIX` when it is the newest of all.
    /// The flake smoke-tests and publishes (hydraJobs) only such entries.
    pub aliases: Vec<String>,
}

/// A verified source tarball as Nix's `fetchurl` wants it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NixSource {
    /// Store name (decides the fixed-output path).
    pub name: String,
    /// URLs, canonical first.
    pub urls: Vec<String>,
    /// SRI hash (`sha256-…`).
    pub hash: String,
    /// The same hash in hex.
    pub sha256: String,
    /// Trust level reached.
    pub trust: String,
    /// Evidence kinds that verified.
    pub evidence: Vec<String>,
    /// Fingerprints of the signers.
    pub signers: Vec<String>,
}

/// A file to be written under the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    /// File name within `nix/generated/`.
    pub name: String,
    /// Full content.
    pub content: String,
}

/// SRI form of a hex SHA-256.
pub fn sri_sha256(hex_digest: &str) -> String {
    let bytes = hex::decode(hex_digest).expect("lock hashes are validated hex");
    format!("sha256-{}", base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// Computes every entry for the buildable releases. `assessments` holds the
/// verified level of each locked release.
pub fn entries(
    catalog: &Catalog,
    matrix: &Matrix,
    lock: &SourceLock,
    assessments: &BTreeMap<Version, Assessment>,
) -> Vec<NixEntry> {
    let mut entries = Vec::new();
    for locked in &lock.sources {
        let Some(assessment) = assessments.get(&locked.version) else { continue };
        let Some((_, release)) = catalog.release(locked.version) else { continue };
        if !assessment.level.buildable() {
            continue;
        }
        let version = locked.version;
        let source = NixSource {
            name: locked.tarball.clone(),
            urls: locked.urls.clone(),
            hash: sri_sha256(&locked.sha256),
            sha256: locked.sha256.clone(),
            trust: assessment.level.as_str().to_string(),
            evidence: assessment.evidence_kinds(),
            signers: assessment.signers(),
        };
        let epoch = release.source_date_epoch();
        for target in matrix.targets.iter().filter(|t| t.withheld.is_none()) {
            for builder in &target.builders {
                entries.push(NixEntry {
                    attr: target.attr_name(version),
                    version,
                    major: version.major,
                    target: target.triple.clone(),
                    target_suffix: target.attr_suffix.clone(),
                    system: builder.system.clone(),
                    package_set: builder.package_set_path(),
                    cross: builder.is_cross(),
                    os: target.os.clone(),
                    libc: target.libc.clone(),
                    source: source.clone(),
                    configure_flags: matrix.configure_flags(target, version),
                    features: matrix.features_for(target, version),
                    archive_name: target.archive_name(version),
                    source_date_epoch: epoch,
                    aliases: Vec::new(),
                });
            }
        }
    }
    entries.sort_by(|a, b| (a.version, &a.target, &a.system).cmp(&(b.version, &b.target, &b.system)));
    name_newest(&mut entries);
    entries
}

/// Gives the newest entry of each major, and the newest of all, per target
/// and system, its alias names (entries are sorted by version).
fn name_newest(entries: &mut [NixEntry]) {
    let mut newest_of_major: BTreeMap<(&str, &str, u32), usize> = BTreeMap::new();
    let mut newest: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for (index, entry) in entries.iter().enumerate() {
        newest_of_major.insert((&entry.target, &entry.system, entry.major), index);
        newest.insert((&entry.target, &entry.system), index);
    }
    let of_major: Vec<usize> = newest_of_major.into_values().collect();
    let of_all: Vec<usize> = newest.into_values().collect();
    for index in of_major {
        let entry = &mut entries[index];
        entry.aliases.push(format!("postgresql-{}-{}", entry.major, entry.target_suffix));
    }
    for index in of_all {
        let entry = &mut entries[index];
        entry.aliases.push(format!("postgresql-{}", entry.target_suffix));
    }
}

/// Name of the generated file listing every Nix system of the matrix.
pub const SYSTEMS_FILE: &str = "systems.json";

/// Renders the entries, and the systems of the matrix, as the files of
/// `nix/generated/`.
pub fn render(entries: &[NixEntry], matrix: &Matrix) -> Vec<GeneratedFile> {
    let systems: Vec<&str> = matrix.systems().into_iter().collect();
    let mut content = serde_json::to_string_pretty(&serde_json::json!({
        "comment": "Generated by `pgbin generate` from data/targets.toml; do not edit.",
        "systems": systems,
    }))
    .expect("systems serialize");
    content.push('\n');
    let mut files = render_entries(entries);
    files.push(GeneratedFile { name: SYSTEMS_FILE.to_string(), content });
    files
}

fn render_entries(entries: &[NixEntry]) -> Vec<GeneratedFile> {
    let mut by_major: BTreeMap<u32, Vec<&NixEntry>> = BTreeMap::new();
    for entry in entries {
        by_major.entry(entry.major).or_default().push(entry);
    }
    by_major
        .into_iter()
        .map(|(major, entries)| {
            let value = serde_json::json!({
                "comment": "Generated by `pgbin generate` from data/ after verifying every source; do not edit.",
                "major": major,
                "entries": entries,
            });
            let mut content = serde_json::to_string_pretty(&sort_keys(value)).expect("entries serialize");
            content.push('\n');
            GeneratedFile { name: format!("postgresql-{major}.json"), content }
        })
        .collect()
}

/// Recursively sorts object keys, so output order never depends on struct layout.
fn sort_keys(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let sorted: BTreeMap<String, serde_json::Value> = map.into_iter().map(|(k, v)| (k, sort_keys(v))).collect();
            serde_json::Value::Object(sorted.into_iter().collect())
        }
        serde_json::Value::Array(items) => serde_json::Value::Array(items.into_iter().map(sort_keys).collect()),
        other => other,
    }
}

/// How the files on disk differ from the expected ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Staleness {
    /// A file's content differs or the file is missing.
    Outdated(String),
    /// A generated file exists that should not.
    Extra(String),
}

/// Compares the expected files with `dir`; empty means up to date.
pub fn stale_files(dir: &Path, expected: &[GeneratedFile]) -> std::io::Result<Vec<Staleness>> {
    let mut stale = Vec::new();
    for file in expected {
        match std::fs::read_to_string(dir.join(&file.name)) {
            Ok(content) if content == file.content => {}
            Ok(_) => stale.push(Staleness::Outdated(file.name.clone())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => stale.push(Staleness::Outdated(file.name.clone())),
            Err(e) => return Err(e),
        }
    }
    for name in extra_json(dir, expected)? {
        stale.push(Staleness::Extra(name.to_string_lossy().into_owned()));
    }
    Ok(stale)
}

/// The exact names of the `*.json` files in `dir` that are not expected
/// (a name that is not UTF-8 is removed by its own bytes, not a lossy copy).
fn extra_json(dir: &Path, expected: &[GeneratedFile]) -> std::io::Result<Vec<std::ffi::OsString>> {
    use std::os::unix::ffi::OsStrExt;
    let mut names = Vec::new();
    match std::fs::read_dir(dir) {
        Ok(read) => {
            for entry in read {
                let name = entry?.file_name();
                if name.as_bytes().ends_with(b".json") && !expected.iter().any(|f| name == f.name.as_str()) {
                    names.push(name);
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    names.sort();
    Ok(names)
}

/// Writes the expected files (atomically each) and removes extra ones.
pub fn write(dir: &Path, expected: &[GeneratedFile]) -> std::io::Result<Vec<String>> {
    let mut changed = Vec::new();
    for staleness in stale_files(dir, expected)? {
        if let Staleness::Outdated(name) = staleness {
            let file = expected.iter().find(|f| f.name == name).expect("outdated names come from expected");
            crate::util::fs::write_atomic(&dir.join(&name), file.content.as_bytes())?;
            changed.push(name);
        }
    }
    for name in extra_json(dir, expected)? {
        std::fs::remove_file(dir.join(&name))?;
        changed.push(name.to_string_lossy().into_owned());
    }
    Ok(changed)
}

/// What [`generate`] found or did.
#[derive(Debug, Clone)]
pub struct GenerateReport {
    /// Entries in the generated data.
    pub entries: usize,
    /// Files it consists of.
    pub files: usize,
    /// Files that differ from what the verified data generates (check only).
    pub stale: Vec<Staleness>,
    /// Files written (not in check mode).
    pub changed: Vec<String>,
}

/// Why the generated data could not be made or checked.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// A locked source's evidence does not verify.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// nix/generated cannot be read or written.
    #[error(transparent)]
    Io(#[from] IoError),
}

impl Classify for GenerateError {
    fn kind(&self) -> FailureKind {
        match self {
            GenerateError::Trust(e) => e.kind(),
            GenerateError::Io(e) => e.kind(),
        }
    }

    fn message(&self) -> String {
        match self {
            GenerateError::Trust(e) => e.message(),
            GenerateError::Io(e) => e.message(),
        }
    }
}

/// Verifies every locked source and renders the Nix data; with `check_only`
/// compares it with `nix/generated/`, else writes what changed.
pub fn generate(project: &Project, check_only: bool) -> Result<GenerateReport, GenerateError> {
    let assessments = project.assess_all()?;
    let entries = entries(&project.catalog, &project.matrix, &project.lock, &assessments);
    let files = render(&entries, &project.matrix);
    let dir = project.repo.generated();
    let access = context(format!("cannot access {}", dir.display()));
    let (stale, changed) = if check_only {
        (stale_files(&dir, &files).map_err(access)?, Vec::new())
    } else {
        (Vec::new(), write(&dir, &files).map_err(access)?)
    };
    Ok(GenerateReport { entries: entries.len(), files: files.len(), stale, changed })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sri_matches_nix_encoding() {
        assert_eq!(
            sri_sha256("555610c24d53e4316da5b7d3fc25c279d96856d5e0e23ee308c328c5fa881d9f"),
            "sha256-VVYQwk1T5DFtpbfT/CXCedloVtXg4j7jCMMoxfqIHZ8="
        );
    }

    #[test]
    fn staleness_names_missing_changed_and_extra_files() {
        let dir = tempfile::tempdir().unwrap();
        let files = vec![GeneratedFile { name: "postgresql-18.json".into(), content: "{}\n".into() }];
        assert_eq!(stale_files(dir.path(), &files).unwrap(), vec![Staleness::Outdated("postgresql-18.json".into())]);
        write(dir.path(), &files).unwrap();
        assert!(stale_files(dir.path(), &files).unwrap().is_empty());
        std::fs::write(dir.path().join("postgresql-12.json"), "{}").unwrap();
        assert_eq!(stale_files(dir.path(), &files).unwrap(), vec![Staleness::Extra("postgresql-12.json".into())]);
    }

    #[test]
    fn an_extra_file_whose_name_is_not_utf8_is_removed() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let files = vec![GeneratedFile { name: "postgresql-18.json".into(), content: "{}\n".into() }];
        let stray = dir.path().join(std::ffi::OsStr::from_bytes(b"postgresql-\xff.json"));
        std::fs::write(&stray, "{}").unwrap();
        assert_eq!(write(dir.path(), &files).unwrap(), vec!["postgresql-18.json", "postgresql-\u{fffd}.json"]);
        assert!(!stray.exists());
        assert!(stale_files(dir.path(), &files).unwrap().is_empty());
    }
}
