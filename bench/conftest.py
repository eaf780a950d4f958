"""Shared fixtures for the pinncore benchmarks (pytest-benchmark).

Run (timings on; unset the OpenBLAS overrides for this command only):

    pip install . && env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \\
        pytest bench -q -p no:cacheprovider --benchmark-enable

from the repository root (``pytest``, not ``python -m pytest``: the installed package is measured).

With ``--benchmark-disable`` (pyproject's default) every benchmark body runs once, so the suite
doubles as a correctness check (each test asserts C++ == NumPy reference before timing).
Speed is never asserted here (docs/design.md §6): the figures go to bench/README.md.
"""
from __future__ import annotations

import pytest

import pinncore as pc


try:
    import threadpoolctl
except ImportError:  # NumPy's BLAS then uses its process default thread count
    threadpoolctl = None


@pytest.fixture(autouse=True)
def one_thread():
    """Every benchmark starts on one kernel thread and one BLAS thread (tests that want two
    ask for it) and leaves one behind."""
    pc.set_num_threads(1)
    ctx = threadpoolctl.threadpool_limits(limits=1, user_api="blas") if threadpoolctl else None
    yield
    if ctx is not None:
        ctx.restore_original_limits()
    pc.set_num_threads(1)
