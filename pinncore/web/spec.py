"""Validation of the web API's requests: what a client may ask the server to run.

A client names a library problem and picks its parameters, a weighting scheme and its
parameters, fixed weights λ, an optimizer, step counts, a seed and hidden-layer widths — all
from menus with bounds read from the registries (``pinncore.registry``: problems, schemes and
optimizers with their parameters' defaults and declared bounds), so an entry registered there
is offered here with no other edit. No code travels from the client. :func:`fit_spec`
and :func:`sweep_spec` turn a decoded JSON body into a normalised, complete spec (a plain dict
the worker processes run) or raise :class:`SpecError` naming the offending field, which the
server answers with 400.

The bounds (:data:`LIMITS`) keep one request to bounded work and a few megabytes of memory: at
most 20000 Adam steps, 5000 collocation points, 5 hidden layers of width ≤ 128, 2e7 point-steps
and 3e12 estimated floating-point operations per fit (:func:`estimated_flops`: about a minute of
one core at 3e10 flop/s, the kernel's rate on 2-D problems; the largest default request, a 2-D
problem trained by Adam then L-BFGS, estimates 2.7e12); a sweep has at most 33 λ values × 5
seeds × 2 optimizers, 100 fits and 3e13 flops.

>>> s = fit_spec({"problem": "harmonic", "weights": {"ic": 100.0}, "steps": 500})
>>> s["problem"], s["scheme"], s["weights"], s["optimizer"], s["layers"]
('harmonic', 'fixed', {'pde': 1.0, 'ic': 100.0}, 'adam', [1, 50, 50, 50, 1])
>>> try:
...     fit_spec({"steps": 0})
... except SpecError as e:
...     print(e.field, "|", e)
steps | steps must be an integer in [1, 20000], got 0
"""
from __future__ import annotations

import functools
import math

from pinncore import registry
from pinncore.verdict import CLEAN, WRONG, verdict

__all__ = ["SpecError", "LIMITS", "fit_spec", "sweep_spec", "catalogue", "optimizers", "lm_available",
           "PROBLEMS", "SCHEMES", "verdict", "sweep_tasks", "SECOND_STEPS", "FIRST_STEPS", "problem_menu",
           "scheme_menu", "first_steps", "second_steps", "estimated_flops"]

LIMITS = {
    "steps": 20000,            # Adam steps (or LM iterations for optimizer "lm") per fit
    "second_steps": 2000,      # L-BFGS / LM iterations after Adam
    "points": 5000,            # collocation + initial + boundary points of a problem
    "work": 4e7,               # Σ_phases iterations × cost × points per fit (flops bound the rest)
    "flops": 3e12,             # estimated floating-point operations per fit (see estimated_flops)
    "hidden_layers": 5,
    "width": 128,
    "log_rows": 2000,          # history rows per fit (steps / log_every)
    "grid_1d": 2001,           # solution grid points (1-D) / per axis (2-D)
    "grid_2d": 129,
    "sweep_lambdas": 33,
    "sweep_seeds": 5,
    "sweep_optimizers": 2,
    "sweep_fits": 100,
    "sweep_steps": 5000,       # Adam steps per sweep fit
    "sweep_work": 2e8,         # the work of all the fits of a sweep
    "sweep_flops": 3e13,       # the estimated flops of all the fits of a sweep
    "weight": 1e8,             # largest fixed λ
    "lm_points": 1000,         # points of a problem trained by Levenberg–Marquardt
}

# The verdict and its thresholds (CLEAN, WRONG) are pinncore.verdict's.


class SpecError(ValueError):
    """A request field is missing its type, range or meaning; ``field`` names it (dotted path)."""

    def __init__(self, field, message):
        super().__init__(message)
        self.field = field


# ------------------------------------------------------------------------------ field parsers

def _int(value, field, lo, hi):
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise SpecError(field, f"{field} must be an integer in [{lo}, {hi}], got {value!r}")
    return value


def _float(value, field, lo, hi, open_lo=False):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (lo < value if open_lo else lo <= value) and value <= hi
    if not ok:
        lb = "(" if open_lo else "["
        raise SpecError(field, f"{field} must be a number in {lb}{lo:g}, {hi:g}], got {value!r}")
    return float(value)


def _choice(value, field, choices):
    if not isinstance(value, str) or value not in choices:
        raise SpecError(field, f"{field} must be one of {sorted(choices)}, got {value!r}")
    return value


def _object(value, field):
    if not isinstance(value, dict):
        raise SpecError(field, f"{field} must be a JSON object, got {type(value).__name__}")
    return value


def _known(obj, allowed, where):
    for key in obj:
        if key not in allowed:
            path = f"{where}.{key}" if where else str(key)
            raise SpecError(path, f"unknown field {path!r}; allowed: {sorted(allowed)}")


class Num:
    """A bounded number parameter (float, or int with ``integer=True``) and its default."""

    def __init__(self, default, lo, hi, integer=False, help=""):
        self.default, self.lo, self.hi, self.integer, self.help = default, lo, hi, integer, help

    def parse(self, value, field):
        if self.integer:
            return _int(value, field, self.lo, self.hi)
        return _float(value, field, self.lo, self.hi)

    def describe(self):
        return {"default": self.default, "min": self.lo, "max": self.hi,
                "type": "integer" if self.integer else "number", "help": self.help}


class Pick:
    """A parameter chosen from a list of strings."""

    def __init__(self, default, choices, help=""):
        self.default, self.choices, self.help = default, list(choices), help

    def parse(self, value, field):
        return _choice(value, field, self.choices)

    def describe(self):
        return {"default": self.default, "choices": self.choices, "type": "choice", "help": self.help}


def _menu_param(p):
    """A registry parameter as a menu entry (Num or Pick), or None when it has no declared bounds
    (it then keeps its default: the client cannot set it)."""
    if p.choices:
        return Pick(p.default, p.choices, help=p.help)
    if not p.bounds or p.kind not in ("int", "float"):
        return None
    lo, hi = p.bounds
    integer = p.kind == "int" and all(isinstance(b, int) for b in p.bounds if b is not None)
    return Num(p.default, lo if lo is not None else -1e300, hi if hi is not None else 1e300, integer, help=p.help)


def _menu(spec):
    return {k: m for k, m in ((k, _menu_param(p)) for k, p in spec.params.items()) if m is not None}


@functools.lru_cache(maxsize=None)
def _problem_menu(names):
    out = {}
    for name in names:
        inputs, _, total = _shape(name)
        if len(inputs) > 2 or len(registry.problems[name].factory().outputs) != 1:
            continue   # the page draws 1-D curves and 2-D heat maps of one output (not the 3-D
            #           heat_disk, nor the three-output kovasznay flow)
        spec = registry.problems[name]
        params = _menu(spec)
        points = [k for k in params if k.startswith("n_")]
        defaults = sum(spec.params[k].default for k in points)
        out[name] = {"params": params, "points": points, "fixed_points": max(0, total - defaults),
                     "hard": "hard_constraint" in spec.params}
    return out


def problem_menu():
    """Library problems the page can draw, from ``registry.problems``: name -> {"params" (the
    parameters with declared bounds), "points" (the ``n_*`` point counts, bounded in total),
    "fixed_points", "hard" (has a hard-constraint variant)}.

    >>> problem_menu()["harmonic"]["points"], problem_menu()["harmonic"]["fixed_points"]
    (['n_collocation'], 1)
    """
    return _problem_menu(tuple(registry.problems.names()))


def scheme_menu():
    """Weighting schemes from ``registry.schemes`` with the parameters a client may set, then
    "hard" (the hard-constraint variant of the problem: no IC term, fixed weights).

    >>> list(scheme_menu())
    ['fixed', 'gradnorm', 'ntk', 'selfadaptive', 'relobralo', 'balanced', 'hard']
    """
    out = {spec.name: _menu(spec) for spec in registry.schemes.specs()}
    out["hard"] = {}
    return out


def _split(opt):
    first, _, then = opt.partition("+")
    return first, then


def first_steps(opt):
    """First-phase iterations of a menu optimizer when a request does not say: the optimizer's
    ``default_iterations`` (Adam 2000, LM 200).

    >>> first_steps("adam+lbfgs"), first_steps("lm")
    (2000, 200)
    """
    from pinncore import phases
    first = _split(opt)[0]
    # A costly optimizer alone (L-BFGS, LM) gets the length it runs as a later phase: its own
    # default (L-BFGS 1000) would exceed one request's flop bound on the 2-D problems.
    return phases.follow_iterations(first) if _cost(first) > 1 else phases.default_iterations(first)


def second_steps(opt):
    """Second-phase iterations of a menu optimizer when a request does not say (0: one phase).

    >>> second_steps("adam"), second_steps("adam+lbfgs"), second_steps("adam+lm")
    (0, 500, 200)
    """
    from pinncore import phases
    then = _split(opt)[1]
    return phases.follow_iterations(then) if then else 0


def _cost(name):
    return float(registry.optimizers[name].factory.cost)


def _first_limit(opt, sweep=False):
    """Largest first-phase iteration count: Adam-like optimizers (cost 1) get the step limit,
    costlier ones the second-phase limit."""
    if _cost(_split(opt)[0]) > 1:
        return LIMITS["second_steps"]
    return LIMITS["sweep_steps"] if sweep else LIMITS["steps"]


def _forms_jacobian(opt):
    return any(n and registry.optimizers[n].factory.forms_jacobian for n in _split(opt))


def __getattr__(name):
    # The former constant tables, now read from the registries on every access.
    if name == "PROBLEMS":
        return problem_menu()
    if name == "SCHEMES":
        return scheme_menu()
    if name == "FIRST_STEPS":
        return {o: first_steps(o) for o in optimizers()}
    if name == "SECOND_STEPS":
        return {o: second_steps(o) for o in optimizers()}
    if name == "COST":
        return {n: _cost(n) for n in registry.optimizers.names()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _work(opt, steps, second, n_points):
    first, then = _split(opt)
    return (steps * _cost(first) + (second * _cost(then) if then else 0)) * n_points


def estimated_flops(opt, steps, second, n_points, layers, streams):
    """Floating-point operations one fit is expected to take, the quantity ``LIMITS["flops"]`` bounds.

    A loss-and-gradient pass costs 6 · points · streams · Σ n_in·n_out (each layer is one
    (streams·points × n_in)(n_in × n_out) product forward and two backward: docs/design.md §2);
    an iteration of any other optimizer its declared ``cost`` in passes (plus 4·P² for a dense quasi-Newton update); a Levenberg–Marquardt iteration a pass for the
    Jacobian plus the Gram matrix of the N × P Jacobian, 2·N·P·min(N, P) (lm.py solves in
    whichever of residual and parameter space is smaller). The point-steps bound ``work``
    alone let a 5 × 128 network with 998 points ask for 15 minutes.

    >>> f"{estimated_flops('adam', 2000, 0, 51, [1, 50, 50, 50, 1], 3):.3g}"
    '9.36e+09'
    """
    mac = sum(a * b for a, b in zip(layers[:-1], layers[1:]))
    n_params = sum((a + 1) * b for a, b in zip(layers[:-1], layers[1:]))
    kernel = 6.0 * n_points * streams * mac
    first, then = _split(opt)

    def per(name):   # one iteration of a registered optimizer
        if _forms_jacobian(name):
            return kernel + 2.0 * n_points * n_params * min(n_points, n_params)
        return _cost(name) * kernel + (4.0 * n_params ** 2 if registry.optimizers[name].flags["second_order"] else 0.0)

    return steps * per(first) + (second * per(then) if then else 0.0)

_FIT_FIELDS = {"problem", "problem_params", "scheme", "scheme_params", "weights", "optimizer", "steps",
               "second_steps", "lr", "seed", "widths", "log_every", "grid"}
_SWEEP_FIELDS = (_FIT_FIELDS - {"grid"}) | {"term", "log10", "lambdas", "seeds", "optimizers", "optimizer_steps"}


def lm_available():
    """True when Levenberg–Marquardt is registered (``optimizer="lm"``).

    >>> isinstance(lm_available(), bool)
    True
    """
    return "lm" in registry.optimizers


def optimizers():
    """The optimizer menu, from ``registry.optimizers``: name -> description. Every registered
    optimizer alone, and "adam+<name>" for each one that may follow Adam (flag ``follows``).

    >>> list(optimizers())[:3]
    ['adam', 'adam+lbfgs', 'lbfgs']
    """
    menu = {}
    for spec in registry.optimizers.specs():
        if spec.name != "adam" and spec.flags["follows"] and "adam" in registry.optimizers:
            menu[f"adam+{spec.name}"] = f"Adam, then {spec.description}"
        menu[spec.name] = spec.description
    return {"adam": menu.pop("adam"), **menu} if "adam" in menu else menu


@functools.lru_cache(maxsize=None)
def _shape(name):
    """(inputs, term names) of a library problem, read from the problem itself (built once with
    its default parameters; the names do not depend on them)."""
    from pinncore import problems

    p = problems.get(name)
    return list(p.inputs), list(p.term_names), int(sum(p.n_points.values()))


@functools.lru_cache(maxsize=None)
def _streams(name):
    """The most jet streams (value, first derivatives, second-derivative pairs) a term of the
    library problem carries: the per-point factor of a kernel pass."""
    from pinncore import problems

    return max(1 + len(lt.first) + len(lt.pairs) for lt in problems.get(name).lowering.terms)


def _terms_of(name):
    return list(_shape(name)[1])


def _problem_part(body):
    menu = problem_menu()
    name = _choice(body.get("problem", "harmonic"), "problem", menu)
    entry = menu[name]
    raw = _object(body.get("problem_params", {}), "problem_params")
    _known(raw, entry["params"], "problem_params")
    params = {k: p.parse(raw[k], f"problem_params.{k}") if k in raw else p.default
              for k, p in entry["params"].items()}
    n_points = sum(params[k] for k in entry["points"]) + entry["fixed_points"]
    if n_points > LIMITS["points"]:
        raise SpecError("problem_params", f"problem_params give {n_points} points in all; the limit is "
                                          f"{LIMITS['points']}")
    return name, params, n_points


def _scheme_part(body, name, terms):
    schemes, problems = scheme_menu(), problem_menu()
    scheme = _choice(body.get("scheme", "fixed"), "scheme", schemes)
    if scheme == "hard" and not problems[name]["hard"]:
        raise SpecError("scheme", f"scheme 'hard' needs a problem with a hard-constraint variant "
                                  f"({[k for k, v in problems.items() if v['hard']]}), got {name!r}")
    raw = _object(body.get("scheme_params", {}), "scheme_params")
    _known(raw, schemes[scheme], "scheme_params")
    params = {k: schemes[scheme][k].parse(v, f"scheme_params.{k}") for k, v in raw.items()}
    if scheme == "hard":
        terms = ["pde"]
    weights = _object(body.get("weights", {}), "weights")
    if weights and scheme != "fixed":
        raise SpecError("weights", f"weights are the fixed λ of scheme 'fixed'; scheme {scheme!r} sets its own")
    _known(weights, terms, "weights")
    lam = {t: 1.0 for t in terms}
    for t, v in weights.items():
        lam[t] = _float(v, f"weights.{t}", 0.0, LIMITS["weight"])
    return scheme, params, lam, terms


def _optimizer_name(opt, field):
    return _choice(opt, field, optimizers())


def _optimizer_part(body):
    opt = _optimizer_name(body.get("optimizer", "adam"), "optimizer")
    # steps counts the first phase's iterations, as in pc.train (LM alone: LM iterations).
    steps = _int(body.get("steps", first_steps(opt)), "steps", 1, _first_limit(opt))
    second = _int(body.get("second_steps", second_steps(opt)), "second_steps", 0, LIMITS["second_steps"])
    if second and "+" not in opt:
        raise SpecError("second_steps", f"second_steps need a two-phase optimizer (adam+lbfgs, adam+lm), "
                                        f"not {opt!r}")
    lr = _float(body.get("lr", 1e-3), "lr", 0.0, 1.0, open_lo=True)
    return opt, steps, second, lr


def _net_part(body, name, n_in):
    widths = body.get("widths", [50, 50, 50])
    if not isinstance(widths, list) or not 1 <= len(widths) <= LIMITS["hidden_layers"]:
        raise SpecError("widths", f"widths must be a list of 1 to {LIMITS['hidden_layers']} hidden-layer widths, "
                                  f"got {widths!r}")
    widths = [_int(w, f"widths[{i}]", 1, LIMITS["width"]) for i, w in enumerate(widths)]
    seed = _int(body.get("seed", 0), "seed", 0, 2 ** 31 - 1)
    return [n_in, *widths, 1], seed


def _base_spec(body, fields, where):
    _object(body, "body")
    _known(body, fields, where)
    name, pparams, n_points = _problem_part(body)
    scheme, sparams, lam, terms = _scheme_part(body, name, _terms_of(name))
    opt, steps, second, lr = _optimizer_part(body)
    n_in = len(_shape(name)[0])
    layers, seed = _net_part(body, name, n_in)
    if _forms_jacobian(opt) and n_points > LIMITS["lm_points"]:
        raise SpecError("optimizer", f"Levenberg–Marquardt forms the residual Jacobian: at most "
                                     f"{LIMITS['lm_points']} points here, the problem has {n_points}")
    work = _work(opt, steps, second, n_points)
    if work > LIMITS["work"]:
        raise SpecError("steps", f"steps × points = {work:.3g} is more work than one request may ask "
                                 f"({LIMITS['work']:.0e}); use fewer steps or points")
    flops = estimated_flops(opt, steps, second, n_points, layers, _streams(name))
    if flops > LIMITS["flops"]:
        raise SpecError("steps", f"this fit would take about {flops:.2g} floating-point operations (steps × points "
                                 f"× streams × Σ n_in·n_out, and N·P² per LM iteration), more than one request may "
                                 f"ask ({LIMITS['flops']:.1e}); use fewer steps or points or narrower layers")
    log_every = _int(body.get("log_every", max(1, min(100, steps // 20))), "log_every", 1, LIMITS["steps"])
    if (steps + second) / log_every > LIMITS["log_rows"]:
        raise SpecError("log_every", f"log_every {log_every} gives more than {LIMITS['log_rows']} history rows")
    return {"problem": name, "problem_params": pparams, "scheme": scheme, "scheme_params": sparams,
            "weights": lam, "terms": terms, "optimizer": opt, "steps": steps, "second_steps": second, "lr": lr,
            "seed": seed, "layers": layers, "log_every": log_every, "n_inputs": n_in, "n_points": n_points}


def fit_spec(body):
    """A validated fit spec from a decoded JSON body (SpecError naming the field otherwise).

    >>> fit_spec({"problem": "helmholtz2d", "scheme": "ntk"})["grid"]
    64
    """
    spec = _base_spec(body, _FIT_FIELDS, "")
    hi = LIMITS["grid_1d"] if spec["n_inputs"] == 1 else LIMITS["grid_2d"]
    spec["grid"] = _int(body.get("grid", 201 if spec["n_inputs"] == 1 else 64), "grid", 2, hi)
    return spec


def _lambda_grid(body):
    if ("log10" in body) == ("lambdas" in body):
        raise SpecError("log10", "a sweep needs exactly one of log10 {lo, hi, n} or lambdas [...]")
    n_max = LIMITS["sweep_lambdas"]
    if "lambdas" in body:
        lams = body["lambdas"]
        if not isinstance(lams, list) or not 1 <= len(lams) <= n_max:
            raise SpecError("lambdas", f"lambdas must be a list of 1 to {n_max} numbers, got {lams!r}")
        return [_float(v, f"lambdas[{i}]", 0.0, LIMITS["weight"]) for i, v in enumerate(lams)]
    g = _object(body["log10"], "log10")
    _known(g, {"lo", "hi", "n"}, "log10")
    for key in ("lo", "hi", "n"):
        if key not in g:
            raise SpecError(f"log10.{key}", f"log10.{key} is required")
    lo = _float(g["lo"], "log10.lo", -8.0, 8.0)
    hi = _float(g["hi"], "log10.hi", lo, 8.0)
    n = _int(g["n"], "log10.n", 1 if hi == lo else 2, n_max)
    return [10.0 ** (lo + (hi - lo) * i / max(n - 1, 1)) for i in range(n)]


def sweep_spec(body):
    """A validated λ-sweep spec: the fit fields (scheme 'fixed') plus ``term``, a λ grid
    (``log10: {lo, hi, n}`` or ``lambdas: [...]``), ``seeds``, ``optimizers`` and
    ``optimizer_steps`` ({optimizer: first-phase iterations}; default ``steps``, and 200 for
    LM alone next to an Adam-first optimizer).

    >>> s = sweep_spec({"term": "ic", "log10": {"lo": -3, "hi": 5, "n": 17}, "steps": 1000})
    >>> len(s["lambdas"]), s["lambdas"][8], s["seeds"], s["optimizers"]
    (17, 10.0, [0], ['adam'])
    """
    body = dict(_object(body, "body"))
    # second_steps apply to every two-phase optimizer of the sweep, even beside a one-phase base.
    second = body.pop("second_steps", None) if "+" not in str(body.get("optimizer", "adam")) else None
    spec = _base_spec(body, _SWEEP_FIELDS, "")
    spec["second_given"] = second is not None or "second_steps" in body
    if second is not None:
        spec["second_steps"] = _int(second, "second_steps", 0, LIMITS["second_steps"])
    if spec["scheme"] != "fixed":
        raise SpecError("scheme", f"a sweep varies one fixed λ: scheme must be 'fixed', got {spec['scheme']!r}")
    if spec["steps"] > _first_limit(spec["optimizer"], sweep=True):
        raise SpecError("steps", f"steps must be an integer in [1, {LIMITS['sweep_steps']}] in a sweep, "
                                 f"got {spec['steps']}")
    term = body.get("term", None)
    if term not in spec["terms"]:
        raise SpecError("term", f"term must name a term of {spec['problem']!r} ({spec['terms']}), got {term!r}")
    lambdas = _lambda_grid(body)
    seeds = body.get("seeds", [0])
    if not isinstance(seeds, list) or not 1 <= len(seeds) <= LIMITS["sweep_seeds"]:
        raise SpecError("seeds", f"seeds must be a list of 1 to {LIMITS['sweep_seeds']} integers, got {seeds!r}")
    seeds = [_int(s, f"seeds[{i}]", 0, 2 ** 31 - 1) for i, s in enumerate(seeds)]
    if len(set(seeds)) != len(seeds):
        raise SpecError("seeds", f"seeds must be distinct, got {seeds}")
    opts = body.get("optimizers", [spec["optimizer"]])
    if not isinstance(opts, list) or not 1 <= len(opts) <= LIMITS["sweep_optimizers"] or len(set(map(str, opts))) != len(opts):
        raise SpecError("optimizers", f"optimizers must be a list of 1 to {LIMITS['sweep_optimizers']} distinct "
                                      f"names, got {opts!r}")
    opts = [_optimizer_name(o, f"optimizers[{i}]") for i, o in enumerate(opts)]
    n_fits = len(lambdas) * len(seeds) * len(opts)
    if n_fits > LIMITS["sweep_fits"]:
        raise SpecError("lambdas", f"{len(lambdas)} λ × {len(seeds)} seeds × {len(opts)} optimizers = {n_fits} "
                                   f"fits; a sweep may run at most {LIMITS['sweep_fits']}")
    if any(_forms_jacobian(o) for o in opts) and spec["n_points"] > LIMITS["lm_points"]:
        raise SpecError("optimizers", f"Levenberg–Marquardt forms the residual Jacobian: at most "
                                      f"{LIMITS['lm_points']} points here, the problem has {spec['n_points']}")
    firsts = _object(body.get("optimizer_steps", {}), "optimizer_steps")
    _known(firsts, opts, "optimizer_steps")
    spec["optimizer_steps"] = {
        o: _int(firsts[o], f"optimizer_steps.{o}", 1, _first_limit(o, sweep=True))
        if o in firsts else _first(spec, o) for o in opts}
    work = sum(_work(o, spec["optimizer_steps"][o], _second(spec, o), spec["n_points"]) for o in opts) \
        * len(lambdas) * len(seeds)
    if work > LIMITS["sweep_work"]:
        raise SpecError("steps", f"the sweep's fits add up to {work:.3g} point-steps, more than one request may "
                                 f"ask ({LIMITS['sweep_work']:.0e}); use fewer steps, λ values or seeds")
    flops = sum(estimated_flops(o, spec["optimizer_steps"][o], _second(spec, o), spec["n_points"], spec["layers"],
                                _streams(spec["problem"])) for o in opts) * len(lambdas) * len(seeds)
    if flops > LIMITS["sweep_flops"]:
        raise SpecError("steps", f"the sweep's fits would take about {flops:.2g} floating-point operations, more than "
                                 f"one request may ask ({LIMITS['sweep_flops']:.1e}); use fewer steps, λ values, "
                                 f"seeds or points, or narrower layers")
    spec.update(term=term, lambdas=lambdas, seeds=seeds, optimizers=opts)
    return spec


def _first(spec, opt):
    """First-phase iterations of ``opt`` in a sweep: the request's ``steps`` for its own optimizer
    and for the other Adam-first ones; LM alone runs its default unless ``optimizer_steps`` says."""
    same = _split(opt)[0] == _split(spec["optimizer"])[0]
    if opt == spec["optimizer"] or same:
        return spec["steps"]
    return first_steps(opt)


def _second(spec, opt):
    """Second-phase iterations of ``opt`` in a sweep: the request's ``second_steps`` when it gave
    them (or for its own optimizer), else the default."""
    if second_steps(opt) == 0:
        return 0
    return spec["second_steps"] if spec["optimizer"] == opt or spec["second_given"] else second_steps(opt)


def sweep_tasks(spec):
    """The fits of a sweep spec as ``[(point info, fit spec), ...]``, λ ascending, then
    optimizer, then seed (so two workers fill the curve from one end).

    >>> tasks = sweep_tasks(sweep_spec({"term": "ic", "lambdas": [1.0, 100.0], "seeds": [0, 1]}))
    >>> [(t["lambda"], t["seed"]) for t, _ in tasks], tasks[1][1]["weights"]
    ([(1.0, 0), (1.0, 1), (100.0, 0), (100.0, 1)], {'pde': 1.0, 'ic': 1.0})
    """
    tasks = []
    for i, lam in enumerate(spec["lambdas"]):
        for opt in spec["optimizers"]:
            for seed in spec["seeds"]:
                fit = {k: v for k, v in spec.items()
                       if k not in ("term", "lambdas", "seeds", "optimizers", "optimizer_steps", "second_given")}
                fit.update(weights=dict(spec["weights"], **{spec["term"]: lam}), seed=seed, optimizer=opt,
                           steps=spec["optimizer_steps"][opt], second_steps=_second(spec, opt), grid=None)
                info = {"index": len(tasks), "lambda": lam, "log10_lambda": math.log10(lam) if lam > 0 else None,
                        "lambda_index": i, "seed": seed, "optimizer": opt}
                tasks.append((info, fit))
    return tasks


def catalogue():
    """What the server offers, read from the registries: problems (inputs, terms, parameters),
    schemes (parameters; ``scheme_info``: label, description, adapts), optimizers (menu name ->
    description; ``optimizer_info``: label, first-phase label and default/largest iterations,
    second-phase default), limits and the verdict thresholds.

    >>> c = catalogue(); sorted(c["problems"])[:2], c["problems"]["harmonic"]["terms"]
    (['advection', 'burgers'], ['pde', 'ic'])
    >>> c["scheme_info"]["balanced"]["label"], c["optimizer_info"]["lm"]["default_steps"]
    ('Balanced', 200)
    """
    out = {}
    for name, entry in problem_menu().items():
        inputs, terms, _ = _shape(name)
        out[name] = {"description": registry.problems[name].description, "inputs": inputs, "terms": terms,
                     "hard_constraint": entry["hard"],
                     "params": {k: p.describe() for k, p in entry["params"].items()}}
    schemes = {k: {p: v.describe() for p, v in ps.items()} for k, ps in scheme_menu().items()}
    info = {spec.name: {"label": "Fixed λ" if spec.name == "fixed" else spec.factory.__name__,
                        "description": spec.description, "adapts": spec.flags["adapts"]}
            for spec in registry.schemes.specs()}
    info["hard"] = {"label": "Hard constraint", "adapts": False,
                    "description": "the problem's hard-constraint variant: no IC term, no λ to tune"}
    return {"problems": out, "schemes": schemes, "scheme_info": info, "optimizers": optimizers(),
            "optimizer_info": {o: _optimizer_info(o) for o in optimizers()}, "limits": dict(LIMITS),
            "verdict": {"clean": CLEAN, "wrong": WRONG}}


def _label(name):
    return registry.optimizers[name].factory.label or name.upper()


def _optimizer_info(opt):
    first, then = _split(opt)
    return {"label": " + ".join(_label(n) for n in (first, then) if n),
            "first_label": f"{_label(first)} {'steps' if first == 'adam' else 'iterations'}",
            "default_steps": first_steps(opt), "max_steps": _first_limit(opt),
            "second_steps": second_steps(opt), "two_phase": bool(then),
            "second_order": any(registry.optimizers[n].flags["second_order"] for n in (first, then) if n)}
