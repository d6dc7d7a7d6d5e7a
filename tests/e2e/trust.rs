//! Source trust end to end: real Debian .dsc files against the maintainers'
//! real keys, throwaway keys for every way a signature can be unacceptable,
//! and every kind of bad input rejected with one line and nothing written.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sequoia_openpgp::types::HashAlgorithm;

use crate::util::keys::{clearsign, dsc_body, make_cert, revoke, trust_in_policy};
use crate::util::{
    LocalMirror, json, one_line_error, pgbin, pgbin_in, repo, scratch_repo, scratch_without, snapshot, with_blob_line,
};

const DSC_18_6: &str = "evidence/debian/postgresql-18_18.6-3.dsc";

/// The real 18.6 tarball, fetched once into a shared cache through the
/// configured Debian mirror (the tests need the network to the mirror).
fn tarball_18_6() -> PathBuf {
    let cache = std::env::temp_dir().join("pgbin-test-cache");
    let output = pgbin().args(["fetch", "18.6", "--cache"]).arg(&cache).output().unwrap();
    assert!(output.status.success(), "fetch 18.6: {}", String::from_utf8_lossy(&output.stderr));
    PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
}

/// Asserts a command over `dir` failed with `code`, one line containing
/// `needle`, and left every file under `dir` unchanged.
fn assert_rejected(dir: &Path, args: &[&str], code: i32, needle: &str) {
    let before = snapshot(dir);
    let output = pgbin_in(dir).args(args).output().unwrap();
    assert_eq!(output.status.code(), Some(code), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    let line = one_line_error(&output);
    assert!(line.contains(needle), "{args:?}: expected '{needle}' in: {line}");
    assert_eq!(snapshot(dir), before, "{args:?} changed files");
}

#[test]
fn fetch_reports_signed_sources_with_the_maintainer_key() {
    let cache = std::env::temp_dir().join("pgbin-test-cache");
    for version in ["18.6", "15.18", "13.16"] {
        let output = pgbin().args(["fetch", version, "--json", "--cache"]).arg(&cache).output().unwrap();
        let answer = json(&output);
        assert_eq!(answer["level"], "signed", "{version}");
        let signed = answer["evidence"].as_array().unwrap().iter().find(|e| e["signed"] == true).unwrap();
        assert_eq!(signed["signer"], "5C48FE6157F49179597087C64C5A6BAB12D2A7AE");
        let path = PathBuf::from(answer["path"].as_str().unwrap());
        assert!(path.ends_with(format!("postgresql-{version}.tar.bz2")));
    }
}

#[test]
fn corroborated_release_needs_two_publishers() {
    let answer = json(&pgbin().args(["resolve", "17.6", "--json"]).output().unwrap());
    assert_eq!(answer["trust"], "corroborated");
    let one_witness = json(&pgbin().args(["resolve", "16.15", "--json"]).output().unwrap());
    assert_eq!(one_witness["trust"], "unverified");
    let output = pgbin().args(["fetch", "16.15"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(one_line_error(&output).contains("unverified"));
}

#[test]
fn verify_accepts_the_genuine_tarball_and_writes_nothing() {
    let tarball = tarball_18_6();
    let scratch = scratch_repo();
    let before = snapshot(scratch.path());
    let output = pgbin_in(scratch.path())
        .args(["verify", "18.6"])
        .arg(&tarball)
        .arg("--evidence")
        .arg(repo().join(DSC_18_6))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("signed"));
    assert_eq!(snapshot(scratch.path()), before);
}

#[test]
fn a_flipped_byte_or_a_truncated_tarball_is_rejected() {
    let tarball = std::fs::read(tarball_18_6()).unwrap();
    let work = tempfile::tempdir().unwrap();
    let flipped = work.path().join("postgresql-18.6.tar.bz2");
    let mut bytes = tarball.clone();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&flipped, &bytes).unwrap();
    let scratch = scratch_repo();
    assert_rejected(scratch.path(), &["verify", "18.6", flipped.to_str().unwrap()], 1, "SHA-256");
    let truncated = work.path().join("truncated.tar.bz2");
    std::fs::write(&truncated, &tarball[..tarball.len() - 4096]).unwrap();
    assert_rejected(scratch.path(), &["verify", "18.6", truncated.to_str().unwrap()], 1, "truncated");
}

#[test]
fn the_lock_add_round_trip_reproduces_the_committed_entry() {
    let scratch = scratch_without("18.6");
    let output = pgbin_in(scratch.path())
        .args(["lock", "add", "18.6", "--evidence"])
        .arg(repo().join(DSC_18_6))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let answer = json(&pgbin_in(scratch.path()).args(["resolve", "18.6", "--json"]).output().unwrap());
    assert_eq!(answer["trust"], "signed");
    assert_eq!(answer["size"], 22632314);
}

#[test]
fn a_dsc_signed_by_a_key_outside_the_policy_is_rejected() {
    let scratch = scratch_without("18.6");
    let real = std::fs::read_to_string(repo().join(DSC_18_6)).unwrap();
    let cert = make_cert(SystemTime::now() - Duration::from_secs(3600), None);
    let forged = scratch.path().join("forged.dsc");
    std::fs::write(&forged, clearsign(&cert, dsc_body(&real).as_bytes(), SystemTime::now(), HashAlgorithm::SHA512))
        .unwrap();
    assert_rejected(
        scratch.path(),
        &["lock", "add", "18.6", "--evidence", forged.to_str().unwrap()],
        1,
        "does not allow",
    );
}

#[test]
fn a_dsc_with_a_broken_signature_is_rejected() {
    let scratch = scratch_without("18.6");
    let real = std::fs::read_to_string(repo().join(DSC_18_6)).unwrap();
    let tampered = scratch.path().join("tampered.dsc");
    std::fs::write(&tampered, real.replacen("Version: 18.6-3", "Version: 18.6-4", 1)).unwrap();
    assert_rejected(
        scratch.path(),
        &["lock", "add", "18.6", "--evidence", tampered.to_str().unwrap()],
        1,
        "bad signature",
    );
}

#[test]
fn a_dsc_for_another_version_is_rejected() {
    let scratch = scratch_repo();
    let dsc = repo().join(DSC_18_6);
    assert_rejected(scratch.path(), &["lock", "add", "17.6", "--evidence", dsc.to_str().unwrap()], 1, "not 17.6");
}

#[test]
fn mix_and_match_of_hash_and_evidence_is_rejected() {
    let scratch = scratch_repo();
    let path = scratch.path().join("data/sources.lock.json");
    let mut lock: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let sources = lock["sources"].as_array_mut().unwrap();
    let evidence_15 = sources.iter().find(|s| s["version"] == "15.18").unwrap()["evidence"].clone();
    let entry_18 = sources.iter_mut().find(|s| s["version"] == "18.6").unwrap();
    entry_18["evidence"] = evidence_15;
    std::fs::write(&path, serde_json::to_string_pretty(&lock).unwrap() + "\n").unwrap();
    assert_rejected(scratch.path(), &["generate", "--check"], 1, "attests a different tarball");
    assert_rejected(scratch.path(), &["resolve", "18.6"], 1, "verification failed");
}

#[test]
fn a_tampered_committed_evidence_document_is_rejected() {
    let scratch = scratch_repo();
    let doc = scratch.path().join(DSC_18_6);
    let text = std::fs::read_to_string(&doc).unwrap();
    std::fs::write(&doc, text.replacen("Standards-Version", "Standards-version", 1)).unwrap();
    assert_rejected(scratch.path(), &["generate"], 1, "document differs");
}

/// Signs the real 18.6 .dsc body with a throwaway key the scratch policy
/// trusts, then tries to lock it.
fn lock_with_test_key(cert: &sequoia_openpgp::Cert, signed_at: SystemTime, hash: HashAlgorithm, needle: &str) {
    let scratch = scratch_without("18.6");
    trust_in_policy(scratch.path(), cert);
    let real = std::fs::read_to_string(repo().join(DSC_18_6)).unwrap();
    let dsc = scratch.path().join("test-signed.dsc");
    std::fs::write(&dsc, clearsign(cert, dsc_body(&real).as_bytes(), signed_at, hash)).unwrap();
    let before = snapshot(scratch.path());
    let output = pgbin_in(scratch.path()).args(["lock", "add", "18.6", "--evidence"]).arg(&dsc).output().unwrap();
    if needle.is_empty() {
        assert!(output.status.success(), "control case: {}", String::from_utf8_lossy(&output.stderr));
        return;
    }
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
    let line = one_line_error(&output);
    assert!(line.to_lowercase().contains(needle), "expected '{needle}' in: {line}");
    assert_eq!(snapshot(scratch.path()), before);
}

#[test]
fn a_trusted_test_key_is_accepted_as_the_control_case() {
    let cert = make_cert(SystemTime::now() - Duration::from_secs(3600), None);
    lock_with_test_key(&cert, SystemTime::now() - Duration::from_secs(60), HashAlgorithm::SHA512, "");
}

#[test]
fn a_sha1_signature_is_rejected() {
    let cert = make_cert(SystemTime::now() - Duration::from_secs(3600), None);
    lock_with_test_key(&cert, SystemTime::now() - Duration::from_secs(60), HashAlgorithm::SHA1, "sha1");
}

#[test]
fn an_expired_key_is_rejected() {
    let created = SystemTime::now() - Duration::from_secs(7200);
    let cert = make_cert(created, Some(Duration::from_secs(3600)));
    lock_with_test_key(&cert, created + Duration::from_secs(600), HashAlgorithm::SHA512, "expired");
}

#[test]
fn a_revoked_key_is_rejected() {
    let cert = revoke(&make_cert(SystemTime::now() - Duration::from_secs(3600), None));
    lock_with_test_key(&cert, SystemTime::now() - Duration::from_secs(60), HashAlgorithm::SHA512, "revoked");
}

#[test]
fn a_malformed_lock_is_a_usage_error() {
    let scratch = scratch_repo();
    std::fs::write(scratch.path().join("data/sources.lock.json"), "{\"format\": 1, \"sources\": [").unwrap();
    assert_rejected(scratch.path(), &["versions"], 2, "malformed source lock");
}

#[test]
fn a_downgrade_or_changed_evidence_needs_a_recorded_override() {
    let scratch = scratch_without("18.3");
    let witness = repo().join("evidence/witness");
    let docs: Vec<PathBuf> = std::fs::read_dir(&witness)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("18.3-"))
        .collect();
    assert_eq!(docs.len(), 2);
    let mut args = vec!["lock".to_string(), "add".into(), "18.3".into(), "--evidence".into()];
    for doc in &docs {
        let copy = scratch.path().join(doc.file_name().unwrap());
        std::fs::write(&copy, with_blob_line(&std::fs::read_to_string(doc).unwrap())).unwrap();
        args.push(copy.display().to_string());
    }
    let args_ref: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_rejected(scratch.path(), &args_ref, 1, "refusing downgrade");

    let mut with_override = args.clone();
    with_override.extend(["--allow-downgrade".into(), "--reason".into(), "test".into()]);
    let output = pgbin_in(scratch.path()).args(&with_override).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let lock = std::fs::read_to_string(scratch.path().join("data/sources.lock.json")).unwrap();
    assert!(lock.contains("\"rule\": \"downgrade\""), "the override is recorded");

    let changed = scratch.path().join("changed.txt");
    std::fs::write(
        &changed,
        "Publisher: example/other\nReference: github:example/other@1111111111111111111111111111111111111111:Dockerfile\nBlob: 2222222222222222222222222222222222222222\n\nENV PG_VERSION 18.6\nENV PG_SHA256 0000000000000000000000000000000000000000000000000000000000000000\n",
    )
    .unwrap();
    assert_rejected(
        scratch.path(),
        &["lock", "add", "18.6", "--evidence", changed.to_str().unwrap()],
        1,
        "refusing changed evidence",
    );
}

#[test]
fn a_tampered_or_truncated_mirror_copy_never_reaches_the_cache() {
    let genuine = std::fs::read(tarball_18_6()).unwrap();
    for (label, served) in [
        ("tampered", {
            let mut b = genuine.clone();
            b[1000] ^= 0x80;
            b
        }),
        ("truncated", genuine[..genuine.len() / 2].to_vec()),
    ] {
        let root = tempfile::tempdir().unwrap();
        let pool = root.path().join("pool/main/p/postgresql-18");
        std::fs::create_dir_all(&pool).unwrap();
        std::fs::write(pool.join("postgresql-18_18.6.orig.tar.bz2"), &served).unwrap();
        let mirror = LocalMirror::serve(root.path());
        let cache = tempfile::tempdir().unwrap();
        let output = pgbin()
            .args(["fetch", "18.6", "--cache"])
            .arg(cache.path())
            .env("PGBIN_DEBIAN_MIRROR", &mirror.url)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{label}: {}", String::from_utf8_lossy(&output.stderr));
        let line = one_line_error(&output);
        assert!(line.contains("verification failed") && line.contains("127.0.0.1"), "{label}: {line}");
        assert!(snapshot(cache.path()).is_empty(), "{label}: the cache holds no file, partial or whole");
    }
}

#[test]
fn a_genuine_mirror_copy_is_fetched_and_cached() {
    let genuine = tarball_18_6();
    let root = tempfile::tempdir().unwrap();
    let pool = root.path().join("pool/main/p/postgresql-18");
    std::fs::create_dir_all(&pool).unwrap();
    std::fs::copy(&genuine, pool.join("postgresql-18_18.6.orig.tar.bz2")).unwrap();
    let mirror = LocalMirror::serve(root.path());
    let cache = tempfile::tempdir().unwrap();
    let dest = tempfile::tempdir().unwrap();
    let answer = json(
        &pgbin()
            .args(["fetch", "18.6", "--json", "--cache"])
            .arg(cache.path())
            .arg("--dest")
            .arg(dest.path())
            .env("PGBIN_DEBIAN_MIRROR", &mirror.url)
            .output()
            .unwrap(),
    );
    assert!(answer["url"].as_str().unwrap().starts_with(&mirror.url));
    assert_eq!(std::fs::read(dest.path().join("postgresql-18.6.tar.bz2")).unwrap(), std::fs::read(&genuine).unwrap());
    let again = json(&pgbin().args(["fetch", "18.6", "--json", "--cache"]).arg(cache.path()).output().unwrap());
    assert!(again["url"].is_null(), "second fetch comes from the cache");
}

#[test]
fn one_owner_under_two_names_does_not_corroborate() {
    let scratch = scratch_repo();
    let original = std::fs::read_dir(repo().join("evidence/witness"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("16.15-"))
        .unwrap();
    let text = std::fs::read_to_string(&original).unwrap();
    let renamed = scratch.path().join("renamed.txt");
    let renamed_text = text.replace("Publisher: docker-library/postgres", "Publisher: Docker-Library/Postgres");
    std::fs::write(&renamed, with_blob_line(&renamed_text)).unwrap();
    let output = pgbin_in(scratch.path()).args(["lock", "add", "16.15", "--evidence"]).arg(&renamed).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let answer = json(&pgbin_in(scratch.path()).args(["resolve", "16.15", "--json"]).output().unwrap());
    assert_eq!(answer["trust"], "unverified", "two excerpts from one owner are one witness");
}

#[test]
fn a_hand_edited_lock_cannot_relabel_a_tarball() {
    let scratch = scratch_repo();
    let path = scratch.path().join("data/sources.lock.json");
    let mut lock: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let sources = lock["sources"].as_array_mut().unwrap();
    let mut copy = sources.iter().find(|s| s["version"] == "17.11").unwrap().clone();
    copy["version"] = "17.1".into();
    copy["tarball"] = "postgresql-17.1.tar.bz2".into();
    sources.insert(0, copy);
    sources.sort_by_key(|s| {
        let v = s["version"].as_str().unwrap();
        let (a, b) = v.split_once('.').unwrap();
        (a.parse::<u32>().unwrap(), b.parse::<u32>().unwrap())
    });
    std::fs::write(&path, serde_json::to_string_pretty(&lock).unwrap() + "\n").unwrap();
    assert_rejected(scratch.path(), &["generate", "--check"], 2, "inconsistent source lock");
}

#[test]
fn evidence_outside_the_repository_is_refused() {
    let scratch = scratch_repo();
    let path = scratch.path().join("data/sources.lock.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let edited =
        text.replacen("\"document\": \"evidence/witness/17.11-", "\"document\": \"/tmp/evidence/witness/17.11-", 1);
    assert_ne!(text, edited);
    std::fs::write(&path, edited).unwrap();
    assert_rejected(scratch.path(), &["versions"], 2, "relative path under evidence/");
}
