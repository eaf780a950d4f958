#!/usr/bin/env python
"""Python overhead of one training iteration of ``pc.Run``, measured without the kernel's
compute: the problem's step function is replaced by one that returns a fixed (L, G, R), so a
2000-step run times only the loop (weighting update, finiteness checks, logging every 100
steps, the fused Adam call). The baseline is the bare Adam kernel call on the same arrays.

    python bench/run_overhead.py [--steps 2000] [--repeat 7]

Reports medians of CPU time (time.process_time, robust to other processes on the machine).
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import pinncore as pc
from pinncore import backend


class FrozenProblem:
    """The seed problem with its kernel call replaced by a constant evaluation."""

    def __init__(self, problem, net):
        self.problem = problem
        self.ev = problem.step_function(net)(None, False)

    def step_function(self, net):
        ev = self.ev
        return lambda pw, residuals: ev


def time_run(problem, weighting, steps):
    net = pc.MLP([1, 50, 50, 50, 1], seed=0)
    frozen = FrozenProblem(problem, net)
    run = pc.Run(problem, net, weighting=weighting, warn=False, optimizer=pc.Adam(lr=1e-12))
    run.objective._evaluate = frozen.step_function(run.net)
    t = time.process_time()
    run.step(steps)
    return time.process_time() - t


def time_adam(problem, steps):
    net = pc.MLP([1, 50, 50, 50, 1], seed=0)
    L, G, _ = problem.step_function(net)(None, False)
    m, v, lam, p = np.zeros_like(net.params), np.zeros_like(net.params), np.array([1.0, 100.0]), net.params
    t = time.process_time()
    for k in range(steps):
        backend.adam_step(p, G, lam, m, v, 1e-12, 0.9, 0.999, 1e-8, k + 1)
    return time.process_time() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=7)
    a = ap.parse_args()
    pc.set_num_threads(1)
    problem = pc.problems.harmonic()
    base = statistics.median(time_adam(problem, a.steps) for _ in range(a.repeat))
    print(f"bare Adam kernel call: {base / a.steps * 1e6:.2f} µs/step")
    for name, w in (("Fixed", pc.Fixed({"ic": 100.0})), ("NTK(every=100)", pc.NTK()), ("GradNorm", pc.GradNorm())):
        t = statistics.median(time_run(problem, w, a.steps) for _ in range(a.repeat))
        print(f"Run loop, {name:<15}: {t / a.steps * 1e6:.2f} µs/step  -> overhead {(t - base) / a.steps * 1e6:.2f} µs/step "
              f"(incl. NTK traces / logging where the scheme asks)")


if __name__ == "__main__":
    main()
