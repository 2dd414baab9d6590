"""The deployment recipes in recipes/: each is built, and the Airflow and Dagster ones run a
real sync against the emulator."""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import duckdb
import pytest

from sfmc_source import workers
from sfmc_source.emulator import Emulator, Sizes

RECIPES = Path(__file__).parents[1] / "recipes"
TINY = Sizes(campaigns=3, lists=4, journeys=2)


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


def test_the_airflow_dag_is_built_and_its_task_syncs(
    sfmc_env: Path, pages_read_by_workers: list[int]
) -> None:
    dag = load("airflow_dag").sfmc_dag
    assert dag.dag_id == "sfmc_source"
    assert dag.max_active_runs == 1 and dag.catchup is False
    assert [task.task_id for task in dag.tasks] == ["sync"]
    rows = dag.get_task("sync").python_callable()
    assert rows["lists"] == 4 and lists_in(sfmc_env) == 4
    assert pages_read_by_workers  # worker processes run inside an Airflow task


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
