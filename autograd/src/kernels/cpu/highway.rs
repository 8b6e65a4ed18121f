//! The highway update of the DARTS/ENAS/NAO recurrent cell in one pass, forward and
//! backward.
//!
//! Per batch row, from the previous state `s_p` (`H` wide) and the pre-activations
//! `pre = [c | z]` (`2H` wide, row-major):
//!
//! ```text
//! g = σ(c)    a = act(z)    s = s_p + g (a - s_p)
//! ```
//!
//! The forward saves `g` and `a` so that the backward needs no transcendental function:
//!
//! ```text
//! ds_p = ds (1 - g)      dc = ds (a - s_p) g (1 - g)      dz = ds g act'(z)
//! ```
//!
//! with `act'` written in terms of `a`: tanh `1 - a²`, sigmoid `a (1 - a)`, relu
//! `[a > 0]`, identity `1`. Rows are processed in parallel (rayon) when the batch is large.
//! The forward's `σ` and `tanh` go through [`Float::sigmoid_inplace`] and
//! [`Float::tanh_inplace`] (f32: the vectorised `kernels::cpu::fastmath`; f64: libm).

use crate::dtype::Float;
use rayon::prelude::*;

/// The activation applied to `z` in a highway update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HighwayAct {
    /// `tanh(z)`.
    Tanh,
    /// `max(z, 0)`.
    Relu,
    /// `σ(z)`.
    Sigmoid,
    /// `z`.
    Identity,
}

/// Rows per rayon task; below two tasks' worth the kernel runs on the calling thread.
const ROWS_PER_TASK: usize = 32;
/// Batches with fewer elements than this run on the calling thread.
const PAR_ELEMS: usize = super::par::HIGHWAY_MIN;

fn forward_rows<T: Float>(
    sp: &[T],
    pre: &[T],
    h: usize,
    act: HighwayAct,
    s: &mut [T],
    g: &mut [T],
    a: &mut [T],
) {
    for ((((spr, pr), sr), gr), ar) in sp
        .chunks(h)
        .zip(pre.chunks(2 * h))
        .zip(s.chunks_mut(h))
        .zip(g.chunks_mut(h))
        .zip(a.chunks_mut(h))
    {
        let (c, z) = pr.split_at(h);
        gr.copy_from_slice(c);
        T::sigmoid_inplace(gr);
        match act {
            HighwayAct::Tanh => {
                ar.copy_from_slice(z);
                T::tanh_inplace(ar);
            }
            HighwayAct::Relu => ar
                .iter_mut()
                .zip(z)
                .for_each(|(a, &z)| *a = if z > T::zero() { z } else { T::zero() }),
            HighwayAct::Sigmoid => {
                ar.copy_from_slice(z);
                T::sigmoid_inplace(ar);
            }
            HighwayAct::Identity => ar.copy_from_slice(z),
        }
        for (((s, &p), &g), &a) in sr.iter_mut().zip(spr).zip(gr.iter()).zip(ar.iter()) {
            *s = p + g * (a - p);
        }
    }
}

/// Forward. `sp: B x H`, `pre: B x 2H`; writes `s`, `g` (the gate) and `a` (the
/// activation), each `B x H`.
pub fn highway_forward<T: Float>(
    sp: &[T],
    pre: &[T],
    hidden: usize,
    act: HighwayAct,
    s: &mut [T],
    g: &mut [T],
    a: &mut [T],
) {
    let h = hidden;
    if h == 0 || sp.is_empty() {
        return;
    }
    assert!(
        pre.len() == 2 * sp.len() && s.len() == sp.len() && g.len() == sp.len(),
        "highway_forward: s_p has {} values, pre {} (need twice as many)",
        sp.len(),
        pre.len()
    );
    if sp.len() < PAR_ELEMS {
        return forward_rows(sp, pre, h, act, s, g, a);
    }
    let r = ROWS_PER_TASK;
    sp.par_chunks(r * h)
        .zip(pre.par_chunks(2 * r * h))
        .zip(s.par_chunks_mut(r * h))
        .zip(g.par_chunks_mut(r * h))
        .zip(a.par_chunks_mut(r * h))
        .for_each(|((((sp, pre), s), g), a)| forward_rows(sp, pre, h, act, s, g, a));
}

#[allow(clippy::too_many_arguments)]
fn backward_rows<T: Float>(
    ds: &[T],
    sp: &[T],
    g: &[T],
    a: &[T],
    h: usize,
    act: HighwayAct,
    dsp: &mut [T],
    dpre: &mut [T],
) {
    let one = T::one();
    for (((((dsr, spr), gr), ar), dspr), dpr) in ds
        .chunks(h)
        .zip(sp.chunks(h))
        .zip(g.chunks(h))
        .zip(a.chunks(h))
        .zip(dsp.chunks_mut(h))
        .zip(dpre.chunks_mut(2 * h))
    {
        let (dc, dz) = dpr.split_at_mut(h);
        // One loop per activation (no branch inside), so each vectorises.
        match act {
            HighwayAct::Tanh => backward_row(dsr, spr, gr, ar, dspr, dc, dz, |a| one - a * a),
            HighwayAct::Sigmoid => backward_row(dsr, spr, gr, ar, dspr, dc, dz, |a| a * (one - a)),
            HighwayAct::Relu => backward_row(dsr, spr, gr, ar, dspr, dc, dz, |a| {
                if a > T::zero() { one } else { T::zero() }
            }),
            HighwayAct::Identity => backward_row(dsr, spr, gr, ar, dspr, dc, dz, |_| one),
        }
    }
}

/// One row of [`backward_rows`], with `act'` written in terms of `a`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn backward_row<T: Float>(
    ds: &[T],
    sp: &[T],
    g: &[T],
    a: &[T],
    dsp: &mut [T],
    dc: &mut [T],
    dz: &mut [T],
    dact: impl Fn(T) -> T,
) {
    let one = T::one();
    let n = ds.len();
    let (sp, g, a, dsp, dc, dz) = (
        &sp[..n],
        &g[..n],
        &a[..n],
        &mut dsp[..n],
        &mut dc[..n],
        &mut dz[..n],
    );
    for k in 0..n {
        let (d, p, g, a) = (ds[k], sp[k], g[k], a[k]);
        dsp[k] = d * (one - g);
        dc[k] = d * (a - p) * g * (one - g);
        dz[k] = d * g * dact(a);
    }
}

/// Backward. From `ds` (`B x H`) and the saved `sp`, `g`, `a` (`B x H`), writes `dsp`
/// (`B x H`) and `dpre` (`B x 2H`).
#[allow(clippy::too_many_arguments)]
pub fn highway_backward<T: Float>(
    ds: &[T],
    sp: &[T],
    g: &[T],
    a: &[T],
    hidden: usize,
    act: HighwayAct,
    dsp: &mut [T],
    dpre: &mut [T],
) {
    let h = hidden;
    if h == 0 || ds.is_empty() {
        return;
    }
    if ds.len() < PAR_ELEMS {
        return backward_rows(ds, sp, g, a, h, act, dsp, dpre);
    }
    let r = ROWS_PER_TASK;
    ds.par_chunks(r * h)
        .zip(sp.par_chunks(r * h))
        .zip(g.par_chunks(r * h))
        .zip(a.par_chunks(r * h))
        .zip(dsp.par_chunks_mut(r * h))
        .zip(dpre.par_chunks_mut(2 * r * h))
        .for_each(|(((((ds, sp), g), a), dsp), dpre)| {
            backward_rows(ds, sp, g, a, h, act, dsp, dpre)
        });
}
