//! `softmax` and `log_softmax` along any axis, the fused `cross_entropy` loss, and `mse`.
//!
//! All are numerically stable (the lane maximum is subtracted before `exp`) and run on
//! contiguous memory with the kernels of [`crate::kernels::cpu::lanes`]: a softmax along a
//! middle axis sweeps contiguous rows, it never transposes.
//!
//! `cross_entropy` is ONE op: its forward computes the softmax probabilities once and
//! saves them; its backward is `(softmax - onehot) / N` scaled by the incoming gradient.

use crate::tensor::Tensor;

fn softmax_op(x: &Tensor, axis: isize, log: bool) -> Tensor {
    let ax = x.axis(axis);
    Tensor::from_op(
        x.storage().softmax(ax, log),
        &[x],
        if log { "log_softmax" } else { "softmax" },
        move |_: &[Tensor], out: &Tensor, g: &Tensor| {
            let d = g.storage().softmax_backward(out.storage(), ax, log);
            vec![Some(Tensor::from_storage(d))]
        },
    )
}

impl Tensor {
    /// `exp(x) / sum(exp(x))` along `axis` (negative counts from the end).
    pub fn softmax(&self, axis: isize) -> Tensor {
        softmax_op(self, axis, false)
    }

    /// `x - log(sum(exp(x)))` along `axis`.
    pub fn log_softmax(&self, axis: isize) -> Tensor {
        softmax_op(self, axis, true)
    }

    /// Mean softmax cross-entropy of `logits: (N, C)` against class `labels` (`N` of them,
    /// each `< C`): `-(1/N) sum_n log softmax(logits_n)[labels_n]`, a 0-d tensor.
    ///
    /// Fused: the forward saves the probabilities; the backward is `(p - onehot) / N`.
    /// Panics naming the shapes when `labels.len() != N`, and naming the label and `C` when
    /// a label is out of range.
    pub fn cross_entropy(&self, labels: &[usize]) -> Tensor {
        assert!(
            self.ndim() == 2 && self.shape()[0] == labels.len(),
            "cross_entropy: logits of shape {:?} need (N, C) with N = {} labels",
            self.shape(),
            labels.len()
        );
        let c = self.shape()[1];
        if let Some(&bad) = labels.iter().find(|&&l| l >= c) {
            panic!("cross_entropy: label {bad} out of range for {c} classes");
        }
        let (out, saved) = self.storage().cross_entropy(labels);
        Tensor::from_op(
            out,
            &[self],
            "cross_entropy",
            move |_: &[Tensor], _: &Tensor, g: &Tensor| {
                let d = g.storage().cross_entropy_backward(&saved);
                vec![Some(Tensor::from_storage(d))]
            },
        )
    }

    /// Mean squared error `mean((self - target)^2)`, a 0-d tensor; differentiable in both.
    /// The shapes must be equal (panics naming both).
    pub fn mse(&self, target: &Tensor) -> Tensor {
        assert_eq!(
            self.shape(),
            target.shape(),
            "mse: prediction shape {:?} != target shape {:?}",
            self.shape(),
            target.shape()
        );
        let Some(out) = self.storage().mse(target.storage()) else {
            return self.sub(target).square().mean();
        };
        let n = self.numel().max(1) as f64;
        Tensor::from_op(
            out,
            &[self, target],
            "mse",
            move |inp: &[Tensor], _: &Tensor, g: &Tensor| {
                let scale = 2.0 * g.item() / n;
                let d = inp[0].storage().mse_backward(inp[1].storage(), scale);
                let d = Tensor::from_storage(d);
                let dt = inp[1].is_tracked().then(|| d.neg());
                vec![inp[0].is_tracked().then_some(d), dt]
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::Tensor;
    use crate::testing::{assert_close, gradcheck, rand_f64};

    #[test]
    fn softmax_forward_sums_to_one_and_matches_log_softmax() {
        let x = rand_f64(&[3, 4, 5], 1).mul_scalar(10.0);
        for axis in [0isize, 1, 2] {
            let p = x.softmax(axis);
            let s = p.sum_axes(&[axis], false);
            assert_close(&s, &Tensor::ones(s.shape(), crate::DType::F64), 1e-12, 0.0);
            assert_close(&x.log_softmax(axis).exp(), &p, 1e-12, 1e-12);
        }
        let big = Tensor::from_vec(vec![1000.0f32, 0.0, -1000.0], &[3]);
        assert!(big.softmax(0).all_finite() && big.log_softmax(0).all_finite());
    }

    #[test]
    fn gradcheck_softmax_log_softmax_middle_and_last_axis() {
        let x = rand_f64(&[3, 5, 7], 2).mul_scalar(2.0);
        gradcheck(|t| t[0].softmax(1), std::slice::from_ref(&x)).unwrap();
        gradcheck(|t| t[0].log_softmax(1), std::slice::from_ref(&x)).unwrap();
        gradcheck(|t| t[0].softmax(-1), std::slice::from_ref(&x)).unwrap();
        gradcheck(|t| t[0].log_softmax(0), std::slice::from_ref(&x)).unwrap();
        // non-contiguous input
        gradcheck(|t| t[0].transpose(0, 2).log_softmax(1), &[x]).unwrap();
    }

    #[test]
    fn cross_entropy_matches_log_softmax_pick_and_gradchecks() {
        let x = rand_f64(&[5, 7], 3).mul_scalar(3.0);
        let labels = [0usize, 6, 3, 3, 1];
        let ce = x.cross_entropy(&labels).item();
        let lp = x.log_softmax(1).to_vec::<f64>();
        let want = -labels
            .iter()
            .enumerate()
            .map(|(r, &l)| lp[r * 7 + l])
            .sum::<f64>()
            / 5.0;
        assert!((ce - want).abs() < 1e-12, "{ce} vs {want}");
        gradcheck(|t| t[0].cross_entropy(&labels), std::slice::from_ref(&x)).unwrap();
        gradcheck(
            |t| t[0].transpose(0, 1).cross_entropy(&labels[..]),
            &[x.transpose(0, 1).contiguous()],
        )
        .unwrap();
    }

    #[test]
    fn cross_entropy_is_exact_where_the_probability_underflows() {
        let x = Tensor::from_vec(vec![1000.0f32, -1000.0, 0.0, 0.0], &[2, 2]);
        let ce = x.cross_entropy(&[1, 0]).item();
        assert!(
            (ce - (2000.0 + std::f64::consts::LN_2) / 2.0).abs() < 1e-3,
            "{ce}"
        );
    }

    #[test]
    #[should_panic(expected = "label 7 out of range for 7 classes")]
    fn cross_entropy_bad_label_panics() {
        let _ = rand_f64(&[2, 7], 1).cross_entropy(&[0, 7]);
    }

    #[test]
    fn gradcheck_mse_both_sides() {
        let p = rand_f64(&[3, 5], 4);
        let t = rand_f64(&[3, 5], 5);
        gradcheck(|x| x[0].mse(&x[1]), &[p.clone(), t.clone()]).unwrap();
        gradcheck(
            |x| x[0].transpose(0, 1).mse(&x[1]),
            &[p.transpose(0, 1).contiguous(), t.clone()],
        )
        .unwrap();
        let want = (&p - &t).square().mean().item();
        assert!((p.mse(&t).item() - want).abs() < 1e-14);
    }
}
