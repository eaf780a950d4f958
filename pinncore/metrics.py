"""A problem's metrics: predictions at any points and the error against the exact solution.

``predict`` evaluates the fields u (after the hard-constraint transform, if any) at physical
points; ``rel_l2`` is ‖u − u_exact‖₂ / ‖u_exact‖₂ on the problem's test points (an even grid
of at least 1000 points over the domain unless ``test_points=`` was given), or the absolute
RMS error ‖u − u_exact‖₂ / √(M·m) when the exact solution is identically zero there. The exact
values are computed once per problem.

>>> import pinncore as pc
>>> p = pc.problems.harmonic()
>>> predict(p, pc.MLP([1, 8, 1])).shape, exact_values(p).shape
((1000, 1), (1000, 1))
"""
from __future__ import annotations

import weakref

import numpy as np

__all__ = ["predict", "exact_values", "rel_l2"]

_EXACT = weakref.WeakKeyDictionary()   # problem -> exact(test_points)


def predict(problem, net, x=None, params=None):
    """The fields at x (M, d) (default: the test points) as (M, n_outputs) float64."""
    problem.check_net(net)
    x = problem.test_points if x is None else np.asarray(x)
    if x.dtype.kind not in "fiu" or x.ndim != 2:
        raise ValueError(f"x must be a real array of shape (M, {len(problem.inputs)}), got shape {x.shape}")
    x = np.array(x, dtype=np.float64)
    problem.check_points(x, "x")
    if problem.transform is None:
        return net(x * problem.scale + problem.shift, params=params).astype(np.float64)
    p = net.check_params(params)
    return problem.lowering.fields(net, p, x)


def exact_values(problem):
    """exact(test_points) as (M, n_outputs), computed once and checked."""
    if problem.exact is None:
        raise ValueError("this problem has no exact solution (pass exact= to Problem)")
    if problem not in _EXACT:
        raw = np.asarray(problem.exact(problem.test_points.copy()))
        if raw.dtype == object or raw.dtype.kind not in "fiub":
            raise ValueError(f"exact(x) must return real numbers, got an array of dtype {raw.dtype}")
        v = raw.astype(np.float64)
        M, m = problem.test_points.shape[0], len(problem.outputs)
        if v.shape == (M,) and m == 1:
            v = v[:, None]
        if v.shape != (M, m):
            raise ValueError(f"exact(x) returned shape {v.shape}, expected {(M, m)}")
        if not np.isfinite(v).all():
            raise ValueError("exact(x) returned NaN or infinite values at the test points")
        _EXACT[problem] = v
    return _EXACT[problem]


def rel_l2(problem, net, params=None):
    """‖u − u_exact‖₂ / ‖u_exact‖₂ on the test points; when the exact solution is identically
    zero there (a relative error is undefined: dividing by a floor gave 1e301), the absolute
    root-mean-square error ‖u‖₂ / √(M·m) instead, on the scale of a unit-size solution."""
    ref = exact_values(problem)
    u = predict(problem, net, params=params)
    err, norm = np.linalg.norm(u - ref), np.linalg.norm(ref)
    if norm == 0.0:
        return float(err / np.sqrt(ref.size))
    return float(err / norm)
