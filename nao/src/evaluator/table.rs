//! Table lookup: an evaluator that reads scores from a CSV file.
//!
//! The CSV has a header row. Column `arch` holds each architecture in the space's text form
//! (for `nb201` the benchmark's standard string `|op~0|+|op~0|op~1|+|...|`); the column named
//! by `--metric` is the score to maximise. Loading checks every row: an architecture that
//! does not parse, one that appears twice, or a metric value that is empty, not a number or
//! not finite stops with an error naming the file, line, column and value. A query is
//! answered from the row whose tokens equal the architecture's, or else from the first row
//! with the same canonical form; an architecture missing from the table is a failed
//! evaluation.
//!
//! A query reports only the metric: the search never sees the table's other columns (e.g. a
//! test accuracy). [`TableEvaluator::column_values`] reads another column for reports made
//! after a search (`nao compare --report-metric`).
//!
//! [`synthetic_nb201_csv`] writes a table of all 15,625 NB201 cells whose score is a smooth
//! function of the cell plus seeded noise, for tests and for comparing search algorithms.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use models::space::nb201::NUM_EDGES;
use models::space::{Arch, Nb201Space, SearchSpace};
use rand::SeedableRng;
use rand::seq::index::sample;
use rand_pcg::Pcg64Mcg;
use serde_json::{Map, Value, json};

use super::{EvalFailure, EvalResult, Evaluation, Evaluator};
use crate::error::{Error, Result, io_err};

/// Seed of the fixed reference sample ([`Evaluator::reference_sample`]): the same rows in
/// every run on the same table, whatever the run's seed.
const REFERENCE_SEED: u64 = 0x5EED_0001;

/// A lookup-table evaluator (see the module docs).
#[derive(Debug, Clone)]
pub struct TableEvaluator {
    path: PathBuf,
    metric: String,
    columns: Vec<String>,
    /// Index of the `arch` column.
    arch_col: usize,
    rows: Vec<Vec<String>>,
    /// The parsed architecture of each row.
    archs: Vec<Arch>,
    /// The metric of each row.
    scores: Vec<f64>,
    by_tokens: HashMap<Arch, usize>,
    by_canonical: HashMap<Arch, usize>,
    best: Option<f64>,
}

impl TableEvaluator {
    /// Reads the table at `path` for `space`, scoring by column `metric`.
    ///
    /// Errors name the problem: no `arch` column, an unknown metric (the message lists the
    /// columns), a row with the wrong number of fields, an architecture that does not parse
    /// or appears twice, a metric value that is empty, not a number or not finite (each with
    /// file, line, column and value).
    pub fn from_csv(path: &Path, space: &dyn SearchSpace, metric: &str) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(io_err("cannot read", path))?;
        Self::from_csv_text(path, &text, space, metric)
    }

    /// As [`from_csv`](Self::from_csv), from the file's text (`path` is for messages).
    pub fn from_csv_text(
        path: &Path,
        text: &str,
        space: &dyn SearchSpace,
        metric: &str,
    ) -> Result<Self> {
        let terr = |msg: String| Error::Table {
            path: path.to_path_buf(),
            msg,
        };
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .from_reader(text.as_bytes());
        let columns: Vec<String> = reader
            .headers()
            .map_err(|e| terr(format!("line 1: {e}")))?
            .iter()
            .map(|c| c.trim().to_string())
            .collect();
        if columns.iter().all(|c| c.is_empty()) {
            return Err(terr("the file is empty (expected a header row)".into()));
        }
        let arch_col = columns.iter().position(|c| c == "arch").ok_or_else(|| {
            terr(format!(
                "no `arch` column (it must hold each architecture's text form); the columns are: {}",
                columns.join(", ")
            ))
        })?;
        let metric_col = columns.iter().position(|c| c == metric).ok_or_else(|| {
            terr(format!(
                "no column `{metric}` for --metric; the columns are: {}",
                columns.join(", ")
            ))
        })?;
        let mut t = TableEvaluator {
            path: path.to_path_buf(),
            metric: metric.to_string(),
            columns,
            arch_col,
            rows: Vec::new(),
            archs: Vec::new(),
            scores: Vec::new(),
            by_tokens: HashMap::new(),
            by_canonical: HashMap::new(),
            best: None,
        };
        let mut lines: HashMap<Arch, u64> = HashMap::new();
        for record in reader.records() {
            let record = record.map_err(|e| terr(format!("{e}")))?;
            let lineno = record.position().map_or(0, |p| p.line());
            if record.iter().all(|f| f.trim().is_empty()) {
                continue;
            }
            let fields: Vec<String> = record.iter().map(str::to_string).collect();
            if fields.len() != t.columns.len() {
                return Err(terr(format!(
                    "line {lineno}: {} fields, but the header has {} columns",
                    fields.len(),
                    t.columns.len()
                )));
            }
            let arch = space.from_text(&fields[arch_col]).map_err(|e| {
                terr(format!(
                    "line {lineno}, column `arch`: the architecture {:?} does not parse as {}: {e}",
                    fields[arch_col],
                    space.kind()
                ))
            })?;
            if let Some(first) = lines.insert(arch.clone(), lineno) {
                return Err(terr(format!(
                    "line {lineno}, column `arch`: the architecture {:?} appears twice (first on line {first}); each must have one row",
                    fields[arch_col]
                )));
            }
            let raw = fields[metric_col].trim();
            let score = match raw.parse::<f64>() {
                Ok(x) if x.is_finite() => x,
                _ => {
                    let what = if raw.is_empty() {
                        "is empty".to_string()
                    } else {
                        format!("holds {raw:?}, not a finite number")
                    };
                    return Err(terr(format!(
                        "line {lineno}, column `{metric}` (the --metric): the value {what}; fix or remove the row"
                    )));
                }
            };
            t.best = Some(t.best.map_or(score, |b: f64| b.max(score)));
            let idx = t.rows.len();
            t.by_canonical.entry(space.canonical(&arch)).or_insert(idx);
            t.by_tokens.insert(arch.clone(), idx);
            t.archs.push(arch);
            t.scores.push(score);
            t.rows.push(fields);
        }
        Ok(t)
    }

    /// The column names, in file order.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    fn row_of(&self, arch: &Arch, canonical: &Arch) -> Option<usize> {
        self.by_tokens
            .get(arch)
            .or_else(|| self.by_canonical.get(canonical))
            .copied()
    }

    /// The metric for `arch` (exact tokens first, then `canonical`).
    pub fn score(&self, arch: &Arch, canonical: &Arch) -> Option<f64> {
        self.row_of(arch, canonical).map(|i| self.scores[i])
    }

    /// The row for `arch` (exact tokens first, then `canonical`), as JSON under the column
    /// names (numbers where a field parses as one).
    pub fn lookup(&self, arch: &Arch, canonical: &Arch) -> Option<Map<String, Value>> {
        let idx = self.row_of(arch, canonical)?;
        Some(
            self.columns
                .iter()
                .zip(&self.rows[idx])
                .map(|(c, v)| {
                    (
                        c.clone(),
                        if c == "arch" {
                            Value::String(v.clone())
                        } else {
                            field_value(v)
                        },
                    )
                })
                .collect(),
        )
    }

    /// Reads column `column` as numbers, checking every row (errors as for the metric).
    /// Returns a function from (architecture, canonical form) to the value.
    pub fn column_values(&self, column: &str) -> Result<HashMap<Arch, f64>> {
        let col = self
            .columns
            .iter()
            .position(|c| c == column)
            .ok_or_else(|| Error::Table {
                path: self.path.clone(),
                msg: format!(
                    "no column `{column}`; the columns are: {}",
                    self.columns.join(", ")
                ),
            })?;
        let mut out = HashMap::with_capacity(self.rows.len());
        for (i, row) in self.rows.iter().enumerate() {
            let raw = row[col].trim();
            match raw.parse::<f64>() {
                Ok(x) if x.is_finite() => {
                    out.insert(self.archs[i].clone(), x);
                }
                _ => {
                    return Err(Error::Table {
                        path: self.path.clone(),
                        msg: format!(
                            "row {} ({}), column `{column}`: {raw:?} is not a finite number",
                            i + 1,
                            row[self.arch_col]
                        ),
                    });
                }
            }
        }
        Ok(out)
    }

    /// A fixed sample (seeded by a constant) of up to `n` rows: (architecture, metric).
    pub fn sample(&self, n: usize) -> Vec<(Arch, f64)> {
        let mut rng = Pcg64Mcg::seed_from_u64(REFERENCE_SEED);
        let n = n.min(self.rows.len());
        let mut idx = sample(&mut rng, self.rows.len(), n).into_vec();
        idx.sort_unstable();
        idx.into_iter()
            .map(|i| (self.archs[i].clone(), self.scores[i]))
            .collect()
    }
}

/// Reads a field as a JSON value: an integer, else a number when it parses as a finite
/// `f64`, else a string.
fn field_value(s: &str) -> Value {
    if let Ok(i) = s.trim().parse::<i64>() {
        return json!(i);
    }
    match s.trim().parse::<f64>() {
        Ok(x) if x.is_finite() => json!(x),
        _ => Value::String(s.to_string()),
    }
}

/// A [`TableEvaluator`] together with the space used to canonicalise queries.
#[derive(Debug)]
pub struct TableLookup {
    /// The table.
    pub table: TableEvaluator,
    /// The space of the architectures.
    pub space: Box<dyn SearchSpace>,
}

impl TableLookup {
    /// Reads the table at `path` (see [`TableEvaluator::from_csv`]).
    pub fn open(path: &Path, space: Box<dyn SearchSpace>, metric: &str) -> Result<Self> {
        let table = TableEvaluator::from_csv(path, &*space, metric)?;
        Ok(TableLookup { table, space })
    }
}

impl Evaluator for TableLookup {
    fn evaluate(&mut self, arch: &Arch) -> EvalResult {
        let canonical = self.space.canonical(arch);
        let score = self.table.score(arch, &canonical).ok_or_else(|| {
            EvalFailure::error(format!("{} is not in the table", self.space.to_text(arch)))
        })?;
        let mut metrics = Map::new();
        metrics.insert(self.table.metric.clone(), json!(score));
        Ok(Evaluation {
            score,
            metrics,
            extras: None,
        })
    }

    fn describe(&self) -> Value {
        json!({
            "kind": "table",
            "path": self.table.path,
            "metric": self.table.metric,
            "rows": self.table.len(),
            "columns": self.table.columns,
        })
    }

    fn best_possible(&self) -> Option<f64> {
        self.table.best
    }

    fn reference_sample(&self, n: usize) -> Option<Vec<(Arch, f64)>> {
        Some(self.table.sample(n))
    }
}

/// The noise-free part of the synthetic NB201 score of a cell (about 10 to 95).
///
/// Per live edge an op value (3x3 conv best, then 1x1 conv, skip, pool; on the direct edge
/// 3<-0 a skip is best; `none` and dead edges 0), plus a bonus per live input-to-output path
/// equal to its length times the product of the op values along it (rewarding depth built
/// from good ops), plus a bonus for a skip alongside two or more convs, minus a penalty
/// growing with the square of the number of 3x3 convs beyond three.
pub fn synthetic_nb201_score(arch: &[usize]) -> f64 {
    let cell = Nb201Space.decode(arch).expect("a valid NB201 architecture");
    let live = cell.live_edges();
    // op ids: none, skip, conv1x1, conv3x3, pool; the direct edge 3<-0 prefers a skip.
    const VALUE: [f64; 5] = [0.0, 0.35, 0.7, 1.0, 0.3];
    const DIRECT: [f64; 5] = [0.0, 1.2, 0.5, 0.6, 0.2];
    let v = |e: usize| match (live[e], e) {
        (false, _) => 0.0,
        (true, 3) => DIRECT[cell.edges[e].id()],
        (true, _) => VALUE[cell.edges[e].id()],
    };
    let edge_sum: f64 = (0..NUM_EDGES).map(v).sum();
    // paths 0->3: [3], [0,4], [1,5], [0,2,5]
    let paths: [&[usize]; 4] = [&[3], &[0, 4], &[1, 5], &[0, 2, 5]];
    let path_sum: f64 = paths
        .iter()
        .map(|p| p.iter().map(|&e| v(e)).product::<f64>() * p.len() as f64)
        .sum();
    let has_skip = (0..NUM_EDGES).any(|e| live[e] && cell.edges[e].id() == 1);
    let convs = (0..NUM_EDGES)
        .filter(|&e| live[e] && matches!(cell.edges[e].id(), 2 | 3))
        .count();
    let skip_bonus = if has_skip && convs >= 2 { 0.8 } else { 0.0 };
    // Diminishing returns: more than three 3x3 convs cost (a non-additive interaction).
    let conv3 = (0..NUM_EDGES)
        .filter(|&e| live[e] && cell.edges[e].id() == 3)
        .count();
    let crowding = 0.9 * conv3.saturating_sub(3).pow(2) as f64;
    let raw = (edge_sum + path_sum + skip_bonus - crowding).max(0.0); // 0 ..= about 14
    if live.iter().all(|&l| !l) {
        return 10.0;
    }
    10.0 + 85.0 * (1.0 - (-raw / 5.0).exp())
}

/// A CSV table of all 15,625 NB201 cells: columns `arch` (standard string), `valid_acc`
/// ([`synthetic_nb201_score`] plus N(0, sigma) noise), `test_acc` (`valid_acc` plus further
/// N(0, sigma/2) noise), `params` (a made-up size in millions), `live_edges`. The same seed
/// gives the same bytes.
pub fn synthetic_nb201_csv(seed: u64, sigma: f64) -> String {
    let space = Nb201Space;
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let mut out = String::from("arch,valid_acc,test_acc,params,live_edges\n");
    let mut arch = vec![1usize; NUM_EDGES];
    loop {
        let cell = space.decode(&arch).expect("valid");
        let base = synthetic_nb201_score(&arch);
        let valid = base + sigma * normal_draw::standard_normal(&mut rng);
        let test = valid + 0.5 * sigma * normal_draw::standard_normal(&mut rng);
        let live = cell.live_edges();
        let params: f64 = (0..NUM_EDGES)
            .filter(|&e| live[e])
            .map(|e| [0.0, 0.0, 0.03, 0.25, 0.0][cell.edges[e].id()])
            .sum::<f64>()
            + 0.07;
        let n_live = live.iter().filter(|&&l| l).count();
        out.push_str(&format!(
            "{},{valid:.4},{test:.4},{params:.4},{n_live}\n",
            cell.to_standard_string()
        ));
        // odometer over tokens 1..=5, last edge fastest
        let mut pos = NUM_EDGES;
        loop {
            if pos == 0 {
                return out;
            }
            pos -= 1;
            if arch[pos] < 5 {
                arch[pos] += 1;
                break;
            }
            arch[pos] = 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_table_has_every_cell_and_is_deterministic() {
        let a = synthetic_nb201_csv(3, 0.5);
        assert_eq!(a, synthetic_nb201_csv(3, 0.5));
        assert_ne!(a, synthetic_nb201_csv(4, 0.5));
        assert_eq!(a.lines().count(), 15_625 + 1);
        let t = TableEvaluator::from_csv_text(Path::new("t.csv"), &a, &Nb201Space, "valid_acc")
            .unwrap();
        assert_eq!(t.len(), 15_625);
        let best = t.best.unwrap();
        assert!(best > 85.0 && best < 100.0, "{best}");
    }

    #[test]
    fn lookup_reports_only_the_metric() {
        let csv = "arch,valid_acc,note,test_acc\n\
                   |nor_conv_3x3~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|,91.5,\"a, b\",93.0\n";
        let mut ev = TableLookup {
            table: TableEvaluator::from_csv_text(Path::new("t.csv"), csv, &Nb201Space, "valid_acc")
                .unwrap(),
            space: Box::new(Nb201Space),
        };
        let e = ev.evaluate(&vec![4, 2, 1, 5, 3, 2]).unwrap();
        assert_eq!(e.score, 91.5);
        // the search sees the metric and nothing else (no test accuracy)
        assert_eq!(e.metrics.len(), 1);
        assert_eq!(e.metrics["valid_acc"], json!(91.5));
        let row = ev
            .table
            .lookup(&vec![4, 2, 1, 5, 3, 2], &vec![4, 2, 1, 5, 3, 2])
            .unwrap();
        assert_eq!(row["note"], json!("a, b"));
        assert!(
            row["arch"]
                .as_str()
                .unwrap()
                .starts_with("|nor_conv_3x3~0|")
        );
        let test = ev.table.column_values("test_acc").unwrap();
        assert_eq!(test[&vec![4, 2, 1, 5, 3, 2]], 93.0);
        assert!(ev.table.column_values("note").is_err());
        assert!(ev.evaluate(&vec![1, 1, 1, 1, 1, 1]).is_err());
        assert_eq!(ev.best_possible(), Some(91.5));
    }

    #[test]
    fn reference_sample_is_fixed_and_distinct() {
        let csv = synthetic_nb201_csv(0, 0.5);
        let t = TableEvaluator::from_csv_text(Path::new("t.csv"), &csv, &Nb201Space, "valid_acc")
            .unwrap();
        let a = t.sample(1000);
        assert_eq!(a.len(), 1000);
        assert_eq!(a, t.sample(1000));
        let distinct: std::collections::HashSet<&Arch> = a.iter().map(|x| &x.0).collect();
        assert_eq!(distinct.len(), 1000);
        assert_eq!(t.sample(20_000).len(), 15_625);
    }

    /// Every bad row stops loading with file, line, column and value in the message.
    #[test]
    fn bad_rows_are_named() {
        let p = Path::new("bad.csv");
        let good = "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|";
        let other = "|nor_conv_1x1~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|";
        let cases = [
            (
                format!("arch,acc\n{good},1.0\n{other},abc\n"),
                "line 3",
                "\"abc\"",
            ),
            (format!("arch,acc\n{good},NaN\n"), "line 2", "\"NaN\""),
            (format!("arch,acc\n{good},\n"), "line 2", "is empty"),
            (
                format!("arch,acc\n{good},1\n{other},2\n{good},3\n"),
                "line 4",
                "appears twice (first on line 2)",
            ),
            (
                "arch,acc\n|bogus~0|,1\n".to_string(),
                "line 2",
                "\"|bogus~0|\"",
            ),
        ];
        for (text, line, value) in cases {
            let e = TableEvaluator::from_csv_text(p, &text, &Nb201Space, "acc")
                .unwrap_err()
                .to_string();
            assert!(e.contains("bad.csv"), "{e}");
            assert!(e.contains(line), "{e}");
            assert!(e.contains("column `"), "{e}");
            assert!(e.contains(value), "{e}");
        }
    }

    #[test]
    fn table_errors_name_the_problem() {
        let p = Path::new("t.csv");
        let e = TableEvaluator::from_csv_text(p, "x,acc\n", &Nb201Space, "acc")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no `arch` column"), "{e}");
        let e = TableEvaluator::from_csv_text(p, "arch,acc,loss\n", &Nb201Space, "top1")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no column `top1`") && e.contains("arch, acc, loss"),
            "{e}"
        );
        let e = TableEvaluator::from_csv_text(p, "arch,acc\n|bogus~0|,1\n", &Nb201Space, "acc")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2"), "{e}");
        let e = TableEvaluator::from_csv_text(p, "arch,acc\n1 1 1 1 1 1\n", &Nb201Space, "acc")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("1 fields"), "{e}");
    }
}
