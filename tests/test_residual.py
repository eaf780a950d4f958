"""Tests for pinncore.residual: tracing residuals into term tables."""

import doctest

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import pinncore as pc
import pinncore.residual as R
import pinncore.table as T
from pinncore.network import stream_plan
from pinncore.residual import FUNCTIONS, DomainError, Expr, Function
from pinncore.table import Table, trace

PI = np.pi


def rng(seed=0):
    return np.random.default_rng(seed)


def var_index(table, o, multi):
    return table.vars.index((o, tuple(multi)))


def monomial_dict(table):
    return {(c, f): coef for c, f, coef in table.monomials}


def fd_check(table, J, h=1e-6, rtol=1e-7):
    """dr from evaluate must match central differences of r from evaluate."""
    r, dr = table.evaluate(J)
    for v in range(J.shape[0]):
        Jp, Jm = J.copy(), J.copy()
        Jp[v] += h
        Jm[v] -= h
        fd = (table.evaluate(Jp)[0] - table.evaluate(Jm)[0]) / (2 * h)
        scale = np.max(np.abs(dr[:, v])) + 1.0
        np.testing.assert_allclose(dr[:, v], fd, rtol=rtol, atol=rtol * scale)
    return r, dr


# --------------------------------------------------------------------------- polynomial


def test_harmonic_table():
    omega = 2 * PI
    t = np.linspace(0, 1, 7)[:, None]
    tab = trace(lambda x, u: u.tt + omega**2 * u, ["t"], ["u"], t, name="pde")
    assert isinstance(tab, Table)
    assert tab.polynomial
    assert (tab.n_components, tab.n_points) == (1, 7)
    assert tab.vars == [(0, ()), (0, (0, 0))]
    m = monomial_dict(tab)
    assert set(m) == {(0, (0,)), (0, (1,))}
    np.testing.assert_array_equal(m[(0, (0,))], np.full(7, omega**2))
    np.testing.assert_array_equal(m[(0, (1,))], np.ones(7))
    for _, _, coef in tab.monomials:
        assert coef.dtype == np.float64 and coef.shape == (7,)

    J = rng().normal(size=(2, 7))
    r, dr = tab.evaluate(J)
    np.testing.assert_allclose(r[0], J[1] + omega**2 * J[0], rtol=1e-14)
    np.testing.assert_allclose(dr[0, 0], omega**2)
    np.testing.assert_allclose(dr[0, 1], 1.0)
    assert r.shape == (1, 7) and dr.shape == (1, 2, 7)


def test_burgers_table():
    nu = 0.01 / PI
    pts = rng(1).uniform(-1, 1, size=(11, 2))
    tab = trace(lambda x, u: u.t + u * u.x - nu * u.xx, ["t", "x"], ["u"], pts)
    assert tab.polynomial
    assert tab.vars == [(0, ()), (0, (0,)), (0, (1,)), (0, (1, 1))]
    m = monomial_dict(tab)
    assert set(m) == {(0, (1,)), (0, (0, 2)), (0, (3,))}
    np.testing.assert_array_equal(m[(0, (0, 2))], 1.0)      # u * u.x
    np.testing.assert_allclose(m[(0, (3,))], -nu, rtol=1e-15)

    u, ut, ux, uxx = J = rng(2).normal(size=(4, 11))
    r, dr = tab.evaluate(J)
    np.testing.assert_allclose(r[0], ut + u * ux - nu * uxx, rtol=1e-13)
    np.testing.assert_allclose(dr[0], [ux, np.ones(11), u, np.full(11, -nu)], rtol=1e-14)


def test_two_components_constant_monomial():
    tab = trace(lambda x, u: [u - 1.0, u.t], ["t"], ["u"], [[0.0]], name="ic")
    assert tab.n_components == 2 and tab.polynomial
    assert tab.vars == [(0, ()), (0, (0,))]
    m = monomial_dict(tab)
    assert set(m) == {(0, ()), (0, (0,)), (1, (1,))}
    np.testing.assert_array_equal(m[(0, ())], [-1.0])
    r, dr = tab.evaluate(np.array([[3.0], [5.0]]))
    np.testing.assert_array_equal(r, [[2.0], [5.0]])
    np.testing.assert_array_equal(dr[:, :, 0], [[1.0, 0.0], [0.0, 1.0]])


def test_navier_stokes_like_system_and_mixed_derivatives():
    nu = 0.05
    pts = rng(3).uniform(size=(9, 2))

    def res(x, u, v, p):
        return [u.x + v.y, u * u.x + v * u.y + p.x - nu * (u.xx + u.yy)]

    tab = trace(res, ["x", "y"], ["u", "v", "p"], pts)
    assert tab.polynomial and tab.n_components == 2
    assert tab.vars == [(0, ()), (0, (0,)), (0, (1,)), (0, (0, 0)), (0, (1, 1)),
                        (1, ()), (1, (1,)), (2, (0,))]
    J = rng(4).normal(size=(len(tab.vars), 9))
    u, ux, uy, uxx, uyy, v, vy, px = J
    r, dr = tab.evaluate(J)
    np.testing.assert_allclose(r[0], ux + vy, rtol=1e-14)
    np.testing.assert_allclose(r[1], u * ux + v * uy + px - nu * (uxx + uyy), rtol=1e-13)
    np.testing.assert_allclose(dr[1, 0], ux, rtol=1e-15)     # d/du
    np.testing.assert_allclose(dr[1, 5], uy, rtol=1e-15)     # d/dv
    np.testing.assert_array_equal(dr[0, 0], 0.0)

    # u.tx and u.xt are the same jet variable
    tab2 = trace(lambda x, u: u.tx - 2.0 * u.xt, ["t", "x"], ["u"], pts)
    assert tab2.vars == [(0, (0, 1))]
    np.testing.assert_array_equal(monomial_dict(tab2)[(0, (0,))], -1.0)

    # multi-letter input names through u.d(...), x[...] and u.<name>
    tab3 = trace(lambda x, u: u.d("x1", "x2") + u.d("x2", "x1") + u.d("x1") * x["x2"]
                 + u.x2 - u.d() * x[0],
                 ["x1", "x2"], ["u"], pts)
    assert tab3.vars == [(0, ()), (0, (0,)), (0, (1,)), (0, (0, 1))]
    m = monomial_dict(tab3)
    np.testing.assert_array_equal(m[(0, (3,))], 2.0)
    np.testing.assert_array_equal(m[(0, (1,))], pts[:, 1])
    np.testing.assert_array_equal(m[(0, (0,))], -pts[:, 0])
    np.testing.assert_array_equal(m[(0, (2,))], 1.0)


def test_source_term_coefficient():
    k = 1.0
    pts = rng(5).uniform(-1, 1, size=(13, 2))

    def res(x, u):
        return u.xx + u.yy + k**2 * u - R.sin(PI * x.x) * R.sin(4 * PI * x.y)

    tab = trace(res, ["x", "y"], ["u"], pts)
    assert tab.polynomial
    m = monomial_dict(tab)
    np.testing.assert_allclose(m[(0, ())], -np.sin(PI * pts[:, 0]) * np.sin(4 * PI * pts[:, 1]),
                               rtol=1e-15)
    tab2 = trace(lambda x, u: u + R.sin(PI * x.x), ["x"], ["u"], pts[:, :1])
    np.testing.assert_allclose(monomial_dict(tab2)[(0, ())], np.sin(PI * pts[:, 0]), rtol=1e-15)


def test_coordinate_coefficients_division_and_powers():
    pts = rng(6).uniform(0.5, 2.0, size=(8, 1))
    t = pts[:, 0]
    tab = trace(lambda x, u: u.t / x.t + u**2 / (1 + x.t**2) + x.t**-0.5 * u ** 3 + (2 * u) / 4,
                ["t"], ["u"], pts)
    assert tab.polynomial
    m = monomial_dict(tab)
    np.testing.assert_allclose(m[(0, (1,))], 1 / t, rtol=1e-15)
    np.testing.assert_allclose(m[(0, (0, 0))], 1 / (1 + t**2), rtol=1e-15)
    np.testing.assert_allclose(m[(0, (0, 0, 0))], t**-0.5, rtol=1e-15)
    np.testing.assert_allclose(m[(0, (0,))], 0.5, rtol=1e-15)


def test_coordinate_only_residual_and_empty_points():
    tab = trace(lambda x, u: x.t * 2.0, ["t"], ["u"], [[1.0], [2.0]])
    assert tab.polynomial and tab.vars == []
    r, dr = tab.evaluate(np.zeros((0, 2)))
    np.testing.assert_array_equal(r, [[2.0, 4.0]])
    assert dr.shape == (1, 0, 2)

    tab0 = trace(lambda x, u: u.t + u * u, ["t"], ["u"], np.zeros((0, 1)))
    assert tab0.n_points == 0 and tab0.vars == [(0, ()), (0, (0,))]
    assert len(tab0.monomials) == 2
    r, dr = tab0.evaluate(np.zeros((2, 0)))
    assert r.shape == (1, 0) and dr.shape == (1, 2, 0)


def test_cancellation_keeps_table_small():
    tab = trace(lambda x, u: u.t - u.t + u, ["t"], ["u"], [[0.3]])
    assert [f for _, f, _ in tab.monomials] == [(0,)]


def test_numpy_interop():
    pts = rng(7).uniform(size=(5, 1))
    tab = trace(lambda x, u: np.float64(3.0) * u + np.sin(x.t) * u.t, ["t"], ["u"], pts)
    m = monomial_dict(tab)
    np.testing.assert_array_equal(m[(0, (0,))], 3.0)
    np.testing.assert_allclose(m[(0, (1,))], np.sin(pts[:, 0]), rtol=1e-15)
    # the module functions pass numbers / arrays straight to numpy
    assert R.cos(0.0) == 1.0
    np.testing.assert_array_equal(R.exp(np.zeros(3)), np.ones(3))
    with pytest.raises(ValueError, match="raised TypeError: numpy arrays"):
        trace(lambda x, u: np.ones(5) * u, ["t"], ["u"], pts)


# ---------------------------------------------------------------------------- transforms


def test_hard_constraint_harmonic():
    omega = 2 * PI
    pts = rng(8).uniform(size=(10, 1))
    t = pts[:, 0]
    tab = trace(lambda x, u: u.tt + omega**2 * u, ["t"], ["u"], pts,
                transform=lambda x, n: 1.0 + x.t**2 * n)
    assert tab.polynomial
    assert tab.vars == [(0, ()), (0, (0,)), (0, (0, 0))]
    n, nt, ntt = J = rng(9).normal(size=(3, 10))
    r, dr = tab.evaluate(J)
    # u = 1 + t^2 n, u_tt = 2 n + 4 t n_t + t^2 n_tt
    np.testing.assert_allclose(r[0], 2 * n + 4 * t * nt + t**2 * ntt + omega**2 * (1 + t**2 * n),
                               rtol=1e-12)
    np.testing.assert_allclose(dr[0], [2 + omega**2 * t**2, 4 * t, t**2], rtol=1e-14)

    # The IC is met exactly: at t = 0 the residual u - 1 has no dependence on n at all.
    ic = trace(lambda x, u: [u - 1.0, u.t], ["t"], ["u"], [[0.0]],
               transform=lambda x, n: 1.0 + x.t**2 * n)
    r, dr = ic.evaluate(rng().normal(size=(len(ic.vars), 1)))
    np.testing.assert_array_equal(r, 0.0)
    np.testing.assert_array_equal(dr, 0.0)


def test_hard_constraint_chain_and_product_rule():
    pts = rng(10).uniform(size=(12, 2))
    t, x = pts.T

    def transform(x, n):
        return R.exp(-x.t) * R.sin(PI * x.x) * n + x.x * (1 - x.x)

    tab = trace(lambda x, u: [u.t - u.xx, u.tx, u], ["t", "x"], ["u"], pts, transform=transform)
    assert tab.polynomial
    assert tab.vars == [(0, ()), (0, (0,)), (0, (1,)), (0, (0, 1)), (0, (1, 1))]
    n, nt, nx, ntx, nxx = J = rng(11).normal(size=(5, 12))
    r, dr = tab.evaluate(J)
    e, s, c = np.exp(-t), np.sin(PI * x), np.cos(PI * x)
    u_t = e * s * (nt - n)
    u_xx = e * (-PI**2 * s * n + 2 * PI * c * nx + s * nxx) - 2
    u_tx = e * (PI * c * (nt - n) + s * (ntx - nx))
    np.testing.assert_allclose(r[0], u_t - u_xx, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(r[1], u_tx, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(r[2], e * s * n + x * (1 - x), rtol=1e-13)
    np.testing.assert_allclose(dr[0, 4], -e * s, rtol=1e-13)           # d r0 / d n_xx
    np.testing.assert_allclose(dr[0, 0], -e * s + PI**2 * e * s, rtol=1e-12)
    np.testing.assert_allclose(dr[1, 3], e * s, rtol=1e-13)            # d r1 / d n_tx
    fd_check(tab, J)


def test_transform_division_by_coordinates_and_several_outputs():
    pts = rng(12).uniform(1.0, 2.0, size=(6, 1))
    t = pts[:, 0]
    tab = trace(lambda x, u, v: u.t + v.t, ["t"], ["u", "v"], pts,
                transform=lambda x, a, b: (a / x.t, x.t * b))
    assert tab.polynomial
    assert tab.vars == [(0, ()), (0, (0,)), (1, ()), (1, (0,))]
    a, at, b, bt = J = rng(13).normal(size=(4, 6))
    r, _ = tab.evaluate(J)
    np.testing.assert_allclose(r[0], at / t - a / t**2 + b + t * bt, rtol=1e-13)


def test_non_polynomial_transform():
    pts = rng(14).uniform(size=(7, 1))
    tab = trace(lambda x, u: u.tt, ["t"], ["u"], pts, transform=lambda x, n: R.tanh(n))
    assert not tab.polynomial and tab.monomials == []
    n, nt, ntt = J = rng(15).normal(size=(3, 7))
    r, _ = fd_check(tab, J)
    th = np.tanh(n)
    s = 1 - th**2
    np.testing.assert_allclose(r[0], s * ntt - 2 * th * s * nt**2, rtol=1e-12)


# ------------------------------------------------------------------------ non-polynomial


@pytest.mark.parametrize("res", [
    lambda x, u: R.sin(u) - u.t,
    lambda x, u: u / u.t,
    lambda x, u: u**0.5,
    lambda x, u: [R.exp(u) * R.cos(u.t), R.log(u) + R.sqrt(u.t), 2.0**u, u**-2, x.t / u],
    lambda x, u: np.tanh(u * u.t) - 1.0 / (1.0 + u**2),
])
def test_non_polynomial_fd(res):
    pts = rng(16).uniform(0.1, 1.0, size=(6, 1))
    tab = trace(res, ["t"], ["u"], pts)
    assert not tab.polynomial and tab.monomials == []
    J = rng(17).uniform(0.5, 2.0, size=(len(tab.vars), 6))   # positive: log/sqrt defined
    fd_check(tab, J)


def test_non_polynomial_values():
    pts = rng(18).uniform(size=(5, 1))
    tab = trace(lambda x, u: R.sin(u) - u.t, ["t"], ["u"], pts)
    u, ut = J = rng(19).normal(size=(2, 5))
    r, dr = tab.evaluate(J)
    np.testing.assert_allclose(r[0], np.sin(u) - ut, rtol=1e-15)
    np.testing.assert_allclose(dr[0], [np.cos(u), -np.ones(5)], rtol=1e-15)


def test_dag_path_matches_table_path():
    nu = 0.01 / PI
    pts = rng(20).uniform(-1, 1, size=(25, 2))

    def res(x, u):
        return [u.t + u * u.x - nu * u.xx + R.sin(PI * x.x) * u**3,
                (u - x.t) ** 2 / (1 + x.x**2), 3.0 - u.tx * u.t]

    tab = trace(res, ["t", "x"], ["u"], pts,
                transform=lambda x, n: -R.sin(PI * x.x) + (1 - x.x**2) * x.t * n)
    assert tab.polynomial
    J = rng(21).normal(size=(len(tab.vars), 25))
    r1, dr1 = tab.evaluate(J)
    r2, dr2 = tab.evaluate_dag(J)
    np.testing.assert_allclose(r1, r2, rtol=1e-14, atol=1e-14 * np.abs(r1).max())
    np.testing.assert_allclose(dr1, dr2, rtol=1e-14, atol=1e-14 * np.abs(dr1).max())


# ------------------------------------------------------------------------------ errors


def test_unknown_derivative():
    with pytest.raises(ValueError, match=r"unknown derivative 'u.q': inputs are \['t', 'x'\]"):
        trace(lambda x, u: u.q, ["t", "x"], ["u"], np.zeros((1, 2)))
    with pytest.raises(ValueError, match="unknown derivative name 'z'"):
        trace(lambda x, u: u.d("z"), ["t", "x"], ["u"], np.zeros((1, 2)))
    # u.x1 letters are not single-letter input names here
    with pytest.raises(ValueError, match="unknown derivative 'u.tq'"):
        trace(lambda x, u: u.tq, ["t", "x"], ["u"], np.zeros((1, 2)))


def test_unknown_derivative_is_also_attribute_error():
    seen = {}

    def res(x, u):
        seen["has"] = hasattr(u, "q"), hasattr(u, "t")
        return u

    trace(res, ["t"], ["u"], [[0.0]])
    assert seen["has"] == (False, True)


def test_order_three():
    with pytest.raises(ValueError, match="order"):
        trace(lambda x, u: u.ttt, ["t"], ["u"], [[0.0]])
    with pytest.raises(ValueError, match="order"):
        trace(lambda x, u: u.tt.t, ["t"], ["u"], [[0.0]])
    with pytest.raises(ValueError, match="order"):
        trace(lambda x, u: u.d("t", "x", "x"), ["t", "x"], ["u"], np.zeros((1, 2)))
    # transform that already uses n.t: u.tt would need n.ttt
    with pytest.raises(ValueError, match="order > 2"):
        trace(lambda x, u: u.tt, ["t"], ["u"], [[0.0]], transform=lambda x, n: n + n.t)
    # direct symbolic differentiation past order 2
    with pytest.raises(ValueError, match="order > 2"):
        trace(lambda x, u: u.tt.diff(0), ["t"], ["u"], [[0.0]])


def test_unknown_coordinate():
    with pytest.raises(ValueError, match=r"unknown coordinate 'x.y': inputs are \['t', 'x'\]"):
        trace(lambda x, u: u * x.y, ["t", "x"], ["u"], np.zeros((1, 2)))
    with pytest.raises(ValueError, match="unknown coordinate"):
        trace(lambda x, u: u * x["y"], ["t", "x"], ["u"], np.zeros((1, 2)))
    with pytest.raises(ValueError, match="out of range"):
        trace(lambda x, u: u * x[2], ["t", "x"], ["u"], np.zeros((1, 2)))


@pytest.mark.parametrize("ret, kind", [
    (None, "NoneType"), (3.0, "float"), (np.zeros(3), "ndarray"), ([], "an empty list"),
    ("u", "str"),
])
def test_residual_returning_non_expression(ret, kind):
    with pytest.raises(ValueError, match=f"residual 'pde' returned {kind}.*expected an expression"):
        trace(lambda x, u: ret, ["t"], ["u"], [[0.0]], name="pde")


def test_residual_component_not_expression():
    with pytest.raises(ValueError, match="component 1 is float"):
        trace(lambda x, u: [u, 0.0], ["t"], ["u"], [[0.0]], name="pde")


def test_residual_raising_is_chained():
    def res(x, u):
        raise KeyError("boom")

    with pytest.raises(ValueError, match="residual 'bc' raised KeyError") as info:
        trace(res, ["t"], ["u"], [[0.0]], name="bc")
    assert isinstance(info.value.__cause__, KeyError)


def test_no_branching_on_values():
    seen = {}

    def res(x, u):
        for f in (bool, float, lambda e: e < 1.0, lambda e: e == u, lambda e: e != 0):
            with pytest.raises(TypeError, match="may not branch"):
                f(u + 1.0)
        seen["ok"] = True
        return u

    trace(res, ["t"], ["u"], [[0.0]])
    assert seen["ok"]
    with pytest.raises(ValueError, match="raised TypeError.*may not branch"):
        trace(lambda x, u: u if u > 0 else -u, ["t"], ["u"], [[0.0]])


def test_bad_exponent_and_bad_operands():
    def res(x, u):
        with pytest.raises(TypeError, match="exponent"):
            u ** u
        with pytest.raises(TypeError, match="cannot combine"):
            u + "a"
        with pytest.raises(TypeError):
            u + 1j
        return u

    trace(res, ["t"], ["u"], [[0.0]])


def test_bad_arguments():
    with pytest.raises(ValueError, match="shape"):
        trace(lambda x, u: u, ["t", "x"], ["u"], np.zeros((3, 3)))
    with pytest.raises(ValueError, match="duplicate"):
        trace(lambda x, u: u, ["t", "t"], ["u"], np.zeros((3, 2)))
    with pytest.raises(ValueError, match="expressions for 2 outputs"):
        trace(lambda x, u, v: u, ["t"], ["u", "v"], [[0.0]], transform=lambda x, a, b: a)
    tab = trace(lambda x, u: u, ["t"], ["u"], [[0.0]])
    with pytest.raises(ValueError, match="shape"):
        tab.evaluate(np.zeros((2, 1)))


def test_expr_is_immutable_and_printable():
    captured = {}

    def res(x, u):
        e = u.t + u * u.x - 0.5 * R.sin(x.x)
        captured["s"] = str(e)
        with pytest.raises(AttributeError):
            e.op = "add"
        return e

    trace(res, ["t", "x"], ["u"], np.zeros((1, 2)))
    assert captured["s"] == "u.t + u*u.x - 0.5*sin(x.x)"


# ----------------------------------------------------------------------------- helpers


def streams(multis):
    """The kernel streams (network.stream_plan) for a set of multi-indices, in stream order."""
    return list(stream_plan(sorted(set(multis), key=lambda m: (len(m), m)))[2])


def test_table_vars_map_to_kernel_streams():
    # (residual.jet_closure duplicated network.stream_plan and had no caller: it is gone; its
    # assertions now hold for the one stream planner.)
    assert streams([(), (0, 0)]) == [(), (0,), (0, 0)]
    assert streams([(1,), (0, 1), ()]) == [(), (0,), (1,), (0, 1)]
    assert streams([(1, 1), (0,)]) == [(), (0,), (1,), (1, 1)]
    assert streams([]) == [()]
    tab = trace(lambda x, u: u.t + u * u.x - u.xx, ["t", "x"], ["u"], np.zeros((1, 2)))
    assert streams([m for _, m in tab.vars]) == [(), (0,), (1,), (1, 1)]


def test_docstring_examples():
    failures, _ = doctest.testmod(R)
    assert failures == 0


# -------------------------------------------------------------------------- properties

DERIVS = ["", "t", "x", "tt", "tx", "xx"]
term_st = st.tuples(
    st.floats(-3, 3, allow_nan=False),                       # constant factor
    st.booleans(),                                            # multiply by a coordinate term?
    st.lists(st.tuples(st.integers(0, 1), st.sampled_from(DERIVS)), max_size=3),
)


@settings(max_examples=60, deadline=None)
@given(terms=st.lists(term_st, min_size=1, max_size=5),
       n_comp=st.integers(1, 2),
       use_transform=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_property_table_equals_dag(terms, n_comp, use_transform, seed):
    def field_var(f, d):
        return f.d(*d) if d else f

    def res(x, u, v):
        fields = (u, v)
        comps = []
        for c in range(n_comp):
            total = 0.0 * u
            for k, (coef, coord, factors) in enumerate(terms):
                if k % n_comp != c and len(terms) >= n_comp:
                    continue
                term = coef * (R.cos(x.x) + x.t if coord else 1.0)
                for o, d in factors:
                    term = term * field_var(fields[o], d)
                total = total + term
            comps.append(total)
        return comps

    transform = (lambda x, a, b: (x.t * a + 1.0, R.exp(x.x) * b - x.t)) if use_transform \
        else None
    gen = np.random.default_rng(seed)
    pts = gen.uniform(-1, 1, size=(4, 2))
    tab = trace(res, ["t", "x"], ["u", "v"], pts, transform=transform)
    assert tab.polynomial
    J = gen.normal(size=(len(tab.vars), 4))
    r1, dr1 = tab.evaluate(J)
    r2, dr2 = tab.evaluate_dag(J)
    scale = 1.0 + np.abs(r2).max()
    np.testing.assert_allclose(r1, r2, rtol=1e-12, atol=1e-12 * scale)
    dscale = 1.0 + (np.abs(dr2).max() if dr2.size else 0.0)
    np.testing.assert_allclose(dr1, dr2, rtol=1e-12, atol=1e-12 * dscale)


# ----------------------------------------------------------------- function registry
# Every entry of the registry is tested here automatically: adding a function to the
# language (one Function(...) line in residual.py) adds it to these tests.

FN_NAMES = list(FUNCTIONS)


def fn_args(f, size, seed):
    """Arguments inside the function's domain and away from 0 (abs/sign kinks)."""
    gen = rng(seed)
    mag = gen.uniform(0.3, 1.5, size=size)
    return mag if f.domain is not None else mag * gen.choice([-1.0, 1.0], size=size)


def fd1(f, a, h=1e-6):
    return (f.numpy(a + h) - f.numpy(a - h)) / (2 * h)


def fd2(f, a, h=1e-4):
    return (f.numpy(a + h) - 2 * f.numpy(a) + f.numpy(a - h)) / h**2


def test_registry_holds_the_language():
    assert FN_NAMES[:6] == ["sin", "cos", "exp", "tanh", "log", "sqrt"]
    assert {"abs", "sign", "sinh", "cosh"} <= set(FN_NAMES)
    for name, f in FUNCTIONS.items():
        assert isinstance(f, Function) and f.name == name
        assert getattr(pc, name) is f and getattr(R, name) is f        # pc.sin is the entry
        assert R._UFUNCS[f.numpy] is f                                   # np.sin(field) -> the entry
    # the public names: pc.__all__ star-exports every function but the builtin's name abs
    assert [n for n in pc.__all__ if n in FUNCTIONS] == [n for n in FN_NAMES if n != "abs"]
    ns = {}
    exec("from pinncore import *", ns)
    assert "abs" not in ns and ns["sin"] is FUNCTIONS["sin"]
    with pytest.raises(ValueError, match="'sin' is defined twice"):
        Function("sin", np.sin, lambda a, fa: FUNCTIONS["cos"](a))
    assert FUNCTIONS["sin"].numpy is np.sin


@pytest.mark.parametrize("name", FN_NAMES)
def test_function_value_and_derivative(name):
    """Value against NumPy, exact derivative (dual path) against finite differences and against
    the symbolic rule, all from the one registry entry."""
    f = FUNCTIONS[name]
    pts = rng(30).uniform(size=(9, 1))
    tab = trace(lambda x, u: f(u) * u.t, ["t"], ["u"], pts, name="pde")
    assert not tab.polynomial
    u, ut = J = np.stack([fn_args(f, 9, 31), rng(32).normal(size=9)])
    r, dr = fd_check(tab, J)
    np.testing.assert_allclose(r[0], f.numpy(u) * ut, rtol=1e-15)
    np.testing.assert_allclose(dr[0, 0], fd1(f, u) * ut, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(dr[0, 1], f.numpy(u), rtol=1e-15)
    # symbolic: (f(u)).t = f'(u) u.t, differentiated by the rule on expressions
    sym = trace(lambda x, u: f(u).diff(0), ["t"], ["u"], pts)   # (sign: 0, no variables left)
    Jsym = J[[tab.vars.index(v) for v in sym.vars]]
    np.testing.assert_allclose(sym.evaluate(Jsym)[0][0], fd1(f, u) * ut, rtol=1e-7, atol=1e-9)
    # pc.<name>, np.<ufunc> and the printing name agree
    same = trace(lambda x, u: f.numpy(u) * u.t, ["t"], ["u"], pts)
    np.testing.assert_array_equal(same.evaluate(J)[0], r)
    seen = {}
    trace(lambda x, u: seen.setdefault("s", str(f(u.t) + f.numpy(u))) and u, ["t"], ["u"], pts)
    assert seen["s"] == f"{name}(u.t) + {name}(u)"
    # numbers and arrays go straight to NumPy
    a = fn_args(f, 4, 33)
    np.testing.assert_array_equal(f(a), f.numpy(a))
    assert f(float(a[0])) == f.numpy(a[0])


@pytest.mark.parametrize("name", FN_NAMES)
def test_function_in_transform_second_derivative(name):
    """A hard constraint u = f(n): u.tt = f''(n) n.t^2 + f'(n) n.tt, by the rule applied twice."""
    f = FUNCTIONS[name]
    pts = rng(34).uniform(size=(8, 1))
    tab = trace(lambda x, u: u.tt, ["t"], ["u"], pts, transform=lambda x, n: f(n))
    n, nt, ntt = jets = fn_args(f, 8, 35), rng(36).normal(size=8), rng(37).normal(size=8)
    # the table keeps only the variables with a non-zero rule (|n|'' = sign(n) n.tt, sign'' = 0)
    J = np.array([jets[len(multi)] for _, multi in tab.vars]).reshape(len(tab.vars), 8)
    r, _ = fd_check(tab, J)
    np.testing.assert_allclose(r[0], fd2(f, n) * nt**2 + fd1(f, n) * ntt, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", FN_NAMES)
def test_function_of_coordinates_is_a_coefficient(name):
    f = FUNCTIONS[name]
    pts = rng(38).uniform(0.2, 1.0, size=(6, 1))
    tab = trace(lambda x, u: u * f(x.t) + f(x.t - 0.1), ["t"], ["u"], pts)
    assert tab.polynomial
    m = monomial_dict(tab)
    np.testing.assert_allclose(m[(0, (0,))], f.numpy(pts[:, 0]), rtol=1e-15)
    np.testing.assert_allclose(m[(0, ())], f.numpy(pts[:, 0] - 0.1), rtol=1e-15)


def test_abs_python_builtin_numpy_and_kink():
    pts = rng(39).uniform(size=(4, 1))
    J = np.array([[-1.5, 0.0, 2.0, -0.25]])
    for res in (lambda x, u: abs(u), lambda x, u: np.abs(u), lambda x, u: pc.abs(u),
                lambda x, u: np.absolute(u)):
        r, dr = trace(res, ["t"], ["u"], pts).evaluate(J)
        np.testing.assert_array_equal(r, [[1.5, 0.0, 2.0, 0.25]])
        # derivative sign(u); at u = 0 exactly the documented choice sign(0) = 0
        np.testing.assert_array_equal(dr[0, 0], [-1.0, 0.0, 1.0, -1.0])
    assert abs(-2) == 2 and pc.abs(-2.0) == 2.0


def test_unsupported_numpy_functions_are_named():
    pts = rng(40).uniform(size=(3, 1))
    for res, what in [(lambda x, u: np.arctan(u), "np.arctan"), (lambda x, u: np.maximum(u, 0.0), "np.maximum"),
                      (lambda x, u: np.add.reduce(u), "np.add.reduce"),
                      (lambda x, u: np.sin(u, dtype=float), "np.sin with dtype=")]:
        with pytest.raises(ValueError, match=f"residual 'pde' raised TypeError: {what} is not part of the "
                                             f"residual language; its functions are pc.sin, pc.cos"):
            trace(res, ["t"], ["u"], pts, name="pde")
    # comparisons with numpy scalars keep the branching explanation
    with pytest.raises(ValueError, match="may not branch"):
        trace(lambda x, u: np.float64(1.0) < u, ["t"], ["u"], pts)


# ------------------------------------------------------------------------- domains


@pytest.mark.parametrize("res, u_bad, message", [
    (lambda x, u: u**0.5, -0.5, r"u\*\*0.5 needs a positive base, but u = -0.5"),
    (lambda x, u: u**1.5, -0.5, r"u\*\*1.5 needs a non-negative base, but u = -0.5"),
    (lambda x, u: (u - 0.5)**-0.5, 0.5, r"\(u - 0.5\)\*\*-0.5 needs a positive base, but u - 0.5 = 0.0"),
    (lambda x, u: u**-2, 0.0, r"u\*\*-2 needs a non-zero base, but u = 0.0"),
    (lambda x, u: R.log(u) + u.t, 0.0, r"log\(u\) needs a positive argument, but u = 0.0"),
    (lambda x, u: np.log(u), -1.0, r"log\(u\) needs a positive argument, but u = -1.0"),
    (lambda x, u: R.sqrt(u), -2.0, r"sqrt\(u\) needs a positive argument, but u = -2.0"),
    (lambda x, u: pc.sqrt(u), 0.0, r"sqrt\(u\) needs a positive argument, but u = 0.0"),
    (lambda x, u: u.t / u, 0.0, r"u.t/u needs a non-zero denominator, but u = 0.0"),
])
def test_field_outside_a_domain_is_a_named_error(res, u_bad, message):
    """u**0.5 of a negative field (log/sqrt of a non-positive one, a division by zero) used to
    give NaN/inf and a RuntimeWarning; it is a DomainError (a ValueError) naming the term, the
    operation, the value and the point."""
    pts = np.linspace(0.0, 1.0, 4)[:, None]
    tab = trace(res, ["t"], ["u"], pts, name="pde")
    J = np.full((len(tab.vars), 4), 0.75)
    r, dr = tab.evaluate(J)                      # inside the domain: finite
    assert np.isfinite(r).all() and np.isfinite(dr).all()
    J[0, 2] = u_bad
    with pytest.raises(DomainError, match=r"residual 'pde': " + message + r".* at point 2 \{'t': 0.666"):
        tab.evaluate(J)
    assert issubclass(DomainError, ValueError)


def test_nan_field_is_not_a_domain_error():
    """NaN in the jets means a diverged network (the trainer reports that): it propagates as
    NaN, with no DomainError and no NumPy warning (warnings are errors here)."""
    tab = trace(lambda x, u: R.log(u) + u**0.5 + u.t / u, ["t"], ["u"], [[0.0], [1.0]])
    J = np.array([[np.nan, 1.0], [1.0, 1.0]])
    r, _ = tab.evaluate(J)
    assert np.isnan(r[0, 0]) and r[0, 1] == 2.0


def test_problem_losses_name_the_domain_error():
    t = np.linspace(0.0, 1.0, 5)[:, None]
    prob = pc.Problem(inputs=["t"], outputs=["u"], domain={"t": (0.0, 1.0)},
                      terms={"root": pc.Term(t, lambda x, u: (u - 50.0) ** 0.5)})
    with pytest.raises(DomainError, match=r"residual 'root': \(u - 50.0\)\*\*0.5 needs a positive base"):
        prob.losses(pc.MLP([1, 4, 1], seed=0))


def test_constant_outside_a_domain_is_refused_at_trace():
    # (the constant folds at trace time: the error comes before any point is seen)
    with pytest.raises(ValueError, match=r"raised ValueError: log\(-1.0\) is not a finite real number"):
        trace(lambda x, u: u + R.log(0.0 * u - 1.0), ["t"], ["u"], [[0.0]])
    with pytest.raises(ValueError, match=r"raised ValueError: \(-2.0\) \*\* 0.5 is not a real number"):
        trace(lambda x, u: u + (0.0 * u - 2.0) ** 0.5, ["t"], ["u"], [[0.0]])
    tab = trace(lambda x, u: u + R.sqrt(0.0 * u), ["t"], ["u"], [[0.0]])   # sqrt(0) = 0 is fine
    assert tab.polynomial and [f for _, f, _ in tab.monomials] == [(0,)]


def test_training_treats_a_domain_error_as_a_non_finite_loss(monkeypatch):
    """In a run, a residual outside its domain is what a NaN loss used to be: L-BFGS's line
    search backtracks from the trial point, Adam stops as diverged; the message says why."""
    from pinncore import objective
    seen = []
    undefined = objective.Objective._undefined
    monkeypatch.setattr(objective.Objective, "_undefined", lambda self, e: seen.append(e) or undefined(self, e))
    t = np.linspace(0.0, 1.0, 16)[:, None]
    prob = pc.Problem(inputs=["t"], outputs=["u"], domain={"t": (0.0, 1.0)},
                      terms={"root": pc.Term(t, lambda x, u: pc.sqrt(u) - 0.3)},
                      transform=lambda x, n: 1.0 + x.t * n)
    net = pc.MLP([1, 8, 1], seed=0)
    start = prob.losses(net)["root"]
    run = pc.Run(prob, net, optimizer="lbfgs", weighting=pc.Fixed(), warn=False)
    assert run.step(100) == "completed"
    assert seen and all(isinstance(e, DomainError) and e.term == "root" for e in seen)
    assert prob.losses(run.net)["root"] < 0.2 * start
    # the objective's view of an undefined point: NaN for that term, the reason kept
    two = pc.Problem(inputs=["t"], outputs=["u"], domain={"t": (0.0, 1.0)},
                     terms={"fit": pc.Term([[0.0]], lambda x, u: u - 1.0),
                            "root": pc.Term(t, lambda x, u: pc.sqrt(u + 50.0))})
    obj = objective.Objective(two, net, np.ones(2))
    L, G, R = obj.evaluate()
    assert np.isfinite(L).all() and obj.undefined is None
    below = np.zeros(net.n_params)
    below[-1] = -100.0                      # output bias: u = -100 everywhere
    L, G, R = obj.evaluate(below)
    assert np.isnan(L[1]) and np.isnan(G[1]).all() and R is None and np.isfinite(L[0])
    assert obj.undefined.startswith("residual 'root': sqrt(u + 50.0) needs a positive argument, but "
                                    "u + 50.0 = -50.0 at point 0")
    assert not np.isfinite(obj.value_and_gradient(below)[0])     # what L-BFGS sees

    adam = pc.Run(prob, pc.MLP([1, 8, 1], seed=0), lr=0.05, weighting=pc.Fixed(), warn=False)
    assert adam.step(100) == "diverged"
    assert "in term(s) 'root' (residual 'root': sqrt(1.0 + x.t*u) needs a positive argument" in adam.message
    assert np.isfinite(adam.net.params).all()


# ------------------------------------------------------------- exponents (issue 23 #3)
# u**1e308 expanded into 1e308 repeated factors (out of memory), u**1e5 built a monomial of
# 1e5 factors that five Adam steps could not get through. A power whose expansion would grow
# with its exponent is one node of the dual fallback instead: its size and evaluation cost do
# not depend on the exponent.

EXPONENTS = st.one_of(st.integers(-10 ** 6, 10 ** 6).map(float), st.floats(-1e308, 1e308, allow_nan=False),
                      st.sampled_from([1e308, -1e308, 1e5, 1e6, 1e4, 16.0, 17.0, 0.5, -0.5, 2.5, -3.0, 1e-300]))


@settings(max_examples=150, deadline=None)
@given(p=EXPONENTS, seed=st.integers(0, 2 ** 32 - 1))
def test_property_any_exponent_gives_a_bounded_table_with_exact_derivatives(p, seed):
    """Property: u.t + u**p traces to a table whose size does not depend on p (at most
    MAX_POLY_DEGREE factors per monomial, or the DAG of a few nodes), and evaluates to
    r = u_t + u**p, dr/du = p u**(p-1) as NumPy computes them."""
    pts = np.linspace(0.0, 1.0, 5)[:, None]
    tab = trace(lambda x, u: u.t + u ** p, ["t"], ["u"], pts)
    assert len(tab.monomials) <= T.MAX_POLY_MONOMIALS
    assert all(len(f) <= T.MAX_POLY_DEGREE for _, f, _ in tab.monomials)
    assert str(tab.components[0]).count("u") <= 2        # u.t + u**p: the power stays one node
    gen = rng(seed)
    u, ut = gen.uniform(0.5, 1.5, 5), gen.normal(size=5)       # positive u: every power is defined
    J = np.vstack([{(0, ()): u, (0, (0,)): ut}[v] for v in tab.vars])
    with np.errstate(all="ignore"):
        r, dr = tab.evaluate(J)
        want = ut + u ** p
        dwant = p * u ** (p - 1)
    np.testing.assert_allclose(r[0], want, rtol=1e-12)
    np.testing.assert_array_equal(dr[0, tab.vars.index((0, (0,)))], 1.0)
    if p != 0:
        np.testing.assert_allclose(dr[0, tab.vars.index((0, ()))], dwant, rtol=1e-12)


@pytest.mark.parametrize("p", [17.0, 1e4, 1e5, 1e308, -1e5, 1e5 + 0.5, -2.5])
def test_large_and_fractional_exponents_are_one_power_node(p):
    pts = np.linspace(0.1, 1.0, 4)[:, None]
    tab = trace(lambda x, u: u.t + 0.01 * u ** p, ["t"], ["u"], pts)
    assert not tab.polynomial and tab.monomials == []
    assert str(tab.components[0]).count("u") == 2


def test_small_integer_powers_stay_polynomial():
    pts = np.linspace(0.1, 1.0, 4)[:, None]
    tab = trace(lambda x, u: u ** T.MAX_POLY_DEGREE + (u + u.t + u.tt) ** 4, ["t"], ["u"], pts)
    assert tab.polynomial and max(len(f) for _, f, _ in tab.monomials) == T.MAX_POLY_DEGREE
    J = rng(1).uniform(0.5, 1.5, size=(3, 4))
    fd_check(tab, J, rtol=1e-6)
    np.testing.assert_allclose(tab.evaluate(J)[0], tab.evaluate_dag(J)[0], rtol=1e-13)


@pytest.mark.parametrize("build", [
    lambda u: _square(u, 64),                       # degree 2**64 by repeated squaring
    lambda u: (u ** 8) ** 8,                        # degree 64 through nested small powers
    lambda u: (u + u.t + u.tt) ** 16 * (u - u.t) ** 16,       # degree 32
], ids=["squared-64-times", "nested", "two-sums"])
def test_expansions_that_would_grow_fall_back(build):
    pts = np.linspace(0.1, 1.0, 3)[:, None]
    tab = trace(lambda x, u: build(u), ["t"], ["u"], pts)
    assert not tab.polynomial
    J = rng(2).uniform(0.9, 1.0, size=(len(tab.vars), 3))
    r, dr = tab.evaluate(J)
    assert r.shape == (1, 3) and dr.shape == (1, len(tab.vars), 3)


def _square(u, k):
    for _ in range(k):
        u = u * u
    return u


def test_many_monomials_fall_back_and_keep_exact_derivatives():
    """(sum of 3 jets)**9 has at most 3**9 > MAX_POLY_MONOMIALS monomials in the bound: evaluated
    by the fallback, with derivatives matching finite differences."""
    pts = np.linspace(0.1, 1.0, 3)[:, None]
    tab = trace(lambda x, u: (u + u.t + u.tt) ** 4 * (u - u.t) ** 9, ["t"], ["u"], pts)
    assert not tab.polynomial
    fd_check(tab, rng(3).uniform(0.2, 0.4, size=(3, 3)), rtol=1e-6)


@pytest.mark.parametrize("p", [float("inf"), -float("inf"), float("nan"), 10 ** 400])
def test_non_finite_exponent_is_refused_naming_the_term(p):
    with pytest.raises(ValueError, match=r"residual 'pde' .*exponent of u \*\* p must be a finite real number"):
        trace(lambda x, u: u.t + u ** p, ["t"], ["u"], [[0.0]], name="pde")


@pytest.mark.parametrize("p", [1e308, 1e5, -1e5, 2.5])
def test_training_with_a_huge_exponent_finishes_and_says_what_happened(p):
    t = np.linspace(0.0, 1.0, 20)[:, None]
    prob = pc.Problem(inputs=["t"], outputs=["u"], domain={"t": (0.0, 1.0)},
                      terms={"pde": pc.Term(t, lambda x, u: u.t + 0.01 * u ** p),
                             "ic": pc.Term([[0.0]], lambda x, u: u - 0.5)})
    res = pc.train(prob, pc.MLP([1, 8, 1], seed=0), steps=5, log_every=5, warn=False)
    assert res.status in ("completed", "diverged")
    if res.status == "diverged":
        assert "pde" in res.message
