"""Shaping SFMC records into warehouse tables: seed column names, checked types, UTC timestamps.

A page of records becomes one Arrow table, which dlt writes to parquet without touching each
row. A value of the wrong type (text where a boolean belongs, an object where text belongs, a
timestamp that does not parse) or a null primary key raises ``ResponseError``: it is never
loaded as wrong data and never skipped.

``convert`` is the rule for one value. SOAP columns, all text, are first cast by Arrow where
the text has the plain shape SFMC writes; any column Arrow cannot cast that way goes through
``convert`` value by value, so both paths give the same result or the same error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import timezone
from typing import Any, TypeAlias

import pyarrow as pa
import pyarrow.compute as pc

from sfmc_source.errors import ResponseError
from sfmc_source.soap import Rows
from sfmc_source.specs import BUSINESS_UNIT_ID, Collection, Column
from sfmc_source.timefmt import NEVER, SYSTEM_TIME, parse_timestamp

ARROW_TYPES = {
    "text": pa.string(),
    "json": pa.string(),  # JSON text; the warehouse column is JSON (dlt_columns)
    "bigint": pa.int64(),
    "double": pa.float64(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}
# One column's values: Python values, or SOAP text already in Arrow.
Raw: TypeAlias = "list[Any] | pa.Array[Any]"
# What Arrow casts exactly as ``convert`` reads it; other text takes the slow, exact path.
_PLAIN = {
    "bigint": r"^-?\d{1,18}$",
    "double": r"^-?\d+(\.\d+)?$",
    "timestamp": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?$",
}


def table(
    collection: Collection,
    records: Sequence[Mapping[str, Any]],
    *,
    soap: bool = False,
    naive_zone: timezone = SYSTEM_TIME,
) -> pa.Table:
    """The rows of ``collection`` from REST items (dotted paths) or SOAP rows (flat names;
    taken column by column when they come as ``soap.Rows``)."""
    if not isinstance(records, Rows):
        for record in records:
            if not isinstance(record, Mapping):
                raise ResponseError(
                    f"{collection.name}: an item is not a JSON object: {record!r:.80}"
                )
    arrays = []
    for column in collection.columns:
        raw = _raw(records, column.source, soap)
        try:
            arrays.append(_array(raw, column.type, soap, naive_zone))
        except (TypeError, ValueError) as exc:
            raise ResponseError(f"{collection.name}: {column.source} {exc}") from None
    result = pa.Table.from_arrays(arrays, schema=arrow_schema(collection))
    _check_keys(collection, result, records)
    return result


def shape(
    collection: Collection,
    record: Mapping[str, Any],
    *,
    soap: bool = False,
    naive_zone: timezone = SYSTEM_TIME,
) -> dict[str, Any]:
    """One row of ``collection``, as ``table`` makes it."""
    one = table(collection, [record], soap=soap, naive_zone=naive_zone)
    row: dict[str, Any] = one.to_pylist()[0]
    return row


def arrow_schema(collection: Collection) -> pa.Schema:
    return pa.schema(
        pa.field(c.name, ARROW_TYPES[c.type], nullable=c.name not in collection.primary_key)
        for c in collection.columns
    )


def warehouse_schema(collection: Collection) -> pa.Schema:
    """The Arrow schema of the rows loaded: the collection's, then ``business_unit_id``."""
    return arrow_schema(collection).append(pa.field(BUSINESS_UNIT_ID.name, pa.int64(), False))


def _check_keys(
    collection: Collection, result: pa.Table, records: Sequence[Mapping[str, Any]]
) -> None:
    for key in collection.primary_key:
        nulls = result[key].null_count
        if nulls:
            where = pc.index(pc.is_null(result[key]), True).as_py()
            raise ResponseError(
                f"{collection.name}: a record has no {key} (primary key): "
                f"{_preview(records[where])}"
            )


def _array(raw: Raw, kind: str, from_text: bool, naive_zone: timezone) -> pa.Array[Any]:
    arrow_type = ARROW_TYPES[kind]
    if from_text and kind != "json":
        cast = _cast_text(raw, kind, naive_zone)
        if cast is not None:
            return cast
    listed = raw.to_pylist() if isinstance(raw, pa.Array) else raw
    values = [convert(v, kind, from_text=from_text, naive_zone=naive_zone) for v in listed]
    if kind == "json":
        values = [None if v is None else json.dumps(v, ensure_ascii=False) for v in values]
    return pa.array(values, arrow_type)


def _cast_text(raw: Raw, kind: str, naive_zone: timezone) -> pa.Array[Any] | None:
    """SOAP text cast by Arrow, or ``None`` where some value needs ``convert``'s reading."""
    text = raw if isinstance(raw, pa.Array) else pa.array(raw, pa.string())
    if kind == "text":
        return text
    if kind == "bool":
        lower = pc.utf8_lower(text)
        if not pc.all(pc.is_in(pc.drop_null(lower), pa.array(["true", "false"]))).as_py():
            return None
        return pc.equal(lower, pa.scalar("true"))
    if kind == "timestamp":
        text = pc.if_else(pc.starts_with(text, NEVER[:10]), pa.scalar(None, pa.string()), text)
    if not pc.all(pc.match_substring_regex(pc.drop_null(text), _PLAIN[kind])).as_py():
        return None
    if kind != "timestamp":
        return text.cast(ARROW_TYPES[kind])
    local = text.cast(pa.timestamp("us")).cast(pa.int64())
    offset = naive_zone.utcoffset(None)
    shift = (offset.days * 86_400 + offset.seconds) * 1_000_000 + offset.microseconds
    return pc.subtract(local, shift).cast(ARROW_TYPES["timestamp"])


def _raw(records: Sequence[Mapping[str, Any]], source: str, soap: bool) -> Raw:
    """The values of one column: a property of SOAP rows (Arrow text when they come as
    ``soap.Rows``), or a dotted path into REST items."""
    if isinstance(records, Rows):
        found = records.array(source)
        return found if found is not None else [None] * len(records)
    if soap:
        return [record.get(source) for record in records]
    return _dig_all(records, source)


def _dig_all(records: Sequence[Mapping[str, Any]], path: str) -> list[Any]:
    """The value at a dotted ``path`` in each record (``None`` where the path breaks off),
    one step at a time over all records."""
    values: list[Any] = list(records)
    for part in path.split("."):
        values = [v.get(part) if isinstance(v, Mapping) else None for v in values]
    return values


def convert(
    value: Any, kind: str, *, from_text: bool = False, naive_zone: timezone = SYSTEM_TIME
) -> Any:
    """Check and convert one value. SOAP sends every value as text, REST sends JSON types."""
    if value is None:
        return None
    if kind == "json":
        return value
    if isinstance(value, (dict, list)):
        raise TypeError(f"is an object or array, not {kind}: {_preview(value)}")
    if kind == "text":
        return value if isinstance(value, str) else _number_text(value)
    if kind == "timestamp":
        if not isinstance(value, str):
            raise TypeError(f"is {_preview(value)}, not a timestamp")
        return parse_timestamp(value, naive_zone)
    if kind == "bool":
        return _bool(value, from_text)
    if kind == "bigint":
        return _int(value)
    if kind == "double":
        return _float(value)
    raise ValueError(f"has unknown column type {kind}")


def _number_text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"is {_preview(value)}, not text")
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _bool(value: Any, from_text: bool) -> bool:
    if isinstance(value, bool):
        return value
    if from_text and isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise TypeError(f"is {_preview(value)}, not a boolean")


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError(f"is {_preview(value)}, not a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise TypeError(f"is {_preview(value)}, not a whole number")


def _float(value: Any) -> float:
    if isinstance(value, bool):
        raise TypeError(f"is {_preview(value)}, not a number")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise TypeError(f"is {_preview(value)}, not a number")


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def dlt_columns(collection: Collection) -> dict[str, dict[str, Any]]:
    """dlt column hints: every column typed, primary key columns not null."""
    key = collection.table_key
    return {c.name: _hint(c, c.name in key) for c in collection.table_columns}


def _hint(column: Column, key: bool) -> dict[str, Any]:
    hint: dict[str, Any] = {
        "name": column.name,
        "data_type": column.type,
        "nullable": not key,
    }
    if column.type == "timestamp":
        hint["timezone"] = True
    return hint
