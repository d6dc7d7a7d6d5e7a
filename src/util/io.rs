//! One I/O error type with the context of what was being done, shared by
//! every stage's error type (`#[from] IoError`).

use crate::util::error::{Classify, FailureKind};

/// An I/O failure and what pgbin was doing when it happened.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct IoError {
    /// What was being done, e.g. "cannot read /path".
    pub what: String,
    /// The operating system's error.
    #[source]
    pub source: std::io::Error,
}

impl IoError {
    /// An I/O error with its context.
    pub fn new(what: impl Into<String>, source: impl Into<std::io::Error>) -> IoError {
        IoError { what: what.into(), source: source.into() }
    }
}

impl Classify for IoError {
    fn kind(&self) -> FailureKind {
        FailureKind::Usage
    }
}

/// A `map_err` adapter that adds `what` to an I/O error:
/// `std::fs::read(p).map_err(context(format!("cannot read {}", p.display())))?`.
pub fn context(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> IoError {
    let what = what.into();
    move |source| IoError { what, source }
}

/// The adapter for reading `path`: "cannot read PATH: cause".
pub fn reading(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> IoError {
    context(format!("cannot read {}", path.display()))
}

/// Reads all of `path`, refusing anything but a regular file (a FIFO or a
/// device is never opened for reading, so it cannot hang or never end) and a
/// file of more than `limit` bytes without reading past the limit (so a huge
/// or growing file costs `limit` bytes of memory at most): "cannot read
/// PATH: larger than the limit of N bytes".
pub fn read_limited(path: &std::path::Path, limit: u64) -> Result<Vec<u8>, IoError> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    if !std::fs::metadata(path).map_err(reading(path))?.is_file() {
        let special = std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file");
        return Err(reading(path)(special));
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(reading(path))?;
    if !file.metadata().map_err(reading(path))?.is_file() {
        let special = std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file");
        return Err(reading(path)(special));
    }
    let expected = file.metadata().map_or(0, |m| m.len()).min(limit);
    let mut bytes = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes).map_err(reading(path))?;
    if bytes.len() as u64 > limit {
        let too_large =
            std::io::Error::new(std::io::ErrorKind::FileTooLarge, format!("larger than the limit of {limit} bytes"));
        return Err(reading(path)(too_large));
    }
    Ok(bytes)
}

/// [`read_limited`] for a UTF-8 text file.
pub fn read_text_limited(path: &std::path::Path, limit: u64) -> Result<String, IoError> {
    String::from_utf8(read_limited(path, limit)?).map_err(|_| {
        reading(path)(std::io::Error::new(std::io::ErrorKind::InvalidData, "stream did not contain valid UTF-8"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limited_read_refuses_a_larger_file_without_reading_it_all() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"12345").unwrap();
        assert_eq!(read_limited(&path, 5).unwrap(), b"12345");
        assert!(
            read_limited(std::path::Path::new("/dev/zero"), 5).unwrap_err().to_string().ends_with("not a regular file")
        );
        let error = read_limited(&path, 4).unwrap_err();
        assert_eq!(error.to_string(), format!("cannot read {}: larger than the limit of 4 bytes", path.display()));
        let sparse = std::fs::File::create(dir.path().join("sparse")).unwrap();
        sparse.set_len(64 << 30).unwrap();
        assert!(read_limited(&dir.path().join("sparse"), 1 << 20).is_err(), "64 GiB are not read");
        std::fs::write(&path, b"\xff").unwrap();
        assert!(read_text_limited(&path, 5).unwrap_err().to_string().ends_with("valid UTF-8"));
    }
}
