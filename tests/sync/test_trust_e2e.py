"""What a newcomer's first hour must not break: one warehouse however it is spelled, one sync
of it at a time, an interrupted sync that says so, and no password anywhere."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import duckdb
import psycopg2
import pytest
import test_sync_e2e as e2e
from dlt.common.versioned_state import decompress_state
from test_sync_e2e import CLI, Cli, Destination

from sfmc_source.emulator import Emulator, Sizes
from tests.conftest import free_port

cli = e2e.cli
destination_factory = e2e.destination_factory
destination = e2e.destination
client_factory = e2e.client_factory
syncs = e2e.syncs

Factory = Callable[..., Emulator]
TINY = Sizes(campaigns=3, assets_per_campaign=1, lists=4, journeys=1)
SECRET = "Hunter2Secret"
BUSY = "another sync of this destination and schema is running"


def run_cli(
    *args: str, env: dict[str, str], cwd: Path, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def start_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [CLI, *args], env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def lists_in(path: Path, schema: str = "sfmc") -> int:
    with duckdb.connect(str(path), read_only=True) as con:
        return int(con.sql(f"select count(*) from {schema}.lists").fetchall()[0][0])


@pytest.fixture
def held(emulator_factory: Factory) -> Iterator[Emulator]:
    """An emulator whose API requests wait at a closed gate until the test opens it."""
    emulator = emulator_factory(sizes=TINY)
    emulator.app.gate.close()
    yield emulator
    emulator.app.gate.open()


# ---- 1. a relative DuckDB path follows the working directory ------------------------------


def test_a_relative_duckdb_path_is_resolved_in_each_working_directory(
    emulator_factory: Factory, cli: Cli, tmp_path: Path
) -> None:
    emulator = emulator_factory(sizes=TINY)
    dest = Destination("duckdb", "duckdb:///w.duckdb", "sfmc")
    env = cli.env(emulator, dest, "a")
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    assert run_cli("sync", "--collections", "lists", env=env, cwd=first).returncode == 0
    emulator.app.log.clear()
    again = run_cli("sync", "--collections", "lists", env=env, cwd=second)
    assert again.returncode == 0, again.stderr
    # the same HOME, another directory: a first sync of the file there, the first untouched
    assert lists_in(second / "w.duckdb") == 4
    assert lists_in(first / "w.duckdb") == 4
    assert re.search(r"^lists +4 ", again.stdout, re.M), again.stdout
    assert emulator.app.log.count("SOAP Retrieve List") >= 1


def test_the_default_destination_is_in_the_working_directory(
    emulator_factory: Factory, cli: Cli, tmp_path: Path
) -> None:
    emulator = emulator_factory(sizes=TINY)
    env = cli.env(emulator, Destination("duckdb", "", "sfmc"), "a")
    env.pop("SFMC_DESTINATION")
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        done = run_cli("sync", "--collections", "lists", env=env, cwd=tmp_path / folder)
        assert done.returncode == 0, done.stderr
        assert lists_in(tmp_path / folder / "sfmc_warehouse.duckdb") == 4


# ---- 2. one lock per warehouse and schema, however it is spelled ----------------------------


@pytest.mark.parametrize(
    "second",
    ["duckdb:///k.duckdb", "duckdb:///{abs}/./k.duckdb", "duckdb:///{abs}/../data/k.duckdb"],
    ids=["relative", "dot", "dotdot"],
)
def test_a_second_spelling_of_one_duckdb_file_is_refused_while_a_sync_runs(
    held: Emulator, cli: Cli, tmp_path: Path, second: str
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    dest = Destination("duckdb", f"duckdb:///{data}/k.duckdb", "sfmc")
    env = cli.env(held, dest, "a")
    running = start_cli("sync", env=env, cwd=data)
    held.app.gate.wait_until_holding(alive=lambda: running.poll() is None)
    other = {**env, "SFMC_DESTINATION": second.format(abs=data)}
    refused = run_cli("sync", env=other, cwd=data)
    held.app.gate.open()
    _, err = running.communicate(timeout=300)
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines()[-1].startswith(f"error: {BUSY}")
    assert "Traceback" not in refused.stderr and refused.stdout == ""
    assert running.returncode == 0, err
    assert held.app.log.token_requests == 1


def test_a_sync_from_another_machine_into_the_same_postgres_schema_is_refused(
    held: Emulator, cli: Cli, destination_factory: Callable[[str], Destination], tmp_path: Path
) -> None:
    dest = destination_factory("postgres")
    env = cli.env(held, dest, "a", SFMC_SCHEMA=dest.schema)
    running = start_cli("sync", env=env, cwd=cli.cwd("a"))
    held.app.gate.wait_until_holding(alive=lambda: running.poll() is None)
    # another machine: its own home, temporary directory and spelling of the URL
    other_tmp = tmp_path / "other-tmp"
    other_tmp.mkdir()
    url = dest.url.replace("127.0.0.1:5432", "localhost")
    other = cli.env(held, dest, "b", SFMC_SCHEMA=dest.schema, TMPDIR=str(other_tmp))
    refused = run_cli("sync", "--destination", url, env=other, cwd=cli.cwd("b"))
    held.app.gate.open()
    _, err = running.communicate(timeout=300)
    assert refused.returncode == 1, refused.stderr
    assert f"error: {BUSY} (from another machine or process)" in refused.stderr
    assert running.returncode == 0, err
    assert dest.query("select count(*), count(distinct id) from {schema}.lists") == [(4, 4)]


# ---- 3. an interrupted sync says so ------------------------------------------------------


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_sync_exits_non_zero_and_names_what_it_skipped(
    held: Emulator, cli: Cli, tmp_path: Path, signum: int, code: int
) -> None:
    dest = Destination("duckdb", f"duckdb:///{tmp_path}/w.duckdb", "sfmc")
    env = cli.env(held, dest, "a")
    held.app.gate.close(rest=False)  # SOAP requests wait; REST collections are read
    # enough slots that the held SOAP requests (one an event window: 20 days, one window)
    # leave some to REST
    args = ("-v", "--concurrency", "30", "--backfill-days", "20")
    running = start_cli("sync", *args, env=env, cwd=cli.cwd("a"))
    assert running.stderr is not None
    _wait_for_line(running.stderr, "campaign_assets: read")
    held.app.gate.wait_until_holding(alive=lambda: running.poll() is None)  # lists is held
    running.send_signal(signum)
    _wait_for_line(running.stderr, "stopping: no more requests")  # the signal was heard
    held.app.gate.open()
    out, err = running.communicate(timeout=300)
    assert running.returncode == code, err
    assert re.search(r"^campaigns +3 .* ok$", out, re.M), out
    assert re.search(r"^lists +0 +1 .* skipped \(interrupted\)$", out, re.M), out
    assert err.strip().splitlines()[-1].startswith("interrupted: not synced this run: lists,")
    with duckdb.connect(f"{tmp_path}/w.duckdb", read_only=True) as con:
        runs = dict(con.sql("select collection, outcome from sfmc._sfmc_runs").fetchall())
    assert runs["campaigns"] == "ok" and runs["lists"] == runs["sends"] == "skipped"
    status = run_cli("status", env=env, cwd=cli.cwd("a"))
    assert re.search(r"^lists +skipped ", status.stdout, re.M) and status.returncode == 1

    again = run_cli("sync", env=env, cwd=cli.cwd("a"))  # the campaigns cursor was kept
    assert again.returncode == 0, again.stderr
    assert re.search(r"^campaigns +[0-2] +1 ", again.stdout, re.M), again.stdout  # not all 3
    assert lists_in(tmp_path / "w.duckdb") == 4


def _wait_for_line(stream: IO[str], text: str) -> None:
    """Until the process writes a line with ``text``; fails if it ends first."""
    for line in stream:
        if text in line:
            return
    raise AssertionError(f"the process ended without writing {text!r}")


def test_a_second_signal_ends_the_sync_at_once_with_one_line(
    held: Emulator, cli: Cli, tmp_path: Path
) -> None:
    dest = Destination("duckdb", f"duckdb:///{tmp_path}/w.duckdb", "sfmc")
    running = start_cli("sync", env=cli.env(held, dest, "a"), cwd=cli.cwd("a"))
    held.app.gate.wait_until_holding(alive=lambda: running.poll() is None)
    running.send_signal(signal.SIGINT)
    assert running.stderr is not None
    first = running.stderr.readline()
    running.send_signal(signal.SIGINT)
    out, err = running.communicate(timeout=300)
    assert first == "SIGINT: stopping: no more requests; what was read loads\n"
    assert err == "SIGINT again: stopping now\n"
    assert running.returncode == 130 and out == ""
    held.app.gate.open()


# ---- 4. no password from a destination URL anywhere --------------------------------------


def with_password(url: str) -> str:
    return url.replace("postgres@", f"postgres:{SECRET}@", 1)


def files_holding(folder: Path, text: str) -> list[Path]:
    return [
        path for path in folder.rglob("*") if path.is_file() and text.encode() in path.read_bytes()
    ]


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_destination_password_never_shows(
    emulator_factory: Factory,
    cli: Cli,
    destination_factory: Callable[[str], Destination],
    log_format: str,
) -> None:
    emulator = emulator_factory(sizes=TINY)
    dest = destination_factory("postgres")
    url = with_password(dest.url)
    env = cli.env(emulator, dest, "a", SFMC_DESTINATION=url, SFMC_SCHEMA=dest.schema)
    emulator.app.config.scopes = ("campaign_read", "journeys_read")  # lists fail: an error row
    args = ("--log-format", log_format, "-v", "--debug")
    outputs = [run_cli("sync", *args, env=env, cwd=cli.cwd("a"))]
    assert outputs[0].returncode == 1, outputs[0].stderr
    outputs += [run_cli("status", *a, env=env, cwd=cli.cwd("a")) for a in ((), ("--json",))]
    env["SFMC_DESTINATION"] = url.replace(":5432/", f":{free_port()}/")  # nothing listens
    failed = [run_cli(*a, env=env, cwd=cli.cwd("a")) for a in (("sync", "--debug"), ("status",))]
    outputs += failed
    for done in outputs:
        assert SECRET not in done.stdout + done.stderr, done.args
    assert all(done.returncode == 1 for done in failed)
    assert "postgresql://postgres:***@127.0.0.1" in failed[0].stderr + failed[1].stderr
    home = cli.tmp_path / "home-a"
    assert files_holding(home, SECRET) == []
    stored = dest.query("select string_agg(coalesce(error, ''), ' ') from {schema}._sfmc_runs")[0][
        0
    ]
    assert "enable Contacts" in stored and SECRET not in stored
    states = dest.query("select state from {schema}._dlt_pipeline_state")
    assert states and all(SECRET not in json.dumps(decompress_state(s)) for (s,) in states)


# ---- 8. destinations and schemas are validated before any work ---------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--schema", ""], "error: --schema '': use lowercase letters, digits and _"),
        (["--schema", "Bad-Name"], "error: --schema 'Bad-Name': use lowercase letters"),
        (["--schema", "sfmc;drop table x"], "error: --schema 'sfmc;drop table x': use"),
        (["--schema", "s" * 56], "not starting with a digit, at most 55 characters"),
        (
            ["--destination", "duckdb:///{tmp}/nonexistent/dir/x.duckdb"],
            "error: --destination duckdb:///{tmp}/nonexistent/dir/x.duckdb: directory "
            "{tmp}/nonexistent/dir does not exist",
        ),
        (
            ["--destination", "bigquery"],
            "error: --destination bigquery: dlt has no configuration for it; set "
            "DESTINATION__BIGQUERY__CREDENTIALS__PROJECT_ID",
        ),
    ],
    ids=["empty", "hyphen", "injection", "too-long", "no-directory", "no-credentials"],
)
def test_bad_destinations_and_schemas_are_one_line_and_exit_2(
    emulator_factory: Factory, cli: Cli, tmp_path: Path, args: list[str], message: str
) -> None:
    emulator = emulator_factory(sizes=TINY)
    env = cli.env(emulator, Destination("duckdb", f"duckdb:///{tmp_path}/w.duckdb", "sfmc"), "a")
    args = [a.format(tmp=tmp_path) for a in args]
    done = run_cli("sync", *args, env=env, cwd=cli.cwd("a"))
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert message.format(tmp=tmp_path) in done.stderr
    assert emulator.app.log.entries == []  # nothing was asked of SFMC


def test_a_schema_is_one_name_in_any_case(
    emulator_factory: Factory, cli: Cli, tmp_path: Path
) -> None:
    emulator = emulator_factory(sizes=TINY)
    env = cli.env(emulator, Destination("duckdb", f"duckdb:///{tmp_path}/w.duckdb", "sfmc"), "a")
    synced = run_cli("sync", "--schema", "Prod", "--collections", "lists", env=env, cwd=tmp_path)
    assert synced.returncode == 0, synced.stderr
    assert lists_in(tmp_path / "w.duckdb", "prod") == 4
    status = run_cli("status", "--schema", "Prod", env=env, cwd=tmp_path)
    assert status.returncode == 0, status.stdout + status.stderr
    assert re.search(r"^lists +ok ", status.stdout, re.M)


# ---- 2. a re-run converges to one row per key ---------------------------------------------


def write(dest: Destination, sql: str) -> None:
    sql = sql.replace("{schema}", dest.schema)
    if dest.kind == "duckdb":
        assert dest.path is not None
        with duckdb.connect(str(dest.path)) as con:
            con.execute(sql)
        return
    con = psycopg2.connect(e2e.POSTGRES_URL)
    try:
        with con, con.cursor() as cur:
            cur.execute(sql)
    finally:
        con.close()


def doubled(dest: Destination, table: str) -> str:
    """SQL that adds a copy of every row of ``table`` (a new ``_dlt_id``, which is unique)."""
    found = dest.query(
        "SELECT column_name FROM information_schema.columns "
        f"WHERE table_schema = '{{schema}}' AND table_name = '{table}'"
    )
    columns = [f'"{name}"' for (name,) in found]
    copied = [c if c != '"_dlt_id"' else "_dlt_id || '-copy'" for c in columns]
    return (
        f"INSERT INTO {{schema}}.{table} ({', '.join(columns)}) "
        f"SELECT {', '.join(copied)} FROM {{schema}}.{table}"
    )


def test_a_full_refresh_converges_a_warehouse_with_doubled_keys(
    emulator_factory: Factory, destination: Destination, syncs: e2e.Syncs
) -> None:
    """Whatever doubled the rows (two syncs of an older version at once), a re-read merges
    them back to one row per key, equal to the source."""
    emulator = emulator_factory(sizes=TINY)
    assert syncs.run(emulator, destination, collections=("lists", "campaigns")).exit_code == 0
    for table in ("lists", "campaigns"):
        write(destination, doubled(destination, table))
        assert e2e.duplicate_keys(destination, table)
    again = syncs.run(emulator, destination, collections=("lists", "campaigns"), full_refresh=True)
    assert again.exit_code == 0
    for table in ("lists", "campaigns"):
        assert e2e.duplicate_keys(destination, table) == []
    e2e.assert_warehouse_equals(destination, e2e.snapshot(emulator, ("lists", "campaigns")))
