"""Shipping a sweep's problem to its workers.

Residuals are Python functions (usually lambdas), which cannot be pickled, so workers rebuild
the problem from how it was made: a library name (``registry.problems``) or a Problem that
records its ``origin``; a module-level factory ``"package.module:function"`` imported and called
in each worker; or, for a plain pc.Problem, inheritance by the forked local workers
(``INHERITED``; a Dask cluster cannot receive it). See ``pinncore.sweep``'s docstring.

>>> spec, problem = resolve_problem("harmonic")
>>> spec["kind"], spec["name"], problem.term_names
('library', 'harmonic', ['pde', 'ic'])
"""
from __future__ import annotations

import collections
import importlib
import sys
import threading
import uuid

__all__ = ["INHERITED", "NEEDS_FACTORY", "resolve_problem", "build_problem"]

INHERITED = {}        # token -> pc.Problem: reaches forked workers by inheritance, never pickled
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


def resolve_problem(problem):
    """(spec, local pc.Problem) for the ``problem`` argument of ``sweep``."""
    from .problem import Problem
    if isinstance(problem, str):
        spec = _spec_from(problem, {})
    elif isinstance(problem, tuple) and len(problem) == 2:
        spec = _spec_from(*problem)
    elif isinstance(problem, Problem):
        origin = problem.origin
        if origin is not None:
            if not (isinstance(origin, tuple) and len(origin) == 2):
                raise ValueError(f"problem.origin must be (name or 'module:function', kwargs), got {origin!r}")
            spec = _spec_from(*origin)
        else:
            key = uuid.uuid4().hex
            INHERITED[key] = problem  # until the sweep ends (sweep() removes it)
            return {"kind": "inherit", "key": key}, problem
    elif callable(problem):
        mod, qual = getattr(problem, "__module__", None), getattr(problem, "__qualname__", "")
        if mod and mod != "__main__" and "<" not in qual:
            spec = _spec_from(f"{mod}:{qual}", {})
        else:
            return resolve_problem(_check_problem(problem(), f"{qual or problem!r}()"))
    else:
        raise TypeError(f"problem must be a library name, a factory 'package.module:function', a (name, kwargs) "
                        f"pair or a pc.Problem, got {type(problem).__name__}")
    # The same problem gets the same key, so persistent workers (Dask) build it once across sweeps;
    # arguments whose repr may not identify them (arrays, objects) get a key of this sweep only.
    spec["token"] = (repr((spec["kind"], spec.get("name", spec.get("path")), sorted(spec["kwargs"].items())))
                     if _is_plain(spec["kwargs"]) else uuid.uuid4().hex)
    return spec, build_problem(spec, {})


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


def build_problem(spec, args):
    """The pc.Problem of ``spec`` with factory arguments ``args`` (grid "problem.<arg>" keys)
    added, cached per thread (a worker builds each problem once)."""
    if spec["kind"] == "inherit":
        if args:
            raise ValueError("'problem.<arg>' grid keys need a problem given by name or factory")
        try:
            return INHERITED[spec["key"]]
        except KeyError:
            raise RuntimeError(NEEDS_FACTORY) from None
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


NEEDS_FACTORY = (
    "this pc.Problem was built from Python functions (lambdas) in the calling process and cannot be sent to "
    "other processes. Give it by a module-level factory instead: pc.sweep('package.module:function', ...) or "
    "pc.sweep(('package.module:function', kwargs), ...), or set problem.origin = ('package.module:function', "
    "kwargs); library problems (pc.problems.*) do this themselves")
