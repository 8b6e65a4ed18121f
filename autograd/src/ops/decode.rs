//! Graph-free decoding: the no-graph forms of ops, for inference loops whose every step would
//! otherwise build and drop a graph (greedy decoding of NAO's controller).

use crate::dtype::Float;
use crate::kernels::cpu::gemm;
use crate::kernels::cpu::lstm_seq::{lstm_gate_rows, row_chunk};
use crate::kernels::cpu::packed_gemm::{PackedB, gemm_packed};
use crate::tensor::Tensor;
use ndarray::{Array2, s};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use rayon::prelude::*;
use std::ops::RangeInclusive;

/// How a decoding step picks its token among the tokens allowed at that position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pick {
    /// The highest-scoring token (the first at ties).
    Greedy,
    /// A draw from `softmax(logits / temperature)` over the allowed tokens. Row `r` of the
    /// batch draws from its own generator, [`row_rng`]`(seed, r)`, so the tokens do not
    /// depend on how rows are split across threads.
    Sample {
        /// Softmax temperature (> 0; small values approach greedy decoding).
        temperature: f64,
        /// Seed of the per-row generators.
        seed: u64,
    },
}

/// The generator of batch row `row` under [`Pick::Sample`] with `seed`.
pub fn row_rng(seed: u64, row: usize) -> Pcg64Mcg {
    Pcg64Mcg::seed_from_u64(seed ^ (row as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// The token `pick` takes among `allowed`, whose logits `score(t)` gives; `rng` is the
/// row's generator ([`row_rng`]), used only by [`Pick::Sample`].
pub fn pick_token(
    pick: Pick,
    allowed: &RangeInclusive<usize>,
    score: impl Fn(usize) -> f64,
    rng: &mut Pcg64Mcg,
) -> usize {
    let best = allowed.clone().fold(*allowed.start(), |best, t| {
        if score(t) > score(best) { t } else { best }
    });
    let Pick::Sample { temperature, .. } = pick else {
        return best;
    };
    assert!(
        temperature > 0.0,
        "decode: sampling temperature {temperature} must be positive"
    );
    let top = score(best);
    let weights: Vec<f64> = allowed
        .clone()
        .map(|t| ((score(t) - top) / temperature).exp())
        .collect();
    let mut u = rng.random::<f64>() * weights.iter().sum::<f64>();
    for (t, w) in allowed.clone().zip(&weights) {
        if u < *w {
            return t;
        }
        u -= w;
    }
    best
}

/// The weights of an LSTM decoder with attention: token embedding `(V, H)`; LSTM `w_ih`,
/// `w_hh` `(4H, H)` (gates i, f, g, o) and `bias` `(4H)`; attention `attn_in` `(H, H)`
/// (score `(W_in h) . m_j`) and `attn_out` `(H, 2H)` (output `tanh(W_out [context; h])`);
/// logits `out` `(V, H)` plus `out_bias` `(V)`.
#[derive(Debug, Clone, Copy)]
pub struct AttnDecoderWeights<'a> {
    /// Token embedding, `(V, H)`.
    pub embedding: &'a Tensor,
    /// LSTM input weights, `(4H, H)`.
    pub w_ih: &'a Tensor,
    /// LSTM recurrent weights, `(4H, H)`.
    pub w_hh: &'a Tensor,
    /// LSTM bias, `(4H)`.
    pub bias: &'a Tensor,
    /// Attention score projection, `(H, H)`.
    pub attn_in: &'a Tensor,
    /// Attention output projection, `(H, 2H)`: `[context; h]` to `H`.
    pub attn_out: &'a Tensor,
    /// Logit weights, `(V, H)`.
    pub out: &'a Tensor,
    /// Logit bias, `(V)`.
    pub out_bias: Option<&'a Tensor>,
}

/// Decoding of `B` sequences by the decoder `w`, in f32 on the CPU, without a graph:
/// the LSTM starts from `h = c = embedding (B, H)` and the token `sos`, attends over
/// `memory (B, S, H)`, and at step `t` takes a token in `allowed[t]` as `pick` says (greedy:
/// the highest-scoring, the first at ties; or sampled). The products are regrouped (same tokens as the step-by-step graph
/// ops up to rounding):
///
/// * the input projection of a token, `E[tok] W_ih^T + b`, is a row of a `(V, 4H)`
///   table computed once;
/// * `scores_j = (W_in h) . m_j = h . (m_j W_in)` and `W_out[:, :H] context =
///   sum_j a_j (W_out[:, :H] m_j)`, with `m W_in` and `m W_out[:, :H]^T` computed once
///   per call;
/// * the recurrent, output and logit products use weights packed once
///   ([`PackedB`]); rows are split across the rayon pool (each row's arithmetic does not
///   depend on the split).
///
/// Tensors on any device are copied to the host (`to_vec`) once per call.
pub fn attention_decode(
    w: &AttnDecoderWeights<'_>,
    embedding: &Tensor,
    memory: &Tensor,
    allowed: &[RangeInclusive<usize>],
    sos: usize,
    pick: Pick,
) -> Vec<Vec<usize>> {
    let (b, s_len, h) = (memory.shape()[0], memory.shape()[1], memory.shape()[2]);
    let (v, l) = (w.embedding.shape()[0], allowed.len());
    assert!(
        embedding.shape() == [b, h] && w.w_hh.shape() == [4 * h, h],
        "greedy decode: embedding {:?} does not fit memory {:?} and W_hh {:?}",
        embedding.shape(),
        memory.shape(),
        w.w_hh.shape()
    );
    let arr = |t: &Tensor, r: usize, c: usize| {
        Array2::from_shape_vec((r, c), t.to_vec::<f32>()).expect("shape checked")
    };
    let emb = arr(w.embedding, v, h);
    let w_ih = arr(w.w_ih, 4 * h, h);
    let w_hh = arr(w.w_hh, 4 * h, h);
    let bias = w.bias.to_vec::<f32>();
    let w_in = arr(w.attn_in, h, h);
    let w_out = arr(w.attn_out, h, 2 * h);
    let w_o = arr(w.out, v, h);
    let b_o = match w.out_bias {
        Some(p) => p.to_vec::<f32>(),
        None => vec![0.0; v],
    };
    let mem = arr(memory, b * s_len, h);
    let mut table = Array2::from_shape_fn((v, 4 * h), |(_, j)| bias[j]);
    gemm(
        1.0,
        emb.view(),
        false,
        w_ih.view(),
        true,
        1.0,
        table.view_mut(),
    );
    let mut mq = Array2::<f32>::zeros((b * s_len, h));
    gemm(
        1.0,
        mem.view(),
        false,
        w_in.view(),
        false,
        0.0,
        mq.view_mut(),
    );
    let mut mo = Array2::<f32>::zeros((b * s_len, h));
    gemm(
        1.0,
        mem.view(),
        false,
        w_out.slice(s![.., ..h]),
        true,
        0.0,
        mo.view_mut(),
    );
    let fast = FastDecoder {
        h,
        v,
        s_len,
        table: table.as_slice().expect("fresh array"),
        w_hh: PackedB::new(w_hh.t()),
        w_oh: PackedB::new(w_out.slice(s![.., h..]).t()),
        w_o: PackedB::new(w_o.t()),
        b_o: &b_o,
        mq: mq.as_slice().expect("fresh array"),
        mo: mo.as_slice().expect("fresh array"),
        allowed: allowed.to_vec(),
        sos,
        pick,
    };
    let e = embedding.to_vec::<f32>();
    let chunk = row_chunk(l, b, h);
    let starts: Vec<usize> = (0..b).step_by(chunk.max(1)).collect();
    let run = |&r0: &usize| fast.decode_rows(r0, (r0 + chunk).min(b), &e);
    let parts: Vec<Vec<Vec<usize>>> = if starts.len() > 1 {
        starts.par_iter().map(run).collect()
    } else {
        starts.iter().map(run).collect()
    };
    parts.into_iter().flatten().collect()
}

/// A dot product with 16 independent accumulators (vectorises; fixed order, so the
/// same bits whatever the thread split).
fn dot16(x: &[f32], y: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let (xc, yc) = (x.chunks_exact(16), y.chunks_exact(16));
    let (xr, yr) = (xc.remainder(), yc.remainder());
    for (a, b) in xc.zip(yc) {
        for l in 0..16 {
            acc[l] += a[l] * b[l];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (a, b) in xr.iter().zip(yr) {
        s += a * b;
    }
    s
}

/// What [`attention_decode`] precomputes for one call.
struct FastDecoder<'a> {
    h: usize,
    v: usize,
    s_len: usize,
    /// `E W_ih^T + b`, `(vocab, 4H)`.
    table: &'a [f32],
    /// `W_hh^T`.
    w_hh: PackedB<f32>,
    /// `W_out[:, H..]^T` (the part applied to the LSTM output).
    w_oh: PackedB<f32>,
    /// The logit layer's `W^T`.
    w_o: PackedB<f32>,
    b_o: &'a [f32],
    /// `m W_in`, `(B * S, H)`.
    mq: &'a [f32],
    /// `m W_out[:, ..H]^T`, `(B * S, H)`.
    mo: &'a [f32],
    allowed: Vec<RangeInclusive<usize>>,
    /// The start token fed at the first step.
    sos: usize,
    pick: Pick,
}

impl FastDecoder<'_> {
    /// Decodes rows `r0..r1` from the embeddings `e (B, H)`.
    fn decode_rows(&self, r0: usize, r1: usize, e: &[f32]) -> Vec<Vec<usize>> {
        let (h, v, s_len) = (self.h, self.v, self.s_len);
        let nb = r1 - r0;
        let mut hs = e[r0 * h..r1 * h].to_vec();
        let mut cs = hs.clone();
        let mut h_next = vec![0f32; nb * h];
        let mut c_next = vec![0f32; nb * h];
        let mut gates = vec![0f32; nb * 4 * h];
        let mut mixed = vec![0f32; nb * h];
        let mut logits = vec![0f32; nb * v];
        let mut scores = vec![0f32; s_len];
        let mut prev = vec![self.sos; nb];
        let mut archs = vec![Vec::with_capacity(self.allowed.len()); nb];
        let seed = match self.pick {
            Pick::Sample { seed, .. } => seed,
            Pick::Greedy => 0,
        };
        let mut rngs: Vec<Pcg64Mcg> = (r0..r1).map(|r| row_rng(seed, r)).collect();
        for allowed in &self.allowed {
            for (i, &tok) in prev.iter().enumerate() {
                gates[i * 4 * h..(i + 1) * 4 * h]
                    .copy_from_slice(&self.table[tok * 4 * h..(tok + 1) * 4 * h]);
            }
            gemm_packed(&hs, h, nb, &self.w_hh, true, &mut gates, 4 * h);
            lstm_gate_rows(&mut gates, &cs, &mut c_next, &mut h_next, h);
            std::mem::swap(&mut hs, &mut h_next);
            std::mem::swap(&mut cs, &mut c_next);
            gemm_packed(&hs, h, nb, &self.w_oh, false, &mut mixed, h);
            for i in 0..nb {
                let hi = &hs[i * h..(i + 1) * h];
                let row0 = (r0 + i) * s_len;
                for (j, sc) in scores.iter_mut().enumerate() {
                    let m = &self.mq[(row0 + j) * h..(row0 + j + 1) * h];
                    *sc = dot16(hi, m);
                }
                let max = scores.iter().fold(f32::NEG_INFINITY, |a, &x| a.max(x));
                scores.iter_mut().for_each(|x| *x -= max);
                f32::exp_inplace(&mut scores);
                let inv = 1.0 / scores.iter().sum::<f32>();
                let mi = &mut mixed[i * h..(i + 1) * h];
                for (j, &a) in scores.iter().enumerate() {
                    let a = a * inv;
                    let m = &self.mo[(row0 + j) * h..(row0 + j + 1) * h];
                    mi.iter_mut().zip(m).for_each(|(o, &x)| *o += a * x);
                }
            }
            f32::tanh_inplace(&mut mixed);
            gemm_packed(&mixed, h, nb, &self.w_o, false, &mut logits, v);
            for (i, (arch, rng)) in archs.iter_mut().zip(&mut rngs).enumerate() {
                let row = &logits[i * v..(i + 1) * v];
                let score = |t: usize| f64::from(row[t] + self.b_o[t]);
                let tok = pick_token(self.pick, allowed, score, rng);
                arch.push(tok);
                prev[i] = tok;
            }
        }
        archs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Greedy takes the first best; sampling draws each token with its softmax probability
    /// (logits 0, ln 2, ln 3 at temperature 1: 1/6, 2/6, 3/6), and a tiny temperature is
    /// greedy.
    #[test]
    fn pick_token_greedy_and_sampled() {
        let logits = [5.0, 0.0, 2f64.ln(), 3f64.ln(), 3f64.ln()];
        let score = |t: usize| logits[t];
        let mut rng = row_rng(1, 0);
        assert_eq!(pick_token(Pick::Greedy, &(1..=4), score, &mut rng), 3);
        let sample = Pick::Sample {
            temperature: 1.0,
            seed: 0,
        };
        let n = 60_000;
        let mut counts = [0usize; 5];
        for _ in 0..n {
            counts[pick_token(sample, &(1..=3), score, &mut rng)] += 1;
        }
        assert_eq!(
            counts[0] + counts[4],
            0,
            "outside the allowed range: {counts:?}"
        );
        for (t, want) in [(1, 1.0 / 6.0), (2, 2.0 / 6.0), (3, 3.0 / 6.0)] {
            let got = counts[t] as f64 / n as f64;
            assert!((got - want).abs() < 0.01, "token {t}: {got} vs {want}");
        }
        let cold = Pick::Sample {
            temperature: 1e-3,
            seed: 0,
        };
        for _ in 0..100 {
            assert_eq!(pick_token(cold, &(0..=3), score, &mut rng), 0);
        }
    }

    /// Rows have distinct generators, and the same (seed, row) gives the same stream.
    #[test]
    fn row_generators_are_distinct_and_repeatable() {
        let draw = |seed, row| row_rng(seed, row).random::<u64>();
        assert_eq!(draw(3, 7), draw(3, 7));
        assert_ne!(draw(3, 7), draw(3, 8));
        assert_ne!(draw(3, 7), draw(4, 7));
    }
}
