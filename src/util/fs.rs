//! Small filesystem helpers shared by every module that writes files.
//!
//! Every file pgbin writes appears under its final name complete or not at
//! all: content goes to a temporary file in the same directory, is synced,
//! and is then renamed over the destination.

use std::io::Write;
use std::path::Path;

/// The name prefix of the temporary files [`write_atomic`] and
/// [`copy_atomic`] make beside their targets (swept when their owner is gone).
pub const TEMPORARY_PREFIX: &str = ".pgbin-tmp-";

/// A temporary file in `dir` for content that gets its final name when
/// complete; a killed pgbin's are removed first.
fn temporary_in(dir: &Path) -> std::io::Result<crate::util::scratch::ScratchFile> {
    crate::util::scratch::sweep(dir, TEMPORARY_PREFIX);
    crate::util::scratch::ScratchFile::new_in(dir, TEMPORARY_PREFIX)
}

/// Writes `bytes` to `path` atomically, creating parent directories.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let mut tmp = temporary_in(dir)?;
    tmp.write_all(bytes)?;
    publishable(tmp.as_file())?;
    tmp.persist(path)
}

/// Copies `source` to `target` atomically (temporary file in the target's
/// directory, then rename), with the mode of an ordinary output file.
pub fn copy_atomic(source: &Path, target: &Path) -> std::io::Result<()> {
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let tmp = temporary_in(dir)?;
    std::io::copy(&mut std::fs::File::open(source)?, &mut tmp.as_file())?;
    publishable(tmp.as_file())?;
    tmp.persist(target)
}

/// Gives a finished temporary file the mode of an ordinary output file
/// (0644; temporary files start private) and syncs it to disk.
pub fn publishable(file: &std::fs::File) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(0o644))?;
    file.sync_all()
}

/// Copies the tree at `source` to `target` (which must not exist): symlinks
/// stay symlinks, file modes are kept and made owner-writable (a tree copied
/// out of a read-only store must be editable), nothing else is copied. A
/// symlink whose target is absolute or climbs out of the tree is refused,
/// so that nothing written into the copy later can land outside it.
pub fn copy_tree(source: &Path, target: &Path) -> std::io::Result<()> {
    copy_walk(source, source, target)
}

/// Copies only the top-level directories `parts` of the tree at `source`
/// (those that exist) to the same places under `target`, as [`copy_tree`]
/// does: a link may point anywhere inside the whole tree, never out of it.
pub fn copy_tree_parts(source: &Path, target: &Path, parts: &[&str]) -> std::io::Result<()> {
    std::fs::create_dir_all(target)?;
    for part in parts {
        let start = source.join(part);
        if std::fs::symlink_metadata(&start).is_ok_and(|m| m.is_dir()) {
            copy_walk(source, &start, target)?;
        }
    }
    Ok(())
}

/// Copies everything under `start` (inside the tree `source`) to the same
/// place under `target`.
fn copy_walk(source: &Path, start: &Path, target: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for entry in walkdir::WalkDir::new(start).follow_links(false).sort_by_file_name() {
        let entry = entry.map_err(std::io::Error::from)?;
        let relative = entry.path().strip_prefix(source).expect("walk stays under the source");
        let destination = target.join(relative);
        let file_type = entry.file_type();
        if file_type.is_dir() {
            std::fs::create_dir_all(&destination)?;
            std::fs::set_permissions(&destination, std::fs::Permissions::from_mode(0o755))?;
        } else if file_type.is_symlink() {
            let link = std::fs::read_link(entry.path())?;
            if !link_stays_inside(relative, &link) {
                return Err(std::io::Error::other(format!(
                    "{} is a link to {}, outside the tree; refusing to copy it",
                    entry.path().display(),
                    link.display()
                )));
            }
            std::os::unix::fs::symlink(link, &destination)?;
        } else if file_type.is_file() {
            std::fs::copy(entry.path(), &destination)?;
            let mode = entry.metadata().map_err(std::io::Error::from)?.permissions().mode();
            std::fs::set_permissions(&destination, std::fs::Permissions::from_mode((mode & 0o777) | 0o200))?;
        } else {
            return Err(std::io::Error::other(format!(
                "{} is neither file, directory nor symlink",
                entry.path().display()
            )));
        }
    }
    Ok(())
}

/// Whether a symbolic link at `link` (a path relative to a tree's root)
/// pointing at `target` stays inside the tree when resolved lexically:
/// `target` is relative and never climbs above the root.
pub fn link_stays_inside(link: &Path, target: &Path) -> bool {
    use std::path::Component;
    if target.as_os_str().is_empty() {
        return false;
    }
    let mut depth = link.components().count() as isize - 1;
    for component in target.components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

/// The last `n` lines of a log file, for failure reports.
pub fn log_tail(log: &Path, n: usize) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].iter().map(|s| s.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_killed_writers_temporary_file_is_removed_by_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        // What a kill between creating and renaming leaves: the file and its
        // lock file, which no process holds any more.
        let left = dir.path().join(format!("{TEMPORARY_PREFIX}abcd1234"));
        std::fs::write(&left, b"half").unwrap();
        std::fs::write(dir.path().join(format!("{TEMPORARY_PREFIX}abcd1234.lock")), b"").unwrap();
        write_atomic(&dir.path().join("out.json"), b"{}").unwrap();
        assert!(!left.exists(), "the abandoned temporary file is swept");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("out.json")]);
    }

    #[test]
    fn tree_copies_keep_links_and_modes_and_become_writable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("src");
        std::fs::create_dir_all(source.join("bin")).unwrap();
        std::fs::write(source.join("bin/tool"), b"x").unwrap();
        std::fs::set_permissions(source.join("bin/tool"), std::fs::Permissions::from_mode(0o555)).unwrap();
        std::os::unix::fs::symlink("tool", source.join("bin/alias")).unwrap();
        copy_tree(&source, &dir.path().join("copy")).unwrap();
        let copied = dir.path().join("copy/bin");
        assert_eq!(std::fs::metadata(copied.join("tool")).unwrap().permissions().mode() & 0o777, 0o755);
        assert_eq!(std::fs::read_link(copied.join("alias")).unwrap(), Path::new("tool"));
    }

    #[test]
    fn replaces_whole_file_and_leaves_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/out.json");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o644);
        let names: Vec<_> =
            std::fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("out.json")]);
    }
}
