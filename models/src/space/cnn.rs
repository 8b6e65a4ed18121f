//! The two CNN cell spaces (NASNet-style cells, spec 1.1-1.3), one implementation
//! parameterised by the op list.
//!
//! A cell has 5 computed nodes. Hidden states: 0 = output of cell k-2, 1 = output of cell
//! k-1, 2..=6 = the nodes in order. Node `n` (0..=4, hidden state `n + 2`) sums two branches,
//! each an (input hidden state in `0..=n+1`, op). The cell's output concatenates its loose
//! ends (hidden states never used as an input). An architecture is a normal cell and a
//! reduction cell.
//!
//! **Tokens** (40): per node `[in1+1, op1+7, in2+1, op2+7]`, nodes 0..=4 of the normal cell
//! then of the reduction cell. Input tokens of node `n` are `1..=n+2`; op tokens are
//! `7..=11` in `cnn-ws` ([`WS_OPS`]) and `7..=17` in `cnn` ([`FULL_OPS`]).
//!
//! **Flat form** (spec 1.1, as printed by benches): the same 40 numbers without the offsets,
//! `in1 op1 in2 op2` per node, where `op` indexes the space's op list.
//!
//! **Text form**: `normal: [0 sep_conv_3x3, 1 identity] [...] x5 | reduction: [...] x5`, one
//! bracket per node holding its two branches `input op`.
//!
//! ```
//! use models::space::{CnnSpace, SearchSpace};
//! let s = CnnSpace::WS;
//! let arch = s
//!     .from_text("0 0 1 3 1 3 0 4 2 2 0 1 3 4 2 0 0 2 4 4 | 1 1 0 0 1 3 2 2 3 2 0 4 2 3 4 4 1 0 5 1")
//!     .unwrap();
//! let cells = s.decode(&arch).unwrap();
//! assert_eq!(cells.normal.nodes[0].b.op.name(), "max_pool_3x3");
//! assert_eq!(cells.normal.loose_ends(), vec![5, 6]);
//! assert!(s.to_text(&arch).starts_with("normal: [0 sep_conv_3x3, 1 max_pool_3x3] [1 max_pool_3x3, 0 identity]"));
//! ```

use std::fmt;
use std::str::FromStr;

use rand::RngExt;
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};

use super::draw;
use super::{Arch, ArchError, SearchSpace, SpaceKind, expect_valid, parse_ints};

/// Computed nodes per cell.
pub const NODES: usize = 5;
/// Hidden states per cell: 2 inputs + 5 nodes.
pub const STATES: usize = NODES + 2;
/// Tokens per cell (5 nodes x 2 branches x 2 tokens).
pub const CELL_TOKENS: usize = NODES * 4;
/// Input index `i` is token `i + INPUT_OFFSET`.
pub const INPUT_OFFSET: usize = 1;
/// Op index `o` is token `o + OP_OFFSET`.
pub const OP_OFFSET: usize = 7;

/// A CNN op. The 5 weight-sharing ops come first, in the order of [`WS_OPS`]; the full
/// space's 11 are listed in [`FULL_OPS`]. Names follow the usual DARTS/NAO spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CnnOp {
    /// Separable conv 3x3, applied twice (`sep_conv_3x3`).
    SepConv3x3,
    /// Separable conv 5x5, applied twice (`sep_conv_5x5`).
    SepConv5x5,
    /// Average pool 3x3 (`avg_pool_3x3`).
    AvgPool3x3,
    /// Max pool 3x3 (`max_pool_3x3`).
    MaxPool3x3,
    /// Identity; factorized reduce at stride 2 (`identity`).
    Identity,
    /// ReLU-conv 1x1-BN (`conv_1x1`).
    Conv1x1,
    /// ReLU-conv 3x3-BN (`conv_3x3`).
    Conv3x3,
    /// Conv 1x3 then 3x1 (`conv_1x3_3x1`).
    Conv1x3_3x1,
    /// Conv 1x7 then 7x1 (`conv_1x7_7x1`).
    Conv1x7_7x1,
    /// Max pool 2x2 (`max_pool_2x2`).
    MaxPool2x2,
    /// Max pool 5x5 (`max_pool_5x5`).
    MaxPool5x5,
    /// Average pool 2x2 (`avg_pool_2x2`).
    AvgPool2x2,
    /// Average pool 5x5 (`avg_pool_5x5`).
    AvgPool5x5,
}

/// The weight-sharing space's ops, in token order (spec 1.2): op `o` is token `o + 7`.
pub const WS_OPS: [CnnOp; 5] = [
    CnnOp::SepConv3x3,
    CnnOp::SepConv5x5,
    CnnOp::AvgPool3x3,
    CnnOp::MaxPool3x3,
    CnnOp::Identity,
];

/// The full space's 11 ops, in token order (spec 1.3 table; PT-V1 ids 5..=15 minus 5).
pub const FULL_OPS: [CnnOp; 11] = [
    CnnOp::Identity,
    CnnOp::Conv1x1,
    CnnOp::Conv3x3,
    CnnOp::Conv1x3_3x1,
    CnnOp::Conv1x7_7x1,
    CnnOp::MaxPool2x2,
    CnnOp::MaxPool3x3,
    CnnOp::MaxPool5x5,
    CnnOp::AvgPool2x2,
    CnnOp::AvgPool3x3,
    CnnOp::AvgPool5x5,
];

impl CnnOp {
    /// Every op, each once.
    pub const ALL: [CnnOp; 13] = [
        CnnOp::SepConv3x3,
        CnnOp::SepConv5x5,
        CnnOp::AvgPool3x3,
        CnnOp::MaxPool3x3,
        CnnOp::Identity,
        CnnOp::Conv1x1,
        CnnOp::Conv3x3,
        CnnOp::Conv1x3_3x1,
        CnnOp::Conv1x7_7x1,
        CnnOp::MaxPool2x2,
        CnnOp::MaxPool5x5,
        CnnOp::AvgPool2x2,
        CnnOp::AvgPool5x5,
    ];

    /// The op's name, e.g. `"sep_conv_3x3"`, `"conv_1x7_7x1"`, `"identity"`.
    pub fn name(self) -> &'static str {
        match self {
            CnnOp::SepConv3x3 => "sep_conv_3x3",
            CnnOp::SepConv5x5 => "sep_conv_5x5",
            CnnOp::AvgPool3x3 => "avg_pool_3x3",
            CnnOp::MaxPool3x3 => "max_pool_3x3",
            CnnOp::Identity => "identity",
            CnnOp::Conv1x1 => "conv_1x1",
            CnnOp::Conv3x3 => "conv_3x3",
            CnnOp::Conv1x3_3x1 => "conv_1x3_3x1",
            CnnOp::Conv1x7_7x1 => "conv_1x7_7x1",
            CnnOp::MaxPool2x2 => "max_pool_2x2",
            CnnOp::MaxPool5x5 => "max_pool_5x5",
            CnnOp::AvgPool2x2 => "avg_pool_2x2",
            CnnOp::AvgPool5x5 => "avg_pool_5x5",
        }
    }
}

impl fmt::Display for CnnOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for CnnOp {
    type Err = ArchError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CnnOp::ALL
            .into_iter()
            .find(|o| o.name() == s)
            .ok_or_else(|| ArchError::Parse {
                space: "cnn".into(),
                text: s.into(),
                why: format!(
                    "unknown op; ops are {}",
                    CnnOp::ALL.map(CnnOp::name).join(", ")
                ),
            })
    }
}

impl Serialize for CnnOp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for CnnOp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One branch of a node: an input hidden state and the op applied to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Branch {
    /// Hidden-state index, `0..=n+1` for node `n`.
    pub input: usize,
    /// The op.
    pub op: CnnOp,
}

/// A node: the sum of two branches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Node {
    /// First branch (tokens `in1 op1`).
    pub a: Branch,
    /// Second branch (tokens `in2 op2`).
    pub b: Branch,
}

/// One cell: 5 nodes; node `n` is hidden state `n + 2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CnnCell {
    /// The nodes in order.
    pub nodes: [Node; NODES],
}

impl CnnCell {
    /// Hidden states (in `0..=6`, ascending) never used as a branch input: the cell output
    /// concatenates them. Always contains 6, may contain 0 and 1.
    pub fn loose_ends(&self) -> Vec<usize> {
        let mut used = [false; STATES];
        for n in &self.nodes {
            used[n.a.input] = true;
            used[n.b.input] = true;
        }
        (0..STATES).filter(|&s| !used[s]).collect()
    }
}

/// A CNN architecture: a normal cell and a reduction cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CnnArch {
    /// The normal cell (stride 1).
    pub normal: CnnCell,
    /// The reduction cell (stride 2 on branches reading hidden states 0 and 1).
    pub reduction: CnnCell,
}

impl CnnArch {
    /// Reads the flat integer form of `space` (40 integers, see the module docs).
    pub fn from_flat(space: &CnnSpace, flat: &[usize]) -> Result<CnnArch, ArchError> {
        space.decode(&space.from_flat(flat)?)
    }

    /// The two cells, normal first.
    pub fn cells(&self) -> [&CnnCell; 2] {
        [&self.normal, &self.reduction]
    }
}

/// A CNN cell space, given by its op list. Use [`CnnSpace::WS`] (`cnn-ws`) or
/// [`CnnSpace::FULL`] (`cnn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CnnSpace {
    kind: SpaceKind,
    ops: &'static [CnnOp],
}

/// Where a token sits: cell (0 normal, 1 reduction), node, branch (0 = a), op or input.
fn locate(pos: usize) -> (usize, usize, usize, bool) {
    let cell = pos / CELL_TOKENS;
    let r = pos % CELL_TOKENS;
    (cell, r / 4, (r % 4) / 2, r % 2 == 1)
}

const CELL_NAMES: [&str; 2] = ["normal", "reduction"];

impl CnnSpace {
    /// The weight-sharing space: [`WS_OPS`], vocab 12.
    pub const WS: CnnSpace = CnnSpace {
        kind: SpaceKind::CnnWs,
        ops: &WS_OPS,
    };
    /// The full space: [`FULL_OPS`], vocab 18.
    pub const FULL: CnnSpace = CnnSpace {
        kind: SpaceKind::Cnn,
        ops: &FULL_OPS,
    };

    /// The ops in token order: op `o` is token `o + 7`.
    pub fn ops(&self) -> &'static [CnnOp] {
        self.ops
    }

    /// The index of `op` in this space's op list, if it has it.
    pub fn op_index(&self, op: CnnOp) -> Option<usize> {
        self.ops.iter().position(|&o| o == op)
    }

    fn op_list(&self) -> String {
        self.ops
            .iter()
            .enumerate()
            .map(|(i, o)| format!("{i} {o}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Decodes a token sequence into the structured view.
    pub fn decode(&self, tokens: &[usize]) -> Result<CnnArch, ArchError> {
        self.validate(tokens)?;
        let cell = |c: usize| {
            let t = &tokens[c * CELL_TOKENS..(c + 1) * CELL_TOKENS];
            let br = |i: usize| Branch {
                input: t[i] - INPUT_OFFSET,
                op: self.ops[t[i + 1] - OP_OFFSET],
            };
            CnnCell {
                nodes: std::array::from_fn(|n| Node {
                    a: br(4 * n),
                    b: br(4 * n + 2),
                }),
            }
        };
        Ok(CnnArch {
            normal: cell(0),
            reduction: cell(1),
        })
    }

    /// Encodes the structured view as tokens. Fails if an op is not in this space or an
    /// input index is out of range.
    pub fn encode(&self, arch: &CnnArch) -> Result<Arch, ArchError> {
        let mut flat = Vec::with_capacity(2 * CELL_TOKENS);
        for cell in arch.cells() {
            for node in &cell.nodes {
                for br in [node.a, node.b] {
                    let o = self.op_index(br.op).ok_or_else(|| ArchError::Parse {
                        space: self.kind.to_string(),
                        text: br.op.name().into(),
                        why: format!("op not in this space; its ops are {}", self.op_list()),
                    })?;
                    flat.extend([br.input, o]);
                }
            }
        }
        self.from_flat(&flat)
    }

    /// Converts the flat integer form (`in1 op1 in2 op2` per node, 40 integers) to tokens,
    /// with errors in terms of hidden states and op ids.
    pub fn from_flat(&self, flat: &[usize]) -> Result<Arch, ArchError> {
        if flat.len() != 2 * CELL_TOKENS {
            return Err(ArchError::WrongLength {
                space: self.kind.to_string(),
                what: "integers",
                expected: 2 * CELL_TOKENS,
                got: flat.len(),
            });
        }
        let mut tokens = Vec::with_capacity(flat.len());
        for (pos, &v) in flat.iter().enumerate() {
            let (_, node, _, is_op) = locate(pos);
            let (ok, why, off) = if is_op {
                (
                    v < self.ops.len(),
                    format!("op ids are 0..={} ({})", self.ops.len() - 1, self.op_list()),
                    OP_OFFSET,
                )
            } else {
                (
                    v <= node + 1,
                    format!(
                        "inputs of node {node} must be hidden states 0..={}",
                        node + 1
                    ),
                    INPUT_OFFSET,
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

    /// The flat integer form of a valid token sequence.
    pub fn to_flat(&self, arch: &[usize]) -> Vec<usize> {
        expect_valid(self, arch);
        arch.iter()
            .enumerate()
            .map(|(pos, &t)| {
                if locate(pos).3 {
                    t - OP_OFFSET
                } else {
                    t - INPUT_OFFSET
                }
            })
            .collect()
    }

    /// Parses the bracketed text form of one cell: `[in op, in op] x5`.
    fn parse_cell(&self, text: &str, out: &mut Vec<usize>) -> Result<(), ArchError> {
        let perr = |t: &str, why: String| ArchError::Parse {
            space: self.kind.to_string(),
            text: t.into(),
            why,
        };
        let mut rest = text.trim();
        let mut nodes = 0;
        while !rest.is_empty() {
            let inner = rest
                .strip_prefix('[')
                .and_then(|r| r.split_once(']'))
                .ok_or_else(|| perr(rest, "expected a node `[input op, input op]`".into()))?;
            let (body, after) = inner;
            let branches: Vec<&str> = body.split(',').map(str::trim).collect();
            if branches.len() != 2 {
                return Err(perr(
                    body,
                    format!("node {nodes} needs 2 branches `input op`, separated by a comma"),
                ));
            }
            for b in branches {
                let mut w = b.split_whitespace();
                let (Some(i), Some(o), None) = (w.next(), w.next(), w.next()) else {
                    return Err(perr(
                        b,
                        "a branch is `input op`, e.g. `0 sep_conv_3x3`".into(),
                    ));
                };
                let i: usize = i
                    .parse()
                    .map_err(|_| perr(i, "the input must be a hidden-state index".into()))?;
                let op: CnnOp = o.parse()?;
                let o = self.op_index(op).ok_or_else(|| {
                    perr(
                        o,
                        format!(
                            "op not in the {} space; its ops are {}",
                            self.kind,
                            self.op_list()
                        ),
                    )
                })?;
                out.extend([i, o]);
            }
            nodes += 1;
            rest = after.trim_start();
        }
        if nodes != NODES {
            return Err(perr(
                text.trim(),
                format!("a cell has {NODES} nodes `[input op, input op]`, found {nodes}"),
            ));
        }
        Ok(())
    }

    fn draw_cells(&self, arch: &[usize]) -> Vec<draw::Cell> {
        let a = self
            .decode(arch)
            .unwrap_or_else(|e| panic!("invalid architecture: {e}"));
        a.cells()
            .iter()
            .zip(CELL_NAMES)
            .map(|(cell, name)| draw::Cell {
                title: format!("{name} cell"),
                inputs: vec!["0: c[k-2]".into(), "1: c[k-1]".into()],
                nodes: cell
                    .nodes
                    .iter()
                    .enumerate()
                    .map(|(n, node)| draw::DrawNode {
                        label: (n + 2).to_string(),
                        feeds: [node.a, node.b]
                            .iter()
                            .map(|b| draw::Feed {
                                from: b.input,
                                op: b.op.name().into(),
                                dead: false,
                            })
                            .collect(),
                    })
                    .collect(),
                output: "concat = c[k]".into(),
                output_from: cell.loose_ends(),
            })
            .collect()
    }
}

impl SearchSpace for CnnSpace {
    fn kind(&self) -> SpaceKind {
        self.kind
    }

    fn vocab_size(&self) -> usize {
        OP_OFFSET + self.ops.len()
    }

    fn seq_len(&self) -> usize {
        2 * CELL_TOKENS
    }

    fn tokens_per_step(&self) -> usize {
        2
    }

    fn allowed(&self, pos: usize) -> std::ops::RangeInclusive<usize> {
        assert!(pos < self.seq_len(), "position {pos} out of 0..40");
        let (_, node, _, is_op) = locate(pos);
        if is_op {
            OP_OFFSET..=OP_OFFSET + self.ops.len() - 1
        } else {
            INPUT_OFFSET..=INPUT_OFFSET + node + 1
        }
    }

    fn place(&self, pos: usize) -> String {
        let (cell, node, branch, is_op) = locate(pos);
        format!(
            "{} cell, node {node} (hidden state {}), branch {} {}",
            CELL_NAMES[cell],
            node + 2,
            ["a", "b"][branch],
            if is_op { "op" } else { "input" }
        )
    }

    fn rule(&self, pos: usize) -> String {
        let (_, node, _, is_op) = locate(pos);
        if is_op {
            format!(
                "ops must be tokens {}..={} ({})",
                OP_OFFSET,
                OP_OFFSET + self.ops.len() - 1,
                self.ops
                    .iter()
                    .enumerate()
                    .map(|(i, o)| format!("{}={o}", i + OP_OFFSET))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            format!(
                "inputs of node {node} must be tokens 1..={} (hidden states 0..={})",
                node + 2,
                node + 1
            )
        }
    }

    fn token_name(&self, pos: usize, token: usize) -> String {
        if locate(pos).3 {
            match token.checked_sub(OP_OFFSET).and_then(|o| self.ops.get(o)) {
                Some(o) => o.name().into(),
                None => format!("<bad op token {token}>"),
            }
        } else if token >= INPUT_OFFSET && token < INPUT_OFFSET + STATES {
            format!("h{}", token - INPUT_OFFSET)
        } else {
            format!("<bad input token {token}>")
        }
    }

    fn symmetric_variant(&self, arch: &[usize], rng: &mut Pcg64Mcg) -> Arch {
        expect_valid(self, arch);
        let mut v = arch.to_vec();
        for cell in 0..2 {
            let node = rng.random_range(0..NODES);
            let at = cell * CELL_TOKENS + node * 4;
            v.swap(at, at + 2);
            v.swap(at + 1, at + 3);
        }
        v
    }

    /// Orders the two branches of every node by `(input, op)` token, so that branch-swapped
    /// architectures (the only symmetry handled) compare equal.
    fn canonical(&self, arch: &[usize]) -> Arch {
        expect_valid(self, arch);
        let mut v = arch.to_vec();
        for at in (0..v.len()).step_by(4) {
            if (v[at + 2], v[at + 3]) < (v[at], v[at + 1]) {
                v.swap(at, at + 2);
                v.swap(at + 1, at + 3);
            }
        }
        v
    }

    fn to_text(&self, arch: &[usize]) -> String {
        let a = self
            .decode(arch)
            .unwrap_or_else(|e| panic!("invalid architecture: {e}"));
        let cell = |c: &CnnCell| {
            c.nodes
                .iter()
                .map(|n| format!("[{} {}, {} {}]", n.a.input, n.a.op, n.b.input, n.b.op))
                .collect::<Vec<_>>()
                .join(" ")
        };
        format!(
            "normal: {} | reduction: {}",
            cell(&a.normal),
            cell(&a.reduction)
        )
    }

    /// Accepts the text form (`normal: [0 sep_conv_3x3, 1 identity] ... | reduction: ...`,
    /// the `normal:`/`reduction:` labels optional) or the flat integer form.
    fn from_text(&self, text: &str) -> Result<Arch, ArchError> {
        if !text.contains('[') {
            return self.from_flat(&parse_ints(self.kind, text)?);
        }
        let parts: Vec<&str> = text.split('|').collect();
        if parts.len() != 2 {
            return Err(ArchError::Parse {
                space: self.kind.to_string(),
                text: text.into(),
                why: "expected `normal: [..] x5 | reduction: [..] x5` (one `|`)".into(),
            });
        }
        let mut flat = Vec::with_capacity(2 * CELL_TOKENS);
        for (part, name) in parts.iter().zip(CELL_NAMES) {
            let p = part.trim();
            let p = p
                .strip_prefix(name)
                .map(|r| r.trim_start().strip_prefix(':').unwrap_or(r))
                .unwrap_or(p);
            self.parse_cell(p, &mut flat)?;
        }
        self.from_flat(&flat)
    }

    fn to_dot(&self, arch: &[usize]) -> String {
        draw::dot(self.kind.name(), &self.draw_cells(arch))
    }

    fn to_svg(&self, arch: &[usize]) -> String {
        draw::svg(&self.draw_cells(arch))
    }
}
