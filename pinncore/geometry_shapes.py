"""The geometry interface (``Geometry``: inside, on_boundary, normal, sdf, sampling by rejection)
and the primitives ``Box``, ``Disk`` and ``Polygon`` (boolean combinations: geometry_csg).

>>> Disk([0, 0], 1).inside([[0.5, 0.0], [1.5, 0.0]])
array([ True, False])
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .geometry_sampling import CHUNK, MAX_DRAW, Grid, Stream, as_vector, check_method, check_n, check_seed, grid_unit

__all__ = ["Geometry", "Box", "Disk", "Polygon"]


# ------------------------------------------------------------------------------ base class

class Geometry:
    """Base class: ``dim``, ``bbox`` (lo, hi), ``sdf``, ``inside``, ``normal``, sampling, CSG.

    Subclasses implement ``_sdf_normal(x) -> (s (N,), n (N, d))`` and, for the boundary, a
    list of primitives with ``_bmap(u) -> (x, n)`` from ``_bdim``-dimensional unit-cube
    samples and ``_bmeasure`` (their boundary length/area).
    """

    dim: int
    lo: np.ndarray
    hi: np.ndarray

    # -- queries -----------------------------------------------------------------------------
    @property
    def bbox(self):
        """(lo, hi): the axis-aligned bounding box (copies)."""
        return self.lo.copy(), self.hi.copy()

    @property
    def tol(self):
        """The absolute tolerance of ``inside``/``on_boundary``: 1e-10 × the bounding-box diagonal."""
        return 1e-10 * float(np.linalg.norm(self.hi - self.lo))

    def domain(self, names):
        """``{name: (lo, hi)}`` for ``pc.Problem(domain=...)`` from the bounding box.

        >>> import pinncore.geometry as geo
        >>> geo.Disk([0, 0], 1).domain(["x", "y"])
        {'x': (-1.0, 1.0), 'y': (-1.0, 1.0)}
        """
        names = [names] if isinstance(names, str) else list(names)
        if len(names) != self.dim:
            raise ValueError(f"names must name {self.dim} inputs, got {names!r}")
        return {k: (float(a), float(b)) for k, a, b in zip(names, self.lo, self.hi)}

    def _points(self, x, what="x"):
        arr = np.asarray(x)
        if arr.dtype == object or arr.dtype.kind not in "fiu":
            raise TypeError(f"{what} must be a real array of shape (N, {self.dim})")
        if arr.ndim == 1 and self.dim == 1:
            arr = arr[:, None]
        if arr.ndim != 2 or arr.shape[1] != self.dim:
            raise ValueError(f"{what} must have shape (N, {self.dim}), got {arr.shape}")
        return np.asarray(arr, dtype=np.float64)

    def sdf(self, x):
        """Signed distance (N,): < 0 inside, 0 on the boundary, > 0 outside.

        >>> import pinncore.geometry as geo
        >>> geo.Disk([0, 0], 1).sdf([[0.0, 0.0], [2.0, 0.0]])
        array([-1.,  1.])
        """
        return self._sdf(self._points(x))

    def _sdf(self, x):
        return self._sdf_normal(x)[0]

    def inside(self, x, tol=None):
        """Boolean (N,): x in the closed domain (|boundary distance| ≤ ``tol`` counts as inside).

        >>> import pinncore.geometry as geo
        >>> geo.Box([0], [1]).inside([[0.5], [1.0], [1.5]])
        array([ True,  True, False])
        """
        x = self._points(x)
        tol = self.tol if tol is None else float(tol)
        s = self._sdf(x)
        out = s <= tol
        return self._resolve(x, s, tol, out, closure=True)

    def on_boundary(self, x, tol=None):
        """Boolean (N,): x on the boundary (|sdf(x)| ≤ ``tol``, default ``self.tol``).

        >>> import pinncore.geometry as geo
        >>> geo.Box([0, 0], [1, 1]).on_boundary([[0.0, 0.3], [0.5, 0.5]])
        array([ True, False])
        """
        x = self._points(x)
        tol = self.tol if tol is None else float(tol)
        s = self._sdf(x)
        out = np.abs(s) <= tol
        return self._resolve(x, s, tol, out, closure=False)

    def _resolve(self, x, s, tol, out, closure):
        """Primitives decide from the sdf alone (CSG refines points where operands meet)."""
        return out

    def normal(self, x):
        """Outward unit normal (N, d) of the nearest boundary part (on the boundary: ∇ sdf).

        >>> import pinncore.geometry as geo
        >>> geo.Box([0, 0], [1, 1]).normal([[1.0, 0.5], [0.5, 0.0]])
        array([[ 1.,  0.],
               [ 0., -1.]])
        """
        return self._sdf_normal(self._points(x))[1] + 0.0       # + 0.0: no negative zeros

    # -- sampling ------------------------------------------------------------------------------
    def sample_interior(self, n, method="uniform", seed=0):
        """``n`` points (n, d) inside the domain (``"grid"``: about ``n``, on a regular grid).

        >>> import pinncore.geometry as geo
        >>> geo.Disk([0, 0], 1).sample_interior(4, method="halton", seed=0).shape
        (4, 2)
        """
        n, method, seed = check_n(n), check_method(method), check_seed(seed)
        if method == "grid":
            return self._grid_interior(n)
        direct = self._map_interior_direct
        if direct is not None:
            return direct(Stream(method, self._idim, seed).draw(n)) if n else np.zeros((0, self.dim))
        return self._rejection(n, Stream(method, self.dim, seed), self._interior_candidates)

    _map_interior_direct = None
    _idim = 0

    def _interior_candidates(self, u):
        x = self.lo + (self.hi - self.lo) * u
        return x, self.inside(x)

    def _grid_interior(self, n):
        if n == 0:
            return np.zeros((0, self.dim))
        probe = self._interior_candidates(grid_unit(4096, self.dim))[1].mean()
        m = int(math.ceil(n / max(probe, 1e-3)))
        for _ in range(3):   # refine the grid size so that about n points fall inside
            x, ok = self._interior_candidates(grid_unit(m, self.dim))
            got = int(ok.sum())
            if got == 0 or abs(got - n) <= max(1, 0.02 * n):
                break
            m = int(math.ceil(m * n / got))
        return x[ok]

    def sample_boundary(self, n, method="uniform", seed=0):
        """``n`` points (n, d) exactly on the boundary, uniform in boundary measure.

        >>> import numpy as np, pinncore.geometry as geo
        >>> x = geo.Disk([0, 0], 2).sample_boundary(8, method="sobol", seed=0)
        >>> bool(np.allclose(np.linalg.norm(x, axis=1), 2.0))
        True
        """
        n, method, seed = check_n(n), check_method(method), check_seed(seed)
        prims = self._primitives()
        k = max(p._bdim for p in prims)
        if method == "grid":
            m = max(1, n)
            x, _, ok = self._boundary_candidates(grid_unit(int(round(m / self._accept_rate())), k), prims)
            return x[ok]
        if n == 0:
            return np.zeros((0, self.dim))
        return self._rejection(n, Stream(method, k, seed), lambda u: self._boundary_candidates(u, prims)[::2])

    def sample_boundary_normals(self, n, method="uniform", seed=0):
        """``(x, normals)``: ``sample_boundary`` and the outward normals at those points.

        >>> import pinncore.geometry as geo
        >>> x, nrm = geo.Box([0, 0], [1, 1]).sample_boundary_normals(5, seed=0)
        >>> nrm.shape
        (5, 2)
        """
        x = self.sample_boundary(n, method, seed)
        return x, self.normal(x)

    def _accept_rate(self):
        """Fraction of boundary candidates kept (1 for a primitive), probed once on a grid."""
        from .geometry_csg import CSG   # geometry_csg builds on this module
        if not isinstance(self, CSG):
            return 1.0
        if getattr(self, "_rate", None) is None:
            prims = self._primitives()
            k = max(p._bdim for p in prims)
            self._rate = max(float(self._boundary_candidates(grid_unit(4096, k), prims)[2].mean()), 1e-3)
        return self._rate

    def _rejection(self, n, stream, candidates):
        """The first n accepted candidates of the stream, in sequence order."""
        out, have, m = [], 0, max(64, int(n * 1.02 / self._accept_rate()))
        while have < n:
            u = stream.draw(m)
            # in chunks: the temporaries stay in cache (about 2x faster at a million points)
            parts = [candidates(u[i:i + CHUNK]) for i in range(0, m, CHUNK)]
            x = np.concatenate([p[0] for p in parts])
            ok = np.concatenate([p[1] for p in parts])
            out.append(x[ok])
            have += int(ok.sum())
            rate = max(ok.mean(), 1e-4) if ok.size else 1e-4
            m = int(min(MAX_DRAW, max(64, (n - have) / rate * 1.1)))
            if rate <= 1e-4 and not have:
                raise ValueError(f"{self!r}: no candidate points fall in the domain (is it empty?)")
        return np.concatenate(out)[:n]

    def _primitives(self):
        return [self]

    def _boundary_candidates(self, u, prims):
        """Map unit-cube samples (m, k) to boundary candidates of the primitives.

        u[:, 0] picks the primitive (probability ∝ boundary measure) and is rescaled to
        [0, 1) to serve as that primitive's first coordinate. Returns (x, n, ok)."""
        if len(prims) == 1:
            x, nrm = self._bmap(u[:, :self._bdim])
            return x, nrm, np.ones(x.shape[0], dtype=bool)
        meas = np.array([p._bmeasure for p in prims])
        cum = np.concatenate([[0.0], np.cumsum(meas) / meas.sum()])
        which = np.clip(np.searchsorted(cum, u[:, 0], side="right") - 1, 0, len(prims) - 1).astype(np.int16)
        # group the candidates by primitive (a stable radix sort of small integers), so each
        # primitive maps one contiguous slice; scatter back to sequence order at the end
        order = np.argsort(which, kind="stable")
        us, ws = u[order], which[order]
        start = np.concatenate([[0], np.cumsum(np.bincount(ws, minlength=len(prims)))])
        xs = np.empty((u.shape[0], self.dim))
        ns = np.empty_like(xs)
        for j, p in enumerate(prims):
            a, b = start[j], start[j + 1]
            if a == b:
                continue
            uj = us[a:b, :p._bdim].copy()
            uj[:, 0] = np.clip((uj[:, 0] - cum[j]) / (cum[j + 1] - cum[j]), 0.0, np.nextafter(1.0, 0.0))
            xs[a:b], ns[a:b] = p._bmap(uj)
            ns[a:b] *= self._flips(prims)[j]          # orientation of the result's boundary
        oks = self._keep(xs, ns, ws, prims)
        x, nrm, ok = np.empty_like(xs), np.empty_like(ns), np.empty_like(oks)
        x[order], nrm[order], ok[order] = xs, ns, oks
        return x, nrm, ok

    # -- grids ---------------------------------------------------------------------------------
    def grid(self, shape):
        """A regular ``Grid`` over the bounding box, masked by this geometry.

        >>> import pinncore.geometry as geo
        >>> g = geo.Disk([0, 0], 1).grid((5, 5))
        >>> g.points.shape, int(g.mask.sum())
        ((25, 2), 13)
        """
        return Grid(self.lo, self.hi, shape, geometry=self)

    # -- constructive solid geometry -----------------------------------------------------------
    def __or__(self, other):
        from .geometry_csg import Union   # geometry_csg builds on this module
        return Union(self, other)

    def __and__(self, other):
        from .geometry_csg import Intersection   # geometry_csg builds on this module
        return Intersection(self, other)

    def __sub__(self, other):
        from .geometry_csg import Difference   # geometry_csg builds on this module
        return Difference(self, other)


# ------------------------------------------------------------------------------ primitives

class Box(Geometry):
    """An axis-aligned box [lo, hi] in 1 to 4 dimensions (an interval, a rectangle, a space-time slab).

    >>> import pinncore.geometry as geo
    >>> b = geo.Box([0, -1], [1, 1])
    >>> b.dim, b.sample_interior(3, seed=0).shape
    (2, (3, 2))
    >>> b.sample_face(2, axis=0, side="lo", seed=0)[:, 0]
    array([0., 0.])
    """

    def __init__(self, lo, hi):
        lo, hi = as_vector(lo, "lo"), as_vector(hi, "hi")
        if not 1 <= lo.size <= 4:
            raise ValueError(f"lo must have 1 to 4 entries (dimensions), got {lo.size}")
        if hi.shape != lo.shape:
            raise ValueError(f"hi must have the same length as lo ({lo.size}), got {hi.size}")
        if not (lo < hi).all():
            raise ValueError(f"need lo < hi in every dimension, got lo={lo}, hi={hi}")
        self.lo, self.hi, self.dim = lo, hi, lo.size
        self._idim = self.dim
        self._bdim = max(1, self.dim - 1)
        L = hi - lo
        # faces in the order (axis 0 lo, axis 0 hi, axis 1 lo, ...); a face's measure is the
        # product of the other edge lengths (1 for the two end points of an interval)
        self._face_meas = np.repeat([float(np.prod(np.delete(L, j))) for j in range(self.dim)], 2)
        self._bmeasure = float(self._face_meas.sum())

    def _map_interior_direct(self, u):
        return self.lo + (self.hi - self.lo) * u

    def _sdf(self, x):
        # column by column: NumPy's reductions along a short last axis are slow
        c, h = (self.lo + self.hi) / 2, (self.hi - self.lo) / 2
        q = [np.abs(x[:, j] - c[j]) - h[j] for j in range(self.dim)]
        if self.dim == 1:
            return q[0]
        qmax, out2 = q[0], np.square(np.maximum(q[0], 0.0))
        for qj in q[1:]:
            qmax = np.maximum(qmax, qj)
            out2 += np.square(np.maximum(qj, 0.0))
        return np.sqrt(out2) + np.minimum(qmax, 0.0)

    def _sdf_normal(self, x):
        c, h = (self.lo + self.hi) / 2, (self.hi - self.lo) / 2
        off = x - c
        sgn = np.where(off >= 0, 1.0, -1.0)
        q = np.abs(off) - h
        qp = np.maximum(q, 0.0)
        outside = np.sqrt((qp * qp).sum(axis=1))
        qmax = q.max(axis=1)
        s = outside + np.minimum(qmax, 0.0)
        n = np.zeros_like(x)
        n[np.arange(x.shape[0]), np.argmax(q, axis=1)] = 1.0      # inside/on: the nearest face
        out = outside > 0
        n[out] = qp[out] / outside[out, None]
        return s, n * sgn

    def _bmap(self, u):
        m, d = u.shape[0], self.dim
        cum = np.concatenate([[0.0], np.cumsum(self._face_meas) / self._bmeasure])
        face = np.clip(np.searchsorted(cum, u[:, 0], side="right") - 1, 0, 2 * d - 1)
        s = np.clip((u[:, 0] - cum[face]) / (cum[face + 1] - cum[face]), 0.0, 1.0)
        axis, side = face // 2, (face % 2).astype(np.float64)
        free = [s] + [u[:, k] for k in range(1, d - 1)]       # the face's d-1 coordinates
        x = np.empty((m, d))
        n = np.zeros((m, d))
        for c in range(d):
            # column c is the face's free coordinate c (axis > c) or c - 1 (axis < c)
            below = free[c] if c < d - 1 else side
            above = free[c - 1] if c > 0 else side
            unit = np.where(axis == c, side, np.where(axis > c, below, above))
            x[:, c] = self.lo[c] + (self.hi[c] - self.lo[c]) * unit
            n[:, c] = np.where(axis == c, 2.0 * side - 1.0, 0.0)
        return x, n

    def sample_face(self, n, axis, side, method="uniform", seed=0):
        """``n`` points on one face: ``x[axis] = lo[axis]`` (side "lo") or ``hi[axis]`` ("hi").

        The other coordinates are the same sequence for both sides of an axis, so
        ``sample_face(n, a, "lo")`` and ``sample_face(n, a, "hi")`` are paired point by point
        (periodic conditions).
        """
        n, method, seed = check_n(n), check_method(method), check_seed(seed)
        if isinstance(axis, bool) or not isinstance(axis, numbers.Integral) or not 0 <= axis < self.dim:
            raise ValueError(f"axis must be an integer in [0, {self.dim}), got {axis!r}")
        if side not in ("lo", "hi"):
            raise ValueError(f"side must be 'lo' or 'hi', got {side!r}")
        others = [k for k in range(self.dim) if k != axis]
        x = np.empty((0, self.dim))
        if others:
            face = Box(self.lo[others], self.hi[others])
            y = face.sample_interior(n, method, seed)
            x = np.empty((y.shape[0], self.dim))
            x[:, others] = y
        else:
            x = np.empty((n, 1))
        x[:, axis] = self.lo[axis] if side == "lo" else self.hi[axis]
        return x

    def __repr__(self):
        return f"Box(lo={self.lo.tolist()}, hi={self.hi.tolist()})"


class Disk(Geometry):
    """A disk (2-D) or ball (3-D) with ``center`` and ``radius``.

    >>> import pinncore.geometry as geo
    >>> geo.Disk([0, 0, 0], 1).sample_boundary(3, seed=0).shape
    (3, 3)
    """

    def __init__(self, center, radius):
        c = as_vector(center, "center")
        if c.size not in (2, 3):
            raise ValueError(f"center must have 2 or 3 entries (a disk or a ball), got {c.size}")
        if isinstance(radius, bool) or not isinstance(radius, numbers.Real) or not (0 < radius < math.inf):
            raise ValueError(f"radius must be a positive finite number, got {radius!r}")
        self.center, self.radius, self.dim = c, float(radius), c.size
        self.lo, self.hi = c - self.radius, c + self.radius
        self._idim = self.dim
        self._bdim = self.dim - 1
        self._bmeasure = 2 * math.pi * self.radius if self.dim == 2 else 4 * math.pi * self.radius ** 2

    def _directions(self, u):
        # measure-preserving maps of the unit square/cube onto the circle/sphere
        if self.dim == 2:
            th = 2 * math.pi * u[:, 0]
            return np.column_stack([np.cos(th), np.sin(th)])
        z = 1.0 - 2.0 * u[:, 0]
        phi = 2 * math.pi * u[:, 1]
        rho = np.sqrt(np.maximum(0.0, 1.0 - z * z))
        return np.column_stack([rho * np.cos(phi), rho * np.sin(phi), z])

    def _map_interior_direct(self, u):
        r = self.radius * u[:, -1] ** (1.0 / self.dim)     # area/volume-preserving radius
        return self.center + r[:, None] * self._directions(u[:, :-1])

    def _bmap(self, u):
        n = self._directions(u)
        return self.center + self.radius * n, n

    def _sdf(self, x):
        r2 = np.square(x[:, 0] - self.center[0])
        for j in range(1, self.dim):
            r2 += np.square(x[:, j] - self.center[j])
        return np.sqrt(r2) - self.radius

    def _sdf_normal(self, x):
        off = x - self.center
        r = np.sqrt((off * off).sum(axis=1))
        n = np.zeros_like(x)
        n[:, 0] = 1.0                                       # the centre: any direction
        pos = r > 0
        n[pos] = off[pos] / r[pos, None]
        return r - self.radius, n

    def __repr__(self):
        return f"Disk(center={self.center.tolist()}, radius={self.radius})"


def _segments_cross(p, q, r, s):
    """Proper intersection of segments pq and rs (2-D)."""
    def orient(a, b, c):
        return np.sign((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]))
    return orient(p, q, r) * orient(p, q, s) < 0 and orient(r, s, p) * orient(r, s, q) < 0


class Polygon(Geometry):
    """A simple polygon (no self-intersections) from its vertices (either orientation).

    >>> import pinncore.geometry as geo
    >>> L = geo.Polygon([[0, 0], [2, 0], [2, 1], [1, 1], [1, 2], [0, 2]])
    >>> L.area, L.inside([[0.5, 1.5], [1.5, 1.5]])
    (3.0, array([ True, False]))
    """

    def __init__(self, vertices):
        v = np.asarray(vertices)
        if v.dtype == object or v.dtype.kind not in "fiu" or v.ndim != 2 or v.shape[1] != 2:
            raise ValueError(f"vertices must be a real array of shape (K, 2), got {np.shape(vertices)}")
        v = v.astype(np.float64)
        if v.shape[0] < 3 or not np.isfinite(v).all():
            raise ValueError("vertices must hold at least 3 finite points")
        e = np.roll(v, -1, axis=0) - v
        area2 = float(np.sum(v[:, 0] * np.roll(v[:, 1], -1) - np.roll(v[:, 0], -1) * v[:, 1]))
        if (np.hypot(e[:, 0], e[:, 1]) == 0).any() or area2 == 0:
            raise ValueError("vertices must not repeat and must enclose a non-zero area")
        if area2 < 0:                                       # store counter-clockwise
            v = v[::-1].copy()
        K = v.shape[0]
        for i in range(K):
            for j in range(i + 1, K):
                if j in (i + 1, (i - 1) % K) or (i == 0 and j == K - 1):
                    continue
                if _segments_cross(v[i], v[(i + 1) % K], v[j], v[(j + 1) % K]):
                    raise ValueError(f"vertices must describe a simple polygon: edges {i} and {j} cross")
        self.vertices, self.dim = v, 2
        self.area = abs(area2) / 2
        self.lo, self.hi = v.min(axis=0), v.max(axis=0)
        self._a = v
        self._e = np.roll(v, -1, axis=0) - v
        self._len = np.hypot(self._e[:, 0], self._e[:, 1])
        self._n = np.column_stack([self._e[:, 1], -self._e[:, 0]]) / self._len[:, None]   # outward (CCW)
        self._cum = np.concatenate([[0.0], np.cumsum(self._len)])
        self._bdim, self._bmeasure = 1, float(self._cum[-1])

    def _sdf_normal(self, x):
        px, py = x[:, 0], x[:, 1]
        best = np.full(x.shape[0], np.inf)
        edge = np.zeros(x.shape[0], dtype=np.int64)
        inside = np.zeros(x.shape[0], dtype=bool)
        for k in range(self._a.shape[0]):
            (ax, ay), (ex, ey) = self._a[k], self._e[k]
            t = np.clip(((px - ax) * ex + (py - ay) * ey) / (self._len[k] ** 2), 0.0, 1.0)
            dx, dy = px - (ax + t * ex), py - (ay + t * ey)
            d2 = dx * dx + dy * dy
            closer = d2 < best
            best = np.where(closer, d2, best)
            edge = np.where(closer, k, edge)
            by = ay + ey
            crosses = (ay > py) != (by > py)                 # even-odd rule
            with np.errstate(divide="ignore", invalid="ignore"):
                xc = ax + ex * (py - ay) / ey
            inside ^= crosses & (px < xc)
        d = np.sqrt(best)
        return np.where(inside, -d, d), self._n[edge]

    def _bmap(self, u):
        s = u[:, 0] * self._bmeasure
        k = np.clip(np.searchsorted(self._cum, s, side="right") - 1, 0, self._a.shape[0] - 1)
        t = np.clip((s - self._cum[k]) / self._len[k], 0.0, 1.0)
        return self._a[k] + t[:, None] * self._e[k], self._n[k]

    def __repr__(self):
        return f"Polygon({self.vertices.tolist()})"
