"""Tracking events kept as columns, so that one business unit can hold a million of them.

An ``EventTable`` holds the rows of one event object (SentEvent, OpenEvent ...), in EventDate
order (ties in the order they were added), which is the order they are served in: an EventDate
window is found by bisection, and a page of rows is a slice of each column. EventDate is kept
as whole microseconds since the Unix epoch in an array, and a property that every row has the
same value of is kept once, so a row costs about 40 bytes instead of a dict's 600.

Rows are only added, never changed or removed, so a position names the same row for good and a
Retrieve in progress keeps the positions it matched. A late event (one older than the newest)
goes to the end, and from then on the table keeps a list of positions in EventDate order.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from itertools import repeat
from operator import itemgetter
from typing import Any

from sfmc_source.timefmt import SYSTEM_TIME

EVENT_DATE = "EventDate"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
# Floats order whole numbers up to 2**53 exactly, and a list of floats sorts twice as fast.
_EXACT_FLOAT = 2**53


def to_micros(instant: datetime) -> int:
    """An instant as microseconds since the Unix epoch; a naive one is in system time."""
    aware = instant if instant.tzinfo else instant.replace(tzinfo=SYSTEM_TIME)
    return (aware - _EPOCH) // _MICROSECOND


def from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


@dataclass(frozen=True)
class Bound:
    """One end of an EventDate window: an instant, and whether the window holds it."""

    micros: int
    inclusive: bool


class EventTable:
    """The rows of one tracking event object, as columns.

    ``constants`` are values every row has; ``columns`` are sequences of equal length, one of
    them ``EventDate`` as microseconds (``to_micros``), in any order. A property in neither is
    null on every row.
    """

    def __init__(
        self,
        constants: Mapping[str, Any] | None = None,
        columns: Mapping[str, Sequence[Any]] | None = None,
    ) -> None:
        columns = dict(columns or {})
        dates = columns.pop(EVENT_DATE, ())
        order = _argsort(dates)
        pick = itemgetter(*order) if len(order) > 1 else lambda values: tuple(values)
        self._constants = dict(constants or {})
        self._columns = {name: list(pick(values)) for name, values in columns.items()}
        self._dates = array("q", pick(dates))
        self._order: array[int] | None = None  # positions in EventDate order, when not 0, 1 ...
        # The types of a column's values, found when asked: of how many, which.
        self._kinds: dict[str, tuple[int, frozenset[type]]] = {}

    def __len__(self) -> int:
        return len(self._dates)

    @property
    def names(self) -> list[str]:
        return [*self._constants, EVENT_DATE, *self._columns]

    def add(self, fields: Mapping[str, Any]) -> None:
        """Add a row (it needs an ``EventDate``), after the rows of the same EventDate."""
        micros = to_micros(fields[EVENT_DATE])
        position = len(self._dates)
        for name in {*self._constants, *self._columns, *fields} - {EVENT_DATE}:
            self._append(name, fields.get(name), position)
        if self._order is None and position and micros < self._dates[-1]:
            self._order = array("q", range(position))
        self._dates.append(micros)
        if self._order is not None:
            at = bisect.bisect_right(self._order, micros, key=self._dates.__getitem__)
            self._order.insert(at, position)

    def _append(self, name: str, value: Any, position: int) -> None:
        column = self._columns.get(name)
        if column is None:
            constant = self._constants.get(name)
            if type(constant) is type(value) and constant == value:
                return
            column = self._columns[name] = [self._constants.pop(name, None)] * position
        column.append(value)

    # ---- reading --------------------------------------------------------------------------

    def span(self, after: Bound | None = None, until: Bound | None = None) -> tuple[int, int]:
        """The indexes (into the EventDate order) of the rows between ``after`` and ``until``."""
        order: Sequence[int] = self._order if self._order is not None else self._dates
        key = None if self._order is None else self._dates.__getitem__
        start, stop = 0, len(order)
        if after is not None:
            find = bisect.bisect_left if after.inclusive else bisect.bisect_right
            start = find(order, after.micros, key=key)
        if until is not None:
            find = bisect.bisect_right if until.inclusive else bisect.bisect_left
            stop = find(order, until.micros, key=key)
        return start, max(start, stop)

    def positions(self, start: int = 0, stop: int | None = None) -> Sequence[int]:
        """The positions of rows ``start:stop`` in EventDate order: a range or a copy, which
        rows added later do not disturb."""
        if self._order is None:
            return range(len(self))[start:stop]
        return self._order[start:stop]

    def get(self, name: str, position: int) -> Any:
        column = self._columns.get(name)
        if column is not None:
            return column[position]
        if name == EVENT_DATE:
            return from_micros(self._dates[position])
        return self._constants.get(name)

    def fields(self, position: int) -> dict[str, Any]:
        return {name: self.get(name, position) for name in self.names}

    def records(self) -> Iterator[dict[str, Any]]:
        """Every row's fields, in EventDate order."""
        run = EventRun(self, self.positions())
        columns: list[Iterable[Any]] = [repeat(v, len(self)) for v in self._constants.values()]
        columns.append(map(from_micros, run.values(EVENT_DATE)))
        columns += [run.values(name) for name in self._columns]
        names = self.names
        for values in zip(*columns, strict=True):
            yield dict(zip(names, values, strict=True))

    def is_constant(self, name: str) -> bool:
        return name != EVENT_DATE and name not in self._columns

    def column(self, name: str) -> Sequence[Any] | None:
        """A column's values by position (EventDate in microseconds); None when every row has
        the same value."""
        return self._dates if name == EVENT_DATE else self._columns.get(name)

    def kinds(self, name: str) -> frozenset[type]:
        """The types of a column's values."""
        if name == EVENT_DATE:
            return frozenset({int})
        column = self._columns.get(name)
        if column is None:
            return frozenset({type(self._constants.get(name))})
        seen, kinds = self._kinds.get(name, (0, frozenset()))
        if seen < len(column):  # rows added since: only ever appended, so look at those
            added = column[seen:]
            kinds = kinds.union(map(type, added))
            self._kinds[name] = (seen + len(added), kinds)
        return kinds

    def contains(self, wanted: Mapping[str, Any]) -> bool:
        """Whether some row has all these values (of properties other than EventDate)."""
        if not self or any(
            self.is_constant(name) and self.get(name, 0) != value for name, value in wanted.items()
        ):
            return False
        varying = [name for name in wanted if not self.is_constant(name)]
        if not varying:
            return True
        target = tuple(wanted[name] for name in varying)
        columns = [self._columns[name] for name in varying]
        return any(row == target for row in zip(*columns, strict=True))


def _argsort(dates: Sequence[int]) -> list[int]:
    """Positions by date, stable."""
    keys: Sequence[Any] = dates
    if dates and min(dates) > -_EXACT_FLOAT and max(dates) < _EXACT_FLOAT:
        keys = list(map(float, dates))
    return sorted(range(len(dates)), key=keys.__getitem__)


@dataclass(frozen=True)
class EventRun:
    """Some rows of one table, by position, in the order they are served."""

    table: EventTable
    positions: Sequence[int]

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, span: slice) -> EventRun:
        return EventRun(self.table, self.positions[span])

    def values(self, name: str) -> Sequence[Any]:
        """The values of a property in these rows; EventDate in microseconds."""
        column, positions = self.table.column(name), self.positions
        if column is None:
            return [self.table.get(name, 0)] * len(self)
        if isinstance(positions, range) and positions.step == 1:
            return column[positions.start : positions.stop]
        return self._pick(column) if len(self) > 1 else [column[p] for p in positions]

    @cached_property
    def _pick(self) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
        return itemgetter(*self.positions)


class EventView:
    """One row of a table, read field by field: what a filter needs, without a dict per row."""

    __slots__ = ("position", "table")

    def __init__(self, table: EventTable, position: int = 0) -> None:
        self.table, self.position = table, position

    def get(self, name: str, /) -> Any:
        return self.table.get(name, self.position)
