"""The one boundary to the compiled kernel: the only module that imports ``pinncore._core``.

It owns the kernel's thread count, the compiled twins of the term data (``compile_term``),
the compiled backend of a network (``CppBackend``: jets, vector-Jacobian products, fused
losses and gradients, per-point NTK norms; plain, embedded or modified — ``embedding.NetSpec``) and the fused Adam update (``adam_step``).
Everything above it — the network, the problem, the optimizers, the benchmarks — calls
these functions; nothing else touches ``_core``. The kernel's maths is docs/design.md §2.

>>> import pinncore.backend as backend
>>> backend.set_num_threads(1); backend.get_num_threads()
1
"""
from __future__ import annotations

import contextlib
import os
import threading

import numpy as np

try:
    from . import _core
except ImportError:  # pragma: no cover - exercised by a subprocess test (tests/test_cli.py)
    _here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # "from None": the explanation alone, without the chained "partially initialized module ...
    # (most likely due to a circular import)" traceback of the failed relative import above it.
    raise ImportError(
        f"pinncore's compiled kernel (pinncore._core) is not built here: Python imported the source tree "
        f"{_here}. Install the package (`pip install .`, or `pip install -e .` to develop in place) and run "
        f"from outside the repository root.") from None

__all__ = ["set_num_threads", "get_num_threads", "blas_threads", "compile_term", "CppBackend", "adam_step", "MAX_THREADS"]

_threads = {"n": 1}
# More threads than this only cost: each call splits its points over them, and 100 000 of them
# exhausted the process's thread limit ("Resource temporarily unavailable") in a later call.
# Counts above the core count stay allowed (results are reproducible per count, machine to machine).
MAX_THREADS = max(256, 4 * (os.cpu_count() or 1))
_lock = threading.Lock()


def set_num_threads(n):
    """Threads the compiled kernel may use per call (points are split in fixed ranges, so
    results are identical run to run for a given count).

    >>> import pinncore as pc
    >>> pc.set_num_threads(1); pc.get_num_threads()
    1
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if n > MAX_THREADS:
        raise ValueError(f"n must be at most {MAX_THREADS} threads (this machine has {os.cpu_count()} cores), "
                         f"got {n}")
    with _lock:
        _threads["n"] = int(n)


def get_num_threads():
    """The thread count set by ``set_num_threads`` (default 1).

    >>> import pinncore as pc
    >>> pc.get_num_threads() >= 1
    True
    """
    return _threads["n"]


def blas_threads():
    """A context that runs NumPy/SciPy's BLAS on ``get_num_threads()`` threads, when threadpoolctl
    is installed (``pip install threadpoolctl``; otherwise a no-op).

    Why: the dense solves of second-order methods (LM's Cholesky, Gram products) are small
    enough that an OpenBLAS pool on more threads than the machine has free cores spins itself
    to a standstill — measured here, a 700×700 Cholesky took 1.9 s on 2 BLAS threads on a loaded
    2-core machine and 31 ms on one. Sweep workers and servers run many fits side by side.

    >>> with blas_threads():
    ...     pass
    """
    ctl = _blas_controller()
    return contextlib.nullcontext() if ctl is None else _BlasLimit(ctl, get_num_threads())


class _BlasLimit:
    """Caps each BLAS library's pool at n threads for the block and restores what it changed:
    a few ctypes calls (~2 µs), where ``ThreadpoolController.limit`` re-reads every library's
    state (~0.1 ms, a tenth of a seed-sized LM iteration)."""

    __slots__ = ("libs", "n", "saved")

    def __init__(self, ctl, n):
        self.libs = [c for c in ctl.lib_controllers if c.user_api == "blas"]
        self.n, self.saved = n, []

    def __enter__(self):
        for c in self.libs:
            old = c.get_num_threads()
            if old is not None and old > self.n:
                c.set_num_threads(self.n)
                self.saved.append((c, old))
        return self

    def __exit__(self, *exc):
        for c, old in reversed(self.saved):
            c.set_num_threads(old)
        self.saved = []
        return False


_controller = {}


def _blas_controller():
    """threadpoolctl's controller, built once: building one scans the process's loaded libraries
    (/proc/self/maps), ~0.9 ms — more than half of a seed-sized LM iteration when done per call;
    limiting through a built controller costs ~10 µs. None without threadpoolctl."""
    if "ctl" not in _controller:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _controller["ctl"] = None
        else:
            import scipy.linalg  # noqa: F401  (load SciPy's BLAS before the scan, so it is seen)
            _controller["ctl"] = ThreadpoolController()
    return _controller["ctl"]


def compile_term(term, dtype):
    """The ``_core.Term`` twin of a ``network.TermData`` in ``dtype`` (the points are copied in).

    >>> import numpy as np
    >>> from pinncore.network import TermData
    >>> td = TermData.build(np.zeros((3, 1)), [1.0], [0.0], [], [], np.float64)
    >>> type(compile_term(td, np.float64)).__name__
    'Term64'
    """
    cls = _core.Term64 if np.dtype(dtype) == np.float64 else _core.Term32
    return cls(np.ascontiguousarray(term.xhat, dtype=dtype), np.ascontiguousarray(term.scale, dtype=dtype),
               np.asarray(term.first, np.int32), np.asarray(term.pairs, np.int32).reshape(-1, 2),
               int(term.components), np.asarray(term.comp, np.int32), np.asarray(term.fac_off, np.int32),
               np.asarray(term.fac_stream, np.int32), np.asarray(term.fac_out, np.int32),
               np.ascontiguousarray(term.coef, dtype=dtype))


class CppBackend:
    """The compiled kernel for one network shape and dtype. Holds a workspace; calls are
    serialised per backend object inside C++ and run with the GIL released.

    >>> import numpy as np
    >>> from pinncore.network import TermData
    >>> be = CppBackend([1, 4, 1], np.float64)
    >>> td = TermData.build(np.zeros((2, 1)), [1.0], [0.0], [], [], np.float64)
    >>> be.jets(np.zeros(13), td).shape
    (1, 2, 1)
    """

    name = "cpp"

    def __init__(self, widths, dtype):
        self.dtype = np.dtype(dtype)
        cls = _core.Model64 if self.dtype == np.float64 else _core.Model32
        spec = getattr(widths, "dense", None) and widths  # an embedding.NetSpec, or a list of widths
        self.spec = spec
        if spec is None:
            self.model = cls(list(widths))
        else:
            emb = spec.embedding
            self.model = cls(list(spec.layers), modified=spec.modified,
                             B=None if emb is None else np.ascontiguousarray(spec.B, dtype=self.dtype),
                             trainable=bool(emb is not None and emb.trainable), passthrough=list(spec.passthrough))

    def jets(self, params, term):
        return self.model.jets(params, term.compiled(self.dtype), get_num_threads())

    def vjp(self, params, term, adjoint, want_norms=False):
        return self.model.vjp(params, term.compiled(self.dtype), adjoint, want_norms, get_num_threads())

    def losses_grads(self, params, terms, point_weights, want_residuals=False):
        return self.model.losses_grads(params, [t.compiled(self.dtype) for t in terms], list(point_weights),
                                       want_residuals, get_num_threads())

    def ntk_norms(self, params, terms):
        return self.model.ntk_norms(params, [t.compiled(self.dtype) for t in terms], get_num_threads())

    def step_function(self, params, terms):
        """A ``StepFunction`` over ``params`` (updated in place by the optimizer) and ``terms``."""
        return StepFunction(self.model, params, [t.compiled(self.dtype) for t in terms])

    # -- residual Jacobian (csrc/jacobian.hpp) --
    # Rows come from the kernel for every architecture (its backward visitor sees each parameter
    # block: dense chain, encoders, embedding). The forward tangents (J v) follow the plain chain
    # only; for an input embedding or the modified MLP they come from the NumPy twin: ``_twin``.
    def _twin(self):
        if getattr(self, "_ref", None) is None:
            from .reference import NumpyBackend
            self._ref = NumpyBackend(self.spec, self.dtype)
        return self._ref

    def residual_jacobian(self, params, terms, scales, out=None, want_jacobian=True):
        """Stacked ``(r, J)`` of polynomial terms over all their points: rows (term, component,
        point), each row scaled by ``scales[a][i]``; ``out`` (rows, n_params) may supply J's storage.
        ``want_jacobian=False``: ``(r, None)`` from the forward pass alone."""
        return _core.residual_jacobian(self.model, params, [t.compiled(self.dtype) for t in terms], list(scales), out,
                                       want_jacobian, get_num_threads())

    def jacobian_rows(self, params, term, scale=None, adjoint=None, begin=0, end=None):
        """``(r, J)`` of one term's points [begin, end), row c*nb + i: from the polynomial table
        (rows scaled by ``scale``) or, with ``adjoint`` (K, S, N, m), ∂<adjoint_k, jets>/∂θ per point."""
        t = term.compiled(self.dtype)
        return _core.jacobian_rows(self.model, params, t, scale, adjoint, int(begin), t.n if end is None else int(end),
                                   get_num_threads())

    def normal_equations(self, params, sources, A, g, n_extra=0, chunk_rows=512, r_out=None):
        """JᵀJ into ``A`` and Jᵀr into ``g`` (float64, (P+n_extra)² and (P+n_extra,), written in
        place) accumulated by the kernel over chunks of ``chunk_rows`` rows; returns rᵀr.

        ``sources``: one tuple ``(term, scale, adjoint, paired, r, extra)`` per term — table mode
        (``adjoint`` None: residuals from the term's table, rows scaled by ``scale`` (N,)) or
        adjoint mode (``adjoint`` (K, S, N, m), scale folded in, residuals ``r`` (K, rows per
        component) given); ``paired`` M > 0 makes row j the difference of points j and M + j;
        ``extra`` (rows, n_extra) float64 or None: columns appended after θ. ``r_out`` (rows,)
        of the network's dtype receives r."""
        cs = [s[0].compiled(self.dtype) for s in sources]
        return _core.normal_equations(self.model, params, cs, [s[1] for s in sources], [s[2] for s in sources],
                                      [int(s[3]) for s in sources], [s[4] for s in sources], [s[5] for s in sources],
                                      int(n_extra), int(chunk_rows), A, g, r_out, get_num_threads())

    def jets_tangent(self, params, term, v):
        """``(jets, tangents)``: output jets (S, N, m) and their derivative along the direction v."""
        if self.spec is not None:
            return self._twin().jets_tangent(params, term, v)
        return _core.jets_tangent(self.model, params, term.compiled(self.dtype), v, get_num_threads())


class StepFunction:
    """``f(point_weights, residuals) -> (losses, grads, res)`` at fixed ``params`` storage: the
    trainer's per-step call with every conversion hoisted out (one call into the kernel)."""

    __slots__ = ("model", "params", "terms", "ones")

    def __init__(self, model, params, terms):
        self.model, self.params, self.terms = model, params, terms
        self.ones = [None] * len(terms)

    def __call__(self, point_weights, residuals):
        return self.model.losses_grads(self.params, self.terms, self.ones if point_weights is None else point_weights,
                                       residuals, _threads["n"])


# The fused Adam update in place (see ``optim.Adam.update``): g = Σ_a weights[a] grads[a];
# returns False, changing nothing, when a gradient entry is not finite. Bound directly (no
# Python wrapper): it runs every training step.
adam_step = _core.adam_step

