"""The Loss Weight Tuner as a web page: ``pinncore serve`` (needs ``pip install pinncore[web]``).

The page (``static/``: one HTML file, one script, one style sheet, nothing fetched from
elsewhere) trains library problems live: a λ slider, a weighting scheme, an optimizer, live
log-scale charts of the per-term losses and λ-scaled gradient norms with the step-0 ratio and
the crisis warning (> 1e2), the learned solution against the exact one, the rel-L2 verdict, and
a λ sweep that fills the error-vs-λ curve point by point and shades the Goldilocks zone.

Modules: ``spec`` (request validation and limits; no web dependency), ``worker`` (one fit, in
a worker process), ``jobs`` (worker pool, jobs, events, cancellation), ``app`` (Starlette:
routes, guards, Server-Sent Events), ``server`` (uvicorn). Only ``app`` and ``server`` import
Starlette and uvicorn, and the core package never imports this one.

JSON API
--------
All bodies are JSON (``Content-Type: application/json``, at most 16 KiB). Errors are
``{"error": message, "field": name}`` with status 400 (a bad field, named), 404 (unknown
job), 409 (no solution yet), 413 (body too large), 415 (not JSON), 429 (every worker busy, or
too many streams; ``Retry-After: 1``) or 403 (a foreign ``Host`` — DNS rebinding — or a
foreign ``Origin`` / cross-site request).

``GET /api``
    The catalogue, read from ``pinncore.registry``: problems (inputs, terms, parameters with
    defaults and bounds, whether a hard-constraint variant exists), schemes and their parameters
    (``scheme_info``: label, description), optimizers (every registered one, and "adam+<name>"
    for those that may follow Adam; ``optimizer_info``: labels, default and largest iteration
    counts), limits, verdict thresholds (``pinncore.verdict``).
``GET /api/status``
    ``{"max_fits", "running", "streams", "workers_ready", "jobs"}``.
``POST /api/fits`` → 202 ``{"id", "events", "solution", "cancel", "state", "spec"}``
    Starts a fit. Fields (all optional): ``problem`` ("harmonic"), ``problem_params``
    ({"omega": 6.28, "n_collocation": 50}), ``scheme`` (a registered scheme: "fixed", "balanced",
    "ntk", ..., or "hard" — the problem's hard-constraint variant),
    ``scheme_params``, ``weights`` (fixed λ per term, scheme "fixed" only: {"ic": 100}),
    ``optimizer`` (a catalogue name: "adam", "adam+lbfgs", "lbfgs", "lm", "adam+lm", ...),
    ``steps`` (iterations of the first phase, as in ``pc.train``; default the optimizer's own:
    Adam 2000, LM 200),
    ``second_steps`` (L-BFGS / LM iterations after Adam: 500 / 200), ``lr``
    (1e-3), ``seed`` (0), ``widths`` (hidden layers, [50, 50, 50]), ``log_every``,
    ``grid`` (solution grid: points, or points per axis in 2-D). Unknown fields are refused.
``GET /api/fits/{id}/events``
    Server-Sent Events: ``log`` (a history row: step, phase, wall_time, total_loss and per
    term ``<term>_loss``, ``<term>_grad_norm``, ``<term>_weight``, plus ``rel_l2``), then one
    ``end``: {status ("completed" | "converged" | "cancelled" | "diverged" | "failed"),
    message, step, wall_time, cpu_time (of the worker process during the fit), rel_l2,
    verdict, weights, losses, ratio0 (step-0 max/min of λ_a‖∇L_a‖), ratio0_terms, crisis
    (ratio0 > 1e2)}. Events carry ids; a reconnecting client sends ``Last-Event-ID`` and
    receives the rest. Closing every stream of a running fit cancels it after a short grace
    period; so does never opening one. A server that stops while a stream is open sends
    ``shutdown`` and closes it.
``GET /api/fits/{id}/solution``
    After the end: {inputs, axes {name: [...]}, shape, prediction, exact (flattened, first
    input major), rel_l2, verdict}.
``GET /api/fits/{id}``
    State, summary and the rows so far. ``POST /api/fits/{id}/cancel`` stops it.
``POST /api/sweeps`` → 202
    A λ sweep: the fit fields (scheme "fixed") plus ``term`` (the term whose λ varies),
    ``log10`` {"lo": -3, "hi": 5, "n": 17} or ``lambdas`` [...], ``seeds`` ([0]),
    ``optimizers`` (["adam"], up to two side by side) and ``optimizer_steps`` ({optimizer:
    first-phase iterations}; default ``steps``, 200 for LM alone); ``second_steps`` apply to
    every two-phase optimizer of the sweep. ``GET /api/sweeps/{id}/events`` streams one
    ``point`` per fit ({index, lambda, log10_lambda, lambda_index, seed, optimizer, status,
    rel_l2, verdict, step, wall_time, cpu_time, ratio0, message}) and an ``end`` with, per
    optimizer, the median rel-L2 over seeds at each λ and the Goldilocks range (λ with a
    clean median fit). ``GET /api/sweeps/{id}``, ``POST /api/sweeps/{id}/cancel`` as for fits.

Example (a running server)::

    curl -s -X POST localhost:8765/api/fits -H 'Content-Type: application/json' \\
         -d '{"weights": {"ic": 100}, "steps": 2000}'
    curl -N localhost:8765/api/fits/<id>/events

>>> from pinncore.web import spec
>>> spec.fit_spec({"weights": {"ic": 100}})["steps"]
2000
"""

__all__ = ["create_app", "serve"]


def create_app(**kw):
    """The ASGI application (see :func:`pinncore.web.app.create_app`); imports Starlette."""
    from .app import create_app as _create

    return _create(**kw)


def serve(**kw):
    """Run the server until Ctrl-C (see :func:`pinncore.web.server.serve`); imports uvicorn."""
    from .server import serve as _serve

    return _serve(**kw)
