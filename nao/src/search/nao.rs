//! NAO: Algorithm 1 of the paper over any [`Surrogate`].
//!
//! Round 0 evaluates `initial` random architectures (distinct by canonical form). Each later
//! round: fit the surrogate on every successful evaluation so far (on their canonical forms
//! when `fit_canonical`), labels min-max normalised over that pool (failed evaluations
//! excluded); take the `top_k` architectures by measured score as seeds; generate up to
//! `per_round` new ones with step sizes eta = `eta_step`, 2 `eta_step`, ... up to `max_eta`
//! (greedy decoding, or sampled at `temperature`; within `trust_radius` tokens of their seed
//! when set, `draws` passes), or up to `candidates` and keep the `per_round` best predicted;
//! predict their scores (before evaluating: a held-out test of the predictor); evaluate
//! them. If generation yields fewer than asked, the trust region widens (`expand_seeds`,
//! `expand_radius`), and if that is not enough either, random unseen architectures top the
//! round up (recorded as `top_up`). With `pretrain`, round 1 first pre-trains the
//! surrogate's autoencoder on that many random architectures that are never queried
//! ([`Surrogate::pretrain`]). Diagnostics per round: predictor pairwise accuracy on the pool
//! and on the new batch, reconstruction exact-match rate and Hamming distance, mean
//! predicted against mean measured score of the batch, the step sizes used (`eta_counts`: `[eta, count]` pairs in increasing eta), and `candidates`, the number
//! generated before selection.

use std::collections::BTreeMap;
use std::path::Path;

use models::space::Arch;
use serde_json::{Map, Value, json};

use super::diagnostics::{hamming, kendall_tau, mean, pairwise_accuracy, reconstruction};
use super::generate::generate_round;
pub use super::nao_config::{LabelScale, NaoConfig, PSEUDO_FROM_BUDGET, labels};
use super::surrogate::Surrogate;
use super::{Algorithm, Ctx, Query, Source, ranked};
use crate::error::{Error, Result};

/// NAO search (see the module docs).
pub struct Nao {
    config: NaoConfig,
    surrogate: Box<dyn Surrogate>,
}

impl Nao {
    /// With `config` and `surrogate`.
    pub fn new(config: NaoConfig, surrogate: Box<dyn Surrogate>) -> Self {
        Nao { config, surrogate }
    }
}

fn opt(x: Option<f64>) -> Value {
    x.map_or(Value::Null, |v| json!(v))
}

impl Algorithm for Nao {
    fn round(&mut self, ctx: &mut Ctx<'_>, round: usize) -> Result<Map<String, Value>> {
        let mut m = Map::new();
        if round == 0 {
            let n = self.config.initial.min(ctx.remaining());
            ctx.progress.set_message("round 0: initial random pool");
            // One batch (run in parallel by an executor).
            let queries = ctx
                .random_unseen(n)
                .into_iter()
                .map(Query::random)
                .collect();
            let new = ctx.query_batch(queries, 0)?.iter().flatten().count();
            m.insert("new".into(), json!(new));
            return Ok(m);
        }
        // 1. Fit on the pool (labels per `labels`).
        let canonical = self.config.fit_canonical;
        let space = ctx.space;
        let form = |a: &Arch| {
            if canonical {
                space.canonical(a)
            } else {
                a.clone()
            }
        };
        let pool: Vec<(Arch, f64)> = ctx
            .records
            .iter()
            .filter_map(|r| r.score.map(|s| (form(&r.arch), s)))
            .collect();
        let scores: Vec<f64> = pool.iter().map(|p| p.1).collect();
        let lo = scores.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (ys, denorm) = labels(&scores, self.config.labels);
        let data: Vec<(Arch, f64)> = pool.iter().map(|p| p.0.clone()).zip(ys).collect();
        ctx.progress.set_message(format!(
            "round {round}: fitting the surrogate on {}",
            data.len()
        ));
        // random architectures that are never queried (pre-training, pseudo-labels)
        let unlabelled = |n: usize, rng: &mut rand_pcg::Pcg64Mcg| -> Vec<Arch> {
            (0..n).map(|_| form(&space.sample(rng))).collect()
        };
        let clock = std::time::Instant::now();
        if round == 1 && self.config.pretrain > 0 && self.config.pretrain_epochs > 0 {
            ctx.progress.set_message(format!(
                "round 1: pre-training the autoencoder on {} unlabelled",
                self.config.pretrain
            ));
            let unlabelled = unlabelled(self.config.pretrain, &mut ctx.rng);
            self.surrogate
                .pretrain(&unlabelled, self.config.pretrain_epochs, &mut ctx.rng);
        }
        let mut fit = self.surrogate.fit(&data, &mut ctx.rng);
        if self.config.pseudo > 0 && self.config.pseudo_epochs > 0 && !data.is_empty() {
            ctx.progress.set_message(format!(
                "round {round}: pseudo-labelling {}",
                self.config.pseudo
            ));
            let unlabelled = unlabelled(self.config.pseudo, &mut ctx.rng);
            let pseudo = self.surrogate.predict(&unlabelled);
            let mut both = data.clone();
            both.extend(unlabelled.into_iter().zip(pseudo));
            fit = self
                .surrogate
                .fit_epochs(&both, self.config.pseudo_epochs, &mut ctx.rng);
        }
        let fit_s = clock.elapsed().as_secs_f64();
        // 2. Diagnostics on the training pool and the reference sample.
        let pool_archs: Vec<Arch> = data.iter().map(|d| d.0.clone()).collect();
        let pool_labels: Vec<f64> = data.iter().map(|d| d.1).collect();
        let train_acc = if pool_archs.is_empty() {
            None
        } else {
            pairwise_accuracy(&pool_labels, &self.surrogate.predict(&pool_archs))
        };
        let k = self.config.recon_sample.min(pool_archs.len());
        let sample: Vec<Arch> = (0..k)
            .map(|i| pool_archs[i * pool_archs.len() / k].clone())
            .collect();
        let recon = reconstruction(&sample, &self.surrogate.reconstruct(&sample));
        let reference = if self.config.reference > 0 {
            ctx.reference_sample(self.config.reference)
        } else {
            None
        };
        let (ref_tau, ref_acc) = match reference.filter(|r| r.len() >= 2) {
            Some(reference) => {
                let archs: Vec<Arch> = reference.iter().map(|r| form(&r.0)).collect();
                let truth: Vec<f64> = reference.iter().map(|r| r.1).collect();
                let preds = self.surrogate.predict(&archs);
                (
                    kendall_tau(&truth, &preds),
                    pairwise_accuracy(&truth, &preds),
                )
            }
            None => (None, None),
        };
        let clock = std::time::Instant::now();
        // 3. Seeds and generation: within the trust region around the top seeds, widened
        // (more seeds, then a larger radius, then a cooler decoder) while the round's quota
        // is not met; the best predicted kept ([`generate_round`]).
        let widest = self.config.top_k.max(self.config.expand_seeds);
        let ranked_forms: Vec<Arch> = ranked(&ctx.records)
            .into_iter()
            .take(widest)
            .map(|r| form(&r.arch))
            .collect();
        let want = self.config.per_round.min(ctx.remaining());
        let g = generate_round(
            &self.config,
            ctx.space,
            &*self.surrogate,
            &ranked_forms,
            want,
            &ctx.seen,
            &mut ctx.rng,
            &ctx.progress,
            round,
        );
        let seeds = &ranked_forms[..g.seeds];
        // Wall times go to timings.jsonl, not rounds.jsonl (which the same seed reproduces).
        ctx.log_timing(&json!({
            "round": round,
            "fit_s": fit_s,
            "generate_s": clock.elapsed().as_secs_f64(),
        }))?;
        let mut batch: Vec<(Arch, Option<f64>)> =
            g.archs.into_iter().map(|(a, eta)| (a, Some(eta))).collect();
        let n_generated = batch.len();
        // Drawn against this round's candidates too (`g.taken`), not only the queried ones:
        // a top-up equal to a generated cell would be skipped as a repeat, leaving the
        // round one short.
        let top_up = if self.config.top_up {
            super::random_unseen(ctx.space, &g.taken, want - n_generated, &mut ctx.rng)
        } else {
            Vec::new()
        };
        let n_top_up = top_up.len();
        batch.extend(top_up.into_iter().map(|a| (a, None)));
        // 4. Predict before evaluating, then evaluate.
        let archs: Vec<Arch> = batch.iter().map(|b| form(&b.0)).collect();
        let preds = if archs.is_empty() {
            Vec::new()
        } else {
            self.surrogate.predict(&archs)
        };
        ctx.progress
            .set_message(format!("round {round}: evaluating {}", archs.len()));
        let mut gen_pairs = (Vec::new(), Vec::new()); // (measured, predicted) of generated
        let mut all_pairs = (Vec::new(), Vec::new());
        let mut etas: BTreeMap<u64, usize> = BTreeMap::new(); // key: eta.to_bits() (eta >= 0)
        let mut failed = 0;
        // How far each evaluated generated architecture is from its nearest seed (tokens).
        let seed_distance: Vec<f64> = batch
            .iter()
            .filter(|b| b.1.is_some())
            .map(|b| {
                let f = form(&b.0);
                seeds.iter().map(|s| hamming(s, &f)).min().unwrap_or(0) as f64
            })
            .collect();
        // One batch (run in parallel by an executor), recorded in this order.
        let queries: Vec<Query> = batch
            .into_iter()
            .zip(preds)
            .map(|((arch, eta), p)| Query {
                arch,
                source: if eta.is_some() {
                    Source::Generated
                } else {
                    Source::TopUp
                },
                predicted: Some(denorm(p)),
                eta,
                parent: None,
            })
            .collect();
        let asked: Vec<(Option<f64>, f64)> = queries
            .iter()
            .map(|q| (q.eta, q.predicted.unwrap_or(f64::NAN)))
            .collect();
        let indices = ctx.query_batch(queries, round)?;
        for ((eta, pred), index) in asked.into_iter().zip(indices) {
            if let Some(i) = index {
                if let Some(e) = eta {
                    *etas.entry(e.abs().to_bits()).or_default() += 1;
                }
                match ctx.records[i].score {
                    Some(s) => {
                        all_pairs.0.push(s);
                        all_pairs.1.push(pred);
                        if eta.is_some() {
                            gen_pairs.0.push(s);
                            gen_pairs.1.push(pred);
                        }
                    }
                    None => failed += 1,
                }
            }
        }
        let eta_values: Vec<f64> = etas
            .iter()
            .flat_map(|(&k, &n)| std::iter::repeat_n(f64::from_bits(k), n))
            .collect();
        let eta_counts: Vec<(f64, usize)> =
            etas.iter().map(|(&k, &n)| (f64::from_bits(k), n)).collect();
        m.insert("pool".into(), json!(data.len()));
        m.insert("label_min".into(), opt(lo.is_finite().then_some(lo)));
        m.insert("label_max".into(), opt(hi.is_finite().then_some(hi)));
        m.insert("fit_mse".into(), json!(fit.mse));
        m.insert("fit_ce".into(), json!(fit.ce));
        m.insert("train_pairwise_acc".into(), opt(train_acc));
        m.insert("recon_exact".into(), opt(recon.map(|r| r.0)));
        m.insert("recon_hamming".into(), opt(recon.map(|r| r.1)));
        m.insert("recon_n".into(), json!(k));
        m.insert("seeds".into(), json!(seeds.len()));
        m.insert("radius".into(), json!(g.radius));
        if let Some(t) = g.cooled_to {
            // Only when the round had to cool down (keeps earlier logs byte-identical).
            m.insert("temperature".into(), json!(t));
        }
        m.insert("generate_calls".into(), json!(g.calls));
        m.insert("requested".into(), json!(want));
        m.insert("candidates".into(), json!(g.candidates));
        m.insert("generated".into(), json!(n_generated));
        m.insert("invalid_generated".into(), json!(g.invalid));
        m.insert("top_up".into(), json!(n_top_up));
        m.insert("failed".into(), json!(failed));
        m.insert("new".into(), json!(n_generated + n_top_up));
        m.insert(
            "heldout_pairwise_acc".into(),
            opt(pairwise_accuracy(&gen_pairs.0, &gen_pairs.1)),
        );
        m.insert(
            "heldout_kendall_tau".into(),
            opt(kendall_tau(&gen_pairs.0, &gen_pairs.1)),
        );
        m.insert("reference_n".into(), json!(self.config.reference));
        m.insert("reference_kendall_tau".into(), opt(ref_tau));
        m.insert("reference_pairwise_acc".into(), opt(ref_acc));
        m.insert(
            "heldout_pairwise_acc_all".into(),
            opt(pairwise_accuracy(&all_pairs.0, &all_pairs.1)),
        );
        m.insert("batch_mean_predicted".into(), opt(mean(&gen_pairs.1)));
        m.insert("batch_mean_measured".into(), opt(mean(&gen_pairs.0)));
        m.insert(
            "batch_best_measured".into(),
            opt(gen_pairs.0.iter().copied().reduce(f64::max)),
        );
        m.insert("eta_counts".into(), json!(eta_counts));
        m.insert("seed_distance_mean".into(), opt(mean(&seed_distance)));
        m.insert("eta_mean".into(), opt(mean(&eta_values)));
        m.insert(
            "eta_max".into(),
            opt(eta_values.iter().copied().reduce(f64::max)),
        );
        Ok(m)
    }

    fn save_extra(&self, dir: &Path) -> Result<()> {
        self.surrogate
            .save(dir)
            .map_err(|e| Error::Surrogate(format!("saving to {}: {e}", dir.display())))
    }

    fn load_extra(&mut self, dir: &Path) -> Result<()> {
        self.surrogate
            .load(dir)
            .map_err(|e| Error::Surrogate(format!("loading from {}: {e}", dir.display())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minmax_labels_and_back() {
        let (y, back) = labels(&[50.0, 70.0, 60.0], LabelScale::MinMax);
        assert_eq!(y, vec![0.0, 1.0, 0.5]);
        assert_eq!(back(0.25), 55.0);
        let (y, back) = labels(&[3.0, 3.0], LabelScale::MinMax);
        assert_eq!(y, vec![0.5, 0.5]);
        assert_eq!(back(0.9), 3.0);
    }

    /// Rank labels spread the top of a long-tailed pool evenly: 10, 80, 81, 82 (min-max
    /// would give 0, 0.986, 0.9861, 1) become 0, 1/3, 2/3, 1; ties share their mean rank;
    /// predictions map back by interpolating the sorted scores.
    #[test]
    fn rank_labels_and_back() {
        let (y, back) = labels(&[82.0, 10.0, 81.0, 80.0], LabelScale::Rank);
        let want = [1.0, 0.0, 2.0 / 3.0, 1.0 / 3.0];
        for (a, b) in y.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{y:?}");
        }
        assert_eq!(back(1.0), 82.0);
        assert_eq!(back(0.0), 10.0);
        assert!((back(0.5) - 80.5).abs() < 1e-12);
        assert_eq!(back(2.0), 82.0);
        let (y, _) = labels(&[5.0, 7.0, 5.0], LabelScale::Rank);
        assert_eq!(y, vec![0.25, 1.0, 0.25]);
    }

    #[test]
    fn paper_variant_is_algorithm_one() {
        let p = NaoConfig::paper(100);
        assert_eq!(p.top_k, 100);
        assert_eq!((p.initial, p.per_round), (30, 10));
        assert_eq!((p.max_eta, p.eta_step), (50, 1.0));
        assert_eq!(p.candidates, 0);
        assert!(!p.fit_canonical);
        assert_eq!(p.surrogate, "nao:1000");
        assert_eq!(
            (p.ensemble, p.rank_weight, p.explore, p.noise, p.temperature),
            (1, 0.0, 0.0, 0.0, 0.0)
        );
        assert_eq!((p.trust_radius, p.expand_seeds, p.expand_radius), (0, 0, 0));
        assert_eq!(p.draws, 1);
        assert_eq!(p.labels, LabelScale::MinMax);
        assert!(p.top_up);
        // The spec's round size at every budget (the defaults cap theirs at 10).
        let p = NaoConfig::paper(200);
        assert_eq!((p.initial, p.per_round), (60, 20));
    }

    #[test]
    fn default_pool_and_rounds_scale_with_the_budget() {
        // (budget, initial, per_round, top_k, candidates)
        for (n, initial, per_round, top_k, candidates) in [
            (20, 10, 5, 10, 50),
            (50, 10, 5, 10, 50),
            (100, 15, 10, 10, 100),
            (200, 20, 10, 10, 200),
            (1000, 60, 10, 10, 1000),
        ] {
            let c = NaoConfig::for_budget(n);
            assert_eq!(
                (c.initial, c.per_round, c.top_k, c.candidates),
                (initial, per_round, top_k, candidates),
                "budget {n}"
            );
        }
    }

    #[test]
    fn pseudo_labels_are_on_by_default_from_budget_100_and_never_in_the_paper_variant() {
        for (n, on) in [
            (50, false),
            (99, false),
            (100, true),
            (200, true),
            (1000, true),
        ] {
            let c = NaoConfig::for_budget(n);
            let want = if on { (500, 30) } else { (0, 0) };
            assert_eq!((c.pseudo, c.pseudo_epochs), want, "budget {n}");
            let p = NaoConfig::paper(n);
            assert_eq!((p.pseudo, p.pseudo_epochs), (0, 0), "paper, budget {n}");
        }
    }
}
