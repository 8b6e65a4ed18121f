//! `l2_normalize(axis, eps)`: `x / max(||x||_2, eps)` along one axis, as one fused op.
//!
//! NAO normalises the encoder LSTM's output at every time step, averages over time and
//! normalises again before the performance predictor. The forward saves each lane's norm;
//! the backward is `(g - y <g, y>) / ||x||` where the norm exceeds `eps`, and `g / eps`
//! where it was clamped (there `y = x / eps` is linear).

use crate::dispatch;
use crate::dtype::Float;
use crate::kernels::cpu::lanes::{self, split_at_axis};
use crate::kernels::cpu::layout::standard;
use crate::tensor::Tensor;
use ndarray::{ArrayD, IxDyn};

impl Tensor {
    /// Divides each lane along `axis` by `max(its L2 norm, eps)` (like PyTorch's
    /// `F.normalize(x, p=2, dim=axis, eps=eps)`).
    pub fn l2_normalize(&self, axis: isize, eps: f64) -> Tensor {
        assert!(eps > 0.0, "l2_normalize: eps must be positive, got {eps}");
        let ax = self.axis(axis);
        if crate::ops::device_of("l2_normalize", &[self]).is_some() {
            // x / max(||x||, eps), composed (the GPU path).
            let norm = self.square().sum_axes(&[ax as isize], true).sqrt();
            let norm = norm.maximum(&norm.full_like(eps));
            return self.div(&norm);
        }
        let shape = self.shape().to_vec();
        let (_, n, inner) = split_at_axis(&shape, ax);
        let norms;
        let out = dispatch!(self.storage(), |a| {
            let xs = standard(a);
            let mut y = vec![T::zero(); xs.len()];
            let nv = if inner == 1 && n > 0 {
                last_axis_forward(&xs, &mut y, n, T::of(eps))
            } else {
                lanes::l2_normalize_forward(&xs, &mut y, n, inner, T::of(eps))
            };
            let len = nv.len();
            norms = Some(Tensor::from_vec(nv, &[len]));
            ArrayD::from_shape_vec(IxDyn(&shape), y).unwrap()
        });
        let norms = norms.unwrap();
        Tensor::from_op(
            out,
            &[self],
            "l2_normalize",
            move |_: &[Tensor], out: &Tensor, g: &Tensor| {
                let d = crate::dispatch3!(
                    "l2_normalize_backward",
                    out.storage(),
                    norms.storage(),
                    g.storage(),
                    |y, nr, gg| {
                        let ys = standard(y);
                        let gs = standard(gg);
                        let ns = standard(nr);
                        let mut dx = vec![T::zero(); ys.len()];
                        if inner == 1 && n > 0 {
                            last_axis_backward(&ys, &ns, &gs, &mut dx, n, T::of(eps));
                        } else {
                            lanes::l2_normalize_backward(
                                &ys,
                                &ns,
                                &gs,
                                &mut dx,
                                n,
                                inner,
                                T::of(eps),
                            );
                        }
                        ArrayD::from_shape_vec(IxDyn(y.shape()), dx).unwrap()
                    }
                );
                vec![Some(Tensor::from_storage(d))]
            },
        )
    }
}

/// [`lanes::l2_normalize_forward`] for contiguous lanes of length `n` (the last axis), one
/// lane at a time: same sums in the same order, without the per-lane scratch vectors and
/// tiny parallel tasks of the strided version.
fn last_axis_forward<T: Float>(x: &[T], y: &mut [T], n: usize, eps: T) -> Vec<T> {
    let mut norms = Vec::with_capacity(x.len() / n);
    for (xr, yr) in x.chunks(n).zip(y.chunks_mut(n)) {
        let mut s = T::zero();
        for &v in xr {
            s += v * v;
        }
        let s = s.sqrt();
        norms.push(s);
        let r = T::one() / s.max(eps);
        yr.iter_mut().zip(xr).for_each(|(yv, &xv)| *yv = xv * r);
    }
    norms
}

/// [`lanes::l2_normalize_backward`] for contiguous lanes of length `n`.
fn last_axis_backward<T: Float>(y: &[T], norms: &[T], g: &[T], dx: &mut [T], n: usize, eps: T) {
    for (((yr, gr), dr), &nv) in y
        .chunks(n)
        .zip(g.chunks(n))
        .zip(dx.chunks_mut(n))
        .zip(norms)
    {
        let mut s = T::zero();
        for (&gv, &yv) in gr.iter().zip(yr) {
            s += gv * yv;
        }
        for ((dv, &yv), &gv) in dr.iter_mut().zip(yr).zip(gr) {
            *dv = if nv > eps {
                (gv - yv * s) / nv
            } else {
                gv / eps
            };
        }
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

    /// The contiguous last-axis path gives the bits of the general lane kernel.
    #[test]
    fn last_axis_path_matches_the_lane_kernel_bitwise() {
        use crate::kernels::cpu::lanes;
        let x = rand_f64(&[40_000], 3).to_vec::<f32>();
        let n = 96.min(x.len());
        let x = &x[..x.len() / n * n];
        let (mut y1, mut y2) = (vec![0f32; x.len()], vec![0f32; x.len()]);
        let n1 = super::last_axis_forward(x, &mut y1, n, 1e-6);
        let n2 = lanes::l2_normalize_forward(x, &mut y2, n, 1, 1e-6);
        assert_eq!((&y1, &n1), (&y2, &n2));
        let g: Vec<f32> = x.iter().map(|v| v * 0.3 - 0.1).collect();
        let (mut d1, mut d2) = (vec![0f32; x.len()], vec![0f32; x.len()]);
        super::last_axis_backward(&y1, &n1, &g, &mut d1, n, 1e-6);
        lanes::l2_normalize_backward(&y2, &n2, &g, &mut d2, n, 1, 1e-6);
        assert_eq!(d1, d2);
    }
}
