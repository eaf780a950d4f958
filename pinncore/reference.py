"""The NumPy reference: the same maths as the C++ kernel, written for clarity. The test oracle.

Every function here mirrors one in ``csrc/kernel.hpp`` (docs/design.md §2): a tanh MLP whose
forward pass carries *jets* — the value, the first-order input derivatives in the directions
``first`` and the second-order ``pairs`` — stacked as arrays of shape (S, N, width), so
each layer is one matrix product; and the reverse sweep through the same streams, giving
the parameter gradient and, via the Gram identity, each point's squared gradient norm.

Nothing here is optimised: no chunking, no padding, no threads. Select it with
``pc.MLP(..., backend="numpy")``.

Example
-------
>>> import numpy as np, pinncore as pc
>>> net = pc.MLP([1, 8, 1], seed=0, backend="numpy")
>>> net.derivatives(np.array([[0.5]]), order=2).hess.shape
(1, 1, 1, 1)
"""
from __future__ import annotations

import numpy as np

from .layout import Layout

__all__ = ["NumpyBackend", "unpack", "forward", "backward", "backward_rows", "forward_tangent"]


def unpack(params, widths):
    """Views (W_l, b_l) into the flat parameter vector (``layout.Layout``)."""
    return Layout(widths).unpack(params)


def forward(params, widths, term):
    """Jets of the network outputs: array (S, N, m), and the cache for ``backward``.

    Streams: 0 = value, 1..F = d/dx_first[f], then the pairs (a, b) = d²/dx_first[a]dx_first[b].
    The input jet is (x_hat, scale_k e_k, 0): the scaling x_hat = scale * x + shift is folded
    into the seeds, so every derivative is with respect to the physical input x.
    """
    first, pairs = term.first, term.pairs
    F, P = len(first), len(pairs)
    S, N, d = 1 + F + P, term.xhat.shape[0], term.xhat.shape[1]
    h = np.zeros((S, N, d), dtype=term.xhat.dtype)
    h[0] = term.xhat
    for f, k in enumerate(first):
        h[1 + f, :, k] = term.scale[k]
    layers = unpack(params, widths)
    cache = []
    for l, (W, b) in enumerate(layers):
        z = h @ W.T
        z[0] += b
        if l == len(layers) - 1:
            cache.append((h, None, None))
            return z, cache
        # σ = tanh: σ' = 1 - h², σ'' = -2hσ'  (docs/design.md §2); σ' as sech² (see _sech2).
        t = np.tanh(z[0])
        s1 = _sech2(z[0])
        s2 = -2 * t * s1
        hn = np.empty_like(z)
        hn[0] = t
        hn[1:1 + F] = s1 * z[1:1 + F]
        for p, (a, c) in enumerate(pairs):
            hn[1 + F + p] = s2 * z[1 + a] * z[1 + c] + s1 * z[1 + F + p]
        cache.append((h, z, t))
        h = hn
    raise AssertionError("unreachable")


def _sech2(z):
    """1 - tanh(z)² as 1/cosh(z)²: no cancellation where tanh saturates, and analytic (the
    tests differentiate the reference by complex steps). cosh overflows to inf past |z| ≈ 710,
    where 1/inf² = 0 is the right answer."""
    with np.errstate(over="ignore"):
        c = np.cosh(z)
        return 1 / (c * c)


def _adjoint_activate(hbar, z, t, first, pairs):
    """z̄ from h̄ through one tanh layer's jet map (docs/design.md §2)."""
    F = len(first)
    s1 = _sech2(z[0])
    s2 = -2 * t * s1
    s3 = -2 * s1 * (1 - 3 * t * t)
    zbar = np.empty_like(hbar)
    zbar[0] = s1 * hbar[0]
    zbar[1:] = s1 * hbar[1:]
    for f in range(F):
        zbar[0] += s2 * z[1 + f] * hbar[1 + f]
    for p, (a, c) in enumerate(pairs):
        hp = hbar[1 + F + p]
        zbar[0] += (s3 * z[1 + a] * z[1 + c] + s2 * z[1 + F + p]) * hp
        zbar[1 + a] += s2 * z[1 + c] * hp
        zbar[1 + c] += s2 * z[1 + a] * hp  # a == c: both lines together give 2 s2 z_a h̄_aa
    return zbar


def backward(params, widths, term, cache, adjoint, want_grad=True, want_norms=False):
    """Parameter gradient of <adjoint, jets> and per-point squared gradient norms.

    Per point i the weight gradient of a layer is Σ_s z̄_s,i h_s,iᵀ, so its squared Frobenius
    norm is Σ_{s,t} (z̄_s·z̄_t)(h_s·h_t): an S×S Gram product, no per-point backward pass.
    """
    layers = unpack(params, widths)
    grad = np.zeros_like(params)
    glayers = unpack(grad, widths)
    norms = np.zeros(term.xhat.shape[0], dtype=params.dtype)
    zbar = adjoint
    for l in range(len(layers) - 1, -1, -1):
        W, _ = layers[l]
        h, _, _ = cache[l]
        if want_grad:
            gW, gb = glayers[l]
            gW += np.einsum("sno,sni->oi", zbar, h)
            gb += zbar[0].sum(axis=0)
        if want_norms:
            gz = np.einsum("sno,tno->nst", zbar, zbar)
            gh = np.einsum("sni,tni->nst", h, h)
            norms += (gz * gh).sum(axis=(1, 2)) + (zbar[0] ** 2).sum(axis=1)
        if l > 0:
            hbar = zbar @ W
            _, z, t = cache[l - 1]
            zbar = _adjoint_activate(hbar, z, t, term.first, term.pairs)
    return grad, norms


def table_residuals(term, jets):
    """r (C, N): r_c = Σ_m coef_m Π_f J[stream_f, :, out_f]."""
    r = np.zeros((term.components, jets.shape[1]), dtype=jets.dtype)
    for m in range(len(term.comp)):
        v = term.coef[m].copy()
        for f in range(term.fac_off[m], term.fac_off[m + 1]):
            v *= jets[term.fac_stream[f], :, term.fac_out[f]]
        r[term.comp[m]] += v
    return r


def table_adjoint(term, jets, seed):
    """Σ_c seed_c ∂r_c/∂J for a per-component, per-point seed (C, N): the output-jet adjoint."""
    jbar = np.zeros_like(jets)
    for m in range(len(term.comp)):
        lo, hi = term.fac_off[m], term.fac_off[m + 1]
        for f in range(lo, hi):
            v = seed[term.comp[m]] * term.coef[m]
            for g in range(lo, hi):
                if g != f:
                    v = v * jets[term.fac_stream[g], :, term.fac_out[g]]
            jbar[term.fac_stream[f], :, term.fac_out[f]] += v
    return jbar


class NumpyBackend:
    """The reference backend: same interface as the compiled one (see backend.CppBackend)."""

    name = "numpy"

    def __init__(self, widths, dtype):
        self.widths = list(widths)
        self.dtype = np.dtype(dtype)

    def jets(self, params, term):
        return forward(params, self.widths, term)[0]

    def vjp(self, params, term, adjoint, want_norms=False):
        _, cache = forward(params, self.widths, term)
        return backward(params, self.widths, term, cache, adjoint, want_grad=True, want_norms=want_norms)

    def losses_grads(self, params, terms, point_weights, want_residuals=False):
        losses = np.zeros(len(terms))
        grads = np.zeros((len(terms), params.size), dtype=params.dtype)
        residuals = []
        for a, (term, w) in enumerate(zip(terms, point_weights)):
            jets, cache = forward(params, self.widths, term)
            r = table_residuals(term, jets)
            n = jets.shape[1]
            w = np.ones(n, dtype=params.dtype) if w is None else w
            losses[a] = float((w * r.astype(np.float64) ** 2).sum() / n) if n else 0.0
            seed = 2 * w * r / max(n, 1)
            grads[a] = backward(params, self.widths, term, cache, table_adjoint(term, jets, seed))[0]
            residuals.append(r)
        return losses, grads, (residuals if want_residuals else None)

    def step_function(self, params, terms):
        """``f(point_weights, residuals)`` at ``params`` (updated in place), as ``backend.StepFunction``."""
        ones = [None] * len(terms)
        return lambda pw, residuals: self.losses_grads(params, terms, ones if pw is None else pw, residuals)

    def ntk_norms(self, params, terms):
        out = []
        for term in terms:
            jets, cache = forward(params, self.widths, term)
            norms = np.zeros(jets.shape[1], dtype=params.dtype)
            for c in range(term.components):
                seed = np.zeros((term.components, jets.shape[1]), dtype=params.dtype)
                seed[c] = 1
                norms += backward(params, self.widths, term, cache, table_adjoint(term, jets, seed),
                                  want_grad=False, want_norms=True)[1]
            out.append(norms)
        return out

    # -- residual Jacobian (twin of csrc/jacobian.hpp) --
    def jacobian_rows(self, params, term, scale=None, adjoint=None, begin=0, end=None):
        """``(r, J)`` rows of points [begin, end): row c*nb + i (see backend.CppBackend.jacobian_rows)."""
        end = term.xhat.shape[0] if end is None else end
        jets, cache = forward(params, self.widths, term)
        N = jets.shape[1]
        if adjoint is None:
            K = term.components
            s = np.ones(N, dtype=params.dtype) if scale is None else scale
            r = (table_residuals(term, jets) * s)[:, begin:end].reshape(-1)
            adjoints = []
            for c in range(K):
                seed = np.zeros((K, N), dtype=params.dtype)
                seed[c] = s
                adjoints.append(table_adjoint(term, jets, seed))
        else:
            adjoints = list(adjoint)
            r = np.zeros(len(adjoints) * (end - begin), dtype=params.dtype)
        J = np.concatenate([backward_rows(params, self.widths, term, cache, a)[begin:end] for a in adjoints]) \
            if adjoints else np.zeros((0, params.size), dtype=params.dtype)
        return r, J

    def residual_jacobian(self, params, terms, scales, out=None, want_jacobian=True):
        """Stacked ``(r, J)`` of several polynomial terms (see backend.CppBackend.residual_jacobian)."""
        if not want_jacobian:
            parts = [(table_residuals(t, forward(params, self.widths, t)[0]) * s).reshape(-1)
                     for t, s in zip(terms, scales)]
            return (np.concatenate(parts) if parts else np.zeros(0, params.dtype)), None
        parts = [self.jacobian_rows(params, t, s) for t, s in zip(terms, scales)]
        r = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, params.dtype)
        J = np.concatenate([p[1] for p in parts]) if parts else np.zeros((0, params.size), params.dtype)
        if out is not None:
            out[:, :J.shape[1]] = J
            J = out
        return r, J

    def jets_tangent(self, params, term, v):
        """``(jets, tangents)``: output jets and their derivative along v (see ``forward_tangent``)."""
        return forward_tangent(params, self.widths, term, v)


# ---------------------------------------------------------------- residual Jacobian rows and tangents
def backward_rows(params, widths, term, cache, adjoint):
    """Per-point parameter gradients of <adjoint_i, jets_i>: array (N, n_params).

    The same reverse sweep as ``backward``, but each layer keeps point i's own outer product
    Σ_s z̄_s,i h_s,iᵀ (and z̄_0,i for the bias) instead of summing it over the points.
    """
    layers = unpack(params, widths)
    N = term.xhat.shape[0]
    rows = np.zeros((N, params.size), dtype=params.dtype)
    off = np.cumsum([0] + [W.size + b.size for W, b in layers])
    zbar = adjoint
    for l in range(len(layers) - 1, -1, -1):
        W, b = layers[l]
        h, _, _ = cache[l]
        gW = np.einsum("sno,sni->noi", zbar, h).reshape(N, -1)
        rows[:, off[l]:off[l] + W.size] = gW
        rows[:, off[l] + W.size:off[l + 1]] = zbar[0]
        if l > 0:
            _, z, t = cache[l - 1]
            zbar = _adjoint_activate(zbar @ W, z, t, term.first, term.pairs)
    return rows


def forward_tangent(params, widths, term, v):
    """Output jets (S, N, m) and their derivative along the parameter direction v (S, N, m).

    Forward tangents through the jet map (csrc/jacobian.hpp, ``tangent_activate``):
    ż = W ḣ + V h (+ ḃ on the value); ḣ = s1 ż, ḣ_f = s2 ż z_f + s1 ż_f,
    ḣ_ab = s3 ż z_a z_b + s2 (ż_a z_b + z_a ż_b + ż z_ab) + s1 ż_ab.
    """
    first, pairs = term.first, term.pairs
    F = len(first)
    jets, cache = forward(params, widths, term)
    hd = np.zeros_like(cache[0][0])
    layers, vlayers = unpack(params, widths), unpack(np.asarray(v, dtype=params.dtype), widths)
    for l, ((W, b), (Wd, bd)) in enumerate(zip(layers, vlayers)):
        h = cache[l][0]
        zd = hd @ W.T + h @ Wd.T
        zd[0] += bd
        if l == len(layers) - 1:
            return jets, zd
        _, z, t = cache[l]
        s1 = _sech2(z[0])
        s2 = -2 * t * s1
        s3 = -2 * s1 * (1 - 3 * t * t)
        hd = np.empty_like(zd)
        hd[0] = s1 * zd[0]
        hd[1:1 + F] = s2 * zd[0] * z[1:1 + F] + s1 * zd[1:1 + F]
        for p, (a, c) in enumerate(pairs):
            q = 1 + F + p
            hd[q] = (s3 * zd[0] * z[1 + a] * z[1 + c]
                     + s2 * (zd[1 + a] * z[1 + c] + z[1 + a] * zd[1 + c] + zd[0] * z[q]) + s1 * zd[q])
    raise AssertionError("unreachable")
