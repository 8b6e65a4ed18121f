//! [`RnnSupernet`]: the weight-sharing (NAO-WS / ENAS) supernet of the `rnn` space
//! (spec 8.1): every architecture of the space is a path through one set of shared weights.
//!
//! ```text
//! encoder.weight  (V, emb)            tied to the softmax, shared by every path
//! decoder.bias    (V)
//! rnn.w0          (emb + hid, 2 hid)  the input node s0, shared by every path
//! rnn.w{i}.p{p}.{act}  (hid, 2 hid)   node i = 1..=11, predecessor p = 0..i-1,
//!                                     activation tanh | relu | sigmoid | identity
//! ```
//!
//! Node `i` holds a separate `hid x 2 hid` slice for every (predecessor, activation) pair,
//! `4 i` slices, 264 in all. A path (an [`RnnCell`]) uses `w0` and one slice per node.
//! Each slice is its own [`Param`], so a training step on one path produces gradients only
//! for that path's weights and the optimiser ([`autograd::optim::Sgd`] skips parameters
//! without a gradient) neither moves nor decays the others: weights off the path stay bit
//! for bit as they were.
//!
//! A path runs as an ordinary child [`RnnLanguageModel`] ([`RnnSupernet::child`]) whose
//! handles share the supernet's values, so the supernet has exactly the child's forward
//! pass, dropouts, loss and fused kernels.
//!
//! The search cell's output: spec 8.1 notes that the original search cell averages
//! `s_0 .. s_11` while the final cell averages `s_1 .. s_11`. We use `s_1 .. s_11` in both
//! (spec section A), so a path of the supernet computes the same function as the child
//! that is later trained from scratch.

use autograd::nn::{Module, Param, init};
use autograd::{DType, Device, Tensor};
use rand_pcg::Pcg64Mcg;

use super::cell::{HighwayCell, INIT_RANGE};
use super::config::RnnConfig;
use super::model::RnnLanguageModel;
use crate::space::rnn::{Activation, RnnCell, STEPS};

/// The weight-sharing supernet of the `rnn` space (see the module docs).
#[derive(Debug, Clone)]
pub struct RnnSupernet {
    config: RnnConfig,
    encoder: Param,
    bias: Param,
    w0: Param,
    /// `slices[i - 1][4 p + a]`: node `i`, predecessor `p`, activation id `a`.
    slices: Vec<Vec<Param>>,
}

/// The name of node `node`'s slice for predecessor `pred` and activation `act`.
pub fn slice_name(node: usize, pred: usize, act: Activation) -> String {
    format!("rnn.w{node}.p{pred}.{}", act.name())
}

impl RnnSupernet {
    /// A supernet with weights uniform ±0.04 (spec 8.1) drawn from `rng` in the order
    /// encoder, w0, then node 1..=11, predecessor 0..i-1, activation tanh, relu, sigmoid,
    /// identity; decoder bias zeros; f32.
    ///
    /// Panics with the reason when `config` is invalid ([`RnnConfig::validate`]).
    ///
    /// ```
    /// use autograd::nn::Module;
    /// use models::rnn::RnnConfig;
    /// use models::rnn::supernet::RnnSupernet;
    /// use rand::SeedableRng;
    /// let cfg = RnnConfig { emb: 4, hidden: 4, ..RnnConfig::smoke(10) };
    /// let net = RnnSupernet::new(&cfg, &mut rand_pcg::Pcg64Mcg::seed_from_u64(0));
    /// // encoder + bias + w0 + 264 slices of 4 x 8
    /// assert_eq!(net.num_params(), 10 * 4 + 10 + 8 * 8 + 264 * 4 * 8);
    /// ```
    pub fn new(config: &RnnConfig, rng: &mut Pcg64Mcg) -> RnnSupernet {
        if let Err(e) = config.validate() {
            panic!("RnnSupernet: invalid config: {e}");
        }
        let (e, h) = (config.emb, config.hidden);
        let encoder = Param::new(
            "encoder.weight",
            init::uniform(&[config.vocab, e], INIT_RANGE, DType::F32, rng),
        );
        let bias = Param::new("decoder.bias", init::zeros(&[config.vocab], DType::F32));
        let w0 = Param::new(
            "rnn.w0",
            init::uniform(&[e + h, 2 * h], INIT_RANGE, DType::F32, rng),
        );
        let slices = (1..=STEPS)
            .map(|node| {
                (0..node)
                    .flat_map(|pred| Activation::ALL.map(move |a| (pred, a)))
                    .map(|(pred, act)| {
                        Param::new(
                            slice_name(node, pred, act),
                            init::uniform(&[h, 2 * h], INIT_RANGE, DType::F32, rng),
                        )
                    })
                    .collect()
            })
            .collect();
        RnnSupernet {
            config: *config,
            encoder,
            bias,
            w0,
            slices,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &RnnConfig {
        &self.config
    }

    /// The device of the parameters (where the supernet computes).
    pub fn device(&self) -> Device {
        self.encoder.device()
    }

    /// A zero hidden state `(batch, hid)` in the parameters' dtype, on their device.
    pub fn init_hidden(&self, batch: usize) -> Tensor {
        Tensor::full_on(
            &[batch, self.config.hidden],
            0.0,
            self.encoder.dtype(),
            &self.device(),
        )
    }

    /// The slice node `node` (1..=11) uses for predecessor `pred` (< `node`) and `act`.
    ///
    /// Panics when there is no such slice.
    pub fn slice(&self, node: usize, pred: usize, act: Activation) -> &Param {
        assert!(
            (1..=STEPS).contains(&node) && pred < node,
            "RnnSupernet: node {node} has no slice for predecessor {pred} \
             (nodes 1..={STEPS}, predecessors 0..node-1)"
        );
        &self.slices[node - 1][4 * pred + act.id()]
    }

    /// The weights a path uses: encoder, bias, w0 and one slice per node, in node order.
    pub fn path_params(&self, arch: &RnnCell) -> Vec<Param> {
        let mut p = vec![self.encoder.clone(), self.bias.clone(), self.w0.clone()];
        p.extend(self.node_slices(arch));
        p
    }

    fn node_slices(&self, arch: &RnnCell) -> Vec<Param> {
        assert_eq!(
            arch.nodes.len(),
            STEPS,
            "RnnSupernet: an rnn architecture has {STEPS} nodes, got {}",
            arch.nodes.len()
        );
        arch.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| self.slice(i + 1, n.pred, n.act).clone())
            .collect()
    }

    /// The path of `arch` as a child language model whose weights are the supernet's own
    /// (shared handles: training the child trains the supernet's slices). Cheap: no
    /// weights are copied.
    ///
    /// Panics when `arch` is not a valid `rnn` cell (11 nodes, each reading an earlier one).
    pub fn child(&self, arch: &RnnCell) -> RnnLanguageModel {
        let cell = HighwayCell::from_params(
            arch,
            self.config.emb,
            self.config.hidden,
            self.w0.clone(),
            self.node_slices(arch),
        );
        RnnLanguageModel::from_parts(&self.config, self.encoder.clone(), self.bias.clone(), cell)
    }
}

impl Module for RnnSupernet {
    fn params(&self) -> Vec<Param> {
        let mut p = vec![self.encoder.clone(), self.bias.clone(), self.w0.clone()];
        p.extend(self.slices.iter().flatten().cloned());
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::RnnSpace;
    use rand::SeedableRng;

    fn arch(flat: &[usize]) -> RnnCell {
        RnnSpace.decode(&RnnSpace.from_flat(flat).unwrap()).unwrap()
    }

    #[test]
    fn every_node_has_four_slices_per_predecessor_with_unique_names() {
        let cfg = RnnConfig {
            emb: 3,
            hidden: 3,
            ..RnnConfig::smoke(5)
        };
        let net = RnnSupernet::new(&cfg, &mut Pcg64Mcg::seed_from_u64(1));
        for i in 1..=STEPS {
            assert_eq!(net.slices[i - 1].len(), 4 * i);
        }
        let params = net.params();
        assert_eq!(params.len(), 3 + 4 * (1..=STEPS).sum::<usize>());
        autograd::nn::check_unique(&params).unwrap();
        assert_eq!(
            net.slice(7, 3, Activation::Sigmoid).name(),
            "rnn.w7.p3.sigmoid"
        );
    }

    #[test]
    fn child_uses_the_slices_of_its_path() {
        let cfg = RnnConfig {
            emb: 3,
            hidden: 3,
            ..RnnConfig::smoke(5)
        };
        let net = RnnSupernet::new(&cfg, &mut Pcg64Mcg::seed_from_u64(1));
        let a = arch(&[
            0, 1, 0, 1, 1, 1, 3, 0, 4, 1, 4, 1, 5, 1, 1, 1, 7, 1, 1, 1, 1, 2,
        ]);
        let child = net.child(&a);
        let names: Vec<String> = child
            .params()
            .iter()
            .map(|p| p.name().to_string())
            .collect();
        assert_eq!(names[3], "rnn.w1.p0.relu");
        assert_eq!(names[6], "rnn.w4.p3.tanh");
        assert_eq!(names[13], "rnn.w11.p1.sigmoid");
        for (c, s) in child.params().iter().zip(net.path_params(&a)) {
            assert!(c.same_value(&s), "{} is not shared", c.name());
        }
    }

    #[test]
    #[should_panic(expected = "no slice")]
    fn a_slice_that_does_not_exist_panics() {
        let cfg = RnnConfig {
            emb: 3,
            hidden: 3,
            ..RnnConfig::smoke(5)
        };
        let net = RnnSupernet::new(&cfg, &mut Pcg64Mcg::seed_from_u64(1));
        let _ = net.slice(2, 2, Activation::Tanh);
    }
}
