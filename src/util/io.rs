//! One I/O error type with the context of what was being done, shared by
//! every stage's error type (`#[from] IoError`).

use crate::util::error::{Classify, FailureKind};

/// An I/O failure and what pgbin was doing when it happened.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct IoError {
    /// What was being done, e.g. "cannot read /path".
    pub what: String,
    /// The operating system's error.
    #[source]
    pub source: std::io::Error,
}

impl IoError {
    /// An I/O error with its context.
    pub fn new(what: impl Into<String>, source: impl Into<std::io::Error>) -> IoError {
        IoError { what: what.into(), source: source.into() }
    }
}

impl Classify for IoError {
    fn kind(&self) -> FailureKind {
        FailureKind::Usage
    }
}

/// A `map_err` adapter that adds `what` to an I/O error:
/// `std::fs::read(p).map_err(context(format!("cannot read {}", p.display())))?`.
pub fn context(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> IoError {
    let what = what.into();
    move |source| IoError { what, source }
}

/// The adapter for reading `path`: "cannot read PATH: cause".
pub fn reading(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> IoError {
    context(format!("cannot read {}", path.display()))
}
