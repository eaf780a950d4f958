"""Sweeps: one fit per grid point and seed, on every local core or on a Dask cluster.

The course text says hand-tuning cannot be a real fix because "you cannot afford to scan a
4D log-space grid of λ values". A fit of the seed problem takes a fraction of a second
here, so the scan is a first-class call::

    res = pc.sweep("harmonic", {"ic": np.logspace(-3, 5, 17)}, seeds=(0, 1, 2), steps=2000)
    res.records[0]         # {"index": 0, "seed": 0, "ic": 0.001, "status": "completed", "rel_l2": ...}
    res.goldilocks("ic")   # the λ_ic interval within a factor of the best, and the one under 5 %
    res.to_csv("sweep.csv")

Grid keys (``grid`` maps each key to a list of values; every combination × every seed is a fit)
------------------------------------------------------------------------------------------------
``"<term>"`` or ``"lambda.<term>"``  λ of that term (fixed weighting; other terms keep 1)
``"weighting"``                      a scheme name: "fixed", "gradnorm", "ntk", "selfadaptive", "relobralo"
``"weighting.<arg>"``                an argument of the scheme's constructor, e.g. "weighting.alpha"
``"optimizer"``                      an optimizer name pc.train accepts ("adam", "lbfgs")
``"optimizer.<arg>"``                an argument of pc.Adam, e.g. "optimizer.b1", "optimizer.decay_rate"
``"problem.<arg>"``                  an argument of the problem's factory, e.g. "problem.omega"
``"layers"``                         full layer widths, e.g. [[1, 20, 1], [1, 50, 50, 50, 1]]
any other pc.train keyword            "lr", "steps", "lbfgs_steps", ...

A bare key that is both a term name and a reserved/pc.train name must be written
``"lambda.<term>"``. Records come back in grid order: the first key varies slowest, seeds
fastest. A combination that cannot run (λ with an adaptive scheme, an unknown scheme
argument, a NaN) is a record with ``status`` "error" or "diverged" and its ``error`` text.

Shipping the problem to worker processes
-----------------------------------------
Residuals are Python functions (usually lambdas), which cannot be pickled, so workers rebuild
the problem from how it was made:

* a library name (``"harmonic"`` or ``("harmonic", {"omega": 3.0})``), or a Problem built by
  a library factory (it records ``problem.origin = (name, kwargs)``);
* a module-level factory ``"package.module:function"`` (or ``(path, kwargs)``, or the function
  itself), imported and called — the residuals re-traced — in each worker;
* a pc.Problem with neither: the local pool forks, so its workers inherit the problem; a Dask
  cluster cannot receive it and ``sweep`` says so (give a factory).

A library problem changed after it was built (new points, say) no longer matches its origin:
``del problem.origin`` makes the local workers inherit it as it is.

(Shipping the lowered problem as data — the tracer's term tables are arrays — would work for
polynomial residuals only: non-polynomial ones and ``exact`` stay Python callables.)

Where the fits run
------------------
By default a local process pool over the cores this process may use
(``os.sched_getaffinity``), one single-threaded kernel per worker, started by fork; a worker
that dies (killed, out of memory) breaks the pool, which is restarted and its unfinished fits
resubmitted (a fit that was running when a pool broke is retried alone, so a fit that kills its
worker is identified; after ``retries`` lost attempts it is a record with status "lost").
``workers=1`` runs in this process. With ``client=`` a ``dask.distributed.Client`` the same fit
function runs as Dask tasks (``pip install 'pinncore[dask]'``; Dask is imported only then); the
scheduler reschedules the fits of a lost worker, and ``retries`` is passed to ``client.submit``.
Every fit is deterministic per seed, so a record's numbers do not depend on where it ran (only
``wall_time``, ``cpu_time`` and ``worker`` do).
"""
from __future__ import annotations

import collections
import csv
import importlib
import inspect
import io as _pyio
import itertools
import json
import math
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
import uuid
import warnings
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import numpy as np

__all__ = ["sweep", "SweepResult", "Goldilocks", "GoldilocksVolume", "parse_axis", "available_cores", "CLEAN"]

CLEAN = 0.05           # rel-L2 below which a fit counts as a success (the demo's "clean")
RESULT_KIND = "pinncore.sweep"
_PREFIXES = ("lambda", "weighting", "optimizer", "problem")
_NOT_SWEEPABLE = {"problem", "net", "weighting", "optimizer", "seed", "callback", "verbose", "warn", "resume",
                  "checkpoint", "checkpoint_every", "observers"}


# ------------------------------------------------------------------------------ grid keys

def _train_keys():
    """pc.train keywords a sweep may set per fit (read from its signature, so new ones work)."""
    from .trainer import train
    return [k for k in inspect.signature(train).parameters if k not in _NOT_SWEEPABLE]


def _classify(key, terms, train_keys):
    """(kind, name) of a grid key: kind is lambda, weighting, weighting_arg, optimizer,
    optimizer_arg, problem_arg, layers or train; ValueError naming the key otherwise."""
    if not isinstance(key, str) or not key:
        raise ValueError(f"grid keys must be non-empty strings, got {key!r}")
    head, dot, tail = key.partition(".")
    if dot:
        if head not in _PREFIXES or not tail:
            raise ValueError(f"grid key {key!r}: the prefix must be one of {', '.join(p + '.' for p in _PREFIXES)}")
        if head == "lambda":
            if tail not in terms:
                raise ValueError(f"grid key {key!r}: the problem has no term {tail!r} (terms: {terms})")
            return "lambda", tail
        return f"{head}_arg", tail
    if key == "seed":
        raise ValueError("grid key 'seed': seeds are given by seeds=(0, 1, ...), not in the grid")
    reserved = key in ("weighting", "optimizer", "layers") or key in train_keys
    if key in terms:
        if reserved:
            raise ValueError(f"grid key {key!r} is both a term and a sweep setting: write 'lambda.{key}' for λ_{key}")
        return "lambda", key
    if key in ("weighting", "optimizer", "layers"):
        return key, key
    if key in train_keys:
        return "train", key
    raise ValueError(f"grid key {key!r} is not a term of the problem {terms} nor a setting; use a term name, "
                     f"'weighting', 'weighting.<arg>', 'optimizer', 'optimizer.<arg>', 'problem.<arg>', 'layers' "
                     f"or a pc.train keyword ({', '.join(train_keys)})")


def _values(key, values):
    if isinstance(values, np.ndarray):
        values = values.tolist()
    if isinstance(values, (str, bytes, dict)) or not hasattr(values, "__iter__"):
        raise TypeError(f"grid[{key!r}] must be a list of values, got {type(values).__name__}")
    out = [v.item() if isinstance(v, np.generic) else (v.tolist() if isinstance(v, np.ndarray) else v)
           for v in values]
    if not out:
        raise ValueError(f"grid[{key!r}] is empty: give at least one value")
    return out


def parse_axis(text):
    """One ``--grid`` item of the command line: ``KEY=lo:hi:n`` (n log-spaced values from lo
    to hi), ``KEY=a,b,c`` (a list; numbers where they parse) or ``KEY=v``. Returns (key, values).

    >>> parse_axis("ic=1e-3:1e5:9")
    ('ic', [0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0, 100000.0])
    >>> parse_axis("weighting=fixed,ntk")
    ('weighting', ['fixed', 'ntk'])
    """
    key, eq, spec = str(text).partition("=")
    key, spec = key.strip(), spec.strip()
    if not eq or not key or not spec:
        raise ValueError(f"grid item {text!r} must look like ic=1e-3:1e5:17 or weighting=fixed,ntk")
    parts = spec.split(":")
    if len(parts) == 3:
        try:
            lo, hi, n = float(parts[0]), float(parts[1]), int(parts[2])
        except ValueError:
            raise ValueError(f"grid item {text!r}: lo:hi:n needs two numbers and an integer") from None
        if not (lo > 0 and hi > 0 and math.isfinite(lo) and math.isfinite(hi) and n >= 1):
            raise ValueError(f"grid item {text!r}: lo:hi:n is log-spaced, so lo and hi must be finite and > 0, n >= 1")
        vals = np.logspace(math.log10(lo), math.log10(hi), n).tolist() if n > 1 else [lo]
        return key, [float(f"{v:.12g}") for v in vals]  # 1e-3:1e5:9 gives exactly 0.001, 0.01, ...
    if len(parts) != 1:
        raise ValueError(f"grid item {text!r}: use lo:hi:n (three fields) or a comma list")
    return key, [_number_or_text(v.strip()) for v in spec.split(",") if v.strip()]


def _number_or_text(s):
    for cast in (int, float):
        try:
            return cast(s)
        except ValueError:
            pass
    return s


# ------------------------------------------------------------------------------ problems

_INHERITED = {}        # token -> pc.Problem: reaches forked workers by inheritance, never pickled
_LOCAL = threading.local()


def _spec_from(name_or_path, kwargs):
    from . import problems
    if not isinstance(name_or_path, str):
        raise TypeError(f"a problem name or factory path must be a str, got {type(name_or_path).__name__}")
    if not isinstance(kwargs, dict):
        raise TypeError(f"problem arguments must be a dict, got {type(kwargs).__name__}")
    if ":" in name_or_path:
        return {"kind": "factory", "path": name_or_path, "kwargs": dict(kwargs), "sys_path": list(sys.path)}
    if name_or_path not in problems.REGISTRY:
        raise ValueError(f"unknown problem {name_or_path!r}; library problems: {', '.join(problems.REGISTRY)}, "
                         f"or a factory 'package.module:function'")
    return {"kind": "library", "name": name_or_path, "kwargs": dict(kwargs)}


def _resolve_problem(problem):
    """(spec, local pc.Problem) for the ``problem`` argument of ``sweep``."""
    from .problem import Problem
    if isinstance(problem, str):
        spec = _spec_from(problem, {})
    elif isinstance(problem, tuple) and len(problem) == 2:
        spec = _spec_from(*problem)
    elif isinstance(problem, Problem):
        origin = getattr(problem, "origin", None)
        if origin is not None:
            if not (isinstance(origin, tuple) and len(origin) == 2):
                raise ValueError(f"problem.origin must be (name or 'module:function', kwargs), got {origin!r}")
            spec = _spec_from(*origin)
        else:
            key = uuid.uuid4().hex
            _INHERITED[key] = problem  # until the sweep ends (sweep() removes it)
            return {"kind": "inherit", "key": key}, problem
    elif callable(problem):
        mod, qual = getattr(problem, "__module__", None), getattr(problem, "__qualname__", "")
        if mod and mod != "__main__" and "<" not in qual:
            spec = _spec_from(f"{mod}:{qual}", {})
        else:
            return _resolve_problem(_check_problem(problem(), f"{qual or problem!r}()"))
    else:
        raise TypeError(f"problem must be a library name, a factory 'package.module:function', a (name, kwargs) "
                        f"pair or a pc.Problem, got {type(problem).__name__}")
    # The same problem gets the same key, so persistent workers (Dask) build it once across sweeps;
    # arguments whose repr may not identify them (arrays, objects) get a key of this sweep only.
    spec["token"] = (repr((spec["kind"], spec.get("name", spec.get("path")), sorted(spec["kwargs"].items())))
                     if _is_plain(spec["kwargs"]) else uuid.uuid4().hex)
    return spec, _build_problem(spec, {})


def _is_plain(v):
    """True for None, bool, int, float, str and lists/tuples/dicts of them (repr identifies them)."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return True
    if isinstance(v, (list, tuple)):
        return all(_is_plain(x) for x in v)
    if isinstance(v, dict):
        return all(isinstance(k, str) and _is_plain(x) for k, x in v.items())
    return False


def _check_problem(obj, what):
    from .problem import Problem
    if not isinstance(obj, Problem):
        raise TypeError(f"{what} must return a pc.Problem, got {type(obj).__name__}")
    return obj


def _import_factory(path, sys_path):
    module, _, attr = path.partition(":")
    for p in sys_path or ():  # the caller's import path, so its own modules import here too
        if p not in sys.path:
            sys.path.append(p)
    try:
        obj = importlib.import_module(module)
    except ImportError as e:
        raise ValueError(f"problem factory {path!r}: cannot import module {module!r} ({e}); the factory must "
                         f"live in a module the workers can import") from None
    for part in attr.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise ValueError(f"problem factory {path!r}: module {module!r} has no {attr!r}")
    if not callable(obj):
        raise TypeError(f"problem factory {path!r} is not callable")
    return obj


def _build_problem(spec, args):
    """The pc.Problem of ``spec`` with factory arguments ``args`` (grid "problem.<arg>" keys)
    added, cached per thread (a worker builds each problem once)."""
    if spec["kind"] == "inherit":
        if args:
            raise ValueError("'problem.<arg>' grid keys need a problem given by name or factory")
        try:
            return _INHERITED[spec["key"]]
        except KeyError:
            raise RuntimeError(_NEEDS_FACTORY) from None
    cache = getattr(_LOCAL, "problems", None)
    if cache is None:
        cache = _LOCAL.problems = collections.OrderedDict()
    key = (spec["token"], repr(sorted(args.items()))) if _is_plain(args) else None
    if key is not None and key in cache:
        cache.move_to_end(key)
        return cache[key]
    kwargs = {**spec["kwargs"], **args}
    if spec["kind"] == "library":
        from . import problems
        problem = problems.get(spec["name"], **kwargs)
    else:
        factory = _import_factory(spec["path"], spec.get("sys_path"))
        problem = _check_problem(factory(**kwargs), f"problem factory {spec['path']!r}")
    if key is not None:
        cache[key] = problem
    while len(cache) > 8:
        cache.popitem(last=False)
    return problem


_NEEDS_FACTORY = (
    "this pc.Problem was built from Python functions (lambdas) in the calling process and cannot be sent to "
    "other processes. Give it by a module-level factory instead: pc.sweep('package.module:function', ...) or "
    "pc.sweep(('package.module:function', kwargs), ...), or set problem.origin = ('package.module:function', "
    "kwargs); library problems (pc.problems.*) do this themselves")


# ------------------------------------------------------------------------------ one fit

def _scheme_spec(weighting, has_lambda):
    from . import weighting as W
    if weighting is None:
        name = "fixed" if has_lambda else type(W.default()).__name__.lower()
        return {"name": name, "config": {} if has_lambda else W.default().config()}
    if isinstance(weighting, type) and issubclass(weighting, W.Weighting):
        weighting = weighting()
    if isinstance(weighting, str):
        W.get(weighting)  # validates the name now, not in every worker
        return {"name": weighting.lower(), "config": {}}
    if not isinstance(weighting, W.Weighting):
        raise TypeError(f"weighting must be a scheme name or a pc weighting scheme, got {type(weighting).__name__}")
    name = type(weighting).__name__.lower()
    if name in W._REGISTRY:
        return {"name": name, "config": weighting.config()}
    return {"name": name, "config": {}, "instance": weighting}  # a user scheme: pickled by reference


def _scheme_class(name):
    from . import weighting as W
    key = name.lower().replace("-", "").replace("_", "") if isinstance(name, str) else None
    return W._REGISTRY.get(key)


def _optimizer_spec(optimizer):
    from . import optim
    if isinstance(optimizer, optim.Optimizer):
        name = optimizer.name
        if name in optim._OPTIMIZERS:
            return {"name": name, "config": optimizer.config()}
        return {"name": name, "config": {}, "instance": optimizer}  # a user optimizer: pickled by reference
    if not isinstance(optimizer, str):
        raise TypeError(f"optimizer must be a name ('adam', 'lbfgs', ...) or a pc optimizer object, "
                        f"got {type(optimizer).__name__}")
    if optimizer.lower() not in optim._OPTIMIZERS:
        optim.get(optimizer)  # raises, naming the known optimizers
    return {"name": optimizer.lower(), "config": {}}


def _make_scheme(base, params, kinds):
    """The weighting scheme of a fit: the sweep's (or the grid's "weighting") with the grid's
    scheme arguments and, for Fixed, the grid's λs."""
    from . import weighting as W
    spec = base["weighting"]
    if "weighting" in params:
        v = params["weighting"]
        if not isinstance(v, (str, W.Weighting, type)):
            raise TypeError(f"weighting must be a scheme name, got {v!r}")
        if not (isinstance(v, str) and v.lower() == spec["name"]):
            spec = _scheme_spec(v, False)
    args = {kinds[k][1]: v for k, v in params.items() if kinds[k][0] == "weighting_arg"}
    lams = {kinds[k][1]: v for k, v in params.items() if kinds[k][0] == "lambda"}
    if "instance" in spec and not (args or lams):
        return spec["instance"]
    cfg = {**spec["config"], **args}
    if lams:
        if _scheme_class(spec["name"]) is not W.Fixed:
            raise ValueError(f"λ for term(s) {', '.join(sorted(lams))} needs weighting 'fixed', got "
                             f"{spec['name']!r} (an adaptive scheme sets its own weights)")
        cfg["weights"] = {**(cfg.get("weights") or {}), **lams}
    return W.get(spec["name"], **cfg)


def _make_optimizer(base, params, kinds, lr):
    """The optimizer of a fit: a name pc.train resolves, or an object when arguments are set."""
    from . import optim
    spec = base["optimizer"]
    name = params.get("optimizer", spec["name"])
    if isinstance(name, str):
        name = name.lower()
    args = {kinds[k][1]: v for k, v in params.items() if kinds[k][0] == "optimizer_arg"}
    if name == spec["name"] and "instance" in spec and not args:
        return spec["instance"]
    cfg = {**(spec["config"] if name == spec["name"] else {}), **args}
    if not cfg:
        return name
    if name == "adam" and lr is not None:
        cfg["lr"] = lr  # a swept or given lr wins over the Adam object's
    return optim.get(name, **cfg)


def _run_fit(job):
    """Run one fit and return its record (a dict of plain values). Module-level and fed plain
    data, so a process pool or a Dask worker runs it by reference; never raises."""
    t0, c0 = time.perf_counter(), time.thread_time()
    out = {}
    try:
        out = _fit(job)
    except Exception as e:  # noqa: BLE001 - a failing fit is a record, never the end of the sweep
        out = {"status": "error", "error": f"{type(e).__name__}: {e}"}
    out["wall_time"] = time.perf_counter() - t0
    out["cpu_time"] = time.thread_time() - c0  # below wall_time when the machine is shared
    out["worker"] = f"{socket.gethostname()}:{os.getpid()}"
    return out


def _fit(job):
    from .backend import set_num_threads
    from .network import MLP
    from .trainer import train
    from .diagnostics import balance_ratio
    set_num_threads(1)  # one worker per core: the kernel stays single-threaded
    base, params, kinds = job["base"], job["params"], job["kinds"]
    problem = _build_problem(base["problem"], {kinds[k][1]: v for k, v in params.items()
                                               if kinds[k][0] == "problem_arg"})
    kw = dict(base["train"])
    kw.update({k: v for k, v in params.items() if kinds[k][0] == "train"})
    steps = kw.pop("steps", base["steps"])
    scheme = _make_scheme(base, params, kinds)
    optimizer = _make_optimizer(base, params, kinds, kw.get("lr"))
    layers = params.get("layers", base["layers"])
    net = None if layers is None else MLP(list(layers), seed=job["seed"])
    if isinstance(steps, int) and not isinstance(steps, bool) and steps >= 1:
        kw.setdefault("log_every", steps)  # rows at step 0 and at the end are all a record needs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # imbalanced fits are the point of a sweep
        result = train(problem, net, weighting=scheme, steps=steps, optimizer=optimizer, seed=job["seed"],
                       warn=False, **kw)
    h, names = result.history, problem.term_names
    out = {"status": result.status, "error": result.message or None,
           "rel_l2": None if result.rel_l2 is None else float(result.rel_l2), "step": int(result.step)}
    if len(h) and h.columns["step"][0] == 0:
        first = h[0]
        out["grad_ratio0"] = balance_ratio({k: first[f"{k}_weight"] * first[f"{k}_grad_norm"] for k in names})[0]
    if len(h):
        last = h[-1]
        out.update({f"{k}_loss": last[f"{k}_loss"] for k in names})
    out.update({f"{k}_weight": float(v) for k, v in result.weights.items()})
    return out


# ------------------------------------------------------------------------------ executors

def _init_worker():
    from .backend import set_num_threads
    set_num_threads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle


class _LocalPool:
    """Fits on a process pool that survives lost workers.

    At most ``workers`` fits are in flight, so when a worker dies (the pool breaks and every
    in-flight fit is lost) the suspects are known: they are resubmitted on a fresh pool, each
    alone, so that a fit that kills its worker is charged alone; after ``retries`` lost
    attempts it becomes a "lost" record.
    """

    def __init__(self, jobs, workers, retries, on_record):
        self.jobs, self.workers, self.retries, self.on_record = jobs, workers, retries, on_record
        self.pending = collections.deque(range(len(jobs)))
        self.inflight = {}
        self.attempts = [0] * len(jobs)
        self.suspects = set()
        self.restarts = 0
        self.executor = None
        self.ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods()
                                               else "spawn")

    def _start(self):
        self.executor = ProcessPoolExecutor(max_workers=self.workers, mp_context=self.ctx, initializer=_init_worker)

    def _submit(self, i):
        with warnings.catch_warnings():  # Python >= 3.12 warns on fork with threads; workers start fresh
            warnings.filterwarnings("ignore", message=".*fork.*", category=DeprecationWarning)
            try:
                fut = self.executor.submit(_run_fit, self.jobs[i])
            except BrokenProcessPool:  # a worker died while idle: nothing of this fit is lost
                self._recover([])
                fut = self.executor.submit(_run_fit, self.jobs[i])
        self.attempts[i] += 1
        self.inflight[fut] = i

    def _fill(self):
        while self.pending and len(self.inflight) < self.workers:
            if self.suspects & set(self.inflight.values()):
                return  # a suspect runs alone
            i = self.pending[0]
            if i in self.suspects and self.inflight:
                return
            self._submit(self.pending.popleft())
            if i in self.suspects:
                return

    def run(self):
        self._start()
        try:
            while self.pending or self.inflight:
                self._fill()
                done, _ = wait(list(self.inflight), return_when=FIRST_COMPLETED)
                lost = [self._collect(f) for f in done]
                if any(i is not None for i in lost):
                    self._recover([i for i in lost if i is not None])
        except BaseException:
            self._kill()
            raise
        self.executor.shutdown(wait=True)

    def _collect(self, fut):
        """Deliver a finished fit; return its index when its worker was lost."""
        i = self.inflight.pop(fut)
        try:
            rec = fut.result()
        except BrokenProcessPool:
            return i
        except Exception as e:  # noqa: BLE001 - e.g. a result that cannot be sent back
            rec = {"status": "error", "error": f"{type(e).__name__}: {e}"}
        self.suspects.discard(i)
        self.on_record(i, rec)
        return None

    def _recover(self, lost):
        """The pool broke: collect what still finished, then resubmit the rest on a new pool."""
        done, _ = wait(list(self.inflight), timeout=60)
        for f in done:
            i = self._collect(f)
            if i is not None:
                lost.append(i)
        lost += list(self.inflight.values())
        self.inflight.clear()
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.restarts += 1
        for i in sorted(lost, reverse=True):
            if self.attempts[i] > self.retries:
                self.suspects.discard(i)
                self.on_record(i, {"status": "lost", "error": f"the worker process died {self.attempts[i]} times "
                                                              f"while running this fit"})
            else:
                if len(lost) > 1 or i in self.suspects:
                    self.suspects.add(i)
                self.pending.appendleft(i)
        self._start()

    def _kill(self):
        ex = self.executor
        if ex is None:
            return
        procs = list(getattr(ex, "_processes", {}).values())
        for p in procs:  # do not wait for running fits
            p.terminate()
        ex.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            p.join(timeout=5)


def _run_inline(jobs, on_record):
    from .backend import get_num_threads, set_num_threads
    threads = get_num_threads()
    try:
        for i, job in enumerate(jobs):
            rec = _run_fit(job)
            if rec.get("status") == "interrupted":  # pc.train turned Ctrl-C into a status
                raise KeyboardInterrupt
            on_record(i, rec)
    finally:
        set_num_threads(threads)


def _run_dask(client, jobs, retries, on_record):
    from distributed import as_completed
    if getattr(client, "asynchronous", False):
        raise ValueError("client must be a synchronous dask.distributed.Client (asynchronous=False)")
    tag = uuid.uuid4().hex[:12]
    futures = [client.submit(_run_fit, job, key=f"pinncore-sweep-{tag}-{i}", pure=False, retries=retries)
               for i, job in enumerate(jobs)]
    index = {f.key: i for i, f in enumerate(futures)}
    try:
        for fut in as_completed(futures):
            try:
                rec = fut.result()
            except Exception as e:  # noqa: BLE001 - e.g. KilledWorker: the fit took down its workers
                rec = {"status": "lost", "error": f"{type(e).__name__}: {e}"}
            on_record(index[fut.key], rec)
    except BaseException:
        client.cancel(futures)
        raise


class _Bar:
    """records done / total and the ETA on one live line of stderr, only when it is a terminal."""

    def __init__(self, total, stream=None):
        self.stream = stream if stream is not None else sys.stderr
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        self.total, self.failed, self.t0, self.shown = total, 0, time.perf_counter(), False

    def __call__(self, done, total, record):
        if record.get("status") != "completed":
            self.failed += 1
        if not self.live:
            return
        elapsed = time.perf_counter() - self.t0
        eta = elapsed / done * (total - done)
        n = int(24 * done / total)
        bad = f"  {self.failed} failed" if self.failed else ""
        self.stream.write(f"\r\033[Ksweep {done}/{total} [{'#' * n}{'.' * (24 - n)}] {done / total:4.0%}  "
                          f"{_fmt_time(elapsed)} elapsed, ETA {_fmt_time(eta)}{bad}")
        self.stream.flush()
        self.shown = True

    def close(self):
        if self.live and self.shown:
            self.stream.write("\n")
            self.stream.flush()


def _fmt_time(s):
    if s < 60:
        return f"{s:.1f}s"
    return f"{int(s // 60)}m{int(s % 60):02d}s" if s < 3600 else f"{int(s // 3600)}h{int(s % 3600 // 60):02d}m"


# ------------------------------------------------------------------------------ the sweep

def _check_seeds(seeds):
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        raise TypeError(f"seeds must be a list of seeds, e.g. seeds=range({int(seeds)}) or seeds=(0, 1), "
                        f"got the int {seeds!r}")
    try:
        out = list(seeds)
    except TypeError:
        raise TypeError(f"seeds must be a list of ints >= 0, got {type(seeds).__name__}") from None
    if not out or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 0 for s in out):
        raise ValueError(f"seeds must be a non-empty list of ints >= 0, got {seeds!r}")
    return [int(s) for s in out]


def _check_count(name, v, lo):
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    return int(v)


def available_cores():
    """The cores this process may run on (``os.sched_getaffinity``, else ``os.cpu_count``).

    >>> available_cores() >= 1
    True
    """
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _plan(problem, grid, seeds, weighting, optimizer, steps, layers, client, train_kwargs):
    """Validate the arguments of ``sweep`` and build its jobs: (jobs, keys, kinds, terms, base)."""
    spec, local = _resolve_problem(problem)
    try:
        return _jobs(spec, local, grid, seeds, weighting, optimizer, steps, layers, client, train_kwargs)
    except BaseException:
        _INHERITED.pop(spec.get("key"), None)
        raise


def _jobs(spec, local, grid, seeds, weighting, optimizer, steps, layers, client, train_kwargs):
    terms = local.term_names
    if not isinstance(grid, dict):
        raise TypeError(f"grid must be a dict key -> list of values, got {type(grid).__name__}")
    train_keys = _train_keys()
    keys = list(grid)
    kinds = {k: _classify(k, terms, train_keys) for k in keys}
    values = [_values(k, grid[k]) for k in keys]
    lam_terms = [kinds[k][1] for k in keys if kinds[k][0] == "lambda"]
    if len(set(lam_terms)) < len(lam_terms):
        raise ValueError(f"grid names the λ of a term twice ({', '.join(keys)})")
    seeds = _check_seeds(seeds)
    bad = sorted(set(train_kwargs) - set(train_keys))
    if bad:
        raise TypeError(f"sweep() got unexpected keyword argument(s) {', '.join(map(repr, bad))}; pc.train settings "
                        f"a sweep can pass: {', '.join(train_keys)}")
    wspec = _scheme_spec(weighting, bool(lam_terms))
    if lam_terms and "weighting" not in grid and _scheme_class(wspec["name"]) is not _fixed_class():
        raise ValueError(f"the grid sets λ for {', '.join(lam_terms)}, which needs weighting 'fixed', got "
                         f"weighting={wspec['name']!r}")
    ospec = _optimizer_spec(optimizer)
    check_fit_settings(local, steps, layers, train_kwargs)
    if spec["kind"] == "inherit":
        if any(kinds[k][0] == "problem_arg" for k in keys):
            raise ValueError("'problem.<arg>' grid keys need a problem given by name or factory, not a pc.Problem")
        if client is not None:
            raise ValueError("pc.sweep(client=...): " + _NEEDS_FACTORY)
    base = {"problem": spec, "weighting": wspec, "optimizer": ospec, "steps": steps, "layers": layers,
            "train": dict(train_kwargs), "seeds": seeds}
    jobs = [{"base": base, "kinds": kinds, "params": dict(zip(keys, combo)), "seed": s}
            for combo in itertools.product(*values) for s in seeds]
    return jobs, keys, kinds, terms, base


# pc.train's counting settings and their least values.
_COUNTS = {"steps": 0, "lbfgs_steps": 0, "lm_steps": 0, "log_every": 1, "checkpoint_every": 1}


def check_fit_settings(problem, steps, layers, train_kwargs):
    """The pc.train settings every fit of a sweep shares — step counts, ``lr``, ``layers`` (a
    network the problem takes) — checked once in the calling process before any fit is
    dispatched: a bad one is an error naming it, not one error record per fit (``steps=-1``
    over a 100 000-point grid made 100 000 of them). Grid values stay per fit: a bad one is
    that fit's error record.

    >>> import pinncore as pc
    >>> try:
    ...     check_fit_settings(pc.problems.harmonic(), -1, None, {})
    ... except ValueError as e:
    ...     print(e)
    steps must be an integer >= 0, got -1
    """
    from .network import MLP
    for key, v in [("steps", steps), ("layers", layers), *train_kwargs.items()]:
        if key in _COUNTS:
            # int(v): compared as a plain int, so no method of an int subclass runs in this process
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or int(v) < _COUNTS[key]:
                raise ValueError(f"{key} must be an integer >= {_COUNTS[key]}, got {v!r}")
        elif key == "lr" and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0):
            raise ValueError(f"lr must be a finite number > 0, got {v!r}")
        elif key == "layers" and v is not None:
            if isinstance(v, (str, bytes)) or not hasattr(v, "__iter__"):
                raise TypeError(f"layers must be a list of widths, got {v!r}")
            try:
                problem.check_net(MLP(list(v)))
            except (TypeError, ValueError) as e:
                raise type(e)(f"layers: {e}") from None


def _fixed_class():
    from .weighting import Fixed
    return Fixed


def sweep(problem, grid, *, seeds=(0,), weighting=None, optimizer="adam", steps=2000, layers=None, client=None,
          progress=True, workers=None, retries=2, **train_kwargs):
    """Train one fit per grid combination and seed; return a ``SweepResult`` (records in grid
    order: first key slowest, seeds fastest).

    Parameters
    ----------
    problem : a library name ("harmonic"), ``(name, kwargs)``, a factory "package.module:function"
        (or ``(path, kwargs)``, or the module-level function), or a pc.Problem (see the module
        docstring for how each reaches the workers).
    grid : dict key -> list of values; keys are term names (λ), "weighting", "weighting.<arg>",
        "optimizer", "optimizer.<arg>", "problem.<arg>", "layers" or pc.train keywords ("lr", ...).
    seeds : network seeds (``pc.MLP(layers, seed=s)``), each combination is fitted with each.
    weighting : the scheme when the grid has no "weighting" key: a name or scheme; None means
        "fixed" when the grid sets λs, else pc.train's default.
    optimizer : "adam", "lbfgs" or a pc.Adam. steps : iterations per fit. layers : widths or None
        for pc.train's default ``[d, 50, 50, 50, m]``.
    client : a ``dask.distributed.Client``: run the fits as tasks on its cluster.
    progress : True for a progress bar on stderr when it is a terminal, False for none, or a
        callable ``progress(done, total, record)`` called after every record.
    workers : local processes (default: the available cores; 1 runs in this process).
    retries : how often a fit whose worker died is tried again (local pool: resubmitted; Dask:
        ``client.submit(retries=...)``, while the scheduler itself reschedules lost tasks).
    **train_kwargs : further pc.train settings for every fit (lr, lbfgs_steps, log_every, ...).

    Record fields: index, seed, the grid keys, weighting, optimizer, steps, status ("completed",
    "diverged", "error", "lost", ...), error, rel_l2, grad_ratio0 (max/min over terms of
    λ_a‖∇L_a‖ at step 0), <term>_loss (final, unweighted), <term>_weight (final λ), step,
    wall_time and cpu_time (s, of the fit in its worker), worker ("host:pid").

    >>> import pinncore as pc
    >>> res = pc.sweep("harmonic", {"ic": [1.0, 100.0]}, steps=20, workers=1, progress=False)
    >>> [(r["ic"], r["status"]) for r in res.records], res.records[1]["ic_weight"], res.records[1]["step"]
    ([(1.0, 'completed'), (100.0, 'completed')], 100.0, 20)
    """
    jobs, keys, kinds, terms, base = _plan(problem, grid, seeds, weighting, optimizer, steps, layers, client,
                                           train_kwargs)
    workers = _check_count("workers", workers, 1) or available_cores()
    retries = _check_count("retries", retries, 0)
    if callable(progress):
        report, bar = progress, None
    elif progress in (True, False, None):
        bar = _Bar(len(jobs)) if progress else None
        report = bar
    else:
        raise TypeError(f"progress must be True, False or a callable progress(done, total, record), got {progress!r}")
    records = [None] * len(jobs)
    done = [0]

    def on_record(i, rec):
        records[i] = _record(jobs[i], i, rec, terms)
        done[0] += 1
        if report is not None:
            report(done[0], len(jobs), records[i])

    t0 = time.perf_counter()
    info = {"backend": "dask" if client is not None else "local", "workers": workers, "restarts": 0}
    try:
        if client is not None:
            info["workers"] = len(client.nthreads())
            _run_dask(client, jobs, retries, on_record)
        elif workers == 1 or len(jobs) == 1:
            info.update(backend="inline", workers=1)
            _run_inline(jobs, on_record)
        else:
            pool = _LocalPool(jobs, min(workers, len(jobs)), retries, on_record)
            info["workers"] = pool.workers
            try:
                pool.run()
            finally:
                info["restarts"] = pool.restarts
    finally:
        if bar is not None:
            bar.close()
        _INHERITED.pop(base["problem"].get("key"), None)
    info["wall_time"] = time.perf_counter() - t0
    return SweepResult(records, keys=keys, kinds={k: v[0] for k, v in kinds.items()}, terms=terms,
                       seeds=base["seeds"], info=info, problem=_describe(base["problem"]))


def _describe(spec):
    if spec["kind"] == "inherit":
        return {"kind": "problem"}
    return {k: spec[k] for k in ("kind", "name", "path", "kwargs") if k in spec}


def _plain(v):
    """A JSON-friendly copy of a grid value (schemes and optimizers by name)."""
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return type(v).__name__.lower() if hasattr(v, "config") else repr(v)


def _record(job, index, rec, terms):
    base = job["base"]
    r = {"index": index, "seed": job["seed"]}
    r.update({k: _plain(v) for k, v in job["params"].items()})
    r.setdefault("weighting", base["weighting"]["name"])
    r.setdefault("optimizer", base["optimizer"]["name"])
    r.setdefault("steps", base["steps"] if "steps" not in base["train"] else base["train"]["steps"])
    for f in ("status", "error", "rel_l2", "grad_ratio0"):
        r[f] = rec.get(f)
    for t in terms:
        r[f"{t}_loss"] = rec.get(f"{t}_loss")
    for t in terms:
        r[f"{t}_weight"] = rec.get(f"{t}_weight")
    for f in ("step", "wall_time", "cpu_time", "worker"):
        r[f] = rec.get(f)
    return r


# ------------------------------------------------------------------------------ the table

@dataclass
class Goldilocks:
    """The Goldilocks interval of one term's λ (see ``SweepResult.goldilocks``)."""

    term: str
    values: np.ndarray         # the grid's λ values, sorted
    errors: np.ndarray         # per value: the seed-aggregated rel-L2 (other keys: see ``around``)
    best: float                # λ with the smallest error
    best_rel_l2: float
    factor: float
    threshold: float
    within: tuple = None       # (lo, hi): the run of grid values around the best within factor × best
    under: tuple = None        # (lo, hi): the run around the best with rel-L2 < threshold (None if the best is not)

    def __str__(self):
        def span(iv):
            return "none" if iv is None else f"[{iv[0]:.3g}, {iv[1]:.3g}]"
        if not math.isfinite(self.best_rel_l2):
            return f"λ_{self.term}: no fit succeeded"
        return (f"λ_{self.term}: best {self.best:.3g} (rel-L2 {self.best_rel_l2:.2e}); within {self.factor:g}x of "
                f"the best: {span(self.within)}; rel-L2 < {self.threshold:.0%}: {span(self.under)}")


@dataclass
class GoldilocksVolume:
    """The part of a multi-term λ grid where the fits succeed (see ``SweepResult.goldilocks_volume``)."""

    terms: list
    n_points: int
    n_good: int
    fraction: float            # n_good / n_points
    volume: float              # Σ over good points of their cell volume (log10 units per λ axis: decades^D)
    total: float               # volume of the whole grid box
    threshold: float

    @property
    def volume_fraction(self):
        return self.volume / self.total if self.total > 0 else float("nan")

    def __str__(self):
        d = len(self.terms)
        return (f"Goldilocks volume over λ of {', '.join(self.terms)} (rel-L2 < {self.threshold:.0%}): "
                f"{self.n_good}/{self.n_points} grid points ({self.fraction:.1%}), {self.volume:.3g} of "
                f"{self.total:.3g} decades^{d} ({self.volume_fraction:.1%})")


def record_error(rec):
    """A record's rel-L2 for the analysis: +inf unless the fit completed with a finite error."""
    v = rec.get("rel_l2")
    if rec.get("status") != "completed" or v is None or not math.isfinite(v):
        return math.inf
    return float(v)


def hashable(v):
    """A grid value usable as a dict key (lists, such as layers, become tuples)."""
    return tuple(hashable(x) for x in v) if isinstance(v, list) else v


def _aggregate(errs, agg):
    a = np.asarray(errs, dtype=np.float64)
    if agg == "median":
        return float(np.median(a))
    if agg == "max":
        return float(np.max(a))
    if agg == "min":
        return float(np.min(a))
    if agg == "mean":
        return float(np.mean(a))
    raise ValueError(f"agg must be 'median', 'mean', 'max' or 'min', got {agg!r}")


def _cells(values):
    """Per-axis cell widths of sorted grid values (log10 when all > 0): each point owns half the
    gap to each neighbour, so the widths add up to the axis span. A single value has width 1."""
    v = np.asarray(values, dtype=np.float64)
    y = np.log10(v) if (v > 0).all() else v
    if y.size == 1:
        return np.ones(1)
    gaps = np.diff(y)
    return np.concatenate([[gaps[0] / 2], (gaps[:-1] + gaps[1:]) / 2, [gaps[-1] / 2]])


class SweepResult:
    """The table ``pc.sweep`` returns: ``records`` (list of dicts, grid order), export and analysis.

    >>> res = SweepResult([{"index": 0, "seed": 0, "ic": 1.0, "status": "completed", "rel_l2": 0.9},
    ...                    {"index": 1, "seed": 0, "ic": 100.0, "status": "completed", "rel_l2": 0.003}],
    ...                   keys=["ic"], kinds={"ic": "lambda"}, terms=["pde", "ic"], seeds=[0])
    >>> res.best()["ic"], res.goldilocks("ic").under
    (100.0, (100.0, 100.0))
    """

    def __init__(self, records, keys, kinds, terms, seeds, info=None, problem=None):
        self.records, self.keys, self.kinds = list(records), list(keys), dict(kinds)
        self.terms, self.seeds, self.info, self.problem = list(terms), list(seeds), dict(info or {}), problem

    # -- access -----------------------------------------------------------------------
    def __len__(self):
        return len(self.records)

    def __iter__(self):
        return iter(self.records)

    def __getitem__(self, i):
        return self.records[i]

    @property
    def columns(self):
        cols = {}
        for r in self.records:
            cols.update(dict.fromkeys(r))
        return list(cols)

    def column(self, name):
        """One field of every record, as a list (None where a record lacks it)."""
        return [r.get(name) for r in self.records]

    @property
    def lambda_keys(self):
        """The grid keys that set a term's λ."""
        return [k for k in self.keys if self.kinds.get(k) == "lambda"]

    @property
    def failed(self):
        """Records of fits that did not complete (errors, divergence, lost workers)."""
        return [r for r in self.records if r.get("status") != "completed"]

    def where(self, conditions=None, **kw):
        """The records whose fields equal ``conditions`` (a dict, for dotted keys) and ``kw``."""
        cond = {**(conditions or {}), **kw}
        keep = [r for r in self.records if all(hashable(r.get(k)) == hashable(v) for k, v in cond.items())]
        return SweepResult(keep, self.keys, self.kinds, self.terms, self.seeds, self.info, self.problem)

    def __repr__(self):
        return (f"SweepResult({len(self)} records, keys={self.keys}, seeds={self.seeds}, "
                f"{len(self.failed)} failed)")

    # -- export -----------------------------------------------------------------------
    def to_dict(self):
        return {"kind": RESULT_KIND, "version": 1, "keys": self.keys, "kinds": self.kinds, "terms": self.terms,
                "seeds": self.seeds, "info": self.info, "problem": self.problem, "records": self.records}

    def to_json(self, path=None):
        """JSON text of the table (records and how they were made); written to ``path`` if given."""
        text = json.dumps(self.to_dict(), allow_nan=True, default=_plain)
        if path is not None:
            with open(path, "w") as f:
                f.write(text)
        return text

    @classmethod
    def from_json(cls, path_or_text):
        """Read a table written by ``to_json`` (a path or the JSON text)."""
        text = path_or_text
        if not str(path_or_text).lstrip().startswith("{"):
            from .io import check_regular_file
            check_regular_file(path_or_text)   # a FIFO would block the open below forever
            with open(path_or_text) as f:
                text = f.read()
        d = json.loads(text)
        if not isinstance(d, dict) or d.get("kind") != RESULT_KIND:
            raise ValueError(f"not a pinncore sweep table (kind {d.get('kind') if isinstance(d, dict) else None!r})")
        return cls(d["records"], d["keys"], d["kinds"], d["terms"], d["seeds"], d.get("info"), d.get("problem"))

    def to_csv(self, path=None):
        """CSV text, one row per record (lists such as layers as JSON); written to ``path`` if given."""
        buf = _pyio.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        cols = self.columns
        w.writerow(cols)
        for r in self.records:
            w.writerow([_csv_cell(r.get(c)) for c in cols])
        text = buf.getvalue()
        if path is not None:
            with open(path, "w", newline="") as f:
                f.write(text)
        return text

    def to_pandas(self):
        """A pandas DataFrame of the records (needs pandas)."""
        try:
            import pandas as pd
        except ImportError as e:
            raise ImportError("SweepResult.to_pandas needs pandas: pip install pandas") from e
        return pd.DataFrame(self.records, columns=self.columns)

    # -- analysis ---------------------------------------------------------------------
    def points(self, agg="median"):
        """[(grid point as a dict, seed-aggregated rel-L2)] in grid order; a failed fit counts as +inf."""
        groups = collections.OrderedDict()
        for r in self.records:
            groups.setdefault(tuple(hashable(r.get(k)) for k in self.keys), []).append(record_error(r))
        return [(dict(zip(self.keys, k)), _aggregate(e, agg)) for k, e in groups.items()]

    def best(self, agg="median"):
        """The grid point with the smallest seed-aggregated rel-L2: its keys plus "rel_l2"."""
        pts = self.points(agg)
        if not pts:
            raise ValueError("the sweep has no records")
        params, err = min(pts, key=lambda p: p[1])
        return {**params, "rel_l2": err}

    def _lambda_key(self, term):
        if term in self.keys and self.kinds.get(term) == "lambda":
            return term
        for k in self.lambda_keys:
            if k in (f"lambda.{term}",):
                return k
        raise ValueError(f"the grid does not sweep λ of {term!r}; λ keys: {self.lambda_keys}")

    def goldilocks(self, term=None, factor=10.0, threshold=CLEAN, agg="median", around="best"):
        """The Goldilocks interval of ``term``'s λ: the seed-aggregated rel-L2 per grid value of
        λ, the best value, and the runs of neighbouring grid values around it whose error is
        within ``factor`` × the best and under ``threshold``. With several grid keys the other
        keys are held at the best grid point (``around="best"``, a slice through it) or take
        their best value for each λ (``around="any"``, a projection: with Adam, scaling every λ
        by one factor changes little, so projections of a multi-term grid tend to span it all).
        Without ``term``: a dict term -> Goldilocks for every λ key."""
        if term is None:
            return {k: self.goldilocks(k, factor, threshold, agg, around) for k in self.lambda_keys}
        key = self._lambda_key(term)
        if around not in ("best", "any"):
            raise ValueError(f"around must be 'best' or 'any', got {around!r}")
        pts = self.points(agg)
        if around == "best" and pts:
            bp = min(pts, key=lambda p: p[1])[0]
            pts = [(p, e) for p, e in pts if all(hashable(p[k]) == hashable(bp[k]) for k in self.keys if k != key)]
        by = {}
        for params, e in pts:
            by[params[key]] = min(e, by.get(params[key], math.inf))
        vals = sorted(by)
        errs = np.array([by[v] for v in vals])
        b = int(np.argmin(errs))
        best = float(errs[b])
        g = Goldilocks(term=key, values=np.array(vals, dtype=np.float64), errors=errs, best=float(vals[b]),
                       best_rel_l2=best, factor=float(factor), threshold=float(threshold))
        if math.isfinite(best):
            g.within = _run_around(vals, errs <= factor * best, b)
            g.under = _run_around(vals, errs < threshold, b)
        return g

    def goldilocks_volume(self, threshold=CLEAN, terms=None, agg="median"):
        """How much of the λ grid box works: grid points (over the λ keys ``terms``, default all)
        whose best seed-aggregated rel-L2 over the other keys is under ``threshold``, counted and
        as a volume (each point owns its cell, in decades per λ axis)."""
        keys = [self._lambda_key(t) for t in terms] if terms is not None else self.lambda_keys
        if not keys:
            raise ValueError("the grid sweeps no λ")
        by = {}
        for params, e in self.points(agg):
            k = tuple(params[t] for t in keys)
            by[k] = min(e, by.get(k, math.inf))
        axes = [sorted({k[i] for k in by}) for i in range(len(keys))]
        cells = [dict(zip(ax, _cells(ax))) for ax in axes]
        good = [k for k, e in by.items() if e < threshold]
        vol = float(sum(np.prod([cells[i][k[i]] for i in range(len(keys))]) for k in good))
        total = float(np.prod([sum(c.values()) for c in cells]))
        return GoldilocksVolume(terms=keys, n_points=len(by), n_good=len(good), fraction=len(good) / len(by),
                                volume=vol, total=total, threshold=float(threshold))

    def summary(self, threshold=CLEAN, factor=10.0):
        """A few lines: counts, the best point, Goldilocks intervals (and the volume for >= 2 λ keys)."""
        lines = [f"{len(self)} fits ({len(self.points())} grid points x {len(self.seeds)} seed(s)), "
                 f"{len(self.failed)} did not complete" + (f"; {self.info['wall_time']:.1f} s on {self.info.get('workers')} "
                                                           f"{self.info.get('backend')} worker(s)"
                                                           if "wall_time" in self.info else "")]
        if self.records:
            b = self.best()
            where = ", ".join(f"{k}={_fmt_value(v)}" for k, v in b.items() if k != "rel_l2")
            lines.append(f"best: {where} (median rel-L2 over seeds {b['rel_l2']:.3e})")
            for g in self.goldilocks(factor=factor, threshold=threshold).values():
                lines.append(str(g))
            if len(self.lambda_keys) >= 2:
                lines.append(str(self.goldilocks_volume(threshold)))
        return "\n".join(lines)


def _run_around(vals, ok, b):
    if not ok[b]:
        return None
    lo = hi = b
    while lo > 0 and ok[lo - 1]:
        lo -= 1
    while hi < len(vals) - 1 and ok[hi + 1]:
        hi += 1
    return (float(vals[lo]), float(vals[hi]))


def _fmt_value(v):
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _csv_cell(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(v)
    return v
