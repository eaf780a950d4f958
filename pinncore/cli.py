"""The ``pinncore`` command (console script and ``python -m pinncore``).

Subcommands::

    pinncore demo      [--steps N] [--lbfgs N] [--lm N] [--seed S] [--plot FILE.png]
    pinncore train     --problem NAME [--weighting SCHEME] [--weights TERM=λ,...] [--steps N]
                       [--optimizer adam|lbfgs|lm] [--lbfgs N] [--lm N] [--lr X]
                       [--layers 1,50,50,50,1] [--seed S] [--out DIR] [--plot]
    pinncore diagnose  --problem NAME [--layers ...] [--seed S]
    pinncore problems
    pinncore bench     [args for bench/compare.py]
    pinncore sweep     --problem NAME --grid ic=1e-3:1e5:17 [--grid ...] [--seeds 3] [--steps N]
                       [--optimizer adam] [--weighting SCHEME] [--workers N] [--scheduler ADDRESS]
                       [--out DIR] [--plot]
    pinncore serve     [--port P] [--host H] [--open] [--max-fits N]   (needs pinncore[web])

Bad input (unknown problem or scheme, malformed --layers, negative --steps, an unwritable
--out, layers that do not fit the problem) gives a one-line error on stderr and exit status 2.
matplotlib is imported only for ``--plot`` (through ``pinncore.plotting``).
"""
from __future__ import annotations

import argparse
import importlib.util
import math
import os
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

__all__ = ["main", "DEMO_LAMBDAS", "run_demo", "verdict"]

DEMO_LAMBDAS = [1e-3, 1e-2, 1e-1, 1.0, 1e1, 1e2, 1e3, 1e4, 1e5]
DEMO_LAYERS = [1, 50, 50, 50, 1]
CLEAN, WRONG = 0.05, 0.30


class UsageError(Exception):
    """Bad command-line input: reported as one line on stderr, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error message (no usage block), still exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


# ---------------------------------------------------------------------------------- parsing

def _nonneg_int(s):
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {s!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {s!r}")
    return v


def _pos_float(s):
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {s!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {s!r}")
    return v


def _layers(s):
    parts = [p.strip() for p in s.split(",")]
    try:
        widths = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated positive integers like 1,50,50,50,1, "
                                         f"got {s!r}") from None
    if len(widths) < 2 or any(w < 1 for w in widths):
        raise argparse.ArgumentTypeError(f"must be at least two positive integers like 1,50,50,50,1, got {s!r}")
    return widths


def _weights(s):
    out = {}
    for item in s.split(","):
        name, eq, val = item.partition("=")
        try:
            v = float(val)
        except ValueError:
            v = None
        if not eq or not name.strip() or v is None or not math.isfinite(v) or v < 0:
            raise argparse.ArgumentTypeError(f"must look like ic=100,bc=10 (finite weights >= 0), got {s!r}")
        out[name.strip()] = v
    return out


def _build_parser():
    p = _Parser(prog="pinncore", description="pinncore: a fast CPU engine for physics-informed neural networks.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    d = sub.add_parser("demo", help="the loss-balance crisis and its cures on the harmonic oscillator",
                       description="Train the harmonic IVP u'' + (2π)² u = 0, u(0)=1, u'(0)=0 with a sweep of "
                                   "fixed IC weights, each adaptive scheme, a hard constraint and NTK + L-BFGS; "
                                   "print one table row per run.")
    d.add_argument("--steps", type=_nonneg_int, default=2000, help="Adam steps per run (default 2000)")
    d.add_argument("--lbfgs", type=_nonneg_int, default=None,
                   help="L-BFGS iterations of the NTK + L-BFGS run (default: --steps)")
    d.add_argument("--seed", type=_nonneg_int, default=0, help="network seed (default 0)")
    d.add_argument("--lr", type=_pos_float, default=1e-3, help="Adam learning rate (default 1e-3)")
    d.add_argument("--plot", metavar="FILE.png", default=None, help="write a figure (needs matplotlib)")
    d.add_argument("--lm", type=_nonneg_int, default=200,
                   help="Levenberg–Marquardt iterations of the LM rows (default 200; 0: no LM rows)")

    t = sub.add_parser("train", help="train a library problem and write history, state and plot",
                       description="Train a library problem; write history.csv, history.json and state.pcs "
                                   "(and plot.png with --plot) to --out.")
    t.add_argument("--problem", required=True, metavar="NAME", help="a library problem (see 'pinncore problems')")
    t.add_argument("--weighting", default=None, metavar="SCHEME",
                   help="fixed, gradnorm, ntk, selfadaptive (sa) or relobralo (default: pc.train's default, "
                        "ntk)")
    t.add_argument("--weights", type=_weights, default=None, metavar="TERM=λ,...",
                   help="fixed weights, e.g. ic=100 (implies --weighting fixed)")
    t.add_argument("--steps", type=_nonneg_int, default=2000, help="Adam steps (default 2000)")
    t.add_argument("--lbfgs", type=_nonneg_int, default=0, help="L-BFGS iterations after Adam (default 0)")
    t.add_argument("--optimizer", choices=["adam", "lbfgs", "lm"], default="adam",
                   help="first phase (default adam; lm: --steps counts Levenberg–Marquardt iterations)")
    t.add_argument("--lm", type=_nonneg_int, default=0,
                   help="Levenberg–Marquardt iterations after the first phase and L-BFGS (default 0)")
    t.add_argument("--lr", type=_pos_float, default=1e-3, help="Adam learning rate (default 1e-3)")
    t.add_argument("--layers", type=_layers, default=None, metavar="1,50,50,50,1",
                   help="layer widths (default: inputs,50,50,50,outputs)")
    t.add_argument("--seed", type=_nonneg_int, default=0, help="network seed (default 0)")
    t.add_argument("--log-every", type=_nonneg_int, default=100, help="history row every N steps (default 100)")
    t.add_argument("--out", default=None, metavar="DIR", help="output directory (default ./pinncore-out/<problem>)")
    t.add_argument("--plot", action="store_true", help="also write DIR/plot.png (needs matplotlib)")
    t.add_argument("--quiet", action="store_true", help="no per-log-step lines")

    g = sub.add_parser("diagnose", help="gradient norms, NTK traces and advice at initialisation",
                       description="Per-term gradient norms and NTK traces at initialisation, their ratios, "
                                   "the verdict and the advice.")
    g.add_argument("--problem", required=True, metavar="NAME")
    g.add_argument("--layers", type=_layers, default=None, metavar="1,50,50,50,1")
    g.add_argument("--seed", type=_nonneg_int, default=0)
    g.add_argument("--weights", type=_weights, default=None, metavar="TERM=λ,...")

    sub.add_parser("problems", help="list the problem library")
    _add_sweep_parser(sub)

    b = sub.add_parser("bench", help="run the checkout's bench/compare.py against the installed package",
                       description="Runs bench/compare.py of a source checkout (the current directory or the "
                                   "one given by --repo) against the installed pinncore; the other arguments "
                                   "go to compare.py (see `pinncore bench --repo . -- --help`).")
    b.add_argument("--repo", default=None, metavar="DIR",
                   help="the source checkout holding bench/ (default: the current directory or its parents)")
    b.add_argument("args", nargs=argparse.REMAINDER)

    w = sub.add_parser("serve", help="serve the Loss Weight Tuner web page (needs pinncore[web])",
                       description="Serve the Loss Weight Tuner page and its JSON API on a local address "
                                   "until Ctrl-C. Needs pip install 'pinncore[web]'.")
    w.add_argument("--port", type=_port, default=8765, help="TCP port (default 8765; 0 picks a free one)")
    w.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; anything else warns)")
    w.add_argument("--open", action="store_true", help="open the page in a web browser")
    w.add_argument("--max-fits", type=_max_fits, default=4, metavar="N",
                   help="fits that may run at once, one worker process each (default 4)")
    return p


def _port(s):
    v = _nonneg_int(s)
    if v > 65535:
        raise argparse.ArgumentTypeError(f"must be a port number in [0, 65535], got {s!r}")
    return v


def _max_fits(s):
    v = _nonneg_int(s)
    if not 1 <= v <= 16:
        raise argparse.ArgumentTypeError(f"must be an integer in [1, 16], got {s!r}")
    return v


# ---------------------------------------------------------------------------------- helpers

def verdict(rel_l2, status="completed", history=None):
    """What a relative L2 error says about a run: 'clean' (< 5 %), 'partial', 'wrong steady
    state' (>= 30 % with the loss no longer falling), 'partial (undertrained)' (>= 30 % while the
    loss is still falling: more steps, not other weights), 'stopped early' (a run cut short),
    'diverged'.

    >>> verdict(0.01), verdict(0.5), verdict(0.5, status="cancelled"), verdict(float("nan"))
    ('clean', 'wrong steady state', 'stopped early', 'diverged')
    """
    if rel_l2 is None or not math.isfinite(rel_l2) or status == "diverged":
        return "diverged"
    if rel_l2 < CLEAN:
        return "clean"
    if status in ("stopped", "cancelled", "interrupted"):
        return "stopped early"
    if rel_l2 < WRONG:
        return "partial"
    return "partial (undertrained)" if history is not None and _still_falling(history) else "wrong steady state"


def _still_falling(history, window=0.2, factor=2.0):
    """True when the total loss fell by more than ``factor`` over the last ``window`` of the run's
    logged steps: the run had not settled, so its error says nothing about a steady state."""
    steps, loss = history["step"], history["total_loss"]
    if len(steps) < 3:
        return False
    start = steps[-1] - window * (steps[-1] - steps[0])
    earlier = loss[steps <= start]
    return bool(len(earlier) and np.isfinite(loss[-1]) and earlier[-1] > factor * loss[-1])


def _problem(name):
    from . import problems
    if name not in problems.REGISTRY:
        raise UsageError(f"unknown problem {name!r}; known problems: {', '.join(problems.REGISTRY)}")
    return problems.get(name)


def _net(problem, layers, seed):
    from .network import MLP
    d, m = len(problem.inputs), len(problem.outputs)
    if layers is None:
        layers = [d, 50, 50, 50, m]
    if layers[0] != d or layers[-1] != m:
        raise UsageError(f"--layers {','.join(map(str, layers))} does not fit the problem: it needs {d} input(s) "
                         f"{problem.inputs} and {m} output(s) {problem.outputs}, e.g. "
                         f"{','.join(map(str, [d, 50, 50, 50, m]))}")
    return MLP(layers, seed=seed)


def _scheme(name, weights, problem):
    from . import weighting
    if weights is not None:
        if name is not None and name.lower() != "fixed":
            raise UsageError(f"--weights sets fixed weights; it cannot be combined with --weighting {name}")
        name = "fixed"
    try:
        scheme = weighting.get(name) if name is not None else weighting.default()
        if weights is not None:
            scheme = weighting.Fixed(weights)
        scheme.init(problem)  # validates term names
    except (ValueError, TypeError) as e:
        raise UsageError(str(e)) from None
    return scheme


def _check_out(path):
    """Create ``path`` (a directory) and check it can be written; UsageError otherwise."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"--out {path!r} exists and is not a directory")
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".pinncore-write-test-"):
            pass
    except OSError as e:
        raise UsageError(f"cannot write to --out {path!r}: {e.strerror or e}") from None


def _need_matplotlib():
    if importlib.util.find_spec("matplotlib") is None:
        raise UsageError("--plot needs matplotlib: pip install 'pinncore[plot]' (or matplotlib)")


def _warning_line(w):
    return f"{w.category.__name__}: {w.message}"


def _train(problem, net, echo=False, **kw):
    """pc.train with warnings captured: (result, [warnings]); with ``echo`` each warning is also
    printed to stderr when it happens (between the verbose lines), not after the run."""
    from .trainer import train
    caught = []

    def show(message, category, filename, lineno, file=None, line=None):
        w = warnings.WarningMessage(message, category, filename, lineno, file, line)
        caught.append(w)
        if echo:
            print(f"warning: {_warning_line(w)}", file=sys.stderr, flush=True)

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        result = train(problem, net, **kw)
    return result, caught


class _Progress:
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


# ---------------------------------------------------------------------------------- demo

def _fmt_lam(v):
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
    runs = [dict(method=f"Fixed λ_ic={_fmt_lam(lam)}", kind="fixed", lam=lam, weighting=W.Fixed({"ic": lam}),
                 hard=False, lbfgs=0) for lam in DEMO_LAMBDAS]
    for name, scheme in [("GradNorm", W.GradNorm()), ("NTK", W.NTK()), ("SelfAdaptive", W.SelfAdaptive()),
                         ("ReLoBRaLo", W.ReLoBRaLo())]:
        runs.append(dict(method=name, kind="adaptive", lam=None, weighting=scheme, hard=False, lbfgs=0))
    runs.append(dict(method="hard constraint", kind="hard", lam=None, weighting=W.Fixed(), hard=True, lbfgs=0))
    runs.append(dict(method=f"NTK + L-BFGS {lbfgs_steps}", kind="lbfgs", lam=None, weighting=W.NTK(), hard=False,
                     lbfgs=lbfgs_steps))
    if lm_steps:
        # Levenberg–Marquardt from random initialisation at three fixed λ_ic, and after Adam.
        runs += [dict(method=f"LM {lm_steps} λ_ic={_fmt_lam(lam)}", kind="lm", lam=lam,
                      weighting=W.Fixed({"ic": lam}), hard=False, lbfgs=0, optimizer="lm", steps=lm_steps)
                 for lam in (1.0, 1e2, 1e5)]
        runs.append(dict(method=f"NTK + LM {lm_steps}", kind="adam+lm", lam=None, weighting=W.NTK(), hard=False,
                         lbfgs=0, lm=lm_steps))
    return runs


COLUMNS = [("method", 20, "<"), ("λ_pde", 7, ">"), ("λ_ic", 8, ">"), ("L_pde", 9, ">"), ("L_ic", 9, ">"),
           ("ratio@0", 9, ">"), ("rel-L2", 9, ">"), ("verdict", 18, "<"), ("time", 6, ">")]


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
    progress = progress if progress is not None else _Progress()
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

    result, caught = _train(problem, MLP(DEMO_LAYERS, seed=seed), weighting=run["weighting"],
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
                u=problem.predict(result.net, t)[:, 0].copy(), warnings=[_warning_line(w) for w in caught])


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
              f"{', '.join(_fmt_lam(r['lam']) for r in zone)}", file=out)
    else:
        print(f"Goldilocks zone: no fixed λ_ic reached rel-L2 < {CLEAN:.0%} in {steps} steps", file=out)
    lm = [r for r in records if r["kind"] == "lm"]
    if lm:
        cells = [f"λ_ic={_fmt_lam(r['lam'])} -> {r['rel_l2']:.1e}" for r in lm]
        print(f"Levenberg–Marquardt from random initialisation: {', '.join(cells)}", file=out)


def _cmd_demo(args):
    if args.plot:
        _need_matplotlib()
        _check_out(os.path.dirname(os.path.abspath(args.plot)))
    records = run_demo(steps=args.steps, lbfgs_steps=args.lbfgs, seed=args.seed, lr=args.lr, lm_steps=args.lm)
    if args.plot:
        from . import plotting
        plotting.demo_figure(records, args.plot)
        print(f"wrote {args.plot}")
    return 0


# ---------------------------------------------------------------------------------- train

def _cmd_train(args):
    problem = _problem(args.problem)
    net = _net(problem, args.layers, args.seed)
    scheme = _scheme(args.weighting, args.weights, problem)
    if args.log_every < 1:
        raise UsageError("--log-every must be >= 1")
    out = args.out if args.out is not None else os.path.join("pinncore-out", args.problem)
    if args.plot:
        _need_matplotlib()
    _check_out(out)

    first = {"adam": f"Adam steps (lr {args.lr:g})", "lbfgs": "L-BFGS iterations", "lm": "LM iterations"}
    print(f"pinncore train: {args.problem} {problem.term_names}, net {list(net.layers)} seed {args.seed}, "
          f"{scheme!r}, {args.steps} {first[args.optimizer]} + {args.lbfgs} L-BFGS + {args.lm} LM", flush=True)
    result, caught = _train(problem, net, weighting=scheme, steps=args.steps, lr=args.lr, lbfgs_steps=args.lbfgs,
                            optimizer=args.optimizer, lm_steps=args.lm, seed=args.seed, log_every=args.log_every,
                            verbose=not args.quiet, echo=True)
    paths = [os.path.join(out, "history.csv"), os.path.join(out, "history.json"), os.path.join(out, "state.pcs")]
    result.history.to_csv(paths[0])
    result.history.to_json(paths[1])
    result.save(paths[2])
    if args.plot:
        from . import plotting
        paths.append(os.path.join(out, "plot.png"))
        err = "" if result.rel_l2 is None else f", rel-L2 {result.rel_l2:.2e}"
        plotting.train_figure(problem, result, paths[-1],
                              title=f"{args.problem}, {scheme!r}: {result.status} at step {result.step}{err}")
    err = "n/a" if result.rel_l2 is None else \
        f"{result.rel_l2:.3e} ({verdict(result.rel_l2, result.status, result.history)})"
    weights = ", ".join(f"{k}={v:.3g}" for k, v in result.weights.items())
    print(f"{result.status} at step {result.step} in {result.wall_time:.2f} s: rel-L2 {err}; weights {weights}")
    if result.unknowns:   # the identified coefficients of an inverse problem (pc.Unknown)
        print("unknowns " + ", ".join(f"{k}={v:.8g}" for k, v in result.unknowns.items()))
    if result.message and args.quiet:  # verbose training already printed it
        print(result.message, file=sys.stderr)
    print("wrote " + ", ".join(paths))
    return {"completed": 0, "stopped": 0, "interrupted": 130}.get(result.status, 1)


# ---------------------------------------------------------------------------------- others

def _cmd_diagnose(args):
    from .diagnostics import diagnose
    problem = _problem(args.problem)
    net = _net(problem, args.layers, args.seed)
    if args.weights is not None:
        _scheme(None, args.weights, problem)  # validates the names
    print(f"{args.problem}: net {list(net.layers)} seed {args.seed}, at initialisation")
    print(str(diagnose(problem, net, weights=args.weights)))
    return 0


def _cmd_problems(args):
    from . import problems
    rows = problems.describe()
    width = max(len(n) for n, _ in rows)
    for name, desc in rows:
        print(f"{name:<{width}}  {desc}")
    return 0


def _find_checkout(start):
    """The nearest folder at or above ``start`` that holds bench/compare.py, or None."""
    here = os.path.abspath(start)
    while True:
        if os.path.isfile(os.path.join(here, "bench", "compare.py")):
            return here
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def _cmd_bench(args):
    root = _find_checkout(args.repo or os.getcwd())
    if root is None:
        print("pinncore bench: bench/compare.py is not present here (it lives in the source checkout: run this "
              "from the repository, or pass --repo DIR); nothing to run", file=sys.stderr)
        return 1
    extra = args.args[1:] if args.args[:1] == ["--"] else args.args
    return subprocess.call([sys.executable, os.path.join(root, "bench", "compare.py"), *extra], cwd=root)


# ---------------------------------------------------------------------------------- sweep

def _add_sweep_parser(sub):
    s = sub.add_parser("sweep", help="fit every combination of a grid of weights/settings x seeds (all cores or Dask)",
                       description="One fit per grid combination and seed on every local core (or a Dask cluster "
                                   "with --scheduler); print the best point and the Goldilocks intervals; write "
                                   "sweep.csv and sweep.json (and sweep.png with --plot) to --out.")
    s.add_argument("--problem", required=True, metavar="NAME", help="a library problem or 'package.module:function'")
    s.add_argument("--grid", action="append", required=True, metavar="KEY=SPEC",
                   help="a grid axis: lo:hi:n (n log-spaced values) or a comma list, e.g. ic=1e-3:1e5:17, "
                        "weighting=fixed,ntk, lr=1e-3,3e-3; repeat for more axes")
    s.add_argument("--seeds", default="1", metavar="N|S,S,...", help="a count (seeds 0..N-1) or a list (default 1)")
    s.add_argument("--steps", type=_nonneg_int, default=2000, help="iterations per fit (default 2000)")
    s.add_argument("--optimizer", default="adam", help="adam or lbfgs (default adam)")
    s.add_argument("--weighting", default=None, metavar="SCHEME",
                   help="the scheme when the grid has none (default: fixed if the grid sets λs, else ntk)")
    s.add_argument("--lr", type=_pos_float, default=None, help="Adam learning rate (default 1e-3)")
    s.add_argument("--layers", type=_layers, default=None, metavar="1,50,50,50,1")
    s.add_argument("--workers", type=_nonneg_int, default=None, help="local processes (default: the available cores)")
    s.add_argument("--scheduler", default=None, metavar="ADDRESS", help="run on this Dask scheduler (tcp://host:port)")
    s.add_argument("--out", default=None, metavar="DIR", help="output directory (default ./pinncore-out/sweep-<problem>)")
    s.add_argument("--plot", action="store_true", help="also write DIR/sweep.png (needs matplotlib)")


def _seeds(text):
    try:
        if "," in text:
            seeds = [int(v) for v in text.split(",") if v.strip()]
        else:
            seeds = list(range(int(text)))
    except ValueError:
        seeds = []
    if not seeds or min(seeds) < 0:
        raise UsageError(f"--seeds must be a count like 3 or a list like 0,1,4, got {text!r}")
    return seeds


def _dask_client(address):
    """A dask.distributed Client on ``address``, or a UsageError that says what is wrong."""
    try:
        from distributed import Client
    except ImportError:
        raise UsageError("--scheduler needs dask.distributed: pip install 'pinncore[dask]'") from None
    import socket
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if address.startswith("tcp://") or "://" not in address:
        try:  # fail in seconds, not after the client's connect timeout
            socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
        except (OSError, ValueError) as e:
            raise UsageError(f"cannot reach the Dask scheduler at {address!r}: {e}") from None
    try:
        return Client(address, timeout="20s")
    except (OSError, TimeoutError, ValueError) as e:
        raise UsageError(f"cannot connect to the Dask scheduler at {address!r}: {e}") from None


def _cmd_sweep(args):
    from .sweep import parse_axis, sweep
    try:
        grid = dict(parse_axis(item) for item in args.grid)
    except ValueError as e:
        raise UsageError(str(e)) from None
    seeds = _seeds(args.seeds)
    out = args.out if args.out is not None else os.path.join("pinncore-out", f"sweep-{args.problem.replace(':', '-')}")
    if args.plot:
        _need_matplotlib()
    _check_out(out)
    client = _dask_client(args.scheduler) if args.scheduler else None
    kw = {} if args.lr is None else {"lr": args.lr}
    where = f"Dask scheduler {args.scheduler}" if client else f"{args.workers or 'all'} local worker(s)"
    print(f"pinncore sweep: {args.problem}, grid {', '.join(f'{k} ({len(v)})' for k, v in grid.items())} x "
          f"{len(seeds)} seed(s), {args.steps} {args.optimizer} steps per fit, on {where}", flush=True)
    try:
        res = sweep(args.problem, grid, seeds=seeds, weighting=args.weighting, optimizer=args.optimizer,
                    steps=args.steps, layers=args.layers, client=client, workers=args.workers or None, **kw)
    except (ValueError, TypeError) as e:
        raise UsageError(str(e)) from None
    finally:
        if client is not None:
            client.close()
    if len(res) <= 60:
        print(_sweep_table(res))
    print(res.summary())
    paths = [os.path.join(out, "sweep.csv"), os.path.join(out, "sweep.json")]
    res.to_csv(paths[0])
    res.to_json(paths[1])
    if args.plot:
        paths += _sweep_plots(res, out)
    print("wrote " + ", ".join(paths))
    return 0


def _sweep_table(res):
    cols = [*res.keys, "seed", "status", "rel_l2", "grad_ratio0", "wall_time"]
    rows = [[_fmt_cell(r.get(c)) for c in cols] for r in res.records]
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(cols)]
    lines = ["  ".join(f"{c:>{w}}" for c, w in zip(cols, widths))]
    lines += ["  ".join(f"{v:>{w}}" for v, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def _fmt_cell(v):
    if v is None:
        return "-"
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _sweep_plots(res, out):
    from . import plotting
    paths = []
    try:
        paths.append(plotting.sweep_figure(res, os.path.join(out, "sweep.png")))
    except ValueError as e:  # no numeric axis to plot against
        print(f"no plot: {e}", file=sys.stderr)
    if len(res.lambda_keys) >= 2:
        paths.append(plotting.sweep_heatmap(res, os.path.join(out, "sweep_heatmap.png")))
    return paths


def _cmd_serve(args):
    missing = [m for m in ("starlette", "uvicorn") if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(f"serve needs {' and '.join(missing)}: pip install 'pinncore[web]'")
    from .web.server import serve
    try:
        return serve(host=args.host, port=args.port, open_browser=args.open, max_fits=args.max_fits)
    except OSError as e:
        raise UsageError(f"cannot serve on {args.host}:{args.port}: {e.strerror or e}"
                         f"{' (try --port 0 for a free port)' if e.errno == 98 else ''}") from None


def main(argv=None) -> int:
    """Entry point of the ``pinncore`` command; returns the exit status."""
    parser = _build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse: --help (0) or a usage error (2)
        return int(e.code or 0) if not isinstance(e.code, str) else 2
    if args.command is None:
        parser.print_help()
        return 2
    cmd = {"demo": _cmd_demo, "train": _cmd_train, "diagnose": _cmd_diagnose, "problems": _cmd_problems,
           "bench": _cmd_bench, "sweep": _cmd_sweep, "serve": _cmd_serve}[args.command]
    try:
        return cmd(args)
    except UsageError as e:
        print(f"pinncore {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"pinncore {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
