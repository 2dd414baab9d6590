"""The deployment recipes in recipes/: each is built, and the Airflow and Dagster ones run a
real sync against the emulator (the Airflow DAG in Airflow's own test mode, `airflow dags
test`, one task per business unit)."""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import duckdb
import pytest

from sfmc_source import workers
from sfmc_source.destination import Warehouse
from sfmc_source.emulator import Emulator, EmulatorConfig, Sizes
from sfmc_source.errors import SyncBusy
from sfmc_source.schedule import BUSY, units_lock

RECIPES = Path(__file__).parents[1] / "recipes"
TINY = Sizes(campaigns=3, lists=4, journeys=2)
MID = EmulatorConfig().mids[0]  # the emulated package's own business unit
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
CAMPAIGN_PAGES = "GET /hub/v1/campaigns"
ASSETS = "GET /hub/v1/campaigns/{id}/assets"
LIST_RETRIEVES = "SOAP Retrieve List"
DESCRIBES = "SOAP Describe"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"recipe_{name}", RECIPES / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def sfmc_env(
    emulator_factory: Callable[..., Emulator], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    emulator = emulator_factory(sizes=TINY)
    for name, value in emulator.environment().items():
        monkeypatch.setenv(name, value)
    warehouse = tmp_path / "w.duckdb"
    monkeypatch.setenv("SFMC_DESTINATION", f"duckdb:///{warehouse}")
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    return warehouse


@pytest.fixture
def pages_read_by_workers(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every SOAP page, however small, read by a worker process (``workers.PageParser``), none
    by this process: the list of the pages workers read."""
    read: list[int] = []
    ask, init = workers._Worker.ask, workers.PageParser.__init__

    def counted(worker: workers._Worker, request: tuple[bytes, list[str], str | None]) -> Any:
        answer = ask(worker, request)
        if answer is not None:
            read.append(len(request[0]))
        return answer

    def workers_only(parser: workers.PageParser, count: int) -> None:
        init(parser, count)
        parser._free.get_nowait()  # this process's reader: each page waits for a worker
        parser._free.get = functools.partial(parser._free.get, timeout=60)  # type: ignore[method-assign]

    monkeypatch.setattr(workers, "ELSEWHERE_ABOVE", 0)
    monkeypatch.setattr(workers._Worker, "ask", counted)
    monkeypatch.setattr(workers.PageParser, "__init__", workers_only)
    return read


def lists_in(warehouse: Path) -> int:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return int(con.sql("select count(*) from sfmc.lists").fetchall()[0][0])


def test_the_airflow_dag_maps_one_sync_task_over_the_business_units() -> None:
    recipe = load("airflow_dag")
    dag = recipe.sfmc_dag
    assert dag.dag_id == "sfmc_source"
    assert dag.max_active_runs == 1 and dag.catchup is False
    assert dag.task_ids == ["business_units", "sync_unit"]
    sync_unit = dag.get_task("sync_unit")
    assert dag.get_task("business_units") in sync_unit.upstream_list
    assert sync_unit.partial_kwargs["max_active_tis_per_dag"] == recipe.UNITS_AT_ONCE
    assert sync_unit.partial_kwargs["retries"] == 2


def test_without_account_ids_the_airflow_dag_syncs_the_packages_own_unit(
    sfmc_env: Path, monkeypatch: pytest.MonkeyPatch, pages_read_by_workers: list[int]
) -> None:
    monkeypatch.delenv("SFMC_ACCOUNT_IDS", raising=False)
    dag = load("airflow_dag").sfmc_dag
    assert dag.get_task("business_units").python_callable() == [None]
    rows = dag.get_task("sync_unit").python_callable(mid=None)
    assert rows["lists"] == 4 and lists_in(sfmc_env) == 4
    assert pages_read_by_workers  # worker processes run inside an Airflow task


@pytest.mark.parametrize("busy", [False, True], ids=["unit-unreachable", "unit-already-syncing"])
def test_an_airflow_sync_task_fails_with_its_units_error(sfmc_env: Path, busy: bool) -> None:
    sync_unit = load("airflow_dag").sfmc_dag.get_task("sync_unit").python_callable
    if busy:
        with (
            units_lock(Warehouse.parse(f"duckdb:///{sfmc_env}"), "sfmc", [MID]),
            pytest.raises(SyncBusy, match=BUSY),
        ):
            sync_unit(mid=MID)
    else:
        with pytest.raises(RuntimeError, match=r"business unit 999999999: .*invalid_grant"):
            sync_unit(mid=999_999_999)
    assert not sfmc_env.exists()  # nothing was loaded


def airflow(env: dict[str, str], *args: str) -> str:
    """``airflow ARGS`` in its own process; what it said, once it succeeded."""
    done = subprocess.run([AIRFLOW, *args], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-5000:]
    return done.stdout + done.stderr


def airflow_env(emulator: Emulator, tmp_path: Path) -> dict[str, str]:
    """A fresh Airflow (its metadata database migrated) whose DAGs folder holds the recipe,
    set to sync every business unit of ``emulator`` into a DuckDB file."""
    dags = tmp_path / "dags"
    dags.mkdir()
    shutil.copy(RECIPES / "airflow_dag.py", dags)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SFMC_", "DLT_", "AIRFLOW"))}
    env.update(
        emulator.environment(),
        SFMC_ACCOUNT_IDS=",".join(str(mid) for mid in emulator.config.mids),
        SFMC_DESTINATION=f"duckdb:///{tmp_path}/w.duckdb",
        DLT_DATA_DIR=str(tmp_path / "dlt"),
        AIRFLOW_HOME=str(tmp_path / "airflow"),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
    )
    airflow(env, "db", "migrate")
    return env


def test_the_airflow_dag_syncs_each_business_unit_in_its_own_task(
    emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    emulator = emulator_factory(sizes=TINY, business_units=2)
    mids = emulator.config.mids
    env = airflow_env(emulator, tmp_path)

    airflow(env, "dags", "test", "sfmc_source")

    with duckdb.connect(f"{tmp_path}/w.duckdb", read_only=True) as con:
        for table, rows in (("campaigns", 3), ("lists", 4)):
            counts = con.sql(f"select business_unit_id, count(*) from sfmc.{table} group by 1")
            assert dict(counts.fetchall()) == dict.fromkeys(mids, rows)
        runs = con.sql(
            "select list(distinct business_unit_id), bool_and(outcome = 'ok') "
            "from sfmc._sfmc_runs group by run_id"
        ).fetchall()
    assert sorted(runs) == [([mid], True) for mid in mids]  # a sync of its own for each unit

    emulator.app.log.clear()
    airflow(env, "dags", "test", "sfmc_source")

    requests = Counter((e.endpoint, e.mid) for e in emulator.app.log.entries)
    for mid in mids:  # each unit's second sync reads only what changed: nothing
        assert requests[CAMPAIGN_PAGES, mid] == 1 and requests[LIST_RETRIEVES, mid] == 1
        assert requests[ASSETS, mid] == 0 and requests[DESCRIBES, mid] == 0
    assert emulator.app.log.token_requests == 2  # one token a task


def test_the_dagster_asset_materializes_on_its_schedule(
    sfmc_env: Path, pages_read_by_workers: list[int]
) -> None:
    import dagster

    recipe = load("dagster_assets")
    [schedule] = recipe.defs.schedules
    assert schedule.cron_schedule == "0 */3 * * *"
    result = dagster.materialize([recipe.sfmc_tables])
    assert result.success
    [materialization] = result.asset_materializations_for_node("sfmc_tables")
    assert materialization.metadata["lists"].value == 4
    assert lists_in(sfmc_env) == 4
    assert pages_read_by_workers  # and inside a Dagster run


def test_the_systemd_units_sync_every_three_hours() -> None:
    service = (RECIPES / "sfmc-source.service").read_text()
    timer = (RECIPES / "sfmc-source.timer").read_text()
    assert "Type=oneshot" in service and "sfmc-source sync" in service
    assert "EnvironmentFile=/etc/sfmc-source.env" in service
    assert "OnCalendar=*-*-* 00/3:00:00" in timer and "WantedBy=timers.target" in timer
