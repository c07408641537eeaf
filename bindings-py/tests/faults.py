"""A fault-injecting HTTP proxy on 127.0.0.1 in front of the S3 server: each request is, with
the configured chances, answered 503 SlowDown or 500 InternalError without reaching the
server, cut off (connection reset) before or after the server handled it, or delayed past
the client's read timeout after the server handled it (the request lands, its answer is
lost). `deny` answers 403 AccessDenied to requests whose path contains one of its strings.
Bounded: it serves only loopback and stops with the test."""

from __future__ import annotations

import http.client
import random
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

_ERROR = """<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>{code}</Code><Message>injected</Message></Error>"""


class FaultProxy:
    def __init__(
        self,
        target: str,
        *,
        slowdown: float = 0.0,
        internal: float = 0.0,
        reset_before: float = 0.0,
        reset_after: float = 0.0,
        lost_answer: float = 0.0,
        delay_s: float = 1.5,
        seed: int = 1,
    ) -> None:
        u = urlsplit(target)
        self.host, self.port = u.hostname or "127.0.0.1", u.port or 80
        self.chances = [
            ("slowdown", slowdown),
            ("internal", internal),
            ("reset_before", reset_before),
            ("reset_after", reset_after),
            ("lost_answer", lost_answer),
        ]
        self.delay_s = delay_s
        self.deny: list[str] = []
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.injected: dict[str, int] = {name: 0 for name, _ in self.chances}
        self.injected["deny"] = 0
        self.requests = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def _any(self) -> None:
                proxy.handle(self)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def _draw(self) -> str | None:
        with self.lock:
            self.requests += 1
            x = self.rng.random()
            for name, p in self.chances:
                if x < p:
                    self.injected[name] += 1
                    return name
                x -= p
        return None

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        if any(d in h.path for d in self.deny) and h.command != "HEAD" and h.command != "GET":
            with self.lock:
                self.injected["deny"] += 1
            self._error(h, 403, "AccessDenied")
            return
        fault = self._draw()
        if fault == "slowdown":
            self._error(h, 503, "SlowDown")
            return
        if fault == "internal":
            self._error(h, 500, "InternalError")
            return
        if fault == "reset_before":
            self._reset(h)
            return
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        headers = {k: v for k, v in h.headers.items() if k.lower() not in ("connection", "proxy-connection")}
        conn.request(h.command, h.path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        conn.close()
        if fault == "reset_after":
            self._reset(h)
            return
        if fault == "lost_answer":
            time.sleep(self.delay_s)
            self._reset(h)
            return
        h.send_response(r.status, r.reason)
        for k, v in r.getheaders():
            # A HEAD's Content-Length is the object's: kept; a body's is what is relayed.
            if k.lower() not in ("connection", "transfer-encoding") and (k.lower() != "content-length" or h.command == "HEAD"):
                h.send_header(k, v)
        if h.command != "HEAD":
            h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(data)

    def _error(self, h: BaseHTTPRequestHandler, status: int, code: str) -> None:
        data = _ERROR.format(code=code).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/xml")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(data)

    def _reset(self, h: BaseHTTPRequestHandler) -> None:
        h.close_connection = True
        try:
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        except OSError:
            pass
        h.connection.close()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
