//! The encoder (spec 3.1): token embedding, grouping of consecutive tokens into one LSTM
//! step, a single-layer LSTM, L2-normalised outputs per step, and the architecture
//! embedding = normalise(mean over steps of the normalised outputs).

use super::config::ControllerConfig;
use autograd::Tensor;
use autograd::nn::{Embedding, Lstm, Module, Param};
use rand_pcg::Pcg64Mcg;

/// Normalisation floor (as in `F.normalize`).
pub const NORM_EPS: f64 = 1e-12;

/// Embedding + LSTM.
pub struct Encoder {
    embedding: Embedding,
    lstm: Lstm,
    cfg: ControllerConfig,
}

/// What the encoder computes for a batch.
pub struct Encoded {
    /// L2-normalised LSTM outputs, `(B, steps, hidden)`: the attention memory, and what
    /// generation moves.
    pub outputs: Tensor,
    /// The architecture embedding, `(B, hidden)`.
    pub embedding: Tensor,
}

impl Encoder {
    /// A freshly initialised encoder.
    pub fn new(cfg: &ControllerConfig, rng: &mut Pcg64Mcg) -> Encoder {
        assert_eq!(
            cfg.emb * cfg.tokens_per_step,
            cfg.hidden,
            "encoder: emb {} x tokens_per_step {} must equal hidden {}",
            cfg.emb,
            cfg.tokens_per_step,
            cfg.hidden
        );
        Encoder {
            embedding: Embedding::new("encoder.embedding", cfg.vocab, cfg.emb, rng),
            lstm: Lstm::new("encoder.lstm", cfg.hidden, cfg.hidden, rng),
            cfg: cfg.clone(),
        }
    }

    /// Encodes a batch of architectures (each `seq_len` tokens).
    pub fn forward(&self, archs: &[Vec<usize>]) -> Encoded {
        let b = archs.len();
        let l = self.cfg.seq_len;
        let ids: Vec<usize> = archs
            .iter()
            .flat_map(|a| {
                assert_eq!(
                    a.len(),
                    l,
                    "encoder: architecture of {} tokens, expected {l}",
                    a.len()
                );
                a.iter().copied()
            })
            .collect();
        let steps = self.cfg.enc_steps();
        // (B, L, E) -> (B, steps, tokens_per_step * E) -> time-major (steps, B, hidden)
        let x = self
            .embedding
            .forward(&ids, &[b, l])
            .reshape(&[b, steps, self.cfg.hidden])
            .transpose(0, 1);
        let (out, _) = self.lstm.forward(&x, None);
        let outputs = out.transpose(0, 1).l2_normalize(-1, NORM_EPS);
        let embedding = embed(&outputs);
        Encoded { outputs, embedding }
    }
}

/// The architecture embedding of (possibly moved) encoder outputs `(B, steps, H)`:
/// normalise each step, mean over steps, normalise again.
pub fn embed(outputs: &Tensor) -> Tensor {
    outputs.mean_axes(&[1], false).l2_normalize(-1, NORM_EPS)
}

impl Module for Encoder {
    fn params(&self) -> Vec<Param> {
        let mut p = self.embedding.params();
        p.extend(self.lstm.params());
        p
    }
}
