"""The emulator's REST endpoints: hub campaigns, campaign assets and journeys (interactions).

Envelopes, paging, sorting, filters and error bodies follow docs/sfmc-api.md#rest. Each route
is a row: path pattern, the label the request log counts it under, the scope it needs, a
handler.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sfmc_source.emulator.data import BusinessUnit, Row
from sfmc_source.emulator.messages import Request, Response, not_found, rest_error, to_json

JOURNEY_STATUSES = {
    "Draft",
    "Published",
    "ScheduledToPublish",
    "Stopped",
    "Unpublished",
    "Deleted",
    "ScheduledToSend",
    "Sent",
}
HUB_PAGE_SIZE = 50


class BadRequest(Exception):
    """Answered with 400 and errorcode 10000."""


@dataclass
class RestOptions:
    """Variants of facts docs/sfmc-api.md#rest marks uncertain, so tests can cover each."""

    assets_envelope: str = "items"  # items | entities | list (a bare JSON array)
    page_size_echo: str = "served"  # served | requested
    journey_max_page_size: int = 50
    # The status of a successful GET: 200, or the "202 Accepted" SFMC's docs print above
    # their campaign and asset examples.
    success_status: int = 200


@dataclass
class RestCall:
    request: Request
    unit: BusinessUnit
    params: dict[str, str]
    options: RestOptions
    lock: threading.RLock
    # listing → the page that repeats the previous page's first item (``Faults.repeat``)
    repeat: Mapping[str, int] = field(default_factory=dict)


Handler = Callable[[RestCall], Response]


@dataclass(frozen=True)
class Route:
    pattern: re.Pattern[str]
    endpoint: str
    scope: str
    handler: Handler


def find_route(path: str) -> tuple[Route, dict[str, str]] | None:
    path = path.rstrip("/") or "/"
    for route in ROUTES:
        match = route.pattern.fullmatch(path)
        if match:
            return route, match.groupdict()
    return None


# ---- paging -----------------------------------------------------------------------------


def _whole_number(call: RestCall, name: str, default: int) -> int:
    text = call.request.param(name)
    if text is None or text == "":
        return default
    if not text.strip().isdigit() or int(text) < 1:
        raise BadRequest(
            f"Invalid value for {name}: {text!r}. It must be a whole number of at least 1."
        )
    return int(text)


def _paged(
    call: RestCall,
    rows: list[Row],
    render: Callable[[Row], bytes],
    *,
    max_size: int,
    resource: str,
    key: str = "items",
    links_path: str | None = None,
) -> Response:
    page = _whole_number(call, "$page", 1)
    requested = _whole_number(call, "$pageSize", max_size)
    size = min(requested, max_size)
    echoed = requested if call.options.page_size_echo == "requested" else size
    chunk = rows[(page - 1) * size : page * size]
    if chunk and page > 1 and call.repeat.get(resource) == page:
        chunk = [rows[(page - 2) * size], *chunk[1:]]
    links: dict[str, Any] = {}
    if links_path:
        links["self"] = {"href": f"{links_path}?$page={page}&$pagesize={echoed}"}
        if page * size < len(rows):
            links["next"] = {"href": f"{links_path}?$page={page + 1}&$pagesize={echoed}"}
    head = to_json({"count": len(rows), "page": page, "pageSize": echoed, "links": links})[:-1]
    items = b",".join(render(row) for row in chunk)
    body = head + b',"' + key.encode() + b'":[' + items + b"]}"
    return Response(200, body, page_of=(resource, page))


def _sorted(
    rows: list[Row], order_by: str | None, fields: dict[str, Callable[[Row], Any]], default: str
) -> list[Row]:
    words = (order_by or default).split()
    if not 1 <= len(words) <= 2 or words[0].lower() not in fields:
        choices = ", ".join(sorted(fields))
        raise BadRequest(f"Invalid $orderBy {order_by!r}: sort by one of {choices}, ASC or DESC.")
    direction = words[1].upper() if len(words) == 2 else "ASC"
    if direction not in ("ASC", "DESC"):
        raise BadRequest(f"Invalid $orderBy direction {words[1]!r}: ASC or DESC.")
    key = fields[words[0].lower()]
    present = [r for r in rows if key(r) is not None]
    missing = [r for r in rows if key(r) is None]
    present.sort(key=key, reverse=direction == "DESC")
    return present + missing


def _json_item(row: Row, variant: str = "", drop: Iterable[str] = ()) -> bytes:
    cached = row.rendered.get(("json", variant))
    if cached is None:
        skip = set(drop)
        fields = {k: v for k, v in row.fields.items() if k not in skip} if skip else row.fields
        cached = row.rendered[("json", variant)] = to_json(fields)
    return cached


# ---- campaigns --------------------------------------------------------------------------

CAMPAIGN_ORDER: dict[str, Callable[[Row], Any]] = {
    "modifieddate": lambda r: r.fields.get("modifiedDate"),
    "createddate": lambda r: r.fields.get("createdDate"),
    "name": lambda r: r.fields.get("name"),
    "id": lambda r: int(r.fields["id"]),
    "campaigncode": lambda r: r.fields.get("campaignCode"),
}


def list_campaigns(call: RestCall) -> Response:
    order_by = call.request.param("$orderBy")

    def ordered() -> list[Row]:
        rows = sorted(call.unit.campaigns.values(), key=lambda r: int(r.fields["id"]))
        return _sorted(rows, order_by, CAMPAIGN_ORDER, "ModifiedDate DESC")

    with call.lock:
        rows = call.unit.view(("campaigns", order_by), ordered)
    return _paged(
        call,
        rows,
        _json_item,
        max_size=HUB_PAGE_SIZE,
        resource="campaigns",
        links_path="/v1/campaigns",
    )


def _campaign(call: RestCall) -> Row:
    row = call.unit.campaigns.get(call.params["id"])
    if row is None:
        raise BadRequest("Campaign ID is invalid")
    return row


def get_campaign(call: RestCall) -> Response:
    return Response(200, _json_item(_campaign(call)))


def list_assets(call: RestCall) -> Response:
    with call.lock:
        _campaign(call)
        rows = list(call.unit.assets.get(call.params["id"], []))
    envelope = call.options.assets_envelope
    if envelope == "list":
        return Response(
            200,
            b"[" + b",".join(_json_item(r) for r in rows) + b"]",
            page_of=("campaign_assets", 1),
        )
    return _paged(
        call, rows, _json_item, max_size=HUB_PAGE_SIZE, resource="campaign_assets", key=envelope
    )


def get_asset(call: RestCall) -> Response:
    with call.lock:
        _campaign(call)
        for row in call.unit.assets.get(call.params["id"], []):
            if row.fields["id"] == call.params["asset_id"]:
                return Response(200, _json_item(row))
    raise BadRequest("Campaign Asset ID is invalid")


# ---- journeys ---------------------------------------------------------------------------

JOURNEY_ORDER: dict[str, Callable[[Row], Any]] = {
    "modifieddate": lambda r: r.fields.get("modifiedDate"),
    "name": lambda r: r.fields.get("name"),
    "performance": lambda r: (r.fields.get("stats") or {}).get("goalPerformance"),
}
DETAIL_ONLY = ("activities", "triggers")
DELETED_LATEST = "Interaction matching criteria not found."


def _journey_json(extras: set[str]) -> Callable[[Row], bytes]:
    if extras & {"all", "activities"}:
        return lambda row: _json_item(row, "full")
    return lambda row: _json_item(row, "list", DETAIL_ONLY)


def _extras(call: RestCall) -> set[str]:
    return {e.strip().lower() for e in (call.request.param("extras") or "").split(",") if e.strip()}


def _flag(call: RestCall, name: str, default: bool) -> bool:
    text = call.request.param(name)
    if text is None or text == "":
        return default
    if text.lower() not in ("true", "false"):
        raise BadRequest(f"Invalid value for {name}: {text!r}. Use true or false.")
    return text.lower() == "true"


def _pick_versions(call: RestCall, versions: list[Row], want_deleted: bool) -> list[Row]:
    live = [v for v in versions if (v.fields["status"] == "Deleted") == want_deleted]
    version = call.request.param("versionNumber")
    if call.request.param("id"):
        return live
    if version:
        return [v for v in live if str(v.fields["version"]) == version.strip()]
    if _flag(call, "mostRecentVersionOnly", True):
        return live[-1:]
    return live


LISTING_PARAMS = (
    "status",
    "key",
    "id",
    "nameOrDescription",
    "definitionType",
    "versionNumber",
    "mostRecentVersionOnly",
    "$orderBy",
)


def list_interactions(call: RestCall) -> Response:
    status = call.request.param("status")
    if status and status not in JOURNEY_STATUSES:
        valid = ", ".join(sorted(JOURNEY_STATUSES))
        raise BadRequest(f"Invalid status {status!r}. Valid: {valid}.")
    tests = _journey_filters(call, status)

    def listing() -> list[Row]:
        rows = [
            row
            for versions in call.unit.journeys.values()
            for row in _pick_versions(call, versions, status == "Deleted")
            if all(test(row) for test in tests)
        ]
        return _sorted(rows, call.request.param("$orderBy"), JOURNEY_ORDER, "ModifiedDate DESC")

    key = ("interactions", *(call.request.param(p) for p in LISTING_PARAMS))
    with call.lock:
        rows = call.unit.view(key, listing)
    return _paged(
        call,
        rows,
        _journey_json(_extras(call)),
        max_size=call.options.journey_max_page_size,
        resource="interactions",
    )


def _journey_filters(call: RestCall, status: str | None) -> list[Callable[[Row], bool]]:
    tests: list[Callable[[Row], bool]] = []
    if status:
        tests.append(lambda r: r.fields["status"] == status)
    if key := call.request.param("key"):
        tests.append(lambda r: r.fields["key"] == key)
    if journey_id := call.request.param("id"):
        tests.append(lambda r: r.fields["id"] == journey_id)
    if text := (call.request.param("nameOrDescription") or "").lower():
        tests.append(
            lambda r: any(text in (r.fields.get(f) or "").lower() for f in ("name", "description"))
        )
    if call.request.param("definitionType"):
        if call.request.param("definitionType") != "transactional":
            raise BadRequest("Invalid definitionType. Only 'transactional' is accepted.")
        tests.append(lambda r: r.fields.get("definitionType") == "Transactional")
    return tests


def _one_journey(call: RestCall, versions: list[Row]) -> Response:
    """One version: the one ``versionNumber`` names, else the latest, which answers 404
    errorcode 30003 when it is Deleted (docs/sfmc-api.md#journey-activities)."""
    version = call.request.param("versionNumber")
    if version:
        chosen = [v for v in versions if str(v.fields["version"]) == version.strip()]
    else:
        chosen = versions[-1:]
    if not chosen:
        return not_found()
    if not version and chosen[0].fields["status"] == "Deleted":
        return rest_error(404, DELETED_LATEST, 30003)
    return Response(200, _journey_json(_extras(call))(chosen[0]))


def get_interaction(call: RestCall) -> Response:
    with call.lock:
        versions = list(call.unit.journeys.get(call.params["id"], []))
    return _one_journey(call, versions)


def get_interaction_by_key(call: RestCall) -> Response:
    with call.lock:
        versions = next(
            (
                list(v)
                for v in call.unit.journeys.values()
                if v and v[0].fields["key"] == call.params["key"]
            ),
            [],
        )
    return _one_journey(call, versions)


def _route(pattern: str, endpoint: str, scope: str, handler: Handler) -> Route:
    return Route(re.compile(pattern), endpoint, scope, handler)


ROUTES = (
    _route(r"/hub/v1/campaigns", "GET /hub/v1/campaigns", "campaign_read", list_campaigns),
    _route(
        r"/hub/v1/campaigns/(?P<id>[^/]+)",
        "GET /hub/v1/campaigns/{id}",
        "campaign_read",
        get_campaign,
    ),
    _route(
        r"/hub/v1/campaigns/(?P<id>[^/]+)/assets",
        "GET /hub/v1/campaigns/{id}/assets",
        "campaign_read",
        list_assets,
    ),
    _route(
        r"/hub/v1/campaigns/(?P<id>[^/]+)/assets/(?P<asset_id>[^/]+)",
        "GET /hub/v1/campaigns/{id}/assets/{assetId}",
        "campaign_read",
        get_asset,
    ),
    _route(
        r"/interaction/v1/interactions",
        "GET /interaction/v1/interactions",
        "journeys_read",
        list_interactions,
    ),
    _route(
        r"/interaction/v1/interactions/key:(?P<key>[^/]+)",
        "GET /interaction/v1/interactions/key:{key}",
        "journeys_read",
        get_interaction_by_key,
    ),
    _route(
        r"/interaction/v1/interactions/(?P<id>[^/]+)",
        "GET /interaction/v1/interactions/{id}",
        "journeys_read",
        get_interaction,
    ),
)


def bad_request(exc: BadRequest) -> Response:
    return rest_error(400, str(exc), 10000, documentation="")
