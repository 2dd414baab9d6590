"""The tracking events into Postgres next to DuckDB: the smaller events sync of bench/sync.py
(``--scale events`` at 0 ms, the last ``EVENTS_PART`` of the history) into a fresh DuckDB file
and into a fresh Postgres schema, in turn, ``--rounds`` times against one emulator. Postgres
must load at least ``TARGET`` of DuckDB's rows/s (README.md#performance).

Prints each run and the medians; writes bench/results/events_postgres.json.

    .venv/bin/python bench/events_postgres.py [--rounds 3]
        [--destination postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import uuid
from pathlib import Path
from typing import Any

# bench/ is sys.path[0] when this runs as `python bench/events_postgres.py`.
from email_bodies import drop_schema
from sync import (
    EVENT_COLLECTIONS,
    EVENTS_PART,
    EventsRun,
    emulator,
    recent_days,
    run_json,
    run_sync,
    served,
)

from sfmc_source.emulator import Faults

TARGET = 0.8  # Postgres rows/s ÷ DuckDB rows/s
RESULTS = Path(__file__).parent / "results" / "events_postgres.json"


def events_sync(env: dict[str, str], days: int, postgres: str | None) -> EventsRun:
    """One sync of the event collections into a fresh DuckDB file, or a fresh schema of the
    ``postgres`` database (dropped after)."""
    schema = f"bench_events_{uuid.uuid4().hex[:8]}"
    destination = (postgres, schema) if postgres else None
    served(env, clear=True)
    with tempfile.TemporaryDirectory(prefix="sfmc-bench-") as workdir:
        try:
            run = run_sync(env, Path(workdir), 5, EVENT_COLLECTIONS, days, destination)
        finally:
            if postgres:
                drop_schema(postgres, schema)
    events = EventsRun(days, run, served(env))
    print(
        f"  {'postgres' if postgres else 'duckdb':>8}: {events.rows:,} rows, {run.wall_s:5.1f}s "
        f"wall, {events.rate:7,.0f} rows/s, {run.cpu_s:5.1f}s CPU, peak RSS "
        f"{run.peak_rss_mb:4.0f} MB, exit {run.exit_code}",
        flush=True,
    )
    return events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--destination", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    days = recent_days(EVENTS_PART)
    runs: dict[str, list[EventsRun]] = {"duckdb": [], "postgres": []}
    with emulator("events", Faults()) as env:
        for _ in range(args.rounds):
            runs["duckdb"].append(events_sync(env, days, None))
            runs["postgres"].append(events_sync(env, days, args.destination))
    report = summary(runs)
    print(
        f"median rows/s: DuckDB {report['duckdb_rows_per_s']:,.0f}, Postgres "
        f"{report['postgres_rows_per_s']:,.0f}: {report['ratio']:.2f} of DuckDB's "
        f"(target ≥ {TARGET}): {'ok' if report['met'] else 'MISS'}"
    )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))


def summary(runs: dict[str, list[EventsRun]]) -> dict[str, Any]:
    rates = {kind: statistics.median(r.rate for r in done) for kind, done in runs.items()}
    ratio = rates["postgres"] / rates["duckdb"] if rates["duckdb"] else 0.0
    ok = all(r.sync.ok for done in runs.values() for r in done)
    return {
        "rows": runs["postgres"][0].rows,
        "duckdb_rows_per_s": rates["duckdb"],
        "postgres_rows_per_s": rates["postgres"],
        "ratio": ratio,
        "target": TARGET,
        "met": ok and ratio >= TARGET,
        "runs": {
            kind: [{"rows": r.rows, "rows_per_s": r.rate, **run_json(r.sync)} for r in done]
            for kind, done in runs.items()
        },
    }


if __name__ == "__main__":
    main()
