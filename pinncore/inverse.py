"""Inverse problems of the library: equations whose coefficients are identified from data.

``burgers_inverse``: Raissi, Perdikaris & Karniadakis 2019 (J. Comput. Phys. 378, §4.1.1,
"data-driven discovery" of Burgers' equation): u_t + λ1 u u_x − λ2 u_xx = 0 with λ1, λ2 unknown
(``pc.Unknown``), fitted to N = 2 000 samples of the solution, clean or with Gaussian noise of
σ = noise · std(u). The samples are drawn from the paper's 100 (t) × 256 (x) grid, and the PDE
residual is enforced at the same points plus ``n_collocation`` uniform ones. The defaults (1 000
samples, 1 000 points) keep the default request within the web page's limits; the paper's and the
README's setting is ``n_data=2000`` with ``n_collocation=6000``: with
2 000, measured λ2 errors were 0.0104 % clean and 0.77 % with 1 % noise, against 0.0056 % and
0.59 % with 6 000; bench/inverse_burgers.py). True values λ1 = 1,
λ2 = 0.01/π; the reference is the Cole–Hopf solution (``pinncore.problems.burgers_reference``).

Registered in ``registry.problems`` (flags inverse, exact) and ``pinncore.problems.get``.
"""
from __future__ import annotations

import math

import numpy as np

from . import registry

__all__ = ["burgers_inverse", "BURGERS_LAMBDA"]

# The coefficients the data were generated with (λ1, λ2).
BURGERS_LAMBDA = {"lambda1": 1.0, "lambda2": 0.01 / math.pi}


@registry.problems.register("burgers_inverse", inverse=True, exact=True,
                            description="identify l1, l2 of u_t + l1 u u_x - l2 u_xx = 0 from samples of u "
                                        "(Raissi et al. 2019; noise = sigma/std(u))",
                            bounds={"noise": (0.0, 1.0), "n_data": (10, 25600), "n_collocation": (0, 100000)})
def burgers_inverse(noise=0.0, n_data=1000, n_collocation=1000, seed=0, lambda1_init=0.0, lambda2_init=0.0):
    """Burgers' equation with unknown λ1, λ2 identified from ``n_data`` samples (see the module
    docstring). PDE u_t + λ1 u u_x − λ2 u_xx = 0 on t in [0, 0.99], x in [-1, 1]. Terms "pde" (the data points, then ``n_collocation`` uniform points) and
    "data" (u − u_i); unknowns "lambda1" and "lambda2" (free, starting at the given inits).

    >>> p = burgers_inverse(n_data=50, n_collocation=10)
    >>> p.unknowns.names, p.n_points
    (['lambda1', 'lambda2'], {'pde': 60, 'data': 50})
    """
    from . import conditions
    from .problem import Problem, Term
    from .problems import burgers_exact
    from .unknown import Unknown

    if not (isinstance(noise, (int, float)) and not isinstance(noise, bool) and 0.0 <= noise < math.inf):
        raise ValueError(f"noise must be a finite number >= 0 (σ as a fraction of std(u)), got {noise!r}")
    for name, v, lo in (("n_data", n_data, 1), ("n_collocation", n_collocation, 0), ("seed", seed, 0)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    if int(n_data) > 25600:
        raise ValueError(f"n_data must be at most 25600 (the 100 x 256 grid), got {n_data}")
    tt, xx = np.meshgrid(np.linspace(0.0, 0.99, 100), np.linspace(-1.0, 1.0, 256), indexing="ij")
    grid = np.column_stack([tt.ravel(), xx.ravel()])
    rng = np.random.default_rng(seed)
    pts = grid[rng.choice(grid.shape[0], int(n_data), replace=False)]
    u = burgers_exact(pts)[:, 0]
    u_data = u + float(noise) * np.std(u) * rng.standard_normal(u.shape)
    extra = np.column_stack([rng.uniform(0.0, 0.99, int(n_collocation)), rng.uniform(-1.0, 1.0, int(n_collocation))])
    l1 = Unknown("lambda1", float(lambda1_init))
    l2 = Unknown("lambda2", float(lambda2_init))
    return Problem(
        inputs=["t", "x"], outputs=["u"], domain={"t": (0.0, 0.99), "x": (-1.0, 1.0)},
        terms={"pde": Term(np.concatenate([pts, extra]), lambda x, u: u.t + l1 * u * u.x - l2 * u.xx),
               "data": conditions.data(pts, u_data)},
        exact=burgers_exact, test_points=grid)
