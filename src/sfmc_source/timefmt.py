"""SFMC timestamps: how the platform writes them and how to read them back.

SFMC's system clock is US Central Standard Time fixed at UTC−06:00, with no daylight saving
(docs/sfmc-api.md#time-zones). SOAP and most REST payloads carry naive strings in that zone
with 0–3 fractional digits (``2024-04-24T12:18:43.47``); some endpoints add ``Z`` or an offset
and up to 7 fractional digits. ``0001-01-01T00:00:00`` means "never".
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

SYSTEM_TIME = timezone(timedelta(hours=-6), "SFMC system time")
NEVER = "0001-01-01T00:00:00"

_TIMESTAMP = re.compile(
    r"(?P<base>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})"
    r"(?:\.(?P<fraction>\d{1,7}))?"
    r"(?P<zone>Z|[+-]\d{2}:?\d{2})?"
)


def format_system_time(instant: datetime) -> str:
    """Write an instant the way SFMC does: naive, in system time, milliseconds without trailing
    zeros (``…:54``, ``…:54.21``, ``…:54.213``)."""
    local = instant.astimezone(SYSTEM_TIME) if instant.tzinfo else instant
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    millis = f"{local.microsecond // 1000:03d}".rstrip("0")
    return f"{text}.{millis}" if millis else text


def parse_timestamp(text: str | None, naive_zone: timezone = SYSTEM_TIME) -> datetime | None:
    """Read an SFMC timestamp as an aware UTC datetime.

    A naive value is taken to be in ``naive_zone`` (SFMC system time unless configured);
    ``Z`` and explicit offsets are honoured. Empty strings and the ``0001-01-01`` sentinel are
    null. Anything else raises ``ValueError``.
    """
    if text is None:
        return None
    text = text.strip()
    if not text or text.startswith("0001-01-01"):
        return None
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        raise ValueError(f"not an SFMC timestamp: {text!r}")
    parsed = datetime.fromisoformat(match["base"])
    fraction = match["fraction"] or ""
    microseconds = round(int(fraction.ljust(7, "0")) / 10) if fraction else 0
    zone = _zone(match["zone"]) if match["zone"] else naive_zone
    aware = parsed.replace(tzinfo=zone) + timedelta(microseconds=microseconds)
    return aware.astimezone(UTC)


def _zone(designator: str) -> timezone:
    if designator == "Z":
        return UTC
    sign = -1 if designator[0] == "-" else 1
    digits = designator[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
