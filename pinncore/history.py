"""The training history: named columns, one row per logged step (jaxpi's ``<term>_loss``,
``<term>_grad_norm``, ``<term>_weight`` keys), with CSV/JSON export.

>>> h = History(["pde"]); h.append({"step": 0, "phase": "adam", "pde_loss": 1.0})
>>> h["step"].dtype.name, h.last_step
('int64', 0)
"""
from __future__ import annotations

import csv
import io as _pyio
import json

import numpy as np

__all__ = ["History"]


class History:
    """Columns of logged values, one row per log step.

    Columns: ``step`` (int), ``phase`` (the optimizer's name: "adam", "lbfgs", "lm"), ``wall_time``, ``total_loss``, and per term
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
        if key == "phase":
            return np.array(col)
        if key == "step":
            return np.array(col, dtype=np.int64)
        return np.array([np.nan if v is None else v for v in col], dtype=np.float64)

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
        return self["step"]

    @property
    def last_step(self):
        """The step of the last row (None when empty)."""
        col = self.columns.get("step")
        return col[-1] if col else None

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
