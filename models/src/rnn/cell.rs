//! [`HighwayCell`]: the NAO/DARTS/ENAS recurrent "highway" cell built from an
//! [`RnnCell`] architecture (spec 8.1), unrolled over a time-major sequence.
//!
//! ```text
//! [c0 | z0] = [x[t] · mx ; h[t-1] · mh] W0             W0: (emb + hid) x 2 hid, no bias
//! s0 = h[t-1] + σ(c0) (tanh(z0) - h[t-1])
//! node i = 1..=11, predecessor p, activation f:
//!   [c | z] = (s_p · mh) W_i                            W_i: hid x 2 hid, no bias
//!   s_i = s_p + σ(c) (f(z) - s_p)
//! h[t] = mean(s_1, ..., s_11)
//! ```
//!
//! `mx` and `mh` are variational (locked) dropout masks drawn once per forward pass and
//! reused at every step ([`CellMasks`]). The input part `x W0[:emb]` of every step is one
//! GEMM before the loop; each highway update is the fused op
//! [`autograd::ops::highway::highway`].

use autograd::nn::{Module, Param, init};
use autograd::ops::highway::{HighwayAct, highway};
use autograd::{DType, Tensor};
use rand_pcg::Pcg64Mcg;

use crate::space::rnn::{Activation, RnnCell, STEPS};

/// Weights are initialised uniform in `[-INIT_RANGE, INIT_RANGE)` (spec 8.1).
pub const INIT_RANGE: f64 = 0.04;

/// The variational dropout masks of one forward pass (`None` = no dropout).
#[derive(Debug, Clone, Default)]
pub struct CellMasks {
    /// `(B, emb)`, multiplies `x[t]` where it enters `W0` (dropoutx).
    pub x: Option<Tensor>,
    /// `(B, hid)`, multiplies `h[t-1]` and every state fed to a node's weights (dropouth).
    pub h: Option<Tensor>,
}

/// The activation of a node as the fused op's activation.
pub fn highway_act(a: Activation) -> HighwayAct {
    match a {
        Activation::Tanh => HighwayAct::Tanh,
        Activation::Relu => HighwayAct::Relu,
        Activation::Sigmoid => HighwayAct::Sigmoid,
        Activation::Identity => HighwayAct::Identity,
    }
}

/// Panics when `arch` does not have 11 nodes or a node reads a later node.
fn check_arch(arch: &RnnCell) {
    assert_eq!(
        arch.nodes.len(),
        STEPS,
        "HighwayCell: an rnn architecture has {STEPS} nodes, got {}",
        arch.nodes.len()
    );
    for (i, n) in arch.nodes.iter().enumerate() {
        assert!(
            n.pred <= i,
            "HighwayCell: node {} reads node {}, which is not computed yet",
            i + 1,
            n.pred
        );
    }
}

/// One recurrent highway cell with its own weights for a fixed architecture.
#[derive(Debug, Clone)]
pub struct HighwayCell {
    arch: RnnCell,
    emb: usize,
    hidden: usize,
    w0: Param,
    ws: Vec<Param>,
}

impl HighwayCell {
    /// A cell for `arch` with weights named `{prefix}.w0` (`(emb + hid, 2 hid)`) and
    /// `{prefix}.w1` .. `{prefix}.w11` (`(hid, 2 hid)`), uniform ±[`INIT_RANGE`], f32.
    ///
    /// Panics when `arch` does not have 11 nodes or a node reads a later node.
    pub fn new(
        prefix: &str,
        arch: &RnnCell,
        emb: usize,
        hidden: usize,
        rng: &mut Pcg64Mcg,
    ) -> HighwayCell {
        check_arch(arch);
        let w0 = Param::new(
            format!("{prefix}.w0"),
            init::uniform(&[emb + hidden, 2 * hidden], INIT_RANGE, DType::F32, rng),
        );
        let ws = (1..=STEPS)
            .map(|i| {
                Param::new(
                    format!("{prefix}.w{i}"),
                    init::uniform(&[hidden, 2 * hidden], INIT_RANGE, DType::F32, rng),
                )
            })
            .collect();
        HighwayCell {
            arch: arch.clone(),
            emb,
            hidden,
            w0,
            ws,
        }
    }

    /// A cell for `arch` that uses the given weights: `w0` (`(emb + hid, 2 hid)`) and one
    /// `(hid, 2 hid)` weight per node in `ws` (node `i` uses `ws[i - 1]`). The handles
    /// share their values with the caller's (a weight-sharing supernet hands in the slices
    /// of one path, [`crate::rnn::supernet::RnnSupernet::child`]).
    ///
    /// Panics when `arch` does not have 11 nodes, a node reads a later node, or a weight's
    /// shape does not fit `emb` and `hidden` (naming both shapes).
    pub fn from_params(
        arch: &RnnCell,
        emb: usize,
        hidden: usize,
        w0: Param,
        ws: Vec<Param>,
    ) -> HighwayCell {
        check_arch(arch);
        assert_eq!(
            w0.shape(),
            [emb + hidden, 2 * hidden],
            "HighwayCell: w0 '{}' has shape {:?}, need {:?}",
            w0.name(),
            w0.shape(),
            [emb + hidden, 2 * hidden]
        );
        assert_eq!(
            ws.len(),
            STEPS,
            "HighwayCell: {STEPS} node weights needed, got {}",
            ws.len()
        );
        for w in &ws {
            assert_eq!(
                w.shape(),
                [hidden, 2 * hidden],
                "HighwayCell: node weight '{}' has shape {:?}, need {:?}",
                w.name(),
                w.shape(),
                [hidden, 2 * hidden]
            );
        }
        HighwayCell {
            arch: arch.clone(),
            emb,
            hidden,
            w0,
            ws,
        }
    }

    /// The architecture.
    pub fn arch(&self) -> &RnnCell {
        &self.arch
    }

    /// The hidden size.
    pub fn hidden(&self) -> usize {
        self.hidden
    }

    /// The input (embedding) size.
    pub fn emb(&self) -> usize {
        self.emb
    }

    /// Runs the cell over `xs: (T, B, emb)` from `h0: (B, hid)`; returns every output
    /// `(T, B, hid)` and the last one `(B, hid)` (both still in the graph).
    ///
    /// Panics naming the shapes when they do not fit.
    pub fn forward(&self, xs: &Tensor, h0: &Tensor, masks: &CellMasks) -> (Tensor, Tensor) {
        let (e, h) = (self.emb, self.hidden);
        assert!(
            xs.ndim() == 3 && xs.shape()[2] == e && h0.shape() == [xs.shape()[1], h].as_slice(),
            "HighwayCell: inputs {:?} and hidden {:?} do not fit emb {e}, hid {h} \
             (need (T, B, emb) and (B, hid))",
            xs.shape(),
            h0.shape()
        );
        let (t_len, b) = (xs.shape()[0], xs.shape()[1]);
        let w0 = self.w0.get();
        let w0x = w0.narrow(0, 0, e);
        let w0h = w0.narrow(0, e, h);
        let ws: Vec<Tensor> = self.ws.iter().map(|p| p.get()).collect();
        // The input half of W0 for every step at once: (T*B, emb) x (emb, 2 hid).
        let xm = match &masks.x {
            Some(m) => xs.mul(m),
            None => xs.clone(),
        };
        let xw = xm
            .reshape(&[t_len * b, e])
            .matmul(&w0x)
            .reshape(&[t_len, b, 2 * h]);
        let mask_h = |s: &Tensor| match &masks.h {
            Some(m) => s.mul(m),
            None => s.clone(),
        };
        let xw_steps = split_steps(&xw);
        let mut hs = Vec::with_capacity(t_len);
        let mut h_prev = h0.clone();
        for (t, xw_t) in xw_steps.iter().enumerate() {
            debug_assert_eq!(xw_t.shape()[0], b, "step {t}");
            let pre0 = xw_t.add(&mask_h(&h_prev).matmul(&w0h));
            let s0 = highway(&h_prev, &pre0, HighwayAct::Tanh);
            let mut states = vec![s0];
            let mut masked: Vec<Option<Tensor>> = vec![None; STEPS + 1];
            for (i, node) in self.arch.nodes.iter().enumerate() {
                let p = node.pred;
                let sp_m = masked[p].get_or_insert_with(|| mask_h(&states[p])).clone();
                let pre = sp_m.matmul(&ws[i]);
                let s = highway(&states[p], &pre, highway_act(node.act));
                states.push(s);
            }
            // mean(s_1, ..., s_11) as a chain of adds (the same left-to-right sum as
            // `stack(..).mean_axes(0)`, without copying the states into one tensor).
            let sum = states[2..]
                .iter()
                .fold(states[1].clone(), |acc, s| acc.add(s));
            let h_t = sum.mul_scalar(1.0 / STEPS as f64);
            hs.push(h_t.clone());
            h_prev = h_t;
        }
        let refs: Vec<&Tensor> = hs.iter().collect();
        (Tensor::stack(&refs, 0), h_prev)
    }
}

/// The steps `x[0], x[1], ...` of a `(T, ...)` tensor, cut by halving it recursively.
///
/// `x.select(0, t)` for every `t` would be cheaper forward, but the backward of each
/// select is a zero-padded gradient of the whole of `x`, summed into `x`'s gradient: `T`
/// full-size buffers. Halving pads each level once (about `log2 T` full-size buffers) and
/// gives the same gradient (each element is one step's value plus zeros).
fn split_steps(x: &Tensor) -> Vec<Tensor> {
    let n = x.shape()[0];
    if n == 0 {
        return Vec::new();
    }
    if n == 1 {
        let rest = x.shape()[1..].to_vec();
        return vec![x.reshape(&rest)];
    }
    let mid = n / 2;
    let mut out = split_steps(&x.narrow(0, 0, mid));
    out.extend(split_steps(&x.narrow(0, mid, n - mid)));
    out
}

impl Module for HighwayCell {
    fn params(&self) -> Vec<Param> {
        let mut p = vec![self.w0.clone()];
        p.extend(self.ws.iter().cloned());
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use autograd::testing::{assert_close, rand_f64};

    /// The halving split gives every step, with the same values and the same gradient as
    /// one `select` per step.
    #[test]
    fn split_steps_matches_select_forward_and_backward() {
        for t in [1, 2, 3, 7, 35] {
            let x = rand_f64(&[t, 2, 3], 1).requires_grad();
            let w = rand_f64(&[t, 2, 3], 2);
            let parts = split_steps(&x);
            assert_eq!(parts.len(), t);
            let sel: Vec<Tensor> = (0..t).map(|i| x.select(0, i)).collect();
            let loss = |ps: &[Tensor]| {
                ps.iter()
                    .enumerate()
                    .map(|(i, p)| p.mul(&w.select(0, i)).sum())
                    .reduce(|a, b| &a + &b)
                    .unwrap()
            };
            for (p, s) in parts.iter().zip(&sel) {
                assert_close(p, s, 0.0, 0.0);
            }
            let (g1, g2) = (loss(&parts).backward(), loss(&sel).backward());
            assert_close(g1.get(&x).unwrap(), g2.get(&x).unwrap(), 0.0, 0.0);
        }
    }
}
