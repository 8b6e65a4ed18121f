//! The performance predictor (spec 3.2): `mlp_layers` x [linear, ReLU, dropout], then a
//! linear layer to one output and a sigmoid.

use super::config::{ControllerConfig, PredictorInput};
use autograd::Tensor;
use autograd::nn::{Linear, Module, Param};
use autograd::ops::dropout::dropout_mask;
use rand_pcg::Pcg64Mcg;

/// The MLP on the architecture embedding.
pub struct Predictor {
    hidden: Vec<Linear>,
    out: Linear,
    dropout: f64,
}

impl Predictor {
    /// A freshly initialised predictor.
    pub fn new(cfg: &ControllerConfig, rng: &mut Pcg64Mcg) -> Predictor {
        let mut width = match cfg.predictor_input {
            PredictorInput::Mean => cfg.hidden,
            PredictorInput::Concat => cfg.hidden * cfg.enc_steps(),
        };
        let mut hidden = Vec::new();
        for i in 0..cfg.mlp_layers {
            hidden.push(Linear::new(
                &format!("predictor.mlp{i}"),
                width,
                cfg.mlp_hidden,
                true,
                rng,
            ));
            width = cfg.mlp_hidden;
        }
        Predictor {
            hidden,
            out: Linear::new("predictor.out", width, 1, true, rng),
            dropout: cfg.mlp_dropout,
        }
    }

    /// Predicted performance in (0, 1), shape `(B,)`. With `dropout_rng`, dropout is applied
    /// (training); without, it is not (evaluation, generation).
    pub fn forward(&self, embedding: &Tensor, mut dropout_rng: Option<&mut Pcg64Mcg>) -> Tensor {
        let mut x = embedding.clone();
        for layer in &self.hidden {
            x = layer.forward(&x).relu();
            if let Some(rng) = dropout_rng.as_deref_mut()
                && self.dropout > 0.0
            {
                // drawn on the host from `rng` (same choices on every device), then moved
                let mask = dropout_mask(x.shape(), 1.0 - self.dropout, x.dtype(), rng);
                x = x.mul(&mask.to(x.device()));
            }
        }
        let b = x.shape()[0];
        self.out.forward(&x).sigmoid().reshape(&[b])
    }
}

impl Module for Predictor {
    fn params(&self) -> Vec<Param> {
        let mut p: Vec<Param> = self.hidden.iter().flat_map(|l| l.params()).collect();
        p.extend(self.out.params());
        p
    }
}
