"""``pc.solve`` on problems the library does not have (issue 20: outside checks use unseen PDEs):
a forced damped oscillator, advection–diffusion, an Allen–Cahn-type equation (no exact
solution), Laplace on a disk with Dirichlet values given as an array, a two-output system, a
Neumann condition, a 3-D and a 4-D heat equation, a non-polynomial residual (sin u), a hard
constraint, and an unknown diffusion coefficient from 1 %-noisy data. Prints per problem the wall
time against the limit (the overshoot), the rel-L2 (or None), the final loss, the method, the
phases and the attempts.

    nice python bench/solve_unseen.py --time 15
    nice python bench/solve_unseen.py --time 0.5 --problems big3d,four_d,inverse   # overshoot
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.integrate import solve_ivp

import pinncore as pc
import pinncore.geometry as geo
from pinncore import conditions as bc
from pinncore.residual import pointwise

rng = np.random.default_rng(0)

def oscillator():
    # u'' + 0.2 u' + 4 u = cos(t), u(0)=1, u'(0)=0 on [0, 6]
    t = np.linspace(0, 6, 200)[:, None]
    f = pointwise(lambda p: np.cos(p[:, 0]), "f")
    def exact(x):
        s = solve_ivp(lambda tt, y: [y[1], np.cos(tt) - 0.2 * y[1] - 4 * y[0]], (0, 6), [1, 0],
                      t_eval=np.sort(np.unique(x[:, 0])), rtol=1e-12, atol=1e-12)
        return np.interp(x[:, 0], s.t, s.y[0])[:, None]
    return pc.Problem(["t"], ["u"], {"pde": pc.Term(t, lambda x, u: u.tt + 0.2 * u.t + 4 * u - f),
                                     "ic": pc.Term([[0.0]], lambda x, u: [u - 1.0, u.t])}, {"t": (0, 6)}, exact=exact)

def advdiff():
    a, k = 1.0, 0.05
    # exact: u = exp(-k pi^2 t) sin(pi (x - a t)) on x in [0,2], t in [0,1]; Dirichlet from exact
    ex = lambda p: (np.exp(-k * np.pi**2 * p[:, 0]) * np.sin(np.pi * (p[:, 1] - a * p[:, 0])))[:, None]
    box = geo.Box([0, 0], [1, 2])
    pts = box.sample_interior(2000, seed=0)
    x0 = np.column_stack([np.zeros(100), np.linspace(0, 2, 100)])
    xb = np.column_stack([np.r_[np.linspace(0, 1, 50), np.linspace(0, 1, 50)], np.repeat([0.0, 2.0], 50)])
    return pc.Problem(["t", "x"], ["u"], {"pde": pc.Term(pts, lambda x, u: u.t + a * u.x - k * u.xx),
                                          "ic": bc.dirichlet(x0, ex(x0)[:, 0]),
                                          "bc": bc.dirichlet(xb, ex(xb)[:, 0])},
                      {"t": (0, 1), "x": (0, 2)}, exact=ex)

def allen_cahn():
    box = geo.Box([0, -1], [0.5, 1])
    pts = box.sample_interior(2000, seed=0)
    x0 = np.column_stack([np.zeros(100), np.linspace(-1, 1, 100)])
    xb = np.column_stack([np.r_[np.linspace(0, .5, 50), np.linspace(0, .5, 50)], np.repeat([-1.0, 1.0], 50)])
    return pc.Problem(["t", "x"], ["u"], {"pde": pc.Term(pts, lambda x, u: u.t - 1e-2 * u.xx - u + u * u * u),
                                          "ic": bc.initial(x0, lambda x: x.x * x.x * pc.cos(np.pi * x.x)),
                                          "bc": bc.dirichlet(xb, -1.0)},
                      {"t": (0, 0.5), "x": (-1, 1)})

def poisson_disk():
    d = geo.Disk([0, 0], 1)
    ex = lambda p: (np.exp(p[:, 0]) * np.sin(p[:, 1]))[:, None]   # harmonic
    xb = d.sample_boundary(200, seed=1)
    p = pc.Problem(["x", "y"], ["u"], {"pde": pc.Term(d.sample_interior(1000, seed=0), lambda x, u: u.xx + u.yy),
                                       "bc": bc.dirichlet(xb, ex(xb)[:, 0])},
                   d.domain(["x", "y"]), exact=ex, test_points=d.sample_interior(2000, seed=5))
    p.geometry = d
    return p

def system2():
    t = np.linspace(0, 2 * np.pi, 200)[:, None]
    return pc.Problem(["t"], ["u", "v"], {"ode": pc.Term(t, lambda x, u, v: [u.t - v, v.t + u]),
                                          "ic": pc.Term([[0.0]], lambda x, u, v: [u - 1.0, v])},
                      {"t": (0, 2 * np.pi)}, exact=lambda p: np.column_stack([np.cos(p[:, 0]), -np.sin(p[:, 0])]))

def neumann_poisson():
    # u'' = -pi^2 sin(pi x/2)... 1D: u_xx = -(pi/2)^2 sin(pi x /2) on [0,1], u(0)=0, u'(1)=0 ; exact sin(pi x/2)
    x = np.linspace(0, 1, 100)[:, None]
    f = pointwise(lambda p: -(np.pi / 2) ** 2 * np.sin(np.pi * p[:, 0] / 2), "f")
    return pc.Problem(["x"], ["u"], {"pde": pc.Term(x, lambda x, u: u.xx - f),
                                     "d": bc.dirichlet([[0.0]], 0.0),
                                     "n": bc.neumann([[1.0]], np.array([[1.0]]), 0.0)},
                      {"x": (0, 1)}, exact=lambda p: np.sin(np.pi * p[:, 0] / 2)[:, None])

def heat3d():
    # u_t = k (u_xx + u_yy), exact exp(-2 k pi^2 t) sin(pi x) sin(pi y), (t,x,y) in [0,1]^3
    k = 0.05
    ex = lambda p: (np.exp(-2 * k * np.pi**2 * p[:, 0]) * np.sin(np.pi * p[:, 1]) * np.sin(np.pi * p[:, 2]))[:, None]
    box = geo.Box([0, 0, 0], [1, 1, 1])
    pts = box.sample_interior(2000, seed=0)
    sp = geo.Box([0, 0], [1, 1])
    xy = sp.sample_interior(300, seed=1)
    x0 = np.column_stack([np.zeros(300), xy])
    xyb = sp.sample_boundary(300, seed=2)
    xb = np.column_stack([rng.uniform(0, 1, 300), xyb])
    return pc.Problem(["t", "x", "y"], ["u"], {"pde": pc.Term(pts, lambda x, u: u.t - k * (u.xx + u.yy)),
                                               "ic": bc.dirichlet(x0, ex(x0)[:, 0]), "bc": bc.dirichlet(xb, 0.0)},
                      {"t": (0, 1), "x": (0, 1), "y": (0, 1)}, exact=ex)

def inverse_diff():
    # u_t = D u_xx, D=0.1 unknown; exact exp(-D pi^2 t) sin(pi x); noisy data 1%
    D = 0.1
    ex = lambda p: (np.exp(-D * np.pi**2 * p[:, 0]) * np.sin(np.pi * p[:, 1]))[:, None]
    box = geo.Box([0, 0], [1, 1])
    pts = box.sample_interior(1000, seed=0)
    xd = box.sample_interior(500, seed=3)
    ud = ex(xd)[:, 0]
    ud = ud + 0.01 * ud.std() * np.random.default_rng(1).standard_normal(ud.size)
    Du = pc.Unknown("D", 1.0, positive=True)
    return pc.Problem(["t", "x"], ["u"], {"pde": pc.Term(pts, lambda x, u: u.t - Du * u.xx),
                                          "data": bc.data(xd, ud)},
                      {"t": (0, 1), "x": (0, 1)}, exact=ex, unknowns=[Du])

CASES = dict(  # noqa: C408
    oscillator=oscillator, advdiff=advdiff, allen_cahn=allen_cahn, poisson_disk=poisson_disk,
             system2=system2, neumann=neumann_poisson, heat3d=heat3d, inverse=inverse_diff)


def big3d():
    p = heat3d()
    box = geo.Box([0, 0, 0], [1, 1, 1])
    return p.with_points("pde", box.sample_interior(30000, seed=7))

def biglm():
    # rows near the LM threshold boundary: 1-D with many points
    p = oscillator()
    return p.with_points("pde", np.linspace(0, 6, 2000)[:, None])
CASES.update(big3d=big3d, biglm=biglm)


def nonpoly2d():
    # u_xx + u_yy = sin(u) + f with exact u = sin(pi x) sin(pi y)? use f from exact
    ex = lambda p: (np.sin(np.pi * p[:, 0]) * np.sin(np.pi * p[:, 1]))[:, None]
    f = pointwise(lambda p: -2 * np.pi**2 * ex(p)[:, 0] - np.sin(ex(p)[:, 0]), "f")
    box = geo.Box([0, 0], [1, 1])
    xb = box.sample_boundary(400, seed=1)
    return pc.Problem(["x", "y"], ["u"], {"pde": pc.Term(box.sample_interior(2000, seed=0), lambda x, u: u.xx + u.yy - pc.sin(u) - f),
                                          "bc": bc.dirichlet(xb, 0.0)}, {"x": (0, 1), "y": (0, 1)}, exact=ex)

def four_d():
    # u_t = 0.05 (u_xx+u_yy+u_zz), exact exp(-3*0.05 pi^2 t) prod sin
    k = 0.05
    ex = lambda p: (np.exp(-3 * k * np.pi**2 * p[:, 0]) * np.prod(np.sin(np.pi * p[:, 1:]), axis=1))[:, None]
    box = geo.Box([0, 0, 0, 0], [1, 1, 1, 1])
    sp = geo.Box([0, 0, 0], [1, 1, 1])
    x0 = np.column_stack([np.zeros(500), sp.sample_interior(500, seed=1)])
    xb = np.column_stack([rng.uniform(0, 1, 500), sp.sample_boundary(500, seed=2)])
    return pc.Problem(["t", "x", "y", "z"], ["u"], {"pde": pc.Term(box.sample_interior(3000, seed=0), lambda x, u: u.t - k * (u.xx + u.yy + u.zz)),
                                                    "ic": bc.dirichlet(x0, ex(x0)[:, 0]), "bc": bc.dirichlet(xb, 0.0)},
                      {"t": (0, 1), "x": (0, 1), "y": (0, 1), "z": (0, 1)}, exact=ex)

def hard_transform():
    # u' = -2 t u, u(0) = 1 via transform, exact exp(-t^2) on [0, 3], 2000 points -> bfgs
    t = np.linspace(0, 3, 2000)[:, None]
    return pc.Problem(["t"], ["u"], {"pde": pc.Term(t, lambda x, u: u.t + 2 * x.t * u)}, {"t": (0, 3)},
                      exact=lambda p: np.exp(-p[:, :1] ** 2), transform=lambda x, n: 1.0 + x.t * n)
CASES.update(nonpoly2d=nonpoly2d, four_d=four_d, hard_transform=hard_transform)



def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--time", type=float, default=15.0)
    ap.add_argument("--tol", type=float, default=None)
    ap.add_argument("--problems", default=",".join(c for c in CASES if c not in ("big3d", "biglm")))
    a = ap.parse_args()
    for name in a.problems.split(","):
        p = CASES[name]()
        t0 = time.perf_counter()
        r = pc.solve(p, time_limit=a.time, tol=a.tol, progress=False)
        wall = time.perf_counter() - t0
        rec = r.record
        rel = "None" if r.rel_l2 is None else f"{r.rel_l2:.2g}"
        phases = ", ".join(f"{q['optimizer']} {q['iterations']}" for q in rec["phases"])
        unk = "".join(f" {k}={v:.6g}" for k, v in r.unknowns.items())
        print(f"{name:15s} wall {wall:6.1f} s (limit {a.time:g}, over {wall - a.time:+.2f}) rel-L2 {rel:8s} "
              f"loss {rec['loss']:.2g}  {rec['method']}: {phases}; attempts {len(rec['attempts'])}{unk}",
              flush=True)


if __name__ == "__main__":
    main()
