//! A whole LSTM layer over a sequence, forward and backward-through-time in one kernel.
//!
//! Per step only `h_{t-1} W_hh^T` (a `B x H x 4H` GEMM) and the gate math run; the input
//! projection of all steps is one `(T*B) x I x 4H` GEMM before the loop, and the backward
//! pass computes `dW_ih`, `dW_hh`, `db` and `dX` with one big GEMM each after the loop.
//! Gate order is PyTorch's: input, forget, cell (g), output.

use crate::dtype::Float;
use crate::kernels::cpu::gemm;
use ndarray::{Array2, Array3, ArrayView1, ArrayView2, ArrayView3, Axis, s};

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
    let mut gates = pre.into_shape_with_order((t_len, batch, 4 * hid)).unwrap();
    let mut c = Array3::<T>::zeros((t_len + 1, batch, hid));
    let mut h = Array3::<T>::zeros((t_len + 1, batch, hid));
    c.index_axis_mut(Axis(0), 0).assign(&c0);
    h.index_axis_mut(Axis(0), 0).assign(&h0);
    for t in 0..t_len {
        let mut g = gates.index_axis_mut(Axis(0), t);
        gemm(
            T::one(),
            h.index_axis(Axis(0), t),
            false,
            w_hh,
            true,
            T::one(),
            g.view_mut(),
        );
        let g = g.as_slice_mut().expect("gate rows are contiguous");
        let (c_prev, c_next) = {
            let (a, b) = c.view_mut().split_at(Axis(0), t + 1);
            (a.index_axis_move(Axis(0), t), b.index_axis_move(Axis(0), 0))
        };
        let c_prev = c_prev.into_slice().expect("cell states are contiguous");
        let c_next = c_next.into_slice().expect("cell states are contiguous");
        let mut h_next = h.index_axis_mut(Axis(0), t + 1);
        let h_next = h_next.as_slice_mut().expect("hidden states are contiguous");
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
    LstmSeqSaved { gates, c, h }
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
    let mut tanh_c = saved.c.slice(s![1.., .., ..]).to_owned();
    T::tanh_inplace(tanh_c.as_slice_mut().expect("fresh arrays are contiguous"));
    let mut dgates = Array3::<T>::zeros((t_len, batch, 4 * hid));
    let mut dh_next = Array2::<T>::zeros((batch, hid));
    let mut dc_next = dc_last.to_owned();
    let dh_out = dh_out.as_standard_layout();
    let dh_all = dh_out.as_slice().expect("standard layout");
    let gates = saved.gates.as_slice().expect("saved gates are contiguous");
    let c_all = saved
        .c
        .as_slice()
        .expect("saved cell states are contiguous");
    let tc_all = tanh_c.as_slice().expect("fresh arrays are contiguous");
    let (bh, bh4) = (batch * hid, batch * 4 * hid);
    for t in (0..t_len).rev() {
        let mut dg = dgates.index_axis_mut(Axis(0), t);
        {
            let dgs = dg.as_slice_mut().expect("fresh arrays are contiguous");
            let dhn = dh_next.as_slice().expect("fresh arrays are contiguous");
            let dcn = dc_next.as_slice_mut().expect("fresh arrays are contiguous");
            let (g_t, c_t, tc_t, dh_t) = (
                &gates[t * bh4..][..bh4],
                &c_all[t * bh..][..bh],
                &tc_all[t * bh..][..bh],
                &dh_all[t * bh..][..bh],
            );
            for bi in 0..batch {
                let g = &g_t[bi * 4 * hid..][..4 * hid];
                let d = &mut dgs[bi * 4 * hid..][..4 * hid];
                let (di, rest) = d.split_at_mut(hid);
                let (df, rest) = rest.split_at_mut(hid);
                let (dgg, dog) = rest.split_at_mut(hid);
                let r = bi * hid..(bi + 1) * hid;
                let (cp, tc, dho, dhn, dcn) = (
                    &c_t[r.clone()],
                    &tc_t[r.clone()],
                    &dh_t[r.clone()],
                    &dhn[r.clone()],
                    &mut dcn[r],
                );
                for j in 0..hid {
                    let (ig, fg, gg, og) = (g[j], g[hid + j], g[2 * hid + j], g[3 * hid + j]);
                    let dh = dho[j] + dhn[j];
                    let d_o = dh * tc[j];
                    let dc = dcn[j] + dh * og * (T::one() - tc[j] * tc[j]);
                    di[j] = dc * gg * ig * (T::one() - ig);
                    df[j] = dc * cp[j] * fg * (T::one() - fg);
                    dgg[j] = dc * ig * (T::one() - gg * gg);
                    dog[j] = d_o * og * (T::one() - og);
                    dcn[j] = dc * fg;
                }
            }
        }
        // dh_{t-1} = dgates_t W_hh
        gemm(
            T::one(),
            dg.view(),
            false,
            w_hh,
            false,
            T::zero(),
            dh_next.view_mut(),
        );
    }
    let dg2 = dgates
        .view()
        .into_shape_with_order((t_len * batch, 4 * hid))
        .unwrap();
    let xs2 = xs.as_standard_layout();
    let x2 = xs2
        .view()
        .into_shape_with_order((t_len * batch, input))
        .unwrap();
    let hprev = saved.h.slice(s![..t_len, .., ..]);
    let hprev2 = hprev.into_shape_with_order((t_len * batch, hid)).unwrap();
    let mut dw_ih = Array2::<T>::zeros((4 * hid, input));
    gemm(T::one(), dg2, true, x2, false, T::zero(), dw_ih.view_mut());
    let mut dw_hh = Array2::<T>::zeros((4 * hid, hid));
    gemm(
        T::one(),
        dg2,
        true,
        hprev2,
        false,
        T::zero(),
        dw_hh.view_mut(),
    );
    let db = dg2.sum_axis(Axis(0));
    let mut dx2 = Array2::<T>::zeros((t_len * batch, input));
    gemm(T::one(), dg2, false, w_ih, false, T::zero(), dx2.view_mut());
    LstmSeqGrads {
        dx: dx2.into_shape_with_order((t_len, batch, input)).unwrap(),
        dh0: dh_next,
        dc0: dc_next,
        dw_ih,
        dw_hh,
        db,
    }
}
