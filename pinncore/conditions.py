"""Boundary, initial, periodic and data conditions as ``pc.Term`` objects.

Each helper returns an ordinary ``pc.Term`` whose residual is written in the residual
language, so it is traced once and lowered to the same polynomial kernel tables as a PDE
residual (docs/design.md §3): no Python per step. Prescribed values ``g`` are given as

* a number,
* a residual-language expression of the coordinates, ``lambda x: pc.sin(np.pi * x.x)``
  (re-evaluated wherever the term is lowered, so resampling works), or
* an array of values, one per point (measured data; fixed to the term's points).

Neumann and Robin conditions take the outward normals from a geometry
(``geometry.normal(points)``, re-evaluated at new points) or an (N, d) array; the directional
derivative ∂u/∂n = Σ_i n_i(x) ∂u/∂x_i is a sum of first-order jet streams with per-point
coefficients n_i (``pinncore.residual.pointwise``).

Periodic conditions pair points on opposite faces: the residual of pair j is
r(x_j) − r(x'_j) for the value and the chosen first derivatives. The kernel evaluates every
point's residual on its own, so a paired term is evaluated by one forward and one backward
kernel call with the pairing done in NumPy between them (``Lowering.fallback``); its NTK
diagonal omits the cross term of the pair (see ``Lowering.ntk_point_norms``).

Example
-------
>>> import numpy as np, pinncore as pc
>>> import pinncore.geometry as geo
>>> from pinncore import conditions as bc
>>> sq = geo.Box([0, 0], [1, 1])
>>> xb = sq.sample_boundary(64, method="sobol", seed=0)
>>> problem = pc.Problem(["x", "y"], ["u"], domain=sq.domain(["x", "y"]), terms={
...     "pde": pc.Term(sq.sample_interior(128, seed=0), lambda x, u: u.xx + u.yy),
...     "bc": bc.dirichlet(xb, lambda x: x.x * x.y)})
>>> net = pc.MLP([2, 16, 1], seed=0)
>>> L = problem.losses(net)
>>> ref = np.mean((net(xb * problem.scale + problem.shift)[:, 0] - xb[:, 0] * xb[:, 1]) ** 2)
>>> bool(np.isclose(L["bc"], ref, rtol=1e-12))
True
"""
from __future__ import annotations

import numbers

import numpy as np

from .problem import Term
from .fields import coordinate_names, field_label
from .residual import Expr, pointwise

__all__ = ["dirichlet", "neumann", "robin", "initial", "periodic", "data", "PairedTerm"]


class _Values:
    """Per-point values tied to the points they were given for (measured data, normals arrays)."""

    def __init__(self, points, values, label):
        self.points, self.values, self.label = points, values, label

    def __call__(self, points):
        if points.shape != self.points.shape or not np.array_equal(points, self.points):
            raise ValueError(f"{self.label} was given as an array for {self.points.shape[0]} fixed points; the "
                             "term is being lowered at other points (resampled?): give it as an expression "
                             "of x or a geometry instead")
        return self.values


class _NormalComponent:
    """Component i of a geometry's outward normal at a term's points (columns ``cols``)."""

    def __init__(self, geometry, cols, i):
        self.geometry, self.cols, self.i = geometry, cols, i

    def __call__(self, points):
        return self.geometry.normal(points[:, self.cols])[:, self.i]


def _points(points, what="points"):
    if points is None or isinstance(points, (str, bytes)):
        raise TypeError(f"{what} must be an array of shape (N, d), got {type(points).__name__}")
    arr = np.asarray(points)
    if arr.dtype == object or arr.dtype.kind not in "fiu" or arr.ndim != 2:
        raise ValueError(f"{what} must be a real array of shape (N, d), got shape {np.shape(points)}")
    arr = np.array(arr, dtype=np.float64)
    arr.setflags(write=False)
    return arr


def _value(g, points, what):
    """g -> a callable x -> expression/number, tracing-time (number, callable or array)."""
    if isinstance(g, numbers.Real) and not isinstance(g, bool):
        c = float(g)
        return lambda x: c
    if isinstance(g, Expr):
        raise TypeError(f"{what} must be a function of x (lambda x: ...), not an expression")
    if callable(g):
        return g
    arr = np.asarray(g)
    if arr.dtype == object or arr.dtype.kind not in "fiu":
        raise TypeError(f"{what} must be a number, a function of x or an array of values, got {type(g).__name__}")
    arr = arr.astype(np.float64)
    if arr.shape == (points.shape[0], 1):
        arr = arr[:, 0]
    if arr.shape != (points.shape[0],):
        raise ValueError(f"{what} as an array must have one value per point, shape ({points.shape[0]},), "
                         f"got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} contains NaN or infinite values")
    node = pointwise(_Values(points, arr, what), what)
    return lambda x: node


def _field(fields, output, who):
    if isinstance(output, str):
        for f in fields:
            if field_label(f) == output:
                return f
        raise ValueError(f"{who}: output {output!r} is not one of {[field_label(f) for f in fields]}")
    if isinstance(output, bool) or not isinstance(output, numbers.Integral) or not 0 <= output < len(fields):
        raise ValueError(f"{who}: output must be an output name or an index in [0, {len(fields)}), got {output!r}")
    return fields[output]


def _input(x, name, who):
    """An input's index from its name or index."""
    inputs = list(coordinate_names(x))
    if isinstance(name, str):
        if name not in inputs:
            raise ValueError(f"{who}: {name!r} is not an input; inputs are {inputs}")
        return inputs.index(name)
    if isinstance(name, bool) or not isinstance(name, numbers.Integral) or not 0 <= name < len(inputs):
        raise ValueError(f"{who}: input must be a name or an index in [0, {len(inputs)}), got {name!r}")
    return int(name)


class _Dirichlet:
    def __init__(self, g, output):
        self.g, self.output = g, output

    def __call__(self, x, *fields):
        return _field(fields, self.output, "dirichlet") - self.g(x)


def dirichlet(points, value=0.0, output=0):
    """u = g on ``points``: residual u − g(x).

    ``value``: number, ``lambda x: <expression>`` or (N,) array; ``output``: name or index.

    >>> import pinncore as pc
    >>> from pinncore import conditions as bc
    >>> bc.dirichlet([[0.0], [1.0]], lambda x: pc.sin(x.t))
    Term(points=(2, 1))
    """
    pts = _points(points)
    return Term(pts, _Dirichlet(_value(value, pts, "value"), output))


class _Normals:
    """The normal components at a term's points, as per-point coefficient expressions."""

    def __init__(self, normals, points, inputs):
        from .geometry import Geometry
        self.inputs = inputs
        if isinstance(normals, Geometry):
            self.geometry, self.array = normals, None
        else:
            arr = np.asarray(normals)
            if arr.dtype == object or arr.dtype.kind not in "fiu" or arr.ndim != 2 or arr.shape[0] != points.shape[0]:
                raise ValueError(f"normals must be a geometry or an array of shape ({points.shape[0]}, d), "
                                 f"got shape {np.shape(normals)}")
            arr = arr.astype(np.float64)
            if not np.isfinite(arr).all():
                raise ValueError("normals contain NaN or infinite values")
            self.geometry, self.array, self.points = None, arr, points

    def derivative(self, x, u, who):
        """Σ_i n_i(x) ∂u/∂x_i over the geometry's inputs."""
        d = len(coordinate_names(x))
        cols = list(range(d)) if self.inputs is None else [_input(x, k, who) for k in self.inputs]
        k = self.geometry.dim if self.geometry is not None else self.array.shape[1]
        if len(cols) != k:
            raise ValueError(f"{who}: the normals have {k} components but the term's inputs are {list(coordinate_names(x))}; "
                             f"name the {k} inputs they belong to with inputs=[...]")
        total = 0.0
        for i, c in enumerate(cols):
            if self.geometry is not None:
                n_i = pointwise(_NormalComponent(self.geometry, cols, i), f"n_{coordinate_names(x)[c]}")
            else:
                n_i = pointwise(_Values(self.points, self.array[:, i], f"normals[:, {i}]"), f"n_{coordinate_names(x)[c]}")
            total = total + n_i * u.d(c)
        return total


class _Robin:
    def __init__(self, a, b, g, normals, output, who):
        self.a, self.b, self.g, self.normals, self.output, self.who = a, b, g, normals, output, who

    def __call__(self, x, *fields):
        u = _field(fields, self.output, self.who)
        du = self.normals.derivative(x, u, self.who)
        out = self.b(x) * du - self.g(x)
        return out if self.a is None else self.a(x) * u + out


def neumann(points, normals, value=0.0, output=0, inputs=None):
    """∂u/∂n = g on ``points``: residual Σ_i n_i(x) ∂u/∂x_i − g(x).

    ``normals``: a geometry (its ``normal`` at the points, re-evaluated after resampling) or an
    (N, k) array. ``inputs``: the k input names the geometry's coordinates are (default all
    inputs; e.g. ``["x", "y"]`` for a disk in (t, x, y)).

    >>> import pinncore.geometry as geo
    >>> from pinncore import conditions as bc
    >>> disk = geo.Disk([0, 0], 1)
    >>> bc.neumann(disk.sample_boundary(16, seed=0), disk, value=0.0)
    Term(points=(16, 2))
    """
    pts = _points(points)
    one = lambda x: 1.0   # noqa: E731 - the coefficient b of a pure Neumann condition
    return Term(pts, _Robin(None, one, _value(value, pts, "value"), _Normals(normals, pts, inputs), output,
                            "neumann"))


def robin(points, normals, a, b, value=0.0, output=0, inputs=None):
    """a u + b ∂u/∂n = g on ``points`` (a, b, g: numbers, functions of x or (N,) arrays).

    >>> import pinncore.geometry as geo
    >>> from pinncore import conditions as bc
    >>> sq = geo.Box([0, 0], [1, 1])
    >>> bc.robin(sq.sample_boundary(8, seed=0), sq, a=1.0, b=0.5, value=2.0)
    Term(points=(8, 2))
    """
    pts = _points(points)
    return Term(pts, _Robin(_value(a, pts, "a"), _value(b, pts, "b"), _value(value, pts, "value"),
                            _Normals(normals, pts, inputs), output, "robin"))


class _Initial:
    def __init__(self, g, h, time, output):
        self.g, self.h, self.time, self.output = g, h, time, output

    def __call__(self, x, *fields):
        u = _field(fields, self.output, "initial")
        comps = [u - self.g(x)]
        if self.h is not None:
            comps.append(u.d(_input(x, self.time, "initial")) - self.h(x))
        return comps


def initial(points, value, velocity=None, time="t", output=0):
    """u = g (and, with ``velocity``, ∂u/∂t = h) at the initial points.

    >>> import numpy as np, pinncore as pc
    >>> from pinncore import conditions as bc
    >>> x0 = np.column_stack([np.zeros(5), np.linspace(-1, 1, 5)])     # (t, x) at t = 0
    >>> bc.initial(x0, lambda x: -pc.sin(np.pi * x.x))
    Term(points=(5, 2))
    """
    pts = _points(points)
    h = None if velocity is None else _value(velocity, pts, "velocity")
    return Term(pts, _Initial(_value(value, pts, "value"), h, time, output))


class _Data:
    def __init__(self, nodes, outputs):
        self.nodes, self.outputs = nodes, outputs

    def __call__(self, x, *fields):
        return [_field(fields, o, "data") - node for o, node in zip(self.outputs, self.nodes)]


def data(x, u, outputs=None):
    """A data term from measured pairs (x, u): residuals u_net(x_i) − u_i, one component per output.

    ``u``: (N,) or (N, m) values; ``outputs``: the m output names/indices (default 0..m−1).

    >>> import numpy as np
    >>> from pinncore import conditions as bc
    >>> t = np.linspace(0, 1, 4)[:, None]
    >>> bc.data(t, np.cos(t))
    Term(points=(4, 1))
    """
    pts = _points(x, "x")
    vals = np.asarray(u)
    if vals.dtype == object or vals.dtype.kind not in "fiu":
        raise TypeError(f"u must be a real array, got dtype {vals.dtype}")
    vals = vals.astype(np.float64)
    if vals.ndim == 1:
        vals = vals[:, None]
    if vals.ndim != 2 or vals.shape[0] != pts.shape[0]:
        raise ValueError(f"u must have shape ({pts.shape[0]},) or ({pts.shape[0]}, m), got {np.shape(u)}")
    if not np.isfinite(vals).all():
        raise ValueError("u contains NaN or infinite values")
    outs = list(range(vals.shape[1])) if outputs is None else list([outputs] if isinstance(outputs, (str, int))
                                                                    else outputs)
    if len(outs) != vals.shape[1]:
        raise ValueError(f"outputs must name {vals.shape[1]} outputs (one per column of u), got {outs!r}")
    nodes = [pointwise(_Values(pts, vals[:, k].copy(), f"u[:, {k}]"), f"u_data{k}") for k in range(vals.shape[1])]
    return Term(pts, _Data(nodes, outs))


class PairedTerm(Term):
    """A term over point pairs: ``points`` stacks x_1..x_M then x'_1..x'_M, and its loss is
    Σ_c mean_j (r_c(x_j) − r_c(x'_j))². ``paired`` = M (the Problem reads it)."""

    def __init__(self, points_a, points_b, residual):
        a, b = _points(points_a, "points_a"), _points(points_b, "points_b")
        if a.shape != b.shape:
            raise ValueError(f"points_a and points_b must have the same shape (one pair per row), got "
                             f"{a.shape} and {b.shape}")
        if a.shape[0] == 0:
            raise ValueError("a paired term needs at least one pair of points")
        super().__init__(np.concatenate([a, b]), residual)
        self.paired = a.shape[0]

    def __repr__(self):
        return f"PairedTerm(pairs={self.paired}, d={self.points.shape[1]})"


class _Periodic:
    def __init__(self, derivatives, outputs):
        self.derivatives, self.outputs = derivatives, outputs

    def __call__(self, x, *fields):
        outs = range(len(fields)) if self.outputs is None else self.outputs
        comps = []
        for o in outs:
            u = _field(fields, o, "periodic")
            comps.append(u)
            comps += [u.d(_input(x, k, "periodic")) for k in self.derivatives]
        return comps


def periodic(points_a, points_b, derivatives=(), outputs=None):
    """u(x_j) = u(x'_j) (and the listed first derivatives) for point pairs on opposite faces.

    ``derivatives``: input names/indices whose first derivative must match too (e.g. ``["x"]``
    for a period in x); ``outputs``: which outputs (default all). Pairs come e.g. from
    ``Box.sample_face(n, axis, "lo")`` / ``(n, axis, "hi")`` with the same seed.

    >>> import pinncore.geometry as geo
    >>> from pinncore import conditions as bc
    >>> box = geo.Box([0, -1], [1, 1])                     # (t, x), period 2 in x
    >>> lo, hi = box.sample_face(32, 1, "lo", seed=0), box.sample_face(32, 1, "hi", seed=0)
    >>> bc.periodic(lo, hi, derivatives=["x"])
    PairedTerm(pairs=32, d=2)
    """
    if isinstance(derivatives, (str, int)):
        derivatives = [derivatives]
    outs = None if outputs is None else list([outputs] if isinstance(outputs, (str, int)) else outputs)
    return PairedTerm(points_a, points_b, _Periodic(list(derivatives), outs))
