// Row-wise softmax / log-softmax / cross-entropy over x (R rows, C columns, row-major).
// One block per row; blockDim.x is a power of two in [32, 1024].

#define NEG_INF __int_as_float(0xff800000)  // -inf (no math headers under NVRTC)

__device__ float block_reduce(float v, float* sh, bool is_max) {
    for (int o = 16; o > 0; o >>= 1) {
        const float t = __shfl_down_sync(0xffffffffu, v, o);
        v = is_max ? fmaxf(v, t) : v + t;
    }
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    const int nw = blockDim.x >> 5;
    if (warp == 0) {
        v = lane < nw ? sh[lane] : (is_max ? NEG_INF : 0.0f);
        for (int o = 16; o > 0; o >>= 1) {
            const float t = __shfl_down_sync(0xffffffffu, v, o);
            v = is_max ? fmaxf(v, t) : v + t;
        }
        if (lane == 0) sh[0] = v;
    }
    __syncthreads();
    v = sh[0];
    __syncthreads();
    return v;
}

// y = softmax(x) (log_mode = 0) or log_softmax(x) (log_mode = 1) along each row.
extern "C" __global__ void softmax_forward(float* __restrict__ y, const float* __restrict__ x, int R,
                                           int C, int log_mode) {
    __shared__ float sh[32];
    for (int r = blockIdx.x; r < R; r += gridDim.x) {
        const float* xr = x + (long long)r * C;
        float* yr = y + (long long)r * C;
        float m = NEG_INF;
        for (int j = threadIdx.x; j < C; j += blockDim.x) m = fmaxf(m, xr[j]);
        m = block_reduce(m, sh, true);
        float s = 0.0f;
        for (int j = threadIdx.x; j < C; j += blockDim.x) s += expf(xr[j] - m);
        s = block_reduce(s, sh, false);
        if (log_mode) {
            const float lse = logf(s);
            for (int j = threadIdx.x; j < C; j += blockDim.x) yr[j] = xr[j] - m - lse;
        } else {
            const float inv = 1.0f / s;
            for (int j = threadIdx.x; j < C; j += blockDim.x) yr[j] = expf(xr[j] - m) * inv;
        }
    }
}

// From the forward output y: softmax: dx = y * (dy - sum(dy*y)); log_softmax: dx = dy - exp(y)*sum(dy).
extern "C" __global__ void softmax_backward(float* __restrict__ dx, const float* __restrict__ dy,
                                            const float* __restrict__ y, int R, int C, int log_mode) {
    __shared__ float sh[32];
    for (int r = blockIdx.x; r < R; r += gridDim.x) {
        const long long o = (long long)r * C;
        float s = 0.0f;
        for (int j = threadIdx.x; j < C; j += blockDim.x) s += log_mode ? dy[o + j] : dy[o + j] * y[o + j];
        s = block_reduce(s, sh, false);
        for (int j = threadIdx.x; j < C; j += blockDim.x) {
            dx[o + j] = log_mode ? dy[o + j] - expf(y[o + j]) * s : y[o + j] * (dy[o + j] - s);
        }
    }
}

// loss[r] = logsumexp(x[r,:]) - x[r, labels[r]]; rows with labels[r] < 0 get 0 (ignored).
// Labels >= C are the caller's error (checked on the host when it has the labels).
extern "C" __global__ void cross_entropy_forward(float* __restrict__ loss, const float* __restrict__ x,
                                                 const int* __restrict__ labels, int R, int C) {
    __shared__ float sh[32];
    for (int r = blockIdx.x; r < R; r += gridDim.x) {
        const float* xr = x + (long long)r * C;
        const int t = labels[r];
        float m = NEG_INF;
        for (int j = threadIdx.x; j < C; j += blockDim.x) m = fmaxf(m, xr[j]);
        m = block_reduce(m, sh, true);
        float s = 0.0f;
        for (int j = threadIdx.x; j < C; j += blockDim.x) s += expf(xr[j] - m);
        s = block_reduce(s, sh, false);
        if (threadIdx.x == 0) loss[r] = (t < 0 || t >= C) ? 0.0f : m + logf(s) - xr[t];
    }
}

// dx[r,:] = (softmax(x[r,:]) - onehot(labels[r])) * dloss[r]; ignored rows get 0.
extern "C" __global__ void cross_entropy_backward(float* __restrict__ dx, const float* __restrict__ x,
                                                  const int* __restrict__ labels,
                                                  const float* __restrict__ dloss, int R, int C) {
    __shared__ float sh[32];
    for (int r = blockIdx.x; r < R; r += gridDim.x) {
        const float* xr = x + (long long)r * C;
        float* dr = dx + (long long)r * C;
        const int t = labels[r];
        float m = NEG_INF;
        for (int j = threadIdx.x; j < C; j += blockDim.x) m = fmaxf(m, xr[j]);
        m = block_reduce(m, sh, true);
        float s = 0.0f;
        for (int j = threadIdx.x; j < C; j += blockDim.x) s += expf(xr[j] - m);
        s = block_reduce(s, sh, false);
        const float g = (t < 0 || t >= C) ? 0.0f : dloss[r];
        const float inv = 1.0f / s;
        for (int j = threadIdx.x; j < C; j += blockDim.x) {
            dr[j] = (expf(xr[j] - m) * inv - (j == t ? 1.0f : 0.0f)) * g;
        }
    }
}
