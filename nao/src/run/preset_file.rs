//! The preset file of a `nao cifar --ws` or `nao ptb --ws` run (`OUT/cifar-ws.json`,
//! `OUT/ptb-ws.json`): a new run refuses a directory that already holds a run, a resumed
//! one must be given the preset it was started with; then the file is (re)written.

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::atomic::write_json_atomic;
use crate::error::{Error, Result, io_err};

/// A preset with a name (the `--preset` it came from).
pub trait NamedPreset: Serialize + DeserializeOwned + PartialEq {
    /// The `--preset` name.
    fn name(&self) -> &str;
}

/// Checks `out` for a run of `preset` (see the module docs) and writes `out/file`. A
/// directory holding `file` or `search/` is only ever continued with `resume`.
pub fn claim<P: NamedPreset>(out: &Path, file: &str, preset: &P, resume: bool) -> Result<()> {
    let path = out.join(file);
    if !resume && (path.exists() || out.join("search").exists()) {
        return Err(Error::Config(format!(
            "{} already holds a run: pass --resume to continue it, or choose another --out (nothing was changed)",
            out.display()
        )));
    }
    if resume && let Ok(b) = std::fs::read(&path) {
        let stored: P = serde_json::from_slice(&b).map_err(|source| Error::Json {
            path: path.clone(),
            source,
        })?;
        if &stored != preset {
            return Err(Error::Config(format!(
                "{} was made with --preset {}, not {}: resume it with its own preset, or choose another --out",
                path.display(),
                stored.name(),
                preset.name()
            )));
        }
    }
    std::fs::create_dir_all(out).map_err(io_err("cannot create", out))?;
    write_json_atomic(&path, preset)
}
