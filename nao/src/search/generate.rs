//! The generation stage of a NAO round, shared by NAO ([`super::nao`]) and NAO-WS
//! ([`super::ws`]): with the controller fitted and the pool ranked, generate up to the round's
//! quota of new architectures around the best ones, widening the trust region (more seeds,
//! then a larger radius, then a cooler decoder) while the quota is not met, and keep the best
//! predicted when more were generated than asked for.
//!
//! What is not here, because the two loops differ: fitting the controller, the random
//! top-up of a short generation (both draw it against [`Generated::taken`], so that it
//! repeats neither a queried nor a generated cell; NAO-WS also keeps adding to that set,
//! since its pool must not hold one architecture twice), and the predictions in score units.

use std::collections::HashSet;

use indicatif::ProgressBar;
use models::space::{Arch, SearchSpace};
use rand_pcg::Pcg64Mcg;

use super::nao_config::NaoConfig;
use super::surrogate::Surrogate;

/// What [`generate_round`] found.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The new architectures with the step size that produced each: valid, their canonical
    /// forms distinct and not in the `seen` given. First the `focus` slots (the best
    /// predicted around the top seed, best first), then the rest: when more than the
    /// quota were generated, the quota's best by the controller's prediction (`mean +
    /// explore * spread`), best first; otherwise all of them, in generation order.
    pub archs: Vec<(Arch, f64)>,
    /// Seeds used by the last generation stage (the first `seeds` of the ranking given).
    pub seeds: usize,
    /// Trust radius of the last stage (tokens).
    pub radius: usize,
    /// The cooler decoder temperature the last stage sampled at, when the round had to
    /// cool down.
    pub cooled_to: Option<f64>,
    /// Calls of [`Surrogate::generate`].
    pub calls: usize,
    /// Architectures generated before the selection.
    pub candidates: usize,
    /// Decoded architectures the space rejected.
    pub invalid: usize,
    /// `seen` plus the canonical forms of every candidate (selected or not).
    pub taken: HashSet<Arch>,
}

/// Generates the round's new architectures from `ranked`, the pool's architectures best
/// first, in the form the controller was fitted on (canonical when `config.fit_canonical`;
/// at least the first `max(top_k, expand_seeds)` are needed). `want` is the round's quota,
/// `seen` the canonical forms not to generate again; messages go to `progress`.
///
/// With `config.focus`, up to that many of the `want` are first the best predicted of what
/// the decoder proposes around the top seed alone (its other proposals stay candidates).
/// Stages, each run only while fewer than `want` were found (the first always): the top
/// `top_k` seeds within `trust_radius`; the top `expand_seeds` (when larger); then, when the
/// trust region is on, radii `trust_radius + 1` ... `trust_radius + expand_radius`; then,
/// with `cool_down` and a sampling decoder, the widest region at half the decoder's
/// temperature, halving down to 0.5, and greedily. Each stage runs up to `draws` passes
/// (stopping after a pass that found nothing new) until `max(candidates, want)` are found.
#[allow(clippy::too_many_arguments)]
pub fn generate_round(
    config: &NaoConfig,
    space: &dyn SearchSpace,
    surrogate: &dyn Surrogate,
    ranked: &[Arch],
    want: usize,
    seen: &HashSet<Arch>,
    rng: &mut Pcg64Mcg,
    progress: &ProgressBar,
    round: usize,
) -> Generated {
    let form = |a: &Arch| {
        if config.fit_canonical {
            space.canonical(a)
        } else {
            a.clone()
        }
    };
    let widest = config.top_k.max(config.expand_seeds);
    let n_cand = config.candidates.max(want);
    // (seeds, radius, decoder temperature: None = the configured one)
    let mut stages = vec![(config.top_k, config.trust_radius, None)];
    if config.expand_seeds > config.top_k {
        stages.push((config.expand_seeds, config.trust_radius, None));
    }
    if config.trust_radius > 0 {
        for r in 1..=config.expand_radius {
            stages.push((widest, config.trust_radius + r, None));
        }
        // Still short: the decoder samples too far from the seeds for the trust region
        // (a temperature that flips one of NB201's 6 tokens flips half of the rnn
        // space's 22), so it samples cooler, halving down to 0.5, then reads greedily.
        if config.cool_down
            && let Some(t) = surrogate.temperature().filter(|&t| t > 0.0)
        {
            let widest_radius = config.trust_radius + config.expand_radius;
            let mut cooler = t / 2.0;
            while cooler >= 0.5 {
                stages.push((widest, widest_radius, Some(cooler)));
                cooler /= 2.0;
            }
            stages.push((widest, widest_radius, Some(0.0)));
        }
    }
    let ctx = RoundContext {
        config,
        space,
        surrogate,
        progress,
        round,
    };
    let mut cooled_to = None;
    let mut taken = seen.clone();
    let mut counts = Counts::default();
    // The incumbent's slots (`focus`): the best predicted of what the decoder proposes
    // around the top seed alone. Its other proposals stay candidates of the round.
    let mut focused: Vec<(Arch, f64)> = Vec::new();
    let mut batch: Vec<(Arch, f64)> = Vec::new();
    let n_focus = config.focus.min(want);
    if n_focus > 0 && !ranked.is_empty() {
        let mut near = Vec::new();
        // The screening's ratio for these slots (candidates per cell asked for), so that
        // where the top seed's region is large (`cnn`, `rnn`) it does not take the whole
        // candidate quota from the other seeds.
        let pass = Pass {
            seeds: &ranked[..1],
            radius: config.trust_radius,
            temperature: None,
            limit: (n_focus * n_cand).div_ceil(want),
        };
        pass.run(&ctx, &mut near, &mut taken, &mut counts, rng);
        let mut near = best_first(config, surrogate, near, &form).into_iter();
        focused.extend(near.by_ref().take(n_focus));
        batch.extend(near);
    }
    let want_rest = want - focused.len();
    let (mut seeds_used, mut radius_used) = (0, config.trust_radius);
    for (stage, &(k, radius, temperature)) in stages.iter().enumerate() {
        if want_rest == 0 || (stage > 0 && batch.len() >= want_rest) {
            break;
        }
        let seeds = &ranked[..k.min(ranked.len())];
        if seeds.is_empty() {
            break;
        }
        if temperature.is_some() {
            cooled_to = temperature;
        }
        (seeds_used, radius_used) = (seeds.len(), radius);
        let pass = Pass {
            seeds,
            radius,
            temperature,
            limit: n_cand.max(batch.len()),
        };
        pass.run(&ctx, &mut batch, &mut taken, &mut counts, rng);
    }
    let candidates = focused.len() + batch.len();
    if batch.len() > want_rest {
        // Keep the `want_rest` best by mean + explore * spread (stable: generation order
        // breaks ties).
        batch = best_first(config, surrogate, batch, &form);
        batch.truncate(want_rest);
    }
    focused.extend(batch);
    let batch = focused;
    let (calls, invalid) = (counts.calls, counts.invalid);
    Generated {
        archs: batch,
        seeds: seeds_used,
        radius: radius_used,
        cooled_to,
        calls,
        candidates,
        invalid,
        taken,
    }
}

/// Calls and rejected decodes of a round's generation passes.
#[derive(Default)]
struct Counts {
    calls: usize,
    invalid: usize,
}

/// One stage of generation: from `seeds` within `radius` at `temperature` (None = the
/// configured one), up to `config.draws` passes, until `batch` holds `limit`.
struct Pass<'a> {
    seeds: &'a [Arch],
    radius: usize,
    temperature: Option<f64>,
    limit: usize,
}

/// What every generation pass of a round reads.
struct RoundContext<'a> {
    config: &'a NaoConfig,
    space: &'a dyn SearchSpace,
    surrogate: &'a dyn Surrogate,
    progress: &'a ProgressBar,
    round: usize,
}

impl Pass<'_> {
    /// Appends what it generates to `batch` (valid, canonical form not in `taken`, which
    /// gains it).
    fn run(
        &self,
        ctx: &RoundContext,
        batch: &mut Vec<(Arch, f64)>,
        taken: &mut HashSet<Arch>,
        counts: &mut Counts,
        rng: &mut Pcg64Mcg,
    ) {
        let RoundContext {
            config,
            space,
            surrogate,
            progress,
            round,
        } = *ctx;
        let radius = self.radius;
        for draw in 0..config.draws.max(1) {
            if batch.len() >= self.limit {
                break;
            }
            progress.set_message(format!(
                "round {round}: generating {} from {} seeds within {radius}",
                self.limit - batch.len(),
                self.seeds.len()
            ));
            let generated = surrogate.generate(
                self.seeds,
                self.limit - batch.len(),
                taken,
                config.max_eta,
                radius,
                self.temperature,
                rng,
            );
            counts.calls += 1;
            let before = batch.len();
            for (a, eta) in generated {
                if batch.len() >= self.limit {
                    break;
                }
                if space.validate(&a).is_err() {
                    counts.invalid += 1;
                    continue;
                }
                if taken.insert(space.canonical(&a)) {
                    batch.push((a, eta));
                }
            }
            if draw > 0 && batch.len() == before {
                break; // this stage's region is used up
            }
        }
    }
}

/// `batch` reordered best first by the controller's `mean + explore * spread` of the form
/// it was fitted on (stable: generation order breaks ties).
fn best_first(
    config: &NaoConfig,
    surrogate: &dyn Surrogate,
    batch: Vec<(Arch, f64)>,
    form: &dyn Fn(&Arch) -> Arch,
) -> Vec<(Arch, f64)> {
    if batch.is_empty() {
        return batch;
    }
    let preds = surrogate.predict_spread(&batch.iter().map(|b| form(&b.0)).collect::<Vec<_>>());
    let mut scored: Vec<(f64, (Arch, f64))> = preds
        .iter()
        .map(|(m, s)| m + config.explore * s)
        .zip(batch)
        .collect();
    // A stable sort: equal scores keep generation order.
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.into_iter().map(|(_, cell)| cell).collect()
}
