"""What every library problem shares (pinncore.problems gathers the library): checked point
arrays, the lazily imported Problem API, the decorator that registers a constructor in
``registry.problems`` beside its definition and records each problem's origin, the check of a
constructor's arguments, and the (t, x) point sets of the 1-D evolution problems.

>>> as_points([0.0, 0.5], 1).shape
(2, 1)
"""

from __future__ import annotations

import functools
import math

import numpy as np

from . import registry

__all__ = ["PI", "as_points", "lazy_api", "lazy_sin", "lazy_cos", "is_int", "with_origin", "library",
           "space_time_bounds", "space_time_points", "check_arguments"]

PI = math.pi


# ----------------------------------------------------------------------------- helpers

def as_points(points, d):
    """Return ``points`` as a float64 ``(M, d)`` array (a 1-D input is read as one column
    when ``d == 1``)."""
    p = np.asarray(points, dtype=np.float64)
    if p.ndim == 1 and d == 1:
        p = p[:, None]
    if p.ndim != 2 or p.shape[1] != d:
        raise ValueError(f"expected points of shape (M, {d}), got {p.shape}")
    return p


def lazy_api():
    """Import the Problem/Term classes (written elsewhere in the package) on demand."""
    from .problem import Problem, Term

    return Problem, Term


def lazy_sin():
    from .residual import sin

    return sin


def lazy_cos():
    from .residual import cos
    return cos


def is_int(v):
    return float(v).is_integer()

# ----------------------------------------------------------------------------- registration

def with_origin(name, ctor):
    """``ctor`` wrapped so that the Problem it builds remembers how: ``problem.origin =
    (name, kwargs)`` (the arguments given, by name). ``pc.sweep`` sends that pair to worker
    processes, which rebuild the problem there: residuals are Python functions (lambdas),
    which cannot be pickled."""
    import inspect

    signature = inspect.signature(ctor)

    @functools.wraps(ctor)
    def build(*args, **kwargs):
        given = dict(signature.bind(*args, **kwargs).arguments)
        check_arguments(name, signature, given)
        problem = ctor(*args, **kwargs)
        problem.origin = (name, given)
        return problem

    return build


def library(name, description, **kw):
    """Register a library constructor in ``registry.problems`` (beside its definition), wrapped
    so that the problems it builds record their origin; returns the wrapped constructor."""
    def deco(ctor):
        wrapped = with_origin(name, ctor)
        registry.problems.add(name, wrapped, description=description, **kw)
        return wrapped
    return deco


def space_time_bounds(**physics):
    """bounds= and help= of a (t, x) library problem: its physical parameters ``name=((lo, hi),
    help)``, then the PDE/IC/BC point counts and the sampling seed that all such problems take."""
    bounds = {k: b for k, (b, _) in physics.items()}
    bounds.update(n_collocation=(16, 4000), n_ic=(2, 1000), n_bc=(2, 1000), seed=(0, 2 ** 31 - 1))
    return {"bounds": bounds, "help": {**{k: h for k, (_, h) in physics.items()}, "seed": "point sampling seed"}}


def space_time_points(seed, t_max, x_lo, x_hi, n_pde, n_ic, n_bc):
    """Uniform (t, x) points of a 1-D evolution problem, drawn in a fixed order from
    ``default_rng(seed)``: interior, initial line t = 0, and the two walls (first half at
    x_lo, the rest at x_hi). Returns (pde, ic, bc) arrays with columns (t, x)."""
    rng = np.random.default_rng(seed)
    n_pde, n_ic, n_bc = int(n_pde), int(n_ic), int(n_bc)
    pde = np.column_stack([rng.uniform(0.0, t_max, n_pde), rng.uniform(x_lo, x_hi, n_pde)])
    ic = np.column_stack([np.zeros(n_ic), rng.uniform(x_lo, x_hi, n_ic)])
    bc = np.column_stack([rng.uniform(0.0, t_max, n_bc), np.where(np.arange(n_bc) < n_bc // 2, x_lo, x_hi)])
    return pde, ic, bc


# ----------------------------------------------------------------------------- origin

def check_arguments(name, signature, given):
    """Check each argument of a library factory against its default's kind, naming it: a number
    where the default is a number (finite), an integer count >= 1 for ``n_*`` and >= 0 for
    ``seed``, a bool where it is a bool, a string where it is a string. (``omega="x"`` used to
    fail inside ``float()`` with "could not convert string to float: 'x'", naming nothing.)

    >>> import inspect
    >>> from pinncore.problems import harmonic
    >>> try:
    ...     check_arguments("harmonic", inspect.signature(harmonic), {"omega": "x"})
    ... except TypeError as e:
    ...     print(e)
    harmonic(omega='x'): omega must be a real number (default 6.283185307179586)
    """
    for key, value in given.items():
        param = signature.parameters.get(key)
        default = None if param is None else param.default
        where = f"{name}({key}={value!r})"
        if isinstance(default, bool):
            if not isinstance(value, (bool, np.bool_)):
                raise TypeError(f"{where}: {key} must be True or False")
        elif isinstance(default, (int, float)):
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise TypeError(f"{where}: {key} must be a real number (default {default!r})")
            try:
                finite = math.isfinite(value)
            except OverflowError:   # an int beyond float range
                finite = False
            if not finite:
                raise ValueError(f"{where}: {key} must be finite")
            if key.startswith("n_") or key == "seed":
                lo = 0 if key == "seed" else 1
                if float(value) != int(value) or value < lo:
                    raise ValueError(f"{where}: {key} must be an integer >= {lo}")
        elif isinstance(default, str) and not isinstance(value, str):
            raise TypeError(f"{where}: {key} must be a string (default {default!r})")
