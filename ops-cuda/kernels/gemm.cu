// Tiled SGEMM, row-major, batched:  C[b] = alpha * op(A[b]) * op(B[b]) + beta * C[b]
//   op(A) is M x K: A stored M x K (lda >= K), or K x M when transA (lda >= M).
//   op(B) is K x N: B stored K x N (ldb >= N), or N x K when transB (ldb >= K).
//   C is M x N (ldc >= N). Batch b = blockIdx.z; element strides sA, sB, sC (0 = shared).
//   beta == 0 never reads C (so C may hold garbage, NaN included).
//
// Design: a block computes a BM x BN tile of C with NT = (BM/TM)*(BN/TN) = 256 threads; each
// thread owns a TM x TN register tile. Per K-step of BK, the block stages a BM x BK slice of A
// (stored k-major, padded by 4 floats against bank conflicts on the transposing store) and a
// BK x BN slice of B in shared memory, then each thread reads TM + TN values per k with float4
// loads and does TM*TN FMAs. A thread's rows/columns are split into groups of 4 spread BM/(TM/4)
// apart, so a quarter-warp's float4 loads hit distinct banks.
//   sgemm_128x128: BM=BN=128, BK=8, 8x8 per thread: 64 FMAs per 16 shared loads (4 float4),
//     shared memory 2 * 8 * 132 * 4 B = 8.4 KB, ~100 registers.
//   sgemm_64x64:   BM=BN=64,  BK=8, 4x4 per thread, for small problems (more blocks).
// Arithmetic intensity per block K-step: 2*BM*BN*BK flops over (BM+BN)*BK*4 bytes from global
// (= 32 flop/B for 128x128), enough to be FMA-bound rather than bandwidth-bound on sm_80/sm_90.

template <int BM, int BN, int BK, int TM, int TN>
__device__ __forceinline__ void sgemm_tile(int transA, int transB, int M, int N, int K, float alpha,
                                           const float* __restrict__ A, int lda, long long sA,
                                           const float* __restrict__ B, int ldb, long long sB,
                                           float beta, float* __restrict__ C, int ldc, long long sC) {
    constexpr int NT = (BM / TM) * (BN / TN);
    constexpr int PAD = 4;
    __shared__ __align__(16) float As[BK][BM + PAD];
    __shared__ __align__(16) float Bs[BK][BN + PAD];

    const long long batch = blockIdx.z;
    A += batch * sA;
    B += batch * sB;
    C += batch * sC;
    const int m0 = blockIdx.y * BM;
    const int n0 = blockIdx.x * BN;
    const int tid = threadIdx.x;
    const int tx = tid % (BN / TN);
    const int ty = tid / (BN / TN);

    float acc[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = 0.0f;

    for (int k0 = 0; k0 < K; k0 += BK) {
#pragma unroll
        for (int i = 0; i < BM * BK / NT; ++i) {
            const int e = tid + i * NT;
            int m, k;
            if (transA) { k = e / BM; m = e % BM; } else { m = e / BK; k = e % BK; }
            const int gm = m0 + m, gk = k0 + k;
            float v = 0.0f;
            if (gm < M && gk < K) {
                v = transA ? A[(long long)gk * lda + gm] : A[(long long)gm * lda + gk];
            }
            As[k][m] = v;
        }
#pragma unroll
        for (int i = 0; i < BN * BK / NT; ++i) {
            const int e = tid + i * NT;
            int n, k;
            if (transB) { n = e / BK; k = e % BK; } else { k = e / BN; n = e % BN; }
            const int gn = n0 + n, gk = k0 + k;
            float v = 0.0f;
            if (gn < N && gk < K) {
                v = transB ? B[(long long)gn * ldb + gk] : B[(long long)gk * ldb + gn];
            }
            Bs[k][n] = v;
        }
        __syncthreads();
#pragma unroll
        for (int k = 0; k < BK; ++k) {
            float a[TM], b[TN];
#pragma unroll
            for (int iv = 0; iv < TM / 4; ++iv) {
                const float4 t = *reinterpret_cast<const float4*>(&As[k][iv * (BM * 4 / TM) + ty * 4]);
                a[iv * 4 + 0] = t.x; a[iv * 4 + 1] = t.y; a[iv * 4 + 2] = t.z; a[iv * 4 + 3] = t.w;
            }
#pragma unroll
            for (int jv = 0; jv < TN / 4; ++jv) {
                const float4 t = *reinterpret_cast<const float4*>(&Bs[k][jv * (BN * 4 / TN) + tx * 4]);
                b[jv * 4 + 0] = t.x; b[jv * 4 + 1] = t.y; b[jv * 4 + 2] = t.z; b[jv * 4 + 3] = t.w;
            }
#pragma unroll
            for (int i = 0; i < TM; ++i)
#pragma unroll
                for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
        }
        __syncthreads();
    }

#pragma unroll
    for (int i = 0; i < TM; ++i) {
        const int gm = m0 + (i / 4) * (BM * 4 / TM) + ty * 4 + (i % 4);
        if (gm >= M) continue;
#pragma unroll
        for (int j = 0; j < TN; ++j) {
            const int gn = n0 + (j / 4) * (BN * 4 / TN) + tx * 4 + (j % 4);
            if (gn >= N) continue;
            float* c = &C[(long long)gm * ldc + gn];
            const float v = alpha * acc[i][j];
            *c = beta == 0.0f ? v : fmaf(beta, *c, v);
        }
    }
}

#define SGEMM_ARGS                                                                            \
    int transA, int transB, int M, int N, int K, float alpha, const float *__restrict__ A,   \
        int lda, long long sA, const float *__restrict__ B, int ldb, long long sB, float beta, \
        float *__restrict__ C, int ldc, long long sC
#define SGEMM_PASS transA, transB, M, N, K, alpha, A, lda, sA, B, ldb, sB, beta, C, ldc, sC

// grid = (ceil(N/128), ceil(M/128), batch), block = 256
extern "C" __global__ void __launch_bounds__(256) sgemm_128x128(SGEMM_ARGS) {
    sgemm_tile<128, 128, 8, 8, 8>(SGEMM_PASS);
}

// grid = (ceil(N/64), ceil(M/64), batch), block = 256
extern "C" __global__ void __launch_bounds__(256) sgemm_64x64(SGEMM_ARGS) {
    sgemm_tile<64, 64, 8, 4, 4>(SGEMM_PASS);
}
