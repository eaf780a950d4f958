"""Kernel sweeps, C++ vs the NumPy reference (issue 2's benchmarks).

Three shapes (docs/design.md §6):
  seed   N=50,   [1,50,50,50,1],            streams u, u_t, u_tt
  mid    N=1000, [1,50,50,50,50,1],         streams u, u_t, u_tt
  large  N=4096, [2,128,128,128,128,1],     streams u, u_x, u_y, u_xx, u_yy

Three operations, each timed for both backends in one pytest-benchmark group:
  jets        the forward jet sweep (Model.jets)
  sweep       jet forward + full backward sweep for a given output adjoint (Model.vjp):
              the "one jet forward + full backward sweep" of issue 2's targets
  loss_grad   the fused loss + gradient of a residual table (Model.losses_grads, r_s = J_s)
Every test first asserts that the C++ result equals the NumPy reference (1e-12 relative).
The large shape is also timed on two kernel threads (target: ≥ 1.6× over one).
Flops of a sweep: 3 × 2·S·N·Σ n_in·n_out (recorded in extra_info).
"""
from __future__ import annotations

import numpy as np
import pytest

import pinncore as pc
from _util import net_pair, rel_err, stream_term

CONFIGS = {
    "seed": (50, [1, 50, 50, 50, 1], [0], [(0, 0)]),
    "mid": (1000, [1, 50, 50, 50, 50, 1], [0], [(0, 0)]),
    "large": (4096, [2, 128, 128, 128, 128, 1], [0, 1], [(0, 0), (1, 1)]),
}
TOL = 1e-12


def setup(name, dtype=np.float64):
    N, layers, first, pairs = CONFIGS[name]
    cpp, ref = net_pair(layers, dtype)
    x = np.random.default_rng(1).uniform(-1.0, 1.0, size=(N, layers[0]))
    term = stream_term(x, first, pairs, dtype)
    S = term.S
    adjoint = np.random.default_rng(2).standard_normal((S, N, layers[-1])).astype(dtype)
    mac = sum(a * b for a, b in zip(layers[:-1], layers[1:]))
    flops = 3 * 2 * S * N * mac
    return cpp, ref, term, adjoint, flops


def _cases():
    out = []
    for name in CONFIGS:
        out.append((name, "cpp", 1))
        out.append((name, "numpy", 1))
    out.append(("large", "cpp", 2))
    return out


IDS = [f"{n}-{b}-{t}t" for n, b, t in _cases()]


@pytest.mark.parametrize("name,backend,threads", _cases(), ids=IDS)
def test_jets(benchmark, name, backend, threads):
    cpp, ref, term, _, flops = setup(name)
    J_cpp = cpp.backend.jets(cpp.params, term)
    J_ref = ref.backend.jets(ref.params, term)
    assert rel_err(J_cpp, J_ref) <= TOL
    net = cpp if backend == "cpp" else ref
    pc.set_num_threads(threads)
    benchmark.group = f"kernel-jets-{name}"
    benchmark.extra_info["flops"] = flops // 3
    out = benchmark(net.backend.jets, net.params, term)
    assert out.shape == J_ref.shape


@pytest.mark.parametrize("name,backend,threads", _cases(), ids=IDS)
def test_sweep(benchmark, name, backend, threads):
    """Jet forward + full backward sweep (parameter gradient of <adjoint, jets>)."""
    cpp, ref, term, adjoint, flops = setup(name)
    g_cpp, _ = cpp.backend.vjp(cpp.params, term, adjoint)
    g_ref, _ = ref.backend.vjp(ref.params, term, adjoint)
    assert rel_err(g_cpp, g_ref) <= TOL
    pc.set_num_threads(threads)
    g2, _ = cpp.backend.vjp(cpp.params, term, adjoint)
    assert rel_err(g2, g_ref) <= TOL
    net = cpp if backend == "cpp" else ref
    benchmark.group = f"kernel-sweep-{name}"
    benchmark.extra_info["flops"] = flops
    g, _ = benchmark(net.backend.vjp, net.params, term, adjoint)
    assert g.shape == g_ref.shape


@pytest.mark.parametrize("name,backend,threads", _cases(), ids=IDS)
def test_loss_grad(benchmark, name, backend, threads):
    """Fused loss + gradient of a residual table (r_s = J_s for every stream)."""
    cpp, ref, term, _, flops = setup(name)
    L_cpp, G_cpp, _ = cpp.backend.losses_grads(cpp.params, [term], [None], False)
    L_ref, G_ref, _ = ref.backend.losses_grads(ref.params, [term], [None], False)
    assert rel_err(L_cpp, L_ref) <= TOL and rel_err(G_cpp, G_ref) <= TOL
    pc.set_num_threads(threads)
    L2, G2, _ = cpp.backend.losses_grads(cpp.params, [term], [None], False)
    assert rel_err(L2, L_ref) <= TOL and rel_err(G2, G_ref) <= TOL
    net = cpp if backend == "cpp" else ref
    benchmark.group = f"kernel-loss_grad-{name}"
    benchmark.extra_info["flops"] = flops
    L, G, _ = benchmark(net.backend.losses_grads, net.params, [term], [None], False)
    assert G.shape == G_ref.shape


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
def test_sweep_large_float32(benchmark, backend):
    """float32 at the large shape (target of issue 6: ≥ 1.7× over float64 for a full step)."""
    cpp, ref, term, adjoint, flops = setup("large", np.float32)
    g_cpp, _ = cpp.backend.vjp(cpp.params, term, adjoint)
    g_ref, _ = ref.backend.vjp(ref.params, term, adjoint)
    assert rel_err(g_cpp, g_ref) <= 1e-4
    net = cpp if backend == "cpp" else ref
    benchmark.group = "kernel-sweep-large-float32"
    benchmark.extra_info["flops"] = flops
    benchmark(net.backend.vjp, net.params, term, adjoint)
