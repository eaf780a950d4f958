"""Declared interfaces (issue 19): no module of the package reads another module's private
(underscored) names, and no module reads a declared hook or attribute through ``getattr`` with a
default (which would hide a missing declaration). Scans the package's syntax trees; tests may
use private names, the package may not."""
from __future__ import annotations

import ast
import os

import pinncore
from pinncore.observers import Observer
from pinncore.optim import Optimizer
from pinncore.problem import Problem, Term
from pinncore.weighting import Weighting

PKG = os.path.dirname(os.path.abspath(pinncore.__file__))
# The one sanctioned boundary: only backend.py imports the compiled core (docs/design.md).
ALLOWED = {("backend.py", "_core")}


def _modules():
    for folder, _, files in os.walk(PKG):
        for f in sorted(files):
            if f.endswith(".py"):
                path = os.path.join(folder, f)
                with open(path, encoding="utf-8") as fh:
                    yield os.path.relpath(path, PKG), ast.parse(fh.read(), path)


def _own_names(tree):
    """Private names a module defines itself: functions, classes, assigned names and attributes,
    and string constants (``__slots__`` entries, ``object.__setattr__(self, "_x", ...)``)."""
    out = set()
    for n in ast.walk(tree):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(n.name)
        elif isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store):
            out.add(n.attr)
        elif isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
            out.add(n.id)
        elif isinstance(n, ast.Constant) and isinstance(n.value, str):
            out.add(n.value)
    return out


def _private(name):
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_access(rel, tree):
    """(line, text) of every read of another module's private name in one module's tree."""
    own, hits = _own_names(tree), []
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom) and (n.level or (n.module or "").startswith("pinncore")):
            hits += [(n.lineno, f"from {n.module or '.'} import {a.name}") for a in n.names
                     if _private(a.name) and (os.path.basename(rel), a.name) not in ALLOWED]
        elif isinstance(n, ast.Attribute) and _private(n.attr):
            if isinstance(n.value, ast.Name) and n.value.id in ("self", "cls"):
                continue
            if n.attr not in own:   # obj._x / mod._x where _x belongs to another module
                hits.append((n.lineno, ast.unparse(n)))
    return hits


def test_no_module_reads_another_modules_private_names():
    found = [f"{rel}:{line}: {text}" for rel, tree in _modules() for line, text in private_access(rel, tree)]
    assert found == [], "cross-module private access:\n" + "\n".join(found)


def test_the_scan_finds_what_it_must():
    tree = ast.parse("from . import weighting as W\nfrom .optim import _OPTIMIZERS\n"
                     "def f(result, self):\n    return W._REGISTRY, result._lambda_key, self._ok\n")
    assert [t for _, t in private_access("x.py", tree)] == [
        "from optim import _OPTIMIZERS", "W._REGISTRY", "result._lambda_key"]


DECLARED = set()
for cls in (Observer, Optimizer, Weighting, Term, Problem):
    DECLARED |= {k for k in dir(cls) if not k.startswith("__")}


def test_no_declared_attribute_is_read_by_getattr_with_a_default():
    """A hook or attribute the base classes declare is read directly (``obs.row_columns(run)``),
    never as ``getattr(obs, "row_columns", None)``, which would let an undeclared one slip by."""
    found = []
    for rel, tree in _modules():
        for n in ast.walk(tree):
            if (isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "getattr"
                    and len(n.args) == 3 and isinstance(n.args[1], ast.Constant) and n.args[1].value in DECLARED):
                found.append(f"{rel}:{n.lineno}: {ast.unparse(n)}")
    assert found == [], "\n".join(found)
    for name in ("on_update", "row_columns", "reported_weights", "paired", "origin", "geometry",
                 "default_iterations", "log_every_iteration", "reports_weights"):
        assert name in DECLARED, name
