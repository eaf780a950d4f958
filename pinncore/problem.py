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

import copy
import math
import re

import numpy as np

from . import metrics as _metrics
from .lowering import Lowering

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

    paired = 0   # > 0: the first ``paired`` points are matched with the next ones (conditions.PairedTerm)

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
        if arr.shape[0] == 0:
            raise ValueError("points must contain at least one point (an empty term has no loss to train)")
        arr = np.array(arr, dtype=np.float64, order="C", copy=True)
        if not np.isfinite(arr).all():
            raise ValueError("points contain NaN or infinite values")
        arr.setflags(write=False)
        self.points = arr
        self.residual = residual

    def __repr__(self):
        return f"Term(points={self.points.shape})"


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

    # Set by their makers, read by other modules: ``origin`` = (library name or factory path,
    # kwargs) when a library factory built the problem (pc.sweep rebuilds it in its workers);
    # ``geometry`` = the domain's pinncore.geometry shape when it is not a box (the web page
    # blanks grid points outside it).
    origin = None
    geometry = None

    def __init__(self, inputs, outputs, terms, domain, exact=None, test_points=None, transform=None, unknowns=()):
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
            self.check_points(term.points, f"terms[{name!r}].points")
            self.terms[name] = term
        self.term_names = list(self.terms)
        self.lowering = Lowering(self.inputs, self.outputs, self.scale, self.shift, transform,
                                 [(name, t.points, t.residual, t.paired)
                                  for name, t in self.terms.items()], self._declared(unknowns))
        # Unknown coefficients (pc.Unknown) found in the residuals: trained after the network's
        # parameters (pinncore.unknown); their names key result.unknowns and history columns.
        self.unknowns = self.lowering.unknowns
        for name in self.unknowns.names:
            if name in self.terms or name in self.outputs or name in self.inputs:
                what = "term" if name in self.terms else "output" if name in self.outputs else "input"
                raise ValueError(f"unknown {name!r} has the name of a {what}; give it another name")
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
            self.check_points(tp, "test_points")
        self.test_points = tp
        if exact is not None and not callable(exact):
            raise TypeError("exact must be a callable exact(x) -> (M, n_outputs)")
        self.exact = exact

    # -- construction helpers -----------------------------------------------------------
    @staticmethod
    def _declared(unknowns):
        from .unknown import Unknown
        items = [unknowns] if isinstance(unknowns, Unknown) else list(unknowns or ())
        for u in items:
            if not isinstance(u, Unknown):
                raise TypeError(f"unknowns must be pc.Unknown objects, got {type(u).__name__}")
        return items

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

    def check_points(self, pts, what):
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
        return self.lowering.value_and_grad(net, p, point_weights, residuals)

    def check_point_weights(self, point_weights, dtype=np.float64):
        """Per-point loss weights, one entry per term (None or an (N_a,) finite array), as
        C-contiguous arrays of ``dtype``; a clear error naming the entry otherwise."""
        return self.lowering.check_point_weights(point_weights, dtype)

    def step_function(self, net):
        """``f(point_weights, residuals) -> (losses, grads, res)`` at ``net.params`` (which the
        optimizer updates in place): the trainer's per-step call, with the Python work hoisted
        out — one call into the kernel when every term is polynomial."""
        self.check_net(net)
        return self.lowering.step_function(net)

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
        return dict(zip(self.term_names, self.lowering.ntk_point_norms(net, p)))

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
        return {lt.name: lt.n_loss for lt in self.lowering.terms}

    @property
    def n_components(self):
        """{name: number of residual components} of each term."""
        return {lt.name: lt.table.n_components for lt in self.lowering.terms}

    # -- metrics (pinncore.metrics) --------------------------------------------------------
    def predict(self, net, x=None, params=None):
        """The fields u (after the transform, if any) at x (M, d); default the test points.

        >>> import pinncore as pc
        >>> pc.problems.harmonic().predict(pc.MLP([1, 10, 1])).shape
        (1000, 1)
        """
        return _metrics.predict(self, net, x, params)

    def exact_values(self):
        """exact(test_points) as (M, n_outputs), computed once."""
        return _metrics.exact_values(self)

    def rel_l2(self, net, params=None):
        """Relative L2 error ‖u − u_exact‖ / ‖u_exact‖ on the test points (the absolute RMS
        error when ``exact`` is identically zero there: see ``pinncore.metrics``).

        >>> import pinncore as pc
        >>> 0.5 < pc.problems.harmonic().rel_l2(pc.MLP([1, 10, 1], seed=0)) < 10
        True
        """
        return _metrics.rel_l2(self, net, params)

    def with_points(self, term, points):
        """A copy of the problem whose term ``term`` has new ``points`` (re-traced; the other
        terms' lowering is shared).

        >>> import numpy as np, pinncore as pc
        >>> p = pc.problems.harmonic().with_points("pde", np.linspace(0, 1, 20)[:, None])
        >>> p.n_points["pde"]
        20
        """
        if term not in self.terms:
            raise ValueError(f"unknown term {term!r}; terms are {self.term_names}")
        old = self.terms[term]
        new = Term(points, old.residual)
        self.check_points(new.points, f"terms[{term!r}].points")
        paired = old.paired
        if paired:   # a paired (periodic) term: ``points`` stacks both halves
            if new.points.shape[0] % 2:
                raise ValueError(f"term {term!r} is paired: points must stack two halves of equal length, "
                                 f"got {new.points.shape[0]} rows")
            pts, paired = new.points, new.points.shape[0] // 2
            new = copy.copy(old)
            new.points, new.paired = pts, paired
        other = copy.copy(self)
        other.terms = dict(self.terms)
        other.terms[term] = new
        other.lowering = self.lowering.replaced(term, new.points, new.residual, paired)
        return other

    def with_unknowns(self, values):
        """A copy of the problem with its unknowns at ``values`` (U,) (or a dict name -> value;
        missing ones at their inits): losses, gradients and Jacobians then use them.

        >>> import numpy as np, pinncore as pc
        >>> c = pc.Unknown("c", 0.5)
        >>> p = pc.Problem(["t"], ["u"], {"pde": pc.Term(np.zeros((1, 1)), lambda x, u: u - c)}, {"t": (0, 1)})
        >>> net = pc.MLP([1, 4, 1])
        >>> round(float(p.with_unknowns([2.0]).residuals(net)["pde"][0, 0] - p.residuals(net)["pde"][0, 0]), 12)
        -1.5
        """
        names = self.unknowns.names
        if isinstance(values, dict):
            extra = sorted(set(values) - set(names))
            if extra:
                raise ValueError(f"values name unknowns {extra} the problem does not have; its unknowns are {names}")
            values = [values.get(k, u.init) for k, u in zip(names, self.unknowns)]
        v = np.asarray(values, dtype=np.float64)
        if v.shape != (len(names),) or not np.isfinite(v).all():
            raise ValueError(f"values must be {len(names)} finite numbers (unknowns {names}), got {values!r}")
        bad = [k for k, u, x in zip(names, self.unknowns, v) if u.positive and x <= 0]
        if bad:
            raise ValueError(f"unknown {bad[0]!r} is positive; got the value {v[names.index(bad[0])]!r}")
        other = copy.copy(self)
        other.lowering = self.lowering.bind(v)
        return other

    def residual_at(self, net, term, points, params=None):
        """Residuals (C, N) of term ``term``'s residual at any ``points``: one kernel forward
        pass, no gradient (adaptive resampling scores candidate points with it).

        >>> import numpy as np, pinncore as pc
        >>> p, net = pc.problems.harmonic(), pc.MLP([1, 8, 1])
        >>> bool(np.allclose(p.residual_at(net, "pde", p.terms["pde"].points), p.residuals(net)["pde"]))
        True
        """
        self.check_net(net)
        if term not in self.terms:
            raise ValueError(f"unknown term {term!r}; terms are {self.term_names}")
        fn = self.terms[term].residual
        pts = Term(points, fn).points
        self.check_points(pts, "points")
        low = self.lowering
        lt = low.lower(term, pts, fn)
        p = net.check_params(params) if params is not None else net.params
        _, Jv = low.table_jets(lt, net.backend, p, low.termdata(lt, pts, net.dtype))
        return low.evaluate_table(lt, Jv)[0]

    def __repr__(self):
        terms = ", ".join(f"{k}: {lt.n} pts" for k, lt in zip(self.term_names, self.lowering.terms))
        return f"Problem(inputs={self.inputs}, outputs={self.outputs}, terms={{{terms}}})"

    # -- residual Jacobian (pinncore/jacobian.py) ----------------------------------------
    def residual_jacobian(self, net, weights=None, params=None, point_weights=None):
        """``(r, J)``: the stacked weighted residuals r = [√(λ_a w_i / N_a) r_a,c,i] (terms,
        then components, then points), so ‖r‖² = Σ_a λ_a L_a, and J = ∂r/∂θ (rows, n_params).

        weights: λ per term (dict name -> λ, missing = 1; a sequence; None = all 1).
        See ``pinncore.jacobian`` for the Gram and matrix-free forms.

        >>> import pinncore as pc
        >>> r, J = pc.problems.harmonic().residual_jacobian(pc.MLP([1, 10, 1]), weights={"ic": 100.0})
        >>> r.shape, J.shape
        ((52,), (52, 31))
        """
        from .jacobian import ResidualJacobian
        return ResidualJacobian(self, net, weights, point_weights).linearize(params).dense()

    def gauss_newton(self, net, weights=None, params=None, point_weights=None, kind="JtJ"):
        """Gram products of the residual Jacobian in float64: kind="JtJ" gives ``(JᵀJ, Jᵀr)``
        (accumulated over point chunks: J is never stored whole); kind="JJt" gives ``(JJᵀ, r)``.

        >>> import pinncore as pc
        >>> A, g = pc.problems.harmonic().gauss_newton(pc.MLP([1, 10, 1]))
        >>> A.shape, g.shape
        ((31, 31), (31,))
        """
        from .jacobian import ResidualJacobian
        lin = ResidualJacobian(self, net, weights, point_weights).linearize(params)
        if kind == "JJt":
            return lin.gram("JJt")[0], lin.r.astype(np.float64)
        return lin.gram(kind)
