//! The softmax decoder and its loss as one op, `mean_n CE(x_n W^T + b, label_n)`: autograd's
//! fused [`linear_cross_entropy`] (block by block, never holding the `N x V` logits; composed
//! of `matmul_t`, a bias add and `cross_entropy` on a GPU: [`linear_cross_entropy_composed`]).

pub use autograd::ops::linear_cross_entropy::{
    linear_cross_entropy, linear_cross_entropy_composed,
};
