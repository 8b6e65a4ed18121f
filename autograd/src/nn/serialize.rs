//! The parameter file format, and the tensor container that optimiser state files share.
//!
//! # Layout (format version 1)
//!
//! | bytes            | content                                                      |
//! |------------------|--------------------------------------------------------------|
//! | `0..8`           | magic: `NAOPARAM` (parameters) or `NAOOPTIM` (optimiser state) |
//! | `8..12`          | format version, `u32` little-endian (currently 1)            |
//! | `12..20`         | `H`, the length of the JSON header, `u64` little-endian      |
//! | `20..20+H`       | the JSON header (UTF-8), see below                           |
//! | `20+H..`         | data: each entry's elements, row-major, little-endian, back to back |
//!
//! The header is `{"entries": [..], "meta": ..}`. Each entry is
//! `{"name": "encoder.w", "dtype": "f32", "shape": [4, 3], "offset": 0, "nbytes": 48,
//! "fnv1a64": ..}` (plus `"slot": "exp_avg"` in optimiser state files), where `offset` counts
//! from the start of the data section and `fnv1a64` is the FNV-1a hash of the entry's bytes.
//! `meta` is `null` in parameter files and holds the optimiser's kind, learning rate and
//! step counts in state files. The file ends exactly where the last entry ends.
//!
//! # Guarantees
//!
//! * Writes are atomic: the file is written to a temporary file in the same directory,
//!   flushed to disk (`fsync`), then renamed over the target, so a crash leaves the old file
//!   or the new one, never half of one.
//! * Loads check everything first (magic, version, header, every entry's range and
//!   checksum, and that names, shapes and dtypes match the model exactly) and change nothing
//!   unless the whole file fits. Errors are [`Error::Format`] messages that name the
//!   parameter, say what does not match and how to fix it.
//! * Dtypes are not converted: loading an f64 file into f32 parameters (or the other way)
//!   is an error that says so; convert the model with [`crate::nn::Module::to_dtype`] first
//!   if that is what you mean. Silent conversion would hide a precision change.
//!
//! ```
//! use autograd::{DType, Tensor};
//! use autograd::nn::{Param, load_params, save_params};
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("model.params");
//! let w = Param::new("fc.weight", Tensor::from_vec(vec![1.0f32, 2.0], &[1, 2]));
//! save_params(&path, std::slice::from_ref(&w)).unwrap();
//!
//! let fresh = Param::new("fc.weight", Tensor::zeros(&[1, 2], DType::F32));
//! load_params(&path, std::slice::from_ref(&fresh)).unwrap();
//! assert_eq!(fresh.get().to_vec::<f32>(), vec![1.0, 2.0]);
//!
//! let other = Param::new("fc.weight", Tensor::zeros(&[2, 2], DType::F32));
//! let e = load_params(&path, &[other]).unwrap_err().to_string();
//! assert!(e.contains("'fc.weight' has shape [1, 2] in the file but [2, 2] in the model"), "{e}");
//! ```

use crate::dtype::DType;
use crate::error::Error;
use crate::nn::param::Param;
use crate::nn::param::check_unique;
use crate::tensor::Tensor;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// Magic bytes of a parameter file.
pub const PARAM_MAGIC: &[u8; 8] = b"NAOPARAM";
/// Magic bytes of an optimiser state file.
pub const OPTIM_MAGIC: &[u8; 8] = b"NAOOPTIM";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

const PREFIX_LEN: usize = 20;

/// One entry of the JSON header.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct EntryHeader {
    pub(crate) name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) slot: Option<String>,
    pub(crate) dtype: String,
    pub(crate) shape: Vec<usize>,
    pub(crate) offset: u64,
    pub(crate) nbytes: u64,
    pub(crate) fnv1a64: u64,
}

impl EntryHeader {
    /// "parameter 'x'" or "state 'exp_avg' of parameter 'x'".
    pub(crate) fn describe(&self) -> String {
        match &self.slot {
            None => format!("parameter '{}'", self.name),
            Some(s) => format!("state '{s}' of parameter '{}'", self.name),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Header {
    entries: Vec<EntryHeader>,
    #[serde(default)]
    meta: serde_json::Value,
}

/// One tensor to write: its name, optional slot (optimiser state) and value.
pub(crate) struct Entry<'a> {
    pub(crate) name: &'a str,
    pub(crate) slot: Option<&'a str>,
    pub(crate) value: Tensor,
}

fn dtype_name(d: DType) -> &'static str {
    match d {
        DType::F32 => "f32",
        DType::F64 => "f64",
    }
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn tensor_bytes(t: &Tensor) -> Vec<u8> {
    let t = &t.to(&crate::Device::Cpu);
    crate::with_array!(t.storage(), |a| {
        let mut out = Vec::with_capacity(a.len() * std::mem::size_of::<T>());
        for v in a.iter() {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    })
}

fn tensor_from_bytes(dtype: DType, shape: &[usize], bytes: &[u8]) -> Tensor {
    match dtype {
        DType::F32 => Tensor::from_vec(
            bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect(),
            shape,
        ),
        DType::F64 => Tensor::from_vec(
            bytes
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                .collect(),
            shape,
        ),
    }
}

pub(crate) fn format_err(path: &Path, message: impl Into<String>) -> Error {
    Error::Format {
        path: path.display().to_string(),
        message: message.into(),
    }
}

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes `bytes` to `path` atomically (the workspace's one helper, [`atomic_file`]).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    atomic_file::write_atomic(path, bytes).map_err(|e| io_err(path, e))
}

/// Serialises a container (magic, version, header, data) and writes it atomically.
pub(crate) fn write_container(
    path: &Path,
    magic: &[u8; 8],
    meta: serde_json::Value,
    entries: &[Entry<'_>],
) -> Result<(), Error> {
    let mut data = Vec::new();
    let mut headers = Vec::with_capacity(entries.len());
    for e in entries {
        let bytes = tensor_bytes(&e.value);
        headers.push(EntryHeader {
            name: e.name.to_string(),
            slot: e.slot.map(str::to_string),
            dtype: dtype_name(e.value.dtype()).to_string(),
            shape: e.value.shape().to_vec(),
            offset: data.len() as u64,
            nbytes: bytes.len() as u64,
            fnv1a64: fnv1a64(&bytes),
        });
        data.extend_from_slice(&bytes);
    }
    let header = serde_json::to_vec(&Header {
        entries: headers,
        meta,
    })
    .expect("header serialises");
    let mut out = Vec::with_capacity(PREFIX_LEN + header.len() + data.len());
    out.extend_from_slice(magic);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&data);
    write_atomic(path, &out)
}

fn kind_of(magic: &[u8; 8]) -> &'static str {
    if magic == PARAM_MAGIC {
        "a parameter file"
    } else {
        "an optimiser state file"
    }
}

/// Reads and fully validates a container: magic, version, header, and every entry's range,
/// size and checksum. Returns the header's `meta` and each entry with its value.
pub(crate) fn read_container(
    path: &Path,
    magic: &[u8; 8],
) -> Result<(serde_json::Value, Vec<(EntryHeader, Tensor)>), Error> {
    let bytes = std::fs::read(path).map_err(|e| io_err(path, e))?;
    let want = kind_of(magic);
    if bytes.len() < 8 {
        return Err(format_err(
            path,
            format!(
                "not {want}: the file has only {} bytes, fewer than the 8-byte magic {:?}",
                bytes.len(),
                String::from_utf8_lossy(magic)
            ),
        ));
    }
    let got: &[u8; 8] = bytes[..8].try_into().unwrap();
    if got != magic {
        let other = if got == PARAM_MAGIC || got == OPTIM_MAGIC {
            format!(
                "this is {}, not {want}: pass it to the other loader",
                kind_of(got)
            )
        } else {
            format!(
                "not {want}: it starts with {:?} instead of {:?}",
                String::from_utf8_lossy(got),
                String::from_utf8_lossy(magic)
            )
        };
        return Err(format_err(path, other));
    }
    let truncated = |what: &str, a: usize, b: usize| {
        format_err(
            path,
            format!(
                "file ends at byte {} but {what} needs bytes {a}..{b}: the file is truncated; \
                 save it again",
                bytes.len()
            ),
        )
    };
    if bytes.len() < PREFIX_LEN {
        return Err(truncated("the file prefix", 0, PREFIX_LEN));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().unwrap());
    if version != FORMAT_VERSION {
        return Err(format_err(
            path,
            format!(
                "format version {version}, this build reads version {FORMAT_VERSION}: load it \
                 with the build that wrote it, or save it again with this build"
            ),
        ));
    }
    let hlen = u64::from_le_bytes(bytes[12..20].try_into().unwrap());
    let hend = (PREFIX_LEN as u64).saturating_add(hlen);
    if hend > bytes.len() as u64 {
        return Err(truncated(
            "the header",
            PREFIX_LEN,
            usize::try_from(hend).unwrap_or(usize::MAX),
        ));
    }
    let hend = hend as usize;
    let header: Header = serde_json::from_slice(&bytes[PREFIX_LEN..hend]).map_err(|e| {
        format_err(
            path,
            format!("the header is not valid ({e}): the file is corrupted; save it again"),
        )
    })?;
    let data = &bytes[hend..];
    let mut out = Vec::with_capacity(header.entries.len());
    let mut end_of_data = 0u64;
    for h in header.entries {
        let what = h.describe();
        let dtype = match h.dtype.as_str() {
            "f32" => DType::F32,
            "f64" => DType::F64,
            other => {
                return Err(format_err(
                    path,
                    format!("{what} has dtype '{other}', which this build cannot read (f32, f64)"),
                ));
            }
        };
        let numel: usize = h.shape.iter().product();
        let size = match dtype {
            DType::F32 => 4,
            DType::F64 => 8,
        };
        if h.nbytes != (numel * size) as u64 {
            return Err(format_err(
                path,
                format!(
                    "{what}: shape {:?} of {} needs {} bytes but the header says {}: the file \
                     is corrupted; save it again",
                    h.shape,
                    h.dtype,
                    numel * size,
                    h.nbytes
                ),
            ));
        }
        let a = h.offset.saturating_add(hend as u64);
        let b = a.saturating_add(h.nbytes);
        if b > bytes.len() as u64 {
            return Err(truncated(&what, a as usize, b as usize));
        }
        let chunk = &data[h.offset as usize..(h.offset + h.nbytes) as usize];
        if fnv1a64(chunk) != h.fnv1a64 {
            return Err(format_err(
                path,
                format!(
                    "{what}: bytes {a}..{b} do not match their checksum: the file is \
                     corrupted; save it again"
                ),
            ));
        }
        end_of_data = end_of_data.max(h.offset + h.nbytes);
        let t = tensor_from_bytes(dtype, &h.shape, chunk);
        out.push((h, t));
    }
    if end_of_data < data.len() as u64 {
        return Err(format_err(
            path,
            format!(
                "the file has {} bytes after the last entry (it should end at byte {}): it is \
                 corrupted or was written by something else; save it again",
                data.len() as u64 - end_of_data,
                hend as u64 + end_of_data
            ),
        ));
    }
    Ok((header.meta, out))
}

/// Lists problems as one message: the first ten, then a count.
pub(crate) fn join_problems(problems: &[String]) -> String {
    let mut s = problems
        .iter()
        .take(10)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if problems.len() > 10 {
        s.push_str(&format!("; and {} more", problems.len() - 10));
    }
    s
}

/// Writes `params` (values and buffers, in order) to `path` atomically.
///
/// Errors when two parameters share a name (files are keyed by name) or the write fails.
pub fn save_params(path: impl AsRef<Path>, params: &[Param]) -> Result<(), Error> {
    let path = path.as_ref();
    if let Err(dup) = check_unique(params) {
        return Err(format_err(
            path,
            format!("two parameters are named '{dup}': give every parameter a unique name"),
        ));
    }
    let values: Vec<(String, Tensor)> = params
        .iter()
        .map(|p| (p.name().to_string(), p.get()))
        .collect();
    let entries: Vec<Entry<'_>> = values
        .iter()
        .map(|(n, v)| Entry {
            name: n,
            slot: None,
            value: v.clone(),
        })
        .collect();
    write_container(path, PARAM_MAGIC, serde_json::Value::Null, &entries)
}

/// Loads `path` into `params`. The file must hold exactly these parameters (by name), with
/// the same shapes and dtypes; otherwise an [`Error::Format`] lists every mismatch by
/// parameter name and nothing is changed.
pub fn load_params(path: impl AsRef<Path>, params: &[Param]) -> Result<(), Error> {
    let path = path.as_ref();
    if let Err(dup) = check_unique(params) {
        return Err(format_err(
            path,
            format!(
                "the model has two parameters named '{dup}': give every parameter a unique name"
            ),
        ));
    }
    let (_, entries) = read_container(path, PARAM_MAGIC)?;
    let mut file: HashMap<&str, &(EntryHeader, Tensor)> = HashMap::new();
    let mut problems = Vec::new();
    for e in &entries {
        if e.0.slot.is_some() || file.insert(&e.0.name, e).is_some() {
            problems.push(format!(
                "the file lists {} twice or with a state slot: it is corrupted; save it again",
                e.0.describe()
            ));
        }
    }
    let mut structural = false;
    for p in params {
        match file.get(p.name()) {
            None => {
                structural = true;
                problems.push(format!(
                    "parameter '{}' (shape {:?}) is missing from the file",
                    p.name(),
                    p.shape()
                ));
            }
            Some((_, t)) if t.shape() != p.shape().as_slice() => {
                structural = true;
                problems.push(format!(
                    "parameter '{}' has shape {:?} in the file but {:?} in the model",
                    p.name(),
                    t.shape(),
                    p.shape()
                ));
            }
            Some((_, t)) if t.dtype() != p.dtype() => problems.push(format!(
                "parameter '{}' is {} in the file but {} in the model: convert the model \
                 with to_dtype({}) before loading, or save the file from a {} model",
                p.name(),
                t.dtype(),
                p.dtype(),
                t.dtype(),
                p.dtype()
            )),
            Some(_) => {}
        }
    }
    let known: std::collections::HashSet<&str> = params.iter().map(|p| p.name()).collect();
    for (h, t) in &entries {
        if !known.contains(h.name.as_str()) {
            structural = true;
            problems.push(format!(
                "the file has parameter '{}' (shape {:?}) that the model does not have",
                h.name,
                t.shape()
            ));
        }
    }
    if !problems.is_empty() {
        let mut msg = format!(
            "the file does not fit the model ({} problem{}): {}",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" },
            join_problems(&problems)
        );
        if structural {
            msg.push_str(
                ". It was saved from another model or configuration: load it into the model \
                 it was saved from, or build the model with the same settings",
            );
        }
        return Err(format_err(path, msg));
    }
    for p in params {
        p.set(file[p.name()].1.to(p.get().device()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(scale: f32) -> Vec<Param> {
        vec![
            Param::new(
                "encoder.w",
                Tensor::from_vec((0..6).map(|i| i as f32 * scale).collect(), &[2, 3]),
            ),
            Param::new("encoder.b", Tensor::from_vec(vec![0.5f32 * scale], &[1])),
            Param::buffer(
                "bn.running_var",
                Tensor::from_vec(vec![1.0f64 * scale as f64, 2.0], &[2]),
            ),
        ]
    }

    fn zero_model() -> Vec<Param> {
        vec![
            Param::new("encoder.w", Tensor::zeros(&[2, 3], DType::F32)),
            Param::new("encoder.b", Tensor::zeros(&[1], DType::F32)),
            Param::buffer("bn.running_var", Tensor::zeros(&[2], DType::F64)),
        ]
    }

    fn values(ps: &[Param]) -> Vec<Vec<f64>> {
        ps.iter().map(|p| p.get().to_vec::<f64>()).collect()
    }

    fn saved() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.params");
        save_params(&path, &model(1.0)).unwrap();
        (dir, path)
    }

    fn load_err(path: &Path, ps: &[Param]) -> String {
        let before = values(ps);
        let e = load_params(path, ps).unwrap_err();
        assert!(matches!(e, Error::Format { .. } | Error::Io { .. }), "{e}");
        assert_eq!(values(ps), before, "a failed load must change nothing");
        e.to_string()
    }

    #[test]
    fn round_trip_is_exact_and_keeps_buffers() {
        let (_d, path) = saved();
        let m = zero_model();
        load_params(&path, &m).unwrap();
        assert_eq!(values(&m), values(&model(1.0)));
        assert!(m[0].get().is_tracked() && !m[2].get().is_tracked());
        assert_eq!(m[2].dtype(), DType::F64);
        // odd values survive bit for bit
        let p = Param::new(
            "x",
            Tensor::from_vec(vec![f32::MIN_POSITIVE, -0.0, 1e-45], &[3]),
        );
        save_params(&path, std::slice::from_ref(&p)).unwrap();
        let q = Param::new("x", Tensor::zeros(&[3], DType::F32));
        load_params(&path, std::slice::from_ref(&q)).unwrap();
        let bits = |p: &Param| {
            p.get()
                .array::<f32>()
                .iter()
                .map(|v| v.to_bits())
                .collect::<Vec<_>>()
        };
        assert_eq!(bits(&p), bits(&q));
    }

    #[test]
    fn layout_is_as_documented() {
        let (_d, path) = saved();
        let b = std::fs::read(&path).unwrap();
        assert_eq!(&b[..8], b"NAOPARAM");
        assert_eq!(u32::from_le_bytes(b[8..12].try_into().unwrap()), 1);
        let h = u64::from_le_bytes(b[12..20].try_into().unwrap()) as usize;
        let header: serde_json::Value = serde_json::from_slice(&b[20..20 + h]).unwrap();
        assert_eq!(header["entries"][0]["name"], "encoder.w");
        assert_eq!(header["entries"][0]["dtype"], "f32");
        assert_eq!(header["entries"][1]["offset"], 24);
        assert_eq!(header["entries"][2]["dtype"], "f64");
        assert_eq!(b.len(), 20 + h + 24 + 4 + 16);
        let first = f32::from_le_bytes(b[20 + h + 4..20 + h + 8].try_into().unwrap());
        assert_eq!(first, 1.0);
    }

    #[test]
    fn save_is_atomic_and_leaves_no_temporaries() {
        let (d, path) = saved();
        save_params(&path, &model(2.0)).unwrap();
        let names: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        let m = zero_model();
        load_params(&path, &m).unwrap();
        assert_eq!(values(&m), values(&model(2.0)));
    }

    #[test]
    fn truncated_file_names_the_parameter() {
        let (_d, path) = saved();
        let b = std::fs::read(&path).unwrap();
        std::fs::write(&path, &b[..b.len() - 10]).unwrap();
        let e = load_err(&path, &zero_model());
        let h = u64::from_le_bytes(b[12..20].try_into().unwrap()) as usize;
        let (a, z) = (20 + h + 28, 20 + h + 44);
        let want = format!(
            "file ends at byte {} but parameter 'bn.running_var' needs bytes {a}..{z}: the file \
             is truncated; save it again",
            b.len() - 10
        );
        assert!(e.contains(&want), "{e}\nwanted: {want}");
        // cut inside the header, and inside the prefix
        std::fs::write(&path, &b[..30]).unwrap();
        assert!(load_err(&path, &zero_model()).contains("the header needs bytes 20.."));
        std::fs::write(&path, &b[..10]).unwrap();
        assert!(load_err(&path, &zero_model()).contains("truncated"));
    }

    #[test]
    fn another_model_lists_every_mismatch_by_name() {
        let (_d, path) = saved();
        let other = vec![
            Param::new("encoder.w", Tensor::zeros(&[3, 3], DType::F32)),
            Param::new("decoder.b", Tensor::zeros(&[1], DType::F32)),
            Param::buffer("bn.running_var", Tensor::zeros(&[2], DType::F64)),
        ];
        let e = load_err(&path, &other);
        for want in [
            "3 problems",
            "parameter 'encoder.w' has shape [2, 3] in the file but [3, 3] in the model",
            "parameter 'decoder.b' (shape [1]) is missing from the file",
            "the file has parameter 'encoder.b' (shape [1]) that the model does not have",
            "saved from another model",
        ] {
            assert!(e.contains(want), "{e}\nwanted: {want}");
        }
    }

    #[test]
    fn dtype_mismatch_is_an_error_naming_the_parameter() {
        let (_d, path) = saved();
        let m = zero_model();
        m[0].to_dtype(DType::F64);
        let e = load_err(&path, &m);
        assert!(
            e.contains("parameter 'encoder.w' is f32 in the file but f64 in the model"),
            "{e}"
        );
        assert!(e.contains("to_dtype(f32)"), "{e}");
    }

    #[test]
    fn another_version_says_which() {
        let (_d, path) = saved();
        let mut b = std::fs::read(&path).unwrap();
        b[8..12].copy_from_slice(&7u32.to_le_bytes());
        std::fs::write(&path, &b).unwrap();
        let e = load_err(&path, &zero_model());
        assert!(
            e.contains("format version 7, this build reads version 1"),
            "{e}"
        );
    }

    #[test]
    fn bad_magic_is_not_a_parameter_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        std::fs::write(&path, b"PK\x03\x04 this is a zip file, honest").unwrap();
        let e = load_err(&path, &zero_model());
        assert!(e.contains("not a parameter file"), "{e}");
        std::fs::write(&path, b"abc").unwrap();
        assert!(load_err(&path, &zero_model()).contains("not a parameter file"));
        let (_d2, p2) = saved();
        let mut b = std::fs::read(p2).unwrap();
        b[..8].copy_from_slice(OPTIM_MAGIC);
        std::fs::write(&path, &b).unwrap();
        assert!(load_err(&path, &zero_model()).contains("this is an optimiser state file"));
        let e = load_err(&dir.path().join("missing"), &zero_model());
        assert!(e.contains("missing"), "{e}");
    }

    #[test]
    fn corrupted_data_and_trailing_bytes_are_caught() {
        let (_d, path) = saved();
        let mut b = std::fs::read(&path).unwrap();
        let n = b.len();
        b[n - 1] ^= 1;
        std::fs::write(&path, &b).unwrap();
        let e = load_err(&path, &zero_model());
        assert!(e.contains("parameter 'bn.running_var': bytes"), "{e}");
        assert!(e.contains("checksum"), "{e}");
        b[n - 1] ^= 1;
        b.extend_from_slice(&[0, 0, 0]);
        std::fs::write(&path, &b).unwrap();
        assert!(load_err(&path, &zero_model()).contains("3 bytes after the last entry"));
        let mut bad = b.clone();
        bad.truncate(n);
        bad[22] = b'#';
        std::fs::write(&path, &bad).unwrap();
        assert!(load_err(&path, &zero_model()).contains("header is not valid"));
    }

    #[test]
    fn duplicate_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m");
        let ps = vec![
            Param::new("a", Tensor::zeros(&[1], DType::F32)),
            Param::new("a", Tensor::zeros(&[1], DType::F32)),
        ];
        let e = save_params(&path, &ps).unwrap_err().to_string();
        assert!(e.contains("two parameters are named 'a'"), "{e}");
        assert!(!path.exists());
    }
}
