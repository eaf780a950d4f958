"""Shared fixtures for the pinncore benchmarks (pytest-benchmark).

Run (timings on; unset the OpenBLAS overrides for this command only):

    cd /work/main && env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \\
        PYTHONPATH=/work/main python -m pytest bench -q -p no:cacheprovider --benchmark-enable

With ``--benchmark-disable`` (pyproject's default) every benchmark body runs once, so the suite
doubles as a correctness check (each test asserts C++ == NumPy reference before timing).
Speed is never asserted here (DESIGN §5): the figures go to bench/README.md.
"""
from __future__ import annotations

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import pinncore as pc  # noqa: E402


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
