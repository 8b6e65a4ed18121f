//! Command-line interface (clap): [`main`] parses the arguments ([`args`]) and runs the
//! subcommand; `nao search` and `nao compare` are in [`search`], the others here or in the
//! library modules they call (`nao::cifar`, `nao::ptb`, `nao::train_lm`, ...).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Parser;
use models::space::{SpaceKind, space};
use nao::evaluator::table::synthetic_nb201_csv;
use nao::run::atomic::write_atomic;
use nao::run::{RunOptions, read_records, report};

mod args;
mod search;

use args::{Cli, Cmd, Device, GlobalArgs};
use search::{compare, search};

/// Runs the CLI; returns the exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let device = match open_device(cli.device) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e:#}");
            return 1;
        }
    };
    match run(cli, device) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}

fn run(cli: Cli, training_device: autograd::Device) -> Result<i32> {
    let global = GlobalArgs {
        data_dir: cli.data_dir.clone(),
        device: cli.device,
        offline: cli.offline,
        training_device,
    };
    let device = &global.training_device;
    match cli.command {
        Cmd::Search(a) => search(a, &global),
        Cmd::Eval { run, index } => {
            let f = nao::executor::task::run_task(&run, index, device)
                .with_context(|| format!("nao eval --run {} --index {index}", run.display()))?;
            match &f.outcome {
                Ok(e) => println!("evaluation {index}: score {} ({:.1} s)", e.score, f.wall_s),
                Err(e) => println!("evaluation {index} failed: {e}"),
            }
            Ok(0)
        }
        Cmd::Compare(a) => compare(a, device),
        Cmd::Draw {
            space: kind,
            arch,
            out,
        } => {
            let s = space(kind);
            let tokens = nao::arch_arg::read_arch(s.as_ref(), &arch)?;
            s.validate(&tokens)?;
            write_atomic(&out, s.to_svg(&tokens).as_bytes())?;
            println!("wrote {} ({})", out.display(), s.to_text(&tokens));
            Ok(0)
        }
        Cmd::Report { run_dir } => {
            let config = nao::run::open_run_dir(&run_dir)?;
            let (records, _) = read_records(&run_dir)?;
            report::write_outputs(&run_dir, &config, &records)?;
            print!("{}", report::summary(&config, &records));
            println!("wrote {}", run_dir.join("report.md").display());
            Ok(0)
        }
        Cmd::SynthTable { seed, sigma, out } => {
            write_atomic(&out, synthetic_nb201_csv(seed, sigma).as_bytes())?;
            println!("wrote {} (15625 NAS-Bench-201 cells)", out.display());
            Ok(0)
        }
        Cmd::Cifar {
            preset,
            out,
            seed,
            resume,
            final_dataset,
            ws,
            eval_batches,
            executor,
        } => {
            let executor = executor.config(&global)?;
            if ws && executor != nao::executor::ExecutorConfig::Inline {
                bail!("--ws trains one supernet in this process: drop --executor");
            }
            if eval_batches.is_some() && !ws {
                bail!("--eval-batches sets how the supernet scores: it needs --ws");
            }
            if eval_batches == Some(0) {
                bail!("--eval-batches must be at least 1");
            }
            if ws {
                return cifar_ws(
                    cli.data_dir.as_deref(),
                    cli.offline,
                    &preset,
                    eval_batches,
                    &out,
                    seed,
                    resume,
                    final_dataset,
                    device,
                );
            }
            let p = nao::cifar::CifarPreset::get(&preset).map_err(anyhow::Error::msg)?;
            let data_dir = datasets::data_dir(cli.data_dir.as_deref());
            nao::cifar::check_out_dir(&out, resume)?;
            for d in nao::cifar::datasets_needed(&out, final_dataset) {
                nao::data::prepare(d, &data_dir, cli.offline)?;
            }
            eprintln!("nao cifar --preset {}: {}", p.name, p.about);
            let report = nao::cifar::run_cifar(
                &out,
                &p,
                &data_dir,
                seed,
                &opts(resume, executor, device),
                final_dataset,
            )?;
            for r in &report.results {
                println!(
                    "{:<12} dev {:6.2}%  test {:6.2}%  {}",
                    r.role, r.search_dev_acc, r.test_acc, r.text
                );
            }
            println!("wrote {}", out.join("report.md").display());
            Ok(0)
        }
        Cmd::Ptb {
            preset,
            out,
            seed,
            resume,
            ws,
            executor,
        } => {
            let executor = executor.config(&global)?;
            if ws && executor != nao::executor::ExecutorConfig::Inline {
                bail!("--ws trains one supernet in this process: drop --executor");
            }
            let data_dir = datasets::data_dir(cli.data_dir.as_deref());
            let report = if ws {
                let p = nao::ptb_ws::PtbWsPreset::get(&preset).map_err(anyhow::Error::msg)?;
                eprintln!("nao ptb --ws --preset {}: {}", p.name, p.about);
                nao::data::prepare_ptb(&data_dir, cli.offline)?;
                nao::ptb_ws::run_ptb_ws(&out, &p, &data_dir, seed, resume, true, device)?
            } else {
                let p = nao::ptb::PtbPreset::get(&preset).map_err(anyhow::Error::msg)?;
                eprintln!("nao ptb --preset {}: {}", p.name, p.about);
                nao::data::prepare_ptb(&data_dir, cli.offline)?;
                nao::ptb::run_ptb(&out, &p, &data_dir, seed, &opts(resume, executor, device))?
            };
            for r in &report.results {
                println!(
                    "{:<12} valid ppl {:8.2}  test ppl {:8.2}  {}",
                    r.role, r.valid_ppl, r.test_ppl, r.text
                );
            }
            println!("wrote {}", out.join("report.md").display());
            Ok(0)
        }
        Cmd::Train {
            task,
            arch,
            data,
            resume,
            space: kind,
            recipe,
            epochs,
            seed,
            out,
            ..
        } if task == "lm" => {
            let data_dir = datasets::data_dir(cli.data_dir.as_deref());
            let out = out.unwrap_or_else(|| PathBuf::from("runs/lm"));
            let config = if resume {
                nao::train_lm::read_lm_config(&out).with_context(|| {
                    format!("--resume: {} holds no language-model run", out.display())
                })?
            } else {
                if kind != SpaceKind::CnnWs && kind != SpaceKind::Rnn {
                    bail!("--task lm trains rnn cells, not --space {kind}");
                }
                let arch = arch.context("--arch is required")?;
                nao::train_lm::lm_config(
                    &arch,
                    &data,
                    recipe.as_deref().unwrap_or("ptb-final"),
                    epochs,
                    seed,
                )?
            };
            if config.data == nao::train_lm::LmData::Ptb {
                nao::data::prepare_ptb(&data_dir, cli.offline)?;
            }
            eprintln!(
                "training {} on {} with {} ({} epochs)",
                config.arch_name.as_deref().unwrap_or(&config.text),
                config.data.name(),
                config.recipe.name,
                config.recipe.train.epochs
            );
            let r = nao::train_lm::run_lm(&out, &config, &data_dir, resume, true, device)?;
            println!(
                "valid ppl {:.2}, test ppl {:.2} after {} epochs ({} parameters)",
                r.valid_ppl, r.test_ppl, r.epochs, r.params
            );
            println!("wrote {}", out.join("result.json").display());
            Ok(0)
        }
        Cmd::Train {
            dataset,
            arch,
            space: kind,
            recipe,
            epochs,
            n,
            f,
            train_images,
            eval_images,
            seed,
            out,
            ..
        } => {
            let arch = arch.context("--arch is required")?;
            let recipe = recipe.unwrap_or_else(|| "nao-search".into());
            let s = space(kind);
            let tokens = nao::arch_arg::read_arch(s.as_ref(), &arch)?;
            let mut r =
                models::train::recipe::Recipe::preset(&recipe).map_err(anyhow::Error::msg)?;
            if let Some(e) = epochs {
                r.epochs = e;
            }
            let spec = nao::train_cnn::CnnTrainSpec {
                dataset,
                arch: tokens,
                child: nao::train_cnn::child_config(kind, n, f, dataset, &r),
                recipe: r,
                train_images,
                eval_images,
                seed,
            };
            let data_dir = datasets::data_dir(cli.data_dir.as_deref());
            if let Some(dir) = out.as_deref().and_then(Path::parent)
                && !dir.as_os_str().is_empty()
            {
                // Before the training, not after it: a missing folder must not cost a run.
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {} for --out", dir.display()))?;
            }
            nao::data::prepare(dataset, &data_dir, cli.offline)?;
            let t = nao::train_cnn::train(&spec, &data_dir, out.as_deref(), device)?;
            println!(
                "dev accuracy {:.2}%, test accuracy {:.2}%",
                t.report.final_eval_acc * 100.0,
                t.test_acc * 100.0
            );
            if let Some(out) = out {
                let (cell, curve) = nao::train_cnn::write_outputs(&out, &spec, &t)?;
                println!(
                    "wrote {}, {} and {}",
                    out.display(),
                    cell.display(),
                    curve.display()
                );
            }
            Ok(0)
        }
    }
}

/// `nao cifar --ws`: NAO-WS on CIFAR-10 (see [`nao::cifar_ws`]).
#[allow(clippy::too_many_arguments)]
fn cifar_ws(
    data_dir: Option<&std::path::Path>,
    offline: bool,
    preset: &str,
    eval_batches: Option<usize>,
    out: &std::path::Path,
    seed: u64,
    resume: bool,
    final_dataset: nao::data::Dataset,
    device: &autograd::Device,
) -> Result<i32> {
    if final_dataset != nao::data::Dataset::Cifar10 {
        anyhow::bail!("--ws trains its final cells on CIFAR-10 only: drop --final-dataset");
    }
    let mut p = nao::cifar_ws::CifarWsPreset::get(preset).map_err(anyhow::Error::msg)?;
    if let Some(k) = eval_batches {
        // Recorded in OUT/cifar-ws.json with the rest of the preset (a resume must match).
        p.train.eval_batches = k;
    }
    let data_dir = datasets::data_dir(data_dir);
    nao::data::prepare(nao::data::Dataset::Cifar10, &data_dir, offline)?;
    eprintln!("nao cifar --ws --preset {}: {}", p.name, p.about);
    let report = nao::cifar_ws::run_cifar_ws(out, &p, &data_dir, seed, resume, true, device)?;
    for r in &report.results {
        println!(
            "{:<12} search {:6.2}%  test {:6.2}%  {}",
            r.role, r.search_dev_acc, r.test_acc, r.text
        );
    }
    println!("wrote {}", out.join("report.md").display());
    Ok(0)
}

/// Opens the `--device`: the CPU, or CUDA device 0 (a clear error when the build has no
/// CUDA support or no GPU is found). It is opened once, at startup, and passed down to
/// everything that trains: the evaluators, the search's controller
/// ([`nao::search::surrogate::build_surrogate`]), the final trainings, `nao train`.
fn open_device(d: Device) -> Result<autograd::Device> {
    Ok(match d {
        Device::Cpu => autograd::Device::Cpu,
        Device::Cuda => {
            autograd::Device::cuda(0).map_err(|e| anyhow::anyhow!("--device cuda: {e}"))?
        }
    })
}

/// Run options of a command: progress on, `resume`, `executor` and `device` as given.
fn opts(
    resume: bool,
    executor: nao::executor::ExecutorConfig,
    device: &autograd::Device,
) -> RunOptions {
    RunOptions {
        resume,
        progress: true,
        executor,
        device: device.clone(),
    }
}
