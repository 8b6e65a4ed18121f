//! 2-D pooling on NCHW tensors: [`Tensor::max_pool2d`], [`Tensor::avg_pool2d`] (padding
//! excluded from the divisor, PyTorch's `count_include_pad=False`, as NAO/NASNet use it) and
//! [`Tensor::global_avg_pool`]. Kernels in [`crate::kernels::cpu::pool`].

use crate::kernels::cpu::pool::Pool2dParams;
use crate::tensor::Tensor;
use std::sync::Arc;

impl Tensor {
    /// Max pool over `kernel` windows (`(kh, kw)`) with `stride` and implicit `padding`
    /// (padding never wins; at most half the window). The gradient goes to the first
    /// maximum of each window (saved argmax indices).
    ///
    /// ```
    /// use autograd::Tensor;
    /// let x = Tensor::from_vec((0..16).map(|v| v as f32).collect(), &[1, 1, 4, 4]);
    /// let y = x.max_pool2d((2, 2), (2, 2), (0, 0));
    /// assert_eq!(y.to_vec::<f32>(), vec![5.0, 7.0, 13.0, 15.0]);
    /// ```
    pub fn max_pool2d(
        &self,
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
    ) -> Tensor {
        let p = Pool2dParams {
            kernel,
            stride,
            padding,
        };
        p.out_hw("max_pool2d", self.shape());
        let (out, arg) = self.storage().max_pool2d(&p);
        let arg = Arc::new(arg);
        Tensor::from_op(
            out,
            &[self],
            "max_pool2d",
            move |inp: &[Tensor], _: &Tensor, g: &Tensor| {
                let dx = g.storage().max_pool2d_backward(&arg, inp[0].shape(), &p);
                vec![Some(Tensor::from_storage(dx))]
            },
        )
    }

    /// Average pool over `kernel` windows with `stride` and implicit zero `padding`; each
    /// window's sum is divided by the number of real (non-padding) elements in it
    /// (`count_include_pad=False`).
    ///
    /// ```
    /// use autograd::Tensor;
    /// let x = Tensor::from_vec((0..9).map(|v| v as f64).collect(), &[1, 1, 3, 3]);
    /// let y = x.avg_pool2d((3, 3), (1, 1), (1, 1));
    /// // Top-left window covers x[0..2, 0..2] = {0, 1, 3, 4}: mean 2.
    /// assert_eq!(y.to_vec::<f64>()[0], 2.0);
    /// ```
    pub fn avg_pool2d(
        &self,
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
    ) -> Tensor {
        let p = Pool2dParams {
            kernel,
            stride,
            padding,
        };
        p.out_hw("avg_pool2d", self.shape());
        Tensor::from_op(
            self.storage().avg_pool2d(&p),
            &[self],
            "avg_pool2d",
            move |inp: &[Tensor], _: &Tensor, g: &Tensor| {
                let dx = g.storage().avg_pool2d_backward(inp[0].shape(), &p);
                vec![Some(Tensor::from_storage(dx))]
            },
        )
    }

    /// Global average pool: `(N, C, H, W) -> (N, C)`, the mean of every plane.
    pub fn global_avg_pool(&self) -> Tensor {
        assert!(
            self.ndim() == 4,
            "global_avg_pool: input {:?} is not 4-d (N, C, H, W)",
            self.shape()
        );
        Tensor::from_op(
            self.storage().global_avg_pool(),
            &[self],
            "global_avg_pool",
            |inp: &[Tensor], _: &Tensor, g: &Tensor| {
                let dx = g.storage().global_avg_pool_backward(inp[0].shape());
                vec![Some(Tensor::from_storage(dx))]
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::Tensor;
    use crate::testing::{assert_close, gradcheck, rand_f64};

    /// A tensor of distinct values (a shuffled arithmetic sequence, gaps of 0.01), so no
    /// pooling window has a tie: max pool is differentiable there and a 1e-6 central
    /// difference never crosses a kink (the closest two values differ by 1e-2 >> 2e-6).
    fn distinct(shape: &[usize], seed: u64) -> Tensor {
        let n: usize = shape.iter().product();
        let r = rand_f64(&[n], seed).to_vec::<f64>();
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| r[a].partial_cmp(&r[b]).unwrap());
        let mut v = vec![0.0; n];
        for (rank, &i) in order.iter().enumerate() {
            v[i] = rank as f64 * 0.01 - 0.5;
        }
        Tensor::from_vec(v, shape)
    }

    #[test]
    fn max_pool_forward_and_padding() {
        let x = Tensor::from_vec((0..16).map(|v| -(v as f64)).collect(), &[1, 1, 4, 4]);
        // 3x3 stride 1 pad 1: padding never wins even when all values are negative.
        let y = x.max_pool2d((3, 3), (1, 1), (1, 1));
        assert_eq!(y.shape(), &[1, 1, 4, 4]);
        assert_eq!(y.to_vec::<f64>()[0], 0.0);
        assert_eq!(y.to_vec::<f64>()[15], -10.0);
    }

    #[test]
    fn gradcheck_max_pool() {
        // Distinct values (see `distinct`) keep every window away from a tie.
        let x = distinct(&[2, 3, 7, 6], 1);
        gradcheck(
            |t| t[0].max_pool2d((3, 3), (1, 1), (1, 1)),
            std::slice::from_ref(&x),
        )
        .unwrap();
        gradcheck(
            |t| t[0].max_pool2d((3, 3), (2, 2), (1, 1)),
            std::slice::from_ref(&x),
        )
        .unwrap();
        gradcheck(
            |t| t[0].max_pool2d((2, 3), (2, 1), (0, 1)),
            std::slice::from_ref(&x),
        )
        .unwrap();
        // Non-contiguous input: NHWC permuted to NCHW.
        gradcheck(
            |t| {
                t[0].permute(&[0, 3, 1, 2])
                    .max_pool2d((3, 3), (2, 2), (1, 1))
            },
            &[distinct(&[2, 5, 6, 3], 2)],
        )
        .unwrap();
    }

    #[test]
    fn avg_pool_excludes_padding_hand_computed_corner() {
        let x = Tensor::from_vec((1..=20).map(|v| v as f64).collect(), &[1, 1, 4, 5]);
        let y = x.avg_pool2d((3, 3), (1, 1), (1, 1));
        assert_eq!(y.shape(), &[1, 1, 4, 5]);
        let v = y.to_vec::<f64>();
        // Top-left window: x[0..2, 0..2] = {1, 2, 6, 7}, 4 real elements: mean 4.
        assert_eq!(v[0], 4.0);
        // Top edge, column 1: {1, 2, 3, 6, 7, 8}: mean 4.5.
        assert_eq!(v[1], 4.5);
        // Interior (1, 1): {1, 2, 3, 6, 7, 8, 11, 12, 13}: mean 7.
        assert_eq!(v[6], 7.0);
        // Bottom-right corner: {14, 15, 19, 20}: mean 17.
        assert_eq!(v[19], 17.0);
        // Stride 2, window 3, pad 1 on a 5-wide row: (1, 1) covers rows 1..4, cols 1..4.
        let y2 = x.avg_pool2d((3, 3), (2, 2), (1, 1));
        assert_eq!(y2.shape(), &[1, 1, 2, 3]);
        assert_close(
            &y2,
            &Tensor::from_vec(vec![4.0, 5.5, 7.0, 11.5, 13.0, 14.5], &[1, 1, 2, 3]),
            1e-12,
            0.0,
        );
    }

    #[test]
    fn gradcheck_avg_pool_with_padding() {
        let x = rand_f64(&[2, 3, 5, 7], 3);
        gradcheck(
            |t| t[0].avg_pool2d((3, 3), (1, 1), (1, 1)),
            std::slice::from_ref(&x),
        )
        .unwrap();
        gradcheck(
            |t| t[0].avg_pool2d((3, 3), (2, 2), (1, 1)),
            std::slice::from_ref(&x),
        )
        .unwrap();
        gradcheck(
            |t| t[0].avg_pool2d((2, 3), (2, 1), (1, 0)),
            std::slice::from_ref(&x),
        )
        .unwrap();
        gradcheck(
            |t| {
                t[0].permute(&[0, 3, 1, 2])
                    .avg_pool2d((3, 3), (1, 1), (1, 1))
            },
            &[rand_f64(&[2, 4, 5, 3], 4)],
        )
        .unwrap();
    }

    #[test]
    fn gradcheck_global_avg_pool() {
        let x = rand_f64(&[2, 3, 5, 4], 5);
        let y = x.global_avg_pool();
        assert_eq!(y.shape(), &[2, 3]);
        assert_close(&y, &x.mean_axes(&[2, 3], false), 1e-12, 1e-12);
        gradcheck(|t| t[0].global_avg_pool(), &[x]).unwrap();
        gradcheck(
            |t| t[0].permute(&[0, 3, 1, 2]).global_avg_pool(),
            &[rand_f64(&[2, 3, 5, 4], 6)],
        )
        .unwrap();
    }

    #[test]
    #[should_panic(expected = "padding (2, 2) exceeds half the window (3, 3) (input [1, 1, 4, 4])")]
    fn pool_padding_too_large_panics() {
        let _ = Tensor::zeros(&[1, 1, 4, 4], crate::DType::F32).max_pool2d((3, 3), (1, 1), (2, 2));
    }
}
