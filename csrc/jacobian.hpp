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
#include <type_traits>
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

    // ---- The parameter-space normal equations, accumulated over point chunks (LM at large N).
    // One source is one term's rows: table mode (adjoint == nullptr; residuals from the term's
    // table, scaled by `scale`) or adjoint mode (K output-jet adjoints K x S x N x m with the
    // scale folded in, residual values given in r, K x rows_per_component). paired = M > 0:
    // row j is row(x_j) − row(x_{M+j}) (a periodic condition's point pairs). `extra` (rows x
    // n_extra, row c*n + i, or null = zeros) holds the Jacobian columns of parameters that are
    // not the network's (appended after θ: unknown PDE coefficients).
    struct Source {
        const Term<T>* term = nullptr;
        const T* scale = nullptr;
        const T* adjoint = nullptr;
        int K = 0, paired = 0;
        const double* r = nullptr;
        const double* extra = nullptr;
    };
    // Column-major BLAS dsyrk (scipy.linalg.cython_blas's, i.e. the BLAS NumPy uses): C := αAAᵀ + βC.
    using Syrk = void (*)(const char*, const char*, const int*, const int*, const double*, const double*, const int*,
                          const double*, double*, const int*);

    // A (Pt x Pt, Pt = n_params + n_extra, full symmetric) = JᵀJ, g (Pt) = Jᵀr, returns rᵀr;
    // r (Σ K·rows, may be null) receives the residual vector. J is never held: each chunk of at
    // most chunk_rows rows is written (threads over its points), then folded into A by ONE
    // symmetric rank-k update (BLAS syrk at the matmul rate: N·Pt² flops for the upper
    // triangle) and into g by a row-wise axpy. Fixed chunks in fixed order: reproducible.
    static double normal(M& m, const T* params, const std::vector<Source>& src, int n_extra, int chunk_rows, Syrk syrk,
                         double* A, double* g, T* r, int nthreads) {
        std::lock_guard<std::mutex> guard(m.mutex_);
        m.pack(params);
        const int P = static_cast<int>(m.n_params()), Pt = P + n_extra;
        std::memset(A, 0, sizeof(double) * Pt * Pt);
        std::memset(g, 0, sizeof(double) * Pt);
        chunk_rows = std::max(chunk_rows, 1);
        int kmax = 1;
        for (const Source& s : src) kmax = std::max(kmax, s.K);
        const std::size_t cap = static_cast<std::size_t>(std::max(chunk_rows, kmax));
        std::vector<double> Bc(cap * Pt), rc(cap);
        // rows in T for float, and the second half of a pair (subtracted)
        std::vector<T> Tb, Tb2, rt(cap), rt2(cap);
        double rr = 0;
        std::size_t row0 = 0;
        for (const Source& s : src) {
            const Term<T>& tm = *s.term;
            const int n = s.paired ? s.paired : tm.n, K = s.K;
            const int step = std::max(1, chunk_rows / std::max(K, 1));
            for (int b = 0; b < n; b += step) {
                const int e = std::min(n, b + step), nb = e - b, rows = K * nb;
                T* Jw;
                std::size_t ldw;
                if constexpr (std::is_same<T, double>::value) {
                    Jw = Bc.data();
                    ldw = Pt;
                } else {
                    Tb.resize(cap * P);
                    Jw = Tb.data();
                    ldw = P;
                }
                rows_packed(m, tm, b, e, s.scale, s.adjoint, K, rt.data(), Jw, ldw, nthreads);
                if (s.paired) {
                    Tb2.resize(cap * P);
                    rows_packed(m, tm, s.paired + b, s.paired + e, s.scale, s.adjoint, K, rt2.data(), Tb2.data(), P, nthreads);
                    for (int q = 0; q < rows; ++q) {
                        T* dst = Jw + q * ldw;
                        const T* sub = Tb2.data() + static_cast<std::size_t>(q) * P;
                        for (int p = 0; p < P; ++p) dst[p] -= sub[p];
                        rt[q] -= rt2[q];
                    }
                }
                for (int q = 0; q < rows; ++q) {
                    double* dst = Bc.data() + static_cast<std::size_t>(q) * Pt;
                    if constexpr (!std::is_same<T, double>::value) {
                        const T* srcrow = Jw + static_cast<std::size_t>(q) * P;
                        for (int p = 0; p < P; ++p) dst[p] = double(srcrow[p]);
                    }
                    const int c = q / nb, i = b + q % nb;
                    const std::size_t gi = static_cast<std::size_t>(c) * n + i;  // row within the source
                    for (int x = 0; x < n_extra; ++x) dst[P + x] = s.extra ? s.extra[gi * n_extra + x] : 0.0;
                    rc[q] = s.r ? s.r[gi] : double(rt[q]);
                    if (r) r[row0 + gi] = T(rc[q]);
                }
                // g += Bᵀ rc (row-wise axpy, fixed order); rr += rcᵀ rc
                for (int q = 0; q < rows; ++q) {
                    const double* bq = Bc.data() + static_cast<std::size_t>(q) * Pt;
                    const double rq = rc[q];
                    for (int p = 0; p < Pt; ++p) g[p] += bq[p] * rq;
                    rr += rq * rq;
                }
                // The row-major chunk (rows x Pt) is column-major Bᶜ (Pt x rows): A += Bᶜ Bᶜᵀ.
                const char uplo = 'U', trans = 'N';
                const double one = 1.0;
                syrk(&uplo, &trans, &Pt, &rows, &one, Bc.data(), &Pt, &one, A, &Pt);
            }
            row0 += static_cast<std::size_t>(K) * n;
        }
        // syrk filled the column-major upper triangle: mirror it (A is symmetric, full).
        for (int c = 0; c < Pt; ++c)
            for (int q = 0; q < c; ++q) A[static_cast<std::size_t>(q) * Pt + c] = A[static_cast<std::size_t>(c) * Pt + q];
        return rr;
    }

  private:
    // A parameter direction in the kernel's packed layout (W^T per layer, zero padded).
    struct Packed {
        std::vector<Buffer<T>> WT, B;
    };

    // Writes each point's own parameter gradient into its J row, for one (component, chunk):
    // the kernel's backward visitor (Model::backward_chunk) hands over every parameter block —
    // the dense chain, the modified MLP's encoders U and V, a trainable embedding's B — so one
    // writer serves every architecture. Block j (W_j: out x in row-major, then b_j): point i's
    // gradient is Σ_s z̄_s,i in_s,iᵀ and z̄_0,i for the bias (the per-point term of the kernel's
    // gW += Σ_i Σ_s z̄_s in_sᵀ); B's is 2π (ā_0 x̂ᵀ + Σ_f ā_f scale_k e_kᵀ) (embedding.hpp).
    struct RowVisitor {
        static constexpr int kMaxRegStreams = 16;
        const M* m = nullptr;
        const Term<T>* tm = nullptr;
        T* J = nullptr;          // row of (component k, point begin)
        std::size_t ldj = 0;
        int begin = 0, i0 = 0, cn = 0;

        T* row(int i) const { return J + static_cast<std::size_t>(i0 + i - begin) * ldj; }

        void block(int j, const T* G, const T* in) const {
            const StreamSpec& sp = tm->streams;
            const int S = sp.S(), F = sp.F(), nin = m->iw_[j], out = m->ow_[j], ldo = m->op_[j];
            const std::size_t wo = m->w_off_[j], bo = m->b_off_[j];
            for (int i = 0; i < cn; ++i) {
                T* r = row(i);
                T* Wr = r + wo;
                const T* g0 = G + static_cast<std::size_t>(i) * ldo;
                std::memcpy(r + bo, g0, sizeof(T) * out);  // ∂/∂b = z̄ of the value stream
                if (!in) {
                    // Raw input jet (x̂, scale_k e_k, 0): Σ_s z̄_s h_sᵀ = z̄_0 x̂ᵀ + Σ_f scale_k z̄_f e_kᵀ.
                    const T* x = tm->xhat.data() + static_cast<std::size_t>(i0 + i) * tm->d;
                    for (int o = 0; o < out; ++o)
                        for (int k = 0; k < nin; ++k) Wr[static_cast<std::size_t>(o) * nin + k] = g0[o] * x[k];
                    for (int f = 0; f < F; ++f) {
                        const int k = sp.first[f];
                        const T sc = tm->scale[k];
                        const T* gf = G + (static_cast<std::size_t>(1 + f) * cn + i) * ldo;
                        for (int o = 0; o < out; ++o) Wr[static_cast<std::size_t>(o) * nin + k] += sc * gf[o];
                    }
                    continue;
                }
                const int ldi = m->ip_[j];
                if (S <= kMaxRegStreams) {
                    using V = typename Vec<T>::type;
                    constexpr int vw = Vec<T>::width;
                    // Each entry once: Σ_s over the streams in registers, one store (the
                    // pass-per-stream form re-reads and re-writes the row S times).
                    const T* hs[kMaxRegStreams];
                    T gs[kMaxRegStreams];
                    for (int s = 0; s < S; ++s) hs[s] = in + (static_cast<std::size_t>(s) * cn + i) * ldi;
                    for (int o = 0; o < out; ++o) {
                        for (int s = 0; s < S; ++s) gs[s] = G[(static_cast<std::size_t>(s) * cn + i) * ldo + o];
                        T* dst = Wr + static_cast<std::size_t>(o) * nin;
                        // Whole vectors of k: the input rows are padded to the lanes (zeros
                        // past nin, 64-byte aligned); V's 8-byte alignment allows the unaligned
                        // row of J. The tail stores only the nin - k real entries.
                        int k = 0;
                        for (; k < nin; k += vw) {
                            V acc = gs[0] * *reinterpret_cast<const V*>(hs[0] + k);
                            for (int s = 1; s < S; ++s) acc += gs[s] * *reinterpret_cast<const V*>(hs[s] + k);
                            if (k + vw <= nin) {
                                *reinterpret_cast<V*>(dst + k) = acc;
                            } else {
                                for (int q = 0; q < nin - k; ++q) dst[k + q] = acc[q];
                            }
                        }
                    }
                    continue;
                }
                for (int o = 0; o < out; ++o) {
                    T* dst = Wr + static_cast<std::size_t>(o) * nin;
                    const T g = g0[o];
                    const T* h0 = in + static_cast<std::size_t>(i) * ldi;
                    for (int k = 0; k < nin; ++k) dst[k] = g * h0[k];
                    for (int s = 1; s < S; ++s) {
                        const T gs = G[(static_cast<std::size_t>(s) * cn + i) * ldo + o];
                        const T* hs = in + (static_cast<std::size_t>(s) * cn + i) * ldi;
                        for (int k = 0; k < nin; ++k) dst[k] += gs * hs[k];
                    }
                }
            }
        }

        void embed(const T* A) const {
            const int Mf = m->arch_.features, d = tm->d, ldA = m->padM_;
            const StreamSpec& sp = tm->streams;
            const int F = sp.F();
            const std::size_t blkA = static_cast<std::size_t>(cn) * ldA;
            const T twopi = T(2 * M_PI);
            for (int i = 0; i < cn; ++i) {
                T* gB = row(i) + m->B_off_;
                const T* x = tm->xhat.data() + static_cast<std::size_t>(i0 + i) * d;
                const T* a0 = A + static_cast<std::size_t>(i) * ldA;
                for (int q = 0; q < Mf; ++q)
                    for (int k = 0; k < d; ++k) {
                        T v = a0[q] * x[k];
                        for (int f = 0; f < F; ++f)
                            if (sp.first[f] == k) v += A[(1 + f) * blkA + static_cast<std::size_t>(i) * ldA + q] * tm->scale[k];
                        gB[static_cast<std::size_t>(q) * d + k] = twopi * v;
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
        if (m.emb_) embed_phases(m.arch_, m.omega_.data(), m.d_, tm.scale.data(), tm.streams.first, w.om, w.af);
        SweepOut<T> none;
        RowVisitor vis;
        vis.m = &m;
        vis.tm = &tm;
        vis.ldj = ldj;
        vis.begin = begin;
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
                vis.J = J + static_cast<std::size_t>(k) * nb * ldj;
                vis.i0 = i0;
                vis.cn = cn;
                m.backward_chunk(tm, cn, w, vis);
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
