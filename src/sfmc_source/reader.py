"""Fetching the collections of one business unit and shaping their pages into Arrow tables,
every row stamped with the unit's MID. What to fetch comes from the spec rows and from
``source``, which owns what runs remember; a reader returns what it learns (the properties a
tenant refuses, the campaigns it read assets of) instead of keeping it."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, TypeAlias

import pyarrow as pa
import pyarrow.compute as pc

from sfmc_source import rows, soap
from sfmc_source.client import SfmcClient
from sfmc_source.errors import PropertyRefused, ResponseError
from sfmc_source.paging import PAGINATORS
from sfmc_source.specs import EVENT_KEY, ChangedParents, Collection, Nested, Rest, Soap
from sfmc_source.tally import DELETED

Table: TypeAlias = pa.Table
# An EventDate window: after its start, up to its end (none: up to whenever).
Window: TypeAlias = tuple[datetime, datetime | None]
# How many values one SOAP ``IN`` filter carries (the tap's batches of SubscriberKeys).
IN_BATCH = 100
# Tracking events are read in EventDate windows (``event_windows``) no wider than
# WIDEST_WINDOW and, in a backfill, no narrower than EVENT_WINDOW (tap v2's width).
EVENT_WINDOW = timedelta(days=30)
WIDEST_WINDOW = EVENT_WINDOW * 8
# The parts of an event's natural key that are never null (the others may be).
EVENT_KEY_PARTS = ("send_id", "event_type", "event_date")
# A null SubscriberKey in an event key: a character no SubscriberKey is likely to be.
NO_KEY = "∅"


@dataclass
class Retrieval:
    """SOAP pages to read, and what reading them taught: ``refused``, the properties the
    tenant would not return (they stay null), once the pages are read."""

    pages: Iterator[Table]
    refused: list[str] = field(default_factory=list)
    _learning: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def learn(self, refused: Iterable[str]) -> None:
        """Note properties the tenant refused; Retrieves running at once may learn the same."""
        with self._learning:
            self.refused.extend(sorted(set(refused) - set(self.refused)))

    @classmethod
    def reading(cls, pages: Callable[[Retrieval], Iterator[Table]]) -> Retrieval:
        """The retrieval of the pages ``pages`` reads, telling it what they teach."""
        retrieval = cls(iter(()))
        retrieval.pages = pages(retrieval)
        return retrieval

    def __iter__(self) -> Iterator[Table]:
        return self.pages


class Reader:
    """Fetches the collections of business unit ``unit`` through ``client``."""

    def __init__(
        self, client: SfmcClient, unit: int, naive_zone: timezone, full_refresh: bool
    ) -> None:
        self.client = client
        self.unit = unit
        self.naive_zone = naive_zone
        self.full_refresh = full_refresh

    def _table(self, collection: Collection, records: list[Any], soap_rows: bool = False) -> Table:
        shaped = rows.table(collection, records, soap=soap_rows, naive_zone=self.naive_zone)
        return self._stamped(shaped)

    def _stamped(self, table: Table) -> Table:
        unit = pa.array([self.unit] * table.num_rows, pa.int64())
        return table.append_column(pa.field("business_unit_id", pa.int64(), False), unit)

    # ---- REST -----------------------------------------------------------------------------

    def records(
        self,
        collection: Collection,
        path: str | None = None,
        params: dict[str, str] | None = None,
    ) -> Iterator[list[Any]]:
        """The raw items of a REST collection, page by page (``path`` and ``params``: one
        parent's)."""
        assert isinstance(collection.source, Rest)
        source = collection.source
        pages = PAGINATORS[source.paginator]
        query = dict(source.params) if params is None else params
        yield from pages(self.client, path or source.path, query, collection.name)

    def shaped(self, collection: Collection, records: list[Any]) -> Table:
        return self._table(collection, records)

    def newest_first(self, collection: Collection, since: datetime | None) -> Iterator[Table]:
        """Rows modified since ``since`` of a listing ordered newest first: paging stops at
        the first older one."""
        column = collection.cursor
        assert column is not None
        for items in self.records(collection):
            page = self._table(collection, items)
            changed = page if since is None else page.filter(_since(page, column, since))
            if changed.num_rows:
                yield changed
            if changed.num_rows < page.num_rows:
                return

    def per_parent(
        self, collection: Collection, parents: Table, seen: dict[str, str]
    ) -> tuple[Table | None, dict[str, str]]:
        """The rows of each parent row whose stamp column differs from the one they were last
        read at (``seen``, by ``_stamp_key``), fetched ``concurrency`` at a time, and the
        stamps of every parent row. They replace the parent's rows in the warehouse; a parent
        with none left gets a marker row that dlt deletes instead of inserting, so its old
        rows go too."""
        how = collection.incremental
        assert isinstance(how, ChangedParents)
        records = parents.to_pylist()
        stamps = {_stamp_key(how, r): _stamp(r[how.stamp]) for r in records}
        due = [
            r
            for r in records
            if self.full_refresh or seen.get(_stamp_key(how, r)) != _stamp(r[how.stamp])
        ]
        if not due:
            return None, stamps
        fetched = self.client.map(lambda parent: self._of_parent(collection, parent), due)
        table = pa.concat_tables(
            found or self._none_left(collection, p) for p, found in zip(due, fetched, strict=True)
        )
        return table, stamps

    def _of_parent(self, collection: Collection, parent: dict[str, Any]) -> Table | None:
        """One parent's rows: its columns fill the path and params, and its key the rows'."""
        source, how = collection.source, collection.incremental
        assert isinstance(source, Rest) and isinstance(how, ChangedParents)
        params = {name: value.format(**parent) for name, value in source.params}
        pages = self.records(collection, source.path.format(**parent), params)
        items = [i for page in pages for i in page]
        if source.within:
            items = [e for item in items for e in _array(item, source.within, collection.name)]
        if not items:
            return None
        links = {collection.source_of(child): parent[column] for child, column in how.parent_key}
        found = self._table(collection, [{**item, **links} for item in items])
        return found.append_column(pa.field(DELETED, pa.bool_()), pa.nulls(len(found), pa.bool_()))

    def _none_left(self, collection: Collection, parent: dict[str, Any]) -> Table:
        """The marker row that deletes a parent's rows: the parent's key, and text naming
        the parent in the rest of the primary key."""
        how = collection.incremental
        assert isinstance(how, ChangedParents)
        schema = rows.warehouse_schema(collection).append(pa.field(DELETED, pa.bool_()))
        marker = {child: parent[column] for child, column in how.parent_key}
        filler = f"no-{collection.name}:{_stamp_key(how, parent)}"
        marker.update({key: filler for key in collection.primary_key if key not in marker})
        marker.update({"business_unit_id": self.unit, DELETED: True})
        return pa.Table.from_pylist([marker], schema=schema)

    def nested(self, collection: Collection, parent: Collection, records: list[Any]) -> Table:
        """The entries of each parent record's arrays, with the parent's key (shaped and
        checked as the parent's rows are)."""
        assert isinstance(collection.source, Nested)
        links = dict(collection.source.parent_key)
        key = replace(parent, columns=tuple(c for c in parent.columns if c.name in links.values()))
        keys = rows.table(key, records).to_pylist()
        found = [
            {**entry, **{child: of[column] for child, column in links.items()}}
            for record, of in zip(records, keys, strict=True)
            for array in collection.source.arrays
            for entry in _array(record, array, collection.name)
        ]
        return self._table(collection, found)

    # ---- SOAP -----------------------------------------------------------------------------

    def refused_by_describe(self, collection: Collection) -> list[str]:
        """The properties Describe says cannot be retrieved."""
        assert collection.soap_object is not None
        described = self.client.describe(collection.soap_object, collection.name)
        sources = [c.source for c in collection.columns]
        return [p for p in sources if p in described and not described[p].retrievable]

    def changed(
        self, collection: Collection, since: datetime | None, refused: Sequence[str]
    ) -> Retrieval:
        """The rows of a SOAP collection modified since ``since`` (all without it), without
        the ``refused`` properties."""
        where = _modified_since(since)
        return Retrieval.reading(
            lambda learned: self._retrieve(collection, where, refused, learned)
        )

    def by_keys(
        self,
        collection: Collection,
        column: str,
        keys: Sequence[str] | None,
        refused: Sequence[str],
    ) -> Retrieval:
        """The rows whose ``column`` is one of ``keys`` (``IN_BATCH`` a request, ``concurrency``
        requests at a time), or every row."""
        retrieval = Retrieval(iter(()))
        if keys is None:
            retrieval.pages = self._retrieve(collection, None, refused, retrieval)
            return retrieval
        name = collection.source_of(column)

        def batch(part: Sequence[str]) -> Table | None:
            pages = list(self._retrieve(collection, _among(name, part), refused, retrieval))
            return pa.concat_tables(pages) if pages else None

        found = self.client.map(batch, _chunks(keys, IN_BATCH)) if keys else []
        retrieval.pages = (table for table in found if table is not None)
        return retrieval

    def events(
        self,
        collection: Collection,
        since: datetime,
        now: datetime,
        backfill: bool,
        refused: Sequence[str],
    ) -> Retrieval:
        """The events of ``collection`` dated after ``since``, read in the EventDate windows
        of ``event_windows``, up to ``concurrency`` at once, each its own Retrieve; pages come
        as they arrive, so the cursor is their highest EventDate. A window that fails fails
        them all."""
        return Retrieval.reading(
            lambda learned: self._windows(collection, since, now, backfill, refused, learned)
        )

    def _windows(
        self,
        collection: Collection,
        since: datetime,
        now: datetime,
        backfill: bool,
        refused: Sequence[str],
        retrieval: Retrieval,
    ) -> Iterator[Table]:
        natural = replace(collection, columns=collection.columns[1:], primary_key=EVENT_KEY_PARTS)
        schema = rows.arrow_schema(collection)

        spans = event_windows(since, now, backfill, self.client.throttle.limit)
        alone = len(spans) == 1  # windows read side by side fetch no page ahead

        def window(span: Window) -> Iterator[Table]:
            where = _dated(*span)
            pages = self._retrieve(natural, where, refused, retrieval, stamp=False, ahead=alone)
            for page in pages:
                yield self._stamped(_with_event_key(page, collection).cast(schema))

        return self.client.interleave(window, spans)

    def _retrieve(
        self,
        collection: Collection,
        where: soap.Filter | None,
        refused: Sequence[str],
        learned: Retrieval,
        stamp: bool = True,
        ahead: bool = True,
    ) -> Iterator[Table]:
        """Every page of a Retrieve of ``collection``'s properties but the refused ones (those
        given and those ``learned`` so far), the next fetched while one is handled if
        ``ahead``. When SFMC refuses another by name, it is ``learned`` and the Retrieve
        starts over; a refused key property is an error."""
        assert isinstance(collection.source, Soap)
        sources = [c.source for c in collection.columns]
        keys = {c.source for c in collection.columns if c.name in collection.primary_key}
        while True:
            wanted = [p for p in sources if p not in refused and p not in learned.refused]
            try:
                pages = self.client.retrieve(
                    collection.source.object, wanted, where, collection.name, ahead
                )
                for page in pages:
                    shaped = rows.table(collection, page, soap=True, naive_zone=self.naive_zone)
                    yield self._stamped(shaped) if stamp else shaped
                return
            except PropertyRefused as exc:
                names = set(exc.properties)
                if not names & set(wanted) or names & keys:
                    raise
                learned.learn(names & set(sources))


def event_windows(since: datetime, now: datetime, backfill: bool, concurrency: int) -> list[Window]:
    """Half-open EventDate windows ``(start, end]`` from ``since`` on, of equal width; the
    last has no end, so nothing dated later is missed, and no event is in two.

    An incremental run reads what happened since the last in as few windows as can be, none
    wider than ``WIDEST_WINDOW``: one request when nothing is new. A backfill has as many
    more as can be read at once (``concurrency``), none narrower than ``EVENT_WINDOW``:
    a quiet unit costs one request per window, a busy one reads its windows side by side.
    """
    span = max(now - since, timedelta(0))
    count = max(math.ceil(span / WIDEST_WINDOW), 1)
    if backfill:
        count = max(count, min(concurrency, math.ceil(span / EVENT_WINDOW)))
    width = span / count
    starts = [since + width * n for n in range(count)]
    ends: list[datetime | None] = [*starts[1:], None]
    return list(zip(starts, ends, strict=True))


def _with_event_key(page: Table, collection: Collection) -> Table:
    """``event_key`` first: SendID|EventType|SubscriberKey (∅ when null)|EventDate in UTC|
    BatchID, and the URL for clicks, so the same event read twice has the same key."""
    parts: list[Any] = [
        page["send_id"].cast(pa.string()),
        page["event_type"],
        pc.coalesce(page["subscriber_key"], pa.scalar(NO_KEY)),
        _utc_text(page["event_date"]),
        pc.coalesce(page["batch_id"].cast(pa.string()), pa.scalar("")),
    ]
    if "url" in page.column_names:
        parts.append(pc.coalesce(page["url"], pa.scalar("")))
    key = pc.binary_join_element_wise(*parts, "|")
    return page.add_column(0, pa.field(EVENT_KEY.name, pa.string(), False), key)


def _utc_text(instants: pa.ChunkedArray[Any]) -> pa.ChunkedArray[Any]:
    """UTC instants as ``2024-06-01T16:02:01.987000Z``, as ``strftime`` with
    ``%Y-%m-%dT%H:%M:%SZ`` writes them, in a twentieth of its time: cast as naive instants,
    with ``T`` in place of the space Arrow writes."""
    naive = instants.cast(pa.timestamp("us")).cast(pa.string())
    iso = pc.utf8_replace_slice(naive, 10, 11, "T")
    # the stubs take no text among the arrays joined
    return pc.binary_join_element_wise(iso, "Z", "")  # type: ignore[no-any-return,call-overload]


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


def _stamp_key(how: ChangedParents, parent: dict[str, Any]) -> str:
    """What a parent's read stamp is kept under: its key's values, joined by ``|``."""
    return "|".join(str(parent[column]) for _, column in how.parent_key)


def _stamp(modified: datetime | None) -> str:
    return modified.isoformat() if modified is not None else ""


def _since(page: Table, column: str, since: datetime) -> pa.BooleanArray:
    """Rows whose ``column`` is at or after ``since``; rows without one are kept."""
    modified = page[column]
    return pc.or_kleene(pc.is_null(modified), pc.greater_equal(modified, pa.scalar(since)))


def _array(record: dict[str, Any], key: str, collection: str) -> list[dict[str, Any]]:
    value = record.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ResponseError(
            f"{collection}: {key} of item {record.get('id')} is not a list of objects"
        )
    return value
