"""Unknown coefficients of an equation, identified from data with the network (inverse problems).

``pc.Unknown("nu", 0.05, positive=True)`` is a scalar written directly in residuals
(``lambda x, u: u.t + u*u.x - nu*u.xx``). To the residual language (``pinncore.residual``) it is
a leaf like a jet variable: a polynomial residual stays a monomial table, in which an unknown is
one more factor, so the kernel still evaluates the term fused with the unknowns' current values
folded into the monomial coefficients, and ∂r/∂θ is exactly the table's derivative with respect
to that factor (Raissi, Perdikaris & Karniadakis 2019, part II, "data-driven discovery").

**The trained parameter.** The optimizers see a raw parameter φ per unknown, placed after the
network's parameters in the flat vector (``[θ_net (n_params), φ_1 .. φ_U]``, docs/design.md §4):
θ = φ for a free unknown, θ = exp(φ) for ``positive=True`` — the exponential keeps θ > 0 and
makes a step in φ a relative change of θ, which suits coefficients such as viscosities whose
scale is not known in advance (0.003 and 0.3 are equally far from an initial 0.05).
``Unknowns`` is the ordered set of a problem's unknowns and this map φ ↔ θ.

>>> nu = Unknown("nu", 0.05, positive=True)
>>> nu, str(2.0 * nu)
(Unknown('nu', init=0.05, positive=True), '2.0*nu')
>>> us = Unknowns([nu, Unknown("c", -1.0)])
>>> us.names, us.values(us.raw_init()).round(12).tolist()
(['nu', 'c'], [0.05, -1.0])
"""
from __future__ import annotations

import itertools
import math
import numbers

import numpy as np

from .residual import Expr

__all__ = ["Unknown", "Unknowns", "flat_vector", "saved_unknowns"]


class Unknown(Expr):
    """A scalar coefficient of a residual, trained with the network (see the module docstring).

    name : an identifier, unique among the problem's unknowns, terms and outputs; it names the
        value in ``result.unknowns`` and the history column ``unknown:<name>``.
    init : the finite initial value. positive : train θ = exp(φ) (θ stays > 0; init must be > 0).

    >>> import numpy as np, pinncore as pc
    >>> c = pc.Unknown("c", 0.5)
    >>> t = np.linspace(0.0, 1.0, 11)[:, None]
    >>> problem = pc.Problem(["t"], ["u"], {"pde": pc.Term(t, lambda x, u: u.t - c * u)}, {"t": (0.0, 1.0)})
    >>> problem.unknowns.names
    ['c']
    """

    __slots__ = ("init", "positive", "serial")
    _created = itertools.count()   # creation order: a problem lists its unknowns as they were written

    def __init__(self, name, init, *, positive=False):
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"Unknown name must be an identifier string, got {name!r}")
        if isinstance(init, bool) or not isinstance(init, numbers.Real) or not math.isfinite(float(init)):
            raise ValueError(f"unknown {name!r}: init must be a finite real number, got {init!r}")
        if not isinstance(positive, bool):
            raise TypeError(f"unknown {name!r}: positive must be True or False, got {positive!r}")
        if positive and float(init) <= 0:
            raise ValueError(f"unknown {name!r}: positive=True needs init > 0, got {float(init)!r}")
        super().__init__("unknown", (name,))
        object.__setattr__(self, "init", float(init))
        object.__setattr__(self, "positive", positive)
        object.__setattr__(self, "serial", next(Unknown._created))

    @property
    def name(self):
        return self.args[0]

    def __repr__(self):
        return f"Unknown({self.name!r}, init={self.init!r}" + (", positive=True)" if self.positive else ")")


class Unknowns:
    """The ordered unknowns of a problem and the map between raw parameters φ and values θ.

    >>> a, b = Unknown("a", 2.0, positive=True), Unknown("b", 3.0)
    >>> us = Unknowns([a, b])
    >>> raw = us.raw_init(); raw.round(6).tolist()
    [0.693147, 3.0]
    >>> us.derivatives(raw).tolist()          # dθ/dφ: θ for a positive unknown, 1 otherwise
    [2.0, 1.0]
    >>> us.index(b), len(us), us.as_dict(raw)
    (1, 2, {'a': 2.0, 'b': 3.0})
    """

    def __init__(self, unknowns=()):
        self.items = list(unknowns)
        seen = {}
        for u in self.items:
            if not isinstance(u, Unknown):
                raise TypeError(f"unknowns must be pc.Unknown objects, got {type(u).__name__}")
            if u.name in seen and seen[u.name] is not u:
                raise ValueError(f"two unknowns are named {u.name!r}; each pc.Unknown needs its own name")
            seen[u.name] = u
        self._index = {id(u): k for k, u in enumerate(self.items)}
        self.names = [u.name for u in self.items]
        self.positive = np.array([u.positive for u in self.items], dtype=bool)

    def __len__(self):
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    def __contains__(self, u):
        return id(u) in self._index

    def index(self, u):
        """The position of unknown ``u`` (the same object) in the flat vector's tail."""
        return self._index[id(u)]

    def raw_init(self):
        """φ at the unknowns' initial values (U,) float64."""
        return self.raw(np.array([u.init for u in self.items], dtype=np.float64))

    def raw(self, values):
        """φ from values θ: log θ for positive unknowns."""
        v = np.asarray(values, dtype=np.float64)
        return np.where(self.positive, np.log(np.where(self.positive, v, 1.0)), v)

    def values(self, raw):
        """θ from raw parameters φ (U,) float64."""
        r = np.asarray(raw, dtype=np.float64)
        return np.where(self.positive, np.exp(np.where(self.positive, r, 0.0)), r)

    def derivatives(self, raw):
        """dθ/dφ (U,): the chain-rule factor from ∂L/∂θ to the optimizer's ∂L/∂φ."""
        return np.where(self.positive, self.values(raw), 1.0)

    def as_dict(self, raw):
        """{name: θ} as Python floats (``result.unknowns``)."""
        return {k: float(v) for k, v in zip(self.names, self.values(raw))}


def flat_vector(net, unknowns):
    """The optimizer's vector of a run: ``net.params`` itself without unknowns, else a new array
    [the net's parameters | the unknowns' raw initial values φ] in which the net keeps its
    parameters from now on (``MLP.share_params``: the kernel reads what the optimizer writes).

    >>> import pinncore as pc
    >>> net = pc.MLP([1, 2, 1])
    >>> flat = flat_vector(net, Unknowns([Unknown("k", 2.0)]))
    >>> flat.shape, float(flat[-1]), flat_vector(net, Unknowns()) is net.params
    ((8,), 2.0, True)
    """
    if not len(unknowns):
        return net.params
    P = net.n_params
    flat = np.empty(P + len(unknowns), dtype=net.dtype)
    flat[P:] = unknowns.raw_init()
    net.share_params(flat[:P])
    return flat


def saved_unknowns(state, unknowns):
    """The raw parameters φ saved in a training ``state``, checked by name against ``unknowns``
    (a state from a problem with other unknowns is refused, naming the unknown).

    >>> saved_unknowns({"unknowns": {"names": ["k"], "raw": np.array([0.5])}}, Unknowns([Unknown("k", 1.0)]))
    array([0.5])
    """
    saved = state.get("unknowns", {"names": [], "raw": np.zeros(0)})
    names = unknowns.names
    extra = [k for k in saved["names"] if k not in names]
    if extra:
        raise ValueError(f"resume state has unknown {extra[0]!r}, which this problem does not have "
                         f"(its unknowns: {names})")
    if list(saved["names"]) != names:
        missing = [k for k in names if k not in saved["names"]]
        raise ValueError(f"resume state has unknowns {list(saved['names'])}; the problem has {names}"
                         + (f" (unknown {missing[0]!r} is not saved)" if missing else ""))
    return saved["raw"]
