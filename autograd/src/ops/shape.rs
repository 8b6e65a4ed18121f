//! Shape ops: `reshape`, `permute`, `transpose`.
//!
//! `permute`/`transpose` keep the permuted strides (no copy); ops that need a row-major
//! layout copy lazily through `as_standard_layout`. This is how non-contiguous inputs
//! reach the other ops, and the gradient-check suite exercises it.

use crate::tensor::Tensor;

impl Tensor {
    /// Same elements in row-major order, new shape (one dimension may be `usize::MAX`
    /// meaning "whatever is left"). Panics naming both shapes when the counts differ.
    pub fn reshape(&self, shape: &[usize]) -> Tensor {
        let mut shape = shape.to_vec();
        if let Some(pos) = shape.iter().position(|&d| d == usize::MAX) {
            let rest: usize = shape.iter().filter(|&&d| d != usize::MAX).product();
            shape[pos] = self.numel() / rest.max(1);
        }
        assert_eq!(
            shape.iter().product::<usize>(),
            self.numel(),
            "reshape: cannot view shape {:?} as {:?}",
            self.shape(),
            shape
        );
        if shape == self.shape() {
            return self.clone();
        }
        Tensor::from_op(
            self.storage().reshape(&shape),
            &[self],
            "reshape",
            |inp: &[Tensor], _: &Tensor, g: &Tensor| vec![Some(g.reshape(inp[0].shape()))],
        )
    }

    /// Reorders the axes: output axis `i` is input axis `perm[i]`.
    pub fn permute(&self, perm: &[usize]) -> Tensor {
        let mut seen = perm.to_vec();
        seen.sort_unstable();
        assert!(
            perm.len() == self.ndim() && seen.iter().enumerate().all(|(i, &p)| i == p),
            "permute: {perm:?} is not a permutation of the axes of shape {:?}",
            self.shape()
        );
        let out = self.storage().permute(perm);
        let mut inverse = vec![0; perm.len()];
        for (i, &pi) in perm.iter().enumerate() {
            inverse[pi] = i;
        }
        Tensor::from_op(
            out,
            &[self],
            "permute",
            move |_: &[Tensor], _: &Tensor, g: &Tensor| vec![Some(g.permute(&inverse))],
        )
    }

    /// Swaps two axes (negative axes count from the end).
    pub fn transpose(&self, a: isize, b: isize) -> Tensor {
        let (a, b) = (self.axis(a), self.axis(b));
        let mut perm: Vec<usize> = (0..self.ndim()).collect();
        perm.swap(a, b);
        self.permute(&perm)
    }

    /// A copy in row-major layout (differentiable identity).
    pub fn contiguous(&self) -> Tensor {
        Tensor::from_op(
            self.storage().contiguous(),
            &[self],
            "contiguous",
            |_: &[Tensor], _: &Tensor, g: &Tensor| vec![Some(g.clone())],
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::Tensor;
    use crate::testing::{gradcheck, rand_f64};

    #[test]
    fn permute_and_reshape_forward() {
        let a = Tensor::from_vec((0..6).map(|v| v as f32).collect(), &[2, 3]);
        let t = a.transpose(0, 1);
        assert_eq!(t.shape(), &[3, 2]);
        assert_eq!(t.to_vec::<f32>(), vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
        assert_eq!(
            t.reshape(&[6]).to_vec::<f32>(),
            vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
        );
        assert_eq!(a.reshape(&[usize::MAX, 2]).shape(), &[3, 2]);
    }

    #[test]
    #[should_panic(expected = "cannot view shape [2, 3] as [4]")]
    fn reshape_mismatch_names_both() {
        let _ = Tensor::zeros(&[2, 3], crate::DType::F32).reshape(&[4]);
    }

    #[test]
    fn gradcheck_shape_ops_and_non_contiguous_inputs() {
        let a = rand_f64(&[2, 3, 4], 30);
        gradcheck(|x| x[0].permute(&[2, 0, 1]).reshape(&[4, 6]), &[a.clone()]).unwrap();
        // A permuted (non-contiguous) tensor flowing into arithmetic and matmul.
        let b = rand_f64(&[5, 2], 31);
        gradcheck(
            |x| x[0].transpose(0, 2).matmul(&x[1].transpose(0, 1)),
            &[a.clone(), b],
        )
        .unwrap();
        gradcheck(
            |x| {
                x[0].transpose(1, 2)
                    .mul(&x[0].transpose(1, 2).exp())
                    .contiguous()
            },
            &[a],
        )
        .unwrap();
    }
}
