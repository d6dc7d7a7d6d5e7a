//! The Nix backend end to end with the real Nix, building real PostgreSQL
//! 18.6: the real flake.nix and nix/*.nix, with nixpkgs replaced by a
//! buildable stand-in that uses the host's toolchain and libraries
//! (tests/nix/host-nixpkgs; nixpkgs cannot be fetched here). `pgbin build
//! --backend nix` seeds the verified source, Nix builds the install tree
//! with the generic builder and the archive with pgbin inside the build,
//! and the result is smoke-tested and published; `pgbin repro --backend
//! nix` then rebuilds both derivations and Nix finds them identical.
//!
//! The same for aarch64 in cross mode: the stand-in's
//! `pkgsCross.aarch64-multiplatform` (Debian's cross gcc over an arm64
//! sysroot laid out as a store path) runs the real configure with
//! `--build`/`--host`, pgbin packages the aarch64 tree inside Nix, and the
//! flake's smoke check runs it under qemu-user.
//!
//! What this does not show: anything about nixpkgs' own toolchain.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{json, pgbin_in, repo};

/// The two builds share store paths (the driver, the stand-in's host
/// libraries) and each first deletes its outputs from earlier runs, which
/// fails while the other holds them: they run one at a time.
static NIX_STORE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn nix_store_to_myself() -> std::sync::MutexGuard<'static, ()> {
    NIX_STORE.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

const NIX_CONFIG: &str = "experimental-features = nix-command flakes\nsubstituters =";
const ARCHIVE: &str = "postgresql-18.6.0-x86_64-unknown-linux-gnu.tar.gz";

fn run(cmd: &mut Command) -> String {
    let output = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(output.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

/// `nix eval --raw FLAKE#ATTRIBUTE`.
fn nix_eval(flake: &Path, attribute: &str) -> String {
    run(Command::new("nix")
        .env("NIX_CONFIG", NIX_CONFIG)
        .args(["eval", "--raw"])
        .arg(format!("{}#{attribute}", flake.display())))
}

/// A scratch copy of the repository whose flake.lock pins nixpkgs to a copy
/// of the host stand-in that carries the pgbin binary under test.
///
/// With `sysroot`, the stand-in gets a copy of it as `aarch64-sysroot`, from
/// which it builds `pkgsCross.aarch64-multiplatform`.
fn flake_with_host_nixpkgs(root: &Path, sysroot: Option<&Path>) -> PathBuf {
    let scratch = root.join("repo");
    let stand_in = root.join("host-nixpkgs");
    std::fs::create_dir(&scratch).unwrap();
    for name in ["data", "keys", "evidence", "nix", "flake.nix", "Cargo.toml", "Cargo.lock"] {
        run(Command::new("cp").arg("-r").arg(repo().join(name)).arg(&scratch));
    }
    run(Command::new("cp").arg("-r").arg(repo().join("tests/nix/host-nixpkgs")).arg(&stand_in));
    let [lib_tests, bin_tests] = unit_test_binaries();
    for (from, name) in [
        (Path::new(env!("CARGO_BIN_EXE_pgbin")), "pgbin-binary"),
        (&lib_tests, "pgbin-lib-tests"),
        (&bin_tests, "pgbin-bin-tests"),
    ] {
        std::fs::copy(from, stand_in.join(name)).unwrap();
        // Without debug information, so that Nix copies less.
        run(Command::new("strip").arg("--strip-debug").arg(stand_in.join(name)));
    }
    if let Some(sysroot) = sysroot {
        run(Command::new("cp").arg("-a").arg(sysroot).arg(stand_in.join("aarch64-sysroot")));
    }
    // A path input is locked by its NAR hash. Not by its lastModified:
    // Nix 2.8 computes 0 for a large tree (a debug build's binary, the
    // sysroot) and then refuses a lock that records the real one
    // ("'lastModified' attribute mismatch").
    let nar_hash = run(Command::new(env!("CARGO_BIN_EXE_pgbin")).arg("hash").arg(&stand_in));
    let lock = serde_json::json!({
        "nodes": {
            "nixpkgs": {
                "locked": { "narHash": nar_hash, "path": stand_in, "type": "path" },
                "original": { "owner": "NixOS", "ref": "nixos-25.11", "repo": "nixpkgs", "type": "github" }
            },
            "root": { "inputs": { "nixpkgs": "nixpkgs" } }
        },
        "root": "root",
        "version": 7
    });
    std::fs::write(scratch.join("flake.lock"), lock.to_string()).unwrap();
    scratch
}

/// pgbin's unit test binaries (of the library and of the binary), which the
/// stand-in's buildRustPackage runs in its check phase: the newest
/// `pgbin-<hash>` executables beside this test binary (`cargo test` builds
/// them in the same run) that list a test of each.
fn unit_test_binaries() -> [PathBuf; 2] {
    let deps = std::env::current_exe().unwrap().parent().unwrap().to_path_buf();
    let mut candidates: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&deps)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.strip_prefix("pgbin-")
                .is_some_and(|hash| hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
        })
        .map(|p| (std::fs::metadata(&p).unwrap().modified().unwrap(), p))
        .collect();
    candidates.sort();
    let listing = |path: &Path| {
        let output = Command::new(path).args(["--list", "--format", "terse"]).output();
        output.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default()
    };
    let newest_listing = |marker: &str| {
        candidates
            .iter()
            .rev()
            .map(|(_, p)| p)
            .find(|p| listing(p).lines().any(|line| line == marker))
            .cloned()
            .unwrap_or_else(|| {
                panic!(
                    "no unit test binary with {marker} in {}: run cargo test --release --lib --bins --no-run",
                    deps.display()
                )
            })
    };
    [
        newest_listing("build::apt::tests::dpkg_knows_the_c_library: test"),
        newest_listing("tests::cli_definition_is_consistent: test"),
    ]
}

/// The stand-in builds with the host's toolchain and -dev libraries: the
/// packages a host build of 18.6 needs, installed here when missing (as
/// `pgbin build --backend host` does).
fn ensure_host_packages() {
    let repo = pgbin::data::repo::Repo::discover(Some(&repo())).unwrap();
    let project = pgbin::source::project::Project::load(&repo).unwrap();
    let target = project.matrix.target("x86_64-unknown-linux-gnu").unwrap();
    let packages = project.matrix.host_packages(
        target,
        pgbin::data::version::Version::new(18, 6),
        pgbin::build::inputs::native_arch(),
    );
    let missing = pgbin::build::apt::missing_packages(&packages);
    if missing.is_empty() {
        return;
    }
    assert!(pgbin::build::smoke::running_as_root(), "run: sudo apt-get install -y {}", missing.join(" "));
    if let Err(reason) = pgbin::build::apt::install_packages(&missing, false) {
        panic!("apt-get install -y {} failed: {reason}", missing.join(" "));
    }
}

#[test]
fn nix_backend_builds_smoke_tests_and_reproduces_18_6() {
    let _store = nix_store_to_myself();
    ensure_host_packages();
    let root = tempfile::tempdir().unwrap();
    let scratch = flake_with_host_nixpkgs(root.path(), None);
    let nix_eval = |attribute: &str| nix_eval(&scratch, attribute);
    let tree_drv = nix_eval("postgresql-18_6-x86_64-linux.drvPath");
    let host_libraries =
        self::nix_eval(&root.path().join("host-nixpkgs"), "legacyPackages.x86_64-linux.hostLibraries.outPath");
    let outputs = [
        nix_eval("postgresql-18_6-x86_64-linux.outPath"),
        nix_eval("postgresql-18_6-x86_64-linux.archive.outPath"),
        host_libraries,
    ];
    // Earlier runs' outputs go first, so that Nix really builds here (and
    // copies this machine's current libraries).
    // Paths an earlier run left that refer to these (the driver built
    // against the host libraries, other archives) would keep them alive.
    let delete = || {
        let checks = outputs.iter().map(|o| format!("{o}.check")).filter(|c| Path::new(c).exists());
        let existing: Vec<&String> = outputs.iter().filter(|o| Path::new(o.as_str()).exists()).collect();
        let referrers = Command::new("nix-store").args(["--query", "--referrers-closure"]).args(&existing).output();
        let referrers = referrers.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
        let _ = Command::new("nix-store")
            .arg("--delete")
            .args(referrers.lines().filter(|l| !existing.is_empty() && !l.is_empty()))
            .args(&outputs)
            .args(checks)
            .output();
    };
    delete();
    for output in &outputs {
        assert!(!Path::new(output).exists(), "{output} is still in the store; delete it to run this test");
    }

    // Build: everything happens inside Nix; pgbin smoke-tests and publishes.
    let dist = root.path().join("dist");
    let output = pgbin_in(&scratch)
        .env("NIX_CONFIG", NIX_CONFIG)
        .args(["build", "18.6", "--backend", "nix", "--out"])
        .arg(&dist)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    for suffix in ["", ".sha256", ".manifest.json", ".intoto.json", ".spdx.json"] {
        assert!(dist.join(format!("{ARCHIVE}{suffix}")).is_file(), "{ARCHIVE}{suffix}");
    }
    crate::util::assert_consumer_extracts_every_path(&dist.join(ARCHIVE), &dist.join(format!("{ARCHIVE}.sha256")));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dist.join(format!("{ARCHIVE}.manifest.json"))).unwrap()).unwrap();
    assert_eq!(manifest["backend"], "nix");
    // Libraries were found through store RUNPATHs and bundled.
    let bundled = manifest["bundled_libraries"].as_array().unwrap();
    assert!(bundled.iter().any(|b| b["name"].as_str().unwrap().starts_with("libicuuc.so.")), "{bundled:?}");
    assert!(bundled.iter().all(|b| b["origin"].as_str().unwrap().starts_with("/nix/store/")), "{bundled:?}");
    let derivation = run(Command::new("nix-store").args(["--query", "--deriver"]).arg(&outputs[0]));
    assert_eq!(derivation, tree_drv, "the install tree came from the generic builder's derivation");
    // The provenance records the archive's derivation and its whole closure,
    // as the store has them, so that `pgbin diff` can compare inputs.
    let statement: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dist.join(format!("{ARCHIVE}.intoto.json"))).unwrap()).unwrap();
    let definition = &statement["predicate"]["buildDefinition"];
    let archive_drv = run(Command::new("nix-store").args(["--query", "--deriver"]).arg(&outputs[1]));
    assert_eq!(definition["internalParameters"]["derivation"], archive_drv.as_str());
    let recorded: std::collections::BTreeSet<&str> = definition["resolvedDependencies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["annotations"]["nixStorePath"] == true)
        .map(|d| d["uri"].as_str().unwrap())
        .collect();
    let requisites = run(Command::new("nix-store").args(["--query", "--requisites"]).arg(&archive_drv));
    let expected: std::collections::BTreeSet<&str> = requisites.lines().filter(|p| *p != archive_drv).collect();
    assert_eq!(recorded, expected);
    assert!(recorded.contains(tree_drv.as_str()), "the install tree's derivation is an input of the archive's");

    // Repro: Nix rebuilds the install tree and the archive and compares.
    let repro = root.path().join("repro");
    let output = pgbin_in(&scratch)
        .env("NIX_CONFIG", NIX_CONFIG)
        .args(["repro", "18.6", "--backend", "nix", "--json", "--out"])
        .arg(&repro)
        .output()
        .unwrap();
    let summary = json(&output);
    assert_eq!(summary["identical"], true, "{summary:#}");
    assert_eq!(summary["compared"], "archive");
    let sha = summary["archive_sha256"][0].as_str().unwrap();
    assert!(sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()), "{sha}");
    let published = std::fs::read_to_string(dist.join(format!("{ARCHIVE}.sha256"))).unwrap();
    assert_eq!(published.split_whitespace().next(), Some(sha), "the archive pgbin build published");
    // The install tree was really rebuilt (Nix logs its check), not reused.
    let rebuild_log = std::fs::read_to_string(repro.join("nix-rebuild-tree.log")).unwrap();
    assert!(rebuild_log.contains("checking outputs of") && rebuild_log.contains("make"), "{rebuild_log}");
    assert!(repro.join("report.json").is_file());

    delete();
}

const CROSS_TARGET: &str = "aarch64-unknown-linux-gnu";
const CROSS_ARCHIVE: &str = "postgresql-18.6.0-aarch64-unknown-linux-gnu.tar.gz";

/// The arm64 sysroot a host cross build of 18.6 uses (unpacked from the
/// archive's signed packages by pgbin, into the default cache, where the
/// host backend's cross test finds the same one).
fn arm64_sysroot() -> PathBuf {
    let repo = pgbin::data::repo::Repo::discover(Some(&repo())).unwrap();
    let project = pgbin::source::project::Project::load(&repo).unwrap();
    let target = project.matrix.target(CROSS_TARGET).unwrap();
    let packages = project.matrix.sysroot_packages(
        target,
        pgbin::data::version::Version::new(18, 6),
        pgbin::build::inputs::native_arch(),
    );
    let progress = &mut pgbin::util::progress::Silent;
    pgbin::build::apt::ensure_architectures(&packages, progress).unwrap();
    let cache = pgbin::source::fetch::default_cache_dir();
    pgbin::build::sysroot::prepare(&cache, "arm64", &packages, progress).unwrap().root
}

#[test]
fn nix_backend_cross_builds_18_6_for_aarch64_through_the_real_flake() {
    let _store = nix_store_to_myself();
    let sysroot = arm64_sysroot();
    let root = tempfile::tempdir().unwrap();
    let scratch = flake_with_host_nixpkgs(root.path(), Some(&sysroot));
    let attr = "postgresql-18_6-aarch64-linux";
    let nix_eval = |attribute: &str| nix_eval(&scratch, attribute);
    // The host-suffixed name nixpkgs gives what a cross set builds.
    assert_eq!(nix_eval(&format!("{attr}.name")), "postgresql-aarch64-unknown-linux-gnu-18.6");
    // The stand-in's cross compiler and the target's libraries (a copy of
    // the sysroot), removed after the outputs.
    let toolchain: Vec<String> = ["stdenv.cc.outPath", "stdenv.cc.libc.outPath"]
        .iter()
        .map(|path| {
            let attribute = format!("legacyPackages.x86_64-linux.pkgsCross.aarch64-multiplatform.{path}");
            self::nix_eval(&root.path().join("host-nixpkgs"), &attribute)
        })
        .collect();
    let outputs = [
        nix_eval(&format!("{attr}.outPath")),
        nix_eval(&format!("{attr}.archive.outPath")),
        nix_eval(&format!("{attr}.tests.smoke.outPath")),
    ];
    assert_eq!(
        nix_eval(&format!("{attr}.tests.smoke.drvPath")),
        nix_eval(&format!("checks.x86_64-linux.{attr}-smoke.drvPath")),
        "the smoke test pgbin runs is the flake check"
    );
    let delete = || {
        let _ = Command::new("nix-store").arg("--delete").args(&outputs).output();
        let _ = Command::new("nix-store").arg("--delete").args(&toolchain).output();
    };
    delete();
    for output in &outputs {
        assert!(!Path::new(output).exists(), "{output} is still in the store; delete it to run this test");
    }

    // Configure, build, packaging and the smoke test all happen in Nix.
    let dist = root.path().join("dist");
    let output = pgbin_in(&scratch)
        .env("NIX_CONFIG", NIX_CONFIG)
        .args(["build", "18.6", "--backend", "nix", "--target", CROSS_TARGET, "--json", "--out"])
        .arg(&dist)
        .output()
        .unwrap();
    let answer = json(&output);
    let summary = answer["summary"].as_str().unwrap_or_default();
    assert!(summary.contains("smoke-tested under the target's emulator"), "{answer:#}");
    for output in &outputs {
        assert!(Path::new(output).exists(), "{output} was built");
    }
    crate::util::assert_consumer_extracts_every_path(
        &dist.join(CROSS_ARCHIVE),
        &dist.join(format!("{CROSS_ARCHIVE}.sha256")),
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dist.join(format!("{CROSS_ARCHIVE}.manifest.json"))).unwrap()).unwrap();
    assert_eq!(manifest["backend"], "nix");
    assert_eq!(manifest["target"], CROSS_TARGET);
    assert_eq!(manifest["isa"]["elf"], "AArch64, ELF64, little-endian");
    assert_eq!(manifest["isa"]["interpreter"], "/lib/ld-linux-aarch64.so.1");
    let bundled = manifest["bundled_libraries"].as_array().unwrap();
    let names: Vec<&str> = bundled.iter().map(|b| b["name"].as_str().unwrap()).collect();
    for library in ["libssl.so.3", "libcrypto.so.3", "libxml2.so.2", "liblz4.so.1", "libzstd.so.1", "libuuid.so.1"] {
        assert!(names.contains(&library), "{library} not bundled: {names:?}");
    }
    for library in bundled {
        let origin = library["origin"].as_str().unwrap();
        assert!(origin.starts_with("/nix/store/") && origin.contains("/aarch64-linux-gnu/"), "{library}");
        // Its store path's name without the host platform's suffix, as
        // the native set's `host-libraries`.
        assert_eq!(library["package"], "host-libraries", "{library}");
    }

    // What configure was given, as the archive's own pg_config says under
    // qemu: the cross platforms nixpkgs passes and the target-prefixed tools
    // its setup hooks export.
    let (_dir, cross_root) = crate::util::extract(&dist.join(CROSS_ARCHIVE));
    let configure = run(Command::new("qemu-aarch64")
        .env("QEMU_LD_PREFIX", &sysroot)
        .arg(cross_root.join("bin/pg_config"))
        .arg("--configure"));
    for flag in [
        "'--build=x86_64-unknown-linux-gnu'",
        "'--host=aarch64-unknown-linux-gnu'",
        "'CC=aarch64-unknown-linux-gnu-cc'",
        "'PKG_CONFIG=aarch64-unknown-linux-gnu-pkg-config'",
    ] {
        assert!(configure.contains(flag), "{flag} not in {configure}");
    }
    let makefile = std::fs::read_to_string(cross_root.join("lib/pgxs/src/Makefile.global")).unwrap();
    assert!(makefile.contains("\nZIC = \n") && !makefile.contains("qemu"), "PGXS records no emulated zic");
    assert!(makefile.contains("\nLDFLAGS_EX_BE = -Wl,--export-dynamic\n"), "the flake's answer to configure's guess");

    // The native build of the same release: exported symbols (configure's
    // guess for -Wl,--export-dynamic under cross loses them unless the
    // flake passes it) and time zone files must be what it has.
    let native_out = root.path().join("native");
    let native = json(
        &crate::util::pgbin()
            .args(["build", "18.6", "--backend", "host", "--json", "--out"])
            .arg(&native_out)
            .output()
            .unwrap(),
    );
    let (_native_dir, native_root) = crate::util::extract(Path::new(native["archive"].as_str().unwrap()));
    crate::util::assert_cross_build_matches_native(&cross_root, &native_root);

    delete();
}
