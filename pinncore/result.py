"""``TrainResult``: what a training run returns (``pc.train``, ``pc.Run.result()``, ``pc.solve``).

>>> import pinncore as pc
>>> r = pc.train(pc.problems.harmonic(), pc.MLP([1, 8, 1]), steps=5, warn=False)
>>> type(r).__name__, r.status, r.step
('TrainResult', 'completed', 5)
"""
from __future__ import annotations

from . import io as _io
from .state import STATE_KIND

__all__ = ["TrainResult"]


class TrainResult:
    """What a run returns: the trained ``net``, its ``history``, the final ``rel_l2`` (None
    without an exact solution), ``wall_time`` (s), final ``weights``, ``status``
    ("completed" | "converged" | "stopped" | "cancelled" | "interrupted" | "diverged"), a
    ``message``, the global ``step`` and ``unknowns`` ({name: value} of the problem's
    ``pc.Unknown`` coefficients, {} without). ``save(path)`` writes the full training state (no
    pickle) for ``train(..., resume=path)`` / ``pc.Run(..., resume=path)``."""

    def __init__(self, net, history, rel_l2, wall_time, weights, status, message, step, state, unknowns=None):
        self.net, self.history, self.rel_l2, self.wall_time = net, history, rel_l2, wall_time
        self.weights, self.status, self.message, self.step = weights, status, message, step
        self.state, self.unknowns = state, dict(unknowns or {})

    def save(self, path):
        """Save the training state atomically (pinncore.io format, versioned, checksummed)."""
        _io.save(path, self.state, kind=STATE_KIND)

    def __repr__(self):
        err = "n/a" if self.rel_l2 is None else f"{self.rel_l2:.3e}"
        return f"TrainResult(status={self.status!r}, step={self.step}, rel_l2={err}, wall_time={self.wall_time:.3f}s)"
