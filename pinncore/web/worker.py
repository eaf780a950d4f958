"""Running one fit of a validated spec (:mod:`pinncore.web.spec`): in a worker process of the
server, or in-process for tests and benchmarks.

:func:`run_fit` builds the library problem (cached per parameters), the network and the
weighting scheme, trains them as a ``pc.Run`` (one phase per optimizer), and reports every
history row through ``emit`` as it is logged (an observer of the run). It returns a JSON-ready summary: status, rel-L2 and
its verdict, the step-0 balance ratio of the λ-scaled gradient norms (the loss-balance
crisis when > 1e2: Wang, Teng & Perdikaris 2021), the final weights and losses, and the
learned solution on a grid beside the exact one.

:func:`worker_main` is the loop of a server worker process: it receives ``("fit", seq, spec)``
messages on a pipe, answers with ``("log", seq, row)`` and ``("end", seq, summary)``; a
``("cancel", seq)`` message calls ``run.cancel()`` on that task's run (from the worker's
inbox thread) or drops it before it starts.
The kernel runs single-threaded in each worker; the server runs one worker per concurrent
fit, so fits run in parallel without contending for one interpreter lock.

>>> from pinncore.web.spec import fit_spec
>>> rows = []
>>> out = run_fit(fit_spec({"weights": {"ic": 100.0}, "steps": 200, "log_every": 100}), rows.append)
>>> out["status"], [r["step"] for r in rows], out["solution"]["shape"]
('completed', [0, 100, 200], [201])
"""
from __future__ import annotations

import math
import time
from collections import OrderedDict

import numpy as np

from pinncore.observers import Observer

__all__ = ["run_fit", "worker_main", "clean"]

_CACHE_SIZE = 8
_problems = OrderedDict()   # (name, params, hard) -> Problem; per process (workers are long-lived)


def clean(value):
    """JSON-safe copy: NumPy scalars to Python numbers, non-finite floats to None.

    >>> clean({"a": float("nan"), "b": [np.float64(2.0), 3]})
    {'a': None, 'b': [2.0, 3]}
    """
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    return value


def _problem(spec):
    from pinncore import problems

    hard = spec["scheme"] == "hard"
    key = (spec["problem"], tuple(sorted(spec["problem_params"].items())), hard)
    if key in _problems:
        _problems.move_to_end(key)
        return _problems[key]
    kw = dict(spec["problem_params"])
    if hard:
        kw["hard_constraint"] = True
    problem = problems.get(spec["problem"], **kw)
    _problems[key] = problem
    if len(_problems) > _CACHE_SIZE:
        _problems.popitem(last=False)
    return problem


def _scheme(spec):
    from pinncore import weighting

    if spec["scheme"] in ("fixed", "hard"):
        return weighting.Fixed(dict(spec["weights"]))
    return weighting.get(spec["scheme"], **spec["scheme_params"])


LM_MEMORY = 256 * 2 ** 20      # bytes a dense second-order solve may use in a server worker


def _optimizer(name):
    """The run's optimizer for a phase name; one that takes a ``memory_budget`` (LM) gets the
    server's."""
    from pinncore import registry

    spec = registry.optimizers[name]
    return spec.factory(memory_budget=LM_MEMORY) if "memory_budget" in spec.params else spec.name


def _phases(spec):
    """[(optimizer, iterations)] of the spec (``pinncore.phases.build``): the first phase, then an
    optional second one (second-order optimizers freeze the weights λ at their last value)."""
    from pinncore import phases

    opt, steps, second = spec["optimizer"], spec["steps"], spec["second_steps"]
    first, _, then = opt.partition("+")
    plan = [(_optimizer(first), steps)] + ([(_optimizer(then), second)] if then and second else [])
    return phases.build(phases=plan)


def _grid(problem, n):
    """An n-point (1-D) or n×n (2-D, first input major) grid over the problem's domain."""
    axes = [np.linspace(*problem.domain[name], n) for name in problem.inputs]
    mesh = np.meshgrid(*axes, indexing="ij")
    return axes, np.stack([m.ravel() for m in mesh], axis=1)


def _solution(problem, net, n):
    axes, x = _grid(problem, n)
    u = problem.predict(net, x)[:, 0]
    exact = None if problem.exact is None else np.asarray(problem.exact(x), dtype=np.float64).reshape(-1)
    geometry = problem.geometry
    if geometry is not None:   # grid points outside the domain (holes, the L's notch) become null
        outside = ~np.asarray(geometry.inside(x), dtype=bool)
        u[outside] = np.nan
        if exact is not None:
            exact[outside] = np.nan
    return {"inputs": list(problem.inputs), "axes": {k: a.tolist() for k, a in zip(problem.inputs, axes)},
            "shape": [len(a) for a in axes], "prediction": u.tolist(),
            "exact": None if exact is None else exact.tolist()}


def _balance(row, terms):
    """(ratio, largest, smallest) of the λ-scaled gradient norms in a history row."""
    from pinncore.diagnostics import balance_ratio

    if len(terms) < 2:
        return None, None, None
    return balance_ratio({k: row[f"{k}_weight"] * row[f"{k}_grad_norm"] for k in terms})


class _Emit(Observer):
    """The run's observer: forwards every history row (JSON-safe) and keeps the first one."""

    def __init__(self, emit):
        self.emit, self.first = emit, None

    def on_log(self, run, row):
        row = clean(row)
        if self.first is None:
            self.first = row
        self.emit(row)


def run_fit(spec, emit, started=None):
    """Train the fit ``spec`` (from ``spec.fit_spec``) as a ``pc.Run``, calling ``emit(row)``
    for every history row; returns the JSON-ready summary (see the module docstring).
    ``started(run)`` is called with the run before its first step (the server keeps it to
    ``run.cancel()`` it from another thread)."""
    from pinncore import phases as schedule
    from pinncore.diagnostics import THRESHOLD
    from pinncore.network import MLP
    from pinncore.run import Run
    from pinncore.verdict import verdict

    problem = _problem(spec)
    phases = _phases(spec)
    watch = _Emit(emit)
    run = Run(problem, MLP(spec["layers"], seed=spec["seed"]), weighting=_scheme(spec), optimizer=phases[0][0],
              lr=spec["lr"], seed=spec["seed"], log_every=spec["log_every"], warn=False, observers=[watch])
    if started is not None:
        started(run)
    t0, c0 = time.perf_counter(), time.process_time()
    schedule.run(run, phases)
    result = run.result()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    h = result.history
    terms = problem.term_names
    ratio, hi, lo = _balance(watch.first, terms) if watch.first else (None, None, None)
    out = {"status": result.status, "message": result.message, "step": int(result.step), "wall_time": wall,
           "cpu_time": cpu,
           "rel_l2": result.rel_l2, "verdict": verdict(result.rel_l2, result.status, h), "weights": result.weights,
           "losses": {k: h[f"{k}_loss"][-1] for k in terms} if len(h) else {},
           "ratio0": ratio, "ratio0_terms": [hi, lo], "crisis": bool(ratio is not None and ratio > THRESHOLD),
           "solution": None if spec.get("grid") is None else _solution(problem, result.net, spec["grid"])}
    return clean(out)


class _Tasks:
    """The worker's inbox: a thread reads the pipe, queues fits and cancels the running one
    (``run.cancel()`` is thread-safe: the run stops after its current iteration)."""

    def __init__(self, conn):
        import queue
        import threading

        self.conn, self.queue = conn, queue.Queue()
        self.lock = threading.Lock()
        self.cancelled, self.current, self.run = set(), None, None
        threading.Thread(target=self._read, daemon=True, name="pinncore-web-inbox").start()

    def _read(self):
        while True:
            try:
                msg = self.conn.recv()
            except (EOFError, OSError):
                msg = ("stop", None, None)
            if msg[0] == "cancel":
                with self.lock:
                    self.cancelled.add(msg[1])
                    if self.current == msg[1] and self.run is not None:
                        self.run.cancel()
                continue
            self.queue.put(msg)
            if msg[0] == "stop":
                return

    def started(self, seq, run):
        with self.lock:
            self.current, self.run = seq, run
            if seq in self.cancelled:
                run.cancel()

    def finished(self):
        with self.lock:
            self.cancelled.discard(self.current)
            self.current, self.run = None, None


def _serve(conn):
    inbox = _Tasks(conn)
    while True:
        msg = inbox.queue.get()
        if msg[0] == "stop":
            return
        _, seq, spec = msg
        try:
            out = run_fit(spec, lambda row, seq=seq: conn.send(("log", seq, row)),
                          lambda run, seq=seq: inbox.started(seq, run))
        except Exception as e:  # noqa: BLE001 - a failed fit is reported, the worker lives on
            out = {"status": "failed", "message": f"{type(e).__name__}: {e}"}
        inbox.finished()
        conn.send(("end", seq, out))


def worker_main(conn):
    """Entry point of a server worker process (see the module docstring)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the server's to handle
    from pinncore import backend

    backend.set_num_threads(1)
    from .spec import fit_spec

    # Warm up (imports, residual tracing, kernel data of the seed problem) so that the first
    # click is as fast as the next.
    run_fit(fit_spec({"steps": 2, "log_every": 1}), lambda row: None)
    conn.send(("ready", None, None))
    try:
        _serve(conn)
    except (EOFError, OSError, KeyboardInterrupt):
        pass
