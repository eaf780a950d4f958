"""The web API (pinncore.web) against a real uvicorn server on a loopback port: start, stream,
result, cancel, sweep, every kind of bad request, the concurrency limit, abandoned streams,
the Host/Origin guards, and ``pinncore serve`` itself (Ctrl-C, the --host warning)."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("starlette", reason="the web tests need starlette: pip install 'pinncore[test]'")
pytest.importorskip("uvicorn", reason="the web tests need uvicorn: pip install 'pinncore[test]'")
httpx = pytest.importorskip("httpx", reason="the web tests need httpx: pip install 'pinncore[test]'")

import pinncore as pc  # noqa: E402
from pinncore import registry  # noqa: E402
from pinncore.web import spec as webspec  # noqa: E402

from _webserver import ServerThread, sse, wait_for  # noqa: E402

LONG = {"steps": 20000, "log_every": 50}          # a fit that runs for seconds unless cancelled


@pytest.fixture(scope="module")
def server():
    with ServerThread(max_fits=2, attach_timeout=2.0, grace=0.5) as s:
        yield s


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


def wait_idle(server, client):
    wait_for(lambda: client.get("api/status").json()["running"] == 0, 30, "the workers to be free")


def start(client, kind, body, expect=202):
    r = client.post(f"api/{kind}s", json=body)
    assert r.status_code == expect, r.text
    return r.json()


def stream(client, url):
    with client.stream("GET", url) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        return list(sse(r))


# ---------------------------------------------------------------------------- catalogue

def test_catalogue_lists_the_library(client):
    cat = client.get("api").json()
    # Every library problem the page can draw (1-D curves, 2-D heat maps).
    drawable = {n for n in pc.problems.REGISTRY if len(pc.problems.get(n).inputs) <= 2}
    assert set(cat["problems"]) == drawable and "heat_disk" not in drawable
    h = cat["problems"]["harmonic"]
    assert h["terms"] == ["pde", "ic"] and h["inputs"] == ["t"] and h["hard_constraint"] is True
    assert h["params"]["n_collocation"] == {"default": 50, "min": 2, "max": 2000, "type": "integer",
                                            "help": "collocation points"}
    assert cat["problems"]["helmholtz2d"]["terms"] == ["pde", "bc"]
    assert {"adam", "adam+lbfgs"} <= set(cat["optimizers"])
    assert ("lm" in cat["optimizers"]) == webspec.lm_available()
    assert set(cat["schemes"]) == set(registry.schemes.names()) | {"hard"}
    assert {"fixed", "gradnorm", "ntk", "selfadaptive", "relobralo", "balanced", "hard"} <= set(cat["schemes"])
    # Defaults come from the constructors' signatures (the page once advertised ρ = 0.999 and
    # mask "identity" where the classes default to 0.99 and "square").
    assert cat["schemes"]["relobralo"]["rho"]["default"] == pc.ReLoBRaLo().rho == 0.99
    assert cat["schemes"]["selfadaptive"]["mask"]["default"] == pc.SelfAdaptive().mask == "square"
    for spec in registry.optimizers.specs():
        assert spec.name in cat["optimizers"]
        if spec.flags["follows"]:
            assert f"adam+{spec.name}" in cat["optimizers"]
    assert cat["verdict"] == {"clean": 0.05, "wrong": 0.30}


def test_page_and_static_files(client):
    page = client.get("")
    assert page.status_code == 200 and "Loss Weight Tuner" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for name, ctype in (("app.js", "javascript"), ("style.css", "text/css")):
        r = client.get(f"static/{name}")
        assert r.status_code == 200 and ctype in r.headers["content-type"]
    assert "http://" not in page.text and "https://" not in page.text    # nothing fetched from elsewhere
    assert client.get("static/nope.js").status_code == 404


# ---------------------------------------------------------------------------- a fit

def test_fit_streams_every_row_and_matches_train(server, client):
    body = {"problem": "harmonic", "weights": {"ic": 100.0}, "steps": 600, "log_every": 100, "seed": 3,
            "widths": [20, 20]}
    links = start(client, "fit", body)
    events = stream(client, links["events"])
    names = [e for e, _, _ in events]
    assert names == ["log"] * 7 + ["end"]
    assert [int(i) for _, _, i in events] == list(range(1, 9))
    rows = [d for e, d, _ in events if e == "log"]
    end = events[-1][1]
    # The same fit in this process: the server runs exactly pc.train.
    ref = pc.train(pc.problems.harmonic(), pc.MLP([1, 20, 20, 1], seed=3), weighting=pc.Fixed({"ic": 100.0}),
                   steps=600, log_every=100, seed=3, warn=False)
    assert [r["step"] for r in rows] == ref.history["step"].astype(int).tolist()
    for key in ("pde_loss", "ic_loss", "pde_grad_norm", "ic_grad_norm", "ic_weight", "rel_l2"):
        assert [r[key] for r in rows] == ref.history[key].tolist(), key
    assert end["status"] == "completed" and end["step"] == 600
    assert end["rel_l2"] == ref.rel_l2 and end["verdict"] == webspec.verdict(ref.rel_l2)
    assert end["weights"] == {"pde": 1.0, "ic": 100.0}
    first = rows[0]
    ratio = max(first["pde_grad_norm"], 100 * first["ic_grad_norm"]) / min(first["pde_grad_norm"],
                                                                          100 * first["ic_grad_norm"])
    assert end["ratio0"] == pytest.approx(ratio, rel=1e-12) and end["crisis"] == (ratio > 100)

    sol = client.get(links["solution"]).json()
    t = np.linspace(0.0, 1.0, 201)
    assert sol["inputs"] == ["t"] and sol["shape"] == [201]
    np.testing.assert_array_equal(sol["axes"]["t"], t)
    np.testing.assert_allclose(sol["exact"], np.cos(2 * np.pi * t), rtol=0, atol=1e-15)
    np.testing.assert_allclose(sol["prediction"], pc.problems.harmonic().predict(ref.net, t[:, None])[:, 0],
                               rtol=0, atol=1e-13)
    state = client.get(links["state"]).json()
    assert state["status"] == "completed" and len(state["rows"]) == 7 and "solution" not in state["summary"]
    # A late stream replays everything; Last-Event-ID resumes after the given event.
    assert [e for e, _, _ in stream(client, links["events"])] == names
    with client.stream("GET", links["events"], headers={"Last-Event-ID": "6"}) as r:
        assert [(e, int(i)) for e, _, i in sse(r)] == [("log", 7), ("end", 8)]


def test_wrong_steady_state_and_a_crisis(client):
    """λ_ic = 1 on the seed problem: the step-0 crisis (ratio > 1e2) and u ≈ 0."""
    links = start(client, "fit", {"weights": {"ic": 1.0}, "steps": 2000})
    end = stream(client, links["events"])[-1][1]
    assert end["crisis"] is True and end["ratio0"] > 1e2 and end["ratio0_terms"] == ["pde", "ic"]
    assert end["rel_l2"] >= 0.3 and end["verdict"] == "wrong steady state"


def test_two_dimensional_solution_grid(client):
    links = start(client, "fit", {"problem": "helmholtz2d", "scheme": "ntk", "steps": 20, "widths": [16],
                                  "problem_params": {"n_collocation": 100, "n_bc": 40}, "grid": 9})
    end = stream(client, links["events"])[-1][1]
    assert end["status"] == "completed"
    sol = client.get(links["solution"]).json()
    assert sol["inputs"] == ["x", "y"] and sol["shape"] == [9, 9] and len(sol["prediction"]) == 81
    x, y = np.meshgrid(np.linspace(-1, 1, 9), np.linspace(-1, 1, 9), indexing="ij")
    np.testing.assert_allclose(sol["exact"], (np.sin(np.pi * x) * np.sin(4 * np.pi * y)).ravel(), atol=1e-15)


def test_points_outside_a_geometry_are_null(client):
    links = start(client, "fit", {"problem": "poisson_holes", "steps": 5, "widths": [8],
                                  "problem_params": {"n_collocation": 64, "n_bc": 32}, "grid": 21})
    assert stream(client, links["events"])[-1][1]["status"] == "completed"
    sol = client.get(links["solution"]).json()
    x, y = np.meshgrid(np.linspace(-1, 1, 21), np.linspace(-1, 1, 21), indexing="ij")
    inside = pc.problems.poisson_holes_geometry().inside(np.column_stack([x.ravel(), y.ravel()]))
    assert [v is None for v in sol["prediction"]] == [not i for i in inside] and 0 < inside.sum() < 441
    exact = np.array([np.nan if v is None else v for v in sol["exact"]])
    np.testing.assert_allclose(exact[inside], (np.sin(np.pi * x) * np.sin(np.pi * y)).ravel()[inside], atol=1e-15)


def test_hard_constraint_and_two_phase_optimizer(client):
    links = start(client, "fit", {"scheme": "hard", "optimizer": "adam+lbfgs", "steps": 300, "second_steps": 20,
                                  "log_every": 100})
    events = stream(client, links["events"])
    rows = [d for e, d, _ in events if e == "log"]
    assert set(rows[0]) >= {"pde_loss", "pde_grad_norm", "pde_weight"} and "ic_loss" not in rows[0]
    assert rows[-1]["phase"] == "lbfgs" and rows[-1]["step"] > 300
    end = events[-1][1]
    assert end["status"] == "completed" and end["ratio0"] is None and end["crisis"] is False
    sol = client.get(links["solution"]).json()
    assert sol["prediction"][0] == pytest.approx(1.0, abs=1e-12)          # u(0) = 1 exactly


@pytest.mark.skipif(not webspec.lm_available(), reason="this pinncore has no Levenberg–Marquardt")
def test_levenberg_marquardt_fit_cures_the_crisis(client):
    """LM from scratch at λ_ic = 1 (where Adam finds u ≈ 0) fits cleanly: the run pc.train makes, row by row."""
    links = start(client, "fit", {"optimizer": "lm", "steps": 40, "weights": {"ic": 1.0}, "widths": [20, 20]})
    events = stream(client, links["events"])
    rows = [d for e, d, _ in events if e == "log"]
    ref = pc.train(pc.problems.harmonic(), pc.MLP([1, 20, 20, 1], seed=0), weighting=pc.Fixed({"ic": 1.0}),
                   optimizer="lm", steps=40, warn=False)
    assert {r["phase"] for r in rows} == {"lm"}
    assert [r["step"] for r in rows] == ref.history["step"].astype(int).tolist()
    assert [r["total_loss"] for r in rows] == ref.history["total_loss"].tolist()
    end = events[-1][1]
    assert end["rel_l2"] == ref.rel_l2 and end["verdict"] == "clean"


def test_cancel_stops_a_running_fit(server, client):
    links = start(client, "fit", LONG)
    with client.stream("GET", links["events"]) as r:
        events = sse(r)
        assert next(events)[0] == "log"
        t0 = time.monotonic()
        assert client.post(links["cancel"], json={}).json()["status"] == "cancelling"
        rest = list(events)
    assert time.monotonic() - t0 < 5
    end = rest[-1][1]
    assert rest[-1][0] == "end" and end["status"] == "cancelled" and end["step"] < LONG["steps"]
    assert client.get(links["solution"]).status_code == 200       # the parameters it reached
    wait_idle(server, client)
    assert client.post(links["cancel"], json={}).json()["status"] == "cancelled"   # idempotent


def test_abandoned_stream_cancels_the_fit(server, client):
    links = start(client, "fit", LONG)
    with client.stream("GET", links["events"]) as r:
        assert next(sse(r))[0] == "log"
    # The stream closed; after the grace period (0.5 s here) the fit is cancelled.
    state = wait_for(lambda: (s := client.get(links["state"]).json())["status"] != "running" and s, 10,
                     "the abandoned fit to stop")
    assert state["status"] == "cancelled" and state["summary"]["step"] < LONG["steps"]
    wait_idle(server, client)


def test_a_fit_nobody_watches_is_cancelled(server, client):
    links = start(client, "fit", LONG)
    state = wait_for(lambda: (s := client.get(links["state"]).json())["status"] != "running" and s, 15,
                     "the unwatched fit to stop")
    assert state["status"] == "cancelled"
    wait_idle(server, client)


def test_concurrency_limit_answers_429(server, client):
    wait_idle(server, client)
    a, b = start(client, "fit", LONG), start(client, "fit", LONG)
    r = client.post("api/fits", json={"steps": 10})
    assert r.status_code == 429 and r.headers["retry-after"] == "1"
    assert "2 fits at once" in r.json()["error"]
    assert client.post("api/sweeps", json={"term": "ic", "lambdas": [1.0]}).status_code == 429
    for links in (a, b):
        client.post(links["cancel"], json={})
    wait_idle(server, client)
    c = start(client, "fit", {"steps": 10})
    assert stream(client, c["events"])[-1][1]["status"] == "completed"


def test_a_worker_that_dies_fails_its_fit_and_is_replaced(server, client):
    wait_idle(server, client)
    links = start(client, "fit", LONG)
    with client.stream("GET", links["events"]) as r:
        events = sse(r)
        assert next(events)[0] == "log"
        worker = server.manager.jobs[links["id"]].workers[0]
        os.kill(worker.process.pid, signal.SIGKILL)
        rest = list(events)
    end = rest[-1][1]
    assert rest[-1][0] == "end" and end["status"] == "failed" and "died" in end["message"]
    wait_for(lambda: client.get("api/status").json()["workers_ready"] == server.max_fits, 60,
             "a fresh worker to replace the dead one")
    fresh = start(client, "fit", {"steps": 10})
    assert stream(client, fresh["events"])[-1][1]["status"] == "completed"


# ---------------------------------------------------------------------------- a sweep

def test_sweep_streams_every_point(server, client):
    wait_idle(server, client)
    body = {"term": "ic", "lambdas": [1.0, 100.0], "seeds": [0, 1], "optimizers": ["adam", "adam+lbfgs"],
            "steps": 300, "widths": [16, 16]}
    links = start(client, "sweep", body)
    assert links["tasks"] == 8 and "solution" not in links
    events = stream(client, links["events"])
    points = [d for e, d, _ in events if e == "point"]
    assert len(points) == 8 and events[-1][0] == "end"
    assert sorted((p["lambda"], p["optimizer"], p["seed"]) for p in points) == sorted(
        (lam, opt, s) for lam in (1.0, 100.0) for opt in ("adam", "adam+lbfgs") for s in (0, 1))
    assert all(p["status"] == "completed" for p in points)
    # Every point is the fit the sweep names.
    p = next(p for p in points if p["lambda"] == 100.0 and p["seed"] == 1 and p["optimizer"] == "adam")
    ref = pc.train(pc.problems.harmonic(), pc.MLP([1, 16, 16, 1], seed=1), weighting=pc.Fixed({"ic": 100.0}),
                   steps=300, log_every=15, seed=1, warn=False)
    assert p["rel_l2"] == ref.rel_l2 and p["verdict"] == webspec.verdict(ref.rel_l2)
    end = events[-1][1]
    assert end["status"] == "completed" and end["points"] == 8 and end["requested"] == 8
    for opt in ("adam", "adam+lbfgs"):
        curve = end["curves"][opt]
        assert curve["lambdas"] == [1.0, 100.0]
        for lam, med in zip(curve["lambdas"], curve["median_rel_l2"]):
            errs = [q["rel_l2"] for q in points if q["optimizer"] == opt and q["lambda"] == lam]
            assert med == pytest.approx(float(np.median(errs)), rel=1e-15)
    assert len(client.get(links["state"]).json()["points"]) == 8


def test_sweep_steps_per_optimizer(server, client):
    wait_idle(server, client)
    links = start(client, "sweep", {"term": "ic", "lambdas": [10.0], "steps": 300, "widths": [8],
                                    "optimizers": ["adam", "adam+lbfgs"],
                                    "optimizer_steps": {"adam+lbfgs": 40}, "second_steps": 5})
    assert links["spec"]["optimizer_steps"] == {"adam": 300, "adam+lbfgs": 40}
    points = {p["optimizer"]: p for e, p, _ in stream(client, links["events"]) if e == "point"}
    assert points["adam"]["step"] == 300 and 40 < points["adam+lbfgs"]["step"] <= 45


def test_sweep_cancel(server, client):
    wait_idle(server, client)
    links = start(client, "sweep", {"term": "ic", "log10": {"lo": -3, "hi": 5, "n": 9}, "steps": 5000,
                                    "seeds": [0, 1]})
    with client.stream("GET", links["events"]) as r:
        events = sse(r)
        client.post(links["cancel"], json={})
        rest = list(events)
    end = rest[-1][1]
    assert end["status"] == "cancelled" and end["points"] < 18 and end["requested"] == 18
    wait_idle(server, client)


# ---------------------------------------------------------------------------- bad requests

BAD_FITS = [
    ({"steps": 0}, "steps"), ({"steps": 20001}, "steps"), ({"steps": "100"}, "steps"), ({"steps": True}, "steps"),
    ({"steps": 1.5}, "steps"), ({"problem": "nope"}, "problem"), ({"problem": 3}, "problem"),
    ({"problem": "heat_disk"}, "problem"),
    ({"problem": "poisson_holes", "problem_params": {"hole_bc": "robin"}}, "problem_params.hole_bc"),
    ({"bogus": 1}, "bogus"), ({"problem_params": {"omega": 1e9}}, "problem_params.omega"),
    ({"problem_params": {"n_collocation": 4000}}, "problem_params.n_collocation"),
    ({"problem_params": {"hard_constraint": True}}, "problem_params.hard_constraint"),
    ({"problem_params": []}, "problem_params"),
    ({"problem": "burgers", "problem_params": {"n_collocation": 4000, "n_ic": 1000, "n_bc": 1000}}, "problem_params"),
    ({"scheme": "magic"}, "scheme"), ({"scheme": "hard", "problem": "poisson1d"}, "scheme"),
    ({"scheme": "ntk", "weights": {"ic": 2.0}}, "weights"), ({"weights": {"bc": 1.0}}, "weights.bc"),
    ({"weights": {"ic": -1.0}}, "weights.ic"), ({"weights": {"ic": 1e9}}, "weights.ic"),
    ({"weights": {"ic": "1"}}, "weights.ic"), ({"scheme_params": {"every": 5}}, "scheme_params.every"),
    ({"scheme": "ntk", "scheme_params": {"every": 0}}, "scheme_params.every"),
    ({"scheme": "gradnorm", "scheme_params": {"mode": "wild"}}, "scheme_params.mode"),
    ({"optimizer": "sgd"}, "optimizer"), ({"second_steps": 5}, "second_steps"),
    ({"optimizer": "adam+lbfgs", "second_steps": 5000}, "second_steps"),
    ({"lr": 0}, "lr"), ({"lr": 2.0}, "lr"), ({"widths": []}, "widths"), ({"widths": "50"}, "widths"),
    ({"widths": [129]}, "widths[0]"), ({"widths": [50, 0]}, "widths[1]"), ({"widths": [8] * 6}, "widths"),
    ({"seed": -1}, "seed"), ({"log_every": 0}, "log_every"), ({"steps": 20000, "log_every": 1}, "log_every"),
    ({"grid": 1}, "grid"), ({"grid": 5000}, "grid"), ({"problem": "helmholtz2d", "grid": 200}, "grid"),
    ({"problem": "burgers", "steps": 20000}, "steps"),
    # Within the step and point-step bounds, but ~15 minutes of work on wide layers (issue 23).
    ({"steps": 20000, "widths": [128] * 5, "problem_params": {"n_collocation": 998}}, "steps"),
    ({"problem": "helmholtz2d", "steps": 8000, "widths": [128] * 3, "problem_params": {"n_collocation": 2000}}, "steps"),
    ([], "body"), ("x", "body"), (None, "body"), (7, "body"),
]
BAD_SWEEPS = [
    ({"lambdas": [1.0]}, "term"), ({"term": "zz", "lambdas": [1.0]}, "term"), ({"term": "ic"}, "log10"),
    ({"term": "ic", "lambdas": [1.0], "log10": {"lo": 0, "hi": 1, "n": 2}}, "log10"),
    ({"term": "ic", "log10": {"lo": -3, "hi": 5}}, "log10.n"), ({"term": "ic", "log10": {"lo": -3, "hi": 5, "n": 34}}, "log10.n"),
    ({"term": "ic", "log10": {"lo": 3, "hi": 1, "n": 3}}, "log10.hi"), ({"term": "ic", "log10": {"lo": -9, "hi": 1, "n": 3}}, "log10.lo"),
    ({"term": "ic", "log10": {"lo": 0, "hi": 1, "n": 3, "x": 1}}, "log10.x"),
    ({"term": "ic", "lambdas": []}, "lambdas"), ({"term": "ic", "lambdas": [-1.0]}, "lambdas[0]"),
    ({"term": "ic", "lambdas": [1.0], "seeds": [0, 0]}, "seeds"), ({"term": "ic", "lambdas": [1.0], "seeds": list(range(6))}, "seeds"),
    ({"term": "ic", "lambdas": [1.0], "seeds": ["a"]}, "seeds[0]"),
    ({"term": "ic", "lambdas": [1.0], "optimizers": ["adam", "adam"]}, "optimizers"),
    ({"term": "ic", "lambdas": [1.0], "optimizers": ["bogus"]}, "optimizers[0]"),
    ({"term": "ic", "lambdas": [1.0], "optimizers": [3]}, "optimizers[0]"),
    ({"term": "ic", "lambdas": [1.0], "scheme": "ntk"}, "scheme"), ({"term": "ic", "lambdas": [1.0], "steps": 6000}, "steps"),
    ({"term": "ic", "log10": {"lo": -3, "hi": 5, "n": 33}, "seeds": [0, 1, 2, 3, 4]}, "lambdas"),
    ({"term": "ic", "lambdas": [1.0], "grid": 5}, "grid"),
    ({"term": "ic", "lambdas": [1.0], "optimizer_steps": {"adam+lbfgs": 5}}, "optimizer_steps.adam+lbfgs"),
    ({"term": "ic", "lambdas": [1.0], "optimizer_steps": {"adam": 0}}, "optimizer_steps.adam"),
    ({"term": "ic", "lambdas": [1.0], "optimizer_steps": [1]}, "optimizer_steps"),
]
if not webspec.lm_available():
    BAD_FITS.append(({"optimizer": "lm"}, "optimizer"))
    BAD_SWEEPS.append(({"term": "ic", "lambdas": [1.0], "optimizers": ["adam", "lm"]}, "optimizers[1]"))
else:
    BAD_FITS += [({"optimizer": "lm", "problem": "burgers"}, "optimizer"), ({"optimizer": "lm", "steps": 2001}, "steps"),
                 # 399 LM iterations on 1000 points and 33 409 parameters: N·P² per iteration (issue 23)
                 ({"optimizer": "lm", "steps": 399, "widths": [128] * 3, "problem_params": {"n_collocation": 998}},
                  "steps")]
    BAD_SWEEPS.append(({"problem": "heat1d", "term": "ic", "lambdas": [1.0], "optimizers": ["adam", "lm"]},
                       "optimizers"))


@pytest.mark.parametrize("body,field", BAD_FITS, ids=[json.dumps(b)[:60] for b, _ in BAD_FITS])
def test_bad_fit_request_names_the_field(client, body, field):
    r = client.post("api/fits", content=json.dumps(body), headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field and r.json()["error"]


@pytest.mark.parametrize("body,field", BAD_SWEEPS, ids=[json.dumps(b)[:60] for b, _ in BAD_SWEEPS])
def test_bad_sweep_request_names_the_field(client, body, field):
    r = client.post("api/sweeps", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field


@pytest.mark.parametrize("content,ctype,status", [
    (b"{", "application/json", 400), (b'{"steps": NaN}', "application/json", 400),
    (b'{"steps": Infinity}', "application/json", 400), (b"\xff\xfe", "application/json", 400),
    (b"[" * 5000 + b"]" * 5000, "application/json", 400), (b'{"steps": 10}', "text/plain", 415),
    (b'{"steps": 10}', None, 415), (b" " * 17000, "application/json", 413),
], ids=["truncated", "nan", "infinity", "not-utf8", "deep", "text-plain", "no-type", "too-large"])
def test_malformed_bodies(client, content, ctype, status):
    headers = {} if ctype is None else {"Content-Type": ctype}
    r = client.post("api/fits", content=content, headers=headers)
    assert r.status_code == status, r.text
    assert r.json()["error"]


def test_body_limit_without_content_length(client):
    """A chunked body (no Content-Length) is cut off at the limit too."""
    def chunks():
        for _ in range(40):
            yield b" " * 1024
    r = client.post("api/fits", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "larger than" in r.json()["error"]


JSON = st.recursive(st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats(allow_nan=False)
                    | st.text(max_size=8), lambda kids: st.lists(kids, max_size=4) | st.dictionaries(
                        st.text(max_size=8), kids, max_size=4), max_leaves=12)
FIELDS = sorted(webspec._SWEEP_FIELDS | webspec._FIT_FIELDS)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(["fits", "sweeps"]),
       body=st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=6), JSON, max_size=6) | JSON)
def test_random_bodies_never_get_5xx(server, client, kind, body):
    r = client.post(f"api/{kind}", content=json.dumps(body), headers={"Content-Type": "application/json"})
    assert r.status_code in (202, 400, 429), r.text
    assert isinstance(r.json()["id" if r.status_code == 202 else "error"], str)
    if r.status_code == 202:
        client.post(r.json()["cancel"], json={})


HEADER_BYTES = [bytes([b]) for b in [*range(0x21, 0x7F), *range(0x80, 0x100)]]


@pytest.fixture(scope="module")
def finished_fit(server, client):
    links = start(client, "fit", {"steps": 20, "log_every": 10, "widths": [4]})
    assert [e for e, _, _ in stream(client, links["events"])] == ["log", "log", "log", "end"]
    return links


@pytest.mark.parametrize("value", [b"\xb2", b"9" * 5000, b"-1", b"+2", b"1e3", b"0x2", b"\xb9\xb2", b"9" * 20, b"0" * 30 + b"3"],
                         ids=["superscript-2", "5000-digits", "negative", "plus", "exponent", "hex", "superscripts",
                              "20-digits", "leading-zeros"])
def test_last_event_id_never_gives_5xx(client, finished_fit, value):
    """Issue 23: 'Last-Event-ID: ²' (byte 0xB2, which str.isdigit accepts) or a 5000-digit value
    gave 500; any value that is not a plain event id is ignored (the stream replays everything)."""
    with client.stream("GET", finished_fit["events"], headers={"Last-Event-ID": value}) as r:
        assert r.status_code == 200
        assert [int(i) for _, _, i in sse(r)] == ([4] if value.endswith(b"03") else [1, 2, 3, 4])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(value=st.lists(st.sampled_from(HEADER_BYTES) | st.sampled_from([b"0", b"3", b"9", b"\xb2", b"\xb3", b"\xb9"]),
                     min_size=1, max_size=40).map(b"".join)
       | st.integers(0, 10 ** 60).map(lambda n: str(n).encode()))
def test_any_last_event_id_header_is_answered(client, finished_fit, value):
    """Property (issue 23): every header value a client can send gives 200 with the stream from
    a valid position — resumed after the id when it is one, replayed from the start otherwise."""
    with client.stream("GET", finished_fit["events"], headers={"Last-Event-ID": value}) as r:
        assert r.status_code == 200
        ids = [int(i) for _, _, i in sse(r)]
    k = int(value) if value.isdigit() and int(value) <= 4 else 0
    assert ids == list(range(k + 1, 5))


HEADER_VALUE = st.one_of(st.lists(st.sampled_from(HEADER_BYTES), min_size=1, max_size=30).map(b"".join),
                        st.sampled_from([b"\xb2", b"9" * 5000, b"application/json", b"http://127.0.0.1",
                                         b"cross-site", b"-1", b"application/json; charset=\xff"]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(headers=st.dictionaries(st.sampled_from(["Origin", "Sec-Fetch-Site", "Content-Type", "Last-Event-ID", "Host",
                                                "Accept", "Cookie", "Transfer-Encoding-Hint", "X-Forwarded-For"]),
                               HEADER_VALUE, max_size=4),
       path=st.sampled_from(["api", "api/status", "api/fits", "api/fits/nope/events", "api/sweeps/nope"]))
def test_property_any_header_values_never_give_5xx(server, client, headers, path):
    """Property (issue 23): whatever values the guarded headers carry, every route answers
    below 500 (the server's own checks, not a traceback)."""
    if path == "api/fits":
        r = client.post(path, content=b'{"steps": 5, "widths": [4]}', headers=headers)
    else:
        r = client.get(path, headers=headers)
    assert r.status_code < 500, (headers, r.status_code, r.text[:200])
    if r.status_code == 202:
        client.post(r.json()["cancel"], json={}, headers={"Host": server.url.split("/")[2]})


@settings(max_examples=200, deadline=None)
@given(problem=st.sampled_from(sorted(webspec.PROBLEMS)), optimizer=st.sampled_from(sorted(webspec.optimizers())),
       steps=st.integers(1, 20000), second=st.integers(0, 2000),
       widths=st.lists(st.integers(1, 128), min_size=1, max_size=5), n=st.integers(2, 4000))
def test_admitted_fits_are_bounded_by_their_flops(problem, optimizer, steps, second, widths, n):
    """Property (issue 23): whatever a body asks, an admitted fit's estimated flops (steps ×
    points × streams × Σ n_in·n_out, and N·P² per LM iteration) stay within LIMITS["flops"];
    a refusal names a field."""
    body = {"problem": problem, "optimizer": optimizer, "steps": steps, "widths": widths,
            "problem_params": {"n_collocation": n}}
    if "+" in optimizer:
        body["second_steps"] = second
    try:
        s = webspec.fit_spec(body)
    except webspec.SpecError as e:
        assert e.field and str(e)
        return
    layers = [s["n_inputs"], *widths, 1]
    streams = max(1 + len(lt.first) + len(lt.pairs) for lt in pc.problems.get(problem).lowering.terms)
    flops = webspec.estimated_flops(optimizer, steps, s["second_steps"], s["n_points"], layers, streams)
    assert flops <= webspec.LIMITS["flops"]


def test_flops_refusal_says_what_to_change():
    with pytest.raises(webspec.SpecError, match=r"floating-point operations .*fewer steps or points or narrower") as e:
        webspec.fit_spec({"steps": 20000, "widths": [128] * 5, "problem_params": {"n_collocation": 998}})
    assert e.value.field == "steps"
    with pytest.raises(webspec.SpecError, match="sweep's fits would take about .* floating-point operations") as e:
        webspec.sweep_spec({"term": "ic", "lambdas": [1.0, 2.0, 3.0, 4.0], "seeds": [0, 1, 2, 3, 4], "steps": 5000,
                            "widths": [128] * 5, "problem_params": {"n_collocation": 400}})
    assert e.value.field == "steps"


def test_every_default_request_is_admitted():
    """The flops bound leaves every problem's default request (each optimizer) admitted."""
    for name, entry in webspec.PROBLEMS.items():
        for opt in webspec.optimizers():
            if "lm" in opt and sum(entry["params"][k].default for k in entry["points"]) > webspec.LIMITS["lm_points"]:
                continue
            webspec.fit_spec({"problem": name, "optimizer": opt})


def test_unknown_things_are_4xx(client):
    assert client.get("api/fits/nope").status_code == 404
    assert client.get("api/fits/nope/events").status_code == 404
    assert client.post("api/sweeps/nope/cancel", json={}).status_code == 404
    assert client.get("api/nothing").status_code == 404
    assert client.get("api/fits").status_code == 405
    assert client.delete("api/fits/x").status_code == 405
    sweep = start(client, "sweep", {"term": "ic", "lambdas": [1.0], "steps": 10})
    assert client.get(f"api/fits/{sweep['id']}").status_code == 404       # a sweep is not a fit
    stream(client, sweep["events"])


def test_solution_of_a_running_fit_is_409(server, client):
    wait_idle(server, client)
    links = start(client, "fit", LONG)
    assert client.get(links["solution"]).status_code == 409
    client.post(links["cancel"], json={})
    wait_idle(server, client)


# ---------------------------------------------------------------------------- Host and Origin

def test_foreign_host_is_refused(server, client):
    for path in ("", "api", "api/status"):
        r = client.get(path, headers={"Host": f"evil.example:{server.port}"})
        assert r.status_code == 403 and r.json()["field"] == "Host"
    r = client.post("api/fits", json={"steps": 10}, headers={"Host": "evil.example"})
    assert r.status_code == 403
    assert client.get("api", headers={"Host": f"127.0.0.1:{server.port + 1}"}).status_code == 403
    assert client.get("api", headers={"Host": f"localhost:{server.port}"}).status_code == 200
    assert client.get("api", headers={"Host": f"[::1]:{server.port}"}).status_code == 200


@pytest.mark.parametrize("headers", [
    {"Origin": "http://evil.example"}, {"Origin": "null"}, {"Origin": "https://127.0.0.1:1"},
    {"Sec-Fetch-Site": "cross-site"},
], ids=["foreign", "null", "other-port", "sec-fetch-site"])
def test_cross_origin_post_is_refused(client, headers):
    r = client.post("api/fits", json={"steps": 10}, headers=headers)
    assert r.status_code == 403 and r.json()["field"] == "Origin"


def test_same_origin_post_is_accepted(server, client):
    wait_idle(server, client)
    r = client.post("api/fits", json={"steps": 10}, headers={"Origin": server.url.rstrip("/"),
                                                            "Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 202, r.text
    links = r.json()
    assert stream(client, links["events"])[-1][1]["status"] == "completed"


def test_host_rules_of_a_wildcard_bind():
    """Bound to every interface, the server answers IP literals and this machine's names on its
    port — never another domain name (what a DNS-rebinding page would send)."""
    from pinncore.web.app import _host_ok, _origin_ok, allowed_hosts

    allowed = allowed_hosts("0.0.0.0", 8765)
    for host in ("192.0.2.7:8765", "127.0.0.1:8765", "[::1]:8765", "localhost:8765", f"{socket.gethostname()}:8765"):
        assert _host_ok(host, allowed, True, 8765), host
    for host in ("evil.example:8765", "192.0.2.7:8766", "192.0.2.7", "", "[::1]"):
        assert not _host_ok(host, allowed, True, 8765), host
    assert _origin_ok("http://192.0.2.7:8765", allowed, True, 8765)
    assert not _origin_ok("https://192.0.2.7:8765", allowed, True, 8765)
    assert not _origin_ok("http://evil.example:8765", allowed, True, 8765)
    loop = allowed_hosts("127.0.0.1", 80)
    assert _host_ok("localhost", loop, False, 80) and not _host_ok("192.0.2.7", loop, False, 80)


def test_foreign_origin_get_is_refused(client):
    assert client.get("api", headers={"Origin": "http://evil.example"}).status_code == 403


# ---------------------------------------------------------------------------- pinncore serve

def _serve(*args):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "pinncore", "serve", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=os.path.dirname(os.path.abspath(__file__)))


def test_serve_command_runs_and_stops_on_ctrl_c():
    """Ctrl-C with a fit running and its stream open: the stream gets ``shutdown``, the
    command says it stopped and exits 0, no traceback."""
    proc = _serve("--port", "0", "--host", "127.0.0.2", "--max-fits", "1")
    try:
        line = proc.stdout.readline()
        assert "the Loss Weight Tuner at http://127.0.0.2:" in line, line + proc.stderr.read()
        url = line.split(" at ")[1].split()[0]
        r = wait_for(lambda: _get(url + "api/status"), 60, "the served page")
        assert r.json()["max_fits"] == 1
        port = url.rsplit(":", 1)[1].strip("/")
        assert httpx.get(url + "api", headers={"Host": f"127.0.0.1:{port}"}).status_code == 403
        with httpx.Client(base_url=url, timeout=30) as c:
            links = start(c, "fit", LONG)
            with c.stream("GET", links["events"]) as s:
                events = sse(s)
                assert next(events)[0] == "log"
                proc.send_signal(signal.SIGINT)
                names = [e for e, _, _ in events]
        assert names[-1] == "shutdown" and set(names[:-1]) <= {"log"}
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "pinncore serve: stopped" in out
    assert "warning: serving on 127.0.0.2, not the loopback address" in err
    assert "Traceback" not in err and "ERROR" not in err, err


def _get(url):
    try:
        r = httpx.get(url, timeout=2)
        return r if r.status_code == 200 else None
    except httpx.HTTPError:
        return None


def test_serve_reports_a_busy_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        proc = _serve("--port", str(port))
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert f"pinncore serve: error: cannot serve on 127.0.0.1:{port}" in err and "--port 0" in err


def test_serve_without_the_web_extra_says_what_to_install(monkeypatch, capsys):
    import importlib.util

    from pinncore import cli

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a))
    assert cli.main(["serve", "--port", "0"]) == 2
    assert "serve needs uvicorn: pip install 'pinncore[web]'" in capsys.readouterr().err


@pytest.mark.parametrize("args,message", [(["--port", "70000"], "must be a port number"),
                                          (["--max-fits", "0"], "must be an integer in [1, 16]"),
                                          (["--port", "x"], "must be an integer")])
def test_serve_arguments_are_checked(capsys, args, message):
    from pinncore import cli

    assert cli.main(["serve", *args]) == 2
    assert message in capsys.readouterr().err


def test_core_never_imports_the_web_stack():
    code = ("import sys, pinncore, pinncore.cli, pinncore.web, pinncore.web.spec, pinncore.web.worker; "
            "bad = [m for m in ('starlette', 'uvicorn', 'anyio', 'httpx') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=os.path.dirname(os.path.abspath(__file__)))
    assert r.returncode == 0, r.stdout + r.stderr
