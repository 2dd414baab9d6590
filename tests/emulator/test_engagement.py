"""The emulator's engagement objects (docs/sfmc-api.md#objects): Subscriber, ListSubscriber,
Send and the tracking events, read over a real socket with the project's own SOAP client, and
compared with the emulator's stored data."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

import httpx
import pytest
from lxml import etree

from sfmc_source import soap
from sfmc_source.client import Credentials, SfmcClient
from sfmc_source.emulator import SCALES, Emulator, Sizes, sizes_for
from sfmc_source.emulator.auth import READ_SCOPES
from sfmc_source.emulator.catalogue import CATALOGUE, OPEN_EVENT, TRACKING_EVENTS, SoapObject
from sfmc_source.emulator.data import Clock, Fields, Mutations
from sfmc_source.emulator.generate import HISTORY_END, generate_unit
from sfmc_source.emulator.retrieval import select
from sfmc_source.emulator.soap import PARTNER, ResultsWriter, compile_condition
from sfmc_source.emulator.tracking import EventRun
from sfmc_source.errors import PermissionDenied, RequestRejected
from sfmc_source.timefmt import format_system_time, parse_timestamp
from tests.conftest import Session

MID = 512_345_678
SIZES = Sizes(campaigns=0, lists=5, journeys=0, subscribers=300, sends=6, recipients_per_send=120)
ENGAGEMENT = ["Subscriber", "ListSubscriber", "Send", *(event.name for event in TRACKING_EVENTS)]


@pytest.fixture
def emulator(emulator_factory: Callable[..., Emulator]) -> Emulator:
    return emulator_factory(sizes=SIZES)


def client_for(emulator: Emulator) -> SfmcClient:
    config = emulator.config
    return SfmcClient(Credentials(config.client_id, config.client_secret, emulator.auth_url))


def retrievable(obj: SoapObject) -> list[str]:
    return [p.name for p in obj.properties if p.retrievable]


def retrieve(
    emulator: Emulator,
    name: str,
    where: soap.Filter | None = None,
    properties: list[str] | None = None,
) -> list[dict[str, str | None]]:
    with client_for(emulator) as client:
        wanted = properties or retrievable(CATALOGUE[name])
        return [row for page in client.retrieve(name, wanted, where) for row in page]


def stored(emulator: Emulator, name: str) -> list[Fields]:
    return [row.fields for row in CATALOGUE[name].rows(emulator.app.unit())]


def as_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "tzinfo"):
        return format_system_time(value)  # type: ignore[arg-type]
    return str(value)


@pytest.mark.parametrize("name", ENGAGEMENT)
def test_every_retrievable_property_comes_back_as_stored(emulator: Emulator, name: str) -> None:
    obj = CATALOGUE[name]
    rows = retrieve(emulator, name)
    expected = stored(emulator, name)
    assert len(rows) == len(expected) > 0
    for got, want in zip(rows, expected, strict=True):
        for prop in retrievable(obj):
            assert got[prop] == as_text(want.get(prop)), (name, prop)


def test_sent_events_carry_list_and_subscriber_ids_as_partner_properties(
    emulator: Emulator, http: httpx.Client
) -> None:
    rows = retrieve(emulator, "SentEvent", properties=["SendID", "ListID", "SubscriberID"])
    subscriber_ids = {str(row.fields["ID"]) for row in emulator.app.unit().subscribers.values()}
    all_subscribers = str(min(emulator.app.unit().lists))
    assert {row["ListID"] for row in rows} == {all_subscribers}
    assert {row["SubscriberID"] for row in rows} <= subscriber_ids
    # on the wire: pairs, not elements of their own
    with client_for(emulator) as client:
        envelope = soap.retrieve_envelope("{{token}}", "SentEvent", ["SendID", "ListID"])
        token = client.auth.token().value
        body = envelope.replace(b"{{token}}", token.encode())
        url = client.auth.token().soap_url + "Service.asmx"
    response = http.post(url, content=body, headers={"SOAPAction": "Retrieve"})
    assert b"<PartnerProperties><Name>ListID</Name><Value>" in response.content
    assert b"<ListID>" not in response.content


def test_some_events_have_no_subscriber_key_and_it_is_left_out(emulator: Emulator) -> None:
    keyless = [e for name in ("SentEvent", "OpenEvent") for e in stored(emulator, name)]
    keyless = [e for e in keyless if e["SubscriberKey"] is None]
    assert keyless, "the data has no event without a SubscriberKey"
    rows = retrieve(emulator, "SentEvent") + retrieve(emulator, "OpenEvent")
    assert sum(row["SubscriberKey"] is None for row in rows) == len(keyless)


def test_an_event_date_window_returns_exactly_the_events_inside_it(emulator: Emulator) -> None:
    events = stored(emulator, "OpenEvent")
    dates = sorted(e["EventDate"] for e in events)
    low, high = dates[len(dates) // 4], dates[len(dates) // 2]
    window = soap.SimpleFilter(
        "EventDate",
        "between",
        (soap.format_date_value(low), soap.format_date_value(high)),
        date=True,
    )
    rows = retrieve(emulator, "OpenEvent", window)
    inside = [e for e in events if low <= e["EventDate"] <= high]
    assert len(rows) == len(inside) > 0
    assert all(low <= parse_timestamp(r["EventDate"]) <= high for r in rows)  # type: ignore[operator]


def test_events_of_chosen_sends_and_send_counters_match_them(emulator: Emulator) -> None:
    sends = sorted(emulator.app.unit().sends)[:2]
    where = soap.SimpleFilter("SendID", "IN", tuple(str(s) for s in sends))
    rows = retrieve(emulator, "SentEvent", where)
    per_send = Counter(row["SendID"] for row in rows)
    for send_id in sends:
        send = emulator.app.unit().sends[send_id].fields
        assert per_send[str(send_id)] == send["NumberSent"] > 0
    opens = stored(emulator, "OpenEvent")
    for send_id, send in emulator.app.unit().sends.items():
        keys = {e["SubscriberKey"] for e in opens if e["SendID"] == send_id}
        assert send.fields["UniqueOpens"] == len(keys)
        assert send.fields["ModifiedDate"] >= send.fields["SendDate"]


def test_memberships_cover_every_subscriber_in_all_subscribers(emulator: Emulator) -> None:
    all_subscribers = str(min(emulator.app.unit().lists))
    where = soap.SimpleFilter("ListID", "equals", (all_subscribers,))
    rows = retrieve(emulator, "ListSubscriber", where)
    assert {r["SubscriberKey"] for r in rows} == set(emulator.app.unit().subscribers)


def test_subscribers_by_key_in_batches(emulator: Emulator) -> None:
    keys = sorted(emulator.app.unit().subscribers)[:100]
    rows = retrieve(emulator, "Subscriber", soap.SimpleFilter("SubscriberKey", "IN", tuple(keys)))
    assert sorted(r["SubscriberKey"] or "" for r in rows) == keys


def test_subscriber_modified_date_cannot_be_retrieved(emulator: Emulator) -> None:
    with client_for(emulator) as client:
        described = client.describe("Subscriber")
        assert described["ModifiedDate"].retrievable is False
        assert described["SubscriberKey"].retrievable is True
        with pytest.raises(RequestRejected, match=r"Request Property\(s\) ModifiedDate"):
            list(client.retrieve("Subscriber", ["SubscriberKey", "ModifiedDate"]))


def test_events_need_the_tracking_events_scope(emulator_factory: Callable[..., Emulator]) -> None:
    scopes = tuple(s for s in READ_SCOPES if s != "tracking_events_read")
    emulator = emulator_factory(sizes=SIZES, scopes=scopes)
    with pytest.raises(PermissionDenied):
        retrieve(emulator, "OpenEvent", properties=["SendID"])
    assert retrieve(emulator, "Send", properties=["ID"])


def test_events_span_the_retention_window_and_sends_the_events_they_had() -> None:
    unit = generate_unit(3, MID, SIZES)
    dates = [fields["EventDate"] for table in unit.events.values() for fields in table.records()]
    assert min(dates) >= HISTORY_END - timedelta(days=730)
    assert sum(len(table) for table in unit.events.values()) > SIZES.sends * 50
    again = generate_unit(3, MID, SIZES)
    assert list(again.events["ClickEvent"].records()) == list(unit.events["ClickEvent"].records())


def test_generated_events_and_sends_are_what_they_always_were() -> None:
    """The same seed gives the same tenant as before events were kept as columns, to the
    byte on the wire (digests taken from the dict-per-event generator)."""
    unit = generate_unit(3, MID, SIZES)
    wire = hashlib.sha256()
    for obj in TRACKING_EVENTS:
        writer = ResultsWriter(obj, retrievable(obj))
        wire.update(b"".join(select(obj, [unit], None).write(writer)))
    sends = repr([sorted(row.fields.items()) for row in unit.sends.values()])
    assert wire.hexdigest().startswith("32e6b69c43fcdc1c1e40bfcb0b16cd4bd4397e33")
    assert hashlib.sha256(sends.encode()).hexdigest().startswith("db48986d9d70990ee947")


def test_a_late_event_lands_in_its_past_window_and_moves_counters_not_modified_date(
    emulator: Emulator,
) -> None:
    unit = emulator.app.unit()
    send_id = min(unit.sends)
    send = unit.sends[send_id].fields
    before = dict(send)
    opened = {e["SubscriberKey"] for e in stored(emulator, "OpenEvent") if e["SendID"] == send_id}
    new_key = next(k for k in unit.subscribers if k not in opened)
    late = send["SendDate"] + timedelta(hours=1)
    emulator.app.mutate.add("OpenEvent", SendID=send_id, SubscriberKey=new_key, EventDate=late)
    emulator.app.mutate.add("OpenEvent", SendID=send_id, SubscriberKey=new_key, EventDate=late)
    window = soap.SimpleFilter(
        "EventDate",
        "between",
        (soap.format_date_value(late - timedelta(seconds=1)), soap.format_date_value(late)),
        date=True,
    )
    rows = retrieve(emulator, "OpenEvent", window)
    assert [r["SubscriberKey"] for r in rows if r["SendID"] == str(send_id)].count(new_key) == 2
    assert send["UniqueOpens"] == before["UniqueOpens"] + 1  # one subscriber, two opens
    assert send["ModifiedDate"] == before["ModifiedDate"]
    dates = [e["EventDate"] for e in stored(emulator, "OpenEvent")]
    assert dates == sorted(dates)


def test_memberships_subscribers_and_sends_can_change(emulator: Emulator) -> None:
    unit, mutate = emulator.app.unit(), emulator.app.mutate
    member = unit.list_subscribers[0].fields
    key = (member["ListID"], member["SubscriberKey"])
    modified = member["ModifiedDate"]
    mutate.update("list_subscribers", key, Status="Unsubscribed")
    assert member["Status"] == "Unsubscribed" and member["ModifiedDate"] > modified
    subscriber = next(iter(unit.subscribers))
    mutate.update("subscribers", subscriber, EmailAddress="new@example.com")
    assert "ModifiedDate" not in unit.subscribers[subscriber].fields
    mutate.delete("sends", min(unit.sends))
    rows = retrieve(emulator, "Send", properties=["ID"])
    assert len(rows) == SIZES.sends - 1


# ---- a million events: the scale, EventDate windows, late events, paging ------------------


def test_the_events_scale_holds_about_a_million_tracking_events() -> None:
    sizes = sizes_for("events")
    assert sizes == SCALES["events"]
    # ten of its sends are enough to count what each brings
    sample = generate_unit(1, MID, replace(sizes, sends=10))
    per_send = sum(len(table) for table in sample.events.values()) / 10
    assert 950_000 < per_send * sizes.sends < 1_050_000
    assert len(sample.events["SentEvent"]) > len(sample.events["OpenEvent"]) > 0


def date_filter(op: str, *instants: datetime) -> str:
    values = "".join(f"<DateValue>{soap.format_date_value(i)}</DateValue>" for i in instants)
    inner = f"<Property>EventDate</Property><SimpleOperator>{op}</SimpleOperator>{values}"
    return f'<{{tag}} xsi:type="SimpleFilterPart">{inner}</{{tag}}>'


def value_filter(prop: str, op: str, *values: object) -> str:
    given = "".join(f"<Value>{v}</Value>" for v in values)
    inner = f"<Property>{prop}</Property><SimpleOperator>{op}</SimpleOperator>{given}"
    return f'<{{tag}} xsi:type="SimpleFilterPart">{inner}</{{tag}}>'


def joined(logical: str, left: str, right: str, *more: str) -> str:
    inner = left.format(tag="LeftOperand") + f"<LogicalOperator>{logical}</LogicalOperator>"
    inner += right.format(tag="RightOperand")
    if more:
        extra = "".join(part.format(tag="Operand") for part in more)
        inner += f"<AdditionalOperands>{extra}</AdditionalOperands>"
    return f'<{{tag}} xsi:type="ComplexFilterPart">{inner}</{{tag}}>'


def filter_element(part: str) -> etree._Element:
    namespaces = f'xmlns="{PARTNER}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
    xml = part.format(tag="Filter").replace("<Filter ", f"<Filter {namespaces} ", 1)
    return etree.fromstring(xml)


# (window from instants a < b and some send IDs, whether it bisects, whether rows match)
Window = Callable[[datetime, datetime, list[int]], str]
WINDOWS = [
    pytest.param(
        lambda a, b, s: joined(
            "AND", date_filter("greaterThan", a), date_filter("lessThanOrEqual", b)
        ),
        True,
        True,
        id="greaterThan A AND lessThanOrEqual B",
    ),
    pytest.param(lambda a, b, s: date_filter("between", a, b), True, True, id="between"),
    pytest.param(lambda a, b, s: date_filter("greaterThanOrEqual", a), True, True, id="since"),
    pytest.param(lambda a, b, s: date_filter("lessThan", b), True, True, id="before"),
    pytest.param(lambda a, b, s: date_filter("equals", a), True, True, id="at"),
    pytest.param(
        lambda a, b, s: joined(
            "AND",
            date_filter("greaterThanOrEqual", a),
            date_filter("lessThan", b),
            date_filter("greaterThan", a),
        ),
        True,
        True,
        id="three bounds",
    ),
    pytest.param(lambda a, b, s: date_filter("between", b, a), True, False, id="inverted"),
    pytest.param(
        lambda a, b, s: joined(
            "AND",
            joined("AND", date_filter("greaterThan", a), date_filter("lessThanOrEqual", b)),
            value_filter("SendID", "IN", *s),
        ),
        True,
        True,
        id="window AND SendID IN",
    ),
    pytest.param(
        lambda a, b, s: joined("OR", date_filter("lessThan", a), date_filter("greaterThan", b)),
        False,
        True,
        id="outside a window (OR: scanned)",
    ),
]


@pytest.mark.parametrize("late", [False, True], ids=["generated", "with late events"])
@pytest.mark.parametrize(("window", "bisects", "matches"), WINDOWS)
def test_event_date_windows_bisect_to_exactly_the_rows_a_scan_finds(
    window: Window, bisects: bool, matches: bool, late: bool
) -> None:
    unit = generate_unit(3, MID, SIZES)
    table = unit.events["OpenEvent"]
    dates = sorted(fields["EventDate"] for fields in table.records())
    a, b = dates[len(dates) // 4], dates[len(dates) // 2]  # on events: the bounds matter
    if late:  # ties at both bounds, and some in between, added after the others
        mutate = Mutations({MID: unit}, Clock(), MID)
        for at in (a, b, a + (b - a) / 3, dates[0] - timedelta(days=1), dates[-1]):
            mutate.add("OpenEvent", SendID=min(unit.sends), SubscriberKey="late", EventDate=at)
    element = filter_element(window(a, b, sorted(unit.sends)[::2]))
    condition = compile_condition(element, OPEN_EVENT)
    assert (condition.after is not None or condition.until is not None) == bisects
    runs = select(OPEN_EVENT, [unit], element).parts
    got = [table.fields(p) for run in runs if isinstance(run, EventRun) for p in run.positions]
    assert got == [fields for fields in table.records() if condition.test(fields)]
    assert bool(got) == matches


def window(after: datetime, until: datetime) -> soap.ComplexFilter:
    """``EventDate greaterThan after AND EventDate lessThanOrEqual until``: how the connector
    reads events."""
    return soap.ComplexFilter(
        soap.SimpleFilter("EventDate", "greaterThan", (soap.format_date_value(after),), True),
        "AND",
        soap.SimpleFilter("EventDate", "lessThanOrEqual", (soap.format_date_value(until),), True),
    )


def test_late_events_land_in_the_window_of_their_event_date(emulator: Emulator) -> None:
    events = stored(emulator, "SentEvent")
    dates = sorted(e["EventDate"] for e in events)
    first, last = dates[0] - timedelta(days=1), dates[-1] + timedelta(days=30)
    a, b = dates[len(dates) // 3], dates[2 * len(dates) // 3]
    windows = [(first, a), (a, b), (b, last)]
    late = {  # SubscriberKey: the window it belongs in
        "at-a": (a, 0),
        "just-after-a": (a + timedelta(milliseconds=1), 1),
        "at-b": (b, 1),
        "just-after-b": (b + timedelta(milliseconds=1), 2),
        "oldest": (dates[0], 0),
        "newest": (dates[-1] + timedelta(days=1), 2),
    }
    send_id = min(emulator.app.unit().sends)
    for key, (at, _) in late.items():
        emulator.app.mutate.add("SentEvent", SendID=send_id, SubscriberKey=key, EventDate=at)
    found: dict[str, list[int]] = {key: [] for key in late}
    total = 0
    for number, (after, until) in enumerate(windows):
        rows = retrieve(emulator, "SentEvent", window(after, until), ["SubscriberKey", "EventDate"])
        total += len(rows)
        for row in rows:
            if row["SubscriberKey"] in found:
                found[row["SubscriberKey"] or ""].append(number)
    assert found == {key: [number] for key, (_, number) in late.items()}
    assert total == len(events) + len(late)


def page_rows(response: httpx.Response) -> list[tuple[str | None, ...]]:
    root = etree.fromstring(response.content)
    results = root.iter(f"{{{PARTNER}}}Results")
    return [tuple(r.findtext(f"{{{PARTNER}}}{p}") for p in PAGED) for r in results]


PAGED = ["SendID", "SubscriberKey", "EventDate", "BatchID"]


def test_paging_through_a_window_returns_every_row_once(
    emulator: Emulator, http: httpx.Client
) -> None:
    session = Session(http, emulator)
    events = stored(emulator, "SentEvent")
    dates = sorted(e["EventDate"] for e in events)
    a, b = dates[len(dates) // 5], dates[4 * len(dates) // 5]
    inside = [e for e in events if a < e["EventDate"] <= b]
    part = joined("AND", date_filter("greaterThan", a), date_filter("lessThanOrEqual", b))
    request = (
        "<ObjectType>SentEvent</ObjectType>"
        + "".join(f"<Properties>{p}</Properties>" for p in PAGED)
        + part.format(tag="Filter")
        + "<Options><BatchSize>50</BatchSize></Options>"
    )
    pages = [session.soap("Retrieve", retrieve_message(request))]
    while b"MoreDataAvailable" in pages[-1].content:
        if len(pages) == 2:  # events arriving meanwhile do not shift the pages
            send_id = min(emulator.app.unit().sends)
            for at in (a + timedelta(milliseconds=1), b, dates[0]):
                emulator.app.mutate.add("SentEvent", SendID=send_id, EventDate=at)
        continued = f"<ContinueRequest>{continuation(pages[-1])}</ContinueRequest>"
        pages.append(session.soap("Retrieve", retrieve_message(continued)))
    rows = [row for page in pages for row in page_rows(page)]
    assert Counter(rows) == Counter(tuple(as_text(e.get(p)) for p in PAGED) for e in inside)
    assert len(pages) == -(-len(inside) // 50) and len(pages) > 3
    again = session.soap("Retrieve", retrieve_message(request.replace(">50<", ">2500<")))
    assert len(page_rows(again)) == len(inside) + 2  # the two late events inside it


def retrieve_message(request: str) -> str:
    inner = f"<RetrieveRequest>{request}</RetrieveRequest>"
    return f'<RetrieveRequestMsg xmlns="{PARTNER}">{inner}</RetrieveRequestMsg>'


def continuation(response: httpx.Response) -> str:
    return etree.fromstring(response.content).findtext(f".//{{{PARTNER}}}RequestID") or ""
