"""What a collection remembers between runs: its cursor, and what earlier runs learned (the
properties a tenant refuses, the campaigns whose assets were read, recent sends ...).

It lives in dlt resource state under the business unit's MID, so several units share a
resource: stored in the destination with the data, committed only with a load. Only the
source writes it; readers return what they learn, and a collection reads another's state
only where its spec row declares the dependency (``depends_on``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import dlt
import pyarrow as pa
import pyarrow.compute as pc


def unit_state(unit: int) -> dict[str, Any]:
    """The current resource's state for one business unit. A resource state written before
    business units (its keys at the top) becomes the state of the first unit synced."""
    state = dlt.current.resource_state()
    if "units" not in state:
        legacy = {key: state.pop(key) for key in list(state)}
        cursor = legacy.pop("incremental", {}).get("modified_date", {}).get("last_value")
        if cursor is not None:
            legacy["cursor"] = _iso(cursor)
        state["units"] = {str(unit): legacy} if legacy else {}
    units: dict[str, dict[str, Any]] = state["units"]
    return units.setdefault(str(unit), {})


def learned(unit: int, collections: Iterable[str], key: str) -> list[Any]:
    """What ``collections`` (a declared dependency) stored under ``key`` for ``unit``."""
    resources = dlt.current.source_state().get("resources", {})
    return [
        value
        for name in collections
        for value in resources.get(name, {}).get("units", {}).get(str(unit), {}).get(key, [])
    ]


class HighWater:
    """The highest ``column`` value loaded for a unit. A run reads from ``overlap`` before it
    (from ``first`` on a unit's first run, everything without a ``first``); rows without a
    value are kept. ``commit`` stores the new mark in resource state, which dlt saves only
    with the run's load."""

    def __init__(
        self, column: str, unit: int, overlap: timedelta, first: datetime | None = None
    ) -> None:
        self.column, self.overlap, self.first = column, overlap, first
        self.state = unit_state(unit)
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
