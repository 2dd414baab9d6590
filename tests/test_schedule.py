"""Running unattended: the run loop, stops on signals, the lock per business unit and
destination (syncs of other units run at once), config files."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import tomllib
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import duckdb
import pytest
from click.testing import CliRunner

from sfmc_source.cli import main, run
from sfmc_source.emulator import Emulator, EmulatorConfig, Sizes
from sfmc_source.errors import ConfigError, SyncBusy
from sfmc_source.schedule import destination_lock, parse_duration

ROOT = Path(__file__).parents[1]
SIZES = Sizes(campaigns=40, assets_per_campaign=2, lists=60, journeys=5)
MID = EmulatorConfig().mids[0]  # the emulated package's own business unit
# Only so that a hung process fails its test instead of hanging the suite: every wait here ends
# on something the process or the emulator does, never on how fast the machine is.
SAFETY = 600


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("3h", 10_800), ("90m", 5_400), ("1h30m", 5_400), ("45s", 45), ("1d", 86_400), ("0.5s", 0.5)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text, "--every") == seconds


@pytest.mark.parametrize("text", ["", "3", "three hours", "3h-", "h3"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ConfigError, match="use a duration such as 3h"):
        parse_duration(text, "--every")


def test_the_lock_admits_one_holder_and_frees_itself() -> None:
    name = f"test-lock-{uuid.uuid4().hex}"  # the lock is machine-wide; other runs hold theirs
    with (
        destination_lock(name),
        pytest.raises(SyncBusy, match=f"pid {os.getpid()}"),
        destination_lock(name),
    ):
        pass
    with destination_lock(name):
        pass


def cli_env(emulator: Emulator, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SFMC_", "DLT_"))}
    env.update(
        emulator.environment(),
        DLT_DATA_DIR=str(tmp_path / "dlt"),
        SFMC_DESTINATION=f"duckdb:///{tmp_path}/w.duckdb",
        **extra,
    )
    env.pop("SFMC_SUBDOMAIN")
    return env


def start_run(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sfmc_source", "run", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(condition: Callable[[], bool], seconds: float = SAFETY) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def held(emulator_factory: Callable[..., Emulator]) -> Iterator[Emulator]:
    """An emulator whose API answers wait at its closed gate: a sync is held inside its first
    group, holding the destination's lock, for as long as a test needs, however slow the
    machine."""
    emulator = emulator_factory(sizes=SIZES)
    emulator.app.gate.close()
    yield emulator
    emulator.app.gate.open()


def wait_inside(emulator: Emulator, process: subprocess.Popen[str]) -> None:
    """Until the process's sync is held at the gate, failing at once if it ends first."""
    emulator.app.gate.wait_until_holding(timeout=SAFETY, alive=lambda: process.poll() is None)


class Stderr:
    """A process's stderr read line by line as it is written, so that a test waits for what
    the process says rather than for a deadline. Its stdout is drained alongside."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None and process.stderr is not None
        self.process, self.said = process, ""
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._readers = [_started(process.stdout.read), _started(self._read, process.stderr)]

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line)
        self._lines.put(None)

    def wait_for(self, text: str) -> None:
        """Until a line says ``text``; fails as soon as the process ends without saying it."""
        while (line := self._lines.get(timeout=SAFETY)) is not None:
            self.said += line
            if text in line:
                return
        self._lines.put(None)
        pytest.fail(f"exited {self.process.wait()} without saying {text!r}:\n{self.said}")

    def until_exit(self) -> str:
        """All it said, once it has ended."""
        while (line := self._lines.get(timeout=SAFETY)) is not None:
            self.said += line
        self._lines.put(None)
        self.process.wait(SAFETY)
        for reader in self._readers:
            reader.join(SAFETY)
        return self.said


def _started(target: Callable[..., object], *args: object) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def table_counts(tmp_path: Path) -> dict[str, tuple[int, int]]:
    keys = {
        "campaigns": "id",
        "campaign_assets": "id",
        "lists": "id",
        "interactions": "id || '/' || version",
        "goals": "interaction_id || '/' || key",
    }
    with duckdb.connect(f"{tmp_path}/w.duckdb", read_only=True) as con:
        tables = {
            r[0]
            for r in con.sql(
                "select table_name from information_schema.tables where table_schema = 'sfmc'"
            ).fetchall()
        }
        return {
            t: con.sql(f"select count(*), count(distinct {k}) from sfmc.{t}").fetchall()[0]
            for t, k in keys.items()
            if t in tables
        }


def test_sigterm_mid_run_stops_at_a_safe_point_and_a_restart_converges(
    held: Emulator, tmp_path: Path
) -> None:
    emulator = held
    emulator.app.gate.close(rest=False)  # SOAP requests wait; REST collections are read
    env = cli_env(emulator, tmp_path)
    # enough slots that the held SOAP requests (one an event window: 20 days, one window)
    # leave some to REST
    process = start_run(env, "--every", "2s", "-v", "--concurrency", "30", "--backfill-days", "20")
    stderr = Stderr(process)
    stderr.wait_for("campaign_assets: read")  # campaigns and their assets: read in full
    wait_inside(emulator, process)  # lists (SOAP) held at its first request
    process.send_signal(signal.SIGTERM)
    stderr.wait_for("SIGTERM: stopping: no more requests; what was read loads")
    emulator.app.gate.open()
    err = stderr.until_exit()
    assert process.returncode == 143, err  # a sync cut short
    assert re.search(r"lists: 0 rows, 1 request, .*, skipped \(interrupted\)", err), err
    assert "interrupted: not synced this run: lists, " in err
    assert emulator.app.log.count("SOAP Retrieve List") == 0
    counts = table_counts(tmp_path)
    assert counts["campaigns"] == (40, 40)
    assert "lists" not in counts
    with duckdb.connect(f"{tmp_path}/w.duckdb", read_only=True) as con:
        outcomes = dict(con.sql("select collection, outcome from sfmc._sfmc_runs").fetchall())
    assert outcomes["campaigns"] == "ok" and outcomes["lists"] == "skipped"

    emulator.app.mutate.update("campaigns", "1003", name="changed while stopped")
    process = start_run(env, "--every", "1h")
    stderr = Stderr(process)
    stderr.wait_for("next sync in")
    process.send_signal(signal.SIGTERM)
    err = stderr.until_exit()
    assert process.returncode == 0, err  # stopped between syncs: nothing cut short
    assert "next sync in" in err
    counts = table_counts(tmp_path)
    versions = sum(len(v) for v in emulator.app.unit().journeys.values())
    assert counts["campaigns"] == (40, 40) and counts["lists"] == (60, 60)
    assert counts["interactions"] == (versions, versions)
    assert counts["campaign_assets"][0] == counts["campaign_assets"][1]
    with duckdb.connect(f"{tmp_path}/w.duckdb", read_only=True) as con:
        assert con.sql("select name from sfmc.campaigns where id = '1003'").fetchall() == [
            ("changed while stopped",)
        ]


@pytest.mark.parametrize(
    ("first_unit", "second_unit"),
    [
        pytest.param((), (), id="the-packages-own-unit"),
        pytest.param(("--account-id", str(MID)), ("--account-id", str(MID)), id="one-mid"),
        pytest.param(
            ("--account-id", str(MID)), ("--account-ids", f"{MID + 1},{MID}"), id="among-others"
        ),
    ],
)
def test_a_second_sync_of_the_same_unit_and_destination_is_refused_while_one_runs(
    held: Emulator, tmp_path: Path, first_unit: tuple[str, ...], second_unit: tuple[str, ...]
) -> None:
    emulator = held
    env = cli_env(emulator, tmp_path)
    first = start_run(env, "--every", "1h", "--concurrency", "1", *first_unit)
    wait_inside(emulator, first)
    second = subprocess.run(
        [sys.executable, "-m", "sfmc_source", "sync", *second_unit],
        env=env,
        capture_output=True,
        text=True,
        timeout=SAFETY,
    )
    first.send_signal(signal.SIGTERM)
    emulator.app.gate.open()
    first.communicate(timeout=SAFETY)
    assert second.returncode == 1
    assert "another sync of this destination and schema is running" in second.stderr
    assert emulator.app.log.token_requests == 1


# campaigns and lists alone, one request in flight each: a sync held at the gate holds one
UNIT_SYNC = ("--collections", "campaigns,lists", "--concurrency", "1")


def sync_each_unit_at_once(emulator: Emulator, env: dict[str, str]) -> None:
    """A ``sync --account-id MID`` process per business unit, all reading SFMC at the same
    time (each holds a request at the closed gate before any is let through); each succeeds."""
    emulator.app.gate.close()
    syncs = [
        subprocess.Popen(
            [sys.executable, "-m", "sfmc_source", "sync", "--account-id", str(mid), *UNIT_SYNC],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for mid in emulator.config.mids
    ]
    try:
        emulator.app.gate.wait_until_holding(
            len(syncs), timeout=SAFETY, alive=lambda: all(s.poll() is None for s in syncs)
        )
    finally:
        emulator.app.gate.open()
    for sync in syncs:
        _, err = sync.communicate(timeout=SAFETY)
        assert sync.returncode == 0, err


def test_syncs_of_two_units_into_one_duckdb_file_run_at_once_and_keep_their_cursors(
    emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    emulator = emulator_factory(sizes=SIZES, business_units=2)
    mids = emulator.config.mids
    env = cli_env(emulator, tmp_path)

    sync_each_unit_at_once(emulator, env)

    with duckdb.connect(f"{tmp_path}/w.duckdb", read_only=True) as con:
        for table, rows in (("campaigns", 40), ("lists", 60)):
            counts = con.sql(
                f"select business_unit_id, count(distinct id) from sfmc.{table} group by 1"
            )
            assert dict(counts.fetchall()) == dict.fromkeys(mids, rows)
        runs = con.sql("select distinct business_unit_id from sfmc._sfmc_runs").fetchall()
    assert sorted(runs) == [(mid,) for mid in mids]

    emulator.app.log.clear()
    sync_each_unit_at_once(emulator, env)

    # each unit's cursors survived the other's load: a token each, one campaigns page and
    # one List Retrieve a unit, nothing more
    requests = Counter((e.endpoint, e.mid) for e in emulator.app.log.entries)
    expected = {("POST /v2/token", None): 2}
    for mid in mids:
        expected |= {("GET /hub/v1/campaigns", mid): 1, ("SOAP Retrieve List", mid): 1}
    assert requests == expected
    with duckdb.connect(f"{tmp_path}/w.duckdb", read_only=True) as con:
        reads = con.sql(
            "select business_unit_id, collection, list(rows order by started) "
            "from sfmc._sfmc_runs group by 1, 2"
        ).fetchall()
    assert len(reads) == 4  # campaigns and lists of each unit, each read twice:
    assert all(again < first for _, _, (first, again) in reads)  # the second time, the overlap


def test_config_file_then_environment_then_flag(
    emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    emulator = emulator_factory(sizes=Sizes(campaigns=2, lists=3, journeys=1))
    config = tmp_path / "sfmc.toml"
    config.write_text(
        f'destination = "duckdb:///{tmp_path}/w.duckdb"\nschema = "from_file"\n'
        'collections = ["lists"]\n'
    )
    env = {**emulator.environment(), "DLT_DATA_DIR": str(tmp_path / "dlt")}
    runner = CliRunner()
    assert runner.invoke(main, ["sync", "--config", str(config)], env=env).exit_code == 0
    env["SFMC_SCHEMA"] = "from_env"
    assert runner.invoke(main, ["sync", "--config", str(config)], env=env).exit_code == 0
    args = ["sync", "--config", str(config), "--schema", "from_flag"]
    assert runner.invoke(main, args, env=env).exit_code == 0
    with duckdb.connect(f"{tmp_path}/w.duckdb", read_only=True) as con:
        found = con.sql(
            "select table_schema, table_name from information_schema.tables "
            "where table_name in ('lists', 'campaigns') and table_schema not like '%staging'"
        ).fetchall()
    assert sorted(found) == [("from_env", "lists"), ("from_file", "lists"), ("from_flag", "lists")]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(
            'schema = "x"\nwarehouse = "y"\n',
            "unknown key warehouse; valid keys:",
            id="unknown-key",
        ),
        pytest.param("account_id = 'abc'\n", "'abc' is not a valid integer", id="bad-value"),
        pytest.param("schema = \n", "not valid TOML", id="not-toml"),
    ],
)
def test_config_errors_exit_2_with_what_is_wrong(
    tmp_path: Path, content: str, message: str
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(content)
    result = CliRunner().invoke(main, ["sync", "--config", str(config)])
    assert result.exit_code == 2
    assert message in result.output


def test_a_missing_config_file_exits_2() -> None:
    result = CliRunner().invoke(main, ["sync", "--config", "/nonexistent/sfmc.toml"])
    assert result.exit_code == 2
    assert "No such file or directory" in result.output


def test_the_shipped_example_uses_only_known_keys() -> None:
    keys = set(tomllib.loads((ROOT / "example.toml").read_text()))
    assert keys <= {p.name for p in run.params}


def test_two_run_loops_on_one_destination_never_sync_at_once(
    held: Emulator, tmp_path: Path
) -> None:
    emulator = held
    env = cli_env(emulator, tmp_path)
    first = start_run(env, "--every", "1h", "--concurrency", "1")
    wait_inside(emulator, first)
    second = start_run(env, "--every", "1h")
    stderr = Stderr(second)
    stderr.wait_for("another sync of this destination and schema is running")
    stderr.wait_for("next sync in")
    second.send_signal(signal.SIGTERM)
    err = stderr.until_exit()
    first.send_signal(signal.SIGTERM)
    emulator.app.gate.open()
    first.communicate(timeout=SAFETY)
    assert "another sync of this destination and schema is running" in err
    assert "next sync in" in err
    assert second.returncode == 0
    assert emulator.app.log.token_requests == 1


def test_dlt_leaves_signals_to_the_command_line(tmp_path: Path) -> None:
    """A signal that arrives while dlt normalizes or loads must reach the run loop's Stopper:
    dlt's own interception would swallow it, and `run` would sleep on for its interval."""
    from sfmc_source.cli import configure_runtime
    from sfmc_source.sync import pipeline_for

    configure_runtime(debug=False)  # what each command that runs dlt does as it starts
    pipeline = pipeline_for(f"duckdb:///{tmp_path}/w.duckdb", "sfmc", str(tmp_path / "dlt"))
    assert pipeline.runtime_config.intercept_signals is False
