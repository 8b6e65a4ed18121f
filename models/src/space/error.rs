//! The one error type of the search spaces.

use thiserror::Error;

/// Why a token sequence, a flat integer form, a text form or a JSON form is not a valid
/// architecture of a search space.
///
/// Every variant names the position that is wrong and says why, so a message can be shown to a
/// user as is:
///
/// ```text
/// token 9 at position 4 (normal cell, node 1 (hidden state 3), branch a input) is not allowed:
/// inputs of node 1 must be tokens 1..=3 (hidden states 0..=2)
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ArchError {
    /// The sequence has the wrong number of tokens (or integers, for the flat form).
    #[error("{space}: expected {expected} {what}, got {got}")]
    WrongLength {
        /// The space, as its [`SpaceKind`](super::SpaceKind) name.
        space: String,
        /// What was counted: "tokens", "integers" or "edges".
        what: &'static str,
        /// The length the space needs.
        expected: usize,
        /// The length that was given.
        got: usize,
    },
    /// A token is outside the set allowed at its position.
    #[error("token {token} at position {pos} ({place}) is not allowed: {why}")]
    BadToken {
        /// Position in the token sequence (0-based).
        pos: usize,
        /// The offending token.
        token: usize,
        /// What the position means, e.g. "normal cell, node 1 (hidden state 3), branch a input".
        place: String,
        /// The rule that was broken, including the allowed tokens.
        why: String,
    },
    /// A value of the flat integer form (spec 1.1: per node `in1 op1 in2 op2`; RNN: `pred act`)
    /// is out of range.
    #[error("value {value} at position {pos} of the flat form ({place}) is not allowed: {why}")]
    BadValue {
        /// Position in the flat integer sequence (0-based).
        pos: usize,
        /// The offending integer.
        value: usize,
        /// What the position means.
        place: String,
        /// The rule that was broken, including the allowed values.
        why: String,
    },
    /// A text form could not be parsed.
    #[error("{space}: cannot parse {text:?}: {why}")]
    Parse {
        /// The space, as its [`SpaceKind`](super::SpaceKind) name.
        space: String,
        /// The piece of text that could not be parsed (the whole input or the offending part).
        text: String,
        /// What was expected instead.
        why: String,
    },
    /// A JSON form names another space than the one asked to read it.
    #[error("JSON architecture is for space {got:?}, not {expected:?}")]
    WrongSpace {
        /// The space that was asked to read it.
        expected: String,
        /// The space the JSON names.
        got: String,
    },
    /// A JSON form is not well formed.
    #[error("bad JSON architecture: {0}")]
    Json(String),
}
