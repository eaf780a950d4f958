"""pc.Problem / pc.Term: per-term losses, gradients, NTK traces against an independent
brute-force evaluation (hand NumPy residuals + per-point Jacobian rows from jets_vjp),
finite differences of the NumPy reference, and across backends; input scaling; errors."""
from __future__ import annotations

import numpy as np
import pytest

import pinncore as pc
from conftest import CASES, assert_rel, brute_force, fd_derivative, hand_residuals, randomize

BACKENDS = ["cpp", "numpy"]


def nets_for(case, seed=0, dtype=np.float64):
    a = randomize(pc.MLP(case.layers, seed=seed, dtype=dtype, backend="cpp"), seed=seed + 10, bscale=0.3)
    b = pc.MLP(case.layers, seed=seed, dtype=dtype, backend="numpy")
    b.params[:] = a.params
    return a, b


@pytest.fixture(scope="module", params=list(CASES))
def case(request):
    return CASES[request.param]()


@pytest.mark.parametrize("backend", BACKENDS)
def test_against_brute_force(case, backend):
    cpp, ref = nets_for(case)
    net = cpp if backend == "cpp" else ref
    prob = case.problem
    L = prob.losses(net)
    G = prob.gradients(net)
    nrm = prob.ntk_point_norms(net)
    tr = prob.ntk_traces(net)
    R = prob.residuals(net)
    assert list(L) == list(G) == list(tr) == list(R) == prob.term_names
    for name in prob.term_names:
        loss, grad, norms, r = brute_force(case, name, ref)
        assert R[name].shape == r.shape
        assert_rel(R[name], r, 1e-11, f"{name} residuals")
        assert abs(L[name] - loss) <= 1e-10 * abs(loss), (name, L[name], loss)
        assert G[name].shape == net.params.shape
        assert_rel(G[name], grad, 1e-10, f"{name} gradient")
        assert nrm[name].shape == (prob.n_points[name],)
        assert_rel(nrm[name], norms, 1e-10, f"{name} NTK point norms")
        assert abs(tr[name] - norms.sum()) <= 1e-10 * norms.sum(), (name, tr[name], norms.sum())


def test_backends_agree(case):
    cpp, ref = nets_for(case, seed=3)
    prob = case.problem
    La, Ga, Ra = prob.value_and_grad(cpp, residuals=True)
    Lb, Gb, Rb = prob.value_and_grad(ref, residuals=True)
    assert La.shape == (len(prob.term_names),) and Ga.shape == (len(prob.term_names), cpp.n_params)
    assert_rel(La, Lb, 1e-10, "losses")
    for a in range(len(La)):
        assert_rel(Ga[a], Gb[a], 1e-10, f"gradient {prob.term_names[a]}")
        assert_rel(Ra[a], Rb[a], 1e-10, f"residuals {prob.term_names[a]}")
    ta, tb = prob.ntk_traces(cpp), prob.ntk_traces(ref)
    for k in ta:
        assert abs(ta[k] - tb[k]) <= 1e-10 * abs(tb[k])
    pa, pb = prob.ntk_point_norms(cpp), prob.ntk_point_norms(ref)
    for k in pa:
        assert_rel(pa[k], pb[k], 1e-10, f"point norms {k}")


def test_float32_backends_agree(case):
    cpp, ref = nets_for(case, seed=4, dtype=np.float32)
    prob = case.problem
    La, Ga, _ = prob.value_and_grad(cpp)
    Lb, Gb, _ = prob.value_and_grad(ref)
    assert Ga.dtype == np.float32
    assert_rel(La, Lb, 1e-4, "losses f32")
    for a in range(len(La)):
        assert_rel(Ga[a], Gb[a], 1e-4, "gradients f32")
    ta, tb = prob.ntk_traces(cpp), prob.ntk_traces(ref)
    for k in ta:
        assert abs(ta[k] - tb[k]) <= 1e-4 * abs(tb[k])
    # and close to the float64 answer
    n64 = pc.MLP(case.layers)
    n64.params[:] = cpp.params
    L64 = prob.value_and_grad(n64)[0]
    assert_rel(La, L64, 1e-3, "float32 vs float64 losses")


def test_gradients_vs_finite_differences_of_reference_loss(case):
    _, ref = nets_for(case, seed=5)
    prob = case.problem
    theta = ref.params.copy()
    G = prob.gradients(ref)
    rng = np.random.default_rng(0)
    for name in prob.term_names:
        f = lambda th: prob.losses(ref, params=th)[name]
        for _ in range(3):
            v = rng.normal(size=theta.size)
            fd = fd_derivative(f, theta, v, h=2e-4)
            exact = G[name] @ v
            assert abs(fd - exact) <= 1e-7 * (abs(exact) + np.abs(G[name]).sum() * 1e-3), (name, fd, exact)
    np.testing.assert_array_equal(ref.params, theta)


def test_ntk_norms_vs_finite_differences_of_residuals(case):
    """Per-point Jacobian rows by central differences of problem.residuals (independent of the
    adjoint code entirely)."""
    _, ref = nets_for(case, seed=6)
    prob = case.problem
    theta = ref.params.copy()
    h = 1e-6
    rows = {k: [] for k in prob.term_names}
    for p in range(theta.size):
        e = np.zeros_like(theta)
        e[p] = h
        rp, rm = prob.residuals(ref, params=theta + e), prob.residuals(ref, params=theta - e)
        for k in prob.term_names:
            rows[k].append((rp[k] - rm[k]) / (2 * h))
    nrm = prob.ntk_point_norms(ref)
    for k in prob.term_names:
        Jr = np.stack(rows[k], axis=-1)                  # (C, N, P)
        np.testing.assert_allclose(nrm[k], (Jr**2).sum(axis=(0, 2)), rtol=1e-6)


def test_fallback_matches_hand_numpy():
    case = CASES["fallback"]()
    prob = case.problem
    for backend in BACKENDS:
        net = randomize(pc.MLP(case.layers, backend=backend), seed=2)
        x = prob.terms["pde"].points
        r = hand_residuals(case, "pde", net, x)
        np.testing.assert_allclose(prob.residuals(net)["pde"], r, rtol=1e-12, atol=1e-14)
        assert abs(prob.losses(net)["pde"] - np.mean(r[0] ** 2)) <= 1e-12 * np.mean(r[0] ** 2)
        # the fallback minus the polynomial problem u.t is exactly sin(u) of the prediction
        prob2 = pc.Problem(inputs=["t"], outputs=["u"], domain={"t": (0.0, 2.0)},
                           terms={"pde": pc.Term(points=x, residual=lambda xx, u: u.t)})
        ut = prob2.residuals(net)["pde"]
        np.testing.assert_allclose(prob.residuals(net)["pde"] - ut,
                                   np.sin(prob.predict(net, x).T), rtol=1e-12, atol=1e-14)


def test_input_scaling_physical_derivative():
    """domain (0, 2): u.t seen by the residual is d/dt of the physical prediction."""
    t = np.linspace(0.1, 1.9, 9)[:, None]
    prob = pc.Problem(inputs=["t"], outputs=["u"], domain={"t": (0.0, 2.0)},
                      terms={"a": pc.Term(points=t, residual=lambda x, u: u.t),
                             "b": pc.Term(points=t, residual=lambda x, u: u.tt)})
    for backend in BACKENDS:
        net = randomize(pc.MLP([1, 9, 9, 1], backend=backend), seed=1)
        R = prob.residuals(net)
        h = 1e-4
        up, um, u0 = prob.predict(net, t + h), prob.predict(net, t - h), prob.predict(net, t)
        np.testing.assert_allclose(R["a"][0], ((up - um) / (2 * h))[:, 0], rtol=1e-7)
        # central second difference: rounding error ~ eps·|u|/h² ≈ 1e-8, so an absolute floor
        np.testing.assert_allclose(R["b"][0], ((up - 2 * u0 + um) / h**2)[:, 0], rtol=1e-5,
                                   atol=1e-6 * np.abs(R["b"][0]).max())
        # network sees x̂ = t - 1: u_t = û_x̂, u_tt = û_x̂x̂ (scale 1 here) -- and with scale 2/2
        jet = net.derivatives(t - 1.0, order=2)
        np.testing.assert_allclose(R["a"][0], jet.grad[:, 0, 0], rtol=1e-13)
        np.testing.assert_allclose(prob.predict(net, t), jet.value, rtol=1e-13)


def test_input_scaling_nonunit():
    """domain (-1, 3) in x, (0, 0.5) in t: chain-rule factors 1/2 and 4."""
    pts = np.column_stack([np.linspace(0, 0.5, 7), np.linspace(-1, 3, 7)])
    prob = pc.Problem(inputs=["t", "x"], outputs=["u"], domain={"t": (0.0, 0.5), "x": (-1.0, 3.0)},
                      terms={"r": pc.Term(points=pts, residual=lambda x, u: [u.t, u.x, u.tx, u.xx, u.tt])})
    net = randomize(pc.MLP([2, 6, 1]), seed=3)
    xh = np.column_stack([4 * pts[:, 0] - 1, (pts[:, 1] + 1) / 2 - 1])
    jet = net.derivatives(xh, order=2)
    R = prob.residuals(net)["r"]
    want = [4 * jet.grad[:, 0, 0], 0.5 * jet.grad[:, 0, 1], 2 * jet.hess[:, 0, 0, 1],
            0.25 * jet.hess[:, 0, 1, 1], 16 * jet.hess[:, 0, 0, 0]]
    np.testing.assert_allclose(R, np.array(want), rtol=1e-12, atol=1e-13)


def test_hard_constraint_predict_and_ic():
    case = CASES["hard"]()
    prob = case.problem
    net = randomize(pc.MLP(case.layers), seed=1)
    t = np.linspace(0, 1, 21)[:, None]
    u = prob.predict(net, t)
    n = net(2 * t - 1)
    np.testing.assert_allclose(u, 1.0 + t**2 * n, rtol=1e-13)
    assert u[0, 0] == 1.0
    ref = pc.MLP(case.layers, backend="numpy")
    ref.params[:] = net.params
    np.testing.assert_allclose(prob.predict(ref, t), u, rtol=1e-13)
    exact = np.cos(2 * np.pi * prob.test_points[:, :1])
    up = prob.predict(net)
    assert prob.rel_l2(net) == pytest.approx(np.linalg.norm(up - exact) / np.linalg.norm(exact), rel=1e-12)


def test_rel_l2_and_default_grid():
    case = CASES["two_output"]()
    prob = case.problem
    assert prob.test_points.shape[0] >= 1000 and prob.test_points.shape[1] == 1
    assert prob.test_points.min() == 0.0 and prob.test_points.max() == 3.0
    net = randomize(pc.MLP(case.layers), seed=1)
    u = net(prob.test_points * 2 / 3 - 1)
    ex = np.column_stack([np.sin(prob.test_points[:, 0]), np.cos(prob.test_points[:, 0])])
    assert prob.rel_l2(net) == pytest.approx(np.linalg.norm(u - ex) / np.linalg.norm(ex), rel=1e-12)
    tp = np.array([[0.5], [1.0], [2.5]])
    p2 = pc.Problem(inputs=["x"], outputs=["u", "v"], domain={"x": (0.0, 3.0)},
                    terms={"bc": pc.Term(points=[[0.0]], residual=lambda x, u, v: u)},
                    exact=lambda x: np.column_stack([np.sin(x[:, 0]), np.cos(x[:, 0])]), test_points=tp)
    u = net(tp * 2 / 3 - 1)
    ex = np.column_stack([np.sin(tp[:, 0]), np.cos(tp[:, 0])])
    assert p2.rel_l2(net) == pytest.approx(np.linalg.norm(u - ex) / np.linalg.norm(ex), rel=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_point_weights(backend):
    case = CASES["burgers"]()
    prob = case.problem
    net = randomize(pc.MLP(case.layers, backend=backend), seed=2)
    rng = np.random.default_rng(0)
    w = [rng.uniform(0.5, 2, n) for n in prob.n_points.values()]
    L, G, R = prob.value_and_grad(net, point_weights=w, residuals=True)
    L0, G0, _ = prob.value_and_grad(net)
    _, ref = nets_for(case)
    ref.params[:] = net.params
    for a, name in enumerate(prob.term_names):
        r = R[a]
        assert L[a] == pytest.approx((w[a] * r**2).sum() / r.shape[1], rel=1e-12)
    # weights of one leave the gradient unchanged; mixed None / arrays accepted
    L1, G1, _ = prob.value_and_grad(net, point_weights=[np.ones(n) for n in prob.n_points.values()])
    assert_rel(G1, G0, 1e-13, "unit weights")
    L2, G2, _ = prob.value_and_grad(net, point_weights=[None, w[1], None])
    assert_rel(G2[0], G0[0], 1e-13, "None weight")
    with pytest.raises(ValueError, match="point_weights must have 3 entries"):
        prob.value_and_grad(net, point_weights=[None])


def test_value_and_grad_params_argument_and_no_mutation():
    case = CASES["harmonic"]()
    prob = case.problem
    net = randomize(pc.MLP(case.layers), seed=3)
    other = randomize(pc.MLP(case.layers), seed=4)
    p_before = net.params.copy()
    pts_before = {k: t.points.copy() for k, t in prob.terms.items()}
    La = prob.losses(net, params=other.params)
    assert La == prob.losses(other)
    np.testing.assert_array_equal(net.params, p_before)
    for k, t in prob.terms.items():
        np.testing.assert_array_equal(t.points, pts_before[k])
    # Term copies the caller's points
    pts = np.linspace(0, 1, 5)[:, None]
    term = pc.Term(points=pts, residual=lambda x, u: u)
    pts[0, 0] = 7.0
    assert term.points[0, 0] == 0.0


def test_harmonic_on_domain_0_2_brute_force():
    from conftest import harmonic_case
    case = harmonic_case(domain=(0.0, 2.0))
    for backend in BACKENDS:
        net = randomize(pc.MLP(case.layers, backend=backend), seed=1)
        ref = pc.MLP(case.layers, backend="numpy")
        ref.params[:] = net.params
        G = case.problem.gradients(net)
        for name in case.problem.term_names:
            loss, grad, norms, r = brute_force(case, name, ref)
            assert_rel(G[name], grad, 1e-10, name)


def test_ntk_traces_positive_and_threads(threads_reset):
    case = CASES["burgers"]()
    net = randomize(pc.MLP(case.layers), seed=7)
    pc.set_num_threads(1)
    L1, G1, _ = case.problem.value_and_grad(net)
    t1 = case.problem.ntk_traces(net)
    pc.set_num_threads(2)
    L2, G2, _ = case.problem.value_and_grad(net)
    t2 = case.problem.ntk_traces(net)
    assert_rel(L2, L1, 1e-13, "losses")
    assert_rel(G2, G1, 1e-13, "grads")
    for k in t1:
        assert t1[k] > 0 and abs(t1[k] - t2[k]) <= 1e-13 * t1[k]


# ============================================================== errors
def _ok_terms():
    return {"pde": pc.Term(points=np.linspace(0, 1, 5)[:, None], residual=lambda x, u: u.tt + u)}


def _problem(**kw):
    args = dict(inputs=["t"], outputs=["u"], domain={"t": (0.0, 1.0)}, terms=_ok_terms())
    args.update(kw)
    return pc.Problem(**args)


def test_points_outside_domain():
    with pytest.raises(ValueError, match=r"outside the domain"):
        _problem(terms={"pde": pc.Term(points=[[0.5], [1.5]], residual=lambda x, u: u)})
    with pytest.raises(ValueError, match=r"terms\['ic'\].*outside"):
        _problem(terms={"ic": pc.Term(points=[[-0.1]], residual=lambda x, u: u)})
    p = _problem()
    with pytest.raises(ValueError, match="outside"):
        p.predict(pc.MLP([1, 3, 1]), np.array([[2.0]]))


def test_points_wrong_width():
    with pytest.raises(ValueError, match=r"has 2 columns, expected 1"):
        _problem(terms={"pde": pc.Term(points=np.zeros((3, 2)), residual=lambda x, u: u)})
    with pytest.raises(ValueError, match="2-D"):
        pc.Term(points=np.zeros(3), residual=lambda x, u: u)


def test_unknown_derivative_names():
    with pytest.raises(ValueError, match=r"u\.q"):
        _problem(terms={"pde": pc.Term(points=[[0.5]], residual=lambda x, u: u.q)})
    with pytest.raises(ValueError, match=r"x\.y"):
        _problem(terms={"pde": pc.Term(points=[[0.5]], residual=lambda x, u: u * x.y)})
    with pytest.raises(ValueError, match="unknown derivative name 'z'"):
        _problem(terms={"pde": pc.Term(points=[[0.5]], residual=lambda x, u: u.d("z"))})


def test_order_above_two():
    with pytest.raises(ValueError, match=r"order 3.*not supported"):
        _problem(terms={"pde": pc.Term(points=[[0.5]], residual=lambda x, u: u.ttt)})
    with pytest.raises(ValueError, match=r"order 3"):
        _problem(terms={"pde": pc.Term(points=[[0.5]], residual=lambda x, u: u.tt.t)})


@pytest.mark.parametrize("ret", [None, 1.0, 3, "u", [], [1.0], np.zeros(3)])
def test_residual_not_an_expression(ret):
    with pytest.raises(ValueError, match=r"residual 'pde'"):
        _problem(terms={"pde": pc.Term(points=[[0.5]], residual=lambda x, u: ret)})


def test_duplicate_term_name():
    t = pc.Term(points=[[0.5]], residual=lambda x, u: u)
    with pytest.raises(ValueError, match=r"term name clash: 'pde'"):
        _problem(terms=[("pde", t), ("ic", t), ("pde", t)])
    with pytest.raises(ValueError, match="reserved"):
        _problem(terms={"total": t})
    with pytest.raises(ValueError, match="at least one Term"):
        _problem(terms={})


def test_nan_in_points():
    with pytest.raises(ValueError, match="NaN"):
        pc.Term(points=[[0.5], [np.nan]], residual=lambda x, u: u)
    with pytest.raises(ValueError, match="NaN"):
        pc.Term(points=[[np.inf]], residual=lambda x, u: u)
    with pytest.raises(TypeError, match="points"):
        pc.Term(points=[["a"]], residual=lambda x, u: u)
    with pytest.raises(TypeError, match="residual must be a callable"):
        pc.Term(points=[[0.5]], residual=3)


def test_net_wrong_width():
    p = _problem()
    for layers in ([2, 4, 1], [1, 4, 2]):
        net = pc.MLP(layers)
        for call in (p.losses, p.gradients, p.ntk_traces, p.predict, p.residuals):
            with pytest.raises(ValueError, match=r"net has \d inputs and \d outputs"):
                call(net)
    with pytest.raises(TypeError, match="net must be a pc.MLP"):
        p.losses("net")


def test_bad_domain_and_names():
    with pytest.raises(ValueError, match="lo < hi"):
        _problem(domain={"t": (1.0, 0.0)})
    with pytest.raises(ValueError, match="missing input 't'"):
        _problem(domain={})
    with pytest.raises(ValueError, match="unknown inputs"):
        _problem(domain={"t": (0, 1), "s": (0, 1)})
    with pytest.raises(ValueError, match="repeated"):
        _problem(inputs=["t", "t"])
    with pytest.raises(ValueError, match="1 to 4 inputs"):
        _problem(inputs=list("abcde"), domain={k: (0, 1) for k in "abcde"})
    with pytest.raises(ValueError, match="transform"):
        _problem(transform=lambda x, n: [n, n])
    with pytest.raises(ValueError, match="params contains NaN"):
        p = _problem()
        net = pc.MLP([1, 3, 1])
        bad = net.params.copy()
        bad[0] = np.nan
        p.losses(net, params=bad)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_point_weights_float64_arrays_any_net_dtype(dtype):
    """Weighting schemes hand float64 arrays; a float32 net must accept them (both backends)."""
    case = CASES["harmonic"]()
    prob = case.problem
    cpp, ref = nets_for(case, seed=1, dtype=dtype)
    w = [np.linspace(1.0, 2.0, prob.n_points["pde"]), np.array([3.0])]
    w_copy = [a.copy() for a in w]
    La, Ga, Ra = prob.value_and_grad(cpp, point_weights=w, residuals=True)
    Lb, Gb, _ = prob.value_and_grad(ref, point_weights=w)
    rt = 1e-12 if dtype == np.float64 else 1e-4
    assert_rel(La, Lb, rt, "weighted losses")
    assert_rel(Ga, Gb, rt, "weighted gradients")
    for a in range(2):
        r = Ra[a].astype(np.float64)
        assert La[a] == pytest.approx((w[a] * r**2).sum() / r.shape[1], rel=rt * 10)
        np.testing.assert_array_equal(w[a], w_copy[a])


@pytest.mark.parametrize("backend", BACKENDS)
def test_point_weights_bad_input(backend):
    case = CASES["harmonic"]()
    prob = case.problem
    net = pc.MLP(case.layers, backend=backend)
    n = prob.n_points["pde"]
    for bad in ([np.ones(3), None], [np.ones((n, 2)), None]):
        with pytest.raises(ValueError, match=r"point.weights"):
            prob.value_and_grad(net, point_weights=bad)
    with pytest.raises(ValueError, match=r"point.weights.*NaN"):
        prob.value_and_grad(net, point_weights=[np.full(n, np.nan), None])


def test_empty_term_is_an_error():
    with pytest.raises(ValueError, match="at least one point"):
        pc.Term(points=np.zeros((0, 1)), residual=lambda x, u: u)


def test_with_points_relowers_one_term_and_keeps_the_others():
    p = pc.problems.harmonic()
    net = pc.MLP([1, 12, 12, 1], seed=2)
    t = np.linspace(0, 1, 17)[:, None]
    q = p.with_points("pde", t)
    assert q.n_points == {"pde": 17, "ic": 1} and p.n_points["pde"] == 50
    assert q.lowering.terms[1] is p.lowering.terms[1]            # the IC term's tracing is shared
    ref = pc.Problem(inputs=p.inputs, outputs=p.outputs, domain=p.domain,
                     terms={"pde": pc.Term(t, p.terms["pde"].residual), "ic": p.terms["ic"]}, exact=p.exact)
    assert np.array_equal(q.value_and_grad(net)[1], ref.value_and_grad(net)[1])
    assert q.rel_l2(net) == ref.rel_l2(net)
    with pytest.raises(ValueError, match="unknown term"):
        p.with_points("bc", t)
    with pytest.raises(ValueError, match="outside the domain"):
        p.with_points("pde", t + 5.0)
