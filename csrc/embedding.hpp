// pinncore: the input embedding stage of the jet kernel and the modified MLP's gate. Pure C++.
//
// Embedding (Fourier features, Tancik et al. 2020; the periodic embedding): a linear phase
// a = Ω x̂ of the network input (M phases, Ω = 2πB), then γ = [cos a, sin a, x̂_pass]. Because a is linear in the
// input, its first-order seeds a_f = Ω[:, k_f] scale_{k_f} are the same at every point and its
// second-order streams vanish, so
//     γ_f  = [−sin a, cos a] ⊙ a_f           γ_ab = −[cos a, sin a] ⊙ a_a ⊙ a_b
// and the adjoint is the chain rule of these two lines (embed_adjoint).
//
// Gate (Wang, Teng & Perdikaris 2021, eq. 2.36–2.38): h = U + z ⊙ D, D = V − U, whose jets follow
// by the Leibniz rule (gate_forward) and whose adjoint splits h̄ into z̄, Ū and V̄ (gate_adjoint).
//
// All functions work on the kernel's chunk layout (kernel.hpp): S stream blocks of cn rows of
// `ld` padded columns; stream 0 the value, 1..F first order, then the P pairs.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <vector>

#include "simd.hpp"

namespace pinncore {

// What the network puts before (embedding) and inside (gate) its dense chain.
template <class T> struct ArchSpec {
    bool modified = false;          // arch="modified": encoders U, V and gated hidden layers
    int features = 0;               // M phases of the embedding (0: no embedding)
    std::vector<T> B;               // M x d fixed frequencies (used when not trainable)
    bool trainable = false;         // B is the last block of the parameter vector
    std::vector<int> passthrough;   // raw inputs appended after the cos/sin features
    int width(int d) const { return features > 0 ? 2 * features + static_cast<int>(passthrough.size()) : d; }
};

// sin and cos of 8 doubles: Cody–Waite reduction by π/2 in three parts (exact products for
// |q| < 2^26), the Cephes minimax polynomials on [-π/4, π/4] (relative error ~1e-16), then the
// quadrant q mod 4 swaps and negates. Lanes beyond |x| = 1e5 (or not finite) go to libm, where
// the three-part reduction would lose digits. libm's scalar sincos costs ~20x more per value,
// which made the embedding the most expensive layer of a small network.
inline void sincos8(const double* x, double* s, double* c) {
    using V = Vec<double>::type;
    typedef unsigned long long VU __attribute__((vector_size(64)));
    const V v = *reinterpret_cast<const V*>(x);
    bool big = false;
    for (int k = 0; k < 8; ++k) big |= !(std::fabs(x[k]) <= 1e5);
    if (big) {
        for (int k = 0; k < 8; ++k) {
            s[k] = std::sin(x[k]);
            c[k] = std::cos(x[k]);
        }
        return;
    }
    const double magic = 6755399441055744.0;  // 1.5 * 2^52: adding it rounds to an integer
    const V t = v * 0.63661977236758134308 + magic;
    const VU qi = (VU)t;  // the integer's low bits are q mod 2^51
    const V q = t - magic;
    const V r = ((v - q * 1.57079625129699707031) - q * 7.54978941586159635335E-8) - q * 5.39030285815811905290E-15;
    const V z = r * r;
    V ps = z * 1.58962301576546568060E-10 - 2.50507477628578072866E-8;
    ps = ps * z + 2.75573136213857245213E-6;
    ps = ps * z - 1.98412698295895385996E-4;
    ps = ps * z + 8.33333333332211858878E-3;
    ps = ps * z - 1.66666666666666307295E-1;
    const V sr = r + r * z * ps;
    V pc = z * -1.13585365213876817300E-11 + 2.08757008419747316778E-9;
    pc = pc * z - 2.75573141792967388112E-7;
    pc = pc * z + 2.48015872888517045348E-5;
    pc = pc * z - 1.38888888888730564116E-3;
    pc = pc * z + 4.16666666666665929218E-2;
    const V cr = (1.0 - 0.5 * z) + z * z * pc;
    // sin x = (sr, cr, -sr, -cr)[q & 3], cos x = (cr, -sr, -cr, sr)[q & 3].
    const VU swap = -(qi & 1ULL);
    const VU su = ((VU)cr & swap) | ((VU)sr & ~swap);
    const VU cu = ((VU)sr & swap) | ((VU)cr & ~swap);
    const VU ss = su ^ ((qi & 2ULL) << 62);
    const VU cs = cu ^ (((qi + 1ULL) & 2ULL) << 62);
    *reinterpret_cast<V*>(s) = (V)ss;   // GCC vector casts reinterpret the bits (no aliasing)
    *reinterpret_cast<V*>(c) = (V)cs;
}

// c = cos a, s = sin a for n values (in double, rounded once to T); a may alias c.
template <class T> inline void sincos_n(int n, const T* a, T* s, T* c) {
    alignas(64) double xa[8], xs[8], xc[8];
    for (int k0 = 0; k0 < n; k0 += 8) {
        const int m = std::min(8, n - k0);
        for (int k = 0; k < 8; ++k) xa[k] = k < m ? double(a[k0 + k]) : 0.0;
        sincos8(xa, xs, xc);
        for (int k = 0; k < m; ++k) {
            s[k0 + k] = T(xs[k]);
            c[k0 + k] = T(xc[k]);
        }
    }
}

// Ω (M x d) and the first-order phase seeds af (F x M) of one term (a_f = Ω[:, k_f] scale_{k_f}).
template <class T>
inline void embed_phases(const ArchSpec<T>& ar, const T* omega, int d, const T* scale, const std::vector<int>& first,
                         std::vector<T>& om, std::vector<T>& af) {
    const int M = ar.features, F = static_cast<int>(first.size());
    om.assign(omega, omega + static_cast<std::size_t>(M) * d);
    af.resize(static_cast<std::size_t>(F) * M);
    for (int f = 0; f < F; ++f)
        for (int m = 0; m < M; ++m) af[static_cast<std::size_t>(f) * M + m] = om[static_cast<std::size_t>(m) * d + first[f]] * scale[first[f]];
}

// The embedding's output jets for points [i0, i0 + cn) into E (S*cn rows of ld columns).
template <class T>
inline void embed_forward(const ArchSpec<T>& ar, const T* xhat, int d, const T* scale, const std::vector<int>& first,
                          const std::vector<std::array<int, 2>>& pairs, const std::vector<T>& om, const std::vector<T>& af,
                          int i0, int cn, int ld, T* E) {
    const int M = ar.features, F = static_cast<int>(first.size()), P = static_cast<int>(pairs.size());
    const int np = static_cast<int>(ar.passthrough.size());
    const std::size_t blk = static_cast<std::size_t>(cn) * ld;
    std::memset(E, 0, sizeof(T) * blk * (1 + F + P));
    for (int i = 0; i < cn; ++i) {
        const T* x = xhat + static_cast<std::size_t>(i0 + i) * d;
        T* e = E + static_cast<std::size_t>(i) * ld;
        for (int m = 0; m < M; ++m) {  // the phases, then cos/sin in place
            T a = 0;
            for (int k = 0; k < d; ++k) a += x[k] * om[static_cast<std::size_t>(m) * d + k];
            e[m] = a;
        }
        sincos_n<T>(M, e, e + M, e);
        for (int j = 0; j < np; ++j) e[2 * M + j] = x[ar.passthrough[j]];
    }
    for (int f = 0; f < F; ++f) {
        const T* a = af.data() + static_cast<std::size_t>(f) * M;
        for (int i = 0; i < cn; ++i) {
            const T* e0 = E + static_cast<std::size_t>(i) * ld;
            T* e = E + (1 + f) * blk + static_cast<std::size_t>(i) * ld;
            for (int m = 0; m < M; ++m) {
                e[m] = -e0[M + m] * a[m];
                e[M + m] = e0[m] * a[m];
            }
            for (int j = 0; j < np; ++j) e[2 * M + j] = ar.passthrough[j] == first[f] ? scale[first[f]] : T(0);
        }
    }
    for (int p = 0; p < P; ++p) {
        const T* aa = af.data() + static_cast<std::size_t>(pairs[p][0]) * M;
        const T* ab = af.data() + static_cast<std::size_t>(pairs[p][1]) * M;
        for (int i = 0; i < cn; ++i) {
            const T* e0 = E + static_cast<std::size_t>(i) * ld;
            T* e = E + (1 + F + p) * blk + static_cast<std::size_t>(i) * ld;
            for (int m = 0; m < M; ++m) {
                const T t = aa[m] * ab[m];
                e[m] = -e0[m] * t;
                e[M + m] = -e0[M + m] * t;
            }
        }
    }
}

// ā (streams 0..F, cn rows of ldA columns each) from the embedding output adjoint Ebar, with
//   ā_0 = −s c̄_0 + c s̄_0 + Σ_f a_f (−c c̄_f − s s̄_f) + Σ_ab a_a a_b (s c̄_ab − c s̄_ab)
//   ā_f = −s c̄_f + c s̄_f + Σ_{ab ∋ f} a_other (−c c̄_ab − s s̄_ab)   (twice for a = b)
// (c, s = cos a, sin a, read from the value rows of E).
template <class T>
inline void embed_adjoint(const ArchSpec<T>& ar, const std::vector<int>& first, const std::vector<std::array<int, 2>>& pairs,
                          const std::vector<T>& af, int cn, int ld, const T* E, const T* Ebar, int ldA, T* A) {
    const int M = ar.features, F = static_cast<int>(first.size()), P = static_cast<int>(pairs.size());
    const std::size_t blk = static_cast<std::size_t>(cn) * ld, blkA = static_cast<std::size_t>(cn) * ldA;
    for (int i = 0; i < cn; ++i) {
        const T* c = E + static_cast<std::size_t>(i) * ld;
        const T* s = c + M;
        T* a0 = A + static_cast<std::size_t>(i) * ldA;
        const T* g0 = Ebar + static_cast<std::size_t>(i) * ld;
        for (int m = 0; m < M; ++m) a0[m] = -s[m] * g0[m] + c[m] * g0[M + m];
        for (int f = 0; f < F; ++f) {
            const T* g = Ebar + (1 + f) * blk + static_cast<std::size_t>(i) * ld;
            const T* a = af.data() + static_cast<std::size_t>(f) * M;
            T* af_bar = A + (1 + f) * blkA + static_cast<std::size_t>(i) * ldA;
            for (int m = 0; m < M; ++m) {
                a0[m] += a[m] * (-c[m] * g[m] - s[m] * g[M + m]);
                af_bar[m] = -s[m] * g[m] + c[m] * g[M + m];
            }
        }
        for (int p = 0; p < P; ++p) {
            const int pa = pairs[p][0], pb = pairs[p][1];
            const T* g = Ebar + (1 + F + p) * blk + static_cast<std::size_t>(i) * ld;
            const T* aa = af.data() + static_cast<std::size_t>(pa) * M;
            const T* ab = af.data() + static_cast<std::size_t>(pb) * M;
            T* ba = A + (1 + pa) * blkA + static_cast<std::size_t>(i) * ldA;
            T* bb = A + (1 + pb) * blkA + static_cast<std::size_t>(i) * ldA;
            for (int m = 0; m < M; ++m) {
                a0[m] += (aa[m] * ab[m]) * (s[m] * g[m] - c[m] * g[M + m]);
                const T wv = -c[m] * g[m] - s[m] * g[M + m];
                ba[m] += ab[m] * wv;
                bb[m] += aa[m] * wv;  // a == b: both lines together give 2 a_a w
            }
        }
    }
}

// B's gradient (M x d, accumulated) and per-point squared norms (added) from ā: per point the
// gradient of B is 2π (ā_0 x̂ᵀ + Σ_f ā_f scale_{k_f} e_{k_f}ᵀ) — the layer-1 form with the raw jet.
template <class T>
inline void embed_grad(int M, const T* xhat, int d, const T* scale, const std::vector<int>& first, int i0, int cn,
                       const T* A, int ldA, T* gB, T* norms) {
    const int F = static_cast<int>(first.size());
    const std::size_t blkA = static_cast<std::size_t>(cn) * ldA;
    const T twopi = T(2 * M_PI);
    for (int i = 0; i < cn; ++i) {
        const T* x = xhat + static_cast<std::size_t>(i0 + i) * d;
        const T* a0 = A + static_cast<std::size_t>(i) * ldA;
        T acc = 0;
        for (int m = 0; m < M; ++m)
            for (int k = 0; k < d; ++k) {
                T v = a0[m] * x[k];
                for (int f = 0; f < F; ++f)
                    if (first[f] == k) v += A[(1 + f) * blkA + static_cast<std::size_t>(i) * ldA + m] * scale[k];
                v *= twopi;
                if (gB) gB[static_cast<std::size_t>(m) * d + k] += v;
                acc += v * v;
            }
        if (norms) norms[i0 + i] += acc;
    }
}

// The gate h = U + z ⊙ D (D = V − U) on offsets [q0, q1) of every stream block of a chunk: Z holds z's jets, U and V the
// encoders' jets, O receives h's. Leibniz: h_f = U_f + (z_f D + z D_f),
// h_ab = U_ab + (z_ab D + z_a D_b + z_b D_a + z D_ab).
template <class T>
inline void gate_forward(const std::vector<std::array<int, 2>>& pairs, int F, std::size_t blk, std::size_t q0,
                         std::size_t q1, const T* Z, const T* U, const T* Vv, T* O) {
    using V = typename Vec<T>::type;
    const int P = static_cast<int>(pairs.size());
    auto ld = [](const T* base, std::size_t q) -> V { return *reinterpret_cast<const V*>(base + q); };
    for (std::size_t q = q0; q < q1; q += Vec<T>::width) {
        const V z0 = ld(Z, q), D0 = ld(Vv, q) - ld(U, q);
        *reinterpret_cast<V*>(O + q) = ld(U, q) + z0 * D0;
        for (int f = 0; f < F; ++f) {
            const std::size_t o = (1 + f) * blk + q;
            *reinterpret_cast<V*>(O + o) = ld(U, o) + (ld(Z, o) * D0 + z0 * (ld(Vv, o) - ld(U, o)));
        }
        for (int p = 0; p < P; ++p) {
            const std::size_t o = (1 + F + p) * blk + q;
            const std::size_t oa = (1 + pairs[p][0]) * blk + q, ob = (1 + pairs[p][1]) * blk + q;
            const V Da = ld(Vv, oa) - ld(U, oa), Db = ld(Vv, ob) - ld(U, ob);
            *reinterpret_cast<V*>(O + o) =
                ld(U, o) + (ld(Z, o) * D0 + ld(Z, oa) * Db + ld(Z, ob) * Da + z0 * (ld(Vv, o) - ld(U, o)));
        }
    }
}

// In place on G (h̄ becomes z̄), accumulating Ū += h̄ − D̄ and V̄ += D̄, where for a product
// x = z ⊙ D the adjoint of one factor given the other factor c is
//   x̄_0 = c_0 ō_0 + Σ_f c_f ō_f + Σ_ab c_ab ō_ab,   x̄_f = c_0 ō_f + Σ_{ab ∋ f} c_other ō_ab,   x̄_ab = c_0 ō_ab.
// The order (value, first, pairs) makes the in-place update safe, as in adjoint_activate.
template <class T>
inline void gate_adjoint(const std::vector<std::array<int, 2>>& pairs, int F, std::size_t blk, std::size_t q0,
                         std::size_t q1, const T* Z, const T* U, const T* Vv, T* G, T* Ub, T* Vb) {
    using V = typename Vec<T>::type;
    const int P = static_cast<int>(pairs.size());
    auto ld = [](const T* base, std::size_t q) -> V { return *reinterpret_cast<const V*>(base + q); };
    auto at = [](T* base, std::size_t q) -> V& { return *reinterpret_cast<V*>(base + q); };
    for (std::size_t q = q0; q < q1; q += Vec<T>::width) {
        const V z0 = ld(Z, q), D0 = ld(Vv, q) - ld(U, q), o0 = ld(G, q);
        V zb = D0 * o0, db = z0 * o0;
        for (int f = 0; f < F; ++f) {
            const std::size_t o = (1 + f) * blk + q;
            zb += (ld(Vv, o) - ld(U, o)) * ld(G, o);
            db += ld(Z, o) * ld(G, o);
        }
        for (int p = 0; p < P; ++p) {
            const std::size_t o = (1 + F + p) * blk + q;
            zb += (ld(Vv, o) - ld(U, o)) * ld(G, o);
            db += ld(Z, o) * ld(G, o);
        }
        at(Ub, q) += o0 - db;
        at(Vb, q) += db;
        at(G, q) = zb;
        for (int f = 0; f < F; ++f) {
            const std::size_t o = (1 + f) * blk + q;
            const V of = ld(G, o);
            V zf = D0 * of, df = z0 * of;
            for (int p = 0; p < P; ++p) {
                const int a = pairs[p][0], b = pairs[p][1];
                if (a != f && b != f) continue;
                const std::size_t op = (1 + F + p) * blk + q;
                const V gp = ld(G, op);
                // x̄_a += c_b ō_ab and x̄_b += c_a ō_ab: for a == b == f both apply.
                if (a == f) {
                    const std::size_t ob = (1 + b) * blk + q;
                    zf += (ld(Vv, ob) - ld(U, ob)) * gp;
                    df += ld(Z, ob) * gp;
                }
                if (b == f) {
                    const std::size_t oa = (1 + a) * blk + q;
                    zf += (ld(Vv, oa) - ld(U, oa)) * gp;
                    df += ld(Z, oa) * gp;
                }
            }
            at(Ub, o) += of - df;
            at(Vb, o) += df;
            at(G, o) = zf;
        }
        for (int p = 0; p < P; ++p) {
            const std::size_t o = (1 + F + p) * blk + q;
            const V op = ld(G, o);
            const V dp = z0 * op;
            at(Ub, o) += op - dp;
            at(Vb, o) += dp;
            at(G, o) = D0 * op;
        }
    }
}

}  // namespace pinncore
