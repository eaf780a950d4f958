"""Symbolic tracing of PINN residuals into per-point term tables.

A residual is a plain Python function over symbolic arguments. It is called ONCE with a
coordinate namespace ``x`` and one :class:`Field` per network output; the operations it
performs build an immutable expression DAG (:class:`Expr`). :func:`trace` then lowers that
DAG, at a fixed set of points, into a :class:`Table`: the residual components as functions
of the *jet variables* of the raw network outputs (value, first and second input
derivatives).

Two representations exist because two consumers exist:

* polynomial residuals (sums of products of jet variables with coefficients that depend only
  on coordinates — the overwhelmingly common case) become a flat monomial table that the C++
  kernel evaluates and differentiates fused, with no Python per training step;
* anything else (``sin(u)``, ``u / u.t``, ``u ** 0.5``) falls back to forward-mode dual
  arithmetic over the DAG in NumPy, which still gives exact first derivatives.

Hard constraints (``transform``) are traced the same way: the field the residual sees is an
expression of the raw output ``n``, and its derivatives are taken symbolically (product rule,
chain rule) so that the table is still expressed in the raw output's jet variables.

The elementwise functions (``sin``, ``exp``, ``log``, ...) are entries of one registry,
:data:`FUNCTIONS`: each :class:`Function` holds its NumPy value, its derivative rule, its
printing name and its domain, and the public wrappers (``pc.sin``), ``np.sin(field)``,
differentiation and evaluation all read from it. A field-dependent argument outside a
domain (``log(u)`` with u <= 0, ``u**0.5`` with u < 0) is a :class:`DomainError` at
evaluation. The language is described in docs/design.md §3.

This module owns the language and its lowering; problem.py decides when to trace, and the
kernel (via backend.py) evaluates polynomial tables.
"""

from __future__ import annotations

import builtins
import numbers

import numpy as np

# The language's functions are appended from the registry (see FUNCTIONS below).
__all__ = ["Expr", "Field", "Coordinates", "Table", "UnknownNameError", "DomainError", "Function",
           "FUNCTIONS", "trace", "pointwise"]

MAX_ORDER = 2
# A polynomial table expands powers and products into monomials (u**k is k repeated factors,
# (a + b)**k has k + 1 terms). Past these sizes the expansion would grow with the exponent
# (u**1e308 never finished, u**1e4 took 10 s a step): such a table is evaluated by the dual
# fallback instead, where a power is one node, a ** p, whatever p is.
MAX_POLY_DEGREE = 16
MAX_POLY_MONOMIALS = 4096


class UnknownNameError(ValueError, AttributeError):
    """An unknown coordinate or derivative name.

    Also an AttributeError so that ``hasattr(u, "foo")`` keeps its usual meaning.
    """


# ---------------------------------------------------------------------------------------
# Expression DAG
# ---------------------------------------------------------------------------------------

def _is_number(v):
    # bool is excluded on purpose: `u * True` is almost certainly a bug in a residual.
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


def _as_expr(v):
    if isinstance(v, Expr):
        return v
    if _is_number(v):
        return _const(float(v))
    if isinstance(v, np.ndarray):
        raise TypeError(
            "numpy arrays cannot be combined with residual expressions; per-point "
            "coefficients must be written in terms of the coordinates (e.g. pc.sin(pi * x.x))")
    raise TypeError(f"cannot combine a residual expression with {type(v).__name__}")


def _const(c):
    return Expr("const", (float(c),))


def _is_const(e, value=None):
    return e.op == "const" and (value is None or e.args[0] == value)


class Expr:
    """Immutable node of a residual expression DAG.

    Nodes: ``const`` (number), ``coord`` (input coordinate), ``jet`` (a jet variable of a raw
    network output), ``add``, ``neg``, ``mul``, ``div``, ``pow`` (real exponent), ``fn``
    (a registered :class:`Function` of one argument).  Two flags are computed at construction so lowering
    never has to search: ``coord_only`` (no network output inside) and ``poly``
    (polynomial in the jet variables with coordinate-only coefficients).
    """

    __slots__ = ("op", "args", "coord_only", "poly", "_dcache")
    # Lets numpy scalars (np.float64(2.0) * u) and ufuncs (np.sin(u)) defer to us.
    __array_priority__ = 1000

    def __init__(self, op, args):
        set_ = object.__setattr__
        set_(self, "op", op)
        set_(self, "args", tuple(args))
        set_(self, "_dcache", {})
        if op in ("const", "coord", "data"):
            coord_only, poly = True, True
        elif op == "jet":
            coord_only, poly = False, True
        elif op in ("add", "neg", "mul"):
            coord_only = all(a.coord_only for a in args)
            poly = all(a.poly for a in args)
        elif op == "div":
            a, b = args
            coord_only = a.coord_only and b.coord_only
            poly = a.poly and b.coord_only
        elif op == "pow":
            a, p = args
            coord_only = a.coord_only
            poly = a.coord_only or (a.poly and float(p).is_integer() and p >= 0)
        elif op == "fn":
            coord_only = args[1].coord_only
            poly = coord_only
        else:  # pragma: no cover - internal misuse
            raise AssertionError(op)
        set_(self, "coord_only", coord_only)
        set_(self, "poly", poly)

    def __setattr__(self, name, value):
        raise AttributeError("residual expressions are immutable")

    # Identity hashing: __eq__ is disabled (see below), and the evaluators key memo tables
    # by node identity anyway.
    __hash__ = object.__hash__

    # -- arithmetic ----------------------------------------------------------------------
    def __add__(self, other):
        return _add(self, _as_expr(other))

    def __radd__(self, other):
        return _add(_as_expr(other), self)

    def __sub__(self, other):
        return _add(self, _neg(_as_expr(other)))

    def __rsub__(self, other):
        return _add(_as_expr(other), _neg(self))

    def __mul__(self, other):
        return _mul(self, _as_expr(other))

    def __rmul__(self, other):
        return _mul(_as_expr(other), self)

    def __truediv__(self, other):
        return _div(self, _as_expr(other))

    def __rtruediv__(self, other):
        return _div(_as_expr(other), self)

    def __neg__(self):
        return _neg(self)

    def __pos__(self):
        return self

    def __pow__(self, p):
        if isinstance(p, Expr) or not _is_number(p):
            raise TypeError("the exponent of a residual expression must be a real number")
        try:
            q = float(p)
        except OverflowError:
            q = float("inf")
        if not np.isfinite(q):
            raise ValueError(f"the exponent of {_short(self)} ** p must be a finite real number, got {p!r}")
        return _pow(self, q)

    def __rpow__(self, base):
        # number ** expr == exp(expr * log(number)); only meaningful for a positive base.
        if not _is_number(base) or base <= 0:
            raise TypeError("number ** expression needs a positive real base")
        return exp(self * float(np.log(base)))

    # -- things a residual must not do -----------------------------------------------------
    def _no_values(self, *_):
        raise TypeError(
            "a residual expression has no value at trace time: residuals may not branch on "
            "or compare field values (use pc.sin/pc.exp/... instead of math functions)")

    __bool__ = __lt__ = __le__ = __gt__ = __ge__ = __eq__ = __ne__ = _no_values
    __float__ = __int__ = __index__ = __complex__ = _no_values

    # -- numpy interop ---------------------------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if ufunc in _COMPARISONS:  # np.float64(1.0) < u calls np.less: same error as u > 1.0
            self._no_values()
        impl = _UFUNCS.get(ufunc)
        if method != "__call__" or impl is None or kwargs:
            call = f"np.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}")
            raise TypeError(_unsupported(call + (f" with {', '.join(kwargs)}=" if kwargs else "")))
        return impl(*inputs)

    def __abs__(self):
        return abs(self)  # the language's abs (see the registry), not the builtin

    # -- symbolic differentiation -----------------------------------------------------------
    def diff(self, i):
        """Derivative with respect to input index ``i`` (physical coordinate)."""
        i = int(i)
        cached = self._dcache.get(i)
        if cached is None:
            cached = _diff(self, i)
            self._dcache[i] = cached
        return cached

    # -- printing -----------------------------------------------------------------------
    def __str__(self):
        return _to_str(self)

    def __repr__(self):
        return f"Expr({_to_str(self)})"


def _add(a, b):
    if _is_const(a) and _is_const(b):
        return _const(a.args[0] + b.args[0])
    if _is_const(a, 0.0):
        return b
    if _is_const(b, 0.0):
        return a
    return Expr("add", (a, b))


def _neg(a):
    if _is_const(a):
        return _const(-a.args[0])
    if a.op == "neg":
        return a.args[0]
    return Expr("neg", (a,))


def _mul(a, b):
    if _is_const(a) and _is_const(b):
        return _const(a.args[0] * b.args[0])
    # Exact zeros come mostly from differentiating constants (transforms); dropping them
    # keeps spurious jet variables out of the table.
    if _is_const(a, 0.0) or _is_const(b, 0.0):
        return _const(0.0)
    if _is_const(a, 1.0):
        return b
    if _is_const(b, 1.0):
        return a
    return Expr("mul", (a, b))


def _div(a, b):
    if _is_const(b, 0.0):
        raise ZeroDivisionError("residual expression divided by zero")
    if _is_const(a) and _is_const(b):
        return _const(a.args[0] / b.args[0])
    if _is_const(a, 0.0):
        return _const(0.0)
    if _is_const(b, 1.0):
        return a
    return Expr("div", (a, b))


def _pow(a, p):
    if p == 0.0:
        return _const(1.0)
    if p == 1.0:
        return a
    if _is_const(a):
        c = a.args[0]
        if c < 0 and not p.is_integer():
            raise ValueError(f"({c!r}) ** {p!r} is not a real number")
        return _const(c ** p)
    return Expr("pow", (a, p))


# ---------------------------------------------------------------------------------------
# The elementwise functions of the language: one registry entry each
# ---------------------------------------------------------------------------------------

FUNCTIONS = {}  # name -> Function, in definition order (pc.<name> for each)

# Ufuncs a residual may apply to an expression: arithmetic here; each Function adds its own.
_UFUNCS = {
    np.add: lambda a, b: _as_expr(a) + _as_expr(b),
    np.subtract: lambda a, b: _as_expr(a) - _as_expr(b),
    np.multiply: lambda a, b: _as_expr(a) * _as_expr(b),
    np.true_divide: lambda a, b: _as_expr(a) / _as_expr(b),
    np.negative: lambda a: -_as_expr(a),
    np.power: lambda a, b: _as_expr(a) ** b,
}

# Domains: (outside, text), outside(a) true where the value or the derivative is not finite
# (the dual evaluator needs both). Written so that NaN is never outside (comparisons with NaN
# are false): a NaN argument means the network diverged, which the trainer reports.
_POSITIVE = (lambda a: a <= 0, "positive")
_NON_NEGATIVE = (lambda a: a < 0, "non-negative")
_NON_ZERO = (lambda a: a == 0, "non-zero")


class DomainError(ValueError):
    """A field-dependent residual evaluated where it is undefined (``log(u)`` with u ≤ 0,
    ``u**0.5`` with u < 0, ``u / u.t`` with u.t = 0): the message names the term, the operation
    and the first offending point; ``term`` is the term's name (a run reports it as a
    divergence, and a line search backtracks from it, as from a NaN loss)."""

    def __init__(self, message, term=None):
        super().__init__(message)
        self.term = term


class Function:
    """One elementwise function of the residual language, defined in one place.

    Creating one registers it in :data:`FUNCTIONS`; from that entry alone follow the public
    wrapper (``pc.<name>``), NumPy dispatch (``np.<ufunc>(field)``), printing, symbolic
    differentiation (``u.t`` of ``sin(u)``, transforms) and dual evaluation.

    name : the printing and public name.
    numpy : the NumPy ufunc giving the value.
    derivative : ``derivative(a, fa) -> f'(a)`` written with the language's own operations, so
        ONE rule serves symbolic differentiation (``a``, ``fa = f(a)`` expressions) and dual
        evaluation (``a``, ``fa`` arrays) — as micrograd keeps an op's forward and backward
        side by side.
    domain : None, or ``(outside, text)``: ``outside(a)`` is true where the value or the
        derivative is not finite; a field argument there raises :class:`DomainError` at
        evaluation.

    Called on an expression it builds a node; on a number or an array it is the NumPy function.

    >>> import numpy as np
    >>> tanh = FUNCTIONS["tanh"]
    >>> bool(tanh.derivative(0.5, tanh(0.5)) == 1.0 - np.tanh(0.5) ** 2)
    True
    >>> list(FUNCTIONS)[:6]
    ['sin', 'cos', 'exp', 'tanh', 'log', 'sqrt']
    """

    def __init__(self, name, numpy, derivative, domain=None, doc=""):
        if name in FUNCTIONS:
            raise ValueError(f"residual function {name!r} is defined twice")
        self.name, self.numpy, self.derivative, self.domain = name, numpy, derivative, domain
        self.__doc__ = f"{doc} of an expression (NumPy's {numpy.__name__} of a number or an array)."
        FUNCTIONS[name] = self
        _UFUNCS[numpy] = self

    def __call__(self, v):
        if isinstance(v, Expr):
            if _is_const(v):  # fold, refusing a constant outside the domain (as _pow does)
                with np.errstate(all="ignore"):
                    c = float(self.numpy(v.args[0]))
                if not np.isfinite(c):
                    raise ValueError(f"{self.name}({v.args[0]!r}) is not a finite real number")
                return _const(c)
            return Expr("fn", (self, v))
        if isinstance(v, np.ndarray) or _is_number(v):
            return self.numpy(v)
        raise TypeError(f"{self.name}() expects a residual expression, a number or a numpy array, "
                        f"got {type(v).__name__}")

    def __repr__(self):
        return f"<residual function {self.name}>"


sin = Function("sin", np.sin, lambda a, fa: cos(a), doc="Sine")
cos = Function("cos", np.cos, lambda a, fa: -sin(a), doc="Cosine")
exp = Function("exp", np.exp, lambda a, fa: fa, doc="Exponential")
tanh = Function("tanh", np.tanh, lambda a, fa: 1.0 - fa * fa, doc="Hyperbolic tangent")
log = Function("log", np.log, lambda a, fa: 1.0 / a, _POSITIVE, doc="Natural logarithm")
# sqrt(0) = 0 is finite but its derivative is not: a field argument must be > 0.
sqrt = Function("sqrt", np.sqrt, lambda a, fa: 0.5 / fa, _POSITIVE, doc="Square root")
sinh = Function("sinh", np.sinh, lambda a, fa: cosh(a), doc="Hyperbolic sine")
cosh = Function("cosh", np.cosh, lambda a, fa: sinh(a), doc="Hyperbolic cosine")
# sign is piecewise constant: derivative 0 (its jump at 0 has no pointwise derivative).
sign = Function("sign", np.sign, lambda a, fa: 0.0 * a, doc="Sign (-1, 0 or 1)")
# |a|' = sign(a) away from 0; at exactly 0 it is sign(0) = 0, the subgradient of least norm.
# (The name shadows the builtin inside this module only; this module never calls builtin abs.)
abs = Function("abs", np.absolute, lambda a, fa: sign(a), doc="Absolute value")

# `from ... import *` must not replace a builtin (abs) in the importer's namespace; pc.abs and
# Python's abs(field) still reach the language's abs.
__all__ += [name for name in FUNCTIONS if not hasattr(builtins, name)]

# Comparisons get Expr's own explanation of why a residual cannot branch on values.
_COMPARISONS = (np.equal, np.not_equal, np.less, np.less_equal, np.greater, np.greater_equal)


def _unsupported(what):
    return (f"{what} is not part of the residual language; its functions are "
            f"{', '.join('pc.' + n for n in FUNCTIONS)} and + - * / ** with real exponents")


def _diff(e, i):
    op, args = e.op, e.args
    if op == "const":
        return _const(0.0)
    if op == "coord":
        return _const(1.0 if args[0] == i else 0.0)
    if op == "data":
        raise ValueError(f"per-point data {args[1]!r} has no derivative: a residual may multiply fields "
                         f"by it, not differentiate it")
    if op == "jet":
        o, alpha, out_name, inputs = args
        beta = tuple(sorted(alpha + (i,)))
        if len(beta) > MAX_ORDER:
            raise ValueError(
                f"derivative order > {MAX_ORDER}: d/d{inputs[i]} of {_jet_label(e)} "
                f"would need {_jet_label_of(out_name, beta, inputs)} (order {len(beta)})")
        return Expr("jet", (o, beta, out_name, inputs))
    if op == "add":
        return _add(args[0].diff(i), args[1].diff(i))
    if op == "neg":
        return _neg(args[0].diff(i))
    if op == "mul":
        a, b = args
        return _add(_mul(a.diff(i), b), _mul(a, b.diff(i)))
    if op == "div":
        a, b = args
        # a'/b - a b'/b^2: keeps the denominator coordinate-only when it was, so the
        # derivative of a polynomial stays polynomial.
        return _add(_div(a.diff(i), b), _neg(_div(_mul(a, b.diff(i)), _mul(b, b))))
    if op == "pow":
        a, p = args
        return _mul(_mul(_const(p), _pow(a, p - 1.0)), a.diff(i))
    if op == "fn":  # chain rule with the function's own derivative rule
        f, a = args
        da = a.diff(i)
        if _is_const(da, 0.0):
            return _const(0.0)
        return _mul(f.derivative(a, e), da)
    raise AssertionError(op)  # pragma: no cover


def _jet_label_of(out_name, alpha, inputs):
    if not alpha:
        return out_name
    if all(len(inputs[k]) == 1 for k in alpha):
        return out_name + "." + "".join(inputs[k] for k in alpha)
    return f"{out_name}.d({', '.join(repr(inputs[k]) for k in alpha)})"


def _jet_label(e):
    o, alpha, out_name, inputs = e.args
    return _jet_label_of(out_name, alpha, inputs)


_PREC = {"add": 1, "neg": 2, "mul": 3, "div": 3, "pow": 4}


def _to_str(e, parent=0):
    op, args = e.op, e.args
    if op == "const":
        return repr(args[0])
    if op == "coord":
        return f"x.{args[1]}"
    if op == "data":
        return args[1]
    if op == "jet":
        return _jet_label(e)
    if op == "fn":
        return f"{args[0].name}({_to_str(args[1])})"
    prec = _PREC[op]
    if op == "add":
        b = args[1]
        if b.op == "neg":
            s = f"{_to_str(args[0], prec)} - {_to_str(b.args[0], prec + 1)}"
        elif _is_const(b) and b.args[0] < 0:  # u - 1.0 folds to u + (-1.0): print it as written
            s = f"{_to_str(args[0], prec)} - {-b.args[0]!r}"
        else:
            s = f"{_to_str(args[0], prec)} + {_to_str(b, prec)}"
    elif op == "neg":
        s = f"-{_to_str(args[0], prec + 1)}"
    elif op == "mul":
        s = f"{_to_str(args[0], prec)}*{_to_str(args[1], prec + 1)}"
    elif op == "div":
        s = f"{_to_str(args[0], prec)}/{_to_str(args[1], prec + 1)}"
    else:  # pow
        p = args[1]
        s = f"{_to_str(args[0], prec + 1)}**{int(p) if p.is_integer() else p}"
    return f"({s})" if prec < parent else s


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
        set_(self, "_dcache", expr._dcache)  # share derivative cache with the expression
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
        return f"Field({self._label} = {_to_str(self)})"


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


# ---------------------------------------------------------------------------------------
# Evaluation helpers
# ---------------------------------------------------------------------------------------

def _topo(roots):
    """Nodes reachable from roots, children before parents (iterative: no recursion limit)."""
    order, seen = [], set()
    stack = [(r, False) for r in reversed(roots)]
    while stack:
        node, expanded = stack.pop()
        if id(node) in seen:
            continue
        if expanded:
            seen.add(id(node))
            order.append(node)
            continue
        stack.append((node, True))
        for c in _children(node):
            if id(c) not in seen:
                stack.append((c, False))
    return order


def _children(node):
    if node.op in ("add", "mul", "div"):
        return node.args
    if node.op in ("neg", "pow"):
        return node.args[:1]
    if node.op == "fn":
        return node.args[1:]
    return ()


def _numeric(node, vals, points):
    """Value of one node given its children's values (shape (N,) arrays or floats)."""
    op, args = node.op, node.args
    if op == "const":
        return np.full(points.shape[0], args[0])
    if op == "coord":
        return points[:, args[0]].copy()
    if op == "data":
        return _pointwise_values(args, points)
    if op == "add":
        return vals[id(args[0])] + vals[id(args[1])]
    if op == "neg":
        return -vals[id(args[0])]
    if op == "mul":
        return vals[id(args[0])] * vals[id(args[1])]
    if op == "div":
        return vals[id(args[0])] / vals[id(args[1])]
    if op == "pow":
        return _power(vals[id(args[0])], args[1])
    if op == "fn":
        return args[0].numpy(vals[id(args[1])])
    raise AssertionError(op)  # pragma: no cover


def _pointwise_values(args, points):
    fn, label = args
    v = np.asarray(fn(points))
    if v.dtype == object or v.dtype.kind not in "fiu" or v.shape != (points.shape[0],):
        raise ValueError(f"per-point data {label!r} must give one real number per point, shape "
                         f"({points.shape[0]},), got shape {v.shape}")
    return v.astype(np.float64)


def pointwise(fn, label="data"):
    """A per-point coefficient: ``fn(points) -> (N,)``, evaluated once when a term is lowered at
    its points (so it stays a kernel table coefficient, like ``pc.sin(x.x)``).

    For coefficients that are not formulas of the coordinates: the normals of a geometry at
    boundary points (Neumann conditions), measured values (data terms). It cannot be
    differentiated. ``label`` names it in printed expressions and errors.

    >>> import numpy as np
    >>> nx = pointwise(lambda p: np.where(p[:, 0] > 0.5, 1.0, -1.0), "n_x")
    >>> tab = trace(lambda x, u: nx * u.x, ["x"], ["u"], np.array([[0.0], [1.0]]))
    >>> tab.polynomial, tab.monomials[0][2]
    (True, array([-1.,  1.]))
    """
    if not callable(fn):
        raise TypeError(f"fn must be a callable fn(points) -> (N,) array, got {type(fn).__name__}")
    if not isinstance(label, str):
        raise TypeError(f"label must be a string, got {type(label).__name__}")
    return Expr("data", (fn, label))


def _power(a, p):
    # Integer exponents go through numpy's integer power so negative bases stay valid.
    return a ** int(p) if p.is_integer() else a ** p


def _var_key(node):
    return (node.args[0], node.args[1])


class Table:
    """A residual lowered at fixed points.

    Attributes
    ----------
    n_components, n_points : int
    vars : list of (o, multi_index)
        Jet variables of the RAW network outputs, sorted by (o, len(multi), multi).
    polynomial : bool
        Every component is a polynomial in ``vars`` with coordinate-only coefficients.
    monomials : list of (c, factors, coef)
        Only for polynomial tables: component ``c`` gets ``coef * prod(J[f] for f in
        factors)``; ``factors`` is a sorted tuple of var indices (repeats = powers, empty =
        pure coordinate term); ``coef`` is float64 of shape (N,).
    components : list of Expr
        The traced expressions (in raw-output jet variables).
    """

    def __init__(self, name, inputs, points, components):
        self.name = name
        self.inputs = list(inputs)
        self.points = points
        self.components = list(components)
        self.n_components = len(self.components)
        self.n_points = points.shape[0]
        self._nodes = _topo(self.components)
        # Field-dependent nodes with a domain (log(u), u**0.5, 1/u), checked at every evaluation.
        self._domains = {id(n): req for n in self._nodes if not n.coord_only
                         for req in [_requirement(n)] if req is not None}

        keys = {_var_key(n) for n in self._nodes if n.op == "jet"}
        self.vars = sorted(keys, key=lambda k: (k[0], len(k[1]), k[1]))
        self._var_index = {k: v for v, k in enumerate(self.vars)}

        # Coordinate-only subexpressions are fixed once the points are: evaluate them now,
        # both for the monomial coefficients and for the dual evaluator.
        self._coord_vals = {}
        with np.errstate(all="ignore"):  # checked below, naming the residual
            for n in self._nodes:
                if n.coord_only:
                    self._coord_vals[id(n)] = np.broadcast_to(
                        np.asarray(_numeric(n, self._coord_vals, points), dtype=np.float64),
                        (self.n_points,)).copy()
            self.polynomial = all(n.poly for n in self._nodes) and _expands_boundedly(self._nodes)
            self.monomials = self._lower() if self.polynomial else []
        # A coefficient that is NaN or inf at some point (log(x.t) at t = 0, u / x.t, ...)
        # would poison every loss and gradient: refuse it here, where the user can see why.
        bad = [(n, v) for n in self._nodes if n.coord_only for v in [self._coord_vals[id(n)]]
               if not np.isfinite(v).all()]
        bad += [(None, coef) for _, _, coef in self.monomials if not np.isfinite(coef).all()]
        if bad:
            node, v = bad[0]
            i = int(np.flatnonzero(~np.isfinite(v))[0])
            what = f"the coordinate expression {_to_str(node)}" if node is not None else "a coefficient"
            raise ValueError(f"residual '{name}': {what} is not finite at point {i} "
                             f"({dict(zip(self.inputs, points[i].tolist()))}); check divisions, log and sqrt "
                             f"of coordinates at the term's points")

    # -- polynomial lowering ---------------------------------------------------------------
    def _lower(self):
        polys = {}  # id(node) -> {factors: coef}
        for n in self._nodes:
            polys[id(n)] = self._lower_node(n, polys)
        merged = {}
        for c, comp in enumerate(self.components):
            for factors, coef in polys[id(comp)].items():
                key = (c, factors)
                merged[key] = merged[key] + coef if key in merged else coef.copy()
        # With points available, drop terms that cancelled to exact zero everywhere (e.g.
        # a hard constraint whose multiplier vanishes at every IC point). With no points
        # keep them, so the structure of an empty table stays inspectable.
        out = []
        for (c, factors), coef in sorted(merged.items(), key=lambda kv: kv[0]):
            if self.n_points > 0 and not np.any(coef):
                continue
            out.append((c, factors, coef))
        return out

    def _lower_node(self, n, polys):
        if n.coord_only:
            return {(): self._coord_vals[id(n)]}
        op, args = n.op, n.args
        if op == "jet":
            return {(self._var_index[_var_key(n)],): np.ones(self.n_points)}
        if op == "add":
            return _padd(polys[id(args[0])], polys[id(args[1])])
        if op == "neg":
            return {f: -c for f, c in polys[id(args[0])].items()}
        if op == "mul":
            return _pmul(polys[id(args[0])], polys[id(args[1])])
        if op == "div":  # denominator is coordinate-only (else not polynomial)
            den = self._coord_vals[id(args[1])]
            return {f: c / den for f, c in polys[id(args[0])].items()}
        if op == "pow":  # non-negative integer exponent
            base, p = polys[id(args[0])], int(args[1])
            result = {(): np.ones(self.n_points)}
            while p:
                if p & 1:
                    result = _pmul(result, base)
                p >>= 1
                if p:
                    base = _pmul(base, base)
            return result
        raise AssertionError(op)  # pragma: no cover

    # -- evaluation -------------------------------------------------------------------------
    def _check_J(self, J):
        J = np.asarray(J, dtype=np.float64)
        shape = (len(self.vars), self.n_points)
        if J.shape != shape:
            raise ValueError(f"table '{self.name}': J must have shape (V, N) = {shape}, "
                             f"got {J.shape}")
        return J

    def evaluate(self, J):
        """Residuals ``r`` (C, N) and exact ``dr`` (C, V, N) = dr_c/dJ_v from jet values J (V, N).

        Polynomial tables use the monomial table; others use the dual-number DAG path.
        """
        if not self.polynomial:
            return self.evaluate_dag(J)
        J = self._check_J(J)
        C, V, N = self.n_components, len(self.vars), self.n_points
        r = np.zeros((C, N))
        dr = np.zeros((C, V, N))
        for c, factors, coef in self.monomials:
            vals = [J[f] for f in factors]
            r[c] += coef * _prod(vals, coef)
            # d/dJ_v of a product: sum over the positions holding v of the product of the
            # others (repeated factors thereby get their power rule for free).
            for k, f in enumerate(factors):
                dr[c, f] += coef * _prod(vals[:k] + vals[k + 1:], coef)
        return r, dr

    def evaluate_dag(self, J):
        """Same as :meth:`evaluate` but by forward-mode dual arithmetic over the DAG.

        Works for every table; each node carries its value (N,) and a dict
        var index -> partial (N,) (absent = exactly zero).
        """
        J = self._check_J(J)
        vals, parts = dict(self._coord_vals), {}
        for n in self._nodes:
            if n.coord_only:
                parts[id(n)] = {}
                continue
            op, args = n.op, n.args
            if op == "jet":
                v = self._var_index[_var_key(n)]
                vals[id(n)] = J[v]
                parts[id(n)] = {v: np.ones(self.n_points)}
                continue
            if id(n) in self._domains:  # before computing: a named error, not NaN + a warning
                self._check_domain(n, vals)
            val = _numeric(n, vals, self.points)
            vals[id(n)] = val
            if op == "add":
                d = _padd(parts[id(args[0])], parts[id(args[1])])
            elif op == "neg":
                d = {k: -p for k, p in parts[id(args[0])].items()}
            elif op == "mul":
                a, b = args
                d = _padd(_dscale(parts[id(a)], vals[id(b)]), _dscale(parts[id(b)], vals[id(a)]))
            elif op == "div":
                a, b = args
                vb = vals[id(b)]
                d = _padd(_dscale(parts[id(a)], 1.0 / vb), _dscale(parts[id(b)], -val / vb))
            elif op == "pow":
                a, p = args
                d = _dscale(parts[id(a)], p * _power(vals[id(a)], p - 1.0))
            else:  # fn: the same derivative rule as symbolic differentiation, on arrays
                f, a = args
                d = _dscale(parts[id(a)], f.derivative(vals[id(a)], val))
            parts[id(n)] = d
        C, V, N = self.n_components, len(self.vars), self.n_points
        r = np.zeros((C, N))
        dr = np.zeros((C, V, N))
        for c, comp in enumerate(self.components):
            r[c] = vals[id(comp)]
            for v, p in parts[id(comp)].items():
                dr[c, v] = p
        return r, dr

    def _check_domain(self, node, vals):
        """Raise DomainError if a field-dependent argument of ``node`` leaves its domain."""
        arg, (outside, text), what = self._domains[id(node)]
        a = vals[id(arg)]
        bad = outside(a)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            at = dict(zip(self.inputs, self.points[i].tolist()))
            raise DomainError(
                f"residual '{self.name}': {_short(node)} needs a {text} {what}, but "
                f"{_short(arg)} = {float(a[i])!r} at point {i} {at}; keep the field inside the "
                f"domain (e.g. a transform u = exp(n) for a positive field) or rewrite the residual",
                term=self.name)

    def __repr__(self):
        kind = f"polynomial, {len(self.monomials)} monomials" if self.polynomial \
            else "non-polynomial"
        return (f"Table('{self.name}', C={self.n_components}, N={self.n_points}, "
                f"V={len(self.vars)}, {kind})")


def _expands_boundedly(nodes):
    """True when lowering ``nodes`` (children first, all polynomial) to monomials stays within
    MAX_POLY_DEGREE and MAX_POLY_MONOMIALS at every node — bounds on the monomial count that
    the expansion of add/mul/pow cannot exceed (coefficients that cancel only make it smaller).
    Decided on the DAG before anything is expanded, so ``u**1e308`` costs one check."""
    deg, count = {}, {}
    for n in nodes:
        op, args = n.op, n.args
        if n.coord_only:
            d, m = 0, 1
        elif op == "jet":
            d, m = 1, 1
        elif op == "add":
            d, m = max(deg[id(args[0])], deg[id(args[1])]), count[id(args[0])] + count[id(args[1])]
        elif op in ("neg", "div"):
            d, m = deg[id(args[0])], count[id(args[0])]
        elif op == "mul":
            d, m = deg[id(args[0])] + deg[id(args[1])], count[id(args[0])] * count[id(args[1])]
        else:  # pow, a non-negative integer exponent (else not polynomial)
            p = args[1]
            if p > MAX_POLY_DEGREE:
                return False
            d, m = deg[id(args[0])] * int(p), count[id(args[0])] ** int(p)
        if d > MAX_POLY_DEGREE or m > MAX_POLY_MONOMIALS:
            return False
        deg[id(n)], count[id(n)] = d, m
    return True


def _requirement(node):
    """(argument, (outside, text), role) for a node undefined for some argument values, else None.

    Functions carry their own domain; a real power a**p needs a > 0 when p < 1 is fractional
    (a**p or its derivative p a**(p-1) blows up or is complex), a >= 0 when p > 1 is fractional,
    and a != 0 for a negative integer p; a division needs a non-zero denominator.
    """
    op, args = node.op, node.args
    if op == "fn":
        f, a = args
        return None if f.domain is None else (a, f.domain, "argument")
    if op == "pow":
        a, p = args
        if not p.is_integer():
            return a, _POSITIVE if p < 1 else _NON_NEGATIVE, "base"
        return (a, _NON_ZERO, "base") if p < 0 else None
    if op == "div":
        return args[1], _NON_ZERO, "denominator"
    return None


def _short(e, limit=60):
    s = _to_str(e)
    return s if len(s) <= limit else s[:limit - 3] + "..."


def _prod(vals, like):
    if not vals:
        return np.ones_like(like)
    out = vals[0]
    for v in vals[1:]:
        out = out * v
    return out


def _padd(p, q):
    """The sum of two sparse maps key -> coefficient (polynomials, gradients)."""
    out = dict(p)
    for f, c in q.items():
        out[f] = out[f] + c if f in out else c
    return out


def _pmul(p, q):
    out = {}
    for f1, c1 in p.items():
        for f2, c2 in q.items():
            f = tuple(sorted(f1 + f2))
            c = c1 * c2
            out[f] = out[f] + c if f in out else c
    return out


def _dscale(p, s):
    return {k: v * s for k, v in p.items()}


# ---------------------------------------------------------------------------------------
# Tracing
# ---------------------------------------------------------------------------------------

def _check_names(names, what):
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


def trace(residual, inputs, outputs, points, transform=None, name="residual"):
    """Trace ``residual`` once and lower it at ``points`` into a :class:`Table`.

    ``residual(x, *fields)`` gets a coordinate namespace and one :class:`Field` per output;
    with ``transform(x, *raw)`` the fields are the transform's expressions of the raw
    network outputs (hard constraints). The table is always expressed in the jet variables
    of the RAW outputs, with derivatives with respect to the physical inputs.

    Example
    -------
    >>> import numpy as np
    >>> omega = 2 * np.pi
    >>> t = np.linspace(0.0, 1.0, 5)[:, None]
    >>> tab = trace(lambda x, u: u.tt + omega**2 * u, ["t"], ["u"], t)
    >>> tab.polynomial, tab.vars
    (True, [(0, ()), (0, (0, 0))])
    >>> r, dr = tab.evaluate(np.ones((2, 5)))
    >>> bool(np.allclose(r, 1.0 + omega**2))
    True
    >>> hard = trace(lambda x, u: u.tt + omega**2 * u, ["t"], ["u"], t,
    ...              transform=lambda x, n: 1.0 + x.t**2 * n)
    >>> hard.vars    # u_tt = 2n + 4t n_t + t^2 n_tt
    [(0, ()), (0, (0,)), (0, (0, 0))]
    """
    inputs = _check_names(inputs, "inputs")
    outputs = _check_names(outputs, "outputs")
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim == 1 and len(inputs) == 1:
        pts = pts.reshape(-1, 1)
    if pts.ndim != 2 or pts.shape[1] != len(inputs):
        raise ValueError(f"points for '{name}' must have shape (N, {len(inputs)}), "
                         f"got {pts.shape}")

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
    comps = _components(res, f"residual '{name}'")
    return Table(name, inputs, pts, comps)
