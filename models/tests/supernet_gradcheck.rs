//! Gradient checks (f64) of the weight-sharing RNN supernet: the loss of one path w.r.t.
//! the shared weights it uses, and the summed loss of two paths that share some slices
//! w.r.t. the union of their weights; weights off the paths get no gradient at all.

use autograd::DType;
use autograd::nn::{Module, Param};
use autograd::testing::{GradcheckOptions, gradcheck_params, rand_f64};
use models::rnn::{RnnConfig, RnnSupernet};
use models::space::RnnSpace;
use models::space::rnn::RnnCell;
use ndarray::Array2;
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;

fn arch(flat: &[usize]) -> RnnCell {
    RnnSpace.decode(&RnnSpace.from_flat(flat).unwrap()).unwrap()
}

/// The PyTorch peer's architecture (all four activations) and the NAO-WS PTB cell: of
/// the node slices they share node 2's (predecessor 1, relu) and nothing else.
const PEER: [usize; 22] = [
    0, 0, 1, 1, 0, 3, 3, 3, 1, 3, 5, 2, 4, 3, 6, 0, 8, 0, 1, 2, 7, 3,
];
const NAO_WS: [usize; 22] = [
    0, 1, 1, 1, 2, 2, 1, 2, 4, 1, 4, 1, 4, 1, 7, 1, 8, 2, 1, 0, 4, 1,
];

/// A small f64 supernet with weights scaled up from ±0.04 so that every nonlinearity
/// works away from its linear region.
fn supernet() -> RnnSupernet {
    let cfg = RnnConfig {
        emb: 3,
        hidden: 3,
        vocab: 6,
        dropout: 0.3,
        dropouth: 0.2,
        dropoutx: 0.25,
        dropouti: 0.2,
        dropoute: 0.3,
        tar_beta: 0.5,
    };
    let net = RnnSupernet::new(&cfg, &mut Pcg64Mcg::seed_from_u64(1));
    net.to_dtype(DType::F64);
    for p in net.params() {
        p.set(autograd::no_grad(|| {
            p.get().mul_scalar(12.0).add_scalar(0.01)
        }));
    }
    net
}

fn names(ps: &[Param]) -> Vec<String> {
    ps.iter().map(|p| p.name().to_string()).collect()
}

#[test]
fn gradcheck_one_path_wrt_its_shared_weights() {
    let net = supernet();
    let a = arch(&PEER);
    let child = net.child(&a);
    let (t, b) = (3, 2);
    let masks = child.sample_masks(b, &mut Pcg64Mcg::seed_from_u64(2));
    assert!(masks.emb_rows.is_some() && masks.h.is_some());
    let ids = Array2::from_shape_fn((t, b), |(i, j)| ((3 * i + 2 * j) % 6) as u32);
    let tgt = Array2::from_shape_fn((t, b), |(i, j)| ((5 * i + j + 1) % 6) as u32);
    let h0 = rand_f64(&[b, 3], 8);
    let loss = || {
        child
            .forward_with_masks(ids.view(), tgt.view(), &h0, Some(&masks))
            .loss
    };
    let path = net.path_params(&a);
    let r = gradcheck_params(loss, &path, GradcheckOptions::default()).unwrap();
    assert_eq!(r.elements, 6 * 3 + 6 + 6 * 6 + 11 * 3 * 6);
    // every other slice: no gradient at all
    let grads = loss().backward();
    let on = names(&path);
    let mut off = 0;
    for p in net.params() {
        if !on.contains(&p.name().to_string()) {
            assert!(grads.get(&p.get()).is_none(), "{} got a gradient", p.name());
            off += 1;
        }
    }
    assert_eq!(off, 264 - 11);
}

#[test]
fn gradcheck_two_paths_that_share_slices() {
    let net = supernet();
    let (a, b) = (arch(&PEER), arch(&NAO_WS));
    let (ca, cb) = (net.child(&a), net.child(&b));
    let (t, n) = (2, 2);
    let ids = Array2::from_shape_fn((t, n), |(i, j)| ((i + 4 * j) % 6) as u32);
    let tgt = Array2::from_shape_fn((t, n), |(i, j)| ((2 * i + j + 3) % 6) as u32);
    let h0 = rand_f64(&[n, 3], 9);
    let mut union = net.path_params(&a);
    for p in net.path_params(&b) {
        if !union.iter().any(|q| q.name() == p.name()) {
            union.push(p);
        }
    }
    // encoder, bias, w0 and node 2's slice are shared; the other 10 nodes differ
    assert_eq!(union.len(), 3 + 11 + 10);
    let r = gradcheck_params(
        || {
            let la = ca
                .forward_with_masks(ids.view(), tgt.view(), &h0, None)
                .loss;
            let lb = cb
                .forward_with_masks(ids.view(), tgt.view(), &h0, None)
                .loss;
            &la + &lb.mul_scalar(0.5)
        },
        &union,
        GradcheckOptions::default(),
    )
    .unwrap();
    assert_eq!(r.elements, 6 * 3 + 6 + 6 * 6 + 21 * 3 * 6);
}
