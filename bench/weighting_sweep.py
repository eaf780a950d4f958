"""Which weighting scheme should ``pc.train`` use by default? Train every scheme on every
library problem (same network, seed, steps) and print the relative L2 errors.

    python bench/weighting_sweep.py --steps 2000 --seeds 0,1

The result is recorded in bench/README.md ("Default weighting").
"""
import argparse
import time
import warnings

import numpy as np

import pinncore as pc

SCHEMES = {
    "Fixed": lambda: pc.Fixed(),
    "GradNorm": lambda: pc.GradNorm(),
    "NTK": lambda: pc.NTK(),
    "SelfAdaptive": lambda: pc.SelfAdaptive(),
    "ReLoBRaLo": lambda: pc.ReLoBRaLo(),
}

PROBLEMS = {
    "harmonic": lambda: pc.problems.harmonic(),
    "poisson1d": lambda: pc.problems.poisson1d(),
    "heat1d": lambda: pc.problems.heat1d(n_collocation=500),
    "wave1d": lambda: pc.problems.wave1d(n_collocation=500),
    "helmholtz2d": lambda: pc.problems.helmholtz2d(n_collocation=500),
    "burgers": lambda: pc.problems.burgers(n_collocation=500),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--problems", default=",".join(PROBLEMS))
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    names = args.problems.split(",")
    print(f"rel-L2 after {args.steps} Adam steps (lr 1e-3, [d,50,50,50,m]), median over seeds {seeds}")
    print(f"{'problem':<12}" + "".join(f"{s:>14}" for s in SCHEMES))
    wins = {s: 0 for s in SCHEMES}
    logs = {s: [] for s in SCHEMES}
    for name in names:
        problem = PROBLEMS[name]()
        row = {}
        for sname, make in SCHEMES.items():
            errs = []
            for seed in seeds:
                net = pc.MLP([len(problem.inputs), 50, 50, 50, len(problem.outputs)], seed=seed)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    r = pc.train(problem, net, weighting=make(), steps=args.steps, lr=1e-3, log_every=args.steps)
                errs.append(r.rel_l2 if np.isfinite(r.rel_l2) else np.inf)
            row[sname] = float(np.median(errs))
            logs[sname].append(np.log10(max(row[sname], 1e-12)))
        best = min(row, key=row.get)
        wins[best] += 1
        print(f"{name:<12}" + "".join(f"{row[s]:>14.3e}" for s in SCHEMES), flush=True)
    print(f"{'mean log10':<12}" + "".join(f"{np.mean(logs[s]):>14.2f}" for s in SCHEMES))
    print(f"{'wins':<12}" + "".join(f"{wins[s]:>14d}" for s in SCHEMES))


if __name__ == "__main__":
    t = time.perf_counter()
    main()
    print(f"wall time {time.perf_counter() - t:.1f} s")
