"""What a sync prints: JSON events, plain lines, and never a secret."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from sfmc_source.cli import _reported, main
from sfmc_source.emulator import Emulator, Sizes
from sfmc_source.errors import RequestRejected
from sfmc_source.history import CollectionResult
from sfmc_source.report import Reporter

TINY = Sizes(campaigns=3, lists=4, journeys=2)
SEED = "campaigns,campaign_assets,lists,interactions,goals"


def test_json_log_format_is_one_object_per_event_with_the_run_id(
    emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    emulator = emulator_factory(sizes=TINY)
    env = {**emulator.environment(), "DLT_DATA_DIR": str(tmp_path / "dlt")}
    args = ["sync", "--destination", f"duckdb:///{tmp_path}/w.duckdb", "--log-format", "json"]
    args += ["--collections", SEED]
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert len({e["run_id"] for e in events}) == 1
    finished = {e["collection"]: e for e in events if e["event"] == "collection_finished"}
    assert set(finished) == {"campaigns", "campaign_assets", "lists", "interactions", "goals"}
    assert finished["lists"]["rows"] == 4 and finished["lists"]["outcome"] == "ok"
    assert events[-1]["event"] == "run_finished" and events[-1]["outcome"] == "ok"
    progress = [e for e in events if e["event"] == "progress" and e["collection"] == "lists"]
    assert [(e["pages"], e["rows"]) for e in progress] == [(1, 4)]
    assert emulator.config.client_secret not in result.output


def test_plain_lines_name_each_collection_and_failures(
    emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    emulator = emulator_factory(sizes=TINY, scopes=("campaign_read", "list_and_subscribers_read"))
    env = {**emulator.environment(), "DLT_DATA_DIR": str(tmp_path / "dlt")}
    args = ["sync", "--destination", f"duckdb:///{tmp_path}/w.duckdb", "--collections", SEED]
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 1
    assert "lists: 4 rows, 2 requests" in result.stderr
    assert "interactions: 0 rows, 1 request," in result.stderr and "FAILED" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: goals:")
    assert "collection           rows  requests" in result.stdout


def test_the_reporter_redacts_secrets_and_tokens() -> None:
    out, err = io.StringIO(), io.StringIO()
    reporter = Reporter("run", lambda: ["s3cr3t", "tok.en"], out=out, err=err)
    failed = CollectionResult("lists", error="server said s3cr3t and tok.en")
    reporter.finished(failed)
    reporter.summary([failed], 1, None, None)
    assert "s3cr3t" not in out.getvalue() + err.getvalue()
    assert "tok.en" not in err.getvalue() and "***" in err.getvalue()


@pytest.mark.parametrize("debug", [False, True])
def test_failures_are_one_line_and_debug_tracebacks_are_redacted(
    debug: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited, _reported(debug, ["s3cr3t"]):
        raise RequestRejected("GET x: HTTP 400 the secret s3cr3t leaked")
    err = capsys.readouterr().err
    assert exited.value.code == 1
    assert "s3cr3t" not in err
    assert err.strip().splitlines()[-1] == "error: GET x: HTTP 400 the secret *** leaked"
    assert ("Traceback" in err) == debug
