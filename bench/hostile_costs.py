"""What hostile inputs cost (issue 23): time of five Adam steps of u.t + 0.01 u**p against the
exponent p (the tracer used to expand u**p into p repeated factors), and the peak memory of
loading crafted files (a header of 3 million scalar nodes; a 1 GiB sparse file behind a valid
header whose digest fails), each in a fresh child process measured by its own ru_maxrss.

    python bench/hostile_costs.py            # both parts, ≈ 30 s
    python bench/hostile_costs.py --powers   # exponents only

Each timing first checks its answer: the residual's value at a point matches NumPy's u**p.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

import pinncore as pc


def power_cost(p, steps=5):
    t = np.linspace(0.0, 1.0, 50)[:, None]
    t0 = time.perf_counter()
    prob = pc.Problem(inputs=["t"], outputs=["u"], domain={"t": (0.0, 1.0)},
                      terms={"pde": pc.Term(t, lambda x, u: u.t + 0.01 * u ** p),
                             "ic": pc.Term([[0.0]], lambda x, u: u - 0.5)})
    build = time.perf_counter() - t0
    table = prob.lowering.terms[0].table
    J = np.vstack([np.full(50, 0.9), np.full(50, 0.1)])
    with np.errstate(all="ignore"):
        r = table.evaluate(J)[0][0, 0]
        assert np.isclose(r, 0.1 + 0.01 * np.float64(0.9) ** p, rtol=1e-12, atol=1e-300), (p, r)
    t0 = time.perf_counter()
    res = pc.train(prob, pc.MLP([1, 10, 1], seed=0), steps=steps, log_every=steps, warn=False)
    return build, time.perf_counter() - t0, table.polynomial, res.status


_MAKE = """
import hashlib, json, struct, sys
case, path = sys.argv[1], sys.argv[2]
if case == "nodes":
    n = 3_000_000
    hdr = ('{"kind":"k","tree":{"t":"dict","items":[["a",{"t":"list","items":[' + ",".join(['{"t":"none"}'] * n)
           + ']}]]}}').encode()
    body = struct.pack("<8sIIQQ", b"PINNCORE", 1, 0, len(hdr), 0) + hdr
    open(path, "wb").write(body + hashlib.sha256(body).digest())
else:
    n = (1 << 30) // 8
    hdr = json.dumps({"kind": "k", "tree": {"t": "dict", "items": [["a", {"t": "array", "dtype": "<f8", "shape": [n],
                      "offset": 0, "nbytes": 8 * n}]]}}).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<8sIIQQ", b"PINNCORE", 1, 0, len(hdr), 8 * n) + hdr)
        f.truncate(32 + len(hdr) + 8 * n + 32)
"""

# A fresh process per load: its peak RSS growth is the load's alone.
_LOAD = """
import os, resource, sys, time
from pinncore import io
case, path = sys.argv[1], sys.argv[2]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
try:
    io.load(path); out = "loaded"
except io.FormatError as e:
    out = "FormatError: " + str(e).split(": ", 1)[1][:40]
print(f"{case:7s} {os.path.getsize(path) / 1e6:7.1f} MB file  {out:50s} peak RSS "
      f"+{(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1e3:6.0f} MB  {time.perf_counter() - t:5.1f} s")
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--powers", action="store_true", help="only the exponent timings")
    args = ap.parse_args()
    print(f"{'p':>8s} {'build s':>8s} {'5 steps s':>10s}  table")
    for p in (3, 16, 17, 1e3, 1e4, 1e5, 1e308, -1e5, 2.5):
        build, train, poly, status = power_cost(float(p))
        print(f"{p:8.3g} {build:8.4f} {train:10.4f}  {'polynomial' if poly else 'fallback':10s} {status}")
    if args.powers:
        return
    with tempfile.TemporaryDirectory() as d:
        for case in ("nodes", "sparse"):
            path = os.path.join(d, case)
            subprocess.run([sys.executable, "-c", _MAKE, case, path], check=True)
            subprocess.run([sys.executable, "-c", _LOAD, case, path], check=True)
            os.unlink(path)


if __name__ == "__main__":
    main()
