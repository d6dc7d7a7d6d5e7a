//! Making an install tree relocatable and self-contained.
//!
//! Every shared library the binaries and modules need, except the C
//! library's own (present on every target system), is copied into `lib/`;
//! RUNPATHs are rewritten with patchelf to `$ORIGIN`-relative paths (`bin/`
//! → `$ORIGIN/../lib`, `lib/` → `$ORIGIN`); then every ELF file is checked,
//! and every file is scanned for forbidden paths (the build and staging
//! directories). Any leftover is an error.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;

use crate::build::elf::{self, ElfInfo};
use crate::data::matrix::Target;
use crate::nix::store::HASH_LEN;
use crate::util::io::{IoError, context};

/// Libraries of the C library itself: never bundled.
const LIBC_FAMILY: &[&str] = &[
    "libc.so.6",
    "libm.so.6",
    "libdl.so.2",
    "libpthread.so.0",
    "librt.so.1",
    "libutil.so.1",
    "libresolv.so.2",
    "libanl.so.1",
    "ld-linux-x86-64.so.2",
    "ld-linux-aarch64.so.1",
    "libc.musl-x86_64.so.1",
    "libc.musl-aarch64.so.1",
    // musl as nixpkgs builds it (pkgs/os-specific/linux/musl/default.nix
    // keeps musl's own Makefile, which links libc.so without -soname):
    // $out/lib/libc.so has no DT_SONAME, so what links against it records
    // `NEEDED libc.so`. Alpine's musl is given the soname libc.musl-ARCH.so.1.
    "libc.so",
];

/// Whether a library is part of the C library and stays external: one of
/// [`LIBC_FAMILY`], or the program interpreter of a known target (which
/// some libraries name in `DT_NEEDED`: `ld-linux-armhf.so.3`, `ld-linux.so.2`).
pub fn is_libc(name: &str) -> bool {
    LIBC_FAMILY.contains(&name)
        || name.starts_with("libc.musl-")
        || crate::data::isa::ISAS.iter().any(|isa| isa.interpreter.rsplit('/').next() == Some(name))
}

/// A library copied into the archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct BundledLibrary {
    /// File name in `lib/` (its soname).
    pub name: String,
    /// Where it was copied from.
    pub origin: String,
    /// Debian package that owns it, when known.
    pub package: Option<String>,
    /// That package's version.
    pub package_version: Option<String>,
}

/// One ELF file of the relocated tree.
#[derive(Debug, Clone, Serialize)]
pub struct ElfFile {
    /// Path relative to the prefix.
    pub path: String,
    /// What it contains after relocation.
    #[serde(flatten)]
    pub info: ElfInfo,
}

/// What relocation did.
#[derive(Debug, Clone, Serialize)]
pub struct Relocation {
    /// Libraries copied in, sorted by name.
    pub bundled: Vec<BundledLibrary>,
    /// Every ELF file, sorted by path.
    pub elf_files: Vec<ElfFile>,
    /// Highest `GLIBC_x.y` required by any file, as "x.y".
    pub glibc_floor: Option<String>,
    /// Names of Nix store paths whose references were neutralised.
    pub scrubbed_store_references: Vec<String>,
}

/// Tells which distribution package (and version) a system library came from.
pub type DescribeOrigin<'a> = dyn Fn(&Path) -> (Option<String>, Option<String>) + 'a;

/// Why relocation failed.
#[derive(Debug, thiserror::Error)]
pub enum RelocateError {
    /// Local I/O.
    #[error(transparent)]
    Io(#[from] IoError),
    /// An ELF file could not be read.
    #[error(transparent)]
    Elf(#[from] elf::ElfError),
    /// A needed library was not found.
    #[error("{needed_by} needs {library}, which is not {searched}")]
    Missing {
        /// The library.
        library: String,
        /// Who needs it.
        needed_by: String,
        /// Where it was looked for.
        searched: String,
    },
    /// patchelf failed.
    #[error("patchelf failed on {file}: {message}")]
    Patchelf {
        /// The file.
        file: String,
        /// Its stderr.
        message: String,
    },
    /// A check after relocation failed.
    #[error("relocation check failed: {0}")]
    Check(String),
}

/// The machine's shared-library index (`ldconfig -p`): soname → path, for
/// this machine's architecture.
pub fn system_libraries() -> Result<BTreeMap<String, PathBuf>, RelocateError> {
    let output =
        Command::new("ldconfig").arg("-p").output().or_else(|_| Command::new("/sbin/ldconfig").arg("-p").output());
    let output = output.map_err(context("cannot run ldconfig -p"))?;
    let arch_tag = match std::env::consts::ARCH {
        "x86_64" => "x86-64",
        "aarch64" => "AArch64",
        other => other,
    };
    let mut index = BTreeMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines().skip(1) {
        let Some((left, path)) = line.trim().split_once(" => ") else { continue };
        let Some((name, tags)) = left.split_once(" (") else { continue };
        if tags.contains(arch_tag) {
            index.entry(name.to_string()).or_insert_with(|| PathBuf::from(path));
        }
    }
    Ok(index)
}

/// The `$ORIGIN`-relative RUNPATH for a file at `relative` (from the prefix).
pub fn runpath_for(relative: &Path) -> String {
    let depth = relative.parent().map_or(0, |p| p.components().count());
    match (relative.starts_with("lib"), depth) {
        (true, 1) => "$ORIGIN".to_string(),
        (true, d) => format!("$ORIGIN/{}", vec![".."; d - 1].join("/")),
        (false, d) => format!("$ORIGIN/{}/lib", vec![".."; d.max(1)].join("/")),
    }
}

fn elf_files(prefix: &Path) -> Result<Vec<PathBuf>, RelocateError> {
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(prefix).sort_by_file_name() {
        let entry = entry.map_err(|e| IoError::new("cannot walk the install tree", e))?;
        if entry.file_type().is_file() && elf::file_is_elf(entry.path()) {
            files.push(entry.path().strip_prefix(prefix).expect("walk stays under prefix").to_path_buf());
        }
    }
    Ok(files)
}

/// Where the libraries a file needs are looked up.
pub enum LibrarySearch<'a> {
    /// The machine's shared-library index (host builds).
    System(&'a BTreeMap<String, PathBuf>),
    /// Each file's own RUNPATH (Nix builds, whose RUNPATHs name store paths).
    Runpath,
}

/// How to relocate one install tree.
pub struct Policy<'a> {
    /// Where needed libraries come from.
    pub search: LibrarySearch<'a>,
    /// The interpreter every executable must end up with (set where it differs).
    pub interpreter: Option<&'a str>,
    /// Paths no file may contain afterwards (build and staging directories).
    pub forbidden: Vec<String>,
    /// A Nix store directory whose references are neutralised in every file
    /// (the hash replaced by `e`s, as nixpkgs' `remove-references-to` does),
    /// after which no real reference to it may remain.
    pub scrub_store: Option<String>,
    /// Names the package a bundled library came from.
    pub describe: &'a DescribeOrigin<'a>,
}

impl<'a> Policy<'a> {
    /// The host backend's policy: libraries from the machine's index, the
    /// target's standard interpreter, each bundled library described by its
    /// Debian package.
    pub fn host(system: &'a BTreeMap<String, PathBuf>, target: &Target, forbidden: Vec<String>) -> Policy<'a> {
        Policy {
            search: LibrarySearch::System(system),
            interpreter: target.standard_interpreter(),
            forbidden,
            scrub_store: None,
            describe: &crate::build::apt::owning_package,
        }
    }
}

/// Bundles libraries and rewrites RUNPATHs (and interpreters) under
/// `prefix`, neutralises store references, then checks the result and scans
/// every file for forbidden paths.
pub fn relocate(prefix: &Path, policy: &Policy) -> Result<Relocation, RelocateError> {
    let lib = prefix.join("lib");
    std::fs::create_dir_all(&lib).map_err(context("cannot create lib/"))?;
    let mut queue = elf_files(prefix)?;
    // Where each file originally lived, for `$ORIGIN` in its old RUNPATH.
    let mut original_dir: BTreeMap<PathBuf, PathBuf> = BTreeMap::new();
    let mut bundled: BTreeMap<String, BundledLibrary> = BTreeMap::new();
    let mut seen: BTreeSet<PathBuf> = BTreeSet::new();
    while let Some(relative) = queue.pop() {
        if !seen.insert(relative.clone()) {
            continue;
        }
        let info = elf::inspect(&prefix.join(&relative))?;
        let origin = original_dir
            .get(&relative)
            .cloned()
            .unwrap_or_else(|| prefix.join(&relative).parent().expect("files have a parent").to_path_buf());
        for needed in info.needed.iter().filter(|n| !is_libc(n)) {
            if lib.join(needed).exists() {
                continue;
            }
            let source =
                find_library(&policy.search, needed, &info.runpath, &origin).ok_or_else(|| RelocateError::Missing {
                    library: needed.clone(),
                    needed_by: relative.display().to_string(),
                    searched: match policy.search {
                        LibrarySearch::System(_) => "installed on this machine".to_string(),
                        LibrarySearch::Runpath => format!("in its RUNPATH {:?}", info.runpath),
                    },
                })?;
            std::fs::copy(&source, lib.join(needed)).map_err(context(format!("cannot copy {}", source.display())))?;
            set_mode(&lib.join(needed), 0o644)?;
            let (package, package_version) = (policy.describe)(&source);
            bundled.insert(
                needed.clone(),
                BundledLibrary { name: needed.clone(), origin: source.display().to_string(), package, package_version },
            );
            let copied = PathBuf::from("lib").join(needed);
            original_dir.insert(copied.clone(), source.parent().expect("libraries have a parent").to_path_buf());
            queue.push(copied);
        }
    }

    let mut by_runpath: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    let mut wrong_interpreter = Vec::new();
    for relative in elf_files(prefix)? {
        let info = elf::inspect(&prefix.join(&relative))?;
        if let (Some(wanted), Some(actual)) = (policy.interpreter, &info.interpreter)
            && actual != wanted
        {
            wrong_interpreter.push(relative.clone());
        }
        if info.needed.is_empty() {
            continue;
        }
        by_runpath.entry(runpath_for(&relative)).or_default().push(relative);
    }
    for (runpath, files) in &by_runpath {
        patchelf(prefix, &["--set-rpath", runpath], files)?;
    }
    if let Some(wanted) = policy.interpreter {
        patchelf(prefix, &["--set-interpreter", wanted], &wrong_interpreter)?;
    }
    for relative in by_runpath.values().flatten().chain(&wrong_interpreter) {
        elf::repair_mips_rld_map(&prefix.join(relative))?;
    }
    let scrubbed = match &policy.scrub_store {
        Some(store) => scrub_store_references(prefix, store)?,
        None => Vec::new(),
    };

    let mut files = Vec::new();
    let mut glibc_floor = None;
    for relative in elf_files(prefix)? {
        let info = elf::inspect(&prefix.join(&relative))?;
        if !info.needed.is_empty() && info.runpath != [runpath_for(&relative)] {
            return Err(RelocateError::Check(format!("{} has RUNPATH {:?}", relative.display(), info.runpath)));
        }
        if info.mips_rld_map_wrong {
            return Err(RelocateError::Check(format!(
                "{}: DT_MIPS_RLD_MAP_REL does not point at .rld_map",
                relative.display()
            )));
        }
        if let Some(missing) = info.needed.iter().find(|n| !is_libc(n) && !lib.join(n).exists()) {
            return Err(RelocateError::Check(format!("{} needs {missing}, which is not in lib/", relative.display())));
        }
        if let (Some(wanted), Some(actual)) = (policy.interpreter, &info.interpreter)
            && actual != wanted
        {
            return Err(RelocateError::Check(format!(
                "{} has interpreter {actual}, not the standard {wanted}",
                relative.display()
            )));
        }
        glibc_floor = glibc_floor.max(info.glibc_floor);
        files.push(ElfFile { path: relative.display().to_string(), info });
    }
    let mut forbidden = policy.forbidden.clone();
    if let Some(store) = &policy.scrub_store {
        forbidden.push(format!("{store}/"));
    }
    scan_for_paths(prefix, &forbidden, policy.scrub_store.as_deref())?;
    Ok(Relocation {
        bundled: bundled.into_values().collect(),
        elf_files: files,
        glibc_floor: glibc_floor.map(|(major, minor)| format!("{major}.{minor}")),
        scrubbed_store_references: scrubbed,
    })
}

/// Finds `needed` for a file with RUNPATH `runpath` that lived in `origin`.
fn find_library(search: &LibrarySearch, needed: &str, runpath: &[String], origin: &Path) -> Option<PathBuf> {
    match search {
        LibrarySearch::System(index) => index.get(needed).cloned(),
        LibrarySearch::Runpath => runpath
            .iter()
            .flat_map(|entry| entry.split(':'))
            .filter(|dir| !dir.is_empty())
            .map(|dir| {
                let origin = origin.display().to_string();
                PathBuf::from(dir.replace("${ORIGIN}", &origin).replace("$ORIGIN", &origin)).join(needed)
            })
            .find(|candidate| candidate.is_file()),
    }
}

/// Runs patchelf with `args` on `files` (relative to `prefix`), in batches.
pub fn patchelf(prefix: &Path, args: &[&str], files: &[PathBuf]) -> Result<(), RelocateError> {
    for chunk in files.chunks(64) {
        let output = Command::new("patchelf")
            .args(args)
            .args(chunk.iter().map(|f| prefix.join(f)))
            .output()
            .map_err(context("cannot run patchelf (install the patchelf package)"))?;
        if !output.status.success() {
            return Err(RelocateError::Patchelf {
                file: chunk[0].display().to_string(),
                message: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
    }
    Ok(())
}

/// Positions of real references to `store` in `bytes`: each `<store>/`
/// followed by a full-length nixbase32 hash that is not the neutral `e…e`.
fn store_references(bytes: &[u8], store: &str) -> Vec<usize> {
    let needle = format!("{store}/");
    memchr::memmem::find_iter(bytes, needle.as_bytes())
        .map(|at| at + needle.len())
        .filter(|&hash_at| {
            bytes.get(hash_at..hash_at + HASH_LEN).is_some_and(|hash| {
                hash.iter().all(|&b| crate::nix::store::is_nix_base32(b) || b == b'e')
                    && hash.iter().any(|&b| b != b'e')
            })
        })
        .collect()
}

/// Replaces the hash of every reference to `store` in every regular file
/// under `root` by `e`s (same length, so ELF layouts stay intact) and
/// returns the distinct names of the neutralised paths (`gcc-14.3.0`).
pub fn scrub_store_references(root: &Path, store: &str) -> Result<Vec<String>, RelocateError> {
    let mut names = BTreeSet::new();
    for entry in walkdir::WalkDir::new(root).sort_by_file_name() {
        let entry = entry.map_err(|e| IoError::new("cannot walk the install tree", e))?;
        if !entry.file_type().is_file() {
            continue;
        }
        let mut bytes =
            std::fs::read(entry.path()).map_err(context(format!("cannot read {}", entry.path().display())))?;
        let positions = store_references(&bytes, store);
        if positions.is_empty() {
            continue;
        }
        for at in positions {
            let name_end = bytes[at + HASH_LEN..]
                .iter()
                .position(|&b| b == b'/' || b == 0 || b.is_ascii_whitespace() || b == b'\'' || b == b'"' || b == b':')
                .map_or(bytes.len(), |n| at + HASH_LEN + n);
            let name = String::from_utf8_lossy(&bytes[at + HASH_LEN..name_end]);
            names.insert(name.trim_start_matches('-').to_string());
            bytes[at..at + HASH_LEN].fill(b'e');
        }
        let mode = entry.metadata().map_err(|e| IoError::new("cannot stat", e))?;
        set_mode(entry.path(), 0o644 | std::os::unix::fs::PermissionsExt::mode(&mode.permissions()))?;
        std::fs::write(entry.path(), &bytes).map_err(context(format!("cannot rewrite {}", entry.path().display())))?;
        set_mode(entry.path(), std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o7777)?;
    }
    Ok(names.into_iter().collect())
}

fn set_mode(path: &Path, mode: u32) -> Result<(), RelocateError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(context(format!("cannot chmod {}", path.display())))?;
    Ok(())
}

/// Fails if any file or symlink under `root` contains any of `forbidden`
/// (byte search). Neutralised references into `store` (hash of `e`s) are
/// allowed; the store directory itself should then be in `forbidden`.
pub fn scan_for_paths(root: &Path, forbidden: &[String], store: Option<&str>) -> Result<(), RelocateError> {
    let finders: Vec<memchr::memmem::Finder> =
        forbidden.iter().map(|p| memchr::memmem::Finder::new(p.as_bytes())).collect();
    let neutral = store.map(|store| format!("{store}/{}", "e".repeat(HASH_LEN)));
    for entry in walkdir::WalkDir::new(root).sort_by_file_name() {
        let entry = entry.map_err(|e| IoError::new("cannot walk the install tree", e))?;
        let bytes = if entry.file_type().is_file() {
            std::fs::read(entry.path()).map_err(context(format!("cannot read {}", entry.path().display())))?
        } else if entry.file_type().is_symlink() {
            std::fs::read_link(entry.path())
                .map_err(context("cannot read a symlink"))?
                .into_os_string()
                .into_encoded_bytes()
        } else {
            continue;
        };
        for (finder, path) in finders.iter().zip(forbidden) {
            let leak = finder
                .find_iter(&bytes)
                .find(|&at| neutral.as_ref().is_none_or(|neutral| !bytes[at..].starts_with(neutral.as_bytes())));
            if leak.is_some() {
                let relative = entry.path().strip_prefix(root).unwrap_or(entry.path());
                return Err(RelocateError::Check(format!("{} contains the build path {path}", relative.display())));
            }
        }
    }
    Ok(())
}

crate::util::error::usage_errors!(RelocateError);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runpaths_point_at_lib() {
        assert_eq!(runpath_for(Path::new("bin/postgres")), "$ORIGIN/../lib");
        assert_eq!(runpath_for(Path::new("lib/libpq.so.5")), "$ORIGIN");
        assert_eq!(runpath_for(Path::new("lib/postgresql/pgcrypto.so")), "$ORIGIN/..");
    }

    #[test]
    fn libc_family_stays_external() {
        assert!(is_libc("libc.so.6") && is_libc("libm.so.6"));
        for loader in ["ld-linux-armhf.so.3", "ld-linux.so.3", "ld-linux.so.2", "ld64.so.2", "ld-musl-i386.so.1"] {
            assert!(is_libc(loader), "{loader} is every target's own");
        }
        assert!(is_libc("libc.musl-x86.so.1"));
        assert!(is_libc("libc.so"), "nixpkgs' musl, which has no soname");
        assert!(!is_libc("libicuuc.so.72") && !is_libc("libstdc++.so.6"));
    }

    #[test]
    fn the_path_scan_finds_leaks_in_files_and_links() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("clean"), b"nothing here").unwrap();
        assert!(scan_for_paths(dir.path(), &["/build/xyz".into()], None).is_ok());
        std::fs::write(dir.path().join("dirty"), b"\0\0/build/xyz/lib\0").unwrap();
        let err = scan_for_paths(dir.path(), &["/build/xyz".into()], None).unwrap_err();
        assert!(err.to_string().contains("dirty"), "{err}");
        std::fs::remove_file(dir.path().join("dirty")).unwrap();
        std::os::unix::fs::symlink("/build/xyz/target", dir.path().join("link")).unwrap();
        assert!(scan_for_paths(dir.path(), &["/build/xyz".into()], None).is_err());
    }

    #[test]
    fn store_references_are_neutralised_in_place_and_then_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let hash = "8zv8i345w2xn27jrxj4cyjc6x3b4am1q";
        let text =
            format!("CC = /nix/store/{hash}-gcc-wrapper-14.3.0/bin/gcc\nLIBS = -L/nix/store/{hash}-zlib-1.3/lib\n");
        std::fs::write(dir.path().join("Makefile.global"), &text).unwrap();
        let binary = [b"\x7fELF\0".as_slice(), format!("/nix/store/{hash}-icu4c-76.1/share\0").as_bytes()].concat();
        std::fs::write(dir.path().join("prog"), &binary).unwrap();
        let forbidden = ["/nix/store/".to_string()];
        assert!(scan_for_paths(dir.path(), &forbidden, Some("/nix/store")).is_err(), "real references are leaks");

        let names = scrub_store_references(dir.path(), "/nix/store").unwrap();
        assert_eq!(names, ["gcc-wrapper-14.3.0", "icu4c-76.1", "zlib-1.3"]);
        let scrubbed = std::fs::read(dir.path().join("prog")).unwrap();
        assert_eq!(scrubbed.len(), binary.len(), "same length: ELF offsets stay valid");
        let neutral = format!("/nix/store/{}-icu4c-76.1/share", "e".repeat(32));
        assert!(memchr::memmem::find(&scrubbed, neutral.as_bytes()).is_some());
        assert!(scan_for_paths(dir.path(), &forbidden, Some("/nix/store")).is_ok());

        std::os::unix::fs::symlink(format!("/nix/store/{hash}-x/lib"), dir.path().join("link")).unwrap();
        assert!(scan_for_paths(dir.path(), &forbidden, Some("/nix/store")).is_err(), "links are never rewritten");
    }

    #[test]
    fn runpath_search_follows_each_files_own_runpath() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("deps/lib")).unwrap();
        std::fs::create_dir_all(dir.path().join("bin")).unwrap();
        std::fs::write(dir.path().join("deps/lib/libz.so.1"), b"").unwrap();
        let runpath = vec![format!("/nonexistent:{}/deps/lib", dir.path().display())];
        let found = find_library(&LibrarySearch::Runpath, "libz.so.1", &runpath, Path::new("/x"));
        assert_eq!(found, Some(dir.path().join("deps/lib/libz.so.1")));
        let relative = vec!["$ORIGIN/../deps/lib".to_string()];
        let found = find_library(&LibrarySearch::Runpath, "libz.so.1", &relative, &dir.path().join("bin"));
        assert!(found.is_some_and(|p| p.ends_with("deps/lib/libz.so.1")));
        assert_eq!(find_library(&LibrarySearch::Runpath, "libnone.so", &runpath, Path::new("/x")), None);
    }

    #[test]
    fn the_system_index_knows_libc() {
        let index = system_libraries().unwrap();
        assert!(index.contains_key("libc.so.6"), "ldconfig -p lists libc");
    }
}
