//! `<archive>.manifest.json`: what is in an archive and how it was made,
//! with the backend and toolchain identity that shaped it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::build::relocate::BundledLibrary;
use crate::data::matrix::FeatureState;
use crate::data::version::Version;

/// Bump when the recipe changes in a way the key does not otherwise see.
pub const RECIPE_VERSION: u32 = 6;

/// How a build is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The machine's own toolchain.
    Host,
    /// The flake's generic builder.
    Nix,
}

impl Backend {
    /// Lower-case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Backend::Host => "host",
            Backend::Nix => "nix",
        }
    }
}

/// The toolchain a build uses, as far as it can change the output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Toolchain {
    /// The compiler: `cc --version`, first line (host), or the name of
    /// nixpkgs' compiler derivation (nix).
    pub compiler: String,
    /// Debian package name (`name:arch` for another architecture's) →
    /// version, for every build package, the Essential and required sets,
    /// and every package those depend on, transitively (host; see
    /// [`crate::build::inputs`]).
    pub packages: BTreeMap<String, String>,
    /// The pinned nixpkgs every tool and library came from (nix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nixpkgs: Option<crate::nix::store::FlakePin>,
}

/// The source as recorded in the manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManifestSource {
    /// Tarball name.
    pub name: String,
    /// Its SHA-256.
    pub sha256: String,
    /// Its size.
    pub size: Option<u64>,
    /// Trust level reached.
    pub trust: String,
    /// Evidence kinds that verified.
    pub evidence: Vec<String>,
    /// Signer fingerprints.
    pub signers: Vec<String>,
}

/// Hardening of one ELF file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HardeningEntry {
    /// Path inside the archive's top directory.
    pub path: String,
    /// PIE / shared object.
    pub pie: bool,
    /// Full RELRO (RELRO + BIND_NOW).
    pub full_relro: bool,
    /// BIND_NOW.
    pub bind_now: bool,
    /// Stack protector.
    pub stack_protector: bool,
    /// Non-executable stack.
    pub nx: bool,
}

/// `<archive>.manifest.json`: what is in an archive and how it was made.
/// Deterministic: no timestamps, sorted collections.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// Manifest format.
    pub format: u32,
    /// PostgreSQL version.
    pub version: Version,
    /// Target triple.
    pub target: String,
    /// Backend.
    pub backend: Backend,
    /// Archive file name.
    pub archive: String,
    /// Archive SHA-256.
    pub archive_sha256: String,
    /// Configure flags (without the prefix).
    pub configure_flags: Vec<String>,
    /// Names of the enabled features.
    pub features_enabled: Vec<String>,
    /// Every feature with its state.
    pub features: BTreeMap<String, FeatureState>,
    /// Libraries bundled into `lib/`.
    pub bundled_libraries: Vec<BundledLibrary>,
    /// Nix store paths whose references were neutralised (nix backend).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scrubbed_store_references: Vec<String>,
    /// Highest `GLIBC_x.y` required (the glibc floor).
    pub glibc_floor: Option<String>,
    /// The instruction set every ELF file was checked to declare, with the
    /// target's baseline (absent for targets without a known one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isa: Option<crate::build::isa::IsaRecord>,
    /// The build machine's GNU type when the archive was cross-compiled
    /// (`x86_64-linux-gnu`; absent for native builds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_compiled_on: Option<String>,
    /// configure's results for the run tests a cross build cannot run
    /// (cache variable → value): what a native host build's configure
    /// found, or the answers a cross build gave (absent for other backends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configure_checks: Option<BTreeMap<String, String>>,
    /// Regular files and symlinks in the archive.
    pub file_count: usize,
    /// The verified source.
    pub source: ManifestSource,
    /// The toolchain.
    pub toolchain: Toolchain,
    /// Hardening of every ELF file.
    pub hardening: Vec<HardeningEntry>,
    /// `SOURCE_DATE_EPOCH` used.
    pub source_date_epoch: i64,
    /// The build cache key.
    pub cache_key: String,
    /// The pgbin version that built it.
    pub pgbin_version: String,
}
