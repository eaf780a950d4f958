// pinncore: the jet kernel. Pure C++ (no Python): a tanh MLP's forward pass carrying input
// derivatives ("jets"), the polynomial residual tables of PINN loss terms, and the reverse
// sweep that returns parameter gradients and per-point squared gradient norms (NTK diagonal).
//
// Maths: docs/design.md §2. Layout, chosen so every layer is ONE matrix product:
//   * a chunk of `cn` points with S streams is a row block of R = S*cn rows, stream-major
//     (row s*cn + i is stream s of point i); columns are units, padded to the vector width;
//   * stream 0 is the value, streams 1..F first-order directions, then P second-order pairs;
//   * weights are packed per call into W^T (in x out_pad) for the forward product and into
//     W (out_pad x in_pad) for the adjoint product; padding is zero, so padded units stay zero.
// Points are processed in cache-sized chunks so that all stored jets of a chunk stay in L2,
// and each thread owns a contiguous, fixed range of points and its own accumulators; the
// accumulators are reduced in thread order, so results are identical run to run.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include <unistd.h>  // getpid: the worker pool must not wait for threads lost in a fork()

#include "simd.hpp"

namespace pinncore {

// Which derivative streams travel with the value.
struct StreamSpec {
    std::vector<int> first;                 // input index of each first-order stream
    std::vector<std::array<int, 2>> pairs;  // second-order pairs as indices into `first`
    int F() const { return static_cast<int>(first.size()); }
    int P() const { return static_cast<int>(pairs.size()); }
    int S() const { return 1 + F() + P(); }
};

// A residual r_c(point) = sum_m coef[m, point] * prod_{f in m} J[stream_f, output_f](point),
// the lowered form of a PINN loss term (docs/design.md §3).
template <class T> struct Table {
    int components = 0;
    std::vector<int> comp;        // M: component of each monomial
    std::vector<int> fac_off;     // M+1: factor ranges
    std::vector<int> fac_stream;  // factor stream index
    std::vector<int> fac_out;     // factor output index
    std::vector<T> coef;          // M x N, row-major
    int monomials() const { return static_cast<int>(comp.size()); }
};

// A set of points with the streams they need and (optionally) the residual table.
template <class T> struct Term {
    int n = 0, d = 0;
    std::vector<T> xhat;   // n x d network inputs (already scaled to the network's range)
    std::vector<T> scale;  // d: dx_hat/dx, folded into the first-order seeds (chain rule)
    StreamSpec streams;
    Table<T> table;
};

// Per-call outputs of one sweep over a term.
template <class T> struct SweepOut {
    bool want_grad = false;
    bool want_norms = false;
    T* grad = nullptr;               // n_params, overwritten
    double* loss = nullptr;          // sum_c mean_i w_i r_c,i^2
    T* residuals = nullptr;          // C x n or null
    T* norms = nullptr;              // n, per-point squared gradient norms (overwritten)
    const T* point_weights = nullptr;  // n or null (= 1)
    const T* adjoint = nullptr;      // S x n x m output-jet adjoints (mode Adjoint)
    T* jets = nullptr;               // S x n x m output jets (mode Forward)
};

enum class Mode { Forward, Adjoint, Loss, NtkTable };

// A small persistent pool: run(n, fn) calls fn(0) on the caller and fn(1..n-1) on workers,
// and returns when all are done. Each Model owns one (no state shared between models);
// which thread runs which index is fixed, so with a fixed partition of the points the
// results are deterministic. Spawning threads per call cost ~30-60 µs, which is the whole
// compute at N ~ 50; a parked worker here wakes in a few µs. Workers spin briefly after a
// job (training loops call back to back) and then block on a condition variable.
class WorkerPool {
  public:
    WorkerPool() = default;
    WorkerPool(const WorkerPool&) = delete;
    WorkerPool& operator=(const WorkerPool&) = delete;
    ~WorkerPool() { stop(); }

    template <class F> void run(int n, F&& fn) {
        if (n <= 1) {
            fn(0);
            return;
        }
        if (owner_ != ::getpid()) {
            // A fork()ed child inherits the thread objects but not the threads: let them go.
            for (auto& t : threads_) t.detach();
            threads_.clear();
        }
        if (static_cast<int>(threads_.size()) < n - 1) {
            stop();
            start(n - 1);
        }
        Job job = [&fn](int t) { fn(t); };
        {
            std::lock_guard<std::mutex> lk(m_);
            job_ = &job;
            active_ = n;
            pending_.store(static_cast<int>(threads_.size()), std::memory_order_relaxed);
            gen_.fetch_add(1, std::memory_order_release);
        }
        cv_work_.notify_all();
        fn(0);
        // Wait: poll (the workers usually finish about when we do), then block.
        if (!spin_until([&] { return pending_.load(std::memory_order_acquire) == 0; }, 1000.0)) {
            std::unique_lock<std::mutex> lk(m_);
            cv_done_.wait(lk, [&] { return pending_.load(std::memory_order_acquire) == 0; });
        }
        job_ = nullptr;
    }

  private:
    typedef std::function<void(int)> Job;
    std::vector<std::thread> threads_;
    std::mutex m_;
    std::condition_variable cv_work_, cv_done_;
    const Job* job_ = nullptr;
    int active_ = 0;
    std::atomic<std::uint64_t> gen_{0};
    std::atomic<int> pending_{0};
    std::atomic<bool> stop_{false};
    pid_t owner_ = 0;  // process that started the workers

    // How long a worker keeps polling for the next job before it parks (a training loop's
    // Python work between two calls is typically 10-100 µs).
    static constexpr double kIdleSpinUs = 200.0;

    // Poll `done` for up to max_us: ~20 µs of pause-spinning, then polling with yields so a
    // busy machine (other processes on a 2-core box) gets the core back. Parking right away
    // is expensive on a VM, where waking a halted vCPU can take ~100 µs.
    template <class P> static bool spin_until(P done, double max_us) {
        const auto t0 = std::chrono::steady_clock::now();
        for (int it = 1;; ++it) {
            if (done()) return true;
            if (it < 2048) {
#if defined(__x86_64__) || defined(__i386__)
                __builtin_ia32_pause();
#endif
                continue;
            }
            std::this_thread::yield();
            if ((it & 15) == 0 &&
                std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() > max_us)
                return done();
        }
    }

    void start(int nworkers) {
        stop_.store(false);
        owner_ = ::getpid();
        // The generation the workers start from is read before any job is posted, so a
        // worker that starts late cannot miss the first job.
        const std::uint64_t g0 = gen_.load();
        for (int i = 1; i <= nworkers; ++i) threads_.emplace_back([this, i, g0] { loop(i, g0); });
    }

    void stop() {
        if (threads_.empty()) return;
        if (owner_ != ::getpid()) {  // fork()ed child: there is nothing to join
            for (auto& t : threads_) t.detach();
            threads_.clear();
            return;
        }
        {
            std::lock_guard<std::mutex> lk(m_);
            stop_.store(true);
            gen_.fetch_add(1, std::memory_order_release);
        }
        cv_work_.notify_all();
        for (auto& t : threads_) t.join();
        threads_.clear();
    }

    void loop(int index, std::uint64_t seen) {
        for (;;) {
            if (!spin_until([&] { return gen_.load(std::memory_order_acquire) != seen; }, kIdleSpinUs)) {
                std::unique_lock<std::mutex> lk(m_);
                cv_work_.wait(lk, [&] { return gen_.load(std::memory_order_acquire) != seen; });
            }
            seen = gen_.load(std::memory_order_acquire);
            if (stop_.load()) return;
            if (index < active_) (*job_)(index);
            if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
                std::lock_guard<std::mutex> lk(m_);
                cv_done_.notify_one();
            }
        }
    }
};

template <class T> class Model {
  public:
    explicit Model(const std::vector<int>& widths) : widths_(widths) {
        if (widths_.size() < 2) throw std::invalid_argument("layers needs at least an input and an output width");
        for (int w : widths_)
            if (w < 1) throw std::invalid_argument("every layer width must be >= 1");
        L_ = static_cast<int>(widths_.size()) - 1;
        pad_.resize(L_ + 1);
        pad_[0] = widths_[0];
        for (int l = 1; l <= L_; ++l) pad_[l] = round_up_lanes<T>(widths_[l]);
        w_off_.resize(L_ + 1);
        b_off_.resize(L_ + 1);
        std::size_t off = 0;
        for (int l = 1; l <= L_; ++l) {
            w_off_[l] = off;
            off += static_cast<std::size_t>(widths_[l]) * widths_[l - 1];
            b_off_[l] = off;
            off += widths_[l];
        }
        n_params_ = off;
        WT_.resize(L_ + 1);
        Wp_.resize(L_ + 1);
        B_.resize(L_ + 1);
        for (int l = 1; l <= L_; ++l) {
            WT_[l].reserve(static_cast<std::size_t>(pad_[l - 1]) * pad_[l]);
            if (l >= 2) Wp_[l].reserve(static_cast<std::size_t>(pad_[l]) * pad_[l - 1]);
            B_[l].reserve(pad_[l]);
        }
    }

    std::size_t n_params() const { return n_params_; }
    int inputs() const { return widths_[0]; }
    int outputs() const { return widths_[L_]; }
    const std::vector<int>& widths() const { return widths_; }
    int chunk_points = 0;  // 0: automatic
    double min_parallel_flops = 2e6;  // below this a sweep runs on one thread

    // The one entry point: pack the parameters, then sweep each (term, out) pair.
    // Serialised per model (workspaces are per model), callable without the GIL.
    void run(const T* params, Mode mode, const std::vector<const Term<T>*>& terms,
             std::vector<SweepOut<T>>& outs, int nthreads) {
        std::lock_guard<std::mutex> guard(mutex_);
        pack(params);
        for (std::size_t t = 0; t < terms.size(); ++t) sweep(*terms[t], mode, outs[t], nthreads);
    }

  private:
    // A second-order pair that contains a first-order stream: offsets of the pair's block and
    // of the other factor's block, and the multiplicity (2 for a repeated direction).
    struct Link {
        std::size_t gp, zo;
        T c;
    };
    struct Work {
        std::vector<Buffer<T>> Z, H;  // per hidden layer: pre-activation jets (value row holds sech^2), activations
        Buffer<T> out, gbar0, gbar1, tmp;
        std::vector<Buffer<T>> gWT, gb;  // gradient accumulators, packed layout
        std::vector<double> rsum;        // residual scratch (C x cn)
        std::vector<Link> links;         // adjoint_activate: pairs touching each first-order stream
        std::vector<int> link_off;
        Buffer<T> r, dr;
        double loss = 0;
    };
    // Called by backward_chunk at every layer l with that layer's z̄ (G, R x pad[l]) and the
    // forward jets in w: extensions that need per-point parameter gradients instead of their
    // sum (the residual Jacobian, csrc/jacobian.hpp) read them here.
    struct LayerHook {
        virtual ~LayerHook() = default;
        virtual void layer(const Term<T>& tm, int l, int i0, int cn, const T* G, const Work& w) = 0;
    };
    template <class U> friend class Jacobian;

    std::vector<int> widths_, pad_;
    int L_ = 0;
    std::vector<std::size_t> w_off_, b_off_;
    std::size_t n_params_ = 0;
    std::vector<Buffer<T>> WT_, Wp_, B_;
    std::vector<Work> work_;
    std::mutex mutex_;
    WorkerPool pool_;  // declared last: destroyed (workers joined) first

    void pack(const T* params) {
        for (int l = 1; l <= L_; ++l) {
            const int out = widths_[l], in = widths_[l - 1], po = pad_[l];
            const T* W = params + w_off_[l];
            T* WT = WT_[l].data();
            for (int o = 0; o < out; ++o)
                for (int k = 0; k < in; ++k) WT[static_cast<std::size_t>(k) * po + o] = W[static_cast<std::size_t>(o) * in + k];
            if (l >= 2) {
                const int pi = pad_[l - 1];
                T* Wp = Wp_[l].data();
                for (int o = 0; o < out; ++o)
                    std::memcpy(Wp + static_cast<std::size_t>(o) * pi, W + static_cast<std::size_t>(o) * in, sizeof(T) * in);
            }
            std::memcpy(B_[l].data(), params + b_off_[l], sizeof(T) * out);
        }
    }

    int chunk_for(int S) const {
        if (chunk_points > 0) return chunk_points;
        // Keep the stored jets of a chunk (Z and H of every hidden layer) within ~384 KiB of L2.
        std::size_t per_point = 0;
        for (int l = 1; l <= L_; ++l) per_point += 2 * static_cast<std::size_t>(pad_[l]);
        per_point *= static_cast<std::size_t>(S) * sizeof(T);
        int c = static_cast<int>((384 * 1024) / std::max<std::size_t>(per_point, 1));
        return std::max(8, std::min(64, c));
    }

    void prepare(Work& w, int S, int cn, int C) {
        const std::size_t R = static_cast<std::size_t>(S) * cn;
        int maxpad = 0;
        for (int l = 1; l <= L_; ++l) maxpad = std::max(maxpad, pad_[l]);
        w.Z.resize(L_);
        w.H.resize(L_);
        for (int l = 1; l < L_; ++l) {
            w.Z[l].reserve(R * pad_[l]);
            w.H[l].reserve(R * pad_[l]);
        }
        w.out.reserve(R * pad_[L_]);
        w.gbar0.reserve(R * maxpad);
        w.gbar1.reserve(R * maxpad);
        w.tmp.reserve(3 * static_cast<std::size_t>(maxpad));
        w.gWT.resize(L_ + 1);
        w.gb.resize(L_ + 1);
        for (int l = 1; l <= L_; ++l) {
            w.gWT[l].reserve(static_cast<std::size_t>(pad_[l - 1]) * pad_[l]);
            w.gb[l].reserve(pad_[l]);
        }
        w.rsum.resize(static_cast<std::size_t>(std::max(C, 1)) * cn);
    }

    void zero_grad(Work& w) {
        for (int l = 1; l <= L_; ++l) {
            std::memset(w.gWT[l].data(), 0, sizeof(T) * pad_[l - 1] * pad_[l]);
            std::memset(w.gb[l].data(), 0, sizeof(T) * pad_[l]);
        }
    }

    // ---------------------------------------------------------------- forward
    // h = tanh z, h_f = s1 z_f, h_ab = s2 z_a z_b + s1 z_ab  (s1 = sech^2, s2 = -2 h s1).
    // One pass over whole vectors of the chunk: stream s of point i sits at the same offset
    // inside stream block s as the value does inside block 0, so every stream is addressed by
    // one block offset and the loop runs over cn*ld contiguous elements (no per-point short
    // loops, whose prologues/epilogues cost as much as the arithmetic at width 50).
    // `bias` (or null) is added to the value pre-activation first, saving a pass.
    void activate(Work& w, int l, const StreamSpec& sp, int cn, const T* bias) {
        using V = typename Vec<T>::type;
        constexpr int vw = Vec<T>::width;
        const int ld = pad_[l], F = sp.F(), P = sp.P();
        const std::size_t blk = static_cast<std::size_t>(cn) * ld;
        T* Z = w.Z[l].data();
        T* H = w.H[l].data();
        auto at = [](T* base, std::size_t q) -> V& { return *reinterpret_cast<V*>(base + q); };
        for (int i = 0; i < cn; ++i) {
            const std::size_t row = static_cast<std::size_t>(i) * ld;
            for (int k = 0; k < ld; k += vw) {
                const std::size_t q = row + k;
                V z = at(Z, q);
                if (bias) z += *reinterpret_cast<const V*>(bias + k);
                V s1;
                const V h = tanh_sech2_vec<T>(z, s1);
                at(H, q) = h;
                at(Z, q) = s1;  // the value pre-activation is not needed again: keep s1 there
                const V s2 = T(-2) * h * s1;
                for (int f = 0; f < F; ++f) {
                    const std::size_t o = (1 + f) * blk + q;
                    at(H, o) = s1 * at(Z, o);
                }
                for (int p = 0; p < P; ++p) {
                    const std::size_t o = (1 + F + p) * blk + q;
                    const V za = at(Z, (1 + sp.pairs[p][0]) * blk + q);
                    const V zb = at(Z, (1 + sp.pairs[p][1]) * blk + q);
                    at(H, o) = s2 * za * zb + s1 * at(Z, o);
                }
            }
        }
    }

    void forward_chunk(const Term<T>& tm, int i0, int cn, Work& w) {
        const StreamSpec& sp = tm.streams;
        const int S = sp.S(), F = sp.F(), d = tm.d;
        const int R = S * cn;
        // Layer 1: the input jet is (x_hat, scale_k e_k, 0), so the product is a broadcast.
        {
            const int ld = (L_ == 1) ? pad_[1] : pad_[1];
            T* Z = (L_ == 1) ? w.out.data() : w.Z[1].data();
            const T* WT = WT_[1].data();
            const T* b = B_[1].data();
            for (int i = 0; i < cn; ++i) {
                T* z = Z + static_cast<std::size_t>(i) * ld;
                std::memcpy(z, b, sizeof(T) * ld);
                const T* x = tm.xhat.data() + static_cast<std::size_t>(i0 + i) * d;
                for (int k = 0; k < d; ++k) {
                    const T xk = x[k];
                    const T* wk = WT + static_cast<std::size_t>(k) * ld;
                    for (int o = 0; o < ld; ++o) z[o] += xk * wk[o];
                }
            }
            for (int f = 0; f < F; ++f) {
                const int k = sp.first[f];
                const T sc = tm.scale[k];
                const T* wk = WT + static_cast<std::size_t>(k) * ld;
                for (int i = 0; i < cn; ++i) {
                    T* z = Z + (static_cast<std::size_t>(1 + f) * cn + i) * ld;
                    for (int o = 0; o < ld; ++o) z[o] = sc * wk[o];
                }
            }
            if (sp.P() > 0)
                std::memset(Z + static_cast<std::size_t>(1 + F) * cn * ld, 0, sizeof(T) * static_cast<std::size_t>(sp.P()) * cn * ld);
            if (L_ > 1) activate(w, 1, sp, cn, nullptr);
        }
        for (int l = 2; l <= L_; ++l) {
            const int ldi = pad_[l - 1], ldo = pad_[l];
            T* Z = (l == L_) ? w.out.data() : w.Z[l].data();
            gemm<T>(R, gemm_cols<T>(widths_[l]), widths_[l - 1], w.H[l - 1].data(), ldi, 1, WT_[l].data(), ldo, Z, ldo, false);
            if (l < L_) {
                activate(w, l, sp, cn, B_[l].data());
            } else {
                const T* b = B_[l].data();
                for (int i = 0; i < cn; ++i) {
                    T* z = Z + static_cast<std::size_t>(i) * ldo;
                    for (int o = 0; o < ldo; ++o) z[o] += b[o];
                }
            }
        }
    }

    // ---------------------------------------------------------------- backward
    // In place on gbar (rows of h-bar become rows of z-bar):
    //   z̄ = s1 h̄ + Σ_f s2 z_f h̄_f + Σ_ab (s3 z_a z_b + s2 z_ab) h̄_ab
    //   z̄_f = s1 h̄_f + Σ_{ab ∋ f} s2 z_other h̄_ab (twice for a = b)      z̄_ab = s1 h̄_ab
    // (s2 = -2 h s1, s3 = -2 s1 (1 - 3h²)). Whole vectors over the chunk, as in activate; the
    // order (value, first, pairs) makes the in-place update safe.
    void adjoint_activate(Work& w, int l, const StreamSpec& sp, int cn, T* G) {
        using V = typename Vec<T>::type;
        const int ld = pad_[l], F = sp.F(), P = sp.P();
        const std::size_t blk = static_cast<std::size_t>(cn) * ld, n = blk;
        T* Z = w.Z[l].data();
        T* H = w.H[l].data();
        auto at = [](T* base, std::size_t q) -> V& { return *reinterpret_cast<V*>(base + q); };
        // For each first-order stream, the pairs that contain it.
        std::vector<Link>& links = w.links;
        std::vector<int>& link_off = w.link_off;
        links.clear();
        link_off.assign(F + 1, 0);
        for (int f = 0; f < F; ++f) {
            for (int p = 0; p < P; ++p) {
                const int a = sp.pairs[p][0], b = sp.pairs[p][1];
                if (a != f && b != f) continue;
                links.push_back({(1 + F + p) * blk, (1 + (a == f ? b : a)) * blk, a == b ? T(2) : T(1)});
            }
            link_off[f + 1] = static_cast<int>(links.size());
        }
        for (std::size_t q = 0; q < n; q += Vec<T>::width) {
            const V s1 = at(Z, q), h = at(H, q);
            const V s2 = T(-2) * h * s1;
            const V s3 = T(-2) * s1 * (T(1) - T(3) * h * h);
            V g0 = at(G, q) * s1;
            for (int f = 0; f < F; ++f) {
                const std::size_t o = (1 + f) * blk + q;
                g0 += s2 * at(Z, o) * at(G, o);
            }
            for (int p = 0; p < P; ++p) {
                const std::size_t o = (1 + F + p) * blk + q;
                const V za = at(Z, (1 + sp.pairs[p][0]) * blk + q);
                const V zb = at(Z, (1 + sp.pairs[p][1]) * blk + q);
                g0 += (s3 * za * zb + s2 * at(Z, o)) * at(G, o);
            }
            at(G, q) = g0;
            for (int f = 0; f < F; ++f) {
                const std::size_t o = (1 + f) * blk + q;
                V gf = s1 * at(G, o);
                for (int j = link_off[f]; j < link_off[f + 1]; ++j)
                    gf += links[j].c * s2 * at(Z, links[j].zo + q) * at(G, links[j].gp + q);
                at(G, o) = gf;
            }
            for (int p = 0; p < P; ++p) {
                const std::size_t o = (1 + F + p) * blk + q;
                at(G, o) = s1 * at(G, o);
            }
        }
    }

    static T dot(const T* a, const T* b, int n) {
        T s = 0;
        for (int k = 0; k < n; ++k) s += a[k] * b[k];
        return s;
    }

    // Per-point squared norm of this layer's parameter gradient, by the Gram identity
    // ||Σ_s z̄_s h_sᵀ||² = Σ_{s,t} (z̄_s·z̄_t)(h_s·h_t), plus ||z̄_0||² for the bias (docs/design.md §2).
    void layer_norms(const Term<T>& tm, int l, int i0, int cn, const T* G, const Work& w, T* norms) {
        const StreamSpec& sp = tm.streams;
        const int S = sp.S(), F = sp.F(), ldo = pad_[l];
        for (int i = 0; i < cn; ++i) {
            T acc = 0;
            for (int s = 0; s < S; ++s) {
                const T* gs = G + (static_cast<std::size_t>(s) * cn + i) * ldo;
                for (int t = s; t < S; ++t) {
                    T hh;
                    if (l == 1) {
                        const T* x = tm.xhat.data() + static_cast<std::size_t>(i0 + i) * tm.d;
                        // Input jet: h_0 = x_hat, h_f = scale e_dir, h_pair = 0.
                        auto in_dot = [&](int a, int b) -> T {
                            if (a > F || b > F) return T(0);
                            if (a == 0 && b == 0) return dot(x, x, tm.d);
                            if (a == 0) return x[sp.first[b - 1]] * tm.scale[sp.first[b - 1]];
                            const int ka = sp.first[a - 1], kb = sp.first[b - 1];
                            return ka == kb ? tm.scale[ka] * tm.scale[ka] : T(0);
                        };
                        hh = in_dot(s, t);
                    } else {
                        const int ldi = pad_[l - 1];
                        const T* H = w.H[l - 1].data();
                        hh = dot(H + (static_cast<std::size_t>(s) * cn + i) * ldi,
                                 H + (static_cast<std::size_t>(t) * cn + i) * ldi, widths_[l - 1]);
                    }
                    if (hh == T(0)) continue;
                    const T gg = dot(gs, G + (static_cast<std::size_t>(t) * cn + i) * ldo, widths_[l]);
                    acc += (s == t ? T(1) : T(2)) * gg * hh;
                }
            }
            const T* g0 = G + static_cast<std::size_t>(i) * ldo;
            acc += dot(g0, g0, widths_[l]);
            norms[i0 + i] += acc;
        }
    }

    // G holds z̄ of the output layer on entry (R x pad[L]).
    void backward_chunk(const Term<T>& tm, int i0, int cn, Work& w, bool want_grad, T* norms, LayerHook* hook = nullptr) {
        const StreamSpec& sp = tm.streams;
        const int S = sp.S(), F = sp.F(), R = S * cn;
        T* G = w.gbar0.data();
        T* Gnext = w.gbar1.data();
        for (int l = L_; l >= 1; --l) {
            const int ldo = pad_[l];
            if (want_grad) {
                T* gWT = w.gWT[l].data();
                if (l >= 2) {
                    const int ldi = pad_[l - 1];
                    // gW^T (in x out) += H_{l-1}^T Z̄_l: A = H read transposed.
                    gemm<T>(widths_[l - 1], gemm_cols<T>(widths_[l]), R, w.H[l - 1].data(), 1, ldi, G, ldo, gWT, ldo, true);
                } else {
                    for (int i = 0; i < cn; ++i) {
                        const T* x = tm.xhat.data() + static_cast<std::size_t>(i0 + i) * tm.d;
                        const T* g = G + static_cast<std::size_t>(i) * ldo;
                        for (int k = 0; k < tm.d; ++k) {
                            T* row = gWT + static_cast<std::size_t>(k) * ldo;
                            const T xk = x[k];
                            for (int o = 0; o < ldo; ++o) row[o] += xk * g[o];
                        }
                    }
                    for (int f = 0; f < F; ++f) {
                        const int k = sp.first[f];
                        T* row = gWT + static_cast<std::size_t>(k) * ldo;
                        const T sc = tm.scale[k];
                        for (int i = 0; i < cn; ++i) {
                            const T* g = G + (static_cast<std::size_t>(1 + f) * cn + i) * ldo;
                            for (int o = 0; o < ldo; ++o) row[o] += sc * g[o];
                        }
                    }
                }
                T* gb = w.gb[l].data();
                for (int i = 0; i < cn; ++i) {
                    const T* g = G + static_cast<std::size_t>(i) * ldo;
                    for (int o = 0; o < ldo; ++o) gb[o] += g[o];
                }
            }
            if (norms) layer_norms(tm, l, i0, cn, G, w, norms);
            if (hook) hook->layer(tm, l, i0, cn, G, w);
            if (l >= 2) {
                const int ldi = pad_[l - 1];
                gemm<T>(R, gemm_cols<T>(widths_[l - 1]), widths_[l], G, ldo, 1, Wp_[l].data(), ldi, Gnext, ldi, false);
                adjoint_activate(w, l - 1, sp, cn, Gnext);
                std::swap(G, Gnext);
            }
        }
    }

    // ---------------------------------------------------------------- residual tables
    // r_c = Σ_m coef_m Π J_f ; for the loss, J̄ += (2 w_i / N) r_c ∂r_c/∂J.
    // For the NTK pass of component c, J̄ = ∂r_c/∂J.
    void table_adjoint(const Term<T>& tm, int i0, int cn, Work& w, Mode mode, int ntk_comp,
                       SweepOut<T>& out) {
        const Table<T>& tb = tm.table;
        const int ldo = pad_[L_], C = tb.components, M = tb.monomials();
        const T* J = w.out.data();
        T* G = w.gbar0.data();
        const int S = tm.streams.S();
        std::memset(G, 0, sizeof(T) * static_cast<std::size_t>(S) * cn * ldo);
        auto jv = [&](int f, int i) -> T {
            return J[(static_cast<std::size_t>(tb.fac_stream[f]) * cn + i) * ldo + tb.fac_out[f]];
        };
        double* rs = w.rsum.data();
        std::fill(rs, rs + static_cast<std::size_t>(C) * cn, 0.0);
        const std::size_t N = static_cast<std::size_t>(tm.n);
        // residual values (always needed for the loss; cheap)
        for (int m = 0; m < M; ++m) {
            const T* coef = tb.coef.data() + static_cast<std::size_t>(m) * N + i0;
            double* r = rs + static_cast<std::size_t>(tb.comp[m]) * cn;
            for (int i = 0; i < cn; ++i) {
                T v = coef[i];
                for (int f = tb.fac_off[m]; f < tb.fac_off[m + 1]; ++f) v *= jv(f, i);
                r[i] += v;
            }
        }
        if (mode == Mode::Loss) {
            double loss = 0;
            for (int c = 0; c < C; ++c)
                for (int i = 0; i < cn; ++i) {
                    const double r = rs[static_cast<std::size_t>(c) * cn + i];
                    const double wi = out.point_weights ? double(out.point_weights[i0 + i]) : 1.0;
                    loss += wi * r * r;
                    if (out.residuals) out.residuals[static_cast<std::size_t>(c) * N + i0 + i] = T(r);
                }
            w.loss += loss / double(N);
        }
        for (int m = 0; m < M; ++m) {
            const int c = tb.comp[m];
            if (mode == Mode::NtkTable && c != ntk_comp) continue;
            const T* coef = tb.coef.data() + static_cast<std::size_t>(m) * N + i0;
            const double* r = rs + static_cast<std::size_t>(c) * cn;
            const int f0 = tb.fac_off[m], f1 = tb.fac_off[m + 1];
            for (int i = 0; i < cn; ++i) {
                T scale = coef[i];
                if (mode == Mode::Loss) {
                    const T wi = out.point_weights ? out.point_weights[i0 + i] : T(1);
                    scale *= T(2) * wi * T(r[i]) / T(N);
                }
                for (int f = f0; f < f1; ++f) {
                    T v = scale;
                    for (int g = f0; g < f1; ++g)
                        if (g != f) v *= jv(g, i);
                    G[(static_cast<std::size_t>(tb.fac_stream[f]) * cn + i) * ldo + tb.fac_out[f]] += v;
                }
            }
        }
    }

    // ---------------------------------------------------------------- driver
    void sweep_range(const Term<T>& tm, Mode mode, SweepOut<T>& out, Work& w, int begin, int end) {
        const int S = tm.streams.S(), m = widths_[L_], ldo = pad_[L_];
        const int cn_max = chunk_for(S);
        prepare(w, S, cn_max, tm.table.components);
        w.loss = 0;
        const bool grad = out.want_grad && (mode == Mode::Loss || mode == Mode::Adjoint);
        if (grad) zero_grad(w);
        T* norms = out.want_norms ? out.norms : nullptr;
        const std::size_t N = static_cast<std::size_t>(tm.n);
        // Near-equal chunks (not cn_max and a small remainder): a 4-point tail chunk runs
        // its products at a fraction of the speed of a full one.
        const int nchunks = std::max(1, (end - begin + cn_max - 1) / cn_max);
        const int cn_eq = (end - begin + nchunks - 1) / nchunks;
        for (int i0 = begin; i0 < end; i0 += cn_eq) {
            const int cn = std::min(cn_eq, end - i0);
            forward_chunk(tm, i0, cn, w);
            if (mode == Mode::Forward) {
                for (int s = 0; s < S; ++s)
                    for (int i = 0; i < cn; ++i)
                        for (int o = 0; o < m; ++o)
                            out.jets[(static_cast<std::size_t>(s) * N + i0 + i) * m + o] =
                                w.out.data()[(static_cast<std::size_t>(s) * cn + i) * ldo + o];
                continue;
            }
            if (mode == Mode::Adjoint) {
                T* G = w.gbar0.data();
                for (int s = 0; s < S; ++s)
                    for (int i = 0; i < cn; ++i) {
                        T* g = G + (static_cast<std::size_t>(s) * cn + i) * ldo;
                        std::memset(g, 0, sizeof(T) * ldo);
                        for (int o = 0; o < m; ++o) g[o] = out.adjoint[(static_cast<std::size_t>(s) * N + i0 + i) * m + o];
                    }
                backward_chunk(tm, i0, cn, w, grad, norms);
            } else if (mode == Mode::Loss) {
                table_adjoint(tm, i0, cn, w, mode, -1, out);
                backward_chunk(tm, i0, cn, w, grad, nullptr);
            } else {  // NtkTable: one backward per component, no gradient
                for (int c = 0; c < tm.table.components; ++c) {
                    table_adjoint(tm, i0, cn, w, mode, c, out);
                    backward_chunk(tm, i0, cn, w, false, norms);
                }
            }
        }
    }

    void sweep(const Term<T>& tm, Mode mode, SweepOut<T>& out, int nthreads) {
        const int n = tm.n;
        if (out.want_norms && out.norms) std::fill(out.norms, out.norms + n, T(0));
        // Threads pay off above ~2 Mflop (~40 µs of work); waking a polling worker costs ~1 µs.
        double flops = 0;
        for (int l = 1; l <= L_; ++l) flops += 2.0 * widths_[l] * widths_[l - 1];
        flops *= double(n) * tm.streams.S() * (mode == Mode::Forward ? 1.0 : 3.0);
        int T_ = std::max(1, std::min(nthreads, n));
        if (flops < min_parallel_flops) T_ = 1;
        if (static_cast<int>(work_.size()) < T_) work_.resize(T_);
        if (T_ == 1) {
            sweep_range(tm, mode, out, work_[0], 0, n);
        } else {
            // Thread t owns points [n t / T, n (t+1) / T) and work_[t]: a fixed partition.
            std::vector<std::exception_ptr> errors(T_);
            pool_.run(T_, [&](int t) {
                try {
                    sweep_range(tm, mode, out, work_[t], int(std::size_t(n) * t / T_), int(std::size_t(n) * (t + 1) / T_));
                } catch (...) {
                    errors[t] = std::current_exception();
                }
            });
            for (auto& e : errors)
                if (e) std::rethrow_exception(e);
        }
        if (mode == Mode::Forward) return;
        const bool grad = out.want_grad && (mode == Mode::Loss || mode == Mode::Adjoint);
        if (mode == Mode::Loss && out.loss) {
            double loss = 0;
            for (int t = 0; t < T_; ++t) loss += work_[t].loss;  // fixed order
            *out.loss = loss;
        }
        if (!grad) return;
        // Reduce per-thread accumulators in thread order, then unpack to the flat layout.
        for (int t = 1; t < T_; ++t)
            for (int l = 1; l <= L_; ++l) {
                const std::size_t nw = static_cast<std::size_t>(pad_[l - 1]) * pad_[l];
                T* a = work_[0].gWT[l].data();
                const T* b = work_[t].gWT[l].data();
                for (std::size_t q = 0; q < nw; ++q) a[q] += b[q];
                T* ga = work_[0].gb[l].data();
                const T* gb = work_[t].gb[l].data();
                for (int o = 0; o < pad_[l]; ++o) ga[o] += gb[o];
            }
        for (int l = 1; l <= L_; ++l) {
            const int out_w = widths_[l], in_w = widths_[l - 1], po = pad_[l];
            const T* gWT = work_[0].gWT[l].data();
            T* gW = out.grad + w_off_[l];
            for (int o = 0; o < out_w; ++o)
                for (int k = 0; k < in_w; ++k) gW[static_cast<std::size_t>(o) * in_w + k] = gWT[static_cast<std::size_t>(k) * po + o];
            std::memcpy(out.grad + b_off_[l], work_[0].gb[l].data(), sizeof(T) * out_w);
        }
    }
};

}  // namespace pinncore
