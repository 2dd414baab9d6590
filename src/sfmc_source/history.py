"""Run history: one row per collection per sync run in ``<schema>._sfmc_runs``, and the
latest of them per collection for ``sfmc-source status``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dlt
from dlt.common.versioned_state import decompress_state
from dlt.extract.resource import DltResource
from dlt.pipeline.exceptions import PipelineStepFailed

from sfmc_source.destination import Query, Warehouse

RUNS_TABLE = "_sfmc_runs"
RUN_COLUMNS: list[Any] = [
    {"name": "run_id", "data_type": "text", "nullable": False},
    {"name": "collection", "data_type": "text", "nullable": False},
    {"name": "started", "data_type": "timestamp", "timezone": True, "nullable": False},
    {"name": "finished", "data_type": "timestamp", "timezone": True, "nullable": False},
    {"name": "outcome", "data_type": "text", "nullable": False},
    {"name": "rows", "data_type": "bigint", "nullable": False},
    {"name": "requests", "data_type": "bigint", "nullable": False},
    {"name": "error", "data_type": "text", "nullable": True},
    {"name": "business_unit_id", "data_type": "bigint", "nullable": True},
]


@dataclass
class CollectionResult:
    """What one sync run did for one collection of one business unit. ``name`` is what
    people see: the collection, or ``collection@MID`` when a run syncs several units."""

    name: str
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished: datetime | None = None
    rows: int = 0
    requests: int = 0
    error: str | None = None
    collection: str = ""  # default: name
    business_unit_id: int | None = None
    skipped: bool = False  # not run: the run was asked to stop first

    def __post_init__(self) -> None:
        self.collection = self.collection or self.name

    @property
    def outcome(self) -> str:
        """ok, failed, or skipped."""
        if self.skipped:
            return "skipped"
        return "ok" if self.error is None else "failed"

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    @property
    def described(self) -> str:
        """The outcome as the summary shows it."""
        return "skipped (interrupted)" if self.skipped else self.outcome

    @property
    def seconds(self) -> float:
        return ((self.finished or self.started) - self.started).total_seconds()


def runs_resource(run_id: str, results: Sequence[CollectionResult]) -> DltResource:
    """The run's rows, to append with the run's load."""
    return dlt.resource(
        run_rows(run_id, results),
        name=RUNS_TABLE,
        write_disposition="append",
        columns=RUN_COLUMNS,
    )


def record_runs(
    pipeline: dlt.Pipeline, run_id: str, results: Sequence[CollectionResult]
) -> str | None:
    """Append the run's rows alone; a failure to write them is reported, not raised."""
    rows = run_rows(run_id, results)
    if not rows:
        return None
    try:
        pipeline.run(rows, table_name=RUNS_TABLE, write_disposition="append", columns=RUN_COLUMNS)
    except PipelineStepFailed as exc:
        return f"the run history was not written: {str(exc).splitlines()[0]}"
    return None


def run_rows(run_id: str, results: Sequence[CollectionResult]) -> list[dict[str, Any]]:
    return [
        {
            "run_id": run_id,
            "collection": r.collection,
            "business_unit_id": r.business_unit_id,
            "started": r.started,
            "finished": r.finished or r.started,
            "outcome": r.outcome,
            "rows": r.rows,
            "requests": r.requests,
            "error": "interrupted" if r.skipped else r.error,
        }
        for r in results
    ]


def latest_runs(warehouse: Warehouse, schema: str) -> list[dict[str, Any]]:
    """The latest run row of each collection of each business unit, with its cursor; [] before
    the first sync. Reads only: DuckDB is opened read-only, and a missing file is an error,
    never created."""
    with warehouse.sql(schema, read_only=True) as query:
        tables = _names(query, "tables", f"table_schema = '{schema}'", "table_name")
        if RUNS_TABLE not in tables:
            return []
        where = f"table_schema = '{schema}' AND table_name = '{RUNS_TABLE}'"
        found = _names(query, "columns", where, "column_name")
        names = [c["name"] for c in RUN_COLUMNS if c["name"] in found]
        rows = query(f'SELECT {", ".join(names)} FROM "{schema}"."{RUNS_TABLE}" ORDER BY finished')
        state = _stored_state(query, schema) if STATE_TABLE in tables else {}
    latest = {}
    for row in rows:
        run = dict(zip(names, row, strict=True))
        run.setdefault("business_unit_id", None)
        latest[run["collection"], run["business_unit_id"]] = run
    cursors = _cursors(state)
    return [
        {**run, "cursor": cursors.get((name, unit), cursors.get((name, None)))}
        for (name, unit), run in latest.items()
    ]


STATE_TABLE = "_dlt_pipeline_state"


def _names(query: Query, view: str, where: str, column: str) -> set[str]:
    found = query(f"SELECT {column} FROM information_schema.{view} WHERE {where}")
    return {row[0] for row in found}


def _stored_state(query: Query, schema: str) -> dict[str, Any]:
    """The newest dlt state this tool stored in the schema, whatever spelling of the
    destination stored it."""
    rows = query(
        f'SELECT state FROM "{schema}"."{STATE_TABLE}" '
        "WHERE pipeline_name LIKE 'sfmc_source_%' ORDER BY created_at DESC LIMIT 1"
    )
    return decompress_state(rows[0][0]) if rows else {}


def _cursors(state: dict[str, Any]) -> dict[tuple[str, int | None], Any]:
    """The cursor of each collection of each business unit, from dlt resource state."""
    resources = state.get("sources", {}).get("sfmc", {}).get("resources", {})
    cursors: dict[tuple[str, int | None], Any] = {}
    for name, state in resources.items():
        for unit, unit_state in state.get("units", {}).items():
            if unit_state.get("cursor") is not None:
                cursors[name, int(unit)] = unit_state["cursor"]
        value = state.get("incremental", {}).get("modified_date", {}).get("last_value")
        if value is not None:  # kept by a version before business units
            cursors[name, None] = value
    return cursors
