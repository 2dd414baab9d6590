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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Protocol, TypeAlias

import dlt
import pyarrow as pa
import pyarrow.compute as pc
from dlt.common.schema.typing import MERGE_DISPOSITION_HINTS
from dlt.extract.hints import make_hints
from dlt.extract.items import DataItemWithMeta
from dlt.extract.resource import DltResource

from sfmc_source import rows
from sfmc_source.client import SfmcClient
from sfmc_source.reader import Reader, Retrieval
from sfmc_source.specs import (
    COLLECTIONS,
    ChangedParents,
    Collection,
    Cursor,
    EventWindows,
    Listed,
    Nested,
    ParentKeys,
    Rest,
    Soap,
)
from sfmc_source.state import (
    DltStates,
    HighWater,
    States,
    dated,
    since,
    store_unit_part,
    within,
)
from sfmc_source.tally import DELETED, Tally
from sfmc_source.timefmt import SYSTEM_TIME

# Tracking events can arrive late (docs/sfmc-api.md#incremental-extraction): each run
# re-reads a few hours of them (the spec rows).
EVENTS_OVERLAP = EventWindows().overlap
# SFMC keeps send and engagement data this long; a first sync reads this far back.
RETENTION = timedelta(days=730)
# dlt's cost is per item, not per row: pages reach it in batches. Batches of parent rows also
# set how many of their children's requests can run at once.
ROWS_BATCH = 10_000
CAMPAIGNS_BATCH = 500
RECORDS_BATCH = 1_000
# ... or as many pages as hold this many bytes: wide rows (email bodies) are handed over a page
# or two at a time, so memory does not grow with ROWS_BATCH times their width.
BATCH_BYTES = 32 * 2**20
Table: TypeAlias = pa.Table
Item: TypeAlias = Table | DataItemWithMeta
# What runs remember, by the names earlier versions stored them under.
REFUSED, READ_AT, SCANNED = "refused_properties", "assets_read_at", "scanned"
ACTIVE_SENDS = "active_sends"  # an event collection's sends of events newer than its cursor

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
    email_bodies: bool = False,
) -> list[DltResource]:
    """The collections of the business unit ``client`` acts in (all by default).

    A first sync reads tracking events and sends from ``backfill`` before ``now``.
    ``email_bodies`` adds the emails' HTML and text bodies (columns ``html_body``,
    ``text_body``), read page by page with the rest.
    ``row_counts``, when given, counts the rows each collection loads: the distinct primary
    keys it hands to dlt (while it reads, the rows so far); ``on_rows`` is told the
    collection's name each time it hands over more."""
    apply_dlt_settings()
    states = DltStates(client.business_unit_id())
    tally = Tally(Counter() if row_counts is None else row_counts, on_rows)
    how = RunOptions(full_refresh, naive_zone, backfill, email_bodies)
    run = UnitRun.of(client, states, tally, how, now or datetime.now(UTC))
    wanted = set(collections or COLLECTIONS)
    resources = resources_of(run)
    for name, resource in resources.items():
        resource.selected = name in wanted
    return list(resources.values())


@dataclass(frozen=True)
class RunOptions:
    """How a run reads: everything again (``full_refresh``), naive times in ``naive_zone``,
    a first sync ``backfill`` back, with the emails' bodies or without."""

    full_refresh: bool = False
    naive_zone: timezone = SYSTEM_TIME
    backfill: timedelta = RETENTION
    email_bodies: bool = False

    @property
    def source_options(self) -> frozenset[str]:
        return frozenset({"email_bodies"} if self.email_bodies else ())


def group_items(run: UnitRun, root: Collection, wanted: set[str]) -> Iterator[tuple[str, Item]]:
    """What the collections of ``root``'s group (``wanted`` among them) hand over, each item
    with its collection's name, children fed as dlt feeds its transformers: a child after
    each item of its parent (its rows, or for ``Nested`` children the parent's records)."""
    root = root.with_options(run.options)
    kids = [c.with_options(run.options) for c in _children(root) if c.name in wanted]
    if any(isinstance(c.source, Nested) for c in _children(root)):
        shape = run.shaped(root)
        for records in run.records(root)():
            rows = shape(records)
            yield root.name, rows
            for kid in kids:
                fed = run.nested(kid)(records) if isinstance(kid.source, Nested) else rows
                yield from _fed(run, kid, fed)
        return
    for item in run.root(root)():
        yield root.name, item
        if isinstance(item, pa.Table):
            for kid in kids:
                yield from _fed(run, kid, item)


def _fed(run: UnitRun, kid: Collection, fed: Table) -> Iterator[tuple[str, Item]]:
    """A child's items from one parent item (for ``Nested`` children, already read)."""
    out: Table | Iterator[Table] | None = fed
    if not isinstance(kid.source, Nested):
        out = run.child(kid)(fed)
    if isinstance(out, pa.Table):
        yield kid.name, out
    elif out is not None:
        yield from ((kid.name, table) for table in out)


@dlt.source(name="sfmc", max_table_nesting=0)
def spooled_source(
    fetched: Sequence[Spooled], extra: Sequence[DltResource] = ()
) -> list[DltResource]:
    """What a sync run read, for its one load: one resource per collection, each unit's
    spooled items in turn, each unit's state stored as it goes (dlt commits it with the
    load); then ``extra`` resources."""
    by_name: dict[str, list[Spooled]] = {}
    for one in fetched:
        by_name.setdefault(one.spec.name, []).append(one)
    resources = [_replayed(spooled) for spooled in by_name.values()]
    return [*resources, *extra]


def _replayed(spooled: list[Spooled]) -> DltResource:
    """The resource of one collection read by a run: each unit's state, then its items."""

    def replay() -> Iterator[Item]:
        resource = dlt.current.resource_state()
        for one in spooled:
            store_unit_part(resource, one.unit, one.state)
            replaced = one.spec.replaced_by is not None and one.repeated
            yield from unique_rows(one.spec, one.items()) if replaced else one.items()

    spec = spooled[0].spec
    return _with_staged_hint(spec, dlt.resource(replay, **_hints(spec)))


class Spooled(Protocol):
    """One collection of one business unit read by a sync run: its items and its state."""

    spec: Collection
    state: dict[str, Any]
    repeated: bool  # a key came twice

    @property
    def unit(self) -> int: ...

    def items(self) -> Iterator[Item]: ...


def _with_staged_hint(spec: Collection, resource: DltResource) -> DltResource:
    """SOAP rows are staged as unique (``_deduplicate_if`` says when they are not)."""
    if spec.parent is None and isinstance(spec.source, Soap):
        resource.apply_hints(additional_table_hints={DEDUPLICATED: True})
    return resource


def resources_of(run: UnitRun) -> dict[str, DltResource]:
    """One resource per spec row, parents first: a child is a transformer of what its parent
    read (its rows, or for ``Nested`` children the parent's records)."""
    built: dict[str, DltResource] = {}
    feeds: dict[str, DltResource] = {}  # what each collection's children read from
    for spec in (c.with_options(run.options) for c in COLLECTIONS.values()):
        hints = _hints(spec)
        if isinstance(spec.source, Nested):  # read from the parent's records
            assert spec.parent is not None
            read = run.nested(spec)
            built[spec.name] = dlt.transformer(read, data_from=feeds[spec.parent], **hints)
        elif spec.parent is not None:  # read from the parent's rows
            built[spec.name] = dlt.transformer(
                run.child(spec), data_from=built[spec.parent], **hints
            )
        elif any(isinstance(c.source, Nested) for c in _children(spec)):
            records = dlt.resource(run.records(spec), name=f"{spec.name}_records", selected=False)
            built[spec.name] = dlt.transformer(run.shaped(spec), data_from=records, **hints)
            feeds[spec.name] = records
            continue
        else:
            built[spec.name] = dlt.resource(run.root(spec), **hints)
        feeds[spec.name] = _with_staged_hint(spec, built[spec.name])
    return built


class UnitRun:
    """How each kind of collection is read in one run of one business unit: one method per
    incremental strategy of the spec rows, each returning the function dlt (or a sync run's
    fetch) calls. ``states`` holds what the collections remember; ``options`` are the source
    options given (their optional columns are read)."""

    def __init__(
        self,
        reader: Reader,
        tally: Tally,
        states: States,
        full_refresh: bool,
        now: datetime,
        first: datetime,
        options: frozenset[str] = frozenset(),
    ) -> None:
        self.reader, self.tally, self.states = reader, tally, states
        self.full_refresh, self.now, self.first = full_refresh, now, first
        self.options = options

    @classmethod
    def of(
        cls, client: SfmcClient, states: States, tally: Tally, how: RunOptions, now: datetime
    ) -> UnitRun:
        """The run of the business unit ``client`` acts in."""
        reader = Reader(client, client.business_unit_id(), how.naive_zone, how.full_refresh)
        first = now - how.backfill
        return cls(reader, tally, states, how.full_refresh, now, first, how.source_options)

    def root(self, spec: Collection) -> Callable[[], Iterator[Item]]:
        """The function dlt calls for a collection without a parent; a row whose strategy
        has no reader here fails when the source is made, never silently."""
        how: Any = spec.incremental
        if isinstance(how, EventWindows):
            method: Callable[[Collection, Any], Iterator[Item]] = self._event_rows
        elif isinstance(how, Cursor) and isinstance(spec.source, Rest):
            method = self._newest_first
        elif isinstance(how, Cursor):
            method = self._by_cursor
        elif isinstance(how, Listed) and isinstance(spec.source, Soap):
            method = self._listed
        else:
            raise NotImplementedError(f"{spec.name}: no reader for {how} at the root")

        def read() -> Iterator[Item]:
            yield from method(spec, how)

        return read

    def child(self, spec: Collection) -> Callable[[Table], Table | Iterator[Table] | None]:
        how = spec.incremental
        if isinstance(how, ChangedParents):
            return self._changed_parents(spec, how)
        if isinstance(how, ParentKeys):
            return self._parent_keys(spec, how)
        raise NotImplementedError(f"{spec.name}: no reader for {how} under a parent")

    # ---- REST -----------------------------------------------------------------------------

    def records(self, spec: Collection) -> Callable[[], Iterator[list[dict[str, Any]]]]:
        """The raw records of a listed collection, batched: its children read them too."""

        def read() -> Iterator[list[dict[str, Any]]]:
            for batch in _batches(self.reader.records(spec), RECORDS_BATCH):
                yield [record for page in batch for record in page]

        return read

    def shaped(self, spec: Collection) -> Callable[[list[dict[str, Any]]], Table]:
        def read(records: list[dict[str, Any]]) -> Table:
            return self.tally.settled(spec, self.reader.shaped(spec, records))

        return read

    def nested(self, spec: Collection) -> Callable[[list[dict[str, Any]]], Table]:
        assert spec.parent is not None
        parent = COLLECTIONS[spec.parent]

        def read(records: list[dict[str, Any]]) -> Table:
            return self.tally.settled(spec, self.reader.nested(spec, parent, records))

        return read

    def _newest_first(self, spec: Collection, how: Cursor) -> Iterator[Table]:
        mark = HighWater(how.column, self.states.of(spec.name), how.overlap)
        changed = self.reader.newest_first(spec, mark.since(self.full_refresh))
        for batch in _batches(changed, CAMPAIGNS_BATCH):
            yield self.tally.add(spec, mark.seen(pa.concat_tables(batch)))
        self.tally.settle(spec)
        mark.commit()

    def _changed_parents(
        self, spec: Collection, how: ChangedParents
    ) -> Callable[[Table], Table | None]:
        """Each batch of parent rows: the rows of those whose stamp moved. The stamps kept
        are, for a parent listed in full, exactly those of the parents this run listed; else
        those the parent cursor's overlap can read again."""
        assert spec.parent is not None
        parent = COLLECTIONS[spec.parent].incremental
        overlap = getattr(parent, "overlap", timedelta(0))
        listed: dict[str, str] | None = {} if isinstance(parent, Listed) else None
        started: list[dict[str, str]] = []  # the stamps this run started with

        def read(parents: Table) -> Table | None:
            # parent key → the stamp its rows were read at
            state = self.states.of(spec.name)
            if not started:
                started.append(dict(state.get(READ_AT, {})))
            seen = started[0] if listed is not None else state.get(READ_AT, {})
            found, stamps = self.reader.per_parent(spec, parents, seen)
            if listed is None:
                state[READ_AT] = within({**seen, **stamps}, overlap * 2)
            else:
                listed.update(stamps)
                state[READ_AT] = dict(listed)
            return None if found is None else self.tally.settled(spec, found)

        return read

    # ---- SOAP -----------------------------------------------------------------------------

    def _by_cursor(self, spec: Collection, how: Cursor) -> Iterator[Item]:
        """A SOAP collection with a cursor filter (and, with ``recent``, re-reads by id)."""
        first = self.first if how.backfill else None
        mark = HighWater(how.column, self.states.of(spec.name), how.overlap, first)
        refused = self._refused(spec, mark.state)
        changed = self.reader.changed(spec, mark.since(self.full_refresh), refused)
        pages = changed if how.recent is None else self._and_recent(spec, how, mark, changed)
        yield from self._staged(spec, mark, pages)
        mark.state[REFUSED] = [*refused, *changed.refused]

    def _listed(self, spec: Collection, how: Listed) -> Iterator[Item]:
        """A SOAP collection read in full: every row, in batches; it replaces the unit's."""
        state = self.states.of(spec.name)
        refused = self._refused(spec, state)
        listing = self.reader.changed(spec, None, refused)
        yield from self._staged(spec, None, listing)
        state[REFUSED] = [*refused, *listing.refused]

    def _refused(self, spec: Collection, state: dict[str, Any]) -> list[str]:
        """The properties this tenant refuses: remembered, or asked of Describe once."""
        describe = isinstance(spec.source, Soap) and spec.source.describe
        if describe and (self.full_refresh or REFUSED not in state):
            return self.reader.refused_by_describe(spec)
        return list(state.get(REFUSED, []))

    def _and_recent(
        self, spec: Collection, how: Cursor, mark: HighWater, changed: Retrieval
    ) -> Iterator[Table]:
        """The changed rows, then the rows of the last ``how.recent`` and those whose events
        a dependency found new, read again by id: their counters moved, not their cursor."""
        assert how.recent is not None
        key = f"recent_{spec.name}"
        recent: dict[str, str] = dict(mark.state.get(key, {}))  # id → its date
        read: set[int] = set()
        for page in changed:
            read.update(page["id"].to_pylist())  # type: ignore[arg-type]  # a key: never null
            recent.update(dated(page, "id", *how.recent_dates))
            yield page
        active = {int(i) for i in self.states.learned(spec.depends_on, ACTIVE_SENDS)}
        again = [str(i) for i in sorted({*map(int, recent), *active} - read)]
        refused = [*mark.state.get(REFUSED, []), *changed.refused]
        by_id = self.reader.by_keys(spec, "id", again, refused)
        for page in by_id:
            recent.update(dated(page, "id", *how.recent_dates))
            yield page
        changed.refused.extend(p for p in by_id.refused if p not in changed.refused)
        mark.state[key] = since(recent, self.now - how.recent)

    def _event_rows(self, spec: Collection, how: EventWindows) -> Iterator[Item]:
        mark = HighWater(how.column, self.states.of(spec.name), how.overlap, self.first)
        start = mark.since(self.full_refresh) or self.first
        refused = list(mark.state.get(REFUSED, []))
        retrieval = self.reader.events(spec, start, self.now, start == self.first, refused)
        active: set[int] = set()  # the sends of events newer than the cursor

        def pages() -> Iterator[Table]:
            for page in retrieval:
                if mark.stored is not None:
                    newer = pc.greater(page[how.column], pa.scalar(mark.stored))
                    sends = pc.unique(page.filter(newer)["send_id"]).to_pylist()
                    active.update(int(send) for send in sends if send is not None)
                yield page

        yield from self._staged(spec, mark, pages())
        mark.state[ACTIVE_SENDS] = sorted(active)
        mark.state[REFUSED] = [*refused, *retrieval.refused]

    def _parent_keys(self, spec: Collection, how: ParentKeys) -> Callable[[Table], Iterator[Table]]:
        asked: set[str] = set()  # the keys this run has read (or is reading: all)

        def read(parents: Table) -> Iterator[Table]:
            state = self.states.of(spec.name)
            refused = list(state.get(REFUSED, []))
            keys = self._keys_to_read(state, parents, how.column, asked)
            if keys == []:
                return
            retrieval = self.reader.by_keys(spec, how.column, keys, refused)
            for page in retrieval:
                yield self.tally.add(spec, page)
            self.tally.settle(spec)
            if keys is None:
                state[SCANNED] = True
            state[REFUSED] = [*refused, *retrieval.refused]

        return read

    def _keys_to_read(
        self, state: dict[str, Any], parents: Table, column: str, asked: set[str]
    ) -> list[str] | None:
        """The keys the parent rows name that this run has not read; ``None``: read every row
        (a unit's first sync or a full refresh; only the first parent page starts it)."""
        if self.full_refresh or not state.get(SCANNED):
            if asked:
                return []
            asked.add("*")
            return None
        found = pc.unique(parents[column]).to_pylist()  # a key: never null
        keys = [str(k) for k in found if k not in asked]
        asked.update(keys)
        return keys

    def _staged(
        self, spec: Collection, mark: HighWater | None, pages: Iterable[Table]
    ) -> Iterator[Item]:
        """SOAP pages in batches, counted and seen by the cursor (if any), staged without
        dedup unless a key came twice; the cursor moves with the load."""
        for batch in _batches(pages, ROWS_BATCH):
            page = pa.concat_tables(batch)
            yield self.tally.add(spec, mark.seen(page) if mark else page)
        yield from _deduplicate_if(self.tally.settle(spec), spec)
        if mark:
            mark.commit()


def _children(spec: Collection) -> list[Collection]:
    return [c for c in COLLECTIONS.values() if c.parent == spec.name]


def _hints(spec: Collection) -> dict[str, Any]:
    """How dlt writes the collection's table: merged on its key, or (``replaced_by``) its
    rows of a unit (and parent) replaced by those read; the marker rows of ``ChangedParents``
    delete."""
    write: Any = "merge"
    columns = rows.dlt_columns(spec)
    keys: dict[str, Any] = {"primary_key": list(spec.table_key)}
    if spec.replaced_by is not None:
        write = {"disposition": "merge", "strategy": "delete-insert"}
        # No primary key: dlt would delete the rows that match it OR the merge key, a join
        # DuckDB runs pair by pair (8,600 folders ran out of memory). The rows are unique
        # by key already (``unique_rows``).
        keys = {"merge_key": ["business_unit_id", *spec.replaced_by]}
        for name in spec.table_key:
            columns[name]["primary_key"] = False
    if isinstance(spec.incremental, ChangedParents):
        columns[DELETED] = DELETED_HINT
    return {"name": spec.name, "write_disposition": write, "columns": columns, **keys}


def unique_rows(spec: Collection, items: Iterable[Item]) -> Iterator[Table]:
    """The rows of a collection whose keys came twice, each key once (its last row): all
    read at once, so only for what a run replaces (a unit's folders, a campaign's assets).
    dlt's own deduplication needs the primary key those tables do without."""
    tables = [item for item in items if isinstance(item, pa.Table)]
    if tables:
        table = pa.concat_tables(tables, promote_options="default")
        order = table.append_column("_order", pa.array(range(table.num_rows), pa.int64()))
        last = order.group_by(list(spec.table_key), use_threads=False).aggregate(
            [("_order", "max")]
        )
        rows = last["_order_max"]  # each key's last row, in the order they came
        yield table.take(rows.take(pc.sort_indices(rows)))


def _deduplicate_if(repeated: bool, collection: Collection) -> Iterator[DataItemWithMeta]:
    """An empty item that turns the staged-rows dedup back on for this load."""
    if repeated:
        empty = rows.warehouse_schema(collection).empty_table()
        yield dlt.mark.with_hints(empty, make_hints(additional_table_hints=DEDUPLICATE))


def _batches(pages: Iterable[Sized], at_least: int) -> Iterator[list[Any]]:
    """Consecutive pages grouped until a group holds ``at_least`` rows or, for Arrow pages,
    ``BATCH_BYTES``."""
    batch: list[Any] = []
    size = nbytes = 0
    for page in pages:
        batch.append(page)
        size += len(page)
        nbytes += page.nbytes if isinstance(page, pa.Table) else 0
        if size >= at_least or nbytes >= BATCH_BYTES:
            yield batch
            batch, size, nbytes = [], 0, 0
    if batch:
        yield batch


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


_JSON_TEXT = _JsonTextIsIntended()


def apply_dlt_settings() -> None:
    """What this source needs of dlt, set when a source is made (never at import): no
    telemetry unless the user asks for it, Arrow pages given the same ``_dlt_id`` and
    ``_dlt_load_id`` columns as dict rows, and each batch written as it comes (dlt would
    gather 5,000 rows, 150 MB of email bodies, into one parquet row group, which a load
    then holds at once)."""
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    # fewer rows than any batch but the last of a run: each batch is its own row group
    os.environ.setdefault("DATA_WRITER__BUFFER_MAX_ITEMS", "500")
    os.environ.setdefault("NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_ID", "true")
    os.environ.setdefault("NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID", "true")
    dlt_logger = logging.getLogger("dlt")
    if _JSON_TEXT not in dlt_logger.filters:
        dlt_logger.addFilter(_JSON_TEXT)
