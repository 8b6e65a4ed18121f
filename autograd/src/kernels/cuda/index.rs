//! Indexing ops on the GPU: `narrow`/`select` are strided copies, `concat` copies blocks
//! (through a permute when the axis is not the outermost one), `pad` concatenates zeros,
//! and `index_select`/`gather` gather and scatter-add through flat `i32` indices.

use super::{buf, check, gather_flat, scatter_add_flat, wrap};
use crate::storage::Storage;
use crate::tensor::Tensor;
use ops_cuda::{CudaBuffer, CudaDevice};

/// `x` sliced to `start..start + len` along `ax`; with `drop_axis` the axis (of length
/// one) is removed (`select`).
pub fn narrow(dev: &CudaDevice, x: &Tensor, ax: usize, start: usize, len: usize) -> Storage {
    let strides = ops_cuda::shape::contiguous_strides(x.shape());
    let mut shape = x.shape().to_vec();
    shape[ax] = len;
    super::shape::strided(dev, "narrow", x, start * strides[ax], &shape, &strides)
}

/// Joins same-rank tensors along `ax` (shapes checked by the caller).
pub fn concat(dev: &CudaDevice, tensors: &[&Tensor], ax: usize) -> Storage {
    let first = tensors[0].shape();
    let outer: usize = first[..ax].iter().product();
    let total: usize = tensors.iter().map(|t| t.shape()[ax]).sum();
    let mut out_shape = first.to_vec();
    out_shape[ax] = total;
    if outer <= 1 {
        let n: usize = out_shape.iter().product();
        let mut out = check("concat", CudaBuffer::uninit(dev, n));
        let mut off = 0;
        for t in tensors {
            check(
                "concat",
                out.copy_within_from(off, buf("concat", t), 0, t.numel()),
            );
            off += t.numel();
        }
        return wrap(out, &out_shape);
    }
    // Bring `ax` to the front, join there, and move it back.
    let mut perm: Vec<usize> = vec![ax];
    perm.extend((0..first.len()).filter(|&d| d != ax));
    let moved: Vec<Tensor> = tensors
        .iter()
        .map(|t| Tensor::from_storage(super::shape::permute(dev, t, &perm)))
        .collect();
    let refs: Vec<&Tensor> = moved.iter().collect();
    let joined = Tensor::from_storage(concat(dev, &refs, 0));
    let mut inverse = vec![0; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inverse[p] = i;
    }
    super::shape::permute(dev, &joined, &inverse)
}

/// Zero padding: `pads[d] = (before, after)`.
pub fn pad(dev: &CudaDevice, x: &Tensor, pads: &[(usize, usize)]) -> Storage {
    let mut cur = x.clone();
    for (d, &(b, a)) in pads.iter().enumerate() {
        if b == 0 && a == 0 {
            continue;
        }
        let zeros = |n: usize| {
            let mut s = cur.shape().to_vec();
            s[d] = n;
            Tensor::from_storage(super::full(dev, &s, 0.0))
        };
        let (before, after) = (zeros(b), zeros(a));
        // Empty pieces are left out (the kernels need no zero-size launches).
        let refs: Vec<&Tensor> = [&before, &cur, &after]
            .into_iter()
            .filter(|t| t.numel() > 0)
            .collect();
        cur = if refs.is_empty() {
            zeros(b + cur.shape()[d] + a)
        } else {
            Tensor::from_storage(concat(dev, &refs, d))
        };
    }
    cur.storage().clone()
}

/// Flat positions for `index_select` along `ax` of `shape` (`outer, n, inner` split).
pub fn index_select_positions(shape: &[usize], ax: usize, indices: &[usize]) -> Vec<usize> {
    let (outer, n, inner) = split(shape, ax);
    let mut v = Vec::with_capacity(outer * indices.len() * inner);
    for o in 0..outer {
        for &i in indices {
            v.extend((0..inner).map(|j| (o * n + i) * inner + j));
        }
    }
    v
}

/// Flat positions for `gather` along `ax`: `index` is row-major `(outer, k, inner)`.
pub fn gather_positions(shape: &[usize], ax: usize, index: &[usize], k: usize) -> Vec<usize> {
    let (_, n, inner) = split(shape, ax);
    index
        .iter()
        .enumerate()
        .map(|(p, &i)| {
            let (o, j) = (p / (k * inner), p % inner);
            (o * n + i) * inner + j
        })
        .collect()
}

fn split(shape: &[usize], ax: usize) -> (usize, usize, usize) {
    (
        shape[..ax].iter().product(),
        shape[ax],
        shape[ax + 1..].iter().product(),
    )
}

/// `src` gathered at flat `positions`, shaped `shape`.
pub fn gather(
    dev: &CudaDevice,
    op: &str,
    src: &Tensor,
    positions: &[usize],
    shape: &[usize],
) -> Storage {
    gather_flat(dev, op, src, positions, shape)
}

/// The adjoint of [`gather`]: `g` scatter-added into zeros of `shape`.
pub fn scatter_add(
    dev: &CudaDevice,
    op: &str,
    g: &Tensor,
    positions: &[usize],
    shape: &[usize],
) -> Tensor {
    Tensor::from_storage(scatter_add_flat(dev, op, g, positions, shape))
}

/// Embedding lookup: rows `ids` of the `(V, D)` table `w`, shaped `out_shape` (`.., D`);
/// the backward scatter-adds the rows of the gradient (atomics).
pub fn embedding(dev: &CudaDevice, w: &Tensor, ids: &[usize], out_shape: &[usize]) -> Tensor {
    const OP: &str = "embedding";
    let (v, d) = (w.shape()[0], w.shape()[1]);
    let idx = std::sync::Arc::new(super::upload_indices(dev, OP, ids));
    let out = check(
        OP,
        ops_cuda::kernels::embedding::embedding_forward(dev, buf(OP, w), &idx, v, d),
    );
    let dv = dev.clone();
    Tensor::from_op(
        wrap(out, out_shape),
        &[w],
        OP,
        move |_: &[Tensor], _: &Tensor, g: &Tensor| {
            const OP: &str = "embedding backward";
            let mut dw = check(OP, CudaBuffer::zeros(&dv, v * d));
            check(
                OP,
                ops_cuda::kernels::embedding::embedding_backward(
                    &dv,
                    &mut dw,
                    buf(OP, g),
                    &idx,
                    v,
                    d,
                ),
            );
            vec![Some(Tensor::from_storage(wrap(dw, &[v, d])))]
        },
    )
}
