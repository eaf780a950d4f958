"""pc.train: the acceptance table of the harmonic IVP, determinism, resume, faults, errors."""
import os
import signal
import threading
import warnings

import numpy as np
import pytest

import pinncore as pc

LAYERS = [1, 50, 50, 50, 1]


def fit(weighting, seed=0, problem=None, **kw):
    problem = problem or pc.problems.harmonic()
    kw.setdefault("steps", 2000)
    kw.setdefault("lr", 1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pc.LossBalanceWarning)
        return pc.train(problem, pc.MLP(LAYERS, seed=seed), weighting=weighting, **kw)


# -- acceptance (issue 4): the loss-balance crisis and its cures on the seed problem -----------
@pytest.mark.parametrize("lam", [1e-3, 1.0, 1e5])
def test_fixed_weights_fail_outside_goldilocks(lam):
    r = fit(pc.Fixed({"ic": lam}))
    assert r.rel_l2 > 0.5, (lam, r.rel_l2)


def test_fixed_weight_1e2_succeeds():
    r = fit(pc.Fixed({"ic": 1e2}))
    assert r.rel_l2 < 1e-2


def test_ntk_weighting_succeeds_without_tuning():
    r = fit(pc.NTK())
    assert r.rel_l2 < 1e-2
    assert r.weights["ic"] > 10 * r.weights["pde"]


def test_hard_constraint_succeeds():
    # Training is chaotic at the last digits: the median of three seeds is the honest figure
    # (measured 1.7e-3 … 3e-2 per seed; PyTorch's anchor 1e-3 … 3.5e-3).
    p = pc.problems.harmonic(hard_constraint=True)
    errs = sorted(fit(pc.Fixed(), seed=s, problem=p).rel_l2 for s in range(3))
    assert errs[1] < 1e-2, errs


def test_ntk_then_lbfgs_reaches_1e_4():
    r = fit(pc.NTK(), lbfgs_steps=2000)
    assert r.rel_l2 < 1e-4
    assert "lbfgs" in set(r.history["phase"].tolist())


def test_initial_imbalance_is_measured_and_warned():
    p = pc.problems.harmonic()
    with pytest.warns(pc.LossBalanceWarning, match="pde"):
        r = pc.train(p, pc.MLP(LAYERS, seed=0), weighting=pc.Fixed(), steps=1)
    h = r.history
    ratio = h["pde_grad_norm"][0] / h["ic_grad_norm"][0]
    assert 50 <= ratio <= 200
    tr = p.ntk_traces(pc.MLP(LAYERS, seed=0))
    assert 1e4 <= tr["pde"] / tr["ic"] <= 1e5


# -- history and diagnostics ----------------------------------------------------------------------
def test_history_columns_and_exports(tmp_path):
    r = fit(pc.Fixed({"ic": 100.0}), steps=250, log_every=100)
    h = r.history
    assert h["step"].tolist() == [0, 100, 200, 250]
    for k in ("pde_loss", "ic_loss", "pde_grad_norm", "ic_grad_norm", "pde_weight", "ic_weight", "rel_l2", "wall_time"):
        assert np.isfinite(h[k]).all(), k
    assert (h["ic_weight"] == 100.0).all()
    assert np.isclose(h["rel_l2"][-1], r.rel_l2)
    h.to_csv(tmp_path / "h.csv")
    h.to_json(tmp_path / "h.json")
    lines = (tmp_path / "h.csv").read_text().splitlines()
    assert len(lines) == 5 and "pde_loss" in lines[0]
    import json
    data = json.loads((tmp_path / "h.json").read_text())
    assert data["columns"]["pde_loss"] == h.to_dict()["pde_loss"]


def test_history_logs_losses_that_match_problem():
    p = pc.problems.harmonic()
    net = pc.MLP(LAYERS, seed=3)
    r = pc.train(p, net, weighting=pc.Fixed(), steps=0, warn=False)
    L = p.losses(net)
    assert r.history["pde_loss"][0] == L["pde"] and r.history["ic_loss"][0] == L["ic"]
    np.testing.assert_array_equal(r.net.params, net.params)


def test_verbose_prints_one_line_per_log(capsys):
    fit(pc.Fixed({"ic": 100.0}), steps=20, log_every=10, verbose=True)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 3 and all("pde=" in line for line in out)


def test_diagnose_reports_imbalance():
    d = pc.diagnose(pc.problems.harmonic(), pc.MLP(LAYERS, seed=0))
    assert d.dominant == "pde" and d.starved == "ic" and d.grad_ratio > 1e2
    assert "imbalanced" in d.verdict and "ic=" in d.advice
    assert d.suggested_weights["ic"] > 10
    assert "verdict" in str(d)


# -- determinism and resume --------------------------------------------------------------------------
@pytest.mark.parametrize("scheme", [pc.Fixed({"ic": 10.0}), pc.NTK(every=7), pc.GradNorm(), pc.ReLoBRaLo(),
                                    pc.SelfAdaptive()], ids=lambda s: type(s).__name__)
def test_same_seed_bitwise_identical_history(scheme):
    a = fit(scheme, steps=60, log_every=10)
    b = fit(scheme, steps=60, log_every=10)
    np.testing.assert_array_equal(a.net.params, b.net.params)
    for k in a.history.keys():
        if k != "wall_time":
            assert a.history.to_dict()[k] == b.history.to_dict()[k], k


@pytest.mark.parametrize("scheme", [pc.Fixed({"ic": 10.0}), pc.NTK(every=7), pc.GradNorm(), pc.ReLoBRaLo(),
                                    pc.SelfAdaptive()], ids=lambda s: type(s).__name__)
def test_resume_k_plus_k_equals_2k(tmp_path, scheme):
    p = pc.problems.harmonic()
    straight = fit(scheme, steps=80, problem=p)
    first = fit(scheme, steps=40, problem=p)
    path = tmp_path / "state.pcs"
    first.save(path)
    second = pc.train(p, weighting=scheme, steps=40, resume=str(path), warn=False)
    np.testing.assert_array_equal(second.net.params, straight.net.params)
    assert second.step == 80
    assert second.history["step"].tolist() == straight.history["step"].tolist()


def test_caller_network_is_not_modified():
    net = pc.MLP(LAYERS, seed=0)
    before = net.params.copy()
    r = fit(pc.Fixed(), steps=5)
    r2 = pc.train(pc.problems.harmonic(), net, weighting=pc.Fixed(), steps=5, warn=False)
    np.testing.assert_array_equal(net.params, before)
    assert not np.array_equal(r2.net.params, before)


# -- faults --------------------------------------------------------------------------------------------
def test_divergence_stops_names_step_and_term_and_keeps_finite_params():
    r = fit(pc.Fixed({"ic": 1e3}), steps=200, lr=1e3, problem=pc.problems.harmonic())
    if r.status == "diverged":
        assert "step" in r.message and ("'pde'" in r.message or "'ic'" in r.message)
    assert np.isfinite(r.net.params).all()


def test_nan_injected_into_loss_is_caught(monkeypatch):
    p = pc.problems.harmonic()
    real = p.step_function
    calls = {"n": 0}

    def poisoned(net):
        f = real(net)

        def step(pw, res):
            L, G, R = f(pw, res)
            calls["n"] += 1
            if calls["n"] == 31:
                L = L.copy()
                L[1] = np.nan
            return L, G, R
        return step

    monkeypatch.setattr(p, "step_function", poisoned)
    r = pc.train(p, pc.MLP(LAYERS, seed=0), weighting=pc.Fixed(), steps=100, warn=False)
    assert r.status == "diverged"
    assert "step 30" in r.message and "'ic'" in r.message
    assert r.step == 30 and np.isfinite(r.net.params).all()


def test_ctrl_c_stops_at_end_of_step_with_history():
    def cb(step, row):
        if step == 20:
            os.kill(os.getpid(), signal.SIGINT)
        return False
    r = fit(pc.Fixed(), steps=1000, log_every=10, callback=cb)
    assert r.status == "interrupted"
    assert 21 <= r.step <= 31
    assert len(r.history) >= 3 and np.isfinite(r.net.params).all()


def test_callback_can_stop():
    r = fit(pc.Fixed(), steps=1000, log_every=5, callback=lambda step, row: step >= 10)
    assert r.status == "stopped" and r.step == 10


def test_threads_train_independently_and_bitwise_like_sequential():
    seeds = list(range(8))
    seq = [fit(pc.Fixed({"ic": 50.0}), seed=s, steps=100).net.params for s in seeds]
    out = [None] * 8

    def work(i):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out[i] = pc.train(pc.problems.harmonic(), pc.MLP(LAYERS, seed=seeds[i]), weighting=pc.Fixed({"ic": 50.0}),
                              steps=100, warn=False).net.params
    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(seq, out):
        np.testing.assert_array_equal(a, b)


# -- errors ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kw,match", [
    (dict(steps=-1), "steps"), (dict(steps=1.5), "steps"), (dict(lr=0.0), "lr"), (dict(lr=-1e-3), "lr"),
    (dict(lr=float("nan")), "lr"), (dict(log_every=0), "log_every"), (dict(lbfgs_steps=-2), "lbfgs_steps"),
    (dict(optimizer="sgd"), "optimizer"), (dict(weighting="magic"), "magic"),
])
def test_bad_arguments(kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        pc.train(pc.problems.harmonic(), pc.MLP([1, 8, 1]), **kw)


@pytest.mark.parametrize("weights,match", [({"bc": 1.0}, "bc"), ({"ic": -1.0}, "ic"), ({"ic": float("inf")}, "ic"),
                                           ({"ic": float("nan")}, "ic")])
def test_bad_fixed_weights(weights, match):
    with pytest.raises(ValueError, match=match):
        pc.train(pc.problems.harmonic(), pc.MLP([1, 8, 1]), weighting=pc.Fixed(weights), steps=1)


def test_net_that_does_not_fit():
    with pytest.raises(ValueError, match="inputs"):
        pc.train(pc.problems.harmonic(), pc.MLP([2, 8, 1]), steps=1)
    with pytest.raises(ValueError, match="outputs"):
        pc.train(pc.problems.harmonic(), pc.MLP([1, 8, 2]), steps=1)
    with pytest.raises(TypeError, match="problem"):
        pc.train(42, pc.MLP([1, 8, 1]))
    with pytest.raises(ValueError, match="unknown problem 'harmonc'.*harmonic"):
        pc.train("harmonc", pc.MLP([1, 8, 1]))


def test_train_accepts_a_library_name():
    """pc.train("harmonic") builds the library problem, as pc.sweep does (same numbers)."""
    a = pc.train("harmonic", pc.MLP([1, 8, 1]), weighting=pc.Fixed({"ic": 10.0}), steps=5, warn=False)
    b = pc.train(pc.problems.harmonic(), pc.MLP([1, 8, 1]), weighting=pc.Fixed({"ic": 10.0}), steps=5, warn=False)
    assert a.rel_l2 == b.rel_l2 and a.step == 5


def test_phases_general_form_equals_the_shorthands():
    net = pc.MLP([1, 8, 1], seed=0)
    kw = dict(weighting=pc.Fixed({"ic": 10.0}), warn=False, log_every=5)
    a = pc.train(pc.problems.harmonic(), net, phases=[("adam", 10), ("lbfgs", 5)], **kw)
    b = pc.train(pc.problems.harmonic(), net, steps=10, lbfgs_steps=5, **kw)
    assert a.rel_l2 == b.rel_l2 and a.step == b.step == 15
    assert list(a.history["phase"]) == list(b.history["phase"])
    with pytest.raises(ValueError, match="phases"):
        pc.train(pc.problems.harmonic(), net, phases=[("adam", 10)], steps=5)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        pc.train(pc.problems.harmonic(), net, phases=[("sgd", 10)])


def test_each_optimizer_runs_its_own_default_iterations():
    """optimizer="lm" alone runs LM's 200 iterations (its default_iterations), not Adam's 2000."""
    from pinncore import phases, registry
    for name in registry.optimizers.names():
        assert phases.build(name) == [(name, registry.optimizers[name].factory.default_iterations)]
    assert phases.build("lm") == [("lm", 200)] and phases.build("adam") == [("adam", 2000)]
    r = pc.train(pc.problems.harmonic(n_collocation=8), pc.MLP([1, 4, 1]), optimizer="lm",
                 weighting=pc.Fixed({"ic": 10.0}), warn=False, callback=lambda step, row: step >= 3)
    assert r.step <= 200


def test_history_access_by_term_and_quantity():
    r = fit(pc.Fixed({"ic": 100.0}), steps=20, log_every=10)
    h = r.history
    np.testing.assert_array_equal(h.loss["pde"], h["pde_loss"])
    np.testing.assert_array_equal(h["grad_norm"]["ic"], h["ic_grad_norm"])
    np.testing.assert_array_equal(h["ic"]["weight"], h["ic_weight"])
    assert h.steps.tolist() == [0, 10, 20] and len(h) == 3
    assert h[-1]["step"] == 20 and h[0]["ic_weight"] == 100.0
    assert [row["step"] for row in h] == [0, 10, 20]
    with pytest.raises(IndexError):
        h[3]
    with pytest.raises(KeyError, match="columns"):
        h["nope"]


@pytest.mark.parametrize("scheme", [pc.NTK(every=7, alpha=0.5), pc.GradNorm(alpha=0.3, every=5, mode="released"),
                                    pc.SelfAdaptive(lr=0.01, mask="square", init={"ic": 10.0}),
                                    pc.ReLoBRaLo(temperature=0.5, seed=3), pc.Fixed({"ic": 7.0})],
                         ids=lambda s: type(s).__name__)
def test_resume_without_weighting_rebuilds_the_saved_settings(tmp_path, scheme):
    p = pc.problems.harmonic()
    straight = fit(scheme, steps=60, problem=p)
    first = fit(scheme, steps=30, problem=p)
    first.save(tmp_path / "s.pcs")
    assert pc.load_state(tmp_path / "s.pcs")["weighting"]["config"] == scheme.config()
    second = pc.train(p, steps=30, resume=str(tmp_path / "s.pcs"), warn=False)   # weighting=None
    np.testing.assert_array_equal(second.net.params, straight.net.params)
