//! Indexing kernels on the GPU: `narrow`/`select` are strided copies, `concat` copies
//! blocks (through a permute when the axis is not the outermost one), `pad` concatenates
//! zeros, and `index_select`/`gather` gather and scatter-add through flat `i32` indices.

use super::{CudaStorage, check, gather_flat, scatter_add_flat, wrap};
use ops_cuda::CudaBuffer;

/// `x` sliced to `start..start + len` along `ax`.
pub fn narrow(x: &CudaStorage, ax: usize, start: usize, len: usize) -> CudaStorage {
    let strides = ops_cuda::shape::contiguous_strides(&x.shape);
    let mut shape = x.shape.clone();
    shape[ax] = len;
    super::shape::strided("narrow", x, start * strides[ax], &shape, &strides)
}

/// Joins same-rank storages along `ax` (shapes checked by the caller).
pub fn concat(parts: &[&CudaStorage], ax: usize) -> CudaStorage {
    let dev = parts[0].device();
    let first = &parts[0].shape;
    let outer: usize = first[..ax].iter().product();
    let total: usize = parts.iter().map(|t| t.shape[ax]).sum();
    let mut out_shape = first.clone();
    out_shape[ax] = total;
    if outer <= 1 {
        let n: usize = out_shape.iter().product();
        let mut out = check("concat", CudaBuffer::uninit(dev, n));
        let mut off = 0;
        for t in parts {
            check("concat", out.copy_within_from(off, &t.buf, 0, t.numel()));
            off += t.numel();
        }
        return wrap(out, &out_shape);
    }
    // Bring `ax` to the front, join there, and move it back.
    let mut perm: Vec<usize> = vec![ax];
    perm.extend((0..first.len()).filter(|&d| d != ax));
    let moved: Vec<CudaStorage> = parts
        .iter()
        .map(|t| super::shape::permute(t, &perm))
        .collect();
    let refs: Vec<&CudaStorage> = moved.iter().collect();
    let joined = concat(&refs, 0);
    let mut inverse = vec![0; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inverse[p] = i;
    }
    super::shape::permute(&joined, &inverse)
}

/// Zero padding: `pads[d] = (before, after)`.
pub fn pad(x: &CudaStorage, pads: &[(usize, usize)]) -> CudaStorage {
    let dev = x.device().clone();
    let mut cur = x.clone();
    for (d, &(b, a)) in pads.iter().enumerate() {
        if b == 0 && a == 0 {
            continue;
        }
        let zeros = |cur: &CudaStorage, n: usize| {
            let mut s = cur.shape.clone();
            s[d] = n;
            CudaStorage::full(&dev, &s, 0.0)
        };
        let (before, after) = (zeros(&cur, b), zeros(&cur, a));
        // Empty pieces are left out (the kernels need no zero-size launches).
        let refs: Vec<&CudaStorage> = [&before, &cur, &after]
            .into_iter()
            .filter(|t| t.numel() > 0)
            .collect();
        cur = if refs.is_empty() {
            zeros(&cur, b + cur.shape[d] + a)
        } else {
            concat(&refs, d)
        };
    }
    cur
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
pub fn gather(op: &str, src: &CudaStorage, positions: &[usize], shape: &[usize]) -> CudaStorage {
    gather_flat(op, src, positions, shape)
}

/// The adjoint of [`gather`]: `g` scatter-added into zeros of `shape`.
pub fn scatter_add(op: &str, g: &CudaStorage, positions: &[usize], shape: &[usize]) -> CudaStorage {
    scatter_add_flat(op, g, positions, shape)
}

/// Embedding lookup: rows `ids` (uploaded as `idx`) of the `(V, D)` table `w`, shaped
/// `out_shape` (`.., D`).
pub fn embedding_forward(
    w: &CudaStorage,
    idx: &CudaBuffer<i32>,
    out_shape: &[usize],
) -> CudaStorage {
    const OP: &str = "embedding";
    let (v, d) = (w.shape[0], w.shape[1]);
    let out = check(
        OP,
        ops_cuda::kernels::embedding::embedding_forward(w.device(), &w.buf, idx, v, d),
    );
    wrap(out, out_shape)
}

/// The table gradient of [`embedding_forward`]: the rows of `g` scatter-added (atomics)
/// into zeros of `(v, d)`.
pub fn embedding_backward(
    g: &CudaStorage,
    idx: &CudaBuffer<i32>,
    v: usize,
    d: usize,
) -> CudaStorage {
    const OP: &str = "embedding backward";
    let dev = g.device();
    let mut dw = check(OP, CudaBuffer::zeros(dev, v * d));
    check(
        OP,
        ops_cuda::kernels::embedding::embedding_backward(dev, &mut dw, &g.buf, idx, v, d),
    );
    wrap(dw, &[v, d])
}
