"""pinncore.verdict: one verdict, thresholds defined once, used by every front end."""
from __future__ import annotations

import ast
import os

import numpy as np
import pytest

import pinncore
from pinncore import verdict as V


def hist(losses):
    return {"step": np.arange(len(losses)) * 100, "total_loss": np.asarray(losses, dtype=float)}


@pytest.mark.parametrize("rel, status, losses, expected", [
    (0.01, "completed", None, "clean"),
    (0.049, "stopped", None, "clean"),
    (0.05, "completed", None, "partial"),
    (0.29, "completed", None, "partial"),
    (0.30, "completed", None, "wrong steady state"),
    (0.49, "completed", [1, 1, 1, 1, 1, 1, 1, 1, 1, 0.99], "wrong steady state"),   # settled
    (0.49, "completed", np.logspace(0, -4, 11), "partial (undertrained)"),          # still falling fast
    (0.40, "cancelled", None, "stopped early"),
    (0.40, "interrupted", None, "stopped early"),
    (float("nan"), "completed", None, "diverged"),
    (None, "completed", None, "diverged"),
    (0.2, "diverged", None, "diverged"),
])
def test_verdict(rel, status, losses, expected):
    got = V.verdict(rel, status, None if losses is None else hist(losses))
    assert got == expected and got in V.VERDICTS


def test_thresholds_are_the_courses_and_every_front_end_uses_them():
    from pinncore import cli, plotting, sweep_results
    from pinncore.web import spec
    assert (V.CLEAN, V.WRONG) == (0.05, 0.30)
    assert cli.verdict is V.verdict and spec.verdict is V.verdict
    assert sweep_results.CLEAN is V.CLEAN and plotting.CLEAN is V.CLEAN
    assert spec.catalogue()["verdict"] == {"clean": V.CLEAN, "wrong": V.WRONG}


def test_no_module_restates_the_thresholds():
    """0.05 / 0.30 as a module-level constant live in verdict.py only."""
    pkg = os.path.dirname(pinncore.__file__)
    found = []
    for folder, _, files in os.walk(pkg):
        for f in files:
            if not f.endswith(".py") or f == "verdict.py":
                continue
            with open(os.path.join(folder, f), encoding="utf-8") as fh:
                tree = ast.parse(fh.read())
            for n in tree.body:
                targets = " ".join(ast.unparse(t) for t in n.targets) if isinstance(n, ast.Assign) else ""
                if "CLEAN" in targets or "WRONG" in targets:
                    found.append(f"{f}: {ast.unparse(n)}")
    assert found == []


def test_a_still_improving_burgers_like_run_is_partial_not_wrong():
    """The issue's case: rel-L2 0.49 -> 0.40 while the loss still falls is 'partial (undertrained)'."""
    r = pinncore.train("harmonic", pinncore.MLP([1, 8, 1]), weighting=pinncore.Fixed({"ic": 1e-3}), steps=60,
                       log_every=10, warn=False)
    h = r.history
    expected = "partial (undertrained)" if V.still_falling(h) else "wrong steady state"
    assert r.rel_l2 >= V.WRONG and V.verdict(r.rel_l2, r.status, h) == expected
