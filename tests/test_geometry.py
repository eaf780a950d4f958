"""pinncore.geometry: sampling inside/on every primitive and CSG operation, normals, QMC, grids.

The oracle for membership is independent of the code under test: boxes and balls by their
inequalities, polygons by matplotlib's point-in-path, CSG by boolean algebra of those.
"""
import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pinncore.geometry as geo

with warnings.catch_warnings():   # see tests/test_hostile.py: hypothesis' failure-path import warns
    warnings.simplefilter("ignore")
    try:
        import hypothesis.extra._patching  # noqa: F401
    except Exception:  # pragma: no cover
        pass

SETTINGS = settings(deadline=None, derandomize=True, database=None, max_examples=15,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
QMC = ["uniform", "sobol", "halton", "lhs"]


# ------------------------------------------------------------------------------ oracle

def member(g, x):
    """Closed-set membership computed without the geometry's sdf (tolerance 1e-12)."""
    t = 1e-12
    if isinstance(g, geo.Box):
        return ((x >= g.lo - t) & (x <= g.hi + t)).all(axis=1)
    if isinstance(g, geo.Disk):
        return np.linalg.norm(x - g.center, axis=1) <= g.radius + t
    if isinstance(g, geo.Polygon):
        from matplotlib.path import Path
        # the sign of radius= grows or shrinks the path with its orientation: try both
        return (Path(g.vertices).contains_points(x, radius=1e-12)
                | Path(g.vertices[::-1]).contains_points(x, radius=1e-12))
    a, b = member(g.a, x), member(g.b, x)
    if isinstance(g, geo.Union):
        return a | b
    if isinstance(g, geo.Intersection):
        return a & b
    return a & ~strict(g.b, x)


def strict(g, x):
    """Open-set membership (the interior), for the subtracted operand of a difference."""
    t = 1e-12
    if isinstance(g, geo.Box):
        return ((x > g.lo + t) & (x < g.hi - t)).all(axis=1)
    if isinstance(g, geo.Disk):
        return np.linalg.norm(x - g.center, axis=1) < g.radius - t
    if isinstance(g, geo.Polygon):
        return member(g, x) & (np.abs(g.sdf(x)) > t)
    a, b = strict(g.a, x), strict(g.b, x)
    if isinstance(g, geo.Union):
        return a | b
    if isinstance(g, geo.Intersection):
        return a & b
    return a & ~member(g.b, x)


def boundary_fraction(g, x, nrm, delta):
    """Fraction of points with the domain just inside (x − δn) and not just outside (x + δn)."""
    return float(np.mean(member(g, x - delta * nrm) & ~member(g, x + delta * nrm)))


# ------------------------------------------------------------------------------ strategies

coord = st.floats(-2.0, 2.0, allow_nan=False)
size = st.floats(0.3, 2.0, allow_nan=False)


@st.composite
def boxes(draw, dim=None):
    d = draw(st.integers(1, 4)) if dim is None else dim
    lo = np.array([draw(coord) for _ in range(d)])
    return geo.Box(lo, lo + np.array([draw(size) for _ in range(d)]))


@st.composite
def disks(draw, dim=None):
    d = draw(st.sampled_from([2, 3])) if dim is None else dim
    return geo.Disk([draw(coord) for _ in range(d)], draw(size))


@st.composite
def polygons(draw):
    """Star-shaped (hence simple) polygons around a random centre."""
    k = draw(st.integers(3, 8))
    gaps = np.array([draw(st.floats(0.2, 1.0)) for _ in range(k)])
    ang = np.cumsum(gaps) / gaps.sum() * 2 * np.pi
    r = np.array([draw(st.floats(0.4, 1.5)) for _ in range(k)])
    c = np.array([draw(coord), draw(coord)])
    return geo.Polygon(c + np.column_stack([r * np.cos(ang), r * np.sin(ang)]))


primitives2d = st.one_of(boxes(2), disks(2), polygons())


@st.composite
def csg2d(draw):
    """a op b with b moved to overlap a (so every operation has a non-empty result)."""
    a, b = draw(primitives2d), draw(primitives2d)
    ca = (a.lo + a.hi) / 2
    cb = (b.lo + b.hi) / 2
    frac = draw(st.floats(0.1, 0.6))
    shift = ca - cb + frac * (a.hi - a.lo) * np.array([1.0, 0.5])
    b = _moved(b, shift)
    op = draw(st.sampled_from(["|", "-", "&"]))
    if op == "&" and _fraction(a, b) > 0.05:
        return a & b
    if op == "-" and _fraction(a, b) < 0.95:
        return a - b
    return a | b


def _moved(g, s):
    if isinstance(g, geo.Box):
        return geo.Box(g.lo + s, g.hi + s)
    if isinstance(g, geo.Disk):
        return geo.Disk(g.center + s, g.radius)
    return geo.Polygon(g.vertices + s)


def _fraction(a, b):
    """The fraction of a's area inside b (so a & b and a - b are not empty)."""
    return member(b, a.sample_interior(2000, seed=0)).mean()


# ------------------------------------------------------------------------------ primitives

@SETTINGS
@given(g=st.one_of(boxes(), disks(), polygons()), method=st.sampled_from(QMC), seed=st.integers(0, 2**31))
def test_primitive_samples_inside_and_on_boundary(g, method, seed):
    x = g.sample_interior(300, method=method, seed=seed)
    assert x.shape == (300, g.dim)
    assert member(g, x).all()
    b = g.sample_boundary(300, method=method, seed=seed)
    assert b.shape == (300, g.dim)
    assert np.abs(g.sdf(b)).max() <= 1e-12 * max(1.0, np.abs(b).max())
    assert member(g, b).all()
    if g.dim > 1:   # an interval's boundary is its two end points, where x ± δn needs no care
        assert boundary_fraction(g, b, g.normal(b), 1e-7) >= 0.99


@SETTINGS
@given(g=csg2d(), method=st.sampled_from(QMC), seed=st.integers(0, 2**31))
def test_csg_samples_inside_and_on_boundary(g, method, seed):
    x = g.sample_interior(300, method=method, seed=seed)
    assert x.shape == (300, 2) and member(g, x).all()
    b = g.sample_boundary(400, method=method, seed=seed)
    assert b.shape == (400, 2)
    assert member(g, b).all()
    assert np.abs(g.sdf(b)).max() <= 1e-10
    # every sample is a boundary point of the result, with the result on the inner side of
    # its outward normal (a few may sit within δ of a corner)
    assert boundary_fraction(g, b, g.normal(b), 1e-7) >= 0.98


def test_difference_boundary_from_the_hole_lies_inside_a():
    a, b = geo.Box([0, 0], [2, 2]), geo.Disk([2, 1], 0.5)      # the disk pokes out of the box
    g = a - b
    x = g.sample_boundary(4000, method="sobol", seed=1)
    on_hole = np.abs(np.linalg.norm(x - [2, 1], axis=1) - 0.5) < 1e-12
    assert on_hole.any() and (x[on_hole, 0] <= 2 + 1e-12).all()
    # the half circle inside the box is length π/2 of a boundary of length 8 - 1 + π/2
    assert abs(on_hole.mean() - (math.pi / 2) / (7 + math.pi / 2)) < 0.02
    assert np.allclose(g.normal(x[on_hole]), -(x[on_hole] - [2, 1]) / 0.5, atol=1e-12)


def test_union_drops_the_shared_face_and_keeps_coincident_faces_once():
    g = geo.Box([0, 0], [1, 1]) | geo.Box([1, 0], [2, 1])     # a 2 × 1 rectangle
    x = g.sample_boundary(6000, method="sobol", seed=0)
    assert not (np.abs(x[:, 0] - 1.0) < 1e-12).any() or \
        (np.abs(x[np.abs(x[:, 0] - 1.0) < 1e-12, 1] - 0.5) >= 0.5 - 1e-12).all()
    # perimeter 6: bottom and top 2 each, sides 1 each (coincident edges counted once)
    bottom = np.mean(np.abs(x[:, 1]) < 1e-12)
    left = np.mean(np.abs(x[:, 0]) < 1e-12)
    assert abs(bottom - 2 / 6) < 0.01 and abs(left - 1 / 6) < 0.01


def test_l_shape_boundary_is_length_weighted():
    L = geo.Box([0, 0], [2, 2]) - geo.Box([1, 1], [2, 2])
    x = L.sample_boundary(8000, method="halton", seed=2)
    edges = {"x=0": np.abs(x[:, 0]) < 1e-12, "y=0": np.abs(x[:, 1]) < 1e-12,
             "x=1 (re-entrant)": (np.abs(x[:, 0] - 1) < 1e-12) & (x[:, 1] > 1),
             "y=1 (re-entrant)": (np.abs(x[:, 1] - 1) < 1e-12) & (x[:, 0] > 1)}
    want = {"x=0": 2 / 8, "y=0": 2 / 8, "x=1 (re-entrant)": 1 / 8, "y=1 (re-entrant)": 1 / 8}
    for k, m in edges.items():
        assert abs(m.mean() - want[k]) < 0.01, k
    assert L.normal([[1.0, 1.5]]).tolist() == [[1.0, 0.0]]      # out of the domain, into the cut


def test_ring_boundary_weights_and_interior_area():
    ring = geo.Disk([0, 0], 1.0) - geo.Disk([0, 0], 0.5)
    x = ring.sample_boundary(20000, seed=3)
    inner = np.abs(np.linalg.norm(x, axis=1) - 0.5) < 1e-12
    assert abs(inner.mean() - 1 / 3) < 0.01          # circumference 0.5 / (1 + 0.5)
    y = ring.sample_interior(20000, seed=3)
    r = np.linalg.norm(y, axis=1)
    assert (r >= 0.5 - 1e-12).all() and (r <= 1 + 1e-12).all()
    # uniform in area: P(r < 0.75) = (0.75² − 0.5²) / (1 − 0.5²)
    assert abs(np.mean(r < 0.75) - (0.75**2 - 0.25) / 0.75) < 0.01


@pytest.mark.parametrize("dim", [2, 3])
def test_ball_interior_and_sphere_are_uniform(dim):
    ball = geo.Disk(np.zeros(dim), 2.0)
    x = ball.sample_interior(40000, method="sobol", seed=0)
    r = np.linalg.norm(x, axis=1)
    assert abs(np.mean(r < 1.0) - 0.5 ** dim) < 0.005
    b = ball.sample_boundary(40000, method="sobol", seed=0)
    assert np.allclose(np.linalg.norm(b, axis=1), 2.0, atol=1e-14)
    assert abs(np.mean(b[:, 0] > 1.0) - (1 / 3 if dim == 2 else 1 / 4)) < 0.005   # cap / arc measure


def test_box_faces_by_measure_in_4d():
    box = geo.Box([0, 0, 0, 0], [1, 2, 3, 4])
    x = box.sample_boundary(24000, method="sobol", seed=0)
    n = box.normal(x)
    meas = np.array([24 / L for L in (1, 2, 3, 4)])             # each face pair's 3-volume
    for j in range(4):
        frac = np.mean(np.abs(n[:, j]) == 1.0)
        assert abs(frac - meas[j] / meas.sum()) < 0.005
    assert (np.abs(n).sum(axis=1) == 1).all()


def test_interval_boundary_is_its_end_points():
    x = geo.Box([-1], [2]).sample_boundary(10, method="sobol", seed=0)
    assert sorted(set(x[:, 0].tolist())) == [-1.0, 2.0]
    assert geo.Box([-1], [2]).normal([[-1.0], [2.0]]).tolist() == [[-1.0], [1.0]]


# ------------------------------------------------------------------------------ normals

def _fd_gradient(g, x, h=1e-6):
    out = np.empty_like(x)
    for i in range(x.shape[1]):
        e = np.zeros(x.shape[1])
        e[i] = h
        out[:, i] = (g.sdf(x + e) - g.sdf(x - e)) / (2 * h)
    return out


@pytest.mark.parametrize("g", [
    geo.Box([0, 0], [1, 2]), geo.Box([0, 0, 0], [1, 2, 3]), geo.Disk([0.5, -0.5], 0.7), geo.Disk([0, 0, 1], 2.0),
    geo.Polygon([[0, 0], [2, 0], [2, 1], [1, 1], [1, 2], [0, 2]]),
    geo.Box([0, 0], [1, 1]) - geo.Disk([0.5, 0.5], 0.2) - geo.Disk([0.2, 0.2], 0.1),
    geo.Disk([0, 0], 1) | geo.Box([0.5, -0.3], [1.5, 0.3]),
    geo.Disk([0, 0], 1) & geo.Disk([0.8, 0], 0.6),
], ids=repr)
def test_normals_match_finite_differences_of_the_signed_distance(g):
    x = g.sample_boundary(2000, method="sobol", seed=0)
    n = g.normal(x)
    assert np.allclose(np.linalg.norm(n, axis=1), 1.0, atol=1e-14)
    err = np.linalg.norm(_fd_gradient(g, x) - n, axis=1)
    # away from corners (within h of an edge the central difference straddles two faces)
    assert np.mean(err < 1e-6) >= 0.995, np.sort(err)[-5:]


def test_sdf_values_are_exact_for_primitives():
    assert geo.Box([0, 0], [1, 1]).sdf([[2.0, 2.0], [0.5, 0.25]]).tolist() == [math.sqrt(2), -0.25]
    p = geo.Polygon([[0, 0], [1, 0], [0, 1]])
    assert np.allclose(p.sdf([[0.25, 0.25], [1.0, 1.0]]), [-0.25, math.sqrt(0.5)], atol=1e-15)


# ------------------------------------------------------------------------------ QMC and grids

@pytest.mark.parametrize("method", QMC)
@pytest.mark.parametrize("g", [geo.Box([0, 0, 0], [1, 2, 3]), geo.Disk([0, 0], 1),
                               geo.Box([0, 0], [2, 2]) - geo.Box([1, 1], [2, 2])], ids=repr)
def test_sampling_is_deterministic_per_seed(g, method):
    for f in (g.sample_interior, g.sample_boundary):
        a, b, c = f(257, method=method, seed=5), f(257, method=method, seed=5), f(257, method=method, seed=6)
        assert np.array_equal(a, b)
        assert not np.array_equal(a, c)


def test_sobol_box_points_are_scipys_sobol_points():
    from scipy.stats import qmc
    box = geo.Box([-1, 0], [1, 3])
    ref = qmc.Sobol(2, scramble=True, seed=7).random(64) * [2, 3] + [-1, 0]
    assert np.array_equal(box.sample_interior(64, method="sobol", seed=7), ref)
    # odd counts continue the same sequence (buffered in power-of-two blocks, no warning)
    assert np.array_equal(box.sample_interior(50, method="sobol", seed=7), ref[:50])


def test_sobol_has_lower_discrepancy_than_uniform():
    from scipy.stats import qmc
    box = geo.Box([0, 0], [1, 1])
    d_sobol = qmc.discrepancy(box.sample_interior(1024, method="sobol", seed=0))
    d_unif = qmc.discrepancy(box.sample_interior(1024, method="uniform", seed=0))
    assert d_sobol < d_unif / 5


def test_grid_sampling_is_regular_and_about_n():
    box = geo.Box([0, 0], [1, 1])
    x = box.sample_interior(100, method="grid")
    assert x.shape == (100, 2) and np.allclose(np.unique(x[:, 0]), (np.arange(10) + 0.5) / 10)
    L = geo.Box([0, 0], [2, 2]) - geo.Box([1, 1], [2, 2])
    y = L.sample_interior(3000, method="grid")
    assert abs(y.shape[0] - 3000) <= 0.05 * 3000 and member(L, y).all()
    b = geo.Disk([0, 0], 1).sample_boundary(360, method="grid")
    ang = np.sort(np.arctan2(b[:, 1], b[:, 0]))
    assert b.shape == (360, 2) and np.allclose(np.diff(ang), 2 * np.pi / 360)


def test_grid_helper_reshapes_and_masks():
    disk = geo.Disk([0, 0], 1)
    g = disk.grid((21, 31))
    assert g.points.shape == (651, 2)
    u = g.reshape(g.points[:, 0] + 10 * g.points[:, 1])
    assert u.shape == (21, 31)
    X, Y = np.meshgrid(g.axes[0], g.axes[1], indexing="ij")
    inside = X**2 + Y**2 <= 1 + 1e-9          # (0.6, 0.8) is on the circle up to rounding
    assert np.array_equal(np.isnan(u), ~inside)
    assert np.allclose(u[inside], (X + 10 * Y)[inside])
    assert g.reshape(np.ones((651, 2)), fill=0.0).shape == (21, 31, 2)
    with pytest.raises(ValueError, match="one row per grid point"):
        g.reshape(np.ones(5))


def test_sample_face_pairs_points_across_a_period():
    box = geo.Box([0, -1], [1, 1])
    lo, hi = box.sample_face(33, 1, "lo", seed=4), box.sample_face(33, 1, "hi", seed=4)
    assert (lo[:, 1] == -1).all() and (hi[:, 1] == 1).all() and np.array_equal(lo[:, 0], hi[:, 0])


def test_domain_for_problems():
    L = geo.Box([0, 0], [2, 2]) - geo.Box([1, 1], [2, 2])
    assert L.domain(["x", "y"]) == {"x": (0.0, 2.0), "y": (0.0, 2.0)}


# ------------------------------------------------------------------------------ errors

@pytest.mark.parametrize("make, match", [
    (lambda: geo.Box([0, 0], [1]), "hi must have the same length"),
    (lambda: geo.Box([0, 1], [1, 0]), "lo < hi"),
    (lambda: geo.Box(np.zeros(5), np.ones(5)), "1 to 4"),
    (lambda: geo.Disk([0, 0], -1), "radius"),
    (lambda: geo.Disk([0], 1), "2 or 3"),
    (lambda: geo.Polygon([[0, 0], [1, 1]]), "at least 3"),
    (lambda: geo.Polygon([[0, 0], [2, 2], [2, 0], [0, 1]]), "simple polygon"),
    (lambda: geo.Box([0, 0], [1, 1]) | geo.Disk([0, 0, 0], 1), "cannot combine"),
    (lambda: geo.Box([0, 0], [1, 1]) & geo.Box([2, 2], [3, 3]), "empty"),
    (lambda: geo.Box([0], [1]).sample_interior(10, method="random"), "method"),
    (lambda: geo.Box([0], [1]).sample_interior(-1), "n must"),
    (lambda: geo.Box([0], [1]).sample_boundary(3, seed=-2), "seed"),
    (lambda: geo.Box([0, 0], [1, 1]).sample_face(3, axis=2, side="lo"), "axis"),
    (lambda: geo.Box([0, 0], [1, 1]).inside(np.zeros((3, 3))), "shape"),
    (lambda: geo.Grid([0, 0], [1, 1], (1, 5)), "shape"),
])
def test_bad_arguments_raise_clear_errors(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_union_with_a_non_geometry_is_a_type_error():
    with pytest.raises(TypeError, match="right operand"):
        geo.Union(geo.Box([0], [1]), [0, 1])


def test_coincident_faces_follow_the_regularised_set():
    # L = [-1, 1]² minus [0, 1]²: the removed square's edges x = 1 and y = 1 lie on the outer
    # box but not on L (the min/max distance alone is 0 there); the corner (1, 0) is on L
    L = geo.Box([-1, -1], [1, 1]) - geo.Box([0, 0], [1, 1])
    pts = np.array([[1, 0.5], [1, 1], [0.5, 1], [0, 0], [1, 0], [0, 0.5], [0.5, 0.5], [-1, 1]])
    assert L.inside(pts).tolist() == [False, False, False, True, True, True, False, True]
    assert L.on_boundary(pts).tolist() == [False, False, False, True, True, True, False, True]
    assert int(L.grid((129, 129)).mask.sum()) == 129 * 129 - 64 * 64   # the open square's nodes are out
    U = geo.Box([0, 0], [1, 1]) | geo.Box([1, 0], [2, 1])       # the shared face x = 1 is interior
    pts = np.array([[1, 0.5], [1, 0], [1, 1], [2, 0.5]])
    assert U.inside(pts).tolist() == [True, True, True, True]
    assert U.on_boundary(pts).tolist() == [False, True, True, True]
