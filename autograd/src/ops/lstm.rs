//! LSTM: a cell built from primitives (the reference), the same cell with its gate math
//! fused into one op ([`lstm_gates`], kernel in [`crate::kernels::cpu::lstm_gates`]), and
//! a time-major unrolled layer [`lstm`].
//!
//! PyTorch's conventions throughout: weights `w_ih: (4H, I)`, `w_hh: (4H, H)`, gate order
//! `i, f, g, o` along the `4H` axis, and
//!
//! ```text
//! i = σ(x W_ii^T + h W_hi^T + b_i)     f = σ(...)     g = tanh(...)     o = σ(...)
//! c' = f c + i g                       h' = o tanh(c')
//! ```
//!
//! PyTorch keeps two biases (`b_ih`, `b_hh`); they only ever appear summed, so the ops here
//! take one bias `b: (4H)` = `b_ih + b_hh`.

use crate::kernels::cpu::lstm_gates as kernel;
use crate::ops::index::standard;
use crate::tensor::Tensor;
use ndarray::{ArrayD, IxDyn};

/// The weights of one LSTM layer (PyTorch layout; `bias` is `b_ih + b_hh`).
#[derive(Clone, Debug)]
pub struct LstmWeights {
    /// Input-to-hidden weights, `(4H, I)`, gate blocks `i, f, g, o`.
    pub w_ih: Tensor,
    /// Hidden-to-hidden weights, `(4H, H)`.
    pub w_hh: Tensor,
    /// The summed bias, `(4H)`.
    pub bias: Tensor,
}

impl LstmWeights {
    /// The hidden size `H`.
    pub fn hidden(&self) -> usize {
        self.w_hh.shape()[1]
    }
}

fn check_cell(x: &[usize], h: &Tensor, c: &Tensor, w_ih: &Tensor, w_hh: &Tensor, b: &Tensor) {
    let ok = x.len() == 2
        && w_ih.ndim() == 2
        && w_hh.ndim() == 2
        && b.ndim() == 1
        && h.ndim() == 2
        && c.ndim() == 2
        && {
            let (bs, i) = (x[0], x[1]);
            let hs = w_hh.shape()[1];
            w_ih.shape() == [4 * hs, i]
                && w_hh.shape() == [4 * hs, hs]
                && b.shape() == [4 * hs]
                && h.shape() == [bs, hs]
                && c.shape() == [bs, hs]
        };
    assert!(
        ok,
        "lstm_cell: shapes do not fit: x {:?}, h {:?}, c {:?}, w_ih {:?}, w_hh {:?}, b {:?} \
         (need x (B, I), h and c (B, H), w_ih (4H, I), w_hh (4H, H), b (4H))",
        x,
        h.shape(),
        c.shape(),
        w_ih.shape(),
        w_hh.shape(),
        b.shape()
    );
}

/// The LSTM cell composed from primitive ops (`linear`, `narrow`, `sigmoid`, `tanh`):
/// `x (B, I)`, `h, c (B, H)` -> `(h', c')`. The reference that [`lstm_cell`] is checked
/// against; slower (about ten graph nodes instead of four).
pub fn lstm_cell_composed(
    x: &Tensor,
    h: &Tensor,
    c: &Tensor,
    w_ih: &Tensor,
    w_hh: &Tensor,
    b: &Tensor,
) -> (Tensor, Tensor) {
    check_cell(x.shape(), h, c, w_ih, w_hh, b);
    let hs = w_hh.shape()[1];
    let gates = x.linear(w_ih, Some(b)).add(&h.linear(w_hh, None));
    let i = gates.narrow(1, 0, hs).sigmoid();
    let f = gates.narrow(1, hs, hs).sigmoid();
    let g = gates.narrow(1, 2 * hs, hs).tanh();
    let o = gates.narrow(1, 3 * hs, hs).sigmoid();
    let c2 = f.mul(c).add(&i.mul(&g));
    let h2 = o.mul(&c2.tanh());
    (h2, c2)
}

/// The fused gate math: from pre-activations `pre (B, 4H)` (gate order `i, f, g, o`) and
/// the previous cell `c (B, H)`, returns `(h', c')` computed in one pass; the backward is
/// one pass too (see [`crate::kernels::cpu::lstm_gates`]).
///
/// Internally one op produces `[h' | c']` as a `(B, 2H)` tensor, which is then split.
pub fn lstm_gates(pre: &Tensor, c: &Tensor) -> (Tensor, Tensor) {
    assert!(
        pre.ndim() == 2
            && c.ndim() == 2
            && pre.shape()[0] == c.shape()[0]
            && pre.shape()[1] == 4 * c.shape()[1],
        "lstm_gates: pre-activations {:?} do not fit cell {:?} (need (B, 4H) and (B, H))",
        pre.shape(),
        c.shape()
    );
    let (bs, hs) = (c.shape()[0], c.shape()[1]);
    let saved;
    let out = crate::dispatch2!("lstm_gates", pre.storage(), c.storage(), |p, cc| {
        let ps = standard(p);
        let cs = standard(cc);
        let mut h_out = vec![T::zero(); bs * hs];
        let mut c_out = vec![T::zero(); bs * hs];
        let mut acts = vec![T::zero(); bs * 4 * hs];
        let mut tanh_c = vec![T::zero(); bs * hs];
        kernel::lstm_gates_forward(&ps, &cs, hs, &mut h_out, &mut c_out, &mut acts, &mut tanh_c);
        saved = Some((
            Tensor::from_vec(acts, &[bs, 4 * hs]),
            Tensor::from_vec(tanh_c, &[bs, hs]),
        ));
        let mut packed = Vec::with_capacity(2 * bs * hs);
        for (hr, cr) in h_out.chunks(hs.max(1)).zip(c_out.chunks(hs.max(1))) {
            packed.extend_from_slice(hr);
            packed.extend_from_slice(cr);
        }
        ArrayD::from_shape_vec(IxDyn(&[bs, 2 * hs]), packed).unwrap()
    });
    let (acts, tanh_c) = saved.unwrap();
    let packed = Tensor::from_op(
        out,
        &[pre, c],
        "lstm_gates",
        move |inp: &[Tensor], _: &Tensor, g: &Tensor| {
            let dc_prev;
            let dpre = crate::dispatch3!(
                "lstm_gates_backward",
                acts.storage(),
                tanh_c.storage(),
                g.storage(),
                |a, tc, gg| {
                    let cprev = T::from_storage(inp[1].storage()).unwrap();
                    let cs = standard(cprev);
                    let gs = standard(gg);
                    let mut dh = Vec::with_capacity(bs * hs);
                    let mut dc = Vec::with_capacity(bs * hs);
                    for row in gs.chunks(2 * hs.max(1)) {
                        dh.extend_from_slice(&row[..hs]);
                        dc.extend_from_slice(&row[hs..]);
                    }
                    let mut dpre = vec![T::zero(); bs * 4 * hs];
                    let mut dcp = vec![T::zero(); bs * hs];
                    kernel::lstm_gates_backward(
                        &standard(a),
                        &cs,
                        &standard(tc),
                        &dh,
                        &dc,
                        hs,
                        &mut dpre,
                        &mut dcp,
                    );
                    dc_prev = Some(Tensor::from_vec(dcp, &[bs, hs]));
                    ArrayD::from_shape_vec(IxDyn(&[bs, 4 * hs]), dpre).unwrap()
                }
            );
            vec![Some(Tensor::from_storage(dpre)), dc_prev]
        },
    );
    (packed.narrow(1, 0, hs), packed.narrow(1, hs, hs))
}

/// The LSTM cell with fused gate math: `x (B, I)`, `h, c (B, H)`, `w_ih (4H, I)`,
/// `w_hh (4H, H)`, `b (4H)` -> `(h', c')`. Same numbers and gradients as
/// [`lstm_cell_composed`].
pub fn lstm_cell(
    x: &Tensor,
    h: &Tensor,
    c: &Tensor,
    w_ih: &Tensor,
    w_hh: &Tensor,
    b: &Tensor,
) -> (Tensor, Tensor) {
    check_cell(x.shape(), h, c, w_ih, w_hh, b);
    let pre = x.matmul_t(w_ih).add(b).add(&h.matmul_t(w_hh));
    lstm_gates(&pre, c)
}

/// Splits `x` along axis 0 into `parts` equal pieces by halving recursively, so that the
/// backward (each `narrow` pads its gradient back to its input's size) costs
/// `O(size * log(parts))` instead of `O(size * parts)` for `parts` direct narrows.
fn split_rows(x: &Tensor, parts: usize, out: &mut Vec<Tensor>) {
    if parts == 1 {
        out.push(x.clone());
        return;
    }
    let rows = x.shape()[0] / parts;
    let left = parts / 2;
    split_rows(&x.narrow(0, 0, left * rows), left, out);
    split_rows(
        &x.narrow(0, left * rows, (parts - left) * rows),
        parts - left,
        out,
    );
}

/// A time-major LSTM layer unrolled over `xs: (T, B, I)` from `h0, c0: (B, H)`.
/// Returns `(outputs (T, B, H), (h_T, c_T))`.
///
/// The input projection `xs W_ih^T + b` for all steps is ONE `(T*B, I) x (I, 4H)` matrix
/// product before the loop; each step then adds `h W_hh^T` and runs the fused gate op.
pub fn lstm(xs: &Tensor, h0: &Tensor, c0: &Tensor, w: &LstmWeights) -> (Tensor, (Tensor, Tensor)) {
    assert!(
        xs.ndim() == 3 && xs.shape()[0] > 0,
        "lstm: inputs must be (T, B, I) with T > 0, got {:?}",
        xs.shape()
    );
    let (t, b, i) = (xs.shape()[0], xs.shape()[1], xs.shape()[2]);
    check_cell(&xs.shape()[1..], h0, c0, &w.w_ih, &w.w_hh, &w.bias);
    let xw = xs.reshape(&[t * b, i]).matmul_t(&w.w_ih).add(&w.bias);
    let mut steps = Vec::with_capacity(t);
    split_rows(&xw, t, &mut steps);
    let (mut h, mut c) = (h0.clone(), c0.clone());
    let mut outs = Vec::with_capacity(t);
    for pre_x in &steps {
        let pre = pre_x.add(&h.matmul_t(&w.w_hh));
        let (h2, c2) = lstm_gates(&pre, &c);
        outs.push(h2.clone());
        h = h2;
        c = c2;
    }
    let refs: Vec<&Tensor> = outs.iter().collect();
    (Tensor::stack(&refs, 0), (h, c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, gradcheck, rand_f64};

    fn cell_inputs() -> Vec<Tensor> {
        let (b, i, h) = (3, 5, 4);
        vec![
            rand_f64(&[b, i], 1),
            rand_f64(&[b, h], 2),
            rand_f64(&[b, h], 3),
            rand_f64(&[4 * h, i], 4),
            rand_f64(&[4 * h, h], 5),
            rand_f64(&[4 * h], 6),
        ]
    }

    /// h' and c' combined with different weights, so both outputs' gradients are checked.
    fn both(hc: (Tensor, Tensor)) -> Tensor {
        Tensor::concat(&[&hc.0, &hc.1.mul_scalar(0.7)], 1)
    }

    #[test]
    fn gradcheck_composed_cell_all_six_inputs() {
        gradcheck(
            |x| both(lstm_cell_composed(&x[0], &x[1], &x[2], &x[3], &x[4], &x[5])),
            &cell_inputs(),
        )
        .unwrap();
    }

    #[test]
    fn gradcheck_fused_cell_all_six_inputs() {
        gradcheck(
            |x| both(lstm_cell(&x[0], &x[1], &x[2], &x[3], &x[4], &x[5])),
            &cell_inputs(),
        )
        .unwrap();
        // only h' used, only c' used (the other packed half gets no gradient)
        gradcheck(
            |x| lstm_cell(&x[0], &x[1], &x[2], &x[3], &x[4], &x[5]).0,
            &cell_inputs(),
        )
        .unwrap();
        gradcheck(
            |x| lstm_cell(&x[0], &x[1], &x[2], &x[3], &x[4], &x[5]).1,
            &cell_inputs(),
        )
        .unwrap();
    }

    #[test]
    fn fused_cell_matches_composed_values_and_gradients() {
        let inp = cell_inputs();
        let vars: Vec<Tensor> = inp
            .iter()
            .map(|t| t.mul_scalar(2.0).requires_grad())
            .collect();
        let wsum = rand_f64(&[3, 8], 9);
        type Cell = fn(&Tensor, &Tensor, &Tensor, &Tensor, &Tensor, &Tensor) -> (Tensor, Tensor);
        let run = |f: Cell| {
            let (h, c) = f(&vars[0], &vars[1], &vars[2], &vars[3], &vars[4], &vars[5]);
            let loss = Tensor::concat(&[&h, &c], 1).mul(&wsum).sum();
            let g = loss.backward();
            let grads: Vec<Tensor> = vars.iter().map(|v| g.get(v).unwrap().clone()).collect();
            (h, c, grads)
        };
        let (h1, c1, g1) = run(lstm_cell);
        let (h2, c2, g2) = run(lstm_cell_composed);
        assert_close(&h1, &h2, 1e-14, 1e-12);
        assert_close(&c1, &c2, 1e-14, 1e-12);
        for (a, b) in g1.iter().zip(&g2) {
            assert_close(a, b, 1e-13, 1e-12);
        }
    }

    #[test]
    fn fused_cell_f32_matches_f64() {
        let inp = cell_inputs();
        let (h64, c64) = lstm_cell(&inp[0], &inp[1], &inp[2], &inp[3], &inp[4], &inp[5]);
        let f: Vec<Tensor> = inp.iter().map(|t| t.to_dtype(crate::DType::F32)).collect();
        let (h32, c32) = lstm_cell(&f[0], &f[1], &f[2], &f[3], &f[4], &f[5]);
        assert_close(&h32.to_dtype(crate::DType::F64), &h64, 1e-5, 1e-5);
        assert_close(&c32.to_dtype(crate::DType::F64), &c64, 1e-5, 1e-5);
    }

    #[test]
    #[should_panic(expected = "lstm_cell: shapes do not fit")]
    fn cell_shape_mismatch_names_shapes() {
        let mut inp = cell_inputs();
        inp[1] = rand_f64(&[3, 5], 1);
        let _ = lstm_cell(&inp[0], &inp[1], &inp[2], &inp[3], &inp[4], &inp[5]);
    }
}
