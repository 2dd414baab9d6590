"""What a body-heavy first sync costs: ``sync --collections emails --email-bodies`` against a
tenant whose every email carries ``--body-kb`` of HTML, at each of ``--emails`` counts, on a
fresh schema each time.

The emulator runs in its own process (this script with ``--serve``), so only the sync's wall
time and peak RSS are measured. Bodies are read a page (2,500 emails) at a time: from the
smallest count to the largest, peak RSS may grow by at most ``GROWTH_TARGET_MB``. The default
destination is Postgres: DuckDB, given 64 MB of memory, cannot load much more than 55 MB of
bodies in one run (README.md#email-bodies).

Prints a table and writes bench/results/email_bodies.json.

    .venv/bin/python bench/email_bodies.py [--emails 5000,12500] [--body-kb 30]
        [--destination postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import psycopg2  # type: ignore[import-untyped]

from sfmc_source.emulator import Emulator, EmulatorConfig, Sizes

GROWTH_TARGET_MB = 100.0
RESULTS = Path(__file__).parent / "results" / "email_bodies.json"
# ASCII HTML; text with emoji or non-Latin scripts takes up to four times the memory in Python.
ROW = "<tr><td>Offers &amp; more, %%First Name%%</td></tr>"


def serve(emails: int, body_kb: int) -> None:
    """What ``--serve`` runs: ``emails`` classic emails of ``body_kb`` each and nothing else,
    until SIGTERM; its environment on stdout as ``NAME=value`` lines."""
    sizes = Sizes(
        campaigns=0, lists=1, journeys=0, subscribers=0, sends=0, emails=emails, triggered_sends=0
    )
    server = Emulator(EmulatorConfig(sizes=sizes))
    body = (ROW * (body_kb * 1024 // len(ROW) + 1))[: body_kb * 1024]
    for row in server.app.unit().emails.values():
        row.update({"HTMLBody": f"<html><body>{body}</body></html>", "TextBody": body[:2_000]})
    for name, value in server.environment().items():
        print(f"{name}={value}")
    sys.stdout.flush()

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


@contextmanager
def emulator(emails: int, body_kb: int) -> Iterator[dict[str, str]]:
    """A ``--serve`` process for the duration of the block; yields its environment."""
    command = [sys.executable, __file__, "--serve", "--emails", str(emails)]
    command += ["--body-kb", str(body_kb)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline().strip() for _ in range(4)]
        if not all(lines):
            raise RuntimeError(f"the emulator did not start (exit code {process.poll()})")
        yield dict(line.partition("=")[::2] for line in lines)
    finally:
        process.terminate()
        process.wait(timeout=30)


def run_sync(env: dict[str, str], destination: str, schema: str) -> dict[str, Any]:
    """One sync process: its exit code, wall time and peak RSS (wait4)."""
    script = Path(sys.executable).parent / "sfmc-source"
    command = [str(script), "sync", "--destination", destination, "--schema", schema]
    command += ["--collections", "emails", "--email-bodies"]
    with tempfile.TemporaryDirectory(prefix="sfmc-bench-") as home:
        environ = {**os.environ, **env, "DLT_DATA_DIR": home, "RUNTIME__DLTHUB_TELEMETRY": "false"}
        environ.pop("SFMC_SUBDOMAIN", None)
        started = time.perf_counter()
        with subprocess.Popen(command, env=environ, stdout=subprocess.DEVNULL) as process:
            _, status, usage = os.wait4(process.pid, 0)
            process.returncode = os.waitstatus_to_exitcode(status)
    return {
        "exit_code": process.returncode,
        "wall_s": round(time.perf_counter() - started, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),
    }


def drop_schema(destination: str, schema: str) -> None:
    if not destination.startswith("postgresql://"):
        return
    connection = psycopg2.connect(destination)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            for suffix in ("", "_staging"):
                cursor.execute(f'DROP SCHEMA IF EXISTS "{schema}{suffix}" CASCADE')
    finally:
        connection.close()


def measure(emails: int, body_kb: int, destination: str) -> dict[str, Any]:
    schema = f"bench_emails_{uuid.uuid4().hex[:8]}"
    with emulator(emails, body_kb) as env:
        try:
            run = run_sync(env, destination, schema)
        finally:
            drop_schema(destination, schema)
    megabytes = emails * body_kb / 1024
    print(f"{emails:>8,} emails  {megabytes:>6.0f} MB of bodies  {run}", flush=True)
    return {"emails": emails, "body_kb": body_kb, **run}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", default="5000,12500")
    parser.add_argument("--body-kb", type=int, default=30)
    parser.add_argument("--destination", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    counts = [int(n) for n in args.emails.split(",")]
    if args.serve:
        serve(counts[0], args.body_kb)
        return
    runs = [measure(n, args.body_kb, args.destination) for n in counts]
    growth = runs[-1]["peak_rss_mb"] - runs[0]["peak_rss_mb"]
    ok = all(run["exit_code"] == 0 for run in runs) and growth <= GROWTH_TARGET_MB
    print(f"peak RSS growth {growth} MB (target ≤ {GROWTH_TARGET_MB:g}): {'ok' if ok else 'MISS'}")
    report = {"runs": runs, "growth_mb": growth, "target_mb": GROWTH_TARGET_MB, "ok": ok}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
