//! Probe: memory bandwidth of simple passes over a 16 MiB f32 array (context for the
//! depthwise numbers).
use std::time::Instant;
fn main() {
    let n = 64 * 64 * 32 * 32;
    let a = vec![1.0f32; n];
    let best = |f: &mut dyn FnMut()| {
        (0..10)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .fold(f64::MAX, f64::min)
    };
    let t = best(&mut || {
        let b = a.clone();
        std::hint::black_box(&b);
    });
    println!(
        "clone 16MiB: {:.2} ms ({:.1} GB/s r+w)",
        t * 1e3,
        2.0 * 4.0 * n as f64 / t / 1e9
    );
    let t = best(&mut || {
        let b = vec![0.0f32; n];
        std::hint::black_box(&b);
    });
    println!("zeros 16MiB (calloc, lazy): {:.3} ms", t * 1e3);
    let t = best(&mut || {
        let mut b = vec![0.0f32; n];
        b.iter_mut().for_each(|v| *v = 1.0);
        std::hint::black_box(&b);
    });
    println!("zeros+touch 16MiB: {:.2} ms", t * 1e3);
    let mut b = vec![0.0f32; n];
    let t = best(&mut || {
        b.copy_from_slice(&a);
        std::hint::black_box(&b);
    });
    println!(
        "copy into existing 16MiB: {:.2} ms ({:.1} GB/s)",
        t * 1e3,
        2.0 * 4.0 * n as f64 / t / 1e9
    );
}
