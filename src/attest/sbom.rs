//! `sbom`: the SPDX 2.3 JSON document beside every archive
//! (`<archive>.spdx.json`).
//!
//! It describes the archive as a package that contains PostgreSQL (with the
//! verified source's hash, trust level and download location) and every
//! library bundled into `lib/` (with its version and where it came from), and
//! names the toolchain that built it: the compiler, the nixpkgs pin (nix) or
//! each Debian build package (host). Relationships use SPDX 2.3's
//! vocabulary: `DESCRIBES`, `CONTAINS`, `DYNAMIC_LINK`, `BUILD_TOOL_OF`,
//! `BUILD_DEPENDENCY_OF`, `GENERATED_FROM`.

use serde_json::{Value, json};

use crate::attest::provenance::debian_purl;
use crate::build::manifest::Manifest;

/// File name suffix of the document beside its archive.
pub const SUFFIX: &str = ".spdx.json";

/// SPDX ids may hold letters, digits, `.` and `-` only.
fn spdx_id(prefix: &str, name: &str) -> String {
    let cleaned: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '-' }).collect();
    format!("SPDXRef-{prefix}-{cleaned}")
}

fn relationship(from: &str, kind: &str, to: &str) -> Value {
    json!({"spdxElementId": from, "relationshipType": kind, "relatedSpdxElement": to})
}

fn purl_ref(purl: String) -> Value {
    json!([{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": purl}])
}

/// A package pgbin did not analyse file by file and whose licence it does
/// not assert.
/// `version` is omitted when unknown (SPDX has no NOASSERTION for it).
fn package(id: &str, name: &str, version: Option<&str>) -> serde_json::Map<String, Value> {
    let value = json!({
        "SPDXID": id,
        "name": name,
        "versionInfo": version,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
    });
    match value {
        Value::Object(mut map) => {
            if version.is_none() {
                map.remove("versionInfo");
            }
            map
        }
        _ => unreachable!("a JSON object literal"),
    }
}

/// Builds the SPDX document for the archive `manifest` describes. `urls` are
/// the source's download URLs from the lock; `created` is the RFC 3339
/// creation time.
pub fn document(manifest: &Manifest, urls: &[String], created: &str) -> Value {
    let archive_id = "SPDXRef-Archive";
    let postgres_id = "SPDXRef-PostgreSQL";
    let source = &manifest.source;

    let mut archive = package(archive_id, &manifest.archive, Some(&manifest.version.archive_version()));
    archive.insert("packageFileName".into(), json!(manifest.archive));
    archive.insert("checksums".into(), json!([{"algorithm": "SHA256", "checksumValue": manifest.archive_sha256}]));
    archive.insert("primaryPackagePurpose".into(), json!("ARCHIVE"));
    archive.insert(
        "comment".into(),
        json!(format!(
            "Relocatable PostgreSQL {} for {}, built by pgbin {} with the {} backend.",
            manifest.version,
            manifest.target,
            manifest.pgbin_version,
            manifest.backend.as_str()
        )),
    );

    let mut postgres = package(postgres_id, "postgresql", Some(&manifest.version.to_string()));
    postgres.insert("downloadLocation".into(), json!(urls.first().map_or("NOASSERTION", |u| u.as_str())));
    postgres.insert("packageFileName".into(), json!(source.name));
    postgres.insert("checksums".into(), json!([{"algorithm": "SHA256", "checksumValue": source.sha256}]));
    postgres.insert("supplier".into(), json!("Organization: PostgreSQL Global Development Group"));
    postgres.insert("homepage".into(), json!("https://www.postgresql.org"));
    postgres.insert("licenseConcluded".into(), json!("PostgreSQL"));
    postgres.insert("licenseDeclared".into(), json!("PostgreSQL"));
    postgres.insert("primaryPackagePurpose".into(), json!("APPLICATION"));
    postgres.insert(
        "sourceInfo".into(),
        json!(format!(
            "Built from {} (sha256 {}); pgbin trust level {} from evidence: {}{}.",
            source.name,
            source.sha256,
            source.trust,
            source.evidence.join(", "),
            if source.signers.is_empty() {
                String::new()
            } else {
                format!("; OpenPGP signers {}", source.signers.join(", "))
            }
        )),
    );
    postgres.insert(
        "externalRefs".into(),
        purl_ref(format!("pkg:generic/postgresql@{}?checksum=sha256:{}", manifest.version, source.sha256)),
    );

    let mut packages = vec![Value::Object(archive), Value::Object(postgres)];
    let mut relationships = vec![
        relationship("SPDXRef-DOCUMENT", "DESCRIBES", archive_id),
        relationship(archive_id, "CONTAINS", postgres_id),
    ];

    for library in &manifest.bundled_libraries {
        let id = spdx_id("Library", &library.name);
        let name = library.package.as_deref().unwrap_or(&library.name);
        let mut entry = package(&id, name, library.package_version.as_deref());
        entry.insert("packageFileName".into(), json!(format!("lib/{}", library.name)));
        entry.insert("sourceInfo".into(), json!(format!("Copied from {} at build time.", library.origin)));
        entry.insert("primaryPackagePurpose".into(), json!("LIBRARY"));
        if let (Some(name), Some(version)) = (&library.package, &library.package_version)
            && manifest.toolchain.nixpkgs.is_none()
        {
            entry.insert("externalRefs".into(), purl_ref(debian_purl(name, version, &manifest.target)));
        }
        packages.push(Value::Object(entry));
        relationships.push(relationship(archive_id, "CONTAINS", &id));
        relationships.push(relationship(postgres_id, "DYNAMIC_LINK", &id));
    }

    let toolchain = &manifest.toolchain;
    let mut compiler = package("SPDXRef-Toolchain-compiler", "compiler", Some(&toolchain.compiler));
    compiler.insert("primaryPackagePurpose".into(), json!("APPLICATION"));
    packages.push(Value::Object(compiler));
    relationships.push(relationship("SPDXRef-Toolchain-compiler", "BUILD_TOOL_OF", postgres_id));
    if let Some(pin) = &toolchain.nixpkgs {
        let mut nixpkgs = package("SPDXRef-Toolchain-nixpkgs", "nixpkgs", Some(&pin.rev));
        nixpkgs.insert("downloadLocation".into(), json!(format!("git+https://github.com/NixOS/nixpkgs@{}", pin.rev)));
        nixpkgs.insert("sourceInfo".into(), json!(format!("flake input {} with narHash {}", pin.url, pin.nar_hash)));
        packages.push(Value::Object(nixpkgs));
        relationships.push(relationship("SPDXRef-Toolchain-nixpkgs", "BUILD_DEPENDENCY_OF", postgres_id));
    }
    for (name, version) in &toolchain.packages {
        let id = spdx_id("Toolchain", name);
        let mut entry = package(&id, name, Some(version));
        entry.insert("externalRefs".into(), purl_ref(debian_purl(name, version, &manifest.target)));
        packages.push(Value::Object(entry));
        relationships.push(relationship(&id, "BUILD_DEPENDENCY_OF", postgres_id));
    }

    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": manifest.archive,
        "documentNamespace": format!("urn:pgbin:spdx:{}:{}", manifest.archive, manifest.archive_sha256),
        "creationInfo": {
            "created": created,
            "creators": [format!("Tool: pgbin-{}", manifest.pgbin_version)],
        },
        "packages": packages,
        "relationships": relationships,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        serde_json::from_str(include_str!("../../tests/fixtures/manifest-18.6-host.json")).unwrap()
    }

    #[test]
    fn describes_the_archive_postgres_and_every_bundled_library() {
        let m = manifest();
        let doc = document(&m, &["https://example.org/postgresql-18.6.tar.bz2".into()], "2026-11-24T00:00:00Z");
        let packages = doc["packages"].as_array().unwrap();
        assert_eq!(packages[0]["checksums"][0]["checksumValue"], m.archive_sha256);
        assert_eq!(packages[1]["checksums"][0]["checksumValue"], m.source.sha256);
        assert_eq!(packages[1]["licenseDeclared"], "PostgreSQL");
        for library in &m.bundled_libraries {
            let entry = packages
                .iter()
                .find(|p| p["packageFileName"] == format!("lib/{}", library.name))
                .unwrap_or_else(|| panic!("{} missing", library.name));
            assert_eq!(entry["versionInfo"].as_str(), library.package_version.as_deref());
        }
        let ids: std::collections::BTreeSet<&str> = packages.iter().map(|p| p["SPDXID"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), packages.len(), "SPDX ids are unique");
        for r in doc["relationships"].as_array().unwrap() {
            for end in ["spdxElementId", "relatedSpdxElement"] {
                let id = r[end].as_str().unwrap();
                assert!(id == "SPDXRef-DOCUMENT" || ids.contains(id), "dangling {id}");
            }
        }
    }

    #[test]
    fn ids_only_hold_allowed_characters() {
        assert_eq!(spdx_id("Library", "libicu+uc.so.72"), "SPDXRef-Library-libicu-uc.so.72");
    }
}
