//! Checks on the real CIFAR-10 and Penn Treebank files.
//!
//! They read `NAO_DATA_DIR` (prepared by `.ci/run`: the CIFAR-10 archive
//! and `ptb/*.txt`) and print "skipped: NAO_DATA_DIR not set" and return
//! when it is unset.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use datasets::cifar::VERIFIED_MARKER;
use datasets::{
    Augment, Batcher, BatcherConfig, ChannelStats, Cifar, CifarSpec, Corpus, LastBatch,
    LoadOptions, Verify,
};

fn data_dir() -> Option<PathBuf> {
    match std::env::var_os("NAO_DATA_DIR") {
        Some(v) if !v.is_empty() => Some(PathBuf::from(v)),
        _ => {
            eprintln!("skipped: NAO_DATA_DIR not set");
            None
        }
    }
}

/// CIFAR-10 loaded once per test binary (the first load may extract the archive).
fn cifar10() -> Option<&'static Cifar> {
    static CIFAR: OnceLock<Cifar> = OnceLock::new();
    let dir = data_dir()?;
    Some(CIFAR.get_or_init(|| {
        let t = Instant::now();
        let c = Cifar::cifar10(&dir, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        eprintln!(
            "first CIFAR-10 load (extracting/verifying if needed): {:?}",
            t.elapsed()
        );
        c
    }))
}

fn round4(x: f32) -> f64 {
    (f64::from(x) * 1e4).round() / 1e4
}

#[test]
fn cifar10_sizes_and_class_counts() {
    let Some(c) = cifar10() else { return };
    assert_eq!(c.train.len(), 50_000);
    assert_eq!(c.test.len(), 10_000);
    assert_eq!(c.train.class_counts(), vec![5000; 10]);
    assert_eq!(c.test.class_counts(), vec![1000; 10]);
    assert_eq!(c.train.classes[0], "airplane");
    assert_eq!(c.train.classes[9], "truck");
    let expected: [[usize; 10]; 5] = [
        [1005, 974, 1032, 1016, 999, 937, 1030, 1001, 1025, 981],
        [984, 1007, 1010, 995, 1010, 988, 1008, 1026, 987, 985],
        [994, 1042, 965, 997, 990, 1029, 978, 1015, 961, 1029],
        [1003, 963, 1041, 976, 1004, 1021, 1004, 981, 1024, 983],
        [1014, 1014, 952, 1016, 997, 1025, 980, 977, 1003, 1022],
    ];
    for (b, want) in expected.iter().enumerate() {
        let idx: Vec<usize> = (b * 10_000..(b + 1) * 10_000).collect();
        let counts = c.train.subset(&idx).unwrap().class_counts();
        assert_eq!(&counts[..], &want[..], "data_batch_{}", b + 1);
    }
}

#[test]
fn cifar10_channel_statistics_match_readme() {
    let Some(c) = cifar10() else { return };
    let s = ChannelStats::compute(&c.train);
    let mean: Vec<f64> = s.mean.iter().map(|&x| round4(x)).collect();
    let std: Vec<f64> = s.std.iter().map(|&x| round4(x)).collect();
    assert_eq!(
        mean,
        vec![0.4914, 0.4822, 0.4465],
        "train mean {:?}",
        s.mean
    );
    assert_eq!(std, vec![0.2470, 0.2435, 0.2616], "train std {:?}", s.std);
    for ch in 0..3 {
        assert!((s.mean[ch] - ChannelStats::CIFAR10.mean[ch]).abs() < 5e-5);
        assert!((s.std[ch] - ChannelStats::CIFAR10.std[ch]).abs() < 5e-5);
    }
    let t = ChannelStats::compute(&c.test);
    let mean: Vec<f64> = t.mean.iter().map(|&x| round4(x)).collect();
    let std: Vec<f64> = t.std.iter().map(|&x| round4(x)).collect();
    assert_eq!(mean, vec![0.4942, 0.4851, 0.4504], "test mean {:?}", t.mean);
    assert_eq!(std, vec![0.2467, 0.2429, 0.2616], "test std {:?}", t.std);
}

#[test]
fn cifar10_dev_split_is_seeded() {
    let Some(c) = cifar10() else { return };
    let (train, dev) = c
        .train
        .split_dev(datasets::split::DEFAULT_DEV_SIZE, 1)
        .unwrap();
    assert_eq!((train.len(), dev.len()), (45_000, 5_000));
    let (_, dev2) = c.train.split_dev(5_000, 1).unwrap();
    assert_eq!(dev, dev2);
    // Roughly balanced: every class has 500 ± 100 dev images.
    assert!(
        dev.class_counts().iter().all(|&n| (400..=600).contains(&n)),
        "{:?}",
        dev.class_counts()
    );
}

/// Once extracted and verified, a load reads the files without hashing them again: with
/// the `.verified` marker present, the default (`Verify::Auto`) does not see a flipped
/// pixel byte that full verification reports (`corrupted_bin_is_detected_by_full_verification`).
/// (This was a timed test, which failed on a busy machine; what made the load fast is
/// checked here instead, and the time is only printed.)
#[test]
fn cifar10_load_skips_the_md5s_once_verified() {
    let Some(dir) = data_dir() else { return };
    let _ = cifar10(); // make sure it is extracted and verified
    let real = dir.join("cifar-10-batches-bin");
    assert!(real.join(VERIFIED_MARKER).is_file());
    let t = Instant::now();
    let c = Cifar::cifar10(&dir, &LoadOptions::default()).unwrap();
    eprintln!(
        "CIFAR-10 load (60k images, marker present): {:?}",
        t.elapsed()
    );
    assert_eq!(c.train.len() + c.test.len(), 60_000);

    let tmp = corrupted_copy(&real, "data_batch_4.bin");
    std::fs::copy(
        real.join(VERIFIED_MARKER),
        tmp.path()
            .join("cifar-10-batches-bin")
            .join(VERIFIED_MARKER),
    )
    .unwrap();
    let quick = Cifar::cifar10(tmp.path(), &LoadOptions::default()).unwrap();
    assert_eq!(quick.train.len(), 50_000, "loaded without hashing");
    let full = LoadOptions {
        verify: Verify::Full,
        ..LoadOptions::default()
    };
    let msg = Cifar::cifar10(tmp.path(), &full).unwrap_err().to_string();
    assert!(
        msg.contains("data_batch_4.bin"),
        "the copy is corrupt: {msg}"
    );
}

#[test]
fn cifar10_augmented_batch_from_real_data() {
    let Some(c) = cifar10() else { return };
    let set = Arc::new(c.train.clone());
    let cfg = BatcherConfig {
        batch_size: 128,
        last_batch: LastBatch::Drop,
        augment: Augment::with_cutout(16),
        seed: 5,
        ..BatcherConfig::default()
    };
    let b = Batcher::new(set, ChannelStats::CIFAR10, cfg).unwrap();
    assert_eq!(b.num_batches(), 390);
    let t = Instant::now();
    let batch = b.epoch(0).next().unwrap();
    eprintln!("one 128-image augmented batch: {:?}", t.elapsed());
    assert_eq!(batch.images.shape(), &[128, 3, 32, 32]);
    let mean = batch.images.mean().unwrap();
    assert!(mean.abs() < 0.5, "normalised batch mean {mean}");
}

/// Symlinks all files of the real extracted directory into a temp dir,
/// except `corrupt`, which is copied with one byte flipped.
fn corrupted_copy(real: &Path, corrupt: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cifar-10-batches-bin");
    std::fs::create_dir(&dir).unwrap();
    for entry in std::fs::read_dir(real).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == VERIFIED_MARKER {
            continue;
        }
        if name == corrupt {
            let mut bytes = std::fs::read(entry.path()).unwrap();
            bytes[12_345_678] ^= 0x01;
            std::fs::write(dir.join(&name), bytes).unwrap();
        } else {
            std::os::unix::fs::symlink(entry.path(), dir.join(&name)).unwrap();
        }
    }
    tmp
}

#[test]
fn corrupted_bin_is_detected_by_full_verification() {
    let Some(dir) = data_dir() else { return };
    let _ = cifar10();
    let real = dir.join("cifar-10-batches-bin");
    let tmp = corrupted_copy(&real, "data_batch_4.bin");
    let full = LoadOptions {
        verify: Verify::Full,
        ..LoadOptions::default()
    };
    let msg = Cifar::cifar10(tmp.path(), &full).unwrap_err().to_string();
    assert!(
        msg.contains("bad checksum") && msg.contains("data_batch_4.bin"),
        "{msg}"
    );
    assert!(msg.contains("ae636b3ba5c66a11e91e8cb52e771fcb"), "{msg}");
    assert!(msg.contains("Fix: delete"), "{msg}");
    // Without a marker, the default (Auto) verifies in full too.
    let msg = Cifar::cifar10(tmp.path(), &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("data_batch_4.bin"), "{msg}");
    // The intact real files pass full verification.
    let spec = CifarSpec::cifar10();
    let ok = Cifar::load(&spec, &dir, &full).unwrap();
    assert_eq!(ok.train.len(), 50_000);
}

#[test]
fn ptb_vocabulary_and_token_counts() {
    let Some(dir) = data_dir() else { return };
    let t = Instant::now();
    let corpus = Corpus::ptb(&dir).unwrap();
    eprintln!("PTB load: {:?}", t.elapsed());
    assert_eq!(corpus.vocab.len(), 10_000);
    assert_eq!(corpus.train.len(), 929_589);
    assert_eq!(corpus.valid.len(), 73_760);
    assert_eq!(corpus.test.len(), 82_430);
    let eos = corpus.vocab.id("<eos>").unwrap();
    assert_eq!(corpus.train.iter().filter(|&&i| i == eos).count(), 42_068);
    assert!(corpus.vocab.id("<unk>").is_some() && corpus.vocab.id("N").is_some());
    // Valid and test have no word outside the training vocabulary.
    for split in ["valid", "test"] {
        let text = std::fs::read_to_string(dir.join(format!("ptb/ptb.{split}.txt"))).unwrap();
        let oov: Vec<&str> = text
            .split_whitespace()
            .filter(|w| corpus.vocab.id(w).is_none())
            .collect();
        assert!(
            oov.is_empty(),
            "{split} OOV: {:?}",
            &oov[..oov.len().min(5)]
        );
    }
    // Batchify + windows over the real stream.
    let data = datasets::batchify(&corpus.train, 64).unwrap();
    assert_eq!(data.shape(), &[929_589 / 64, 64]);
    let covered: usize =
        datasets::BpttWindows::new(&data, datasets::SeqLen::Random { bptt: 35 }, 0)
            .unwrap()
            .map(|w| w.seq_len)
            .sum();
    assert_eq!(covered, data.nrows() - 1);
}
