"""The saved state of a training run: its format, loading and validation (no pickle).

A state is a dict of plain values and arrays, saved by ``pinncore.io`` (versioned, checksummed,
atomic): the network (layers, dtype, seed, backend, params), the term names, the global step,
the current optimizer (name, config and its state's arrays, at the top level of
``state["optimizer"]``), the weighting scheme (name, config, state) and the history columns;
with unknown coefficients, ``state["unknowns"]`` = {"names": [...], "raw": φ (U,)} (the tail of the
optimizer's vector, pinncore.unknown).

>>> sorted(optimizer_state({"name": "adam", "config": {}, "m": 1, "v": 2, "step": 0}))
['m', 'step', 'v']
"""
from __future__ import annotations

import math

import numpy as np

from . import io as _io
from . import optim as _optim
from .layout import n_params

__all__ = ["STATE_KIND", "load_state", "check_state", "optimizer_state", "check_like", "HISTORY_COLUMNS"]

# The history columns a resumed run reads (every row has them); the others are numbers or None.
HISTORY_COLUMNS = ("step", "phase", "wall_time", "total_loss")

STATE_KIND = "pinncore.train_state"


def optimizer_state(saved):
    """The optimizer's own state inside a saved ``state["optimizer"]`` entry."""
    return {k: v for k, v in saved.items() if k not in ("name", "config")}


def load_state(path):
    """Load a training state saved by ``TrainResult.save`` or ``Run.save`` (a dict; pass it or the
    path to ``train(..., resume=...)`` or ``pc.Run(..., resume=...)``).

    >>> import pinncore as pc, tempfile, os
    >>> r = pc.train(pc.problems.harmonic(), pc.MLP([1, 8, 1]), steps=3, weighting=pc.Fixed(), warn=False)
    >>> path = os.path.join(tempfile.mkdtemp(), "state.pcs"); r.save(path)
    >>> pc.load_state(path)["step"]
    3
    """
    return check_state(_io.load(path, kind=STATE_KIND))


def _check_optimizer(opt, n, dt, bad):
    if not (isinstance(opt, dict) and isinstance(opt.get("config"), dict)):
        bad("optimizer must hold its 'name', 'config' and state")
    try:
        optimizer = _optim.get(opt.get("name", "adam"), **opt["config"])
    except (TypeError, ValueError, OverflowError) as e:
        bad(f"optimizer config: {e}")
    try:
        optimizer.check_state(optimizer_state(opt), n, dt)
    except ValueError as e:
        bad(str(e))


def _check_unknowns(u, dt, bad):
    """The saved unknowns (pinncore.unknown): names and raw parameters φ; returns their count."""
    if not (isinstance(u, dict) and isinstance(u.get("names"), list) and all(isinstance(k, str) for k in u["names"])):
        bad("unknowns must hold a list of 'names' and their 'raw' values")
    raw, k = u.get("raw"), len(u["names"])
    if len(set(u["names"])) != k:
        bad(f"unknowns has a name twice: {u['names']}")
    if not (isinstance(raw, np.ndarray) and raw.dtype == dt and raw.shape == (k,) and np.isfinite(raw).all()):
        bad(f"unknowns raw must be a finite {dt} array of shape ({k},)")
    return k


def _is_int(v, lo=0):
    return isinstance(v, int) and not isinstance(v, bool) and v >= lo


def check_state(state):
    """Validate a training state (from a file or hand-made) before anything is built from it;
    returns it, or raises ValueError("resume state: ...") naming the bad field."""
    from .network import MAX_PARAMS

    def bad(msg):
        raise ValueError(f"resume state: {msg}")

    if not isinstance(state, dict):
        bad(f"expected a dict (from pc.load_state) or a path, got {type(state).__name__}")
    for key in ("layers", "dtype", "terms", "params", "step", "optimizer", "weighting", "history"):
        if key not in state:
            bad(f"missing field {key!r}")
    layers = state["layers"]
    if not (isinstance(layers, list) and 2 <= len(layers) <= 1000 and all(_is_int(w, 1) for w in layers)):
        bad(f"layers must be a list of positive ints, got {layers!r}")
    n = n_params(layers)
    if n <= MAX_PARAMS and ("arch" in state or "embedding" in state):  # pinncore.embedding's layout
        from .embedding import embedding_from_config, n_params as arch_params
        try:
            n = arch_params(layers, state.get("arch", "plain"), embedding_from_config(state.get("embedding")))
        except (TypeError, ValueError) as e:
            bad(f"network: {e}")
    if n > MAX_PARAMS:
        bad(f"layers {_short(layers)} describe {n:.3g} parameters (at most {MAX_PARAMS:.0e})" if n < 1e300 else
            f"layers {_short(layers)} describe more than 1e300 parameters (at most {MAX_PARAMS:.0e})")
    if not isinstance(state["dtype"], str) or state["dtype"] not in ("float64", "float32"):
        bad(f"dtype must be 'float64' or 'float32', got {state['dtype']!r}")
    dt = np.dtype(state["dtype"])
    if not (isinstance(state["terms"], list) and all(isinstance(t, str) for t in state["terms"])):
        bad("terms must be a list of term names")
    if not (_is_int(state["step"]) and state["step"] <= _optim.MAX_STEP):
        bad(f"step must be an int in [0, 2**53], got {_short(state['step'])}")
    if not _is_int(state.get("seed", 0)):
        bad(f"seed must be an int >= 0, got {state.get('seed')!r}")

    p = state["params"]
    if not (isinstance(p, np.ndarray) and p.dtype == dt and p.shape == (n,)):
        bad(f"params must be a {dt} array of shape ({n},)")
    if not np.isfinite(p).all():
        bad("params must be finite")
    u = _check_unknowns(state.get("unknowns", {"names": [], "raw": np.zeros(0, dt)}), dt, bad)
    for key in ("optimizer", "phase"):
        if key in state:   # the optimizer's vector: the network's parameters, then the unknowns'
            _check_optimizer(state[key], n + u, dt, bad)
    w = state["weighting"]
    if not (isinstance(w, dict) and isinstance(w.get("name"), str) and isinstance(w.get("state"), dict)
            and isinstance(w.get("config", {}), dict)):
        bad("weighting must hold a scheme 'name', its 'config' dict and its 'state' dict")
    _check_history(state["history"], state["step"], bad)
    return state


def _short(v, limit=60):
    text = repr(v)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _finite(v):
    try:
        return math.isfinite(v)
    except OverflowError:   # an int beyond float range
        return False


def _check_history(h, step, bad):
    """Columns of equal length; ``HISTORY_COLUMNS`` present (when there are rows); ``step`` ints
    in [0, step], non-decreasing; ``phase`` strings; every other value a number or None."""
    if not (isinstance(h, dict) and all(isinstance(c, list) for c in h.values())):
        bad("history must be a dict of column lists")
    if len({len(c) for c in h.values()}) > 1:
        bad("history columns have different lengths: "
            + ", ".join(f"{k}: {len(c)}" for k, c in list(h.items())[:6]))
    if not h or not next(iter(h.values())):
        return
    missing = [k for k in HISTORY_COLUMNS if k not in h]
    if missing:
        bad(f"history is missing column(s) {missing} (a saved history has {list(HISTORY_COLUMNS)})")
    steps = h["step"]
    if not all(_is_int(v) and v <= step for v in steps) or any(a > b for a, b in zip(steps, steps[1:])):
        bad(f"history 'step' must hold non-decreasing ints in [0, {step}] (the state's step)")
    for key, col in h.items():
        if key == "step":
            continue
        ok = (lambda v: v is None or isinstance(v, str)) if key == "phase" else \
            (lambda v: v is None or (_is_number(v) and (isinstance(v, int) and abs(v) <= _optim.MAX_STEP
                                                         or isinstance(v, float))))
        for i, v in enumerate(col):
            if not ok(v):
                want = "a string" if key == "phase" else "a number or None"
                bad(f"history column {key!r} row {i} must be {want}, got {_short(v)}")


def check_like(saved, fresh, what):
    """Raise ValueError naming the path where ``saved`` does not have the structure of
    ``fresh`` (a scheme's ``init`` state for the same problem): the same keys, arrays of the
    same shape holding finite floats, ints (counters, bounded by 2**53) where it has ints,
    finite numbers where it has floats, bools, strings and dicts alike. Values may differ;
    ``None`` in ``fresh`` accepts anything.

    >>> check_like({"count": 3, "w": {"a": 1.5}}, {"count": 0, "w": {"a": 1.0}}, "state")
    >>> try:
    ...     check_like({"count": "3", "w": {"a": 1.5}}, {"count": 0, "w": {"a": 1.0}}, "state")
    ... except ValueError as e:
    ...     print(e)
    state['count'] must be an int in [0, 2**53], got '3'
    """
    if fresh is None:
        return
    if isinstance(fresh, dict):
        if not isinstance(saved, dict):
            raise ValueError(f"{what} must be a dict, got {type(saved).__name__}")
        for k, v in fresh.items():
            if k not in saved:
                raise ValueError(f"{what} is missing {k!r}")
            check_like(saved[k], v, f"{what}[{k!r}]")
    elif isinstance(fresh, np.ndarray):
        if not (isinstance(saved, np.ndarray) and saved.shape == fresh.shape and saved.dtype.kind == "f"
                and np.isfinite(saved).all()):
            got = f"shape {saved.shape}, dtype {saved.dtype}" if isinstance(saved, np.ndarray) else _short(saved)
            raise ValueError(f"{what} must be a finite float array of shape {fresh.shape}, got {got}")
    elif isinstance(fresh, bool):
        if not isinstance(saved, bool):
            raise ValueError(f"{what} must be a bool, got {_short(saved)}")
    elif isinstance(fresh, int):
        if not (_is_int(saved) and saved <= _optim.MAX_STEP):
            raise ValueError(f"{what} must be an int in [0, 2**53], got {_short(saved)}")
    elif isinstance(fresh, float):
        if not (_is_number(saved) and _finite(saved)):
            raise ValueError(f"{what} must be a finite number, got {_short(saved)}")
    elif isinstance(fresh, str):
        if not isinstance(saved, str):
            raise ValueError(f"{what} must be a string, got {_short(saved)}")
