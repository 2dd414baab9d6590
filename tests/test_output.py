"""What the command line prints around the work: usage errors as one line, variables in
--help."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from sfmc_source.cli import main


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


@pytest.mark.parametrize("name", ["sync", "run", "check", "status"])
def test_help_names_each_environment_variable(name: str) -> None:
    command = main.commands[name]
    variables = [p.envvar for p in command.params if isinstance(p, click.Option) and p.envvar]
    assert len(variables) >= 2
    result = CliRunner().invoke(main, [name, "--help"], terminal_width=200)
    assert result.exit_code == 0
    for variable in variables:
        assert f"env var: {variable}" in result.stdout, variable
