"""Sampling for the geometries (pinncore.geometry): the checked arguments of the samplers, the
seeded point streams in [0, 1)^d (uniform, Sobol', Halton, LHS), centred unit grids and ``Grid``,
a regular grid over a box masked by a geometry.

>>> Stream("sobol", 2, seed=0).draw(3).shape
(3, 2)
"""
from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["METHODS", "CHUNK", "MAX_DRAW", "check_n", "check_seed", "check_method", "as_vector", "Stream", "grid_unit",
           "Grid"]

METHODS = ("uniform", "sobol", "halton", "lhs", "grid")
CHUNK = 1 << 15               # candidates mapped and tested per pass
MAX_DRAW = 1 << 26            # refuse rejection sampling that would need > 67M candidates at once


# ------------------------------------------------------------------------------ helpers

def check_n(n, what="n"):
    if isinstance(n, bool) or not isinstance(n, (numbers.Integral,)) or n < 0:
        raise ValueError(f"{what} must be a non-negative integer, got {n!r}")
    return int(n)


def check_seed(seed):
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def check_method(method):
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    return method


def as_vector(v, what, d=None):
    arr = np.asarray(v)
    if arr.dtype == object or arr.dtype.kind not in "fiu":
        raise TypeError(f"{what} must be a real vector, got {v!r}")
    arr = np.atleast_1d(arr.astype(np.float64))
    if arr.ndim != 1 or (d is not None and arr.shape != (d,)):
        want = f"shape ({d},)" if d is not None else "a 1-D vector"
        raise ValueError(f"{what} must be {want}, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} must be finite, got {arr}")
    return arr


class Stream:
    """The next points of one seeded sequence in [0, 1)^dim, in order.

    Sobol' points are generated in blocks whose running total is a power of two (their
    balance property; scipy warns otherwise) and buffered, so ``draw`` takes any count.
    """

    def __init__(self, method, dim, seed):
        from scipy.stats import qmc
        self.method, self.dim = method, dim
        if method == "uniform":
            self._rng = np.random.default_rng(seed)
        elif method == "sobol":
            self._engine = qmc.Sobol(dim, scramble=True, seed=seed)
        elif method == "halton":
            self._engine = qmc.Halton(dim, scramble=True, seed=seed)
        elif method == "lhs":
            self._engine = qmc.LatinHypercube(dim, seed=seed)
        else:  # pragma: no cover - callers handle "grid"
            raise AssertionError(method)
        self._buf = np.zeros((0, dim))
        self._total = 0

    def draw(self, m):
        if self.method == "uniform":
            return self._rng.random((m, self.dim))
        if self.method != "sobol":
            return self._engine.random(m)
        while self._buf.shape[0] < m:
            # a first block of 2^k >= m, then doubling: the running total stays a power of two
            block = self._total if self._total else 1 << max(0, int(math.ceil(math.log2(m))))
            self._buf = np.concatenate([self._buf, self._engine.random(block)])
            self._total += block
        out, self._buf = self._buf[:m], self._buf[m:]
        return out


def grid_unit(m, dim):
    """A centred regular grid of about m points in [0, 1)^dim (k per axis)."""
    k = max(1, int(round(m ** (1.0 / dim))))
    axis = (np.arange(k) + 0.5) / k
    mesh = np.meshgrid(*([axis] * dim), indexing="ij")
    return np.stack([g.ravel() for g in mesh], axis=1)


# ------------------------------------------------------------------------------ grids

class Grid:
    """A regular grid over [lo, hi] (``shape`` points per axis, end points included), with the
    mask of a geometry, and ``reshape`` to turn predictions at ``points`` back into grid arrays.

    >>> import numpy as np, pinncore.geometry as geo
    >>> g = geo.Grid([0, 0], [1, 2], (3, 5))
    >>> g.points.shape, g.reshape(g.points[:, 1]).shape
    ((15, 2), (3, 5))
    >>> d = geo.Disk([0, 0], 1).grid((3, 3))
    >>> d.reshape(np.ones((9, 1)))[..., 0]      # NaN outside the disk
    array([[nan,  1., nan],
           [ 1.,  1.,  1.],
           [nan,  1., nan]])
    """

    def __init__(self, lo, hi, shape, geometry=None):
        lo, hi = as_vector(lo, "lo"), as_vector(hi, "hi", d=np.size(lo))
        if isinstance(shape, numbers.Integral):
            shape = (int(shape),) * lo.size
        shape = tuple(shape)
        if len(shape) != lo.size or not all(isinstance(k, numbers.Integral) and k >= 2 for k in shape):
            raise ValueError(f"shape must give {lo.size} integers >= 2 (points per axis), got {shape!r}")
        if not (lo < hi).all():
            raise ValueError(f"need lo < hi in every dimension, got lo={lo}, hi={hi}")
        from .geometry_shapes import Geometry   # imports this module: imported when used
        if geometry is not None and (not isinstance(geometry, Geometry) or geometry.dim != lo.size):
            raise ValueError(f"geometry must be a {lo.size}-D pinncore.geometry shape, got {geometry!r}")
        self.shape = tuple(int(k) for k in shape)
        self.axes = [np.linspace(a, b, k) for a, b, k in zip(lo, hi, self.shape)]
        mesh = np.meshgrid(*self.axes, indexing="ij")
        self.points = np.stack([m.ravel() for m in mesh], axis=1)
        self.mask = np.ones(self.points.shape[0], dtype=bool) if geometry is None else geometry.inside(self.points)

    def reshape(self, values, fill=np.nan):
        """values (M,) or (M, m) at ``points`` → array of ``shape`` (+ (m,)), ``fill`` outside the mask."""
        v = np.asarray(values, dtype=np.float64)
        M = self.points.shape[0]
        if v.ndim not in (1, 2) or v.shape[0] != M:
            raise ValueError(f"values must have shape ({M},) or ({M}, m) (one row per grid point), got {v.shape}")
        v = v.copy()
        v[~self.mask] = fill
        return v.reshape(self.shape + v.shape[1:])
