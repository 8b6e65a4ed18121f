//! Regularised evolution (Real et al., "Regularized Evolution for Image Classifier
//! Architecture Search", 2019).
//!
//! A population of `population` architectures starts at random. Each step samples
//! `sample` members uniformly (with replacement), mutates the best of the sample by
//! changing one uniformly chosen position to another allowed token, evaluates the child,
//! appends it to the population and removes the oldest member. A child whose canonical form
//! was queried already is re-drawn (up to 100 mutations, then a random unseen
//! architecture), since repeats are not new queries; a failed child does not join the
//! population.

use std::collections::VecDeque;

use rand::RngExt;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{Algorithm, Ctx, Query, Source};
use crate::error::{Error, Result};

/// Settings of regularised evolution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvolutionConfig {
    /// Population size P.
    pub population: usize,
    /// Tournament sample size S.
    pub sample: usize,
    /// Mutations per round (checkpoint granularity only).
    pub per_round: usize,
}

impl EvolutionConfig {
    /// P = budget / 10 clamped to 10..=100, S = max(3, P / 4), P mutations per round.
    pub fn for_budget(budget: usize) -> Self {
        let population = (budget / 10).clamp(10, 100);
        EvolutionConfig {
            population,
            sample: (population / 4).max(3).min(population),
            per_round: population,
        }
    }
}

/// Regularised evolution (see the module docs).
#[derive(Debug)]
pub struct Evolution {
    config: EvolutionConfig,
    /// Record indices of the population, oldest first.
    population: VecDeque<usize>,
}

impl Evolution {
    /// With `config`.
    pub fn new(config: EvolutionConfig) -> Self {
        Evolution {
            config,
            population: VecDeque::new(),
        }
    }

    fn mutate(ctx: &mut Ctx<'_>, parent: &[usize]) -> Vec<usize> {
        let len = parent.len();
        for _ in 0..100 {
            let pos = ctx.rng.random_range(0..len);
            let allowed: Vec<usize> = ctx
                .space
                .allowed(pos)
                .filter(|&t| t != parent[pos])
                .collect();
            if allowed.is_empty() {
                continue;
            }
            let mut child = parent.to_vec();
            child[pos] = allowed[ctx.rng.random_range(0..allowed.len())];
            if !ctx.is_seen(&child) {
                return child;
            }
        }
        Vec::new()
    }
}

impl Algorithm for Evolution {
    fn round(&mut self, ctx: &mut Ctx<'_>, round: usize) -> Result<Map<String, Value>> {
        let mut new = 0;
        let mut random = 0;
        if round == 0 {
            let n = self.config.population.min(ctx.remaining());
            // One batch (run in parallel by an executor).
            let queries = ctx
                .random_unseen(n)
                .into_iter()
                .map(Query::random)
                .collect();
            for i in ctx.query_batch(queries, round)?.into_iter().flatten() {
                new += 1;
                if ctx.records[i].score.is_some() {
                    self.population.push_back(i);
                }
            }
        } else {
            for _ in 0..self.config.per_round.max(1) {
                if ctx.remaining() == 0 {
                    break;
                }
                let parent = if self.population.is_empty() {
                    None
                } else {
                    let mut best: Option<usize> = None;
                    for _ in 0..self.config.sample.max(1) {
                        let i = self.population[ctx.rng.random_range(0..self.population.len())];
                        let better = match best {
                            None => true,
                            Some(b) => ctx.records[i].score > ctx.records[b].score,
                        };
                        if better {
                            best = Some(i);
                        }
                    }
                    best
                };
                let mut child = match parent {
                    Some(p) => Self::mutate(ctx, &ctx.records[p].arch.clone()),
                    None => Vec::new(),
                };
                let source = if child.is_empty() {
                    random += 1;
                    child = match ctx.random_unseen(1).pop() {
                        Some(a) => a,
                        None => break,
                    };
                    Source::Random
                } else {
                    Source::Mutation
                };
                let parent = if source == Source::Mutation {
                    parent
                } else {
                    None
                };
                if let Some(i) = ctx.query(child, round, source, None, None, parent)? {
                    new += 1;
                    if ctx.records[i].score.is_some() {
                        self.population.push_back(i);
                        if self.population.len() > self.config.population {
                            self.population.pop_front();
                        }
                    }
                }
            }
        }
        let mut m = Map::new();
        m.insert("new".into(), json!(new));
        m.insert("random_instead_of_mutation".into(), json!(random));
        m.insert("population".into(), json!(self.population.len()));
        Ok(m)
    }

    fn state(&self) -> Value {
        json!({ "population": self.population })
    }

    fn restore(&mut self, state: &Value) -> Result<()> {
        self.population = serde_json::from_value(state["population"].clone())
            .map_err(|e| Error::Config(format!("checkpoint: bad evolution population: {e}")))?;
        Ok(())
    }
}
