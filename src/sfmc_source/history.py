"""Run history: one row per collection per sync run in ``<schema>._sfmc_runs``, and the
latest of them per collection for ``sfmc-source status``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dlt
from dlt.pipeline.exceptions import PipelineStepFailed

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

    def __post_init__(self) -> None:
        self.collection = self.collection or self.name

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def seconds(self) -> float:
        return ((self.finished or self.started) - self.started).total_seconds()


def record_runs(
    pipeline: dlt.Pipeline, run_id: str, results: Sequence[CollectionResult]
) -> str | None:
    """Append the run's rows; a failure to write them is reported, not raised."""
    rows = [
        {
            "run_id": run_id,
            "collection": r.collection,
            "business_unit_id": r.business_unit_id,
            "started": r.started,
            "finished": r.finished or r.started,
            "outcome": "ok" if r.ok else "failed",
            "rows": r.rows,
            "requests": r.requests,
            "error": r.error,
        }
        for r in results
    ]
    if not rows:
        return None
    try:
        pipeline.run(rows, table_name=RUNS_TABLE, write_disposition="append", columns=RUN_COLUMNS)
    except PipelineStepFailed as exc:
        return f"the run history was not written: {str(exc).splitlines()[0]}"
    return None


def latest_runs(pipeline: dlt.Pipeline) -> list[dict[str, Any]]:
    """The latest run row of each collection of each business unit, with its cursor; [] before
    the first sync."""
    pipeline.sync_destination()
    schema_name: str | None = pipeline.default_schema_name
    if schema_name is None or RUNS_TABLE not in pipeline.default_schema.tables:
        return []
    names = ["collection", "run_id", "started", "finished", "outcome", "rows", "requests", "error"]
    if "business_unit_id" in pipeline.default_schema.tables[RUNS_TABLE]["columns"]:
        names.append("business_unit_id")
    with pipeline.sql_client() as sql:
        table = sql.make_qualified_table_name(RUNS_TABLE)
        found = sql.execute_sql(f"SELECT {', '.join(names)} FROM {table} ORDER BY finished") or []
    latest = {}
    for row in found:
        run = dict(zip(names, row, strict=True))
        run.setdefault("business_unit_id", None)
        latest[run["collection"], run["business_unit_id"]] = run
    cursors = _cursors(pipeline)
    return [
        {**run, "cursor": cursors.get((name, unit), cursors.get((name, None)))}
        for (name, unit), run in latest.items()
    ]


def _cursors(pipeline: dlt.Pipeline) -> dict[tuple[str, int | None], Any]:
    """The cursor of each collection of each business unit, from dlt resource state."""
    resources = pipeline.state.get("sources", {}).get("sfmc", {}).get("resources", {})
    cursors: dict[tuple[str, int | None], Any] = {}
    for name, state in resources.items():
        for unit, unit_state in state.get("units", {}).items():
            if unit_state.get("cursor") is not None:
                cursors[name, int(unit)] = unit_state["cursor"]
        value = state.get("incremental", {}).get("modified_date", {}).get("last_value")
        if value is not None:  # kept by a version before business units
            cursors[name, None] = value
    return cursors
