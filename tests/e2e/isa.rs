//! The ISA check and emulation through the binary: an archive or tree whose ELF files are
//! built for another instruction set than its name says is refused by
//! `pgbin smoke` (before anything runs) and by `pgbin package` (which
//! assembles archives as `pgbin build` does), exit 1, with one line naming
//! the file and what it really is; nothing is published. An archive of
//! another architecture runs under qemu-user through wrappers, and without
//! an emulator the smoke test stops naming the package to install.

use std::io::Write;
use std::path::Path;

use crate::util::{one_line_error, pgbin, repo};

/// A committed fixture of tests/fixtures/isa (one tiny real executable per target).
fn fixture(triple: &str) -> Vec<u8> {
    std::fs::read(repo().join("tests/fixtures/isa").join(format!("{triple}.elf"))).unwrap()
}

/// `postgresql-18.6.0-<triple>.tar.gz` in `dir` holding `bin/postgres`
/// (executable) and text files in `lib/` and `share/`.
fn archive_named(dir: &Path, triple: &str, postgres: &[u8]) -> std::path::PathBuf {
    let stem = format!("postgresql-18.6.0-{triple}");
    let mut builder = tar::Builder::new(Vec::new());
    let text = b"text".as_slice();
    for (name, data, mode) in
        [("bin/postgres", postgres, 0o755), ("lib/README", text, 0o644), ("share/README", text, 0o644)]
    {
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_cksum();
        builder.append_data(&mut header, format!("{stem}/{name}"), data).unwrap();
    }
    let tar = builder.into_inner().unwrap();
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(&tar).unwrap();
    let path = dir.join(format!("{stem}.tar.gz"));
    std::fs::write(&path, encoder.finish().unwrap()).unwrap();
    path
}

#[test]
fn smoke_refuses_an_x86_64_binary_in_an_aarch64_archive() {
    let dir = tempfile::tempdir().unwrap();
    let archive = archive_named(dir.path(), "aarch64-unknown-linux-gnu", &std::fs::read("/bin/true").unwrap());
    let output = pgbin().arg("smoke").arg(&archive).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
    let line = one_line_error(&output);
    assert!(
        line.contains(
            "postgresql-18.6.0-aarch64-unknown-linux-gnu/bin/postgres is x86-64, ELF64, little-endian, not AArch64"
        ),
        "{line}"
    );
    assert!(line.contains("check 'isa'"), "{line}");
}

#[test]
fn smoke_refuses_an_armhf_binary_named_armv5te() {
    let dir = tempfile::tempdir().unwrap();
    let archive = archive_named(dir.path(), "armv5te-unknown-linux-gnueabi", &fixture("armv7-unknown-linux-gnueabihf"));
    let output = pgbin().args(["smoke", "--json"]).arg(&archive).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let checks = report["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 1, "nothing ran after the ISA check: {checks:?}");
    assert_eq!(checks[0]["name"], "isa");
    let detail = checks[0]["detail"].as_str().unwrap();
    assert!(detail.contains("bin/postgres is ARM, ELF32, little-endian, EABI5, hard float"), "{detail}");
    assert!(detail.contains("soft float as armv5te-unknown-linux-gnueabi requires"), "{detail}");
}

#[test]
fn smoke_names_an_archive_whose_target_has_no_known_isa() {
    let dir = tempfile::tempdir().unwrap();
    let archive = archive_named(dir.path(), "sparc64-unknown-linux-gnu", &std::fs::read("/bin/true").unwrap());
    let output = pgbin().arg("smoke").arg(&archive).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(one_line_error(&output).contains("no instruction set is known for target sparc64-unknown-linux-gnu"));
}

#[test]
fn package_refuses_an_x86_64_tree_as_aarch64_and_publishes_nothing() {
    let tree = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tree.path().join("bin")).unwrap();
    std::fs::create_dir_all(tree.path().join("lib")).unwrap();
    std::fs::copy("/bin/true", tree.path().join("bin/postgres")).unwrap();
    let fetched = pgbin().args(["fetch", "18.6"]).output().unwrap();
    assert!(fetched.status.success(), "{}", String::from_utf8_lossy(&fetched.stderr));
    let tarball = String::from_utf8_lossy(&fetched.stdout).trim().to_string();
    let out = tempfile::tempdir().unwrap();
    let output = pgbin()
        .arg("package")
        .arg(tree.path())
        .args(["--built-by", "host", "--version", "18.6", "--target", "aarch64-unknown-linux-gnu"])
        .args(["--source", &tarball, "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
    let line = one_line_error(&output);
    assert!(line.contains("bin/postgres is x86-64, ELF64, little-endian, not AArch64"), "{line}");
    assert!(std::fs::read_dir(out.path()).unwrap().next().is_none(), "nothing published");
}

#[test]
fn smoke_without_an_emulator_names_the_qemu_user_package() {
    let dir = tempfile::tempdir().unwrap();
    let archive = archive_named(dir.path(), "aarch64-unknown-linux-gnu", &fixture("aarch64-unknown-linux-gnu"));
    let output = pgbin().arg("smoke").arg(&archive).env("PATH", "/nonexistent").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let line = one_line_error(&output);
    assert!(
        line.contains("qemu-aarch64 is not on PATH: install the qemu-user package, or pass --emulator PATH"),
        "{line}"
    );
    let output = pgbin().arg("smoke").arg(&archive).args(["--emulator", "/nonexistent/qemu"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(one_line_error(&output).contains("/nonexistent/qemu is not an executable file"));
}

#[test]
fn smoke_runs_an_aarch64_archive_under_qemu_through_wrappers() {
    // bin/postgres is tests/fixtures/isa/aarch64-argv0.elf, which prints its
    // argv[0]: it passes the ISA check, is wrapped and runs emulated (as
    // pg_config it prints no configure flags), and the smoke test then stops
    // at initdb, which the archive lacks.
    let dir = tempfile::tempdir().unwrap();
    let archive = archive_named(dir.path(), "aarch64-unknown-linux-gnu", &fixture("aarch64-argv0"));
    let qemu = std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|d| d.join("qemu-aarch64"))
        .find(|p| p.is_file())
        .expect("qemu-aarch64 (package qemu-user, scripts/setup.sh)");
    for extra in [&[][..], &["--emulator".as_ref(), qemu.as_os_str()]] {
        let output = pgbin().args(["smoke", "--json"]).args(extra).arg(&archive).output().unwrap();
        assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let checks = report["checks"].as_array().unwrap();
        let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["isa", "emulator", "ldd", "pg_config"], "{checks:?}");
        assert!(checks[..3].iter().all(|c| c["passed"] == true), "{checks:?}");
        assert_eq!(checks[1]["detail"], format!("1 executables run under {}", qemu.display()));
        assert!(checks[3]["detail"].as_str().unwrap().contains("cannot run pg_config"), "{checks:?}");
    }
}
