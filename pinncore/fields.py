"""The symbols a residual is written in, and tracing a residual function into expressions.

``x`` (:class:`Coordinates`) and one :class:`Field` per network output are what a residual
``lambda x, u: ...`` receives; ``u.t``, ``u.xx``, ``u.d("x1")`` are derivative fields built by
the language's symbolic differentiation (``pinncore.residual``). :func:`trace_expressions`
calls a residual once on these symbols (with a hard-constraint transform substituted in);
``pinncore.table`` lowers the expressions at points.
"""
from __future__ import annotations

import numpy as np

from .residual import MAX_ORDER, Expr, UnknownNameError

__all__ = ["Coordinates", "Field", "trace_expressions", "check_names", "coordinate_names", "field_label"]


# ---------------------------------------------------------------------------------------
# User-facing symbols: coordinates and fields
# ---------------------------------------------------------------------------------------

class Coordinates:
    """The ``x`` argument of residuals/transforms: ``x.t``, ``x["x1"]``, ``x[0]``."""

    __slots__ = ("_inputs", "_exprs")

    def __init__(self, inputs):
        object.__setattr__(self, "_inputs", tuple(inputs))
        object.__setattr__(self, "_exprs",
                           tuple(Expr("coord", (k, n)) for k, n in enumerate(inputs)))

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._inputs:
            return self._exprs[self._inputs.index(name)]
        raise UnknownNameError(
            f"unknown coordinate 'x.{name}': inputs are {list(self._inputs)}")

    def __getitem__(self, key):
        if isinstance(key, str):
            if key in self._inputs:
                return self._exprs[self._inputs.index(key)]
            raise UnknownNameError(
                f"unknown coordinate x[{key!r}]: inputs are {list(self._inputs)}")
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            if -len(self._inputs) <= key < len(self._inputs):
                return self._exprs[key]
            raise UnknownNameError(
                f"coordinate index {key} out of range: inputs are {list(self._inputs)}")
        raise TypeError(f"coordinates are indexed by name or integer, not {type(key).__name__}")

    def __setattr__(self, name, value):
        raise AttributeError("coordinates are read-only")

    def __len__(self):
        return len(self._inputs)

    def __repr__(self):
        return f"Coordinates({list(self._inputs)})"


class Field(Expr):
    """A (possibly transformed) network output as seen by a residual.

    It is an :class:`Expr` (so ``u * u.x`` works) that additionally exposes input
    derivatives: ``u.t``, ``u.xx``, ``u.tx`` (attributes made of single-letter input names),
    ``u.d("x1", "x2")`` for any names, ``u.d()`` for the value itself. (An input named ``d``:
    ``u.d`` is this method, so write its first derivative as ``u.d("d")``; ``u.dd`` works.)
    """

    __slots__ = ("_inputs", "_label", "_order")

    def __init__(self, expr, inputs, label, order=0):
        super().__init__(expr.op, expr.args)
        set_ = object.__setattr__
        set_(self, "_dcache", expr.derivative_cache)  # shared with the expression
        set_(self, "_inputs", tuple(inputs))
        set_(self, "_label", label)
        set_(self, "_order", order)

    def _derivative(self, idx, label):
        order = self._order + len(idx)
        if order > MAX_ORDER:
            raise ValueError(f"derivative '{label}' has order {order}; "
                             f"order > {MAX_ORDER} is not supported")
        e = self
        for k in idx:
            e = e.diff(k)
        return Field(e, self._inputs, label, order)

    def d(self, *names):
        """Derivative with respect to the named inputs (names or indices); ``d()`` = value."""
        idx = []
        for n in names:
            if isinstance(n, str):
                if n not in self._inputs:
                    raise UnknownNameError(
                        f"unknown derivative name {n!r} in {self._label}.d(...): "
                        f"inputs are {list(self._inputs)}")
                idx.append(self._inputs.index(n))
            elif isinstance(n, (int, np.integer)) and not isinstance(n, bool) \
                    and 0 <= n < len(self._inputs):
                idx.append(int(n))
            else:
                raise UnknownNameError(
                    f"bad derivative name {n!r} in {self._label}.d(...): "
                    f"inputs are {list(self._inputs)}")
        if not idx:
            return self
        label = f"{self._label}.d({', '.join(repr(self._inputs[k]) for k in idx)})"
        return self._derivative(idx, label)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        label = f"{self._label}.{name}"
        single = {n: k for k, n in enumerate(self._inputs) if len(n) == 1}
        if all(ch in single for ch in name):
            return self._derivative([single[ch] for ch in name], label)
        if name in self._inputs:  # u.x1 for a multi-letter input name
            return self._derivative([self._inputs.index(name)], label)
        raise UnknownNameError(
            f"unknown derivative '{label}': inputs are {list(self._inputs)}")

    def __repr__(self):
        return f"Field({self._label} = {Expr.__str__(self)})"


# ---------------------------------------------------------------------------------------

def coordinate_names(x):
    """The input names of a ``Coordinates`` (functions, not attributes: ``x.<name>`` is a coordinate).

    >>> coordinate_names(Coordinates(["t", "x"]))
    ('t', 'x')
    """
    return x._inputs


def field_label(u):
    """The label of a ``Field`` ("u", "u.x", ...) (a function: ``u.<letters>`` is a derivative).

    >>> field_label(Field(Expr("coord", (0, "t")), ["t"], "u").t)
    'u.t'
    """
    return u._label


def check_names(names, what):
    if isinstance(names, str) or not all(isinstance(n, str) and n.isidentifier()
                                         for n in names):
        raise ValueError(f"{what} must be a list of identifier strings, got {names!r}")
    names = list(names)
    if not names:
        raise ValueError(f"{what} must not be empty")
    if len(set(names)) != len(names):
        raise ValueError(f"{what} has duplicate names: {names}")
    return names


def _components(result, who):
    expected = "expected an expression of the fields or a list of them"
    if isinstance(result, Expr):
        return [result]
    if isinstance(result, (list, tuple)):
        if not result:
            raise ValueError(f"{who} returned an empty {type(result).__name__}; {expected}")
        for k, item in enumerate(result):
            if not isinstance(item, Expr):
                raise ValueError(f"{who} component {k} is {type(item).__name__}; {expected}")
        return list(result)
    raise ValueError(f"{who} returned {type(result).__name__}; {expected}")


def trace_expressions(residual, inputs, outputs, transform=None, name="residual"):
    """Call ``residual(x, *fields)`` once on symbols: its components as expressions (list of
    :class:`Expr`) in the jet variables of the RAW network outputs.

    With ``transform(x, *raw)`` the fields are the transform's expressions of the raw outputs
    (hard constraints); ``inputs`` and ``outputs`` are checked name lists. Lowering the
    expressions at points is ``pinncore.table.trace``.

    >>> [str(e) for e in trace_expressions(lambda x, u: u.tt + 4.0 * u, ["t"], ["u"])]
    ['u.tt + 4.0*u']
    """
    x = Coordinates(inputs)
    raw = [Field(Expr("jet", (o, (), out, tuple(inputs))), inputs, out)
           for o, out in enumerate(outputs)]
    fields = raw
    if transform is not None:
        who = f"transform for '{name}'"
        try:
            res = transform(x, *raw)
        except Exception as e:
            raise ValueError(f"{who} raised {type(e).__name__}: {e}") from e
        exprs = _components(res, who)
        if len(exprs) != len(outputs):
            raise ValueError(f"{who} returned {len(exprs)} expressions for "
                             f"{len(outputs)} outputs {outputs}")
        fields = [Field(e, inputs, out) for e, out in zip(exprs, outputs)]

    try:
        res = residual(x, *fields)
    except Exception as e:
        raise ValueError(f"residual '{name}' raised {type(e).__name__}: {e}") from e
    return _components(res, f"residual '{name}'")
