"""Saving and loading pinncore state without pickle.

pinncore stores networks and training states (parameters, optimizer moments,
weighting-scheme state, step counters, training history) as *trees*: nested
``dict`` objects with ``str`` keys whose leaves are

* numpy arrays of dtype ``bool``, ``int32``, ``int64``, ``float32`` or
  ``float64`` (any shape, including 0-d and zero-size; non-contiguous,
  Fortran-ordered and big-endian inputs are accepted),
* Python ``int``, ``float``, ``bool``, ``str`` and ``None``,
* lists of leaves and/or dicts (lists may nest).

:func:`save` writes such a tree to a file and :func:`load` reads it back
*exactly*: arrays come back bitwise identical as fresh, writable,
C-contiguous, native-byte-order arrays with the saved dtype and shape; Python
scalars come back as the same Python types and values (floats bitwise,
including ``nan`` payloads, ``inf`` and ``-0.0``; ints of any size).
Numpy scalars (``np.float32(1.5)``, ``np.int64(3)``, ``np.bool_(True)``, ...)
are accepted on save and stored as the equivalent Python scalar (value-exact).
Tuples, sets, bytes, object arrays and anything else are refused with a
``TypeError`` naming the offending path, e.g.
``tree['opt']['m']: unsupported type set``.

No pickle is ever used, and loading never executes code or trusts a size it
has not checked against the bytes actually present: every malformed,
truncated, corrupted, wrong-version or hand-crafted file raises
:class:`FormatError` (a ``ValueError``) before anything large is allocated.
:func:`load` checks the digest while streaming the file in 1 MiB chunks,
then reads each array straight into its own buffer; scalar nodes are decoded
as the JSON header is parsed, so a header costs a few times its own bytes.

Writes are atomic: the file is written to a temporary file in the target's
directory, flushed and ``fsync``-ed, then moved over the target with
``os.replace`` (and the directory is ``fsync``-ed where the OS allows it).
A crash or Ctrl-C during :func:`save` leaves the previous file intact and
removes the temporary file.

Example
-------
>>> import os, tempfile
>>> import numpy as np
>>> from pinncore import io
>>> state = {
...     "params": [{"W": np.eye(2), "b": np.zeros(2, np.float32)}],
...     "step": 10,
...     "lr": 1e-3,
...     "history": {"loss": [0.5, float("nan")], "note": None},
... }
>>> with tempfile.TemporaryDirectory() as d:
...     path = os.path.join(d, "state.pinn")
...     io.save(path, state, kind="pinncore.train_state")
...     back = io.load(path, kind="pinncore.train_state")
>>> back["step"], back["lr"], back["params"][0]["b"].dtype
(10, 0.001, dtype('float32'))
>>> bool(np.array_equal(back["params"][0]["W"], np.eye(2)))
True
>>> try:
...     io.loads(io.dumps(state, kind="pinncore.mlp"), kind="pinncore.train_state")
... except io.FormatError as exc:
...     print(exc)
<bytes>: file kind 'pinncore.mlp' does not match the expected kind 'pinncore.train_state'

The constants and checks of the format are in io_format, writing in io_write, reading in
io_read; this module gathers them.

File format (version 1)
-----------------------
All integers are little-endian.  A file is the concatenation of::

    offset  size  content
    0       8     magic b"PINNCORE"
    8       4     uint32 format version (currently 1)
    12      4     uint32 reserved, must be 0
    16      8     uint64 J = length of the JSON header in bytes (<= 64 MiB)
    24      8     uint64 D = length of the data section in bytes
    32      J     JSON header, UTF-8 (written as pure ASCII)
    32+J    D     data section: raw little-endian C-order array bytes
    32+J+D  32    SHA-256 digest of bytes [0, 32+J+D)

so the file size must be exactly ``32 + J + D + 32``.  The JSON header is an
object ``{"kind": <str>, "tree": <node>}`` where ``<node>`` is one of::

    {"t": "none"}
    {"t": "bool",  "v": true | false}
    {"t": "int",   "v": "<decimal digits, optional leading '-'>"}
    {"t": "float", "v": "<float.hex() string, 'inf' or '-inf'>"}
    {"t": "float", "v": "nan:<16 hex digits: big-endian IEEE-754 bits>"}
    {"t": "str",   "v": <str>}
    {"t": "list",  "items": [<node>, ...]}
    {"t": "dict",  "items": [[<str key>, <node>], ...]}      (key order kept)
    {"t": "array", "dtype": "|b1" | "<i4" | "<i8" | "<f4" | "<f8",
                   "shape": [<int >= 0>, ...], "offset": <int>, "nbytes": <int>}

The root node is a ``dict`` node.  ``offset`` is relative to the start of the
data section; ``nbytes`` must equal ``prod(shape) * itemsize``; array byte
ranges must lie inside the data section, must not overlap and must together
cover it exactly.  Boolean array bytes must be 0 or 1.  Nodes may not carry
unknown members, JSON ``NaN``/``Infinity`` literals and duplicate object keys
are rejected, and no value may sit more than :data:`MAX_DEPTH` (100) levels
below the root (same limit on save, as ``ValueError``).
"""
from __future__ import annotations

from .io_format import FORMAT_VERSION, MAGIC, MAX_DEPTH, MAX_HEADER_BYTES, MAX_KIND_LENGTH, FormatError  # noqa: F401
from .io_read import check_regular_file, load, loads
from .io_write import dumps, save

__all__ = [
    "FORMAT_VERSION",
    "FormatError",
    "MAGIC",
    "MAX_HEADER_BYTES",
    "MAX_DEPTH",
    "save",
    "load",
    "check_regular_file",
    "dumps",
    "loads",
]
