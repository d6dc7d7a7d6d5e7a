//! `pgbin diff` with the builds' recorded inputs: two archives whose
//! manifests say they bundle libssl3 from different package versions are
//! told apart from a reproducibility failure. The comparison that `pgbin
//! repro` makes of its two builds is the same one (`compare::inputs::explain`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{one_line_error, pgbin};

const STEM: &str = "postgresql-18.6.0-x86_64-unknown-linux-gnu";

/// A small archive in `dir` in the release layout whose `lib/libssl.so.3`
/// holds `libssl`, written deterministically (sorted, mtime 0, owner 0,
/// `gzip -n`), and the archive's SHA-256.
fn archive(dir: &Path, libssl: &str) -> (PathBuf, String) {
    let top = dir.join("tree").join(STEM);
    std::fs::create_dir_all(top.join("lib")).unwrap();
    std::fs::create_dir_all(top.join("bin")).unwrap();
    std::fs::write(top.join("bin/postgres"), "the same server\n").unwrap();
    std::fs::write(top.join("lib/libssl.so.3"), libssl).unwrap();
    let archive = dir.join(format!("{STEM}.tar.gz"));
    let script = format!(
        "tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C tree -cf - {STEM} | gzip -n > {STEM}.tar.gz"
    );
    let status = Command::new("sh").arg("-ec").arg(script).current_dir(dir).status().unwrap();
    assert!(status.success());
    let sha256 = pgbin::util::digest::digest_file(&archive).unwrap().sha256;
    (archive, sha256)
}

/// The fixture manifest describing `sha256`, with libssl3 (bundled and
/// installed) at `version`, written beside the archive.
fn manifest(archive: &Path, sha256: &str, version: &str) {
    let text = std::fs::read_to_string(crate::util::repo().join("tests/fixtures/manifest-18.6-host.json")).unwrap();
    let mut manifest: serde_json::Value = serde_json::from_str(&text).unwrap();
    manifest["archive"] = format!("{STEM}.tar.gz").into();
    manifest["archive_sha256"] = sha256.into();
    for library in manifest["bundled_libraries"].as_array_mut().unwrap() {
        if library["package"] == "libssl3" {
            library["package_version"] = version.into();
        }
    }
    manifest["toolchain"]["packages"]["libssl3"] = version.into();
    let mut path = archive.as_os_str().to_owned();
    path.push(".manifest.json");
    std::fs::write(path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
}

fn diff(args: &[&std::ffi::OsStr]) -> (i32, String) {
    let output = pgbin().arg("diff").args(args).output().unwrap();
    (output.status.code().unwrap(), String::from_utf8_lossy(&output.stdout).to_string())
}

#[test]
fn a_bundled_library_from_another_package_version_is_an_input_difference_not_non_determinism() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, sha_a) = archive(dir_a.path(), "libssl 3.0.19\n");
    let (b, sha_b) = archive(dir_b.path(), "libssl 3.0.22\n");
    manifest(&a, &sha_a, "3.0.19-1~deb12u2");
    manifest(&b, &sha_b, "3.0.22-1~deb12u2");

    let (code, out) = diff(&["--json".as_ref(), a.as_os_str(), b.as_os_str()]);
    assert_eq!(code, 3, "the inputs differed: {out}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["verdict"], "inputs-differed");
    assert_eq!(report["inputs_recorded"], true);
    assert_eq!(report["unexplained"], 0);
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0]["path"], "lib/libssl.so.3");
    assert_eq!(findings[0]["cause"], "input-changed");
    assert_eq!(findings[0]["detail"], "bundled from libssl3 3.0.19-1~deb12u2 in A and 3.0.22-1~deb12u2 in B");
    let changes = report["input_changes"].as_array().unwrap();
    assert!(
        changes
            .iter()
            .any(|c| c["input"] == "package libssl3" && c["a"] == "3.0.19-1~deb12u2" && c["b"] == "3.0.22-1~deb12u2"),
        "{changes:?}"
    );

    let (code, text) = diff(&[a.as_os_str(), b.as_os_str()]);
    assert_eq!(code, 3);
    assert!(text.starts_with("INPUTS DIFFERED: "), "{text}");
    assert!(text.contains("lib/libssl.so.3: bundled from libssl3 3.0.19-1~deb12u2 in A and 3.0.22-1~deb12u2 in B"));
    assert!(text.contains("package libssl3: 3.0.19-1~deb12u2 in A and 3.0.22-1~deb12u2 in B"), "{text}");

    // The same recorded inputs and different bytes: not reproducible.
    manifest(&b, &sha_b, "3.0.19-1~deb12u2");
    let (code, out) = diff(&["--json".as_ref(), a.as_os_str(), b.as_os_str()]);
    assert_eq!(code, 1);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["verdict"], "not-reproducible");
    assert_eq!(report["findings"][0]["cause"], "unknown");
    assert_eq!(report["unexplained"], 1);

    // Without the manifests nothing tells why.
    let (code, out) = diff(&["--json".as_ref(), "--no-manifests".as_ref(), a.as_os_str(), b.as_os_str()]);
    assert_eq!(code, 1);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((report["verdict"].as_str(), report["inputs_recorded"].as_bool()), (Some("different"), Some(false)));

    // A manifest that describes another archive is refused, not believed.
    manifest(&b, &sha_a, "3.0.22-1~deb12u2");
    let output = pgbin().arg("diff").arg(&a).arg(&b).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(one_line_error(&output).contains("describes"));
}

/// A pgbin provenance statement of `archive` (SHA-256 `sha256`) recording
/// a Nix build by `derivation` from `closure`, written beside the archive.
fn provenance(archive: &Path, sha256: &str, derivation: &str, closure: &[&str]) {
    let dependencies: Vec<serde_json::Value> = closure
        .iter()
        .map(|path| serde_json::json!({ "uri": path, "annotations": { "nixStorePath": true } }))
        .collect();
    let statement = serde_json::json!({
        "_type": pgbin::attest::provenance::STATEMENT_TYPE,
        "subject": [{ "name": format!("{STEM}.tar.gz"), "digest": { "sha256": sha256 } }],
        "predicateType": pgbin::attest::provenance::PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": pgbin::attest::provenance::BUILD_TYPE,
                "externalParameters": { "backend": "nix" },
                "internalParameters": { "derivation": derivation },
                "resolvedDependencies": dependencies,
            },
            "runDetails": { "builder": { "id": "urn:test" }, "metadata": { "invocationId": "urn:test" } },
        },
    });
    let mut path = archive.as_os_str().to_owned();
    path.push(".intoto.json");
    std::fs::write(path, serde_json::to_vec_pretty(&statement).unwrap()).unwrap();
}

/// Two Nix builds whose libssl embeds an OpenSSL store path: when their
/// provenance records different derivations, the difference is named as
/// one of inputs (the closures say which); one derivation, and it is not
/// reproducible.
#[test]
fn nix_builds_from_different_derivations_are_an_input_difference_named_from_their_closures() {
    let store = pgbin::nix::store::store_dir();
    let path = |hash: char, name: &str| format!("{store}/{}-{name}", hash.to_string().repeat(32));
    let (openssl_a, openssl_b) = (path('a', "openssl-3.0.13"), path('b', "openssl-3.0.14"));
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, sha_a) = archive(dir_a.path(), &format!("RUNPATH {openssl_a}/lib\n"));
    let (b, sha_b) = archive(dir_b.path(), &format!("RUNPATH {openssl_b}/lib\n"));
    let zlib = path('c', "zlib-1.3.1.drv");
    let (drv_a, drv_b) = (path('d', "openssl-3.0.13.drv"), path('f', "openssl-3.0.14.drv"));
    provenance(&a, &sha_a, &path('g', "postgresql-18.6.0-x86_64-linux-archive.drv"), &[&zlib, &drv_a, &openssl_a]);
    provenance(&b, &sha_b, &path('h', "postgresql-18.6.0-x86_64-linux-archive.drv"), &[&zlib, &drv_b, &openssl_b]);

    let (code, out) = diff(&["--json".as_ref(), a.as_os_str(), b.as_os_str()]);
    assert_eq!(code, 3, "the inputs differed: {out}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["verdict"], "inputs-differed");
    assert_eq!(report["findings"][0]["path"], "lib/libssl.so.3");
    assert_eq!(report["findings"][0]["cause"], "input-changed", "{report:#}");
    assert_eq!(report["unexplained"], 0);
    let changes = report["input_changes"].as_array().unwrap();
    let openssl = changes.iter().find(|c| c["input"] == "input openssl").expect("openssl named");
    // Sorted by store path.
    assert_eq!(openssl["a"], format!("{openssl_a} {drv_a}"));
    assert_eq!(openssl["b"], format!("{openssl_b} {drv_b}"));
    assert!(!changes.iter().any(|c| c["input"] == "input zlib"), "an unchanged input is not named: {changes:?}");
    let (_, text) = diff(&[a.as_os_str(), b.as_os_str()]);
    assert!(text.contains(&format!("input openssl: {openssl_a} {drv_a} in A and {openssl_b} {drv_b} in B")), "{text}");

    // One derivation, two outputs: the same inputs gave different bytes.
    let one = path('g', "postgresql-18.6.0-x86_64-linux-archive.drv");
    provenance(&b, &sha_b, &one, &[&zlib, &drv_a, &openssl_a]);
    let (code, out) = diff(&["--json".as_ref(), a.as_os_str(), b.as_os_str()]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&out).unwrap()["verdict"], "not-reproducible");

    // A statement about another file is refused, not believed.
    provenance(&b, &sha_a, &one, &[]);
    let output = pgbin().arg("diff").arg(&a).arg(&b).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(one_line_error(&output).contains("not of"), "{}", one_line_error(&output));
}
