//! The error returned when a value of the codec cannot be built or parsed.

use std::fmt;

/// A value could not be built or parsed: what was being read, and why it was refused.
///
/// Returned by the validated constructors (such as [`Pathname::new`](crate::Pathname::new))
/// and by the parsers of addresses, timestamps, listings, facts and feature lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    what: &'static str,
    reason: &'static str,
}

impl ParseError {
    pub(crate) const fn new(what: &'static str, reason: &'static str) -> Self {
        Self { what, reason }
    }

    /// An error about `what`, refused because of `reason` (for crates building on this one).
    pub const fn new_static(what: &'static str, reason: &'static str) -> Self {
        Self { what, reason }
    }

    /// What was being parsed, e.g. `"pathname"` or `"PASV reply"`.
    pub fn what(&self) -> &'static str {
        self.what
    }

    /// Why it was refused, e.g. `"contains CR, LF or NUL"`.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {}", self.what, self.reason)
    }
}

impl std::error::Error for ParseError {}
