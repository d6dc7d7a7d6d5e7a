//! Archives and install trees made by someone else: whatever their members
//! say, `pgbin hash`, `diff`, `smoke` and `package` never change anything
//! outside their own scratch directories, never write through a link that
//! came with the input, and refuse such an input with one line naming the
//! member (exit 2).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::util::{json, one_line_error, pgbin};

const STEM: &str = "postgresql-18.6.0-x86_64-unknown-linux-gnu";

/// One raw member: name, type, link target, contents, mode.
type RawMember<'a> = (&'a str, tar::EntryType, &'a str, &'a [u8], u32);

/// A tar stream of raw members, written byte by byte so that any name can
/// be stored, as an attacker would.
fn raw_tar(members: &[RawMember]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, link, data, mode) in members {
        let mut header = tar::Header::new_ustar();
        header.as_mut_bytes()[..name.len()].copy_from_slice(name.as_bytes());
        header.as_mut_bytes()[157..157 + link.len()].copy_from_slice(link.as_bytes());
        header.set_entry_type(*kind);
        header.set_mode(*mode);
        header.set_size(data.len() as u64);
        header.set_cksum();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// Expects exit 2 and one line on stderr naming `member`.
fn assert_refused(output: &Output, member: &str) {
    assert_eq!(output.status.code(), Some(2), "stdout: {}", String::from_utf8_lossy(&output.stdout));
    let line = one_line_error(output);
    assert!(line.contains(member), "the message should name '{member}': {line}");
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn a_directory_member_with_dotdot_cannot_chmod_outside_the_scratch_directory() {
    // pgbin extracts under $TMPDIR/pgbin-tree-*/root: two levels up is $TMPDIR.
    // Before, the member was skipped by the extractor but its mode was
    // still applied to the path it named.
    let tmp = tempfile::tempdir().unwrap();
    let victim = tmp.path().join("victim");
    std::fs::create_dir(&victim).unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o755)).unwrap();
    let archive = tmp.path().join("evil.tar");
    std::fs::write(&archive, raw_tar(&[("../../victim/", tar::EntryType::Directory, "", b"", 0o000)])).unwrap();
    let output = pgbin().arg("hash").arg(&archive).env("TMPDIR", tmp.path()).output().unwrap();
    assert_refused(&output, "../../victim");
    assert_eq!(mode_of(&victim), 0o755, "the directory outside kept its mode");
}

#[test]
fn a_file_member_with_dotdot_is_refused_not_silently_left_out() {
    // Before, `pgbin hash` skipped the member and printed a hash of an
    // archive other than the one it was given.
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("evil.tar.gz");
    let tar = raw_tar(&[
        ("top/bin/tool", tar::EntryType::Regular, "", b"tool", 0o755),
        ("top/../../escaped", tar::EntryType::Regular, "", b"outside", 0o644),
    ]);
    std::fs::write(&archive, gzip(&tar)).unwrap();
    let output = pgbin().arg("hash").arg(&archive).env("TMPDIR", tmp.path()).output().unwrap();
    assert_refused(&output, "top/../../escaped");
    assert!(!tmp.path().join("escaped").exists());
    let clean = tmp.path().join("clean.tar");
    std::fs::write(&clean, raw_tar(&[("top/bin/tool", tar::EntryType::Regular, "", b"tool", 0o755)])).unwrap();
    let output = pgbin().arg("diff").arg(&archive).arg(&clean).env("TMPDIR", tmp.path()).output().unwrap();
    assert_refused(&output, "top/../../escaped");
}

#[test]
fn links_to_outside_and_special_members_are_refused_by_hash_and_diff() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let absolute = outside.display().to_string();
    let cases: [(&str, tar::EntryType, &str); 5] = [
        ("top/lib", tar::EntryType::Symlink, absolute.as_str()),
        ("top/lib", tar::EntryType::Symlink, "../../../../../../../../.."),
        ("top/passwd", tar::EntryType::Link, "/etc/passwd"),
        ("top/null", tar::EntryType::Char, ""),
        ("top/pipe", tar::EntryType::Fifo, ""),
    ];
    for (i, (name, kind, link)) in cases.iter().enumerate() {
        let archive = tmp.path().join(format!("case-{i}.tar"));
        let mut members = vec![(*name, *kind, *link, &b""[..], 0o755)];
        // A later member written through the link, if the link were kept.
        members.push(("top/lib/libssl.so.3", tar::EntryType::Regular, "", b"not a library", 0o644));
        std::fs::write(&archive, raw_tar(&members)).unwrap();
        for command in ["hash", "diff"] {
            let mut run = pgbin();
            run.arg(command).arg(&archive).env("TMPDIR", tmp.path());
            if command == "diff" {
                run.arg(&archive);
            }
            assert_refused(&run.output().unwrap(), name);
        }
    }
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0, "nothing was written through a link");
}

/// A copy of a real ELF executable in `dir`, as a file pgbin must not touch.
fn victim_executable(dir: &Path) -> (PathBuf, Vec<u8>) {
    let victim = dir.join("victim-true");
    std::fs::copy("/bin/true", &victim).unwrap();
    (victim.clone(), std::fs::read(&victim).unwrap())
}

#[test]
fn smoke_never_rewrites_a_file_that_an_archive_links_to() {
    // `pgbin smoke --interpreter` patches bin/* of its scratch copy; before,
    // a bin/ entry that was a link to a file elsewhere was patched in place.
    let tmp = tempfile::tempdir().unwrap();
    let (victim, original) = victim_executable(tmp.path());
    let postgres = std::fs::read("/bin/true").unwrap();
    let tar = raw_tar(&[
        (&format!("{STEM}/bin/postgres"), tar::EntryType::Regular, "", &postgres, 0o755),
        (&format!("{STEM}/bin/initdb"), tar::EntryType::Symlink, &victim.display().to_string(), b"", 0o777),
    ]);
    let archive = tmp.path().join(format!("{STEM}.tar.gz"));
    std::fs::write(&archive, gzip(&tar)).unwrap();
    let loader = "/lib64/ld-linux-x86-64.so.2";
    let output = pgbin().arg("smoke").arg(&archive).args(["--interpreter", loader]).output().unwrap();
    assert_refused(&output, &format!("{STEM}/bin/initdb"));
    assert_eq!(std::fs::read(&victim).unwrap(), original, "the linked file is unchanged");
}

#[test]
fn package_refuses_a_tree_whose_lib_links_elsewhere() {
    // `pgbin package` copies the tree and bundles libraries into its lib/;
    // before, a lib/ that was a link to another directory received them, so
    // the archive was not self-contained while its manifest said it was.
    let built = tempfile::tempdir().unwrap();
    let answer = json(
        &pgbin().args(["build", "18.6", "--backend", "host", "--json", "--out"]).arg(built.path()).output().unwrap(),
    );
    let source = json(&pgbin().args(["fetch", "18.6", "--json"]).output().unwrap());
    let tmp = tempfile::tempdir().unwrap();
    let file = std::fs::File::open(answer["archive"].as_str().unwrap()).unwrap();
    tar::Archive::new(flate2::read::GzDecoder::new(file)).unpack(tmp.path()).unwrap();
    let tree = tmp.path().join(STEM);
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::rename(tree.join("lib"), &elsewhere).unwrap();
    for entry in std::fs::read_dir(&elsewhere).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("libssl") || name.starts_with("libcrypto") {
            std::fs::remove_file(&path).unwrap();
        }
    }
    std::os::unix::fs::symlink(&elsewhere, tree.join("lib")).unwrap();
    let before: Vec<_> = std::fs::read_dir(&elsewhere).unwrap().map(|e| e.unwrap().file_name()).collect();
    let out = tmp.path().join("out");
    let output = pgbin()
        .arg("package")
        .arg(&tree)
        .args(["--version", "18.6", "--built-by", "host", "--source"])
        .arg(source["path"].as_str().unwrap())
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_refused(&output, "lib");
    let after: Vec<_> = std::fs::read_dir(&elsewhere).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(before.len(), after.len(), "nothing was bundled into the directory lib/ links to");
    assert!(!out.join(format!("{STEM}.tar.gz")).exists());
}

#[test]
fn json_output_for_a_path_that_is_not_utf8_is_an_error_not_a_panic() {
    // Before, serialising the path panicked (exit 101) in every `--json`
    // command but `sign`.
    use std::os::unix::ffi::OsStrExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(std::ffi::OsStr::from_bytes(b"caf\xe9"));
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("file"), b"x").unwrap();
    let output = pgbin().arg("hash").arg(&dir).arg("--json").output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(one_line_error(&output).contains("cannot write the answer as JSON"));
    let text = pgbin().arg("hash").arg(&dir).output().unwrap();
    assert!(text.status.success(), "the text output works: {}", String::from_utf8_lossy(&text.stderr));
}
