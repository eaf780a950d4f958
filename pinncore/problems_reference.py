"""Reference solutions of the library problems that have no closed form: the Cole–Hopf
quadrature for viscous Burgers and Richardson-extrapolated finite differences for Poisson on the
L-shape. Pure NumPy/SciPy (no Problem API), so they work on their own.

>>> float(burgers_reference(0.0, 0.5))   # u(0, x) = -sin(pi x)
-1.0
"""

from __future__ import annotations

import functools
import math

import numpy as np

from .problems_common import PI, as_points

__all__ = ["burgers_reference", "poisson_lshape_reference", "lshape_grid", "lshape_fd"]


# ----------------------------------------------------------------------------- 2. Burgers

_MAX_CHUNK_ELEMS = 1 << 21  # points x nodes per block (bounds the temporaries to ~16 MB)


@functools.lru_cache(maxsize=8)
def _hermite_rule(n):
    """Gauss-Hermite nodes and LOG weights for weight exp(-z^2), nodes with zero
    (underflowed) weight dropped.  numpy's ``hermgauss`` is used up to 300 nodes (beyond
    that it overflows internally); SciPy's asymptotic ``roots_hermite`` above."""
    n = int(n)
    if n <= 300:
        z, w = np.polynomial.hermite.hermgauss(n)
    else:
        from scipy.special import roots_hermite

        z, w = roots_hermite(n)
    keep = w > 0.0
    z, logw = z[keep], np.log(w[keep])
    z.setflags(write=False)
    logw.setflags(write=False)
    return z, logw


def _default_nodes(nu):
    # After eta = sqrt(4 nu t) z the integrand is exp(-z^2 - cos(pi y)/(2 pi nu)): the
    # second exponent spans 1/(pi nu), so nodes out to |z| ~ sqrt(1/(pi nu)) + margin are
    # needed, i.e. n ~ 1/(pi nu) (the largest GH node is ~ sqrt(2 n)).  Its curvature in z
    # is 2 pi t, independent of nu, so no further refinement is needed.  Twice that bound,
    # at least 200: for nu = 0.01/pi this is 200 nodes, converged to ~1e-14 (80 already
    # reach 1e-13, checked by node doubling in the tests).
    return int(max(200, math.ceil(2.0 / (PI * float(nu)))))


def burgers_reference(t, x, nu=0.01 / PI, n_nodes=None, return_ux=False):
    """Reference solution of viscous Burgers u_t + u u_x = nu u_xx, u(0,x) = -sin(pi x),
    u(t, +-1) = 0, by the Cole-Hopf formula (as in Basdevant et al. 1986)::

        u(t,x) = - int sin(pi(x-eta)) f(x-eta) G(eta,t) d eta / int f(x-eta) G(eta,t) d eta,
        f(y) = exp(-cos(pi y) / (2 pi nu)),  G = exp(-eta^2 / (4 nu t)).

    With eta = sqrt(4 nu t) z both integrals become Gauss-Hermite integrals; all weights are
    combined in the exponent and the maximum exponent per point is subtracted
    (log-sum-exp), so nothing overflows although f spans exp(+-1/(2 pi nu)).

    ``t`` and ``x`` broadcast; returns an array of the broadcast shape.  At t = 0 the
    result is exactly -sin(pi x).  With ``return_ux=True`` returns ``(u, u_x)`` where
    u_x = -(Var[sin]/(2 nu) + pi E[cos]) is the analytic x-derivative (E, Var under the
    normalised weight f G).  ``n_nodes`` defaults to ``max(200, ceil(2/(pi nu)))``.
    """
    nu = float(nu)
    if not nu > 0.0:
        raise ValueError("nu must be positive")
    t, x = np.broadcast_arrays(np.asarray(t, dtype=np.float64), np.asarray(x, dtype=np.float64))
    shape = t.shape
    tf = t.ravel()
    xf = x.ravel()
    if np.any(tf < 0.0):
        raise ValueError("burgers_reference needs t >= 0")
    n_nodes = _default_nodes(nu) if n_nodes is None else int(n_nodes)
    if n_nodes < 1:
        raise ValueError("n_nodes must be >= 1")
    z, logw = _hermite_rule(n_nodes)
    u = np.empty(tf.shape)
    ux = np.empty(tf.shape) if return_ux else None
    inv = 1.0 / (2.0 * PI * nu)
    chunk = max(1, _MAX_CHUNK_ELEMS // z.size)
    for s in range(0, tf.size, chunk):
        T = tf[s:s + chunk, None]
        X = xf[s:s + chunk, None]
        y = X - np.sqrt(4.0 * nu * T) * z          # x - eta at every node
        py = PI * y
        cy = np.cos(py)
        sy = np.sin(py)
        e = logw - inv * cy
        e -= e.max(axis=1, keepdims=True)
        np.exp(e, out=e)
        den = e.sum(axis=1)
        es = (e * sy).sum(axis=1) / den
        u[s:s + chunk] = -es
        if return_ux:
            ec = (e * cy).sum(axis=1) / den
            es2 = (e * sy * sy).sum(axis=1) / den
            ux[s:s + chunk] = -((es2 - es * es) / (2.0 * nu) + PI * ec)
    at0 = tf == 0.0
    if np.any(at0):
        u[at0] = -np.sin(PI * xf[at0])
        if return_ux:
            ux[at0] = -PI * np.cos(PI * xf[at0])
    if return_ux:
        return u.reshape(shape), ux.reshape(shape)
    return u.reshape(shape)


# ----------------------------------------------------------------------------- L-shape

def lshape_fd(n):
    """5-point finite differences for -Δu = 1 on L = [-1, 1]² minus (0, 1]², u = 0 on ∂L, on the
    (n+1)² grid of spacing 2/n (n even): returns (axis, U) with U = 0 outside L."""
    import scipy.sparse as sp
    import scipy.sparse.linalg as spla
    h = 2.0 / n
    axis = np.linspace(-1.0, 1.0, n + 1)
    T = sp.diags([np.ones(n - 2), -2.0 * np.ones(n - 1), np.ones(n - 2)], [-1, 0, 1])
    eye = sp.identity(n - 1)
    A = (sp.kron(T, eye) + sp.kron(eye, T)).tocsr() / (h * h)
    X, Y = np.meshgrid(axis[1:-1], axis[1:-1], indexing="ij")
    idx = np.flatnonzero(~((X.ravel() >= 0) & (Y.ravel() >= 0)))   # interior nodes of L
    u = spla.spsolve(A[idx][:, idx].tocsc(), -np.ones(idx.size))
    inner = np.zeros((n - 1) ** 2)
    inner[idx] = u
    U = np.zeros((n + 1, n + 1))
    U[1:-1, 1:-1] = inner.reshape(n - 1, n - 1)
    return axis, U


@functools.lru_cache(maxsize=4)
def lshape_grid(n=128):
    """The reference on the (n+1)² grid: Richardson extrapolation of the h = 2/n and h = 1/n
    solutions with the exponent 4/3 of the re-entrant corner (u ~ r^(2/3) sin(2θ/3))."""
    axis, coarse = lshape_fd(n)
    _, fine = lshape_fd(2 * n)
    U = fine[::2, ::2] + (fine[::2, ::2] - coarse) / (2.0 ** (4.0 / 3.0) - 1.0)
    U.setflags(write=False)
    return axis, U


def poisson_lshape_reference(points, n=128):
    """Reference for -Δu = 1 on the L-shape, u = 0 on the boundary; (M, 2) -> (M, 1).

    Richardson-extrapolated 5-point finite differences (scipy.sparse; h = 1/64 and 1/128 for
    ``n = 128``), bilinear between grid nodes, 0 outside L. Accuracy ≈ 1e-4 relative L2 at the
    nodes (against an h = 1/512 solve; bench/README.md).
    """
    from scipy.interpolate import RegularGridInterpolator
    p = as_points(points, 2)
    axis, U = lshape_grid(int(n))
    return RegularGridInterpolator((axis, axis), U)(np.clip(p, -1.0, 1.0))[:, None]
