"""A user-defined problem with a module-level factory, for the sweep tests: workers (forked or
Dask) import this module by the path "_sweep_factory:decay" and re-trace the residuals."""
import numpy as np

import pinncore as pc


def decay(k=2.0, n=24):
    """u' + k u = 0 on t in [0, 1], u(0) = 1: exact u = exp(-k t). Terms "ode" and "ic"."""
    t = np.linspace(0.0, 1.0, int(n))[:, None]
    return pc.Problem(inputs=["t"], outputs=["u"], domain={"t": (0.0, 1.0)},
                      terms={"ode": pc.Term(points=t, residual=lambda x, u: u.t + k * u),
                             "ic": pc.Term(points=[[0.0]], residual=lambda x, u: u - 1.0)},
                      exact=lambda x: np.exp(-k * x[:, :1]))
