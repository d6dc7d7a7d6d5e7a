//! Tests with the real Nix (Debian's nix-bin): the Nix files parse, the pure
//! layer evaluates to exactly the driver's view of what is buildable, the
//! real flake.nix exposes those attributes, and flake.lock is fully locked.
//!
//! nixpkgs cannot be fetched on the test machines, so the flake is evaluated
//! with nixpkgs replaced by a recording stand-in (tests/nix/stub-nixpkgs):
//! attribute names, and what each derivation would run (configure flags, the
//! archive derivation's pgbin command line, the smoke checks), are read back
//! and checked against the driver; nothing is built.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use base64::Engine;
use serde_json::{Value, json};

use crate::util::{json as stdout_json, pgbin, repo};

// No evaluation cache: concurrent tests would contend for its SQLite file.
/// Every evaluation here also forbids import-from-derivation, so an IFD in
/// the flake fails these tests (docs/audit.md, NIX003).
const NIX_CONFIG: &str = "experimental-features = nix-command flakes\nsubstituters =\neval-cache = false\nallow-import-from-derivation = false";

fn nix(program: &str) -> Command {
    let mut cmd = Command::new(program);
    cmd.env("NIX_CONFIG", NIX_CONFIG);
    cmd
}

fn run_json(cmd: &mut Command) -> Value {
    let output = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}; install Debian's nix-bin"));
    assert!(output.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

fn nix_files() -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = ["flake.nix", "nix", "tests/nix"]
        .iter()
        .flat_map(|p| walkdir::WalkDir::new(repo().join(p)))
        .map(|e| e.unwrap().into_path())
        .filter(|p| p.extension().is_some_and(|e| e == "nix"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_nix_file_parses() {
    let files = nix_files();
    assert!(files.len() >= 6, "found {files:?}");
    for file in files {
        let output = nix("nix-instantiate").arg("--parse").arg(&file).output().expect("nix-instantiate runs");
        assert!(output.status.success(), "{}: {}", file.display(), String::from_utf8_lossy(&output.stderr));
    }
}

/// The driver's view of what the flake must expose, built from its own
/// query commands only.
fn driver_view() -> BTreeMap<String, BTreeMap<String, Value>> {
    let versions = stdout_json(&pgbin().args(["versions", "--json"]).output().unwrap());
    let mut view: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
    for row in versions.as_array().unwrap().iter().filter(|r| r["buildable"] == true) {
        let version = row["version"].as_str().unwrap();
        let major = row["major"].as_u64().unwrap();
        let sha = hex::decode(row["sha256"].as_str().unwrap()).unwrap();
        let sri = format!("sha256-{}", base64::engine::general_purpose::STANDARD.encode(sha));
        let released: jiff::civil::Date = row["released"].as_str().unwrap().parse().unwrap();
        let epoch = released.to_zoned(jiff::tz::TimeZone::UTC).unwrap().timestamp().as_second();
        let listing = stdout_json(&pgbin().args(["targets", "--json", "--version", version]).output().unwrap());
        for target in listing["targets"].as_array().unwrap() {
            for builder in target["builders"].as_array().unwrap() {
                // A withheld target's systems exist, without its packages.
                let of_system = view.entry(builder["system"].as_str().unwrap().to_string()).or_default();
                if target.get("withheld").is_some() {
                    continue;
                }
                let cross = builder["cross"].as_bool().unwrap();
                let package_set: Vec<&str> =
                    if cross { builder["package_set"].as_str().unwrap().split('.').collect() } else { Vec::new() };
                of_system.insert(
                    target["attr_name"].as_str().unwrap().to_string(),
                    json!({
                        "target": target["triple"],
                        "packageSet": package_set,
                        "cross": cross,
                        "sourceName": row["tarball"],
                        "sourceHash": sri,
                        "trust": row["trust"],
                        "parameters": {
                            "version": version,
                            "major": major,
                            "configureFlags": target["configure_flags"],
                            "archiveName": target["archive_name"],
                            "sourceDateEpoch": epoch,
                            "archiveStem": target["archive_name"].as_str().unwrap().trim_end_matches(".tar.gz"),
                            "crossExportDynamic": cross && target["os"] == "linux" && major >= 16,
                            "emulatedZic": cross,
                            "smokeTestable": target["os"] == "linux" && target["libc"] == "glibc",
                        },
                    }),
                );
            }
        }
    }
    view
}

#[test]
fn pure_layer_equals_the_driver_view() {
    let expr = format!("(import {}/nix/lib.nix {{ }}).summary", repo().display());
    let nix_view = run_json(nix("nix-instantiate").args(["--eval", "--strict", "--json", "-E", &expr]));
    let driver = serde_json::to_value(driver_view()).unwrap();
    assert_eq!(nix_view, driver, "nix/lib.nix and the driver disagree");
    let x86 = nix_view["x86_64-linux"].as_object().unwrap();
    for attr in ["postgresql-18_6-aarch64-linux", "postgresql-18_6-x86_64-linux-musl", "postgresql-18_6-x86_64-linux"] {
        assert!(x86.contains_key(attr), "{attr} is not exposed under x86_64-linux");
    }
    assert!(!x86.contains_key("postgresql-18_6-aarch64-darwin"), "darwin targets are not built from linux");
}

#[test]
fn pure_layer_rejects_an_entry_whose_name_disagrees() {
    let scratch = tempfile::tempdir().unwrap();
    let data = std::fs::read_to_string(repo().join("nix/generated/postgresql-18.json")).unwrap();
    let tampered = data.replacen("\"attr\": \"postgresql-18_6-", "\"attr\": \"postgresql-18_5-", 1);
    assert_ne!(data, tampered);
    std::fs::write(scratch.path().join("postgresql-18.json"), tampered).unwrap();
    std::fs::copy(repo().join("nix/generated/systems.json"), scratch.path().join("systems.json")).unwrap();
    let expr =
        format!("(import {}/nix/lib.nix {{ generated = {}; }}).entries", repo().display(), scratch.path().display());
    let output = nix("nix-instantiate").args(["--eval", "--strict", "--json", "-E", &expr]).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("disagrees with the computed name"));
}

/// Copies the files the flake evaluates into a fresh directory.
fn flake_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for file in ["flake.nix", "flake.lock", "Cargo.toml", "Cargo.lock"] {
        std::fs::copy(repo().join(file), dir.path().join(file)).unwrap();
    }
    for entry in walkdir::WalkDir::new(repo().join("nix")) {
        let entry = entry.unwrap();
        let target = dir.path().join(entry.path().strip_prefix(repo()).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
    dir
}

/// Evaluates `attr` of the flake (with the stand-in nixpkgs) to JSON;
/// `attr` may be followed by further `nix eval` arguments.
fn flake_eval(flake: &Path, attr: &str) -> Value {
    let stub = repo().join("tests/nix/stub-nixpkgs");
    let (attr, extra) = attr.split_once(' ').unwrap_or((attr, ""));
    run_json(
        nix("nix")
            .args(["eval", "--json", "--no-write-lock-file", "--override-input", "nixpkgs"])
            .arg(format!("path:{}", stub.display()))
            .arg(format!("path:{}#{attr}", flake.display()))
            .args(extra.split_whitespace()),
    )
}

/// Evaluates `apply` (a Nix function) on `attr` of the flake to JSON.
fn flake_apply(flake: &Path, attr: &str, apply: &str) -> Value {
    let stub = repo().join("tests/nix/stub-nixpkgs");
    run_json(
        nix("nix")
            .args(["eval", "--json", "--no-write-lock-file", "--override-input", "nixpkgs"])
            .arg(format!("path:{}", stub.display()))
            .arg(format!("path:{}#{attr}", flake.display()))
            .args(["--apply", apply]),
    )
}

fn flake_attr_names(flake: &Path, attr: &str) -> Vec<String> {
    serde_json::from_value(flake_eval(flake, &format!("{attr} --apply builtins.attrNames"))).unwrap()
}

/// The alias names a system's packages must have, computed here from the
/// driver's view: `postgresql-MAJOR-SUFFIX` for the newest release of each
/// major and target, `postgresql-SUFFIX` for the newest of all; each mapped
/// to the attribute it stands for.
fn expected_aliases(of_system: &BTreeMap<String, Value>) -> BTreeMap<String, String> {
    let mut newest: BTreeMap<String, ((u64, u64), String)> = BTreeMap::new();
    for (attr, entry) in of_system {
        let version = entry["parameters"]["version"].as_str().unwrap();
        let (major, minor) = version.split_once('.').unwrap();
        let key = (major.parse::<u64>().unwrap(), minor.parse::<u64>().unwrap());
        let suffix = attr.strip_prefix(&format!("postgresql-{}-", version.replace('.', "_"))).unwrap();
        for alias in [format!("postgresql-{major}-{suffix}"), format!("postgresql-{suffix}")] {
            let slot = newest.entry(alias).or_insert((key, attr.clone()));
            if key > slot.0 {
                *slot = (key, attr.clone());
            }
        }
    }
    newest.into_iter().map(|(alias, (_, attr))| (alias, attr)).collect()
}

#[test]
fn flake_exposes_the_standard_outputs_and_every_entry() {
    let flake = flake_copy();
    let driver = driver_view();
    let listing = stdout_json(&pgbin().args(["targets", "--json"]).output().unwrap());
    let systems: BTreeSet<String> = listing["targets"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["builders"].as_array().unwrap().iter().map(|b| b["system"].as_str().unwrap().to_string()))
        .collect();
    for output in ["packages", "checks", "apps", "devShells", "formatter"] {
        let exposed: BTreeSet<String> = flake_attr_names(flake.path(), output).into_iter().collect();
        assert_eq!(exposed, systems, "flake output {output} is not per-system");
    }
    assert!(flake_attr_names(flake.path(), "lib").contains(&"summary".to_string()));
    for system in &systems {
        let of_system = driver.get(system).cloned().unwrap_or_default();
        let mut expected: BTreeSet<String> = of_system.keys().cloned().collect();
        expected.extend(expected_aliases(&of_system).into_keys());
        expected.insert("pgbin".into());
        expected.insert("default".into());
        let exposed: BTreeSet<String> =
            flake_attr_names(flake.path(), &format!("packages.{system}")).into_iter().collect();
        assert_eq!(exposed, expected, "packages.{system}");
        let apps: BTreeSet<String> = flake_attr_names(flake.path(), &format!("apps.{system}")).into_iter().collect();
        assert!(apps.contains("pgbin") && apps.contains("default"));
    }
    let hydra: BTreeSet<String> = flake_attr_names(flake.path(), "hydraJobs.packages").into_iter().collect();
    assert!(hydra.iter().all(|s| s.ends_with("-linux")), "{hydra:?}");
}

#[test]
fn flake_lock_pins_every_input() {
    let lock: Value = serde_json::from_str(&std::fs::read_to_string(repo().join("flake.lock")).unwrap()).unwrap();
    assert_eq!(lock["version"], 7);
    let root = lock["root"].as_str().unwrap();
    let nodes = lock["nodes"].as_object().unwrap();
    let inputs = nodes[root]["inputs"].as_object().unwrap();
    assert!(inputs.contains_key("nixpkgs"));
    for (name, node) in nodes.iter().filter(|(n, _)| n.as_str() != root) {
        let locked = &node["locked"];
        let rev = locked["rev"].as_str().unwrap_or_else(|| panic!("{name} has no rev"));
        assert!(rev.len() == 40 && rev.bytes().all(|b| b.is_ascii_hexdigit()), "{name}: rev {rev}");
        let nar = locked["narHash"].as_str().unwrap_or_else(|| panic!("{name} has no narHash"));
        let digest = base64::engine::general_purpose::STANDARD.decode(nar.strip_prefix("sha256-").unwrap()).unwrap();
        assert_eq!(digest.len(), 32, "{name}: narHash is not a SHA-256");
        assert!(locked["lastModified"].is_u64(), "{name}: lastModified");
        assert!(node["original"].is_object(), "{name}: original");
    }
    let flake = std::fs::read_to_string(repo().join("flake.nix")).unwrap();
    assert!(!flake.contains("flake-utils"), "the flake uses no flake-utils");
}

#[test]
fn seed_puts_the_verified_tarball_where_the_flake_expects_it() {
    let cache = std::env::temp_dir().join("pgbin-test-cache");
    let seeded = stdout_json(
        &pgbin()
            .args(["seed", "18.6", "--json", "--cache"])
            .arg(&cache)
            .env("NIX_CONFIG", NIX_CONFIG)
            .output()
            .unwrap(),
    );
    let store_path = seeded["store_path"].as_str().unwrap();
    assert!(store_path.ends_with("-postgresql-18.6.tar.bz2"), "{store_path}");
    assert!(Path::new(store_path).is_file(), "{store_path} is in the store");

    // Nix's own computation of the fixed-output path for that name and hash.
    let output = nix("nix-store")
        .args([
            "--print-fixed-path",
            "sha256",
            "555610c24d53e4316da5b7d3fc25c279d96856d5e0e23ee308c328c5fa881d9f",
            "postgresql-18.6.tar.bz2",
        ])
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), store_path);

    // The flake data names exactly this source.
    let expr = format!(
        "(import {}/nix/lib.nix {{ }}).summary.x86_64-linux.\"postgresql-18_6-x86_64-linux\"",
        repo().display()
    );
    let entry = run_json(nix("nix-instantiate").args(["--eval", "--strict", "--json", "-E", &expr]));
    assert_eq!(entry["sourceName"], "postgresql-18.6.tar.bz2");
    assert_eq!(entry["sourceHash"], seeded["hash"]);
    let output = nix("nix")
        .args([
            "hash",
            "to-sri",
            "--type",
            "sha256",
            "555610c24d53e4316da5b7d3fc25c279d96856d5e0e23ee308c328c5fa881d9f",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        seeded["hash"].as_str().unwrap(),
        "SRI encoding agrees with nix"
    );
}

#[test]
fn the_generic_builder_installs_under_the_host_backends_prefix() {
    let flake = flake_copy();
    let package = "packages.x86_64-linux.postgresql-18_6-x86_64-linux";
    let flags = flake_eval(flake.path(), &format!("{package}.configureFlags"));
    let listing = stdout_json(&pgbin().args(["targets", "--json", "--version", "18.6"]).output().unwrap());
    let target =
        listing["targets"].as_array().unwrap().iter().find(|t| t["triple"] == "x86_64-unknown-linux-gnu").unwrap();
    let mut expected = vec![json!("--prefix=/opt/postgresql-18.6.0-x86_64-unknown-linux-gnu")];
    expected.extend(target["configure_flags"].as_array().unwrap().iter().cloned());
    assert_eq!(flags, Value::Array(expected), "the driver's flags, after the shared prefix");
    assert_eq!(flake_eval(flake.path(), &format!("{package}.dontAddPrefix")), true);
}

/// The archive derivation runs `pgbin package` with the entry's version,
/// target and source, and the real pgbin accepts exactly that command line
/// (it stops at the missing tree, not at an argument).
#[test]
fn the_archive_derivation_runs_pgbin_package_on_the_install_tree() {
    let flake = flake_copy();
    // nixpkgs names a package built for another platform
    // `<pname>-<host config>-<version>` (make-derivation.nix).
    for (system, attr, triple, tree_suffix) in [
        ("x86_64-linux", "postgresql-18_6-x86_64-linux", "x86_64-unknown-linux-gnu", "-postgresql-18.6"),
        (
            "x86_64-linux",
            "postgresql-18_6-aarch64-linux",
            "aarch64-unknown-linux-gnu",
            "-postgresql-aarch64-unknown-linux-gnu-18.6",
        ),
    ] {
        let script = flake_eval(flake.path(), &format!("packages.{system}.{attr}.archive.buildCommand"));
        let script = script.as_str().unwrap();
        let words: Vec<String> =
            script.replace("\\\n", " ").split_whitespace().map(|w| w.trim_matches('\'').to_string()).collect();
        let start = words.iter().position(|w| w == "pgbin").expect("runs pgbin");
        let args = &words[start + 1..];
        let value = |flag: &str| args.iter().position(|a| a == flag).map(|i| args[i + 1].as_str());
        assert_eq!(args[2], "package", "{script}");
        assert_eq!(value("--built-by"), Some("nix"));
        assert_eq!(value("--version"), Some("18.6"));
        assert_eq!(value("--target"), Some(triple));
        assert!(value("--source").unwrap().ends_with("-postgresql-18.6.tar.bz2"), "{script}");
        assert_eq!(value("--compiler"), Some("gcc-stub"));
        assert!(args[3].ends_with(tree_suffix), "the install tree: {script}");

        let mut real: Vec<String> = args[2..].iter().map(|a| a.replace("\"$out\"", "out")).collect();
        real[1] = "/nonexistent/tree".into();
        let output = pgbin().args(&real).output().unwrap();
        assert_eq!(output.status.code(), Some(2));
        assert!(
            crate::util::one_line_error(&output).contains("not an installed PostgreSQL tree"),
            "pgbin accepts the derivation's arguments"
        );
    }
}

/// nixpkgs configures a cross build with `--build` and `--host`, and
/// PostgreSQL's configure then needs `ZIC` in its environment: every cross
/// entry gives it the target's own zic under the target's emulator (an exec
/// wrapper where the build machine runs the target's code), and empties the
/// emulator's store path out of PGXS; native entries give no ZIC at all.
/// The stand-in refuses a cross PostgreSQL derivation without ZIC, so
/// evaluating every package's name is the check that none lacks it.
#[test]
fn cross_entries_give_configure_the_targets_zic_under_the_emulator() {
    let flake = flake_copy();
    for system in ["x86_64-linux", "aarch64-linux"] {
        let names = flake_apply(flake.path(), &format!("packages.{system}"), "builtins.mapAttrs (_: p: p.name)");
        assert!(names.as_object().unwrap().len() > 10, "{system}: {names}");
    }
    let package = |attr: &str| format!("packages.x86_64-linux.{attr}");
    let aarch64 = package("postgresql-18_6-aarch64-linux");
    assert_eq!(
        flake_eval(flake.path(), &format!("{aarch64}.configurePlatformFlags")),
        json!(["--build=x86_64-unknown-linux-gnu", "--host=aarch64-unknown-linux-gnu"])
    );
    let zic = flake_eval(flake.path(), &format!("{aarch64}.env.ZIC"));
    assert_eq!(zic, "/nix/store/22222222222222222222222222222222-qemu-user/bin/qemu-aarch64 ./zic");
    let post_install = flake_eval(flake.path(), &format!("{aarch64}.postInstall"));
    assert!(post_install.as_str().unwrap().contains("s|^ZIC = .*$|ZIC = |"), "{post_install}");
    let musl = package("postgresql-18_6-x86_64-linux-musl");
    let zic = flake_eval(flake.path(), &format!("{musl}.env.ZIC"));
    assert_eq!(zic, "/nix/store/33333333333333333333333333333333-exec/bin/exec ./zic", "x86_64 runs musl64's zic");
    let native = package("postgresql-18_6-x86_64-linux");
    assert_eq!(flake_apply(flake.path(), &format!("{native}.env"), "builtins.attrNames"), json!(["SOURCE_DATE_EPOCH"]));
    assert_eq!(flake_eval(flake.path(), &format!("{native}.configurePlatformFlags")), json!([]));
}

/// `nix fmt` runs the formatter without arguments: the flake's formatter
/// must then format the tree (nixfmt-tree), not wait on standard input.
#[test]
fn the_formatter_formats_the_whole_tree() {
    let flake = flake_copy();
    let formatters = flake_apply(flake.path(), "formatter", "builtins.mapAttrs (_: f: f.withoutArguments)");
    let formatters = formatters.as_object().unwrap();
    assert!(!formatters.is_empty());
    for (system, what) in formatters {
        assert_eq!(what, "formats every .nix file of the tree", "{system}");
    }
}

/// Every glibc Linux archive has a smoke check on each system that builds
/// it: natively (or on a CPU the build machine runs, i686 on x86_64) with
/// the store's loader as interpreter, otherwise under nixpkgs' emulator for
/// the target with the target's glibc as its root, so that the executables
/// keep the standard interpreter. musl archives have none yet. The real
/// pgbin accepts each check's command line.
#[test]
fn smoke_checks_run_every_glibc_archive_natively_or_under_the_emulator() {
    let flake = flake_copy();
    let x86: BTreeSet<String> = flake_attr_names(flake.path(), "checks.x86_64-linux").into_iter().collect();
    for attr in ["x86_64-linux", "aarch64-linux", "armv7l-linux", "i686-linux", "s390x-linux", "mips64el-linux"] {
        assert!(x86.contains(&format!("postgresql-18_6-{attr}-smoke")), "{attr}: {x86:?}");
    }
    assert!(x86.contains("generated-data") && x86.contains("pgbin"));
    assert!(!x86.iter().any(|c| c.contains("musl")), "musl archives are not smoke-tested: {x86:?}");
    let arm: BTreeSet<String> = flake_attr_names(flake.path(), "checks.aarch64-linux").into_iter().collect();
    assert!(arm.contains("postgresql-18_6-aarch64-linux-smoke") && arm.contains("postgresql-18_6-x86_64-linux-smoke"));
    let darwin = flake_attr_names(flake.path(), "checks.aarch64-darwin");
    assert!(!darwin.iter().any(|c| c.ends_with("-smoke")), "{darwin:?}");

    let command = |attr: &str| {
        let script =
            flake_eval(flake.path(), &format!("checks.x86_64-linux.postgresql-18_6-{attr}-smoke.buildCommand"));
        let line =
            script.as_str().unwrap().lines().find(|l| l.trim_start().starts_with("pgbin smoke")).unwrap().to_string();
        line.split_whitespace().map(str::to_string).collect::<Vec<_>>()
    };
    let native = command("x86_64-linux");
    assert!(native[2].ends_with("/postgresql-18.6.0-x86_64-unknown-linux-gnu.tar.gz"), "{native:?}");
    assert_eq!(native[3..], ["--interpreter", "/stub/lib/ld.so"]);
    let aarch64 = command("aarch64-linux");
    assert!(aarch64[2].ends_with("/postgresql-18.6.0-aarch64-unknown-linux-gnu.tar.gz"), "{aarch64:?}");
    assert_eq!(
        aarch64[3..],
        [
            "--emulator",
            "/nix/store/22222222222222222222222222222222-qemu-user/bin/qemu-aarch64",
            "--sysroot",
            "/nix/store/44444444444444444444444444444444-glibc-aarch64-unknown-linux-gnu"
        ]
    );
    assert_eq!(command("i686-linux")[3..], ["--interpreter", "/stub/i686-unknown-linux-gnu/lib/ld.so"]);
    assert_eq!(command("armv7l-linux")[4], "/nix/store/22222222222222222222222222222222-qemu-user/bin/qemu-arm");

    // The real pgbin takes these arguments: it stops at the missing archive.
    for words in [native, aarch64] {
        let mut args: Vec<String> = words[1..].to_vec();
        args[1] = "/nonexistent/postgresql-18.6.0-aarch64-unknown-linux-gnu.tar.gz".into();
        let output = pgbin().args(&args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let line = crate::util::one_line_error(&output);
        assert!(line.contains("/nonexistent/"), "pgbin accepts {args:?}: {line}");
    }
    let archives = flake_attr_names(flake.path(), "hydraJobs.archives.x86_64-linux");
    assert!(archives.contains(&"postgresql-18_6-x86_64-linux".to_string()));
}

/// `pgbin matrix` lists exactly the flake's packages per system, and marks
/// for smoke testing exactly the packages that have a `-smoke` check.
#[test]
fn the_ci_matrix_is_the_flakes_package_set() {
    let flake = flake_copy();
    let rows = stdout_json(&pgbin().args(["matrix", "--format", "json"]).output().unwrap());
    let rows = rows.as_array().unwrap();
    for system in ["x86_64-linux", "aarch64-linux", "aarch64-darwin"] {
        let of_system: Vec<&Value> = rows.iter().filter(|r| r["system"] == system).collect();
        let attrs: BTreeSet<String> = of_system.iter().map(|r| r["attr"].as_str().unwrap().to_string()).collect();
        let newest =
            flake_apply(flake.path(), "lib", &format!("lib: builtins.attrValues (lib.aliasesFor \"{system}\")"));
        let newest: BTreeSet<String> = serde_json::from_value(newest).unwrap();
        assert_eq!(attrs, newest, "{system}: the matrix is the newest release of each major per target");
        let smoke: BTreeSet<String> = of_system
            .iter()
            .filter(|r| r["smoke"] == true)
            .map(|r| format!("{}-smoke", r["attr"].as_str().unwrap()))
            .collect();
        let checks: BTreeSet<String> = flake_attr_names(flake.path(), &format!("checks.{system}"))
            .into_iter()
            .filter(|c| c.ends_with("-smoke"))
            .collect();
        assert_eq!(smoke, checks, "{system}");
    }
    let github = pgbin().args(["matrix", "--format", "github", "--version", "17"]).output().unwrap();
    assert!(github.status.success());
    let text = String::from_utf8(github.stdout).unwrap();
    assert_eq!(text.trim().lines().count(), 1, "one line for $GITHUB_OUTPUT");
    let parsed: Value = serde_json::from_str(&text).unwrap();
    let include = parsed["include"].as_array().unwrap();
    assert!(!include.is_empty() && include.iter().all(|r| r["version"] == "17.12"), "17 means the latest 17.x");
    assert!(include.iter().all(|r| r["runner"].as_str().is_some_and(|l| !l.is_empty())));
    let unverified = pgbin().args(["matrix", "--version", "16.15"]).output().unwrap();
    assert_eq!(unverified.status.code(), Some(1));
}

/// The configuration the flake is evaluated under really refuses
/// import-from-derivation (so the flake tests above prove it has none).
#[test]
fn the_evaluation_configuration_refuses_import_from_derivation() {
    let expression = r#"import (builtins.derivation { name = "ifd"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo 1 > $out" ]; })"#;
    let output = nix("nix").args(["eval", "--impure", "--expr", expression]).output().unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("allow-import-from-derivation"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
