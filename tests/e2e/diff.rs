//! `pgbin hash` and `pgbin diff` end to end, on small real fixtures made
//! here (compiled C programs, tar and gzip archives) and on a real
//! PostgreSQL install; hashes are checked against the real `nix hash path`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::pgbin;

const NIX_CONFIG: &str = "experimental-features = nix-command flakes\nsubstituters =";

fn sh(script: &str, dir: &Path) {
    let status = Command::new("sh").arg("-ec").arg(script).current_dir(dir).status().unwrap();
    assert!(status.success(), "{script}");
}

fn nix_hash_path(path: &Path) -> String {
    let output = Command::new("nix").args(["hash", "path"]).arg(path).env("NIX_CONFIG", NIX_CONFIG).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

fn pgbin_hash(path: &Path) -> String {
    let output = pgbin().arg("hash").arg(path).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// Runs `pgbin diff --json A B`; returns the exit code and the report.
fn diff(a: &Path, b: &Path) -> (i32, serde_json::Value) {
    let output = pgbin().args(["diff", "--json"]).arg(a).arg(b).output().unwrap();
    let code = output.status.code().unwrap();
    assert!(code == 0 || code == 1, "trouble: {}", String::from_utf8_lossy(&output.stderr));
    (code, serde_json::from_slice(&output.stdout).unwrap())
}

/// The findings as (path, code, cause).
fn findings(report: &serde_json::Value) -> Vec<(String, String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["code"].as_str().unwrap().to_string(),
                f["cause"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn has(report: &serde_json::Value, path: &str, code: &str, cause: &str) -> bool {
    findings(report).iter().any(|(p, c, k)| p == path && c == code && k == cause)
}

/// A small tree with an executable, a symlink, a text file and an empty directory.
fn small_tree(root: &Path) {
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("share/empty")).unwrap();
    std::fs::write(root.join("bin/tool"), b"#!/bin/sh\necho tool\n").unwrap();
    std::fs::set_permissions(root.join("bin/tool"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("tool", root.join("bin/alias")).unwrap();
    std::fs::write(root.join("share/notes.txt"), b"line one\nline two\n").unwrap();
}

#[test]
fn hash_equals_nix_hash_path_on_files_links_executables_and_empty_directories() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tree");
    small_tree(&root);
    assert_eq!(pgbin_hash(&root), nix_hash_path(&root));
    assert_eq!(pgbin_hash(&root.join("bin/tool")), nix_hash_path(&root.join("bin/tool")));
    let base32 = pgbin().args(["hash", "--base32"]).arg(&root).output().unwrap();
    let nix32 = Command::new("nix")
        .args(["hash", "path", "--base32"])
        .arg(&root)
        .env("NIX_CONFIG", NIX_CONFIG)
        .output()
        .unwrap();
    assert_eq!(base32.stdout, nix32.stdout);

    // An archive of the tree hashes as the tree it holds.
    sh("tar -czf tree.tar.gz tree && tar -cf tree.tar tree", dir.path());
    assert_eq!(pgbin_hash(&dir.path().join("tree.tar.gz")), nix_hash_path(&root));
    assert_eq!(pgbin_hash(&dir.path().join("tree.tar")), nix_hash_path(&root));
}

#[test]
fn hash_equals_nix_hash_path_on_a_postgresql_install() {
    let out = tempfile::tempdir().unwrap();
    let built =
        pgbin().args(["build", "18.6", "--backend", "host", "--json", "--out"]).arg(out.path()).output().unwrap();
    let built = crate::util::json(&built);
    let archive = PathBuf::from(built["archive"].as_str().unwrap());
    let dir = tempfile::tempdir().unwrap();
    sh(&format!("tar xzf {}", archive.display()), dir.path());
    let install = dir.path().join("postgresql-18.6.0-x86_64-unknown-linux-gnu");
    assert_eq!(pgbin_hash(&install), nix_hash_path(&install));
    assert_eq!(pgbin_hash(&archive), nix_hash_path(&install));
    let (code, report) = diff(&archive, &install);
    assert_eq!(code, 0, "an archive and its extracted tree are the same contents: {report}");
}

#[test]
fn tree_differences_are_named_with_their_cause() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    small_tree(&a);
    small_tree(&b);
    let (code, report) = diff(&a, &b);
    assert_eq!(code, 0);
    assert_eq!(report["identical"], true);

    std::fs::remove_file(b.join("share/notes.txt")).unwrap();
    std::fs::write(b.join("share/new.txt"), b"x").unwrap();
    std::fs::remove_file(b.join("bin/alias")).unwrap();
    std::os::unix::fs::symlink("/usr/bin/env", b.join("bin/alias")).unwrap();
    std::fs::set_permissions(b.join("bin/tool"), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let (code, report) = diff(&a, &b);
    assert_eq!(code, 1);
    assert!(has(&report, "share/notes.txt", "only-in-a", "file-set"), "{report}");
    assert!(has(&report, "share/new.txt", "only-in-b", "file-set"), "{report}");
    assert!(findings(&report).iter().any(|(p, c, _)| p == "bin/alias" && c == "symlink-target"), "{report}");
    assert!(has(&report, "bin/tool", "mode", "permissions"), "{report}");
    assert!(report["findings"].as_array().unwrap().iter().all(|f| f["fix"].is_string()));
}

/// What a build under umask 077 does to an install: same bytes, same NAR
/// hash, but private directories and files; still a difference.
#[test]
fn permission_differences_count_even_when_the_nar_hashes_agree() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    small_tree(&a);
    small_tree(&b);
    std::fs::set_permissions(b.join("share"), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    std::fs::set_permissions(b.join("share/notes.txt"), std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let (code, report) = diff(&a, &b);
    assert_eq!(code, 1);
    assert_eq!(report["a"]["nar_hash"], report["b"]["nar_hash"]);
    assert!(has(&report, "share", "mode", "permissions"), "{report}");
    assert!(has(&report, "share/notes.txt", "mode", "permissions"), "{report}");
}

#[test]
fn text_differences_come_with_a_bounded_diff_and_a_cause() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for (root, path) in [(&a, "/tmp/build-aaaa/src"), (&b, "/tmp/build-bbbb/src")] {
        std::fs::create_dir_all(root).unwrap();
        std::fs::write(root.join("Makefile.global"), format!("prefix = /opt/pg\nabs_top_srcdir = {path}\nCC = gcc\n"))
            .unwrap();
    }
    let (code, report) = diff(&a, &b);
    assert_eq!(code, 1);
    assert!(has(&report, "Makefile.global", "content", "build-path"), "{report}");
    let text = report["findings"][0]["diff"].as_str().unwrap();
    assert!(
        text.contains("-abs_top_srcdir = /tmp/build-aaaa/src")
            && text.contains("+abs_top_srcdir = /tmp/build-bbbb/src")
    );
}

/// Two single files (a store path may be one) are compared as themselves:
/// the root is named ".".
#[test]
fn two_single_files_are_compared() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.conf"), dir.path().join("b.conf"));
    std::fs::write(&a, "data_directory = '/build/aaaa/data'\n").unwrap();
    std::fs::write(&b, "data_directory = '/build/aaaa/data'\n").unwrap();
    assert_eq!(diff(&a, &b).0, 0);
    std::fs::write(&b, "data_directory = '/build/bbbb/data'\n").unwrap();
    let (code, report) = diff(&a, &b);
    assert_eq!(code, 1);
    assert!(has(&report, ".", "content", "build-path"), "{report}");
}

#[test]
fn elf_differences_name_the_sections_and_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    for side in ["a", "b"] {
        let src = dir.path().join(format!("build-{side}{side}{side}{side}"));
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("main.c"), "#include <stdio.h>\nint main(void) { puts(__FILE__); return 0; }\n")
            .unwrap();
        std::fs::create_dir_all(dir.path().join(side)).unwrap();
        let out = dir.path().join(side).join("prog");
        let status = Command::new("cc").arg("-O2").arg("-o").arg(&out).arg(src.join("main.c")).status().unwrap();
        assert!(status.success());
    }
    let (code, report) = diff(&dir.path().join("a"), &dir.path().join("b"));
    assert_eq!(code, 1);
    assert!(has(&report, "prog", "content", "build-path"), "{report}");
    let sections: Vec<&str> =
        report["findings"][0]["sections"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert!(sections.contains(&".rodata"), "{sections:?}");
    assert!(sections.contains(&".note.gnu.build-id"), "{sections:?}");

    // One flipped byte inside .text of an otherwise identical copy.
    let c = dir.path().join("c");
    std::fs::create_dir_all(&c).unwrap();
    let mut bytes = std::fs::read(dir.path().join("a/prog")).unwrap();
    let elf = goblin::elf::Elf::parse(&bytes).unwrap();
    let text = elf.section_headers.iter().find(|h| elf.shdr_strtab.get_at(h.sh_name) == Some(".text")).unwrap();
    let at = text.sh_offset as usize + 4;
    bytes[at] ^= 0xff;
    std::fs::write(c.join("prog"), &bytes).unwrap();
    std::fs::set_permissions(c.join("prog"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (code, report) = diff(&dir.path().join("a"), &c);
    assert_eq!(code, 1);
    assert_eq!(findings(&report).len(), 1, "{report}");
    let sections: Vec<&str> =
        report["findings"][0]["sections"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert_eq!(sections, [".text"]);
}

#[test]
fn archive_header_differences_are_named() {
    let dir = tempfile::tempdir().unwrap();
    small_tree(&dir.path().join("tree"));
    let tar = "tar --sort=name --owner=0 --group=0 --numeric-owner --format=gnu";
    sh(
        &format!(
            "{tar} --mtime=@1700000000 -cf base.tar tree && gzip -n -c base.tar > base.tar.gz\n\
             {tar} --mtime=@1700000099 -cf later.tar tree && gzip -n -c later.tar > later.tar.gz\n\
             gzip -c base.tar > stamped.tar.gz\n\
             tar --owner=0 --group=0 --numeric-owner --format=gnu --mtime=@1700000000 --no-recursion -cf reordered.tar \
               tree tree/share tree/share/notes.txt tree/share/empty tree/bin tree/bin/tool tree/bin/alias\n\
             tar --owner=0 --group=0 --numeric-owner --format=gnu --mtime=@1700000000 --no-recursion -cf sorted.tar \
               tree tree/bin tree/bin/alias tree/bin/tool tree/share tree/share/empty tree/share/notes.txt"
        ),
        dir.path(),
    );
    let path = |name: &str| dir.path().join(name);
    let (code, report) = diff(&path("base.tar.gz"), &path("later.tar.gz"));
    assert_eq!(code, 1);
    assert!(findings(&report).iter().any(|(_, c, k)| c == "archive-mtime" && k == "archive-metadata"), "{report}");
    assert_eq!(report["a"]["nar_hash"], report["b"]["nar_hash"], "same contents");

    let (code, report) = diff(&path("base.tar.gz"), &path("stamped.tar.gz"));
    assert_eq!(code, 1);
    let codes: Vec<String> = findings(&report).into_iter().map(|(_, c, _)| c).collect();
    assert!(codes.contains(&"gzip-mtime".to_string()) && codes.contains(&"gzip-name".to_string()), "{codes:?}");

    let (code, report) = diff(&path("sorted.tar"), &path("reordered.tar"));
    assert_eq!(code, 1);
    assert!(findings(&report).iter().any(|(_, c, _)| c == "archive-member-order"), "{report}");

    let (code, _) = diff(&path("base.tar.gz"), &path("base.tar"));
    assert_eq!(code, 0, "a .tar.gz and the .tar inside it hold the same members");
}

#[test]
fn bad_inputs_are_trouble_not_differences() {
    let output = pgbin().args(["diff", "/nonexistent/a", "/nonexistent/b"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    crate::util::one_line_error(&output);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.tar.gz"), [0x1f, 0x8b, 8, 0, 0, 0]).unwrap();
    let output = pgbin().args(["hash"]).arg(dir.path().join("broken.tar.gz")).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    crate::util::one_line_error(&output);
}

/// `.tar.zst` archives and NAR files are inputs like any other: the NAR
/// written by `nix-store --dump`, the zstd archive, the gzip archive and the
/// tree itself all hash and compare as the same contents.
#[test]
fn zstd_archives_and_nar_files_compare_as_their_contents() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tree");
    small_tree(&root);
    sh("tar --sort=name -cf tree.tar tree && gzip -n -k tree.tar", dir.path());
    let tar = std::fs::read(dir.path().join("tree.tar")).unwrap();
    std::fs::write(dir.path().join("tree.tar.zst"), zstd::encode_all(&tar[..], 3).unwrap()).unwrap();
    let dump = Command::new("nix-store").arg("--dump").arg(&root).output().unwrap();
    assert!(dump.status.success());
    std::fs::write(dir.path().join("tree.nar"), &dump.stdout).unwrap();

    let expected = nix_hash_path(&root);
    for input in ["tree.tar.zst", "tree.nar", "tree.tar.gz"] {
        assert_eq!(pgbin_hash(&dir.path().join(input)), expected, "{input}");
    }
    let (code, report) = diff(&dir.path().join("tree.tar.zst"), &dir.path().join("tree.nar"));
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["a"]["format"], "tar-zst");
    assert_eq!(report["b"]["format"], "nar");
    let (code, _) = diff(&dir.path().join("tree.nar"), &root);
    assert_eq!(code, 0);
}
