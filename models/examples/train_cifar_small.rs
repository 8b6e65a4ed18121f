//! Trains a small child CNN on real CIFAR-10 for a short budget and prints per-epoch
//! numbers: evidence that the child network, the trainer and the data pipeline learn.
//!
//! ```text
//! export NAO_DATA_DIR=/path/with/cifar-10-binary.tar.gz
//! cargo run --release -p models --example train_cifar_small -- [train_images] [epochs] [N] [F]
//! ```
//! Defaults: 10,000 training images (a seeded subset of the 45,000 left after holding out a
//! 5,000-image dev split), 3 epochs, N = 1, F = 16, batch 64, the workload-C architecture
//! (`cnn-ws`), SGD momentum 0.9, cosine from 0.05, wd 3e-4, clip 5, no dropout/drop-path.
//!
//! Measured with the defaults (2-core machine shared with other builds, load 5-8): dev
//! accuracy 0.399 / 0.464 / 0.548 after epochs 1 / 2 / 3 (chance 0.1), 219,706 parameters,
//! 1126 s wall.

use std::sync::Arc;
use std::time::Instant;

use autograd::optim::schedule::{CosineAnnealing, LrSchedule};
use datasets::{ChannelStats, Cifar, LoadOptions};
use models::cnn::CnnConfig;
use models::space::{CnnSpace, SearchSpace};
use models::train::{Recipe, train_cnn};

const ARCH: &str =
    "0 0 1 3 1 3 1 2 0 0 0 4 2 1 0 1 5 1 5 0 | 1 4 1 0 1 0 2 3 0 1 3 3 3 0 1 1 1 0 2 4";

fn main() {
    // The nao binary's heap policy (freed tensor buffers kept for the next step) and float
    // mode (subnormals flushed to zero).
    autograd::configure_training_process();
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| {
            a.parse()
                .expect("arguments are integers: train_images epochs N F")
        })
        .collect();
    let arg = |i: usize, d: usize| args.get(i).copied().unwrap_or(d);
    let (n_train, epochs, n, f) = (arg(0, 10_000), arg(1, 3), arg(2, 1), arg(3, 16));
    let Ok(dir) = std::env::var("NAO_DATA_DIR") else {
        eprintln!("skipped: NAO_DATA_DIR not set");
        return;
    };
    let t0 = Instant::now();
    let cifar = Cifar::cifar10(std::path::Path::new(&dir), &LoadOptions::default())
        .expect("CIFAR-10 under NAO_DATA_DIR");
    let (train, dev) = cifar.train.split_dev(5000, 0).expect("dev split");
    let idx: Vec<usize> = (0..n_train.min(train.len())).collect();
    let train = train.subset(&idx).expect("subset");
    eprintln!(
        "data: {} train, {} dev images (loaded in {:.1} s)",
        train.len(),
        dev.len(),
        t0.elapsed().as_secs_f64()
    );
    let data = models::train::TrainData {
        train: Arc::new(train),
        eval: Arc::new(dev),
        stats: ChannelStats::CIFAR10,
    };
    let cfg = CnnConfig {
        n_cells: n,
        channels: f,
        ..CnnConfig::workload_c()
    };
    let mut recipe = Recipe::preset("smoke").unwrap();
    recipe.epochs = epochs;
    recipe.lr_schedule = LrSchedule::Cosine(CosineAnnealing {
        lr_max: 0.05,
        lr_min: 0.0,
        total: epochs,
    });
    let tokens = CnnSpace::WS.from_text(ARCH).unwrap();
    let (_, report) = train_cnn(&tokens, &cfg, &recipe, &data, 0, true).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    });
    println!(
        "N={n} F={f} params={} train_images={} epochs={epochs}: dev accuracy {:.4} (chance 0.1), {:.1} s",
        report.params,
        data.train.len(),
        report.final_eval_acc,
        report.seconds
    );
}
