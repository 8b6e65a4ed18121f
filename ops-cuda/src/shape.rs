//! Host-side shape arithmetic shared by the wrappers (pure functions, tested without a GPU).

use crate::CudaError;

/// The most dimensions the strided kernels take.
pub const MAX_DIMS: usize = 6;

/// Row-major (contiguous) strides of `shape`, in elements.
pub fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1];
    }
    s
}

/// The NumPy broadcast of two shapes (aligned on the right).
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for (i, o) in out.iter_mut().enumerate() {
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        *o = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Some(out)
}

/// Strides for reading a contiguous tensor of shape `src` as if it had shape `out` (which it
/// broadcasts to): 0 on broadcast dimensions.
pub fn broadcast_strides(src: &[usize], out: &[usize]) -> Vec<usize> {
    let cs = contiguous_strides(src);
    let off = out.len() - src.len();
    (0..out.len())
        .map(|i| {
            if i < off || src[i - off] == 1 && out[i] != 1 {
                0
            } else {
                cs[i - off]
            }
        })
        .collect()
}

/// Merges adjacent dimensions that are contiguous in every stride set, and drops size-1
/// dimensions, so fewer dimensions reach the kernel. Returns (shape, strides per set).
pub fn coalesce(shape: &[usize], strides: &[Vec<usize>]) -> (Vec<usize>, Vec<Vec<usize>>) {
    let mut out_shape: Vec<usize> = Vec::new();
    let mut out_strides: Vec<Vec<usize>> = vec![Vec::new(); strides.len()];
    for d in 0..shape.len() {
        if shape[d] == 1 {
            continue;
        }
        let mergeable = !out_shape.is_empty()
            && strides
                .iter()
                .zip(&out_strides)
                .all(|(s, o)| *o.last().unwrap() == s[d] * shape[d]);
        if mergeable {
            *out_shape.last_mut().unwrap() *= shape[d];
            for (s, o) in strides.iter().zip(out_strides.iter_mut()) {
                *o.last_mut().unwrap() = s[d];
            }
        } else {
            out_shape.push(shape[d]);
            for (s, o) in strides.iter().zip(out_strides.iter_mut()) {
                o.push(s[d]);
            }
        }
    }
    if out_shape.is_empty() {
        out_shape.push(1);
        for o in &mut out_strides {
            o.push(0);
        }
    }
    (out_shape, out_strides)
}

/// `usize` to the kernels' `int`, or a shape error naming `op`.
pub fn to_i32(op: &'static str, what: &str, v: usize) -> Result<i32, CudaError> {
    i32::try_from(v).map_err(|_| CudaError::shape(op, format!("{what} = {v} exceeds i32::MAX")))
}

/// Output extent of a convolution / pooling window along one axis:
/// `(input + 2*pad - dilation*(kernel-1) - 1) / stride + 1`, or `None` when the window does
/// not fit or the stride is 0.
pub fn conv_out_dim(
    input: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
    dilation: usize,
) -> Option<usize> {
    let span = dilation.checked_mul(kernel.checked_sub(1)?)? + 1;
    let padded = input + 2 * pad;
    if stride == 0 || padded < span {
        return None;
    }
    Some((padded - span) / stride + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting() {
        assert_eq!(broadcast_shape(&[4, 1, 3], &[5, 1]), Some(vec![4, 5, 3]));
        assert_eq!(broadcast_shape(&[2, 3], &[4]), None);
        assert_eq!(broadcast_strides(&[5, 1], &[4, 5, 3]), vec![0, 1, 0]);
        assert_eq!(broadcast_strides(&[4, 1, 3], &[4, 5, 3]), vec![3, 0, 1]);
        assert_eq!(contiguous_strides(&[2, 3, 4]), vec![12, 4, 1]);
    }

    #[test]
    fn coalescing() {
        let (s, st) = coalesce(&[2, 3, 4], &[vec![12, 4, 1], vec![0, 0, 1]]);
        assert_eq!(s, vec![6, 4]);
        assert_eq!(st, vec![vec![4, 1], vec![0, 1]]);
        let (s, st) = coalesce(&[1, 1], &[vec![1, 1]]);
        assert_eq!((s, st), (vec![1], vec![vec![0]]));
    }

    #[test]
    fn conv_dims() {
        assert_eq!(conv_out_dim(32, 3, 1, 1, 1), Some(32));
        assert_eq!(conv_out_dim(32, 3, 2, 1, 1), Some(16));
        assert_eq!(conv_out_dim(32, 3, 1, 2, 2), Some(32));
        assert_eq!(conv_out_dim(2, 5, 1, 0, 1), None);
        assert_eq!(conv_out_dim(8, 3, 0, 0, 1), None);
    }
}
