//! Storage, devices, elementwise, unary, reductions, shapes, indexing, matmul, optimisers.

use crate::harness::{assert_close, gpu, parity, rand};
use autograd::nn::Param;
use autograd::optim::{Adam, Optimizer, Sgd, clip_grad_norm};
use autograd::{DType, Device, Tensor};

const EW: f64 = 1e-4;
const RED: f64 = 1e-3;

#[test]
fn to_device_round_trip_and_gradient_flows_back() {
    let Some(dev) = gpu() else { return };
    let x = rand(&[3, 5], -1.0, 1.0, 1);
    let g = x.to(&dev);
    assert_eq!(g.device(), &dev);
    assert_eq!(g.to_vec::<f32>(), x.to_vec::<f32>());
    assert_eq!(g.to(&Device::Cpu).to_vec::<f32>(), x.to_vec::<f32>());
    assert_eq!(g.to_array::<f32>(), *x.array::<f32>());
    // CPU variable -> GPU -> loss: the gradient arrives on the CPU.
    let v = x.requires_grad();
    let loss = v.to(&dev).square().sum();
    let grads = loss.backward();
    let gv = grads.get(&v).unwrap();
    assert_eq!(gv.device(), &Device::Cpu);
    assert_close(
        "2x",
        &gv.to_vec::<f32>(),
        &x.mul_scalar(2.0).to_vec::<f32>(),
        EW,
    );
    // f64 cannot go to a GPU.
    let e = x
        .to_dtype(DType::F64)
        .to_device(&dev)
        .unwrap_err()
        .to_string();
    assert!(e.contains("f32 only"), "{e}");
}

#[test]
fn mixing_devices_panics_naming_both() {
    let Some(dev) = gpu() else { return };
    let a = rand(&[2, 2], -1.0, 1.0, 1);
    let b = a.to(&dev);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| a.add(&b)));
    let msg = r.unwrap_err();
    let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        msg.contains("op add: inputs on different devices: cpu and cuda:0"),
        "{msg}"
    );
}

#[test]
fn binary_broadcasting() {
    let Some(dev) = gpu() else { return };
    let a = rand(&[4, 3, 5], -1.0, 1.0, 1);
    let b = rand(&[3, 1], -1.0, 1.0, 2);
    let pos = rand(&[3, 1], 0.5, 2.0, 3);
    parity("add", &dev, &[a.clone(), b.clone()], EW, |t| {
        t[0].add(&t[1])
    });
    parity("sub", &dev, &[a.clone(), b.clone()], EW, |t| {
        t[0].sub(&t[1])
    });
    parity("mul", &dev, &[a.clone(), b.clone()], EW, |t| {
        t[0].mul(&t[1])
    });
    parity("div", &dev, &[a.clone(), pos], EW, |t| t[0].div(&t[1]));
    parity("maximum", &dev, &[a.clone(), b.clone()], EW, |t| {
        t[0].maximum(&t[1])
    });
    parity("minimum", &dev, &[a.clone(), b.clone()], EW, |t| {
        t[0].minimum(&t[1])
    });
    parity("scalars", &dev, &[a.clone()], EW, |t| {
        t[0].add_scalar(0.5).mul_scalar(-3.0).neg()
    });
    parity("broadcast_to", &dev, &[b.clone()], EW, |t| {
        t[0].broadcast_to(&[2, 3, 4])
    });
    parity("sum_to_shape", &dev, &[a], RED, |t| {
        t[0].sum_to_shape(&[3, 1])
    });
}

#[test]
fn unary_math_and_activations() {
    let Some(dev) = gpu() else { return };
    let x = rand(&[7, 33], -3.0, 3.0, 4);
    let p = rand(&[7, 33], 0.1, 3.0, 5);
    parity("exp", &dev, &[x.clone()], EW, |t| t[0].exp());
    parity("log", &dev, &[p.clone()], EW, |t| t[0].log());
    parity("sqrt", &dev, &[p.clone()], EW, |t| t[0].sqrt());
    parity("powf", &dev, &[p], EW, |t| t[0].powf(1.7));
    parity("square", &dev, &[x.clone()], EW, |t| t[0].square());
    parity("abs", &dev, &[x.clone()], EW, |t| t[0].abs());
    parity("relu", &dev, &[x.clone()], EW, |t| t[0].relu());
    parity("tanh", &dev, &[x.clone()], EW, |t| t[0].tanh());
    parity("sigmoid", &dev, &[x.clone()], EW, |t| t[0].sigmoid());
    parity("clamp", &dev, &[x], EW, |t| t[0].clamp(-1.0, 0.5));
}

#[test]
fn reductions() {
    let Some(dev) = gpu() else { return };
    let x = rand(&[4, 6, 5], -1.0, 1.0, 6);
    parity("sum", &dev, &[x.clone()], RED, |t| t[0].sum());
    parity("mean", &dev, &[x.clone()], RED, |t| t[0].mean());
    parity("sum_axes", &dev, &[x.clone()], RED, |t| {
        t[0].sum_axes(&[0, 2], false)
    });
    parity("sum_axes keepdim", &dev, &[x.clone()], RED, |t| {
        t[0].sum_axes(&[1], true)
    });
    parity("mean_axes", &dev, &[x.clone()], RED, |t| {
        t[0].mean_axes(&[-1], false)
    });
    parity("max_axis", &dev, &[x.clone()], RED, |t| {
        t[0].max_axis(1, false)
    });
    parity("max_axis keepdim", &dev, &[x.clone()], RED, |t| {
        t[0].max_axis(-1, true)
    });
    assert_eq!(x.to(&dev).argmax_axis(1), x.argmax_axis(1));
}

#[test]
fn shapes_and_indexing() {
    let Some(dev) = gpu() else { return };
    let x = rand(&[3, 4, 5], -1.0, 1.0, 8);
    let y = rand(&[3, 2, 5], -1.0, 1.0, 9);
    parity("reshape", &dev, &[x.clone()], EW, |t| {
        t[0].reshape(&[12, 5]).tanh()
    });
    parity("permute", &dev, &[x.clone()], EW, |t| {
        t[0].permute(&[2, 0, 1])
    });
    parity("transpose", &dev, &[x.clone()], EW, |t| {
        t[0].transpose(0, -1).contiguous()
    });
    parity("narrow", &dev, &[x.clone()], EW, |t| t[0].narrow(1, 1, 2));
    parity("select", &dev, &[x.clone()], EW, |t| t[0].select(2, 3));
    parity("concat axis 1", &dev, &[x.clone(), y.clone()], EW, |t| {
        Tensor::concat(&[&t[0], &t[1]], 1)
    });
    parity("concat axis 0", &dev, &[x.clone(), x.clone()], EW, |t| {
        Tensor::concat(&[&t[0], &t[1]], 0)
    });
    parity("stack", &dev, &[y.clone(), y.clone()], EW, |t| {
        Tensor::stack(&[&t[0], &t[1]], 1)
    });
    parity("pad", &dev, &[x.clone()], EW, |t| {
        t[0].pad(&[(1, 0), (0, 2), (1, 1)])
    });
    parity("index_select", &dev, &[x.clone()], EW, |t| {
        t[0].index_select(1, &[3, 0, 3, 1])
    });
    let idx: Vec<usize> = (0..3 * 2 * 5).map(|i| (i * 7) % 4).collect();
    parity("gather", &dev, &[x], EW, move |t| {
        t[0].gather(1, &idx, &[3, 2, 5])
    });
}

#[test]
fn matrix_products() {
    let Some(dev) = gpu() else { return };
    let a = rand(&[17, 33], -1.0, 1.0, 10);
    let b = rand(&[33, 9], -1.0, 1.0, 11);
    let a3 = rand(&[3, 17, 33], -1.0, 1.0, 12);
    let b3 = rand(&[3, 33, 9], -1.0, 1.0, 13);
    let w = rand(&[9, 33], -1.0, 1.0, 14);
    let bias = rand(&[9], -1.0, 1.0, 15);
    parity("matmul 2x2", &dev, &[a.clone(), b.clone()], RED, |t| {
        t[0].matmul(&t[1])
    });
    parity("matmul 3x3", &dev, &[a3.clone(), b3], RED, |t| {
        t[0].matmul(&t[1])
    });
    parity("matmul 3x2", &dev, &[a3.clone(), b], RED, |t| {
        t[0].matmul(&t[1])
    });
    parity("matmul_t", &dev, &[a.clone(), w.clone()], RED, |t| {
        t[0].matmul_t(&t[1])
    });
    parity("linear", &dev, &[a3, w, bias], RED, |t| {
        t[0].linear(&t[1], Some(&t[2]))
    });
}

/// Three optimiser steps on the same parameters and gradients, CPU vs GPU.
fn optimiser_parity(name: &str, dev: &Device, make: impl Fn() -> Box<dyn Optimizer>) {
    let values = [rand(&[5, 4], -1.0, 1.0, 20), rand(&[4], -1.0, 1.0, 21)];
    let run = |device: &Device| -> Vec<Vec<f32>> {
        let params: Vec<Param> = values
            .iter()
            .enumerate()
            .map(|(i, v)| Param::new(format!("p{i}"), v.to(device)))
            .collect();
        let mut opt = make();
        for step in 0..3 {
            let x = rand(&[6, 5], -1.0, 1.0, 30 + step).to(device);
            let y = x
                .matmul(&params[0].get())
                .add(&params[1].get())
                .tanh()
                .square()
                .sum();
            let mut grads = y.backward();
            clip_grad_norm(&mut grads, &params, 0.5);
            opt.step(&params, &grads);
        }
        params
            .iter()
            .map(|p| {
                assert_eq!(&p.device(), device, "{name}: parameter moved");
                p.get().to_vec::<f32>()
            })
            .collect()
    };
    let (c, g) = (run(&Device::Cpu), run(dev));
    for (i, (g, c)) in g.iter().zip(&c).enumerate() {
        assert_close(&format!("{name} parameter {i}"), g, c, RED);
    }
}

#[test]
fn optimisers_and_clipping() {
    let Some(dev) = gpu() else { return };
    optimiser_parity("sgd", &dev, || Box::new(Sgd::new(0.1)));
    optimiser_parity("sgd momentum nesterov wd", &dev, || {
        Box::new(
            Sgd::new(0.1)
                .with_momentum(0.9)
                .with_nesterov(true)
                .with_weight_decay(1e-3),
        )
    });
    optimiser_parity("adam", &dev, || {
        Box::new(Adam::new(0.01).with_weight_decay(1e-4))
    });
}
