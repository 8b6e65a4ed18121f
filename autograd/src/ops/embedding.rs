//! Embedding lookup: rows of a `(V, D)` weight picked by integer ids of any shape.
//!
//! The forward copies rows ([`crate::kernels::cpu::gather_scatter::index_select`]); the
//! backward scatter-adds the output gradient into a dense `(V, D)` gradient
//! ([`crate::kernels::cpu::gather_scatter::index_add`]), so repeated ids accumulate.

use crate::tensor::Tensor;
use std::sync::Arc;

impl Tensor {
    /// Looks up `ids` (row-major, of shape `shape`) in this `(V, D)` weight; the result has
    /// shape `shape ++ [D]`.
    ///
    /// Panics naming the id and `V` when an id is out of range, and naming the counts when
    /// `ids.len()` does not fill `shape`.
    ///
    /// ```
    /// use autograd::Tensor;
    /// let w = Tensor::from_vec(vec![0.0f32, 1.0, 2.0, 3.0, 4.0, 5.0], &[3, 2]);
    /// let e = w.embedding(&[2, 0], &[2]);
    /// assert_eq!(e.to_vec::<f32>(), vec![4.0, 5.0, 0.0, 1.0]);
    /// ```
    pub fn embedding(&self, ids: &[usize], shape: &[usize]) -> Tensor {
        assert_eq!(
            self.ndim(),
            2,
            "embedding: weight must be (V, D), got shape {:?}",
            self.shape()
        );
        assert_eq!(
            ids.len(),
            shape.iter().product::<usize>(),
            "embedding: {} ids do not fill shape {shape:?}",
            ids.len()
        );
        let (v, d) = (self.shape()[0], self.shape()[1]);
        if let Some(&bad) = ids.iter().find(|&&i| i >= v) {
            panic!("embedding: id {bad} out of range for vocabulary size {v}");
        }
        let mut out_shape = shape.to_vec();
        out_shape.push(d);
        let (out, ids) = self.storage().embedding(ids, &out_shape);
        let ids = Arc::new(ids);
        Tensor::from_op(
            out,
            &[self],
            "embedding",
            move |_: &[Tensor], _: &Tensor, g: &Tensor| {
                let dw = g.storage().embedding_backward(&ids, v, d);
                vec![Some(Tensor::from_storage(dw))]
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{gradcheck, rand_f64};

    #[test]
    fn gradcheck_embedding_with_repeated_ids() {
        let w = rand_f64(&[7, 5], 1);
        // id 3 appears three times, id 0 twice: their gradients accumulate.
        let ids = [3usize, 0, 3, 6, 3, 0];
        gradcheck(|x| x[0].embedding(&ids, &[2, 3]), std::slice::from_ref(&w)).unwrap();
        gradcheck(
            |x| x[0].embedding(&ids[..1], &[1]),
            std::slice::from_ref(&w),
        )
        .unwrap();
        // a transposed (non-contiguous) weight
        gradcheck(
            |x| x[0].transpose(0, 1).embedding(&ids, &[6]),
            &[w.transpose(0, 1).contiguous()],
        )
        .unwrap();
    }

    #[test]
    fn embedding_backward_counts_repeats() {
        let w = rand_f64(&[4, 3], 2).requires_grad();
        let g = w.embedding(&[1, 1, 2, 1], &[4]).sum().backward();
        let gw = g.get(&w).unwrap().to_vec::<f64>();
        assert_eq!(
            gw,
            vec![0.0, 0.0, 0.0, 3.0, 3.0, 3.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
        );
    }

    #[test]
    #[should_panic(expected = "id 9 out of range for vocabulary size 4")]
    fn embedding_bad_id_panics() {
        let _ = rand_f64(&[4, 3], 2).embedding(&[0, 9], &[2]);
    }
}
