//! The decoder (spec 3.3): token embedding, single-layer LSTM started from the architecture
//! embedding (h0 = c0 = e), Luong "general" attention over the encoder outputs
//! (x = W_in h_t; scores = x . m_j; context = sum a_j m_j; out = tanh(W_out [context; h_t])),
//! no input feeding, and a linear layer to token logits.
//!
//! Because the attention output is never fed back, teacher forcing runs the LSTM over all
//! positions and the attention over all steps in one batched call ([`Decoder::forward`]).
//! Greedy decoding ([`Decoder::greedy`]) runs step by step under the space's masks.

use super::config::ControllerConfig;
use autograd::nn::{Embedding, Linear, Lstm, Module, Param};
use autograd::ops::decode::{AttnDecoderWeights, Pick, attention_decode, pick_token, row_rng};
use autograd::ops::lstm::lstm_table_batch_first;
use autograd::{DType, Tensor};
use models::space::{SOS, SearchSpace};
use rand_pcg::Pcg64Mcg;

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
    pub fn greedy(
        &self,
        space: &dyn SearchSpace,
        embedding: &Tensor,
        memory: &Tensor,
    ) -> Vec<Vec<usize>> {
        self.decode(space, embedding, memory, Pick::Greedy)
    }

    /// Decoding of `B` architectures from embeddings `(B, H)` and memories `(B, S, H)`,
    /// picking each token among those the space allows as `pick` says (greedy, or sampled
    /// from the decoder's distribution at a temperature).
    ///
    /// f32 decoders take a graph-free path on the CPU ([`Decoder::decode_fast`], also for a
    /// decoder on a GPU: it copies what it needs to the host); others build the graph step
    /// by step ([`Decoder::decode_graph`], on the device of the weights).
    pub fn decode(
        &self,
        space: &dyn SearchSpace,
        embedding: &Tensor,
        memory: &Tensor,
        pick: Pick,
    ) -> Vec<Vec<usize>> {
        if self.lstm.w_hh.dtype() == DType::F32
            && embedding.dtype() == DType::F32
            && memory.dtype() == DType::F32
        {
            self.decode_fast(space, embedding, memory, pick)
        } else {
            self.decode_graph(space, embedding, memory, pick)
        }
    }

    /// [`Decoder::decode`] through the autograd ops, one step at a time (the reference).
    pub fn decode_graph(
        &self,
        space: &dyn SearchSpace,
        embedding: &Tensor,
        memory: &Tensor,
        pick: Pick,
    ) -> Vec<Vec<usize>> {
        let b = embedding.shape()[0];
        let seed = match pick {
            Pick::Sample { seed, .. } => seed,
            Pick::Greedy => 0,
        };
        let mut rngs: Vec<_> = (0..b).map(|r| row_rng(seed, r)).collect();
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
            for (i, (arch, rng)) in archs.iter_mut().zip(&mut rngs).enumerate() {
                let row = &logits[i * self.cfg.vocab..(i + 1) * self.cfg.vocab];
                let tok = pick_token(pick, &allowed, |t| row[t], rng);
                arch.push(tok);
                prev[i] = tok;
            }
        }
        archs
    }
    /// [`Decoder::decode`] in f32 on plain buffers, without a graph: autograd's no-graph op
    /// [`attention_decode`] with this decoder's weights (same tokens as
    /// [`Decoder::decode_graph`] up to rounding; the op's docs say how the products are
    /// regrouped).
    ///
    /// It runs on the CPU whatever the device of the decoder and its inputs: the weights,
    /// embeddings and memories are copied to the host (`to_vec`) once per call.
    pub fn decode_fast(
        &self,
        space: &dyn SearchSpace,
        embedding: &Tensor,
        memory: &Tensor,
        pick: Pick,
    ) -> Vec<Vec<usize>> {
        let (b, h) = (memory.shape()[0], memory.shape()[2]);
        let l = self.cfg.seq_len;
        assert!(
            embedding.shape() == [b, h] && h == self.cfg.hidden,
            "greedy: embedding {:?} does not fit memory {:?} (hidden {})",
            embedding.shape(),
            memory.shape(),
            self.cfg.hidden
        );
        let (embedding_w, w_ih, w_hh, bias) = (
            self.embedding.weight.get(),
            self.lstm.w_ih.get(),
            self.lstm.w_hh.get(),
            self.lstm.bias.get(),
        );
        let (attn_in, attn_out, out) = (
            self.attn_in.weight.get(),
            self.attn_out.weight.get(),
            self.out.weight.get(),
        );
        let out_bias = self.out.bias.as_ref().map(|p| p.get());
        let weights = AttnDecoderWeights {
            embedding: &embedding_w,
            w_ih: &w_ih,
            w_hh: &w_hh,
            bias: &bias,
            attn_in: &attn_in,
            attn_out: &attn_out,
            out: &out,
            out_bias: out_bias.as_ref(),
        };
        let allowed: Vec<_> = (0..l).map(|pos| space.allowed(pos)).collect();
        attention_decode(&weights, embedding, memory, &allowed, SOS, pick)
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

    /// The graph-free f32 path decodes the same tokens as the graph path, greedy and
    /// sampled (the same per-row generators), with the batch split across threads (37 rows)
    /// and not (3 rows).
    #[test]
    fn fast_decoding_matches_the_graph_path() {
        let s = space(SpaceKind::CnnWs);
        let cfg = ControllerConfig::for_space(s.as_ref());
        let mut rng = Pcg64Mcg::seed_from_u64(11);
        let enc = Encoder::new(&cfg, &mut rng);
        let dec = Decoder::new(&cfg, &mut rng);
        for n in [37, 3] {
            let archs: Vec<Vec<usize>> = (0..n).map(|_| s.sample(&mut rng)).collect();
            let e = autograd::no_grad(|| enc.forward(&archs));
            let sample = Pick::Sample {
                temperature: 1.0,
                seed: 5,
            };
            for pick in [Pick::Greedy, sample] {
                let want = autograd::no_grad(|| {
                    dec.decode_graph(s.as_ref(), &e.embedding, &e.outputs, pick)
                });
                let got = dec.decode_fast(s.as_ref(), &e.embedding, &e.outputs, pick);
                assert_eq!(got, want, "{pick:?}");
            }
            // An untrained decoder is nearly uniform: sampling departs from greedy.
            let greedy = dec.greedy(s.as_ref(), &e.embedding, &e.outputs);
            let sampled = dec.decode(s.as_ref(), &e.embedding, &e.outputs, sample);
            assert_ne!(greedy, sampled);
        }
    }
}
