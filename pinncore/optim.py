"""Optimizers over the flat parameter vector: Adam (fused, compiled) and an L-BFGS stage.

Adam follows optax's shape: ``init(params) -> state`` and ``update(params, grads, weights,
state) -> state`` with the state an explicit dict ({"m", "v", "step"}) that saves without
pickle. The update is one compiled pass (``backend.adam_step``) that also forms the weighted
sum g = Σ_a λ_a ∇L_a of the per-term gradients, so a step allocates nothing and costs a
few microseconds of Python at the seed size.

L-BFGS (Liu & Nocedal 1989) runs after Adam on the *frozen* weighted loss Σ_a λ_a L_a: the
weights are those of the last Adam step, because changing the objective under a
quasi-Newton method invalidates its curvature pairs. It uses SciPy's L-BFGS-B, whose line
search (Moré–Thuente ``dcsrch``) enforces the strong Wolfe conditions.
"""
from __future__ import annotations

import math

import numpy as np

from . import backend

__all__ = ["Adam", "adam_reference", "lbfgs"]


class Adam:
    """Adam (Kingma & Ba 2015, Algorithm 1) with optional exponential learning-rate decay
    lr_t = lr · decay_rate^(t / decay_steps).

    >>> import numpy as np
    >>> opt = Adam(lr=0.1)
    >>> p = np.array([1.0, -2.0]); s = opt.init(p)
    >>> s = opt.update(p, np.array([[1.0, -1.0]]), np.array([1.0]), s)
    >>> np.round(p, 6).tolist()
    [0.9, -1.9]
    """

    def __init__(self, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8, decay_rate=None, decay_steps=1000):
        for name, v in (("lr", lr), ("eps", eps)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
        for name, v in (("b1", b1), ("b2", b2)):
            if not (isinstance(v, (int, float)) and 0 <= v < 1):
                raise ValueError(f"{name} must be in [0, 1), got {v!r}")
        if decay_rate is not None and not (isinstance(decay_rate, (int, float)) and 0 < decay_rate <= 1):
            raise ValueError(f"decay_rate must be in (0, 1], got {decay_rate!r}")
        if not (isinstance(decay_steps, (int, float)) and decay_steps > 0):
            raise ValueError(f"decay_steps must be > 0, got {decay_steps!r}")
        self.lr, self.b1, self.b2, self.eps = float(lr), float(b1), float(b2), float(eps)
        self.decay_rate, self.decay_steps = decay_rate, float(decay_steps)

    def config(self):
        return {"lr": self.lr, "b1": self.b1, "b2": self.b2, "eps": self.eps,
                "decay_rate": self.decay_rate, "decay_steps": self.decay_steps}

    def init(self, params):
        return {"m": np.zeros_like(params), "v": np.zeros_like(params), "step": 0}

    def learning_rate(self, step):
        """The learning rate used by update number ``step`` (counting from 0)."""
        if self.decay_rate is None:
            return self.lr
        return self.lr * self.decay_rate ** (step / self.decay_steps)

    def update(self, params, grads, weights, state):
        """In place: params -= lr_t · m̂/(√v̂ + ε) with g = Σ_a weights[a] grads[a].

        params (P,), grads (T, P) of the params' dtype, weights (T,) float64. Returns the
        state (its arrays are updated in place; ``step`` is incremented)."""
        t = state["step"] + 1
        backend.adam_step(params, grads, weights, state["m"], state["v"], self.learning_rate(t - 1),
                        self.b1, self.b2, self.eps, t)
        state["step"] = t
        return state


def adam_reference(params, grads, weights, state, lr, b1=0.9, b2=0.999, eps=1e-8):
    """The textbook NumPy Adam step (the test oracle for the fused kernel); returns new arrays.

    >>> import numpy as np
    >>> p, s = adam_reference(np.ones(2), np.ones((1, 2)), np.ones(1), {"m": np.zeros(2), "v": np.zeros(2), "step": 0}, 0.1)
    >>> np.round(p, 6).tolist()
    [0.9, 0.9]
    """
    g = (np.asarray(weights)[:, None] * grads).sum(axis=0)
    t = state["step"] + 1
    m = b1 * state["m"] + (1 - b1) * g
    v = b2 * state["v"] + (1 - b2) * g * g
    mhat = m / (1 - b1 ** t)
    vhat = v / (1 - b2 ** t)
    return params - lr * mhat / (np.sqrt(vhat) + eps), {"m": m, "v": v, "step": t}


def _cubic_min(a, fa, ga, b, fb, gb):
    """Minimiser of the cubic interpolating (a, fa, ga), (b, fb, gb) (Nocedal & Wright eq. 3.59),
    or None when it does not exist."""
    d1 = ga + gb - 3 * (fa - fb) / (a - b)
    disc = d1 * d1 - ga * gb
    if disc < 0:
        return None
    d2 = math.copysign(math.sqrt(disc), b - a)
    denom = gb - ga + 2 * d2
    if denom == 0:
        return None
    return b - (b - a) * (gb + d2 - d1) / denom


def _strong_wolfe(fun, x, f0, g0, d, alpha, c1=1e-4, c2=0.9, max_evals=25):
    """Line search for the strong Wolfe conditions (Nocedal & Wright, Algorithms 3.5 and 3.6).

    A trial point with a non-finite value or gradient is treated as "too far" (the bracket
    shrinks), so a NaN is never accepted. Returns (alpha, f, g, evals) or (None, ...)."""
    gd0 = float(g0 @ d)
    evals = 0

    def phi(a):
        f, g = fun(x + a * d)
        ok = math.isfinite(f) and bool(np.isfinite(g).all())
        return (f if ok else math.inf), g, (float(g @ d) if ok else math.inf), ok

    def zoom(lo, flo, gdlo, hi, fhi, gdhi):
        nonlocal evals
        while evals < max_evals:
            a = None
            if math.isfinite(fhi) and math.isfinite(gdhi):
                a = _cubic_min(lo, flo, gdlo, hi, fhi, gdhi)
            width = abs(hi - lo)
            if a is None or not (min(lo, hi) + 0.1 * width <= a <= max(lo, hi) - 0.1 * width):
                a = 0.5 * (lo + hi)
            fa, ga, gda, ok = phi(a)
            evals += 1
            if not ok or fa > f0 + c1 * a * gd0 or fa >= flo:
                hi, fhi, gdhi = a, fa, gda
            else:
                if abs(gda) <= -c2 * gd0:
                    return a, fa, ga
                if gda * (hi - lo) >= 0:
                    hi, fhi, gdhi = lo, flo, gdlo
                lo, flo, gdlo = a, fa, gda
                best[0] = (a, fa, ga)
            if width < 1e-16 * max(1.0, abs(lo)):
                break
        return best[0] if best[0][0] > 0 else (None, None, None)

    best = [(0.0, f0, g0)]
    a_prev, f_prev, gd_prev = 0.0, f0, gd0
    a = alpha
    while evals < max_evals:
        fa, ga, gda, ok = phi(a)
        evals += 1
        if not ok or fa > f0 + c1 * a * gd0 or (evals > 1 and fa >= f_prev):
            r = zoom(a_prev, f_prev, gd_prev, a, fa, gda)
            return (*r, evals)
        if abs(gda) <= -c2 * gd0:
            return a, fa, ga, evals
        if gda >= 0:
            r = zoom(a, fa, gda, a_prev, f_prev, gd_prev)
            return (*r, evals)
        best[0] = (a, fa, ga)
        a_prev, f_prev, gd_prev = a, fa, gda
        a = 2 * a
    a, fa, ga = best[0]
    return (a, fa, ga, evals) if a > 0 else (None, None, None, evals)


def lbfgs(fun, x0, maxiter, callback=None, history_size=20):
    """Minimise ``fun(x) -> (f, g)`` from x0 by L-BFGS (Nocedal & Wright Algorithm 7.5, two-loop
    recursion) with a strong-Wolfe line search.

    Never accepts a non-finite step; stops cleanly when the line search fails, progress
    stalls, ``callback(iteration, x)`` returns True or ``maxiter`` is reached. Returns the best
    finite point seen: ``(x_best, f_best, iterations, message)``.

    >>> import numpy as np
    >>> x, f, it, msg = lbfgs(lambda x: (float(((x - 3) ** 2).sum()), 2 * (x - 3)), np.zeros(2), 50)
    >>> np.allclose(x, 3), f < 1e-12
    (True, True)
    """
    x = np.array(x0, dtype=np.float64)
    f, g = fun(x)
    g = np.asarray(g, dtype=np.float64)
    if not (math.isfinite(f) and np.isfinite(g).all()):
        return x, f, 0, "stopped: non-finite loss or gradient at the starting point"
    S, Y, R = [], [], []
    msg = "reached the iteration limit"
    it = 0
    while it < maxiter:
        # Two-loop recursion: d = -H g with H0 = (s·y / y·y) I.
        q = g.copy()
        alphas = []
        for s, y, rho in zip(reversed(S), reversed(Y), reversed(R)):
            a = rho * float(s @ q)
            alphas.append(a)
            q -= a * y
        if S:
            q *= float(S[-1] @ Y[-1]) / float(Y[-1] @ Y[-1])
        for (s, y, rho), a in zip(zip(S, Y, R), reversed(alphas)):
            b = rho * float(y @ q)
            q += (a - b) * s
        d = -q
        if not float(g @ d) < 0:  # not a descent direction: restart from steepest descent
            S, Y, R = [], [], []
            d = -g
        gnorm = float(np.linalg.norm(g))
        if gnorm == 0:
            msg = "converged: zero gradient"
            break
        alpha0 = 1.0 if S else min(1.0, 1.0 / gnorm)
        alpha, f_new, g_new, _ = _strong_wolfe(fun, x, f, g, d, alpha0)
        if alpha is None:
            msg = "stopped: the line search found no acceptable (finite, decreasing) step"
            break
        g_new = np.asarray(g_new, dtype=np.float64)
        s = alpha * d
        y = g_new - g
        sy = float(s @ y)
        if sy > 1e-12 * float(y @ y):
            S.append(s)
            Y.append(y)
            R.append(1.0 / sy)
            if len(S) > history_size:
                S.pop(0), Y.pop(0), R.pop(0)
        x = x + s
        stalled = f - f_new <= 1e-15 * max(abs(f), 1e-300)
        f, g = f_new, g_new
        it += 1
        if callback is not None and callback(it, x):
            msg = "stopped by callback"
            break
        if stalled and float(np.abs(s).max()) == 0:
            msg = "stopped: no progress"
            break
    return x, f, it, msg
