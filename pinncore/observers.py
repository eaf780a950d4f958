"""Observers: everything that watches a run — printing, user callbacks, checkpoints, stop
conditions — behind one small interface (DeepXDE's callbacks, docs/design.md §5).

An observer implements any of ``on_start(run)``, ``on_step(run, step)`` (after every
iteration, when ``every == "step"``; ``run.context`` holds that iteration's statistics),
``on_log(run, row)`` (at every history row), ``on_phase_end(run, phase)``,
``on_end(run)``, ``on_update(run, step)`` (after the weighting scheme's update of a
weight-adapting iteration, before the optimizer step; called only on observers that override
it) and ``row_columns(run)`` (extra columns for the history row being written). ``on_step`` and ``on_log`` return True to stop the run (status
"stopped"), or call ``run.request_stop(status, message)`` to say why.

>>> import pinncore as pc
>>> rows = []
>>> class Collect(Observer):
...     def on_log(self, run, row):
...         rows.append(row["step"])
>>> run = pc.Run(pc.problems.harmonic(), pc.MLP([1, 8, 1]), weighting=pc.Fixed(), log_every=5, warn=False,
...              observers=[Collect()])
>>> run.step(10)
'completed'
>>> rows
[0, 5]
"""
from __future__ import annotations

import math
import os
import warnings

__all__ = ["Observer", "Callback", "Checkpoint", "CheckpointWarning", "StopAtTolerance", "Printer"]


class Observer:
    """Base class: every hook is optional and does nothing."""

    every = "log"   # "step": on_step runs after every iteration

    def on_start(self, run):
        pass

    def on_step(self, run, step):
        return None

    def on_log(self, run, row):
        return None

    def on_phase_end(self, run, phase):
        pass

    def on_end(self, run):
        pass

    def on_update(self, run, step):
        """After the scheme's update at ``step`` and before the optimizer step (weight-adapting
        phases only). The run calls it only on observers that override it (it is per step)."""

    def row_columns(self, run):
        """Extra columns {name: float} for the history row being written (default none)."""
        return {}

    def replays_updates(self):
        """True when this observer overrides ``on_update`` (the run calls it every step then)."""
        return type(self).on_update is not Observer.on_update


class Callback(Observer):
    """``fn(step, row) -> bool`` at every history row; True stops the run.

    >>> Callback(lambda step, row: False).every
    'log'
    """

    def __init__(self, fn):
        if not callable(fn):
            raise TypeError("callback must be callable callback(step, row) -> bool")
        self.fn = fn

    def on_log(self, run, row):
        if self.fn(row["step"], row):
            run.request_stop("stopped", f"stopped by callback at step {row['step']}")
            return True
        return None


class CheckpointWarning(UserWarning):
    """A checkpoint could not be written; the run goes on without it (the message says why)."""


class Checkpoint(Observer):
    """Save the run's state to ``path`` every ``every_steps`` iterations and when it ends.

    A save that fails (a full disk, a lost mount: any ``OSError``) does not end the run: the
    first failure warns (``CheckpointWarning``, naming the path and the error), training goes
    on, later checkpoints are still tried (the disk may free up), and the run's message ends
    with ``failure`` — which step the file on disk holds, if any. ``saved_step`` is the step of
    the last successful save.

    >>> Checkpoint("/tmp/run.pcs", 100).every
    'step'
    """

    every = "step"

    def __init__(self, path, every_steps=None):
        check_writable(path)
        if every_steps is not None and (isinstance(every_steps, bool) or not isinstance(every_steps, int)
                                        or every_steps < 1):
            raise ValueError(f"checkpoint_every must be an integer >= 1, got {every_steps!r}")
        self.path, self.every_steps = path, every_steps
        if every_steps is None:
            self.every = "log"   # only the final save: no per-step hook needed
        self._start = None
        self.error, self.error_step, self.saved_step = None, None, None

    def on_start(self, run):
        self._start = run.step_count

    def on_step(self, run, step):
        if self.every_steps and (run.step_count - self._start) % self.every_steps == 0:
            self.save(run)

    def on_end(self, run):
        if not self.save(run):
            run.message = self.annotate(run.message)

    def save(self, run):
        """Write the run's state; False (after a warning, the first time) when it failed."""
        try:
            run.save(self.path)
        except OSError as e:
            if self.error is None:
                warnings.warn(f"checkpoint {os.fspath(self.path)!r} could not be written at step {run.step_count} "
                              f"({type(e).__name__}: {e}); training continues without it", CheckpointWarning,
                              stacklevel=2)
            self.error, self.error_step = e, run.step_count
            return False
        self.saved_step, self.error = run.step_count, None
        return True

    @property
    def failure(self):
        """What went wrong with the last save (None when it succeeded)."""
        if self.error is None:
            return None
        held = f"the file holds step {self.saved_step}" if self.saved_step is not None else "no checkpoint was written"
        return (f"checkpoint {os.fspath(self.path)!r} could not be written at step {self.error_step} "
                f"({type(self.error).__name__}: {self.error}); {held}")

    def annotate(self, message):
        """``message`` with ``failure`` appended (unchanged when the last save succeeded)."""
        if self.failure is None or self.failure in (message or ""):
            return message
        return f"{message}; {self.failure}" if message else self.failure


class StopAtTolerance(Observer):
    """Stop (status "converged") at the first history row whose total loss is ≤ ``loss`` or
    whose rel-L2 error is ≤ ``rel_l2``.

    >>> StopAtTolerance(rel_l2=1e-3).rel_l2
    0.001
    """

    def __init__(self, loss=None, rel_l2=None):
        for name, v in (("loss", loss), ("rel_l2", rel_l2)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0
                                  or not math.isfinite(v)):
                raise ValueError(f"{name} tolerance must be a finite number > 0, got {v!r}")
        if loss is None and rel_l2 is None:
            raise ValueError("StopAtTolerance needs loss= or rel_l2=")
        self.loss, self.rel_l2 = loss, rel_l2

    def on_log(self, run, row):
        if self.loss is not None and row["total_loss"] <= self.loss:
            run.request_stop("converged", f"total loss {row['total_loss']:.3e} <= {self.loss:g} at step {row['step']}")
            return True
        err = row.get("rel_l2")
        if self.rel_l2 is not None and err is not None and err <= self.rel_l2:
            run.request_stop("converged", f"rel-L2 {err:.3e} <= {self.rel_l2:g} at step {row['step']}")
            return True
        return None


class Printer(Observer):
    """One line per history row on stdout (``verbose=True``)."""

    def on_log(self, run, row):
        terms = "  ".join(f"{k}={row[f'{k}_loss']:.3e}(λ={row[f'{k}_weight']:.3g})" for k in run.names)
        err = f"  rel_l2={row['rel_l2']:.3e}" if row.get("rel_l2") is not None else ""
        print(f"[{row['phase']} {row['step']:>6}] loss={row['total_loss']:.4e}  {terms}{err}  "
              f"t={row['wall_time']:.2f}s", flush=True)

    def on_end(self, run):
        if run.message:
            print(run.message, flush=True)


def check_writable(path):
    """Fail before training, not after it, when a checkpoint cannot be written."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"checkpoint must be a file path, got {type(path).__name__}")
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise ValueError(f"checkpoint {os.fspath(path)!r}: the folder {folder!r} does not exist or is not writable")
    if os.path.isdir(path):
        raise ValueError(f"checkpoint {os.fspath(path)!r} is a directory, expected a file path")
