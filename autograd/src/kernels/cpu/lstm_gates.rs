//! The LSTM cell's gate math in one pass, forward and backward (PyTorch gate order
//! `i, f, g, o`).
//!
//! Forward, per batch row `b` and unit `k`, from the pre-activations
//! `pre = x W_ih^T + h W_hh^T + bias` (`B x 4H`, row-major, gate blocks of `H`):
//!
//! ```text
//! i = σ(pre_i)  f = σ(pre_f)  g = tanh(pre_g)  o = σ(pre_o)
//! c' = f c + i g            h' = o tanh(c')
//! ```
//!
//! The forward saves the activations `[i f g o]` (`B x 4H`) and `tanh(c')` (`B x H`) so
//! that the backward is one pass with no transcendental functions:
//!
//! ```text
//! dc = dc' + dh' o (1 - tanh²(c'))
//! dpre_i = dc g i (1 - i)     dpre_f = dc c f (1 - f)
//! dpre_g = dc i (1 - g²)      dpre_o = dh' tanh(c') o (1 - o)
//! dc_prev = dc f
//! ```

use crate::dtype::Float;

/// Forward gate math. `pre: B x 4H`, `c: B x H`; writes `h_out`, `c_out` (`B x H`),
/// `acts` (`B x 4H`: `i f g o`) and `tanh_c` (`B x H`).
pub fn lstm_gates_forward<T: Float>(
    pre: &[T],
    c: &[T],
    hidden: usize,
    h_out: &mut [T],
    c_out: &mut [T],
    acts: &mut [T],
    tanh_c: &mut [T],
) {
    let h = hidden;
    if h == 0 {
        return;
    }
    for (((((pr, cr), hr), cor), ar), tr) in pre
        .chunks(4 * h)
        .zip(c.chunks(h))
        .zip(h_out.chunks_mut(h))
        .zip(c_out.chunks_mut(h))
        .zip(acts.chunks_mut(4 * h))
        .zip(tanh_c.chunks_mut(h))
    {
        // Separate passes over contiguous runs: i, f (sigmoid), g (tanh), o (sigmoid).
        let (sif, rest) = ar.split_at_mut(2 * h);
        let (sg, so) = rest.split_at_mut(h);
        sif.copy_from_slice(&pr[..2 * h]);
        T::sigmoid_inplace(sif);
        sg.copy_from_slice(&pr[2 * h..3 * h]);
        T::tanh_inplace(sg);
        so.copy_from_slice(&pr[3 * h..]);
        T::sigmoid_inplace(so);
        let (si, sf) = sif.split_at(h);
        for ((((cn, &i), &f), &g), &cp) in cor.iter_mut().zip(si).zip(sf).zip(sg.iter()).zip(cr) {
            *cn = f * cp + i * g;
        }
        tr.copy_from_slice(cor);
        T::tanh_inplace(tr);
        for ((hv, &t), &o) in hr.iter_mut().zip(tr.iter()).zip(so.iter()) {
            *hv = o * t;
        }
    }
}

/// Backward gate math (see the module docs). `dh`, `dc_out`: gradients of `h'` and `c'`
/// (`B x H`); writes `dpre` (`B x 4H`) and `dc_prev` (`B x H`).
#[allow(clippy::too_many_arguments)]
pub fn lstm_gates_backward<T: Float>(
    acts: &[T],
    c_prev: &[T],
    tanh_c: &[T],
    dh: &[T],
    dc_out: &[T],
    hidden: usize,
    dpre: &mut [T],
    dc_prev: &mut [T],
) {
    let h = hidden;
    if h == 0 {
        return;
    }
    let one = T::one();
    for ((((((ar, cr), tr), dhr), dcr), dpr), dcpr) in acts
        .chunks(4 * h)
        .zip(c_prev.chunks(h))
        .zip(tanh_c.chunks(h))
        .zip(dh.chunks(h))
        .zip(dc_out.chunks(h))
        .zip(dpre.chunks_mut(4 * h))
        .zip(dc_prev.chunks_mut(h))
    {
        for k in 0..h {
            let (i, f, g, o) = (ar[k], ar[h + k], ar[2 * h + k], ar[3 * h + k]);
            let tc = tr[k];
            let dhk = dhr[k];
            let dc = dcr[k] + dhk * o * (one - tc * tc);
            dpr[k] = dc * g * i * (one - i);
            dpr[h + k] = dc * cr[k] * f * (one - f);
            dpr[2 * h + k] = dc * i * (one - g * g);
            dpr[3 * h + k] = dhk * tc * o * (one - o);
            dcpr[k] = dc * f;
        }
    }
}
