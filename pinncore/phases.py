"""Training phases: the one place a run's schedule of optimizers is built and run.

A schedule is a list of ``(optimizer, iterations)`` pairs — an optimizer name from
``registry.optimizers`` or an optimizer object — run one after the other on the same network
(``pc.train(problem, net, phases=[("adam", 2000), ("lbfgs", 500)])``). The shorthands of
``pc.train`` (``optimizer=``, ``steps=``, ``lbfgs_steps=``, ``lm_steps=``), the command line,
the web worker and the sweeps all build their schedule with :func:`build` and run it with
:func:`run`, so they share one stopping rule: a later phase starts only when the previous one
"completed" (ran all its iterations, or its optimizer ended it: converged, stalled); a
stopped, cancelled, interrupted, diverged or tolerance-"converged" run does not go on.

An optimizer given without a count runs its own ``default_iterations`` (Adam 2000, L-BFGS
1000, LM 200): ``pc.train(problem, optimizer="lm")`` runs 200 LM iterations, not Adam's 2000.

>>> build("lm")
[('lm', 200)]
>>> build("adam", 1000, lbfgs_steps=50)
[('adam', 1000), ('lbfgs', 50)]
>>> build(phases=[("adam", 10), ("lbfgs", None)])
[('adam', 10), ('lbfgs', 1000)]
"""
from __future__ import annotations

from . import optim, registry

__all__ = ["build", "run", "default_iterations", "follow_iterations", "name_of"]


def _check_count(name, v):
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        import numpy as np
        if isinstance(v, np.integer) and v >= 0:
            return int(v)
        raise ValueError(f"{name} must be an integer >= 0, got {v!r}")
    return v


def _class_of(optimizer):
    if isinstance(optimizer, optim.Optimizer):
        return type(optimizer)
    if isinstance(optimizer, type) and issubclass(optimizer, optim.Optimizer):
        return optimizer
    if isinstance(optimizer, str) and optimizer in registry.optimizers:
        return registry.optimizers[optimizer].factory
    raise ValueError(f"optimizer must be one of {registry.optimizers.names()} or a pc optimizer object, "
                     f"got {optimizer!r}")


def name_of(optimizer):
    """The registry name of an optimizer given by name (canonical spelling) or object (its ``name``).

    >>> name_of("LBFGS"), name_of(optim.Adam())
    ('lbfgs', 'adam')
    """
    if isinstance(optimizer, str):
        _class_of(optimizer)
        return registry.optimizers[optimizer].name
    return _class_of(optimizer).name


def default_iterations(optimizer):
    """Iterations of a phase of ``optimizer`` (name, class or object) when none are given.

    >>> default_iterations("adam"), default_iterations("lbfgs"), default_iterations("lm")
    (2000, 1000, 200)
    """
    return int(_class_of(optimizer).default_iterations)


def follow_iterations(optimizer):
    """Iterations of ``optimizer`` as a later phase (after Adam) when none are given.

    >>> follow_iterations("lbfgs"), follow_iterations("lm")
    (500, 200)
    """
    cls = _class_of(optimizer)
    return int(cls.follow_iterations if cls.follow_iterations is not None else cls.default_iterations)


def _canonical(optimizer):
    return registry.optimizers[optimizer].name if isinstance(optimizer, str) else optimizer


def build(optimizer="adam", steps=None, lbfgs_steps=0, lm_steps=0, phases=None):
    """The schedule ``[(optimizer, iterations), ...]``.

    ``phases`` (a list of ``(optimizer, iterations or None)``) is the general form; otherwise
    the first phase is ``optimizer`` for ``steps`` iterations (None: its default), then
    ``lbfgs_steps`` L-BFGS and ``lm_steps`` LM iterations (phases of 0 iterations are left out,
    except the first). ``optimizer="lbfgs"`` with ``lbfgs_steps`` is one L-BFGS phase.
    """
    if phases is not None:
        if steps is not None or lbfgs_steps or lm_steps:
            raise ValueError("phases= gives the whole schedule: do not combine it with steps, lbfgs_steps or lm_steps")
        if isinstance(phases, (str, bytes)) or not hasattr(phases, "__iter__"):
            raise TypeError(f"phases must be a list of (optimizer, iterations) pairs, got {phases!r}")
        out = []
        for i, item in enumerate(phases):
            if not (isinstance(item, (tuple, list)) and len(item) == 2):
                raise ValueError(f"phases[{i}] must be an (optimizer, iterations) pair, got {item!r}")
            opt, n = item
            _class_of(opt)
            n = default_iterations(opt) if n is None else _check_count(f"phases[{i}] iterations", n)
            out.append((_canonical(opt), n))
        if not out:
            raise ValueError("phases must hold at least one (optimizer, iterations) pair")
        return out
    _class_of(optimizer)
    first = _canonical(optimizer)
    n = default_iterations(first) if steps is None else _check_count("steps", steps)
    lbfgs_steps = _check_count("lbfgs_steps", lbfgs_steps)
    lm_steps = _check_count("lm_steps", lm_steps)
    if first == "lbfgs":
        out = [("lbfgs", n + lbfgs_steps)]
    else:
        out = [(first, n)] + ([("lbfgs", lbfgs_steps)] if lbfgs_steps else [])
    return out + ([("lm", lm_steps)] if lm_steps else [])


def run(run_, schedule):
    """Run ``schedule`` on ``run_`` (a ``pc.Run`` built with the first phase's optimizer) under
    the one stopping rule (module docstring); returns the final status."""
    status = run_.step(schedule[0][1])
    for opt, n in schedule[1:]:
        if status != "completed":
            break
        status = run_.step(n, optimizer=opt)
    return status
