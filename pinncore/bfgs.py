"""Dense quasi-Newton: BFGS, self-scaled BFGS and self-scaled Broyden on the frozen weighted loss.

At PDE-benchmark sizes (P ≈ 1 000–3 000 parameters) a dense inverse-Hessian approximation H
(P × P, float64) costs two O(P²) BLAS passes per iteration — a symmetric matrix–vector product
for the direction d = −H g and a symmetric rank-2 update — which is cheaper than one loss and
gradient evaluation over a few thousand collocation points, and it keeps every curvature pair
since the start, where L-BFGS forgets all but the last m. On PINN losses this is the difference
between 1e-3 and 1e-6 (Urbán, Stefanou & Pons 2025, "Unveiling the optimization process of
physics informed neural networks"; Kiyani et al. 2025; measured on Burgers in docs/design.md).

Variants (one formula, the self-scaled Broyden family in inverse form, as in Urbán et al. 2025):

    H⁺ = (H − H y yᵀ H / (yᵀH y) + φ (yᵀH y) v vᵀ) / τ + ρ s sᵀ,   v = ρ s − H y / (yᵀH y),

with s the step, y the change of gradient, ρ = 1/(yᵀs), b = sᵀB s/(yᵀs) = −α ρ sᵀg (B = H⁻¹,
s = −α H g) and h = ρ yᵀH y:

* ``"bfgs"``: φ = 1, τ = 1 (the classical update, Nocedal & Wright eq. 6.17);
* ``"ssbfgs"`` (default): φ = 1, τ = min(1, 1/b) — Al-Baali's self-scaling (Al-Baali 1998;
  Urbán et al. 2025 "SSBFGS"), which shrinks H whenever the model overestimates the step;
* ``"ssbroyden"``: φ and τ from Al-Baali's self-scaled Broyden rule as in Urbán et al. 2025
  ("SSBroyden", their choice θ = max(θ⁻, min(θ⁺, (1−b)/b)), φ = (1−θ)/(1+aθ), a = bh − 1).

H₀ = I is scaled by the first curvature pair before the first update: H₀ = (yᵀs/yᵀy) I
(Nocedal & Wright eq. 6.20) for BFGS/SSBFGS, τ₀ = h/(1+aθ) for SSBroyden (Urbán et al.).

Storage: H = κ·S with S float64, Fortran-ordered, only its upper triangle in use; S is updated
in place by BLAS (``dsyr2``, and ``dsyr`` for the Broyden term), the scalar κ absorbs τ, so an
iteration allocates nothing of size P × P. The memory is checked before allocating: past
``matrix_budget`` a MemoryError names the size and points to L-BFGS.

Restart rules (H ← I, the next pair rescales it):
  1. the direction is not a finite descent direction (gᵀd ≥ 0: H lost positive definiteness
     to rounding);
  2. the line search finds no acceptable step along the quasi-Newton direction: H is reset and
     the iteration retried once along −g; only when that fails too does the phase end;
  3. the objective changed under the curvature model (``objective_changed``, called when a
     resampler replaces collocation points): H is KEPT — the papers resample every ~500
     iterations and keep it, and the curvature of the PINN loss depends on the points only
     through a Monte-Carlo average — but f and g are re-evaluated on the new points, and if
     the loss there exceeds ``restart_jump`` (1e5) × the loss before the change, the old
     points described a different problem and H is reset. RAD draws where the residual is
     large, so jumps of 5–200× are the normal case: on Burgers (docs/design.md §8) keeping H
     through them reached rel-L2 9.2e-5 after 3 000 iterations where resetting at 10× reached
     7.0e-4; the Helmholtz prototype that kept H through a jump of 28 → 1.5e8 (5e6×) never
     recovered. Rule 2 guards the first step after any change.
A pair with yᵀs ≤ 1e-12·yᵀy is skipped (the strong-Wolfe step guarantees yᵀs > 0 in exact
arithmetic).

NaN-safe like L-BFGS: the shared strong-Wolfe line search (``pinncore.optim.strong_wolfe``)
treats a non-finite trial value as too long a step, so a non-finite point is never accepted.
The state (S, κ and the iterate) is arrays and numbers: it saves and resumes bitwise.

>>> import numpy as np
>>> from pinncore.optim import minimize
>>> A = np.diag([1.0, 10.0, 100.0])
>>> exact = BFGS("bfgs", c1=1e-8, c2=1e-6)     # a tiny c2: (nearly) exact line searches
>>> x, f, it, msg = minimize(lambda x: (0.5 * float(x @ A @ x), A @ x), np.ones(3), 3, optimizer=exact)
>>> bool(f < 1e-20)                            # a quadratic in at most P = 3 steps
True
"""
from __future__ import annotations

import math

import numpy as np
from scipy.linalg import blas

from . import optim as _optim
from . import registry

__all__ = ["BFGS", "VARIANTS", "OneBlasThread", "update_coefficients"]

VARIANTS = ("ssbfgs", "ssbroyden", "bfgs")


class OneBlasThread:
    """A context running SciPy's BLAS on one thread (threadpoolctl, when installed; else a no-op).

    >>> with OneBlasThread():
    ...     pass

    Why: the two BLAS calls of an iteration are level-2 (memory-bound, 8·P² bytes streamed);
    a second thread gains nothing, and an OpenBLAS pool whose threads find no free core spins:
    measured here (P = 921, load 6 on 2 cores) dsymv took 19.8 ms on 2 threads and 0.16 ms on
    one. The controller is built once; entering its limit costs ~3 µs."""

    _controller = None

    def __enter__(self):
        cls = type(self)
        if cls._controller is None:
            try:
                from threadpoolctl import ThreadpoolController
                cls._controller = ThreadpoolController()
            except ImportError:
                cls._controller = False
        self._ctx = cls._controller.limit(limits=1, user_api="blas") if cls._controller else None
        if self._ctx is not None:
            self._ctx.__enter__()
        return self

    def __exit__(self, *exc):
        if self._ctx is not None:
            self._ctx.__exit__(*exc)
        return False


def _fmt_bytes(n):
    for unit, k in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= k:
            return f"{n / k:.1f} {unit}"
    return f"{int(n)} B"


def update_coefficients(variant, ys, yy, q, sg, alpha, n, first):
    """(κ-factor, 1/τ, φ) of the self-scaled Broyden family for one curvature pair.

    ys = yᵀs, yy = yᵀy, q = yᵀH y (with the H before any first-pair scaling), sg = sᵀg (g the
    gradient at the start of the step), alpha the step length, n = P, first: H is still the
    unscaled identity. The factor multiplies H before the update (the first-pair scaling);
    then H⁺ = (H − Hy yᵀH/q + φ q v vᵀ)/τ + ρ s sᵀ with q recomputed after the factor.

    >>> update_coefficients("bfgs", 2.0, 4.0, 4.0, -1.0, 1.0, 3, False)
    (1.0, 1.0, 1.0)
    >>> update_coefficients("ssbfgs", 2.0, 4.0, 4.0, -4.0, 1.0, 3, False)   # b = 2: τ = 1/2
    (1.0, 2.0, 1.0)
    """
    rho = 1.0 / ys
    if variant != "ssbroyden":
        if first:   # Nocedal & Wright eq. 6.20: H0 = (yᵀs / yᵀy) I, then the plain update
            return ys / yy, 1.0, 1.0
        b = -alpha * rho * sg
        tau = min(1.0, 1.0 / b) if variant == "ssbfgs" and b > 0 else 1.0
        return 1.0, 1.0 / tau, 1.0
    h, b = q * rho, -alpha * rho * sg
    a = b * h - 1.0
    if not (a > 1e-12 and b > 0 and math.isfinite(a)):
        # B and H agree along the pair (a = 0 by Cauchy–Schwarz) or rounding broke b > 0: the
        # Broyden parameter is immaterial there; use the BFGS member, self-scaled.
        return 1.0, 1.0 / (min(1.0, 1.0 / b) if b > 0 else 1.0), 1.0
    # Urbán, Stefanou & Pons 2025 (SSBroyden): θ⁻ keeps H⁺ positive definite, θ⁺ bounds the
    # update, (1 − b)/b is the self-scaled SR1 choice they clip between them.
    rho_m = min(1.0, h * (1.0 - math.sqrt(a / (1.0 + a))))
    theta_m = (rho_m - 1.0) / a
    theta_p = 1.0 / rho_m if rho_m > 0 else math.inf
    theta = max(theta_m, min(theta_p, (1.0 - b) / b))
    sigma = 1.0 + theta * a
    if first:
        tau = h / sigma
    else:
        rho_k = min(1.0, 1.0 / b)
        sigma_n = abs(sigma) ** (1.0 / (1.0 - n)) if n > 1 else 1.0
        tau = min(rho_k * sigma_n, sigma) if theta <= 0 else rho_k * min(sigma_n, 1.0 / theta)
    phi = (1.0 - theta) / sigma
    if not (math.isfinite(tau) and tau > 0 and math.isfinite(phi)):
        return 1.0, 1.0, 1.0
    return 1.0, 1.0 / tau, phi


@registry.optimizers.register(
    "bfgs", description="Dense quasi-Newton (self-scaled BFGS by default; SSBroyden, BFGS) with a "
                        "strong-Wolfe line search, on the frozen weighted loss",
    bounds={"variant": VARIANTS, "matrix_budget": (1, None), "restart_jump": (1.0, None), "max_evals": (1, None),
            "c1": (0.0, 1.0), "c2": (0.0, 1.0)},
    adapts_weights=False, follows=True, second_order=True)
class BFGS(_optim.Optimizer):
    """Dense (self-scaled) quasi-Newton on the frozen weighted loss (module docstring).

    variant : "ssbfgs" (default), "ssbroyden" or "bfgs".
    matrix_budget : bytes the P × P matrix may take (default 2 GB, P ≤ 15 811).
    restart_jump : after the collocation points change, reset H when the loss on the new
        points exceeds this multiple of the loss before (rule 3).
    max_evals : loss-and-gradient evaluations one line search may spend.
    c1, c2 : the strong Wolfe constants (sufficient decrease, curvature; N&W eq. 3.7). A tiny c2
        makes the search nearly exact (plain BFGS then ends a quadratic in at most P steps).

    ``step`` ends the phase (returns a reason) at a zero gradient, when neither the
    quasi-Newton direction nor −g gives an acceptable step, or when progress stalls.

    >>> opt = BFGS()
    >>> opt.name, opt.variant, opt.adapts_weights
    ('bfgs', 'ssbfgs', False)
    """

    name = "bfgs"
    adapts_weights = False
    cost = 2.5   # an iteration ≈ 1.6 evaluations (bench/bfgs_iteration.py: 1.59×), line searches vary

    def __init__(self, variant="ssbfgs", matrix_budget=2 * 10 ** 9, restart_jump=1e5, max_evals=25, c1=1e-4, c2=0.9):
        if not isinstance(variant, str) or variant.lower() not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        for nm, v, lo in (("matrix_budget", matrix_budget, 1.0), ("restart_jump", restart_jump, 1.0)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < lo:
                raise ValueError(f"{nm} must be a finite number >= {lo:g}, got {v!r}")
        if isinstance(max_evals, bool) or not isinstance(max_evals, (int, np.integer)) or max_evals < 1:
            raise ValueError(f"max_evals must be an integer >= 1, got {max_evals!r}")
        if not (isinstance(c1, (int, float)) and isinstance(c2, (int, float)) and 0 < c1 < c2 < 1):
            raise ValueError(f"c1, c2 (the Wolfe constants) must satisfy 0 < c1 < c2 < 1, got {c1!r}, {c2!r}")
        self.c1, self.c2 = float(c1), float(c2)
        self.variant, self.matrix_budget = variant.lower(), float(matrix_budget)
        self.restart_jump, self.max_evals = float(restart_jump), int(max_evals)

    def config(self):
        return {"variant": self.variant, "matrix_budget": self.matrix_budget, "restart_jump": self.restart_jump,
                "max_evals": self.max_evals, "c1": self.c1, "c2": self.c2}

    def matrix_bytes(self, n):
        """Bytes of the P × P float64 matrix for ``n`` parameters."""
        return 8 * int(n) * int(n)

    def init(self, params):
        """Fresh state: H = I (unscaled until the first pair), no iterate yet. Raises
        MemoryError before allocating when the matrix would exceed ``matrix_budget``."""
        n = int(np.asarray(params).size)
        need = self.matrix_bytes(n)
        if need > self.matrix_budget:
            raise MemoryError(
                f"BFGS keeps a dense {n} x {n} float64 inverse Hessian: {_fmt_bytes(need)} for P = {n} parameters, "
                f"over matrix_budget = {_fmt_bytes(self.matrix_budget)}; use optimizer='lbfgs' (L-BFGS stores "
                f"2·m·P numbers) or a smaller network, or raise matrix_budget")
        S = np.zeros((n, n), order="F")
        np.fill_diagonal(S, 1.0)
        return {"x": np.zeros(n), "f": 0.0, "g": np.zeros(n), "valid": False, "H": S, "scale": 1.0,
                "pairs": 0, "restarts": 0, "changed": False, "f_before": 0.0}

    def check_state(self, state, n, dtype=None):
        super().check_state(state, n)
        for k, shape in (("x", (n,)), ("g", (n,)), ("H", (n, n))):
            v = state.get(k)
            if not (isinstance(v, np.ndarray) and v.shape == shape and v.dtype == np.float64 and np.isfinite(v).all()):
                raise ValueError(f"optimizer {k} must be a finite float64 array of shape {shape}")
        for k in ("f", "scale", "f_before"):
            v = state.get(k)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"optimizer {k} must be a finite number")
        if not state["scale"] > 0:
            raise ValueError("optimizer scale must be > 0")
        for k in ("pairs", "restarts"):
            v = state.get(k)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"optimizer {k} must be an int >= 0")
        for k in ("valid", "changed"):
            if not isinstance(state.get(k), bool):
                raise ValueError(f"optimizer {k} must be a bool")

    def objective_changed(self, state):
        """The collocation points changed (a resampler): keep H, re-evaluate f and g at the next
        step, and apply restart rule 3 there (module docstring)."""
        if state["valid"]:
            state.update(changed=True, f_before=float(state["f"]), valid=False)

    # -- the iteration ------------------------------------------------------------------
    def _reset(self, state):
        """Restart: H ← I, the next curvature pair rescales it."""
        S = state["H"]
        S.fill(0.0)
        np.fill_diagonal(S, 1.0)
        state.update(scale=1.0, pairs=0, restarts=state["restarts"] + 1)

    def _sync(self, params, state, objective, evaluation):
        """Make (x, f, g) the run's current point; applies restart rule 3 after a change."""
        if not state["H"].flags.f_contiguous:   # a loaded state: BLAS updates need Fortran order
            state["H"] = np.asfortranarray(state["H"])
        if state["valid"] and np.array_equal(state["x"].astype(params.dtype), params):
            return
        L, G, _ = evaluation
        f = float(np.dot(objective.weights, L))
        state.update(x=params.astype(np.float64), f=f, valid=True,
                     g=np.asarray(objective.weights @ G.astype(np.float64), dtype=np.float64))
        if state["changed"]:
            if not f <= self.restart_jump * max(state["f_before"], 1e-300) and state["pairs"]:
                self._reset(state)
            state["changed"] = False

    def _hv(self, state, v):
        """H v = κ S v (symmetric, upper triangle)."""
        return blas.dsymv(state["scale"], state["H"], v, lower=0)

    def _search(self, state, objective, d, alpha0):
        x, f, g = state["x"], state["f"], state["g"]
        return _optim.strong_wolfe(objective.value_and_gradient, x, f, g, d, alpha0, self.c1, self.c2, self.max_evals)

    def step(self, params, state, objective, evaluation):
        """One iteration in place (restart rules in the module docstring); None or the reason to stop."""
        with OneBlasThread():
            return self._step(params, state, objective, evaluation)

    def _step(self, params, state, objective, evaluation):
        self._sync(params, state, objective, evaluation)
        x, f, g = state["x"], state["f"], state["g"]
        gnorm = float(np.linalg.norm(g))
        if gnorm == 0:
            return "converged: zero gradient"
        d = -self._hv(state, g)
        if not (float(g @ d) < 0 and np.isfinite(d).all()):     # rule 1
            self._reset(state)
            d = -g
        alpha, f_new, g_new, _ = self._search(state, objective, d, 1.0 if state["pairs"] else min(1.0, 1.0 / gnorm))
        if alpha is None and state["pairs"]:                       # rule 2: retry along −g
            self._reset(state)
            d = -g
            alpha, f_new, g_new, _ = self._search(state, objective, d, min(1.0, 1.0 / gnorm))
        if alpha is None:
            params[...] = x.astype(params.dtype)
            return "stopped: the line search found no acceptable (finite, decreasing) step"
        s = alpha * d
        g_new = np.asarray(g_new, dtype=np.float64)
        self._update(state, s, g_new - g, alpha, g)
        stalled = f - f_new <= 1e-15 * max(abs(f), 1e-300) and float(np.abs(s).max()) == 0
        state.update(x=x + s, f=float(f_new), g=g_new)
        params[...] = state["x"].astype(params.dtype)
        return "stopped: no progress" if stalled else None

    def _update(self, state, s, y, alpha, g):
        """H⁺ from the pair (s, y), in place: S ← S + (1/κ⁺)(A ssᵀ + B(s Hyᵀ + Hy sᵀ) + C HyHyᵀ),
        κ⁺ = κ/τ — the expansion of the formula in the module docstring, with
        A = φqρ²/τ + ρ, B = −φρ/τ, C = (φ − 1)/(qτ)."""
        ys, yy = float(y @ s), float(y @ y)
        if not (ys > 1e-12 * yy and math.isfinite(ys) and yy > 0):
            return   # curvature condition fails: the pair would make H indefinite
        first = state["pairs"] == 0
        Hy = self._hv(state, y)
        q = float(y @ Hy)
        factor, inv_tau, phi = update_coefficients(self.variant, ys, yy, q, float(s @ g), alpha, s.size, first)
        if factor != 1.0:
            state["scale"] *= factor
            Hy *= factor
            q *= factor
        rho = 1.0 / ys
        A, B, C = phi * q * rho * rho * inv_tau + rho, -phi * rho * inv_tau, (phi - 1.0) * inv_tau / q
        kappa = state["scale"] * inv_tau
        S = state["H"]
        blas.dsyr2(1.0 / kappa, s, 0.5 * A * s + B * Hy, lower=0, a=S, overwrite_a=1)
        if C != 0.0:
            blas.dsyr(C / kappa, Hy, lower=0, a=S, overwrite_a=1)
        if not 1e-150 < kappa < 1e150:   # fold an extreme scale back into S (rare)
            S *= kappa
            kappa = 1.0
        state["scale"], state["pairs"] = kappa, state["pairs"] + 1


_optim.register("bfgs", BFGS)
