"""pc.sweep: the loss-balance crisis as a λ_ic scan, shipping problems to workers, lost workers,
failing fits as records, local pool == Dask bitwise, the table, the analysis, the figures, the CLI.

One 17-point λ_ic sweep of the harmonic IVP (1000 Adam steps: the crisis is already complete
then, see the module fixture) is shared by the assertions; Dask tests start their own
two-process LocalCluster on loopback and come last in the file.
"""
from __future__ import annotations

import importlib
import io
import math
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import pytest

import pinncore as pc
from pinncore import cli

sw = importlib.import_module("pinncore.sweep")  # `pc.sweep` is the function

LAMS = np.logspace(-3, 5, 17).tolist()          # 1e-3 ... 1e5, half a decade apart
STEPS = 1000
LAYERS = [1, 50, 50, 50, 1]
PKG_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(pc.__file__)))


def direct_fit(problem, lam, steps=STEPS, seed=0, term="ic"):
    """The fit a sweep record stands for, run here by pc.train (the reference for bitwise checks)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pc.train(problem, pc.MLP(LAYERS, seed=seed), weighting=pc.Fixed({term: lam}), steps=steps,
                        log_every=steps, warn=False)


@pytest.fixture(scope="module")
def crisis():
    return pc.sweep(pc.problems.harmonic(), {"ic": LAMS}, steps=STEPS, progress=False)


def errors(res):
    return {r["ic"]: r["rel_l2"] for r in res.records}


# ------------------------------------------------------------------------------ the crisis

def test_crisis_fails_at_small_and_large_lambda_and_works_near_1e2(crisis):
    err = errors(crisis)
    assert all(r["status"] == "completed" for r in crisis.records)
    # λ_ic <= 1: the net finds u ≈ 0 (rel-L2 ≈ 1); λ_ic >= 1e4: IC met, PDE not.
    assert all(err[lam] > 0.9 for lam in LAMS if lam <= 1.0)
    assert all(err[lam] > 0.3 for lam in LAMS if lam >= 1e4)
    assert err[100.0] < 0.01
    g = crisis.goldilocks("ic")
    assert g.best in (10 ** 1.5, 100.0, 10 ** 2.5) and g.best_rel_l2 < 0.01
    assert g.under is not None and 10.0 < g.under[0] <= 100.0 <= g.under[1] < 1e3
    assert g.within[0] <= g.under[0] and g.within[1] >= g.under[1] or g.within == g.under


def test_records_in_grid_order_with_every_field(crisis):
    assert [r["index"] for r in crisis.records] == list(range(17))
    assert [r["ic"] for r in crisis.records] == LAMS
    r = crisis.records[10]
    for k in ("seed", "ic", "weighting", "optimizer", "steps", "status", "error", "rel_l2", "grad_ratio0",
              "pde_loss", "ic_loss", "pde_weight", "ic_weight", "step", "wall_time", "cpu_time", "worker"):
        assert k in r, k
    assert (r["weighting"], r["optimizer"], r["steps"], r["step"], r["error"]) == ("fixed", "adam", STEPS, STEPS, None)
    assert r["ic_weight"] == 100.0 and r["pde_weight"] == 1.0 and 0 < r["cpu_time"] <= r["wall_time"] + 0.01
    from pinncore.verdict import verdict
    assert all(rec["verdict"] == verdict(rec["rel_l2"], rec["status"]) for rec in crisis.records)
    if sw.available_cores() >= 2:
        assert len({r["worker"] for r in crisis.records}) == 2 and crisis.info["workers"] == 2


def test_a_pool_record_is_bitwise_the_fit_run_here(crisis):
    problem = pc.problems.harmonic()
    for i in (6, 10, 14):
        lam, rec = LAMS[i], crisis.records[i]
        res = direct_fit(problem, lam)
        assert rec["rel_l2"] == res.rel_l2
        assert rec["pde_loss"] == res.history["pde_loss"][-1] and rec["ic_loss"] == res.history["ic_loss"][-1]


def test_step0_gradient_ratio_is_the_weighted_norm_ratio(crisis):
    g = pc.problems.harmonic().gradients(pc.MLP(LAYERS, seed=0))
    npde, nic = np.linalg.norm(g["pde"]), np.linalg.norm(g["ic"])
    for lam, rec in zip(LAMS, crisis.records):
        a, b = npde, lam * nic
        # With its direction, as the demo prints it: λ‖∇L_pde‖ / λ‖∇L_ic‖ (issue 19; was max/min).
        assert rec["grad_ratio0"] == pytest.approx(a / b, rel=1e-12)


# ------------------------------------------------------------------------------ failing fits

def test_failing_fits_are_records_with_their_error():
    res = pc.sweep("harmonic", {"ic": [100.0, -1.0, "big"], "lr": [1e-3, 1e300]}, steps=30, workers=2,
                   progress=False)
    st = [r["status"] for r in res.records]
    assert st == ["completed", "diverged", "error", "error", "error", "error"]
    # lr = 1e300: the first Adam step throws the parameters to ~1e300, the loss is inf (NaN fits)
    assert res.records[1]["error"].startswith("non-finite loss or gradient at step 1")
    assert res.records[1]["step"] == 1 and res.records[1]["rel_l2"] is not None
    assert "ValueError" in res.records[2]["error"] and "'ic'" in res.records[2]["error"]
    assert res.records[4]["rel_l2"] is None and len(res.failed) == 5
    assert res.best() == {"ic": 100.0, "lr": 1e-3, "rel_l2": res.records[0]["rel_l2"]}  # failures are +inf


def test_bad_combinations_are_records():
    grid = {"weighting": ["fixed", "ntk", "nonsense"], "weighting.every": [10]}
    res = pc.sweep("harmonic", grid, seeds=(s for s in [0]), steps=20, workers=1, progress=False)
    assert res.seeds == [0]
    st = {r["weighting"]: (r["status"], r["error"]) for r in res.records}
    assert st["ntk"] == ("completed", None)
    assert st["fixed"][0] == "error" and "every" in st["fixed"][1]
    assert st["nonsense"][0] == "error" and "unknown weighting scheme" in st["nonsense"][1]
    res = pc.sweep("harmonic", {"weighting": ["fixed", "ntk"], "ic": [10.0]}, steps=20, workers=1, progress=False)
    assert res.records[0]["status"] == "completed"
    assert res.records[1]["status"] == "error" and "needs weighting 'fixed'" in res.records[1]["error"]


def test_grid_keys_for_schemes_optimizers_problems_and_training():
    grid = {"weighting": ["gradnorm"], "weighting.alpha": [0.5], "optimizer.b1": [0.8], "lr": [2e-3],
            "problem.omega": [3.0], "layers": [[1, 8, 1]], "lambda.pde": [1.0]}
    with pytest.raises(ValueError, match="needs weighting 'fixed'"):
        pc.sweep("harmonic", {"lambda.pde": [1.0]}, weighting="ntk", progress=False)
    del grid["lambda.pde"]
    res = pc.sweep("harmonic", grid, steps=25, workers=1, progress=False)
    r = res.records[0]
    assert r["status"] == "completed", r["error"]
    ref = pc.train(pc.problems.harmonic(omega=3.0), pc.MLP([1, 8, 1], seed=0),
                   weighting=pc.GradNorm(alpha=0.5), optimizer=pc.Adam(lr=2e-3, b1=0.8), steps=25, log_every=25,
                   warn=False)
    assert r["rel_l2"] == ref.rel_l2 and r["layers"] == [1, 8, 1] and r["problem.omega"] == 3.0


@pytest.mark.parametrize("grid, exc, match", [
    ({"nope": [1.0]}, ValueError, "'nope' is not a term"),
    ({"lambda.nope": [1.0]}, ValueError, "no term 'nope'"),
    ({"seed": [1]}, ValueError, "seeds="),
    ({"ic": []}, ValueError, "empty"),
    ({"ic": 3.0}, TypeError, "list of values"),
    ({"bogus.x": [1]}, ValueError, "prefix"),
    ([("ic", [1.0])], TypeError, "grid must be a dict"),
])
def test_bad_grids_raise_naming_the_key(grid, exc, match):
    with pytest.raises(exc, match=match):
        pc.sweep("harmonic", grid, progress=False)


def test_bad_arguments_raise():
    with pytest.raises(TypeError, match="range"):
        pc.sweep("harmonic", {"ic": [1.0]}, seeds=3)
    with pytest.raises(TypeError, match="'callback'"):
        pc.sweep("harmonic", {"ic": [1.0]}, callback=print)
    with pytest.raises(ValueError, match="unknown problem 'nope'"):
        pc.sweep("nope", {"ic": [1.0]})
    with pytest.raises(ValueError, match="cannot import module"):
        pc.sweep("no_such_module_xyz:make", {"ic": [1.0]})
    with pytest.raises(ValueError, match="workers"):
        pc.sweep("harmonic", {"ic": [1.0]}, workers=0)
    with pytest.raises(TypeError, match="progress"):
        pc.sweep("harmonic", {"ic": [1.0]}, progress="yes")


# ------------------------------------------------------------------------------ problems

def inline_problem(k=3.0):
    t = np.linspace(0.0, 1.0, 24)[:, None]
    return pc.Problem(inputs=["t"], outputs=["u"], domain={"t": (0.0, 1.0)},
                      terms={"ode": pc.Term(points=t, residual=lambda x, u: u.t + k * u),
                             "ic": pc.Term(points=[[0.0]], residual=lambda x, u: u - 1.0)},
                      exact=lambda x: np.exp(-k * x[:, :1]))


def test_library_factories_record_their_origin():
    p = pc.problems.harmonic(3.0, hard_constraint=False)
    assert p.origin == ("harmonic", {"omega": 3.0, "hard_constraint": False})
    assert pc.problems.get("heat1d", n_collocation=10).origin == ("heat1d", {"n_collocation": 10})
    assert pc.problems.harmonic.__doc__.startswith("Harmonic oscillator IVP")


def test_user_problem_sweeps_locally_by_inheritance():
    problem = inline_problem()
    assert problem.origin is None   # declared on pc.Problem (None: not built by a library factory)
    res = pc.sweep(problem, {"ic": [1.0, 10.0]}, steps=100, workers=2, progress=False)
    assert res.info["backend"] == "local"
    for r in res.records:
        assert r["status"] == "completed", r["error"]
        assert r["rel_l2"] == direct_fit(problem, r["ic"], steps=100).rel_l2
    with pytest.raises(ValueError, match="'nope'"):
        pc.sweep(problem, {"nope": [1.0]})
    assert not sw._INHERITED  # the sweep (and the failed one) let go of the problem


def test_user_problem_by_factory_path_function_and_origin():
    factory = importlib.import_module("_sweep_factory")
    grid = {"ic": [1.0, 10.0], "problem.k": [1.0, 3.0]}
    res = pc.sweep("_sweep_factory:decay", grid, steps=60, workers=2, progress=False)
    assert [(r["ic"], r["problem.k"]) for r in res.records] == [(1.0, 1.0), (1.0, 3.0), (10.0, 1.0), (10.0, 3.0)]
    for r in res.records:
        assert r["rel_l2"] == direct_fit(factory.decay(k=r["problem.k"]), r["ic"], steps=60).rel_l2
    by_function = pc.sweep(factory.decay, grid, steps=60, workers=2, progress=False)
    p = factory.decay()
    p.origin = ("_sweep_factory:decay", {})
    by_origin = pc.sweep(p, grid, steps=60, workers=2, progress=False)
    assert errs(by_function) == errs(res) == errs(by_origin)


def errs(res):
    return [r["rel_l2"] for r in res.records]


# ------------------------------------------------------------------------------ lost workers

KILL_GRID = {"ic": [LAMS[8], LAMS[10], LAMS[12]], "steps": [50, STEPS]}  # fit 0 is short, fit 1 long


class Killer:
    """After the first record, SIGKILL one worker that is still running a fit."""

    def __init__(self, pids):
        self.pids, self.killed = pids, None

    def __call__(self, done, total, record):
        if self.killed is None:
            me = int(record["worker"].rsplit(":", 1)[1])
            self.killed = next(p for p in self.pids() if p != me)
            os.kill(self.killed, signal.SIGKILL)


def check_kill_sweep(res, crisis, killed):
    assert killed is not None
    assert [(r["ic"], r["steps"]) for r in res.records] == [(a, s) for a in KILL_GRID["ic"] for s in KILL_GRID["steps"]]
    assert all(r["status"] == "completed" for r in res.records), [r["error"] for r in res.records]
    assert all(r["worker"] != f"{r['worker'].split(':')[0]}:{killed}" for r in res.records)
    ref = errors(crisis)
    for r in res.records:
        if r["steps"] == STEPS:
            assert r["rel_l2"] == ref[r["ic"]]


@pytest.mark.skipif(sw.available_cores() < 2, reason="needs 2 cores for two pool workers")
def test_a_killed_local_worker_loses_no_record(crisis):
    kill = Killer(lambda: [p.pid for p in multiprocessing.active_children()])
    res = pc.sweep("harmonic", KILL_GRID, workers=2, progress=kill)
    check_kill_sweep(res, crisis, kill.killed)
    assert res.info["restarts"] >= 1


@pytest.mark.skipif(sw.available_cores() < 2, reason="needs 2 cores for two pool workers")
def test_a_worker_killed_between_fits_loses_nothing():
    def kill_idle(done, total, record):
        if done == 2:  # the worker of the second fit: idle, or already running the third one
            os.kill(int(record["worker"].rsplit(":", 1)[1]), signal.SIGKILL)
            time.sleep(0.5)  # let the pool notice before anything else is submitted

    res = pc.sweep("harmonic", {"ic": [1.0, 10.0, 100.0]}, steps=50, workers=2, progress=kill_idle)
    # Which worker the third fit landed on is up to the pool: when it ran on the survivor the
    # sweep may end before the broken pool is noticed (no restart); never is a record lost.
    assert [r["status"] for r in res.records] == ["completed"] * 3 and res.info["restarts"] in (0, 1)
    ref = pc.sweep("harmonic", {"ic": [1.0, 10.0, 100.0]}, steps=50, workers=1, progress=False)
    assert errs(res) == errs(ref)


def test_a_fit_that_kills_its_worker_every_time_becomes_a_lost_record():
    res = pc.sweep("_sweep_factory:decay", {"ic": [1.0, 2.0, 3.0], "problem.n": [24, -9]}, steps=5, workers=2,
                   retries=1, progress=False)
    # n = -9 makes np.linspace raise inside the factory: an error record, not a lost worker
    assert [r["status"] for r in res.records] == ["completed", "error"] * 3
    crash = pc.sweep(pc.problems.harmonic(), {"ic": [1.0, 2.0]}, steps=5, workers=2, retries=1, progress=False,
                     log_every=_Crash())
    assert [r["status"] for r in crash.records] == ["lost", "lost"]
    assert "died 2 times" in crash.records[0]["error"] and crash.info["restarts"] >= 2


class _Crash(int):
    """A log_every that kills the worker process when pc.train reads it (a crashing fit)."""

    def __new__(cls, value=5):  # pickle rebuilds it with the int value
        return super().__new__(cls, value)

    def __lt__(self, other):
        os._exit(3)


INTERRUPTED = """
import multiprocessing, signal, sys
import pinncore as pc
signal.signal(signal.SIGINT, signal.default_int_handler)
def report(done, total, record):
    print("record", done, flush=True)
try:
    print("go", flush=True)
    pc.sweep("harmonic", {"ic": [1.0, 10.0, 100.0, 1000.0]}, steps=20000, workers=int(sys.argv[1]), progress=report)
except KeyboardInterrupt:
    print("interrupted; children left:", len(multiprocessing.active_children()), flush=True)
    sys.exit(130)
"""


@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_stops_the_sweep_and_its_workers(workers):
    env = dict(os.environ, PYTHONPATH=PKG_PARENT)
    proc = subprocess.Popen([sys.executable, "-c", INTERRUPTED, str(workers)], stdout=subprocess.PIPE, text=True,
                            env=env, cwd=tempfile.gettempdir())
    try:
        assert proc.stdout.readline() == "go\n"
        # steps=20000 makes every fit take seconds: SIGINT comes while the first fits run
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130, out
    assert "interrupted; children left: 0" in out and "record" not in out


# ------------------------------------------------------------------------------ the table

def test_csv_json_pandas_round_trip(crisis, tmp_path):
    text = crisis.to_csv(tmp_path / "s.csv")
    lines = text.splitlines()
    assert lines[0].startswith("index,seed,ic,weighting,optimizer,steps,status,error,rel_l2,grad_ratio0")
    assert len(lines) == 18 and (tmp_path / "s.csv").read_text() == text
    assert float(lines[11].split(",")[8]) == crisis.records[10]["rel_l2"]  # repr: exact
    crisis.to_json(tmp_path / "s.json")
    back = sw.SweepResult.from_json(tmp_path / "s.json")
    assert back.records == crisis.records and back.keys == ["ic"] and back.terms == ["pde", "ic"]
    assert str(back.goldilocks("ic")) == str(crisis.goldilocks("ic"))
    pd = pytest.importorskip("pandas", reason="pandas is not installed (pip install pandas)")
    df = crisis.to_pandas()
    assert list(df["rel_l2"]) == errs(crisis) and list(df.columns) == crisis.columns


def synthetic(f, a_vals, b_vals, seeds=(0, 1)):
    recs = []
    for a in a_vals:
        for b in b_vals:
            for s in seeds:
                recs.append({"index": len(recs), "seed": s, "pde": a, "bc": b, "status": "completed",
                             "rel_l2": f(a, b, s)})
    return sw.SweepResult(recs, keys=["pde", "bc"], kinds={"pde": "lambda", "bc": "lambda"}, terms=["pde", "bc"],
                          seeds=list(seeds))


def test_goldilocks_interval_and_volume_on_a_known_surface():
    vals = [1e-2, 1e-1, 1.0, 1e1, 1e2]
    # error 1e-3 * 10^|log b - log a| (seed 1 twice as bad): good iff |log10(b/a)| <= 1
    f = lambda a, b, s: 1e-3 * 10 ** abs(math.log10(b / a)) * (1 + s)  # noqa: E731
    res = synthetic(f, vals, vals)
    vol = res.goldilocks_volume(threshold=0.05)
    # median over the two seeds = 1.5e-3 · 10^|Δ|: < 0.05 iff |Δ| <= 1 -> 5 + 2·4 = 13 of 25 points
    assert (vol.n_points, vol.n_good) == (25, 13) and vol.fraction == 13 / 25
    # cells: end points half a decade, inner ones a decade; 4 x 4 decades in all
    cell = {1e-2: 0.5, 1e-1: 1.0, 1.0: 1.0, 1e1: 1.0, 1e2: 0.5}
    good = [(a, b) for a in vals for b in vals if abs(math.log10(b / a)) <= 1 + 1e-9]
    assert vol.volume == pytest.approx(sum(cell[a] * cell[b] for a, b in good), rel=1e-12)
    assert vol.total == pytest.approx(16.0, rel=1e-12)
    g = res.goldilocks("bc", factor=10.0, around="any")
    assert g.best_rel_l2 == pytest.approx(1.5e-3) and np.allclose(g.errors, 1.5e-3)  # best over pde for each bc
    g = res.goldilocks("bc", factor=20.0)  # through the best point pde = bc = 1e-2 (the first of the minima)
    assert np.allclose(g.errors, 1.5e-3 * np.array([1, 10, 100, 1e3, 1e4]))
    assert g.best == 1e-2 and g.within == (1e-2, 0.1) and g.under == (1e-2, 0.1)
    best = res.best(agg="max")
    assert best["rel_l2"] == pytest.approx(2e-3) and best["pde"] == best["bc"]
    one = res.where(pde=1.0).goldilocks("bc", factor=20.0)  # errors 0.15, 0.015, 0.0015, 0.015, 0.15
    assert one.within == (0.1, 10.0) and one.under == (0.1, 10.0)
    assert res.where({"pde": 1.0}).goldilocks("bc", factor=200.0).within == (1e-2, 1e2)


def test_progress_bar_only_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty, pipe = Tty(), io.StringIO()
    for stream in (tty, pipe):
        bar = sw._Bar(3, stream=stream)
        for i in range(1, 4):
            bar(i, 3, {"status": "completed" if i < 3 else "error"})
        bar.close()
    assert pipe.getvalue() == ""
    out = tty.getvalue()
    # tqdm's line (issue 20 #4): the count, elapsed<remaining, the failed fits; left on screen
    assert "sweep: 100%" in out and "3/3 [" in out and "<" in out and "failed=1" in out and out.endswith("\n")


def test_sweep_prints_nothing_when_stderr_is_not_a_terminal(capfd):
    pc.sweep("harmonic", {"ic": [1.0, 10.0]}, steps=5, workers=2)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_parse_axis():
    assert sw.parse_axis("ic=1e-3:1e5:17")[1] == [float(f"{v:.12g}") for v in LAMS]
    assert sw.parse_axis("ic=1e-3:1e5:17")[1][10] == 100.0
    assert sw.parse_axis("lr=1e-3,2e-3") == ("lr", [1e-3, 2e-3])
    assert sw.parse_axis("steps=100,200") == ("steps", [100, 200])
    for bad in ("ic", "ic=", "=1", "ic=0:1:3", "ic=1:2", "ic=a:b:c", "ic=1:10:0"):
        with pytest.raises(ValueError, match="grid item"):
            sw.parse_axis(bad)


def test_dask_is_not_imported_by_a_local_sweep():
    code = ("import sys, pinncore as pc; r = pc.sweep('harmonic', {'ic': [1.0, 2.0]}, steps=5, workers=2); "
            "assert all(x['status'] == 'completed' for x in r.records); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed', 'pandas')))")
    env = dict(os.environ, PYTHONPATH=PKG_PARENT)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                         cwd=tempfile.gettempdir())
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------------------ figures and CLI

def test_sweep_figures(crisis, tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib is not installed (pip install 'pinncore[plot]')")
    from pinncore import plotting
    p = plotting.sweep_figure(crisis, tmp_path / "e.png", term="ic")
    assert os.path.getsize(p) > 10_000
    vals = [1e-2, 1e-1, 1.0, 1e1]
    res = synthetic(lambda a, b, s: 1e-3 * 10 ** abs(math.log10(b / a)), vals, vals)
    p = plotting.sweep_heatmap(res, tmp_path / "h.png", terms=("pde", "bc"))
    assert os.path.getsize(p) > 10_000
    with pytest.raises(ValueError, match="λ keys"):
        plotting.sweep_heatmap(crisis, tmp_path / "x.png")


def test_cli_sweep(tmp_path, capsys):
    out = tmp_path / "o"
    code = cli.main(["sweep", "--problem", "harmonic", "--grid", "ic=1:100:3", "--seeds", "2", "--steps", "40",
                     "--workers", "2", "--out", str(out), "--plot"])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "6 fits (3 grid points x 2 seed(s))" in text and "λ_ic: best" in text
    back = sw.SweepResult.from_json(out / "sweep.json")
    assert [(r["ic"], r["seed"]) for r in back.records] == [(a, s) for a in (1.0, 10.0, 100.0) for s in (0, 1)]
    assert (out / "sweep.csv").is_file() and (out / "sweep.png").is_file()
    ref = direct_fit(pc.problems.harmonic(), 10.0, steps=40, seed=1)
    assert back.records[3]["rel_l2"] == ref.rel_l2


@pytest.mark.parametrize("args, msg", [
    (["--grid", "ic=1:100"], "grid item"),
    (["--grid", "nope=1,2"], "'nope' is not a term"),
    (["--problem", "nope", "--grid", "ic=1"], "unknown problem"),
    (["--grid", "ic=1", "--seeds", "0,x"], "--seeds"),
    (["--grid", "ic=1", "--scheduler", "tcp://127.0.0.1:1"], "scheduler"),
])
def test_cli_sweep_bad_input_exits_2(args, msg, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["sweep", *(["--problem", "harmonic"] if "--problem" not in args else []), *args, "--steps", "2"]
    assert cli.main(argv) == 2
    cap = capsys.readouterr()
    assert msg in cap.err
    # Only the one-line error: nothing printed before it, and no output folder left behind.
    assert cap.out == "" and cap.err.count("\n") == 1, cap
    assert not (tmp_path / "pinncore-out").exists()


# ------------------------------------------------------------------------------ Dask

@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed: "
                                                            "pip install 'pinncore[dask]'")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the cluster's own start-up chatter
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, protocol="tcp",
                                           host="127.0.0.1", dashboard_address=None)
        client = distributed.Client(cluster)
    yield client
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client.close()
        cluster.close()


def test_dask_gives_bitwise_the_local_results(crisis, dask_client):
    res = pc.sweep(pc.problems.harmonic(), {"ic": LAMS}, steps=STEPS, client=dask_client, progress=False)
    assert res.info["backend"] == "dask" and res.info["workers"] == 2
    assert [r["ic"] for r in res.records] == LAMS
    for a, b in zip(crisis.records, res.records):
        where = ("wall_time", "cpu_time", "worker")
        assert {k: v for k, v in a.items() if k not in where} == {k: v for k, v in b.items() if k not in where}
    assert {r["worker"] for r in res.records}.isdisjoint({r["worker"] for r in crisis.records})


def test_user_problem_on_dask_needs_a_factory(dask_client):
    with pytest.raises(ValueError, match="module-level factory"):
        pc.sweep(inline_problem(), {"ic": [1.0]}, client=dask_client)
    grid = {"ic": [1.0, 10.0], "problem.k": [1.0, 3.0]}
    local = pc.sweep("_sweep_factory:decay", grid, steps=60, workers=2, progress=False)
    remote = pc.sweep(("_sweep_factory:decay", {"n": 24}), grid, steps=60, client=dask_client, progress=False)
    assert errs(remote) == errs(local) and all(r["status"] == "completed" for r in remote.records)


def test_a_killed_dask_worker_loses_no_record(crisis, dask_client):
    kill = Killer(lambda: list(dask_client.run(os.getpid).values()))
    res = pc.sweep("harmonic", KILL_GRID, client=dask_client, progress=kill)
    check_kill_sweep(res, crisis, kill.killed)
    dask_client.wait_for_workers(2, timeout=60)  # the nanny restarts the killed worker


def test_cli_sweep_on_a_dask_scheduler(dask_client, tmp_path, capsys):
    code = cli.main(["sweep", "--problem", "harmonic", "--grid", "ic=1,100", "--steps", "30",
                     "--scheduler", dask_client.scheduler.address, "--out", str(tmp_path)])
    text = capsys.readouterr().out
    assert code == 0, text
    assert f"on Dask scheduler {dask_client.scheduler.address}" in text
    back = sw.SweepResult.from_json(tmp_path / "sweep.json")
    assert back.info["backend"] == "dask"
    assert back.records[1]["rel_l2"] == direct_fit(pc.problems.harmonic(), 100.0, steps=30).rel_l2


# ------------------------------------------------------- arguments checked before dispatch (issue 23 #9)

def _never(*_):
    raise AssertionError("a fit was dispatched")


@pytest.mark.parametrize("kwargs, match", [
    ({"steps": -1}, r"^steps must be an integer >= 0, got -1"),
    ({"steps": 5, "lr": 0.0}, r"^lr must be a finite number > 0"),
    ({"steps": 5, "lr": "x"}, r"^lr must be a finite number > 0"),
    ({"steps": 5, "log_every": 0}, r"^log_every must be an integer >= 1"),
    ({"steps": 5, "lbfgs_steps": -2}, r"^lbfgs_steps must be an integer >= 0"),
    ({"steps": 5, "layers": [2, 8, 1]}, r"^layers: net has 2 inputs"),
    ({"steps": 5, "layers": [1, 0, 1]}, r"^layers: layers must contain positive integer widths"),
    ({"steps": 5, "layers": 50}, r"^layers must be a list of widths"),
])
def test_sweep_arguments_are_checked_before_any_fit(kwargs, match):
    """A setting every fit shares is checked once, before dispatch (steps=-1 over a 100 000-point
    grid made 100 000 error records); grid values stay per-fit records."""
    with pytest.raises((ValueError, TypeError), match=match):
        pc.sweep("harmonic", {"ic": list(np.logspace(-3, 5, 100_000))}, workers=1, progress=_never, **kwargs)


@pytest.mark.parametrize("problem, match", [
    (("harmonic", {"omega": "x"}), r"harmonic\(omega='x'\): omega must be a real number \(default 6.28"),
    (("harmonic", {"hard_constraint": "yes"}), r"hard_constraint must be True or False"),
    (("burgers", {"seed": -1}), r"burgers\(seed=-1\): seed must be an integer >= 0"),
    (("heat1d", {"kappa": None}), r"heat1d\(kappa=None\): kappa must be a real number"),
    (("advection", {"bc": 3}), r"advection\(bc=3\): bc must be a string"),
])
def test_a_bad_factory_argument_names_the_parameter(problem, match):
    with pytest.raises((TypeError, ValueError), match=match):
        pc.sweep(problem, {"ic": [1.0]}, steps=5, workers=1, progress=_never)
    with pytest.raises((TypeError, ValueError), match=match):
        pc.problems.get(problem[0], **problem[1])


def test_factory_arguments_of_the_right_kind_still_build():
    assert pc.problems.get("harmonic", n_collocation=20.0).n_points["pde"] == 20      # an integral float count
    assert pc.problems.get("poisson1d", a=2.5).n_points["pde"] == 128                 # an int default, a float value
    assert pc.problems.get("harmonic", omega=np.float64(3.0), hard_constraint=np.bool_(True)).term_names == ["pde"]
