"""Helpers shared by the benchmark modules (imported as ``_util``; bench/ is on sys.path
under pytest's default import mode)."""
from __future__ import annotations

import numpy as np

import pinncore as pc
from pinncore.network import TermData


def rel_err(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    s = np.max(np.abs(b)) if b.size else 0.0
    return float(np.max(np.abs(a - b)) / (s if s > 0 else 1.0)) if a.size else 0.0


def net_pair(layers, dtype=np.float64, seed=0):
    """(C++ net, NumPy net) with the same Xavier weights and non-zero biases."""
    a = pc.MLP(layers, seed=seed, dtype=dtype, backend="cpp")
    rng = np.random.default_rng(seed + 100)
    for blk in a.layout.blocks:
        if not blk.is_weight:
            a.params[blk.offset:blk.offset + blk.size] = rng.normal(0.0, 0.3, blk.size).astype(dtype)
    b = pc.MLP(layers, seed=seed, dtype=dtype, backend="numpy")
    b.params[:] = a.params
    return a, b


def stream_term(x, first, pairs, dtype=np.float64):
    """A TermData over points x (in [-1, 1]) carrying the given streams, with the simplest
    residual table: one component per stream, r_s = J_s (loss = Σ_s mean J_s²)."""
    S = 1 + len(first) + len(pairs)
    N = x.shape[0]
    d = x.shape[1]
    return TermData.build(x, np.ones(d), np.zeros(d), first, pairs, dtype, components=S,
                          comp=np.arange(S, dtype=np.int32), fac_off=np.arange(S + 1, dtype=np.int32),
                          fac_stream=np.arange(S, dtype=np.int32), fac_out=np.zeros(S, dtype=np.int32),
                          coef=np.ones((S, N)))
