"""Requests and responses as the emulator's app sees them, independent of the transport."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sfmc_source.timefmt import format_system_time

JSON = "application/json; charset=utf-8"
XML = "text/xml; charset=utf-8"
ERROR_DOCS = (
    "https://developer.salesforce.com/docs/atlas.en-us.mc-apis.meta/mc-apis/error-handling.htm"
)


@dataclass
class Request:
    method: str
    path: str
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def param(self, name: str) -> str | None:
        """A query parameter by name, case-insensitively (SFMC's own links say ``$pagesize``)."""
        return self.query.get(name.lower())


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)
    reset: bool = False
    # Which page of which resource this is, so a fault knob can corrupt exactly that page.
    page_of: tuple[str, int] | None = None
    # A SOAP Retrieve page: its rows (each adds Faults.soap_row_ms) and the Retrieve it continues.
    rows: int | None = None
    chain: str | None = None


def to_json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_default).encode()


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_system_time(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def rest_error(
    status: int,
    message: str,
    errorcode: int | None = 10000,
    documentation: str = ERROR_DOCS,
    **extra: Any,
) -> Response:
    """A REST error body as SFMC writes it: lower-case ``errorcode``
    (docs/sfmc-api.md#rest-errors)."""
    body: dict[str, Any] = {"message": message}
    if errorcode is not None:
        body["errorcode"] = errorcode
        body["documentation"] = documentation
    return Response(status, to_json({**body, **extra}))


def not_found() -> Response:
    return rest_error(404, "Not Found", 404)


def not_authorized() -> Response:
    return rest_error(401, "Not Authorized", 0)
