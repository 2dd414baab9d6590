"""Destinations: one identity per warehouse however it is spelled, dlt destinations by name,
and passwords never shown. Nothing here connects to anything."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dlt
import pytest

from sfmc_source.destination import (
    MAX_SCHEMA_LENGTH,
    Warehouse,
    loader_file_format,
    schema_name,
)
from sfmc_source.errors import ConfigError
from sfmc_source.redaction import redact_url


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("duckdb:///./sfmc.duckdb", "duckdb"),
        ("duckdb:////tmp/abs.duckdb", "duckdb"),
        ("postgresql://postgres@127.0.0.1:5432/test", "postgres"),
        ("filesystem", "filesystem"),
    ],
)
def test_destinations_by_url_or_dlt_name(
    url: str, name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DESTINATION__FILESYSTEM__BUCKET_URL", f"file://{tmp_path}")
    assert Warehouse.parse(url).dlt_destination().destination_name == name


@pytest.mark.parametrize(
    "url", ["duckdb://", "mysql://root@localhost/db", "no-such-destination", "Bad Name"]
)
def test_unknown_destinations_are_usage_errors(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Warehouse.parse(url).dlt_destination()
    assert caught.value.exit_code == 2


def test_a_dlt_destination_without_credentials_names_the_keys_to_set() -> None:
    with pytest.raises(ConfigError) as caught:
        Warehouse.parse("bigquery").dlt_destination()
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("--destination bigquery: dlt has no configuration for it; set ")
    assert "DESTINATION__BIGQUERY__CREDENTIALS__PROJECT_ID" in message


def test_one_duckdb_file_has_one_identity_however_it_is_spelled(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    (tmp_path / "link").symlink_to(folder)
    spellings = [
        ("duckdb:///k.duckdb", folder),
        ("duckdb:///./k.duckdb", folder),
        (f"duckdb:///{folder}/./k.duckdb", tmp_path),
        (f"duckdb:///{folder}/../data/k.duckdb", tmp_path),
        (f"duckdb:///{tmp_path}/link/k.duckdb", tmp_path),
        ("duckdb:///../link/k.duckdb", folder),
    ]
    found = {Warehouse.parse(url, cwd=cwd) for url, cwd in spellings}
    assert {w.identity for w in found} == {f"duckdb:///{folder}/k.duckdb"}
    assert {w.pipeline_name("sfmc") for w in found} == {
        Warehouse.parse(f"duckdb:///{folder}/k.duckdb").pipeline_name("sfmc")
    }


def test_a_relative_duckdb_path_follows_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    in_a = Warehouse.parse("duckdb:///w.duckdb")
    monkeypatch.chdir(tmp_path / "b")
    in_b = Warehouse.parse("duckdb:///w.duckdb")
    assert in_a.path == tmp_path / "a" / "w.duckdb"
    assert in_b.path == tmp_path / "b" / "w.duckdb"
    assert in_a.pipeline_name("sfmc") != in_b.pipeline_name("sfmc")


def test_a_postgres_identity_is_user_host_port_database_without_the_password() -> None:
    spellings = [
        "postgresql://loader:Hunter2Secret@DB.example:5432/wh",
        "postgres://loader:other@db.example/wh",
        "postgresql://loader@db.example:5432/wh",
    ]
    found = [Warehouse.parse(url) for url in spellings]
    assert {w.identity for w in found} == {"postgresql://loader@db.example:5432/wh"}
    assert found[0].display == "postgresql://loader:***@db.example:5432/wh"
    assert "Hunter2Secret" not in repr(found[0])
    assert found[0].secrets() == ["Hunter2Secret"]
    assert len({w.pipeline_name("sfmc") for w in found}) == 1
    assert Warehouse.parse("postgresql://loader:x@db.example:5433/wh").identity.endswith(":5433/wh")


def test_a_trusted_postgres_user_gets_the_empty_password_dlt_wants() -> None:
    assert Warehouse.parse("postgresql://postgres@h:5432/db").url == (
        "postgresql://postgres:@h:5432/db"
    )
    assert Warehouse.parse("postgresql://u:p%40ss@h/db").url == "postgresql://u:p%40ss@h:5432/db"


JSON_COLUMN = {"body": {"name": "body", "data_type": "json"}}


@pytest.mark.parametrize(
    ("adbc", "columns", "chosen", "allowed"),
    [
        pytest.param(True, {}, "parquet", {"insert_values", "parquet"}, id="binary COPY"),
        pytest.param(True, JSON_COLUMN, "insert_values", {"insert_values"}, id="json: INSERT"),
        pytest.param(False, {}, "insert_values", {"insert_values"}, id="no ADBC: INSERT"),
    ],
)
def test_postgres_tables_load_by_copy_where_copy_keeps_empty_strings(
    adbc: bool,
    columns: dict[str, Any],
    chosen: str,
    allowed: set[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Never CSV: dlt's CSV COPY turns '' into NULL."""
    monkeypatch.setenv("DISABLE_ADBC_DETECTION", str(not adbc).lower())
    capabilities = Warehouse.parse("postgresql://u@h/db").dlt_destination().capabilities()
    dlt_formats = ["insert_values", "csv", "parquet", "model"]
    table = {"name": "t", "columns": columns}

    preferred, supported = capabilities.loader_file_format_selector(
        "insert_values", dlt_formats, table_schema=table
    )

    assert (preferred, set(supported) - {"model"}) == (chosen, allowed)


def test_sync_asks_for_insert_only_on_a_postgres_that_would_copy_csv() -> None:
    ours = Warehouse.parse("postgresql://u@h/db").dlt_destination()
    dlts = dlt.destinations.postgres(credentials="postgresql://u:p@h/db")
    duckdb = Warehouse.parse("duckdb:///w.duckdb").dlt_destination()
    assert [loader_file_format(d) for d in (ours, dlts, duckdb)] == [None, "insert_values", None]


def test_a_missing_duckdb_directory_is_named(tmp_path: Path) -> None:
    warehouse = Warehouse.parse(f"duckdb:///{tmp_path}/nonexistent/dir/x.duckdb")
    with pytest.raises(ConfigError, match=r"directory .*/nonexistent/dir does not exist"):
        warehouse.require_directory()
    Warehouse.parse(f"duckdb:///{tmp_path}/x.duckdb").require_directory()


@pytest.mark.parametrize(
    ("text", "name"), [("sfmc", "sfmc"), ("Prod", "prod"), (" my_schema2 ", "my_schema2")]
)
def test_schema_names_are_lower_cased(text: str, name: str) -> None:
    assert schema_name(text) == name


@pytest.mark.parametrize(
    "text", ["", "Bad-Name", "sfmc;drop table x", "2fast", "a" * (MAX_SCHEMA_LENGTH + 1)]
)
def test_bad_schema_names_say_the_rule(text: str) -> None:
    with pytest.raises(ConfigError, match="use lowercase letters, digits and _") as caught:
        schema_name(text)
    assert caught.value.exit_code == 2


def test_urls_in_any_text_lose_their_password() -> None:
    text = "cannot reach postgresql://postgres:Hunter2Secret@127.0.0.1:1/test (x://a:b@c)"
    assert (
        redact_url(text) == "cannot reach postgresql://postgres:***@127.0.0.1:1/test (x://a:***@c)"
    )
    assert redact_url("postgresql://postgres@h/db") == "postgresql://postgres@h/db"
    assert os.sep == "/"
