"""Running unattended: the run loop, stops on signals, the destination lock, config files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from sfmc_source.cli import main, run
from sfmc_source.emulator import Emulator, Sizes
from sfmc_source.errors import ConfigError, SyncBusy
from sfmc_source.schedule import destination_lock, parse_duration

ROOT = Path(__file__).parents[1]
SIZES = Sizes(campaigns=40, assets_per_campaign=2, lists=60, journeys=5)


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
    with (
        destination_lock("test-lock"),
        pytest.raises(SyncBusy, match=f"pid {os.getpid()}"),
        destination_lock("test-lock"),
    ):
        pass
    with destination_lock("test-lock"):
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


def wait_for(condition: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def read_until(process: subprocess.Popen[str], text: str) -> str:
    """The process's stderr up to the first line holding ``text`` (all of it if it ends)."""
    assert process.stderr is not None
    seen = []
    for line in process.stderr:
        seen.append(line)
        if text in line:
            break
    assert text in "".join(seen), "".join(seen)
    return "".join(seen)


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
    emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    emulator = emulator_factory(sizes=SIZES)
    emulator.app.faults.latency_ms = 40
    env = cli_env(emulator, tmp_path)
    process = start_run(env, "--every", "2s")
    wait_for(lambda: emulator.app.log.count("GET /hub/v1/campaigns/{id}/assets") >= 5)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    assert "SIGTERM: stopping after the collection being loaded" in err
    assert "lists: 0 rows, 0 requests, 0.0s, skipped (interrupted)" in err
    assert "interrupted: not synced this run: lists, interactions, goals," in err
    assert emulator.app.log.count("SOAP Retrieve List") == 0
    counts = table_counts(tmp_path)
    assert counts["campaigns"] == (40, 40)
    assert "lists" not in counts
    with duckdb.connect(f"{tmp_path}/w.duckdb", read_only=True) as con:
        outcomes = dict(con.sql("select collection, outcome from sfmc._sfmc_runs").fetchall())
    assert outcomes["campaigns"] == "ok" and outcomes["lists"] == "skipped"

    emulator.app.faults.latency_ms = 0
    emulator.app.mutate.update("campaigns", "1003", name="changed while stopped")
    process = start_run(env, "--every", "1h")
    waited = read_until(process, "next sync in")
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, waited + err  # stopped between syncs: nothing cut short
    counts = table_counts(tmp_path)
    versions = sum(len(v) for v in emulator.app.unit().journeys.values())
    assert counts["campaigns"] == (40, 40) and counts["lists"] == (60, 60)
    assert counts["interactions"] == (versions, versions)
    assert counts["campaign_assets"][0] == counts["campaign_assets"][1]
    with duckdb.connect(f"{tmp_path}/w.duckdb", read_only=True) as con:
        assert con.sql("select name from sfmc.campaigns where id = '1003'").fetchall() == [
            ("changed while stopped",)
        ]


def test_a_second_sync_of_the_same_destination_is_refused_while_one_runs(
    emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    emulator = emulator_factory(sizes=SIZES)
    emulator.app.faults.latency_ms = 40
    env = cli_env(emulator, tmp_path)
    first = start_run(env, "--every", "1h", "--concurrency", "1")
    wait_for(lambda: emulator.app.log.count("GET /hub/v1/campaigns/{id}/assets") >= 1)
    second = subprocess.run(
        [sys.executable, "-m", "sfmc_source", "sync"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    first.send_signal(signal.SIGTERM)
    first.communicate(timeout=60)
    assert second.returncode == 1
    assert "another sync of this destination and schema is running" in second.stderr
    assert emulator.app.log.token_requests == 1


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
    emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    emulator = emulator_factory(sizes=SIZES)
    emulator.app.faults.latency_ms = 40
    env = cli_env(emulator, tmp_path)
    first = start_run(env, "--every", "1h", "--concurrency", "1")
    wait_for(lambda: emulator.app.log.count("GET /hub/v1/campaigns/{id}/assets") >= 1)
    second = start_run(env, "--every", "1h")
    try:
        _, err = second.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        second.send_signal(signal.SIGTERM)
        _, err = second.communicate(timeout=30)
    first.send_signal(signal.SIGTERM)
    first.communicate(timeout=60)
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
