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
// Architectures (embedding.hpp): an input embedding (Fourier features, periodic) computes the
// jets the first dense layer reads; arch "modified" adds two encoders U, V (matrices L+1, L+2)
// and gates every hidden layer, h = U + z ⊙ (V − U). Parameters: the dense chain, then W_u, b_u,
// W_v, b_v, then a trainable embedding's B (M x d) — the layout of pinncore/embedding.py.
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
#include <type_traits>
#include <vector>

#include <unistd.h>  // getpid: the worker pool must not wait for threads lost in a fork()

#include "embedding.hpp"
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
    // widths = layers as given (widths[0] = d inputs); arch adds the input embedding (its width
    // replaces d as the dense chain's input width) and the modified MLP's encoders.
    explicit Model(const std::vector<int>& widths, const ArchSpec<T>& arch = ArchSpec<T>()) : arch_(arch) {
        if (widths.size() < 2) throw std::invalid_argument("layers needs at least an input and an output width");
        for (int w : widths)
            if (w < 1) throw std::invalid_argument("every layer width must be >= 1");
        d_ = widths[0];
        L_ = static_cast<int>(widths.size()) - 1;
        if (arch_.features < 0) throw std::invalid_argument("features must be >= 0");
        if (arch_.features > 0) {
            if (arch_.B.size() != static_cast<std::size_t>(arch_.features) * d_)
                throw std::invalid_argument("B must have features x d entries");
            for (int k : arch_.passthrough)
                if (k < 0 || k >= d_) throw std::invalid_argument("passthrough input out of range");
        }
        if (arch_.modified) {
            if (L_ < 2) throw std::invalid_argument("arch 'modified' needs a hidden layer");
            for (int l = 2; l < L_; ++l)
                if (widths[l] != widths[1]) throw std::invalid_argument("arch 'modified' needs equal hidden widths");
        }
        widths_ = widths;
        widths_[0] = arch_.width(d_);
        emb_ = arch_.features > 0;
        nm_ = L_ + (arch_.modified ? 2 : 0);
        iw_.assign(nm_ + 1, 0);
        ow_.assign(nm_ + 1, 0);
        for (int l = 1; l <= L_; ++l) {
            iw_[l] = widths_[l - 1];
            ow_[l] = widths_[l];
        }
        for (int j = L_ + 1; j <= nm_; ++j) {
            iw_[j] = widths_[0];
            ow_[j] = widths_[1];
        }
        pad0_ = emb_ ? round_up_lanes<T>(widths_[0]) : d_;
        ip_.assign(nm_ + 1, 0);
        op_.assign(nm_ + 1, 0);
        for (int j = 1; j <= nm_; ++j) {
            op_[j] = round_up_lanes<T>(ow_[j]);
            ip_[j] = (j == 1 || j > L_) ? pad0_ : op_[j - 1];
        }
        pad_.assign(L_ + 1, pad0_);
        for (int l = 1; l <= L_; ++l) pad_[l] = op_[l];
        w_off_.assign(nm_ + 1, 0);
        b_off_.assign(nm_ + 1, 0);
        std::size_t off = 0;
        for (int j = 1; j <= nm_; ++j) {
            w_off_[j] = off;
            off += static_cast<std::size_t>(ow_[j]) * iw_[j];
            b_off_[j] = off;
            off += ow_[j];
        }
        B_off_ = off;
        if (arch_.trainable) off += static_cast<std::size_t>(arch_.features) * d_;
        n_params_ = off;
        padM_ = round_up_lanes<T>(std::max(arch_.features, 1));
        omega_.resize(static_cast<std::size_t>(arch_.features) * d_);
        for (std::size_t q = 0; q < omega_.size(); ++q) omega_[q] = T(2 * M_PI) * arch_.B[q];
        WT_.resize(nm_ + 1);
        Wp_.resize(nm_ + 1);
        B_.resize(nm_ + 1);
        for (int j = 1; j <= nm_; ++j) {
            WT_[j].reserve(static_cast<std::size_t>(ip_[j]) * op_[j]);
            if (needs_input_adjoint(j)) Wp_[j].reserve(static_cast<std::size_t>(op_[j]) * ip_[j]);
            B_[j].reserve(op_[j]);
        }
    }

    std::size_t n_params() const { return n_params_; }
    int inputs() const { return d_; }
    int outputs() const { return widths_[L_]; }
    const std::vector<int>& widths() const { return widths_; }
    const ArchSpec<T>& arch() const { return arch_; }
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

    // Parameter blocks a backward visitor sees (see backward_chunk): matrices j = 1..L are the
    // dense chain, L+1 and L+2 the encoders U and V (arch "modified"); kEmbed is B.
    static constexpr int kEmbed = -1;
    int matrices() const { return nm_; }
    std::size_t weight_offset(int j) const { return w_off_[j]; }
    std::size_t bias_offset(int j) const { return b_off_[j]; }
    std::size_t embedding_offset() const { return B_off_; }
    int in_width(int j) const { return iw_[j]; }
    int out_width(int j) const { return ow_[j]; }
    int in_pad(int j) const { return ip_[j]; }     // row stride of block j's input jets
    int out_pad(int j) const { return op_[j]; }    // row stride of block j's adjoint jets
    int embedding_pad() const { return padM_; }    // row stride of the phase adjoints ā
    bool has_embedding_params() const { return arch_.trainable; }

  private:
    // A second-order pair that contains a first-order stream: offsets of the pair's block and
    // of the other factor's block, and the multiplicity (2 for a repeated direction).
    struct Link {
        std::size_t gp, zo;
        T c;
    };
  public:
    // A thread's workspace: every stored jet of a chunk and the gradient accumulators.
    struct Work {
        // Per matrix j (hidden layers 1..L-1, encoders L+1, L+2): pre-activation jets (the
        // value row holds sech^2 after activate) and activations; O: gated outputs ("modified").
        std::vector<Buffer<T>> Z, H, O;
        Buffer<T> E, Ebar, A;            // embedding output jets, their adjoint, the phase adjoint
        Buffer<T> Ub, Vb;                // encoder adjoints ("modified")
        std::vector<T> om, af;           // the phases Ω (M x d) and seeds a_f (F x M)
        Buffer<T> out, gbar0, gbar1, tmp;
        // Gradient accumulators. gWT[j]: in x op_[j] (Wᵀ) for a matrix fed by the raw input jet,
        // else out x ip_[j] (W, rows padded): see out_major. fresh[j]: gWT[j] not yet written in
        // this sweep (its first product stores instead of accumulating: no zeroing pass).
        std::vector<Buffer<T>> gWT, gb;
        std::vector<char> fresh;
        std::vector<T> gB;               // embedding gradient (M x d)
        std::vector<double> rsum;        // residual scratch (C x cn)
        std::vector<Link> links;         // adjoint_activate: pairs touching each first-order stream
        std::vector<int> link_off;
        Buffer<T> r, dr;
        double loss = 0;
    };
    // Called by backward_chunk at every layer l of the dense chain with that layer's z̄ (G,
    // R x pad[l]) and the forward jets in w: the residual Jacobian (csrc/jacobian.hpp) reads
    // per-point gradients there. Plain networks only (the input of layer l is w.H[l-1], or the
    // raw jet for l = 1); other architectures hand every block to a backward visitor instead.
    struct LayerHook {
        virtual ~LayerHook() = default;
        virtual void layer(const Term<T>& tm, int l, int i0, int cn, const T* G, const Work& w) = 0;
    };
    template <class U> friend class Jacobian;

  private:
    ArchSpec<T> arch_;
    std::vector<int> widths_;           // the dense chain: widths_[0] = embedding width (or d)
    std::vector<int> iw_, ow_, ip_, op_;  // per matrix j: in/out widths and padded widths
    std::vector<int> pad_;              // padded widths of the dense chain, pad_[0] = its input's
    int d_ = 0, L_ = 0, nm_ = 0, pad0_ = 0, padM_ = 0;
    bool emb_ = false;
    std::vector<std::size_t> w_off_, b_off_;
    std::size_t B_off_ = 0, n_params_ = 0;
    std::vector<Buffer<T>> WT_, Wp_, B_;
    std::vector<T> omega_;              // 2π B (fixed, or packed from the parameters)
    std::vector<Work> work_;
    std::mutex mutex_;
    WorkerPool pool_;  // declared last: destroyed (workers joined) first

    // The adjoint must leave matrix j towards its input: always inside the chain, and at the
    // first layer / encoders only when a trainable embedding is behind them.
    bool needs_input_adjoint(int j) const { return (j >= 2 && j <= L_) || (arch_.trainable && (j == 1 || j > L_)); }
    bool hidden(int j) const { return (j >= 1 && j < L_) || j > L_; }
    // A narrow output (the output layer, m <= kSmallOut) of a dense chain's matrix with stored
    // input jets: its products run on whole rows (simd.hpp) instead of through gemm. Wp_[j]
    // (W with the input padded to ip_[j]) is packed for every such j (needs_input_adjoint).
    bool small_out(int j) const { return j >= 2 && j <= L_ && ow_[j] <= kSmallOut; }
    // The weight gradient of a matrix with stored input jets accumulates as gW = Σ z̄ᵀ h (out x
    // ip_[j], W's own row order): unpacking it is a row copy, where the Wᵀ layout needed a
    // transposition per term and call (≈ 2 µs of the seed step's fixed cost). A matrix fed by
    // the raw input jet (d rows, summed in registers) keeps the Wᵀ layout.
    bool out_major(int j) const { return input_of_is_raw(j) == false; }
    bool input_of_is_raw(int j) const { return (j == 1 || j > L_) && !emb_; }

    void pack(const T* params) {
        for (int j = 1; j <= nm_; ++j) {
            const int out = ow_[j], in = iw_[j], po = op_[j];
            const T* W = params + w_off_[j];
            T* WT = WT_[j].data();
            for (int o = 0; o < out; ++o)
                for (int k = 0; k < in; ++k) WT[static_cast<std::size_t>(k) * po + o] = W[static_cast<std::size_t>(o) * in + k];
            if (needs_input_adjoint(j)) {
                const int pi = ip_[j];
                T* Wp = Wp_[j].data();
                for (int o = 0; o < out; ++o)
                    std::memcpy(Wp + static_cast<std::size_t>(o) * pi, W + static_cast<std::size_t>(o) * in, sizeof(T) * in);
            }
            std::memcpy(B_[j].data(), params + b_off_[j], sizeof(T) * out);
        }
        if (arch_.trainable)
            for (std::size_t q = 0; q < omega_.size(); ++q) omega_[q] = T(2 * M_PI) * params[B_off_ + q];
    }

    int chunk_for(int S) const {
        if (chunk_points > 0) return chunk_points;
        // Keep the stored jets of a chunk (Z and H of every hidden layer, the gated outputs
        // and the embedding) within ~768 KiB of L2 (1 MiB per core on Zen 4 and Skylake-X,
        // more on later Xeons), up to 128 points: against 384 KiB / 64 points, measured in
        // alternation, Burgers [2,20,20,20,1] N = 8 000 5.97-6.03 -> 5.76-5.77 ms per step,
        // [2,32x4,1] 15.8 -> 14.8 ms, the seed 137.8 -> 135.9 µs (longer products, fewer
        // per-chunk set-ups and gradient-tile passes).
        std::size_t per_point = 0;
        for (int j = 1; j <= nm_; ++j) per_point += 2 * static_cast<std::size_t>(op_[j]);
        if (arch_.modified) per_point += static_cast<std::size_t>(L_ + 1) * op_[1];
        if (emb_) per_point += 2 * static_cast<std::size_t>(pad0_) + padM_;
        per_point *= static_cast<std::size_t>(S) * sizeof(T);
        int c = static_cast<int>((768 * 1024) / std::max<std::size_t>(per_point, 1));
        return std::max(8, std::min(128, c));
    }

  public:
    // Size w for chunks of up to cn points with S streams and C residual components; then, per
    // term, embed_phases(...) into w.om / w.af before the first forward_chunk (sweep_range does).
    void prepare(Work& w, int S, int cn, int C) {
        const std::size_t R = static_cast<std::size_t>(S) * cn;
        int maxpad = pad0_;
        for (int j = 1; j <= nm_; ++j) maxpad = std::max(maxpad, op_[j]);
        w.Z.resize(nm_ + 1);
        w.H.resize(nm_ + 1);
        w.O.resize(L_);
        for (int j = 1; j <= nm_; ++j)
            if (hidden(j)) {
                w.Z[j].reserve(R * op_[j]);
                w.H[j].reserve(R * op_[j]);
            }
        if (arch_.modified) {
            for (int l = 1; l < L_; ++l) w.O[l].reserve(R * op_[l]);
            w.Ub.reserve(R * op_[1]);
            w.Vb.reserve(R * op_[1]);
        }
        if (emb_) {
            w.E.reserve(R * pad0_);
            if (arch_.trainable) {
                w.Ebar.reserve(R * pad0_);
                w.A.reserve(R * padM_);
            }
        }
        w.out.reserve(R * op_[L_]);
        w.gbar0.reserve(R * maxpad);
        w.gbar1.reserve(R * maxpad);
        w.tmp.reserve(3 * static_cast<std::size_t>(maxpad));
        w.gWT.resize(nm_ + 1);
        w.gb.resize(nm_ + 1);
        for (int j = 1; j <= nm_; ++j) {
            w.gWT[j].reserve(static_cast<std::size_t>(ip_[j]) * op_[j]);
            w.gb[j].reserve(op_[j]);
        }
        w.gB.resize(arch_.trainable ? omega_.size() : 0);
        w.rsum.resize(static_cast<std::size_t>(std::max(C, 1)) * cn);
    }

  private:
    void zero_grad(Work& w) {
        w.fresh.assign(nm_ + 1, 0);
        for (int j = 1; j <= nm_; ++j) {
            if (out_major(j) && !small_out(j))
                w.fresh[j] = 1;  // written by its first product
            else
                std::memset(w.gWT[j].data(), 0, sizeof(T) * ip_[j] * op_[j]);
            std::memset(w.gb[j].data(), 0, sizeof(T) * op_[j]);
        }
        std::fill(w.gB.begin(), w.gB.end(), T(0));
    }

    // Zero what no chunk wrote (a thread or term without points).
    void finish_grad(Work& w) {
        for (int j = 1; j <= nm_; ++j)
            if (w.fresh[j]) {
                std::memset(w.gWT[j].data(), 0, sizeof(T) * ip_[j] * op_[j]);
                w.fresh[j] = 0;
            }
    }

    // ---------------------------------------------------------------- fixed stream counts
    // The element-wise jet passes with the stream counts as compile-time constants (F, P <= 3:
    // the value plus up to three directions and three second-order pairs covers 1-D to 3-D
    // second-order PINNs). With runtime counts every vector paid the stream loops' control and
    // the adjoint's per-direction link lists (a profile of Burgers at width 20 had the adjoint
    // pass at 12 % of the step, mostly loop control); unrolled, only the arithmetic and the
    // loads remain. Same operations in the same order as the generic loops (bitwise equal).
    template <int N> using IntC = std::integral_constant<int, N>;
    template <class Op> static bool with_fixed_streams(int F, int P, Op&& op) {
        if (F > 3 || P > 3) return false;
        switch (F * 4 + P) {
            case 0: op(IntC<0>{}, IntC<0>{}); break;
            case 1: op(IntC<0>{}, IntC<1>{}); break;
            case 2: op(IntC<0>{}, IntC<2>{}); break;
            case 3: op(IntC<0>{}, IntC<3>{}); break;
            case 4: op(IntC<1>{}, IntC<0>{}); break;
            case 5: op(IntC<1>{}, IntC<1>{}); break;
            case 6: op(IntC<1>{}, IntC<2>{}); break;
            case 7: op(IntC<1>{}, IntC<3>{}); break;
            case 8: op(IntC<2>{}, IntC<0>{}); break;
            case 9: op(IntC<2>{}, IntC<1>{}); break;
            case 10: op(IntC<2>{}, IntC<2>{}); break;
            case 11: op(IntC<2>{}, IntC<3>{}); break;
            case 12: op(IntC<3>{}, IntC<0>{}); break;
            case 13: op(IntC<3>{}, IntC<1>{}); break;
            case 14: op(IntC<3>{}, IntC<2>{}); break;
            default: op(IntC<3>{}, IntC<3>{}); break;
        }
        return true;
    }

    template <int FC, int PC>
    static void activate_fixed(T* Z, T* H, const T* bias, const StreamSpec& sp, std::size_t blk, int ld, int ib, int ie) {
        using V = typename Vec<T>::type;
        constexpr int vw = Vec<T>::width;
        std::size_t pa[PC > 0 ? PC : 1], pb[PC > 0 ? PC : 1];
        for (int p = 0; p < PC; ++p) {
            pa[p] = (1 + sp.pairs[p][0]) * blk;
            pb[p] = (1 + sp.pairs[p][1]) * blk;
        }
        auto at = [](T* base, std::size_t q) -> V& { return *reinterpret_cast<V*>(base + q); };
        for (int i = ib; i < ie; ++i) {
            const std::size_t row = static_cast<std::size_t>(i) * ld;
            for (int k = 0; k < ld; k += vw) {
                const std::size_t q = row + k;
                V z = at(Z, q);
                if (bias) z += *reinterpret_cast<const V*>(bias + k);
                V s1;
                const V h = tanh_sech2_vec<T>(z, s1);
                at(H, q) = h;
                at(Z, q) = s1;
                const V s2 = T(-2) * h * s1;
#pragma GCC unroll 4
                for (int f = 0; f < FC; ++f) {
                    const std::size_t o = (1 + f) * blk + q;
                    at(H, o) = s1 * at(Z, o);
                }
#pragma GCC unroll 4
                for (int p = 0; p < PC; ++p) {
                    const std::size_t o = (1 + FC + p) * blk + q;
                    at(H, o) = s2 * at(Z, pa[p] + q) * at(Z, pb[p] + q) + s1 * at(Z, o);
                }
            }
        }
    }

    template <int FC, int PC>
    static void adjoint_fixed(T* Z, T* H, T* G, const StreamSpec& sp, std::size_t blk, std::size_t q0, std::size_t n) {
        using V = typename Vec<T>::type;
        constexpr int PA = PC > 0 ? PC : 1;
        std::size_t pa[PA], pb[PA];
        // cf[f][p]: multiplicity of direction f in pair p (0, 1, or 2 for a repeated direction);
        // of[f][p]: block offset of the pair's other factor.
        T cf[FC > 0 ? FC : 1][PA];
        std::size_t of[FC > 0 ? FC : 1][PA];
        for (int p = 0; p < PC; ++p) {
            const int a = sp.pairs[p][0], b = sp.pairs[p][1];
            pa[p] = (1 + a) * blk;
            pb[p] = (1 + b) * blk;
            for (int f = 0; f < FC; ++f) {
                cf[f][p] = (a != f && b != f) ? T(0) : (a == b ? T(2) : T(1));
                of[f][p] = (1 + (a == f ? b : a)) * blk;
            }
        }
        auto at = [](T* base, std::size_t q) -> V& { return *reinterpret_cast<V*>(base + q); };
        for (std::size_t q = q0; q < n; q += Vec<T>::width) {
            const V s1 = at(Z, q), h = at(H, q);
            const V s2 = T(-2) * h * s1;
            const V s3 = T(-2) * s1 * (T(1) - T(3) * h * h);
            V g0 = at(G, q) * s1;
#pragma GCC unroll 4
            for (int f = 0; f < FC; ++f) {
                const std::size_t o = (1 + f) * blk + q;
                g0 += s2 * at(Z, o) * at(G, o);
            }
            V gp[PA];
#pragma GCC unroll 4
            for (int p = 0; p < PC; ++p) {
                const std::size_t o = (1 + FC + p) * blk + q;
                gp[p] = at(G, o);
                g0 += (s3 * at(Z, pa[p] + q) * at(Z, pb[p] + q) + s2 * at(Z, o)) * gp[p];
            }
            at(G, q) = g0;
#pragma GCC unroll 4
            for (int f = 0; f < FC; ++f) {
                const std::size_t o = (1 + f) * blk + q;
                V gf = s1 * at(G, o);
#pragma GCC unroll 4
                for (int p = 0; p < PC; ++p)
                    if (cf[f][p] != T(0)) gf += cf[f][p] * s2 * at(Z, of[f][p] + q) * gp[p];
                at(G, o) = gf;
            }
#pragma GCC unroll 4
            for (int p = 0; p < PC; ++p) at(G, (1 + FC + p) * blk + q) = s1 * gp[p];
        }
    }

    // ---------------------------------------------------------------- forward
    // h = tanh z, h_f = s1 z_f, h_ab = s2 z_a z_b + s1 z_ab  (s1 = sech^2, s2 = -2 h s1).
    // One pass over whole vectors of the chunk: stream s of point i sits at the same offset
    // inside stream block s as the value does inside block 0, so every stream is addressed by
    // one block offset and the loop runs over cn*ld contiguous elements (no per-point short
    // loops, whose prologues/epilogues cost as much as the arithmetic at width 50).
    // `bias` (or null) is added to the value pre-activation first, saving a pass.
    // Rows [ib, ie) of the chunk only (ie < 0: all), so a caller can fuse a pass per row.
    void activate(Work& w, int l, const StreamSpec& sp, int cn, const T* bias, int ib = 0, int ie = -1) {
        using V = typename Vec<T>::type;
        constexpr int vw = Vec<T>::width;
        const int ld = op_[l], F = sp.F(), P = sp.P();
        const std::size_t blk = static_cast<std::size_t>(cn) * ld;
        T* Z = w.Z[l].data();
        T* H = w.H[l].data();
        if (with_fixed_streams(F, P, [&](auto fc, auto pc) {
                activate_fixed<decltype(fc)::value, decltype(pc)::value>(Z, H, bias, sp, blk, ld, ib, ie < 0 ? cn : ie);
            }))
            return;
        auto at = [](T* base, std::size_t q) -> V& { return *reinterpret_cast<V*>(base + q); };
        for (int i = ib; i < (ie < 0 ? cn : ie); ++i) {
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

    // Z (S*cn rows of op_[j]) = the jets of W_j · input. The input is the raw jet (in == null:
    // (x_hat, scale_k e_k, 0), a broadcast over the d inputs, starting from the bias) or stored
    // jets (S*cn rows of ip_[j]: the embedding, a hidden layer; one matrix product, no bias).
    // Returns whether the bias is in.
    bool dense_forward(const Term<T>& tm, int i0, int cn, int j, const T* in, T* Z) {
        const StreamSpec& sp = tm.streams;
        const int F = sp.F(), ld = op_[j], d = tm.d;
        const T* WT = WT_[j].data();
        if (in) {
            if (small_out(j))
                small_out_forward<T>(sp.S() * cn, ow_[j], iw_[j], in, ip_[j], Wp_[j].data(), ip_[j], Z, ld);
            else
                gemm<T>(sp.S() * cn, gemm_cols<T>(ow_[j]), iw_[j], in, ip_[j], 1, WT, ld, Z, ld, false);
            return false;
        }
        if (d <= kRawSums) {
            // Per vector of output units: the bias and the d weight columns in registers, then
            // every point (the same FMAs in the same order as the loop below).
            using V = typename Vec<T>::type;
            const T* X = tm.xhat.data() + static_cast<std::size_t>(i0) * d;
            for (int o = 0; o < ld; o += Vec<T>::width) {
                V wk[kRawSums];
                for (int k = 0; k < d; ++k) wk[k] = *reinterpret_cast<const V*>(WT + static_cast<std::size_t>(k) * ld + o);
                const V b = *reinterpret_cast<const V*>(B_[j].data() + o);
                for (int i = 0; i < cn; ++i) {
                    V z = b;
                    for (int k = 0; k < d; ++k) z += X[static_cast<std::size_t>(i) * d + k] * wk[k];
                    *reinterpret_cast<V*>(Z + static_cast<std::size_t>(i) * ld + o) = z;
                }
                for (int f = 0; f < F; ++f) {
                    const int k = sp.first[f];
                    const V zf = tm.scale[k] * wk[k];
                    T* Zf = Z + static_cast<std::size_t>(1 + f) * cn * ld + o;
                    for (int i = 0; i < cn; ++i) *reinterpret_cast<V*>(Zf + static_cast<std::size_t>(i) * ld) = zf;
                }
            }
            if (sp.P() > 0)
                std::memset(Z + static_cast<std::size_t>(1 + F) * cn * ld, 0,
                            sizeof(T) * static_cast<std::size_t>(sp.P()) * cn * ld);
            return true;
        }
        for (int i = 0; i < cn; ++i) {
            T* z = Z + static_cast<std::size_t>(i) * ld;
            std::memcpy(z, B_[j].data(), sizeof(T) * ld);
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
        return true;
    }

    // The jets feeding matrix j: the embedding's (or the raw jet, null) for the first layer and
    // the encoders, else the previous hidden layer's (gated, for "modified").
    const T* input_of(const Work& w, int j) const {
        if (j == 1 || j > L_) return emb_ ? w.E.data() : nullptr;
        return arch_.modified ? w.O[j - 1].data() : w.H[j - 1].data();
    }

  public:
    // Forward jets of points [i0, i0 + cn) of a term: the output jets land in w.out (S*cn rows
    // of the padded output width); every stored jet a backward sweep needs stays in w.
    // (A per-row Jacobian sweep calls forward_chunk, then backward_chunk with its own visitor.)
    void forward_chunk(const Term<T>& tm, int i0, int cn, Work& w) {
        const StreamSpec& sp = tm.streams;
        if (emb_)
            embed_forward(arch_, tm.xhat.data(), d_, tm.scale.data(), sp.first, sp.pairs, w.om, w.af, i0, cn, pad0_,
                          w.E.data());
        if (arch_.modified)
            for (int j = L_ + 1; j <= nm_; ++j) {
                const bool biased = dense_forward(tm, i0, cn, j, input_of(w, j), w.Z[j].data());
                activate(w, j, sp, cn, biased ? nullptr : B_[j].data());
            }
        for (int l = 1; l <= L_; ++l) {
            T* Z = (l == L_) ? w.out.data() : w.Z[l].data();
            const bool biased = dense_forward(tm, i0, cn, l, input_of(w, l), Z);
            if (l < L_ && !arch_.modified) {
                activate(w, l, sp, cn, biased ? nullptr : B_[l].data());
            } else if (l < L_) {
                // Row by row, so the gate reads the activations while they are in L1.
                const std::size_t ld = op_[l], blk = static_cast<std::size_t>(cn) * ld;
                for (int i = 0; i < cn; ++i) {
                    activate(w, l, sp, cn, biased ? nullptr : B_[l].data(), i, i + 1);
                    gate_forward(sp.pairs, sp.F(), blk, i * ld, (i + 1) * ld, w.H[l].data(), w.H[L_ + 1].data(),
                                 w.H[L_ + 2].data(), w.O[l].data());
                }
            } else if (!biased) {
                const T* b = B_[l].data();
                const int ldo = op_[l];
                for (int i = 0; i < cn; ++i) {
                    T* z = Z + static_cast<std::size_t>(i) * ldo;
                    for (int o = 0; o < ldo; ++o) z[o] += b[o];
                }
            }
        }
    }

  private:
    // ---------------------------------------------------------------- backward
    // In place on gbar (rows of h-bar become rows of z-bar):
    //   z̄ = s1 h̄ + Σ_f s2 z_f h̄_f + Σ_ab (s3 z_a z_b + s2 z_ab) h̄_ab
    //   z̄_f = s1 h̄_f + Σ_{ab ∋ f} s2 z_other h̄_ab (twice for a = b)      z̄_ab = s1 h̄_ab
    // (s2 = -2 h s1, s3 = -2 s1 (1 - 3h²)). Whole vectors over the chunk, as in activate; the
    // order (value, first, pairs) makes the in-place update safe.
    // Offsets [q0, q1) of each stream block only (q1 = 0: all), to fuse a pass per row.
    void adjoint_activate(Work& w, int l, const StreamSpec& sp, int cn, T* G, std::size_t q0 = 0, std::size_t q1 = 0) {
        using V = typename Vec<T>::type;
        const int ld = op_[l], F = sp.F(), P = sp.P();
        const std::size_t blk = static_cast<std::size_t>(cn) * ld, n = q1 ? q1 : blk;
        T* Z = w.Z[l].data();
        T* H = w.H[l].data();
        if (with_fixed_streams(F, P, [&](auto fc, auto pc) {
                adjoint_fixed<decltype(fc)::value, decltype(pc)::value>(Z, H, G, sp, blk, q0, n);
            }))
            return;
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
        for (std::size_t q = q0; q < n; q += Vec<T>::width) {
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

    // Per-point squared norm of matrix j's parameter gradient, by the Gram identity
    // ||Σ_s z̄_s h_sᵀ||² = Σ_{s,t} (z̄_s·z̄_t)(h_s·h_t), plus ||z̄_0||² for the bias (docs/design.md §2).
    // `in` are the input jets of matrix j (null: the raw input jet). Every block of the
    // modified MLP (chain and encoders) enters as W·(input jet), so the identity holds for each.
    void layer_norms(const Term<T>& tm, int j, const T* in, int i0, int cn, const T* G, T* norms) const {
        const StreamSpec& sp = tm.streams;
        const int S = sp.S(), F = sp.F(), ldo = op_[j], ldi = ip_[j];
        for (int i = 0; i < cn; ++i) {
            T acc = 0;
            for (int s = 0; s < S; ++s) {
                const T* gs = G + (static_cast<std::size_t>(s) * cn + i) * ldo;
                for (int t = s; t < S; ++t) {
                    T hh;
                    if (!in) {
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
                        hh = dot(in + (static_cast<std::size_t>(s) * cn + i) * ldi, in + (static_cast<std::size_t>(t) * cn + i) * ldi,
                                 iw_[j]);
                    }
                    if (hh == T(0)) continue;
                    const T gg = dot(gs, G + (static_cast<std::size_t>(t) * cn + i) * ldo, ow_[j]);
                    acc += (s == t ? T(1) : T(2)) * gg * hh;
                }
            }
            const T* g0 = G + static_cast<std::size_t>(i) * ldo;
            acc += dot(g0, g0, ow_[j]);
            norms[i0 + i] += acc;
        }
    }

    // gW_j^T += Σ_s in_sᵀ z̄_s over the chunk, gb_j += Σ_i z̄_0.
    void block_grad(const Term<T>& tm, int j, const T* in, int i0, int cn, const T* G, Work& w) const {
        const StreamSpec& sp = tm.streams;
        const int F = sp.F(), ldo = op_[j], R = sp.S() * cn;
        T* gWT = w.gWT[j].data();
        if (in) {
            // gW (out x in) += Z̄ᵀ H: A = Z̄ read transposed.
            if (small_out(j)) {
                small_out_grad<T>(R, ow_[j], iw_[j], in, ip_[j], G, ldo, gWT, ip_[j]);
            } else {
                gemm<T>(ow_[j], gemm_cols<T>(iw_[j]), R, G, 1, ldo, in, ip_[j], gWT, ip_[j], !w.fresh[j]);
                w.fresh[j] = 0;
            }
        } else if (tm.d <= kRawSums) {
            raw_input_grad(tm, i0, cn, G, ldo, gWT, w.gb[j].data());
            return;
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
        // gb += Σ_i z̄_0,i: column sums in registers, one update of gb per chunk.
        using V = typename Vec<T>::type;
        T* gb = w.gb[j].data();
        for (int o = 0; o < ldo; o += Vec<T>::width) {
            V sb = V{};
            for (int i = 0; i < cn; ++i) sb += *reinterpret_cast<const V*>(G + static_cast<std::size_t>(i) * ldo + o);
            *reinterpret_cast<V*>(gb + o) += sb;
        }
    }

    // The first layer fed by the raw input jet (x̂, scale_k e_k, 0), d <= kRawSums inputs: per
    // vector of output units, the chunk's sums Σ_i x̂_ik z̄_0,i, Σ_i z̄_0,i (the bias) and
    // Σ_i z̄_f,i stay in registers and update gWT and gb once per chunk (per point, the
    // read-modify-write of d + 1 rows cost more than the FMAs).
    static constexpr int kRawSums = 8;
    void raw_input_grad(const Term<T>& tm, int i0, int cn, const T* G, int ldo, T* gWT, T* gb) const {
        using V = typename Vec<T>::type;
        const StreamSpec& sp = tm.streams;
        const int d = tm.d, F = sp.F();
        const T* X = tm.xhat.data() + static_cast<std::size_t>(i0) * d;
        auto vat = [](const T* p) { return *reinterpret_cast<const V*>(p); };
        for (int o = 0; o < ldo; o += Vec<T>::width) {
            V sx[kRawSums], sb = V{};
            for (int k = 0; k < d; ++k) sx[k] = V{};
            for (int i = 0; i < cn; ++i) {
                const V g = vat(G + static_cast<std::size_t>(i) * ldo + o);
                sb += g;
                for (int k = 0; k < d; ++k) sx[k] += X[static_cast<std::size_t>(i) * d + k] * g;
            }
            for (int k = 0; k < d; ++k) *reinterpret_cast<V*>(gWT + static_cast<std::size_t>(k) * ldo + o) += sx[k];
            *reinterpret_cast<V*>(gb + o) += sb;
            for (int f = 0; f < F; ++f) {
                V sf = V{};
                const T* Gf = G + static_cast<std::size_t>(1 + f) * cn * ldo + o;
                for (int i = 0; i < cn; ++i) sf += vat(Gf + static_cast<std::size_t>(i) * ldo);
                const int k = sp.first[f];
                *reinterpret_cast<V*>(gWT + static_cast<std::size_t>(k) * ldo + o) += tm.scale[k] * sf;
            }
        }
    }

    // The default backward visitor: accumulate gradients and/or per-point squared norms.
    struct Accumulate {
        const Model& m;
        const Term<T>& tm;
        int i0, cn;
        Work& w;
        bool grad;
        T* norms;
        LayerHook* hook;
        void block(int j, const T* G, const T* in) {
            if (grad) m.block_grad(tm, j, in, i0, cn, G, w);
            if (norms) m.layer_norms(tm, j, in, i0, cn, G, norms);
            if (hook && j <= m.L_) hook->layer(tm, j, i0, cn, G, w);
        }
        void embed(const T* A) {
            embed_grad<T>(m.arch_.features, tm.xhat.data(), tm.d, tm.scale.data(), tm.streams.first, i0, cn, A, m.padM_,
                          grad ? w.gB.data() : nullptr, norms);
        }
    };

  public:
    // The reverse sweep of one chunk. G = w.gbar0 holds z̄ of the output layer on entry
    // (S*cn rows of the padded output width). For every parameter block the visitor gets
    //   vis.block(j, G_j, in_j): G_j the adjoint jets of matrix j's pre-activation (S*cn rows of
    //     op_[j] columns), in_j its input jets (S*cn rows of ip_[j]; null = the raw input jet
    //     (x̂, scale e_k, 0)); point i's gradient is Σ_s G_j,s,i in_j,s,iᵀ and G_j,0,i for b_j;
    //   vis.embed(A) (trainable embedding only): A the phase adjoints ā (streams 0..F, cn rows of
    //     padM columns); point i's gradient of B is 2π (ā_0 x̂ᵀ + Σ_f ā_f scale_{k_f} e_{k_f}ᵀ).
    // A per-row Jacobian sweep passes a visitor that writes these per point instead of summing.
    template <class Visitor> void backward_chunk(const Term<T>& tm, int cn, Work& w, Visitor& vis) {
        const StreamSpec& sp = tm.streams;
        const int S = sp.S(), F = sp.F(), R = S * cn;
        T* G = w.gbar0.data();
        T* Gnext = w.gbar1.data();
        const T* in0 = input_of(w, 1);
        if (arch_.modified) {
            std::memset(w.Ub.data(), 0, sizeof(T) * R * op_[1]);
            std::memset(w.Vb.data(), 0, sizeof(T) * R * op_[1]);
        }
        for (int l = L_; l >= 1; --l) {
            vis.block(l, G, input_of(w, l));
            if (l >= 2) {
                const int ldi = op_[l - 1];
                if (small_out(l))
                    small_out_adjoint<T>(R, ow_[l], ldi, G, op_[l], Wp_[l].data(), ldi, Gnext, ldi);
                else
                    gemm<T>(R, gemm_cols<T>(ow_[l - 1]), ow_[l], G, op_[l], 1, Wp_[l].data(), ldi, Gnext, ldi, false);
                if (arch_.modified) {
                    // Row by row: the gate's z̄ goes through the activation while in L1.
                    const std::size_t blk = static_cast<std::size_t>(cn) * ldi;
                    for (int i = 0; i < cn; ++i) {
                        const std::size_t q0 = static_cast<std::size_t>(i) * ldi, q1 = q0 + ldi;
                        gate_adjoint(sp.pairs, F, blk, q0, q1, w.H[l - 1].data(), w.H[L_ + 1].data(), w.H[L_ + 2].data(), Gnext,
                                     w.Ub.data(), w.Vb.data());
                        adjoint_activate(w, l - 1, sp, cn, Gnext, q0, q1);
                    }
                } else {
                    adjoint_activate(w, l - 1, sp, cn, Gnext);
                }
                std::swap(G, Gnext);
            } else if (arch_.trainable) {
                gemm<T>(R, gemm_cols<T>(widths_[0]), ow_[1], G, op_[1], 1, Wp_[1].data(), pad0_, w.Ebar.data(), pad0_, false);
            }
        }
        if (arch_.modified)
            for (int j = L_ + 1; j <= nm_; ++j) {
                T* Gj = (j == L_ + 1) ? w.Ub.data() : w.Vb.data();
                adjoint_activate(w, j, sp, cn, Gj);
                vis.block(j, Gj, in0);
                if (arch_.trainable)
                    gemm<T>(R, gemm_cols<T>(widths_[0]), ow_[j], Gj, op_[j], 1, Wp_[j].data(), pad0_, w.Ebar.data(), pad0_, true);
            }
        if (arch_.trainable) {
            embed_adjoint(arch_, sp.first, sp.pairs, w.af, cn, pad0_, w.E.data(), w.Ebar.data(), padM_, w.A.data());
            vis.embed(w.A.data());
        }
    }

    void backward_chunk(const Term<T>& tm, int i0, int cn, Work& w, bool want_grad, T* norms, LayerHook* hook = nullptr) {
        Accumulate acc{*this, tm, i0, cn, w, want_grad, norms, hook};
        backward_chunk(tm, cn, w, acc);
    }

  private:
    // ---------------------------------------------------------------- residual tables
    // r_c = Σ_m coef_m Π J_f ; for the loss, J̄ += (2 w_i / N) r_c ∂r_c/∂J.
    // For the NTK pass of component c, J̄ = ∂r_c/∂J.
    void table_adjoint(const Term<T>& tm, int i0, int cn, Work& w, Mode mode, int ntk_comp,
                       SweepOut<T>& out) {
        const Table<T>& tb = tm.table;
        const int ldo = op_[L_], C = tb.components, M = tb.monomials();
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
        const int S = tm.streams.S(), m = widths_[L_], ldo = op_[L_];
        const int cn_max = chunk_for(S);
        prepare(w, S, cn_max, tm.table.components);
        if (emb_) embed_phases(arch_, omega_.data(), d_, tm.scale.data(), tm.streams.first, w.om, w.af);
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
        if (grad) finish_grad(w);
    }

    void sweep(const Term<T>& tm, Mode mode, SweepOut<T>& out, int nthreads) {
        const int n = tm.n;
        if (out.want_norms && out.norms) std::fill(out.norms, out.norms + n, T(0));
        // Threads pay off above ~2 Mflop (~40 µs of work); waking a polling worker costs ~1 µs.
        double flops = 0;
        for (int j = 1; j <= nm_; ++j) flops += 2.0 * ow_[j] * iw_[j];
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
        for (int t = 1; t < T_; ++t) {
            for (int j = 1; j <= nm_; ++j) {
                const std::size_t nw = static_cast<std::size_t>(ip_[j]) * op_[j];
                T* a = work_[0].gWT[j].data();
                const T* b = work_[t].gWT[j].data();
                for (std::size_t q = 0; q < nw; ++q) a[q] += b[q];
                T* ga = work_[0].gb[j].data();
                const T* gb = work_[t].gb[j].data();
                for (int o = 0; o < op_[j]; ++o) ga[o] += gb[o];
            }
            for (std::size_t q = 0; q < work_[0].gB.size(); ++q) work_[0].gB[q] += work_[t].gB[q];
        }
        for (int j = 1; j <= nm_; ++j) {
            const int out_w = ow_[j], in_w = iw_[j], po = op_[j], pi = ip_[j];
            const T* gWT = work_[0].gWT[j].data();
            T* gW = out.grad + w_off_[j];
            if (out_major(j)) {
                for (int o = 0; o < out_w; ++o)
                    std::memcpy(gW + static_cast<std::size_t>(o) * in_w, gWT + static_cast<std::size_t>(o) * pi, sizeof(T) * in_w);
            } else {
                for (int o = 0; o < out_w; ++o)
                    for (int k = 0; k < in_w; ++k)
                        gW[static_cast<std::size_t>(o) * in_w + k] = gWT[static_cast<std::size_t>(k) * po + o];
            }
            std::memcpy(out.grad + b_off_[j], work_[0].gb[j].data(), sizeof(T) * out_w);
        }
        if (arch_.trainable) std::memcpy(out.grad + B_off_, work_[0].gB.data(), sizeof(T) * work_[0].gB.size());
    }
};

}  // namespace pinncore
