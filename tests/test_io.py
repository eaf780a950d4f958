"""Tests for pinncore.io: exact round-trips, atomic writes, hostile files."""
import doctest
import hashlib
import json
import math
import os
import random
import struct
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pinncore import io as pio
from pinncore.io import FormatError

KIND = "pinncore.train_state"


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def assert_same(a, b, path="tree"):
    """Bitwise/type-exact equality of two trees."""
    assert type(a) is type(b), f"{path}: {type(a)} vs {type(b)}"
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype, path
        assert a.shape == b.shape, path
        assert a.tobytes() == b.tobytes(), path
    elif isinstance(a, float):
        assert struct.pack("<d", a) == struct.pack("<d", b), f"{path}: {a!r} vs {b!r}"
    elif isinstance(a, dict):
        assert list(a) == list(b), path
        for k in a:
            assert_same(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]")
    else:
        assert a == b, path


def check_loaded_arrays(tree):
    if isinstance(tree, np.ndarray):
        assert tree.flags.c_contiguous and tree.flags.writeable
        assert tree.dtype.isnative
    elif isinstance(tree, dict):
        for v in tree.values():
            check_loaded_arrays(v)
    elif isinstance(tree, list):
        for v in tree:
            check_loaded_arrays(v)


def deep_tree():
    rng = np.random.default_rng(0)
    f64 = rng.standard_normal((3, 4))
    f64[0, 0], f64[0, 1], f64[0, 2] = np.nan, np.inf, -0.0
    fortran = np.asfortranarray(rng.standard_normal((5, 3)).astype(np.float32))
    return {
        "params": [
            {"W": f64, "b": np.arange(4, dtype=np.float32)},
            {"W": fortran, "b": fortran[:, 1]},  # non-contiguous view
        ],
        "opt": {
            "m": [np.zeros((0,)), np.zeros((2, 0, 3), np.float32)],
            "t": np.array(7, dtype=np.int64),  # 0-d
            "mask": np.array([[True, False], [False, True]]),
            "idx": np.arange(-5, 5, dtype=np.int32)[::-2],
            "big_endian": np.arange(6, dtype=">f8").reshape(2, 3),
            "scalar0d": np.array(np.nan),
        },
        "step": 2**63 - 1,
        "neg": -(2**63),
        "huge": 10**40,
        "floats": [0.0, -0.0, math.inf, -math.inf, math.nan, 5e-324, 1.7976931348623157e308,
                   0.1, -1.5e-300],
        "flags": [True, False],
        "text": "ünïcødé ∂u/∂t 🚀",
        "empty": {"": "", "list": [], "dict": {}},
        "none": None,
        "history": [{"step": i, "loss": 1.0 / (i + 1), "tags": ["a", None]} for i in range(3)],
        "nested": [[1, [2.5, [None, {"x": np.ones(2, bool)}]]]],
    }


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "state.pinn"
    pio.save(path, deep_tree(), kind=KIND)
    return path


def craft(header, data=b"", version=pio.FORMAT_VERSION, reserved=0, jlen=None, dlen=None):
    """Build a file with a VALID checksum from an arbitrary JSON header."""
    if not isinstance(header, bytes):
        header = json.dumps(header).encode()
    fixed = struct.pack("<8sIIQQ", b"PINNCORE", version, reserved,
                        len(header) if jlen is None else jlen,
                        len(data) if dlen is None else dlen)
    body = fixed + header + data
    return body + hashlib.sha256(body).digest()


def arr_node(dtype="<f8", shape=(2,), offset=0, nbytes=16):
    return {"t": "array", "dtype": dtype, "shape": list(shape),
            "offset": offset, "nbytes": nbytes}


def crafted_tree(**items):
    return {"kind": KIND, "tree": {"t": "dict", "items": [[k, v] for k, v in items.items()]}}


# --------------------------------------------------------------------------
# round trips
# --------------------------------------------------------------------------

def test_deep_round_trip(saved):
    back = pio.load(saved, kind=KIND)
    expected = deep_tree()
    expected["opt"]["big_endian"] = expected["opt"]["big_endian"].astype("<f8")
    assert_same(expected, back)
    check_loaded_arrays(back)
    assert math.copysign(1.0, back["floats"][1]) == -1.0
    assert math.copysign(1.0, back["params"][0]["W"][0, 2]) == -1.0
    assert back["opt"]["t"].shape == () and back["opt"]["t"].dtype == np.int64
    assert isinstance(back["huge"], int) and back["huge"] == 10**40


def test_loaded_arrays_are_fresh(saved):
    a = pio.load(saved)
    b = pio.load(saved)
    a["params"][0]["b"][:] = 99
    assert b["params"][0]["b"][0] == 0


def test_dumps_loads_and_determinism():
    data = pio.dumps(deep_tree(), kind=KIND)
    assert data == pio.dumps(deep_tree(), kind=KIND)
    assert data.startswith(b"PINNCORE")
    assert_same(pio.loads(data), pio.loads(bytearray(data)))


def test_nan_payload_and_numpy_scalars_preserved():
    payload = struct.unpack("<d", struct.pack("<Q", 0xFFF8000000000123))[0]
    tree = {"x": payload, "f32": np.float32(1.1), "i": np.int64(-3), "b": np.bool_(True),
            "f64": np.float64(0.25)}
    back = pio.loads(pio.dumps(tree, kind="k"))
    assert struct.pack("<d", back["x"]) == struct.pack("<d", payload)
    assert type(back["f32"]) is float and back["f32"] == float(np.float32(1.1))
    assert type(back["i"]) is int and back["i"] == -3
    assert back["b"] is True
    assert type(back["f64"]) is float


def test_fortran_and_noncontiguous_become_c_contiguous():
    a = np.asfortranarray(np.arange(12.0).reshape(3, 4))
    back = pio.loads(pio.dumps({"a": a, "s": a[::2, ::3]}, kind="k"))
    assert back["a"].flags.c_contiguous
    np.testing.assert_array_equal(back["a"], a)
    np.testing.assert_array_equal(back["s"], a[::2, ::3])


def test_doctest_example_runs():
    result = doctest.testmod(pio)
    assert result.attempted > 0 and result.failed == 0


# --------------------------------------------------------------------------
# refusal on save
# --------------------------------------------------------------------------

@pytest.mark.parametrize("bad, fragment", [
    ({"opt": {"m": {1, 2}}}, "tree['opt']['m']: unsupported type set"),
    ({"a": (1, 2)}, "tree['a']: unsupported type tuple"),
    ({"a": [1, b"x"]}, "tree['a'][1]: unsupported type bytes"),
    ({"a": np.array([object()], dtype=object)}, "tree['a']: unsupported array dtype object"),
    ({"a": np.zeros(2, np.complex128)}, "unsupported array dtype complex128"),
    ({"a": np.zeros(2, np.float16)}, "unsupported array dtype float16"),
    ({"a": np.zeros(2, np.uint8)}, "unsupported array dtype uint8"),
    ({"a": np.array(["x"])}, "unsupported array dtype <U1"),
    ({"a": np.zeros(2, [("x", "<f8")])}, "unsupported array dtype"),
    ({"a": 1j}, "unsupported type complex"),
])
def test_save_rejects_unsupported_leaves(tmp_path, bad, fragment):
    with pytest.raises(TypeError) as info:
        pio.save(tmp_path / "x", bad, kind="k")
    assert fragment in str(info.value)
    assert os.listdir(tmp_path) == []


def test_save_rejects_non_str_keys():
    with pytest.raises(TypeError, match=r"tree\['opt'\]: dict key 3 is not a str"):
        pio.dumps({"opt": {3: 1.0}}, kind="k")
    with pytest.raises(TypeError, match="tree must be a dict"):
        pio.dumps([1], kind="k")


def test_save_rejects_cycles_and_bad_kind():
    a: dict = {}
    a["self"] = a
    with pytest.raises(ValueError, match="circular"):
        pio.dumps(a, kind="k")
    with pytest.raises(TypeError):
        pio.dumps({}, kind=None)
    with pytest.raises(ValueError):
        pio.dumps({}, kind="")


def test_shared_subtrees_are_fine():
    shared = [1, 2]
    back = pio.loads(pio.dumps({"a": shared, "b": shared}, kind="k"))
    assert back == {"a": [1, 2], "b": [1, 2]}


# --------------------------------------------------------------------------
# atomicity
# --------------------------------------------------------------------------

def test_interrupt_during_replace_keeps_previous_file(saved, monkeypatch):
    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        pio.save(saved, {"new": 1}, kind=KIND)
    monkeypatch.undo()
    assert os.listdir(saved.parent) == [saved.name]
    assert_same(pio.load(saved)["step"], 2**63 - 1)


def test_interrupt_during_fsync_keeps_previous_file(saved, monkeypatch):
    def boom(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(KeyboardInterrupt):
        pio.save(saved, {"new": np.ones(1000)}, kind=KIND)
    monkeypatch.undo()
    assert os.listdir(saved.parent) == [saved.name]
    assert pio.load(saved, kind=KIND)["text"] == "ünïcødé ∂u/∂t 🚀"


def test_save_overwrites_and_leaves_no_temp(saved):
    pio.save(str(saved), {"v": 2}, kind="other")
    assert os.listdir(saved.parent) == [saved.name]
    assert pio.load(saved) == {"v": 2}


# --------------------------------------------------------------------------
# hostile / damaged files
# --------------------------------------------------------------------------

def test_truncation_at_many_offsets(saved, tmp_path):
    data = saved.read_bytes()
    offsets = sorted(set(np.linspace(0, len(data) - 1, 50).astype(int).tolist())
                     | {0, 1, 7, 8, 31, 32, len(data) - 32, len(data) - 1})
    target = tmp_path / "trunc.pinn"
    for n in offsets:
        target.write_bytes(data[:n])
        with pytest.raises(FormatError):
            pio.load(target)
        with pytest.raises(FormatError):
            pio.loads(data[:n])


def test_truncation_message(saved):
    data = saved.read_bytes()
    with pytest.raises(FormatError, match="truncated"):
        pio.loads(data[:-1])
    with pytest.raises(FormatError, match="trailing"):
        pio.loads(data + b"\0")


def test_random_byte_flips_detected(saved):
    data = saved.read_bytes()
    rng = random.Random(1234)
    positions = rng.sample(range(len(data)), 60) + [8, 20, len(data) - 1]
    for pos in positions:
        bad = bytearray(data)
        bad[pos] ^= 1 << rng.randrange(8)
        with pytest.raises(FormatError):
            pio.loads(bytes(bad))


def test_flip_in_body_reports_corruption(saved):
    data = bytearray(saved.read_bytes())
    data[40] ^= 0xFF
    with pytest.raises(FormatError, match="corrupted"):
        pio.loads(bytes(data))


def test_bad_magic_and_empty(tmp_path):
    with pytest.raises(FormatError, match="magic"):
        pio.loads(b"PICKLE" + b"\0" * 100)
    p = tmp_path / "empty"
    p.write_bytes(b"")
    with pytest.raises(FormatError, match="empty"):
        pio.load(p)


def test_wrong_version(saved):
    data = bytearray(saved.read_bytes())
    struct.pack_into("<I", data, 8, 7)
    with pytest.raises(FormatError) as info:
        pio.loads(bytes(data))
    msg = str(info.value)
    assert "version 7" in msg and f"version {pio.FORMAT_VERSION}" in msg


def test_wrong_kind(saved):
    with pytest.raises(FormatError) as info:
        pio.load(saved, kind="pinncore.mlp")
    assert "pinncore.mlp" in str(info.value) and KIND in str(info.value)
    assert isinstance(info.value, ValueError)


def test_absurd_shape_with_valid_checksum_fails_fast():
    data = craft(crafted_tree(w=arr_node(shape=(10**15,), nbytes=8 * 10**15)), b"\0" * 16)
    start = time.perf_counter()
    with pytest.raises(FormatError, match="outside"):
        pio.loads(data)
    assert time.perf_counter() - start < 1.0
    # claimed nbytes inconsistent with the shape
    with pytest.raises(FormatError, match="nbytes"):
        pio.loads(craft(crafted_tree(w=arr_node(shape=(10**15,), nbytes=16)), b"\0" * 16))
    # overflowing shape, even for a zero-size array
    with pytest.raises(FormatError, match="absurd"):
        pio.loads(craft(crafted_tree(w=arr_node(shape=(0, 2**62, 2**62), nbytes=0))))


def test_absurd_data_length_in_fixed_header():
    data = craft(crafted_tree(), dlen=10**15)
    with pytest.raises(FormatError, match="truncated"):
        pio.loads(data)
    with pytest.raises(FormatError, match="exceeds"):
        pio.loads(craft(b"{}", jlen=2**40))


@pytest.mark.parametrize("dtype", ["O", "|O", "V8", "<U1", "<c16", "<f2", "|u1", ">f8", "float64",
                                   "<f16", 5, None])
def test_disallowed_dtype_strings(dtype):
    with pytest.raises(FormatError, match="dtype"):
        pio.loads(craft(crafted_tree(w=arr_node(dtype=dtype)), b"\0" * 16))


@pytest.mark.parametrize("node", [
    arr_node(shape=(-2,), nbytes=-16),
    arr_node(shape=(2.0,)),
    arr_node(shape=(True, 2)),
    arr_node(shape="2"),
    arr_node(offset=-1),
    arr_node(offset=1),
    arr_node(nbytes=15),
    arr_node(shape=[1] * 40, nbytes=8),
    {"t": "array", "dtype": "<f8", "shape": [2], "offset": 0},
    {"t": "array", "dtype": "<f8", "shape": [2], "offset": 0, "nbytes": 16, "extra": 1},
    {"t": "float", "v": "nan"},
    {"t": "float", "v": 1.5},
    {"t": "float", "v": "1.5"},
    {"t": "float", "v": "0x1.0p+99999"},
    {"t": "float", "v": "nan:3ff0000000000000"},
    {"t": "int", "v": 3},
    {"t": "int", "v": "03"},
    {"t": "int", "v": "9" * 5000},
    {"t": "bool", "v": 1},
    {"t": "str", "v": None},
    {"t": "set", "items": []},
    {"t": "dict", "items": [[1, {"t": "none"}]]},
    {"t": "dict", "items": [["a", {"t": "none"}], ["a", {"t": "none"}]]},
    {"t": "list", "items": {}},
    [],
    "x",
])
def test_malformed_nodes(node):
    with pytest.raises(FormatError):
        pio.loads(craft(crafted_tree(w=node), b"\0" * 16))


def test_overlap_gap_and_bool_bytes():
    two = arr_node(shape=(2,), nbytes=16)
    overlapping = crafted_tree(a=two, b=arr_node(shape=(2,), offset=8, nbytes=16))
    with pytest.raises(FormatError, match="overlap"):
        pio.loads(craft(overlapping, b"\0" * 24))
    with pytest.raises(FormatError, match="not covered"):
        pio.loads(craft(crafted_tree(a=two), b"\0" * 24))
    bools = crafted_tree(m=arr_node(dtype="|b1", shape=(2,), nbytes=2))
    with pytest.raises(FormatError, match="bool"):
        pio.loads(craft(bools, b"\x01\x02"))
    assert pio.loads(craft(bools, b"\x01\x00"))["m"].tolist() == [True, False]


def test_malformed_json_headers():
    bad_headers = [
        b"not json",
        b"\xff\xfe",
        b'{"kind": "k", "tree": {"t": "dict", "items": []}, "kind": "x"}',
        b'{"kind": "k", "tree": {"t": "dict", "items": [["a", {"t": "float", "v": NaN}]]}}',
        b'{"kind": "k", "tree": {"t": "list", "items": []}}',
        b'{"kind": 3, "tree": {"t": "dict", "items": []}}',
        b'{"kind": "k"}',
        b"[" * 100000 + b"]" * 100000,
        json.dumps(crafted_tree(a=nested_lists(pio.MAX_DEPTH + 5))).encode(),
    ]
    for header in bad_headers:
        with pytest.raises(FormatError):
            pio.loads(craft(header))


def nested_lists(depth):
    node = {"t": "list", "items": []}
    for _ in range(depth):
        node = {"t": "list", "items": [node]}
    return node


def test_nesting_limit():
    ok: dict = {}
    inner = ok
    for _ in range(pio.MAX_DEPTH - 2):  # array leaf ends up MAX_DEPTH levels down
        inner["d"] = {}
        inner = inner["d"]
    inner["x"] = [np.ones(1)]
    assert_same(ok, pio.loads(pio.dumps(ok, kind="k")))
    inner["x"] = [[1]]
    with pytest.raises(ValueError, match="deeper"):
        pio.dumps(ok, kind="k")
    with pytest.raises(FormatError, match="deeper"):
        pio.loads(craft(crafted_tree(a=nested_lists(pio.MAX_DEPTH + 5))))


def test_valid_crafted_file_loads():
    data = np.array([1.5, -2.0]).tobytes()
    back = pio.loads(craft(crafted_tree(w=arr_node(), n={"t": "none"}), data), kind=KIND)
    assert back["n"] is None
    np.testing.assert_array_equal(back["w"], [1.5, -2.0])


def test_missing_file_is_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        pio.load(tmp_path / "nope")


# --------------------------------------------------------------------------
# property-based round trip
# --------------------------------------------------------------------------

_DTYPES = [np.bool_, np.int32, np.int64, np.float32, np.float64]


@st.composite
def arrays(draw):
    dtype = np.dtype(draw(st.sampled_from(_DTYPES)))
    shape = tuple(draw(st.lists(st.integers(0, 4), max_size=3)))
    n = int(np.prod(shape)) * dtype.itemsize
    raw = draw(st.binary(min_size=n, max_size=n))
    a = np.frombuffer(raw, dtype=np.uint8).copy()
    if dtype == np.bool_:
        a &= 1
    a = a.view(dtype).reshape(shape)
    if draw(st.booleans()):
        a = np.asfortranarray(a)
    return a


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
    arrays(),
)
trees = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=6), children, max_size=4)),
    max_leaves=15,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=st.dictionaries(st.text(max_size=6), trees, max_size=5))
def test_hypothesis_round_trip(tmp_path_factory, tree):
    data = pio.dumps(tree, kind="k")
    assert_same(tree, pio.loads(data, kind="k"))
    path = tmp_path_factory.mktemp("rt") / "t.pinn"
    pio.save(path, tree, kind="k")
    back = pio.load(path)
    assert_same(tree, back)
    check_loaded_arrays(back)


# --------------------------------------------------------------------------
# special files (issue 23 #4): refused before they are opened for reading
# --------------------------------------------------------------------------

def _loaders():
    import pinncore as pc
    return {
        "io.load": lambda p: pio.load(p, kind=KIND),
        "load_state": pc.load_state,
        "MLP.load": pc.MLP.load,
        "Run(resume=)": lambda p: pc.Run(pc.problems.harmonic(), pc.MLP([1, 4, 1]), resume=p),
        "train(resume=)": lambda p: pc.train(pc.problems.harmonic(), pc.MLP([1, 4, 1]), steps=1, resume=p),
        "SweepResult.from_json": lambda p: pc.SweepResult.from_json(p),
        "check_regular_file": pio.check_regular_file,
    }


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo")
@pytest.mark.parametrize("loader", list(_loaders()))
@pytest.mark.parametrize("via_link", [False, True], ids=["fifo", "link-to-fifo"])
def test_fifo_is_refused_without_blocking(tmp_path, loader, via_link):
    """pc.load_state on a FIFO blocked forever in open(); every load refuses it at once."""
    fifo = tmp_path / "state.pcs"
    os.mkfifo(fifo)
    path = fifo
    if via_link:
        path = tmp_path / "link.pcs"
        os.symlink(fifo, path)
    t0 = time.monotonic()
    with pytest.raises(FormatError, match=r"is a FIFO \(named pipe\); pinncore loads only regular files"):
        _loaders()[loader](str(path))
    assert time.monotonic() - t0 < 5.0


@pytest.mark.parametrize("path, what", [("/dev/null", "character device"), ("/dev/zero", "character device"),
                                        (None, "directory")])
def test_devices_and_directories_are_refused(tmp_path, path, what):
    path = str(tmp_path) if path is None else path
    if not os.path.exists(path):
        pytest.skip(f"{path} does not exist here")
    with pytest.raises(FormatError, match=f"is a {what}"):
        pio.load(path)


def test_a_path_swapped_after_the_check_is_refused_on_the_descriptor(saved, tmp_path, monkeypatch):
    """The regular-file check runs again on the opened (non-blocking) descriptor."""
    if not hasattr(os, "mkfifo"):
        pytest.skip("needs os.mkfifo")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda p, flags, *a: real_open(str(fifo), flags, *a))
    with pytest.raises(FormatError, match="FIFO"):
        pio.load(saved)


# --------------------------------------------------------------------------
# declared sizes against allocation (issue 23 #6): checked before allocating,
# the checksum streamed; a property test over crafted headers
# --------------------------------------------------------------------------

def _traced_peak(fn):
    """(result or exception, peak bytes traced by tracemalloc while fn ran; NumPy reports its
    buffers to tracemalloc)."""
    import tracemalloc
    tracemalloc.start()
    try:
        try:
            out = fn()
        except Exception as exc:     # noqa: BLE001 - returned to the test
            out = exc
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_large_sparse_file_with_a_bad_checksum_is_streamed_not_allocated(tmp_path):
    """A valid header declaring a 256 MiB array over a sparse file of zeros: the checksum fails
    after streaming the data in chunks; the array is never allocated."""
    n = (256 << 20) // 8
    header = json.dumps(crafted_tree(a=arr_node(shape=(n,), nbytes=8 * n))).encode()
    path = tmp_path / "sparse.pinn"
    with open(path, "wb") as f:
        f.write(struct.pack("<8sIIQQ", b"PINNCORE", 1, 0, len(header), 8 * n) + header)
        f.truncate(32 + len(header) + 8 * n + 32)
    out, peak = _traced_peak(lambda: pio.load(path))
    assert isinstance(out, FormatError) and "checksum mismatch" in str(out)
    assert peak < 4 << 20, f"{peak} bytes traced for a file of {8 * n} data bytes"


def test_arrays_are_read_straight_into_their_buffers(tmp_path):
    """A valid 64 MiB array costs its own size once (not the file's bytes plus a copy)."""
    a = np.arange((64 << 20) // 8, dtype=np.float64)
    path = tmp_path / "big.pinn"
    pio.save(path, {"a": a, "b": np.ones(3, bool)}, kind=KIND)
    out, peak = _traced_peak(lambda: pio.load(path))
    assert np.array_equal(out["a"], a) and out["b"].tolist() == [True] * 3
    assert peak < a.nbytes + (4 << 20), f"{peak} bytes traced to load a {a.nbytes}-byte array"


def test_a_header_of_many_nodes_costs_a_few_times_its_size(tmp_path):
    """3 million scalar nodes in a 39 MB header took 913 MB as dicts (~300 bytes a node);
    decoded while parsing they cost a few times the header's bytes."""
    n = 200_000
    header = ('{"kind":"%s","tree":{"t":"dict","items":[["a",{"t":"list","items":[%s]}],["b",{"t":"list",'
              '"items":[%s]}]]}}' % (KIND, ",".join(['{"t":"none"}'] * n),
                                     ",".join(['{"t":"float","v":"0x1.8p+0"}'] * (n // 4)))).encode()
    path = tmp_path / "nodes.pinn"
    path.write_bytes(craft(header))
    out, peak = _traced_peak(lambda: pio.load(path, kind=KIND))
    assert not isinstance(out, Exception), out
    assert out["a"] == [None] * n and out["b"] == [1.5] * (n // 4)
    assert peak < 5 * path.stat().st_size, f"{peak} bytes traced for a {path.stat().st_size}-byte file"


def test_malformed_scalar_nodes_still_name_their_path():
    for node, fragment in [({"t": "int", "v": "1.5"}, "malformed int"), ({"t": "bool", "v": 1}, "bool value must be JSON true/false"),
                           ({"t": "float", "v": "nan:0000000000000000"}, "'nan:0000000000000000' is not a NaN bit pattern"),
                           ({"t": "str", "v": 3}, "str value must be a JSON string"),
                           ({"t": "none", "v": 1}, "malformed 'none' node"), ({"t": "int"}, "malformed 'int' node")]:
        with pytest.raises(FormatError, match=r"tree\['x'\]\[1\]: " + fragment):
            pio.loads(craft(crafted_tree(x={"t": "list", "items": [{"t": "none"}, node]})))


_DT = st.sampled_from(["<f8", "<f4", "<i8", "<i4", "|b1", "<f2", ">f8", 7])
_BIG = st.one_of(st.integers(0, 64), st.integers(0, 2 ** 63), st.sampled_from([2 ** 31, 2 ** 40, 9000 * 9000, -1]))


@st.composite
def _crafted_files(draw):
    """A file whose JSON header declares arrays of any shape, offset and size over a data
    section of any declared and real length, with a valid or broken digest."""
    arrays = draw(st.lists(st.tuples(_DT, st.lists(_BIG, max_size=3), _BIG, _BIG), max_size=4))
    items = [[f"a{i}", {"t": "array", "dtype": dt, "shape": shape, "offset": off, "nbytes": nb}]
             for i, (dt, shape, off, nb) in enumerate(arrays)]
    items += draw(st.lists(st.tuples(st.text(max_size=3), st.sampled_from(
        [{"t": "none"}, {"t": "int", "v": "9" * 5000}, {"t": "list", "items": [{"t": "none"}] * 50}])), max_size=2))
    header = json.dumps({"kind": KIND, "tree": {"t": "dict", "items": [list(kv) for kv in items]}}).encode()
    real = draw(st.integers(0, 4096))
    declared = draw(st.one_of(st.just(real), _BIG))
    jlen = draw(st.one_of(st.just(len(header)), _BIG))
    body = struct.pack("<8sIIQQ", b"PINNCORE", 1, 0, max(jlen, 0), min(max(declared, 0), 2 ** 64 - 1)) \
        + header + b"\0" * real
    digest = hashlib.sha256(body).digest() if draw(st.booleans()) else bytes(32)
    return body + digest


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_crafted_files())
def test_property_crafted_headers_never_allocate_more_than_the_file(tmp_path_factory, data):
    """Property: whatever sizes a header declares, load returns or raises FormatError, and the
    memory it takes stays within a small multiple of the file's real size."""
    path = tmp_path_factory.mktemp("crafted") / "f.pinn"
    path.write_bytes(data)
    out, peak = _traced_peak(lambda: pio.load(path, kind=KIND))
    assert not isinstance(out, Exception) or isinstance(out, FormatError), repr(out)
    assert peak < 4 * len(data) + (2 << 20), f"{peak} bytes traced for a {len(data)}-byte file"
