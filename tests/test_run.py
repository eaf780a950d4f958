"""pc.Run: stepping, phases, observers, cancel from another thread, save/resume, stop reasons."""
import threading
import time
import warnings

import numpy as np
import pytest

import pinncore as pc
from pinncore.observers import Checkpoint, Observer, StopAtTolerance

LAYERS = [1, 16, 16, 1]


def make_run(**kw):
    kw.setdefault("weighting", pc.Fixed({"ic": 100.0}))
    kw.setdefault("warn", False)
    return pc.Run(pc.problems.harmonic(), pc.MLP(LAYERS, seed=0), **kw)


def test_run_steps_equal_train_bitwise():
    run = make_run(log_every=10)
    assert run.status == "ready" and run.step_count == 0
    assert run.step(25) == "completed"
    assert run.step(25) == "completed"
    res = run.result()
    ref = pc.train(pc.problems.harmonic(), pc.MLP(LAYERS, seed=0), weighting=pc.Fixed({"ic": 100.0}), steps=50,
                   log_every=10, warn=False)
    assert np.array_equal(res.net.params, ref.net.params)
    assert res.history["step"].tolist() == ref.history["step"].tolist() == [0, 10, 20, 30, 40, 50]
    assert np.array_equal(res.history["total_loss"], ref.history["total_loss"])
    assert res.history["step"].dtype == np.int64


def test_phase_end_rows_and_names():
    run = make_run(log_every=10)
    run.step(25)
    run.step(7, optimizer="lbfgs")
    run.result()
    steps, phases = run.history["step"].tolist(), run.history["phase"].tolist()
    # the Adam phase's last step (25) has its own row, then L-BFGS continues to 32
    assert steps == [0, 10, 20, 25, 30, 32]
    assert phases == ["adam", "adam", "adam", "adam", "lbfgs", "lbfgs"]
    assert len(set(steps)) == len(steps)


def test_train_lbfgs_after_adam_has_adam_end_row():
    r = pc.train(pc.problems.harmonic(), pc.MLP(LAYERS, seed=0), weighting=pc.Fixed({"ic": 100.0}), steps=30,
                 lbfgs_steps=10, log_every=20, warn=False)
    rows = dict(zip(r.history["step"].tolist(), r.history["phase"].tolist()))
    assert rows[30] == "adam" and rows[40] == "lbfgs" and r.step == 40


class Counter(Observer):
    every = "step"

    def __init__(self):
        self.steps, self.rows, self.started, self.ended, self.phases = [], [], 0, 0, []

    def on_start(self, run):
        self.started += 1

    def on_step(self, run, step):
        assert run.context is not None and set(run.context.losses) == {"pde", "ic"}
        self.steps.append(step)

    def on_log(self, run, row):
        self.rows.append(row["step"])

    def on_phase_end(self, run, phase):
        self.phases.append(phase)

    def on_end(self, run):
        self.ended += 1


def test_observer_sees_every_step_and_every_row():
    c = Counter()
    run = make_run(log_every=4, observers=[c])
    run.step(10)
    run.step(3, optimizer="lbfgs")
    assert c.steps == list(range(13))
    assert c.rows == [0, 4, 8, 10, 12]
    assert c.started == c.ended == 2 and c.phases == ["adam"]


def test_observer_stop_and_tolerance_status():
    class StopAt7(Observer):
        every = "step"

        def on_step(self, run, step):
            return step == 6

    run = make_run(observers=[StopAt7()])
    assert run.step(100) == "stopped" and run.step_count == 7
    r = pc.train(pc.problems.harmonic(), pc.MLP([1, 20, 20, 1], seed=0), weighting=pc.Fixed({"ic": 100.0}),
                 steps=3000, log_every=50, tol=0.5, warn=False)
    assert r.status == "converged" and "rel-L2" in r.message and r.rel_l2 <= 0.5 and r.step < 3000
    with pytest.raises(ValueError, match="tolerance"):
        StopAtTolerance(rel_l2=-1.0)


def test_cancel_from_another_thread_returns_promptly_and_consistent():
    run = make_run(log_every=50)
    out = {}

    def work():
        out["status"] = run.step(10_000_000)

    t = threading.Thread(target=work)
    t.start()
    time.sleep(0.2)
    t0 = time.perf_counter()
    run.cancel()
    t.join(5.0)
    assert not t.is_alive() and time.perf_counter() - t0 < 2.0
    assert out["status"] == "cancelled" and run.cancelled
    k = run.step_count
    assert 0 < k < 10_000_000
    # consistent: the state is exactly that of k uninterrupted steps
    ref = make_run(log_every=50)
    ref.step(k)
    assert np.array_equal(run.net.params, ref.net.params)
    assert run.step(5) == "cancelled" and run.step_count == k


def test_concurrent_step_calls_are_refused():
    run = make_run()
    started = threading.Event()

    class Block(Observer):
        every = "step"

        def on_step(self, run, step):
            started.set()
            time.sleep(0.3)
            return True

    run.add_observer(Block())
    t = threading.Thread(target=run.step, args=(5,))
    t.start()
    started.wait(5)
    with pytest.raises(RuntimeError, match="already stepping"):
        run.step(1)
    t.join()


@pytest.mark.parametrize("log_a,log_b", [(10, 10), (10, 4), (7, 10)])
def test_resume_with_other_log_every_never_repeats_a_step(tmp_path, log_a, log_b):
    path = tmp_path / "run.pcs"
    run = make_run(log_every=log_a)
    run.step(25)
    run.result()
    run.save(path)
    again = make_run(log_every=log_b, resume=path)
    again.step(15)
    steps = again.result().history["step"].tolist()
    assert len(steps) == len(set(steps)) and steps == sorted(steps) and steps[-1] == 40
    ref = make_run(log_every=log_a)
    ref.step(40)
    assert np.array_equal(again.net.params, ref.net.params)


def test_resume_in_lbfgs_phase_continues_exactly(tmp_path):
    path = tmp_path / "run.pcs"
    a = make_run(log_every=5)
    a.step(20)
    a.step(6, optimizer="lbfgs")
    a.save(path)
    b = make_run(log_every=5, resume=path, optimizer="lbfgs")
    assert b.optimizer.name == "lbfgs"
    b.step(6)
    ref = make_run(log_every=5)
    ref.step(20)
    ref.step(12, optimizer="lbfgs")
    assert np.array_equal(b.net.params, ref.net.params)
    state = pc.load_state(path)
    assert state["optimizer"]["name"] == "adam" and state["phase"]["name"] == "lbfgs"


def test_checkpoint_observer_and_save(tmp_path):
    path = tmp_path / "ck.pcs"
    run = make_run(observers=[Checkpoint(str(path), 5)])
    run.step(12)
    assert pc.load_state(path)["step"] == 12
    with pytest.raises(ValueError, match="does not exist"):
        Checkpoint(str(tmp_path / "missing" / "x.pcs"), 5)


class _FullDisk:
    """pinncore.io.save that succeeds ``ok`` times, then fails like a full disk."""

    def __init__(self, real, ok=0):
        self.real, self.ok, self.calls = real, ok, 0

    def __call__(self, path, tree, kind):
        self.calls += 1
        if self.calls > self.ok:
            raise OSError(28, "No space left on device")
        self.real(path, tree, kind=kind)


@pytest.mark.parametrize("ok, holds", [(0, "no checkpoint was written"), (2, "the file holds step 20")])
def test_a_failing_checkpoint_warns_once_and_keeps_the_result(tmp_path, monkeypatch, ok, holds):
    """Issue 23 #5: a checkpoint on a full disk raised OSError out of train and lost the run."""
    path = tmp_path / "ck.pcs"
    disk = _FullDisk(pc.io.save, ok)
    monkeypatch.setattr(pc.io, "save", disk)
    with pytest.warns(pc.observers.CheckpointWarning) as caught:
        res = pc.train(pc.problems.harmonic(), pc.MLP(LAYERS, seed=0), weighting=pc.Fixed({"ic": 100.0}), steps=50,
                       log_every=10, warn=False, checkpoint=str(path), checkpoint_every=10)
    assert len(caught) == 1 and disk.calls == 7          # steps 10..50, the end of the phase, the final save
    assert str(path) in str(caught[0].message) and "No space left on device" in str(caught[0].message)
    assert res.status == "completed" and res.step == 50
    assert f"checkpoint {str(path)!r} could not be written at step 50" in res.message and holds in res.message
    ref = pc.train(pc.problems.harmonic(), pc.MLP(LAYERS, seed=0), weighting=pc.Fixed({"ic": 100.0}), steps=50,
                   log_every=10, warn=False)
    assert np.array_equal(res.net.params, ref.net.params)   # training went on untouched
    if ok:
        assert pc.load_state(path)["step"] == 20
    else:
        assert not path.exists()


def test_run_with_a_failing_checkpoint_completes_and_recovers(tmp_path, monkeypatch):
    path = tmp_path / "ck.pcs"
    disk = _FullDisk(pc.io.save)
    monkeypatch.setattr(pc.io, "save", disk)
    ck = Checkpoint(str(path), 5)
    run = make_run(observers=[ck])
    with pytest.warns(pc.observers.CheckpointWarning, match="could not be written at step 5"):
        assert run.step(12) == "completed"
    assert run.status == "completed" and "could not be written at step 12" in run.message
    assert ck.failure is not None and ck.saved_step is None
    disk.ok = 10 ** 9                                   # the disk has room again: no new warning, saved
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert run.step(3) == "completed"
    assert ck.failure is None and ck.saved_step == 15 and pc.load_state(path)["step"] == 15


def test_a_real_write_error_in_a_subprocess(tmp_path):
    """RLIMIT_FSIZE makes the kernel refuse the checkpoint's bytes (EFBIG): train still returns."""
    resource = pytest.importorskip("resource")
    import subprocess
    import sys
    code = ("import resource, signal, warnings, pinncore as pc\n"
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (2048, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))\n"
            "with warnings.catch_warnings(record=True) as w:\n"
            "    warnings.simplefilter('always')\n"
            f"    r = pc.train(pc.problems.harmonic(), pc.MLP([1, 16, 1]), steps=20, warn=False, checkpoint={str(tmp_path / 'c.pcs')!r}, checkpoint_every=5)\n"
            "print(r.status, r.step, len([x for x in w if x.category is pc.observers.CheckpointWarning]))\n"
            "print(r.message)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path)   # not the repository root: that would import the source tree
    assert out.returncode == 0, out.stderr
    first, message = out.stdout.splitlines()[:2]
    assert first == "completed 20 1" and "could not be written" in message and "no checkpoint was written" in message
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())     # no temporary file left behind


def test_an_observer_that_raises_leaves_a_failed_status():
    class Boom(Observer):
        def on_log(self, run, row):
            if row["step"] >= 10:
                raise RuntimeError("boom")
    run = make_run(log_every=5, observers=[Boom()])
    with pytest.raises(RuntimeError, match="boom"):
        run.step(20)
    assert run.status == "failed" and "RuntimeError at step 10: boom" in run.message
    assert run.result().status == "failed"


def test_nan_params_and_bad_arguments_are_named():
    net = pc.MLP(LAYERS)
    net.params[3] = np.nan
    with pytest.raises(ValueError, match="net.params contains NaN"):
        pc.Run(pc.problems.harmonic(), net)
    with pytest.raises(ValueError, match="net.params contains NaN"):
        pc.train(pc.problems.harmonic(), net, steps=1)
    with pytest.raises(ValueError, match="params contains NaN"):
        net(np.zeros((2, 1)))
    with pytest.raises(ValueError, match="log_every"):
        make_run(log_every=0)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        make_run(optimizer="sgd")
    with pytest.raises(TypeError, match="Observer"):
        make_run().add_observer(lambda *a: None)
    with pytest.raises(ValueError, match="n must be"):
        make_run().step(-1)


def test_weighting_class_is_accepted():
    run = pc.Run(pc.problems.harmonic(), pc.MLP(LAYERS), weighting=pc.NTK, warn=False)
    assert isinstance(run.scheme, pc.NTK)


def test_warning_advice_depends_on_the_scheme():
    def texts(scheme):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            pc.Run(pc.problems.harmonic(), pc.MLP([1, 50, 50, 50, 1]), weighting=scheme).step(1)
        return [str(w.message) for w in caught if w.category is pc.LossBalanceWarning]

    assert texts(pc.NTK()) == []   # NTK balanced the weights at step 0: nothing to warn about
    (sa,) = texts(pc.SelfAdaptive())
    assert "SelfAdaptive will adapt the weights" in sa and "use an adaptive" not in sa
    (fixed,) = texts(pc.Fixed())
    assert "107x" in fixed and "See pc.diagnose()" in fixed


def test_wall_time_grows_within_one_step_call():
    run = make_run(log_every=100)
    run.step(600)
    w = run.history["wall_time"]
    assert len(w) == 6 and np.all(np.diff(w) > 0) and w[0] >= 0.0


# ------------------------------------------------------------- silent answers (issue 23 #8)

@pytest.mark.parametrize("lam", [1e160, 1e200, 1e300])
def test_a_weight_that_overflows_adam_is_a_diverged_run(lam):
    """Fixed({"ic": 1e200}): Adam's v = (1 - b2) g² overflowed and every update was zero, yet the
    run reported "completed" with the parameters never changed."""
    net = pc.MLP(LAYERS, seed=0)
    res = pc.train(pc.problems.harmonic(), net, weighting=pc.Fixed({"ic": lam}), steps=50, log_every=10, warn=False)
    assert res.status == "diverged" and res.step == 1
    assert "second-moment estimate overflowed for" in res.message and "term 'ic'" in res.message
    assert f"λ = {lam:.3g}" in res.message
    if lam >= 1e200:   # every gradient component overflows: the parameters it stopped at are the initial ones
        assert np.array_equal(res.net.params, net.params) and f"for {net.n_params} of {net.n_params}" in res.message


def test_a_large_weight_that_does_not_overflow_still_trains():
    net = pc.MLP(LAYERS, seed=0)
    res = pc.train(pc.problems.harmonic(), net, weighting=pc.Fixed({"ic": 1e150}), steps=20, log_every=10, warn=False)
    assert res.status == "completed" and not np.array_equal(res.net.params, net.params)


def test_an_exact_solution_that_is_identically_zero_gives_the_absolute_error():
    """exact ≡ 0 gave rel_l2 = 1.28e301 (the error over a 1e-300 floor): the RMS error instead."""
    t = np.linspace(0.0, 1.0, 20)[:, None]
    prob = pc.Problem(inputs=["t"], outputs=["u"], domain={"t": (0.0, 1.0)},
                      terms={"pde": pc.Term(t, lambda x, u: u.t + u), "ic": pc.Term([[0.0]], lambda x, u: u)},
                      exact=lambda x: np.zeros((x.shape[0], 1)))
    net = pc.MLP([1, 8, 1], seed=3)
    u = prob.predict(net)
    assert prob.rel_l2(net) == pytest.approx(float(np.sqrt(np.mean(u ** 2))), rel=1e-12)
    res = pc.train(prob, net, steps=30, log_every=10, warn=False)
    assert res.rel_l2 == pytest.approx(float(np.sqrt(np.mean(prob.predict(res.net) ** 2))), rel=1e-12)
    assert res.rel_l2 < 1.0 and np.all(np.isfinite(res.history["rel_l2"]))
