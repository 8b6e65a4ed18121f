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
}
