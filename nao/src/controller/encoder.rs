//! The encoder (spec 3.1): token embedding, grouping of consecutive tokens into one LSTM
//! step, a single-layer LSTM, L2-normalised outputs per step, and the architecture
//! embedding = normalise(mean over steps of the normalised outputs).

use super::config::ControllerConfig;
use autograd::nn::{Embedding, Lstm, Module, Param};
use autograd::ops::lstm::{lstm_projected_batch_first, lstm_table_batch_first};
use autograd::{Device, Tensor};
use rand_pcg::Pcg64Mcg;

/// Token tuples up to which the encoder's input projections come from one table.
const MAX_TUPLE_ROWS: usize = 4096;

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
        let w_hh = self.lstm.w_hh.get();
        let z = Tensor::zeros(&[b, self.cfg.hidden], w_hh.dtype()).to(w_hh.device());
        let out = match self.step_inputs(&ids, b, MAX_TUPLE_ROWS) {
            StepProjections::Table(table, ids_c) => {
                lstm_table_batch_first(&table, &ids_c, &z, &z, &w_hh)
            }
            StepProjections::Gathered(pre) => lstm_projected_batch_first(&pre, &z, &z, &w_hh),
        };
        let outputs = out.l2_normalize(-1, NORM_EPS);
        let embedding = embed(&outputs);
        Encoded { outputs, embedding }
    }
    /// The device of the encoder's parameters.
    pub fn device(&self) -> Device {
        self.embedding.weight.device()
    }

    /// The LSTM input projections `(steps, B, 4H)` of the token ids `(B, L)`, time-major
    /// (materialised; [`Encoder::forward`] lets the LSTM read the table itself).
    #[cfg(test)]
    fn step_projections(&self, ids: &[usize], b: usize, max_rows: usize) -> Tensor {
        let steps = self.cfg.enc_steps();
        match self.step_inputs(ids, b, max_rows) {
            StepProjections::Table(table, ids_c) => table.embedding(&ids_c, &[steps, b]),
            StepProjections::Gathered(pre) => pre,
        }
    }

    /// The LSTM input projections of the token ids `(B, L)`, time-major `(steps, B)`.
    ///
    /// Step t's input is `[E[tok_{t,0}], .., E[tok_{t,tps-1}]]`, so its projection is
    /// `sum_k E[tok_{t,k}] W_ih[:, k*emb..(k+1)*emb]^T + b`: a sum of rows of `tps` tables
    /// `(vocab, 4H)`. When `vocab^tps <= max_rows`, the tables are first summed into one
    /// table over all token tuples and each step is one gather.
    fn step_inputs(&self, ids: &[usize], b: usize, max_rows: usize) -> StepProjections {
        let l = self.cfg.seq_len;
        let steps = self.cfg.enc_steps();
        let (tps, emb, hid) = (self.cfg.tokens_per_step, self.cfg.emb, self.cfg.hidden);
        let e = self.embedding.weight.get();
        let w_ih = self.lstm.w_ih.get();
        let v = self.cfg.vocab;
        let tables: Vec<Tensor> = (0..tps)
            .map(|k| {
                let t = e.matmul_t(&w_ih.narrow(1, k * emb, emb));
                if k == 0 {
                    t.add(&self.lstm.bias.get())
                } else {
                    t
                }
            })
            .collect();
        let tok = |i: usize, t: usize, k: usize| ids[i * l + t * tps + k];
        if v.checked_pow(tps as u32).is_some_and(|n| n <= max_rows) {
            // One table over all token tuples of a step, (vocab^tps, 4H), and one gather.
            let h4 = 4 * hid;
            let mut comb = tables[0].clone();
            for t in &tables[1..] {
                let n = comb.shape()[0];
                comb = comb
                    .reshape(&[n, 1, h4])
                    .add(&t.reshape(&[1, v, h4]))
                    .reshape(&[n * v, h4]);
            }
            let ids_c: Vec<usize> = (0..steps)
                .flat_map(|t| (0..b).map(move |i| (0..tps).fold(0, |a, k| a * v + tok(i, t, k))))
                .collect();
            StepProjections::Table(comb, ids_c)
        } else {
            let mut pre: Option<Tensor> = None;
            for (k, table) in tables.iter().enumerate() {
                let ids_k: Vec<usize> = (0..steps)
                    .flat_map(|t| (0..b).map(move |i| tok(i, t, k)))
                    .collect();
                let g = table.embedding(&ids_k, &[steps, b]);
                pre = Some(match pre {
                    None => g,
                    Some(p) => p.add(&g),
                });
            }
            StepProjections::Gathered(pre.expect("tokens_per_step >= 1"))
        }
    }
}

/// The encoder LSTM's input projections: rows of one table over token tuples picked by
/// time-major ids, or (tables too large) the gathered and summed `(steps, B, 4H)` tensor.
enum StepProjections {
    Table(Tensor, Vec<usize>),
    Gathered(Tensor),
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

#[cfg(test)]
mod tests {
    use super::*;
    use models::space::{SpaceKind, space};
    use rand::SeedableRng;

    /// One table over token tuples and a sum of per-position tables give the same
    /// projections (and so the same encoder).
    #[test]
    fn tuple_table_matches_summed_tables() {
        let s = space(SpaceKind::CnnWs);
        let mut cfg = ControllerConfig::for_space(s.as_ref());
        cfg = ControllerConfig {
            hidden: 8,
            emb: 4,
            ..cfg
        };
        let mut rng = Pcg64Mcg::seed_from_u64(3);
        let enc = Encoder::new(&cfg, &mut rng);
        let archs: Vec<Vec<usize>> = (0..5).map(|_| s.sample(&mut rng)).collect();
        let ids: Vec<usize> = archs.iter().flatten().copied().collect();
        let a = enc.step_projections(&ids, 5, MAX_TUPLE_ROWS);
        let b = enc.step_projections(&ids, 5, 0);
        autograd::testing::assert_close(&a, &b, 1e-6, 1e-6);
    }
}
