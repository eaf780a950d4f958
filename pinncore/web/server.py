"""``pinncore serve``: uvicorn running :func:`pinncore.web.app.create_app` on one bound socket.

The socket is bound here (port 0 picks a free one) so that the address the page is served on
is known before the application is built: the application accepts only that Host.

>>> sock = bind("127.0.0.1", 0); sock.getsockname()[1] > 0
True
>>> sock.close()
"""
from __future__ import annotations

import signal
import socket
import sys
import threading
import webbrowser

__all__ = ["serve", "bind", "url_for", "make_server"]


def bind(host, port):
    """A listening TCP socket on (host, port); OSError if the address is in use or invalid."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def make_server(app, log_level="warning"):
    """A uvicorn server for ``app`` (from ``create_app``) that ends the app's event streams
    as soon as it is asked to stop, so that a Ctrl-C does not wait for (or cut) open streams."""
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame):
            super().handle_exit(sig, frame)
            app.state.manager.stop_streams()

        def stop(self):
            """Stop from another thread."""
            self.should_exit = True
            app.state.manager.stop_streams()

    config = uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="on", timeout_graceful_shutdown=2)
    return Server(config)


def url_for(host, port):
    """The page's address (a wildcard bind is shown as 127.0.0.1).

    >>> url_for("::1", 8765), url_for("0.0.0.0", 80)
    ('http://[::1]:8765/', 'http://127.0.0.1:80/')
    """
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


def serve(host="127.0.0.1", port=8765, open_browser=False, max_fits=4, log_level="warning", out=None):
    """Serve the Loss Weight Tuner on host:port until Ctrl-C (or SIGTERM); returns 0.

    Binding anything but the loopback address lets every machine that reaches this one run
    fits on it, so it is announced with a warning on stderr.
    """
    from .app import create_app

    out = out if out is not None else sys.stdout
    sock = bind(host, port)
    port = sock.getsockname()[1]
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"pinncore serve: warning: serving on {host}, not the loopback address: anyone who can reach "
              f"this machine on port {port} can run fits on it", file=sys.stderr, flush=True)
    app = create_app(host=host, port=port, max_fits=max_fits)
    server = make_server(app, log_level=log_level)
    url = url_for(host, port)
    print(f"pinncore serve: the Loss Weight Tuner at {url} (Ctrl-C stops)", file=out, flush=True)
    if open_browser:
        threading.Timer(0.5, webbrowser.open, [url]).start()
    previous = _on_sigterm()
    try:
        server.run(sockets=[sock])
    except (KeyboardInterrupt, _Stop):
        # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal: the stop
        # was asked for, so it is a clean exit.
        pass
    finally:
        sock.close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    print("pinncore serve: stopped", file=out, flush=True)
    return 0


class _Stop(Exception):
    """SIGTERM, re-raised by uvicorn after its graceful shutdown."""


def _raise_stop(signum, frame):
    raise _Stop()


def _on_sigterm():
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _raise_stop)
