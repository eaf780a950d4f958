"""The bodies of the ``pinncore`` subcommands (pinncore.cli parses the arguments and calls them
through ``COMMANDS``): demo, train, diagnose, problems, bench, sweep, serve, solve. Each takes the
parsed ``argparse.Namespace`` and returns the exit status; bad input raises ``UsageError``, which
the command line reports as one line on stderr with exit status 2.

>>> COMMANDS["problems"](None)  # doctest: +ELLIPSIS
harmonic ...
0
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile

from . import registry
from .demo import run_demo
from .demo import train_with_warnings as _train
from .verdict import verdict

__all__ = ["COMMANDS", "UsageError"]


class UsageError(Exception):
    """Bad command-line input: reported as one line on stderr, exit status 2."""


# ---------------------------------------------------------------------------------- helpers

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


def _check_out(path, create=True):
    """Check that ``path`` (a directory) can be written, and create it with ``create``; UsageError
    otherwise. Without ``create`` nothing is made: a missing folder only needs a writable parent
    (a command whose other arguments are wrong then leaves no empty output folder behind)."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"--out {path!r} exists and is not a directory")
    if not create and not os.path.exists(path):
        parent = os.path.dirname(os.path.abspath(path))
        while not os.path.exists(parent):
            parent = os.path.dirname(parent)
        if not (os.path.isdir(parent) and os.access(parent, os.W_OK | os.X_OK)):
            raise UsageError(f"cannot write to --out {path!r}: {parent!r} is not a writable folder")
        return
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".pinncore-write-test-"):
            pass
    except OSError as e:
        raise UsageError(f"cannot write to --out {path!r}: {e.strerror or e}") from None


def _need_matplotlib():
    if importlib.util.find_spec("matplotlib") is None:
        raise UsageError("--plot needs matplotlib: pip install 'pinncore[plot]' (or matplotlib)")


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

def _resume_state(path, problem):
    """The saved state at ``path`` (``--resume``), checked against the problem; UsageError otherwise."""
    from .state import load_state
    if not os.path.isfile(path):
        raise UsageError(f"--resume {path!r}: no such file (give the state.pcs an earlier 'pinncore train' wrote)")
    try:
        state = load_state(path)
    except (ValueError, OSError) as e:
        raise UsageError(f"--resume {path!r}: {e}") from None
    if list(state.get("terms", [])) != list(problem.term_names):
        raise UsageError(f"--resume {path!r}: the state has terms {state.get('terms')}, the problem "
                         f"{problem.term_names}")
    return state


def _cmd_train(args):
    from . import phases
    problem = _problem(args.problem)
    state = _resume_state(args.resume, problem) if args.resume else None
    net = _net(problem, args.layers, args.seed) if state is None or args.layers else None
    # Resuming without --weighting/--weights keeps the saved scheme and its settings.
    scheme = None if state is not None and args.weighting is None and args.weights is None else \
        _scheme(args.weighting, args.weights, problem)
    if args.log_every < 1:
        raise UsageError("--log-every must be >= 1")
    out = args.out if args.out is not None else os.path.join("pinncore-out", args.problem)
    if args.plot:
        _need_matplotlib()
    _check_out(out)

    if args.phases is not None and (args.steps is not None or args.lbfgs or args.lm or args.optimizer != "adam"):
        raise UsageError("--phases gives the whole schedule: do not combine it with --optimizer, --steps, --lbfgs or --lm")
    plan = phases.build(phases=args.phases) if args.phases is not None else \
        phases.build(args.optimizer, args.steps, args.lbfgs, args.lm)
    what = " + ".join(f"{n} {registry.optimizers[o].factory.label or o.upper()}" for o, n in plan)
    layers = list(net.layers) if net is not None else list(state["layers"])
    resumed = "" if state is None else f", resuming {args.resume} at step {state['step']}"
    print(f"pinncore train: {args.problem} {problem.term_names}, net {layers} seed {args.seed}, "
          f"{scheme if scheme is not None else 'the saved scheme'!r}, {what} iterations"
          f"{f' (Adam lr {args.lr:g})' if plan[0][0] == 'adam' else ''}"
          f"{resumed}", flush=True)
    result, caught = _train(problem, net, weighting=scheme, lr=args.lr, phases=plan, seed=args.seed,
                            log_every=args.log_every, verbose=not args.quiet, echo=True, resume=state)
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
    from .phases import default_iterations
    from .sweep import check, parse_axis, sweep
    try:
        grid = dict(parse_axis(item) for item in args.grid)
    except ValueError as e:
        raise UsageError(str(e)) from None
    seeds = _seeds(args.seeds)
    out = args.out if args.out is not None else os.path.join("pinncore-out", f"sweep-{args.problem.replace(':', '-')}")
    if args.plot:
        _need_matplotlib()
    _check_out(out, create=False)
    kw = {} if args.lr is None else {"lr": args.lr}
    steps = args.steps if args.steps is not None else default_iterations(args.optimizer)
    try:   # every argument checked before anything is printed, connected to or created
        check(args.problem, grid, seeds=seeds, weighting=args.weighting, optimizer=args.optimizer, steps=steps,
              layers=args.layers, **kw)
    except (ValueError, TypeError) as e:
        raise UsageError(str(e)) from None
    client = _dask_client(args.scheduler) if args.scheduler else None
    where = f"Dask scheduler {args.scheduler}" if client else f"{args.workers or 'all'} local worker(s)"
    print(f"pinncore sweep: {args.problem}, grid {', '.join(f'{k} ({len(v)})' for k, v in grid.items())} x "
          f"{len(seeds)} seed(s), {steps} {args.optimizer} steps per fit, on {where}", flush=True)
    try:
        res = sweep(args.problem, grid, seeds=seeds, weighting=args.weighting, optimizer=args.optimizer,
                    steps=steps, layers=args.layers, client=client, workers=args.workers or None, **kw)
    except (ValueError, TypeError) as e:
        raise UsageError(str(e)) from None
    finally:
        if client is not None:
            client.close()
    _check_out(out)
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
    cols = [*res.keys, "seed", "status", "rel_l2", "verdict", "grad_ratio0", "wall_time"]
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


def _cmd_solve(args):
    from .solve import solve
    problem = _problem(args.problem)
    out = args.out if args.out is not None else os.path.join("pinncore-out", args.problem)
    _check_out(out)
    print(f"pinncore solve: {args.problem} {problem.term_names}, time limit {args.time:g} s", flush=True)
    result = solve(problem, time_limit=args.time, tol=args.tol, progress=not args.quiet, seed=args.seed)
    for key in ("network_reason", "method_reason", "resampling", "warmup"):
        print(f"  {key.replace('_reason', '')}: {result.record[key]}")
    for ph in result.record["phases"]:
        print(f"  {ph['optimizer']}: {ph['iterations']} iterations, {ph['ended']}")
    err = "n/a" if result.rel_l2 is None else f"{result.rel_l2:.3e}"
    print(f"{result.status} at step {result.step} in {result.record['wall_time']:.1f} s: rel-L2 {err}")
    paths = [os.path.join(out, "history.csv"), os.path.join(out, "state.pcs")]
    result.history.to_csv(paths[0])
    result.save(paths[1])
    print("wrote " + ", ".join(paths))
    return 0 if result.status in ("completed", "converged", "stopped") else 1


COMMANDS = {"demo": _cmd_demo, "train": _cmd_train, "diagnose": _cmd_diagnose, "problems": _cmd_problems,
            "bench": _cmd_bench, "sweep": _cmd_sweep, "serve": _cmd_serve, "solve": _cmd_solve}
