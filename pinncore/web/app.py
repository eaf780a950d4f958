"""The ASGI application of ``pinncore serve``: the page, the JSON API, the event streams, and
the guards in front of them. The API is documented in :mod:`pinncore.web`.

>>> app = create_app(port=8765)          # no worker starts until the server runs its lifespan
>>> sorted(r.path for r in app.router.routes if r.path.startswith("/api/fits"))[:2]
['/api/fits', '/api/fits/{id}']
"""
from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import socket

import anyio
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .jobs import Busy, Manager
from .spec import SpecError, catalogue, fit_spec, sweep_spec, sweep_tasks

__all__ = ["create_app", "allowed_hosts", "MAX_BODY"]

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
MAX_BODY = 16 * 1024          # bytes of a request body (413 above)
MAX_STREAMS = 64              # open event streams per server (429 above)
PING = 10.0                   # seconds between keep-alive comments on an idle stream
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_WILDCARD = {"0.0.0.0", "::", ""}
# The page loads nothing from elsewhere and is never framed.
_PAGE_HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
                                            "base-uri 'none'; frame-ancestors 'none'",
                 "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}


def _error(status, message, field=None, headers=None):
    body = {"error": message}
    if field is not None:
        body["field"] = field
    return JSONResponse(body, status_code=status, headers=headers)


def allowed_hosts(host, port):
    """The Host header values the server answers; ``None`` entries mean "any IP literal" (a
    wildcard bind). A DNS-rebinding page reaches the server under its own domain name, which
    is never in this set.

    >>> sorted(allowed_hosts("127.0.0.1", 8765))
    ['127.0.0.1:8765', '[::1]:8765', 'localhost:8765']
    """
    names = {host.lower()}
    if host in _LOOPBACK or host in _WILDCARD:
        names |= {"127.0.0.1", "localhost", "[::1]"}
    if host in _WILDCARD:
        names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
    names = {f"[{n}]" if ":" in n and not n.startswith("[") else n for n in names if n not in _WILDCARD}
    out = {f"{n}:{port}" for n in names}
    if port == 80:
        out |= names
    return out


def _host_ok(value, allowed, wildcard, port):
    if value is None:
        return False
    value = value.lower()
    if value in allowed:
        return True
    if not wildcard:
        return False
    host, _, p = value.rpartition(":") if not value.endswith("]") else (value, "", "")
    if (p or "80") != str(port):
        return False
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return False


class Guard:
    """ASGI middleware: refuse a foreign Host (403, DNS rebinding), a foreign Origin or a
    cross-site unsafe request (403, cross-site request forgery) and an announced body larger
    than ``MAX_BODY`` (413) before the application sees the request."""

    def __init__(self, app, host, port):
        self.app = app
        self.allowed = allowed_hosts(host, port)
        self.wildcard, self.port = host in _WILDCARD, port

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        reply = None
        origin = headers.get("origin")
        host = headers.get("host")
        if not _host_ok(host, self.allowed, self.wildcard, self.port):
            reply = _error(403, f"Host {host!r} is not the address this server serves "
                                f"(it answers {sorted(self.allowed)[0]}): refused to guard against DNS rebinding",
                           "Host")
        elif origin is not None and not _origin_ok(origin, self.allowed, self.wildcard, self.port):
            reply = _error(403, f"cross-origin request from {origin!r} refused", "Origin")
        elif scope["method"] not in ("GET", "HEAD") and headers.get("sec-fetch-site") == "cross-site":
            reply = _error(403, "cross-site request refused", "Origin")
        elif _too_long(headers.get("content-length")):
            reply = _error(413, f"request body larger than {MAX_BODY} bytes", "body")
        if reply is not None:
            return await reply(scope, receive, send)
        return await self.app(scope, receive, send)


def _origin_ok(origin, allowed, wildcard, port):
    origin = origin.lower()
    return origin.startswith("http://") and _host_ok(origin[len("http://"):], allowed, wildcard, port)


def _too_long(value):
    if value is None:
        return False
    try:
        return int(value) > MAX_BODY
    except ValueError:
        return True


async def _read_json(request):
    """The request's JSON object; HTTPException 413/415/400 otherwise."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise HTTPException(415, f"the body must be JSON sent as Content-Type application/json, got {ctype or 'none'!r}")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY:
                raise HTTPException(413, f"request body larger than {MAX_BODY} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise HTTPException(400, "the client closed the request before its body ended") from None
    try:
        return json.loads(b"".join(chunks).decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as e:
        raise HTTPException(400, f"the body is not valid JSON: {e}") from None
    except RecursionError:
        raise HTTPException(400, "the body is not valid JSON: nested too deeply") from None


def _no_constant(name):
    raise ValueError(f"{name} is not a JSON number")


class EventStream:
    """A Server-Sent Events response replaying a job's events from ``start`` and following it
    live until its ``end`` event; the job counts it as a subscriber while it is open."""

    def __init__(self, api, job, start):
        self.api, self.manager, self.job, self.start = api, api.manager, job, start

    async def __call__(self, scope, receive, send):
        self.api.streams += 1
        try:
            await self._run(receive, send)
        finally:
            self.api.streams -= 1

    async def _run(self, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
            (b"x-accel-buffering", b"no")]})
        self.manager.attach(self.job)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._watch, receive, tg.cancel_scope)
                await self._stream(send)
                tg.cancel_scope.cancel()
        finally:
            self.manager.detach(self.job)

    @staticmethod
    async def _watch(receive, scope):
        while (await receive())["type"] != "http.disconnect":
            pass
        scope.cancel()

    async def _stream(self, send):
        job, i = self.job, self.start
        await send({"type": "http.response.body", "body": b"retry: 1000\n\n", "more_body": True})
        while True:
            n = len(job.events)
            if i < n:
                text = "".join(f"id: {k + 1}\nevent: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
                               for k, (name, data) in enumerate(job.events[i:n], start=i))
                i = n
                await send({"type": "http.response.body", "body": text.encode(), "more_body": True})
            elif job.done:
                break
            elif self.manager.stopping:
                await send({"type": "http.response.body", "body": b"event: shutdown\ndata: {}\n\n", "more_body": True})
                break
            else:
                await job.wait(i, PING)
                if len(job.events) == i and not job.done and not self.manager.stopping:
                    await send({"type": "http.response.body", "body": b": ping\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class Api:
    """The route handlers over one :class:`~pinncore.web.jobs.Manager`."""

    def __init__(self, manager):
        self.manager = manager
        self.streams = 0

    async def catalogue(self, request):
        return JSONResponse(catalogue())

    async def status(self, request):
        m = self.manager
        workers = m.pool.workers if m.pool else []
        return JSONResponse({"max_fits": m.max_fits, "running": m.running(), "streams": self.streams,
                             "workers_ready": sum(w.ready for w in workers), "jobs": len(m.jobs)})

    async def create(self, request):
        kind = _kind(request)
        body = await _read_json(request)
        try:
            spec = fit_spec(body) if kind == "fit" else sweep_spec(body)
        except SpecError as e:
            return _error(400, str(e), e.field)
        tasks = [({}, spec)] if kind == "fit" else sweep_tasks(spec)
        try:
            job = self.manager.submit(kind, spec, tasks)
        except Busy as e:
            return _error(429, str(e), headers={"Retry-After": "1"})
        base = f"/api/{kind}s/{job.id}"
        links = {"id": job.id, "events": f"{base}/events", "cancel": f"{base}/cancel", "state": base}
        if kind == "fit":
            links["solution"] = f"{base}/solution"
        return JSONResponse(dict(links, tasks=len(tasks), spec=_public(spec)), status_code=202)

    def _job(self, request):
        kind = _kind(request)
        job = self.manager.jobs.get(request.path_params["id"])
        if job is None or job.kind != kind:
            raise HTTPException(404, f"no {kind} {request.path_params['id']!r} (finished ones are kept for a while)")
        return job

    async def state(self, request):
        job = self._job(request)
        body = job.state()
        if body["summary"] is not None:
            body["summary"] = {k: v for k, v in body["summary"].items() if k != "solution"}
        body["rows" if job.kind == "fit" else "points"] = [d for name, d in job.events if name in ("log", "point")]
        return JSONResponse(body)

    async def events(self, request):
        job = self._job(request)
        if self.streams >= MAX_STREAMS:
            return _error(429, f"the server has {MAX_STREAMS} streams open, its limit", headers={"Retry-After": "1"})
        return EventStream(self, job, _resume_index(request.headers.get("last-event-id"), len(job.events)))

    async def solution(self, request):
        job = self._job(request)
        if not job.done:
            return _error(409, "the fit is still running: its solution comes with its end event")
        sol = (job.summary or {}).get("solution")
        if sol is None:
            return _error(409, f"the fit has no solution ({job.summary.get('status')}: {job.summary.get('message')})")
        return JSONResponse(dict(sol, rel_l2=job.summary.get("rel_l2"), verdict=job.summary.get("verdict")))

    async def cancel(self, request):
        job = self._job(request)
        self.manager.cancel(job)
        return JSONResponse({"id": job.id, "status": "cancelling" if not job.done else job.status})


def _resume_index(value, n_events):
    """Where a stream resumes after ``Last-Event-ID: value``: the id itself when it is a plain
    ASCII decimal of at most ``n_events``, else 0 (replay all). Any other header value — non-ASCII
    digits such as '²' (``str.isdigit`` accepts them, ``int`` does not), a 5000-digit number,
    a sign, spaces — is ignored rather than answered with a 500.

    >>> _resume_index("3", 5), _resume_index("²", 5), _resume_index("9" * 5000, 5), _resume_index(None, 5)
    (3, 0, 0, 0)
    """
    if not value or not all("0" <= c <= "9" for c in value):
        return 0
    digits = value.lstrip("0") or "0"
    if len(digits) > 18:       # beyond any event count; int() of 4301+ digits would raise
        return 0
    k = int(digits)
    return k if k <= n_events else 0


def _kind(request):
    """"fit" or "sweep", from the path /api/fits/... or /api/sweeps/..."""
    return request.url.path.split("/")[2][:-1]


def _public(spec):
    return {k: v for k, v in spec.items() if k not in ("n_inputs", "n_points", "second_given")}


async def _page(request):
    return FileResponse(os.path.join(STATIC, "index.html"), headers=_PAGE_HEADERS)


async def _http_error(request, exc):
    return _error(exc.status_code, exc.detail if isinstance(exc.detail, str) else "error")


def create_app(host="127.0.0.1", port=8765, max_fits=4, sweep_parallel=2, attach_timeout=15.0, grace=2.0):
    """The Starlette application serving ``host:port`` (the Host header it accepts) with at
    most ``max_fits`` fits running at once (one worker process each). A sweep runs on up to
    ``sweep_parallel`` of them. A fit no stream watches is cancelled ``attach_timeout`` s
    after its start or ``grace`` s after its last stream closed."""
    manager = Manager(max_fits=max_fits, sweep_parallel=sweep_parallel, attach_timeout=attach_timeout, grace=grace)
    api = Api(manager)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await manager.start()
        try:
            yield
        finally:
            await manager.close()

    routes = [Route("/", _page, methods=["GET"]),
              Route("/api", api.catalogue, methods=["GET"]),
              Route("/api/status", api.status, methods=["GET"]),
              Route("/api/fits/{id}/solution", api.solution, methods=["GET"])]
    for kind in ("fits", "sweeps"):
        routes += [Route(f"/api/{kind}", api.create, methods=["POST"]),
                   Route(f"/api/{kind}/{{id}}", api.state, methods=["GET"]),
                   Route(f"/api/{kind}/{{id}}/events", api.events, methods=["GET"]),
                   Route(f"/api/{kind}/{{id}}/cancel", api.cancel, methods=["POST"])]
    routes.append(Mount("/static", StaticFiles(directory=STATIC), name="static"))
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: _http_error})
    app.state.manager = manager
    app.add_middleware(Guard, host=host, port=port)
    return app
