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
``"weighting"``                      a scheme name from ``pinncore.registry.schemes`` ("fixed", "ntk", ...)
``"weighting.<arg>"``                an argument of the scheme's constructor, e.g. "weighting.alpha"
``"optimizer"``                      a name from ``pinncore.registry.optimizers`` ("adam", "lbfgs", "lm", ...)
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
``problem.origin = None`` makes the local workers inherit it as it is.

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

Modules: ``sweep_grid`` (the grid's grammar), ``sweep_problems`` (shipping the problem to the
workers), ``sweep_fit`` (one fit), ``sweep_exec`` (executors with crash recovery),
``sweep_results`` (the table and its Goldilocks analysis); this one plans the jobs and runs them.
"""
from __future__ import annotations

import itertools
import math
import os
import time

import numpy as np

from .sweep_exec import Bar, LocalPool, run_dask, run_inline
from .sweep_fit import optimizer_spec, scheme_class, scheme_spec
from .sweep_grid import classify, grid_values, parse_axis, train_keys  # noqa: F401 - parse_axis: public here too
from .sweep_problems import INHERITED, NEEDS_FACTORY, resolve_problem
from .sweep_results import CLEAN, Goldilocks, GoldilocksVolume, SweepResult, hashable, plain, record_error  # noqa: F401
from .verdict import verdict

__all__ = ["sweep", "check", "SweepResult", "Goldilocks", "GoldilocksVolume", "parse_axis", "available_cores",
           "CLEAN", "hashable", "record_error"]

_Bar, _INHERITED = Bar, INHERITED   # the former private names (tests)



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
    spec, local = resolve_problem(problem)
    try:
        return _jobs(spec, local, grid, seeds, weighting, optimizer, steps, layers, client, train_kwargs)
    except BaseException:
        INHERITED.pop(spec.get("key"), None)
        raise


def _jobs(spec, local, grid, seeds, weighting, optimizer, steps, layers, client, train_kwargs):
    terms = local.term_names
    if not isinstance(grid, dict):
        raise TypeError(f"grid must be a dict key -> list of values, got {type(grid).__name__}")
    settable = train_keys()
    keys = list(grid)
    kinds = {k: classify(k, terms, settable) for k in keys}
    values = [grid_values(k, grid[k]) for k in keys]
    lam_terms = [kinds[k][1] for k in keys if kinds[k][0] == "lambda"]
    if len(set(lam_terms)) < len(lam_terms):
        raise ValueError(f"grid names the λ of a term twice ({', '.join(keys)})")
    seeds = _check_seeds(seeds)
    bad = sorted(set(train_kwargs) - set(settable))
    if bad:
        raise TypeError(f"sweep() got unexpected keyword argument(s) {', '.join(map(repr, bad))}; pc.train settings "
                        f"a sweep can pass: {', '.join(settable)}")
    wspec = scheme_spec(weighting, bool(lam_terms))
    if lam_terms and "weighting" not in grid and scheme_class(wspec["name"]) is not _fixed_class():
        raise ValueError(f"the grid sets λ for {', '.join(lam_terms)}, which needs weighting 'fixed', got "
                         f"weighting={wspec['name']!r}")
    ospec = optimizer_spec(optimizer)
    check_fit_settings(local, steps, layers, train_kwargs)
    if spec["kind"] == "inherit":
        if any(kinds[k][0] == "problem_arg" for k in keys):
            raise ValueError("'problem.<arg>' grid keys need a problem given by name or factory, not a pc.Problem")
        if client is not None:
            raise ValueError("pc.sweep(client=...): " + NEEDS_FACTORY)
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
        if key == "steps" and v is None:
            continue   # each optimizer's own default_iterations
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


def _reporter(progress, total):
    """(report callback or None, the tqdm bar to close or None) for ``sweep``'s ``progress``."""
    if callable(progress):
        return progress, None
    if progress in (True, False, None):
        bar = Bar(total) if progress else None
        return bar, bar
    raise TypeError(f"progress must be True, False or a callable progress(done, total, record), got {progress!r}")


def sweep(problem, grid, *, seeds=(0,), weighting=None, optimizer="adam", steps=None, layers=None, client=None,
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
    optimizer : a name from ``registry.optimizers`` or an optimizer object. steps : iterations per
        fit (None: the optimizer's ``default_iterations``). layers : widths or None
        for pc.train's default ``[d, 50, 50, 50, m]``.
    client : a ``dask.distributed.Client``: run the fits as tasks on its cluster.
    progress : True for a progress bar on stderr when it is a terminal, False for none, or a
        callable ``progress(done, total, record)`` called after every record.
    workers : local processes (default: the available cores; 1 runs in this process).
    retries : how often a fit whose worker died is tried again (local pool: resubmitted; Dask:
        ``client.submit(retries=...)``, while the scheduler itself reschedules lost tasks).
    **train_kwargs : further pc.train settings for every fit (lr, lbfgs_steps, log_every, ...).

    Record fields: index, seed, the grid keys, weighting, optimizer, steps, status ("completed",
    "diverged", "error", "lost", ...), error, rel_l2, grad_ratio0 (λ_0‖∇L_0‖ / λ_b‖∇L_b‖ at
    step 0: the first term, the PDE, over the term farthest from it — λ‖∇L_pde‖ / λ‖∇L_ic‖ on
    the harmonic problem, as in the demo; ``sweep_fit.directed_ratio``), verdict
    (``pinncore.verdict`` of rel_l2 and status), <term>_loss (final, unweighted), <term>_weight (final λ), step,
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
    report, bar = _reporter(progress, len(jobs))
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
            run_dask(client, jobs, retries, on_record)
        elif workers == 1 or len(jobs) == 1:
            info.update(backend="inline", workers=1)
            run_inline(jobs, on_record)
        else:
            pool = LocalPool(jobs, min(workers, len(jobs)), retries, on_record)
            info["workers"] = pool.workers
            try:
                pool.run()
            finally:
                info["restarts"] = pool.restarts
    finally:
        if bar is not None:
            bar.close()
        INHERITED.pop(base["problem"].get("key"), None)
    info["wall_time"] = time.perf_counter() - t0
    return SweepResult(records, keys=keys, kinds={k: v[0] for k, v in kinds.items()}, terms=terms,
                       seeds=base["seeds"], info=info, problem=_describe(base["problem"]))


def check(problem, grid, *, seeds=(0,), weighting=None, optimizer="adam", steps=None, layers=None, client=None,
          **train_kwargs):
    """Validate the arguments of ``sweep`` (the same checks, nothing trained): raises the
    ValueError/TypeError ``sweep`` would. The command line calls it before printing or creating
    anything.

    >>> check("harmonic", {"ic": [1.0, 10.0]}, steps=10)
    >>> check("harmonic", {"bogus": [1.0]})
    Traceback (most recent call last):
    ...
    ValueError: grid key 'bogus' is not a term of the problem ['pde', 'ic'] nor a setting; ...
    """
    _, _, _, _, base = _plan(problem, grid, seeds, weighting, optimizer, steps, layers, client, train_kwargs)
    INHERITED.pop(base["problem"].get("key"), None)


def _describe(spec):
    if spec["kind"] == "inherit":
        return {"kind": "problem"}
    return {k: spec[k] for k in ("kind", "name", "path", "kwargs") if k in spec}


def _default_steps(optimizer):
    from .phases import default_iterations
    try:
        return default_iterations(optimizer)
    except ValueError:   # an unregistered optimizer given by object (recorded by class name)
        return None


def _record(job, index, rec, terms):
    base = job["base"]
    r = {"index": index, "seed": job["seed"]}
    r.update({k: plain(v) for k, v in job["params"].items()})
    r.setdefault("weighting", base["weighting"]["name"])
    r.setdefault("optimizer", base["optimizer"]["name"])
    steps = base["steps"] if "steps" not in base["train"] else base["train"]["steps"]
    if steps is None:   # the fit's optimizer ran its own default_iterations
        steps = _default_steps(r["optimizer"])
    r.setdefault("steps", steps)
    for f in ("status", "error", "rel_l2", "grad_ratio0"):
        r[f] = rec.get(f)
    r["verdict"] = verdict(r["rel_l2"], r["status"] or "failed")
    for t in terms:
        r[f"{t}_loss"] = rec.get(f"{t}_loss")
    for t in terms:
        r[f"{t}_weight"] = rec.get(f"{t}_weight")
    for f in ("step", "wall_time", "cpu_time", "worker"):
        r[f] = rec.get(f)
    return r
