"""The library's problems on non-rectangular domains (pinncore.geometry) and systems: Poisson on
the L-shape and on a square with holes, heat on the disk, Kovasznay flow. Their test points lie
inside the domain.

>>> poisson_holes(n_collocation=10, n_bc=8).term_names
['pde', 'bc', 'holes']
"""

from __future__ import annotations

import math

import numpy as np

from .problems_common import PI, as_points, lazy_api, lazy_sin, library
from .problems_reference import lshape_grid, poisson_lshape_reference

__all__ = ["HOLES", "poisson_lshape", "poisson_holes", "poisson_holes_exact", "poisson_holes_geometry", "heat_disk",
           "heat_disk_exact", "kovasznay", "kovasznay_exact"]


# ----------------------------------------------------------------------------- 7. domains
# Problems on non-rectangular domains (pinncore.geometry), with conditions from
# pinncore.conditions. Their test points lie inside the domain.

@library("poisson_lshape", "Poisson -lap u = 1 on the L-shape [-1,1]^2 minus (0,1]^2, finite-difference reference",
          bounds={"n_collocation": (16, 4000), "n_bc": (4, 1000), "seed": (0, 2 ** 31 - 1)},
          help={"seed": "point sampling seed"}, exact=True)
def poisson_lshape(n_collocation=2000, n_bc=400, method="sobol", seed=0):
    """Poisson equation on the L-shaped domain (DeepXDE's "Poisson equation in L-shaped
    domain" example; Lu et al. 2021, SIAM Rev. 63(1)).

    PDE      u_xx + u_yy + 1 = 0,   (x, y) in L = [-1, 1]^2 minus (0, 1]^2
    BC       u = 0 on the boundary of L (six edges, re-entrant corner at the origin)
    Solution no closed form (corner singularity u ~ r^(2/3) sin(2θ/3));
             reference :func:`poisson_lshape_reference` (finite differences).
    Inputs   ["x", "y"]; outputs ["u"].
    Terms    "pde": ``n_collocation`` points of ``geometry.sample_interior(method, seed)``;
             "bc": ``n_bc`` points of ``sample_boundary(method, seed + 1)`` (length-weighted).
    test_points: the nodes of the reference's 129 x 129 grid that lie in L (12 545 points).
    ``problem.geometry`` is the L-shape (pinncore.geometry).
    """
    from . import conditions as bc
    from . import geometry as geo
    Problem, Term = lazy_api()
    L = geo.Box([-1, -1], [1, 1]) - geo.Box([0, 0], [1, 1])
    axis, _ = lshape_grid()
    g = geo.Grid([-1, -1], [1, 1], (axis.size, axis.size), geometry=L)
    problem = Problem(
        inputs=["x", "y"],
        outputs=["u"],
        domain=L.domain(["x", "y"]),
        terms={
            "pde": Term(points=L.sample_interior(int(n_collocation), method, seed),
                        residual=lambda x, u: u.xx + u.yy + 1.0),
            "bc": bc.dirichlet(L.sample_boundary(int(n_bc), method, seed + 1), 0.0),
        },
        exact=poisson_lshape_reference,
        test_points=g.points[g.mask],
        transform=None,
    )
    problem.geometry = L
    return problem


HOLES = ((-0.5, -0.5, 0.2), (0.5, 0.5, 0.2), (-0.4, 0.6, 0.15), (0.6, -0.4, 0.15))


def poisson_holes_exact(points):
    """sin(pi x) sin(pi y); ``points`` (M, 2) -> (M, 1)."""
    p = as_points(points, 2)
    return (np.sin(PI * p[:, 0]) * np.sin(PI * p[:, 1]))[:, None]


def poisson_holes_geometry():
    """[-1, 1]^2 minus the four disks (centre x, centre y, radius) of ``HOLES``."""
    from . import geometry as geo
    g = geo.Box([-1, -1], [1, 1])
    for cx, cy, r in HOLES:
        g = g - geo.Disk([cx, cy], r)
    return g


@library("poisson_holes", "Poisson on [-1,1]^2 with four circular holes, u = sin(pi x) sin(pi y)",
          bounds={"hole_bc": ("dirichlet", "neumann"), "n_collocation": (16, 4000), "n_bc": (4, 1000),
                  "seed": (0, 2 ** 31 - 1)},
          help={"hole_bc": "condition on the holes", "seed": "point sampling seed"}, exact=True)
def poisson_holes(hole_bc="dirichlet", n_collocation=2000, n_bc=400, method="sobol", seed=0):
    """Poisson equation on a square with four circular holes (a manufactured solution, so
    the reference is exact; the geometry is of the PINNacle Poisson2d-C kind: Hao et al.
    2023, "PINNacle", arXiv:2306.08827).

    PDE      u_xx + u_yy + 2 pi^2 sin(pi x) sin(pi y) = 0 on [-1, 1]^2 minus four disks
             (centres (-0.5, -0.5), (0.5, 0.5) radius 0.2; (-0.4, 0.6), (0.6, -0.4) radius 0.15)
    BC       u = 0 on the square's edges; on the holes u = sin(pi x) sin(pi y)
             (``hole_bc="dirichlet"``) or ∂u/∂n = its normal derivative (``"neumann"``,
             normals pointing into the holes)
    Solution u = sin(pi x) sin(pi y)
    Inputs   ["x", "y"]; outputs ["u"].
    Terms    "pde": ``n_collocation`` interior points; "bc": the square's edges;
             "holes": the hole boundaries; boundary points are ``n_bc`` length-weighted
             samples of the whole boundary (``method``, ``seed + 1``) split by where they lie.
    test_points: the 101 x 101 grid points in the domain; ``problem.geometry`` is the domain.
    """
    from . import conditions as bc
    from . import geometry as geo
    Problem, Term = lazy_api()
    sin = lazy_sin()
    if hole_bc not in ("dirichlet", "neumann"):
        raise ValueError(f"hole_bc must be 'dirichlet' or 'neumann', got {hole_bc!r}")
    G = poisson_holes_geometry()
    xb = G.sample_boundary(int(n_bc), method, seed + 1)
    outer = geo.Box([-1, -1], [1, 1]).on_boundary(xb)
    xh = xb[~outer]
    if hole_bc == "dirichlet":
        holes = bc.dirichlet(xh, lambda x: sin(PI * x.x) * sin(PI * x.y))
    else:
        gx = PI * np.cos(PI * xh[:, 0]) * np.sin(PI * xh[:, 1])
        gy = PI * np.sin(PI * xh[:, 0]) * np.cos(PI * xh[:, 1])
        nrm = G.normal(xh)
        holes = bc.neumann(xh, G, value=gx * nrm[:, 0] + gy * nrm[:, 1])
    test = geo.Grid([-1, -1], [1, 1], (101, 101), geometry=G)
    src = 2.0 * PI * PI
    problem = Problem(
        inputs=["x", "y"],
        outputs=["u"],
        domain=G.domain(["x", "y"]),
        terms={
            "pde": Term(points=G.sample_interior(int(n_collocation), method, seed),
                        residual=lambda x, u: u.xx + u.yy + src * sin(PI * x.x) * sin(PI * x.y)),
            "bc": bc.dirichlet(xb[outer], 0.0),
            "holes": holes,
        },
        exact=poisson_holes_exact,
        test_points=test.points[test.mask],
        transform=None,
    )
    problem.geometry = G
    return problem


_J0_ZERO = 2.404825557695773   # first zero of the Bessel function J0


def heat_disk_exact(points, kappa=0.1):
    """exp(-kappa j^2 t) J0(j r), j the first zero of J0; ``points`` (M, 3) columns (t, x, y) -> (M, 1)."""
    from scipy.special import j0
    p = as_points(points, 3)
    r = np.hypot(p[:, 1], p[:, 2])
    return (np.exp(-float(kappa) * _J0_ZERO ** 2 * p[:, 0]) * j0(_J0_ZERO * r))[:, None]


@library("heat_disk", "heat u_t = 0.1 lap u on the unit disk, u = exp(-0.1 j^2 t) J0(j r)", exact=True)
def heat_disk(kappa=0.1, t_max=1.0, n_collocation=2000, n_ic=400, n_bc=400, seed=0):
    """Heat equation on the unit disk, the first radial mode (separation of variables;
    e.g. Carslaw & Jaeger, "Conduction of Heat in Solids", 1959, §7.6).

    PDE      u_t = kappa (u_xx + u_yy),    t in [0, t_max], x^2 + y^2 <= 1
    IC       u(0, x, y) = J0(j r)          (j = 2.404826, the first zero of J0)
    BC       u = 0 on the circle r = 1
    Solution u = exp(-kappa j^2 t) J0(j r)
    Inputs   ["t", "x", "y"]; outputs ["u"].
    Terms    "pde": ``n_collocation`` points (disk: uniform in area, t uniform); "ic":
             ``n_ic`` disk points at t = 0 (values J0(j r) as data: the residual language
             has no Bessel function); "bc": ``n_bc`` circle points at uniform times.
             Seeds ``seed`` (pde), ``seed + 1`` (ic), ``seed + 2`` (bc).
    test_points: 11 times x the 41 x 41 grid points inside the disk; ``problem.geometry`` is
    the (spatial) disk.
    """
    from . import conditions as bc
    from . import geometry as geo
    Problem, Term = lazy_api()
    kappa, t_max = float(kappa), float(t_max)
    disk = geo.Disk([0.0, 0.0], 1.0)

    def space_time(xy, s):
        t = np.random.default_rng(s).uniform(0.0, t_max, xy.shape[0])
        return np.column_stack([t, xy])
    pde = space_time(disk.sample_interior(int(n_collocation), seed=seed), seed + 100)
    ic_xy = disk.sample_interior(int(n_ic), seed=seed + 1)
    ic = np.column_stack([np.zeros(ic_xy.shape[0]), ic_xy])
    wall = space_time(disk.sample_boundary(int(n_bc), seed=seed + 2), seed + 102)
    g = disk.grid((41, 41))
    xy = g.points[g.mask]
    test = np.concatenate([np.column_stack([np.full(xy.shape[0], t), xy]) for t in np.linspace(0, t_max, 11)])
    problem = Problem(
        inputs=["t", "x", "y"],
        outputs=["u"],
        domain={"t": (0.0, t_max), "x": (-1.0, 1.0), "y": (-1.0, 1.0)},
        terms={
            "pde": Term(points=pde, residual=lambda x, u: u.t - kappa * (u.xx + u.yy)),
            "ic": bc.initial(ic, heat_disk_exact(ic, kappa)[:, 0]),
            "bc": bc.dirichlet(wall, 0.0),
        },
        exact=lambda X: heat_disk_exact(X, kappa),
        test_points=test,
        transform=None,
    )
    problem.geometry = disk
    return problem


# ----------------------------------------------------------------------------- 9. Kovasznay flow

def kovasznay_exact(points, re=20.0):
    """Kovasznay's (1948) steady Navier–Stokes flow behind a grid: with λ = Re/2 − √(Re²/4 + 4π²),
    u = 1 − e^{λx} cos 2πy, v = λ/(2π) e^{λx} sin 2πy, p = (1 − e^{2λx})/2; ``points`` (M, 2)
    -> (M, 3) columns u, v, p.

    >>> bool(np.allclose(kovasznay_exact(np.array([[0.0, 0.0]])), [[0.0, 0.0, 0.0]]))
    True
    """
    p = as_points(points, 2)
    lam = 0.5 * re - math.sqrt(0.25 * re * re + 4 * PI * PI)
    e = np.exp(lam * p[:, 0])
    return np.column_stack([1 - e * np.cos(2 * PI * p[:, 1]), lam / (2 * PI) * e * np.sin(2 * PI * p[:, 1]),
                            0.5 * (1 - e * e)])


@library("kovasznay", "Kovasznay flow: steady Navier-Stokes (u, v, p) at Re = 20 on [-0.5,1]x[-0.5,1.5], exact",
          bounds={"re": (1.0, 100.0), "n_collocation": (16, 4000), "n_bc": (8, 1000), "seed": (0, 2 ** 31 - 1)},
          exact=True)
def kovasznay(re=20.0, n_collocation=2000, n_bc=400, seed=0):
    """Kovasznay flow: the steady incompressible Navier–Stokes equations with an exact solution
    (Kovasznay 1948; the DeepXDE and Jin et al. 2021 "NSFnets" benchmark), a system of three
    outputs.

    PDE      u u_x + v u_y + p_x − (u_xx + u_yy)/Re = 0,
             u v_x + v v_y + p_y − (v_xx + v_yy)/Re = 0,   u_x + v_y = 0   (one term, 3 components)
    Domain   x in [-0.5, 1], y in [-0.5, 1.5]; Re = 20.
    BC       u, v = exact on the whole boundary ("bc_u", "bc_v"); p = exact on x = 1 ("bc_p",
             the pressure's additive constant).
    Solution :func:`kovasznay_exact`. Inputs ["x", "y"]; outputs ["u", "v", "p"].
    Uniform points from ``default_rng(seed)``; test points a 101 x 101 grid.

    >>> kovasznay(n_collocation=10, n_bc=8).term_names
    ['pde', 'bc_u', 'bc_v', 'bc_p']
    """
    from . import conditions as bc
    from . import geometry as geo
    Problem, Term = lazy_api()
    re = float(re)
    box = geo.Box([-0.5, -0.5], [1.0, 1.5])
    rng = np.random.default_rng(seed)
    pde = np.column_stack([rng.uniform(-0.5, 1.0, n_collocation), rng.uniform(-0.5, 1.5, n_collocation)])
    edge = box.sample_boundary(int(n_bc), "uniform", seed + 1)
    right = np.column_stack([np.ones(max(int(n_bc) // 4, 1)), rng.uniform(-0.5, 1.5, max(int(n_bc) // 4, 1))])
    ex_edge, ex_right = kovasznay_exact(edge, re), kovasznay_exact(right, re)

    def ns(x, u, v, p):
        return [u * u.x + v * u.y + p.x - (u.xx + u.yy) / re,
                u * v.x + v * v.y + p.y - (v.xx + v.yy) / re,
                u.x + v.y]

    gx, gy = np.meshgrid(np.linspace(-0.5, 1.0, 101), np.linspace(-0.5, 1.5, 101), indexing="ij")
    return Problem(
        inputs=["x", "y"],
        outputs=["u", "v", "p"],
        domain={"x": (-0.5, 1.0), "y": (-0.5, 1.5)},
        terms={"pde": Term(points=pde, residual=ns),
               "bc_u": bc.dirichlet(edge, ex_edge[:, 0], output="u"),
               "bc_v": bc.dirichlet(edge, ex_edge[:, 1], output="v"),
               "bc_p": bc.dirichlet(right, ex_right[:, 2], output="p")},
        exact=lambda X: kovasznay_exact(X, re),
        test_points=np.column_stack([gx.ravel(), gy.ravel()]),
        transform=None,
    )
