//! Optimiser state: what is needed to resume training bit for bit (learning rate, and per
//! parameter the step count and buffers such as momentum or Adam's moments), keyed by
//! parameter name, and its file format.
//!
//! A state file uses the container of [`crate::nn::serialize`] with magic `NAOOPTIM`: every
//! buffer is an entry named after its parameter with a `slot` (`"momentum_buffer"`,
//! `"exp_avg"`, `"exp_avg_sq"`), and the header's `meta` holds
//! `{"kind", "lr", "lr_bits", "hyper", "steps"}`. The learning rate is restored from
//! `lr_bits` (the f64's bit pattern) so it survives exactly; `lr` and `hyper` are there for
//! people reading the file. Writes are atomic and loads validate the whole file first,
//! exactly as for parameter files.
//!
//! ```
//! use autograd::nn::Param;
//! use autograd::optim::{Optimizer, Sgd};
//! use autograd::{DType, Tensor};
//! let p = Param::new("w", Tensor::ones(&[2], DType::F32));
//! let mut grads = autograd::Gradients::default();
//! grads.insert(&p.get(), Tensor::ones(&[2], DType::F32));
//! let mut opt = Sgd::new(0.1).with_momentum(0.9);
//! opt.step(std::slice::from_ref(&p), &grads);
//!
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("opt.state");
//! opt.save_state_file(&path).unwrap();
//! let mut fresh = Sgd::new(0.5).with_momentum(0.9);
//! fresh.load_state_file(&path, std::slice::from_ref(&p)).unwrap();
//! assert_eq!(fresh.lr(), 0.1);
//! assert_eq!(fresh.state().params["w"].buffers["momentum_buffer"].to_vec::<f32>(), vec![1.0, 1.0]);
//! ```

use crate::error::Error;
use crate::nn::Param;
use crate::nn::serialize::{
    Entry, OPTIM_MAGIC, format_err, join_problems, read_container, write_container,
};
use crate::tensor::Tensor;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The state of one parameter.
#[derive(Debug, Clone, Default)]
pub struct ParamState {
    /// How many updates this parameter has had (Adam's bias correction uses it).
    pub step: u64,
    /// Named buffers, each with the parameter's shape and dtype.
    pub buffers: BTreeMap<String, Tensor>,
}

/// A snapshot of an optimiser's state, keyed by parameter name.
#[derive(Debug, Clone, Default)]
pub struct OptimizerState {
    /// `"sgd"` or `"adam"`.
    pub kind: String,
    /// The learning rate.
    pub lr: f64,
    /// The other hyperparameters, for reference (not restored on load).
    pub hyper: BTreeMap<String, f64>,
    /// Per-parameter state; parameters that never had a gradient are absent.
    pub params: BTreeMap<String, ParamState>,
}

#[derive(Serialize, Deserialize)]
struct Meta {
    kind: String,
    lr: f64,
    lr_bits: u64,
    hyper: BTreeMap<String, f64>,
    steps: BTreeMap<String, u64>,
}

const SOURCE: &str = "optimizer state";

impl OptimizerState {
    /// Checks that this state belongs to an optimiser of `kind` whose parameters are
    /// `params`: every parameter it names exists and is trainable, has every slot in
    /// `slots`, and each buffer has the parameter's shape and dtype. Errors list every
    /// problem by parameter name.
    pub fn check(&self, kind: &str, slots: &[&str], params: &[Param]) -> Result<(), Error> {
        if self.kind != kind {
            return Err(format_err(
                Path::new(SOURCE),
                format!(
                    "this is {} optimiser state, but it is being loaded into {kind}: use the \
                     optimiser that saved it",
                    self.kind
                ),
            ));
        }
        let by_name: HashMap<&str, &Param> = params.iter().map(|p| (p.name(), p)).collect();
        let mut problems = Vec::new();
        for (name, st) in &self.params {
            let Some(p) = by_name.get(name.as_str()) else {
                problems.push(format!(
                    "the state has parameter '{name}' that the model does not have"
                ));
                continue;
            };
            if !p.is_trainable() {
                problems.push(format!(
                    "the state has parameter '{name}', which is a buffer in the model"
                ));
                continue;
            }
            for slot in slots {
                if !st.buffers.contains_key(*slot) {
                    problems.push(format!("parameter '{name}' has no '{slot}' state"));
                }
            }
            for (slot, b) in &st.buffers {
                if !slots.contains(&slot.as_str()) {
                    problems.push(format!(
                        "parameter '{name}' has state '{slot}', which {kind} does not use"
                    ));
                } else if b.shape() != p.shape().as_slice() {
                    problems.push(format!(
                        "state '{slot}' of parameter '{name}' has shape {:?} but the \
                         parameter has shape {:?}",
                        b.shape(),
                        p.shape()
                    ));
                } else if b.dtype() != p.dtype() {
                    problems.push(format!(
                        "state '{slot}' of parameter '{name}' is {} but the parameter is {}: \
                         convert the model to {} before loading",
                        b.dtype(),
                        p.dtype(),
                        b.dtype()
                    ));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format_err(
                Path::new(SOURCE),
                format!(
                    "the optimiser state does not fit the model ({} problem{}): {}. Load the \
                     state saved with these parameters",
                    problems.len(),
                    if problems.len() == 1 { "" } else { "s" },
                    join_problems(&problems)
                ),
            ))
        }
    }
}

/// Writes `state` to `path` atomically.
pub fn save_state(path: impl AsRef<Path>, state: &OptimizerState) -> Result<(), Error> {
    let meta = Meta {
        kind: state.kind.clone(),
        lr: state.lr,
        lr_bits: state.lr.to_bits(),
        hyper: state.hyper.clone(),
        steps: state
            .params
            .iter()
            .map(|(n, s)| (n.clone(), s.step))
            .collect(),
    };
    let entries: Vec<Entry<'_>> = state
        .params
        .iter()
        .flat_map(|(n, s)| {
            s.buffers.iter().map(move |(slot, t)| Entry {
                name: n,
                slot: Some(slot),
                value: t.clone(),
            })
        })
        .collect();
    write_container(
        path.as_ref(),
        OPTIM_MAGIC,
        serde_json::to_value(meta).expect("meta serialises"),
        &entries,
    )
}

/// Reads a state file, checking the file itself (magic, version, ranges, checksums); use
/// [`crate::optim::Optimizer::load_state_file`] to also check it against a model.
pub fn load_state(path: impl AsRef<Path>) -> Result<OptimizerState, Error> {
    let path = path.as_ref();
    let (meta, entries) = read_container(path, OPTIM_MAGIC)?;
    let meta: Meta = serde_json::from_value(meta).map_err(|e| {
        format_err(
            path,
            format!("the header's optimiser description is not valid ({e}): save it again"),
        )
    })?;
    let mut params: BTreeMap<String, ParamState> = meta
        .steps
        .into_iter()
        .map(|(n, step)| {
            (
                n,
                ParamState {
                    step,
                    buffers: BTreeMap::new(),
                },
            )
        })
        .collect();
    for (h, t) in entries {
        let what = h.describe();
        let Some(slot) = h.slot else {
            return Err(format_err(
                path,
                format!("{what} has no state slot: the file is corrupted; save it again"),
            ));
        };
        let st = params.entry(h.name).or_default();
        if st.buffers.insert(slot, t).is_some() {
            return Err(format_err(
                path,
                format!("{what} appears twice: the file is corrupted; save it again"),
            ));
        }
    }
    Ok(OptimizerState {
        kind: meta.kind,
        lr: f64::from_bits(meta.lr_bits),
        hyper: meta.hyper,
        params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DType;

    fn state() -> OptimizerState {
        let mut params = BTreeMap::new();
        let mut buffers = BTreeMap::new();
        buffers.insert(
            "exp_avg".to_string(),
            Tensor::from_vec(vec![0.1f32, -0.2], &[2]),
        );
        buffers.insert(
            "exp_avg_sq".to_string(),
            Tensor::from_vec(vec![0.01f32, 0.04], &[2]),
        );
        params.insert("enc.w".to_string(), ParamState { step: 7, buffers });
        let mut hyper = BTreeMap::new();
        hyper.insert("beta1".to_string(), 0.9);
        OptimizerState {
            kind: "adam".into(),
            lr: 0.1 + 0.2,
            hyper,
            params,
        }
    }

    #[test]
    fn round_trip_is_exact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        save_state(&path, &state()).unwrap();
        let s = load_state(&path).unwrap();
        assert_eq!(s.kind, "adam");
        assert_eq!(s.lr.to_bits(), (0.1f64 + 0.2).to_bits());
        assert_eq!(s.hyper["beta1"], 0.9);
        let p = &s.params["enc.w"];
        assert_eq!(p.step, 7);
        assert_eq!(p.buffers["exp_avg"].to_vec::<f32>(), vec![0.1, -0.2]);
        assert_eq!(p.buffers["exp_avg_sq"].to_vec::<f32>(), vec![0.01, 0.04]);
    }

    #[test]
    fn check_names_every_problem() {
        let s = state();
        let ok = [Param::new("enc.w", Tensor::zeros(&[2], DType::F32))];
        s.check("adam", &["exp_avg", "exp_avg_sq"], &ok).unwrap();
        let e = s
            .check("sgd", &["momentum_buffer"], &ok)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("this is adam optimiser state, but it is being loaded into sgd"),
            "{e}"
        );
        let wrong = [Param::new("enc.w", Tensor::zeros(&[3], DType::F32))];
        let e = s
            .check("adam", &["exp_avg", "exp_avg_sq"], &wrong)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(
                "state 'exp_avg' of parameter 'enc.w' has shape [2] but the parameter has shape [3]"
            ),
            "{e}"
        );
        let other = [Param::new("dec.w", Tensor::zeros(&[2], DType::F32))];
        let e = s
            .check("adam", &["exp_avg", "exp_avg_sq"], &other)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("the state has parameter 'enc.w' that the model does not have"),
            "{e}"
        );
        let f64s = [Param::new("enc.w", Tensor::zeros(&[2], DType::F64))];
        let e = s
            .check("adam", &["exp_avg", "exp_avg_sq"], &f64s)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("state 'exp_avg' of parameter 'enc.w' is f32 but the parameter is f64"),
            "{e}"
        );
        let buf = [Param::buffer("enc.w", Tensor::zeros(&[2], DType::F32))];
        let e = s
            .check("adam", &["exp_avg", "exp_avg_sq"], &buf)
            .unwrap_err()
            .to_string();
        assert!(e.contains("which is a buffer"), "{e}");
    }

    #[test]
    fn bad_files_are_refused_naming_the_parameter() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        save_state(&path, &state()).unwrap();
        let b = std::fs::read(&path).unwrap();
        std::fs::write(&path, &b[..b.len() - 1]).unwrap();
        let e = load_state(&path).unwrap_err().to_string();
        assert!(
            e.contains("but state 'exp_avg_sq' of parameter 'enc.w' needs bytes"),
            "{e}"
        );
        let mut v = b.clone();
        v[8] = 2;
        std::fs::write(&path, &v).unwrap();
        let e = load_state(&path).unwrap_err().to_string();
        assert!(
            e.contains("format version 2, this build reads version 1"),
            "{e}"
        );
        // a parameter file is not a state file
        let pfile = dir.path().join("p");
        crate::nn::save_params(&pfile, &[Param::new("w", Tensor::zeros(&[1], DType::F32))])
            .unwrap();
        let e = load_state(&pfile).unwrap_err().to_string();
        assert!(
            e.contains("this is a parameter file, not an optimiser state file"),
            "{e}"
        );
    }
}
