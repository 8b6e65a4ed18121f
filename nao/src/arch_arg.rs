//! An architecture given on the command line (`nao draw --arch`, `nao train --arch`): a
//! file holding its text or JSON form, or the text form itself.

use std::path::Path;

use models::space::{Arch, SearchSpace};

use crate::error::{Result, io_err};

/// Reads `arg` as an architecture of `space`: the contents of the file `arg` names if it is
/// one, else `arg` itself; JSON when it starts with `{`, else the space's text (or flat)
/// form. Parsing only: validation is the caller's.
pub fn read_arch(space: &dyn SearchSpace, arg: &str) -> Result<Arch> {
    let text = if Path::new(arg).is_file() {
        std::fs::read_to_string(arg).map_err(io_err("cannot read", arg))?
    } else {
        arg.to_string()
    };
    let text = text.trim();
    Ok(if text.starts_with('{') {
        space.from_json(text)?
    } else {
        space.from_text(text)?
    })
}
