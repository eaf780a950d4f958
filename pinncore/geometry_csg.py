"""Constructive solid geometry: ``Union`` (a | b), ``Intersection`` (a & b) and ``Difference``
(a - b) of geometries, with exact boundary sampling (a primitive's boundary kept where it is the
result's boundary; see pinncore.geometry).

>>> import pinncore.geometry as geo
>>> u = geo.Box([0, 0], [1, 1]) | geo.Box([1, 0], [2, 1])
>>> isinstance(u, Union), u.hi.tolist()
(True, [2.0, 1.0])
"""
from __future__ import annotations

import numpy as np

from .geometry_shapes import Geometry

__all__ = ["CSG", "Union", "Intersection", "Difference"]


# ------------------------------------------------------------------------------ CSG

class CSG(Geometry):
    op = "?"

    def __init__(self, a, b):
        for what, g in (("left operand", a), ("right operand", b)):
            if not isinstance(g, Geometry):
                raise TypeError(f"{what} of '{self.op}' must be a geometry, got {type(g).__name__}")
        if a.dim != b.dim:
            raise ValueError(f"cannot combine a {a.dim}-D and a {b.dim}-D geometry with '{self.op}'")
        self.a, self.b, self.dim = a, b, a.dim
        self.lo, self.hi = self._bounds()

    def _bounds(self):
        return np.minimum(self.a.lo, self.b.lo), np.maximum(self.a.hi, self.b.hi)

    def _primitives(self):
        return self.a._primitives() + self.b._primitives()

    def _flip_list(self):
        fa = self.a._flip_list() if isinstance(self.a, CSG) else [1.0]
        fb = self.b._flip_list() if isinstance(self.b, CSG) else [1.0]
        sign = -1.0 if isinstance(self, Difference) else 1.0
        return fa + [sign * f for f in fb]

    def _flips(self, prims):
        return np.array(self._flip_list())

    def _tree(self, S, i=0):
        """The CSG combination of the primitives' signed distances S (P, m), in tree order."""
        sa, i = self.a._tree(S, i) if isinstance(self.a, CSG) else (S[i], i + 1)
        sb, i = self.b._tree(S, i) if isinstance(self.b, CSG) else (S[i], i + 1)
        return self._combine(sa, sb), i

    def _sdf(self, x):
        return self._combine(self.a._sdf(x), self.b._sdf(x))

    def _resolve(self, x, s, tol, out, closure):
        """Where two primitives' boundaries meet on the zero set of the CSG distance (a face
        shared by a union's operands, a face of ``b`` lying on a face of ``a`` in ``a - b``,
        a junction), the min/max combination cannot tell: probe the points at distance eps
        along the axes, the diagonals, ±n_i and ±n_i ± n_j (the primitives' normals). x is in the closed
        (regularised) set iff a probe is strictly inside, on the boundary iff moreover a probe
        is strictly outside."""
        prims = self._primitives()
        cand = np.flatnonzero(np.abs(s) <= tol)
        if cand.size == 0:
            return out
        xs = x[cand]
        S = np.stack([p._sdf(xs) for p in prims])
        amb = (np.abs(S) <= max(tol, 1e-9 * float(np.linalg.norm(self.hi - self.lo)))).sum(axis=0) >= 2
        if not amb.any():
            return out
        idx, xa = cand[amb], xs[amb]
        eps = 1e-7 * float(np.linalg.norm(self.hi - self.lo))
        near = np.abs(S[:, amb]) <= 1e-9 * float(np.linalg.norm(self.hi - self.lo))
        normals = [p._sdf_normal(xa)[1] for p in prims]
        # fixed directions too: at a corner of a primitive its normal is one face's only
        d = self.dim
        dirs = [np.broadcast_to(v, xa.shape) for v in np.concatenate([np.eye(d), -np.eye(d)])]
        dirs += [np.broadcast_to(np.array(v, dtype=float), xa.shape)
                 for v in np.array(np.meshgrid(*[[-1.0, 1.0]] * d, indexing="ij")).reshape(d, -1).T]
        for i in range(len(prims)):
            dirs += [normals[i], -normals[i]]
            for j in range(i + 1, len(prims)):
                both = (near[i] & near[j])[:, None]
                for a in (1.0, -1.0):
                    for b in (1.0, -1.0):
                        d = a * normals[i] + b * normals[j]
                        dirs.append(np.where(both, d, 0.0))
        inner = np.zeros(idx.size, dtype=bool)
        outer = np.zeros(idx.size, dtype=bool)
        for d in dirs:
            ln = np.linalg.norm(d, axis=1)
            ok = ln > 1e-12
            v = self._sdf(xa + eps * d / np.where(ok, ln, 1.0)[:, None])
            inner |= ok & (v < -tol)
            outer |= ok & (v > tol)
        out = out.copy()
        out[idx] = inner if closure else (inner & outer)
        return out

    def _keep(self, x, nrm, which, prims):
        """Candidates on the result's boundary.

        Away from every other primitive's boundary (|sdf_i| > eps) a candidate is on the
        result's boundary iff the CSG combination vanishes there. Near another boundary
        (shared faces, coincident edges) it is kept iff the result lies on its inner side and
        not on its outer side along the oriented normal, and coincident parts are taken from
        the earliest primitive only."""
        eps = 1e-7 * float(np.linalg.norm(self.hi - self.lo))
        tol = self.tol
        S = np.stack([p._sdf(x) for p in prims])
        S[which, np.arange(x.shape[0])] = 0.0          # exactly on their own primitive
        ok = np.abs(self._tree(S)[0]) <= tol
        near = np.abs(S) <= eps
        near[which, np.arange(x.shape[0])] = False
        idx = np.flatnonzero(ok & near.any(axis=0))
        if idx.size == 0:
            return ok
        xo, no = x[idx], nrm[idx]
        ok[idx] = (self._sdf(xo + eps * no) > 0) & (self._sdf(xo - eps * no) <= 0)
        flips = self._flips(prims)
        for i, p in enumerate(prims[:-1]):
            later = idx[ok[idx] & (which[idx] > i) & near[i, idx]]
            if later.size == 0:
                continue
            s_i, n_i = p._sdf_normal(x[later])
            same = (np.abs(s_i) <= tol) & ((flips[i] * n_i * nrm[later]).sum(axis=1) > 0)
            ok[later[same]] = False
        return ok


class Union(CSG):
    """``a | b``: points in a or b.

    >>> import pinncore.geometry as geo
    >>> u = geo.Box([0, 0], [1, 1]) | geo.Box([1, 0], [2, 1])
    >>> bool(u.on_boundary(u.sample_boundary(100, seed=0)).all()), u.inside([[1.0, 0.5]])
    (True, array([ True]))
    """
    op = "|"

    @staticmethod
    def _combine(sa, sb):
        return np.minimum(sa, sb)

    def _sdf_normal(self, x):
        sa, na = self.a._sdf_normal(x)
        sb, nb = self.b._sdf_normal(x)
        pick = sa <= sb
        return np.where(pick, sa, sb), np.where(pick[:, None], na, nb)

    def __repr__(self):
        return f"({self.a!r} | {self.b!r})"


class Intersection(CSG):
    """``a & b``: points in both.

    >>> import pinncore.geometry as geo
    >>> lens = geo.Disk([0, 0], 1) & geo.Disk([1, 0], 1)
    >>> lens.inside([[0.5, 0.0], [-0.5, 0.0]])
    array([ True, False])
    """
    op = "&"

    @staticmethod
    def _combine(sa, sb):
        return np.maximum(sa, sb)

    def _bounds(self):
        lo, hi = np.maximum(self.a.lo, self.b.lo), np.minimum(self.a.hi, self.b.hi)
        if not (lo < hi).all():
            raise ValueError(f"the intersection of {self.a!r} and {self.b!r} is empty")
        return lo, hi

    def _sdf_normal(self, x):
        sa, na = self.a._sdf_normal(x)
        sb, nb = self.b._sdf_normal(x)
        pick = sa >= sb
        return np.where(pick, sa, sb), np.where(pick[:, None], na, nb)

    def __repr__(self):
        return f"({self.a!r} & {self.b!r})"


class Difference(CSG):
    """``a - b``: points in a and not in the interior of b (b's boundary inside a is boundary).

    >>> import pinncore.geometry as geo
    >>> ring = geo.Disk([0, 0], 1) - geo.Disk([0, 0], 0.5)
    >>> ring.normal([[0.5, 0.0]])          # on the hole: pointing into the hole
    array([[-1.,  0.]])
    """
    op = "-"

    @staticmethod
    def _combine(sa, sb):
        return np.maximum(sa, -sb)

    def _bounds(self):
        return self.a.lo.copy(), self.a.hi.copy()

    def _sdf_normal(self, x):
        sa, na = self.a._sdf_normal(x)
        sb, nb = self.b._sdf_normal(x)
        pick = sa >= -sb
        return np.where(pick, sa, -sb), np.where(pick[:, None], na, -nb)

    def __repr__(self):
        return f"({self.a!r} - {self.b!r})"
