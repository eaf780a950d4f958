"""Reading pinncore files: the fixed prefix, the JSON header decoded into a checked tree of leaves
and array specs, the digest checked while streaming, arrays read into fresh buffers (``loads``,
``load``, ``check_regular_file``). Every malformed file raises ``FormatError``.

>>> from pinncore.io_write import dumps
>>> loads(dumps({"a": [1, 2.5]}, kind="demo"))
{'a': [1, 2.5]}
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import stat
import struct
import sys
from typing import Any, List, Optional, Tuple

import numpy as np

from .io_format import (DIGEST_SIZE, FIXED, FIXED_SIZE, FLOAT_RE, FORMAT_VERSION, INT_RE, LOAD_DTYPES, MAGIC,
                        MAX_DEPTH, MAX_HEADER_BYTES, MAX_INT_DIGITS, MAX_NDIM, NAN_RE,
                        FormatError, check_kind_arg, key_path)

__all__ = ["loads", "load", "check_regular_file"]


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
    if size < FIXED_SIZE or len(prefix) < FIXED_SIZE:
        raise FormatError(
            f"{source}: truncated file ({size} bytes, the fixed header alone "
            f"needs {FIXED_SIZE})")
    _, version, reserved, jlen, dlen = FIXED.unpack_from(prefix)
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
    expected = FIXED_SIZE + jlen + dlen + DIGEST_SIZE
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
        if len(v) > MAX_INT_DIGITS or not INT_RE.fullmatch(v):
            raise _BadScalar(f"malformed int {v[:40]!r}")
        return int(v)
    if NAN_RE.fullmatch(v):
        x = struct.unpack(">d", bytes.fromhex(v[4:]))[0]
        if not math.isnan(x):
            raise _BadScalar(f"{v!r} is not a NaN bit pattern")
        return x
    if not FLOAT_RE.fullmatch(v):
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
            value = self.node(child, key_path(path, key), depth + 1)
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
        if type(code) is not str or code not in LOAD_DTYPES:
            raise self.fail(
                path, f"unsupported array dtype {str(code)[:40]!r} (allowed: "
                f"{', '.join(LOAD_DTYPES)})")
        dtype = LOAD_DTYPES[code]
        shape = node["shape"]
        if type(shape) is not list or not all(_is_int(n) for n in shape):
            raise self.fail(path, "array shape must be a list of integers")
        if len(shape) > MAX_NDIM:
            raise self.fail(path, f"array has {len(shape)} > {MAX_NDIM} dimensions")
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
    jlen, dlen = _check_fixed(buf[:FIXED_SIZE], len(buf), source)
    body_end = len(buf) - DIGEST_SIZE
    if hashlib.sha256(memoryview(buf)[:body_end]).digest() != buf[body_end:]:
        raise FormatError(f"{source}: checksum mismatch, the file is corrupted")
    tree, specs = _parse(bytes(buf[FIXED_SIZE:FIXED_SIZE + jlen]), kind, source, dlen)
    data_start = FIXED_SIZE + jlen
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
        check_kind_arg(kind, "kind")
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
        check_kind_arg(kind, "kind")
    path = os.fspath(path)
    source = repr(path)
    with _open_regular(path, source) as f:
        size = os.fstat(f.fileno()).st_size
        prefix = f.read(FIXED_SIZE)
        jlen, dlen = _check_fixed(prefix, max(size, len(prefix)), source)
        # ``size`` is the real on-disk size and matches the declared sizes. Pass 1 checks the
        # digest, streaming the data section in chunks: nothing it declares is allocated
        # before the bytes are known to be intact (a 1 GiB file of zeros behind a valid header
        # costs one chunk, not 1 GiB).
        digest = hashlib.sha256(prefix)
        header = _read_exact(f, jlen, source)
        digest.update(header)
        _stream(f, dlen, digest.update, source)
        stored = _read_exact(f, DIGEST_SIZE, source)
        if f.read(1):
            raise FormatError(f"{source}: file changed size while being read")
        if digest.digest() != stored:
            raise FormatError(f"{source}: checksum mismatch, the file is corrupted")
        tree, specs = _parse(header, kind, source, dlen)
        # Pass 2: each array read straight into its own buffer, in file order (the arrays
        # tile the data section); hashing again catches a file rewritten between the passes.
        f.seek(FIXED_SIZE + jlen)
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
