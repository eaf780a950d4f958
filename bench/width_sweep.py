#!/usr/bin/env python
"""Whole Adam steps through ``pc.Run`` as a fraction of the matrix-product rate measured in the
same process, across widths, point counts, thread counts and dtypes (issue 22).

A step is what ``pc.train`` does per Adam iteration: one kernel call for every term's loss and
gradient, the run loop, the fused Adam update (``weighting=pc.Fixed()``, no history rows inside
the timed blocks). Flops per step = 3 · 2 · Σ_terms S·N · Σ_layers n_in·n_out (forward jets,
adjoint jets, weight gradients; bench/README.md). The matmul rate is NumPy's 2048³ product
in the same dtype on the same number of threads (threadpoolctl), best of several, measured
before and after the steps; the fraction uses the better of the two.

    python bench/width_sweep.py                        # the issue's cases (their table)
    python bench/width_sweep.py --sweep                # widths × N × threads × dtypes (the sweep's table)
    python bench/width_sweep.py --sweep --widths 20,50 --ns 1000 --threads 1 --dtypes float64
    python bench/width_sweep.py --sweep --cpu-time     # on a shared, loaded machine

Networks: the seed case is ``pc.problems.harmonic(n_collocation=50)`` on [1,50,50,50,1]; the
other cases are Burgers (``pc.problems.burgers``, streams u, u_t, u_x, u_xx on the PDE points)
with N PDE points and 256 IC and 256 BC points (its defaults, as in the issue); the sweep's rows
are Burgers [2, w, w, w, 1] with N PDE points and N/8 (at least 4) IC and BC points.
Timing: blocks of steps of ≈ 20 ms, the minimum per-step time over the blocks (the least
disturbed block on a shared machine). Print the load (``uptime``) beside any figure you quote.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

import pinncore as pc

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - the rate is then NumPy's default thread count
    threadpool_limits = None


# The clock: wall time, or (--cpu-time) CPU time, which on a loaded machine counts only the
# time the process actually ran: the process's CPU time on one thread; on two, the calling
# thread's own CPU time (it computes its half of the points, then waits for the worker,
# spinning; on an idle machine this equals the wall time).
CPU_TIME = [False]


def clock_for(threads):
    if not CPU_TIME[0]:
        return time.perf_counter
    return time.process_time if threads == 1 else time.thread_time


def matmul_rate(dtype, threads, n=2048, repeats=3):
    """GFLOP/s of NumPy's n³ product in ``dtype`` on ``threads`` threads (best of ``repeats``)."""
    clock = clock_for(threads)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    limits = threadpool_limits(limits=threads, user_api="blas") if threadpool_limits else None
    try:
        best = np.inf
        for _ in range(repeats):
            t = clock()
            a @ b
            best = min(best, clock() - t)
    finally:
        if limits is not None:
            limits.restore_original_limits()
    return 2.0 * n ** 3 / best / 1e9


def case_problem(kind, N, boundary=None):
    """The seed problem, or Burgers with N PDE points and ``boundary`` IC and BC points each
    (None: N/8, at least 4)."""
    if kind == "harmonic":
        return pc.problems.harmonic(n_collocation=N)
    m = boundary if boundary is not None else max(4, N // 8)
    return pc.problems.burgers(n_collocation=N, n_ic=m, n_bc=m)


def time_steps(problem, layers, dtype, threads, budget=0.02, blocks=15):
    """Minimum per-step seconds of whole Adam iterations of one run, in blocks of ≈ budget s."""
    clock = clock_for(threads)
    pc.set_num_threads(threads)
    net = pc.MLP(layers, seed=0, dtype=dtype)
    run = pc.Run(problem, net, weighting=pc.Fixed(), optimizer=pc.Adam(lr=1e-4), log_every=10 ** 9, warn=False)
    run.step(3)  # warm-up: workspaces, worker threads, the step-0 history row
    t = clock()
    run.step(3)
    per = max((clock() - t) / 3, 1e-6)
    k = max(1, int(budget / per))
    best = np.inf
    for _ in range(blocks):
        t = clock()
        run.step(k)
        best = min(best, (clock() - t) / k)
    if run.status not in ("running", "completed", "ready"):
        raise RuntimeError(f"run stopped: {run.status} {run.message}")
    return best


# The issue's cases: Burgers with its default 256 IC and 256 BC points.
ISSUE_CASES = [
    ("seed [1,50,50,50,1] N=50", "harmonic", [1, 50, 50, 50, 1], 50),
    ("Burgers [2,20,20,20,1] N=8000", "burgers", [2, 20, 20, 20, 1], 8000),
    ("Burgers [2,32,32,32,32,1] N=8000", "burgers", [2, 32, 32, 32, 32, 1], 8000),
    ("Burgers [2,64,64,64,64,1] N=2048", "burgers", [2, 64, 64, 64, 64, 1], 2048),
    ("Burgers [2,128,128,128,1] N=2048", "burgers", [2, 128, 128, 128, 1], 2048),
]


def load():
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def remeasure_rates(rates):
    """Measure the matmul rates again after the timings (keep the better of the two, the machine's
    rate when less loaded) and print them with the load average."""
    for key in rates:
        rates[key] = max(rates[key], matmul_rate(*key))
    print(f"load average after: {load()}")
    print("matmul rate (GFLOP/s, 2048³, same process): " +
          ", ".join(f"{dt} {th}t {r:.1f}" for (dt, th), r in rates.items()))
    print()


def issue_table(threads, dtypes):
    print(f"load average before: {load()}")
    rates = {(dt, th): matmul_rate(dt, th) for dt in dtypes for th in threads}
    rows = []
    for label, kind, layers, N in ISSUE_CASES:
        problem = case_problem(kind, N, boundary=256)
        fl = step_flops_of(problem, layers)
        for dt in dtypes:
            for th in threads:
                rows.append((label, dt, th, fl, time_steps(problem, layers, dt, th)))
    remeasure_rates(rates)
    print("| case | dtype | threads | per step | GFLOP/s | fraction of the matmul rate |")
    print("|---|---|---|---|---|---|")
    for label, dt, th, fl, t in rows:
        g = fl / t / 1e9
        print(f"| {label} | {dt} | {th} | {fmt_t(t)} | {g:.1f} | {100 * g / rates[(dt, th)]:.0f} % |")
    return rows, rates


def fmt_t(t):
    return f"{t * 1e3:.3f} ms" if t < 1e-2 else f"{t * 1e3:.2f} ms"


def step_flops_of(problem, layers):
    per = sum(a * b for a, b in zip(layers[:-1], layers[1:]))
    return 6.0 * problem_rows(problem) * per


def problem_rows(problem):
    """Σ_terms S·N of the problem's compiled terms (the kernel's row count per step)."""
    return sum(td.S * td.xhat.shape[0] for td in problem.lowering.data(np.float64))


def sweep_table(widths, ns, threads, dtypes):
    print(f"load average before: {load()}")
    rates = {(dt, th): matmul_rate(dt, th) for dt in dtypes for th in threads}
    res = {}
    for w in widths:
        layers = [2, w, w, w, 1]
        for N in ns:
            problem = case_problem("burgers", N)
            fl = step_flops_of(problem, layers)
            for dt in dtypes:
                for th in threads:
                    res[(w, N, dt, th)] = fl / time_steps(problem, layers, dt, th, blocks=8) / 1e9
    remeasure_rates(rates)
    cols = [(dt, th) for dt in dtypes for th in threads]
    print("| width | N | " + " | ".join(f"{dt} {th}t" for dt, th in cols) + " |")
    print("|---|---|" + "---|" * len(cols))
    for w in widths:
        for N in ns:
            cells = [f"{100 * res[(w, N, dt, th)] / rates[(dt, th)]:.0f} % ({res[(w, N, dt, th)]:.1f})"
                     for dt, th in cols]
            print(f"| {w} | {N} | " + " | ".join(cells) + " |")
    print("\ncells: fraction of the same-dtype, same-thread-count matmul rate (GFLOP/s of the step)")
    return res, rates


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sweep", action="store_true", help="the width × N table instead of the issue's cases")
    ap.add_argument("--widths", default="20,32,50,64,128")
    ap.add_argument("--ns", default="50,1000,8000")
    ap.add_argument("--threads", default=None, help="comma list (default: 1 for the cases, 1,2 for --sweep)")
    ap.add_argument("--dtypes", default=None, help="comma list (default: float64 for the cases, both for --sweep)")
    ap.add_argument("--cpu-time", action="store_true",
                    help="time with CPU time instead of wall time (see clock_for): a loaded machine then "
                         "distorts the figures less")
    a = ap.parse_args(argv)
    CPU_TIME[0] = a.cpu_time
    ints = lambda s: [int(v) for v in s.split(",") if v.strip()]
    if a.sweep:
        threads = ints(a.threads or "1,2")
        dtypes = (a.dtypes or "float64,float32").split(",")
        sweep_table(ints(a.widths), ints(a.ns), threads, dtypes)
    else:
        threads = ints(a.threads or "1")
        dtypes = (a.dtypes or "float64").split(",")
        issue_table(threads, dtypes)


if __name__ == "__main__":
    main()
