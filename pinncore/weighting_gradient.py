"""Weighting schemes from gradient statistics: GradNorm (learning-rate annealing, Wang, Teng &
Perdikaris 2021) and NTK (NTK-trace weights, Wang, Yu & Perdikaris 2022).

>>> GradNorm(every=5)
GradNorm(alpha=0.1, every=5, reference='pde', max_weight=1000000.0, mode='robust', weights_only=True)
"""
from __future__ import annotations

import math

import numpy as np

from . import registry
from .weighting_base import Weighting, balancing_settings, check_known, copy_state, fraction, positive, weight_blocks

__all__ = ["GradNorm", "NTK"]


@registry.schemes.register("gradnorm", description="learning-rate annealing by gradient statistics (Wang, Teng & Perdikaris 2021)",
                           bounds={"alpha": (1e-3, 1.0), "every": (1, 1000), "mode": ("robust", "released", "paper"),
                                   "max_weight": (1.0, 1e12)}, adapts=True)
class GradNorm(Weighting):
    """Learning-rate annealing by gradient statistics (Wang, Teng & Perdikaris 2021).

    S. Wang, Y. Teng, P. Perdikaris, "Understanding and mitigating gradient flow pathologies
    in physics-informed neural networks", SIAM J. Sci. Comput. 43(5) (2021), Algorithm 1:
    every ``every`` steps (starting at step 0), for each term a other than the reference r,

        λ̂_a = max_θ |∇θ L_r| / mean_θ |∇θ L_a|                 (eq. 40)
        λ_a ← (1 − α) λ_a + α λ̂_a                               (eq. 41)

    and λ_r = 1 throughout. ``reference`` defaults to "pde"; if the problem has no such term
    the first term is used (an explicitly named, non-default reference that is absent is an
    error).

    Modes
    -----
    ``"paper"``: eq. 40–41 as printed, over all parameters, unweighted ∇L_a. On the harmonic
        IVP this diverges: as the IC is met mean|∇L_ic| → 0, λ̂_ic → ∞ and λ_ic passes 1e10
        (then the fit goes NaN). Kept for reproduction only. (A step where the denominator
        is exactly 0 is skipped so that the weights stay finite.)
    ``"released"``: the authors' code: the statistics are over weight-matrix entries only
        (``ctx.weight_mask``; max over all layers, mean = the average of the per-layer
        means) and the denominator differentiates the *weighted* term λ_a L_a:
        λ̂_a = max|∇L_r| / mean|λ_a ∇L_a|. This makes the update the damped fixed-point
        iteration λ ← (1−α)λ + α c/λ with c = max|∇L_r| / mean|∇L_a|, whose fixed point is
        λ = √c: the weight tracks the *square root* of the imbalance, so a vanishing
        mean|∇L_a| grows λ only as its inverse square root — which is why it settles.
    ``"robust"`` (default): the released statistics plus three guards —
        (1) the denominator is floored at max|∇L_r| / max_weight and λ̂ is clipped to
            [1/max_weight, max_weight], so one vanishing gradient cannot produce inf/NaN;
        (2) the moving average is taken in log space, log λ ← (1−α) log λ + α log λ̂
            (a geometric mean): a single spiky estimate multiplies λ by at most
            max_weight^α instead of adding α·λ̂, and λ stays positive. The fixed point is
            unchanged (λ = √c; the log-space map contracts at rate 1 − 2α, no overshoot);
        (3) λ itself is clipped to [1/max_weight, max_weight]; steps with non-finite or
            zero reference gradients are skipped.

    Parameters
    ----------
    alpha : moving-average rate α in (0, 1] (paper: 0.1; released code: β = 0.9 = 1 − α).
    every : update period k in steps (paper/code: 10).
    reference : the term whose weight stays 1.
    mode : "robust" | "released" | "paper".
    max_weight : bound for "robust" (ignored by the literal modes).
    weights_only : statistics over weight matrices only; default True for released/robust,
        False for paper.

    Known failure mode (bench/families.py): the √c fixed point under-weights stiff terms —
    on the oscillator family with cosine data at ω = 3π, 4π (imbalance c ~ 10³–10⁴) λ_ic
    settles at 5–12 where ≥ 100 is needed, and the fit converges to u ≈ 0 (rel-L2 ≈ 1).

    >>> import pinncore as pc
    >>> from pinncore.weighting import Context
    >>> problem, net = pc.problems.harmonic(), pc.MLP([1, 20, 20, 1], seed=0)
    >>> scheme = GradNorm(alpha=0.1, every=10)
    >>> state = scheme.update(scheme.init(problem), 0, Context.evaluate(problem, net))
    >>> 1.0 < scheme.weights(state)["ic"] < 1e6
    True
    """

    name = "gradnorm"
    _MODES = ("robust", "released", "paper")

    def __init__(self, alpha=0.1, every=10, reference="pde", mode="robust", max_weight=1e6, weights_only=None):
        balancing_settings(self, alpha, every, reference, max_weight)
        if mode not in self._MODES:
            raise ValueError(f"mode must be one of {list(self._MODES)}, got {mode!r}")
        self.mode = mode
        self.weights_only = (mode != "paper") if weights_only is None else bool(weights_only)

    def config(self):
        return {"alpha": self.alpha, "every": self.every, "reference": self.reference, "mode": self.mode,
                "max_weight": self.max_weight, "weights_only": self.weights_only}

    def init(self, problem):
        ref = self.reference
        if ref not in problem.term_names:
            if ref != "pde":
                check_known([ref], problem, "GradNorm reference")
            ref = problem.term_names[0]
        return {"weights": {k: 1.0 for k in problem.term_names}, "reference": ref}

    def _stats(self, g, mask, blocks):
        """(max|g|, mean|g|) over the selected parameters (mean of per-layer means if blocks)."""
        a = np.abs(np.asarray(g, dtype=np.float64))
        if not self.weights_only:
            return float(a.max()), float(a.mean())
        sel = a[mask]
        return float(sel.max()), float(np.mean([a[s:e].mean() for s, e in blocks]))

    def update(self, state, step, ctx):
        if not self.due(step):
            return state  # nothing changes between updates (and nothing is mutated)
        new = copy_state(state)
        ref = state["reference"]
        lam = new["weights"]
        mask = np.asarray(ctx.weight_mask, dtype=bool)
        blocks = weight_blocks(mask) if self.weights_only else None
        if self.weights_only and not blocks:
            raise ValueError("ctx.weight_mask selects no parameter; GradNorm needs weight-matrix entries")
        num, _ = self._stats(ctx.grads[ref], mask, blocks)
        if not (math.isfinite(num) and num > 0):
            return new
        for k in lam:
            if k == ref:
                continue
            _, mean = self._stats(ctx.grads[k], mask, blocks)
            if not math.isfinite(mean):
                continue
            if self.mode == "paper":                       # eq. 40–41 as printed
                if mean == 0.0:
                    continue
                lam[k] = (1 - self.alpha) * lam[k] + self.alpha * (num / mean)
            elif self.mode == "released":                  # authors' code: mean|∇(λ L_a)|
                den = lam[k] * mean
                if den == 0.0:
                    continue
                lam[k] = (1 - self.alpha) * lam[k] + self.alpha * (num / den)
            else:                                          # robust
                lo, hi = 1.0 / self.max_weight, self.max_weight
                den = max(lam[k] * mean, num / hi)
                hat = min(max(num / den, lo), hi)
                log_lam = (1 - self.alpha) * math.log(lam[k]) + self.alpha * math.log(hat)
                lam[k] = min(max(math.exp(log_lam), lo), hi)
        new["weights"][ref] = 1.0
        return new


# ------------------------------------------------------------------------------ NTK

@registry.schemes.register("ntk", description="weights from the NTK traces (Wang, Yu & Perdikaris 2022)",
                           bounds={"every": (1, 10000), "normalize": ("mean", "sum")}, adapts=True)
class NTK(Weighting):
    """Weights from the neural tangent kernel traces (Wang, Yu & Perdikaris 2022).

    S. Wang, X. Yu, P. Perdikaris, "When and why PINNs fail to train: a neural tangent
    kernel perspective", J. Comput. Phys. 449 (2022) 110768, Algorithm 1: at step 0 and
    every ``every`` steps,

        λ_a = Σ_b t_b / t_a

    where t_a measures how fast gradient flow moves term a's residuals: the trace of term a's
    diagonal NTK block. ``ctx.ntk_traces()`` gives tr K_a = Σ_{c,i} ‖∂r_c,i/∂θ‖².

    Normalisation
    -------------
    ``"mean"`` (default): t_a = tr K_a / N_a. pinncore's losses are means over points,
        L_a = Σ_c (1/N_a) Σ_i r²; under gradient flow on Σ_a λ_a L_a the residuals obey
        dr_a/dt = −2 Σ_b (λ_b / N_b) J_a J_bᵀ r_b, so the kernel block that actually drives
        term a is K_aa / N_a. Dividing by N_a therefore puts the terms on the scale the
        optimizer sees. On the harmonic IVP this gives λ_ic ≈ (tr K_pde/50)/tr K_ic ~ 4e2
        and a good fit (docs/design.md §7: rel-L2 1.6e-3…4e-3 at 2000 steps).
    ``"sum"``: t_a = tr K_a, the paper's form — its losses (and released code) sum over points
        relative to the kernel, so with mean losses this over-weights the small terms by
        N_pde/N_ic (λ_ic ~ 2e4 on the harmonic IVP; rel-L2 ≈ 0.6 at 2000 steps).

    Parameters
    ----------
    every : update period in steps (the paper recomputes every 100–1000 steps).
    normalize : "mean" | "sum".
    alpha : None (replace λ by the new estimate) or a moving-average rate in (0, 1]:
        λ ← (1 − α) λ + α λ̂ after the first update (the first update sets λ = λ̂).

    A term whose trace is zero or non-finite keeps its previous weight.

    Known failure mode (bench/families.py): the trace ratio measures the Jacobian only and
    grows like ω⁴ on u'' + ω²u = 0 whatever the initial data. With sine-type data
    (u'(0) = ω, an IC loss ω² larger) λ_ic settles at 270–530 at ω = 3π, 4π where 30–100
    works, and the fit fails (rel-L2 0.6–0.86); with cosine data at ω = 4π its λ_ic decays
    during training to 150–250 where ~10³ is needed. Without damping (``alpha=None``) λ jumps
    at every update.

    >>> import pinncore as pc
    >>> from pinncore.weighting import Context
    >>> problem, net = pc.problems.harmonic(), pc.MLP([1, 20, 20, 1], seed=0)
    >>> scheme = NTK(every=100)
    >>> state = scheme.update(scheme.init(problem), 0, Context.evaluate(problem, net))
    >>> lam = scheme.weights(state)
    >>> lam["ic"] > lam["pde"] >= 1.0
    True
    """

    name = "ntk"
    needs_ntk = True

    def __init__(self, every=100, normalize="mean", alpha=None):
        self.every = positive(every, "every", integer=True)
        if normalize not in ("mean", "sum"):
            raise ValueError(f"normalize must be 'mean' or 'sum', got {normalize!r}")
        self.normalize = normalize
        self.alpha = fraction(alpha, "alpha", allow_none=True)
        if self.alpha == 0.0:
            raise ValueError("alpha must be None or in (0, 1], got 0")

    def config(self):
        return {"every": self.every, "normalize": self.normalize, "alpha": self.alpha}

    def init(self, problem):
        return {"weights": {k: 1.0 for k in problem.term_names},
                "n_points": {k: int(problem.n_points[k]) for k in problem.term_names},
                "updates": 0}

    def update(self, state, step, ctx):
        if not self.due(step):
            return state  # nothing changes between updates (and nothing is mutated)
        new = copy_state(state)
        traces = ctx.ntk_traces()
        t = {}
        for k in new["weights"]:
            v = float(traces[k])
            if self.normalize == "mean":
                v = v / new["n_points"][k] if new["n_points"][k] > 0 else float("nan")
            t[k] = v
        good = {k: v for k, v in t.items() if math.isfinite(v) and v > 0}
        total = sum(good.values())
        if not good or not math.isfinite(total):
            return new
        first = new["updates"] == 0
        for k, v in good.items():
            hat = total / v
            if self.alpha is None or first:
                new["weights"][k] = hat
            else:
                new["weights"][k] = (1 - self.alpha) * new["weights"][k] + self.alpha * hat
        new["updates"] = state["updates"] + 1
        return new
