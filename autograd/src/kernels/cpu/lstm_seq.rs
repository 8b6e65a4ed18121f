//! A whole LSTM layer over a sequence, forward and backward-through-time in one kernel.
//!
//! Per step only `h_{t-1} W_hh^T` (a `B x H x 4H` GEMM) and the gate math run; the input
//! projection of all steps is one `(T*B) x I x 4H` GEMM before the loop, and the backward
//! pass computes `dW_ih`, `dW_hh`, `db` and `dX` with one big GEMM each after the loop.
//! Gate order is PyTorch's: input, forget, cell (g), output.

use crate::dtype::Float;
use crate::kernels::cpu::gemm;
use crate::kernels::cpu::packed_gemm::{PackedB, gemm_at_b, gemm_packed};
use crate::kernels::cpu::simd::multiversion;
use crate::kernels::cpu::uninit::{overwritten_array, write_slice};
use ndarray::{
    Array2, Array3, ArrayView1, ArrayView2, ArrayView3, ArrayViewMut2, ArrayViewMut3, Axis, s,
};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// What the forward pass keeps for the backward pass.
pub struct LstmSeqSaved<T> {
    /// Gate activations `(T, B, 4H)`: sigmoid(i), sigmoid(f), tanh(g), sigmoid(o).
    pub gates: Array3<T>,
    /// Cell states `(T + 1, B, H)`, row 0 = c0.
    pub c: Array3<T>,
    /// Hidden states `(T + 1, B, H)`, row 0 = h0.
    pub h: Array3<T>,
}

/// Runs the layer: `xs (T, B, I)`, `h0, c0 (B, H)`, `w_ih (4H, I)`, `w_hh (4H, H)`,
/// `b (4H)`. Returns the saved states; outputs are `h[1..]`.
pub fn lstm_seq_forward<T: Float>(
    xs: ArrayView3<T>,
    h0: ArrayView2<T>,
    c0: ArrayView2<T>,
    w_ih: ArrayView2<T>,
    w_hh: ArrayView2<T>,
    b: ArrayView1<T>,
) -> LstmSeqSaved<T> {
    let (t_len, batch, input) = xs.dim();
    let hid = h0.dim().1;
    let xs2 = xs.as_standard_layout();
    let x2 = xs2
        .view()
        .into_shape_with_order((t_len * batch, input))
        .unwrap();
    let mut pre = Array2::<T>::zeros((t_len * batch, 4 * hid));
    pre.axis_iter_mut(Axis(0))
        .for_each(|mut row| row.assign(&b));
    gemm(T::one(), x2, false, w_ih, true, T::one(), pre.view_mut());
    let gates = pre.into_shape_with_order((t_len, batch, 4 * hid)).unwrap();
    lstm_seq_forward_pre(gates, h0, c0, w_hh)
}

/// The recurrence from precomputed input projections `pre (T, B, 4H)` (`x_t W_ih^T + b`,
/// e.g. rows of a per-token table), `h0, c0 (B, H)`, `w_hh (4H, H)`: like
/// [`lstm_seq_forward`] after its input GEMM.
pub fn lstm_seq_forward_pre<T: Float>(
    gates: Array3<T>,
    h0: ArrayView2<T>,
    c0: ArrayView2<T>,
    w_hh: ArrayView2<T>,
) -> LstmSeqSaved<T> {
    lstm_seq_forward_inputs(StepInputs::Pre(gates.view()), h0, c0, w_hh)
}

/// Where the recurrence reads each step's input projections (`x_t W_ih^T + b`).
#[derive(Clone, Copy)]
pub enum StepInputs<'a, T> {
    /// A `(T, B, 4H)` array.
    Pre(ArrayView3<'a, T>),
    /// Rows of a `(V, 4H)` table picked by `ids`, time-major `(T, B)`: step `t`, row `b`
    /// reads `table[ids[t * B + b]]` (an embedding of a small vocabulary times `W_ih^T`,
    /// plus the bias), without materialising the `(T, B, 4H)` gather.
    Table {
        /// `(V, 4H)`.
        table: ArrayView2<'a, T>,
        /// `T * B` row ids.
        ids: &'a [usize],
    },
}

impl<T: Float> StepInputs<'_, T> {
    /// `(T, B, 4H)`.
    fn dim(&self, batch: usize) -> (usize, usize, usize) {
        match self {
            StepInputs::Pre(p) => p.dim(),
            StepInputs::Table { table, ids } => (ids.len() / batch.max(1), batch, table.dim().1),
        }
    }

    /// Writes the projections of step `t`, rows `row0..row0 + rows`, into `dst`
    /// (`rows x 4H`) and returns it initialised.
    fn fill<'d>(
        &self,
        t: usize,
        row0: usize,
        batch: usize,
        dst: &'d mut [MaybeUninit<T>],
    ) -> &'d mut [T] {
        match self {
            StepInputs::Pre(p) => {
                let rows = dst.len() / p.dim().2.max(1);
                let src = p.slice(s![t, row0..row0 + rows, ..]);
                match src.as_slice() {
                    Some(sl) => write_slice(dst, sl),
                    None => write_slice(dst, &src.iter().copied().collect::<Vec<T>>()),
                }
            }
            StepInputs::Table { table, ids } => {
                let w = table.dim().1;
                let tab = table.as_slice().expect("tables are standard layout");
                for (r, d) in dst.chunks_exact_mut(w.max(1)).enumerate() {
                    let id = ids[t * batch + row0 + r];
                    write_slice(d, &tab[id * w..(id + 1) * w]);
                }
                // SAFETY: `dst` has `rows * w` elements (checked by the caller), every
                // chunk was written just above.
                unsafe { &mut *(dst as *mut [MaybeUninit<T>] as *mut [T]) }
            }
        }
    }
}

/// The recurrence from input projections read step by step from `src`, `h0, c0 (B, H)`,
/// `w_hh (4H, H)`. The gate buffer is not zero-filled: each step's rows are written from
/// `src` right before the recurrent product accumulates into them.
pub fn lstm_seq_forward_inputs<T: Float>(
    src: StepInputs<T>,
    h0: ArrayView2<T>,
    c0: ArrayView2<T>,
    w_hh: ArrayView2<T>,
) -> LstmSeqSaved<T> {
    let batch = h0.dim().0;
    let (t_len, b2, hid4) = src.dim(batch);
    let hid = hid4 / 4;
    let table_ok = match &src {
        StepInputs::Pre(_) => true,
        StepInputs::Table { table, ids } => {
            ids.len() == t_len * batch
                && table.is_standard_layout()
                && ids.iter().all(|&i| i < table.dim().0)
        }
    };
    assert!(
        table_ok
            && b2 == batch
            && hid4 == 4 * hid
            && h0.dim() == (batch, hid)
            && c0.dim() == (batch, hid)
            && w_hh.dim() == (hid4, hid),
        "lstm_seq: inputs {:?} do not fit h0 {:?}, c0 {:?}, w_hh {:?} (or an id is out of \
         range)",
        (t_len, b2, hid4),
        h0.dim(),
        c0.dim(),
        w_hh.dim()
    );
    let mut gates = Array3::<T>::uninit((t_len, batch, hid4));
    let w_hh_t = PackedB::new(w_hh.t());
    let chunk = row_chunk(t_len, batch, hid);
    let mut recurrence = |mut c: ArrayViewMut3<T>, mut h: ArrayViewMut3<T>| {
        c.index_axis_mut(Axis(0), 0).assign(&c0);
        h.index_axis_mut(Axis(0), 0).assign(&h0);
        let g_parts: Vec<_> = gates.axis_chunks_iter_mut(Axis(1), chunk).collect();
        let c_parts: Vec<_> = c.axis_chunks_iter_mut(Axis(1), chunk).collect();
        let h_parts: Vec<_> = h.axis_chunks_iter_mut(Axis(1), chunk).collect();
        let work = |(i, ((g, c), h))| forward_rows(g, i * chunk, &src, batch, c, h, &w_hh_t);
        if g_parts.len() > 1 {
            g_parts
                .into_par_iter()
                .zip(c_parts)
                .zip(h_parts)
                .enumerate()
                .for_each(work);
        } else {
            g_parts
                .into_iter()
                .zip(c_parts)
                .zip(h_parts)
                .enumerate()
                .for_each(work);
        }
    };
    // The states are not zero-filled either. SAFETY: row 0 of `c` and `h` is assigned
    // first, and step `t` of `forward_rows` writes row `t + 1` of both (all of it: the
    // blocks cover the batch) before step `t + 1` reads it.
    let shape = (t_len + 1, batch, hid);
    let mut h = None;
    let c = unsafe {
        overwritten_array(shape, |c| {
            h = Some(overwritten_array(shape, |h| recurrence(c, h)));
        })
    };
    let h = h.expect("the recurrence ran");
    // SAFETY: `forward_rows` wrote every step of every row block (the blocks cover the
    // batch) through `StepInputs::fill`.
    let gates = unsafe { gates.assume_init() };
    LstmSeqSaved { gates, c, h }
}

/// Rows of the batch per thread: the whole batch unless the recurrence is big enough to
/// split across the rayon pool (and we are not inside it already). Rows are independent
/// and each row's arithmetic does not depend on the split, so results are bit-identical
/// whatever the thread count.
pub fn row_chunk(t_len: usize, batch: usize, hid: usize) -> usize {
    let threads = rayon::current_num_threads();
    if threads > 1
        && rayon::current_thread_index().is_none()
        && batch >= super::par::LSTM_SEQ_MIN_BATCH
        && t_len * batch * hid * hid * 4 >= super::par::LSTM_SEQ_MIN_FLOPS
    {
        batch.div_ceil(threads).next_multiple_of(4)
    } else {
        batch.max(1)
    }
}

/// The recurrence for a block of batch rows `row0..`: `gates (T, b, 4H)` (written from
/// `src`, then overwritten with the activations), `c, h (T + 1, b, H)` with row 0 set.
fn forward_rows<T: Float>(
    mut gates: ArrayViewMut3<MaybeUninit<T>>,
    row0: usize,
    src: &StepInputs<T>,
    batch_all: usize,
    mut c: ArrayViewMut3<T>,
    mut h: ArrayViewMut3<T>,
    w_hh_t: &PackedB<T>,
) {
    let (t_len, batch, hid4) = gates.dim();
    let hid = hid4 / 4;
    for t in 0..t_len {
        let (h_prev, mut h_next) = {
            let (a, b) = h.view_mut().split_at(Axis(0), t + 1);
            (a.index_axis_move(Axis(0), t), b.index_axis_move(Axis(0), 0))
        };
        let mut g = gates.index_axis_mut(Axis(0), t);
        let g = g.as_slice_mut().expect("gate rows are contiguous");
        let g = src.fill(t, row0, batch_all, g);
        let h_prev = h_prev.into_slice().expect("hidden states are contiguous");
        gemm_packed(h_prev, hid, batch, w_hh_t, true, g, hid4);
        let (c_prev, c_next) = {
            let (a, b) = c.view_mut().split_at(Axis(0), t + 1);
            (a.index_axis_move(Axis(0), t), b.index_axis_move(Axis(0), 0))
        };
        let c_prev = c_prev.into_slice().expect("cell states are contiguous");
        let c_next = c_next.into_slice().expect("cell states are contiguous");
        let h_next = h_next.as_slice_mut().expect("hidden states are contiguous");
        lstm_gate_rows(g, c_prev, c_next, h_next, hid);
    }
}

/// The LSTM gate math for `B` rows: pre-activations `g (B, 4H)` (gate order `i, f, g, o`;
/// overwritten with the activations), previous cells `c_prev (B, H)` -> `c_next`, `h_next`.
pub fn lstm_gate_rows<T: Float>(
    g: &mut [T],
    c_prev: &[T],
    c_next: &mut [T],
    h_next: &mut [T],
    hid: usize,
) {
    let batch = c_prev.len() / hid.max(1);
    for bi in 0..batch {
        let row = &mut g[bi * 4 * hid..(bi + 1) * 4 * hid];
        T::sigmoid_inplace(&mut row[..2 * hid]);
        T::tanh_inplace(&mut row[2 * hid..3 * hid]);
        T::sigmoid_inplace(&mut row[3 * hid..]);
        let cp = &c_prev[bi * hid..(bi + 1) * hid];
        let cn = &mut c_next[bi * hid..(bi + 1) * hid];
        for j in 0..hid {
            cn[j] = row[hid + j] * cp[j] + row[j] * row[2 * hid + j];
        }
        let hn = &mut h_next[bi * hid..(bi + 1) * hid];
        hn.copy_from_slice(cn);
        T::tanh_inplace(hn);
        for j in 0..hid {
            hn[j] *= row[3 * hid + j];
        }
    }
}

/// Gradients of a layer run, given the gradient of every output `dh_out (T, B, H)` and of
/// the final cell state `dc_last (B, H)`.
pub struct LstmSeqGrads<T> {
    /// `(T, B, I)`.
    pub dx: Array3<T>,
    /// `(B, H)`.
    pub dh0: Array2<T>,
    /// `(B, H)`.
    pub dc0: Array2<T>,
    /// `(4H, I)`.
    pub dw_ih: Array2<T>,
    /// `(4H, H)`.
    pub dw_hh: Array2<T>,
    /// `(4H)`.
    pub db: ndarray::Array1<T>,
}

/// One block of batch rows for [`backward_rows`].
struct BackRows<'a, T> {
    gates: ArrayView3<'a, T>,
    c: ArrayView3<'a, T>,
    tanh_c: ArrayView3<'a, T>,
    dh_out: ArrayView3<'a, T>,
    dgates: ArrayViewMut3<'a, T>,
    dh_next: ArrayViewMut2<'a, T>,
    dc_next: ArrayViewMut2<'a, T>,
}

/// Backpropagation through time for a block of batch rows: fills `dgates` and leaves
/// `dh_next, dc_next` = the gradients w.r.t. `h0, c0`.
fn backward_rows<T: Float>(r: BackRows<T>, w_hh: &PackedB<T>) {
    let BackRows {
        gates,
        c,
        tanh_c,
        dh_out,
        mut dgates,
        mut dh_next,
        mut dc_next,
    } = r;
    let (t_len, batch, hid4) = gates.dim();
    let hid = hid4 / 4;
    let dhn = dh_next.as_slice_mut().expect("row blocks are contiguous");
    let dcn = dc_next.as_slice_mut().expect("row blocks are contiguous");
    for t in (0..t_len).rev() {
        let mut dg = dgates.index_axis_mut(Axis(0), t);
        let dgs = dg.as_slice_mut().expect("row blocks are contiguous");
        let g_v = gates.index_axis(Axis(0), t);
        let c_v = c.index_axis(Axis(0), t);
        let tc_v = tanh_c.index_axis(Axis(0), t);
        let dh_v = dh_out.index_axis(Axis(0), t);
        let (g_t, c_t, tc_t, dh_t) = (
            g_v.as_slice().expect("row blocks are contiguous"),
            c_v.as_slice().expect("row blocks are contiguous"),
            tc_v.as_slice().expect("row blocks are contiguous"),
            dh_v.as_slice().expect("row blocks are contiguous"),
        );
        gate_grads(g_t, c_t, tc_t, dh_t, dhn, dcn, dgs, hid);
        // dh_{t-1} = dgates_t W_hh
        gemm_packed(dgs, hid4, batch, w_hh, false, dhn, hid);
    }
}

multiversion! {
    wide
    /// The gate gradients of one step for a block of rows: from the activations `g (b, 4H)`,
    /// the previous cells `cp`, `tanh(c_t)` `tc`, the output gradient `dho` and the gradients
    /// flowing back from the next step `dhn`, `dcn` (all `(b, H)`), writes `dg (b, 4H)` and
    /// replaces `dcn` by the gradient of the previous cell. Compiled three times (AVX-512,
    /// AVX2, baseline) from the same code: separate multiplies and adds, so the same bits.
    fn gate_grads<T: Float>(
        g: &[T],
        cp: &[T],
        tc: &[T],
        dho: &[T],
        dhn: &[T],
        dcn: &mut [T],
        dg: &mut [T],
        hid: usize,
    ) {
        if hid == 0 {
            return;
        }
        let one = T::one();
        for (((((g, d), cp), tc), dho), (dhn, dcn)) in g
            .chunks_exact(4 * hid)
            .zip(dg.chunks_exact_mut(4 * hid))
            .zip(cp.chunks_exact(hid))
            .zip(tc.chunks_exact(hid))
            .zip(dho.chunks_exact(hid))
            .zip(dhn.chunks_exact(hid).zip(dcn.chunks_exact_mut(hid)))
        {
            let (gi, rest) = g.split_at(hid);
            let (gf, rest) = rest.split_at(hid);
            let (gg, go) = rest.split_at(hid);
            let (di, rest) = d.split_at_mut(hid);
            let (df, rest) = rest.split_at_mut(hid);
            let (dgg, dog) = rest.split_at_mut(hid);
            // Exact-length slices: the loop runs without bounds checks and vectorises.
            let (gi, gf, gg, go) = (&gi[..hid], &gf[..hid], &gg[..hid], &go[..hid]);
            let (di, df, dgg, dog) = (
                &mut di[..hid],
                &mut df[..hid],
                &mut dgg[..hid],
                &mut dog[..hid],
            );
            let (cp, tc, dho, dhn, dcn) = (
                &cp[..hid],
                &tc[..hid],
                &dho[..hid],
                &dhn[..hid],
                &mut dcn[..hid],
            );
            for j in 0..hid {
                let (ig, fg, g_, og) = (gi[j], gf[j], gg[j], go[j]);
                let dh = dho[j] + dhn[j];
                let d_o = dh * tc[j];
                let dc = dcn[j] + dh * og * (one - tc[j] * tc[j]);
                di[j] = dc * g_ * ig * (one - ig);
                df[j] = dc * cp[j] * fg * (one - fg);
                dgg[j] = dc * ig * (one - g_ * g_);
                dog[j] = d_o * og * (one - og);
                dcn[j] = dc * fg;
            }
        }
    }
}

/// Gradients of [`lstm_seq_forward_pre`]'s inputs.
pub struct LstmSeqPreGrads<T> {
    /// Gradient of the pre-activations, `(T, B, 4H)`.
    pub dgates: Array3<T>,
    /// `(B, H)`.
    pub dh0: Array2<T>,
    /// `(B, H)`.
    pub dc0: Array2<T>,
    /// `(4H, H)`.
    pub dw_hh: Array2<T>,
}

/// Backpropagation through time for [`lstm_seq_forward_pre`], given the gradient of
/// every output `dh_out (T, B, H)` and of the final cell state `dc_last (B, H)`.
pub fn lstm_seq_backward_pre<T: Float>(
    saved: &LstmSeqSaved<T>,
    w_hh: ArrayView2<T>,
    dh_out: ArrayView3<T>,
    dc_last: ArrayView2<T>,
) -> LstmSeqPreGrads<T> {
    let (t_len, batch, hid) = dh_out.dim();
    let mut tanh_c = saved.c.slice(s![1.., .., ..]).to_owned();
    T::tanh_inplace(tanh_c.as_slice_mut().expect("fresh arrays are contiguous"));
    let mut dh_next = Array2::<T>::zeros((batch, hid));
    let mut dc_next = dc_last.as_standard_layout().into_owned();
    let dh_out = dh_out.as_standard_layout();
    let w_hh_p = PackedB::new(w_hh);
    let chunk = row_chunk(t_len, batch, hid);
    let through_time = |mut dgates: ArrayViewMut3<T>| {
        let parts: Vec<_> = saved
            .gates
            .axis_chunks_iter(Axis(1), chunk)
            .zip(saved.c.axis_chunks_iter(Axis(1), chunk))
            .zip(tanh_c.axis_chunks_iter(Axis(1), chunk))
            .zip(dh_out.axis_chunks_iter(Axis(1), chunk))
            .zip(dgates.axis_chunks_iter_mut(Axis(1), chunk))
            .zip(dh_next.axis_chunks_iter_mut(Axis(0), chunk))
            .zip(dc_next.axis_chunks_iter_mut(Axis(0), chunk))
            .map(|((((((g, c), tc), dh), dg), dhn), dcn)| BackRows {
                gates: g,
                c,
                tanh_c: tc,
                dh_out: dh,
                dgates: dg,
                dh_next: dhn,
                dc_next: dcn,
            })
            .collect();
        if parts.len() > 1 {
            parts
                .into_par_iter()
                .for_each(|p| backward_rows(p, &w_hh_p));
        } else {
            parts.into_iter().for_each(|p| backward_rows(p, &w_hh_p));
        }
    };
    // SAFETY: `backward_rows` writes every step's gate gradients (`gate_grads` stores all
    // `4H` of each row) before the GEMM reads them back.
    let dgates = unsafe { overwritten_array((t_len, batch, 4 * hid), through_time) };
    let dg2 = dgates
        .view()
        .into_shape_with_order((t_len * batch, 4 * hid))
        .unwrap();
    let hprev = saved.h.slice(s![..t_len, .., ..]);
    let hprev2 = hprev.into_shape_with_order((t_len * batch, hid)).unwrap();
    // SAFETY: `gemm_at_b` overwrites its output.
    let dw_hh = unsafe { overwritten_array((4 * hid, hid), |c| gemm_at_b(dg2, hprev2, c)) };
    LstmSeqPreGrads {
        dgates,
        dh0: dh_next,
        dc0: dc_next,
        dw_hh,
    }
}

/// Backpropagation through time for [`lstm_seq_forward`].
pub fn lstm_seq_backward<T: Float>(
    saved: &LstmSeqSaved<T>,
    xs: ArrayView3<T>,
    w_ih: ArrayView2<T>,
    w_hh: ArrayView2<T>,
    dh_out: ArrayView3<T>,
    dc_last: ArrayView2<T>,
) -> LstmSeqGrads<T> {
    let (t_len, batch, input) = xs.dim();
    let hid = saved.c.dim().2;
    let LstmSeqPreGrads {
        dgates,
        dh0,
        dc0,
        dw_hh,
    } = lstm_seq_backward_pre(saved, w_hh, dh_out, dc_last);
    let dg2 = dgates
        .view()
        .into_shape_with_order((t_len * batch, 4 * hid))
        .unwrap();
    let xs2 = xs.as_standard_layout();
    let x2 = xs2
        .view()
        .into_shape_with_order((t_len * batch, input))
        .unwrap();
    // SAFETY (both): `gemm` with beta = 0 overwrites its output without reading it.
    let dw_ih = unsafe {
        overwritten_array((4 * hid, input), |c| {
            gemm(T::one(), dg2, true, x2, false, T::zero(), c)
        })
    };
    let db = dg2.sum_axis(Axis(0));
    let dx2 = unsafe {
        overwritten_array((t_len * batch, input), |c| {
            gemm(T::one(), dg2, false, w_ih, false, T::zero(), c)
        })
    };
    LstmSeqGrads {
        dx: dx2.into_shape_with_order((t_len, batch, input)).unwrap(),
        dh0,
        dc0,
        dw_ih,
        dw_hh,
        db,
    }
}
