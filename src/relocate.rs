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

use crate::elf::{self, ElfInfo};

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
];

/// Whether a library is part of the C library and stays external.
pub fn is_libc(name: &str) -> bool {
    LIBC_FAMILY.contains(&name)
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
}

/// Tells which distribution package (and version) a system library came from.
pub type DescribeOrigin = dyn Fn(&Path) -> (Option<String>, Option<String>);

/// Why relocation failed.
#[derive(Debug, thiserror::Error)]
pub enum RelocateError {
    /// Local I/O.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// An ELF file could not be read.
    #[error(transparent)]
    Elf(#[from] elf::ElfError),
    /// A needed library is not on this system.
    #[error("{needed_by} needs {library}, which is not installed on this machine")]
    Missing {
        /// The library.
        library: String,
        /// Who needs it.
        needed_by: String,
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

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RelocateError {
    let what = what.into();
    move |source| RelocateError::Io { what, source }
}

/// The machine's shared-library index (`ldconfig -p`): soname → path, for
/// this machine's architecture.
pub fn system_libraries() -> Result<BTreeMap<String, PathBuf>, RelocateError> {
    let output =
        Command::new("ldconfig").arg("-p").output().or_else(|_| Command::new("/sbin/ldconfig").arg("-p").output());
    let output = output.map_err(io("cannot run ldconfig -p"))?;
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
        let entry =
            entry.map_err(|e| RelocateError::Io { what: "cannot walk the install tree".into(), source: e.into() })?;
        if entry.file_type().is_file() && elf::file_is_elf(entry.path()) {
            files.push(entry.path().strip_prefix(prefix).expect("walk stays under prefix").to_path_buf());
        }
    }
    Ok(files)
}

/// Bundles libraries and rewrites RUNPATHs under `prefix`, then checks the
/// result and scans every file for `forbidden` paths.
pub fn relocate(
    prefix: &Path,
    system: &BTreeMap<String, PathBuf>,
    forbidden: &[String],
    describe: &DescribeOrigin,
) -> Result<Relocation, RelocateError> {
    let lib = prefix.join("lib");
    std::fs::create_dir_all(&lib).map_err(io("cannot create lib/"))?;
    let mut queue = elf_files(prefix)?;
    let mut bundled: BTreeMap<String, BundledLibrary> = BTreeMap::new();
    let mut seen: BTreeSet<PathBuf> = BTreeSet::new();
    while let Some(relative) = queue.pop() {
        if !seen.insert(relative.clone()) {
            continue;
        }
        let info = elf::inspect(&prefix.join(&relative))?;
        for needed in info.needed.iter().filter(|n| !is_libc(n)) {
            if lib.join(needed).exists() {
                continue;
            }
            let source = system.get(needed).ok_or_else(|| RelocateError::Missing {
                library: needed.clone(),
                needed_by: relative.display().to_string(),
            })?;
            std::fs::copy(source, lib.join(needed)).map_err(io(format!("cannot copy {}", source.display())))?;
            set_mode(&lib.join(needed), 0o644)?;
            let (package, package_version) = describe(source);
            bundled.insert(
                needed.clone(),
                BundledLibrary { name: needed.clone(), origin: source.display().to_string(), package, package_version },
            );
            queue.push(PathBuf::from("lib").join(needed));
        }
    }

    let mut by_runpath: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for relative in elf_files(prefix)? {
        let info = elf::inspect(&prefix.join(&relative))?;
        if info.needed.is_empty() {
            continue;
        }
        by_runpath.entry(runpath_for(&relative)).or_default().push(relative);
    }
    for (runpath, files) in &by_runpath {
        for chunk in files.chunks(64) {
            let output = Command::new("patchelf")
                .arg("--set-rpath")
                .arg(runpath)
                .args(chunk.iter().map(|f| prefix.join(f)))
                .output()
                .map_err(io("cannot run patchelf (install the patchelf package)"))?;
            if !output.status.success() {
                return Err(RelocateError::Patchelf {
                    file: chunk[0].display().to_string(),
                    message: String::from_utf8_lossy(&output.stderr).trim().to_string(),
                });
            }
        }
    }

    let mut files = Vec::new();
    let mut glibc_floor = None;
    for relative in elf_files(prefix)? {
        let info = elf::inspect(&prefix.join(&relative))?;
        if !info.needed.is_empty() && info.runpath != [runpath_for(&relative)] {
            return Err(RelocateError::Check(format!("{} has RUNPATH {:?}", relative.display(), info.runpath)));
        }
        if let Some(missing) = info.needed.iter().find(|n| !is_libc(n) && !lib.join(n).exists()) {
            return Err(RelocateError::Check(format!("{} needs {missing}, which is not in lib/", relative.display())));
        }
        glibc_floor = glibc_floor.max(info.glibc_floor);
        files.push(ElfFile { path: relative.display().to_string(), info });
    }
    scan_for_paths(prefix, forbidden)?;
    Ok(Relocation {
        bundled: bundled.into_values().collect(),
        elf_files: files,
        glibc_floor: glibc_floor.map(|(major, minor)| format!("{major}.{minor}")),
    })
}

fn set_mode(path: &Path, mode: u32) -> Result<(), RelocateError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(io(format!("cannot chmod {}", path.display())))
}

/// Fails if any file under `root` contains any of `forbidden` (byte search).
pub fn scan_for_paths(root: &Path, forbidden: &[String]) -> Result<(), RelocateError> {
    let finders: Vec<memchr::memmem::Finder> =
        forbidden.iter().map(|p| memchr::memmem::Finder::new(p.as_bytes())).collect();
    for entry in walkdir::WalkDir::new(root).sort_by_file_name() {
        let entry =
            entry.map_err(|e| RelocateError::Io { what: "cannot walk the install tree".into(), source: e.into() })?;
        let bytes = if entry.file_type().is_file() {
            std::fs::read(entry.path()).map_err(io(format!("cannot read {}", entry.path().display())))?
        } else if entry.file_type().is_symlink() {
            std::fs::read_link(entry.path()).map_err(io("cannot read a symlink"))?.into_os_string().into_encoded_bytes()
        } else {
            continue;
        };
        for (finder, path) in finders.iter().zip(forbidden) {
            if finder.find(&bytes).is_some() {
                let relative = entry.path().strip_prefix(root).unwrap_or(entry.path());
                return Err(RelocateError::Check(format!("{} contains the build path {path}", relative.display())));
            }
        }
    }
    Ok(())
}

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
        assert!(!is_libc("libicuuc.so.72") && !is_libc("libstdc++.so.6"));
    }

    #[test]
    fn the_path_scan_finds_leaks_in_files_and_links() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("clean"), b"nothing here").unwrap();
        assert!(scan_for_paths(dir.path(), &["/build/xyz".into()]).is_ok());
        std::fs::write(dir.path().join("dirty"), b"\0\0/build/xyz/lib\0").unwrap();
        let err = scan_for_paths(dir.path(), &["/build/xyz".into()]).unwrap_err();
        assert!(err.to_string().contains("dirty"), "{err}");
        std::fs::remove_file(dir.path().join("dirty")).unwrap();
        std::os::unix::fs::symlink("/build/xyz/target", dir.path().join("link")).unwrap();
        assert!(scan_for_paths(dir.path(), &["/build/xyz".into()]).is_err());
    }

    #[test]
    fn the_system_index_knows_libc() {
        let index = system_libraries().unwrap();
        assert!(index.contains_key("libc.so.6"), "ldconfig -p lists libc");
    }
}
