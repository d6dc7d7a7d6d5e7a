//! Small filesystem helpers shared by every module that writes files.
//!
//! Every file pgbin writes appears under its final name complete or not at
//! all: content goes to a temporary file in the same directory, is synced,
//! and is then renamed over the destination.

use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` atomically, creating parent directories.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new().prefix(".pgbin-").suffix(".tmp").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    publishable(tmp.as_file())?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Copies `source` to `target` atomically (temporary file in the target's
/// directory, then rename), with the mode of an ordinary output file.
pub fn copy_atomic(source: &Path, target: &Path) -> std::io::Result<()> {
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let tmp = tempfile::Builder::new().prefix(".pgbin-").suffix(".tmp").tempfile_in(dir)?;
    std::fs::copy(source, tmp.path())?;
    publishable(tmp.as_file())?;
    tmp.persist(target).map_err(|e| e.error)?;
    Ok(())
}

/// Gives a finished temporary file the mode of an ordinary output file
/// (0644; temporary files start private) and syncs it to disk.
pub fn publishable(file: &std::fs::File) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(0o644))?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

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
