//! Embedding lookup: rows of a `(V, D)` weight picked by integer ids of any shape.
//!
//! The forward copies rows ([`crate::kernels::cpu::gather_scatter::index_select`]); the
//! backward scatter-adds the output gradient into a dense `(V, D)` gradient
//! ([`crate::kernels::cpu::gather_scatter::index_add`]), so repeated ids accumulate.

use crate::dispatch;
use crate::kernels::cpu::gather_scatter;
use crate::kernels::cpu::layout::standard;
use crate::tensor::Tensor;
use ndarray::{ArrayD, IxDyn};

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
        if let Some(dv) = crate::ops::device_of("embedding", &[self]) {
            return embedding_gpu(&dv, self, ids, &out_shape);
        }
        let ids = ids.to_vec();
        let out = dispatch!(self.storage(), |a| {
            let w = standard(a);
            let mut o = vec![T::zero(); ids.len() * d];
            gather_scatter::index_select(&w, v, d, &ids, &mut o);
            ArrayD::from_shape_vec(IxDyn(&out_shape), o).unwrap()
        });
        Tensor::from_op(
            out,
            &[self],
            "embedding",
            move |_: &[Tensor], _: &Tensor, g: &Tensor| {
                let dw = dispatch!(g.storage(), |gg| {
                    let gs = standard(gg);
                    let mut dst = vec![T::zero(); v * d];
                    gather_scatter::index_add(&gs, v, d, &ids, &mut dst);
                    ArrayD::from_shape_vec(IxDyn(&[v, d]), dst).unwrap()
                });
                vec![Some(Tensor::from_storage(dw))]
            },
        )
    }
}

/// [`Tensor::embedding`] on a GPU: a gather of rows, and a scatter-add (atomics) of the
/// gradient's rows.
fn embedding_gpu(
    dev: &ops_cuda::CudaDevice,
    w: &Tensor,
    ids: &[usize],
    out_shape: &[usize],
) -> Tensor {
    use crate::kernels::cuda::{self, index};
    const OP: &str = "embedding";
    let (v, d) = (w.shape()[0], w.shape()[1]);
    let idx = std::sync::Arc::new(cuda::upload_indices(dev, OP, ids));
    let out = index::embedding_forward(w.cuda(OP), &idx, out_shape);
    Tensor::from_op(
        crate::Storage::Cuda(out),
        &[w],
        OP,
        move |_: &[Tensor], _: &Tensor, g: &Tensor| {
            let dw = index::embedding_backward(g.cuda("embedding backward"), &idx, v, d);
            vec![Some(Tensor::from_storage(crate::Storage::Cuda(dw)))]
        },
    )
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
