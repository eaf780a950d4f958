"""The problem library's problems on non-rectangular domains (pinncore/problems.py, section 7):
the exact/reference solutions solve the PDE and the conditions, the terms sit where they should."""
import numpy as np
import pytest

import pinncore as pc
from pinncore import problems as P
from pinncore import problems_domains, problems_reference


def _fd_laplacian(f, x, h=1e-4):
    out = np.zeros(x.shape[0])
    for i in range(x.shape[1]):
        e = np.zeros(x.shape[1])
        e[i] = h
        out += (f(x + e) - 2 * f(x) + f(x - e)) / h**2
    return out


# ------------------------------------------------------------------------------ L-shape

def test_lshape_reference_converges_and_vanishes_on_the_boundary():
    axis, U = problems_reference.lshape_grid(128)
    a64, U64 = problems_reference.lshape_grid(64)
    common = U[::2, ::2]
    assert np.linalg.norm(common - U64) / np.linalg.norm(common) < 5e-4      # extrapolated h=1/32 vs 1/64
    p = P.poisson_lshape(n_collocation=100, n_bc=200)
    xb = p.terms["bc"].points
    assert np.abs(P.poisson_lshape_reference(xb)).max() < 1e-12
    ref = p.exact_values()[:, 0]
    assert ref.min() > -1e-12 and 0.148 < ref.max() < 0.151                  # max of u ≈ 0.1494
    # the 5-point Laplacian of the reference is -1 at nodes away from the corner
    h = axis[1] - axis[0]
    i, j = np.searchsorted(axis, -0.5), np.searchsorted(axis, -0.5)
    lap = (U[i + 1, j] + U[i - 1, j] + U[i, j + 1] + U[i, j - 1] - 4 * U[i, j]) / h**2
    assert abs(lap + 1.0) < 2e-3


def test_lshape_terms_lie_in_and_on_the_domain():
    p = P.poisson_lshape(n_collocation=500, n_bc=200)
    L = p.geometry
    assert L.inside(p.terms["pde"].points).all() and L.on_boundary(p.terms["bc"].points).all()
    assert not L.inside(np.array([[0.5, 0.5]]))[0]
    assert L.inside(p.test_points).all() and p.test_points.shape == (12545, 2)


# ------------------------------------------------------------------------------ holes

@pytest.mark.parametrize("hole_bc", ["dirichlet", "neumann"])
def test_holes_exact_solution_solves_the_problem(hole_bc):
    p = P.poisson_holes(hole_bc=hole_bc, n_collocation=300, n_bc=300)
    G = p.geometry
    f = lambda x: P.poisson_holes_exact(x)[:, 0]    # noqa: E731
    x = p.terms["pde"].points
    res = _fd_laplacian(f, x) + 2 * np.pi**2 * f(x)
    assert np.abs(res).max() < 1e-5
    assert np.abs(f(p.terms["bc"].points)).max() < 1e-12
    xh = p.terms["holes"].points
    assert G.on_boundary(xh).all() and xh.shape[0] + p.terms["bc"].points.shape[0] == 300
    # u = exact + D² n with D = Π_k (|x − c_k|² − r_k²) has u = exact and ∂u/∂n = ∂exact/∂n on
    # every hole whatever the network n is: the hole term's loss vanishes
    def transform(x, n):
        D = 1.0
        for cx, cy, r in problems_domains.HOLES:
            D = D * ((x.x - cx) ** 2 + (x.y - cy) ** 2 - r * r)
        return pc.sin(np.pi * x.x) * pc.sin(np.pi * x.y) + D * D * n
    holes_only = pc.Problem(["x", "y"], ["u"], domain=p.domain, terms={"holes": p.terms["holes"]},
                            transform=transform)
    assert holes_only.losses(pc.MLP([2, 4, 1], seed=0))["holes"] < 1e-26


def test_holes_bad_bc_name():
    with pytest.raises(ValueError, match="hole_bc"):
        P.poisson_holes(hole_bc="robin")


# ------------------------------------------------------------------------------ heat on a disk

def test_heat_disk_exact_solution_solves_the_problem():
    p = P.heat_disk(n_collocation=200, n_ic=50, n_bc=50)
    f = lambda x: P.heat_disk_exact(x)[:, 0]     # noqa: E731
    x = p.terms["pde"].points
    h = 1e-4
    e = np.array([h, 0.0, 0.0])
    ut = (f(x + e) - f(x - e)) / (2 * h)
    lap = np.zeros(x.shape[0])
    for k in (1, 2):
        ek = np.zeros(3)
        ek[k] = h
        lap += (f(x + ek) - 2 * f(x) + f(x - ek)) / h**2
    assert np.abs(ut - 0.1 * lap).max() < 1e-5
    assert np.abs(f(p.terms["bc"].points)).max() < 1e-15          # J0(j) = 0 (to rounding)
    xb = p.terms["bc"].points
    assert np.allclose(np.hypot(xb[:, 1], xb[:, 2]), 1.0)
    assert (p.terms["ic"].points[:, 0] == 0).all()


def test_registry_lists_the_domain_problems():
    for name in ("poisson_lshape", "poisson_holes", "heat_disk"):
        assert name in P.REGISTRY and "PDE" in P.REGISTRY[name].__doc__
        assert name in dict(P.describe())


def test_domain_problems_train_a_few_steps():
    p = P.poisson_holes(n_collocation=200, n_bc=100)
    res = pc.train(p, pc.MLP([2, 16, 16, 1], seed=0), steps=30, log_every=10, warn=False)
    assert res.status == "completed" and res.history["total_loss"][-1] < res.history["total_loss"][0]


# ------------------------------------------------------------------------------ plotting

def test_domain_figure_masks_outside_the_geometry(tmp_path):
    pytest.importorskip("matplotlib")
    from pinncore import plotting
    p = P.poisson_holes(n_collocation=100, n_bc=100)
    net = pc.MLP([2, 8, 1], seed=0)
    grid, panels = plotting.domain_panels(p, net, p.geometry, (41, 41))
    inside = p.geometry.inside(grid.points).reshape(41, 41)
    for _, Z, _ in panels:
        assert np.array_equal(np.isnan(Z), ~inside)
    ref = panels[1][1]
    assert np.allclose(ref[inside], P.poisson_holes_exact(grid.points[grid.mask])[:, 0])
    path = tmp_path / "holes.png"
    assert plotting.domain_figure(p, net, p.geometry, str(path), shape=(41, 41)) == str(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    d = P.heat_disk(n_collocation=50, n_ic=10, n_bc=10)
    assert plotting.domain_figure(d, pc.MLP([3, 8, 1]), d.geometry, str(tmp_path / "d.png"), shape=(21, 21),
                                  fixed={"t": 0.25}).endswith("d.png")
    with pytest.raises(ValueError, match="exactly 2"):
        plotting.domain_panels(d, pc.MLP([3, 8, 1]), d.geometry)
