//! The recurrent cell space (ENAS/DARTS-style highway cell, spec 1.6 and 8.1).
//!
//! The cell has an initial node 0 (computed from `x[t]` and `h[t-1]`) and 11 computed nodes;
//! node `i` (1..=11) reads one predecessor `p` in `0..i` and applies one activation. The cell
//! output is the mean of nodes 1..=11.
//!
//! **Tokens** (22): per node `[pred+1, act+12]`, nodes 1..=11 in order; node `i`'s predecessor
//! tokens are `1..=i`, activation tokens `12..=15` (tanh, relu, sigmoid, identity). Vocab 16.
//!
//! **Flat form**: 22 integers `pred act` per node (as in spec 1.6).
//!
//! **Text form**: `[0 tanh] [0 relu] [1 relu] ...`, one bracket per node (1..=11).
//!
//! **Canonical form**: the identity. Node relabelings that keep the tree shape give
//! isomorphic cells when every cell is trained from scratch, but in the weight-sharing supernet
//! each node position has its own weights, so they are different networks there; they are
//! therefore not merged.
//!
//! ```
//! use models::space::{RnnSpace, SearchSpace};
//! let s = RnnSpace;
//! let arch = s.from_text("0 1 0 1 1 1 3 0 4 1 4 1 5 1 1 1 7 1 1 1 1 2").unwrap();
//! let cell = s.decode(&arch).unwrap();
//! assert_eq!(cell.nodes[3].pred, 3);
//! assert!(s.to_text(&arch).starts_with("[0 relu] [0 relu] [1 relu] [3 tanh]"));
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::draw;
use super::{Arch, ArchError, SearchSpace, SpaceKind, expect_valid, parse_ints};

/// Computed nodes (node 0 is the initial node, not counted).
pub const STEPS: usize = 11;
/// Predecessor `p` is token `p + PRED_OFFSET`.
pub const PRED_OFFSET: usize = 1;
/// Activation `a` is token `a + ACT_OFFSET`.
pub const ACT_OFFSET: usize = 12;

/// An activation of an RNN node, in token order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Activation {
    /// `tanh` (id 0).
    Tanh,
    /// `relu` (id 1).
    Relu,
    /// `sigmoid` (id 2).
    Sigmoid,
    /// `identity` (id 3).
    Identity,
}

impl Activation {
    /// All activations; `ALL[a]` has id `a` (token `a + 12`).
    pub const ALL: [Activation; 4] = [
        Activation::Tanh,
        Activation::Relu,
        Activation::Sigmoid,
        Activation::Identity,
    ];

    /// The name: `tanh`, `relu`, `sigmoid` or `identity`.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Tanh => "tanh",
            Activation::Relu => "relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Identity => "identity",
        }
    }

    /// The id (0..=3).
    pub fn id(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Activation {
    type Err = ArchError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Activation::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| ArchError::Parse {
                space: "rnn".into(),
                text: s.into(),
                why: "unknown activation; activations are tanh, relu, sigmoid, identity".into(),
            })
    }
}

impl Serialize for Activation {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Activation {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One computed node: its predecessor and activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RnnNode {
    /// Predecessor node, `0..i` for node `i`.
    pub pred: usize,
    /// Activation.
    pub act: Activation,
}

/// The structured view of an RNN cell: `nodes[i - 1]` is node `i` (1..=11).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RnnCell {
    /// Nodes 1..=11 in order.
    pub nodes: Vec<RnnNode>,
}

/// The RNN cell space (`rnn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RnnSpace;

impl RnnSpace {
    /// Decodes a token sequence into the structured view.
    pub fn decode(&self, tokens: &[usize]) -> Result<RnnCell, ArchError> {
        self.validate(tokens)?;
        Ok(RnnCell {
            nodes: tokens
                .chunks(2)
                .map(|c| RnnNode {
                    pred: c[0] - PRED_OFFSET,
                    act: Activation::ALL[c[1] - ACT_OFFSET],
                })
                .collect(),
        })
    }

    /// Encodes the structured view as tokens.
    pub fn encode(&self, cell: &RnnCell) -> Result<Arch, ArchError> {
        let flat: Vec<usize> = cell
            .nodes
            .iter()
            .flat_map(|n| [n.pred, n.act.id()])
            .collect();
        self.from_flat(&flat)
    }

    /// Converts the flat form (22 integers `pred act`) to tokens.
    pub fn from_flat(&self, flat: &[usize]) -> Result<Arch, ArchError> {
        if flat.len() != 2 * STEPS {
            return Err(ArchError::WrongLength {
                space: "rnn".into(),
                what: "integers",
                expected: 2 * STEPS,
                got: flat.len(),
            });
        }
        let mut tokens = Vec::with_capacity(flat.len());
        for (pos, &v) in flat.iter().enumerate() {
            let node = pos / 2 + 1;
            let (ok, why, off) = if pos % 2 == 1 {
                (
                    v < 4,
                    "activation ids are 0..=3 (0 tanh, 1 relu, 2 sigmoid, 3 identity)".to_string(),
                    ACT_OFFSET,
                )
            } else {
                (
                    v < node,
                    format!(
                        "the predecessor of node {node} must be a node in 0..={}",
                        node - 1
                    ),
                    PRED_OFFSET,
                )
            };
            if !ok {
                return Err(ArchError::BadValue {
                    pos,
                    value: v,
                    place: self.place(pos),
                    why,
                });
            }
            tokens.push(v + off);
        }
        Ok(tokens)
    }

    /// The flat form of a valid token sequence.
    pub fn to_flat(&self, arch: &[usize]) -> Vec<usize> {
        expect_valid(self, arch);
        arch.iter()
            .enumerate()
            .map(|(pos, &t)| {
                if pos % 2 == 1 {
                    t - ACT_OFFSET
                } else {
                    t - PRED_OFFSET
                }
            })
            .collect()
    }
}

impl SearchSpace for RnnSpace {
    fn kind(&self) -> SpaceKind {
        SpaceKind::Rnn
    }

    fn vocab_size(&self) -> usize {
        ACT_OFFSET + Activation::ALL.len()
    }

    fn seq_len(&self) -> usize {
        2 * STEPS
    }

    fn tokens_per_step(&self) -> usize {
        2
    }

    fn allowed(&self, pos: usize) -> std::ops::RangeInclusive<usize> {
        assert!(pos < self.seq_len(), "position {pos} out of 0..22");
        if pos % 2 == 1 {
            ACT_OFFSET..=ACT_OFFSET + 3
        } else {
            PRED_OFFSET..=PRED_OFFSET + pos / 2
        }
    }

    fn place(&self, pos: usize) -> String {
        format!(
            "node {}, {}",
            pos / 2 + 1,
            if pos % 2 == 1 {
                "activation"
            } else {
                "predecessor"
            }
        )
    }

    fn rule(&self, pos: usize) -> String {
        let node = pos / 2 + 1;
        if pos % 2 == 1 {
            "activations must be tokens 12..=15 (12=tanh, 13=relu, 14=sigmoid, 15=identity)".into()
        } else {
            format!(
                "the predecessor of node {node} must be tokens 1..={node} (nodes 0..={})",
                node - 1
            )
        }
    }

    fn token_name(&self, pos: usize, token: usize) -> String {
        if pos % 2 == 1 {
            match token
                .checked_sub(ACT_OFFSET)
                .and_then(|a| Activation::ALL.get(a))
            {
                Some(a) => a.name().into(),
                None => format!("<bad activation token {token}>"),
            }
        } else if (PRED_OFFSET..=PRED_OFFSET + STEPS).contains(&token) {
            format!("s{}", token - PRED_OFFSET)
        } else {
            format!("<bad predecessor token {token}>")
        }
    }

    fn to_text(&self, arch: &[usize]) -> String {
        let cell = self
            .decode(arch)
            .unwrap_or_else(|e| panic!("invalid architecture: {e}"));
        cell.nodes
            .iter()
            .map(|n| format!("[{} {}]", n.pred, n.act))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Accepts `[0 tanh] [0 relu] ...` (11 nodes) or the flat form (22 integers).
    fn from_text(&self, text: &str) -> Result<Arch, ArchError> {
        if !text.contains('[') {
            return self.from_flat(&parse_ints(SpaceKind::Rnn, text)?);
        }
        let perr = |t: &str, why: &str| ArchError::Parse {
            space: "rnn".into(),
            text: t.into(),
            why: why.into(),
        };
        let mut flat = Vec::with_capacity(2 * STEPS);
        let mut rest = text.trim();
        while !rest.is_empty() {
            let (body, after) = rest
                .strip_prefix('[')
                .and_then(|r| r.split_once(']'))
                .ok_or_else(|| perr(rest, "expected a node `[pred activation]`"))?;
            let mut w = body.split_whitespace();
            let (Some(p), Some(a), None) = (w.next(), w.next(), w.next()) else {
                return Err(perr(body, "a node is `[pred activation]`, e.g. `[0 tanh]`"));
            };
            let p: usize = p
                .parse()
                .map_err(|_| perr(p, "the predecessor must be a node index"))?;
            let a: Activation = a.parse()?;
            flat.extend([p, a.id()]);
            rest = after.trim_start();
        }
        self.from_flat(&flat)
    }

    fn to_dot(&self, arch: &[usize]) -> String {
        draw::dot("rnn", &[self.draw_cell(arch)])
    }

    fn to_svg(&self, arch: &[usize]) -> String {
        draw::svg(&[self.draw_cell(arch)])
    }
}

impl RnnSpace {
    fn draw_cell(&self, arch: &[usize]) -> draw::Cell {
        let cell = self
            .decode(arch)
            .unwrap_or_else(|e| panic!("invalid architecture: {e}"));
        draw::Cell {
            title: "recurrent cell".into(),
            inputs: vec!["0: x[t], h[t-1]".into()],
            nodes: cell
                .nodes
                .iter()
                .enumerate()
                .map(|(i, n)| draw::DrawNode {
                    label: (i + 1).to_string(),
                    feeds: vec![draw::Feed {
                        from: n.pred,
                        op: n.act.name().into(),
                        dead: false,
                    }],
                })
                .collect(),
            output: "mean of 1..11 = h[t]".into(),
            output_from: (1..=STEPS).collect(),
        }
    }
}
