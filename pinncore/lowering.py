"""A problem's lowering: traced residual tables, stream plans, per-dtype kernel data, and the
evaluations that run on them (docs/design.md §2–§3).

``Lowering`` is built once per ``pc.Problem``: every term's residual is traced
(``pinncore.residual``) into a table over the network's output jets (a hard-constraint
transform substituted in), the table's variables are mapped to kernel streams (the stream
plan), and, per dtype, the term data is laid out for the kernel and compiled once. It answers
losses and gradients (one fused kernel call when every table is polynomial; the NumPy fallback
between the kernel's forward and backward sweeps otherwise), per-point NTK norms and the fields
at any points. It owns no declarative fact: those stay in ``pc.Problem``.

>>> import pinncore as pc
>>> low = pc.problems.harmonic().lowering
>>> [t.name for t in low.terms], low.terms[0].first, low.terms[0].pairs
(['pde', 'ic'], [0], [(0, 0)])
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import table as _table
from .network import TermData, stream_plan
from .unknown import Unknowns

__all__ = ["Lowering", "LoweredTerm", "term_loss"]


def term_loss(r, w=None):
    """A term's loss L_a = Σ_c mean_i w_i r_c,i² from its (C, N) residuals (0 without points):
    the loss definition on the Python side (the kernel and its NumPy twin compute it fused).

    >>> term_loss(np.array([[1.0, 3.0]])), term_loss(np.array([[1.0, 3.0]]), np.array([2.0, 0.0]))
    (5.0, 1.0)
    """
    r = np.asarray(r, dtype=np.float64)
    if r.size == 0:
        return 0.0
    wv = 1.0 if w is None else np.asarray(w, dtype=np.float64)
    return float((wv * r ** 2).sum() / r.shape[-1])


@dataclass
class LoweredTerm:
    """A term after tracing: the residual table and how its variables map to kernel streams."""

    name: str
    points: np.ndarray
    table: object             # table.Table
    first: list
    pairs: list
    var_stream: list          # stream index of each table variable
    var_out: list             # network output of each table variable
    paired: int = 0           # > 0: a loss over r(x_j) - r(x_{paired+j}), point pairs (periodic terms)
    unknown_index: list = None   # position in the lowering's unknowns of each of the table's unknowns

    @property
    def n(self):
        return self.points.shape[0]

    @property
    def n_loss(self):
        """Residuals per component in the loss: the points, or the pairs of a paired term."""
        return self.paired or self.points.shape[0]

    @property
    def fused(self):
        """Evaluated in one fused kernel call (polynomial, unpaired); else by ``fallback``."""
        return self.table.polynomial and not self.paired


class Lowering:
    """Traced terms of a problem and their per-dtype kernel data.

    inputs, outputs : names; scale, shift : the input scaling x̂ = scale·x + shift;
    transform : the hard constraint or None; terms : [(name, points, residual)] or
    (name, points, residual, paired) for paired terms (``pinncore.conditions.periodic``).
    """

    def __init__(self, inputs, outputs, scale, shift, transform, terms, unknowns=()):
        self.inputs, self.outputs, self.scale, self.shift, self.transform = inputs, outputs, scale, shift, transform
        lowered = [_table.trace(t[2], inputs, outputs, t[1], transform=transform, name=t[0]) for t in terms]
        self.unknowns = self._collect_unknowns(lowered, unknowns)
        self.theta = np.array([u.init for u in self.unknowns], dtype=np.float64)   # their values here
        self.terms = [self.lower(*t, table=tb) for t, tb in zip(terms, lowered)]
        self._cache, self._predict_cache, self._base = {}, {}, None

    def _collect_unknowns(self, tables, declared):
        """The problem's unknowns: those declared (each must be used), then the others in creation
        order; none may sit in the transform (the fields must not depend on them)."""
        found = sorted({id(u): u for tb in tables for u in tb.unknowns}.values(), key=lambda u: u.serial)
        used = {id(u) for u in found}
        for u in declared:
            if id(u) not in used:
                raise ValueError(f"unknown {u.name!r} is not used by any residual; write it into a term's "
                                 f"residual or leave it out")
        if self.transform is not None:
            probe = _table.trace(lambda x, *u: list(u), self.inputs, self.outputs,
                                 np.zeros((0, len(self.inputs))), transform=self.transform, name="transform")
            if probe.unknowns:
                raise ValueError(f"unknown {probe.unknowns[0].name!r} appears in the transform; unknowns may "
                                 f"only appear in residuals (the fields must not depend on them)")
        ordered = {id(u): u for u in list(declared) + found}
        return Unknowns(ordered.values())

    def bind(self, theta):
        """A Lowering with the unknowns at values ``theta`` (U,): the kernel data of the terms that
        use them carry θ in their monomial coefficients; the other terms' data are shared."""
        other = Lowering.__new__(Lowering)
        other.__dict__.update(self.__dict__)
        other.theta = np.array(theta, dtype=np.float64).reshape(len(self.unknowns))
        other._cache, other._base = {}, self._base or self
        return other

    def lower(self, name, points, fn, paired=0, table=None):
        """Trace ``fn`` on ``points`` into a ``LoweredTerm`` (``table``: already traced)."""
        if table is None:
            table = _table.trace(fn, self.inputs, self.outputs, points, transform=self.transform, name=name)
        for u in table.unknowns:
            if u not in self.unknowns:
                raise ValueError(f"unknown {u.name!r} in term {name!r} is not one of the problem's unknowns "
                                 f"{self.unknowns.names}")
        derivs = sorted({v[1] for v in table.vars}, key=lambda m: (len(m), m))
        first, pairs, index = stream_plan(derivs)
        return LoweredTerm(name=name, points=points, table=table, first=first, pairs=pairs,
                           var_stream=[index[v[1]] for v in table.vars], var_out=[v[0] for v in table.vars],
                           paired=int(paired), unknown_index=[self.unknowns.index(u) for u in table.unknowns])

    def replaced(self, name, points, fn, paired=0):
        """A new Lowering with term ``name`` re-traced on ``points`` (the others are shared)."""
        other = Lowering.__new__(Lowering)
        other.inputs, other.outputs, other.scale, other.shift = self.inputs, self.outputs, self.scale, self.shift
        other.transform, other.unknowns, other.theta, other._base = self.transform, self.unknowns, self.theta, None
        other.terms = [self.lower(name, points, fn, paired) if lt.name == name else lt for lt in self.terms]
        other._cache, other._predict_cache = {}, self._predict_cache
        return other

    @property
    def polynomial(self):
        return all(lt.table.polynomial for lt in self.terms)

    @property
    def fused(self):
        """Every term in one kernel call (polynomial and none paired)."""
        return all(lt.fused for lt in self.terms)

    def termdata(self, lt, points, dtype):
        """The kernel layout of a lowered term at ``points`` (network inputs, streams, table)."""
        tb = lt.table
        kw = {"components": tb.n_components}
        n = points.shape[0]
        if tb.polynomial:
            comp, off, fs, fo, coef = [], [0], [], [], []
            V, theta = len(tb.vars), self.theta[lt.unknown_index]
            for c, factors, cf in tb.monomials:
                comp.append(c)
                jets = [v for v in factors if v < V]   # unknown factors (v >= V) scale the coefficient
                fs += [lt.var_stream[v] for v in jets]
                fo += [lt.var_out[v] for v in jets]
                off.append(len(fs))
                scale = np.prod([theta[v - V] for v in factors if v >= V])
                coef.append(np.broadcast_to(np.asarray(cf * scale, dtype=np.float64), (n,)))
            kw.update(comp=np.asarray(comp, np.int32), fac_off=np.asarray(off, np.int32),
                      fac_stream=np.asarray(fs, np.int32), fac_out=np.asarray(fo, np.int32),
                      coef=np.asarray(coef, dtype=np.float64).reshape(len(comp), n))
        return TermData.build(points, self.scale, self.shift, lt.first, lt.pairs, dtype, **kw)

    def data(self, dtype):
        """Every term's ``TermData`` in ``dtype``, built once."""
        key = np.dtype(dtype).char
        if key not in self._cache:
            shared = self._base.data(dtype) if self._base is not None else None
            self._cache[key] = [shared[a] if shared is not None and not lt.unknown_index
                                else self.termdata(lt, lt.points, dtype) for a, lt in enumerate(self.terms)]
        return self._cache[key]

    def check_point_weights(self, point_weights, dtype):
        """Per-point loss weights, one entry per term (None or an (N_a,) finite array)."""
        if isinstance(point_weights, np.ndarray) or not hasattr(point_weights, "__len__"):
            raise TypeError("point_weights must be a list with one entry (None or an (N_a,) array) per term")
        if len(point_weights) != len(self.terms):
            raise ValueError(f"point_weights must have {len(self.terms)} entries (one per term), "
                             f"got {len(point_weights)}")
        out = []
        for a, (w, lt) in enumerate(zip(point_weights, self.terms)):
            if w is None:
                out.append(None)
                continue
            arr = np.asarray(w)
            name = f"point_weights[{a}] (term {lt.name!r})"
            if arr.dtype.kind not in "fiu":
                raise TypeError(f"{name} must be a real array, got dtype {arr.dtype}")
            if arr.shape != (lt.n_loss,):
                raise ValueError(f"{name} must have shape ({lt.n_loss},), got {arr.shape}")
            if not np.isfinite(arr).all():
                raise ValueError(f"{name} contains NaN or infinite values")
            out.append(np.ascontiguousarray(arr, dtype=dtype))
        return out

    # -- evaluation -------------------------------------------------------------------------
    def value_and_grad(self, net, p, point_weights, residuals):
        """(losses (T,), grads (T, P), residual list or None) at parameters ``p``."""
        data = self.data(net.dtype)
        T = len(data)
        point_weights = [None] * T if point_weights is None else self.check_point_weights(point_weights, net.dtype)
        be = net.backend
        poly = [a for a in range(T) if self.terms[a].fused]
        losses, grads, res = np.zeros(T), np.empty((T, net.n_params), dtype=net.dtype), [None] * T
        if poly:
            L, G, R = be.losses_grads(p, [data[a] for a in poly], [point_weights[a] for a in poly], residuals)
            losses[poly], grads[poly] = L, G
            if residuals:
                for k, a in enumerate(poly):
                    res[a] = R[k]
        for a in range(T):
            if a not in poly:
                losses[a], grads[a], res[a] = self.fallback(be, p, a, data[a], point_weights[a], net)
        return losses, grads, (res if residuals else None)

    def step_function(self, net):
        """``f(point_weights, residuals) -> (losses, grads, res)`` at ``net.params`` (updated in
        place by the optimizer): one call into the kernel when every term is polynomial."""
        if self.fused:
            return net.backend.step_function(net.params, self.data(net.dtype))
        return lambda point_weights, residuals: self.value_and_grad(net, net.params, point_weights, residuals)

    @staticmethod
    def table_jets(lt, be, p, td):
        """Kernel forward at a term's points: the output jets J (S, N, m) and the values of the
        table's variables Jv (V, N) in float64, for ``Table.evaluate``."""
        J = be.jets(p, td)
        Jv = np.stack([J[s, :, o] for s, o in zip(lt.var_stream, lt.var_out)]).astype(np.float64) \
            if lt.var_stream else np.zeros((0, td.xhat.shape[0]))
        return J, Jv

    def evaluate_table(self, lt, Jv):
        """``lt.table.evaluate`` with the table's unknowns at this lowering's values θ: r (C, N) and
        dr (C, V + U_a, N), the last U_a rows ∂r/∂θ of the term's own unknowns."""
        return lt.table.evaluate(Jv, self.theta[lt.unknown_index])

    def unknown_derivatives(self, a, net, p):
        """(r, ∂r/∂θ) of term a over its loss rows: (C, n) and (C, U_a, n) in float64 (pair
        differences for a paired term), from one kernel forward pass and the NumPy table."""
        lt = self.terms[a]
        _, Jv = self.table_jets(lt, net.backend, p, self.data(net.dtype)[a])
        r, dr = self.evaluate_table(lt, Jv)
        du = dr[:, len(lt.table.vars):, :]
        M = lt.paired
        return (r[:, :M] - r[:, M:], du[..., :M] - du[..., M:]) if M else (r, du)

    def unknown_grads(self, net, p, point_weights=None):
        """∂L_a/∂θ_j (T, U) float64 at network parameters ``p``: exactly Σ_c Σ_i (2 w_i / N_a) r_c,i
        ∂r_c,i/∂θ_j, where ∂r/∂θ_j is the table's sum of coef·m_k over the monomials holding θ_j
        (the loss definition of ``term_loss``, differentiated in the coefficient)."""
        pw = [None] * len(self.terms) if point_weights is None else point_weights
        G = np.zeros((len(self.terms), len(self.unknowns)))
        for a, lt in enumerate(self.terms):
            if not lt.unknown_index:
                continue
            r, du = self.unknown_derivatives(a, net, p)
            w = 1.0 if pw[a] is None else np.asarray(pw[a], dtype=np.float64)
            G[a, lt.unknown_index] = np.einsum("cn,cun->u", 2.0 * w * r / max(lt.n_loss, 1), du)
        return G

    def unknown_rows(self, net, p, scales):
        """∂r/∂θ (rows, U) float64 of the stacked residual vector of ``pinncore.jacobian`` (rows: term,
        component, point; term a scaled by ``scales[a]`` (n_a,)): the unknowns' Jacobian columns."""
        blocks = []
        for a, lt in enumerate(self.terms):
            C, n = lt.table.n_components, lt.n_loss
            block = np.zeros((C * n, len(self.unknowns)))
            if lt.unknown_index:
                _, du = self.unknown_derivatives(a, net, p)
                s = np.asarray(scales[a], dtype=np.float64)
                block[:, lt.unknown_index] = (du * s).transpose(0, 2, 1).reshape(C * n, -1)
            blocks.append(block)
        return np.concatenate(blocks) if blocks else np.zeros((0, len(self.unknowns)))

    def table_adjoint(self, lt, J, seed, dr):
        """∂/∂J of Σ_c seed_c·r_c: the output-jet adjoint (S, N, m) from ∂r/∂J (C, V, N)."""
        adj = np.zeros(J.shape, dtype=np.float64)
        for v, (s, o) in enumerate(zip(lt.var_stream, lt.var_out)):
            adj[s, :, o] += (seed * dr[:, v, :]).sum(axis=0)
        return adj

    def fallback(self, be, p, a, td, w, net):
        """Non-polynomial residual: kernel forward, NumPy residual with exact ∂r/∂J, kernel backward."""
        lt = self.terms[a]
        J, Jv = self.table_jets(lt, be, p, td)
        r, dr = self.evaluate_table(lt, Jv)
        M = lt.paired
        if M:   # periodic pairs: the loss is over R_j = r(x_j) − r(x_{M+j}), seeded back to both points
            r = r[:, :M] - r[:, M:]
        n = max(lt.n_loss, 1)
        wv = np.ones(lt.n_loss) if w is None else np.asarray(w, dtype=np.float64)
        loss = float((wv * r ** 2).sum() / n)
        seed = 2.0 * wv * r / n                                   # ∂L/∂r, (C, N)
        adj = self.table_adjoint(lt, J, np.concatenate([seed, -seed], axis=1) if M else seed, dr)
        g, _ = be.vjp(p, td, np.ascontiguousarray(adj, dtype=net.dtype), False)
        return loss, g, r.astype(net.dtype)

    def ntk_point_norms(self, net, p):
        """[(N_a,) Σ_c ‖∂r_c,i/∂θ‖²] per term, by the Gram identity (per component on the fallback)."""
        data, be = self.data(net.dtype), net.backend
        poly = [a for a in range(len(data)) if self.terms[a].fused]
        out = [None] * len(data)
        if poly:
            for a, nrm in zip(poly, be.ntk_norms(p, [data[a] for a in poly])):
                out[a] = nrm
        for a in range(len(data)):
            if a in poly:
                continue
            lt = self.terms[a]
            J, Jv = self.table_jets(lt, be, p, data[a])
            _, dr = self.evaluate_table(lt, Jv)
            total = np.zeros(lt.n, dtype=net.dtype)
            for c in range(lt.table.n_components):
                seed = np.zeros((lt.table.n_components, lt.n))
                seed[c] = 1.0
                adj = self.table_adjoint(lt, J, seed, dr)
                total += be.vjp(p, data[a], np.ascontiguousarray(adj, dtype=net.dtype), True)[1]
            # paired (periodic) terms: ‖∇r(x_j)‖² + ‖∇r(x_M+j)‖², which omits the cross term
            # −2 ∇r(x_j)·∇r(x_M+j) of ‖∇(r(x_j) − r(x_M+j))‖² (the Gram identity is per point)
            out[a] = total[:lt.paired] + total[lt.paired:] if lt.paired else total
        return out

    def fields(self, net, p, x):
        """The fields u at physical points x (M, d) through the transform: (M, n_outputs).
        The transform is lowered once per point set (a small LRU: test points, plot grids)."""
        key = (x.shape, x.tobytes())
        if key not in self._predict_cache:
            lt = self.lower("predict", x, lambda xx, *u: list(u))
            if len(self._predict_cache) >= 8:
                self._predict_cache.pop(next(iter(self._predict_cache)))
            self._predict_cache[key] = (lt, {})
        lt, by_dtype = self._predict_cache[key]
        if net.dtype.char not in by_dtype:
            by_dtype[net.dtype.char] = self.termdata(lt, x, net.dtype)
        _, Jv = self.table_jets(lt, net.backend, p, by_dtype[net.dtype.char])
        r, _ = lt.table.evaluate(Jv)
        return r.T.copy()
