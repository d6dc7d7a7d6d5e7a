//! pgbin's end-to-end tests, one integration test binary: one module per
//! concern, sharing the helpers in `util` (run `cargo test --test e2e`, or
//! one concern with e.g. `cargo test --test e2e workflows::`).

mod util;

mod attest;
mod audit;
mod build;
mod cache_key;
mod cli;
mod cross;
mod debian_archive;
mod diff;
mod docker;
mod hostile_archives;
mod hostile_parsers;
mod hostile_paths;
mod hostile_process;
mod hostile_publish;
mod inputs;
mod isa;
mod nix;
mod nix_backend;
mod parity;
mod release;
mod repro;
mod trust;
mod witnesses;
mod workflows;
