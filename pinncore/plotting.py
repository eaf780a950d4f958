"""Figures for the demo and for ``pinncore train --plot``.

The only pinncore module that uses matplotlib, and only inside its functions (``pip install
'pinncore[plot]'``). Figures are drawn on matplotlib's Agg canvas directly (no pyplot, no
global backend switch), so they work headless and do not disturb an interactive session.

    demo_figure(records, path)          records from pinncore.cli.run_demo
    train_figure(problem, result, path) a TrainResult of pc.train on ``problem``
    audit_figure(history, path)         shadow weights of pc.train(..., audit=True) vs the driving ones
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["demo_figure", "train_figure", "history_axes", "solution_axes", "audit_figure", "audit_axes"]

CLEAN = 0.05


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
    for k, r in enumerate(x for x in records if x["kind"] != "fixed"):
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
    fig = _figure((15, 8.5) if two_d else (13, 8))
    gs = fig.add_gridspec(2, 3)
    history_axes(result.history, fig.add_subplot(gs[0, 0]), fig.add_subplot(gs[0, 1]), fig.add_subplot(gs[0, 2]))
    solution_axes(fig, gs[1, :], problem, result.net)
    err = "" if result.rel_l2 is None else f", rel-L2 {result.rel_l2:.2e}"
    fig.suptitle(title or f"{problem.inputs} -> {problem.outputs}: {result.status} at step {result.step}{err}")
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
