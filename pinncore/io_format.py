"""The pinncore file format's constants (version 1; the layout is described in pinncore.io):
magic, sizes, limits, the dtypes a file may hold, the scalar text forms, ``FormatError`` and the
checks both the writer (io_write) and the reader (io_read) apply.

>>> FIXED_SIZE, MAGIC, sorted(LOAD_DTYPES)
(32, b'PINNCORE', ['<f4', '<f8', '<i4', '<i8', '|b1'])
"""
from __future__ import annotations

import re
import struct
from typing import Any

import numpy as np
__all__ = ["FORMAT_VERSION", "MAGIC", "MAX_HEADER_BYTES", "MAX_DEPTH", "MAX_KIND_LENGTH", "MAX_NDIM", "MAX_INT_DIGITS",
           "FIXED", "FIXED_SIZE", "DIGEST_SIZE", "SAVE_DTYPES", "LOAD_DTYPES", "ALLOWED_DTYPES_TEXT", "INT_RE",
           "FLOAT_RE", "NAN_RE", "FormatError", "key_path", "check_kind_arg"]

FORMAT_VERSION = 1
MAGIC = b"PINNCORE"
MAX_HEADER_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 100
MAX_KIND_LENGTH = 200
MAX_NDIM = 32  # numpy 1.x limit; numpy 2 allows 64 but 32 is portable
MAX_INT_DIGITS = 4300  # CPython's default int <-> str conversion limit

FIXED = struct.Struct("<8sIIQQ")
FIXED_SIZE = FIXED.size  # 32
DIGEST_SIZE = 32  # SHA-256

# (dtype.kind, itemsize) -> canonical on-disk dtype string
SAVE_DTYPES = {
    ("b", 1): "|b1",
    ("i", 4): "<i4",
    ("i", 8): "<i8",
    ("f", 4): "<f4",
    ("f", 8): "<f8",
}
LOAD_DTYPES = {code: np.dtype(code) for code in SAVE_DTYPES.values()}
ALLOWED_DTYPES_TEXT = "bool, int32, int64, float32, float64"

INT_RE = re.compile(r"-?(?:0|[1-9][0-9]*)")
FLOAT_RE = re.compile(r"-?(?:inf|0x[01]\.[0-9a-f]+p[+-][0-9]{1,5})")
NAN_RE = re.compile(r"nan:[0-9a-f]{16}")


class FormatError(ValueError):
    """A file (or byte string) is not a valid pinncore save file.

    Raised for bad magic, unsupported format version, truncation, checksum
    mismatch (corruption), malformed or oversized headers, inconsistent array
    descriptions, and a ``kind`` other than the one requested.
    """


def key_path(path: str, key: Any) -> str:
    return f"{path}[{key!r}]"


def check_kind_arg(kind: Any, what: str) -> None:
    if not isinstance(kind, str):
        raise TypeError(f"{what} must be a str, got {type(kind).__name__}")
    if not 0 < len(kind) <= MAX_KIND_LENGTH:
        raise ValueError(f"{what} must have 1..{MAX_KIND_LENGTH} characters")
