"""``pc.train``: one call that builds a ``pc.Run``, runs its phases (``pinncore.phases``: Adam,
then optionally L-BFGS and/or Levenberg–Marquardt, or any ``phases=[(optimizer, n), ...]``)
and returns its ``TrainResult`` (docs/design.md §5).

Logs are keyed by term name (``<term>_loss``, ``<term>_weight``, ``<term>_grad_norm``, as in
jaxpi). Training is deterministic: the same seed gives a bitwise identical history, and a
saved state resumes exactly (k + k steps == 2k steps). It stops cleanly on the first
non-finite loss or gradient (naming the step and term, keeping the last finite parameters),
on Ctrl-C (at the end of the current step, history intact) and when ``callback`` returns True.
"""
from __future__ import annotations

from . import phases as _phases
from .history import History
from .observers import Callback, Checkpoint, StopAtTolerance
from .run import Run, TrainResult, check_int
from .state import check_state, load_state

__all__ = ["train", "TrainResult", "History", "load_state", "check_state", "ProblemNameError"]


class ProblemNameError(ValueError, TypeError):
    """``problem`` names no library problem: a bad value (ValueError) and, as before library
    names were accepted, not a pc.Problem (TypeError)."""


def _library_problem(name):
    from . import problems  # noqa: PLC0415 - the library, by name
    try:
        return problems.get(name)
    except ValueError as e:
        raise ProblemNameError(f"problem must be a pc.Problem or a library name: {e}") from None


def train(problem, net=None, *, weighting=None, steps=None, lr=1e-3, optimizer="adam", lbfgs_steps=0, lm_steps=0,
          log_every=100, seed=0, callback=None, verbose=False, warn=True, resume=None, checkpoint=None,
          checkpoint_every=None, tol=None, observers=(), audit=False, phases=None):
    """Train a PINN on ``problem`` and return a ``TrainResult``.

    Parameters
    ----------
    problem : pc.Problem, or a library name ("harmonic"; ``pc.problems.describe()``).
    net : pc.MLP, or None for ``pc.MLP([d, 50, 50, 50, m], seed=seed)``. A copy is trained;
        the trained network is ``result.net``.
    weighting : a scheme (pc.Balanced, pc.Fixed, pc.GradNorm, pc.NTK, pc.SelfAdaptive,
        pc.ReLoBRaLo, or any in ``pinncore.registry.schemes``), its class or name, or None for
        the default (``pc.weighting.default()``, Balanced).
    steps : iterations of the first phase (None: the optimizer's ``default_iterations``: Adam
        2000, L-BFGS 1000, LM 200). lr : Adam learning rate (or ``optimizer=pc.Adam(...)``).
    optimizer : a name in ``pinncore.registry.optimizers`` ("adam", "lbfgs", "lm", ...) or an
        optimizer object (then ``steps`` count its iterations).
    lbfgs_steps, lm_steps : L-BFGS, then Levenberg–Marquardt iterations after the first phase,
        with the weights frozen at their last value.
    phases : the general form of the above: ``[(optimizer, iterations), ...]`` run in order
        (iterations None: the optimizer's default); not combined with steps/lbfgs_steps/lm_steps.
    log_every : history row every this many steps (and at step 0 and at every phase end).
    callback : ``callback(step, row) -> bool`` at every history row; True stops training.
    verbose : print one line per history row. warn : issue ``LossBalanceWarning`` at step 0.
    resume : a path or state dict from ``TrainResult.save``: continue from it (parameters,
        optimizer state, weighting state, step and history; the saved optimizer settings win).
        With ``weighting=None`` the saved scheme is rebuilt with its saved settings.
    checkpoint, checkpoint_every : save the state to ``checkpoint`` every that many steps and at the end.
    tol : stop (status "converged") once the rel-L2 error (or, without an exact solution, the
        total loss) at a history row is at most ``tol``.
    observers : more ``pinncore.observers.Observer`` objects.
    audit : log every other scheme's shadow weights (``pinncore.audit``), when available.

    >>> import pinncore as pc
    >>> r = pc.train(pc.problems.harmonic(), pc.MLP([1, 16, 16, 1]), weighting=pc.Fixed({"ic": 100.0}),
    ...              steps=50, log_every=10, warn=False)
    >>> r.history["pde_loss"].shape, r.status
    ((6,), 'completed')
    """
    if isinstance(problem, str):
        problem = _library_problem(problem)
    if steps is not None:
        check_int("steps", steps, 0)
    schedule = _phases.build(optimizer, steps, check_int("lbfgs_steps", lbfgs_steps, 0),
                             check_int("lm_steps", lm_steps, 0), phases=phases)
    obs = list(observers)
    if callback is not None:
        obs.append(Callback(callback))
    if checkpoint_every is not None:
        checkpoint_every = check_int("checkpoint_every", checkpoint_every, 1)
        if checkpoint is None:
            raise ValueError("checkpoint_every needs checkpoint=<path>")
    ckpt = None
    if checkpoint is not None:
        ckpt = Checkpoint(checkpoint, checkpoint_every)
        obs.append(ckpt)
    if tol is not None:
        obs.append(StopAtTolerance(rel_l2=tol) if problem.exact is not None else StopAtTolerance(loss=tol))
    if audit:
        from .audit import Audit  # noqa: PLC0415 - optional observer
        obs.append(Audit())
    run = Run(problem, net, weighting=weighting, optimizer=schedule[0][0], lr=lr, seed=seed, log_every=log_every,
              warn=warn, verbose=verbose, observers=obs, resume=resume)
    _phases.run(run, schedule)
    result = run.result()
    if ckpt is not None and not ckpt.save(run):   # the state with the closing row; never raises OSError
        result.message = ckpt.annotate(result.message)
    return result
