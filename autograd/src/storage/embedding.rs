//! The embedding family, dispatched by device and dtype: rows of a `(V, D)` table picked by
//! ids, and the scatter-add of the rows' gradient back into a `(V, D)` gradient. The CPU
//! kernels are `kernels::cpu::gather_scatter`, the GPU ones `kernels::cuda::index`.

use super::Storage;
use crate::kernels::cpu::gather_scatter;
use crate::kernels::cpu::layout::standard;
use crate::kernels::cuda::{self, index as gpu};
use ndarray::{ArrayD, IxDyn};
use ops_cuda::CudaBuffer;

/// The ids of an embedding lookup, kept by the forward for the backward (and, for a GPU
/// table, uploaded once).
#[derive(Debug)]
pub struct EmbeddingIds {
    ids: Vec<usize>,
    on_device: Option<CudaBuffer<i32>>,
}

impl Storage {
    /// Rows `ids` of this `(V, D)` table (each id `< V`, checked by the caller), shaped
    /// `out_shape` (`.., D`), and the ids for [`Storage::embedding_backward`].
    pub fn embedding(&self, ids: &[usize], out_shape: &[usize]) -> (Storage, EmbeddingIds) {
        let (v, d) = (self.shape()[0], self.shape()[1]);
        if let Storage::Cuda(w) = self {
            const OP: &str = "embedding";
            let idx = cuda::upload_indices(w.device(), OP, ids);
            let out = gpu::embedding_forward(w, &idx, out_shape);
            let saved = EmbeddingIds {
                ids: ids.to_vec(),
                on_device: Some(idx),
            };
            return (Storage::Cuda(out), saved);
        }
        let out = dispatch!(self, |a| {
            let w = standard(a);
            let mut o = vec![T::zero(); ids.len() * d];
            gather_scatter::index_select(&w, v, d, ids, &mut o);
            ArrayD::from_shape_vec(IxDyn(out_shape), o).unwrap()
        });
        let saved = EmbeddingIds {
            ids: ids.to_vec(),
            on_device: None,
        };
        (out, saved)
    }

    /// The `(v, d)` table gradient of [`Storage::embedding`] from the output gradient
    /// `self`: its rows scatter-added at `ids` (repeated ids accumulate; on the GPU with
    /// atomics, so the order of summation may vary between runs).
    pub fn embedding_backward(&self, ids: &EmbeddingIds, v: usize, d: usize) -> Storage {
        const OP: &str = "embedding backward";
        if let Storage::Cuda(g) = self {
            let idx = ids
                .on_device
                .as_ref()
                .unwrap_or_else(|| panic!("{OP}: a GPU gradient for a CPU table"));
            return Storage::Cuda(gpu::embedding_backward(g, idx, v, d));
        }
        assert!(
            ids.on_device.is_none(),
            "{OP}: a CPU gradient for a GPU table"
        );
        dispatch!(self, |gg| {
            let gs = standard(gg);
            let mut dst = vec![T::zero(); v * d];
            gather_scatter::index_add(&gs, v, d, &ids.ids, &mut dst);
            ArrayD::from_shape_vec(IxDyn(&[v, d]), dst).unwrap()
        })
    }
}
