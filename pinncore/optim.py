"""Optimizers over the flat parameter vector: Adam (fused, compiled) and an L-BFGS stage.

Adam follows optax's shape: ``init(params) -> state`` and ``update(params, grads, weights,
state) -> state`` with the state an explicit dict ({"m", "v", "step"}) that saves without
pickle. The update is one compiled pass (``_core.adam_step``) that also forms the weighted
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

from . import _core

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
        _core.adam_step(params, grads, weights, state["m"], state["v"], self.learning_rate(t - 1),
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


class _Abort(Exception):
    pass


def lbfgs(fun, x0, maxiter, callback=None, history_size=20):
    """Minimise ``fun(x) -> (f, g)`` from x0 with L-BFGS (strong-Wolfe line search).

    Stops cleanly on a non-finite value or gradient (the line search never accepts it) and
    when progress stalls; always returns the best finite point seen, with its value:
    ``(x_best, f_best, n_iterations, message)``.

    >>> import numpy as np
    >>> x, f, it, msg = lbfgs(lambda x: (float(((x - 3) ** 2).sum()), 2 * (x - 3)), np.zeros(2), 50)
    >>> np.allclose(x, 3), f < 1e-12
    (True, True)
    """
    from scipy.optimize import minimize

    best = {"x": np.array(x0, dtype=np.float64), "f": math.inf, "msg": ""}
    iters = {"n": 0}

    def wrapped(x):
        f, g = fun(x)
        if not (math.isfinite(f) and np.isfinite(g).all()):
            best["msg"] = "stopped: non-finite loss or gradient in the line search (best point kept)"
            raise _Abort()
        if f < best["f"]:
            best["x"], best["f"] = x.copy(), f
        return f, g

    def cb(xk):
        iters["n"] += 1
        if callback is not None and callback(iters["n"], xk):
            best["msg"] = "stopped by callback"
            raise _Abort()

    if maxiter > 0:
        try:
            res = minimize(wrapped, np.array(x0, dtype=np.float64), jac=True, method="L-BFGS-B", callback=cb,
                           options={"maxiter": int(maxiter), "maxfun": int(2 * maxiter + 20),
                                    "maxcor": history_size, "ftol": 0.0, "gtol": 0.0})
            best["msg"] = str(res.message)
        except _Abort:
            pass
    else:
        f, _ = fun(best["x"])
        best["f"] = f
    return best["x"], best["f"], iters["n"], best["msg"]
