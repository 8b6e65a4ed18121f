//! Matrix products: `matmul` (2-D x 2-D, batched 3-D x 3-D, batched 3-D x 2-D) and
//! `linear` (`x W^T + b`, PyTorch's weight layout). The kernels (and which one a shape
//! takes) are [`crate::kernels::cpu::matmul`] and [`crate::kernels::cuda::matmul`],
//! dispatched by [`crate::Storage::matmul`].

use crate::tensor::Tensor;

/// `op(a) · op(b)` as a constant tensor on the inputs' device (the backward's products).
fn mm(name: &str, a: &Tensor, ta: bool, b: &Tensor, tb: bool) -> Tensor {
    Tensor::from_storage(a.storage().matmul(name, ta, b.storage(), tb))
}

fn check_inner(a: &[usize], b: &[usize]) {
    let k1 = a[a.len() - 1];
    let k2 = b[b.len() - 2.min(b.len())];
    let batch_ok = a.len() != 3 || b.len() != 3 || a[0] == b[0];
    assert!(
        a.len() >= 2 && b.len() >= 2 && k1 == k2 && batch_ok,
        "matmul: shapes {a:?} and {b:?} do not fit"
    );
}

impl Tensor {
    /// Matrix product. `a: (m, k)`, `b: (k, n)` -> `(m, n)`; `a: (B, m, k)` with
    /// `b: (B, k, n)` or `(k, n)` -> `(B, m, n)`.
    pub fn matmul(&self, other: &Tensor) -> Tensor {
        check_inner(self.shape(), other.shape());
        let out = self
            .storage()
            .matmul("matmul", false, other.storage(), false);
        Tensor::from_op(
            out,
            &[self, other],
            "matmul",
            |inp: &[Tensor], _: &Tensor, g: &Tensor| {
                let (a, b) = (&inp[0], &inp[1]);
                // dA = G B^T ; dB = A^T G (summed over the batch when B was shared).
                let ga = a
                    .is_tracked()
                    .then(|| mm("matmul_backward", g, false, b, true));
                let gb = b.is_tracked().then(|| {
                    if a.ndim() == 3 && b.ndim() == 2 {
                        // Fold the batch into rows: A (B*m, k), G (B*m, n).
                        let k = a.shape()[2];
                        let n = g.shape()[2];
                        let a2 = a.reshape(&[a.numel() / k, k]);
                        let g2 = g.reshape(&[g.numel() / n, n]);
                        mm("matmul_backward", &a2, true, &g2, false)
                    } else {
                        mm("matmul_backward", a, true, g, false)
                    }
                });
                vec![ga, gb]
            },
        )
    }

    /// `x W^T (+ b)` with `W: (out, in)` (PyTorch layout), `x: (..., in)`.
    pub fn linear(&self, weight: &Tensor, bias: Option<&Tensor>) -> Tensor {
        let inf = weight.shape()[1];
        assert_eq!(
            self.dim(-1),
            inf,
            "linear: input {:?} does not fit weight {:?}",
            self.shape(),
            weight.shape()
        );
        let lead: Vec<usize> = self.shape()[..self.ndim() - 1].to_vec();
        let x2 = self.reshape(&[self.numel() / inf, inf]);
        let y = x2.matmul_t(weight);
        let y = match bias {
            Some(b) => &y + b,
            None => y,
        };
        let mut shape = lead;
        shape.push(weight.shape()[0]);
        y.reshape(&shape)
    }

    /// `self · other^T` for 2-D tensors, without materialising the transpose.
    pub fn matmul_t(&self, other: &Tensor) -> Tensor {
        assert!(
            self.ndim() == 2 && other.ndim() == 2 && self.shape()[1] == other.shape()[1],
            "matmul_t: shapes {:?} and {:?}^T do not fit",
            self.shape(),
            other.shape()
        );
        let out = self
            .storage()
            .matmul("matmul_t", false, other.storage(), true);
        Tensor::from_op(
            out,
            &[self, other],
            "matmul_t",
            |inp: &[Tensor], _: &Tensor, g: &Tensor| {
                let (a, b) = (&inp[0], &inp[1]);
                // C = A B^T: dA = G B ; dB = G^T A.
                let ga = a
                    .is_tracked()
                    .then(|| mm("matmul_t_backward", g, false, b, false));
                let gb = b
                    .is_tracked()
                    .then(|| mm("matmul_t_backward", g, true, a, false));
                vec![ga, gb]
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{gradcheck, rand_f64};

    #[test]
    fn matmul_forward_small() {
        let a = crate::Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2]);
        let b = crate::Tensor::from_vec(vec![5.0f32, 6.0, 7.0, 8.0], &[2, 2]);
        assert_eq!(a.matmul(&b).to_vec::<f32>(), vec![19.0, 22.0, 43.0, 50.0]);
    }

    #[test]
    fn gradcheck_matmul_2d_batched_and_shared() {
        gradcheck(
            |x| x[0].matmul(&x[1]),
            &[rand_f64(&[3, 4], 1), rand_f64(&[4, 5], 2)],
        )
        .unwrap();
        gradcheck(
            |x| x[0].matmul(&x[1]),
            &[rand_f64(&[2, 3, 4], 3), rand_f64(&[2, 4, 5], 4)],
        )
        .unwrap();
        gradcheck(
            |x| x[0].matmul(&x[1]),
            &[rand_f64(&[2, 3, 4], 5), rand_f64(&[4, 5], 6)],
        )
        .unwrap();
        // matrix-vector shapes take the GEMV path
        gradcheck(
            |x| x[0].matmul(&x[1]),
            &[rand_f64(&[1, 7], 7), rand_f64(&[7, 3], 8)],
        )
        .unwrap();
        gradcheck(
            |x| x[0].matmul(&x[1]),
            &[rand_f64(&[3, 7], 9), rand_f64(&[7, 1], 10)],
        )
        .unwrap();
    }

    #[test]
    fn gradcheck_linear_with_and_without_bias() {
        let x = rand_f64(&[2, 3, 4], 11);
        let w = rand_f64(&[5, 4], 12);
        let b = rand_f64(&[5], 13);
        gradcheck(
            |t| t[0].linear(&t[1], Some(&t[2])),
            &[x.clone(), w.clone(), b],
        )
        .unwrap();
        gradcheck(|t| t[0].linear(&t[1], None), &[x, w]).unwrap();
    }

    #[test]
    #[should_panic(expected = "do not fit")]
    fn matmul_mismatch_names_both_shapes() {
        let _ = rand_f64(&[2, 3], 1).matmul(&rand_f64(&[4, 2], 2));
    }
}
