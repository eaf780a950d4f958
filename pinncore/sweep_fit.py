"""One fit of a sweep: its weighting scheme, optimizer and problem built from plain job data,
trained by ``pc.train``, summarised as a record of plain values. ``run_fit`` is module-level
and fed plain data, so a process pool or a Dask worker runs it by reference.

Scheme and optimizer names resolve through ``pinncore.registry`` (a scheme or optimizer
registered anywhere is sweepable); a fit given no ``steps`` runs its optimizer's
``default_iterations`` (``pinncore.phases``).

>>> scheme_spec("ntk", False)
{'name': 'ntk', 'config': {}}
"""
from __future__ import annotations

import os
import socket
import time
import warnings

from . import registry
from .sweep_problems import build_problem

__all__ = ["scheme_spec", "scheme_class", "optimizer_spec", "run_fit", "directed_ratio"]


def scheme_spec(weighting, has_lambda):
    """{"name", "config"} of the sweep's scheme (and "instance" for an unregistered one)."""
    from . import weighting as W
    if weighting is None:
        name = "fixed" if has_lambda else W.default().name
        return {"name": name, "config": {} if has_lambda else W.default().config()}
    if isinstance(weighting, type) and issubclass(weighting, W.Weighting):
        weighting = weighting()
    if isinstance(weighting, str):
        W.get(weighting)  # validates the name now, not in every worker
        return {"name": registry.schemes[weighting].name, "config": {}}
    if not isinstance(weighting, W.Weighting):
        raise TypeError(f"weighting must be a scheme name or a pc weighting scheme, got {type(weighting).__name__}")
    name = type(weighting).__name__.lower()
    if scheme_class(weighting.name) is type(weighting):   # a registered scheme: rebuilt from its config
        return {"name": weighting.name, "config": weighting.config()}
    return {"name": name, "config": {}, "instance": weighting}  # a user scheme: pickled by reference


def scheme_class(name):
    """The class registered as scheme ``name`` (``registry.schemes``), or None."""
    return registry.schemes[name].factory if isinstance(name, str) and name in registry.schemes else None


def optimizer_spec(optimizer):
    """{"name", "config"} of the sweep's optimizer (and "instance" for an unregistered one)."""
    from . import optim
    if isinstance(optimizer, optim.Optimizer):
        name = optimizer.name
        if name in registry.optimizers and registry.optimizers[name].factory is type(optimizer):
            return {"name": name, "config": optimizer.config()}
        return {"name": name, "config": {}, "instance": optimizer}  # a user optimizer: pickled by reference
    if not isinstance(optimizer, str):
        raise TypeError(f"optimizer must be a name ('adam', 'lbfgs', ...) or a pc optimizer object, "
                        f"got {type(optimizer).__name__}")
    if optimizer not in registry.optimizers:
        optim.get(optimizer)  # raises, naming the known optimizers
    return {"name": registry.optimizers[optimizer].name, "config": {}}


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
            spec = scheme_spec(v, False)
    args = {kinds[k][1]: v for k, v in params.items() if kinds[k][0] == "weighting_arg"}
    lams = {kinds[k][1]: v for k, v in params.items() if kinds[k][0] == "lambda"}
    if "instance" in spec and not (args or lams):
        return spec["instance"]
    cfg = {**spec["config"], **args}
    if lams:
        if scheme_class(spec["name"]) is not W.Fixed:
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


def run_fit(job):
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
    from .phases import default_iterations
    set_num_threads(1)  # one worker per core: the kernel stays single-threaded
    base, params, kinds = job["base"], job["params"], job["kinds"]
    problem = build_problem(base["problem"], {kinds[k][1]: v for k, v in params.items()
                                               if kinds[k][0] == "problem_arg"})
    kw = dict(base["train"])
    kw.update({k: v for k, v in params.items() if kinds[k][0] == "train"})
    steps = kw.pop("steps", base["steps"])
    scheme = _make_scheme(base, params, kinds)
    optimizer = _make_optimizer(base, params, kinds, kw.get("lr"))
    if steps is None:   # the optimizer's own default (LM 200, not Adam's 2000)
        steps = default_iterations(optimizer)
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
        out["grad_ratio0"] = directed_ratio({k: first[f"{k}_weight"] * first[f"{k}_grad_norm"] for k in names})
    if len(h):
        last = h[-1]
        out.update({f"{k}_loss": last[f"{k}_loss"] for k in names})
    out.update({f"{k}_weight": float(v) for k, v in result.weights.items()})
    return out


def directed_ratio(norms):
    """The step-0 balance with its direction, as the demo prints it: λ_0‖∇L_0‖ / λ_b‖∇L_b‖ of the
    first term (the PDE) over the other term b farthest from it in log scale — λ‖∇L_pde‖ /
    λ‖∇L_ic‖ on a two-term problem (> 1: the PDE dominates). None for one term.

    >>> directed_ratio({"pde": 10.0, "ic": 1000.0})
    0.01
    """
    import math
    names = list(norms)
    if len(names) < 2:
        return None
    a = norms[names[0]]
    with_b = [(abs(math.log(a / norms[b])) if a > 0 and norms[b] > 0 else math.inf, b) for b in names[1:]]
    b = max(with_b, key=lambda t: t[0])[1]
    return a / norms[b] if norms[b] > 0 else math.inf

