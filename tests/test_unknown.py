"""Tests for pinncore.unknown: unknown coefficients (pc.Unknown) identified with the network."""
import numpy as np
import pytest

import pinncore as pc
from pinncore.objective import Objective
from pinncore.residual import pointwise

OMEGA = 3.0


def _oscillator(omega0=1.0, positive=True, n_data=40):
    """u'' + ω² u = 0 with ω unknown, data u = cos(3t): the fast identification problem."""
    w = pc.Unknown("omega", omega0, positive=positive)
    t = np.linspace(0.0, 2.0, 100)[:, None]
    td = np.linspace(0.0, 2.0, n_data)[:, None]
    data = pointwise(lambda p: np.cos(OMEGA * p[:, 0]), "u_data")
    terms = {"pde": pc.Term(t, lambda x, u: u.tt + w * w * u), "data": pc.Term(td, lambda x, u: u - data)}
    return pc.Problem(["t"], ["u"], terms, {"t": (0.0, 2.0)}, exact=lambda x: np.cos(OMEGA * x))


def _mixed():
    """Two unknowns (one positive) in a polynomial term, a non-polynomial term and a data term."""
    a, b = pc.Unknown("a", 0.7, positive=True), pc.Unknown("b", -0.4)
    x = np.linspace(-1.0, 1.0, 9)[:, None]
    t = np.linspace(0.0, 1.0, 5)
    pts = np.stack(np.meshgrid(x[:, 0], t), -1).reshape(-1, 2)
    terms = {
        "pde": pc.Term(pts, lambda x, u: u.t + a * u * u.x - a * b * u.xx + b * pc.sin(np.pi * x.x)),
        "nonpoly": pc.Term(pts[::3], lambda x, u: pc.sin(u) * b + a ** 2 * u.x / (2.0 + x.t)),
        "data": pc.Term(pts[::4], lambda x, u: [u - 0.3 * x.x, b * u.t]),
    }
    return pc.Problem(["x", "t"], ["u"], terms, {"x": (-1.0, 1.0), "t": (0.0, 1.0)})


def _flat(problem, net, raw=None):
    tail = problem.unknowns.raw_init() if raw is None else np.asarray(raw)
    return np.concatenate([net.params, tail.astype(net.dtype)])


def test_unknown_is_traced_as_a_table_variable():
    problem = _mixed()
    assert problem.unknowns.names == ["a", "b"]
    tb = problem.lowering.terms[0].table
    assert tb.polynomial and [u.name for u in tb.unknowns] == ["a", "b"]
    assert not problem.lowering.terms[1].table.polynomial


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
def test_gradients_match_central_differences(backend):
    problem = _mixed()
    net = pc.MLP([2, 12, 12, 1], seed=3, backend=backend)
    P = net.n_params
    obj = Objective(problem, net, np.ones(3))
    flat = _flat(problem, net, [np.log(0.7) + 0.1, -0.4])
    L, G, _ = obj.evaluate(flat.copy())
    assert G.shape == (3, P + 2)
    h = 1e-5
    for j in range(2):
        e = np.zeros_like(flat)
        e[P + j] = h
        Lp, _, _ = obj.evaluate(flat + e)
        Lm, _, _ = obj.evaluate(flat - e)
        fd = (Lp - Lm) / (2 * h)
        np.testing.assert_allclose(G[:, P + j], fd, rtol=1e-8, atol=1e-12 * np.abs(fd).max())
    # the network's columns are those of the problem at the unknowns' values
    Lq, Gq, _ = problem.with_unknowns([0.7 * np.exp(0.1), -0.4]).value_and_grad(net, params=flat[:P])
    np.testing.assert_allclose(G[:, :P], Gq, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(L, Lq, rtol=1e-12)


def test_jacobian_columns_match_central_differences():
    problem = _mixed()
    net = pc.MLP([2, 10, 1], seed=5)
    P = net.n_params
    obj = Objective(problem, net, np.array([1.0, 3.0, 10.0]))
    flat = _flat(problem, net)
    r, J = obj.residual_jacobian(flat.copy())
    assert J.shape == (r.size, P + 2)
    assert np.isclose(r @ r, obj.loss(flat.copy()), rtol=1e-12)
    h = 1e-5
    for j in range(2):
        e = np.zeros_like(flat)
        e[P + j] = h
        fd = (obj.residual_jacobian(flat + e)[0] - obj.residual_jacobian(flat - e)[0]) / (2 * h)
        np.testing.assert_allclose(J[:, P + j], fd, rtol=1e-8, atol=1e-9 * np.abs(fd).max())
    # Jᵀr is half the gradient of Σ λ_a L_a, unknown columns included
    _, g = obj.value_and_gradient(flat.copy())
    np.testing.assert_allclose(2 * J.T @ r, g, rtol=1e-9, atol=1e-12 * np.abs(g).max())


def test_kernel_and_numpy_twin_agree():
    problem = _mixed()
    out = {}
    for backend in ("cpp", "numpy"):
        net = pc.MLP([2, 8, 8, 1], seed=2, backend=backend)
        obj = Objective(problem, net, np.array([1.0, 2.0, 5.0]))
        flat = _flat(problem, net, [0.2, 0.3])
        out[backend] = (obj.evaluate(flat.copy())[1], obj.residual_jacobian(flat.copy())[1])
    for k in range(2):
        a, b = out["cpp"][k], out["numpy"][k]
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * np.abs(b).max())


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs", "lm", "bfgs"])
def test_every_optimizer_moves_the_unknowns(optimizer):
    problem = _oscillator()
    run = pc.Run(problem, pc.MLP([1, 10, 1], seed=0), weighting=pc.Fixed(), optimizer=optimizer, warn=False,
                 log_every=1)
    before = run.objective.loss(run.params.copy())
    run.step(5)
    assert run.unknowns["omega"] != 1.0
    assert run.objective.loss(run.params.copy()) < before
    assert run.result().history["unknown:omega"][-1] == run.unknowns["omega"]


def test_identifies_the_frequency_of_an_oscillator():
    problem = _oscillator(omega0=1.0)
    result = pc.train(problem, pc.MLP([1, 20, 20, 1], seed=0), steps=2000, lbfgs_steps=1000,
                      weighting=pc.Fixed(), warn=False)
    assert abs(result.unknowns["omega"] - OMEGA) / OMEGA < 1e-4
    hist = result.history["unknown:omega"]
    assert hist[0] == pytest.approx(1.0) and hist[-1] == pytest.approx(result.unknowns["omega"])


def test_save_and_resume_are_bitwise(tmp_path):
    problem = _oscillator()
    kw = dict(weighting=pc.Fixed({"data": 10.0}), warn=False, log_every=5)
    full = pc.Run(problem, pc.MLP([1, 8, 1], seed=1), **kw)
    full.step(20)
    half = pc.Run(problem, pc.MLP([1, 8, 1], seed=1), **kw)
    half.step(10)
    path = str(tmp_path / "state.pcs")
    half.save(path)
    again = pc.Run(problem, resume=path, **kw)
    assert again.unknowns == half.unknowns
    again.step(10)
    assert np.array_equal(again.params, full.params)
    assert again.unknowns == full.unknowns
    assert again.result().history["unknown:omega"].tolist() == full.result().history["unknown:omega"].tolist()


def test_fixed_weights_may_name_the_data_term():
    problem = _oscillator()
    result = pc.train(problem, pc.MLP([1, 8, 1]), steps=3, weighting=pc.Fixed({"data": 10.0}), warn=False)
    assert result.weights["data"] == 10.0 and "data_grad_norm" in result.history.columns


# -- bad input ------------------------------------------------------------------------------

def _problem_with(residual, unknowns=(), outputs=("u",)):
    t = np.linspace(0.0, 1.0, 5)[:, None]
    return pc.Problem(["t"], list(outputs), {"pde": pc.Term(t, residual)}, {"t": (0.0, 1.0)}, unknowns=unknowns)


@pytest.mark.parametrize("init", [float("nan"), float("inf"), "1.0", True])
def test_non_finite_init_is_refused(init):
    with pytest.raises(ValueError, match="unknown 'k': init must be a finite real number"):
        pc.Unknown("k", init)


def test_positive_needs_a_positive_init():
    with pytest.raises(ValueError, match=r"unknown 'nu': positive=True needs init > 0, got 0.0"):
        pc.Unknown("nu", 0.0, positive=True)


def test_an_unused_unknown_is_refused():
    c, d = pc.Unknown("c", 1.0), pc.Unknown("d", 1.0)
    with pytest.raises(ValueError, match="unknown 'd' is not used by any residual"):
        _problem_with(lambda x, u: u.t - c * u, unknowns=[c, d])


def test_two_unknowns_with_one_name_are_refused():
    c1, c2 = pc.Unknown("c", 1.0), pc.Unknown("c", 2.0)
    with pytest.raises(ValueError, match="two unknowns are named 'c'"):
        _problem_with(lambda x, u: u.t - c1 * u + c2)


@pytest.mark.parametrize("name,what", [("pde", "term"), ("u", "output"), ("t", "input")])
def test_a_name_clash_is_refused(name, what):
    c = pc.Unknown(name, 1.0)
    with pytest.raises(ValueError, match=f"unknown '{name}' has the name of a {what}"):
        _problem_with(lambda x, u: u.t - c * u)


def test_an_unknown_in_the_transform_is_refused():
    c = pc.Unknown("c", 1.0)
    t = np.linspace(0.0, 1.0, 5)[:, None]
    with pytest.raises(ValueError, match="unknown 'c' appears in the transform"):
        pc.Problem(["t"], ["u"], {"pde": pc.Term(t, lambda x, u: u.t - u)}, {"t": (0.0, 1.0)},
                   transform=lambda x, n: c + x.t * n)


def test_an_unknown_from_another_problem_in_a_saved_state_is_refused(tmp_path):
    run = pc.Run(_oscillator(), pc.MLP([1, 8, 1]), weighting=pc.Fixed(), warn=False)
    run.step(2)
    path = str(tmp_path / "state.pcs")
    run.save(path)
    k = pc.Unknown("k", 1.0)
    t = np.linspace(0.0, 2.0, 10)[:, None]
    other = pc.Problem(["t"], ["u"], {"pde": pc.Term(t, lambda x, u: u.tt + k * u), "data": pc.Term(t, lambda x, u: u)},
                       {"t": (0.0, 2.0)})
    with pytest.raises(ValueError, match="resume state has unknown 'omega', which this problem does not have"):
        pc.Run(other, resume=path, weighting=pc.Fixed(), warn=False)
    plain = pc.Problem(["t"], ["u"], {"pde": pc.Term(t, lambda x, u: u.tt + u), "data": pc.Term(t, lambda x, u: u)},
                       {"t": (0.0, 2.0)})
    with pytest.raises(ValueError, match="resume state has unknown 'omega'"):
        pc.Run(plain, resume=path, weighting=pc.Fixed(), warn=False)


def test_with_unknowns_checks_its_values():
    problem = _oscillator()
    with pytest.raises(ValueError, match="unknown 'omega' is positive"):
        problem.with_unknowns([-1.0])
    with pytest.raises(ValueError, match=r"values name unknowns \['nu'\]"):
        problem.with_unknowns({"nu": 1.0})


@pytest.mark.parametrize("scheme", ["fixed", "gradnorm", "ntk", "selfadaptive", "relobralo", "balanced"])
def test_every_weighting_scheme_trains_the_unknowns(scheme):
    result = pc.train(_oscillator(), pc.MLP([1, 8, 1], seed=0), steps=12, weighting=scheme, warn=False,
                      log_every=4, audit=True)
    assert result.status == "completed" and result.unknowns["omega"] != 1.0
    assert set(result.weights) == {"pde", "data"}


def test_diagnose_treats_the_data_term_like_any_other():
    problem = _oscillator()
    d = pc.diagnose(problem, pc.MLP([1, 8, 1], seed=0))
    assert set(d.grad_norms) == {"pde", "data"} and all(v > 0 for v in d.grad_norms.values())
    hist = pc.train(problem, pc.MLP([1, 8, 1], seed=0), steps=1, weighting=pc.Fixed(), warn=False).history
    assert hist["data_grad_norm"][0] > 0 and hist["pde_grad_norm"][0] > 0


def test_monomial_table_and_dual_dag_agree_on_unknowns():
    tb = _mixed().lowering.terms[0].table
    rng = np.random.default_rng(0)
    J, theta = rng.standard_normal((len(tb.vars), tb.n_points)), np.array([0.9, -1.3])
    (r1, d1), (r2, d2) = tb.evaluate(J, theta), tb.evaluate_dag(J, theta)
    assert d1.shape == (tb.n_components, len(tb.vars) + 2, tb.n_points)
    np.testing.assert_allclose(r1, r2, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(d1, d2, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match=r"theta must have shape \(2,\)"):
        tb.evaluate(J, np.ones(3))


def test_burgers_inverse_is_a_library_problem():
    from pinncore import registry
    spec = registry.problems["burgers_inverse"]
    assert spec.flags["inverse"] and spec.flags["exact"]
    clean = pc.problems.get("burgers_inverse", n_data=200, n_collocation=50)
    noisy = pc.problems.get("burgers_inverse", noise=0.01, n_data=200, n_collocation=50)
    assert clean.unknowns.names == ["lambda1", "lambda2"] and clean.n_points == {"pde": 250, "data": 200}
    # the data are the Cole–Hopf solution, plus noise of σ = 0.01·std(u) when asked
    x = clean.terms["data"].points
    u = clean.exact(x)[:, 0]
    net = pc.MLP([2, 4, 1], seed=0)
    d_clean = clean.residuals(net)["data"][0] - clean.predict(net, x)[:, 0]
    d_noisy = noisy.residuals(net)["data"][0] - noisy.predict(net, x)[:, 0]
    np.testing.assert_allclose(-d_clean, u, atol=1e-12)
    assert 0.5 < np.std(d_clean - d_noisy) / (0.01 * np.std(u)) < 1.5
    with pytest.raises(ValueError, match="noise must be a finite number >= 0"):
        pc.problems.get("burgers_inverse", noise=-0.1)
