"""What the command line prints around the work: usage errors as one line, counts in words
that agree with their number, variables in --help."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from sfmc_source.cli import main
from sfmc_source.emulator import Emulator, Sizes
from sfmc_source.history import CollectionResult
from sfmc_source.report import Reporter

TINY = Sizes(campaigns=3, lists=4, journeys=2)


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
