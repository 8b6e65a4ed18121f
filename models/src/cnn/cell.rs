//! [`Cell`]: one cell of the child CNN, built from a [`CnnCell`].

use autograd::Tensor;
use autograd::nn::{Module, Param, join};
use rand_pcg::Pcg64Mcg;

use super::drop_path::drop_path_factors;
use super::ops::BranchOp;
use super::reduce::{Calibrate, FactorizedReduce, MapSize};
use super::{Mode, drop_path_keep};
use crate::space::cnn::{CnnCell, NODES, STATES};
use autograd::ops::scaled_sum::scaled_sum;

/// One built branch: its input state and op.
#[derive(Debug, Clone)]
pub struct BuiltBranch {
    /// Hidden-state index read.
    pub input: usize,
    /// The op.
    pub op: BranchOp,
}

/// A cell: calibration of its two inputs to `c` channels, five nodes (each the sum of two
/// branches, drop-path on every non-identity branch while training), and the concatenation
/// of the loose ends, those at a higher resolution (inputs 0/1 of a reduction cell) passed
/// through a factorized reduce first. Output width `c * loose_ends.len()`.
#[derive(Debug, Clone)]
pub struct Cell {
    /// Input calibration.
    pub calib: Calibrate,
    /// The nodes' branches `[a, b]`.
    pub nodes: Vec<[BuiltBranch; 2]>,
    /// Hidden states concatenated into the output, ascending.
    pub concat: Vec<usize>,
    /// Factorized reduces of high-resolution loose ends, by state index.
    pub fac: Vec<(usize, FactorizedReduce)>,
    /// True for a reduction cell (stride 2 on branches reading states 0 and 1).
    pub reduction: bool,
    /// This cell's index in the network (for the drop-path schedule).
    pub index: usize,
    /// Cells in the network (for the drop-path schedule).
    pub total: usize,
    /// Drop-path keep probability `p` of the last cell.
    pub drop_path_keep: f64,
    out: MapSize,
}

impl Cell {
    /// Builds cell `index` of `total` from `arch` for inputs of sizes `s0`, `s1` with `c`
    /// channels per node; `reduction` halves the resolution.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: &str,
        arch: &CnnCell,
        s0: MapSize,
        s1: MapSize,
        c: usize,
        reduction: bool,
        index: usize,
        total: usize,
        drop_path_keep: f64,
        rng: &mut Pcg64Mcg,
    ) -> Cell {
        let calib = Calibrate::new(&join(name, "calib"), s0, s1, c, rng);
        let mut res = vec![s1.0, s1.0];
        let stride = if reduction { 2 } else { 1 };
        let mut nodes = Vec::with_capacity(NODES);
        for (n, node) in arch.nodes.iter().enumerate() {
            let mut build = |side: &str, b: crate::space::cnn::Branch| {
                let st = if b.input < 2 { stride } else { 1 };
                BuiltBranch {
                    input: b.input,
                    op: BranchOp::new(&join(name, &format!("node{n}.{side}")), b.op, c, st, rng),
                }
            };
            let (a, b) = (build("a", node.a), build("b", node.b));
            let ra = res[a.input] / if a.input < 2 { stride } else { 1 };
            let rb = res[b.input] / if b.input < 2 { stride } else { 1 };
            assert_eq!(
                ra, rb,
                "cell '{name}': node {n} branches give resolutions {ra} and {rb}"
            );
            res.push(ra);
            nodes.push([a, b]);
        }
        let concat = arch.loose_ends();
        let out_res = concat.iter().map(|&i| res[i]).min().unwrap();
        let fac = concat
            .iter()
            .filter(|&&i| res[i] > out_res)
            .map(|&i| {
                assert!(
                    i < 2 && res[i] == 2 * out_res,
                    "cell '{name}': loose end {i} at resolution {} cannot be reduced to {out_res}",
                    res[i]
                );
                (
                    i,
                    FactorizedReduce::new(&join(name, &format!("fac{i}")), c, c, rng),
                )
            })
            .collect();
        debug_assert!(res.len() == STATES);
        Cell {
            calib,
            nodes,
            out: (out_res, c * concat.len()),
            concat,
            fac,
            reduction,
            index,
            total,
            drop_path_keep,
        }
    }

    /// The output size `(resolution, channels)`.
    pub fn out_size(&self) -> MapSize {
        self.out
    }

    /// The cell's output from the outputs of the two previous cells.
    pub fn forward(&self, s0: &Tensor, s1: &Tensor, mode: &mut Mode) -> Tensor {
        let (s0, s1) = self.calib.forward(s0, s1, mode);
        let mut states = Vec::with_capacity(STATES);
        states.push(s0);
        states.push(s1);
        let keep = drop_path_keep(self.drop_path_keep, self.index, self.total, mode.progress);
        let n = states[0].shape()[0];
        for [a, b] in &self.nodes {
            let ya = a.op.forward(&states[a.input], mode);
            let yb = b.op.forward(&states[b.input], mode);
            // Drop-path factors, drawn for branch a then b (non-identity branches only).
            let mut factors = |br: &BuiltBranch| match mode.rng.as_deref_mut() {
                Some(rng) if keep < 1.0 && !br.op.is_identity() => drop_path_factors(n, keep, rng),
                _ => None,
            };
            let (ka, kb) = (factors(a), factors(b));
            states.push(scaled_sum(&ya, ka, &yb, kb));
        }
        for (i, m) in &self.fac {
            states[*i] = m.forward(&states[*i], mode);
        }
        if self.concat.len() == 1 {
            return states[self.concat[0]].clone();
        }
        let parts: Vec<&Tensor> = self.concat.iter().map(|&i| &states[i]).collect();
        Tensor::concat(&parts, 1)
    }
}

impl Module for Cell {
    fn params(&self) -> Vec<Param> {
        let mut v = self.calib.params();
        for [a, b] in &self.nodes {
            v.extend(a.op.params());
            v.extend(b.op.params());
        }
        for (_, m) in &self.fac {
            v.extend(m.params());
        }
        v
    }
}
