"""A traced residual lowered at fixed points into a term table, and its evaluation.

:func:`trace` calls a residual once on symbols (``pinncore.residual``, the language) and
lowers the expression DAG at a fixed set of points into a :class:`Table`: the residual
components as functions of the *jet variables* of the raw network outputs (value, first and
second input derivatives).

Two representations exist because two consumers exist:

* polynomial residuals (sums of products of jet variables with coefficients that depend only
  on coordinates — the overwhelmingly common case) become a flat monomial table that the C++
  kernel evaluates and differentiates fused, with no Python per training step;
* anything else (``sin(u)``, ``u / u.t``, ``u ** 0.5``) falls back to forward-mode dual
  arithmetic over the DAG in NumPy, which still gives exact first derivatives.

A field-dependent argument outside its domain is a ``DomainError`` at evaluation (the
domains are the language's: ``pinncore.residual.domain_requirement``). problem.py decides
when to trace (through ``pinncore.lowering``); the kernel evaluates polynomial tables.
"""

from __future__ import annotations

import numpy as np

from .fields import check_names, trace_expressions
from .residual import DomainError, domain_requirement

__all__ = ["Table", "trace"]

# A polynomial table expands powers and products into monomials (u**k is k repeated factors,
# (a + b)**k has k + 1 terms). Past these sizes the expansion would grow with the exponent
# (u**1e308 never finished, u**1e4 took 10 s a step): such a table is evaluated by the dual
# fallback instead, where a power is one node, a ** p, whatever p is.
MAX_POLY_DEGREE = 16
MAX_POLY_MONOMIALS = 4096

def _topo(roots):
    """Nodes reachable from roots, children before parents (iterative: no recursion limit)."""
    order, seen = [], set()
    stack = [(r, False) for r in reversed(roots)]
    while stack:
        node, expanded = stack.pop()
        if id(node) in seen:
            continue
        if expanded:
            seen.add(id(node))
            order.append(node)
            continue
        stack.append((node, True))
        for c in _children(node):
            if id(c) not in seen:
                stack.append((c, False))
    return order


def _children(node):
    if node.op in ("add", "mul", "div"):
        return node.args
    if node.op in ("neg", "pow"):
        return node.args[:1]
    if node.op == "fn":
        return node.args[1:]
    return ()


def _numeric(node, vals, points):
    """Value of one node given its children's values (shape (N,) arrays or floats)."""
    op, args = node.op, node.args
    if op == "const":
        return np.full(points.shape[0], args[0])
    if op == "coord":
        return points[:, args[0]].copy()
    if op == "data":
        return _pointwise_values(args, points)
    if op == "add":
        return vals[id(args[0])] + vals[id(args[1])]
    if op == "neg":
        return -vals[id(args[0])]
    if op == "mul":
        return vals[id(args[0])] * vals[id(args[1])]
    if op == "div":
        return vals[id(args[0])] / vals[id(args[1])]
    if op == "pow":
        return _power(vals[id(args[0])], args[1])
    if op == "fn":
        return args[0].numpy(vals[id(args[1])])
    raise AssertionError(op)  # pragma: no cover


def _pointwise_values(args, points):
    fn, label = args
    v = np.asarray(fn(points))
    if v.dtype == object or v.dtype.kind not in "fiu" or v.shape != (points.shape[0],):
        raise ValueError(f"per-point data {label!r} must give one real number per point, shape "
                         f"({points.shape[0]},), got shape {v.shape}")
    return v.astype(np.float64)



def _power(a, p):
    # Integer exponents go through numpy's integer power so negative bases stay valid.
    return a ** int(p) if p.is_integer() else a ** p



def _var_key(node):
    return (node.args[0], node.args[1])


class Table:
    """A residual lowered at fixed points.

    Attributes
    ----------
    n_components, n_points : int
    vars : list of (o, multi_index)
        Jet variables of the RAW network outputs, sorted by (o, len(multi), multi).
    unknowns : list of pinncore.unknown.Unknown
        The unknown coefficients the residual uses (creation order): polynomial variables
        V + j after the jet variables (``evaluate(J, theta)`` gives their derivatives too).
    polynomial : bool
        Every component is a polynomial in ``vars`` and the unknowns with coordinate-only
        coefficients.
    monomials : list of (c, factors, coef)
        Only for polynomial tables: component ``c`` gets ``coef * prod(J[f] for f in
        factors)``; ``factors`` is a sorted tuple of var indices (repeats = powers, empty =
        pure coordinate term); ``coef`` is float64 of shape (N,).
    components : list of Expr
        The traced expressions (in raw-output jet variables).
    """

    def __init__(self, name, inputs, points, components):
        self.name = name
        self.inputs = list(inputs)
        self.points = points
        self.components = list(components)
        self.n_components = len(self.components)
        self.n_points = points.shape[0]
        self._nodes = _topo(self.components)
        # Field-dependent nodes with a domain (log(u), u**0.5, 1/u), checked at every evaluation.
        self._domains = {id(n): req for n in self._nodes if not n.coord_only
                         for req in [domain_requirement(n)] if req is not None}

        keys = {_var_key(n) for n in self._nodes if n.op == "jet"}
        self.vars = sorted(keys, key=lambda k: (k[0], len(k[1]), k[1]))
        self._var_index = {k: v for v, k in enumerate(self.vars)}
        # Unknown coefficients (pinncore.unknown), in their creation order: polynomial variables
        # V + j after the jet variables, constant over the points.
        self.unknowns = sorted({id(n): n for n in self._nodes if n.op == "unknown"}.values(), key=lambda u: u.serial)
        self._unknown_index = {id(u): len(self.vars) + j for j, u in enumerate(self.unknowns)}

        # Coordinate-only subexpressions are fixed once the points are: evaluate them now,
        # both for the monomial coefficients and for the dual evaluator.
        self._coord_vals = {}
        with np.errstate(all="ignore"):  # checked below, naming the residual
            for n in self._nodes:
                if n.coord_only:
                    self._coord_vals[id(n)] = np.broadcast_to(
                        np.asarray(_numeric(n, self._coord_vals, points), dtype=np.float64),
                        (self.n_points,)).copy()
            self.polynomial = all(n.poly for n in self._nodes) and _expands_boundedly(self._nodes)
            self.monomials = self._lower() if self.polynomial else []
        # A coefficient that is NaN or inf at some point (log(x.t) at t = 0, u / x.t, ...)
        # would poison every loss and gradient: refuse it here, where the user can see why.
        bad = [(n, v) for n in self._nodes if n.coord_only for v in [self._coord_vals[id(n)]]
               if not np.isfinite(v).all()]
        bad += [(None, coef) for _, _, coef in self.monomials if not np.isfinite(coef).all()]
        if bad:
            node, v = bad[0]
            i = int(np.flatnonzero(~np.isfinite(v))[0])
            what = f"the coordinate expression {str(node)}" if node is not None else "a coefficient"
            raise ValueError(f"residual '{name}': {what} is not finite at point {i} "
                             f"({dict(zip(self.inputs, points[i].tolist()))}); check divisions, log and sqrt "
                             f"of coordinates at the term's points")

    # -- polynomial lowering ---------------------------------------------------------------
    def _lower(self):
        polys = {}  # id(node) -> {factors: coef}
        for n in self._nodes:
            polys[id(n)] = self._lower_node(n, polys)
        merged = {}
        for c, comp in enumerate(self.components):
            for factors, coef in polys[id(comp)].items():
                key = (c, factors)
                merged[key] = merged[key] + coef if key in merged else coef.copy()
        # With points available, drop terms that cancelled to exact zero everywhere (e.g.
        # a hard constraint whose multiplier vanishes at every IC point). With no points
        # keep them, so the structure of an empty table stays inspectable.
        out = []
        for (c, factors), coef in sorted(merged.items(), key=lambda kv: kv[0]):
            if self.n_points > 0 and not np.any(coef):
                continue
            out.append((c, factors, coef))
        return out

    def _lower_node(self, n, polys):
        if n.coord_only:
            return {(): self._coord_vals[id(n)]}
        op, args = n.op, n.args
        if op == "jet":
            return {(self._var_index[_var_key(n)],): np.ones(self.n_points)}
        if op == "unknown":
            return {(self._unknown_index[id(n)],): np.ones(self.n_points)}
        if op == "add":
            return _padd(polys[id(args[0])], polys[id(args[1])])
        if op == "neg":
            return {f: -c for f, c in polys[id(args[0])].items()}
        if op == "mul":
            return _pmul(polys[id(args[0])], polys[id(args[1])])
        if op == "div":  # denominator is coordinate-only (else not polynomial)
            den = self._coord_vals[id(args[1])]
            return {f: c / den for f, c in polys[id(args[0])].items()}
        if op == "pow":  # non-negative integer exponent
            base, p = polys[id(args[0])], int(args[1])
            result = {(): np.ones(self.n_points)}
            while p:
                if p & 1:
                    result = _pmul(result, base)
                p >>= 1
                if p:
                    base = _pmul(base, base)
            return result
        raise AssertionError(op)  # pragma: no cover

    # -- evaluation -------------------------------------------------------------------------
    def _check_J(self, J):
        J = np.asarray(J, dtype=np.float64)
        shape = (len(self.vars), self.n_points)
        if J.shape != shape:
            raise ValueError(f"table '{self.name}': J must have shape (V, N) = {shape}, "
                             f"got {J.shape}")
        return J

    def _with_unknowns(self, J, theta):
        """J (V, N) extended by one constant row per unknown: θ (U,), default their inits."""
        if not self.unknowns:
            return J
        theta = np.array([u.init for u in self.unknowns]) if theta is None else np.asarray(theta, np.float64)
        if theta.shape != (len(self.unknowns),):
            raise ValueError(f"table '{self.name}': theta must have shape ({len(self.unknowns)},) (one value per "
                             f"unknown {[u.name for u in self.unknowns]}), got {theta.shape}")
        return np.concatenate([J, np.broadcast_to(theta[:, None], (len(theta), self.n_points))])

    def evaluate(self, J, theta=None):
        """Residuals ``r`` (C, N) and exact ``dr`` (C, V + U, N) = dr_c/dJ_v from jet values J (V, N),
        then dr_c/dθ_j for the table's unknowns (``theta`` (U,): their values, default the inits).

        Polynomial tables use the monomial table; others use the dual-number DAG path.
        """
        if not self.polynomial:
            return self.evaluate_dag(J, theta)
        J = self._with_unknowns(self._check_J(J), theta)
        C, V, N = self.n_components, len(J), self.n_points
        r = np.zeros((C, N))
        dr = np.zeros((C, V, N))
        for c, factors, coef in self.monomials:
            vals = [J[f] for f in factors]
            r[c] += coef * _prod(vals, coef)
            # d/dJ_v of a product: sum over the positions holding v of the product of the
            # others (repeated factors thereby get their power rule for free).
            for k, f in enumerate(factors):
                dr[c, f] += coef * _prod(vals[:k] + vals[k + 1:], coef)
        return r, dr

    def evaluate_dag(self, J, theta=None):
        """Same as :meth:`evaluate` but by forward-mode dual arithmetic over the DAG.

        Works for every table; each node carries its value (N,) and a dict
        var index -> partial (N,) (absent = exactly zero).
        """
        J = self._with_unknowns(self._check_J(J), theta)
        vals, parts = dict(self._coord_vals), {}
        for n in self._nodes:
            if n.coord_only:
                parts[id(n)] = {}
                continue
            op, args = n.op, n.args
            if op in ("jet", "unknown"):
                v = self._var_index[_var_key(n)] if op == "jet" else self._unknown_index[id(n)]
                vals[id(n)] = J[v]
                parts[id(n)] = {v: np.ones(self.n_points)}
                continue
            if id(n) in self._domains:  # before computing: a named error, not NaN + a warning
                self._check_domain(n, vals)
            val = _numeric(n, vals, self.points)
            vals[id(n)] = val
            if op == "add":
                d = _padd(parts[id(args[0])], parts[id(args[1])])
            elif op == "neg":
                d = {k: -p for k, p in parts[id(args[0])].items()}
            elif op == "mul":
                a, b = args
                d = _padd(_dscale(parts[id(a)], vals[id(b)]), _dscale(parts[id(b)], vals[id(a)]))
            elif op == "div":
                a, b = args
                vb = vals[id(b)]
                d = _padd(_dscale(parts[id(a)], 1.0 / vb), _dscale(parts[id(b)], -val / vb))
            elif op == "pow":
                a, p = args
                d = _dscale(parts[id(a)], p * _power(vals[id(a)], p - 1.0))
            else:  # fn: the same derivative rule as symbolic differentiation, on arrays
                f, a = args
                d = _dscale(parts[id(a)], f.derivative(vals[id(a)], val))
            parts[id(n)] = d
        C, V, N = self.n_components, len(J), self.n_points
        r = np.zeros((C, N))
        dr = np.zeros((C, V, N))
        for c, comp in enumerate(self.components):
            r[c] = vals[id(comp)]
            for v, p in parts[id(comp)].items():
                dr[c, v] = p
        return r, dr

    def _check_domain(self, node, vals):
        """Raise DomainError if a field-dependent argument of ``node`` leaves its domain."""
        arg, (outside, text), what = self._domains[id(node)]
        a = vals[id(arg)]
        bad = outside(a)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            at = dict(zip(self.inputs, self.points[i].tolist()))
            raise DomainError(
                f"residual '{self.name}': {_short(node)} needs a {text} {what}, but "
                f"{_short(arg)} = {float(a[i])!r} at point {i} {at}; keep the field inside the "
                f"domain (e.g. a transform u = exp(n) for a positive field) or rewrite the residual",
                term=self.name)

    def __repr__(self):
        kind = f"polynomial, {len(self.monomials)} monomials" if self.polynomial \
            else "non-polynomial"
        return (f"Table('{self.name}', C={self.n_components}, N={self.n_points}, "
                f"V={len(self.vars)}, {kind})")




def _expands_boundedly(nodes):
    """True when lowering ``nodes`` (children first, all polynomial) to monomials stays within
    MAX_POLY_DEGREE and MAX_POLY_MONOMIALS at every node — bounds on the monomial count that
    the expansion of add/mul/pow cannot exceed (coefficients that cancel only make it smaller).
    Decided on the DAG before anything is expanded, so ``u**1e308`` costs one check."""
    deg, count = {}, {}
    for n in nodes:
        op, args = n.op, n.args
        if n.coord_only:
            d, m = 0, 1
        elif op in ("jet", "unknown"):
            d, m = 1, 1
        elif op == "add":
            d, m = max(deg[id(args[0])], deg[id(args[1])]), count[id(args[0])] + count[id(args[1])]
        elif op in ("neg", "div"):
            d, m = deg[id(args[0])], count[id(args[0])]
        elif op == "mul":
            d, m = deg[id(args[0])] + deg[id(args[1])], count[id(args[0])] * count[id(args[1])]
        else:  # pow, a non-negative integer exponent (else not polynomial)
            p = args[1]
            if p > MAX_POLY_DEGREE:
                return False
            d, m = deg[id(args[0])] * int(p), count[id(args[0])] ** int(p)
        if d > MAX_POLY_DEGREE or m > MAX_POLY_MONOMIALS:
            return False
        deg[id(n)], count[id(n)] = d, m
    return True


def _short(e, limit=60):
    s = str(e)
    return s if len(s) <= limit else s[:limit - 3] + "..."


def _prod(vals, like):
    if not vals:
        return np.ones_like(like)
    out = vals[0]
    for v in vals[1:]:
        out = out * v
    return out


def _padd(p, q):
    """The sum of two sparse maps key -> coefficient (polynomials, gradients)."""
    out = dict(p)
    for f, c in q.items():
        out[f] = out[f] + c if f in out else c
    return out


def _pmul(p, q):
    out = {}
    for f1, c1 in p.items():
        for f2, c2 in q.items():
            f = tuple(sorted(f1 + f2))
            c = c1 * c2
            out[f] = out[f] + c if f in out else c
    return out


def _dscale(p, s):
    return {k: v * s for k, v in p.items()}


# ---------------------------------------------------------------------------------------
# Tracing


def trace(residual, inputs, outputs, points, transform=None, name="residual"):
    """Trace ``residual`` once and lower it at ``points`` into a :class:`Table`.

    ``residual(x, *fields)`` gets a coordinate namespace and one :class:`Field` per output;
    with ``transform(x, *raw)`` the fields are the transform's expressions of the raw
    network outputs (hard constraints). The table is always expressed in the jet variables
    of the RAW outputs, with derivatives with respect to the physical inputs.

    Example
    -------
    >>> import numpy as np
    >>> omega = 2 * np.pi
    >>> t = np.linspace(0.0, 1.0, 5)[:, None]
    >>> tab = trace(lambda x, u: u.tt + omega**2 * u, ["t"], ["u"], t)
    >>> tab.polynomial, tab.vars
    (True, [(0, ()), (0, (0, 0))])
    >>> r, dr = tab.evaluate(np.ones((2, 5)))
    >>> bool(np.allclose(r, 1.0 + omega**2))
    True
    >>> hard = trace(lambda x, u: u.tt + omega**2 * u, ["t"], ["u"], t,
    ...              transform=lambda x, n: 1.0 + x.t**2 * n)
    >>> hard.vars    # u_tt = 2n + 4t n_t + t^2 n_tt
    [(0, ()), (0, (0,)), (0, (0, 0))]
    """
    inputs = check_names(inputs, "inputs")
    outputs = check_names(outputs, "outputs")
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim == 1 and len(inputs) == 1:
        pts = pts.reshape(-1, 1)
    if pts.ndim != 2 or pts.shape[1] != len(inputs):
        raise ValueError(f"points for '{name}' must have shape (N, {len(inputs)}), "
                         f"got {pts.shape}")

    comps = trace_expressions(residual, inputs, outputs, transform=transform, name=name)
    return Table(name, inputs, pts, comps)
