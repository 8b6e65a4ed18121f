//! NAO-WS: NAO with weight sharing (spec section 7), over any [`SharedWeights`].
//!
//! A pool of `nao.initial` random architectures is drawn. Then each round:
//!
//! 1. **Train** the shared weights for `eval_every` epochs (the last round: what is left of
//!    `epochs`), continuing from the previous round (never re-initialised): every step
//!    samples **one architecture uniformly from the pool** and trains its path on one
//!    minibatch ([`SharedWeights::train_step`]).
//! 2. **Score** every architecture of the pool with the current shared weights
//!    ([`SharedWeights::score`], e.g. dev accuracy on one batch); each score is one line of
//!    `archs.jsonl`.
//! 3. Unless it is the last round: **fit the controller** (warm: it continues from the
//!    previous round) on the whole pool, labels normalised over the pool as `nao.labels`
//!    says; **generate** up to `nao.per_round` new architectures (unseen canonical forms)
//!    from the top `nao.top_k` by the step sizes of `nao.max_eta`, exactly as a NAO round
//!    does ([`super::generate::generate_round`]: trust region and its widening, candidate
//!    selection, cool-down, as `nao` configures them; random unseen ones top a short
//!    generation up, recorded as `top_up`); **replace** the worst of the pool by them (the
//!    pool size stays constant, [PT-V1]).
//!
//! The result is the pool as scored in the last round; its best is the search's best.
//!
//! # Run directory
//!
//! | file | what |
//! |---|---|
//! | `config.json` | [`WsSearchConfig`] |
//! | `manifest.json` | as `nao search` ([`crate::run::Manifest`]) |
//! | `archs.jsonl` | one [`Record`] per (round, pool architecture) score; no timings |
//! | `rounds.jsonl` | per round: training loss, pool scores, controller fit, generation, ranking stability |
//! | `timings.jsonl` | wall time per round |
//! | `checkpoint/round-R/` | `state.json` (round, RNG, pool), `shared/` (weights, optimiser, data position), `surrogate/` |
//! | `result.json`, `best-1.svg`..., `curve.svg`, `report.md` | the final pool's best, pictures, report |
//!
//! A checkpoint is written after every round; `--resume` restores the newest one and
//! cuts the logs back to it, so a run killed at any point continues to exactly the bytes an
//! uninterrupted run writes (everything random flows from the run's seed through the
//! checkpointed generator and the shared weights' saved state).

use std::collections::HashSet;
use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use models::space::{Arch, space};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::diagnostics::{kendall_tau, mean, pairwise_accuracy};
use super::generate::generate_round;
use super::nao::{NaoConfig, labels};
use super::surrogate::{Surrogate, SurrogateError};
use super::{Record, Source, Status, ranked};
use crate::error::{Error, Result, io_err};
use crate::run::atomic::{JsonlAppender, read_lines, write_atomic, write_json_atomic};
use crate::run::{Manifest, now_iso, read_json};

pub use super::ws_config::{WsConfig, WsSearchConfig};

/// Weights shared by every architecture of a space (a supernet), as the NAO-WS loop uses
/// them. Implementations keep their own data position and optimiser; all their randomness
/// comes from the generator passed in, and [`save`](Self::save) / [`load`](Self::load)
/// restore the state exactly, so a resumed search repeats an uninterrupted one bit for bit.
pub trait SharedWeights {
    /// A short description (network, data, optimiser), for `config.json`-adjacent logs.
    fn describe(&self) -> Value;

    /// Training steps in one epoch (one pass over the training data).
    fn steps_per_epoch(&self) -> usize;

    /// Trains the path of `arch` (tokens of the search space) on the next training
    /// minibatch; returns the minibatch loss. An error (e.g. a diverged loss) stops the
    /// search.
    fn train_step(&mut self, arch: &Arch, rng: &mut Pcg64Mcg) -> Result<f64, SurrogateError>;

    /// The score of `arch` (higher is better) with the current weights, on held-out data
    /// chosen with `rng` (e.g. one random dev batch). Changes no weight.
    fn score(&mut self, arch: &Arch, rng: &mut Pcg64Mcg) -> Result<f64, SurrogateError>;

    /// Writes the whole state (weights, optimiser, data position) into the existing, empty
    /// directory `dir`.
    fn save(&self, dir: &Path) -> Result<(), SurrogateError>;

    /// Restores what [`save`](Self::save) wrote.
    fn load(&mut self, dir: &Path) -> Result<(), SurrogateError>;
}

/// One pool member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolEntry {
    /// Tokens.
    pub arch: Arch,
    /// Where it came from.
    pub source: Source,
    /// The round it joined the pool (0 = the initial random pool).
    pub born: usize,
    /// The controller's prediction when it was generated, in score units.
    pub predicted: Option<f64>,
    /// The step size that generated it.
    pub eta: Option<f64>,
    /// Its latest score.
    pub score: Option<f64>,
}

#[derive(Serialize, Deserialize)]
struct WsState {
    round: usize,
    n_records: usize,
    rng: Pcg64Mcg,
    pool: Vec<PoolEntry>,
    seen: Vec<Arch>,
}

/// What a finished NAO-WS run returns.
#[derive(Debug, Clone)]
pub struct WsOutcome {
    /// Every score, in order (one per pool member per round).
    pub records: Vec<Record>,
    /// The final pool's scores (the last round's records), best first.
    pub final_ranked: Vec<Record>,
    /// Rounds run.
    pub rounds: usize,
}

/// How to run: `resume` continues the run in the directory; `progress` shows a bar (or,
/// when stderr is not a terminal, one plain line per round).
#[derive(Debug, Clone, Copy, Default)]
pub struct WsRunOptions {
    /// Continue the run in the directory.
    pub resume: bool,
    /// Report progress.
    pub progress: bool,
}

/// Runs (or resumes) NAO-WS in `dir` with `shared` weights and the controller `surrogate`.
/// The best-scored architecture of the final pool (the last round's scores) and of the
/// initial random pool (round 0's scores), from a NAO-WS run's records: what the final
/// trainings of `nao cifar --ws` and `nao ptb --ws` compare.
pub fn final_and_random_best(records: &[Record]) -> (Option<&Record>, Option<&Record>) {
    let last = records.iter().map(|r| r.round).max().unwrap_or(0);
    let best_in = |round: usize| super::best_of(records.iter().filter(|r| r.round == round));
    (best_in(last), best_in(0))
}

/// Without `opts.resume`, `dir` must not hold a run yet.
pub fn run_ws(
    dir: &Path,
    config: &WsSearchConfig,
    shared: &mut dyn SharedWeights,
    surrogate: &mut dyn Surrogate,
    opts: WsRunOptions,
) -> Result<WsOutcome> {
    config.ws.validate().map_err(Error::Config)?;
    let started = Instant::now();
    let sp = space(config.space);
    let (cfg_path, man_path, ckpt) = (
        dir.join("config.json"),
        dir.join("manifest.json"),
        dir.join("checkpoint"),
    );
    let mut rng = Pcg64Mcg::seed_from_u64(config.seed);
    let mut records: Vec<Record> = Vec::new();
    let mut pool: Vec<PoolEntry> = Vec::new();
    let mut seen: HashSet<Arch> = HashSet::new();
    let mut next_round = 0;
    let mut manifest;
    if opts.resume {
        let stored: WsSearchConfig = read_json(&cfg_path)?;
        if &stored != config {
            return Err(Error::Config(format!(
                "{} does not match the settings given for --resume (resume with the same preset and seed, or choose another --out)",
                cfg_path.display()
            )));
        }
        manifest = read_json::<Manifest>(&man_path)?;
        manifest.invocations += 1;
        let logged = read_records_lenient(&dir.join("archs.jsonl"))?;
        if let Some(name) = std::fs::read_to_string(ckpt.join("latest"))
            .ok()
            .map(|s| s.trim().to_string())
        {
            let cdir = ckpt.join(&name);
            let st: WsState = read_json(&cdir.join("state.json"))?;
            shared
                .load(&cdir.join("shared"))
                .map_err(|e| Error::Surrogate(format!("loading the shared weights: {e}")))?;
            surrogate
                .load(&cdir.join("surrogate"))
                .map_err(|e| Error::Surrogate(format!("loading the controller: {e}")))?;
            if logged.len() < st.n_records {
                return Err(Error::Config(format!(
                    "{}: the checkpoint counts {} scores but archs.jsonl holds {}",
                    cdir.display(),
                    st.n_records,
                    logged.len()
                )));
            }
            records = logged[..st.n_records].to_vec();
            (rng, pool, next_round) = (st.rng, st.pool, st.round + 1);
            seen = st.seen.into_iter().collect();
        }
        cut_logs(dir, records.len(), next_round)?;
    } else {
        if cfg_path.exists() {
            return Err(Error::Config(format!(
                "{} already holds a run: pass --resume to continue it, or choose another --out",
                dir.display()
            )));
        }
        std::fs::create_dir_all(dir).map_err(io_err("cannot create", dir))?;
        write_json_atomic(&cfg_path, config)?;
        manifest = Manifest::starting(config.seed);
    }
    manifest.status = "running".into();
    write_json_atomic(&man_path, &manifest)?;
    let prior_wall = manifest.wall_time_s;

    let rounds = config.ws.rounds();
    let per_epoch = shared.steps_per_epoch();
    let terminal = std::io::stderr().is_terminal();
    let bar = if opts.progress && terminal {
        let b = ProgressBar::new((config.ws.epochs * per_epoch) as u64);
        b.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} supernet steps  {msg} ({eta})",
            )
            .expect("valid template"),
        );
        b.enable_steady_tick(Duration::from_millis(200));
        b.set_position(
            (config.ws.eval_every * next_round * per_epoch).min(config.ws.epochs * per_epoch)
                as u64,
        );
        b
    } else {
        ProgressBar::hidden()
    };
    let mut archs_log = JsonlAppender::open(&dir.join("archs.jsonl"))?;
    let mut rounds_log = JsonlAppender::open(&dir.join("rounds.jsonl"))?;
    let mut timings = JsonlAppender::open(&dir.join("timings.jsonl"))?;
    let result = (|| -> Result<()> {
        if next_round == 0 && pool.is_empty() {
            for a in random_unseen_into(&*sp, &mut seen, config.ws.nao.initial, &mut rng) {
                pool.push(PoolEntry {
                    arch: a,
                    source: Source::Random,
                    born: 0,
                    predicted: None,
                    eta: None,
                    score: None,
                });
            }
        }
        for round in next_round..rounds {
            let t0 = Instant::now();
            let first_epoch = round * config.ws.eval_every;
            let epochs = config.ws.eval_every.min(config.ws.epochs - first_epoch);
            // 1. Train the shared weights.
            let mut losses = Vec::with_capacity(epochs * per_epoch);
            for step in 0..epochs * per_epoch {
                let i = rng.random_range(0..pool.len());
                let loss = shared
                    .train_step(&pool[i].arch, &mut rng)
                    .map_err(|e| Error::Config(format!("round {round}, step {step}: {e}")))?;
                losses.push(loss);
                bar.inc(1);
                if step % 10 == 0 {
                    bar.set_message(format!("round {round}/{rounds} loss {loss:.3}"));
                }
            }
            let train_s = t0.elapsed().as_secs_f64();
            // 2. Score the whole pool.
            bar.set_message(format!(
                "round {round}: scoring {} architectures",
                pool.len()
            ));
            let previous: Vec<Option<f64>> = pool.iter().map(|p| p.score).collect();
            for p in pool.iter_mut() {
                let s = shared
                    .score(&p.arch, &mut rng)
                    .map_err(|e| Error::Config(format!("round {round}, scoring: {e}")))?;
                p.score = Some(s);
                let rec = Record {
                    index: records.len(),
                    round,
                    source: p.source,
                    text: sp.to_text(&p.arch),
                    canonical: sp.canonical(&p.arch),
                    arch: p.arch.clone(),
                    status: Status::Ok,
                    error: None,
                    score: Some(s),
                    metrics: Map::from_iter([("born".to_string(), json!(p.born))]),
                    extras: None,
                    predicted: p.predicted.filter(|_| p.born == round),
                    eta: p.eta.filter(|_| p.born == round),
                    parent: None,
                };
                archs_log.append(&rec)?;
                records.push(rec);
            }
            let score_s = t0.elapsed().as_secs_f64() - train_s;
            let scores: Vec<f64> = pool.iter().map(|p| p.score.unwrap()).collect();
            let (kept_prev, kept_now): (Vec<f64>, Vec<f64>) = previous
                .iter()
                .zip(&scores)
                .filter_map(|(a, b)| a.map(|a| (a, *b)))
                .unzip();
            let new_scores: Vec<(f64, f64)> = pool
                .iter()
                .filter(|p| p.born == round && p.predicted.is_some())
                .map(|p| (p.score.unwrap(), p.predicted.unwrap()))
                .collect();
            let mut line = Map::new();
            line.insert("round".into(), json!(round));
            line.insert("epochs_done".into(), json!(first_epoch + epochs));
            line.insert("steps".into(), json!(losses.len()));
            line.insert("train_loss".into(), json!(mean(&losses)));
            line.insert("pool".into(), json!(pool.len()));
            line.insert("pool_mean".into(), json!(mean(&scores)));
            line.insert(
                "best".into(),
                json!(scores.iter().copied().reduce(f64::max)),
            );
            line.insert(
                "stability_kendall_tau".into(),
                json!(kendall_tau(&kept_prev, &kept_now)),
            );
            line.insert(
                "heldout_pairwise_acc".into(),
                json!(pairwise_accuracy(
                    &new_scores.iter().map(|x| x.0).collect::<Vec<_>>(),
                    &new_scores.iter().map(|x| x.1).collect::<Vec<_>>()
                )),
            );
            // 3. Controller, generation, replacement.
            if round + 1 < rounds {
                bar.set_message(format!("round {round}: fitting the controller"));
                line.extend(generate(
                    &config.ws.nao,
                    &*sp,
                    surrogate,
                    &mut pool,
                    &mut seen,
                    round + 1,
                    &mut rng,
                    &bar,
                ));
            }
            rounds_log.append(&line)?;
            timings.append(&json!({
                "round": round,
                "wall_s": t0.elapsed().as_secs_f64(),
                "train_s": train_s,
                "score_s": score_s,
            }))?;
            write_checkpoint(
                &ckpt,
                round,
                records.len(),
                &rng,
                &pool,
                &seen,
                shared,
                surrogate,
            )?;
            if opts.progress && !terminal {
                eprintln!(
                    "nao-ws round {}/{rounds}: {} epochs done, train loss {:.4}, pool mean {:.4}, best {:.4} | round {:.0} s (train {:.0} s, score {:.0} s) | elapsed {:.0} s",
                    round + 1,
                    first_epoch + epochs,
                    mean(&losses).unwrap_or(f64::NAN),
                    mean(&scores).unwrap_or(f64::NAN),
                    scores.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                    t0.elapsed().as_secs_f64(),
                    train_s,
                    score_s,
                    started.elapsed().as_secs_f64()
                );
            }
        }
        Ok(())
    })();
    bar.finish_and_clear();
    manifest.end_time = Some(now_iso());
    manifest.wall_time_s = prior_wall + started.elapsed().as_secs_f64();
    if let Err(e) = result {
        manifest.status = format!("failed: {e}");
        write_json_atomic(&man_path, &manifest)?;
        return Err(e);
    }
    manifest.status = "finished".into();
    write_json_atomic(&man_path, &manifest)?;
    let last = rounds.saturating_sub(1);
    let final_ranked: Vec<Record> = ranked(&records)
        .into_iter()
        .filter(|r| r.round == last)
        .cloned()
        .collect();
    super::ws_report::write_outputs(dir, config, &records, &final_ranked)?;
    Ok(WsOutcome {
        records,
        final_ranked,
        rounds,
    })
}

/// Fits the controller on the pool, generates ([`generate_round`], as NAO does), tops a
/// short generation up with random unseen architectures, and replaces the worst of the
/// pool by the new ones; returns the diagnostics for `rounds.jsonl`.
#[allow(clippy::too_many_arguments)]
fn generate(
    nao: &NaoConfig,
    sp: &dyn models::space::SearchSpace,
    surrogate: &mut dyn Surrogate,
    pool: &mut Vec<PoolEntry>,
    seen: &mut HashSet<Arch>,
    next_round: usize,
    rng: &mut Pcg64Mcg,
    progress: &ProgressBar,
) -> Map<String, Value> {
    let form = |a: &Arch| {
        if nao.fit_canonical {
            sp.canonical(a)
        } else {
            a.clone()
        }
    };
    let scores: Vec<f64> = pool.iter().map(|p| p.score.unwrap()).collect();
    let (ys, denorm) = labels(&scores, nao.labels);
    let data: Vec<(Arch, f64)> = pool
        .iter()
        .map(|p| form(&p.arch))
        .zip(ys.iter().copied())
        .collect();
    let fit = surrogate.fit(&data, rng);
    let archs: Vec<Arch> = data.iter().map(|d| d.0.clone()).collect();
    let train_acc = pairwise_accuracy(&ys, &surrogate.predict(&archs));
    // Seeds: the top by score (earlier pool position first among ties).
    let mut order: Vec<usize> = (0..pool.len()).collect();
    order.sort_by(|&i, &j| scores[j].total_cmp(&scores[i]).then(i.cmp(&j)));
    let ranked_forms: Vec<Arch> = order
        .iter()
        .take(nao.top_k.max(nao.expand_seeds))
        .map(|&i| form(&pool[i].arch))
        .collect();
    let g = generate_round(
        nao,
        sp,
        surrogate,
        &ranked_forms,
        nao.per_round,
        seen,
        rng,
        progress,
        next_round - 1,
    );
    let mut taken = g.taken;
    let mut new: Vec<(Arch, Option<f64>)> =
        g.archs.into_iter().map(|(a, eta)| (a, Some(eta))).collect();
    let generated = new.len();
    // The top-up avoids this round's candidates too: the pool holds each architecture once.
    let top_up = if nao.top_up {
        random_unseen_into(sp, &mut taken, nao.per_round - generated, rng)
    } else {
        Vec::new()
    };
    let n_top_up = top_up.len();
    new.extend(top_up.into_iter().map(|a| (a, None)));
    // Seen: the pool's architectures ever, not the candidates the selection dropped (as in
    // NAO, a later round may generate those again).
    seen.extend(new.iter().map(|n| sp.canonical(&n.0)));
    let preds = if new.is_empty() {
        Vec::new()
    } else {
        surrogate.predict(&new.iter().map(|n| form(&n.0)).collect::<Vec<_>>())
    };
    // Replace the worst: keep the best `pool - new` in their order of rank.
    let keep = pool.len() - new.len();
    let mut kept: Vec<usize> = order[..keep].to_vec();
    kept.sort_unstable();
    let mut next: Vec<PoolEntry> = kept.iter().map(|&i| pool[i].clone()).collect();
    for ((a, eta), p) in new.into_iter().zip(preds) {
        next.push(PoolEntry {
            arch: a,
            source: if eta.is_some() {
                Source::Generated
            } else {
                Source::TopUp
            },
            born: next_round,
            predicted: Some(denorm(p)),
            eta,
            score: None,
        });
    }
    *pool = next;
    let mut m = Map::new();
    m.insert("fit_mse".into(), json!(fit.mse));
    m.insert("fit_ce".into(), json!(fit.ce));
    m.insert("train_pairwise_acc".into(), json!(train_acc));
    m.insert("seeds".into(), json!(g.seeds));
    m.insert("radius".into(), json!(g.radius));
    if let Some(t) = g.cooled_to {
        m.insert("temperature".into(), json!(t));
    }
    m.insert("generate_calls".into(), json!(g.calls));
    m.insert("candidates".into(), json!(g.candidates));
    m.insert("generated".into(), json!(generated));
    m.insert("invalid_generated".into(), json!(g.invalid));
    m.insert("top_up".into(), json!(n_top_up));
    m
}

/// Up to `n` uniformly random architectures whose canonical forms are not in `seen`
/// ([`super::random_unseen`]); their canonical forms are added to `seen`.
fn random_unseen_into(
    sp: &dyn models::space::SearchSpace,
    seen: &mut HashSet<Arch>,
    n: usize,
    rng: &mut Pcg64Mcg,
) -> Vec<Arch> {
    let out = super::random_unseen(sp, seen, n, rng);
    seen.extend(out.iter().map(|a| sp.canonical(a)));
    out
}

/// The records of `archs.jsonl`, a torn last line (a crash mid-append) left out.
fn read_records_lenient(path: &Path) -> Result<Vec<Record>> {
    let mut v = Vec::new();
    for l in read_lines(path)? {
        match serde_json::from_str(&l) {
            Ok(r) => v.push(r),
            Err(_) => break,
        }
    }
    Ok(v)
}

/// Cuts `archs.jsonl` back to `n_records` lines and `rounds.jsonl` / `timings.jsonl` to the
/// rounds before `next_round`.
fn cut_logs(dir: &Path, n_records: usize, next_round: usize) -> Result<()> {
    let keep = |name: &str, f: &dyn Fn(usize, &str) -> bool| -> Result<()> {
        let p = dir.join(name);
        let lines: Vec<String> = read_lines(&p)?
            .into_iter()
            .enumerate()
            .filter(|(i, l)| f(*i, l))
            .map(|(_, l)| l)
            .collect();
        let mut text = lines.join("\n");
        if !lines.is_empty() {
            text.push('\n');
        }
        write_atomic(&p, text.as_bytes())
    };
    keep("archs.jsonl", &|i, _| i < n_records)?;
    let before = |_: usize, l: &str| {
        serde_json::from_str::<Value>(l)
            .ok()
            .and_then(|v| v["round"].as_u64())
            .is_some_and(|r| (r as usize) < next_round)
    };
    keep("rounds.jsonl", &before)?;
    keep("timings.jsonl", &before)
}

/// Writes `checkpoint/round-R/` through a temporary directory and a rename, points
/// `checkpoint/latest` at it, and keeps the two newest.
#[allow(clippy::too_many_arguments)]
fn write_checkpoint(
    ckpt: &Path,
    round: usize,
    n_records: usize,
    rng: &Pcg64Mcg,
    pool: &[PoolEntry],
    seen: &HashSet<Arch>,
    shared: &dyn SharedWeights,
    surrogate: &dyn Surrogate,
) -> Result<()> {
    let name = format!("round-{round}");
    let (tmp, fin) = (ckpt.join(format!(".{name}.tmp")), ckpt.join(&name));
    for d in [&tmp, &fin] {
        if d.exists() {
            std::fs::remove_dir_all(d).map_err(io_err("cannot remove", d))?;
        }
    }
    for sub in ["shared", "surrogate"] {
        let d = tmp.join(sub);
        std::fs::create_dir_all(&d).map_err(io_err("cannot create", &d))?;
    }
    shared
        .save(&tmp.join("shared"))
        .map_err(|e| Error::Surrogate(format!("saving the shared weights: {e}")))?;
    surrogate
        .save(&tmp.join("surrogate"))
        .map_err(|e| Error::Surrogate(format!("saving the controller: {e}")))?;
    let mut seen: Vec<Arch> = seen.iter().cloned().collect();
    seen.sort();
    let st = WsState {
        round,
        n_records,
        rng: rng.clone(),
        pool: pool.to_vec(),
        seen,
    };
    write_json_atomic(&tmp.join("state.json"), &st)?;
    atomic_file::publish_dir(&tmp, &fin).map_err(io_err("cannot rename into", &fin))?;
    write_atomic(&ckpt.join("latest"), format!("{name}\n").as_bytes())?;
    if round >= 2 {
        let _ = std::fs::remove_dir_all(ckpt.join(format!("round-{}", round - 2)));
    }
    Ok(())
}
