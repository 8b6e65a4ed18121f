//! The NAS-Bench-201 cell space (`nb201`).
//!
//! A cell has 4 nodes; node 0 is the cell input, node 3 its output, and every node `j` sums
//! one op applied to each earlier node: 6 edges, in the order of the benchmark's strings,
//! [`EDGES`] = `1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2`. Ops ([`Nb201Op`], in id order): `none`
//! (0, outputs zeros), `skip_connect` (1), `nor_conv_1x1` (2), `nor_conv_3x3` (3),
//! `avg_pool_3x3` (4). 5^6 = 15,625 architectures.
//!
//! **Tokens** (6): one per edge in [`EDGES`] order, op id `o` -> token `o + 1` (so every
//! position allows tokens 1..=5); token 0 is `<sos>`. Vocab 6.
//!
//! **Text form**: the benchmark's standard string,
//! `|nor_conv_3x3~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|`
//! (groups for nodes 1, 2, 3 separated by `+`; `op~source`). Parsing also accepts the
//! edges of a group in any order, and the flat form of 6 op ids in edge order.
//!
//! **Canonical form**: every dead edge is set to `none`. An edge `i -> j` is live when its op
//! is not `none`, node `i` is reached from the input through non-`none` edges (otherwise
//! node `i` outputs zeros) and node `j` reaches the output through non-`none` edges
//! (otherwise nothing it computes is used). If the output is unreachable, all edges are dead.
//!
//! ```
//! use models::space::{Nb201Space, SearchSpace};
//! let s = Nb201Space;
//! let text = "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|";
//! let arch = s.from_text(text).unwrap();
//! assert_eq!(arch, vec![4, 2, 1, 5, 3, 2]);
//! assert_eq!(s.to_text(&arch), text);
//! // Node 1 and 2 get only `none` inputs: their outgoing edges are dead.
//! let dead = s.from_text("|none~0|+|none~0|none~1|+|skip_connect~0|nor_conv_1x1~1|avg_pool_3x3~2|").unwrap();
//! assert_eq!(s.to_text(&s.canonical(&dead)), "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|");
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::draw;
use super::{Arch, ArchError, SearchSpace, SpaceKind, expect_valid, parse_ints};

/// Number of edges.
pub const NUM_EDGES: usize = 6;
/// Number of nodes (0 = input, 3 = output).
pub const NUM_NODES: usize = 4;
/// The edges as `(to, from)`, in token order.
pub const EDGES: [(usize, usize); NUM_EDGES] = [(1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2)];
/// Op id `o` is token `o + OP_OFFSET`.
pub const OP_OFFSET: usize = 1;

/// A NAS-Bench-201 op, in id order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Nb201Op {
    /// `none`: outputs zeros (the edge is absent).
    None,
    /// `skip_connect`: identity.
    SkipConnect,
    /// `nor_conv_1x1`: ReLU-conv 1x1-BN.
    NorConv1x1,
    /// `nor_conv_3x3`: ReLU-conv 3x3-BN.
    NorConv3x3,
    /// `avg_pool_3x3`: average pool 3x3, stride 1.
    AvgPool3x3,
}

impl Nb201Op {
    /// All ops; `ALL[o]` has id `o` (token `o + 1`).
    pub const ALL: [Nb201Op; 5] = [
        Nb201Op::None,
        Nb201Op::SkipConnect,
        Nb201Op::NorConv1x1,
        Nb201Op::NorConv3x3,
        Nb201Op::AvgPool3x3,
    ];

    /// The benchmark's name for the op.
    pub fn name(self) -> &'static str {
        match self {
            Nb201Op::None => "none",
            Nb201Op::SkipConnect => "skip_connect",
            Nb201Op::NorConv1x1 => "nor_conv_1x1",
            Nb201Op::NorConv3x3 => "nor_conv_3x3",
            Nb201Op::AvgPool3x3 => "avg_pool_3x3",
        }
    }

    /// The id (0..=4).
    pub fn id(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Nb201Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Nb201Op {
    type Err = ArchError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Nb201Op::ALL
            .into_iter()
            .find(|o| o.name() == s)
            .ok_or_else(|| ArchError::Parse {
                space: "nb201".into(),
                text: s.into(),
                why: "unknown op; ops are none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3"
                    .into(),
            })
    }
}

impl Serialize for Nb201Op {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Nb201Op {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The structured view: the op on each edge, in [`EDGES`] order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Nb201Cell {
    /// `edges[e]` is the op on edge `EDGES[e]`.
    pub edges: [Nb201Op; NUM_EDGES],
}

impl Nb201Cell {
    /// The op on edge `from -> to`.
    ///
    /// # Panics
    /// If there is no such edge (`from >= to` or `to > 3`).
    pub fn op(&self, to: usize, from: usize) -> Nb201Op {
        let e = EDGES
            .iter()
            .position(|&x| x == (to, from))
            .unwrap_or_else(|| panic!("no edge {to}<-{from} in a NAS-Bench-201 cell"));
        self.edges[e]
    }

    /// Which edges are live (see the module docs); dead edges do not change the output.
    pub fn live_edges(&self) -> [bool; NUM_EDGES] {
        let on = |e: usize| self.edges[e] != Nb201Op::None;
        let mut reached = [false; NUM_NODES];
        reached[0] = true;
        for (e, &(to, from)) in EDGES.iter().enumerate() {
            // EDGES is sorted by `to`, so `from` is final when its edges are visited.
            if on(e) && reached[from] {
                reached[to] = true;
            }
        }
        let mut reaches = [false; NUM_NODES];
        reaches[NUM_NODES - 1] = true;
        for (e, &(to, from)) in EDGES.iter().enumerate().rev() {
            if on(e) && reaches[to] {
                reaches[from] = true;
            }
        }
        std::array::from_fn(|e| {
            let (to, from) = EDGES[e];
            on(e) && reached[from] && reaches[to]
        })
    }

    /// The standard string, e.g. `|nor_conv_3x3~0|+|skip_connect~0|none~1|+|...|`.
    pub fn to_standard_string(&self) -> String {
        let mut s = String::from("|");
        for to in 1..NUM_NODES {
            if to > 1 {
                s.push_str("+|");
            }
            for from in 0..to {
                s.push_str(&format!("{}~{from}|", self.op(to, from)));
            }
        }
        s
    }
}

/// The NAS-Bench-201 space (`nb201`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Nb201Space;

impl Nb201Space {
    /// Decodes a token sequence into the structured view.
    pub fn decode(&self, tokens: &[usize]) -> Result<Nb201Cell, ArchError> {
        self.validate(tokens)?;
        Ok(Nb201Cell {
            edges: std::array::from_fn(|e| Nb201Op::ALL[tokens[e] - OP_OFFSET]),
        })
    }

    /// Encodes the structured view as tokens.
    pub fn encode(&self, cell: &Nb201Cell) -> Arch {
        cell.edges.iter().map(|o| o.id() + OP_OFFSET).collect()
    }

    /// Reads the standard string (edges of a group in any order).
    pub fn parse_standard(&self, text: &str) -> Result<Nb201Cell, ArchError> {
        let perr = |t: &str, why: String| ArchError::Parse {
            space: "nb201".into(),
            text: t.into(),
            why,
        };
        let groups: Vec<&str> = text.trim().split('+').collect();
        if groups.len() != NUM_NODES - 1 {
            return Err(perr(
                text,
                format!(
                    "expected 3 groups `|op~i|...|` separated by `+` (nodes 1, 2, 3), found {}",
                    groups.len()
                ),
            ));
        }
        let mut edges = [None; NUM_EDGES];
        for (g, group) in groups.iter().enumerate() {
            let to = g + 1;
            let inner = group
                .strip_prefix('|')
                .and_then(|r| r.strip_suffix('|'))
                .ok_or_else(|| {
                    perr(
                        group,
                        format!("the group of node {to} must start and end with `|`"),
                    )
                })?;
            let items: Vec<&str> = inner.split('|').collect();
            if items.len() != to {
                return Err(perr(
                    group,
                    format!(
                        "node {to} has {to} incoming edges (from 0..={}), found {}",
                        to - 1,
                        items.len()
                    ),
                ));
            }
            for item in items {
                let (op, from) = item.split_once('~').ok_or_else(|| {
                    perr(item, "an edge is `op~source`, e.g. `nor_conv_3x3~0`".into())
                })?;
                let op: Nb201Op = op.parse()?;
                let from: usize = from.parse().ok().filter(|&f| f < to).ok_or_else(|| {
                    perr(
                        item,
                        format!(
                            "the source of an edge into node {to} must be 0..={}",
                            to - 1
                        ),
                    )
                })?;
                let e = EDGES
                    .iter()
                    .position(|&x| x == (to, from))
                    .expect("edge exists");
                if edges[e].replace(op).is_some() {
                    return Err(perr(item, format!("edge {to}<-{from} given twice")));
                }
            }
        }
        Ok(Nb201Cell {
            edges: edges.map(|o| o.expect("each group has all its edges")),
        })
    }
}

impl SearchSpace for Nb201Space {
    fn kind(&self) -> SpaceKind {
        SpaceKind::Nb201
    }

    fn vocab_size(&self) -> usize {
        OP_OFFSET + Nb201Op::ALL.len()
    }

    fn seq_len(&self) -> usize {
        NUM_EDGES
    }

    fn tokens_per_step(&self) -> usize {
        1
    }

    fn allowed(&self, pos: usize) -> std::ops::RangeInclusive<usize> {
        assert!(pos < NUM_EDGES, "position {pos} out of 0..6");
        OP_OFFSET..=OP_OFFSET + Nb201Op::ALL.len() - 1
    }

    fn place(&self, pos: usize) -> String {
        let (to, from) = EDGES[pos];
        format!("edge {to}<-{from}, from node {from} into node {to}")
    }

    fn rule(&self, _pos: usize) -> String {
        "edge ops must be tokens 1..=5 (1=none, 2=skip_connect, 3=nor_conv_1x1, 4=nor_conv_3x3, 5=avg_pool_3x3)".into()
    }

    fn token_name(&self, _pos: usize, token: usize) -> String {
        match token
            .checked_sub(OP_OFFSET)
            .and_then(|o| Nb201Op::ALL.get(o))
        {
            Some(o) => o.name().into(),
            None => format!("<bad op token {token}>"),
        }
    }

    /// Sets every dead edge to `none` (see the module docs).
    fn canonical(&self, arch: &[usize]) -> Arch {
        let mut cell = self
            .decode(arch)
            .unwrap_or_else(|e| panic!("invalid architecture: {e}"));
        let live = cell.live_edges();
        for (op, live) in cell.edges.iter_mut().zip(live) {
            if !live {
                *op = Nb201Op::None;
            }
        }
        self.encode(&cell)
    }

    fn to_text(&self, arch: &[usize]) -> String {
        self.decode(arch)
            .unwrap_or_else(|e| panic!("invalid architecture: {e}"))
            .to_standard_string()
    }

    /// Accepts the standard string or 6 op ids (0..=4) in edge order.
    fn from_text(&self, text: &str) -> Result<Arch, ArchError> {
        if text.contains('~') {
            return Ok(self.encode(&self.parse_standard(text)?));
        }
        let ids = parse_ints(SpaceKind::Nb201, text)?;
        if ids.len() != NUM_EDGES {
            return Err(ArchError::WrongLength {
                space: "nb201".into(),
                what: "edges",
                expected: NUM_EDGES,
                got: ids.len(),
            });
        }
        for (pos, &v) in ids.iter().enumerate() {
            if v >= Nb201Op::ALL.len() {
                return Err(ArchError::BadValue {
                    pos,
                    value: v,
                    place: self.place(pos),
                    why: "op ids are 0..=4 (0 none, 1 skip_connect, 2 nor_conv_1x1, 3 nor_conv_3x3, 4 avg_pool_3x3)".into(),
                });
            }
        }
        Ok(ids.iter().map(|v| v + OP_OFFSET).collect())
    }

    fn to_dot(&self, arch: &[usize]) -> String {
        draw::dot("nb201", &[self.draw_cell(arch)])
    }

    fn to_svg(&self, arch: &[usize]) -> String {
        draw::svg(&[self.draw_cell(arch)])
    }
}

impl Nb201Space {
    fn draw_cell(&self, arch: &[usize]) -> draw::Cell {
        expect_valid(self, arch);
        let cell = self.decode(arch).expect("validated");
        draw::Cell {
            title: "NAS-Bench-201 cell".into(),
            inputs: vec!["0: input".into()],
            nodes: (1..NUM_NODES)
                .map(|to| draw::DrawNode {
                    label: to.to_string(),
                    feeds: (0..to)
                        .map(|from| {
                            let op = cell.op(to, from);
                            draw::Feed {
                                from,
                                op: op.name().into(),
                                dead: op == Nb201Op::None,
                            }
                        })
                        .collect(),
                })
                .collect(),
            output: "output".into(),
            output_from: vec![NUM_NODES - 1],
        }
    }
}
