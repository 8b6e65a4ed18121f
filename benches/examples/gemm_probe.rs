//! Probe: ways of splitting one big SGEMM across the rayon pool (best of N wall times).
use ndarray::{Array2, ArrayView2, ArrayViewMut2, Axis, linalg::general_mat_mul, s};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use rayon::prelude::*;
use std::time::Instant;

fn rand_mat(m: usize, n: usize, seed: u64) -> Array2<f32> {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    Array2::from_shape_fn((m, n), |_| rng.random_range(-1.0f32..1.0))
}

fn rows(a: ArrayView2<f32>, b: ArrayView2<f32>, mut c: ArrayViewMut2<f32>, chunk: usize) {
    let a_rows: Vec<_> = a.axis_chunks_iter(Axis(0), chunk).collect();
    let c_rows: Vec<_> = c.axis_chunks_iter_mut(Axis(0), chunk).collect();
    a_rows.into_par_iter().zip(c_rows).for_each(|(ab, mut cb)| {
        general_mat_mul(1.0, &ab, &b, 0.0, &mut cb);
    });
}

fn cols(a: ArrayView2<f32>, b: ArrayView2<f32>, mut c: ArrayViewMut2<f32>, chunk: usize) {
    let b_cols: Vec<_> = b.axis_chunks_iter(Axis(1), chunk).collect();
    let c_cols: Vec<_> = c.axis_chunks_iter_mut(Axis(1), chunk).collect();
    b_cols.into_par_iter().zip(c_cols).for_each(|(bb, mut cb)| {
        general_mat_mul(1.0, &a, &bb, 0.0, &mut cb);
    });
}

fn blocks(a: ArrayView2<f32>, b: ArrayView2<f32>, mut c: ArrayViewMut2<f32>, mb: usize, nb: usize) {
    let (m, n) = c.dim();
    let mut tiles = Vec::new();
    let mut rest = c.view_mut();
    // split rows then columns
    let mut row_bands = Vec::new();
    let mut r0 = 0;
    while r0 < m {
        let h = mb.min(m - r0);
        let (top, bot) = rest.split_at(Axis(0), h);
        row_bands.push((r0, top));
        rest = bot;
        r0 += h;
    }
    for (r0, mut band) in row_bands {
        let mut c0 = 0;
        loop {
            let w = nb.min(n - c0);
            let (l, r) = band.split_at(Axis(1), w);
            tiles.push((r0, c0, l));
            band = r;
            c0 += w;
            if c0 >= n {
                break;
            }
        }
    }
    tiles.into_par_iter().for_each(|(r0, c0, mut t)| {
        let (h, w) = t.dim();
        general_mat_mul(
            1.0,
            &a.slice(s![r0..r0 + h, ..]),
            &b.slice(s![.., c0..c0 + w]),
            0.0,
            &mut t,
        );
    });
}

fn best(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::MAX, f64::min)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().unwrap())
        .unwrap_or(2048);
    let reps: usize = std::env::args()
        .nth(2)
        .map(|s| s.parse().unwrap())
        .unwrap_or(5);
    let a = rand_mat(n, n, 1);
    let b = rand_mat(n, n, 2);
    let mut c = Array2::<f32>::zeros((n, n));
    let fl = 2.0 * (n * n * n) as f64 / 1e9;
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let t = one.install(|| best(reps, || general_mat_mul(1.0, &a, &b, 0.0, &mut c)));
    println!("n={n} 1-thread whole        {:7.1} GFLOP/s", fl / t);
    type Variant<'a> = (&'static str, Box<dyn Fn(ArrayViewMut2<f32>) + 'a>);
    let variants: Vec<Variant> = vec![
        (
            "rows 4 bands (current)",
            Box::new(|c| rows(a.view(), b.view(), c, n / 4)),
        ),
        (
            "rows 2 bands",
            Box::new(|c| rows(a.view(), b.view(), c, n / 2)),
        ),
        (
            "rows 64-row bands",
            Box::new(|c| rows(a.view(), b.view(), c, 64)),
        ),
        (
            "rows 256-row bands",
            Box::new(|c| rows(a.view(), b.view(), c, 256)),
        ),
        (
            "cols 2 bands",
            Box::new(|c| cols(a.view(), b.view(), c, n / 2)),
        ),
        (
            "cols 1024",
            Box::new(|c| cols(a.view(), b.view(), c, 1024.min(n / 2))),
        ),
        ("cols 256", Box::new(|c| cols(a.view(), b.view(), c, 256))),
        (
            "2d 2x2",
            Box::new(|c| blocks(a.view(), b.view(), c, n / 2, n / 2)),
        ),
        (
            "2d 256x1024",
            Box::new(|c| blocks(a.view(), b.view(), c, 256, 1024.min(n))),
        ),
        (
            "2d 512x512",
            Box::new(|c| blocks(a.view(), b.view(), c, 512.min(n), 512.min(n))),
        ),
    ];
    // Interleaved rounds: the best of every variant over all rounds, so a burst of
    // outside load hits all variants alike.
    let rounds: usize = std::env::args()
        .nth(3)
        .map(|s| s.parse().unwrap())
        .unwrap_or(3);
    let mut bests = vec![f64::MAX; variants.len()];
    for _ in 0..rounds {
        for (i, (_, f)) in variants.iter().enumerate() {
            bests[i] = bests[i].min(best(reps, || f(c.view_mut())));
        }
    }
    for ((name, _), t) in variants.iter().zip(bests) {
        println!("n={n} 2-thr {name:<22} {:7.1} GFLOP/s", fl / t);
    }
}
