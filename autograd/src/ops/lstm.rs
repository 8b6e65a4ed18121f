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

use crate::Storage;
use crate::storage::LstmPre;
use crate::tensor::Tensor;

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
    let hs = c.shape()[1];
    let (out, saved) = pre.storage().lstm_gates(c.storage());
    let packed = Tensor::from_op(
        out,
        &[pre, c],
        "lstm_gates",
        move |inp: &[Tensor], _: &Tensor, g: &Tensor| {
            let (dpre, dc_prev) = g.storage().lstm_gates_backward(inp[1].storage(), &saved);
            vec![
                Some(Tensor::from_storage(dpre)),
                Some(Tensor::from_storage(dc_prev)),
            ]
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
    let t = xs.shape()[0];
    check_cell(&xs.shape()[1..], h0, c0, &w.w_ih, &w.w_hh, &w.bias);
    let Some(packed) = lstm_seq(xs, h0, c0, w) else {
        return lstm_steps(xs, h0, c0, w);
    };
    let outputs = packed.narrow(0, 0, t);
    let h_last = packed.select(0, t - 1);
    let c_last = packed.select(0, t);
    (outputs, (h_last, c_last))
}

/// [`lstm`] as a loop of steps (the GPU path): one input projection for all steps, then per
/// step `h W_hh^T` and the fused gate op.
fn lstm_steps(
    xs: &Tensor,
    h0: &Tensor,
    c0: &Tensor,
    w: &LstmWeights,
) -> (Tensor, (Tensor, Tensor)) {
    let (t, b, i) = (xs.shape()[0], xs.shape()[1], xs.shape()[2]);
    let g4 = w.w_ih.shape()[0];
    let xp = xs
        .reshape(&[t * b, i])
        .matmul_t(&w.w_ih)
        .add(&w.bias)
        .reshape(&[t, b, g4]);
    let (mut h, mut c) = (h0.clone(), c0.clone());
    let mut outs = Vec::with_capacity(t);
    for s in 0..t {
        let pre = xp.select(0, s).add(&h.matmul_t(&w.w_hh));
        (h, c) = lstm_gates(&pre, &c);
        outs.push(h.clone());
    }
    let refs: Vec<&Tensor> = outs.iter().collect();
    (Tensor::stack(&refs, 0), (h, c))
}

/// The whole layer as one op ([`Storage::lstm_seq`]: forward and backward-through-time in
/// `kernels::cpu::lstm_seq`). Returns `(T + 1, B, H)`: rows `0..T` are the outputs
/// `h_1..h_T`, row `T` is the final cell state `c_T`; `None` on a GPU (no fused kernel).
fn lstm_seq(xs: &Tensor, h0: &Tensor, c0: &Tensor, w: &LstmWeights) -> Option<Tensor> {
    let (out, saved) = xs.storage().lstm_seq(
        h0.storage(),
        c0.storage(),
        w.w_ih.storage(),
        w.w_hh.storage(),
        w.bias.storage(),
    )?;
    let inputs = [xs, h0, c0, &w.w_ih, &w.w_hh, &w.bias];
    Some(Tensor::from_op(
        out,
        &inputs,
        "lstm_seq",
        move |inp: &[Tensor], _: &Tensor, g: &Tensor| {
            g.storage()
                .lstm_seq_backward(&saved, inp[0].storage(), inp[3].storage(), inp[4].storage())
                .into_iter()
                .map(|d| Some(Tensor::from_storage(d)))
                .collect()
        },
    ))
}

/// A time-major LSTM layer from precomputed input projections: `pre (T, B, 4H)` =
/// `x_t W_ih^T + b` (gate order `i, f, g, o`), `h0, c0 (B, H)`, `w_hh (4H, H)`. Returns
/// `(outputs (T, B, H), (h_T, c_T))`, like [`lstm`].
///
/// When the inputs are embeddings of a small vocabulary, `pre` is a gather from the
/// `(vocab, 4H)` table `E W_ih^T + b`: the `(T*B, I) x (I, 4H)` input GEMM and its two
/// backward GEMMs become products with the table.
pub fn lstm_projected(
    pre: &Tensor,
    h0: &Tensor,
    c0: &Tensor,
    w_hh: &Tensor,
) -> (Tensor, (Tensor, Tensor)) {
    check_projected(pre, h0, c0, w_hh);
    let Some(packed) = lstm_seq_pre(pre, None, h0, c0, w_hh, false) else {
        return lstm_projected_steps(pre, h0, c0, w_hh);
    };
    let t = pre.shape()[0];
    let outputs = packed.narrow(0, 0, t);
    let h_last = packed.select(0, t - 1);
    let c_last = packed.select(0, t);
    (outputs, (h_last, c_last))
}

/// [`lstm_projected`]'s outputs only, batch-major: `(B, T, H)`, contiguous (what
/// attention and per-step normalisation over `(B, T, H)` want, without a transposed copy).
pub fn lstm_projected_batch_first(pre: &Tensor, h0: &Tensor, c0: &Tensor, w_hh: &Tensor) -> Tensor {
    check_projected(pre, h0, c0, w_hh);
    lstm_seq_pre(pre, None, h0, c0, w_hh, true).unwrap_or_else(|| {
        // the GPU permute is a row-major copy
        lstm_projected_steps(pre, h0, c0, w_hh)
            .0
            .permute(&[1, 0, 2])
    })
}

/// [`lstm_projected`] as a loop of steps (the GPU path): per step `pre_s + h W_hh^T` and the
/// fused gate op, outputs stacked to `(T, B, H)`.
fn lstm_projected_steps(
    pre: &Tensor,
    h0: &Tensor,
    c0: &Tensor,
    w_hh: &Tensor,
) -> (Tensor, (Tensor, Tensor)) {
    let t = pre.shape()[0];
    let (mut h, mut c) = (h0.clone(), c0.clone());
    let mut outs = Vec::with_capacity(t);
    for s in 0..t {
        let p = pre.select(0, s).add(&h.matmul_t(w_hh));
        (h, c) = lstm_gates(&p, &c);
        outs.push(h.clone());
    }
    let refs: Vec<&Tensor> = outs.iter().collect();
    (Tensor::stack(&refs, 0), (h, c))
}

fn check_projected(pre: &Tensor, h0: &Tensor, c0: &Tensor, w_hh: &Tensor) {
    check_projected_shape(pre.shape(), h0, c0, w_hh);
}

fn check_projected_shape(pre: &[usize], h0: &Tensor, c0: &Tensor, w_hh: &Tensor) {
    let ok = pre.len() == 3 && pre[0] > 0 && w_hh.ndim() == 2 && {
        let (b, h4) = (pre[1], pre[2]);
        let h = w_hh.shape()[1];
        h4 == 4 * h && w_hh.shape()[0] == 4 * h && h0.shape() == [b, h] && c0.shape() == [b, h]
    };
    assert!(
        ok,
        "lstm_projected: shapes do not fit: pre {:?}, h0 {:?}, c0 {:?}, w_hh {:?} \
         (need pre (T, B, 4H) with T > 0, h0 and c0 (B, H), w_hh (4H, H))",
        pre,
        h0.shape(),
        c0.shape(),
        w_hh.shape()
    );
}

/// The op behind [`lstm_projected`] (output packed as in [`lstm_seq`]) and, with
/// `batch_first`, [`lstm_projected_batch_first`] (outputs `(B, T, H)` only) and, with
/// `ids`, [`lstm_table_batch_first`] (`first` is then a `(V, 4H)` table whose rows the ids
/// pick). `None` on a GPU.
fn lstm_seq_pre(
    first: &Tensor,
    ids: Option<&[usize]>,
    h0: &Tensor,
    c0: &Tensor,
    w_hh: &Tensor,
    batch_first: bool,
) -> Option<Tensor> {
    let src = match ids {
        None => LstmPre::Steps(first.storage()),
        Some(ids) => LstmPre::Table(first.storage(), ids),
    };
    let (out, saved) =
        Storage::lstm_seq_pre(src, h0.storage(), c0.storage(), w_hh.storage(), batch_first)?;
    let table = ids.map(|ids| (first.shape()[0], ids.to_vec()));
    Some(Tensor::from_op(
        out,
        &[first, h0, c0, w_hh],
        "lstm_seq_pre",
        move |inp: &[Tensor], _: &Tensor, g: &Tensor| {
            let table = table.as_ref().map(|(v, ids)| (*v, ids.as_slice()));
            g.storage()
                .lstm_seq_pre_backward(&saved, inp[3].storage(), batch_first, table)
                .into_iter()
                .map(|d| Some(Tensor::from_storage(d)))
                .collect()
        },
    ))
}

/// [`lstm_projected_batch_first`] with the input projections read from a table:
/// `table (V, 4H)` (e.g. `E W_ih^T + b` for a vocabulary of `V` tokens), `ids` time-major
/// `(T, B)` (`T * B` ids, `B` = the rows of `h0`): the same numbers and gradients as
/// `lstm_projected_batch_first(&table.embedding(ids, &[T, B]), h0, c0, w_hh)`, without
/// materialising the `(T, B, 4H)` gather (each step copies its rows into the gate buffer).
///
/// Panics naming the shapes when they do not fit or an id is out of range.
pub fn lstm_table_batch_first(
    table: &Tensor,
    ids: &[usize],
    h0: &Tensor,
    c0: &Tensor,
    w_hh: &Tensor,
) -> Tensor {
    let b = h0.shape()[0];
    let ok = table.ndim() == 2
        && h0.ndim() == 2
        && b > 0
        && !ids.is_empty()
        && ids.len().is_multiple_of(b)
        && ids.iter().all(|&i| i < table.shape()[0]);
    assert!(
        ok,
        "lstm_table: table {:?}, {} ids, h0 {:?} do not fit (need ids = T x B for h0 (B, H), \
         every id < V)",
        table.shape(),
        ids.len(),
        h0.shape()
    );
    let t = ids.len() / b;
    let shape = [t, b, table.shape()[1]];
    check_projected_shape(&shape, h0, c0, w_hh);
    lstm_seq_pre(table, Some(ids), h0, c0, w_hh, true)
        .unwrap_or_else(|| lstm_projected_batch_first(&table.embedding(ids, &[t, b]), h0, c0, w_hh))
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
    #[test]
    fn gradcheck_lstm_projected_all_inputs() {
        let (t, b, h) = (3, 2, 4);
        let inputs = vec![
            rand_f64(&[t, b, 4 * h], 11),
            rand_f64(&[b, h], 12),
            rand_f64(&[b, h], 13),
            rand_f64(&[4 * h, h], 14),
        ];
        gradcheck(
            |x| {
                let (o, (hl, cl)) = lstm_projected(&x[0], &x[1], &x[2], &x[3]);
                Tensor::concat(&[&o.reshape(&[t * b, h]), &hl, &cl.mul_scalar(0.7)], 0)
            },
            &inputs,
        )
        .unwrap();
    }

    /// `lstm_projected` on `xs W_ih^T + b` is `lstm` on `xs`, values and gradients.
    #[test]
    fn lstm_projected_matches_lstm() {
        let (t, b, i, h) = (4, 3, 5, 4);
        let vars: Vec<Tensor> = [
            rand_f64(&[t, b, i], 21),
            rand_f64(&[b, h], 22),
            rand_f64(&[b, h], 23),
            rand_f64(&[4 * h, i], 24),
            rand_f64(&[4 * h, h], 25),
            rand_f64(&[4 * h], 26),
        ]
        .into_iter()
        .map(|x| x.requires_grad())
        .collect();
        let w = LstmWeights {
            w_ih: vars[3].clone(),
            w_hh: vars[4].clone(),
            bias: vars[5].clone(),
        };
        let run = |projected: bool| {
            let (o, (hl, cl)) = if projected {
                let pre = vars[0].linear(&vars[3], Some(&vars[5]));
                lstm_projected(&pre, &vars[1], &vars[2], &vars[4])
            } else {
                lstm(&vars[0], &vars[1], &vars[2], &w)
            };
            let out = Tensor::concat(&[&o.reshape(&[t * b, h]), &hl, &cl], 0);
            let g = out.mul(&out).sum().backward();
            let grads: Vec<Tensor> = vars.iter().map(|v| g.get(v).unwrap().clone()).collect();
            (out, grads)
        };
        let (o1, g1) = run(true);
        let (o2, g2) = run(false);
        assert_close(&o1, &o2, 1e-13, 1e-12);
        for (a, b) in g1.iter().zip(&g2) {
            assert_close(a, b, 1e-12, 1e-12);
        }
    }

    /// Inside and outside the rayon pool (batch rows split across threads or not), the
    /// layer gives the same bits, forward and backward.
    #[test]
    fn lstm_split_across_threads_is_bit_identical() {
        let (t, b, i, h) = (12, 40, 8, 48);
        let f = |x: Tensor| x.to_dtype(crate::DType::F32).requires_grad();
        let vars: Vec<Tensor> = [
            rand_f64(&[t, b, i], 31),
            rand_f64(&[b, h], 32),
            rand_f64(&[b, h], 33),
            rand_f64(&[4 * h, i], 34),
            rand_f64(&[4 * h, h], 35),
            rand_f64(&[4 * h], 36),
        ]
        .into_iter()
        .map(f)
        .collect();
        let run = || {
            let w = LstmWeights {
                w_ih: vars[3].clone(),
                w_hh: vars[4].clone(),
                bias: vars[5].clone(),
            };
            let (o, (_, cl)) = lstm(&vars[0], &vars[1], &vars[2], &w);
            let g = o.sum().add(&cl.sum()).backward();
            let mut all = o.to_vec::<f32>();
            for v in &vars {
                all.extend(g.get(v).unwrap().to_vec::<f32>());
            }
            all
        };
        let outside = run();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let inside = pool.install(run);
        assert_eq!(outside, inside);
    }

    #[test]
    fn gradcheck_lstm_projected_batch_first() {
        let (t, b, h) = (3, 2, 4);
        let inputs = vec![
            rand_f64(&[t, b, 4 * h], 41),
            rand_f64(&[b, h], 42),
            rand_f64(&[b, h], 43),
            rand_f64(&[4 * h, h], 44),
        ];
        gradcheck(
            |x| lstm_projected_batch_first(&x[0], &x[1], &x[2], &x[3]),
            &inputs,
        )
        .unwrap();
        let (o, _) = lstm_projected(&inputs[0], &inputs[1], &inputs[2], &inputs[3]);
        let bf = lstm_projected_batch_first(&inputs[0], &inputs[1], &inputs[2], &inputs[3]);
        assert_close(&bf, &o.transpose(0, 1), 0.0, 0.0);
    }

    /// Reading the projections from a table inside the op gives the numbers and gradients
    /// of gathering them first (`embedding` then `lstm_projected_batch_first`), f64 and
    /// f32 (bits), with the batch split across threads or not.
    #[test]
    fn lstm_table_matches_gather_then_lstm() {
        // big enough for the recurrence to split its rows across two threads outside the pool
        let (t, b, h, v) = (12, 40, 48, 7);
        let ids: Vec<usize> = (0..t * b).map(|i| (i * 5 + i / 3) % v).collect();
        for dtype in [crate::DType::F64, crate::DType::F32] {
            let vars: Vec<Tensor> = [
                rand_f64(&[v, 4 * h], 61),
                rand_f64(&[b, h], 62),
                rand_f64(&[b, h], 63),
                rand_f64(&[4 * h, h], 64),
            ]
            .into_iter()
            .map(|x| x.to_dtype(dtype).requires_grad())
            .collect();
            let w = rand_f64(&[b, t, h], 65).to_dtype(dtype);
            let run = |table: bool| {
                let o = if table {
                    lstm_table_batch_first(&vars[0], &ids, &vars[1], &vars[2], &vars[3])
                } else {
                    let pre = vars[0].embedding(&ids, &[t, b]);
                    lstm_projected_batch_first(&pre, &vars[1], &vars[2], &vars[3])
                };
                let g = o.mul(&w).sum().backward();
                let mut all = o.to_vec::<f64>();
                for x in &vars {
                    all.extend(g.get(x).unwrap().to_vec::<f64>());
                }
                all
            };
            let want = run(false);
            assert_eq!(run(true), want, "{dtype}");
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(2)
                .build()
                .unwrap();
            assert_eq!(pool.install(|| run(true)), want, "{dtype} inside the pool");
        }
    }

    #[test]
    fn gradcheck_lstm_table_batch_first() {
        // T = 3 steps of B = 2 ids
        let (b, h, v) = (2, 4, 5);
        let ids = [4usize, 0, 2, 2, 0, 1];
        gradcheck(
            |x| lstm_table_batch_first(&x[0], &ids, &x[1], &x[2], &x[3]),
            &[
                rand_f64(&[v, 4 * h], 71),
                rand_f64(&[b, h], 72),
                rand_f64(&[b, h], 73),
                rand_f64(&[4 * h, h], 74),
            ],
        )
        .unwrap();
    }

    #[test]
    #[should_panic(expected = "lstm_table")]
    fn lstm_table_out_of_range_id_panics() {
        let (b, h) = (2, 3);
        let _ = lstm_table_batch_first(
            &rand_f64(&[4, 4 * h], 1),
            &[0, 1, 2, 4],
            &rand_f64(&[b, h], 2),
            &rand_f64(&[b, h], 3),
            &rand_f64(&[4 * h, h], 4),
        );
    }

    /// The GPU path's step loop (run here on the CPU) gives the numbers and gradients of
    /// the fused op.
    #[test]
    fn lstm_projected_steps_match_the_fused_op() {
        let (t, b, h) = (4, 3, 5);
        let vars: Vec<Tensor> = [
            rand_f64(&[t, b, 4 * h], 51),
            rand_f64(&[b, h], 52),
            rand_f64(&[b, h], 53),
            rand_f64(&[4 * h, h], 54),
        ]
        .into_iter()
        .map(|x| x.requires_grad())
        .collect();
        let run = |steps: bool| {
            let (o, (hl, cl)) = if steps {
                lstm_projected_steps(&vars[0], &vars[1], &vars[2], &vars[3])
            } else {
                lstm_projected(&vars[0], &vars[1], &vars[2], &vars[3])
            };
            let out = Tensor::concat(&[&o.reshape(&[t * b, h]), &hl, &cl], 0);
            let g = out.mul(&out).sum().backward();
            let grads: Vec<Tensor> = vars.iter().map(|v| g.get(v).unwrap().clone()).collect();
            (out, grads)
        };
        let (o1, g1) = run(true);
        let (o2, g2) = run(false);
        assert_close(&o1, &o2, 1e-13, 1e-12);
        for (a, b) in g1.iter().zip(&g2) {
            assert_close(a, b, 1e-12, 1e-12);
        }
        // the batch-first GPU branch: the steps' outputs permuted to (B, T, H)
        let bf = lstm_projected_steps(&vars[0], &vars[1], &vars[2], &vars[3])
            .0
            .permute(&[1, 0, 2]);
        let want = lstm_projected_batch_first(&vars[0], &vars[1], &vars[2], &vars[3]);
        assert_close(&bf, &want, 1e-13, 1e-12);
    }
}
