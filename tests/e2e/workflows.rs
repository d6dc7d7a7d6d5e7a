//! The GitHub workflows (.github/workflows/), checked statically: they cannot
//! run here (no GitHub, no Docker engine, no nixpkgs).
//!
//! - zizmor (auditor persona, offline, strict collection) reports nothing,
//!   and with ignore comments disabled reports exactly the one finding the
//!   workflows suppress on purpose; zizmor itself is shown to catch an
//!   unpinned action, a template injection and broken YAML.
//! - check-jsonschema validates every workflow against the GitHub workflow
//!   schema it vendors, and `bash -n` parses every `run:` script.
//! - every `uses:` is local (`./`) or an allowed action pinned to a 40-hex
//!   commit with `# vX.Y.Z`, one pin per action;
//! - the structure the release process relies on: triggers, inputs,
//!   least-privilege permissions, no credentials persisted, no `${{ }}` in a
//!   script, the matrix from `pgbin matrix --format github` with every row key
//!   the build job reads, publishing only after every build and never on a
//!   dry run, the signing key in one step only.
//!
//! zizmor, check-jsonschema and PyYAML come from the Python tools venv that
//! `bash scripts/setup.sh` installs ($PGBIN_PYTOOLS, default
//! ~/.cache/pgbin/pytools); without it these tests fail.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::util::{python_tool as pytool, repo};

const WORKFLOWS: [&str; 4] = ["ci.yml", "build.yml", "release.yml", "watch.yml"];

/// The only actions the workflows may use (besides `./` reusable workflows).
const ALLOWED_ACTIONS: [&str; 5] = [
    "actions/checkout",
    "actions/upload-artifact",
    "actions/download-artifact",
    "actions/attest-build-provenance",
    "cachix/install-nix-action",
];

fn workflow_path(name: &str) -> PathBuf {
    repo().join(".github/workflows").join(name)
}

fn read_workflow(name: &str) -> String {
    let path = workflow_path(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn describe(output: &Output) -> String {
    format!("exit: {}\n--- stdout\n{}\n--- stderr\n{}", output.status, text(&output.stdout), text(&output.stderr))
}

/// zizmor, offline, at its strictest persona, failing on unparsable input,
/// ignoring any zizmor.yml, without colour; `extra` goes before the input.
fn zizmor(input: &Path, extra: &[&str]) -> Output {
    Command::new(pytool("zizmor"))
        .args(["--offline", "--strict-collection", "--no-config", "--persona", "auditor", "--no-progress"])
        .args(["--color", "never"])
        .args(extra)
        .arg(input)
        .current_dir(repo())
        .env_remove("GH_TOKEN")
        .env_remove("GITHUB_TOKEN")
        .env_remove("ZIZMOR_GITHUB_TOKEN")
        .output()
        .expect("zizmor runs")
}

/// (audit, primary location's text) of every finding in zizmor's JSON output.
fn findings(output: &Output) -> Vec<(String, String)> {
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("zizmor's JSON output does not parse ({e}):\n{}", describe(output)));
    let mut found: Vec<(String, String)> = report
        .as_array()
        .expect("a JSON array of findings")
        .iter()
        .map(|finding| {
            let ident = finding["ident"].as_str().expect("ident").to_string();
            let primary = finding["locations"]
                .as_array()
                .expect("locations")
                .iter()
                .find(|l| l["symbolic"]["kind"] == "Primary")
                .map(|l| l["concrete"]["feature"].as_str().unwrap_or_default().to_string())
                .unwrap_or_default();
            (ident, primary)
        })
        .collect();
    found.sort();
    found
}

#[test]
fn zizmor_reports_nothing() {
    let output = zizmor(&repo(), &["--format", "plain"]);
    let stdout = text(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("No findings to report"),
        "zizmor found problems in the workflows:\n{}",
        describe(&output)
    );
    // Every workflow was audited (a file zizmor cannot read fails above).
    let stderr = text(&output.stderr);
    for name in WORKFLOWS {
        assert!(stderr.contains(&format!(".github/workflows/{name}")), "zizmor did not audit {name}:\n{stderr}");
    }
}

/// The ignore comment suppresses exactly this finding, explained beside it
/// in release.yml: the reusable build workflow is called as `./...`, the
/// documented form; self-repository would have the `$/...` form, which the
/// Actions runner only has behind a feature flag.
#[test]
fn zizmor_suppresses_only_the_known_finding() {
    let output = zizmor(&repo(), &["--format", "json", "--no-ignores"]);
    let found = findings(&output);
    let expected = vec![("self-repository".to_string(), "./.github/workflows/build.yml".to_string())];
    assert_eq!(found, expected, "unexpected zizmor findings with ignores disabled:\n{}", describe(&output));
}

/// zizmor with the flags above is a real check: it fails on an unpinned
/// action, on an expression expanded into a script and on broken YAML.
#[test]
fn zizmor_catches_bad_workflows() {
    let bad = [
        ("unpinned-uses", "      - uses: actions/checkout@v4\n        with:\n          persist-credentials: false\n"),
        ("template-injection", "      - run: echo \"${{ github.event.head_commit.message }}\"\n"),
    ];
    for (audit, steps) in bad {
        let dir = tempfile::tempdir().unwrap();
        let workflows = dir.path().join(".github/workflows");
        std::fs::create_dir_all(&workflows).unwrap();
        let workflow = format!(
            "name: bad\non: push\npermissions: {{}}\njobs:\n  bad:\n    name: bad\n    runs-on: ubuntu-24.04\n    \
             permissions: {{}}\n    steps:\n{steps}"
        );
        std::fs::write(workflows.join("bad.yml"), workflow).unwrap();
        let output = zizmor(dir.path(), &["--format", "json"]);
        assert!(!output.status.success(), "zizmor accepted a workflow with {audit}:\n{}", describe(&output));
        assert!(
            findings(&output).iter().any(|(ident, _)| ident == audit),
            "zizmor did not report {audit}:\n{}",
            describe(&output)
        );
    }

    let dir = tempfile::tempdir().unwrap();
    let workflows = dir.path().join(".github/workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    std::fs::write(workflows.join("broken.yml"), "on: push\njobs:\n  a:\n    steps: [\n").unwrap();
    let output = zizmor(dir.path(), &["--format", "plain"]);
    assert!(!output.status.success(), "zizmor accepted unparsable YAML:\n{}", describe(&output));
}

#[test]
fn workflows_match_the_github_workflow_schema() {
    let output = Command::new(pytool("check-jsonschema"))
        .args(["--builtin-schema", "vendor.github-workflows"])
        .args(WORKFLOWS.map(workflow_path))
        .output()
        .expect("check-jsonschema runs");
    assert!(output.status.success(), "schema validation failed:\n{}", describe(&output));
}

/// A workflow as JSON, parsed by PyYAML from the venv (no YAML crate here).
/// YAML 1.1 reads the key `on` as true; it is put back as "on".
fn parse(name: &str) -> Value {
    const SCRIPT: &str = "import json, sys, yaml\n\
        doc = yaml.safe_load(open(sys.argv[1], encoding='utf-8'))\n\
        if True in doc:\n    doc['on'] = doc.pop(True)\n\
        json.dump(doc, sys.stdout)\n";
    let output =
        Command::new(pytool("python")).arg("-c").arg(SCRIPT).arg(workflow_path(name)).output().expect("python runs");
    assert!(output.status.success(), "{name} does not parse as YAML:\n{}", describe(&output));
    serde_json::from_slice(&output.stdout).unwrap()
}

fn jobs(workflow: &Value) -> &serde_json::Map<String, Value> {
    workflow["jobs"].as_object().expect("jobs")
}

fn steps(job: &Value) -> Vec<&Value> {
    job["steps"].as_array().map(|s| s.iter().collect()).unwrap_or_default()
}

fn permissions(job: &Value) -> BTreeMap<String, String> {
    job["permissions"]
        .as_object()
        .unwrap_or_else(|| panic!("job without a permissions mapping: {job}"))
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Every `uses:` line: `./...`, or an allowed `owner/repo@<40 hex> # v<version>`,
/// and each action pinned to one commit throughout.
#[test]
fn every_action_is_pinned_to_a_commit_with_its_version() {
    let mut pins: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for name in WORKFLOWS {
        for (number, line) in read_workflow(name).lines().enumerate() {
            let trimmed = line.trim_start().trim_start_matches("- ");
            let Some(value) = trimmed.strip_prefix("uses:") else { continue };
            let value = value.trim();
            let place = format!("{name}:{}: {value}", number + 1);
            if value.starts_with("./") {
                assert!(!value.contains(' '), "{place}: trailing text after a local reference");
                continue;
            }
            let (reference, comment) = value.split_once(" # ").unwrap_or_else(|| panic!("{place}: no `# vX.Y.Z`"));
            let (action, sha) = reference.split_once('@').unwrap_or_else(|| panic!("{place}: no @ref"));
            assert!(
                sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "{place}: not pinned to a full 40-hex commit SHA"
            );
            let version = comment.strip_prefix('v').unwrap_or_else(|| panic!("{place}: comment is not `vX.Y.Z`"));
            assert!(
                !version.is_empty()
                    && version.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())),
                "{place}: comment is not `vX.Y.Z`"
            );
            assert!(ALLOWED_ACTIONS.contains(&action), "{place}: {action} is not an allowed action");
            pins.entry(action.to_string()).or_default().insert(reference.to_string() + " # " + comment);
        }
    }
    for (action, refs) in &pins {
        assert_eq!(refs.len(), 1, "{action} is pinned differently in different places: {refs:?}");
    }
    assert_eq!(pins.len(), ALLOWED_ACTIONS.len(), "every allowed action is used: {pins:?}");
}

#[test]
fn no_dangerous_triggers_or_inherited_secrets() {
    for name in WORKFLOWS {
        let content = read_workflow(name);
        for forbidden in ["pull_request_target", "workflow_run", "secrets: inherit"] {
            assert!(!content.contains(forbidden), "{name} contains {forbidden}");
        }
    }
    // Two secrets, each once: the signing key in release.yml's signing step,
    // and the workflow's own token in watch.yml's step that opens the pull
    // request (its job may write contents and pull requests, nothing else).
    let mut lines = Vec::new();
    for name in WORKFLOWS {
        for line in read_workflow(name).lines().filter(|l| references_secrets(l)) {
            lines.push(format!("{name}: {}", line.trim()));
        }
    }
    assert_eq!(
        lines,
        [
            "release.yml: PGBIN_SIGNING_KEY: ${{ secrets.PGBIN_SIGNING_KEY }}",
            "watch.yml: GH_TOKEN: ${{ secrets.GITHUB_TOKEN }}"
        ]
    );
}

/// Whether a line reads the secrets context (`secrets.NAME`, `secrets[...]`).
fn references_secrets(line: &str) -> bool {
    line.match_indices("secrets").any(|(at, word)| {
        let mut rest = line[at + word.len()..].chars();
        match rest.next() {
            Some('[') => true,
            Some('.') => rest.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_'),
            _ => false,
        }
    })
}

/// Least privilege, no persisted credentials, flakes enabled, no `${{ }}`
/// in any script, and every script parses as bash.
#[test]
fn jobs_are_least_privilege_and_scripts_are_clean() {
    for name in WORKFLOWS {
        let workflow = parse(name);
        assert_eq!(workflow["permissions"], serde_json::json!({}), "{name}: top-level permissions must be {{}}");
        assert!(
            workflow["env"]["NIX_CONFIG"].as_str().is_some_and(|c| c.contains("flakes")),
            "{name}: NIX_CONFIG must enable flakes"
        );
        assert_eq!(workflow["defaults"]["run"]["shell"], "bash", "{name}: scripts run under bash (-eo pipefail)");
        for (job_name, job) in jobs(&workflow) {
            let place = format!("{name}: job {job_name}");
            assert!(job.get("permissions").is_some(), "{place}: no explicit permissions");
            for step in steps(job) {
                let uses = step["uses"].as_str().unwrap_or_default();
                if uses.starts_with("actions/checkout@") {
                    assert_eq!(step["with"]["persist-credentials"], false, "{place}: checkout persists credentials");
                }
                if let Some(script) = step["run"].as_str() {
                    assert!(!script.contains("${{"), "{place}: expression expanded into a script:\n{script}");
                    let output = Command::new("bash").arg("-n").arg("-c").arg(script).output().expect("bash runs");
                    assert!(
                        output.status.success(),
                        "{place}: script does not parse:\n{script}\n{}",
                        describe(&output)
                    );
                }
            }
        }
    }
}

#[test]
fn ci_runs_tests_generate_check_audit_and_flake_check() {
    let workflow = parse("ci.yml");
    let on = workflow["on"].as_object().expect("on");
    assert_eq!(on.keys().map(String::as_str).collect::<BTreeSet<_>>(), BTreeSet::from(["pull_request", "push"]));
    let scripts: Vec<String> =
        jobs(&workflow).values().flat_map(steps).filter_map(|s| s["run"].as_str().map(str::to_string)).collect();
    for expected in [
        "sudo env \"PATH=$PATH\" bash scripts/setup.sh",
        "bash scripts/test.sh",
        "./target/release/pgbin generate --check",
        "./target/release/pgbin audit",
        "nix flake check",
    ] {
        assert!(scripts.iter().any(|s| s.contains(expected)), "ci.yml does not run `{expected}`");
    }
    for job in jobs(&workflow).values() {
        assert_eq!(permissions(job), map(&[("contents", "read")]));
    }
}

#[test]
fn build_derives_its_matrix_from_pgbin_matrix() {
    let content = read_workflow("build.yml");
    assert!(
        content.contains("./target/release/pgbin matrix --format github --version \"$VERSION\""),
        "build.yml does not compute its matrix with `pgbin matrix --format github`"
    );
    let workflow = parse("build.yml");
    let call = &workflow["on"]["workflow_call"];
    assert_eq!(call["inputs"]["version"]["required"], true);
    assert_eq!(call["inputs"]["version"]["type"], "string");
    assert_eq!(call["inputs"]["matrix"]["required"], false);
    assert_eq!(call["inputs"]["matrix"]["default"], "");

    let jobs = jobs(&workflow);
    assert_eq!(jobs["plan"]["outputs"]["matrix"], "${{ steps.matrix.outputs.matrix }}");
    let build = &jobs["build"];
    assert_eq!(build["needs"], "plan");
    assert_eq!(build["strategy"]["fail-fast"], false);
    assert_eq!(build["strategy"]["matrix"], "${{ fromJSON(needs.plan.outputs.matrix) }}");
    assert_eq!(build["runs-on"], "${{ matrix.runner }}");
    for job in jobs.values() {
        assert_eq!(permissions(job), map(&[("contents", "read")]));
    }
    let upload = steps(build)
        .into_iter()
        .find(|s| s["uses"].as_str().is_some_and(|u| u.starts_with("actions/upload-artifact@")))
        .expect("the build job uploads dist/");
    let artifact = upload["with"]["name"].as_str().unwrap();
    assert_eq!(artifact, "${{ matrix.archive }}--on-${{ matrix.system }}");
    for forbidden in ['"', ':', '<', '>', '|', '*', '?', '\\', '/'] {
        assert!(!artifact.replace("${{ matrix.archive }}", "").replace("${{ matrix.system }}", "").contains(forbidden));
    }

    // Every matrix key the workflow reads is in the rows pgbin prints.
    let output = assert_cmd::Command::cargo_bin("pgbin")
        .unwrap()
        .arg("--repo")
        .arg(repo())
        .args(["matrix", "--format", "github"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    let matrix: Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
    let rows = matrix["include"].as_array().expect("include");
    assert!(!rows.is_empty());
    let mut read: BTreeSet<String> = BTreeSet::new();
    for part in content.split("{{ matrix.").skip(1) {
        let key: String = part.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        if !key.is_empty() {
            read.insert(key);
        }
    }
    assert!(read.contains("archive") && read.contains("attr") && read.contains("smoke"), "{read:?}");
    for row in rows {
        for key in &read {
            assert!(row.get(key).is_some(), "build.yml reads matrix.{key}, which pgbin matrix rows lack: {row}");
        }
    }
}

#[test]
fn release_publishes_only_after_every_build_and_never_on_a_dry_run() {
    let workflow = parse("release.yml");
    let on = workflow["on"].as_object().expect("on");
    assert_eq!(on.keys().map(String::as_str).collect::<BTreeSet<_>>(), BTreeSet::from(["workflow_dispatch"]));
    let inputs = &on["workflow_dispatch"]["inputs"];
    assert_eq!(inputs["version"]["required"], true);
    assert_eq!(inputs["notes"]["type"], "string");
    assert_eq!(inputs["dry_run"]["type"], "boolean");
    assert_eq!(inputs["dry_run"]["default"], true);
    assert_eq!(workflow["concurrency"]["cancel-in-progress"], false);

    let jobs = jobs(&workflow);
    assert_eq!(jobs.keys().map(String::as_str).collect::<BTreeSet<_>>(), BTreeSet::from(["build", "plan", "publish"]));
    let plan_scripts: String =
        steps(&jobs["plan"]).iter().filter_map(|s| s["run"].as_str()).collect::<Vec<_>>().join("\n");
    assert!(plan_scripts.contains("gh release list"));
    assert!(plan_scripts.contains("./target/release/pgbin release plan \"$VERSION\" --released-tags"));
    assert_eq!(permissions(&jobs["plan"]), map(&[("contents", "read")]));

    let build = &jobs["build"];
    assert_eq!(build["uses"], "./.github/workflows/build.yml");
    assert_eq!(build["with"]["version"], "${{ needs.plan.outputs.version }}");
    assert_eq!(build["with"]["matrix"], "${{ needs.plan.outputs.matrix }}");
    assert!(build.get("secrets").is_none(), "the build gets no secrets");
    assert_eq!(permissions(build), map(&[("contents", "read")]));

    let publish = &jobs["publish"];
    assert_eq!(publish["needs"], serde_json::json!(["plan", "build"]));
    assert_eq!(publish["if"], "${{ success() && !inputs.dry_run }}");
    assert_eq!(permissions(publish), map(&[("attestations", "write"), ("contents", "write"), ("id-token", "write")]));

    // The order: sign, verify, attest, draft, check, publish.
    let steps = steps(publish);
    let position = |needle: &str| {
        steps
            .iter()
            .position(|s| {
                s["run"].as_str().is_some_and(|r| r.contains(needle))
                    || s["uses"].as_str().is_some_and(|u| u.starts_with(needle))
            })
            .unwrap_or_else(|| panic!("publish has no step with {needle}"))
    };
    let order = [
        position("pgbin sign"),
        position("pgbin verify-artifact"),
        position("actions/attest-build-provenance@"),
        position("gh release create"),
        position("-F draft=false"),
    ];
    assert!(order.windows(2).all(|w| w[0] < w[1]), "publish steps out of order: {order:?}");
    let draft = &steps[order[3]];
    assert!(draft["run"].as_str().unwrap().contains("--draft"));
    assert_eq!(draft["id"], "draft");

    // The signing key: only in the signing step, through the environment,
    // into a file private to the user, removed afterwards.
    let sign = &steps[order[0]];
    assert_eq!(sign["env"]["PGBIN_SIGNING_KEY"], "${{ secrets.PGBIN_SIGNING_KEY }}");
    let script = sign["run"].as_str().unwrap();
    assert!(script.contains("umask 077"));
    assert!(script.contains("trap 'rm -f \"$key\"' EXIT"));
    assert!(script.contains("--key \"$key\""));
    assert!(!script.contains("echo \"$PGBIN_SIGNING_KEY") && !script.contains("set -x"));
    assert!(steps[order[1]]["run"].as_str().unwrap().contains("--keyring keys/release-signing.pgp"));
}
