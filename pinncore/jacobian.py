"""The residual Jacobian of a problem: the low-level call that Gauss–Newton methods build on.

The stacked residual vector is r = [√(λ_a w_i / N_a) · r_a,c,i] over terms a (in
``problem.term_names`` order), components c and points i, so that ‖r‖² = Σ_a λ_a L_a is
exactly the weighted loss (per-point weights w_i included). J = ∂r/∂θ (rows × n_params) comes
from the kernel in one forward jet pass and one backward sweep per residual component that
keeps each point's parameter gradient instead of summing it (csrc/jacobian.hpp;
docs/design.md §2). Residuals that are not polynomial in the jets (e.g. ``pc.sin(u)``) use the
kernel's forward pass, the NumPy residual with exact ∂r/∂J, and the same per-row backward.

Three ways to use J, by memory:

* ``lin.dense()`` — J itself (rows × n_params);
* ``lin.gram("JJt")`` / ``lin.gram("JtJ")`` — JJᵀ (residual space) or JᵀJ and Jᵀr
  (parameter space, accumulated over point chunks, so J never needs to fit);
* ``lin.matvec(v)`` = J v (forward tangents through the jet pass) and ``lin.rmatvec(u)`` = Jᵀ u
  (the kernel's backward sweep): matrix-free, memory O(rows + n_params).

Example
-------
>>> import numpy as np, pinncore as pc
>>> problem = pc.problems.harmonic(); net = pc.MLP([1, 8, 1], seed=0)
>>> r, J = problem.residual_jacobian(net, weights={"ic": 10.0})
>>> J.shape                       # 50 pde rows + 2 ic components, 25 parameters
(52, 25)
>>> L = problem.losses(net)
>>> bool(np.isclose(r @ r, L["pde"] + 10.0 * L["ic"]))
True
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["ResidualJacobian", "Linearization", "term_weights"]

_GRAM_KINDS = ("JtJ", "JJt")


def term_weights(weights, names):
    """λ as a float64 array (T,) from None (all 1), a dict name -> λ (missing = 1) or a sequence.

    >>> term_weights({"ic": 100.0}, ["pde", "ic"]).tolist()
    [1.0, 100.0]
    """
    if weights is None:
        return np.ones(len(names))
    if isinstance(weights, dict):
        unknown = sorted(set(weights) - set(names))
        if unknown:
            raise ValueError(f"weights names unknown terms {unknown}; the terms are {names}")
        lam = np.array([weights.get(k, 1.0) for k in names], dtype=object)
    else:
        lam = np.asarray(weights, dtype=object)
        if lam.shape != (len(names),):
            raise ValueError(f"weights must have one entry per term ({len(names)}: {names}), got shape {lam.shape}")
    out = np.empty(len(names))
    for a, v in enumerate(lam):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise TypeError(f"weights[{names[a]!r}] must be a real number, got {v!r}")
        if not (math.isfinite(float(v)) and float(v) >= 0):
            raise ValueError(f"weights[{names[a]!r}] must be finite and >= 0, got {v!r}")
        out[a] = float(v)
    return out


class ResidualJacobian:
    """The stacked weighted residuals of ``problem`` for ``net``'s shape: r(θ) and J(θ) = ∂r/∂θ.

    weights : λ per term (dict name -> λ, a sequence, or None = 1).
    point_weights : None, a list with one entry (None or an (N_a,) array, w_i >= 0) per term,
        or a dict name -> array (missing terms: w = 1).

    ``rows`` = Σ_a C_a N_a; ``blocks`` lists (term, first row, components, points).

    >>> import pinncore as pc
    >>> jac = ResidualJacobian(pc.problems.harmonic(), pc.MLP([1, 8, 1]))
    >>> jac.rows, jac.n_params, jac.blocks[1]
    (52, 25, ('ic', 50, 2, 1))
    """

    def __init__(self, problem, net, weights=None, point_weights=None):
        problem.check_net(net)
        self.problem, self.net = problem, net
        self.dtype = net.dtype
        self.data = problem.lowering.data(net.dtype)
        names = problem.term_names
        self.weights = term_weights(weights, names)
        if isinstance(point_weights, dict):
            unknown = sorted(set(point_weights) - set(names))
            if unknown:
                raise ValueError(f"point_weights names unknown terms {unknown}; the terms are {names}")
            point_weights = [point_weights.get(k) for k in names]
        pw = [None] * len(names) if point_weights is None else problem.check_point_weights(point_weights, np.float64)
        self.scales, self.blocks, row = [], [], 0
        for a, lw in enumerate(problem.lowering.terms):
            n = lw.n_loss   # rows per component: points, or point pairs of a paired (periodic) term
            w = np.ones(n) if pw[a] is None else np.asarray(pw[a], dtype=np.float64)
            if (w < 0).any():
                raise ValueError(f"point_weights[{a}] (term {names[a]!r}) must be >= 0 (rows are scaled by sqrt(w))")
            s = np.sqrt(self.weights[a] * w / max(n, 1))
            self.scales.append(np.ascontiguousarray(s, dtype=self.dtype))
            self.blocks.append((names[a], row, lw.table.n_components, n))
            row += lw.table.n_components * n
        self.rows = row
        self.n_params = net.n_params
        # fused: the kernel's own residual/Jacobian rows; else the NumPy table path (which also
        # forms a paired term's rows r(x_j) − r(x_M+j))
        self.polynomial = [lw.fused for lw in problem.lowering.terms]
        self.paired = [lw.paired for lw in problem.lowering.terms]

    def nbytes(self, what):
        """Bytes of one array: "J" (rows × n_params), "JJt" (rows²) or "JtJ" (n_params²).

        >>> import pinncore as pc
        >>> ResidualJacobian(pc.problems.harmonic(), pc.MLP([1, 8, 1])).nbytes("J")
        10400
        """
        item = np.dtype(self.dtype).itemsize
        n = {"J": self.rows * self.n_params, "JJt": self.rows ** 2, "JtJ": self.n_params ** 2}
        if what not in n:
            raise ValueError(f"what must be one of {sorted(n)}, got {what!r}")
        return n[what] * (item if what == "J" else 8)

    def chunk_rows(self, chunk_bytes, n_cols=None):
        """Rows per chunk of the normal-equations pass: ``chunk_bytes`` of float64 rows of
        ``n_cols`` (default n_params) columns, between 1 and 512. Measured (OpenBLAS dsyrk, one
        thread): 256–512 rows run at the matmul rate for P = 205 and P = 1 009 alike, 2 048 rows
        lose 10–40 % at P = 205 (the chunk leaves the cache), 128 rows lose ~20 %.

        >>> import pinncore as pc
        >>> ResidualJacobian(pc.problems.harmonic(), pc.MLP([1, 8, 1])).chunk_rows(4 << 20)
        512
        """
        n_cols = self.n_params if n_cols is None else n_cols
        return int(min(512, max(1, int(chunk_bytes) // (8 * max(int(n_cols), 1)))))

    def linearize(self, params=None):
        """The residuals and their derivative tables at ``params`` (default ``net.params``).

        >>> import pinncore as pc
        >>> lin = ResidualJacobian(pc.problems.harmonic(), pc.MLP([1, 8, 1])).linearize()
        >>> lin.r.shape
        (52,)
        """
        p = self.net.check_params(params) if params is not None else self.net.params
        return Linearization(self, np.array(p, dtype=self.dtype, copy=True))


class Linearization:
    """r, J and its products at one parameter vector (built by ``ResidualJacobian.linearize``).

    ``r`` (rows,) in the network's dtype is computed at construction (kernel forward pass);
    J is only formed by the methods that need it.
    """

    def __init__(self, jac, params):
        self.jac, self.params = jac, params
        self.be = jac.net.backend
        self._dr = {}   # term index -> (jets (S, N, m), r (C, N), dr (C, V, N)) from the NumPy table
        self._r = None

    @property
    def r(self):
        """The stacked weighted residuals (rows,) in the network's dtype (one kernel pass, cached;
        ``dense`` sets it from the Jacobian pass)."""
        if self._r is None:
            jac = self.jac
            if all(jac.polynomial):
                self._r = self.be.residual_jacobian(self.params, jac.data, jac.scales, None, False)[0]
                return self._r
            poly = [a for a, p in enumerate(jac.polynomial) if p]
            res = {}
            if poly:
                _, _, R = self.be.losses_grads(self.params, [jac.data[a] for a in poly], [None] * len(poly), True)
                res = dict(zip(poly, R))
            parts = [((np.asarray(res[a], dtype=np.float64) if a in res else self._pair(a, self._table(a)[1]))
                      * jac.scales[a]).reshape(-1) for a in range(len(jac.blocks))]
            self._r = np.concatenate(parts).astype(jac.dtype) if parts else np.zeros(0, jac.dtype)
        return self._r

    def loss(self):
        """‖r‖² = Σ_a λ_a L_a (float64)."""
        r = self.r.astype(np.float64)
        return float(r @ r)

    def _table(self, a):
        """(jets, r, dr) of term a from the kernel forward and the NumPy table (cached)."""
        if a not in self._dr:
            lw = self.jac.problem.lowering.terms[a]
            J, Jv = self.jac.problem.lowering.table_jets(lw, self.be, self.params, self.jac.data[a])
            r, dr = self.jac.problem.lowering.evaluate_table(lw, Jv)
            self._dr[a] = (J, r, dr)
        return self._dr[a]

    def _pair(self, a, v):
        """A paired term's per-point quantity (..., 2M) as pair differences (..., M); else v."""
        M = self.jac.paired[a]
        return v[..., :M] - v[..., M:] if M else v

    def _adjoints(self, a, seed):
        """Output-jet adjoints Σ_c seed[k, c] ∂r_c/∂J (K, S, N, m) of term a for seeds (K, C, N)."""
        lw = self.jac.problem.lowering.terms[a]
        J, _, dr = self._table(a)
        adj = np.zeros((seed.shape[0],) + J.shape, dtype=np.float64)
        for v, (s, o) in enumerate(zip(lw.var_stream, lw.var_out)):
            adj[:, s, :, o] += np.einsum("kcn,cn->kn", seed, dr[:, v, :])
        return np.ascontiguousarray(adj, dtype=self.jac.dtype)

    def block(self, a, begin=0, end=None):
        """Rows of term a for its points [begin, end): J block (C·nb, n_params), row c·nb + i."""
        jac = self.jac
        lw = jac.problem.lowering.terms[a]
        M = jac.paired[a]
        end = lw.n_loss if end is None else end
        td = jac.data[a]
        if jac.polynomial[a]:
            return self.be.jacobian_rows(self.params, td, jac.scales[a], None, begin, end)[1]
        C = lw.table.n_components
        seed = np.zeros((C, C, lw.n))
        for c in range(C):
            seed[c, c] = np.concatenate([jac.scales[a]] * 2) if M else jac.scales[a]
        adj = self._adjoints(a, seed)
        rows = self.be.jacobian_rows(self.params, td, None, adj, begin, end)[1]
        if M:   # row of pair j: ∂(r(x_j) − r(x_M+j))/∂θ, both rows scaled by the pair's weight
            P = rows.shape[1]
            rows = (rows.reshape(C, end - begin, P)
                    - self.be.jacobian_rows(self.params, td, None, adj, M + begin, M + end)[1].reshape(C, end - begin, P)
                    ).reshape(C * (end - begin), P)
        return rows

    def dense(self, out=None):
        """``(r, J)``: J (rows, n_params) in the network's dtype; ``out`` may supply its storage.

        >>> import pinncore as pc
        >>> r, J = ResidualJacobian(pc.problems.harmonic(), pc.MLP([1, 8, 1])).linearize().dense()
        >>> J.shape
        (52, 25)
        """
        jac = self.jac
        if out is not None and (out.shape != (jac.rows, jac.n_params) or out.dtype != jac.dtype
                                or not out.flags.c_contiguous or not out.flags.writeable):
            raise ValueError(f"out must be a writeable C-contiguous {np.dtype(jac.dtype).name} array of shape "
                             f"{(jac.rows, jac.n_params)}")
        if all(jac.polynomial):
            r, J = self.be.residual_jacobian(self.params, jac.data, jac.scales, out)
            self._r = r  # the Jacobian pass's own residuals: r and J from one sweep
            return r, J
        J = np.empty((jac.rows, jac.n_params), dtype=jac.dtype) if out is None else out
        for a, (_, row, C, n) in enumerate(jac.blocks):
            J[row:row + C * n] = self.block(a)
        return self.r, J

    def gram(self, kind="JtJ", chunk_bytes=4 << 20, J=None, out=None, upper=False):
        """Gram products in float64.

        kind="JJt": ``(JJᵀ (rows, rows), J)`` — J is needed again to map back to parameters
        (pass ``J`` when it is already at hand, or ``out`` to form it in given storage).
        ``upper=True`` returns only the upper triangle (the rest zero), as Cholesky reads it.
        kind="JtJ": ``(JᵀJ (n_params, n_params), Jᵀr)`` from ``normal`` (accumulated by the
        kernel over chunks of at most ``chunk_bytes`` of J; J is never stored whole; always
        the full symmetric matrix).

        >>> import numpy as np, pinncore as pc
        >>> lin = ResidualJacobian(pc.problems.harmonic(), pc.MLP([1, 8, 1])).linearize()
        >>> A, g = lin.gram("JtJ"); J = lin.dense()[1]
        >>> bool(np.allclose(A, J.T @ J)), bool(np.allclose(g, J.T @ lin.r))
        (True, True)
        """
        from scipy.linalg import blas
        if kind not in _GRAM_KINDS:
            raise ValueError(f"kind must be one of {_GRAM_KINDS}, got {kind!r}")
        if kind == "JJt":
            if J is None:
                _, J = self.dense(out)
            J64 = np.asarray(J, dtype=np.float64)
            K = blas.dsyrk(1.0, J64.T, trans=1, lower=0)  # upper triangle of (Jᵀ)ᵀJᵀ = JJᵀ
            return (K if upper else _symmetrize(K)), J
        A, g, _ = self.normal(chunk_rows=self.jac.chunk_rows(chunk_bytes))
        return A, g

    def normal(self, A=None, g=None, extra=None, chunk_rows=None):
        """The parameter-space normal equations ``(JᵀJ, Jᵀr, rᵀr)`` in float64, accumulated by the
        kernel (csrc/jacobian.hpp ``normal``): each chunk of ``chunk_rows`` rows (default: 4 MB of
        rows) is written once and folded in by one BLAS syrk, so J is never held and no Python
        runs per chunk. Also sets ``r`` (the same pass).

        ``A`` (Pt, Pt), ``g`` (Pt,): optional C-contiguous float64 storage written in place
        (reused across iterations). ``extra`` (rows, k) float64: the Jacobian columns of k
        parameters that are not the network's (unknown PDE coefficients, appended after θ in
        the flat parameter vector), row order as ``r``; then Pt = n_params + k.

        >>> import numpy as np, pinncore as pc
        >>> lin = ResidualJacobian(pc.problems.harmonic(), pc.MLP([1, 8, 1])).linearize()
        >>> A, g, rr = lin.normal(extra=np.ones((52, 1)))
        >>> A.shape, bool(np.isclose(rr, lin.loss())), bool(np.isclose(A[-1, -1], 52.0))
        ((26, 26), True, True)
        """
        jac = self.jac
        k = 0
        if extra is not None:
            extra = np.asarray(extra, dtype=np.float64)
            if extra.ndim != 2 or extra.shape[0] != jac.rows:
                raise ValueError(f"extra must be a 2-D array with one row per residual ({jac.rows}), got shape "
                                 f"{extra.shape}")
            k = extra.shape[1]
        Pt = jac.n_params + k
        A = _out_buffer(A, "A", (Pt, Pt))
        g = _out_buffer(g, "g", (Pt,))
        chunk_rows = jac.chunk_rows(4 << 20, Pt) if chunk_rows is None else chunk_rows
        if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, (int, np.integer)) or chunk_rows < 1:
            raise ValueError(f"chunk_rows must be an integer >= 1, got {chunk_rows!r}")
        sources = []
        for a, (_, row, C, n) in enumerate(jac.blocks):
            ex = None if extra is None else np.ascontiguousarray(extra[row:row + C * n])
            if jac.polynomial[a]:
                sources.append((jac.data[a], jac.scales[a], None, 0, None, ex))
                continue
            # non-polynomial or paired: the NumPy table's ∂r/∂J seeds the kernel's per-row sweep
            # (scaled per point; a pair's seed at both of its points), its r the residual column
            M = jac.paired[a]
            s = np.concatenate([jac.scales[a]] * 2) if M else jac.scales[a]
            seed = np.zeros((C, C, s.size))
            for c in range(C):
                seed[c, c] = s
            rv = np.ascontiguousarray(self._pair(a, self._table(a)[1]) * jac.scales[a], dtype=np.float64)
            sources.append((jac.data[a], None, self._adjoints(a, seed), M, rv, ex))
        r = np.empty(jac.rows, dtype=jac.dtype)
        rr = self.be.normal_equations(self.params, sources, A, g, k, int(chunk_rows), r)
        self._r = r
        return A, g, rr

    def matvec(self, v):
        """J v (rows,) by forward tangents through the jet pass (no J formed).

        >>> import numpy as np, pinncore as pc
        >>> lin = ResidualJacobian(pc.problems.harmonic(), pc.MLP([1, 8, 1])).linearize()
        >>> v = np.ones(25); bool(np.allclose(lin.matvec(v), lin.dense()[1] @ v))
        True
        """
        jac = self.jac
        v = np.ascontiguousarray(v, dtype=jac.dtype)
        if v.shape != (jac.n_params,):
            raise ValueError(f"v must have shape ({jac.n_params},), got {v.shape}")
        out = np.empty(jac.rows, dtype=np.float64)
        for a, (_, row, C, n) in enumerate(jac.blocks):
            lw = jac.problem.lowering.terms[a]
            _, dr = self._dr_poly(a)
            _, tan = self.be.jets_tangent(self.params, jac.data[a], v)
            rd = np.zeros((C, lw.n))
            for k, (s, o) in enumerate(zip(lw.var_stream, lw.var_out)):
                rd += dr[:, k, :] * tan[s, :, o]
            out[row:row + C * n] = (self._pair(a, rd) * jac.scales[a]).reshape(-1)
        return out

    def rmatvec(self, u):
        """Jᵀ u (n_params,) by the kernel's backward sweep (no J formed).

        >>> import numpy as np, pinncore as pc
        >>> lin = ResidualJacobian(pc.problems.harmonic(), pc.MLP([1, 8, 1])).linearize()
        >>> u = np.ones(52); bool(np.allclose(lin.rmatvec(u), lin.dense()[1].T @ u))
        True
        """
        jac = self.jac
        u = np.asarray(u, dtype=np.float64)
        if u.shape != (jac.rows,):
            raise ValueError(f"u must have shape ({jac.rows},), got {u.shape}")
        g = np.zeros(jac.n_params)
        for a, (_, row, C, n) in enumerate(jac.blocks):
            seed = (u[row:row + C * n].reshape(C, n) * jac.scales[a])[None]
            if jac.paired[a]:   # the pair difference's adjoint: +seed at x_j, −seed at x_M+j
                seed = np.concatenate([seed, -seed], axis=2)
            self._dr_poly(a)
            adj = self._adjoints(a, seed)[0]
            g += self.be.vjp(self.params, jac.data[a], adj, False)[0]
        return g

    def _dr_poly(self, a):
        """(r, dr) of term a from the NumPy table (polynomial terms too: J v and Jᵀu contract
        the kernel's jet tangents/adjoints with ∂r/∂J)."""
        _, r, dr = self._table(a)
        return r, dr


def _out_buffer(buf, name, shape):
    """Storage for an output written in place by the kernel: given (checked) or new."""
    if buf is None:
        return np.empty(shape)
    if (not isinstance(buf, np.ndarray) or buf.shape != shape or buf.dtype != np.float64
            or not buf.flags.c_contiguous or not buf.flags.writeable):
        raise ValueError(f"{name} must be a writeable C-contiguous float64 array of shape {shape}, got "
                         f"{getattr(buf, 'dtype', type(buf).__name__)} {getattr(buf, 'shape', '')}")
    return buf


def _symmetrize(A):
    """The symmetric matrix whose upper triangle is A's (BLAS syrk fills only that one)."""
    U = np.triu(A)
    U += np.triu(A, 1).T
    return U
