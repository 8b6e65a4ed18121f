//! The decoder (spec 3.3): token embedding, single-layer LSTM started from the architecture
//! embedding (h0 = c0 = e), Luong "general" attention over the encoder outputs
//! (x = W_in h_t; scores = x . m_j; context = sum a_j m_j; out = tanh(W_out [context; h_t])),
//! no input feeding, and a linear layer to token logits.
//!
//! Because the attention output is never fed back, teacher forcing runs the LSTM over all
//! positions and the attention over all steps in one batched call ([`Decoder::forward`]).
//! Greedy decoding ([`Decoder::greedy`]) runs step by step under the space's masks.

use super::config::ControllerConfig;
use autograd::Tensor;
use autograd::nn::{Embedding, Linear, Lstm, Module, Param};
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
    fn attend_project(&self, o: &Tensor, memory: &Tensor) -> Tensor {
        let q = self.attn_in.forward(o); // (B, T, H)
        let scores = q.matmul(&memory.transpose(1, 2)); // (B, T, S)
        let a = scores.softmax(-1);
        let context = a.matmul(memory); // (B, T, H)
        let mixed = self
            .attn_out
            .forward(&Tensor::concat(&[&context, o], -1))
            .tanh();
        self.out.forward(&mixed)
    }

    /// Teacher forcing: logits `(B, L, vocab)` for targets `archs`, the input at position t
    /// being `<sos>` then the target's tokens `0..L-1`.
    pub fn forward(&self, archs: &[Vec<usize>], embedding: &Tensor, memory: &Tensor) -> Tensor {
        let b = archs.len();
        let l = self.cfg.seq_len;
        let ids: Vec<usize> = archs
            .iter()
            .flat_map(|a| std::iter::once(SOS).chain(a[..l - 1].iter().copied()))
            .collect();
        let x = self.embedding.forward(&ids, &[b, l]).transpose(0, 1); // (L, B, H)
        let (o, _) = self
            .lstm
            .forward(&x, Some((embedding.clone(), embedding.clone())));
        self.attend_project(&o.transpose(0, 1), memory)
    }

    /// Greedy decoding of `B` architectures from embeddings `(B, H)` and memories
    /// `(B, S, H)`, taking at each position the most likely token the space allows there.
    pub fn greedy(
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
