//! `l2_normalize(axis, eps)`: `x / max(||x||_2, eps)` along one axis, as one fused op.
//!
//! NAO normalises the encoder LSTM's output at every time step, averages over time and
//! normalises again before the performance predictor. The forward saves each lane's norm;
//! the backward is `(g - y <g, y>) / ||x||` where the norm exceeds `eps`, and `g / eps`
//! where it was clamped (there `y = x / eps` is linear).

use crate::tensor::Tensor;

impl Tensor {
    /// Divides each lane along `axis` by `max(its L2 norm, eps)` (like PyTorch's
    /// `F.normalize(x, p=2, dim=axis, eps=eps)`).
    pub fn l2_normalize(&self, axis: isize, eps: f64) -> Tensor {
        assert!(eps > 0.0, "l2_normalize: eps must be positive, got {eps}");
        let ax = self.axis(axis);
        let Some((out, norms)) = self.storage().l2_normalize(ax, eps) else {
            // x / max(||x||, eps), composed (the GPU path).
            let norm = self.square().sum_axes(&[ax as isize], true).sqrt();
            let norm = norm.maximum(&norm.full_like(eps));
            return self.div(&norm);
        };
        Tensor::from_op(
            out,
            &[self],
            "l2_normalize",
            move |_: &[Tensor], out: &Tensor, g: &Tensor| {
                let dx = g
                    .storage()
                    .l2_normalize_backward(out.storage(), &norms, ax, eps);
                vec![Some(Tensor::from_storage(dx))]
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::Tensor;
    use crate::testing::{assert_close, gradcheck, rand_f64};

    #[test]
    fn l2_normalize_forward_unit_norm_and_clamp() {
        let x = rand_f64(&[3, 4, 5], 1);
        let y = x.l2_normalize(1, 1e-12);
        let n = y.square().sum_axes(&[1], false);
        assert_close(&n, &Tensor::ones(&[3, 5], crate::DType::F64), 1e-12, 0.0);
        let small = Tensor::from_vec(vec![3e-3f64, 4e-3], &[1, 2]);
        assert_close(
            &small.l2_normalize(-1, 1.0),
            &Tensor::from_vec(vec![3e-3f64, 4e-3], &[1, 2]),
            1e-15,
            0.0,
        );
    }

    #[test]
    fn gradcheck_l2_normalize_axes_and_clamped_lanes() {
        let x = rand_f64(&[3, 5, 7], 2);
        gradcheck(|t| t[0].l2_normalize(-1, 1e-12), std::slice::from_ref(&x)).unwrap();
        gradcheck(|t| t[0].l2_normalize(1, 1e-12), std::slice::from_ref(&x)).unwrap();
        gradcheck(
            |t| t[0].transpose(0, 2).l2_normalize(0, 1e-12),
            std::slice::from_ref(&x),
        )
        .unwrap();
        // Lanes whose norm is below eps take the linear branch (norms of these lanes are
        // well below 10, well above it for the scaled-up second row).
        let mixed = Tensor::concat(
            &[
                &x.narrow(0, 0, 1).mul_scalar(0.1),
                &x.narrow(0, 1, 2).mul_scalar(10.0),
            ],
            0,
        );
        gradcheck(|t| t[0].l2_normalize(-1, 1.5), &[mixed]).unwrap();
    }
}
