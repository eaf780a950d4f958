"""Where a sweep's fits run: a local process pool that survives lost workers, this process
alone, or a Dask cluster; and the progress bar.

A worker that dies (killed, out of memory) breaks the local pool, which is restarted and its
unfinished fits resubmitted; a fit that was running when a pool broke is retried alone, so a
fit that kills its worker is identified, and after ``retries`` lost attempts it is a record
with status "lost". On Dask the scheduler reschedules lost tasks and ``retries`` goes to
``client.submit``.

>>> Bar(3, stream=None).live in (True, False)
True
"""
from __future__ import annotations

import collections
import multiprocessing
import signal
import sys
import time
import uuid
import warnings
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from .sweep_fit import run_fit

__all__ = ["LocalPool", "run_inline", "run_dask", "Bar"]


def _init_worker():
    from .backend import set_num_threads
    set_num_threads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle


class LocalPool:
    """Fits on a process pool that survives lost workers.

    At most ``workers`` fits are in flight, so when a worker dies (the pool breaks and every
    in-flight fit is lost) the suspects are known: they are resubmitted on a fresh pool, each
    alone, so that a fit that kills its worker is charged alone; after ``retries`` lost
    attempts it becomes a "lost" record.
    """

    def __init__(self, jobs, workers, retries, on_record):
        self.jobs, self.workers, self.retries, self.on_record = jobs, workers, retries, on_record
        self.pending = collections.deque(range(len(jobs)))
        self.inflight = {}
        self.attempts = [0] * len(jobs)
        self.suspects = set()
        self.restarts = 0
        self.executor = None
        self.ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods()
                                               else "spawn")

    def _start(self):
        self.executor = ProcessPoolExecutor(max_workers=self.workers, mp_context=self.ctx, initializer=_init_worker)

    def _submit(self, i):
        with warnings.catch_warnings():  # Python >= 3.12 warns on fork with threads; workers start fresh
            warnings.filterwarnings("ignore", message=".*fork.*", category=DeprecationWarning)
            try:
                fut = self.executor.submit(run_fit, self.jobs[i])
            except BrokenProcessPool:  # a worker died while idle: nothing of this fit is lost
                self._recover([])
                fut = self.executor.submit(run_fit, self.jobs[i])
        self.attempts[i] += 1
        self.inflight[fut] = i

    def _fill(self):
        while self.pending and len(self.inflight) < self.workers:
            if self.suspects & set(self.inflight.values()):
                return  # a suspect runs alone
            i = self.pending[0]
            if i in self.suspects and self.inflight:
                return
            self._submit(self.pending.popleft())
            if i in self.suspects:
                return

    def run(self):
        self._start()
        try:
            while self.pending or self.inflight:
                self._fill()
                done, _ = wait(list(self.inflight), return_when=FIRST_COMPLETED)
                lost = [self._collect(f) for f in done]
                if any(i is not None for i in lost):
                    self._recover([i for i in lost if i is not None])
        except BaseException:
            self._kill()
            raise
        self.executor.shutdown(wait=True)

    def _collect(self, fut):
        """Deliver a finished fit; return its index when its worker was lost."""
        i = self.inflight.pop(fut)
        try:
            rec = fut.result()
        except BrokenProcessPool:
            return i
        except Exception as e:  # noqa: BLE001 - e.g. a result that cannot be sent back
            rec = {"status": "error", "error": f"{type(e).__name__}: {e}"}
        self.suspects.discard(i)
        self.on_record(i, rec)
        return None

    def _recover(self, lost):
        """The pool broke: collect what still finished, then resubmit the rest on a new pool."""
        done, _ = wait(list(self.inflight), timeout=60)
        for f in done:
            i = self._collect(f)
            if i is not None:
                lost.append(i)
        lost += list(self.inflight.values())
        self.inflight.clear()
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.restarts += 1
        for i in sorted(lost, reverse=True):
            if self.attempts[i] > self.retries:
                self.suspects.discard(i)
                self.on_record(i, {"status": "lost", "error": f"the worker process died {self.attempts[i]} times "
                                                              f"while running this fit"})
            else:
                if len(lost) > 1 or i in self.suspects:
                    self.suspects.add(i)
                self.pending.appendleft(i)
        self._start()

    def _kill(self):
        """Stop every worker now (do not wait for running fits). The executor may still be starting
        a worker when we are interrupted (it spawns them while jobs are submitted), so the worker
        table is read again over a few short rounds; a worker that ignores SIGTERM is killed."""
        ex = self.executor
        if ex is None:
            return
        seen = {}
        for round_ in range(3):
            seen.update({p.pid: p for p in list((getattr(ex, "_processes", None) or {}).values())})
            for p in seen.values():
                if p.is_alive():
                    p.terminate()
            if round_ == 0:
                ex.shutdown(wait=False, cancel_futures=True)
            for p in seen.values():
                p.join(timeout=5)
                if p.is_alive():
                    p.kill()
                    p.join(timeout=5)
            time.sleep(0.05)


def run_inline(jobs, on_record):
    """Run the fits in this process, one after the other (``workers=1``)."""
    from .backend import get_num_threads, set_num_threads
    threads = get_num_threads()
    try:
        for i, job in enumerate(jobs):
            rec = run_fit(job)
            if rec.get("status") == "interrupted":  # pc.train turned Ctrl-C into a status
                raise KeyboardInterrupt
            on_record(i, rec)
    finally:
        set_num_threads(threads)


def run_dask(client, jobs, retries, on_record):
    """Run the fits as tasks of a synchronous ``dask.distributed.Client``."""
    from distributed import as_completed
    if getattr(client, "asynchronous", False):
        raise ValueError("client must be a synchronous dask.distributed.Client (asynchronous=False)")
    tag = uuid.uuid4().hex[:12]
    futures = [client.submit(run_fit, job, key=f"pinncore-sweep-{tag}-{i}", pure=False, retries=retries)
               for i, job in enumerate(jobs)]
    index = {f.key: i for i, f in enumerate(futures)}
    try:
        for fut in as_completed(futures):
            try:
                rec = fut.result()
            except Exception as e:  # noqa: BLE001 - e.g. KilledWorker: the fit took down its workers
                rec = {"status": "lost", "error": f"{type(e).__name__}: {e}"}
            on_record(index[fut.key], rec)
    except BaseException:
        client.cancel(futures)
        raise


class Bar:
    """A tqdm bar (``tqdm.auto``, as runs use: pinncore.progress) of records done / total with
    tqdm's elapsed time, rate and estimate, and the count of failed fits. Live only when the
    stream is a terminal, or, for the default stream (stderr), in a notebook; otherwise it only
    counts, so pipes and logs get nothing.

    >>> import io
    >>> bar = Bar(2, stream=io.StringIO())
    >>> bar(1, 2, {"status": "error"}); bar.close()
    >>> bar.live, bar.failed
    (False, 1)
    """

    def __init__(self, total, stream=None):
        from .progress import Progress
        self.stream = stream if stream is not None else sys.stderr
        self.live = bool(getattr(self.stream, "isatty", lambda: False)()) or (stream is None and Progress.wanted())
        self.total, self.failed = total, 0
        self._bar = None
        if self.live:
            from tqdm.auto import tqdm
            self._bar = tqdm(total=total, desc="sweep", unit="fit", file=self.stream, dynamic_ncols=True)

    def __call__(self, done, total, record):
        if record.get("status") != "completed":
            self.failed += 1
        if self._bar is None:
            return
        if self.failed:
            self._bar.set_postfix(failed=self.failed, refresh=False)
        self._bar.update(done - self._bar.n)

    def close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None
