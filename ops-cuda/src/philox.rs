//! Philox4x32-10, the counter-based generator of `kernels/random.cu`, on the CPU.
//!
//! Element `e` (a 64-bit position, `offset + i`) of a stream with key `seed` uses counter
//! `(lo(e/4), hi(e/4), 0, 0)` and takes output word `e % 4`; the uniform is
//! `(word >> 8) * 2^-24` in `[0, 1)`. The same `(seed, e)` gives the same number on the GPU and
//! here, whatever the launch configuration, so CPU and GPU dropout masks agree bit for bit.

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// The ten-round Philox4x32 bijection of `ctr` under `key`.
pub fn philox4x32_10(mut ctr: [u32; 4], mut key: [u32; 2]) -> [u32; 4] {
    for _ in 0..10 {
        let p0 = u64::from(M0) * u64::from(ctr[0]);
        let p1 = u64::from(M1) * u64::from(ctr[2]);
        let (hi0, lo0) = ((p0 >> 32) as u32, p0 as u32);
        let (hi1, lo1) = ((p1 >> 32) as u32, p1 as u32);
        ctr = [hi1 ^ ctr[1] ^ key[0], lo1, hi0 ^ ctr[3] ^ key[1], lo0];
        key[0] = key[0].wrapping_add(W0);
        key[1] = key[1].wrapping_add(W1);
    }
    ctr
}

/// The uniform number in `[0, 1)` at position `e` of the stream `seed`.
pub fn uniform(seed: u64, e: u64) -> f32 {
    let blk = e >> 2;
    let out = philox4x32_10(
        [blk as u32, (blk >> 32) as u32, 0, 0],
        [seed as u32, (seed >> 32) as u32],
    );
    let w = out[(e & 3) as usize];
    (w >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// The inverted-dropout mask of `kernels/random.cu`: `scale = 1/(1-p)` where
/// `uniform(seed, offset+i) >= p`, else 0.
pub fn dropout_mask(n: usize, p: f32, seed: u64, offset: u64) -> Vec<f32> {
    let scale = dropout_scale(p);
    (0..n as u64)
        .map(|i| {
            if uniform(seed, offset + i) >= p {
                scale
            } else {
                0.0
            }
        })
        .collect()
}

/// `1/(1-p)`, or 0 when `p >= 1` (everything dropped).
pub fn dropout_scale(p: f32) -> f32 {
    if p >= 1.0 { 0.0 } else { 1.0 / (1.0 - p) }
}

/// The Bernoulli mask of `kernels/random.cu`: `scale` where `uniform(seed, offset+i) < keep_prob`.
pub fn bernoulli_mask(n: usize, keep_prob: f32, scale: f32, seed: u64, offset: u64) -> Vec<f32> {
    (0..n as u64)
        .map(|i| {
            if uniform(seed, offset + i) < keep_prob {
                scale
            } else {
                0.0
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_random123_known_answers() {
        // Known-answer vectors from Random123's kat_vectors (philox4x32 with 10 rounds).
        assert_eq!(
            philox4x32_10([0, 0, 0, 0], [0, 0]),
            [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]
        );
        assert_eq!(
            philox4x32_10([u32::MAX; 4], [u32::MAX; 2]),
            [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]
        );
        assert_eq!(
            philox4x32_10(
                [0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344],
                [0xa409_3822, 0x299f_31d0]
            ),
            [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1]
        );
    }

    #[test]
    fn uniform_is_in_range_and_roughly_uniform() {
        let n = 100_000;
        let mean: f64 = (0..n).map(|e| f64::from(uniform(7, e))).sum::<f64>() / n as f64;
        assert!((mean - 0.5).abs() < 0.01, "{mean}");
        assert!((0..n).all(|e| (0.0..1.0).contains(&uniform(7, e))));
        let kept = dropout_mask(10_000, 0.3, 1, 0)
            .iter()
            .filter(|&&m| m > 0.0)
            .count();
        assert!((6700..7300).contains(&kept), "{kept}");
    }
}
