"""What a collection remembers between runs: its cursor, and what earlier runs learned (the
properties a tenant refuses, the campaigns whose assets were read, recent sends ...).

It lives in dlt resource state under the business unit's MID, so several units share a
resource: stored in the destination with the data, committed only with a load. A sync run
reads copies (``RunStates``) and hands dlt the states of the collections it loads; the dlt
source used on its own writes dlt's (``DltStates``). Only the source writes state; readers
return what they learn, and a collection reads another's state only where its spec row
declares the dependency (``depends_on``).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import dlt
import pyarrow as pa
import pyarrow.compute as pc


def unit_part(resource: dict[str, Any], unit: int) -> dict[str, Any]:
    """One business unit's part of a collection's state. A state written before business
    units (its keys at the top) becomes the part of the first unit synced."""
    if "units" not in resource:
        legacy = {key: resource.pop(key) for key in list(resource)}
        cursor = legacy.pop("incremental", {}).get("modified_date", {}).get("last_value")
        if cursor is not None:
            legacy["cursor"] = _iso(cursor)
        resource["units"] = {str(unit): legacy} if legacy else {}
    units: dict[str, dict[str, Any]] = resource["units"]
    return units.setdefault(str(unit), {})


def store_unit_part(resource: dict[str, Any], unit: int, part: dict[str, Any]) -> None:
    """``part`` becomes the unit's part of a collection's state."""
    unit_part(resource, unit)  # an earlier shape of the state first takes this one
    resource["units"][str(unit)] = part


class States(Protocol):
    """What the collections of one business unit remember, by collection."""

    def of(self, name: str) -> dict[str, Any]:
        """The unit's state of collection ``name``, to read and write."""
        ...

    def learned(self, names: Iterable[str], key: str) -> list[Any]:
        """What ``names`` (a declared dependency) stored under ``key``."""
        ...


class DltStates:
    """The states dlt keeps for the resources of the source being extracted: for the dlt
    source used on its own, where dlt commits them with the load."""

    def __init__(self, unit: int) -> None:
        self.unit = unit

    def of(self, name: str) -> dict[str, Any]:
        resources = dlt.current.source_state().setdefault("resources", {})
        return unit_part(resources.setdefault(name, {}), self.unit)

    def learned(self, names: Iterable[str], key: str) -> list[Any]:
        resources = dlt.current.source_state().get("resources", {})
        return _learned(resources, self.unit, names, key)


class RunStates:
    """The states of one unit's collections in a sync run: copies of what the run started
    with (``stored``, dlt's resource states by collection), written as the collections read.
    ``done`` names the collections that finished: what they learned is what their
    dependents read; for the others, what was stored."""

    def __init__(self, stored: dict[str, Any], unit: int) -> None:
        self.stored, self.unit = stored, unit
        self.working: dict[str, dict[str, Any]] = {}
        self.done: set[str] = set()
        self._lock = threading.Lock()

    def of(self, name: str) -> dict[str, Any]:
        with self._lock:
            if name not in self.working:
                self.working[name] = self._stored_of(name)
            return self.working[name]

    def _stored_of(self, name: str) -> dict[str, Any]:
        return unit_part(copy.deepcopy(self.stored.get(name, {})), self.unit)

    def learned(self, names: Iterable[str], key: str) -> list[Any]:
        found = []
        for name in names:
            state = self.working.get(name, {}) if name in self.done else self._stored_of(name)
            found += state.get(key, [])
        return found


def _learned(resources: dict[str, Any], unit: int, names: Iterable[str], key: str) -> list[Any]:
    return [
        value
        for name in names
        for value in resources.get(name, {}).get("units", {}).get(str(unit), {}).get(key, [])
    ]


class HighWater:
    """The highest ``column`` value loaded for a unit. A run reads from ``overlap`` before it
    (from ``first`` on a unit's first run, everything without a ``first``); rows without a
    value are kept. ``commit`` stores the new mark in resource state, which dlt saves only
    with the run's load."""

    def __init__(
        self, column: str, state: dict[str, Any], overlap: timedelta, first: datetime | None = None
    ) -> None:
        self.column, self.overlap, self.first = column, overlap, first
        self.state = state
        stored = self.state.get("cursor")
        self.stored = datetime.fromisoformat(stored) if stored else None
        self.high = self.stored

    def since(self, full_refresh: bool) -> datetime | None:
        if full_refresh or self.stored is None:
            return self.first
        return self.stored - self.overlap

    def seen(self, page: pa.Table) -> pa.Table:
        highest = pc.max(page[self.column]).as_py()
        if highest is not None and (self.high is None or highest > self.high):
            self.high = highest
        return page

    def commit(self) -> None:
        if self.high is not None:
            self.state["cursor"] = self.high.isoformat()


def dated(rows: pa.Table, key: str, first: str, fallback: str) -> dict[str, str]:
    """Each row's ``key`` with its ``first`` date (else its ``fallback`` one), as ISO text;
    rows with neither are left out."""
    dates = pc.coalesce(rows[first], rows[fallback]).to_pylist()
    return {
        str(k): d.isoformat()
        for k, d in zip(rows[key].to_pylist(), dates, strict=True)
        if d is not None
    }


def since(stamps: dict[str, str], horizon: datetime) -> dict[str, str]:
    """The stamps at or after ``horizon``."""
    return {k: d for k, d in stamps.items() if datetime.fromisoformat(d) >= horizon}


def within(stamps: dict[str, str], span: timedelta) -> dict[str, str]:
    """The stamps no older than ``span`` before the newest: what a later run's overlap can
    read again."""
    if not stamps:
        return stamps
    newest = max(stamps.values())
    oldest = (datetime.fromisoformat(newest) - span).isoformat() if newest else ""
    return {k: d for k, d in stamps.items() if d >= oldest}


def _iso(value: Any) -> str:
    """A cursor dlt stored (a datetime, or its ISO text) as ISO text in UTC."""
    instant = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return instant.astimezone(UTC).isoformat()
