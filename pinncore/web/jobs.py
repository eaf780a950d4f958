"""Fits and sweeps of the web server: worker processes, jobs, their events, the limits.

A :class:`Pool` keeps ``size`` worker processes (:func:`pinncore.web.worker.worker_main`), one
per fit that may run at once. A :class:`Job` is a fit (one task) or a λ sweep (one task per
(optimizer, λ, seed) point) that holds the workers it was admitted with: a fit holds one, a
sweep up to ``sweep_parallel``. When no worker is free a new job is refused
(:class:`Busy`, answered 429).

Each job keeps the list of its events — ``log`` (a history row), ``point`` (a finished sweep
fit), ``end`` (the summary) — so a stream can start late or resume (``Last-Event-ID``) and see
all of them. A job nobody watches is cancelled: when no stream attaches within
``attach_timeout`` seconds of its start, or ``grace`` seconds after its last stream closed.
Finished jobs are kept (newest ``keep`` of them) for their results.

Everything here runs on the server's event loop thread, except the pool's reader threads,
which only hand messages to the loop (``call_soon_threadsafe``).

>>> job = Job("fit", {}, [({}, {})])
>>> job.push("log", {"step": 0}); job.push("end", {"status": "completed"})
>>> [name for name, _ in job.events], job.state()["tasks"]
(['log', 'end'], 1)
"""
from __future__ import annotations

import asyncio
import multiprocessing
import secrets
import threading
import time
from collections import OrderedDict

from pinncore.verdict import verdict

__all__ = ["Pool", "Job", "Manager", "Busy"]


class Busy(Exception):
    """Every worker is in use: the server runs its limit of fits at once."""


class Worker:
    """One worker process, its pipe and the task it runs (``seq``)."""

    def __init__(self, ctx, index, on_message):
        from .worker import worker_main

        self.index = index
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=worker_main, args=(child,), daemon=True,
                                   name=f"pinncore-web-worker-{index}")
        self.process.start()
        child.close()
        self.job = None        # the job holding this worker
        self.seq = None        # the task it runs (None: idle)
        self.ready = False
        self._on_message = on_message
        self._reader = threading.Thread(target=self._read, daemon=True, name=f"pinncore-web-reader-{index}")
        self._reader.start()

    def _read(self):
        while True:
            try:
                msg = self.conn.recv()
            except (EOFError, OSError):
                self._on_message(self, ("died", None, None))
                return
            self._on_message(self, msg)

    def submit(self, seq, spec):
        self.seq = seq
        try:
            self.conn.send(("fit", seq, spec))
        except (OSError, ValueError):   # the process died: its reader reports it and the task fails
            pass

    def cancel(self):
        if self.seq is not None:
            try:
                self.conn.send(("cancel", self.seq, None))
            except (OSError, ValueError):   # the process died; its reader reports it
                pass

    def stop(self, timeout=2.0):
        try:
            self.conn.send(("stop", None, None))
        except (OSError, ValueError):
            pass
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout)
        self.conn.close()


class Pool:
    """``size`` worker processes (spawned, so no lock or thread is inherited mid-flight)."""

    def __init__(self, size, on_message):
        self.ctx = multiprocessing.get_context("spawn")
        self.on_message = on_message
        self.workers = [Worker(self.ctx, i, on_message) for i in range(size)]

    def free(self):
        return [w for w in self.workers if w.job is None and w.seq is None]

    def replace(self, worker):
        """A fresh process in place of a dead one."""
        i = self.workers.index(worker)
        worker.conn.close()
        self.workers[i] = Worker(self.ctx, worker.index, self.on_message)
        return self.workers[i]

    def close(self):
        for w in self.workers:
            w.stop()


class Job:
    """A fit or a sweep: its tasks, held workers, events and subscribers."""

    def __init__(self, kind, spec, tasks):
        self.id = secrets.token_urlsafe(9)
        self.kind, self.spec = kind, spec
        self.pending = list(tasks)          # (task info, fit spec) not yet dispatched
        self.n_tasks = len(tasks)
        self.running = {}                   # seq -> task info
        self.workers = []
        self.events = []                    # (name, data)
        self.results = []                   # sweep points / the fit summary
        self.status = "running"
        self.summary = None
        self.cancelling = False
        self.created = time.time()
        self.subscribers = 0
        self.timer = None
        self._waiters = []

    @property
    def done(self):
        return self.status != "running"

    def push(self, name, data):
        self.events.append((name, data))
        self.wake()

    def wake(self):
        """Resolve every pending ``wait``."""
        for fut in self._waiters:
            if not fut.done():
                fut.set_result(None)
        self._waiters.clear()

    async def wait(self, index, timeout):
        """Until there are more than ``index`` events, the job ended, ``wake`` (or ``timeout`` s)."""
        if len(self.events) > index or self.done:
            return
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            pass

    def state(self):
        return {"id": self.id, "kind": self.kind, "status": self.status, "events": len(self.events),
                "tasks": self.n_tasks, "finished": len(self.results), "summary": self.summary}


class Manager:
    """Admits, runs, cancels and forgets jobs; see the module docstring for the rules."""

    def __init__(self, max_fits=4, sweep_parallel=2, attach_timeout=15.0, grace=2.0, keep=64):
        self.max_fits, self.sweep_parallel = max_fits, sweep_parallel
        self.attach_timeout, self.grace, self.keep = attach_timeout, grace, keep
        self.jobs = OrderedDict()
        self.loop = None
        self.pool = None
        self._seq = 0
        self._tasks = {}                    # seq -> job
        self.closing = False
        self.stopping = False               # the server is shutting down: streams end now

    async def start(self):
        self.loop = asyncio.get_running_loop()
        self.pool = await self.loop.run_in_executor(None, Pool, self.max_fits, self._from_thread)

    def _from_thread(self, worker, msg):
        try:
            self.loop.call_soon_threadsafe(self._on_message, worker, msg)
        except RuntimeError:   # the loop is closed: the server is shutting down
            pass

    def stop_streams(self):
        """Any thread (or a signal handler): end every open event stream (server shutdown)."""
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._stop_streams)

    def _stop_streams(self):
        self.stopping = True
        for job in self.jobs.values():
            job.wake()

    async def close(self):
        self.closing = True
        for job in list(self.jobs.values()):
            if not job.done:
                self.cancel(job)
        if self.pool is not None:
            await self.loop.run_in_executor(None, self.pool.close)
            self.pool = None

    # ------------------------------------------------------------------ admission

    def submit(self, kind, spec, tasks):
        """A new running job holding one worker (fit) or up to ``sweep_parallel`` (sweep)."""
        free = self.pool.free() if self.pool is not None else []
        if not free:
            raise Busy(f"the server runs {self.max_fits} fits at once and all are in use; "
                       f"try again when one ends")
        job = Job(kind, spec, tasks)
        want = 1 if kind == "fit" else max(1, min(self.sweep_parallel, len(tasks)))
        for w in free[:want]:
            w.job = job
            job.workers.append(w)
        self.jobs[job.id] = job
        job.timer = self.loop.call_later(self.attach_timeout, self._abandoned, job)
        self._dispatch(job)
        return job

    def _dispatch(self, job):
        for w in list(job.workers):
            if w.seq is not None:
                continue
            if job.pending and not job.cancelling:
                info, spec = job.pending.pop(0)
                self._seq += 1
                job.running[self._seq] = info
                self._tasks[self._seq] = job
                w.submit(self._seq, spec)
            else:   # nothing left for it: free it for other clients now
                w.job = None
                job.workers.remove(w)
        if not job.running:
            self._finish(job)

    # ------------------------------------------------------------------ messages from workers

    def _on_message(self, worker, msg):
        kind, seq, data = msg
        if kind == "ready":
            worker.ready = True
            return
        if kind == "died":
            if self.closing or self.pool is None or worker not in self.pool.workers:
                return
            seq, job = worker.seq, worker.job
            new = self.pool.replace(worker)
            if job is not None:
                job.workers[job.workers.index(worker)] = new
                new.job = job
            if seq is not None:
                self._task_end(new, seq, {"status": "failed", "message": "the worker process died"})
            return
        job = self._tasks.get(seq)
        if job is None:
            return
        if kind == "log":
            if job.kind == "fit":
                job.push("log", data)
            return
        self._task_end(worker, seq, data)

    def _task_end(self, worker, seq, data):
        job = self._tasks.pop(seq)
        info = job.running.pop(seq)
        worker.seq = None
        if job.kind == "fit":
            job.summary = data
            job.results.append(data)
        else:
            point = dict(info, status=data.get("status"), rel_l2=data.get("rel_l2"),
                         verdict=data.get("verdict") or verdict(data.get("rel_l2"), data.get("status") or "failed"),
                         wall_time=data.get("wall_time"),
                         cpu_time=data.get("cpu_time"), step=data.get("step"),
                         ratio0=data.get("ratio0"), message=data.get("message", ""))
            job.results.append(point)
            job.push("point", point)
        self._dispatch(job)

    def _finish(self, job):
        if job.done:
            return
        for w in job.workers:
            w.job = None
        job.workers = []
        if job.kind == "fit":
            summary = job.summary or {"status": "cancelled", "message": "cancelled"}
            if job.cancelling and summary.get("status") == "completed":
                summary = dict(summary, status="cancelled")
        else:
            summary = _sweep_summary(job)
        job.summary = summary
        job.status = summary.get("status", "completed")
        if job.timer is not None:
            job.timer.cancel()
            job.timer = None
        job.push("end", {k: v for k, v in summary.items() if k != "solution"})
        self._forget_old()

    def _forget_old(self):
        finished = [j for j in self.jobs.values() if j.done]
        for j in finished[:max(0, len(finished) - self.keep)]:
            del self.jobs[j.id]

    # ------------------------------------------------------------------ cancel and abandonment

    def cancel(self, job):
        if job.done:
            return
        job.cancelling = True
        job.pending.clear()
        for w in job.workers:
            if w.seq is not None:
                w.cancel()
        if not job.running:
            self._finish(job)

    def _abandoned(self, job):
        job.timer = None
        if job.subscribers == 0 and not job.done:
            self.cancel(job)

    def attach(self, job):
        job.subscribers += 1
        if job.timer is not None:
            job.timer.cancel()
            job.timer = None

    def detach(self, job):
        job.subscribers -= 1
        if job.subscribers == 0 and not job.done:
            job.timer = self.loop.call_later(self.grace, self._abandoned, job)

    def running(self):
        return sum(1 for w in (self.pool.workers if self.pool else []) if w.seq is not None)


def _sweep_summary(job):
    """Per optimizer: the median rel-L2 over seeds at each λ and the Goldilocks range
    (the λ with a clean median fit, rel-L2 < 5 %)."""
    import statistics

    per = {}
    for p in job.results:
        per.setdefault(p["optimizer"], {}).setdefault(p["lambda"], []).append(p["rel_l2"])
    curves = {}
    for opt, by_lam in per.items():
        lams = sorted(by_lam)
        med = [statistics.median([e if e is not None else float("inf") for e in by_lam[lam]]) for lam in lams]
        clean_l = [lam for lam, m in zip(lams, med) if verdict(m) == "clean"]
        curves[opt] = {"lambdas": lams, "median_rel_l2": [m if m != float("inf") else None for m in med],
                       "goldilocks": [min(clean_l), max(clean_l)] if clean_l else None}
    status = "cancelled" if job.cancelling else "completed"
    return {"status": status, "points": len(job.results), "requested": job.n_tasks, "curves": curves}
