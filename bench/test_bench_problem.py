"""Problem-level benchmarks (issues 3 and 4): per-term losses + gradients vs the bare kernel
sweep, the fused Burgers residual, NTK traces vs one gradient evaluation, one full Adam step,
and a whole 2000-step fit.

Targets (recorded in bench/README.md, never asserted):
  * seed problem: all per-term losses and gradients in one call ≤ 1.25× the bare jet
    forward+backward sweep of the kernel on the same points;
  * Burgers, N = 4096: the fused residual adds ≤ 10% over the bare sweep;
  * NTK traces for all terms ≤ 1.5× one gradient evaluation;
  * a full Adam step on the seed problem ≤ 0.1 ms (one thread); the whole 2000-step fit
    < 0.3 s; NTK weighting every 100 steps adds < 5% to a run.
Before timing, each test checks the C++ numbers against the NumPy reference backend.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import pinncore as pc
from pinncore.network import TermData
from _util import rel_err

TOL = 1e-12
SEED_LAYERS = [1, 50, 50, 50, 1]
BURGERS_LAYERS = [2, 64, 64, 64, 64, 1]


def nets(layers, dtype=np.float64):
    cpp = pc.MLP(layers, seed=0, dtype=dtype, backend="cpp")
    ref = pc.MLP(layers, seed=0, dtype=dtype, backend="numpy")
    return cpp, ref


def check_value_and_grad(problem, cpp, ref):
    L1, G1, _ = problem.value_and_grad(cpp)
    L2, G2, _ = problem.value_and_grad(ref)
    assert rel_err(L1, L2) <= TOL
    for a in range(len(L1)):
        assert rel_err(G1[a], G2[a]) <= TOL, problem.term_names[a]


def bare_term(problem, names, dtype, first, pairs):
    """A TermData over the union of the named terms' points carrying the given streams, with
    no residual table: what the bare kernel sweep (jets forward + full backward) works on."""
    x = np.concatenate([problem.terms[k].points for k in names])
    return TermData.build(x, problem.scale, problem.shift, first, pairs, dtype)


# ----------------------------------------------------------------------------- seed problem
@pytest.mark.parametrize("what", ["bare_sweep", "step_function", "value_and_grad"])
def test_seed_terms_vs_bare_sweep(benchmark, what):
    """All per-term losses+gradients of the seed problem (pde: 50 points, streams u,u_t,u_tt;
    ic: 1 point, u,u_t) vs one bare forward+backward sweep over the same 51 points with
    streams u,u_t,u_tt. ``step_function`` is the trainer's per-step call (no argument checks);
    ``value_and_grad`` the public API."""
    problem = pc.problems.harmonic()
    cpp, ref = nets(SEED_LAYERS)
    check_value_and_grad(problem, cpp, ref)
    benchmark.group = "problem-seed-terms-vs-bare"
    if what == "bare_sweep":
        term = bare_term(problem, ["pde", "ic"], np.float64, [0], [(0, 0)])
        adj = np.random.default_rng(0).standard_normal((term.S, term.xhat.shape[0], 1))
        g_ref, _ = ref.backend.vjp(ref.params, term, adj)
        assert rel_err(cpp.backend.vjp(cpp.params, term, adj)[0], g_ref) <= TOL
        benchmark(cpp.backend.vjp, cpp.params, term, adj)
    elif what == "step_function":
        step = problem.step_function(cpp)
        benchmark(step, None, False)
    else:
        benchmark(problem.value_and_grad, cpp)


@pytest.mark.parametrize("what", ["bare_sweep", "fused_residual"])
def test_burgers_fused_residual(benchmark, what):
    """Burgers (u_t + u u_x − ν u_xx) at N = 4096 collocation points, [2,64,64,64,64,1]:
    the fused residual loss+gradient of the pde term vs the bare sweep with the same streams
    (u, u_t, u_x, u_xx) on the same points."""
    problem = pc.problems.burgers(n_collocation=4096)
    cpp, ref = nets(BURGERS_LAYERS)
    a = problem.term_names.index("pde")
    data = problem.lowering.data(np.float64)[a]
    benchmark.group = "problem-burgers4096-fused-vs-bare"
    benchmark.extra_info["streams"] = data.S
    if what == "bare_sweep":
        adj = np.random.default_rng(0).standard_normal((data.S, data.xhat.shape[0], 1))
        g_ref, _ = ref.backend.vjp(ref.params, data, adj)
        assert rel_err(cpp.backend.vjp(cpp.params, data, adj)[0], g_ref) <= TOL
        benchmark(cpp.backend.vjp, cpp.params, data, adj)
    else:
        L1, G1, _ = cpp.backend.losses_grads(cpp.params, [data], [None], False)
        L2, G2, _ = ref.backend.losses_grads(ref.params, [data], [None], False)
        assert rel_err(L1, L2) <= TOL and rel_err(G1, G2) <= TOL
        benchmark(cpp.backend.losses_grads, cpp.params, [data], [None], False)


# ----------------------------------------------------------------------------- NTK traces
PROBLEMS = {
    "seed": (lambda: pc.problems.harmonic(), SEED_LAYERS),
    "burgers2048": (lambda: pc.problems.burgers(), BURGERS_LAYERS),
}


@pytest.mark.parametrize("what", ["one_gradient", "ntk_traces"])
@pytest.mark.parametrize("prob", list(PROBLEMS))
def test_ntk_traces_vs_gradient(benchmark, prob, what):
    """problem.ntk_traces (all terms, Gram identity) vs one problem.value_and_grad."""
    make, layers = PROBLEMS[prob]
    problem = make()
    cpp, ref = nets(layers)
    benchmark.group = f"problem-ntk-vs-gradient-{prob}"
    if what == "one_gradient":
        check_value_and_grad(problem, cpp, ref)
        benchmark(problem.value_and_grad, cpp)
    else:
        t1, t2 = problem.ntk_traces(cpp), problem.ntk_traces(ref)
        for k in t1:
            assert rel_err(t1[k], t2[k]) <= 1e-11, k
        benchmark(problem.ntk_traces, cpp)


# ----------------------------------------------------------------------------- Adam, fit
def test_adam_step_seed(benchmark):
    """One full training step on the seed problem as the trainer runs it: every per-term loss
    and gradient in one kernel call, then the fused Adam update (λ = 1)."""
    problem = pc.problems.harmonic()
    net = pc.MLP(SEED_LAYERS, seed=0)
    step = problem.step_function(net)
    adam = pc.Adam(lr=1e-3)
    state = adam.init(net.params)
    lam = np.ones(len(problem.term_names))
    # the fused Adam equals the textbook one
    from pinncore.optim import adam_reference
    L, G, _ = step(None, False)
    p_ref, _ = adam_reference(net.params.copy(), G, lam, {"m": state["m"].copy(), "v": state["v"].copy(), "step": 0}, 1e-3)
    adam.update(net.params, G, lam, state)
    assert rel_err(net.params, p_ref) <= TOL

    def full_step():
        L, G, _ = step(None, False)
        adam.update(net.params, G, lam, state)

    benchmark.group = "problem-adam-step-seed"
    benchmark(full_step)


@pytest.mark.parametrize("weighting", ["fixed", "ntk"])
def test_fit_seed_2000_steps(benchmark, weighting):
    """A whole 2000-step pc.train on the seed problem ([1,50,50,50,1], Adam 1e-3, default
    logging every 100 steps incl. rel-L2): pc.Fixed() vs pc.NTK() (traces every 100 steps)."""
    problem = pc.problems.harmonic()

    def fit():
        scheme = pc.Fixed() if weighting == "fixed" else pc.NTK()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pc.train(problem, pc.MLP(SEED_LAYERS, seed=0), weighting=scheme, steps=2000, warn=False)

    benchmark.group = "problem-fit-seed-2000"
    res = benchmark.pedantic(fit, rounds=3, iterations=1, warmup_rounds=0)
    assert res.status == "completed" and res.step == 2000
    benchmark.extra_info["rel_l2"] = res.rel_l2
    benchmark.extra_info["wall_time_in_train"] = res.wall_time
