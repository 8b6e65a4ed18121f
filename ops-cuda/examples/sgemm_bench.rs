//! SGEMM and convolution timings on the GPU (the bench hook for `tools/gpu-check.sh`).
//!
//! `cargo run --release -p ops-cuda --features cuda --example sgemm_bench -- [SIZE] [REPS]`
//! prints GFLOP/s for square SGEMMs of SIZE (default 2048) with both tilings and all transposes,
//! then forward/backward timings of a few CNN-shaped convolutions.

use std::time::Instant;

use ops_cuda::CudaBuffer;
use ops_cuda::CudaDevice;
use ops_cuda::kernels::conv::{self, Conv2dShape};
use ops_cuda::kernels::gemm::{self, GemmDesc, GemmTile};

fn time<F: FnMut()>(dev: &CudaDevice, reps: usize, mut f: F) -> f64 {
    f();
    dev.synchronize().unwrap();
    let t = Instant::now();
    for _ in 0..reps {
        f();
    }
    dev.synchronize().unwrap();
    t.elapsed().as_secs_f64() / reps as f64
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let size: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(2048);
    let reps: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(20);
    let dev = match CudaDevice::new(0) {
        Ok(d) => d,
        Err(e) => {
            println!("skipped: no CUDA device ({e})");
            return;
        }
    };
    println!("device: {} (ordinal {})", dev.name(), dev.ordinal());
    let n = size;
    let a: Vec<f32> = (0..n * n)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
        .collect();
    let da = CudaBuffer::from_slice(&dev, &a).unwrap();
    let db = da.try_clone().unwrap();
    let mut dc = CudaBuffer::<f32>::zeros(&dev, n * n).unwrap();
    let flops = 2.0 * (n as f64).powi(3);
    for tile in [GemmTile::T128, GemmTile::T64] {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let mut d = GemmDesc::new(ta, tb, n, n, n);
            d.tile = tile;
            let s = time(&dev, reps, || {
                gemm::sgemm(&dev, &d, &da, &db, &mut dc).unwrap()
            });
            println!(
                "sgemm {n}x{n}x{n} {tile:?} ta={ta} tb={tb}: {:.3} ms, {:.0} GFLOP/s",
                s * 1e3,
                flops / s / 1e9
            );
        }
    }
    // batched small GEMMs (LSTM-like: 64 x 4H=400 x K=100)
    let (bm, bn, bk, batch) = (64, 400, 100, 64);
    let a = CudaBuffer::<f32>::filled(&dev, batch * bm * bk, 0.01).unwrap();
    let b = CudaBuffer::<f32>::filled(&dev, batch * bk * bn, 0.01).unwrap();
    let mut c = CudaBuffer::<f32>::zeros(&dev, batch * bm * bn).unwrap();
    let d = GemmDesc::new(false, false, bm, bn, bk).batched(batch);
    let s = time(&dev, reps, || {
        gemm::sgemm(&dev, &d, &a, &b, &mut c).unwrap()
    });
    println!(
        "sgemm batched {batch}x({bm}x{bn}x{bk}): {:.3} ms, {:.0} GFLOP/s",
        s * 1e3,
        2.0 * (batch * bm * bn * bk) as f64 / s / 1e9
    );

    let convs = [
        (
            "3x3 c64 32x32 n128",
            Conv2dShape {
                n: 128,
                c_in: 64,
                h: 32,
                w: 32,
                c_out: 64,
                kh: 3,
                kw: 3,
                stride: (1, 1),
                padding: (1, 1),
                dilation: (1, 1),
                groups: 1,
            },
        ),
        (
            "1x1 c128 16x16 n128",
            Conv2dShape {
                n: 128,
                c_in: 128,
                h: 16,
                w: 16,
                c_out: 128,
                kh: 1,
                kw: 1,
                stride: (1, 1),
                padding: (0, 0),
                dilation: (1, 1),
                groups: 1,
            },
        ),
        (
            "5x5 dil2 c32 32x32 n64",
            Conv2dShape {
                n: 64,
                c_in: 32,
                h: 32,
                w: 32,
                c_out: 32,
                kh: 5,
                kw: 5,
                stride: (1, 1),
                padding: (4, 4),
                dilation: (2, 2),
                groups: 1,
            },
        ),
        (
            "dw3x3 c64 32x32 n128",
            Conv2dShape {
                n: 128,
                c_in: 64,
                h: 32,
                w: 32,
                c_out: 64,
                kh: 3,
                kw: 3,
                stride: (1, 1),
                padding: (1, 1),
                dilation: (1, 1),
                groups: 64,
            },
        ),
    ];
    for (name, s) in convs {
        let (xl, wl, ol) = s.lens().unwrap();
        let x = CudaBuffer::<f32>::filled(&dev, xl, 0.5).unwrap();
        let w = CudaBuffer::<f32>::filled(&dev, wl, 0.01).unwrap();
        let dy = CudaBuffer::<f32>::filled(&dev, ol, 0.1).unwrap();
        let (oh, ow) = s.out_hw().unwrap();
        let macs = (s.n * s.c_out * oh * ow * (s.c_in / s.groups) * s.kh * s.kw) as f64;
        let r = reps.min(10);
        let f = time(&dev, r, || {
            drop(conv::conv2d_forward(&dev, &x, &w, None, &s).unwrap())
        });
        let bi = time(&dev, r, || {
            drop(conv::conv2d_backward_input(&dev, &dy, &w, &s).unwrap())
        });
        let bw = time(&dev, r, || {
            drop(conv::conv2d_backward_weight(&dev, &dy, &x, &s).unwrap())
        });
        println!(
            "conv {name}: fwd {:.3} ms ({:.0} GFLOP/s), bwd-input {:.3} ms, bwd-weight {:.3} ms",
            f * 1e3,
            2.0 * macs / f / 1e9,
            bi * 1e3,
            bw * 1e3
        );
    }
    println!("pool: {:?}", dev.pool_stats());
}
