//! Small generated datasets for tests, examples and other crates' tests.
//!
//! Images have learnable class structure (a class colour plus a class-specific
//! stripe pattern, with noise); text follows a tiny grammar.

use std::path::Path;

use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;

use crate::checksum::md5_bytes;
use crate::cifar::{
    CHANNELS, CIFAR10_CLASSES, CifarSpec, FileSpec, IMAGE_BYTES, IMAGE_SIDE, ImageSet,
};
use crate::error::{DatasetError, Result};

const PALETTE: [[i32; 3]; 10] = [
    [200, 60, 60],
    [60, 200, 60],
    [60, 60, 200],
    [200, 200, 60],
    [200, 60, 200],
    [60, 200, 200],
    [140, 140, 140],
    [230, 130, 40],
    [40, 130, 230],
    [110, 40, 160],
];

/// `n` random 32x32 RGB images in 10 classes (CIFAR-10 class names), with
/// labels drawn uniformly. Class `k` has colour `PALETTE[k]` and stripes of
/// period `2 + k/2`, horizontal for even `k` and vertical for odd `k`, plus
/// uniform noise of ±40: a small convnet separates them easily.
///
/// ```
/// let set = datasets::synthetic::synthetic_images(100, 42);
/// assert_eq!(set.len(), 100);
/// assert_eq!(set.images.len(), 100 * 3072);
/// assert_eq!(set, datasets::synthetic::synthetic_images(100, 42));
/// ```
pub fn synthetic_images(n: usize, seed: u64) -> ImageSet {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let mut images = Vec::with_capacity(n * IMAGE_BYTES);
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let k = rng.random_range(0..10usize);
        labels.push(k as u8);
        let period = 2 + k / 2;
        let phase = rng.random_range(0..period);
        for (c, &base) in PALETTE[k].iter().enumerate().take(CHANNELS) {
            for y in 0..IMAGE_SIDE {
                for x in 0..IMAGE_SIDE {
                    let t = if k % 2 == 0 { y } else { x };
                    let stripe = if ((t + phase) / period) % 2 == 0 {
                        35
                    } else {
                        -35
                    };
                    let noise = rng.random_range(-40..=40);
                    let v = base + stripe * if c == 1 { -1 } else { 1 } + noise;
                    images.push(v.clamp(0, 255) as u8);
                }
            }
        }
    }
    ImageSet {
        images,
        labels,
        coarse_labels: None,
        classes: CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect(),
    }
}

/// Files of a tiny CIFAR-10-format dataset: `n_train` images spread over
/// `data_batch_1..5.bin` and `n_test` in `test_batch.bin`, plus the
/// [`CifarSpec`] describing them (sizes and MD5s of these files; URL and
/// archive MD5 of the real dataset, to be replaced by callers that serve an
/// archive).
pub fn small_cifar10_files(
    n_train: usize,
    n_test: usize,
    seed: u64,
) -> (CifarSpec, Vec<(String, Vec<u8>)>) {
    let mut spec = CifarSpec::cifar10();
    let train = synthetic_images(n_train, seed);
    let test = synthetic_images(n_test, seed ^ 0xDEAD_BEEF);
    let mut files = Vec::new();
    let mut start = 0;
    for (i, f) in spec.train_files.iter_mut().enumerate() {
        let count = n_train / 5 + usize::from(i < n_train % 5);
        let idx: Vec<usize> = (start..start + count).collect();
        start += count;
        let bytes = train
            .subset(&idx)
            .map(|s| s.to_records())
            .unwrap_or_default();
        *f = FileSpec {
            name: f.name.clone(),
            records: count,
            md5: Some(md5_bytes(&bytes)),
        };
        files.push((f.name.clone(), bytes));
    }
    let bytes = test.to_records();
    spec.test_files[0].records = n_test;
    spec.test_files[0].md5 = Some(md5_bytes(&bytes));
    files.push((spec.test_files[0].name.clone(), bytes));
    files.push((
        "batches.meta.txt".into(),
        CIFAR10_CLASSES
            .iter()
            .map(|c| format!("{c}\n"))
            .collect::<String>()
            .into_bytes(),
    ));
    (spec, files)
}

/// Writes a tiny CIFAR-10-format dataset (see [`small_cifar10_files`]) into
/// `data_dir/cifar-10-batches-bin/` and returns its spec.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let spec = datasets::synthetic::write_small_cifar10(dir.path(), 10, 4, 0).unwrap();
/// assert!(dir.path().join(&spec.dir_name).join("test_batch.bin").is_file());
/// ```
pub fn write_small_cifar10(
    data_dir: &Path,
    n_train: usize,
    n_test: usize,
    seed: u64,
) -> Result<CifarSpec> {
    let (spec, files) = small_cifar10_files(n_train, n_test, seed);
    let dir = data_dir.join(&spec.dir_name);
    std::fs::create_dir_all(&dir).map_err(|e| DatasetError::io("create directory", &dir, e))?;
    for (name, bytes) in files {
        let p = dir.join(name);
        std::fs::write(&p, bytes).map_err(|e| DatasetError::io("write", &p, e))?;
    }
    Ok(spec)
}

/// A `.tar.gz` archive of a tiny CIFAR-10-format dataset laid out like the
/// official one (`cifar-10-batches-bin/...`), and its spec, whose
/// `archive_checksums` holds the MD5 of the returned bytes.
///
/// ```
/// use datasets::checksum::{Checksum, md5_bytes};
/// let (spec, bytes) = datasets::synthetic::small_cifar10_archive(10, 5, 0).unwrap();
/// assert_eq!(spec.archive_checksums, vec![Checksum::Md5(md5_bytes(&bytes))]);
/// ```
pub fn small_cifar10_archive(
    n_train: usize,
    n_test: usize,
    seed: u64,
) -> Result<(CifarSpec, Vec<u8>)> {
    let (mut spec, files) = small_cifar10_files(n_train, n_test, seed);
    let io = |e: std::io::Error| DatasetError::io("build", "<in-memory archive>", e);
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (name, bytes) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_239_148_800);
        h.set_cksum();
        tar.append_data(
            &mut h,
            format!("{}/{name}", spec.dir_name),
            bytes.as_slice(),
        )
        .map_err(io)?;
    }
    let bytes = tar.into_inner().map_err(io)?.finish().map_err(io)?;
    spec.archive_checksums = vec![crate::checksum::Checksum::Md5(md5_bytes(&bytes))];
    Ok((spec, bytes))
}

/// `lines` lines of PTB-style text (leading space, `\n`-terminated) from a
/// tiny grammar over 20 words plus `<unk>` and `N`.
///
/// ```
/// let text = datasets::synthetic::synthetic_text(50, 1);
/// let c = datasets::Corpus::from_texts(&text, &datasets::synthetic::synthetic_text(5, 2), "").unwrap();
/// assert_eq!(c.train.iter().filter(|&&i| i == c.vocab.id("<eos>").unwrap()).count(), 50);
/// ```
pub fn synthetic_text(lines: usize, seed: u64) -> String {
    const DET: [&str; 3] = ["the", "a", "every"];
    const ADJ: [&str; 4] = ["big", "small", "red", "<unk>"];
    const NOUN: [&str; 6] = ["cat", "dog", "market", "company", "N", "share"];
    const VERB: [&str; 5] = ["sees", "buys", "sells", "likes", "rose"];
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let mut pick = |xs: &[&'static str]| xs[rng.random_range(0..xs.len())];
    let mut out = String::new();
    for _ in 0..lines {
        let words = [
            pick(&DET),
            pick(&ADJ),
            pick(&NOUN),
            pick(&VERB),
            pick(&DET),
            pick(&NOUN),
        ];
        out.push(' ');
        out.push_str(&words.join(" "));
        out.push_str(" \n");
    }
    out
}
