//! The decoder (spec 3.3): token embedding, single-layer LSTM started from the architecture
//! embedding (h0 = c0 = e), Luong "general" attention over the encoder outputs
//! (x = W_in h_t; scores = x . m_j; context = sum a_j m_j; out = tanh(W_out [context; h_t])),
//! no input feeding, and a linear layer to token logits.
//!
//! Because the attention output is never fed back, teacher forcing runs the LSTM over all
//! positions and the attention over all steps in one batched call ([`Decoder::forward`]).
//! Greedy decoding ([`Decoder::greedy`]) runs step by step under the space's masks.

use super::config::ControllerConfig;
use autograd::kernels::cpu::gemm;
use autograd::kernels::cpu::lstm_seq::{lstm_gate_rows, row_chunk};
use autograd::kernels::cpu::packed_gemm::{PackedB, gemm_packed};
use autograd::nn::{Embedding, Linear, Lstm, Module, Param};
use autograd::ops::lstm::lstm_table_batch_first;
use autograd::{DType, Float, Tensor};
use models::space::{SOS, SearchSpace};
use ndarray::{Array2, s};
use rand_pcg::Pcg64Mcg;
use rayon::prelude::*;

/// Embedding + LSTM + attention + output projection.
pub struct Decoder {
    embedding: Embedding,
    lstm: Lstm,
    attn_in: Linear,
    attn_out: Linear,
    out: Linear,
    cfg: ControllerConfig,
}

impl Decoder {
    /// A freshly initialised decoder.
    pub fn new(cfg: &ControllerConfig, rng: &mut Pcg64Mcg) -> Decoder {
        let h = cfg.hidden;
        Decoder {
            embedding: Embedding::new("decoder.embedding", cfg.vocab, h, rng),
            lstm: Lstm::new("decoder.lstm", h, h, rng),
            attn_in: Linear::new("decoder.attn_in", h, h, false, rng),
            attn_out: Linear::new("decoder.attn_out", 2 * h, h, false, rng),
            out: Linear::new("decoder.out", h, cfg.vocab, true, rng),
            cfg: cfg.clone(),
        }
    }

    /// Attention and projection for decoder outputs `o: (B, T, H)` over `memory: (B, S, H)`:
    /// token logits `(B, T, vocab)`.
    ///
    /// The products are regrouped so the per-position work is smallest: with `W_out =
    /// [W_c | W_h]`, `scores = (o W_in^T) m^T = o (m W_in)^T` and `W_out [context; o] =
    /// a (m W_c^T) + o W_h^T`; `m W_in` and `m W_c^T` cost `S` rows per architecture
    /// instead of `T`, and no `(B, T, 2H)` concatenation is built.
    fn attend_project(&self, o: &Tensor, memory: &Tensor) -> Tensor {
        let (b, t, h) = (o.shape()[0], o.shape()[1], o.shape()[2]);
        let s_len = memory.shape()[1];
        let m2 = memory.reshape(&[b * s_len, h]);
        let w_out = self.attn_out.weight.get();
        let mq = m2
            .matmul(&self.attn_in.weight.get())
            .reshape(&[b, s_len, h]);
        let scores = o.matmul(&mq.transpose(1, 2)); // (B, T, S)
        let a = scores.softmax(-1);
        let mo = m2.matmul_t(&w_out.narrow(1, 0, h)).reshape(&[b, s_len, h]);
        let oh = o
            .reshape(&[b * t, h])
            .matmul_t(&w_out.narrow(1, h, h))
            .reshape(&[b, t, h]);
        let mixed = a.matmul(&mo).add(&oh).tanh();
        self.out.forward(&mixed)
    }

    /// Teacher forcing: logits `(B, L, vocab)` for targets `archs`, the input at position t
    /// being `<sos>` then the target's tokens `0..L-1`.
    ///
    /// The LSTM's input projections are rows of the `(vocab, 4H)` table `E W_ih^T + b`
    /// ([`lstm_table_batch_first`], which reads the rows step by step): the same model as
    /// embedding then LSTM, without the `(L*B, H) x (H, 4H)` input GEMM and its backward
    /// GEMMs.
    pub fn forward(&self, archs: &[Vec<usize>], embedding: &Tensor, memory: &Tensor) -> Tensor {
        let l = self.cfg.seq_len;
        for a in archs {
            assert_eq!(
                a.len(),
                l,
                "decoder: target of {} tokens, expected {l}",
                a.len()
            );
        }
        // time-major (L, B)
        let ids: Vec<usize> = (0..l)
            .flat_map(|t| {
                archs
                    .iter()
                    .map(move |a| if t == 0 { SOS } else { a[t - 1] })
            })
            .collect();
        let table = self
            .embedding
            .weight
            .get()
            .matmul_t(&self.lstm.w_ih.get())
            .add(&self.lstm.bias.get());
        let o = lstm_table_batch_first(&table, &ids, embedding, embedding, &self.lstm.w_hh.get());
        self.attend_project(&o, memory)
    }

    /// Greedy decoding of `B` architectures from embeddings `(B, H)` and memories
    /// `(B, S, H)`, taking at each position the most likely token the space allows there.
    ///
    /// f32 decoders take a graph-free path on the CPU ([`Decoder::greedy_fast`], also for a
    /// decoder on a GPU: it copies what it needs to the host); others build the graph step
    /// by step ([`Decoder::greedy_graph`], on the device of the weights).
    pub fn greedy(
        &self,
        space: &dyn SearchSpace,
        embedding: &Tensor,
        memory: &Tensor,
    ) -> Vec<Vec<usize>> {
        if self.lstm.w_hh.dtype() == DType::F32
            && embedding.dtype() == DType::F32
            && memory.dtype() == DType::F32
        {
            self.greedy_fast(space, embedding, memory)
        } else {
            self.greedy_graph(space, embedding, memory)
        }
    }

    /// [`Decoder::greedy`] through the autograd ops, one step at a time (the reference).
    pub fn greedy_graph(
        &self,
        space: &dyn SearchSpace,
        embedding: &Tensor,
        memory: &Tensor,
    ) -> Vec<Vec<usize>> {
        let b = embedding.shape()[0];
        let mut state = (embedding.clone(), embedding.clone());
        let mut prev = vec![SOS; b];
        let mut archs = vec![Vec::with_capacity(self.cfg.seq_len); b];
        for pos in 0..self.cfg.seq_len {
            let x = self.embedding.forward(&prev, &[b]);
            state = self.lstm.step(&x, &state);
            let o = state.0.reshape(&[b, 1, self.cfg.hidden]);
            let logits = self
                .attend_project(&o, memory)
                .reshape(&[b, self.cfg.vocab])
                .to_vec::<f64>();
            let allowed = space.allowed(pos);
            for (i, arch) in archs.iter_mut().enumerate() {
                let row = &logits[i * self.cfg.vocab..(i + 1) * self.cfg.vocab];
                let best = allowed.clone().fold(*allowed.start(), |best, t| {
                    if row[t] > row[best] { t } else { best }
                });
                arch.push(best);
                prev[i] = best;
            }
        }
        archs
    }
    /// [`Decoder::greedy`] in f32 on plain buffers, without a graph: the same model, with
    /// the products regrouped (same tokens up to rounding):
    ///
    /// * the input projection of a token, `E[tok] W_ih^T + b`, is a row of a `(vocab, 4H)`
    ///   table computed once;
    /// * `scores_j = (W_in h) . m_j = h . (m_j W_in)` and `W_out[:, :H] context =
    ///   sum_j a_j (W_out[:, :H] m_j)`, with `m W_in` and `m W_out[:, :H]^T` computed once
    ///   per call;
    /// * the recurrent, output and logit products use weights packed once
    ///   ([`PackedB`]); rows are split across the rayon pool (each row's arithmetic does not
    ///   depend on the split).
    ///
    /// It runs on the CPU whatever the device of the decoder and its inputs: the weights,
    /// embeddings and memories are copied to the host (`to_vec`) once per call.
    pub fn greedy_fast(
        &self,
        space: &dyn SearchSpace,
        embedding: &Tensor,
        memory: &Tensor,
    ) -> Vec<Vec<usize>> {
        let (b, s_len, h) = (memory.shape()[0], memory.shape()[1], memory.shape()[2]);
        let (v, l) = (self.cfg.vocab, self.cfg.seq_len);
        assert!(
            embedding.shape() == [b, h] && h == self.cfg.hidden,
            "greedy: embedding {:?} does not fit memory {:?} (hidden {})",
            embedding.shape(),
            memory.shape(),
            self.cfg.hidden
        );
        let arr = |t: &Tensor, r: usize, c: usize| {
            Array2::from_shape_vec((r, c), t.to_vec::<f32>()).expect("shape checked")
        };
        let emb = arr(&self.embedding.weight.get(), v, h);
        let w_ih = arr(&self.lstm.w_ih.get(), 4 * h, h);
        let w_hh = arr(&self.lstm.w_hh.get(), 4 * h, h);
        let bias = self.lstm.bias.get().to_vec::<f32>();
        let w_in = arr(&self.attn_in.weight.get(), h, h);
        let w_out = arr(&self.attn_out.weight.get(), h, 2 * h);
        let w_o = arr(&self.out.weight.get(), v, h);
        let b_o = match &self.out.bias {
            Some(p) => p.get().to_vec::<f32>(),
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
            allowed: (0..l).map(|pos| space.allowed(pos)).collect(),
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

/// What [`Decoder::greedy_fast`] precomputes for one call.
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
    allowed: Vec<std::ops::RangeInclusive<usize>>,
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
        let mut prev = vec![SOS; nb];
        let mut archs = vec![Vec::with_capacity(self.allowed.len()); nb];
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
            for (i, arch) in archs.iter_mut().enumerate() {
                let row = &logits[i * v..(i + 1) * v];
                let score = |t: usize| row[t] + self.b_o[t];
                let best = allowed.clone().fold(*allowed.start(), |best, t| {
                    if score(t) > score(best) { t } else { best }
                });
                arch.push(best);
                prev[i] = best;
            }
        }
        archs
    }
}

impl Module for Decoder {
    fn params(&self) -> Vec<Param> {
        let mut p = self.embedding.params();
        p.extend(self.lstm.params());
        p.extend(self.attn_in.params());
        p.extend(self.attn_out.params());
        p.extend(self.out.params());
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::Encoder;
    use models::space::{SpaceKind, space};
    use rand::SeedableRng;

    /// The graph-free f32 path decodes the same tokens as the graph path, with the batch
    /// split across threads (37 rows) and not (3 rows).
    #[test]
    fn fast_greedy_matches_the_graph_path() {
        let s = space(SpaceKind::CnnWs);
        let cfg = ControllerConfig::for_space(s.as_ref());
        let mut rng = Pcg64Mcg::seed_from_u64(11);
        let enc = Encoder::new(&cfg, &mut rng);
        let dec = Decoder::new(&cfg, &mut rng);
        for n in [37, 3] {
            let archs: Vec<Vec<usize>> = (0..n).map(|_| s.sample(&mut rng)).collect();
            let e = autograd::no_grad(|| enc.forward(&archs));
            let want = autograd::no_grad(|| dec.greedy_graph(s.as_ref(), &e.embedding, &e.outputs));
            let got = dec.greedy_fast(s.as_ref(), &e.embedding, &e.outputs);
            assert_eq!(got, want);
        }
    }
}
