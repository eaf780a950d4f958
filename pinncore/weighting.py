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

The interface, ``Context`` and ``Fixed`` are in weighting_base; the schemes in weighting_gradient
(GradNorm, NTK), weighting_adaptive (SelfAdaptive) and weighting_balance (ReLoBRaLo, Balanced).
This module gathers them (``from pinncore.weighting import X`` keeps working) and looks them up.

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

from . import registry
# Import order is registration order: names() lists fixed, gradnorm, ntk, selfadaptive, relobralo, balanced.
from .weighting_base import (Context, Fixed, StepContext, Weighting, copy_state, unweighted_losses, weight_blocks,
                             weight_mask)
from .weighting_gradient import NTK, GradNorm
from .weighting_adaptive import SelfAdaptive
from .weighting_balance import Balanced, ReLoBRaLo

__all__ = [
    "Weighting", "Context", "StepContext", "Fixed", "GradNorm", "NTK", "SelfAdaptive", "ReLoBRaLo", "Balanced",
    "get", "default", "names", "restore", "weight_mask", "weight_blocks", "unweighted_losses",
]


_blocks = weight_blocks   # the former private names (tests)
_copy = copy_state


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
