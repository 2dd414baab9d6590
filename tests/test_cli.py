"""``sfmc-source emulator`` as a user runs it: a process that prints its environment."""

from __future__ import annotations

import signal
import subprocess
import sys

import httpx
from click.testing import CliRunner

from sfmc_source.cli import main


def test_emulator_prints_its_environment_then_serves_until_sigterm() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sfmc_source",
            "emulator",
            "--port",
            "0",
            "--scale",
            "1",
            "--seed",
            "5",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline().strip() for _ in range(4)]
        env = dict(line.removeprefix("export ").split("=", 1) for line in lines)
        assert list(env) == [
            "SFMC_AUTH_URL",
            "SFMC_CLIENT_ID",
            "SFMC_CLIENT_SECRET",
            "SFMC_SUBDOMAIN",
        ]
        assert env["SFMC_AUTH_URL"].startswith("http://127.0.0.1:")
        response = httpx.post(
            f"{env['SFMC_AUTH_URL']}/v2/token",
            json={
                "grant_type": "client_credentials",
                "client_id": env["SFMC_CLIENT_ID"],
                "client_secret": env["SFMC_CLIENT_SECRET"],
            },
            timeout=10,
        )
        assert response.status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=10)
    assert process.returncode == 0
    assert "served 1 requests" in err


def test_bad_options_exit_2_naming_the_choices() -> None:
    result = CliRunner().invoke(main, ["emulator", "--scale", "huge"])
    assert result.exit_code == 2
    assert "small, medium, large" in result.output
    result = CliRunner().invoke(main, ["emulator", "--malformed", "campaigns"])
    assert result.exit_code == 2
    assert "RESOURCE:PAGE" in result.output


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("sfmc-source, version ")
