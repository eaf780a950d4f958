"""Levenberg–Marquardt on the kernel's exact residual Jacobian.

The weighted PINN loss is a sum of squares, F(θ) = Σ_a λ_a L_a = ‖r(θ)‖² with the stacked
residuals of ``pinncore.jacobian``. Gradient descent follows the largest term's gradient;
a Gauss–Newton step solves for all residuals at once, min_h ‖r + J h‖² + μ‖h‖², so the relative
size of the terms matters far less — the loss-balance crisis mostly dissolves and the attainable
error drops by orders of magnitude.

One iteration (``step``): linearise at θ (r, J from the kernel), then try
h = −(JᵀJ + μI)⁻¹ Jᵀr, accept it when the loss falls, and update μ by Nielsen's gain-ratio rule
(Nielsen 1999; Madsen, Nielsen & Tingleff 2004, "Methods for non-linear least squares
problems", Algorithm 3.16): ρ = (F(θ) − F(θ+h)) / (F(θ) − ‖r + J h‖²);
accepted (ρ > 0): μ ← μ · max(1/3, 1 − (2ρ − 1)³), ν ← 2; rejected: μ ← μ ν, ν ← 2ν.
By default the dense forms add the geodesic acceleration (Transtrum & Sethna 2012): the trial is
h + a/2, a = −(JᵀJ + μI)⁻¹ Jᵀ r_hh with r_hh the second derivative of r along h (finite
differences of residual-only passes), and a trial whose path bends too much (2‖a‖ > 0.75‖h‖)
counts as rejected — measured to cut the seed oscillator's iterations to 1e-6 by 2–5×.
The linear system is solved where it is small:

* residual space, h = −Jᵀ (JJᵀ + μI)⁻¹ r (rows ≤ parameters, e.g. the seed oscillator's 52
  rows against 5 301 parameters): J (rows × P) and JJᵀ (rows²·P flops, BLAS syrk);
* parameter space, (JᵀJ + μI) h = −Jᵀr (rows > parameters, e.g. 10 000 collocation rows
  against 1 000 parameters): the kernel accumulates JᵀJ and Jᵀr over point chunks, one BLAS
  syrk per chunk (``Linearization.normal``, csrc/jacobian.hpp), so J is never held and an
  iteration costs about rows·P² flops plus one P³/3 Cholesky;
* matrix-free Gauss–Newton–CG when neither fits ``memory_budget``: conjugate gradients on
  (JᵀJ + μI) h = −Jᵀr with J v by forward tangents and Jᵀu by the backward sweep.

"auto" picks the form with fewer flops: the Gram product costs rows²·P against rows·P² and
the factorisation rows³/3 against P³/3, so residual space exactly when rows ≤ P — then memory
decides (``memory_budget``), the matrix-free form last. Every dense buffer (J, the Gram matrix,
its Cholesky factor, g, h) is allocated once and reused; a rejected trial re-solves with a
larger μ from the same Gram matrix (no new J); the trial point costs one forward pass, and
when it is accepted its residuals start the next iteration, whose Jacobian pass returns r and
J together.

Cholesky factorisations (SciPy), with an eigendecomposition fallback when the shifted Gram
matrix is not numerically positive definite. Non-finite trial points are rejected, so the
current point is always the best finite one.

Example
-------
>>> import pinncore as pc
>>> result = pc.train(pc.problems.harmonic(), pc.MLP([1, 20, 20, 1], seed=0), optimizer="lm", steps=60,
...                   weighting=pc.Fixed(), warn=False)
>>> result.rel_l2 < 1e-3, str(result.history["phase"][-1])
(True, 'lm')
"""
from __future__ import annotations

import math

import numpy as np
import scipy.linalg
import scipy.linalg.blas
from scipy.linalg.lapack import dpotrf as _potrf
from scipy.linalg.lapack import dpotrs as _potrs

from . import backend
from . import optim as _optim
from .jacobian import ResidualJacobian

__all__ = ["LevenbergMarquardt"]

_SOLVERS = ("auto", "residual", "parameter", "cg")
_GEODESIC_ALPHA = 0.75   # Transtrum & Sethna 2012: accept the accelerated step while 2‖a‖ ≤ α‖h‖


def _fmt_bytes(n):
    for unit, k in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= k:
            return f"{n / k:.1f} {unit}"
    return f"{int(n)} B"


class _DenseLinearization:
    """Wraps an objective that only offers ``residual_jacobian(params) -> (r, J)``."""

    def __init__(self, r, J):
        self.r, self._J = np.asarray(r), np.asarray(J)
        self.jac = None

    def dense(self, out=None):
        return self.r, self._J

    def gram(self, kind="JtJ"):
        J = np.asarray(self._J, dtype=np.float64)
        return (J @ J.T, self._J) if kind == "JJt" else (J.T @ J, J.T @ self.r.astype(np.float64))

    def matvec(self, v):
        return np.asarray(self._J, dtype=np.float64) @ v

    def rmatvec(self, u):
        return np.asarray(self._J, dtype=np.float64).T @ u


class LevenbergMarquardt(_optim.Optimizer):
    """Damped Gauss–Newton (Levenberg–Marquardt) with Nielsen's gain-ratio damping.

    solver : "auto" (residual space when rows <= parameters, parameter space otherwise,
        matrix-free CG when the dense form does not fit ``memory_budget``), "residual",
        "parameter" or "cg".
    memory_budget : bytes the dense solve may use (J and the Gram matrix); default 2 GB.
    tau : initial damping μ0 = tau · max diag(JᵀJ) (Nielsen's τ); ``mu_init`` sets μ0 itself.
    gtol, xtol, ftol, stall_iterations, mu_max : stopping rules — ‖∇F‖∞ <= gtol; step
        ‖h‖ <= xtol (‖θ‖ + xtol); the loss fell by less than ftol·F over ``stall_iterations``
        accepted iterations in a row; μ > mu_max · (initial max diag(JᵀJ)).
    max_trials : damping increases tried within one iteration before it ends unaccepted.
    cg_maxiter, cg_tol : the inner conjugate-gradient solve of the matrix-free form.
    geodesic : add the geodesic acceleration to each dense step (Transtrum & Sethna 2012; the
        matrix-free form takes plain steps): one or two residual-only passes and one re-solve
        per trial, ~1.5x a plain iteration on the seed. Measured (bench/README.md): the seed
        oscillator reaches rel-L2 1e-6 in 39–43 instead of 73–190 iterations and ends near
        1e-9 instead of 1e-7; heat after 500 Adam steps ends 10–40x lower at equal wall time
        in both forms; a small Helmholtz fit lost ~2x at equal time.

    Implements the run's optimizer interface: ``config()``, ``init(params)`` and
    ``step(params, state, objective, evaluation)`` (one iteration, params updated in place;
    returns None or the reason to stop). The state holds floats and ints only.

    >>> lm = LevenbergMarquardt(tau=1e-2)
    >>> lm.config()["tau"], lm.name, lm.adapts_weights
    (0.01, 'lm', False)
    """

    name = "lm"
    adapts_weights = False
    log_every_iteration = True  # a run writes one history row per LM iteration
    default_iterations = 200    # converges in tens of iterations where it converges at all
    cost = 50.0                 # forms the residual Jacobian and solves with it
    forms_jacobian = True

    def __init__(self, solver="auto", memory_budget=2 * 10 ** 9, tau=1e-6, mu_init=None, gtol=1e-12, xtol=1e-15,
                 ftol=1e-10, stall_iterations=20, mu_max=1e15, max_trials=10, cg_maxiter=200, cg_tol=1e-8,
                 geodesic=True):
        if solver not in _SOLVERS:
            raise ValueError(f"solver must be one of {_SOLVERS}, got {solver!r}")
        self.solver = solver
        for name, v, lo in (("memory_budget", memory_budget, 1), ("tau", tau, 0), ("mu_max", mu_max, 0),
                            ("cg_tol", cg_tol, 0)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
        for name, v in (("gtol", gtol), ("xtol", xtol), ("ftol", ftol)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        for name, v in (("stall_iterations", stall_iterations), ("max_trials", max_trials),
                        ("cg_maxiter", cg_maxiter)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        if mu_init is not None and (isinstance(mu_init, bool) or not isinstance(mu_init, (int, float))
                                    or not math.isfinite(mu_init) or mu_init <= 0):
            raise ValueError(f"mu_init must be None or a finite number > 0, got {mu_init!r}")
        self.mu_init = None if mu_init is None else float(mu_init)
        self.memory_budget, self.tau, self.mu_max = float(memory_budget), float(tau), float(mu_max)
        self.gtol, self.xtol, self.ftol = float(gtol), float(xtol), float(ftol)
        self.stall_iterations, self.max_trials = int(stall_iterations), int(max_trials)
        self.cg_maxiter, self.cg_tol = int(cg_maxiter), float(cg_tol)
        if not isinstance(geodesic, (bool, np.bool_)):
            raise ValueError(f"geodesic must be True or False, got {geodesic!r}")
        self.geodesic = bool(geodesic)
        self._cache = None  # (params bytes, linearisation, system): rebuilt identically on resume
        self._jac = None    # (objective key, ResidualJacobian)
        self._ws = None     # _Workspace: the dense buffers, reused while the sizes stay

    def config(self):
        """Constructor arguments (saved with a run; rebuild the optimizer on resume)."""
        return {"solver": self.solver, "memory_budget": self.memory_budget, "tau": self.tau, "mu_init": self.mu_init,
                "gtol": self.gtol,
                "xtol": self.xtol, "ftol": self.ftol, "stall_iterations": self.stall_iterations,
                "mu_max": self.mu_max, "max_trials": self.max_trials, "cg_maxiter": self.cg_maxiter,
                "cg_tol": self.cg_tol, "geodesic": self.geodesic}

    def init(self, params):
        """Fresh state: μ unset (set from the first Jacobian), ν = 2, counters at 0."""
        return {"mu": 0.0, "nu": 2.0, "mu_scale": 0.0, "iteration": 0, "stall": 0, "accepted": 0, "rejected": 0}

    def check_state(self, state, n, dtype=None):
        """ValueError naming the field when ``state`` is not an LM state."""
        super().check_state(state, n)
        for k in ("mu", "nu", "mu_scale"):
            v = state.get(k)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"lm state {k!r} must be a finite number >= 0, got {v!r}")
        for k in ("iteration", "stall", "accepted", "rejected"):
            v = state.get(k)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise ValueError(f"lm state {k!r} must be an integer >= 0, got {v!r}")

    # -- memory -----------------------------------------------------------------------------
    def needs(self, rows, n_params):
        """Bytes each solver needs for ``rows`` residuals and ``n_params`` parameters (float64).

        >>> sorted(LevenbergMarquardt().needs(52, 5301))
        ['cg', 'parameter', 'residual']
        """
        # residual: J, JJᵀ, its factor (and eigenvectors on the fallback); parameter: JᵀJ, its
        # factor (eigenvectors) and the kernel's row chunk (≤ 512 rows, twice for a paired term)
        return {"residual": 8 * (rows * n_params + 3 * rows * rows),
                "parameter": 8 * 3 * n_params * n_params + 8 * 2 * min(rows, 512) * n_params,
                "cg": 8 * 12 * (rows + n_params)}

    def choose_solver(self, rows, n_params):
        """The solver for this size under ``memory_budget``; MemoryError (with the bytes it would
        need) when a requested dense solver does not fit.

        >>> LevenbergMarquardt().choose_solver(52, 5301)
        'residual'
        >>> LevenbergMarquardt(memory_budget=1e6).choose_solver(52, 5301)
        'cg'
        """
        need = self.needs(rows, n_params)
        budget = self.memory_budget
        if self.solver != "auto":
            if need[self.solver] > budget:
                what = {"residual": f"J ({rows} x {n_params}) and JJᵀ ({rows} x {rows})",
                        "parameter": f"JᵀJ ({n_params} x {n_params})", "cg": "the CG vectors"}[self.solver]
                raise MemoryError(
                    f"LevenbergMarquardt(solver={self.solver!r}) needs {_fmt_bytes(need[self.solver])} for {what} in "
                    f"float64, more than memory_budget={_fmt_bytes(budget)}; raise memory_budget or use "
                    f"solver='cg' (matrix-free Gauss–Newton–CG, {_fmt_bytes(need['cg'])})")
            return self.solver
        order = ("residual", "parameter") if rows <= n_params else ("parameter", "residual")
        for s in order + ("cg",):
            if need[s] <= budget:
                return s
        raise MemoryError(f"LevenbergMarquardt needs at least {_fmt_bytes(need['cg'])} (matrix-free CG over {rows} "
                          f"residuals and {n_params} parameters), more than memory_budget={_fmt_bytes(budget)}")

    # -- one iteration ----------------------------------------------------------------------
    def step(self, params, state, objective, evaluation=None):
        """One LM iteration on ``objective`` at ``params`` (updated in place). Returns None to
        continue or the reason to stop ("converged: ...", "stalled: ...", "stopped: ...")."""
        with backend.blas_threads():   # the dense solves on the kernel's thread count
            return self._step(params, state, objective)

    def _step(self, params, state, objective):
        # The linearisation is reused while neither the point nor the objective changed (a
        # rejected iteration; new points or weights build a new ResidualJacobian).
        jac = self._jacobian(objective)
        key = (id(jac or objective), params.tobytes())
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, self._linearize(objective, params), None)
        _, lin, system = self._cache
        if system is None:
            system = self._system(lin, state)
            self._cache = (key, lin, system)
        r = system["r"]
        F = float(r @ r)
        if not math.isfinite(F):
            return "stopped: non-finite residuals at the current point"
        g = system["g"]
        if not np.isfinite(g).all():
            return "stopped: non-finite Jacobian at the current point"
        if 2.0 * float(np.abs(g).max(initial=0.0)) <= self.gtol:
            return "converged: gradient below gtol"
        # a copy: evaluating a trial may write it into ``params`` (an objective's own storage)
        theta = np.array(params, dtype=np.float64)
        step_tol = self.xtol * (float(np.linalg.norm(theta)) + self.xtol)
        accelerate = self.geodesic and jac is not None and system["kind"] != "cg"
        for _ in range(self.max_trials):
            h, pred = self._solve(system, lin, r, F, state["mu"])
            if float(np.linalg.norm(h)) <= step_tol:
                return "converged: step below xtol"
            if accelerate:
                h = self._accelerate(system, lin, jac, theta, r, h, state["mu"], params.dtype)
                if h is None:   # the path bends too much for this damping: a rejected trial
                    if self._reject(state):
                        return "stopped: damping above mu_max (no step reduces the loss)"
                    continue
            with np.errstate(over="ignore", invalid="ignore"):
                trial = np.add(theta, h, dtype=params.dtype)
            if not np.isfinite(trial).all():   # beyond the dtype's range: a rejected trial
                if self._reject(state):
                    return "stopped: damping above mu_max (no step reduces the loss)"
                continue
            trial_lin, F_new = self._trial_loss(objective, jac, trial)
            rho = (F - F_new) / pred if (math.isfinite(F_new) and pred > 0) else -math.inf
            if rho > 0:
                params[:] = trial
                if trial_lin is not None:  # its residuals start the next iteration
                    self._cache = ((key[0], params.tobytes()), trial_lin, None)
                state["mu"] *= max(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3)
                state["nu"] = 2.0
                state["accepted"] += 1
                state["stall"] = state["stall"] + 1 if F - F_new <= self.ftol * F else 0
                break
            params[:] = theta.astype(params.dtype)   # back at the current point
            if self._reject(state):
                return "stopped: damping above mu_max (no step reduces the loss)"
        state["iteration"] += 1
        if state["stall"] >= self.stall_iterations:
            return f"stalled: loss fell by less than ftol over {self.stall_iterations} iterations"
        return None

    def minimize(self, objective, params, max_iterations, callback=None):
        """Run up to ``max_iterations`` iterations from a fresh state (a small driver for use
        without a run). ``callback(iteration, params, state)`` may return True to stop.
        Returns ``(iterations, reason)``."""
        state = self.init(params)
        for it in range(int(max_iterations)):
            reason = self.step(params, state, objective, None)
            if callback is not None and callback(it + 1, params, state):
                return it + 1, "stopped by callback"
            if reason is not None:
                return it + 1, reason
        return int(max_iterations), "reached the iteration limit"

    # -- internals --------------------------------------------------------------------------
    def _reject(self, state):
        """A rejected trial: μ ← μν, ν ← 2ν (Nielsen). True when μ passed the ceiling (the
        iteration then ends, counted)."""
        state["mu"] *= state["nu"]
        state["nu"] *= 2.0
        state["rejected"] += 1
        if state["mu"] > self.mu_max * state["mu_scale"]:
            state["iteration"] += 1
            return True
        return False

    def _accelerate(self, system, lin, jac, theta, r, h, mu, dtype):
        """The geodesic step h + a/2, or None when 2‖a‖ > α‖h‖ (α = 0.75).

        Transtrum & Sethna 2012 ("Improvements to the Levenberg–Marquardt algorithm for
        nonlinear least-squares minimization", arXiv:1201.5885, eqs. 13–16): the second-order
        correction of the path along the velocity h solves the same damped system for the
        directional second derivative r_hh, a = −(JᵀJ + μI)⁻¹ Jᵀ r_hh, ε = 0.1: by the forward
        difference with J in the residual form (one residual pass), by central differences
        (r(θ + εh) − 2 r(θ) + r(θ − εh)) / ε² in the parameter form, where J is not held. On the seed oscillator (4 seeds) this
        cut the iterations to rel-L2 1e-6 from 73–220 to 34–51 (bench/README.md)."""
        eps = 0.1
        with np.errstate(all="ignore"):
            ahead = np.add(theta, eps * h, dtype=dtype)
            behind = np.add(theta, -eps * h, dtype=dtype)
            if not (np.isfinite(ahead).all() and np.isfinite(behind).all()):
                return None   # a step beyond the dtype's range (linearize would refuse it)
            rp = np.asarray(jac.linearize(ahead).r, dtype=np.float64)
            if system["kind"] == "residual":
                # J is at hand: the forward difference (Transtrum & Sethna eq. 16),
                # r_hh ≈ (2/ε) ((r(θ + εh) − r) / ε − J h), one residual pass
                rhh = (2.0 / eps) * ((rp - r) / eps - system["J"] @ h)
            else:
                rm = np.asarray(jac.linearize(behind).r, dtype=np.float64)
                rhh = (rp + rm - 2.0 * r) / (eps * eps)
            if not np.isfinite(rhh).all():
                return None
            if system["kind"] == "residual":
                a = -(system["J"].T @ _spd_resolve(system, "K", mu, rhh))
            else:
                a = -_spd_resolve(system, "A", mu, np.asarray(lin.rmatvec(rhh), dtype=np.float64))
            na, nh = float(np.linalg.norm(a)), float(np.linalg.norm(h))
        if not (math.isfinite(na) and 2.0 * na <= _GEODESIC_ALPHA * nh):
            return None
        return h + 0.5 * a

    def _jacobian(self, objective):
        """The ``ResidualJacobian`` of a run's objective (its problem, net, frozen weights and
        point weights), rebuilt when those change; None for an objective that only offers
        ``residual_jacobian(params)``."""
        if not all(hasattr(objective, k) for k in ("problem", "net", "weights", "point_weights")):
            return None
        if getattr(objective, "n_unknowns", 0):   # unknowns' columns: the objective's dense (r, [J | J_u])
            return None
        pw = objective.point_weights
        key = (id(objective.problem), id(objective.net), np.asarray(objective.weights, dtype=np.float64).tobytes(),
               None if pw is None else tuple(None if w is None else (id(w), np.asarray(w).tobytes()) for w in pw))
        if self._jac is None or self._jac[0] != key:
            self._jac = (key, ResidualJacobian(objective.problem, objective.net, objective.weights, pw))
        return self._jac[1]

    def _linearize(self, objective, params):
        jac = self._jacobian(objective)
        if jac is not None:
            return jac.linearize(params)
        return _DenseLinearization(*objective.residual_jacobian(params))

    @staticmethod
    def _trial_loss(objective, jac, trial):
        """(linearisation or None, ‖r‖²) at a trial point; residuals only (no Jacobian, one
        forward pass). A non-finite r gives a non-finite sum (the trial is then rejected)."""
        if jac is not None:
            lin = jac.linearize(trial)
            r = lin.r
            return lin, float(np.dot(r, r))
        return None, float(objective.loss(trial))

    def _rows_params(self, lin):
        if lin.jac is not None:
            return lin.jac.rows, lin.jac.n_params
        return lin._J.shape

    def _workspace(self, lin, kind, rows, P):
        dt = np.dtype(lin.jac.dtype) if lin.jac is not None else np.dtype(np.float64)
        if self._ws is None or not self._ws.fits(kind, rows, P, dt):
            self._ws = _Workspace(kind, rows, P, dt)
        return self._ws

    def _system(self, lin, state):
        """The linear-algebra form at this point (Gram matrix or operator), r and g = Jᵀr."""
        rows, P = self._rows_params(lin)
        kind = self.choose_solver(rows, P)
        if kind == "residual":
            ws = self._workspace(lin, kind, rows, P)
            if lin.jac is None:
                r, J = lin.dense()
            else:
                r, J = lin.dense(out=ws.J)  # one kernel pass: r and J together
            r = np.asarray(r, dtype=np.float64)
            J = np.asarray(J, dtype=np.float64)
            system = {"kind": kind, "K": ws.gram_rows(J), "J": J, "g": np.dot(J.T, r, out=ws.g), "ws": ws}
            if state["mu"] <= 0:  # the diagonal of JᵀJ: only for the initial damping
                system["diag"] = float(np.einsum("ij,ij->j", J, J).max(initial=0))
        elif kind == "parameter":
            ws = self._workspace(lin, kind, rows, P)
            if lin.jac is None:
                A, g = lin.gram("JtJ")
            else:
                A, g, _ = lin.normal(A=ws.A, g=ws.g)  # JᵀJ, Jᵀr and r in one kernel pass, J never held
            r = np.asarray(lin.r, dtype=np.float64)
            system = {"kind": kind, "A": A, "g": g, "diag": float(np.diag(A).max(initial=0)), "ws": ws}
        else:
            r = np.asarray(lin.r, dtype=np.float64)
            g = np.asarray(lin.rmatvec(r), dtype=np.float64)
            # No diagonal without J: the Rayleigh quotient of JᵀJ along g stands in for it.
            Jg = np.asarray(lin.matvec(g), dtype=np.float64)
            gg = float(g @ g)
            system = {"kind": kind, "g": g, "diag": float(Jg @ Jg) / gg if gg > 0 else 1.0}
        system["r"] = r
        if state["mu"] <= 0:
            scale = system["diag"] if system["diag"] > 0 and math.isfinite(system["diag"]) else 1.0
            state["mu_scale"] = scale
            state["mu"] = self.tau * scale if self.mu_init is None else self.mu_init
        return system

    def _solve(self, system, lin, r, F, mu):
        """(h, predicted reduction F − ‖r + J h‖²) for damping μ."""
        kind = system["kind"]
        if kind == "residual":
            y = _spd_solve(system, "K", mu, r)
            h = np.dot(system["J"].T, y, out=system["ws"].h)
            np.negative(h, out=h)
            # r + J h = r − JJᵀ y = μ y, since (JJᵀ + μI) y = r.
            return h, F - mu * mu * float(y @ y)
        g = system["g"]
        if kind == "parameter":
            h = _spd_solve(system, "A", mu, g)
            np.negative(h, out=h)
            return h, -float(g @ h) + mu * float(h @ h)
        h, Jh = self._cg(lin, g, mu)
        return h, -2.0 * float(g @ h) - float(Jh @ Jh)

    def _cg(self, lin, g, mu):
        """Conjugate gradients on (JᵀJ + μI) h = −g from h = 0; also returns J h (accumulated)."""
        h = np.zeros_like(g)
        Jh = None
        res = -g.copy()
        p = res.copy()
        rr = float(res @ res)
        stop = (self.cg_tol * math.sqrt(rr)) ** 2
        for _ in range(self.cg_maxiter):
            if rr <= stop:
                break
            Jp = np.asarray(lin.matvec(p), dtype=np.float64)
            Ap = np.asarray(lin.rmatvec(Jp), dtype=np.float64) + mu * p
            pAp = float(p @ Ap)
            if not pAp > 0:
                break
            alpha = rr / pAp
            h += alpha * p
            Jh = alpha * Jp if Jh is None else Jh + alpha * Jp
            res -= alpha * Ap
            rr_new = float(res @ res)
            p = res + (rr_new / rr) * p
            rr = rr_new
        if Jh is None:
            Jh = np.zeros(1)
        return h, Jh


class _Workspace:
    """The dense buffers of one solver form, allocated once and reused every iteration (a fresh
    2 MB J per iteration costs page faults comparable to the whole solve at the seed size):
    residual form J (rows, P) in the network's dtype, JJᵀ and its factor (rows, rows); parameter
    form JᵀJ and its factor (P, P); g and h (P,). Factors are Fortran-ordered so LAPACK works in
    place (``overwrite_a``); ``diag`` is a view of the factor's diagonal (μ is added there)."""

    def __init__(self, kind, rows, P, dtype):
        self.kind, self.rows, self.P, self.dtype = kind, rows, P, dtype
        n = rows if kind == "residual" else P
        self.J = np.empty((rows, P), dtype=dtype) if kind == "residual" else None
        self.K = np.empty((rows, rows), order="F") if kind == "residual" else None
        self.A = np.empty((P, P)) if kind == "parameter" else None
        self.fac = np.empty((n, n), order="F")
        self.diag = self.fac.T.reshape(-1)[::n + 1]   # a view (fac.T is C-contiguous)
        self.g, self.h = np.empty(P), np.empty(P)

    def fits(self, kind, rows, P, dtype):
        return (kind, rows, P, dtype) == (self.kind, self.rows, self.P, self.dtype)

    def gram_rows(self, J):
        """JJᵀ's upper triangle into K (BLAS syrk in place; all that Cholesky and eigh read)."""
        return scipy.linalg.blas.dsyrk(1.0, J.T, trans=1, lower=0, c=self.K, overwrite_c=1)

    def shifted_factor(self, M, mu):
        """Cholesky of M + μI (upper triangle of M read) in the factor buffer: (c, info)."""
        # Contiguous copies only: K is Fortran-ordered like the factor; a C-ordered M is the
        # full symmetric JᵀJ, equal to its transpose (a transposing copy of 8 MB costs ~10 ms).
        np.copyto(self.fac if M.flags.f_contiguous else self.fac.T, M)
        self.diag += mu
        return _potrf(self.fac, lower=0, clean=0, overwrite_a=1)


def _spd_solve(system, name, mu, b):
    """(M + μI)⁻¹ b for the symmetric positive semi-definite M = system[name] (its upper triangle
    is read): Cholesky in the workspace's factor buffer, or the eigendecomposition (computed
    once per point) when the shifted matrix is not numerically positive definite."""
    M = system[name]
    # LAPACK directly: scipy's cho_factor/cho_solve wrappers cost ~0.1 ms, a third of a 52×52 solve.
    ws = system.get("ws")
    if ws is not None:
        c, info = ws.shifted_factor(M, mu)
    else:
        c, info = _potrf(M + mu * np.eye(M.shape[0]), lower=0, clean=0, overwrite_a=1)
    if info == 0:
        x, info = _potrs(c, b, lower=0)
        if info == 0 and np.isfinite(x).all():
            system["factor"] = (name, mu, c)
            return x
    system["factor"] = (name, mu, None)
    return _eig_solve(system, name, mu, b)


def _eig_solve(system, name, mu, b):
    """(M + μI)⁻¹ b through M's eigendecomposition (computed once per point)."""
    if name + "_eig" not in system:
        w, Q = scipy.linalg.eigh(system[name], lower=False, check_finite=False)
        system[name + "_eig"] = (np.maximum(w, 0.0), Q)
    w, Q = system[name + "_eig"]
    return Q @ ((Q.T @ b) / (w + mu))


def _spd_resolve(system, name, mu, b):
    """(M + μI)⁻¹ b with the factorisation the last ``_spd_solve`` left for this μ (a second
    right-hand side costs two triangular solves), else a fresh solve."""
    fac = system.get("factor")
    if fac is None or fac[0] != name or fac[1] != mu:
        return _spd_solve(system, name, mu, b)
    if fac[2] is None:
        return _eig_solve(system, name, mu, b)
    x, info = _potrs(fac[2], b, lower=0)
    return x if info == 0 else _eig_solve(system, name, mu, b)


_optim.register("lm", LevenbergMarquardt, description="Levenberg–Marquardt on the residual Jacobian (weights frozen)",
                bounds={"solver": _SOLVERS}, follows=True, second_order=True)
