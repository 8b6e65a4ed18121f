//! Loading all of CIFAR-10 (60,000 images) from `$NAO_DATA_DIR`, after the
//! first extraction/verification (marker present: sizes/structure/labels only).
//! Skips with a message when `NAO_DATA_DIR` is not set.

use std::path::PathBuf;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use datasets::{Cifar, LoadOptions};

fn bench(c: &mut Criterion) {
    let Some(dir) = std::env::var_os("NAO_DATA_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
    else {
        eprintln!("skipped: NAO_DATA_DIR not set");
        return;
    };
    // Extract and verify once, outside the measurement.
    if let Err(e) = Cifar::cifar10(&dir, &LoadOptions::default()) {
        eprintln!("skipped: {e}");
        return;
    }
    let mut g = c.benchmark_group("cifar10");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    g.bench_function("load_all_60k", |b| {
        b.iter(|| Cifar::cifar10(&dir, &LoadOptions::default()).expect("load"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
