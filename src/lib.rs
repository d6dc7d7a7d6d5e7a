//! pgbin: a hermetic, verifiable builder of PostgreSQL binaries.
//!
//! The library owns the data (version catalog, target matrix, source lock,
//! trust policy), verifies source authenticity, and generates the Nix data
//! the flake reads. It never prints; the `pgbin` binary formats results.

pub mod audit;
pub mod build;
pub mod catalog;
pub mod debian;
pub mod diff;
pub mod docker;
pub mod elf;
pub mod evidence;
pub mod fetch;
pub mod fsutil;
pub mod hostbuild;
pub mod lock;
pub mod nar;
pub mod nixdata;
pub mod package;
pub mod parity;
pub mod project;
pub mod provenance;
pub mod release;
pub mod relocate;
pub mod repo;
pub mod sbom;
pub mod signing;
pub mod smoke;
pub mod store;
pub mod targets;
pub mod tree;
pub mod trust;
pub mod version;
