"""Run history in ``_sfmc_runs`` and ``sfmc-source status``, read back on a fresh machine."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import dlt
import duckdb
import pytest
from click.testing import CliRunner

from sfmc_source.cli import main
from sfmc_source.client import Credentials, RetryPolicy, SfmcClient
from sfmc_source.emulator import Emulator, Sizes
from sfmc_source.errors import ConfigError
from sfmc_source.sync import SyncResult, pipeline_for, run_sync

TINY = Sizes(campaigns=4, lists=5, journeys=2)
SEED = ("campaigns", "campaign_assets", "lists", "interactions", "goals")


def sync(emulator: Emulator, url: str, machine: Path) -> SyncResult:
    creds = Credentials(emulator.config.client_id, emulator.config.client_secret, emulator.auth_url)
    with SfmcClient(creds, retry=RetryPolicy(tries=2, base_delay=0.001), timeout=5) as client:
        return run_sync(client, pipeline_for(url, "sfmc", pipelines_dir=str(machine)), SEED)


def status(url: str, tmp_path: Path, *args: str) -> tuple[int, str]:
    env = {"DLT_DATA_DIR": str(tmp_path / "fresh-machine"), "SFMC_DESTINATION": url}
    result = CliRunner().invoke(main, ["status", "--schema", "sfmc", *args], env=env)
    return result.exit_code, result.output


def test_every_run_writes_one_row_per_collection(
    emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    emulator = emulator_factory(sizes=TINY)
    url = f"duckdb:///{tmp_path}/w.duckdb"
    first = sync(emulator, url, tmp_path / "a")
    second = sync(emulator, url, tmp_path / "a")
    with duckdb.connect(f"{tmp_path}/w.duckdb", read_only=True) as con:
        rows = con.sql(
            "select run_id, collection, outcome, rows, requests from sfmc._sfmc_runs "
            "order by finished, collection"
        ).fetchall()
        units = con.sql("select distinct business_unit_id from sfmc._sfmc_runs").fetchall()
    assert len(rows) == 10
    assert units == [(emulator.config.mids[0],)]
    assert {r[0] for r in rows} == {first.run_id, second.run_id}
    by_run = {(r[0], r[1]): r[2:] for r in rows}
    campaigns = next(c for c in first.collections if c.name == "campaigns")
    assert by_run[first.run_id, "campaigns"] == ("ok", campaigns.rows, campaigns.requests)


def test_status_shows_the_latest_run_and_its_failure_then_recovery(
    emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    emulator = emulator_factory(sizes=TINY)
    url = f"duckdb:///{tmp_path}/w.duckdb"
    assert sync(emulator, url, tmp_path / "a").exit_code == 0
    emulator.app.config.scopes = ("campaign_read", "list_and_subscribers_read")
    assert sync(emulator, url, tmp_path / "a").exit_code == 1

    code, output = status(url, tmp_path)
    assert code == 1
    assert "interactions     failed" in output
    assert "enable Automation > Journeys > Read" in output
    assert "campaigns        ok" in output

    emulator.app.config.scopes = ("campaign_read", "list_and_subscribers_read", "journeys_read")
    assert sync(emulator, url, tmp_path / "a").exit_code == 0
    code, output = status(url, tmp_path, "--json")
    latest = {run["collection"]: run for run in json.loads(output)}
    assert code == 0
    assert set(latest) == {"campaigns", "campaign_assets", "lists", "interactions", "goals"}
    assert all(run["outcome"] == "ok" for run in latest.values())
    assert latest["lists"]["cursor"] is not None and latest["goals"]["cursor"] is None


def test_status_before_any_sync(tmp_path: Path) -> None:
    duckdb.connect(f"{tmp_path}/empty.duckdb").close()
    code, output = status(f"duckdb:///{tmp_path}/empty.duckdb", tmp_path)
    assert code == 1
    assert "no sync has run" in output


def test_status_never_creates_a_warehouse(tmp_path: Path) -> None:
    code, output = status(f"duckdb:///{tmp_path}/missing.duckdb", tmp_path)
    assert code == 1
    assert output == f"error: no warehouse at {tmp_path}/missing.duckdb\n"
    assert not (tmp_path / "missing.duckdb").exists()
    assert not (tmp_path / "fresh-machine").exists()


def test_status_reads_a_read_only_warehouse_without_writing(
    emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    emulator = emulator_factory(sizes=TINY)
    url = f"duckdb:///{tmp_path}/w.duckdb"
    assert sync(emulator, url, tmp_path / "a").exit_code == 0
    warehouse = tmp_path / "w.duckdb"
    warehouse.chmod(0o444)
    tmp_path.chmod(0o555)  # no WAL or lock file can be made beside it either
    try:
        before = warehouse.stat().st_mtime_ns
        code, output = status(url, tmp_path / "a", "--schema", "SFMC")
    finally:
        tmp_path.chmod(0o755)
    assert code == 0, output
    assert "campaigns        ok" in output
    assert warehouse.stat().st_mtime_ns == before
    assert not (tmp_path / "a" / "fresh-machine").exists()


def test_a_duckdb_file_named_like_the_schema_is_refused_up_front(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"cannot hold schema .sfmc. in a file named sfmc\.duckdb"
    ):
        pipeline_for(f"duckdb:///{tmp_path}/sfmc.duckdb", "sfmc")


def test_each_destination_keeps_its_own_cursors(
    emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    emulator = emulator_factory(sizes=TINY)
    machine = tmp_path / "one-machine"
    sync(emulator, f"duckdb:///{tmp_path}/a.duckdb", machine)
    emulator.app.log.clear()
    second = sync(emulator, f"duckdb:///{tmp_path}/b.duckdb", machine)
    with duckdb.connect(f"{tmp_path}/b.duckdb", read_only=True) as con:
        assert con.sql("select count(*) from sfmc.lists").fetchall() == [(5,)]
    assert next(c for c in second.collections if c.name == "campaigns").rows == 4


def test_cursors_stored_under_an_earlier_pipeline_name_are_adopted(
    emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    """Before names followed the canonical destination, a pipeline was named after the URL as
    typed: the first run under the new name, on a fresh machine, stays incremental."""
    emulator = emulator_factory(sizes=TINY)
    url = f"duckdb:///{tmp_path}/w.duckdb"
    before = pipeline_for(url, "sfmc", pipelines_dir=str(tmp_path / "old"))
    old = dlt.pipeline(
        "sfmc_source_sfmc_0123456789",
        str(tmp_path / "old"),
        destination=before.destination,
        dataset_name="sfmc",
    )
    creds = Credentials(emulator.config.client_id, emulator.config.client_secret, emulator.auth_url)
    with SfmcClient(creds, retry=RetryPolicy(tries=2, base_delay=0.001), timeout=5) as client:
        assert run_sync(client, old, SEED).exit_code == 0
    emulator.app.log.clear()
    upgraded = sync(emulator, url, tmp_path / "new-machine")
    assert upgraded.exit_code == 0
    rows = {c.name: c.rows for c in upgraded.collections}
    assert rows["lists"] < 5 and rows["campaigns"] < 4  # only the overlap, not everything
    with duckdb.connect(f"{tmp_path}/w.duckdb", read_only=True) as con:
        names = con.sql("select distinct pipeline_name from sfmc._dlt_pipeline_state").fetchall()
    assert sorted(names) == sorted([("sfmc_source_sfmc_0123456789",), (before.pipeline_name,)])
