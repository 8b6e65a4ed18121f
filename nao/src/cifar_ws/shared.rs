//! [`CnnSharedWeights`]: the CIFAR-10 [`Supernet`] as the NAO-WS loop's
//! [`SharedWeights`]: SGD on the train split, scores on the dev split.

use std::path::Path;
use std::sync::Arc;

use autograd::nn::Module;
use autograd::optim::schedule::{CosineAnnealing, Schedule};
use autograd::optim::{Optimizer, Sgd, clip_grad_norm};
use autograd::{Device, Tensor, no_grad};
use datasets::{Augment, Batcher, BatcherConfig, ChannelStats, ImageSet, LastBatch};
use models::cnn::Mode;
use models::cnn::supernet::{Supernet, SupernetConfig};
use models::space::Arch;
use models::space::cnn::{CnnArch, CnnSpace};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::search::surrogate::SurrogateError;
use crate::search::ws::SharedWeights;

/// How the supernet is built, trained and scored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WsTrainSpec {
    /// The supernet.
    pub supernet: SupernetConfig,
    /// Training minibatch.
    pub batch_size: usize,
    /// Cosine learning rate from `lr_max` to `lr_min` over the search's epochs (set per
    /// epoch).
    pub lr_max: f64,
    /// See `lr_max`.
    pub lr_min: f64,
    /// SGD momentum.
    pub momentum: f64,
    /// L2 weight decay (only weights on the step's path have a gradient, so only they
    /// decay).
    pub weight_decay: f64,
    /// Global gradient-norm clip.
    pub grad_clip: Option<f64>,
    /// Train-split images used (0 = all 45,000).
    pub train_images: usize,
    /// Dev-split images scores are drawn from (0 = all 5,000).
    pub dev_images: usize,
    /// Images per dev batch (spec: 500).
    pub eval_batch: usize,
    /// Dev batches averaged per score (spec: 1), each a random batch of the dev split.
    pub eval_batches: usize,
}

#[derive(Serialize, Deserialize)]
struct Position {
    steps: usize,
}

/// The supernet, its optimiser and its data position.
pub struct CnnSharedWeights {
    spec: WsTrainSpec,
    net: Supernet,
    params: Vec<autograd::nn::Param>,
    opt: Sgd,
    train: Batcher,
    dev: Batcher,
    device: Device,
    total_epochs: usize,
    steps: usize,
}

impl CnnSharedWeights {
    /// Builds the supernet from `seed` on `device` (initial weights drawn on the CPU), to
    /// train for `total_epochs` on `train` and score on `dev`.
    pub fn new(
        spec: &WsTrainSpec,
        train: Arc<ImageSet>,
        dev: Arc<ImageSet>,
        stats: ChannelStats,
        total_epochs: usize,
        seed: u64,
        device: &Device,
    ) -> Result<CnnSharedWeights, SurrogateError> {
        let mut init = Pcg64Mcg::seed_from_u64(seed ^ 0x5375_7065_726e_6574);
        let net = Supernet::new(&spec.supernet, &mut init);
        net.to_device(device)?;
        let train = Batcher::new(
            train,
            stats,
            BatcherConfig {
                batch_size: spec.batch_size,
                shuffle: true,
                last_batch: LastBatch::Drop,
                augment: Augment::standard(),
                seed: seed ^ 0x0074_7261_696e,
            },
        )?;
        if train.num_batches() == 0 {
            return Err(format!(
                "{} training images make no batch of {}",
                train.set().len(),
                spec.batch_size
            )
            .into());
        }
        let dev = Batcher::new(dev, stats, BatcherConfig::eval(spec.eval_batch.max(1)))?;
        Ok(CnnSharedWeights {
            params: net.trainable_params(),
            opt: Sgd::new(spec.lr_max)
                .with_momentum(spec.momentum)
                .with_weight_decay(spec.weight_decay),
            spec: spec.clone(),
            net,
            train,
            dev,
            device: device.clone(),
            total_epochs: total_epochs.max(1),
            steps: 0,
        })
    }

    /// The supernet.
    pub fn net(&self) -> &Supernet {
        &self.net
    }

    fn arch(tokens: &Arch) -> Result<CnnArch, SurrogateError> {
        Ok(CnnSpace::WS.decode(tokens)?)
    }

    fn tensor(&self, images: ndarray::Array4<f32>) -> Tensor {
        Tensor::from_array(images.into_dyn()).to(&self.device)
    }
}

impl SharedWeights for CnnSharedWeights {
    fn describe(&self) -> Value {
        json!({
            "supernet": self.spec.supernet,
            "params": self.net.num_params(),
            "train_images": self.train.set().len(),
            "dev_images": self.dev.set().len(),
        })
    }

    fn steps_per_epoch(&self) -> usize {
        self.train.num_batches()
    }

    fn train_step(&mut self, arch: &Arch, rng: &mut Pcg64Mcg) -> Result<f64, SurrogateError> {
        let a = Self::arch(arch)?;
        let per = self.train.num_batches();
        let (epoch, k) = (self.steps / per, self.steps % per);
        let bs = self.spec.batch_size;
        let order = self.train.epoch_order(epoch as u64);
        let b = self
            .train
            .assemble(epoch as u64, &order[k * bs..(k + 1) * bs])?;
        let sched = CosineAnnealing {
            lr_max: self.spec.lr_max,
            lr_min: self.spec.lr_min,
            total: self.total_epochs,
        };
        self.opt.set_lr(sched.lr(epoch));
        let progress = self.steps as f64 / (per * self.total_epochs) as f64;
        let x = self.tensor(b.images);
        let logits = self.net.forward(&x, &a, &mut Mode::train(rng, progress));
        let loss = logits.cross_entropy(&b.labels);
        let l = loss.item();
        if !l.is_finite() {
            return Err(format!("the supernet diverged: loss {l} at step {}", self.steps).into());
        }
        let mut grads = loss.backward();
        if let Some(c) = self.spec.grad_clip {
            clip_grad_norm(&mut grads, &self.params, c);
        }
        self.opt.step(&self.params, &grads);
        self.steps += 1;
        Ok(l)
    }

    fn score(&mut self, arch: &Arch, rng: &mut Pcg64Mcg) -> Result<f64, SurrogateError> {
        let a = Self::arch(arch)?;
        let n = self.dev.set().len();
        let bs = self.spec.eval_batch.min(n);
        let starts = n / bs;
        let (mut correct, mut total) = (0usize, 0usize);
        for _ in 0..self.spec.eval_batches.max(1) {
            let s = rng.random_range(0..starts) * bs;
            let idx: Vec<usize> = (s..s + bs).collect();
            let b = self.dev.assemble(0, &idx)?;
            let x = self.tensor(b.images);
            let logits = no_grad(|| self.net.forward(&x, &a, &mut Mode::eval()));
            let pred = logits.argmax_axis(1);
            correct += pred.iter().zip(&b.labels).filter(|(p, l)| p == l).count();
            total += b.labels.len();
        }
        Ok(100.0 * correct as f64 / total as f64)
    }

    fn save(&self, dir: &Path) -> Result<(), SurrogateError> {
        self.net.save(dir.join("supernet.bin"))?;
        self.opt.save_state_file(&dir.join("optimizer.json"))?;
        crate::run::atomic::write_json_atomic(
            &dir.join("position.json"),
            &Position { steps: self.steps },
        )?;
        Ok(())
    }

    fn load(&mut self, dir: &Path) -> Result<(), SurrogateError> {
        self.net.load(dir.join("supernet.bin"))?;
        self.opt
            .load_state_file(&dir.join("optimizer.json"), &self.params)?;
        let p: Position = crate::run::read_json(&dir.join("position.json"))?;
        self.steps = p.steps;
        // Parameters were replaced by the load: take the new handles' values.
        self.params = self.net.trainable_params();
        Ok(())
    }
}
