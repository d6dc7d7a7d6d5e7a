//! Provenance, SBOM, signatures and offline verification end to end: the
//! real 18.6 build's documents checked by independent validators (the
//! in-toto attestation protobufs, spdx-tools), signatures checked by `sqv`,
//! and `pgbin verify-artifact` accepting the genuine set and rejecting each
//! tampered one with one line.

use std::path::{Path, PathBuf};
use std::process::Command;

use sequoia_openpgp::Cert;
use sequoia_openpgp::serialize::Serialize as _;
use sha2::Digest;

use crate::util::keys::make_cert;
use crate::util::{json, one_line_error, pgbin, python_tool};

const ARCHIVE: &str = "postgresql-18.6.0-x86_64-unknown-linux-gnu.tar.gz";

/// Builds 18.6 with the host backend (from pgbin's cache after the first
/// build) into `out`; returns the archive path.
fn build_18_6(out: &Path) -> PathBuf {
    let answer =
        json(&pgbin().args(["build", "18.6", "--backend", "host", "--json", "--out"]).arg(out).output().unwrap());
    assert_eq!(answer["provenance"], out.join(format!("{ARCHIVE}.intoto.json")).to_str().unwrap());
    assert_eq!(answer["sbom"], out.join(format!("{ARCHIVE}.spdx.json")).to_str().unwrap());
    out.join(ARCHIVE)
}

fn sha256_hex(path: &Path) -> String {
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}{suffix}", path.display()))
}

/// A fresh key: the secret key file and a keyring with its certificate.
pub(crate) fn key(dir: &Path, name: &str) -> (PathBuf, PathBuf, Cert) {
    let cert = make_cert(std::time::SystemTime::now() - std::time::Duration::from_secs(60), None);
    let secret = dir.join(format!("{name}.key"));
    let mut bytes = Vec::new();
    cert.as_tsk().serialize(&mut bytes).unwrap();
    std::fs::write(&secret, bytes).unwrap();
    let keyring = dir.join(format!("{name}.pgp"));
    let mut bytes = Vec::new();
    cert.serialize(&mut bytes).unwrap();
    std::fs::write(&keyring, bytes).unwrap();
    (secret, keyring, cert)
}

/// Signs `files` with `pgbin sign`, detached and armored.
pub(crate) fn sign(files: &[&Path], key: &Path, extra: &[&str]) {
    let output = pgbin().arg("sign").args(files).arg("--key").arg(key).args(extra).output().unwrap();
    assert!(output.status.success(), "sign: {}", String::from_utf8_lossy(&output.stderr));
}

fn verify(archive: &Path, keyring: &Path) -> std::process::Output {
    pgbin().arg("verify-artifact").arg(archive).arg("--keyring").arg(keyring).output().unwrap()
}

/// Copies the release set of `archive` into a new directory.
fn copy_set(archive: &Path) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(archive.parent().unwrap()).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with(ARCHIVE) {
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    let copy = dir.path().join(ARCHIVE);
    (dir, copy)
}

/// A small stand-in archive with a real manifest (the committed fixture,
/// rewritten to describe it), for sets a test must vary freely.
fn small_release(dir: &Path, trust: &str, content: &[u8]) -> PathBuf {
    let archive = dir.join(ARCHIVE);
    std::fs::write(&archive, content).unwrap();
    let sha = sha256_hex(&archive);
    std::fs::write(sibling(&archive, ".sha256"), format!("{sha}  {ARCHIVE}\n")).unwrap();
    let mut manifest: serde_json::Value = serde_json::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/manifest-18.6-host.json"
    )))
    .unwrap();
    manifest["archive_sha256"] = sha.into();
    manifest["source"]["trust"] = trust.into();
    std::fs::write(sibling(&archive, ".manifest.json"), manifest.to_string()).unwrap();
    let output = pgbin().arg("provenance").arg(&archive).output().unwrap();
    assert!(output.status.success(), "provenance: {}", String::from_utf8_lossy(&output.stderr));
    archive
}

#[test]
fn build_writes_provenance_and_sbom_that_independent_validators_accept() {
    let out = tempfile::tempdir().unwrap();
    let archive = build_18_6(out.path());
    let statement_file = sibling(&archive, ".intoto.json");
    let statement: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&statement_file).unwrap()).unwrap();
    assert_eq!(statement["subject"][0]["name"], ARCHIVE);
    assert_eq!(statement["subject"][0]["digest"]["sha256"], sha256_hex(&archive));
    let definition = &statement["predicate"]["buildDefinition"];
    assert_eq!(definition["externalParameters"]["version"], "18.6");
    assert_eq!(definition["externalParameters"]["backend"], "host");
    let source = &definition["resolvedDependencies"][0];
    assert_eq!(source["annotations"]["trust"], "signed");
    assert!(source["uri"].as_str().unwrap().ends_with("/postgresql-18.6.tar.bz2"));
    let deps = definition["resolvedDependencies"].as_array().unwrap();
    assert!(deps.iter().any(|d| d["uri"].as_str().is_some_and(|u| u.starts_with("pkg:deb/debian/libicu-dev@"))));
    let pgbin_dep = deps.iter().find(|d| d["name"] == "pgbin").unwrap();
    let head = Command::new("git").args(["-C", env!("CARGO_MANIFEST_DIR"), "rev-parse", "HEAD"]).output().unwrap();
    if head.status.success() {
        assert_eq!(pgbin_dep["digest"]["gitCommit"], String::from_utf8_lossy(&head.stdout).trim());
    }
    let metadata = &statement["predicate"]["runDetails"]["metadata"];
    assert!(metadata["invocationId"].as_str().unwrap().starts_with("urn:uuid:"));
    assert!(metadata["startedOn"].is_string() && metadata["finishedOn"].is_string());

    let intoto = Command::new(python_tool("python"))
        .arg(crate::util::repo().join("tests/tools/check_intoto.py"))
        .arg(&statement_file)
        .output()
        .unwrap();
    assert!(intoto.status.success(), "{}", String::from_utf8_lossy(&intoto.stdout));

    let spdx_file = sibling(&archive, ".spdx.json");
    let spdx = Command::new(python_tool("pyspdxtools")).arg("-i").arg(&spdx_file).output().unwrap();
    assert!(
        spdx.status.success(),
        "spdx-tools: {}{}",
        String::from_utf8_lossy(&spdx.stdout),
        String::from_utf8_lossy(&spdx.stderr)
    );
    let document: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&spdx_file).unwrap()).unwrap();
    let packages = document["packages"].as_array().unwrap();
    assert!(packages.iter().any(|p| p["name"] == "postgresql" && p["versionInfo"] == "18.6"));
    assert!(
        packages
            .iter()
            .any(|p| p["packageFileName"] == "lib/libssl.so.3" && p["versionInfo"].as_str().unwrap().starts_with("3."))
    );
}

#[test]
fn the_validators_reject_broken_documents() {
    let dir = tempfile::tempdir().unwrap();
    let archive = small_release(dir.path(), "signed", b"small");
    let statement_file = sibling(&archive, ".intoto.json");
    let mut statement: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&statement_file).unwrap()).unwrap();
    statement["predicate"]["runDetails"]["builder"]["identity"] = "x".into();
    std::fs::write(&statement_file, statement.to_string()).unwrap();
    let intoto = Command::new(python_tool("python"))
        .arg(crate::util::repo().join("tests/tools/check_intoto.py"))
        .arg(&statement_file)
        .output()
        .unwrap();
    assert!(!intoto.status.success(), "an unknown field passed the in-toto check");

    let output = pgbin().arg("sbom").arg(&archive).output().unwrap();
    assert!(output.status.success());
    let spdx_file = sibling(&archive, ".spdx.json");
    let text = std::fs::read_to_string(&spdx_file).unwrap().replace("SPDXRef-PostgreSQL", "SPDXRef-Postgre SQL");
    std::fs::write(&spdx_file, text).unwrap();
    let spdx = Command::new(python_tool("pyspdxtools")).arg("-i").arg(&spdx_file).output().unwrap();
    assert!(!spdx.status.success(), "a malformed SPDX id passed spdx-tools");
}

#[test]
fn signatures_verify_with_sqv_and_gpgv_and_verify_artifact_accepts_the_genuine_set() {
    let keys = tempfile::tempdir().unwrap();
    let (secret, keyring, cert) = key(keys.path(), "release");
    let out = tempfile::tempdir().unwrap();
    let archive = build_18_6(out.path());
    let statement = sibling(&archive, ".intoto.json");
    sign(&[&archive, &statement], &secret, &[]);
    for file in [&archive, &statement] {
        let signature = sibling(file, ".asc");
        assert!(std::fs::read_to_string(&signature).unwrap().starts_with("-----BEGIN PGP SIGNATURE-----"));
        let sqv = Command::new("sqv").arg("--keyring").arg(&keyring).arg(&signature).arg(file).output().unwrap();
        assert!(sqv.status.success(), "sqv: {}", String::from_utf8_lossy(&sqv.stderr));
        assert_eq!(String::from_utf8_lossy(&sqv.stdout).trim(), cert.fingerprint().to_hex());
        let home = tempfile::tempdir().unwrap();
        let gpgv = Command::new("gpgv")
            .env("GNUPGHOME", home.path())
            .arg("--keyring")
            .arg(&keyring)
            .arg(&signature)
            .arg(file)
            .output()
            .unwrap();
        assert!(gpgv.status.success(), "gpgv: {}", String::from_utf8_lossy(&gpgv.stderr));
    }
    let output = verify(&archive, &keyring);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let line = String::from_utf8_lossy(&output.stdout);
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(line.starts_with(&format!("OK {ARCHIVE}")) && line.contains("source trust signed"), "{line}");

    let report = json(
        &pgbin().arg("verify-artifact").arg(&archive).arg("--keyring").arg(&keyring).arg("--json").output().unwrap(),
    );
    assert_eq!(report["ok"], true);
    assert_eq!(report["signer"], cert.fingerprint().to_hex());
    assert_eq!(report["sha256"], sha256_hex(&archive));

    // sqv refuses the archive once a byte changed: the interop is real.
    let (_dir, copy) = copy_set(&archive);
    let mut bytes = std::fs::read(&copy).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&copy, &bytes).unwrap();
    let sqv =
        Command::new("sqv").arg("--keyring").arg(&keyring).arg(sibling(&copy, ".asc")).arg(&copy).output().unwrap();
    assert!(!sqv.status.success());
}

/// Expects `verify-artifact` to reject with exactly one line containing `needle`.
fn assert_rejected(archive: &Path, keyring: &Path, needle: &str) {
    let output = verify(archive, keyring);
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stdout));
    let line = one_line_error(&output);
    assert!(line.contains("REJECTED") && line.contains(needle), "expected '{needle}' in: {line}");
    assert!(output.stdout.is_empty());
}

#[test]
fn verify_artifact_rejects_each_tampered_set_with_one_line() {
    let keys = tempfile::tempdir().unwrap();
    let (secret, keyring, _) = key(keys.path(), "release");
    let (stranger, _, _) = key(keys.path(), "stranger");
    let out = tempfile::tempdir().unwrap();
    let archive = build_18_6(out.path());
    sign(&[&archive, &sibling(&archive, ".intoto.json")], &secret, &[]);

    // A modified archive: its .sha256 no longer matches.
    let (_a, copy) = copy_set(&archive);
    let mut bytes = std::fs::read(&copy).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    std::fs::write(&copy, &bytes).unwrap();
    assert_rejected(&copy, &keyring, "does not match its .sha256");

    // A modified archive whose .sha256 was rewritten to match: the signature catches it.
    std::fs::write(sibling(&copy, ".sha256"), format!("{}  {ARCHIVE}\n", sha256_hex(&copy))).unwrap();
    assert_rejected(&copy, &keyring, "bad signature");

    // A provenance for another archive, genuinely signed.
    let other = tempfile::tempdir().unwrap();
    let other_archive = small_release(other.path(), "signed", b"another archive");
    sign(&[&sibling(&other_archive, ".intoto.json")], &secret, &[]);
    let (_b, copy) = copy_set(&archive);
    for suffix in [".intoto.json", ".intoto.json.asc"] {
        std::fs::copy(sibling(&other_archive, suffix), sibling(&copy, suffix)).unwrap();
    }
    assert_rejected(&copy, &keyring, "the provenance is for");

    // A signature by a key outside the keyring.
    let (_c, copy) = copy_set(&archive);
    sign(&[&copy], &stranger, &[]);
    assert_rejected(&copy, &keyring, "not in the keyring");

    // A missing .sha256.
    let (_d, copy) = copy_set(&archive);
    std::fs::remove_file(sibling(&copy, ".sha256")).unwrap();
    assert_rejected(&copy, &keyring, "missing");

    // A missing signature.
    let (_e, copy) = copy_set(&archive);
    std::fs::remove_file(sibling(&copy, ".asc")).unwrap();
    assert_rejected(&copy, &keyring, "cannot read the signature");

    // The provenance changed after signing.
    let (_f, copy) = copy_set(&archive);
    let statement = sibling(&copy, ".intoto.json");
    let text = std::fs::read_to_string(&statement).unwrap().replace("\"signed\"", "\"unverified\"");
    std::fs::write(&statement, text).unwrap();
    assert_rejected(&copy, &keyring, "bad signature");
}

#[test]
fn verify_artifact_refuses_an_unverified_source_and_accepts_a_dsse_envelope() {
    let keys = tempfile::tempdir().unwrap();
    let (secret, keyring, _) = key(keys.path(), "release");

    let dir = tempfile::tempdir().unwrap();
    let archive = small_release(dir.path(), "unverified", b"built from an unverified source");
    sign(&[&archive, &sibling(&archive, ".intoto.json")], &secret, &[]);
    assert_rejected(&archive, &keyring, "source trust level 'unverified'");

    let dir = tempfile::tempdir().unwrap();
    let archive = small_release(dir.path(), "corroborated", b"corroborated");
    sign(&[&archive, &sibling(&archive, ".intoto.json")], &secret, &["--dsse"]);
    let envelope: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sibling(&archive, ".dsse.json")).unwrap()).unwrap();
    assert_eq!(envelope["payloadType"], "application/vnd.in-toto+json");
    std::fs::remove_file(sibling(&archive, ".intoto.json.asc")).unwrap();
    let output = verify(&archive, &keyring);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("source trust corroborated"));
}

#[test]
fn sign_refuses_bad_keys_and_writes_nothing() {
    let keys = tempfile::tempdir().unwrap();
    let (_, public, _) = key(keys.path(), "public");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.txt");
    std::fs::write(&file, "a").unwrap();
    let output = pgbin().arg("sign").arg(&file).arg("--key").arg(&public).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(one_line_error(&output).contains("no valid signing key"));
    let output = pgbin().arg("sign").arg(&file).arg("--key").arg(&file).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(one_line_error(&output).contains("not an OpenPGP key"));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "nothing written");
}

#[test]
fn provenance_refuses_a_manifest_of_another_archive() {
    let dir = tempfile::tempdir().unwrap();
    let archive = small_release(dir.path(), "signed", b"one");
    std::fs::write(&archive, b"two").unwrap();
    std::fs::remove_file(sibling(&archive, ".intoto.json")).unwrap();
    let output = pgbin().arg("provenance").arg(&archive).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(one_line_error(&output).contains("not postgresql-18.6.0"));
    assert!(!sibling(&archive, ".intoto.json").exists());
}
