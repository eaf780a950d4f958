"""pinncore.state: a saved training state is validated field by field before a run is built
from it (issue 23 #7). The property test mutates one field of a real state, anywhere in it, to
a hostile value: a resume either runs or raises a ValueError/TypeError that names the field —
never a KeyError, a NumPy broadcast error or a failure inside the kernel's binding."""
import copy
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pinncore as pc
from pinncore.optim import MAX_STEP
from pinncore.state import HISTORY_COLUMNS, check_like, check_state

PROBLEM = pc.problems.harmonic(n_collocation=8)
SCHEMES = {"Fixed": pc.Fixed, "SelfAdaptive": pc.SelfAdaptive, "NTK": pc.NTK, "ReLoBRaLo": pc.ReLoBRaLo,
           "GradNorm": pc.GradNorm}
_STATES = {}


def saved_state(scheme):
    if scheme not in _STATES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = pc.train(PROBLEM, pc.MLP([1, 5, 1], seed=1), steps=4, log_every=2, weighting=SCHEMES[scheme](),
                         warn=False)
        _STATES[scheme] = r.state
    return copy.deepcopy(_STATES[scheme])


def resume(state):
    return pc.train(PROBLEM, None, steps=2, log_every=1, resume=state, warn=False)


def leaves(tree, path=()):
    """Every (path, value) of a nested dict/list state (arrays and scalars are leaves)."""
    if isinstance(tree, dict):
        yield path, tree
        for k, v in tree.items():
            yield from leaves(v, path + (k,))
    elif isinstance(tree, list):
        yield path, tree
        for i, v in enumerate(tree[:3]):
            yield from leaves(v, path + (i,))
    else:
        yield path, tree


HOSTILE = st.one_of(
    st.sampled_from([10 ** 30, -1, 2 ** 63, 2 ** 53 + 1, 10 ** 400, "3", "x", None, True, 1.5, float("nan"),
                     float("inf"), -1e308, [], {}, [1, 2], {"a": 1}]),
    st.integers(-10 ** 40, 10 ** 40), st.text(max_size=4),
    st.builds(lambda n, v: np.full(n, v), st.integers(0, 12), st.sampled_from([0.0, 1.0, np.nan, 1e308])),
    st.builds(lambda n: np.zeros(n, np.int64), st.integers(0, 12)))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scheme=st.sampled_from(sorted(SCHEMES)), pick=st.integers(0, 10 ** 6), value=HOSTILE, delete=st.booleans())
def test_property_any_state_field_runs_or_is_named(scheme, pick, value, delete):
    state = saved_state(scheme)
    paths = [p for p, _ in leaves(state) if p]
    path = paths[pick % len(paths)]
    parent = state
    for k in path[:-1]:
        parent = parent[k]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = resume(state)
    except (ValueError, TypeError) as e:
        assert "resume" in str(e), f"{path}: {type(e).__name__}: {e}"
        assert "incompatible function arguments" not in str(e)
        return
    assert r.status in ("completed", "diverged"), (path, r.status, r.message)
    assert r.step >= int(state["step"]) + (r.status == "completed") * 2 or r.status == "diverged"


@pytest.mark.parametrize("label, mutate, fragment", [
    ("step 10**30", lambda s: s.__setitem__("step", 10 ** 30), r"step must be an int in \[0, 2\*\*53\]"),
    ("string history", lambda s: s["history"].__setitem__("total_loss", ["x"] * len(s["history"]["step"])),
     r"history column 'total_loss' row 0 must be a number or None, got 'x'"),
    ("optimizer step 10**30", lambda s: s["optimizer"].__setitem__("step", 10 ** 30),
     r"int 'step' in \[0, 2\*\*53\], got step 10{30}"),
    ("missing wall_time", lambda s: s["history"].pop("wall_time"), r"history is missing column\(s\) \['wall_time'\]"),
    ("history steps beyond the state's", lambda s: s["history"]["step"].__setitem__(-1, 99),
     r"non-decreasing ints in \[0, 4\]"),
])
def test_the_reported_state_fields_are_named(label, mutate, fragment):
    state = saved_state("Fixed")
    mutate(state)
    with pytest.raises(ValueError, match=r"resume state: .*" + fragment):
        resume(state)
    with pytest.raises(ValueError, match=fragment):
        check_state(state)


@pytest.mark.parametrize("label, mutate, fragment", [
    ("wrong-length lambda", lambda w: w["lambda"].__setitem__("pde", np.ones(3)),
     r"state\['lambda'\]\['pde'\] must be a finite float array of shape \(8,\), got shape \(3,\)"),
    ("wrong-length m", lambda w: w["m"].__setitem__("ic", np.ones(4)), r"state\['m'\]\['ic'\] must be a finite float array"),
    ("string count", lambda w: w.__setitem__("count", "3"), r"state\['count'\] must be an int in \[0, 2\*\*53\], got '3'"),
    ("missing v", lambda w: w.pop("v"), r"state is missing 'v'"),
])
def test_selfadaptive_state_is_checked_against_a_fresh_one(label, mutate, fragment):
    state = saved_state("SelfAdaptive")
    mutate(state["weighting"]["state"])
    with pytest.raises(ValueError, match=r"resume state: the SelfAdaptive weighting state is invalid \(" + fragment):
        resume(state)


def test_a_valid_state_resumes_exactly():
    a = resume(saved_state("SelfAdaptive"))
    b = pc.train(PROBLEM, pc.MLP([1, 5, 1], seed=1), steps=6, log_every=2, weighting=pc.SelfAdaptive(), warn=False)
    assert a.status == "completed" and np.array_equal(a.net.params, b.net.params)


def test_check_like_rules():
    check_like({"a": 3, "b": 2, "c": np.ones(2), "d": "x", "e": False, "f": [1]}, {"a": 0, "b": 1.0, "c": np.zeros(2),
               "d": "y", "e": True, "f": None}, "s")
    for saved, fresh, fragment in [({"a": True}, {"a": 0}, "int"), ({"a": MAX_STEP + 1}, {"a": 0}, "int"),
                                   ({"a": 10 ** 400}, {"a": 1.0}, "finite number"), ({"a": np.ones(2, int)},
                                   {"a": np.ones(2)}, "float array"), ({"a": 1}, {"a": {"b": 1}}, "must be a dict")]:
        with pytest.raises(ValueError, match=fragment):
            check_like(saved, fresh, "s")
    assert set(HISTORY_COLUMNS) <= set(saved_state("Fixed")["history"])
