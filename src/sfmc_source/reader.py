"""Fetching each collection of one business unit and shaping its pages into Arrow tables,
every row stamped with the unit's MID. ``source`` decides what to fetch; this fetches it."""

from __future__ import annotations

import re
import tempfile
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any, TypeAlias

import pyarrow as pa
import pyarrow.compute as pc

from sfmc_source import rows, soap
from sfmc_source.client import SfmcClient
from sfmc_source.errors import RequestRejected, ResponseError
from sfmc_source.specs import (
    CAMPAIGN_ASSETS,
    CAMPAIGNS,
    EVENT_KEY,
    GOALS,
    INTERACTIONS,
    LISTS,
    SENDS,
    SUBSCRIBERS,
    Collection,
)

Table: TypeAlias = pa.Table
CAMPAIGN_ORDER = {"$orderBy": "ModifiedDate DESC"}
PAGE_SIZE = 50
# How many values one SOAP ``IN`` filter carries (the tap's batches of SubscriberKeys).
IN_BATCH = 100
# Tracking events are read in EventDate windows of this width (tap v2's default); after a
# window of less than a page the next is twice as wide, up to WIDEST_WINDOW.
EVENT_WINDOW = timedelta(days=30)
WIDEST_WINDOW = EVENT_WINDOW * 8
DELETED = "_sfmc_deleted"
_UNRETRIEVABLE = re.compile(r"Request Property\(s\) (.+?) do not match")
# The parts of an event's natural key that are never null (the others may be).
EVENT_KEY_PARTS = ("send_id", "event_type", "event_date")
# A null SubscriberKey in an event key: a character no SubscriberKey is likely to be.
NO_KEY = "∅"
# What goals need of their interaction version: its key, checked as interactions check it.
VERSION_KEY = replace(
    INTERACTIONS, columns=tuple(c for c in INTERACTIONS.columns if c.name in ("id", "version"))
)


class Reader:
    """Fetches the collections of business unit ``unit`` through ``client``."""

    def __init__(
        self, client: SfmcClient, unit: int, naive_zone: timezone, full_refresh: bool
    ) -> None:
        self.client = client
        self.unit = unit
        self.naive_zone = naive_zone
        self.full_refresh = full_refresh
        self.assets_schema = rows.warehouse_schema(CAMPAIGN_ASSETS).append(
            pa.field(DELETED, pa.bool_())
        )

    def _table(self, collection: Collection, records: list[Any], soap_rows: bool = False) -> Table:
        shaped = rows.table(collection, records, soap=soap_rows, naive_zone=self.naive_zone)
        return self._stamped(shaped)

    def _stamped(self, table: Table) -> Table:
        unit = pa.array([self.unit] * table.num_rows, pa.int64())
        return table.append_column(pa.field("business_unit_id", pa.int64(), False), unit)

    # ---- REST -----------------------------------------------------------------------------

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
            assets or self._no_assets(c) for c, assets in zip(due, fetched, strict=True)
        )

    def _assets_of(self, campaign_id: str) -> Table | None:
        path = f"hub/v1/campaigns/{campaign_id}/assets"
        items = [i for page in rest_pages(self.client, path, {}, "campaign_assets") for i in page]
        if not items:
            return None
        assets = self._table(CAMPAIGN_ASSETS, items)
        return assets.append_column(
            self.assets_schema.field(DELETED), pa.nulls(len(assets), pa.bool_())
        )

    def _no_assets(self, campaign_id: str) -> Table:
        """The marker row that deletes a campaign's assets (its ``id`` only fills the key)."""
        marker = {
            "id": f"no-assets:{campaign_id}",
            "campaign_id": campaign_id,
            "business_unit_id": self.unit,
            DELETED: True,
        }
        return pa.Table.from_pylist([marker], schema=self.assets_schema)

    def journey_versions(self) -> Iterator[list[dict[str, Any]]]:
        params = {"mostRecentVersionOnly": "false", "$orderBy": "ModifiedDate DESC"}
        yield from rest_pages(self.client, "interaction/v1/interactions", params, "interactions")

    def interactions(self, versions: list[dict[str, Any]]) -> Table:
        return self._table(INTERACTIONS, versions)

    def goals(self, versions: list[dict[str, Any]]) -> Table:
        parents = rows.table(VERSION_KEY, versions).to_pylist()
        records = [
            {**goal, "interaction_id": parent["id"], "interaction_version": parent["version"]}
            for version, parent in zip(versions, parents, strict=True)
            for goal in [*_array(version, "goals"), *_array(version, "exits")]
        ]
        return self._table(GOALS, records)

    # ---- SOAP -----------------------------------------------------------------------------

    def changed(
        self, collection: Collection, since: datetime | None, refused: list[str]
    ) -> Iterator[Table]:
        """The rows of a SOAP collection modified since ``since`` (all without it).
        ``refused`` names the properties this tenant will not return (they stay null); it
        grows in place when a Retrieve names another."""
        yield from self._retrieve(collection, _modified_since(since), refused)

    def refused_list_properties(self) -> list[str]:
        """The List properties Describe says cannot be retrieved."""
        described = self.client.describe("List", "lists")
        sources = [c.source for c in LISTS.columns]
        return [p for p in sources if p in described and not described[p].retrievable]

    def subscribers(self, keys: Sequence[str] | None, refused: list[str]) -> Iterator[Table]:
        """The subscribers with these SubscriberKeys (``IN_BATCH`` a request, ``concurrency``
        requests at a time), or every subscriber."""
        if keys is None:
            yield from self._retrieve(SUBSCRIBERS, None, refused)
            return

        def batch(part: Sequence[str]) -> Table | None:
            where = _among("SubscriberKey", part)
            pages = list(self._retrieve(SUBSCRIBERS, where, refused))
            return pa.concat_tables(pages) if pages else None

        for table in self.client.map(batch, _chunks(keys, IN_BATCH)):
            if table is not None:
                yield table

    def sends_by_id(self, ids: Sequence[int], refused: list[str]) -> Iterator[Table]:
        for part in _chunks([str(i) for i in ids], IN_BATCH):
            yield from self._retrieve(SENDS, _among("ID", part), refused)

    def events(
        self,
        collection: Collection,
        since: datetime,
        now: datetime,
        backfill: bool,
        refused: list[str],
    ) -> Iterator[Table]:
        """The events of ``collection`` dated after ``since``, one EventDate window after
        another; the last window has no end, so nothing dated later is missed. Windows are
        half-open, ``(start, end]``: no event is read twice. A backfill starts with
        ``EVENT_WINDOW``; an incremental run, which reads what happened since the last, with
        ``WIDEST_WINDOW``."""
        natural = replace(collection, columns=collection.columns[1:], primary_key=EVENT_KEY_PARTS)
        schema = rows.arrow_schema(collection)
        start, width = since, EVENT_WINDOW if backfill else WIDEST_WINDOW
        while True:
            end = start + width if start + width < now else None
            found = 0
            where = _dated(start, end)
            for page in self._retrieve(natural, where, refused, stamp=False):
                found += page.num_rows
                yield self._stamped(_with_event_key(page, collection).cast(schema))
            if end is None:
                return
            start = end
            width = min(width * 2, WIDEST_WINDOW) if found < soap.MAX_BATCH_SIZE else EVENT_WINDOW

    def _retrieve(
        self,
        collection: Collection,
        where: soap.Filter | None,
        refused: list[str],
        stamp: bool = True,
    ) -> Iterator[Table]:
        """Every page of a Retrieve of ``collection``'s properties but the ``refused`` ones.
        When SFMC refuses another by name, that one joins ``refused`` (it stays null) and the
        Retrieve starts over; a refused key property is an error."""
        sources = [c.source for c in collection.columns]
        wanted = [p for p in sources if p not in refused]
        keys = {c.source for c in collection.columns if c.name in collection.primary_key}
        while True:
            try:
                assert collection.soap_object is not None
                retrieved = self.client.retrieve(
                    collection.soap_object, wanted, where, collection.name
                )
                for page in retrieved:
                    shaped = rows.table(collection, page, soap=True, naive_zone=self.naive_zone)
                    yield self._stamped(shaped) if stamp else shaped
                return
            except RequestRejected as exc:
                match = _UNRETRIEVABLE.search(str(exc))
                names = {n.strip() for n in match.group(1).split(",")} if match else set()
                if not names & set(wanted) or names & keys:
                    raise
                wanted = [p for p in wanted if p not in names]
                refused.extend(sorted(names & set(sources) - set(refused)))


class UniqueKeys:
    """The primary keys of every page loaded, hashed to 64 bits and kept in a temporary file
    (held in memory, even a copy of them pins the pages' memory) until the last page tells
    whether any came twice. A hash collision only asks for a dedup that was not needed."""

    def __init__(self, collection: Collection) -> None:
        self.key = list(collection.primary_key)
        self.file = tempfile.TemporaryFile()  # noqa: SIM115  # open across pages; repeated() closes it

    def add(self, page: Table) -> None:
        if len(self.key) == 1 and pa.types.is_int64(page.schema.field(self.key[0]).type):
            for chunk in page[self.key[0]].chunks:
                values = chunk.buffers()[1]
                assert values is not None
                start, end = chunk.offset * 8, (chunk.offset + len(chunk)) * 8
                self.file.write(memoryview(values)[start:end])
            return
        columns = [page[k].to_pylist() for k in self.key]
        keys = columns[0] if len(columns) == 1 else zip(*columns, strict=True)
        self.file.write(array("q", map(hash, keys)).tobytes())

    def repeated(self) -> bool:
        with self.file:
            self.file.seek(0)
            data = pa.py_buffer(self.file.read())
        every = pa.Array.from_buffers(pa.int64(), len(data) // 8, [None, data])
        return bool(pc.count_distinct(every).as_py() < len(every))


def rest_pages(
    client: SfmcClient, path: str, params: dict[str, Any], label: str
) -> Iterator[list[Any]]:
    """Every page of a REST collection: ``$page``/``$pageSize`` until ``count`` items arrived or
    a page is empty. A short page before ``count`` means keep going
    (docs/sfmc-api.md#journey-paging); a page that repeats the previous one is an error, not a
    loop."""
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


def _with_event_key(page: Table, collection: Collection) -> Table:
    """``event_key`` first: SendID|EventType|SubscriberKey (∅ when null)|EventDate in UTC|
    BatchID, and the URL for clicks, so the same event read twice has the same key."""
    parts: list[Any] = [
        page["send_id"].cast(pa.string()),
        page["event_type"],
        pc.coalesce(page["subscriber_key"], pa.scalar(NO_KEY)),
        pc.strftime(page["event_date"], format="%Y-%m-%dT%H:%M:%SZ"),
        pc.coalesce(page["batch_id"].cast(pa.string()), pa.scalar("")),
    ]
    if "url" in page.column_names:
        parts.append(pc.coalesce(page["url"], pa.scalar("")))
    key = pc.binary_join_element_wise(*parts, "|")
    return page.add_column(0, pa.field(EVENT_KEY.name, pa.string(), False), key)


def _modified_since(since: datetime | None) -> soap.Filter | None:
    if since is None:
        return None
    return soap.SimpleFilter(
        "ModifiedDate", "greaterThanOrEqual", (soap.format_date_value(since),), date=True
    )


def _dated(start: datetime, end: datetime | None) -> soap.Filter:
    after = soap.SimpleFilter(
        "EventDate", "greaterThan", (soap.format_date_value(start),), date=True
    )
    if end is None:
        return after
    until = soap.SimpleFilter(
        "EventDate", "lessThanOrEqual", (soap.format_date_value(end),), date=True
    )
    return soap.ComplexFilter(after, "AND", until)


def _among(name: str, values: Sequence[str]) -> soap.Filter:
    if len(values) == 1:
        return soap.SimpleFilter(name, "equals", tuple(values))
    return soap.SimpleFilter(name, "IN", tuple(values))


def _chunks(values: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [values[i : i + size] for i in range(0, len(values), size)]


def _stamp(modified: datetime | None) -> str:
    return modified.isoformat() if modified is not None else ""


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
