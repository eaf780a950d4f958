"""Adding an optimizer, a weighting scheme or a library problem is one registration beside its
definition: it then shows up in pc.train, the command line's --help, the web catalogue and its
menus, sweeps and the audit with no other edit (issue 19). Run in a subprocess, so that the
toy entries do not stay in this process's registries."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pinncore

PKG_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(pinncore.__file__)))

SCRIPT = textwrap.dedent('''
    import contextlib, io, importlib, warnings
    import numpy as np
    import pinncore as pc
    from pinncore import cli, optim, phases, registry, weighting
    from pinncore.audit import default_shadows
    from pinncore.web import spec as webspec

    # --- one optimizer: plain gradient descent, in one registration
    @registry.optimizers.register("gd", description="gradient descent", bounds={"lr": (0.0, 1.0)}, follows=True)
    class GD(optim.Optimizer):
        name = "gd"
        default_iterations = 30
        cost = 1.0
        def __init__(self, lr=1e-3):
            self.lr = lr
        def config(self):
            return {"lr": self.lr}
        def step(self, params, state, objective, evaluation):
            params -= self.lr * (objective.weights @ evaluation[1])

    # --- one weighting scheme: constant 10 on every term but the first
    @registry.schemes.register("tenfold", description="λ = 10 off the first term", adapts=True)
    class Tenfold(weighting.Weighting):
        name = "tenfold"
        def init(self, problem):
            return {"weights": {k: (1.0 if i == 0 else 10.0) for i, k in enumerate(problem.term_names)}}

    # --- one library problem: the harmonic IVP at another frequency
    @registry.problems.register("harmonic3", description="harmonic IVP at omega = 3", bounds={"n_collocation": (2, 500)},
                                exact=True)
    def harmonic3(n_collocation=30):
        """The harmonic IVP u'' + 9u = 0 (a PDE of one input)."""
        return pc.problems.harmonic(omega=3.0, n_collocation=n_collocation)

    # pc.train: by name, with the optimizer's own default iterations, in phases
    r = pc.train("harmonic3", pc.MLP([1, 8, 1]), weighting="tenfold", optimizer="gd", warn=False)
    assert r.step == 30 and r.weights["ic"] == 10.0, (r.step, r.weights)
    r = pc.train("harmonic3", pc.MLP([1, 8, 1]), phases=[("adam", 5), ("gd", 3)], warn=False)
    assert r.step == 8 and list(r.history["phase"])[-1] == "gd"
    assert phases.default_iterations("gd") == 30

    # the command line
    for cmd in ("train", "sweep"):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert cli.main([cmd, "--help"]) == 0
        text = " ".join(out.getvalue().split())
        assert "gd" in text and "tenfold" in text, text
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["problems"]) == 0
    assert "harmonic3" in out.getvalue()

    # the web catalogue, its menus and a fit through the worker
    cat = webspec.catalogue()
    assert "gd" in cat["optimizers"] and "adam+gd" in cat["optimizers"]
    assert "tenfold" in cat["schemes"] and cat["scheme_info"]["tenfold"]["description"] == "λ = 10 off the first term"
    assert cat["problems"]["harmonic3"]["params"]["n_collocation"]["max"] == 500
    from pinncore.web.worker import run_fit
    s = run_fit(webspec.fit_spec({"problem": "harmonic3", "scheme": "tenfold", "optimizer": "adam+gd", "steps": 4,
                                  "second_steps": 2, "log_every": 1}), lambda row: None)
    assert s["status"] == "completed" and s["step"] == 6 and s["weights"]["ic"] == 10.0, s

    # sweeps: the names as grid values
    res = pc.sweep("harmonic3", {"weighting": ["tenfold", "fixed"], "optimizer": ["gd"]}, workers=1, progress=False)
    assert [(r["weighting"], r["optimizer"], r["steps"], r["status"]) for r in res.records] == [
        ("tenfold", "gd", 30, "completed"), ("fixed", "gd", 30, "completed")], res.records

    # the audit's shadows
    assert "tenfold" in [s.name for s in default_shadows()]
    print("OK")
''')


def test_a_new_optimizer_scheme_and_problem_appear_everywhere():
    env = dict(os.environ, PYTHONPATH=PKG_PARENT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300,
                       cwd=os.path.dirname(PKG_PARENT))
    assert r.returncode == 0 and r.stdout.strip().endswith("OK"), r.stdout + r.stderr
