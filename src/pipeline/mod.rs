//! Whole pipelines that span stages: building and publishing a release with
//! its attestations, and reproducing a build.
pub mod build;
pub mod diff;
pub mod release;
pub mod repro;
