"""pinncore.phases: the one schedule builder and its one stopping rule."""
from __future__ import annotations

import pytest

import pinncore as pc
from pinncore import phases, registry
from pinncore.observers import Observer


@pytest.mark.parametrize("args, expected", [
    (("adam",), [("adam", 2000)]),
    (("adam", 100), [("adam", 100)]),
    (("adam", 100, 5), [("adam", 100), ("lbfgs", 5)]),
    (("adam", 100, 0, 3), [("adam", 100), ("lm", 3)]),
    (("adam", 100, 5, 3), [("adam", 100), ("lbfgs", 5), ("lm", 3)]),
    (("lbfgs", 10, 5), [("lbfgs", 15)]),          # one L-BFGS phase, as before
    (("LBFGS",), [("lbfgs", 1000)]),              # registry names are case-insensitive
    (("lm",), [("lm", 200)]),
    (("adam", 0), [("adam", 0)]),                 # the first phase stays, even empty
])
def test_build_shorthands(args, expected):
    assert phases.build(*args) == expected


def test_build_general_form_and_objects():
    adam = pc.Adam(lr=0.01)
    plan = phases.build(phases=[(adam, 10), ("lm", None), ("lbfgs", 0)])
    assert plan == [(adam, 10), ("lm", 200), ("lbfgs", 0)]
    assert phases.default_iterations(adam) == 2000 and phases.default_iterations(pc.LevenbergMarquardt) == 200


@pytest.mark.parametrize("kw, match", [
    ({"optimizer": "sgd"}, "optimizer must be one of"),
    ({"steps": -1}, "steps"),
    ({"steps": 1.5}, "steps"),
    ({"lbfgs_steps": -2}, "lbfgs_steps"),
    ({"phases": [("adam", 10)], "steps": 5}, "phases="),
    ({"phases": []}, "at least one"),
    ({"phases": [("adam",)]}, r"phases\[0\]"),
    ({"phases": [("adam", -1)]}, r"phases\[0\] iterations"),
])
def test_build_rejects(kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        phases.build(**kw)


def test_every_registered_optimizer_has_its_default():
    for spec in registry.optimizers.specs():
        n = phases.default_iterations(spec.name)
        assert isinstance(n, int) and n >= 1
        assert phases.build(spec.name) == [(spec.name, n)]


class _StopAt(Observer):
    def __init__(self, step):
        self.step = step

    def on_log(self, run, row):
        return row["step"] >= self.step


def _run(observers=()):
    return pc.Run(pc.problems.harmonic(n_collocation=8), pc.MLP([1, 4, 1]), weighting=pc.Fixed({"ic": 10.0}),
                  log_every=5, warn=False, observers=list(observers))


def test_run_goes_on_only_after_a_completed_phase():
    run = _run()
    assert phases.run(run, [("adam", 10), ("lbfgs", 3)]) == "completed"
    assert run.step_count == 13 and "lbfgs" in set(run.result().history["phase"])
    run = _run([_StopAt(5)])    # stopped during the first phase: the second never starts
    assert phases.run(run, [("adam", 10), ("lbfgs", 3)]) == "stopped"
    assert "lbfgs" not in set(run.result().history["phase"]) and run.step_count <= 10
