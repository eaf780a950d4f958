"""The objective an optimizer sees: Σ_a λ_a L_a of a problem at a network's parameters.

A run hands its optimizer an ``Objective`` for the current phase: the per-term kernel
evaluation (one fused call, ``problem.step_function``), the loss weights λ (frozen while a
second-order phase runs), the per-point weights of the scheme, and — for Gauss–Newton
methods — the stacked residuals and their Jacobian (``problem.residual_jacobian``). The
loss definition itself (Σ_c mean_i w_i r²) lives in the kernel and its NumPy twin only.

Evaluating at a trial point writes it into the network's parameter storage (the kernel reads
the parameters there); an optimizer leaves the accepted point in ``params`` when its step ends.
The last few evaluations are remembered (``RECENT``), so the run does not repeat the one a line
search accepted, even when the search evaluated other trial points after it.

With unknown coefficients (``pc.Unknown``) the optimizer's vector is ``params`` = [the network's
parameters | the unknowns' raw parameters φ] (pinncore.unknown; docs/design.md §4): every
evaluation binds the problem at θ(φ), the network columns of G and J come from the kernel as
without unknowns, and the last U columns are ∂L_a/∂φ and ∂r/∂φ from the residual table.

>>> import numpy as np, pinncore as pc
>>> problem, net = pc.problems.harmonic(), pc.MLP([1, 8, 1])
>>> obj = Objective(problem, net, np.array([1.0, 100.0]))
>>> L, G, R = obj.evaluate(net.params)
>>> bool(np.isclose(obj.loss(net.params), L[0] + 100 * L[1]))
True
"""
from __future__ import annotations

import numpy as np

from .residual import DomainError

__all__ = ["Objective"]

RECENT = 4   # evaluations remembered: a strong-Wolfe zoom may accept a point before its last trial


class Objective:
    """Σ_a weights[a]·L_a of ``problem`` over ``net``'s parameters (see the module docstring).

    names : term names; weights : (T,) float64 λ; point_weights : list (one entry per term,
    None or an (N_a,) array in the net's dtype) or None; residuals : whether ``evaluate``
    returns the per-term residual arrays (schemes that need them).
    """

    def __init__(self, problem, net, weights, point_weights=None, residuals=False, params=None):
        self.problem, self.net = problem, net
        self.names = problem.term_names
        self.weights = np.asarray(weights, dtype=np.float64)
        self.point_weights = point_weights
        self.residuals = bool(residuals)
        self.unknowns = problem.unknowns
        self.n_unknowns, self._P = len(self.unknowns), net.n_params
        if params is None:
            params = net.params if not self.n_unknowns else \
                np.concatenate([net.params, self.unknowns.raw_init().astype(net.dtype)])
        if params.shape != (self._P + self.n_unknowns,) or params.dtype != net.dtype:
            raise ValueError(f"params must be a {net.dtype} vector of {self._P} network parameters and "
                             f"{self.n_unknowns} unknowns, got {params.dtype} {params.shape}")
        self.params = params   # the optimizer's flat vector (the net's own storage without unknowns)
        # A run keeps the net's parameters inside the flat vector (MLP.share_params): no copy.
        self._shared = params is net.params or np.may_share_memory(params, net.params)
        self._bound = (None, problem)   # (raw φ bytes, the problem at those unknowns)
        self._evaluate = self._with_unknowns if self.n_unknowns else problem.step_function(net)
        self._recent = []   # [(params copy, evaluation)], newest last
        self.undefined = None   # why the last evaluation was undefined (a DomainError's message)

    def _load(self, params):
        flat = self.params
        if params is not flat:
            flat[...] = np.asarray(params).astype(flat.dtype, copy=False)
        if not self._shared:
            self.net.params[...] = flat[:self._P]
        return flat

    def current_problem(self):
        """The problem with its unknowns at the flat vector's current values (itself without unknowns)."""
        if self.n_unknowns:
            raw = self.params[self._P:]
            if self._bound[0] != raw.tobytes():
                self._bound = (raw.tobytes(), self.problem.with_unknowns(self.unknowns.values(raw)))
        return self._bound[1]

    def unknown_values(self):
        """{name: value} of the unknowns at the flat vector's current values ({} without unknowns)."""
        return self.unknowns.as_dict(self.params[self._P:])

    def _with_unknowns(self, point_weights, residuals):
        """(L, G, R) with G (T, n_params + U): the network's columns from the kernel at θ, then
        ∂L_a/∂φ_j = ∂L_a/∂θ_j · dθ_j/dφ_j."""
        low, net = self.current_problem().lowering, self.net
        L, G, R = low.value_and_grad(net, net.params, point_weights, residuals)
        Gu = low.unknown_grads(net, net.params, point_weights) * self.unknowns.derivatives(self.params[self._P:])
        return L, np.concatenate([G, Gu.astype(G.dtype)], axis=1), R

    def evaluate(self, params=None, remember=True):
        """(L (T,), G (T, P), R or None) at ``params`` (default: the net's current parameters).
        ``remember=False`` skips the copy that ``cached`` needs (the first-order hot path)."""
        p = self._load(self.params if params is None else params)
        try:
            ev, self.undefined = self._evaluate(self.point_weights, self.residuals), None
        except DomainError as e:
            ev = self._undefined(e)
        if remember:   # copies: a later call must not overwrite a remembered gradient
            kept = (ev[0].copy(), ev[1].copy(), ev[2])
            self._recent = self._recent[-(RECENT - 1):] + [(p.copy(), kept)]
        else:
            self._recent = []
        return ev

    def _undefined(self, error):
        """A residual left its domain at these parameters (log u with u <= 0, ...): to an
        optimizer that is a non-finite loss of that term — a line search backtracks from it,
        a run stops as diverged and reports ``undefined``."""
        self.undefined = str(error)
        hit = [a for a, k in enumerate(self.names) if k == error.term] or slice(None)
        L = np.zeros(len(self.names))
        G = np.zeros((len(self.names), self.params.size), dtype=self.net.dtype)
        L[hit], G[hit] = np.nan, np.nan
        return L, G, None

    def cached(self):
        """A remembered evaluation made at the current parameters, else None."""
        p = self.params
        for params, ev in reversed(self._recent):
            if np.array_equal(params, p):
                return ev
        return None

    def forget(self):
        self._recent = []

    def loss(self, params=None):
        """Σ_a λ_a L_a at ``params``."""
        return float(np.dot(self.weights, self.evaluate(params)[0]))

    def value_and_gradient(self, params):
        """(Σ λ_a L_a, Σ λ_a ∇L_a in float64) at ``params`` — what L-BFGS minimises."""
        L, G, _ = self.evaluate(params)
        return float(np.dot(self.weights, L)), self.weights @ G.astype(np.float64)

    def residual_jacobian(self, params=None, **kw):
        """(r, J): the stacked residuals r = [√(λ_a w_i / N_a) r_a,c,i] with ‖r‖² = Σ λ_a L_a,
        and J = ∂r/∂θ, at ``params`` (``problem.residual_jacobian``); with unknowns, their
        columns ∂r/∂φ follow the network's."""
        self._load(self.params if params is None else params)
        pw = None if self.point_weights is None else dict(zip(self.names, self.point_weights))
        problem, net, weights = self.current_problem(), self.net, dict(zip(self.names, self.weights))
        if not self.n_unknowns:
            return problem.residual_jacobian(net, weights=weights, params=net.params, point_weights=pw, **kw)
        from .jacobian import ResidualJacobian
        jac = ResidualJacobian(problem, net, weights, pw)
        r, J = jac.linearize(net.params).dense()
        Ju = problem.lowering.unknown_rows(net, net.params, jac.scales) * self.unknowns.derivatives(self.params[self._P:])
        return r, np.concatenate([J, Ju.astype(J.dtype)], axis=1)
