// Reductions over any set of axes of a strided f32 tensor.
// One block per output element; the block's threads stride over the reduced sub-space, then
// reduce in shared memory in a fixed order (deterministic for a given block size).

#define NEG_INF __int_as_float(0xff800000)  // -inf (no math headers under NVRTC)

#define MAX_DIMS 6

struct RedParams {
    int nkeep;
    int keep_shape[MAX_DIMS];   // shape of the kept axes (output shape, row-major)
    int keep_stride[MAX_DIMS];  // input strides of the kept axes
    int nred;
    int red_shape[MAX_DIMS];    // shape of the reduced axes
    int red_stride[MAX_DIMS];   // input strides of the reduced axes
};

#define R_SUM 0
#define R_MEAN 1
#define R_MAX 2

// out[j] = op over the reduced sub-space of in, for j < n_out. blockDim.x is a power of two
// <= 1024; dynamic shared memory = blockDim.x * (sizeof(float) + sizeof(int)).
// For R_MAX, argidx (nullable) receives the first (lowest) reduced linear index of the maximum.
extern "C" __global__ void reduce_axes(int op, float* __restrict__ out, int* __restrict__ argidx,
                                       const float* __restrict__ in, int n_out, int red_size,
                                       RedParams p) {
    extern __shared__ float smem[];
    float* sval = smem;
    int* sidx = (int*)(smem + blockDim.x);
    for (int j = blockIdx.x; j < n_out; j += gridDim.x) {
        int base = 0, rem = j;
        for (int d = p.nkeep - 1; d >= 0; --d) {
            base += (rem % p.keep_shape[d]) * p.keep_stride[d];
            rem /= p.keep_shape[d];
        }
        float acc = op == R_MAX ? NEG_INF : 0.0f;
        int best = -1;
        for (int r = threadIdx.x; r < red_size; r += blockDim.x) {
            int off = 0, rr = r;
            for (int d = p.nred - 1; d >= 0; --d) {
                off += (rr % p.red_shape[d]) * p.red_stride[d];
                rr /= p.red_shape[d];
            }
            float v = in[base + off];
            if (op == R_MAX) {
                // strict > keeps the first index on ties; a NaN wins and then sticks
                if (best < 0 || (acc == acc && (v > acc || v != v))) { acc = v; best = r; }
            } else {
                acc += v;
            }
        }
        sval[threadIdx.x] = acc;
        sidx[threadIdx.x] = best;
        __syncthreads();
        for (int s = blockDim.x / 2; s > 0; s >>= 1) {
            if (threadIdx.x < s) {
                float a = sval[threadIdx.x], b = sval[threadIdx.x + s];
                if (op == R_MAX) {
                    int ia = sidx[threadIdx.x], ib = sidx[threadIdx.x + s];
                    // take b if a is unset, or b is larger, or equal with a lower index, or b is NaN
                    bool take = ib >= 0 && (ia < 0 || (a == a && (b > a || b != b || (b == a && ib < ia))));
                    if (take) { sval[threadIdx.x] = b; sidx[threadIdx.x] = ib; }
                } else {
                    sval[threadIdx.x] = a + b;
                }
            }
            __syncthreads();
        }
        if (threadIdx.x == 0) {
            float v = sval[0];
            if (op == R_MEAN) v = v / (float)red_size;
            out[j] = v;
            if (op == R_MAX && argidx != nullptr) argidx[j] = sidx[0];
        }
        __syncthreads();
    }
}
