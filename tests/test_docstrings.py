"""Every docstring example in the package runs (STYLE: docstrings carry a runnable example)."""
import doctest
import importlib
import importlib.util
import warnings

import numpy as np
import pytest

MODULES = ["backend", "network", "embedding", "reference", "residual", "fields", "table", "unknown", "inverse", "problem", "problems",
           "problems_common", "problems_classic", "problems_domains", "problems_reference", "objective", "optim", "weighting",
           "weighting_base", "weighting_gradient", "weighting_adaptive", "weighting_balance",
           "observers", "history", "state", "run", "result", "trainer", "diagnostics", "io", "io_format", "io_write", "io_read", "cli", "commands", "lowering", "metrics", "layout",
           "jacobian", "lm", "sweep", "geometry", "geometry_shapes", "geometry_csg", "geometry_sampling", "conditions", "resampling", "audit", "bfgs", "solve", "progress"]
MODULES += ["registry", "phases", "verdict", "demo", "sweep_grid", "sweep_problems", "sweep_fit", "sweep_exec",
            "sweep_results"]
MODULES += ["web", "web.spec", "web.worker", "web.jobs"]
if importlib.util.find_spec("starlette") and importlib.util.find_spec("uvicorn"):  # the optional web stack
    MODULES += ["web.app", "web.server"]


@pytest.mark.parametrize("name", MODULES)
def test_module_doctests(name):
    mod = importlib.import_module(f"pinncore.{name}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # examples train imbalanced problems on purpose
        res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                              extraglobs={"np": np})
    assert res.failed == 0, f"{res.failed} of {res.attempted} doctest examples failed in pinncore.{name}"
    assert res.attempted > 0, f"pinncore.{name} has no runnable docstring example"
