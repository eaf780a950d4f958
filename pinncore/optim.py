"""Optimizers over the flat parameter vector, all behind one small interface.

An optimizer is an object with fixed settings and an explicit state dict (optax's shape):
``init(params) -> state``; ``step(params, state, objective, evaluation) -> reason or None``
does ONE iteration in place (the run calls it; ``evaluation`` = (L, G, R) at the current
parameters, already computed by the run); ``config()`` gives the constructor arguments so a
saved run rebuilds it; ``check_state(state, n)`` validates a loaded state. The state's leaves
are arrays and numbers, so ``pinncore.io`` saves it without pickle.

``Adam`` (Kingma & Ba 2015) is one compiled pass (``backend.adam_step``) that also forms the
weighted sum g = Σ_a λ_a ∇L_a of the per-term gradients, so a step allocates nothing.

``LBFGS`` is pinncore's own two-loop L-BFGS (Nocedal & Wright, Algorithm 7.5) with a
strong-Wolfe line search (Algorithms 3.5/3.6). It runs on the *frozen* weighted loss
Σ_a λ_a L_a (``adapts_weights = False``): changing the objective under a quasi-Newton method
invalidates its curvature pairs. Iterates are kept in float64 whatever the network's dtype.

Every optimizer registers beside its definition in ``pinncore.registry.optimizers``
(``@registry.optimizers.register(name, ...)``); ``get(name)`` builds one by name from there
("adam", "lbfgs", "lm", ...), and ``register(name, cls)`` is the call form of the same.
Each class declares ``default_iterations``: the iterations of a phase that runs it when the
user gives no count (``pc.train(optimizer="lm")`` runs 200 LM iterations, not Adam's 2000).
"""
from __future__ import annotations

import math

import numpy as np

from . import backend, registry

__all__ = ["Optimizer", "NonFiniteGradient", "Adam", "LBFGS", "adam_reference", "lbfgs", "minimize", "strong_wolfe", "get",
           "register", "names", "MAX_STEP"]


class NonFiniteGradient(FloatingPointError):
    """Raised by an optimizer that refuses to apply a NaN or infinite gradient (nothing changed)."""


class Optimizer:
    """The interface every optimizer implements (see the module docstring)."""

    name = "optimizer"          # the history's ``phase`` value
    adapts_weights = True       # False: the run freezes the loss weights during this phase
    checks_gradients = False    # True: ``step`` raises NonFiniteGradient itself (the run skips its check)
    log_every_iteration = False  # True: the run writes a history row after every iteration
    default_iterations = 1000   # a phase's iterations when the user gives none (phases.build)
    follow_iterations = None    # iterations as a later phase when none are given (None: default_iterations)
    cost = 10.0                 # work of one iteration relative to an Adam step (the web server's budget)
    forms_jacobian = False      # True: an iteration forms the residual Jacobian (rows x parameters)
    label = None                # a short display name (None: the name in capitals)
    learning_rate = None        # a method ``learning_rate(step)`` on optimizers that have one (logged as lr)

    def config(self) -> dict:
        return {}

    def init(self, params) -> dict:
        return {}

    def step(self, params, state, objective, evaluation):
        raise NotImplementedError

    def check_state(self, state, n):
        """Raise ValueError naming the field if ``state`` cannot be this optimizer's state
        for ``n`` parameters."""
        if not isinstance(state, dict):
            raise ValueError(f"{self.name} state must be a dict")

    def health(self, state):
        """Why ``state`` can no longer move the parameters (a message), or None. The run asks
        at its log steps and stops with status "diverged" instead of reporting a run that
        silently stood still."""
        return None

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.config().items())})"


def _finite(v):
    try:
        return math.isfinite(v)
    except OverflowError:   # an int beyond the float range
        return False


# Step counters of saved states: exact as floats (Adam's bias correction takes β^t) and far inside
# the int64 the kernel's Adam step is called with (a state claiming 10**30 failed inside the binding).
MAX_STEP = 2 ** 53


def _check_vectors(state, n, dtype, names, nonneg=()):
    for k in names:
        v = state.get(k)
        if not (isinstance(v, np.ndarray) and v.shape == (n,) and (dtype is None or v.dtype == dtype)):
            raise ValueError(f"optimizer {k} must be a {dtype or 'float'} array of shape ({n},)")
        if not np.isfinite(v).all() or (k in nonneg and (v < 0).any()):
            raise ValueError(f"optimizer {k} must be finite" + (" and >= 0" if k in nonneg else ""))


@registry.optimizers.register("adam", description="Adam (Kingma & Ba 2015), fused compiled step",
                               bounds={"lr": (0.0, 1.0), "b1": (0.0, 1.0), "b2": (0.0, 1.0), "eps": (0.0, None),
                                       "decay_rate": (0.0, 1.0), "decay_steps": (0.0, None)},
                               adapts_weights=True)
class Adam(Optimizer):
    """Adam (Kingma & Ba 2015, Algorithm 1) with optional exponential learning-rate decay
    lr_t = lr · decay_rate^(t / decay_steps).

    >>> import numpy as np
    >>> opt = Adam(lr=0.1)
    >>> p = np.array([1.0, -2.0]); s = opt.init(p)
    >>> s = opt.update(p, np.array([[1.0, -1.0]]), np.array([1.0]), s)
    >>> np.round(p, 6).tolist()
    [0.9, -1.9]
    """

    name = "adam"
    checks_gradients = True
    default_iterations = 2000
    cost = 1.0
    label = "Adam"

    def __init__(self, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8, decay_rate=None, decay_steps=1000):
        for name, v in (("lr", lr), ("eps", eps), ("decay_steps", decay_steps)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not _finite(v) or v <= 0:
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
        self._apply(params, grads, weights, state)
        return state

    def _apply(self, params, grads, weights, state):
        t = state["step"] + 1
        lr = self.lr if self.decay_rate is None else self.learning_rate(t - 1)
        if not backend.adam_step(params, grads, weights, state["m"], state["v"], lr, self.b1, self.b2, self.eps, t):
            raise NonFiniteGradient("non-finite gradient: the Adam update was not applied")
        state["step"] = t

    def step(self, params, state, objective, evaluation):
        """One Adam iteration on g = Σ_a λ_a ∇L_a from the run's evaluation; never stops a phase."""
        self._apply(params, evaluation[1], objective.weights, state)

    def health(self, state):
        """A second moment that overflowed (a weighted gradient above √(float max) ≈ 1e154, e.g.
        a fixed weight of 1e200) makes every later update m̂/(√v̂ + ε) of that parameter zero."""
        v = state.get("v")
        if isinstance(v, np.ndarray) and v.size and not math.isfinite(float(v.max())):
            n = int(np.count_nonzero(~np.isfinite(v)))
            return (f"Adam's second-moment estimate overflowed for {n} of {v.size} parameters (a weighted "
                    f"gradient beyond √(float max)): their updates are zero from here")
        return None

    def check_state(self, state, n, dtype=None):
        super().check_state(state, n)
        t = state.get("step")
        if not (isinstance(t, int) and not isinstance(t, bool) and 0 <= t <= MAX_STEP):
            raise ValueError(f"optimizer must hold 'm', 'v' and an int 'step' in [0, 2**53], got step {t!r}")
        _check_vectors(state, n, dtype, ("m", "v"), nonneg=("v",))


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


def strong_wolfe(fun, x, f0, g0, d, alpha, c1=1e-4, c2=0.9, max_evals=25):
    """Line search for the strong Wolfe conditions (Nocedal & Wright, Algorithms 3.5 and 3.6),
    shared by every quasi-Newton optimizer (L-BFGS, ``pinncore.bfgs.BFGS``).

    ``fun(x) -> (f, g)``; ``d`` a descent direction at x (g0·d < 0); ``alpha`` the first trial
    step. A trial point with a non-finite value or gradient is treated as "too far" (the
    bracket shrinks), so a NaN is never accepted. Every step length is evaluated at most once
    (the zoom's interpolation can land on a step already tried: it is looked up, not
    re-evaluated). Returns (alpha, f, g, evals) or (None, None, None, evals).

    >>> import numpy as np
    >>> fun = lambda x: (float(x @ x), 2 * x)
    >>> a, f, g, n = strong_wolfe(fun, np.ones(2), 2.0, 2 * np.ones(2), -np.ones(2), 1.0)
    >>> a, f, n
    (1.0, 0.0, 1)
    """
    return _WolfeSearch(fun, x, f0, g0, d, c1, c2, max_evals).run(alpha)


class _WolfeSearch:
    """One strong-Wolfe search along x + a·d (explicit state instead of nested closures)."""

    def __init__(self, fun, x, f0, g0, d, c1, c2, max_evals):
        self.fun, self.x, self.d, self.f0, self.g0 = fun, x, d, f0, g0
        self.gd0 = float(g0 @ d)
        self.c1, self.c2, self.max_evals = c1, c2, max_evals
        self.evals, self.seen = 0, {}
        self.best = (0.0, f0, g0)

    def phi(self, a):
        """(f, g, g·d, finite) at step a; each step length is evaluated once."""
        if a not in self.seen:
            f, g = self.fun(self.x + a * self.d)
            self.evals += 1
            ok = math.isfinite(f) and bool(np.isfinite(g).all())
            self.seen[a] = ((f if ok else math.inf), g, (float(g @ self.d) if ok else math.inf), ok)
        return self.seen[a]

    def sufficient(self, a, fa):
        return fa <= self.f0 + self.c1 * a * self.gd0

    def run(self, a):
        a_prev, f_prev, gd_prev = 0.0, self.f0, self.gd0
        first = True
        while self.evals < self.max_evals:
            fa, ga, gda, ok = self.phi(a)
            if not ok or not self.sufficient(a, fa) or (not first and fa >= f_prev):
                return (*self.zoom(a_prev, f_prev, gd_prev, a, fa, gda), self.evals)
            if abs(gda) <= -self.c2 * self.gd0:
                return a, fa, ga, self.evals
            if gda >= 0:
                return (*self.zoom(a, fa, gda, a_prev, f_prev, gd_prev), self.evals)
            self.best = (a, fa, ga)
            a_prev, f_prev, gd_prev, first = a, fa, gda, False
            a = 2 * a
        a, fa, ga = self.best
        return (a, fa, ga, self.evals) if a > 0 else (None, None, None, self.evals)

    def zoom(self, lo, flo, gdlo, hi, fhi, gdhi):
        """Algorithm 3.6: shrink [lo, hi] by safeguarded cubic interpolation (eq. 3.59)."""
        while self.evals < self.max_evals:
            a = None
            if math.isfinite(fhi) and math.isfinite(gdhi):
                a = _cubic_min(lo, flo, gdlo, hi, fhi, gdhi)
            width = abs(hi - lo)
            if a is None or not (min(lo, hi) + 0.1 * width <= a <= max(lo, hi) - 0.1 * width):
                a = 0.5 * (lo + hi)
            fa, ga, gda, ok = self.phi(a)
            if not ok or not self.sufficient(a, fa) or fa >= flo:
                hi, fhi, gdhi = a, fa, gda
            else:
                if abs(gda) <= -self.c2 * self.gd0:
                    return a, fa, ga
                if gda * (hi - lo) >= 0:
                    hi, fhi, gdhi = lo, flo, gdlo
                lo, flo, gdlo = a, fa, gda
                self.best = (a, fa, ga)
            if width < 1e-16 * max(1.0, abs(lo)):
                break
        return self.best if self.best[0] > 0 else (None, None, None)


@registry.optimizers.register("lbfgs", description="L-BFGS with a strong-Wolfe line search (weights frozen)",
                               bounds={"history_size": (1, None)}, follows=True)
class LBFGS(Optimizer):
    """L-BFGS with a strong-Wolfe line search on the frozen weighted loss (module docstring).

    State: the float64 iterate ``x`` with its loss ``f`` and gradient ``g``, and the last
    ``history_size`` curvature pairs (rows of ``S``, ``Y``, oldest first; ``count`` in use).
    ``step`` ends the phase (returns a reason) at a zero gradient, when the line search finds
    no finite decreasing step, or when progress stalls; it never accepts a non-finite point.

    >>> import numpy as np
    >>> x, f, it, msg = lbfgs(lambda x: (float(((x - 3) ** 2).sum()), 2 * (x - 3)), np.zeros(2), 50)
    >>> np.allclose(x, 3), f < 1e-12
    (True, True)
    """

    name = "lbfgs"
    adapts_weights = False
    default_iterations = 1000
    label = "L-BFGS"
    follow_iterations = 500    # after Adam it stalls well before 500 on the library problems
    cost = 10.0                # a few loss evaluations per iteration (line search)

    def __init__(self, history_size=20):
        if isinstance(history_size, bool) or not isinstance(history_size, (int, np.integer)) or history_size < 1:
            raise ValueError(f"history_size must be an integer >= 1, got {history_size!r}")
        self.history_size = int(history_size)

    def config(self):
        return {"history_size": self.history_size}

    def init(self, params):
        n, m = np.asarray(params).size, self.history_size
        return {"x": np.zeros(n), "f": 0.0, "g": np.zeros(n), "valid": False,
                "S": np.zeros((m, n)), "Y": np.zeros((m, n)), "count": 0}

    def check_state(self, state, n, dtype=None):
        super().check_state(state, n)
        for k, shape in (("x", (n,)), ("g", (n,)), ("S", (self.history_size, n)), ("Y", (self.history_size, n))):
            v = state.get(k)
            if not (isinstance(v, np.ndarray) and v.shape == shape and np.isfinite(v).all()):
                raise ValueError(f"optimizer {k} must be a finite array of shape {shape}")
        c = state.get("count")
        if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c <= self.history_size:
            raise ValueError(f"optimizer count must be an int in [0, {self.history_size}]")

    def _direction(self, state, g):
        """d = −H g by the two-loop recursion with H0 = (s·y / y·y) I (N&W eq. 7.20)."""
        c, S, Y = state["count"], state["S"], state["Y"]
        q = g.copy()
        alphas = []
        for k in range(c - 1, -1, -1):
            a = float(S[k] @ q) / float(S[k] @ Y[k])
            alphas.append(a)
            q -= a * Y[k]
        if c:
            q *= float(S[c - 1] @ Y[c - 1]) / float(Y[c - 1] @ Y[c - 1])
        for k, a in zip(range(c), reversed(alphas)):
            q += (a - float(Y[k] @ q) / float(S[k] @ Y[k])) * S[k]
        return -q

    def _remember(self, state, s, y):
        if not float(s @ y) > 1e-12 * float(y @ y):
            return  # curvature condition fails: the pair would make H indefinite
        c = state["count"]
        if c == self.history_size:
            state["S"][:-1], state["Y"][:-1] = state["S"][1:].copy(), state["Y"][1:].copy()
            c -= 1
        state["S"][c], state["Y"][c] = s, y
        state["count"] = c + 1

    def step(self, params, state, objective, evaluation):
        if not (state["valid"] and np.array_equal(state["x"].astype(params.dtype), params)):
            L, G, _ = evaluation
            state.update(x=params.astype(np.float64), f=float(np.dot(objective.weights, L)),
                         g=np.asarray(objective.weights @ G.astype(np.float64), dtype=np.float64), valid=True)
        x, f, g = state["x"], state["f"], state["g"]
        d = self._direction(state, g)
        if not float(g @ d) < 0:  # not a descent direction: restart from steepest descent
            state["count"] = 0
            d = -g
        gnorm = float(np.linalg.norm(g))
        if gnorm == 0:
            return "converged: zero gradient"
        alpha0 = 1.0 if state["count"] else min(1.0, 1.0 / gnorm)
        alpha, f_new, g_new, _ = strong_wolfe(objective.value_and_gradient, x, f, g, d, alpha0)
        if alpha is None:
            params[...] = x.astype(params.dtype)
            return "stopped: the line search found no acceptable (finite, decreasing) step"
        s = alpha * d
        g_new = np.asarray(g_new, dtype=np.float64)
        self._remember(state, s, g_new - g)
        stalled = f - f_new <= 1e-15 * max(abs(f), 1e-300) and float(np.abs(s).max()) == 0
        state.update(x=x + s, f=float(f_new), g=g_new)
        params[...] = state["x"].astype(params.dtype)
        return "stopped: no progress" if stalled else None


class _FunctionObjective:
    """A plain ``fun(x) -> (f, g)`` seen through the objective interface (one term, λ = 1)."""

    weights = np.ones(1)

    def __init__(self, fun):
        self.fun = fun

    def value_and_gradient(self, x):
        f, g = self.fun(np.asarray(x, dtype=np.float64))
        return float(f), np.asarray(g, dtype=np.float64)

    def evaluate(self, x):
        f, g = self.value_and_gradient(x)
        return np.array([f]), g[None, :], None


def lbfgs(fun, x0, maxiter, callback=None, history_size=20):
    """Minimise ``fun(x) -> (f, g)`` from x0 with ``LBFGS``; ``callback(iteration, x)``
    returning True stops. Returns the best finite point seen: ``(x, f, iterations, message)``.

    >>> import numpy as np
    >>> x, f, it, msg = lbfgs(lambda x: (float((x ** 2).sum()), 2 * x), np.ones(3), 20)
    >>> bool(f < 1e-20), msg
    (True, 'converged: zero gradient')
    """
    return minimize(fun, x0, maxiter, callback, LBFGS(history_size))


def minimize(fun, x0, maxiter, callback=None, optimizer=None):
    """Minimise ``fun(x) -> (f, g)`` from x0 with a quasi-Newton ``optimizer`` (default
    ``LBFGS()``; e.g. ``pinncore.bfgs.BFGS()``), outside a training run. ``callback(iteration, x)``
    returning True stops. Returns the best finite point seen: ``(x, f, iterations, message)``.

    >>> import numpy as np
    >>> x, f, it, msg = minimize(lambda x: (float(((x - 1) ** 2).sum()), 2 * (x - 1)), np.zeros(2), 20)
    >>> np.allclose(x, 1), msg
    (True, 'converged: zero gradient')
    """
    opt, obj = (LBFGS() if optimizer is None else optimizer), _FunctionObjective(fun)
    x = np.array(x0, dtype=np.float64)
    L, G, _ = obj.evaluate(x)
    if not (math.isfinite(L[0]) and np.isfinite(G).all()):
        return x, float(L[0]), 0, "stopped: non-finite loss or gradient at the starting point"
    state = opt.init(x)
    state.update(x=x.copy(), f=float(L[0]), g=G[0].copy(), valid=True)
    msg, it = "reached the iteration limit", 0
    while it < maxiter:
        reason = opt.step(x, state, obj, None)
        if reason is not None and reason.startswith(("converged", "stopped: the line")):
            msg = reason
            break
        it += 1
        if callback is not None and callback(it, x):
            msg = "stopped by callback"
            break
        if reason is not None:
            msg = reason
            break
    return x, state["f"], it, msg


def register(name, cls, **kw):
    """Make ``cls`` (an ``Optimizer`` subclass) available as ``get(name)`` / ``optimizer=name``:
    ``registry.optimizers.add(name, cls, ...)`` (keywords: description, bounds, aliases, flags).
    Registering the same class again under its name is a no-op.

    >>> register("adam", Adam) is registry.optimizers["adam"]   # already registered: unchanged
    True
    """
    if name in registry.optimizers and registry.optimizers[name].factory is cls:
        return registry.optimizers[name]
    if not (isinstance(cls, type) and issubclass(cls, Optimizer)):
        raise TypeError(f"register({name!r}, cls): cls must be a pinncore.optim.Optimizer subclass, got {cls!r}")
    kw.setdefault("adapts_weights", bool(cls.adapts_weights))
    return registry.optimizers.add(name, cls, **kw)


def names():
    """The registered optimizer names (what ``optimizer=`` and the front ends accept).

    >>> names()[:2]
    ['adam', 'lbfgs']
    """
    return registry.optimizers.names()


def get(name, **kw):
    """An optimizer by name ("adam", "lbfgs", or one registered); an instance is returned as is.

    >>> get("adam", lr=0.01).lr, get("lbfgs").name
    (0.01, 'lbfgs')
    """
    if isinstance(name, Optimizer):
        return name
    if not isinstance(name, str) or name not in registry.optimizers:
        raise ValueError(f"optimizer must be one of {registry.optimizers.names()} or a pc optimizer object, "
                         f"got {name!r}")
    return registry.optimizers[name].factory(**kw)
