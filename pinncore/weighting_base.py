"""The weighting schemes' shared ground: the ``Weighting`` interface, the ``Context`` a scheme's
update sees, the checked-argument helpers every scheme uses, and ``Fixed`` (constant λ_a).

The schemes themselves live beside it (weighting_gradient: GradNorm, NTK; weighting_adaptive:
SelfAdaptive; weighting_balance: ReLoBRaLo, Balanced); ``pinncore.weighting`` gathers them all
and looks them up by name (docs/design.md §1).

>>> import pinncore as pc
>>> scheme = Fixed(ic=10.0)
>>> scheme.weights(scheme.init(pc.problems.harmonic()))
{'pde': 1.0, 'ic': 10.0}
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
    "Weighting", "Context", "StepContext", "Fixed", "weight_mask", "weight_blocks", "unweighted_losses",
    "check_known", "as_float", "number", "positive", "fraction", "copy_state", "balancing_settings",
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
def check_known(names, problem, what):
    """ValueError naming the unknown term names and listing the problem's terms."""
    unknown = [n for n in names if n not in problem.term_names]
    if unknown:
        raise ValueError(f"{what} names unknown term(s) {unknown}; the problem's terms are {problem.term_names}")


def as_float(value, what):
    """float(value), or a ValueError naming ``what`` for an int beyond the float range (10**400)."""
    try:
        return float(value)
    except OverflowError:
        raise ValueError(f"{what} must be a finite number, got an int of {len(str(abs(int(value))))} digits") from None


def number(value, what):
    """A finite, non-negative Python float from ``value`` or a ValueError naming ``what``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{what} must be a number, got {value!r}")
    v = as_float(value, what)
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{what} must be finite and >= 0, got {v!r}")
    return v


def positive(value, what, integer=False):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{what} must be a positive number, got {value!r}")
    if integer and int(value) != value:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    if not (math.isfinite(as_float(value, what)) and value > 0):
        raise ValueError(f"{what} must be positive, got {value!r}")
    return int(value) if integer else float(value)


def fraction(value, what, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not 0.0 <= as_float(value, what) <= 1.0:
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
    every = 1                 # update period in steps (GradNorm, NTK, Balanced: their ``every=``)
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
        updates: steps that are multiples of ``every`` (1: every step).

        >>> from pinncore.weighting import Balanced
        >>> Balanced(every=10).due(20), Balanced(every=10).due(21), Weighting().due(21)
        (True, False, True)
        """
        return step % self.every == 0

    def update(self, state, step: int, ctx: Context) -> dict:
        """New state after seeing ``ctx`` at ``step`` (counted from 0). Never mutates ``state``;
        a scheme whose state cannot change may return it as is. Default: an unchanged copy."""
        return copy_state(state)

    def __repr__(self):
        items = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({items})"


def copy_state(tree):
    """A deep copy of a state tree (dicts, lists, arrays, scalars)."""
    if isinstance(tree, dict):
        return {k: copy_state(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [copy_state(v) for v in tree]
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
            self.fixed[k] = number(v, f"weight for term {k!r}")

    def init(self, problem):
        check_known(self.fixed, problem, "Fixed weights")
        return {"weights": {k: self.fixed.get(k, 1.0) for k in problem.term_names}}

    def update(self, state, step, ctx):
        """Constant weights: the state is returned as is (not copied, never mutated)."""
        return state

    def config(self):
        return {"weights": dict(self.fixed)}



# ------------------------------------------------------------------------------ shared by GradNorm, Balanced

def balancing_settings(scheme, alpha, every, reference, max_weight):
    """The checked settings the gradient-balancing schemes share (GradNorm, Balanced)."""
    a = fraction(alpha, "alpha")
    if a == 0.0:
        raise ValueError("alpha must be in (0, 1], got 0")
    scheme.alpha = a
    scheme.every = positive(every, "every", integer=True)
    if not isinstance(reference, str):
        raise ValueError(f"reference must be a term name, got {reference!r}")
    scheme.reference = reference
    scheme.max_weight = positive(max_weight, "max_weight")
    if scheme.max_weight < 1.0:
        raise ValueError(f"max_weight must be >= 1, got {max_weight!r}")
