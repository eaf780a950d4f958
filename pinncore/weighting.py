"""Loss-weighting schemes: (init, update) pairs with explicit, serialisable state.

A PINN loss is L(θ) = Σ_a λ_a L_a(θ) (docs/design.md §1), optionally with per-point weights inside a
term, L_a = Σ_c mean_i(w_i r_c,i²). A weighting scheme chooses the λ_a (and/or the w_i) while
training. Like an optax transform it is a small object with no mutable attributes; everything
that changes lives in a ``state`` dict whose leaves are Python scalars/strings, lists and
float64/int64 arrays, so ``pinncore.io.save`` stores it without pickle::

    state = scheme.init(problem)                 # validates term names against the problem
    for step in range(steps):
        ctx = Context(...)                       # losses/grads at the current parameters
        state = scheme.update(state, step, ctx)  # BEFORE the optimizer step; returns a new dict
        lam = scheme.weights(state)              # {term: λ_a}
        w = scheme.point_weights(state)          # {term: (N_a,) w_i} or None

Schemes
-------
``Fixed``        hand-tuned λ_a.
``GradNorm``     learning-rate annealing, Wang, Teng & Perdikaris 2021 (eq. 40–41).
``NTK``          NTK-trace weights, Wang, Yu & Perdikaris 2022 (Algorithm 1).
``SelfAdaptive`` per-point weights trained by gradient ascent, McClenny & Braga-Neto 2023.
``ReLoBRaLo``    relative loss balancing with random look-back, Bischof & Kraus 2021.
``Balanced``     L2 gradient-norm balancing, log-damped, floored at the step-0 balance (the default).

Every scheme registers beside its definition in ``pinncore.registry.schemes`` (with its
aliases, parameter bounds and the ``adapts`` / ``reports_weights`` flags); ``get(name, **kw)``
builds one by name from there ("fixed", "gradnorm", "ntk", "selfadaptive"/"sa", "relobralo",
"balanced", and any scheme registered later).

Example
-------
>>> import pinncore as pc
>>> from pinncore.weighting import Context, GradNorm
>>> problem, net = pc.problems.harmonic(), pc.MLP([1, 20, 20, 1], seed=0)
>>> scheme = GradNorm(every=1)
>>> state = scheme.init(problem)
>>> state = scheme.update(state, 0, Context.evaluate(problem, net))
>>> lam = scheme.weights(state)
>>> lam["pde"], lam["ic"] > 1.0
(1.0, True)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, Optional

import numpy as np

from . import registry
from .layout import Layout
from .lowering import term_loss

__all__ = [
    "Weighting", "Context", "StepContext", "Fixed", "GradNorm", "NTK", "SelfAdaptive", "ReLoBRaLo", "Balanced",
    "get", "default", "names", "restore", "weight_mask", "weight_blocks", "unweighted_losses",
]


# ------------------------------------------------------------------------------ helpers

def unweighted_losses(residuals):
    """L_a = Σ_c mean_i r_c,i² for each term's (C_a, N_a) residual array (0 for no points):
    the losses a scheme sees even when per-point weights change what is optimised.

    >>> unweighted_losses([np.array([[1.0, 3.0]]), np.zeros((2, 0))]).tolist()
    [5.0, 0.0]
    """
    return np.array([term_loss(r) for r in residuals])


def weight_mask(net_or_layers):
    """Boolean mask over the flat parameter vector: True on weight-matrix entries.

    The layout is the network's (docs/design.md §4): per layer W_l (out×in, row-major), then b_l.
    Accepts a ``pc.MLP`` or its list of layer widths.

    >>> weight_mask([1, 2, 1]).astype(int).tolist()
    [1, 1, 0, 0, 1, 1, 0]
    """
    layout = getattr(net_or_layers, "layout", None)
    return (layout if layout is not None else Layout(net_or_layers)).weight_mask()


def weight_blocks(mask):
    """(start, stop) of each contiguous run of True in ``mask`` — one per weight matrix."""
    m = np.asarray(mask, dtype=bool).ravel()
    edges = np.diff(np.concatenate(([0], m.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


_blocks = weight_blocks   # the former private name (tests)


def _check_known(names, problem, what):
    """ValueError naming the unknown term names and listing the problem's terms."""
    unknown = [n for n in names if n not in problem.term_names]
    if unknown:
        raise ValueError(f"{what} names unknown term(s) {unknown}; the problem's terms are {problem.term_names}")


def _float(value, what):
    """float(value), or a ValueError naming ``what`` for an int beyond the float range (10**400)."""
    try:
        return float(value)
    except OverflowError:
        raise ValueError(f"{what} must be a finite number, got an int of {len(str(abs(int(value))))} digits") from None


def _number(value, what):
    """A finite, non-negative Python float from ``value`` or a ValueError naming ``what``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{what} must be a number, got {value!r}")
    v = _float(value, what)
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{what} must be finite and >= 0, got {v!r}")
    return v


def _positive(value, what, integer=False):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{what} must be a positive number, got {value!r}")
    if integer and int(value) != value:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    if not (math.isfinite(_float(value, what)) and value > 0):
        raise ValueError(f"{what} must be positive, got {value!r}")
    return int(value) if integer else float(value)


def _fraction(value, what, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not 0.0 <= _float(value, what) <= 1.0:
        raise ValueError(f"{what} must be a number in [0, 1], got {value!r}")
    return float(value)


@dataclass
class Context:
    """What the trainer knows at one step, at the current parameters (before the optimizer step).

    losses : {term: L_a} UNWEIGHTED per-term losses Σ_c mean_i r² (independent of point weights).
    grads : {term: ∇θ L_a} flat float arrays shaped like ``net.params``, of each term's loss as
        optimised (with per-point weights if the scheme sets any; without λ_a).
    weight_mask : bool array like ``net.params``: True on weight-matrix entries, False on biases.
    residuals : {term: (C_a, N_a) array} when the scheme ``needs_residuals``, else None.
    ntk_traces : callable () -> {term: tr K_a} (Σ over components and points of ‖∂r/∂θ‖²);
        evaluated lazily, only by the schemes that read it on their update steps.
    lr : the optimizer's current learning rate.

    ``Context.evaluate(problem, net)`` builds one directly (tests, examples, custom loops).
    """

    losses: Dict[str, float]
    grads: Dict[str, np.ndarray]
    weight_mask: np.ndarray
    residuals: Optional[Dict[str, np.ndarray]] = None
    ntk_traces: Optional[Callable[[], Dict[str, float]]] = None
    lr: float = 0.0

    @classmethod
    def evaluate(cls, problem, net, point_weights=None, residuals=True, lr=1e-3):
        """A Context from one kernel pass of ``problem`` at ``net``'s parameters.

        ``point_weights``: optional {term: (N_a,) array} (as returned by a scheme).

        >>> import pinncore as pc
        >>> ctx = Context.evaluate(pc.problems.harmonic(), pc.MLP([1, 10, 1]))
        >>> sorted(ctx.losses), ctx.residuals["ic"].shape
        (['ic', 'pde'], (2, 1))
        """
        names = problem.term_names
        pw = None if point_weights is None else [point_weights.get(k) for k in names]
        want_res = bool(residuals) or pw is not None
        L, G, R = problem.value_and_grad(net, point_weights=pw, residuals=want_res)
        res = dict(zip(names, (np.asarray(r, dtype=np.float64) for r in R))) if want_res else None
        if pw is not None:   # unweighted losses from the residuals
            losses = dict(zip(names, unweighted_losses(R).tolist()))
        else:
            losses = {k: float(v) for k, v in zip(names, L)}
        return cls(losses=losses, grads={k: G[a] for a, k in enumerate(names)}, weight_mask=weight_mask(net),
                   residuals=res if residuals else None, ntk_traces=lambda: problem.ntk_traces(net), lr=float(lr))


class StepContext:
    """The run's per-step ``Context``: the same attributes, each built on first access (most
    steps of most schemes read nothing, and the run must stay a few microseconds per step).

    names : term names; L (T,) losses as optimised, G (T, P) gradients, R residual list or
    None; point_weighted : whether L carries per-point weights (then ``losses`` come from R);
    ntk_traces : callable; lr : callable () -> the optimizer's current learning rate.

    >>> ctx = StepContext(["pde"], np.array([2.0]), np.ones((1, 3)), None, None, dict, lambda: 1e-3)
    >>> ctx.losses, ctx.lr
    ({'pde': 2.0}, 0.001)
    """

    __slots__ = ("names", "_L", "_G", "_R", "_pw", "weight_mask", "ntk_traces", "_lr", "_cache")

    def __init__(self, names, L, G, R, weight_mask, ntk_traces, lr, point_weighted=False):
        self.names, self._L, self._G, self._R, self._pw = names, L, G, R, point_weighted
        self.weight_mask, self.ntk_traces, self._lr, self._cache = weight_mask, ntk_traces, lr, {}

    def _get(self, key, build):
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    @property
    def losses(self):
        L = unweighted_losses(self._R) if self._pw and self._R is not None else self._L
        return self._get("losses", lambda: dict(zip(self.names, np.asarray(L, dtype=np.float64).tolist())))

    @property
    def grads(self):
        return self._get("grads", lambda: dict(zip(self.names, self._G)))

    @property
    def residuals(self):
        if self._R is None:
            return None
        return self._get("residuals", lambda: dict(zip(self.names, self._R)))

    @property
    def lr(self):
        return self._get("lr", self._lr)


# ------------------------------------------------------------------------------ base

class Weighting:
    """Base class of the weighting schemes: ``init``, ``weights``, ``point_weights``, ``update``.

    Subclasses keep hyper-parameters as attributes (never changed after construction) and all
    evolving quantities in the state dict. ``update`` never mutates the state it is given.
    """

    static = False            # True: the weights never change (the run skips ``update``)
    reports_weights = False   # True: ``reported_weights`` is the scheme's own summary (logged as λ)
    needs_ntk = False         # reads ctx.ntk_traces() on its update steps (observers that replay
    needs_residuals = False   # schemes, like the audit, compute the traces only when one needs them)
    name = "weighting"

    def init(self, problem) -> dict:
        """Initial state for ``problem`` (validates term names). Default: all λ_a = 1."""
        return {"weights": {k: 1.0 for k in problem.term_names}}

    def weights(self, state) -> Dict[str, float]:
        """{term: λ_a} (finite, >= 0)."""
        return dict(state["weights"])

    def point_weights(self, state) -> Optional[Dict[str, np.ndarray]]:
        """{term: (N_a,) float64 per-point weights} or None (no per-point weights)."""
        return None

    def reported_weights(self, state) -> Dict[str, float]:
        """{term: λ} as logged; default ``weights(state)`` (SelfAdaptive: mean point weight)."""
        return self.weights(state)

    def config(self) -> dict:
        """The constructor arguments (JSON-like), so ``type(self)(**config)`` rebuilds the scheme;
        saved with the training state so that a resumed run uses the same settings."""
        return {}

    def due(self, step: int) -> bool:
        """Whether ``update`` at ``step`` may change the state. The run calls ``update`` (and
        builds that step's context) only on due steps; a periodic scheme says False between its
        updates. Default: every step.

        >>> Balanced(every=10).due(20), Balanced(every=10).due(21), Weighting().due(21)
        (True, False, True)
        """
        return True

    def update(self, state, step: int, ctx: Context) -> dict:
        """New state after seeing ``ctx`` at ``step`` (counted from 0). Never mutates ``state``;
        a scheme whose state cannot change may return it as is. Default: an unchanged copy."""
        return _copy(state)

    def __repr__(self):
        items = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({items})"


def _copy(tree):
    """A deep copy of a state tree (dicts, lists, arrays, scalars)."""
    if isinstance(tree, dict):
        return {k: _copy(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_copy(v) for v in tree]
    if isinstance(tree, np.ndarray):
        return tree.copy()
    return tree


# ------------------------------------------------------------------------------ Fixed

@registry.schemes.register("fixed", description="hand-tuned constant weights λ (unset terms 1)")
class Fixed(Weighting):
    """Hand-tuned constant weights λ_a; unspecified terms get 1.

    λ_a is constant: L = Σ_a λ_a L_a. Known failure mode: the right λ moves with the problem
    — on the oscillator family λ_ic = 100 fits sine-type data at every ω but not cosine data
    at ω = 4π (needs ~10³), and the heat family wants λ ≈ 10 (λ = 100 fails half of it).

    ``Fixed({"ic": 100.0})`` or ``Fixed(ic=100.0)``. Negative, non-finite or non-numeric
    weights raise ValueError at construction (naming the term); names the problem lacks raise
    ValueError at ``init``. On the harmonic IVP, λ_ic ≈ 1e2 recovers cos(2πt) while λ_ic = 1
    converges to u ≈ 0 (docs/design.md §7).

    >>> import pinncore as pc
    >>> scheme = Fixed({"ic": 100.0})
    >>> scheme.weights(scheme.init(pc.problems.harmonic()))
    {'pde': 1.0, 'ic': 100.0}
    """

    name = "fixed"
    static = True

    def __init__(self, weights=None, **kw):
        if weights is not None and not isinstance(weights, dict):
            raise TypeError(f"weights must be a dict term -> weight, got {type(weights).__name__}")
        merged = dict(weights or {})
        clash = set(merged) & set(kw)
        if clash:
            raise ValueError(f"weight(s) for {sorted(clash)} given twice (dict and keyword)")
        merged.update(kw)
        self.fixed = {}
        for k, v in merged.items():
            if not isinstance(k, str):
                raise ValueError(f"weight keys must be term names (str), got {k!r}")
            self.fixed[k] = _number(v, f"weight for term {k!r}")

    def init(self, problem):
        _check_known(self.fixed, problem, "Fixed weights")
        return {"weights": {k: self.fixed.get(k, 1.0) for k in problem.term_names}}

    def update(self, state, step, ctx):
        """Constant weights: the state is returned as is (not copied, never mutated)."""
        return state

    def config(self):
        return {"weights": dict(self.fixed)}


# ------------------------------------------------------------------------------ GradNorm

def _balancing_settings(scheme, alpha, every, reference, max_weight):
    """The checked settings the gradient-balancing schemes share (GradNorm, Balanced)."""
    a = _fraction(alpha, "alpha")
    if a == 0.0:
        raise ValueError("alpha must be in (0, 1], got 0")
    scheme.alpha = a
    scheme.every = _positive(every, "every", integer=True)
    if not isinstance(reference, str):
        raise ValueError(f"reference must be a term name, got {reference!r}")
    scheme.reference = reference
    scheme.max_weight = _positive(max_weight, "max_weight")
    if scheme.max_weight < 1.0:
        raise ValueError(f"max_weight must be >= 1, got {max_weight!r}")


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
        _balancing_settings(self, alpha, every, reference, max_weight)
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
                _check_known([ref], problem, "GradNorm reference")
            ref = problem.term_names[0]
        return {"weights": {k: 1.0 for k in problem.term_names}, "reference": ref}

    def _stats(self, g, mask, blocks):
        """(max|g|, mean|g|) over the selected parameters (mean of per-layer means if blocks)."""
        a = np.abs(np.asarray(g, dtype=np.float64))
        if not self.weights_only:
            return float(a.max()), float(a.mean())
        sel = a[mask]
        return float(sel.max()), float(np.mean([a[s:e].mean() for s, e in blocks]))

    def due(self, step):
        return step % self.every == 0   # update() returns the state unchanged in between

    def update(self, state, step, ctx):
        if step % self.every:
            return state  # nothing changes between updates (and nothing is mutated)
        new = _copy(state)
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
        self.every = _positive(every, "every", integer=True)
        if normalize not in ("mean", "sum"):
            raise ValueError(f"normalize must be 'mean' or 'sum', got {normalize!r}")
        self.normalize = normalize
        self.alpha = _fraction(alpha, "alpha", allow_none=True)
        if self.alpha == 0.0:
            raise ValueError("alpha must be None or in (0, 1], got 0")

    def config(self):
        return {"every": self.every, "normalize": self.normalize, "alpha": self.alpha}

    def init(self, problem):
        return {"weights": {k: 1.0 for k in problem.term_names},
                "n_points": {k: int(problem.n_points[k]) for k in problem.term_names},
                "updates": 0}

    def due(self, step):
        return step % self.every == 0   # update() returns the state unchanged in between

    def update(self, state, step, ctx):
        if step % self.every:
            return state  # nothing changes between updates (and nothing is mutated)
        new = _copy(state)
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
        self.lr = _positive(lr, "lr")
        if mask not in self._MASKS:
            raise ValueError(f"mask must be one of {list(self._MASKS)}, got {mask!r}")
        self.mask = mask
        if isinstance(init, dict):
            self.init_value = {k: _number(v, f"init for term {k!r}") for k, v in init.items()}
        else:
            self.init_value = _number(init, "init")
        if terms is not None:
            if isinstance(terms, str):
                terms = [terms]
            terms = list(terms)
            if not all(isinstance(k, str) for k in terms):
                raise ValueError(f"terms must be a list of term names, got {terms!r}")
        self.terms = terms
        for what, b in (("beta1", beta1), ("beta2", beta2)):
            if _fraction(b, what) == 1.0:
                raise ValueError(f"{what} must be in [0, 1), got {b!r}")
        self.beta1, self.beta2 = float(beta1), float(beta2)
        self.eps = _positive(eps, "eps")

    def config(self):
        init = dict(self.init_value) if isinstance(self.init_value, dict) else self.init_value
        return {"lr": self.lr, "mask": self.mask, "init": init, "terms": self.terms, "beta1": self.beta1,
                "beta2": self.beta2, "eps": self.eps}

    def init(self, problem):
        adapted = problem.term_names if self.terms is None else self.terms
        _check_known(adapted, problem, "SelfAdaptive terms")
        if isinstance(self.init_value, dict):
            _check_known(self.init_value, problem, "SelfAdaptive init")
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


# ------------------------------------------------------------------------------ ReLoBRaLo

_M64 = (1 << 64) - 1

@registry.schemes.register("relobralo", description="relative loss balancing with random lookback (Bischof & Kraus 2021)",
                           bounds={"alpha": (0.0, 1.0), "temperature": (1e-3, 10.0), "rho": (0.0, 1.0)}, adapts=True)
class ReLoBRaLo(Weighting):
    """Relative Loss Balancing with Random Lookback (Bischof & Kraus 2021).

    R. Bischof, M. Kraus, "Multi-objective loss balancing for physics-informed deep learning",
    arXiv:2110.09813 (2021), eq. (10)–(12). With m terms and temperature T,

        λ̂_a(t; t') = m · exp(L_a(t) / (T L_a(t'))) / Σ_b exp(L_b(t) / (T L_b(t')))      (10)
        λ_a^hist(t) = ρ λ_a(t−1) + (1 − ρ) λ̂_a(t; 0)                                    (11)
        λ_a(t)      = α λ_a^hist(t) + (1 − α) λ̂_a(t; t−1)                                (12)

    ρ is a Bernoulli draw with expectation ``rho`` (ρ = 0 "looks back" to the initial losses).
    The draw is stateless: ``scheme.draw(step) < rho`` with a counter-based uniform of
    (seed, step), so runs are reproducible and resumable. A term whose loss falls slower than the others (relative to
    t−1 or to step 0) gets more weight; equal relative progress gives λ_a = 1.

    Step 0 records L(0) and keeps λ = 1. The softmax subtracts its maximum; a zero previous
    loss is guarded (0/0 counts as no change, x/0 as a large finite ratio), and steps with
    non-finite losses are skipped.

    Parameters: ``alpha`` (α, default 0.999), ``temperature`` (T, 0.1), ``rho`` (E[ρ], 0.99),
    ``seed`` (0). The defaults are the authors' released code's (github.com/rbischof/
    relative_balancing, ``ReLoBRaLoLoss(alpha=0.999, temperature=0.1, rho=0.99)``).
    pinncore's default E[ρ] was 0.999 before the family benchmark (the value of several
    PyTorch ports); pass ``rho=0.999`` to reproduce it.

    Known failure mode (bench/families.py): the softmax bounds every λ_a by the number of
    terms m, so an imbalance of more than m cannot be corrected at all; on the oscillator
    family (imbalance 10²–10³ at ω ≥ 2π) it behaves like λ_ic ≈ 1 (9 / 24 clean fits).

    >>> import pinncore as pc
    >>> from pinncore.weighting import Context
    >>> problem, net = pc.problems.harmonic(), pc.MLP([1, 20, 20, 1], seed=0)
    >>> scheme = ReLoBRaLo()
    >>> state = scheme.update(scheme.init(problem), 0, Context.evaluate(problem, net))
    >>> scheme.weights(state)
    {'pde': 1.0, 'ic': 1.0}
    """

    name = "relobralo"
    _BIG = 1e12

    def __init__(self, alpha=0.999, temperature=0.1, rho=0.99, seed=0):
        self.alpha = _fraction(alpha, "alpha")
        self.temperature = _positive(temperature, "temperature")
        self.rho = _fraction(rho, "rho")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        self.seed = int(seed)

    def config(self):
        return {"alpha": self.alpha, "temperature": self.temperature, "rho": self.rho, "seed": self.seed}

    def init(self, problem):
        names = problem.term_names
        return {"weights": {k: 1.0 for k in names}, "initial_losses": {k: 0.0 for k in names},
                "previous_losses": {k: 0.0 for k in names}, "started": False}

    def _balance(self, now, then):
        """λ̂(t; t') of eq. (10): m · softmax(L(t) / (T L(t'))), safely. Plain floats: the
        vectors have one entry per term, where NumPy's call overhead would dominate."""
        z = []
        for a, b in zip(now.tolist(), then.tolist()):
            if b > 0:
                q = a / b if a < self._BIG * b else self._BIG     # 1e300/1e-300 -> clipped
            else:
                q = self._BIG if a > 0 else 1.0
            z.append(min(q, self._BIG) / self.temperature)
        top = max(z)
        e = [math.exp(v - top) for v in z]
        total = sum(e)
        return np.array([len(z) * v / total for v in e])

    def draw(self, step):
        """The step's uniform number in [0, 1): splitmix64 of (seed, step) — stateless, so a
        resumed run draws the same ρ (a counter-based generator, as in Salmon et al. 2011,
        "Parallel random numbers: as easy as 1, 2, 3"; ~1 µs instead of a Generator's ~30 µs)."""
        x = (self.seed * 0x9E3779B97F4A7C15 + int(step) + 1) & _M64
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
        return ((x ^ (x >> 31)) >> 11) / 9007199254740992.0

    def update(self, state, step, ctx):
        new = _copy(state)
        names = list(state["weights"])
        now = np.array([float(ctx.losses[k]) for k in names])
        if not np.isfinite(now).all():
            return new
        if not state["started"]:
            new["initial_losses"] = dict(zip(names, now.tolist()))
            new["previous_losses"] = dict(zip(names, now.tolist()))
            new["started"] = True
            return new
        L0 = np.array([state["initial_losses"][k] for k in names])
        Lp = np.array([state["previous_losses"][k] for k in names])
        lam = np.array([state["weights"][k] for k in names])
        rho = 1.0 if self.draw(step) < self.rho else 0.0
        hist = rho * lam + (1 - rho) * self._balance(now, L0)
        lam = self.alpha * hist + (1 - self.alpha) * self._balance(now, Lp)
        new["weights"] = dict(zip(names, lam.tolist()))
        new["previous_losses"] = dict(zip(names, now.tolist()))
        return new


# ------------------------------------------------------------------------------ Balanced

@registry.schemes.register("balanced", description="gradient-norm balancing, log-damped, floored at the step-0 balance (the default)",
                           bounds={"alpha": (1e-3, 1.0), "every": (1, 1000), "max_weight": (1.0, 1e12),
                                   "floor": ("initial", "one", "none")}, adapts=True)
class Balanced(Weighting):
    """Gradient-norm balancing, damped in log space and floored at the step-0 balance.

    The statistic is the course's crisis statistic itself, the L2 norm of each term's gradient
    (Wang, Teng & Perdikaris 2021 balance gradient statistics, eq. 40; Maddu et al. 2022,
    "Inverse Dirichlet weighting enables reliable training of physics informed neural
    networks", Mach. Learn.: Sci. Technol. 3, 015026, balance gradient spreads). Every
    ``every`` steps (from step 0), for each term a other than the reference r (λ_r = 1):

        λ̂_a = ‖∇θ L_r‖₂ / ‖∇θ L_a‖₂                              (equal λ-scaled norms)
        f_a  = max(1, λ̂_a(step 0))                                 (floor, fixed at step 0)
        log λ_a ← (1 − α) log λ_a + α log max(λ̂_a, f_a)            (geometric moving average)

    with λ_a = f_a after the first update, and λ clipped to [1/max_weight, max_weight].

    Why each part (the λ trajectories of the other schemes on bench/families.py):

    * **L2 norms of gradients, not NTK traces.** tr K_a / N_a measures the Jacobian only; on
      u'' + ω²u = 0 it grows like ω⁴ whatever the data, so NTK gives the cosine-type and the
      sine-type (u'(0) = ω) problems the same λ_ic, although the sine-type IC loss is ω²
      larger and needs ~ω² less weight: λ_ic settles at 270–530 on sine-type data at ω = 3π,
      4π and the fit fails (rel-L2 0.6–0.86) where λ_ic = 100 works. The gradient of L_a sees
      both the Jacobian and the residual, and its ratio at step 0 lands in the working range
      of fixed weights on every member of the family.
    * **No square root.** GradNorm's released update has the fixed point λ = √(max|∇L_r| /
      mean|∇L_a|); that under-weights stiff problems (λ_ic ≈ 5–12 at ω = 3π, 4π with cosine
      data, where ≥ 100 is needed: rel-L2 ≈ 1).
    * **Floor at the step-0 balance, and never below the reference.** Balancing is two-sided:
      once a boundary term's gradient outgrows the PDE's (heat, Burgers), plain balancing
      drives its λ far below 1 (0.002) and the solution, which the boundary data select, is
      lost (heat κ = 1: rel-L2 0.66). The imbalance measured before training is the one the
      course's rule calls a crisis; the weight never drops below what cures it, and a
      constraint term is never weighted below the PDE.
    * **Log-space damping** (a geometric mean, as GradNorm's robust mode): one noisy estimate
      multiplies λ by at most (λ̂/λ)^α; α = 0.1 and every = 10 are Wang et al.'s published
      constants (not tuned on the families).

    Known failure mode: when a term's gradient keeps shrinking while its loss is already
    small, λ keeps growing (up to max_weight) — the weighted norms stay balanced, which is the
    intent, but a term that is fitted to round-off can crowd out the others; long runs on
    stiff problems should watch ``<term>_weight`` (or use ``audit=True`` to compare).

    Parameters
    ----------
    alpha : log-space moving-average rate in (0, 1] (0.1). every : update period in steps (10).
    reference : the term whose weight stays 1 (default "pde"; the first term if absent).
    max_weight : upper bound of λ (and 1/max_weight the lower bound).
    floor : "initial" (max(1, step-0 balance), the default), "one" (λ ≥ 1) or "none".

    >>> import pinncore as pc
    >>> from pinncore.weighting import Context
    >>> problem, net = pc.problems.harmonic(), pc.MLP([1, 20, 20, 1], seed=0)
    >>> scheme = Balanced()
    >>> ctx = Context.evaluate(problem, net)
    >>> state = scheme.update(scheme.init(problem), 0, ctx)
    >>> lam = scheme.weights(state)
    >>> g = problem.gradients(net)
    >>> bool(np.isclose(lam["ic"], np.linalg.norm(g["pde"]) / np.linalg.norm(g["ic"])))
    True
    """

    name = "balanced"
    _FLOORS = ("initial", "one", "none")

    def __init__(self, alpha=0.1, every=10, reference="pde", max_weight=1e6, floor="initial"):
        _balancing_settings(self, alpha, every, reference, max_weight)
        if floor not in self._FLOORS:
            raise ValueError(f"floor must be one of {list(self._FLOORS)}, got {floor!r}")
        self.floor = floor

    def config(self):
        return {"alpha": self.alpha, "every": self.every, "reference": self.reference,
                "max_weight": self.max_weight, "floor": self.floor}

    def init(self, problem):
        ref = self.reference
        if ref not in problem.term_names:
            if ref != "pde":
                _check_known([ref], problem, "Balanced reference")
            ref = problem.term_names[0]
        names = problem.term_names
        return {"weights": {k: 1.0 for k in names}, "reference": ref, "floors": {k: 0.0 for k in names},
                "updates": 0}

    def _floor(self, hat):
        if self.floor == "initial":
            return max(1.0, hat)
        return 1.0 if self.floor == "one" else 1.0 / self.max_weight

    def due(self, step):
        return step % self.every == 0   # update() returns the state unchanged in between

    def update(self, state, step, ctx):
        if step % self.every:
            return state  # nothing changes between updates (and nothing is mutated)
        ref = state["reference"]
        with np.errstate(over="ignore", invalid="ignore"):   # an overflowing norm is skipped below
            norms = {k: float(np.linalg.norm(np.asarray(ctx.grads[k], dtype=np.float64))) for k in state["weights"]}
        num = norms[ref]
        if not (math.isfinite(num) and num > 0):
            return state
        new = _copy(state)
        lo, hi = 1.0 / self.max_weight, self.max_weight
        first = state["updates"] == 0
        for k, lam in state["weights"].items():
            if k == ref:
                continue
            den = norms[k]
            if not math.isfinite(den):
                continue
            hat = min(max(num / den, lo), hi) if den > 0 else hi
            if first:
                new["floors"][k] = self._floor(hat)
                new["weights"][k] = min(max(hat, new["floors"][k]), hi)
                continue
            target = max(hat, new["floors"][k])
            log_lam = (1 - self.alpha) * math.log(lam) + self.alpha * math.log(target)
            new["weights"][k] = min(max(math.exp(log_lam), lo), hi)
        new["weights"][ref] = 1.0
        new["updates"] = state["updates"] + 1
        return new


# ------------------------------------------------------------------------------ registry

def default():
    """The scheme ``pc.train`` uses when none is given: ``Balanced()``.

    Chosen by the worst case, not by wins, on problem families (bench/families.py, scored by
    bench/score_schemes.py, tables in bench/README.md "Weighting on problem families"): the
    oscillator u'' + ω²u = 0 over ω ∈ {π, …, 4π} with cosine and sine data, heat and
    advection–diffusion over the coefficient, Poisson and Helmholtz over the frequency and
    Burgers over ν. On the oscillator family (24 fits) Balanced has 21 clean fits (< 5 %),
    median 1.6e-3 and worst 0.49, against 21 / 4.4e-3 / 0.96 for the best fixed λ in
    hindsight (λ_ic = 100) and 15 / 3.5e-3 / 0.86 for the previous default NTK(), whose trace
    ratio overshoots on sine-type data; over all 64 fits it has the most clean fits (51).
    Open gap: one Poisson outlier (0.17) and heat / Burgers worst cases 10–16 % above the best
    fixed λ (bench/README.md).

    >>> default()
    Balanced(alpha=0.1, every=10, reference='pde', max_weight=1000000.0, floor='initial')
    """
    return Balanced()


def names():
    """The registered scheme names (aliases such as "sa" are accepted by ``get`` too).

    >>> names()
    ['fixed', 'gradnorm', 'ntk', 'selfadaptive', 'relobralo', 'balanced']
    """
    return registry.schemes.names()


def get(name, **kw):
    """A weighting scheme by name: "fixed", "gradnorm", "ntk", "selfadaptive" (or "sa"),
    "relobralo", "balanced" or any registered one (case-insensitive; ``registry.schemes``);
    keyword arguments go to the constructor. A Weighting instance is returned as is.

    >>> get("ntk", every=50)
    NTK(every=50, normalize='mean', alpha=None)
    """
    if isinstance(name, Weighting):
        if kw:
            raise ValueError("keyword arguments cannot be applied to an existing Weighting instance")
        return name
    if not isinstance(name, str) or name not in registry.schemes:
        raise ValueError(f"unknown weighting scheme {name!r}; choose one of {registry.schemes.all_names()}")
    return registry.schemes[name].factory(**kw)


def restore(saved_name, config):
    """The scheme a saved state names (its class name, as ``Run.save`` writes it, or a registry
    name), rebuilt with its saved ``config`` — any registered scheme, whatever its class is called.

    >>> restore("NTK", {"every": 50})
    NTK(every=50, normalize='mean', alpha=None)
    """
    for spec in registry.schemes.specs():
        if spec.factory.__name__ == saved_name:
            return spec.factory(**config)
    return get(saved_name, **config)
