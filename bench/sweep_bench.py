"""pc.sweep throughput: one core vs the local process pool vs Dask, and a 4-D λ grid.

    python bench/sweep_bench.py                       # both parts (≈ 5 min on 2 busy cores)
    python bench/sweep_bench.py --part harmonic       # 17 λ_ic x 3 seeds x 2000 steps, three ways
    python bench/sweep_bench.py --part heat4          # 5^4 λ grid over the four terms of a heat problem

Part "harmonic": the 51 fits of the λ_ic crisis scan (pc.problems.harmonic(), λ_ic = 1e-3 ... 1e5
half a decade apart, seeds 0, 1, 2, 2000 Adam steps, [1, 50, 50, 50, 1]) run in this process
(one core), on the local pool (``workers=2``) and on a two-worker dask.distributed LocalCluster
(TCP on loopback, one thread per worker). The pool and Dask runs alternate ``--repeats`` times
(medians reported); every run must give bitwise the same rel-L2s, checked before any time is
printed. The machine may be shared: the ratios measured in one run are the figures to quote.

Part "heat4": u_t = 0.1 u_xx with its boundary split into two terms, so four terms (pde, ic, left,
right) and a 5^4 grid of λ in {1e-2, 1e-1, 1, 1e1, 1e2}: 625 short fits (1000 steps,
[2, 20, 20, 1]) on the local pool; prints the Goldilocks intervals and volume. The problem is a
user-defined one, shipped to the workers by its module-level factory "sweep_bench:heat4".
"""
import argparse
import os
import statistics
import sys
import time
import warnings

import numpy as np

import pinncore as pc
from pinncore.problems import heat1d_exact
from pinncore.problems_common import space_time_points

LAMS = np.logspace(-3, 5, 17).tolist()


def heat4(kappa=0.1, n_collocation=256, n_ic=32, n_bc=32, seed=0):
    """pc.problems.heat1d with the walls x = 0 and x = 1 as separate terms "left" and "right"."""
    pde, ic, bc = space_time_points(seed, 1.0, 0.0, 1.0, n_collocation, n_ic, n_bc)
    return pc.Problem(
        inputs=["t", "x"], outputs=["u"], domain={"t": (0.0, 1.0), "x": (0.0, 1.0)},
        terms={"pde": pc.Term(points=pde, residual=lambda x, u: u.t - kappa * u.xx),
               "ic": pc.Term(points=ic, residual=lambda x, u: u - pc.sin(np.pi * x.x)),
               "left": pc.Term(points=bc[bc[:, 1] == 0.0], residual=lambda x, u: u),
               "right": pc.Term(points=bc[bc[:, 1] == 1.0], residual=lambda x, u: u)},
        exact=lambda X: heat1d_exact(X, kappa))


def _cpu():
    """CPU seconds used by this process so far (run in each Dask worker by client.run)."""
    import resource
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def _children_cpu():
    import resource
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime


def timed(how, client=None):
    """(wall s, CPU s of the fits, result) of the 51-fit harmonic sweep run ``how``."""
    kw = {"inline": {"workers": 1}, "pool": {"workers": 2}, "dask": {"client": client}}[how]
    cpu0 = {"inline": _cpu, "pool": _children_cpu, "dask": lambda: sum(client.run(_cpu).values())}[how]
    c0 = cpu0()
    t0 = time.perf_counter()
    res = pc.sweep("harmonic", {"ic": LAMS}, seeds=(0, 1, 2), steps=2000, progress=False, **kw)
    wall = time.perf_counter() - t0
    return wall, cpu0() - c0, res


def start_cluster():
    from distributed import Client, LocalCluster
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, protocol="tcp",
                               host="127.0.0.1", dashboard_address=None)
        client = Client(cluster)
    pc.sweep("harmonic", {"ic": [1.0, 2.0]}, steps=2, client=client, progress=False)  # workers import pinncore
    return cluster, client


def harmonic_part(repeats):
    print(f"load average at start: {os.getloadavg()[0]:.2f} (2 cores; other sessions may share them)")
    cluster, client = start_cluster()
    runs = {"inline": [], "pool": [], "dask": []}
    try:
        for _ in range(repeats):  # alternate, so that a change of load hits all three alike
            for how in runs:
                runs[how].append(timed(how, client))
    finally:
        client.close()
        cluster.close()
    ref = [r["rel_l2"] for r in runs["inline"][0][2].records]
    for how, rs in runs.items():
        for _, _, res in rs:
            assert [x["rel_l2"] for x in res.records] == ref, f"a {how} run differs from the one-core run"
            assert all(x["status"] == "completed" for x in res.records)
    med = np.median(np.array(ref).reshape(17, 3), axis=1)
    assert med[LAMS.index(100.0)] < 0.05 and all(m > 0.3 for lam, m in zip(LAMS, med) if lam <= 1 or lam >= 1e4)
    print("check: every run gives bitwise the same 51 rel-L2s; the crisis is there "
          f"(median rel-L2 at λ_ic=1: {med[LAMS.index(1.0)]:.2f}, 1e2: {med[LAMS.index(100.0)]:.1e}, "
          f"1e5: {med[-1]:.2f})")
    print(runs["inline"][0][2].summary().splitlines()[-1])
    print(f"51 fits x 2000 steps, median of {repeats} alternating runs [min .. max]:")
    wall = {how: statistics.median(r[0] for r in rs) for how, rs in runs.items()}
    for how, rs in runs.items():
        fit = statistics.median(sum(x["wall_time"] for x in r[2].records) for r in rs)
        fit_cpu = statistics.median(sum(x["cpu_time"] for x in r[2].records) for r in rs)
        cpu = statistics.median(r[1] for r in rs)
        print(f"  {how:<7} {wall[how]:6.2f} s [{min(r[0] for r in rs):.2f} .. {max(r[0] for r in rs):.2f}]  "
              f"{51 / wall[how]:5.2f} fits/s  Σ fit wall {fit:6.2f} s, Σ fit CPU {fit_cpu:6.2f} s, "
              f"process CPU {cpu:6.2f} s ({fit_cpu / fit:.0%} of the fit time on a CPU)")
    print(f"local pool = {wall['inline'] / wall['pool']:.2f}x one core; Dask = {wall['dask'] / wall['pool']:.3f}x "
          f"the local pool's time")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


def heat4_part(steps, json_path=None):
    lam = [1e-2, 1e-1, 1.0, 1e1, 1e2]
    grid = {"pde": lam, "ic": lam, "left": lam, "right": lam}
    t0 = time.perf_counter()
    res = pc.sweep("sweep_bench:heat4", grid, steps=steps, layers=[2, 20, 20, 1], workers=2)
    dt = time.perf_counter() - t0
    print(f"heat, 4 terms, 5^4 λ grid: {len(res)} fits x {steps} steps in {dt:.1f} s "
          f"({len(res) / dt:.1f} fits/s, {dt / 60:.1f} min) on {res.info['workers']} workers")
    print(res.summary())
    if json_path:
        res.to_json(json_path)
        print(f"wrote {json_path} (pinncore.sweep.SweepResult.from_json reads it)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=["harmonic", "heat4", "all"], default="all")
    ap.add_argument("--repeats", type=int, default=3, help="alternating pool / Dask runs (default 3)")
    ap.add_argument("--heat-steps", type=int, default=1000)
    ap.add_argument("--json", default=None, help="write the heat4 table to this JSON file")
    args = ap.parse_args()
    if args.part in ("harmonic", "all"):
        harmonic_part(args.repeats)
    if args.part in ("heat4", "all"):
        heat4_part(args.heat_steps, args.json)


if __name__ == "__main__":
    sys.exit(main())
