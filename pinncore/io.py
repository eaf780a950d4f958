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

import contextlib
import hashlib
import json
import math
import os
import re
import secrets
import stat
import struct
import sys
from typing import Any, Iterator, List, Optional, Tuple

import numpy as np

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

FORMAT_VERSION = 1
MAGIC = b"PINNCORE"
MAX_HEADER_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 100
MAX_KIND_LENGTH = 200
_MAX_NDIM = 32  # numpy 1.x limit; numpy 2 allows 64 but 32 is portable
_MAX_INT_DIGITS = 4300  # CPython's default int <-> str conversion limit

_FIXED = struct.Struct("<8sIIQQ")
_FIXED_SIZE = _FIXED.size  # 32
_DIGEST_SIZE = 32  # SHA-256

# (dtype.kind, itemsize) -> canonical on-disk dtype string
_SAVE_DTYPES = {
    ("b", 1): "|b1",
    ("i", 4): "<i4",
    ("i", 8): "<i8",
    ("f", 4): "<f4",
    ("f", 8): "<f8",
}
_LOAD_DTYPES = {code: np.dtype(code) for code in _SAVE_DTYPES.values()}
_ALLOWED_DTYPES_TEXT = "bool, int32, int64, float32, float64"

_INT_RE = re.compile(r"-?(?:0|[1-9][0-9]*)")
_FLOAT_RE = re.compile(r"-?(?:inf|0x[01]\.[0-9a-f]+p[+-][0-9]{1,5})")
_NAN_RE = re.compile(r"nan:[0-9a-f]{16}")


class FormatError(ValueError):
    """A file (or byte string) is not a valid pinncore save file.

    Raised for bad magic, unsupported format version, truncation, checksum
    mismatch (corruption), malformed or oversized headers, inconsistent array
    descriptions, and a ``kind`` other than the one requested.
    """


# --------------------------------------------------------------------------
# encoding
# --------------------------------------------------------------------------

def _key_path(path: str, key: Any) -> str:
    return f"{path}[{key!r}]"


def _float_to_text(x: float) -> str:
    if math.isnan(x):
        return "nan:" + struct.pack(">d", x).hex()
    return x.hex()


class _Encoder:
    def __init__(self) -> None:
        self.buffers: List[memoryview] = []
        self.offset = 0
        self._active: set = set()

    def node(self, obj: Any, path: str, depth: int) -> dict:
        if depth > MAX_DEPTH:
            raise ValueError(f"{path}: tree nests deeper than {MAX_DEPTH} levels")
        if obj is None:
            return {"t": "none"}
        if isinstance(obj, (bool, np.bool_)):
            return {"t": "bool", "v": bool(obj)}
        if isinstance(obj, (int, np.integer)):
            try:
                text = str(int(obj))
            except ValueError:  # CPython's int -> str digit limit
                text = ""
            if not text or len(text.lstrip("-")) > _MAX_INT_DIGITS:
                raise ValueError(f"{path}: int has more than {_MAX_INT_DIGITS} digits")
            return {"t": "int", "v": text}
        if isinstance(obj, (float, np.floating)):
            if isinstance(obj, np.floating) and obj.dtype.itemsize > 8:
                raise TypeError(
                    f"{path}: unsupported type {type(obj).__name__} "
                    "(would lose precision as a Python float)")
            return {"t": "float", "v": _float_to_text(float(obj))}
        if isinstance(obj, str):
            return {"t": "str", "v": str.__str__(obj)}
        if isinstance(obj, np.ndarray):
            return self.array(obj, path)
        if isinstance(obj, dict):
            return self.container(obj, path, depth, is_dict=True)
        if isinstance(obj, list):
            return self.container(obj, path, depth, is_dict=False)
        hint = " (use a list)" if isinstance(obj, tuple) else ""
        raise TypeError(f"{path}: unsupported type {type(obj).__name__}{hint}")

    def container(self, obj: Any, path: str, depth: int, *, is_dict: bool) -> dict:
        ident = id(obj)
        if ident in self._active:
            raise ValueError(f"{path}: circular reference")
        self._active.add(ident)
        try:
            items: list = []
            if is_dict:
                for key, value in obj.items():
                    if not isinstance(key, str):
                        raise TypeError(
                            f"{path}: dict key {key!r} is not a str "
                            f"(got {type(key).__name__})")
                    key = str.__str__(key)
                    items.append([key, self.node(value, _key_path(path, key), depth + 1)])
                return {"t": "dict", "items": items}
            for i, value in enumerate(obj):
                items.append(self.node(value, f"{path}[{i}]", depth + 1))
            return {"t": "list", "items": items}
        finally:
            self._active.discard(ident)

    def array(self, obj: np.ndarray, path: str) -> dict:
        if isinstance(obj, (np.ma.MaskedArray, np.matrix)):
            raise TypeError(f"{path}: unsupported type {type(obj).__name__}")
        dt = obj.dtype
        code = None
        if dt.fields is None and dt.subdtype is None:
            code = _SAVE_DTYPES.get((dt.kind, dt.itemsize))
        if code is None:
            raise TypeError(
                f"{path}: unsupported array dtype {dt} "
                f"(allowed: {_ALLOWED_DTYPES_TEXT})")
        if obj.ndim > _MAX_NDIM:
            raise ValueError(f"{path}: array has more than {_MAX_NDIM} dimensions")
        arr = np.asarray(obj, dtype=_LOAD_DTYPES[code], order="C")
        nbytes = int(arr.nbytes)
        node = {
            "t": "array",
            "dtype": code,
            "shape": [int(n) for n in arr.shape],
            "offset": self.offset,
            "nbytes": nbytes,
        }
        if nbytes:
            self.buffers.append(memoryview(arr.reshape(-1).view(np.uint8)))
            self.offset += nbytes
        return node


def _check_kind_arg(kind: Any, what: str) -> None:
    if not isinstance(kind, str):
        raise TypeError(f"{what} must be a str, got {type(kind).__name__}")
    if not 0 < len(kind) <= MAX_KIND_LENGTH:
        raise ValueError(f"{what} must have 1..{MAX_KIND_LENGTH} characters")


def _encode(tree: dict, kind: str) -> Tuple[bytes, List[memoryview]]:
    """Validate ``tree`` and return (fixed header + JSON header, array buffers)."""
    _check_kind_arg(kind, "kind")
    if not isinstance(tree, dict):
        raise TypeError(f"tree must be a dict, got {type(tree).__name__}")
    enc = _Encoder()
    root = enc.node(tree, "tree", 0)
    header = json.dumps(
        {"kind": kind, "tree": root},
        ensure_ascii=True, allow_nan=False, separators=(",", ":"),
    ).encode("ascii")
    if len(header) > MAX_HEADER_BYTES:
        raise ValueError(
            f"tree description needs {len(header)} bytes of header, more than the "
            f"{MAX_HEADER_BYTES} allowed; store bulk data in arrays")
    fixed = _FIXED.pack(MAGIC, FORMAT_VERSION, 0, len(header), enc.offset)
    return fixed + header, enc.buffers


def _chunks(tree: dict, kind: str) -> Iterator[bytes]:
    """Yield the bytes of the encoded file, digest last."""
    prefix, buffers = _encode(tree, kind)
    digest = hashlib.sha256()
    digest.update(prefix)
    yield prefix
    for buf in buffers:
        digest.update(buf)
        yield buf
    yield digest.digest()


def dumps(tree: dict, *, kind: str) -> bytes:
    """Encode ``tree`` into the bytes :func:`save` would write (see :func:`save`)."""
    return b"".join(_chunks(tree, kind))


def _fsync_directory(directory: str) -> None:
    if os.name == "nt":  # directories cannot be opened/fsync-ed on Windows
        return
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(directory, flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _create_temp(directory: str, base: str) -> Tuple[str, int]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = os.path.join(directory, f".{base}.{secrets.token_hex(6)}.tmp")
        try:
            # mode 0o666 filtered by the umask, like a plain open(path, "wb")
            return tmp, os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file in {directory!r}")


def save(path: "str | os.PathLike[str]", tree: dict, *, kind: str) -> None:
    """Atomically write ``tree`` to ``path`` (see the module docstring).

    ``tree`` is a dict with str keys whose leaves are numpy arrays (bool,
    int32, int64, float32, float64), Python/numpy scalars (int, float, bool),
    str, None, or lists of leaves/dicts.  ``kind`` is a short label such as
    ``"pinncore.mlp"`` or ``"pinncore.train_state"`` stored in the header and
    checked by ``load(path, kind=...)``.

    The whole tree is validated before the filesystem is touched: bad leaves
    raise ``TypeError`` naming their path (``tree['opt']['m']: unsupported
    type set``), non-str keys raise ``TypeError`` naming the key.  The data
    goes to a temporary file next to ``path`` that is fsync-ed and then
    ``os.replace``-d onto ``path``; on any error or interrupt the temporary
    file is removed and an existing ``path`` is left untouched.
    """
    path = os.fspath(path)
    chunks = list(_chunks(tree, kind))  # validates before touching the disk
    directory = os.path.dirname(os.path.abspath(path))
    tmp, fd = _create_temp(directory, os.path.basename(path))
    owned = False  # True once the file object owns (and will close) fd
    try:
        with open(fd, "wb", closefd=True) as f:
            owned = True
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if not owned:
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)


# --------------------------------------------------------------------------
# decoding
# --------------------------------------------------------------------------

class _ArraySpec:
    __slots__ = ("dtype", "shape", "offset", "nbytes", "path")

    def __init__(self, dtype: np.dtype, shape: tuple, offset: int, nbytes: int, path: str):
        self.dtype, self.shape, self.offset, self.nbytes, self.path = (
            dtype, shape, offset, nbytes, path)


def _check_fixed(prefix: bytes, size: int, source: str) -> Tuple[int, int]:
    """Validate the fixed 32-byte header against the real size; return (J, D)."""
    if not prefix:
        raise FormatError(f"{source}: empty file, not a pinncore file")
    if prefix[:len(MAGIC)] != MAGIC[:len(prefix)]:
        raise FormatError(f"{source}: not a pinncore file (bad magic bytes)")
    if size < _FIXED_SIZE or len(prefix) < _FIXED_SIZE:
        raise FormatError(
            f"{source}: truncated file ({size} bytes, the fixed header alone "
            f"needs {_FIXED_SIZE})")
    _, version, reserved, jlen, dlen = _FIXED.unpack_from(prefix)
    if version != FORMAT_VERSION:
        raise FormatError(
            f"{source}: unsupported format version {version}; this pinncore "
            f"supports format version {FORMAT_VERSION}")
    if reserved != 0:
        raise FormatError(f"{source}: reserved header field is {reserved}, expected 0")
    if jlen > MAX_HEADER_BYTES:
        raise FormatError(
            f"{source}: JSON header length {jlen} exceeds the limit of "
            f"{MAX_HEADER_BYTES} bytes")
    expected = _FIXED_SIZE + jlen + dlen + _DIGEST_SIZE
    if size < expected:
        raise FormatError(
            f"{source}: truncated file (header declares {expected} bytes, "
            f"found {size})")
    if size > expected:
        raise FormatError(
            f"{source}: {size - expected} unexpected trailing bytes "
            f"(header declares {expected} bytes, found {size})")
    return jlen, dlen


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


class _Leaf:
    """A scalar node, decoded while the JSON header is parsed: kept as a dict, each one cost
    ~300 bytes (a 39 MB header of 3 million nodes took 913 MB); as its value, a few dozen.
    ``error`` holds the complaint about a malformed one, raised with its path by the walk."""

    __slots__ = ("value", "error")

    def __init__(self, value: Any, error: Optional[str] = None) -> None:
        self.value, self.error = value, error


_NONE_LEAF = _Leaf(None)
_SCALAR_TYPES = ("bool", "int", "float", "str")


class _BadScalar(ValueError):
    pass


def _scalar(t: str, v: Any) -> Any:
    """The value of a scalar node ``{"t": t, "v": v}``; _BadScalar says what is wrong."""
    if t == "bool":
        if type(v) is not bool:
            raise _BadScalar("bool value must be JSON true/false")
        return v
    if type(v) is not str:
        raise _BadScalar(f"{t} value must be a JSON string")
    if t == "str":
        return v
    if t == "int":
        if len(v) > _MAX_INT_DIGITS or not _INT_RE.fullmatch(v):
            raise _BadScalar(f"malformed int {v[:40]!r}")
        return int(v)
    if _NAN_RE.fullmatch(v):
        x = struct.unpack(">d", bytes.fromhex(v[4:]))[0]
        if not math.isnan(x):
            raise _BadScalar(f"{v!r} is not a NaN bit pattern")
        return x
    if not _FLOAT_RE.fullmatch(v):
        raise _BadScalar(f"malformed float {v[:40]!r}")
    try:
        return float.fromhex(v)
    except (ValueError, OverflowError):
        raise _BadScalar(f"malformed float {v[:40]!r}") from None


def _object_pairs(pairs: list) -> Any:
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate JSON key {key!r}")
        out[key] = value
    t = out.get("t")
    if t == "none" and len(out) == 1:
        return _NONE_LEAF
    if type(t) is str and t in _SCALAR_TYPES and len(out) == 2 and "v" in out:
        try:
            return _Leaf(_scalar(t, out["v"]))
        except _BadScalar as exc:
            return _Leaf(None, str(exc))
    return out   # containers, arrays and malformed nodes: checked by the walk, with their path


def _is_int(x: Any) -> bool:
    return type(x) is int


class _Decoder:
    def __init__(self, source: str, dlen: int) -> None:
        self.source = source
        self.dlen = dlen
        self.specs: List[Tuple[Any, Any, _ArraySpec]] = []

    def fail(self, path: str, msg: str) -> "FormatError":
        return FormatError(f"{self.source}: {path}: {msg}")

    def members(self, node: dict, path: str, allowed: frozenset) -> None:
        if node.keys() != allowed:
            raise self.fail(
                path, f"malformed {node.get('t')!r} node with members "
                f"{sorted(node)}, expected {sorted(allowed)}")

    def node(self, node: Any, path: str, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise self.fail(path, f"tree nests deeper than {MAX_DEPTH} levels")
        if type(node) is _Leaf:
            if node.error is not None:
                raise self.fail(path, node.error)
            return node.value
        if type(node) is not dict:
            raise self.fail(path, f"malformed node (JSON {type(node).__name__})")
        t = node.get("t")
        if t == "none":
            self.members(node, path, frozenset({"t"}))
            return None
        if t in ("bool", "int", "float", "str"):
            self.members(node, path, frozenset({"t", "v"}))
            return self.scalar(t, node["v"], path)
        if t == "list":
            self.members(node, path, frozenset({"t", "items"}))
            items = node["items"]
            if type(items) is not list:
                raise self.fail(path, "list items must be a JSON array")
            out: list = []
            for i, item in enumerate(items):
                value = self.node(item, f"{path}[{i}]", depth + 1)
                if isinstance(value, _ArraySpec):
                    self.specs.append((out, i, value))
                out.append(value)
            return out
        if t == "dict":
            return self.dict_node(node, path, depth)
        if t == "array":
            self.members(node, path,
                         frozenset({"t", "dtype", "shape", "offset", "nbytes"}))
            return self.array(node, path)
        raise self.fail(path, f"unknown node type {t!r}")

    def dict_node(self, node: dict, path: str, depth: int) -> dict:
        self.members(node, path, frozenset({"t", "items"}))
        items = node["items"]
        if type(items) is not list:
            raise self.fail(path, "dict items must be a JSON array")
        out: dict = {}
        for item in items:
            if type(item) is not list or len(item) != 2 or type(item[0]) is not str:
                raise self.fail(path, "dict items must be [str key, node] pairs")
            key, child = item
            if key in out:
                raise self.fail(path, f"duplicate dict key {key!r}")
            value = self.node(child, _key_path(path, key), depth + 1)
            if isinstance(value, _ArraySpec):
                self.specs.append((out, key, value))
            out[key] = value
        return out

    def scalar(self, t: str, v: Any, path: str) -> Any:
        try:
            return _scalar(t, v)
        except _BadScalar as exc:
            raise self.fail(path, str(exc)) from None

    def array(self, node: dict, path: str) -> _ArraySpec:
        code = node["dtype"]
        if type(code) is not str or code not in _LOAD_DTYPES:
            raise self.fail(
                path, f"unsupported array dtype {str(code)[:40]!r} (allowed: "
                f"{', '.join(_LOAD_DTYPES)})")
        dtype = _LOAD_DTYPES[code]
        shape = node["shape"]
        if type(shape) is not list or not all(_is_int(n) for n in shape):
            raise self.fail(path, "array shape must be a list of integers")
        if len(shape) > _MAX_NDIM:
            raise self.fail(path, f"array has {len(shape)} > {_MAX_NDIM} dimensions")
        if any(n < 0 for n in shape):
            raise self.fail(path, f"negative dimension in shape {shape}")
        nonzero = 1
        for n in shape:
            if n:
                nonzero *= n
                if nonzero * dtype.itemsize > sys.maxsize:
                    raise self.fail(path, f"absurd array shape {shape}")
        count = nonzero if all(shape) else 0
        offset, nbytes = node["offset"], node["nbytes"]
        if not (_is_int(offset) and _is_int(nbytes)) or offset < 0 or nbytes < 0:
            raise self.fail(path, "array offset/nbytes must be non-negative integers")
        if nbytes != count * dtype.itemsize:
            raise self.fail(
                path, f"nbytes {nbytes} does not match shape {shape} of "
                f"dtype {code} ({count * dtype.itemsize} bytes)")
        if offset + nbytes > self.dlen:
            raise self.fail(
                path, f"array bytes [{offset}, {offset + nbytes}) lie outside "
                f"the data section of {self.dlen} bytes")
        return _ArraySpec(dtype, tuple(shape), offset, nbytes, path)

    def check_layout(self) -> None:
        end = 0
        prev = ""
        for spec in sorted((s for _, _, s in self.specs if s.nbytes),
                           key=lambda s: s.offset):
            if spec.offset < end:
                raise FormatError(
                    f"{self.source}: arrays {prev} and {spec.path} overlap "
                    "in the data section")
            if spec.offset > end:
                break
            end, prev = spec.offset + spec.nbytes, spec.path
        if end != self.dlen:
            raise FormatError(
                f"{self.source}: data section bytes [{end}, ...) of "
                f"{self.dlen} are not covered by any array")


def _parse(header: bytes, kind: Optional[str], source: str, dlen: int) -> Tuple[dict, list]:
    """The tree of a checksummed JSON header, with its arrays still as ``_ArraySpec`` (checked
    against the data section's ``dlen`` bytes); returns (tree, [(container, key, spec)])."""
    try:
        text = header.decode("utf-8")
        parsed = json.loads(text, parse_constant=_reject_constant,
                            object_pairs_hook=_object_pairs)
    except (ValueError, RecursionError) as exc:
        raise FormatError(f"{source}: malformed JSON header ({exc})"[:500]) from None
    if type(parsed) is not dict or parsed.keys() != {"kind", "tree"}:
        raise FormatError(f"{source}: malformed JSON header (expected members kind, tree)")
    file_kind = parsed["kind"]
    if type(file_kind) is not str:
        raise FormatError(f"{source}: malformed JSON header (kind is not a string)")
    if kind is not None and file_kind != kind:
        raise FormatError(
            f"{source}: file kind {file_kind!r} does not match the expected "
            f"kind {kind!r}")
    root = parsed["tree"]
    if type(root) is not dict or root.get("t") != "dict":
        raise FormatError(f"{source}: malformed JSON header (root is not a dict node)")
    dec = _Decoder(source, dlen)
    tree = dec.node(root, "tree", 0)
    dec.check_layout()
    return tree, dec.specs


def _decode(buf: "bytes | bytearray", kind: Optional[str], source: str) -> dict:
    jlen, dlen = _check_fixed(buf[:_FIXED_SIZE], len(buf), source)
    body_end = len(buf) - _DIGEST_SIZE
    if hashlib.sha256(memoryview(buf)[:body_end]).digest() != buf[body_end:]:
        raise FormatError(f"{source}: checksum mismatch, the file is corrupted")
    tree, specs = _parse(bytes(buf[_FIXED_SIZE:_FIXED_SIZE + jlen]), kind, source, dlen)
    data_start = _FIXED_SIZE + jlen
    for container, key, spec in specs:
        container[key] = _materialize(buf, data_start, spec, source)
    return tree


def _materialize(buf: "bytes | bytearray", data_start: int, spec: _ArraySpec, source: str) -> np.ndarray:
    native = spec.dtype.newbyteorder("=")
    if spec.nbytes == 0:
        try:
            return np.zeros(spec.shape, dtype=native)
        except ValueError as exc:
            raise FormatError(f"{source}: {spec.path}: bad shape {spec.shape} ({exc})") from None
    raw = np.frombuffer(buf, dtype=np.uint8, count=spec.nbytes,
                        offset=data_start + spec.offset)
    if spec.dtype.kind == "b" and int(raw.max()) > 1:
        raise FormatError(f"{source}: {spec.path}: bool array holds bytes other than 0/1")
    view = raw.view(spec.dtype).reshape(spec.shape)
    return np.array(view, dtype=native, order="C", copy=True)


def loads(data: "bytes | bytearray | memoryview", *, kind: Optional[str] = None) -> dict:
    """Decode bytes produced by :func:`dumps` (same checks as :func:`load`)."""
    if kind is not None:
        _check_kind_arg(kind, "kind")
    return _decode(bytes(data), kind, "<bytes>")


_FILE_TYPES = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
               (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
               (stat.S_ISBLK, "a block device"))


def _check_regular(mode: int, source: str) -> None:
    if not stat.S_ISREG(mode):
        what = next((name for test, name in _FILE_TYPES if test(mode)), "not a regular file")
        raise FormatError(f"{source}: is {what}; pinncore loads only regular files")


def check_regular_file(path: "str | os.PathLike[str]") -> None:
    """FormatError unless ``path`` is a regular file (a FIFO would block ``open`` until a writer
    appears, a device may never end); the usual OSError when it does not exist. For readers of
    pinncore's other files (sweep tables), to call before they open one.

    >>> check_regular_file(__file__)
    """
    path = os.fspath(path)
    _check_regular(os.stat(path).st_mode, repr(path))


def _open_regular(path: str, source: str):
    """``path`` opened for binary reading if it is a regular file; FormatError otherwise.

    Checked before opening (a FIFO blocks ``open`` until a writer appears, a device may never
    end), and again on the descriptor, opened non-blocking, in case the path was swapped
    between the two (the descriptor is made blocking again for the read)."""
    _check_regular(os.stat(path).st_mode, source)
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    fd = os.open(path, flags)
    try:
        _check_regular(os.fstat(fd).st_mode, source)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return open(fd, "rb", closefd=True)
    except BaseException:
        os.close(fd)
        raise


def load(path: "str | os.PathLike[str]", *, kind: Optional[str] = None) -> dict:
    """Read a tree written by :func:`save`.

    Returns a new dict equal to the saved tree: arrays as fresh writable
    C-contiguous arrays with the saved dtype and shape, scalars as the same
    Python types and exact values.  If ``kind`` is given and the file's kind
    differs, raises :class:`FormatError` naming both.  Any invalid file
    (bad magic, unsupported version, truncation, checksum mismatch, malformed
    or inconsistent header) raises :class:`FormatError`; no size declared in
    the file is trusted before it has been checked against the file's real
    size.  Missing/unreadable files raise the usual ``OSError``; a path that
    is not a regular file (a FIFO, a device, a directory) raises
    :class:`FormatError` without being opened for reading.
    """
    if kind is not None:
        _check_kind_arg(kind, "kind")
    path = os.fspath(path)
    source = repr(path)
    with _open_regular(path, source) as f:
        size = os.fstat(f.fileno()).st_size
        prefix = f.read(_FIXED_SIZE)
        jlen, dlen = _check_fixed(prefix, max(size, len(prefix)), source)
        # ``size`` is the real on-disk size and matches the declared sizes. Pass 1 checks the
        # digest, streaming the data section in chunks: nothing it declares is allocated
        # before the bytes are known to be intact (a 1 GiB file of zeros behind a valid header
        # costs one chunk, not 1 GiB).
        digest = hashlib.sha256(prefix)
        header = _read_exact(f, jlen, source)
        digest.update(header)
        _stream(f, dlen, digest.update, source)
        stored = _read_exact(f, _DIGEST_SIZE, source)
        if f.read(1):
            raise FormatError(f"{source}: file changed size while being read")
        if digest.digest() != stored:
            raise FormatError(f"{source}: checksum mismatch, the file is corrupted")
        tree, specs = _parse(header, kind, source, dlen)
        # Pass 2: each array read straight into its own buffer, in file order (the arrays
        # tile the data section); hashing again catches a file rewritten between the passes.
        f.seek(_FIXED_SIZE + jlen)
        again = hashlib.sha256(prefix)
        again.update(header)
        for container, key, spec in sorted(specs, key=lambda cks: (cks[2].nbytes > 0, cks[2].offset)):
            container[key] = _read_array(f, spec, again, source)
        if again.digest() != stored:
            raise FormatError(f"{source}: file changed while being read")
    return tree


_CHUNK = 1 << 20


def _read_exact(f: Any, n: int, source: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise FormatError(f"{source}: file changed size while being read")
    return data


def _stream(f: Any, n: int, sink: Any, source: str) -> None:
    """Feed the next ``n`` bytes of ``f`` to ``sink`` in chunks of at most ``_CHUNK``."""
    buf = bytearray(min(n, _CHUNK))
    view = memoryview(buf)
    while n:
        got = f.readinto(view[:min(n, _CHUNK)])
        if not got:
            raise FormatError(f"{source}: file changed size while being read")
        sink(view[:got])
        n -= got


def _read_array(f: Any, spec: _ArraySpec, digest: Any, source: str) -> np.ndarray:
    """The array ``spec`` describes, read from the file's current position (its offset)."""
    if spec.nbytes == 0:
        return _materialize(b"", 0, spec, source)
    arr = np.empty(spec.nbytes // spec.dtype.itemsize, dtype=spec.dtype)
    raw = arr.view(np.uint8)
    view = memoryview(raw)
    pos = 0
    while pos < spec.nbytes:
        got = f.readinto(view[pos:])
        if not got:
            raise FormatError(f"{source}: file changed size while being read")
        pos += got
    digest.update(view)
    if spec.dtype.kind == "b" and int(raw.max()) > 1:
        raise FormatError(f"{source}: {spec.path}: bool array holds bytes other than 0/1")
    arr = arr.reshape(spec.shape)
    return arr if arr.dtype.isnative else arr.astype(spec.dtype.newbyteorder("="))
