"""Shaping SFMC records into warehouse rows: seed column names, checked types, UTC timestamps.

A value of the wrong type (text where a boolean belongs, an object where text belongs, a
timestamp that does not parse) or a null primary key raises ``ResponseError``: it is never
loaded as wrong data and never skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timezone
from typing import Any

from sfmc_source.errors import ResponseError
from sfmc_source.specs import Collection, Column
from sfmc_source.timefmt import SYSTEM_TIME, parse_timestamp


def shape(
    collection: Collection,
    record: Mapping[str, Any],
    *,
    soap: bool = False,
    naive_zone: timezone = SYSTEM_TIME,
) -> dict[str, Any]:
    """One row of ``collection`` from a REST item (dotted paths) or a SOAP row (flat names)."""
    row = {}
    for column in collection.columns:
        raw = record.get(column.source) if soap else dig(record, column.source)
        try:
            row[column.name] = convert(raw, column.type, from_text=soap, naive_zone=naive_zone)
        except (TypeError, ValueError) as exc:
            raise ResponseError(f"{collection.name}: {column.source} {exc}") from None
    missing = [key for key in collection.primary_key if row[key] is None]
    if missing:
        raise ResponseError(
            f"{collection.name}: a record has no {', '.join(missing)} "
            f"(primary key): {_preview(record)}"
        )
    return row


def dig(record: Mapping[str, Any], path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


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
    return {c.name: _hint(c, c.name in collection.primary_key) for c in collection.columns}


def _hint(column: Column, key: bool) -> dict[str, Any]:
    hint: dict[str, Any] = {
        "name": column.name,
        "data_type": column.type,
        "nullable": not key,
    }
    if column.type == "timestamp":
        hint["timezone"] = True
    return hint
