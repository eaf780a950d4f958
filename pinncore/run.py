"""The training run as an object: ``pc.Run`` owns a network copy, the optimizer and weighting
states, the step counter and the history, and is stepped, observed, stopped and resumed from
outside (``pc.train`` is a short wrapper over it; docs/design.md §5).

One iteration: the kernel returns every term's loss and gradient in one call (the
``Objective``); while the optimizer adapts weights (Adam), the weighting scheme updates its
state from them (its (init, update) pair); at log steps a history row is written and the
observers see it; the optimizer takes its step in place. Second-order phases (L-BFGS, LM)
freeze the weights: the objective must not move under a curvature model. A run can chain
phases (``run.step(n, optimizer="lbfgs")``); every phase ends with a history row.

Stops cleanly at the end of an iteration: on the first non-finite loss or gradient (naming
the step and term, keeping the last finite parameters), on Ctrl-C, on ``cancel()`` from any
thread, when an observer asks, or when the optimizer ends its phase (converged, stalled).
An exception out of an observer or a user function propagates with status "failed" (never
left "running"); a checkpoint that cannot be written warns and the run goes on
(``pinncore.observers.Checkpoint``). Deterministic: the same seed gives a bitwise identical history, and a saved state resumes
exactly (k + k steps == 2k steps).

>>> import pinncore as pc
>>> run = pc.Run(pc.problems.harmonic(), pc.MLP([1, 16, 16, 1]), weighting=pc.Fixed({"ic": 100.0}),
...              log_every=10, warn=False)
>>> run.step(30)
'completed'
>>> run.step(5, optimizer="lbfgs")
'completed'
>>> result = run.result()       # closes the history with a row at the last step
>>> run.history["step"].tolist(), run.history["phase"].tolist()[-2:]
([0, 10, 20, 30, 35], ['adam', 'lbfgs'])
"""
from __future__ import annotations

import math
import os
import signal
import threading
import time
import warnings

import numpy as np

from . import io as _io
from . import optim as _optim
from . import weighting as _weighting
from .diagnostics import CrisisMonitor, LossBalanceWarning, conflict_stats
from .history import History
from .network import MLP
from .objective import Objective
from .observers import Observer, Printer
from .progress import Progress
from .problem import Problem
from .unknown import flat_vector, saved_unknowns
from .result import TrainResult
from .state import STATE_KIND, check_like, check_state, load_state, optimizer_state

__all__ = ["Run", "TrainResult"]


def check_int(name, v, lo):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    return int(v)


def resolve_weighting(weighting):
    """A scheme instance from an instance, a scheme class, a name, or None (the default)."""
    if weighting is None:
        return _weighting.default()
    if isinstance(weighting, type) and issubclass(weighting, _weighting.Weighting):
        return weighting()
    if isinstance(weighting, str):
        return _weighting.get(weighting)
    if not isinstance(weighting, _weighting.Weighting):
        raise TypeError(f"weighting must be a pc weighting scheme (pc.Fixed(), pc.NTK(), ...), its class or its "
                        f"name, got {type(weighting).__name__}")
    return weighting


def resolve_optimizer(optimizer, lr=1e-3):
    """An optimizer instance from an instance, a class, or a name ("adam" uses ``lr``)."""
    if isinstance(optimizer, type) and issubclass(optimizer, _optim.Optimizer):
        optimizer = optimizer()
    if isinstance(optimizer, _optim.Optimizer):
        return optimizer
    if isinstance(optimizer, str) and optimizer.lower() == "adam":
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
            raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
        return _optim.Adam(lr=lr)
    return _optim.get(optimizer)


def _entry(optimizer, state):
    """A saved optimizer entry: name, config and the state's leaves (copied)."""
    return {"name": optimizer.name, "config": optimizer.config(),
            **{k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in state.items()}}


class _Interrupt:
    """Turn Ctrl-C into a flag checked at the end of each iteration (main thread only)."""

    def __init__(self):
        self.flag = False
        self._old = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            try:
                self._old = signal.signal(signal.SIGINT, self._handler)
            except (ValueError, OSError):
                self._old = None
        return self

    def _handler(self, signum, frame):
        self.flag = True

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        return False


class Run:
    """A training run of ``net`` (copied) on ``problem`` (see the module docstring).

    Parameters
    ----------
    problem : pc.Problem. net : pc.MLP, or None for ``pc.MLP([d, 50, 50, 50, m], seed=seed)``.
    weighting : a scheme, its class or name, or None for ``pc.weighting.default()``.
    optimizer : "adam" (with ``lr``), "lbfgs", "lm", or an optimizer object: the first phase.
    log_every : a history row every this many steps (and at step 0 and at every phase end).
    warn : issue ``LossBalanceWarning`` at step 0. verbose : print every history row.
    observers : ``pinncore.observers.Observer`` objects (more with ``add_observer``).
    progress : show a tqdm bar for phases longer than a few seconds (``pinncore.progress``);
        None (default): when stderr is a terminal or the run is in a notebook, unless ``verbose``.
    resume : a path or state dict saved by ``Run.save`` / ``TrainResult.save``: continue from it.
        With ``weighting=None`` the saved scheme is rebuilt with its saved settings; with
        ``optimizer`` left at "adam" (or naming the saved one) the saved optimizer and its
        state continue.

    Attributes: ``net``, ``problem``, ``names``, ``scheme``, ``optimizer``, ``step_count``,
    ``history``, ``status`` ("ready" before the first step), ``message``, ``weights``, and,
    inside an observer's ``on_step``, ``context`` (the weighting Context of that iteration).
    """

    def __init__(self, problem, net=None, *, weighting=None, optimizer="adam", lr=1e-3, seed=0, log_every=100,
                 warn=True, verbose=False, observers=(), resume=None, progress=None):
        if not isinstance(problem, Problem):
            raise TypeError(f"problem must be a pc.Problem, got {type(problem).__name__}")
        self.log_every = check_int("log_every", log_every, 1)
        seed = check_int("seed", seed, 0)
        self.warn = bool(warn)
        state = self._load(resume)
        self.scheme = resolve_weighting(weighting) if weighting is not None or state is None \
            else self._saved_scheme(state)
        self.problem, self.names = problem, problem.term_names
        self.net = self._network(problem, net, seed, state).copy()
        self.params = flat_vector(self.net, problem.unknowns)   # [net.params | unknowns' φ]
        self._observers, self._lock, self._cancel = [], threading.Lock(), threading.Event()
        self._stop_request, self._intr = None, None
        self.status, self.message, self._ctx, self._ev = "ready", "", None, None
        self._ntk_cache = None
        self.target_step = None   # the step the current step(n) call runs to (progress bars read it)
        self._points = {}   # {term: points} given to replace_points (saved with the state)
        self.points_changed = {}   # {term: step of its last replace_points}
        self._base = None   # (optimizer, state) of the last weight-adapting phase, while another runs
        if state is None:
            self.optimizer = resolve_optimizer(optimizer, lr)
            self.opt_state = self.optimizer.init(self.params)
            self.w_state, self.step_count, self.history = self.scheme.init(problem), 0, History(self.names)
        else:
            self._restore(state, optimizer, lr)
        self._first_row, self._adapting = not len(self.history), False
        self._wall0 = self.history.columns["wall_time"][-1] if len(self.history) else 0.0
        self._elapsed, self._t_loop = 0.0, None   # seconds in finished step() calls; start of the current one
        self._crisis = CrisisMonitor.from_history(self.history)   # episodes continue across a resume
        self._update_obs = []
        # the net's own layout (embedding, encoders); unknowns are not weights
        self._mask = np.concatenate([_weighting.weight_mask(self.net), np.zeros(len(problem.unknowns), bool)])
        self._prev, self._spare = self.params.copy(), self.params.copy()
        self._needs_res = bool(self.scheme.needs_residuals)
        self.objective = Objective(self.problem, self.net, self._lam(), self._pw(), self._needs_res, self.params)
        for obs in observers:
            self.add_observer(obs)
        if verbose:
            self.add_observer(Printer())
        if progress is None:   # auto: a bar where someone watches (a terminal, a notebook) and
            progress = Progress.wanted() and not verbose   # no per-row printing interleaves with it
        if progress and not any(isinstance(o, Progress) for o in self._observers):
            self.add_observer(Progress())

    # -- construction ---------------------------------------------------------------------
    @property
    def unknowns(self):
        """{name: value} of the problem's unknowns at the current parameters ({} without unknowns)."""
        return self.problem.unknowns.as_dict(self.params[self.net.n_params:])

    @staticmethod
    def _load(resume):
        if resume is None:
            return None
        if isinstance(resume, dict):
            return check_state(resume)
        if isinstance(resume, (str, bytes, os.PathLike)):
            return load_state(resume)
        raise TypeError(f"resume must be a path or a state dict from pc.load_state, got {type(resume).__name__}")

    @staticmethod
    def _saved_scheme(state):
        try:
            return _weighting.restore(state["weighting"]["name"], state["weighting"].get("config", {}))
        except (TypeError, ValueError, OverflowError) as e:
            raise ValueError(f"resume state: cannot rebuild the weighting scheme ({e})") from e

    @staticmethod
    def _network(problem, net, seed, state):
        if net is None and state is not None:
            net = MLP.from_spec_state(state, state["layers"], int(state.get("seed", 0)), np.dtype(state["dtype"]),
                                      state.get("backend", "cpp"), source="resume state")
        if net is None:
            net = MLP([len(problem.inputs), 50, 50, 50, len(problem.outputs)], seed=seed)
        if not isinstance(net, MLP):
            raise TypeError(f"net must be a pc.MLP, got {type(net).__name__}")
        problem.check_net(net)
        if state is not None and (list(net.layers) != list(state["layers"]) or net.dtype != np.dtype(state["dtype"])):
            raise ValueError(f"resume state is for layers {state['layers']} ({state['dtype']}), "
                             f"net is {net.layers} ({net.dtype})")
        if state is not None and net.spec.config() != {"arch": state.get("arch", "plain"), "embedding": state.get("embedding")}:
            raise ValueError(f"resume state is for arch {state.get('arch', 'plain')!r}, embedding {state.get('embedding')}; "
                             f"net has {net.spec.config()}")
        if not np.isfinite(net.params).all():
            raise ValueError("net.params contains NaN or infinite values; cannot train from them")
        return net

    def _restore(self, state, optimizer, lr):
        """Continue a saved run: parameters, optimizer and weighting states, step, history."""
        if list(state["terms"]) != self.names:
            raise ValueError(f"resume state has terms {state['terms']}, the problem has {self.names}")
        if type(self.scheme).__name__ != state["weighting"]["name"]:
            raise ValueError(f"resume state used weighting {state['weighting']['name']}, got {type(self.scheme).__name__}")
        self.net.params[...] = state["params"]
        self.params[self.net.n_params:] = saved_unknowns(state, self.problem.unknowns)
        self.optimizer, self.opt_state = self._saved_optimizer(state, optimizer, lr)
        self._base = self._saved_optimizer(state, "adam", lr) if "phase" in state else None
        self.w_state = state["weighting"]["state"]
        for k, pts in state.get("points", {}).items():   # points a resampler replaced
            self.problem = self.problem.with_points(k, pts)
            self._points[k] = self.problem.terms[k].points
        self.points_changed = {k: int(v) for k, v in state.get("points_changed", {}).items()}
        self._check_scheme_state(state["weighting"]["name"])
        self.step_count = int(state["step"])
        self.history = History(self.names, state["history"])
        # The saved run's closing row (at a step that is not a log step) belongs to that run's
        # end, not to the continued run: drop it so k + k steps log exactly like 2k steps.
        if len(self.history) and self.history.last_step == self.step_count and self.step_count % self.log_every:
            for col in self.history.columns.values():
                col.pop()

    def _saved_optimizer(self, state, optimizer, lr):
        """(optimizer, state): the saved one continues when ``optimizer`` names it (or is the
        default "adam": the saved first-order optimizer wins); otherwise a fresh one."""
        entries = [state["optimizer"]] + ([state["phase"]] if "phase" in state else [])
        wanted = optimizer.lower() if isinstance(optimizer, str) else None
        for saved in reversed(entries) if wanted not in (None, "adam") else entries:
            if wanted in ("adam", saved.get("name", "adam")):
                opt = _optim.get(saved.get("name", "adam"), **saved["config"])
                return opt, {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in optimizer_state(saved).items()}
        opt = resolve_optimizer(optimizer, lr)
        return opt, opt.init(self.params)

    def _check_scheme_state(self, name):
        try:  # a hand-made weighting state must have the structure of a fresh one and produce valid weights
            check_like(self.w_state, self.scheme.init(self.problem), "state")
            lam = self.scheme.weights(self.w_state)
            if set(lam) != set(self.names) or not all(math.isfinite(float(v)) and float(v) >= 0 for v in lam.values()):
                raise ValueError("weights must be finite, >= 0 and name every term")
            pw = self.scheme.point_weights(self.w_state)
            if pw is not None:
                self.problem.check_point_weights([pw.get(k) for k in self.names], self.net.dtype)
        except Exception as e:  # noqa: BLE001 - any failure here is a malformed file
            raise ValueError(f"resume state: the {name} weighting state is invalid ({e})") from e

    # -- public interface -----------------------------------------------------------------
    def add_observer(self, observer):
        """Attach an ``Observer``; returns it."""
        if not isinstance(observer, Observer):
            raise TypeError(f"observers must be pinncore.observers.Observer instances, got {type(observer).__name__}")
        self._observers.append(observer)
        return observer

    @property
    def observers(self):
        return tuple(self._observers)

    @property
    def weights(self):
        """{term: λ_a} as reported (SelfAdaptive reports the mean of its per-point weights)."""
        lam = self.scheme.reported_weights(self.w_state) if self.scheme.reports_weights \
            else dict(zip(self.names, self.objective.weights.tolist()))
        return {k: float(v) for k, v in lam.items()}

    @property
    def context(self):
        """The weighting ``Context`` of the last iteration (None before the first)."""
        if self._ctx is None and self._ev is not None:
            self._ctx = self._make_context(self._ev)
        return self._ctx

    def cancel(self):
        """Stop the run from any thread: a ``step`` in progress returns after the current
        iteration (status "cancelled", state consistent); later ``step`` calls return at once."""
        self._cancel.set()

    @property
    def cancelled(self):
        return self._cancel.is_set()

    def request_stop(self, status="stopped", message=""):
        """Ask the run to stop after the current iteration (observers call this)."""
        self._stop_request = (status, message or f"{status} at step {self.step_count}")

    def step(self, n=1, optimizer=None):
        """Run ``n`` iterations (of ``optimizer`` when given: a new phase, closed by a history
        row of the previous one). Returns the status: "completed" when all ``n`` ran."""
        n = check_int("n", n, 0)
        if not self._lock.acquire(blocking=False):
            raise RuntimeError("this run is already stepping in another thread")
        try:
            if optimizer is not None:
                self._start_phase(optimizer)
            if self._cancel.is_set():
                self.status, self.message = "cancelled", f"cancelled at step {self.step_count}"
                return self.status
            try:
                self._loop(n)
            except Exception as e:   # an observer or a user function raised: the run is no longer running
                if self.status == "running":
                    self.status, self.message = "failed", f"{type(e).__name__} at step {self.step_count}: {e}"
                raise
            return self.status
        finally:
            self._lock.release()

    def result(self):
        """A ``TrainResult`` of the run so far (adds the closing history row at the current step)."""
        self._close_row()
        rel = self.problem.rel_l2(self.net) if self.problem.exact is not None else None
        return TrainResult(net=self.net, history=self.history, rel_l2=rel, wall_time=self._elapsed,
                           weights=self.weights, status=self.status if self.status != "ready" else "completed",
                           message=self.message, step=self.step_count, state=self.state(), unknowns=self.unknowns)

    def state(self):
        """The full training state (a dict of plain values and arrays, see ``pinncore.state``)."""
        net = self.net
        out = {"layers": list(net.layers), "dtype": net.dtype.name, "seed": net.seed, "backend": net.backend_name,
               **net.spec_state(), "terms": list(self.names), "params": net.params.copy(), "step": self.step_count,
               "optimizer": _entry(*(self._base or (self.optimizer, self.opt_state))),
               "weighting": {"name": type(self.scheme).__name__, "config": self.scheme.config(),
                             "state": self.w_state},
               "history": self.history.to_dict()}
        if len(self.problem.unknowns):
            out["unknowns"] = {"names": list(self.problem.unknowns.names), "raw": self.params[net.n_params:].copy()}
        if self._points:
            out["points"] = {k: np.array(v) for k, v in self._points.items()}
            out["points_changed"] = dict(self.points_changed)
        if self._base is not None:  # a second-order phase runs: saved beside the first-order optimizer
            out["phase"] = _entry(self.optimizer, self.opt_state)
        return out

    def save(self, path):
        """Save the state atomically (pinncore.io, no pickle); ``pc.Run(problem, resume=path)``
        continues it exactly."""
        _io.save(path, self.state(), kind=STATE_KIND)

    def replace_points(self, term, points):
        """New collocation points for ``term`` (the problem re-lowers that term); per-point
        weighting states must be adapted by the caller (``pinncore.resampling`` does)."""
        self.problem = self.problem.with_points(term, points)
        self._points[term] = self.problem.terms[term].points
        self.points_changed[term] = self.step_count
        self.objective = Objective(self.problem, self.net, self._lam(), self._pw(), self._needs_res, self.params)
        self._ntk_cache = None

    def __repr__(self):
        return (f"Run(step={self.step_count}, phase={self.optimizer.name!r}, status={self.status!r}, "
                f"scheme={type(self.scheme).__name__})")

    # -- the loop -------------------------------------------------------------------------
    def _lam(self):
        w = self.scheme.weights(self.w_state)
        return np.array([float(w[k]) for k in self.names])

    def _pw(self):
        pw = self.scheme.point_weights(self.w_state)
        if pw is None:
            return None
        return [None if pw.get(k) is None else np.ascontiguousarray(pw[k], dtype=self.net.dtype) for k in self.names]

    def _ntk_traces(self):
        if self._ntk_cache is None or self._ntk_cache[0] != self.step_count:
            self._ntk_cache = (self.step_count, self.objective.current_problem().ntk_traces(self.net))
        return self._ntk_cache[1]

    def _make_context(self, ev):
        L, G, R = ev
        lr = self.optimizer.learning_rate
        return _weighting.StepContext(self.names, L, G, R, self._mask, self._ntk_traces,
                                      (lambda: lr(self.opt_state["step"])) if lr is not None else float,
                                      point_weighted=self.objective.point_weights is not None)

    def _start_phase(self, optimizer):
        new = resolve_optimizer(optimizer)
        if len(self.history) or self.step_count:
            self._close_row()
            for obs in self._observers:
                obs.on_phase_end(self, self.optimizer.name)
        if self.optimizer.adapts_weights and not new.adapts_weights:
            self._base = (self.optimizer, self.opt_state)
        elif new.adapts_weights:
            self._base = None
        self.optimizer, self.opt_state = new, new.init(self.params)
        self.objective.forget()

    def _loop(self, n):
        t0 = self._t_loop = time.perf_counter()
        self.status, self.message, self._stop_request = "running", "", None
        self.target_step = self.step_count + n   # where this call ends (progress bars read it)
        for obs in self._observers:
            obs.on_start(self)
        step_obs = [o for o in self._observers if o.every == "step"]
        # Observers that replay weighting updates (the audit), while the weights adapt.
        self._update_obs = [o for o in self._observers if o.replays_updates()] \
            if self.optimizer.adapts_weights else []
        # A static scheme (Fixed) never changes its weights: no context, no update call per step.
        self._adapting = self.optimizer.adapts_weights and not self.scheme.static
        self._first_row = not len(self.history)
        # Second-order iterations are few and costly: an optimizer may ask for a row at each one.
        self._row_every = 1 if self.optimizer.log_every_iteration else self.log_every
        end = self.step_count + n
        with _Interrupt() as intr, np.errstate(all="ignore"):
            # Overflow and invalid operations are expected when a run diverges; the loop
            # detects the first non-finite loss or gradient itself, so NumPy must not warn.
            self._intr = intr
            try:
                while self.step_count < end and self._iteration(step_obs):
                    pass
            except KeyboardInterrupt:
                self.status, self.message = "interrupted", f"interrupted at step {self.step_count}"
            finally:
                self._elapsed += time.perf_counter() - t0
                self._t_loop = self._intr = None
        if self.status == "running":
            self.status = "completed"
        if self.status != "completed":
            self._close_row()
        for obs in self._observers:
            obs.on_end(self)

    def _evaluation(self):
        """(L, G, R) at the current parameters; a second-order phase reuses its last evaluation."""
        if self.optimizer.adapts_weights:
            return self.objective.evaluate(None, remember=False)
        ev = self.objective.cached()
        return ev if ev is not None else self.objective.evaluate(None)

    def _iteration(self, step_obs):
        """One iteration; False when the run must stop (the status says why). This is the hot
        loop: at the seed size it must cost a few microseconds beside the kernel."""
        obj, params, step = self.objective, self.params, self.step_count
        ev = self._evaluation()
        L, G = ev[0], ev[1]
        # NaN/inf gradients: here, or in the optimizer's own pass when it checks them (Adam).
        if not (self.optimizer.checks_gradients or math.isfinite(G.sum())):
            return self._diverged(L, G)
        self._ev, self._ctx = ev, None
        pw_next, w_before = None, self.w_state
        if self._adapting and self.scheme.due(step):   # off-period steps build no context
            new = self.scheme.update(w_before, step, self.context)
            if new is not w_before:  # a scheme returns its state as is when nothing changed
                self.w_state = new
                obj.weights = self._lam()
                pw_next = self._pw()
        for obs in self._update_obs:   # e.g. the audit's shadow schemes, on this step's context
            obs.on_update(self, step)
        total = float(np.dot(obj.weights, L))
        if not math.isfinite(total):  # a NaN/inf loss, or finite terms whose weighted sum overflows
            return self._diverged(L, G, overflow=bool(np.isfinite(L).all()), w_state=w_before)
        if (step % self._row_every == 0 or self._first_row) and self.history.last_step != step:
            if self._log(ev, total):
                return False
        np.copyto(self._spare, params)   # params of this step, kept until the next one is known finite
        try:
            reason = self.optimizer.step(params, self.opt_state, obj, ev)
        except _optim.NonFiniteGradient:
            return self._diverged(L, G, w_state=w_before)
        self._prev, self._spare = self._spare, self._prev
        if pw_next is not None:
            obj.point_weights = pw_next
        self.step_count += 1
        if step % self._row_every == 0 and self._stands_still(G):
            return False
        for obs in step_obs:
            if obs.on_step(self, step):
                self.request_stop("stopped", f"stopped by {type(obs).__name__} at step {self.step_count}")
        if reason is None and self._stop_request is None and not self._cancel.is_set() and not self._intr.flag:
            return True
        return self._continue(reason)

    def _continue(self, reason):
        if self._stop_request is not None:
            self.status, self.message = self._stop_request
            return False
        if self._cancel.is_set():
            self.status, self.message = "cancelled", f"cancelled after step {self.step_count}"
            return False
        if self._intr is not None and self._intr.flag:
            self.status, self.message = "interrupted", f"interrupted by Ctrl-C after step {self.step_count}"
            return False
        if reason is not None:
            self.status, self.message = "completed", f"{self.optimizer.name}: {reason} (step {self.step_count})"
            return False
        return True

    def _diverged(self, L, G, overflow=False, w_state=None):
        """Stop with status "diverged", back at the last finite parameters (and weighting state)."""
        step = self.step_count
        if w_state is not None and w_state is not self.w_state:
            self.w_state = w_state
            self.objective.weights = self._lam()
        if overflow:
            worst = self.names[int(np.argmax(np.abs(self.objective.weights * L)))]
            what = f"the weighted loss overflows at step {step} (largest term {worst!r})"
        else:
            bad = [k for a, k in enumerate(self.names) if not (math.isfinite(L[a]) and np.isfinite(G[a]).all())]
            what = f"non-finite loss or gradient at step {step} in term(s) {', '.join(map(repr, bad))}"
            if self.objective.undefined:
                what += f" ({self.objective.undefined})"
        self.status = "diverged"
        self.message = f"{what}; returned the parameters of step {max(step - 1, 0)}"
        if step:
            self.params[...] = self._prev
        self.objective.forget()
        return False

    def _stands_still(self, G):
        """Stop with status "diverged" when the optimizer's state can no longer move the
        parameters (``Optimizer.health``: Adam's second moment overflowed under a weight of
        1e200, which used to end as "completed" with the parameters never changed)."""
        why = self.optimizer.health(self.opt_state)
        if why is None:
            return False
        lam = self.objective.weights
        scaled = lam * np.array([float(np.linalg.norm(g.astype(np.float64))) for g in G])
        worst = int(np.argmax(np.where(np.isfinite(scaled), scaled, np.inf)))
        self.status = "diverged"
        self.message = (f"{why} (step {self.step_count}; the largest weighted gradient is that of term "
                        f"{self.names[worst]!r}, λ = {lam[worst]:.3g}); reduce the weights; returned the "
                        f"parameters of step {self.step_count - 1}")
        self.params[...] = self._prev   # before the update that overflowed (it may hold inf/inf = NaN)
        self.objective.forget()
        return True

    def _log(self, ev, total, can_stop=True):
        """Append a history row for ``ev`` at the current step; True if an observer stops the run."""
        L, G, R = ev
        Lu = L if R is None or self.objective.point_weights is None else _weighting.unweighted_losses(R)
        step = self.step_count
        row = {"step": step, "phase": self.optimizer.name, "wall_time": self._wall_time(), "total_loss": total}
        rw = self.weights
        for a, k in enumerate(self.names):
            row[f"{k}_loss"] = float(Lu[a])
            row[f"{k}_grad_norm"] = float(np.linalg.norm(G[a].astype(np.float64)))
            row[f"{k}_weight"] = rw[k]
        if self.problem.exact is not None:
            row["rel_l2"] = self.problem.rel_l2(self.net)
        for k, v in self.unknowns.items():
            row[f"unknown:{k}"] = v
        warning = self._balance_columns(row, G)
        for obs in self._observers:
            row.update(obs.row_columns(self))
        self.history.append(row)
        self._first_row = False
        if warning and self.warn:
            warnings.warn(warning, LossBalanceWarning, stacklevel=4)
        stop = False
        for obs in self._observers:
            if obs.on_log(self, row):
                stop = True
        if not (stop and can_stop):
            return False
        if self._stop_request is None:
            self.request_stop("stopped", f"stopped by an observer at step {step}")
        self.status, self.message = self._stop_request
        return True

    def _wall_time(self):
        """Training seconds so far: earlier runs (a resumed state), finished calls, the current one."""
        running = 0.0 if self._t_loop is None else time.perf_counter() - self._t_loop
        return self._wall0 + self._elapsed + running

    def _balance_columns(self, row, G):
        """Gradient cosines, shares, the norm ratio and the ``crisis`` episode column (reusing
        the row's gradient norms); returns the warning text when a crisis episode starts."""
        norms = [row[f"{k}_grad_norm"] for k in self.names]
        lam = self.objective.weights
        stats = conflict_stats(self.names, G, lam, norms)
        row.update(stats)
        adaptive = type(self.scheme).__name__ != "Fixed"
        first_order = self.optimizer.adapts_weights
        advice = (f"{type(self.scheme).__name__} will adapt the weights from here" if adaptive else
                  "See pc.diagnose() or use an adaptive weighting (pc.weighting.default())")
        if not first_order:   # a second-order phase on frozen weights: say what holds there
            advice = (f"The weights do not change during this {self.optimizer.name} phase, and second-order "
                      f"steps are far less sensitive to them than gradient descent")
        warning, row["crisis"] = self._crisis.observe(row["step"], self.names, G, lam, stats, norms, advice,
                                                      first_order)
        return warning

    def _close_row(self):
        """A history row at the current step, unless the last row is already there."""
        if self.history.last_step == self.step_count and len(self.history):
            return
        with np.errstate(all="ignore"):
            ev = self.objective.evaluate(self.params)
            L, G, _ = ev
            if all(math.isfinite(v) for v in L) and np.isfinite(G).all():
                warn, self.warn = self.warn, False
                self._log(ev, float(np.dot(self.objective.weights, L)), can_stop=False)
                self.warn = warn
