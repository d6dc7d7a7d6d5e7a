//! `pgbin repro` end to end: PostgreSQL 18.6 built twice by the host
//! backend under different conditions (build path, time, time zone, locale,
//! umask, environment, job count) gives byte-identical archives.

use crate::util::{json, pgbin};

#[test]
fn two_host_builds_of_18_6_under_varied_conditions_are_identical() {
    let out = tempfile::tempdir().unwrap();
    let repro = out.path().join("repro");
    let output = pgbin().args(["repro", "18.6", "--backend", "host", "--json", "--out"]).arg(&repro).output().unwrap();
    let summary = json(&output);
    assert_eq!(summary["identical"], true, "{}", serde_json::to_string_pretty(&summary["report"]).unwrap());
    assert_eq!(summary["verdict"], "identical");
    assert_eq!(summary["report"]["inputs_recorded"], true, "both builds' manifests were compared");
    assert!(summary["report"]["machine_changes"].is_null(), "the machine did not change during the run");
    assert_eq!(summary["archive_sha256"][0], summary["archive_sha256"][1]);
    assert_eq!(summary["report"]["a"]["nar_hash"], summary["report"]["b"]["nar_hash"]);
    let varied = &summary["variations"][1];
    assert_eq!(varied["umask"], 0o077);
    assert!(varied["time_zone"].is_string() && varied["locale"].is_string());
    // Both outputs and the report are kept.
    assert!(repro.join("report.json").is_file());
    assert!(repro.join("build-1/out/postgresql-18.6.0-x86_64-unknown-linux-gnu.tar.gz").is_file());
    assert!(
        repro
            .join("second-build-at-a-longer-path/build-2/out/postgresql-18.6.0-x86_64-unknown-linux-gnu.tar.gz")
            .is_file()
    );
    // A used --out is refused rather than mixed with an earlier run.
    let again = pgbin().args(["repro", "18.6", "--out"]).arg(&repro).output().unwrap();
    assert_eq!(again.status.code(), Some(2));
    crate::util::one_line_error(&again);
}

/// The Nix backend's mechanism, with the real Nix on a small flake (nixpkgs
/// cannot be fetched here, so not on PostgreSQL): `nix build --rebuild
/// --keep-failed` finds a reproducible derivation identical, and for one
/// that embeds the build's moment it keeps the second output as `.check`,
/// which pgbin finds in the log and explains against the first.
#[test]
fn nix_rebuild_checks_a_derivation_and_keeps_a_differing_output() {
    let flake = tempfile::tempdir().unwrap();
    // A nonce keeps the store paths this run's own.
    let nonce = format!("{}-{}", std::process::id(), std::time::UNIX_EPOCH.elapsed().unwrap().as_nanos());
    let derivation = |name: &str, script: &str| {
        format!(
            r#"{name}.archive = builtins.derivation {{
        name = "pgbin-repro-test-{name}"; system = "x86_64-linux"; builder = "/bin/sh"; nonce = "{nonce}";
        args = [ "-c" ''{script}'' ];
      }};"#
        )
    };
    let text = format!(
        "{{\n  outputs = _: {{\n    packages.x86_64-linux = {{\n      {}\n      {}\n    }};\n  }};\n}}\n",
        derivation("steady", "echo 'version 1' > $out"),
        derivation("varying", "read -r up idle < /proc/uptime; echo \"built $up s after boot\" > $out"),
    );
    std::fs::write(flake.path().join("flake.nix"), text).unwrap();
    let log = flake.path().join("nix.log");

    let steady = pgbin::nix::build::nix_build(flake.path(), "steady.archive", &log).unwrap();
    assert_eq!(std::fs::read_to_string(&steady).unwrap(), "version 1\n");
    assert_eq!(
        pgbin::nix::build::nix_rebuild(flake.path(), "steady.archive", &log).unwrap(),
        None,
        "a reproducible derivation"
    );

    let varying = pgbin::nix::build::nix_build(flake.path(), "varying.archive", &log).unwrap();
    let check = pgbin::nix::build::nix_rebuild(flake.path(), "varying.archive", &log)
        .unwrap()
        .expect("Nix keeps the differing rebuild");
    assert_eq!(
        check.file_name().unwrap().to_str().unwrap(),
        format!("{}.check", varying.file_name().unwrap().to_str().unwrap())
    );
    let scratch = tempfile::tempdir().unwrap();
    let report =
        pgbin::compare::diff::diff(&varying, &check, scratch.path(), pgbin::compare::diff::Options::default()).unwrap();
    assert!(!report.identical);
    let report = serde_json::to_value(&report).unwrap();
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{report:#}");
    assert_eq!(findings[0]["code"], "content");
    let text = findings[0]["diff"].as_str().unwrap();
    assert!(text.contains("-built ") && text.contains("+built "), "{text}");

    let _ = std::process::Command::new("nix-store").arg("--delete").args([&check, &varying, &steady]).output();
}
