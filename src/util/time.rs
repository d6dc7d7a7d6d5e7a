//! RFC 3339 times as pgbin records them: UTC, whole seconds.

use jiff::Timestamp;

/// A text that is not an RFC 3339 time.
#[derive(Debug, thiserror::Error)]
#[error("'{text}' is not an RFC 3339 time: {reason}")]
pub struct TimeError {
    /// The text given.
    pub text: String,
    /// What the parser said.
    pub reason: String,
}

/// Parses an RFC 3339 time as a timestamp.
pub fn parse_time(text: &str) -> Result<Timestamp, TimeError> {
    text.parse::<Timestamp>().map_err(|e| TimeError { text: text.to_string(), reason: e.to_string() })
}

/// Formats a timestamp as RFC 3339 UTC with second precision.
pub fn format_time(time: Timestamp) -> String {
    time.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The current time, RFC 3339 UTC with second precision.
pub fn now() -> String {
    format_time(Timestamp::now())
}

crate::util::error::usage_errors!(TimeError);
