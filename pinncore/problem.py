"""PINN problems: named loss terms over point sets, lowered once, evaluated by the kernel.

A ``Problem`` owns the inputs/outputs, the domain (which fixes the input scaling to
[-1, 1]), the named ``Term``s and, optionally, the exact solution and a hard-constraint
``transform``. At construction every residual is traced once (``pinncore.residual``) into a
polynomial table over the *network's* output jets — the transform is substituted in, so the
kernel never sees it — and from then on each evaluation is one call into the kernel with no
Python work per point (docs/design.md §3). Residuals that are not polynomial in the jets (e.g.
``pc.sin(u)``) fall back to a NumPy evaluation of the residual between the kernel's forward
and backward sweeps, with exact derivatives.

Losses are L_a = Σ_components mean_points(w_i r_i²) (w = 1 unless a weighting scheme sets
per-point weights), gradients are ∇θ L_a, NTK traces are tr K_a = Σ_{c,i} ‖∂r_c,i/∂θ‖².

Example
-------
>>> import numpy as np, pinncore as pc
>>> w = 2 * np.pi
>>> problem = pc.Problem(
...     inputs=["t"], outputs=["u"], domain={"t": (0.0, 1.0)},
...     terms={"pde": pc.Term(points=np.linspace(0, 1, 50)[:, None], residual=lambda x, u: u.tt + w**2 * u),
...            "ic": pc.Term(points=[[0.0]], residual=lambda x, u: [u - 1.0, u.t])},
...     exact=lambda x: np.cos(w * x[:, :1]))
>>> net = pc.MLP([1, 20, 20, 1], seed=0)
>>> sorted(problem.losses(net))
['ic', 'pde']
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from . import residual as _residual
from .network import TermData, stream_plan

__all__ = ["Term", "Problem"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RESERVED = {"total", "step", "time", "wall_time", "rel_l2"}


class Term:
    """One loss term: a residual function evaluated on a set of points.

    points : array-like (N, d) of physical coordinates (columns in the order of the
        problem's ``inputs``).
    residual : callable ``residual(x, u, ...)`` returning an expression of the fields or a
        list of them (components); traced once when the Problem is built.

    >>> import pinncore as pc
    >>> t = pc.Term(points=[[0.0]], residual=lambda x, u: u - 1.0)
    >>> t.points.shape
    (1, 1)
    """

    def __init__(self, points, residual):
        if not callable(residual):
            raise TypeError(f"residual must be a callable residual(x, u, ...), got {type(residual).__name__}")
        if points is None or isinstance(points, (str, bytes)):
            raise TypeError(f"points must be an array of shape (N, d), got {type(points).__name__}")
        arr = np.asarray(points)
        if arr.dtype == object or arr.dtype.kind not in "fiu":
            raise TypeError(f"points must be a real numeric array, got dtype {arr.dtype}")
        if arr.ndim == 1:
            raise ValueError(f"points must be 2-D (N, d), got shape {arr.shape}; use x[:, None] for one input")
        if arr.ndim != 2:
            raise ValueError(f"points must be 2-D (N, d), got shape {arr.shape}")
        arr = np.array(arr, dtype=np.float64, order="C", copy=True)
        if not np.isfinite(arr).all():
            raise ValueError("points contain NaN or infinite values")
        arr.setflags(write=False)
        self.points = arr
        self.residual = residual

    def __repr__(self):
        return f"Term(points={self.points.shape})"


@dataclass
class _Lowered:
    """A term after tracing: the residual table and how its variables map to kernel streams."""

    name: str
    table: object             # residual.Table
    first: list
    pairs: list
    var_stream: list          # stream index of each table variable
    var_out: list             # network output of each table variable
    n: int


def _default_grid(domain, inputs, min_points=1000):
    d = len(inputs)
    k = int(math.ceil(min_points ** (1.0 / d)))
    if k ** d < min_points:
        k += 1
    axes = [np.linspace(*domain[name], k) for name in inputs]
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1)


class Problem:
    """A PINN problem (docs/design.md §4).

    Parameters
    ----------
    inputs, outputs : lists of names (``["t", "x"]``, ``["u"]``).
    terms : dict name -> Term (or a list of (name, Term) pairs; duplicate names are an error).
    domain : dict input name -> (lo, hi). Inputs are scaled to [-1, 1] before the network:
        x̂ = 2 (x − lo)/(hi − lo) − 1; residuals see derivatives w.r.t. the physical x.
    exact : optional callable (M, d) -> (M, n_outputs) (or (M,) for one output).
    test_points : optional (M, d) points for ``rel_l2`` (default: an even grid, ≥ 1000 points).
    transform : optional hard constraint ``transform(x, n, ...) -> u`` (one expression per
        output), e.g. ``lambda x, n: 1.0 + x.t**2 * n``.

    >>> import numpy as np, pinncore as pc
    >>> p = pc.problems.harmonic()
    >>> p.term_names
    ['pde', 'ic']
    """

    def __init__(self, inputs, outputs, terms, domain, exact=None, test_points=None, transform=None):
        self.inputs = self._names(inputs, "inputs")
        self.outputs = self._names(outputs, "outputs")
        if not 1 <= len(self.inputs) <= 4:
            raise ValueError(f"inputs must name 1 to 4 inputs, got {len(self.inputs)}")
        self.domain = self._domain(domain)
        d = len(self.inputs)
        lo = np.array([self.domain[k][0] for k in self.inputs])
        hi = np.array([self.domain[k][1] for k in self.inputs])
        with np.errstate(all="ignore"):
            self.scale = 2.0 / (hi - lo)
            self.shift = -2.0 * lo / (hi - lo) - 1.0
        if not (np.isfinite(self.scale).all() and np.isfinite(self.shift).all() and (self.scale > 0).all()):
            raise ValueError(f"domain {self.domain}: an interval is too narrow or too wide to scale to [-1, 1] "
                             "in float64")
        if transform is not None and not callable(transform):
            raise TypeError(f"transform must be callable transform(x, n, ...), got {type(transform).__name__}")
        self.transform = transform
        items = list(terms.items()) if isinstance(terms, dict) else list(terms) if terms is not None else []
        if not items:
            raise ValueError("terms must name at least one Term, e.g. {'pde': pc.Term(points, residual)}")
        self.terms = {}
        for item in items:
            if not (isinstance(item, tuple) and len(item) == 2):
                raise TypeError("terms must be a dict name -> Term or a list of (name, Term) pairs")
            name, term = item
            if not isinstance(name, str) or not _NAME.match(name):
                raise ValueError(f"term name {name!r} must be an identifier (letters, digits, underscore)")
            if name in _RESERVED:
                raise ValueError(f"term name {name!r} is reserved (clashes with {sorted(_RESERVED)})")
            if name in self.terms:
                raise ValueError(f"term name clash: {name!r} is given twice")
            if not isinstance(term, Term):
                raise TypeError(f"terms[{name!r}] must be a pc.Term, got {type(term).__name__}")
            self._check_points(term.points, f"terms[{name!r}].points")
            self.terms[name] = term
        self.term_names = list(self.terms)
        self._lowered = [self._lower(name, t.points, t.residual) for name, t in self.terms.items()]
        self._cache = {}
        self._predict_cache = {}
        # Prediction: the fields themselves (through the transform), on demand at any points.
        if test_points is None:
            tp = _default_grid(self.domain, self.inputs)
        else:
            tp = np.asarray(test_points)
            if tp.dtype.kind not in "fiu" or tp.ndim != 2:
                raise ValueError(f"test_points must be a real array of shape (M, {d}), got {tp.shape}")
            tp = np.array(tp, dtype=np.float64)
            if tp.shape[0] == 0:
                raise ValueError("test_points must contain at least one point")
            self._check_points(tp, "test_points")
        self.test_points = tp
        if exact is not None and not callable(exact):
            raise TypeError("exact must be a callable exact(x) -> (M, n_outputs)")
        self.exact = exact
        self._exact_values = None

    # -- construction helpers -----------------------------------------------------------
    @staticmethod
    def _names(names, what):
        if isinstance(names, str):
            names = [names]
        if names is None or not hasattr(names, "__iter__"):
            raise TypeError(f"{what} must be a list of names, got {names!r}")
        names = list(names)
        if not names:
            raise ValueError(f"{what} must not be empty")
        for n in names:
            if not isinstance(n, str) or not _NAME.match(n):
                raise ValueError(f"{what}: {n!r} is not a valid name (an identifier like 't' or 'x1')")
        if len(set(names)) != len(names):
            raise ValueError(f"{what} contains a repeated name: {names}")
        return names

    def _domain(self, domain):
        if not isinstance(domain, dict):
            raise TypeError("domain must be a dict input name -> (lo, hi)")
        unknown = set(domain) - set(self.inputs)
        if unknown:
            raise ValueError(f"domain names unknown inputs {sorted(unknown)}; inputs are {self.inputs}")
        out = {}
        for k in self.inputs:
            if k not in domain:
                raise ValueError(f"domain is missing input {k!r}")
            try:
                lo, hi = (float(v) for v in domain[k])
            except (TypeError, ValueError) as e:
                raise ValueError(f"domain[{k!r}] must be a pair (lo, hi) of numbers, got {domain[k]!r}") from e
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise ValueError(f"domain[{k!r}] must satisfy finite lo < hi, got ({lo}, {hi})")
            out[k] = (lo, hi)
        return out

    def _check_points(self, pts, what):
        d = len(self.inputs)
        if pts.shape[1] != d:
            raise ValueError(f"{what} has {pts.shape[1]} columns, expected {d} (inputs {self.inputs})")
        if not np.isfinite(pts).all():
            raise ValueError(f"{what} contain NaN or infinite values")
        for j, k in enumerate(self.inputs):
            lo, hi = self.domain[k]
            tol = 1e-12 * (hi - lo)
            col = pts[:, j]
            if col.size and (col.min() < lo - tol or col.max() > hi + tol):
                raise ValueError(f"{what}: input {k!r} has values in [{col.min():g}, {col.max():g}], "
                                 f"outside the domain [{lo:g}, {hi:g}]")

    def _lower(self, name, points, fn):
        table = _residual.trace(fn, self.inputs, self.outputs, points, transform=self.transform, name=name)
        derivs = sorted({v[1] for v in table.vars}, key=lambda m: (len(m), m))
        first, pairs, index = stream_plan(derivs)
        return _Lowered(name=name, table=table, first=first, pairs=pairs,
                        var_stream=[index[v[1]] for v in table.vars], var_out=[v[0] for v in table.vars],
                        n=points.shape[0])

    def _termdata(self, lw, points, dtype):
        tb = lw.table
        kw = {"components": tb.n_components}
        if tb.polynomial:
            comp, off, fs, fo, coef = [], [0], [], [], []
            for c, factors, cf in tb.monomials:
                comp.append(c)
                fs += [lw.var_stream[v] for v in factors]
                fo += [lw.var_out[v] for v in factors]
                off.append(len(fs))
                coef.append(np.broadcast_to(np.asarray(cf, dtype=np.float64), (lw.n,)))
            kw.update(comp=np.asarray(comp, np.int32), fac_off=np.asarray(off, np.int32),
                      fac_stream=np.asarray(fs, np.int32), fac_out=np.asarray(fo, np.int32),
                      coef=np.asarray(coef, dtype=np.float64).reshape(len(comp), lw.n))
        return TermData.build(points, self.scale, self.shift, lw.first, lw.pairs, dtype, **kw)

    def _data(self, dtype):
        key = np.dtype(dtype).char
        if key not in self._cache:
            self._cache[key] = [self._termdata(lw, self.terms[lw.name].points, dtype) for lw in self._lowered]
        return self._cache[key]

    def check_net(self, net):
        from .network import MLP
        if not isinstance(net, MLP):
            raise TypeError(f"net must be a pc.MLP, got {type(net).__name__}")
        if net.n_inputs != len(self.inputs) or net.n_outputs != len(self.outputs):
            raise ValueError(f"net has {net.n_inputs} inputs and {net.n_outputs} outputs; the problem needs "
                             f"{len(self.inputs)} inputs {self.inputs} and {len(self.outputs)} outputs {self.outputs}")

    # -- evaluation -----------------------------------------------------------------------
    def value_and_grad(self, net, params=None, point_weights=None, residuals=False):
        """All per-term losses and gradients of one parameter vector in one kernel pass.

        Returns ``(losses, grads, res)``: losses (T,) float64 in ``term_names`` order, grads
        (T, n_params) in the network's dtype (∇θ L_a, unweighted), and — if ``residuals`` —
        a list of (C_a, N_a) residual arrays (else None). ``point_weights``: optional list
        (one entry per term, None or an (N_a,) array) of per-point loss weights w_i.
        This is what the trainer calls every step.

        >>> import pinncore as pc
        >>> p = pc.problems.harmonic(); net = pc.MLP([1, 10, 1])
        >>> L, G, _ = p.value_and_grad(net)
        >>> L.shape, G.shape
        ((2,), (2, 31))
        """
        self.check_net(net)
        p = net.check_params(params) if params is not None else net.params
        data = self._data(net.dtype)
        T = len(data)
        if point_weights is None:
            point_weights = [None] * T
        else:
            point_weights = self.check_point_weights(point_weights, net.dtype)
        be = net.backend
        poly = [a for a in range(T) if self._lowered[a].table.polynomial]
        losses = np.zeros(T)
        grads = np.empty((T, net.n_params), dtype=net.dtype)
        res = [None] * T
        if poly:
            L, G, R = be.losses_grads(p, [data[a] for a in poly], [point_weights[a] for a in poly], residuals)
            losses[poly] = L
            grads[poly] = G
            if residuals:
                for k, a in enumerate(poly):
                    res[a] = R[k]
        for a in range(T):
            if a not in poly:
                losses[a], grads[a], res[a] = self._fallback(be, p, a, data[a], point_weights[a], net)
        return losses, grads, (res if residuals else None)

    def check_point_weights(self, point_weights, dtype=np.float64):
        """Per-point loss weights, one entry per term (None or an (N_a,) finite array), as
        C-contiguous arrays of ``dtype``; a clear error naming the entry otherwise."""
        data = self._data(dtype)
        if isinstance(point_weights, np.ndarray) or not hasattr(point_weights, "__len__"):
            raise TypeError("point_weights must be a list with one entry (None or an (N_a,) array) per term")
        if len(point_weights) != len(data):
            raise ValueError(f"point_weights must have {len(data)} entries (one per term), got {len(point_weights)}")
        out = []
        for a, w in enumerate(point_weights):
            if w is None:
                out.append(None)
                continue
            arr = np.asarray(w)
            n = data[a].xhat.shape[0]
            name = f"point_weights[{a}] (term {self.term_names[a]!r})"
            if arr.dtype.kind not in "fiu":
                raise TypeError(f"{name} must be a real array, got dtype {arr.dtype}")
            if arr.shape != (n,):
                raise ValueError(f"{name} must have shape ({n},), got {arr.shape}")
            if not np.isfinite(arr).all():
                raise ValueError(f"{name} contains NaN or infinite values")
            out.append(np.ascontiguousarray(arr, dtype=dtype))
        return out

    def step_function(self, net):
        """``f(point_weights, residuals) -> (losses, grads, res)`` at ``net.params`` (which the
        optimizer updates in place): the trainer's per-step call, with the Python work hoisted
        out — one call into the kernel when every term is polynomial."""
        self.check_net(net)
        data = self._data(net.dtype)
        if all(lw.table.polynomial for lw in self._lowered):
            return net.backend.step_function(net.params, data)
        return lambda point_weights, residuals: self.value_and_grad(net, None, point_weights, residuals)

    @staticmethod
    def _table_jets(lw, be, p, td):
        """Kernel forward at a term's points: the output jets J (S, N, m) and the values of the
        table's variables Jv (V, N) in float64, for ``Table.evaluate``."""
        J = be.jets(p, td)
        Jv = np.stack([J[s, :, o] for s, o in zip(lw.var_stream, lw.var_out)]).astype(np.float64) \
            if lw.var_stream else np.zeros((0, lw.n))
        return J, Jv

    def _fallback(self, be, p, a, td, w, net):
        """Non-polynomial residual: kernel forward, NumPy residual with exact ∂r/∂J, kernel backward."""
        lw = self._lowered[a]
        J, Jv = self._table_jets(lw, be, p, td)
        r, dr = lw.table.evaluate(Jv)
        n = max(lw.n, 1)
        wv = np.ones(lw.n) if w is None else np.asarray(w, dtype=np.float64)
        loss = float((wv * r ** 2).sum() / n)
        seed = 2.0 * wv * r / n                          # ∂L/∂r, (C, N)
        adj = np.zeros(J.shape, dtype=np.float64)
        for v, (s, o) in enumerate(zip(lw.var_stream, lw.var_out)):
            adj[s, :, o] += (seed * dr[:, v, :]).sum(axis=0)
        g, _ = be.vjp(p, td, np.ascontiguousarray(adj, dtype=net.dtype), False)
        return loss, g, r.astype(net.dtype)

    def losses(self, net, params=None):
        """Unweighted per-term losses {name: L_a}.

        >>> import pinncore as pc
        >>> L = pc.problems.harmonic().losses(pc.MLP([1, 10, 1]))
        >>> sorted(L)
        ['ic', 'pde']
        """
        L, _, _ = self.value_and_grad(net, params)
        return dict(zip(self.term_names, (float(v) for v in L)))

    def gradients(self, net, params=None):
        """Per-term parameter gradients {name: ∇θ L_a} (flat, shaped like ``net.params``).

        >>> import pinncore as pc
        >>> net = pc.MLP([1, 10, 1]); g = pc.problems.harmonic().gradients(net)
        >>> g["pde"].shape == net.params.shape
        True
        """
        _, G, _ = self.value_and_grad(net, params)
        return {k: G[a].copy() for a, k in enumerate(self.term_names)}

    def residuals(self, net, params=None):
        """Per-term residual values {name: (C_a, N_a) array}.

        >>> import pinncore as pc
        >>> pc.problems.harmonic().residuals(pc.MLP([1, 10, 1]))["ic"].shape
        (2, 1)
        """
        _, _, R = self.value_and_grad(net, params, residuals=True)
        return dict(zip(self.term_names, R))

    def ntk_point_norms(self, net, params=None):
        """Per-term, per-point Σ_c ‖∂r_c,i/∂θ‖² (the NTK diagonal), via the Gram identity.

        >>> import pinncore as pc
        >>> pc.problems.harmonic().ntk_point_norms(pc.MLP([1, 10, 1]))["pde"].shape
        (50,)
        """
        self.check_net(net)
        p = net.check_params(params) if params is not None else net.params
        data = self._data(net.dtype)
        be = net.backend
        poly = [a for a in range(len(data)) if self._lowered[a].table.polynomial]
        out = [None] * len(data)
        if poly:
            for a, nrm in zip(poly, be.ntk_norms(p, [data[a] for a in poly])):
                out[a] = nrm
        for a in range(len(data)):
            if a in poly:
                continue
            lw = self._lowered[a]
            J, Jv = self._table_jets(lw, be, p, data[a])
            _, dr = lw.table.evaluate(Jv)
            total = np.zeros(lw.n, dtype=net.dtype)
            for c in range(lw.table.n_components):
                adj = np.zeros(J.shape, dtype=np.float64)
                for v, (s, o) in enumerate(zip(lw.var_stream, lw.var_out)):
                    adj[s, :, o] += dr[c, v, :]
                total += be.vjp(p, data[a], np.ascontiguousarray(adj, dtype=net.dtype), True)[1]
            out[a] = total
        return dict(zip(self.term_names, out))

    def ntk_traces(self, net, params=None):
        """Per-term NTK traces {name: tr K_a = Σ_{c,i} ‖∂r_c,i/∂θ‖²} (Wang, Yu & Perdikaris 2022).

        >>> import pinncore as pc
        >>> tr = pc.problems.harmonic().ntk_traces(pc.MLP([1, 10, 1]))
        >>> tr["pde"] > tr["ic"] > 0
        True
        """
        return {k: float(np.sum(v, dtype=np.float64)) for k, v in self.ntk_point_norms(net, params).items()}

    @property
    def n_points(self):
        """{name: number of points} of each term."""
        return {lw.name: lw.n for lw in self._lowered}

    @property
    def n_components(self):
        """{name: number of residual components} of each term."""
        return {lw.name: lw.table.n_components for lw in self._lowered}

    def predict(self, net, x=None, params=None):
        """The fields u (after the transform, if any) at x (M, d); default the test points.

        >>> import pinncore as pc
        >>> pc.problems.harmonic().predict(pc.MLP([1, 10, 1])).shape
        (1000, 1)
        """
        self.check_net(net)
        if x is None:
            x = self.test_points
        x = np.asarray(x)
        if x.dtype.kind not in "fiu" or x.ndim != 2:
            raise ValueError(f"x must be a real array of shape (M, {len(self.inputs)}), got shape {x.shape}")
        x = np.array(x, dtype=np.float64)
        self._check_points(x, "x")
        if self.transform is None:
            return net(x * self.scale + self.shift, params=params).astype(np.float64)
        # The transform is lowered once per point set (a small LRU: test points, plot grids).
        key = (x.shape, x.tobytes())
        if key not in self._predict_cache:
            lw = self._lower("predict", x, lambda xx, *u: list(u))
            if len(self._predict_cache) >= 8:
                self._predict_cache.pop(next(iter(self._predict_cache)))
            self._predict_cache[key] = (lw, {})
        lw, by_dtype = self._predict_cache[key]
        if net.dtype.char not in by_dtype:
            by_dtype[net.dtype.char] = self._termdata(lw, x, net.dtype)
        p = net.check_params(params) if params is not None else net.params
        _, Jv = self._table_jets(lw, net.backend, p, by_dtype[net.dtype.char])
        r, _ = lw.table.evaluate(Jv)
        return r.T.copy()

    def exact_values(self):
        """exact(test_points) as (M, n_outputs), computed once."""
        if self.exact is None:
            raise ValueError("this problem has no exact solution (pass exact= to Problem)")
        if self._exact_values is None:
            raw = np.asarray(self.exact(self.test_points.copy()))
            if raw.dtype == object or raw.dtype.kind not in "fiub":
                raise ValueError(f"exact(x) must return real numbers, got an array of dtype {raw.dtype}")
            v = raw.astype(np.float64)
            M, m = self.test_points.shape[0], len(self.outputs)
            if v.shape == (M,) and m == 1:
                v = v[:, None]
            if v.shape != (M, m):
                raise ValueError(f"exact(x) returned shape {v.shape}, expected {(M, m)}")
            if not np.isfinite(v).all():
                raise ValueError("exact(x) returned NaN or infinite values at the test points")
            self._exact_values = v
        return self._exact_values

    def rel_l2(self, net, params=None):
        """Relative L2 error ‖u − u_exact‖ / ‖u_exact‖ on the test points.

        >>> import pinncore as pc
        >>> 0.5 < pc.problems.harmonic().rel_l2(pc.MLP([1, 10, 1], seed=0)) < 10
        True
        """
        ref = self.exact_values()
        u = self.predict(net, params=params)
        return float(np.linalg.norm(u - ref) / max(np.linalg.norm(ref), 1e-300))

    def __repr__(self):
        terms = ", ".join(f"{k}: {lw.n} pts" for k, lw in zip(self.term_names, self._lowered))
        return f"Problem(inputs={self.inputs}, outputs={self.outputs}, terms={{{terms}}})"
