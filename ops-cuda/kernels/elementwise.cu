// Elementwise kernels (f32). Layout: every output is contiguous (row-major); inputs are read
// through per-dimension element strides in the output's index space (stride 0 = broadcast).
// Sizes are int (the Rust wrappers check that they fit); pointers are 64-bit.

#define MAX_DIMS 6

struct Strides2 {
    int ndim;
    int shape[MAX_DIMS];  // output shape
    int sa[MAX_DIMS];     // strides of input a (elements), 0 where broadcast
    int sb[MAX_DIMS];     // strides of input b (elements), 0 where broadcast
};

// Binary op codes (keep in sync with src/kernels/elementwise.rs BinaryOp).
#define OP_ADD 0
#define OP_SUB 1
#define OP_MUL 2
#define OP_DIV 3
#define OP_MAX 4
#define OP_MIN 5
#define OP_GE 6   // 1.0 where a >= b else 0.0
#define OP_GT 7
#define OP_EQ 8
#define OP_POW 9  // powf(a, b)

__device__ __forceinline__ float binary_apply(int op, float a, float b) {
    switch (op) {
        case OP_ADD: return a + b;
        case OP_SUB: return a - b;
        case OP_MUL: return a * b;
        case OP_DIV: return a / b;
        case OP_MAX: return (a != a || a >= b) ? a : b;  // NaN propagates from a
        case OP_MIN: return (a != a || a <= b) ? a : b;
        case OP_GE: return a >= b ? 1.0f : 0.0f;
        case OP_GT: return a > b ? 1.0f : 0.0f;
        case OP_EQ: return a == b ? 1.0f : 0.0f;
        case OP_POW: return powf(a, b);
        default: return __int_as_float(0x7fc00000);
    }
}

// out[i] = a[i] op b[i], all contiguous and of length n.
extern "C" __global__ void binary_same(int op, float* __restrict__ out, const float* __restrict__ a,
                                       const float* __restrict__ b, int n) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        out[i] = binary_apply(op, a[i], b[i]);
    }
}

// out (contiguous, shape p.shape) = a op b, with a and b read through p.sa / p.sb.
extern "C" __global__ void binary_bcast(int op, float* __restrict__ out, const float* __restrict__ a,
                                        const float* __restrict__ b, int n, Strides2 p) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        int rem = i, ia = 0, ib = 0;
        for (int d = p.ndim - 1; d >= 0; --d) {
            int idx = rem % p.shape[d];
            rem /= p.shape[d];
            ia += idx * p.sa[d];
            ib += idx * p.sb[d];
        }
        out[i] = binary_apply(op, a[ia], b[ib]);
    }
}

// out (contiguous, shape p.shape) = a read through strides p.sa (permute, expand, slice).
extern "C" __global__ void strided_copy(float* __restrict__ out, const float* __restrict__ a, int n,
                                        Strides2 p) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        int rem = i, ia = 0;
        for (int d = p.ndim - 1; d >= 0; --d) {
            int idx = rem % p.shape[d];
            rem /= p.shape[d];
            ia += idx * p.sa[d];
        }
        out[i] = a[ia];
    }
}

// Unary op codes (keep in sync with src/kernels/elementwise.rs UnaryOp).
#define U_NEG 0
#define U_EXP 1
#define U_LOG 2
#define U_SQRT 3
#define U_TANH 4
#define U_SIGMOID 5
#define U_RELU 6
#define U_ABS 7
#define U_CLAMP 8    // clamp(x, p0, p1)
#define U_POWF 9     // x^p0
#define U_ADD_S 10   // x + p0
#define U_MUL_S 11   // x * p0
#define U_SQUARE 12
#define U_RECIP 13

__device__ __forceinline__ float sigmoidf_(float x) {
    // stable for large |x|
    if (x >= 0.0f) {
        return 1.0f / (1.0f + expf(-x));
    }
    float e = expf(x);
    return e / (1.0f + e);
}

__device__ __forceinline__ float unary_apply(int op, float x, float p0, float p1) {
    switch (op) {
        case U_NEG: return -x;
        case U_EXP: return expf(x);
        case U_LOG: return logf(x);
        case U_SQRT: return sqrtf(x);
        case U_TANH: return tanhf(x);
        case U_SIGMOID: return sigmoidf_(x);
        case U_RELU: return x > 0.0f ? x : 0.0f;
        case U_ABS: return fabsf(x);
        case U_CLAMP: return fminf(fmaxf(x, p0), p1);
        case U_POWF: return powf(x, p0);
        case U_ADD_S: return x + p0;
        case U_MUL_S: return x * p0;
        case U_SQUARE: return x * x;
        case U_RECIP: return 1.0f / x;
        default: return __int_as_float(0x7fc00000);
    }
}

// dx from dy, the input x and the forward output y.
__device__ __forceinline__ float unary_grad(int op, float dy, float x, float y, float p0, float p1) {
    switch (op) {
        case U_NEG: return -dy;
        case U_EXP: return dy * y;
        case U_LOG: return dy / x;
        case U_SQRT: return dy * 0.5f / y;
        case U_TANH: return dy * (1.0f - y * y);
        case U_SIGMOID: return dy * y * (1.0f - y);
        case U_RELU: return x > 0.0f ? dy : 0.0f;
        case U_ABS: return x > 0.0f ? dy : (x < 0.0f ? -dy : 0.0f);
        case U_CLAMP: return (x >= p0 && x <= p1) ? dy : 0.0f;
        case U_POWF: return dy * p0 * powf(x, p0 - 1.0f);
        case U_ADD_S: return dy;
        case U_MUL_S: return dy * p0;
        case U_SQUARE: return dy * 2.0f * x;
        case U_RECIP: return -dy * y * y;
        default: return __int_as_float(0x7fc00000);
    }
}

extern "C" __global__ void unary_forward(int op, float* __restrict__ out, const float* __restrict__ x,
                                         int n, float p0, float p1) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        out[i] = unary_apply(op, x[i], p0, p1);
    }
}

extern "C" __global__ void unary_backward(int op, float* __restrict__ dx, const float* __restrict__ dy,
                                          const float* __restrict__ x, const float* __restrict__ y,
                                          int n, float p0, float p1) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        dx[i] = unary_grad(op, dy[i], x[i], y[i], p0, p1);
    }
}

// out[i] = alpha * x[i] + beta * out[i]  (accumulate gradients, SGD steps).
extern "C" __global__ void axpby(float* __restrict__ out, const float* __restrict__ x, int n, float alpha,
                                 float beta) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        out[i] = beta == 0.0f ? alpha * x[i] : alpha * x[i] + beta * out[i];
    }
}
