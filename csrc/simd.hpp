// pinncore: SIMD building blocks — a register-blocked matrix product sized for PINN widths
// and a vectorisable tanh. Pure C++, no Python.
//
// Why hand-written: PINN layers are small (50–128 wide) and the rows are many short
// stacks of jets processed in cache-sized chunks. A BLAS call per (chunk, layer) costs more
// in dispatch than the product itself at width 50, so the products run through one
// micro-kernel that keeps an MR x NV tile of 64-byte vectors in registers (AVX-512 has 32).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <new>

#if defined(__FMA__)
#include <immintrin.h>
#endif

namespace pinncore {

// 64-byte vectors: 8 doubles or 16 floats. GCC lowers them to zmm with AVX-512 and to pairs
// of ymm (or xmm) elsewhere, so the same source is the portable build.
template <class T> struct Vec;
template <> struct Vec<double> {
    typedef double type __attribute__((vector_size(64), aligned(8)));
    static constexpr int width = 8;
};
template <> struct Vec<float> {
    typedef float type __attribute__((vector_size(64), aligned(4)));
    static constexpr int width = 16;
};

template <class T> inline int round_up_lanes(int n) {
    constexpr int w = Vec<T>::width;
    return (n + w - 1) / w * w;
}

// A 64-byte aligned, zero-initialised buffer that only grows (workspaces are reused).
template <class T> class Buffer {
  public:
    Buffer() = default;
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;
    Buffer(Buffer&& o) noexcept : ptr_(o.ptr_), cap_(o.cap_) { o.ptr_ = nullptr; o.cap_ = 0; }
    Buffer& operator=(Buffer&& o) noexcept {
        if (this != &o) {
            std::free(ptr_);
            ptr_ = o.ptr_;
            cap_ = o.cap_;
            o.ptr_ = nullptr;
            o.cap_ = 0;
        }
        return *this;
    }
    ~Buffer() { std::free(ptr_); }
    void reserve(std::size_t n) {
        if (n <= cap_) return;
        std::free(ptr_);
        ptr_ = nullptr;
        cap_ = 0;
        std::size_t bytes = (n * sizeof(T) + 63) / 64 * 64;
        void* p = std::aligned_alloc(64, bytes);
        if (!p) throw std::bad_alloc();
        std::memset(p, 0, bytes);
        ptr_ = static_cast<T*>(p);
        cap_ = n;
    }
    T* data() { return ptr_; }
    const T* data() const { return ptr_; }
    std::size_t capacity() const { return cap_; }

  private:
    T* ptr_ = nullptr;
    std::size_t cap_ = 0;
};

// hacc + a * hb on a half vector as ONE fused multiply-add. Written with `+=` GCC contracted
// it in some tiles but not in others (MR = 1: a separate multiply and add), and results must
// not depend on the tile (a point's value may not change with the number of streams).
template <class T, class HV> inline HV half_fma(T a, HV b, HV c) {
#if defined(__FMA__)
    if constexpr (sizeof(T) == 8)
        return reinterpret_cast<HV>(_mm256_fmadd_pd(_mm256_set1_pd(a), reinterpret_cast<__m256d>(b),
                                                    reinterpret_cast<__m256d>(c)));
    else
        return reinterpret_cast<HV>(_mm256_fmadd_ps(_mm256_set1_ps(a), reinterpret_cast<__m256>(b),
                                                    reinterpret_cast<__m256>(c)));
#else
    return c + a * b;  // no FMA instruction: every tile multiplies and adds alike
#endif
}

// C[MR x (NV*w + HALF*w/2)] (+)= A[MR x K] * B[K x same].
// A is addressed through strides (ars between rows, aks along k) so the same kernel computes
// both A*B (ars = lda, aks = 1) and A^T*B (ars = 1, aks = lda) for the weight gradients.
// HALF adds a half-width tail vector (4 doubles / 8 floats): a 50-unit layer is 6 full
// vectors + 2 columns, and computing the tail as 32 bytes instead of 64 saves 1/14 of the
// FMA work (Zen4 executes a 512-bit FMA as two 256-bit halves, so a half vector costs half).
// The tail's upper half of C (pure padding) is stored as zero, exactly what the full-width
// product gave there, so the padded columns stay zero as the layout requires.
template <class T, int MR, int NV, bool HALF = false>
inline void micro_kernel(int K, const T* __restrict A, std::ptrdiff_t ars, std::ptrdiff_t aks,
                         const T* __restrict B, std::ptrdiff_t ldb, T* __restrict C,
                         std::ptrdiff_t ldc, bool accumulate) {
    using V = typename Vec<T>::type;
    typedef T HV __attribute__((vector_size(32), aligned(sizeof(T))));
    constexpr int w = Vec<T>::width;
    constexpr int NA = NV > 0 ? NV : 1;  // array extents must be positive
    constexpr int MH = HALF ? MR : 1;
    V acc[MR][NA];
    HV hacc[MH];
    if (accumulate) {
        #pragma GCC unroll 16
        for (int i = 0; i < MR; ++i) {
            #pragma GCC unroll 16
            for (int j = 0; j < NV; ++j) acc[i][j] = *reinterpret_cast<const V*>(C + i * ldc + j * w);
            if constexpr (HALF) hacc[i] = *reinterpret_cast<const HV*>(C + i * ldc + NV * w);
        }
    } else {
        #pragma GCC unroll 16
        for (int i = 0; i < MR; ++i) {
            #pragma GCC unroll 16
            for (int j = 0; j < NV; ++j) acc[i][j] = V{};
            if constexpr (HALF) hacc[i] = HV{};
        }
    }
    for (int k = 0; k < K; ++k) {
        T a[MR];
        #pragma GCC unroll 16
        for (int i = 0; i < MR; ++i) a[i] = A[i * ars + k * aks];
        const T* b = B + k * ldb;
        #pragma GCC unroll 16
        for (int j = 0; j < NV; ++j) {
            V bv = *reinterpret_cast<const V*>(b + j * w);
            // Pin bv in a register. Without this GCC folds the load into every FMA
            // (vfmadd231pd mem, ...), i.e. MR loads of the same vector per column; Zen4
            // issues one 64-byte load per cycle, so the kernel became load-bound (~75% of
            // FMA peak). Loaded once, a k-step costs NV + MR loads for MR*NV FMAs.
#if defined(__AVX512F__)
            asm("" : "+v"(bv));  // a 64-byte vector is one zmm register only with AVX-512
#endif
            #pragma GCC unroll 16
            for (int i = 0; i < MR; ++i) acc[i][j] += a[i] * bv;
        }
        if constexpr (HALF) {
            HV hb = *reinterpret_cast<const HV*>(b + NV * w);
#if defined(__AVX__)
            // Pinned for the same reason as bv.
            asm("" : "+v"(hb));  // 32 bytes are one ymm register with AVX
#endif
            #pragma GCC unroll 16
            for (int i = 0; i < MR; ++i) hacc[i] = half_fma<T>(a[i], hb, hacc[i]);
        }
    }
    #pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
        #pragma GCC unroll 16
        for (int j = 0; j < NV; ++j) *reinterpret_cast<V*>(C + i * ldc + j * w) = acc[i][j];
        if constexpr (HALF) {
            *reinterpret_cast<HV*>(C + i * ldc + NV * w) = hacc[i];
            *reinterpret_cast<HV*>(C + i * ldc + NV * w + w / 2) = HV{};
        }
    }
}

template <class T, int MR, int NV, bool HALF = false>
inline void gemm_rows(int R, int K, const T* A, std::ptrdiff_t ars, std::ptrdiff_t aks, const T* B,
                      std::ptrdiff_t ldb, T* C, std::ptrdiff_t ldc, bool accumulate) {
    int r = 0;
    for (; r + MR <= R; r += MR)
        micro_kernel<T, MR, NV, HALF>(K, A + r * ars, ars, aks, B, ldb, C + r * ldc, ldc, accumulate);
    const int rest = R - r;
    if (rest == 0) return;
    // Remainder rows: smaller tiles of the same shape.
    if constexpr (MR > 4) {
        if (R - r >= 4) {
            micro_kernel<T, 4, NV, HALF>(K, A + r * ars, ars, aks, B, ldb, C + r * ldc, ldc, accumulate);
            r += 4;
        }
    }
    if constexpr (MR > 2) {
        if (R - r >= 2) {
            micro_kernel<T, 2, NV, HALF>(K, A + r * ars, ars, aks, B, ldb, C + r * ldc, ldc, accumulate);
            r += 2;
        }
    }
    for (; r < R; ++r)
        micro_kernel<T, 1, NV, HALF>(K, A + r * ars, ars, aks, B, ldb, C + r * ldc, ldc, accumulate);
}

// Column block of nv vectors (the last one a half vector when `half`): dispatch to a
// compile-time tile. The row tile MR shrinks as the column tile grows so that the MR*NV
// accumulators + MR broadcasts fit in 32 registers.
template <class T>
inline void gemm_block(int nv, bool half, int R, int K, const T* A, std::ptrdiff_t ars, std::ptrdiff_t aks,
                       const T* B, std::ptrdiff_t ldb, T* C, std::ptrdiff_t ldc, bool acc) {
    if (half) {
        switch (nv) {
            case 1: gemm_rows<T, 8, 0, true>(R, K, A, ars, aks, B, ldb, C, ldc, acc); break;
            case 2: gemm_rows<T, 8, 1, true>(R, K, A, ars, aks, B, ldb, C, ldc, acc); break;
            case 3: gemm_rows<T, 8, 2, true>(R, K, A, ars, aks, B, ldb, C, ldc, acc); break;
            case 4: gemm_rows<T, 6, 3, true>(R, K, A, ars, aks, B, ldb, C, ldc, acc); break;
            case 5: gemm_rows<T, 5, 4, true>(R, K, A, ars, aks, B, ldb, C, ldc, acc); break;
            case 6: gemm_rows<T, 4, 5, true>(R, K, A, ars, aks, B, ldb, C, ldc, acc); break;
            case 7: gemm_rows<T, 3, 6, true>(R, K, A, ars, aks, B, ldb, C, ldc, acc); break;
            default: gemm_rows<T, 3, 7, true>(R, K, A, ars, aks, B, ldb, C, ldc, acc); break;
        }
        return;
    }
    switch (nv) {
        case 1: gemm_rows<T, 8, 1>(R, K, A, ars, aks, B, ldb, C, ldc, acc); break;
        case 2: gemm_rows<T, 8, 2>(R, K, A, ars, aks, B, ldb, C, ldc, acc); break;
        case 3: gemm_rows<T, 6, 3>(R, K, A, ars, aks, B, ldb, C, ldc, acc); break;
        case 4: gemm_rows<T, 5, 4>(R, K, A, ars, aks, B, ldb, C, ldc, acc); break;
        case 5: gemm_rows<T, 4, 5>(R, K, A, ars, aks, B, ldb, C, ldc, acc); break;
        case 6: gemm_rows<T, 4, 6>(R, K, A, ars, aks, B, ldb, C, ldc, acc); break;
        case 7: gemm_rows<T, 3, 7>(R, K, A, ars, aks, B, ldb, C, ldc, acc); break;
        default: gemm_rows<T, 3, 8>(R, K, A, ars, aks, B, ldb, C, ldc, acc); break;
    }
}

// C[R x N] (+)= op(A)[R x K] * B[K x N], B and C rows 64-byte aligned with room for N
// rounded up to the vector width. N is a multiple of half the vector width: callers pass the
// real width rounded up to w/2, and a trailing half vector is computed at half cost (the rest
// of its full vector in C is set to zero). Columns are split into near-equal blocks of at
// most 8 vectors, the half vector (if any) ending the last block.
template <class T>
inline void gemm(int R, int N, int K, const T* A, std::ptrdiff_t ars, std::ptrdiff_t aks, const T* B,
                 std::ptrdiff_t ldb, T* C, std::ptrdiff_t ldc, bool accumulate) {
    constexpr int w = Vec<T>::width;
    if (R <= 0 || N <= 0) return;
    const bool half = (N % w) != 0;
    const int nvec = (N + w - 1) / w;  // the half vector counted as one
    const int nblocks = (nvec + 7) / 8;
    int start = 0;
    for (int blk = 0; blk < nblocks; ++blk) {
        const int nv = (nvec - start) / (nblocks - blk);
        gemm_block<T>(nv, half && blk == nblocks - 1, R, K, A, ars, aks, B + start * w, ldb, C + start * w, ldc,
                      accumulate);
        start += nv;
    }
}

// The column count to pass to gemm for a layer of `n` real units: n rounded up to half the
// vector width (the padded layout itself stays a whole number of vectors).
template <class T> inline int gemm_cols(int n) {
    constexpr int h = Vec<T>::width / 2;
    return (n + h - 1) / h * h;
}

// ---- Products with a narrow output (m <= kSmallOut units, i.e. a PINN's output layer).
// Through gemm an m = 1 layer is a half vector of 4 (8) columns per row, 3/4 of it padding, and its
// adjoint a K = 1 product whose tile set-up costs more than its FMAs. These work on whole rows
// instead: one dot product per output (vector FMAs along the row, then a lane sum), a broadcast
// multiply for the adjoint, and for the weight gradient row-vector accumulators (two sets, so
// consecutive FMAs do not wait on each other). Measured at R = 256 rows, n_in = 20 (one thread):
// forward 1.08 -> 0.71 µs, adjoint 0.93 -> 0.56 µs, gradient 1.16 -> 0.58 µs (docs/design.md §2).
constexpr int kSmallOut = 4;

// Z[r, o] = H[r, :]·W[o, :] for o < m (m small), the rest of Z's padded row zero.
template <class T>
inline void small_out_forward(int R, int m, int n_in, const T* H, std::ptrdiff_t ldh, const T* W, std::ptrdiff_t ldw,
                              T* Z, std::ptrdiff_t ldz) {
    using V = typename Vec<T>::type;
    constexpr int w = Vec<T>::width;
    const int nv = (n_in + w - 1) / w;
    for (int r = 0; r < R; ++r) {
        const T* h = H + r * ldh;
        T* z = Z + r * ldz;
        for (int o = 0; o < m; ++o) {
            const T* wo = W + o * ldw;
            V acc = *reinterpret_cast<const V*>(h) * *reinterpret_cast<const V*>(wo);
            for (int v = 1; v < nv; ++v)
                acc += *reinterpret_cast<const V*>(h + v * w) * *reinterpret_cast<const V*>(wo + v * w);
            T s = 0;
            for (int q = 0; q < w; ++q) s += acc[q];
            z[o] = s;
        }
        for (int o = m; o < ldz; ++o) z[o] = T(0);
    }
}
// G_in[r, :] = Σ_o G[r, o] W[o, :] (W rows padded with zeros to ldo_in).
template <class T>
inline void small_out_adjoint(int R, int m, int ld_in, const T* G, std::ptrdiff_t ldg, const T* W, std::ptrdiff_t ldw,
                              T* Gin, std::ptrdiff_t ldgi) {
    using V = typename Vec<T>::type;
    constexpr int w = Vec<T>::width;
    for (int r = 0; r < R; ++r) {
        const T* g = G + r * ldg;
        T* gi = Gin + r * ldgi;
        for (int v = 0; v < ld_in; v += w) {
            V acc = g[0] * *reinterpret_cast<const V*>(W + v);
            for (int o = 1; o < m; ++o) acc += g[o] * *reinterpret_cast<const V*>(W + o * ldw + v);
            *reinterpret_cast<V*>(gi + v) = acc;
        }
    }
}
// gW[o, k] += Σ_r G[r, o] H[r, k] for o < m, gW rows of ldw >= n_in rounded up to the vector
// width (64-byte aligned; H's padded columns are zero, so gW's padding stays zero).
template <class T>
inline void small_out_grad(int R, int m, int n_in, const T* H, std::ptrdiff_t ldh, const T* G, std::ptrdiff_t ldg,
                           T* gW, std::ptrdiff_t ldw) {
    using V = typename Vec<T>::type;
    constexpr int w = Vec<T>::width;
    const int nv = (n_in + w - 1) / w;
    constexpr int MAXV = 16;
    for (int o = 0; o < m; ++o) {
        for (int v0 = 0; v0 < nv; v0 += MAXV) {
            const int cnt = std::min(MAXV, nv - v0);
            V a0[MAXV], a1[MAXV];
            for (int v = 0; v < cnt; ++v) a0[v] = a1[v] = V{};
            int r = 0;
            for (; r + 2 <= R; r += 2) {
                const T g0 = G[r * ldg + o], g1 = G[(r + 1) * ldg + o];
                const T* h0 = H + r * ldh + v0 * w;
                const T* h1 = h0 + ldh;
                for (int v = 0; v < cnt; ++v) {
                    a0[v] += g0 * *reinterpret_cast<const V*>(h0 + v * w);
                    a1[v] += g1 * *reinterpret_cast<const V*>(h1 + v * w);
                }
            }
            for (; r < R; ++r) {
                const T g0 = G[r * ldg + o];
                const T* h0 = H + r * ldh + v0 * w;
                for (int v = 0; v < cnt; ++v) a0[v] += g0 * *reinterpret_cast<const V*>(h0 + v * w);
            }
            for (int v = 0; v < cnt; ++v)
                *reinterpret_cast<V*>(gW + o * ldw + (v0 + v) * w) += a0[v] + a1[v];
        }
    }
}

// 1/d for finite d > 0 of normal range: with AVX-512 the 14-bit hardware estimate refined by
// Newton steps r <- r + r (1 - d r) (two for double: 2^-14 -> 2^-28 -> 2^-56; one for float),
// within an ulp of the division, in pipelined FMAs instead of a 512-bit divide.
template <class T> inline typename Vec<T>::type reciprocal(typename Vec<T>::type d) {
#if defined(__AVX512F__)
    using V = typename Vec<T>::type;
    V r;
    if constexpr (sizeof(T) == 8)
        r = reinterpret_cast<V>(_mm512_maskz_rcp14_pd(__mmask8(0xFF), reinterpret_cast<__m512d>(d)));
    else
        r = reinterpret_cast<V>(_mm512_maskz_rcp14_ps(__mmask16(0xFFFF), reinterpret_cast<__m512>(d)));
    r = r + r * (T(1) - d * r);
    if constexpr (sizeof(T) == 8) r = r + r * (T(1) - d * r);
    return r;
#else
    return T(1) / d;
#endif
}

// Element-wise square root of a vector (one instruction with AVX-512). The zero-masking forms
// (mask all ones: the same instruction) avoid the unmasked intrinsics' deliberately undefined
// pass-through operand, which GCC reports as maybe-uninitialized at -O1 (the sanitizer build).
template <class T> inline typename Vec<T>::type sqrt_vec(typename Vec<T>::type x) {
    using V = typename Vec<T>::type;
#if defined(__AVX512F__)
    if constexpr (sizeof(T) == 8)
        return reinterpret_cast<V>(_mm512_maskz_sqrt_pd(__mmask8(0xFF), reinterpret_cast<__m512d>(x)));
    else
        return reinterpret_cast<V>(_mm512_maskz_sqrt_ps(__mmask16(0xFFFF), reinterpret_cast<__m512>(x)));
#else
    V r;
    for (int q = 0; q < Vec<T>::width; ++q) r[q] = std::sqrt(x[q]);
    return r;
#endif
}

// tanh and sech^2 together, accurate to a few ulp and vectorisable (no libm call).
// With e = expm1(2|x|): tanh|x| = e/(e+2) and 1 - tanh^2 = 4(e+1)/(e+2)^2. The second form
// keeps full relative precision where tanh saturates, unlike 1 - h*h. expm1 is computed by
// the reduction 2|x| = n ln2 + r, |r| <= ln2/2, expm1(y) = 2^n expm1(r) + (2^n - 1),
// which is exact for n = 0 (small |x|, where tanh must not lose relative precision).
template <class T> struct TanhConst;
template <> struct TanhConst<double> {
    // Clamp on y = 2|x|: e^700 still fits, so sech^2 = 4(e+1)/(e+2)^2 is exact down to ~1e-304;
    // beyond it sech^2 is set to 0 (it is < 1e-304) and tanh is ±1.
    static constexpr double clamp = 700.0;
    static constexpr int degree = 13;  // Taylor terms of expm1(r)/r: r^12/13! ~ 1e-16 at |r| = ln2/2
    typedef std::int64_t Int;
    static constexpr int mant = 52, bias = 1023;
};
template <> struct TanhConst<float> {
    static constexpr float clamp = 80.0f;  // e^80 ~ 5.5e34 fits in float; sech^2(40) ~ 7e-35
    static constexpr int degree = 8;  // r^7/8! ~ 1e-8
    typedef std::int32_t Int;
    static constexpr int mant = 23, bias = 127;
};

// Taylor coefficients of expm1(r)/r = sum_k r^k/(k+1)!, for plain Horner (one FMA per degree).
constexpr double kExpm1Coef[14] = {1.0,
                                   1.0 / 2,
                                   1.0 / 6,
                                   1.0 / 24,
                                   1.0 / 120,
                                   1.0 / 720,
                                   1.0 / 5040,
                                   1.0 / 40320,
                                   1.0 / 362880,
                                   1.0 / 3628800,
                                   1.0 / 39916800,
                                   1.0 / 479001600,
                                   1.0 / 6227020800.0,
                                   1.0 / 87178291200.0};

// One vector of tanh and sech^2. Written on whole vectors (not a scalar loop left to the
// auto-vectoriser) so the elementwise passes can fuse it with their other per-vector work.
// Always inlined: called out of line (GCC's choice inside the fixed-stream-count passes)
// it passed the vectors through the stack and cost a third more.
template <class T>
__attribute__((always_inline)) inline typename Vec<T>::type tanh_sech2_vec(typename Vec<T>::type x, typename Vec<T>::type& s1) {
    using V = typename Vec<T>::type;
    using C = TanhConst<T>;
    using Int = typename C::Int;
    typedef Int IV __attribute__((vector_size(64)));
    const V zero = V{} , one = zero + T(1);
    const T shifter = sizeof(T) == 8 ? T(6755399441055744.0) : T(12582912.0f);  // 1.5*2^52 / 1.5*2^23
    V y = (x < zero ? -x : x) * T(2);
    const auto beyond = y > C::clamp;
    y = beyond ? zero + C::clamp : y;  // NaN propagates (a NaN compare is false)
    const V nf = (y * T(1.4426950408889634) + shifter) - shifter;  // round(y / ln2)
    const V r = (y - nf * T(0.693145751953125)) - nf * T(1.42860682030941723212e-6);
    // expm1(r) = r * p(r), Horner on the Taylor series: |r| <= ln2/2, C::degree terms.
    V p = zero + T(kExpm1Coef[C::degree - 1]);
    for (int k = C::degree - 2; k >= 0; --k) p = p * r + T(kExpm1Coef[k]);
    p = r * p;
    const IV ni = __builtin_convertvector(nf, IV);
    const IV bits = (ni + C::bias) << C::mant;
    V two;
    std::memcpy(&two, &bits, sizeof(V));
    const V e = two * p + (two - T(1));  // expm1(2|x|), exact reconstruction for n = 0
    const V inv = one / (e + T(2));
    const V t = e * inv;
    s1 = T(4) * inv * ((e + T(1)) * inv);  // this order cannot overflow
    s1 = beyond ? zero : s1;
    return x < zero ? -t : t;
}

// Array form (n a multiple of the vector width, 64-byte aligned).
template <class T>
inline void tanh_sech2(int n, const T* z, T* h, T* s1) {
    using V = typename Vec<T>::type;
    constexpr int w = Vec<T>::width;
    for (int k = 0; k < n; k += w) {
        V s;
        *reinterpret_cast<V*>(h + k) = tanh_sech2_vec<T>(*reinterpret_cast<const V*>(z + k), s);
        *reinterpret_cast<V*>(s1 + k) = s;
    }
}

}  // namespace pinncore
