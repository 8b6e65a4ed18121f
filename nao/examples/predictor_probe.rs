//! How well the controller's predictor ranks unseen NB201 cells after training on a small
//! pool, and how good the architectures it generates are, on the synthetic table's smooth
//! function plus noise. A tuning aid for the NAO search at small budgets.
//!
//! `cargo run --release -p nao --example predictor_probe -- N REPS [key=value ...]` with keys
//! `epochs`, `wd`, `dropout`, `lambda`, `lr`, `mlp_layers`, `mlp_hidden`, `batch`, `ens`.

use std::collections::HashSet;

use autograd::DType;
use models::space::{Arch, SearchSpace, SpaceKind, space};
use nao::controller::{Controller, ControllerConfig};
use nao::evaluator::table::synthetic_nb201_score;
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;

fn pairwise(y: &[f64], p: &[f64]) -> f64 {
    let (mut ok, mut n) = (0.0f64, 0.0f64);
    for i in 0..y.len() {
        for j in i + 1..y.len() {
            if y[i] == y[j] {
                continue;
            }
            n += 1.0;
            if (y[i] - y[j]) * (p[i] - p[j]) > 0.0 {
                ok += 1.0;
            }
        }
    }
    ok / n.max(1.0)
}

fn normal(rng: &mut Pcg64Mcg) -> f64 {
    let u: f64 = rng.random::<f64>().max(1e-300);
    let v: f64 = rng.random();
    normal_draw::box_muller(u, v)
}

fn unique(
    s: &dyn SearchSpace,
    n: usize,
    seen: &mut HashSet<Arch>,
    rng: &mut Pcg64Mcg,
) -> Vec<Arch> {
    let mut out = Vec::new();
    while out.len() < n {
        let a = s.sample(rng);
        if seen.insert(s.canonical(&a)) {
            out.push(a);
        }
    }
    out
}

fn main() {
    // The nao binary's heap policy (freed tensor buffers kept for the next step) and float
    // mode (subnormals flushed to zero).
    autograd::configure_training_process();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args[0].parse().unwrap();
    let reps: u64 = args[1].parse().unwrap();
    let sp = space(SpaceKind::Nb201);
    let mut cfg = ControllerConfig::for_space(sp.as_ref());
    cfg.epochs = 200;
    let mut ens = 1;
    let mut rank = false;
    let mut canon = false;
    for kv in &args[2..] {
        let (k, v) = kv.split_once('=').unwrap();
        match k {
            "epochs" => cfg.epochs = v.parse().unwrap(),
            "wd" => cfg.weight_decay = v.parse().unwrap(),
            "dropout" => cfg.mlp_dropout = v.parse().unwrap(),
            "lambda" => cfg.lambda = v.parse().unwrap(),
            "lr" => cfg.lr = v.parse().unwrap(),
            "mlp_layers" => cfg.mlp_layers = v.parse().unwrap(),
            "mlp_hidden" => cfg.mlp_hidden = v.parse().unwrap(),
            "batch" => cfg.batch_size = v.parse().unwrap(),
            "ens" => ens = v.parse().unwrap(),
            "labels" => rank = v == "rank",
            "canon" => canon = v == "1",
            _ => panic!("unknown key {k}"),
        }
    }
    let (mut acc_all, mut acc_top, mut gen_n, mut gen_mean, mut gen_top, mut seed_mean) =
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    for rep in 0..reps {
        let mut rng = Pcg64Mcg::seed_from_u64(1000 + rep);
        let mut seen = HashSet::new();
        let mut train = unique(sp.as_ref(), n, &mut seen, &mut rng);
        let mut test = unique(sp.as_ref(), 400, &mut seen.clone(), &mut rng);
        if canon {
            train = train.iter().map(|a| sp.canonical(a)).collect();
            test = test.iter().map(|a| sp.canonical(a)).collect();
        }
        let ys: Vec<f64> = train
            .iter()
            .map(|a| synthetic_nb201_score(a) + 0.5 * normal(&mut rng))
            .collect();
        let (lo, hi) = ys
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), &y| (l.min(y), h.max(y)));
        let data: Vec<(Arch, f64)> = train
            .iter()
            .zip(&ys)
            .map(|(a, y)| {
                let l = if rank {
                    ys.iter().filter(|z| *z < y).count() as f64 / (n - 1) as f64
                } else {
                    (y - lo) / (hi - lo)
                };
                (a.clone(), l)
            })
            .collect();
        let ctrls: Vec<Controller> = (0..ens)
            .map(|_| {
                let mut c =
                    Controller::new(SpaceKind::Nb201, cfg.clone(), DType::F32, rng.random());
                c.train(&data, cfg.epochs, &mut rng, |_, _| {});
                c
            })
            .collect();
        let predict = |archs: &[Arch]| -> Vec<f64> {
            let mut s = vec![0.0; archs.len()];
            for c in &ctrls {
                for (x, p) in s.iter_mut().zip(c.predict(archs)) {
                    *x += p;
                }
            }
            s
        };
        let yt: Vec<f64> = test.iter().map(|a| synthetic_nb201_score(a)).collect();
        let pt = predict(&test);
        acc_all += pairwise(&yt, &pt);
        let mut sorted = yt.clone();
        sorted.sort_by(f64::total_cmp);
        let cut = sorted[sorted.len() * 3 / 4];
        let (yt2, pt2): (Vec<f64>, Vec<f64>) = yt
            .iter()
            .zip(&pt)
            .filter(|(y, _)| **y >= cut)
            .map(|(y, p)| (*y, *p))
            .unzip();
        acc_top += pairwise(&yt2, &pt2);
        // generation from the top 10 by measured label
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&i, &j| ys[j].total_cmp(&ys[i]));
        let seeds: Vec<Arch> = order[..10].iter().map(|&i| train[i].clone()).collect();
        seed_mean += seeds.iter().map(|a| synthetic_nb201_score(a)).sum::<f64>() / 10.0;
        let mut cands: Vec<Arch> = Vec::new();
        let mut taken = seen.clone();
        for c in &ctrls {
            for (a, _) in c.generate(&seeds, 50, &taken.clone(), 50) {
                if taken.insert(sp.canonical(&a)) {
                    cands.push(a);
                }
            }
        }
        gen_n += cands.len() as f64;
        if !cands.is_empty() {
            let yg: Vec<f64> = cands.iter().map(|a| synthetic_nb201_score(a)).collect();
            gen_mean += yg.iter().sum::<f64>() / yg.len() as f64;
            let pg = predict(&cands);
            let mut o: Vec<usize> = (0..cands.len()).collect();
            o.sort_by(|&i, &j| pg[j].total_cmp(&pg[i]));
            let k = o.len().min(10);
            gen_top += o[..k].iter().map(|&i| yg[i]).sum::<f64>() / k as f64;
        }
    }
    let r = reps as f64;
    println!(
        "n={n} {} | pairwise all {:.3} top-quarter {:.3} | seeds mean {:.2} | generated {:.1}, mean {:.2}, top-10 predicted {:.2}",
        args[2..].join(" "),
        acc_all / r,
        acc_top / r,
        seed_mean / r,
        gen_n / r,
        gen_mean / r,
        gen_top / r
    );
}
