"""A sweep's results: the records table (``SweepResult``: filters, JSON/CSV/pandas) and its
Goldilocks analysis — the λ interval within a factor of the best error and the one under the
verdict's clean threshold (``pinncore.verdict.CLEAN``), per term and as a volume over several.

>>> res = SweepResult([{"index": 0, "seed": 0, "ic": 1.0, "status": "completed", "rel_l2": 0.5},
...                    {"index": 1, "seed": 0, "ic": 100.0, "status": "completed", "rel_l2": 0.01}],
...                   keys=["ic"], kinds={"ic": "lambda"}, terms=["pde", "ic"], seeds=[0])
>>> res.best()["ic"], res.goldilocks("ic").under
(100.0, (100.0, 100.0))
"""
from __future__ import annotations

import collections
import csv
import io as _pyio
import json
import math
from dataclasses import dataclass

import numpy as np

from .verdict import CLEAN

__all__ = ["SweepResult", "Goldilocks", "GoldilocksVolume", "record_error", "hashable", "CLEAN", "RESULT_KIND", "plain"]

RESULT_KIND = "pinncore.sweep"


def plain(v):
    """A JSON-friendly copy of a grid value (schemes and optimizers by name).

    >>> plain([1, (2.0, "a")])
    [1, [2.0, 'a']]
    """
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return type(v).__name__.lower() if hasattr(v, "config") else repr(v)


@dataclass
class Goldilocks:
    """The Goldilocks interval of one term's λ (see ``SweepResult.goldilocks``)."""

    term: str
    values: np.ndarray         # the grid's λ values, sorted
    errors: np.ndarray         # per value: the seed-aggregated rel-L2 (other keys: see ``around``)
    best: float                # λ with the smallest error
    best_rel_l2: float
    factor: float
    threshold: float
    within: tuple = None       # (lo, hi): the run of grid values around the best within factor × best
    under: tuple = None        # (lo, hi): the run around the best with rel-L2 < threshold (None if the best is not)

    def __str__(self):
        def span(iv):
            return "none" if iv is None else f"[{iv[0]:.3g}, {iv[1]:.3g}]"
        if not math.isfinite(self.best_rel_l2):
            return f"λ_{self.term}: no fit succeeded"
        return (f"λ_{self.term}: best {self.best:.3g} (rel-L2 {self.best_rel_l2:.2e}); within {self.factor:g}x of "
                f"the best: {span(self.within)}; rel-L2 < {self.threshold:.0%}: {span(self.under)}")


@dataclass
class GoldilocksVolume:
    """The part of a multi-term λ grid where the fits succeed (see ``SweepResult.goldilocks_volume``)."""

    terms: list
    n_points: int
    n_good: int
    fraction: float            # n_good / n_points
    volume: float              # Σ over good points of their cell volume (log10 units per λ axis: decades^D)
    total: float               # volume of the whole grid box
    threshold: float

    @property
    def volume_fraction(self):
        return self.volume / self.total if self.total > 0 else float("nan")

    def __str__(self):
        d = len(self.terms)
        return (f"Goldilocks volume over λ of {', '.join(self.terms)} (rel-L2 < {self.threshold:.0%}): "
                f"{self.n_good}/{self.n_points} grid points ({self.fraction:.1%}), {self.volume:.3g} of "
                f"{self.total:.3g} decades^{d} ({self.volume_fraction:.1%})")


def record_error(rec):
    """A record's rel-L2 for the analysis: +inf unless the fit completed with a finite error."""
    v = rec.get("rel_l2")
    if rec.get("status") != "completed" or v is None or not math.isfinite(v):
        return math.inf
    return float(v)


def hashable(v):
    """A grid value usable as a dict key (lists, such as layers, become tuples)."""
    return tuple(hashable(x) for x in v) if isinstance(v, list) else v


def _aggregate(errs, agg):
    a = np.asarray(errs, dtype=np.float64)
    if agg == "median":
        return float(np.median(a))
    if agg == "max":
        return float(np.max(a))
    if agg == "min":
        return float(np.min(a))
    if agg == "mean":
        return float(np.mean(a))
    raise ValueError(f"agg must be 'median', 'mean', 'max' or 'min', got {agg!r}")


def _cells(values):
    """Per-axis cell widths of sorted grid values (log10 when all > 0): each point owns half the
    gap to each neighbour, so the widths add up to the axis span. A single value has width 1."""
    v = np.asarray(values, dtype=np.float64)
    y = np.log10(v) if (v > 0).all() else v
    if y.size == 1:
        return np.ones(1)
    gaps = np.diff(y)
    return np.concatenate([[gaps[0] / 2], (gaps[:-1] + gaps[1:]) / 2, [gaps[-1] / 2]])


class SweepResult:
    """The table ``pc.sweep`` returns: ``records`` (list of dicts, grid order), export and analysis.

    >>> res = SweepResult([{"index": 0, "seed": 0, "ic": 1.0, "status": "completed", "rel_l2": 0.9},
    ...                    {"index": 1, "seed": 0, "ic": 100.0, "status": "completed", "rel_l2": 0.003}],
    ...                   keys=["ic"], kinds={"ic": "lambda"}, terms=["pde", "ic"], seeds=[0])
    >>> res.best()["ic"], res.goldilocks("ic").under
    (100.0, (100.0, 100.0))
    """

    def __init__(self, records, keys, kinds, terms, seeds, info=None, problem=None):
        self.records, self.keys, self.kinds = list(records), list(keys), dict(kinds)
        self.terms, self.seeds, self.info, self.problem = list(terms), list(seeds), dict(info or {}), problem

    # -- access -----------------------------------------------------------------------
    def __len__(self):
        return len(self.records)

    def __iter__(self):
        return iter(self.records)

    def __getitem__(self, i):
        return self.records[i]

    @property
    def columns(self):
        cols = {}
        for r in self.records:
            cols.update(dict.fromkeys(r))
        return list(cols)

    def column(self, name):
        """One field of every record, as a list (None where a record lacks it)."""
        return [r.get(name) for r in self.records]

    @property
    def lambda_keys(self):
        """The grid keys that set a term's λ."""
        return [k for k in self.keys if self.kinds.get(k) == "lambda"]

    @property
    def failed(self):
        """Records of fits that did not complete (errors, divergence, lost workers)."""
        return [r for r in self.records if r.get("status") != "completed"]

    def where(self, conditions=None, **kw):
        """The records whose fields equal ``conditions`` (a dict, for dotted keys) and ``kw``."""
        cond = {**(conditions or {}), **kw}
        keep = [r for r in self.records if all(hashable(r.get(k)) == hashable(v) for k, v in cond.items())]
        return SweepResult(keep, self.keys, self.kinds, self.terms, self.seeds, self.info, self.problem)

    def __repr__(self):
        return (f"SweepResult({len(self)} records, keys={self.keys}, seeds={self.seeds}, "
                f"{len(self.failed)} failed)")

    # -- export -----------------------------------------------------------------------
    def to_dict(self):
        return {"kind": RESULT_KIND, "version": 1, "keys": self.keys, "kinds": self.kinds, "terms": self.terms,
                "seeds": self.seeds, "info": self.info, "problem": self.problem, "records": self.records}

    def to_json(self, path=None):
        """JSON text of the table (records and how they were made); written to ``path`` if given."""
        text = json.dumps(self.to_dict(), allow_nan=True, default=plain)
        if path is not None:
            with open(path, "w") as f:
                f.write(text)
        return text

    @classmethod
    def from_json(cls, path_or_text):
        """Read a table written by ``to_json`` (a path or the JSON text)."""
        text = path_or_text
        if not str(path_or_text).lstrip().startswith("{"):
            from .io import check_regular_file
            check_regular_file(path_or_text)   # a FIFO would block the open below forever
            with open(path_or_text) as f:
                text = f.read()
        d = json.loads(text)
        if not isinstance(d, dict) or d.get("kind") != RESULT_KIND:
            raise ValueError(f"not a pinncore sweep table (kind {d.get('kind') if isinstance(d, dict) else None!r})")
        return cls(d["records"], d["keys"], d["kinds"], d["terms"], d["seeds"], d.get("info"), d.get("problem"))

    def to_csv(self, path=None):
        """CSV text, one row per record (lists such as layers as JSON); written to ``path`` if given."""
        buf = _pyio.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        cols = self.columns
        w.writerow(cols)
        for r in self.records:
            w.writerow([_csv_cell(r.get(c)) for c in cols])
        text = buf.getvalue()
        if path is not None:
            with open(path, "w", newline="") as f:
                f.write(text)
        return text

    def to_pandas(self):
        """A pandas DataFrame of the records (needs pandas)."""
        try:
            import pandas as pd
        except ImportError as e:
            raise ImportError("SweepResult.to_pandas needs pandas: pip install pandas") from e
        return pd.DataFrame(self.records, columns=self.columns)

    # -- analysis ---------------------------------------------------------------------
    def points(self, agg="median"):
        """[(grid point as a dict, seed-aggregated rel-L2)] in grid order; a failed fit counts as +inf."""
        groups = collections.OrderedDict()
        for r in self.records:
            groups.setdefault(tuple(hashable(r.get(k)) for k in self.keys), []).append(record_error(r))
        return [(dict(zip(self.keys, k)), _aggregate(e, agg)) for k, e in groups.items()]

    def best(self, agg="median"):
        """The grid point with the smallest seed-aggregated rel-L2: its keys plus "rel_l2"."""
        pts = self.points(agg)
        if not pts:
            raise ValueError("the sweep has no records")
        params, err = min(pts, key=lambda p: p[1])
        return {**params, "rel_l2": err}

    def lambda_key(self, term):
        """The grid key that sweeps λ of ``term`` ("ic" or "lambda.ic"); ValueError if none does."""
        if term in self.keys and self.kinds.get(term) == "lambda":
            return term
        for k in self.lambda_keys:
            if k in (f"lambda.{term}",):
                return k
        raise ValueError(f"the grid does not sweep λ of {term!r}; λ keys: {self.lambda_keys}")

    _lambda_key = lambda_key   # the former private name (tests)

    def goldilocks(self, term=None, factor=10.0, threshold=CLEAN, agg="median", around="best"):
        """The Goldilocks interval of ``term``'s λ: the seed-aggregated rel-L2 per grid value of
        λ, the best value, and the runs of neighbouring grid values around it whose error is
        within ``factor`` × the best and under ``threshold``. With several grid keys the other
        keys are held at the best grid point (``around="best"``, a slice through it) or take
        their best value for each λ (``around="any"``, a projection: with Adam, scaling every λ
        by one factor changes little, so projections of a multi-term grid tend to span it all).
        Without ``term``: a dict term -> Goldilocks for every λ key."""
        if term is None:
            return {k: self.goldilocks(k, factor, threshold, agg, around) for k in self.lambda_keys}
        key = self.lambda_key(term)
        if around not in ("best", "any"):
            raise ValueError(f"around must be 'best' or 'any', got {around!r}")
        pts = self.points(agg)
        if around == "best" and pts:
            bp = min(pts, key=lambda p: p[1])[0]
            pts = [(p, e) for p, e in pts if all(hashable(p[k]) == hashable(bp[k]) for k in self.keys if k != key)]
        by = {}
        for params, e in pts:
            by[params[key]] = min(e, by.get(params[key], math.inf))
        vals = sorted(by)
        errs = np.array([by[v] for v in vals])
        b = int(np.argmin(errs))
        best = float(errs[b])
        g = Goldilocks(term=key, values=np.array(vals, dtype=np.float64), errors=errs, best=float(vals[b]),
                       best_rel_l2=best, factor=float(factor), threshold=float(threshold))
        if math.isfinite(best):
            g.within = _run_around(vals, errs <= factor * best, b)
            g.under = _run_around(vals, errs < threshold, b)
        return g

    def goldilocks_volume(self, threshold=CLEAN, terms=None, agg="median"):
        """How much of the λ grid box works: grid points (over the λ keys ``terms``, default all)
        whose best seed-aggregated rel-L2 over the other keys is under ``threshold``, counted and
        as a volume (each point owns its cell, in decades per λ axis)."""
        keys = [self.lambda_key(t) for t in terms] if terms is not None else self.lambda_keys
        if not keys:
            raise ValueError("the grid sweeps no λ")
        by = {}
        for params, e in self.points(agg):
            k = tuple(params[t] for t in keys)
            by[k] = min(e, by.get(k, math.inf))
        axes = [sorted({k[i] for k in by}) for i in range(len(keys))]
        cells = [dict(zip(ax, _cells(ax))) for ax in axes]
        good = [k for k, e in by.items() if e < threshold]
        vol = float(sum(np.prod([cells[i][k[i]] for i in range(len(keys))]) for k in good))
        total = float(np.prod([sum(c.values()) for c in cells]))
        return GoldilocksVolume(terms=keys, n_points=len(by), n_good=len(good), fraction=len(good) / len(by),
                                volume=vol, total=total, threshold=float(threshold))

    def summary(self, threshold=CLEAN, factor=10.0):
        """A few lines: counts, the best point, Goldilocks intervals (and the volume for >= 2 λ keys)."""
        lines = [f"{len(self)} fits ({len(self.points())} grid points x {len(self.seeds)} seed(s)), "
                 f"{len(self.failed)} did not complete" + (f"; {self.info['wall_time']:.1f} s on {self.info.get('workers')} "
                                                           f"{self.info.get('backend')} worker(s)"
                                                           if "wall_time" in self.info else "")]
        if self.records:
            b = self.best()
            where = ", ".join(f"{k}={_fmt_value(v)}" for k, v in b.items() if k != "rel_l2")
            lines.append(f"best: {where} (median rel-L2 over seeds {b['rel_l2']:.3e})")
            for g in self.goldilocks(factor=factor, threshold=threshold).values():
                lines.append(str(g))
            if len(self.lambda_keys) >= 2:
                lines.append(str(self.goldilocks_volume(threshold)))
        return "\n".join(lines)


def _run_around(vals, ok, b):
    if not ok[b]:
        return None
    lo = hi = b
    while lo > 0 and ok[lo - 1]:
        lo -= 1
    while hi < len(vals) - 1 and ok[hi + 1]:
        hi += 1
    return (float(vals[lo]), float(vals[hi]))


def _fmt_value(v):
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _csv_cell(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(v)
    return v
