//! Reductions: `sum`, `mean` (over everything or over axes), `max_axis` (with the gradient
//! going to the first maximum).

use crate::Storage::Cuda;
use crate::kernels::cuda;
use crate::tensor::Tensor;
use crate::{dispatch, with_array};
use ndarray::{ArrayD, Axis, IxDyn};

impl Tensor {
    /// Sum of all elements (a 0-d tensor).
    pub fn sum(&self) -> Tensor {
        Tensor::from_op(
            self.storage().sum_all(),
            &[self],
            "sum",
            |inp: &[Tensor], _: &Tensor, g: &Tensor| vec![Some(g.broadcast_to(inp[0].shape()))],
        )
    }

    /// Mean of all elements (a 0-d tensor).
    pub fn mean(&self) -> Tensor {
        self.sum().mul_scalar(1.0 / self.numel().max(1) as f64)
    }

    /// Sum over `axes` (negative axes count from the end); `keepdim` keeps them as size 1.
    pub fn sum_axes(&self, axes: &[isize], keepdim: bool) -> Tensor {
        let mut ax: Vec<usize> = axes.iter().map(|&a| self.axis(a)).collect();
        ax.sort_unstable();
        ax.dedup();
        let keep_shape: Vec<usize> = self
            .shape()
            .iter()
            .enumerate()
            .map(|(i, &d)| if ax.contains(&i) { 1 } else { d })
            .collect();
        let out_shape: Vec<usize> = if keepdim {
            keep_shape.clone()
        } else {
            self.shape()
                .iter()
                .enumerate()
                .filter(|(i, _)| !ax.contains(i))
                .map(|(_, &d)| d)
                .collect()
        };
        Tensor::from_op(
            self.storage().sum_axes(&ax, &out_shape),
            &[self],
            "sum_axes",
            move |inp: &[Tensor], _: &Tensor, g: &Tensor| {
                vec![Some(g.reshape(&keep_shape).broadcast_to(inp[0].shape()))]
            },
        )
    }

    /// Mean over `axes`.
    pub fn mean_axes(&self, axes: &[isize], keepdim: bool) -> Tensor {
        let n: usize = axes.iter().map(|&a| self.dim(a)).product();
        self.sum_axes(axes, keepdim)
            .mul_scalar(1.0 / n.max(1) as f64)
    }

    /// Maximum along `axis`; the gradient goes to the first position of the maximum.
    pub fn max_axis(&self, axis: isize, keepdim: bool) -> Tensor {
        let ax = self.axis(axis);
        let mut keep_shape = self.shape().to_vec();
        keep_shape[ax] = 1;
        if crate::ops::device_of("max_axis", &[self]).is_some() {
            let mut out_shape = keep_shape.clone();
            if !keepdim {
                out_shape.remove(ax);
            }
            let (out, idx) = cuda::reduce::max_axis(self.cuda("max_axis"), ax, &out_shape);
            let pos = cuda::reduce::argmax_positions(self.shape(), ax, &idx);
            return Tensor::from_op(
                Cuda(out),
                &[self],
                "max_axis",
                move |inp: &[Tensor], _: &Tensor, g: &Tensor| {
                    const OP: &str = "max_axis backward";
                    let s = inp[0].shape();
                    let dx = cuda::index::scatter_add(OP, g.cuda(OP), &pos, s);
                    vec![Some(Tensor::from_storage(Cuda(dx)))]
                },
            );
        }
        let idx = self.argmax_axis(axis);
        let out = dispatch!(self.storage(), |a| {
            let r = a.map_axis(Axis(ax), |lane| {
                lane.iter().cloned().fold(T::neg_infinity(), T::max)
            });
            if keepdim { r.insert_axis(Axis(ax)) } else { r }
        });
        Tensor::from_op(
            out,
            &[self],
            "max_axis",
            move |inp: &[Tensor], _: &Tensor, g: &Tensor| {
                let g = g.reshape(&keep_shape);
                let gi = dispatch!(g.storage(), |gg| {
                    let mut z = ArrayD::<T>::zeros(IxDyn(inp[0].shape()));
                    for (mut lane, (gv, &i)) in z
                        .lanes_mut(Axis(ax))
                        .into_iter()
                        .zip(gg.iter().zip(idx.iter()))
                    {
                        lane[i] = *gv;
                    }
                    z
                });
                vec![Some(Tensor::from_storage(gi))]
            },
        )
    }

    /// Index of the (first) maximum along `axis`, in the order of the other axes' lanes.
    pub fn argmax_axis(&self, axis: isize) -> Vec<usize> {
        let ax = self.axis(axis);
        if crate::ops::device_of("argmax_axis", &[self]).is_some() {
            let mut out_shape = self.shape().to_vec();
            out_shape.remove(ax);
            return cuda::reduce::max_axis(self.cuda("argmax_axis"), ax, &out_shape).1;
        }
        with_array!(self.storage(), |a| a
            .lanes(Axis(ax))
            .into_iter()
            .map(|lane| {
                let mut best = 0;
                for (i, v) in lane.iter().enumerate() {
                    if *v > lane[best] {
                        best = i;
                    }
                }
                best
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use crate::Tensor;
    use crate::testing::{gradcheck, rand_f64};

    #[test]
    fn reductions_forward() {
        let a = Tensor::from_vec(vec![1.0f32, 5.0, 3.0, 4.0, 2.0, 6.0], &[2, 3]);
        assert_eq!(a.sum().item(), 21.0);
        assert_eq!(a.sum_axes(&[0], false).to_vec::<f32>(), vec![5.0, 7.0, 9.0]);
        assert_eq!(a.sum_axes(&[-1], true).shape(), &[2, 1]);
        assert_eq!(a.mean_axes(&[1], false).to_vec::<f32>(), vec![3.0, 4.0]);
        assert_eq!(a.max_axis(1, false).to_vec::<f32>(), vec![5.0, 6.0]);
        assert_eq!(a.argmax_axis(0), vec![1, 0, 1]);
    }

    #[test]
    fn gradcheck_reductions() {
        let a = rand_f64(&[2, 3, 4], 20);
        gradcheck(|x| x[0].sum(), &[a.clone()]).unwrap();
        gradcheck(|x| x[0].mean(), &[a.clone()]).unwrap();
        gradcheck(|x| x[0].sum_axes(&[0, 2], false), &[a.clone()]).unwrap();
        gradcheck(|x| x[0].mean_axes(&[1], true), &[a.clone()]).unwrap();
        // Distinct values: the maximum is unique, so max is differentiable there.
        gradcheck(|x| x[0].max_axis(1, false), &[a.clone()]).unwrap();
        gradcheck(|x| x[0].max_axis(-1, true), &[a]).unwrap();
    }
}
