"""What a SOAP Retrieve returns: the rows that match its filter, served a page at a time.

Rows of most objects are tested one by one. Tracking events are kept in EventDate order
(``tracking.EventTable``), so an EventDate window (``greaterThan`` A ``AND lessThanOrEqual`` B,
``between`` ...) is found by bisection, and only the rest of the filter, if any, is tested row
by row. What matched is fixed when the Retrieve begins: events added later (late events, in a
past window) do not shift the pages of a Retrieve in progress.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar

from lxml import etree

from sfmc_source.emulator.catalogue import SoapObject
from sfmc_source.emulator.data import BusinessUnit, Row
from sfmc_source.emulator.soap import (
    Condition,
    Predicate,
    ResultsWriter,
    Slot,
    compile_condition,
    element,
)
from sfmc_source.emulator.tracking import EVENT_DATE, EventRun, EventTable, EventView
from sfmc_source.timefmt import SYSTEM_TIME


class Matches:
    """What a Retrieve matched, in the order it is served: lists of rows and runs of events.
    A slice is the part of them on one page."""

    def __init__(self, parts: Iterable[list[Row] | EventRun]) -> None:
        self.parts = [part for part in parts if len(part)]

    def __len__(self) -> int:
        return sum(len(part) for part in self.parts)

    def __getitem__(self, span: slice) -> Matches:
        start, stop, step = span.indices(len(self))
        if step != 1:
            raise ValueError("a page is a contiguous slice")
        page, offset = [], 0
        for part in self.parts:
            low, high = max(start - offset, 0), min(stop - offset, len(part))
            if low < high:
                page.append(part[low:high])
            offset += len(part)
        return Matches(page)

    def write(self, writer: ResultsWriter) -> list[bytes]:
        """The ``<Results>`` elements of these rows, in a few pieces to join."""
        results: list[bytes] = []
        for part in self.parts:
            if isinstance(part, EventRun):
                results += write_events(writer, part)
            else:
                results += [writer.write(row) for row in part]
        return results


def select(obj: SoapObject, units: Iterable[BusinessUnit], where: etree._Element | None) -> Matches:
    """The rows of ``obj`` in ``units`` that match the ``Filter`` element ``where`` (None:
    all). Raises ``soap.StatusError`` for a filter SFMC would refuse."""
    condition = compile_condition(where, obj) if where is not None else None
    parts: list[list[Row] | EventRun] = []
    for unit in units:
        if obj.table is not None:
            parts.append(_events(obj.table(unit), condition))
        elif condition is None:
            parts.append(list(obj.rows(unit)))
        else:
            test = condition.test
            parts.append([row for row in obj.rows(unit) if test(row.fields)])
    return Matches(parts)


def _events(table: EventTable, condition: Condition | None) -> EventRun:
    if condition is None:
        return EventRun(table, table.positions())
    positions = table.positions(*table.span(condition.after, condition.until))
    if condition.rest is not None:
        positions = _kept(table, positions, condition.rest)
    return EventRun(table, positions)


def _kept(table: EventTable, positions: Sequence[int], test: Predicate) -> array[int]:
    view, kept = EventView(table), array("q")
    for position in positions:
        view.position = position
        if test(view):
            kept.append(position)
    return kept


# ---- writing events ------------------------------------------------------------------------


def write_events(writer: ResultsWriter, run: EventRun) -> list[bytes]:
    """The ``<Results>`` of some tracking events, as ``writer`` writes each, written column by
    column: a property whose value is the same in every row is written once, a value is
    looked up once it has been written, and rows are joined in one go."""
    pieces: list[_Texts] = [f'<Results xsi:type="{writer.obj.name}">'.encode()]
    for parent, slots in writer.groups:
        texts = [text for slot in slots for text in _column(run, slot)]
        pieces += texts if parent is None else [_nested(parent, texts, len(run))]
    pieces.append(b"</Results>")
    return [_interleaved(pieces, len(run))] if len(run) else []


def _column(run: EventRun, slot: Slot) -> list[_Texts]:
    """A slot's element in each row of ``run``, in pieces: each one for every row, or a
    text per row."""
    table, source = run.table, slot[0]
    if not source or table.is_constant(source):
        return [element(slot, table.get(source, 0) if source else None).encode()]
    values = run.values(source)
    if source == EVENT_DATE:
        return [slot[1].encode(), *_date_texts(values), slot[2].encode()]
    kinds = table.kinds(source)
    numbers = kinds & _NUMBERS
    if kinds <= _MEMO_SAFE and len(numbers) <= 1:
        return [list(map(_Memo.of(slot, *numbers).__getitem__, values))]
    return [[element(slot, value).encode() for value in values]]


# A text for every row, or one per row.
_Texts = bytes | list[bytes]
# Types whose values a memo may hold: no value equals one of another type, except numbers
# (True == 1 == 1.0), so a memo holds one kind of number.
_MEMO_SAFE = frozenset({str, int, float, bool, datetime, type(None)})
_NUMBERS = frozenset({int, float, bool})


class _Memo(dict[Any, bytes]):
    """A slot's element for each value met so far, shared by all Retrieves (a new one for each
    would write the same 10,000 SubscriberKeys anew for each EventDate window)."""

    _of: ClassVar[dict[tuple[Slot, type | None], _Memo]] = {}

    def __init__(self, slot: Slot) -> None:
        super().__init__()
        self.slot = slot

    @classmethod
    def of(cls, slot: Slot, number: type | None = None) -> _Memo:
        """The memo of a slot, for values of which ``number`` is the only kind of number."""
        memo = cls._of.get((slot, number))
        if memo is None or len(memo) > _MEMO_SIZE:
            memo = cls._of[slot, number] = cls(slot)
        return memo

    def __missing__(self, value: Any) -> bytes:
        text = self[value] = element(self.slot, value).encode()
        return text


def _nested(parent: str, texts: list[_Texts], count: int) -> _Texts:
    """Nested elements wrapped in their parent, which is left out when they all are."""
    opening, closing = f"<{parent}>".encode(), f"</{parent}>".encode()
    if all(isinstance(text, bytes) for text in texts):
        inner = b"".join(text for text in texts if isinstance(text, bytes))
        return opening + inner + closing if inner else b""
    return [opening + inner + closing if inner else b"" for inner in _per_row(texts, count)]


def _interleaved(pieces: list[_Texts], count: int) -> bytes:
    """The pieces joined row by row, all rows in one string."""
    merged: list[_Texts] = []
    for piece in pieces:
        if isinstance(piece, bytes) and merged and isinstance(merged[-1], bytes):
            merged[-1] += piece
        else:
            merged.append(piece)
    width = len(merged)
    flat = [b""] * (width * count)
    for at, piece in enumerate(merged):
        flat[at::width] = [piece] * count if isinstance(piece, bytes) else piece
    return b"".join(flat)


def _per_row(pieces: list[_Texts], count: int) -> list[bytes]:
    """The pieces joined, row by row."""
    template, columns = b"", []
    for piece in pieces:
        if isinstance(piece, bytes):
            template += piece.replace(b"%", b"%%")
        else:
            template += b"%s"
            columns.append(piece)
    if not columns:
        return [template % ()] * count
    return list(map(template.__mod__, zip(*columns, strict=True)))


def _date_texts(micros: Sequence[int]) -> tuple[list[bytes], list[bytes], list[bytes]]:
    """EventDates as ``format_system_time`` writes them, from microseconds since the epoch,
    in three pieces: the minute (looked up, as many events share one), seconds, milliseconds."""
    offset = _SYSTEM_OFFSET
    minutes = [(instant + offset) // _MINUTE for instant in micros]
    millis = [(instant + offset) % _MINUTE // 1_000 for instant in micros]
    if len(_MINUTES) > _MEMO_SIZE:
        _MINUTES.clear()
    return (
        list(map(_MINUTES.__getitem__, minutes)),
        list(map(_SECOND_TEXTS.__getitem__, [m // 1_000 for m in millis])),
        list(map(_MILLI_TEXTS.__getitem__, [m % 1_000 for m in millis])),
    )


class _Minutes(dict[int, bytes]):
    """``2024-06-01T10:02:`` for each minute since the epoch, in system time."""

    def __missing__(self, minute: int) -> bytes:
        moment = datetime(1970, 1, 1) + timedelta(minutes=minute)
        text = self[minute] = moment.strftime("%Y-%m-%dT%H:%M:").encode()
        return text


_SYSTEM_OFFSET = int(SYSTEM_TIME.utcoffset(None).total_seconds()) * 1_000_000
_MINUTE = 60_000_000
_MINUTES = _Minutes()
_SECOND_TEXTS = [f"{second:02d}".encode() for second in range(60)]
_MILLI_TEXTS = [f".{milli:03d}".rstrip("0").rstrip(".").encode() for milli in range(1_000)]
# Values a memo holds at most: a column may have a different one in each row.
_MEMO_SIZE = 200_000
