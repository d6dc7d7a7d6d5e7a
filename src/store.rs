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
