//! Reductions: `sum`, `mean` (over everything or over axes), `max_axis` (with the gradient
//! going to the first maximum).

use crate::tensor::Tensor;

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
        let (out, idx) = self.storage().max_axis(ax, keepdim);
        Tensor::from_op(
            out,
            &[self],
            "max_axis",
            move |inp: &[Tensor], _: &Tensor, g: &Tensor| {
                let g = g.reshape(&keep_shape);
                let gi = g.storage().max_axis_backward(inp[0].shape(), ax, &idx);
                vec![Some(Tensor::from_storage(gi))]
            },
        )
    }

    /// Index of the (first) maximum along `axis`, in the order of the other axes' lanes.
    pub fn argmax_axis(&self, axis: isize) -> Vec<usize> {
        self.storage().argmax_axis(self.axis(axis))
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
