"""Identify λ1, λ2 of Burgers' equation (Raissi et al. 2019, §4.1.1) from 2 000 samples, clean and
with 1 % noise: errors against the published ones, wall and CPU time, and the unknown-gradient
overhead per training step (one evaluation with unknowns / the same problem with fixed coefficients).

    python bench/inverse_burgers.py                    # clean and noisy, 2 threads
    python bench/inverse_burgers.py --noise 0.01 --adam 2000 --lm 200
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

import pinncore as pc
from pinncore.inverse import BURGERS_LAMBDA
from pinncore.objective import Objective

PUBLISHED = {0.0: {"lambda1": 0.085, "lambda2": 0.12}, 0.01: {"lambda1": 0.04, "lambda2": 0.63}}   # % (Raissi 2019)


def fit(noise, adam, lm, layers, seed=0, pde_weight=1.0, n_collocation=6000):
    """One identification: Adam then Levenberg–Marquardt (Fixed weights); returns a result row."""
    problem = pc.problems.get("burgers_inverse", noise=noise, seed=seed, n_data=2000, n_collocation=n_collocation)
    wall, cpu = time.perf_counter(), time.process_time()
    result = pc.train(problem, pc.MLP(layers, seed=seed), weighting=pc.Fixed({"pde": pde_weight}), steps=adam,
                      lm_steps=lm, warn=False, log_every=500)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    err = {k: abs(result.unknowns[k] - v) / abs(v) * 100 for k, v in BURGERS_LAMBDA.items()}
    h = result.history
    path = [(int(h["step"][i]), *(abs(float(h[f"unknown:{k}"][i]) - v) / abs(v) * 100 for k, v in BURGERS_LAMBDA.items()))
            for i in range(len(h)) if h["phase"][i] == "lm" and int(h["step"][i]) % 25 == 0]
    return {"noise": noise, "unknowns": result.unknowns, "err%": err, "rel_l2": result.rel_l2, "wall": wall,
            "cpu": cpu, "steps": result.step, "message": result.message, "path": path}


def overhead(layers, repeats=20):
    """Seconds per evaluation with the unknowns trained vs the same coefficients as constants."""
    problem = pc.problems.get("burgers_inverse", n_data=2000, n_collocation=6000)
    fixed = problem.with_unknowns(list(BURGERS_LAMBDA.values()))
    net = pc.MLP(layers, seed=0)
    out = {}
    for name, obj in (("unknowns", Objective(problem, net, np.ones(2))), ("constants", Objective(fixed, net, np.ones(2)))):
        obj.evaluate(obj.params.copy())
        t0 = time.perf_counter()
        for _ in range(repeats):
            obj.evaluate(obj.params.copy())
        out[name] = (time.perf_counter() - t0) / repeats
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--noise", type=float, action="append", help="noise level(s) (default 0 and 0.01)")
    ap.add_argument("--adam", type=int, default=2000)
    ap.add_argument("--lm", type=int, default=200)
    ap.add_argument("--layers", default="2,20,20,20,1")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pde-weight", type=float, default=1.0, help="λ_pde (λ_data = 1)")
    ap.add_argument("--collocation", type=int, default=6000, help="uniform PDE points besides the samples")
    ap.add_argument("--no-overhead", action="store_true", help="skip the per-evaluation cost comparison")
    args = ap.parse_args()
    pc.set_num_threads(args.threads)
    layers = [int(v) for v in args.layers.split(",")]
    print(f"load average {os.getloadavg()}, {args.threads} threads, net {layers}, Adam {args.adam} + LM {args.lm}, "
          f"λ_pde {args.pde_weight:g}, {args.collocation} extra PDE points")
    o = overhead(layers) if not args.no_overhead else None
    if o is not None:
        print(f"evaluation with unknowns {o['unknowns'] * 1e3:.2f} ms, with constants {o['constants'] * 1e3:.2f} ms "
              f"(ratio {o['unknowns'] / o['constants']:.2f})")
    for noise in args.noise or [0.0, 0.01]:
        row = fit(noise, args.adam, args.lm, layers, pde_weight=args.pde_weight, n_collocation=args.collocation)
        pub = PUBLISHED.get(noise, {})
        errs = ", ".join(f"{k} {v:.4f} % (published {pub.get(k, float('nan'))} %)" for k, v in row["err%"].items())
        print(f"noise {noise:g}: {errs}; values {row['unknowns']}; rel-L2 {row['rel_l2']:.2e}; "
              f"wall {row['wall']:.1f} s, CPU {row['cpu']:.1f} s, {row['steps']} steps; {row['message']}")
        print("  LM path (step, λ1 %, λ2 %): " + ", ".join(f"({s}, {e1:.4f}, {e2:.4f})" for s, e1, e2 in row["path"]))


if __name__ == "__main__":
    main()
