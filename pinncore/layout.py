"""The flat parameter layout of a network: the one place that knows where every weight lives.

``net.params`` is one flat array, layer by layer: W_l (n_out × n_in, row-major), then b_l
(docs/design.md §4). ``Layout`` gives each block's offset and shape, the parameter count, the
weight mask (True on weight-matrix entries, which GradNorm's statistics use) and views of the
blocks; the network, the NumPy twin, the saved-state checks and the schemes all ask it.
With unknown coefficients (``pc.Unknown``), the optimizer's vector continues after the
network's ``n_params`` entries with one raw parameter per unknown (pinncore.unknown;
docs/design.md §4); the network's blocks keep their offsets.

>>> lay = Layout([1, 2, 1])
>>> lay.n_params, [(b.name, b.offset, b.shape) for b in lay.blocks]
(7, [('W0', 0, (2, 1)), ('b0', 2, (2,)), ('W1', 4, (1, 2)), ('b1', 6, (1,))])
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Layout", "Block"]


@dataclass(frozen=True)
class Block:
    name: str          # "W<l>" or "b<l>"
    offset: int
    shape: tuple
    is_weight: bool

    @property
    def size(self):
        return int(np.prod(self.shape))


class Layout:
    """The layout of a plain MLP with layer widths ``layers``."""

    def __init__(self, layers):
        self.layers = [int(w) for w in layers]
        self.blocks, off = [], 0
        for l, (n_in, n_out) in enumerate(zip(self.layers[:-1], self.layers[1:])):
            self.blocks.append(Block(f"W{l}", off, (n_out, n_in), True))
            off += n_out * n_in
            self.blocks.append(Block(f"b{l}", off, (n_out,), False))
            off += n_out
        self.n_params = off

    def weight_mask(self):
        """Boolean (n_params,): True on weight-matrix entries, False on biases."""
        mask = np.zeros(self.n_params, dtype=bool)
        for b in self.blocks:
            if b.is_weight:
                mask[b.offset:b.offset + b.size] = True
        return mask

    def unpack(self, params):
        """[(W_l, b_l)] views into the flat ``params``."""
        views = [params[b.offset:b.offset + b.size].reshape(b.shape) for b in self.blocks]
        return list(zip(views[0::2], views[1::2]))


def n_params(layers):
    """The parameter count of a plain MLP with widths ``layers`` (without building a Layout)."""
    return sum(a * b + b for a, b in zip(layers[:-1], layers[1:]))
