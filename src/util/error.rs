//! What a failure means for the exit status, decided once per error type:
//! a failed check (exit 1) or a usage, data or I/O error (exit 2). The CLI
//! converts any [`Classify`] error into its failure through one `From`.

/// The two kinds of failure pgbin reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// A verification or check failed: exit 1.
    Check,
    /// Bad usage, bad input data or I/O trouble: exit 2.
    Usage,
}

impl FailureKind {
    /// The process exit code of this kind.
    pub fn exit_code(self) -> u8 {
        match self {
            FailureKind::Check => 1,
            FailureKind::Usage => 2,
        }
    }
}

/// An error that knows which kind of failure it is.
pub trait Classify: std::fmt::Display {
    /// Whether this error is a failed check or a usage/I/O error.
    fn kind(&self) -> FailureKind;

    /// The one line shown to the user (default: the error's text).
    fn message(&self) -> String {
        self.to_string()
    }
}

/// Implements [`Classify`] for error types whose every failure is a usage,
/// data or I/O error (exit 2): `usage_errors!(DscError, LockError);`.
macro_rules! usage_errors {
    ($($error:ty),+ $(,)?) => {
        $(
            impl $crate::util::error::Classify for $error {
                fn kind(&self) -> $crate::util::error::FailureKind {
                    $crate::util::error::FailureKind::Usage
                }
            }
        )+
    };
}
pub(crate) use usage_errors;
