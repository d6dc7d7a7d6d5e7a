//! Comparing outputs: opening trees and archives, explaining every
//! difference (with the builds' recorded inputs where they say why), and
//! parity between two backends' builds.

pub mod diff;
pub mod inputs;
pub mod parity;
pub mod tree;

#[cfg(test)]
mod fuzz;
