//! Does averaging several dev batches rank the NAO-WS pool better? (issue 12, part 2)
//!
//! ```sh
//! cargo run -p nao --release --example ws_score_study -- RUN_DIR DATA_DIR SEED [PRESET] [BATCHES ...]
//! ```
//!
//! Loads the supernet of a finished `nao cifar --ws --out RUN_DIR --seed SEED` run (its last
//! checkpoint: the weights that scored the final pool), scores every cell of the final pool
//! twice for each number of dev batches per score (`WsTrainSpec::eval_batches`; default 1
//! and 4), each time on independently drawn batches, and prints:
//!
//! * the Kendall tau between the two draws: how repeatable the pool's ranking is;
//! * the Kendall tau between each draw and the stand-alone dev accuracy of the cells of the
//!   run's ranking study (`RUN_DIR/ranking.json`), when it is there.
//!
//! Nothing is written; the run directory is only read.

use std::path::PathBuf;
use std::sync::Arc;

use autograd::Device;
use nao::cifar_ws::{CifarWsPreset, CnnSharedWeights, ranking};
use nao::data::{Dataset, load_split};
use nao::evaluator::train::head;
use nao::search::diagnostics::kendall_tau;
use nao::search::ws::SharedWeights;
use nao::search::{Status, ranked};
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;

fn main() -> anyhow::Result<()> {
    autograd::configure_training_process();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        anyhow::bail!(
            "usage: ws_score_study RUN_DIR DATA_DIR SEED [PRESET] [BATCHES ...] (see the file's docs)"
        );
    }
    let run = PathBuf::from(&args[0]);
    let data_dir = PathBuf::from(&args[1]);
    let seed: u64 = args[2].parse()?;
    let preset = CifarWsPreset::get(args.get(3).map_or("default", String::as_str))
        .map_err(anyhow::Error::msg)?;
    let batches: Vec<usize> = if args.len() > 4 {
        args[4..]
            .iter()
            .map(|a| a.parse())
            .collect::<Result<_, _>>()?
    } else {
        vec![1, 4]
    };

    let search = run.join("search");
    let (records, _) = nao::run::read_records(&search)?;
    let last = records.iter().map(|r| r.round).max().unwrap_or(0);
    let pool: Vec<_> = ranked(&records)
        .into_iter()
        .filter(|r| r.round == last && r.status == Status::Ok)
        .collect();
    let latest = std::fs::read_to_string(search.join("checkpoint").join("latest"))?;
    let weights = search.join("checkpoint").join(latest.trim()).join("shared");
    // The run's ranking study (empty when the run made none).
    let study = Some(ranking::load(&run, true)?).filter(|s| !s.rows.is_empty());
    println!(
        "final pool: {} cells (round {last}); supernet from {}",
        pool.len(),
        weights.display()
    );

    let (train, dev, _) = load_split(Dataset::Cifar10, &data_dir, seed)?;
    let recorded: Vec<f64> = pool.iter().map(|r| r.score.unwrap_or(f64::NAN)).collect();
    for &k in &batches {
        let mut spec = preset.train.clone();
        spec.eval_batches = k;
        let mut shared = CnnSharedWeights::new(
            &spec,
            Arc::new(head(train.clone(), spec.train_images)),
            Arc::new(head(dev.clone(), spec.dev_images)),
            Dataset::Cifar10.stats(),
            preset.ws.epochs,
            seed,
            &Device::Cpu,
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        shared.load(&weights).map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut draws: Vec<Vec<f64>> = Vec::new();
        for draw in 0..2u64 {
            let mut rng = Pcg64Mcg::seed_from_u64(0x5c0e ^ (k as u64) << 8 ^ draw);
            let clock = std::time::Instant::now();
            let scores = pool
                .iter()
                .map(|r| shared.score(&r.arch, &mut rng))
                .collect::<Result<Vec<f64>, _>>()
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "batches {k}, draw {draw}: {:.0} s; tau against the search's recorded scores {:.3}",
                clock.elapsed().as_secs_f64(),
                kendall_tau(&recorded, &scores).unwrap_or(f64::NAN)
            );
            draws.push(scores);
        }
        let repeat = kendall_tau(&draws[0], &draws[1]).unwrap_or(f64::NAN);
        print!("batches {k}: tau between the two draws {repeat:.3}");
        if let Some(study) = &study {
            let dev_acc: Vec<f64> = study.rows.iter().map(|r| r.dev_acc).collect();
            let taus: Vec<String> = draws
                .iter()
                .map(|scores| {
                    let at: Vec<f64> = study
                        .rows
                        .iter()
                        .map(|row| {
                            pool.iter()
                                .position(|r| r.arch == row.arch)
                                .map_or(f64::NAN, |i| scores[i])
                        })
                        .collect();
                    format!("{:.3}", kendall_tau(&at, &dev_acc).unwrap_or(f64::NAN))
                })
                .collect();
            print!(
                "; against the {} stand-alone cells {}",
                dev_acc.len(),
                taus.join(" / ")
            );
        }
        println!();
    }
    Ok(())
}
