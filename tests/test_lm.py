"""pc.LevenbergMarquardt (pinncore/lm.py): exact on linear least squares, the three solvers
agree, λ-independence on the harmonic oscillator, memory budget, NaN safety, determinism,
exact resume, and the run/train wiring (one history row per iteration, phase "lm")."""
from __future__ import annotations

import numpy as np
import pytest

import pinncore as pc
from pinncore.lm import LevenbergMarquardt
from pinncore.objective import Objective

from conftest import harmonic_case, net_pair


class LinearLSQ:
    """r(θ) = A θ − b: an objective that only offers residual_jacobian and loss (the minimal
    interface), optionally non-finite beyond θ_0 > nan_above."""

    def __init__(self, A, b, nan_above=None):
        self.A, self.b, self.nan_above = A, b, nan_above

    def residual_jacobian(self, params):
        return self.A @ params - self.b, self.A

    def loss(self, params):
        if self.nan_above is not None and params[0] > self.nan_above:
            return float("nan")
        r = self.A @ params - self.b
        return float(r @ r)


@pytest.mark.parametrize("shape, solver", [((30, 10), "auto"), ((30, 10), "parameter"), ((30, 10), "cg"),
                                           ((10, 30), "auto"), ((10, 30), "residual"), ((10, 30), "cg")])
def test_linear_least_squares_in_one_step(shape, solver):
    rng = np.random.default_rng(0)
    A, b = rng.standard_normal(shape), rng.standard_normal(shape[0])
    theta = rng.standard_normal(shape[1])
    lm = LevenbergMarquardt(solver=solver, mu_init=1e-13, cg_tol=1e-14)
    state = lm.init(theta)
    assert lm.step(theta, state, LinearLSQ(A, b), None) is None
    assert state["accepted"] == 1 and state["rejected"] == 0
    # Over-determined: the least-squares solution; under-determined: a zero residual.
    lsq = np.linalg.lstsq(A, b, rcond=None)[0]
    if shape[0] > shape[1]:
        np.testing.assert_allclose(theta, lsq, rtol=0, atol=1e-9)
    else:
        assert np.linalg.norm(A @ theta - b) <= 1e-9 * np.linalg.norm(b)
    assert lm.step(theta, state, LinearLSQ(A, b), None) == "converged: gradient below gtol"


def test_solvers_take_the_same_step():
    """The same damped step from every form (plain steps: the geodesic correction differs by
    form in its difference formula, checked on its own below)."""
    case = harmonic_case(n=20, hidden=(12, 12))
    steps = {}
    for solver in ("residual", "parameter", "cg"):
        net, _ = net_pair(case.layers)
        obj = Objective(case.problem, net, np.array([1.0, 10.0]))
        lm = LevenbergMarquardt(solver=solver, mu_init=1e-2, cg_tol=1e-13, cg_maxiter=2000, geodesic=False)
        p0 = net.params.copy()
        lm.step(net.params, lm.init(net.params), obj, None)
        steps[solver] = net.params - p0
    scale = np.abs(steps["residual"]).max()
    assert scale > 0
    assert np.abs(steps["parameter"] - steps["residual"]).max() <= 1e-9 * scale
    assert np.abs(steps["cg"] - steps["residual"]).max() <= 1e-6 * scale


@pytest.mark.parametrize("seed", [0, 1])
def test_seed_oscillator_reaches_1e_6_from_random_init_in_few_iterations(seed):
    """[1,50,50,50,1] from random initialisation, λ_ic = 1: the geodesic residual-space steps
    (the default) reach rel-L2 1e-6 in 42–43 iterations (plain steps: 190 / 73)."""
    problem = pc.problems.harmonic()
    net = pc.MLP([1, 50, 50, 50, 1], seed=seed)
    obj = Objective(problem, net, np.array([1.0, 1.0]))
    lm = LevenbergMarquardt()
    state = lm.init(net.params)
    for _ in range(60):
        lm.step(net.params, state, obj, None)
        if problem.rel_l2(net) <= 1e-6:
            break
    assert problem.rel_l2(net) <= 1e-6 and state["iteration"] <= 60, (problem.rel_l2(net), state["iteration"])


@pytest.mark.parametrize("solver", ["residual", "parameter"])
def test_geodesic_step_is_velocity_plus_half_acceleration(solver):
    """h + a/2 with a = −(JᵀJ + μI)⁻¹ Jᵀ r_hh (Transtrum & Sethna 2012), r_hh the forward
    difference with J (residual form) or the central difference (parameter form), against an
    explicit NumPy construction."""
    case = harmonic_case(n=20, hidden=(12, 12))
    net, _ = net_pair(case.layers)
    obj = Objective(case.problem, net, np.array([1.0, 10.0]))
    from pinncore.jacobian import ResidualJacobian
    jac = ResidualJacobian(case.problem, net, np.array([1.0, 10.0]))
    p0 = net.params.copy()
    r, J = jac.linearize(p0).dense()
    mu = 3.0
    M = J.T @ J + mu * np.eye(J.shape[1])
    h = -np.linalg.solve(M, J.T @ r)
    if solver == "residual":
        rhh = 20.0 * ((jac.linearize(p0 + 0.1 * h).r - r) / 0.1 - J @ h)
    else:
        rhh = (jac.linearize(p0 + 0.1 * h).r + jac.linearize(p0 - 0.1 * h).r - 2 * r) / 0.01
    a = -np.linalg.solve(M, J.T @ rhh)
    assert 2 * np.linalg.norm(a) <= 0.75 * np.linalg.norm(h)      # accepted by the bend test
    lm = LevenbergMarquardt(solver=solver, mu_init=mu, geodesic=True)
    lm.step(net.params, lm.init(net.params), obj, None)
    want = h + 0.5 * a
    assert np.abs((net.params - p0) - want).max() <= 1e-8 * np.abs(want).max()


@pytest.mark.parametrize("lam", [1.0, 1e2, 1e5])
def test_lambda_independence_on_the_harmonic_oscillator(lam):
    """From random initialisation, the seed oscillator reaches rel-L2 <= 1e-5 whatever λ_ic:
    the crisis under Adam (u ≈ 0 at λ = 1, the IC met but not the ODE at 1e5) is gone."""
    r = pc.train(pc.problems.harmonic(), pc.MLP([1, 50, 50, 50, 1], seed=0), weighting=pc.Fixed({"ic": lam}),
                 optimizer="lm", steps=300, tol=1e-5, warn=False)  # stops at the first row <= tol
    assert r.rel_l2 <= 1e-5, f"λ_ic = {lam:g}: rel-L2 {r.rel_l2:.2e} after {r.step} iterations"


def test_memory_budget_error_says_what_it_needs():
    lm = LevenbergMarquardt(solver="residual", memory_budget=10_000)
    with pytest.raises(MemoryError, match=r"needs 2\.3 MB for J \(52 x 5301\) and JJᵀ \(52 x 52\).*"
                                          r"memory_budget=10\.0 kB.*solver='cg'"):
        lm.choose_solver(52, 5301)
    with pytest.raises(MemoryError, match=r"JᵀJ \(5301 x 5301\)"):
        LevenbergMarquardt(solver="parameter", memory_budget=1e6).choose_solver(52, 5301)
    with pytest.raises(MemoryError, match="at least"):
        LevenbergMarquardt(memory_budget=100).choose_solver(52, 5301)
    assert LevenbergMarquardt().choose_solver(5000, 300) == "parameter"
    assert LevenbergMarquardt(memory_budget=1e6).choose_solver(52, 5301) == "cg"


def test_matrix_free_when_J_does_not_fit():
    case = harmonic_case(n=20, hidden=(12, 12))
    net, _ = net_pair(case.layers)
    obj = Objective(case.problem, net, np.array([1.0, 10.0]))
    lm = LevenbergMarquardt(memory_budget=30_000)  # J alone would need 52 kB
    assert lm.choose_solver(22, net.n_params) == "cg"
    f0 = obj.loss(net.params)
    state = lm.init(net.params)
    for _ in range(10):
        lm.step(net.params, state, obj, None)
    assert obj.loss(net.params) < 1e-2 * f0


def test_non_finite_trial_points_are_rejected():
    A, b = np.eye(3), np.full(3, 2.0)
    theta = np.zeros(3)
    lm = LevenbergMarquardt(mu_init=1e-8)
    state = lm.init(theta)
    obj = LinearLSQ(A, b, nan_above=1.5)
    for _ in range(30):
        lm.step(theta, state, obj, None)
    assert state["rejected"] >= 1 and np.isfinite(theta).all()
    assert theta[0] <= 1.5 and np.isfinite(obj.loss(theta)) and obj.loss(theta) < obj.loss(np.zeros(3))


def test_stops_on_damping_ceiling_and_step_tolerance():
    A, b = np.eye(2), np.ones(2)
    obj = LinearLSQ(A, b, nan_above=-1.0)  # every trial point is non-finite
    theta = np.zeros(2)
    lm = LevenbergMarquardt(mu_init=1.0, mu_max=1e3)
    reason = lm.minimize(obj, theta, 50)[1]
    assert reason.startswith("stopped: damping above mu_max") and np.array_equal(theta, np.zeros(2))
    lm = LevenbergMarquardt(mu_init=1e-12, xtol=1e-3, gtol=0.0)
    theta = np.zeros(2)
    its, reason = lm.minimize(LinearLSQ(A, b), theta, 50)
    assert reason == "converged: step below xtol" and its == 2


def test_deterministic_and_exact_resume(tmp_path):
    def fresh():
        return pc.Run(pc.problems.harmonic(), pc.MLP([1, 20, 20, 1], seed=3), weighting=pc.Fixed({"ic": 10.0}),
                      optimizer="lm", warn=False)

    a, b = fresh(), fresh()
    a.step(16)
    b.step(8)
    b.save(tmp_path / "lm.state")
    c = pc.Run(pc.problems.harmonic(), resume=tmp_path / "lm.state")
    assert c.optimizer.name == "lm" and c.step_count == 8
    c.step(8)
    assert np.array_equal(a.net.params, c.net.params)
    assert a.opt_state == c.opt_state
    assert np.array_equal(a.history["total_loss"], c.history["total_loss"])
    d = fresh()
    d.step(16)
    assert np.array_equal(a.net.params, d.net.params)


def test_train_wiring_one_row_per_iteration():
    p = pc.problems.harmonic()
    r = pc.train(p, pc.MLP([1, 16, 16, 1], seed=0), optimizer="lm", steps=12, weighting=pc.Fixed(), warn=False)
    assert r.history["step"].tolist() == list(range(13))
    assert set(r.history["phase"].tolist()) == {"lm"}
    r = pc.train(p, pc.MLP([1, 16, 16, 1], seed=0), steps=20, lm_steps=5, log_every=10, warn=False)
    assert r.history["step"].tolist() == [0, 10, 20, 21, 22, 23, 24, 25]
    assert r.history["phase"].tolist()[-5:] == ["lm"] * 5
    assert r.history["ic_weight"][-1] == r.history["ic_weight"][-5]  # λ frozen under LM
    assert r.history["total_loss"][-1] < r.history["total_loss"][2]
    assert isinstance(pc.optim.get("lm"), pc.LevenbergMarquardt)


def test_config_round_trip_and_validation():
    lm = LevenbergMarquardt(solver="cg", tau=1e-2, mu_init=3.0, stall_iterations=4)
    again = LevenbergMarquardt(**lm.config())
    assert again.config() == lm.config()
    for kw, msg in [({"solver": "qr"}, "solver must be one of"), ({"tau": 0}, "tau must be"),
                    ({"memory_budget": -1}, "memory_budget must be"), ({"mu_init": float("nan")}, "mu_init must be"),
                    ({"gtol": -1.0}, "gtol must be"), ({"max_trials": 0}, "max_trials must be"),
                    ({"cg_maxiter": 1.5}, "cg_maxiter must be"), ({"geodesic": "yes"}, "geodesic must be")]:
        with pytest.raises(ValueError, match=msg):
            LevenbergMarquardt(**kw)
    state = lm.init(np.zeros(3))
    lm.check_state(state, 3)
    with pytest.raises(ValueError, match="'mu'"):
        lm.check_state({**state, "mu": -1.0}, 3)
    with pytest.raises(ValueError, match="'accepted'"):
        lm.check_state({**state, "accepted": 1.5}, 3)


def test_new_points_are_not_served_a_stale_linearisation():
    """New points (run.replace_points) keep the parameters but change the residuals: the cached
    linearisation of the old objective must not be reused."""
    p = pc.problems.harmonic()
    q = p.with_points("pde", np.linspace(0.0, 1.0, 37)[:, None])
    net = pc.MLP([1, 12, 12, 1], seed=0)
    lm = LevenbergMarquardt(mu_init=1e30)  # steps of ~1e-30: "converged: step below xtol", no trial
    state = lm.init(net.params)
    assert lm.step(net.params, state, Objective(p, net, np.ones(2)), None) == "converged: step below xtol"
    assert lm._cache[2]["r"].size == 52
    lm.step(net.params, state, Objective(q, net, np.ones(2)), None)
    assert lm._cache[2]["r"].size == 39


# ------------------------------------------------------------------ the parameter-space form at many rows

def _lm_fit(problem, layers, iterations, seed=0):
    net = pc.MLP(layers, seed=seed)
    obj = Objective(problem, net, np.ones(len(problem.term_names)))
    lm = LevenbergMarquardt()
    state = lm.init(net.params)
    reason = None
    for _ in range(iterations):
        reason = lm.step(net.params, state, obj, None)
        if reason is not None:
            break
    return net, lm, state, reason


def test_converges_at_ten_thousand_rows_in_parameter_space():
    """10 000 residual rows, 141 parameters: the normal equations come from the kernel's chunked
    syrk (J never held) and LM solves Poisson to well below Adam's reach."""
    problem = pc.problems.poisson1d(a=2, n_collocation=9998)
    net, lm, state, reason = _lm_fit(problem, [1, 10, 10, 1], 60)
    assert lm._ws.kind == "parameter" and lm._ws.J is None   # no rows x params array was allocated
    assert problem.rel_l2(net) < 1e-3, problem.rel_l2(net)
    assert state["accepted"] >= 30


def test_converges_on_helmholtz_in_parameter_space():
    problem = pc.problems.helmholtz2d(a1=1, a2=1, n_collocation=1800, n_bc=200)
    net, lm, state, reason = _lm_fit(problem, [2, 8, 8, 1], 80)
    assert lm._ws.kind == "parameter"
    assert problem.rel_l2(net) < 2e-2, problem.rel_l2(net)


@pytest.mark.parametrize("kw", [dict(arch="modified"),
                                dict(embedding=pc.FourierFeatures(n_features=4, sigma=1.0, seed=1))])
def test_embedded_and_modified_nets_go_through_the_kernel(kw):
    problem = pc.problems.harmonic()
    net = pc.MLP([1, 10, 10, 1], seed=0, **kw)
    obj = Objective(problem, net, np.array([1.0, 1.0]))
    lm = LevenbergMarquardt()
    state = lm.init(net.params)
    loss0 = obj.loss(net.params)
    for _ in range(30):
        if lm.step(net.params, state, obj, None) is not None:
            break
    assert getattr(net.backend, "_ref", None) is None   # no NumPy twin was built
    assert obj.loss(net.params) < 1e-3 * loss0


def test_parameter_space_state_resumes_bitwise(tmp_path):
    """rows (402) > parameters (97): the parameter-space form; resume gives the same bits."""
    def fresh():
        return pc.Run(pc.problems.harmonic(n_collocation=400), pc.MLP([1, 8, 8, 1], seed=3),
                      weighting=pc.Fixed({"ic": 10.0}), optimizer="lm", warn=False)

    a, b = fresh(), fresh()
    a.step(12)
    assert a.optimizer._ws.kind == "parameter"
    b.step(5)
    b.save(tmp_path / "lm.state")
    c = pc.Run(pc.problems.harmonic(n_collocation=400), resume=tmp_path / "lm.state")
    c.step(7)
    assert np.array_equal(a.net.params, c.net.params)
    assert a.opt_state == c.opt_state
    assert np.array_equal(a.history["total_loss"], c.history["total_loss"])


def test_workspace_is_reused_and_rejections_keep_the_linearisation():
    """No per-iteration allocation of the dense buffers; a rejected trial reuses J."""
    problem = pc.problems.harmonic()
    net = pc.MLP([1, 20, 20, 1], seed=1)
    obj = Objective(problem, net, np.array([1.0, 100.0]))
    # tiny damping: the first trials are rejected; plain steps (the geodesic form adds two
    # residual passes per trial)
    lm = LevenbergMarquardt(mu_init=1e-12, geodesic=False)
    state = lm.init(net.params)
    lm.step(net.params, state, obj, None)
    ws, J = lm._ws, lm._ws.J
    calls = []
    jac = lm._jacobian(obj)
    orig = type(jac).linearize

    class Counting(type(jac)):
        def linearize(self, params=None):
            calls.append(1)
            return orig(self, params)

    jac.__class__ = Counting
    for _ in range(5):
        before = state["accepted"] + state["rejected"]
        lm.step(net.params, state, obj, None)
        trials = state["accepted"] + state["rejected"] - before
        assert lm._ws is ws and lm._ws.J is J
        # one linearisation per trial point (residuals only), none for the rejected point itself
        assert len(calls) == trials, (len(calls), trials)
        calls.clear()
    assert state["rejected"] >= 1


def test_a_step_beyond_float32_range_is_rejected_not_raised():
    """A float32 net whose damped step overflows the dtype: the trial is rejected (μ grows),
    never a ValueError from the non-finite trial parameters."""
    problem = pc.problems.harmonic()
    net = pc.MLP([1, 8, 1], seed=0, dtype=np.float32)
    obj = Objective(problem, net, np.array([1.0, 1.0]))
    lm = LevenbergMarquardt(mu_init=1e-300)
    state = lm.init(net.params)
    huge = np.full(net.n_params, 1e39)
    lm._solve = lambda *a: (huge.copy(), 1.0)   # a step past float32's range
    reason = lm.step(net.params, state, obj, None)
    assert state["rejected"] >= 1 and np.isfinite(net.params).all()
    assert reason is None or reason.startswith("stopped")
