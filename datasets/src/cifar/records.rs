//! Reading the binary record files: size and record-structure checks, parsing (in
//! parallel, straight into the final buffers) and label range checks.

use std::fs;
use std::path::Path;

use rayon::prelude::*;

use super::classes::CIFAR100_COARSE_CLASSES;
use super::image_set::{IMAGE_BYTES, ImageSet};
use super::spec::{CifarSpec, FileSpec, Layout};
use crate::error::{DatasetError, Result};

/// The fix named by every error about a damaged file of `spec` in `dir`.
pub(super) fn refetch_fix(spec: &CifarSpec, dir: &Path) -> String {
    format!(
        "delete {} and load again so that it is re-extracted from {} (or re-downloaded from {})",
        dir.display(),
        spec.archive_name,
        spec.url
    )
}

/// Checks that file `f` of `spec` is at `path` with the expected size; returns the size.
pub(super) fn check_size(spec: &CifarSpec, f: &FileSpec, path: &Path, dir: &Path) -> Result<u64> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(DatasetError::MissingFile {
                path: path.to_path_buf(),
                fix: refetch_fix(spec, dir),
            });
        }
        Err(e) => return Err(DatasetError::io("read metadata of", path, e)),
    };
    check_len(spec, f, path, dir, meta.len())?;
    Ok(meta.len())
}

/// Checks a file length `len` against `f`'s record count and `spec`'s record length.
fn check_len(spec: &CifarSpec, f: &FileSpec, path: &Path, dir: &Path, len: u64) -> Result<()> {
    let rec = spec.layout.record_len();
    if !len.is_multiple_of(rec as u64) {
        return Err(DatasetError::TruncatedRecord {
            path: path.to_path_buf(),
            len,
            record_len: rec,
            fix: refetch_fix(spec, dir),
        });
    }
    let expected = spec.expected_bytes(f);
    if len != expected {
        return Err(DatasetError::WrongSize {
            path: path.to_path_buf(),
            expected,
            actual: len,
            fix: refetch_fix(spec, dir),
        });
    }
    Ok(())
}

/// Reads and parses every file of the spec (in parallel), checking sizes,
/// record structure and label ranges. Each file is parsed straight into its
/// slice of the final buffers (no concatenation copy). Returns `(train, test)`.
pub(super) fn read_dir(spec: &CifarSpec, dir: &Path) -> Result<(ImageSet, ImageSet)> {
    for f in spec.all_files() {
        check_size(spec, f, &dir.join(&f.name), dir)?;
    }
    let train = read_files(spec, &spec.train_files, dir)?;
    let test = read_files(spec, &spec.test_files, dir)?;
    Ok((train, test))
}

/// One file's share of the output buffers.
struct Slot<'a> {
    file: &'a FileSpec,
    images: &'a mut [u8],
    labels: &'a mut [u8],
    coarse: Option<&'a mut [u8]>,
}

/// Reads the `files` of `spec` in `dir` into one set, in file order.
fn read_files(spec: &CifarSpec, files: &[FileSpec], dir: &Path) -> Result<ImageSet> {
    let n: usize = files.iter().map(|f| f.records).sum();
    let mut images = vec![0u8; n * IMAGE_BYTES];
    let mut labels = vec![0u8; n];
    let mut coarse = (spec.layout == Layout::Cifar100).then(|| vec![0u8; n]);
    let mut slots = Vec::with_capacity(files.len());
    {
        let (mut img_rest, mut lab_rest) = (images.as_mut_slice(), labels.as_mut_slice());
        let mut coarse_rest = coarse.as_deref_mut();
        for file in files {
            let (img, ir) = img_rest.split_at_mut(file.records * IMAGE_BYTES);
            let (lab, lr) = lab_rest.split_at_mut(file.records);
            let c = coarse_rest.take().map(|c| {
                let (a, b) = c.split_at_mut(file.records);
                coarse_rest = Some(b);
                a
            });
            (img_rest, lab_rest) = (ir, lr);
            slots.push(Slot {
                file,
                images: img,
                labels: lab,
                coarse: c,
            });
        }
    }
    slots.into_par_iter().try_for_each(|slot| {
        let path = dir.join(&slot.file.name);
        let bytes = fs::read(&path).map_err(|e| DatasetError::io("read", &path, e))?;
        check_len(spec, slot.file, &path, dir, bytes.len() as u64)?;
        parse_into(
            &bytes,
            spec.layout,
            spec.classes.len(),
            &path,
            slot.images,
            slot.labels,
            slot.coarse,
        )
        .map_err(|e| with_fix(e, refetch_fix(spec, dir)))
    })?;
    Ok(ImageSet {
        images,
        labels,
        coarse_labels: coarse,
        classes: spec.classes.clone(),
    })
}

/// `e` with its fix replaced by `new_fix` (for the errors that carry one).
fn with_fix(e: DatasetError, new_fix: String) -> DatasetError {
    match e {
        DatasetError::LabelOutOfRange {
            path,
            record,
            kind,
            label,
            limit,
            ..
        } => DatasetError::LabelOutOfRange {
            path,
            record,
            kind,
            label,
            limit,
            fix: new_fix,
        },
        other => other,
    }
}

/// Parses CIFAR binary records from memory.
///
/// `num_classes` bounds the (fine) label; CIFAR-100 coarse labels must be
/// below 20. `path` is only used in error messages.
///
/// ```
/// use datasets::cifar::{Layout, parse_records};
/// let set = datasets::synthetic::synthetic_images(4, 3);
/// let parsed = parse_records(&set.to_records(), Layout::Cifar10, 10, "mem".as_ref()).unwrap();
/// assert_eq!(parsed.images, set.images);
/// assert_eq!(parsed.labels, set.labels);
/// ```
pub fn parse_records(
    bytes: &[u8],
    layout: Layout,
    num_classes: usize,
    path: &Path,
) -> Result<ImageSet> {
    let rec = layout.record_len();
    if !bytes.len().is_multiple_of(rec) {
        return Err(DatasetError::TruncatedRecord {
            path: path.to_path_buf(),
            len: bytes.len() as u64,
            record_len: rec,
            fix: format!("delete {} and extract or download it again", path.display()),
        });
    }
    let n = bytes.len() / rec;
    let mut images = vec![0u8; n * IMAGE_BYTES];
    let mut labels = vec![0u8; n];
    let mut coarse = (layout == Layout::Cifar100).then(|| vec![0u8; n]);
    parse_into(
        bytes,
        layout,
        num_classes,
        path,
        &mut images,
        &mut labels,
        coarse.as_deref_mut(),
    )?;
    Ok(ImageSet {
        images,
        labels,
        coarse_labels: coarse,
        classes: Vec::new(),
    })
}

/// Parses whole records of `bytes` into pre-sized output slices.
fn parse_into(
    bytes: &[u8],
    layout: Layout,
    num_classes: usize,
    path: &Path,
    images: &mut [u8],
    labels: &mut [u8],
    mut coarse: Option<&mut [u8]>,
) -> Result<()> {
    let rec = layout.record_len();
    let fix = || format!("delete {} and extract or download it again", path.display());
    let head = rec - IMAGE_BYTES;
    for (i, (r, img)) in bytes
        .chunks_exact(rec)
        .zip(images.chunks_exact_mut(IMAGE_BYTES))
        .enumerate()
    {
        if let Some(c) = coarse.as_deref_mut() {
            if r[0] as usize >= CIFAR100_COARSE_CLASSES.len() {
                return Err(DatasetError::LabelOutOfRange {
                    path: path.to_path_buf(),
                    record: i,
                    kind: "coarse",
                    label: r[0],
                    limit: CIFAR100_COARSE_CLASSES.len(),
                    fix: fix(),
                });
            }
            c[i] = r[0];
        }
        let label = r[head - 1];
        if label as usize >= num_classes {
            return Err(DatasetError::LabelOutOfRange {
                path: path.to_path_buf(),
                record: i,
                kind: if layout == Layout::Cifar100 {
                    "fine"
                } else {
                    "class"
                },
                label,
                limit: num_classes,
                fix: fix(),
            });
        }
        labels[i] = label;
        img.copy_from_slice(&r[head..]);
    }
    Ok(())
}
