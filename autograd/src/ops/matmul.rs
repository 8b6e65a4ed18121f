//! Matrix products: `matmul` (2-D x 2-D, batched 3-D x 3-D, batched 3-D x 2-D) and
//! `linear` (`x W^T + b`, PyTorch's weight layout). Large general shapes go through the
//! GEMM wrapper [`crate::kernels::cpu::gemm`]; small batched products, weight gradients
//! and short-inner-axis products through the packed-panel kernels
//! ([`crate::kernels::cpu::packed_gemm`]).

use crate::dispatch2;
use crate::dtype::Float;
use crate::kernels::cpu::gemm;
use crate::kernels::cpu::packed_gemm::{
    PackedB, gemm_at_b, gemm_packed, gemm_packed_at, gemm_small_k,
};
use crate::kernels::cuda;
use crate::tensor::Tensor;
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

fn matmul_kernel<T: Float>(a: &ArrayD<T>, ta: bool, b: &ArrayD<T>, tb: bool) -> ArrayD<T> {
    match (a.ndim(), b.ndim()) {
        (2, 2) => {
            let a2 = a.view().into_dimensionality::<Ix2>().unwrap();
            let b2 = b.view().into_dimensionality::<Ix2>().unwrap();
            let m = if ta { a2.dim().1 } else { a2.dim().0 };
            let n = if tb { b2.dim().0 } else { b2.dim().1 };
            let k = if ta { a2.dim().0 } else { a2.dim().1 };
            let mut c = ndarray::Array2::<T>::zeros((m, n));
            match route_2d(m, k, n, ta) {
                Route::AtB => gemm_at_b(a2, if tb { b2.t() } else { b2 }, c.view_mut()),
                Route::SmallK => gemm_small_k(
                    if ta { a2.t() } else { a2 },
                    if tb { b2.t() } else { b2 },
                    c.view_mut(),
                ),
                Route::Gemm => gemm(T::one(), a2, ta, b2, tb, T::zero(), c.view_mut()),
            }
            c.into_dyn()
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
            let mut c = ndarray::Array3::<T>::zeros((batch, m, n));
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
            if batch > 1
                && batch * m * n * k >= 1 << 20
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
            c.into_dyn()
        }
        _ => panic!(
            "matmul: unsupported shapes {:?} x {:?} (2-D x 2-D, 3-D x 3-D or 3-D x 2-D)",
            a.shape(),
            b.shape()
        ),
    }
}

/// `op(a) · op(b)` on the inputs' device (the forward's storage).
fn mm_storage(name: &str, a: &Tensor, ta: bool, b: &Tensor, tb: bool) -> crate::Storage {
    match crate::ops::device_of(name, &[a, b]) {
        Some(_) => crate::Storage::Cuda(cuda::matmul::matmul(a.cuda(name), ta, b.cuda(name), tb)),
        None => dispatch2!(name, a.storage(), b.storage(), |x, y| {
            matmul_kernel(x, ta, y, tb)
        }),
    }
}

/// `op(a) · op(b)` as a constant tensor on the inputs' device (the backward's products).
fn mm(name: &str, a: &Tensor, ta: bool, b: &Tensor, tb: bool) -> Tensor {
    Tensor::from_storage(mm_storage(name, a, ta, b, tb))
}

fn check_inner(a: &[usize], b: &[usize]) {
    let k1 = a[a.len() - 1];
    let k2 = b[b.len() - 2.min(b.len())];
    let batch_ok = a.len() != 3 || b.len() != 3 || a[0] == b[0];
    assert!(
        a.len() >= 2 && b.len() >= 2 && k1 == k2 && batch_ok,
        "matmul: shapes {a:?} and {b:?} do not fit"
    );
}

impl Tensor {
    /// Matrix product. `a: (m, k)`, `b: (k, n)` -> `(m, n)`; `a: (B, m, k)` with
    /// `b: (B, k, n)` or `(k, n)` -> `(B, m, n)`.
    pub fn matmul(&self, other: &Tensor) -> Tensor {
        check_inner(self.shape(), other.shape());
        let out = mm_storage("matmul", self, false, other, false);
        Tensor::from_op(
            out,
            &[self, other],
            "matmul",
            |inp: &[Tensor], _: &Tensor, g: &Tensor| {
                let (a, b) = (&inp[0], &inp[1]);
                // dA = G B^T ; dB = A^T G (summed over the batch when B was shared).
                let ga = a
                    .is_tracked()
                    .then(|| mm("matmul_backward", g, false, b, true));
                let gb = b.is_tracked().then(|| {
                    if a.ndim() == 3 && b.ndim() == 2 {
                        // Fold the batch into rows: A (B*m, k), G (B*m, n).
                        let k = a.shape()[2];
                        let n = g.shape()[2];
                        let a2 = a.reshape(&[a.numel() / k, k]);
                        let g2 = g.reshape(&[g.numel() / n, n]);
                        mm("matmul_backward", &a2, true, &g2, false)
                    } else {
                        mm("matmul_backward", a, true, g, false)
                    }
                });
                vec![ga, gb]
            },
        )
    }

    /// `x W^T (+ b)` with `W: (out, in)` (PyTorch layout), `x: (..., in)`.
    pub fn linear(&self, weight: &Tensor, bias: Option<&Tensor>) -> Tensor {
        let inf = weight.shape()[1];
        assert_eq!(
            self.dim(-1),
            inf,
            "linear: input {:?} does not fit weight {:?}",
            self.shape(),
            weight.shape()
        );
        let lead: Vec<usize> = self.shape()[..self.ndim() - 1].to_vec();
        let x2 = self.reshape(&[self.numel() / inf, inf]);
        let y = x2.matmul_t(weight);
        let y = match bias {
            Some(b) => &y + b,
            None => y,
        };
        let mut shape = lead;
        shape.push(weight.shape()[0]);
        y.reshape(&shape)
    }

    /// `self · other^T` for 2-D tensors, without materialising the transpose.
    pub fn matmul_t(&self, other: &Tensor) -> Tensor {
        assert!(
            self.ndim() == 2 && other.ndim() == 2 && self.shape()[1] == other.shape()[1],
            "matmul_t: shapes {:?} and {:?}^T do not fit",
            self.shape(),
            other.shape()
        );
        let out = mm_storage("matmul_t", self, false, other, true);
        Tensor::from_op(
            out,
            &[self, other],
            "matmul_t",
            |inp: &[Tensor], _: &Tensor, g: &Tensor| {
                let (a, b) = (&inp[0], &inp[1]);
                // C = A B^T: dA = G B ; dB = G^T A.
                let ga = a
                    .is_tracked()
                    .then(|| mm("matmul_t_backward", g, false, b, false));
                let gb = b
                    .is_tracked()
                    .then(|| mm("matmul_t_backward", g, true, a, false));
                vec![ga, gb]
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{gradcheck, rand_f64};

    #[test]
    fn matmul_forward_small() {
        let a = crate::Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2]);
        let b = crate::Tensor::from_vec(vec![5.0f32, 6.0, 7.0, 8.0], &[2, 2]);
        assert_eq!(a.matmul(&b).to_vec::<f32>(), vec![19.0, 22.0, 43.0, 50.0]);
    }

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

    #[test]
    fn gradcheck_matmul_2d_batched_and_shared() {
        gradcheck(
            |x| x[0].matmul(&x[1]),
            &[rand_f64(&[3, 4], 1), rand_f64(&[4, 5], 2)],
        )
        .unwrap();
        gradcheck(
            |x| x[0].matmul(&x[1]),
            &[rand_f64(&[2, 3, 4], 3), rand_f64(&[2, 4, 5], 4)],
        )
        .unwrap();
        gradcheck(
            |x| x[0].matmul(&x[1]),
            &[rand_f64(&[2, 3, 4], 5), rand_f64(&[4, 5], 6)],
        )
        .unwrap();
        // matrix-vector shapes take the GEMV path
        gradcheck(
            |x| x[0].matmul(&x[1]),
            &[rand_f64(&[1, 7], 7), rand_f64(&[7, 3], 8)],
        )
        .unwrap();
        gradcheck(
            |x| x[0].matmul(&x[1]),
            &[rand_f64(&[3, 7], 9), rand_f64(&[7, 1], 10)],
        )
        .unwrap();
    }

    #[test]
    fn gradcheck_linear_with_and_without_bias() {
        let x = rand_f64(&[2, 3, 4], 11);
        let w = rand_f64(&[5, 4], 12);
        let b = rand_f64(&[5], 13);
        gradcheck(
            |t| t[0].linear(&t[1], Some(&t[2])),
            &[x.clone(), w.clone(), b],
        )
        .unwrap();
        gradcheck(|t| t[0].linear(&t[1], None), &[x, w]).unwrap();
    }

    #[test]
    #[should_panic(expected = "do not fit")]
    fn matmul_mismatch_names_both_shapes() {
        let _ = rand_f64(&[2, 3], 1).matmul(&rand_f64(&[4, 2], 2));
    }
}
