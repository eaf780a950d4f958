"""The ``pinncore`` command (console script and ``python -m pinncore``).

Subcommands::

    pinncore demo      [--steps N] [--lbfgs N] [--lm N] [--seed S] [--plot FILE.png]
    pinncore train     --problem NAME [--weighting SCHEME] [--weights TERM=λ,...] [--steps N]
                       [--optimizer NAME] [--lbfgs N] [--lm N] [--phases OPT:N,...] [--lr X] [--resume STATE.pcs]
                       [--layers 1,50,50,50,1] [--seed S] [--out DIR] [--plot]
    pinncore diagnose  --problem NAME [--layers ...] [--seed S]
    pinncore problems
    pinncore bench     [args for bench/compare.py]
    pinncore sweep     --problem NAME --grid ic=1e-3:1e5:17 [--grid ...] [--seeds 3] [--steps N]
                       [--optimizer NAME] [--weighting SCHEME] [--workers N] [--scheduler ADDRESS]
                       [--out DIR] [--plot]
    pinncore serve     [--port P] [--host H] [--open] [--max-fits N]   (needs pinncore[web])

Bad input (unknown problem or scheme, malformed --layers, negative --steps, an unwritable
--out, layers that do not fit the problem) gives a one-line error on stderr and exit status 2.
matplotlib is imported only for ``--plot`` (through ``pinncore.plotting``). The choices and help
of ``--weighting``, ``--optimizer`` and ``--problem`` are read from ``pinncore.registry``; the demo
experiment is ``pinncore.demo``, the verdict ``pinncore.verdict``: this module parses arguments
and calls the command bodies in ``pinncore.commands``.
"""
from __future__ import annotations

import argparse
import math
import sys

from . import registry
from .commands import COMMANDS, UsageError
from .demo import COLUMNS, DEMO_LAMBDAS, DEMO_LAYERS, run_demo  # noqa: F401 - the former home of the demo
from .demo import Progress as _Progress  # noqa: F401
from .demo import fmt_lam as _fmt_lam  # noqa: F401
from .verdict import verdict  # noqa: F401 - the former home of the verdict

__all__ = ["main", "DEMO_LAMBDAS", "run_demo", "verdict"]


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


def _phases(s):
    """``adam:2000,bfgs:5000`` -> [("adam", 2000), ("bfgs", 5000)]; a name without a count runs
    its optimizer's default iterations. Names come from the optimizer registry."""
    out = []
    for item in s.split(","):
        name, colon, count = (p.strip() for p in item.partition(":"))
        if name not in registry.optimizers:
            raise argparse.ArgumentTypeError(f"unknown optimizer {name!r} in {s!r}; choose from "
                                             f"{', '.join(registry.optimizers.names())}")
        if colon and not (count.isascii() and count.isdigit() and len(count) <= 9):
            raise argparse.ArgumentTypeError(f"must look like adam:2000,bfgs:5000 (counts are integers >= 0), got {s!r}")
        out.append((name, int(count) if colon else None))
    return out


def _build_parser():
    from . import __version__
    p = _Parser(prog="pinncore", description="pinncore: a fast CPU engine for physics-informed neural networks.")
    p.add_argument("--version", action="version", version=f"pinncore {__version__}")
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
    t.add_argument("--weighting", default=None, metavar="SCHEME", help=_scheme_help())
    t.add_argument("--weights", type=_weights, default=None, metavar="TERM=λ,...",
                   help="fixed weights, e.g. ic=100 (implies --weighting fixed)")
    t.add_argument("--steps", type=_nonneg_int, default=None, help=_steps_help())
    t.add_argument("--lbfgs", type=_nonneg_int, default=0, help="L-BFGS iterations after Adam (default 0)")
    t.add_argument("--optimizer", choices=registry.optimizers.names(), default="adam", metavar="NAME",
                   help=_optimizer_help())
    t.add_argument("--lm", type=_nonneg_int, default=0,
                   help="Levenberg–Marquardt iterations after the first phase and L-BFGS (default 0)")
    t.add_argument("--phases", type=_phases, default=None, metavar="OPT:N,...",
                   help="the whole schedule, e.g. adam:2000,bfgs:5000 (optimizers: "
                        f"{', '.join(registry.optimizers.names())}; replaces --optimizer/--steps/--lbfgs/--lm)")
    t.add_argument("--lr", type=_pos_float, default=1e-3, help="Adam learning rate (default 1e-3)")
    t.add_argument("--layers", type=_layers, default=None, metavar="1,50,50,50,1",
                   help="layer widths (default: inputs,50,50,50,outputs)")
    t.add_argument("--seed", type=_nonneg_int, default=0, help="network seed (default 0)")
    t.add_argument("--log-every", type=_nonneg_int, default=100, help="history row every N steps (default 100)")
    t.add_argument("--out", default=None, metavar="DIR", help="output directory (default ./pinncore-out/<problem>)")
    t.add_argument("--plot", action="store_true", help="also write DIR/plot.png (needs matplotlib)")
    t.add_argument("--quiet", action="store_true", help="no per-log-step lines")
    t.add_argument("--resume", default=None, metavar="STATE.pcs",
                   help="continue from a saved state (e.g. DIR/state.pcs of an earlier run): its network, "
                        "optimizer state, weights and history; --steps more iterations")

    g = sub.add_parser("diagnose", help="gradient norms, NTK traces and advice at initialisation",
                       description="Per-term gradient norms and NTK traces at initialisation, their ratios, "
                                   "the verdict and the advice.")
    g.add_argument("--problem", required=True, metavar="NAME", help="a library problem (see 'pinncore problems')")
    g.add_argument("--layers", type=_layers, default=None, metavar="1,50,50,50,1",
                   help="layer widths (default: inputs,50,50,50,outputs)")
    g.add_argument("--seed", type=_nonneg_int, default=0, help="network seed (default 0)")
    g.add_argument("--weights", type=_weights, default=None, metavar="TERM=λ,...",
                   help="weights λ to diagnose with, e.g. ic=100 (default: all 1)")

    sub.add_parser("problems", help="list the problem library")
    _add_sweep_parser(sub)
    _add_solve_parser(sub)

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


def _scheme_help():
    from . import weighting
    names = ", ".join(f"{s.name} ({', '.join(s.aliases)})" if s.aliases else s.name for s in registry.schemes.specs())
    return f"one of {names} (default: pc.train's default, {weighting.default().name})"


def _optimizer_help():
    from . import phases
    names = ", ".join(f"{n} ({phases.default_iterations(n)})" for n in registry.optimizers.names())
    return f"first phase: one of {names} — in brackets its default iterations (default adam)"


def _steps_help():
    from . import phases
    own = ", ".join(f"{n} {phases.default_iterations(n)}" for n in registry.optimizers.names())
    return f"iterations of the first phase (default: the optimizer's own: {own})"


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
    s.add_argument("--steps", type=_nonneg_int, default=None, help=_steps_help().replace("first phase", "fit"))
    s.add_argument("--optimizer", choices=registry.optimizers.names(), default="adam", metavar="NAME",
                   help=f"one of {', '.join(registry.optimizers.names())} (default adam)")
    s.add_argument("--weighting", default=None, metavar="SCHEME",
                   help="the scheme when the grid has none: " + _scheme_help().replace(
                       "(default: pc.train's default", "(default: fixed if the grid sets λs, else pc.train's default"))
    s.add_argument("--lr", type=_pos_float, default=None, help="Adam learning rate (default 1e-3)")
    s.add_argument("--layers", type=_layers, default=None, metavar="1,50,50,50,1")
    s.add_argument("--workers", type=_nonneg_int, default=None, help="local processes (default: the available cores)")
    s.add_argument("--scheduler", default=None, metavar="ADDRESS", help="run on this Dask scheduler (tcp://host:port)")
    s.add_argument("--out", default=None, metavar="DIR", help="output directory (default ./pinncore-out/sweep-<problem>)")
    s.add_argument("--plot", action="store_true", help="also write DIR/sweep.png (needs matplotlib)")


def _add_solve_parser(sub):
    s = sub.add_parser("solve", help="solve a library problem as accurately as a time limit allows (pc.solve)",
                       description="pc.solve: chooses the network, the second-order method and the resampling, "
                                   "runs until --tol, stagnation or --time seconds; prints what it chose and why, "
                                   "and writes DIR/state.pcs and DIR/history.csv.")
    s.add_argument("--problem", required=True, metavar="NAME", help="a library problem (see 'pinncore problems')")
    s.add_argument("--time", type=_pos_float, default=300.0, metavar="SECONDS", help="time limit (default 300)")
    s.add_argument("--tol", type=_pos_float, default=None, help="stop at this rel-L2 (or loss, without an exact solution)")
    s.add_argument("--seed", type=_nonneg_int, default=0, help="network seed (default 0)")
    s.add_argument("--out", default=None, metavar="DIR", help="output directory (default ./pinncore-out/<problem>)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")


def main(argv=None) -> int:
    """Entry point of the ``pinncore`` command; returns the exit status.

    >>> main(["--version"])  # doctest: +ELLIPSIS
    pinncore ...
    0
    """
    parser = _build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse: --help (0) or a usage error (2)
        return int(e.code or 0) if not isinstance(e.code, str) else 2
    if args.command is None:
        parser.print_help()
        return 2
    cmd = COMMANDS[args.command]
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
