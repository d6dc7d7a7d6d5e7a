//! Reading a whole decompressed tar stream into memory, bounded: the
//! output never grows past a limit the caller sets (an announced size is
//! only a first guess for the allocation, and never more than the limit),
//! and a stream that would is reported as such, so that the caller can
//! extract it to disk instead.
//!
//! The decoders are the ones the streaming path uses (flate2's
//! multi-member gzip decoder, zstd), so that a stream read into memory and
//! the same stream extracted are accepted or refused alike. libdeflate,
//! measured 1.6× faster on a whole gzip file, was tried and dropped: it
//! accepts deflate streams that zlib and GNU gzip refuse (incomplete
//! Huffman codes; the differential fuzz target in `compare::fuzz` found
//! them), so pgbin would have hashed archives its consumers cannot unpack.

use std::io::Read;

use super::{ArchiveError, unreadable};

/// The bytes `decoder` yields up to its end, or `None` when they exceed
/// `limit`. `expected` (such as a gzip trailer's size) sizes the first
/// allocation, capped by `limit`.
pub fn read_bounded(decoder: impl Read, limit: usize, expected: usize) -> Result<Option<Vec<u8>>, ArchiveError> {
    let mut out = Vec::with_capacity(expected.min(limit));
    decoder.take(limit as u64 + 1).read_to_end(&mut out).map_err(unreadable)?;
    Ok((out.len() <= limit).then_some(out))
}

/// The uncompressed size a gzip file's last trailer announces (modulo
/// 2^32, and only that member's): a first guess, never trusted.
pub fn announced_gzip_size(file: &std::fs::File) -> Option<usize> {
    use std::os::unix::fs::FileExt;
    let size = file.metadata().ok()?.len();
    let mut trailer = [0u8; 4];
    file.read_exact_at(&mut trailer, size.checked_sub(4)?).ok()?;
    Some(u32::from_le_bytes(trailer) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn gunzip(data: &[u8], limit: usize) -> Result<Option<Vec<u8>>, ArchiveError> {
        read_bounded(flate2::bufread::MultiGzDecoder::new(data), limit, u32::MAX as usize)
    }

    #[test]
    fn every_member_of_a_multi_member_file_is_read() {
        let mut data = gzip(b"first member, ");
        data.extend(gzip(b"second member"));
        assert_eq!(gunzip(&data, 1 << 20).unwrap().unwrap(), b"first member, second member");
    }

    #[test]
    fn the_limit_holds_whatever_is_announced() {
        let plain = vec![7u8; 3 << 20];
        let data = gzip(&plain);
        assert_eq!(gunzip(&data, 3 << 20).unwrap().unwrap(), plain, "exactly the limit");
        assert!(gunzip(&data, (3 << 20) - 1).unwrap().is_none());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.gz");
        std::fs::write(&path, &data).unwrap();
        assert_eq!(announced_gzip_size(&std::fs::File::open(&path).unwrap()), Some(3 << 20));
    }

    #[test]
    fn a_truncated_file_says_so_and_garbage_after_it_is_refused() {
        let data = gzip(&vec![1u8; 100_000]);
        let error = gunzip(&data[..data.len() / 2], 1 << 20).unwrap_err().to_string();
        assert!(error.contains("unexpected end of file"), "{error}");
        let mut trailing = data.clone();
        trailing.extend_from_slice(b"not gzip");
        assert!(gunzip(&trailing, 1 << 20).is_err());
    }
}
