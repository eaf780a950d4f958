"""Figures for the demo and for ``pinncore train --plot``.

The only pinncore module that uses matplotlib, and only inside its functions (``pip install
'pinncore[plot]'``). Figures are drawn on matplotlib's Agg canvas directly (no pyplot, no
global backend switch), so they work headless and do not disturb an interactive session.

    demo_figure(records, path)          records from pinncore.cli.run_demo
    train_figure(problem, result, path) a TrainResult of pc.train on ``problem``
    sweep_figure(result, path, term)    rel-L2 against one λ of a pc.sweep table, seeds as a band
    sweep_heatmap(result, path, terms)  rel-L2 over two λs of a pc.sweep table
    domain_figure(problem, net, geometry, path)  2-D solutions on a geometry, masked outside
    audit_figure(history, path)         shadow weights of pc.train(..., audit=True) vs the driving ones
"""
from __future__ import annotations

import math

import numpy as np

from .verdict import CLEAN

__all__ = ["demo_figure", "train_figure", "history_axes", "solution_axes", "sweep_figure", "sweep_error_axes",
           "sweep_heatmap", "sweep_heatmap_axes", "domain_figure", "domain_panels", "audit_figure", "audit_axes"]



def _figure(figsize):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:  # pragma: no cover - exercised only without matplotlib
        raise ImportError("plotting needs matplotlib: pip install 'pinncore[plot]'") from e
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path):
    fig.savefig(path, dpi=110, format="png")
    return path


def _positive(a):
    a = np.asarray(a, dtype=np.float64)
    return np.where(a > 0, a, np.nan)


# ------------------------------------------------------------------------------------ demo

def demo_figure(records, path, omega=2 * math.pi):
    """The demo figure: per-term loss histories of the λ_ic sweep, learned u(t) against
    cos(ωt) for a few runs, and rel-L2 against λ_ic with the Goldilocks zone (rel-L2 < 5%)
    shaded. ``records`` are the dicts returned by ``pinncore.cli.run_demo``. Returns ``path``."""
    from matplotlib import colormaps

    fig = _figure((15, 4.6))
    ax_l, ax_u, ax_e = fig.subplots(1, 3)
    sweep = [r for r in records if r["kind"] == "fixed"]
    cmap = colormaps["viridis"]
    for i, r in enumerate(sweep):
        c = cmap(i / max(len(sweep) - 1, 1))
        h = r["history"]
        lab = f"λ_ic={r['lam']:.0e}"
        ax_l.semilogy(h["step"], _positive(h["pde_loss"]), "-", color=c, lw=1.2, label=lab)
        ax_l.semilogy(h["step"], _positive(h["ic_loss"]), "--", color=c, lw=1.2)
    ax_l.set_title("λ_ic sweep: L_pde (solid), L_ic (dashed)")
    ax_l.set_xlabel("step")
    ax_l.set_ylabel("unweighted loss")
    ax_l.legend(fontsize=7, ncol=2)

    t = np.linspace(0.0, 1.0, 401)
    ax_u.plot(t, np.cos(omega * t), "k-", lw=2.5, alpha=0.35, label="cos(ωt) (exact)")
    shown = _pick_solutions(records)
    for r in shown:
        ax_u.plot(r["t"], r["u"], lw=1.3, label=f"{r['method']} ({r['rel_l2']:.1e})")
    ax_u.set_title("learned u(t) (rel-L2 in brackets)")
    ax_u.set_xlabel("t")
    ax_u.set_ylabel("u")
    ax_u.legend(fontsize=7)

    lams = np.array([r["lam"] for r in sweep], dtype=np.float64)
    errs = np.array([r["rel_l2"] for r in sweep], dtype=np.float64)
    ax_e.loglog(lams, errs, "o-", color="C0", label="Fixed λ_ic")
    every = [r["rel_l2"] for r in records if r["rel_l2"] is not None and r["rel_l2"] > 0]
    bottom = min(every + [CLEAN]) / 3
    ax_e.axhspan(bottom, CLEAN, color="C2", alpha=0.15, label="rel-L2 < 5%")
    good = lams[errs < CLEAN]
    if good.size:
        ax_e.axvspan(good.min() / math.sqrt(10), good.max() * math.sqrt(10), color="gold", alpha=0.3,
                     label="Goldilocks zone")
    lm = [r for r in records if r["kind"] == "lm" and r["rel_l2"] is not None]
    if lm:  # Levenberg–Marquardt at fixed λ_ic: the band where it works is far wider
        ax_e.loglog([r["lam"] for r in lm], [r["rel_l2"] for r in lm], "s-", color="C3", label="LM, fixed λ_ic")
    for k, r in enumerate(x for x in records if x["kind"] not in ("fixed", "lm")):
        if r["rel_l2"] is not None:
            ax_e.axhline(r["rel_l2"], color=f"C{(k + 1) % 10}", ls=":", lw=1.0, label=r["method"])
    ax_e.set_ylim(bottom=bottom)
    ax_e.set_title("relative L2 error vs λ_ic")
    ax_e.set_xlabel("λ_ic (λ_pde = 1)")
    ax_e.set_ylabel("rel-L2")
    ax_e.legend(fontsize=7)
    return _save(fig, path)


def _pick_solutions(records):
    """A few telling runs: the worst and best fixed λ, NTK, the hard constraint, NTK + L-BFGS."""
    sweep = [r for r in records if r["kind"] == "fixed" and r["rel_l2"] is not None]
    out = []
    if sweep:
        small = [r for r in sweep if r["lam"] <= 1.0]
        out.append(max(small or sweep, key=lambda r: r["rel_l2"]))
        out.append(min(sweep, key=lambda r: r["rel_l2"]))
        big = [r for r in sweep if r["lam"] > 1e3]
        if big:
            out.append(max(big, key=lambda r: r["rel_l2"]))
    for r in records:
        if r["method"] == "NTK" or r["kind"] in ("hard", "lbfgs"):
            out.append(r)
    seen, uniq = set(), []
    for r in out:
        if id(r) not in seen:
            seen.add(id(r))
            uniq.append(r)
    return uniq


# ------------------------------------------------------------------------------------ train

def history_axes(history, ax_loss, ax_weight, ax_grad):
    """Per-term loss, weight and gradient-norm histories of a ``History`` on three axes."""
    steps = history["step"]
    for i, k in enumerate(history.terms):
        c = f"C{i % 10}"
        ax_loss.semilogy(steps, _positive(history[f"{k}_loss"]), color=c, label=f"L_{k}")
        ax_weight.semilogy(steps, _positive(history[f"{k}_weight"]), color=c, label=f"λ_{k}")
        ax_grad.semilogy(steps, _positive(history[f"{k}_grad_norm"]), color=c, label=f"‖∇L_{k}‖")
    if "rel_l2" in history:
        ax_loss.semilogy(steps, _positive(history["rel_l2"]), "k--", lw=1.0, label="rel-L2")
    if "phase" in history:
        phase = history["phase"]
        switch = np.nonzero(phase == "lbfgs")[0]
        if switch.size:
            for ax in (ax_loss, ax_weight, ax_grad):
                ax.axvline(steps[switch[0]], color="grey", ls=":", lw=1.0)
    for ax, title in ((ax_loss, "unweighted loss per term"), (ax_weight, "weights"),
                      (ax_grad, "gradient norm per term")):
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)


def unknown_columns(history):
    """The history's ``unknown:<name>`` columns (a run of a problem with ``pc.Unknown`` coefficients).

    >>> from pinncore.history import History
    >>> h = History(["pde"]); h.append({"step": 0, "pde_loss": 1.0, "unknown:nu": 0.05})
    >>> unknown_columns(h)
    ['unknown:nu']
    """
    return [k for k in history.columns if k.startswith("unknown:")]


def unknown_axes(history, ax, true=None):
    """Each unknown coefficient's value against the step on ``ax`` (``true``: {name: value} drawn
    as dotted lines, e.g. the coefficients the data were generated with)."""
    steps = history["step"]
    for i, col in enumerate(unknown_columns(history)):
        name = col.split(":", 1)[1]
        ax.plot(steps, np.asarray(history[col], dtype=float), color=f"C{i % 10}", label=name)
        if true and name in true:
            ax.axhline(true[name], color=f"C{i % 10}", ls=":", lw=1.0)
    ax.set_title("unknown coefficients")
    ax.set_xlabel("step")
    ax.legend(fontsize=7)


def _grid(problem, n):
    d = len(problem.inputs)
    axes = [np.linspace(*problem.domain[k], n if i < 2 else 1) for i, k in enumerate(problem.inputs)]
    if d > 2:  # fix the other inputs at the middle of their interval
        axes[2:] = [np.array([0.5 * sum(problem.domain[k])]) for k in problem.inputs[2:]]
    mesh = np.meshgrid(*axes, indexing="ij")
    return axes, np.column_stack([m.ravel() for m in mesh])


def solution_axes(fig, spec, problem, net):
    """Draw the solution in the subplot spec ``spec``: 1-D inputs as curves against the exact
    solution, 2-D (and higher, sliced at the mid-point) as heat maps of prediction,
    reference and error of the first output. Returns the axes."""
    d = len(problem.inputs)
    has_exact = problem.exact is not None
    if d == 1:
        ax = fig.add_subplot(spec)
        axes, X = _grid(problem, 400)
        U = problem.predict(net, X)
        ref = np.asarray(problem.exact(X), dtype=np.float64).reshape(len(X), -1) if has_exact else None
        for o, name in enumerate(problem.outputs):
            if ref is not None:
                ax.plot(axes[0], ref[:, o], "k-", lw=2.5, alpha=0.35, label=f"{name} exact" if o == 0 else None)
            ax.plot(axes[0], U[:, o], color=f"C{o}", lw=1.3, label=f"{name} PINN")
        ax.set_xlabel(problem.inputs[0])
        ax.set_title("solution")
        ax.legend(fontsize=7)
        return [ax]
    n = 120
    axes, X = _grid(problem, n)
    U = problem.predict(net, X)[:, 0].reshape(n, n)
    panels = [("prediction " + problem.outputs[0], U, "viridis")]
    if has_exact:
        ref = np.asarray(problem.exact(X), dtype=np.float64).reshape(len(X), -1)[:, 0].reshape(n, n)
        panels += [("reference", ref, "viridis"), ("|error|", np.abs(U - ref), "magma")]
    sub = spec.subgridspec(1, len(panels))
    out = []
    lo = min(p[1].min() for p in panels[:2])
    hi = max(p[1].max() for p in panels[:2])
    extent = [axes[0][0], axes[0][-1], axes[1][0], axes[1][-1]]
    for i, (title, Z, cmap) in enumerate(panels):
        ax = fig.add_subplot(sub[0, i])
        kw = dict(vmin=lo, vmax=hi) if cmap == "viridis" else {}
        im = ax.imshow(Z.T, origin="lower", aspect="auto", extent=extent, cmap=cmap, **kw)
        fig.colorbar(im, ax=ax, shrink=0.85)
        ax.set_title(title)
        ax.set_xlabel(problem.inputs[0])
        ax.set_ylabel(problem.inputs[1])
        out.append(ax)
    return out


def train_figure(problem, result, path, title=None):
    """Loss / weight / gradient-norm histories and the solution of a training run. Returns ``path``."""
    two_d = len(problem.inputs) >= 2
    unknowns = bool(unknown_columns(result.history))   # an inverse problem: a panel for its coefficients
    fig = _figure(((19 if unknowns else 15), 8.5) if two_d else ((17 if unknowns else 13), 8))
    gs = fig.add_gridspec(2, 4 if unknowns else 3)
    history_axes(result.history, fig.add_subplot(gs[0, 0]), fig.add_subplot(gs[0, 1]), fig.add_subplot(gs[0, 2]))
    if unknowns:
        unknown_axes(result.history, fig.add_subplot(gs[0, 3]))
    solution_axes(fig, gs[1, :], problem, result.net)
    err = "" if result.rel_l2 is None else f", rel-L2 {result.rel_l2:.2e}"
    fig.suptitle(title or f"{problem.inputs} -> {problem.outputs}: {result.status} at step {result.step}{err}")
    return _save(fig, path)


# ------------------------------------------------------------------------------------ sweeps

def _numeric_key(result, key):
    """``key`` (default: the first λ key, else the first numeric grid key) of a SweepResult."""
    if key is None:
        numeric = [k for k in result.keys
                   if all(isinstance(r.get(k), (int, float)) and not isinstance(r.get(k), bool) for r in result.records)]
        keys = result.lambda_keys or numeric
        if not keys:
            raise ValueError(f"the sweep has no numeric grid key to plot against (keys: {result.keys})")
        return keys[0]
    if key not in result.keys:
        raise ValueError(f"{key!r} is not a grid key of the sweep (keys: {result.keys})")
    return key


def sweep_error_axes(ax, result, term=None, threshold=CLEAN):
    """rel-L2 against one grid key (default: the first λ) of a ``pc.sweep`` table on ``ax``: the
    median over seeds as a line, the min..max over seeds as a band, one curve per combination of
    the other grid keys; failed fits are left out; for a λ key the Goldilocks interval (rel-L2 <
    ``threshold`` around the best) is shaded."""
    from .sweep_results import hashable, record_error

    key = _numeric_key(result, term)
    others = [k for k in result.keys if k != key]
    groups = {}
    for r in result.records:
        g = groups.setdefault(tuple(hashable(r.get(k)) for k in others), {})
        g.setdefault(r[key], []).append(record_error(r))
    for i, (combo, by) in enumerate(groups.items()):
        xs = np.array(sorted(by), dtype=np.float64)
        e = [np.where(np.isfinite(by[x]), by[x], np.nan) for x in sorted(by)]
        with np.errstate(all="ignore"), _quiet():
            med = np.array([np.nanmedian(v) if np.isfinite(v).any() else np.nan for v in e])
            lo = np.array([np.nanmin(v) if np.isfinite(v).any() else np.nan for v in e])
            hi = np.array([np.nanmax(v) if np.isfinite(v).any() else np.nan for v in e])
        c = f"C{i % 10}"
        label = ", ".join(f"{k}={v}" for k, v in zip(others, combo)) or "median over seeds"
        if len(result.seeds) > 1:
            ax.fill_between(xs, lo, hi, color=c, alpha=0.2, lw=0)
        ax.plot(xs, med, "o-", color=c, ms=3.5, lw=1.3, label=label)
    positive = all(isinstance(v, (int, float)) and v > 0 for by in groups.values() for v in by)
    ax.set_xscale("log" if positive else "linear")
    ax.set_yscale("log")
    ax.axhline(threshold, color="C2", ls="--", lw=1.0, label=f"rel-L2 = {threshold:.0%}")
    if result.kinds.get(key) == "lambda":
        g = result.goldilocks(key, threshold=threshold)
        if g.under is not None:
            lo_, hi_ = g.under
            pad = math.sqrt(_step(g.values)) if positive else 0.0
            ax.axvspan(lo_ / pad if pad else lo_, hi_ * pad if pad else hi_, color="gold", alpha=0.3,
                       label=f"Goldilocks [{lo_:.3g}, {hi_:.3g}]")
    name = key.split(".", 1)[-1]
    ax.set_xlabel(f"λ_{name}" if result.kinds.get(key) == "lambda" else key)
    ax.set_ylabel("rel-L2")
    seeds = f"{len(result.seeds)} seeds: median, band min..max" if len(result.seeds) > 1 else "one seed"
    ax.set_title(f"relative L2 error vs {ax.get_xlabel()} ({seeds})")
    ax.legend(fontsize=7)
    return ax


def _step(values):
    """The ratio between neighbouring grid values (for shading half a cell beyond an interval)."""
    v = np.asarray(values, dtype=np.float64)
    return float(np.exp(np.median(np.diff(np.log(v))))) if v.size > 1 else 10.0


class _quiet:
    """Silence NumPy's all-NaN RuntimeWarnings inside a block (failed fits are NaN on purpose)."""

    def __enter__(self):
        import warnings
        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._w.__exit__(*exc)


def sweep_figure(result, path, term=None, threshold=CLEAN):
    """rel-L2 against one λ (or numeric grid key) of a ``pc.sweep`` table, seeds as a band, the
    Goldilocks interval shaded (``sweep_error_axes``). Returns ``path``."""
    fig = _figure((7.0, 4.8))
    sweep_error_axes(fig.subplots(), result, term, threshold)
    return _save(fig, path)


def sweep_heatmap_axes(fig, ax, result, terms=None, threshold=CLEAN, agg="median"):
    """log10 rel-L2 over two λ keys of a ``pc.sweep`` table (seed-aggregated, best over the other
    keys; failed fits blank) with the rel-L2 = ``threshold`` contour."""
    keys = list(terms) if terms is not None else result.lambda_keys[:2]
    if len(keys) != 2:
        raise ValueError(f"a heat map needs two λ keys, the sweep has λ keys {result.lambda_keys}")
    keys = [result.lambda_key(k) for k in keys]
    by = {}
    for params, e in result.points(agg):
        k = (params[keys[0]], params[keys[1]])
        by[k] = min(e, by.get(k, math.inf))
    xs, ys = sorted({k[0] for k in by}), sorted({k[1] for k in by})
    Z = np.full((len(ys), len(xs)), np.nan)
    for (a, b), e in by.items():
        if math.isfinite(e) and e > 0:
            Z[ys.index(b), xs.index(a)] = math.log10(e)
    im = ax.imshow(Z, origin="lower", aspect="auto", cmap="viridis_r",
                   extent=[-0.5, len(xs) - 0.5, -0.5, len(ys) - 0.5])
    fig.colorbar(im, ax=ax, label=f"log10 rel-L2 ({agg} over seeds)")
    if np.isfinite(Z).sum() >= 4 and np.nanmin(Z) < math.log10(threshold) < np.nanmax(Z):
        ax.contour(np.arange(len(xs)), np.arange(len(ys)), np.where(np.isfinite(Z), Z, np.nanmax(Z)),
                   levels=[math.log10(threshold)], colors="w", linewidths=1.5)
    ax.set_xticks(range(len(xs)), [f"{v:.2g}" for v in xs], rotation=45, fontsize=7)
    ax.set_yticks(range(len(ys)), [f"{v:.2g}" for v in ys], fontsize=7)
    ax.set_xlabel(f"λ_{keys[0].split('.', 1)[-1]}")
    ax.set_ylabel(f"λ_{keys[1].split('.', 1)[-1]}")
    ax.set_title(f"rel-L2 over λ (white: {threshold:.0%} contour)")
    return ax


def sweep_heatmap(result, path, terms=None, threshold=CLEAN, agg="median"):
    """The heat map of ``sweep_heatmap_axes`` as a figure. Returns ``path``."""
    fig = _figure((6.4, 5.2))
    sweep_heatmap_axes(fig, fig.subplots(), result, terms, threshold, agg)
    return _save(fig, path)


# ------------------------------------------------------------------------------------ domains

def domain_panels(problem, net, geometry, shape=(201, 201), fixed=None, output=0):
    """The arrays of ``domain_figure``: ``(grid, [(title, Z (shape), cmap), ...])`` with Z NaN
    outside ``geometry`` (a 2-D pinncore.geometry shape over two of the problem's inputs).

    ``fixed``: values of the other inputs (e.g. ``{"t": 0.5}`` for a space-time problem); the
    geometry's two inputs are the remaining ones, in the problem's order.

    >>> import pinncore as pc
    >>> from pinncore import plotting, problems
    >>> p = problems.heat_disk(n_collocation=50, n_ic=10, n_bc=10)
    >>> g, panels = plotting.domain_panels(p, pc.MLP([3, 8, 1]), p.geometry, (21, 21), fixed={"t": 0.5})
    >>> [t for t, _, _ in panels], panels[0][1].shape
    (['prediction u', 'reference', '|error|'], (21, 21))
    """
    from .geometry import Geometry, Grid
    if not isinstance(geometry, Geometry) or geometry.dim != 2:
        raise ValueError(f"geometry must be a 2-D pinncore.geometry shape, got {geometry!r}")
    fixed = dict(fixed or {})
    unknown = set(fixed) - set(problem.inputs)
    if unknown:
        raise ValueError(f"fixed names unknown inputs {sorted(unknown)}; inputs are {problem.inputs}")
    free = [k for k in problem.inputs if k not in fixed]
    if len(free) != 2:
        raise ValueError(f"fixed must leave exactly 2 of the inputs {problem.inputs} free, leaves {free}")
    grid = Grid(geometry.lo, geometry.hi, shape, geometry=geometry)
    X = np.empty((grid.points.shape[0], len(problem.inputs)))
    for j, k in enumerate(problem.inputs):
        X[:, j] = grid.points[:, free.index(k)] if k in free else float(fixed[k])
    U = problem.predict(net, X)[:, output]
    panels = [(f"prediction {problem.outputs[output]}", grid.reshape(U), "viridis")]
    if problem.exact is not None:
        ref = np.asarray(problem.exact(X), dtype=np.float64).reshape(len(X), -1)[:, output]
        panels += [("reference", grid.reshape(ref), "viridis"), ("|error|", grid.reshape(np.abs(U - ref)), "magma")]
    return grid, panels


def domain_figure(problem, net, geometry, path, shape=(201, 201), fixed=None, output=0, title=None):
    """Prediction, reference and |error| of a 2-D solution on a non-rectangular ``geometry``,
    masked (blank) outside it; ``fixed`` slices a space-time problem. Returns ``path``."""
    grid, panels = domain_panels(problem, net, geometry, shape, fixed, output)
    fig = _figure((5 * len(panels), 4.3))
    axs = fig.subplots(1, len(panels), squeeze=False)[0]
    vals = np.concatenate([Z[np.isfinite(Z)] for _, Z, c in panels if c == "viridis"])
    lo, hi = (float(vals.min()), float(vals.max())) if vals.size else (0.0, 1.0)
    extent = [grid.axes[0][0], grid.axes[0][-1], grid.axes[1][0], grid.axes[1][-1]]
    free = [k for k in problem.inputs if k not in (fixed or {})]
    for ax, (name, Z, cmap) in zip(axs, panels):
        kw = dict(vmin=lo, vmax=hi) if cmap == "viridis" else {}
        im = ax.imshow(np.ma.masked_invalid(Z).T, origin="lower", extent=extent, cmap=cmap, **kw)
        fig.colorbar(im, ax=ax, shrink=0.85)
        ax.set_title(name)
        ax.set_xlabel(free[0])
        ax.set_ylabel(free[1])
        ax.set_aspect("equal")
    if title or fixed:
        fig.suptitle(title or ", ".join(f"{k} = {v:g}" for k, v in fixed.items()))
    return _save(fig, path)


# ------------------------------------------------------------------------------------ audit

def _shadow_labels(history):
    """Shadow scheme labels in column order (``<label>:<term>_weight`` columns)."""
    labels = []
    for key in history.keys():
        if ":" in key and key.endswith("_weight"):
            label = key.split(":", 1)[0]
            if label not in labels:
                labels.append(label)
    return labels


def audit_axes(history, ax, term, driver="driving scheme"):
    """One term's weight over the steps: the driving scheme's λ (thick black) and every
    shadow scheme's choice (``<scheme>:<term>_weight``) on a log axis."""
    steps = history["step"]
    ax.semilogy(steps, _positive(history[f"{term}_weight"]), "k-", lw=2.6, alpha=0.75, label=f"{driver} (drives)")
    for i, label in enumerate(_shadow_labels(history)):
        col = f"{label}:{term}_weight"
        if col in history:
            ax.semilogy(steps, _positive(history[col]), "--", color=f"C{i}", lw=1.4, label=label)
    ax.set_title(f"λ_{term}: driving vs shadow schemes")
    ax.set_xlabel("step")
    ax.set_ylabel("weight")
    ax.legend(fontsize=7)
    return ax


def audit_figure(history, path, terms=None, driver="driving scheme", title=None):
    """The weighting audit of a run (``pc.train(..., audit=True)``): per term, the driving
    weight against the weights every shadow scheme would have chosen at the same steps.
    ``terms`` defaults to every term whose weights differ anywhere (else all). Returns ``path``.

    >>> import pinncore as pc, tempfile, os
    >>> r = pc.train(pc.problems.harmonic(), pc.MLP([1, 8, 1]), weighting=pc.Fixed({"ic": 10.0}), steps=20,
    ...              log_every=5, warn=False, audit=True)
    >>> path = audit_figure(r.history, os.path.join(tempfile.mkdtemp(), "audit.png"), driver="Fixed")
    >>> os.path.getsize(path) > 1000
    True
    """
    labels = _shadow_labels(history)
    if not labels:
        raise ValueError("history has no shadow weights; train with audit=True")
    if terms is None:
        terms = [t for t in history.terms
                 if any(not np.allclose(history[f"{l}:{t}_weight"], history[f"{t}_weight"], equal_nan=True)
                        for l in labels if f"{l}:{t}_weight" in history)] or list(history.terms)
    fig = _figure((5.2 * len(terms), 4.2))
    axes = fig.subplots(1, len(terms), squeeze=False)[0]
    for ax, term in zip(axes, terms):
        audit_axes(history, ax, term, driver)
    if title:
        fig.suptitle(title)
    return _save(fig, path)
