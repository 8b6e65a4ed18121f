//! The encoder (spec 3.1): token embedding, grouping of consecutive tokens into one LSTM
//! step, a single-layer LSTM, L2-normalised outputs per step, and the architecture
//! embedding = normalise(mean over steps of the normalised outputs).

use super::config::ControllerConfig;
use autograd::Tensor;
use autograd::nn::{Embedding, Lstm, Module, Param};
use autograd::ops::lstm::lstm_projected_batch_first;
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
        let (tps, emb, hid) = (self.cfg.tokens_per_step, self.cfg.emb, self.cfg.hidden);
        // Step t's input is [E[tok_{t,0}], .., E[tok_{t,tps-1}]], so its projection is
        // sum_k E[tok_{t,k}] W_ih[:, k*emb..(k+1)*emb]^T: rows of `tps` tables
        // (vocab, 4H), gathered time-major (steps, B) (see `lstm_projected_batch_first`).
        let e = self.embedding.weight.get();
        let w_ih = self.lstm.w_ih.get();
        let mut pre: Option<Tensor> = None;
        for k in 0..tps {
            let mut table = e.matmul_t(&w_ih.narrow(1, k * emb, emb));
            if k == 0 {
                table = table.add(&self.lstm.bias.get());
            }
            let ids_k: Vec<usize> = (0..steps)
                .flat_map(|t| ids.chunks(l).map(move |a| a[t * tps + k]))
                .collect();
            let g = table.embedding(&ids_k, &[steps, b]);
            pre = Some(match pre {
                None => g,
                Some(p) => p.add(&g),
            });
        }
        let pre = pre.expect("tokens_per_step >= 1");
        let z = Tensor::zeros(&[b, hid], pre.dtype());
        let out = lstm_projected_batch_first(&pre, &z, &z, &self.lstm.w_hh.get());
        let outputs = out.l2_normalize(-1, NORM_EPS);
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
