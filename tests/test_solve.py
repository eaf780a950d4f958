"""pc.solve: the recipe's choices, its stops (tol, time limit) and its argument checks."""
import time

import numpy as np
import pytest

import pinncore as pc
from pinncore.solve import choose_method, choose_network, interior_terms


def _oscillator(omega, zeta, u0, v0, n=80):
    """u'' + 2ζω u' + ω² u = 0, u(0) = u0, u'(0) = v0 on [0, 1] (underdamped, closed form)."""
    wd = omega * np.sqrt(1 - zeta ** 2)

    def exact(t):
        t = t[:, :1]
        return np.exp(-zeta * omega * t) * (u0 * np.cos(wd * t) + (v0 + zeta * omega * u0) / wd * np.sin(wd * t))

    return pc.Problem(inputs=["t"], outputs=["u"], domain={"t": (0.0, 1.0)},
                      terms={"pde": pc.Term(points=np.linspace(0, 1, n)[:, None],
                                            residual=lambda x, u: u.tt + 2 * zeta * omega * u.t + omega ** 2 * u),
                             "ic": pc.Term(points=[[0.0]], residual=lambda x, u: [u - u0, u.t - v0])},
                      exact=exact, test_points=np.linspace(0, 1, 1000)[:, None])


@pytest.mark.parametrize("omega, zeta, u0, v0", [(np.pi, 0.0, 1.0, 0.0), (4 * np.pi, 0.0, 0.0, 3 * np.pi),
                                                 (6 * np.pi, 0.1, 1.0, 0.0), (2 * np.pi, 0.5, 0.5, -1.0),
                                                 (8 * np.pi, 0.0, 1.0, 1.0)])
def test_oscillators_reach_1e_5(omega, zeta, u0, v0):
    r = pc.solve(_oscillator(omega, zeta, u0, v0), time_limit=120, tol=1e-5, progress=False, seed=0)
    assert r.rel_l2 <= 1e-5, r.record
    assert r.status == "converged" and r.record["method"] == "lm"


def test_time_limit_is_respected():
    t = time.perf_counter()
    r = pc.solve(pc.problems.burgers(n_collocation=500, n_ic=50, n_bc=50), time_limit=3.0, progress=False)
    took = time.perf_counter() - t
    # the limit is checked after every iteration; allow one iteration and the closing row
    assert took < 3.0 + 2.0, took
    assert r.status == "stopped" and "time limit" in r.record["stop"]


def test_record_says_what_was_chosen_and_why():
    r = pc.solve(pc.problems.harmonic(), time_limit=20, tol=1e-4, progress=False)
    rec = r.record
    assert rec is r.choices
    for key in ("network", "network_reason", "method", "method_reason", "resampling", "warmup", "phases", "stop",
                "time_limit", "tol", "wall_time"):
        assert key in rec
    assert rec["network"]["layers"] == [1, 20, 20, 20, 1]
    assert rec["phases"][0]["optimizer"] == "lm" and rec["phases"][0]["iterations"] >= 1
    assert "rel-L2" in rec["stop"]


def test_large_problems_choose_self_scaled_bfgs_and_resample_the_interior():
    prob = pc.problems.burgers()
    net, why = choose_network(prob)
    assert net.layers == [2, 20, 20, 20, 1]
    assert choose_method(prob, net)[0] == "bfgs"
    assert interior_terms(prob) == ["pde"]


def test_periodic_terms_give_a_periodic_network():
    from pinncore import conditions
    base = pc.problems.advection(bc="none", n_collocation=200, n_ic=20)
    t = np.linspace(0, 1, 16)[:, None]
    per = conditions.periodic(np.column_stack([t, np.zeros_like(t)]), np.column_stack([t, np.full_like(t, 2 * np.pi)]))
    prob = pc.Problem(inputs=base.inputs, outputs=base.outputs, domain=base.domain,
                      terms={**base.terms, "per": per}, exact=base.exact)
    net, why = choose_network(prob)
    assert net.spec.config()["embedding"]["kind"] == "periodic" and "periodic" in why


@pytest.mark.parametrize("kw, err", [(dict(time_limit=0), ValueError), (dict(time_limit=float("inf")), ValueError),
                                     (dict(time_limit="10"), ValueError), (dict(tol=-1.0), ValueError),
                                     (dict(seed=-1), ValueError), (dict(net="mlp"), TypeError)])
def test_bad_arguments(kw, err):
    with pytest.raises(err):
        pc.solve(pc.problems.harmonic(), **kw)


def test_a_net_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError):
        pc.solve(pc.problems.harmonic(), pc.MLP([2, 8, 1]), time_limit=1)


def test_problem_must_be_a_problem():
    with pytest.raises(TypeError, match="problem"):
        pc.solve("harmonic")


class _Stub:
    def __init__(self):
        self.points_changed, self.stopped = {}, None

    def request_stop(self, status, message):
        self.stopped = (status, message)


def test_stagnation_compares_windows_and_forgets_rows_before_a_resample():
    from pinncore.solve import Stagnation
    s, run = Stagnation(window=100, rel=0.01), _Stub()
    for step, err in [(0, 1.0), (100, 0.5), (200, 0.45)]:
        s.on_log(run, {"step": step, "rel_l2": err, "total_loss": 9.0})
    assert run.stopped is None                      # 10 % better over the last window
    s.on_log(run, {"step": 300, "rel_l2": 0.4489, "total_loss": 9.0})   # 0.2 %: stagnation
    assert run.stopped[0] == "stopped" and "rel-L2" in run.stopped[1]
    s, run = Stagnation(window=100), _Stub()
    s.on_log(run, {"step": 0, "total_loss": 1e-6})
    run.points_changed = {"pde": 50}                # the loss now lives on other points
    s.on_log(run, {"step": 100, "total_loss": 1.0})
    assert run.stopped is None                      # 1e-6 on the old points is not compared
    s.on_log(run, {"step": 200, "total_loss": 1.0})
    assert "loss" in run.stopped[1]


def test_a_stagnation_short_of_tol_restarts_from_the_next_seed():
    # contradictory conditions (u = 0 and u = 1 on the same points): the loss cannot go below
    # 1/2, so every attempt ends short of tol; pc.solve tries further seeds while a quarter of the time is left
    pts = np.linspace(0, 1, 10)[:, None]
    prob = pc.Problem(inputs=["t"], outputs=["u"], domain={"t": (0.0, 1.0)},
                      terms={"a": pc.Term(points=pts, residual=lambda x, u: u),
                             "b": pc.Term(points=pts, residual=lambda x, u: u - 1.0)})
    r = pc.solve(prob, time_limit=8, tol=1e-8, progress=False, seed=3)
    att = r.record["attempts"]
    assert len(att) >= 2 and [a["seed"] for a in att] == list(range(3, 3 + len(att)))
    assert r.record["loss"] == min(a["loss"] for a in att) and r.record["loss"] >= 0.5 - 1e-9
    given = pc.solve(prob, pc.MLP([1, 8, 1], seed=0), time_limit=8, tol=1e-8, progress=False)
    assert len(given.record["attempts"]) == 1     # a caller's network is not replaced
