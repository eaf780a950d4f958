"""Residual-based adaptive resampling of collocation points, as observers on a run.

C. Wu, M. Zhu, Q. Tan, Y. Kartha, L. Lu, "A comprehensive study of non-adaptive and
residual-based adaptive sampling for physics-informed neural networks", CMAME 403 (2023)
115671. Both methods score candidate points by the PDE residual ε(x) = ‖r(x)‖ (over the
residual's components), evaluated by one kernel forward pass (``Problem.residual_at``):

* **RAD** (residual-based adaptive distribution, their eq. (2)): every ``every`` steps all N
  points of the term are redrawn from the candidates with density

      p(x) ∝ ε(x)^k / E[ε^k] + c,

  (k = 1, c = 1 by default; k → 0 or c → ∞ is uniform sampling, c = 0 pure residual).
  The draw is without replacement (Efraimidis & Spirakis' keys u^(1/p)).
* **RAR-G** (greedy residual-based adaptive refinement, Lu et al. 2021): every ``every``
  steps the ``n_add`` candidates with the largest residual are added to the points.

Reproducible: the candidates and the draw of the event at step s come from the seed
``(seed, s)``, so a resumed run draws the same points (the replaced points are saved with
the run's state). Per-point weighting states (``pc.SelfAdaptive``'s λ_i and its Adam
moments) are carried to the new points by a defined rule: each new point takes the state of
its nearest old point (in the problem's scaled coordinates); kept points keep theirs.
First-order optimizer states (Adam's moments) are per parameter and carry over unchanged; an
L-BFGS or LM phase restarts its state, whose curvature model belonged to the old points; a
dense quasi-Newton phase (``pinncore.bfgs``) keeps its inverse Hessian through the change,
re-evaluates on the new points and resets it only when the loss jumps there (its rule 3). The history gains the columns
``<term>_n_points`` and ``<term>_resampled_at`` (the step of the last change), and
``events`` lists every change.

Example
-------
>>> import numpy as np, pinncore as pc
>>> from pinncore.resampling import RAD
>>> problem = pc.problems.harmonic()
>>> rad = RAD("pde", every=10, n_candidates=500, seed=0)
>>> run = pc.Run(problem, pc.MLP([1, 16, 1], seed=0), weighting=pc.Fixed({"ic": 100.0}),
...              log_every=10, warn=False, observers=[rad])
>>> run.step(20)
'completed'
>>> [e["step"] for e in rad.events], run.problem.n_points["pde"]
([10, 20], 50)
>>> run.history["pde_resampled_at"].tolist()
[nan, 10.0]
"""
from __future__ import annotations

import numbers

import numpy as np

from .observers import Observer

__all__ = ["rad_density", "rad_select", "rar_select", "residual_norm", "RAD", "RARG", "carry_point_states"]


def residual_norm(r):
    """ε_i = ‖r_·,i‖₂ over the components of residuals ``r`` (C, N) → (N,).

    >>> residual_norm(np.array([[3.0, 0.0], [4.0, 1.0]]))
    array([5., 1.])
    """
    r = np.asarray(r, dtype=np.float64)
    if r.ndim == 1:
        r = r[None]
    return np.sqrt((r * r).sum(axis=0))


def rad_density(eps, k=1.0, c=1.0):
    """The RAD sampling density p_i ∝ ε_i^k / mean(ε^k) + c, normalised to sum 1 (Wu et al. 2023, eq. 2).

    >>> rad_density(np.array([0.0, 1.0, 3.0]), k=1.0, c=0.0)
    array([0.  , 0.25, 0.75])
    """
    eps = np.asarray(eps, dtype=np.float64)
    if eps.ndim != 1 or eps.size == 0 or not np.isfinite(eps).all() or (eps < 0).any():
        raise ValueError("eps must be a non-empty 1-D array of finite residual magnitudes >= 0")
    k, c = _nonneg(k, "k"), _nonneg(c, "c")
    ek = eps ** k
    mean = ek.mean()
    if mean == 0.0:
        p = np.ones_like(eps)                         # a zero residual everywhere: uniform
    else:
        p = ek / mean + c
    return p / p.sum()


def rad_select(eps, n, k=1.0, c=1.0, rng=None):
    """Indices of ``n`` of the candidates drawn without replacement with the RAD density.

    Weighted sampling without replacement by keys u_i^(1/p_i), the n largest (Efraimidis &
    Spirakis 2006); zero-density candidates are taken last. Returned in increasing order.

    >>> idx = rad_select(np.array([0.0, 0.0, 10.0, 10.0]), 2, c=0.0, rng=np.random.default_rng(0))
    >>> idx.tolist()
    [2, 3]
    """
    p = rad_density(eps, k, c)
    n = _count(n, "n")
    if n > p.size:
        raise ValueError(f"n = {n} points cannot be drawn without replacement from {p.size} candidates")
    rng = np.random.default_rng(0) if rng is None else rng
    u = rng.random(p.size)
    with np.errstate(divide="ignore"):
        keys = np.where(p > 0, np.log(u) / np.where(p > 0, p, 1.0), -np.inf)   # log of u^(1/p)
    idx = np.argpartition(-keys, n - 1)[:n] if 0 < n < p.size else np.arange(p.size)[:n]
    return np.sort(idx)


def rar_select(eps, n_add):
    """Indices of the ``n_add`` candidates with the largest residual (RAR-G), in increasing order.

    >>> rar_select(np.array([0.1, 5.0, 0.3, 2.0]), 2).tolist()
    [1, 3]
    """
    eps = np.asarray(eps, dtype=np.float64)
    n_add = _count(n_add, "n_add")
    if n_add > eps.size:
        raise ValueError(f"n_add = {n_add} exceeds the {eps.size} candidates")
    if n_add == 0:
        return np.zeros(0, dtype=np.int64)
    return np.sort(np.argsort(-eps, kind="stable")[:n_add])


def carry_point_states(state, term, old_points, new_points, scale=None, keep=0):
    """A weighting state with term ``term``'s per-point arrays moved to ``new_points``.

    Every array of length N_old under ``state[...][term]`` (λ_i and its moments) is remapped:
    the first ``keep`` new points are the first ``keep`` old ones (RAR-G keeps the old points),
    every other new point takes the value at its nearest old point (distances in the scaled
    coordinates ``scale * x``). ``state["n_points"][term]`` is updated. The input is not changed.

    >>> st = {"lambda": {"pde": np.array([1.0, 5.0])}, "n_points": {"pde": 2}}
    >>> new = carry_point_states(st, "pde", np.array([[0.0], [1.0]]), np.array([[0.9], [0.1], [0.8]]))
    >>> new["lambda"]["pde"].tolist(), new["n_points"]["pde"]
    ([5.0, 1.0, 5.0], 3)
    """
    from scipy.spatial import cKDTree
    old = np.asarray(old_points, dtype=np.float64)
    new = np.asarray(new_points, dtype=np.float64)
    s = np.ones(old.shape[1]) if scale is None else np.asarray(scale, dtype=np.float64)
    src = np.arange(new.shape[0])
    if keep < new.shape[0]:
        _, near = cKDTree(old * s).query(new[keep:] * s)
        src[keep:] = near
    n_old = old.shape[0]

    def remap(v):
        if isinstance(v, dict):
            return {k: (w[src].copy() if k == term and isinstance(w, np.ndarray) and w.shape[:1] == (n_old,)
                        else remap(w)) for k, w in v.items()}
        return v

    out = remap(state) if isinstance(state, dict) else state
    if isinstance(out, dict) and isinstance(out.get("n_points"), dict) and term in out["n_points"]:
        out = dict(out)
        out["n_points"] = dict(out["n_points"])
        out["n_points"][term] = int(new.shape[0])
    return out


def _nonneg(v, what):
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not (0 <= v < np.inf):
        raise ValueError(f"{what} must be a finite number >= 0, got {v!r}")
    return float(v)


def _count(v, what, lo=0):
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < lo:
        raise ValueError(f"{what} must be an integer >= {lo}, got {v!r}")
    return int(v)


class _Resampler(Observer):
    """Shared machinery: schedule, candidates, scoring, state carry-over, history columns."""

    every = "step"

    def __init__(self, term, every, n_candidates, geometry, method, seed, start):
        from .geometry import Geometry
        if not isinstance(term, str):
            raise TypeError(f"term must be a term name, got {type(term).__name__}")
        self.term = term
        self.period = _count(every, "every", 1)
        self.n_candidates = _count(n_candidates, "n_candidates", 1)
        if geometry is not None and not isinstance(geometry, Geometry):
            raise TypeError(f"geometry must be a pinncore.geometry shape or None, got {type(geometry).__name__}")
        self.geometry = geometry
        from .geometry import METHODS
        if method not in METHODS or method == "grid":
            raise ValueError(f"method must be one of {[m for m in METHODS if m != 'grid']}, got {method!r}")
        self.method = method
        self.seed = _count(seed, "seed")
        self.start = _count(start, "start")
        self.events = []

    def on_start(self, run):
        if self.term not in run.problem.terms:
            raise ValueError(f"{type(self).__name__}: unknown term {self.term!r}; terms are {run.problem.term_names}")
        if run.problem.terms[self.term].paired:
            raise ValueError(f"{type(self).__name__}: term {self.term!r} is paired (periodic); resample a PDE term")

    def candidates(self, problem, step):
        """The candidate points of the event at ``step`` (seeded by (seed, step))."""
        from .geometry import Box
        geom = self.geometry
        if geom is None:
            lo = [problem.domain[k][0] for k in problem.inputs]
            hi = [problem.domain[k][1] for k in problem.inputs]
            geom = Box(lo, hi)
        if geom.dim != len(problem.inputs):
            raise ValueError(f"geometry is {geom.dim}-D, the problem has {len(problem.inputs)} inputs")
        seed = int(np.random.SeedSequence([self.seed, step]).generate_state(1)[0])
        return geom.sample_interior(self.n_candidates, method=self.method, seed=seed)

    def on_step(self, run, step):
        count = run.step_count
        if count < self.start or count % self.period:
            return None
        problem = run.problem
        old = problem.terms[self.term].points
        cand = self.candidates(problem, count)
        # at the unknown coefficients' current values (pc.Unknown), if the problem has any
        eps = residual_norm(run.objective.current_problem().residual_at(run.net, self.term, cand))
        rng = np.random.default_rng([self.seed, count, 1])
        new, keep = self.select(old, cand, eps, rng)
        run.w_state = carry_point_states(run.w_state, self.term, old, new, problem.scale, keep)
        run.replace_points(self.term, new)
        if callable(getattr(run.optimizer, "objective_changed", None)):
            # a dense quasi-Newton phase keeps its curvature (pinncore.bfgs, restart rule 3):
            # it re-evaluates on the new points and resets H only when the loss jumps there
            run.optimizer.objective_changed(run.opt_state)
        elif not run.optimizer.adapts_weights:
            # a second-order phase's curvature model (L-BFGS pairs and its cached loss and
            # gradient, LM's damping and its linearisation cached by parameters) describes the
            # old objective: the phase restarts with a fresh optimizer of the same settings
            opt = run.optimizer
            run.optimizer = type(opt)(**opt.config())
            run.opt_state = run.optimizer.init(run.params)   # the flat vector (unknowns after the net)
        self.events.append({"step": count, "term": self.term, "n_points": int(new.shape[0]),
                            "max_residual": float(eps.max()), "mean_residual": float(eps.mean())})
        return None

    def on_log(self, run, row):
        h = run.history
        _annotate(h, f"{self.term}_n_points", int(run.problem.n_points[self.term]))
        _annotate(h, f"{self.term}_resampled_at", run.points_changed.get(self.term))
        return None


def _annotate(history, key, value):
    """Set column ``key`` of the last history row (the column is created, None-filled, if new)."""
    col = history.columns.setdefault(key, [])
    col.extend([None] * (len(history) - len(col)))
    col[-1] = value


class RAD(_Resampler):
    """Residual-based adaptive distribution (Wu et al. 2023): every ``every`` steps, redraw all
    of ``term``'s points from ``n_candidates`` candidates with density ∝ ε^k/E[ε^k] + c.

    ``geometry``: where candidates come from (default the problem's domain box);
    ``method``: their sampler ("uniform", "sobol", "halton", "lhs"); ``start``: first step.

    >>> RAD("pde", every=500, k=1.0, c=1.0).period
    500
    """

    def __init__(self, term="pde", every=1000, k=1.0, c=1.0, n_candidates=100_000, geometry=None,
                 method="uniform", seed=0, start=0):
        super().__init__(term, every, n_candidates, geometry, method, seed, start)
        self.k, self.c = _nonneg(k, "k"), _nonneg(c, "c")

    def select(self, old, cand, eps, rng):
        n = old.shape[0]
        if n > cand.shape[0]:
            raise ValueError(f"RAD: n_candidates = {cand.shape[0]} must be at least the term's {n} points")
        return cand[rad_select(eps, n, self.k, self.c, rng)], 0


class RARG(_Resampler):
    """Greedy residual-based adaptive refinement (RAR-G): every ``every`` steps, add the
    ``n_add`` candidates with the largest residual to ``term``'s points.

    >>> RARG("pde", every=100, n_add=10).n_add
    10
    """

    def __init__(self, term="pde", every=1000, n_add=10, n_candidates=100_000, geometry=None,
                 method="uniform", seed=0, start=0, max_points=None):
        super().__init__(term, every, n_candidates, geometry, method, seed, start)
        self.n_add = _count(n_add, "n_add", 1)
        self.max_points = None if max_points is None else _count(max_points, "max_points", 1)

    def select(self, old, cand, eps, rng):
        add = self.n_add
        if self.max_points is not None:
            add = max(0, min(add, self.max_points - old.shape[0]))
        return np.concatenate([old, cand[rar_select(eps, add)]]), old.shape[0]
