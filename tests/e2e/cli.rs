//! End-to-end tests of the foundation commands through the real binary:
//! help, versions, resolve, targets, generate.

use crate::util::{json, one_line_error, pgbin, pgbin_in, repo, scratch_repo};

#[test]
fn help_lists_the_commands() {
    let output = pgbin().arg("--help").output().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    for command in ["versions", "resolve", "targets", "generate", "verify", "lock"] {
        assert!(text.contains(command), "--help does not mention {command}:\n{text}");
    }
}

#[test]
fn resolve_major_gives_the_highest_patch() {
    let answer = json(&pgbin().args(["resolve", "17", "--json"]).output().unwrap());
    assert_eq!(answer["version"], "17.12");
    assert_eq!(answer["archive_version"], "17.12.0");
    assert_eq!(answer["end_of_life"], false);
}

#[test]
fn a_major_with_only_pre_releases_resolves_only_with_pre_and_is_never_built() {
    let refused = pgbin().args(["resolve", "19"]).output().unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let line = crate::util::one_line_error(&refused);
    assert!(line.contains("19 has only pre-releases so far (19beta2, 19rc1); pass --pre"), "{line}");
    let answer = json(&pgbin().args(["resolve", "19", "--pre", "--json"]).output().unwrap());
    assert_eq!(answer["version"], "19rc1");
    assert_eq!(answer["pre_release"], true);
    assert_eq!(answer["buildable"], false);
    let stable = json(&pgbin().args(["resolve", "18", "--pre", "--json"]).output().unwrap());
    assert_eq!(stable["version"], "18.6", "--pre never replaces a final release");
    let generated = crate::util::repo().join("nix/generated");
    for entry in std::fs::read_dir(&generated).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(!text.contains("19rc1") && !text.contains("19beta"), "a pre-release reached the flake's data");
    }
}

#[test]
fn resolve_exact_version_reports_its_verified_source() {
    let answer = json(&pgbin().args(["resolve", "18.6", "--json"]).output().unwrap());
    assert_eq!(answer["version"], "18.6");
    assert_eq!(answer["sha256"], "555610c24d53e4316da5b7d3fc25c279d96856d5e0e23ee308c328c5fa881d9f");
    assert_eq!(answer["size"], 22632314);
    assert_eq!(answer["trust"], "signed");
    assert_eq!(answer["buildable"], true);
    let same = json(&pgbin().args(["resolve", "18.6.0", "--json"]).output().unwrap());
    assert_eq!(same["version"], "18.6");
}

#[test]
fn bad_specs_exit_2_with_one_line() {
    for (spec, expect) in [
        ("17.60", "not a known release"),
        ("abc", "not a PostgreSQL version"),
        ("17.6.1", "third part"),
        ("12", "not in the catalog"),
        ("13", "end of life"),
    ] {
        let output = pgbin().args(["resolve", spec]).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{spec}");
        let line = one_line_error(&output);
        assert!(line.contains(expect), "{spec}: {line}");
        assert!(output.stdout.is_empty(), "{spec}: nothing on stdout");
    }
}

#[test]
fn end_of_life_needs_the_flag_and_warns() {
    let output = pgbin().args(["resolve", "13", "--allow-eol", "--json"]).output().unwrap();
    let answer = json(&output);
    assert_eq!(answer["version"], "13.23");
    assert_eq!(answer["end_of_life"], true);
    assert!(String::from_utf8_lossy(&output.stderr).contains("end of life"));
}

#[test]
fn versions_lists_every_release_with_its_level() {
    let rows = json(&pgbin().args(["versions", "--json"]).output().unwrap());
    let rows = rows.as_array().unwrap();
    let find = |v: &str| rows.iter().find(|r| r["version"] == v).unwrap_or_else(|| panic!("{v} missing"));
    assert_eq!(find("18.6")["trust"], "signed");
    assert_eq!(find("17.11")["trust"], "corroborated");
    assert_eq!(find("16.15")["trust"], "unverified");
    assert_eq!(find("16.15")["buildable"], false);
    assert_eq!(find("17.6")["trust"], "corroborated");
    assert!(rows.iter().all(|r| r["url"].as_str().unwrap().starts_with("https://ftp.postgresql.org/pub/source/v")));
    let majors: std::collections::BTreeSet<u64> = rows.iter().map(|r| r["major"].as_u64().unwrap()).collect();
    assert_eq!(majors.into_iter().collect::<Vec<_>>(), vec![13, 14, 15, 16, 17, 18]);
    let only_15 = json(&pgbin().args(["versions", "--major", "15", "--json"]).output().unwrap());
    assert!(only_15.as_array().unwrap().iter().all(|r| r["major"] == 15));
}

#[test]
fn targets_json_describes_the_matrix() {
    let listing = json(&pgbin().args(["targets", "--json", "--version", "17.6"]).output().unwrap());
    let targets = listing["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 14);
    let arm = targets.iter().find(|t| t["triple"] == "aarch64-unknown-linux-gnu").unwrap();
    assert_eq!(arm["attr_name"], "postgresql-17_6-aarch64-linux");
    assert_eq!(arm["archive_name"], "postgresql-17.6.0-aarch64-unknown-linux-gnu.tar.gz");
    let cross = arm["builders"].as_array().unwrap().iter().find(|b| b["system"] == "x86_64-linux").unwrap();
    assert_eq!(cross["package_set"], "pkgsCross.aarch64-multiplatform");
    assert_eq!(cross["cross"], true);
    assert_eq!(arm["features"]["llvm-jit"]["enabled"], false);
    let armhf = targets.iter().find(|t| t["triple"] == "armv7-unknown-linux-gnueabihf").unwrap();
    assert_eq!(armhf["isa"]["baseline"], "armv7-a+vfpv3-d16, hard float");
    assert_eq!(armhf["isa"]["elf"], "ARM, ELF32, little-endian, EABI5, hard float");
    assert_eq!(armhf["isa"]["interpreter"], "/lib/ld-linux-armhf.so.3");
    let darwin = targets.iter().find(|t| t["triple"] == "aarch64-apple-darwin").unwrap();
    assert!(darwin.get("isa").is_none());
    assert!(darwin["withheld"].as_str().unwrap().contains("Mach-O"), "{darwin}");
    assert!(arm.get("withheld").is_none());
    assert!(arm["features"]["llvm-jit"]["reason"].as_str().unwrap().contains("cross"));
    let musl = targets.iter().find(|t| t["triple"] == "x86_64-unknown-linux-musl").unwrap();
    assert_eq!(musl["attr_name"], "postgresql-17_6-x86_64-linux-musl");
}

/// Darwin archives would keep store install names and broken signatures:
/// they are withheld, so no build of one starts, the flake data has none,
/// and CI's matrix has no row for them.
#[test]
fn withheld_darwin_targets_are_refused_and_absent_from_the_flake_data() {
    let scratch = tempfile::tempdir().unwrap();
    for backend in ["nix", "host"] {
        let output = pgbin()
            .args(["build", "18.6", "--target", "aarch64-apple-darwin", "--backend", backend, "--out"])
            .arg(scratch.path())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{backend}");
        let line = one_line_error(&output);
        assert!(line.contains("aarch64-apple-darwin is withheld") && line.contains("Mach-O"), "{line}");
    }
    assert_eq!(std::fs::read_dir(scratch.path()).unwrap().count(), 0, "nothing is published");
    for file in std::fs::read_dir(repo().join("nix/generated")).unwrap() {
        let text = std::fs::read_to_string(file.unwrap().path()).unwrap();
        assert!(!text.contains("apple-darwin\""), "no generated entry targets darwin");
    }
    let matrix = json(&pgbin().args(["matrix", "--format", "json"]).output().unwrap());
    assert!(matrix.as_array().unwrap().iter().all(|row| !row["target"].as_str().unwrap().contains("darwin")));
}

#[test]
fn generate_check_passes_on_the_committed_tree() {
    let output = pgbin().args(["generate", "--check"]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn generate_check_fails_after_a_catalog_edit_and_generate_repairs_it() {
    let scratch = scratch_repo();
    let catalog = scratch.path().join("data/catalog.toml");
    let text = std::fs::read_to_string(&catalog).unwrap();
    let edited =
        text.replace(r#"{ version = "18.6", date = "2026-08-13" }"#, r#"{ version = "18.6", date = "2026-08-14" }"#);
    assert_ne!(text, edited, "the fixture line exists");
    std::fs::write(&catalog, edited).unwrap();

    let output = pgbin_in(scratch.path()).args(["generate", "--check"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(one_line_error(&output).contains("nix/generated/postgresql-18.json"));

    assert!(pgbin_in(scratch.path()).arg("generate").output().unwrap().status.success());
    assert!(pgbin_in(scratch.path()).args(["generate", "--check"]).output().unwrap().status.success());
}

#[test]
fn generate_check_names_a_file_that_should_not_exist() {
    let scratch = scratch_repo();
    std::fs::write(scratch.path().join("nix/generated/postgresql-12.json"), "{}\n").unwrap();
    let output = pgbin_in(scratch.path()).args(["generate", "--check"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(one_line_error(&output).contains("postgresql-12.json"));
}

#[test]
fn a_missing_repository_is_a_usage_error() {
    let empty = tempfile::tempdir().unwrap();
    let output = pgbin_in(empty.path()).args(["versions"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(one_line_error(&output).contains("--repo"));
}
