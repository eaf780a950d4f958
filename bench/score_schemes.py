"""Score every weighting scheme on the problem families of bench/families.py by its WORST
case and its count of clean fits (rel-L2 < 5 %), with the median — per family, not by wins.

    python bench/score_schemes.py                         # every family, every scheme
    python bench/score_schemes.py --families oscillator --schemes ntk,balanced --split report
    python bench/score_schemes.py --json scores.json      # also keep every fit's numbers

Fits run in a process pool over ``--workers`` processes (default 2), each with one kernel
thread (pc.set_num_threads(1)), so a 2-core machine runs two fits at a time. "Fixed λ=v"
sets λ = v on every term except "pde". The best fixed λ in hindsight is the Fixed column with
the most clean fits (ties: the smaller worst case) — the bar an automatic scheme must meet.
The tables are recorded in bench/README.md ("Weighting on problem families").
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from families import FAMILIES  # noqa: E402

import pinncore as pc  # noqa: E402

CLEAN = 0.05
FIXED = (1.0, 10.0, 100.0, 1000.0)


def make_scheme(key, problem):
    """The scheme called ``key`` for ``problem`` ("fixed100", "gradnorm", "ntk", "sa",
    "relobralo", "balanced", "default")."""
    if key.startswith("fixed"):
        lam = float(key[5:])
        return pc.Fixed({k: lam for k in problem.term_names if k != "pde"})
    if key == "default":
        return pc.weighting.default()
    return pc.weighting.get(key)


SCHEMES = [f"fixed{int(v)}" for v in FIXED] + ["gradnorm", "ntk", "sa", "relobralo", "balanced"]


def _fit(job):
    """One fit in a worker: (family, case index, split, scheme key) -> a record."""
    fam_name, index, split, key = job
    pc.set_num_threads(1)
    case = FAMILIES[fam_name].cases(split)[index]
    problem = case.problem()
    scheme = make_scheme(key, problem)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = pc.train(problem, case.net(problem), weighting=scheme, steps=case.steps, lr=1e-3,
                     log_every=max(case.steps // 10, 1), warn=False)
    err = float(r.rel_l2) if r.rel_l2 is not None and np.isfinite(r.rel_l2) else float("inf")
    h = r.history
    traj = {k: h[f"{k}_weight"].tolist() for k in problem.term_names}
    return {"family": fam_name, "case": case.label, "scheme": key, "rel_l2": err, "status": r.status,
            "weights": r.weights, "weight_traj": traj, "steps": h["step"].tolist(),
            "seconds": time.perf_counter() - t0}


def summarise(records):
    """{family: {scheme: (clean, n, median, worst)}}."""
    out = {}
    for rec in records:
        out.setdefault(rec["family"], {}).setdefault(rec["scheme"], []).append(rec["rel_l2"])
    table = {}
    for fam, per in out.items():
        table[fam] = {}
        for key, errs in per.items():
            e = np.array(errs)
            table[fam][key] = (int((e < CLEAN).sum()), len(e), float(np.median(e)), float(e.max()))
    return table


def best_fixed(row):
    """Key of the Fixed scheme with the most clean fits (ties: smaller worst case)."""
    fixed = [k for k in row if k.startswith("fixed")]
    return min(fixed, key=lambda k: (-row[k][0], row[k][3])) if fixed else None


def markdown(table, order):
    """The per-family tables as Markdown text."""
    lines = []
    for fam, row in table.items():
        bf = best_fixed(row)
        lines += [f"**{fam}**", "", "| scheme | clean (< 5 %) | median rel-L2 | worst |", "|---|---|---|---|"]
        for key in order:
            if key not in row:
                continue
            c, n, med, worst = row[key]
            mark = " (best fixed)" if key == bf else ""
            lines.append(f"| {key}{mark} | {c} / {n} | {med:.2e} | {worst:.2e} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--schemes", default=",".join(SCHEMES))
    ap.add_argument("--split", choices=["all", "tune", "report"], default="all")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", default=None, help="write every fit's record to this file")
    args = ap.parse_args(argv)
    split = None if args.split == "all" else args.split
    fams, keys = args.families.split(","), args.schemes.split(",")
    jobs = [(f, i, split, k) for f in fams for i in range(len(FAMILIES[f].cases(split))) for k in keys]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        records = list(pool.map(_fit, jobs, chunksize=1))
    print(f"{len(jobs)} fits in {time.perf_counter() - t0:.0f} s ({args.workers} workers, 1 thread each)\n")
    print(markdown(summarise(records), keys))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(records, f)


if __name__ == "__main__":
    main()
