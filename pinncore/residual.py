"""The residual language: symbolic expressions of network outputs and coordinates.

A residual is a plain Python function over symbolic arguments (``pinncore.fields``: the
coordinates ``x`` and one field per network output). The operations it performs build an
immutable expression DAG (:class:`Expr`) of constants, coordinates, per-point data
(:func:`pointwise`) and the *jet variables* of the raw network outputs (value, first and
second input derivatives). Derivatives are symbolic (``Expr.diff``: product rule, chain rule),
so a hard constraint ``transform`` stays an expression of the raw output's jet variables.

Each node knows whether it is ``coord_only`` (no network output inside) and ``poly``
(polynomial in the jet variables with coordinate-only coefficients): ``pinncore.table``
lowers polynomial residuals into a monomial table the C++ kernel evaluates fused, and the
rest by dual arithmetic over the DAG.

The elementwise functions (``sin``, ``exp``, ``log``, ...) are entries of one registry,
:data:`FUNCTIONS`: each :class:`Function` holds its NumPy value, its derivative rule, its
printing name and its domain, and the public wrappers (``pc.sin``), ``np.sin(field)``,
differentiation and evaluation all read from it. A field-dependent argument outside a
domain (``log(u)`` with u <= 0, ``u**0.5`` with u < 0) is a :class:`DomainError` at
evaluation. The language is described in docs/design.md §3.
"""

from __future__ import annotations

import builtins
import numbers

import numpy as np

# The language's functions are appended from the registry (see FUNCTIONS below).
__all__ = ["Expr", "UnknownNameError", "DomainError", "Function",
           "FUNCTIONS", "pointwise", "domain_requirement"]

MAX_ORDER = 2


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
        elif op in ("jet", "unknown"):
            # An unknown coefficient (pinncore.unknown) is a polynomial variable like a jet:
            # never folded into the fixed coordinate coefficients, since it is trained.
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
            s = _to_str(self)
            raise ValueError(f"the exponent of {s if len(s) <= 60 else s[:57] + '...'} ** p must be a finite real "
                             f"number, got {p!r}")
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
    @property
    def derivative_cache(self):
        """{input index: derivative}: a Field shares its expression's (no re-differentiation)."""
        return self._dcache

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
    if op == "unknown":
        return _const(0.0)
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
    if op in ("data", "unknown"):
        return args[1] if op == "data" else args[0]
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


def pointwise(fn, label="data"):
    """A per-point coefficient: ``fn(points) -> (N,)``, evaluated once when a term is lowered at
    its points (so it stays a kernel table coefficient, like ``pc.sin(x.x)``).

    For coefficients that are not formulas of the coordinates: the normals of a geometry at
    boundary points (Neumann conditions), measured values (data terms). It cannot be
    differentiated. ``label`` names it in printed expressions and errors.

    >>> import numpy as np
    >>> nx = pointwise(lambda p: np.where(p[:, 0] > 0.5, 1.0, -1.0), "n_x")
    >>> from pinncore.table import trace
    >>> tab = trace(lambda x, u: nx * u.x, ["x"], ["u"], np.array([[0.0], [1.0]]))
    >>> tab.polynomial, tab.monomials[0][2]
    (True, array([-1.,  1.]))
    """
    if not callable(fn):
        raise TypeError(f"fn must be a callable fn(points) -> (N,) array, got {type(fn).__name__}")
    if not isinstance(label, str):
        raise TypeError(f"label must be a string, got {type(label).__name__}")
    return Expr("data", (fn, label))






def domain_requirement(node):
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
