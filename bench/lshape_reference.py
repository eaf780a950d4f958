"""How accurate is the L-shape reference (``pc.problems.poisson_lshape_reference``)?

Compares, at the 129 x 129 nodes, the library's Richardson-extrapolated finite-difference
solution (h = 1/64 and 1/128) with plain 5-point solves on finer grids, and prints the
successive differences of the plain solves (their error falls like h^(4/3) at the corner).

    python bench/lshape_reference.py            # about a minute (the h = 1/512 solve dominates)
"""
from __future__ import annotations

import time

import numpy as np

from pinncore import problems as P
from pinncore import problems_reference


def main():
    _, ref = problems_reference.lshape_grid(128)
    plain = {}
    for n in (128, 256, 512, 1024):
        t = time.perf_counter()
        _, U = problems_reference.lshape_fd(n)
        plain[n] = U[:: n // 128, :: n // 128]
        print(f"plain h = 1/{n // 2:<4d} solve {time.perf_counter() - t:6.2f} s   max u = {U.max():.6f}")
    norm = np.linalg.norm
    for a, b in ((128, 256), (256, 512), (512, 1024)):
        print(f"plain 1/{a // 2} vs 1/{b // 2}: relative L2 difference {norm(plain[a] - plain[b]) / norm(plain[b]):.2e}")
    for n in (256, 512, 1024):
        print(f"library reference vs plain 1/{n // 2}: {norm(ref - plain[n]) / norm(plain[n]):.2e}")


if __name__ == "__main__":
    main()
