//! How well does the NAO controller's predictor rank NAS-Bench-201 cells it was not trained
//! on? Trains controllers on N random cells of a table (labels from `--metric`) and reports
//! Kendall tau on a fixed 1,000-cell sample, for several training settings.
//!
//! ```sh
//! cargo run -p nao --release --example predictor_study -- TABLE.csv METRIC N REPEATS [SETTING...]
//! ```
//! SETTING is `name=epochs:E,rank:W,labels:rank|minmax,lambda:L,dropout:D,wd:W,ensemble:K,
//! lr:LR,input:mean|concat,pretrain:P,pepochs:E` (any subset; defaults are the spec
//! controller's with 200 epochs; `pretrain:P` first trains the autoencoder alone on P random
//! unlabelled cells for `pepochs` epochs, 50 unless given; a setting named `linear` is the
//! ridge regression on one-hot tokens).

use std::collections::HashSet;

use autograd::DType;
use models::space::{Arch, SpaceKind, space};
use nao::controller::{Controller, ControllerConfig};
use nao::evaluator::table::TableEvaluator;
use nao::search::diagnostics::kendall_tau;
use nao::search::nao::{LabelScale, labels};
use rand::SeedableRng;
use rand::seq::index::sample;
use rand_pcg::Pcg64Mcg;

struct Setting {
    name: String,
    epochs: usize,
    rank: f64,
    rank_labels: bool,
    lambda: f64,
    dropout: f64,
    wd: f64,
    ensemble: usize,
    lr: f64,
    linear: bool,
    pretrain: usize,
    pretrain_epochs: usize,
    concat: bool,
}

fn parse(s: &str) -> Setting {
    let (name, rest) = s.split_once('=').unwrap_or((s, ""));
    let mut st = Setting {
        name: name.into(),
        epochs: 200,
        rank: 0.0,
        rank_labels: false,
        lambda: 0.8,
        dropout: 0.1,
        wd: 1e-4,
        ensemble: 1,
        lr: 1e-3,
        linear: name == "linear",
        pretrain: 0,
        pretrain_epochs: 50,
        concat: false,
    };
    for kv in rest.split(',').filter(|x| !x.is_empty()) {
        let (k, v) = kv.split_once(':').expect("key:value");
        match k {
            "epochs" => st.epochs = v.parse().unwrap(),
            "rank" => st.rank = v.parse().unwrap(),
            "labels" => st.rank_labels = v == "rank",
            "lambda" => st.lambda = v.parse().unwrap(),
            "dropout" => st.dropout = v.parse().unwrap(),
            "wd" => st.wd = v.parse().unwrap(),
            "ensemble" => st.ensemble = v.parse().unwrap(),
            "lr" => st.lr = v.parse().unwrap(),
            "pretrain" => st.pretrain = v.parse().unwrap(),
            "input" => st.concat = v == "concat",
            "pepochs" => st.pretrain_epochs = v.parse().unwrap(),
            other => panic!("unknown key {other}"),
        }
    }
    st
}

fn main() {
    // The nao binary's heap policy (freed tensor buffers kept for the next step) and float
    // mode (subnormals flushed to zero).
    autograd::configure_training_process();
    let args: Vec<String> = std::env::args().collect();
    let (table, metric) = (&args[1], &args[2]);
    let n: usize = args[3].parse().unwrap();
    let repeats: u64 = args[4].parse().unwrap();
    let settings: Vec<Setting> = args[5..].iter().map(|s| parse(s)).collect();
    let sp = space(SpaceKind::Nb201);
    let t = TableEvaluator::from_csv(std::path::Path::new(table), sp.as_ref(), metric).unwrap();
    let reference = t.sample(1000);
    let ref_archs: Vec<Arch> = reference.iter().map(|r| sp.canonical(&r.0)).collect();
    let ref_y: Vec<f64> = reference.iter().map(|r| r.1).collect();
    let all = t.sample(20_000);
    for st in &settings {
        let mut taus = Vec::new();
        let started = std::time::Instant::now();
        for rep in 0..repeats {
            let mut rng = Pcg64Mcg::seed_from_u64(1000 + rep);
            let mut seen = HashSet::new();
            let mut train: Vec<(Arch, f64)> = Vec::new();
            for i in sample(&mut rng, all.len(), all.len()).into_iter() {
                let c = sp.canonical(&all[i].0);
                if seen.insert(c.clone()) {
                    train.push((c, all[i].1));
                }
                if train.len() == n {
                    break;
                }
            }
            let scale = if st.rank_labels {
                LabelScale::Rank
            } else {
                LabelScale::MinMax
            };
            let (y, _) = labels(&train.iter().map(|d| d.1).collect::<Vec<_>>(), scale);
            let data: Vec<(Arch, f64)> = train.iter().map(|d| d.0.clone()).zip(y).collect();
            let mut preds = vec![0.0; ref_archs.len()];
            if st.linear {
                use nao::search::Surrogate;
                let mut l = nao::search::LinearSurrogate::new(SpaceKind::Nb201, 1.0);
                l.fit(&data, &mut rng);
                preds = l.predict(&ref_archs);
            }
            for m in 0..if st.linear { 0 } else { st.ensemble } {
                let mut cfg = ControllerConfig::for_space(sp.as_ref());
                cfg.rank_weight = st.rank;
                cfg.lambda = st.lambda;
                cfg.mlp_dropout = st.dropout;
                cfg.weight_decay = st.wd;
                cfg.lr = st.lr;
                if st.concat {
                    cfg.predictor_input = nao::controller::PredictorInput::Concat;
                }
                let mut c =
                    Controller::new(SpaceKind::Nb201, cfg, DType::F32, rep * 100 + m as u64);
                if st.pretrain > 0 {
                    let unl: Vec<(Arch, f64)> = sample(&mut rng, all.len(), st.pretrain)
                        .into_iter()
                        .map(|i| (sp.canonical(&all[i].0), 0.5))
                        .collect();
                    let lambda = c.cfg.lambda;
                    let wd = c.optimizer().weight_decay;
                    c.cfg.lambda = 0.0;
                    c.optimizer().weight_decay = 0.0;
                    c.train(&unl, st.pretrain_epochs, &mut rng, |_, _| {});
                    c.cfg.lambda = lambda;
                    c.optimizer().weight_decay = wd;
                }
                c.train(&data, st.epochs, &mut rng, |_, _| {});
                for (p, q) in preds.iter_mut().zip(c.predict(&ref_archs)) {
                    *p += q;
                }
            }
            // NaN when every prediction is the same (a dead predictor)
            taus.push(kendall_tau(&ref_y, &preds).unwrap_or(f64::NAN));
        }
        let mean = taus.iter().sum::<f64>() / taus.len() as f64;
        println!(
            "{:<14} N={n} tau {mean:.3} [{}] ({:.1}s)",
            st.name,
            taus.iter()
                .map(|t| format!("{t:.2}"))
                .collect::<Vec<_>>()
                .join(" "),
            started.elapsed().as_secs_f64()
        );
    }
}
