//! The command line's arguments: the subcommands, their flags and `--help` texts (clap
//! derive). What each subcommand does is in [`super`] and [`super::search`].

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use models::space::SpaceKind;

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
pub(super) struct Cli {
    /// Where datasets live [default: $NAO_DATA_DIR, else ./data].
    #[arg(long, global = true, value_name = "DIR")]
    pub(super) data_dir: Option<PathBuf>,
    /// Device for training child networks and the NAO controller (`cuda` needs a build
    /// with the `cuda` feature and a GPU).
    #[arg(long, global = true, value_enum, default_value_t = Device::Cpu)]
    pub(super) device: Device,
    /// Never touch the network: a missing dataset is an error saying where to put it
    /// (by default it is downloaded, resumably, and checked).
    #[arg(long, global = true)]
    pub(super) offline: bool,
    #[command(subcommand)]
    pub(super) command: Cmd,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(super) enum Device {
    Cpu,
    Cuda,
}

#[derive(Subcommand, Debug)]
pub(super) enum Cmd {
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
pub(super) struct EvalArgs {
    /// The search space (nb201, cnn-ws, cnn, rnn).
    #[arg(long)]
    pub(super) space: Option<SpaceKind>,
    /// A CSV lookup table: header row, column `arch` (the architecture's text form).
    #[arg(long, value_name = "FILE.csv")]
    pub(super) table: Option<PathBuf>,
    /// The table column, or JSON key of the command's output, to maximise.
    #[arg(long, value_name = "COLUMN")]
    pub(super) metric: Option<String>,
    /// Allow a --metric whose name contains `test` (searching on test data leaks it into the
    /// result; normally a mistake).
    #[arg(long)]
    pub(super) allow_test_metric: bool,
    /// Time limit per evaluation for an external command, seconds.
    #[arg(long, default_value_t = 600.0)]
    pub(super) timeout_s: f64,
    /// Number of distinct architectures to query.
    #[arg(long)]
    pub(super) budget: Option<usize>,
    /// An external evaluator command (after `--`); `{arch}` is replaced by the text form.
    #[arg(last = true, value_name = "COMMAND")]
    pub(super) command: Vec<String>,
}

#[derive(Args, Debug)]
pub(super) struct SearchArgs {
    #[command(flatten)]
    pub(super) eval: EvalArgs,
    /// The algorithm (`nao-paper` = `nao --variant paper`).
    #[arg(long, value_parser = ["nao", "nao-paper", "random", "evolution", "local"], default_value = "nao")]
    pub(super) algo: String,
    /// Seed of the run.
    #[arg(long, default_value_t = 0)]
    pub(super) seed: u64,
    /// The run directory.
    #[arg(long)]
    pub(super) out: PathBuf,
    /// Continue the interrupted run in --out (its config.json gives the settings).
    #[arg(long)]
    pub(super) resume: bool,
    #[command(flatten)]
    pub(super) algo_args: AlgoArgs,
    #[command(flatten)]
    pub(super) executor: ExecutorArgs,
    /// Sleep this long before every evaluation (testing).
    #[arg(long, hide = true, default_value_t = 0)]
    pub(super) eval_delay_ms: u64,
}

#[derive(Args, Debug, Clone)]
pub(super) struct ExecutorArgs {
    /// Where evaluations run: `inline` (in this process, one after another), `local` (up to
    /// --workers child processes `nao eval` on this machine, threads split among them) or
    /// `slurm` (each round's batch one `sbatch --array` job; the run directory must be on a
    /// file system the nodes share). The records are the same whichever runs them.
    #[arg(long, value_parser = ["inline", "local", "slurm"], default_value = "inline", help_heading = "Executor")]
    pub(super) executor: String,
    /// --executor local: evaluations at once (`nao cifar`: also its two final trainings
    /// side by side, each on its share of the threads).
    #[arg(long, default_value_t = 2, help_heading = "Executor")]
    pub(super) workers: usize,
    /// --executor slurm: `sbatch --partition` (default: the cluster's).
    #[arg(long, help_heading = "Executor")]
    pub(super) slurm_partition: Option<String>,
    /// --executor slurm: `sbatch --time` of each evaluation, e.g. `2:00:00`.
    #[arg(long, help_heading = "Executor")]
    pub(super) slurm_time: Option<String>,
    /// --executor slurm: `sbatch --gres`, e.g. `gpu:1` (tasks then train with --device cuda).
    #[arg(long, help_heading = "Executor")]
    pub(super) slurm_gres: Option<String>,
    /// --executor slurm: further `sbatch` options, passed through (split at whitespace).
    #[arg(long, allow_hyphen_values = true, help_heading = "Executor")]
    pub(super) slurm_extra: Option<String>,
    /// --executor slurm: at most this many tasks of a batch at once (`--array=...%N`).
    #[arg(long, help_heading = "Executor")]
    pub(super) slurm_max_parallel: Option<usize>,
}

impl ExecutorArgs {
    /// The executor, with tasks started as this binary with the global options that
    /// matter to an evaluation.
    pub(super) fn config(&self, global: &GlobalArgs) -> Result<nao::executor::ExecutorConfig> {
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
pub(super) struct GlobalArgs {
    pub(super) data_dir: Option<PathBuf>,
    pub(super) device: Device,
    pub(super) offline: bool,
    /// `--device`, opened once at startup and passed to everything that trains.
    pub(super) training_device: autograd::Device,
}

impl GlobalArgs {
    pub(super) fn task_args(&self) -> Vec<String> {
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
pub(super) struct AlgoArgs {
    /// NAO surrogate: `nao` (the controller: LSTM encoder, MLP predictor, attention decoder,
    /// 200 training epochs per round), `nao:EPOCHS`, or `linear` (ridge regression on one-hot
    /// tokens, a cheap baseline).
    #[arg(long, default_value = "nao", help_heading = "NAO")]
    pub(super) surrogate: String,
    /// NAO: random architectures before the first round [default: max(10, 0.15 budget); paper: max(10, 0.3 budget)].
    #[arg(long, help_heading = "NAO")]
    pub(super) initial: Option<usize>,
    /// NAO: new architectures per round [default: max(5, budget/10)].
    #[arg(long, help_heading = "NAO")]
    pub(super) per_round: Option<usize>,
    /// NAO: seeds = top K by measured score [default: clamp(initial, 5, 10); paper: 100].
    #[arg(long, help_heading = "NAO")]
    pub(super) top_k: Option<usize>,
    /// NAO: largest step size eta [default: 5; paper: 50].
    #[arg(long, help_heading = "NAO")]
    pub(super) max_eta: Option<usize>,
    /// NAO: generate up to this many new architectures per round and evaluate only the
    /// per-round best predicted; 0 evaluates the first generated, as the paper
    /// [default: 10 per-round].
    #[arg(long, help_heading = "NAO")]
    pub(super) candidates: Option<usize>,
    /// NAO: fit the controller on the sequences as queried, as the paper, instead of on
    /// their canonical forms.
    #[arg(long, help_heading = "NAO")]
    pub(super) fit_raw: bool,
    /// NAO: `default` (this project's settings, see ARCHITECTURE.md) or `paper` (exactly the
    /// paper's Algorithm 1: seeds the top 100, 1000 controller epochs, no screening, raw
    /// sequences, min-max labels, one controller); the flags below override either.
    #[arg(long, value_parser = ["default", "paper"], default_value = "default", help_heading = "NAO")]
    pub(super) variant: String,
    /// NAO: controllers in the ensemble (predictions averaged; each generates) [default: 1].
    #[arg(long, help_heading = "NAO")]
    pub(super) ensemble: Option<usize>,
    /// NAO: weight of the pairwise hinge ranking loss in the controller loss [default: 0].
    #[arg(long, help_heading = "NAO")]
    pub(super) rank_weight: Option<f64>,
    /// NAO: labels from scores: `minmax` (the paper) or `rank` (pool quantiles)
    /// [default: rank; paper: minmax].
    #[arg(long, value_parser = ["minmax", "rank"], help_heading = "NAO")]
    pub(super) labels: Option<String>,
    /// NAO: perturb each gradient step in the embedding space by this much before decoding
    /// (relative to the unit-length encoder outputs) [default: 0].
    #[arg(long, help_heading = "NAO")]
    pub(super) noise: Option<f64>,
    /// NAO: sample each decoded token from the decoder's distribution at this temperature
    /// instead of taking the most likely (0 = greedy, the paper) [default: 4; paper: 0].
    #[arg(long, help_heading = "NAO")]
    pub(super) temperature: Option<f64>,
    /// NAO: keep only decoded architectures within this many tokens of their seed (a
    /// trust region; 0 = off, the paper) [default: 1; paper: 0].
    #[arg(long, help_heading = "NAO")]
    pub(super) trust_radius: Option<usize>,
    /// NAO: when generation falls short of the round's quota, take seeds from the top N
    /// (if more than --top-k) before random top-ups (0 = off, the paper) [default: 0].
    #[arg(long, help_heading = "NAO")]
    pub(super) expand_seeds: Option<usize>,
    /// NAO: when generation falls short, widen the trust radius by up to this many tokens,
    /// one at a time, before random top-ups (0 = off, the paper) [default: 2; paper: 0].
    #[arg(long, help_heading = "NAO")]
    pub(super) expand_radius: Option<usize>,
    /// NAO: passes over the step-size schedule per trust region while candidates are short
    /// (further decoder samples; 1 = the paper's single pass) [default: 1].
    #[arg(long, help_heading = "NAO")]
    pub(super) draws: Option<usize>,
    /// NAO: up to this many of each round's cells come from the best measured cell's
    /// neighbourhood alone (the best predicted of what the decoder proposes around it),
    /// before the other seeds are used (0 = off, the paper) [default: 0].
    #[arg(long, help_heading = "NAO")]
    pub(super) focus: Option<usize>,
    /// NAO: train a fresh controller every round instead of continuing the last one.
    #[arg(long, help_heading = "NAO")]
    pub(super) fresh: bool,
    /// NAO: step-size increment of generation (eta = S, 2S, ... up to --max-eta)
    /// [default: 0.1; paper: 1].
    #[arg(long, help_heading = "NAO")]
    pub(super) eta_step: Option<f64>,
    /// NAO: SemiNAS pseudo-labels: this many random unqueried architectures labelled by the
    /// controller join its training each round [default: 500 from budget 100 up, else 0;
    /// paper: 0].
    #[arg(long, help_heading = "NAO")]
    pub(super) pseudo: Option<usize>,
    /// NAO: epochs of the pseudo-labelled training per round [default: 30 from budget 100
    /// up, else 0; paper: 0].
    #[arg(long, help_heading = "NAO")]
    pub(super) pseudo_epochs: Option<usize>,
    /// NAO: unsupervised pre-training of the controller's autoencoder on this many random
    /// unqueried architectures before the first fit (arch2vec / SemiNAS) [default: 0].
    #[arg(long, help_heading = "NAO")]
    pub(super) pretrain: Option<usize>,
    /// NAO: epochs of the autoencoder pre-training [default: 0].
    #[arg(long, help_heading = "NAO")]
    pub(super) pretrain_epochs: Option<usize>,
    /// NAO: what the controller's predictor reads: `mean` (the architecture embedding, the
    /// paper) or `concat` (every encoder step's output side by side) [default: mean].
    #[arg(long, value_parser = ["mean", "concat"], help_heading = "NAO")]
    pub(super) predictor_input: Option<String>,
    /// NAO: screen candidates by mean + EXPLORE * ensemble spread [default: 0].
    #[arg(long, help_heading = "NAO")]
    pub(super) explore: Option<f64>,
    /// NAO: when generation falls short, leave the round short instead of topping it up
    /// with random architectures.
    #[arg(long, help_heading = "NAO")]
    pub(super) no_top_up: bool,
    /// NAO: when generation within the widest trust region falls short, top up at once
    /// instead of first sampling the decoder cooler (halved temperatures, then greedy).
    #[arg(long, help_heading = "NAO")]
    pub(super) no_cool_down: bool,
    /// NAO: size of the table's fixed sample on which each round measures the predictor
    /// (Kendall tau); 0 = off [default: 1000].
    #[arg(long, help_heading = "NAO")]
    pub(super) reference: Option<usize>,
    /// Evolution: population size P [default: clamp(budget/10, 10, 100)].
    #[arg(long, help_heading = "Evolution")]
    pub(super) population: Option<usize>,
    /// Evolution: tournament sample size S [default: max(3, P/4)].
    #[arg(long, help_heading = "Evolution")]
    pub(super) sample: Option<usize>,
}

#[derive(Args, Debug)]
pub(super) struct CompareArgs {
    #[command(flatten)]
    pub(super) eval: EvalArgs,
    /// Comma-separated algorithms; the first is compared with each other one.
    #[arg(long, default_value = "nao,random,evolution", value_delimiter = ',')]
    pub(super) algos: Vec<String>,
    /// Number of seeds (FIRST..FIRST+k).
    #[arg(long, default_value_t = 10)]
    pub(super) seeds: u64,
    /// The first seed (e.g. 100 for a tuning set disjoint from the reported seeds 0..k).
    #[arg(long, default_value_t = 0, value_name = "FIRST")]
    pub(super) first_seed: u64,
    /// Directory for the runs and compare.json.
    #[arg(long)]
    pub(super) out: PathBuf,
    /// Runs at once (each run is deterministic on its own; results do not depend on it).
    #[arg(long, default_value_t = 1)]
    pub(super) jobs: usize,
    /// Also report this table column for the architecture each run chose (the best by
    /// --metric), e.g. the test accuracy; the searches never see it.
    #[arg(long, value_name = "COLUMN")]
    pub(super) report_metric: Option<String>,
    #[command(flatten)]
    pub(super) algo_args: AlgoArgs,
}
