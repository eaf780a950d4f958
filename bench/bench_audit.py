"""Overhead of the weighting audit and of the gradient-conflict statistics, as ratios measured
side by side in one process (interleaved repeats, medians; one kernel thread).

    python bench/bench_audit.py                  # seed problem, 2000 steps, 5 repeats
    python bench/bench_audit.py --problem heat1d --steps 300 --repeats 3   # 1000 + 2×128 points

* audit: ``pc.Run(..., observers=[Audit()])`` (five shadow schemes: GradNorm, NTK,
  SelfAdaptive, ReLoBRaLo, Balanced or the driver's complement) against the same run without
  it; target < 10 %.
* conflict statistics: the row builder's cosines / shares / crisis column against a run whose
  row builder skips them, at log_every = 100 (the default) and at log_every = 1 (a row at
  every step: the worst case); target < 3 %.

Recorded in bench/README.md ("Weighting audit and conflict statistics: overhead").
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

import pinncore as pc
from pinncore import run as _run
from pinncore.audit import Audit

PROBLEMS = {"harmonic": lambda: pc.problems.harmonic(n_collocation=64), "heat1d": lambda: pc.problems.heat1d()}


def _timed(problem, scheme, steps, log_every, audit=False):
    layers = [len(problem.inputs), 50, 50, 50, 1]
    r = pc.Run(problem, pc.MLP(layers, seed=0), weighting=scheme, log_every=log_every, warn=False,
               observers=[Audit()] if audit else ())
    t = time.perf_counter()
    r.step(steps)
    return time.perf_counter() - t


def _no_stats(self, row, G):
    return None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--problem", choices=sorted(PROBLEMS), default="harmonic")
    args = ap.parse_args(argv)
    pc.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    problem = PROBLEMS[args.problem]()
    with_stats = _run.Run._balance_columns
    cases = {}
    for name, scheme in (("Balanced", pc.Balanced), ("Fixed", pc.Fixed)):
        cases[f"audit, driver {name}"] = [
            (lambda s=scheme: _timed(problem, s(), args.steps, 100)),
            (lambda s=scheme: _timed(problem, s(), args.steps, 100, audit=True))]
    for log_every in (100, 1):
        def plain(le=log_every):
            _run.Run._balance_columns = _no_stats
            try:
                return _timed(problem, pc.Balanced(), args.steps, le)
            finally:
                _run.Run._balance_columns = with_stats
        cases[f"conflict stats, log_every={log_every}"] = [plain, (lambda le=log_every: _timed(problem, pc.Balanced(),
                                                                                            args.steps, le))]
    _timed(problem, pc.Balanced(), 200, 100, audit=True)   # warm-up (first kernel calls, imports)
    times = {k: ([], []) for k in cases}
    for _ in range(args.repeats):
        for key, (base, variant) in cases.items():
            times[key][0].append(base())
            times[key][1].append(variant())
    print(f"{args.problem} ({sum(problem.n_points.values())} points), [d,50,50,50,1], Adam {args.steps} steps, "
          f"{args.threads} thread(s), median of {args.repeats}")
    print(f"{'case':<34}{'base s':>9}{'with s':>9}{'overhead':>10}")
    for key, (b, v) in times.items():
        mb, mv = float(np.median(b)), float(np.median(v))
        print(f"{key:<34}{mb:>9.3f}{mv:>9.3f}{100 * (mv / mb - 1):>9.1f}%")


if __name__ == "__main__":
    main()
