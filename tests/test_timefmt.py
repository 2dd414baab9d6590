from datetime import UTC, datetime, timedelta, timezone

import pytest

from sfmc_source.timefmt import SYSTEM_TIME, format_system_time, parse_timestamp


@pytest.mark.parametrize(
    ("instant", "written"),
    [
        pytest.param(
            datetime(2024, 6, 1, 6, 0, tzinfo=UTC), "2024-06-01T00:00:00", id="summer-no-dst"
        ),
        pytest.param(
            datetime(2024, 1, 1, 5, 59, 59, tzinfo=UTC), "2023-12-31T23:59:59", id="new-year"
        ),
        pytest.param(
            datetime(2024, 4, 24, 18, 18, 43, 470_000, tzinfo=UTC),
            "2024-04-24T12:18:43.47",
            id="two-digits",
        ),
        pytest.param(
            datetime(2024, 4, 24, 18, 17, 15, 423_000, tzinfo=UTC),
            "2024-04-24T12:17:15.423",
            id="three-digits",
        ),
        pytest.param(
            datetime(2024, 4, 24, 18, 17, 15, 400_999, tzinfo=UTC),
            "2024-04-24T12:17:15.4",
            id="sub-millisecond-dropped",
        ),
    ],
)
def test_format_system_time_writes_naive_utc_minus_6(instant: datetime, written: str) -> None:
    assert format_system_time(instant) == written


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "2024-06-01T00:00:00", datetime(2024, 6, 1, 6, tzinfo=UTC), id="naive-is-utc-6"
        ),
        pytest.param(
            "2024-04-24T12:18:43.47",
            datetime(2024, 4, 24, 18, 18, 43, 470_000, tzinfo=UTC),
            id="two-fraction-digits",
        ),
        pytest.param(
            "2021-12-28T04:50:11.8146417-06:00",
            datetime(2021, 12, 28, 10, 50, 11, 814_642, tzinfo=UTC),
            id="seven-digits-offset",
        ),
        pytest.param(
            "2023-03-28T14:35:34.213Z",
            datetime(2023, 3, 28, 14, 35, 34, 213_000, tzinfo=UTC),
            id="zulu",
        ),
        pytest.param(
            "2024-05-07T05:08:46.927+0200",
            datetime(2024, 5, 7, 3, 8, 46, 927_000, tzinfo=UTC),
            id="offset-without-colon",
        ),
        pytest.param("0001-01-01T00:00:00", None, id="never-published"),
        pytest.param("", None, id="empty"),
        pytest.param(None, None, id="null"),
    ],
)
def test_parse_timestamp(text: str | None, expected: datetime | None) -> None:
    assert parse_timestamp(text) == expected


def test_naive_zone_is_configurable_for_stack_4() -> None:
    mountain = timezone(timedelta(hours=-7))
    assert parse_timestamp("2024-06-01T00:00:00", mountain) == datetime(2024, 6, 1, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    "text", ["2024-06-01", "yesterday", "2024-06-01T00:00:00.12345678", "5/9/2024"]
)
def test_parse_timestamp_rejects_other_text(text: str) -> None:
    with pytest.raises(ValueError, match="not an SFMC timestamp"):
        parse_timestamp(text)


def test_round_trip_keeps_milliseconds() -> None:
    instant = datetime(2025, 7, 4, 12, 30, 1, 5_000, tzinfo=UTC)
    assert parse_timestamp(format_system_time(instant)) == instant
    assert format_system_time(instant.astimezone(SYSTEM_TIME)) == "2025-07-04T06:30:01.005"
