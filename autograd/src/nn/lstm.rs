//! [`Lstm`]: a single-layer LSTM (PyTorch layout and gate order i, f, g, o).

use crate::dtype::DType;
use crate::nn::{Module, Param, init, join};
use crate::ops::lstm::{LstmWeights, lstm, lstm_cell};
use crate::tensor::Tensor;
use rand_pcg::Pcg64Mcg;

/// Weights `w_ih (4H, I)`, `w_hh (4H, H)` and one bias `(4H)` (PyTorch's `b_ih + b_hh`).
pub struct Lstm {
    /// Input-to-hidden weights.
    pub w_ih: Param,
    /// Hidden-to-hidden weights.
    pub w_hh: Param,
    /// Gate bias.
    pub bias: Param,
}

impl Lstm {
    /// PyTorch's default initialisation: everything uniform in `±1/sqrt(H)`, f32. (The bias
    /// is one vector here, drawn with the same bound.)
    pub fn new(name: &str, input: usize, hidden: usize, rng: &mut Pcg64Mcg) -> Lstm {
        let k = 1.0 / (hidden as f64).sqrt();
        Lstm {
            w_ih: Param::new(
                join(name, "w_ih"),
                init::uniform(&[4 * hidden, input], k, DType::F32, rng),
            ),
            w_hh: Param::new(
                join(name, "w_hh"),
                init::uniform(&[4 * hidden, hidden], k, DType::F32, rng),
            ),
            bias: Param::new(
                join(name, "bias"),
                init::uniform(&[4 * hidden], k, DType::F32, rng),
            ),
        }
    }

    /// Hidden size.
    pub fn hidden(&self) -> usize {
        self.w_hh.shape()[1]
    }

    fn weights(&self) -> LstmWeights {
        LstmWeights {
            w_ih: self.w_ih.get(),
            w_hh: self.w_hh.get(),
            bias: self.bias.get(),
        }
    }

    /// Runs over `xs (T, B, I)` from `state` (zeros when `None`); returns the outputs
    /// `(T, B, H)` and the final `(h, c)`.
    pub fn forward(
        &self,
        xs: &Tensor,
        state: Option<(Tensor, Tensor)>,
    ) -> (Tensor, (Tensor, Tensor)) {
        let (h0, c0) = state.unwrap_or_else(|| {
            let z = Tensor::full_on(
                &[xs.shape()[1], self.hidden()],
                0.0,
                xs.dtype(),
                xs.device(),
            );
            (z.clone(), z)
        });
        lstm(xs, &h0, &c0, &self.weights())
    }

    /// One step: `x (B, I)` from `(h, c)` to the next `(h, c)`.
    pub fn step(&self, x: &Tensor, state: &(Tensor, Tensor)) -> (Tensor, Tensor) {
        lstm_cell(
            x,
            &state.0,
            &state.1,
            &self.w_ih.get(),
            &self.w_hh.get(),
            &self.bias.get(),
        )
    }
}

impl Module for Lstm {
    fn params(&self) -> Vec<Param> {
        vec![self.w_ih.clone(), self.w_hh.clone(), self.bias.clone()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn forward_equals_repeated_steps() {
        let mut rng = Pcg64Mcg::seed_from_u64(3);
        let l = Lstm::new("l", 5, 4, &mut rng);
        l.to_dtype(DType::F64);
        let xs = crate::testing::rand_f64(&[3, 2, 5], 4);
        let (out, (h, c)) = l.forward(&xs, None);
        let mut s = (
            Tensor::zeros(&[2, 4], DType::F64),
            Tensor::zeros(&[2, 4], DType::F64),
        );
        for t in 0..3 {
            s = l.step(&xs.select(0, t), &s);
            crate::testing::assert_close(&out.select(0, t), &s.0, 1e-12, 1e-12);
        }
        crate::testing::assert_close(&h, &s.0, 1e-12, 1e-12);
        crate::testing::assert_close(&c, &s.1, 1e-12, 1e-12);
    }
}
