//! Gradient checks (f64) of whole cells that contain every op of each CNN space, with
//! batch norm in Train mode and drop-path off: with respect to every parameter
//! (`gradcheck_params`) and the two cell inputs.

use autograd::nn::Module;
use autograd::testing::{GradcheckOptions, gradcheck, gradcheck_params, rand_f64};
use autograd::{DType, Tensor};
use models::cnn::{Cell, Mode};
use models::space::{CnnSpace, SearchSpace};
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;

/// Builds one cell from a 20-integer flat cell (used as both cells of an architecture) and
/// checks it on inputs `s0`, `s1` of the given shapes.
fn check_cell(
    space: CnnSpace,
    flat_cell: &str,
    reduction: bool,
    s0: [usize; 4],
    s1: [usize; 4],
    c: usize,
) {
    let text = format!("{flat_cell} | {flat_cell}");
    let arch = space.decode(&space.from_text(&text).unwrap()).unwrap();
    let mut rng = Pcg64Mcg::seed_from_u64(11);
    let cell = Cell::new(
        "cell",
        &arch.normal,
        (s0[2], s0[1]),
        (s1[2], s1[1]),
        c,
        reduction,
        0,
        1,
        0.5, // the schedule would drop paths; Mode::train_deterministic draws no masks
        &mut rng,
    );
    cell.to_dtype(DType::F64);
    // Move BN affine parameters off their 1/0 start so their gradients are generic.
    for (i, p) in cell.trainable_params().iter().enumerate() {
        if p.shape().len() == 1 {
            let v = rand_f64(&p.shape(), 100 + i as u64).add_scalar(1.5);
            p.set(v);
        }
    }
    let x0 = rand_f64(&s0, 1);
    let x1 = rand_f64(&s1, 2);
    let out_shape = cell
        .forward(&x0, &x1, &mut Mode::train_deterministic())
        .shape()
        .to_vec();
    let w = rand_f64(&out_shape, 3);
    let report = gradcheck_params(
        || {
            cell.forward(&x0, &x1, &mut Mode::train_deterministic())
                .mul(&w)
                .sum()
        },
        &cell.params(),
        GradcheckOptions::default(),
    )
    .unwrap_or_else(|e| {
        let p = &cell.params()[e.input];
        panic!("parameter {} ({:?}): {e}", p.name(), p.shape())
    });
    assert_eq!(report.elements, cell.num_params());
    gradcheck(
        |t: &[Tensor]| cell.forward(&t[0], &t[1], &mut Mode::train_deterministic()),
        &[x0, x1],
    )
    .unwrap();
}

/// `cnn-ws` reduction cell with all 5 ops (sep 3x3/5x5 and max/avg pool at strides 2 and 1,
/// identity as factorized reduce at stride 2 and plain at stride 1) and loose end 0 (its
/// factorized reduce); both inputs calibrated by ReLU-conv-BN (widths 3 and 5 -> 2).
#[test]
fn ws_reduction_cell_all_five_ops() {
    check_cell(
        CnnSpace::WS,
        "1 0 1 4  1 1 2 2  1 3 3 4  1 2 4 0  5 3 2 1",
        true,
        [2, 3, 4, 4],
        [2, 5, 4, 4],
        2,
    );
}

/// `cnn-ws` normal cell with all 5 ops at stride 1, input 0 at twice the resolution
/// (calibrated by ReLU + factorized reduce).
#[test]
fn ws_normal_cell_all_five_ops_with_reduce_calibration() {
    check_cell(
        CnnSpace::WS,
        "0 0 1 1  2 2 0 3  3 4 1 0  4 1 2 3  5 4 3 2",
        false,
        [2, 3, 8, 8],
        [2, 2, 4, 4],
        2,
    );
}

/// `cnn` reduction cell with ops 0..=9 (identity, conv 1x1, conv 3x3, conv 1x3+3x1,
/// conv 1x7+7x1, max 2x2/3x3/5x5, avg 2x2/3x3), most at stride 2.
#[test]
fn full_reduction_cell_ops_0_to_9() {
    check_cell(
        CnnSpace::FULL,
        "1 0 1 1  0 2 2 3  1 4 3 5  0 6 4 7  1 8 5 9",
        true,
        [2, 2, 4, 4],
        [2, 3, 4, 4],
        2,
    );
}

/// `cnn` normal cell with all 11 ops at stride 1 (avg 5x5 among them), input 0 at twice
/// the resolution.
#[test]
fn full_normal_cell_all_eleven_ops() {
    check_cell(
        CnnSpace::FULL,
        "0 10 1 0  2 5 0 8  3 7 1 10  4 3 2 1  5 4 3 2",
        false,
        [2, 2, 8, 8],
        [2, 2, 4, 4],
        2,
    );
}

#[test]
fn ops_are_what_the_spec_says() {
    // Spot checks of structure: sep conv has two depthwise+pointwise stages; the 2x2
    // pools keep the size at stride 1 and halve it at stride 2.
    use models::cnn::ops::BranchOp;
    use models::space::cnn::CnnOp;
    let mut rng = Pcg64Mcg::seed_from_u64(0);
    let BranchOp::Sep(s) = BranchOp::new("s", CnnOp::SepConv5x5, 4, 2, &mut rng) else {
        panic!("sep conv")
    };
    assert_eq!(s.dw1.weight.shape(), vec![4, 1, 5, 5]);
    assert_eq!(s.dw1.params.stride, (2, 2));
    assert_eq!(s.dw2.params.stride, (1, 1));
    assert_eq!(s.pw2.weight.shape(), vec![4, 4, 1, 1]);
    let x = rand_f64(&[1, 4, 6, 6], 0);
    let mut m = Mode::train_deterministic();
    for (op, stride, hw) in [
        (CnnOp::MaxPool2x2, 1, 6),
        (CnnOp::AvgPool2x2, 2, 3),
        (CnnOp::AvgPool5x5, 2, 3),
        (CnnOp::Conv1x7_7x1, 2, 3),
        (CnnOp::Identity, 2, 3),
    ] {
        let o = BranchOp::new("o", op, 4, stride, &mut rng);
        o.to_dtype(DType::F64);
        assert_eq!(
            o.forward(&x, &mut m).shape(),
            &[1, 4, hw, hw],
            "{op} at stride {stride}"
        );
    }
    // Average 2x2 at stride 1 on a 1x1 plane: the zero padding counts (explicit pad).
    let one = Tensor::from_vec(vec![4.0f64], &[1, 1, 1, 1]);
    let avg = BranchOp::new("a", CnnOp::AvgPool2x2, 1, 1, &mut rng);
    assert_eq!(avg.forward(&one, &mut m).to_vec::<f64>(), vec![1.0]);
}
