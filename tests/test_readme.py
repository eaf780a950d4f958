"""Every ```python block of README.md runs (in order, sharing one namespace, in a temporary directory),
and the README keeps the two commands CI and users rely on."""
from __future__ import annotations

import os
import re

import pytest

from pinncore import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")


def _text():
    with open(README, encoding="utf-8") as f:
        return f.read()


def _blocks():
    return re.findall(r"^```python\n(.*?)^```", _text(), flags=re.S | re.M)


def test_readme_has_python_blocks():
    assert len(_blocks()) >= 3


def test_readme_opens_with_the_two_commands():
    text = _text()
    head = text[:text.index("## ")]
    assert "pip install . && pinncore demo" in head
    assert "pip install .[test] && pytest -q" in head


def test_readme_demo_table_has_every_run():
    text = _text()
    methods = [f"Fixed λ_ic={cli._fmt_lam(lam)}" for lam in cli.DEMO_LAMBDAS] + [
        "GradNorm", "NTK ", "SelfAdaptive", "ReLoBRaLo", "hard constraint", "NTK + L-BFGS"]
    table = text[text.index("## The demo"):text.index("## The command line")]
    header = "  ".join(f"{c:{a}{w}}" for c, w, a in cli.COLUMNS).rstrip()
    assert header in table
    for m in methods:
        assert "\n" + m in table, m


def test_readme_python_blocks_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    ns = {"__name__": "__readme__"}
    for i, code in enumerate(_blocks()):
        try:
            exec(compile(code, f"README.md[python block {i + 1}]", "exec"), ns)
        except Exception as e:  # pragma: no cover - the message names the block
            pytest.fail(f"README python block {i + 1} failed: {type(e).__name__}: {e}")
