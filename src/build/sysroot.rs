//! The target's libraries for a cross build, unpacked into a private root
//! (a sysroot) instead of installed beside the build machine's own.
//!
//! Installing another architecture's `-dev` packages (multiarch) changes
//! the build machine: every `Multi-Arch: same` package must have one
//! version on all architectures, so installing them upgrades native
//! libraries, and fails outright when the archive has no update of a
//! package for the target's architecture at the machine's version. A
//! sysroot has neither problem: apt resolves the packages as if nothing
//! were installed (an empty dpkg status), downloads each `.deb` of the
//! target's architecture (apt checks it against the archive's signed
//! indices), pgbin checks each file again against the SHA-256 apt
//! announced, and `dpkg-deb` unpacks them into
//! `cache/sysroots/<arch>-<key>/`, with a dpkg status file and file lists
//! of its own, so that the build's package record and the owner of every
//! bundled library come from the packages actually unpacked.
//!
//! Packages of architecture `all` (manual pages, locales) and of the build
//! machine's architecture, which apt adds to satisfy dependencies, are not
//! unpacked: a sysroot holds only what the target links against.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

use crate::build::inputs::{self, PackageRecord};
use crate::util::digest::{digest_file, sha256_hex};
use crate::util::io::{IoError, context};
use crate::util::progress::Progress;
use crate::util::scratch::ScratchDir;

/// Why a sysroot cannot be prepared.
#[derive(Debug, thiserror::Error)]
pub enum SysrootError {
    /// Local I/O.
    #[error(transparent)]
    Io(#[from] IoError),
    /// apt cannot resolve or download the packages.
    #[error("the {arch} libraries of the cross build cannot be fetched ({reason}); run: {command}")]
    Apt {
        /// The target's Debian architecture.
        arch: String,
        /// apt's first error line.
        reason: String,
        /// The command that shows it.
        command: String,
    },
    /// A downloaded package is not the one apt announced.
    #[error("{file} does not have the SHA-256 apt announced for it ({announced}, got {got}); remove it and run again")]
    Digest {
        /// The `.deb` file name.
        file: String,
        /// What apt's signed index says.
        announced: String,
        /// What the file hashes to.
        got: String,
    },
    /// A package could not be unpacked, or unpacks something unsafe.
    #[error("cannot unpack {file} into the sysroot: {reason}")]
    Unpack {
        /// The `.deb` file name.
        file: String,
        /// What went wrong.
        reason: String,
    },
}

crate::util::error::usage_errors!(SysrootError);

/// One `.deb` of a sysroot: its file name and the SHA-256 apt announced.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DebFile {
    /// `libssl3_3.0.20-1~deb12u2_s390x.deb` (an epoch's `:` as `%3a`).
    pub file_name: String,
    /// Lowercase hex SHA-256.
    pub sha256: String,
}

impl DebFile {
    /// The `name:arch=version` apt-get download takes for this file.
    pub fn download_spec(&self) -> Option<String> {
        let stem = self.file_name.strip_suffix(".deb")?;
        let mut parts = stem.splitn(3, '_');
        let (name, version, arch) = (parts.next()?, parts.next()?, parts.next()?);
        Some(format!("{name}:{arch}={}", version.replace("%3a", ":")))
    }
}

/// A prepared sysroot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sysroot {
    /// Its directory.
    pub root: PathBuf,
    /// The target's Debian architecture.
    pub arch: String,
    /// Every unpacked package as `name:arch` → version.
    pub record: PackageRecord,
    /// Every unpacked path (`/usr/lib/…`, relative to the root) → its package.
    owners: BTreeMap<String, String>,
}

/// The file that marks a sysroot complete (written last, before the rename).
const STATUS: &str = "var/lib/dpkg/status";
/// Where the file lists are.
const LISTS: &str = "var/lib/dpkg/info";
/// The most bytes of a status file or file list read.
const INDEX_BOUND: u64 = 64 << 20;

/// apt's options that resolve as if nothing were installed, without
/// recommended packages, with SHA-256 announced for each file.
fn apt_resolving(archives: &Path) -> Vec<String> {
    [
        "--no-install-recommends",
        "-o",
        "Dir::State::status=/dev/null",
        "-o",
        "Acquire::ForceHash=SHA256",
        "-o",
        "Debug::NoLocking=1",
        "-o",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("Dir::Cache::archives={}", archives.display())])
    .collect()
}

/// The `.deb` files of architecture `arch` that `packages` (`name:arch`)
/// need when nothing is installed, as apt resolves them (`--print-uris`).
pub fn resolve(arch: &str, packages: &[String], scratch: &Path) -> Result<Vec<DebFile>, SysrootError> {
    let archives = scratch.join("resolve");
    std::fs::create_dir_all(archives.join("partial")).map_err(context("cannot create apt's download directory"))?;
    let output = Command::new("apt-get")
        .args(["install", "--print-uris", "-qq", "-y"])
        .args(apt_resolving(&archives))
        .args(packages)
        .stdin(Stdio::null())
        .output()
        .map_err(context("cannot run apt-get"))?;
    let command = format!(
        "apt-get install --print-uris --no-install-recommends -o Dir::State::status=/dev/null {}",
        packages.join(" ")
    );
    if !output.status.success() {
        return Err(SysrootError::Apt {
            arch: arch.to_string(),
            reason: crate::build::apt::failure_reason(&output),
            command,
        });
    }
    let files = parse_print_uris(&String::from_utf8_lossy(&output.stdout), arch);
    if files.is_empty() {
        let reason = "apt resolved no package of that architecture".to_string();
        return Err(SysrootError::Apt { arch: arch.to_string(), reason, command });
    }
    Ok(files)
}

/// The files of architecture `arch` in apt's `--print-uris` output
/// (`'URI' file size SHA256:hex` per line), sorted; the addresses are not kept.
pub fn parse_print_uris(text: &str, arch: &str) -> Vec<DebFile> {
    let suffix = format!("_{arch}.deb");
    let mut files: Vec<DebFile> = text
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace().skip(1);
            let (file_name, _size, hash) = (fields.next()?, fields.next()?, fields.next()?);
            let sha256 = hash.strip_prefix("SHA256:")?;
            let plain = file_name.chars().all(|c| c.is_ascii_alphanumeric() || "._+~%-".contains(c));
            let hex = sha256.len() == 64 && sha256.chars().all(|c| c.is_ascii_hexdigit());
            (file_name.ends_with(&suffix) && plain && hex)
                .then(|| DebFile { file_name: file_name.to_string(), sha256: sha256.to_ascii_lowercase() })
        })
        .collect();
    files.sort();
    files.dedup();
    files
}

/// The directory name of the sysroot holding exactly `files`.
pub fn sysroot_name(arch: &str, files: &[DebFile]) -> String {
    let listing: String = files.iter().map(|f| format!("{} {}\n", f.sha256, f.file_name)).collect();
    format!("{arch}-{}", &sha256_hex(listing.as_bytes())[..16])
}

/// The sysroot for `packages` (`name:arch`, of one architecture `arch`)
/// under `cache/sysroots/`, prepared unless one with exactly the files apt
/// resolves today is already there.
pub fn prepare(
    cache: &Path,
    arch: &str,
    packages: &[String],
    progress: &mut dyn Progress,
) -> Result<Sysroot, SysrootError> {
    let sysroots = cache.join("sysroots");
    std::fs::create_dir_all(&sysroots).map_err(context(format!("cannot create {}", sysroots.display())))?;
    let scratch = ScratchDir::new_in(&sysroots, WORK_PREFIX).map_err(context("cannot create a work directory"))?;
    let files = resolve(arch, packages, scratch.path())?;
    let root = sysroots.join(sysroot_name(arch, &files));
    if !root.join(STATUS).is_file() {
        progress.note(&format!("unpacking {} {arch} packages into {}", files.len(), root.display()));
        let staged = scratch.path().join("root");
        populate(&staged, arch, &files, scratch.path())?;
        match std::fs::rename(&staged, &root) {
            Ok(()) => {}
            // Another pgbin prepared the same sysroot meanwhile.
            Err(_) if root.join(STATUS).is_file() => {}
            Err(e) => return Err(IoError::new(format!("cannot publish {}", root.display()), e).into()),
        }
    }
    open(&root, arch)
}

/// The prefix of a sysroot's work directory (swept when abandoned).
const WORK_PREFIX: &str = ".work-";

/// Downloads `files` and unpacks them into `staged` with their status file
/// and file lists.
fn populate(staged: &Path, arch: &str, files: &[DebFile], scratch: &Path) -> Result<(), SysrootError> {
    let debs = scratch.join("debs");
    std::fs::create_dir_all(&debs).map_err(context("cannot create the download directory"))?;
    let specs: Vec<String> = files.iter().filter_map(DebFile::download_spec).collect();
    let output = Command::new("apt-get")
        .args(["download", "-qq"])
        .args(["-o", "Acquire::ForceHash=SHA256"])
        .args(&specs)
        .current_dir(&debs)
        .stdin(Stdio::null())
        .output()
        .map_err(context("cannot run apt-get"))?;
    if !output.status.success() {
        let command = format!("apt-get download {}", specs.join(" "));
        return Err(SysrootError::Apt {
            arch: arch.to_string(),
            reason: crate::build::apt::failure_reason(&output),
            command,
        });
    }
    std::fs::create_dir_all(staged.join(LISTS)).map_err(context("cannot create the sysroot"))?;
    let mut status = String::new();
    for file in files {
        let path = debs.join(&file.file_name);
        let got = digest_file(&path)?.sha256;
        if got != file.sha256 {
            return Err(SysrootError::Digest { file: file.file_name.clone(), announced: file.sha256.clone(), got });
        }
        let (control, listing) = unpack(&path, staged)?;
        let package = field(&control, "Package")
            .ok_or_else(|| SysrootError::Unpack { file: file.file_name.clone(), reason: "no Package field".into() })?;
        std::fs::write(staged.join(LISTS).join(format!("{package}:{arch}.list")), listing)
            .map_err(context("cannot write a file list"))?;
        status.push_str(control.trim_end());
        status.push_str("\nStatus: install ok installed\n\n");
    }
    make_links_relative(staged)?;
    std::fs::write(staged.join(STATUS), status).map_err(context("cannot write the sysroot's status file"))?;
    Ok(())
}

/// Unpacks one `.deb` into `root`; returns its control file and the list
/// of paths it unpacked (`/usr/lib/…`, one per line).
fn unpack(deb: &Path, root: &Path) -> Result<(String, String), SysrootError> {
    let name = deb.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let failed = |reason: String| SysrootError::Unpack { file: name.clone(), reason };
    let control = Command::new("dpkg-deb").arg("-f").arg(deb).output().map_err(|e| failed(e.to_string()))?;
    if !control.status.success() {
        return Err(failed(String::from_utf8_lossy(&control.stderr).trim().to_string()));
    }
    let extracted =
        Command::new("dpkg-deb").arg("-X").arg(deb).arg(root).output().map_err(|e| failed(e.to_string()))?;
    if !extracted.status.success() {
        return Err(failed(String::from_utf8_lossy(&extracted.stderr).trim().to_string()));
    }
    let listing: String = String::from_utf8_lossy(&extracted.stdout)
        .lines()
        .map(|l| l.trim_start_matches('.').trim_end_matches('/'))
        .filter(|l| !l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    Ok((String::from_utf8_lossy(&control.stdout).into_owned(), listing))
}

/// One field of a control paragraph.
fn field<'a>(control: &'a str, name: &str) -> Option<&'a str> {
    control.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(": ")).map(str::trim)
}

/// Rewrites every absolute symbolic link under `root` (Debian's `-dev`
/// packages link `libz.so` to `/lib/<multiarch>/libz.so.1`) to the
/// relative link that names the same path inside `root`, and refuses a
/// relative link that climbs out of it, so that nothing read through the
/// sysroot leaves it.
pub fn make_links_relative(root: &Path) -> Result<(), SysrootError> {
    for entry in walkdir::WalkDir::new(root) {
        let entry = entry.map_err(|e| IoError::new("cannot walk the sysroot", e))?;
        if !entry.path_is_symlink() {
            continue;
        }
        let link = entry.path();
        let relative_link = link.strip_prefix(root).expect("the walk stays under the root");
        let target = std::fs::read_link(link).map_err(context(format!("cannot read {}", link.display())))?;
        if target.is_absolute() {
            let depth = relative_link.components().count() - 1;
            let inside: PathBuf = target.components().filter(|c| matches!(c, Component::Normal(_))).collect();
            let rebased: PathBuf = std::iter::repeat_n(Path::new(".."), depth).collect::<PathBuf>().join(inside);
            std::fs::remove_file(link).map_err(context(format!("cannot replace {}", link.display())))?;
            std::os::unix::fs::symlink(&rebased, link).map_err(context(format!("cannot write {}", link.display())))?;
        } else if !crate::util::fs::link_stays_inside(relative_link, &target) {
            return Err(SysrootError::Unpack {
                file: relative_link.display().to_string(),
                reason: format!("its link to {} leaves the sysroot", target.display()),
            });
        }
    }
    Ok(())
}

/// The sysroot at `root` (of architecture `arch`), from its status file and file lists.
pub fn open(root: &Path, arch: &str) -> Result<Sysroot, SysrootError> {
    let status = crate::util::io::read_text_limited(&root.join(STATUS), INDEX_BOUND)?;
    let database = inputs::Database::parse(&status, inputs::native_arch());
    let record = database.all_versions();
    let mut owners = BTreeMap::new();
    let lists = root.join(LISTS);
    let entries = std::fs::read_dir(&lists).map_err(context(format!("cannot list {}", lists.display())))?;
    for entry in entries {
        let path = entry.map_err(context(format!("cannot list {}", lists.display())))?.path();
        let Some(package) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".list")) else {
            continue;
        };
        let listing = crate::util::io::read_text_limited(&path, INDEX_BOUND)?;
        for line in listing.lines() {
            owners.entry(line.to_string()).or_insert_with(|| package.to_string());
        }
    }
    Ok(Sysroot { root: root.to_path_buf(), arch: arch.to_string(), record, owners })
}

impl Sysroot {
    /// The package (`libssl3:s390x`) and version of the file at `path`
    /// inside the sysroot (as found, or as its links resolve inside it).
    pub fn owner(&self, path: &Path) -> (Option<String>, Option<String>) {
        let mut candidates = vec![path.to_path_buf()];
        if let Ok(real) = std::fs::canonicalize(path) {
            candidates.push(real);
        }
        let root = std::fs::canonicalize(&self.root).unwrap_or_else(|_| self.root.clone());
        for candidate in candidates {
            let Some(inside) = candidate.strip_prefix(&self.root).ok().or_else(|| candidate.strip_prefix(&root).ok())
            else {
                continue;
            };
            let key = format!("/{}", inside.display());
            if let Some(package) = self.owners.get(&key) {
                return (Some(package.clone()), self.record.get(package).cloned());
            }
        }
        (None, None)
    }

    /// The directories the target's libraries are in (`/usr/lib/<multiarch>`
    /// and `/lib/<multiarch>` inside the sysroot).
    pub fn library_directories(&self, multiarch: &str) -> [PathBuf; 2] {
        crate::build::cross::library_directories(multiarch)
            .map(|d| self.root.join(d.strip_prefix("/").expect("absolute")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn print_uris_output_yields_the_targets_files_and_hashes_only() {
        let hash = "8f842575b6670d2241dffbd6ec95547cd55b129d0014ce7a6ab024e6d94399ef";
        let text = format!(
            "'proto://mirror/pool/libssl3_3.0.20-1~deb12u2_s390x.deb' libssl3_3.0.20-1~deb12u2_s390x.deb 1633496 SHA256:{hash}\n\
             'proto://mirror/pool/zlib1g_1%3a1.2.13.dfsg-1_s390x.deb' zlib1g_1%3a1.2.13.dfsg-1_s390x.deb 79588 SHA256:{hash}\n\
             'proto://mirror/pool/libc6_2.36-9_amd64.deb' libc6_2.36-9_amd64.deb 1 SHA256:{hash}\n\
             'proto://mirror/pool/manpages_6.03-2_all.deb' manpages_6.03-2_all.deb 1 SHA256:{hash}\n\
             'proto://mirror/pool/a_1_s390x.deb' a_1_s390x.deb 1 MD5Sum:ab40b7d3c7dd743f16d0d24ce3373270\n\
             'proto://mirror/pool/b_1_s390x.deb' ../b_1_s390x.deb 1 SHA256:{hash}\n"
        );
        let files = parse_print_uris(&text, "s390x");
        assert_eq!(files.len(), 2, "{files:?}");
        assert_eq!(files[0].download_spec().unwrap(), "libssl3:s390x=3.0.20-1~deb12u2");
        assert_eq!(files[1].download_spec().unwrap(), "zlib1g:s390x=1:1.2.13.dfsg-1");
        assert_ne!(sysroot_name("s390x", &files), sysroot_name("s390x", &files[..1]));
    }

    #[test]
    fn absolute_links_are_rebased_inside_and_escaping_links_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("usr/lib/m")).unwrap();
        std::fs::create_dir_all(root.join("lib/m")).unwrap();
        std::fs::write(root.join("lib/m/libz.so.1"), b"z").unwrap();
        std::os::unix::fs::symlink("/lib/m/libz.so.1", root.join("usr/lib/m/libz.so")).unwrap();
        make_links_relative(root).unwrap();
        assert_eq!(std::fs::read_link(root.join("usr/lib/m/libz.so")).unwrap(), Path::new("../../../lib/m/libz.so.1"));
        assert_eq!(std::fs::read(root.join("usr/lib/m/libz.so")).unwrap(), b"z");
        std::os::unix::fs::symlink("../../../../etc/passwd", root.join("usr/lib/m/evil")).unwrap();
        let error = make_links_relative(root).unwrap_err();
        assert!(error.to_string().contains("leaves the sysroot"), "{error}");
    }

    #[test]
    fn owners_and_versions_come_from_the_sysroots_own_index() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join(LISTS)).unwrap();
        std::fs::create_dir_all(root.join("usr/lib/s390x-linux-gnu")).unwrap();
        std::fs::write(root.join("usr/lib/s390x-linux-gnu/libssl.so.3"), b"").unwrap();
        std::fs::write(
            root.join(STATUS),
            "Package: libssl3\nVersion: 3.0.20-1~deb12u2\nArchitecture: s390x\nMulti-Arch: same\nDescription: x\n y: z\nStatus: install ok installed\n\n",
        )
        .unwrap();
        std::fs::write(root.join(LISTS).join("libssl3:s390x.list"), "/usr\n/usr/lib/s390x-linux-gnu/libssl.so.3\n")
            .unwrap();
        let sysroot = open(root, "s390x").unwrap();
        assert_eq!(sysroot.record, BTreeMap::from([("libssl3:s390x".to_string(), "3.0.20-1~deb12u2".to_string())]));
        let (package, version) = sysroot.owner(&root.join("usr/lib/s390x-linux-gnu/libssl.so.3"));
        assert_eq!((package.as_deref(), version.as_deref()), (Some("libssl3:s390x"), Some("3.0.20-1~deb12u2")));
        assert_eq!(sysroot.owner(Path::new("/usr/lib/s390x-linux-gnu/libssl.so.3")), (None, None));
        assert_eq!(sysroot.library_directories("s390x-linux-gnu")[0], root.join("usr/lib/s390x-linux-gnu"));
    }
}
