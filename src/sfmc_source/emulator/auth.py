"""The emulator's auth host: ``POST /v2/token`` and the tokens it has issued
(docs/sfmc-api.md#auth)."""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from sfmc_source.emulator.messages import Request, Response, to_json

USERINFO_PATH = "/v2/userinfo"
TOKEN_PATH = "/v2/token"
READ_SCOPES = (
    "campaign_read",
    "journeys_read",
    "list_and_subscribers_read",
    "email_read",
    "data_extensions_read",
    "tracking_events_read",
)
# Real token scope strings start with "offline" and list many unrelated scopes
# (docs/sfmc-api.md#token-response).
UNRELATED_SCOPES = (
    "documents_and_images_read",
    "saved_content_read",
    "automations_read",
    "automations_execute",
    "audiences_read",
    "webhooks_read",
)
INVALID_CLIENT = (
    "Client authentication failed. Make sure that the client ID and client secret are valid "
    "and that the package is installed and enabled."
)


@dataclass(frozen=True)
class Package:
    """The installed package the emulator authenticates against."""

    client_id: str
    client_secret: str
    enabled: bool
    scopes: Collection[str]
    token_ttl: int
    token_lifetime: float
    mids: Collection[int]
    default_mid: int


@dataclass
class Token:
    mid: int
    scopes: frozenset[str]
    expires_at: float


class TokenIssuer:
    """Issues tokens for a package and answers who holds one. ``package`` is read on every
    request, so a test may change the emulator's config while it serves."""

    def __init__(self, package: Callable[[], Package]) -> None:
        self._package = package
        self._tokens: dict[str, Token] = {}
        self._lock = threading.Lock()

    def issue(self, request: Request, base_url: str) -> Response:
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return oauth_error(400, "invalid_request", "The request body must be a JSON object.")
        if body.get("grant_type") != "client_credentials":
            return oauth_error(400, "unsupported_grant_type", "Use grant_type client_credentials.")
        package = self._package()
        if (
            not package.enabled
            or body.get("client_id") != package.client_id
            or body.get("client_secret") != package.client_secret
        ):
            return oauth_error(401, "invalid_client", INVALID_CLIENT)
        mid = _account(package, body.get("account_id"))
        if mid is None:
            return oauth_error(
                400, "invalid_grant", "The account_id is not accessible to this package."
            )
        scopes = _granted(package, body.get("scope"))
        if scopes is None:
            return oauth_error(
                400, "invalid_scope", "A requested scope is not granted to this package."
            )
        return self._token_response(package, mid, scopes, base_url)

    def _token_response(
        self, package: Package, mid: int, scopes: frozenset[str], base_url: str
    ) -> Response:
        token = _jwt_like(mid)
        with self._lock:
            self._tokens[token] = Token(mid, scopes, time.monotonic() + package.token_lifetime)
        base = base_url.rstrip("/")
        body = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": package.token_ttl,
            "scope": " ".join(("offline", *UNRELATED_SCOPES, *sorted(scopes))),
            "soap_instance_url": f"{base}/soap/",
            "rest_instance_url": f"{base}/rest/",
        }
        return Response(200, to_json(body))

    def userinfo(self, request: Request) -> Response:
        """``GET /v2/userinfo``: who the bearer token acts for; here only what a sync reads,
        the business unit (``organization.member_id``) and its enterprise."""
        header = request.headers.get("authorization", "")
        token, expired = self.holder(
            header[7:].strip() if header[:7].lower() == "bearer " else None
        )
        if token is None or expired:
            return oauth_error(401, "invalid_token", "The access token is not valid.")
        organization = {"member_id": token.mid, "enterprise_id": self._package().default_mid}
        return Response(200, to_json({"organization": organization}))

    def holder(self, token: str | None) -> tuple[Token | None, bool]:
        """The token's record, if it was issued here, and whether it has expired."""
        with self._lock:
            record = self._tokens.get(token or "")
        if record is None:
            return None, False
        return record, time.monotonic() >= record.expires_at


def oauth_error(status: int, error: str, description: str) -> Response:
    body = {
        "error": error,
        "error_description": description,
        "error_uri": "https://developer.salesforce.com/docs",
    }
    return Response(status, to_json(body))


def _account(package: Package, account_id: Any) -> int | None:
    if account_id is None or account_id == "":
        return package.default_mid
    try:
        mid = int(account_id)
    except (TypeError, ValueError):
        return None
    return mid if mid in package.mids else None


def _granted(package: Package, requested: Any) -> frozenset[str] | None:
    granted = frozenset(package.scopes)
    if requested is None:
        return granted
    wanted = frozenset(str(requested).split())
    return wanted if wanted <= granted | {"offline", *UNRELATED_SCOPES} else None


def _jwt_like(mid: int) -> str:
    """An opaque ~500-character token shaped like the recorded ones (three base64url parts)."""

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = part(b'{"alg":"HS256","kid":"4","ver":"1","typ":"JWT"}')
    claims = {
        "access_token": secrets.token_urlsafe(180),
        "client_id": "emulator",
        "eid": mid,
        "stack_key": "S50",
    }
    return f"{header}.{part(json.dumps(claims).encode())}.{part(secrets.token_bytes(32))}"
