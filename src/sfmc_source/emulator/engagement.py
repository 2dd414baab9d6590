"""Deterministic engagement data: subscribers, list memberships, sends and tracking events.

Every subscriber is in the unit's All Subscribers list and maybe in a few others. Each send
goes to a sample of subscribers: most get a SentEvent, some a NotSentEvent; some sent emails
bounce, some are opened (a few twice), some openers click and a few unsubscribe. A send's
counters are counted from its events. Some events carry no SubscriberKey (sfmc-api.md §3.9).
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sfmc_source.emulator.data import TRACKING_EVENT_NAMES, BusinessUnit, Fields, Row

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
    keys = list(unit.subscribers)
    for number in range(sends):
        send_id = FIRST_SEND_ID + number
        sent_at = instant()
        audience = rng.sample(keys, min(len(keys), max(1, round(rng.gauss(recipients, 3)))))
        events = _send_events(rng, unit, send_id, sent_at, audience, all_subscribers)
        for name, rows in events.items():
            unit.events.setdefault(name, []).extend(rows)
        unit.sends[send_id] = Row(_send(rng, unit.mid, send_id, sent_at, events))
    for rows in unit.events.values():
        rows.sort(key=lambda row: row.fields["EventDate"])


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


def _event(
    rng: random.Random, mid: int, send_id: int, key: str | None, at: datetime, kind: str
) -> Fields:
    return {
        "Client.ID": mid,
        "PartnerKey": None,
        "ObjectID": None,
        "SendID": send_id,
        "SubscriberKey": key if rng.random() > 0.005 else None,
        "EventDate": at,
        "EventType": kind,
        "TriggeredSendDefinitionObjectID": None,
        "BatchID": rng.randrange(1, 5_000),
    }


def _send_events(
    rng: random.Random,
    unit: BusinessUnit,
    send_id: int,
    sent_at: datetime,
    audience: list[str],
    list_id: int | None,
) -> dict[str, list[Row]]:
    events: dict[str, list[Row]] = {name: [] for name in TRACKING_EVENT_NAMES}

    def add(name: str, key: str, at: datetime, kind: str, **extra: object) -> None:
        fields = {**_event(rng, unit.mid, send_id, key, at, kind), **extra}
        events[name].append(Row(fields))

    for key in audience:
        at = sent_at + timedelta(seconds=rng.randrange(0, 600), milliseconds=rng.randrange(1000))
        if rng.random() < 0.03:
            add("NotSentEvent", key, at, "NotSent")
            continue
        subscriber_id = unit.subscribers[key].fields["ID"]
        add("SentEvent", key, at, "Sent", ListID=list_id, SubscriberID=subscriber_id)
        if rng.random() < 0.04:
            category, kind, code, reason = rng.choice(BOUNCES)
            bounce = "HardBounce" if category == "Hard bounce" else "SoftBounce"
            add(
                "BounceEvent", key, at + timedelta(seconds=5), bounce,
                BounceCategory=category, BounceType=kind, SMTPCode=code, SMTPReason=reason,
            )  # fmt: skip
            continue
        if rng.random() < 0.3:
            opened = at + timedelta(minutes=rng.randrange(1, 3 * 24 * 60))
            for _ in range(rng.choice((1, 1, 1, 2))):
                add("OpenEvent", key, opened, "Open")
                opened += timedelta(hours=rng.randrange(1, 48))
            if rng.random() < 0.3:
                url_id = rng.randrange(1, 4)
                add(
                    "ClickEvent", key, opened + timedelta(seconds=30), "Click",
                    URL=URLS[url_id - 1], URLID=url_id, URLIDLong=url_id,
                )  # fmt: skip
            if rng.random() < 0.05:
                add(
                    "UnsubEvent", key, opened + timedelta(minutes=1), "Unsubscribe",
                    IsMasterUnsubscribed=rng.random() < 0.5,
                )  # fmt: skip
    return events


def _send(
    rng: random.Random, mid: int, send_id: int, sent_at: datetime, events: dict[str, list[Row]]
) -> Fields:
    def unique(name: str) -> int:
        return len({row.fields["SubscriberKey"] for row in events[name]})

    sent, bounced = len(events["SentEvent"]), len(events["BounceEvent"])
    hard = sum(row.fields["EventType"] == "HardBounce" for row in events["BounceEvent"])
    last = max((r.fields["EventDate"] for rows in events.values() for r in rows), default=sent_at)
    created = sent_at - timedelta(hours=rng.randrange(1, 72))
    return {
        "Client.ID": mid,
        "PartnerKey": None,
        "CreatedDate": created,
        "ModifiedDate": max(last, sent_at),
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
        "NumberTargeted": sent + len(events["NotSentEvent"]),
        "NumberSent": sent,
        "NumberDelivered": sent - bounced,
        "NumberErrored": len(events["NotSentEvent"]),
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
        "Unsubscribes": len(events["UnsubEvent"]),
    }
