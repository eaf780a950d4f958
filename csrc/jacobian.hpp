// pinncore: the residual Jacobian J = ∂r/∂θ from the jet kernel. Pure C++ (no Python).
//
// A residual row is one (component c, point i) of a term, scaled by s_i (the caller passes
// s_i = sqrt(λ w_i / N) so that ||r||² is the weighted loss). Each point's residuals depend
// only on that point's jets, so ONE backward sweep per component, seeded with the table
// adjoint ∂r_c/∂J at every point of a chunk at once, leaves in each layer the per-point z̄_s;
// instead of summing the parameter gradient over points (the kernel's gW += Σ z̄_s h_sᵀ) the
// row writer below stores each point's own outer product Σ_s z̄_s,i h_s,iᵀ — the quantity
// whose squared norm the Gram identity of layer_norms gives (docs/design.md §2). The sweep is
// the kernel's own forward_chunk / table_adjoint / backward_chunk (through its LayerHook), so
// it follows the kernel's layers; only the per-point product is written here.
//
// The matrix-free products: Jᵀu is the kernel's vector-Jacobian product with the output-jet
// adjoint Σ_c u_c ∂r_c/∂J; J v needs the derivative of the output jets along a parameter
// direction v, computed here by forward tangents through the jet pass (tangent()).
//
// Threads own fixed, contiguous point ranges and write disjoint rows, so every entry is
// computed by the same arithmetic whatever the thread count: results are bitwise reproducible.
#pragma once

#include <cstring>
#include <exception>
#include <vector>

#include "kernel.hpp"

namespace pinncore {

template <class T> class Jacobian {
  public:
    using M = Model<T>;
    using Work = typename M::Work;

    // Rows of one term for its points [begin, end) (nb = end - begin), row c*nb + (i - begin):
    //  * table mode (adjoint == nullptr): the term's polynomial table, K = components; the
    //    residual values s_i r_c,i go to r (K*nb) and the rows s_i ∂r_c,i/∂θ to J;
    //  * adjoint mode: K output-jet adjoints (K x S x n x m, the caller's ∂r_k/∂J for a
    //    non-polynomial residual), rows ∂<adjoint_k,i, jets_i>/∂θ (scale ignored, r unused).
    // J rows have leading dimension ldj (>= n_params). Serialised per model.
    static void rows(M& m, const T* params, const Term<T>& tm, int begin, int end, const T* scale, const T* adjoint,
                     int K, T* r, T* J, std::size_t ldj, int nthreads) {
        std::lock_guard<std::mutex> guard(m.mutex_);
        m.pack(params);
        rows_packed(m, tm, begin, end, scale, adjoint, K, r, J, ldj, nthreads);
    }

    // Several terms stacked (table mode), each over all its points: J rows term after term
    // (J == nullptr: the residuals only).
    static void stacked(M& m, const T* params, const std::vector<const Term<T>*>& terms,
                        const std::vector<const T*>& scales, T* r, T* J, std::size_t ldj, int nthreads) {
        std::lock_guard<std::mutex> guard(m.mutex_);
        m.pack(params);
        std::size_t row = 0;
        for (std::size_t a = 0; a < terms.size(); ++a) {
            const Term<T>& tm = *terms[a];
            rows_packed(m, tm, 0, tm.n, scales[a], nullptr, tm.table.components, r + row, J ? J + row * ldj : nullptr, ldj,
                        nthreads);
            row += static_cast<std::size_t>(tm.table.components) * tm.n;
        }
    }

    // Output jets (S x n x m, may be null) and their derivative along v (S x n x m).
    static void tangent(M& m, const T* params, const T* v, const Term<T>& tm, T* jets, T* tangents, int nthreads) {
        std::lock_guard<std::mutex> guard(m.mutex_);
        m.pack(params);
        Packed pv;
        pack_direction(m, v, pv);
        run_ranges(m, tm, 0, tm.n, nthreads, 1.0, [&](Work& w, int b, int e) { tangent_range(m, tm, pv, w, b, e, jets, tangents); });
    }

  private:
    // A parameter direction in the kernel's packed layout (W^T per layer, zero padded).
    struct Packed {
        std::vector<Buffer<T>> WT, B;
    };

    // Writes the per-point parameter gradient of every layer into the J rows of one
    // (component, chunk). Layer parameters: W_l (out x in, row-major) then b_l.
    struct RowWriter : M::LayerHook {
        const M* m = nullptr;
        T* J = nullptr;          // row of (component k, point begin)
        std::size_t ldj = 0;
        int begin = 0;

        void layer(const Term<T>& tm, int l, int i0, int cn, const T* G, const Work& w) override {
            const StreamSpec& sp = tm.streams;
            const int S = sp.S(), F = sp.F(), in = m->widths_[l - 1], out = m->widths_[l], ldo = m->pad_[l];
            const std::size_t wo = m->w_off_[l], bo = m->b_off_[l];
            for (int i = 0; i < cn; ++i) {
                T* row = J + static_cast<std::size_t>(i0 + i - begin) * ldj;
                T* Wr = row + wo;
                const T* g0 = G + static_cast<std::size_t>(i) * ldo;
                std::memcpy(row + bo, g0, sizeof(T) * out);  // ∂/∂b = z̄ of the value stream
                if (l == 1) {
                    // Input jet (x̂, scale_k e_k, 0): Σ_s z̄_s h_sᵀ = z̄_0 x̂ᵀ + Σ_f scale_k z̄_f e_kᵀ.
                    const T* x = tm.xhat.data() + static_cast<std::size_t>(i0 + i) * tm.d;
                    for (int o = 0; o < out; ++o)
                        for (int k = 0; k < tm.d; ++k) Wr[static_cast<std::size_t>(o) * in + k] = g0[o] * x[k];
                    for (int f = 0; f < F; ++f) {
                        const int k = sp.first[f];
                        const T sc = tm.scale[k];
                        const T* gf = G + (static_cast<std::size_t>(1 + f) * cn + i) * ldo;
                        for (int o = 0; o < out; ++o) Wr[static_cast<std::size_t>(o) * in + k] += sc * gf[o];
                    }
                    continue;
                }
                const int ldi = m->pad_[l - 1];
                const T* H = w.H[l - 1].data();
                for (int o = 0; o < out; ++o) {
                    T* dst = Wr + static_cast<std::size_t>(o) * in;
                    const T g = g0[o];
                    const T* h0 = H + static_cast<std::size_t>(i) * ldi;
                    for (int k = 0; k < in; ++k) dst[k] = g * h0[k];
                    for (int s = 1; s < S; ++s) {
                        const T gs = G[(static_cast<std::size_t>(s) * cn + i) * ldo + o];
                        const T* hs = H + (static_cast<std::size_t>(s) * cn + i) * ldi;
                        for (int k = 0; k < in; ++k) dst[k] += gs * hs[k];
                    }
                }
            }
        }
    };

    // Fixed partition of [begin, end) over threads (as Model::sweep): thread t owns a
    // contiguous range and work_[t]. `cost` scales the flop estimate that decides threading.
    template <class Fn> static void run_ranges(M& m, const Term<T>& tm, int begin, int end, int nthreads, double cost, Fn&& fn) {
        const int n = end - begin;
        if (n <= 0) return;
        double flops = 0;
        for (int l = 1; l <= m.L_; ++l) flops += 2.0 * m.widths_[l] * m.widths_[l - 1];
        flops *= double(n) * tm.streams.S() * cost;
        int nt = std::max(1, std::min(nthreads, n));
        if (flops < m.min_parallel_flops) nt = 1;
        if (static_cast<int>(m.work_.size()) < nt) m.work_.resize(nt);
        if (nt == 1) {
            fn(m.work_[0], begin, end);
            return;
        }
        std::vector<std::exception_ptr> errors(nt);
        m.pool_.run(nt, [&](int t) {
            try {
                fn(m.work_[t], begin + int(std::size_t(n) * t / nt), begin + int(std::size_t(n) * (t + 1) / nt));
            } catch (...) {
                errors[t] = std::current_exception();
            }
        });
        for (auto& e : errors)
            if (e) std::rethrow_exception(e);
    }

    static void rows_packed(M& m, const Term<T>& tm, int begin, int end, const T* scale, const T* adjoint, int K, T* r,
                            T* J, std::size_t ldj, int nthreads) {
        const int nb = end - begin;
        // A row costs about one backward sweep of its point: K backward passes per point.
        run_ranges(m, tm, begin, end, nthreads, J ? 1.0 + 2.0 * K : 1.0, [&](Work& w, int b, int e) {
            rows_range(m, tm, begin, nb, scale, adjoint, K, r, J, ldj, w, b, e);
        });
    }

    static void rows_range(M& m, const Term<T>& tm, int begin, int nb, const T* scale, const T* adjoint, int K, T* r, T* J,
                           std::size_t ldj, Work& w, int b, int e) {
        const int S = tm.streams.S(), ldo = m.pad_[m.L_], mo = m.widths_[m.L_];
        const int cn_max = m.chunk_for(S);
        m.prepare(w, S, cn_max, tm.table.components);
        const int nchunks = std::max(1, (e - b + cn_max - 1) / cn_max);
        const int cn_eq = (e - b + nchunks - 1) / nchunks;
        const std::size_t N = static_cast<std::size_t>(tm.n);
        SweepOut<T> none;
        RowWriter hook;
        hook.m = &m;
        hook.ldj = ldj;
        hook.begin = begin;
        for (int i0 = b; i0 < e; i0 += cn_eq) {
            const int cn = std::min(cn_eq, e - i0);
            m.forward_chunk(tm, i0, cn, w);
            if (!J) {  // residuals only (table mode): no backward sweep
                m.table_adjoint(tm, i0, cn, w, Mode::NtkTable, -1, none);
                for (int k = 0; k < K; ++k)
                    for (int i = 0; i < cn; ++i)
                        r[static_cast<std::size_t>(k) * nb + i0 + i - begin] =
                            T(w.rsum[static_cast<std::size_t>(k) * cn + i]) * (scale ? scale[i0 + i] : T(1));
                continue;
            }
            for (int k = 0; k < K; ++k) {
                T* G = w.gbar0.data();
                if (adjoint) {
                    const T* a = adjoint + static_cast<std::size_t>(k) * S * N * mo;
                    for (int s = 0; s < S; ++s)
                        for (int i = 0; i < cn; ++i) {
                            T* g = G + (static_cast<std::size_t>(s) * cn + i) * ldo;
                            std::memset(g, 0, sizeof(T) * ldo);
                            std::memcpy(g, a + (static_cast<std::size_t>(s) * N + i0 + i) * mo, sizeof(T) * mo);
                        }
                } else {
                    // G = ∂r_k/∂J at every point of the chunk, then scaled per point by s_i
                    // (the backward sweep is linear, so the rows come out scaled).
                    m.table_adjoint(tm, i0, cn, w, Mode::NtkTable, k, none);
                    for (int s = 0; s < S; ++s)
                        for (int i = 0; i < cn; ++i) {
                            T* g = G + (static_cast<std::size_t>(s) * cn + i) * ldo;
                            const T si = scale ? scale[i0 + i] : T(1);
                            for (int o = 0; o < ldo; ++o) g[o] *= si;
                        }
                    const double* rs = w.rsum.data() + static_cast<std::size_t>(k) * cn;
                    for (int i = 0; i < cn; ++i)
                        r[static_cast<std::size_t>(k) * nb + i0 + i - begin] = T(rs[i]) * (scale ? scale[i0 + i] : T(1));
                }
                hook.J = J + static_cast<std::size_t>(k) * nb * ldj;
                m.backward_chunk(tm, i0, cn, w, false, nullptr, &hook);
            }
        }
    }

    static void pack_direction(const M& m, const T* v, Packed& pv) {
        pv.WT.resize(m.L_ + 1);
        pv.B.resize(m.L_ + 1);
        for (int l = 1; l <= m.L_; ++l) {
            const int out = m.widths_[l], in = m.widths_[l - 1], po = m.pad_[l];
            pv.WT[l].reserve(static_cast<std::size_t>(m.pad_[l - 1]) * po);
            pv.B[l].reserve(po);
            const T* W = v + m.w_off_[l];
            T* WT = pv.WT[l].data();
            for (int o = 0; o < out; ++o)
                for (int k = 0; k < in; ++k) WT[static_cast<std::size_t>(k) * po + o] = W[static_cast<std::size_t>(o) * in + k];
            std::memcpy(pv.B[l].data(), v + m.b_off_[l], sizeof(T) * out);
        }
    }

    // Tangent of the activation jet map (in place on X = ż, using the stored forward jets;
    // the kernel keeps s1 = sech² in the value row of Z). From h = tanh z, h_f = s1 z_f,
    // h_ab = s2 z_a z_b + s1 z_ab with ṡ1 = s2 ż, ṡ2 = s3 ż (s2 = -2 h s1, s3 = -2 s1 (1 - 3h²)):
    //   ḣ = s1 ż      ḣ_f = s2 ż z_f + s1 ż_f
    //   ḣ_ab = s3 ż z_a z_b + s2 (ż_a z_b + z_a ż_b + ż z_ab) + s1 ż_ab
    // Pairs first, then first order, then the value: each update reads only rows not yet overwritten.
    static void tangent_activate(const M& m, Work& w, int l, const StreamSpec& sp, int cn, T* X) {
        using V = typename Vec<T>::type;
        const int F = sp.F(), P = sp.P();
        const std::size_t blk = static_cast<std::size_t>(cn) * m.pad_[l];
        T* Z = w.Z[l].data();
        T* H = w.H[l].data();
        auto at = [](T* base, std::size_t q) -> V& { return *reinterpret_cast<V*>(base + q); };
        for (std::size_t q = 0; q < blk; q += Vec<T>::width) {
            const V s1 = at(Z, q), h = at(H, q), zd = at(X, q);
            const V s2 = T(-2) * h * s1;
            const V s3 = T(-2) * s1 * (T(1) - T(3) * h * h);
            for (int p = 0; p < P; ++p) {
                const std::size_t o = (1 + F + p) * blk + q;
                const std::size_t oa = (1 + sp.pairs[p][0]) * blk + q, ob = (1 + sp.pairs[p][1]) * blk + q;
                const V za = at(Z, oa), zb = at(Z, ob);
                at(X, o) = s3 * zd * za * zb + s2 * (at(X, oa) * zb + za * at(X, ob) + zd * at(Z, o)) + s1 * at(X, o);
            }
            for (int f = 0; f < F; ++f) {
                const std::size_t o = (1 + f) * blk + q;
                at(X, o) = s2 * zd * at(Z, o) + s1 * at(X, o);
            }
            at(X, q) = s1 * zd;
        }
    }

    static void tangent_range(M& m, const Term<T>& tm, const Packed& pv, Work& w, int b, int e, T* jets, T* tangents) {
        const StreamSpec& sp = tm.streams;
        const int S = sp.S(), F = sp.F(), L = m.L_, mo = m.widths_[L], ldL = m.pad_[L];
        const int cn_max = m.chunk_for(S);
        m.prepare(w, S, cn_max, tm.table.components);
        const int nchunks = std::max(1, (e - b + cn_max - 1) / cn_max);
        const int cn_eq = (e - b + nchunks - 1) / nchunks;
        const std::size_t N = static_cast<std::size_t>(tm.n);
        for (int i0 = b; i0 < e; i0 += cn_eq) {
            const int cn = std::min(cn_eq, e - i0), R = S * cn;
            m.forward_chunk(tm, i0, cn, w);
            T* X = w.gbar0.data();
            T* Y = w.gbar1.data();
            // Layer 1: the input jet does not depend on θ, so ż = V̇ h_in (+ ḃ on the value).
            {
                const int ld = m.pad_[1];
                const T* VT = pv.WT[1].data();
                for (int i = 0; i < cn; ++i) {
                    T* z = X + static_cast<std::size_t>(i) * ld;
                    std::memcpy(z, pv.B[1].data(), sizeof(T) * ld);
                    const T* x = tm.xhat.data() + static_cast<std::size_t>(i0 + i) * tm.d;
                    for (int k = 0; k < tm.d; ++k)
                        for (int o = 0; o < ld; ++o) z[o] += x[k] * VT[static_cast<std::size_t>(k) * ld + o];
                }
                for (int f = 0; f < F; ++f) {
                    const int k = sp.first[f];
                    const T sc = tm.scale[k];
                    for (int i = 0; i < cn; ++i) {
                        T* z = X + (static_cast<std::size_t>(1 + f) * cn + i) * ld;
                        for (int o = 0; o < ld; ++o) z[o] = sc * VT[static_cast<std::size_t>(k) * ld + o];
                    }
                }
                if (sp.P() > 0)
                    std::memset(X + static_cast<std::size_t>(1 + F) * cn * ld, 0, sizeof(T) * static_cast<std::size_t>(sp.P()) * cn * ld);
                if (L > 1) tangent_activate(m, w, 1, sp, cn, X);
            }
            // Layer l: ż_l = W_l ḣ_{l-1} + V̇_l h_{l-1} (+ ḃ_l on the value stream).
            for (int l = 2; l <= L; ++l) {
                const int ldi = m.pad_[l - 1], ldo = m.pad_[l];
                std::swap(X, Y);
                gemm<T>(R, gemm_cols<T>(m.widths_[l]), m.widths_[l - 1], Y, ldi, 1, m.WT_[l].data(), ldo, X, ldo, false);
                gemm<T>(R, gemm_cols<T>(m.widths_[l]), m.widths_[l - 1], w.H[l - 1].data(), ldi, 1, pv.WT[l].data(), ldo, X, ldo, true);
                const T* bd = pv.B[l].data();
                for (int i = 0; i < cn; ++i) {
                    T* z = X + static_cast<std::size_t>(i) * ldo;
                    for (int o = 0; o < ldo; ++o) z[o] += bd[o];
                }
                if (l < L) tangent_activate(m, w, l, sp, cn, X);
            }
            for (int s = 0; s < S; ++s)
                for (int i = 0; i < cn; ++i) {
                    const std::size_t src = (static_cast<std::size_t>(s) * cn + i) * ldL;
                    const std::size_t dst = (static_cast<std::size_t>(s) * N + i0 + i) * mo;
                    std::memcpy(tangents + dst, X + src, sizeof(T) * mo);
                    if (jets) std::memcpy(jets + dst, w.out.data() + src, sizeof(T) * mo);
                }
        }
    }
};

}  // namespace pinncore
