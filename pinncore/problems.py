"""The pinncore problem library: benchmark PINN problems with exact/reference solutions.

Every problem has two layers:

1. a pure-NumPy exact (or reference) solution ``<name>_exact(points, ...)`` that maps an
   ``(M, d)`` array of PHYSICAL coordinates (columns in the order of the problem's
   ``inputs``) to an ``(M, 1)`` array, plus, where the PDE has one, the source term;
2. a constructor ``<name>(...)`` that assembles a :class:`pinncore.Problem` through the
   public API (docs/design.md §4).  ``pinncore.problem`` and ``pinncore.residual`` are
   imported lazily inside the constructors, so the exact solutions work on their own.

All point sets are deterministic: 1-D problems use ``np.linspace``; 2-D problems draw
uniform points from ``np.random.default_rng(seed)``.

Use :func:`get` to build a problem by name, :data:`REGISTRY` for the name -> constructor
map and :func:`describe` for a ``(name, one-line description)`` listing.
"""

from __future__ import annotations

import collections.abc
import functools
import math

import numpy as np

from . import registry

__all__ = [
    "REGISTRY",
    "get",
    "describe",
    "check_arguments",
    # constructors
    "harmonic",
    "burgers",
    "heat1d",
    "wave1d",
    "poisson1d",
    "helmholtz2d",
    # exact / reference solutions
    "harmonic_exact",
    "burgers_reference",
    "burgers_exact",
    "heat1d_exact",
    "wave1d_exact",
    "wave1d_initial",
    "poisson1d_exact",
    "poisson1d_source",
    "helmholtz2d_exact",
    "helmholtz2d_source",
    "klein_gordon",
    "klein_gordon_exact",
    "klein_gordon_source",
    "advection",
    "advection_exact",
    "poisson_lshape",
    "poisson_lshape_reference",
    "poisson_holes",
    "poisson_holes_exact",
    "poisson_holes_geometry",
    "heat_disk",
    "heat_disk_exact",
    "kovasznay",
    "kovasznay_exact",
]

PI = math.pi


# ----------------------------------------------------------------------------- helpers

def _points(points, d):
    """Return ``points`` as a float64 ``(M, d)`` array (a 1-D input is read as one column
    when ``d == 1``)."""
    p = np.asarray(points, dtype=np.float64)
    if p.ndim == 1 and d == 1:
        p = p[:, None]
    if p.ndim != 2 or p.shape[1] != d:
        raise ValueError(f"expected points of shape (M, {d}), got {p.shape}")
    return p


def _lazy_api():
    """Import the Problem/Term classes (written elsewhere in the package) on demand."""
    from .problem import Problem, Term

    return Problem, Term


def _lazy_sin():
    from .residual import sin

    return sin


def _lazy_cos():
    from .residual import cos
    return cos


def _is_int(v):
    return float(v).is_integer()

# ----------------------------------------------------------------------------- registration

def _with_origin(name, ctor):
    """``ctor`` wrapped so that the Problem it builds remembers how: ``problem.origin =
    (name, kwargs)`` (the arguments given, by name). ``pc.sweep`` sends that pair to worker
    processes, which rebuild the problem there: residuals are Python functions (lambdas),
    which cannot be pickled."""
    import inspect

    signature = inspect.signature(ctor)

    @functools.wraps(ctor)
    def build(*args, **kwargs):
        given = dict(signature.bind(*args, **kwargs).arguments)
        check_arguments(name, signature, given)
        problem = ctor(*args, **kwargs)
        problem.origin = (name, given)
        return problem

    return build


def _library(name, description, **kw):
    """Register a library constructor in ``registry.problems`` (beside its definition), wrapped
    so that the problems it builds record their origin; returns the wrapped constructor."""
    def deco(ctor):
        wrapped = _with_origin(name, ctor)
        registry.problems.add(name, wrapped, description=description, **kw)
        return wrapped
    return deco


def _space_time_bounds(**physics):
    """bounds= and help= of a (t, x) library problem: its physical parameters ``name=((lo, hi),
    help)``, then the PDE/IC/BC point counts and the sampling seed that all such problems take."""
    bounds = {k: b for k, (b, _) in physics.items()}
    bounds.update(n_collocation=(16, 4000), n_ic=(2, 1000), n_bc=(2, 1000), seed=(0, 2 ** 31 - 1))
    return {"bounds": bounds, "help": {**{k: h for k, (_, h) in physics.items()}, "seed": "point sampling seed"}}



# ----------------------------------------------------------------------------- 1. harmonic

def harmonic_exact(points, omega=2 * PI):
    """Exact solution cos(omega t) of the harmonic IVP; ``points`` (M, 1) -> (M, 1)."""
    p = _points(points, 1)
    return np.cos(float(omega) * p[:, :1])


@_library("harmonic", "harmonic IVP u'' + w^2 u = 0, t in [0,1], u = cos(2 pi t) (loss-balance seed)",
          bounds={"omega": (0.1, 40.0), "n_collocation": (2, 2000)},
          help={"omega": "angular frequency ω", "n_collocation": "collocation points"}, exact=True)
def harmonic(omega=2 * PI, n_collocation=50, hard_constraint=False):
    """Harmonic oscillator IVP, the project's seed problem.

    Source: the loss-balance example in the spirit of Wang, Teng & Perdikaris (2021),
    "Understanding and mitigating gradient flow pathologies in physics-informed neural
    networks", SIAM J. Sci. Comput. 43(5).

    PDE      u'' + omega^2 u = 0,           t in [0, 1]
    IC       u(0) = 1,  u'(0) = 0
    Solution u(t) = cos(omega t)
    Inputs   ["t"]; outputs ["u"].
    Terms    "pde": ``n_collocation`` points ``linspace(0, 1)``, residual u.tt + omega^2 u;
             "ic":  the point t = 0, residual [u - 1, u.t].
    With ``hard_constraint=True`` the transform u = 1 + t^2 n satisfies both initial
    conditions exactly and only the "pde" term is kept.
    """
    Problem, Term = _lazy_api()
    omega = float(omega)
    w2 = omega * omega
    t_c = np.linspace(0.0, 1.0, int(n_collocation))[:, None]
    terms = {"pde": Term(points=t_c, residual=lambda x, u: u.tt + w2 * u)}
    transform = None
    if hard_constraint:
        transform = lambda x, n: 1.0 + x.t ** 2 * n  # noqa: E731
    else:
        terms["ic"] = Term(points=np.array([[0.0]]), residual=lambda x, u: [u - 1.0, u.t])
    return Problem(
        inputs=["t"],
        outputs=["u"],
        domain={"t": (0.0, 1.0)},
        terms=terms,
        exact=lambda X: harmonic_exact(X, omega),
        test_points=None,
        transform=transform,
    )


def _space_time_points(seed, t_max, x_lo, x_hi, n_pde, n_ic, n_bc):
    """Uniform (t, x) points of a 1-D evolution problem, drawn in a fixed order from
    ``default_rng(seed)``: interior, initial line t = 0, and the two walls (first half at
    x_lo, the rest at x_hi). Returns (pde, ic, bc) arrays with columns (t, x)."""
    rng = np.random.default_rng(seed)
    n_pde, n_ic, n_bc = int(n_pde), int(n_ic), int(n_bc)
    pde = np.column_stack([rng.uniform(0.0, t_max, n_pde), rng.uniform(x_lo, x_hi, n_pde)])
    ic = np.column_stack([np.zeros(n_ic), rng.uniform(x_lo, x_hi, n_ic)])
    bc = np.column_stack([rng.uniform(0.0, t_max, n_bc), np.where(np.arange(n_bc) < n_bc // 2, x_lo, x_hi)])
    return pde, ic, bc


# ----------------------------------------------------------------------------- 2. Burgers

_MAX_CHUNK_ELEMS = 1 << 21  # points x nodes per block (bounds the temporaries to ~16 MB)


@functools.lru_cache(maxsize=8)
def _hermite_rule(n):
    """Gauss-Hermite nodes and LOG weights for weight exp(-z^2), nodes with zero
    (underflowed) weight dropped.  numpy's ``hermgauss`` is used up to 300 nodes (beyond
    that it overflows internally); SciPy's asymptotic ``roots_hermite`` above."""
    n = int(n)
    if n <= 300:
        z, w = np.polynomial.hermite.hermgauss(n)
    else:
        from scipy.special import roots_hermite

        z, w = roots_hermite(n)
    keep = w > 0.0
    z, logw = z[keep], np.log(w[keep])
    z.setflags(write=False)
    logw.setflags(write=False)
    return z, logw


def _default_nodes(nu):
    # After eta = sqrt(4 nu t) z the integrand is exp(-z^2 - cos(pi y)/(2 pi nu)): the
    # second exponent spans 1/(pi nu), so nodes out to |z| ~ sqrt(1/(pi nu)) + margin are
    # needed, i.e. n ~ 1/(pi nu) (the largest GH node is ~ sqrt(2 n)).  Its curvature in z
    # is 2 pi t, independent of nu, so no further refinement is needed.  Twice that bound,
    # at least 200: for nu = 0.01/pi this is 200 nodes, converged to ~1e-14 (80 already
    # reach 1e-13, checked by node doubling in the tests).
    return int(max(200, math.ceil(2.0 / (PI * float(nu)))))


def burgers_reference(t, x, nu=0.01 / PI, n_nodes=None, return_ux=False):
    """Reference solution of viscous Burgers u_t + u u_x = nu u_xx, u(0,x) = -sin(pi x),
    u(t, +-1) = 0, by the Cole-Hopf formula (as in Basdevant et al. 1986)::

        u(t,x) = - int sin(pi(x-eta)) f(x-eta) G(eta,t) d eta / int f(x-eta) G(eta,t) d eta,
        f(y) = exp(-cos(pi y) / (2 pi nu)),  G = exp(-eta^2 / (4 nu t)).

    With eta = sqrt(4 nu t) z both integrals become Gauss-Hermite integrals; all weights are
    combined in the exponent and the maximum exponent per point is subtracted
    (log-sum-exp), so nothing overflows although f spans exp(+-1/(2 pi nu)).

    ``t`` and ``x`` broadcast; returns an array of the broadcast shape.  At t = 0 the
    result is exactly -sin(pi x).  With ``return_ux=True`` returns ``(u, u_x)`` where
    u_x = -(Var[sin]/(2 nu) + pi E[cos]) is the analytic x-derivative (E, Var under the
    normalised weight f G).  ``n_nodes`` defaults to ``max(200, ceil(2/(pi nu)))``.
    """
    nu = float(nu)
    if not nu > 0.0:
        raise ValueError("nu must be positive")
    t, x = np.broadcast_arrays(np.asarray(t, dtype=np.float64), np.asarray(x, dtype=np.float64))
    shape = t.shape
    tf = t.ravel()
    xf = x.ravel()
    if np.any(tf < 0.0):
        raise ValueError("burgers_reference needs t >= 0")
    n_nodes = _default_nodes(nu) if n_nodes is None else int(n_nodes)
    if n_nodes < 1:
        raise ValueError("n_nodes must be >= 1")
    z, logw = _hermite_rule(n_nodes)
    u = np.empty(tf.shape)
    ux = np.empty(tf.shape) if return_ux else None
    inv = 1.0 / (2.0 * PI * nu)
    chunk = max(1, _MAX_CHUNK_ELEMS // z.size)
    for s in range(0, tf.size, chunk):
        T = tf[s:s + chunk, None]
        X = xf[s:s + chunk, None]
        y = X - np.sqrt(4.0 * nu * T) * z          # x - eta at every node
        py = PI * y
        cy = np.cos(py)
        sy = np.sin(py)
        e = logw - inv * cy
        e -= e.max(axis=1, keepdims=True)
        np.exp(e, out=e)
        den = e.sum(axis=1)
        es = (e * sy).sum(axis=1) / den
        u[s:s + chunk] = -es
        if return_ux:
            ec = (e * cy).sum(axis=1) / den
            es2 = (e * sy * sy).sum(axis=1) / den
            ux[s:s + chunk] = -((es2 - es * es) / (2.0 * nu) + PI * ec)
    at0 = tf == 0.0
    if np.any(at0):
        u[at0] = -np.sin(PI * xf[at0])
        if return_ux:
            ux[at0] = -PI * np.cos(PI * xf[at0])
    if return_ux:
        return u.reshape(shape), ux.reshape(shape)
    return u.reshape(shape)


def burgers_exact(points, nu=0.01 / PI, n_nodes=None):
    """Burgers reference on ``points`` (M, 2) with columns (t, x) -> (M, 1)."""
    p = _points(points, 2)
    return burgers_reference(p[:, 0], p[:, 1], nu, n_nodes=n_nodes)[:, None]


@_library("burgers", "viscous Burgers u_t + u u_x = (0.01/pi) u_xx on [0,1]x[-1,1], Cole-Hopf reference",
          **_space_time_bounds(nu=((1e-3, 1.0), "viscosity ν")), exact=True)
def burgers(nu=0.01 / PI, n_collocation=2048, n_ic=256, n_bc=256, seed=0):
    """Viscous Burgers equation (Raissi, Perdikaris & Karniadakis 2019, "Physics-informed
    neural networks", J. Comput. Phys. 378; reference data as in Basdevant et al. 1986).

    PDE      u_t + u u_x - nu u_xx = 0,    t in [0, 1], x in [-1, 1], nu = 0.01/pi
    IC       u(0, x) = -sin(pi x)
    BC       u(t, -1) = u(t, 1) = 0
    Solution Cole-Hopf reference :func:`burgers_reference` (shock at x = 0; the slope there
             peaks at |u_x| = 152.005 at t = 1.6037/pi).
    Inputs   ["t", "x"]; outputs ["u"].
    Terms    "pde": ``n_collocation`` uniform points; "ic": ``n_ic`` points at t = 0,
             residual u + sin(pi x); "bc": ``n_bc`` points, first half at x = -1, the rest
             at x = +1, residual u.  All drawn from ``np.random.default_rng(seed)`` in the
             order pde, ic, bc.
    test_points: the 100 (t) x 256 (x) grid of the Raissi et al. data set, t-major.
    """
    Problem, Term = _lazy_api()
    sin = _lazy_sin()
    nu = float(nu)
    pde, ic, bc = _space_time_points(seed, 1.0, -1.0, 1.0, n_collocation, n_ic, n_bc)
    tt, xx = np.meshgrid(np.linspace(0.0, 1.0, 100), np.linspace(-1.0, 1.0, 256), indexing="ij")
    test = np.column_stack([tt.ravel(), xx.ravel()])
    return Problem(
        inputs=["t", "x"],
        outputs=["u"],
        domain={"t": (0.0, 1.0), "x": (-1.0, 1.0)},
        terms={
            "pde": Term(points=pde, residual=lambda x, u: u.t + u * u.x - nu * u.xx),
            "ic": Term(points=ic, residual=lambda x, u: u + sin(PI * x.x)),
            "bc": Term(points=bc, residual=lambda x, u: u),
        },
        exact=lambda X: burgers_exact(X, nu),
        test_points=test,
        transform=None,
    )


# ----------------------------------------------------------------------------- 3. heat

def heat1d_exact(points, kappa=0.1):
    """exp(-kappa pi^2 t) sin(pi x); ``points`` (M, 2) columns (t, x) -> (M, 1)."""
    p = _points(points, 2)
    return (np.exp(-float(kappa) * PI ** 2 * p[:, 0]) * np.sin(PI * p[:, 1]))[:, None]


@_library("heat1d", "heat u_t = 0.1 u_xx on [0,1]x[0,1], u = exp(-0.1 pi^2 t) sin(pi x)",
          **_space_time_bounds(kappa=((1e-3, 10.0), "diffusivity κ"), t_max=((0.1, 10.0), "final time")), exact=True)
def heat1d(kappa=0.1, t_max=1.0, n_collocation=1000, n_ic=128, n_bc=128, seed=0):
    """1-D heat equation with a single decaying Fourier mode (classical separable
    solution, e.g. Raissi et al. 2019 / Lu et al. 2021 DeepXDE "diffusion" examples).

    PDE      u_t = kappa u_xx,             t in [0, t_max], x in [0, 1]
    IC       u(0, x) = sin(pi x)
    BC       u(t, 0) = u(t, 1) = 0
    Solution u = exp(-kappa pi^2 t) sin(pi x)
    Default kappa = 0.1 (not 1): the amplitude at t = 1 is exp(-0.1 pi^2) = 0.37, so the
    solution stays O(1) over the whole domain and the relative L2 error measures the full
    time range (with kappa = 1 it decays to 5e-5 and the late times contribute nothing).
    Inputs   ["t", "x"]; outputs ["u"].
    Terms    "pde": residual u.t - kappa u.xx; "ic": u - sin(pi x) at t = 0;
             "bc": u, first half at x = 0, the rest at x = 1.  Uniform points from
             ``default_rng(seed)`` in the order pde, ic, bc.
    """
    Problem, Term = _lazy_api()
    sin = _lazy_sin()
    kappa, t_max = float(kappa), float(t_max)
    pde, ic, bc = _space_time_points(seed, t_max, 0.0, 1.0, n_collocation, n_ic, n_bc)
    return Problem(
        inputs=["t", "x"],
        outputs=["u"],
        domain={"t": (0.0, t_max), "x": (0.0, 1.0)},
        terms={
            "pde": Term(points=pde, residual=lambda x, u: u.t - kappa * u.xx),
            "ic": Term(points=ic, residual=lambda x, u: u - sin(PI * x.x)),
            "bc": Term(points=bc, residual=lambda x, u: u),
        },
        exact=lambda X: heat1d_exact(X, kappa),
        test_points=None,
        transform=None,
    )


# ----------------------------------------------------------------------------- 4. wave

def wave1d_initial(x):
    """Initial displacement g(x) = sin(pi x) + 0.5 sin(4 pi x) (broadcasting)."""
    x = np.asarray(x, dtype=np.float64)
    return np.sin(PI * x) + 0.5 * np.sin(4.0 * PI * x)


def wave1d_exact(points, c=2.0):
    """sin(pi x) cos(c pi t) + 0.5 sin(4 pi x) cos(4 c pi t); (M, 2) columns (t, x) -> (M, 1)."""
    p = _points(points, 2)
    t, x = p[:, 0], p[:, 1]
    c = float(c)
    u = np.sin(PI * x) * np.cos(c * PI * t) + 0.5 * np.sin(4.0 * PI * x) * np.cos(4.0 * c * PI * t)
    return u[:, None]


@_library("wave1d", "wave u_tt = 4 u_xx on [0,1]^2, two modes (Wang, Yu & Perdikaris 2022)",
          **_space_time_bounds(c=((0.1, 10.0), "wave speed c")), exact=True)
def wave1d(c=2.0, n_collocation=2000, n_ic=256, n_bc=256, seed=0):
    """1-D wave equation benchmark of Wang, Yu & Perdikaris (2022), "When and why PINNs fail
    to train: a neural tangent kernel perspective", J. Comput. Phys. 449.

    PDE      u_tt = c^2 u_xx,              t in [0, 1], x in [0, 1], c = 2
    IC       u(0, x) = sin(pi x) + 0.5 sin(4 pi x),  u_t(0, x) = 0
    BC       u(t, 0) = u(t, 1) = 0
    Solution u = sin(pi x) cos(c pi t) + 0.5 sin(4 pi x) cos(4 c pi t)
    Inputs   ["t", "x"]; outputs ["u"].
    Terms    "pde": residual u.tt - c^2 u.xx; "ic" (two components) [u - g(x), u.t] at
             t = 0; "bc": u, first half at x = 0, the rest at x = 1.  Uniform points from
             ``default_rng(seed)`` in the order pde, ic, bc.
    """
    Problem, Term = _lazy_api()
    sin = _lazy_sin()
    c = float(c)
    c2 = c * c
    pde, ic, bc = _space_time_points(seed, 1.0, 0.0, 1.0, n_collocation, n_ic, n_bc)
    return Problem(
        inputs=["t", "x"],
        outputs=["u"],
        domain={"t": (0.0, 1.0), "x": (0.0, 1.0)},
        terms={
            "pde": Term(points=pde, residual=lambda x, u: u.tt - c2 * u.xx),
            "ic": Term(points=ic, residual=lambda x, u: [
                u - sin(PI * x.x) - 0.5 * sin(4.0 * PI * x.x), u.t]),
            "bc": Term(points=bc, residual=lambda x, u: u),
        },
        exact=lambda X: wave1d_exact(X, c),
        test_points=None,
        transform=None,
    )


# ----------------------------------------------------------------------------- 5. Poisson 1-D

def poisson1d_exact(points, a=4):
    """sin(a pi x); ``points`` (M, 1) -> (M, 1)."""
    p = _points(points, 1)
    return np.sin(float(a) * PI * p[:, :1])


def poisson1d_source(points, a=4):
    """f = -(a pi)^2 sin(a pi x); ``points`` (M, 1) -> (M, 1)."""
    p = _points(points, 1)
    k = float(a) * PI
    return -(k * k) * np.sin(k * p[:, :1])


@_library("poisson1d", "Poisson u_xx = f on [0,1], u = sin(4 pi x) (Wang, Yu & Perdikaris 2022)",
          bounds={"a": (0.1, 20.0), "n_collocation": (4, 2000)}, help={"a": "wave number a in sin(aπx)"}, exact=True)
def poisson1d(a=4, n_collocation=128):
    """1-D Poisson equation of Wang, Yu & Perdikaris (2022), "When and why PINNs fail to
    train: a neural tangent kernel perspective", J. Comput. Phys. 449.

    PDE      u_xx = f,  f(x) = -(a pi)^2 sin(a pi x),   x in [0, 1]
    BC       u(0) = 0, u(1) = sin(a pi)  (= 0 for integer a)
    Solution u = sin(a pi x)
    Inputs   ["x"]; outputs ["u"].
    Terms    "pde": ``n_collocation`` points ``linspace(0, 1)``, residual
             u.xx + (a pi)^2 sin(a pi x) (source as a coordinate expression);
             "bc": the two points x = 0, 1, residual u (integer a) or u - sin(a pi x).
    """
    Problem, Term = _lazy_api()
    sin = _lazy_sin()
    a = float(a)
    k = a * PI
    k2 = k * k
    x_c = np.linspace(0.0, 1.0, int(n_collocation))[:, None]
    if _is_int(a):
        bc_res = lambda x, u: u  # noqa: E731
    else:
        bc_res = lambda x, u: u - sin(k * x.x)  # noqa: E731
    return Problem(
        inputs=["x"],
        outputs=["u"],
        domain={"x": (0.0, 1.0)},
        terms={
            "pde": Term(points=x_c, residual=lambda x, u: u.xx + k2 * sin(k * x.x)),
            "bc": Term(points=np.array([[0.0], [1.0]]), residual=bc_res),
        },
        exact=lambda X: poisson1d_exact(X, a),
        test_points=None,
        transform=None,
    )


# ----------------------------------------------------------------------------- 6. Helmholtz 2-D

def helmholtz2d_exact(points, a1=1, a2=4):
    """sin(a1 pi x) sin(a2 pi y); ``points`` (M, 2) columns (x, y) -> (M, 1)."""
    p = _points(points, 2)
    return (np.sin(float(a1) * PI * p[:, 0]) * np.sin(float(a2) * PI * p[:, 1]))[:, None]


def helmholtz2d_source(points, a1=1, a2=4, k=1.0):
    """q = (-(a1 pi)^2 - (a2 pi)^2 + k^2) sin(a1 pi x) sin(a2 pi y); (M, 2) -> (M, 1)."""
    coef = -(float(a1) * PI) ** 2 - (float(a2) * PI) ** 2 + float(k) ** 2
    return coef * helmholtz2d_exact(points, a1, a2)


@_library("helmholtz2d", "Helmholtz on [-1,1]^2, u = sin(pi x) sin(4 pi y) (Wang, Teng & Perdikaris 2021)",
          bounds={"a1": (0.1, 10.0), "a2": (0.1, 10.0), "k": (0.0, 20.0), "n_collocation": (16, 4000),
                  "n_bc": (4, 1000), "seed": (0, 2 ** 31 - 1)},
          help={"k": "wave number k", "seed": "point sampling seed"}, exact=True)
def helmholtz2d(a1=1, a2=4, k=1.0, n_collocation=2000, n_bc=400, seed=0):
    """2-D Helmholtz benchmark of Wang, Teng & Perdikaris (2021), "Understanding and
    mitigating gradient flow pathologies in physics-informed neural networks",
    SIAM J. Sci. Comput. 43(5).

    PDE      u_xx + u_yy + k^2 u = q(x, y),   (x, y) in [-1, 1]^2
             q = (-(a1 pi)^2 - (a2 pi)^2 + k^2) sin(a1 pi x) sin(a2 pi y)
    BC       u = sin(a1 pi x) sin(a2 pi y) on the boundary (= 0 for integer a1, a2)
    Solution u = sin(a1 pi x) sin(a2 pi y)
    Inputs   ["x", "y"]; outputs ["u"].
    Terms    "pde": ``n_collocation`` uniform points, residual u.xx + u.yy + k^2 u - q;
             "bc": ``n_bc`` points spread over the four edges (x = -1, x = 1, y = -1,
             y = 1, in that order, ``n_bc // 4`` each, remainder to the first edges),
             residual u (integer a1, a2) or u - sin(a1 pi x) sin(a2 pi y).  Drawn from
             ``default_rng(seed)`` in the order pde, bc.
    """
    Problem, Term = _lazy_api()
    sin = _lazy_sin()
    a1, a2, k = float(a1), float(a2), float(k)
    k1, k2 = a1 * PI, a2 * PI
    kk = k * k
    coef = -k1 * k1 - k2 * k2 + kk
    rng = np.random.default_rng(seed)
    n_collocation, n_bc = int(n_collocation), int(n_bc)
    pde = rng.uniform(-1.0, 1.0, (n_collocation, 2))
    counts = [n_bc // 4 + (1 if i < n_bc % 4 else 0) for i in range(4)]
    edges = []
    for i, m in enumerate(counts):
        s = rng.uniform(-1.0, 1.0, m)
        fixed = np.full(m, -1.0 if i % 2 == 0 else 1.0)
        edges.append(np.column_stack([fixed, s]) if i < 2 else np.column_stack([s, fixed]))
    bc = np.concatenate(edges, axis=0)
    if _is_int(a1) and _is_int(a2):
        bc_res = lambda x, u: u  # noqa: E731
    else:
        bc_res = lambda x, u: u - sin(k1 * x.x) * sin(k2 * x.y)  # noqa: E731
    return Problem(
        inputs=["x", "y"],
        outputs=["u"],
        domain={"x": (-1.0, 1.0), "y": (-1.0, 1.0)},
        terms={
            "pde": Term(points=pde, residual=lambda x, u:
                        u.xx + u.yy + kk * u - coef * sin(k1 * x.x) * sin(k2 * x.y)),
            "bc": Term(points=bc, residual=bc_res),
        },
        exact=lambda X: helmholtz2d_exact(X, a1, a2),
        test_points=None,
        transform=None,
    )


# ----------------------------------------------------------------------------- 7. Klein-Gordon

def klein_gordon_exact(points):
    """x cos(5 pi t) + (x t)^3; ``points`` (M, 2) columns (t, x) -> (M, 1)."""
    p = _points(points, 2)
    t, x = p[:, 0], p[:, 1]
    return (x * np.cos(5.0 * PI * t) + (x * t) ** 3)[:, None]


def klein_gordon_source(points):
    """f = u_tt - u_xx + u^3 of the exact solution; (M, 2) columns (t, x) -> (M, 1)."""
    p = _points(points, 2)
    t, x = p[:, 0], p[:, 1]
    u = x * np.cos(5.0 * PI * t) + (x * t) ** 3
    return (-25.0 * PI ** 2 * x * np.cos(5.0 * PI * t) + 6.0 * x ** 3 * t - 6.0 * x * t ** 3 + u ** 3)[:, None]


@_library("klein_gordon", "Klein-Gordon u_tt - u_xx + u^3 = f on [0,1]x[-1,1], u = x cos(5 pi t) + (xt)^3 (Wang 2021)",
          **_space_time_bounds(), exact=True)
def klein_gordon(n_collocation=2000, n_ic=256, n_bc=256, seed=0):
    """Nonlinear Klein-Gordon benchmark of Wang, Teng & Perdikaris (2021), "Understanding and
    mitigating gradient flow pathologies in physics-informed neural networks", SIAM J. Sci.
    Comput. 43(5), §4.3 (alpha = -1, beta = 0, gamma = 1, k = 3).

    PDE      u_tt - u_xx + u^3 = f(t, x),   t in [0, 1], x in [-1, 1]
    IC       u(0, x) = x,  u_t(0, x) = 0
    BC       u(t, -1) = -cos(5 pi t) - t^3,  u(t, 1) = cos(5 pi t) + t^3 (the exact solution)
    Solution u = x cos(5 pi t) + (x t)^3;  f = :func:`klein_gordon_source`
    Inputs   ["t", "x"]; outputs ["u"].
    Terms    "pde": residual u.tt - u.xx + u^3 - f; "ic" (two components) [u - x, u.t] at
             t = 0; "bc": u - u_exact, first half at x = -1, the rest at x = 1.  Uniform
             points from ``default_rng(seed)`` in the order pde, ic, bc.

    >>> klein_gordon(n_collocation=10, n_ic=4, n_bc=4).term_names
    ['pde', 'ic', 'bc']
    """
    Problem, Term = _lazy_api()
    cos = _lazy_cos()
    pde, ic, bc = _space_time_points(seed, 1.0, -1.0, 1.0, n_collocation, n_ic, n_bc)
    k = 5.0 * PI

    def source(x):
        u = x.x * cos(k * x.t) + x.x ** 3 * x.t ** 3
        return -k * k * x.x * cos(k * x.t) + 6.0 * x.x ** 3 * x.t - 6.0 * x.x * x.t ** 3 + u * u * u

    return Problem(
        inputs=["t", "x"],
        outputs=["u"],
        domain={"t": (0.0, 1.0), "x": (-1.0, 1.0)},
        terms={
            "pde": Term(points=pde, residual=lambda x, u: u.tt - u.xx + u * u * u - source(x)),
            "ic": Term(points=ic, residual=lambda x, u: [u - x.x, u.t]),
            "bc": Term(points=bc, residual=lambda x, u: u - x.x * cos(k * x.t) - x.x ** 3 * x.t ** 3),
        },
        exact=klein_gordon_exact,
        test_points=None,
        transform=None,
    )


# ----------------------------------------------------------------------------- 8. periodic advection

def advection_exact(points, c=30.0):
    """sin(x - c t) (characteristics of u_t + c u_x = 0 from u(0, x) = sin x); (M, 2) (t, x) -> (M, 1)."""
    p = _points(points, 2)
    return np.sin(p[:, 1] - float(c) * p[:, 0])[:, None]


@_library("advection", "periodic advection u_t + 30 u_x = 0 on [0,1]x[0,2pi], u = sin(x - 30t) (Krishnapriyan 2021)",
          **_space_time_bounds(c=((0.1, 100.0), "advection speed c")), exact=True, periodic=True)
def advection(c=30.0, n_collocation=2000, n_ic=256, n_bc=256, bc="dirichlet", seed=0):
    """Periodic 1-D advection, the failure mode of Krishnapriyan et al. (2021), "Characterizing
    possible failure modes in physics-informed neural networks", NeurIPS 34 (c >= 30).

    PDE      u_t + c u_x = 0,               t in [0, 1], x in [0, 2 pi], periodic in x
    IC       u(0, x) = sin x
    Solution u = sin(x - c t) (by characteristics)
    Inputs   ["t", "x"]; outputs ["u"].
    Terms    "pde": residual u.t + c u.x; "ic": u - sin x at t = 0; with bc="dirichlet" also
             "bc": u - sin(x - c t) at x = 0 and x = 2 pi (first half, rest) — the values the
             periodic condition u(t, 0) = u(t, 2 pi) takes on the exact solution, since a
             residual is evaluated point by point and cannot pair two boundary points. With
             bc="none" there is no boundary term: use ``pc.Periodic(inputs={1: 2 * pi})``,
             which makes the network exactly 2π-periodic in x (a hard constraint).
    Uniform points from ``default_rng(seed)`` in the order pde, ic, bc.

    >>> advection(n_collocation=10, n_ic=4, n_bc=4, bc="none").term_names
    ['pde', 'ic']
    """
    Problem, Term = _lazy_api()
    sin = _lazy_sin()
    if bc not in ("dirichlet", "none"):
        raise ValueError(f"bc must be 'dirichlet' or 'none', got {bc!r}")
    c = float(c)
    pde, ic, bcp = _space_time_points(seed, 1.0, 0.0, 2.0 * PI, n_collocation, n_ic, n_bc)
    terms = {"pde": Term(points=pde, residual=lambda x, u: u.t + c * u.x),
             "ic": Term(points=ic, residual=lambda x, u: u - sin(x.x))}
    if bc == "dirichlet":
        terms["bc"] = Term(points=bcp, residual=lambda x, u: u - sin(x.x - c * x.t))
    return Problem(
        inputs=["t", "x"],
        outputs=["u"],
        domain={"t": (0.0, 1.0), "x": (0.0, 2.0 * PI)},
        terms=terms,
        exact=lambda X: advection_exact(X, c),
        test_points=None,
        transform=None,
    )
# ----------------------------------------------------------------------------- 7. domains
# Problems on non-rectangular domains (pinncore.geometry), with conditions from
# pinncore.conditions. Their test points lie inside the domain.

def _lshape_fd(n):
    """5-point finite differences for -Δu = 1 on L = [-1, 1]² minus (0, 1]², u = 0 on ∂L, on the
    (n+1)² grid of spacing 2/n (n even): returns (axis, U) with U = 0 outside L."""
    import scipy.sparse as sp
    import scipy.sparse.linalg as spla
    h = 2.0 / n
    axis = np.linspace(-1.0, 1.0, n + 1)
    T = sp.diags([np.ones(n - 2), -2.0 * np.ones(n - 1), np.ones(n - 2)], [-1, 0, 1])
    eye = sp.identity(n - 1)
    A = (sp.kron(T, eye) + sp.kron(eye, T)).tocsr() / (h * h)
    X, Y = np.meshgrid(axis[1:-1], axis[1:-1], indexing="ij")
    idx = np.flatnonzero(~((X.ravel() >= 0) & (Y.ravel() >= 0)))   # interior nodes of L
    u = spla.spsolve(A[idx][:, idx].tocsc(), -np.ones(idx.size))
    inner = np.zeros((n - 1) ** 2)
    inner[idx] = u
    U = np.zeros((n + 1, n + 1))
    U[1:-1, 1:-1] = inner.reshape(n - 1, n - 1)
    return axis, U


@functools.lru_cache(maxsize=4)
def _lshape_grid(n=128):
    """The reference on the (n+1)² grid: Richardson extrapolation of the h = 2/n and h = 1/n
    solutions with the exponent 4/3 of the re-entrant corner (u ~ r^(2/3) sin(2θ/3))."""
    axis, coarse = _lshape_fd(n)
    _, fine = _lshape_fd(2 * n)
    U = fine[::2, ::2] + (fine[::2, ::2] - coarse) / (2.0 ** (4.0 / 3.0) - 1.0)
    U.setflags(write=False)
    return axis, U


def poisson_lshape_reference(points, n=128):
    """Reference for -Δu = 1 on the L-shape, u = 0 on the boundary; (M, 2) -> (M, 1).

    Richardson-extrapolated 5-point finite differences (scipy.sparse; h = 1/64 and 1/128 for
    ``n = 128``), bilinear between grid nodes, 0 outside L. Accuracy ≈ 1e-4 relative L2 at the
    nodes (against an h = 1/512 solve; bench/README.md).
    """
    from scipy.interpolate import RegularGridInterpolator
    p = _points(points, 2)
    axis, U = _lshape_grid(int(n))
    return RegularGridInterpolator((axis, axis), U)(np.clip(p, -1.0, 1.0))[:, None]


@_library("poisson_lshape", "Poisson -lap u = 1 on the L-shape [-1,1]^2 minus (0,1]^2, finite-difference reference",
          bounds={"n_collocation": (16, 4000), "n_bc": (4, 1000), "seed": (0, 2 ** 31 - 1)},
          help={"seed": "point sampling seed"}, exact=True)
def poisson_lshape(n_collocation=2000, n_bc=400, method="sobol", seed=0):
    """Poisson equation on the L-shaped domain (DeepXDE's "Poisson equation in L-shaped
    domain" example; Lu et al. 2021, SIAM Rev. 63(1)).

    PDE      u_xx + u_yy + 1 = 0,   (x, y) in L = [-1, 1]^2 minus (0, 1]^2
    BC       u = 0 on the boundary of L (six edges, re-entrant corner at the origin)
    Solution no closed form (corner singularity u ~ r^(2/3) sin(2θ/3));
             reference :func:`poisson_lshape_reference` (finite differences).
    Inputs   ["x", "y"]; outputs ["u"].
    Terms    "pde": ``n_collocation`` points of ``geometry.sample_interior(method, seed)``;
             "bc": ``n_bc`` points of ``sample_boundary(method, seed + 1)`` (length-weighted).
    test_points: the nodes of the reference's 129 x 129 grid that lie in L (12 545 points).
    ``problem.geometry`` is the L-shape (pinncore.geometry).
    """
    from . import conditions as bc
    from . import geometry as geo
    Problem, Term = _lazy_api()
    L = geo.Box([-1, -1], [1, 1]) - geo.Box([0, 0], [1, 1])
    axis, _ = _lshape_grid()
    g = geo.Grid([-1, -1], [1, 1], (axis.size, axis.size), geometry=L)
    problem = Problem(
        inputs=["x", "y"],
        outputs=["u"],
        domain=L.domain(["x", "y"]),
        terms={
            "pde": Term(points=L.sample_interior(int(n_collocation), method, seed),
                        residual=lambda x, u: u.xx + u.yy + 1.0),
            "bc": bc.dirichlet(L.sample_boundary(int(n_bc), method, seed + 1), 0.0),
        },
        exact=poisson_lshape_reference,
        test_points=g.points[g.mask],
        transform=None,
    )
    problem.geometry = L
    return problem


_HOLES = ((-0.5, -0.5, 0.2), (0.5, 0.5, 0.2), (-0.4, 0.6, 0.15), (0.6, -0.4, 0.15))


def poisson_holes_exact(points):
    """sin(pi x) sin(pi y); ``points`` (M, 2) -> (M, 1)."""
    p = _points(points, 2)
    return (np.sin(PI * p[:, 0]) * np.sin(PI * p[:, 1]))[:, None]


def poisson_holes_geometry():
    """[-1, 1]^2 minus the four disks (centre x, centre y, radius) of ``_HOLES``."""
    from . import geometry as geo
    g = geo.Box([-1, -1], [1, 1])
    for cx, cy, r in _HOLES:
        g = g - geo.Disk([cx, cy], r)
    return g


@_library("poisson_holes", "Poisson on [-1,1]^2 with four circular holes, u = sin(pi x) sin(pi y)",
          bounds={"hole_bc": ("dirichlet", "neumann"), "n_collocation": (16, 4000), "n_bc": (4, 1000),
                  "seed": (0, 2 ** 31 - 1)},
          help={"hole_bc": "condition on the holes", "seed": "point sampling seed"}, exact=True)
def poisson_holes(hole_bc="dirichlet", n_collocation=2000, n_bc=400, method="sobol", seed=0):
    """Poisson equation on a square with four circular holes (a manufactured solution, so
    the reference is exact; the geometry is of the PINNacle Poisson2d-C kind: Hao et al.
    2023, "PINNacle", arXiv:2306.08827).

    PDE      u_xx + u_yy + 2 pi^2 sin(pi x) sin(pi y) = 0 on [-1, 1]^2 minus four disks
             (centres (-0.5, -0.5), (0.5, 0.5) radius 0.2; (-0.4, 0.6), (0.6, -0.4) radius 0.15)
    BC       u = 0 on the square's edges; on the holes u = sin(pi x) sin(pi y)
             (``hole_bc="dirichlet"``) or ∂u/∂n = its normal derivative (``"neumann"``,
             normals pointing into the holes)
    Solution u = sin(pi x) sin(pi y)
    Inputs   ["x", "y"]; outputs ["u"].
    Terms    "pde": ``n_collocation`` interior points; "bc": the square's edges;
             "holes": the hole boundaries; boundary points are ``n_bc`` length-weighted
             samples of the whole boundary (``method``, ``seed + 1``) split by where they lie.
    test_points: the 101 x 101 grid points in the domain; ``problem.geometry`` is the domain.
    """
    from . import conditions as bc
    from . import geometry as geo
    Problem, Term = _lazy_api()
    sin = _lazy_sin()
    if hole_bc not in ("dirichlet", "neumann"):
        raise ValueError(f"hole_bc must be 'dirichlet' or 'neumann', got {hole_bc!r}")
    G = poisson_holes_geometry()
    xb = G.sample_boundary(int(n_bc), method, seed + 1)
    outer = geo.Box([-1, -1], [1, 1]).on_boundary(xb)
    xh = xb[~outer]
    if hole_bc == "dirichlet":
        holes = bc.dirichlet(xh, lambda x: sin(PI * x.x) * sin(PI * x.y))
    else:
        gx = PI * np.cos(PI * xh[:, 0]) * np.sin(PI * xh[:, 1])
        gy = PI * np.sin(PI * xh[:, 0]) * np.cos(PI * xh[:, 1])
        nrm = G.normal(xh)
        holes = bc.neumann(xh, G, value=gx * nrm[:, 0] + gy * nrm[:, 1])
    test = geo.Grid([-1, -1], [1, 1], (101, 101), geometry=G)
    src = 2.0 * PI * PI
    problem = Problem(
        inputs=["x", "y"],
        outputs=["u"],
        domain=G.domain(["x", "y"]),
        terms={
            "pde": Term(points=G.sample_interior(int(n_collocation), method, seed),
                        residual=lambda x, u: u.xx + u.yy + src * sin(PI * x.x) * sin(PI * x.y)),
            "bc": bc.dirichlet(xb[outer], 0.0),
            "holes": holes,
        },
        exact=poisson_holes_exact,
        test_points=test.points[test.mask],
        transform=None,
    )
    problem.geometry = G
    return problem


_J0_ZERO = 2.404825557695773   # first zero of the Bessel function J0


def heat_disk_exact(points, kappa=0.1):
    """exp(-kappa j^2 t) J0(j r), j the first zero of J0; ``points`` (M, 3) columns (t, x, y) -> (M, 1)."""
    from scipy.special import j0
    p = _points(points, 3)
    r = np.hypot(p[:, 1], p[:, 2])
    return (np.exp(-float(kappa) * _J0_ZERO ** 2 * p[:, 0]) * j0(_J0_ZERO * r))[:, None]


@_library("heat_disk", "heat u_t = 0.1 lap u on the unit disk, u = exp(-0.1 j^2 t) J0(j r)", exact=True)
def heat_disk(kappa=0.1, t_max=1.0, n_collocation=2000, n_ic=400, n_bc=400, seed=0):
    """Heat equation on the unit disk, the first radial mode (separation of variables;
    e.g. Carslaw & Jaeger, "Conduction of Heat in Solids", 1959, §7.6).

    PDE      u_t = kappa (u_xx + u_yy),    t in [0, t_max], x^2 + y^2 <= 1
    IC       u(0, x, y) = J0(j r)          (j = 2.404826, the first zero of J0)
    BC       u = 0 on the circle r = 1
    Solution u = exp(-kappa j^2 t) J0(j r)
    Inputs   ["t", "x", "y"]; outputs ["u"].
    Terms    "pde": ``n_collocation`` points (disk: uniform in area, t uniform); "ic":
             ``n_ic`` disk points at t = 0 (values J0(j r) as data: the residual language
             has no Bessel function); "bc": ``n_bc`` circle points at uniform times.
             Seeds ``seed`` (pde), ``seed + 1`` (ic), ``seed + 2`` (bc).
    test_points: 11 times x the 41 x 41 grid points inside the disk; ``problem.geometry`` is
    the (spatial) disk.
    """
    from . import conditions as bc
    from . import geometry as geo
    Problem, Term = _lazy_api()
    kappa, t_max = float(kappa), float(t_max)
    disk = geo.Disk([0.0, 0.0], 1.0)

    def space_time(xy, s):
        t = np.random.default_rng(s).uniform(0.0, t_max, xy.shape[0])
        return np.column_stack([t, xy])
    pde = space_time(disk.sample_interior(int(n_collocation), seed=seed), seed + 100)
    ic_xy = disk.sample_interior(int(n_ic), seed=seed + 1)
    ic = np.column_stack([np.zeros(ic_xy.shape[0]), ic_xy])
    wall = space_time(disk.sample_boundary(int(n_bc), seed=seed + 2), seed + 102)
    g = disk.grid((41, 41))
    xy = g.points[g.mask]
    test = np.concatenate([np.column_stack([np.full(xy.shape[0], t), xy]) for t in np.linspace(0, t_max, 11)])
    problem = Problem(
        inputs=["t", "x", "y"],
        outputs=["u"],
        domain={"t": (0.0, t_max), "x": (-1.0, 1.0), "y": (-1.0, 1.0)},
        terms={
            "pde": Term(points=pde, residual=lambda x, u: u.t - kappa * (u.xx + u.yy)),
            "ic": bc.initial(ic, heat_disk_exact(ic, kappa)[:, 0]),
            "bc": bc.dirichlet(wall, 0.0),
        },
        exact=lambda X: heat_disk_exact(X, kappa),
        test_points=test,
        transform=None,
    )
    problem.geometry = disk
    return problem


# ----------------------------------------------------------------------------- 9. Kovasznay flow

def kovasznay_exact(points, re=20.0):
    """Kovasznay's (1948) steady Navier–Stokes flow behind a grid: with λ = Re/2 − √(Re²/4 + 4π²),
    u = 1 − e^{λx} cos 2πy, v = λ/(2π) e^{λx} sin 2πy, p = (1 − e^{2λx})/2; ``points`` (M, 2)
    -> (M, 3) columns u, v, p.

    >>> bool(np.allclose(kovasznay_exact(np.array([[0.0, 0.0]])), [[0.0, 0.0, 0.0]]))
    True
    """
    p = _points(points, 2)
    lam = 0.5 * re - math.sqrt(0.25 * re * re + 4 * PI * PI)
    e = np.exp(lam * p[:, 0])
    return np.column_stack([1 - e * np.cos(2 * PI * p[:, 1]), lam / (2 * PI) * e * np.sin(2 * PI * p[:, 1]),
                            0.5 * (1 - e * e)])


@_library("kovasznay", "Kovasznay flow: steady Navier-Stokes (u, v, p) at Re = 20 on [-0.5,1]x[-0.5,1.5], exact",
          bounds={"re": (1.0, 100.0), "n_collocation": (16, 4000), "n_bc": (8, 1000), "seed": (0, 2 ** 31 - 1)},
          exact=True)
def kovasznay(re=20.0, n_collocation=2000, n_bc=400, seed=0):
    """Kovasznay flow: the steady incompressible Navier–Stokes equations with an exact solution
    (Kovasznay 1948; the DeepXDE and Jin et al. 2021 "NSFnets" benchmark), a system of three
    outputs.

    PDE      u u_x + v u_y + p_x − (u_xx + u_yy)/Re = 0,
             u v_x + v v_y + p_y − (v_xx + v_yy)/Re = 0,   u_x + v_y = 0   (one term, 3 components)
    Domain   x in [-0.5, 1], y in [-0.5, 1.5]; Re = 20.
    BC       u, v = exact on the whole boundary ("bc_u", "bc_v"); p = exact on x = 1 ("bc_p",
             the pressure's additive constant).
    Solution :func:`kovasznay_exact`. Inputs ["x", "y"]; outputs ["u", "v", "p"].
    Uniform points from ``default_rng(seed)``; test points a 101 x 101 grid.

    >>> kovasznay(n_collocation=10, n_bc=8).term_names
    ['pde', 'bc_u', 'bc_v', 'bc_p']
    """
    from . import conditions as bc
    from . import geometry as geo
    Problem, Term = _lazy_api()
    re = float(re)
    box = geo.Box([-0.5, -0.5], [1.0, 1.5])
    rng = np.random.default_rng(seed)
    pde = np.column_stack([rng.uniform(-0.5, 1.0, n_collocation), rng.uniform(-0.5, 1.5, n_collocation)])
    edge = box.sample_boundary(int(n_bc), "uniform", seed + 1)
    right = np.column_stack([np.ones(max(int(n_bc) // 4, 1)), rng.uniform(-0.5, 1.5, max(int(n_bc) // 4, 1))])
    ex_edge, ex_right = kovasznay_exact(edge, re), kovasznay_exact(right, re)

    def ns(x, u, v, p):
        return [u * u.x + v * u.y + p.x - (u.xx + u.yy) / re,
                u * v.x + v * v.y + p.y - (v.xx + v.yy) / re,
                u.x + v.y]

    gx, gy = np.meshgrid(np.linspace(-0.5, 1.0, 101), np.linspace(-0.5, 1.5, 101), indexing="ij")
    return Problem(
        inputs=["x", "y"],
        outputs=["u", "v", "p"],
        domain={"x": (-0.5, 1.0), "y": (-0.5, 1.5)},
        terms={"pde": Term(points=pde, residual=ns),
               "bc_u": bc.dirichlet(edge, ex_edge[:, 0], output="u"),
               "bc_v": bc.dirichlet(edge, ex_edge[:, 1], output="v"),
               "bc_p": bc.dirichlet(right, ex_right[:, 2], output="p")},
        exact=lambda X: kovasznay_exact(X, re),
        test_points=np.column_stack([gx.ravel(), gy.ravel()]),
        transform=None,
    )


# ----------------------------------------------------------------------------- registry

class _Library(collections.abc.MutableMapping):
    """``REGISTRY``: the name -> constructor view of ``registry.problems`` (live: a problem
    registered anywhere appears here). Assigning ``REGISTRY[name] = ctor`` registers ``ctor``."""

    def __getitem__(self, name):
        if not isinstance(name, str) or name not in registry.problems:
            raise KeyError(name)
        return registry.problems[name].factory

    def __setitem__(self, name, ctor):
        if name in registry.problems:   # registered beside its definition already (with its flags)
            return
        registry.problems.add(name, _with_origin(name, ctor))

    def __delitem__(self, name):
        raise TypeError("library problems cannot be unregistered")

    def __iter__(self):
        return iter(registry.problems.names())

    def __len__(self):
        return len(registry.problems)

    def __repr__(self):
        return f"REGISTRY({registry.problems.names()})"


REGISTRY = _Library()

# The library's inverse problems register beside their definitions (pinncore/inverse.py).
from .inverse import burgers_inverse  # noqa: E402,F401


def get(name, **kw):
    """Build the problem registered as ``name`` (``registry.problems``) with keyword arguments ``kw``.

    >>> get("harmonic", n_collocation=20).n_points
    {'pde': 20, 'ic': 1}
    """
    if not isinstance(name, str) or name not in registry.problems:
        raise ValueError(
            f"unknown problem {name!r}; known problems: {', '.join(registry.problems.names())}"
        ) from None
    spec = registry.problems[name]
    problem = spec.factory(**kw)
    if problem.origin is None:   # registered without the origin wrapper (e.g. by another module)
        problem.origin = (spec.name, dict(kw))
    return problem


def describe():
    """``[(name, one-line description), ...]`` for every registered problem (CLI listing).

    >>> [name for name, _ in describe()][:2]
    ['harmonic', 'burgers']
    """
    return [(spec.name, spec.description) for spec in registry.problems.specs()]


# ----------------------------------------------------------------------------- origin

def check_arguments(name, signature, given):
    """Check each argument of a library factory against its default's kind, naming it: a number
    where the default is a number (finite), an integer count >= 1 for ``n_*`` and >= 0 for
    ``seed``, a bool where it is a bool, a string where it is a string. (``omega="x"`` used to
    fail inside ``float()`` with "could not convert string to float: 'x'", naming nothing.)

    >>> import inspect
    >>> try:
    ...     check_arguments("harmonic", inspect.signature(harmonic), {"omega": "x"})
    ... except TypeError as e:
    ...     print(e)
    harmonic(omega='x'): omega must be a real number (default 6.283185307179586)
    """
    for key, value in given.items():
        param = signature.parameters.get(key)
        default = None if param is None else param.default
        where = f"{name}({key}={value!r})"
        if isinstance(default, bool):
            if not isinstance(value, (bool, np.bool_)):
                raise TypeError(f"{where}: {key} must be True or False")
        elif isinstance(default, (int, float)):
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise TypeError(f"{where}: {key} must be a real number (default {default!r})")
            try:
                finite = math.isfinite(value)
            except OverflowError:   # an int beyond float range
                finite = False
            if not finite:
                raise ValueError(f"{where}: {key} must be finite")
            if key.startswith("n_") or key == "seed":
                lo = 0 if key == "seed" else 1
                if float(value) != int(value) or value < lo:
                    raise ValueError(f"{where}: {key} must be an integer >= {lo}")
        elif isinstance(default, str) and not isinstance(value, str):
            raise TypeError(f"{where}: {key} must be a string (default {default!r})")
