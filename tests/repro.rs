//! `pgbin repro` end to end: PostgreSQL 18.6 built twice by the host
//! backend under different conditions (build path, time, time zone, locale,
//! umask, environment, job count) gives byte-identical archives.

mod common;

use common::{json, pgbin};

#[test]
fn two_host_builds_of_18_6_under_varied_conditions_are_identical() {
    let out = tempfile::tempdir().unwrap();
    let repro = out.path().join("repro");
    let output = pgbin().args(["repro", "18.6", "--backend", "host", "--json", "--out"]).arg(&repro).output().unwrap();
    let summary = json(&output);
    assert_eq!(summary["identical"], true, "{}", serde_json::to_string_pretty(&summary["report"]).unwrap());
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
    common::one_line_error(&again);
}
