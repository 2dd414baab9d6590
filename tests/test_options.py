"""The command line's settings before any work: which value wins, which are refused, which
keys of a config file each command takes, and an auth host that cannot be reached."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from sfmc_source.cli import main, sync
from sfmc_source.emulator import Emulator, Sizes
from sfmc_source.errors import ConfigError
from tests.conftest import cli, free_port

ROOT = Path(__file__).parents[1]
TINY = Sizes(campaigns=3, lists=4, journeys=2)
NO_CREDENTIALS = {"SFMC_CLIENT_ID": "", "SFMC_CLIENT_SECRET": "", "SFMC_SUBDOMAIN": ""}


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SFMC_", "DLT_"))}
    env.update(extra)
    return env


def emulator_env(emulator: Emulator, tmp_path: Path, **extra: str) -> dict[str, str]:
    return clean_env(
        **emulator.environment(),
        DLT_DATA_DIR=str(tmp_path / "dlt"),
        SFMC_DESTINATION=f"duckdb:///{tmp_path}/w.duckdb",
        **extra,
    )


def units_loaded(tmp_path: Path) -> set[int]:
    with duckdb.connect(f"{tmp_path}/w.duckdb", read_only=True) as con:
        rows = con.sql("select distinct business_unit_id from sfmc.lists").fetchall()
    return {row[0] for row in rows}


# ---- precedence ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env_ids", "file_ids", "flags", "expected"),
    [
        pytest.param(
            {"SFMC_ACCOUNT_ID": "0"}, None, ["--account-ids", "1,2"], {1, 2}, id="flag-ids"
        ),
        pytest.param({"SFMC_ACCOUNT_IDS": "1,2"}, None, ["--account-id", "0"], {0}, id="flag-id"),
        pytest.param({"SFMC_ACCOUNT_ID": "2"}, "account_ids = [0, 1]", [], {2}, id="env-over-file"),
        pytest.param({}, "account_id = 1", ["--account-ids", "0,2"], {0, 2}, id="flag-over-file"),
    ],
)
def test_a_flag_beats_a_related_variable_which_beats_the_file(
    emulator_factory: Callable[..., Emulator],
    tmp_path: Path,
    env_ids: dict[str, str],
    file_ids: str | None,
    flags: list[str],
    expected: set[int],
) -> None:
    """Indexes into the emulator's MIDs stand for the business units."""
    emulator = emulator_factory(sizes=TINY, business_units=3)
    mids = emulator.config.mids

    def units(text: str) -> str:
        return re.sub(r"\d+", lambda m: str(mids[int(m[0])]), text)

    env = emulator_env(emulator, tmp_path, **{k: units(v) for k, v in env_ids.items()})
    args = ["sync", "--collections", "lists", *(units(f) for f in flags)]
    if file_ids:
        (tmp_path / "sfmc.toml").write_text(units(file_ids) + "\n")
        args += ["--config", str(tmp_path / "sfmc.toml")]
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 0, result.output
    assert units_loaded(tmp_path) == {mids[i] for i in expected}


@pytest.mark.parametrize(
    ("env", "args", "level"),
    [
        pytest.param(
            {}, ["--account-id", "5", "--account-ids", "6"], "both given as flags", id="flags"
        ),
        pytest.param(
            {"SFMC_ACCOUNT_ID": "5", "SFMC_ACCOUNT_IDS": "6"},
            [],
            "both set in the environment",
            id="environment",
        ),
    ],
)
def test_both_account_options_at_one_level_are_a_usage_error(
    env: dict[str, str], args: list[str], level: str
) -> None:
    env = {**NO_CREDENTIALS, "SFMC_CLIENT_ID": "a", "SFMC_CLIENT_SECRET": "b", **env}
    result = CliRunner().invoke(main, ["sync", "--subdomain", "mcx", *args], env=env)
    assert result.exit_code == 2
    assert result.stderr == f"error: use --account-ids or --account-id, not both ({level})\n"


@pytest.mark.parametrize(
    ("env", "args", "auth_url"),
    [
        pytest.param(
            {"SFMC_AUTH_URL": "http://127.0.0.1:9/"},
            ["--subdomain", "mc563885gzs27c5t9-63k636ttgm"],
            "https://mc563885gzs27c5t9-63k636ttgm.auth.marketingcloudapis.com",
            id="flag-subdomain-over-env-url",
        ),
        pytest.param(
            {"SFMC_SUBDOMAIN": "mc563885gzs27c5t9-63k636ttgm"},
            ["--auth-url", "http://127.0.0.1:9/"],
            "http://127.0.0.1:9/",
            id="flag-url-over-env-subdomain",
        ),
        pytest.param(
            {"SFMC_SUBDOMAIN": "mc563885gzs27c5t9-63k636ttgm", "SFMC_AUTH_URL": "http://h/"},
            [],
            "http://h/",
            id="url-over-subdomain-at-one-level",
        ),
    ],
)
def test_the_auth_url_and_the_subdomain_follow_the_same_order(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], args: list[str], auth_url: str
) -> None:
    """Parsed by click as the command line is (no request is made: the subdomain's host is
    not a loopback one)."""
    from sfmc_source.client import credentials_from
    from sfmc_source.options import settled

    for name in ("SFMC_AUTH_URL", "SFMC_SUBDOMAIN", "SFMC_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    ctx = sync.make_context("sync", ["--client-id", "a", "--client-secret", "b", *args])
    settings = settled(ctx, dict(ctx.params))
    keys = ("client_id", "client_secret", "subdomain", "account_id", "auth_url")
    credentials = credentials_from(**{k: settings[k] for k in keys})
    assert credentials.auth_url == auth_url


# ---- intervals ----------------------------------------------------------------------------


@pytest.mark.parametrize("every", ["0s", "0m", "0h0m", "0", "-5m"])
def test_intervals_of_zero_or_less_are_refused_before_any_sync(
    emulator_factory: Callable[..., Emulator], tmp_path: Path, every: str
) -> None:
    emulator = emulator_factory(sizes=TINY)
    env = emulator_env(emulator, tmp_path)
    try:
        result = cli(env, "run", "--every", every, "--collections", "lists", timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail(f"run --every {every} kept syncing")
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: --every {every!r}: ")
    assert "use a duration such as 3h" in line or "the interval must be more than zero" in line
    assert emulator.app.log.entries == []


def test_an_interval_under_15_minutes_warns_about_the_quota_and_runs(
    emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    emulator = emulator_factory(sizes=TINY)
    env = emulator_env(emulator, tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "sfmc_source", "run", "--every", "10m", "--collections", "lists"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    said = ""
    for line in process.stderr:  # the first sync ran: the loop now waits for the next
        said += line
        if line.startswith("next sync in"):
            break
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=600)
    err = said + err
    assert process.returncode == 0, err  # stopped between syncs
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1
    assert "--every 10m" in warnings[0] and "yearly API quota" in warnings[0]
    assert units_loaded(tmp_path)


def test_the_quota_warning_starts_below_15_minutes() -> None:
    from sfmc_source.options import quota_warning

    assert quota_warning("15m", 900) is None
    assert quota_warning("14m59s", 899)


# ---- config files -------------------------------------------------------------------------


def test_the_shipped_example_works_with_every_command_the_readme_shows(
    emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    """example.toml names a tenant and a client id; the environment points them at the
    emulator (it beats the file) and the destination at a scratch DuckDB file."""
    emulator = emulator_factory(sizes=TINY)
    env = emulator_env(emulator, tmp_path)
    example = str(ROOT / "example.toml")
    synced = cli(env, "sync", "--config", example)
    assert synced.returncode == 0, synced.stderr
    assert "sent_events" in synced.stdout and "campaigns" in synced.stdout
    checked = cli(env, "check", "--config", example)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    status = cli({**env, "SFMC_CONFIG": example}, "status", "--json")
    assert status.returncode == 0, status.stderr
    collections = tomllib.loads((ROOT / "example.toml").read_text())["collections"]
    assert {run["collection"] for run in json.loads(status.stdout)} == set(collections)
    process = subprocess.Popen(
        [sys.executable, "-m", "sfmc_source", "run", "--config", example],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    line = ""
    for line in process.stderr:
        if line.startswith(("next sync in", "error:")):
            break
    process.send_signal(signal.SIGTERM)
    rest = process.communicate(timeout=60)[1]
    assert line.startswith("next sync in 3h"), line + rest  # every = "3h", jitter = "5m"
    assert process.returncode == 0


def test_status_reads_the_config_file_named_by_sfmc_config(
    emulator_factory: Callable[..., Emulator], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # where the default destination would be
    emulator = emulator_factory(sizes=TINY)
    config = tmp_path / "sfmc.toml"
    config.write_text(
        f'destination = "duckdb:///{tmp_path}/w.duckdb"\nschema = "mine"\n'
        'collections = ["lists"]\nevery = "3h"\n'
    )
    env = {**emulator.environment(), "DLT_DATA_DIR": str(tmp_path / "dlt")}
    env["SFMC_CONFIG"] = str(config)
    runner = CliRunner()
    assert runner.invoke(main, ["sync"], env=env).exit_code == 0
    result = runner.invoke(main, ["status"], env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("lists ")


@pytest.mark.parametrize("command", ["sync", "run", "check", "status"])
def test_every_command_refuses_an_unknown_key(tmp_path: Path, command: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('schema = "x"\nevery = "3h"\nwarehouse = "y"\n')
    result = CliRunner().invoke(main, [command, "--config", str(config)], env=NO_CREDENTIALS)
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: --config {config}: unknown key warehouse; valid keys: ")


def test_a_run_table_is_not_a_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[run]\nevery = "3h"\n')
    result = CliRunner().invoke(main, ["sync", "--config", str(config)], env=NO_CREDENTIALS)
    assert result.exit_code == 2
    assert "unknown key run" in result.stderr


# ---- values refused before any work -------------------------------------------------------


@pytest.mark.parametrize(
    ("subdomain", "hint"),
    [
        pytest.param(
            "https://mc563885gzs27c5t9-63k636ttgm.auth.marketingcloudapis.com/",
            " (here: mc563885gzs27c5t9-63k636ttgm)",
            id="url",
        ),
        pytest.param("mc563885gzs27c5t9 63k636ttgm", "", id="space"),
    ],
)
def test_a_subdomain_that_is_not_one_is_refused_with_a_hint(
    tmp_path: Path, subdomain: str, hint: str
) -> None:
    """The auth URL is a refused port on 127.0.0.1, so nothing leaves the machine."""
    env = clean_env(SFMC_CLIENT_ID="a", SFMC_CLIENT_SECRET="b", DLT_DATA_DIR=str(tmp_path))
    args = ["sync", "--subdomain", subdomain, "--auth-url", f"http://127.0.0.1:{free_port()}"]
    result = cli(env, *args, "--destination", f"duckdb:///{tmp_path}/w.duckdb")
    assert result.returncode == 2
    assert result.stderr == (
        f"error: --subdomain {subdomain!r}: use the 28-character string starting with mc, "
        f"not a URL{hint}; a whole auth URL goes in --auth-url\n"
    )


@pytest.mark.parametrize("offset", ["+25:00", "+14:30", "-06:60", "CST"])
def test_a_system_offset_out_of_range_is_a_usage_error(offset: str) -> None:
    args = ["sync", "--system-offset", offset]
    result = CliRunner().invoke(main, args, env={**NO_CREDENTIALS, "SFMC_CLIENT_ID": "a"})
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: --system-offset {offset!r}: use ±HH:MM within ±14:00, "
        "e.g. -06:00 (SFMC system time)\n"
    )


@pytest.mark.parametrize(("text", "hours"), [("+14:00", 14), ("-12:00", -12), ("+0530", 5.5)])
def test_every_offset_in_use_is_accepted(text: str, hours: float) -> None:
    from sfmc_source.options import parse_offset

    assert parse_offset(text).utcoffset(None).total_seconds() == hours * 3600  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "mids"), [("512345678, 512345679", [512345678, 512345679]), ("5,5,6", [5, 6])]
)
def test_account_ids(text: str, mids: list[int]) -> None:
    from sfmc_source.options import parse_account_ids

    assert parse_account_ids(text) == mids


@pytest.mark.parametrize("text", ["1,x", "1,,2", "0"])
def test_bad_account_ids_are_usage_errors(text: str) -> None:
    from sfmc_source.options import parse_account_ids

    with pytest.raises(ConfigError, match="use MIDs"):
        parse_account_ids(text)
