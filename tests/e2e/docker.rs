//! The musl parity Dockerfile, checked statically (no Docker engine here):
//! it passes `pgbin audit`; its default flags are those of the generated
//! data and data/targets.toml; `pgbin build --backend docker --dry-run`
//! passes every musl release its own flags, hash and SOURCE_DATE_EPOCH from
//! the same data the flake reads; its relocation script computes the same
//! RUNPATHs as pgbin's relocate module; and without an engine the backend
//! stops with one clear line.

use std::path::Path;

use crate::util::{json, one_line_error, pgbin, repo};

fn dockerfile() -> String {
    std::fs::read_to_string(repo().join("dockerfiles/Dockerfile.linux-musl")).unwrap()
}

/// The default of `ARG NAME="..."` in the Dockerfile.
fn arg_default(text: &str, name: &str) -> String {
    let prefix = format!("ARG {name}=");
    let line = text.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("no ARG {name} default"));
    line[prefix.len()..].trim_matches('"').to_string()
}

/// Every musl entry of the generated data.
fn musl_entries() -> Vec<serde_json::Value> {
    let mut entries = Vec::new();
    for file in std::fs::read_dir(repo().join("nix/generated")).unwrap() {
        let path = file.unwrap().path();
        if !path.file_name().unwrap().to_string_lossy().starts_with("postgresql-") {
            continue;
        }
        let data: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        entries.extend(data["entries"].as_array().unwrap().iter().filter(|e| e["libc"] == "musl").cloned());
    }
    assert!(!entries.is_empty());
    entries
}

#[test]
fn the_dockerfile_passes_the_audit() {
    let output = pgbin().arg("audit").arg(repo().join("dockerfiles")).args(["--format", "json"]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["files"], 2, "the Dockerfile and its relocation script were read");
}

#[test]
fn the_dockerfile_defaults_are_the_generated_flags_of_the_latest_major() {
    let text = dockerfile();
    let entries = musl_entries();
    let latest = entries.iter().map(|e| e["major"].as_u64().unwrap()).max().unwrap();
    let flags = arg_default(&text, "CONFIGURE_FLAGS");
    for entry in entries.iter().filter(|e| e["major"] == latest) {
        let generated: Vec<&str> =
            entry["configureFlags"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
        assert_eq!(flags, generated.join(" "), "{}", entry["attr"]);
    }
    let targets: toml::Table =
        toml::from_str(&std::fs::read_to_string(repo().join("data/targets.toml")).unwrap()).unwrap();
    for (arg, key) in [("CFLAGS", "cflags"), ("LDFLAGS", "ldflags")] {
        let expected: Vec<&str> =
            targets["host"][key].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(arg_default(&text, arg), expected.join(" "), "{arg}");
    }
    // Pinned base image, checked source, non-root build, archive-only output.
    assert!(text.contains("ARG ALPINE=alpine:3.22.2@sha256:"));
    assert!(text.contains("sha256sum -c -"));
    assert!(text.contains("USER builder"));
    assert!(text.contains("FROM scratch AS archive"));
}

#[test]
fn the_dry_run_passes_each_musl_release_its_own_data() {
    for entry in musl_entries() {
        let version = entry["version"].as_str().unwrap();
        let target = entry["target"].as_str().unwrap();
        let answer = json(
            &pgbin()
                .args(["build", version, "--backend", "docker", "--target", target, "--dry-run", "--json"])
                .output()
                .unwrap(),
        );
        let args = &answer["plan"]["build_args"];
        let flags: Vec<&str> =
            entry["configureFlags"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
        assert_eq!(args["CONFIGURE_FLAGS"], flags.join(" "), "{version} {target}");
        assert_eq!(args["PG_SHA256"], entry["source"]["sha256"]);
        assert_eq!(args["PG_VERSION"], version);
        assert_eq!(args["SOURCE_DATE_EPOCH"], entry["sourceDateEpoch"].to_string());
        assert_eq!(answer["plan"]["archive"], entry["archiveName"]);
        let platform = match target.split('-').next().unwrap() {
            "x86_64" => "linux/amd64",
            "aarch64" => "linux/arm64",
            "i686" => "linux/386",
            "powerpc64le" => "linux/ppc64le",
            other => panic!("no Docker platform known for {other}"),
        };
        assert_eq!(answer["plan"]["platform"], platform);
        let command: Vec<&str> = answer["command"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
        assert_eq!(&command[..3], &["build", "--platform", platform]);
    }
}

#[test]
fn the_relocation_script_computes_pgbins_runpaths() {
    let script = repo().join("dockerfiles/relocate-musl.sh");
    for file in
        ["bin/postgres", "bin/pg_ctl", "lib/libpq.so.5", "lib/postgresql/plpgsql.so", "lib/postgresql/pgxs/src/x.so"]
    {
        let output = std::process::Command::new("sh")
            .arg(&script)
            .args(["--runpath", "/prefix"])
            .arg(format!("/prefix/{file}"))
            .output()
            .unwrap();
        assert!(output.status.success());
        assert_eq!(
            String::from_utf8_lossy(&output.stdout).trim(),
            pgbin::build::relocate::runpath_for(Path::new(file)),
            "{file}"
        );
    }
}

#[test]
fn the_docker_backend_refuses_what_it_cannot_do_with_one_line() {
    let output = pgbin()
        .args(["build", "18.6", "--backend", "docker", "--target", "x86_64-unknown-linux-gnu"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(one_line_error(&output).contains("builds only the musl targets"));
    let engine = std::process::Command::new("docker").arg("info").output().is_ok_and(|o| o.status.success());
    if !engine {
        let output = pgbin()
            .args(["build", "18.6", "--backend", "docker", "--target", "x86_64-unknown-linux-musl"])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2));
        assert!(one_line_error(&output).contains("no Docker engine is reachable"));
    }
    let output = pgbin().args(["build", "18.6", "--backend", "host", "--dry-run"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(one_line_error(&output).contains("--backend docker only"));
}
