"""pinncore.bfgs: the dense (self-scaled) quasi-Newton optimizer — closed-form checks, the update
formulas against a direct NumPy transcription of the papers, save/resume, memory and NaN guards."""
import math

import numpy as np
import pytest
from scipy.optimize import rosen, rosen_der

import pinncore as pc
from pinncore import registry
from pinncore.bfgs import BFGS, update_coefficients
from pinncore.optim import minimize, strong_wolfe
from pinncore.resampling import RAD


def _quadratic(P, seed):
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((P, P))
    A = M @ M.T + np.eye(P)
    b = rng.standard_normal(P)
    return A, b, (lambda x: (0.5 * float(x @ A @ x) - float(b @ x), A @ x - b))


def test_plain_bfgs_minimises_a_quadratic_in_at_most_p_steps_with_exact_line_searches():
    # BFGS with exact line searches ends a strictly convex quadratic in at most P steps
    # (quadratic termination: the steps are conjugate, Nocedal & Wright ch. 6); a tiny c2 makes
    # the strong-Wolfe search exact there (its cubic interpolation is exact on a quadratic).
    P = 10
    A, b, fun = _quadratic(P, 3)
    x, f, it, msg = minimize(fun, np.zeros(P), P + 1, optimizer=BFGS("bfgs", c1=1e-8, c2=1e-6))
    xs = np.linalg.solve(A, b)
    assert it <= P + 1
    assert np.abs(x - xs).max() <= 1e-8 * np.abs(xs).max()


@pytest.mark.parametrize("variant", ["bfgs", "ssbfgs", "ssbroyden"])
def test_rosenbrock_converges(variant):
    x0 = np.array([-1.2, 1.0, -0.5, 0.3, 0.8])
    x, f, it, msg = minimize(lambda x: (rosen(x), rosen_der(x)), x0, 500, optimizer=BFGS(variant))
    assert f < 1e-16, (variant, f, it, msg)
    assert np.abs(x - 1.0).max() < 1e-7


def _paper_update(variant, H, s, y, g, alpha, first):
    """H⁺ transcribed directly from Urbán, Stefanou & Pons 2025 (inverse Broyden family, self-scaled),
    with H₀ scaling by the first pair (N&W eq. 6.20) for the BFGS members."""
    n = H.shape[0]
    rho = 1.0 / (y @ s)
    if variant != "ssbroyden" and first:
        H = H * ((y @ s) / (y @ y))
    Hy = H @ y
    q = y @ Hy
    h = q * rho
    b = -alpha * rho * (s @ g)
    if variant == "bfgs" or (variant == "ssbfgs" and first):
        tau, phi = 1.0, 1.0
    elif variant == "ssbfgs":
        tau, phi = min(1.0, 1.0 / b), 1.0
    else:
        a = b * h - 1.0
        rm = min(1.0, h * (1.0 - np.sqrt(a / (1.0 + a))))
        tm, tp = (rm - 1.0) / a, 1.0 / rm
        theta = max(tm, min(tp, (1.0 - b) / b))
        sig = 1.0 + a * theta
        if first:
            tau = h / sig
        else:
            sn = abs(sig) ** (1.0 / (1.0 - n))
            tau = min(min(1, 1 / b) * sn, sig) if theta <= 0 else min(1, 1 / b) * min(sn, 1.0 / theta)
        phi = (1.0 - theta) / sig
    v = rho * s - Hy / q
    return (H - np.outer(Hy, Hy) / q + phi * q * np.outer(v, v)) / tau + rho * np.outer(s, s)


@pytest.mark.parametrize("variant", ["bfgs", "ssbfgs", "ssbroyden"])
@pytest.mark.parametrize("first", [True, False])
def test_update_matches_the_papers_formula(variant, first):
    rng = np.random.default_rng(7)
    n = 6
    opt = BFGS(variant)
    state = opt.init(np.zeros(n))
    if first:
        H = np.eye(n)
    else:
        M = rng.standard_normal((n, n))
        H = M @ M.T + 0.5 * np.eye(n)
        state["H"][...] = H
        state["pairs"] = 3
    g = rng.standard_normal(n)
    alpha = 0.7
    s = -alpha * (H @ g)
    y = s * 1.3 + 0.2 * rng.standard_normal(n)       # y·s > 0
    assert y @ s > 0
    opt._update(state, s, y, alpha, g)
    S = state["H"]
    got = state["scale"] * (np.triu(S) + np.triu(S, 1).T)
    want = _paper_update(variant, H, s, y, g, alpha, first)
    assert np.allclose(got, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())
    assert state["pairs"] == (1 if first else 4)


def test_update_coefficients_of_self_scaled_bfgs():
    # b = sᵀBs/yᵀs = −α ρ sᵀg = 4 here: τ = min(1, 1/b) = 1/4
    assert update_coefficients("ssbfgs", 1.0, 2.0, 3.0, -4.0, 1.0, 5, False) == (1.0, 4.0, 1.0)
    # b < 1: no scaling (τ = 1)
    assert update_coefficients("ssbfgs", 1.0, 2.0, 3.0, -0.5, 1.0, 5, False) == (1.0, 1.0, 1.0)
    # first pair: H0 = (yᵀs/yᵀy) I
    assert update_coefficients("bfgs", 1.0, 4.0, 4.0, -1.0, 1.0, 5, True) == (0.25, 1.0, 1.0)


def test_line_search_evaluates_each_point_once():
    calls = []

    def fun(x):
        calls.append(float(x[0]))
        return float((x[0] - 0.3) ** 4 + x[0] ** 2), np.array([4 * (x[0] - 0.3) ** 3 + 2 * x[0]])

    x0 = np.array([5.0])
    f0, g0 = fun(x0)
    calls.clear()
    alpha, f, g, evals = strong_wolfe(fun, x0, f0, g0, -g0, 10.0, c2=0.1)
    assert alpha is not None and f < f0
    assert evals == len(calls) == len(set(calls))


def test_memory_error_names_the_size_and_points_to_lbfgs():
    with pytest.raises(MemoryError, match=r"200 x 200.*lbfgs"):
        BFGS(matrix_budget=1000).init(np.zeros(200))
    assert BFGS().matrix_bytes(1000) == 8_000_000


@pytest.mark.parametrize("bad", [dict(variant="newton"), dict(matrix_budget=0), dict(restart_jump=0.5),
                                 dict(max_evals=0), dict(c1=0.9, c2=0.1), dict(variant=3)])
def test_bad_settings_are_refused(bad):
    with pytest.raises(ValueError):
        BFGS(**bad)


def test_nan_region_is_never_accepted():
    # f is NaN for x0 > 1: the minimiser (x = 3) lies beyond; BFGS must stay finite
    def fun(x):
        if x[0] > 1.0:
            return math.nan, np.full_like(x, math.nan)
        return float(((x - 3.0) ** 2).sum()), 2 * (x - 3.0)

    x, f, it, msg = minimize(fun, np.zeros(3), 200, optimizer=BFGS())
    assert np.isfinite(x).all() and math.isfinite(f) and x[0] <= 1.0
    assert f < 4.0 + 2 * 9.0   # it made progress on the free coordinates


def test_registered_and_reachable_by_name():
    spec = registry.optimizers["bfgs"]
    assert spec.flags["second_order"] and spec.flags["follows"] and not spec.flags["adapts_weights"]
    assert pc.optim.get("bfgs", variant="ssbroyden").variant == "ssbroyden"
    assert pc.BFGS is BFGS


def _run(optimizer="bfgs", **kw):
    return pc.Run(pc.problems.harmonic(), pc.MLP([1, 12, 12, 1], seed=1), weighting=pc.Fixed({"ic": 10.0}),
                  optimizer=optimizer, log_every=5, warn=False, **kw)


def test_train_with_bfgs_fits_the_oscillator():
    r = pc.train(pc.problems.harmonic(), pc.MLP([1, 16, 16, 1], seed=0), weighting=pc.Fixed({"ic": 10.0}),
                 optimizer="bfgs", steps=600, warn=False)
    assert r.rel_l2 < 1e-3, r
    assert set(r.history["phase"].tolist()) == {"bfgs"}


def test_phase_after_adam_and_bitwise_resume(tmp_path):
    a = _run("adam")
    a.step(20)
    a.step(30, optimizer="bfgs")
    b = _run("adam")
    b.step(20)
    b.step(15, optimizer="bfgs")
    path = tmp_path / "s.pcs"
    b.save(path)
    c = pc.Run(pc.problems.harmonic(), pc.MLP([1, 12, 12, 1], seed=1), weighting=pc.Fixed({"ic": 10.0}),
               optimizer="bfgs", log_every=5, warn=False, resume=path)
    assert c.optimizer.name == "bfgs" and c.opt_state["pairs"] == b.opt_state["pairs"]
    assert np.array_equal(c.opt_state["H"], b.opt_state["H"])
    c.step(15)
    assert np.array_equal(a.net.params, c.net.params)
    assert np.array_equal(a.opt_state["H"], c.opt_state["H"])


def test_resampling_keeps_the_curvature_and_resets_it_on_a_jump():
    rad = RAD("pde", every=10, n_candidates=400, seed=0, start=1)
    run = _run(observers=[rad])
    run.step(25)
    assert [e["step"] for e in rad.events] == [10, 20]
    assert run.opt_state["pairs"] >= 20 and run.opt_state["restarts"] == 0   # H kept through both
    # rule 3: a loss jump beyond restart_jump on the new points resets H
    opt, st = run.optimizer, run.opt_state
    opt.objective_changed(st)
    st["f_before"] = st["f"] / (10 * opt.restart_jump)
    run.step(1)
    assert st["restarts"] == 1 and st["pairs"] == 1
