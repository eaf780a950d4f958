"""The network: ``pc.MLP``, its parameters and its jets (the kernel itself is reached only through
``pinncore.backend``, the one module that imports ``pinncore._core``).

``MLP`` is the plain tanh network of docs/design.md §4 (tanh hidden layers, linear output,
Xavier-normal weights, zero biases). All arguments are checked here, once, with errors that
name the argument; the compiled ``_core`` only guards memory. Two backends compute the same
maths: ``"cpp"`` (``pinncore._core`` through ``pinncore.backend``) and ``"numpy"``
(``pinncore.reference``, the oracle).

Example
-------
>>> import numpy as np, pinncore as pc
>>> net = pc.MLP([1, 20, 20, 1], seed=0)
>>> x = np.linspace(0, 1, 5)[:, None]
>>> jet = net.derivatives(x, order=2)
>>> jet.value.shape, jet.grad.shape, jet.hess.shape
((5, 1), (5, 1, 1), (5, 1, 1, 1))
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import backend as _kernel
from . import reference
from .embedding import NetSpec, embedding_from_config
from .embedding import n_params as arch_n_params
from .backend import get_num_threads, set_num_threads

__all__ = ["MLP", "Jet", "TermData", "set_num_threads", "get_num_threads", "check_points", "parse_derivs"]

_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))
MLP_KIND = "pinncore.mlp"
MAX_PARAMS = 100_000_000


def check_points(x, d, name="x", dtype=np.float64):
    """Coerce ``x`` to a C-contiguous (N, d) array of ``dtype``; raise naming ``name``.

    A fresh array is returned when conversion is needed, so the caller's array is never
    modified. Integer/bool input is rejected (it is almost always a mistake of units).

    >>> check_points([[0.0], [1.0]], 1).shape
    (2, 1)
    """
    if x is None or isinstance(x, (str, bytes)):
        raise TypeError(f"{name} must be an array of shape (N, {d}), got {type(x).__name__}")
    arr = np.asarray(x)
    if arr.dtype == object:
        raise TypeError(f"{name} must be a numeric array, got dtype object")
    if arr.dtype.kind not in "f":
        raise TypeError(f"{name} must have a floating dtype (float32 or float64), got {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D with shape (N, {d}), got shape {arr.shape}")
    if arr.shape[1] != d:
        raise ValueError(f"{name} has {arr.shape[1]} columns, expected {d} (the network's input width)")
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _vector(v, d, name):
    """A finite float64 vector of length d from a scalar or a length-d array (named errors)."""
    arr = np.asarray(v)
    if arr.dtype == object or arr.dtype.kind not in "fiu" or arr.dtype == bool:
        raise TypeError(f"{name} must be a real number or a length-{d} real array, got {v!r}")
    if arr.ndim == 0:
        arr = np.full(d, float(arr))
    if arr.shape != (d,):
        raise ValueError(f"{name} must be a number or have shape ({d},), got shape {arr.shape}")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite, got {arr}")
    return arr


def parse_derivs(derivs, d):
    """Normalise a derivative request to sorted multi-index tuples; raise on bad entries.

    ``()`` is the value, ``(i,)`` is d/dx_i, ``(i, j)`` is d²/dx_i dx_j.

    >>> parse_derivs([(), (0,), (1, 0)], 2)
    [(), (0,), (0, 1)]
    """
    if isinstance(derivs, (str, bytes)) or not hasattr(derivs, "__iter__"):
        raise TypeError(f"derivs must be a list of index tuples like [(), (0,), (0, 0)], got {derivs!r}")
    out = []
    for dv in derivs:
        if isinstance(dv, (int, np.integer)):
            dv = (dv,)
        if not isinstance(dv, (tuple, list)):
            raise TypeError(f"derivs entry {dv!r} must be a tuple of input indices")
        if len(dv) > 2:
            raise ValueError(f"derivs entry {tuple(dv)!r}: order {len(dv)} > 2 is not supported")
        for k in dv:
            if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k < d:
                raise ValueError(f"derivs entry {tuple(dv)!r}: unknown derivative, input index must be in [0, {d})")
        out.append(tuple(sorted(int(k) for k in dv)))
    return out


def stream_plan(derivs):
    """(first, pairs, index) — the streams the kernel propagates for a set of multi-indices:
    every first-order direction a pair needs, and ``index[multi] -> stream``.

    >>> stream_plan([(0, 1)])
    ([0, 1], [(0, 1)], {(): 0, (0,): 1, (1,): 2, (0, 1): 3})
    """
    first = sorted({k for dv in derivs for k in dv})
    pos = {k: f for f, k in enumerate(first)}
    pairs_multi = sorted({dv for dv in derivs if len(dv) == 2})
    pairs = [(pos[a], pos[b]) for a, b in pairs_multi]
    index = {(): 0}
    for f, k in enumerate(first):
        index[(k,)] = 1 + f
    for p, dv in enumerate(pairs_multi):
        index[dv] = 1 + len(first) + p
    return first, pairs, index


@dataclass
class TermData:
    """Everything one sweep needs, in the kernel's layout (shared by both backends).

    xhat (N, d) network inputs; scale (d,) = dx̂/dx; first/pairs the streams; and the
    residual table: monomial m of component comp[m] is coef[m] * Π J[fac_stream, :, fac_out].
    """

    xhat: np.ndarray
    scale: np.ndarray
    first: list
    pairs: list
    components: int = 0
    comp: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    fac_off: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int32))
    fac_stream: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    fac_out: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    coef: np.ndarray = None
    _compiled: dict = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, x, scale, shift, first, pairs, dtype, **table):
        """From physical points x: x̂ = scale*x + shift (computed in float64, then cast)."""
        x = np.asarray(x, dtype=np.float64)
        scale = np.asarray(scale, dtype=np.float64)
        shift = np.asarray(shift, dtype=np.float64)
        xhat = np.ascontiguousarray(x * scale + shift, dtype=dtype)
        t = cls(xhat=xhat, scale=scale.astype(dtype), first=list(first),
                pairs=[tuple(p) for p in pairs], **table)
        if t.coef is None:
            t.coef = np.zeros((len(t.comp), xhat.shape[0]), dtype=dtype)
        t.coef = np.ascontiguousarray(t.coef, dtype=dtype)
        return t

    @property
    def S(self):
        return 1 + len(self.first) + len(self.pairs)

    def compiled(self, dtype):
        """The compiled twin, built once per dtype (``backend.compile_term``)."""
        key = np.dtype(dtype).char
        if key not in self._compiled:
            self._compiled[key] = _kernel.compile_term(self, dtype)
        return self._compiled[key]


@dataclass
class Jet:
    """Network outputs and their input derivatives at N points.

    value (N, m); grad (N, m, d) with grad[n, o, i] = ∂u_o/∂x_i; hess (N, m, d, d) (symmetric).
    """

    value: np.ndarray
    grad: np.ndarray = None
    hess: np.ndarray = None


class MLP:
    """A tanh multilayer perceptron with a linear output layer (docs/design.md §4).

    Parameters
    ----------
    layers : list of int, e.g. [1, 50, 50, 50, 1] (1–4 inputs, any depth and width).
    seed : int, seeds ``numpy.random.default_rng`` for the Xavier-normal weights
        (std = sqrt(2 / (fan_in + fan_out)), Glorot & Bengio 2010); biases start at zero.
    dtype : np.float64 or np.float32.
    backend : "cpp" (compiled kernel) or "numpy" (the reference implementation).

    embedding : ``pc.FourierFeatures``, ``pc.Periodic`` or None — an input embedding applied
        before the first dense layer, with exact jets (``pinncore.embedding``).
    arch : "plain" (tanh MLP) or "modified" (two encoders U, V and gated hidden layers
        h ← (1 − z) ⊙ U + z ⊙ V, Wang, Teng & Perdikaris 2021, eq. 2.36–2.38; equal hidden widths).

    ``net.params`` is the flat parameter vector, layer by layer W_l (out×in, row-major) then
    b_l; with arch="modified" Wu, bu, Wv, bv follow, then a trainable embedding's B (``net.layout``).
    It is writable: optimizers update it in place.

    >>> import numpy as np, pinncore as pc
    >>> net = pc.MLP([2, 16, 1], seed=1)
    >>> net(np.zeros((3, 2))).shape
    (3, 1)
    """

    def __init__(self, layers, seed=0, dtype=np.float64, backend="cpp", *, embedding=None, arch="plain"):
        if isinstance(layers, (str, bytes)) or not hasattr(layers, "__len__"):
            raise TypeError(f"layers must be a list of positive ints, got {layers!r}")
        layers = list(layers)
        if len(layers) < 2:
            raise ValueError(f"layers must list at least an input and an output width, got {layers!r}")
        for w in layers:
            if isinstance(w, bool) or not isinstance(w, (int, np.integer)) or w < 1:
                raise ValueError(f"layers must contain positive integer widths, got {layers!r}")
        if not 1 <= layers[0] <= 4:
            raise ValueError(f"layers[0] (input width) must be 1 to 4, got {layers[0]}")
        try:
            dt = np.dtype(dtype)
        except TypeError as e:
            raise TypeError(f"dtype must be np.float64 or np.float32, got {dtype!r}") from e
        if dt not in _DTYPES:
            raise TypeError(f"dtype must be np.float64 or np.float32, got {dt}")
        if backend not in ("cpp", "numpy"):
            raise ValueError(f"backend must be 'cpp' or 'numpy', got {backend!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"seed must be an int, got {seed!r}")
        if seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed}")
        spec = NetSpec(layers, arch=arch, embedding=embedding)
        n_params = spec.n_params
        if n_params > MAX_PARAMS:
            raise ValueError(f"layers {layers} describe {n_params:.3g} parameters; pinncore supports at most "
                             f"{MAX_PARAMS:.0e} (a PINN needs far fewer)")
        self.layers = [int(w) for w in layers]
        self.dtype = dt
        self.seed = int(seed)
        self.backend_name = backend
        self.spec = self.layout = spec  # the layout (pinncore.layout) of this architecture
        self._params = np.ascontiguousarray(spec.init_params(seed), dtype=dt)
        self._backend = None

    # -- parameters -------------------------------------------------------------------
    @property
    def params(self):
        return self._params

    @params.setter
    def params(self, value):
        if value is None:
            raise TypeError(f"params must be a 1-D {self.dtype} array of length {self.n_params}, got None")
        self._params[...] = self.check_params(value, "params")

    def share_params(self, storage):
        """Keep the parameters in ``storage`` from now on (its current values are overwritten with
        the net's): a C-contiguous, writeable 1-D array of the net's dtype and length
        ``n_params``, e.g. the head of a run's flat vector that holds a problem's unknowns after
        the network's parameters (``pinncore.unknown``), so the kernel reads what the optimizer
        writes without a copy.

        >>> import numpy as np, pinncore as pc
        >>> net = pc.MLP([1, 2, 1]); flat = np.zeros(net.n_params + 1)
        >>> net.share_params(flat[:net.n_params]); flat[0] = 5.0; float(net.params[0])
        5.0
        """
        arr = storage
        if not (isinstance(arr, np.ndarray) and arr.dtype == self.dtype and arr.shape == (self.n_params,)
                and arr.flags.c_contiguous and arr.flags.writeable):
            raise ValueError(f"storage must be a writeable C-contiguous {self.dtype} array of shape "
                             f"({self.n_params},)")
        arr[...] = self._params
        self._params = arr

    @property
    def n_params(self):
        return self._params.size

    @property
    def n_inputs(self):
        return self.layers[0]

    @property
    def n_outputs(self):
        return self.layers[-1]

    @property
    def backend(self):
        if self._backend is None:
            cls = _kernel.CppBackend if self.backend_name == "cpp" else reference.NumpyBackend
            self._backend = cls(self.layers if self.spec.plain else self.spec, self.dtype)
        return self._backend

    def check_params(self, p, name="params"):
        """A C-contiguous copy-free view of ``p`` if it fits this network, else a clear error."""
        if p is None:
            if not np.isfinite(self._params).all():
                raise ValueError("net.params contains NaN or infinite values")
            return self._params
        arr = np.asarray(p)
        if arr.dtype != self.dtype:
            raise TypeError(f"{name} must have dtype {self.dtype}, got {arr.dtype}")
        if arr.ndim != 1 or arr.size != self.n_params:
            raise ValueError(f"{name} must be 1-D of length {self.n_params}, got shape {arr.shape}")
        arr = np.ascontiguousarray(arr)
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} contains NaN or infinite values")
        return arr

    def copy(self):
        """An independent network with the same architecture and parameters."""
        other = MLP(self.layers, seed=self.seed, dtype=self.dtype, backend=self.backend_name,
                    embedding=self.embedding, arch=self.arch)
        if other.spec.B is not None:
            other.spec.B[...] = self.spec.B
        other._params[...] = self._params
        return other

    @property
    def embedding(self):
        """The input embedding (``pc.FourierFeatures``, ``pc.Periodic``) or None."""
        return self.spec.embedding

    @property
    def arch(self):
        """``"plain"`` or ``"modified"`` (Wang, Teng & Perdikaris 2021, eq. 2.36–2.38)."""
        return self.spec.arch

    def weight_mask(self):
        """Boolean mask over ``params``: True on dense weight-matrix entries (the layout is in
        ``pinncore.embedding``).

        >>> import pinncore as pc
        >>> pc.MLP([1, 2, 1]).weight_mask().astype(int).tolist()
        [1, 1, 0, 0, 1, 1, 0]
        """
        return self.spec.weight_mask()

    # -- evaluation ---------------------------------------------------------------------
    def _term(self, x, derivs, scale=None, shift=None, name="x"):
        d = self.n_inputs
        x = check_points(x, d, name, np.float64)
        scale = np.ones(d) if scale is None else _vector(scale, d, "scale")
        shift = np.zeros(d) if shift is None else _vector(shift, d, "shift")
        with np.errstate(all="ignore"):
            xhat = x * scale + shift
        if not np.isfinite(xhat).all() or np.abs(xhat).max(initial=0.0) > np.finfo(self.dtype).max:
            raise ValueError(f"{name} * scale + shift exceeds the range of {self.dtype} (|x̂| must stay below "
                             f"{np.finfo(self.dtype).max:.3g})")
        first, pairs, index = stream_plan(derivs)
        return TermData.build(x, scale, shift, first, pairs, self.dtype), index

    def __call__(self, x, params=None):
        """Network outputs at x (N, d) -> (N, m)."""
        return self.jets(x, [()], params=params)[0]

    def jets(self, x, derivs, *, params=None, scale=None, shift=None):
        """Low-level forward for front ends: the requested output derivatives, (len(derivs), N, m).

        derivs: list of multi-indices, () value, (i,) ∂/∂x_i, (i, j) ∂²/∂x_i∂x_j (only these
        streams, plus the first-order ones a pair needs, are propagated). Optional input
        scaling x̂ = scale*x + shift is applied before the network; derivatives are w.r.t. x.

        >>> import numpy as np, pinncore as pc
        >>> net = pc.MLP([2, 8, 1])
        >>> net.jets(np.zeros((4, 2)), [(), (0, 1)]).shape
        (2, 4, 1)
        """
        derivs = parse_derivs(derivs, self.n_inputs)
        p = self.check_params(params)
        term, index = self._term(x, derivs, scale, shift)
        J = self.backend.jets(p, term)
        return np.ascontiguousarray(J[[index[dv] for dv in derivs]])

    def jets_vjp(self, x, derivs, adjoint, *, norms=False, params=None, scale=None, shift=None):
        """Low-level reverse sweep: ∇θ Σ adjoint·jets, and optionally each point's squared
        gradient norm ‖∂(Σ_s adjoint_s·J_s)(x_n)/∂θ‖² (the NTK diagonal, by the Gram identity).

        adjoint has the shape of ``jets(x, derivs)``: (len(derivs), N, m).

        >>> import numpy as np, pinncore as pc
        >>> net = pc.MLP([1, 8, 1])
        >>> g, n = net.jets_vjp(np.ones((3, 1)), [()], np.ones((1, 3, 1)), norms=True)
        >>> g.shape, n.shape
        ((25,), (3,))
        """
        derivs = parse_derivs(derivs, self.n_inputs)
        if len(set(derivs)) != len(derivs):
            raise ValueError("derivs must not repeat an entry in jets_vjp")
        p = self.check_params(params)
        term, index = self._term(x, derivs, scale, shift)
        a = np.asarray(adjoint)
        if a.dtype.kind not in "f":
            raise TypeError(f"adjoint must be a floating array, got dtype {a.dtype}")
        N = term.xhat.shape[0]
        if a.shape != (len(derivs), N, self.n_outputs):
            raise ValueError(f"adjoint must have shape {(len(derivs), N, self.n_outputs)}, got {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError("adjoint contains NaN or infinite values")
        full = np.zeros((term.S, N, self.n_outputs), dtype=self.dtype)
        for k, dv in enumerate(derivs):
            full[index[dv]] = a[k]
        grad, nrm = self.backend.vjp(p, term, full, norms)
        return (grad, nrm) if norms else grad

    def derivatives(self, x, order=2, params=None):
        """Outputs and all input derivatives up to ``order`` (0, 1 or 2) at x (N, d).

        Returns a ``Jet`` with .value (N, m), .grad (N, m, d) if order >= 1 and .hess
        (N, m, d, d) if order == 2 (mixed entries included, symmetric).

        >>> import numpy as np, pinncore as pc
        >>> jet = pc.MLP([2, 8, 1]).derivatives(np.zeros((3, 2)), order=1)
        >>> jet.grad.shape
        (3, 1, 2)
        """
        if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order not in (0, 1, 2):
            raise ValueError(f"order must be 0, 1 or 2, got {order!r}")
        d = self.n_inputs
        derivs = [()]
        if order >= 1:
            derivs += [(i,) for i in range(d)]
        if order == 2:
            derivs += [(i, j) for i in range(d) for j in range(i, d)]
        J = self.jets(x, derivs, params=params)
        jet = Jet(value=J[0])
        if order >= 1:
            jet.grad = np.ascontiguousarray(np.moveaxis(J[1:1 + d], 0, -1))
        if order == 2:
            N, m = J.shape[1], J.shape[2]
            hess = np.empty((N, m, d, d), dtype=self.dtype)
            k = 1 + d
            for i in range(d):
                for j in range(i, d):
                    hess[:, :, i, j] = J[k]
                    hess[:, :, j, i] = J[k]
                    k += 1
            jet.hess = hess
        return jet

    # -- files ----------------------------------------------------------------------------
    def save(self, path):
        """Save architecture and parameters (pinncore.io: versioned, checksummed, atomic, no pickle).

        >>> import pinncore as pc, tempfile, os
        >>> net = pc.MLP([1, 4, 1], seed=2); path = os.path.join(tempfile.mkdtemp(), "net.pcn")
        >>> net.save(path); (pc.MLP.load(path).params == net.params).all()
        np.True_
        """
        from . import io
        tree = {"layers": list(self.layers), "dtype": self.dtype.name, "seed": self.seed,
                "backend": self.backend_name, "params": self._params}
        tree.update(self.spec_state())
        io.save(path, tree, kind=MLP_KIND)

    def spec_state(self):
        """The architecture fields of a saved network or training state: ``arch``, ``embedding``
        (its config or None) and ``embedding_B`` (the fixed frequencies, saved so a file rebuilds
        the same function whatever NumPy's generator does), only when not plain."""
        if self.spec.plain:
            return {}
        return {"arch": self.arch, "embedding": None if self.embedding is None else self.embedding.config(),
                "embedding_B": None if self.spec.B is None else self.spec.B.copy()}

    @classmethod
    def from_spec_state(cls, tree, layers, seed, dtype, backend, source="state"):
        """The network ``spec_state`` describes (fields absent: a plain MLP); errors name ``source``."""
        arch = tree.get("arch", "plain")
        try:
            emb = embedding_from_config(tree.get("embedding"))
            net = cls(layers, seed=seed, dtype=dtype, backend=backend, embedding=emb, arch=arch)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{source}: invalid network: {e}") from e
        B = tree.get("embedding_B")
        if net.spec.B is not None:
            if not isinstance(B, np.ndarray) or B.dtype != np.float64 or B.shape != net.spec.B.shape or not np.isfinite(B).all():
                raise ValueError(f"{source}: embedding_B must be a finite float64 array of shape {net.spec.B.shape}")
            net.spec.B[...] = B
        return net

    @classmethod
    def load(cls, path, backend=None):
        """Load a network saved by ``save``; every field is validated before use."""
        from . import io
        tree = io.load(path, kind=MLP_KIND)
        try:
            layers, dtype, params = tree["layers"], tree["dtype"], tree["params"]
            seed, saved_backend = tree.get("seed", 0), tree.get("backend", "cpp")
        except (KeyError, TypeError) as e:
            raise io.FormatError(f"{path}: not a pinncore network file (missing {e})") from e
        if not (isinstance(layers, list) and 2 <= len(layers) <= 1000
                and all(isinstance(w, int) and not isinstance(w, bool) and 1 <= w <= 1_000_000 for w in layers)):
            raise io.FormatError(f"{path}: invalid layers {layers!r}")
        if dtype not in ("float64", "float32"):
            raise io.FormatError(f"{path}: invalid dtype {dtype!r}")
        # The parameter count the layers describe, checked against the array the file really
        # holds before the network is built: a 434-byte file declaring [1, 9000, 9000, 1] made
        # the constructor allocate and initialise 81 million parameters first.
        try:
            n = arch_n_params(layers, tree.get("arch", "plain"), embedding_from_config(tree.get("embedding")))
        except (TypeError, ValueError) as e:
            raise io.FormatError(f"{path}: invalid network: {e}") from e
        if not isinstance(params, np.ndarray) or params.dtype != np.dtype(dtype) or params.shape != (n,):
            raise io.FormatError(f"{path}: params must be a {dtype} array of shape ({n},) for layers {layers}")
        if not np.isfinite(params).all():
            raise io.FormatError(f"{path}: params contain NaN or infinite values")
        try:
            net = cls.from_spec_state(tree, layers, seed if isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0 else 0,
                                      np.dtype(dtype), backend or (saved_backend if saved_backend in ("cpp", "numpy") else "cpp"),
                                      source=str(path))
        except (TypeError, ValueError) as e:
            raise io.FormatError(str(e) if str(e).startswith(str(path)) else f"{path}: invalid network: {e}") from e
        net._params[...] = params
        return net

    def __repr__(self):
        extra = "" if self.spec.plain else f", embedding={self.embedding!r}, arch={self.arch!r}"
        return f"MLP({self.layers}, dtype={self.dtype.name}, backend={self.backend_name!r}{extra})"
