"""Validation of the web API's requests: what a client may ask the server to run.

A client names a library problem (``pinncore.problems``) and picks its parameters, a weighting
scheme and its parameters, fixed weights λ, an optimizer, step counts, a seed and hidden-layer
widths — all from fixed menus with bounds. No code travels from the client. :func:`fit_spec`
and :func:`sweep_spec` turn a decoded JSON body into a normalised, complete spec (a plain dict
the worker processes run) or raise :class:`SpecError` naming the offending field, which the
server answers with 400.

The bounds (:data:`LIMITS`) keep one request to a few seconds of work and a few megabytes of
memory: at most 20000 Adam steps, 5000 collocation points, 5 hidden layers of width ≤ 128 and
2e7 point-steps of work per fit; a sweep has at most 33 λ values × 5 seeds × 2 optimizers and
100 fits.

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

__all__ = ["SpecError", "LIMITS", "fit_spec", "sweep_spec", "catalogue", "optimizers", "lm_available",
           "PROBLEMS", "SCHEMES", "verdict", "sweep_tasks", "SECOND_STEPS", "FIRST_STEPS"]

LIMITS = {
    "steps": 20000,            # Adam steps (or LM iterations for optimizer "lm") per fit
    "second_steps": 2000,      # L-BFGS / LM iterations after Adam
    "points": 5000,            # collocation + initial + boundary points of a problem
    "work": 2e7,               # (steps + 10 * second_steps) * points per fit
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
    "weight": 1e8,             # largest fixed λ
    "lm_points": 1000,         # points of a problem trained by Levenberg–Marquardt
}

CLEAN, WRONG = 0.05, 0.30      # rel-L2 thresholds of the verdict (the course's rule of thumb)


class SpecError(ValueError):
    """A request field is missing its type, range or meaning; ``field`` names it (dotted path)."""

    def __init__(self, field, message):
        super().__init__(message)
        self.field = field


def verdict(rel_l2):
    """'clean' (< 5 %), 'wrong steady state' (≥ 30 %), 'partial' between, 'diverged' otherwise.

    >>> verdict(0.01), verdict(0.1), verdict(0.9), verdict(None)
    ('clean', 'partial', 'wrong steady state', 'diverged')
    """
    if rel_l2 is None or not math.isfinite(rel_l2):
        return "diverged"
    if rel_l2 < CLEAN:
        return "clean"
    return "wrong steady state" if rel_l2 >= WRONG else "partial"


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


_SEED = Num(0, 0, 2 ** 31 - 1, integer=True, help="point sampling seed")
_PI = math.pi

def _space_time(n_collocation=2000, n_ic=256, **physics):
    """The entry of a (t, x) library problem: its physical parameters, then the PDE/IC/BC point
    counts and the sampling seed that all such problems take."""
    params = dict(physics, n_collocation=Num(n_collocation, 16, 4000, True), n_ic=Num(n_ic, 2, 1000, True),
                  n_bc=Num(n_ic, 2, 1000, True), seed=_SEED)
    return {"params": params, "points": ["n_collocation", "n_ic", "n_bc"], "fixed_points": 0, "hard": False}


# Parameters a client may set per library problem (names = the constructor's keywords).
# "points" lists the parameters that count collocation/IC/BC points (bounded in total).
PROBLEMS = {
    "harmonic": {"params": {"omega": Num(2 * _PI, 0.1, 40.0, help="angular frequency ω"),
                            "n_collocation": Num(50, 2, 2000, True, help="collocation points")},
                 "points": ["n_collocation"], "fixed_points": 1, "hard": True},
    "burgers": _space_time(2048, nu=Num(0.01 / _PI, 1e-3, 1.0, help="viscosity ν")),
    "heat1d": _space_time(1000, 128, kappa=Num(0.1, 1e-3, 10.0, help="diffusivity κ"),
                          t_max=Num(1.0, 0.1, 10.0, help="final time")),
    "wave1d": _space_time(c=Num(2.0, 0.1, 10.0, help="wave speed c")),
    "poisson1d": {"params": {"a": Num(4.0, 0.1, 20.0, help="wave number a in sin(aπx)"),
                             "n_collocation": Num(128, 4, 2000, True)},
                  "points": ["n_collocation"], "fixed_points": 2, "hard": False},
    "helmholtz2d": {"params": {"a1": Num(1.0, 0.1, 10.0), "a2": Num(4.0, 0.1, 10.0),
                               "k": Num(1.0, 0.0, 20.0, help="wave number k"),
                               "n_collocation": Num(2000, 16, 4000, True), "n_bc": Num(400, 4, 1000, True),
                               "seed": _SEED},
                    "points": ["n_collocation", "n_bc"], "fixed_points": 0, "hard": False},
    "poisson_lshape": {"params": {"n_collocation": Num(2000, 16, 4000, True), "n_bc": Num(400, 4, 1000, True),
                                  "seed": _SEED},
                       "points": ["n_collocation", "n_bc"], "fixed_points": 0, "hard": False},
    "poisson_holes": {"params": {"hole_bc": Pick("dirichlet", ["dirichlet", "neumann"], help="condition on the holes"),
                                 "n_collocation": Num(2000, 16, 4000, True), "n_bc": Num(400, 4, 1000, True),
                                 "seed": _SEED},
                      "points": ["n_collocation", "n_bc"], "fixed_points": 0, "hard": False},
    "klein_gordon": _space_time(),
    "advection": _space_time(c=Num(30.0, 0.1, 100.0, help="advection speed c")),
    # an inverse problem (pc.Unknown λ1, λ2; pinncore/inverse.py), smaller than the library's default
    # (2000 samples + 6000 points) to fit the page's point limit
    "burgers_inverse": {"params": {"noise": Num(0.0, 0.0, 0.1, help="data noise σ / std(u)"),
                                   "n_data": Num(1000, 10, 2000, True, help="samples of u"),
                                   "n_collocation": Num(1000, 0, 4000, True, help="extra PDE points"), "seed": _SEED},
                        "points": ["n_data", "n_data", "n_collocation"], "fixed_points": 0, "hard": False},
}
# (The library's 3-D heat_disk is not offered: the page draws 1-D curves and 2-D heat maps.)

# Weighting schemes and the parameters a client may set ("hard" = the hard-constraint variant
# of the problem, which has no IC term, trained with fixed weights).
SCHEMES = {
    "fixed": {},
    "gradnorm": {"alpha": Num(0.1, 1e-3, 1.0), "every": Num(10, 1, 1000, True),
                 "mode": Pick("robust", ["robust", "released", "paper"])},
    "ntk": {"every": Num(100, 1, 10000, True), "normalize": Pick("mean", ["mean", "sum"])},
    "selfadaptive": {"lr": Num(0.005, 1e-5, 1.0), "mask": Pick("identity", ["identity", "square"])},
    "relobralo": {"alpha": Num(0.999, 0.0, 1.0), "temperature": Num(0.1, 1e-3, 10.0), "rho": Num(0.999, 0.0, 1.0)},
    "hard": {},
}

# Iterations of the second phase when a request does not say (L-BFGS stalls well before 500 on the
# library problems; LM converges in tens of iterations where it converges at all).
SECOND_STEPS = {"adam": 0, "lm": 0, "adam+lbfgs": 500, "adam+lm": 200}
FIRST_STEPS = {"adam": 2000, "lm": 200, "adam+lbfgs": 2000, "adam+lm": 2000}
# Work of one iteration per point, relative to an Adam step: an L-BFGS iteration evaluates the
# loss a few times (line search); an LM iteration forms the residual Jacobian and solves with it.
COST = {"adam": 1, "lbfgs": 10, "lm": 50}


def _work(opt, steps, second, n_points):
    first, _, then = opt.partition("+")
    return (steps * COST[first] + (second * COST[then] if then else 0)) * n_points

_FIT_FIELDS = {"problem", "problem_params", "scheme", "scheme_params", "weights", "optimizer", "steps",
               "second_steps", "lr", "seed", "widths", "log_every", "grid"}
_SWEEP_FIELDS = (_FIT_FIELDS - {"grid"}) | {"term", "log10", "lambdas", "seeds", "optimizers", "optimizer_steps"}


def lm_available():
    """True when the installed pinncore trains with Levenberg–Marquardt (``optimizer="lm"``).

    >>> isinstance(lm_available(), bool)
    True
    """
    import pinncore
    from pinncore import optim

    if hasattr(pinncore, "LevenbergMarquardt"):
        return True
    try:   # the run's optimizer registry ("lm" is registered where it is implemented)
        optim.get("lm")
        return True
    except (ValueError, TypeError):
        return False


def optimizers():
    """The optimizer menu: name -> description (LM entries only when it is installed).

    >>> list(optimizers())[:2]
    ['adam', 'adam+lbfgs']
    """
    menu = {"adam": "Adam", "adam+lbfgs": "Adam, then L-BFGS (weights frozen)"}
    if lm_available():
        menu["lm"] = "Levenberg–Marquardt"
        menu["adam+lm"] = "Adam, then Levenberg–Marquardt"
    return menu


@functools.lru_cache(maxsize=None)
def _shape(name):
    """(inputs, term names) of a library problem, read from the problem itself (built once with
    its default parameters; the names do not depend on them)."""
    from pinncore import problems

    p = problems.get(name)
    return list(p.inputs), list(p.term_names)


def _terms_of(name):
    return list(_shape(name)[1])


def _problem_part(body):
    name = _choice(body.get("problem", "harmonic"), "problem", PROBLEMS)
    entry = PROBLEMS[name]
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
    scheme = _choice(body.get("scheme", "fixed"), "scheme", SCHEMES)
    if scheme == "hard" and not PROBLEMS[name]["hard"]:
        raise SpecError("scheme", f"scheme 'hard' needs a problem with a hard-constraint variant "
                                  f"({[k for k, v in PROBLEMS.items() if v['hard']]}), got {name!r}")
    raw = _object(body.get("scheme_params", {}), "scheme_params")
    _known(raw, SCHEMES[scheme], "scheme_params")
    params = {k: SCHEMES[scheme][k].parse(v, f"scheme_params.{k}") for k, v in raw.items()}
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
    menu = optimizers()
    if opt in ("lm", "adam+lm") and opt not in menu:
        raise SpecError(field, f"{field} {opt!r} needs Levenberg–Marquardt, which this pinncore "
                               f"does not have; choose one of {sorted(menu)}")
    return _choice(opt, field, menu)


def _optimizer_part(body):
    opt = _optimizer_name(body.get("optimizer", "adam"), "optimizer")
    # steps counts the first phase's iterations, as in pc.train (LM alone: LM iterations).
    hi = LIMITS["second_steps"] if opt == "lm" else LIMITS["steps"]
    steps = _int(body.get("steps", FIRST_STEPS[opt]), "steps", 1, hi)
    second = _int(body.get("second_steps", SECOND_STEPS[opt]), "second_steps", 0, LIMITS["second_steps"])
    if second and opt in ("adam", "lm"):
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
    if "lm" in opt and n_points > LIMITS["lm_points"]:
        raise SpecError("optimizer", f"Levenberg–Marquardt forms the residual Jacobian: at most "
                                     f"{LIMITS['lm_points']} points here, the problem has {n_points}")
    work = _work(opt, steps, second, n_points)
    if work > LIMITS["work"]:
        raise SpecError("steps", f"steps × points = {work:.3g} is more work than one request may ask "
                                 f"({LIMITS['work']:.0e}); use fewer steps or points")
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
    second = body.pop("second_steps", None) if body.get("optimizer", "adam") in ("adam", "lm") else None
    spec = _base_spec(body, _SWEEP_FIELDS, "")
    spec["second_given"] = second is not None or "second_steps" in body
    if second is not None:
        spec["second_steps"] = _int(second, "second_steps", 0, LIMITS["second_steps"])
    if spec["scheme"] != "fixed":
        raise SpecError("scheme", f"a sweep varies one fixed λ: scheme must be 'fixed', got {spec['scheme']!r}")
    if spec["optimizer"] != "lm" and spec["steps"] > LIMITS["sweep_steps"]:
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
    if any("lm" in o for o in opts) and spec["n_points"] > LIMITS["lm_points"]:
        raise SpecError("optimizers", f"Levenberg–Marquardt forms the residual Jacobian: at most "
                                      f"{LIMITS['lm_points']} points here, the problem has {spec['n_points']}")
    firsts = _object(body.get("optimizer_steps", {}), "optimizer_steps")
    _known(firsts, opts, "optimizer_steps")
    spec["optimizer_steps"] = {
        o: _int(firsts[o], f"optimizer_steps.{o}", 1, LIMITS["second_steps"] if o == "lm" else LIMITS["sweep_steps"])
        if o in firsts else _first(spec, o) for o in opts}
    work = sum(_work(o, spec["optimizer_steps"][o], _second(spec, o), spec["n_points"]) for o in opts) \
        * len(lambdas) * len(seeds)
    if work > LIMITS["sweep_work"]:
        raise SpecError("steps", f"the sweep's fits add up to {work:.3g} point-steps, more than one request may "
                                 f"ask ({LIMITS['sweep_work']:.0e}); use fewer steps, λ values or seeds")
    spec.update(term=term, lambdas=lambdas, seeds=seeds, optimizers=opts)
    return spec


def _first(spec, opt):
    """First-phase iterations of ``opt`` in a sweep: the request's ``steps`` for its own optimizer
    and for the other Adam-first ones; LM alone runs its default unless ``optimizer_steps`` says."""
    if opt == spec["optimizer"] or (opt != "lm" and spec["optimizer"] != "lm"):
        return spec["steps"]
    return FIRST_STEPS[opt]


def _second(spec, opt):
    """Second-phase iterations of ``opt`` in a sweep: the request's ``second_steps`` when it gave
    them (or for its own optimizer), else the default."""
    if SECOND_STEPS[opt] == 0:
        return 0
    return spec["second_steps"] if spec["optimizer"] == opt or spec["second_given"] else SECOND_STEPS[opt]


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
    """What the server offers: problems (inputs, terms, parameters), schemes, optimizers, limits.

    >>> c = catalogue(); sorted(c["problems"])[:2], c["problems"]["harmonic"]["terms"]
    (['advection', 'burgers'], ['pde', 'ic'])
    """
    from pinncore import problems

    out = {}
    for name, entry in PROBLEMS.items():
        inputs, terms = _shape(name)
        out[name] = {"description": dict(problems.describe())[name], "inputs": inputs, "terms": terms,
                     "hard_constraint": entry["hard"],
                     "params": {k: p.describe() for k, p in entry["params"].items()}}
    schemes = {k: {p: v.describe() for p, v in ps.items()} for k, ps in SCHEMES.items()}
    return {"problems": out, "schemes": schemes, "optimizers": optimizers(), "limits": dict(LIMITS),
            "verdict": {"clean": CLEAN, "wrong": WRONG}}
