//! Helpers every stage uses and that know nothing of PostgreSQL: atomic file
//! writes and all-or-nothing publishing, confined and bounded reads of files
//! named by data, extracting untrusted archives, streamed SHA-256, RFC 3339
//! times, I/O error context, the classification of failures into exit
//! codes, child processes that die with pgbin, and scratch files that a
//! later pgbin can tell abandoned.

pub mod archive;
pub mod confined;
pub mod digest;
pub mod error;
pub mod fs;
#[cfg(test)]
pub(crate) mod fuzz;
pub mod io;
pub mod process;
pub mod progress;
pub mod publish;
pub mod scratch;
pub mod shell;
pub mod time;
