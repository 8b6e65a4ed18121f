//! Matrix products on the CPU: 2-D x 2-D, batched 3-D x 3-D and batched 3-D x 2-D, with
//! either operand read transposed. Large general shapes go through the GEMM wrapper
//! [`crate::kernels::cpu::gemm::gemm`]; small batched products, weight gradients and
//! short-inner-axis products through the packed-panel kernels
//! ([`crate::kernels::cpu::packed_gemm`]).

use crate::dtype::Float;
use crate::kernels::cpu::gemm;
use crate::kernels::cpu::packed_gemm::{
    PackedB, gemm_at_b, gemm_packed, gemm_packed_at, gemm_small_k,
};
use crate::kernels::cpu::uninit::overwritten_array;
use ndarray::{ArrayD, Axis, Ix2, Ix3};

/// Per-product size (`m * n * k`) up to which a batched product skips matrixmultiply:
/// packing both operands and its blocking overhead dominate products this small (the NAO
/// decoder's attention: 100 products of `40 x 96 x 20` per call).
const SMALL_PRODUCT: usize = 1 << 18;

/// `c = op(a) op(b)` for one small product: `op(b)` packed once into column panels and
/// streamed by [`gemm_packed`]'s register-blocked kernel; `op(a)` read in place when it is
/// row-major, else copied. Each element sums over the inner index in order.
fn small_product<T: Float>(
    a: ndarray::ArrayView2<T>,
    ta: bool,
    b: ndarray::ArrayView2<T>,
    tb: bool,
    mut c: ndarray::ArrayViewMut2<T>,
) {
    let b = if tb { b.reversed_axes() } else { b };
    let packed = PackedB::new(b);
    let n = packed.n().max(1);
    // A^T with A row-major is read in place; other layouts are copied to row-major.
    let at_in_place = ta && a.is_standard_layout();
    let (m, k) = if ta { (a.dim().1, a.dim().0) } else { a.dim() };
    let a_op = if ta && !at_in_place {
        a.reversed_axes()
    } else {
        a
    };
    let a_std = a_op.as_standard_layout();
    let a_slice = a_std.as_slice().expect("standard layout");
    let run = |cs: &mut [T]| {
        if at_in_place {
            gemm_packed_at(a_slice, m.max(1), m, &packed, false, cs, n);
        } else {
            gemm_packed(a_slice, k.max(1), m, &packed, false, cs, n);
        }
    };
    match c.as_slice_mut() {
        Some(cs) => run(cs),
        None => {
            let mut tmp = ndarray::Array2::<T>::zeros(c.dim());
            run(tmp.as_slice_mut().unwrap());
            c.assign(&tmp);
        }
    }
}

/// Which kernel a 2-D product `m x k x n` takes.
#[derive(Debug, PartialEq)]
enum Route {
    /// `A^T B` with a long inner axis (weight gradients): [`gemm_at_b`].
    AtB,
    /// A short inner axis and a small `B` to pack: [`gemm_small_k`].
    SmallK,
    /// Everything else (and matrix-vector shapes): [`gemm`] (matrixmultiply).
    Gemm,
}

/// Products this small stay with [`gemm`] (nothing to gain).
const ROUTE_MIN: usize = 1 << 16;

/// The packed-panel kernels beat matrixmultiply on the controller's shapes (`n` 12 to 384,
/// `k` 12 to 96 or thousands for weight gradients; timed one by one against `gemm`) when `B`
/// is small enough to pack cheaply (at most 512 columns) and `A` has enough rows to
/// amortise it: weight gradients `A^T B` (`k` the long axis, `m <= 1024`) and products with
/// a short inner axis (`k <= 256`). Other shapes (e.g. the child RNN's, 300 x 600) were not
/// measured and keep [`gemm`], as do matrix-vector shapes.
fn route_2d(m: usize, k: usize, n: usize, ta: bool) -> Route {
    if m < 2 || !(2..=512).contains(&n) || m * n * k < ROUTE_MIN {
        Route::Gemm
    } else if ta && m <= 1024 && k >= 64 {
        Route::AtB
    } else if !ta && k <= 256 && m >= 32 {
        Route::SmallK
    } else {
        Route::Gemm
    }
}

/// `op(a) · op(b)`, where `op` transposes the last two axes when `ta` / `tb`.
pub fn matmul_kernel<T: Float>(a: &ArrayD<T>, ta: bool, b: &ArrayD<T>, tb: bool) -> ArrayD<T> {
    match (a.ndim(), b.ndim()) {
        (2, 2) => {
            let a2 = a.view().into_dimensionality::<Ix2>().unwrap();
            let b2 = b.view().into_dimensionality::<Ix2>().unwrap();
            let m = if ta { a2.dim().1 } else { a2.dim().0 };
            let n = if tb { b2.dim().0 } else { b2.dim().1 };
            let k = if ta { a2.dim().0 } else { a2.dim().1 };
            let product = |c: ndarray::ArrayViewMut2<T>| match route_2d(m, k, n, ta) {
                Route::AtB => gemm_at_b(a2, if tb { b2.t() } else { b2 }, c),
                Route::SmallK => gemm_small_k(
                    if ta { a2.t() } else { a2 },
                    if tb { b2.t() } else { b2 },
                    c,
                ),
                Route::Gemm => gemm(T::one(), a2, ta, b2, tb, T::zero(), c),
            };
            // SAFETY: each route overwrites all of `c` without reading it (`gemm_at_b` and
            // `gemm_small_k` store their first block's products; `gemm` has beta = 0).
            unsafe { overwritten_array((m, n), product) }.into_dyn()
        }
        (3, 3) | (3, 2) => {
            let a3 = a.view().into_dimensionality::<Ix3>().unwrap();
            let batch = a3.dim().0;
            let m = if ta { a3.dim().2 } else { a3.dim().1 };
            let n = if tb {
                b.shape()[b.ndim() - 2]
            } else {
                b.shape()[b.ndim() - 1]
            };
            let k = if ta { a3.dim().1 } else { a3.dim().2 };
            let small = m * n * k <= SMALL_PRODUCT;
            // Each product is independent: batches split across the rayon pool (each
            // product's arithmetic does not depend on the split).
            let work = |(i, mut ci): (usize, ndarray::ArrayViewMut2<T>)| {
                let bi = if b.ndim() == 3 {
                    b.index_axis(Axis(0), i)
                        .into_dimensionality::<Ix2>()
                        .unwrap()
                } else {
                    b.view().into_dimensionality::<Ix2>().unwrap()
                };
                if small {
                    small_product(a3.index_axis(Axis(0), i), ta, bi, tb, ci);
                    return;
                }
                gemm(
                    T::one(),
                    a3.index_axis(Axis(0), i),
                    ta,
                    bi,
                    tb,
                    T::zero(),
                    ci.view_mut(),
                );
            };
            let products = |mut c: ndarray::ArrayViewMut3<T>| {
                if batch > 1
                    && batch * m * n * k >= super::par::BATCHED_MATMUL_MIN_FLOPS
                    && rayon::current_num_threads() > 1
                    && rayon::current_thread_index().is_none()
                {
                    use rayon::prelude::*;
                    c.axis_iter_mut(Axis(0))
                        .into_par_iter()
                        .enumerate()
                        .for_each(work);
                } else {
                    c.axis_iter_mut(Axis(0)).enumerate().for_each(work);
                }
            };
            // SAFETY: every product overwrites its slice of `c` without reading it
            // (`small_product` stores, `gemm` has beta = 0).
            unsafe { overwritten_array((batch, m, n), products) }.into_dyn()
        }
        _ => panic!(
            "matmul: unsupported shapes {:?} x {:?} (2-D x 2-D, 3-D x 3-D or 3-D x 2-D)",
            a.shape(),
            b.shape()
        ),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn small_batched_products_match_the_gemm_path() {
        // Batched products at or below SMALL_PRODUCT take the packed kernel; each must equal
        // the 2-D product (matrixmultiply) of its slices, for every transpose combination.
        use ndarray::{Array3, Axis, Ix2};
        let mut seed = 1u64;
        let mut rnd = |shape: (usize, usize, usize)| {
            Array3::from_shape_fn(shape, |_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((seed >> 40) as f32 / (1u64 << 24) as f32) - 0.5
            })
        };
        for &(m, k, n) in &[(40, 96, 20), (3, 5, 37), (1, 7, 1), (33, 64, 70)] {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let a = rnd(if ta { (4, k, m) } else { (4, m, k) }).into_dyn();
                let b = rnd(if tb { (4, n, k) } else { (4, k, n) }).into_dyn();
                let got = super::matmul_kernel(&a, ta, &b, tb);
                for i in 0..4 {
                    let ai = a.index_axis(Axis(0), i).to_owned();
                    let bi = b.index_axis(Axis(0), i).to_owned();
                    let want = super::matmul_kernel(&ai.into_dyn(), ta, &bi.into_dyn(), tb);
                    let got_i = got
                        .index_axis(Axis(0), i)
                        .into_dimensionality::<Ix2>()
                        .unwrap();
                    for (g, w) in got_i.iter().zip(want.iter()) {
                        assert!(
                            (g - w).abs() <= 1e-5 * (1.0 + w.abs()),
                            "{m}x{k}x{n} ta={ta} tb={tb}: {g} vs {w}"
                        );
                    }
                }
            }
        }
    }

    /// 2-D products routed to the packed kernels (weight-gradient and short-inner-axis
    /// shapes) equal matrixmultiply's, for every transpose combination.
    #[test]
    fn routed_2d_products_match_the_gemm_path() {
        use super::{Route, route_2d};
        use ndarray::Array2;
        let mut seed = 5u64;
        let mut rnd = |shape: (usize, usize)| {
            Array2::from_shape_fn(shape, |_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((seed >> 40) as f64 / (1u64 << 24) as f64) - 0.5
            })
        };
        for &(m, k, n) in &[(96, 900, 96), (700, 96, 12), (64, 40, 33)] {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let a = rnd(if ta { (k, m) } else { (m, k) });
                let b = rnd(if tb { (n, k) } else { (k, n) });
                let got =
                    super::matmul_kernel(&a.clone().into_dyn(), ta, &b.clone().into_dyn(), tb);
                let mut want = Array2::zeros((m, n));
                crate::kernels::cpu::gemm(1.0, a.view(), ta, b.view(), tb, 0.0, want.view_mut());
                for (g, w) in got.iter().zip(want.iter()) {
                    assert!(
                        (g - w).abs() <= 1e-12,
                        "{m}x{k}x{n} ta={ta} tb={tb}: {g} vs {w}"
                    );
                }
            }
        }
        assert_eq!(route_2d(96, 4000, 96, true), Route::AtB);
        assert_eq!(route_2d(4000, 96, 96, false), Route::SmallK);
        assert_eq!(route_2d(4000, 96, 12, false), Route::SmallK);
        assert_eq!(route_2d(1, 96, 384, false), Route::Gemm);
        assert_eq!(route_2d(128, 2048, 128, false), Route::Gemm);
        // the child RNN's weight gradient (300 x 256 x 600) stays with matrixmultiply
        assert_eq!(route_2d(300, 256, 600, true), Route::Gemm);
    }
}
