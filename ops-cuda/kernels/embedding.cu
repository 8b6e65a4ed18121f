// Embedding lookup: table (V, D), idx (n) int32, out (n, D), all row-major.
// Indices outside [0, V) read as a zero row (forward) and are skipped (backward).

extern "C" __global__ void embedding_forward(float* __restrict__ out, const float* __restrict__ table,
                                             const int* __restrict__ idx, int n, int V, int D) {
    const long long total = (long long)n * D;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        const int k = idx[i / D];
        out[i] = (k >= 0 && k < V) ? table[(long long)k * D + i % D] : 0.0f;
    }
}

// dtable[idx[i], :] += dout[i, :] with atomicAdd (accumulates into dtable; zero it first).
// Float atomics make the summation order, hence the last bits, launch-dependent for repeats.
extern "C" __global__ void embedding_backward(float* __restrict__ dtable, const float* __restrict__ dout,
                                              const int* __restrict__ idx, int n, int V, int D) {
    const long long total = (long long)n * D;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        const int k = idx[i / D];
        if (k >= 0 && k < V) atomicAdd(&dtable[(long long)k * D + i % D], dout[i]);
    }
}
