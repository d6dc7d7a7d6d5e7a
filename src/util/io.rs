//! One I/O error type with the context of what was being done, shared by
//! every stage's error type (`#[from] IoError`).

use crate::util::error::{Classify, FailureKind};

/// An I/O failure and what pgbin was doing when it happened; its message
/// ends in the root cause (see [`explain`]).
#[derive(Debug, thiserror::Error)]
#[error("{what}: {}", explain(.source))]
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

/// `error`'s message followed by its root cause, the deepest
/// [`std::error::Error::source`], unless the message already says it. Errors
/// that wrap others (a `tar` "failed to unpack" around the real failure)
/// often print only their own text; the cause is what the user can act on:
/// "No space left on device", or "unexpected end of file" for a truncated
/// archive (an I/O error made by a library also names its kind when its
/// text does not).
pub fn explain(error: &(dyn std::error::Error + 'static)) -> String {
    let message = error.to_string();
    let mut root = error;
    while let Some(next) = root.source() {
        root = next;
    }
    let mut cause = root.to_string();
    if let Some(io) = root.downcast_ref::<std::io::Error>()
        && io.raw_os_error().is_none()
        && io.kind() != std::io::ErrorKind::Other
    {
        let kind = io.kind().to_string();
        if !cause.contains(&kind) {
            cause = format!("{cause} ({kind})");
        }
    }
    if message.contains(&cause) { message } else { format!("{message}: {cause}") }
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
            read_limited(std::path::Path::new("/dev/zero"), 5)
                .unwrap_err()
                .to_string()
                .contains(": not a regular file")
        );
        let error = read_limited(&path, 4).unwrap_err();
        assert!(
            error.to_string().starts_with(&format!("cannot read {}: larger than the limit of 4 bytes", path.display())),
            "{error}"
        );
        let sparse = std::fs::File::create(dir.path().join("sparse")).unwrap();
        sparse.set_len(64 << 30).unwrap();
        assert!(read_limited(&dir.path().join("sparse"), 1 << 20).is_err(), "64 GiB are not read");
        std::fs::write(&path, b"\xff").unwrap();
        assert!(read_text_limited(&path, 5).unwrap_err().to_string().contains("valid UTF-8"));
    }

    /// A `.tar.gz` of one 200 kB file of incompressible bytes.
    fn archive() -> Vec<u8> {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let content: Vec<u8> = (0..200_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let mut builder = tar::Builder::new(gzip);
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        builder.append_data(&mut header, "top/blob", &content[..]).unwrap();
        builder.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn a_truncated_archive_says_unexpected_end_of_file() {
        let bytes = archive();
        let truncated = &bytes[..bytes.len() / 2];
        let dir = tempfile::tempdir().unwrap();
        let error = tar::Archive::new(flate2::read::GzDecoder::new(truncated)).unpack(dir.path()).unwrap_err();
        assert!(!error.to_string().contains("unexpected end of file"), "tar's own text hides the cause: {error}");
        let wrapped = IoError::new("cannot extract x.tar.gz", error);
        let text = wrapped.to_string();
        assert!(text.starts_with("cannot extract x.tar.gz: failed to unpack"), "{text}");
        assert!(text.ends_with("(unexpected end of file)"), "{text}");
    }

    #[test]
    fn an_operating_system_cause_is_shown_once_in_its_own_words() {
        let full = std::io::Error::from_raw_os_error(libc::ENOSPC);
        let text = IoError::new("cannot write x", full).to_string();
        assert_eq!(text.matches("No space left on device").count(), 1, "{text}");
        assert!(!text.contains("no storage space"), "the kind is not added to the system's text: {text}");
        let inner = IoError::new("writing", std::io::Error::from_raw_os_error(libc::ENOSPC));
        let wrapped = std::io::Error::new(std::io::ErrorKind::StorageFull, inner);
        assert_eq!(explain(&wrapped).matches("No space left on device").count(), 1, "{}", explain(&wrapped));
    }
}
