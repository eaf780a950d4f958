"""Input embeddings and the network architecture spec shared by both backends.

A PINN with a plain tanh MLP has a strong spectral bias: it learns sin 4πx and cos 8πt slowly.
Two input-side remedies live here, as a first layer with exact jets (both backends carry the
derivative streams through them by the chain rule, docs/design.md §2):

* ``FourierFeatures`` — random Fourier features γ(x̂) = [cos 2πBx̂, sin 2πBx̂] with the rows of
  B drawn from N(0, σ²) (Tancik et al. 2020; Wang, Wang & Perdikaris 2021, CMAME 384). Several
  σ give a multi-scale embedding: each scale contributes ``n_features`` rows and the features of
  all scales are concatenated. B is fixed (stored with the network) or trainable (in params).
* ``Periodic`` — for each chosen input k with period L_k the harmonics cos(2πj x̂_k/L_k),
  sin(2πj x̂_k/L_k), j = 1..harmonics, so u is exactly L_k-periodic in x̂_k: periodic boundary
  conditions hold identically (a hard constraint). The other inputs pass through unchanged.

Both act on the network input x̂, so the network is one function wherever it is evaluated (a
Problem's terms, ``problem.predict``, ``net(x̂)``). Periods are therefore in network-input
units: a ``pc.Problem`` scales each input's domain to [-1, 1], so a period equal to the domain
length is 2 — ``Periodic(inputs={1: 2.0})``; ``Periodic.for_problem(problem, {"x": L})``
converts a period L in the problem's units (L̂ = 2L/(hi − lo)).

Both are the same map of a linear phase a = Ω x̂ (no bias, so the second derivatives of a vanish):

    γ = [cos a, sin a, x̂_pass]      ∂γ/∂x_i = [−sin a, cos a] a_i      ∂²γ/∂x_i∂x_j = −[cos a, sin a] a_i a_j

with a_i = Ω[:, i]·scale_i (scale = dx̂/dx, so derivatives are with respect to the physical
input), Ω = 2πB: B ~ N(0, σ²) (Fourier) or B_{(k,j),k} = j/L_k (Periodic).

``NetSpec`` is what a backend needs to evaluate a network: the input count, the dense widths
(the first one is the embedding width), the architecture (``"plain"`` or ``"modified"``,
Wang, Teng & Perdikaris 2021, eq. 2.36–2.38) and the flat parameter layout — a
``layout.Layout`` (``net.layout``). Layout: the dense layers first, exactly as for a plain MLP,
so existing offsets stay valid, then the extra blocks:

    W0 (w_1 × E), b0, …, W{L-1} (m × w_{L-1}), b{L-1}   the dense chain (E = embedding width, or d)
    Wu (w × E), bu, Wv (w × E), bv                       the two encoders (arch="modified" only)
    B (M × d)                                            Fourier frequencies (trainable=True only)

Example
-------
>>> import numpy as np, pinncore as pc
>>> net = pc.MLP([2, 16, 1], embedding=pc.FourierFeatures(n_features=8, sigma=2.0, seed=1))
>>> net.spec.dense, net.n_params
([16, 16, 1], 289)
>>> per = pc.MLP([2, 16, 1], embedding=pc.Periodic(inputs={1: 2.0}, harmonics=3))
>>> x = np.array([[0.3, 0.1]]); bool(np.allclose(per(x), per(x + [0.0, 2.0]), rtol=0, atol=1e-12))
True
"""
from __future__ import annotations

import numbers

import numpy as np

from .layout import Block, Layout
from .layout import n_params as layout_n_params

__all__ = ["FourierFeatures", "Periodic", "NetSpec", "ARCHS", "embedding_from_config", "n_params"]

ARCHS = ("plain", "modified")
_MAX_FEATURES = 4096


def _positive_int(v, name, hi=None):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 or (hi is not None and v > hi):
        bound = f" and at most {hi}" if hi is not None else ""
        raise ValueError(f"{name} must be a positive integer{bound}, got {v!r}")
    return int(v)


def _positive_float(v, name):
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not np.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
    return float(v)


class FourierFeatures:
    """Random Fourier features γ(x̂) = [cos 2πBx̂, sin 2πBx̂] (Tancik et al. 2020).

    Parameters
    ----------
    n_features : rows of B per scale (the embedding has 2·n_features·len(sigma) features).
    sigma : float or sequence of floats, the standard deviation of B's entries; several values
        give a multi-scale embedding (the rows of each scale are concatenated).
    seed : int, seeds ``numpy.random.default_rng`` for B (independent of the network's seed).
    trainable : bool, B is part of ``net.params`` (after every other block) and trained.
    include_inputs : bool, append the raw inputs x̂ to the features.

    B acts on the network input x̂ (a Problem scales each input to [-1, 1]), so σ is measured in
    cycles per unit of x̂.

    >>> ff = FourierFeatures(n_features=4, sigma=[1.0, 10.0], seed=0)
    >>> ff.frequencies(2).shape, ff.width(2)
    ((8, 2), 16)
    """

    kind = "fourier"

    def __init__(self, n_features=64, sigma=1.0, seed=0, trainable=False, include_inputs=False):
        self.n_features = _positive_int(n_features, "n_features", _MAX_FEATURES)
        sig = [sigma] if isinstance(sigma, numbers.Real) else sigma
        if isinstance(sig, (str, bytes)) or not hasattr(sig, "__iter__"):
            raise TypeError(f"sigma must be a number or a sequence of numbers, got {sigma!r}")
        sig = list(sig)
        if not sig:
            raise ValueError("sigma must not be empty")
        self.sigma = [_positive_float(s, "sigma") for s in sig]
        if self.n_features * len(self.sigma) > _MAX_FEATURES:
            raise ValueError(f"n_features × len(sigma) = {self.n_features * len(self.sigma)} exceeds {_MAX_FEATURES}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        self.seed = int(seed)
        for name, v in (("trainable", trainable), ("include_inputs", include_inputs)):
            if not isinstance(v, (bool, np.bool_)):
                raise TypeError(f"{name} must be True or False, got {v!r}")
        self.trainable, self.include_inputs = bool(trainable), bool(include_inputs)

    def frequencies(self, d):
        """B (M, d) float64, M = n_features·len(sigma): scale after scale, each N(0, σ²)."""
        rng = np.random.default_rng(self.seed)
        return np.concatenate([rng.normal(0.0, s, size=(self.n_features, d)) for s in self.sigma])

    def passthrough(self, d):
        """Input indices appended raw after the cos/sin features."""
        return list(range(d)) if self.include_inputs else []

    def width(self, d):
        """The embedding's output width E."""
        return 2 * self.n_features * len(self.sigma) + len(self.passthrough(d))

    def check(self, d):
        """Nothing depends on d beyond its range (checked by the network)."""

    def config(self):
        return {"kind": self.kind, "n_features": self.n_features, "sigma": list(self.sigma), "seed": self.seed,
                "trainable": self.trainable, "include_inputs": self.include_inputs}

    def __repr__(self):
        return (f"FourierFeatures(n_features={self.n_features}, sigma={self.sigma if len(self.sigma) > 1 else self.sigma[0]}, "
                f"seed={self.seed}, trainable={self.trainable}, include_inputs={self.include_inputs})")


class Periodic:
    """An exactly periodic embedding: u is L_k-periodic in each chosen network input x̂_k.

    Parameters
    ----------
    inputs : dict {input index: period L > 0} in network-input units, e.g. {1: 2.0} (input 1,
        period 2: with a ``pc.Problem``, whose inputs are scaled to [-1, 1], the domain length).
    harmonics : int ≥ 1, the number of harmonics j = 1..harmonics per periodic input.
    fourier : an optional (fixed) ``FourierFeatures`` for the other inputs: its rows of B act on
        the non-periodic inputs only (the periodic columns are zero), so u stays exactly
        periodic while, e.g., the time direction gets random Fourier features too.

    The features are cos(2πj x̂_k/L_k), sin(2πj x̂_k/L_k) for every periodic input (in index
    order, j fastest), then the Fourier rows, then the non-periodic inputs x̂ unchanged. See
    ``for_problem`` for a period in the problem's own units.

    >>> p = Periodic(inputs={0: 1.0}, harmonics=2)
    >>> p.frequencies(2).tolist(), p.passthrough(2), p.width(2)
    ([[1.0, 0.0], [2.0, 0.0]], [1], 5)
    """

    kind = "periodic"
    trainable = False

    def __init__(self, inputs, harmonics=1, fourier=None):
        if not isinstance(inputs, dict) or not inputs:
            raise TypeError(f"inputs must be a non-empty dict {{input index: period}}, got {inputs!r}")
        clean = {}
        for k, L in inputs.items():
            if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
                raise ValueError(f"inputs: key {k!r} must be a non-negative input index")
            clean[int(k)] = _positive_float(L, f"inputs[{k}] (the period)")
        self.inputs = dict(sorted(clean.items()))
        self.harmonics = _positive_int(harmonics, "harmonics", 256)
        if fourier is not None and not isinstance(fourier, FourierFeatures):
            raise TypeError(f"fourier must be a pc.FourierFeatures or None, got {type(fourier).__name__}")
        if fourier is not None and (fourier.trainable or fourier.include_inputs):
            raise ValueError("fourier: trainable or include_inputs features are not supported inside Periodic "
                             "(training B would break the periodicity; the raw inputs already pass through)")
        self.fourier = fourier

    @classmethod
    def for_problem(cls, problem, periods, harmonics=1, fourier=None):
        """The embedding that is periodic in the problem's inputs with periods in its units.

        periods : {input name: L}; L̂ = L · dx̂/dx = 2L/(hi − lo) for the problem's domain.

        >>> import pinncore as pc, math
        >>> Periodic.for_problem(pc.problems.advection(bc="none"), {"x": 2 * math.pi}, harmonics=2)
        Periodic(inputs={1: 2.0}, harmonics=2)
        """
        if not isinstance(periods, dict) or not periods:
            raise TypeError(f"periods must be a non-empty dict {{input name: period}}, got {periods!r}")
        out = {}
        for name, L in periods.items():
            if name not in problem.inputs:
                raise ValueError(f"periods: unknown input {name!r}; the problem's inputs are {problem.inputs}")
            k = problem.inputs.index(name)
            out[k] = _positive_float(L, f"periods[{name!r}]") * float(problem.scale[k])
        return cls(out, harmonics, fourier)

    def check(self, d):
        if self.fourier is not None and len(self.inputs) >= d:
            raise ValueError("fourier features need a non-periodic input; every input is periodic")
        bad = [k for k in self.inputs if k >= d]
        if bad:
            raise ValueError(f"Periodic inputs {bad} out of range: the network has {d} inputs (indices 0..{d - 1})")

    def frequencies(self, d):
        """B (M, d): row (k, j) has j/L_k in column k (the phase is 2πB x̂)."""
        rows = []
        for k, L in self.inputs.items():
            for j in range(1, self.harmonics + 1):
                r = np.zeros(d)
                r[k] = j / L
                rows.append(r)
        B = np.array(rows, dtype=np.float64).reshape(-1, d)
        if self.fourier is not None:
            free = self.passthrough(d)
            F = np.zeros((self.fourier.n_features * len(self.fourier.sigma), d))
            F[:, free] = self.fourier.frequencies(len(free))
            B = np.concatenate([B, F])
        return B

    def passthrough(self, d):
        return [k for k in range(d) if k not in self.inputs]

    def width(self, d):
        nf = 0 if self.fourier is None else self.fourier.n_features * len(self.fourier.sigma)
        return 2 * (len(self.inputs) * self.harmonics + nf) + len(self.passthrough(d))

    def config(self):
        return {"kind": self.kind, "inputs": {str(k): v for k, v in self.inputs.items()}, "harmonics": self.harmonics,
                "fourier": None if self.fourier is None else self.fourier.config()}

    def __repr__(self):
        extra = "" if self.fourier is None else f", fourier={self.fourier!r}"
        return f"Periodic(inputs={self.inputs}, harmonics={self.harmonics}{extra})"


def embedding_from_config(cfg):
    """Rebuild an embedding from its ``config()`` (None for None); raise ValueError on bad input.

    >>> embedding_from_config(Periodic({1: 2.0}, 3).config())
    Periodic(inputs={1: 2.0}, harmonics=3)
    """
    if cfg is None:
        return None
    if not isinstance(cfg, dict) or cfg.get("kind") not in ("fourier", "periodic"):
        raise ValueError(f"invalid embedding config {cfg!r}")
    kw = {k: v for k, v in cfg.items() if k != "kind"}
    try:
        if cfg["kind"] == "fourier":
            return FourierFeatures(**kw)
        inputs = kw.pop("inputs")
        if not isinstance(inputs, dict):
            raise TypeError("inputs must be a dict")
        ff = kw.pop("fourier", None)
        if ff is not None:
            if not isinstance(ff, dict) or ff.get("kind") != "fourier":
                raise ValueError("fourier must be a Fourier-features config")
            ff = FourierFeatures(**{k: v for k, v in ff.items() if k != "kind"})
        return Periodic({int(k): v for k, v in inputs.items()}, fourier=ff, **kw)
    except (TypeError, ValueError, KeyError) as e:
        raise ValueError(f"invalid embedding config {cfg!r}: {e}") from e


class NetSpec(Layout):
    """The architecture both backends evaluate and its flat parameter layout (module docstring):
    a ``layout.Layout`` (blocks, ``n_params``, ``weight_mask``, ``unpack``) of any architecture.

    Attributes: ``d`` inputs; ``layers`` (as given, layers[0] = d); ``dense`` the widths of the
    dense chain with ``dense[0]`` = E (embedding width, or d); ``arch``; ``embedding`` (or None);
    ``B`` the frequencies (M, d) float64 (or None); ``passthrough``; ``blocks`` (``layout.Block``:
    W0, b0, …, W{L-1}, b{L-1}, then Wu, bu, Wv, bv, then B).

    >>> s = NetSpec([1, 4, 4, 1], arch="modified")
    >>> [(b.name, b.offset, b.shape) for b in s.blocks][-2:]
    [('Wv', 41, (4, 1)), ('bv', 45, (4,))]
    """

    def __init__(self, layers, arch="plain", embedding=None):
        layers = [int(w) for w in layers]
        self.d = layers[0]
        if arch not in ARCHS:
            raise ValueError(f"arch must be one of {list(ARCHS)}, got {arch!r}")
        if embedding is not None and not isinstance(embedding, (FourierFeatures, Periodic)):
            raise TypeError(f"embedding must be a pc.FourierFeatures, a pc.Periodic or None, got {type(embedding).__name__}")
        self.arch, self.embedding = arch, embedding
        hidden = layers[1:-1]
        if arch == "modified":
            if not hidden:
                raise ValueError(f"arch='modified' needs at least one hidden layer, got layers {layers}")
            if len(set(hidden)) != 1:
                raise ValueError(f"arch='modified' needs equal hidden widths (the gates mix U and V), got {hidden}")
        if embedding is not None:
            embedding.check(self.d)
            self.B = np.ascontiguousarray(embedding.frequencies(self.d), dtype=np.float64)
            self.passthrough = embedding.passthrough(self.d)
            E = embedding.width(self.d)
        else:
            self.B, self.passthrough, E = None, [], self.d
        self.dense = [E] + layers[1:]
        super().__init__(self.dense)  # the dense chain: W0, b0, ... exactly as a plain MLP
        self.layers = layers
        off = self.n_params
        if self.modified:
            w = hidden[0]
            for name in ("u", "v"):
                self.blocks += [Block(f"W{name}", off, (w, E), True), Block(f"b{name}", off + w * E, (w,), False)]
                off += w * E + w
        if self.trainable_embedding:
            self.blocks.append(Block("B", off, self.B.shape, False))
            off += self.B.size
        self.n_params = off

    @property
    def modified(self):
        return self.arch == "modified"

    @property
    def trainable_embedding(self):
        return self.embedding is not None and self.embedding.trainable

    @property
    def plain(self):
        """True for the seed network (no embedding, plain arch): the original fast paths apply."""
        return self.embedding is None and not self.modified

    def views(self, params):
        """{block name: view} into ``params`` for every block of the layout."""
        return {b.name: params[b.offset:b.offset + b.size].reshape(b.shape) for b in self.blocks}

    def unpack(self, params):
        """[(W_l, b_l)] views of the dense chain (the encoders and B: ``views``)."""
        v = self.views(params)
        return [(v[f"W{l}"], v[f"b{l}"]) for l in range(len(self.dense) - 1)]

    def init_params(self, seed):
        """Xavier-normal weights (std √(2/(fan_in+fan_out)), Glorot & Bengio 2010), zero biases,
        B from the embedding's own seed. The dense chain draws first, so a plain MLP keeps its
        seed-for-seed values."""
        rng = np.random.default_rng(seed)
        out = np.zeros(self.n_params)
        for b in self.blocks:
            if b.is_weight:
                n_out, n_in = b.shape
                out[b.offset:b.offset + b.size] = rng.normal(0.0, np.sqrt(2.0 / (n_in + n_out)), size=b.size)
            elif b.name == "B":
                out[b.offset:b.offset + b.size] = self.B.ravel()
        return out

    def config(self):
        """The JSON-able description saved with a network (``MLP.save``, training states)."""
        return {"arch": self.arch, "embedding": None if self.embedding is None else self.embedding.config()}


def n_params(layers, arch="plain", embedding=None):
    """The parameter count of an architecture (``layout.n_params`` for a plain one).

    >>> n_params([2, 8, 8, 1], arch="modified")
    153
    """
    if arch == "plain" and embedding is None:
        return layout_n_params(layers)
    return NetSpec(layers, arch=arch, embedding=embedding).n_params
