"""The dlt source: SFMC collections of one business unit as dlt resources. Wiring only;
shapes live in ``rows``, fetching in ``reader``.

    import dlt
    from sfmc_source import Credentials, SfmcClient, sfmc_source

    client = SfmcClient(Credentials.for_subdomain(client_id, client_secret, subdomain))
    dlt.pipeline("sfmc", destination="duckdb", dataset_name="sfmc").run(sfmc_source(client))

Every row carries ``business_unit_id``, the first part of every primary key, so several
business units load into the same tables. What a resource remembers between runs (its cursor,
the campaigns whose assets it read, the properties a tenant refuses ...) lives in dlt resource
state under the unit's MID: stored in the destination with the data, and committed only with
a load. Each run re-reads a small overlap behind a cursor; merging on the primary key makes
the overlap harmless.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
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

from sfmc_source import rows
from sfmc_source.client import SfmcClient
from sfmc_source.reader import DELETED, Reader, UniqueKeys
from sfmc_source.specs import (
    CAMPAIGN_ASSETS,
    CAMPAIGNS,
    COLLECTIONS,
    EVENTS,
    GOALS,
    INTERACTIONS,
    LIST_SUBSCRIBERS,
    LISTS,
    SENDS,
    SUBSCRIBERS,
    Collection,
)
from sfmc_source.timefmt import SYSTEM_TIME

OVERLAP = timedelta(hours=1)
# Tracking events can arrive late (docs/sfmc-api.md#tracking-events): each run re-reads a few
# hours of them.
EVENTS_OVERLAP = timedelta(hours=6)
# SFMC keeps send and engagement data this long; a first sync reads this far back.
RETENTION = timedelta(days=730)
# A send's counters move as opens and clicks arrive, without its ModifiedDate moving.
RECENT_SENDS = timedelta(days=30)
# dlt's cost is per item, not per row: pages reach it in batches. Campaign batches also set
# how many asset requests can run at once.
ROWS_BATCH = 10_000
CAMPAIGNS_BATCH = 500
VERSIONS_BATCH = 1_000
Table: TypeAlias = pa.Table

# dlt's table hint for "the staged rows are unique by primary key". A merge deduplicates its
# staged rows by primary key: for a million rows that costs a window over all of them (most of
# the load's time and memory). SOAP rows arrive unique unless a Retrieve restarted, which the
# keys they came with tell; only then is the dedup asked for again.
DEDUPLICATED = MERGE_DISPOSITION_HINTS["deduplicated"]
DEDUPLICATE: Any = {DEDUPLICATED: False}
DELETED_HINT: Any = {"name": DELETED, "data_type": "bool", "nullable": True, "hard_delete": True}


@dlt.source(name="sfmc", max_table_nesting=0)
def sfmc_source(
    client: SfmcClient,
    collections: Sequence[str] | None = None,
    full_refresh: bool = False,
    naive_zone: timezone = SYSTEM_TIME,
    row_counts: Counter[str] | None = None,
    on_rows: Callable[[str], None] | None = None,
    backfill: timedelta = RETENTION,
    now: datetime | None = None,
) -> list[DltResource]:
    """The collections of the business unit ``client`` acts in (all by default).

    A first sync reads tracking events and sends from ``backfill`` before ``now``.
    ``row_counts``, when given, counts the rows each collection hands to dlt; ``on_rows`` is
    told the collection's name each time it hands over more."""
    wanted = set(collections or COLLECTIONS)
    unit = client.business_unit_id()
    reader = Reader(client, unit, naive_zone, full_refresh)
    counts = Counter[str]() if row_counts is None else row_counts
    now = now or datetime.now(UTC)
    first_start = now - backfill

    def counted(name: str, page: Table) -> Table:
        markers = pc.sum(page[DELETED]).as_py() if DELETED in page.column_names else None
        counts[name] += page.num_rows - (markers or 0)
        if on_rows is not None:
            on_rows(name)
        return page

    def campaigns() -> Iterator[Table]:
        cursor = _Cursor(CAMPAIGNS, unit, OVERLAP)
        for batch in _batches(reader.campaigns(cursor.since(full_refresh)), CAMPAIGNS_BATCH):
            yield counted("campaigns", cursor.seen(pa.concat_tables(batch)))
        cursor.commit()

    def campaign_assets(page: Table) -> Table | None:
        # campaign id → the modified_date its assets were read at, for the overlap's campaigns
        seen = _unit_state(unit).setdefault("assets_read_at", {})
        assets = reader.campaign_assets(page, seen)
        _forget_older(seen, OVERLAP * 2)
        return None if assets is None else counted("campaign_assets", assets)

    def staged(
        collection: Collection, cursor: _Cursor, pages: Iterable[Table]
    ) -> Iterator[Table | DataItemWithMeta]:
        """SOAP pages in batches, counted and seen by the cursor, staged without dedup unless
        a key came twice; the cursor moves with the load."""
        keys = UniqueKeys(collection)
        for batch in _batches(pages, ROWS_BATCH):
            page = pa.concat_tables(batch)
            keys.add(page)
            yield counted(collection.name, cursor.seen(page))
        yield from _deduplicate_if(keys.repeated(), collection)
        cursor.commit()

    def soap_rows(collection: Collection) -> Iterator[Table | DataItemWithMeta]:
        """A SOAP collection with a ModifiedDate cursor."""
        cursor = _Cursor(collection, unit, OVERLAP)
        refused = cursor.state["refused_properties"]
        yield from staged(
            collection, cursor, reader.changed(collection, cursor.since(full_refresh), refused)
        )

    def lists() -> Iterator[Table | DataItemWithMeta]:
        state = _unit_state(unit)
        if full_refresh or "refused_properties" not in state:
            state["refused_properties"] = reader.refused_list_properties()
        yield from soap_rows(LISTS)

    def list_subscribers() -> Iterator[Table | DataItemWithMeta]:
        yield from soap_rows(LIST_SUBSCRIBERS)

    asked: set[str] = set()  # the SubscriberKeys this run has read (or is reading: all)

    def subscribers(memberships: Table) -> Iterator[Table]:
        state = _unit_state(unit)
        refused = state.setdefault("refused_properties", [])  # grows if a Retrieve says so
        if full_refresh or not state.get("scanned"):
            # the first page of memberships starts a scan of every subscriber; later ones wait
            if not asked:
                asked.add("*")
                for page in reader.subscribers(None, refused):
                    yield counted("subscribers", page)
                state["scanned"] = True
            return
        found = pc.unique(memberships["subscriber_key"]).to_pylist()  # a key: never null
        keys = [str(k) for k in found if k not in asked]
        asked.update(keys)
        for page in reader.subscribers(keys, refused):
            yield counted("subscribers", page)

    def sends() -> Iterator[Table | DataItemWithMeta]:
        cursor = _Cursor(SENDS, unit, OVERLAP, first=first_start)
        recent = cursor.state.setdefault("recent_sends", {})  # send id → its send date
        refused = cursor.state["refused_properties"]

        def pages() -> Iterator[Table]:
            read: set[int] = set()
            for page in reader.changed(SENDS, cursor.since(full_refresh), refused):
                read.update(page["id"].to_pylist())  # type: ignore[arg-type]  # a key: never null
                _remember_recent(recent, page)
                yield page
            again = sorted({*map(int, recent), *_active_sends(unit)} - read)
            for page in reader.sends_by_id(again, refused):
                _remember_recent(recent, page)
                yield page

        yield from staged(SENDS, cursor, pages())
        _forget_before(recent, now - RECENT_SENDS)

    def events(collection: Collection) -> Callable[[], Iterator[Table | DataItemWithMeta]]:
        def read() -> Iterator[Table | DataItemWithMeta]:
            cursor = _Cursor(collection, unit, EVENTS_OVERLAP, first=first_start)
            since = cursor.since(full_refresh) or first_start
            refused = cursor.state["refused_properties"]
            active: set[int] = set()  # the sends of events newer than the cursor

            def pages() -> Iterator[Table]:
                for page in reader.events(collection, since, now, since == first_start, refused):
                    if cursor.stored is not None:
                        newer = pc.greater(page["event_date"], pa.scalar(cursor.stored))
                        sends = pc.unique(page.filter(newer)["send_id"]).to_pylist()
                        active.update(int(send) for send in sends if send is not None)
                    yield page

            yield from staged(collection, cursor, pages())
            cursor.state["active_sends"] = sorted(active)

        read.__name__ = collection.name
        return read

    def journey_versions() -> Iterator[list[dict[str, Any]]]:
        for batch in _batches(reader.journey_versions(), VERSIONS_BATCH):
            yield [version for page in batch for version in page]

    def interactions(page: list[dict[str, Any]]) -> Table:
        return counted("interactions", reader.interactions(page))

    def goals(page: list[dict[str, Any]]) -> Table:
        return counted("goals", reader.goals(page))

    parent = _resource(CAMPAIGNS, campaigns, "merge")
    versions = dlt.resource(journey_versions, name="journey_versions", selected=False)
    memberships = _soap_resource(LIST_SUBSCRIBERS, list_subscribers)
    resources = {
        "campaigns": parent,
        "campaign_assets": _transformer(
            CAMPAIGN_ASSETS,
            campaign_assets,
            parent,
            "delete-insert",
            merge_key=["business_unit_id", "campaign_id"],
        ).apply_hints(columns=[DELETED_HINT]),
        "lists": _soap_resource(LISTS, lists),
        "interactions": _transformer(INTERACTIONS, interactions, versions, "merge"),
        # every version's goals, listed in full: they replace the unit's goals
        "goals": _transformer(
            GOALS, goals, versions, "delete-insert", merge_key="business_unit_id"
        ),
        "list_subscribers": memberships,
        "subscribers": _transformer(SUBSCRIBERS, subscribers, memberships, "merge"),
        "sends": _soap_resource(SENDS, sends),
        **{c.name: _soap_resource(c, events(c)) for c in EVENTS},
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


def _unit_state(unit: int) -> dict[str, Any]:
    """The current resource's state for one business unit. A resource state written before
    business units (its keys at the top) becomes the state of the first unit synced."""
    state = dlt.current.resource_state()
    if "units" not in state:
        legacy = {key: state.pop(key) for key in list(state)}
        cursor = legacy.pop("incremental", {}).get("modified_date", {}).get("last_value")
        if cursor is not None:
            legacy["cursor"] = _iso(cursor)
        state["units"] = {str(unit): legacy} if legacy else {}
    units: dict[str, dict[str, Any]] = state["units"]
    return units.setdefault(str(unit), {})


class _Cursor:
    """The highest ``collection.cursor`` value loaded for a unit. A run reads from ``overlap``
    before it (from ``first`` on a unit's first run, everything without a ``first``); rows
    without a value are kept. ``commit`` stores the new high mark in resource state, which dlt
    saves only with the run's load."""

    def __init__(
        self,
        collection: Collection,
        unit: int,
        overlap: timedelta,
        first: datetime | None = None,
    ) -> None:
        assert collection.cursor is not None
        self.column, self.overlap, self.first = collection.cursor, overlap, first
        self.state = _unit_state(unit)
        self.state.setdefault("refused_properties", [])
        stored = self.state.get("cursor")
        self.stored = datetime.fromisoformat(stored) if stored else None
        self.high = self.stored

    def since(self, full_refresh: bool) -> datetime | None:
        if full_refresh or self.stored is None:
            return self.first
        return self.stored - self.overlap

    def seen(self, page: Table) -> Table:
        highest = pc.max(page[self.column]).as_py()
        if highest is not None and (self.high is None or highest > self.high):
            self.high = highest
        return page

    def commit(self) -> None:
        if self.high is not None:
            self.state["cursor"] = self.high.isoformat()


def _iso(value: Any) -> str:
    """A cursor dlt stored (a datetime, or its ISO text) as ISO text in UTC."""
    instant = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return instant.astimezone(UTC).isoformat()


def _deduplicate_if(repeated: bool, collection: Collection) -> Iterator[DataItemWithMeta]:
    """An empty item that turns the staged-rows dedup back on for this load."""
    if repeated:
        empty = rows.warehouse_schema(collection).empty_table()
        yield dlt.mark.with_hints(empty, make_hints(additional_table_hints=DEDUPLICATE))


def _remember_recent(recent: dict[str, str], sends: Table) -> None:
    """Note each send's date (its send date, else its creation): the recent ones are read
    again next run, whether their ModifiedDate moved or not."""
    dates = pc.coalesce(sends["send_date"], sends["created_date"]).to_pylist()
    for send_id, date in zip(sends["id"].to_pylist(), dates, strict=True):
        if date is not None:
            recent[str(send_id)] = date.isoformat()


def _active_sends(unit: int) -> set[int]:
    """The sends whose events the last run of each event collection found new: their counters
    moved, however old they are (their ModifiedDate does not move with them)."""
    resources = dlt.current.source_state().get("resources", {})
    return {
        int(send)
        for collection in EVENTS
        for send in resources.get(collection.name, {})
        .get("units", {})
        .get(str(unit), {})
        .get("active_sends", [])
    }


def _forget_before(recent: dict[str, str], horizon: datetime) -> None:
    for send_id in [s for s, date in recent.items() if datetime.fromisoformat(date) < horizon]:
        del recent[send_id]


def _hints(collection: Collection, disposition: str, **extra: Any) -> dict[str, Any]:
    write: Any = disposition
    if disposition == "delete-insert":
        write = {"disposition": "merge", "strategy": "delete-insert"}
    return {
        "name": collection.name,
        "primary_key": list(collection.table_key),
        "write_disposition": write,
        "columns": rows.dlt_columns(collection),
        **extra,
    }


def _resource(collection: Collection, fetch: Any, disposition: str) -> DltResource:
    resource: DltResource = dlt.resource(fetch, **_hints(collection, disposition))
    return resource


def _soap_resource(collection: Collection, fetch: Any) -> DltResource:
    """A SOAP collection merged on its key, staged as unique unless told otherwise."""
    return _resource(collection, fetch, "merge").apply_hints(
        additional_table_hints={DEDUPLICATED: True}
    )


def _transformer(
    collection: Collection, fetch: Any, parent: DltResource, disposition: str, **extra: Any
) -> DltResource:
    hints = _hints(collection, disposition, **extra)
    transformer: DltResource = dlt.transformer(fetch, data_from=parent, **hints)
    return transformer


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


def _forget_older(seen: dict[str, str], horizon: timedelta) -> None:
    """Keep only the campaigns a later run's overlap can read again."""
    if seen:
        newest = max(seen.values())
        oldest = (datetime.fromisoformat(newest) - horizon).isoformat() if newest else ""
        for campaign_id in [c for c, stamp in seen.items() if stamp < oldest]:
            del seen[campaign_id]
