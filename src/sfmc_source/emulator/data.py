"""The emulator's tenant: business units holding campaigns, assets, lists, journeys,
subscribers and their list memberships, sends and tracking events.

Records are kept in the shape SFMC serves them (REST items keyed by their JSON names, SOAP
objects keyed by their property names, nested ``Client`` properties flattened as
``Client.ID``) with timestamps as aware datetimes. Each record is a ``Row`` that caches its
rendered forms until it is changed, except tracking events: there can be a million of them, so
they are kept as columns (``tracking.EventTable``).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sfmc_source.emulator.tracking import EventTable

Fields = dict[str, Any]


class Row:
    """One record plus the rendered forms (JSON fragment, SOAP ``<Results>``) cached for it."""

    __slots__ = ("fields", "rendered")

    def __init__(self, fields: Fields) -> None:
        self.fields = fields
        self.rendered: dict[Any, bytes] = {}

    def update(self, changes: Fields) -> None:
        self.fields.update(changes)
        self.rendered.clear()

    def __repr__(self) -> str:
        return f"Row({self.fields!r})"


@dataclass
class BusinessUnit:
    """The data of one MID. Journeys map a journey id to its versions, oldest first."""

    mid: int
    campaigns: dict[str, Row] = field(default_factory=dict)
    assets: dict[str, list[Row]] = field(default_factory=dict)
    lists: dict[int, Row] = field(default_factory=dict)
    folders: dict[int, Row] = field(default_factory=dict)  # DataFolder, by ID
    journeys: dict[str, list[Row]] = field(default_factory=dict)
    subscribers: dict[str, Row] = field(default_factory=dict)  # by SubscriberKey
    list_subscribers: list[Row] = field(default_factory=list)
    sends: dict[int, Row] = field(default_factory=dict)
    emails: dict[int, Row] = field(default_factory=dict)  # by ID
    triggered_sends: dict[str, Row] = field(default_factory=dict)  # by ObjectID
    events: dict[str, EventTable] = field(default_factory=dict)  # by object: SentEvent, ...
    # Derived views (sorted and filtered listings), dropped on every mutation.
    views: dict[Any, Any] = field(default_factory=dict, repr=False)

    def view(self, key: Any, compute: Callable[[], Any]) -> Any:
        if key not in self.views:
            self.views[key] = compute()
        return self.views[key]

    def journey_versions(self) -> Iterator[Row]:
        for versions in self.journeys.values():
            yield from versions

    def find_journey(self, journey_id: str, version: int) -> Row:
        for row in self.journeys.get(journey_id, []):
            if row.fields["version"] == version:
                return row
        raise KeyError(f"no journey {journey_id} version {version}")


class Clock:
    """Wall-clock time for mutations, strictly increasing so every change is visible."""

    def __init__(self) -> None:
        self._last = datetime.min.replace(tzinfo=UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            now = datetime.now(UTC)
            now = now.replace(microsecond=now.microsecond // 1000 * 1000)
            self._last = max(now, self._last + timedelta(milliseconds=1))
            return self._last


class Mutations:
    """Change emulator data between syncs, the way users change SFMC.

    ``collection`` is ``campaigns``, ``campaign_assets``, ``lists``, ``folders``,
    ``interactions``, ``subscribers``, ``list_subscribers``, ``sends``, ``emails`` or
    ``triggered_sends``; keys are a campaign id (str), an asset id (str), a list ID (int), a
    folder ID (int), ``(journey_id, version)``, a SubscriberKey, ``(ListID, SubscriberKey)``, a
    send ID (int), an email ID (int) or a triggered send definition's ObjectID (str). Changes
    take SFMC field names (``name``, ``ListName``, ``stats``, a version's ``activities`` ...).
    Unless ``touch`` is false, the record's modified date moves to now (a subscriber has
    none); asset changes touch their campaign. Tracking events are only added
    (``add("OpenEvent", SendID=..., EventDate=...)``), with any ``EventDate``, even a past one:
    a late event. They move their send's counters but not its ModifiedDate, the pessimistic
    reading of docs/sfmc-api.md#send.
    """

    def __init__(self, units: dict[int, BusinessUnit], clock: Clock, default_mid: int) -> None:
        self._units = units
        self._clock = clock
        self._default_mid = default_mid
        self.lock = threading.RLock()

    def unit(self, mid: int | None = None) -> BusinessUnit:
        return self._units[self._default_mid if mid is None else mid]

    def update(
        self,
        collection: str,
        key: Any,
        *,
        mid: int | None = None,
        touch: bool = True,
        **changes: Any,
    ) -> None:
        with self.lock:
            unit = self.unit(mid)
            row = self._find(unit, collection, key)
            if touch:
                changes = {**self._touch(collection), **changes}
                if collection == "campaign_assets":
                    self._touch_campaign(unit, str(row.fields["campaignId"]))
            row.update(changes)
            unit.views.clear()

    def add(self, collection: str, *, mid: int | None = None, **fields: Any) -> Any:
        """Add a record; returns its key. An interaction with an existing ``id`` becomes that
        journey's next version. A campaign asset needs ``campaignId``."""
        with self.lock:
            unit = self.unit(mid)
            unit.views.clear()
            return _ADDERS[collection](self, unit, fields)

    def delete(
        self, collection: str, key: Any, *, mid: int | None = None, purge: bool = False
    ) -> None:
        """Remove a record. A journey version or a triggered send definition is not removed
        but gets status ``Deleted`` (a definition is removed outright with ``purge``)."""
        with self.lock:
            unit = self.unit(mid)
            unit.views.clear()
            if collection == "triggered_sends" and not purge:
                self.update(collection, key, mid=unit.mid, TriggeredSendStatus="Deleted")
            elif collection in ("emails", "triggered_sends"):
                del getattr(unit, collection)[key]
            elif collection == "campaigns":
                del unit.campaigns[key]
                unit.assets.pop(key, None)
            elif collection == "campaign_assets":
                row = self._find(unit, collection, key)
                campaign_id = str(row.fields["campaignId"])
                unit.assets[campaign_id].remove(row)
                self._touch_campaign(unit, campaign_id)
            elif collection == "lists":
                del unit.lists[key]
            elif collection == "folders":
                del unit.folders[key]
            elif collection == "subscribers":
                del unit.subscribers[key]
            elif collection == "list_subscribers":
                unit.list_subscribers.remove(self._find(unit, collection, key))
            elif collection == "sends":
                del unit.sends[key]
            else:
                self.update(collection, key, mid=unit.mid, status="Deleted")

    def _find(self, unit: BusinessUnit, collection: str, key: Any) -> Row:
        if collection == "campaigns":
            return unit.campaigns[key]
        if collection == "lists":
            return unit.lists[key]
        if collection == "folders":
            return unit.folders[key]
        if collection == "subscribers":
            return unit.subscribers[key]
        if collection in ("sends", "emails", "triggered_sends"):
            by_key: dict[Any, Row] = getattr(unit, collection)
            return by_key[key]
        if collection == "list_subscribers":
            for row in unit.list_subscribers:
                if (row.fields["ListID"], row.fields["SubscriberKey"]) == key:
                    return row
            raise KeyError(f"no list subscriber {key}")
        if collection == "interactions":
            journey_id, version = key
            return unit.find_journey(journey_id, version)
        if collection == "campaign_assets":
            for rows in unit.assets.values():
                for row in rows:
                    if row.fields["id"] == key:
                        return row
            raise KeyError(f"no campaign asset {key}")
        raise KeyError(f"unknown collection {collection!r}")

    def _touch(self, collection: str) -> Fields:
        field_name = _MODIFIED.get(collection, "modifiedDate")
        return {field_name: self._clock.now()} if field_name else {}

    def _touch_campaign(self, unit: BusinessUnit, campaign_id: str) -> None:
        if campaign_id in unit.campaigns:
            unit.campaigns[campaign_id].update({"modifiedDate": self._clock.now()})

    def _add_campaign(self, unit: BusinessUnit, fields: Fields) -> str:
        now = self._clock.now()
        key = str(max((int(k) for k in unit.campaigns), default=0) + 1)
        unit.campaigns[key] = Row({"id": key, "createdDate": now, "modifiedDate": now, **fields})
        unit.assets.setdefault(key, [])
        return key

    def _add_asset(self, unit: BusinessUnit, fields: Fields) -> str:
        campaign_id = str(fields["campaignId"])
        every = [int(row.fields["id"]) for rows in unit.assets.values() for row in rows]
        key = str(max(every, default=0) + 1)
        row = Row({"id": key, "createdDate": self._clock.now(), **fields})
        unit.assets.setdefault(campaign_id, []).append(row)
        self._touch_campaign(unit, campaign_id)
        return key

    def _add_list(self, unit: BusinessUnit, fields: Fields) -> int:
        now = self._clock.now()
        key = max(unit.lists, default=0) + 1
        base: Fields = {"ID": key, "CreatedDate": now, "ModifiedDate": now, "Client.ID": unit.mid}
        unit.lists[key] = Row({**base, **fields})
        return key

    def _add_folder(self, unit: BusinessUnit, fields: Fields) -> int:
        now = self._clock.now()
        key = max(unit.folders, default=0) + 1
        base: Fields = {"ID": key, "CreatedDate": now, "ModifiedDate": now, "Client.ID": unit.mid}
        unit.folders[key] = Row({**base, "ObjectID": None, "IsActive": True, **fields})
        return key

    def _add_email(self, unit: BusinessUnit, fields: Fields) -> int:
        now = self._clock.now()
        key = max(unit.emails, default=0) + 1
        base: Fields = {"ID": key, "CreatedDate": now, "ModifiedDate": now, "ObjectID": None}
        unit.emails[key] = Row({**base, **fields})
        return key

    def _add_triggered_send(self, unit: BusinessUnit, fields: Fields) -> str:
        now = self._clock.now()
        key = str(uuid.uuid4())
        base: Fields = {"ObjectID": key, "CreatedDate": now, "ModifiedDate": now}
        unit.triggered_sends[key] = Row({**base, **fields})
        return key

    def _add_event(self, unit: BusinessUnit, name: str, fields: Fields) -> None:
        """A tracking event (it has no key), kept in EventDate order; its send's counters
        follow it."""
        base: Fields = {"Client.ID": unit.mid, "EventDate": self._clock.now(), **fields}
        table = unit.events.setdefault(name, EventTable())
        send, counter = unit.sends.get(base.get("SendID", -1)), _COUNTERS.get(name)
        repeat = name in _UNIQUE and table.contains(
            {"SendID": base.get("SendID"), "SubscriberKey": base.get("SubscriberKey")}
        )
        if send is not None and counter is not None and not repeat:
            send.update({counter: send.fields.get(counter, 0) + 1})
        table.add(base)

    def _add_journey_version(self, unit: BusinessUnit, fields: Fields) -> tuple[str, int]:
        from sfmc_source.emulator.generate import new_journey_version

        versions = unit.journeys.get(fields.get("id", ""), [])
        row = new_journey_version(versions, self._clock.now(), fields)
        unit.journeys[row.fields["id"]] = [*versions, row]
        return row.fields["id"], row.fields["version"]


_ADDERS: dict[str, Callable[[Mutations, BusinessUnit, Fields], Any]] = {
    "campaigns": Mutations._add_campaign,
    "campaign_assets": Mutations._add_asset,
    "lists": Mutations._add_list,
    "folders": Mutations._add_folder,
    "interactions": Mutations._add_journey_version,
    "emails": Mutations._add_email,
    "triggered_sends": Mutations._add_triggered_send,
}
# The tracking event objects, each a list in ``BusinessUnit.events``.
TRACKING_EVENT_NAMES = (
    "SentEvent", "OpenEvent", "ClickEvent", "BounceEvent", "UnsubEvent", "NotSentEvent",
)  # fmt: skip


def _event_adder(name: str) -> Callable[[Mutations, BusinessUnit, Fields], None]:
    def add(mutations: Mutations, unit: BusinessUnit, fields: Fields) -> None:
        mutations._add_event(unit, name, fields)

    return add


_ADDERS.update({name: _event_adder(name) for name in TRACKING_EVENT_NAMES})
# The modified-date field of each collection (REST's by default); assets and subscribers have
# none.
_MODIFIED = {
    "lists": "ModifiedDate",
    "folders": "ModifiedDate",
    "list_subscribers": "ModifiedDate",
    "sends": "ModifiedDate",
    "emails": "ModifiedDate",
    "triggered_sends": "ModifiedDate",
    "campaign_assets": None,
    "subscribers": None,
}
# The send counter an event moves; opens and clicks count subscribers, not events.
_UNIQUE = frozenset({"OpenEvent", "ClickEvent"})
_COUNTERS = {
    "SentEvent": "NumberSent",
    "OpenEvent": "UniqueOpens",
    "ClickEvent": "UniqueClicks",
    "UnsubEvent": "Unsubscribes",
    "NotSentEvent": "NumberErrored",
}
