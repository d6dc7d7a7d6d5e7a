//! Nix: the generated data the flake reads, store paths, NAR hashing, and
//! running `nix build`.

pub mod build;
pub mod ci;
pub mod closure;
pub mod data;
pub mod nar;
pub mod seed;
pub mod store;
