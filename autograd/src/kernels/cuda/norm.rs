//! Batch normalisation kernels on the GPU (training statistics: `ops-cuda`'s fused
//! kernels). The evaluation mode is composed of tensor ops by the op (`ops::batchnorm`).

use super::{CudaStorage, check, wrap};
use ops_cuda::kernels::norm;
pub use ops_cuda::kernels::norm::BatchNormSaved;
use ops_cuda::kernels::reduce::{self, ReduceOp};

/// `(n, c, hw)` of an `(N, C, ...)` shape.
fn dims(s: &[usize]) -> (usize, usize, usize) {
    (s[0], s[1], s[2..].iter().product::<usize>())
}

/// Training forward: `(y, saved statistics, updated copies of the running statistics)`.
pub fn batch_norm_train(
    x: &CudaStorage,
    gamma: Option<&CudaStorage>,
    beta: Option<&CudaStorage>,
    running: Option<(&CudaStorage, &CudaStorage)>,
    momentum: f64,
    eps: f64,
) -> (
    CudaStorage,
    BatchNormSaved,
    Option<(CudaStorage, CudaStorage)>,
) {
    const OP: &str = "batch_norm";
    let (n, c, hw) = dims(&x.shape);
    // The running statistics are copied and updated on the device.
    let mut new_running =
        running.map(|(rm, rv)| (check(OP, rm.buf.try_clone()), check(OP, rv.buf.try_clone())));
    let (y, saved) = check(
        OP,
        norm::batch_norm_forward_train(
            x.device(),
            &x.buf,
            gamma.map(|g| &*g.buf),
            beta.map(|b| &*b.buf),
            new_running.as_mut().map(|(m, v)| (m, v)),
            (n, c, hw),
            eps as f32,
            momentum as f32,
        ),
    );
    let new_running = new_running.map(|(m, v)| (wrap(m, &[c]), wrap(v, &[c])));
    (wrap(y, &x.shape), saved, new_running)
}

/// Training backward: `(dx, dgamma if gamma, dbeta if need_beta)`.
pub fn batch_norm_train_backward(
    dy: &CudaStorage,
    x: &CudaStorage,
    saved: &BatchNormSaved,
    gamma: Option<&CudaStorage>,
    need_beta: bool,
) -> (CudaStorage, Option<CudaStorage>, Option<CudaStorage>) {
    const OP: &str = "batch_norm backward";
    let dev = dy.device();
    let (n, c, hw) = dims(&x.shape);
    let gr = check(
        OP,
        norm::batch_norm_backward(
            dev,
            &dy.buf,
            &x.buf,
            saved,
            gamma.map(|g| &*g.buf),
            (n, c, hw),
        ),
    );
    let dgamma = gr.dgamma.map(|g| wrap(g, &[c]));
    let dbeta = need_beta.then(|| match gr.dbeta {
        Some(b) if gamma.is_some() => wrap(b, &[c]),
        _ => {
            let axes: Vec<usize> = (0..dy.shape.len()).filter(|&a| a != 1).collect();
            let b = check(
                OP,
                reduce::reduce(dev, ReduceOp::Sum, &dy.buf, &dy.shape, &axes),
            );
            wrap(b, &[c])
        }
    });
    (wrap(gr.dx, &x.shape), dgamma, dbeta)
}
