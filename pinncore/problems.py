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

The problems live by family: problems_classic (the papers' benchmarks on boxes),
problems_domains (non-rectangular domains, systems), problems_reference (the Cole–Hopf and L-shape
reference solutions) and problems_common (what they share: registration, argument checks);
``pinncore.problems.X`` reaches every one of them.

Use :func:`get` to build a problem by name, :data:`REGISTRY` for the name -> constructor
map and :func:`describe` for a ``(name, one-line description)`` listing.
"""

from __future__ import annotations

import collections.abc

from . import registry
from .problems_common import PI, check_arguments, with_origin  # noqa: F401 - PI, check_arguments: pinncore.problems names
from .problems_reference import burgers_reference, poisson_lshape_reference
# Import order is registration order (describe() lists the box problems first, then the domains).
from .problems_classic import (advection, advection_exact, burgers, burgers_exact, harmonic, harmonic_exact, heat1d,
                               heat1d_exact, helmholtz2d, helmholtz2d_exact, helmholtz2d_source, klein_gordon,
                               klein_gordon_exact, klein_gordon_source, poisson1d, poisson1d_exact, poisson1d_source,
                               wave1d, wave1d_exact, wave1d_initial)
from .problems_domains import (heat_disk, heat_disk_exact, kovasznay, kovasznay_exact, poisson_holes,
                               poisson_holes_exact, poisson_holes_geometry, poisson_lshape)

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
        registry.problems.add(name, with_origin(name, ctor))

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
