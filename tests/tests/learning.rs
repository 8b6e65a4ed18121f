//! Learning proofs: the engine does not just compute gradients, it learns. A small CNN
//! (conv-BN-relu-pool-linear) separates a synthetic image task, and an LSTM encoder-decoder
//! learns to reverse short token sequences. (The MLP proof is `autograd/tests/learn_mlp.rs`.)

use autograd::nn::Param;
use autograd::ops::batchnorm::{BatchNormMode, batch_norm};
use autograd::ops::conv::Conv2dParams;
use autograd::ops::lstm::{LstmWeights, lstm, lstm_cell};
use autograd::optim::{Adam, Optimizer};
use autograd::{DType, Tensor, no_grad};
use nao_tests::{accuracy, param, rng};
use rand::RngExt;

/// 4 classes of 8x8 one-channel images: a bright 3x3 blob in one quadrant (the class), at a
/// random position inside it, on uniform noise.
fn blob_images(n: usize, seed: u64) -> (Tensor, Vec<usize>) {
    let mut r = rng(seed);
    let mut data = vec![0f32; n * 64];
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let class = r.random_range(0..4usize);
        let (qy, qx) = (class / 2 * 4, class % 2 * 4);
        let (y0, x0) = (
            qy + r.random_range(0..2usize),
            qx + r.random_range(0..2usize),
        );
        for p in 0..64 {
            data[i * 64 + p] = r.random_range(-0.5f32..0.5);
        }
        for dy in 0..3 {
            for dx in 0..3 {
                data[i * 64 + (y0 + dy) * 8 + x0 + dx] += 1.5;
            }
        }
        labels.push(class);
    }
    (Tensor::from_vec(data, &[n, 1, 8, 8]), labels)
}

struct SmallCnn {
    conv: Param,
    gamma: Param,
    beta: Param,
    fc_w: Param,
    fc_b: Param,
}

impl SmallCnn {
    fn params(&self) -> Vec<Param> {
        vec![
            self.conv.clone(),
            self.gamma.clone(),
            self.beta.clone(),
            self.fc_w.clone(),
            self.fc_b.clone(),
        ]
    }

    fn forward(&self, x: &Tensor, mode: BatchNormMode) -> Tensor {
        let y = x.conv2d(
            &self.conv.get(),
            None,
            Conv2dParams {
                padding: (1, 1),
                ..Conv2dParams::default()
            },
        );
        let y = batch_norm(
            &y,
            Some(&self.gamma.get()),
            Some(&self.beta.get()),
            None,
            mode,
            0.1,
            1e-5,
        )
        .output;
        let y = y.relu().max_pool2d((2, 2), (2, 2), (0, 0));
        let n = y.shape()[0];
        y.reshape(&[n, 8 * 4 * 4])
            .linear(&self.fc_w.get(), Some(&self.fc_b.get()))
    }
}

#[test]
fn small_cnn_separates_a_synthetic_image_task() {
    let mut r = rng(1);
    let net = SmallCnn {
        conv: param("conv", &[8, 1, 3, 3], 1.0 / 3.0, &mut r),
        gamma: Param::new("gamma", Tensor::ones(&[8], DType::F32)),
        beta: Param::new("beta", Tensor::zeros(&[8], DType::F32)),
        fc_w: param("fc.w", &[4, 128], 1.0 / 128f64.sqrt(), &mut r),
        fc_b: param("fc.b", &[4], 1.0 / 128f64.sqrt(), &mut r),
    };
    let (train_x, train_y) = blob_images(512, 2);
    let (test_x, test_y) = blob_images(256, 3);
    let mut opt = Adam::new(0.01);
    let params = net.params();
    for epoch in 0..30 {
        for b in 0..8 {
            let x = train_x.narrow(0, b * 64, 64);
            let y = &train_y[b * 64..(b + 1) * 64];
            let loss = net.forward(&x, BatchNormMode::Train).cross_entropy(y);
            assert!(loss.all_finite(), "epoch {epoch}: loss {}", loss.item());
            opt.step(&params, &loss.backward());
        }
    }
    // Batch statistics at test time too (no running statistics were kept).
    let acc = no_grad(|| {
        accuracy(
            &net.forward(&test_x, BatchNormMode::BatchStatsAlways),
            &test_y,
        )
    });
    assert!(acc > 0.95, "held-out accuracy {acc}");
}

/// Sequences of `LEN` tokens from 1..VOCAB; token 0 starts the decoder.
const LEN: usize = 5;
const VOCAB: usize = 8;
const H: usize = 64;

struct Reverser {
    emb_enc: Param,
    emb_dec: Param,
    enc: [Param; 3],
    dec: [Param; 3],
    out_w: Param,
    out_b: Param,
}

impl Reverser {
    fn new(seed: u64) -> Reverser {
        let mut r = rng(seed);
        let k = 1.0 / (H as f64).sqrt();
        let mut lstm_params = |name: &str| {
            [
                param(&format!("{name}.w_ih"), &[4 * H, H], k, &mut r),
                param(&format!("{name}.w_hh"), &[4 * H, H], k, &mut r),
                param(&format!("{name}.b"), &[4 * H], k, &mut r),
            ]
        };
        let enc = lstm_params("enc");
        let dec = lstm_params("dec");
        let mut r = rng(seed + 1);
        Reverser {
            emb_enc: param("emb_enc", &[VOCAB, H], 1.0, &mut r),
            emb_dec: param("emb_dec", &[VOCAB, H], 1.0, &mut r),
            enc,
            dec,
            out_w: param("out.w", &[VOCAB, H], k, &mut r),
            out_b: param("out.b", &[VOCAB], k, &mut r),
        }
    }

    fn params(&self) -> Vec<Param> {
        let mut p = vec![
            self.emb_enc.clone(),
            self.emb_dec.clone(),
            self.out_w.clone(),
            self.out_b.clone(),
        ];
        p.extend(self.enc.iter().cloned());
        p.extend(self.dec.iter().cloned());
        p
    }

    fn weights(p: &[Param; 3]) -> LstmWeights {
        LstmWeights {
            w_ih: p[0].get(),
            w_hh: p[1].get(),
            bias: p[2].get(),
        }
    }

    /// Encodes `seqs` (B x LEN) and returns the final encoder state.
    fn encode(&self, seqs: &[Vec<usize>]) -> (Tensor, Tensor) {
        let b = seqs.len();
        let ids: Vec<usize> = (0..LEN)
            .flat_map(|t| seqs.iter().map(move |s| s[t]))
            .collect();
        let x = self.emb_enc.get().embedding(&ids, &[LEN, b]);
        let z = Tensor::zeros(&[b, H], DType::F32);
        let (_, state) = lstm(&x, &z, &z, &Self::weights(&self.enc));
        state
    }

    /// Teacher-forced loss of producing the reversed sequences.
    fn loss(&self, seqs: &[Vec<usize>]) -> Tensor {
        let b = seqs.len();
        let (h, c) = self.encode(seqs);
        let targets: Vec<Vec<usize>> = seqs
            .iter()
            .map(|s| s.iter().rev().copied().collect())
            .collect();
        let ids: Vec<usize> = (0..LEN)
            .flat_map(|t| {
                targets
                    .iter()
                    .map(move |s| if t == 0 { 0 } else { s[t - 1] })
            })
            .collect();
        let x = self.emb_dec.get().embedding(&ids, &[LEN, b]);
        let (out, _) = lstm(&x, &h, &c, &Self::weights(&self.dec));
        let logits = out
            .reshape(&[LEN * b, H])
            .linear(&self.out_w.get(), Some(&self.out_b.get()));
        let labels: Vec<usize> = (0..LEN)
            .flat_map(|t| targets.iter().map(move |s| s[t]))
            .collect();
        logits.cross_entropy(&labels)
    }

    /// Greedy decoding.
    fn reverse(&self, seqs: &[Vec<usize>]) -> Vec<Vec<usize>> {
        no_grad(|| {
            let b = seqs.len();
            let mut state = self.encode(seqs);
            let mut prev = vec![0usize; b];
            let mut out = vec![Vec::new(); b];
            let w = Self::weights(&self.dec);
            for _ in 0..LEN {
                let x = self.emb_dec.get().embedding(&prev, &[b]);
                state = lstm_cell(&x, &state.0, &state.1, &w.w_ih, &w.w_hh, &w.bias);
                let logits = state.0.linear(&self.out_w.get(), Some(&self.out_b.get()));
                for (i, t) in logits.argmax_axis(-1).into_iter().enumerate() {
                    out[i].push(t);
                    prev[i] = t;
                }
            }
            out
        })
    }
}

fn random_seqs(n: usize, r: &mut rand_pcg::Pcg64Mcg) -> Vec<Vec<usize>> {
    (0..n)
        .map(|_| (0..LEN).map(|_| r.random_range(1..VOCAB)).collect())
        .collect()
}

#[test]
fn lstm_learns_to_reverse_short_sequences() {
    let model = Reverser::new(7);
    let params = model.params();
    let mut opt = Adam::new(0.005);
    let mut r = rng(8);
    for _ in 0..600 {
        let batch = random_seqs(64, &mut r);
        let mut grads = model.loss(&batch).backward();
        grads.clip_by_global_norm(5.0);
        opt.step(&params, &grads);
    }
    let test = random_seqs(200, &mut rng(99));
    let got = model.reverse(&test);
    let exact = test
        .iter()
        .zip(&got)
        .filter(|(s, g)| s.iter().rev().copied().collect::<Vec<_>>() == **g)
        .count();
    let rate = exact as f64 / test.len() as f64;
    assert!(
        rate > 0.9,
        "reversed exactly {exact}/200 held-out sequences"
    );
}
