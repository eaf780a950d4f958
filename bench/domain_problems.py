"""The library's problems on non-rectangular domains, trained with one recipe: Adam (lr 1e-3)
then L-BFGS, on [d, 32, 32, 32, 1]; prints rel-L2 and wall time per problem.

    python bench/domain_problems.py --steps 2000 --lbfgs 500 --threads 1
"""
from __future__ import annotations

import argparse
import time

import pinncore as pc

RECIPES = {   # weighting per problem: the L-shape's corner needs a heavy boundary weight
    "poisson_lshape": lambda: pc.Fixed({"bc": 100.0}),
    "poisson_holes": lambda: None,
    "heat_disk": lambda: None,
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--lbfgs", type=int, default=500)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    pc.set_num_threads(a.threads)
    for name, weighting in RECIPES.items():
        problem = pc.problems.get(name)
        t0 = time.perf_counter()
        res = pc.train(problem, pc.MLP([len(problem.inputs), 32, 32, 32, 1], seed=a.seed), weighting=weighting(),
                       steps=a.steps, lbfgs_steps=a.lbfgs, log_every=500, warn=False)
        print(f"{name:15s} rel-L2 {res.rel_l2:.2e}  {time.perf_counter() - t0:6.1f} s  ({res.status}; "
              f"weighting {type(weighting() or pc.weighting.default()).__name__})", flush=True)


if __name__ == "__main__":
    main()
