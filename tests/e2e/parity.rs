//! `pgbin parity` on real builds: two copies of the same 18.6 host build
//! agree on everything (smoke test included); a second real host build of
//! 18.6 configured without ICU is reported, by feature, as differing where
//! it matters. (The second build compiles PostgreSQL once, a few minutes;
//! pgbin caches it.)

use std::path::{Path, PathBuf};

use crate::util::{json, pgbin, pgbin_in, scratch_repo};

const ARCHIVE: &str = "postgresql-18.6.0-x86_64-unknown-linux-gnu.tar.gz";

fn build(command: &mut assert_cmd::Command, out: &Path) -> PathBuf {
    let answer =
        json(&command.args(["build", "18.6", "--backend", "host", "--json", "--out"]).arg(out).output().unwrap());
    PathBuf::from(answer["archive"].as_str().unwrap())
}

fn parity(a: &Path, b: &Path) -> (i32, serde_json::Value) {
    let output = pgbin().arg("parity").arg(a).arg(b).arg("--json").output().unwrap();
    let code = output.status.code().unwrap();
    assert!(code == 0 || code == 1, "{}", String::from_utf8_lossy(&output.stderr));
    (code, serde_json::from_slice(&output.stdout).unwrap())
}

fn aspect<'a>(verdict: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    verdict["aspects"].as_array().unwrap().iter().find(|a| a["name"] == name).unwrap()
}

fn items(aspect: &serde_json::Value, side: &str) -> Vec<String> {
    aspect[side].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
}

#[test]
fn identical_builds_agree_and_a_build_without_icu_differs_by_feature() {
    let out_a = tempfile::tempdir().unwrap();
    let a = build(&mut pgbin(), out_a.path());
    assert_eq!(a.file_name().unwrap(), ARCHIVE);

    // The same build, copied: every aspect agrees, the smoke test included.
    let copy_dir = tempfile::tempdir().unwrap();
    let copy = copy_dir.path().join(ARCHIVE);
    std::fs::copy(&a, &copy).unwrap();
    let (code, verdict) = parity(&a, &copy);
    assert_eq!(code, 0);
    assert_eq!(verdict["agree"], true);
    for aspect in verdict["aspects"].as_array().unwrap() {
        assert!(
            aspect["only_in_a"].as_array().unwrap().is_empty() && aspect["only_in_b"].as_array().unwrap().is_empty()
        );
    }
    let smoke = verdict["inventory_a"]["smoke"].as_object().expect("the smoke test ran on both");
    assert!(smoke.contains_key("icu-collation") && smoke.values().all(|p| p == true));
    assert!(verdict["inventory_a"]["extensions"].as_array().unwrap().iter().any(|e| e == "pgcrypto"));

    // A second, real host build with ICU switched off in the data.
    let scratch = scratch_repo();
    let targets = scratch.path().join("data/targets.toml");
    let text = std::fs::read_to_string(&targets).unwrap().replacen(
        "disable = [\"--without-icu\"]\n",
        "disable = [\"--without-icu\"]\ndefault = false\noff_reason = \"parity test: a build without ICU\"\n",
        1,
    );
    std::fs::write(&targets, text).unwrap();
    let out_b = tempfile::tempdir().unwrap();
    let b = build(&mut pgbin_in(scratch.path()), out_b.path());

    let (code, verdict) = parity(&a, &b);
    assert_eq!(code, 1, "{verdict:#}");
    assert_eq!(verdict["agree"], false);
    let flags = aspect(&verdict, "configure flags");
    assert_eq!(items(flags, "only_in_a"), ["--with-icu"]);
    assert_eq!(items(flags, "only_in_b"), ["--without-icu"]);
    assert_eq!(items(aspect(&verdict, "features"), "only_in_a"), ["USE_ICU"]);
    assert!(items(aspect(&verdict, "features"), "only_in_b").is_empty());
    assert_eq!(items(aspect(&verdict, "smoke test"), "only_in_a"), ["icu-collation: passed"]);
    let libraries = aspect(&verdict, "bundled libraries");
    assert_eq!(libraries["matters"], false);
    assert!(items(libraries, "only_in_a").iter().all(|l| l.starts_with("libicu")));
    for same in ["version", "binaries", "extensions", "modules"] {
        let x = aspect(&verdict, same);
        assert!(
            x["only_in_a"].as_array().unwrap().is_empty() && x["only_in_b"].as_array().unwrap().is_empty(),
            "{same}"
        );
    }

    // The human report names the feature.
    let output = pgbin().arg("parity").arg(&a).arg(&b).arg("--no-smoke").output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.starts_with("parity: the builds DIFFER where it matters"), "{text}");
    assert!(text.contains("only in A: USE_ICU") && text.contains("only in B: --without-icu"), "{text}");
}

#[test]
fn parity_refuses_what_is_not_an_install() {
    let dir = tempfile::tempdir().unwrap();
    let output = pgbin().arg("parity").arg(dir.path()).arg(dir.path()).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(crate::util::one_line_error(&output).contains("does not look like a PostgreSQL install"));
}
