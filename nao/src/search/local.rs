//! Local search (White et al., "Local Search is State of the Art for Neural Architecture
//! Search Benchmarks", 2020): best-improvement hill climbing over one-token neighbours with
//! random restarts.
//!
//! Start from a random unseen architecture. Each round evaluates every not-yet-queried
//! neighbour of the current architecture (one position changed to another allowed token;
//! neighbours with the same canonical form count once), then moves to the best neighbour
//! (queried now or earlier) if it scores higher than the current one. At a local optimum the
//! search restarts from a random unseen architecture. Failed evaluations are never moved to.

use std::collections::HashMap;

use models::space::Arch;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{Algorithm, Ctx, Source};
use crate::error::{Error, Result};

/// Settings of local search (none beyond the budget: the neighbourhood is the space's).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LocalConfig {}

impl LocalConfig {
    /// The settings for any budget.
    pub fn for_budget(_budget: usize) -> Self {
        LocalConfig {}
    }
}

/// Local search (see the module docs).
#[derive(Debug, Default)]
pub struct LocalSearch {
    /// Record index of the current architecture.
    current: Option<usize>,
    /// Restarts so far.
    restarts: usize,
}

impl LocalSearch {
    /// With `config`.
    pub fn new(_config: LocalConfig) -> Self {
        LocalSearch::default()
    }

    /// A random unseen start (queried now); `None` when the space seems exhausted or the
    /// budget is spent.
    fn restart(&mut self, ctx: &mut Ctx<'_>, round: usize) -> Result<Option<usize>> {
        while ctx.remaining() > 0 {
            let Some(a) = ctx.random_unseen(1).pop() else {
                return Ok(None);
            };
            if let Some(i) = ctx.query(a, round, Source::Random, None, None, None)?
                && ctx.records[i].score.is_some()
            {
                return Ok(Some(i));
            }
        }
        Ok(None)
    }
}

/// Every one-token neighbour of `arch` in the space.
pub fn neighbours(ctx: &Ctx<'_>, arch: &[usize]) -> Vec<Arch> {
    let mut out = Vec::new();
    for pos in 0..arch.len() {
        for t in ctx.space.allowed(pos) {
            if t != arch[pos] {
                let mut n = arch.to_vec();
                n[pos] = t;
                if ctx.space.validate(&n).is_ok() {
                    out.push(n);
                }
            }
        }
    }
    out
}

impl Algorithm for LocalSearch {
    fn round(&mut self, ctx: &mut Ctx<'_>, round: usize) -> Result<Map<String, Value>> {
        let mut m = Map::new();
        let mut new = 0;
        let cur = match self.current {
            Some(c) => c,
            None => match self.restart(ctx, round)? {
                Some(c) => {
                    new += 1;
                    c
                }
                None => {
                    m.insert("new".into(), json!(new));
                    return Ok(m);
                }
            },
        };
        // Scores of everything queried so far, by canonical form.
        let mut known: HashMap<Arch, (f64, usize)> = HashMap::new();
        for r in &ctx.records {
            if let Some(s) = r.score {
                known.entry(r.canonical.clone()).or_insert((s, r.index));
            }
        }
        let cur_arch = ctx.records[cur].arch.clone();
        let cur_score = ctx.records[cur]
            .score
            .expect("the current architecture has a score");
        let mut best: Option<(f64, usize)> = None;
        for n in neighbours(ctx, &cur_arch) {
            let key = ctx.space.canonical(&n);
            let hit = match known.get(&key) {
                Some(&k) => Some(k),
                None => match ctx.query(n, round, Source::Mutation, None, None, Some(cur))? {
                    Some(i) => {
                        new += 1;
                        ctx.records[i].score.map(|s| {
                            known.insert(key, (s, i));
                            (s, i)
                        })
                    }
                    None => None, // budget spent
                },
            };
            if let Some((s, i)) = hit
                && i != cur
                && best.is_none_or(|b| s > b.0)
            {
                best = Some((s, i));
            }
        }
        match best {
            Some((s, i)) if s > cur_score => self.current = Some(i),
            _ => {
                self.restarts += 1;
                self.current = None;
            }
        }
        m.insert("new".into(), json!(new));
        m.insert("current".into(), json!(self.current));
        m.insert("restarts".into(), json!(self.restarts));
        Ok(m)
    }

    fn state(&self) -> Value {
        json!({ "current": self.current, "restarts": self.restarts })
    }

    fn restore(&mut self, state: &Value) -> Result<()> {
        let bad = |e: serde_json::Error| {
            Error::Config(format!("checkpoint: bad local-search state: {e}"))
        };
        self.current = serde_json::from_value(state["current"].clone()).map_err(bad)?;
        self.restarts = serde_json::from_value(state["restarts"].clone()).map_err(bad)?;
        Ok(())
    }
}
