"""Numerical faults, safe files, interruption, concurrency and leaks (issue 7, parts 3-6).

Counts (faults injected) are printed by the last test with ``-s``.
"""
from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import pinncore as pc
from pinncore import io as pio
from pinncore.optim import lbfgs

FAULTS = []


def fault(name):
    FAULTS.append(name)


def kill_resume_setup():
    """The problem/net of the SIGKILL test (shared with tests/_kill_resume_worker.py)."""
    return pc.problems.harmonic(n_collocation=20), pc.MLP([1, 12, 12, 1], seed=4)


# ----------------------------------------------------------------------------- numerical faults
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("how", ["scale", "params"])
def test_saturated_tanh(dtype, how):
    """Inputs/pre-activations ~1e3 saturate every tanh: values finite, input derivatives ~0
    (sech² underflows), and the compiled kernel agrees with the NumPy reference."""
    fault(f"saturated tanh ({how}, {np.dtype(dtype).name})")
    a = pc.MLP([1, 16, 16, 1], seed=3, dtype=dtype)
    b = pc.MLP([1, 16, 16, 1], seed=3, dtype=dtype, backend="numpy")
    x = np.linspace(0.1, 1.0, 6)[:, None]
    derivs = [(), (0,), (0, 0)]
    kw = {"scale": 1e3} if how == "scale" else {"params": (a.params * 1e3).astype(dtype)}
    Ja, Jb = a.jets(x, derivs, **kw), b.jets(x, derivs, **kw)
    assert np.isfinite(Ja).all()
    g = a.jets_vjp(x, derivs, np.ones((3, 6, 1), dtype), **kw)
    assert np.isfinite(g).all()
    rtol = 1e-8 if dtype == np.float64 else 1e-3
    for s in (1, 2):  # derivative streams: compare with the reference, relative to the jet's scale
        scale = max(np.abs(Jb[s]).max(), 1e-3 * np.abs(Jb[0]).max())
        err = np.abs(Ja[s].astype(np.float64) - Jb[s]).max()
        assert err <= rtol * scale, f"stream {derivs[s]}: |cpp - numpy| = {err:.3e} > {rtol:g} * {scale:.3e}\n" \
                                    f"cpp {Ja[s].ravel()}\nnumpy {Jb[s].ravel()}"


def test_huge_params_give_reference_derivatives():
    """Params ×1e100: tanh saturates exactly, so d/dx of the net is 0 (NumPy reference). The
    kernel's sech² floor (tanh argument clamped at 20) must not turn into 1e182-sized
    derivatives."""
    fault("params x 1e100")
    a = pc.MLP([1, 8, 1], seed=0)
    b = pc.MLP([1, 8, 1], seed=0, backend="numpy")
    p = a.params * 1e100
    x = np.linspace(0.1, 1.0, 3)[:, None]
    ja, jb = a.derivatives(x, params=p), b.derivatives(x, params=p)
    np.testing.assert_allclose(ja.value, jb.value, rtol=1e-12)
    assert np.abs(ja.grad).max() <= 1e-6 * np.abs(ja.value).max(), (ja.grad.ravel(), jb.grad.ravel())
    assert np.abs(ja.hess).max() <= 1e-6 * np.abs(ja.value).max(), (ja.hess.ravel(), jb.hess.ravel())


def test_float32_net_x_beyond_float32_range():
    """x = 1e300 is finite float64 but overflows float32: a float32 net must either refuse it
    (ValueError naming x) or evaluate it like the reference — not leak NumPy's
    "overflow encountered in cast" RuntimeWarning and feed inf to the kernel."""
    fault("x beyond float32 range")
    net = pc.MLP([1, 8, 1], dtype=np.float32)
    with pytest.raises(ValueError, match="x"):
        net.derivatives(np.full((2, 1), 1e300))


def test_float32_overflow_in_training():
    fault("float32 params 1e30")
    p = pc.problems.harmonic(n_collocation=10)
    net = pc.MLP([1, 8, 8, 1], dtype=np.float32)
    net.params = np.full(net.n_params, 1e30, np.float32)
    r = pc.train(p, net, steps=20, weighting=pc.Fixed(), warn=False)
    if r.status == "diverged":
        assert "step 0" in r.message and ("'pde'" in r.message or "'ic'" in r.message), r.message
    assert np.isfinite(r.net.params).all()


def _exploding_problem(kind="u6"):
    t = np.linspace(0, 1, 8)[:, None]
    res = {"u6": lambda x, u: u * u * u * u * u * u,       # loss ~ u^12: gradients explode
           "ut3": lambda x, u: 1e10 * u.t ** 3,
           "u4": lambda x, u: u ** 4}[kind]
    return pc.Problem(inputs=["t"], outputs=["u"], domain={"t": (0.0, 1.0)},
                      terms={"blow": pc.Term(t, res), "fit": pc.Term([[0.0]], lambda x, u: u - 1.0)})


@pytest.mark.parametrize("kind,dtype,lr", [("u6", np.float32, 1e3), ("ut3", np.float32, 1e3),
                                           ("u4", np.float64, 1e300), ("u4", np.float64, 1e30)])
def test_exploding_gradients_stop_with_last_finite_state(kind, dtype, lr):
    """The first non-finite loss/gradient stops training: status "diverged", the message names
    the step and the term, the parameters are exactly those of the previous step, and no
    NumPy RuntimeWarning escapes on the way (float64/lr=1e30: the log row's np.dot(lam, L)
    overflows today and warns)."""
    fault(f"exploding gradients {kind} {np.dtype(dtype).name} lr={lr:g}")
    prob = _exploding_problem(kind)
    net = pc.MLP([1, 8, 1], seed=1, dtype=dtype)
    r = pc.train(prob, net, steps=200, lr=lr, weighting=pc.Fixed(), warn=False, log_every=1)
    if lr == 1e30 and r.status == "completed":
        # u⁴ with |θ| ~ 1e30: the loss reaches ~1e240 and stays finite, so nothing may stop it;
        # what matters is that no warning escaped and every logged number is finite.
        assert np.isfinite(r.history["total_loss"]).all() and np.isfinite(r.net.params).all()
        return
    assert r.status == "diverged", (r.status, r.message)
    k = r.step
    assert k >= 1 and f"step {k}" in r.message and "'blow'" in r.message, r.message
    assert np.isfinite(r.net.params).all()
    # "returns the last finite state": the parameters are exactly those after k-1 updates
    again = pc.train(prob, net, steps=k - 1, lr=lr, weighting=pc.Fixed(), warn=False, log_every=1)
    assert again.status == "completed"
    assert np.array_equal(r.net.params, again.net.params)
    L = prob.losses(r.net)
    assert all(math.isfinite(v) for v in L.values())
    # the history is intact and finite up to the divergence
    assert np.isfinite(r.history["blow_loss"]).all() and r.history["step"][-1] <= k


def test_lr_1e3_training_never_returns_nonfinite_params():
    fault("lr=1e3")
    prob = pc.problems.harmonic(n_collocation=10)
    r = pc.train(prob, pc.MLP([1, 8, 8, 1], seed=0), steps=300, lr=1e3, weighting=pc.Fixed(), warn=False)
    assert r.status in ("completed", "diverged")
    assert np.isfinite(r.net.params).all()
    if r.status == "diverged":
        assert "step" in r.message and "'" in r.message


def test_nonfinite_fallback_residual_diverges_cleanly():
    """A non-polynomial residual that is singular at the current parameters (log u with u
    crossing 0): training reports "diverged" naming step and term — it does not leak a NumPy
    RuntimeWarning (an exception under -W error) from the fallback evaluation."""
    fault("log(u) at u=0")
    t = np.linspace(0, 1, 9)[:, None]
    prob = pc.Problem(inputs=["t"], outputs=["u"], domain={"t": (0.0, 1.0)},
                      terms={"lg": pc.Term(t, lambda x, u: pc.log(u))})
    r = pc.train(prob, pc.MLP([1, 6, 1], seed=0), steps=5, weighting=pc.Fixed(), warn=False)
    assert r.status == "diverged" and "'lg'" in r.message and "step 0" in r.message, (r.status, r.message)


def test_lbfgs_keeps_best_finite_point():
    fault("L-BFGS NaN wall")
    calls = []

    def fun(x):
        calls.append(x.copy())
        if np.abs(x).max() > 2.0:
            return math.nan, np.full_like(x, math.nan)
        return float(((x - 3.0) ** 2).sum()), 2.0 * (x - 3.0)

    x0 = np.zeros(3)
    x, f, it, msg = lbfgs(fun, x0, 50)
    assert np.isfinite(x).all() and math.isfinite(f)
    assert np.abs(x).max() <= 2.0
    assert f == fun(x)[0]
    finite = [float(((c - 3.0) ** 2).sum()) for c in calls if np.abs(c).max() <= 2.0]
    assert f == min(finite), "not the best finite point seen"
    assert f < 27.0  # progress from f(x0) = 27
    # a function that is NaN immediately beyond x0 in every direction
    fault("L-BFGS NaN everywhere but x0")
    x, f, it, msg = lbfgs(lambda z: (0.0, np.ones(2)) if not z.any() else (math.nan, np.ones(2)), np.zeros(2), 10)
    assert np.array_equal(x, np.zeros(2)) and f == 0.0 and "line search" in msg
    # inf instead of NaN
    fault("L-BFGS inf")
    x, f, it, msg = lbfgs(lambda z: (math.inf, z) if z[0] > 1 else (float((z[0] - 5) ** 2), 2 * (z - 5)),
                          np.zeros(1), 20)
    assert math.isfinite(f) and x[0] <= 1


def test_train_lbfgs_stage_with_nonfinite_region():
    fault("train lbfgs stage")
    prob = _exploding_problem("u6")
    r = pc.train(prob, pc.MLP([1, 8, 1], seed=1), steps=5, lbfgs_steps=30, weighting=pc.Fixed(), warn=False)
    assert np.isfinite(r.net.params).all()
    assert all(math.isfinite(v) for v in prob.losses(r.net).values())


# ----------------------------------------------------------------------------- files
def _train_small(steps=7, **kw):
    prob = pc.problems.harmonic(n_collocation=10)
    return prob, pc.train(prob, pc.MLP([1, 6, 6, 1], seed=2), steps=steps, weighting=pc.NTK(every=3),
                          log_every=2, warn=False, **kw)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_mlp_save_load_roundtrip_bitwise(tmp_path, dtype):
    net = pc.MLP([2, 7, 5, 3], seed=11, dtype=dtype)
    net.params = (net.params + np.random.default_rng(0).normal(size=net.n_params)).astype(dtype)
    path = tmp_path / "n.pcn"
    net.save(path)
    back = pc.MLP.load(path)
    assert back.layers == net.layers and back.dtype == net.dtype
    assert back.params.tobytes() == net.params.tobytes()
    x = np.random.default_rng(1).uniform(-1, 1, (5, 2))
    assert np.array_equal(back.derivatives(x).hess, net.derivatives(x).hess)


def test_train_state_roundtrip_and_resume_exact(tmp_path):
    prob, r = _train_small()
    path = tmp_path / "s.pcs"
    r.save(path)
    st = pc.load_state(path)
    assert st["params"].tobytes() == r.net.params.tobytes()
    assert st["history"] == r.history.to_dict()
    assert st["step"] == r.step == 7
    # and the saved state resumes exactly: 7 + 5 steps == 12 steps
    full = pc.train(prob, pc.MLP([1, 6, 6, 1], seed=2), steps=12, weighting=pc.NTK(every=3), log_every=2, warn=False)
    cont = pc.train(prob, steps=5, resume=path, weighting=pc.NTK(every=3), log_every=2, warn=False)
    assert cont.net.params.tobytes() == full.net.params.tobytes()
    for k in full.history.keys():
        if k != "wall_time":
            assert list(cont.history.columns[k]) == list(full.history.columns[k]), k


def _corrupt_variants(data):
    n = len(data)
    out = {"empty": b"", "magic_only": data[:8], "header_only": data[:32], "half": data[:n // 2],
           "minus_one": data[:-1], "plus_one": data + b"\0"}
    for pos in (0, 9, 13, 20, 40, n // 2, n - 40, n - 1):
        b = bytearray(data)
        b[pos] ^= 0x10
        out[f"flip@{pos}"] = bytes(b)
    out["version2"] = data[:8] + (2).to_bytes(4, "little") + data[12:]
    return out


@pytest.mark.parametrize("what", ["net", "state"])
def test_damaged_files_raise_format_error(tmp_path, what):
    src = tmp_path / "good"
    if what == "net":
        pc.MLP([1, 5, 1]).save(src)
        loader = pc.MLP.load
    else:
        _, r = _train_small(steps=2)
        r.save(src)
        loader = pc.load_state
    data = src.read_bytes()
    for name, bad in _corrupt_variants(data).items():
        fault(f"file {what} {name}")
        p = tmp_path / f"bad_{name}"
        p.write_bytes(bad)
        with pytest.raises(pio.FormatError):
            loader(p)
    fault(f"file {what} wrong kind")
    with pytest.raises(pio.FormatError, match="kind"):
        (pc.load_state if what == "net" else pc.MLP.load)(src)


@pytest.mark.parametrize("case", ["nan", "shape", "absurd", "absurd_many", "object_tree"])
def test_hand_crafted_mlp_file_fails_fast(tmp_path, case):
    fault(f"hand-crafted mlp {case}")
    net = pc.MLP([1, 4, 1])
    tree = {"layers": [1, 4, 1], "dtype": "float64", "seed": 0, "backend": "cpp", "params": net.params.copy()}
    if case == "nan":
        tree["params"][3] = np.nan
    elif case == "shape":
        tree["params"] = np.zeros((2, net.n_params))
    elif case == "absurd":
        tree["layers"] = [1, 10**9, 1]
    elif case == "absurd_many":
        tree["layers"] = [4] + [10**6] * 998 + [4]
    else:
        tree["params"] = {"W": [1.0, 2.0]}
    path = tmp_path / "h.pcn"
    pio.save(path, tree, kind="pinncore.mlp")
    t0 = time.perf_counter()
    with pytest.raises(pio.FormatError):
        pc.MLP.load(path)
    assert time.perf_counter() - t0 < 1.0


def test_absurd_array_header_is_rejected_before_allocating(tmp_path):
    """A well-checksummed file whose header declares a 10**12-element array without the bytes."""
    import hashlib
    import json
    import struct
    fault("io absurd array header")
    header = json.dumps({"kind": "pinncore.mlp", "tree": {"t": "dict", "items": [
        ["params", {"t": "array", "dtype": "<f8", "shape": [10**12], "offset": 0, "nbytes": 8 * 10**12}]]}},
        separators=(",", ":")).encode()
    body = struct.pack("<8sIIQQ", b"PINNCORE", 1, 0, len(header), 0) + header
    path = tmp_path / "a.pcn"
    path.write_bytes(body + hashlib.sha256(body).digest())
    t0 = time.perf_counter()
    with pytest.raises(pio.FormatError):
        pc.MLP.load(path)
    assert time.perf_counter() - t0 < 1.0


@pytest.mark.parametrize("what", ["net", "state", "checkpoint"])
def test_interrupted_save_keeps_previous_file(tmp_path, monkeypatch, what):
    fault(f"KeyboardInterrupt in os.replace ({what})")
    path = tmp_path / "f.bin"
    old_net = pc.MLP([1, 5, 1], seed=1)
    prob, old_res = _train_small(steps=2)
    (old_net.save if what == "net" else old_res.save)(path)
    before = path.read_bytes()

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        if what == "net":
            pc.MLP([1, 5, 1], seed=2).save(path)
        elif what == "state":
            _train_small(steps=3)[1].save(path)
        else:
            pc.train(prob, pc.MLP([1, 6, 6, 1], seed=2), steps=4, checkpoint=path, checkpoint_every=1,
                     weighting=pc.Fixed(), warn=False)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"], "temporary file left behind"
    if what == "net":
        assert np.array_equal(pc.MLP.load(path).params, old_net.params)
    else:
        assert pc.load_state(path)["step"] == 2


# ----------------------------------------------------------------------------- interruption
def test_sigint_from_callback_stops_at_end_of_step():
    fault("SIGINT during train")
    prob = pc.problems.harmonic(n_collocation=10)
    net = pc.MLP([1, 8, 8, 1], seed=0)

    def cb(step, row):
        if step == 40:
            os.kill(os.getpid(), signal.SIGINT)
        return False

    handler = signal.getsignal(signal.SIGINT)
    r = pc.train(prob, net, steps=200, log_every=20, weighting=pc.Fixed(), warn=False, callback=cb)
    assert signal.getsignal(signal.SIGINT) is handler, "SIGINT handler not restored"
    assert r.status == "interrupted" and "41" in r.message, (r.status, r.message)
    assert r.step == 41
    assert list(r.history["step"]) == [0, 20, 40, 41]
    assert np.isfinite(r.history["total_loss"]).all()
    ref = pc.train(prob, net, steps=41, log_every=20, weighting=pc.Fixed(), warn=False)
    assert np.array_equal(r.net.params, ref.net.params)


def test_keyboard_interrupt_raised_in_callback():
    fault("KeyboardInterrupt in callback")
    prob = pc.problems.harmonic(n_collocation=10)

    def cb(step, row):
        if step == 30:
            raise KeyboardInterrupt
        return False

    r = pc.train(prob, pc.MLP([1, 8, 1]), steps=100, log_every=10, weighting=pc.Fixed(), warn=False, callback=cb)
    assert r.status == "interrupted"
    assert list(r.history["step"]) == [0, 10, 20, 30]
    assert np.isfinite(r.net.params).all()


def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path):
    fault("SIGKILL + resume")
    path = str(tmp_path / "ck.pcs")
    worker = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_kill_resume_worker.py")
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(pc.__file__)))
    cp = subprocess.run([sys.executable, worker, path], env=env, capture_output=True, text=True, timeout=120)
    assert cp.returncode == -signal.SIGKILL, (cp.returncode, cp.stdout, cp.stderr[-2000:])
    state = pc.load_state(path)
    k = int(state["step"])
    assert k == 300, k
    problem, net = kill_resume_setup()
    resumed = pc.train(problem, weighting=pc.NTK(every=50), steps=600 - k, resume=path, log_every=50, warn=False)
    full = pc.train(problem, net, steps=600, weighting=pc.NTK(every=50), log_every=50, warn=False)
    assert resumed.step == full.step == 600
    assert resumed.net.params.tobytes() == full.net.params.tobytes()
    assert list(resumed.history["step"]) == list(full.history["step"])
    assert np.array_equal(resumed.history["total_loss"], full.history["total_loss"])


# ----------------------------------------------------------------------------- concurrency
def _conc_problem(i):
    return pc.problems.harmonic(omega=2 * np.pi * (1 + 0.1 * i), n_collocation=16)


def _conc_train(prob, i):
    return pc.train(prob, pc.MLP([1, 10, 10, 1], seed=i), steps=100, weighting=pc.NTK(every=10),
                    log_every=25, warn=False).net.params.copy()


@pytest.mark.parametrize("shared", [False, True])
def test_threads_bitwise_equal_to_sequential(shared):
    fault(f"8 threads (shared problem={shared})")
    probs = [_conc_problem(0)] * 8 if shared else [_conc_problem(i) for i in range(8)]
    fresh = [_conc_problem(0)] * 8 if shared else [_conc_problem(i) for i in range(8)]
    seq = [_conc_train(fresh[i], i) for i in range(8)]
    out = [None] * 8
    errors = []
    barrier = threading.Barrier(8)

    def run(i):
        try:
            barrier.wait()
            out[i] = _conc_train(probs[i], i)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a training thread hung"
    assert not errors, errors
    for i in range(8):
        assert out[i].tobytes() == seq[i].tobytes(), f"thread {i} differs from the sequential run"


def test_threads_sharing_one_net_object_for_evaluation():
    """Many threads evaluating the SAME net (one backend workspace) concurrently."""
    fault("8 threads one net")
    net = pc.MLP([2, 16, 16, 1], seed=0)
    xs = [np.random.default_rng(i).uniform(-1, 1, (40, 2)) for i in range(8)]
    ref = [net.derivatives(x).hess.copy() for x in xs]
    out = [None] * 8

    def run(i):
        for _ in range(20):
            out[i] = net.derivatives(xs[i]).hess
            assert np.array_equal(out[i], ref[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for i in range(8):
        assert np.array_equal(out[i], ref[i])


# ----------------------------------------------------------------------------- leaks
def _rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc")
def test_100k_steps_keep_memory_flat():
    fault("100k steps RSS")
    prob = pc.problems.harmonic(n_collocation=10)
    net = pc.MLP([1, 8, 1], seed=0)
    rss = {}

    def cb(step, row):
        if step in (10_000, 99_000):
            rss[step] = _rss_mb()
        return False

    pc.train(prob, net, steps=2_000, weighting=pc.Fixed(), log_every=1000, warn=False)  # warm-up
    r = pc.train(prob, net, steps=100_000, weighting=pc.Fixed(), log_every=1000, warn=False, callback=cb)
    end = _rss_mb()
    assert r.status == "completed" and r.step == 100_000
    growth = max(rss[99_000], end) - rss[10_000]
    print(f"\nRSS after 10k steps {rss[10_000]:.1f} MB, after 100k {end:.1f} MB (growth {growth:+.2f} MB)")
    assert growth < 5.0, f"resident memory grew by {growth:.1f} MB between step 10k and 100k"


def test_repeated_calls_keep_memory_flat():
    """Every low-level entry point in a loop (new arrays each call): no growth."""
    fault("entry-point loop RSS")
    net = pc.MLP([2, 12, 1], seed=0)
    prob = pc.problems.burgers(n_collocation=30) if hasattr(pc.problems, "burgers") else None
    x = np.random.default_rng(0).uniform(-1, 1, (30, 2))

    def work(n):
        for _ in range(n):
            net.derivatives(x)
            net.jets_vjp(x, [(), (0,), (0, 1)], np.ones((3, 30, 1)), norms=True)
            if prob is not None:
                prob.value_and_grad(net, residuals=True)
                prob.ntk_traces(net)

    work(300)
    a = _rss_mb()
    work(3000)
    b = _rss_mb()
    assert b - a < 5.0, f"RSS grew by {b - a:.1f} MB over 3000 calls"


def test_zz_report_fault_count():
    print(f"\nfaults injected and survived (this module): {len(FAULTS)}")
    assert len(FAULTS) >= 30 or len(FAULTS) < 5
