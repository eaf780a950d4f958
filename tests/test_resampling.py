"""pinncore.resampling: the RAD/RAR-G maths, the observers on a run, carry-over and exact resume."""
import numpy as np
import pytest

import pinncore as pc
import pinncore.geometry as geo
from pinncore import conditions as bc
from pinncore.resampling import RAD, RARG, carry_point_states, rad_density, rad_select, rar_select, residual_norm

# ------------------------------------------------------------------------------ the maths


def test_rad_density_is_the_papers_formula():
    eps = np.array([0.5, 1.0, 2.0, 4.0])
    for k, c in [(1.0, 1.0), (2.0, 0.0), (0.5, 3.0)]:
        ek = eps**k
        want = ek / ek.mean() + c
        assert np.allclose(rad_density(eps, k, c), want / want.sum(), rtol=1e-15)
    assert np.allclose(rad_density(eps, 0.0, 0.0), 0.25)          # k = 0: uniform
    assert np.allclose(rad_density(np.zeros(3)), 1 / 3)           # zero residual: uniform


def test_rad_select_inclusion_follows_the_density():
    # two groups: 100 candidates with ε = 9 and 900 with ε = 1, c = 0 → p ∝ ε, so a draw of
    # 50 (small against each group) takes ≈ 50 · (900 / 1800) = 25 from the first group
    eps = np.concatenate([np.full(100, 9.0), np.ones(900)])
    hits = [np.mean(rad_select(eps, 50, k=1.0, c=0.0, rng=np.random.default_rng(s)) < 100) for s in range(200)]
    assert abs(np.mean(hits) - 0.5) < 0.03
    idx = rad_select(eps, 50, rng=np.random.default_rng(0))
    assert len(set(idx.tolist())) == 50 and (np.diff(idx) > 0).all()   # distinct, sorted
    assert np.array_equal(idx, rad_select(eps, 50, rng=np.random.default_rng(0)))


def test_rar_select_takes_the_largest_residuals():
    eps = np.array([0.3, 7.0, 0.1, 5.0, 6.0])
    assert rar_select(eps, 3).tolist() == [1, 3, 4]
    assert rar_select(eps, 0).tolist() == []


def test_residual_norm_over_components():
    assert residual_norm(np.array([[3.0], [4.0]])).tolist() == [5.0]


def test_carry_point_states_nearest_old_point_and_keep():
    st = {"lambda": {"pde": np.array([1.0, 2.0, 3.0]), "ic": np.array([9.0])},
          "m": {"pde": np.array([0.1, 0.2, 0.3])}, "n_points": {"pde": 3, "ic": 1}, "count": 4}
    old = np.array([[0.0], [0.5], [1.0]])
    new = np.array([[0.0], [0.5], [1.0], [0.45], [0.95]])
    out = carry_point_states(st, "pde", old, new, keep=3)
    assert out["lambda"]["pde"].tolist() == [1.0, 2.0, 3.0, 2.0, 3.0]
    assert out["m"]["pde"].tolist() == [0.1, 0.2, 0.3, 0.2, 0.3]
    assert out["lambda"]["ic"].tolist() == [9.0] and out["n_points"] == {"pde": 5, "ic": 1}
    assert st["n_points"]["pde"] == 3 and st["lambda"]["pde"].size == 3       # input unchanged
    # distances in scaled coordinates: x scaled by 10 makes x the deciding axis
    o2, n2 = np.array([[0.0, 0.0], [0.3, 1.0]]), np.array([[0.25, 0.0]])
    st2 = {"lambda": {"pde": np.array([1.0, 2.0])}}
    assert carry_point_states(st2, "pde", o2, n2, scale=[1.0, 0.01])["lambda"]["pde"].tolist() == [2.0]
    assert carry_point_states(st2, "pde", o2, n2)["lambda"]["pde"].tolist() == [1.0]


@pytest.mark.parametrize("make, match", [
    (lambda: rad_density(np.array([-1.0])), "eps must"),
    (lambda: rad_density(np.ones(2), k=-1), "k must"),
    (lambda: rad_select(np.ones(3), 4), "without replacement"),
    (lambda: rar_select(np.ones(3), 4), "exceeds"),
    (lambda: RAD("pde", every=0), "every must"),
    (lambda: RAD("pde", method="grid"), "method"),
    (lambda: RARG("pde", n_add=0), "n_add"),
])
def test_bad_arguments_raise_clear_errors(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


# ------------------------------------------------------------------------------ on a problem

def _bump_problem(n=200):
    """u.t − f(t, x) with a sharp bump f at t = 0.8: the residual of a small net is ≈ −f there."""
    box = geo.Box([0, -1], [1, 1])
    f = lambda x: 50.0 * pc.exp(-200.0 * (x.t - 0.8) ** 2)     # noqa: E731
    return pc.Problem(["t", "x"], ["u"], domain={"t": (0, 1), "x": (-1, 1)},
                      terms={"pde": pc.Term(box.sample_interior(n, seed=0), lambda x, u: u.t - f(x)),
                             "ic": bc.initial(box.sample_face(20, 0, "lo", seed=0), 0.0)})


def test_residual_at_is_one_forward_pass_matching_residuals():
    p = _bump_problem()
    net = pc.MLP([2, 8, 1], seed=0)
    x = p.terms["pde"].points
    assert np.allclose(p.residual_at(net, "pde", x), p.residuals(net)["pde"], rtol=1e-13, atol=1e-13)


def test_rad_concentrates_points_where_the_residual_is_large():
    p = _bump_problem()
    net = pc.MLP([2, 8, 1], seed=0)
    for c, lo in [(0.0, 0.95), (1.0, 0.5)]:
        rad = RAD("pde", every=1, n_candidates=20000, k=1.0, c=c, seed=1)
        run = pc.Run(p, net, weighting=pc.Fixed(), optimizer=pc.optim.Adam(lr=1e-12), warn=False, observers=[rad])
        run.step(1)
        t = run.problem.terms["pde"].points[:, 0]
        near = np.mean(np.abs(t - 0.8) < 0.15)
        # expected share from the density itself on the candidates, and far above uniform (0.3)
        cand = rad.candidates(p, 1)
        pr = rad_density(residual_norm(p.residual_at(run.net, "pde", cand)), 1.0, c)
        want = pr[np.abs(cand[:, 0] - 0.8) < 0.15].sum()
        assert want > lo and abs(near - want) < 0.06, (c, near, want)


def test_rad_respects_a_geometry_and_is_reproducible():
    L = geo.Box([0, 0], [2, 2]) - geo.Box([1, 1], [2, 2])
    p = pc.Problem(["x", "y"], ["u"], domain=L.domain(["x", "y"]),
                   terms={"pde": pc.Term(L.sample_interior(100, seed=0), lambda x, u: u.xx + u.yy + 1.0)})

    def run(seed):
        r = pc.Run(p, pc.MLP([2, 8, 1], seed=0), weighting=pc.Fixed(), warn=False,
                   observers=[RAD("pde", every=3, n_candidates=1000, geometry=L, method="sobol", seed=seed)])
        r.step(6)
        return r.problem.terms["pde"].points
    a, b, c = run(0), run(0), run(1)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert L.inside(a).all() and a.shape == (100, 2)


def test_rarg_adds_the_worst_points_and_self_adaptive_state_follows():
    p = _bump_problem(100)
    rar = RARG("pde", every=5, n_add=10, n_candidates=2000, seed=0, max_points=125)
    run = pc.Run(p, pc.MLP([2, 8, 1], seed=0), weighting=pc.SelfAdaptive(), log_every=5, warn=False,
                 observers=[rar])
    run.step(20)
    assert run.problem.n_points["pde"] == 125                      # 100 + 10 + 10 + 5 (capped)
    assert [e["n_points"] for e in rar.events] == [110, 120, 125, 125]
    assert run.w_state["lambda"]["pde"].shape == (125,) and run.w_state["n_points"]["pde"] == 125
    assert np.array_equal(run.problem.terms["pde"].points[:100], p.terms["pde"].points)   # old points kept
    added = run.problem.terms["pde"].points[100:110, 0]
    assert np.all(np.abs(added - 0.8) < 0.15)                        # at the bump
    assert run.history["pde_n_points"].tolist() == [100, 110, 120, 125]
    assert run.history["pde_resampled_at"].tolist()[1:] == [5.0, 10.0, 15.0]


def test_resume_after_a_resampling_step_is_bitwise(tmp_path):
    p = _bump_problem(60)

    def make(resume=None):
        return pc.Run(p, pc.MLP([2, 10, 10, 1], seed=0), weighting=pc.SelfAdaptive(), log_every=4, warn=False,
                      observers=[RAD("pde", every=5, n_candidates=500, seed=2)], resume=resume)
    full = make()
    full.step(24)
    half = make()
    half.step(12)                              # events at 5 and 10 happened before the save
    half.save(tmp_path / "s.pcs")
    rest = make(resume=tmp_path / "s.pcs")
    assert np.array_equal(rest.problem.terms["pde"].points, half.problem.terms["pde"].points)
    rest.step(12)
    assert np.array_equal(full.net.params, rest.net.params)
    assert np.array_equal(full.problem.terms["pde"].points, rest.problem.terms["pde"].points)
    for k, col in full.history.columns.items():
        if k != "wall_time":
            assert col == rest.history.columns[k], k
    assert rest.history["pde_resampled_at"].tolist()[-1] == 20.0


def test_rad_refuses_paired_and_unknown_terms():
    box = geo.Box([0, -1], [1, 1])
    p = pc.Problem(["t", "x"], ["u"], domain={"t": (0, 1), "x": (-1, 1)},
                   terms={"pde": pc.Term(box.sample_interior(10, seed=0), lambda x, u: u.t),
                          "per": bc.periodic(box.sample_face(5, 1, "lo"), box.sample_face(5, 1, "hi"))})
    for term, match in (("per", "paired"), ("bc", "unknown term")):
        run = pc.Run(p, pc.MLP([2, 4, 1]), weighting=pc.Fixed(), warn=False, observers=[RAD(term, every=1)])
        with pytest.raises(ValueError, match=match):
            run.step(1)
    run = pc.Run(p, pc.MLP([2, 4, 1]), weighting=pc.Fixed(), warn=False,
                 observers=[RAD("pde", every=1, n_candidates=5)])
    with pytest.raises(ValueError, match="at least the term's 10 points"):
        run.step(1)


def test_resampling_during_lbfgs_restarts_its_curvature_model():
    p = _bump_problem(80)
    rad = RAD("pde", every=4, n_candidates=400, seed=0)
    run = pc.Run(p, pc.MLP([2, 8, 1], seed=0), weighting=pc.Fixed(), log_every=2, warn=False, observers=[rad])
    run.step(2)
    run.step(6, optimizer="lbfgs")
    assert [e["step"] for e in rad.events] == [4, 8]
    # the L-BFGS state was re-initialised at step 8: no stale cached loss, no curvature pairs
    assert run.opt_state["valid"] is False and run.opt_state["count"] == 0
    assert run.status == "completed" and np.isfinite(run.history["total_loss"]).all()


def test_resampling_during_lm_continues_like_a_fresh_lm_on_the_new_points():
    p = _bump_problem(60)
    run = pc.Run(p, pc.MLP([2, 8, 1], seed=0), weighting=pc.Fixed(), log_every=1, warn=False,
                 observers=[RAD("pde", every=3, n_candidates=400, seed=0)])
    run.step(1)
    run.step(2, optimizer="lm")                 # the event at step 3 replaces the points
    params3, points3 = run.net.params.copy(), run.problem.terms["pde"].points.copy()
    assert not np.array_equal(points3, p.terms["pde"].points)
    run.step(1)
    net = pc.MLP([2, 8, 1], seed=0)
    net.params[...] = params3
    fresh = pc.Run(p.with_points("pde", points3), net, weighting=pc.Fixed(), optimizer="lm", warn=False)
    fresh.step(1)
    # no linearisation of the old points survives the change (LM caches it by parameters)
    assert np.array_equal(run.net.params, fresh.net.params)
