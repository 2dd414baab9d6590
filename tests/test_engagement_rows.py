"""Engagement data's building blocks: event keys, key logs, EventDate windows, account ids."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from sfmc_source import soap
from sfmc_source.client import Credentials, RetryPolicy, SfmcClient
from sfmc_source.emulator import Emulator, Sizes
from sfmc_source.emulator.catalogue import CATALOGUE
from sfmc_source.emulator.generate import HISTORY_END
from sfmc_source.emulator.messages import Request, Response
from sfmc_source.errors import ResponseError
from sfmc_source.reader import Reader, _utc_text, _with_event_key, event_windows
from sfmc_source.specs import COLLECTIONS, EVENTS
from sfmc_source.tally import UniqueKeys
from sfmc_source.timefmt import SYSTEM_TIME
from tests.test_throttle import InFlight

NOW = datetime(2026, 6, 30, tzinfo=UTC)


def events(**columns: list[Any]) -> pa.Table:
    base: dict[str, list[Any]] = {
        "send_id": [1],
        "event_type": ["Click"],
        "subscriber_key": ["a"],
        "event_date": [datetime(2024, 6, 1, 16, 2, 1, 987000, tzinfo=UTC)],
        "batch_id": [7],
        "url": ["https://x.example/"],
    }
    base.update(columns)
    types = {"send_id": pa.int64(), "batch_id": pa.int64(), "event_date": pa.timestamp("us", "UTC")}
    return pa.table({k: pa.array(v, types.get(k, pa.string())) for k, v in base.items()})


def test_an_event_key_joins_the_natural_key_and_keeps_null_keys_apart_from_empty_ones() -> None:
    clicks = COLLECTIONS["click_events"]
    keyed = _with_event_key(events(subscriber_key=[None]), clicks)
    assert keyed.column_names[0] == "event_key"
    assert keyed["event_key"].to_pylist() == [
        "1|Click|∅|2024-06-01T16:02:01.987000Z|7|https://x.example/"
    ]
    empty = _with_event_key(events(subscriber_key=[""]), clicks)["event_key"][0].as_py()
    assert empty == "1|Click||2024-06-01T16:02:01.987000Z|7|https://x.example/"
    opens = _with_event_key(events().drop_columns(["url"]), COLLECTIONS["open_events"])
    assert opens["event_key"].to_pylist() == ["1|Click|a|2024-06-01T16:02:01.987000Z|7"]


@pytest.mark.parametrize(
    "instant",
    [
        datetime(2024, 6, 1, tzinfo=UTC),
        datetime(2024, 6, 1, 0, 0, 0, 1, tzinfo=UTC),
        datetime(2024, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=UTC),
        datetime(1, 1, 2, tzinfo=UTC),
    ],
    ids=str,
)
def test_an_event_key_writes_event_date_as_strftime_would(instant: datetime) -> None:
    dates = pa.chunked_array([pa.array([instant, None], pa.timestamp("us", "UTC"))])
    expected = pc.strftime(dates, format="%Y-%m-%dT%H:%M:%SZ")
    assert _utc_text(dates).to_pylist() == expected.to_pylist()


def test_every_event_collection_is_keyed_by_its_event_key_and_cursored_by_event_date() -> None:
    for collection in EVENTS:
        assert collection.table_key == ("business_unit_id", "event_key")
        assert collection.cursor == "event_date"
        assert collection.columns[0].name == "event_key"


@pytest.mark.parametrize(
    ("pages", "distinct"),
    [
        ([[1, 2], [3]], [2, 3]),
        ([[1, 2], [2]], [2, 2]),
        ([["a|1", "b|1"], ["c|1"]], [2, 3]),
        ([["a|1", "b|1"], ["a|1"]], [2, 2]),
    ],
)
def test_the_key_log_counts_the_distinct_keys_so_far(
    pages: list[list[Any]], distinct: list[int]
) -> None:
    collection = (
        COLLECTIONS["lists"] if isinstance(pages[0][0], int) else COLLECTIONS["sent_events"]
    )
    key = collection.primary_key[0]
    log = UniqueKeys(collection)
    counted = []
    for page in pages:
        kind = pa.int64() if isinstance(page[0], int) else pa.string()
        log.add(pa.table({key: pa.array(page, kind)}))
        counted.append(log.distinct())
    assert counted == distinct
    assert log.added == 3


class RecordingClient(SfmcClient):
    """Answers every Retrieve with ``rows`` rows, noting each filter; reads windows through
    the real ``interleave``, ``concurrency`` at a time."""

    def __init__(self, rows: int = 0, concurrency: int = 5) -> None:
        super().__init__(Credentials("id", "secret", "http://127.0.0.1:9"), concurrency=concurrency)
        self.filters: list[soap.Filter | None] = []
        self.rows = rows
        self.noted = threading.Lock()

    def retrieve(  # type: ignore[override]  # rows as lists of dicts
        self, object_type: str, properties: Sequence[str], where: Any, label: str, ahead: bool
    ) -> Iterator[list[dict[str, str | None]]]:
        with self.noted:
            self.filters.append(where)
        row = {p: None for p in properties}
        row.update(SendID="1", EventType="Open", EventDate="2024-06-01T10:02:01.987")
        yield [dict(row) for _ in range(self.rows)]


def windows(client: RecordingClient) -> list[tuple[str, str | None]]:
    found = []
    for where in client.filters:
        if isinstance(where, soap.ComplexFilter):
            assert isinstance(where.left, soap.SimpleFilter)
            assert isinstance(where.right, soap.SimpleFilter)
            assert (where.left.operator, where.right.operator) == ("greaterThan", "lessThanOrEqual")
            found.append((where.left.values[0], where.right.values[0]))
        else:
            assert isinstance(where, soap.SimpleFilter) and where.operator == "greaterThan"
            found.append((where.values[0], None))
    return sorted(found, key=lambda window: datetime.fromisoformat(window[0]))


def read(client: RecordingClient, since: datetime, backfill: bool) -> int:
    reader = Reader(client, 512345678, SYSTEM_TIME, False)
    pages = reader.events(COLLECTIONS["open_events"], since, NOW, backfill, [])
    return sum(page.num_rows for page in pages)


def days(width: timedelta) -> float:
    return width / timedelta(days=1)


@pytest.mark.parametrize(
    ("span", "backfill", "concurrency", "widths"),
    [
        pytest.param(730, True, 5, [146] * 5, id="backfill-one-window-per-slot"),
        pytest.param(730, True, 1, [182.5] * 4, id="backfill-none-wider-than-the-widest"),
        pytest.param(730, True, 50, [730 / 25] * 25, id="backfill-none-narrower-than-30-days"),
        pytest.param(40, True, 5, [20, 20], id="short-backfill"),
        pytest.param(300, False, 5, [150, 150], id="incremental-none-wider-than-the-widest"),
        pytest.param(0.375, False, 5, [0.375], id="incremental-one-window"),
        pytest.param(-1, False, 5, [0], id="cursor-ahead-of-now"),
    ],
)
def test_event_windows_are_half_open_contiguous_and_end_open(
    span: float, backfill: bool, concurrency: int, widths: list[float]
) -> None:
    since = NOW - timedelta(days=span)
    found = event_windows(since, NOW, backfill, concurrency)
    assert found[0][0] == since
    assert found[-1][1] is None  # the last window is open: nothing later is missed
    assert all(end == start for (_, end), (start, _) in pairwise(found))
    ends = [end or max(NOW, since) for _, end in found]
    assert [days(end - start) for (start, _), end in zip(found, ends, strict=True)] == (
        pytest.approx(widths)
    )


def test_a_backfill_reads_each_window_once_side_by_side() -> None:
    client = RecordingClient(rows=soap.MAX_BATCH_SIZE, concurrency=5)
    since = NOW - timedelta(days=730)
    assert read(client, since, backfill=True) == 5 * soap.MAX_BATCH_SIZE
    expected = [
        (soap.format_date_value(start), end and soap.format_date_value(end))
        for start, end in event_windows(since, NOW, True, 5)
    ]
    assert windows(client) == expected  # five requests for a quiet unit (the old layout: six)


def test_an_incremental_run_reads_one_open_window_when_the_cursor_is_recent() -> None:
    client = RecordingClient(rows=3)
    assert read(client, NOW - timedelta(hours=9), backfill=False) == 3
    assert windows(client) == [(soap.format_date_value(NOW - timedelta(hours=9)), None)]


# ---- windows read side by side, against the emulator -----------------------------------------

EVENT_SIZES = Sizes(
    campaigns=0, lists=5, journeys=0, subscribers=300, sends=6, recipients_per_send=120
)
BEFORE_ALL = HISTORY_END - timedelta(days=800)  # before every event the emulator holds


def connected(emulator: Emulator, concurrency: int) -> SfmcClient:
    config = emulator.config
    credentials = Credentials(config.client_id, config.client_secret, emulator.auth_url)
    return SfmcClient(credentials, retry=RetryPolicy(base_delay=0.001), concurrency=concurrency)


def opens_of(emulator: Emulator) -> int:
    return len(list(CATALOGUE["OpenEvent"].rows(emulator.app.unit())))


def first_together(emulator: Emulator, monkeypatch: pytest.MonkeyPatch, together: int) -> InFlight:
    """Count the Retrieves the emulator answers at once; the first ``together`` are answered
    only once all of them are in flight, so a reader that keeps them in flight is seen to."""
    in_flight, handle, served = InFlight(), emulator.app.handle, itertools.count()
    first = threading.Barrier(together, timeout=600)

    def counted(request: Request) -> Response:
        if request.path == "/v2/token":
            return handle(request)
        with in_flight:
            if next(served) < together:
                first.wait()
            return handle(request)

    monkeypatch.setattr(emulator.app, "handle", counted)
    return in_flight


def test_a_backfill_reads_its_windows_at_once_behind_the_throttle_and_every_event_once(
    emulator_factory: Callable[..., Emulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator = emulator_factory(sizes=EVENT_SIZES)
    in_flight = first_together(emulator, monkeypatch, together=3)  # one, and 5 // 2 beside it
    with connected(emulator, concurrency=5) as client:
        reader = Reader(client, emulator.config.mids[0], SYSTEM_TIME, False)
        now = datetime.now(UTC)
        retrieval = reader.events(COLLECTIONS["open_events"], BEFORE_ALL, now, True, [])
        keys = [key for page in retrieval for key in page["event_key"].to_pylist()]

    spans = event_windows(BEFORE_ALL, now, True, 5)
    assert emulator.app.log.count("SOAP Retrieve OpenEvent") == len(spans)  # one page each
    assert in_flight.most == 3
    assert len(keys) == len(set(keys)) == opens_of(emulator) > 0
    assert retrieval.refused == []


def test_properties_refused_while_windows_run_at_once_are_learned_once(
    emulator_factory: Callable[..., Emulator],
) -> None:
    emulator = emulator_factory(sizes=EVENT_SIZES, unretrievable={"OpenEvent": {"BatchID"}})
    with connected(emulator, concurrency=5) as client:
        reader = Reader(client, emulator.config.mids[0], SYSTEM_TIME, False)
        now = datetime.now(UTC)
        retrieval = reader.events(COLLECTIONS["open_events"], BEFORE_ALL, now, True, [])
        pages = list(retrieval)

    assert retrieval.refused == ["BatchID"]
    assert sum(page.num_rows for page in pages) == opens_of(emulator)
    assert all(page["batch_id"].null_count == page.num_rows for page in pages)
    # each window asked with BatchID at most once: before another had learned it
    windows = len(event_windows(BEFORE_ALL, now, True, 5))
    assert windows < emulator.app.log.count("SOAP Retrieve OpenEvent") <= 2 * windows


def test_a_window_that_fails_fails_the_events(
    emulator_factory: Callable[..., Emulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator = emulator_factory(sizes=EVENT_SIZES)
    handle, now = emulator.app.handle, datetime.now(UTC)
    second = event_windows(BEFORE_ALL, now, True, 5)[1][0]

    def failing(request: Request) -> Response:
        answer = handle(request)
        if soap.format_date_value(second).encode() in request.body:
            return replace(answer, body=answer.body[: len(answer.body) // 2])
        return answer

    monkeypatch.setattr(emulator.app, "handle", failing)
    with connected(emulator, concurrency=5) as client:
        reader = Reader(client, emulator.config.mids[0], SYSTEM_TIME, False)
        retrieval = reader.events(COLLECTIONS["open_events"], BEFORE_ALL, now, True, [])
        with pytest.raises(ResponseError, match="malformed SOAP response for OpenEvent"):
            list(retrieval)
    assert not [t for t in threading.enumerate() if t.name == "sfmc-source-interleave"]
