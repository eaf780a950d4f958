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
The linear system is solved where it is small:

* residual space, h = −Jᵀ (JJᵀ + μI)⁻¹ r (rows ≤ parameters, e.g. the seed oscillator's 52
  rows against 5 301 parameters);
* parameter space, (JᵀJ + μI) h = −Jᵀr with JᵀJ accumulated over point chunks (rows > parameters);
* matrix-free Gauss–Newton–CG when neither fits ``memory_budget``: conjugate gradients on
  (JᵀJ + μI) h = −Jᵀr with J v by forward tangents and Jᵀu by the backward sweep.

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
from scipy.linalg.lapack import dpotrf as _potrf
from scipy.linalg.lapack import dpotrs as _potrs

from . import backend
from . import optim as _optim
from .jacobian import ResidualJacobian

__all__ = ["LevenbergMarquardt"]

_SOLVERS = ("auto", "residual", "parameter", "cg")


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

    def __init__(self, solver="auto", memory_budget=2 * 10 ** 9, tau=1e-6, mu_init=None, gtol=1e-12, xtol=1e-15,
                 ftol=1e-10, stall_iterations=20, mu_max=1e15, max_trials=10, cg_maxiter=200, cg_tol=1e-8):
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
        self._cache = None  # (params bytes, linearisation, system): rebuilt identically on resume
        self._jac = None    # (objective key, ResidualJacobian)
        self._Jbuf = None   # J's storage in the residual-space solve

    def config(self):
        """Constructor arguments (saved with a run; rebuild the optimizer on resume)."""
        return {"solver": self.solver, "memory_budget": self.memory_budget, "tau": self.tau, "mu_init": self.mu_init,
                "gtol": self.gtol,
                "xtol": self.xtol, "ftol": self.ftol, "stall_iterations": self.stall_iterations,
                "mu_max": self.mu_max, "max_trials": self.max_trials, "cg_maxiter": self.cg_maxiter,
                "cg_tol": self.cg_tol}

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
        return {"residual": 8 * (rows * n_params + 3 * rows * rows),
                "parameter": 8 * 3 * n_params * n_params + min(32 << 20, 8 * rows * n_params),
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
        key = (id(self._jacobian(objective) or objective), params.tobytes())
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
        for _ in range(self.max_trials):
            h, pred = self._solve(system, lin, r, F, state["mu"])
            if float(np.linalg.norm(h)) <= step_tol:
                return "converged: step below xtol"
            trial = (theta + h).astype(params.dtype)
            trial_lin, F_new = self._trial_loss(objective, trial)
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
            state["mu"] *= state["nu"]
            state["nu"] *= 2.0
            state["rejected"] += 1
            if state["mu"] > self.mu_max * state["mu_scale"]:
                state["iteration"] += 1
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

    def _trial_loss(self, objective, trial):
        """(linearisation or None, ‖r‖²) at a trial point; residuals only (no Jacobian)."""
        jac = self._jacobian(objective)
        if jac is not None:
            lin = jac.linearize(trial)
            with np.errstate(all="ignore"):
                r = np.asarray(lin.r, dtype=np.float64)
                return lin, float(r @ r)
        return None, float(objective.loss(trial))

    @staticmethod
    def _gram(lin, kind, out=None):
        """The Gram matrix's upper triangle (all that Cholesky and eigh(lower=False) read)."""
        if lin.jac is None:
            return lin.gram(kind)
        return lin.gram(kind, out=out, upper=True) if kind == "JJt" else lin.gram(kind, upper=True)

    def _buffer(self, lin, rows, P):
        """J's storage, reused across iterations (a fresh 2 MB array per iteration costs page
        faults comparable to the solve at the seed size)."""
        if lin.jac is None:
            return None
        dt = np.dtype(lin.jac.dtype)
        if self._Jbuf is None or self._Jbuf.shape != (rows, P) or self._Jbuf.dtype != dt:
            self._Jbuf = np.empty((rows, P), dtype=dt)
        return self._Jbuf

    def _rows_params(self, lin):
        if lin.jac is not None:
            return lin.jac.rows, lin.jac.n_params
        return lin._J.shape

    def _system(self, lin, state):
        """The linear-algebra form at this point (Gram matrix or operator), r and g = Jᵀr."""
        rows, P = self._rows_params(lin)
        kind = self.choose_solver(rows, P)
        if kind == "residual":
            K, J = self._gram(lin, "JJt", out=self._buffer(lin, rows, P))  # forms J, which also gives r
            r = np.asarray(lin.r, dtype=np.float64)
            J = np.asarray(J, dtype=np.float64)
            system = {"kind": kind, "K": K, "J": J, "g": J.T @ r}
            if state["mu"] <= 0:  # the diagonal of JᵀJ: only for the initial damping
                system["diag"] = float(np.einsum("ij,ij->j", J, J).max(initial=0))
        elif kind == "parameter":
            r = np.asarray(lin.r, dtype=np.float64)
            A, g = self._gram(lin, "JtJ")
            system = {"kind": kind, "A": A, "g": g, "diag": float(np.diag(A).max(initial=0))}
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
            h = -(system["J"].T @ y)
            # r + J h = r − JJᵀ y = μ y, since (JJᵀ + μI) y = r.
            return h, F - mu * mu * float(y @ y)
        g = system["g"]
        if kind == "parameter":
            h = -_spd_solve(system, "A", mu, g)
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


def _spd_solve(system, name, mu, b):
    """(M + μI)⁻¹ b for the symmetric positive semi-definite M = system[name] (its upper triangle
    is read): Cholesky, or the
    eigendecomposition (computed once per point) when the shifted matrix is not numerically
    positive definite."""
    M = system[name]
    # LAPACK directly: scipy's cho_factor/cho_solve wrappers cost ~0.1 ms, a third of a 52×52 solve.
    A = M + mu * np.eye(M.shape[0])
    c, info = _potrf(A, lower=0, clean=0, overwrite_a=1)
    if info == 0:
        x, info = _potrs(c, b, lower=0)
        if info == 0 and np.isfinite(x).all():
            return x
    if name + "_eig" not in system:
        w, Q = scipy.linalg.eigh(M, lower=False, check_finite=False)
        system[name + "_eig"] = (np.maximum(w, 0.0), Q)
    w, Q = system[name + "_eig"]
    return Q @ ((Q.T @ b) / (w + mu))


_optim.register("lm", LevenbergMarquardt)
