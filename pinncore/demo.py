"""The demo experiment: the loss-balance crisis and its cures on the harmonic oscillator.

``run_demo`` trains the harmonic IVP u'' + (2π)² u = 0, u(0) = 1, u'(0) = 0 with a sweep of fixed
IC weights (``DEMO_LAMBDAS``), the four published adaptive schemes with their defaults, a hard
constraint, NTK + L-BFGS and (optionally) Levenberg–Marquardt, and prints one table row per run
(``COLUMNS``) with its verdict (``pinncore.verdict``). ``pinncore demo`` calls it; the README's
table is its output (tests/test_readme.py checks the rows' shape).

>>> import io
>>> recs = run_demo(steps=5, lbfgs_steps=2, out=io.StringIO(), progress=Progress(io.StringIO()))
>>> recs[0]["method"], recs[0]["verdict"] in VERDICTS
('Fixed λ_ic=1e-3', True)
"""
from __future__ import annotations

import math
import sys
import time
import warnings

import numpy as np

from . import registry
from .verdict import CLEAN, VERDICTS, WRONG, verdict  # noqa: F401 - VERDICTS: the doctest

__all__ = ["DEMO_LAMBDAS", "DEMO_LAYERS", "COLUMNS", "run_demo", "fmt_lam", "Progress", "train_with_warnings",
           "warning_line"]

DEMO_LAMBDAS = [1e-3, 1e-2, 1e-1, 1.0, 1e1, 1e2, 1e3, 1e4, 1e5]
DEMO_LAYERS = [1, 50, 50, 50, 1]


def warning_line(w):
    """One line naming a caught warning: ``Category: message``."""
    return f"{w.category.__name__}: {w.message}"


def train_with_warnings(problem, net, echo=False, **kw):
    """pc.train with warnings captured: (result, [warnings]); with ``echo`` each warning is also
    printed to stderr when it happens (between the verbose lines), not after the run."""
    from .trainer import train
    caught = []

    def show(message, category, filename, lineno, file=None, line=None):
        w = warnings.WarningMessage(message, category, filename, lineno, file, line)
        caught.append(w)
        if echo:
            print(f"warning: {warning_line(w)}", file=sys.stderr, flush=True)

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        result = train(problem, net, **kw)
    return result, caught


class Progress:
    """A live line on stderr when it is a terminal; plain lines otherwise."""

    def __init__(self, stream=None):
        self.stream = stream if stream is not None else sys.stderr
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        self._shown = False

    def update(self, text):
        if self.live:
            self.stream.write("\r\033[K" + text)
            self.stream.flush()
            self._shown = True

    def start(self, text):
        if self.live:
            self.update(text)
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def clear(self):
        if self.live and self._shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._shown = False



def fmt_lam(v):
    """λ as the table shows it: 1e2, 0.5, ...

    >>> fmt_lam(100.0), fmt_lam(0.5), fmt_lam(None)
    ('1e2', '0.5', '-')
    """
    if v is None:
        return "-"
    if v == 0:
        return "0"
    e = math.log10(abs(v))
    if abs(e - round(e)) < 1e-9:
        return f"1e{int(round(e))}" if v > 0 else f"-1e{int(round(e))}"
    return f"{v:.3g}"


def _demo_runs(steps, lbfgs_steps, lm_steps=0):
    from . import weighting as W
    runs = [dict(method=f"Fixed λ_ic={fmt_lam(lam)}", kind="fixed", lam=lam, weighting=W.Fixed({"ic": lam}),
                 hard=False, lbfgs=0) for lam in DEMO_LAMBDAS]
    # The four published schemes the course discusses, with their defaults (the README's table).
    for name in ("gradnorm", "ntk", "selfadaptive", "relobralo"):
        spec = registry.schemes[name]
        runs.append(dict(method=spec.factory.__name__, kind="adaptive", lam=None, weighting=spec.factory(),
                         hard=False, lbfgs=0))
    runs.append(dict(method="hard constraint", kind="hard", lam=None, weighting=W.Fixed(), hard=True, lbfgs=0))
    runs.append(dict(method=f"NTK + L-BFGS {lbfgs_steps}", kind="lbfgs", lam=None, weighting=W.NTK(), hard=False,
                     lbfgs=lbfgs_steps))
    if lm_steps:
        # Levenberg–Marquardt from random initialisation at three fixed λ_ic, and after Adam.
        runs += [dict(method=f"LM {lm_steps} λ_ic={fmt_lam(lam)}", kind="lm", lam=lam,
                      weighting=W.Fixed({"ic": lam}), hard=False, lbfgs=0, optimizer="lm", steps=lm_steps)
                 for lam in (1.0, 1e2, 1e5)]
        runs.append(dict(method=f"NTK + LM {lm_steps}", kind="adam+lm", lam=None, weighting=W.NTK(), hard=False,
                         lbfgs=0, lm=lm_steps))
    return runs


COLUMNS = [("method", 20, "<"), ("λ_pde", 7, ">"), ("λ_ic", 8, ">"), ("L_pde", 9, ">"), ("L_ic", 9, ">"),
           ("ratio@0", 9, ">"), ("rel-L2", 9, ">"), ("verdict", 22, "<"), ("time", 6, ">")]


def _fmt_w(v):
    return f"{v:.3g}".replace("e+0", "e").replace("e-0", "e-").replace("e+", "e")


def _row(cells):
    return "  ".join(f"{c:{a}{w}}" for c, (_, w, a) in zip(cells, COLUMNS)).rstrip()


def run_demo(steps=2000, lbfgs_steps=None, seed=0, lr=1e-3, out=None, progress=None, lm_steps=0):
    """Run the demo, printing the table to ``out`` (default stdout); return the run records
    (dicts with method, kind, lam, weights, losses, ratio0, rel_l2, verdict, wall_time, history,
    t, u) for ``pinncore.plotting.demo_figure``."""
    from . import problems

    out = out if out is not None else sys.stdout
    progress = progress if progress is not None else Progress()
    lbfgs_steps = steps if lbfgs_steps is None else lbfgs_steps
    soft, hard = problems.harmonic(), problems.harmonic(hard_constraint=True)
    runs = _demo_runs(steps, lbfgs_steps, lm_steps)
    header = _demo_header(out, steps, seed, lr)
    records, total0 = [], time.perf_counter()
    for i, run in enumerate(runs):
        label = f"[{i + 1:>2}/{len(runs)}] {run['method']}"
        progress.start(label)
        rec = _demo_fit(run, hard if run["hard"] else soft, steps, seed, lr, progress, label)
        progress.clear()
        records.append(rec)
        print(_row(_demo_cells(rec)), file=out)
        out.flush()
    print("-" * len(header), file=out)
    _demo_footer(records, steps, out)
    print(f"{len(records)} runs in {time.perf_counter() - total0:.1f} s", file=out)
    out.flush()
    return records


def _demo_header(out, steps, seed, lr):
    print(f"pinncore demo: harmonic IVP u'' + (2π)² u = 0, u(0) = 1, u'(0) = 0 on [0, 1]; exact u = cos(2πt)", file=out)
    print(f"network {DEMO_LAYERS} (tanh, seed {seed}), Adam lr {lr:g}, {steps} steps per run", file=out)
    print("ratio@0 = λ_pde‖∇L_pde‖ / λ_ic‖∇L_ic‖ at step 0 (weighted, with the scheme's step-0 weights); "
          "L_pde, L_ic unweighted at the end", file=out)
    print("λ = final weights (SelfAdaptive: mean per-point weight); hard constraint: u = 1 + t² n has no IC term",
          file=out)
    print(f"verdict: clean if rel-L2 < {CLEAN:.0%}, wrong steady state if >= {WRONG:.0%} with the loss settled "
          f"(undertrained if it is still falling), else partial; "
          "! = LossBalanceWarning at step 0", file=out)
    print(file=out)
    header = _row([c for c, _, _ in COLUMNS])
    print(header, file=out)
    print("-" * len(header), file=out)
    out.flush()
    return header


def _demo_fit(run, problem, steps, seed, lr, progress, label):
    """Train one demo run and return its record."""
    from .network import MLP
    n_total = run.get("steps", steps) + run["lbfgs"] + run.get("lm", 0)

    def cb(step, row):
        progress.update(f"{label}: step {step}/{n_total}  rel-L2 {row.get('rel_l2', float('nan')):.2e}")
        return False

    result, caught = train_with_warnings(problem, MLP(DEMO_LAYERS, seed=seed), weighting=run["weighting"],
                            steps=run.get("steps", steps), optimizer=run.get("optimizer", "adam"), lr=lr,
                            lbfgs_steps=run["lbfgs"], lm_steps=run.get("lm", 0), seed=seed, log_every=100,
                            callback=cb)
    h, terms = result.history, problem.term_names
    ratio = None
    if "ic" in terms:
        num, den = h["pde_weight"][0] * h["pde_grad_norm"][0], h["ic_weight"][0] * h["ic_grad_norm"][0]
        ratio = num / den if den > 0 else math.inf
    t = np.linspace(0.0, 1.0, 201)[:, None]
    return dict(method=run["method"], kind=run["kind"], lam=run["lam"], weights=dict(result.weights),
                losses={k: float(h[f"{k}_loss"][-1]) for k in terms}, ratio0=ratio,
                warned=any(w.category.__name__ == "LossBalanceWarning" for w in caught),
                rel_l2=result.rel_l2, verdict=verdict(result.rel_l2, result.status, result.history),
                wall_time=result.wall_time, status=result.status, history=h, t=t[:, 0].copy(),
                u=problem.predict(result.net, t)[:, 0].copy(), warnings=[warning_line(w) for w in caught])


def _demo_cells(rec):
    ratio, has_ic = rec["ratio0"], "ic" in rec["losses"]
    rstr = "-" if ratio is None else f"{ratio:.2e}" + ("!" if rec["warned"] else " ")
    return [rec["method"], _fmt_w(rec["weights"].get("pde", 1.0)),
            _fmt_w(rec["weights"]["ic"]) if "ic" in rec["weights"] else "-",
            f"{rec['losses']['pde']:.2e}", f"{rec['losses']['ic']:.2e}" if has_ic else "exact",
            rstr, f"{rec['rel_l2']:.2e}" if rec["rel_l2"] is not None else "-", rec["verdict"],
            f"{rec['wall_time']:.2f}s"]


def _demo_footer(records, steps, out):
    zone = [r for r in records if r["kind"] == "fixed" and r["verdict"] == "clean"]
    if zone:
        print(f"Goldilocks zone (fixed λ_ic with rel-L2 < {CLEAN:.0%}): "
              f"{', '.join(fmt_lam(r['lam']) for r in zone)}", file=out)
    else:
        print(f"Goldilocks zone: no fixed λ_ic reached rel-L2 < {CLEAN:.0%} in {steps} steps", file=out)
    lm = [r for r in records if r["kind"] == "lm"]
    if lm:
        cells = [f"λ_ic={fmt_lam(r['lam'])} -> {r['rel_l2']:.1e}" for r in lm]
        print(f"Levenberg–Marquardt from random initialisation: {', '.join(cells)}", file=out)


