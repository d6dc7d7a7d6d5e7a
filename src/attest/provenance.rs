//! `provenance`: the in-toto Statement v1 with an SLSA v1 provenance
//! predicate that accompanies every archive (`<archive>.intoto.json`).
//!
//! Everything in it comes from the archive's manifest (which the build wrote
//! and which records the verified source, its trust level and evidence, and
//! the toolchain), from the source lock (download URLs), and from the run
//! ([`RunContext`]: builder, invocation, times, pgbin revision). The shape is
//! documented in `docs/provenance.md`; [`BUILD_TYPE`] names it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::build::manifest::{Backend, Manifest};

/// `_type` of an in-toto Statement v1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// `predicateType` of SLSA provenance v1.
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// pgbin's build type, defined in `docs/provenance.md`. A URN rather than a
/// web address: it identifies the schema and cannot be taken over.
pub const BUILD_TYPE: &str = "urn:pgbin:build-type:archive:v1";
/// Builder id used outside a recognised CI system.
pub const LOCAL_BUILDER: &str = "urn:pgbin:builder:local";
/// File name suffix of the statement beside its archive.
pub const SUFFIX: &str = ".intoto.json";

/// An in-toto Statement v1.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Statement {
    /// Always [`STATEMENT_TYPE`].
    #[serde(rename = "_type")]
    pub statement_type: String,
    /// What the statement is about: the archive.
    pub subject: Vec<ResourceDescriptor>,
    /// Always [`PREDICATE_TYPE`] for pgbin.
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// The SLSA provenance.
    pub predicate: Provenance,
}

/// An in-toto ResourceDescriptor (the fields pgbin uses).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceDescriptor {
    /// A name (a file name, a package name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Where it is identified (a URL or purl).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Algorithm → lower-case hex digest.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub digest: BTreeMap<String, String>,
    /// Where it can be downloaded, when not `uri`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_location: Option<String>,
    /// Anything else worth recording.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub annotations: serde_json::Map<String, Value>,
}

/// The SLSA v1 provenance predicate.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    /// What was built, from what.
    pub build_definition: BuildDefinition,
    /// Who built it, when.
    pub run_details: RunDetails,
}

/// SLSA `buildDefinition`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildDefinition {
    /// [`BUILD_TYPE`].
    pub build_type: String,
    /// The parameters a user chose.
    pub external_parameters: Value,
    /// Parameters fixed by pgbin's recipe.
    pub internal_parameters: Value,
    /// The source, the toolchain and pgbin itself.
    pub resolved_dependencies: Vec<ResourceDescriptor>,
}

/// SLSA `runDetails`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunDetails {
    /// The builder.
    pub builder: Builder,
    /// The invocation.
    pub metadata: BuildMetadata,
    /// Other files the build produced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub byproducts: Vec<ResourceDescriptor>,
}

/// SLSA `builder`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Builder {
    /// The builder's identity (a URI).
    pub id: String,
}

/// SLSA `metadata`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildMetadata {
    /// Identifies this run.
    pub invocation_id: String,
    /// When the build started (RFC 3339), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_on: Option<String>,
    /// When it finished (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_on: Option<String>,
}

/// The revision of pgbin that built an archive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PgbinRevision {
    /// Where the repository lives (`git+https://…`), if known.
    pub repository: Option<String>,
    /// The commit, if known.
    pub commit: Option<String>,
    /// Whether the work tree had uncommitted changes.
    pub dirty: bool,
}

/// Facts about the run that the manifest cannot know.
#[derive(Debug, Clone)]
pub struct RunContext {
    /// Builder id URI.
    pub builder_id: String,
    /// Invocation id.
    pub invocation_id: String,
    /// Start time, RFC 3339.
    pub started_on: Option<String>,
    /// Finish time, RFC 3339.
    pub finished_on: Option<String>,
    /// The flake attribute built (nix backend).
    pub flake_attribute: Option<String>,
    /// Whether the archive came from pgbin's build cache.
    pub cached: bool,
    /// pgbin's own revision.
    pub pgbin: PgbinRevision,
    /// The derivation that built the archive and its closure (nix backend).
    pub derivation: Option<crate::nix::closure::DerivationInputs>,
}

/// Why a statement could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ProvenanceError {
    /// Not a pgbin provenance statement.
    #[error("{0}")]
    Shape(String),
}

/// The Debian architecture of a target triple's CPU, for purls.
fn debian_arch(triple: &str) -> &'static str {
    match triple.split('-').next() {
        Some("x86_64") => "amd64",
        Some("aarch64") => "arm64",
        _ => "unknown",
    }
}

/// Percent-encodes a purl component (keeps the characters the purl spec
/// leaves unencoded in Debian versions: alphanumerics and `.-_~:`).
fn purl_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' | b'~' | b':' => out.push(byte as char),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// The package URL of a Debian binary package: `package` is `name` (of the
/// target's architecture) or `name:arch`, as the toolchain record names
/// another architecture's package.
pub fn debian_purl(package: &str, version: &str, triple: &str) -> String {
    let (name, arch) = package.split_once(':').unwrap_or((package, debian_arch(triple)));
    format!("pkg:deb/debian/{}@{}?arch={}", purl_encode(name), purl_encode(version), purl_encode(arch))
}

/// The `resolvedDependencies` entry of the source tarball.
fn source_dependency(manifest: &Manifest, urls: &[String]) -> ResourceDescriptor {
    let source = &manifest.source;
    let mut annotations = serde_json::Map::new();
    annotations.insert("trust".into(), json!(source.trust));
    annotations.insert("evidence".into(), json!(source.evidence));
    annotations.insert("signers".into(), json!(source.signers));
    if let Some(size) = source.size {
        annotations.insert("size".into(), json!(size));
    }
    if urls.len() > 1 {
        annotations.insert("mirrors".into(), json!(urls[1..]));
    }
    ResourceDescriptor {
        name: Some(source.name.clone()),
        uri: urls.first().cloned(),
        digest: BTreeMap::from([("sha256".to_string(), source.sha256.clone())]),
        annotations,
        ..ResourceDescriptor::default()
    }
}

/// The toolchain entries: the nixpkgs pin (nix) or every Debian build
/// package (host). The compiler's identity is an internal parameter: it has
/// no URI or digest of its own to resolve.
fn toolchain_dependencies(manifest: &Manifest) -> Vec<ResourceDescriptor> {
    let toolchain = &manifest.toolchain;
    let mut out = Vec::new();
    if let Some(pin) = &toolchain.nixpkgs {
        let mut annotations = serde_json::Map::new();
        annotations.insert("narHash".into(), json!(pin.nar_hash));
        annotations.insert("flakeRef".into(), json!(pin.url));
        out.push(ResourceDescriptor {
            name: Some("nixpkgs".into()),
            uri: Some(format!("git+https://github.com/NixOS/nixpkgs?rev={}", pin.rev)),
            digest: BTreeMap::from([("gitCommit".to_string(), pin.rev.clone())]),
            annotations,
            ..ResourceDescriptor::default()
        });
    }
    for (package, version) in &toolchain.packages {
        out.push(ResourceDescriptor {
            name: Some(package.clone()),
            uri: Some(debian_purl(package, version, &manifest.target)),
            ..ResourceDescriptor::default()
        });
    }
    out
}

/// Annotation marking a resolved dependency as a store path of the
/// archive derivation's closure.
pub const STORE_PATH_ANNOTATION: &str = "nixStorePath";

/// The entry of one store path of the derivation's closure: the path is its
/// identity (its hash part digests how it was made).
fn store_path_dependency(path: &str) -> ResourceDescriptor {
    let mut annotations = serde_json::Map::new();
    annotations.insert(STORE_PATH_ANNOTATION.into(), json!(true));
    ResourceDescriptor {
        name: path.rsplit('/').next().map(String::from),
        uri: Some(path.to_string()),
        annotations,
        ..ResourceDescriptor::default()
    }
}

/// The entry for pgbin itself.
fn pgbin_dependency(manifest: &Manifest, revision: &PgbinRevision) -> ResourceDescriptor {
    let mut annotations = serde_json::Map::new();
    annotations.insert("version".into(), json!(manifest.pgbin_version));
    if revision.dirty {
        annotations.insert("uncommittedChanges".into(), json!(true));
    }
    let uri = match (&revision.repository, &revision.commit) {
        (Some(repository), Some(commit)) => Some(format!("{repository}@{commit}")),
        (_, None) => Some(format!("pkg:generic/pgbin@{}", manifest.pgbin_version)),
        _ => None,
    };
    ResourceDescriptor {
        name: Some("pgbin".into()),
        uri,
        digest: revision.commit.iter().map(|c| ("gitCommit".to_string(), c.clone())).collect(),
        annotations,
        ..ResourceDescriptor::default()
    }
}

/// Builds the statement for the archive `manifest` describes. `urls` are the
/// source's download URLs from the lock; `manifest_sha256` is the digest of
/// the manifest file, recorded as a byproduct.
pub fn statement(manifest: &Manifest, manifest_sha256: &str, urls: &[String], run: &RunContext) -> Statement {
    let mut external = json!({
        "version": manifest.version.to_string(),
        "target": manifest.target,
        "backend": manifest.backend.as_str(),
    });
    if let (Backend::Nix, Some(attribute)) = (manifest.backend, &run.flake_attribute) {
        external["flakeAttribute"] = json!(attribute);
    }
    let mut internal = json!({
        "configureFlags": manifest.configure_flags,
        "features": manifest.features_enabled,
        "sourceDateEpoch": manifest.source_date_epoch,
        "compiler": manifest.toolchain.compiler,
        "cacheKey": manifest.cache_key,
        "fromCache": run.cached,
    });
    let mut dependencies = vec![source_dependency(manifest, urls)];
    dependencies.extend(toolchain_dependencies(manifest));
    dependencies.push(pgbin_dependency(manifest, &run.pgbin));
    if let Some(inputs) = &run.derivation {
        internal["derivation"] = json!(inputs.derivation);
        dependencies.extend(inputs.closure.iter().map(|path| store_path_dependency(path)));
    }
    Statement {
        statement_type: STATEMENT_TYPE.into(),
        subject: vec![ResourceDescriptor {
            name: Some(manifest.archive.clone()),
            digest: BTreeMap::from([("sha256".to_string(), manifest.archive_sha256.clone())]),
            ..ResourceDescriptor::default()
        }],
        predicate_type: PREDICATE_TYPE.into(),
        predicate: Provenance {
            build_definition: BuildDefinition {
                build_type: BUILD_TYPE.into(),
                external_parameters: external,
                internal_parameters: internal,
                resolved_dependencies: dependencies,
            },
            run_details: RunDetails {
                builder: Builder { id: run.builder_id.clone() },
                metadata: BuildMetadata {
                    invocation_id: run.invocation_id.clone(),
                    started_on: run.started_on.clone(),
                    finished_on: run.finished_on.clone(),
                },
                byproducts: vec![ResourceDescriptor {
                    name: Some(format!("{}.manifest.json", manifest.archive)),
                    digest: BTreeMap::from([("sha256".to_string(), manifest_sha256.to_string())]),
                    ..ResourceDescriptor::default()
                }],
            },
        },
    }
}

/// Parses a statement and checks that it is an in-toto v1 statement with
/// an SLSA v1 predicate of pgbin's build type.
pub fn parse(text: &str) -> Result<Statement, ProvenanceError> {
    let statement: Statement = serde_json::from_str(text)
        .map_err(|e| ProvenanceError::Shape(format!("not an in-toto statement with SLSA provenance: {e}")))?;
    if statement.statement_type != STATEMENT_TYPE {
        return Err(ProvenanceError::Shape(format!("_type is {:?}, not {STATEMENT_TYPE}", statement.statement_type)));
    }
    if statement.predicate_type != PREDICATE_TYPE {
        return Err(ProvenanceError::Shape(format!(
            "predicateType is {:?}, not {PREDICATE_TYPE}",
            statement.predicate_type
        )));
    }
    if statement.predicate.build_definition.build_type != BUILD_TYPE {
        return Err(ProvenanceError::Shape(format!(
            "buildType is {:?}, not pgbin's {BUILD_TYPE}",
            statement.predicate.build_definition.build_type
        )));
    }
    Ok(statement)
}

impl Statement {
    /// Whether a subject names `archive_name` with this SHA-256.
    pub fn covers(&self, archive_name: &str, sha256: &str) -> bool {
        self.subject.iter().any(|s| {
            s.name.as_deref() == Some(archive_name)
                && s.digest.get("sha256").is_some_and(|d| d.eq_ignore_ascii_case(sha256))
        })
    }

    /// The source dependency: the first resolved dependency with a `trust`
    /// annotation.
    pub fn source(&self) -> Option<&ResourceDescriptor> {
        self.predicate.build_definition.resolved_dependencies.iter().find(|d| d.annotations.contains_key("trust"))
    }

    /// The derivation and closure recorded for a Nix build, if any.
    pub fn derivation_inputs(&self) -> Option<crate::nix::closure::DerivationInputs> {
        let definition = &self.predicate.build_definition;
        let derivation = definition.internal_parameters.get("derivation")?.as_str()?.to_string();
        let mut closure: Vec<String> = definition
            .resolved_dependencies
            .iter()
            .filter(|d| d.annotations.get(STORE_PATH_ANNOTATION) == Some(&json!(true)))
            .filter_map(|d| d.uri.clone())
            .collect();
        closure.sort();
        Some(crate::nix::closure::DerivationInputs { derivation, closure })
    }

    /// The trust level the source reached, as recorded.
    pub fn source_trust(&self) -> Option<&str> {
        self.source()?.annotations.get("trust")?.as_str()
    }

    /// The subject names and digests, for messages.
    pub fn subjects(&self) -> String {
        let names: Vec<String> = self
            .subject
            .iter()
            .map(|s| {
                let digest = s.digest.get("sha256").map_or("no sha256", |d| d.as_str());
                let short = digest.char_indices().nth(12).map_or(digest, |(at, _)| &digest[..at]);
                format!("{} (sha256 {short})", s.name.as_deref().unwrap_or("unnamed"))
            })
            .collect();
        names.join(", ")
    }
}

crate::util::error::usage_errors!(ProvenanceError);

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        serde_json::from_str(include_str!("../../tests/fixtures/manifest-18.6-host.json")).unwrap()
    }

    fn run() -> RunContext {
        RunContext {
            builder_id: LOCAL_BUILDER.into(),
            invocation_id: "urn:uuid:00000000-0000-4000-8000-000000000000".into(),
            started_on: Some("2026-11-24T10:00:00Z".into()),
            finished_on: Some("2026-11-24T10:02:00Z".into()),
            flake_attribute: None,
            cached: false,
            derivation: None,
            pgbin: PgbinRevision { repository: None, commit: Some("a".repeat(40)), dirty: false },
        }
    }

    #[test]
    fn subject_is_the_archive_and_the_source_carries_its_trust() {
        let m = manifest();
        let s = statement(&m, &"b".repeat(64), &["https://example.org/x.tar.bz2".into()], &run());
        assert!(s.covers(&m.archive, &m.archive_sha256));
        assert!(!s.covers(&m.archive, &"0".repeat(64)));
        assert_eq!(s.source_trust(), Some("signed"));
        let source = s.source().unwrap();
        assert_eq!(source.digest["sha256"], m.source.sha256);
        assert_eq!(source.annotations["signers"], json!(m.source.signers));
        let text = serde_json::to_string(&s).unwrap();
        let back = parse(&text).unwrap();
        assert_eq!(serde_json::to_value(&back).unwrap(), serde_json::to_value(&s).unwrap());
    }

    #[test]
    fn host_toolchain_packages_become_debian_purls() {
        let s = statement(&manifest(), &"b".repeat(64), &[], &run());
        let deps = &s.predicate.build_definition.resolved_dependencies;
        let bison = deps.iter().find(|d| d.name.as_deref() == Some("bison")).unwrap();
        assert_eq!(bison.uri.as_deref(), Some("pkg:deb/debian/bison@2:3.8.2%2Bdfsg-1%2Bb1?arch=amd64"));
        let pgbin = deps.iter().find(|d| d.name.as_deref() == Some("pgbin")).unwrap();
        assert_eq!(pgbin.digest["gitCommit"], "a".repeat(40));
        assert_eq!(
            debian_purl("libssl3:arm64", "3.0.19-1~deb12u2", "x86_64-unknown-linux-gnu"),
            "pkg:deb/debian/libssl3@3.0.19-1~deb12u2?arch=arm64",
            "another architecture's package keeps its own"
        );
        assert!(s.predicate.build_definition.external_parameters.get("flakeAttribute").is_none());
    }

    #[test]
    fn rejects_other_statement_and_build_types() {
        let s = statement(&manifest(), &"b".repeat(64), &[], &run());
        let mut value = serde_json::to_value(&s).unwrap();
        value["predicate"]["buildDefinition"]["buildType"] = json!("https://example.org/other");
        assert!(parse(&value.to_string()).unwrap_err().to_string().contains("buildType"));
        value["predicateType"] = json!("https://slsa.dev/provenance/v0.2");
        assert!(parse(&value.to_string()).unwrap_err().to_string().contains("predicateType"));
        assert!(parse("{}").is_err());
    }
}
