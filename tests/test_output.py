"""What the command line prints around the work: no library log lines unless --debug, usage
errors as one line, counts in words that agree with their number, variables in --help."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import click
import psycopg2
import pytest
from click.testing import CliRunner

from sfmc_source.cli import main
from sfmc_source.emulator import Emulator, Sizes
from sfmc_source.history import CollectionResult
from sfmc_source.report import Reporter

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
TINY = Sizes(campaigns=3, lists=4, journeys=2)


@pytest.fixture
def pg_schema() -> Iterator[str]:
    schema = f"sfmc_quiet_{uuid.uuid4().hex[:8]}"
    yield schema
    with psycopg2.connect(POSTGRES) as con, con.cursor() as cur:
        for name in (schema, f"{schema}_staging"):
            cur.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def sync_process(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sfmc_source", "sync", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_postgres_sync_prints_no_dlt_log_line(
    emulator_factory: Callable[..., Emulator], tmp_path: Path, pg_schema: str, log_format: str
) -> None:
    """dlt warns on every Postgres load of Arrow pages that it converts them; a user can do
    nothing about it, so it is not shown."""
    emulator = emulator_factory(sizes=TINY)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SFMC_", "DLT_", "RUNTIME"))}
    env.update(emulator.environment(), DLT_DATA_DIR=str(tmp_path / "dlt"))
    args = ["--destination", POSTGRES, "--schema", pg_schema, "--log-format", log_format]
    result = sync_process(env, *args, "--collections", "lists,sends,sent_events")
    assert result.returncode == 0, result.stderr
    assert "|dlt|" not in result.stderr and "WARNING" not in result.stderr
    if log_format == "json":
        assert result.stderr == ""
        assert all(json.loads(line)["run_id"] for line in result.stdout.splitlines())
    else:
        assert [line.split(" ", 2)[1] for line in result.stderr.splitlines()] == [
            "lists:",
            "sent_events:",
            "sends:",  # sends read what the event collections learn: they load after them
        ]


def test_with_debug_dlt_lines_show_with_the_secrets_blanked_out(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from sfmc_source.report import LibraryLog

    logger = logging.getLogger("sfmc_source_test_library")
    for debug in (False, True):
        logger.handlers = [LibraryLog(debug, ["s3cr3t-value", None])]
        logger.warning("the secret is s3cr3t-value")
    logger.handlers = []
    assert capsys.readouterr().err == "the secret is ***\n"


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["sync", "--no-such-option"], id="unknown-option"),
        pytest.param(["nosuchcommand"], id="unknown-command"),
        pytest.param(["run"], id="missing-every"),
        pytest.param(["sync", "--log-format", "xml"], id="bad-choice"),
        pytest.param(["sync", "--concurrency", "0"], id="out-of-range"),
        pytest.param(["emulator", "--scale", "huge"], id="bad-scale"),
        pytest.param(["--no-such-option"], id="group-option"),
        pytest.param(["sync", "--system-offset", "CST"], id="our-own"),
        pytest.param(["sync", "--collections", "contacts"], id="our-own-late"),
    ],
)
def test_every_usage_error_is_one_error_line_and_exit_2(args: list[str]) -> None:
    env = {"SFMC_CLIENT_ID": "a", "SFMC_CLIENT_SECRET": "b", "SFMC_SUBDOMAIN": "mcx"}
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 2
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ") and "Usage:" not in line


def test_counts_in_words_agree_with_their_number() -> None:
    out, err = io.StringIO(), io.StringIO()
    reporter = Reporter("run", verbose=True, out=out, err=err)
    reporter.progress("lists", 1, 1)
    one = CollectionResult("lists", rows=1, requests=1)
    one.finished = one.started
    reporter.finished(one)
    reporter.progress("sends", 2, 0)
    lines = [line.split(" ", 1)[1] for line in err.getvalue().splitlines()]
    assert lines == [
        "lists: 1 page, 1 row, 1 request so far",
        "lists: 1 row, 1 request, 0.0s, ok",
        "sends: 1 page, 2 rows, 0 requests so far",
    ]


def test_status_says_1_row_and_1_request(
    emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    emulator = emulator_factory(sizes=Sizes(campaigns=1, lists=2, journeys=1))
    env = {**emulator.environment(), "DLT_DATA_DIR": str(tmp_path / "dlt")}
    env["SFMC_DESTINATION"] = f"duckdb:///{tmp_path}/w.duckdb"
    runner = CliRunner()
    assert runner.invoke(main, ["sync", "--collections", "campaigns"], env=env).exit_code == 0
    result = runner.invoke(main, ["status"], env=env)
    assert result.exit_code == 0, result.output
    [line] = result.stdout.splitlines()
    assert line.split()[4:8] == ["1", "row", "1", "request"]


@pytest.mark.parametrize("name", ["sync", "run", "check", "status"])
def test_help_names_each_environment_variable(name: str) -> None:
    command = main.commands[name]
    variables = [p.envvar for p in command.params if isinstance(p, click.Option) and p.envvar]
    assert len(variables) >= 2
    result = CliRunner().invoke(main, [name, "--help"], terminal_width=200)
    assert result.exit_code == 0
    for variable in variables:
        assert f"env var: {variable}" in result.stdout, variable
