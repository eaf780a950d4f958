"""The residual Jacobian (pinncore/jacobian.py, csrc/jacobian.hpp): J against finite
differences and the NumPy twin, row norms against the NTK diagonal (an independent path: the
Gram identity), Gram products and matrix-free products against the explicit J, threads."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import pinncore as pc
from pinncore.jacobian import ResidualJacobian, term_weights
from pinncore.reference import forward, forward_tangent

from conftest import (DTYPES, assert_rel, burgers_case, fallback_case, hard_case, harmonic_case, mixed_case,
                      net_pair, randomize, source_case, tol, two_output_case)

CASES = {"harmonic": harmonic_case, "burgers": burgers_case, "mixed": mixed_case, "two_output": two_output_case,
         "hard": hard_case, "source": source_case, "fallback": fallback_case}


def _weights(problem, seed=0):
    """Non-trivial λ per term and per-point weights w_i for every other term."""
    rng = np.random.default_rng(seed)
    lam = {k: float(v) for k, v in zip(problem.term_names, rng.uniform(0.5, 5.0, len(problem.term_names)))}
    pw = [rng.uniform(0.2, 3.0, n) if a % 2 == 0 else None for a, n in enumerate(problem.n_points.values())]
    return lam, pw


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(CASES))
def test_jacobian_matches_numpy_twin(name, dtype):
    case = CASES[name]()
    cpp, ref = net_pair(case.layers, dtype)
    lam, pw = _weights(case.problem)
    r, J = case.problem.residual_jacobian(cpp, weights=lam, point_weights=pw)
    rn, Jn = case.problem.residual_jacobian(ref, weights=lam, point_weights=pw)
    assert J.dtype == np.dtype(dtype) and J.shape == Jn.shape == (r.size, cpp.n_params)
    assert_rel(r, rn, tol(dtype), "r")
    assert_rel(J, Jn, tol(dtype), "J")


@pytest.mark.parametrize("name", sorted(CASES))
def test_jacobian_matches_finite_differences(name):
    case = CASES[name]()
    net, _ = net_pair(case.layers)
    lam, pw = _weights(case.problem, seed=1)
    jac = ResidualJacobian(case.problem, net, lam, pw)
    r, J = jac.linearize().dense()
    p0, eps = net.params.copy(), 1e-6
    Jfd = np.empty_like(J)
    for k in range(net.n_params):
        e = np.zeros_like(p0)
        e[k] = eps
        Jfd[:, k] = (jac.linearize(p0 + e).r - jac.linearize(p0 - e).r) / (2 * eps)
    assert_rel(J, Jfd, 1e-7, "J vs central differences")


@pytest.mark.parametrize("name", sorted(CASES))
def test_squared_residuals_are_the_weighted_loss(name):
    case = CASES[name]()
    net, _ = net_pair(case.layers)
    lam, pw = _weights(case.problem, seed=2)
    r, _ = case.problem.residual_jacobian(net, weights=lam, point_weights=pw)
    L, _, _ = case.problem.value_and_grad(net, point_weights=pw)
    total = sum(lam[k] * L[a] for a, k in enumerate(case.problem.term_names))
    assert abs(float(r @ r) - total) <= 1e-12 * total


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(CASES))
def test_row_norms_equal_ntk_point_norms(name, dtype):
    """Σ_c ‖∂r_c,i/∂θ‖² from the explicit rows (unweighted: scale 1/√N) against the Gram identity."""
    case = CASES[name]()
    net, _ = net_pair(case.layers, dtype)
    jac = ResidualJacobian(case.problem, net)
    _, J = jac.linearize().dense()
    ntk = case.problem.ntk_point_norms(net)
    J64 = J.astype(np.float64)
    for term, row, C, n in jac.blocks:
        rows = (J64[row:row + C * n] ** 2).sum(axis=1).reshape(C, n).sum(axis=0) * n
        assert_rel(rows, ntk[term], 10 * tol(dtype), f"row norms of {term}")


@pytest.mark.parametrize("name", ["burgers", "two_output", "fallback"])
def test_gram_products_match_explicit_J(name):
    case = CASES[name]()
    net, _ = net_pair(case.layers)
    lam, pw = _weights(case.problem, seed=3)
    lin = ResidualJacobian(case.problem, net, lam, pw).linearize()
    r, J = lin.dense()
    # A tiny chunk forces several point chunks per term (and a ragged last one).
    A, g = lin.gram("JtJ", chunk_bytes=3 * 8 * net.n_params)
    assert_rel(A, J.T @ J, 1e-13, "JᵀJ")
    assert np.array_equal(A, A.T)
    assert_rel(g, J.T @ r, 1e-13, "Jᵀr")
    K, J2 = lin.gram("JJt")
    assert_rel(K, J @ J.T, 1e-13, "JJᵀ")
    assert np.array_equal(J2, J)
    A2, g2 = case.problem.gauss_newton(net, weights=lam, point_weights=pw)
    assert_rel(A2, A, 1e-13, "gauss_newton JtJ")
    K2, r2 = case.problem.gauss_newton(net, weights=lam, point_weights=pw, kind="JJt")
    assert_rel(K2, K, 1e-13, "gauss_newton JJt")
    assert_rel(r2, r, 1e-15, "gauss_newton r")


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_matrix_free_products_match_dense(name, backend):
    case = CASES[name]()
    cpp, ref = net_pair(case.layers)
    net = cpp if backend == "cpp" else ref
    lam, pw = _weights(case.problem, seed=4)
    lin = ResidualJacobian(case.problem, net, lam, pw).linearize()
    _, J = lin.dense()
    rng = np.random.default_rng(5)
    v, u = rng.standard_normal(net.n_params), rng.standard_normal(J.shape[0])
    assert_rel(lin.matvec(v), J @ v, 1e-13, "J v")
    assert_rel(lin.rmatvec(u), J.T @ u, 1e-13, "Jᵀ u")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["harmonic", "burgers", "mixed", "two_output"])
def test_jet_tangents_match_complex_step(name, dtype):
    """Forward tangents of the output jets (C++ and the NumPy twin) against the complex-step
    derivative of the NumPy forward pass (exact to rounding: no subtraction)."""
    case = CASES[name]()
    cpp, ref = net_pair(case.layers, dtype)
    td = case.problem.lowering.data(dtype)[0]
    v = np.random.default_rng(6).standard_normal(cpp.n_params).astype(dtype)
    jets, tan = cpp.backend.jets_tangent(cpp.params, td, v)
    jets_n, tan_n = ref.backend.jets_tangent(ref.params, td, v)
    h = 1e-30
    td_c = case.problem.lowering.data(np.float64)[0]
    cs = forward(cpp.params.astype(np.complex128) + 1j * h * v.astype(np.float64), case.layers, td_c)[0].imag / h
    assert_rel(tan_n, cs, tol(dtype), "NumPy tangents vs complex step")
    assert_rel(tan, cs, tol(dtype), "C++ tangents vs complex step")
    assert_rel(jets, jets_n, tol(dtype), "jets")
    assert_rel(forward_tangent(ref.params, case.layers, td, v)[1], tan_n, 0.0, "forward_tangent")


def test_threads_are_bitwise_reproducible(threads_reset):
    case = harmonic_case(n=64, hidden=(50, 50, 50))  # large enough for the kernel to use threads
    net, _ = net_pair(case.layers)
    jac = ResidualJacobian(case.problem, net, {"ic": 100.0})
    r1, J1 = jac.linearize().dense()
    v = np.random.default_rng(7).standard_normal(net.n_params)
    jv1 = jac.linearize().matvec(v)
    pc.set_num_threads(2)
    r2, J2 = jac.linearize().dense()
    r3, J3 = jac.linearize().dense()
    jv2 = jac.linearize().matvec(v)
    assert np.array_equal(J1, J2) and np.array_equal(J2, J3) and np.array_equal(r1, r2)
    assert np.array_equal(jv1, jv2)
    rows = jac.linearize().block(0, 5, 37)
    assert np.array_equal(rows, J1[5:37])


def test_dense_into_given_storage():
    case = burgers_case()
    net, _ = net_pair(case.layers)
    lin = ResidualJacobian(case.problem, net).linearize()
    _, J = lin.dense()
    out = np.full_like(J, np.nan)
    _, J2 = lin.dense(out=out)
    assert J2 is out and np.array_equal(out, J)
    with pytest.raises(ValueError, match="out must be"):
        lin.dense(out=np.zeros((J.shape[0], J.shape[1] + 1)))


def test_bad_arguments_are_named():
    case = harmonic_case()
    net, _ = net_pair(case.layers)
    p = case.problem
    with pytest.raises(ValueError, match="unknown terms"):
        p.residual_jacobian(net, weights={"nope": 1.0})
    with pytest.raises(ValueError, match=r"weights\['ic'\] must be finite and >= 0"):
        p.residual_jacobian(net, weights={"ic": -1.0})
    with pytest.raises(TypeError, match=r"weights\['pde'\] must be a real number"):
        p.residual_jacobian(net, weights=["a", 1.0])
    with pytest.raises(ValueError, match="one entry per term"):
        p.residual_jacobian(net, weights=[1.0])
    with pytest.raises(ValueError, match=r"point_weights\[0\].*>= 0"):
        p.residual_jacobian(net, point_weights=[-np.ones(12), None])
    with pytest.raises(ValueError, match="point_weights"):
        p.residual_jacobian(net, point_weights=[np.ones(3), None])
    with pytest.raises(TypeError, match="net must be a pc.MLP"):
        p.residual_jacobian("net")
    lin = ResidualJacobian(p, net).linearize()
    with pytest.raises(ValueError, match="v must have shape"):
        lin.matvec(np.ones(3))
    with pytest.raises(ValueError, match="u must have shape"):
        lin.rmatvec(np.ones(3))
    with pytest.raises(ValueError, match="kind must be one of"):
        lin.gram("JJ")
    with pytest.raises(ValueError, match="what must be one of"):
        ResidualJacobian(p, net).nbytes("K")


def test_term_weights_and_dict_point_weights():
    assert term_weights(None, ["a", "b"]).tolist() == [1.0, 1.0]
    assert term_weights([2, 3.5], ["a", "b"]).tolist() == [2.0, 3.5]
    case = burgers_case()
    net, _ = net_pair(case.layers)
    w = np.linspace(0.5, 2.0, 6)
    r1, J1 = case.problem.residual_jacobian(net, point_weights={"ic": w})
    r2, J2 = case.problem.residual_jacobian(net, point_weights=[None, w, None])
    assert np.array_equal(r1, r2) and np.array_equal(J1, J2)


# ------------------------------------------------------------------ normal equations (JᵀJ, Jᵀr)
# Linearization.normal: JᵀJ and Jᵀr accumulated by the kernel over point chunks (one BLAS syrk
# per chunk, csrc/jacobian.hpp Jacobian::normal), J never held.

def _periodic_pde_problem():
    """A paired (periodic) term beside a polynomial PDE: rows that are pair differences."""
    import pinncore.geometry as geo
    from pinncore import conditions as bc
    box = geo.Box([0, -1], [1, 1])
    lo, hi = box.sample_face(9, 1, "lo", seed=0), box.sample_face(9, 1, "hi", seed=0)
    return pc.Problem(["t", "x"], ["u"], domain={"t": (0, 1), "x": (-1, 1)},
                      terms={"pde": pc.Term(box.sample_interior(13, seed=1), lambda x, u: u.t + u * u.x - u.xx),
                             "per": bc.periodic(lo, hi, derivatives=["x"])})


ARCHS = {"plain": {}, "modified": dict(arch="modified"),
         "fourier_trainable": dict(embedding=pc.FourierFeatures(n_features=3, sigma=1.0, seed=2, trainable=True)),
         "periodic_modified": dict(embedding=pc.Periodic(inputs={1: 2.0}, harmonics=2), arch="modified")}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(CASES))
def test_normal_equations_match_numpy_twin_and_explicit_J(name, dtype):
    case = CASES[name]()
    cpp, ref = net_pair(case.layers, dtype)
    lam, pw = _weights(case.problem, seed=6)
    lin = ResidualJacobian(case.problem, cpp, lam, pw).linearize()
    rn, Jn = ResidualJacobian(case.problem, ref, lam, pw).linearize().dense()
    Jn, rn = Jn.astype(np.float64), rn.astype(np.float64)
    for chunk in (1, 2, 5, 10 ** 6):   # every chunk boundary case: one row, ragged, all
        A, g, rr = lin.normal(chunk_rows=chunk)
        assert A.dtype == np.float64 and np.array_equal(A, A.T)
        assert_rel(A, Jn.T @ Jn, tol(dtype), f"JᵀJ vs the NumPy twin (chunk {chunk})")
        assert_rel(g, Jn.T @ rn, tol(dtype), f"Jᵀr vs the NumPy twin (chunk {chunk})")
        assert abs(rr - rn @ rn) <= tol(dtype) * (rn @ rn) + 1e-300
    r, J = lin.dense()
    J64, r64 = J.astype(np.float64), r.astype(np.float64)
    A, g, rr = lin.normal(chunk_rows=3)
    assert_rel(A, J64.T @ J64, 1e-13 if dtype == np.float64 else 1e-6, "JᵀJ vs explicit J")
    assert_rel(g, J64.T @ r64, 1e-13 if dtype == np.float64 else 1e-6, "Jᵀr vs explicit J")
    assert np.array_equal(lin.r, r)   # the pass's own residuals are the dense pass's


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_embedded_and_modified_rows_come_from_the_kernel(arch):
    """Rows, JᵀJ and Jᵀr of embedded / modified nets through the kernel (no NumPy twin built)
    against the twin and central differences, with a paired (periodic) term."""
    problem = _periodic_pde_problem()
    kw = ARCHS[arch]
    cpp = pc.MLP([2, 5, 5, 1], seed=3, **kw)
    cpp.params[:] = np.random.default_rng(4).normal(0, 0.6, cpp.n_params)
    ref = pc.MLP([2, 5, 5, 1], seed=3, backend="numpy", **kw)
    ref.params[:] = cpp.params
    jac = ResidualJacobian(problem, cpp, {"per": 3.0})
    lin = jac.linearize()
    r, J = lin.dense()
    rn, Jn = ResidualJacobian(problem, ref, {"per": 3.0}).linearize().dense()
    assert_rel(r, rn, 1e-12, "r")
    assert_rel(J, Jn, 1e-12, "J")
    A, g, rr = lin.normal(chunk_rows=4)
    assert_rel(A, Jn.T @ Jn, 1e-12, "JᵀJ")
    assert_rel(g, Jn.T @ rn, 1e-12, "Jᵀr")
    assert getattr(cpp.backend, "_ref", None) is None   # never fell back to the twin
    p0, eps = cpp.params.copy(), 1e-6
    cols = np.random.default_rng(0).choice(cpp.n_params, 12, replace=False)
    for k in cols:
        e = np.zeros_like(p0)
        e[k] = eps
        fd = (jac.linearize(p0 + e).r - jac.linearize(p0 - e).r) / (2 * eps)
        assert_rel(J[:, k], fd, 1e-6, f"column {k} vs central differences")


def test_normal_equations_extra_columns():
    """Columns appended after θ (unknown coefficients): the blocks of [J E]ᵀ[J E] and [J E]ᵀr."""
    case = burgers_case()
    net, _ = net_pair(case.layers)
    lin = ResidualJacobian(case.problem, net).linearize()
    r, J = lin.dense()
    E = np.random.default_rng(1).standard_normal((J.shape[0], 2))
    A, g, rr = lin.normal(extra=E, chunk_rows=7)
    JE = np.hstack([J, E])
    assert A.shape == (net.n_params + 2,) * 2
    assert_rel(A, JE.T @ JE, 1e-13, "[J E]ᵀ[J E]")
    assert_rel(g, JE.T @ r, 1e-13, "[J E]ᵀr")
    assert_rel(rr, r @ r, 1e-14, "rᵀr")


@settings(max_examples=15, deadline=None)
@given(width=st.integers(1, 9), depth=st.integers(1, 3), n=st.integers(1, 23), chunk=st.integers(1, 60),
       n_extra=st.integers(0, 2), seed=st.integers(0, 10 ** 6))
def test_normal_equations_property(width, depth, n, chunk, n_extra, seed):
    """Any shape, point count and chunk size (chunk boundaries inside, at and past the term
    ends; chunks smaller than a point's components): the explicit [J E]ᵀ[J E] and [J E]ᵀr."""
    case = burgers_case(n=n, seed=seed % 97)
    net = randomize(pc.MLP([2] + [width] * depth + [1], seed=seed % 13), seed=seed)
    lin = ResidualJacobian(case.problem, net, {"ic": 2.5}).linearize()
    r, J = lin.dense()
    E = np.random.default_rng(seed).standard_normal((J.shape[0], n_extra)) if n_extra else None
    A, g, rr = lin.normal(extra=E, chunk_rows=chunk)
    JE = J if E is None else np.hstack([J, E])
    assert_rel(A, JE.T @ JE, 1e-13, "JᵀJ")
    assert_rel(g, JE.T @ r, 1e-13, "Jᵀr")


def test_normal_equations_bad_buffers_are_named():
    case = harmonic_case()
    net, _ = net_pair(case.layers)
    lin = ResidualJacobian(case.problem, net).linearize()
    P = net.n_params
    with pytest.raises(ValueError, match=r"A must be a writeable C-contiguous float64 array of shape"):
        lin.normal(A=np.zeros((P, P + 1)))
    with pytest.raises(ValueError, match="A must be"):
        lin.normal(A=np.zeros((P, P), dtype=np.float32))
    with pytest.raises(ValueError, match="A must be"):
        lin.normal(A=np.zeros((P, P), order="F")[:, :])      # Fortran order: not written in place
    ro = np.zeros((P, P))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="A must be"):
        lin.normal(A=ro)
    with pytest.raises(ValueError, match=r"g must be .* shape \(%d,\)" % P):
        lin.normal(g=np.zeros(P + 1))
    with pytest.raises(ValueError, match="extra must be a 2-D array with one row per residual"):
        lin.normal(extra=np.zeros((3, 1)))
    with pytest.raises(ValueError, match="chunk_rows must be an integer >= 1"):
        lin.normal(chunk_rows=0)
    # the kernel's own guard (memory safety), reached through the backend
    be, jac = net.backend, lin.jac
    src = [(jac.data[a], jac.scales[a], None, 0, None, None) for a in range(len(jac.blocks))]
    A, g = np.zeros((P, P)), np.zeros(P)
    bad_scale = [(jac.data[0], jac.scales[0][:-1], None, 0, None, None)] + src[1:]
    with pytest.raises(ValueError, match=r"scales\[0\] must be \(N,\)"):
        be.normal_equations(lin.params, bad_scale, A, g)
    with pytest.raises(ValueError, match=r"paired\[0\] must be 0 or half"):
        be.normal_equations(lin.params, [src[0][:3] + (5,) + src[0][4:]] + src[1:], A, g)
    with pytest.raises(ValueError, match=r"extras\[1\] must be \(rows, n_extra\)"):
        be.normal_equations(lin.params, src[:1] + [src[1][:5] + (np.zeros((7, 1)),)], np.zeros((P + 1, P + 1)),
                            np.zeros(P + 1), n_extra=1)
    adj = np.zeros((1, 2, 3, 1))
    with pytest.raises(ValueError, match=r"adjoints\[0\] must be \(K, streams, N, outputs\)"):
        be.normal_equations(lin.params, [(jac.data[0], None, adj, 0, np.zeros((1, 3)), None)], A, g)
    with pytest.raises(ValueError, match=r"r_out must be"):
        be.normal_equations(lin.params, src, A, g, r_out=np.zeros(3))


def test_normal_equations_bitwise_across_kernel_threads(threads_reset):
    """The rows are the same arithmetic on any thread count and the chunks are folded in a
    fixed order, so JᵀJ and Jᵀr are bitwise equal on 1 and 2 kernel threads (the BLAS pool is
    capped at one thread throughout, as LM does while on one kernel thread)."""
    from pinncore import backend
    case = harmonic_case(n=600, hidden=(50, 50, 50))   # chunks large enough for the kernel to thread
    net, _ = net_pair(case.layers)
    jac = ResidualJacobian(case.problem, net, {"ic": 7.0})
    with backend.blas_threads():   # one thread: set before the block
        A1, g1, rr1 = jac.linearize().normal(chunk_rows=250)
        pc.set_num_threads(2)
        A2, g2, rr2 = jac.linearize().normal(chunk_rows=250)
    assert np.array_equal(A1, A2) and np.array_equal(g1, g2) and rr1 == rr2
