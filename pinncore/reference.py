"""The NumPy reference: the same maths as the C++ kernel, written for clarity. The test oracle.

Every function here mirrors one in ``csrc/kernel.hpp`` (docs/design.md §2): a tanh MLP whose
forward pass carries *jets* — the value, the first-order input derivatives in the directions
``first`` and the second-order ``pairs`` — stacked as arrays of shape (S, N, width), so
each layer is one matrix product; and the reverse sweep through the same streams, giving
the parameter gradient and, via the Gram identity, each point's squared gradient norm.

The same functions evaluate the input embeddings (``embed_forward``/``embed_backward``: Fourier
features and the periodic embedding) and the modified MLP (``forward`` with an
``embedding.NetSpec``), whose gate h = U + z ⊙ (V − U) carries jets by the Leibniz rule.

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

__all__ = ["NumpyBackend", "unpack", "forward", "backward", "backward_rows", "forward_tangent",
           "embed_forward", "embed_backward"]


def _spec(widths):
    """A ``NetSpec`` from a spec or a plain list of layer widths (the seed network)."""
    from .embedding import NetSpec
    return widths if isinstance(widths, NetSpec) else NetSpec(list(widths))


def unpack(params, widths):
    """Views (W_l, b_l) of the dense chain in the flat parameter vector: W_l (out x in,
    row-major), then b_l (``widths``: a list of layer widths or an ``embedding.NetSpec``;
    the layout is ``layout.Layout``'s)."""
    return _spec(widths).unpack(params)


def input_jet(term, dtype):
    """The raw input jet (S, N, d): (x_hat, scale_k e_k, 0) — the scaling x_hat = scale*x + shift
    folded into the seeds, so every derivative is with respect to the physical input x."""
    first, pairs = term.first, term.pairs
    S, N, d = 1 + len(first) + len(pairs), term.xhat.shape[0], term.xhat.shape[1]
    h = np.zeros((S, N, d), dtype=dtype)
    h[0] = term.xhat
    for f, k in enumerate(first):
        h[1 + f, :, k] = term.scale[k]
    return h


def frequencies(spec, params):
    """Ω = 2πB (M, d) in the params' dtype: the phase a = Ω x̂ of the network input."""
    B = spec.views(params)["B"] if spec.trainable_embedding else spec.B.astype(params.dtype)
    return params.dtype.type(2 * np.pi) * B


def embed_forward(spec, params, term):
    """The embedding's output jet (S, N, E) = [cos a, sin a, x̂_pass] and the cache for
    ``embed_backward``. a = Ω x̂ is linear, so a_f = Ω[:, k_f] scale_{k_f} is the same at
    every point and a_ab = 0: γ_f = [−sin a, cos a] a_f, γ_ab = −[cos a, sin a] a_a a_b."""
    first, pairs = term.first, term.pairs
    F = len(first)
    h = input_jet(term, params.dtype)
    om = frequencies(spec, params)
    M = om.shape[0]
    a0 = term.xhat @ om.T
    af = np.array([om[:, k] * term.scale[k] for k in first], dtype=params.dtype).reshape(F, M)
    c, s = np.cos(a0), np.sin(a0)
    S, N = h.shape[0], h.shape[1]
    E = np.zeros((S, N, 2 * M + len(spec.passthrough)), dtype=params.dtype)
    E[0, :, :M], E[0, :, M:2 * M] = c, s
    for f in range(F):
        E[1 + f, :, :M], E[1 + f, :, M:2 * M] = -s * af[f], c * af[f]
    for p, (a, b) in enumerate(pairs):
        t = af[a] * af[b]
        E[1 + F + p, :, :M], E[1 + F + p, :, M:2 * M] = -c * t, -s * t
    E[:, :, 2 * M:] = h[:, :, spec.passthrough]
    return E, (c, s, af, M)


def embed_backward(term, cache, ebar):
    """(gB, per-point squared norms) of a trainable Fourier embedding from the output-jet
    adjoint ebar (S, N, E): ā from the cos/sin jets, then dΩ/dB = 2π."""
    c, s, af, M = cache
    first, pairs = term.first, term.pairs
    F = len(first)
    cb, sb = ebar[:, :, :M], ebar[:, :, M:2 * M]
    a0bar = -s * cb[0] + c * sb[0]
    afbar = [-s * cb[1 + f] + c * sb[1 + f] for f in range(F)]
    for f in range(F):
        a0bar += af[f] * (-c * cb[1 + f] - s * sb[1 + f])
    for p, (a, b) in enumerate(pairs):
        cp, sp = cb[1 + F + p], sb[1 + F + p]
        a0bar += (af[a] * af[b]) * (s * cp - c * sp)
        w = -c * cp - s * sp
        afbar[a] = afbar[a] + af[b] * w
        afbar[b] = afbar[b] + af[a] * w  # a == b: both lines together give 2 a_a w
    # Per point: dΩ_i = ā_0,i x̂_iᵀ + Σ_f ā_f,i scale_{k_f} e_{k_f}ᵀ  (N, M, d).
    per = a0bar[:, :, None] * term.xhat[:, None, :]
    for f, k in enumerate(first):
        per[:, :, k] += afbar[f] * term.scale[k]
    per = per * per.dtype.type(2 * np.pi)
    return per.sum(axis=0), (per * per).sum(axis=(1, 2))


def _tanh_jet(z, first, pairs):
    """h = tanh z through the jet map: h_f = σ' z_f, h_ab = σ'' z_a z_b + σ' z_ab."""
    F = len(first)
    # σ = tanh: σ' = 1 - h², σ'' = -2hσ'  (docs/design.md §2); σ' as sech² (see _sech2).
    t = np.tanh(z[0])
    s1 = _sech2(z[0])
    s2 = -2 * t * s1
    hn = np.empty_like(z)
    hn[0] = t
    hn[1:1 + F] = s1 * z[1:1 + F]
    for p, (a, c) in enumerate(pairs):
        hn[1 + F + p] = s2 * z[1 + a] * z[1 + c] + s1 * z[1 + F + p]
    return hn, t


def _prod_jet(g, D, first, pairs):
    """The jet of the product g ⊙ D by the Leibniz rule:
    (gD)_f = g_f D + g D_f,  (gD)_ab = g_ab D + g_a D_b + g_b D_a + g D_ab."""
    F = len(first)
    out = np.empty_like(g)
    out[0] = g[0] * D[0]
    for f in range(F):
        out[1 + f] = g[1 + f] * D[0] + g[0] * D[1 + f]
    for p, (a, b) in enumerate(pairs):
        q = 1 + F + p
        out[q] = g[q] * D[0] + g[1 + a] * D[1 + b] + g[1 + b] * D[1 + a] + g[0] * D[q]
    return out


def _prod_adjoint(obar, other, first, pairs):
    """The adjoint of one factor of ``_prod_jet`` given the other factor's jet (symmetric)."""
    F = len(first)
    xbar = other[0] * obar
    for f in range(F):
        xbar[0] += other[1 + f] * obar[1 + f]
    for p, (a, b) in enumerate(pairs):
        q = 1 + F + p
        xbar[0] += other[q] * obar[q]
        xbar[1 + a] += other[1 + b] * obar[q]
        xbar[1 + b] += other[1 + a] * obar[q]
    return xbar


def forward(params, widths, term):
    """Jets of the network outputs: array (S, N, m), and the cache for ``backward``.

    Streams: 0 = value, 1..F = d/dx_first[f], then the pairs (a, b) = d²/dx_first[a]dx_first[b].
    ``widths``: a list of layer widths (the plain tanh MLP) or an ``embedding.NetSpec`` (input
    embedding, modified MLP: h ← U + z ⊙ (V − U), Wang, Teng & Perdikaris 2021, eq. 2.36–2.38).
    """
    spec = _spec(widths)
    first, pairs = term.first, term.pairs
    blocks = spec.views(params)
    cache = {"emb": None, "layers": [], "enc": []}
    if spec.embedding is not None:
        h, cache["emb"] = embed_forward(spec, params, term)
    else:
        h = input_jet(term, params.dtype)
    cache["h0"] = h
    if spec.modified:
        for name in ("u", "v"):
            z = h @ blocks[f"W{name}"].T
            z[0] += blocks[f"b{name}"]
            g, t = _tanh_jet(z, first, pairs)
            cache["enc"].append((z, t, g))
        U, V = cache["enc"][0][2], cache["enc"][1][2]
        D = V - U
        cache["D"] = D
    L = len(spec.dense) - 1
    for l in range(1, L + 1):
        z = h @ blocks[f"W{l - 1}"].T
        z[0] += blocks[f"b{l - 1}"]
        if l == L:
            cache["layers"].append((h, None, None, None))
            return z, cache
        g, t = _tanh_jet(z, first, pairs)
        cache["layers"].append((h, z, t, g))
        h = U + _prod_jet(g, D, first, pairs) if spec.modified else g
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


def _dense_adjoint(zbar, h, gW, gb, norms, want_grad, want_norms):
    """One dense block's gradient and, by the Gram identity, its per-point squared norms:
    per point i the weight gradient is Σ_s z̄_s,i h_s,iᵀ, so ‖·‖² = Σ_{s,t} (z̄_s·z̄_t)(h_s·h_t)."""
    if want_grad:
        gW += np.einsum("sno,sni->oi", zbar, h)
        gb += zbar[0].sum(axis=0)
    if want_norms:
        gz = np.einsum("sno,tno->nst", zbar, zbar)
        gh = np.einsum("sni,tni->nst", h, h)
        norms += (gz * gh).sum(axis=(1, 2)) + (zbar[0] ** 2).sum(axis=1)


def backward(params, widths, term, cache, adjoint, want_grad=True, want_norms=False):
    """Parameter gradient of <adjoint, jets> and per-point squared gradient norms.

    Every dense block (the chain, the encoders W_u, W_v) enters as W·(input jet), so its
    per-point norm is an S×S Gram product (``_dense_adjoint``); the gate h = U + z ⊙ (V − U)
    sends h̄ to z̄ and D̄ = V̄ = −(Ū − h̄) by the product rule; a trainable B is done directly.
    """
    spec = _spec(widths)
    first, pairs = term.first, term.pairs
    blocks = spec.views(params)
    grad = np.zeros_like(params)
    gblocks = spec.views(grad)
    norms = np.zeros(term.xhat.shape[0], dtype=params.dtype)
    L = len(spec.dense) - 1
    if spec.modified:
        Ubar = np.zeros_like(cache["enc"][0][2])
        Vbar = np.zeros_like(Ubar)
    zbar = adjoint
    h0bar = None
    for l in range(L, 0, -1):
        h = cache["layers"][l - 1][0]
        _dense_adjoint(zbar, h, gblocks[f"W{l - 1}"], gblocks[f"b{l - 1}"], norms, want_grad, want_norms)
        if l == 1 and not (spec.modified or spec.trainable_embedding):
            break
        hbar = zbar @ blocks[f"W{l - 1}"]
        if l == 1:
            h0bar = hbar
            break
        _, z, t, g = cache["layers"][l - 2]
        if spec.modified:
            Dbar = _prod_adjoint(hbar, g, first, pairs)
            Ubar += hbar - Dbar
            Vbar += Dbar
            hbar = _prod_adjoint(hbar, cache["D"], first, pairs)
        zbar = _adjoint_activate(hbar, z, t, first, pairs)
    if spec.modified:
        for name, bar, (z, t, _) in (("u", Ubar, cache["enc"][0]), ("v", Vbar, cache["enc"][1])):
            zb = _adjoint_activate(bar, z, t, first, pairs)
            _dense_adjoint(zb, cache["h0"], gblocks[f"W{name}"], gblocks[f"b{name}"], norms, want_grad, want_norms)
            if spec.trainable_embedding:
                h0bar = h0bar + zb @ blocks[f"W{name}"]
    if spec.trainable_embedding:
        gB, nB = embed_backward(term, cache["emb"], h0bar)
        if want_grad:
            gblocks["B"] += gB
        if want_norms:
            norms += nB
    return grad, norms


def table_residuals(term, jets):
    """r (C, N): r_c = Σ_m coef_m Π_f J[stream_f, :, out_f]."""
    r = np.zeros((term.components, jets.shape[1]), dtype=jets.dtype)
    for m in range(len(term.comp)):
        v = term.coef[m].astype(jets.dtype)  # a copy (complex for the tests' complex steps)
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
        self.widths = _spec(widths)
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
    Σ_s z̄_s,i h_s,iᵀ (and z̄_0,i for the bias) instead of summing it over the points. For an
    embedding or the modified MLP (``embedding.NetSpec``) each row is its own ``backward``
    with the adjoint of that point alone (slow, exact: the oracle).
    """
    spec = _spec(widths)
    N = term.xhat.shape[0]
    rows = np.zeros((N, params.size), dtype=params.dtype)
    if not spec.plain:
        for i in range(N):
            a = np.zeros_like(adjoint)
            a[:, i] = adjoint[:, i]
            rows[i] = backward(params, spec, term, cache, a)[0]
        return rows
    layers = unpack(params, spec)
    off = np.cumsum([0] + [W.size + b.size for W, b in layers])
    zbar = adjoint
    for l in range(len(layers) - 1, -1, -1):
        W, b = layers[l]
        h = cache["layers"][l][0]
        gW = np.einsum("sno,sni->noi", zbar, h).reshape(N, -1)
        rows[:, off[l]:off[l] + W.size] = gW
        rows[:, off[l] + W.size:off[l + 1]] = zbar[0]
        if l > 0:
            _, z, t, _ = cache["layers"][l - 1]
            zbar = _adjoint_activate(zbar @ W, z, t, term.first, term.pairs)
    return rows


def forward_tangent(params, widths, term, v):
    """Output jets (S, N, m) and their derivative along the parameter direction v (S, N, m).

    Forward tangents through the jet map (csrc/jacobian.hpp, ``tangent_activate``):
    ż = W ḣ + V h (+ ḃ on the value); ḣ = s1 ż, ḣ_f = s2 ż z_f + s1 ż_f,
    ḣ_ab = s3 ż z_a z_b + s2 (ż_a z_b + z_a ż_b + ż z_ab) + s1 ż_ab. For an embedding or the
    modified MLP: the complex-step derivative Im J(θ + i h v)/h (exact to rounding).
    """
    spec = _spec(widths)
    first, pairs = term.first, term.pairs
    F = len(first)
    jets, cache = forward(params, spec, term)
    if not spec.plain:
        h = 1e-30 if params.dtype == np.float64 else 1e-20
        cplx = np.complex128 if params.dtype == np.float64 else np.complex64
        pc_ = params.astype(cplx) + 1j * h * np.asarray(v, dtype=params.dtype)
        return jets, (forward(pc_, spec, term)[0].imag / h).astype(params.dtype)
    hd = np.zeros_like(cache["layers"][0][0])
    layers, vlayers = unpack(params, spec), unpack(np.asarray(v, dtype=params.dtype), spec)
    for l, ((W, b), (Wd, bd)) in enumerate(zip(layers, vlayers)):
        h = cache["layers"][l][0]
        zd = hd @ W.T + h @ Wd.T
        zd[0] += bd
        if l == len(layers) - 1:
            return jets, zd
        _, z, t, _ = cache["layers"][l]
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
