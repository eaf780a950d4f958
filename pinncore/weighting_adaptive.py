"""Self-adaptive per-point weights trained by gradient ascent (McClenny & Braga-Neto 2023).

>>> SelfAdaptive(lr=0.01).mask
'square'
"""
from __future__ import annotations

import numpy as np

from . import registry
from .weighting_base import Weighting, check_known, fraction, number, positive

__all__ = ["SelfAdaptive"]


# ------------------------------------------------------------------------------ SelfAdaptive

@registry.schemes.register("selfadaptive", description="per-point weights by gradient ascent (McClenny & Braga-Neto 2023)",
                           aliases=("sa",), bounds={"lr": (1e-5, 1.0), "mask": ("identity", "square"), "init": (0.0, 1e6)},
                           adapts=True, reports_weights=True)
class SelfAdaptive(Weighting):
    """Self-adaptive per-point weights trained by gradient ascent (McClenny & Braga-Neto 2023).

    L. McClenny, U. Braga-Neto, "Self-adaptive physics-informed neural networks",
    J. Comput. Phys. 474 (2023) 111722 (arXiv:2009.04544). Each point i of an adapted term
    carries a trainable λ_i ≥ 0 and the loss is L_a = Σ_c (1/N_a) Σ_i m(λ_i) r_c,i², which is
    *minimised* in θ and *maximised* in λ (a saddle-point problem): points that stay hard to
    fit are weighted up. The ascent direction is

        ∂L_a/∂λ_i = m'(λ_i) Σ_c r_c,i² / N_a       (from ``ctx.residuals``)

    and λ takes one Adam step *up* that gradient per training step (the paper trains the
    weights with Adam, like the network; its code uses the same learning rate 0.005 for both),
    projected onto λ ≥ 0. With m' ≥ 0 the gradient is ≥ 0, so every λ_i is non-decreasing;
    Adam's normalisation makes the growth rate depend on how a point's residual evolves
    relative to its own history (points whose residuals decay grow slower).

    Parameters
    ----------
    lr : Adam learning rate for λ (paper/code: 0.005).
    mask : "square" (default) m(λ) = λ², the authors': their released code multiplies the
        residual by λ before squaring, mean((λ r)²) (the paper's polynomial mask with q = 2);
        or "identity" m(λ) = λ (pinncore's default before the family benchmark; kept for
        reproduction: the weight then grows only linearly with the ascent steps).
    init : initial λ: a number, or {term: number} (the paper initialises terms separately).
    terms : names of the terms to adapt (default: all); other terms keep w_i = 1.
    beta1, beta2, eps : Adam constants (0.9, 0.999, 1e-8).

    ``weights`` returns 1.0 per term (the balance lives in the point weights);
    ``reported_weights`` returns the mean point weight per term, for logs.

    Known failure mode (bench/families.py): the ascent moves λ by about ``lr`` per step
    whatever the imbalance, so a 10²–10³ gradient imbalance is corrected only late (with the
    λ² mask the IC weight passes 100 after ~2000 steps); on the oscillator family at ω ≥ 3π
    with cosine data the fit has already settled at u ≈ 0 (rel-L2 ≈ 1).

    >>> import pinncore as pc
    >>> from pinncore.weighting import Context
    >>> problem, net = pc.problems.harmonic(), pc.MLP([1, 20, 20, 1], seed=0)
    >>> scheme = SelfAdaptive(lr=0.005)
    >>> state = scheme.init(problem)
    >>> ctx = Context.evaluate(problem, net, point_weights=scheme.point_weights(state))
    >>> state = scheme.update(state, 0, ctx)
    >>> bool((scheme.point_weights(state)["pde"] > 1.0).all())
    True
    """

    name = "selfadaptive"
    needs_residuals = True
    reports_weights = True
    _MASKS = ("identity", "square")

    def __init__(self, lr=0.005, mask="square", init=1.0, terms=None, beta1=0.9, beta2=0.999, eps=1e-8):
        self.lr = positive(lr, "lr")
        if mask not in self._MASKS:
            raise ValueError(f"mask must be one of {list(self._MASKS)}, got {mask!r}")
        self.mask = mask
        if isinstance(init, dict):
            self.init_value = {k: number(v, f"init for term {k!r}") for k, v in init.items()}
        else:
            self.init_value = number(init, "init")
        if terms is not None:
            if isinstance(terms, str):
                terms = [terms]
            terms = list(terms)
            if not all(isinstance(k, str) for k in terms):
                raise ValueError(f"terms must be a list of term names, got {terms!r}")
        self.terms = terms
        for what, b in (("beta1", beta1), ("beta2", beta2)):
            if fraction(b, what) == 1.0:
                raise ValueError(f"{what} must be in [0, 1), got {b!r}")
        self.beta1, self.beta2 = float(beta1), float(beta2)
        self.eps = positive(eps, "eps")

    def config(self):
        init = dict(self.init_value) if isinstance(self.init_value, dict) else self.init_value
        return {"lr": self.lr, "mask": self.mask, "init": init, "terms": self.terms, "beta1": self.beta1,
                "beta2": self.beta2, "eps": self.eps}

    def init(self, problem):
        adapted = problem.term_names if self.terms is None else self.terms
        check_known(adapted, problem, "SelfAdaptive terms")
        if isinstance(self.init_value, dict):
            check_known(self.init_value, problem, "SelfAdaptive init")
        lam, m, v = {}, {}, {}
        for k in problem.term_names:
            if k not in adapted:
                continue
            n = int(problem.n_points[k])
            x0 = self.init_value.get(k, 1.0) if isinstance(self.init_value, dict) else self.init_value
            lam[k] = np.full(n, x0, dtype=np.float64)
            m[k] = np.zeros(n)
            v[k] = np.zeros(n)
        return {"weights": {k: 1.0 for k in problem.term_names}, "lambda": lam, "m": m, "v": v, "count": 0,
                "n_points": {k: int(problem.n_points[k]) for k in problem.term_names}}

    def _m(self, lam):
        return lam if self.mask == "identity" else lam * lam

    def _dm(self, lam):
        return np.ones_like(lam) if self.mask == "identity" else 2.0 * lam

    def point_weights(self, state):
        out = {}
        for k, n in state["n_points"].items():
            out[k] = self._m(state["lambda"][k]) if k in state["lambda"] else np.ones(n)
        return out

    def reported_weights(self, state):
        """{term: mean point weight} (1.0 for non-adapted terms) — what the trainer logs."""
        return {k: float(np.mean(w)) if w.size else 1.0 for k, w in self.point_weights(state).items()}

    def update(self, state, step, ctx):
        if ctx.residuals is None:
            raise ValueError("SelfAdaptive needs ctx.residuals (needs_residuals = True)")
        # A new state of new arrays; the arrays of the old one are never written (so they are
        # shared, not copied, for a term that skips this step): a step costs a few µs per term.
        new = {**state, "weights": dict(state["weights"]), "lambda": dict(state["lambda"]), "m": dict(state["m"]),
               "v": dict(state["v"])}
        t = state["count"] + 1
        b1, b2 = self.beta1, self.beta2
        c1, c2 = 1 - b1 ** t, 1 - b2 ** t
        for k, lam in state["lambda"].items():
            r = np.asarray(ctx.residuals[k], dtype=np.float64)
            n = lam.size
            r = r.reshape(-1, n)
            g = np.einsum("ci,ci->i", r, r) * (self._dm(lam) / max(n, 1))   # ∂L_a/∂λ_i
            if not np.isfinite(g).all():
                continue
            m = b1 * state["m"][k] + (1 - b1) * g
            v = b2 * state["v"][k] + (1 - b2) * (g * g)
            step_ = (self.lr / c1) * m / (np.sqrt(v / c2) + self.eps)
            new["lambda"][k] = np.maximum(lam + step_, 0.0)                  # ascent, projected on λ ≥ 0
            new["m"][k], new["v"][k] = m, v
        new["count"] = t
        return new
