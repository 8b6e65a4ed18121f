// Convolution helpers, NCHW f32. Output size: OH = (H + 2*ph - dh*(KH-1) - 1) / sh + 1.
// im2col layout: col is (C*KH*KW) rows x (nb*OH*OW) columns, row r = (c*KH + kh)*KW + kw,
// column q = n*OH*OW + oh*OW + ow, for a chunk of nb images starting at x.

extern "C" __global__ void im2col(const float* __restrict__ x, float* __restrict__ col, int nb, int C,
                                  int H, int W, int KH, int KW, int sh, int sw, int ph, int pw,
                                  int dh, int dw, int OH, int OW) {
    const long long ohw = (long long)OH * OW;
    const long long ncols = nb * ohw;
    const long long total = (long long)C * KH * KW * ncols;
    for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x; idx < total;
         idx += (long long)gridDim.x * blockDim.x) {
        const long long r = idx / ncols, q = idx % ncols;
        const int n = (int)(q / ohw);
        const int p = (int)(q % ohw);
        const int oh = p / OW, ow = p % OW;
        const int kw = (int)(r % KW), kh = (int)((r / KW) % KH), c = (int)(r / ((long long)KW * KH));
        const int ih = oh * sh - ph + kh * dh, iw = ow * sw - pw + kw * dw;
        float v = 0.0f;
        if (ih >= 0 && ih < H && iw >= 0 && iw < W) v = x[(((long long)n * C + c) * H + ih) * W + iw];
        col[idx] = v;
    }
}

// Inverse of im2col (sums overlapping patches): dx (nb, C, H, W) is overwritten. Gather form,
// deterministic, no atomics.
extern "C" __global__ void col2im(const float* __restrict__ col, float* __restrict__ dx, int nb, int C,
                                  int H, int W, int KH, int KW, int sh, int sw, int ph, int pw,
                                  int dh, int dw, int OH, int OW) {
    const long long ohw = (long long)OH * OW;
    const long long ncols = nb * ohw;
    const long long total = (long long)nb * C * H * W;
    for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x; idx < total;
         idx += (long long)gridDim.x * blockDim.x) {
        const int w = (int)(idx % W), h = (int)((idx / W) % H);
        const int c = (int)((idx / ((long long)W * H)) % C), n = (int)(idx / ((long long)W * H * C));
        float s = 0.0f;
        for (int kh = 0; kh < KH; ++kh) {
            const int a = h + ph - kh * dh;
            if (a < 0 || a % sh != 0) continue;
            const int oh = a / sh;
            if (oh >= OH) continue;
            for (int kw = 0; kw < KW; ++kw) {
                const int b = w + pw - kw * dw;
                if (b < 0 || b % sw != 0) continue;
                const int ow = b / sw;
                if (ow >= OW) continue;
                const long long r = ((long long)c * KH + kh) * KW + kw;
                s += col[r * ncols + n * ohw + (long long)oh * OW + ow];
            }
        }
        dx[idx] = s;
    }
}

// Depthwise convolution: groups = C, weight (C*M, 1, KH, KW), out (N, C*M, OH, OW); output
// channel co reads input channel co / M.
extern "C" __global__ void dw_conv_forward(float* __restrict__ out, const float* __restrict__ x,
                                           const float* __restrict__ w, int N, int C, int H, int W,
                                           int M, int KH, int KW, int sh, int sw, int ph, int pw,
                                           int dh, int dw, int OH, int OW) {
    const int CO = C * M;
    const long long total = (long long)N * CO * OH * OW;
    for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x; idx < total;
         idx += (long long)gridDim.x * blockDim.x) {
        const int ow = (int)(idx % OW), oh = (int)((idx / OW) % OH);
        const int co = (int)((idx / ((long long)OW * OH)) % CO), n = (int)(idx / ((long long)OW * OH * CO));
        const int ci = co / M;
        const float* xp = x + ((long long)n * C + ci) * H * W;
        const float* wp = w + (long long)co * KH * KW;
        float s = 0.0f;
        for (int kh = 0; kh < KH; ++kh) {
            const int ih = oh * sh - ph + kh * dh;
            if (ih < 0 || ih >= H) continue;
            for (int kw = 0; kw < KW; ++kw) {
                const int iw = ow * sw - pw + kw * dw;
                if (iw < 0 || iw >= W) continue;
                s = fmaf(xp[ih * W + iw], wp[kh * KW + kw], s);
            }
        }
        out[idx] = s;
    }
}

// dx (N, C, H, W), overwritten; gather over the outputs that read each input pixel.
extern "C" __global__ void dw_conv_backward_input(float* __restrict__ dx, const float* __restrict__ dy,
                                                  const float* __restrict__ w, int N, int C, int H,
                                                  int W, int M, int KH, int KW, int sh, int sw,
                                                  int ph, int pw, int dh, int dw, int OH, int OW) {
    const int CO = C * M;
    const long long total = (long long)N * C * H * W;
    for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x; idx < total;
         idx += (long long)gridDim.x * blockDim.x) {
        const int iw = (int)(idx % W), ih = (int)((idx / W) % H);
        const int ci = (int)((idx / ((long long)W * H)) % C), n = (int)(idx / ((long long)W * H * C));
        float s = 0.0f;
        for (int m = 0; m < M; ++m) {
            const int co = ci * M + m;
            const float* dyp = dy + ((long long)n * CO + co) * OH * OW;
            const float* wp = w + (long long)co * KH * KW;
            for (int kh = 0; kh < KH; ++kh) {
                const int a = ih + ph - kh * dh;
                if (a < 0 || a % sh != 0) continue;
                const int oh = a / sh;
                if (oh >= OH) continue;
                for (int kw = 0; kw < KW; ++kw) {
                    const int b = iw + pw - kw * dw;
                    if (b < 0 || b % sw != 0) continue;
                    const int ow = b / sw;
                    if (ow >= OW) continue;
                    s = fmaf(dyp[oh * OW + ow], wp[kh * KW + kw], s);
                }
            }
        }
        dx[idx] = s;
    }
}

// dw (C*M, 1, KH, KW), overwritten. One block per weight element; its threads stride over
// N*OH*OW and reduce in shared memory (blockDim.x = 256, a power of two).
extern "C" __global__ void dw_conv_backward_weight(float* __restrict__ dwt, const float* __restrict__ dy,
                                                   const float* __restrict__ x, int N, int C, int H,
                                                   int W, int M, int KH, int KW, int sh, int sw,
                                                   int ph, int pw, int dh, int dw, int OH, int OW) {
    __shared__ float red[256];
    const int CO = C * M;
    const int nw = CO * KH * KW;
    for (int widx = blockIdx.x; widx < nw; widx += gridDim.x) {
        const int kw = widx % KW, kh = (widx / KW) % KH, co = widx / (KW * KH);
        const int ci = co / M;
        const int ohw = OH * OW;
        const long long total = (long long)N * ohw;
        float s = 0.0f;
        for (long long t = threadIdx.x; t < total; t += blockDim.x) {
            const int n = (int)(t / ohw), p = (int)(t % ohw);
            const int oh = p / OW, ow = p % OW;
            const int ih = oh * sh - ph + kh * dh, iw = ow * sw - pw + kw * dw;
            if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
            s = fmaf(dy[((long long)n * CO + co) * ohw + p], x[(((long long)n * C + ci) * H + ih) * W + iw], s);
        }
        red[threadIdx.x] = s;
        __syncthreads();
        for (int k = blockDim.x / 2; k > 0; k >>= 1) {
            if (threadIdx.x < k) red[threadIdx.x] += red[threadIdx.x + k];
            __syncthreads();
        }
        if (threadIdx.x == 0) dwt[widx] = red[0];
        __syncthreads();
    }
}
