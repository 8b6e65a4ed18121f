//! [`Embedding`]: a lookup table of token vectors.

use crate::dtype::DType;
use crate::nn::{Module, Param, init, join};
use crate::tensor::Tensor;
use rand_pcg::Pcg64Mcg;

/// A `(vocab, dim)` table; `forward(ids, shape)` returns `(shape..., dim)`.
///
/// ```
/// use autograd::nn::Embedding;
/// use rand::SeedableRng;
/// let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(0);
/// let e = Embedding::new("emb", 10, 4, &mut rng);
/// assert_eq!(e.forward(&[1, 2, 3, 4, 5, 6], &[2, 3]).shape(), &[2, 3, 4]);
/// ```
pub struct Embedding {
    /// The table, `(vocab, dim)`.
    pub weight: Param,
}

impl Embedding {
    /// PyTorch's default initialisation: N(0, 1), f32.
    pub fn new(name: &str, vocab: usize, dim: usize, rng: &mut Pcg64Mcg) -> Embedding {
        Embedding {
            weight: Param::new(
                join(name, "weight"),
                init::normal(&[vocab, dim], 1.0, DType::F32, rng),
            ),
        }
    }

    /// Looks up `ids` (row-major, of the given `shape`).
    pub fn forward(&self, ids: &[usize], shape: &[usize]) -> Tensor {
        self.weight.get().embedding(ids, shape)
    }
}

impl Module for Embedding {
    fn params(&self) -> Vec<Param> {
        vec![self.weight.clone()]
    }
}
