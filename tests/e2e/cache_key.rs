//! The build cache's key covers the installed packages a host build reads:
//! after a (simulated) security update of the bundled libssl3, `pgbin
//! build` does not answer from the cache but builds again, and the new
//! archive's manifest records the new version. The update is simulated with
//! `PGBIN_DPKG_STATUS`: a copy of dpkg's status file in which libssl3's
//! version differs. One real PostgreSQL build (a few minutes here).

use std::path::Path;

use crate::util::{json, pgbin};

/// `pgbin build 18.6 --backend host --json` into `out`, with `cache` and
/// `status` (a dpkg status file) when given.
fn build(out: &Path, cache: Option<&Path>, status: Option<&Path>) -> serde_json::Value {
    let mut command = pgbin();
    command.args(["build", "18.6", "--backend", "host", "--json", "--out"]).arg(out);
    if let Some(cache) = cache {
        command.arg("--cache").arg(cache);
    }
    if let Some(status) = status {
        command.env("PGBIN_DPKG_STATUS", status);
    }
    json(&command.output().unwrap())
}

fn manifest(answer: &serde_json::Value) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(answer["manifest_file"].as_str().unwrap()).unwrap()).unwrap()
}

/// dpkg's status file with the native libssl3's `Version` set to `version`.
fn status_with_libssl3(version: &str) -> String {
    let text = std::fs::read_to_string("/var/lib/dpkg/status").unwrap();
    let arch = format!("Architecture: {}", pgbin::build::inputs::native_arch());
    let paragraphs: Vec<String> = text
        .split("\n\n")
        .map(|paragraph| {
            if !paragraph.starts_with("Package: libssl3\n") || !paragraph.lines().any(|l| l == arch) {
                return paragraph.to_string();
            }
            let lines: Vec<String> = paragraph
                .lines()
                .map(|l| if l.starts_with("Version: ") { format!("Version: {version}") } else { l.to_string() })
                .collect();
            lines.join("\n")
        })
        .collect();
    let changed = paragraphs.join("\n\n");
    assert_ne!(changed, text, "libssl3 is installed");
    changed
}

#[test]
fn an_upgraded_bundled_library_changes_the_cache_key_and_builds_again() {
    // The build from the machine's real packages, in the shared cache (made
    // once and reused by the other build tests).
    let out = tempfile::tempdir().unwrap();
    let real = manifest(&build(out.path(), None, None));
    let key = real["cache_key"].as_str().unwrap().to_string();
    let libssl = |m: &serde_json::Value| {
        let libraries = m["bundled_libraries"].as_array().unwrap();
        libraries.iter().find(|l| l["name"] == "libssl.so.3").unwrap().clone()
    };
    let installed = libssl(&real)["package_version"].as_str().unwrap().to_string();
    assert_eq!(libssl(&real)["package"], "libssl3");
    assert_eq!(real["toolchain"]["packages"]["libssl3"], installed.as_str(), "the key's record covers libssl3");

    // A private cache holding the sources and exactly that build.
    let cache = tempfile::tempdir().unwrap();
    let shared = Path::new(&std::env::var("HOME").unwrap()).join(".cache/pgbin");
    let copy = |from: &Path, to: &Path| {
        let status = std::process::Command::new("cp").arg("-a").arg(from).arg(to).status().unwrap();
        assert!(status.success());
    };
    copy(&shared.join("sources"), cache.path());
    std::fs::create_dir_all(cache.path().join("builds")).unwrap();
    copy(&shared.join("builds").join(&key), &cache.path().join("builds"));
    let out_again = tempfile::tempdir().unwrap();
    let again = build(out_again.path(), Some(cache.path()), None);
    assert_eq!(again["cached"], true, "the same packages: the cache answers");

    // libssl3 upgraded: another key, no cache hit, a real build.
    let upgraded = if installed == "3.0.22-1~deb12u2" { "3.0.23-1~deb12u1" } else { "3.0.22-1~deb12u2" };
    let status = cache.path().join("status");
    std::fs::write(&status, status_with_libssl3(upgraded)).unwrap();
    let out_rebuilt = tempfile::tempdir().unwrap();
    let rebuilt = build(out_rebuilt.path(), Some(cache.path()), Some(&status));
    assert_eq!(rebuilt["cached"], false, "an upgraded bundled library must not be answered from the cache");
    assert!(rebuilt["log"].is_string(), "a build ran");
    let rebuilt = manifest(&rebuilt);
    assert_ne!(rebuilt["cache_key"], key.as_str());
    assert_eq!(libssl(&rebuilt)["package_version"], upgraded, "the manifest records the upgraded libssl3");
    assert_eq!(rebuilt["toolchain"]["packages"]["libssl3"], upgraded);
}
