//! Random search: uniformly random architectures, unseen by canonical form, in batches.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{Algorithm, Ctx, Query};
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
        // One batch (run in parallel by an executor); drawn so that the sequence does not
        // depend on the batch size.
        let queries = ctx
            .random_unseen(n)
            .into_iter()
            .map(Query::random)
            .collect();
        let new = ctx.query_batch(queries, round)?.iter().flatten().count();
        let mut m = Map::new();
        m.insert("new".into(), json!(new));
        Ok(m)
    }
}
