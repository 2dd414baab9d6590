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

import logging
import os
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeAlias

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
# Pages reach dlt as Arrow tables; give their rows the same _dlt_id and _dlt_load_id as dicts.
os.environ.setdefault("NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_ID", "true")
os.environ.setdefault("NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID", "true")

import dlt
import pyarrow as pa
import pyarrow.compute as pc
from dlt.common.schema.typing import MERGE_DISPOSITION_HINTS
from dlt.extract.hints import make_hints
from dlt.extract.items import DataItemWithMeta
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
# dlt's cost is per item, not per row: pages reach it in batches. Campaign batches also set
# how many asset requests can run at once.
ROWS_BATCH = 10_000
CAMPAIGNS_BATCH = 500
VERSIONS_BATCH = 1_000
_UNRETRIEVABLE = re.compile(r"Request Property\(s\) (.+?) do not match")
Table: TypeAlias = pa.Table


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
    reader = _Reader(client, naive_zone, full_refresh)
    counts = Counter[str]() if row_counts is None else row_counts

    def counted(name: str, page: Table) -> Table:
        markers = pc.sum(page[DELETED]).as_py() if DELETED in page.column_names else None
        counts[name] += page.num_rows - (markers or 0)
        if on_rows is not None:
            on_rows(name)
        return page

    campaigns_cursor, lists_cursor = _cursor(full_refresh), _cursor(full_refresh)

    def campaigns(updated: Cursor = campaigns_cursor) -> Iterator[Table]:
        pages = reader.campaigns(None if full_refresh else updated.start_value)
        for batch in _batches(pages, CAMPAIGNS_BATCH):
            yield counted("campaigns", pa.concat_tables(batch))

    def campaign_assets(page: Table) -> Table | None:
        # campaign id → the modified_date its assets were read at, for the overlap's campaigns
        seen = dlt.current.resource_state().setdefault("assets_read_at", {})
        assets = reader.campaign_assets(page, seen)
        _forget_older(seen, OVERLAP * 2)
        return None if assets is None else counted("campaign_assets", assets)

    def lists(updated: Cursor = lists_cursor) -> Iterator[Table | DataItemWithMeta]:
        state = dlt.current.resource_state()
        if full_refresh or "refused_properties" not in state:
            state["refused_properties"] = reader.refused_list_properties()
        since = None if full_refresh else updated.start_value
        ids = _IdLog()
        for batch in _batches(reader.lists(since, state["refused_properties"]), ROWS_BATCH):
            page = pa.concat_tables(batch)
            ids.add(page["id"])
            yield counted("lists", page)
        if ids.repeats():  # a restarted Retrieve yields its first pages again
            yield dlt.mark.with_hints(_EMPTY_LISTS, make_hints(additional_table_hints=DEDUPLICATE))

    def journey_versions() -> Iterator[list[dict[str, Any]]]:
        for batch in _batches(reader.journey_versions(), VERSIONS_BATCH):
            yield [version for page in batch for version in page]

    def interactions(page: list[dict[str, Any]]) -> Table:
        return counted("interactions", reader.interactions(page))

    def goals(page: list[dict[str, Any]]) -> Table:
        return counted("goals", reader.goals(page))

    parent = _resource(CAMPAIGNS, campaigns, "merge")
    versions = dlt.resource(journey_versions, name="journey_versions", selected=False)
    resources = {
        "campaigns": parent,
        "campaign_assets": _transformer(
            CAMPAIGN_ASSETS, campaign_assets, parent, "delete-insert", merge_key="campaign_id"
        ).apply_hints(columns=[DELETED_HINT]),
        "lists": _resource(LISTS, lists, "merge").apply_hints(
            additional_table_hints={DEDUPLICATED: True}
        ),
        "interactions": _transformer(INTERACTIONS, interactions, versions, "merge"),
        "goals": _transformer(GOALS, goals, versions, "replace"),
    }
    for name, resource in resources.items():
        resource.selected = name in wanted
    return list(resources.values())


class _JsonTextIsIntended(logging.Filter):
    """JSON columns reach dlt as JSON text in Arrow string columns, and the warehouse column
    is JSON as hinted; dlt warns of that difference at every load. Drop only that warning."""

    RESOURCES = tuple(
        f"In resource: {c.name},"
        for c in COLLECTIONS.values()
        if any(column.type == "json" for column in c.columns)
    )

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith(self.RESOURCES) and "when merging arrow schema" in message)


logging.getLogger("dlt").addFilter(_JsonTextIsIntended())


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
    """Fetches each collection and shapes its pages into Arrow tables."""

    def __init__(self, client: SfmcClient, naive_zone: timezone, full_refresh: bool) -> None:
        self.client = client
        self.naive_zone = naive_zone
        self.full_refresh = full_refresh

    def _table(self, collection: Collection, records: list[Any], soap_rows: bool = False) -> Table:
        return rows.table(collection, records, soap=soap_rows, naive_zone=self.naive_zone)

    def campaigns(self, since: datetime | None) -> Iterator[Table]:
        """Campaigns modified since ``since``, newest first: paging stops at the first older one."""
        for items in rest_pages(self.client, "hub/v1/campaigns", CAMPAIGN_ORDER, "campaigns"):
            page = self._table(CAMPAIGNS, items)
            changed = page if since is None else page.filter(_since(page, since))
            if changed.num_rows:
                yield changed
            if changed.num_rows < page.num_rows:
                return

    def campaign_assets(self, campaigns: Table, seen: dict[str, str]) -> Table | None:
        """The assets of each campaign read whose ``modified_date`` differs from the one its
        assets were last read at (``seen``, which this updates), fetched ``concurrency`` at a
        time. They replace the campaign's assets in the warehouse; a campaign with none left
        gets a marker row that dlt deletes instead of inserting, so its old assets go too."""
        ids: list[str] = campaigns["id"].to_pylist()  # type: ignore[assignment]  # a key: never null
        modified: list[datetime | None] = campaigns["modified_date"].to_pylist()
        stamps = {c: _stamp(m) for c, m in zip(ids, modified, strict=True)}
        due = [c for c, stamp in stamps.items() if self.full_refresh or seen.get(c) != stamp]
        if not due:
            return None
        fetched = self.client.map(self._assets_of, due)
        seen.update((c, stamps[c]) for c in due)
        return pa.concat_tables(
            assets or _no_assets(c) for c, assets in zip(due, fetched, strict=True)
        )

    def _assets_of(self, campaign_id: str) -> Table | None:
        path = f"hub/v1/campaigns/{campaign_id}/assets"
        items = [i for page in rest_pages(self.client, path, {}, "campaign_assets") for i in page]
        return _with_deleted(self._table(CAMPAIGN_ASSETS, items)) if items else None

    def lists(self, since: datetime | None, refused: list[str]) -> Iterator[Table]:
        """Lists modified since ``since``. ``refused`` names the List properties this tenant
        will not return (they stay null); it grows in place when a Retrieve names another."""
        where = None
        if since is not None:
            where = soap.SimpleFilter(
                "ModifiedDate", "greaterThanOrEqual", (soap.format_date_value(since),), date=True
            )
        for page in self._retrieve_lists(where, refused):
            yield self._table(LISTS, page, soap_rows=True)

    def _retrieve_lists(
        self, where: soap.Filter | None, refused: list[str]
    ) -> Iterator[list[dict[str, str | None]]]:
        wanted = [c.source for c in LISTS.columns if c.source not in refused]
        while True:
            try:
                yield from self.client.retrieve("List", wanted, where, "lists")
                return
            except RequestRejected as exc:
                match = _UNRETRIEVABLE.search(str(exc))
                names = {n.strip() for n in match.group(1).split(",")} if match else set()
                if not names & set(wanted) or names & {"ID"}:
                    raise
                wanted = [p for p in wanted if p not in names]
                refused.extend(sorted(names & set(LISTS_SOURCES) - set(refused)))

    def refused_list_properties(self) -> list[str]:
        """The List properties Describe says cannot be retrieved."""
        described = self.client.describe("List", "lists")
        return [p for p in LISTS_SOURCES if p in described and not described[p].retrievable]

    def journey_versions(self) -> Iterator[list[dict[str, Any]]]:
        params = {"mostRecentVersionOnly": "false", "$orderBy": "ModifiedDate DESC"}
        yield from rest_pages(self.client, "interaction/v1/interactions", params, "interactions")

    def interactions(self, versions: list[dict[str, Any]]) -> Table:
        return self._table(INTERACTIONS, versions)

    def goals(self, versions: list[dict[str, Any]]) -> Table:
        parents = self._table(VERSION_KEY, versions).to_pylist()
        records = [
            {**goal, "interaction_id": parent["id"], "interaction_version": parent["version"]}
            for version, parent in zip(versions, parents, strict=True)
            for goal in [*_array(version, "goals"), *_array(version, "exits")]
        ]
        return self._table(GOALS, records)


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


def _batches(pages: Iterable[Sized], at_least: int) -> Iterator[list[Any]]:
    """Consecutive pages grouped until a group holds ``at_least`` rows."""
    batch: list[Any] = []
    size = 0
    for page in pages:
        batch.append(page)
        size += len(page)
        if size >= at_least:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


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
LISTS_SOURCES = [c.source for c in LISTS.columns]
# What goals need of their interaction version: its key, checked as interactions check it.
VERSION_KEY = replace(
    INTERACTIONS, columns=tuple(c for c in INTERACTIONS.columns if c.name in ("id", "version"))
)
# A merge deduplicates its staged rows by primary key: for a million rows that costs a window
# over all of them (most of the load's time and memory). Lists arrive unique unless a Retrieve
# restarted, which the ids they came with tell; only then is the dedup asked for again.
# dlt's table hint for "the staged rows are unique by primary key"
DEDUPLICATED = MERGE_DISPOSITION_HINTS["deduplicated"]
DEDUPLICATE: Any = {DEDUPLICATED: False}
_EMPTY_LISTS = rows.arrow_schema(LISTS).empty_table()


class _IdLog:
    """The (bigint) ids of every page loaded, kept in a temporary file (held in memory, even a
    copy of them pins the pages' memory) until the last page tells whether any came twice."""

    def __init__(self) -> None:
        self.file = tempfile.TemporaryFile()  # noqa: SIM115  # open across pages; repeats() closes it

    def add(self, ids: pa.ChunkedArray[Any]) -> None:
        for chunk in ids.chunks:
            values = chunk.buffers()[1]
            assert values is not None
            self.file.write(memoryview(values)[chunk.offset * 8 : (chunk.offset + len(chunk)) * 8])

    def repeats(self) -> bool:
        with self.file:
            self.file.seek(0)
            data = pa.py_buffer(self.file.read())
        every = pa.Array.from_buffers(pa.int64(), len(data) // 8, [None, data])
        return bool(pc.count_distinct(every).as_py() < len(every))


ASSETS_SCHEMA = rows.arrow_schema(CAMPAIGN_ASSETS).append(pa.field(DELETED, pa.bool_()))


def _with_deleted(assets: Table) -> Table:
    return assets.append_column(ASSETS_SCHEMA.field(DELETED), pa.nulls(len(assets), pa.bool_()))


def _no_assets(campaign_id: str) -> Table:
    """The marker row that deletes a campaign's assets (its ``id`` only fills the key)."""
    marker = {"id": f"no-assets:{campaign_id}", "campaign_id": campaign_id, DELETED: True}
    return pa.Table.from_pylist([marker], schema=ASSETS_SCHEMA)


def _stamp(modified: datetime | None) -> str:
    return modified.isoformat() if modified is not None else ""


def _forget_older(seen: dict[str, str], horizon: timedelta) -> None:
    """Keep only the campaigns a later run's overlap can read again."""
    if seen:
        newest = max(seen.values())
        oldest = (datetime.fromisoformat(newest) - horizon).isoformat() if newest else ""
        for campaign_id in [c for c, stamp in seen.items() if stamp < oldest]:
            del seen[campaign_id]


def _since(page: Table, since: datetime) -> pa.BooleanArray:
    """Rows modified at or after ``since``; rows without a modified date are kept."""
    modified = page["modified_date"]
    return pc.or_kleene(pc.is_null(modified), pc.greater_equal(modified, pa.scalar(since)))


def _array(record: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = record.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ResponseError(
            f"goals: {key} of interaction {record.get('id')} is not a list of objects"
        )
    return value
