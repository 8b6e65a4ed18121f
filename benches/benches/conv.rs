//! Convolution throughput through the autograd API (`Tensor::conv2d` + `backward_with`), f32.
//!
//! * General conv (im2col + GEMM): 3x3, pad 1, 64 images of 32x32, 16->32 and 64->64
//!   channels; forward alone and forward + backward (input and weight gradients).
//! * Depthwise conv (direct loop): 3x3 pad 1 and 5x5 pad 2, input (64, 64, 32, 32) and
//!   NAO's supernet size (64, 20, 32, 32); the child CNN's shapes (workload C: 16 channels
//!   at 32x32, 32 at 16x16, stride 1 and 2, a dilated 3x3 at 8x8); forward and
//!   forward + backward.
//!
//! Throughput is set to the convolution's FLOPs (2 per multiply-add; backward = 2x forward),
//! so criterion's "elem/s" reads as FLOP/s.
//!
//! Run: `cargo bench -p nao-benches --bench conv -- --warm-up-time 1 --measurement-time 3`.

use autograd::ops::conv::Conv2dParams;
use autograd::{DType, Tensor};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;

struct Case {
    name: &'static str,
    x: [usize; 4],
    w: [usize; 4],
    p: Conv2dParams,
}

fn flops(c: &Case) -> u64 {
    let [n, _, h, w] = c.x;
    let [cout, cin_g, kh, kw] = c.w;
    let ho = (h + 2 * c.p.padding.0 - kh) / c.p.stride.0 + 1;
    let wo = (w + 2 * c.p.padding.1 - kw) / c.p.stride.1 + 1;
    (2 * n * cout * ho * wo * cin_g * kh * kw) as u64
}

fn bench_conv(cr: &mut Criterion) {
    // The nao binary's heap policy and float mode, so that the numbers time what `nao` runs.
    autograd::configure_training_process();
    let cases = [
        Case {
            name: "conv3x3_16to32_b64_32x32",
            x: [64, 16, 32, 32],
            w: [32, 16, 3, 3],
            p: Conv2dParams::new(1, 1, 1, 1),
        },
        Case {
            name: "conv3x3_64to64_b64_32x32",
            x: [64, 64, 32, 32],
            w: [64, 64, 3, 3],
            p: Conv2dParams::new(1, 1, 1, 1),
        },
        Case {
            name: "dw3x3_64x64x32x32",
            x: [64, 64, 32, 32],
            w: [64, 1, 3, 3],
            p: Conv2dParams::new(1, 1, 1, 64),
        },
        Case {
            name: "dw5x5_64x64x32x32",
            x: [64, 64, 32, 32],
            w: [64, 1, 5, 5],
            p: Conv2dParams::new(1, 2, 1, 64),
        },
        Case {
            name: "dw3x3_64x20x32x32",
            x: [64, 20, 32, 32],
            w: [20, 1, 3, 3],
            p: Conv2dParams::new(1, 1, 1, 20),
        },
        Case {
            name: "dw5x5_64x20x32x32",
            x: [64, 20, 32, 32],
            w: [20, 1, 5, 5],
            p: Conv2dParams::new(1, 2, 1, 20),
        },
        Case {
            name: "dw3x3_64x16x32x32",
            x: [64, 16, 32, 32],
            w: [16, 1, 3, 3],
            p: Conv2dParams::new(1, 1, 1, 16),
        },
        Case {
            name: "dw5x5_64x32x16x16",
            x: [64, 32, 16, 16],
            w: [32, 1, 5, 5],
            p: Conv2dParams::new(1, 2, 1, 32),
        },
        Case {
            name: "dw3x3_s2_64x16x32x32",
            x: [64, 16, 32, 32],
            w: [16, 1, 3, 3],
            p: Conv2dParams::new(2, 1, 1, 16),
        },
        Case {
            name: "dw5x5_s2_64x32x16x16",
            x: [64, 32, 16, 16],
            w: [32, 1, 5, 5],
            p: Conv2dParams::new(2, 2, 1, 32),
        },
        Case {
            name: "dw3x3_d2_64x64x8x8",
            x: [64, 64, 8, 8],
            w: [64, 1, 3, 3],
            p: Conv2dParams::new(1, 2, 2, 64),
        },
        Case {
            name: "pw1x1_20to20_b64_32x32",
            x: [64, 20, 32, 32],
            w: [20, 20, 1, 1],
            p: Conv2dParams::default(),
        },
    ];
    let mut rng = Pcg64Mcg::seed_from_u64(7);
    let mut group = cr.benchmark_group("conv");
    group.sample_size(20);
    for c in &cases {
        let x = Tensor::randn(&c.x, 1.0, DType::F32, &mut rng).requires_grad();
        let w = Tensor::randn(&c.w, 0.1, DType::F32, &mut rng).requires_grad();
        let f = flops(c);
        group.throughput(Throughput::Elements(f));
        group.bench_function(format!("{}/fwd", c.name), |b| {
            b.iter(|| autograd::no_grad(|| x.conv2d(&w, None, c.p)))
        });
        let dy = Tensor::randn(x.conv2d(&w, None, c.p).shape(), 1.0, DType::F32, &mut rng);
        group.throughput(Throughput::Elements(3 * f));
        group.bench_function(format!("{}/fwd_bwd", c.name), |b| {
            b.iter(|| {
                let y = x.conv2d(&w, None, c.p);
                let g = y.backward_with(&dy);
                assert!(g.get(&w).is_some());
                g
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_conv);
criterion_main!(benches);
