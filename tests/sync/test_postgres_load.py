"""How Arrow pages reach Postgres (README.md#from-python-as-a-dlt-source): a table without a
json column by parquet, which dlt copies in with ADBC's binary COPY a row group at a time; a
table with one by INSERT ... VALUES, its json kept as jsonb. Either way '' stays apart from
NULL in every column, whatever the text holds.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dlt
import pyarrow as pa
import pytest
import test_sync_e2e as e2e
from test_sync_e2e import Destination

from sfmc_source.emulator.generate import NASTY
from sfmc_source.sync import pipeline_for

destination_factory = e2e.destination_factory

TEXTS = [*NASTY, None, "", '""', "\\N", "back\\slash", "a,b", "cr\ronly", "\n", " "]
JSONS = [None if t is None else json.dumps(t, ensure_ascii=False) for t in TEXTS]
WHEN = datetime(2024, 6, 1, 12, 0, 0, 123456, tzinfo=UTC)
COLUMNS: dict[str, Any] = {
    "id": {"data_type": "bigint", "nullable": False},
    "name": {"data_type": "text", "nullable": True},
    "body": {"data_type": "json", "nullable": True},
    "modified": {"data_type": "timestamp", "timezone": True, "nullable": True},
    "opens": {"data_type": "bigint", "nullable": True},
    "active": {"data_type": "bool", "nullable": True},
}


def page(with_json: bool) -> pa.Table:
    """One Arrow page, as the source yields them: every nasty string, '' and NULL, and NULL
    beside values in every other kind of column."""
    n = len(TEXTS)
    columns = {
        "id": pa.array(range(n), pa.int64()),
        "name": pa.array(TEXTS, pa.string()),
        "body": pa.array(JSONS, pa.string()),
        "modified": pa.array(
            [WHEN if i % 2 else None for i in range(n)], pa.timestamp("us", "UTC")
        ),
        "opens": pa.array([i if i % 3 else None for i in range(n)], pa.int64()),
        "active": pa.array([None if i % 3 == 1 else i % 2 == 0 for i in range(n)], pa.bool_()),
    }
    if not with_json:
        del columns["body"]
    return pa.table(columns)


@pytest.mark.parametrize(
    ("with_json", "loaded_as", "json_type"),
    [
        pytest.param(False, "parquet", None, id="plain table: binary COPY"),
        pytest.param(True, "insert_values", "jsonb", id="table with json: INSERT"),
    ],
)
def test_arrow_pages_keep_empty_strings_apart_from_nulls(
    destination_factory: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    with_json: bool,
    loaded_as: str,
    json_type: str,
) -> None:
    monkeypatch.setenv("DATA_WRITER__BUFFER_MAX_ITEMS", "1")  # a row group per page
    destination: Destination = destination_factory("postgres")
    table = page(with_json)
    columns = {name: hint for name, hint in COLUMNS.items() if name in table.column_names}
    pipeline = pipeline_for(destination.url, destination.schema, pipelines_dir=str(tmp_path))
    pages = [table.slice(0, 5), table]  # the second page merges over the first

    info = pipeline.run(
        dlt.resource(pages, name="t", primary_key="id", write_disposition="merge", columns=columns)
    )

    landed = destination.query(f"SELECT {', '.join(columns)} FROM {{schema}}.t ORDER BY id")
    assert [dict(zip(columns, row, strict=True)) for row in landed] == expected(table)
    assert column_types(destination).get("body") == json_type
    jobs = [j.job_file_info for p in info.load_packages for j in p.jobs["completed_jobs"]]
    assert {j.file_format for j in jobs if j.table_name == "t"} - {"sql"} == {loaded_as}


def expected(table: pa.Table) -> list[dict[str, Any]]:
    rows = table.to_pylist()
    for row in rows:
        if row.get("body") is not None:
            row["body"] = json.loads(row["body"])
    return rows


def column_types(destination: Destination) -> dict[str, str]:
    rows = destination.query(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = 't'",
        (destination.schema,),
    )
    return dict(rows)  # type: ignore[arg-type]
