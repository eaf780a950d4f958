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

    def __init__(self, problem, net, weights, point_weights=None, residuals=False):
        self.problem, self.net = problem, net
        self.names = problem.term_names
        self.weights = np.asarray(weights, dtype=np.float64)
        self.point_weights = point_weights
        self.residuals = bool(residuals)
        self._evaluate = problem.step_function(net)
        self._recent = []   # [(params copy, evaluation)], newest last
        self.undefined = None   # why the last evaluation was undefined (a DomainError's message)

    def _load(self, params):
        p = self.net.params
        if params is not p:
            p[...] = np.asarray(params).astype(p.dtype, copy=False)
        return p

    def evaluate(self, params=None, remember=True):
        """(L (T,), G (T, P), R or None) at ``params`` (default: the net's current parameters).
        ``remember=False`` skips the copy that ``cached`` needs (the first-order hot path)."""
        p = self._load(self.net.params if params is None else params)
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
        G = np.zeros((len(self.names), self.net.n_params), dtype=self.net.dtype)
        L[hit], G[hit] = np.nan, np.nan
        return L, G, None

    def cached(self):
        """A remembered evaluation made at the net's current parameters, else None."""
        p = self.net.params
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
        and J = ∂r/∂θ, at ``params`` (``problem.residual_jacobian``)."""
        p = self._load(self.net.params if params is None else params)
        pw = None if self.point_weights is None else dict(zip(self.names, self.point_weights))
        return self.problem.residual_jacobian(self.net, weights=dict(zip(self.names, self.weights)),
                                              params=p, point_weights=pw, **kw)
