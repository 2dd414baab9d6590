"""OAuth2 client credentials for SFMC, as one ``httpx.Auth`` (docs/sfmc-api.md#auth).

The token is fetched lazily, reused until shortly before ``expires_in`` runs out (never earlier
than three quarters of its lifetime), and refreshed once, with one retry, when a REST call gets
401 or a SOAP call gets the ``Token Expired`` fault. The REST and SOAP base URLs are the ones
that came with the token. SOAP carries the token inside the envelope, so SOAP envelopes are
built with ``TOKEN_PLACEHOLDER`` where the token goes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

import httpx

from sfmc_source.soap import fault_of

TOKEN_PLACEHOLDER = "{{sfmc-source:fueloauth}}"
REFRESH_MARGIN_SECONDS = 120


@dataclass(frozen=True)
class AccessToken:
    value: str = field(repr=False)
    expires_in: int
    rest_url: str
    soap_url: str
    scopes: frozenset[str]
    refresh_at: float

    @classmethod
    def issued_now(
        cls, value: str, expires_in: int, rest_url: str, soap_url: str, scopes: frozenset[str]
    ) -> AccessToken:
        keep = max(expires_in - REFRESH_MARGIN_SECONDS, expires_in * 0.75)
        return cls(value, expires_in, rest_url, soap_url, scopes, time.monotonic() + keep)


class SfmcAuth(httpx.Auth):
    """Signs REST requests with a bearer token and SOAP envelopes with ``fueloauth``."""

    requires_response_body = True

    def __init__(self, fetch: Callable[[], AccessToken]) -> None:
        self._fetch = fetch
        self._token: AccessToken | None = None
        self._lock = threading.Lock()
        self.token_requests = 0

    @property
    def current_value(self) -> str:
        """The token in use, or "" before the first one; never fetches."""
        return self._token.value if self._token else ""

    def token(self, stale: AccessToken | None = None) -> AccessToken:
        """The current token, fetched when there is none, it is due, or it is ``stale``."""
        with self._lock:
            current = self._token
            if current is None or current is stale or time.monotonic() >= current.refresh_at:
                self.token_requests += 1
                current = self._token = self._fetch()
            return current

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.token()
        response = yield _signed(request, token)
        if token_rejected(request, response):
            yield _signed(request, self.token(stale=token))


def token_rejected(request: httpx.Request, response: httpx.Response) -> bool:
    """A REST 401, or SOAP's HTTP 500 ``Token Expired`` fault."""
    if "SOAPAction" in request.headers:
        fault = fault_of(response.content) if response.status_code == 500 else None
        return fault is not None and fault.text.strip().lower() == "token expired"
    return response.status_code == 401


def _signed(request: httpx.Request, token: AccessToken) -> httpx.Request:
    if "SOAPAction" not in request.headers:
        request.headers["Authorization"] = f"Bearer {token.value}"
        return request
    body = request.content.replace(TOKEN_PLACEHOLDER.encode(), _xml_text(token.value).encode())
    headers = [(k, v) for k, v in request.headers.multi_items() if k.lower() != "content-length"]
    return httpx.Request(
        request.method, request.url, headers=headers, content=body, extensions=request.extensions
    )


def _xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
