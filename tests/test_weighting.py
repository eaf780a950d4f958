"""Tests of pinncore.weighting: each scheme's formula against a hand computation on synthetic
Contexts, its guards, and the contract every scheme shares (JSON-like state, no mutation,
finite non-negative weights, io round trip)."""
import math
from types import SimpleNamespace

import numpy as np
import pytest

import pinncore as pc
from pinncore import registry
from pinncore import weighting as W
from pinncore.weighting import Context

OMEGA = 2 * np.pi


def harmonic():
    return pc.Problem(
        inputs=["t"], outputs=["u"], domain={"t": (0.0, 1.0)},
        terms={"pde": pc.Term(points=np.linspace(0, 1, 50)[:, None], residual=lambda x, u: u.tt + OMEGA ** 2 * u),
               "ic": pc.Term(points=[[0.0]], residual=lambda x, u: [u - 1.0, u.t])},
        exact=lambda x: np.cos(OMEGA * x[:, :1]))


def fake_problem(n_points=None, n_components=None):
    n_points = n_points or {"pde": 4, "ic": 1}
    names = list(n_points)
    return SimpleNamespace(term_names=names, n_points=dict(n_points),
                           n_components=n_components or {k: 1 for k in names})


MASK = W.weight_mask([1, 2, 1])          # [W1 W1 b1 b1 W2 W2 b2]


def ctx(losses=None, grads=None, residuals=None, traces=None, mask=MASK):
    losses = losses or {"pde": 1.0, "ic": 1.0}
    grads = grads or {k: np.ones(mask.size) for k in losses}
    return Context(losses=losses, grads={k: np.asarray(v, dtype=np.float64) for k, v in grads.items()},
                   weight_mask=mask, residuals=residuals,
                   ntk_traces=(lambda: dict(traces)) if traces is not None else None, lr=1e-3)


# ------------------------------------------------------------------------------ helpers

def test_weight_mask_layout_matches_network():
    net = pc.MLP([1, 3, 2, 1])
    m = W.weight_mask(net)
    assert m.dtype == bool and m.shape == net.params.shape
    assert m.sum() == 1 * 3 + 3 * 2 + 2 * 1
    assert W._blocks(m) == [(0, 3), (6, 12), (14, 16)]


def test_context_evaluate_losses_unweighted_with_point_weights():
    p = harmonic()
    net = pc.MLP([1, 10, 1], seed=0)
    plain = Context.evaluate(p, net)
    pw = {"pde": np.full(50, 3.0), "ic": np.ones(1)}
    weighted = Context.evaluate(p, net, point_weights=pw)
    for k in p.term_names:
        assert weighted.losses[k] == pytest.approx(plain.losses[k], rel=1e-12)
    g = plain.grads["pde"]
    np.testing.assert_allclose(weighted.grads["pde"], 3.0 * g, rtol=1e-9, atol=1e-9 * np.abs(g).max())


# ------------------------------------------------------------------------------ Fixed

@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), "10", None, True, [1.0]])
def test_fixed_rejects_bad_weight_naming_the_term(bad):
    with pytest.raises(ValueError, match="'ic'"):
        W.Fixed({"ic": bad})


def test_fixed_unknown_term_at_init_lists_terms():
    s = W.Fixed({"bc": 2.0})                                   # fine at construction
    with pytest.raises(ValueError, match=r"\['bc'\].*\['pde', 'ic'\]"):
        s.init(fake_problem())


def test_fixed_values_and_keywords():
    s = W.Fixed({"ic": 100}, pde=0.5)
    st = s.init(fake_problem())
    assert s.weights(st) == {"pde": 0.5, "ic": 100.0}
    assert W.Fixed().weights(W.Fixed().init(fake_problem())) == {"pde": 1.0, "ic": 1.0}
    assert s.weights(s.update(st, 3, ctx())) == {"pde": 0.5, "ic": 100.0}
    with pytest.raises(ValueError, match="twice"):
        W.Fixed({"ic": 1.0}, ic=2.0)


# ------------------------------------------------------------------------------ GradNorm

G_REF = [1.0, -4.0, 10.0, 0.0, 2.0, -3.0, 100.0]   # max|.| all = 100; weights only = 4
G_IC = [1.0, 1.0, 0.0, 0.0, 2.0, 4.0, 8.0]         # mean|.| all = 16/7; per-layer weight means 1, 3 -> 2


def _gn_step(mode, lam_ic=1.0, **kw):
    s = W.GradNorm(mode=mode, alpha=0.1, every=10, **kw)
    st = s.init(fake_problem())
    st["weights"]["ic"] = lam_ic
    st = s.update(st, 0, ctx(grads={"pde": G_REF, "ic": G_IC}))
    return s.weights(st)


def test_gradnorm_paper_formula():
    lam = _gn_step("paper")
    assert lam["pde"] == 1.0
    assert lam["ic"] == pytest.approx(0.9 * 1.0 + 0.1 * 100 / (16 / 7), rel=1e-14)


def test_gradnorm_released_formula_uses_weighted_term_and_weight_matrices():
    assert _gn_step("released")["ic"] == pytest.approx(0.9 + 0.1 * 4 / (1.0 * 2), rel=1e-14)
    assert _gn_step("released", lam_ic=3.0)["ic"] == pytest.approx(0.9 * 3 + 0.1 * 4 / (3.0 * 2), rel=1e-14)


def test_gradnorm_robust_formula_log_average_and_clip():
    lam = _gn_step("robust", lam_ic=3.0)
    assert lam["ic"] == pytest.approx(math.exp(0.9 * math.log(3.0) + 0.1 * math.log(4 / 6)), rel=1e-14)
    # A vanishing denominator is floored: λ̂ <= max_weight.
    s = W.GradNorm(mode="robust", alpha=1.0, max_weight=100.0)
    st = s.update(s.init(fake_problem()), 0, ctx(grads={"pde": G_REF, "ic": np.zeros(7)}))
    assert s.weights(st)["ic"] == 100.0


def test_gradnorm_only_updates_every_k_steps():
    s = W.GradNorm(every=10)
    st0 = s.init(fake_problem())
    c = ctx(grads={"pde": G_REF, "ic": G_IC})
    assert s.weights(s.update(st0, 5, c)) == {"pde": 1.0, "ic": 1.0}
    assert s.weights(s.update(st0, 20, c))["ic"] != 1.0


def test_gradnorm_paper_diverges_robust_stays_bounded_on_vanishing_gradient():
    """The IC gradient vanishes as the IC is met: eq. 40 as printed blows up (issue)."""
    schemes = {m: W.GradNorm(mode=m, every=1) for m in ("paper", "released", "robust")}
    states = {m: s.init(fake_problem()) for m, s in schemes.items()}
    for step in range(200):
        g_ic = np.full(7, 10.0 ** (-step / 10))                  # 1 ... 1e-20
        c = ctx(grads={"pde": G_REF, "ic": g_ic})
        states = {m: schemes[m].update(states[m], step, c) for m in schemes}
    lam = {m: schemes[m].weights(states[m])["ic"] for m in schemes}
    assert lam["paper"] > 1e15
    assert 1.0 < lam["robust"] <= 1e6
    assert lam["released"] < 1e12 and lam["released"] < lam["paper"] * 1e-6
    assert all(math.isfinite(v) for v in lam.values())


def test_gradnorm_released_settles_at_square_root_of_the_imbalance():
    s = W.GradNorm(mode="released", every=1)
    st = s.init(fake_problem())
    for step in range(300):
        st = s.update(st, step, ctx(grads={"pde": G_REF, "ic": G_IC}))
    assert s.weights(st)["ic"] == pytest.approx(math.sqrt(4 / 2), rel=1e-9)
    r = W.GradNorm(mode="robust", every=1)
    st = r.init(fake_problem())
    for step in range(300):
        st = r.update(st, step, ctx(grads={"pde": G_REF, "ic": G_IC}))
    assert r.weights(st)["ic"] == pytest.approx(math.sqrt(4 / 2), rel=1e-9)


def test_gradnorm_reference_fallback_and_errors():
    p = fake_problem({"bc": 3, "ic": 1})
    s = W.GradNorm()
    assert s.init(p)["reference"] == "bc"
    with pytest.raises(ValueError, match=r"\['res'\].*\['bc', 'ic'\]"):
        W.GradNorm(reference="res").init(p)
    with pytest.raises(ValueError, match="mode"):
        W.GradNorm(mode="fancy")
    with pytest.raises(ValueError, match="alpha"):
        W.GradNorm(alpha=1.5)


# ------------------------------------------------------------------------------ NTK

def test_ntk_mean_and_sum_on_crafted_traces():
    p = fake_problem({"pde": 50, "ic": 1})
    tr = {"pde": 5.0e5, "ic": 40.0}
    lam_sum = W.NTK(normalize="sum").update(W.NTK(normalize="sum").init(p), 0, ctx(traces=tr))["weights"]
    assert lam_sum["pde"] == pytest.approx((5e5 + 40) / 5e5)
    assert lam_sum["ic"] == pytest.approx((5e5 + 40) / 40)
    s = W.NTK(normalize="mean")
    lam = s.weights(s.update(s.init(p), 0, ctx(traces=tr)))
    assert lam["pde"] == pytest.approx((1e4 + 40) / 1e4)
    assert lam["ic"] == pytest.approx((1e4 + 40) / 40)


def test_ntk_every_and_moving_average():
    p = fake_problem({"pde": 1, "ic": 1})
    s = W.NTK(every=10, alpha=0.5)
    st = s.update(s.init(p), 0, ctx(traces={"pde": 3.0, "ic": 1.0}))
    assert s.weights(st) == pytest.approx({"pde": 4 / 3, "ic": 4.0})        # first update: set
    st5 = s.update(st, 5, ctx(traces={"pde": 1.0, "ic": 1.0}))
    assert s.weights(st5) == s.weights(st)                                    # not an update step
    st10 = s.update(st, 10, ctx(traces={"pde": 1.0, "ic": 1.0}))
    assert s.weights(st10) == pytest.approx({"pde": 0.5 * 4 / 3 + 0.5 * 2, "ic": 0.5 * 4 + 0.5 * 2})


def test_ntk_zero_trace_keeps_previous_weight():
    s = W.NTK()
    st = s.update(s.init(fake_problem({"pde": 2, "ic": 1})), 0, ctx(traces={"pde": 2.0, "ic": 0.0}))
    assert s.weights(st) == {"pde": 1.0, "ic": 1.0}


def test_ntk_on_harmonic_problem_mean_vs_sum():
    p = harmonic()
    net = pc.MLP([1, 50, 50, 50, 1], seed=0)
    c = Context.evaluate(p, net)
    tr = p.ntk_traces(net)
    lam_mean = W.NTK().weights(W.NTK().update(W.NTK().init(p), 0, c))
    lam_sum = W.NTK(normalize="sum").update(W.NTK(normalize="sum").init(p), 0, c)["weights"]
    assert lam_mean["ic"] == pytest.approx((tr["pde"] / 50 + tr["ic"]) / tr["ic"], rel=1e-12)
    # The PDE trace dominates, so λ_ic ≈ (tr K_pde / 50) / (tr K_ic / 1) and λ_pde ≈ 1.
    assert lam_mean["ic"] / ((tr["pde"] / 50) / tr["ic"]) == pytest.approx(1.0, rel=0.05)
    assert lam_mean["pde"] == pytest.approx(1.0, abs=0.05)
    assert lam_sum["ic"] / lam_mean["ic"] == pytest.approx(50.0, rel=0.05)


# ------------------------------------------------------------------------------ SelfAdaptive

def test_selfadaptive_first_step_is_adam_ascent():
    p = fake_problem({"pde": 3, "ic": 1}, {"pde": 1, "ic": 2})
    s = W.SelfAdaptive(lr=0.01, mask="identity")
    st = s.init(p)
    assert s.weights(st) == {"pde": 1.0, "ic": 1.0}
    res = {"pde": np.array([[0.0, 1e-6, 2.0]]), "ic": np.array([[1.0], [2.0]])}
    st = s.update(st, 0, ctx(residuals=res))
    g = np.array([0.0, 1e-12, 4.0]) / 3                       # m'(λ) r² / N, m' = 1
    np.testing.assert_allclose(st["lambda"]["pde"], 1.0 + 0.01 * g / (np.abs(g) + 1e-8), rtol=1e-12)
    np.testing.assert_allclose(st["lambda"]["ic"], [1.01], rtol=1e-9)
    assert s.reported_weights(st)["pde"] == pytest.approx(np.mean(st["lambda"]["pde"]))


@pytest.mark.parametrize("mask", ["identity", "square"])
def test_selfadaptive_weights_grow_monotonically_and_more_where_residuals_stay_large(mask):
    p = fake_problem({"pde": 4, "ic": 1})
    s = W.SelfAdaptive(lr=0.005, mask=mask)
    st = s.init(p)
    prev = s.point_weights(st)["pde"]
    for step in range(100):
        decay = np.array([1.0, 0.97, 0.9, 0.8]) ** step            # point 0 stays large, 3 decays fastest
        res = {"pde": (np.array([1.0, 1.0, 1.0, 1.0]) * decay)[None, :], "ic": np.ones((2, 1))}
        st = s.update(st, step, ctx(residuals=res))
        w = s.point_weights(st)["pde"]
        assert (w >= prev).all()                                     # ascent on a non-negative gradient
        prev = w
    assert np.all(np.diff(w) < 0), w                                 # ordered by persistent residual size
    assert (w > 1.0).all() and np.isfinite(w).all()


def test_selfadaptive_terms_subset_and_errors():
    p = fake_problem({"pde": 3, "ic": 1})
    s = W.SelfAdaptive(terms=["ic"], init={"ic": 2.0}, mask="identity")
    st = s.init(p)
    pw = s.point_weights(st)
    np.testing.assert_array_equal(pw["pde"], np.ones(3))
    np.testing.assert_array_equal(pw["ic"], [2.0])
    with pytest.raises(ValueError, match=r"\['bc'\]"):
        W.SelfAdaptive(terms=["bc"]).init(p)
    with pytest.raises(ValueError, match="mask"):
        W.SelfAdaptive(mask="cube")
    with pytest.raises(ValueError, match="residuals"):
        s.update(st, 0, ctx())


def test_selfadaptive_on_harmonic_problem():
    p = harmonic()
    net = pc.MLP([1, 20, 20, 1], seed=0)
    s = W.SelfAdaptive()
    st = s.init(p)
    c = Context.evaluate(p, net, point_weights=s.point_weights(st))
    st = s.update(st, 0, c)
    pw = s.point_weights(st)
    assert pw["pde"].shape == (50,) and pw["ic"].shape == (1,)
    assert pw["pde"].dtype == np.float64 and (pw["pde"] >= 1.0).all()


# ------------------------------------------------------------------------------ ReLoBRaLo

def _relo_run(scheme, losses_seq, p=None):
    p = p or fake_problem({"pde": 4, "ic": 1, "bc": 2})
    st = scheme.init(p)
    for step, L in enumerate(losses_seq):
        st = scheme.update(st, step, ctx(losses=L))
    return st


def test_relobralo_equal_progress_gives_unit_weights():
    seq = [{"pde": 2.0 * 0.9 ** t, "ic": 0.5 * 0.9 ** t, "bc": 7.0 * 0.9 ** t} for t in range(50)]
    lam = W.ReLoBRaLo().weights(_relo_run(W.ReLoBRaLo(), seq))
    assert lam == pytest.approx({"pde": 1.0, "ic": 1.0, "bc": 1.0}, rel=1e-12)


def test_relobralo_one_step_formula():
    def softmax_m(z):
        e = np.exp(z - z.max())
        return len(z) * e / e.sum()

    L0 = {"pde": 1.0, "ic": 2.0, "bc": 4.0}
    L1 = {"pde": 0.5, "ic": 2.0, "bc": 1.0}
    for rho, expect_rho in ((1.0, 1.0), (0.0, 0.0)):
        s = W.ReLoBRaLo(alpha=0.9, temperature=0.5, rho=rho, seed=3)
        lam = s.weights(_relo_run(s, [L0, L1]))
        now = np.array(list(L1.values()))
        then = np.array(list(L0.values()))
        hat = softmax_m(now / (0.5 * then))                  # t' = 0 = t−1 here
        expect = 0.9 * (expect_rho * 1.0 + (1 - expect_rho) * hat) + 0.1 * hat
        assert list(lam.values()) == pytest.approx(expect.tolist(), rel=1e-13)


def test_relobralo_stalled_term_gets_more_weight_and_is_deterministic():
    seq = [{"pde": 0.9 ** t, "ic": 1.0, "bc": 0.9 ** t} for t in range(30)]     # ic stalls
    a = _relo_run(W.ReLoBRaLo(seed=7), seq)
    b = _relo_run(W.ReLoBRaLo(seed=7), seq)
    assert a == b
    lam = W.ReLoBRaLo().weights(a)
    assert lam["ic"] > lam["pde"] and lam["ic"] > lam["bc"] and lam["ic"] > 1.0
    # rho < 1: the Bernoulli draws depend on the seed only through (seed, step)
    c = _relo_run(W.ReLoBRaLo(rho=0.5, seed=1), seq)
    d = _relo_run(W.ReLoBRaLo(rho=0.5, seed=1), seq)
    assert c == d
    assert sum(W.ReLoBRaLo(rho=0.5, seed=1).weights(c).values()) == pytest.approx(3.0)


def test_relobralo_guards_zero_and_huge_losses():
    seq = [{"pde": 0.0, "ic": 1e-300, "bc": 1e300}, {"pde": 0.0, "ic": 1.0, "bc": 1e-300},
           {"pde": 0.0, "ic": 1e300, "bc": 1e300},
           {"pde": 1.0, "ic": 0.0, "bc": 0.0}, {"pde": float("nan"), "ic": 1.0, "bc": 1.0}]
    s = W.ReLoBRaLo(alpha=0.5, rho=0.5)
    st = s.init(fake_problem({"pde": 4, "ic": 1, "bc": 2}))
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        for step, L in enumerate(seq):
            st = s.update(st, step, ctx(losses=L))
            lam = s.weights(st)
            assert all(math.isfinite(v) and v >= 0 for v in lam.values())
            assert sum(lam.values()) == pytest.approx(3.0)


# ------------------------------------------------------------------------------ shared contract

def _all_schemes():
    """The hand-picked variants, then every registered scheme not among them (with its defaults,
    updating every step where it has an ``every``): a newly registered scheme is checked too."""
    picked = [W.Fixed({"ic": 10.0}), W.GradNorm(every=1), W.GradNorm(mode="paper", every=1),
              W.GradNorm(mode="released", every=1), W.NTK(every=1, alpha=0.3), W.SelfAdaptive(mask="square"),
              W.ReLoBRaLo(rho=0.5)]
    seen = {type(s) for s in picked}
    for spec in registry.schemes.specs():
        if spec.factory not in seen:
            picked.append(spec.factory(**({"every": 1} if "every" in spec.params else {})))
    return picked


def test_contract_list_covers_the_registry():
    assert {type(s) for s in _all_schemes()} == {spec.factory for spec in registry.schemes.specs()}
    assert W.Balanced in {type(s) for s in _all_schemes()}


def _check_leaves(tree, path="state"):
    if isinstance(tree, dict):
        for k, v in tree.items():
            assert isinstance(k, str), path
            _check_leaves(v, f"{path}[{k!r}]")
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            _check_leaves(v, f"{path}[{i}]")
    elif isinstance(tree, np.ndarray):
        assert tree.dtype in (np.float64, np.int64), path
    else:
        assert type(tree) in (bool, int, float, str), f"{path}: {type(tree).__name__}"


def _snapshot(tree):
    return W._copy(tree)


def _tree_equal(a, b):
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_tree_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_tree_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    return type(a) is type(b) and a == b


@pytest.fixture(scope="module")
def harmonic_contexts():
    p = harmonic()
    net = pc.MLP([1, 20, 20, 1], seed=1)
    rng = np.random.default_rng(0)
    out = []
    for _ in range(4):
        out.append(Context.evaluate(p, net))
        net.params = net.params - 1e-2 * rng.standard_normal(net.n_params)
    return p, out


@pytest.mark.parametrize("scheme", _all_schemes(), ids=lambda s: f"{type(s).__name__}-{getattr(s, 'mode', '')}")
def test_contract_state_json_like_no_mutation_finite_weights(scheme, harmonic_contexts):
    p, contexts = harmonic_contexts
    st = scheme.init(p)
    _check_leaves(st)
    for step, c in enumerate(contexts):
        before = _snapshot(st)
        new = scheme.update(st, step, c)
        # A scheme whose state never changes (Fixed) may return it as is; none may mutate it.
        assert new is not st or type(scheme).__name__ in ("Fixed", "NTK", "GradNorm")
        assert _tree_equal(st, before), "update mutated its input state"
        st = new
        _check_leaves(st)
        lam = scheme.weights(st)
        assert list(lam) == p.term_names
        assert all(isinstance(v, float) and math.isfinite(v) and v >= 0 for v in lam.values())
        pw = scheme.point_weights(st)
        if pw is not None:
            for k in p.term_names:
                assert pw[k].dtype == np.float64 and pw[k].shape == (p.n_points[k],)
                assert np.isfinite(pw[k]).all() and (pw[k] >= 0).all()


@pytest.mark.parametrize("scheme", _all_schemes(), ids=lambda s: type(s).__name__)
def test_state_round_trips_through_io(scheme, harmonic_contexts, tmp_path):
    io = pytest.importorskip("pinncore.io")
    p, contexts = harmonic_contexts
    st = scheme.init(p)
    for step, c in enumerate(contexts):
        st = scheme.update(st, step, c)
    path = tmp_path / "w.pinn"
    io.save(str(path), {"weighting": st}, kind="pinncore.train_state")
    back = io.load(str(path), kind="pinncore.train_state")["weighting"]
    assert _tree_equal(back, st)
    # Resuming from the loaded state gives the same next state.
    assert _tree_equal(scheme.update(back, 4, contexts[0]), scheme.update(st, 4, contexts[0]))


def test_flags():
    assert W.NTK.needs_ntk and not W.NTK.needs_residuals
    assert W.SelfAdaptive.needs_residuals and not W.SelfAdaptive.needs_ntk
    for cls in (W.Fixed, W.GradNorm, W.ReLoBRaLo):
        assert not cls.needs_ntk and not cls.needs_residuals
        assert cls().point_weights(cls().init(fake_problem())) is None


# ------------------------------------------------------------------------------ get

@pytest.mark.parametrize("name, cls", [("fixed", W.Fixed), ("gradnorm", W.GradNorm), ("ntk", W.NTK),
                                       ("selfadaptive", W.SelfAdaptive), ("sa", W.SelfAdaptive),
                                       ("ReLoBRaLo", W.ReLoBRaLo)])
def test_get(name, cls):
    assert type(W.get(name)) is cls


@pytest.mark.parametrize("name", registry.schemes.all_names())
def test_get_every_registered_name(name):
    assert type(W.get(name)) is registry.schemes[name].factory
    assert W.get(name).name == registry.schemes[name].name


def test_get_kwargs_and_unknown():
    assert W.get("gradnorm", mode="paper").mode == "paper"
    with pytest.raises(ValueError, match="fixed.*gradnorm.*ntk.*relobralo"):
        W.get("softadapt")
    s = W.NTK()
    assert W.get(s) is s
