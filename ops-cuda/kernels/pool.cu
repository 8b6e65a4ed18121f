// Pooling, NCHW f32 with N*C planes flattened to NC. Window KH x KW, stride sh/sw, zero-size
// padding ph/pw (never counted), no dilation, floor mode: OH = (H + 2*ph - KH) / sh + 1.

#define NEG_INF __int_as_float(0xff800000)  // -inf (no math headers under NVRTC)

// out (NC, OH, OW); argmax (NC, OH, OW) = ih*W + iw of the first maximum in the window
// (-1 when the window holds no input pixel).
extern "C" __global__ void maxpool2d_forward(float* __restrict__ out, int* __restrict__ argmax,
                                             const float* __restrict__ x, int NC, int H, int W,
                                             int KH, int KW, int sh, int sw, int ph, int pw, int OH,
                                             int OW) {
    const long long total = (long long)NC * OH * OW;
    for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x; idx < total;
         idx += (long long)gridDim.x * blockDim.x) {
        const int ow = (int)(idx % OW), oh = (int)((idx / OW) % OH);
        const long long nc = idx / ((long long)OW * OH);
        const float* xp = x + nc * H * W;
        float best = NEG_INF;
        int bi = -1;
        for (int kh = 0; kh < KH; ++kh) {
            const int ih = oh * sh - ph + kh;
            if (ih < 0 || ih >= H) continue;
            for (int kw = 0; kw < KW; ++kw) {
                const int iw = ow * sw - pw + kw;
                if (iw < 0 || iw >= W) continue;
                const float v = xp[ih * W + iw];
                // strict > keeps the first maximum; a NaN wins and then sticks
                if (bi < 0 || (best == best && (v > best || v != v))) { best = v; bi = ih * W + iw; }
            }
        }
        out[idx] = bi < 0 ? 0.0f : best;
        argmax[idx] = bi;
    }
}

// dx (NC, H, W) overwritten: each input pixel gathers dy from the windows whose argmax it is.
extern "C" __global__ void maxpool2d_backward(float* __restrict__ dx, const float* __restrict__ dy,
                                              const int* __restrict__ argmax, int NC, int H, int W,
                                              int KH, int KW, int sh, int sw, int ph, int pw, int OH,
                                              int OW) {
    const long long total = (long long)NC * H * W;
    for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x; idx < total;
         idx += (long long)gridDim.x * blockDim.x) {
        const int w = (int)(idx % W), h = (int)((idx / W) % H);
        const long long nc = idx / ((long long)W * H);
        const int a = h + ph - KH + 1, b = w + pw - KW + 1;
        const int oh0 = a <= 0 ? 0 : (a + sh - 1) / sh;
        const int ow0 = b <= 0 ? 0 : (b + sw - 1) / sw;
        const int oh1 = min(OH - 1, (h + ph) / sh);
        const int ow1 = min(OW - 1, (w + pw) / sw);
        const int me = h * W + w;
        float s = 0.0f;
        for (int oh = oh0; oh <= oh1; ++oh)
            for (int ow = ow0; ow <= ow1; ++ow) {
                const long long o = (nc * OH + oh) * OW + ow;
                if (argmax[o] == me) s += dy[o];
            }
        dx[idx] = s;
    }
}

__device__ __forceinline__ int window_count(int oh, int ow, int H, int W, int KH, int KW, int sh,
                                            int sw, int ph, int pw) {
    const int h0 = max(oh * sh - ph, 0), h1 = min(oh * sh - ph + KH, H);
    const int w0 = max(ow * sw - pw, 0), w1 = min(ow * sw - pw + KW, W);
    return max(h1 - h0, 0) * max(w1 - w0, 0);
}

// Average over the window's input pixels only (padding excluded from the divisor).
extern "C" __global__ void avgpool2d_forward(float* __restrict__ out, const float* __restrict__ x,
                                             int NC, int H, int W, int KH, int KW, int sh, int sw,
                                             int ph, int pw, int OH, int OW) {
    const long long total = (long long)NC * OH * OW;
    for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x; idx < total;
         idx += (long long)gridDim.x * blockDim.x) {
        const int ow = (int)(idx % OW), oh = (int)((idx / OW) % OH);
        const long long nc = idx / ((long long)OW * OH);
        const float* xp = x + nc * H * W;
        float s = 0.0f;
        for (int kh = 0; kh < KH; ++kh) {
            const int ih = oh * sh - ph + kh;
            if (ih < 0 || ih >= H) continue;
            for (int kw = 0; kw < KW; ++kw) {
                const int iw = ow * sw - pw + kw;
                if (iw < 0 || iw >= W) continue;
                s += xp[ih * W + iw];
            }
        }
        const int cnt = window_count(oh, ow, H, W, KH, KW, sh, sw, ph, pw);
        out[idx] = cnt > 0 ? s / (float)cnt : 0.0f;
    }
}

extern "C" __global__ void avgpool2d_backward(float* __restrict__ dx, const float* __restrict__ dy,
                                              int NC, int H, int W, int KH, int KW, int sh, int sw,
                                              int ph, int pw, int OH, int OW) {
    const long long total = (long long)NC * H * W;
    for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x; idx < total;
         idx += (long long)gridDim.x * blockDim.x) {
        const int w = (int)(idx % W), h = (int)((idx / W) % H);
        const long long nc = idx / ((long long)W * H);
        const int a = h + ph - KH + 1, b = w + pw - KW + 1;
        const int oh0 = a <= 0 ? 0 : (a + sh - 1) / sh;
        const int ow0 = b <= 0 ? 0 : (b + sw - 1) / sw;
        const int oh1 = min(OH - 1, (h + ph) / sh);
        const int ow1 = min(OW - 1, (w + pw) / sw);
        float s = 0.0f;
        for (int oh = oh0; oh <= oh1; ++oh)
            for (int ow = ow0; ow <= ow1; ++ow) {
                const int cnt = window_count(oh, ow, H, W, KH, KW, sh, sw, ph, pw);
                s += dy[(nc * OH + oh) * OW + ow] / (float)cnt;
            }
        dx[idx] = s;
    }
}

// Global average pool backward: dx (NC, HW) = dy (NC) / HW.
extern "C" __global__ void global_avgpool_backward(float* __restrict__ dx, const float* __restrict__ dy,
                                                   int NC, int HW) {
    const long long total = (long long)NC * HW;
    const float inv = 1.0f / (float)HW;
    for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x; idx < total;
         idx += (long long)gridDim.x * blockDim.x) {
        dx[idx] = dy[idx / HW] * inv;
    }
}
