"""The dlt source: SFMC collections as dlt resources. Wiring only; shapes live in ``rows``.

    import dlt
    from sfmc_source import Credentials, SfmcClient, sfmc_source

    client = SfmcClient(Credentials.for_subdomain(client_id, client_secret, subdomain))
    dlt.pipeline("sfmc", destination="duckdb", dataset_name="sfmc").run(sfmc_source(client))

Cursors are ``dlt.sources.incremental``: stored in the destination with the data, advanced
only with a committed load. Each run re-reads a small overlap behind the cursor; merging on
the primary key makes the overlap harmless.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

import dlt
from dlt.extract.resource import DltResource

from sfmc_source import rows, soap
from sfmc_source.client import SfmcClient
from sfmc_source.errors import RequestRejected, ResponseError
from sfmc_source.specs import (
    CAMPAIGN_ASSETS,
    CAMPAIGNS,
    COLLECTIONS,
    GOALS,
    INTERACTIONS,
    LISTS,
    Collection,
)
from sfmc_source.timefmt import SYSTEM_TIME

OVERLAP = timedelta(hours=1)
# A full refresh reads this whole range and neither uses nor moves the stored cursor.
EVERYTHING = (datetime(1900, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, tzinfo=UTC))
Cursor = dlt.sources.incremental[datetime]
CAMPAIGN_ORDER = {"$orderBy": "ModifiedDate DESC"}
PAGE_SIZE = 50
_UNRETRIEVABLE = re.compile(r"Request Property\(s\) (.+?) do not match")


@dlt.source(name="sfmc", max_table_nesting=0)
def sfmc_source(
    client: SfmcClient,
    collections: Sequence[str] | None = None,
    full_refresh: bool = False,
    naive_zone: timezone = SYSTEM_TIME,
    row_counts: Counter[str] | None = None,
    on_rows: Callable[[str], None] | None = None,
) -> list[DltResource]:
    """SFMC campaigns, campaign assets, lists, interactions (journey versions) and goals.

    ``row_counts``, when given, counts the rows each collection hands to dlt; ``on_rows`` is
    told the collection's name each time it hands over more."""
    wanted = set(collections or COLLECTIONS)
    reader = _Reader(client, naive_zone)
    counts = Counter[str]() if row_counts is None else row_counts

    def counted(name: str, page: list[dict[str, Any]]) -> list[dict[str, Any]]:
        counts[name] += sum(1 for row in page if DELETED not in row)
        if on_rows is not None:
            on_rows(name)
        return page

    campaigns_cursor, lists_cursor = _cursor(full_refresh), _cursor(full_refresh)

    def campaigns(updated: Cursor = campaigns_cursor) -> Iterator[list[dict[str, Any]]]:
        for page in reader.campaigns(None if full_refresh else updated.start_value):
            yield counted("campaigns", page)

    def campaign_assets(page: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
        for assets in reader.campaign_assets(page):
            yield counted("campaign_assets", assets)

    def lists(updated: Cursor = lists_cursor) -> Iterator[list[dict[str, Any]]]:
        for page in reader.lists(None if full_refresh else updated.start_value):
            yield counted("lists", page)

    def journey_versions() -> Iterator[list[dict[str, Any]]]:
        yield from reader.journey_versions()

    def interactions(page: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return counted("interactions", reader.interactions(page))

    def goals(page: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return counted("goals", reader.goals(page))

    parent = _resource(CAMPAIGNS, campaigns, "merge")
    versions = dlt.resource(journey_versions, name="journey_versions", selected=False)
    resources = {
        "campaigns": parent,
        "campaign_assets": _transformer(
            CAMPAIGN_ASSETS, campaign_assets, parent, "delete-insert", merge_key="campaign_id"
        ).apply_hints(columns=[DELETED_HINT]),
        "lists": _resource(LISTS, lists, "merge"),
        "interactions": _transformer(INTERACTIONS, interactions, versions, "merge"),
        "goals": _transformer(GOALS, goals, versions, "replace"),
    }
    for name, resource in resources.items():
        resource.selected = name in wanted
    return list(resources.values())


def _cursor(full_refresh: bool) -> Cursor:
    """The ``modified_date`` cursor: dlt keeps it in the destination with the data, moves it
    only with a committed load, and starts each run ``OVERLAP`` behind it. Rows without a
    modified date are kept, never dropped."""
    if full_refresh:
        start, end = EVERYTHING
        return Cursor(
            "modified_date", initial_value=start, end_value=end, on_cursor_value_missing="include"
        )
    return Cursor("modified_date", lag=OVERLAP.total_seconds(), on_cursor_value_missing="include")


def _hints(collection: Collection, disposition: str, **extra: Any) -> dict[str, Any]:
    write: Any = disposition
    if disposition == "delete-insert":
        write = {"disposition": "merge", "strategy": "delete-insert"}
    return {
        "name": collection.name,
        "primary_key": list(collection.primary_key),
        "write_disposition": write,
        "columns": rows.dlt_columns(collection),
        **extra,
    }


def _resource(collection: Collection, fetch: Any, disposition: str) -> DltResource:
    resource: DltResource = dlt.resource(fetch, **_hints(collection, disposition))
    return resource


def _transformer(
    collection: Collection, fetch: Any, parent: DltResource, disposition: str, **extra: Any
) -> DltResource:
    hints = _hints(collection, disposition, **extra)
    transformer: DltResource = dlt.transformer(fetch, data_from=parent, **hints)
    return transformer


class _Reader:
    """Fetches and shapes each collection."""

    def __init__(self, client: SfmcClient, naive_zone: timezone) -> None:
        self.client = client
        self.naive_zone = naive_zone

    def _shape(self, collection: Collection, record: Any, soap_row: bool = False) -> dict[str, Any]:
        if not isinstance(record, dict):
            raise ResponseError(f"{collection.name}: an item is not a JSON object: {record!r:.80}")
        return rows.shape(collection, record, soap=soap_row, naive_zone=self.naive_zone)

    def campaigns(self, since: datetime | None) -> Iterator[list[dict[str, Any]]]:
        """Campaigns modified since ``since``, newest first: paging stops at the first older one."""
        for items in rest_pages(self.client, "hub/v1/campaigns", CAMPAIGN_ORDER, "campaigns"):
            page = [self._shape(CAMPAIGNS, item) for item in items]
            changed = [r for r in page if since is None or _after(r["modified_date"], since)]
            if changed:
                yield changed
            if len(changed) < len(page):
                return

    def campaign_assets(self, campaigns: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
        """The assets of each campaign read, which replace its assets in the warehouse. A
        campaign with none left gets a marker row that dlt deletes instead of inserting, so its
        old assets go too."""
        for campaign in campaigns:
            path = f"hub/v1/campaigns/{campaign['id']}/assets"
            pages = rest_pages(self.client, path, {}, "campaign_assets")
            assets = [self._shape(CAMPAIGN_ASSETS, item) for items in pages for item in items]
            yield assets or [_no_assets(campaign["id"])]

    def lists(self, since: datetime | None) -> Iterator[list[dict[str, Any]]]:
        where = None
        if since is not None:
            where = soap.SimpleFilter(
                "ModifiedDate", "greaterThanOrEqual", (soap.format_date_value(since),), date=True
            )
        for page in self._retrieve_lists(where):
            yield [self._shape(LISTS, row, soap_row=True) for row in page]

    def _retrieve_lists(self, where: soap.Filter | None) -> Iterator[list[dict[str, str | None]]]:
        """Only the List properties this tenant lets us retrieve (Describe, and the error that
        names a refused property); the others stay null."""
        wanted = [c.source for c in LISTS.columns]
        described = self.client.describe("List", "lists")
        if described:
            wanted = [p for p in wanted if p not in described or described[p].retrievable]
        while True:
            try:
                yield from self.client.retrieve("List", wanted, where, "lists")
                return
            except RequestRejected as exc:
                refused = _UNRETRIEVABLE.search(str(exc))
                names = {n.strip() for n in refused.group(1).split(",")} if refused else set()
                if not names & set(wanted) or names & {"ID"}:
                    raise
                wanted = [p for p in wanted if p not in names]

    def journey_versions(self) -> Iterator[list[dict[str, Any]]]:
        params = {"mostRecentVersionOnly": "false", "$orderBy": "ModifiedDate DESC"}
        yield from rest_pages(self.client, "interaction/v1/interactions", params, "interactions")

    def interactions(self, versions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [self._shape(INTERACTIONS, item) for item in versions]

    def goals(self, versions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        shaped = []
        for version in versions:
            parent = self._shape(INTERACTIONS, version)
            for goal in [*_array(version, "goals"), *_array(version, "exits")]:
                record = {
                    **goal,
                    "interaction_id": parent["id"],
                    "interaction_version": parent["version"],
                }
                shaped.append(self._shape(GOALS, record))
        return shaped


def rest_pages(
    client: SfmcClient, path: str, params: dict[str, Any], label: str
) -> Iterator[list[Any]]:
    """Every page of a REST collection: ``$page``/``$pageSize`` until ``count`` items arrived or
    a page is empty. A short page before ``count`` means keep going (sfmc-api.md §2.4); a page
    that repeats the previous one is an error, not a loop."""
    page, seen, previous = 1, 0, None
    while True:
        body = client.get_json(path, {**params, "$page": page, "$pageSize": PAGE_SIZE}, label)
        items, count = _envelope(body, path)
        if not items:
            return
        if items == previous:
            raise ResponseError(f"GET {path}: page {page} repeats page {page - 1}")
        yield items
        seen += len(items)
        if count is None or seen >= count:
            return
        page, previous = page + 1, items


def _envelope(body: Any, path: str) -> tuple[list[Any], int | None]:
    if isinstance(body, list):
        return body, None
    if not isinstance(body, dict):
        raise ResponseError(f"GET {path}: the response is not a JSON object")
    items = body.get("items", body.get("entities"))
    count = body.get("count", body.get("totalCount"))
    if not isinstance(items, list) or not isinstance(count, int) or isinstance(count, bool):
        raise ResponseError(f"GET {path}: the response has no items/entities list and count")
    return items, count


DELETED = "_sfmc_deleted"
DELETED_HINT: Any = {"name": DELETED, "data_type": "bool", "nullable": True, "hard_delete": True}


def _no_assets(campaign_id: str) -> dict[str, Any]:
    return {"id": f"no-assets:{campaign_id}", "campaign_id": campaign_id, DELETED: True}


def _array(record: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = record.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ResponseError(
            f"goals: {key} of interaction {record.get('id')} is not a list of objects"
        )
    return value


def _after(instant: datetime | None, since: datetime) -> bool:
    return instant is None or instant >= since
