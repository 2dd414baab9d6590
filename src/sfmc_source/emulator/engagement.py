"""Deterministic engagement data: subscribers, list memberships, sends and tracking events.

Every subscriber is in the unit's All Subscribers list and maybe in a few others. Each send
goes to a sample of subscribers: most get a SentEvent, some a NotSentEvent; some sent emails
bounce, some are opened (a few twice), some openers click and a few unsubscribe. A send's
counters are counted from its events. Some events carry no SubscriberKey
(docs/sfmc-api.md#tracking-events).

Events are generated straight into columns (``tracking.EventTable``), their dates in whole
microseconds, so that a million of them take a few seconds; the random draws are the ones the
dict-per-event generator made, so a seed gives the tenant it always gave.
"""

from __future__ import annotations

import random
from array import array
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sfmc_source.emulator.data import TRACKING_EVENT_NAMES, BusinessUnit, Fields, Row
from sfmc_source.emulator.tracking import EventTable, from_micros, to_micros

SUBSCRIBER_STATUSES = ("Active",) * 16 + ("Bounced", "Held", "Unsubscribed", "Deleted")
MEMBER_STATUSES = ("Active",) * 8 + ("Unsubscribed", "Bounced")
BOUNCES = (
    ("Hard bounce", "immediate", "550", "5.1.1 user unknown"),
    ("Soft bounce", "delayed", "452", "4.2.2 mailbox full"),
    ("Block bounce", "immediate", "554", "5.7.1 message rejected as spam"),
    ("Technical/Other bounce", "delayed", "421", ""),
)
URLS = ("https://example.com/sale?utm=email", "https://example.com/ünïcode/path", "")
FIRST_SEND_ID = 10_000
FIRST_SUBSCRIBER_ID = 5_000_000
_BOUNCE_COLUMNS = ("BounceCategory", "BounceType", "SMTPCode", "SMTPReason")
_MILLISECOND, _SECOND, _MINUTE, _HOUR = 1_000, 1_000_000, 60_000_000, 3_600_000_000
# One int object per BatchID value, shared by the rows that have it.
_BATCH_IDS = tuple(range(1, 5_000))


def add_engagement(
    unit: BusinessUnit,
    rng: random.Random,
    subscribers: int,
    sends: int,
    recipients: int,
    start: datetime,
    end: datetime,
) -> None:
    """Fill ``unit`` with ``subscribers``, their memberships, and ``sends`` to about
    ``recipients`` subscribers each, between ``start`` and ``end``."""
    span = (end - start).total_seconds()

    def instant(after: datetime | None = None, within: float | None = None) -> datetime:
        base = after or start
        room = within if within is not None else (end - base).total_seconds()
        moment = base + timedelta(seconds=rng.uniform(0, max(room, 1)))
        return min(moment.replace(microsecond=moment.microsecond // 1000 * 1000), end)

    for number in range(subscribers):
        row = Row(_subscriber(rng, unit.mid, FIRST_SUBSCRIBER_ID + number, instant()))
        unit.subscribers[row.fields["SubscriberKey"]] = row
    all_subscribers = min(unit.lists, default=None)  # the first list generated
    _add_memberships(unit, rng, all_subscribers, instant, span)
    keys = list(unit.subscribers)
    events = _EventWriter(rng, unit, all_subscribers)
    for number in range(sends):
        send_id = FIRST_SEND_ID + number
        sent_at = instant()
        audience = rng.sample(keys, min(len(keys), max(1, round(rng.gauss(recipients, 3)))))
        counters = events.send(send_id, to_micros(sent_at), audience)
        unit.sends[send_id] = Row(_send(rng, unit.mid, send_id, sent_at, counters))
    unit.events = events.tables()


def _add_memberships(
    unit: BusinessUnit,
    rng: random.Random,
    all_subscribers: int | None,
    instant: Callable[..., datetime],
    span: float,
) -> None:
    """Every subscriber in the first list, and in up to two others."""
    other_lists = [list_id for list_id in unit.lists if list_id != all_subscribers]
    for subscriber in unit.subscribers.values():
        lists = [all_subscribers] if all_subscribers is not None else []
        lists += rng.sample(other_lists, min(len(other_lists), rng.choice((0, 0, 1, 2))))
        for list_id in lists:
            created = instant(subscriber.fields["CreatedDate"])
            fields: Fields = {
                "Client.ID": unit.mid,
                "PartnerKey": None,
                "CreatedDate": created,
                "ModifiedDate": instant(created, span / 20),
                "ObjectID": None,
                "Status": rng.choice(MEMBER_STATUSES),
                "ListID": list_id,
                "SubscriberKey": subscriber.fields["SubscriberKey"],
            }
            unit.list_subscribers.append(Row(fields))


def _subscriber(rng: random.Random, mid: int, number: int, created: datetime) -> Fields:
    key = rng.choice((f"0031x00000{number:07d}", f"person{number}@example.com", f"sub-{number}"))
    status = rng.choice(SUBSCRIBER_STATUSES)
    return {
        "Client.ID": mid,
        "Client.PartnerClientKey": None,
        "PartnerKey": None,
        "CreatedDate": created,
        "ID": number,
        "ObjectID": None,
        "EmailAddress": rng.choice((f"person{number}@example.com", f"Ünï.{number}@exämple.de")),
        "SubscriberKey": key,
        "UnsubscribedDate": created + timedelta(days=30) if status == "Unsubscribed" else None,
        "Status": status,
        "EmailTypePreference": rng.choice(("HTML", "HTML", "Text")),
    }


class _Columns:
    """One event object's columns while its events are generated, send by send."""

    def __init__(self, rng: random.Random, constants: Fields, *extras: str) -> None:
        self._random, self._batch = rng.random, _below(rng, 4_999)
        self.constants = constants
        self.send_ids: list[int] = []
        self.keys: list[str | None] = []
        self.dates = array("q")
        self.batches: list[int] = []
        self.extras: dict[str, list[Any]] = {name: [] for name in extras}
        self._appends = (self.send_ids.append, self.keys.append, self.dates.append)
        self._extra_appends = [values.append for values in self.extras.values()]

    def add(self, send_id: int, key: str, at: int, *extras: Any) -> None:
        """An event at ``at`` microseconds, with the values of this object's own properties."""
        add_send_id, add_key, add_date = self._appends
        add_send_id(send_id)
        add_key(key if self._random() > 0.005 else None)
        add_date(at)
        self.batches.append(_BATCH_IDS[self._batch()])  # randrange(1, 5_000)
        if extras:
            for add_extra, value in zip(self._extra_appends, extras, strict=True):
                add_extra(value)

    def since(self, mark: int) -> dict[str, Sequence[Any]]:
        """The columns of the events added since there were ``mark``."""
        columns: dict[str, Sequence[Any]] = {"SubscriberKey": self.keys, "EventDate": self.dates}
        return {name: values[mark:] for name, values in {**columns, **self.extras}.items()}

    def table(self) -> EventTable:
        columns: dict[str, Sequence[Any]] = {
            "SendID": self.send_ids,
            "SubscriberKey": self.keys,
            "EventDate": self.dates,
            "BatchID": self.batches,
        }
        return EventTable(self.constants, {**columns, **self.extras})


class _EventWriter:
    """Generates the tracking events of a unit's sends into columns."""

    def __init__(self, rng: random.Random, unit: BusinessUnit, list_id: int | None) -> None:
        self.rng = rng
        # randrange(0, 600), randrange(1000), randrange(1, 3 * 24 * 60) - 1
        self._draws = (_below(rng, 600), _below(rng, 1_000), _below(rng, 3 * 24 * 60 - 1))
        self.subscriber_ids = {key: row.fields["ID"] for key, row in unit.subscribers.items()}

        def columns(kind: str | None, *extras: str, **constants: Any) -> _Columns:
            common: Fields = {"Client.ID": unit.mid, "PartnerKey": None, "ObjectID": None}
            common |= {"EventType": kind} if kind else {}
            common |= {"TriggeredSendDefinitionObjectID": None, **constants}
            return _Columns(rng, common, *extras)

        self.sent = columns("Sent", "SubscriberID", ListID=list_id)
        self.not_sent = columns("NotSent")
        self.bounces = columns(None, "EventType", *_BOUNCE_COLUMNS)
        self.opens = columns("Open")
        self.clicks = columns("Click", "URL", "URLID", "URLIDLong")
        self.unsubscribes = columns("Unsubscribe", "IsMasterUnsubscribed")

    def tables(self) -> dict[str, EventTable]:
        return {name: columns.table() for name, columns in self._by_name().items()}

    def _by_name(self) -> dict[str, _Columns]:
        every = (self.sent, self.opens, self.clicks, self.bounces, self.unsubscribes, self.not_sent)
        return dict(zip(TRACKING_EVENT_NAMES, every, strict=True))

    def send(self, send_id: int, sent_at: int, audience: list[str]) -> Fields:
        """The events of one send to ``audience``; returns the send's counters."""
        marks = {name: len(columns.dates) for name, columns in self._by_name().items()}
        random, seconds, millis, minutes = self.rng.random, *self._draws
        for key in audience:
            at = sent_at + seconds() * _SECOND + millis() * _MILLISECOND
            if random() < 0.03:
                self.not_sent.add(send_id, key, at)
                continue
            self.sent.add(send_id, key, at, self.subscriber_ids[key])
            if random() < 0.04:
                self._bounce(send_id, key, at + 5 * _SECOND)
            elif random() < 0.3:
                self._engage(send_id, key, at + (1 + minutes()) * _MINUTE)
        events = {name: c.since(marks[name]) for name, c in self._by_name().items()}
        return _counters(events, sent_at)

    def _bounce(self, send_id: int, key: str, at: int) -> None:
        category, kind, code, reason = self.rng.choice(BOUNCES)
        event_type = "HardBounce" if category == "Hard bounce" else "SoftBounce"
        self.bounces.add(send_id, key, at, event_type, category, kind, code, reason)

    def _engage(self, send_id: int, key: str, opened: int) -> None:
        """Opens, maybe a click and maybe an unsubscribe."""
        rng = self.rng
        for _ in range(rng.choice((1, 1, 1, 2))):
            self.opens.add(send_id, key, opened)
            opened += rng.randrange(1, 48) * _HOUR
        if rng.random() < 0.3:
            url_id = rng.randrange(1, 4)
            self.clicks.add(send_id, key, opened + 30 * _SECOND, URLS[url_id - 1], url_id, url_id)
        if rng.random() < 0.05:
            master = rng.random() < 0.5
            self.unsubscribes.add(send_id, key, opened + _MINUTE, master)


def _below(rng: random.Random, n: int) -> Callable[[], int]:
    """Draws ``rng.randrange(n)`` would draw (CPython's rejection sampling on ``getrandbits``),
    at a fraction of its cost."""
    bits, getrandbits = n.bit_length(), rng.getrandbits

    def draw() -> int:
        value = getrandbits(bits)
        while value >= n:
            value = getrandbits(bits)
        return value

    return draw


def _counters(events: dict[str, dict[str, Sequence[Any]]], sent_at: int) -> Fields:
    """A send's counters, counted from its events; opens and clicks count subscribers."""

    def unique(name: str) -> int:
        return len(set(events[name]["SubscriberKey"]))

    def count(name: str) -> int:
        return len(events[name]["EventDate"])

    sent, bounced = count("SentEvent"), count("BounceEvent")
    hard = events["BounceEvent"]["EventType"].count("HardBounce")
    last = max(max(e["EventDate"], default=sent_at) for e in events.values())
    return {
        "ModifiedDate": from_micros(max(last, sent_at)),
        "NumberTargeted": sent + count("NotSentEvent"),
        "NumberSent": sent,
        "NumberDelivered": sent - bounced,
        "NumberErrored": count("NotSentEvent"),
        "NumberExcluded": 0,
        "MissingAddresses": 0,
        "Duplicates": 0,
        "InvalidAddresses": 0,
        "HardBounces": hard,
        "SoftBounces": bounced - hard,
        "OtherBounces": 0,
        "ForwardedEmails": 0,
        "UniqueOpens": unique("OpenEvent"),
        "UniqueClicks": unique("ClickEvent"),
        "Unsubscribes": count("UnsubEvent"),
    }


def _send(
    rng: random.Random, mid: int, send_id: int, sent_at: datetime, counters: Fields
) -> Fields:
    created = sent_at - timedelta(hours=rng.randrange(1, 72))
    return {
        "Client.ID": mid,
        "PartnerKey": None,
        "CreatedDate": created,
        "ID": send_id,
        "ObjectID": None,
        "SendDate": sent_at,
        "SentDate": sent_at + timedelta(minutes=10),
        "FromAddress": "news@example.com",
        "FromName": rng.choice(("Example News", "Ünïcode “Team”")),
        "Subject": rng.choice(("Spring Sale 🌸", "Your weekly news", "")),
        "EmailName": f"Newsletter {send_id}",
        "PreviewURL": f"https://view.example.com/?j={send_id}",
        "Status": "Complete",
        "IsMultipart": rng.random() < 0.8,
        "IsAlwaysOn": False,
        "BccEmail": "",
        "EmailID": None,
        **counters,
    }
