//! The settings of NAO ([`NaoConfig`]; presets for a budget and the paper's Algorithm 1)
//! and how measured scores become the controller's labels ([`LabelScale`], [`labels`]).
//! Apart from the algorithm ([`super::nao`]) so that the generation stage
//! ([`super::generate`]) it calls can read them without importing it.

use crate::controller::PredictorInput;
use serde::{Deserialize, Serialize};

/// How measured scores become the controller's labels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelScale {
    /// Min-max normalised over the pool (spec 4.4).
    #[default]
    MinMax,
    /// The score's rank in the pool, scaled to [0, 1] (ties share their mean rank): the
    /// long tail of bad architectures no longer squeezes the good ones together.
    Rank,
}

fn one() -> usize {
    1
}

fn unit() -> f64 {
    1.0
}

fn yes() -> bool {
    true
}

/// Settings of NAO.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NaoConfig {
    /// Random architectures evaluated before the first controller update.
    pub initial: usize,
    /// New architectures asked of the controller per round.
    pub per_round: usize,
    /// Seeds: the top `top_k` by measured score.
    pub top_k: usize,
    /// Largest step size eta tried.
    pub max_eta: usize,
    /// Architectures of the pool used to measure reconstruction (evenly spaced).
    pub recon_sample: usize,
    /// The surrogate's name (`nao`, `nao:EPOCHS`, or `linear`).
    pub surrogate: String,
    /// Candidates generated per round before selection (0 = off, the spec's behaviour:
    /// evaluate the first `per_round` generated). When larger than the round's quota, up to
    /// `candidates` new architectures are generated, all are scored by the predictor, and
    /// only the `per_round` best predicted are evaluated (a deviation from the spec; only
    /// evaluated architectures count against the budget).
    #[serde(default)]
    pub candidates: usize,
    /// Fit the surrogate on, and generate from, the canonical forms of the architectures
    /// ([`SearchSpace::canonical`](models::space::SearchSpace::canonical): e.g. NB201 ops on
    /// dead edges set to `none`) instead of the sequences as queried. Equivalent
    /// architectures then share one sequence, so the predictor does not spend its few
    /// examples on tokens that do not change the network (a deviation from the spec, whose
    /// controller sees the raw sequences). Predictions (screening, diagnostics) use the same
    /// form. `false` in run directories written before it.
    #[serde(default)]
    pub fit_canonical: bool,
    /// Controllers in the surrogate's ensemble (1 = the spec).
    #[serde(default = "one")]
    pub ensemble: usize,
    /// Weight of the pairwise hinge ranking loss in the controller's loss (0 = the spec).
    #[serde(default)]
    pub rank_weight: f64,
    /// How scores become labels (min-max = the spec).
    #[serde(default)]
    pub labels: LabelScale,
    /// Generation perturbs each gradient step in the embedding space by this much (relative
    /// to the unit-length encoder outputs; 0 = the spec's deterministic step), so that the
    /// decoder proposes more distinct architectures around each seed.
    #[serde(default)]
    pub noise: f64,
    /// Generation samples each token from the decoder's distribution at the moved point
    /// (softmax of its logits divided by this temperature, within the space's masks)
    /// instead of taking the most likely one (0 = greedy, the spec). The decoder then
    /// proposes several architectures it finds likely around each moved seed, not only
    /// the one it reconstructs; screening picks among them.
    #[serde(default)]
    pub temperature: f64,
    /// Trust region of generation: a decoded architecture more than this many tokens away
    /// from the seed it was moved from (canonical forms) is dropped, and generation goes on
    /// to further steps (and, when sampling, further draws) until enough are found
    /// (0 = off, the spec). It keeps the evaluated architectures near the best measured,
    /// where the landscape is locally smooth, and the predictor chooses among them.
    #[serde(default)]
    pub trust_radius: usize,
    /// Widening the trust region when generation falls short: if generation from the
    /// `top_k` seeds within `trust_radius` yields fewer new architectures than the round's
    /// quota, the seeds grow to the top `expand_seeds` (when larger than `top_k`), then the
    /// radius grows one token at a time, up to `trust_radius + expand_radius`, before random
    /// architectures top the round up (0, 0 = off). Late in a search the one-token
    /// neighbourhoods of the best cells are used up; this keeps the round's architectures
    /// coming out of the decoder, as close to the best cells as the quota allows.
    #[serde(default)]
    pub expand_seeds: usize,
    /// See [`expand_seeds`](Self::expand_seeds).
    #[serde(default)]
    pub expand_radius: usize,
    /// Generation passes over the step-size schedule per trust region (1 = the spec's one
    /// pass): when the decoder is sampled (`temperature` > 0), further passes draw further
    /// architectures around the same seeds, until `candidates` are found or a pass finds
    /// nothing new. Generation costs little next to fitting the controller.
    #[serde(default = "one")]
    pub draws: usize,
    /// Up to this many of each round's architectures come from the neighbourhood of the
    /// best measured cell alone (TuRBO's trust region centred on the incumbent, Eriksson
    /// et al. 2019): before the other seeds are used, the decoder generates around the top
    /// seed within the trust radius, and the best predicted of those fill these slots; the
    /// rest of the round is generated as without it, from the top `top_k` (0 = off, the
    /// spec). When the best cell's neighbourhood is used up, the round falls back to the
    /// other seeds.
    #[serde(default)]
    pub focus: usize,
    /// Semi-supervised fitting (SemiNAS, Luo et al., NeurIPS 2020): after each round's fit,
    /// this many random architectures (not queried, not counted against the budget) get the
    /// controller's predictions as pseudo-labels, and the controller trains
    /// `pseudo_epochs` more epochs on the labelled and pseudo-labelled architectures
    /// together. The decoder then learns to reconstruct far more of the space than the
    /// pool, so moved embeddings decode to new architectures (0 = off, the spec; 500 by
    /// default from budget [`PSEUDO_FROM_BUDGET`] up).
    #[serde(default)]
    pub pseudo: usize,
    /// Epochs of the pseudo-labelled training per round.
    #[serde(default)]
    pub pseudo_epochs: usize,
    /// Unsupervised pre-training (arch2vec, Yan et al. NeurIPS 2020; SemiNAS's
    /// unlabelled data): before the first fit, the controller's encoder and decoder train
    /// `pretrain_epochs` epochs to reconstruct this many random architectures (not queried,
    /// not counted against the budget, never labelled or predicted), so that the encoder
    /// places the whole space and not only the few evaluated cells (0 = off, the spec).
    /// With `fresh`, the first fit's new controllers discard it.
    #[serde(default)]
    pub pretrain: usize,
    /// Epochs of the pre-training.
    #[serde(default)]
    pub pretrain_epochs: usize,
    /// What the controller's predictor reads: the architecture embedding (`mean`, the spec)
    /// or the encoder outputs of every step side by side (`concat`).
    #[serde(default)]
    pub predictor_input: PredictorInput,
    /// Step-size increment of generation: eta = `eta_step`, 2 `eta_step`, ... up to
    /// `max_eta` (1 = the spec's integer schedule).
    #[serde(default = "unit")]
    pub eta_step: f64,
    /// Train a fresh controller every round (new initial weights, fresh optimiser) instead
    /// of continuing the previous round's (false = continue).
    #[serde(default)]
    pub fresh: bool,
    /// Screening by `mean + explore * spread` of the ensemble's predictions instead of the
    /// mean (0 = the mean).
    #[serde(default)]
    pub explore: f64,
    /// When generation within the widest trust region still yields fewer new architectures
    /// than the round asks for, sample the decoder cooler (the temperature halved, down to
    /// 0.5, then greedy) before any random top-up. Needed where sequences are long (the
    /// `rnn` space's 22 tokens: at the default temperature nearly every sample lands more
    /// than 3 tokens from its seed); a no-op where the trust region is off.
    #[serde(default = "yes")]
    pub cool_down: bool,
    /// When generation yields fewer new architectures than the round asks for, evaluate
    /// random unseen ones instead (logged as `top_up`); without it the round is short.
    #[serde(default = "yes")]
    pub top_up: bool,
    /// Size of the evaluator's fixed reference sample on which each round measures the
    /// predictor (Kendall tau, pairwise accuracy); 0 = off. Only evaluators that know scores
    /// without querying (tables) have one; it never influences the search.
    #[serde(default)]
    pub reference: usize,
}

/// The smallest budget at which [`NaoConfig::for_budget`] turns SemiNAS pseudo-labels on:
/// measured on the real NAS-Bench-201 tables, they lift NAO at budgets 100 and 200 and
/// do not at 50 (ARCHITECTURE.md, "SemiNAS pseudo-labels").
pub const PSEUDO_FROM_BUDGET: usize = 100;

impl NaoConfig {
    /// Defaults for a budget of N queries: `initial` = max(10, min(15 N / 100, 10 + N / 20))
    /// (at most N; 10, 15, 20 at N = 50, 100, 200), `per_round` = clamp(N/10, 5, 10) (5,
    /// 10, 10), `top_k` = clamp(initial, 5, 10), step sizes eta = 0.1,
    /// 0.2, ... up to `max_eta` = 5, decoder sampling at `temperature` 4 within a
    /// `trust_radius` of 1 token around each seed, widened to up to 3 tokens
    /// (`expand_radius` 2) when that yields fewer than the round asks for, `candidates` =
    /// 10 max(5, N/10) (ten per evaluation up to N = 100, twenty at N = 200), rank labels,
    /// `fit_canonical`, surrogate `nao` (the controller), and from N = 100
    /// ([`PSEUDO_FROM_BUDGET`]) SemiNAS pseudo-labels (`pseudo` 500, `pseudo_epochs` 30;
    /// off below). Rounds
    /// after the first: ceil((N - initial) / per_round) (e.g. N = 100: 15 initial, then 9
    /// rounds of 10, seeds the top 10, each round the 10 best predicted of what the decoder
    /// proposes within one token of the seeds, or two or three when one is used up).
    ///
    /// Deviations from the spec, each chosen by measurement (ARCHITECTURE.md has the
    /// ablation): the surrogate fits on canonical forms (`fit_canonical`); the round
    /// evaluates the best predicted of up to ten times as many generated candidates
    /// (`candidates`); and generation stays near the best measured cells (a smaller random
    /// pool and seed set, fine step sizes, the decoder sampled instead of read greedily,
    /// and a trust region widened only when it runs dry), where the real NAS-Bench-201
    /// landscape is locally smooth; labels are the scores' ranks in the pool, so the
    /// predictor separates the good cells instead of squeezing them near the top of a
    /// min-max scale; and from budget 100 the controller also trains on pseudo-labelled
    /// random cells (SemiNAS, Luo et al. 2020, by NAO's authors). The
    /// paper's settings are [`paper`](Self::paper).
    pub fn for_budget(budget: usize) -> Self {
        let semi = budget >= PSEUDO_FROM_BUDGET;
        let initial = (budget * 15 / 100)
            .min(10 + budget / 20)
            .max(10)
            .min(budget);
        let per_round = (budget / 10).clamp(5, 10);
        NaoConfig {
            initial,
            per_round,
            top_k: initial.clamp(5, 10),
            max_eta: 5,
            recon_sample: 256,
            surrogate: "nao".into(),
            candidates: 10 * (budget / 10).max(5),
            fit_canonical: true,
            ensemble: 1,
            rank_weight: 0.0,
            labels: LabelScale::Rank,
            noise: 0.0,
            temperature: 4.0,
            trust_radius: 1,
            expand_seeds: 0,
            expand_radius: 2,
            draws: 1,
            focus: 0,
            eta_step: 0.1,
            fresh: false,
            pseudo: if semi { 500 } else { 0 },
            pseudo_epochs: if semi { 30 } else { 0 },
            pretrain: 0,
            pretrain_epochs: 0,
            predictor_input: PredictorInput::Mean,
            explore: 0.0,
            cool_down: true,
            top_up: true,
            reference: 1000,
        }
    }

    /// The paper's Algorithm 1 (spec 4-5) for a budget of N queries: `initial` = max(10,
    /// 3N/10) random architectures, `per_round` = max(5, N/10), seeds = the top 100, step
    /// sizes eta = 1, 2, ... up to 50 (the PyTorch version's cap), greedy decoding, 1000
    /// controller epochs per round, the first generated architectures evaluated (no
    /// screening), the controller fitted on the sequences as queried, min-max labels, one
    /// controller, no ranking loss; random top-ups only when generation falls short
    /// (logged as such).
    pub fn paper(budget: usize) -> Self {
        NaoConfig {
            initial: (budget * 3 / 10).max(10).min(budget),
            per_round: (budget / 10).max(5),
            top_k: 100,
            max_eta: 50,
            eta_step: 1.0,
            temperature: 0.0,
            trust_radius: 0,
            expand_radius: 0,
            draws: 1,
            labels: LabelScale::MinMax,
            surrogate: "nao:1000".into(),
            candidates: 0,
            fit_canonical: false,
            cool_down: false,
            pseudo: 0,
            pseudo_epochs: 0,
            ..Self::for_budget(budget)
        }
    }
}

/// Labels of `scores` under `scale`, and the map from a predicted label back to score units.
pub fn labels(scores: &[f64], scale: LabelScale) -> (Vec<f64>, Box<dyn Fn(f64) -> f64>) {
    let lo = scores.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    match scale {
        LabelScale::MinMax => {
            let y = scores
                .iter()
                .map(|&s| if hi > lo { (s - lo) / (hi - lo) } else { 0.5 })
                .collect();
            (
                y,
                Box::new(move |y| if hi > lo { lo + y * (hi - lo) } else { lo }),
            )
        }
        LabelScale::Rank => {
            let n = scores.len();
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by(|&i, &j| scores[i].total_cmp(&scores[j]));
            let mut y = vec![0.5; n];
            let mut i = 0;
            while i < n {
                let mut j = i;
                while j + 1 < n && scores[order[j + 1]] == scores[order[i]] {
                    j += 1;
                }
                let r = if n > 1 {
                    (i + j) as f64 / 2.0 / (n - 1) as f64
                } else {
                    0.5
                };
                for &k in &order[i..=j] {
                    y[k] = r;
                }
                i = j + 1;
            }
            // Back to score units: interpolate the sorted scores at the predicted quantile.
            let sorted: Vec<f64> = order.iter().map(|&i| scores[i]).collect();
            (
                y,
                Box::new(move |q: f64| {
                    if sorted.is_empty() {
                        return f64::NAN;
                    }
                    let x = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
                    let k = (x.floor() as usize).min(sorted.len() - 1);
                    let k1 = (k + 1).min(sorted.len() - 1);
                    sorted[k] + (x - k as f64) * (sorted[k1] - sorted[k])
                }),
            )
        }
    }
}
