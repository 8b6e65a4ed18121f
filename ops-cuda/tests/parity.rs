//! Parity of every CUDA kernel with a plain CPU reference written here (f64 accumulation),
//! on random inputs from a seeded generator. Without a GPU (or without `--features cuda`)
//! every test prints "skipped: no CUDA device (...)" and returns.
//!
//! Tolerances (per check): elementwise and unary 1e-5 relative (+1e-6 absolute);
//! reductions, softmax, batch norm, GEMM and convolution 1e-4 relative plus an absolute term
//! scaled by the length of the sum (`K * 1e-6 * max|a| * max|b|` for products); random
//! numbers and integer outputs exactly.

use ops_cuda::kernels::conv::{self, Conv2dShape};
use ops_cuda::kernels::elementwise::{self, BinaryOp, UnaryOp};
use ops_cuda::kernels::gemm::{self, GemmDesc, GemmTile};
use ops_cuda::kernels::norm;
use ops_cuda::kernels::pool::{self, Pool2dShape};
use ops_cuda::kernels::reduce::{self, ReduceOp};
use ops_cuda::kernels::{embedding, lstm, softmax};
use ops_cuda::testing::device_or_skip;
use ops_cuda::{CudaBuffer, CudaDevice};

macro_rules! gpu {
    ($name:expr) => {
        match device_or_skip($name) {
            Some(d) => d,
            None => return,
        }
    };
}

/// splitmix64: a tiny seeded generator.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32)
    }
    fn vec(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform(lo, hi)).collect()
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

fn up(dev: &CudaDevice, v: &[f32]) -> CudaBuffer {
    CudaBuffer::from_slice(dev, v).unwrap()
}

fn upi(dev: &CudaDevice, v: &[i32]) -> CudaBuffer<i32> {
    CudaBuffer::from_slice(dev, v).unwrap()
}

fn down(b: &CudaBuffer) -> Vec<f32> {
    b.to_vec().unwrap()
}

#[track_caller]
fn assert_close(what: &str, got: &[f32], want: &[f64], rtol: f64, atol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut worst = (0.0f64, 0usize);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let g = f64::from(g);
        if w.is_nan() {
            assert!(g.is_nan(), "{what}[{i}]: got {g}, want NaN");
            continue;
        }
        if w.is_infinite() {
            assert_eq!(g, w, "{what}[{i}]");
            continue;
        }
        let err = (g - w).abs();
        let tol = atol + rtol * w.abs();
        if err / tol > worst.0 {
            worst = (err / tol, i);
        }
        assert!(
            err <= tol,
            "{what}[{i}]: got {g}, want {w} (|err| {err:e} > tol {tol:e})"
        );
    }
    println!(
        "{what}: ok, {} values, worst err/tol {:.3}",
        got.len(),
        worst.0
    );
}

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}

fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1];
    }
    s
}

fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        idx[d] = i % shape[d];
        i /= shape[d];
    }
    idx
}

#[test]
fn device_buffers_pool_and_threads() {
    let dev = gpu!("device_buffers_pool_and_threads");
    println!("device: {dev:?}");
    let mut rng = Rng(1);
    let v = rng.vec(1000, -1.0, 1.0);
    let b = up(&dev, &v);
    assert_eq!(down(&b), v);
    let ints: Vec<i32> = (0..77).map(|i| i * 3 - 50).collect();
    assert_eq!(upi(&dev, &ints).to_vec().unwrap(), ints);
    let z = CudaBuffer::<f32>::zeros(&dev, 513).unwrap();
    assert!(down(&z).iter().all(|&x| x == 0.0));
    let mut f = CudaBuffer::<f32>::filled(&dev, 9, 2.5).unwrap();
    assert_eq!(down(&f), vec![2.5; 9]);
    f.fill(-1.0).unwrap();
    assert_eq!(down(&f), vec![-1.0; 9]);
    let c = b.try_clone().unwrap();
    assert_eq!(down(&c), v);
    let mut d = CudaBuffer::<f32>::zeros(&dev, 10).unwrap();
    d.copy_within_from(2, &b, 5, 3).unwrap();
    assert_eq!(&down(&d)[2..5], &v[5..8]);
    assert!(d.copy_within_from(9, &b, 0, 3).is_err());
    assert!(
        CudaBuffer::<f32>::from_slice(&dev, &[])
            .unwrap()
            .to_vec()
            .unwrap()
            .is_empty()
    );

    // The pool hands a dropped allocation back for the same size class.
    drop(c);
    let allocs = dev.pool_stats().driver_allocs;
    let again = CudaBuffer::<f32>::uninit(&dev, 1000).unwrap();
    assert_eq!(
        dev.pool_stats().driver_allocs,
        allocs,
        "reused from the pool"
    );
    drop(again);
    dev.empty_cache().unwrap();
    assert_eq!(dev.pool_stats().cached, 0);

    // Another thread: every method makes the context current first.
    let dev2 = dev.clone();
    let v2 = v.clone();
    std::thread::spawn(move || {
        let b = CudaBuffer::from_slice(&dev2, &v2).unwrap();
        let y = elementwise::unary(&dev2, UnaryOp::MulScalar(2.0), &b).unwrap();
        let got = y.to_vec().unwrap();
        assert!(got.iter().zip(&v2).all(|(g, x)| *g == 2.0 * x));
    })
    .join()
    .unwrap();
    dev.preload_modules().unwrap();
    assert_eq!(CudaDevice::new(0).unwrap(), dev);
    assert!(CudaDevice::new(10_000).is_err());
    // Shape errors name the op.
    let e = elementwise::binary(&dev, BinaryOp::Add, &b, &[10, 100], &b, &[1000]).unwrap_err();
    assert!(e.to_string().contains("binary"), "{e}");
}

fn binary_ref(op: BinaryOp, a: f64, b: f64) -> f64 {
    let (a32, b32) = (a as f32, b as f32);
    match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
        BinaryOp::Maximum => a.max(b),
        BinaryOp::Minimum => a.min(b),
        BinaryOp::Ge => f64::from(u8::from(a32 >= b32)),
        BinaryOp::Gt => f64::from(u8::from(a32 > b32)),
        BinaryOp::Eq => f64::from(u8::from(a32 == b32)),
        BinaryOp::Pow => a.powf(b),
    }
}

fn broadcast_ref(
    a: &[f32],
    ash: &[usize],
    b: &[f32],
    bsh: &[usize],
    op: BinaryOp,
) -> (Vec<f64>, Vec<usize>) {
    let n = ash.len().max(bsh.len());
    let pad = |s: &[usize]| {
        let mut v = vec![1; n - s.len()];
        v.extend_from_slice(s);
        v
    };
    let (pa, pb) = (pad(ash), pad(bsh));
    let out: Vec<usize> = pa.iter().zip(&pb).map(|(&x, &y)| x.max(y)).collect();
    let total: usize = out.iter().product();
    let (sa, sb) = (strides(&pa), strides(&pb));
    let res = (0..total)
        .map(|i| {
            let idx = unravel(i, &out);
            let ia: usize = (0..n)
                .map(|d| if pa[d] == 1 { 0 } else { idx[d] * sa[d] })
                .sum();
            let ib: usize = (0..n)
                .map(|d| if pb[d] == 1 { 0 } else { idx[d] * sb[d] })
                .sum();
            binary_ref(op, f64::from(a[ia]), f64::from(b[ib]))
        })
        .collect();
    (res, out)
}

#[test]
fn elementwise_binary_broadcast() {
    let dev = gpu!("elementwise_binary_broadcast");
    let mut rng = Rng(2);
    let cases: [(&[usize], &[usize]); 6] = [
        (&[7, 13], &[7, 13]),
        (&[4, 1, 3], &[5, 1]),
        (&[2, 3, 4, 5], &[3, 1, 5]),
        (&[], &[3, 4]),
        (&[8, 16, 1, 1], &[1, 16, 5, 5]),
        (&[2, 1, 3, 1, 2, 1], &[1, 2, 1, 3, 1, 2]),
    ];
    // Seven alternating broadcast axes cannot be merged below the kernel's six: a clear error.
    let seven = up(&dev, &[1.0; 24]);
    let e = elementwise::binary(
        &dev,
        BinaryOp::Add,
        &seven,
        &[2, 1, 3, 1, 2, 1, 2],
        &seven,
        &[1, 2, 1, 3, 1, 2, 1],
    );
    assert!(matches!(e, Err(ops_cuda::CudaError::Shape { .. })), "{e:?}");
    let ops = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Maximum,
        BinaryOp::Minimum,
        BinaryOp::Ge,
        BinaryOp::Gt,
        BinaryOp::Eq,
        BinaryOp::Pow,
    ];
    for (ash, bsh) in cases {
        let na: usize = ash.iter().product();
        let nb: usize = bsh.iter().product();
        // Positive inputs keep Div and Pow well conditioned; rounding to 1/8 makes Eq/Ge ties.
        let a: Vec<f32> = rng
            .vec(na, 0.25, 2.0)
            .iter()
            .map(|x| (x * 8.0).round() / 8.0)
            .collect();
        let b: Vec<f32> = rng
            .vec(nb, 0.25, 2.0)
            .iter()
            .map(|x| (x * 8.0).round() / 8.0)
            .collect();
        let (da, db) = (up(&dev, &a), up(&dev, &b));
        for op in ops {
            let (want, wshape) = broadcast_ref(&a, ash, &b, bsh, op);
            let (got, gshape) = elementwise::binary(&dev, op, &da, ash, &db, bsh).unwrap();
            assert_eq!(gshape, wshape);
            assert_close(
                &format!("{op:?} {ash:?} {bsh:?}"),
                &down(&got),
                &want,
                1e-5,
                1e-6,
            );
        }
    }
}

fn unary_ref(op: UnaryOp, x: f64) -> f64 {
    match op {
        UnaryOp::Neg => -x,
        UnaryOp::Exp => x.exp(),
        UnaryOp::Log => x.ln(),
        UnaryOp::Sqrt => x.sqrt(),
        UnaryOp::Tanh => x.tanh(),
        UnaryOp::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        UnaryOp::Relu => x.max(0.0),
        UnaryOp::Abs => x.abs(),
        UnaryOp::Clamp { min, max } => x.clamp(f64::from(min), f64::from(max)),
        UnaryOp::Powf(p) => x.powf(f64::from(p)),
        UnaryOp::AddScalar(s) => x + f64::from(s),
        UnaryOp::MulScalar(s) => x * f64::from(s),
        UnaryOp::Square => x * x,
        UnaryOp::Recip => 1.0 / x,
    }
}

fn unary_grad_ref(op: UnaryOp, dy: f64, x: f64) -> f64 {
    let y = unary_ref(op, x);
    dy * match op {
        UnaryOp::Neg => -1.0,
        UnaryOp::Exp => y,
        UnaryOp::Log => 1.0 / x,
        UnaryOp::Sqrt => 0.5 / y,
        UnaryOp::Tanh => 1.0 - y * y,
        UnaryOp::Sigmoid => y * (1.0 - y),
        UnaryOp::Relu => f64::from(u8::from(x > 0.0)),
        UnaryOp::Abs => x.signum() * f64::from(u8::from(x != 0.0)),
        UnaryOp::Clamp { min, max } => {
            f64::from(u8::from(x >= f64::from(min) && x <= f64::from(max)))
        }
        UnaryOp::Powf(p) => f64::from(p) * x.powf(f64::from(p) - 1.0),
        UnaryOp::AddScalar(_) => 1.0,
        UnaryOp::MulScalar(s) => f64::from(s),
        UnaryOp::Square => 2.0 * x,
        UnaryOp::Recip => -1.0 / (x * x),
    }
}

#[test]
fn elementwise_unary_forward_backward() {
    let dev = gpu!("elementwise_unary_forward_backward");
    let mut rng = Rng(3);
    let n = 10_007;
    let signed: Vec<f32> = {
        let mut v = rng.vec(n, -6.0, 6.0);
        v[0] = 0.0;
        v[1] = -20.0;
        v[2] = 20.0;
        v
    };
    let positive = rng.vec(n, 0.05, 5.0);
    let dy = rng.vec(n, -1.0, 1.0);
    let ops = [
        (UnaryOp::Neg, &signed),
        (UnaryOp::Exp, &signed),
        (UnaryOp::Log, &positive),
        (UnaryOp::Sqrt, &positive),
        (UnaryOp::Tanh, &signed),
        (UnaryOp::Sigmoid, &signed),
        (UnaryOp::Relu, &signed),
        (UnaryOp::Abs, &signed),
        (
            UnaryOp::Clamp {
                min: -1.5,
                max: 2.0,
            },
            &signed,
        ),
        (UnaryOp::Powf(1.7), &positive),
        (UnaryOp::Powf(-0.5), &positive),
        (UnaryOp::AddScalar(0.3), &signed),
        (UnaryOp::MulScalar(-2.5), &signed),
        (UnaryOp::Square, &signed),
        (UnaryOp::Recip, &positive),
    ];
    let ddy = up(&dev, &dy);
    for (op, xs) in ops {
        let dx_in = up(&dev, xs);
        let y = elementwise::unary(&dev, op, &dx_in).unwrap();
        let want: Vec<f64> = xs.iter().map(|&x| unary_ref(op, f64::from(x))).collect();
        assert_close(&format!("{op:?} forward"), &down(&y), &want, 1e-5, 1e-6);
        let g = elementwise::unary_backward(&dev, op, &ddy, &dx_in, &y).unwrap();
        let want: Vec<f64> = xs
            .iter()
            .zip(&dy)
            .map(|(&x, &d)| unary_grad_ref(op, f64::from(d), f64::from(x)))
            .collect();
        assert_close(&format!("{op:?} backward"), &down(&g), &want, 1e-5, 1e-6);
    }
}

#[test]
fn elementwise_strided_copy_permute_axpby() {
    let dev = gpu!("elementwise_strided_copy_permute_axpby");
    let mut rng = Rng(4);
    let shape = [2, 3, 4, 5];
    let x = rng.vec(120, -1.0, 1.0);
    let dx = up(&dev, &x);
    for perm in [[0, 2, 3, 1], [3, 2, 1, 0], [1, 0, 2, 3], [0, 1, 2, 3]] {
        let (got, gshape) = elementwise::permute(&dev, &dx, &shape, &perm).unwrap();
        let oshape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
        assert_eq!(gshape, oshape);
        let st = strides(&shape);
        let want: Vec<f64> = (0..120)
            .map(|i| {
                let idx = unravel(i, &oshape);
                f64::from(x[(0..4).map(|d| idx[d] * st[perm[d]]).sum::<usize>()])
            })
            .collect();
        assert_close(&format!("permute {perm:?}"), &down(&got), &want, 0.0, 0.0);
    }
    // expand a row (stride 0) and take a strided slice with an offset
    let got = elementwise::strided_copy(&dev, &dx, 5, &[3, 4], &[0, 2]).unwrap();
    let want: Vec<f64> = (0..12).map(|i| f64::from(x[5 + (i % 4) * 2])).collect();
    assert_close("expand", &down(&got), &want, 0.0, 0.0);
    assert!(elementwise::strided_copy(&dev, &dx, 100, &[3, 4], &[10, 1]).is_err());

    let y = rng.vec(120, -1.0, 1.0);
    let mut dy = up(&dev, &y);
    elementwise::axpby(&dev, &mut dy, &dx, 0.5, -2.0).unwrap();
    let want: Vec<f64> = x
        .iter()
        .zip(&y)
        .map(|(&a, &b)| 0.5 * f64::from(a) - 2.0 * f64::from(b))
        .collect();
    assert_close("axpby", &down(&dy), &want, 1e-6, 1e-7);
}

fn reduce_ref(op: ReduceOp, x: &[f32], shape: &[usize], axes: &[usize]) -> Vec<f64> {
    let kept: Vec<usize> = (0..shape.len()).filter(|d| !axes.contains(d)).collect();
    let oshape: Vec<usize> = kept.iter().map(|&d| shape[d]).collect();
    let n_out: usize = oshape.iter().product();
    let mut acc = vec![
        if op == ReduceOp::Max {
            f64::NEG_INFINITY
        } else {
            0.0
        };
        n_out
    ];
    let ost = strides(&oshape);
    for (i, &v) in x.iter().enumerate() {
        let idx = unravel(i, shape);
        let o: usize = kept.iter().enumerate().map(|(k, &d)| idx[d] * ost[k]).sum();
        match op {
            ReduceOp::Max => acc[o] = acc[o].max(f64::from(v)),
            _ => acc[o] += f64::from(v),
        }
    }
    if op == ReduceOp::Mean {
        let r = (x.len() / n_out.max(1)) as f64;
        acc.iter_mut().for_each(|a| *a /= r);
    }
    acc
}

#[test]
fn reductions() {
    let dev = gpu!("reductions");
    let mut rng = Rng(5);
    let shape = [3, 5, 7, 11];
    let n: usize = shape.iter().product();
    let x = rng.vec(n, -1.0, 1.0);
    let dx = up(&dev, &x);
    let axes_sets: [&[usize]; 8] = [
        &[0],
        &[1],
        &[3],
        &[0, 2],
        &[1, 3],
        &[2, 0, 3],
        &[0, 1, 2, 3],
        &[],
    ];
    for axes in axes_sets {
        for op in [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max] {
            let got = reduce::reduce(&dev, op, &dx, &shape, axes).unwrap();
            let want = reduce_ref(op, &x, &shape, axes);
            let r = (n / want.len()) as f64;
            assert_close(
                &format!("{op:?} over {axes:?}"),
                &down(&got),
                &want,
                1e-4,
                1e-6 * r,
            );
        }
    }
    // argmax along each axis, with ties (values rounded to a coarse grid).
    let xt: Vec<f32> = x.iter().map(|v| (v * 4.0).round()).collect();
    let dxt = up(&dev, &xt);
    for axis in 0..4 {
        let (m, idx) = reduce::max_with_argmax(&dev, &dxt, &shape, axis).unwrap();
        let want = reduce_ref(ReduceOp::Max, &xt, &shape, &[axis]);
        assert_close(&format!("max axis {axis}"), &down(&m), &want, 0.0, 0.0);
        let got_idx = idx.to_vec().unwrap();
        let st = strides(&shape);
        let oshape: Vec<usize> = (0..4).filter(|&d| d != axis).map(|d| shape[d]).collect();
        for (o, &gi) in got_idx.iter().enumerate() {
            let oi = unravel(o, &oshape);
            let mut full = Vec::new();
            let mut k = 0;
            for d in 0..4 {
                if d == axis {
                    full.push(0);
                } else {
                    full.push(oi[k]);
                    k += 1;
                }
            }
            let base: usize = (0..4).map(|d| full[d] * st[d]).sum();
            let first = (0..shape[axis])
                .find(|&j| f64::from(xt[base + j * st[axis]]) == want[o])
                .unwrap();
            assert_eq!(gi as usize, first, "argmax axis {axis} at {o}");
        }
    }
    // a large full sum (one block) and sum_to_shape
    let big = rng.vec(1_000_003, -1.0, 1.0);
    let s = reduce::sum_all(&dev, &up(&dev, &big)).unwrap();
    let want: f64 = big.iter().map(|&v| f64::from(v)).sum();
    assert_close("sum_all 1e6", &down(&s), &[want], 1e-4, 1e-6 * 1e6);
    for target in [
        &[5, 1, 11][..],
        &[11],
        &[1, 1, 1, 1],
        &[3, 5, 7, 11],
        &[3, 1, 7, 1],
    ] {
        let got = reduce::sum_to_shape(&dev, &dx, &shape, target).unwrap();
        let off = 4 - target.len();
        let axes: Vec<usize> = (0..4)
            .filter(|&d| d < off || target[d - off] == 1 && shape[d] != 1)
            .collect();
        let want = reduce_ref(ReduceOp::Sum, &x, &shape, &axes);
        assert_close(
            &format!("sum_to_shape {target:?}"),
            &down(&got),
            &want,
            1e-4,
            1e-5 * 1000.0,
        );
    }
    assert!(reduce::sum_to_shape(&dev, &dx, &shape, &[2, 11]).is_err());
}

#[allow(clippy::too_many_arguments)]
fn gemm_ref(
    ta: bool,
    tb: bool,
    m: usize,
    n: usize,
    k: usize,
    alpha: f64,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    beta: f64,
    c: &[f32],
    ldc: usize,
) -> Vec<f64> {
    let mut out: Vec<f64> = f64s(c);
    for i in 0..m {
        for j in 0..n {
            let mut s = 0.0;
            for p in 0..k {
                let av = if ta { a[p * lda + i] } else { a[i * lda + p] };
                let bv = if tb { b[j * ldb + p] } else { b[p * ldb + j] };
                s += f64::from(av) * f64::from(bv);
            }
            let o = i * ldc + j;
            out[o] = alpha * s
                + if beta == 0.0 {
                    0.0
                } else {
                    beta * f64::from(c[o])
                };
        }
    }
    out
}

#[test]
fn sgemm_transposes_tiles_batches() {
    let dev = gpu!("sgemm_transposes_tiles_batches");
    let mut rng = Rng(6);
    for &(m, n, k) in &[
        (67, 45, 33),
        (1, 300, 17),
        (129, 1, 260),
        (128, 128, 64),
        (5, 7, 1),
    ] {
        for ta in [false, true] {
            for tb in [false, true] {
                for tile in [GemmTile::T64, GemmTile::T128] {
                    let a = rng.vec(m * k, -1.0, 1.0);
                    let b = rng.vec(k * n, -1.0, 1.0);
                    let c0 = rng.vec(m * n, -1.0, 1.0);
                    let mut d = GemmDesc::new(ta, tb, m, n, k);
                    d.alpha = 0.75;
                    d.beta = -0.5;
                    d.tile = tile;
                    let mut dc = up(&dev, &c0);
                    gemm::sgemm(&dev, &d, &up(&dev, &a), &up(&dev, &b), &mut dc).unwrap();
                    let want = gemm_ref(ta, tb, m, n, k, 0.75, &a, d.lda, &b, d.ldb, -0.5, &c0, n);
                    assert_close(
                        &format!("sgemm {m}x{n}x{k} ta={ta} tb={tb} {tile:?}"),
                        &down(&dc),
                        &want,
                        1e-4,
                        1e-6 * k as f64 + 1e-6,
                    );
                }
            }
        }
    }
    // beta = 0 must not read C (NaN garbage stays out)
    let (m, n, k) = (40, 50, 60);
    let a = rng.vec(m * k, -1.0, 1.0);
    let b = rng.vec(k * n, -1.0, 1.0);
    let mut dc = up(&dev, &vec![f32::NAN; m * n]);
    gemm::sgemm(
        &dev,
        &GemmDesc::new(false, false, m, n, k),
        &up(&dev, &a),
        &up(&dev, &b),
        &mut dc,
    )
    .unwrap();
    let want = gemm_ref(
        false,
        false,
        m,
        n,
        k,
        1.0,
        &a,
        k,
        &b,
        n,
        0.0,
        &vec![0.0; m * n],
        n,
    );
    assert_close(
        "sgemm beta=0 over NaN",
        &down(&dc),
        &want,
        1e-4,
        1e-6 * k as f64,
    );
    // batched, shared A (stride 0), padded leading dimensions and offsets
    let (batch, m, n, k) = (5, 33, 20, 18);
    let (lda, ldb, ldc) = (k + 3, n + 1, n + 2);
    let a = rng.vec(3 + m * lda, -1.0, 1.0);
    let b = rng.vec(batch * k * ldb, -1.0, 1.0);
    let c0 = vec![0.0f32; batch * m * ldc];
    let mut d = GemmDesc::new(false, false, m, n, k);
    d.lda = lda;
    d.ldb = ldb;
    d.ldc = ldc;
    d.batch = batch;
    d.stride_a = 0;
    d.stride_b = k * ldb;
    d.stride_c = m * ldc;
    d.offset_a = 3;
    let mut dc = up(&dev, &c0);
    gemm::sgemm(&dev, &d, &up(&dev, &a), &up(&dev, &b), &mut dc).unwrap();
    let got = down(&dc);
    for bi in 0..batch {
        let want = gemm_ref(
            false,
            false,
            m,
            n,
            k,
            1.0,
            &a[3..],
            lda,
            &b[bi * k * ldb..],
            ldb,
            0.0,
            &c0[..m * ldc],
            ldc,
        );
        let g = &got[bi * m * ldc..(bi + 1) * m * ldc];
        for i in 0..m {
            assert_close(
                &format!("batched sgemm b{bi} row {i}"),
                &g[i * ldc..i * ldc + n],
                &want[i * ldc..i * ldc + n],
                1e-4,
                1e-6 * k as f64,
            );
        }
    }
    // split-K (long k, small m x n), with a remainder slice, beta and an offset C
    let (m, n, k) = (20, 30, 5000);
    for ta in [false, true] {
        for tb in [false, true] {
            let a = rng.vec(m * k, -1.0, 1.0);
            let b = rng.vec(k * n, -1.0, 1.0);
            let c0 = rng.vec(7 + m * n, -1.0, 1.0);
            let mut d = GemmDesc::new(ta, tb, m, n, k);
            d.alpha = 2.0;
            d.beta = -0.5;
            d.offset_c = 7;
            let mut dc = up(&dev, &c0);
            gemm::sgemm_split_k(&dev, &d, &up(&dev, &a), &up(&dev, &b), &mut dc).unwrap();
            let want = gemm_ref(
                ta,
                tb,
                m,
                n,
                k,
                2.0,
                &a,
                d.lda,
                &b,
                d.ldb,
                -0.5,
                &c0[7..],
                n,
            );
            let got = down(&dc);
            assert_eq!(got[..7], c0[..7]);
            assert_close(
                &format!("sgemm_split_k ta={ta} tb={tb}"),
                &got[7..],
                &want,
                1e-4,
                2e-6 * k as f64,
            );
        }
    }
    // matmul convenience and a bounds error
    let (m, k, n) = (9, 10, 11);
    let a = rng.vec(m * k, -1.0, 1.0);
    let b = rng.vec(k * n, -1.0, 1.0);
    let c = gemm::matmul(&dev, &up(&dev, &a), &up(&dev, &b), m, k, n, false, false).unwrap();
    let want = gemm_ref(
        false,
        false,
        m,
        n,
        k,
        1.0,
        &a,
        k,
        &b,
        n,
        0.0,
        &vec![0.0; m * n],
        n,
    );
    assert_close("matmul", &down(&c), &want, 1e-4, 1e-5);
    let mut small = up(&dev, &[0.0; 10]);
    assert!(
        gemm::sgemm(
            &dev,
            &GemmDesc::new(false, false, m, n, k),
            &up(&dev, &a),
            &up(&dev, &b),
            &mut small
        )
        .is_err()
    );
}

fn conv_ref(x: &[f32], w: &[f32], bias: Option<&[f32]>, s: &Conv2dShape) -> Vec<f64> {
    let (oh, ow) = s.out_hw().unwrap();
    let (cin_g, cout_g) = (s.c_in / s.groups, s.c_out / s.groups);
    let mut out = vec![0.0; s.n * s.c_out * oh * ow];
    for n in 0..s.n {
        for co in 0..s.c_out {
            let g = co / cout_g;
            for y in 0..oh {
                for xx in 0..ow {
                    let mut acc = bias.map_or(0.0, |b| f64::from(b[co]));
                    for ci in 0..cin_g {
                        let c = g * cin_g + ci;
                        for ky in 0..s.kh {
                            for kx in 0..s.kw {
                                let iy = (y * s.stride.0 + ky * s.dilation.0) as isize
                                    - s.padding.0 as isize;
                                let ix = (xx * s.stride.1 + kx * s.dilation.1) as isize
                                    - s.padding.1 as isize;
                                if iy < 0 || ix < 0 || iy >= s.h as isize || ix >= s.w as isize {
                                    continue;
                                }
                                let xv =
                                    x[((n * s.c_in + c) * s.h + iy as usize) * s.w + ix as usize];
                                let wv = w[((co * cin_g + ci) * s.kh + ky) * s.kw + kx];
                                acc += f64::from(xv) * f64::from(wv);
                            }
                        }
                    }
                    out[((n * s.c_out + co) * oh + y) * ow + xx] = acc;
                }
            }
        }
    }
    out
}

/// Input and weight gradients by the same loops (scatter form).
fn conv_backward_ref(x: &[f32], w: &[f32], dy: &[f32], s: &Conv2dShape) -> (Vec<f64>, Vec<f64>) {
    let (oh, ow) = s.out_hw().unwrap();
    let (cin_g, cout_g) = (s.c_in / s.groups, s.c_out / s.groups);
    let mut dx = vec![0.0; x.len()];
    let mut dw = vec![0.0; w.len()];
    for n in 0..s.n {
        for co in 0..s.c_out {
            let g = co / cout_g;
            for y in 0..oh {
                for xx in 0..ow {
                    let d = f64::from(dy[((n * s.c_out + co) * oh + y) * ow + xx]);
                    for ci in 0..cin_g {
                        let c = g * cin_g + ci;
                        for ky in 0..s.kh {
                            for kx in 0..s.kw {
                                let iy = (y * s.stride.0 + ky * s.dilation.0) as isize
                                    - s.padding.0 as isize;
                                let ix = (xx * s.stride.1 + kx * s.dilation.1) as isize
                                    - s.padding.1 as isize;
                                if iy < 0 || ix < 0 || iy >= s.h as isize || ix >= s.w as isize {
                                    continue;
                                }
                                let xi = ((n * s.c_in + c) * s.h + iy as usize) * s.w + ix as usize;
                                let wi = ((co * cin_g + ci) * s.kh + ky) * s.kw + kx;
                                dx[xi] += d * f64::from(w[wi]);
                                dw[wi] += d * f64::from(x[xi]);
                            }
                        }
                    }
                }
            }
        }
    }
    (dx, dw)
}

#[allow(clippy::too_many_arguments)]
fn cshape(
    n: usize,
    c_in: usize,
    h: usize,
    w: usize,
    c_out: usize,
    k: (usize, usize),
    stride: usize,
    pad: usize,
    dil: usize,
    groups: usize,
) -> Conv2dShape {
    Conv2dShape {
        n,
        c_in,
        h,
        w,
        c_out,
        kh: k.0,
        kw: k.1,
        stride: (stride, stride),
        padding: (pad, pad),
        dilation: (dil, dil),
        groups,
    }
}

#[test]
fn conv2d_im2col_and_depthwise() {
    let dev = gpu!("conv2d_im2col_and_depthwise");
    let mut rng = Rng(7);
    let cases = [
        cshape(2, 3, 9, 7, 4, (3, 3), 1, 1, 1, 1),
        cshape(1, 3, 9, 7, 4, (3, 3), 1, 1, 1, 1),
        cshape(3, 4, 11, 10, 6, (3, 3), 2, 1, 1, 1),
        cshape(2, 4, 12, 12, 8, (3, 3), 1, 2, 2, 1),
        cshape(2, 4, 8, 8, 6, (3, 3), 1, 1, 1, 2),
        cshape(4, 8, 6, 6, 16, (1, 1), 1, 0, 1, 1),
        cshape(2, 3, 10, 9, 5, (5, 3), 2, 2, 1, 1),
        // depthwise (groups == c_in): multiplier 1 and 2, stride, dilation
        cshape(2, 6, 9, 9, 6, (3, 3), 1, 1, 1, 6),
        cshape(2, 4, 10, 8, 8, (3, 3), 2, 1, 1, 4),
        cshape(3, 5, 11, 11, 5, (5, 5), 1, 4, 2, 5),
        cshape(1, 3, 7, 7, 3, (3, 3), 2, 0, 1, 3),
    ];
    for (ci, s) in cases.iter().enumerate() {
        let (xl, wl, ol) = s.lens().unwrap();
        let x = rng.vec(xl, -1.0, 1.0);
        let w = rng.vec(wl, -1.0, 1.0);
        let bias = rng.vec(s.c_out, -1.0, 1.0);
        let dy = rng.vec(ol, -1.0, 1.0);
        let (dxb, dwb, dyb, db) = (up(&dev, &x), up(&dev, &w), up(&dev, &dy), up(&dev, &bias));
        let k_red = (s.c_in / s.groups * s.kh * s.kw) as f64;
        let tol = 1e-6 * k_red + 1e-6;
        let out = conv::conv2d_forward(&dev, &dxb, &dwb, Some(&db), s).unwrap();
        assert_close(
            &format!("conv fwd case {ci} {s:?}"),
            &down(&out),
            &conv_ref(&x, &w, Some(&bias), s),
            1e-4,
            tol,
        );
        let (wdx, wdw) = conv_backward_ref(&x, &w, &dy, s);
        let gdx = conv::conv2d_backward_input(&dev, &dyb, &dwb, s).unwrap();
        assert_close(
            &format!("conv dx case {ci}"),
            &down(&gdx),
            &wdx,
            1e-4,
            tol * 4.0,
        );
        let (oh, ow) = s.out_hw().unwrap();
        let gdw = conv::conv2d_backward_weight(&dev, &dyb, &dxb, s).unwrap();
        assert_close(
            &format!("conv dw case {ci}"),
            &down(&gdw),
            &wdw,
            1e-4,
            1e-6 * (s.n * oh * ow) as f64,
        );
        if s.is_depthwise() {
            let o = conv::depthwise_forward(&dev, &dxb, &dwb, s).unwrap();
            assert_close(
                &format!("depthwise fwd case {ci}"),
                &down(&o),
                &conv_ref(&x, &w, None, s),
                1e-4,
                tol,
            );
        }
    }
    // Chunked path: force several chunks of images.
    let s = cshape(5, 3, 8, 8, 4, (3, 3), 1, 1, 1, 1);
    let old = conv::set_col_limit(3 * 9 * 64 * 2);
    let (xl, wl, ol) = s.lens().unwrap();
    let x = rng.vec(xl, -1.0, 1.0);
    let w = rng.vec(wl, -1.0, 1.0);
    let dy = rng.vec(ol, -1.0, 1.0);
    let (dxb, dwb, dyb) = (up(&dev, &x), up(&dev, &w), up(&dev, &dy));
    let out = conv::conv2d_forward(&dev, &dxb, &dwb, None, &s);
    let gdx = conv::conv2d_backward_input(&dev, &dyb, &dwb, &s);
    let gdw = conv::conv2d_backward_weight(&dev, &dyb, &dxb, &s);
    conv::set_col_limit(old);
    let (wdx, wdw) = conv_backward_ref(&x, &w, &dy, &s);
    assert_close(
        "conv fwd chunked",
        &down(&out.unwrap()),
        &conv_ref(&x, &w, None, &s),
        1e-4,
        1e-4,
    );
    assert_close("conv dx chunked", &down(&gdx.unwrap()), &wdx, 1e-4, 1e-4);
    assert_close("conv dw chunked", &down(&gdw.unwrap()), &wdw, 1e-4, 1e-3);
    assert!(conv::conv2d_forward(&dev, &dwb, &dxb, None, &s).is_err());
}

fn pool_ref(x: &[f32], s: &Pool2dShape, max: bool) -> (Vec<f64>, Vec<i32>) {
    let (oh, ow) = s.out_hw().unwrap();
    let mut out = Vec::new();
    let mut arg = Vec::new();
    for nc in 0..s.n * s.c {
        for y in 0..oh {
            for xx in 0..ow {
                let (mut best, mut bi, mut sum, mut cnt) = (f64::NEG_INFINITY, -1i32, 0.0, 0);
                for ky in 0..s.kh {
                    for kx in 0..s.kw {
                        let iy = (y * s.stride.0 + ky) as isize - s.padding.0 as isize;
                        let ix = (xx * s.stride.1 + kx) as isize - s.padding.1 as isize;
                        if iy < 0 || ix < 0 || iy >= s.h as isize || ix >= s.w as isize {
                            continue;
                        }
                        let v = f64::from(x[(nc * s.h + iy as usize) * s.w + ix as usize]);
                        if bi < 0 || v > best {
                            best = v;
                            bi = (iy as usize * s.w + ix as usize) as i32;
                        }
                        sum += v;
                        cnt += 1;
                    }
                }
                out.push(if max { best } else { sum / f64::from(cnt) });
                arg.push(bi);
            }
        }
    }
    (out, arg)
}

fn pool_backward_ref(dy: &[f32], s: &Pool2dShape, arg: Option<&[i32]>) -> Vec<f64> {
    let (oh, ow) = s.out_hw().unwrap();
    let mut dx = vec![0.0; s.n * s.c * s.h * s.w];
    for nc in 0..s.n * s.c {
        for y in 0..oh {
            for xx in 0..ow {
                let o = (nc * oh + y) * ow + xx;
                let d = f64::from(dy[o]);
                let mut cells = Vec::new();
                for ky in 0..s.kh {
                    for kx in 0..s.kw {
                        let iy = (y * s.stride.0 + ky) as isize - s.padding.0 as isize;
                        let ix = (xx * s.stride.1 + kx) as isize - s.padding.1 as isize;
                        if iy >= 0 && ix >= 0 && iy < s.h as isize && ix < s.w as isize {
                            cells.push(iy as usize * s.w + ix as usize);
                        }
                    }
                }
                match arg {
                    Some(a) => dx[nc * s.h * s.w + a[o] as usize] += d,
                    None => {
                        for &c in &cells {
                            dx[nc * s.h * s.w + c] += d / cells.len() as f64;
                        }
                    }
                }
            }
        }
    }
    dx
}

#[test]
fn pooling_max_avg_global() {
    let dev = gpu!("pooling_max_avg_global");
    let mut rng = Rng(8);
    let shapes = [
        (3, 3, 2, 1),
        (2, 2, 2, 0),
        (3, 3, 1, 1),
        (2, 3, 1, 0),
        (5, 5, 3, 2),
    ];
    for &(kh, kw, st, pad) in &shapes {
        let s = Pool2dShape {
            n: 2,
            c: 3,
            h: 11,
            w: 9,
            kh,
            kw,
            stride: (st, st),
            padding: (pad, pad.min(kw / 2)),
        };
        let nx = s.n * s.c * s.h * s.w;
        // a coarse grid makes ties: the first maximum must win, as in the reference
        let x: Vec<f32> = rng
            .vec(nx, -2.0, 2.0)
            .iter()
            .map(|v| (v * 2.0).round())
            .collect();
        let dxb = up(&dev, &x);
        let (want, want_arg) = pool_ref(&x, &s, true);
        let (out, arg) = pool::maxpool2d_forward(&dev, &dxb, &s).unwrap();
        assert_close(&format!("maxpool fwd {s:?}"), &down(&out), &want, 0.0, 0.0);
        assert_eq!(arg.to_vec().unwrap(), want_arg, "argmax {s:?}");
        let dy = rng.vec(want.len(), -1.0, 1.0);
        let dyb = up(&dev, &dy);
        let dx = pool::maxpool2d_backward(&dev, &dyb, &arg, &s).unwrap();
        assert_close(
            "maxpool bwd",
            &down(&dx),
            &pool_backward_ref(&dy, &s, Some(&want_arg)),
            1e-5,
            1e-6,
        );
        let (want, _) = pool_ref(&x, &s, false);
        let out = pool::avgpool2d_forward(&dev, &dxb, &s).unwrap();
        assert_close("avgpool fwd", &down(&out), &want, 1e-5, 1e-6);
        let dx = pool::avgpool2d_backward(&dev, &dyb, &s).unwrap();
        assert_close(
            "avgpool bwd",
            &down(&dx),
            &pool_backward_ref(&dy, &s, None),
            1e-5,
            1e-6,
        );
    }
    let (n, c, hw) = (4, 5, 49);
    let x = rng.vec(n * c * hw, -1.0, 1.0);
    let g = pool::global_avgpool_forward(&dev, &up(&dev, &x), n, c, hw).unwrap();
    let want: Vec<f64> = x
        .chunks(hw)
        .map(|p| p.iter().map(|&v| f64::from(v)).sum::<f64>() / hw as f64)
        .collect();
    assert_close("global avgpool fwd", &down(&g), &want, 1e-5, 1e-6);
    let dy = rng.vec(n * c, -1.0, 1.0);
    let dx = pool::global_avgpool_backward(&dev, &up(&dev, &dy), n, c, hw).unwrap();
    let want: Vec<f64> = (0..n * c * hw)
        .map(|i| f64::from(dy[i / hw]) / hw as f64)
        .collect();
    assert_close("global avgpool bwd", &down(&dx), &want, 1e-5, 1e-7);
    let bad = Pool2dShape {
        n: 1,
        c: 1,
        h: 4,
        w: 4,
        kh: 2,
        kw: 2,
        stride: (1, 1),
        padding: (2, 0),
    };
    assert!(pool::maxpool2d_forward(&dev, &up(&dev, &[0.0; 16]), &bad).is_err());
}

#[test]
fn batch_norm_train_eval_backward() {
    let dev = gpu!("batch_norm_train_eval_backward");
    let mut rng = Rng(9);
    for &(n, c, hw, affine) in &[
        (8, 5, 36, true),
        (4, 3, 1, true),
        (16, 7, 9, false),
        (2, 2, 1000, true),
    ] {
        let m = (n * hw) as f64;
        let x = rng.vec(n * c * hw, -2.0, 3.0);
        let gamma = rng.vec(c, 0.5, 1.5);
        let beta = rng.vec(c, -0.5, 0.5);
        let dy = rng.vec(n * c * hw, -1.0, 1.0);
        let (eps, mom) = (1e-5f32, 0.1f32);
        let rm0 = rng.vec(c, -0.1, 0.1);
        let rv0 = rng.vec(c, 0.9, 1.1);
        let (dxb, dg, db, ddy) = (
            up(&dev, &x),
            up(&dev, &gamma),
            up(&dev, &beta),
            up(&dev, &dy),
        );
        let (mut rm, mut rv) = (up(&dev, &rm0), up(&dev, &rv0));
        let (g, b) = if affine {
            (Some(&dg), Some(&db))
        } else {
            (None, None)
        };
        let (y, saved) = norm::batch_norm_forward_train(
            &dev,
            &dxb,
            g,
            b,
            Some((&mut rm, &mut rv)),
            (n, c, hw),
            eps,
            mom,
        )
        .unwrap();
        // reference
        let at = |ni: usize, ch: usize, p: usize| (ni * c + ch) * hw + p;
        let mut wy = vec![0.0; x.len()];
        let mut wdx = vec![0.0; x.len()];
        let (mut wmean, mut winv, mut wrm, mut wrv, mut wdg, mut wdb) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        for ch in 0..c {
            let vals: Vec<usize> = (0..n)
                .flat_map(|ni| (0..hw).map(move |p| (ni, p)))
                .map(|(ni, p)| at(ni, ch, p))
                .collect();
            let mean = vals.iter().map(|&i| f64::from(x[i])).sum::<f64>() / m;
            let var = vals
                .iter()
                .map(|&i| (f64::from(x[i]) - mean).powi(2))
                .sum::<f64>()
                / m;
            let inv = 1.0 / (var + f64::from(eps)).sqrt();
            let (gm, bt) = if affine {
                (f64::from(gamma[ch]), f64::from(beta[ch]))
            } else {
                (1.0, 0.0)
            };
            let (mut sdy, mut sdyx) = (0.0, 0.0);
            for &i in &vals {
                let xh = (f64::from(x[i]) - mean) * inv;
                wy[i] = xh * gm + bt;
                sdy += f64::from(dy[i]);
                sdyx += f64::from(dy[i]) * xh;
            }
            for &i in &vals {
                let xh = (f64::from(x[i]) - mean) * inv;
                wdx[i] = gm * inv * (f64::from(dy[i]) - sdy / m - xh * sdyx / m);
            }
            wmean.push(mean);
            winv.push(inv);
            wrm.push(0.9 * f64::from(rm0[ch]) + 0.1 * mean);
            wrv.push(0.9 * f64::from(rv0[ch]) + 0.1 * var * m / (m - 1.0));
            wdg.push(sdyx);
            wdb.push(sdy);
        }
        let tag = format!("bn ({n},{c},{hw}) affine={affine}");
        assert_close(&format!("{tag} y"), &down(&y), &wy, 1e-4, 1e-5);
        assert_close(
            &format!("{tag} mean"),
            &down(&saved.mean),
            &wmean,
            1e-4,
            1e-6,
        );
        assert_close(
            &format!("{tag} invstd"),
            &down(&saved.invstd),
            &winv,
            1e-4,
            1e-6,
        );
        assert_close(&format!("{tag} running mean"), &down(&rm), &wrm, 1e-4, 1e-6);
        assert_close(&format!("{tag} running var"), &down(&rv), &wrv, 1e-4, 1e-6);
        let grads = norm::batch_norm_backward(&dev, &ddy, &dxb, &saved, g, (n, c, hw)).unwrap();
        assert_close(&format!("{tag} dx"), &down(&grads.dx), &wdx, 1e-4, 1e-5);
        if affine {
            assert_close(
                &format!("{tag} dgamma"),
                &down(grads.dgamma.as_ref().unwrap()),
                &wdg,
                1e-4,
                1e-6 * m,
            );
            assert_close(
                &format!("{tag} dbeta"),
                &down(grads.dbeta.as_ref().unwrap()),
                &wdb,
                1e-4,
                1e-6 * m,
            );
        } else {
            assert!(grads.dgamma.is_none());
        }
        let ye =
            norm::batch_norm_forward_eval(&dev, &dxb, g, b, &rm, &rv, (n, c, hw), eps).unwrap();
        let rmv = down(&rm);
        let rvv = down(&rv);
        let want: Vec<f64> = (0..x.len())
            .map(|i| {
                let ch = (i / hw) % c;
                let (gm, bt) = if affine {
                    (f64::from(gamma[ch]), f64::from(beta[ch]))
                } else {
                    (1.0, 0.0)
                };
                (f64::from(x[i]) - f64::from(rmv[ch]))
                    / (f64::from(rvv[ch]) + f64::from(eps)).sqrt()
                    * gm
                    + bt
            })
            .collect();
        assert_close(&format!("{tag} eval"), &down(&ye), &want, 1e-5, 1e-6);
    }
}

#[test]
fn softmax_log_softmax_cross_entropy() {
    let dev = gpu!("softmax_log_softmax_cross_entropy");
    let mut rng = Rng(10);
    for &(rows, cols) in &[(7, 10), (3, 1000), (33, 3), (2, 4097)] {
        let mut x = rng.vec(rows * cols, -5.0, 5.0);
        x[0] = 80.0; // large logits must not overflow
        let dy = rng.vec(rows * cols, -1.0, 1.0);
        let (dxb, ddy) = (up(&dev, &x), up(&dev, &dy));
        let mut sm = vec![0.0; x.len()];
        let mut lsm = vec![0.0; x.len()];
        for r in 0..rows {
            let row = &x[r * cols..(r + 1) * cols];
            let m = row
                .iter()
                .fold(f64::NEG_INFINITY, |a, &v| a.max(f64::from(v)));
            let s: f64 = row.iter().map(|&v| (f64::from(v) - m).exp()).sum();
            for j in 0..cols {
                sm[r * cols + j] = (f64::from(row[j]) - m).exp() / s;
                lsm[r * cols + j] = f64::from(row[j]) - m - s.ln();
            }
        }
        let y = softmax::softmax_forward(&dev, &dxb, rows, cols, false).unwrap();
        assert_close(
            &format!("softmax {rows}x{cols}"),
            &down(&y),
            &sm,
            1e-4,
            1e-7,
        );
        let ly = softmax::softmax_forward(&dev, &dxb, rows, cols, true).unwrap();
        assert_close(
            &format!("log_softmax {rows}x{cols}"),
            &down(&ly),
            &lsm,
            1e-4,
            1e-5,
        );
        let mut wdx = vec![0.0; x.len()];
        let mut wldx = vec![0.0; x.len()];
        for r in 0..rows {
            let o = r * cols;
            let s: f64 = (0..cols).map(|j| f64::from(dy[o + j]) * sm[o + j]).sum();
            let sl: f64 = (0..cols).map(|j| f64::from(dy[o + j])).sum();
            for j in 0..cols {
                wdx[o + j] = sm[o + j] * (f64::from(dy[o + j]) - s);
                wldx[o + j] = f64::from(dy[o + j]) - sm[o + j] * sl;
            }
        }
        let dx = softmax::softmax_backward(&dev, &ddy, &y, rows, cols, false).unwrap();
        assert_close("softmax bwd", &down(&dx), &wdx, 1e-4, 1e-6);
        let dx = softmax::softmax_backward(&dev, &ddy, &ly, rows, cols, true).unwrap();
        assert_close("log_softmax bwd", &down(&dx), &wldx, 1e-4, 1e-5);
        // cross-entropy with one ignored row
        let mut labels: Vec<i32> = (0..rows).map(|_| rng.below(cols) as i32).collect();
        labels[rows - 1] = -1;
        let dloss = rng.vec(rows, 0.1, 1.0);
        let lb = upi(&dev, &labels);
        let loss = softmax::cross_entropy_forward(&dev, &dxb, &lb, rows, cols).unwrap();
        let wl: Vec<f64> = (0..rows)
            .map(|r| {
                if labels[r] < 0 {
                    0.0
                } else {
                    -lsm[r * cols + labels[r] as usize]
                }
            })
            .collect();
        assert_close("cross_entropy fwd", &down(&loss), &wl, 1e-4, 1e-5);
        let g = softmax::cross_entropy_backward(&dev, &dxb, &lb, &up(&dev, &dloss), rows, cols)
            .unwrap();
        let wg: Vec<f64> = (0..rows * cols)
            .map(|i| {
                let (r, j) = (i / cols, i % cols);
                if labels[r] < 0 {
                    0.0
                } else {
                    (sm[i] - f64::from(u8::from(j == labels[r] as usize))) * f64::from(dloss[r])
                }
            })
            .collect();
        assert_close("cross_entropy bwd", &down(&g), &wg, 1e-4, 1e-6);
    }
}

#[test]
fn embedding_gather_scatter() {
    let dev = gpu!("embedding_gather_scatter");
    let mut rng = Rng(11);
    let (vocab, dim) = (50, 24);
    let table = rng.vec(vocab * dim, -1.0, 1.0);
    let mut idx: Vec<i32> = (0..300).map(|_| rng.below(vocab) as i32).collect();
    idx[7] = idx[3]; // repeats accumulate
    idx[10] = -1; // out of range: zero row, no gradient
    idx[11] = vocab as i32;
    let (tb, ib) = (up(&dev, &table), upi(&dev, &idx));
    let out = embedding::embedding_forward(&dev, &tb, &ib, vocab, dim).unwrap();
    let want: Vec<f64> = (0..idx.len() * dim)
        .map(|i| {
            let k = idx[i / dim];
            if (0..vocab as i32).contains(&k) {
                f64::from(table[k as usize * dim + i % dim])
            } else {
                0.0
            }
        })
        .collect();
    assert_close("embedding fwd", &down(&out), &want, 0.0, 0.0);
    let dout = rng.vec(idx.len() * dim, -1.0, 1.0);
    let init = rng.vec(vocab * dim, -1.0, 1.0);
    let mut dt = up(&dev, &init);
    embedding::embedding_backward(&dev, &mut dt, &up(&dev, &dout), &ib, vocab, dim).unwrap();
    let mut want = f64s(&init);
    for (i, &k) in idx.iter().enumerate() {
        if (0..vocab as i32).contains(&k) {
            for d in 0..dim {
                want[k as usize * dim + d] += f64::from(dout[i * dim + d]);
            }
        }
    }
    assert_close("embedding bwd (scatter-add)", &down(&dt), &want, 1e-5, 1e-5);
}

#[test]
fn lstm_cell_forward_backward() {
    let dev = gpu!("lstm_cell_forward_backward");
    let mut rng = Rng(12);
    let (b, h) = (5, 37);
    let gates = rng.vec(b * 4 * h, -3.0, 3.0);
    let c_prev = rng.vec(b * h, -1.0, 1.0);
    let dh = rng.vec(b * h, -1.0, 1.0);
    let dcn = rng.vec(b * h, -1.0, 1.0);
    let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
    let out = lstm::lstm_cell_forward(&dev, &up(&dev, &gates), &up(&dev, &c_prev), b, h).unwrap();
    let (mut wh, mut wc, mut wact) = (vec![0.0; b * h], vec![0.0; b * h], vec![0.0; 4 * b * h]);
    for t in 0..b * h {
        let (bi, j) = (t / h, t % h);
        let g0 = bi * 4 * h + j;
        let i = sig(f64::from(gates[g0]));
        let f = sig(f64::from(gates[g0 + h]));
        let g = f64::from(gates[g0 + 2 * h]).tanh();
        let o = sig(f64::from(gates[g0 + 3 * h]));
        wc[t] = f * f64::from(c_prev[t]) + i * g;
        wh[t] = o * wc[t].tanh();
        wact[g0] = i;
        wact[g0 + h] = f;
        wact[g0 + 2 * h] = g;
        wact[g0 + 3 * h] = o;
    }
    assert_close("lstm h", &down(&out.h), &wh, 1e-5, 1e-6);
    assert_close("lstm c", &down(&out.c), &wc, 1e-5, 1e-6);
    assert_close("lstm act", &down(&out.act), &wact, 1e-5, 1e-6);
    for with_dc in [false, true] {
        let dcb = up(&dev, &dcn);
        let (dg, dcp) = lstm::lstm_cell_backward(
            &dev,
            &up(&dev, &dh),
            with_dc.then_some(&dcb),
            &out.act,
            &out.c,
            &up(&dev, &c_prev),
            b,
            h,
        )
        .unwrap();
        let (mut wdg, mut wdc) = (vec![0.0; 4 * b * h], vec![0.0; b * h]);
        for t in 0..b * h {
            let (bi, j) = (t / h, t % h);
            let g0 = bi * 4 * h + j;
            let (i, f, g, o) = (wact[g0], wact[g0 + h], wact[g0 + 2 * h], wact[g0 + 3 * h]);
            let tc = wc[t].tanh();
            let d_h = f64::from(dh[t]);
            let dc = if with_dc { f64::from(dcn[t]) } else { 0.0 } + d_h * o * (1.0 - tc * tc);
            wdg[g0] = dc * g * i * (1.0 - i);
            wdg[g0 + h] = dc * f64::from(c_prev[t]) * f * (1.0 - f);
            wdg[g0 + 2 * h] = dc * i * (1.0 - g * g);
            wdg[g0 + 3 * h] = d_h * tc * o * (1.0 - o);
            wdc[t] = dc * f;
        }
        assert_close(
            &format!("lstm dgates dc_next={with_dc}"),
            &down(&dg),
            &wdg,
            1e-4,
            1e-6,
        );
        assert_close(
            &format!("lstm dc_prev dc_next={with_dc}"),
            &down(&dcp),
            &wdc,
            1e-4,
            1e-6,
        );
    }
}
