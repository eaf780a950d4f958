"""Geometry sampling benchmarks (issue 15): 1e6 boundary points of CSG shapes (target < 0.5 s),
beside the same count on a primitive (the baseline: no candidates rejected, no CSG test).

Each test first checks that the points are exactly on the boundary (|sdf| ≤ 1e-12) and that
the count is right; speed is recorded in bench/README.md, never asserted.
"""
from __future__ import annotations

import numpy as np
import pytest

import pinncore.geometry as geo

N = 1_000_000


def holes():
    g = geo.Box([-1, -1], [1, 1])
    for cx, cy, r in ((-0.5, -0.5, 0.2), (0.5, 0.5, 0.2), (-0.4, 0.6, 0.15), (0.6, -0.4, 0.15)):
        g = g - geo.Disk([cx, cy], r)
    return g


SHAPES = {
    "box": lambda: geo.Box([-1, -1], [1, 1]),
    "lshape_csg": lambda: geo.Box([-1, -1], [1, 1]) - geo.Box([0, 0], [1, 1]),
    "square_minus_4_disks": holes,
    "union_disk_box": lambda: geo.Disk([0, 0], 1) | geo.Box([0.5, -0.3], [1.5, 0.3]),
}


@pytest.mark.parametrize("method", ["sobol", "uniform"])
@pytest.mark.parametrize("name", list(SHAPES))
def test_boundary_sampling_1e6(benchmark, name, method):
    g = SHAPES[name]()
    g.sample_boundary(16, method=method, seed=0)        # warm: scipy.stats import, acceptance probe
    x = g.sample_boundary(N, method=method, seed=0)
    assert x.shape == (N, 2) and np.abs(g.sdf(x)).max() <= 1e-12
    benchmark.pedantic(g.sample_boundary, args=(N,), kwargs={"method": method, "seed": 1}, rounds=5, iterations=1)


@pytest.mark.parametrize("name", ["lshape_csg", "square_minus_4_disks"])
def test_interior_sampling_1e6(benchmark, name):
    g = SHAPES[name]()
    x = g.sample_interior(N, method="sobol", seed=0)
    assert x.shape == (N, 2) and g.inside(x).all()
    benchmark.pedantic(g.sample_interior, args=(N,), kwargs={"method": "sobol", "seed": 1}, rounds=5, iterations=1)
