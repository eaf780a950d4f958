"""The trainer: ``pc.train`` — Adam (then optionally L-BFGS) on Σ_a λ_a L_a with a weighting
scheme, logging the loss-balance diagnostics from step 0.

One step: the kernel returns every term's loss and gradient in one call; the weighting
scheme updates its state from them (its (init, update) pair); the fused Adam kernel applies
g = Σ_a λ_a ∇L_a in place. Logs are keyed by term name (``<term>_loss``, ``<term>_weight``,
``<term>_grad_norm``, as in jaxpi). Training is deterministic: the same seed gives a bitwise
identical history, and a saved state resumes exactly (k + k steps == 2k steps).

Stops cleanly: on the first non-finite loss or gradient (naming the step and term, keeping
the last finite parameters), on Ctrl-C (at the end of the current step, history intact) and
when ``callback`` returns True.
"""
from __future__ import annotations

import csv
import io as _pyio
import json
import math
import os
import signal
import threading
import time
import warnings

import numpy as np

from . import io as _io
from . import weighting as _weighting
from .diagnostics import THRESHOLD, LossBalanceWarning, balance_ratio
from .network import MLP
from .optim import Adam, lbfgs
from .problem import Problem

__all__ = ["train", "TrainResult", "History", "load_state", "check_state"]

STATE_KIND = "pinncore.train_state"


class History:
    """Columns of logged values, one row per log step.

    Columns: ``step``, ``phase`` ("adam"/"lbfgs"), ``wall_time``, ``total_loss``, and per term
    ``<term>_loss`` (unweighted L_a), ``<term>_grad_norm`` (‖∇θL_a‖₂), ``<term>_weight`` (λ_a),
    plus ``rel_l2`` when the problem has an exact solution.

    >>> h = History(["pde"]); h.append({"step": 0, "pde_loss": 1.0, "pde_grad_norm": 2.0, "pde_weight": 1.0})
    >>> h["pde_loss"].tolist(), h.loss["pde"].tolist(), h["pde"]["grad_norm"].tolist(), len(h)
    ([1.0], [1.0], [2.0], 1)
    """

    def __init__(self, terms, columns=None):
        self.terms = list(terms)
        self.columns = {k: list(v) for k, v in (columns or {}).items()}

    def append(self, row):
        n = len(self)
        for k in row:
            if k not in self.columns:
                self.columns[k] = [None] * n
        for k, col in self.columns.items():
            col.append(row.get(k))

    def __len__(self):
        return len(self.columns.get("step", []))

    _PER_TERM = ("loss", "grad_norm", "weight")

    def __getitem__(self, key):
        """A column as an array (``h["pde_loss"]``); a quantity for every term as a dict
        (``h["loss"] -> {"pde": array, ...}``); every quantity of one term
        (``h["pde"] -> {"loss": array, "grad_norm": array, "weight": array}``); or a row as a
        dict (``h[-1]``; iterating over a History yields its rows)."""
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            n = len(self)
            if not -n <= key < n:
                raise IndexError(f"history row {key} out of range ({n} rows)")
            return {k: col[key] for k, col in self.columns.items()}
        if key in self._PER_TERM and key not in self.columns:
            return {t: self[f"{t}_{key}"] for t in self.terms}
        if key in self.terms and key not in self.columns:
            return {q: self[f"{key}_{q}"] for q in self._PER_TERM}
        if key not in self.columns:
            raise KeyError(f"no column {key!r}; columns are {list(self.columns)}")
        col = self.columns[key]
        return np.array(col) if key == "phase" else np.array([np.nan if v is None else v for v in col], dtype=np.float64)

    @property
    def loss(self):
        """{term: array of unweighted losses L_a at the logged steps}."""
        return self["loss"]

    @property
    def grad_norm(self):
        """{term: array of ‖∇θ L_a‖₂ at the logged steps}."""
        return self["grad_norm"]

    @property
    def weight(self):
        """{term: array of λ_a at the logged steps}."""
        return self["weight"]

    @property
    def steps(self):
        return self["step"].astype(np.int64)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __contains__(self, key):
        return key in self.columns

    def keys(self):
        return list(self.columns)

    def to_dict(self):
        """{column: list} (plain Python values, JSON-ready)."""
        return {k: list(v) for k, v in self.columns.items()}

    def to_json(self, path=None):
        """JSON text of ``{"terms": [...], "columns": {...}}``; written to ``path`` if given."""
        text = json.dumps({"terms": self.terms, "columns": self.to_dict()}, allow_nan=True)
        if path is not None:
            with open(path, "w") as f:
                f.write(text)
        return text

    def to_csv(self, path=None):
        """CSV text with a header row; written to ``path`` if given."""
        buf = _pyio.StringIO()
        w = csv.writer(buf)
        keys = list(self.columns)
        w.writerow(keys)
        for i in range(len(self)):
            w.writerow(["" if self.columns[k][i] is None else repr(self.columns[k][i]) if isinstance(self.columns[k][i], float)
                        else self.columns[k][i] for k in keys])
        text = buf.getvalue()
        if path is not None:
            with open(path, "w", newline="") as f:
                f.write(text)
        return text

    def __repr__(self):
        return f"History({len(self)} rows, columns={list(self.columns)})"


class TrainResult:
    """What ``train`` returns: the trained ``net``, its ``history``, the final ``rel_l2``
    (None without an exact solution), ``wall_time`` (s), final ``weights``, ``status``
    ("completed" | "interrupted" | "diverged" | "stopped"), a ``message`` and the global ``step``.
    ``save(path)`` writes the full training state (no pickle) for ``train(..., resume=path)``."""

    def __init__(self, net, history, rel_l2, wall_time, weights, status, message, step, state):
        self.net, self.history, self.rel_l2, self.wall_time = net, history, rel_l2, wall_time
        self.weights, self.status, self.message, self.step = weights, status, message, step
        self.state = state

    def save(self, path):
        """Save the training state atomically (pinncore.io format, versioned, checksummed)."""
        _io.save(path, self.state, kind=STATE_KIND)

    def __repr__(self):
        err = "n/a" if self.rel_l2 is None else f"{self.rel_l2:.3e}"
        return f"TrainResult(status={self.status!r}, step={self.step}, rel_l2={err}, wall_time={self.wall_time:.3f}s)"


def load_state(path):
    """Load a training state saved by ``TrainResult.save`` (a dict; pass it or the path to
    ``train(..., resume=...)``).

    >>> import pinncore as pc, tempfile, os
    >>> r = pc.train(pc.problems.harmonic(), pc.MLP([1, 8, 1]), steps=3, weighting=pc.Fixed(), warn=False)
    >>> path = os.path.join(tempfile.mkdtemp(), "state.pcs"); r.save(path)
    >>> pc.load_state(path)["step"]
    3
    """
    return check_state(_io.load(path, kind=STATE_KIND))


def _is_int(v, lo=0):
    return isinstance(v, int) and not isinstance(v, bool) and v >= lo


def check_state(state):
    """Validate a training state (from a file or hand-made) before anything is built from it;
    returns it, or raises ValueError("resume state: ...") naming the bad field."""
    from .network import MAX_PARAMS

    def bad(msg):
        raise ValueError(f"resume state: {msg}")

    if not isinstance(state, dict):
        bad(f"expected a dict (from pc.load_state) or a path, got {type(state).__name__}")
    for key in ("layers", "dtype", "terms", "params", "step", "optimizer", "weighting", "history"):
        if key not in state:
            bad(f"missing field {key!r}")
    layers = state["layers"]
    if not (isinstance(layers, list) and 2 <= len(layers) <= 1000 and all(_is_int(w, 1) for w in layers)):
        bad(f"layers must be a list of positive ints, got {layers!r}")
    n = sum(a * b + b for a, b in zip(layers[:-1], layers[1:]))
    if n <= MAX_PARAMS and ("arch" in state or "embedding" in state):  # pinncore.embedding's layout
        from .embedding import NetSpec, embedding_from_config
        try:
            n = NetSpec(layers, arch=state.get("arch", "plain"), embedding=embedding_from_config(state.get("embedding"))).n_params
        except (TypeError, ValueError) as e:
            bad(f"network: {e}")
    if n > MAX_PARAMS:
        bad(f"layers {layers} describe {n:.3g} parameters (at most {MAX_PARAMS:.0e})")
    if not isinstance(state["dtype"], str) or state["dtype"] not in ("float64", "float32"):
        bad(f"dtype must be 'float64' or 'float32', got {state['dtype']!r}")
    dt = np.dtype(state["dtype"])
    if not (isinstance(state["terms"], list) and all(isinstance(t, str) for t in state["terms"])):
        bad("terms must be a list of term names")
    if not _is_int(state["step"]):
        bad(f"step must be an int >= 0, got {state['step']!r}")
    if not _is_int(state.get("seed", 0)):
        bad(f"seed must be an int >= 0, got {state.get('seed')!r}")

    def vec(v, what, nonneg=False):
        if not (isinstance(v, np.ndarray) and v.dtype == dt and v.shape == (n,)):
            bad(f"{what} must be a {dt} array of shape ({n},)")
        if not np.isfinite(v).all() or (nonneg and (v < 0).any()):
            bad(f"{what} must be finite" + (" and >= 0" if nonneg else ""))

    vec(state["params"], "params")
    opt = state["optimizer"]
    if not (isinstance(opt, dict) and isinstance(opt.get("config"), dict) and _is_int(opt.get("step"))):
        bad("optimizer must hold 'config', 'm', 'v' and an int 'step'")
    vec(opt.get("m"), "optimizer m")
    vec(opt.get("v"), "optimizer v", nonneg=True)
    try:
        Adam(**opt["config"])
    except (TypeError, ValueError) as e:
        bad(f"optimizer config: {e}")
    w = state["weighting"]
    if not (isinstance(w, dict) and isinstance(w.get("name"), str) and isinstance(w.get("state"), dict)
            and isinstance(w.get("config", {}), dict)):
        bad("weighting must hold a scheme 'name', its 'config' dict and its 'state' dict")
    h = state["history"]
    if not (isinstance(h, dict) and all(isinstance(c, list) for c in h.values())):
        bad("history must be a dict of column lists")
    if len({len(c) for c in h.values()}) > 1:
        bad("history columns have different lengths")
    if h and ("step" not in h or not all(_is_int(v) for v in h["step"])):
        bad("history needs a 'step' column of ints")
    return state


def _check_writable(path):
    """Fail before training, not after it, when the checkpoint cannot be written."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"checkpoint must be a file path, got {type(path).__name__}")
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise ValueError(f"checkpoint {os.fspath(path)!r}: the folder {folder!r} does not exist or is not writable")
    if os.path.isdir(path):
        raise ValueError(f"checkpoint {os.fspath(path)!r} is a directory, expected a file path")


def _check_int(name, v, lo):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    return int(v)


def _resolve_weighting(weighting):
    if weighting is None:
        return _weighting.default()
    if isinstance(weighting, str):
        return _weighting.get(weighting)
    if not isinstance(weighting, _weighting.Weighting):
        raise TypeError(f"weighting must be a pc weighting scheme (pc.Fixed, pc.NTK, ...) or its name, "
                        f"got {type(weighting).__name__}")
    return weighting


class _Interrupt:
    """Turn Ctrl-C into a flag checked at the end of each step (main thread only)."""

    def __init__(self):
        self.flag = False
        self._old = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            try:
                self._old = signal.signal(signal.SIGINT, self._handler)
            except (ValueError, OSError):
                self._old = None
        return self

    def _handler(self, signum, frame):
        self.flag = True

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        return False


def train(problem, net=None, *, weighting=None, steps=2000, lr=1e-3, optimizer="adam", lbfgs_steps=0,
          log_every=100, seed=0, callback=None, verbose=False, warn=True, resume=None, checkpoint=None,
          checkpoint_every=None):
    """Train a PINN on ``problem`` and return a ``TrainResult``.

    Parameters
    ----------
    problem : pc.Problem.
    net : pc.MLP, or None for ``pc.MLP([d, 50, 50, 50, m], seed=seed)``. A copy is trained;
        the trained network is ``result.net``.
    weighting : a scheme (pc.Fixed, pc.GradNorm, pc.NTK, pc.SelfAdaptive, pc.ReLoBRaLo), its
        name, or None for the default (``pc.weighting.default()``).
    steps : Adam steps in this call. lr : Adam learning rate (or pass ``optimizer=pc.Adam(...)``).
    optimizer : "adam", a ``pc.Adam`` instance, or "lbfgs" (then ``steps`` are L-BFGS iterations).
    lbfgs_steps : L-BFGS iterations after Adam, with the weights frozen at their last value.
    log_every : history row every this many steps (and at step 0 and at the end).
    callback : ``callback(step, result_so_far_row) -> bool``; True stops training.
    verbose : print one line per log step. warn : issue ``LossBalanceWarning`` at step 0.
    resume : a path or state dict from ``TrainResult.save``: continue from it (parameters,
        optimizer moments, weighting state, step and history; the saved optimizer settings win).
        With ``weighting=None`` the saved scheme is rebuilt with its saved settings.
    checkpoint, checkpoint_every : save the state to ``checkpoint`` every that many steps.

    >>> import pinncore as pc
    >>> r = pc.train(pc.problems.harmonic(), pc.MLP([1, 16, 16, 1]), weighting=pc.Fixed({"ic": 100.0}),
    ...              steps=50, log_every=10, warn=False)
    >>> r.history["pde_loss"].shape, r.status
    ((6,), 'completed')
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a pc.Problem, got {type(problem).__name__}")
    steps = _check_int("steps", steps, 0)
    lbfgs_steps = _check_int("lbfgs_steps", lbfgs_steps, 0)
    log_every = _check_int("log_every", log_every, 1)
    seed = _check_int("seed", seed, 0)
    if checkpoint_every is not None:
        checkpoint_every = _check_int("checkpoint_every", checkpoint_every, 1)
        if checkpoint is None:
            raise ValueError("checkpoint_every needs checkpoint=<path>")
    if callback is not None and not callable(callback):
        raise TypeError("callback must be callable callback(step, row) -> bool")
    if isinstance(optimizer, Adam):
        adam = optimizer
    elif optimizer in ("adam", "lbfgs"):
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
            raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
        adam = Adam(lr=lr)
    else:
        raise ValueError(f"optimizer must be 'adam', 'lbfgs' or a pc.Adam, got {optimizer!r}")
    if optimizer == "lbfgs":
        steps, lbfgs_steps = 0, steps + lbfgs_steps
    scheme = _resolve_weighting(weighting)

    if checkpoint is not None:
        _check_writable(checkpoint)
    state = None
    if resume is not None:
        if isinstance(resume, dict):
            state = check_state(resume)
        elif isinstance(resume, (str, bytes, os.PathLike)):
            state = load_state(resume)
        else:
            raise TypeError(f"resume must be a path or a state dict from pc.load_state, got {type(resume).__name__}")
        if net is None:
            net = MLP.from_spec_state(state, state["layers"], int(state.get("seed", 0)), np.dtype(state["dtype"]),
                                      state.get("backend", "cpp"), source="resume state")
        if (list(net.layers) != list(state["layers"]) or net.dtype != np.dtype(state["dtype"])
                or net.spec.config() != {"arch": state.get("arch", "plain"), "embedding": state.get("embedding")}):
            raise ValueError(f"resume state is for layers {state['layers']} ({state['dtype']}), "
                             f"net is {net.layers} ({net.dtype})")
        if list(state["terms"]) != problem.term_names:
            raise ValueError(f"resume state has terms {state['terms']}, the problem has {problem.term_names}")
        if weighting is None:  # rebuild the saved scheme with its saved settings
            try:
                scheme = _weighting.get(state["weighting"]["name"], **state["weighting"].get("config", {}))
            except (TypeError, ValueError) as e:
                raise ValueError(f"resume state: cannot rebuild the weighting scheme ({e})") from e
        elif type(scheme).__name__ != state["weighting"]["name"]:
            raise ValueError(f"resume state used weighting {state['weighting']['name']}, got {type(scheme).__name__}")
        if not isinstance(optimizer, Adam):
            adam = Adam(**state["optimizer"]["config"])
    if net is None:
        net = MLP([len(problem.inputs), 50, 50, 50, len(problem.outputs)], seed=seed)
    if not isinstance(net, MLP):
        raise TypeError(f"net must be a pc.MLP, got {type(net).__name__}")
    problem._check_net(net)
    net = net.copy()
    names = problem.term_names
    T = len(names)

    if state is not None:
        opt_state, w_state, step0, history = _restore(state, problem, net, scheme, log_every)
    else:
        opt_state = adam.init(net.params)
        w_state = scheme.init(problem)
        step0 = 0
        history = History(names)

    params = net.params
    mask = _weighting.weight_mask(net)
    needs_res = bool(getattr(scheme, "needs_residuals", False))
    has_exact = problem.exact is not None
    t_start = time.perf_counter()
    wall0 = history["wall_time"][-1] if len(history) else 0.0
    prev = params.copy()
    status, message = "completed", ""
    step = step0

    def weights_now(ws):
        w = scheme.weights(ws)
        return np.array([float(w[k]) for k in names])

    def point_weights_now(ws):
        pw = scheme.point_weights(ws)
        if pw is None:
            return None
        return [None if pw.get(k) is None else np.ascontiguousarray(pw[k], dtype=net.dtype) for k in names]

    def unweighted(L, R):  # with per-point weights the kernel's L is weighted; R gives L_a itself
        return L if R is None else _weighting.unweighted_losses(R)

    def log(step, L, G, lam, phase, R=None):
        Lu = unweighted(L, R)
        row = {"step": step, "phase": phase, "wall_time": wall0 + time.perf_counter() - t_start,
               "total_loss": float(np.dot(lam, L))}
        rw = scheme.reported_weights(w_state) if hasattr(scheme, "reported_weights") else None
        for a, k in enumerate(names):
            row[f"{k}_loss"] = float(Lu[a])
            row[f"{k}_grad_norm"] = float(np.linalg.norm(G[a].astype(np.float64)))
            row[f"{k}_weight"] = float(rw[k]) if rw is not None else float(lam[a])
        if has_exact:
            row["rel_l2"] = problem.rel_l2(net)
        history.append(row)
        if verbose:
            terms = "  ".join(f"{k}={row[f'{k}_loss']:.3e}(λ={row[f'{k}_weight']:.3g})" for k in names)
            err = f"  rel_l2={row['rel_l2']:.3e}" if has_exact else ""
            print(f"[{phase} {step:>6}] loss={row['total_loss']:.4e}  {terms}{err}  t={row['wall_time']:.2f}s", flush=True)
        return row

    def save_state(path):
        _io.save(path, snapshot(), kind=STATE_KIND)

    def snapshot():
        return {"layers": list(net.layers), "dtype": net.dtype.name, "seed": net.seed, "backend": net.backend_name,
                **net.spec_state(), "terms": list(names), "params": params.copy(), "step": step,
                "optimizer": {"name": "adam", "config": adam.config(), "m": opt_state["m"].copy(),
                              "v": opt_state["v"].copy(), "step": int(opt_state["step"])},
                "weighting": {"name": type(scheme).__name__, "config": scheme.config(), "state": w_state},
                "history": history.to_dict()}

    evaluate = problem._step_function(net)
    pw = pw_next = point_weights_now(w_state)
    lam = weights_now(w_state)
    L = G = R = None
    # Overflow and invalid operations are expected when a run diverges; the loop detects the
    # first non-finite loss or gradient itself and stops, so NumPy must not warn (or raise).
    with _Interrupt() as intr, np.errstate(all="ignore"):
        try:
            for _ in range(steps):
                L, G, R = evaluate(pw, needs_res)
                # One reduction detects a NaN/inf anywhere; only then find the culprit terms.
                if not math.isfinite(float(L.sum()) + float(G.sum())):
                    bad = [names[a] for a in range(T) if not (math.isfinite(L[a]) and np.isfinite(G[a]).all())]
                else:
                    bad = None
                if bad:
                    status = "diverged"
                    message = f"non-finite loss or gradient at step {step} in term(s) {', '.join(map(repr, bad))}; " \
                              f"returned the parameters of step {max(step - 1, 0)}"
                    params[...] = prev
                    break
                ctx = _weighting.Context(
                    losses=dict(zip(names, unweighted(L, R).tolist())), grads=dict(zip(names, G)), weight_mask=mask,
                    residuals=None if R is None else dict(zip(names, R)), ntk_traces=lambda: problem.ntk_traces(net),
                    lr=adam.learning_rate(opt_state["step"]))
                new_state = scheme.update(w_state, step, ctx)
                if new_state is not w_state:  # a scheme returns its state as is when nothing changed
                    w_state = new_state
                    lam = weights_now(w_state)
                    pw_next = point_weights_now(w_state)
                if not math.isfinite(float(np.dot(lam, L))):  # finite terms, overflowing weighted sum
                    worst = names[int(np.argmax(np.abs(lam * L)))]
                    status = "diverged"
                    message = f"the weighted loss overflows at step {step} (largest term {worst!r}); " \
                              f"returned the parameters of step {max(step - 1, 0)}"
                    params[...] = prev
                    break
                if step % log_every == 0 or (step == step0 and not len(history)):
                    row = log(step, L, G, lam, "adam", R)
                    if step == 0 and warn:
                        ratio, hi, lo = balance_ratio({k: lam[a] * row[f"{k}_grad_norm"] for a, k in enumerate(names)})
                        if ratio > THRESHOLD:
                            warnings.warn(f"loss imbalance at step 0: λ·‖∇L‖ of '{hi}' is {ratio:.3g}x that of '{lo}' "
                                          f"(> {THRESHOLD:g}); training will neglect '{lo}'. See pc.diagnose() or use "
                                          f"an adaptive weighting such as pc.NTK().", LossBalanceWarning, stacklevel=2)
                    if callback is not None and callback(step, row):
                        status, message = "stopped", f"stopped by callback at step {step}"
                        break
                np.copyto(prev, params)
                adam.update(params, G, lam, opt_state)
                pw = pw_next
                step += 1
                if checkpoint_every and (step - step0) % checkpoint_every == 0:
                    save_state(checkpoint)
                if intr.flag:
                    status, message = "interrupted", f"interrupted by Ctrl-C after step {step}"
                    break
            if status == "completed" and lbfgs_steps > 0:
                status, message, step = _lbfgs_stage(problem, net, evaluate, lam, pw, lbfgs_steps, log_every, step,
                                                     log, intr, callback)
        except KeyboardInterrupt:
            status, message = "interrupted", f"interrupted at step {step}"
        # Final row: the state the result holds.
        L, G, R = evaluate(pw, needs_res)
        if all(math.isfinite(v) for v in L) and np.isfinite(G).all():
            if not len(history) or history.columns["step"][-1] != step:
                log(step, L, G, lam, "lbfgs" if lbfgs_steps and status != "diverged" and step > step0 + steps else "adam", R)
    if checkpoint is not None:
        save_state(checkpoint)
    rel = problem.rel_l2(net) if has_exact else None
    final_w = dict(zip(names, map(float, lam)))
    if hasattr(scheme, "reported_weights"):
        final_w = {k: float(v) for k, v in scheme.reported_weights(w_state).items()}
    if verbose and message:
        print(message, flush=True)
    return TrainResult(net=net, history=history, rel_l2=rel, wall_time=time.perf_counter() - t_start,
                       weights=final_w, status=status, message=message, step=step, state=snapshot())


def _restore(state, problem, net, scheme, log_every):
    """Load a checked state into ``net``: returns (optimizer state, weighting state, step, history)."""
    names = problem.term_names
    net.params[...] = state["params"]
    opt_state = {"m": np.asarray(state["optimizer"]["m"], dtype=net.dtype).copy(),
                 "v": np.asarray(state["optimizer"]["v"], dtype=net.dtype).copy(),
                 "step": int(state["optimizer"]["step"])}
    w_state = state["weighting"]["state"]
    try:  # a hand-made weighting state must at least produce valid weights
        lam0 = scheme.weights(w_state)
        pw0 = scheme.point_weights(w_state)
        if set(lam0) != set(names) or not all(math.isfinite(float(v)) and float(v) >= 0 for v in lam0.values()):
            raise ValueError("weights must be finite, >= 0 and name every term")
        if pw0 is not None:
            problem._check_point_weights([pw0.get(k) for k in names], problem._data(net.dtype), net.dtype)
    except Exception as e:  # noqa: BLE001 - any failure here is a malformed file
        raise ValueError(f"resume state: the {state['weighting']['name']} weighting state is invalid ({e})") from e
    step0 = int(state["step"])
    history = History(names, state["history"])
    # The saved run's closing row (at a step that is not a log step) belongs to that run's
    # end, not to the continued run: drop it so k + k steps log exactly like 2k steps.
    if len(history) and history.columns["step"][-1] == step0 and step0 % log_every != 0:
        for col in history.columns.values():
            col.pop()
    return opt_state, w_state, step0, history


def _lbfgs_stage(problem, net, evaluate, lam, pw, iters, log_every, step, log, intr, callback):
    """L-BFGS on the frozen objective Σ λ_a L_a (float64 in SciPy, the net's dtype in the kernel)."""
    params = net.params
    last = {}

    def fun(x):
        params[...] = x.astype(net.dtype)
        L, G, _ = evaluate(pw, False)
        last.update(L=L, G=G)
        return float(np.dot(lam, L)), (lam @ G.astype(np.float64))

    stopped = {"by": None}

    def cb(it, xk):
        if it % log_every == 0:
            params[...] = xk.astype(net.dtype)
            L, G, R = evaluate(pw, False)
            row = log(step + it, L, G, lam, "lbfgs", None)
            if callback is not None and callback(step + it, row):
                stopped["by"] = "callback"
        if intr.flag:
            stopped["by"] = "ctrl-c"
        return stopped["by"] is not None

    x0 = params.astype(np.float64)
    xbest, fbest, n, msg = lbfgs(fun, x0, iters, cb)
    params[...] = xbest.astype(net.dtype)
    if stopped["by"] == "ctrl-c":
        return "interrupted", f"interrupted by Ctrl-C during L-BFGS at step {step + n}", step + n
    if stopped["by"] == "callback":
        return "stopped", f"stopped by callback during L-BFGS at step {step + n}", step + n
    return "completed", ("" if "non-finite" not in msg else f"L-BFGS {msg}"), step + n
