"""``pc.solve``: an accurate answer within a wall-clock budget, without knowing the PINN literature.

The recipe (choices and the measurements behind them: docs/design.md, "pc.solve"):

1. **Network** (when none is given): a small tanh MLP as in the second-order PINN papers
   (Urbán, Stefanou & Pons 2025; Kiyani et al. 2025) — three hidden layers of 20 (30 cost 2.2×
   per evaluation: on Burgers in 120 s width 30 reached 4.3e-4 in 1 606 iterations where
   width 20 reached 9e-5 in ~3 000); a periodic embedding (``pc.Periodic``) in every input that a paired
   (periodic) term of the problem declares periodic, with the period read off its point pairs.
2. **Weights** fixed (``pc.Fixed``) at the values that equalise the terms' mean per-point NTK
   traces at initialisation (``balanced_weights``): second-order steps are far less sensitive
   to the weights than gradient descent, but with all weights 1 LM stayed at u ≈ 0 on
   oscillators of 6π and 8π, whose PDE rows outweigh the initial condition ~1e5 times.
3. **Warm-up** before a quasi-Newton method: Adam (lr 1e-3) for at most ``WARMUP_STEPS`` steps or
   ``WARMUP_SHARE`` of the time (a line search from a random network wastes its first hundreds
   of iterations on steps Adam makes cheaply). LM starts from the random network: on
   oscillators of 6π and 8π, 1 000 Adam steps at λ = 1 led into the trivial solution u ≈ 0,
   from which LM did not leave (rel-L2 1.0), where LM from the initialisation fits them.
4. **Second-order method by size**: Levenberg–Marquardt (``optimizer="lm"``) while one iteration
   — the Gram matrix of the residual Jacobian, rows · P · min(rows, P) flops — stays below
   ``LM_FLOPS``; beyond that the dense self-scaled BFGS (``pinncore.bfgs``), whose iteration
   costs about one loss-and-gradient evaluation; L-BFGS only when the P × P matrix would not fit.
5. **Adaptive resampling** (BFGS phase): RAD (Wu et al. 2023, k = c = 1) of every interior term
   every ``RAD_EVERY`` iterations from ``RAD_CANDIDATES`` candidates (the papers' setting);
   the interior term gets at least ``MIN_INTERIOR_POINTS`` points first. Terms on a domain that is
   not the problem's box and has no ``problem.geometry`` are not resampled.
6. **Stops** at ``tol`` (rel-L2 when the problem has an exact solution, else the total loss), at
   stagnation (no 1 % improvement over ``STALL_WINDOW`` iterations of the method), or at the
   time limit (checked after every iteration). When the method ends its phase early (LM stalls,
   the line search fails) the remaining time goes to the other method; when an attempt ends short
   of ``tol`` (stagnation, both methods stalled, divergence) with at least ``RESTART_SHARE`` of
   the time left and its loss above ``ROUNDOFF`` × its starting loss, the recipe starts again
   from a network of the next seed, and the best result is returned (``record["attempts"]``);
   it stops starting again when an attempt ends at the best one's loss within ``SAME_FLOOR``.

The result is the usual ``TrainResult``; ``result.record`` (also ``result.choices``) says what
was chosen and why.

>>> import pinncore as pc
>>> r = pc.solve(pc.problems.harmonic(), time_limit=20, tol=1e-4, progress=False)
>>> r.record["method"], r.rel_l2 <= 1e-4
('lm', True)
"""
from __future__ import annotations

import math
import time

import numpy as np

from .bfgs import BFGS
from .embedding import Periodic
from .network import MLP
from .observers import Observer, StopAtTolerance
from .problem import Problem
from .resampling import RAD
from .run import Run
from .weighting import Fixed

__all__ = ["solve", "choose_network", "choose_method", "balanced_weights", "interior_terms", "TimeLimit",
           "Stagnation"]

WARMUP_STEPS = {"lm": 0, "bfgs": 1000, "lbfgs": 1000}
WARMUP_SHARE = 0.1
LM_FLOPS = 5e8
RAD_EVERY = 500
RAD_CANDIDATES = 100_000
MIN_INTERIOR_POINTS = 4000
STALL_WINDOW = {"lm": 100, "bfgs": 3000, "lbfgs": 3000}
RESTART_SHARE = 0.25
ROUNDOFF = 1e-14
SAME_FLOOR = 0.01
_FOREVER = 10 ** 9


class TimeLimit(Observer):
    """Stop the run (status "stopped") after the iteration that reaches ``deadline``
    (``time.perf_counter()`` seconds), or earlier when the next iteration would end past it:
    when the shorter of the last two iterations no longer fits before the deadline. At 400 000
    points an SSBFGS iteration (0.45 s) and the closing history row (0.26 s) overran a 3 s limit
    by 0.7 s; the shorter of two keeps one slow iteration (a resample, a log row) from ending a
    phase early.

    >>> TimeLimit(0.0).every
    'step'
    """

    every = "step"

    def __init__(self, deadline, what="the time limit"):
        self.deadline, self.what = float(deadline), what
        self._last, self._dt = None, (math.inf, math.inf)

    def on_start(self, run):
        self._last, self._dt = time.perf_counter(), (math.inf, math.inf)

    def on_step(self, run, step):
        now = time.perf_counter()
        if self._last is not None:
            self._dt = (self._dt[1], now - self._last)
        self._last = now
        nxt = min(self._dt)
        if now >= self.deadline or (math.isfinite(nxt) and now + nxt >= self.deadline):
            run.request_stop("stopped", f"stopped at {self.what} (step {run.step_count})")
        return None


class Stagnation(Observer):
    """Stop when the tracked value has not fallen below (1 − ``rel``) × its best value before
    the last ``window`` iterations of this phase. The value is the rel-L2 error when the
    problem has an exact solution (it does not depend on the collocation points), else the
    total loss — and then only rows since the points last changed count (a resample moves the
    loss onto other points). On an inverse problem the unknown coefficients must also have
    settled: none moved by more than ``rel`` / 10 of its size over the window (with noisy data
    the fit's error levels off at the noise while the coefficients are still moving).

    >>> Stagnation(window=3000).window
    3000
    """

    def __init__(self, window=3000, rel=1e-2):
        self.window, self.rel = int(window), float(rel)
        self._rows = []

    def on_start(self, run):
        self._rows = []

    def on_log(self, run, row):
        err = row.get("rel_l2")
        if err is None:
            changed = max(run.points_changed.values(), default=-1)
            self._rows = [r for r in self._rows if r[0] > changed]
        value = float(err if err is not None else row["total_loss"])
        unknowns = np.array([float(v) for k, v in row.items() if k.startswith("unknown:")])
        self._rows.append((int(row["step"]), value, unknowns))
        cut = self._rows[-1][0] - self.window
        before = [r for r in self._rows if r[0] <= cut]
        if not before or not math.isfinite(value):
            return None
        self._rows = [r for r in self._rows if r[0] >= cut - self.window]   # bounded memory
        if min(r[1] for r in self._rows if r[0] > cut) > (1.0 - self.rel) * min(r[1] for r in before) \
                and self._settled(before[-1][2], unknowns):
            what = "rel-L2" if err is not None else "loss"
            run.request_stop("stopped", f"stopped at stagnation: the {what} fell by less than {self.rel:.0%} over "
                                        f"{self.window} iterations (step {row['step']})")
        return None

    def _settled(self, then, now):
        """Whether no unknown moved by more than rel/10 of its size (at least 1e-12) since ``then``."""
        if now.size == 0 or then.shape != now.shape:
            return True
        return bool(np.all(np.abs(now - then) <= 0.1 * self.rel * np.maximum(np.abs(now), 1e-12)))


def _periods(problem):
    """{input name: period} read off the problem's paired (periodic) terms."""
    out = {}
    for term in problem.terms.values():
        m = term.paired
        if not m:
            continue
        a, b = term.points[:m], term.points[m:]
        diff = np.abs(b - a)
        for k, name in enumerate(problem.inputs):
            if np.all(diff[:, k] > 0) and np.allclose(diff[:, k], diff[0, k], rtol=1e-9):
                out[name] = float(diff[0, k])
    return out


def choose_network(problem, seed=0):
    """(net, reason): the small tanh MLP of the papers, periodic where the problem says so.

    >>> net, why = choose_network(__import__("pinncore").problems.harmonic())
    >>> net.layers, why.split(";")[0]
    ([1, 20, 20, 20, 1], 'tanh MLP [1, 20, 20, 20, 1]')
    """
    d, m = len(problem.inputs), len(problem.outputs)
    width = 20
    layers = [d, width, width, width, m]
    periods = _periods(problem)
    why = (f"tanh MLP {layers}; three hidden layers of {width} as in the second-order PINN papers "
           f"(Urbán et al. 2025, Kiyani et al. 2025)")
    if periods:
        emb = Periodic.for_problem(problem, periods, harmonics=1)
        return MLP(layers, seed=seed, embedding=emb), why + f"; exactly periodic embedding in {sorted(periods)} " \
                                                           f"(periods {periods}, from the problem's paired terms)"
    return MLP(layers, seed=seed), why


def balanced_weights(problem, net):
    """({term: λ}, reason): fixed weights that equalise the terms' mean per-point NTK traces at
    initialisation, λ_a = max_b m_b / m_a with m_a = tr K_a / N_a (Wang, Yu & Perdikaris 2022's
    NTK weights, once, frozen).

    >>> import pinncore as pc
    >>> w, why = balanced_weights(pc.problems.harmonic(), pc.MLP([1, 20, 20, 20, 1], seed=0))
    >>> w["pde"], w["ic"] > 100
    (1.0, True)
    """
    tr = problem.ntk_traces(net)
    n = problem.n_points
    m = {k: tr[k] / max(int(n[k]), 1) for k in problem.term_names}
    top = max(m.values())
    if not (math.isfinite(top) and top > 0 and all(math.isfinite(v) and v > 0 for v in m.values())):
        return {k: 1.0 for k in problem.term_names}, "all 1: the NTK traces at initialisation are not all positive"
    w = {k: float(top / v) for k, v in m.items()}
    return w, ("λ_a = max_b m_b / m_a, m_a the mean per-point NTK trace of term a at initialisation (Wang, Yu & "
               "Perdikaris 2022), frozen: Gauss–Newton and quasi-Newton steps are far less sensitive to the "
               "weights than gradient descent, but not insensitive (oscillators of 6π and 8π stayed at u ≈ 0 "
               "with all weights 1)")


def _rows(problem):
    return sum(int(v) for v in problem.n_points.values()) * len(problem.outputs)


def choose_method(problem, net):
    """(optimizer name, reason): LM while rows·P·min(rows, P) ≤ LM_FLOPS, dense SSBFGS beyond,
    L-BFGS when the P × P matrix would not fit BFGS's memory budget.

    >>> import pinncore as pc
    >>> choose_method(pc.problems.harmonic(), pc.MLP([1, 20, 20, 20, 1]))[0]
    'lm'
    """
    rows, P = _rows(problem), int(net.n_params)
    flops = rows * P * min(rows, P)
    if flops <= LM_FLOPS:
        return "lm", (f"Levenberg–Marquardt: rows × P × min(rows, P) = {rows} × {P} × {min(rows, P)} = {flops:.2g} "
                      f"flops per iteration <= {LM_FLOPS:.0e} (an iteration takes well under a second)")
    if BFGS().matrix_bytes(P) > BFGS().matrix_budget:
        return "lbfgs", f"L-BFGS: the dense {P} x {P} inverse Hessian exceeds BFGS's memory budget"
    return "bfgs", (f"self-scaled BFGS: an LM iteration would cost {flops:.2g} flops (> {LM_FLOPS:.0e}); "
                    f"a BFGS iteration costs O(P²) = {P * P:.2g} beside one loss-and-gradient evaluation")


def _on_box(problem, points):
    """Whether ``points`` fill the problem's domain box (every cell of a coarse grid holds at
    least 70 % of its share): only then may RAD draw candidates from the box."""
    lo = np.array([problem.domain[k][0] for k in problem.inputs], dtype=np.float64)
    hi = np.array([problem.domain[k][1] for k in problem.inputs], dtype=np.float64)
    d = lo.size
    cells = 4 if d <= 3 else 2
    n = points.shape[0]
    if n < 20 * cells ** d:
        return False
    idx = np.clip(((points - lo) / (hi - lo) * cells).astype(np.int64), 0, cells - 1)
    flat = np.ravel_multi_index(idx.T, (cells,) * d)
    counts = np.bincount(flat, minlength=cells ** d)
    return bool(counts.min() >= 0.7 * n / cells ** d)


def interior_terms(problem):
    """Names of the terms whose points are interior collocation points — not on a face of the
    domain box nor on the boundary of ``problem.geometry``, not paired, and whose residual can be
    evaluated at other points (a term built from values given as an array, such as measured data,
    cannot: its points are part of the data) — the terms adaptive resampling may redraw.

    >>> interior_terms(__import__("pinncore").problems.burgers())
    ['pde']
    """
    lo = np.array([problem.domain[k][0] for k in problem.inputs], dtype=np.float64)
    hi = np.array([problem.domain[k][1] for k in problem.inputs], dtype=np.float64)
    tol = 1e-9 * (hi - lo)
    geom = problem.geometry
    spans = geom is not None and getattr(geom, "dim", None) == len(problem.inputs)
    out = []
    for name, term in problem.terms.items():
        pts = np.asarray(term.points, dtype=np.float64)
        if term.paired or pts.ndim != 2 or pts.shape[0] < 100:
            continue
        on_face = ((np.abs(pts - lo) <= tol) | (np.abs(pts - hi) <= tol)).any(axis=1)
        if spans:   # a boundary condition on a disk, an L-shape's inner corner: not on the box's faces
            on_face |= geom.on_boundary(pts)
        if on_face.mean() < 0.01 and _relowers(problem, name):
            out.append(name)
    return out


def _relowers(problem, name):
    """Whether term ``name``'s residual can be lowered at points other than its own (values
    given as arrays for fixed points cannot, pinncore.conditions): the midpoints of consecutive
    points, which stay inside a convex-enough domain and differ from every given point."""
    pts = np.asarray(problem.terms[name].points, dtype=np.float64)
    trial = 0.5 * (pts[:8] + pts[1:9])
    try:
        problem.with_points(name, trial)
    except Exception:   # noqa: BLE001 - any failure (a user's pointwise function indexing a fixed array) means: keep the points
        return False
    return True


def _resamplers(problem, seed):
    """(problem with enlarged interior terms, RAD observers, reason)."""
    geom = problem.geometry
    if geom is not None and getattr(geom, "dim", None) != len(problem.inputs):
        # a spatial geometry inside a space-time problem: candidates from it would be wrong
        return problem, [], "no resampling: the problem's geometry does not span all its inputs"
    obs, names = [], []
    for k, name in enumerate(interior_terms(problem)):
        pts = problem.terms[name].points
        if geom is None and not _on_box(problem, pts):
            continue
        if pts.shape[0] < MIN_INTERIOR_POINTS:
            rad = RAD(name, every=RAD_EVERY, n_candidates=RAD_CANDIDATES, geometry=geom, seed=seed + k)
            more = rad.candidates(problem, 0)[:MIN_INTERIOR_POINTS]
            problem = problem.with_points(name, more)
        obs.append(RAD(name, every=RAD_EVERY, n_candidates=RAD_CANDIDATES, geometry=geom, seed=seed + k,
                       start=1))
        names.append(name)
    if not obs:
        return problem, [], "no resampling: no interior term fills a known domain"
    return problem, obs, (f"RAD (k = c = 1) of {names} every {RAD_EVERY} iterations from {RAD_CANDIDATES} "
                          f"candidates, at least {MIN_INTERIOR_POINTS} points; the inverse Hessian is kept "
                          f"through each change (pinncore.bfgs, restart rule 3)")


def _check_args(problem, net, time_limit, tol, seed):
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a pc.Problem, got {type(problem).__name__}")
    if net is not None and not isinstance(net, MLP):
        raise TypeError(f"net must be a pc.MLP or None, got {type(net).__name__}")
    if net is not None:
        problem.check_net(net)
    if isinstance(time_limit, bool) or not isinstance(time_limit, (int, float)) or not math.isfinite(time_limit) \
            or time_limit <= 0:
        raise ValueError(f"time_limit must be a finite number of seconds > 0, got {time_limit!r}")
    if tol is not None and (isinstance(tol, bool) or not isinstance(tol, (int, float)) or not math.isfinite(tol)
                            or tol <= 0):
        raise ValueError(f"tol must be None or a finite number > 0, got {tol!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")


def solve(problem, net=None, *, time_limit=300.0, tol=None, progress=True, seed=0):
    """Solve ``problem`` as accurately as ``time_limit`` seconds allow (module docstring).

    net : a pc.MLP to train (a copy), or None to choose one. tol : stop once the rel-L2 error
    (problems with an exact solution) or else the total loss is at most ``tol``.
    progress : show a progress bar (tqdm) for phases longer than a few seconds.
    Returns a ``TrainResult`` with ``record`` (= ``choices``): the network, method, weights,
    resampling, the phases run and why each ended, each with its reason, the final unweighted
    ``loss`` and the ``attempts`` (one per network tried).

    >>> import pinncore as pc
    >>> r = pc.solve(pc.problems.harmonic(), time_limit=5, progress=False)
    >>> r.record["method"], r.record["network"]["layers"], r.wall_time < 10
    ('lm', [1, 20, 20, 20, 1], True)
    """
    _check_args(problem, net, time_limit, tol, seed)
    t0 = time.perf_counter()
    deadline = t0 + float(time_limit)
    best, attempts = None, []
    while True:   # a fresh network when an attempt ended short of tol with a quarter of the time left
        result = _attempt(problem, net, seed + len(attempts), deadline, tol, progress)
        attempts.append({"seed": seed + len(attempts), "rel_l2": result.rel_l2, "loss": result.record["loss"],
                         "stop": result.record["stop"]})
        again = best is not None and _same_floor(result, best)
        if best is None or _better(result, best):
            best = result
        left = deadline - time.perf_counter()
        if net is not None or result.status == "converged" or left < RESTART_SHARE * float(time_limit) \
                or _at_roundoff(result) or again:
            break
    best.record.update(time_limit=float(time_limit), tol=tol, attempts=attempts, wall_time=time.perf_counter() - t0)
    return best


def _at_roundoff(result):
    """Whether an attempt's loss fell to ``ROUNDOFF`` × its loss at the start: a fresh network
    cannot do better there (the oscillators' LM phases end at 1e-19 × their start, rel-L2 1e-10,
    by the optimizers' own convergence tests) and restarting only spends the time."""
    loss = result.history["total_loss"]
    return bool(len(loss) and math.isfinite(loss[-1]) and loss[-1] <= ROUNDOFF * loss[0])


def _same_floor(result, best):
    """Whether a later attempt (from another network) ended at the best earlier attempt's loss within
    ``SAME_FLOOR``: the floor is then the problem's (noise in the data, the points), not the
    start's, and a further network finds it again (a noisy inverse problem restarted 14 times
    to 5.63e-5 ± 0.01 %). Only for an attempt whose loss fell below 1e-3 × its start: networks
    caught by the same trivial solution (u ≈ 0, the initial condition unmet) also agree, and there
    a further seed may escape."""
    a, b = result.record["loss"], best.record["loss"]
    loss = result.history["total_loss"]
    fell = len(loss) and math.isfinite(loss[-1]) and loss[-1] <= 1e-3 * loss[0]
    return bool(fell and math.isfinite(a) and abs(a - b) <= SAME_FLOOR * b)


def _better(a, b):
    """Whether result ``a`` beats ``b``: by rel-L2 when known, else by the unweighted loss."""
    if a.rel_l2 is not None and b.rel_l2 is not None:
        return a.rel_l2 < b.rel_l2
    return a.record["loss"] < b.record["loss"]


def _attempt(problem, net, seed, deadline, tol, progress):
    """One run of the recipe from a network (chosen with ``seed`` when ``net`` is None) until
    ``deadline``; returns its TrainResult with ``record``."""
    record = {}
    if net is None:
        net, record["network_reason"] = choose_network(problem, seed)
    else:
        record["network_reason"] = "given by the caller"
    record["network"] = {"layers": list(net.layers), "n_params": int(net.n_params), **net.spec.config()}
    method, record["method_reason"] = choose_method(problem, net)
    record["method"] = method
    rad = []
    if method != "lm":
        problem, rad, record["resampling"] = _resamplers(problem, seed)
    else:
        record["resampling"] = "none: LM's iterations are few and each sees every point"
    obs = [TimeLimit(deadline)]
    if tol is not None:
        obs.append(StopAtTolerance(rel_l2=tol) if problem.exact is not None else StopAtTolerance(loss=tol))
    weights, record["weights_reason"] = balanced_weights(problem, net)
    record["weights"] = weights
    run = Run(problem, net, weighting=Fixed(weights), optimizer="adam", lr=1e-3, seed=seed, log_every=100, warn=False,
              observers=obs, progress=bool(progress))
    now = time.perf_counter()   # the share counts from here: building the run (lowering) is not warm-up
    warm = TimeLimit(now + WARMUP_SHARE * (deadline - now), "the warm-up's share of the time")
    run.add_observer(warm)
    run.step(WARMUP_STEPS.get(method, 1000))
    warm.deadline = math.inf   # the warm-up's limit ends with it
    record["warmup"] = f"Adam lr 1e-3, {run.step_count} steps ({run.message or 'completed'})"
    phases = []
    if run.status in ("completed", "stopped") and time.perf_counter() < deadline and not _converged(run):
        for obs_ in rad:
            run.add_observer(obs_)
        phases = _second_order(run, method, deadline)
    record["phases"] = phases
    result = run.result()
    record["stop"] = run.message or run.status
    record["loss"] = float(sum(result.history[f"{k}_loss"][-1] for k in run.names))
    result.record = result.choices = record
    return result


def _converged(run):
    return run.status == "converged"


def _second_order(run, method, deadline):
    """Run second-order phases until tol, stagnation, the time limit or a failure; a phase
    that ends by its own rule hands the remaining time to the other method (at most 4 phases)."""
    phases = []
    stall = Stagnation()
    run.add_observer(stall)
    for _ in range(4):
        start = run.step_count
        stall.window = STALL_WINDOW.get(method, 3000)
        status = run.step(_FOREVER, optimizer=method)
        phases.append({"optimizer": method, "iterations": run.step_count - start, "ended": run.message or status})
        if status != "completed" or time.perf_counter() >= deadline:
            break
        # the optimizer ended its own phase (LM stalled, the line search failed): switch
        method = "bfgs" if method == "lm" else ("lm" if method == "bfgs" and _lm_fits(run) else method)
    return phases


def _lm_fits(run):
    return _rows(run.problem) * run.net.n_params * min(_rows(run.problem), run.net.n_params) <= 4 * LM_FLOPS
