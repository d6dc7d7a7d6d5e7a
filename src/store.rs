//! Nix store paths of fixed-output sources, computed without Nix.
//!
//! A flat `fetchurl` output with SHA-256 `h` and name `n` lives at
//! `<store>/<hash>-<n>`, where `<hash>` is the nixbase32 encoding of the
//! SHA-256 of `output:out:sha256:<sha256("fixed:out:sha256:<h>:")>:<store>:<n>`
//! folded to 20 bytes. `pgbin seed` computes this and checks that
//! `nix-store --add-fixed` agrees.

use sha2::{Digest, Sha256};

/// The default Nix store directory.
pub const DEFAULT_STORE_DIR: &str = "/nix/store";

/// The store directory: `$NIX_STORE_DIR` or `/nix/store`.
pub fn store_dir() -> String {
    std::env::var("NIX_STORE_DIR").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| DEFAULT_STORE_DIR.to_string())
}

/// Folds a digest to `len` bytes by XOR, as Nix's `compressHash` does.
fn compress_hash(digest: &[u8], len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    for (i, byte) in digest.iter().enumerate() {
        out[i % len] ^= byte;
    }
    out
}

/// The store path of a flat, SHA-256 fixed-output file named `name`.
pub fn fixed_output_path(store_dir: &str, sha256_hex: &str, name: &str) -> String {
    let inner = hex::encode(Sha256::digest(format!("fixed:out:sha256:{sha256_hex}:")));
    let fingerprint = format!("output:out:sha256:{inner}:{store_dir}:{name}");
    let digest = Sha256::digest(fingerprint.as_bytes());
    let hash = nix_base32::to_nix_base32(&compress_hash(&digest, 20));
    format!("{store_dir}/{hash}-{name}")
}

/// The store path of a recursive (NAR) SHA-256 source named `name`, as
/// flake inputs are stored.
pub fn source_path(store_dir: &str, nar_sha256: &[u8], name: &str) -> String {
    let fingerprint = format!("source:sha256:{}:{store_dir}:{name}", hex::encode(nar_sha256));
    let digest = Sha256::digest(fingerprint.as_bytes());
    format!("{store_dir}/{}-{name}", nix_base32::to_nix_base32(&compress_hash(&digest, 20)))
}

/// Whether the nixpkgs revision pinned in `flake.lock` is already in the
/// local store, i.e. whether flake builds can run offline here.
pub fn pinned_nixpkgs_available(repo: &std::path::Path) -> bool {
    use base64::Engine;
    let Ok(text) = std::fs::read_to_string(repo.join("flake.lock")) else { return false };
    let Ok(lock) = serde_json::from_str::<serde_json::Value>(&text) else { return false };
    let Some(nar) = lock["nodes"]["nixpkgs"]["locked"]["narHash"].as_str().and_then(|h| h.strip_prefix("sha256-"))
    else {
        return false;
    };
    let Ok(digest) = base64::engine::general_purpose::STANDARD.decode(nar) else { return false };
    std::path::Path::new(&source_path(&store_dir(), &digest, "source")).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_and_encodes_like_nix() {
        // `nix-store --add-fixed sha256` of a file named "hello" containing
        // "hello\n" (sha256 5891b5b5...) gives this path.
        assert_eq!(
            fixed_output_path(
                "/nix/store",
                "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03",
                "hello"
            ),
            EXPECTED_HELLO
        );
    }

    const EXPECTED_HELLO: &str = "/nix/store/8zv8i345w2xn27jrxj4cyjc6x3b4am1q-hello";
}
