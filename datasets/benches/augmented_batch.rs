//! Assembling one 128-image augmented batch (pad-4 crop, flip, cutout 16,
//! normalisation) as an NCHW f32 array, in parallel with rayon.
//! Uses synthetic images so it runs without data.

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use datasets::{Augment, Batcher, BatcherConfig, ChannelStats, synthetic};

fn bench(c: &mut Criterion) {
    let set = Arc::new(synthetic::synthetic_images(5_000, 0));
    let mut g = c.benchmark_group("batch");
    g.measurement_time(Duration::from_secs(5));
    for (name, augment) in [
        ("128_augmented_cutout16", Augment::with_cutout(16)),
        ("128_plain_normalised", Augment::none()),
    ] {
        let cfg = BatcherConfig {
            batch_size: 128,
            augment,
            seed: 1,
            ..BatcherConfig::default()
        };
        let batcher = Batcher::new(set.clone(), ChannelStats::CIFAR10, cfg).expect("batcher");
        let order = batcher.epoch_order(0);
        let mut epoch = 0u64;
        g.bench_function(name, |b| {
            b.iter(|| {
                epoch += 1;
                batcher.assemble(epoch, &order[..128]).expect("batch")
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
