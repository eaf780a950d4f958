"""Loss-balancing schemes: ReLoBRaLo (relative loss balancing with random look-back, Bischof &
Kraus 2021) and Balanced (gradient-norm balancing, log-damped, floored; the default scheme).

>>> Balanced(every=20)
Balanced(alpha=0.1, every=20, reference='pde', max_weight=1000000.0, floor='initial')
"""
from __future__ import annotations

import math

import numpy as np

from . import registry
from .weighting_base import Weighting, balancing_settings, check_known, copy_state, fraction, positive

__all__ = ["ReLoBRaLo", "Balanced"]


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
        self.alpha = fraction(alpha, "alpha")
        self.temperature = positive(temperature, "temperature")
        self.rho = fraction(rho, "rho")
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
        new = copy_state(state)
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
        balancing_settings(self, alpha, every, reference, max_weight)
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
                check_known([ref], problem, "Balanced reference")
            ref = problem.term_names[0]
        names = problem.term_names
        return {"weights": {k: 1.0 for k in names}, "reference": ref, "floors": {k: 0.0 for k in names},
                "updates": 0}

    def _floor(self, hat):
        if self.floor == "initial":
            return max(1.0, hat)
        return 1.0 if self.floor == "one" else 1.0 / self.max_weight

    def update(self, state, step, ctx):
        if not self.due(step):
            return state  # nothing changes between updates (and nothing is mutated)
        ref = state["reference"]
        with np.errstate(over="ignore", invalid="ignore"):   # an overflowing norm is skipped below
            norms = {k: float(np.linalg.norm(np.asarray(ctx.grads[k], dtype=np.float64))) for k in state["weights"]}
        num = norms[ref]
        if not (math.isfinite(num) and num > 0):
            return state
        new = copy_state(state)
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
