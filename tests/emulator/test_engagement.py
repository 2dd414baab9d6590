"""The emulator's engagement objects (sfmc-api.md §3.9): Subscriber, ListSubscriber, Send and
the tracking events, read over a real socket with the project's own SOAP client, and compared
with the emulator's stored data."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest

from sfmc_source import soap
from sfmc_source.client import Credentials, SfmcClient
from sfmc_source.emulator import Emulator, Sizes
from sfmc_source.emulator.auth import READ_SCOPES
from sfmc_source.emulator.catalogue import CATALOGUE, TRACKING_EVENTS, SoapObject
from sfmc_source.emulator.data import Fields
from sfmc_source.errors import PermissionDenied, RequestRejected
from sfmc_source.timefmt import format_system_time, parse_timestamp

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
    from sfmc_source.emulator.generate import HISTORY_END, generate_unit

    unit = generate_unit(3, 512_345_678, SIZES)
    dates = [row.fields["EventDate"] for rows in unit.events.values() for row in rows]
    assert min(dates) >= HISTORY_END - timedelta(days=730)
    assert sum(len(rows) for rows in unit.events.values()) > SIZES.sends * 50
    again = generate_unit(3, 512_345_678, SIZES)
    assert [r.fields for r in again.events["ClickEvent"]] == [
        r.fields for r in unit.events["ClickEvent"]
    ]


def test_a_late_event_lands_in_its_past_window_and_moves_counters_not_modified_date(
    emulator: Emulator,
) -> None:
    unit = emulator.app.unit()
    send_id = min(unit.sends)
    send = unit.sends[send_id].fields
    before = dict(send)
    opened = {
        e.fields["SubscriberKey"] for e in unit.events["OpenEvent"] if e.fields["SendID"] == send_id
    }
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
    dates = [e.fields["EventDate"] for e in unit.events["OpenEvent"]]
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
