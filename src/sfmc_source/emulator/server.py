"""Serving the emulator: real sockets on 127.0.0.1, or an in-process httpx transport."""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import httpx

from sfmc_source.emulator.app import EmulatorApp, EmulatorConfig
from sfmc_source.emulator.messages import Request, Response

_REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    203: "Non-Authoritative Information",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def to_request(method: str, target: str, headers: dict[str, str], body: bytes) -> Request:
    parts = urlsplit(target)
    query = {k.lower(): v for k, v in parse_qsl(parts.query, keep_blank_values=True)}
    return Request(
        method, unquote(parts.path), query, {k.lower(): v for k, v in headers.items()}, body
    )


def wire_bytes(response: Response) -> bytes:
    """The whole HTTP/1.1 response in one buffer: one write, so no Nagle delay between parts."""
    reason = _REASONS.get(response.status, "Unknown")
    lines = [
        f"HTTP/1.1 {response.status} {reason}",
        f"Content-Type: {response.content_type}",
        f"Content-Length: {len(response.body)}",
    ]
    lines += [f"{name}: {value}" for name, value in response.headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + response.body


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = to_request(self.command, self.path, dict(self.headers.items()), body)
        response = self.server.app.handle(request)
        if response.reset:
            self._reset()
            return
        self.wfile.write(wire_bytes(response))

    def _reset(self) -> None:
        """Drop the connection with a TCP RST, as a load balancer resetting it would."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        os.close(self.connection.detach())
        self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def finish(self) -> None:
        with contextlib.suppress(OSError):  # the socket is gone after a reset
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, port: int, app: EmulatorApp) -> None:
        self.app = app
        super().__init__(("127.0.0.1", port), _Handler)


class EmulatorTransport(httpx.BaseTransport):
    """Plugs the emulator into an httpx client without sockets, for fast unit tests."""

    def __init__(self, app: EmulatorApp) -> None:
        self.app = app
        # Token responses need absolute instance URLs; .invalid never resolves (RFC 2606).
        app.base_url = app.base_url or "http://sfmc-emulator.invalid"

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        target = request.url.raw_path.decode()
        response = self.app.handle(
            to_request(request.method, target, dict(request.headers), request.read())
        )
        if response.reset:
            raise httpx.ReadError("Connection reset by peer (emulated)", request=request)
        headers = {"Content-Type": response.content_type, **response.headers}
        return httpx.Response(
            response.status, headers=headers, content=response.body, request=request
        )


class Emulator:
    """A running emulator on 127.0.0.1. Use as a context manager, or ``start``/``stop``.

    ``emulator.app`` is the tenant: ``.mutate`` changes data, ``.log`` counts requests,
    ``.faults`` and ``.config`` may be changed while it serves.
    """

    def __init__(self, config: EmulatorConfig | None = None, port: int = 0) -> None:
        self.app = EmulatorApp(config)
        self._server = _Server(port, self.app)
        self.port: int = self._server.server_address[1]
        self.app.base_url = self.auth_url
        self._thread: threading.Thread | None = None

    @property
    def auth_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config(self) -> EmulatorConfig:
        return self.app.config

    def environment(self) -> dict[str, str]:
        """What a sync needs to reach this emulator."""
        return {
            "SFMC_AUTH_URL": self.auth_url,
            "SFMC_CLIENT_ID": self.config.client_id,
            "SFMC_CLIENT_SECRET": self.config.client_secret,
            "SFMC_SUBDOMAIN": self.config.subdomain,
        }

    def start(self) -> Emulator:
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="sfmc-emulator", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self.app.gate.open()  # let held requests finish
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
