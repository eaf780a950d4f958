#!/usr/bin/env python
"""Levenberg–Marquardt benchmarks, in ONE process.

Part 1 (``--part iteration``): the cost of one LM iteration on the seed oscillator
([1,50,50,50,1], 50 collocation points + the 2-component IC: 52 residual rows, 5 301
parameters, residual-space solve of a 52×52 system) against one Adam step, and against the
plain PyTorch float64 formulation (J by ``torch.func.jacrev``, δ = −Jᵀ(JJᵀ + μI)⁻¹ r) when
torch is installed — after checking that both compute the same J. Also the time to
rel-L2 <= 1e-6 from random initialisation at λ_ic = 1 and the error for every λ_ic.

Part 2 (``--part accuracy``): time-to-accuracy on the library problems: Adam alone,
Adam + L-BFGS and Adam → LM (the same short Adam phase, default weighting, then each method
until the same wall-time budget), rel-L2 read from the history rows.

Usage (from the repository root, against the installed package):

    OPENBLAS_NUM_THREADS=1 python bench/lm_bench.py --part iteration --threads 1
    OPENBLAS_NUM_THREADS=1 python bench/lm_bench.py --part accuracy --budget 120 --problems heat1d,wave1d,burgers,helmholtz2d

The dense algebra of LM (JJᵀ, Cholesky) runs in NumPy/SciPy's OpenBLAS: on a machine shared with other
processes its spinning worker threads can cost 10x (a 1256x1256 Cholesky took 1.7 s with 2 threads, 0.1 s
with one), hence OPENBLAS_NUM_THREADS=1 here.

PyTorch is optional (`pip install torch==2.13.0`); it is never a dependency of pinncore.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time

import numpy as np

import pinncore as pc
from pinncore.lm import LevenbergMarquardt
from pinncore.objective import Objective
from pinncore.observers import Observer
from pinncore.optim import Adam

try:  # optional
    import torch
except ImportError:  # pragma: no cover - depends on the environment
    torch = None

SEED_LAYERS = [1, 50, 50, 50, 1]


# ------------------------------------------------------------------------- part 1: one iteration
def pinncore_lm(lam, seed, iterations, target=None, geodesic=True):
    """LM from random initialisation through the optimizer interface (no run, no logging).
    Returns (per-iteration times, final rel-L2, seconds to target or None)."""
    problem = pc.problems.harmonic()
    net = pc.MLP(SEED_LAYERS, seed=seed)
    obj = Objective(problem, net, np.array([1.0, lam]))
    lm = LevenbergMarquardt(geodesic=geodesic)
    state = lm.init(net.params)
    times, t_hit, elapsed = [], None, 0.0
    for _ in range(iterations):
        t0 = time.perf_counter()
        reason = lm.step(net.params, state, obj, None)
        dt = time.perf_counter() - t0
        times.append(dt)
        elapsed += dt
        if target is not None and t_hit is None and problem.rel_l2(net) <= target:  # not timed
            t_hit = elapsed
        if reason is not None:
            break
    return times, problem.rel_l2(net), t_hit


def adam_step_time(repeats):
    """One Adam step on the seed problem: the kernel's fused losses+gradients and the update."""
    problem = pc.problems.harmonic()
    net = pc.MLP(SEED_LAYERS, seed=0)
    obj = Objective(problem, net, np.array([1.0, 1.0]))
    opt = Adam()
    state = opt.init(net.params)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        ev = obj.evaluate(net.params)
        opt.step(net.params, state, obj, ev)
        times.append(time.perf_counter() - t0)
    return times


class TorchLM:
    """The plain PyTorch float64 LM: r(θ) with u_t, u_tt by nested torch.func derivatives,
    J = jacrev(r)(θ), residual-space solve, μ ×2 on rejection and ÷3 on acceptance."""

    def __init__(self, problem, params, lam):
        self.shapes = [(o, i) for i, o in zip(SEED_LAYERS[:-1], SEED_LAYERS[1:])]
        self.theta = torch.tensor(params, dtype=torch.float64)
        self.t = torch.tensor(problem.terms["pde"].points[:, 0], dtype=torch.float64)
        self.scale, self.shift = float(problem.scale[0]), float(problem.shift[0])
        self.sp, self.si = math.sqrt(1.0 / self.t.numel()), math.sqrt(lam)
        self.mu = 1e-3

    def _u(self, theta, t):
        h, off = (t * self.scale + self.shift).reshape(1), 0
        for k, (o, i) in enumerate(self.shapes):
            W = theta[off:off + o * i].reshape(o, i)
            off += o * i
            b = theta[off:off + o]
            off += o
            h = W @ h + b
            if k < len(self.shapes) - 1:
                h = torch.tanh(h)
        return h[0]

    def residuals(self, theta):
        f = torch.func
        u_t = f.grad(self._u, argnums=1)
        u_tt = f.grad(u_t, argnums=1)
        w2 = (2 * math.pi) ** 2
        pde = f.vmap(lambda t: u_tt(theta, t) + w2 * self._u(theta, t))(self.t) * self.sp
        t0 = torch.zeros((), dtype=torch.float64)
        ic = torch.stack([self._u(theta, t0) - 1.0, u_t(theta, t0)]) * self.si
        return torch.cat([pde, ic])

    def jacobian(self):
        return torch.func.jacrev(self.residuals)(self.theta)

    def iteration(self):
        r = self.residuals(self.theta)
        J = self.jacobian()
        K = J @ J.T
        F = float(r @ r)
        for _ in range(10):
            y = torch.linalg.solve(K + self.mu * torch.eye(K.shape[0], dtype=K.dtype), r)
            trial = self.theta - J.T @ y
            Fn = float((self.residuals(trial) ** 2).sum())
            if math.isfinite(Fn) and Fn < F:
                self.theta, self.mu = trial, self.mu / 3
                return
            self.mu *= 2


def part_iteration(args):
    pc.set_num_threads(args.threads)
    out = {"threads": args.threads}
    # the same J as PyTorch first (the comparison is meaningless otherwise)
    problem = pc.problems.harmonic()
    net = pc.MLP(SEED_LAYERS, seed=0)
    r, J = problem.residual_jacobian(net)
    if torch is not None:
        torch.set_num_threads(args.threads)
        tl = TorchLM(problem, net.params, 1.0)
        Jt = tl.jacobian().numpy()
        err = float(np.abs(Jt - J).max() / np.abs(J).max())
        print(f"J vs torch.func.jacrev: max rel error {err:.1e}")
        assert err < 1e-10
    # the plain iteration (one trial, no acceleration: the unit the iteration target counts) and
    # the default's (geodesic: two more residual passes and a re-solve per trial) over its first
    # 40 iterations — after convergence its trials are mostly rejected, which a median over 200
    # iterations would count instead
    t_lm, _, _ = pinncore_lm(1.0, 0, args.iterations, geodesic=False)
    t_geo, _, _ = pinncore_lm(1.0, 0, 40)
    t_adam = adam_step_time(max(args.iterations, 200))
    med_lm, med_adam, med_geo = statistics.median(t_lm), statistics.median(t_adam), statistics.median(t_geo)
    print(f"seed oscillator, 52 rows x {net.n_params} params, {args.threads} thread(s):")
    print(f"  pinncore LM iteration  median {med_lm * 1e3:8.3f} ms  (mean {statistics.mean(t_lm) * 1e3:.3f} ms; plain steps)")
    print(f"  pinncore Adam step     median {med_adam * 1e3:8.3f} ms  -> LM iteration = {med_lm / med_adam:.1f} Adam steps")
    print(f"  default (geodesic) LM iteration, first 40: median {med_geo * 1e3:.3f} ms = {med_geo / med_lm:.2f}x plain")
    rate = matmul_rate()
    t_gram = J.shape[0] ** 2 * J.shape[1] / rate   # JJᵀ's rows²·P flops (syrk) at the matmul rate
    print(f"  matmul rate {rate / 1e9:.1f} GFLOP/s in this run: JJᵀ's rows²·P flops take {t_gram * 1e3:.3f} ms "
          f"-> LM iteration = {med_lm / t_gram:.1f}x that")
    out.update(lm_ms=med_lm * 1e3, adam_ms=med_adam * 1e3, geodesic_ms=med_geo * 1e3, rate=rate, gram_ms=t_gram * 1e3)
    if torch is not None:
        tl = TorchLM(problem, pc.MLP(SEED_LAYERS, seed=0).params, 1.0)
        tt = []
        for _ in range(args.torch_iterations):
            t0 = time.perf_counter()
            tl.iteration()
            tt.append(time.perf_counter() - t0)
        med_t = statistics.median(tt)
        print(f"  PyTorch {torch.__version__} jacrev LM  median {med_t * 1e3:8.3f} ms  -> pinncore is "
              f"{med_t / med_lm:.0f}x faster per iteration")
        out.update(torch_ms=med_t * 1e3, torch=torch.__version__)
    print("time to accuracy from random initialisation (LM only, rel-L2 checks not timed; 'median-based' ="
          " iterations to 1e-6 x the median iteration time, robust to a loaded machine's outliers):")
    for lam in (1.0, 1e1, 1e2, 1e3, 1e4, 1e5):
        for seed in args.seeds:
            times, err, hit = pinncore_lm(lam, seed, args.max_iterations, target=1e-6)
            hit_s = "never"
            if hit is not None:
                n_hit = int(np.searchsorted(np.cumsum(times), hit - 1e-12)) + 1
                hit_s = (f"{hit:.3f} s, iteration {n_hit} "
                         f"(median-based {n_hit * statistics.median(times[:n_hit]):.3f} s)")
            print(f"  λ_ic={lam:8.0e} seed {seed}: rel-L2 {err:.2e} after {len(times)} iterations "
                  f"({sum(times):.2f} s); <= 1e-6 at {hit_s}")
            out.setdefault("sweep", []).append(dict(lam=lam, seed=seed, rel_l2=err, iterations=len(times),
                                                    seconds=sum(times), t_1e6=hit))
    return out


# ------------------------------------------------------------------------- part 3: LM at 10 000 rows
def matmul_rate(n=1000, repeats=7):
    """float64 flop/s of NumPy's matmul (n x n x n), median of ``repeats``: the reference rate."""
    a, b = np.random.default_rng(0).standard_normal((2, n, n))
    c = np.empty((n, n))
    np.matmul(a, b, out=c)
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.matmul(a, b, out=c)
        ts.append(time.perf_counter() - t0)
    return 2.0 * n ** 3 / statistics.median(ts)


def _rows_iterations(problem, width, geodesic, iterations, jac=None, A=None, g=None):
    """Median seconds of one LM iteration (and of the normal equations alone, when ``jac`` is
    given) over ``iterations`` iterations after a warm-up one; trials per iteration."""
    net = pc.MLP([2] + [width] * 3 + [1], seed=0)
    obj = Objective(problem, net, np.array([1.0, 10.0]))
    lm = LevenbergMarquardt(geodesic=geodesic)
    state = lm.init(net.params)
    lm.step(net.params, state, obj, None)           # warm-up: workspace, first damping
    t_ne, t_it, trials = [], [], []
    for _ in range(iterations):
        if jac is not None:
            lin = jac.linearize(net.params)
            t0 = time.perf_counter()
            lin.normal(A=A, g=g)
            t_ne.append(time.perf_counter() - t0)
        before = state["accepted"] + state["rejected"]
        t0 = time.perf_counter()
        lm.step(net.params, state, obj, None)
        t_it.append(time.perf_counter() - t0)
        trials.append(state["accepted"] + state["rejected"] - before)
    return statistics.median(t_it), (statistics.median(t_ne) if t_ne else None), statistics.median(trials)


def part_rows(args):
    """One LM iteration in the parameter-space form at N rows, P parameters (Helmholtz, a
    [2,w,w,w,1] net) against the time of JᵀJ's N·P² flops at the matmul rate of this run:
    plain steps (the iteration: normal equations, Cholesky, trial residuals) and the default
    geodesic steps (+ two residual passes, Jᵀr_hh and a re-solve per trial)."""
    pc.set_num_threads(args.threads)
    n_bc = 400
    problem = pc.problems.helmholtz2d(n_collocation=args.rows - n_bc, n_bc=n_bc)
    from pinncore.jacobian import ResidualJacobian
    jac = ResidualJacobian(problem, pc.MLP([2] + [args.width] * 3 + [1], seed=0), np.array([1.0, 10.0]))
    N, P = jac.rows, jac.n_params
    A, g = np.empty((P, P)), np.empty(P)
    rate = matmul_rate()
    med_it, med_ne, trials = _rows_iterations(problem, args.width, False, args.row_iterations, jac, A, g)
    med_geo, _, trials_geo = _rows_iterations(problem, args.width, True, args.row_iterations)
    rate = 0.5 * (rate + matmul_rate())   # before and after: the machine's load drifts
    t_ref = N * P * P / rate
    print(f"LM at {N} rows x {P} parameters ([2,{args.width},{args.width},{args.width},1], Helmholtz), "
          f"{args.threads} thread(s); matmul rate {rate / 1e9:.1f} GFLOP/s -> N·P² flops take {t_ref * 1e3:.1f} ms")
    print(f"  JᵀJ + Jᵀr (kernel rows + syrk)  median {med_ne * 1e3:8.1f} ms = {med_ne / t_ref:.2f}x N·P²/rate")
    print(f"  LM iteration, plain steps       median {med_it * 1e3:8.1f} ms = {med_it / t_ref:.2f}x N·P²/rate "
          f"(trials per iteration: {trials:.0f})")
    print(f"  LM iteration, geodesic (default) median {med_geo * 1e3:7.1f} ms = {med_geo / t_ref:.2f}x N·P²/rate "
          f"(trials per iteration: {trials_geo:.0f})")
    return dict(rows=N, params=P, rate=rate, t_ref=t_ref, normal_ms=med_ne * 1e3, iteration_ms=med_it * 1e3,
                geodesic_ms=med_geo * 1e3, normal_ratio=med_ne / t_ref, iteration_ratio=med_it / t_ref,
                geodesic_ratio=med_geo / t_ref)


# ------------------------------------------------------------------------- part 4: geodesic acceleration
GEODESIC_CASES = [("heat1d", dict(n_collocation=500, n_ic=64, n_bc=64), [2, 30, 30, 30, 1]),
                  ("heat1d", dict(n_collocation=3000, n_ic=200, n_bc=200), [2, 20, 20, 1]),
                  ("burgers", dict(n_collocation=600, n_ic=100, n_bc=100), [2, 30, 30, 30, 1])]


def part_geodesic(args):
    """Plain against geodesic LM steps from the same point after 500 Adam steps (Fixed weights):
    rel-L2 and seconds every 30 iterations, for 120 iterations."""
    pc.set_num_threads(args.threads)
    out = []
    for name, kw, layers in GEODESIC_CASES:
        problem = pc.problems.REGISTRY[name](**kw)
        run = pc.Run(problem, pc.MLP(layers, seed=0), weighting=pc.Fixed(), warn=False)
        run.step(500)
        p0 = run.net.params.copy()
        for geodesic in (False, True):
            net = pc.MLP(layers, seed=0)
            net.params[:] = p0
            obj = Objective(problem, net, np.ones(len(problem.term_names)))
            lm = LevenbergMarquardt(geodesic=geodesic)
            state = lm.init(net.params)
            t0, marks = time.perf_counter(), []
            for it in range(120):
                reason = lm.step(net.params, state, obj, None)
                if it % 30 == 29:
                    marks.append((it + 1, time.perf_counter() - t0, problem.rel_l2(net)))
                if reason:
                    break
            print(f"{name:8s} {lm._ws.rows:5d} rows x {lm._ws.P:5d} ({lm._ws.kind:9s}) geodesic={geodesic!s:5s} "
                  + "  ".join(f"it {i}: {e:.1e} ({t:.1f} s)" for i, t, e in marks), flush=True)
            out.append(dict(problem=name, geodesic=geodesic, marks=marks))
    return out


# ------------------------------------------------------------------------- part 2: time to accuracy
class Budget(Observer):
    """Stop a run once its wall time (all phases) passes ``seconds``; record (seconds since
    the start, rel-L2) at every history row (the rel-L2 evaluation itself is not counted)."""

    every = "step"

    def __init__(self, seconds):
        self.seconds, self.t0, self.excluded = seconds, None, 0.0
        self.curve = []

    def _now(self):
        return time.perf_counter() - self.t0 - self.excluded

    def on_start(self, run):
        if self.t0 is None:
            self.t0 = time.perf_counter()

    def on_step(self, run, step):
        return self._now() > self.seconds

    def on_log(self, run, row):
        # the run computed rel_l2 for this row just before; its cost is small next to the
        # budget, and it is counted the same way for every method
        self.curve.append((self._now(), row.get("rel_l2", float("nan"))))


def curve(problem, method, adam_steps, budget, seed, log_every):
    """(wall times, rel-L2) of the history rows of one method within the budget."""
    budget_obs = Budget(budget)
    run = pc.Run(problem, None, seed=seed, log_every=log_every, warn=False, observers=[budget_obs])
    status = run.step(adam_steps if method != "adam" else 10 ** 9)
    if method != "adam" and status == "completed":
        run.step(10 ** 9, optimizer=method)
    res = run.result()
    t, e = zip(*budget_obs.curve)
    return np.asarray(t), np.asarray(e), res


def at_time(t, e, when):
    ok = t <= when
    return float(e[ok][-1]) if ok.any() else float("nan")


def part_accuracy(args):
    pc.set_num_threads(args.threads)
    out = []
    for name in args.problems:
        problem = pc.problems.REGISTRY[name]()
        rows = {}
        for method in ("adam", "lbfgs", "lm"):
            t, e, res = curve(problem, method, args.adam_steps, args.budget, args.seed, args.log_every)
            rows[method] = (t, e)
            print(f"{name:12s} {method:6s} final rel-L2 {res.rel_l2:.2e} at {t[-1]:6.1f} s, step {res.step} "
                  f"({res.message or res.status})", flush=True)
        marks = [args.budget * f for f in (0.25, 0.5, 1.0)]
        cells = {m: [at_time(*rows[m], w) for w in marks] for m in rows}
        print(f"{name:12s} rel-L2 at {', '.join(f'{w:.0f} s' for w in marks)}:")
        label = {"adam": "Adam", "lbfgs": f"Adam {args.adam_steps} + L-BFGS", "lm": f"Adam {args.adam_steps} + LM"}
        for m in rows:
            print(f"    {label[m]:24s} " + "  ".join(f"{v:9.2e}" for v in cells[m]))
        ratio = cells["lbfgs"][-1] / cells["lm"][-1]
        print(f"    (Adam + L-BFGS) / (Adam + LM) at {marks[-1]:.0f} s: {ratio:.1f}x", flush=True)
        out.append(dict(problem=name, marks=marks, **{m: cells[m] for m in cells}, ratio=ratio))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", choices=["iteration", "rows", "geodesic", "accuracy", "all"], default="all")
    ap.add_argument("--rows", type=int, default=10000, help="residual rows of part 'rows'")
    ap.add_argument("--width", type=int, default=21, help="hidden width of part 'rows' (21: P = 1 009)")
    ap.add_argument("--row-iterations", type=int, default=7, help="LM iterations timed in part 'rows'")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--iterations", type=int, default=200, help="LM iterations timed in part 1")
    ap.add_argument("--torch-iterations", type=int, default=20)
    ap.add_argument("--max-iterations", type=int, default=400, help="LM iterations of the λ sweep")
    ap.add_argument("--seeds", type=lambda s: [int(v) for v in s.split(",")], default=[0, 1])
    ap.add_argument("--problems", type=lambda s: s.split(","), default=["heat1d", "wave1d", "burgers", "helmholtz2d"])
    ap.add_argument("--budget", type=float, default=60.0, help="wall-time budget per method (s), part 2")
    ap.add_argument("--adam-steps", type=int, default=1000, help="the short Adam phase before L-BFGS / LM")
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    args = ap.parse_args(argv)
    res = {}
    if args.part in ("iteration", "all"):
        res["iteration"] = part_iteration(args)
    if args.part in ("rows", "all"):
        res["rows"] = part_rows(args)
    if args.part in ("geodesic", "all"):
        res["geodesic"] = part_geodesic(args)
    if args.part in ("accuracy", "all"):
        res["accuracy"] = part_accuracy(args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1, default=float)
    return 0


if __name__ == "__main__":
    sys.exit(main())
