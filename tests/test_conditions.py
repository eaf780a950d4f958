"""pinncore.conditions against closed forms.

Closed forms come from hard-constrained fields u = g(x) + D(x)² n with D = 0 on the
boundary: there u = g and ∂u/∂n = ∂g/∂n whatever the network n is, so the loss of a
boundary condition is a number computed from g alone. Network-level checks use
``net.derivatives`` on the scaled inputs (chain rule by hand), never Problem internals.
"""
import numpy as np
import pytest
from conftest import randomize

import pinncore as pc
import pinncore.geometry as geo
from pinncore import conditions as bc

NET_SEED = 3


def _problem(terms, inputs=("x", "y"), domain=None, transform=None, outputs=("u",)):
    domain = domain or {k: (0.0, 1.0) for k in inputs}
    return pc.Problem(list(inputs), list(outputs), terms=terms, domain=domain, transform=transform)


def _net(d, m=1):
    return randomize(pc.MLP([d, 12, 12, m], seed=NET_SEED), seed=NET_SEED)


# ------------------------------------------------------------------------------ Dirichlet

def test_dirichlet_expression_value_matches_the_network():
    sq = geo.Box([0, 0], [1, 1])
    xb = sq.sample_boundary(100, method="sobol", seed=0)
    p = _problem({"bc": bc.dirichlet(xb, lambda x: pc.sin(np.pi * x.x) * x.y + 2.0)})
    net = _net(2)
    u = net(xb * p.scale + p.shift)[:, 0]
    want = np.mean((u - np.sin(np.pi * xb[:, 0]) * xb[:, 1] - 2.0) ** 2)
    assert abs(p.losses(net)["bc"] - want) <= 1e-12 * want
    assert p.lowering.terms[0].fused                       # lowered to a kernel table, no Python per step


@pytest.mark.parametrize("value", [0.5, "array"])
def test_dirichlet_number_or_array(value):
    x = np.linspace(0, 1, 7)[:, None]
    vals = np.cos(3 * x[:, 0])
    g = vals if value == "array" else value
    p = _problem({"bc": bc.dirichlet(x, g)}, inputs=("t",))
    net = _net(1)
    u = net(x * p.scale + p.shift)[:, 0]
    want = np.mean((u - (vals if value == "array" else 0.5)) ** 2)
    assert abs(p.losses(net)["bc"] - want) <= 1e-12 * want


def test_dirichlet_picks_the_named_output():
    x = np.array([[0.2], [0.7]])
    p = _problem({"bc": bc.dirichlet(x, 1.0, output="v")}, inputs=("t",), outputs=("u", "v"))
    net = _net(1, 2)
    v = net(x * p.scale + p.shift)[:, 1]
    assert np.isclose(p.losses(net)["bc"], np.mean((v - 1.0) ** 2), rtol=1e-12)
    with pytest.raises(ValueError, match="output 'w' is not one of"):
        _problem({"bc": bc.dirichlet(x, 1.0, output="w")}, inputs=("t",), outputs=("u", "v"))


# ------------------------------------------------------------------------------ Neumann / Robin

def _disk_problem(term):
    # u = x² y + (1 − x² − y²)² n: on the unit circle u = x² y and ∂u/∂n = 3 x² y
    return _problem({"bc": term}, domain={"x": (-1.0, 1.0), "y": (-1.0, 1.0)},
                    transform=lambda x, n: x.x**2 * x.y + (1.0 - x.x**2 - x.y**2) ** 2 * n)


def test_neumann_on_a_disk_matches_the_closed_form():
    disk = geo.Disk([0, 0], 1)
    xb = disk.sample_boundary(200, method="sobol", seed=1)
    p = _disk_problem(bc.neumann(xb, disk, value=0.0))
    want = np.mean((3 * xb[:, 0] ** 2 * xb[:, 1]) ** 2)
    assert abs(p.losses(_net(2))["bc"] - want) <= 1e-12 * want
    exact = _disk_problem(bc.neumann(xb, disk, value=lambda x: 3.0 * x.x**2 * x.y))
    assert exact.losses(_net(2))["bc"] < 1e-28


def test_neumann_on_box_faces_and_normals_given_as_an_array():
    sq = geo.Box([0, 0], [1, 1])
    xb = sq.sample_boundary(300, method="halton", seed=2)
    tf = lambda x, n: x.x**2 * x.y + (x.x * (1 - x.x) * x.y * (1 - x.y)) ** 2 * n   # noqa: E731
    n = sq.normal(xb)
    grad = np.column_stack([2 * xb[:, 0] * xb[:, 1], xb[:, 0] ** 2])
    want = np.mean(((grad * n).sum(axis=1) - 1.0) ** 2)
    for normals in (sq, n):
        p = _problem({"bc": bc.neumann(xb, normals, value=1.0)}, transform=tf)
        assert abs(p.losses(_net(2))["bc"] - want) <= 1e-12 * want


def test_neumann_gradient_matches_finite_differences():
    disk = geo.Disk([0.5, 0.5], 0.4)
    xb = disk.sample_boundary(40, seed=0)
    p = _problem({"bc": bc.neumann(xb, disk, value=lambda x: x.x)})
    net = _net(2)
    g = p.gradients(net)["bc"]
    rng = np.random.default_rng(0)
    for k in rng.choice(net.n_params, 6, replace=False):
        e = np.zeros(net.n_params)
        e[k] = 1e-6
        fd = (p.losses(net, net.params + e)["bc"] - p.losses(net, net.params - e)["bc"]) / 2e-6
        assert abs(fd - g[k]) <= 1e-6 * max(1.0, abs(g[k]))


def test_robin_matches_the_closed_form():
    disk = geo.Disk([0, 0], 1)
    xb = disk.sample_boundary(150, seed=4)
    p = _disk_problem(bc.robin(xb, disk, a=2.0, b=lambda x: 1.0 + x.x**2, value=0.5))
    g = xb[:, 0] ** 2 * xb[:, 1]
    want = np.mean((2.0 * g + (1 + xb[:, 0] ** 2) * 3 * g - 0.5) ** 2)
    assert abs(p.losses(_net(2))["bc"] - want) <= 1e-12 * want


def test_neumann_in_space_time_uses_the_named_inputs():
    disk = geo.Disk([0, 0], 1)
    xy = disk.sample_boundary(50, seed=0)
    pts = np.column_stack([np.linspace(0, 1, 50), xy])
    term = bc.neumann(pts, disk, inputs=["x", "y"])
    p = _problem({"bc": term}, inputs=("t", "x", "y"), domain={"t": (0, 1), "x": (-1, 1), "y": (-1, 1)})
    net = _net(3)
    jet = net.derivatives(pts * p.scale + p.shift, order=1)
    du = jet.grad[:, 0, 1:] * p.scale[1:]
    assert np.isclose(p.losses(net)["bc"], np.mean((du * xy).sum(axis=1) ** 2), rtol=1e-12)
    with pytest.raises(ValueError, match="name the 2 inputs"):
        _problem({"bc": bc.neumann(pts, disk)}, inputs=("t", "x", "y"),
                 domain={"t": (0, 1), "x": (-1, 1), "y": (-1, 1)})


def test_normals_follow_new_points_and_fixed_arrays_refuse_them():
    disk = geo.Disk([0, 0], 1)
    xb = disk.sample_boundary(30, seed=0)
    p = _disk_problem(bc.neumann(xb, disk))
    x2 = disk.sample_boundary(40, seed=9)
    q = p.with_points("bc", x2)
    assert np.isclose(q.losses(_net(2))["bc"], np.mean((3 * x2[:, 0] ** 2 * x2[:, 1]) ** 2), rtol=1e-12)
    fixed = _disk_problem(bc.neumann(xb, disk.normal(xb)))
    with pytest.raises(ValueError, match="resampled"):
        fixed.with_points("bc", x2)


# ------------------------------------------------------------------------------ initial and data

def test_initial_value_and_velocity():
    x0 = np.column_stack([np.zeros(9), np.linspace(-1, 1, 9)])
    term = bc.initial(x0, lambda x: -pc.sin(np.pi * x.x), velocity=lambda x: x.x)
    p = _problem({"ic": term}, inputs=("t", "x"), domain={"t": (0, 1), "x": (-1, 1)})
    net = _net(2)
    jet = net.derivatives(x0 * p.scale + p.shift, order=1)
    u, ut = jet.value[:, 0], jet.grad[:, 0, 0] * p.scale[0]
    want = np.mean((u + np.sin(np.pi * x0[:, 1])) ** 2) + np.mean((ut - x0[:, 1]) ** 2)
    assert abs(p.losses(net)["ic"] - want) <= 1e-12 * want
    assert p.n_components["ic"] == 2


def test_data_term_from_measured_pairs():
    rng = np.random.default_rng(0)
    x = rng.random((25, 1))
    u = np.column_stack([np.cos(x[:, 0]), np.sin(x[:, 0])])
    p = _problem({"data": bc.data(x, u)}, inputs=("t",), outputs=("u", "v"))
    net = _net(1, 2)
    want = np.sum(np.mean((net(x * p.scale + p.shift) - u) ** 2, axis=0))
    assert abs(p.losses(net)["data"] - want) <= 1e-12 * want
    assert p.lowering.terms[0].fused
    with pytest.raises(ValueError, match="resampled"):
        p.with_points("data", x[:5])


# ------------------------------------------------------------------------------ periodic

def _periodic_problem(g, derivatives=("x",)):
    box = geo.Box([0, -1], [1, 1])
    lo, hi = box.sample_face(30, 1, "lo", seed=0), box.sample_face(30, 1, "hi", seed=0)
    # u = g(x) + (1 − x²)² n: on x = ±1, u = g and u_x = g' whatever n is
    return pc.Problem(["t", "x"], ["u"], domain={"t": (0, 1), "x": (-1, 1)},
                      terms={"per": bc.periodic(lo, hi, derivatives=list(derivatives))},
                      transform=lambda x, n: g(x) + (1.0 - x.x**2) ** 2 * n), lo, hi


def test_periodic_loss_matches_closed_forms():
    p, _, _ = _periodic_problem(lambda x: x.x + x.t)       # u(−1) − u(1) = −2, u_x equal
    assert abs(p.losses(_net(2))["per"] - 4.0) < 1e-12
    p, _, _ = _periodic_problem(lambda x: x.x**2 * x.t)     # values equal, u_x: −2t − 2t
    lo = p.terms["per"].points[:30]
    assert abs(p.losses(_net(2))["per"] - np.mean((4 * lo[:, 0]) ** 2)) < 1e-12
    p, _, _ = _periodic_problem(lambda x: pc.cos(np.pi * x.x) * x.t)   # periodic: zero
    assert p.losses(_net(2))["per"] < 1e-28


def test_periodic_loss_and_gradient_match_the_network():
    box = geo.Box([0, -1], [1, 1])
    lo, hi = box.sample_face(20, 1, "lo", seed=1), box.sample_face(20, 1, "hi", seed=1)
    p = pc.Problem(["t", "x"], ["u"], domain={"t": (0, 1), "x": (-1, 1)},
                   terms={"per": bc.periodic(lo, hi, derivatives=["x"]),
                          "pde": pc.Term(box.sample_interior(16, seed=0), lambda x, u: u.t + u * u.x)})
    net = _net(2)
    ja, jb = net.derivatives(lo * p.scale + p.shift, order=1), net.derivatives(hi * p.scale + p.shift, order=1)
    want = np.mean((ja.value - jb.value)[:, 0] ** 2) + np.mean(((ja.grad - jb.grad)[:, 0, 1] * p.scale[1]) ** 2)
    L, G, R = p.value_and_grad(net, residuals=True)
    assert abs(L[0] - want) <= 1e-12 * want
    assert R[0].shape == (2, 20) and p.n_points["per"] == 20
    for k in (0, 7, net.n_params - 1):
        e = np.zeros(net.n_params)
        e[k] = 1e-6
        fd = (p.losses(net, net.params + e)["per"] - p.losses(net, net.params - e)["per"]) / 2e-6
        assert abs(fd - G[0, k]) <= 1e-6 * max(1.0, abs(G[0, k]))
    # per-pair weights have one entry per pair
    w = np.linspace(0.5, 2.0, 20)
    Lw = p.value_and_grad(net, point_weights=[w, None])[0][0]
    assert abs(Lw - (np.mean(w * (ja.value - jb.value)[:, 0] ** 2)
                     + np.mean(w * ((ja.grad - jb.grad)[:, 0, 1] * p.scale[1]) ** 2))) <= 1e-12 * Lw


def test_periodic_trains_with_self_adaptive_and_ntk():
    p, _, _ = _periodic_problem(lambda x: x.t)
    for scheme in (pc.SelfAdaptive(), pc.NTK()):
        res = pc.train(p, _net(2), weighting=scheme, steps=5, log_every=5, warn=False)
        assert res.status == "completed" and np.isfinite(res.history["per_loss"]).all()
    assert p.ntk_point_norms(_net(2))["per"].shape == (30,)


def test_paired_points_must_match():
    with pytest.raises(ValueError, match="same shape"):
        bc.periodic(np.zeros((3, 2)), np.zeros((4, 2)))


# ------------------------------------------------------------------------------ errors

@pytest.mark.parametrize("make, match", [
    (lambda: bc.dirichlet(np.zeros((3, 1)), np.ones(4)), "one value per point"),
    (lambda: bc.dirichlet(np.zeros(3), 1.0), "shape"),
    (lambda: bc.dirichlet(np.zeros((3, 1)), "one"), "number, a function"),
    (lambda: bc.neumann(np.zeros((3, 2)), np.ones((2, 2))), "normals must be a geometry"),
    (lambda: bc.data(np.zeros((3, 1)), np.ones(2)), "u must have shape"),
    (lambda: bc.data(np.zeros((3, 1)), np.ones((3, 2)), outputs=["u"]), "outputs must name 2"),
])
def test_bad_arguments_raise_clear_errors(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_periodic_rows_in_the_residual_jacobian_and_lm():
    from pinncore.jacobian import ResidualJacobian
    box = geo.Box([0, -1], [1, 1])
    lo, hi = box.sample_face(12, 1, "lo", seed=2), box.sample_face(12, 1, "hi", seed=2)
    p = pc.Problem(["t", "x"], ["u"], domain={"t": (0, 1), "x": (-1, 1)},
                   terms={"pde": pc.Term(box.sample_interior(20, seed=0), lambda x, u: u.t + 0.5 * u.x),
                          "per": bc.periodic(lo, hi, derivatives=["x"])})
    net = _net(2)
    w = np.array([1.0, 3.0])
    jac = ResidualJacobian(p, net, weights=w)
    lin = jac.linearize()
    r, J = lin.dense()
    assert r.shape == (20 + 2 * 12,) and J.shape == (44, net.n_params)
    assert np.isclose(float(r @ r), float(w @ p.value_and_grad(net)[0]), rtol=1e-12)
    # rows against central differences of r(θ)
    for k in (0, 5, net.n_params - 2):
        e = np.zeros(net.n_params)
        e[k] = 1e-6
        fd = (jac.linearize(net.params + e).r - jac.linearize(net.params - e).r) / 2e-6
        assert np.allclose(J[:, k], fd, rtol=1e-6, atol=1e-8)
    v = np.random.default_rng(0).normal(size=net.n_params)
    u = np.random.default_rng(1).normal(size=44)
    assert np.allclose(lin.matvec(v), J @ v, rtol=1e-10, atol=1e-12)
    assert np.allclose(lin.rmatvec(u), J.T @ u, rtol=1e-10, atol=1e-12)
    A, g = lin.gram("JtJ")
    assert np.allclose(A, J.T @ J, rtol=1e-10, atol=1e-12) and np.allclose(g, J.T @ r, rtol=1e-10, atol=1e-12)
    res = pc.train(p, _net(2), weighting=pc.Fixed(), optimizer="lm", steps=5, log_every=1, warn=False)
    assert res.history["per_loss"][-1] < res.history["per_loss"][0]
