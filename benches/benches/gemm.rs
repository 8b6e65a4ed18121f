//! GEMM throughput through autograd's one GEMM wrapper (`autograd::kernels::cpu::gemm`), f32.
//!
//! Criterion's throughput is set to `2*m*n*k` elements, so its "elem/s" reads as FLOP/s.
//! Shapes: square 256/512/1024/2048 (whole pool), the NAO controller's LSTM gate products
//! 100x96x384 and 1x96x384 (GEMV path), and square 512 inside a 1-thread rayon pool.
//!
//! Run: `cargo bench -p nao-benches --bench gemm -- --warm-up-time 1 --measurement-time 3`.

use autograd::kernels::cpu::gemm;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ndarray::Array2;
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use std::hint::black_box;

fn rand_mat(m: usize, n: usize, seed: u64) -> Array2<f32> {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    Array2::from_shape_fn((m, n), |_| rng.random_range(-1.0f32..1.0))
}

fn bench_gemm(c: &mut Criterion) {
    let mut group = c.benchmark_group("sgemm");
    let shapes: &[(&str, usize, usize, usize)] = &[
        ("square_256", 256, 256, 256),
        ("square_512", 512, 512, 512),
        ("square_1024", 1024, 1024, 1024),
        ("square_2048", 2048, 2048, 2048),
        ("lstm_100x96x384", 100, 96, 384),
        ("gemv_1x96x384", 1, 96, 384),
    ];
    for &(name, m, k, n) in shapes {
        let a = rand_mat(m, k, 1);
        let b = rand_mat(k, n, 2);
        let mut out = Array2::<f32>::zeros((m, n));
        group.throughput(Throughput::Elements((2 * m * n * k) as u64));
        if m * n * k >= 1 << 30 {
            group.sample_size(10);
        } else {
            group.sample_size(30);
        }
        group.bench_function(name, |bch| {
            bch.iter(|| {
                gemm(
                    1.0,
                    black_box(a.view()),
                    false,
                    black_box(b.view()),
                    false,
                    0.0,
                    out.view_mut(),
                )
            })
        });
    }
    // One thread: the wrapper stays single-threaded inside a rayon worker.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let (m, k, n) = (512, 512, 512);
    let a = rand_mat(m, k, 1);
    let b = rand_mat(k, n, 2);
    let mut out = Array2::<f32>::zeros((m, n));
    group.throughput(Throughput::Elements((2 * m * n * k) as u64));
    group.sample_size(30);
    group.bench_function("square_512_1thread", |bch| {
        pool.install(|| {
            bch.iter(|| {
                gemm(
                    1.0,
                    black_box(a.view()),
                    false,
                    black_box(b.view()),
                    false,
                    0.0,
                    out.view_mut(),
                )
            })
        })
    });
    group.finish();
}

criterion_group!(benches, bench_gemm);
criterion_main!(benches);
