"""A real pinncore web server on a free loopback port, run by uvicorn in a thread of the test
process (its fits run in worker processes, as in ``pinncore serve``), and a small SSE client."""
from __future__ import annotations

import json
import threading
import time


class ServerThread:
    """``with ServerThread(max_fits=2) as s: httpx.get(s.url + "api")``."""

    def __init__(self, host="127.0.0.1", **app_kw):
        from pinncore.web.app import create_app
        from pinncore.web.server import bind, make_server

        self.host = host
        self.sock = bind(host, 0)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://{host}:{self.port}/"
        self.app = create_app(host=host, port=self.port, **app_kw)
        self.max_fits = app_kw.get("max_fits", 4)
        self.server = make_server(self.app)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    @property
    def manager(self):
        return self.app.state.manager

    def __enter__(self):
        import httpx

        self.thread.start()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.server.started:
                r = httpx.get(self.url + "api/status", timeout=5)
                if r.json()["workers_ready"] == self.max_fits:
                    return self
            time.sleep(0.1)
        self.__exit__(None, None, None)
        raise RuntimeError("the test server did not start within 120 s")

    def __exit__(self, *exc):
        self.server.stop()
        self.thread.join(30)
        self.sock.close()
        return False


def sse(response):
    """Yield (event, data, id) from a streaming httpx response of ``text/event-stream``."""
    event, data, eid = "message", [], None
    for line in response.iter_lines():
        if line == "":
            if data:
                yield event, json.loads("\n".join(data)), eid
            event, data, eid = "message", [], None
        elif line.startswith(":"):
            continue
        else:
            key, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if key == "event":
                event = value
            elif key == "data":
                data.append(value)
            elif key == "id":
                eid = value


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
