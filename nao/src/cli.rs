//! Command-line interface (clap).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use models::space::{SpaceKind, space};
use nao::evaluator::EvaluatorConfig;
use nao::evaluator::table::synthetic_nb201_csv;
use nao::run::atomic::write_atomic;
use nao::run::{RunOptions, SearchConfig, read_config, read_records, report, run_search};
use nao::search::AlgoConfig;
use nao::search::compare::{paired_stats, run_seeds_on};

const CIFAR_HELP: &str = "\
Examples:
  nao cifar --preset smoke --out runs/smoke        # a few minutes: the whole pipeline, tiny
  nao cifar --out runs/cifar                       # the default: about 20-30 minutes on 2 cores
  nao cifar --resume --out runs/cifar              # continue an interrupted run

  nao cifar --final-dataset cifar100 --out runs/c100  # retrain the found cells on CIFAR-100

  nao cifar --ws --preset smoke --out runs/ws-smoke  # NAO-WS (weight sharing): about a minute
  nao cifar --ws --out runs/ws                       # NAO-WS default: about 30-45 minutes on 2 cores
  nao cifar --ws --preset paper --device cuda --out runs/ws-paper  # spec 7's settings, a GPU

Data comes from --data-dir, else $NAO_DATA_DIR, else ./data: cifar-10-batches-bin/ or the
archive cifar-10-binary.tar.gz (extracted and verified on first use). When neither is there
the archive is downloaded (170 MB; $NAO_CIFAR10_URL overrides the URL) unless --offline.
Writes OUT/search/ (a search run directory), OUT/final.json and OUT/report.md.";

const SEARCH_EXAMPLES: &str = "\
Examples:
  # NAO (the controller) on a lookup table, 100 queries:
  nao search --space nb201 --table nb201.csv --metric valid_acc --algo nao --budget 100 --seed 0 --out runs/nao-0

  # The same budget with random search and regularised evolution:
  nao search --space nb201 --table nb201.csv --metric valid_acc --algo random --budget 100 --seed 0 --out runs/rs-0
  nao search --space nb201 --table nb201.csv --metric valid_acc --algo evolution --budget 100 --seed 0 --out runs/re-0

  # An external evaluator: {arch} is replaced by the architecture's text (else it comes on
  # stdin); the command prints a JSON object with the metric on stdout:
  nao search --space nb201 --metric acc --algo nao --budget 50 --out runs/cmd -- ./eval.sh '{arch}'

  # Continue an interrupted run (settings are read from DIR/config.json):
  nao search --resume --out runs/nao-0

Budget = number of distinct architectures (by canonical form) queried; failed evaluations
count. The run directory gets config.json, manifest.json, archs.jsonl, rounds.jsonl,
timings.jsonl, checkpoint/, result.json, best-*.svg, curve.svg and report.md.";

/// Neural Architecture Optimization: search, evaluate and report architectures.
#[derive(Parser, Debug)]
#[command(name = "nao", version, about, long_about = None, propagate_version = true)]
struct Cli {
    /// Where datasets live [default: $NAO_DATA_DIR, else ./data].
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Device for training child networks and the NAO controller (`cuda` needs a build
    /// with the `cuda` feature and a GPU).
    #[arg(long, global = true, value_enum, default_value_t = Device::Cpu)]
    device: Device,
    /// Never touch the network: a missing dataset is an error saying where to put it
    /// (by default it is downloaded, resumably, and checked).
    #[arg(long, global = true)]
    offline: bool,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Device {
    Cpu,
    Cuda,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Search a space with NAO, random search or regularised evolution.
    #[command(after_long_help = SEARCH_EXAMPLES)]
    Search(SearchArgs),
    /// Evaluate one architecture of a run's pending batch (what every executor's task runs):
    /// writes RUN/evals/INDEX.json.
    Eval {
        /// The run directory (its config.json says how to evaluate).
        #[arg(long)]
        run: PathBuf,
        /// The record index, as listed in RUN/pending.json.
        #[arg(long)]
        index: usize,
    },
    /// Run several algorithms over seeds 0..k on a table and compare their best scores.
    #[command(after_long_help = "\
Example:
  nao compare --space nb201 --table nb201.csv --metric valid_acc --algos nao,random,evolution \\
      --seeds 10 --budget 100 --out runs/compare

Each (algorithm, seed) runs in OUT/<algo>/seed-<s> (finished runs are reused, interrupted ones
resumed). Prints mean and std of the best score per algorithm and, for each pair, wins and
exact two-sided sign-test and Wilcoxon signed-rank p-values; writes OUT/compare.json.")]
    Compare(CompareArgs),
    /// Draw an architecture's cell(s) as SVG.
    #[command(after_long_help = "\
Examples:
  nao draw --space nb201 --arch '|nor_conv_3x3~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|' --out cell.svg
  nao draw --space cnn-ws --arch arch.txt --out cell.svg   # a file with the text or JSON form")]
    Draw {
        /// The search space.
        #[arg(long)]
        space: SpaceKind,
        /// The architecture: its text form, or a file holding the text or JSON form.
        #[arg(long, value_name = "TEXT|FILE")]
        arch: String,
        /// The SVG file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Regenerate report.md, result.json and the SVGs of a run directory; print a summary.
    #[command(after_long_help = "Example:\n  nao report runs/nao-0")]
    Report {
        /// The run directory.
        run_dir: PathBuf,
    },
    /// Write a synthetic NAS-Bench-201-like table (all 15,625 cells) for tests and comparisons.
    #[command(after_long_help = "\
Example:
  nao synth-table --seed 0 --sigma 0.5 --out nb201.csv

Columns: arch (standard string), valid_acc (a smooth function of the cell plus N(0, sigma)
noise), test_acc, params, live_edges.")]
    SynthTable {
        /// Seed of the noise.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Standard deviation of the noise on valid_acc.
        #[arg(long, default_value_t = 0.5)]
        sigma: f64,
        /// The CSV file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// NAO on real CIFAR-10: search (children trained from scratch, scored on the dev
    /// split), then final training of the best cell and of the random pool's best, scored on
    /// the test set.
    #[command(after_long_help = CIFAR_HELP)]
    Cifar {
        /// `smoke` (minutes), `default` (about 20-30 minutes on 2 cores) or `paper` (GPU cluster).
        #[arg(long, default_value = "default")]
        preset: String,
        /// Output directory.
        #[arg(long, default_value = "runs/cifar")]
        out: PathBuf,
        /// Seed of everything (split, pools, controller, children).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Continue an interrupted run in --out.
        #[arg(long)]
        resume: bool,
        /// Dataset of the final trainings (`cifar100`: the paper's transfer of the cells
        /// found on CIFAR-10).
        #[arg(long, default_value_t = nao::data::Dataset::Cifar10)]
        final_dataset: nao::data::Dataset,
        /// NAO with weight sharing (NAO-WS, spec 7): one supernet scores every
        /// architecture instead of training each from scratch; presets smoke, default,
        /// paper of `nao::cifar_ws::CifarWsPreset`. CIFAR-10 only.
        #[arg(long)]
        ws: bool,
        /// With --ws: random dev batches averaged per supernet score [default: the
        /// preset's, 1 (spec 7)]. More batches rank the pool more repeatably and cost
        /// proportionally more scoring time (README, "Does sharing rank well?").
        #[arg(long, value_name = "K")]
        eval_batches: Option<usize>,
        /// Where the search's children train (not with --ws).
        #[command(flatten)]
        executor: ExecutorArgs,
    },
    /// NAO on Penn Treebank: search over recurrent cells (children trained briefly, scored
    /// by validation perplexity), then final training of the best cell, the random pool's
    /// best and the DARTS V2 / ENAS cells, scored by test perplexity.
    #[command(after_long_help = nao::ptb::PTB_HELP)]
    Ptb {
        /// `smoke` (about a minute), `default` (about 40 minutes on 2 quiet cores) or `paper` (GPU days).
        #[arg(long, default_value = "default")]
        preset: String,
        /// Output directory.
        #[arg(long, default_value = "runs/ptb")]
        out: PathBuf,
        /// Seed of everything (pools, controller, children).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Continue an interrupted run in --out.
        #[arg(long)]
        resume: bool,
        /// NAO with weight sharing (NAO-WS, spec 8.2): one RNN supernet scores every cell
        /// instead of training each from scratch; presets smoke, default, paper of
        /// `nao::ptb_ws::PtbWsPreset`.
        #[arg(long)]
        ws: bool,
        /// Where the search's children train (not with --ws).
        #[command(flatten)]
        executor: ExecutorArgs,
    },
    /// Train one architecture from scratch: a CNN on CIFAR-10 or CIFAR-100 (dev and test
    /// accuracy), or with --task lm a recurrent cell as a language model on PTB or WikiText-2 (valid and
    /// test perplexity per epoch).
    #[command(after_long_help = nao::train_lm::TRAIN_LM_HELP)]
    Train {
        /// `cnn` (CIFAR image classifier) or `lm` (word-level language model).
        #[arg(long, value_parser = ["cnn", "lm"], default_value = "cnn")]
        task: String,
        /// --task cnn: `cifar10`, or `cifar100` (fine labels, 100 classes).
        #[arg(long, default_value_t = nao::data::Dataset::Cifar10)]
        dataset: nao::data::Dataset,
        /// The architecture: text form, flat integers, JSON, or a file holding one of them;
        /// with --task lm also a named cell (darts-v2, enas, nao, nao-ws).
        #[arg(long, required_unless_present = "resume")]
        arch: Option<String>,
        /// --task lm: the corpus, `ptb` or `wikitext2`.
        #[arg(long, default_value = "ptb")]
        data: String,
        /// --task lm: continue the interrupted run in --out (its lm.json gives the settings).
        #[arg(long)]
        resume: bool,
        /// Its space (`cnn-ws` or `cnn`).
        #[arg(long, default_value = "cnn-ws")]
        space: SpaceKind,
        /// Training recipe preset: CNN `nao-search` (default), `nao-final`, `nao-final-c100`,
        /// `nao-ws-final`, `naonet-a-36`, `workload-c`, `smoke`; LM `ptb-final` (default),
        /// `wt2-final`, `ptb-search`, `ptb-short`, `ptb-child`, `smoke`.
        #[arg(long)]
        recipe: Option<String>,
        /// Override the recipe's epochs.
        #[arg(long)]
        epochs: Option<usize>,
        /// Cells per stage (N).
        #[arg(long, default_value_t = 1)]
        n: usize,
        /// Channels of the first stage (F).
        #[arg(long, default_value_t = 16)]
        f: usize,
        /// Use only the first N images of the 45k train split (0 = all).
        #[arg(long, default_value_t = 0)]
        train_images: usize,
        /// Score on only the first N images of the dev split and of the test set (0 = all;
        /// quick checks).
        #[arg(long, default_value_t = 0)]
        eval_images: usize,
        /// Seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// --task cnn: write the report (JSON) to NAME.json here, and beside it the training
        /// curves (NAME-curve.jsonl, one line per epoch, and NAME-curve.svg) and the cell
        /// (NAME-cell.svg); --task lm: the run directory [default: runs/lm].
        #[arg(long, value_name = "NAME.json|DIR")]
        out: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
struct EvalArgs {
    /// The search space (nb201, cnn-ws, cnn, rnn).
    #[arg(long)]
    space: Option<SpaceKind>,
    /// A CSV lookup table: header row, column `arch` (the architecture's text form).
    #[arg(long, value_name = "FILE.csv")]
    table: Option<PathBuf>,
    /// The table column, or JSON key of the command's output, to maximise.
    #[arg(long, value_name = "COLUMN")]
    metric: Option<String>,
    /// Allow a --metric whose name contains `test` (searching on test data leaks it into the
    /// result; normally a mistake).
    #[arg(long)]
    allow_test_metric: bool,
    /// Time limit per evaluation for an external command, seconds.
    #[arg(long, default_value_t = 600.0)]
    timeout_s: f64,
    /// Number of distinct architectures to query.
    #[arg(long)]
    budget: Option<usize>,
    /// An external evaluator command (after `--`); `{arch}` is replaced by the text form.
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

#[derive(Args, Debug)]
struct SearchArgs {
    #[command(flatten)]
    eval: EvalArgs,
    /// The algorithm (`nao-paper` = `nao --variant paper`).
    #[arg(long, value_parser = ["nao", "nao-paper", "random", "evolution", "local"], default_value = "nao")]
    algo: String,
    /// Seed of the run.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The run directory.
    #[arg(long)]
    out: PathBuf,
    /// Continue the interrupted run in --out (its config.json gives the settings).
    #[arg(long)]
    resume: bool,
    #[command(flatten)]
    algo_args: AlgoArgs,
    #[command(flatten)]
    executor: ExecutorArgs,
    /// Sleep this long before every evaluation (testing).
    #[arg(long, hide = true, default_value_t = 0)]
    eval_delay_ms: u64,
}

#[derive(Args, Debug, Clone)]
struct ExecutorArgs {
    /// Where evaluations run: `inline` (in this process, one after another), `local` (up to
    /// --workers child processes `nao eval` on this machine, threads split among them) or
    /// `slurm` (each round's batch one `sbatch --array` job; the run directory must be on a
    /// file system the nodes share). The records are the same whichever runs them.
    #[arg(long, value_parser = ["inline", "local", "slurm"], default_value = "inline", help_heading = "Executor")]
    executor: String,
    /// --executor local: evaluations at once (`nao cifar`: also its two final trainings
    /// side by side, each on its share of the threads).
    #[arg(long, default_value_t = 2, help_heading = "Executor")]
    workers: usize,
    /// --executor slurm: `sbatch --partition` (default: the cluster's).
    #[arg(long, help_heading = "Executor")]
    slurm_partition: Option<String>,
    /// --executor slurm: `sbatch --time` of each evaluation, e.g. `2:00:00`.
    #[arg(long, help_heading = "Executor")]
    slurm_time: Option<String>,
    /// --executor slurm: `sbatch --gres`, e.g. `gpu:1` (tasks then train with --device cuda).
    #[arg(long, help_heading = "Executor")]
    slurm_gres: Option<String>,
    /// --executor slurm: further `sbatch` options, passed through (split at whitespace).
    #[arg(long, allow_hyphen_values = true, help_heading = "Executor")]
    slurm_extra: Option<String>,
    /// --executor slurm: at most this many tasks of a batch at once (`--array=...%N`).
    #[arg(long, help_heading = "Executor")]
    slurm_max_parallel: Option<usize>,
}

impl ExecutorArgs {
    /// The executor, with tasks started as this binary with the global options that
    /// matter to an evaluation.
    fn config(&self, global: &GlobalArgs) -> Result<nao::executor::ExecutorConfig> {
        use nao::executor::{ExecutorConfig, SlurmOptions, TaskCommand};
        let task = || -> Result<TaskCommand> {
            TaskCommand::this_binary(global.task_args()).context("cannot find the nao binary")
        };
        Ok(match self.executor.as_str() {
            "local" => {
                if self.workers == 0 {
                    bail!("--workers must be at least 1");
                }
                ExecutorConfig::Local {
                    workers: self.workers,
                    task: task()?,
                }
            }
            "slurm" => ExecutorConfig::Slurm {
                options: SlurmOptions {
                    partition: self.slurm_partition.clone(),
                    time: self.slurm_time.clone(),
                    gres: self.slurm_gres.clone(),
                    extra: self
                        .slurm_extra
                        .as_deref()
                        .unwrap_or("")
                        .split_whitespace()
                        .map(String::from)
                        .collect(),
                    max_parallel: self.slurm_max_parallel,
                },
                task: task()?,
            },
            _ => ExecutorConfig::Inline,
        })
    }
}

/// The global options a task (`nao eval`) needs too, and the device `--device` opened.
#[derive(Debug, Clone)]
struct GlobalArgs {
    data_dir: Option<PathBuf>,
    device: Device,
    offline: bool,
    /// `--device`, opened once at startup and passed to everything that trains.
    training_device: autograd::Device,
}

impl GlobalArgs {
    fn task_args(&self) -> Vec<String> {
        let mut a = Vec::new();
        if let Some(d) = &self.data_dir {
            let d = std::path::absolute(d).unwrap_or_else(|_| d.clone());
            a.extend(["--data-dir".to_string(), d.display().to_string()]);
        }
        if matches!(self.device, Device::Cuda) {
            a.extend(["--device".to_string(), "cuda".to_string()]);
        }
        if self.offline {
            a.push("--offline".into());
        }
        a
    }
}

#[derive(Args, Debug, Clone)]
struct AlgoArgs {
    /// NAO surrogate: `nao` (the controller: LSTM encoder, MLP predictor, attention decoder,
    /// 200 training epochs per round), `nao:EPOCHS`, or `linear` (ridge regression on one-hot
    /// tokens, a cheap baseline).
    #[arg(long, default_value = "nao", help_heading = "NAO")]
    surrogate: String,
    /// NAO: random architectures before the first round [default: max(10, 0.15 budget); paper: max(10, 0.3 budget)].
    #[arg(long, help_heading = "NAO")]
    initial: Option<usize>,
    /// NAO: new architectures per round [default: max(5, budget/10)].
    #[arg(long, help_heading = "NAO")]
    per_round: Option<usize>,
    /// NAO: seeds = top K by measured score [default: clamp(initial, 5, 10); paper: 100].
    #[arg(long, help_heading = "NAO")]
    top_k: Option<usize>,
    /// NAO: largest step size eta [default: 5; paper: 50].
    #[arg(long, help_heading = "NAO")]
    max_eta: Option<usize>,
    /// NAO: generate up to this many new architectures per round and evaluate only the
    /// per-round best predicted; 0 evaluates the first generated, as the paper
    /// [default: 10 per-round].
    #[arg(long, help_heading = "NAO")]
    candidates: Option<usize>,
    /// NAO: fit the controller on the sequences as queried, as the paper, instead of on
    /// their canonical forms.
    #[arg(long, help_heading = "NAO")]
    fit_raw: bool,
    /// NAO: `default` (this project's settings, see ARCHITECTURE.md) or `paper` (exactly the
    /// paper's Algorithm 1: seeds the top 100, 1000 controller epochs, no screening, raw
    /// sequences, min-max labels, one controller); the flags below override either.
    #[arg(long, value_parser = ["default", "paper"], default_value = "default", help_heading = "NAO")]
    variant: String,
    /// NAO: controllers in the ensemble (predictions averaged; each generates) [default: 1].
    #[arg(long, help_heading = "NAO")]
    ensemble: Option<usize>,
    /// NAO: weight of the pairwise hinge ranking loss in the controller loss [default: 0].
    #[arg(long, help_heading = "NAO")]
    rank_weight: Option<f64>,
    /// NAO: labels from scores: `minmax` (the paper) or `rank` (pool quantiles)
    /// [default: rank; paper: minmax].
    #[arg(long, value_parser = ["minmax", "rank"], help_heading = "NAO")]
    labels: Option<String>,
    /// NAO: perturb each gradient step in the embedding space by this much before decoding
    /// (relative to the unit-length encoder outputs) [default: 0].
    #[arg(long, help_heading = "NAO")]
    noise: Option<f64>,
    /// NAO: sample each decoded token from the decoder's distribution at this temperature
    /// instead of taking the most likely (0 = greedy, the paper) [default: 4; paper: 0].
    #[arg(long, help_heading = "NAO")]
    temperature: Option<f64>,
    /// NAO: keep only decoded architectures within this many tokens of their seed (a
    /// trust region; 0 = off, the paper) [default: 1; paper: 0].
    #[arg(long, help_heading = "NAO")]
    trust_radius: Option<usize>,
    /// NAO: when generation falls short of the round's quota, take seeds from the top N
    /// (if more than --top-k) before random top-ups (0 = off, the paper) [default: 0].
    #[arg(long, help_heading = "NAO")]
    expand_seeds: Option<usize>,
    /// NAO: when generation falls short, widen the trust radius by up to this many tokens,
    /// one at a time, before random top-ups (0 = off, the paper) [default: 2; paper: 0].
    #[arg(long, help_heading = "NAO")]
    expand_radius: Option<usize>,
    /// NAO: passes over the step-size schedule per trust region while candidates are short
    /// (further decoder samples; 1 = the paper's single pass) [default: 1].
    #[arg(long, help_heading = "NAO")]
    draws: Option<usize>,
    /// NAO: up to this many of each round's cells come from the best measured cell's
    /// neighbourhood alone (the best predicted of what the decoder proposes around it),
    /// before the other seeds are used (0 = off, the paper) [default: 0].
    #[arg(long, help_heading = "NAO")]
    focus: Option<usize>,
    /// NAO: train a fresh controller every round instead of continuing the last one.
    #[arg(long, help_heading = "NAO")]
    fresh: bool,
    /// NAO: step-size increment of generation (eta = S, 2S, ... up to --max-eta)
    /// [default: 0.1; paper: 1].
    #[arg(long, help_heading = "NAO")]
    eta_step: Option<f64>,
    /// NAO: SemiNAS pseudo-labels: this many random unqueried architectures labelled by the
    /// controller join its training each round [default: 0].
    #[arg(long, help_heading = "NAO")]
    pseudo: Option<usize>,
    /// NAO: epochs of the pseudo-labelled training per round [default: 0].
    #[arg(long, help_heading = "NAO")]
    pseudo_epochs: Option<usize>,
    /// NAO: unsupervised pre-training of the controller's autoencoder on this many random
    /// unqueried architectures before the first fit (arch2vec / SemiNAS) [default: 0].
    #[arg(long, help_heading = "NAO")]
    pretrain: Option<usize>,
    /// NAO: epochs of the autoencoder pre-training [default: 0].
    #[arg(long, help_heading = "NAO")]
    pretrain_epochs: Option<usize>,
    /// NAO: what the controller's predictor reads: `mean` (the architecture embedding, the
    /// paper) or `concat` (every encoder step's output side by side) [default: mean].
    #[arg(long, value_parser = ["mean", "concat"], help_heading = "NAO")]
    predictor_input: Option<String>,
    /// NAO: screen candidates by mean + EXPLORE * ensemble spread [default: 0].
    #[arg(long, help_heading = "NAO")]
    explore: Option<f64>,
    /// NAO: when generation falls short, leave the round short instead of topping it up
    /// with random architectures.
    #[arg(long, help_heading = "NAO")]
    no_top_up: bool,
    /// NAO: when generation within the widest trust region falls short, top up at once
    /// instead of first sampling the decoder cooler (halved temperatures, then greedy).
    #[arg(long, help_heading = "NAO")]
    no_cool_down: bool,
    /// NAO: size of the table's fixed sample on which each round measures the predictor
    /// (Kendall tau); 0 = off [default: 1000].
    #[arg(long, help_heading = "NAO")]
    reference: Option<usize>,
    /// Evolution: population size P [default: clamp(budget/10, 10, 100)].
    #[arg(long, help_heading = "Evolution")]
    population: Option<usize>,
    /// Evolution: tournament sample size S [default: max(3, P/4)].
    #[arg(long, help_heading = "Evolution")]
    sample: Option<usize>,
}

#[derive(Args, Debug)]
struct CompareArgs {
    #[command(flatten)]
    eval: EvalArgs,
    /// Comma-separated algorithms; the first is compared with each other one.
    #[arg(long, default_value = "nao,random,evolution", value_delimiter = ',')]
    algos: Vec<String>,
    /// Number of seeds (FIRST..FIRST+k).
    #[arg(long, default_value_t = 10)]
    seeds: u64,
    /// The first seed (e.g. 100 for a tuning set disjoint from the reported seeds 0..k).
    #[arg(long, default_value_t = 0, value_name = "FIRST")]
    first_seed: u64,
    /// Directory for the runs and compare.json.
    #[arg(long)]
    out: PathBuf,
    /// Runs at once (each run is deterministic on its own; results do not depend on it).
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Also report this table column for the architecture each run chose (the best by
    /// --metric), e.g. the test accuracy; the searches never see it.
    #[arg(long, value_name = "COLUMN")]
    report_metric: Option<String>,
    #[command(flatten)]
    algo_args: AlgoArgs,
}

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

fn evaluator_config(e: &EvalArgs) -> Result<(SpaceKind, EvaluatorConfig, usize)> {
    let kind = e
        .space
        .context("--space is required (nb201, cnn-ws, cnn, rnn)")?;
    let metric = e
        .metric
        .clone()
        .context("--metric is required (the column or key to maximise)")?;
    if metric.to_lowercase().contains("test") && !e.allow_test_metric {
        bail!(
            "--metric `{metric}` looks like a test-set column: searching on it leaks the test set into the result. Search on a validation column and report the test column (nao compare --report-metric), or pass --allow-test-metric if this is really meant"
        );
    }
    let budget = e
        .budget
        .context("--budget is required (number of architectures to query)")?;
    if budget == 0 {
        bail!("--budget must be at least 1");
    }
    let ev = match (&e.table, e.command.is_empty()) {
        (Some(t), true) => {
            let path = std::fs::canonicalize(t)
                .with_context(|| format!("cannot find the table {}", t.display()))?;
            EvaluatorConfig::Table { path, metric }
        }
        (None, false) => EvaluatorConfig::Command {
            argv: e.command.clone(),
            metric,
            timeout_s: e.timeout_s,
        },
        (Some(_), false) => bail!("give either --table or a command after `--`, not both"),
        (None, true) => bail!("no evaluator: give --table FILE.csv or a command after `--`"),
    };
    Ok((kind, ev, budget))
}

fn algo_config(name: &str, budget: usize, a: &AlgoArgs) -> Result<AlgoConfig> {
    let name = if name == "nao" && a.variant == "paper" {
        "nao-paper"
    } else {
        name
    };
    let mut c = AlgoConfig::for_budget(name, budget).map_err(anyhow::Error::msg)?;
    match &mut c {
        AlgoConfig::Nao(n) => {
            if a.surrogate != "nao" || name == "nao" {
                n.surrogate = a.surrogate.clone();
            }
            if let Some(v) = a.initial {
                n.initial = v;
            }
            if let Some(v) = a.per_round {
                n.per_round = v.max(1);
            }
            if let Some(v) = a.top_k {
                n.top_k = v.max(1);
            }
            if let Some(v) = a.max_eta {
                n.max_eta = v;
            }
            if let Some(v) = a.candidates {
                n.candidates = v;
            }
            if a.fit_raw {
                n.fit_canonical = false;
            }
            if let Some(v) = a.ensemble {
                n.ensemble = v.max(1);
            }
            if let Some(v) = a.rank_weight {
                n.rank_weight = v;
            }
            if let Some(v) = &a.labels {
                n.labels = match v.as_str() {
                    "rank" => nao::search::nao::LabelScale::Rank,
                    _ => nao::search::nao::LabelScale::MinMax,
                };
            }
            if let Some(v) = a.explore {
                n.explore = v;
            }
            if let Some(v) = a.noise {
                n.noise = v;
            }
            if let Some(v) = a.temperature {
                if v.is_nan() || v < 0.0 {
                    bail!("--temperature must be 0 (greedy) or positive, got {v}");
                }
                n.temperature = v;
            }
            if let Some(v) = a.trust_radius {
                n.trust_radius = v;
            }
            if let Some(v) = a.expand_seeds {
                n.expand_seeds = v;
            }
            if let Some(v) = a.expand_radius {
                n.expand_radius = v;
            }
            if let Some(v) = a.draws {
                if v == 0 {
                    bail!("--draws must be at least 1");
                }
                n.draws = v;
            }
            if let Some(v) = a.focus {
                n.focus = v;
            }
            if let Some(v) = a.eta_step {
                if v.is_nan() || v <= 0.0 {
                    bail!("--eta-step must be positive, got {v}");
                }
                n.eta_step = v;
            }
            if a.fresh {
                n.fresh = true;
            }
            if let Some(v) = a.pseudo {
                n.pseudo = v;
            }
            if let Some(v) = a.pseudo_epochs {
                n.pseudo_epochs = v;
            }
            if let Some(v) = &a.predictor_input {
                n.predictor_input = match v.as_str() {
                    "concat" => nao::controller::PredictorInput::Concat,
                    _ => nao::controller::PredictorInput::Mean,
                };
            }
            if let Some(v) = a.pretrain {
                n.pretrain = v;
            }
            if let Some(v) = a.pretrain_epochs {
                n.pretrain_epochs = v;
            }
            if a.no_top_up {
                n.top_up = false;
            }
            if a.no_cool_down {
                n.cool_down = false;
            }
            if let Some(v) = a.reference {
                n.reference = v;
            }
        }
        AlgoConfig::Evolution(e) => {
            if let Some(v) = a.population {
                e.population = v.max(1);
                e.per_round = e.population;
                e.sample = (e.population / 4).max(3).min(e.population);
            }
            if let Some(v) = a.sample {
                e.sample = v.max(1);
            }
        }
        AlgoConfig::Random(_) | AlgoConfig::Local(_) => {}
    }
    Ok(c)
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

fn search(a: SearchArgs, global: &GlobalArgs) -> Result<i32> {
    // Bars on a terminal, plain lines otherwise.
    let progress = true;
    let config = if a.resume {
        read_config(&a.out)
            .with_context(|| format!("--resume: {} holds no run to continue", a.out.display()))?
    } else {
        let (space, evaluator, budget) = evaluator_config(&a.eval)?;
        SearchConfig {
            space,
            algo: algo_config(&a.algo, budget, &a.algo_args)?,
            budget,
            seed: a.seed,
            evaluator,
            eval_delay_ms: a.eval_delay_ms,
        }
    };
    let outcome = run_search(
        &a.out,
        &config,
        &RunOptions {
            resume: a.resume,
            progress,
            executor: a.executor.config(global)?,
            device: global.training_device.clone(),
        },
    )
    .with_context(|| format!("search in {}", a.out.display()))?;
    print!("{}", report::summary(&config, &outcome.records));
    if outcome.replayed > 0 {
        println!("({} evaluations replayed from the log)", outcome.replayed);
    }
    println!("wrote {}", a.out.join("report.md").display());
    if outcome.records.iter().all(|r| r.score.is_none()) {
        eprintln!(
            "error: no evaluation succeeded ({} failed); the reasons are in {}",
            outcome.records.len(),
            a.out.join("archs.jsonl").display()
        );
        return Ok(1);
    }
    Ok(0)
}

fn compare(a: CompareArgs, device: &autograd::Device) -> Result<i32> {
    let progress = std::io::stderr().is_terminal() && a.jobs <= 1;
    let (space, evaluator, budget) = evaluator_config(&a.eval)?;
    // Read the table once up front so that errors show before any run starts.
    let best_possible = evaluator.build(space, device)?.best_possible();
    let report_values = match (&a.report_metric, &evaluator) {
        (None, _) => None,
        (Some(col), EvaluatorConfig::Table { path, metric }) => {
            let s = models::space::space(space);
            let t = nao::evaluator::table::TableEvaluator::from_csv(path, s.as_ref(), metric)?;
            Some((col.clone(), t.column_values(col)?))
        }
        (Some(_), _) => bail!("--report-metric needs a --table"),
    };
    let mut results: Vec<AlgoResults> = Vec::new();
    for name in &a.algos {
        let config = SearchConfig {
            space,
            algo: algo_config(name, budget, &a.algo_args)?,
            budget,
            seed: 0,
            evaluator: evaluator.clone(),
            eval_delay_ms: 0,
        };
        let seeds = a.first_seed..a.first_seed + a.seeds;
        eprintln!("running {name} for seeds {seeds:?}");
        let best = run_seeds_on(&config, name, seeds, &a.out, progress, a.jobs, device)?;
        let scores: Vec<f64> = best
            .iter()
            .map(|r| r.as_ref().and_then(|r| r.score).unwrap_or(f64::NAN))
            .collect();
        let reported = report_values.as_ref().map(|(col, values)| {
            best.iter()
                .map(|r| {
                    r.as_ref()
                        .and_then(|r| values.get(&r.arch).copied())
                        .unwrap_or_else(|| {
                            eprintln!("warning: no `{col}` for a chosen architecture");
                            f64::NAN
                        })
                })
                .collect()
        });
        results.push((name.clone(), scores, reported));
    }
    let table = compare_table(&a, budget, evaluator.metric(), best_possible, &results);
    print!("{table}");
    let pairs: Vec<serde_json::Value> = results
        .iter()
        .skip(1)
        .map(|(other, ob, orep)| {
            let (first, fb, frep) = &results[0];
            serde_json::json!({
                "a": first,
                "b": other,
                "search_metric": paired_stats(fb, ob),
                "report_metric": frep.as_ref().zip(orep.as_ref()).map(|(x, y)| paired_stats(x, y)),
            })
        })
        .collect();
    let out = serde_json::json!({
        "budget": budget,
        "seeds": a.seeds,
        "first_seed": a.first_seed,
        "metric": evaluator.metric(),
        "report_metric": a.report_metric,
        "best_possible": best_possible,
        "best_per_seed": results.iter().map(|(n, b, _)| (n.clone(), serde_json::json!(b))).collect::<serde_json::Map<_, _>>(),
        "reported_per_seed": results.iter().filter_map(|(n, _, r)| r.as_ref().map(|r| (n.clone(), serde_json::json!(r)))).collect::<serde_json::Map<_, _>>(),
        "pairs": pairs,
    });
    std::fs::create_dir_all(&a.out)?;
    nao::run::atomic::write_json_atomic(&a.out.join("compare.json"), &out)?;
    write_atomic(&a.out.join("compare.md"), table.as_bytes())?;
    println!(
        "wrote {} and compare.md",
        a.out.join("compare.json").display()
    );
    Ok(0)
}

/// One algorithm's results in `nao compare`: its name, the best searched score per seed and
/// (with `--report-metric`) the chosen cells' reported values.
type AlgoResults = (String, Vec<f64>, Option<Vec<f64>>);

/// The comparison as a Markdown table: per algorithm mean +- std of the search metric and
/// (if any) of the report metric, and the first algorithm against each other one on the
/// report metric (else the search metric): wins-losses-ties and exact p-values.
fn compare_table(
    a: &CompareArgs,
    budget: usize,
    metric: &str,
    best_possible: Option<f64>,
    results: &[AlgoResults],
) -> String {
    use std::fmt::Write;
    let mut t = String::new();
    let judged = a.report_metric.as_deref().unwrap_or(metric);
    let _ = writeln!(
        t,
        "budget {budget}, seeds {}..{}, search on `{metric}`{}",
        a.first_seed,
        a.first_seed + a.seeds,
        a.report_metric
            .as_ref()
            .map(|r| format!(", chosen cell judged by `{r}`"))
            .unwrap_or_default()
    );
    let _ = writeln!(t);
    let _ = writeln!(
        t,
        "| algorithm | {metric} (searched) | {judged} | vs {}: W-L-T | sign p | Wilcoxon p |",
        results.first().map_or("", |r| r.0.as_str())
    );
    let _ = writeln!(t, "|---|---|---|---|---|---|");
    let first = results.first();
    for (name, scores, rep) in results {
        let s = paired_stats(scores, scores);
        let judged_vals = rep.as_ref().unwrap_or(scores);
        let r = paired_stats(judged_vals, judged_vals);
        let vs = match first {
            Some((fname, fs, frep)) if fname != name => {
                let fj = frep.as_ref().unwrap_or(fs);
                let p = paired_stats(fj, judged_vals);
                format!(
                    "{}-{}-{} | {:.2e} | {:.2e}",
                    p.wins_a, p.wins_b, p.ties, p.sign_test_p, p.wilcoxon_p
                )
            }
            _ => "- | - | -".into(),
        };
        let _ = writeln!(
            t,
            "| {name} | {:.2} +- {:.2} | {:.2} +- {:.2} | {vs} |",
            s.mean_a, s.std_a, r.mean_a, r.std_a
        );
    }
    if let Some(bp) = best_possible {
        let _ = writeln!(t, "\nbest `{metric}` in the table: {bp:.2}");
    }
    t
}
