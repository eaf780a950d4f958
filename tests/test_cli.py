"""The ``pinncore`` command: in-process through ``pinncore.cli.main`` and as ``python -m pinncore``."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap

import numpy as np
import pytest

import pinncore
from pinncore import cli, commands, problems
from pinncore.io import load

DEMO_METHODS = [f"Fixed λ_ic={cli._fmt_lam(lam)}" for lam in cli.DEMO_LAMBDAS] + [
    "GradNorm", "NTK", "SelfAdaptive", "ReLoBRaLo", "hard constraint", "NTK + L-BFGS",
    "LM 3 λ_ic=1e0", "LM 3 λ_ic=1e2", "LM 3 λ_ic=1e5", "NTK + LM 3"]


# The package under test may be the installed one (CI) or the source tree (development):
# subprocesses import whichever this process imported, and run outside the repository so
# that `python -c`/`-m` (which put the working directory first on sys.path) cannot pick up
# the source tree, which has no compiled _core after a plain `pip install .`.
PKG_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(pinncore.__file__)))


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = PKG_PARENT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _run(*args, **kw):
    kw.setdefault("cwd", tempfile.gettempdir())
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=_env(), timeout=300, **kw)


# ------------------------------------------------------------------------------ problems

def test_problems_lists_every_library_problem(capsys):
    assert cli.main(["problems"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(problems.REGISTRY)
    for line, (name, desc) in zip(out, problems.describe()):
        assert line.split()[0] == name and line.endswith(desc)


def test_python_dash_m_pinncore_problems():
    r = _run("-m", "pinncore", "problems")
    assert r.returncode == 0, r.stderr
    assert [line.split()[0] for line in r.stdout.splitlines()] == list(problems.REGISTRY)
    assert r.stderr == ""


def test_no_command_and_help():
    r = _run("-m", "pinncore")
    assert r.returncode == 2 and "demo" in r.stdout
    r = _run("-m", "pinncore", "train", "--help")
    assert r.returncode == 0 and "--problem" in r.stdout


# ------------------------------------------------------------------------------ demo

def test_demo_prints_a_row_per_run(capsys):
    assert cli.main(["demo", "--steps", "50", "--seed", "1", "--lm", "3"]) == 0
    cap = capsys.readouterr()
    lines = cap.out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("method"))
    rows = lines[header + 2: header + 2 + len(DEMO_METHODS)]
    assert len(rows) == 19
    for row, method in zip(rows, DEMO_METHODS):
        assert row.startswith(method), (row, method)
        assert any(v in row for v in ("clean", "partial", "wrong steady state")), row
        assert row.rstrip().endswith("s")
    assert "NTK + L-BFGS 50" in cap.out  # --lbfgs defaults to --steps
    assert "ratio@0" in cap.out and "weighted" in cap.out
    assert "Goldilocks zone" in cap.out
    # λ_ic = 1e-3 is imbalanced at step 0: flagged in the table, not raised as a Python warning
    assert rows[0].split()[6].endswith("!")
    # progress goes to stderr, plain lines (not a terminal here)
    assert "\r" not in cap.err and "[19/19]" in cap.err
    assert "Levenberg–Marquardt from random initialisation: λ_ic=1e0 -> " in cap.out


def test_demo_records_and_verdicts():
    import io
    recs = cli.run_demo(steps=20, lbfgs_steps=5, out=io.StringIO(), progress=cli._Progress(io.StringIO()))
    assert [r["method"] for r in recs][:9] == DEMO_METHODS[:9]
    assert len(recs) == 15
    hard = recs[13]
    assert hard["kind"] == "hard" and hard["ratio0"] is None and "ic" not in hard["losses"]
    r0 = recs[0]
    h = r0["history"]
    assert r0["ratio0"] == pytest.approx(h["pde_weight"][0] * h["pde_grad_norm"][0]
                                         / (h["ic_weight"][0] * h["ic_grad_norm"][0]))
    assert r0["warned"] and r0["u"].shape == r0["t"].shape
    assert cli.verdict(0.01) == "clean" and cli.verdict(0.05) == "partial" and cli.verdict(0.3) == "wrong steady state"
    assert cli.verdict(float("nan")) == "diverged"


# ------------------------------------------------------------------------------ train

@pytest.mark.parametrize("name", list(problems.REGISTRY))
def test_train_every_library_problem(name, tmp_path, capsys):
    out = tmp_path / name
    assert cli.main(["train", "--problem", name, "--steps", "2", "--log-every", "1", "--out", str(out)]) == 0
    cap = capsys.readouterr()
    assert "wrote" in cap.out
    for f in ("history.csv", "history.json", "state.pcs"):
        assert (out / f).stat().st_size > 0
    assert not (out / "plot.png").exists()
    csv = (out / "history.csv").read_text().splitlines()
    assert csv[0].startswith("step,phase,wall_time,total_loss")
    assert len(csv) == 1 + 3  # steps 0, 1, 2
    hist = json.loads((out / "history.json").read_text())
    terms = problems.get(name).term_names
    assert hist["terms"] == terms
    for k in terms:
        assert len(hist["columns"][f"{k}_loss"]) == 3
    state = load(str(out / "state.pcs"))
    assert state["step"] == 2


def test_train_options(tmp_path, capsys):
    out = tmp_path / "o"
    rc = cli.main(["train", "--problem", "harmonic", "--weighting", "ntk", "--steps", "20", "--lbfgs", "5",
                   "--lr", "2e-3", "--layers", "1,8,8,1", "--seed", "3", "--log-every", "10", "--out", str(out)])
    assert rc == 0
    cap = capsys.readouterr()
    assert "[adam      0]" in cap.out and "lbfgs" in cap.out
    state = load(str(out / "state.pcs"))
    assert list(state["layers"]) == [1, 8, 8, 1] and state["weighting"]["name"] == "NTK"
    assert state["optimizer"]["config"]["lr"] == pytest.approx(2e-3)
    assert "lbfgs" in json.loads((out / "history.json").read_text())["columns"]["phase"]


def test_train_levenberg_marquardt(tmp_path, capsys):
    out = tmp_path / "lm"
    rc = cli.main(["train", "--problem", "harmonic", "--optimizer", "lm", "--steps", "4", "--layers", "1,8,8,1",
                   "--weighting", "fixed", "--quiet", "--out", str(out)])
    assert rc == 0 and "4 LM iterations" in capsys.readouterr().out
    phases = json.loads((out / "history.json").read_text())["columns"]["phase"]
    assert phases == ["lm"] * 5  # one row per LM iteration (and step 0)
    rc = cli.main(["train", "--problem", "harmonic", "--steps", "10", "--lm", "3", "--layers", "1,8,8,1", "--quiet",
                   "--out", str(out)])
    assert rc == 0
    phases = json.loads((out / "history.json").read_text())["columns"]["phase"]
    assert phases[-3:] == ["lm"] * 3 and phases[0] == "adam"


def test_train_phases_from_the_registry(tmp_path, capsys):
    """--phases names any registered optimizer: Adam, then the dense quasi-Newton method."""
    out = tmp_path / "ph"
    rc = cli.main(["train", "--problem", "harmonic", "--phases", "adam:10,bfgs:4", "--layers", "1,8,8,1",
                   "--weighting", "fixed", "--quiet", "--log-every", "5", "--out", str(out)])
    assert rc == 0
    cols = json.loads((out / "history.json").read_text())["columns"]
    assert cols["phase"][0] == "adam" and cols["phase"][-1] == "bfgs" and cols["step"][-1] == 14
    for bad in (["--phases", "adam:10,nope:3"], ["--phases", "adam:-1"], ["--phases", "adam:10", "--lm", "3"]):
        assert cli.main(["train", "--problem", "harmonic", *bad, "--quiet", "--out", str(tmp_path / "bad")]) != 0
    err = capsys.readouterr().err
    assert "unknown optimizer 'nope'" in err and "--phases gives the whole schedule" in err


def test_train_fixed_weights_and_warning_line(tmp_path, capsys):
    out = tmp_path / "w"
    assert cli.main(["train", "--problem", "harmonic", "--weights", "ic=100", "--steps", "3", "--quiet",
                     "--out", str(out)]) == 0
    cap = capsys.readouterr()
    assert "ic=100" in cap.out and "LossBalanceWarning" not in cap.err
    hist = json.loads((out / "history.json").read_text())
    assert hist["columns"]["ic_weight"][0] == 100.0
    # λ_ic = 1 is imbalanced: the warning becomes one stderr line, not a Python warning (the
    # default weighting, NTK, balances the terms at step 0 and does not warn)
    assert cli.main(["train", "--problem", "harmonic", "--weighting", "fixed", "--steps", "3", "--quiet",
                     "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert err.startswith("warning: LossBalanceWarning: loss imbalance at step 0") and err.count("\n") == 1


def test_train_default_out_dir(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", "--problem", "poisson1d", "--steps", "1", "--quiet"]) == 0
    assert (tmp_path / "pinncore-out" / "poisson1d" / "state.pcs").exists()


# ------------------------------------------------------------------------------ diagnose

def test_diagnose(capsys):
    from pinncore.diagnostics import diagnose
    from pinncore.network import MLP
    assert cli.main(["diagnose", "--problem", "harmonic"]) == 0
    out = capsys.readouterr().out
    expected = str(diagnose(problems.harmonic(), MLP([1, 50, 50, 50, 1], seed=0)))
    assert expected in out and "verdict: imbalanced" in out and "advice:" in out
    assert cli.main(["diagnose", "--problem", "heat1d", "--layers", "2,16,1", "--seed", "2",
                     "--weights", "ic=10"]) == 0
    assert "verdict:" in capsys.readouterr().out


# ------------------------------------------------------------------------------ bad input

def _bad_cases(tmp):
    blocker = os.path.join(tmp, "a-file")
    with open(blocker, "w") as f:
        f.write("x")
    return {
        "unknown problem": ["train", "--problem", "nope"],
        "unknown problem (diagnose)": ["diagnose", "--problem", "nope"],
        "unknown scheme": ["train", "--problem", "harmonic", "--weighting", "magic"],
        "unknown term in weights": ["train", "--problem", "harmonic", "--weights", "bc=3"],
        "malformed weights": ["train", "--problem", "harmonic", "--weights", "ic"],
        "malformed layers": ["train", "--problem", "harmonic", "--layers", "1,x,1"],
        "too few layers": ["train", "--problem", "harmonic", "--layers", "1"],
        "zero width": ["train", "--problem", "harmonic", "--layers", "1,0,1"],
        "layers do not fit": ["train", "--problem", "burgers", "--layers", "1,10,1"],
        "layers do not fit (outputs)": ["diagnose", "--problem", "harmonic", "--layers", "1,10,2"],
        "negative steps": ["train", "--problem", "harmonic", "--steps", "-5"],
        "negative demo steps": ["demo", "--steps", "-1"],
        "non-integer steps": ["train", "--problem", "harmonic", "--steps", "1.5"],
        "negative lbfgs": ["train", "--problem", "harmonic", "--lbfgs", "-1"],
        "bad lr": ["train", "--problem", "harmonic", "--lr", "-1e-3"],
        "out is a file": ["train", "--problem", "harmonic", "--out", blocker],
        "out under a file": ["train", "--problem", "harmonic", "--out", os.path.join(blocker, "sub")],
        "demo plot under a file": ["demo", "--steps", "1", "--plot", os.path.join(blocker, "x.png")],
        "missing --problem": ["train"],
        "unknown command": ["fly"],
        "unknown option": ["problems", "--colour"],
    }


@pytest.mark.parametrize("case", list(_bad_cases("/tmp").keys()) if os.path.isdir("/tmp") else [])
def test_bad_input_exits_2_with_one_line(case, tmp_path, capsys):
    argv = _bad_cases(str(tmp_path))[case]
    assert cli.main(argv) == 2
    cap = capsys.readouterr()
    err = cap.err
    assert err.endswith("\n") and err.count("\n") == 1, repr(err)
    assert "error" in err and "Traceback" not in err
    assert not (tmp_path / "a-file" / "sub").exists()


def test_bad_input_in_a_subprocess_has_no_traceback(tmp_path):
    for argv in (["train", "--problem", "nope"], ["train", "--problem", "harmonic", "--steps", "-3"],
                 ["train", "--problem", "burgers", "--layers", "2,a"]):
        r = _run("-m", "pinncore", *argv, cwd=str(tmp_path))
        assert r.returncode == 2, r
        assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "pinncore-out").exists()


def test_bench_without_compare_script(monkeypatch, capsys):
    monkeypatch.setattr(commands.os.path, "isfile", lambda p: False)
    assert cli.main(["bench"]) == 1
    assert "bench/compare.py" in capsys.readouterr().err


# ------------------------------------------------------------------------------ no matplotlib

def test_cli_without_plot_never_imports_matplotlib(tmp_path):
    code = textwrap.dedent(f"""
        import sys
        import pinncore
        assert "matplotlib" not in sys.modules, "import pinncore"
        from pinncore.cli import main
        assert main(["problems"]) == 0
        assert main(["diagnose", "--problem", "harmonic", "--layers", "1,8,1"]) == 0
        assert main(["train", "--problem", "harmonic", "--steps", "3", "--quiet", "--out", {str(tmp_path)!r}]) == 0
        assert main(["demo", "--steps", "2", "--lm", "2"]) == 0
        assert main(["train", "--problem", "nope"]) == 2
        bad = sorted(m for m in sys.modules if m.split(".")[0] in ("matplotlib", "pylab"))
        assert not bad, bad
        print("OK")
    """)
    r = _run("-c", code, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert r.stdout.rstrip().endswith("OK")


def test_plot_without_matplotlib_is_a_usage_error(tmp_path, monkeypatch, capsys):
    real = commands.importlib.util.find_spec
    monkeypatch.setattr(commands.importlib.util, "find_spec", lambda n, *a: None if n == "matplotlib" else real(n, *a))
    assert cli.main(["demo", "--plot", str(tmp_path / "d.png")]) == 2
    assert cli.main(["train", "--problem", "harmonic", "--plot", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all("matplotlib" in line for line in err)


# ------------------------------------------------------------------------------ registries, --version, --resume

def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        cli._build_parser().parse_args(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"pinncore {pinncore.__version__}"
    assert cli.main(["--version"]) == 0


def test_help_reads_the_registries(capsys):
    """Every registered scheme and optimizer is in `train --help` and `sweep --help`, and the
    default scheme named there is pc.train's (Balanced), not a restated one."""
    from pinncore import registry, weighting
    for cmd in ("train", "sweep"):
        assert cli.main([cmd, "--help"]) == 0
        text = " ".join(capsys.readouterr().out.split())
        for name in registry.schemes.all_names() + registry.optimizers.names():
            assert name in text, (cmd, name)
        assert f"default, {weighting.default().name}" in text
    assert cli.main(["diagnose", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for helptext in ("a library problem", "layer widths", "network seed", "weights λ to diagnose with"):
        assert helptext in text   # every diagnose option has its help text


def test_train_optimizer_alone_runs_its_own_default(tmp_path, capsys):
    """--optimizer lm without --steps runs LM's default_iterations (200), not Adam's 2000."""
    from pinncore import phases
    out = tmp_path / "lm"
    rc = cli.main(["train", "--problem", "harmonic", "--optimizer", "lm", "--layers", "1,4,1", "--weighting", "fixed",
                   "--quiet", "--out", str(out)])
    assert rc == 0 and f"{phases.default_iterations('lm')} LM iterations" in capsys.readouterr().out
    assert load(str(out / "state.pcs"))["step"] <= phases.default_iterations("lm")


def test_train_resume_continues_the_saved_run(tmp_path, capsys):
    """train --resume DIR/state.pcs continues: 5 + 5 steps equal 10 steps in one run."""
    one, two, ten = tmp_path / "one", tmp_path / "two", tmp_path / "ten"
    base = ["train", "--problem", "harmonic", "--weights", "ic=100", "--layers", "1,8,1", "--quiet",
            "--log-every", "5"]
    assert cli.main([*base, "--steps", "5", "--out", str(one)]) == 0
    assert cli.main(["train", "--problem", "harmonic", "--steps", "5", "--quiet", "--log-every", "5",
                     "--resume", str(one / "state.pcs"), "--out", str(two)]) == 0
    assert "resuming" in capsys.readouterr().out
    assert cli.main([*base, "--steps", "10", "--out", str(ten)]) == 0
    a, b = load(str(two / "state.pcs")), load(str(ten / "state.pcs"))
    assert a["step"] == b["step"] == 10
    np.testing.assert_array_equal(a["params"], b["params"])
    assert cli.main(["train", "--problem", "harmonic", "--resume", str(tmp_path / "missing.pcs")]) == 2
    assert "--resume" in capsys.readouterr().err
    assert cli.main(["train", "--problem", "burgers", "--resume", str(one / "state.pcs"),
                     "--out", str(tmp_path / "b")]) == 2
    assert not (tmp_path / "b").exists()


def test_import_from_a_source_tree_without_the_kernel_explains_itself(tmp_path):
    """`import pinncore` from a source tree with no compiled _core: the one explanation, not a
    chained "circular import" traceback above it."""
    import shutil
    src = os.path.dirname(os.path.abspath(pinncore.__file__))
    shutil.copytree(src, tmp_path / "pinncore", ignore=shutil.ignore_patterns("_core*", "__pycache__"))
    # (an editable install's import hook would find the developer's _core: leave it out)
    code = "import sys; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f)]; import pinncore"
    r = subprocess.run([sys.executable, "-c", code], cwd=str(tmp_path), capture_output=True, text=True,
                       env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, timeout=120)
    assert r.returncode == 1
    assert "is not built here" in r.stderr and "circular import" not in r.stderr
    assert "During handling" not in r.stderr and "direct cause" not in r.stderr, r.stderr


def test_solve_prints_its_choices_and_writes_the_state(tmp_path, capsys):
    assert cli.main(["solve", "--problem", "harmonic", "--time", "30", "--tol", "1e-4", "--quiet",
                     "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "method: Levenberg" in out and "converged" in out
    assert (tmp_path / "state.pcs").exists() and (tmp_path / "history.csv").exists()
    assert cli.main(["solve", "--problem", "harmonic", "--time", "-1"]) == 2
