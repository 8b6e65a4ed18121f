//! The child CNN's ops: convolutions (general, grouped, depthwise, strided, dilated),
//! pooling, batch norm, softmax, cross-entropy, mse, dropout and drop-path.

use crate::harness::{assert_close, gpu, parity, rand};
use autograd::Device;
use autograd::ops::batchnorm::{BatchNormMode, batch_norm};
use autograd::ops::conv::Conv2dParams;
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;

const EW: f64 = 1e-4;
const RED: f64 = 1e-3;

#[test]
fn convolutions() {
    let Some(dev) = gpu() else { return };
    let x = rand(&[2, 4, 9, 8], -1.0, 1.0, 40);
    let cases: &[(&str, [usize; 4], Conv2dParams, bool)] = &[
        (
            "conv 3x3",
            [6, 4, 3, 3],
            Conv2dParams::new(1, 1, 1, 1),
            true,
        ),
        (
            "conv 1x1 no bias",
            [5, 4, 1, 1],
            Conv2dParams::new(1, 0, 1, 1),
            false,
        ),
        (
            "conv stride 2",
            [6, 4, 3, 3],
            Conv2dParams::new(2, 1, 1, 1),
            true,
        ),
        (
            "conv dilated",
            [6, 4, 3, 3],
            Conv2dParams::new(1, 2, 2, 1),
            false,
        ),
        (
            "conv grouped",
            [6, 2, 3, 3],
            Conv2dParams::new(1, 1, 1, 2),
            true,
        ),
        (
            "depthwise 5x5",
            [4, 1, 5, 5],
            Conv2dParams::new(1, 2, 1, 4),
            false,
        ),
        (
            "depthwise stride 2",
            [4, 1, 3, 3],
            Conv2dParams::new(2, 1, 1, 4),
            true,
        ),
    ];
    for (i, (name, ws, p, with_bias)) in cases.iter().enumerate() {
        let w = rand(ws, -0.5, 0.5, 50 + i as u64);
        let b = rand(&[ws[0]], -0.5, 0.5, 60 + i as u64);
        let p = *p;
        if *with_bias {
            parity(name, &dev, &[x.clone(), w, b], RED, move |t| {
                t[0].conv2d(&t[1], Some(&t[2]), p)
            });
        } else {
            parity(name, &dev, &[x.clone(), w], RED, move |t| {
                t[0].conv2d(&t[1], None, p)
            });
        }
    }
}

#[test]
fn pooling() {
    let Some(dev) = gpu() else { return };
    let x = rand(&[2, 3, 9, 8], -1.0, 1.0, 41);
    parity("max_pool 3x3/1 pad 1", &dev, &[x.clone()], EW, |t| {
        t[0].max_pool2d((3, 3), (1, 1), (1, 1))
    });
    parity("max_pool 2x2/2", &dev, &[x.clone()], EW, |t| {
        t[0].max_pool2d((2, 2), (2, 2), (0, 0))
    });
    parity("avg_pool 3x3/2 pad 1", &dev, &[x.clone()], EW, |t| {
        t[0].avg_pool2d((3, 3), (2, 2), (1, 1))
    });
    parity("global_avg_pool", &dev, &[x], RED, |t| {
        t[0].global_avg_pool()
    });
}

#[test]
fn batch_norm_modes() {
    let Some(dev) = gpu() else { return };
    let x = rand(&[4, 3, 5, 6], -2.0, 2.0, 42);
    let gamma = rand(&[3], 0.5, 1.5, 43);
    let beta = rand(&[3], -0.5, 0.5, 44);
    let rm = rand(&[3], -0.2, 0.2, 45);
    let rv = rand(&[3], 0.5, 1.5, 46);
    for mode in [
        BatchNormMode::Train,
        BatchNormMode::BatchStatsAlways,
        BatchNormMode::Eval,
    ] {
        let (rm2, rv2) = (rm.clone(), rv.clone());
        parity(
            &format!("batch_norm {mode:?}"),
            &dev,
            &[x.clone(), gamma.clone(), beta.clone()],
            RED,
            move |t| {
                let dev = t[0].device().clone();
                let (m, v) = (rm2.to(&dev), rv2.to(&dev));
                batch_norm(
                    &t[0],
                    Some(&t[1]),
                    Some(&t[2]),
                    Some((&m, &v)),
                    mode,
                    0.1,
                    1e-5,
                )
                .output
            },
        );
    }
    let x2 = rand(&[8, 5], -2.0, 2.0, 47);
    parity("batch_norm (N, C) no affine", &dev, &[x2], RED, |t| {
        batch_norm(&t[0], None, None, None, BatchNormMode::Train, 0.1, 1e-5).output
    });
    // Running statistics updated alike.
    let run = |device: &Device| {
        let o = batch_norm(
            &x.to(device),
            None,
            None,
            Some((&rm.to(device), &rv.to(device))),
            BatchNormMode::Train,
            0.1,
            1e-5,
        );
        (
            o.running_mean.unwrap().to_vec::<f32>(),
            o.running_var.unwrap().to_vec::<f32>(),
        )
    };
    let (c, g) = (run(&Device::Cpu), run(&dev));
    assert_close("running mean", &g.0, &c.0, RED);
    assert_close("running var", &g.1, &c.1, RED);
}

#[test]
fn softmax_and_losses() {
    let Some(dev) = gpu() else { return };
    let x = rand(&[6, 11], -3.0, 3.0, 48);
    let x3 = rand(&[3, 7, 4], -3.0, 3.0, 49);
    let t = rand(&[6, 11], -1.0, 1.0, 50);
    parity("softmax last", &dev, &[x.clone()], RED, |t| {
        t[0].softmax(-1)
    });
    parity("log_softmax last", &dev, &[x.clone()], RED, |t| {
        t[0].log_softmax(1)
    });
    parity("softmax middle", &dev, &[x3.clone()], RED, |t| {
        t[0].softmax(1)
    });
    parity("log_softmax first", &dev, &[x3], RED, |t| {
        t[0].log_softmax(0)
    });
    let labels = vec![3usize, 0, 10, 5, 5, 1];
    parity("cross_entropy", &dev, &[x.clone()], RED, move |t| {
        t[0].cross_entropy(&labels)
    });
    parity("mse", &dev, &[x, t], RED, |t| t[0].mse(&t[1]));
}

#[test]
fn dropout_masks_match_the_cpu() {
    let Some(dev) = gpu() else { return };
    let x = rand(&[4, 3, 5, 5], -1.0, 1.0, 51);
    for (name, which) in [("dropout", 0), ("drop_path", 1), ("locked", 2)] {
        parity(name, &dev, &[x.clone()], EW, move |t| {
            let mut rng = Pcg64Mcg::seed_from_u64(9);
            match which {
                0 => t[0].dropout(0.7, &mut rng),
                1 => t[0].drop_path(0.6, &mut rng),
                _ => t[0].locked_dropout(0.8, &mut rng),
            }
        });
    }
    let w = rand(&[10, 4], -1.0, 1.0, 52);
    parity("embedding_dropout", &dev, &[w], EW, |t| {
        t[0].embedding_dropout(0.5, &mut Pcg64Mcg::seed_from_u64(3))
    });
}
