//! Publishing a set of files (an archive and its sidecars) into an output
//! directory so that no reader that requires the set's completion marker
//! ever sees a partial or mixed set, even if pgbin is killed between two
//! renames.
//!
//! Every file is first written completely into a staging directory on the
//! same file system. Publishing then (1) removes the marker of any earlier
//! set of the same name, (2) renames every other file into place, and (3)
//! renames the marker last, syncing the directory after each step. A kill
//! before (1) leaves the earlier complete set; a kill after (1) and before
//! (3) leaves a set without its marker, which readers refuse; after (3) the
//! new set is complete. For pgbin's archives the marker is the `.sha256`,
//! which every consumer's integrity check (and `pgbin verify-artifact`)
//! needs.

use std::path::{Path, PathBuf};

use crate::util::io::{IoError, context};

/// The name prefix of the staging directories made inside an output
/// directory (removed by the next publish there when their owner is gone).
pub const STAGING_PREFIX: &str = ".pgbin-publish-";

/// Moves `staged` files (each inside a staging directory within `out`) into
/// `out`, with `marker` (one of them) last; returns the published paths in
/// the order given.
pub fn publish_set(staged: &[PathBuf], marker: &Path, out: &Path) -> Result<Vec<PathBuf>, IoError> {
    let target_of = |file: &Path| out.join(file.file_name().expect("staged files have names"));
    let marker_target = target_of(marker);
    match std::fs::remove_file(&marker_target) {
        Ok(()) => sync_dir(out)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(context(format!("cannot replace {}", marker_target.display()))(e)),
    }
    for file in staged.iter().filter(|f| f.as_path() != marker) {
        let target = target_of(file);
        std::fs::rename(file, &target).map_err(context(format!("cannot publish {}", target.display())))?;
    }
    sync_dir(out)?;
    std::fs::rename(marker, &marker_target).map_err(context(format!("cannot publish {}", marker_target.display())))?;
    sync_dir(out)?;
    Ok(staged.iter().map(|f| target_of(f)).collect())
}

/// Syncs a directory, so that the renames in it are durable in order.
fn sync_dir(dir: &Path) -> Result<(), IoError> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(context(format!("cannot sync {}", dir.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_of_an_earlier_set_goes_first_and_the_new_one_last() {
        let out = tempfile::tempdir().unwrap();
        std::fs::write(out.path().join("a.tar.gz"), b"old").unwrap();
        std::fs::write(out.path().join("a.tar.gz.sha256"), b"old").unwrap();
        let staging = tempfile::tempdir_in(out.path()).unwrap();
        let archive = staging.path().join("a.tar.gz");
        let marker = staging.path().join("a.tar.gz.sha256");
        std::fs::write(&archive, b"new").unwrap();
        std::fs::write(&marker, b"new").unwrap();
        let published = publish_set(&[archive.clone(), marker.clone()], &marker, out.path()).unwrap();
        assert_eq!(published, vec![out.path().join("a.tar.gz"), out.path().join("a.tar.gz.sha256")]);
        assert_eq!(std::fs::read(out.path().join("a.tar.gz")).unwrap(), b"new");
        assert_eq!(std::fs::read(out.path().join("a.tar.gz.sha256")).unwrap(), b"new");
        assert!(!archive.exists() && !marker.exists());
    }
}
