//! The parity harness: run a function of tensors on the CPU and on the GPU, compare the
//! outputs and the gradients of every input.

use autograd::{Device, Gradients, Tensor};
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;

/// CUDA device 0, or `None` after printing why the test is skipped.
pub fn gpu() -> Option<Device> {
    match Device::cuda(0) {
        Ok(d) => Some(d),
        Err(e) => {
            if std::env::var("OPS_CUDA_REQUIRE_GPU").is_ok_and(|v| v == "1") {
                panic!("OPS_CUDA_REQUIRE_GPU=1 but no CUDA device: {e}");
            }
            println!("skipped: no CUDA device ({e})");
            None
        }
    }
}

/// Uniform f32 samples in `[lo, hi)` on the CPU.
pub fn rand(shape: &[usize], lo: f64, hi: f64, seed: u64) -> Tensor {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    Tensor::uniform(shape, lo, hi, autograd::DType::F32, &mut rng)
}

/// Asserts `|got - want| <= rtol * (|want| + mean|want|)` elementwise, naming the worst.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], rtol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let scale = want.iter().map(|v| v.abs() as f64).sum::<f64>() / want.len().max(1) as f64;
    let mut worst = (0.0f64, usize::MAX);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (g as f64 - w as f64).abs();
        let bound = rtol * (w.abs() as f64 + scale) + 1e-30;
        let bad = err > bound || err.is_nan();
        if bad && (worst.1 == usize::MAX || err / bound > worst.0) {
            worst = (err / bound, i);
        }
        if !g.is_finite() && w.is_finite() {
            panic!("{what}: element {i} is {g} on the GPU, {w} on the CPU");
        }
    }
    assert!(
        worst.1 == usize::MAX,
        "{what}: element {} differs: GPU {} vs CPU {} (rtol {rtol}, {:.1}x the bound)",
        worst.1,
        got[worst.1],
        want[worst.1],
        worst.0
    );
}

/// Runs `f` on `inputs` (f32, CPU) on both devices and compares the output and the
/// gradient of `sum(f(inputs) * w)` with respect to every input.
pub fn parity(
    name: &str,
    dev: &Device,
    inputs: &[Tensor],
    rtol: f64,
    f: impl Fn(&[Tensor]) -> Tensor,
) {
    let run = |device: &Device| -> (Tensor, Vec<Vec<f32>>) {
        let vars: Vec<Tensor> = inputs
            .iter()
            .map(|t| t.to(device).requires_grad())
            .collect();
        let y = f(&vars);
        assert_eq!(
            y.device(),
            device,
            "{name}: output on {}, expected {device}",
            y.device()
        );
        let w = rand(y.shape(), -1.0, 1.0, 7).to(device);
        let grads: Gradients = y.mul(&w).sum().backward();
        let gs = vars
            .iter()
            .map(|v| match grads.get(v) {
                Some(g) => {
                    assert_eq!(g.device(), device, "{name}: gradient on {}", g.device());
                    g.to_vec::<f32>()
                }
                None => vec![0.0; v.numel()],
            })
            .collect();
        (y, gs)
    };
    let (yc, gc) = run(&Device::Cpu);
    let (yg, gg) = run(dev);
    assert_eq!(yc.shape(), yg.shape(), "{name}: output shapes differ");
    assert_close(
        &format!("{name} forward"),
        &yg.to_vec::<f32>(),
        &yc.to_vec::<f32>(),
        rtol,
    );
    for (i, (g, c)) in gg.iter().zip(&gc).enumerate() {
        assert_close(&format!("{name} gradient of input {i}"), g, c, rtol);
    }
}
