// fp8q's GPU kernels, shipped as PTX (verifier/src/main/resources/dev/fp8q/verifier/cuda/fp8q.ptx) and loaded
// through the JCuda driver API. Regenerate with verifier/src/main/cuda/build-ptx.sh; a test checks the PTX
// was made from this file. Matrices are row-major; every GEMM is C = A · Bᵀ with A [M, K] and B [N, K]
// (a Linear: B is its weight), then the epilogue: C = acc * alpha * (*aScale) * colScale[n] + bias[n].
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <stdint.h>

// ---------------------------------------------------------------- elementwise: amax, quantize, widen

// |x| max as float bits: non-negative floats order like their bits, so an integer atomicMax works (NaN wins).
extern "C" __global__ void amax_f32(const float* __restrict__ x, long long n, unsigned int* __restrict__ out) {
    unsigned int m = 0;
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        m = max(m, __float_as_uint(x[i]) & 0x7fffffffu);
    }
    for (int o = 16; o > 0; o >>= 1) {
        m = max(m, __shfl_xor_sync(0xffffffffu, m, o));
    }
    if ((threadIdx.x & 31) == 0) {
        atomicMax(out, m);
    }
}

// TE's current scaling: amax / 448 in float32 (IEEE division), 1.0 when everything is zero.
extern "C" __global__ void scale_from_amax(const unsigned int* __restrict__ amax, float* __restrict__ scale) {
    float a = __uint_as_float(*amax);
    *scale = a > 0.0f ? a / 448.0f : 1.0f;
}

// E4M3 codes of x / scale: cvt.rn.satfinite, the exact clamp-then-round-to-nearest-even of NUMERICS.md.
extern "C" __global__ void quantize_f32_e4m3(const float* __restrict__ x, long long n, const float* __restrict__ scale,
        uint8_t* __restrict__ out) {
    float s = *scale;
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        out[i] = (uint8_t) __nv_cvt_float_to_fp8(x[i] / s, __NV_SATFINITE, __NV_E4M3);
    }
}

extern "C" __global__ void f32_to_bf16(const float* __restrict__ x, long long n, __nv_bfloat16* __restrict__ out) {
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        out[i] = __float2bfloat16_rn(x[i]);
    }
}

__device__ __forceinline__ float e4m3_value(uint8_t code) {
    __half_raw h = __nv_cvt_fp8_to_halfraw((__nv_fp8_storage_t) code, __NV_E4M3);
    return __half2float(__half(h));
}

// E4M3 codes widened to BF16: exact (every E4M3 value is a BF16 value); the scale goes in the GEMM epilogue.
extern "C" __global__ void e4m3_to_bf16(const uint8_t* __restrict__ x, long long n, __nv_bfloat16* __restrict__ out) {
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        out[i] = __float2bfloat16_rn(e4m3_value(x[i]));
    }
}

// Dequantize [rows, cols] codes: value * scale, the scale per tensor (rowScale 0), or one per row (rowScale 1).
extern "C" __global__ void e4m3_to_f32(const uint8_t* __restrict__ x, long long n, long long cols,
        const float* __restrict__ scale, int rowScale, float* __restrict__ out) {
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        out[i] = e4m3_value(x[i]) * scale[rowScale ? i / cols : 0];
    }
}

// ---------------------------------------------------------------- tensor-core GEMM (mma.sync)

// A CTA computes a 128 x 128 tile of C with 8 warps (2 along M x 4 along N, 64 x 32 each). K advances 64 bytes
// at a time (32 BF16 or 64 E4M3 values) through a 3-stage cp.async pipeline; in shared memory each tile row
// is 64 bytes whose four 16-byte chunks are XOR-swizzled by (row / 2) % 4, so ldmatrix reads are conflict-free.
// In bytes, m16n8k16.bf16 and m16n8k32.e4m3 fragments have the same layout, so one body serves both.
#define TC_BM 128
#define TC_BN 128
#define TC_BK 64
#define TC_STAGES 3

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
    return (uint32_t) __cvta_generic_to_shared(p);
}

__device__ __forceinline__ int swizzle(int row, int chunk) {
    return row * TC_BK + ((chunk ^ ((row >> 1) & 3)) << 4);
}

// rows x 64-byte tile from a row-major matrix with ld bytes between rows; out-of-range chunks are zero-filled.
__device__ __forceinline__ void load_tile(uint8_t* s, const uint8_t* g, long long ld, int row0, int rows, int k0,
        int kBytes) {
    for (int i = 0; i < 2; i++) {
        int idx = threadIdx.x + i * 256;
        int r = idx >> 2;
        int c = idx & 3;
        int k = k0 + c * 16;
        bool ok = row0 + r < rows && k < kBytes;
        const uint8_t* src = ok ? g + (row0 + r) * ld + k : g;
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(s + swizzle(r, c))),
                "l"(src), "r"(ok ? 16 : 0));
    }
}

template <bool FP8>
__device__ __forceinline__ void mma(float* c, const uint32_t* a, const uint32_t* b) {
    if (FP8) {
        asm volatile("mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                     "{%0,%1,%2,%3};\n"
                : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
    } else {
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                     "{%0,%1,%2,%3};\n"
                : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
    }
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t* r, const uint8_t* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
            : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
            : "r"(smem_addr(p)));
}

__device__ __forceinline__ float epilogue(float acc, int n, float alpha, const float* aScale, const float* colScale,
        const float* bias) {
    float v = acc * alpha;
    if (aScale) v *= *aScale;
    if (colScale) v *= colScale[n];
    if (bias) v += bias[n];
    return v;
}

// kBytes: K times the element size, a multiple of 16 (rows start 16-byte aligned).
template <bool FP8>
__device__ void gemm_tc(const uint8_t* __restrict__ A, const uint8_t* __restrict__ B, float* __restrict__ C, int M,
        int N, int kBytes, float alpha, const float* aScale, const float* colScale, const float* bias) {
    __shared__ __align__(128) uint8_t sA[TC_STAGES][TC_BM * TC_BK];
    __shared__ __align__(128) uint8_t sB[TC_STAGES][TC_BN * TC_BK];
    int lane = threadIdx.x & 31;
    int warp = threadIdx.x >> 5;
    int wm = (warp >> 2) * 64;
    int wn = (warp & 3) * 32;
    int m0 = blockIdx.y * TC_BM;
    int n0 = blockIdx.x * TC_BN;
    int tiles = (kBytes + TC_BK - 1) / TC_BK;

    float acc[4][4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[i][j][e] = 0.0f;

#pragma unroll
    for (int s = 0; s < TC_STAGES - 1; s++) {
        if (s < tiles) {
            load_tile(sA[s], A, kBytes, m0, M, s * TC_BK, kBytes);
            load_tile(sB[s], B, kBytes, n0, N, s * TC_BK, kBytes);
        }
        asm volatile("cp.async.commit_group;\n" ::);
    }

    for (int t = 0; t < tiles; t++) {
        asm volatile("cp.async.wait_group %0;\n" ::"n"(TC_STAGES - 2));
        __syncthreads();
        int next = t + TC_STAGES - 1;
        if (next < tiles) {
            load_tile(sA[next % TC_STAGES], A, kBytes, m0, M, next * TC_BK, kBytes);
            load_tile(sB[next % TC_STAGES], B, kBytes, n0, N, next * TC_BK, kBytes);
        }
        asm volatile("cp.async.commit_group;\n" ::);
        const uint8_t* a = sA[t % TC_STAGES];
        const uint8_t* b = sB[t % TC_STAGES];
#pragma unroll
        for (int ks = 0; ks < 2; ks++) {
            uint32_t af[4][4];
            uint32_t bf[4][2];
#pragma unroll
            for (int mi = 0; mi < 4; mi++) {
                int row = wm + mi * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
                ldmatrix_x4(af[mi], a + swizzle(row, ks * 2 + (lane >> 4)));
            }
#pragma unroll
            for (int nj = 0; nj < 2; nj++) {
                int row = wn + nj * 16 + (lane & 7) + ((lane >> 4) & 1) * 8;
                uint32_t r[4];
                ldmatrix_x4(r, b + swizzle(row, ks * 2 + ((lane >> 3) & 1)));
                bf[nj * 2][0] = r[0];
                bf[nj * 2][1] = r[1];
                bf[nj * 2 + 1][0] = r[2];
                bf[nj * 2 + 1][1] = r[3];
            }
#pragma unroll
            for (int mi = 0; mi < 4; mi++)
#pragma unroll
                for (int ni = 0; ni < 4; ni++) mma<FP8>(acc[mi][ni], af[mi], bf[ni]);
        }
    }
    asm volatile("cp.async.wait_group 0;\n" ::);

    int g = lane >> 2;
    int tig = lane & 3;
#pragma unroll
    for (int mi = 0; mi < 4; mi++) {
#pragma unroll
        for (int ni = 0; ni < 4; ni++) {
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int m = m0 + wm + mi * 16 + g + (e >> 1) * 8;
                int n = n0 + wn + ni * 8 + tig * 2 + (e & 1);
                if (m < M && n < N) {
                    C[(long long) m * N + n] = epilogue(acc[mi][ni][e], n, alpha, aScale, colScale, bias);
                }
            }
        }
    }
}

extern "C" __global__ void __launch_bounds__(256, 2) gemm_bf16_tc(const uint8_t* A, const uint8_t* B, float* C,
        int M, int N, int K, float alpha, const float* aScale, const float* colScale, const float* bias) {
    gemm_tc<false>(A, B, C, M, N, K * 2, alpha, aScale, colScale, bias);
}

extern "C" __global__ void __launch_bounds__(256, 2) gemm_e4m3_tc(const uint8_t* A, const uint8_t* B, float* C,
        int M, int N, int K, float alpha, const float* aScale, const float* colScale, const float* bias) {
    gemm_tc<true>(A, B, C, M, N, K, alpha, aScale, colScale, bias);
}

// ---------------------------------------------------------------- float32 GEMM (CUDA cores)

// The exact float32 simulation of W8A8 (dequantized operands) and attention's products. 64 x 64 tiles,
// 256 threads with 4 x 4 outputs each; transB: B is [N, K] (C = A Bᵀ), else [K, N] (C = A B).
// Batched over blockIdx.z with element strides sA, sB, sC (attention heads).
extern "C" __global__ void __launch_bounds__(256) gemm_f32(const float* __restrict__ A, int lda, long long sA,
        const float* __restrict__ B, int ldb, long long sB, int transB, float* __restrict__ C, int ldc, long long sC,
        int M, int N, int K, float alpha, const float* aScale, const float* colScale, const float* bias) {
    __shared__ float As[16][64 + 4];
    __shared__ float Bs[16][64 + 4];
    A += blockIdx.z * sA;
    B += blockIdx.z * sB;
    C += blockIdx.z * sC;
    int tx = threadIdx.x & 15;
    int ty = threadIdx.x >> 4;
    int m0 = blockIdx.y * 64;
    int n0 = blockIdx.x * 64;
    float acc[4][4] = {};
    for (int k0 = 0; k0 < K; k0 += 16) {
        for (int i = 0; i < 4; i++) {
            int idx = threadIdx.x + i * 256;
            int r = idx >> 4;
            int k = idx & 15;
            As[k][r] = (m0 + r < M && k0 + k < K) ? A[(long long) (m0 + r) * lda + k0 + k] : 0.0f;
            if (transB) {
                Bs[k][r] = (n0 + r < N && k0 + k < K) ? B[(long long) (n0 + r) * ldb + k0 + k] : 0.0f;
            } else {
                int kk = idx >> 6;
                int n = idx & 63;
                Bs[kk][n] = (n0 + n < N && k0 + kk < K) ? B[(long long) (k0 + kk) * ldb + n0 + n] : 0.0f;
            }
        }
        __syncthreads();
#pragma unroll
        for (int k = 0; k < 16; k++) {
            float a[4], b[4];
#pragma unroll
            for (int i = 0; i < 4; i++) {
                a[i] = As[k][ty + 16 * i];
                b[i] = Bs[k][tx + 16 * i];
            }
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; i++) {
#pragma unroll
        for (int j = 0; j < 4; j++) {
            int m = m0 + ty + 16 * i;
            int n = n0 + tx + 16 * j;
            if (m < M && n < N) {
                C[(long long) m * ldc + n] = epilogue(acc[i][j], n, alpha, aScale, colScale, bias);
            }
        }
    }
}

// ---------------------------------------------------------------- attention

__device__ __forceinline__ float block_reduce(float v, bool isMax) {
    __shared__ float part[32];
    for (int o = 16; o > 0; o >>= 1) {
        float w = __shfl_xor_sync(0xffffffffu, v, o);
        v = isMax ? fmaxf(v, w) : v + w;
    }
    __syncthreads();
    if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = v;
    __syncthreads();
    if (threadIdx.x < 32) {
        v = threadIdx.x < (blockDim.x >> 5) ? part[threadIdx.x] : (isMax ? -INFINITY : 0.0f);
        for (int o = 16; o > 0; o >>= 1) {
            float w = __shfl_xor_sync(0xffffffffu, v, o);
            v = isMax ? fmaxf(v, w) : v + w;
        }
        if (threadIdx.x == 0) part[0] = v;
    }
    __syncthreads();
    return part[0];
}

// softmax(row * scale) of each row in place, one CTA per row: the same steps as the CPU's Ops.scaledSoftmax.
extern "C" __global__ void softmax_rows(float* __restrict__ s, int cols, float scale) {
    float* row = s + (long long) blockIdx.x * cols;
    float m = -INFINITY;
    for (int j = threadIdx.x; j < cols; j += blockDim.x) m = fmaxf(m, row[j] * scale);
    m = block_reduce(m, true);
    float sum = 0.0f;
    for (int j = threadIdx.x; j < cols; j += blockDim.x) {
        float e = expf(row[j] * scale - m);
        row[j] = e;
        sum += e;
    }
    float inv = 1.0f / block_reduce(sum, false);
    for (int j = threadIdx.x; j < cols; j += blockDim.x) row[j] *= inv;
}

// ---------------------------------------------------------------- the block's elementwise ops
// The CPU's Ops in the same order of float operations; _rn intrinsics keep nvcc from fusing them into FMAs.
// Row sums in float64 as the CPU's.

__device__ __forceinline__ double block_sum_d(double v) {
    __shared__ double part[32];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    __syncthreads();
    if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = v;
    __syncthreads();
    if (threadIdx.x < 32) {
        v = threadIdx.x < (blockDim.x >> 5) ? part[threadIdx.x] : 0.0;
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
        if (threadIdx.x == 0) part[0] = v;
    }
    __syncthreads();
    return part[0];
}

// LayerNorm of each row (one CTA per row), biased variance; w and b null for no affine.
extern "C" __global__ void layer_norm_rows(const float* __restrict__ x, float* __restrict__ out, int dim, float eps,
        const float* __restrict__ w, const float* __restrict__ b) {
    const float* r = x + (long long) blockIdx.x * dim;
    float* o = out + (long long) blockIdx.x * dim;
    double s = 0.0;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) s += r[i];
    float mean = (float) (block_sum_d(s) / dim);
    double sq = 0.0;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
        double d = __fsub_rn(r[i], mean);
        sq += d * d;
    }
    float inv = (float) (1.0 / sqrt(block_sum_d(sq) / dim + (double) eps));
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
        float v = __fmul_rn(__fsub_rn(r[i], mean), inv);
        if (w) v = __fadd_rn(__fmul_rn(v, w[i]), b[i]);
        o[i] = v;
    }
}

// Wan's RMSNorm over each whole row, in place: x * rsqrt(mean(x^2) + eps) * w.
extern "C" __global__ void rms_norm_rows(float* __restrict__ x, int dim, float eps, const float* __restrict__ w) {
    float* r = x + (long long) blockIdx.x * dim;
    double sq = 0.0;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) sq += (double) r[i] * r[i];
    float inv = (float) (1.0 / sqrt(block_sum_d(sq) / dim + (double) eps));
    for (int i = threadIdx.x; i < dim; i += blockDim.x) r[i] = __fmul_rn(__fmul_rn(r[i], inv), w[i]);
}

// h = h * (1 + scale) + shift; scale and shift are [dim], or [tokens, dim] when perToken.
extern "C" __global__ void modulate(float* __restrict__ h, long long n, int dim, const float* __restrict__ scale,
        const float* __restrict__ shift, int perToken) {
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        long long e = perToken ? i : i % dim;
        h[i] = __fadd_rn(__fmul_rn(h[i], __fadd_rn(1.0f, scale[e])), shift[e]);
    }
}

// x += y * gate, the gate as modulate's scale; gate null: x += y.
extern "C" __global__ void gated_add(float* __restrict__ x, const float* __restrict__ y, long long n, int dim,
        const float* __restrict__ gate, int perToken) {
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        float v = gate ? __fmul_rn(y[i], gate[perToken ? i : i % dim]) : y[i];
        x[i] = __fadd_rn(x[i], v);
    }
}

// GELU, tanh approximation, in place.
extern "C" __global__ void gelu_tanh(float* __restrict__ x, long long n) {
    const float c = 0.7978845608028654f;
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        float v = x[i];
        float inner = __fmul_rn(c, __fadd_rn(v, __fmul_rn(__fmul_rn(__fmul_rn(0.044715f, v), v), v)));
        x[i] = __fmul_rn(__fmul_rn(0.5f, v), __fadd_rn(1.0f, (float) tanh((double) inner)));
    }
}

// Wan's 3D RoPE in place on x [F*H*W, heads * headDim]: pair j of a head rotates by pos[part] * 10000^(-2k / width)
// with parts (frames, height, width) of widths w0, w1, w2 (k counts pairs inside the part); float64 like the CPU.
extern "C" __global__ void rope3d(float* __restrict__ x, int tokens, int height, int width, int dim, int headDim,
        int w0, int w1, int w2) {
    int pairs = headDim / 2;
    long long total = (long long) tokens * (dim / 2);
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < total; i += (long long) gridDim.x * blockDim.x) {
        int t = (int) (i / (dim / 2));
        int p = (int) (i % (dim / 2));
        int j = p % pairs;
        int part, k, w;
        if (j < w0 / 2) { part = 0; k = j; w = w0; }
        else if (j < w0 / 2 + w1 / 2) { part = 1; k = j - w0 / 2; w = w1; }
        else { part = 2; k = j - w0 / 2 - w1 / 2; w = w2; }
        int pos = part == 0 ? t / (height * width) : part == 1 ? (t / width) % height : t % width;
        double angle = pos * pow(10000.0, -(2.0 * k) / w);
        double c = cos(angle), s = sin(angle);
        float* e = x + (long long) t * dim + 2 * p;
        double re = e[0], im = e[1];
        e[0] = (float) (re * c - im * s);
        e[1] = (float) (re * s + im * c);
    }
}

// ---------------------------------------------------------------- LoRA merge in float64 (DeltaMerger's arithmetic)

// Element i of a BF16 (0), F16 (1) or F32 (2) array, exactly, as a double.
__device__ __forceinline__ double wide(const void* x, int dtype, long long i) {
    if (dtype == 0) {
        return (double) __uint_as_float(((unsigned int) ((const unsigned short*) x)[i]) << 16);
    }
    if (dtype == 1) {
        return (double) __half2float(((const __half*) x)[i]);
    }
    return (double) ((const float*) x)[i];
}

extern "C" __global__ void widen_f64(const void* __restrict__ x, int dtype, long long n, double* __restrict__ out) {
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        out[i] = wide(x, dtype, i);
    }
}

// acc += strength * diff: a rounded product, then a rounded sum (no contraction to FMA), as on the CPU.
extern "C" __global__ void dense_add_f64(double* __restrict__ acc, const void* __restrict__ diff, int dtype, long long n,
        double strength) {
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        acc[i] = __dadd_rn(acc[i], __dmul_rn(strength, wide(diff, dtype, i)));
    }
}

// acc[r][c] += scale * sum_k up[r][k] * down[k][c] for up [rows, rank] and down [rank, cols], both float64: each
// sum runs over k in order by FMA from +0, then one rounded product by scale and one rounded sum, so every value
// is bit for bit the CPU's (DeltaMerger). A CTA of 256 threads holds a 64 x 64 tile, 4 x 4 values a thread, with
// k in steps of 16 through shared memory.
#define LR_T 64
#define LR_K 16
extern "C" __global__ void __launch_bounds__(256) lowrank_add_f64(double* __restrict__ acc, const double* __restrict__ up,
        const double* __restrict__ down, int rows, int cols, int rank, double scale) {
    __shared__ double us[LR_K][LR_T];
    __shared__ double ds[LR_K][LR_T];
    int tx = threadIdx.x & 15;
    int ty = threadIdx.x >> 4;
    int row0 = blockIdx.y * LR_T;
    int col0 = blockIdx.x * LR_T;
    double a[4][4];
    for (int i = 0; i < 4; i++) {
        for (int j = 0; j < 4; j++) {
            a[i][j] = 0.0;
        }
    }
    for (int k0 = 0; k0 < rank; k0 += LR_K) {
        for (int i = threadIdx.x; i < LR_T * LR_K; i += 256) {
            int r = i / LR_K;
            int k = i % LR_K;
            us[k][r] = row0 + r < rows && k0 + k < rank ? up[(long long) (row0 + r) * rank + k0 + k] : 0.0;
            int kk = i / LR_T;
            int c = i % LR_T;
            ds[kk][c] = k0 + kk < rank && col0 + c < cols ? down[(long long) (k0 + kk) * cols + col0 + c] : 0.0;
        }
        __syncthreads();
        int kn = min(LR_K, rank - k0);
        for (int k = 0; k < kn; k++) {
            double u[4];
            double d[4];
            for (int i = 0; i < 4; i++) {
                u[i] = us[k][ty + 16 * i];
                d[i] = ds[k][tx + 16 * i];
            }
            for (int i = 0; i < 4; i++) {
                for (int j = 0; j < 4; j++) {
                    a[i][j] = fma(d[j], u[i], a[i][j]);
                }
            }
        }
        __syncthreads();
    }
    for (int i = 0; i < 4; i++) {
        for (int j = 0; j < 4; j++) {
            int r = row0 + ty + 16 * i;
            int c = col0 + tx + 16 * j;
            if (r < rows && c < cols) {
                long long o = (long long) r * cols + c;
                acc[o] = __dadd_rn(acc[o], __dmul_rn(a[i][j], scale));
            }
        }
    }
}

// The one rounding: float64 to float32, to nearest even (Java's (float) cast).
extern "C" __global__ void f64_to_f32(const double* __restrict__ x, long long n, float* __restrict__ out) {
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        out[i] = __double2float_rn(x[i]);
    }
}
