// Batch normalisation over (N, C, HW) f32 (HW = 1 for (N, C) inputs), per channel c over the
// M = N*HW values x[(n*C + c)*HW + p]. gamma/beta may be null (affine = false: 1 and 0).

// Sum over the block (blockDim.x a power of two <= 1024, multiple of 32). All threads get it.
__device__ float block_sum(float v, float* sh) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    const int nw = blockDim.x >> 5;
    if (warp == 0) {
        v = lane < nw ? sh[lane] : 0.0f;
        for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
        if (lane == 0) sh[0] = v;
    }
    __syncthreads();
    v = sh[0];
    __syncthreads();
    return v;
}

// Training mode: batch mean and biased variance (used to normalise); one block per channel.
// save_mean/save_invstd (C) are written for the backward pass. running_mean/running_var
// (nullable) become (1-momentum)*old + momentum*batch, with the unbiased variance.
extern "C" __global__ void bn_forward_train(float* __restrict__ y, float* __restrict__ save_mean,
                                            float* __restrict__ save_invstd,
                                            float* __restrict__ running_mean,
                                            float* __restrict__ running_var,
                                            const float* __restrict__ x, const float* __restrict__ gamma,
                                            const float* __restrict__ beta, int N, int C, int HW,
                                            float eps, float momentum) {
    __shared__ float sh[32];
    const int c = blockIdx.x;
    const long long M = (long long)N * HW;
    float s = 0.0f;
    for (long long i = threadIdx.x; i < M; i += blockDim.x) {
        const long long n = i / HW, p = i % HW;
        s += x[(n * C + c) * HW + p];
    }
    const float mean = block_sum(s, sh) / (float)M;
    float q = 0.0f;
    for (long long i = threadIdx.x; i < M; i += blockDim.x) {
        const long long n = i / HW, p = i % HW;
        const float d = x[(n * C + c) * HW + p] - mean;
        q = fmaf(d, d, q);
    }
    const float var = block_sum(q, sh) / (float)M;
    const float invstd = 1.0f / sqrtf(var + eps);
    const float g = gamma ? gamma[c] : 1.0f;
    const float b = beta ? beta[c] : 0.0f;
    for (long long i = threadIdx.x; i < M; i += blockDim.x) {
        const long long n = i / HW, p = i % HW;
        const long long o = (n * C + c) * HW + p;
        y[o] = (x[o] - mean) * invstd * g + b;
    }
    if (threadIdx.x == 0) {
        save_mean[c] = mean;
        save_invstd[c] = invstd;
        if (running_mean) running_mean[c] = (1.0f - momentum) * running_mean[c] + momentum * mean;
        if (running_var) {
            const float unbiased = M > 1 ? var * (float)M / (float)(M - 1) : var;
            running_var[c] = (1.0f - momentum) * running_var[c] + momentum * unbiased;
        }
    }
}

// Evaluation mode: y = (x - running_mean) / sqrt(running_var + eps) * gamma + beta.
extern "C" __global__ void bn_forward_eval(float* __restrict__ y, const float* __restrict__ x,
                                           const float* __restrict__ running_mean,
                                           const float* __restrict__ running_var,
                                           const float* __restrict__ gamma,
                                           const float* __restrict__ beta, int N, int C, int HW,
                                           float eps) {
    const long long total = (long long)N * C * HW;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        const int c = (int)((i / HW) % C);
        const float g = gamma ? gamma[c] : 1.0f;
        const float b = beta ? beta[c] : 0.0f;
        y[i] = (x[i] - running_mean[c]) / sqrtf(running_var[c] + eps) * g + b;
    }
}

// Training-mode backward; one block per channel. dgamma/dbeta nullable (not written).
// dx = gamma*invstd * (dy - mean(dy) - xhat * mean(dy*xhat)).
extern "C" __global__ void bn_backward(float* __restrict__ dx, float* __restrict__ dgamma,
                                       float* __restrict__ dbeta, const float* __restrict__ dy,
                                       const float* __restrict__ x, const float* __restrict__ save_mean,
                                       const float* __restrict__ save_invstd,
                                       const float* __restrict__ gamma, int N, int C, int HW) {
    __shared__ float sh[32];
    const int c = blockIdx.x;
    const long long M = (long long)N * HW;
    const float mean = save_mean[c], invstd = save_invstd[c];
    float sdy = 0.0f, sdyx = 0.0f;
    for (long long i = threadIdx.x; i < M; i += blockDim.x) {
        const long long n = i / HW, p = i % HW;
        const long long o = (n * C + c) * HW + p;
        const float g = dy[o];
        sdy += g;
        sdyx = fmaf(g, (x[o] - mean) * invstd, sdyx);
    }
    sdy = block_sum(sdy, sh);
    sdyx = block_sum(sdyx, sh);
    const float gm = gamma ? gamma[c] : 1.0f;
    const float k = gm * invstd;
    const float mdy = sdy / (float)M, mdyx = sdyx / (float)M;
    for (long long i = threadIdx.x; i < M; i += blockDim.x) {
        const long long n = i / HW, p = i % HW;
        const long long o = (n * C + c) * HW + p;
        const float xhat = (x[o] - mean) * invstd;
        dx[o] = k * (dy[o] - mdy - xhat * mdyx);
    }
    if (threadIdx.x == 0) {
        if (dgamma) dgamma[c] = sdyx;
        if (dbeta) dbeta[c] = sdy;
    }
}
