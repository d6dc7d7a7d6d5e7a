//! The source stage's error: evidence that does not verify (a failed check)
//! or evidence that could not be read (I/O).

use crate::source::witness_clone::CloneCheckError;
use crate::util::confined::ConfinedError;
use crate::util::error::{Classify, FailureKind};
use crate::util::io::IoError;

/// Why verification failed. [`TrustError::is_verification_failure`] separates
/// "the evidence is bad" (exit 1) from "could not even check" (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// A file could not be read.
    #[error(transparent)]
    Io(#[from] IoError),
    /// A document or certificate named by data is not a regular file inside
    /// the repository, or is too large: it was not read, so this is a data
    /// error (exit 2), not a failed verification.
    #[error(transparent)]
    File(#[from] ConfinedError),
    /// The policy or a certificate is unusable.
    #[error("trust policy: {0}")]
    Policy(String),
    /// The signature did not verify.
    #[error("{document}: {reason}")]
    Signature {
        /// Which document.
        document: String,
        /// What is wrong, in one line.
        reason: String,
    },
    /// The evidence verified but says something else than the lock.
    #[error("{document}: {reason}")]
    Mismatch {
        /// Which document.
        document: String,
        /// What disagrees.
        reason: String,
    },
    /// A witness checked against a local clone of its repository: a
    /// contradiction is a failed check, an unusable clone a usage error.
    #[error(transparent)]
    Clone(#[from] CloneCheckError),
    /// The tarball's bytes are not the locked ones.
    #[error("{path}: {reason}")]
    Tarball {
        /// Which file.
        path: String,
        /// What differs.
        reason: String,
    },
}

impl TrustError {
    /// True for failures of the evidence or the file itself (exit code 1);
    /// false for I/O and configuration trouble (exit code 2).
    pub fn is_verification_failure(&self) -> bool {
        match self {
            TrustError::Clone(e) => e.kind() == FailureKind::Check,
            other => {
                matches!(other, TrustError::Signature { .. } | TrustError::Mismatch { .. } | TrustError::Tarball { .. })
            }
        }
    }
}

impl Classify for TrustError {
    fn kind(&self) -> FailureKind {
        if self.is_verification_failure() { FailureKind::Check } else { FailureKind::Usage }
    }

    fn message(&self) -> String {
        if let TrustError::Clone(e) = self {
            return e.message();
        }
        match self.kind() {
            FailureKind::Check => format!("verification failed: {self}"),
            FailureKind::Usage => self.to_string(),
        }
    }
}
