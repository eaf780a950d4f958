"""Shared helpers for the kernel / reference / problem tests.

Everything here is deliberately independent of the code under test where it matters:
problems are built inline (``pinncore.problems`` is not used), the hand residuals are plain
NumPy functions of the physical jets, and the brute-force per-point Jacobian rows are made
from the *network-level* API (``net.derivatives`` / ``net.jets_vjp`` on the scaled inputs,
chain rule applied by hand), never from ``Problem`` internals.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import pytest

import pinncore as pc

DTYPES = [np.float64, np.float32]
TOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-5}


def tol(dtype):
    return TOL[np.dtype(dtype)]


def rel_err(a, b):
    """max|a - b| / max|b| (0 for empty arrays; absolute if b is all zero)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    if a.size == 0:
        return 0.0
    scale = np.max(np.abs(b))
    err = np.max(np.abs(a - b))
    return err / scale if scale > 0 else err


def assert_rel(a, b, rtol, what=""):
    e = rel_err(a, b)
    assert e <= rtol, f"{what}: relative error {e:.3e} > {rtol:.1e}"


def randomize(net, seed=0, wscale=1.0, bscale=0.5):
    """Give the network non-trivial weights AND biases (the default biases are zero)."""
    rng = np.random.default_rng(seed)
    p = np.empty(net.n_params)
    off = 0
    for n_in, n_out in zip(net.layers[:-1], net.layers[1:]):
        p[off:off + n_in * n_out] = rng.normal(0.0, wscale * np.sqrt(2.0 / (n_in + n_out)), n_in * n_out)
        off += n_in * n_out
        p[off:off + n_out] = rng.normal(0.0, bscale, n_out)
        off += n_out
    net.params[:] = p.astype(net.dtype)
    return net


def net_pair(layers, dtype=np.float64, seed=0):
    """(cpp net, numpy net) with identical, randomised parameters."""
    a = randomize(pc.MLP(layers, seed=seed, dtype=dtype, backend="cpp"), seed=seed + 1)
    b = pc.MLP(layers, seed=seed, dtype=dtype, backend="numpy")
    b.params[:] = a.params
    return a, b


def points(n, d, seed=0, lo=-1.0, hi=1.0):
    return np.random.default_rng(seed).uniform(lo, hi, size=(n, d))


def all_derivs(d):
    """Every multi-index up to order 2 for d inputs (sorted, i <= j)."""
    return [()] + [(i,) for i in range(d)] + [(i, j) for i in range(d) for j in range(i, d)]


@pytest.fixture
def threads_reset():
    """Start with 1 kernel thread and leave 1 behind, whatever the test does."""
    pc.set_num_threads(1)
    yield
    pc.set_num_threads(1)


# --------------------------------------------------------------------------- problems
@dataclass
class Case:
    """A problem plus an independent hand NumPy description of every term.

    hand[name](x, U) -> list of (N,) arrays, where x is (N, d) physical points and
    U[(o, multi)] the physical jets of the RAW network output o (multi sorted, order <= 2).
    The hand functions must be analytic (complex-step differentiable) in U.
    """

    problem: object
    layers: list
    hand: dict
    lo: np.ndarray = None
    hi: np.ndarray = None
    notes: dict = field(default_factory=dict)


OMEGA = 2 * np.pi
NU = 0.01 / np.pi


def _grid(n, lo, hi, seed):
    rng = np.random.default_rng(seed)
    return rng.uniform(lo, hi, size=(n, len(lo)))


def harmonic_case(n=12, seed=0, domain=(0.0, 1.0), hidden=(8, 8)):
    t = np.linspace(domain[0], domain[1], n)[:, None]
    w = OMEGA
    prob = pc.Problem(
        inputs=["t"], outputs=["u"], domain={"t": domain},
        terms={"pde": pc.Term(points=t, residual=lambda x, u: u.tt + w**2 * u),
               "ic": pc.Term(points=[[domain[0]]], residual=lambda x, u: [u - 1.0, u.t])},
        exact=lambda x: np.cos(w * x[:, :1]))
    hand = {"pde": lambda x, U: [U[0, (0, 0)] + w**2 * U[0, ()]],
            "ic": lambda x, U: [U[0, ()] - 1.0, U[0, (0,)]]}
    return Case(prob, [1, *hidden, 1], hand, np.array([domain[0]]), np.array([domain[1]]))


def burgers_case(n=15, seed=0):
    lo, hi = np.array([0.0, -1.0]), np.array([1.0, 1.0])
    xc = _grid(n, lo, hi, seed)
    xi = np.column_stack([np.zeros(6), np.linspace(-1, 1, 6)])
    xb = np.column_stack([np.linspace(0, 1, 4).repeat(2), np.tile([-1.0, 1.0], 4)])
    nu = NU
    prob = pc.Problem(
        inputs=["t", "x"], outputs=["u"], domain={"t": (0.0, 1.0), "x": (-1.0, 1.0)},
        terms={"pde": pc.Term(points=xc, residual=lambda x, u: u.t + u * u.x - nu * u.xx),
               "ic": pc.Term(points=xi, residual=lambda x, u: u + pc.sin(np.pi * x.x)),
               "bc": pc.Term(points=xb, residual=lambda x, u: u)})
    hand = {"pde": lambda x, U: [U[0, (0,)] + U[0, ()] * U[0, (1,)] - nu * U[0, (1, 1)]],
            "ic": lambda x, U: [U[0, ()] + np.sin(np.pi * x[:, 1])],
            "bc": lambda x, U: [U[0, ()]]}
    return Case(prob, [2, 9, 7, 1], hand, lo, hi)


def mixed_case(n=14, seed=1):
    lo, hi = np.array([0.0, -2.0]), np.array([2.0, 3.0])
    xc = _grid(n, lo, hi, seed)
    prob = pc.Problem(
        inputs=["t", "x"], outputs=["u"], domain={"t": (0.0, 2.0), "x": (-2.0, 3.0)},
        terms={"pde": pc.Term(points=xc, residual=lambda x, u: u.tx + u.xx * u)})
    hand = {"pde": lambda x, U: [U[0, (0, 1)] + U[0, (1, 1)] * U[0, ()]]}
    return Case(prob, [2, 6, 5, 1], hand, lo, hi)


def two_output_case(n=13, seed=2):
    xc = np.linspace(0.0, 3.0, n)[:, None]
    prob = pc.Problem(
        inputs=["x"], outputs=["u", "v"], domain={"x": (0.0, 3.0)},
        terms={"pde": pc.Term(points=xc, residual=lambda x, u, v: [u.x - v, v.x + u]),
               "bc": pc.Term(points=[[0.0]], residual=lambda x, u, v: [u, v - 1.0])},
        exact=lambda x: np.column_stack([np.sin(x[:, 0]), np.cos(x[:, 0])]))
    hand = {"pde": lambda x, U: [U[0, (0,)] - U[1, ()], U[1, (0,)] + U[0, ()]],
            "bc": lambda x, U: [U[0, ()], U[1, ()] - 1.0]}
    return Case(prob, [1, 7, 7, 2], hand, np.array([0.0]), np.array([3.0]))


def hard_case(n=12, seed=3):
    w = OMEGA
    t = np.linspace(0.0, 1.0, n)[:, None]
    prob = pc.Problem(
        inputs=["t"], outputs=["u"], domain={"t": (0.0, 1.0)},
        terms={"pde": pc.Term(points=t, residual=lambda x, u: u.tt + w**2 * u)},
        transform=lambda x, n: 1.0 + x.t**2 * n,
        exact=lambda x: np.cos(w * x[:, :1]))

    def pde(x, U):
        tt = x[:, 0]
        n, nt, ntt = U[0, ()], U[0, (0,)], U[0, (0, 0)]
        u = 1.0 + tt**2 * n
        utt = 2 * n + 4 * tt * nt + tt**2 * ntt
        return [utt + w**2 * u]

    return Case(prob, [1, 8, 8, 1], {"pde": pde}, np.array([0.0]), np.array([1.0]))


def source_case(n=16, seed=4):
    xc = np.linspace(-1.0, 1.0, n)[:, None]
    prob = pc.Problem(
        inputs=["x"], outputs=["u"], domain={"x": (-1.0, 1.0)},
        terms={"pde": pc.Term(points=xc,
                              residual=lambda x, u: u.xx + pc.sin(np.pi * x.x) * u - pc.exp(x.x) + 2.0)})
    hand = {"pde": lambda x, U: [U[0, (0, 0)] + np.sin(np.pi * x[:, 0]) * U[0, ()] - np.exp(x[:, 0]) + 2.0]}
    return Case(prob, [1, 10, 1], hand, np.array([-1.0]), np.array([1.0]))


def fallback_case(n=12, seed=5):
    t = np.linspace(0.0, 2.0, n)[:, None]
    prob = pc.Problem(
        inputs=["t"], outputs=["u"], domain={"t": (0.0, 2.0)},
        terms={"pde": pc.Term(points=t, residual=lambda x, u: pc.sin(u) + u.t),
               "ic": pc.Term(points=[[0.0]], residual=lambda x, u: u - 0.5)})
    hand = {"pde": lambda x, U: [np.sin(U[0, ()]) + U[0, (0,)]],
            "ic": lambda x, U: [U[0, ()] - 0.5]}
    return Case(prob, [1, 8, 6, 1], hand, np.array([0.0]), np.array([2.0]))


def transform2_case(n=9, seed=6):
    """Two outputs, a coordinate-dependent hard constraint, a mixed derivative and a
    non-polynomial component: u = sin(πx) n + t, v = t x m."""
    lo, hi = np.array([0.0, -1.0]), np.array([1.0, 2.0])
    pts = _grid(n, lo, hi, seed)
    prob = pc.Problem(
        inputs=["t", "x"], outputs=["u", "v"], domain={"t": (0.0, 1.0), "x": (-1.0, 2.0)},
        terms={"a": pc.Term(points=pts, residual=lambda x, u, v: v.tx * v - x.x),
               "b": pc.Term(points=pts, residual=lambda x, u, v: [pc.sin(u) * v.x, u.xx * v.t])},
        transform=lambda x, n, m: [pc.sin(np.pi * x.x) * n + x.t, m * x.t * x.x])

    def fields(x, U):
        t, xx = x[:, 0], x[:, 1]
        S, Cc = np.sin(np.pi * xx), np.cos(np.pi * xx)
        n, nx, nxx = U[0, ()], U[0, (1,)], U[0, (1, 1)]
        m, mt, mx, mtx = U[1, ()], U[1, (0,)], U[1, (1,)], U[1, (0, 1)]
        u = S * n + t
        uxx = -np.pi**2 * S * n + 2 * np.pi * Cc * nx + S * nxx
        v = t * xx * m
        vx = t * m + t * xx * mx
        vt = xx * m + t * xx * mt
        vtx = m + xx * mx + t * mt + t * xx * mtx
        return u, uxx, v, vx, vt, vtx

    def a(x, U):
        u, uxx, v, vx, vt, vtx = fields(x, U)
        return [vtx * v - x[:, 1]]

    def b(x, U):
        u, uxx, v, vx, vt, vtx = fields(x, U)
        return [np.sin(u) * vx, uxx * vt]

    return Case(prob, [2, 6, 5, 2], {"a": a, "b": b}, lo, hi)


def misc_case(n=8, seed=7):
    """Integer powers, division by a coordinate expression, a coordinate-only component."""
    t = np.linspace(0.0, 1.0, n)[:, None]
    prob = pc.Problem(
        inputs=["t"], outputs=["u"], domain={"t": (0.0, 1.0)},
        terms={"r": pc.Term(points=t, residual=lambda x, u: [u**3 - u.tt / (1 + x.t), x.t, -u.t * u.t / 2])})
    hand = {"r": lambda x, U: [U[0, ()]**3 - U[0, (0, 0)] / (1 + x[:, 0]), x[:, 0] + 0 * U[0, ()],
                               -U[0, (0,)]**2 / 2]}
    return Case(prob, [1, 7, 1], hand, np.array([0.0]), np.array([1.0]))


def names3_case(n=10, seed=8):
    """Three inputs with multi-letter names: u.d("x1", "x2") + u.t, u.x1 access."""
    lo, hi = np.array([-1.0, 0.0, 0.0]), np.array([1.0, 2.0, 0.5])
    pts = _grid(n, lo, hi, seed)
    prob = pc.Problem(
        inputs=["x1", "x2", "t"], outputs=["u"],
        domain={"x1": (-1.0, 1.0), "x2": (0.0, 2.0), "t": (0.0, 0.5)},
        terms={"pde": pc.Term(points=pts, residual=lambda x, u: u.d("x1", "x2") + u.t * x.x2 - u.x1 ** 2)})
    hand = {"pde": lambda x, U: [U[0, (0, 1)] + U[0, (2,)] * x[:, 1] - U[0, (0,)] ** 2]}
    return Case(prob, [3, 6, 4, 1], hand, lo, hi)


CASES = {
    "harmonic": harmonic_case,
    "burgers": burgers_case,
    "mixed": mixed_case,
    "two_output": two_output_case,
    "hard": hard_case,
    "source": source_case,
    "fallback": fallback_case,
    "transform2": transform2_case,
    "misc": misc_case,
    "names3": names3_case,
}


# --------------------------------------------------------------------------- brute force
def scaling(case):
    s = 2.0 / (case.hi - case.lo)
    return s, -2.0 * case.lo / (case.hi - case.lo) - 1.0


def physical_jets(net, x, s, b):
    """U[(o, multi)] physical jets of the raw outputs from net.derivatives on x̂ (chain rule
    by hand: d/dx_i = s_i d/dx̂_i)."""
    xh = x * s + b
    jet = net.derivatives(xh, order=2)
    d = x.shape[1]
    U = {}
    for o in range(net.n_outputs):
        U[o, ()] = jet.value[:, o].astype(np.float64)
        for i in range(d):
            U[o, (i,)] = s[i] * jet.grad[:, o, i].astype(np.float64)
            for j in range(i, d):
                U[o, (i, j)] = s[i] * s[j] * jet.hess[:, o, i, j].astype(np.float64)
    return U


def hand_residuals(case, name, net, x):
    s, b = scaling(case)
    U = physical_jets(net, x, s, b)
    return np.array([np.broadcast_to(np.asarray(r, dtype=np.float64), (x.shape[0],))
                     for r in case.hand[name](x, U)])


def hand_dr(case, name, x, U, h=1e-30):
    """∂r_c/∂U_k per point by complex step (exact to rounding): dict key -> (C, N)."""
    out = {}
    for k in U:
        Uc = {kk: v.astype(np.complex128) for kk, v in U.items()}
        Uc[k] = Uc[k] + 1j * h
        r = case.hand[name](x, Uc)
        out[k] = np.array([np.broadcast_to(np.imag(np.asarray(rc)) / h, (x.shape[0],)) for rc in r])
    return out


def brute_force(case, name, net):
    """Independent loss, gradient, per-point NTK norms, residuals of one term.

    Per point i and component c the Jacobian row ∂r_c,i/∂θ = Σ_k ∂r_c/∂U_k · ∂U_k(x_i)/∂θ is
    formed by ``net.jets_vjp`` on the single scaled point with the adjoint ∂r_c/∂U_k · (chain
    rule factor), then loss = Σ_c mean_i r², grad = Σ_c Σ_i 2 r J / N, norms = Σ_c ‖J‖².
    """
    x = case.problem.terms[name].points
    s, b = scaling(case)
    d, m = x.shape[1], net.n_outputs
    U = physical_jets(net, x, s, b)
    r = np.array([np.broadcast_to(np.asarray(rc, dtype=np.float64), (x.shape[0],))
                  for rc in case.hand[name](x, U)])
    dr = hand_dr(case, name, x, U)
    C, N = r.shape
    derivs = all_derivs(d)
    rows = np.zeros((C, N, net.n_params))
    xh = x * s + b
    for i in range(N):
        for c in range(C):
            adj = np.zeros((len(derivs), 1, m))
            for kd, dv in enumerate(derivs):
                fac = np.prod([s[k] for k in dv]) if dv else 1.0
                for o in range(m):
                    adj[kd, 0, o] = dr[(o, dv)][c, i] * fac
            rows[c, i] = net.jets_vjp(xh[i:i + 1], derivs, adj.astype(net.dtype))
    loss = float((r ** 2).sum() / max(N, 1))
    grad = np.einsum("cn,cnp->p", 2 * r / max(N, 1), rows)
    norms = (rows ** 2).sum(axis=(0, 2))
    return loss, grad, norms, r


def fd_derivative(f, theta, v, h=1e-3):
    """4th-order central difference of f along v at theta."""
    return (-f(theta + 2 * h * v) + 8 * f(theta + h * v) - 8 * f(theta - h * v) + f(theta - 2 * h * v)) / (12 * h)
