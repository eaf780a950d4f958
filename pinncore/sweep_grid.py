"""Sweep grids: the grammar of a ``pc.sweep`` grid's keys and the command line's ``--grid`` items.

A key is a term name (its λ), ``lambda.<term>``, ``weighting`` / ``weighting.<arg>``,
``optimizer`` / ``optimizer.<arg>``, ``problem.<arg>``, ``layers`` or a ``pc.train`` keyword
(read from its signature, so a new keyword is sweepable with no edit here). Scheme and
optimizer names are checked against ``pinncore.registry`` when a fit is built.

>>> classify("ic", ["pde", "ic"], train_keys())
('lambda', 'ic')
>>> classify("weighting.alpha", ["pde", "ic"], train_keys())
('weighting_arg', 'alpha')
"""
from __future__ import annotations

import inspect
import math

import numpy as np

__all__ = ["train_keys", "classify", "grid_values", "parse_axis"]

_PREFIXES = ("lambda", "weighting", "optimizer", "problem")
_NOT_SWEEPABLE = {"problem", "net", "weighting", "optimizer", "seed", "callback", "verbose", "warn", "resume",
                  "checkpoint", "checkpoint_every", "observers", "phases"}


def train_keys():
    """pc.train keywords a sweep may set per fit (read from its signature, so new ones work)."""
    from .trainer import train
    return [k for k in inspect.signature(train).parameters if k not in _NOT_SWEEPABLE]


def classify(key, terms, train_keys):
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


def grid_values(key, values):
    """The values of grid axis ``key`` as a list of plain Python values (TypeError/ValueError otherwise)."""
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
