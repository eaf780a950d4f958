"""pinncore.audit: shadow schemes replay their updates on the driving run's statistics; while
the trajectories coincide their weights are those of a run driven by that scheme."""
import numpy as np
import pytest

import pinncore as pc
from pinncore.audit import Audit, default_shadows, shadow_column

LAYERS = [1, 16, 16, 1]


def run(scheme, steps, log_every=1, audit=None, **kw):
    r = pc.Run(pc.problems.harmonic(), pc.MLP(LAYERS, seed=0), weighting=scheme, log_every=log_every, warn=False,
               observers=[audit] if audit is not None else (), **kw)
    r.step(steps)
    return r


def test_shadow_of_the_driving_scheme_reproduces_it_at_every_row():
    audit = Audit([pc.GradNorm(every=3), pc.Balanced(every=4)])
    r = run(pc.GradNorm(every=3), 20, audit=audit)
    h = r.history
    np.testing.assert_array_equal(h["gradnorm:ic_weight"], h["ic_weight"])
    driven = run(pc.Balanced(every=4), 20).history
    # Balanced's shadow agrees with a Balanced-driven run only at step 0 (then trajectories part)
    assert h["balanced:ic_weight"][0] == driven["ic_weight"][0]
    assert audit.labels == ["gradnorm", "balanced"]


def test_shadows_equal_driven_runs_while_trajectories_coincide():
    """Driven by Fixed (λ = 1): every shadow's step-0 weights equal a run driven by it; ReLoBRaLo
    and SelfAdaptive change nothing the optimizer sees at step 0, so step 1 agrees too."""
    audit = Audit()
    h = run(pc.Fixed(), 2, audit=audit).history
    assert audit.labels == ["gradnorm", "ntk", "selfadaptive", "relobralo", "balanced"]
    for scheme in default_shadows():
        d = run(type(scheme)(), 2).history
        rows = (0, 1) if scheme.name in ("relobralo", "selfadaptive") else (0,)
        for i in rows:
            for t in ("pde", "ic"):
                assert h[shadow_column(scheme.name, t)][i] == d[f"{t}_weight"][i], (scheme.name, t, i)
    assert h["ntk:ic_weight"][0] > 100          # NTK's choice differs from the driver's λ = 1
    assert (h["ic_weight"] == 1.0).all()


def test_audit_does_not_change_the_driven_run():
    plain = run(pc.Balanced(), 30, log_every=10)
    audited = run(pc.Balanced(), 30, log_every=10, audit=Audit())
    np.testing.assert_array_equal(plain.net.params, audited.net.params)
    assert [k for k in audited.history.keys() if k.startswith("balanced:")] == []   # the driver's class is skipped
    assert "selfadaptive:ic_weight" in audited.history


def test_ntk_traces_are_computed_once_per_step_and_shared(monkeypatch):
    p = pc.problems.harmonic()
    calls = []
    orig = type(p).ntk_traces

    def counting(self, net, params=None):
        calls.append(1)
        return orig(self, net, params)

    monkeypatch.setattr(type(p), "ntk_traces", counting)
    r = pc.Run(p, pc.MLP(LAYERS, seed=0), weighting=pc.NTK(every=5), log_every=5, warn=False,
               observers=[Audit([pc.NTK(every=5), pc.NTK(every=10, alpha=0.5)])])
    r.step(20)
    assert len(calls) == 4                       # steps 0, 5, 10, 15: driver and two shadows share
    np.testing.assert_array_equal(r.history["ntk:ic_weight"], r.history["ic_weight"])


def test_train_audit_flag_and_lbfgs_phase_freezes_shadows():
    r = pc.train(pc.problems.harmonic(), pc.MLP(LAYERS, seed=0), weighting=pc.Fixed({"ic": 10.0}), steps=20,
                 lbfgs_steps=5, log_every=10, warn=False, audit=True)
    h = r.history
    for label in ("gradnorm", "ntk", "selfadaptive", "relobralo", "balanced"):
        assert np.isfinite(h[f"{label}:ic_weight"]).all()
    assert h["phase"][-1] == "lbfgs"
    assert h["gradnorm:ic_weight"][-1] == h["gradnorm:ic_weight"][-2]   # no updates while λ is frozen


def test_bad_schemes_are_named():
    with pytest.raises(TypeError, match="weighting schemes"):
        Audit([3])
    with pytest.raises(ValueError, match="unknown weighting"):
        Audit(["nope"])
    a = Audit(["ntk", pc.NTK(every=10)])
    run(pc.Fixed(), 1, audit=a)
    assert a.labels == ["ntk", "ntk#2"] and set(a.weights("ntk#2")) == {"pde", "ic"}


def test_audit_figure(tmp_path):
    pytest.importorskip("matplotlib")
    from pinncore.plotting import audit_figure
    r = pc.train(pc.problems.harmonic(), pc.MLP(LAYERS, seed=0), weighting=pc.Fixed({"ic": 10.0}), steps=20,
                 log_every=5, warn=False, audit=True)
    path = audit_figure(r.history, str(tmp_path / "audit.png"), driver="Fixed")
    assert (tmp_path / "audit.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.endswith("audit.png")
    plain = pc.train(pc.problems.harmonic(), pc.MLP(LAYERS, seed=0), steps=5, warn=False)
    with pytest.raises(ValueError, match="audit=True"):
        audit_figure(plain.history, str(tmp_path / "none.png"))
