"""Domains for PINNs: boxes, disks/balls, polygons and their constructive solid geometry.

Every geometry answers four questions, vectorised over points ``x`` of shape (N, d):

* ``sdf(x)`` — a signed distance (negative inside, zero on the boundary, positive outside).
  Exact for the primitives; for CSG it is the usual min/max combination (exact sign and
  zero set, a bound on the distance elsewhere);
* ``inside(x)`` — closed-set membership (boundary points count as inside);
* ``normal(x)`` — the outward unit normal of the boundary part nearest ``x`` (on the
  boundary: the gradient of ``sdf``);
* ``sample_interior(n, method, seed)`` and ``sample_boundary(n, method, seed)`` — ``n``
  points, reproducible per seed, with ``method`` one of ``"uniform"`` (NumPy's PCG64),
  ``"sobol"``, ``"halton"``, ``"lhs"`` (scrambled/seeded ``scipy.stats.qmc`` engines) or
  ``"grid"`` (a regular grid; about ``n`` points, not exactly ``n``).

Boundary points are exact: they are drawn on a primitive's boundary (a closed-form map from
the unit cube, measure-preserving, so uniform/QMC points stay uniform/low-discrepancy on
the boundary) and, for CSG, kept only where that primitive's boundary is the result's
boundary. A primitive is chosen with probability proportional to its boundary measure, and
a candidate is kept iff the result lies on its inner side and not on its outer side along
the (orientation-corrected) normal — so a boundary point of ``a - b`` from ``b`` lies inside
``a``, faces shared by two operands of a union are dropped, and coincident parts are kept
once (from the earlier primitive). Kept candidates are taken in sequence order, so the
result is a subsequence of a low-discrepancy sequence and exactly ``n`` points.

The interface and primitives live in geometry_shapes, the boolean combinations in geometry_csg,
the point streams and ``Grid`` in geometry_sampling; this module gathers them.

Example
-------
>>> import numpy as np
>>> import pinncore.geometry as geo
>>> L = geo.Box([0, 0], [2, 2]) - geo.Box([1, 1], [2, 2])     # an L-shape
>>> x = L.sample_boundary(1000, method="sobol", seed=0)
>>> bool(np.abs(L.sdf(x)).max() < 1e-12), x.shape
(True, (1000, 2))
>>> bool(L.inside(L.sample_interior(500, seed=1)).all())
True
>>> L.normal(np.array([[1.5, 1.0]]))        # on the re-entrant edge, pointing into the cut
array([[0., 1.]])
"""
from __future__ import annotations

from .geometry_sampling import METHODS, Grid
from .geometry_shapes import Box, Disk, Geometry, Polygon
from .geometry_csg import Difference, Intersection, Union

__all__ = ["Geometry", "Box", "Disk", "Polygon", "Union", "Intersection", "Difference", "Grid", "METHODS"]
