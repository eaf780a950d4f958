"""One verdict on a fit: what its relative L2 error (and its loss curve) says.

The thresholds are the course's rule of thumb, defined here only: a fit is **clean** below
``CLEAN`` = 5 % rel-L2; an error of at least ``WRONG`` = 30 % is a **wrong steady state**
only when the training loss has settled — a run whose loss is still falling fast is
**partial (undertrained)** (more iterations, not other weights, is the next thing to try),
and one cut short (stopped, cancelled, interrupted) is **stopped early**. Between the
thresholds a fit is **partial**; a non-finite error or a diverged run is **diverged**.

Every front end shows this function's answer: ``pinncore train`` and the demo, the web page's
fits and sweeps, sweep records and the plots.

>>> verdict(0.01), verdict(0.1), verdict(0.5), verdict(0.5, status="cancelled"), verdict(float("nan"))
('clean', 'partial', 'wrong steady state', 'stopped early', 'diverged')
>>> import numpy as np
>>> falling = {"step": np.arange(0, 1001, 100), "total_loss": np.logspace(0, -4, 11)}
>>> verdict(0.49, history=falling)
'partial (undertrained)'
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["CLEAN", "WRONG", "VERDICTS", "verdict", "still_falling"]

CLEAN = 0.05     # rel-L2 below which a fit is clean
WRONG = 0.30     # rel-L2 at or above which a settled fit is a wrong steady state
VERDICTS = ("clean", "partial", "partial (undertrained)", "stopped early", "wrong steady state", "diverged")

_CUT_SHORT = ("stopped", "cancelled", "interrupted")


def still_falling(history, window=0.2, factor=2.0):
    """True when the total loss fell by more than ``factor`` over the last ``window`` of the
    logged steps: the run had not settled, so its error says nothing about a steady state.
    ``history``: a ``pc.History`` or a mapping with "step" and "total_loss" arrays.

    >>> still_falling({"step": np.array([0, 50, 100]), "total_loss": np.array([1.0, 1.0, 0.99])})
    False
    """
    steps = np.asarray(history["step"], dtype=np.float64)
    loss = np.asarray(history["total_loss"], dtype=np.float64)
    if len(steps) < 3:
        return False
    start = steps[-1] - window * (steps[-1] - steps[0])
    earlier = loss[steps <= start]
    return bool(len(earlier) and np.isfinite(loss[-1]) and earlier[-1] > factor * loss[-1])


def verdict(rel_l2, status="completed", history=None):
    """The verdict (one of ``VERDICTS``) on a fit with error ``rel_l2``, run ``status`` and,
    when known, its ``history`` (to tell a settled wrong fit from an undertrained one)."""
    if rel_l2 is None or not math.isfinite(rel_l2) or status == "diverged":
        return "diverged"
    if rel_l2 < CLEAN:
        return "clean"
    if status in _CUT_SHORT:
        return "stopped early"
    if rel_l2 < WRONG:
        return "partial"
    return "partial (undertrained)" if history is not None and still_falling(history) else "wrong steady state"
