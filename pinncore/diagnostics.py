"""Loss-balance diagnostics: per-term gradient norms, NTK traces, their ratios, a verdict.

The loss-balance crisis (Wang, Teng & Perdikaris 2021): when ‖λ_a ∇θL_a‖ ≫ ‖λ_b ∇θL_b‖,
gradient descent reduces L_a only. ``diagnose`` measures it at the current parameters and
``LossBalanceWarning`` is issued by the trainer when the largest/smallest ratio of
λ-scaled gradient norms exceeds ``THRESHOLD`` (1e2).

Size is half the story. Two terms can also disagree in DIRECTION: the cosine
cos∠(∇L_a, ∇L_b) < 0 means that a step which reduces one term increases the other (the
"conflicting gradients" of Yu et al. 2020, "Gradient surgery for multi-task learning",
NeurIPS; for PINNs e.g. Wang, Teng & Perdikaris 2021, §2.3). ``conflict_stats`` computes, from
the per-term gradients a training step already has, the pairwise cosines, the share of the
weighted gradient g = Σ_a λ_a ∇L_a that each term contributes (⟨λ_a ∇L_a, g⟩ / ‖g‖², the
shares sum to 1; a negative share means the term pulls against the step) and the λ-scaled
norm ratio. The course's rule is applied at every logged row, not only at step 0 ("log per-term
gradient norms from the first epoch, every 100 steps; a pair differing by more than 1e2 is a
crisis"; "the magnitudes shift as training progresses"): ``CrisisMonitor`` marks episodes (a
``crisis`` column: the episode number while one lasts, 0 otherwise) and warns once when an
episode starts.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["LossBalanceWarning", "Diagnosis", "diagnose", "balance_ratio", "THRESHOLD", "conflict_stats",
           "direction_words", "CrisisMonitor", "cos_column"]

THRESHOLD = 1e2


class LossBalanceWarning(UserWarning):
    """λ-scaled per-term gradient norms differ by more than 1e2: training will favour one term."""


def balance_ratio(scaled_norms):
    """(ratio, largest term, smallest term) of a dict of λ-scaled gradient norms.

    >>> balance_ratio({"pde": 500.0, "ic": 5.0})
    (100.0, 'pde', 'ic')
    """
    items = [(k, float(v)) for k, v in scaled_norms.items()]
    hi = max(items, key=lambda kv: kv[1])
    lo = min(items, key=lambda kv: kv[1])
    ratio = np.inf if lo[1] == 0 and hi[1] > 0 else (1.0 if hi[1] == 0 else hi[1] / lo[1])
    return float(ratio), hi[0], lo[0]


def cos_column(a, b):
    """History column name of the gradient cosine between terms ``a`` and ``b``.

    >>> cos_column("pde", "ic")
    'cos(pde,ic)'
    """
    return f"cos({a},{b})"


def conflict_stats(names, grads, weights, norms=None):
    """Direction and share statistics of the per-term gradients at one step.

    names : term names (T); grads : (T, P) array or list of per-term gradients ∇θ L_a (as the
    kernel returns them); weights : (T,) λ_a; norms : optional (T,) ‖∇θ L_a‖₂ (reused when the
    caller already has them). Returns a flat dict of history columns:

    ``cos(a,b)`` for every pair a < b: ⟨∇L_a, ∇L_b⟩ / (‖∇L_a‖ ‖∇L_b‖) (NaN if a gradient is 0);
    ``<a>_grad_share``: ⟨λ_a ∇L_a, g⟩ / ‖g‖² with g = Σ_b λ_b ∇L_b (sums to 1 over terms);
    ``grad_ratio``: largest / smallest λ_a ‖∇L_a‖ (the crisis statistic, ``balance_ratio``).

    Cost: one T×T Gram matrix of the gradients (T dot products of length P per term), i.e.
    about the cost of the gradient norms the row already computes.

    >>> g = np.array([[1.0, 0.0], [-1.0, 1.0]])
    >>> st = conflict_stats(["pde", "ic"], g, [1.0, 1.0])
    >>> round(st["cos(pde,ic)"], 4), st["pde_grad_share"], st["ic_grad_share"]
    (-0.7071, 0.0, 1.0)
    """
    G = np.asarray(grads, dtype=np.float64).reshape(len(names), -1)
    lam = np.asarray(weights, dtype=np.float64)
    gram = G @ G.T
    nrm = np.sqrt(np.maximum(np.diag(gram), 0.0)) if norms is None else np.asarray(norms, dtype=np.float64)
    out = {}
    T = len(names)
    with np.errstate(all="ignore"):
        for a in range(T):
            for b in range(a + 1, T):
                den = nrm[a] * nrm[b]
                out[cos_column(names[a], names[b])] = float(gram[a, b] / den) if den > 0 else float("nan")
        # ⟨λ_a g_a, Σ_b λ_b g_b⟩ = λ_a (gram λ)_a ; ‖g‖² = λᵀ gram λ
        contrib = lam * (gram @ lam)
        total = float(lam @ gram @ lam)
    for a, k in enumerate(names):
        out[f"{k}_grad_share"] = float(contrib[a] / total) if total > 0 else float("nan")
    out["grad_ratio"] = balance_ratio(dict(zip(names, lam * nrm)))[0]
    return out


def direction_words(cos):
    """Plain words for the cosine between two term gradients.

    >>> direction_words(-0.6)
    'point in opposing directions (cos = -0.6): a step that reduces one increases the other'
    >>> direction_words(0.9)
    'agree in direction (cos = 0.9)'
    """
    if not np.isfinite(cos):
        return "have no direction to compare (a gradient is zero)"
    if cos < -0.1:
        return f"point in opposing directions (cos = {cos:.2g}): a step that reduces one increases the other"
    if cos > 0.1:
        return f"agree in direction (cos = {cos:.2g})"
    return f"are nearly orthogonal (cos = {cos:.2g}): a step on one barely moves the other"


class CrisisMonitor:
    """Detects loss-balance crisis EPISODES over the logged rows of a run.

    A row is in crisis when its largest/smallest λ-scaled gradient norm exceeds ``threshold``
    (default ``THRESHOLD`` = 1e2). An episode starts at the first row in crisis after a row
    that was not (or at the first row) and ends at the next balanced row; ``observe`` returns a
    warning message only when an episode starts, so a crisis that appears (or recurs) late in
    training is reported once per episode, not at every row. ``state`` is a plain dict
    ({"episode": int, "active": bool}) saved with a run so that a resumed run continues the
    count.

    >>> m = CrisisMonitor()
    >>> g = np.array([[300.0, 0.0], [1.0, 1.0]])
    >>> msg, col = m.observe(0, ["pde", "ic"], g, [1.0, 1.0])
    >>> col, msg.startswith("loss imbalance at step 0")
    (1, True)
    >>> m.observe(100, ["pde", "ic"], g, [1.0, 1.0])[1], m.observe(200, ["pde", "ic"], g, [1.0, 300.0])
    (1, (None, 0))
    """

    def __init__(self, threshold=THRESHOLD, state=None):
        self.threshold = float(threshold)
        self.state = {"episode": 0, "active": False} if state is None else \
            {"episode": int(state["episode"]), "active": bool(state["active"])}

    @classmethod
    def from_history(cls, history, threshold=THRESHOLD):
        """A monitor that continues the episodes recorded in a history's ``crisis`` column
        (a resumed run neither re-warns an ongoing episode nor restarts the count)."""
        col = [v for v in (history.columns.get("crisis") or []) if v is not None]
        return cls(threshold, {"episode": int(max(col, default=0)), "active": bool(col and col[-1] > 0)})

    def observe(self, step, names, grads, weights, stats=None, norms=None, advice=None):
        """(message or None, crisis column value) for one row; ``stats`` from
        ``conflict_stats`` is reused when given."""
        st = conflict_stats(names, grads, weights, norms) if stats is None else stats
        if not st["grad_ratio"] > self.threshold:
            self.state["active"] = False
            return None, 0
        if self.state["active"]:
            return None, self.state["episode"]
        self.state["active"] = True
        self.state["episode"] += 1
        return self.message(step, names, grads, weights, st, norms, advice), self.state["episode"]

    def message(self, step, names, grads, weights, stats, norms=None, advice=None):
        """The warning text: which term dominates, by how much, whether the two terms also
        disagree in direction, and ``advice`` (default: pc.diagnose / the default scheme)."""
        G = np.asarray(grads, dtype=np.float64).reshape(len(names), -1)
        nrm = np.linalg.norm(G, axis=1) if norms is None else np.asarray(norms, dtype=np.float64)
        ratio, hi, lo = balance_ratio(dict(zip(names, np.asarray(weights, dtype=np.float64) * nrm)))
        a, b = sorted((names.index(hi), names.index(lo)))
        cos = stats.get(cos_column(names[a], names[b]), float("nan"))
        return (f"loss imbalance at step {step}: λ·‖∇L‖ of '{hi}' is {ratio:.3g}x that of '{lo}' "
                f"(> {self.threshold:g}); training will neglect '{lo}'. In direction the two gradients "
                f"{direction_words(cos)}. "
                + (advice or "See pc.diagnose() or use an adaptive weighting (pc.weighting.default())") + ".")


@dataclass
class Diagnosis:
    """Per-term numbers at one parameter vector and what they mean."""

    losses: dict
    grad_norms: dict
    ntk_traces: dict
    weights: dict
    grad_ratio: float
    ntk_ratio: float
    dominant: str
    starved: str
    verdict: str
    advice: str
    suggested_weights: dict = field(default_factory=dict)
    cosines: dict = field(default_factory=dict)
    grad_shares: dict = field(default_factory=dict)
    scheme_ratios: dict = field(default_factory=dict)
    n_points: dict = field(default_factory=dict)

    def __str__(self):
        lines = [f"{'term':<10}{'loss':>12}{'weight':>10}{'|grad L|':>12}{'share':>8}{'tr K':>12}{'tr K / N':>12}"]
        for k in self.losses:
            n = self.n_points.get(k, 0)
            per = self.ntk_traces[k] / n if n else float("nan")
            lines.append(f"{k:<10}{self.losses[k]:>12.3e}{self.weights[k]:>10.3g}{self.grad_norms[k]:>12.3e}"
                         f"{self.grad_shares.get(k, float('nan')):>8.2f}{self.ntk_traces[k]:>12.3e}{per:>12.3e}")
        lines.append(f"largest/smallest weighted gradient norm: {self.grad_ratio:.3g} ({self.dominant} / {self.starved})")
        for label, value in self.scheme_ratios.items():
            lines.append(f"largest/smallest {label}: {value:.3g}")
        for pair, c in self.cosines.items():
            lines.append(f"direction {pair}: the gradients {direction_words(c)}")
        lines.append(f"verdict: {self.verdict}")
        lines.append(f"advice: {self.advice}")
        return "\n".join(lines)


def diagnose(problem, net, weights=None):
    """Per-term gradient norms and NTK traces of ``problem`` at ``net``'s parameters.

    weights: optional {term: λ} (default 1). Returns a ``Diagnosis`` whose ``verdict`` says
    in plain words whether the terms are balanced and ``suggested_weights`` gives starting
    weights that equalise the gradient norms against the largest term.

    >>> import pinncore as pc
    >>> d = pc.diagnose(pc.problems.harmonic(), pc.MLP([1, 50, 50, 50, 1], seed=0))
    >>> d.grad_ratio > 10 and d.dominant == "pde"
    True
    """
    weights = {k: 1.0 for k in problem.term_names} | dict(weights or {})
    unknown = set(weights) - set(problem.term_names)
    if unknown:
        raise ValueError(f"weights name unknown terms {sorted(unknown)}; terms are {problem.term_names}")
    names = problem.term_names
    L, G, _ = problem.value_and_grad(net)
    losses = dict(zip(names, map(float, L)))
    G = np.asarray(G, dtype=np.float64)
    norms = {k: float(np.linalg.norm(G[a])) for a, k in enumerate(names)}
    traces = problem.ntk_traces(net)
    n_points = {k: int(v) for k, v in problem.n_points.items()}
    lam = np.array([float(weights[k]) for k in names])
    stats = conflict_stats(names, G, lam, norms=[norms[k] for k in names])
    scaled = {k: weights[k] * norms[k] for k in norms}
    ratio, dom, starved = balance_ratio(scaled)
    # The ratios of the statistics the schemes balance: pc.NTK uses tr K_a / N_a (mean-loss
    # normalisation), GradNorm max|∇L_ref| / mean|∇L_a| over weight matrices.
    per_point = {k: traces[k] / n_points[k] for k in names if n_points[k] > 0}
    tr_ratio = balance_ratio(per_point)[0] if per_point else float("nan")
    scheme_ratios = {"tr K / N (what pc.NTK balances)": tr_ratio,
                     "mean|∇L| over weight matrices (what pc.GradNorm balances)": _gradnorm_ratio(G, net, names)}
    ref = max(scaled.values())
    suggested = {k: (float(ref / norms[k]) if norms[k] > 0 else 1.0) for k in norms}
    a, b = sorted((names.index(dom), names.index(starved)))
    cos = stats.get(cos_column(names[a], names[b]), float("nan")) if a != b else float("nan")
    direction = f"; in direction the two gradients {direction_words(cos)}" if a != b else ""
    if ratio > THRESHOLD:
        verdict = (f"imbalanced: the '{dom}' term's gradient is {ratio:.3g}x the '{starved}' term's; "
                   f"gradient descent will reduce '{dom}' and neglect '{starved}'{direction}")
        advice = ("start from weights " + ", ".join(f"{k}={v:.3g}" for k, v in suggested.items())
                  + " (equal gradient norms), or use pc.weighting.default() / pc.NTK() to adapt them")
    elif ratio > 10:
        verdict = f"mildly imbalanced (ratio {ratio:.3g}){direction}; training should still make progress on every term"
        advice = "fixed weights are fine; an adaptive scheme (pc.weighting.default()) may speed up convergence"
    else:
        verdict = f"balanced (ratio {ratio:.3g}){direction}"
        advice = "no reweighting needed"
    cosines = {f"{p}/{q}": stats[cos_column(p, q)] for i, p in enumerate(names) for q in names[i + 1:]}
    return Diagnosis(losses=losses, grad_norms=norms, ntk_traces=traces, weights=weights, grad_ratio=ratio,
                     ntk_ratio=tr_ratio, dominant=dom, starved=starved, verdict=verdict, advice=advice,
                     suggested_weights=suggested, cosines=cosines,
                     grad_shares={k: stats[f"{k}_grad_share"] for k in names}, scheme_ratios=scheme_ratios,
                     n_points=n_points)


def _gradnorm_ratio(G, net, names):
    """Largest / smallest per-term mean|∇L_a| over the weight matrices (average of per-layer
    means): the denominators of GradNorm's eq. 40, i.e. the spread of the statistic it balances."""
    from .weighting import weight_blocks, weight_mask

    blocks = weight_blocks(weight_mask(net.layers))
    means = {k: float(np.mean([np.abs(G[a][s:e]).mean() for s, e in blocks])) for a, k in enumerate(names)}
    return balance_ratio(means)[0]
