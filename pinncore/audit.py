"""The weighting audit: what every other scheme would have chosen, step by step, while one
scheme drives the run.

Automatic weighting schemes disagree — on u'' + ω²u = 0 at ω = 3π, 4π (bench/families.py)
NTK's λ_ic ends at 90–530, GradNorm's at 5–50, where λ_ic = 100 works — and a user normally
sees only the scheme that trained the network. ``Audit`` is an observer that replays the (init, update)
pair of every other scheme on the very statistics of the driving run: at each weight-adapting
iteration, after the driver's update and before the optimizer step, it passes ``run.context``
(the per-term losses and gradients the kernel returned, the weight mask, the lazily computed
NTK traces, the residuals) to each shadow scheme's ``update``. The shadows never touch the
parameters. At every history row it adds the shadow weights as ``<scheme>:<term>_weight``
columns (SelfAdaptive: the mean point weight, as the run reports it).

While the trajectories coincide — up to a shadow's first weight change — a shadow's weights
are exactly those of a run driven by that scheme (tests/test_audit.py checks this). Later they
answer "what would scheme X do *here*", not "where would X have gone".

Cost: one ``update`` call per shadow and iteration; NTK traces are computed at most once per
step and shared with the driver and among the shadows (``Run`` caches them per step). The
shadows' residual needs (SelfAdaptive) switch on the kernel's residual output, which it
produces in the same pass. bench/bench_audit.py measures the overhead (bench/README.md).

>>> import pinncore as pc
>>> r = pc.train(pc.problems.harmonic(), pc.MLP([1, 16, 16, 1]), weighting=pc.Fixed(), steps=20,
...              log_every=10, warn=False, audit=True)
>>> [k for k in r.history.keys() if k.startswith("ntk:")]
['ntk:pde_weight', 'ntk:ic_weight']
"""
from __future__ import annotations

from . import registry
from . import weighting as _weighting
from .observers import Observer

__all__ = ["Audit", "default_shadows", "shadow_column"]


def default_shadows():
    """One instance of every adaptive scheme in the registry (``registry.schemes`` with the
    ``adapts`` flag) with its default settings (Fixed has no choice to audit).

    >>> [s.name for s in default_shadows()]
    ['gradnorm', 'ntk', 'selfadaptive', 'relobralo', 'balanced']
    """
    return [spec.factory() for spec in registry.schemes.specs() if spec.flags["adapts"]]


def shadow_column(label, term):
    """The history column of a shadow scheme's weight for ``term``.

    >>> shadow_column("ntk", "ic")
    'ntk:ic_weight'
    """
    return f"{label}:{term}_weight"


class Audit(Observer):
    """Shadow weighting schemes beside the driving one (see the module docstring).

    schemes : Weighting instances or names; default ``default_shadows()`` minus the driver's
        own class. Given explicitly, every listed scheme is replayed (also one of the driver's
        class: with the driver's settings its shadow reproduces the driver's weights exactly).
    Labels are the schemes' ``name``; a repeated name gets "#2", "#3", ...

    Attributes after ``on_start``: ``labels`` (column prefixes), ``states`` ({label: state}).
    """

    every = "log"   # no per-step hook after the optimizer step: shadows update in on_update

    def __init__(self, schemes=None):
        self._explicit = schemes is not None
        raw = default_shadows() if schemes is None else list(schemes)
        self.schemes = [_weighting.get(s) if isinstance(s, str) else s for s in raw]
        for s in self.schemes:
            if not isinstance(s, _weighting.Weighting):
                raise TypeError(f"audit schemes must be weighting schemes or their names, got {type(s).__name__}")
        self.labels, self.states, self._active, self._run = [], {}, [], None

    def on_start(self, run):
        if self._run is run:      # a later run.step(): the shadows continue
            self._needs(run)
            return
        self._run = run
        chosen = self.schemes if self._explicit else [s for s in self.schemes if type(s) is not type(run.scheme)]
        self._active, self.labels, self.states, seen = [], [], {}, {}
        for s in chosen:
            seen[s.name] = seen.get(s.name, 0) + 1
            label = s.name if seen[s.name] == 1 else f"{s.name}#{seen[s.name]}"
            self._active.append((label, s))
            self.labels.append(label)
            self.states[label] = s.init(run.problem)
        self._needs(run)

    def _needs(self, run):
        """Ask the kernel for residuals when a shadow reads them (the same pass returns them)."""
        if any(s.needs_residuals for _, s in self._active) and not run.objective.residuals:
            run.objective.residuals = True

    def on_update(self, run, step):
        """After the driver's update at ``step``, before the optimizer moves the parameters."""
        ctx = run.context
        if ctx.residuals is None and any(s.needs_residuals for _, s in self._active):
            self._needs(run)      # e.g. the objective was rebuilt (replace_points): from the next step
            skip_res = True
        else:
            skip_res = False
        for label, s in self._active:
            if skip_res and s.needs_residuals:
                continue
            self.states[label] = s.update(self.states[label], step, ctx)

    def row_columns(self, run):
        """{``<label>:<term>_weight``: λ} for the history row being written."""
        out = {}
        for label, s in self._active:
            st = self.states[label]
            lam = s.reported_weights(st)
            for k in run.names:
                out[shadow_column(label, k)] = float(lam[k])
        return out

    def weights(self, label):
        """{term: λ} of the shadow ``label`` now."""
        s = dict(self._active)[label]
        st = self.states[label]
        return dict(s.reported_weights(st))
