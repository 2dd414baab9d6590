"""Engagement data's building blocks: event keys, key logs, EventDate windows, account ids."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pyarrow as pa
import pytest

from sfmc_source import soap
from sfmc_source.reader import EVENT_WINDOW, WIDEST_WINDOW, Reader, _with_event_key
from sfmc_source.specs import COLLECTIONS, EVENTS
from sfmc_source.tally import UniqueKeys
from sfmc_source.timefmt import SYSTEM_TIME

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


class RecordingClient:
    """Answers every Retrieve with ``rows`` rows, noting each filter."""

    def __init__(self, rows: int = 0) -> None:
        self.filters: list[soap.Filter | None] = []
        self.rows = rows

    def retrieve(
        self, object_type: str, properties: Sequence[str], where: Any, label: str
    ) -> Iterator[list[dict[str, str | None]]]:
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
    return found


def read(client: RecordingClient, since: datetime, backfill: bool) -> int:
    reader = Reader(client, 512345678, SYSTEM_TIME, False)  # type: ignore[arg-type]
    pages = reader.events(COLLECTIONS["open_events"], since, NOW, backfill, [])
    return sum(page.num_rows for page in pages)


def test_a_backfill_reads_half_open_windows_that_widen_while_they_are_quiet() -> None:
    client = RecordingClient()
    read(client, NOW - timedelta(days=730), backfill=True)
    found = windows(client)
    starts = [datetime.fromisoformat(start) for start, _ in found]
    widths = [b - a for a, b in pairwise(starts)]
    assert widths[:4] == [EVENT_WINDOW, EVENT_WINDOW * 2, EVENT_WINDOW * 4, WIDEST_WINDOW]
    assert all(end == next_start for (_, end), (next_start, _) in pairwise(found))
    assert found[-1][1] is None  # the last window is open: nothing later is missed
    assert found[0][0] == soap.format_date_value(NOW - timedelta(days=730))


def test_a_busy_window_keeps_the_next_one_narrow() -> None:
    client = RecordingClient(rows=soap.MAX_BATCH_SIZE)
    assert read(client, NOW - timedelta(days=100), backfill=True) == 4 * soap.MAX_BATCH_SIZE
    starts = [datetime.fromisoformat(start) for start, _ in windows(client)]
    assert [b - a for a, b in pairwise(starts)] == [EVENT_WINDOW] * 3


def test_an_incremental_run_reads_one_open_window_when_the_cursor_is_recent() -> None:
    client = RecordingClient(rows=3)
    assert read(client, NOW - timedelta(hours=9), backfill=False) == 3
    assert windows(client) == [(soap.format_date_value(NOW - timedelta(hours=9)), None)]
