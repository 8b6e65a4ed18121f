//! Row-major copies of strided (permuted, sliced, broadcast) arrays.
//!
//! ndarray iterates dynamic-rank arrays (`IxDyn`) element by element through a generic
//! index, which is slow; converting to a fixed rank first lets it use its fast nested
//! loops. Every "make this contiguous" in the crate goes through [`to_row_major`].

use crate::dtype::Float;
use ndarray::{ArrayD, ArrayViewD, Ix1, Ix2, Ix3, Ix4, Ix5, Ix6};

/// The elements of `a` in row-major order.
pub fn to_row_major<T: Float>(a: &ArrayViewD<T>) -> Vec<T> {
    if let Some(s) = a.as_slice() {
        return s.to_vec();
    }
    if let Some(v) = copy_runs(a) {
        return v;
    }
    macro_rules! fixed {
        ($d:ty) => {
            a.view()
                .into_dimensionality::<$d>()
                .unwrap()
                .iter()
                .copied()
                .collect()
        };
    }
    match a.ndim() {
        0 => a.iter().copied().collect(),
        1 => fixed!(Ix1),
        2 => fixed!(Ix2),
        3 => fixed!(Ix3),
        4 => fixed!(Ix4),
        5 => fixed!(Ix5),
        6 => fixed!(Ix6),
        _ => a.iter().copied().collect(),
    }
}

/// Shortest contiguous run worth a slice copy (shorter runs take ndarray's iterator).
const MIN_RUN: usize = 8;

/// Row-major copy of a view whose trailing axes form contiguous runs of at least
/// [`MIN_RUN`] elements (a channel slice of an NCHW tensor, a cropped image): one slice
/// copy per run instead of an element-by-element walk. `None` for other layouts.
fn copy_runs<T: Float>(a: &ArrayViewD<T>) -> Option<Vec<T>> {
    let (shape, strides) = (a.shape(), a.strides());
    let mut run = 1usize;
    let mut k = shape.len();
    while k > 0 && (shape[k - 1] == 1 || strides[k - 1] == run as isize) {
        run *= shape[k - 1];
        k -= 1;
    }
    if a.is_empty() || run < MIN_RUN {
        return None;
    }
    let outer = &shape[..k];
    let mut out = Vec::with_capacity(a.len());
    let mut idx = vec![0usize; k];
    let base = a.as_ptr();
    loop {
        let off: isize = idx.iter().zip(strides).map(|(&i, &s)| i as isize * s).sum();
        // SAFETY: `idx` is a valid index of the outer axes, so `off` is the offset of an
        // element of the view, and the `run` elements after it are the view's contiguous
        // trailing block (strides checked above).
        out.extend_from_slice(unsafe { std::slice::from_raw_parts(base.offset(off), run) });
        let mut d = k;
        loop {
            if d == 0 {
                return Some(out);
            }
            d -= 1;
            idx[d] += 1;
            if idx[d] < outer[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

/// An owned row-major copy of a view (of any layout).
pub fn to_standard<T: Float>(a: ArrayViewD<T>) -> ArrayD<T> {
    ArrayD::from_shape_vec(a.raw_dim(), to_row_major(&a)).unwrap()
}

/// `a` as a standard-layout (row-major, contiguous) array, copying only when needed.
pub fn standard_layout<T: Float>(a: &ArrayD<T>) -> std::borrow::Cow<'_, ArrayD<T>> {
    if a.is_standard_layout() {
        std::borrow::Cow::Borrowed(a)
    } else {
        std::borrow::Cow::Owned(
            ArrayD::from_shape_vec(a.raw_dim(), to_row_major(&a.view())).unwrap(),
        )
    }
}

/// The row-major elements of `a` (copied only when `a` is not row-major already).
pub fn standard<T: Float>(a: &ArrayD<T>) -> std::borrow::Cow<'_, [T]> {
    match a.as_slice() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(to_row_major(&a.view())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;

    #[test]
    fn permuted_copies_are_row_major() {
        let a =
            ArrayD::from_shape_vec(IxDyn(&[2, 3, 4]), (0..24).map(|v| v as f64).collect()).unwrap();
        let p = a.clone().permuted_axes(IxDyn(&[2, 0, 1]));
        let want: Vec<f64> = p.iter().copied().collect();
        assert_eq!(to_row_major(&p.view()), want);
        assert_eq!(standard_layout(&p).as_slice().unwrap(), &want[..]);
    }

    /// Channel slices, crops and reversed axes of an NCHW array (the run-copy path and
    /// the element walk) give the same elements as ndarray's own iteration.
    #[test]
    fn sliced_copies_are_row_major() {
        use ndarray::{Axis, Slice};
        let a =
            ArrayD::from_shape_vec(IxDyn(&[3, 5, 6, 20]), (0..1800).map(|v| v as f32).collect())
                .unwrap();
        let channels = a.slice_axis(Axis(1), Slice::from(1..4));
        let cropped = a.slice_axis(Axis(2), Slice::from(1..5));
        let rows = a.slice_axis(Axis(3), Slice::from(2..19));
        let reversed = a.slice_axis(Axis(0), Slice::new(0, None, -1));
        let stepped = a.slice_axis(Axis(3), Slice::new(0, None, 2));
        for v in [channels, cropped, rows, reversed, stepped] {
            let want: Vec<f32> = v.iter().copied().collect();
            assert_eq!(to_row_major(&v), want, "{:?} {:?}", v.shape(), v.strides());
        }
    }
}
