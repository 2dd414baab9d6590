"""``sfmc-source emulator`` as a user runs it: a process that prints its environment."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
from click.testing import CliRunner

from sfmc_source.cli import main

SAFETY = 600  # seconds; only so that a hung process fails the test instead of the suite


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
            timeout=SAFETY,
        )
        assert response.status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=SAFETY)
    assert process.returncode == 0
    assert "served 1 request\n" in err


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


def test_sync_usage_errors_exit_2_and_say_what_is_wrong(tmp_path: Path) -> None:
    env = {"SFMC_CLIENT_ID": "", "SFMC_CLIENT_SECRET": "", "SFMC_SUBDOMAIN": ""}
    result = CliRunner().invoke(
        main, ["sync", "--destination", f"duckdb:///{tmp_path}/x.duckdb"], env=env
    )
    assert result.exit_code == 2
    assert (
        "missing --client-id / SFMC_CLIENT_ID, --client-secret / SFMC_CLIENT_SECRET"
        in result.output
    )
    args = ["sync", "--client-id", "a", "--client-secret", "b", "--subdomain", "mcx"]
    for extra, message in [
        (
            ["--collections", "campaigns,contacts"],
            "unknown collection contacts; choose from campaigns",
        ),
        (["--system-offset", "CST"], "use ±HH:MM"),
        (["--destination", "mysql://x"], "use duckdb:///path, postgresql://"),
    ]:
        result = CliRunner().invoke(main, args + extra)
        assert result.exit_code == 2, result.output
        assert message in result.output


def test_system_offset_reads_naive_timestamps_in_that_zone() -> None:
    from datetime import UTC, datetime

    from sfmc_source.options import parse_offset
    from sfmc_source.timefmt import parse_timestamp

    assert parse_timestamp("2024-06-01T00:00:00", parse_offset("-07:00")) == datetime(
        2024, 6, 1, 7, tzinfo=UTC
    )
    assert parse_offset("+0530").utcoffset(None).total_seconds() == 5.5 * 3600  # type: ignore[union-attr]
