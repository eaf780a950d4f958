"""pinncore.diagnostics: gradient cosines and shares against hand computations, crisis episodes
over a run (late crises too, one warning per episode), and what ``diagnose`` reports."""
import warnings

import numpy as np
import pytest

import pinncore as pc
from pinncore.diagnostics import CrisisMonitor, conflict_stats, cos_column, direction_words


def test_conflict_stats_against_hand_computation():
    rng = np.random.default_rng(0)
    G = rng.normal(size=(3, 40))
    lam = np.array([1.0, 10.0, 0.5])
    st = conflict_stats(["pde", "ic", "bc"], G, lam)
    for a, b in ((0, 1), (0, 2), (1, 2)):
        want = G[a] @ G[b] / np.linalg.norm(G[a]) / np.linalg.norm(G[b])
        assert st[cos_column(["pde", "ic", "bc"][a], ["pde", "ic", "bc"][b])] == pytest.approx(want, rel=1e-12)
    g = lam @ G
    shares = [st[f"{k}_grad_share"] for k in ("pde", "ic", "bc")]
    np.testing.assert_allclose(shares, [(lam[a] * G[a]) @ g / (g @ g) for a in range(3)], rtol=1e-12)
    assert sum(shares) == pytest.approx(1.0, rel=1e-12)
    norms = lam * np.linalg.norm(G, axis=1)
    assert st["grad_ratio"] == pytest.approx(norms.max() / norms.min(), rel=1e-12)
    same = conflict_stats(["pde", "ic", "bc"], G, lam, norms=np.linalg.norm(G, axis=1))
    assert same == pytest.approx(st, rel=1e-12)


def test_conflict_stats_zero_gradient_and_words():
    st = conflict_stats(["a", "b"], np.array([[1.0, 0.0], [0.0, 0.0]]), [1.0, 1.0])
    assert np.isnan(st["cos(a,b)"]) and st["grad_ratio"] == np.inf
    assert "opposing" in direction_words(-0.5) and "orthogonal" in direction_words(0.0)
    assert "agree" in direction_words(0.5) and "no direction" in direction_words(float("nan"))


def test_crisis_monitor_counts_episodes_and_warns_once_each():
    m = CrisisMonitor()
    names = ["pde", "ic"]
    bad = np.array([[1000.0, 0.0], [-1.0, 0.0]])
    ok = np.array([[1.0, 0.0], [0.0, 2.0]])
    seen = [m.observe(s, names, g, [1.0, 1.0]) for s, g in enumerate([ok, bad, bad, ok, bad])]
    assert [c for _, c in seen] == [0, 1, 1, 0, 2]
    assert [msg is not None for msg, _ in seen] == [False, True, False, False, True]
    assert "at step 1" in seen[1][0] and "1e+03x" in seen[1][0] and "opposing directions" in seen[1][0]


def test_history_marks_a_crisis_that_starts_late_and_warns_at_its_start():
    """GradNorm as printed (mode="paper") on the harmonic IVP: balanced at step 0, then λ_ic
    runs away (past 1e9) and the IC term swamps the PDE in bursts — crises the step-0 check
    cannot see, each reported once."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = pc.train(pc.problems.harmonic(), pc.MLP([1, 16, 16, 1], seed=0), weighting=pc.GradNorm(mode="paper"),
                     steps=1500, log_every=50)
    h = r.history
    crisis = h["crisis"]
    assert crisis[0] == 0 and crisis.max() >= 1
    starts = [i for i in range(1, len(crisis)) if crisis[i] > 0 and crisis[i - 1] == 0]
    texts = [str(w.message) for w in caught if w.category is pc.LossBalanceWarning]
    assert int(crisis.max()) == len(starts) >= 2
    # one warning per episode start; the run's closing row (after the last step) records an
    # episode but does not warn: the run is over
    assert len(texts) == len([i for i in starts if i < len(crisis) - 1])
    assert f"at step {int(h['step'][starts[0]])}:" in texts[0]
    assert (h["grad_ratio"][crisis > 0] > 100).all() and (h["grad_ratio"][crisis == 0] <= 100).all()
    assert "cos(pde,ic)" in h and np.isfinite(h["pde_grad_share"]).all()
    assert "'ic'" in texts[0] and "neglect 'pde'" in texts[0]


def test_resumed_run_continues_the_episode_count(tmp_path):
    p = pc.problems.harmonic()
    a = pc.Run(p, pc.MLP([1, 16, 16, 1], seed=0), weighting=pc.Fixed(), log_every=5, warn=False)
    a.step(10)
    a.save(tmp_path / "r.pcs")
    assert a.history["crisis"][0] == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")     # an ongoing episode is not re-announced
        b = pc.Run(p, resume=tmp_path / "r.pcs", log_every=5)
        b.step(5)
    assert b.history["crisis"][-1] in (0, 1)


def test_diagnose_reports_direction_shares_and_the_schemes_ratios():
    p = pc.problems.harmonic()
    net = pc.MLP([1, 50, 50, 50, 1], seed=0)
    d = pc.diagnose(p, net)
    G = p.gradients(net)
    cos = G["pde"] @ G["ic"] / np.linalg.norm(G["pde"]) / np.linalg.norm(G["ic"])
    assert d.cosines["pde/ic"] == pytest.approx(cos, rel=1e-12)
    assert sum(d.grad_shares.values()) == pytest.approx(1.0)
    tr = p.ntk_traces(net)
    per = {k: tr[k] / p.n_points[k] for k in tr}
    assert d.ntk_ratio == pytest.approx(max(per.values()) / min(per.values()), rel=1e-12)
    text = str(d)
    assert "tr K / N (what pc.NTK balances)" in text and "direction pde/ic" in text
    assert ("opposing" in d.verdict) == (cos < -0.1)


def test_crisis_message_reads_once_per_direction_and_fits_a_second_order_phase():
    from pinncore.diagnostics import CrisisMonitor
    g = np.array([[300.0, 0.0], [1.0, 1.0]])
    msg, _ = CrisisMonitor().observe(0, ["pde", "ic"], g, [1.0, 1.0])
    assert "in direction" not in msg.lower().replace("agree in direction", "")
    assert "training will neglect 'ic'" in msg
    fixed, _ = CrisisMonitor().observe(0, ["pde", "ic"], g, [1.0, 1.0], advice="weights fixed", first_order=False)
    assert "neglect" not in fixed and fixed.endswith("weights fixed.")


def test_second_order_phase_does_not_promise_adaptation():
    import warnings
    import pinncore as pc
    run = pc.Run(pc.problems.harmonic(), pc.MLP([1, 8, 1], seed=0), weighting=pc.Fixed({"ic": 1e-6}),
                 optimizer="bfgs", log_every=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run.step(1)
    texts = [str(w.message) for w in caught if issubclass(w.category, pc.LossBalanceWarning)]
    assert texts and all("do not change during this bfgs phase" in t and "neglect" not in t
                         and "will adapt" not in t for t in texts)
