"""pinncore.plotting renders the demo and train figures (Agg canvas) when matplotlib is installed."""
from __future__ import annotations

import io

import pytest

pytest.importorskip("matplotlib")

from pinncore import cli, plotting, problems  # noqa: E402
from pinncore.network import MLP  # noqa: E402
from pinncore.trainer import train  # noqa: E402
from pinncore.weighting import NTK, Fixed  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


def _is_png(path):
    data = path.read_bytes()
    return len(data) > 1000 and data[:8] == PNG


def test_demo_figure(tmp_path):
    recs = cli.run_demo(steps=10, lbfgs_steps=3, out=io.StringIO(), progress=cli._Progress(io.StringIO()), lm_steps=2)
    assert [r["kind"] for r in recs][-4:] == ["lm", "lm", "lm", "adam+lm"]
    path = tmp_path / "demo.png"
    assert plotting.demo_figure(recs, str(path)) == str(path)
    assert _is_png(path)


def test_demo_plot_option(tmp_path, capsys):
    path = tmp_path / "sub" / "demo.png"
    assert cli.main(["demo", "--steps", "5", "--lm", "2", "--plot", str(path)]) == 0
    assert _is_png(path) and f"wrote {path}" in capsys.readouterr().out


@pytest.mark.parametrize("name,kw", [("harmonic", {"hard_constraint": True}), ("poisson1d", {}),
                                     ("heat1d", {"n_collocation": 64}), ("helmholtz2d", {"n_collocation": 64})])
def test_train_figure(name, kw, tmp_path):
    problem = problems.get(name, **kw)
    d, m = len(problem.inputs), len(problem.outputs)
    result = train(problem, MLP([d, 8, 8, m], seed=0), weighting=NTK(every=2), steps=4, lbfgs_steps=2,
                   log_every=1, warn=False)
    path = tmp_path / f"{name}.png"
    plotting.train_figure(problem, result, str(path))
    assert _is_png(path)


def test_train_figure_two_outputs_without_exact(tmp_path):
    import numpy as np

    from pinncore.problem import Problem, Term
    t = np.linspace(0, 1, 20)[:, None]
    problem = Problem(inputs=["t"], outputs=["u", "v"], domain={"t": (0.0, 1.0)},
                      terms={"pde": Term(points=t, residual=lambda x, u, v: [u.t - v, v.t + u]),
                             "ic": Term(points=[[0.0]], residual=lambda x, u, v: [u - 1.0, v])})
    result = train(problem, MLP([1, 8, 2]), weighting=Fixed(), steps=3, warn=False)
    path = tmp_path / "uv.png"
    plotting.train_figure(problem, result, str(path))
    assert _is_png(path)


def test_train_plot_option(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["train", "--problem", "wave1d", "--steps", "2", "--quiet", "--plot", "--out", str(out)]) == 0
    assert _is_png(out / "plot.png")
    assert "plot.png" in capsys.readouterr().out
