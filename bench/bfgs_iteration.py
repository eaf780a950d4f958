#!/usr/bin/env python
"""The cost of one dense self-scaled BFGS iteration against one fused loss-and-gradient evaluation.

Burgers (ν = 0.01/π) with N ≈ 4 000 collocation points (3 600 + 200 initial + 200 boundary) on a
[2,21,21,21,1] network (P = 1 009), after 300 Adam steps and ``--warm`` SSBFGS iterations. In
ONE process, interleaved in rounds so that machine load hits both alike:

* eval: ``objective.evaluate`` (the kernel's fused per-term losses and gradients);
* iteration: ``run.step(1)`` of the SSBFGS phase — the direction (dsymv), the strong-Wolfe line
  search (its evaluations), the rank-2 update (dsyr2) and the run's bookkeeping;
* own: the BFGS algebra alone (dsymv + dsyr2 on the P × P matrix), timed on its own.

Prints medians and the ratios iteration/eval and (iteration − evals·eval)/eval; the target of
issue 20 is iteration ≤ 2 × eval.

Usage (from the repository root):

    python bench/bfgs_iteration.py --threads 2 --rounds 30
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

import pinncore as pc
from pinncore.bfgs import BFGS, OneBlasThread
from pinncore.objective import Objective


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--width", type=int, default=21)
    ap.add_argument("--warm", type=int, default=20, help="SSBFGS iterations before timing (default 20)")
    args = ap.parse_args()
    pc.set_num_threads(args.threads)
    prob = pc.problems.burgers(n_collocation=3600, n_ic=200, n_bc=200)
    net = pc.MLP([2, args.width, args.width, args.width, 1], seed=0)
    run = pc.Run(prob, net, weighting=pc.Fixed(), log_every=10 ** 9, warn=False, progress=False)
    run.step(300)
    run.step(args.warm, optimizer=BFGS())
    obj, P = run.objective, run.net.n_params
    # a second objective over the same net times the evaluation without touching the run's cache
    timer = Objective(run.problem, run.net, obj.weights)
    N = sum(prob.n_points.values())
    calls = {"n": 0}
    inner = obj.value_and_gradient

    def counted(x):
        calls["n"] += 1
        return inner(x)

    obj.value_and_gradient = counted   # count the line search's evaluations (instance attribute)
    S = np.asfortranarray(run.opt_state["H"].copy())
    v = np.random.default_rng(0).standard_normal(P)
    from scipy.linalg import blas
    ev, it, own, evals = [], [], [], []
    for _ in range(args.rounds):
        t = time.perf_counter()
        timer.evaluate(None, remember=False)
        ev.append(time.perf_counter() - t)
        n0 = calls["n"]
        t = time.perf_counter()
        run.step(1)
        it.append(time.perf_counter() - t)
        evals.append(calls["n"] - n0)
        t = time.perf_counter()
        with OneBlasThread():   # the optimizer runs its BLAS in this context
            blas.dsymv(1.0, S, v, lower=0)
            blas.dsyr2(1e-30, v, v, lower=0, a=S, overwrite_a=1)
        own.append(time.perf_counter() - t)
    e, i, o = statistics.median(ev), statistics.median(it), statistics.median(own)
    mean_evals = sum(evals) / len(evals)
    print(f"Burgers, P = {P}, N = {N}, threads {args.threads}, rounds {args.rounds}, after {args.warm} SSBFGS "
          f"iterations, load {os.getloadavg()[0]:.2f}")
    print(f"  fused loss+gradient evaluation   {e * 1e3:8.3f} ms")
    print(f"  one SSBFGS iteration (run.step)  {i * 1e3:8.3f} ms  ({mean_evals:.2f} evaluations per iteration)")
    print(f"  BFGS algebra (dsymv + dsyr2)     {o * 1e3:8.3f} ms")
    print(f"  iteration / evaluation           {i / e:8.2f}x   (target <= 2)")
    print(f"  iteration without its line-search evaluations / evaluation "
          f"{max(i - mean_evals * e, 0.0) / e:.2f}x")


if __name__ == "__main__":
    main()
