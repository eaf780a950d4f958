"""Input embeddings (pc.FourierFeatures, pc.Periodic) and the modified MLP (arch="modified").

Three independent checks of the same maths: the NumPy reference against complex-step
derivatives (in the inputs: the jets; in the parameters: the gradient and, point by point, the
NTK norms), the compiled kernel against the reference (≤ 1e-12 float64), and the properties
the embeddings exist for (exact periodicity, the Fourier spectrum follows σ)."""
from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st

import pinncore as pc
from pinncore import reference as R
from pinncore.embedding import NetSpec, embedding_from_config
from pinncore.network import TermData, stream_plan
from conftest import all_derivs, assert_rel, points, tol

H = 1e-30  # complex step

KINDS = {
    "modified": lambda d: dict(arch="modified"),
    "fourier": lambda d: dict(embedding=pc.FourierFeatures(n_features=5, sigma=1.5, seed=3)),
    "fourier_multi_trainable_raw": lambda d: dict(embedding=pc.FourierFeatures(
        n_features=3, sigma=[0.5, 2.0], seed=1, trainable=True, include_inputs=True)),
    "periodic": lambda d: dict(embedding=pc.Periodic(inputs={d - 1: 2.0}, harmonics=3)),
    "fourier_trainable_modified": lambda d: dict(embedding=pc.FourierFeatures(
        n_features=4, sigma=1.0, seed=2, trainable=True), arch="modified"),
    "periodic_modified": lambda d: dict(embedding=pc.Periodic(inputs={0: 1.5}, harmonics=2), arch="modified"),
    "periodic_fourier": lambda d: dict(embedding=pc.Periodic(
        inputs={0: 1.5}, harmonics=2, fourier=pc.FourierFeatures(n_features=3, sigma=1.0, seed=5)) if d > 1
        else pc.Periodic(inputs={0: 1.5})),
}


def randomize(net, seed=0):
    """Non-trivial weights, biases and (trainable) frequencies, block by block of the layout."""
    rng = np.random.default_rng(seed)
    p = np.empty(net.n_params)
    for b in net.layout.blocks:
        sl = slice(b.offset, b.offset + b.size)
        if b.is_weight:
            p[sl] = rng.normal(0.0, np.sqrt(2.0 / sum(b.shape)), b.size)
        elif b.name == "B":  # the drawn frequencies, perturbed
            p[sl] = net.spec.B.ravel() * (1 + 0.1 * rng.normal(size=b.size))
        else:
            p[sl] = rng.normal(0.0, 0.5, b.size)
    net.params[:] = p.astype(net.dtype)
    return net


def make(layers, kind, dtype=np.float64, backend="cpp", seed=0):
    return randomize(pc.MLP(layers, dtype=dtype, backend=backend, **KINDS[kind](layers[0])), seed)


def term(x, derivs, scale, shift, dtype=np.float64):
    first, pairs, index = stream_plan(sorted(set(derivs), key=lambda m: (len(m), m)))
    return TermData.build(x, scale, shift, first, pairs, dtype), index


def complex_term(td, k, h):
    """The same term with x̂ moved by i·h·scale_k in input k (a complex step in x_k)."""
    xh = td.xhat.astype(np.complex128)
    xh[:, k] += 1j * h * td.scale[k]
    return TermData(xhat=xh, scale=td.scale, first=td.first, pairs=td.pairs)


# ------------------------------------------------------------------ the reference vs complex steps
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("d", [1, 2, 3])
def test_reference_jets_vs_complex_step_in_x(kind, d):
    """Every first- and second-order stream is the complex-step derivative of the one below it."""
    net = make([d, 6, 6, 2], kind, backend="numpy", seed=d)
    x = points(7, d, seed=d)
    s, b = np.linspace(0.7, 1.9, d), np.linspace(-0.3, 0.4, d)
    derivs = all_derivs(d)
    td, index = term(x, derivs, s, b)
    J = R.forward(net.params, net.spec, td)[0]
    pc_ = net.params.astype(np.complex128)
    for k in range(d):
        Jc = R.forward(pc_, net.spec, complex_term(td, k, H))[0]
        dJ = Jc.imag / H
        assert_rel(J[index[(k,)]], dJ[0], 1e-12, f"d/dx{k} of u")
        for i in range(d):
            assert_rel(J[index[tuple(sorted((i, k)))]], dJ[index[(i,)]], 1e-12, f"d/dx{k} of u_{i}")


@settings(max_examples=12, deadline=None)
@given(d=st.integers(1, 3), width=st.integers(1, 7), depth=st.integers(1, 3), m=st.integers(1, 2),
       n=st.integers(1, 6), seed=st.integers(0, 40), kind=st.sampled_from(list(KINDS)),
       which=st.lists(st.integers(0, 9), min_size=1, max_size=4))
def test_reference_backward_vs_complex_step(d, width, depth, m, n, seed, kind, which):
    """∇θ <adjoint, jets> equals the complex-step derivative; each point's squared norm equals
    the brute-force per-point gradient's (the Gram identity through gates and embeddings)."""
    layers = [d] + [width] * depth + [m]
    net = make(layers, kind, backend="numpy", seed=seed)
    x = points(n, d, seed=seed)
    allm = all_derivs(d)
    derivs = sorted({allm[k % len(allm)] for k in which}, key=lambda v: (len(v), v))
    td, _ = term(x, derivs, np.full(d, 1.3), np.full(d, 0.2))
    adj = np.random.default_rng(seed).normal(size=(td.S, n, m))
    _, cache = R.forward(net.params, net.spec, td)
    g, nrm = R.backward(net.params, net.spec, td, cache, adj, want_norms=True)
    per_point = np.empty((n, net.n_params))
    for k in range(net.n_params):
        p = net.params.astype(np.complex128)
        p[k] += 1j * H
        per_point[:, k] = (adj * R.forward(p, net.spec, td)[0].imag / H).sum(axis=(0, 2))
    cs = per_point.sum(axis=0)
    np.testing.assert_allclose(g, cs, rtol=1e-12, atol=1e-13 * (np.abs(cs).max() + 1e-300))
    np.testing.assert_allclose(nrm, (per_point ** 2).sum(axis=1), rtol=1e-12, atol=1e-300)


def test_finite_differences_agree_with_the_kernel():
    """An independent, cruder check of the compiled kernel alone: central differences in x."""
    net = make([2, 8, 8, 1], "fourier_trainable_modified", seed=5)
    x = points(6, 2, seed=5)
    J = net.jets(x, [(), (0,), (1,), (0, 1)])
    h = 1e-6
    e = np.array([0.0, h])
    dval = (net(x + e) - net(x - e)) / (2 * h)
    du0 = (net.jets(x + e, [(0,)])[0] - net.jets(x - e, [(0,)])[0]) / (2 * h)
    assert_rel(J[2], dval, 1e-7)
    assert_rel(J[3], du0, 1e-7)


# ------------------------------------------------------------------ the kernel vs the reference
def assert_parity(a, b, rtol, what, dtype):
    """C++ vs NumPy. float64: relative to the values' size. float32: both sides round O(1)
    intermediates at ~6e-8, so an output that cancels to ~1e-3 carries ~1e-7 absolute error on
    either side (found by hypothesis: a one-point modified net, 1.1e-3 ± 1.2e-7); compare it
    against a unit floor instead of its own size."""
    if np.dtype(dtype) != np.float32:
        assert_rel(a, b, rtol, what)
        return
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(float(np.max(np.abs(b), initial=0.0)), 1.0)
    err = float(np.max(np.abs(a - b), initial=0.0)) / scale
    assert err <= rtol, f"{what}: error {err:.3e} (relative to max(|b|, 1)) > {rtol:.1e}"


@settings(max_examples=25, deadline=None)
@example(d=1, width=12, depth=1, m=1, n=1, seed=58, kind="periodic_modified", dtype=np.float32, which=[0])
@given(d=st.integers(1, 4), width=st.integers(1, 20), depth=st.integers(1, 3), m=st.integers(1, 3),
       n=st.integers(0, 70), seed=st.integers(0, 100), kind=st.sampled_from(list(KINDS)),
       dtype=st.sampled_from([np.float64, np.float32]), which=st.lists(st.integers(0, 14), min_size=1, max_size=5))
def test_kernel_matches_reference(d, width, depth, m, n, seed, kind, dtype, which):
    """Jets, parameter gradients and per-point NTK norms: C++ = NumPy (1e-12 float64, 1e-5 float32)."""
    layers = [d] + [width] * depth + [m]
    a = make(layers, kind, dtype=dtype, seed=seed)
    b = pc.MLP(layers, dtype=dtype, backend="numpy", **KINDS[kind](d))
    b.params[:] = a.params
    x = points(n, d, seed=seed)
    allm = all_derivs(d)
    derivs = sorted({allm[k % len(allm)] for k in which}, key=lambda v: (len(v), v))
    kw = dict(scale=np.linspace(0.5, 2.0, d), shift=np.linspace(-0.5, 0.5, d))
    Ja, Jb = a.jets(x, derivs, **kw), b.jets(x, derivs, **kw)
    assert Ja.dtype == Jb.dtype == np.dtype(dtype) and Ja.shape == Jb.shape
    assert_parity(Ja, Jb, tol(dtype), "jets", dtype)
    adj = np.random.default_rng(seed).normal(size=Ja.shape)
    (ga, na), (gb, nb) = a.jets_vjp(x, derivs, adj, norms=True, **kw), b.jets_vjp(x, derivs, adj, norms=True, **kw)
    assert_parity(ga, gb, tol(dtype) * 10, "gradient", dtype)
    assert_parity(na, nb, tol(dtype) * 10, "norms", dtype)


@pytest.mark.parametrize("kind", list(KINDS))
def test_threads_deterministic_and_consistent(kind, threads_reset):
    """A fixed partition: bitwise repeatable per thread count, equal to rounding across counts."""
    net = make([2, 32, 32, 1], kind, seed=1)
    x = points(700, 2, seed=1)
    derivs = [(), (0,), (1, 1)]
    adj = np.random.default_rng(0).normal(size=(3, 700, 1))
    out = {}
    for n in (1, 2):
        pc.set_num_threads(n)
        out[n] = [net.jets_vjp(x, derivs, adj, norms=True) for _ in range(2)]
        np.testing.assert_array_equal(out[n][0][0], out[n][1][0])
        np.testing.assert_array_equal(out[n][0][1], out[n][1][1])
    assert_rel(out[2][0][0], out[1][0][0], 1e-12)
    assert_rel(out[2][0][1], out[1][0][1], 1e-12)


# ------------------------------------------------------------------ problem-level parity
def _problem():
    x = points(40, 2, seed=3, lo=0.0, hi=1.0)
    return pc.Problem(inputs=["t", "x"], outputs=["u"], domain={"t": (0.0, 1.0), "x": (0.0, 1.0)},
                      terms={"pde": pc.Term(points=x, residual=lambda x, u: u.tt - 4 * u.xx + u * u.x),
                             "ic": pc.Term(points=np.c_[np.zeros(9), np.linspace(0, 1, 9)],
                                           residual=lambda x, u: [u - pc.sin(np.pi * x.x), u.t])})


@pytest.mark.parametrize("kind", list(KINDS))
def test_problem_losses_gradients_ntk_parity(kind):
    p = _problem()
    a = make([2, 10, 10, 1], kind, seed=4)
    b = pc.MLP([2, 10, 10, 1], backend="numpy", **KINDS[kind](2))
    b.params[:] = a.params
    La, Ga, _ = p.value_and_grad(a)
    Lb, Gb, _ = p.value_and_grad(b)
    assert_rel(La, Lb, 1e-12, "losses")
    assert_rel(Ga, Gb, 1e-12, "gradients")
    na, nb = p.ntk_point_norms(a), p.ntk_point_norms(b)
    for k in na:
        assert_rel(na[k], nb[k], 1e-12, f"ntk norms {k}")


@pytest.mark.parametrize("kind", ["fourier_multi_trainable_raw", "periodic_modified"])
def test_ntk_norms_vs_brute_force_rows(kind):
    """tr K = Σ_i ‖∂r_i/∂θ‖² with each row ∂r_i/∂θ by complex steps through the reference."""
    p = _problem()
    net = make([2, 6, 6, 1], kind, backend="numpy", seed=2)
    res = p.residuals(net)
    norms = p.ntk_point_norms(net)
    rows = {k: np.zeros((v.shape[0], v.shape[1], net.n_params)) for k, v in res.items()}
    for j in range(net.n_params):
        q = net.copy()
        q._params = q._params.astype(np.complex128)
        q._params[j] += 1j * H
        for k, td in enumerate(p.lowering.data(np.float64)):
            name = p.term_names[k]
            J = R.forward(q._params, net.spec, td)[0]
            rows[name][:, :, j] = R.table_residuals(td, J).imag / H
    for name in rows:
        assert_rel(norms[name], (rows[name] ** 2).sum(axis=(0, 2)), 1e-11, name)


# ------------------------------------------------------------------ properties
@pytest.mark.parametrize("backend", ["cpp", "numpy"])
@pytest.mark.parametrize("arch", ["plain", "modified"])
@pytest.mark.parametrize("fourier", [None, pc.FourierFeatures(n_features=6, sigma=2.0, seed=1)])
def test_periodic_is_exactly_periodic(backend, arch, fourier):
    """u, u_x, u_xx (and mixed) at x and x + kL agree to rounding, with a Problem-like scaling
    (x̂ = s x + b is periodic with period L̂ = 1.4, so x has period L = L̂/s)."""
    L = 1.4 / (2 / 3.0)
    net = randomize(pc.MLP([2, 16, 16, 1], backend=backend, arch=arch,
                           embedding=pc.Periodic(inputs={1: 1.4}, harmonics=4, fourier=fourier)), seed=3)
    x = points(25, 2, seed=4)
    kw = dict(scale=[2.0, 2 / 3.0], shift=[-1.0, -0.4])
    derivs = all_derivs(2)
    J0 = net.jets(x, derivs, **kw)
    for k in (1, -2, 5):
        Jk = net.jets(x + [0.0, k * L], derivs, **kw)
        assert_rel(Jk, J0, 1e-12 * (1 + abs(k)), f"shift {k}L")
    Jh = net.jets(x + [0.0, L / 2], derivs, **kw)
    assert np.abs(Jh - J0).max() > 1e-3 * np.abs(J0).max()   # half a period is not a period


def test_fourier_spectrum_follows_sigma():
    """Each feature cos(2π b·x̂) along a line x̂ = t·e has its spectral peak at |b| cycles per
    unit, and the rows of B have standard deviation σ (two scales, 400 rows each)."""
    ff = pc.FourierFeatures(n_features=400, sigma=[1.0, 4.0], seed=7)
    B = ff.frequencies(1)[:, 0]
    for part, sigma in ((B[:400], 1.0), (B[400:], 4.0)):
        assert abs(part.std() / sigma - 1) < 0.12, (part.std(), sigma)
    net = pc.MLP([1, 1, 1], embedding=ff, backend="numpy")
    n, T = 4096, 64.0
    t = (np.arange(n) * T / n)[:, None]
    td, _ = term(t, [()], np.ones(1), np.zeros(1))
    E, _ = R.embed_forward(net.spec, net.params, td)
    spec = np.abs(np.fft.rfft(E[0, :, :800], axis=0))
    peaks = np.fft.rfftfreq(n, d=T / n)[np.argmax(spec, axis=0)]
    np.testing.assert_allclose(peaks, np.abs(B), atol=1.0 / T)


def test_layout_plain_unchanged_and_blocks():
    """A plain MLP keeps its seed-for-seed parameters; the extra blocks come after the chain."""
    a = pc.MLP([2, 5, 3, 1], seed=3)
    rng = np.random.default_rng(3)
    ref = np.concatenate([np.r_[rng.normal(0, np.sqrt(2 / 7), 10), np.zeros(5)],
                          np.r_[rng.normal(0, np.sqrt(2 / 8), 15), np.zeros(3)],
                          np.r_[rng.normal(0, np.sqrt(2 / 4), 3), np.zeros(1)]])
    np.testing.assert_array_equal(a.params, ref)
    m = pc.MLP([2, 5, 5, 1], seed=3, arch="modified",
               embedding=pc.FourierFeatures(n_features=4, sigma=1.0, trainable=True))
    names = [b.name for b in m.layout.blocks]
    assert names == ["W0", "b0", "W1", "b1", "W2", "b2", "Wu", "bu", "Wv", "bv", "B"]
    assert m.spec.dense == [8, 5, 5, 1]
    assert m.n_params == 8 * 5 + 5 + 30 + 6 + 2 * (8 * 5 + 5) + 8
    np.testing.assert_array_equal(m.spec.views(m.params)["B"], m.spec.B)
    mask = m.weight_mask()
    assert mask.sum() == 40 + 25 + 5 + 80 and mask.size == m.n_params
    assert not mask[-8:].any()


def test_modified_with_equal_gates_is_a_gated_constant():
    """With W_u = W_v, b_u = b_v the gate gives h = U whatever z is: every hidden layer's
    output is U, so u = W_L U + b_L (checks the gate wiring end to end)."""
    net = make([2, 6, 6, 6, 1], "modified", backend="cpp", seed=9)
    blk = net.spec.views(net.params)
    blk["Wv"][...] = blk["Wu"]
    blk["bv"][...] = blk["bu"]
    x = points(10, 2, seed=1)
    U = np.tanh(x @ blk["Wu"].T + blk["bu"])
    np.testing.assert_allclose(net(x), U @ blk["W3"].T + blk["b3"], rtol=1e-13, atol=1e-14)


# ------------------------------------------------------------------ files, copies, errors
@pytest.mark.parametrize("kind", list(KINDS))
def test_save_load_copy_roundtrip(kind):
    net = make([2, 7, 7, 1], kind, seed=6)
    x = points(5, 2, seed=6)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "net.pcn")
        net.save(path)
        back = pc.MLP.load(path)
    assert back.arch == net.arch and repr(back) == repr(net)
    np.testing.assert_array_equal(back.params, net.params)
    np.testing.assert_array_equal(back(x), net(x))
    cp = net.copy()
    np.testing.assert_array_equal(cp.derivatives(x).hess, net.derivatives(x).hess)
    cp.params[0] += 1.0
    assert net.params[0] != cp.params[0]


def test_saved_frequencies_are_used_and_checked():
    net = pc.MLP([1, 4, 1], embedding=pc.FourierFeatures(n_features=3, seed=1))
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "net.pcn")
        from pinncore import io
        net.spec.B[...] *= 2  # a file carries its own B, not a regenerated one
        net.save(path)
        np.testing.assert_array_equal(pc.MLP.load(path).spec.B, net.spec.B)
        tree = io.load(path, kind="pinncore.mlp")
        tree["embedding_B"] = np.zeros((2, 1))
        io.save(path, tree, kind="pinncore.mlp")
        with pytest.raises(io.FormatError, match="embedding_B"):
            pc.MLP.load(path)


def test_config_roundtrip():
    for emb in (pc.FourierFeatures(8, [1.0, 2.0], seed=4, trainable=True), pc.Periodic({0: 1.0, 2: 3.5}, 2),
                pc.Periodic({1: 2.0}, 3, fourier=pc.FourierFeatures(4, [1.0, 5.0], seed=2))):
        assert repr(embedding_from_config(emb.config())) == repr(emb)
    with pytest.raises(ValueError, match="invalid embedding config"):
        embedding_from_config({"kind": "fourier", "n_features": -1})


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(arch="resnet"), ValueError, "arch must be one of"),
    (dict(arch="modified", layers=[2, 4, 5, 1]), ValueError, "equal hidden widths"),
    (dict(arch="modified", layers=[2, 1]), ValueError, "at least one hidden layer"),
    (dict(embedding="fourier"), TypeError, "embedding must be"),
    (dict(embedding=pc.Periodic({2: 1.0})), ValueError, "out of range"),
])
def test_bad_network_arguments(kwargs, exc, match):
    layers = kwargs.pop("layers", [2, 4, 4, 1])
    with pytest.raises(exc, match=match):
        pc.MLP(layers, **kwargs)


@pytest.mark.parametrize("make_bad, exc, match", [
    (lambda: pc.FourierFeatures(n_features=0), ValueError, "n_features"),
    (lambda: pc.FourierFeatures(sigma=-1.0), ValueError, "sigma"),
    (lambda: pc.FourierFeatures(sigma=[]), ValueError, "sigma"),
    (lambda: pc.FourierFeatures(sigma="1"), TypeError, "sigma"),
    (lambda: pc.FourierFeatures(seed=-2), ValueError, "seed"),
    (lambda: pc.FourierFeatures(trainable=1), TypeError, "trainable"),
    (lambda: pc.Periodic([1.0]), TypeError, "inputs"),
    (lambda: pc.Periodic({0: 0.0}), ValueError, "period"),
    (lambda: pc.Periodic({-1: 1.0}), ValueError, "input index"),
    (lambda: pc.Periodic({0: 1.0}, harmonics=0), ValueError, "harmonics"),
    (lambda: pc.Periodic({0: 1.0}, fourier=3), TypeError, "fourier"),
    (lambda: pc.Periodic({0: 1.0}, fourier=pc.FourierFeatures(trainable=True)), ValueError, "trainable"),
    (lambda: pc.MLP([1, 4, 1], embedding=pc.Periodic({0: 1.0}, fourier=pc.FourierFeatures(4))), ValueError,
     "non-periodic input"),
])
def test_bad_embedding_arguments(make_bad, exc, match):
    with pytest.raises(exc, match=match):
        make_bad()


def test_periodic_for_problem_converts_periods():
    p = pc.problems.klein_gordon(n_collocation=8, n_ic=2, n_bc=2)     # x in [-1, 1], t in [0, 1]
    emb = pc.Periodic.for_problem(p, {"x": 2.0, "t": 0.5}, harmonics=3)
    assert emb.inputs == {0: 1.0, 1: 2.0} and emb.harmonics == 3
    with pytest.raises(ValueError, match="unknown input 'y'"):
        pc.Periodic.for_problem(p, {"y": 1.0})


# ------------------------------------------------------------------ training end to end
@pytest.mark.parametrize("kind", ["fourier_trainable_modified", "periodic"])
def test_train_resume_exact(kind, tmp_path):
    """Adam with checkpoints: resuming from the saved state reproduces the uninterrupted run."""
    p = _problem()
    net = make([2, 8, 8, 1], kind, seed=1)
    full = pc.train(p, net, steps=30, lr=3e-3, log_every=10, warn=False, weighting=pc.Fixed())
    ck = str(tmp_path / "state.pcs")
    pc.train(p, net, steps=20, lr=3e-3, log_every=10, warn=False, checkpoint=ck, weighting=pc.Fixed())
    resumed = pc.train(p, None, steps=10, lr=3e-3, log_every=10, warn=False, resume=ck, weighting=pc.Fixed())
    assert resumed.net.arch == net.arch and repr(resumed.net.embedding) == repr(net.embedding)
    np.testing.assert_array_equal(resumed.net.params, full.net.params)
    assert full.history["total_loss"][-1] < full.history["total_loss"][0]


@pytest.mark.parametrize("sigma, span", [(1.0, 1.0), (30.0, 50.0), (3000.0, 50.0)])
def test_kernel_sincos_matches_libm(sigma, span):
    """The kernel's vectorised sin/cos (Cody–Waite + Cephes, libm past |a| = 1e5) equals NumPy's
    to rounding, special angles included: read the features through a [1, 1] net, W = e_m."""
    net = pc.MLP([1, 1], embedding=pc.FourierFeatures(n_features=16, sigma=sigma, seed=3))
    om = 2 * np.pi * net.spec.B
    x = np.random.default_rng(0).uniform(-span, span, (600, 1))
    x[:9, 0] = np.array([0.0, np.pi / 4, np.pi / 2, -np.pi / 2, np.pi, 1e-300, 3 * np.pi / 4, 2 * np.pi, -7.0]) / om[0, 0]
    a = x @ om.T
    got = np.empty((600, 32))
    for m in range(32):
        net.params[:] = 0.0
        net.params[m] = 1.0
        got[:, m] = net(x)[:, 0]
    np.testing.assert_allclose(got, np.c_[np.cos(a), np.sin(a)], rtol=0, atol=4e-16)


def test_weighting_mask_and_gradnorm_use_the_layout():
    """GradNorm reads weight-matrix blocks through the network's own mask (not layers)."""
    from pinncore import weighting
    net = make([2, 6, 6, 1], "fourier_trainable_modified", seed=3)
    np.testing.assert_array_equal(weighting.weight_mask(net), net.weight_mask())
    r = pc.train(_problem(), net, steps=20, weighting=pc.GradNorm(), warn=False, log_every=10)
    assert r.status == "completed" and np.isfinite(r.history["total_loss"]).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_library_problems_with_embeddings(dtype):
    """The new library problems run with every architecture; periodic advection without a
    boundary term is exactly 2π-periodic in x, so its boundary residual vanishes identically."""
    adv = pc.problems.advection(n_collocation=64, n_ic=16, n_bc=16, bc="none")
    net = pc.MLP([2, 12, 12, 1], dtype=dtype, arch="modified",
                 embedding=pc.Periodic.for_problem(adv, {"x": 2 * np.pi}, harmonics=2))
    r = pc.train(adv, net, steps=30, lr=3e-3, warn=False, log_every=10)
    assert r.history["total_loss"][-1] < r.history["total_loss"][0]
    t = np.linspace(0, 1, 7)
    u0, u1 = adv.predict(r.net, np.c_[t, np.zeros(7)]), adv.predict(r.net, np.c_[t, np.full(7, 2 * np.pi)])
    assert np.abs(u0).max() > 1e-3
    np.testing.assert_allclose(u1, u0, rtol=0, atol=tol(dtype) * 10)
    kg = pc.problems.klein_gordon(n_collocation=64, n_ic=16, n_bc=16)
    r = pc.train(kg, pc.MLP([2, 12, 12, 1], dtype=dtype, embedding=pc.FourierFeatures(8, 1.0)), steps=30,
                 lr=3e-3, warn=False, log_every=10)
    assert r.history["total_loss"][-1] < r.history["total_loss"][0]


@pytest.mark.parametrize("kind", list(KINDS))
def test_chunk_boundaries(kind):
    """Small chunks (5 points) give the same jets, gradients and norms as one big chunk."""
    net = make([2, 9, 9, 1], kind, seed=8)
    x = points(23, 2, seed=8)
    derivs = [(), (0,), (0, 1), (1, 1)]
    adj = np.random.default_rng(8).normal(size=(4, 23, 1))
    want = net.jets(x, derivs), *net.jets_vjp(x, derivs, adj, norms=True)
    net.backend.model.chunk_points = 5
    got = net.jets(x, derivs), *net.jets_vjp(x, derivs, adj, norms=True)
    for a, b in zip(got, want):
        assert_rel(a, b, 1e-13)


@pytest.mark.parametrize("kind", ["fourier_trainable_modified", "periodic_fourier"])
def test_residual_jacobian_and_lm_with_embeddings(kind):
    """The residual Jacobian (LM) of an embedded / modified net: its squared row norms equal the
    kernel's Gram-identity NTK norms (two independent paths), ‖r‖² is the loss, and LM trains."""
    p = _problem()
    net = make([2, 6, 6, 1], kind, seed=4)
    r, J = p.residual_jacobian(net)
    assert J.shape == (r.size, net.n_params)
    L = p.losses(net)
    assert float(r @ r) == pytest.approx(sum(L.values()), rel=1e-12)
    ntk = p.ntk_point_norms(net)
    n_pde = p.terms["pde"].points.shape[0]
    assert_rel((J[:n_pde] ** 2).sum(axis=1) * n_pde, ntk["pde"], 1e-10, "pde rows")
    res = pc.train(p, net, optimizer="lm", steps=5, weighting=pc.Fixed(), warn=False, log_every=1)
    assert res.history["total_loss"][-1] < res.history["total_loss"][0]
