"""pc.MLP and the compiled kernel: C++ vs NumPy, vs finite differences, vs closed forms,
threads, and argument checking."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import pinncore as pc
from conftest import DTYPES, all_derivs, assert_rel, fd_derivative, net_pair, points, randomize, tol

LAYERS = [
    [1, 1, 1],
    [1, 8, 1],
    [2, 1, 5, 3],          # width-1 hidden layer, 3 outputs
    [3, 13, 7, 2],         # widths not multiples of 8
    [4, 9, 1],
    [2, 17, 17, 17, 1],
    [1, 50, 50, 1],
]
NS = [0, 1, 7, 50, 300]


def _ids(v):
    return "-".join(map(str, v)) if isinstance(v, list) else str(v)


# ============================================================== C++ vs NumPy: derivatives
@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("layers", LAYERS, ids=_ids)
@pytest.mark.parametrize("n", NS)
@pytest.mark.parametrize("order", [0, 1, 2])
def test_derivatives_backends_agree(dtype, layers, n, order):
    cpp, ref = net_pair(layers, dtype, seed=n + order)
    x = points(n, layers[0], seed=n)
    a = cpp.derivatives(x, order=order)
    b = ref.derivatives(x, order=order)
    d, m = layers[0], layers[-1]
    assert a.value.shape == (n, m) and a.value.dtype == np.dtype(dtype)
    assert_rel(a.value, b.value, tol(dtype), "value")
    if order >= 1:
        assert a.grad.shape == (n, m, d)
        assert_rel(a.grad, b.grad, tol(dtype), "grad")
    else:
        assert a.grad is None
    if order == 2:
        assert a.hess.shape == (n, m, d, d)
        assert_rel(a.hess, b.hess, tol(dtype), "hess")
        np.testing.assert_array_equal(a.hess, np.swapaxes(a.hess, -1, -2))
    else:
        assert a.hess is None
    np.testing.assert_allclose(cpp(x), a.value, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("layers", LAYERS, ids=_ids)
@pytest.mark.parametrize("n", NS)
def test_vjp_and_norms_backends_agree(dtype, layers, n):
    cpp, ref = net_pair(layers, dtype, seed=3 + n)
    d, m = layers[0], layers[-1]
    x = points(n, d, seed=n + 1)
    derivs = all_derivs(d)
    adj = np.random.default_rng(n).normal(size=(len(derivs), n, m)).astype(dtype)
    ga, na = cpp.jets_vjp(x, derivs, adj, norms=True)
    gb, nb = ref.jets_vjp(x, derivs, adj, norms=True)
    assert ga.shape == (cpp.n_params,) and na.shape == (n,)
    assert ga.dtype == np.dtype(dtype)
    if n == 0:
        np.testing.assert_array_equal(ga, 0)
    # a sum over up to 300 points: float32 rounding grows like sqrt(N)
    rt = tol(dtype) * (1 if dtype == np.float64 else 4)
    assert_rel(ga, gb, rt, "param grad")
    assert_rel(na, nb, rt, "norms")
    g_only = cpp.jets_vjp(x, derivs, adj)
    assert isinstance(g_only, np.ndarray)
    assert_rel(g_only, ga, tol(dtype), "grad without norms")


@pytest.mark.parametrize("d", [2, 4])
@pytest.mark.parametrize("m", [4, 5])
def test_kernel_path_boundaries_agree(d, m):
    """The kernel picks per layer: row-wise products for outputs m <= 4 (else the micro-kernel)
    and compiled element-wise passes for F, P <= 3 (else the generic loops). Both sides of
    each boundary vs NumPy, with a 4-output layer after a 5-wide one."""
    cpp, ref = net_pair([d, 6, 5, m], np.float64, seed=d + m)
    n = 37
    x = points(n, d, seed=d)
    sets = [[(), (0,), (d - 1,), (0, d - 1)]]                                    # F = 2, P = 1
    if d == 4:
        sets.append([(), (0,), (1,), (2,), (3,), (0, 1), (1, 2), (2, 3), (0, 3)])  # F = 4, P = 4
    for derivs in sets:
        assert_rel(cpp.jets(x, derivs), ref.jets(x, derivs), tol(np.float64), "jets")
        adj = np.random.default_rng(d * m).normal(size=(len(derivs), n, m))
        ga, na = cpp.jets_vjp(x, derivs, adj, norms=True)
        gb, nb = ref.jets_vjp(x, derivs, adj, norms=True)
        assert_rel(ga, gb, tol(np.float64), "param grad")
        assert_rel(na, nb, tol(np.float64), "norms")


derivs_strategy = st.integers(1, 4).flatmap(lambda d: st.tuples(
    st.just(d),
    st.lists(st.one_of(st.just(()), st.tuples(st.integers(0, d - 1)),
                       st.tuples(st.integers(0, d - 1), st.integers(0, d - 1))),
             min_size=1, max_size=6)))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dd=derivs_strategy,
       hidden=st.lists(st.integers(1, 19), min_size=1, max_size=3),
       m=st.integers(1, 3), n=st.sampled_from(NS), f32=st.booleans(), seed=st.integers(0, 99))
def test_hypothesis_jets_vjp_backends_agree(dd, hidden, m, n, f32, seed):
    d, derivs = dd
    dtype = np.float32 if f32 else np.float64
    layers = [d, *hidden, m]
    cpp, ref = net_pair(layers, dtype, seed=seed)
    x = points(n, d, seed=seed)
    scale = np.random.default_rng(seed).uniform(0.5, 2.0, d)
    shift = np.random.default_rng(seed + 1).uniform(-0.5, 0.5, d)
    ja = cpp.jets(x, derivs, scale=scale, shift=shift)
    jb = ref.jets(x, derivs, scale=scale, shift=shift)
    assert ja.shape == (len(derivs), n, m)
    assert_rel(ja, jb, tol(dtype) * 4, "jets")
    # jets must be consistent with derivatives() at the scaled points (chain rule)
    full = ref.derivatives(x * scale + shift, order=2)
    for k, dv in enumerate(derivs):
        if len(dv) == 0:
            want = full.value
        elif len(dv) == 1:
            want = full.grad[:, :, dv[0]] * scale[dv[0]]
        else:
            want = full.hess[:, :, dv[0], dv[1]] * scale[dv[0]] * scale[dv[1]]
        assert_rel(ja[k], want, tol(dtype) * 4, f"jets entry {dv}")
    uniq = list(dict.fromkeys(tuple(sorted(dv)) for dv in derivs))
    adj = np.random.default_rng(seed).normal(size=(len(uniq), n, m)).astype(dtype)
    ga, na = cpp.jets_vjp(x, uniq, adj, norms=True, scale=scale, shift=shift)
    gb, nb = ref.jets_vjp(x, uniq, adj, norms=True, scale=scale, shift=shift)
    if f32:
        # Two float32 computations of an ill-conditioned sum (1-unit bottleneck layers, 300 points)
        # can each be 3e-5 from the truth in opposite directions (seed 22, [1,1,1,13,1]): compare
        # each with the float64 computation of the same parameters instead of with each other.
        exact = pc.MLP(layers, dtype=np.float64, backend="numpy")
        exact.params[:] = ref.params.astype(np.float64)
        gb, nb = exact.jets_vjp(x, uniq, adj.astype(np.float64), norms=True, scale=scale, shift=shift)
        assert_rel(ref.jets_vjp(x, uniq, adj, norms=True, scale=scale, shift=shift)[0], gb, tol(dtype) * 4, "twin vjp")
    assert_rel(ga, gb, tol(dtype) * 4, "vjp")
    assert_rel(na, nb, tol(dtype) * 4, "norms")


def test_jets_arbitrary_sets_match_derivatives():
    cpp, ref = net_pair([3, 11, 6, 2], seed=5)
    x = points(20, 3, seed=2)
    full = cpp.derivatives(x, order=2)
    for derivs in ([(0, 2)], [(2, 1)], [(1,), (2, 2)], [(), (), (0,)], [2, (1, 0)], [(2,), (0,), ()]):
        J = cpp.jets(x, derivs)
        assert J.shape == (len(derivs), 20, 2)
        for k, dv in enumerate(derivs):
            dv = (dv,) if isinstance(dv, int) else dv
            want = (full.value if len(dv) == 0 else full.grad[:, :, dv[0]] if len(dv) == 1
                    else full.hess[:, :, dv[0], dv[1]])
            assert_rel(J[k], want, 1e-12, str(dv))
        assert_rel(J, ref.jets(x, derivs), 1e-12, str(derivs))


# ============================================================== finite differences
@pytest.mark.parametrize("backend", ["cpp", "numpy"])
@pytest.mark.parametrize("layers", [[1, 6, 1], [2, 7, 5, 2], [3, 9, 1], [4, 5, 5, 3]], ids=_ids)
def test_input_derivatives_vs_central_differences(backend, layers):
    net = randomize(pc.MLP(layers, backend=backend), seed=7)
    d = layers[0]
    x = points(9, d, seed=3)
    jet = net.derivatives(x, order=2)
    h = 1e-5
    for i in range(d):
        e = np.zeros(d)
        e[i] = h
        fd = (net(x + e) - net(x - e)) / (2 * h)
        np.testing.assert_allclose(jet.grad[:, :, i], fd, rtol=1e-8, atol=1e-9)
        # Hessian row from central differences of the exact gradient
        gp = net.derivatives(x + e, order=1).grad
        gm = net.derivatives(x - e, order=1).grad
        np.testing.assert_allclose(jet.hess[:, :, :, i], (gp - gm) / (2 * h), rtol=1e-8, atol=1e-9)
    # mixed second differences of the values alone
    h2 = 1e-4
    for i in range(d):
        for j in range(d):
            ei, ej = np.zeros(d), np.zeros(d)
            ei[i], ej[j] = h2, h2
            fd = (net(x + ei + ej) - net(x + ei - ej) - net(x - ei + ej) + net(x - ei - ej)) / (4 * h2 * h2)
            np.testing.assert_allclose(jet.hess[:, :, i, j], fd, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
def test_one_neuron_closed_form(backend):
    w1, b1, w2, b2 = 1.3, -0.4, -0.7, 0.25
    net = pc.MLP([1, 1, 1], backend=backend)
    net.params[:] = [w1, b1, w2, b2]          # layout: W1, b1, W2, b2
    x = np.linspace(-2, 2, 11)[:, None]
    t = np.tanh(w1 * x[:, 0] + b1)
    s1 = 1 - t**2
    u = w2 * t + b2
    up = w2 * w1 * s1
    upp = w2 * w1**2 * (-2 * t * s1)
    jet = net.derivatives(x, order=2)
    np.testing.assert_allclose(jet.value[:, 0], u, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(jet.grad[:, 0, 0], up, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(jet.hess[:, 0, 0, 0], upp, rtol=1e-13, atol=1e-15)
    # exact parameter gradient of F = Σ_n (a_n u_n + c_n u'_n + e_n u''_n)
    rng = np.random.default_rng(0)
    a, c, e = rng.normal(size=(3, 11))
    s2 = -2 * t * s1
    s3 = -2 * s1 * (1 - 3 * t**2)
    xx = x[:, 0]
    # u = w2 σ + b2; u' = w2 w1 σ'; u'' = w2 w1² σ''
    dw1 = a * w2 * s1 * xx + c * w2 * (s1 + w1 * s2 * xx) + e * w2 * (2 * w1 * s2 + w1**2 * s3 * xx)
    db1 = a * w2 * s1 + c * w2 * w1 * s2 + e * w2 * w1**2 * s3
    dw2 = a * t + c * w1 * s1 + e * w1**2 * s2
    db2 = a
    want = np.array([dw1.sum(), db1.sum(), dw2.sum(), db2.sum()])
    adj = np.stack([a, c, e])[:, :, None]
    g, nrm = net.jets_vjp(x, [(), (0,), (0, 0)], adj, norms=True)
    np.testing.assert_allclose(g, want, rtol=1e-13, atol=1e-14)
    per_point = np.stack([dw1, db1, dw2, db2], axis=1)
    np.testing.assert_allclose(nrm, (per_point**2).sum(axis=1), rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
@pytest.mark.parametrize("layers,derivs", [
    ([1, 5, 4, 1], [(), (0,), (0, 0)]),
    ([2, 4, 3, 2], [(), (0,), (1,), (0, 1), (1, 1)]),
    ([3, 3, 1], [(0, 2), (1,)]),
    ([4, 3, 2, 1], all_derivs(4)),
], ids=["1d", "2d", "3d-mixed", "4d"])
def test_param_gradient_vs_finite_differences(backend, layers, derivs):
    net = randomize(pc.MLP(layers, backend=backend), seed=11)
    n, m = 6, layers[-1]
    x = points(n, layers[0], seed=4)
    adj = np.random.default_rng(1).normal(size=(len(derivs), n, m))
    g = net.jets_vjp(x, derivs, adj)
    theta = net.params.copy()
    F = lambda th: float((adj * net.jets(x, derivs, params=th)).sum())
    fd = np.array([fd_derivative(F, theta, np.eye(theta.size)[k]) for k in range(theta.size)])
    np.testing.assert_allclose(g, fd, rtol=1e-8, atol=1e-9 * np.abs(fd).max())
    np.testing.assert_array_equal(net.params, theta)


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
@pytest.mark.parametrize("layers", [[1, 6, 1], [2, 5, 4, 3], [3, 1, 6, 2]], ids=_ids)
def test_point_norms_vs_brute_force(backend, layers):
    net = randomize(pc.MLP(layers, backend=backend), seed=2)
    d, m, n = layers[0], layers[-1], 8
    x = points(n, d, seed=5)
    derivs = all_derivs(d)
    adj = np.random.default_rng(3).normal(size=(len(derivs), n, m))
    g, nrm = net.jets_vjp(x, derivs, adj, norms=True)
    brute = np.empty(n)
    total = np.zeros(net.n_params)
    for i in range(n):
        one = np.zeros_like(adj)
        one[:, i] = adj[:, i]
        gi = net.jets_vjp(x, derivs, one)
        brute[i] = gi @ gi
        total += gi
    np.testing.assert_allclose(nrm, brute, rtol=1e-12)
    np.testing.assert_allclose(g, total, rtol=1e-12, atol=1e-13 * np.abs(g).max())


def test_n_zero_shapes():
    for backend in ("cpp", "numpy"):
        net = pc.MLP([3, 5, 2], backend=backend)
        x = np.zeros((0, 3))
        assert net(x).shape == (0, 2)
        jet = net.derivatives(x, order=2)
        assert jet.value.shape == (0, 2) and jet.grad.shape == (0, 2, 3) and jet.hess.shape == (0, 2, 3, 3)
        assert net.jets(x, [(0, 1), (2,)]).shape == (2, 0, 2)
        g, nrm = net.jets_vjp(x, [(), (1, 2)], np.zeros((2, 0, 2)), norms=True)
        assert g.shape == (net.n_params,) and nrm.shape == (0,)
        np.testing.assert_array_equal(g, 0)


# ============================================================== threads
def test_two_threads_match_one(threads_reset):
    net = randomize(pc.MLP([2, 33, 20, 2]), seed=9)
    x = points(3001, 2, seed=9)
    derivs = all_derivs(2)
    adj = np.random.default_rng(9).normal(size=(len(derivs), 3001, 2))
    pc.set_num_threads(1)
    j1 = net.jets(x, derivs)
    g1, n1 = net.jets_vjp(x, derivs, adj, norms=True)
    pc.set_num_threads(2)
    assert pc.get_num_threads() == 2
    j2 = net.jets(x, derivs)
    g2, n2 = net.jets_vjp(x, derivs, adj, norms=True)
    assert_rel(j2, j1, 1e-13, "jets")
    assert_rel(g2, g1, 1e-13, "grad")
    assert_rel(n2, n1, 1e-13, "norms")
    for _ in range(3):   # bitwise identical run to run for a fixed count
        np.testing.assert_array_equal(net.jets(x, derivs), j2)
        g3, n3 = net.jets_vjp(x, derivs, adj, norms=True)
        np.testing.assert_array_equal(g3, g2)
        np.testing.assert_array_equal(n3, n2)


def test_set_num_threads_validates(threads_reset):
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="n must"):
            pc.set_num_threads(bad)


def test_set_num_threads_has_an_upper_bound(threads_reset):
    """Issue 23 #9: 100 000 was accepted and a later call failed with "Resource temporarily
    unavailable", leaving hundreds of threads."""
    from pinncore.backend import MAX_THREADS
    assert MAX_THREADS >= 256
    for bad in (MAX_THREADS + 1, 100_000, 10 ** 30, np.int64(2 ** 40)):
        with pytest.raises(ValueError, match=rf"n must be at most {MAX_THREADS} threads .*got {int(bad)}"):
            pc.set_num_threads(bad)
        assert pc.get_num_threads() == 1
    pc.set_num_threads(MAX_THREADS)       # the bound itself is a valid count (no thread starts until a call)
    assert pc.get_num_threads() == MAX_THREADS


def test_concurrent_python_threads_get_correct_answers():
    nets = [randomize(pc.MLP([2, 40, 40, 1]), seed=s) for s in (1, 2)]
    xs = [points(20000, 2, seed=s) for s in (1, 2)]
    adj = [np.random.default_rng(s).normal(size=(6, 20000, 1)) for s in (1, 2)]
    derivs = all_derivs(2)
    want = [(n.jets(x, derivs), n.jets_vjp(x, derivs, a)) for n, x, a in zip(nets, xs, adj)]
    got = [None, None]
    errors = []

    def work(k):
        try:
            got[k] = (nets[k].jets(xs[k], derivs), nets[k].jets_vjp(xs[k], derivs, adj[k]))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    ths = [threading.Thread(target=work, args=(k,)) for k in (0, 1)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    assert not errors
    for k in (0, 1):
        np.testing.assert_array_equal(got[k][0], want[k][0])
        np.testing.assert_array_equal(got[k][1], want[k][1])


def test_kernel_releases_the_gil():
    """A pure-Python thread keeps running while the kernel computes a long call."""
    net = randomize(pc.MLP([2, 64, 64, 64, 1]), seed=3)
    x = points(40000, 2, seed=3)
    derivs = all_derivs(2)
    net.jets(x, derivs)   # warm up the workspace
    stamps = []
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            stamps.append(time.perf_counter())

    th = threading.Thread(target=spin)
    th.start()
    try:
        time.sleep(0.01)
        t0 = time.perf_counter()
        net.jets(x, derivs)   # ONE call: with the GIL held, no stamp could fall inside it
        t1 = time.perf_counter()
    finally:
        stop.set()
        th.join()
    lo, hi = t0 + 0.2 * (t1 - t0), t0 + 0.8 * (t1 - t0)
    inside = sum(lo <= s <= hi for s in stamps)
    assert inside > 0, f"no Python progress during a {1e3 * (t1 - t0):.1f} ms kernel call"


def test_concurrent_calls_on_one_net():
    net = randomize(pc.MLP([1, 30, 30, 1]), seed=4)
    xs = [points(5000, 1, seed=s) for s in range(4)]
    want = [net.derivatives(x).hess for x in xs]
    got = [None] * 4

    def work(k):
        got[k] = net.derivatives(xs[k]).hess

    ths = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    for k in range(4):
        np.testing.assert_array_equal(got[k], want[k])


# ============================================================== argument checking
@pytest.fixture(params=["cpp", "numpy"])
def net3(request):
    return pc.MLP([3, 4, 2], backend=request.param)


def test_x_wrong_ndim(net3):
    with pytest.raises(ValueError, match="x must be 2-D"):
        net3(np.zeros(3))
    with pytest.raises(ValueError, match="x must be 2-D"):
        net3.derivatives(np.zeros((2, 3, 1)))


def test_x_wrong_width(net3):
    with pytest.raises(ValueError, match="x has 2 columns, expected 3"):
        net3(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="x has 4 columns"):
        net3.jets_vjp(np.zeros((5, 4)), [()], np.zeros((1, 5, 2)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_x_nonfinite(net3, bad):
    x = np.zeros((4, 3))
    x[2, 1] = bad
    with pytest.raises(ValueError, match="x contains NaN or infinite"):
        net3(x)
    with pytest.raises(ValueError, match="x contains NaN"):
        net3.derivatives(x, order=1)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.bool_, np.complex128, object, np.uint8])
def test_x_bad_dtype(net3, dtype):
    x = np.zeros((2, 3), dtype=dtype)
    with pytest.raises(TypeError, match="x must"):
        net3(x)


def test_x_not_an_array(net3):
    with pytest.raises(TypeError, match="x must"):
        net3(None)
    with pytest.raises(TypeError, match="x must"):
        net3("abc")


def test_params_nan_rejected(net3):
    before = net3.params.copy()
    bad = before.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="params contains NaN"):
        net3.params = bad
    np.testing.assert_array_equal(net3.params, before)
    with pytest.raises(ValueError, match="params contains NaN"):
        net3(np.zeros((1, 3)), params=bad)
    bad[3] = np.inf
    with pytest.raises(ValueError, match="params contains NaN or infinite"):
        net3.jets(np.zeros((1, 3)), [()], params=bad)


def test_params_wrong_shape_or_dtype(net3):
    with pytest.raises(ValueError, match="params must be 1-D of length"):
        net3.params = np.zeros(net3.n_params + 1)
    with pytest.raises(ValueError, match="params must be 1-D"):
        net3(np.zeros((1, 3)), params=np.zeros((net3.n_params, 1)))
    with pytest.raises(TypeError, match="params must have dtype float64"):
        net3(np.zeros((1, 3)), params=np.zeros(net3.n_params, dtype=np.float32))


@pytest.mark.parametrize("derivs", [[(3,)], [(0, 3)], [(-1,)], [(0.5,)], [(True,)]])
def test_unknown_derivative_request(net3, derivs):
    with pytest.raises(ValueError, match="unknown derivative"):
        net3.jets(np.zeros((1, 3)), derivs)


def test_order_above_two(net3):
    with pytest.raises(ValueError, match="order must be 0, 1 or 2"):
        net3.derivatives(np.zeros((1, 3)), order=3)
    with pytest.raises(ValueError, match="order must be"):
        net3.derivatives(np.zeros((1, 3)), order=-1)
    with pytest.raises(ValueError, match="order 3 > 2"):
        net3.jets(np.zeros((1, 3)), [(0, 1, 2)])
    with pytest.raises(ValueError, match="order 3 > 2"):
        net3.jets_vjp(np.zeros((1, 3)), [(0, 0, 0)], np.zeros((1, 1, 2)))


def test_derivs_not_a_list(net3):
    with pytest.raises(TypeError, match="derivs"):
        net3.jets(np.zeros((1, 3)), "xx")
    with pytest.raises(TypeError, match="derivs"):
        net3.jets(np.zeros((1, 3)), None)


def test_adjoint_checks(net3):
    x = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"adjoint must have shape \(1, 2, 2\)"):
        net3.jets_vjp(x, [()], np.zeros((1, 2, 3)))
    with pytest.raises(TypeError, match="adjoint must be a floating"):
        net3.jets_vjp(x, [()], np.zeros((1, 2, 2), dtype=int))
    with pytest.raises(ValueError, match="adjoint contains NaN"):
        net3.jets_vjp(x, [()], np.full((1, 2, 2), np.nan))
    with pytest.raises(ValueError, match="repeat"):
        net3.jets_vjp(x, [(0,), (0,)], np.zeros((2, 2, 2)))


@pytest.mark.parametrize("layers,exc,msg", [
    ([], ValueError, "layers must list at least"),
    ([3], ValueError, "layers must list at least"),
    ([2, 0, 1], ValueError, "positive integer widths"),
    ([0, 3, 1], ValueError, "positive integer widths"),
    ([2, 3, 0], ValueError, "positive integer widths"),
    ([2, 3.0, 1], ValueError, "positive integer widths"),
    ([5, 3, 1], ValueError, r"layers\[0\].*1 to 4"),
    ("abc", TypeError, "layers must be a list"),
    (None, TypeError, "layers must be a list"),
])
def test_bad_layers(layers, exc, msg):
    with pytest.raises(exc, match=msg):
        pc.MLP(layers)


def test_bad_backend_dtype_seed():
    with pytest.raises(ValueError, match="backend must be"):
        pc.MLP([1, 2, 1], backend="torch")
    for dt in (np.float16, np.int32, np.complex128, "float128" if hasattr(np, "float128") else np.int8):
        with pytest.raises(TypeError, match="dtype must be"):
            pc.MLP([1, 2, 1], dtype=dt)
    with pytest.raises(TypeError, match="dtype must be"):
        pc.MLP([1, 2, 1], dtype="not-a-dtype")
    with pytest.raises(TypeError, match="seed must be"):
        pc.MLP([1, 2, 1], seed=1.5)


# ============================================================== layouts, copies, in place
@pytest.mark.parametrize("backend", ["cpp", "numpy"])
def test_fortran_and_strided_x(backend):
    net = randomize(pc.MLP([3, 7, 2], backend=backend), seed=1)
    x = points(40, 3, seed=8)
    want = net.derivatives(x, order=2)
    xf = np.asfortranarray(x)
    big = np.zeros((80, 7))
    big[::2, 1::2] = x
    xs = big[::2, 1::2]
    assert not xs.flags.c_contiguous and not xf.flags.c_contiguous
    for xx in (xf, xs, x[::-1][::-1], x.tolist()):
        got = net.derivatives(xx, order=2)
        np.testing.assert_array_equal(got.value, want.value)
        np.testing.assert_array_equal(got.hess, want.hess)
    adj = np.random.default_rng(0).normal(size=(2, 40, 2))
    g = net.jets_vjp(x, [(), (0, 2)], adj)
    np.testing.assert_array_equal(net.jets_vjp(xs, [(), (0, 2)], np.asfortranarray(adj)), g)
    np.testing.assert_array_equal(net.jets_vjp(xs, [(), (0, 2)], adj[:, ::-1][:, ::-1]), g)


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
def test_inputs_not_modified(backend, dtype):
    net = randomize(pc.MLP([2, 6, 1], backend=backend, dtype=dtype), seed=1)
    x = points(10, 2, seed=1)
    adj = np.random.default_rng(0).normal(size=(3, 10, 1)).astype(dtype)
    p = net.params.copy()
    p2 = (p * 1.1).astype(dtype)
    xc, ac, pc_, p2c = x.copy(), adj.copy(), p.copy(), p2.copy()
    scale, shift = np.array([2.0, 0.5]), np.array([0.1, -0.3])
    sc, shc = scale.copy(), shift.copy()
    net.derivatives(x, order=2)
    net.jets(x, [(), (0, 1)], params=p2, scale=scale, shift=shift)
    net.jets_vjp(x, [(), (0,), (0, 1)], adj, norms=True, params=p2, scale=scale, shift=shift)
    net.jets_vjp(x, [(), (0,), (0, 1)], adj)
    for a, b in ((x, xc), (adj, ac), (net.params, pc_), (p2, p2c), (scale, sc), (shift, shc)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
def test_params_writable_in_place(backend):
    net = pc.MLP([2, 5, 1], backend=backend)
    x = points(6, 2, seed=0)
    u0 = net(x)
    view = net.params
    view[-1] += 2.0             # output bias
    np.testing.assert_allclose(net(x), u0 + 2.0, rtol=1e-14)
    net.params[:] = 0.0
    np.testing.assert_array_equal(net(x), 0.0)
    net.params = np.ones(net.n_params)
    assert net.params is view   # assignment copies into the same buffer
    other = randomize(pc.MLP([2, 5, 1], backend=backend), seed=5)
    np.testing.assert_allclose(net(x, params=other.params), other(x), rtol=0, atol=0)


def test_params_layout_and_init():
    net = pc.MLP([3, 4, 2], seed=7)
    assert net.n_params == 3 * 4 + 4 + 4 * 2 + 2
    assert net.params.dtype == np.float64 and net.params.ndim == 1 and net.params.flags.c_contiguous
    W1 = net.params[:12].reshape(4, 3)
    b1 = net.params[12:16]
    W2 = net.params[16:24].reshape(2, 4)
    b2 = net.params[24:]
    np.testing.assert_array_equal(b1, 0)
    np.testing.assert_array_equal(b2, 0)
    x = points(5, 3, seed=0)
    np.testing.assert_allclose(net(x), np.tanh(x @ W1.T + b1) @ W2.T + b2, rtol=1e-13)
    np.testing.assert_array_equal(pc.MLP([3, 4, 2], seed=7).params, net.params)
    assert not np.array_equal(pc.MLP([3, 4, 2], seed=8).params, net.params)
    big = pc.MLP([4, 400, 400, 1], seed=0).params[: 400 * 4]
    assert abs(big.std() / np.sqrt(2 / 404) - 1) < 0.05
    f32 = pc.MLP([3, 4, 2], seed=7, dtype=np.float32)
    assert f32.params.dtype == np.float32
    np.testing.assert_allclose(f32.params, net.params, rtol=1e-7)
    assert f32(x).dtype == np.float32


def test_float32_net_close_to_float64():
    n64 = randomize(pc.MLP([2, 20, 20, 1]), seed=3)
    n32 = pc.MLP([2, 20, 20, 1], dtype=np.float32)
    n32.params[:] = n64.params
    x = points(50, 2, seed=3)
    a, b = n32.derivatives(x), n64.derivatives(x)
    assert_rel(a.value, b.value, 1e-5, "value")
    assert_rel(a.hess, b.hess, 1e-4, "hess")


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
def test_params_argument_non_contiguous_and_list(backend):
    net = randomize(pc.MLP([2, 5, 2], backend=backend), seed=6)
    x = points(7, 2, seed=6)
    want = net.derivatives(x)
    p = net.params.copy()
    strided = np.repeat(p, 2)[::2]
    assert not strided.flags.c_contiguous
    got = net.derivatives(x, params=strided)
    np.testing.assert_array_equal(got.hess, want.hess)
    net2 = pc.MLP([2, 5, 2], backend=backend)
    net2.params = p.tolist()
    np.testing.assert_array_equal(net2(x), want.value)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("nthreads", [2, 3, 5])
@pytest.mark.parametrize("n", [0, 1, 3, 257])
def test_thread_counts_and_few_points(threads_reset, dtype, nthreads, n):
    """More threads than points, odd splits: same numbers as one thread."""
    net = randomize(pc.MLP([3, 9, 4, 2], dtype=dtype), seed=n)
    x = points(n, 3, seed=n)
    derivs = all_derivs(3)
    adj = np.random.default_rng(n).normal(size=(len(derivs), n, 2)).astype(dtype)
    pc.set_num_threads(1)
    j1 = net.jets(x, derivs)
    g1, n1 = net.jets_vjp(x, derivs, adj, norms=True)
    pc.set_num_threads(nthreads)
    j2 = net.jets(x, derivs)
    g2, n2 = net.jets_vjp(x, derivs, adj, norms=True)
    rt = 1e-13 if dtype == np.float64 else 1e-5
    assert_rel(j2, j1, rt, "jets")
    assert_rel(g2, g1, rt, "grad")
    assert_rel(n2, n1, rt, "norms")
    np.testing.assert_array_equal(net.jets_vjp(x, derivs, adj), g2)


# ---------------------------------------------------------------- loading (issue 23 #6)

@pytest.mark.parametrize("layers, arch", [([1, 9000, 9000, 1], "plain"), ([2, 5000, 5000, 5000, 1], "modified")])
def test_load_checks_the_parameter_count_before_building_the_network(tmp_path, layers, arch):
    """A 434-byte file declaring [1, 9000, 9000, 1] made MLP.load allocate and initialise 81
    million parameters before it compared their count with the file's (a few) parameters."""
    import tracemalloc
    from pinncore import io
    path = tmp_path / "wide.pcn"
    io.save(path, {"layers": layers, "dtype": "float64", "seed": 0, "backend": "cpp", "arch": arch,
                   "embedding": None, "params": np.zeros(5)}, kind="pinncore.mlp")
    assert path.stat().st_size < 1000
    tracemalloc.start()
    try:
        with pytest.raises(io.FormatError, match=r"params must be a float64 array of shape \(\d+,\) for layers"):
            pc.MLP.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 ** 20, f"{peak} bytes traced while refusing a {path.stat().st_size}-byte file"


def test_load_refuses_non_finite_params_before_building(tmp_path):
    net = pc.MLP([1, 6, 1])
    p = net.params.copy()
    p[2] = np.inf
    from pinncore import io
    io.save(tmp_path / "n.pcn", {"layers": [1, 6, 1], "dtype": "float64", "seed": 0, "params": p}, kind="pinncore.mlp")
    with pytest.raises(io.FormatError, match="NaN or infinite"):
        pc.MLP.load(tmp_path / "n.pcn")
