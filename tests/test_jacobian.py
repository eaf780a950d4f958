"""The residual Jacobian (pinncore/jacobian.py, csrc/jacobian.hpp): J against finite
differences and the NumPy twin, row norms against the NTK diagonal (an independent path: the
Gram identity), Gram products and matrix-free products against the explicit J, threads."""
from __future__ import annotations

import numpy as np
import pytest

import pinncore as pc
from pinncore.jacobian import ResidualJacobian, term_weights
from pinncore.reference import forward, forward_tangent

from conftest import (DTYPES, assert_rel, burgers_case, fallback_case, hard_case, harmonic_case, mixed_case,
                      net_pair, source_case, tol, two_output_case)

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
