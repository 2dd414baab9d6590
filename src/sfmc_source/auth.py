"""OAuth2 client credentials for SFMC, as one ``httpx.Auth`` (docs/sfmc-api.md#auth).

The token is fetched lazily, reused until shortly before ``expires_in`` runs out (never earlier
than three quarters of its lifetime), and refreshed once, with one retry, when a REST call gets
401 or a SOAP call gets the ``Token Expired`` fault. The REST and SOAP base URLs are the ones
that came with the token. SOAP carries the token inside the envelope, so SOAP envelopes are
built with ``TOKEN_PLACEHOLDER`` where the token goes. The token request and the reading of
its response (and of its failures) live here too; the client sends the request through its
one retry policy.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import httpx

from sfmc_source.errors import (
    AuthenticationError,
    BusinessUnitRefused,
    RequestRejected,
    ResponseError,
)
from sfmc_source.soap import fault_of

TOKEN_PLACEHOLDER = "{{sfmc-source:fueloauth}}"
REFRESH_MARGIN_SECONDS = 120


@dataclass(frozen=True)
class Credentials:
    """What a package gives you. ``auth_url`` is ``https://{subdomain}.auth.marketingcloudapis.com``."""

    client_id: str
    client_secret: str = field(repr=False)
    auth_url: str
    account_id: int | None = None

    @classmethod
    def for_subdomain(
        cls, client_id: str, client_secret: str, subdomain: str, account_id: int | None = None
    ) -> Credentials:
        return cls(
            client_id, client_secret, f"https://{subdomain}.auth.marketingcloudapis.com", account_id
        )


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


def token_request(credentials: Credentials, http: httpx.Client) -> httpx.Request:
    """``POST /v2/token`` with the client credentials (and the business unit, if any)."""
    body: dict[str, Any] = {
        "grant_type": "client_credentials",
        "client_id": credentials.client_id,
        "client_secret": credentials.client_secret,
    }
    if credentials.account_id is not None:
        body["account_id"] = credentials.account_id
    url = credentials.auth_url.rstrip("/") + "/v2/token"
    return http.build_request("POST", url, json=body)


def read_token(response: httpx.Response, credentials: Credentials) -> AccessToken:
    """The token of a token response, or the error that says which setting to check."""
    if response.status_code in (400, 401, 403, 404):
        message = _auth_failure(response, credentials)
        if "(invalid_grant)" in message:
            raise BusinessUnitRefused(message)
        raise AuthenticationError(message)
    if response.status_code != 200:
        raise RequestRejected(f"token request: HTTP {response.status_code}")
    return _access_token(response)


def unreachable(credentials: Credentials, exc: Exception) -> AuthenticationError:
    return AuthenticationError(
        f"cannot reach the auth host {credentials.auth_url} ({exc}): check SFMC_SUBDOMAIN "
        "(--subdomain) or SFMC_AUTH_URL (--auth-url)"
    )


def _auth_failure(response: httpx.Response, creds: Credentials) -> str:
    try:
        error = str(response.json().get("error", ""))
    except (ValueError, AttributeError):
        error = ""
    if error == "invalid_grant":
        return (
            f"authentication failed (invalid_grant): the package cannot access business "
            f"unit {creds.account_id}; check SFMC_ACCOUNT_IDS (--account-ids)"
        )
    reason = f" ({error})" if error else f" (HTTP {response.status_code})"
    return (
        f"authentication failed{reason}: check SFMC_CLIENT_ID, SFMC_CLIENT_SECRET and "
        f"SFMC_SUBDOMAIN (auth URL {creds.auth_url})"
    )


def _access_token(response: httpx.Response) -> AccessToken:
    try:
        body = response.json()
        value, expires_in = body["access_token"], body["expires_in"]
        rest_url, soap_url = body["rest_instance_url"], body["soap_instance_url"]
    except (ValueError, KeyError, TypeError):
        raise ResponseError(
            "token request: the response is not the documented token JSON"
        ) from None
    if not (
        isinstance(value, str)
        and isinstance(expires_in, int)
        and isinstance(rest_url, str)
        and isinstance(soap_url, str)
    ):
        raise ResponseError("token request: the token response has fields of the wrong type")
    scopes = frozenset(str(body.get("scope") or "").split())
    return AccessToken.issued_now(value, expires_in, _slash(rest_url), _slash(soap_url), scopes)


def _slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"
