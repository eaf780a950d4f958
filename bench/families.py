"""Problem FAMILIES for judging weighting schemes: one PDE over a range of its parameter,
several network seeds each, small enough that every scheme can be fitted on every member in
minutes (bench/score_schemes.py).

A scheme that was chosen by wins on six fixed problems need not carry over to the same
equations at another frequency or coefficient; a family makes the stiffness vary (u'' + ω²u
has a PDE residual ∝ ω², so the PDE loss and its NTK trace grow like ω⁴), and the score is the
worst case and the count of clean fits, not the number of wins.

Families (every member is built with pc.Problem / pc.Term; library factories are reused where
they take the parameter):

    oscillator   u'' + ω²u = 0 on [0, 1], ω ∈ {π, 2π, 3π, 4π}; cosine-type data u(0) = 1,
                 u'(0) = 0 (u = cos ωt) and sine-type data u(0) = 0, u'(0) = ω (u = sin ωt);
                 64 points, [1, 50, 50, 50, 1], Adam 3000 steps, seeds 0–2 (24 fits).
    heat         u_t = κ u_xx (pc.problems.heat1d), κ ∈ {0.05, 0.2, 0.5, 1}.
    advdiff      u_t + c u_x = κ u_xx on [0, 1]², u = exp(−κπ²t) sin(π(x − ct)),
                 (c, κ) ∈ {(1, 0.01), (1, 0.05), (2, 0.02), (0.5, 0.1)}; Dirichlet data from u.
    poisson      u_xx = −(aπ)² sin(aπx) (pc.problems.poisson1d), a ∈ {1, 2, 3, 4}.
    helmholtz    Δu + k²u = q (pc.problems.helmholtz2d), (a1, a2) ∈ {(1, 1), (1, 2), (2, 2)}.
    burgers      u_t + u u_x = ν u_xx (pc.problems.burgers), ν ∈ {0.1/π, 0.05/π, 0.03/π}.

The held-out split (``split="tune"`` / ``"report"``) halves every family by parameter value, so
a scheme's constants can be chosen on one half and judged on the other.

    >>> fam = FAMILIES["oscillator"]
    >>> len(fam.cases()), fam.cases()[0].label
    (24, 'w=1pi cos s0')
    >>> p = fam.cases()[0].problem(); p.term_names
    ['pde', 'ic']
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Tuple

import numpy as np

import pinncore as pc

PI = math.pi

__all__ = ["Case", "Family", "FAMILIES", "oscillator", "advection_diffusion"]


def oscillator(omega, kind="cos", n_collocation=64):
    """u'' + ω²u = 0 on [0, 1] with cosine-type (u(0) = 1, u'(0) = 0) or sine-type
    (u(0) = 0, u'(0) = ω) initial data; exact u = cos ωt or sin ωt.

    >>> p = oscillator(2 * PI, "sin"); float(p.exact(np.array([[0.25]]))[0, 0])
    1.0
    """
    w = float(omega)
    w2 = w * w
    if kind == "cos":
        u0, v0 = 1.0, 0.0
    elif kind == "sin":
        u0, v0 = 0.0, w
    else:
        raise ValueError(f"kind must be 'cos' or 'sin', got {kind!r}")
    t_c = np.linspace(0.0, 1.0, int(n_collocation))[:, None]
    return pc.Problem(
        inputs=["t"], outputs=["u"], domain={"t": (0.0, 1.0)},
        terms={"pde": pc.Term(points=t_c, residual=lambda x, u: u.tt + w2 * u),
               "ic": pc.Term(points=[[0.0]], residual=lambda x, u: [u - u0, u.t - v0])},
        exact=lambda X: u0 * np.cos(w * X[:, :1]) + (v0 / w) * np.sin(w * X[:, :1]))


def advection_diffusion(c=1.0, kappa=0.05, n_collocation=200, n_ic=32, n_bc=32, seed=0):
    """u_t + c u_x = κ u_xx on t ∈ [0, 1], x ∈ [0, 1]; exact u = exp(−κπ²t) sin(π(x − ct))
    (a decaying travelling mode: u_t = −κπ²u − cπ e cos, c u_x = cπ e cos, κ u_xx = −κπ²u).
    Terms pde, ic (u(0, x) = sin πx) and bc (u = exact at x = 0 and x = 1).

    >>> p = advection_diffusion(); p.term_names
    ['pde', 'ic', 'bc']
    """
    c, kappa = float(c), float(kappa)
    rng = np.random.default_rng(seed)
    pde = np.column_stack([rng.uniform(0, 1, n_collocation), rng.uniform(0, 1, n_collocation)])
    ic = np.column_stack([np.zeros(n_ic), rng.uniform(0, 1, n_ic)])
    bc = np.column_stack([rng.uniform(0, 1, n_bc), np.where(np.arange(n_bc) < n_bc // 2, 0.0, 1.0)])
    k = kappa * PI * PI

    def exact(X):
        return (np.exp(-k * X[:, 0]) * np.sin(PI * (X[:, 1] - c * X[:, 0])))[:, None]

    return pc.Problem(
        inputs=["t", "x"], outputs=["u"], domain={"t": (0.0, 1.0), "x": (0.0, 1.0)},
        terms={"pde": pc.Term(points=pde, residual=lambda x, u: u.t + c * u.x - kappa * u.xx),
               "ic": pc.Term(points=ic, residual=lambda x, u: u - pc.sin(PI * x.x)),
               "bc": pc.Term(points=bc, residual=lambda x, u: u - pc.exp(-k * x.t) * pc.sin(PI * (x.x - c * x.t)))},
        exact=exact)


@dataclass(frozen=True)
class Case:
    """One fit: a family member (``make`` → Problem) and a network seed."""

    family: str
    label: str
    make: Callable
    param: Tuple
    seed: int
    layers_hidden: Tuple[int, ...]
    steps: int

    def problem(self):
        return self.make(*self.param)

    def net(self, problem):
        layers = [len(problem.inputs), *self.layers_hidden, len(problem.outputs)]
        return pc.MLP(layers, seed=self.seed)


@dataclass(frozen=True)
class Family:
    """A PDE over a list of parameter values (``params``), fitted from ``seeds``."""

    name: str
    make: Callable
    params: Tuple
    labels: Tuple[str, ...]
    seeds: Tuple[int, ...] = (0, 1, 2)
    layers_hidden: Tuple[int, ...] = (50, 50, 50)
    steps: int = 3000

    def cases(self, split=None):
        """Every (parameter, seed) pair; ``split="tune"`` keeps the even-indexed parameter
        values, ``"report"`` the odd ones (held out), None all."""
        if split not in (None, "tune", "report"):
            raise ValueError(f"split must be None, 'tune' or 'report', got {split!r}")
        out = []
        for i, (p, lab) in enumerate(zip(self.params, self.labels)):
            if split is not None and (i % 2 == 0) != (split == "tune"):
                continue
            out.extend(Case(self.name, f"{lab} s{s}", self.make, p, s, self.layers_hidden, self.steps)
                       for s in self.seeds)
        return out


def _osc_params():
    params, labels = [], []
    for m in (1, 2, 3, 4):
        for kind in ("cos", "sin"):
            params.append((m * PI, kind))
            labels.append(f"w={m}pi {kind}")
    return tuple(params), tuple(labels)


def _heat(kappa):
    return pc.problems.heat1d(kappa=kappa, n_collocation=200, n_ic=32, n_bc=32, seed=0)


def _poisson(a):
    return pc.problems.poisson1d(a=a, n_collocation=64)


def _helmholtz(a1, a2):
    return pc.problems.helmholtz2d(a1=a1, a2=a2, n_collocation=200, n_bc=64, seed=0)


def _burgers(nu):
    return pc.problems.burgers(nu=nu, n_collocation=200, n_ic=32, n_bc=32, seed=0)


_OSC = _osc_params()
FAMILIES = {
    "oscillator": Family("oscillator", oscillator, _OSC[0], _OSC[1]),
    "heat": Family("heat", _heat, ((0.05,), (0.2,), (0.5,), (1.0,)),
                   ("k=0.05", "k=0.2", "k=0.5", "k=1"), seeds=(0, 1), steps=1500, layers_hidden=(32, 32, 32)),
    "advdiff": Family("advdiff", advection_diffusion, ((1.0, 0.01), (1.0, 0.05), (2.0, 0.02), (0.5, 0.1)),
                      ("c=1 k=0.01", "c=1 k=0.05", "c=2 k=0.02", "c=0.5 k=0.1"), seeds=(0, 1), steps=1500, layers_hidden=(32, 32, 32)),
    "poisson": Family("poisson", _poisson, ((1,), (2,), (3,), (4,)), ("a=1", "a=2", "a=3", "a=4"),
                      seeds=(0, 1, 2), steps=3000),
    "helmholtz": Family("helmholtz", _helmholtz, ((1, 1), (1, 2), (2, 2)), ("a=1,1", "a=1,2", "a=2,2"),
                        seeds=(0, 1), steps=1500, layers_hidden=(32, 32, 32)),
    "burgers": Family("burgers", _burgers, ((0.1 / PI,), (0.05 / PI,), (0.03 / PI,)),
                      ("nu=0.1/pi", "nu=0.05/pi", "nu=0.03/pi"), seeds=(0, 1), steps=1500, layers_hidden=(32, 32, 32)),
}
