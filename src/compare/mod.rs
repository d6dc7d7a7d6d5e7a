//! Comparing outputs: opening trees and archives, explaining every
//! difference, and parity between two backends' builds.

pub mod diff;
pub mod parity;
pub mod tree;

#[cfg(test)]
mod fuzz;
