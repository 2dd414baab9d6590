"""Tracking events as columns (emulator/tracking.py): what a table holds and finds, and that
writing a page from columns gives the bytes writing each row would."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from sfmc_source.emulator import Sizes
from sfmc_source.emulator.catalogue import OPEN_EVENT, SENT_EVENT, TRACKING_EVENTS, SoapObject
from sfmc_source.emulator.data import BusinessUnit, Clock, Mutations, Row
from sfmc_source.emulator.engagement import _below
from sfmc_source.emulator.generate import generate_unit
from sfmc_source.emulator.retrieval import _date_texts, select
from sfmc_source.emulator.soap import ResultsWriter
from sfmc_source.emulator.tracking import Bound, EventTable, from_micros, to_micros
from sfmc_source.timefmt import SYSTEM_TIME, format_system_time

MID = 512_345_678
T0 = datetime(2025, 3, 1, 12, tzinfo=UTC)


def table_of(*offsets: int, **constants: object) -> EventTable:
    """OpenEvents at T0 plus these many seconds, SendID 1, 2, 3 ... in the order given."""
    dates = [to_micros(T0 + timedelta(seconds=s)) for s in offsets]
    columns = {"EventDate": dates, "SendID": list(range(1, len(offsets) + 1))}
    return EventTable({"EventType": "Open", **constants}, columns)


def send_ids(table: EventTable, start: int = 0, stop: int | None = None) -> list[int]:
    return [table.get("SendID", p) for p in table.positions(start, stop)]


def test_rows_are_kept_in_event_date_order_ties_as_given() -> None:
    table = table_of(30, 10, 20, 10)
    assert send_ids(table) == [2, 4, 3, 1]
    assert [f["EventDate"] for f in table.records()] == [
        T0 + timedelta(seconds=s) for s in (10, 10, 20, 30)
    ]


@pytest.mark.parametrize(
    ("after", "until", "generated", "with_late"),
    [
        (Bound(10, False), Bound(20, True), [3], [3, 8]),
        (Bound(10, True), Bound(20, True), [2, 4, 3], [2, 4, 3, 8]),
        (Bound(10, True), Bound(20, False), [2, 4], [2, 4]),
        (None, Bound(10, False), [], [9]),
        (Bound(20, False), None, [1], [1]),
        (Bound(30, True), Bound(10, True), [], []),
    ],
    ids=["(10, 20]", "[10, 20]", "[10, 20)", "before 10", "after 20", "inverted"],
)
def test_a_window_is_found_by_its_bounds(
    after: Bound | None, until: Bound | None, generated: list[int], with_late: list[int]
) -> None:
    def seconds(bound: Bound | None) -> Bound | None:
        if bound is None:
            return None
        return Bound(to_micros(T0 + timedelta(seconds=bound.micros)), bound.inclusive)

    table = table_of(30, 10, 20, 10)
    assert send_ids(table, *table.span(seconds(after), seconds(until))) == generated
    # late events: positions move to an order of their own
    table.add({"EventDate": T0 + timedelta(seconds=20), "SendID": 8})
    table.add({"EventDate": T0, "SendID": 9})
    assert send_ids(table, *table.span(seconds(after), seconds(until))) == with_late


def test_a_late_event_goes_after_its_ties_and_taken_positions_stay() -> None:
    table = table_of(10, 20, 30)
    taken = table.positions(*table.span(Bound(to_micros(T0), True), None))
    table.add({"EventDate": T0 + timedelta(seconds=20), "SendID": 7})
    table.add({"EventDate": T0 + timedelta(seconds=40), "SendID": 8})
    assert send_ids(table) == [1, 2, 7, 3, 8]
    assert [table.get("SendID", p) for p in taken] == [1, 2, 3]


def test_a_value_every_row_has_is_kept_once_until_a_row_differs() -> None:
    table = table_of(1, 2, Client_ID=MID)
    table.add({"EventDate": T0, "SendID": 3, "EventType": "Open"})
    assert table.is_constant("EventType") and table.get("EventType", 2) == "Open"
    table.add({"EventDate": T0, "SendID": 4, "EventType": "Click", "URL": "u"})
    assert not table.is_constant("EventType")
    assert [table.get("EventType", p) for p in range(4)] == ["Open"] * 3 + ["Click"]
    assert [table.get("URL", p) for p in range(4)] == [None, None, None, "u"]
    assert table.kinds("URL") == {type(None), str}


def test_contains_finds_a_row_by_its_values() -> None:
    table = table_of(1, 2)
    assert table.contains({"SendID": 2, "EventType": "Open"})
    assert not table.contains({"SendID": 2, "EventType": "Click"})
    assert not table.contains({"SendID": 3})
    assert not EventTable().contains({"SendID": 1})


def test_instants_keep_their_microseconds_and_naive_ones_are_system_time() -> None:
    instant = datetime(2024, 6, 1, 10, 2, 1, 987_654, tzinfo=UTC)
    assert from_micros(to_micros(instant)) == instant
    naive = datetime(2024, 6, 1, 4, 2, 1, 987_654)
    assert from_micros(to_micros(naive)) == instant


def test_event_dates_are_written_as_format_system_time_writes_them() -> None:
    rng = random.Random(5)
    instants = [datetime(1969, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC), T0]
    instants += [T0 + timedelta(milliseconds=ms) for ms in (1, 10, 100, 120, 123, 500)]
    instants += [
        datetime(2020, 1, 1, tzinfo=UTC) + timedelta(microseconds=rng.randrange(10**15))
        for _ in range(2_000)
    ]
    pieces = _date_texts([to_micros(i) for i in instants])
    written = [b"".join(parts).decode() for parts in zip(*pieces, strict=True)]
    assert written == [format_system_time(i) for i in instants]


def test_the_generator_draws_what_randrange_draws() -> None:
    for n in (1, 2, 3, 600, 1_000, 4_319, 4_999, 2**20 + 1):
        ours, theirs = random.Random(n), random.Random(n)
        draw = _below(ours, n)
        assert [draw() for _ in range(500)] == [theirs.randrange(n) for _ in range(500)]


def unit_with_odd_late_events() -> BusinessUnit:
    """Generated events plus late ones that make every column shape appear: another owner
    (a varying nested Client), a number among booleans, text to escape, empty text, nulls."""
    unit = generate_unit(3, MID, Sizes(campaigns=0, lists=3, journeys=0, subscribers=80))
    mutate = Mutations({MID: unit}, Clock(), MID)
    at = datetime(2025, 1, 1, tzinfo=SYSTEM_TIME)
    odd: list[dict[str, object]] = [
        {"Client.ID": 7, "SubscriberKey": "<a & b>", "URL": ""},
        {"IsMasterUnsubscribed": 1, "SubscriberKey": None, "BatchID": 12_345},
        {"CorrelationID": "corr", "TriggeredSendDefinitionObjectID": "tsd", "URLID": True},
    ]
    for obj in TRACKING_EVENTS:
        for number, fields in enumerate(odd):
            when = at + timedelta(days=number, milliseconds=number * 7)
            mutate.add(obj.name, SendID=min(unit.sends), EventDate=when, **fields)
    return unit


@pytest.fixture(scope="module")
def odd_unit() -> BusinessUnit:
    return unit_with_odd_late_events()


@pytest.mark.parametrize("null_style", ["missing", "nil"])
@pytest.mark.parametrize("which", ["all", "some"])
@pytest.mark.parametrize("obj", TRACKING_EVENTS, ids=lambda obj: obj.name)
def test_a_page_written_from_columns_is_the_rows_written_one_by_one(
    odd_unit: BusinessUnit, obj: SoapObject, which: str, null_style: str
) -> None:
    retrievable = [p.name for p in obj.properties if p.retrievable]
    requested = retrievable if which == "all" else ["EventDate", "Client.ID", "SubscriberKey"]
    writer = ResultsWriter(obj, requested, null_style)
    table = odd_unit.events[obj.name]
    one_by_one = [writer.write(Row(fields)) for fields in table.records()]
    matches = select(obj, [odd_unit], None)
    pages = [b"".join(matches[at : at + 7].write(writer)) for at in range(0, len(matches), 7)]
    assert b"".join(pages) == b"".join(one_by_one)
    assert len(one_by_one) == len(table) > 3


def test_a_retrieve_across_business_units_pages_through_each_in_turn() -> None:
    units = [generate_unit(1, mid, Sizes(campaigns=0, lists=2, journeys=0)) for mid in (1, 2)]
    obj = TRACKING_EVENTS[0]
    writer = ResultsWriter(obj, ["SendID", "Client.ID"])
    matches = select(obj, units, None)
    assert len(matches) == sum(len(u.events[obj.name]) for u in units)
    pages = [b"".join(matches[at : at + 64].write(writer)) for at in range(0, len(matches), 64)]
    rows = b"".join(pages).split(b"</Results>")[:-1]
    owners = [row.split(b"<Client><ID>")[1].split(b"<")[0] for row in rows]
    assert owners == [b"1"] * len(units[0].events[obj.name]) + [b"2"] * len(
        units[1].events[obj.name]
    )


def test_equal_numbers_of_different_kinds_keep_their_own_text() -> None:
    unit = generate_unit(3, MID, Sizes(campaigns=0, lists=3, journeys=0, subscribers=80))
    mutate = Mutations({MID: unit}, Clock(), MID)
    mutate.add("OpenEvent", EventDate=T0, URL=1)
    mutate.add("SentEvent", EventDate=T0, URL=True)
    for obj, text in ((OPEN_EVENT, b"<URL>1</URL>"), (SENT_EVENT, b"<URL>true</URL>")):
        for _ in range(2):  # the second time, from what the first wrote
            page = b"".join(select(obj, [unit], None).write(ResultsWriter(obj, ["URL"])))
            assert page.count(b"<URL>") == page.count(text) == 1
