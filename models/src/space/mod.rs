//! Search spaces: what an architecture is, as the NAO controller sees it.
//!
//! An architecture ([`Arch`]) is a fixed-length sequence of tokens, the form the controller's
//! encoder reads and its decoder writes. Token 0 is `<sos>` and never appears in an
//! architecture. Four spaces are provided, named by [`SpaceKind`]:
//!
//! | space | tokens | vocab | layout |
//! |---|---|---|---|
//! | `cnn-ws` | 40 | 12 | per node `[in1+1, op1+7, in2+1, op2+7]`, 5 nodes normal cell then 5 reduction; 5 ops ([`cnn::WS_OPS`]) |
//! | `cnn` | 40 | 18 | the same with the 11 ops of [`cnn::FULL_OPS`] (op tokens 7..=17) |
//! | `rnn` | 22 | 16 | per node `[pred+1, act+12]`, 11 nodes; activations tanh, relu, sigmoid, identity |
//! | `nb201` | 6 | 6 | one token per edge `op+1`, edges 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2; ops none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3 |
//!
//! Every space implements [`SearchSpace`]: vocabulary and length, the tokens allowed at each
//! position (the decoder masks), validation with errors that name the position and the rule,
//! seeded uniform sampling, symmetric variants (branch swap), a canonical form for
//! de-duplication, text and JSON forms, and drawings (DOT and SVG).
//! The concrete types ([`CnnSpace`], [`RnnSpace`], [`Nb201Space`]) also decode an architecture
//! into a structured view ([`cnn::CnnArch`], [`rnn::RnnCell`], [`nb201::Nb201Cell`]) for the
//! child-network builders.
//!
//! ```
//! use models::space::{space, SearchSpace, SpaceKind};
//! use rand::SeedableRng;
//!
//! let s = space("cnn-ws".parse::<SpaceKind>().unwrap());
//! assert_eq!((s.seq_len(), s.vocab_size()), (40, 12));
//! let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(7);
//! let arch = s.sample(&mut rng);
//! s.validate(&arch).unwrap();
//! let text = s.to_text(&arch);
//! assert_eq!(s.from_text(&text).unwrap(), arch);
//! assert_eq!(s.canonical(&s.symmetric_variant(&arch, &mut rng)), s.canonical(&arch));
//! assert!(s.to_svg(&arch).starts_with("<svg"));
//! ```

pub mod cnn;
mod draw;
pub mod error;
pub mod nb201;
pub mod rnn;

use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;

use rand::RngExt;
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};

pub use cnn::CnnSpace;
pub use draw::esc as escape_markup;
pub use error::ArchError;
pub use nb201::Nb201Space;
pub use rnn::RnnSpace;

/// An architecture in token form: what the controller consumes and produces.
///
/// Its length is [`SearchSpace::seq_len`]; every token lies in [`SearchSpace::allowed`] of its
/// position. Token 0 (`<sos>`) never appears.
pub type Arch = Vec<usize>;

/// The token that starts every decoder input; never part of an architecture.
pub const SOS: usize = 0;

/// Names the four search spaces. Parses from and prints as `cnn-ws`, `cnn`, `rnn`, `nb201`.
///
/// ```
/// use models::space::SpaceKind;
/// let k: SpaceKind = "nb201".parse().unwrap();
/// assert_eq!(k, SpaceKind::Nb201);
/// assert_eq!(k.to_string(), "nb201");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SpaceKind {
    /// The weight-sharing (ENAS-like) CNN space: 5 ops, vocab 12, 40 tokens.
    #[serde(rename = "cnn-ws")]
    CnnWs,
    /// The full CNN space (no weight sharing): 11 ops, vocab 18, 40 tokens.
    #[serde(rename = "cnn")]
    Cnn,
    /// The recurrent cell space: 11 nodes, 4 activations, vocab 16, 22 tokens.
    #[serde(rename = "rnn")]
    Rnn,
    /// The NAS-Bench-201 cell: 6 edges, 5 ops, vocab 6, 6 tokens.
    #[serde(rename = "nb201")]
    Nb201,
}

impl SpaceKind {
    /// All four kinds, in a fixed order.
    pub const ALL: [SpaceKind; 4] = [
        SpaceKind::CnnWs,
        SpaceKind::Cnn,
        SpaceKind::Rnn,
        SpaceKind::Nb201,
    ];

    /// The name used in text, JSON and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            SpaceKind::CnnWs => "cnn-ws",
            SpaceKind::Cnn => "cnn",
            SpaceKind::Rnn => "rnn",
            SpaceKind::Nb201 => "nb201",
        }
    }
}

impl fmt::Display for SpaceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SpaceKind {
    type Err = ArchError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SpaceKind::ALL
            .into_iter()
            .find(|k| k.name() == s.trim())
            .ok_or_else(|| ArchError::Parse {
                space: "space".into(),
                text: s.into(),
                why: "expected one of cnn-ws, cnn, rnn, nb201".into(),
            })
    }
}

/// The search space of a kind, behind the common trait.
///
/// ```
/// use models::space::{space, SearchSpace, SpaceKind};
/// for kind in SpaceKind::ALL {
///     assert_eq!(space(kind).kind(), kind);
/// }
/// ```
pub fn space(kind: SpaceKind) -> Box<dyn SearchSpace> {
    match kind {
        SpaceKind::CnnWs => Box::new(CnnSpace::WS),
        SpaceKind::Cnn => Box::new(CnnSpace::FULL),
        SpaceKind::Rnn => Box::new(RnnSpace),
        SpaceKind::Nb201 => Box::new(Nb201Space),
    }
}

/// The JSON form of an architecture: `{"space":"cnn-ws","tokens":[...],"text":"..."}`.
///
/// `text` is [`SearchSpace::to_text`] of the tokens, for people reading the file; when read
/// back it may be left out or empty, and otherwise must describe the same architecture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchJson {
    /// The space the tokens belong to.
    pub space: SpaceKind,
    /// The token form.
    pub tokens: Vec<usize>,
    /// The text form (informative).
    #[serde(default)]
    pub text: String,
}

/// What the controller, the search loop and the reports need to know about a search space.
///
/// Implemented by [`CnnSpace`] (`cnn-ws` and `cnn`), [`RnnSpace`] and [`Nb201Space`]; get one
/// by kind with [`space`]. In every space the set of tokens allowed at a position does not
/// depend on the other tokens, so an architecture is valid exactly when each of its tokens is
/// in [`allowed`](Self::allowed) at its position, and uniform sampling draws each token
/// independently.
///
/// Methods taking an architecture other than [`validate`](Self::validate),
/// [`from_text`](Self::from_text) and [`from_json`](Self::from_json) expect a valid one and
/// panic otherwise.
pub trait SearchSpace: fmt::Debug + Send + Sync {
    /// Which space this is.
    fn kind(&self) -> SpaceKind;

    /// Number of token values, `<sos>` included (12, 18, 16, 6).
    fn vocab_size(&self) -> usize;

    /// Number of tokens in an architecture (40, 40, 22, 6).
    fn seq_len(&self) -> usize;

    /// How many consecutive tokens the encoder groups into one step (spec 1.4): one CNN branch
    /// (2), one RNN node (2), one NB201 edge (1).
    fn tokens_per_step(&self) -> usize;

    /// The tokens allowed at position `pos` (the decoder mask of spec 1.5).
    ///
    /// # Panics
    /// If `pos >= seq_len()`.
    fn allowed(&self, pos: usize) -> RangeInclusive<usize>;

    /// What position `pos` means, e.g. `"normal cell, node 1 (hidden state 3), branch a input"`.
    fn place(&self, pos: usize) -> String;

    /// The rule for position `pos` in words, naming the allowed tokens.
    fn rule(&self, pos: usize) -> String;

    /// A short name for a token value at position `pos`, e.g. `"h3"` or `"sep_conv_3x3"`.
    fn token_name(&self, pos: usize, token: usize) -> String;

    /// Text form, see [`from_text`](Self::from_text) for each space's format.
    fn to_text(&self, arch: &[usize]) -> String;

    /// Reads the text form written by [`to_text`](Self::to_text); each space also accepts its
    /// flat integer form (CNN: 40 integers `in1 op1 in2 op2` per node, normal then reduction,
    /// `|` and commas ignored; RNN: 22 integers `pred act`; NB201: 6 op ids, edge order).
    #[allow(clippy::wrong_self_convention)] // a space reads text: `space.from_text(s)`
    fn from_text(&self, text: &str) -> Result<Arch, ArchError>;

    /// The cell(s) as a Graphviz DOT graph (one cluster per cell).
    fn to_dot(&self, arch: &[usize]) -> String;

    /// The cell(s) as a standalone SVG picture, laid out without Graphviz: inputs on top,
    /// one node per row in a staircase, each state's output running down its own column, op
    /// labels in boxes on the edges, the cell output (concat / mean) at the bottom.
    fn to_svg(&self, arch: &[usize]) -> String;

    /// The decoder mask at `pos`: `mask[t]` is true when token `t` is allowed.
    fn mask(&self, pos: usize) -> Vec<bool> {
        let r = self.allowed(pos);
        (0..self.vocab_size()).map(|t| r.contains(&t)).collect()
    }

    /// Checks length and every token against [`allowed`](Self::allowed); the error names the
    /// first wrong position, what it means, and the rule.
    fn validate(&self, tokens: &[usize]) -> Result<(), ArchError> {
        if tokens.len() != self.seq_len() {
            return Err(ArchError::WrongLength {
                space: self.kind().to_string(),
                what: "tokens",
                expected: self.seq_len(),
                got: tokens.len(),
            });
        }
        for (pos, &token) in tokens.iter().enumerate() {
            if !self.allowed(pos).contains(&token) {
                return Err(ArchError::BadToken {
                    pos,
                    token,
                    place: self.place(pos),
                    why: self.rule(pos),
                });
            }
        }
        Ok(())
    }

    /// A uniformly random architecture: each token uniform over its allowed set.
    fn sample(&self, rng: &mut Pcg64Mcg) -> Arch {
        (0..self.seq_len())
            .map(|pos| rng.random_range(self.allowed(pos)))
            .collect()
    }

    /// A random architecture computing the same function (spec 2): for the CNN spaces the two
    /// branches of one uniformly chosen node are swapped in each cell; other spaces return
    /// the architecture unchanged.
    fn symmetric_variant(&self, arch: &[usize], rng: &mut Pcg64Mcg) -> Arch {
        let _ = rng;
        arch.to_vec()
    }

    /// A representative of the architectures known to compute the same function, for
    /// de-duplication: equal canonical forms mean the same network.
    fn canonical(&self, arch: &[usize]) -> Arch {
        arch.to_vec()
    }

    /// Number of valid architectures (token sequences; before canonicalisation).
    fn num_archs(&self) -> u128 {
        (0..self.seq_len())
            .map(|pos| self.allowed(pos).count() as u128)
            .product()
    }

    /// JSON form, see [`ArchJson`].
    fn to_json(&self, arch: &[usize]) -> String {
        let j = ArchJson {
            space: self.kind(),
            tokens: arch.to_vec(),
            text: self.to_text(arch),
        };
        serde_json::to_string(&j).expect("an ArchJson always serialises")
    }

    /// Reads [`to_json`](Self::to_json): checks the space, validates the tokens, and checks a
    /// non-empty `text` describes the same architecture.
    #[allow(clippy::wrong_self_convention)] // a space reads JSON: `space.from_json(s)`
    fn from_json(&self, json: &str) -> Result<Arch, ArchError> {
        let j: ArchJson = serde_json::from_str(json).map_err(|e| ArchError::Json(e.to_string()))?;
        if j.space != self.kind() {
            return Err(ArchError::WrongSpace {
                expected: self.kind().to_string(),
                got: j.space.to_string(),
            });
        }
        self.validate(&j.tokens)?;
        if !j.text.trim().is_empty() {
            let from_text = self.from_text(&j.text)?;
            if from_text != j.tokens {
                return Err(ArchError::Json(format!(
                    "\"text\" {:?} does not describe \"tokens\" {:?}",
                    j.text, j.tokens
                )));
            }
        }
        Ok(j.tokens)
    }
}

/// Splits a flat integer form (whitespace, commas and `|` separate) into integers.
pub(crate) fn parse_ints(space: SpaceKind, text: &str) -> Result<Vec<usize>, ArchError> {
    text.split(|c: char| c.is_whitespace() || c == ',' || c == '|')
        .filter(|w| !w.is_empty())
        .map(|w| {
            w.parse::<usize>().map_err(|_| ArchError::Parse {
                space: space.to_string(),
                text: w.into(),
                why: "expected a non-negative integer in the flat form".into(),
            })
        })
        .collect()
}

/// Panics with the validation error if `arch` is not valid in `space`.
pub(crate) fn expect_valid(space: &dyn SearchSpace, arch: &[usize]) {
    if let Err(e) = space.validate(arch) {
        panic!("invalid {} architecture {arch:?}: {e}", space.kind());
    }
}
