"""Progress bars for long phases: a run observer over tqdm (``tqdm.auto``: a text bar on a
terminal, a widget in a notebook).

A bar opens only for a phase that runs longer than ``delay`` seconds (tqdm's own delay), so
short fits and tests print nothing. It shows the iteration within the phase (of the phase's
length when it is finite, with tqdm's time estimate), the phase's optimizer, the total loss at
the last history row and, for problems with an exact solution, the rel-L2 error there.

>>> import pinncore as pc
>>> run = pc.Run(pc.problems.harmonic(), pc.MLP([1, 8, 1]), weighting=pc.Fixed(), warn=False,
...              observers=[Progress(delay=60.0)])
>>> run.step(10)
'completed'
"""
from __future__ import annotations

import time

from .observers import Observer

__all__ = ["Progress"]


class Progress(Observer):
    """A tqdm bar per phase (module docstring). ``delay``: seconds before it appears;
    ``total``: the phase length to show (None: the ``n`` of the current ``run.step(n)`` when
    it is below 1e8, else no total)."""

    every = "step"

    def __init__(self, delay=3.0, total=None, refresh=0.25):
        self.delay, self.total, self.refresh = float(delay), total, float(refresh)
        self._bar, self._start, self._last, self._shown, self._t0 = None, 0, 0.0, 0, 0.0

    @staticmethod
    def wanted():
        """Whether a bar has a reader: stderr is a terminal, or the code runs in a notebook.

        >>> isinstance(Progress.wanted(), bool)
        True
        """
        import sys
        if "ipykernel" in sys.modules:
            return True
        try:
            return bool(sys.stderr.isatty())
        except (AttributeError, ValueError):
            return False

    def on_start(self, run):
        from tqdm.auto import tqdm
        n = self.total if self.total is not None else run.target_step
        total = None if n is None else n - run.step_count if n - run.step_count < 10 ** 8 else None
        self._start, self._shown, self._last = run.step_count, 0, time.monotonic()
        self._t0 = self._last
        self._bar = tqdm(total=total, delay=self.delay, desc=run.optimizer.name, unit="it", leave=False,
                         dynamic_ncols=True, mininterval=self.refresh)

    def on_step(self, run, step):
        now = time.monotonic()
        if now - self._last >= self.refresh and self._bar is not None:
            self._last = now
            done = run.step_count - self._start
            self._bar.update(done - self._shown)
            self._shown = done
        return None

    def on_log(self, run, row):
        if self._bar is not None:
            post = {"loss": f"{row['total_loss']:.3e}"}
            if row.get("rel_l2") is not None:
                post["rel_l2"] = f"{row['rel_l2']:.3e}"
            # an inverse problem's unknown coefficients (pc.Unknown) are what its user watches
            post.update({k[len("unknown:"):]: f"{v:.6g}" for k, v in row.items() if k.startswith("unknown:")})
            self._bar.set_postfix(post, refresh=False)
        return None

    def on_end(self, run):
        if self._bar is not None:
            self._bar.update(run.step_count - self._start - self._shown)
            if time.monotonic() - self._t0 >= self.delay:   # shown: draw the final count
                self._bar.refresh()
            self._bar.close()
            self._bar = None
