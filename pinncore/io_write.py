"""Writing pinncore files: a tree encoded to the JSON header and the data section (``dumps``) and
saved atomically (``save``: temporary file, fsync, ``os.replace``). The format: pinncore.io.

>>> dumps({"a": 1}, kind="demo")[:8]
b'PINNCORE'
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import secrets
import struct
from typing import Any, Iterator, List, Tuple

import numpy as np

from .io_format import (ALLOWED_DTYPES_TEXT, FIXED, FORMAT_VERSION, LOAD_DTYPES, MAGIC, MAX_DEPTH, MAX_HEADER_BYTES,
                        MAX_INT_DIGITS, MAX_NDIM, SAVE_DTYPES, check_kind_arg, key_path)

__all__ = ["dumps", "save"]


# --------------------------------------------------------------------------
# encoding
# --------------------------------------------------------------------------

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
            if not text or len(text.lstrip("-")) > MAX_INT_DIGITS:
                raise ValueError(f"{path}: int has more than {MAX_INT_DIGITS} digits")
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
                    items.append([key, self.node(value, key_path(path, key), depth + 1)])
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
            code = SAVE_DTYPES.get((dt.kind, dt.itemsize))
        if code is None:
            raise TypeError(
                f"{path}: unsupported array dtype {dt} "
                f"(allowed: {ALLOWED_DTYPES_TEXT})")
        if obj.ndim > MAX_NDIM:
            raise ValueError(f"{path}: array has more than {MAX_NDIM} dimensions")
        arr = np.asarray(obj, dtype=LOAD_DTYPES[code], order="C")
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


def _encode(tree: dict, kind: str) -> Tuple[bytes, List[memoryview]]:
    """Validate ``tree`` and return (fixed header + JSON header, array buffers)."""
    check_kind_arg(kind, "kind")
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
    fixed = FIXED.pack(MAGIC, FORMAT_VERSION, 0, len(header), enc.offset)
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
