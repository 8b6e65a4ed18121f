//! Random search: uniformly random architectures, unseen by canonical form, in batches.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{Algorithm, Ctx, Source};
use crate::error::Result;

/// Settings of random search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RandomConfig {
    /// Architectures per round (checkpoint granularity only; results do not depend on it).
    pub batch: usize,
}

impl RandomConfig {
    /// `batch` = budget / 10, at least 10.
    pub fn for_budget(budget: usize) -> Self {
        RandomConfig {
            batch: (budget / 10).max(10),
        }
    }
}

/// Random search (see the module docs).
#[derive(Debug)]
pub struct RandomSearch {
    config: RandomConfig,
}

impl RandomSearch {
    /// With `config`.
    pub fn new(config: RandomConfig) -> Self {
        RandomSearch { config }
    }
}

impl Algorithm for RandomSearch {
    fn round(&mut self, ctx: &mut Ctx<'_>, round: usize) -> Result<Map<String, Value>> {
        let n = self.config.batch.max(1).min(ctx.remaining());
        let mut new = 0;
        // Draw one at a time so that the sequence does not depend on the batch size.
        for _ in 0..n {
            if let Some(a) = ctx.random_unseen(1).pop()
                && ctx
                    .query(a, round, Source::Random, None, None, None)?
                    .is_some()
            {
                new += 1;
            }
        }
        let mut m = Map::new();
        m.insert("new".into(), json!(new));
        Ok(m)
    }
}
