//! pgbin: a hermetic, verifiable builder of PostgreSQL binaries.
//!
//! The library owns the data (version catalog, target matrix, source lock,
//! trust policy), verifies source authenticity, and generates the Nix data
//! the flake reads. It never prints; the `pgbin` binary formats results.
//!
//! Its folders are the pipeline's stages, and each imports only the stages
//! before it (docs/architecture.md has the map; a unit test enforces it):
//! `util` ← `data` ← `source` ← `nix` ← `build` ← `attest`, `compare`,
//! `audit` ← `pipeline`.

pub mod attest;
pub mod audit;
pub mod build;
pub mod compare;
pub mod data;
pub mod nix;
pub mod pipeline;
pub mod source;
pub mod util;
