"""The library's benchmark problems on boxes, from the papers (harmonic oscillator, Burgers,
heat, wave, Poisson 1-D, Helmholtz 2-D, Klein–Gordon, periodic advection): each an exact or
reference solution ``<name>_exact`` beside its registered constructor ``<name>``.

>>> harmonic(n_collocation=10).term_names
['pde', 'ic']
"""

from __future__ import annotations

import numpy as np

from .problems_common import PI, as_points, is_int, lazy_api, lazy_cos, lazy_sin, library, space_time_bounds, space_time_points
from .problems_reference import burgers_reference

__all__ = ["harmonic", "harmonic_exact", "burgers", "burgers_exact", "heat1d", "heat1d_exact", "wave1d", "wave1d_exact",
           "wave1d_initial", "poisson1d", "poisson1d_exact", "poisson1d_source", "helmholtz2d", "helmholtz2d_exact",
           "helmholtz2d_source", "klein_gordon", "klein_gordon_exact", "klein_gordon_source", "advection", "advection_exact"]


# ----------------------------------------------------------------------------- 1. harmonic

def harmonic_exact(points, omega=2 * PI):
    """Exact solution cos(omega t) of the harmonic IVP; ``points`` (M, 1) -> (M, 1)."""
    p = as_points(points, 1)
    return np.cos(float(omega) * p[:, :1])


@library("harmonic", "harmonic IVP u'' + w^2 u = 0, t in [0,1], u = cos(2 pi t) (loss-balance seed)",
          bounds={"omega": (0.1, 40.0), "n_collocation": (2, 2000)},
          help={"omega": "angular frequency ω", "n_collocation": "collocation points"}, exact=True)
def harmonic(omega=2 * PI, n_collocation=50, hard_constraint=False):
    """Harmonic oscillator IVP, the project's seed problem.

    Source: the loss-balance example in the spirit of Wang, Teng & Perdikaris (2021),
    "Understanding and mitigating gradient flow pathologies in physics-informed neural
    networks", SIAM J. Sci. Comput. 43(5).

    PDE      u'' + omega^2 u = 0,           t in [0, 1]
    IC       u(0) = 1,  u'(0) = 0
    Solution u(t) = cos(omega t)
    Inputs   ["t"]; outputs ["u"].
    Terms    "pde": ``n_collocation`` points ``linspace(0, 1)``, residual u.tt + omega^2 u;
             "ic":  the point t = 0, residual [u - 1, u.t].
    With ``hard_constraint=True`` the transform u = 1 + t^2 n satisfies both initial
    conditions exactly and only the "pde" term is kept.
    """
    Problem, Term = lazy_api()
    omega = float(omega)
    w2 = omega * omega
    t_c = np.linspace(0.0, 1.0, int(n_collocation))[:, None]
    terms = {"pde": Term(points=t_c, residual=lambda x, u: u.tt + w2 * u)}
    transform = None
    if hard_constraint:
        transform = lambda x, n: 1.0 + x.t ** 2 * n  # noqa: E731
    else:
        terms["ic"] = Term(points=np.array([[0.0]]), residual=lambda x, u: [u - 1.0, u.t])
    return Problem(
        inputs=["t"],
        outputs=["u"],
        domain={"t": (0.0, 1.0)},
        terms=terms,
        exact=lambda X: harmonic_exact(X, omega),
        test_points=None,
        transform=transform,
    )


def burgers_exact(points, nu=0.01 / PI, n_nodes=None):
    """Burgers reference on ``points`` (M, 2) with columns (t, x) -> (M, 1)."""
    p = as_points(points, 2)
    return burgers_reference(p[:, 0], p[:, 1], nu, n_nodes=n_nodes)[:, None]


@library("burgers", "viscous Burgers u_t + u u_x = (0.01/pi) u_xx on [0,1]x[-1,1], Cole-Hopf reference",
          **space_time_bounds(nu=((1e-3, 1.0), "viscosity ν")), exact=True)
def burgers(nu=0.01 / PI, n_collocation=2048, n_ic=256, n_bc=256, seed=0):
    """Viscous Burgers equation (Raissi, Perdikaris & Karniadakis 2019, "Physics-informed
    neural networks", J. Comput. Phys. 378; reference data as in Basdevant et al. 1986).

    PDE      u_t + u u_x - nu u_xx = 0,    t in [0, 1], x in [-1, 1], nu = 0.01/pi
    IC       u(0, x) = -sin(pi x)
    BC       u(t, -1) = u(t, 1) = 0
    Solution Cole-Hopf reference :func:`burgers_reference` (shock at x = 0; the slope there
             peaks at |u_x| = 152.005 at t = 1.6037/pi).
    Inputs   ["t", "x"]; outputs ["u"].
    Terms    "pde": ``n_collocation`` uniform points; "ic": ``n_ic`` points at t = 0,
             residual u + sin(pi x); "bc": ``n_bc`` points, first half at x = -1, the rest
             at x = +1, residual u.  All drawn from ``np.random.default_rng(seed)`` in the
             order pde, ic, bc.
    test_points: the 100 (t) x 256 (x) grid of the Raissi et al. data set, t-major.
    """
    Problem, Term = lazy_api()
    sin = lazy_sin()
    nu = float(nu)
    pde, ic, bc = space_time_points(seed, 1.0, -1.0, 1.0, n_collocation, n_ic, n_bc)
    tt, xx = np.meshgrid(np.linspace(0.0, 1.0, 100), np.linspace(-1.0, 1.0, 256), indexing="ij")
    test = np.column_stack([tt.ravel(), xx.ravel()])
    return Problem(
        inputs=["t", "x"],
        outputs=["u"],
        domain={"t": (0.0, 1.0), "x": (-1.0, 1.0)},
        terms={
            "pde": Term(points=pde, residual=lambda x, u: u.t + u * u.x - nu * u.xx),
            "ic": Term(points=ic, residual=lambda x, u: u + sin(PI * x.x)),
            "bc": Term(points=bc, residual=lambda x, u: u),
        },
        exact=lambda X: burgers_exact(X, nu),
        test_points=test,
        transform=None,
    )


# ----------------------------------------------------------------------------- 3. heat

def heat1d_exact(points, kappa=0.1):
    """exp(-kappa pi^2 t) sin(pi x); ``points`` (M, 2) columns (t, x) -> (M, 1)."""
    p = as_points(points, 2)
    return (np.exp(-float(kappa) * PI ** 2 * p[:, 0]) * np.sin(PI * p[:, 1]))[:, None]


@library("heat1d", "heat u_t = 0.1 u_xx on [0,1]x[0,1], u = exp(-0.1 pi^2 t) sin(pi x)",
          **space_time_bounds(kappa=((1e-3, 10.0), "diffusivity κ"), t_max=((0.1, 10.0), "final time")), exact=True)
def heat1d(kappa=0.1, t_max=1.0, n_collocation=1000, n_ic=128, n_bc=128, seed=0):
    """1-D heat equation with a single decaying Fourier mode (classical separable
    solution, e.g. Raissi et al. 2019 / Lu et al. 2021 DeepXDE "diffusion" examples).

    PDE      u_t = kappa u_xx,             t in [0, t_max], x in [0, 1]
    IC       u(0, x) = sin(pi x)
    BC       u(t, 0) = u(t, 1) = 0
    Solution u = exp(-kappa pi^2 t) sin(pi x)
    Default kappa = 0.1 (not 1): the amplitude at t = 1 is exp(-0.1 pi^2) = 0.37, so the
    solution stays O(1) over the whole domain and the relative L2 error measures the full
    time range (with kappa = 1 it decays to 5e-5 and the late times contribute nothing).
    Inputs   ["t", "x"]; outputs ["u"].
    Terms    "pde": residual u.t - kappa u.xx; "ic": u - sin(pi x) at t = 0;
             "bc": u, first half at x = 0, the rest at x = 1.  Uniform points from
             ``default_rng(seed)`` in the order pde, ic, bc.
    """
    Problem, Term = lazy_api()
    sin = lazy_sin()
    kappa, t_max = float(kappa), float(t_max)
    pde, ic, bc = space_time_points(seed, t_max, 0.0, 1.0, n_collocation, n_ic, n_bc)
    return Problem(
        inputs=["t", "x"],
        outputs=["u"],
        domain={"t": (0.0, t_max), "x": (0.0, 1.0)},
        terms={
            "pde": Term(points=pde, residual=lambda x, u: u.t - kappa * u.xx),
            "ic": Term(points=ic, residual=lambda x, u: u - sin(PI * x.x)),
            "bc": Term(points=bc, residual=lambda x, u: u),
        },
        exact=lambda X: heat1d_exact(X, kappa),
        test_points=None,
        transform=None,
    )


# ----------------------------------------------------------------------------- 4. wave

def wave1d_initial(x):
    """Initial displacement g(x) = sin(pi x) + 0.5 sin(4 pi x) (broadcasting)."""
    x = np.asarray(x, dtype=np.float64)
    return np.sin(PI * x) + 0.5 * np.sin(4.0 * PI * x)


def wave1d_exact(points, c=2.0):
    """sin(pi x) cos(c pi t) + 0.5 sin(4 pi x) cos(4 c pi t); (M, 2) columns (t, x) -> (M, 1)."""
    p = as_points(points, 2)
    t, x = p[:, 0], p[:, 1]
    c = float(c)
    u = np.sin(PI * x) * np.cos(c * PI * t) + 0.5 * np.sin(4.0 * PI * x) * np.cos(4.0 * c * PI * t)
    return u[:, None]


@library("wave1d", "wave u_tt = 4 u_xx on [0,1]^2, two modes (Wang, Yu & Perdikaris 2022)",
          **space_time_bounds(c=((0.1, 10.0), "wave speed c")), exact=True)
def wave1d(c=2.0, n_collocation=2000, n_ic=256, n_bc=256, seed=0):
    """1-D wave equation benchmark of Wang, Yu & Perdikaris (2022), "When and why PINNs fail
    to train: a neural tangent kernel perspective", J. Comput. Phys. 449.

    PDE      u_tt = c^2 u_xx,              t in [0, 1], x in [0, 1], c = 2
    IC       u(0, x) = sin(pi x) + 0.5 sin(4 pi x),  u_t(0, x) = 0
    BC       u(t, 0) = u(t, 1) = 0
    Solution u = sin(pi x) cos(c pi t) + 0.5 sin(4 pi x) cos(4 c pi t)
    Inputs   ["t", "x"]; outputs ["u"].
    Terms    "pde": residual u.tt - c^2 u.xx; "ic" (two components) [u - g(x), u.t] at
             t = 0; "bc": u, first half at x = 0, the rest at x = 1.  Uniform points from
             ``default_rng(seed)`` in the order pde, ic, bc.
    """
    Problem, Term = lazy_api()
    sin = lazy_sin()
    c = float(c)
    c2 = c * c
    pde, ic, bc = space_time_points(seed, 1.0, 0.0, 1.0, n_collocation, n_ic, n_bc)
    return Problem(
        inputs=["t", "x"],
        outputs=["u"],
        domain={"t": (0.0, 1.0), "x": (0.0, 1.0)},
        terms={
            "pde": Term(points=pde, residual=lambda x, u: u.tt - c2 * u.xx),
            "ic": Term(points=ic, residual=lambda x, u: [
                u - sin(PI * x.x) - 0.5 * sin(4.0 * PI * x.x), u.t]),
            "bc": Term(points=bc, residual=lambda x, u: u),
        },
        exact=lambda X: wave1d_exact(X, c),
        test_points=None,
        transform=None,
    )


# ----------------------------------------------------------------------------- 5. Poisson 1-D

def poisson1d_exact(points, a=4):
    """sin(a pi x); ``points`` (M, 1) -> (M, 1)."""
    p = as_points(points, 1)
    return np.sin(float(a) * PI * p[:, :1])


def poisson1d_source(points, a=4):
    """f = -(a pi)^2 sin(a pi x); ``points`` (M, 1) -> (M, 1)."""
    p = as_points(points, 1)
    k = float(a) * PI
    return -(k * k) * np.sin(k * p[:, :1])


@library("poisson1d", "Poisson u_xx = f on [0,1], u = sin(4 pi x) (Wang, Yu & Perdikaris 2022)",
          bounds={"a": (0.1, 20.0), "n_collocation": (4, 2000)}, help={"a": "wave number a in sin(aπx)"}, exact=True)
def poisson1d(a=4, n_collocation=128):
    """1-D Poisson equation of Wang, Yu & Perdikaris (2022), "When and why PINNs fail to
    train: a neural tangent kernel perspective", J. Comput. Phys. 449.

    PDE      u_xx = f,  f(x) = -(a pi)^2 sin(a pi x),   x in [0, 1]
    BC       u(0) = 0, u(1) = sin(a pi)  (= 0 for integer a)
    Solution u = sin(a pi x)
    Inputs   ["x"]; outputs ["u"].
    Terms    "pde": ``n_collocation`` points ``linspace(0, 1)``, residual
             u.xx + (a pi)^2 sin(a pi x) (source as a coordinate expression);
             "bc": the two points x = 0, 1, residual u (integer a) or u - sin(a pi x).
    """
    Problem, Term = lazy_api()
    sin = lazy_sin()
    a = float(a)
    k = a * PI
    k2 = k * k
    x_c = np.linspace(0.0, 1.0, int(n_collocation))[:, None]
    if is_int(a):
        bc_res = lambda x, u: u  # noqa: E731
    else:
        bc_res = lambda x, u: u - sin(k * x.x)  # noqa: E731
    return Problem(
        inputs=["x"],
        outputs=["u"],
        domain={"x": (0.0, 1.0)},
        terms={
            "pde": Term(points=x_c, residual=lambda x, u: u.xx + k2 * sin(k * x.x)),
            "bc": Term(points=np.array([[0.0], [1.0]]), residual=bc_res),
        },
        exact=lambda X: poisson1d_exact(X, a),
        test_points=None,
        transform=None,
    )


# ----------------------------------------------------------------------------- 6. Helmholtz 2-D

def helmholtz2d_exact(points, a1=1, a2=4):
    """sin(a1 pi x) sin(a2 pi y); ``points`` (M, 2) columns (x, y) -> (M, 1)."""
    p = as_points(points, 2)
    return (np.sin(float(a1) * PI * p[:, 0]) * np.sin(float(a2) * PI * p[:, 1]))[:, None]


def helmholtz2d_source(points, a1=1, a2=4, k=1.0):
    """q = (-(a1 pi)^2 - (a2 pi)^2 + k^2) sin(a1 pi x) sin(a2 pi y); (M, 2) -> (M, 1)."""
    coef = -(float(a1) * PI) ** 2 - (float(a2) * PI) ** 2 + float(k) ** 2
    return coef * helmholtz2d_exact(points, a1, a2)


@library("helmholtz2d", "Helmholtz on [-1,1]^2, u = sin(pi x) sin(4 pi y) (Wang, Teng & Perdikaris 2021)",
          bounds={"a1": (0.1, 10.0), "a2": (0.1, 10.0), "k": (0.0, 20.0), "n_collocation": (16, 4000),
                  "n_bc": (4, 1000), "seed": (0, 2 ** 31 - 1)},
          help={"k": "wave number k", "seed": "point sampling seed"}, exact=True)
def helmholtz2d(a1=1, a2=4, k=1.0, n_collocation=2000, n_bc=400, seed=0):
    """2-D Helmholtz benchmark of Wang, Teng & Perdikaris (2021), "Understanding and
    mitigating gradient flow pathologies in physics-informed neural networks",
    SIAM J. Sci. Comput. 43(5).

    PDE      u_xx + u_yy + k^2 u = q(x, y),   (x, y) in [-1, 1]^2
             q = (-(a1 pi)^2 - (a2 pi)^2 + k^2) sin(a1 pi x) sin(a2 pi y)
    BC       u = sin(a1 pi x) sin(a2 pi y) on the boundary (= 0 for integer a1, a2)
    Solution u = sin(a1 pi x) sin(a2 pi y)
    Inputs   ["x", "y"]; outputs ["u"].
    Terms    "pde": ``n_collocation`` uniform points, residual u.xx + u.yy + k^2 u - q;
             "bc": ``n_bc`` points spread over the four edges (x = -1, x = 1, y = -1,
             y = 1, in that order, ``n_bc // 4`` each, remainder to the first edges),
             residual u (integer a1, a2) or u - sin(a1 pi x) sin(a2 pi y).  Drawn from
             ``default_rng(seed)`` in the order pde, bc.
    """
    Problem, Term = lazy_api()
    sin = lazy_sin()
    a1, a2, k = float(a1), float(a2), float(k)
    k1, k2 = a1 * PI, a2 * PI
    kk = k * k
    coef = -k1 * k1 - k2 * k2 + kk
    rng = np.random.default_rng(seed)
    n_collocation, n_bc = int(n_collocation), int(n_bc)
    pde = rng.uniform(-1.0, 1.0, (n_collocation, 2))
    counts = [n_bc // 4 + (1 if i < n_bc % 4 else 0) for i in range(4)]
    edges = []
    for i, m in enumerate(counts):
        s = rng.uniform(-1.0, 1.0, m)
        fixed = np.full(m, -1.0 if i % 2 == 0 else 1.0)
        edges.append(np.column_stack([fixed, s]) if i < 2 else np.column_stack([s, fixed]))
    bc = np.concatenate(edges, axis=0)
    if is_int(a1) and is_int(a2):
        bc_res = lambda x, u: u  # noqa: E731
    else:
        bc_res = lambda x, u: u - sin(k1 * x.x) * sin(k2 * x.y)  # noqa: E731
    return Problem(
        inputs=["x", "y"],
        outputs=["u"],
        domain={"x": (-1.0, 1.0), "y": (-1.0, 1.0)},
        terms={
            "pde": Term(points=pde, residual=lambda x, u:
                        u.xx + u.yy + kk * u - coef * sin(k1 * x.x) * sin(k2 * x.y)),
            "bc": Term(points=bc, residual=bc_res),
        },
        exact=lambda X: helmholtz2d_exact(X, a1, a2),
        test_points=None,
        transform=None,
    )


# ----------------------------------------------------------------------------- 7. Klein-Gordon

def klein_gordon_exact(points):
    """x cos(5 pi t) + (x t)^3; ``points`` (M, 2) columns (t, x) -> (M, 1)."""
    p = as_points(points, 2)
    t, x = p[:, 0], p[:, 1]
    return (x * np.cos(5.0 * PI * t) + (x * t) ** 3)[:, None]


def klein_gordon_source(points):
    """f = u_tt - u_xx + u^3 of the exact solution; (M, 2) columns (t, x) -> (M, 1)."""
    p = as_points(points, 2)
    t, x = p[:, 0], p[:, 1]
    u = x * np.cos(5.0 * PI * t) + (x * t) ** 3
    return (-25.0 * PI ** 2 * x * np.cos(5.0 * PI * t) + 6.0 * x ** 3 * t - 6.0 * x * t ** 3 + u ** 3)[:, None]


@library("klein_gordon", "Klein-Gordon u_tt - u_xx + u^3 = f on [0,1]x[-1,1], u = x cos(5 pi t) + (xt)^3 (Wang 2021)",
          **space_time_bounds(), exact=True)
def klein_gordon(n_collocation=2000, n_ic=256, n_bc=256, seed=0):
    """Nonlinear Klein-Gordon benchmark of Wang, Teng & Perdikaris (2021), "Understanding and
    mitigating gradient flow pathologies in physics-informed neural networks", SIAM J. Sci.
    Comput. 43(5), §4.3 (alpha = -1, beta = 0, gamma = 1, k = 3).

    PDE      u_tt - u_xx + u^3 = f(t, x),   t in [0, 1], x in [-1, 1]
    IC       u(0, x) = x,  u_t(0, x) = 0
    BC       u(t, -1) = -cos(5 pi t) - t^3,  u(t, 1) = cos(5 pi t) + t^3 (the exact solution)
    Solution u = x cos(5 pi t) + (x t)^3;  f = :func:`klein_gordon_source`
    Inputs   ["t", "x"]; outputs ["u"].
    Terms    "pde": residual u.tt - u.xx + u^3 - f; "ic" (two components) [u - x, u.t] at
             t = 0; "bc": u - u_exact, first half at x = -1, the rest at x = 1.  Uniform
             points from ``default_rng(seed)`` in the order pde, ic, bc.

    >>> klein_gordon(n_collocation=10, n_ic=4, n_bc=4).term_names
    ['pde', 'ic', 'bc']
    """
    Problem, Term = lazy_api()
    cos = lazy_cos()
    pde, ic, bc = space_time_points(seed, 1.0, -1.0, 1.0, n_collocation, n_ic, n_bc)
    k = 5.0 * PI

    def source(x):
        u = x.x * cos(k * x.t) + x.x ** 3 * x.t ** 3
        return -k * k * x.x * cos(k * x.t) + 6.0 * x.x ** 3 * x.t - 6.0 * x.x * x.t ** 3 + u * u * u

    return Problem(
        inputs=["t", "x"],
        outputs=["u"],
        domain={"t": (0.0, 1.0), "x": (-1.0, 1.0)},
        terms={
            "pde": Term(points=pde, residual=lambda x, u: u.tt - u.xx + u * u * u - source(x)),
            "ic": Term(points=ic, residual=lambda x, u: [u - x.x, u.t]),
            "bc": Term(points=bc, residual=lambda x, u: u - x.x * cos(k * x.t) - x.x ** 3 * x.t ** 3),
        },
        exact=klein_gordon_exact,
        test_points=None,
        transform=None,
    )


# ----------------------------------------------------------------------------- 8. periodic advection

def advection_exact(points, c=30.0):
    """sin(x - c t) (characteristics of u_t + c u_x = 0 from u(0, x) = sin x); (M, 2) (t, x) -> (M, 1)."""
    p = as_points(points, 2)
    return np.sin(p[:, 1] - float(c) * p[:, 0])[:, None]


@library("advection", "periodic advection u_t + 30 u_x = 0 on [0,1]x[0,2pi], u = sin(x - 30t) (Krishnapriyan 2021)",
          **space_time_bounds(c=((0.1, 100.0), "advection speed c")), exact=True, periodic=True)
def advection(c=30.0, n_collocation=2000, n_ic=256, n_bc=256, bc="dirichlet", seed=0):
    """Periodic 1-D advection, the failure mode of Krishnapriyan et al. (2021), "Characterizing
    possible failure modes in physics-informed neural networks", NeurIPS 34 (c >= 30).

    PDE      u_t + c u_x = 0,               t in [0, 1], x in [0, 2 pi], periodic in x
    IC       u(0, x) = sin x
    Solution u = sin(x - c t) (by characteristics)
    Inputs   ["t", "x"]; outputs ["u"].
    Terms    "pde": residual u.t + c u.x; "ic": u - sin x at t = 0; with bc="dirichlet" also
             "bc": u - sin(x - c t) at x = 0 and x = 2 pi (first half, rest) — the values the
             periodic condition u(t, 0) = u(t, 2 pi) takes on the exact solution, since a
             residual is evaluated point by point and cannot pair two boundary points. With
             bc="none" there is no boundary term: use ``pc.Periodic(inputs={1: 2 * pi})``,
             which makes the network exactly 2π-periodic in x (a hard constraint).
    Uniform points from ``default_rng(seed)`` in the order pde, ic, bc.

    >>> advection(n_collocation=10, n_ic=4, n_bc=4, bc="none").term_names
    ['pde', 'ic']
    """
    Problem, Term = lazy_api()
    sin = lazy_sin()
    if bc not in ("dirichlet", "none"):
        raise ValueError(f"bc must be 'dirichlet' or 'none', got {bc!r}")
    c = float(c)
    pde, ic, bcp = space_time_points(seed, 1.0, 0.0, 2.0 * PI, n_collocation, n_ic, n_bc)
    terms = {"pde": Term(points=pde, residual=lambda x, u: u.t + c * u.x),
             "ic": Term(points=ic, residual=lambda x, u: u - sin(x.x))}
    if bc == "dirichlet":
        terms["bc"] = Term(points=bcp, residual=lambda x, u: u - sin(x.x - c * x.t))
    return Problem(
        inputs=["t", "x"],
        outputs=["u"],
        domain={"t": (0.0, 1.0), "x": (0.0, 2.0 * PI)},
        terms=terms,
        exact=lambda X: advection_exact(X, c),
        test_points=None,
        transform=None,
    )
