// Counter-based random numbers: Philox4x32-10 (Salmon et al., SC'11). Element e (a global
// 64-bit position = offset + i) uses counter (lo(e/4), hi(e/4), 0, 0) and key (lo(seed),
// hi(seed)), and takes output word e % 4. u = (word >> 8) * 2^-24 in [0, 1). The result depends
// only on (seed, e), never on the launch configuration; src/philox.rs is the same on the CPU.

__device__ __forceinline__ float philox_uniform(unsigned long long seed, unsigned long long e) {
    const unsigned long long blk = e >> 2;
    unsigned int c0 = (unsigned int)blk, c1 = (unsigned int)(blk >> 32), c2 = 0u, c3 = 0u;
    unsigned int k0 = (unsigned int)seed, k1 = (unsigned int)(seed >> 32);
#pragma unroll
    for (int r = 0; r < 10; ++r) {
        const unsigned int hi0 = __umulhi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
        const unsigned int hi1 = __umulhi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
        const unsigned int n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
        c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    const unsigned int w = (e & 3) == 0 ? c0 : (e & 3) == 1 ? c1 : (e & 3) == 2 ? c2 : c3;
    return (float)(w >> 8) * (1.0f / 16777216.0f);
}

// out[i] = lo + (hi - lo) * u(offset + i)
extern "C" __global__ void rand_uniform(float* __restrict__ out, int n, unsigned long long seed,
                                        unsigned long long offset, float lo, float hi) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        out[i] = lo + (hi - lo) * philox_uniform(seed, offset + (unsigned long long)i);
    }
}

// out[i] = u(offset + i) < keep_prob ? scale : 0   (drop-path: one value per sample)
extern "C" __global__ void bernoulli_mask(float* __restrict__ out, int n, unsigned long long seed,
                                          unsigned long long offset, float keep_prob, float scale) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        out[i] = philox_uniform(seed, offset + (unsigned long long)i) < keep_prob ? scale : 0.0f;
    }
}

// Inverted dropout: mask[i] = u(offset + i) >= p ? scale : 0 with scale = 1/(1-p); y = x * mask.
extern "C" __global__ void dropout_forward(float* __restrict__ y, float* __restrict__ mask,
                                           const float* __restrict__ x, int n, unsigned long long seed,
                                           unsigned long long offset, float p, float scale) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        const float m = philox_uniform(seed, offset + (unsigned long long)i) >= p ? scale : 0.0f;
        mask[i] = m;
        y[i] = x[i] * m;
    }
}
