#!/usr/bin/env python
"""The published PINN benchmarks solved by ``pc.solve`` under a wall-clock limit, each printed
beside the best published figure and its source (the figures are those in the project's
measured-figures notes; a dash where none is recorded).

Problems: Burgers ν = 0.01/π (Cole–Hopf reference), Helmholtz a1 = 1, a2 = 4, wave c = 2,
Klein–Gordon, periodic advection c = 30 (the periodic condition as a paired term, so pc.solve
chooses a periodic network), Poisson on the L-shape (finite-difference reference) and Kovasznay
flow (steady Navier–Stokes, three outputs, exact). Each runs in its own ``pc.solve`` call with
the same ``--time``; one row per problem (rel-L2 over all outputs, iterations, wall time, the
method chosen). ``--json FILE`` also writes the rows.

Usage (from the repository root; each problem takes --time seconds, so run a few per command):

    nice python bench/accuracy.py --time 120 --problems burgers,helmholtz2d
    nice python bench/accuracy.py --time 120 --problems wave1d,klein_gordon,advection,poisson_lshape,kovasznay
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time

import numpy as np

import pinncore as pc
from pinncore import conditions

PUBLISHED = {
    "burgers": (4.8e-4, "SA-PINN (McClenny & Braga-Neto 2023); Raissi et al. 2019: 6.7e-4"),
    "helmholtz2d": (3.2e-3, "learning-rate annealing (Wang, Teng & Perdikaris 2021)"),
    "wave1d": (1.7e-3, "NTK weights (Wang, Yu & Perdikaris 2022)"),
    "klein_gordon": (2.8e-3, "learning-rate annealing (Wang, Teng & Perdikaris 2021)"),
    "advection": (1.94e-3, "Adam + L-BFGS + NysNewton-CG, convection β = 40 (Rathore et al. 2024)"),
    "poisson_lshape": (None, "DeepXDE example (Lu et al. 2021): no rel-L2 recorded"),
    "kovasznay": (None, "NSFnets (Jin et al. 2021): per-component errors, not recorded here"),
}


def periodic_advection():
    """Advection c = 30 without the Dirichlet stand-in: u(t, 0) = u(t, 2π) as a paired term."""
    base = pc.problems.advection(bc="none")
    t = np.linspace(0.0, 1.0, 200)[:, None]
    per = conditions.periodic(np.column_stack([t, np.zeros_like(t)]), np.column_stack([t, np.full_like(t, 2 * math.pi)]))
    tt, xx = np.meshgrid(np.linspace(0, 1, 101), np.linspace(0, 2 * math.pi, 101), indexing="ij")
    return pc.Problem(inputs=base.inputs, outputs=base.outputs, domain=base.domain,
                      terms={**base.terms, "periodic": per}, exact=base.exact,
                      test_points=np.column_stack([tt.ravel(), xx.ravel()]))


BUILD = {"advection": periodic_advection}


def solve_one(name, time_limit, seed):
    problem = BUILD[name]() if name in BUILD else pc.problems.get(name)
    t = time.perf_counter()
    r = pc.solve(problem, time_limit=time_limit, progress=False, seed=seed)
    wall = time.perf_counter() - t
    best, source = PUBLISHED[name]
    its = sum(p["iterations"] for p in r.record["phases"])
    return {"problem": name, "rel_l2": r.rel_l2, "wall_s": wall, "method": r.record["method"],
            "layers": r.record["network"]["layers"], "iterations": its, "warmup": r.record["warmup"],
            "stop": r.record["stop"], "published": best, "source": source}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time", type=float, default=120.0, help="seconds per problem (default 120)")
    ap.add_argument("--problems", default=",".join(PUBLISHED), help="comma-separated (default: all)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, metavar="FILE")
    args = ap.parse_args()
    pc.set_num_threads(args.threads)
    names = [n.strip() for n in args.problems.split(",") if n.strip()]
    bad = [n for n in names if n not in PUBLISHED]
    if bad:
        ap.error(f"unknown problems {bad}; choose from {list(PUBLISHED)}")
    print(f"pc.solve, --time {args.time:g} s, {args.threads} threads, load {os.getloadavg()[0]:.2f}")
    print(f"| problem | pc.solve rel-L2 | wall (s) | method, network, iterations | best published | source |")
    print("|---|---|---|---|---|---|")
    rows = []
    for name in names:
        row = solve_one(name, args.time, args.seed)
        rows.append(row)
        pub = "—" if row["published"] is None else f"{row['published']:.2g}"
        print(f"| {name} | **{row['rel_l2']:.2e}** | {row['wall_s']:.0f} | {row['method']}, {row['layers']}, "
              f"{row['iterations']} | {pub} | {row['source']} |", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
