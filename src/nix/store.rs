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

/// The nixpkgs revision `flake.lock` pins.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FlakePin {
    /// The locked flake reference (`github:NixOS/nixpkgs/<rev>`).
    pub url: String,
    /// The git revision.
    pub rev: String,
    /// The NAR hash of its source tree, SRI form.
    pub nar_hash: String,
}

/// Reads the nixpkgs pin from `<repo>/flake.lock`.
pub fn nixpkgs_pin(repo: &std::path::Path) -> Option<FlakePin> {
    let text = std::fs::read_to_string(repo.join("flake.lock")).ok()?;
    let lock: serde_json::Value = serde_json::from_str(&text).ok()?;
    let locked = &lock["nodes"]["nixpkgs"]["locked"];
    let (owner, name, rev) = (locked["owner"].as_str()?, locked["repo"].as_str()?, locked["rev"].as_str()?);
    Some(FlakePin {
        url: format!("github:{owner}/{name}/{rev}"),
        rev: rev.to_string(),
        nar_hash: locked["narHash"].as_str()?.to_string(),
    })
}

/// Whether the nixpkgs revision pinned in `flake.lock` is already in the
/// local store, i.e. whether flake builds can run offline here.
pub fn pinned_nixpkgs_available(repo: &std::path::Path) -> bool {
    use base64::Engine;
    let Some(pin) = nixpkgs_pin(repo) else { return false };
    let Some(nar) = pin.nar_hash.strip_prefix("sha256-") else { return false };
    let Ok(digest) = base64::engine::general_purpose::STANDARD.decode(nar) else { return false };
    std::path::Path::new(&source_path(&store_dir(), &digest, "source")).exists()
}

/// Length of the hash part of a store path name (nixbase32 of 20 bytes).
pub const HASH_LEN: usize = 32;

/// Whether `byte` is a nixbase32 digit (`0-9a-z` without `e o u t`).
pub fn is_nix_base32(byte: u8) -> bool {
    matches!(byte, b'0'..=b'9' | b'a'..=b'z') && !matches!(byte, b'e' | b'o' | b'u' | b't')
}

/// The package name and version a store path belongs to, read from its name
/// the way `builtins.parseDrvName` does (the version starts at the first `-`
/// followed by a digit), without an output suffix such as `-lib`:
/// `/nix/store/<hash>-icu4c-76.1/lib/libicuuc.so.76` → (`icu4c`, `76.1`).
pub fn package_of(store_dir: &str, path: &str) -> Option<(String, Option<String>)> {
    let rest = path.strip_prefix(store_dir)?.strip_prefix('/')?;
    let name = rest.split('/').next()?;
    let (hash, name) = name.split_at_checked(HASH_LEN)?;
    if !hash.bytes().all(is_nix_base32) {
        return None;
    }
    let name = name.strip_prefix('-')?;
    let name = ["-lib", "-out", "-dev", "-bin"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name);
    let split = name.char_indices().find(|&(i, c)| c == '-' && name[i + 1..].starts_with(|d: char| d.is_ascii_digit()));
    Some(match split {
        Some((i, _)) => (without_platform_config(&name[..i]), Some(name[i + 1..].to_string())),
        None => (without_platform_config(name), None),
    })
}

/// A package name without the platform config nixpkgs puts into the names
/// of cross-built packages, so that one target's packages have one name
/// however they were built. mkDerivation names a package built for another
/// platform `<pname>-<hostPlatform.config>-<version>`
/// (pkgs/stdenv/generic/make-derivation.nix, `hostSuffix`), and a cross
/// compiler carries its target's config in front (`<config>-gcc`):
/// `zlib-aarch64-unknown-linux-gnu` and `aarch64-unknown-linux-gnu-gcc`
/// become `zlib` and `gcc`. A config is `<cpu>-<vendor>-linux-<gnu…|musl…>`.
pub fn without_platform_config(name: &str) -> String {
    let parts: Vec<&str> = name.split('-').collect();
    let is_abi = |part: &str| part.starts_with("gnu") || part.starts_with("musl");
    let config = (2..parts.len().saturating_sub(1)).find(|&i| parts[i] == "linux" && is_abi(parts[i + 1]));
    let Some(linux) = config else { return name.to_string() };
    let (start, end) = (linux - 2, linux + 2);
    let kept: Vec<&str> = if end == parts.len() && start > 0 {
        parts[..start].to_vec()
    } else if start == 0 && end < parts.len() {
        parts[end..].to_vec()
    } else {
        return name.to_string();
    };
    kept.join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_flake_lock_pins_nixpkgs() {
        let pin = nixpkgs_pin(std::path::Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
        assert_eq!(pin.url, format!("github:NixOS/nixpkgs/{}", pin.rev));
        assert_eq!(pin.rev.len(), 40);
        assert!(pin.nar_hash.starts_with("sha256-"));
    }

    #[test]
    fn store_path_names_give_package_and_version() {
        let hash = "8zv8i345w2xn27jrxj4cyjc6x3b4am1q";
        let of = |name: &str| package_of("/nix/store", &format!("/nix/store/{hash}-{name}/lib/libx.so.1"));
        assert_eq!(of("icu4c-76.1"), Some(("icu4c".into(), Some("76.1".into()))));
        assert_eq!(of("gcc-14.3.0-lib"), Some(("gcc".into(), Some("14.3.0".into()))));
        assert_eq!(of("util-linux-minimal-2.41-lib"), Some(("util-linux-minimal".into(), Some("2.41".into()))));
        assert_eq!(of("bundle"), Some(("bundle".into(), None)));
        assert_eq!(of("zlib-aarch64-unknown-linux-gnu-1.3.1"), Some(("zlib".into(), Some("1.3.1".into()))));
        assert_eq!(of("aarch64-unknown-linux-gnu-gcc-14.3.0-lib"), Some(("gcc".into(), Some("14.3.0".into()))));
        assert_eq!(package_of("/nix/store", "/usr/lib/libx.so.1"), None);
        assert_eq!(package_of("/nix/store", "/nix/store/short-name/lib"), None);
    }

    #[test]
    fn cross_names_lose_their_platform_config_and_nothing_else() {
        for (name, plain) in [
            ("zlib-aarch64-unknown-linux-gnu", "zlib"),
            ("icu4c-x86_64-unknown-linux-musl", "icu4c"),
            ("openssl-armv7l-unknown-linux-gnueabihf", "openssl"),
            ("libxml2-mips64el-unknown-linux-gnuabi64", "libxml2"),
            ("aarch64-unknown-linux-gnu-gcc", "gcc"),
            ("powerpc64le-unknown-linux-gnu-stage-final-gcc", "stage-final-gcc"),
            ("util-linux-minimal", "util-linux-minimal"),
            ("linux-headers", "linux-headers"),
            ("glibc-locales", "glibc-locales"),
            ("aarch64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"),
            ("a-aarch64-unknown-linux-gnu-b", "a-aarch64-unknown-linux-gnu-b"),
        ] {
            assert_eq!(without_platform_config(name), plain, "{name}");
        }
    }

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
