//! `pgbin release plan` through the binary: resolution against the real
//! catalog, one build row and seven artifacts per target, refusal of
//! re-releases and downgrades, and nothing written.

use crate::util::{json, one_line_error, pgbin, repo, snapshot};

/// The highest 17.x in the catalog, read through `pgbin versions`.
fn highest_17() -> String {
    let versions = json(&pgbin().args(["versions", "--major", "17", "--json"]).output().unwrap());
    let mut all: Vec<(u32, String)> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let text = v["version"].as_str().unwrap().to_string();
            (text.split('.').nth(1).unwrap().parse().unwrap(), text)
        })
        .collect();
    all.sort();
    all.pop().unwrap().1
}

fn plan(args: &[&str]) -> std::process::Output {
    pgbin().args(["release", "plan"]).args(args).output().unwrap()
}

#[test]
fn plan_17_resolves_to_the_highest_17_x_and_lists_every_artifact() {
    let answer = json(&plan(&["17", "--json"]));
    let highest = highest_17();
    assert_eq!(answer["version"], highest);
    assert_eq!(answer["tag"], format!("postgresql-{highest}"));
    assert_eq!(answer["dry_run"], true);
    let targets = answer["targets"].as_array().unwrap();
    let expected = json(&pgbin().args(["targets", "--version", &highest, "--json"]).output().unwrap());
    let offered = expected["targets"].as_array().unwrap().iter().filter(|t| t.get("withheld").is_none()).count();
    assert_eq!(targets.len(), offered, "one entry per target that is not withheld");
    for target in targets {
        let archive = format!("postgresql-{highest}.0-{}.tar.gz", target["target"].as_str().unwrap());
        assert_eq!(target["archive"], archive);
        let artifacts: Vec<&str> =
            target["artifacts"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
        for suffix in ["", ".sha256", ".manifest.json", ".intoto.json", ".spdx.json", ".asc", ".intoto.json.asc"] {
            assert!(artifacts.contains(&format!("{archive}{suffix}").as_str()), "{archive}{suffix} missing");
        }
    }
    assert_eq!(answer["artifacts"].as_array().unwrap().len(), 7 * targets.len());
    assert_eq!(answer["matrix"]["include"].as_array().unwrap().len(), targets.len());
}

#[test]
fn plan_18_6_is_exact_and_prefers_native_builds() {
    let answer = json(&plan(&["18.6", "--json"]));
    assert_eq!(answer["version"], "18.6");
    assert_eq!(answer["trust"], "signed");
    let rows = answer["matrix"]["include"].as_array().unwrap();
    let row = |target: &str| rows.iter().find(|r| r["target"] == target).unwrap().clone();
    assert_eq!(row("aarch64-unknown-linux-gnu")["system"], "aarch64-linux");
    assert_eq!(row("aarch64-unknown-linux-gnu")["cross"], false);
    assert_eq!(row("x86_64-unknown-linux-musl")["system"], "x86_64-linux");
    assert_eq!(row("x86_64-unknown-linux-gnu")["attr"], "postgresql-18_6-x86_64-linux");
    // The rows are those of `pgbin matrix`, restricted to one per target.
    let full = json(&pgbin().args(["matrix", "--version", "18.6"]).output().unwrap());
    for r in rows {
        assert!(full.as_array().unwrap().contains(r), "{r} is not a matrix row");
    }
}

#[test]
fn refuses_a_re_release_and_a_downgrade_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let tags = dir.path().join("released.txt");
    std::fs::write(&tags, "postgresql-18.6\nv0.1.0\n").unwrap();
    let before = snapshot(&repo().join("data"));

    let output = plan(&["18.6", "--released-tags", tags.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(one_line_error(&output).contains("already released"));

    let output = plan(&["18.3", "--released-tags", tags.to_str().unwrap(), "--json"]);
    assert_eq!(output.status.code(), Some(1));
    let line = one_line_error(&output);
    assert!(line.contains("downgrade") && line.contains("18.6"), "{line}");
    assert!(output.stdout.is_empty());

    // The same from a directory of published archives.
    let published = dir.path().join("published");
    std::fs::create_dir(&published).unwrap();
    let highest = highest_17();
    std::fs::write(published.join(format!("postgresql-{highest}.0-x86_64-unknown-linux-gnu.tar.gz")), "").unwrap();
    let output = plan(&["17.6", "--published", published.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(one_line_error(&output).contains(&format!("{highest} is already released")));

    // Another major is not a downgrade.
    json(&plan(&["18.6", "--published", published.to_str().unwrap(), "--json"]));

    assert_eq!(snapshot(&repo().join("data")), before);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2, "nothing written beside the inputs");
}

#[test]
fn refuses_unverified_sources_and_bad_specs() {
    let output = plan(&["16.15"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(one_line_error(&output).contains("unverified"));
    let output = plan(&["seventeen"]);
    assert_eq!(output.status.code(), Some(2));
    one_line_error(&output);
    let output = plan(&["18.6", "--released-tags", "/nonexistent/tags"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(one_line_error(&output).contains("cannot read the release tags"));
}
