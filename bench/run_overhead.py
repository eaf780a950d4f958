#!/usr/bin/env python
"""Python overhead of one training iteration of ``pc.Run``, measured without the kernel's
compute: the problem's step function is replaced by one that returns a fixed (L, G, R), so a
2000-step run times only the loop (weighting update, finiteness checks, logging every 100
steps, the fused Adam call). The baseline is the bare Adam kernel call on the same arrays.

    python bench/run_overhead.py [--steps 200] [--repeat 40] [--cpu-time]

Reports the minimum over repeats of short blocks (the block least disturbed by other processes)
and the median, both per step.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import pinncore as pc
from pinncore import backend


CLOCK = [time.perf_counter]


class FrozenProblem:
    """The seed problem with its kernel call replaced by a constant evaluation."""

    def __init__(self, problem, net):
        self.problem = problem
        self.ev = problem.step_function(net)(None, False)

    def step_function(self, net):
        ev = self.ev
        return lambda pw, residuals: ev


def time_run(problem, weighting, steps, repeat, log_every=100):
    """Per-step times of ``repeat`` blocks of ``steps`` iterations of one long run."""
    net = pc.MLP([1, 50, 50, 50, 1], seed=0)
    frozen = FrozenProblem(problem, net)
    run = pc.Run(problem, net, weighting=weighting, warn=False, optimizer=pc.Adam(lr=1e-12), log_every=log_every)
    run.objective._evaluate = frozen.step_function(run.net)
    out = []
    for _ in range(repeat):
        t = CLOCK[0]()
        run.step(steps)
        out.append((CLOCK[0]() - t) / steps)
    return out


def time_adam(problem, steps, repeat):
    net = pc.MLP([1, 50, 50, 50, 1], seed=0)
    L, G, _ = problem.step_function(net)(None, False)
    m, v, lam, p = np.zeros_like(net.params), np.zeros_like(net.params), np.array([1.0, 100.0]), net.params
    out, k = [], 0
    for _ in range(repeat):
        t = CLOCK[0]()
        for _ in range(steps):
            k += 1
            backend.adam_step(p, G, lam, m, v, 1e-12, 0.9, 0.999, 1e-8, k)
        out.append((CLOCK[0]() - t) / steps)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200, help="iterations per timed block")
    ap.add_argument("--repeat", type=int, default=40, help="timed blocks")
    ap.add_argument("--cpu-time", action="store_true", help="time with the process's CPU time (a loaded machine "
                    "then inflates the figures less)")
    a = ap.parse_args()
    if a.cpu_time:
        CLOCK[0] = time.process_time
    pc.set_num_threads(1)
    problem = pc.problems.harmonic()
    base = time_adam(problem, a.steps, a.repeat)
    b_min, b_med = min(base), statistics.median(base)
    print(f"bare Adam kernel call: min {b_min * 1e6:.2f} µs/step, median {b_med * 1e6:.2f}")
    for name, w in (("Fixed", pc.Fixed({"ic": 100.0})), ("NTK(every=100)", pc.NTK()), ("GradNorm", pc.GradNorm())):
        t = time_run(problem, w, a.steps, a.repeat)
        print(f"Run loop, {name:<15}: min {min(t) * 1e6:.2f} µs/step (overhead {(min(t) - b_min) * 1e6:.2f}), "
              f"median {statistics.median(t) * 1e6:.2f} (overhead {(statistics.median(t) - b_med) * 1e6:.2f}); "
              f"includes the scheme's own work (NTK traces, GradNorm statistics) and a log row every 100 steps")
    # The loop alone: no history rows inside the timed blocks (a row evaluates the rel-L2 error on
    # the problem's 1 000 test points, a kernel forward pass of ≈ 0.5 ms, i.e. ≈ 5 µs per step at
    # one row per 100 steps; that is kernel work, not the loop's Python).
    for name, w in (("Fixed", pc.Fixed({"ic": 100.0})), ("default", None)):
        t = time_run(problem, w, a.steps, a.repeat, log_every=10 ** 9)
        print(f"Run loop without rows, {name:<8}: min {min(t) * 1e6:.2f} µs/step (overhead {(min(t) - b_min) * 1e6:.2f}), "
              f"median {statistics.median(t) * 1e6:.2f} (overhead {(statistics.median(t) - b_med) * 1e6:.2f})")


if __name__ == "__main__":
    main()
