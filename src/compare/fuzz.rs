//! Fuzz target of [`super::tree::open`] on arbitrary bytes written to a
//! file: tar, gzip and zstd tar, NAR and plain files, each built from a
//! generated tree and then mutated, so that detection, decompression and
//! extraction all see hostile input. It is also a differential test: an
//! archive read into memory and the same archive extracted to disk are
//! accepted or refused alike, with the same NAR hash and members.

use std::io::Write;

use proptest::prelude::*;

use super::tree::{Contents, Format, open, open_on_disk};
use crate::nix::nar;
use crate::util::fuzz;

/// A small tree as a list of members.
#[derive(Debug, Clone)]
enum Member {
    File(String, Vec<u8>, u32),
    Dir(String),
    Link(String, String),
}

fn members() -> impl Strategy<Value = Vec<Member>> {
    let path = prop::sample::select(vec!["top", "top/bin", "top/bin/tool", "top/lib/a.so", "x", "top/share/f"]);
    let member = prop_oneof![
        (path.clone(), prop::collection::vec(any::<u8>(), 0..64), prop::sample::select(vec![0o644, 0o755]))
            .prop_map(|(p, c, m)| Member::File(p.to_string(), c, m)),
        path.clone().prop_map(|p| Member::Dir(p.to_string())),
        (path, prop::sample::select(vec!["tool", "../lib/a.so", "bin"]))
            .prop_map(|(p, t)| Member::Link(p.to_string(), t.to_string())),
    ];
    prop::collection::vec(member, 0..6)
}

/// The members as an uncompressed tar archive.
fn tar(members: &[Member]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for member in members {
        let mut header = tar::Header::new_gnu();
        match member {
            Member::File(path, contents, mode) => {
                header.set_size(contents.len() as u64);
                header.set_mode(*mode);
                builder.append_data(&mut header, path, &contents[..]).unwrap();
            }
            Member::Dir(path) => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                builder.append_data(&mut header, path, std::io::empty()).unwrap();
            }
            Member::Link(path, target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                builder.append_link(&mut header, path, target).unwrap();
            }
        }
    }
    builder.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// The NAR of the members unpacked as a tree (a NAR has no duplicates).
fn nar_of(members: &[Member]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let _ = tar::Archive::new(&tar(members)[..]).unpack(&root);
    let mut out = Vec::new();
    nar::write_nar(&root, &mut out).unwrap();
    out
}

/// An input of each kind, before mutation.
fn input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        members().prop_map(|m| tar(&m)),
        members().prop_map(|m| gzip(&tar(&m))),
        members().prop_map(|m| zstd::encode_all(&tar(&m)[..], 1).unwrap()),
        members().prop_map(|m| nar_of(&m)),
        prop::collection::vec(any::<u8>(), 0..600),
    ]
}

#[test]
fn a_tar_member_named_with_a_newline_and_a_bad_checksum_is_an_error() {
    let mut header = [0u8; 512];
    header[..3].copy_from_slice(b"a\nb");
    header[100..108].copy_from_slice(b"0000644\0");
    header[148..156].copy_from_slice(b"garbage!");
    header[257..263].copy_from_slice(b"ustar\0");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("input.tar");
    std::fs::write(&path, [&header[..], &[0u8; 1024]].concat()).unwrap();
    let error = open(&path, dir.path()).unwrap_err().to_string();
    assert!(fuzz::one_line(&error), "{error}");
}

/// Found by this target: the streaming path stopped at the tar's end and
/// never read the gzip trailer, so a wrong checksum went unnoticed there
/// while the in-memory path refused it. Both now read to the end.
#[test]
fn a_gzip_archive_with_a_wrong_checksum_is_refused_in_memory_and_on_disk() {
    let mut bytes = gzip(&tar(&[Member::File("top/bin/tool".into(), b"contents".to_vec(), 0o755)]));
    let crc = bytes.len() - 8;
    bytes[crc] ^= 1;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("input.tar.gz");
    std::fs::write(&path, &bytes).unwrap();
    for error in [open(&path, dir.path()).unwrap_err(), open_on_disk(&path, dir.path()).unwrap_err()] {
        assert!(error.to_string().contains("checksum"), "{error}");
    }
}

proptest! {
    #![proptest_config(fuzz::config(768))]

    #[test]
    fn fuzz_tree_open(original in input(), mutations in prop::collection::vec(fuzz::mutation(), 0..4)) {
        let bytes = fuzz::apply(&original, &mutations);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("input");
        std::fs::write(&path, &bytes).unwrap();
        let scratch = dir.path().join("scratch");
        std::fs::create_dir(&scratch).unwrap();
        match (open(&path, &scratch), open_on_disk(&path, &scratch)) {
            (Ok(tree), Ok(on_disk)) => {
                let root = on_disk.disk_root().unwrap();
                prop_assert!(root.starts_with(&scratch) || on_disk.format == Format::File);
                if tree.format.is_tar() {
                    prop_assert!(matches!(tree.contents, Contents::Memory(_)), "a small archive is read into memory");
                    prop_assert_eq!(tree.nar_hash().unwrap(), on_disk.nar_hash().unwrap(), "memory and disk agree");
                    prop_assert_eq!(&tree.members, &on_disk.members);
                }
                if on_disk.format == Format::Nar && root.ends_with("root") {
                    use sha2::Digest;
                    let digest = nar::hash_path(root).unwrap();
                    prop_assert_eq!(digest, <[u8; 32]>::from(sha2::Sha256::digest(&bytes)), "NAR hash of a NAR");
                }
            }
            (Err(error), Err(_)) => prop_assert!(fuzz::one_line(&error.to_string()), "{}", error),
            (memory, disk) => prop_assert!(false, "memory {:?} but disk {:?}", memory.map(|t| t.format), disk.map(|t| t.format)),
        }
    }
}
