// LSTM cell gate math. gates (B, 4H) are pre-activations in the order i, f, g, o:
//   i = sigmoid(gi), f = sigmoid(gf), g = tanh(gg), o = sigmoid(go)
//   c = f * c_prev + i * g,  h = o * tanh(c)
// act (B, 4H) saves the activated gates for the backward pass.

__device__ __forceinline__ float sigm(float x) {
    if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
    const float e = expf(x);
    return e / (1.0f + e);
}

extern "C" __global__ void lstm_cell_forward(float* __restrict__ h, float* __restrict__ c,
                                             float* __restrict__ act, const float* __restrict__ gates,
                                             const float* __restrict__ c_prev, int B, int H) {
    const long long total = (long long)B * H;
    for (long long t = blockIdx.x * (long long)blockDim.x + threadIdx.x; t < total;
         t += (long long)gridDim.x * blockDim.x) {
        const long long b = t / H, j = t % H;
        const long long g0 = b * 4 * H + j;
        const float i = sigm(gates[g0]);
        const float f = sigm(gates[g0 + H]);
        const float g = tanhf(gates[g0 + 2 * H]);
        const float o = sigm(gates[g0 + 3 * H]);
        const float cn = f * c_prev[t] + i * g;
        c[t] = cn;
        h[t] = o * tanhf(cn);
        act[g0] = i;
        act[g0 + H] = f;
        act[g0 + 2 * H] = g;
        act[g0 + 3 * H] = o;
    }
}

// dgates (B, 4H) = d(pre-activations); dc_prev (B, H). dh is the gradient on h, dc_next
// (nullable) the gradient arriving on c from the next step.
extern "C" __global__ void lstm_cell_backward(float* __restrict__ dgates, float* __restrict__ dc_prev,
                                              const float* __restrict__ dh,
                                              const float* __restrict__ dc_next,
                                              const float* __restrict__ act, const float* __restrict__ c,
                                              const float* __restrict__ c_prev, int B, int H) {
    const long long total = (long long)B * H;
    for (long long t = blockIdx.x * (long long)blockDim.x + threadIdx.x; t < total;
         t += (long long)gridDim.x * blockDim.x) {
        const long long b = t / H, j = t % H;
        const long long g0 = b * 4 * H + j;
        const float i = act[g0], f = act[g0 + H], g = act[g0 + 2 * H], o = act[g0 + 3 * H];
        const float tc = tanhf(c[t]);
        const float dht = dh[t];
        const float dc = (dc_next ? dc_next[t] : 0.0f) + dht * o * (1.0f - tc * tc);
        dgates[g0] = dc * g * i * (1.0f - i);
        dgates[g0 + H] = dc * c_prev[t] * f * (1.0f - f);
        dgates[g0 + 2 * H] = dc * i * (1.0f - g * g);
        dgates[g0 + 3 * H] = dht * tc * o * (1.0f - o);
        dc_prev[t] = dc * f;
    }
}
