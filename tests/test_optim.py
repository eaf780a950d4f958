"""Optimizers: the fused Adam kernel against the textbook formula; L-BFGS on closed forms."""
import math

import numpy as np
import pytest

from pinncore.optim import Adam, adam_reference, lbfgs


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-14), (np.float32, 1e-6)])
@pytest.mark.parametrize("n_terms", [1, 3])
def test_fused_adam_matches_reference(dtype, tol, n_terms):
    rng = np.random.default_rng(0)
    p = rng.normal(size=257).astype(dtype)
    opt = Adam(lr=1e-2)
    state = opt.init(p)
    ref_p, ref_state = p.astype(np.float64), {"m": np.zeros(257), "v": np.zeros(257), "step": 0}
    w = rng.uniform(0.1, 10, size=n_terms)
    for _ in range(25):
        g = rng.normal(size=(n_terms, 257)).astype(dtype)
        opt.update(p, g, w, state)
        ref_p, ref_state = adam_reference(ref_p, g.astype(np.float64), w, ref_state, 1e-2)
    assert state["step"] == 25
    np.testing.assert_allclose(p, ref_p, rtol=tol * 10, atol=tol)
    np.testing.assert_allclose(state["m"], ref_state["m"], rtol=tol * 10, atol=tol)


def test_adam_decay_schedule():
    opt = Adam(lr=1e-2, decay_rate=0.5, decay_steps=100)
    assert opt.learning_rate(0) == 1e-2
    assert math.isclose(opt.learning_rate(100), 5e-3)
    assert math.isclose(opt.learning_rate(200), 2.5e-3)


@pytest.mark.parametrize("kw", [dict(lr=0), dict(lr=-1), dict(lr=float("nan")), dict(b1=1.0), dict(eps=0),
                                dict(decay_rate=2.0), dict(decay_steps=0)])
def test_adam_rejects_bad_settings(kw):
    with pytest.raises(ValueError):
        Adam(**kw)


def test_lbfgs_quadratic_and_rosenbrock():
    from scipy.optimize import rosen, rosen_der
    A = np.diag(np.arange(1.0, 11.0))
    b = np.ones(10)
    x, f, it, _ = lbfgs(lambda x: (0.5 * x @ A @ x - b @ x, A @ x - b), np.zeros(10), 100)
    # Function-value line searches resolve x to ~sqrt(machine eps) relative.
    np.testing.assert_allclose(x, np.linalg.solve(A, b), rtol=1e-6)
    x, f, it, _ = lbfgs(lambda x: (rosen(x), rosen_der(x)), np.zeros(6), 500)
    np.testing.assert_allclose(x, np.ones(6), atol=1e-6)


def test_lbfgs_rejects_non_finite_steps_and_keeps_best():
    # f is finite only for x < 1: every line-search trial beyond it is NaN and must be rejected.
    def fun(x):
        if x[0] >= 1.0:
            return math.nan, np.array([math.nan])
        return float(-x[0]), np.array([-1.0])

    x, f, it, msg = lbfgs(fun, np.array([0.0]), 50)
    assert np.isfinite(f) and x[0] < 1.0
    assert f == -x[0]


def test_lbfgs_non_finite_start():
    x, f, it, msg = lbfgs(lambda x: (math.nan, x), np.zeros(2), 10)
    assert it == 0 and "non-finite" in msg


def test_lbfgs_callback_stops():
    calls = []
    lbfgs(lambda x: (float(x @ x), 2 * x), np.ones(3) * 5, 100, callback=lambda i, x: calls.append(i) or i >= 2)
    assert calls == [1, 2]
