"""Destination URLs and names map onto dlt destinations without connecting to anything."""

from __future__ import annotations

import pytest

from sfmc_source.errors import ConfigError
from sfmc_source.sync import _with_password, destination_for


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("duckdb:///./sfmc.duckdb", "duckdb"),
        ("duckdb:////tmp/abs.duckdb", "duckdb"),
        ("postgresql://postgres@127.0.0.1:5432/test", "postgres"),
        ("bigquery", "bigquery"),
        ("snowflake", "snowflake"),
        ("redshift", "redshift"),
        ("filesystem", "filesystem"),
    ],
)
def test_destinations_by_url_or_dlt_name(url: str, name: str) -> None:
    assert destination_for(url).destination_name == name


@pytest.mark.parametrize("url", ["duckdb://", "mysql://root@localhost/db", "no-such-destination"])
def test_unknown_destinations_are_usage_errors(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        destination_for(url)
    assert caught.value.exit_code == 2


def test_a_trusted_postgres_user_gets_the_empty_password_dlt_wants() -> None:
    assert _with_password("postgresql://postgres@h:5432/db") == "postgresql://postgres:@h:5432/db"
    assert _with_password("postgresql://u:p@h/db") == "postgresql://u:p@h/db"
