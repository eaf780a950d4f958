"""Input embeddings and the modified MLP: per-step cost and accuracy against wall time.

Two measurements, both on the library problems (``pc.problems``) that motivate them:

* ``--cost``: one full training step (every per-term loss and gradient in one kernel call + the
  fused Adam update, exactly ``pc.train``'s step) for a plain MLP, Fourier features, the periodic
  embedding and the modified MLP of the same widths, in alternating rounds; medians and the ratio
  to the plain step. The answer is checked first: each network's per-term gradients equal the
  NumPy reference's (1e-12 relative).
* ``--fit``: train each network on a problem with a CPU-time budget — NTK weighting, Adam (lr 1e-3, decay 0.9
  every 1000 steps) for ``--adam-frac`` of the budget, then L-BFGS with the weights frozen — and
  print the rel-L2 reached (CPU time of the one compute thread: what the run costs on an idle
  core, whatever else shares the machine).

    python bench/embedding_bench.py --cost
    python bench/embedding_bench.py --fit --problems wave1d --budget 600 --nets plain,ff,mod,ffmod

Recorded in bench/README.md ("Input embeddings and the modified MLP").
"""
from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np

import pinncore as pc

PROBLEMS = {
    "wave1d": lambda: pc.problems.wave1d(),
    "klein_gordon": lambda: pc.problems.klein_gordon(),
    "advection": lambda: pc.problems.advection(),
    "advection_periodic": lambda: pc.problems.advection(bc="none"),
}

# name -> MLP keyword arguments (the hidden widths come from --layers)
NETS = {
    "plain": lambda d: {},
    "ff": lambda d: dict(embedding=pc.FourierFeatures(n_features=32, sigma=1.0, seed=0)),
    "ff64": lambda d: dict(embedding=pc.FourierFeatures(n_features=64, sigma=1.0, seed=0)),
    "ffms": lambda d: dict(embedding=pc.FourierFeatures(n_features=16, sigma=[1.0, 4.0], seed=0)),
    "mod": lambda d: dict(arch="modified"),
    "ffmod": lambda d: dict(embedding=pc.FourierFeatures(n_features=32, sigma=1.0, seed=0), arch="modified"),
    # x̂ in [-1, 1]: a period of the whole domain is 2 (advection: x in [0, 2π])
    "per": lambda d: dict(embedding=pc.Periodic(inputs={1: 2.0}, harmonics=4)),
    "permod": lambda d: dict(embedding=pc.Periodic(inputs={1: 2.0}, harmonics=4), arch="modified"),
    # periodic in x and Fourier features in t (their rows act on t only, so u stays periodic)
    "perff": lambda d: dict(embedding=pc.Periodic(inputs={1: 2.0}, harmonics=4,
                                                  fourier=pc.FourierFeatures(n_features=32, sigma=1.0, seed=0))),
    "perffmod": lambda d: dict(embedding=pc.Periodic(inputs={1: 2.0}, harmonics=4,
                                                     fourier=pc.FourierFeatures(n_features=32, sigma=1.0, seed=0)),
                               arch="modified"),
    # wave1d: u is 2-periodic in x (the odd extension of the Dirichlet problem on [0, 1]): 4 in x̂
    "perx2mod": lambda d: dict(embedding=pc.Periodic(inputs={1: 4.0}, harmonics=6), arch="modified"),
    "perx2ff": lambda d: dict(embedding=pc.Periodic(inputs={1: 4.0}, harmonics=4,
                                                    fourier=pc.FourierFeatures(n_features=32, sigma=1.0, seed=0))),
}


def make_net(name, problem, hidden, seed=0):
    d, m = len(problem.inputs), len(problem.outputs)
    return pc.MLP([d, *hidden, m], seed=seed, **NETS[name](d))


def check(problem, net):
    """The kernel's per-term gradients equal the NumPy reference's (the answer before the time)."""
    ref = pc.MLP(net.layers, backend="numpy", embedding=net.embedding, arch=net.arch)
    ref.params[:] = net.params
    _, Ga, _ = problem.value_and_grad(net)
    _, Gb, _ = problem.value_and_grad(ref)
    err = float(np.abs(Ga - Gb).max() / np.abs(Gb).max())
    assert err < 1e-12, err
    return err


def cost(problems, nets, hidden, rounds, block_s=0.3):
    """Median time of one full training step per (problem, net), alternating the nets."""
    out = {}
    for pname in problems:
        problem = PROBLEMS[pname]()
        steps = {}
        for name in nets:
            net = make_net(name, problem, hidden)
            check(problem, net)
            f = problem.step_function(net)
            adam = pc.Adam(lr=1e-3)
            state = adam.init(net.params)
            w = np.ones(len(problem.term_names))
            steps[name] = (f, adam, state, net, w)
        times = {name: [] for name in nets}
        cpu = {name: [] for name in nets}
        for r in range(rounds):
            for name in (nets if r % 2 == 0 else nets[::-1]):
                f, adam, state, net, w = steps[name]
                n, t0, c0 = 0, time.perf_counter(), time.thread_time()
                while True:
                    _, G, _ = f(None, False)
                    adam.update(net.params, G, w, state)
                    n += 1
                    if time.perf_counter() - t0 > block_s:
                        break
                times[name].append((time.perf_counter() - t0) / n)
                cpu[name].append((time.thread_time() - c0) / n)
        base, cbase = np.median(times[nets[0]]), np.median(cpu[nets[0]])
        print(f"\n{pname}: one full step (loss + per-term gradients + Adam), [{', '.join(map(str, hidden))}] hidden, "
              f"median of {rounds} rounds; wall and CPU time of this thread (a loaded machine inflates wall time)")
        for name in nets:
            med, cmed = np.median(times[name]), np.median(cpu[name])
            print(f"  {name:<10} wall {med * 1e3:8.2f} ms ({med / base:5.3f})   cpu {cmed * 1e3:8.2f} ms ({cmed / cbase:5.3f})"
                  f"   params {steps[name][3].n_params}")
            out[f"{pname}/{name}"] = {"ms": med * 1e3, "ratio": med / base, "cpu_ms": cmed * 1e3, "cpu_ratio": cmed / cbase}
    return out


class Budget:
    """A trainer callback that stops when ``seconds`` of this process's CPU time are spent.
    CPU time, not wall time: on a machine shared with other jobs the wall clock measures the
    neighbours; one compute thread's CPU time is what the run costs on an idle core."""

    def __init__(self, seconds):
        self.deadline = time.process_time() + seconds

    def __call__(self, step, row):
        return time.process_time() > self.deadline


def fit(pname, name, hidden, budget, adam_frac, seed, log_every, lr):
    problem = PROBLEMS[pname]()
    net = make_net(name, problem, hidden, seed)
    t0, c0 = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adam = pc.Adam(lr=lr, decay_rate=0.9, decay_steps=1000)
        r1 = pc.train(problem, net, optimizer=adam, steps=10 ** 7, log_every=log_every, weighting=pc.NTK(),
                      callback=Budget(budget * adam_frac), warn=False)
        c1 = time.process_time() - c0
        weights = {k: float(v) for k, v in r1.weights.items()}
        r2 = pc.train(problem, r1.net, optimizer="lbfgs", steps=10 ** 6, log_every=max(1, log_every // 10),
                      weighting=pc.Fixed(weights), callback=Budget(budget - c1), warn=False)
    return {"problem": pname, "net": name, "hidden": list(hidden), "n_params": net.n_params,
            "adam_steps": int(r1.step), "lbfgs_steps": int(r2.step), "rel_l2_adam": float(r1.rel_l2),
            "rel_l2": float(r2.rel_l2), "cpu": time.process_time() - c0, "wall": time.perf_counter() - t0,
            "trace_adam": [float(e) for e in r1.history["rel_l2"]], "trace_lbfgs": [float(e) for e in r2.history["rel_l2"]],
            "seed": seed}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cost", action="store_true")
    ap.add_argument("--fit", action="store_true")
    ap.add_argument("--problems", default="wave1d,klein_gordon,advection")
    ap.add_argument("--nets", default="plain,ff,mod,ffmod")
    ap.add_argument("--layers", default="100,100,100,100", help="hidden widths")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--budget", type=float, default=120.0, help="seconds per fit")
    ap.add_argument("--adam-frac", type=float, default=0.8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--log-every", type=int, default=500)
    ap.add_argument("--json", default=None, help="append results as JSON lines")
    args = ap.parse_args()
    hidden = [int(w) for w in args.layers.split(",")]
    problems, nets = args.problems.split(","), args.nets.split(",")
    results = []
    if args.cost:
        results.append({"cost": cost(problems, nets, hidden, args.rounds)})
    if args.fit:
        print(f"\nrel-L2 after a {args.budget:.0f} s CPU-time budget (Adam {args.adam_frac:.0%}, then L-BFGS), "
              f"hidden {hidden}, seed {args.seed}, one thread")
        for pname in problems:
            for name in nets:
                r = fit(pname, name, hidden, args.budget, args.adam_frac, args.seed, args.log_every, args.lr)
                results.append(r)
                print(f"  {pname:<12} {name:<9} adam {r['adam_steps']:>6} steps -> {r['rel_l2_adam']:.3e}   "
                      f"+ lbfgs {r['lbfgs_steps']:>5} -> {r['rel_l2']:.3e}   ({r['cpu']:.0f} s cpu, {r['wall']:.0f} s wall)",
                      flush=True)
    if args.json:
        with open(args.json, "a") as fh:
            for r in results:
                fh.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
