"""The NumPy reference (pinncore.reference): checked against independent formulations —
full per-point Jacobian/Hessian propagation, complex-step parameter derivatives (exact to
rounding), brute-force per-point gradients and hand-built residual tables."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import pinncore as pc
from pinncore import reference as R
from pinncore.network import TermData, stream_plan
from conftest import all_derivs, assert_rel, points, randomize

H = 1e-30   # complex step


def independent_jets(params, layers, x):
    """Value, full input Jacobian and Hessian per point by plain chain rule on full tensors."""
    N, d = x.shape
    h = x.astype(np.float64)
    Jh = np.broadcast_to(np.eye(d), (N, d, d)).copy()         # (N, width, d)
    Hh = np.zeros((N, d, d, d))                                 # (N, width, d, d)
    for l, (W, b) in enumerate(R.unpack(np.asarray(params, np.float64), layers)):
        z = h @ W.T + b
        Jz = np.einsum("oi,nid->nod", W, Jh)
        Hz = np.einsum("oi,nide->node", W, Hh)
        if l == len(layers) - 2:
            return z, Jz, Hz
        t = np.tanh(z)
        s1, s2 = 1 - t**2, -2 * t * (1 - t**2)
        h = t
        Jh = s1[:, :, None] * Jz
        Hh = s2[:, :, None, None] * np.einsum("nod,noe->node", Jz, Jz) + s1[:, :, None, None] * Hz


def term(x, derivs, scale=None, shift=None, dtype=np.float64, **table):
    d = x.shape[1]
    first, pairs, index = stream_plan(sorted(set(tuple(sorted(v)) for v in derivs), key=lambda m: (len(m), m)))
    scale = np.ones(d) if scale is None else scale
    shift = np.zeros(d) if shift is None else shift
    return TermData.build(x, scale, shift, first, pairs, dtype, **table), index


def test_backend_selection():
    net = pc.MLP([1, 3, 1], backend="numpy")
    assert isinstance(net.backend, R.NumpyBackend)
    assert net.backend_name == "numpy"
    assert "numpy" in repr(net)


def test_unpack_views_layout():
    p = np.arange(3 * 2 + 3 + 3 * 1 + 1, dtype=float)
    (W1, b1), (W2, b2) = R.unpack(p, [2, 3, 1])
    np.testing.assert_array_equal(W1, [[0, 1], [2, 3], [4, 5]])
    np.testing.assert_array_equal(b1, [6, 7, 8])
    np.testing.assert_array_equal(W2, [[9, 10, 11]])
    np.testing.assert_array_equal(b2, [12])
    W1[0, 0] = -1
    assert p[0] == -1          # views, not copies


@pytest.mark.parametrize("layers", [[1, 1, 1], [2, 5, 3], [3, 4, 1, 4, 2], [4, 6, 6, 1]],
                         ids=lambda v: "-".join(map(str, v)))
def test_forward_vs_full_tensor_chain_rule(layers):
    net = randomize(pc.MLP(layers, backend="numpy"), seed=4)
    x = points(11, layers[0], seed=1)
    u, J, Hs = independent_jets(net.params, layers, x)
    jet = net.derivatives(x, order=2)
    np.testing.assert_allclose(jet.value, u, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(jet.grad, J, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(jet.hess, Hs, rtol=1e-12, atol=1e-13)


def test_forward_scaling_seeds_chain_rule():
    layers = [2, 7, 2]
    net = randomize(pc.MLP(layers, backend="numpy"), seed=2)
    x = points(9, 2, seed=2, lo=0, hi=3)
    s, b = np.array([0.7, 2.0]), np.array([-1.0, 0.5])
    td, index = term(x, all_derivs(2), s, b)
    Jets = R.forward(net.params, layers, td)[0]
    u, J, Hs = independent_jets(net.params, layers, x * s + b)
    np.testing.assert_allclose(Jets[0], u, rtol=1e-13)
    np.testing.assert_allclose(Jets[index[(1,)]], J[:, :, 1] * s[1], rtol=1e-12)
    np.testing.assert_allclose(Jets[index[(0, 1)]], Hs[:, :, 0, 1] * s[0] * s[1], rtol=1e-12)
    np.testing.assert_allclose(Jets[index[(0, 0)]], Hs[:, :, 0, 0] * s[0] ** 2, rtol=1e-12)


@settings(max_examples=20, deadline=None)
@given(d=st.integers(1, 4), hidden=st.lists(st.integers(1, 9), min_size=1, max_size=3),
       m=st.integers(1, 3), n=st.integers(0, 9), seed=st.integers(0, 50),
       which=st.lists(st.integers(0, 14), min_size=1, max_size=5))
def test_backward_vs_complex_step(d, hidden, m, n, seed, which):
    """∇θ <adjoint, jets> by reference.backward equals the complex-step derivative."""
    layers = [d, *hidden, m]
    net = randomize(pc.MLP(layers, backend="numpy"), seed=seed)
    x = points(n, d, seed=seed)
    allm = all_derivs(d)
    derivs = sorted({allm[k % len(allm)] for k in which}, key=lambda v: (len(v), v))
    td, index = term(x, derivs)
    adj = np.random.default_rng(seed).normal(size=(td.S, n, m))
    Jets, cache = R.forward(net.params, layers, td)
    g, nrm = R.backward(net.params, layers, td, cache, adj, want_norms=True)
    P = net.n_params
    cs = np.empty(P)
    per_point = np.empty((n, P))
    for k in range(P):
        p = net.params.astype(np.complex128)
        p[k] += 1j * H
        Jc = R.forward(p, layers, td)[0]
        per_point[:, k] = (adj * Jc.imag / H).sum(axis=(0, 2))
        cs[k] = per_point[:, k].sum()
    np.testing.assert_allclose(g, cs, rtol=1e-12, atol=1e-13 * (np.abs(cs).max() + 1e-300))
    np.testing.assert_allclose(nrm, (per_point**2).sum(axis=1), rtol=1e-12, atol=1e-300)


def _table():
    """r0 = 3·u·u_xx + sin(x)·u_t ;  r1 = u_t² − 2  (one output, inputs t, x)."""
    # streams with derivs [(), (0,), (1,), (1, 1)]: first=[0, 1], pairs=[(1, 1)] -> 0, 1, 2, 3
    return dict(components=2,
                comp=np.array([0, 0, 1, 1], np.int32),
                fac_off=np.array([0, 2, 3, 5, 5], np.int32),
                fac_stream=np.array([0, 3, 1, 1, 1], np.int32),
                fac_out=np.array([0, 0, 0, 0, 0], np.int32))


def _table_term(x):
    N = x.shape[0]
    coef = np.stack([np.full(N, 3.0), np.sin(x[:, 1]), np.ones(N), np.full(N, -2.0)])
    td, index = term(x, [(), (0,), (1,), (1, 1)], coef=coef, **_table())
    assert index == {(): 0, (0,): 1, (1,): 2, (1, 1): 3}
    return td


def test_table_residuals_and_adjoint_by_hand():
    x = points(7, 2, seed=3)
    td = _table_term(x)
    J = np.random.default_rng(0).normal(size=(4, 7, 1))
    u, ut, uxx = J[0, :, 0], J[1, :, 0], J[3, :, 0]
    r = R.table_residuals(td, J)
    np.testing.assert_allclose(r[0], 3 * u * uxx + np.sin(x[:, 1]) * ut, rtol=1e-14)
    np.testing.assert_allclose(r[1], ut**2 - 2, rtol=1e-14)
    seed = np.random.default_rng(1).normal(size=(2, 7))
    jbar = R.table_adjoint(td, J, seed)
    want = np.zeros_like(J)
    want[0, :, 0] = seed[0] * 3 * uxx
    want[3, :, 0] = seed[0] * 3 * u
    want[1, :, 0] = seed[0] * np.sin(x[:, 1]) + seed[1] * 2 * ut
    np.testing.assert_allclose(jbar, want, rtol=1e-14)


def test_numpy_backend_losses_grads_ntk_vs_brute_force():
    layers = [2, 5, 4, 1]
    net = randomize(pc.MLP(layers, backend="numpy"), seed=8)
    x = points(6, 2, seed=6)
    td = _table_term(x)
    be = net.backend
    w = np.linspace(0.5, 2.0, 6)
    L, G, res = be.losses_grads(net.params, [td, td], [None, w], want_residuals=True)
    Jets, _ = R.forward(net.params, layers, td)
    r = R.table_residuals(td, Jets)
    np.testing.assert_allclose(res[0], r, rtol=1e-14)
    np.testing.assert_allclose(L, [(r**2).sum() / 6, (w * r**2).sum() / 6], rtol=1e-13)
    # complex step through the forward pass, the residual formula written by hand
    P = net.n_params
    rows = np.empty((2, 6, P))
    for k in range(P):
        p = net.params.astype(np.complex128)
        p[k] += 1j * H
        Jc = R.forward(p, layers, td)[0]
        u, ut, uxx = Jc[0, :, 0], Jc[1, :, 0], Jc[3, :, 0]
        rows[0, :, k] = (3 * u * uxx + np.sin(x[:, 1]) * ut).imag / H
        rows[1, :, k] = (ut**2 - 2).imag / H
    np.testing.assert_allclose(G[0], np.einsum("cn,cnp->p", 2 * r / 6, rows), rtol=1e-12)
    np.testing.assert_allclose(G[1], np.einsum("cn,cnp->p", 2 * w * r / 6, rows), rtol=1e-12)
    (nrm,) = be.ntk_norms(net.params, [td])
    np.testing.assert_allclose(nrm, (rows**2).sum(axis=(0, 2)), rtol=1e-12)


def test_empty_term_losses():
    net = pc.MLP([2, 3, 1], backend="numpy")
    td = _table_term(np.zeros((0, 2)))
    L, G, _ = net.backend.losses_grads(net.params, [td], [None])
    assert L[0] == 0.0
    np.testing.assert_array_equal(G, 0)
    assert net.backend.ntk_norms(net.params, [td])[0].shape == (0,)


def test_float32_reference_stays_float32():
    net = randomize(pc.MLP([2, 5, 1], backend="numpy", dtype=np.float32), seed=1)
    x = points(4, 2, seed=1)
    jet = net.derivatives(x)
    assert jet.value.dtype == jet.grad.dtype == jet.hess.dtype == np.float32
    g, nrm = net.jets_vjp(x, [(), (0, 1)], np.ones((2, 4, 1), np.float32), norms=True)
    assert g.dtype == np.float32 and nrm.dtype == np.float32
    n64 = pc.MLP([2, 5, 1], backend="numpy")
    n64.params[:] = net.params
    assert_rel(jet.hess, n64.derivatives(x).hess, 1e-5, "float32 vs float64 hess")
