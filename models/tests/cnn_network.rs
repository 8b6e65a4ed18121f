//! The child CNN: parameter counts (hand-derived and the PyTorch peer's), shapes, modes,
//! determinism and drop-path.

use autograd::nn::Module;
use autograd::{DType, Tensor};
use models::cnn::{CnnConfig, CnnNetwork, Mode};
use models::space::SpaceKind;
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;

/// Workload C's architecture (the peer's CONV_ARCH + REDUC_ARCH), flat form.
const WORKLOAD_C: &str =
    "0 0 1 3 1 3 1 2 0 0 0 4 2 1 0 1 5 1 5 0 | 1 4 1 0 1 0 2 3 0 1 3 3 3 0 1 1 1 0 2 4";

/// Only pools and identities: normal cell
/// `[0 avg, 1 max] [2 id, 2 avg] [3 max, 3 id] [4 id, 4 id] [5 avg, 5 max]` (loose end 6);
/// reduction cell `[1 id, 1 max] [2 avg, 2 id] [3 max, 3 avg] [4 id, 4 max] [5 avg, 5 id]`
/// (loose ends 0 and 6; node 0's identity reads state 1 at stride 2).
const POOLS_ONLY: &str =
    "0 2 1 3 2 4 2 2 3 3 3 4 4 4 4 4 5 2 5 3 | 1 4 1 3 2 2 2 4 3 3 3 2 4 4 4 3 5 2 5 4";

fn rng(seed: u64) -> Pcg64Mcg {
    Pcg64Mcg::seed_from_u64(seed)
}

fn small(aux: bool) -> CnnConfig {
    CnnConfig {
        space: SpaceKind::CnnWs,
        n_cells: 1,
        channels: 4,
        classes: 10,
        dropout_keep: 1.0,
        drop_path_keep: 1.0,
        aux_head: aux,
    }
}

/// Parameter count of `cnn-ws`, N = 1 (5 cells: reductions at 1 and 3), F = 4, 10 classes,
/// architecture [`POOLS_ONLY`], derived by hand. Pools and stride-1 identities have no
/// parameters, so only the stem, calibrations, factorized reduces (FR) and the classifier
/// count. `RCB(a->b)` = ReLU-conv1x1-BN = `a*b + 2b`; `FR(a->b)` = two 1x1 convs `a -> b/2`
/// plus BN(b) = `a*b + 2b`. Sizes are (resolution, channels).
///
/// * stem: conv 3x3 3->12 = 324, BN(12) = 24: **348**. Cell inputs (32,12), (32,12).
/// * cell 0 (normal, c=4): pre_x RCB(12->4) = 56, pre_y RCB(12->4) = 56: **112**; out (32,4).
/// * cell 1 (reduction, c=8), inputs (32,12), (32,4): pre_x RCB(12->8) = 112, pre_y
///   RCB(4->8) = 48; node 0's identity on state 1 at stride 2 = FR(8->8) = 80; loose end 0
///   (32 > 16) = FR(8->8) = 80: **320**; out (16, 2*8 = 16).
/// * cell 2 (normal, c=8), inputs (32,4), (16,16): pre_x FR(4->8) = 48, pre_y RCB(16->8) =
///   144: **192**; out (16,8).
/// * cell 3 (reduction, c=16), inputs (16,16), (16,8): pre_x none (same size and width),
///   pre_y RCB(8->16) = 160; identity FR(16->16) = 288; loose end 0 FR(16->16) = 288:
///   **736**; out (8, 32).
/// * cell 4 (normal, c=16), inputs (16,8), (8,32): pre_x FR(8->16) = 160, pre_y
///   RCB(32->16) = 544: **704**; out (8,16).
/// * classifier 16*10 + 10 = **170**.
///
/// Total 348 + 112 + 320 + 192 + 736 + 704 + 170 = **2582**.
///
/// With the auxiliary head (after cell 3, 32 channels): conv1x1 32->128 = 4096, BN(128) =
/// 256, conv2x2 128->768 = 393216, BN(768) = 1536, linear 768*10 + 10 = 7690: 406794 more,
/// **409376** in all.
#[test]
fn parameter_count_derived_by_hand() {
    let net = CnnNetwork::from_flat(POOLS_ONLY, &small(false), &mut rng(0)).unwrap();
    assert_eq!(net.num_params(), 2582);
    let with_aux = CnnNetwork::from_flat(POOLS_ONLY, &small(true), &mut rng(0)).unwrap();
    assert_eq!(with_aux.num_params(), 409_376);
    // Running statistics are buffers: 2 per BN channel, not counted.
    let buffers: usize = net
        .params()
        .iter()
        .filter(|p| !p.is_trainable())
        .map(|p| p.numel())
        .sum();
    let bn_channels = 12 + (4 + 4) + (8 + 8 + 8 + 8) + (8 + 8) + (16 + 16 + 16) + (16 + 16);
    assert_eq!(buffers, 2 * bn_channels);
    autograd::nn::check_unique(&net.params()).unwrap();
}

/// The peer's workload C child (`nasnet_child.py`: N = 2, F = 16, no aux) has 342,458
/// parameters in PyTorch (BN gamma/beta counted, running statistics not).
#[test]
fn workload_c_matches_the_peer_parameter_count() {
    let net = CnnNetwork::from_flat(WORKLOAD_C, &CnnConfig::workload_c(), &mut rng(0)).unwrap();
    assert_eq!(net.num_params(), 342_458);
    assert_eq!(net.cells.len(), 8);
    autograd::nn::check_unique(&net.params()).unwrap();
}

#[test]
fn shapes_modes_and_running_stats() {
    let cfg = CnnConfig {
        aux_head: true,
        dropout_keep: 0.6,
        drop_path_keep: 0.8,
        ..small(false)
    };
    let net = CnnNetwork::from_flat(WORKLOAD_C, &cfg, &mut rng(1)).unwrap();
    let x = Tensor::randn(&[3, 3, 32, 32], 1.0, DType::F32, &mut rng(2));
    let before = net.stem_bn.running_mean.get().to_vec::<f32>();
    let mut r = rng(3);
    let out = net.forward(&x, &mut Mode::train(&mut r, 0.5));
    assert_eq!(out.logits.shape(), &[3, 10]);
    assert_eq!(out.aux_logits.as_ref().unwrap().shape(), &[3, 10]);
    assert_ne!(net.stem_bn.running_mean.get().to_vec::<f32>(), before);
    let after_train = net.stem_bn.running_mean.get().to_vec::<f32>();
    let ev = autograd::no_grad(|| net.forward(&x, &mut Mode::eval()));
    assert!(ev.aux_logits.is_none());
    assert!(ev.logits.all_finite());
    assert_eq!(net.stem_bn.running_mean.get().to_vec::<f32>(), after_train);
    // Gradients reach every trainable parameter (the aux head included).
    let loss = out.logits.cross_entropy(&[0, 1, 2])
        + out
            .aux_logits
            .unwrap()
            .cross_entropy(&[0, 1, 2])
            .mul_scalar(0.4);
    let grads = loss.backward();
    for p in net.trainable_params() {
        assert!(
            grads.get(&p.get()).is_some(),
            "no gradient for {}",
            p.name()
        );
    }
}

#[test]
fn same_seed_same_network_and_same_training_forward() {
    let cfg = CnnConfig {
        dropout_keep: 0.6,
        drop_path_keep: 0.7,
        ..small(false)
    };
    let x = Tensor::randn(&[2, 3, 32, 32], 1.0, DType::F32, &mut rng(2));
    let run = || {
        let net = CnnNetwork::from_flat(WORKLOAD_C, &cfg, &mut rng(5)).unwrap();
        let mut r = rng(6);
        net.forward(&x, &mut Mode::train(&mut r, 0.9))
            .logits
            .to_vec::<f32>()
    };
    assert_eq!(run(), run());
}

#[test]
fn full_space_network_builds_and_runs() {
    // Every one of the 11 ops appears at least once, some at stride 2.
    let arch = "0 0 1 1 1 2 0 3 2 4 1 5 3 6 0 7 4 8 5 9 | 0 10 1 0 1 1 0 2 2 3 1 4 3 5 0 6 4 7 1 8";
    let cfg = CnnConfig {
        space: SpaceKind::Cnn,
        ..small(false)
    };
    let net = CnnNetwork::from_flat(arch, &cfg, &mut rng(7)).unwrap();
    let x = Tensor::randn(&[2, 3, 32, 32], 1.0, DType::F32, &mut rng(8));
    let mut r = rng(9);
    let out = net.forward(&x, &mut Mode::train(&mut r, 0.3));
    assert_eq!(out.logits.shape(), &[2, 10]);
    assert!(out.logits.all_finite());
}

#[test]
#[should_panic(expected = "does not fit cnn-ws")]
fn ops_of_another_space_are_refused() {
    use models::space::cnn::CnnOp;
    use models::space::{CnnSpace, SearchSpace};
    let s = CnnSpace::WS;
    let mut arch = s.decode(&s.from_text(WORKLOAD_C).unwrap()).unwrap();
    arch.normal.nodes[0].a.op = CnnOp::Conv1x7_7x1;
    let _ = CnnNetwork::new(&arch, &small(false), &mut rng(0));
}
