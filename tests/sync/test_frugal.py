"""A sync asks SFMC for no more than it must: real syncs into DuckDB against the emulator, with
every request counted at the emulator.

An incremental run reads the first page of campaigns, re-reads the assets only of campaigns
whose modified date moved since their assets were read (``assets_read_at``), Describes List
only once per destination (``refused_properties``), and retrieves List, Email and
TriggeredSendDefinition once each. State written by a
run that failed is not kept: the next run reads again what the failed one did not load.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import test_sync_e2e as e2e
from test_sync_e2e import (
    ASSETS,
    CAMPAIGN_PAGES,
    JOURNEY_PAGES,
    LIST_RETRIEVES,
    TABLES,
    TOKEN,
    USERINFO,
    Destination,
    Syncs,
    assert_equals_emulator,
    assert_warehouse_equals,
    asset_campaigns,
    counts,
    outcome,
    snapshot,
)

from sfmc_source.client import SfmcClient
from sfmc_source.emulator import Emulator, Faults, Sizes
from sfmc_source.source import CAMPAIGNS_BATCH
from sfmc_source.sync import SyncResult

# The e2e module's fixtures, used here by name.
client_factory = e2e.client_factory
destination_factory = e2e.destination_factory
duckdb_destination = e2e.duckdb_destination

DESCRIBES = "SOAP Describe"
# The e2e module's tables and the email ones, each read with one Retrieve when nothing is new.
SYNCED = (*TABLES, "emails", "triggered_sends")
EMAIL_RETRIEVES = "SOAP Retrieve Email"
TSD_RETRIEVES = "SOAP Retrieve TriggeredSendDefinition"
# Campaigns span three pages of 50, journey versions (30 journeys, mostly 2 each) two.
SIZES = Sizes(campaigns=120, assets_per_campaign=2, lists=120, journeys=30)
CAMPAIGNS = 120

Factory = Callable[..., Emulator]


class SyncsWithEmails(Syncs):
    """Syncs of ``SYNCED`` unless told otherwise."""

    def run(
        self,
        emu: Emulator,
        dest: Destination,
        machine: str = "a",
        client: SfmcClient | None = None,
        **options: Any,
    ) -> SyncResult:
        options.setdefault("collections", SYNCED)
        return super().run(emu, dest, machine, client, **options)


@pytest.fixture
def syncs(tmp_path: Path, client_factory: Callable[..., SfmcClient]) -> Syncs:
    return SyncsWithEmails(tmp_path, client_factory)


def assert_ok(result: SyncResult) -> None:
    assert result.fatal is None, result.fatal
    assert outcome(result) == dict.fromkeys(SYNCED), outcome(result)
    assert result.exit_code == 0


def requests_of(result: SyncResult) -> dict[str, int]:
    """The API requests each collection made, as the run reports them."""
    return {c.name: c.requests for c in result.collections}


def failing(result: SyncResult) -> set[str]:
    return {c.name for c in result.collections if c.error is not None}


def rows_of(result: SyncResult) -> dict[str, int]:
    return {c.name: c.rows for c in result.collections}


def journey_pages(emu: Emulator) -> int:
    """The pages of 50 the interactions listing (every version but deleted ones) takes."""
    versions = [v for v in emu.app.unit().journey_versions() if v.fields["status"] != "Deleted"]
    return math.ceil(len(versions) / 50)


def no_change_counts(emu: Emulator) -> dict[str, int]:
    """Every request an incremental run with nothing new makes."""
    return {
        TOKEN: 1,
        USERINFO: 1,
        CAMPAIGN_PAGES: 1,
        LIST_RETRIEVES: 1,
        JOURNEY_PAGES: journey_pages(emu),
        EMAIL_RETRIEVES: 1,
        TSD_RETRIEVES: 1,
    }


def fully_synced(emulator_factory: Factory, destination: Destination, syncs: Syncs) -> Emulator:
    """An emulator of ``SIZES`` whose data a first, full run loaded; its request log cleared."""
    emu = emulator_factory(sizes=SIZES)
    unit = emu.app.unit()
    assert len(unit.campaigns) == CAMPAIGNS
    assert journey_pages(emu) == 2
    first = syncs.run(emu, destination)
    assert_ok(first)
    assert counts(emu) == {
        TOKEN: 1,
        USERINFO: 1,
        CAMPAIGN_PAGES: math.ceil(CAMPAIGNS / 50),
        ASSETS: CAMPAIGNS,
        DESCRIBES: 1,
        LIST_RETRIEVES: 1,
        JOURNEY_PAGES: journey_pages(emu),
        EMAIL_RETRIEVES: 1,
        TSD_RETRIEVES: 1,
    }
    emu.app.log.clear()
    return emu


def campaigns_with_assets(emu: Emulator, k: int) -> list[str]:
    """``k`` campaigns that have assets, the least recently modified first."""
    unit = emu.app.unit()
    oldest = sorted(unit.campaigns.values(), key=lambda r: r.fields["modifiedDate"])
    return [r.fields["id"] for r in oldest if unit.assets.get(r.fields["id"])][:k]


def change_campaigns(emu: Emulator, k: int) -> list[str]:
    """Change ``k`` campaigns (moving their modified date) and, through their assets, what
    the warehouse must show: one asset edited, one added, one removed."""
    unit, mutate = emu.app.unit(), emu.app.mutate
    changed = campaigns_with_assets(emu, k)
    assert len(changed) == k >= 3
    for n, campaign_id in enumerate(changed):
        mutate.update("campaigns", campaign_id, name=f"changed campaign {n}")
    mutate.update("campaign_assets", unit.assets[changed[0]][0].fields["id"], type="CHANGED")
    mutate.add("campaign_assets", campaignId=int(changed[1]), type="EMAIL", itemID="added-1")
    mutate.delete("campaign_assets", unit.assets[changed[2]][0].fields["id"])
    return changed


# ---- no change, some change ---------------------------------------------------------------


def test_a_run_with_nothing_new_makes_only_the_requests_it_must(
    emulator_factory: Factory, duckdb_destination: Destination, syncs: Syncs
) -> None:
    emu = fully_synced(emulator_factory, duckdb_destination, syncs)
    expected = snapshot(emu)

    result = syncs.run(emu, duckdb_destination)

    assert_ok(result)
    # one token, the first campaigns page, no assets, no Describe, one List, one Email and one
    # TriggeredSendDefinition Retrieve, and every interactions page
    assert counts(emu) == no_change_counts(emu)
    assert emu.app.log.token_requests == 1 and result.token_requests == 1
    assert requests_of(result) == {
        "campaigns": 1,
        "campaign_assets": 0,
        "lists": 1,
        "interactions": journey_pages(emu),
        "goals": 0,
        "emails": 1,
        "triggered_sends": 1,
    }
    assert rows_of(result)["campaign_assets"] == 0
    assert_warehouse_equals(duckdb_destination, expected)

    # and again: a run with nothing new leaves the next one as frugal
    emu.app.log.clear()
    assert_ok(syncs.run(emu, duckdb_destination))
    assert counts(emu) == no_change_counts(emu)
    # each run, whatever its number of collections, was one load (the history with it)
    loads = duckdb_destination.query("select count(*) from {schema}._dlt_loads")
    runs = duckdb_destination.query("select count(distinct run_id) from {schema}._sfmc_runs")
    assert loads == runs == [(3,)]


def test_a_run_reads_the_assets_of_exactly_the_changed_campaigns(
    emulator_factory: Factory, duckdb_destination: Destination, syncs: Syncs
) -> None:
    emu = fully_synced(emulator_factory, duckdb_destination, syncs)
    unit = emu.app.unit()
    edited = unit.assets[campaigns_with_assets(emu, 1)[0]][0].fields["id"]
    changed = change_campaigns(emu, 3)

    result = syncs.run(emu, duckdb_destination)

    assert_ok(result)
    assert counts(emu) == {**no_change_counts(emu), ASSETS: 3}  # one page each
    assert sorted(asset_campaigns(emu)) == sorted(changed)
    assert requests_of(result)["campaign_assets"] == 3
    assert rows_of(result)["campaign_assets"] == sum(len(unit.assets[c]) for c in changed)
    assert_equals_emulator(duckdb_destination, emu)
    assert duckdb_destination.query(
        "SELECT type FROM {schema}.campaign_assets WHERE id = %s", (edited,)
    ) == [("CHANGED",)]

    # read once: the run after asks for none of them again
    emu.app.log.clear()
    assert_ok(syncs.run(emu, duckdb_destination))
    assert counts(emu) == no_change_counts(emu)


# ---- full refresh ----------------------------------------------------------------------------


def test_a_full_refresh_rereads_every_campaigns_assets_and_describes_again(
    emulator_factory: Factory, duckdb_destination: Destination, syncs: Syncs
) -> None:
    emu = fully_synced(emulator_factory, duckdb_destination, syncs)
    unit = emu.app.unit()

    result = syncs.run(emu, duckdb_destination, full_refresh=True)

    assert_ok(result)
    assert counts(emu) == {
        TOKEN: 1,
        USERINFO: 1,
        CAMPAIGN_PAGES: math.ceil(CAMPAIGNS / 50),
        ASSETS: CAMPAIGNS,
        DESCRIBES: 1,
        LIST_RETRIEVES: 1,
        JOURNEY_PAGES: journey_pages(emu),
        EMAIL_RETRIEVES: 1,
        TSD_RETRIEVES: 1,
    }
    assert sorted(asset_campaigns(emu)) == sorted(unit.campaigns)
    assert requests_of(result)["campaign_assets"] == CAMPAIGNS
    assert requests_of(result)["lists"] == 2  # the Describe and the Retrieve
    assert_equals_emulator(duckdb_destination, emu)

    # and the incremental run after it is frugal again
    emu.app.log.clear()
    assert_ok(syncs.run(emu, duckdb_destination))
    assert counts(emu) == no_change_counts(emu)


# ---- Describe once ---------------------------------------------------------------------------

REFUSED = {"Client.PartnerUserKey", "Client.UserID"}
REFUSED_COLUMNS = {"client_partner_user_key": None, "client_user_id": None}


def expected_lists(emu: Emulator) -> dict[str, list[dict[str, Any]]]:
    expected = snapshot(emu, ["lists"])
    for row in expected["lists"]:
        row.update(REFUSED_COLUMNS)
    return expected


@pytest.mark.parametrize(
    ("describe", "first_retrieves"),
    [
        # Describe names the refused properties: one Retrieve without them
        pytest.param("described", 1, id="described"),
        # Describe names none: the first Retrieve is refused and made again without them
        pytest.param("empty-describe", 2, id="empty-describe"),
    ],
)
def test_list_properties_refused_once_are_never_described_or_asked_for_again(
    emulator_factory: Factory,
    duckdb_destination: Destination,
    syncs: Syncs,
    describe: str,
    first_retrieves: int,
) -> None:
    emu = emulator_factory(
        sizes=SIZES, unretrievable={"List": REFUSED}, empty_describe=describe == "empty-describe"
    )
    unit, log = emu.app.unit(), emu.app.log
    assert any(r.fields.get("Client.UserID") for r in unit.lists.values())
    assert any(r.fields.get("Client.PartnerUserKey") for r in unit.lists.values())

    first = syncs.run(emu, duckdb_destination, collections=["lists"])

    assert outcome(first) == {"lists": None}
    assert counts(emu) == {TOKEN: 1, USERINFO: 1, DESCRIBES: 1, LIST_RETRIEVES: first_retrieves}
    assert_warehouse_equals(duckdb_destination, expected_lists(emu))

    changed = sorted(unit.lists)[:3]
    for list_id in changed:
        emu.app.mutate.update("lists", list_id, ListName=f"changed {list_id}")
    log.clear()

    second = syncs.run(emu, duckdb_destination, collections=["lists"])

    assert outcome(second) == {"lists": None}
    # no Describe, and a single Retrieve: it did not name a refused property (the emulator
    # would have refused it, and the list Retrieve would have been made twice)
    assert counts(emu) == {TOKEN: 1, USERINFO: 1, LIST_RETRIEVES: 1}
    assert requests_of(second) == {"lists": 1}
    assert rows_of(second)["lists"] >= len(changed)
    assert_warehouse_equals(duckdb_destination, expected_lists(emu))
    [(filled,)] = duckdb_destination.query(
        "SELECT count(*) FROM {schema}.lists "
        "WHERE client_user_id IS NOT NULL OR client_partner_user_key IS NOT NULL"
    )
    assert filled == 0


# ---- a failed run marks nothing read -------------------------------------------------------


def test_assets_a_failed_run_read_are_read_again_by_the_next(
    emulator_factory: Factory, duckdb_destination: Destination, syncs: Syncs
) -> None:
    emu = fully_synced(emulator_factory, duckdb_destination, syncs)
    before = snapshot(emu)
    changed = change_campaigns(emu, 3)
    emu.app.faults.malformed = {"campaign_assets": 1}  # every assets page is cut short

    failed = syncs.run(emu, duckdb_destination)

    assert failed.exit_code == 1
    errors = outcome(failed)
    assert failing(failed) == {"campaigns", "campaign_assets"}, errors
    assert "/assets: malformed JSON" in str(errors["campaign_assets"]), errors
    assert set(asset_campaigns(emu)) <= set(changed)
    assert_warehouse_equals(
        duckdb_destination, {t: before[t] for t in ("campaigns", "campaign_assets")}
    )

    emu.app.faults.malformed = {}
    emu.app.log.clear()
    result = syncs.run(emu, duckdb_destination)

    assert_ok(result)
    assert counts(emu) == {**no_change_counts(emu), ASSETS: 3}
    assert sorted(asset_campaigns(emu)) == sorted(changed)
    assert_equals_emulator(duckdb_destination, emu)


def test_a_first_run_that_fails_after_reading_some_assets_leaves_them_unread(
    emulator_factory: Factory, duckdb_destination: Destination, syncs: Syncs
) -> None:
    """The campaigns page after the first batch is malformed: the assets of the first batch's
    campaigns were read (and noted in the resource state) before the run failed. Nothing was
    loaded, so the next run must read every campaign's assets, not only those the failed run
    had not reached."""
    campaigns = CAMPAIGNS_BATCH + 60
    emu = emulator_factory(
        sizes=Sizes(campaigns=campaigns, assets_per_campaign=1, lists=10, journeys=2),
        faults=Faults(malformed={"campaigns": CAMPAIGNS_BATCH // 50 + 1}),
    )
    unit = emu.app.unit()

    failed = syncs.run(emu, duckdb_destination)

    assert failed.exit_code == 1
    errors = outcome(failed)
    assert failing(failed) == {"campaigns", "campaign_assets"}, errors
    assert "GET hub/v1/campaigns: malformed JSON" in str(errors["campaigns"]), errors
    assert emu.app.log.count(ASSETS) == CAMPAIGNS_BATCH  # the first batch's campaigns
    assert "campaigns" not in duckdb_destination.tables()
    assert "campaign_assets" not in duckdb_destination.tables()

    emu.app.faults.malformed = {}
    emu.app.log.clear()
    result = syncs.run(emu, duckdb_destination)

    assert_ok(result)
    assert emu.app.log.count(ASSETS) == campaigns
    assert sorted(asset_campaigns(emu)) == sorted(unit.campaigns)
    assert emu.app.log.count(CAMPAIGN_PAGES) == math.ceil(campaigns / 50)
    assert_equals_emulator(duckdb_destination, emu)


# ---- journey activities and folders ------------------------------------------------------

ONE_VERSION = "GET /interaction/v1/interactions/key:{key}"
FOLDER_RETRIEVES = "SOAP Retrieve DataFolder"
WITH_ACTIVITIES = (*SYNCED, "journey_activities", "folders")


def test_journey_activities_cost_nothing_until_a_version_changes(
    emulator_factory: Factory, duckdb_destination: Destination, syncs: Syncs
) -> None:
    emu = emulator_factory(sizes=SIZES)
    versions = [v for v in emu.app.unit().journey_versions() if v.fields["status"] != "Deleted"]
    assert_ok_with(syncs.run(emu, duckdb_destination, collections=WITH_ACTIVITIES))
    assert counts(emu)[ONE_VERSION] == len(versions)
    emu.app.log.clear()

    nothing_new = syncs.run(emu, duckdb_destination, collections=WITH_ACTIVITIES)

    assert_ok_with(nothing_new)
    assert counts(emu) == {**no_change_counts(emu), FOLDER_RETRIEVES: 1}
    assert requests_of(nothing_new)["journey_activities"] == 0
    assert rows_of(nothing_new)["journey_activities"] == 0

    # two versions changed: two requests, each for its version
    for version in versions[:2]:
        key = (version.fields["id"], version.fields["version"])
        emu.app.mutate.update("interactions", key, activities=[])
    emu.app.log.clear()
    changed = syncs.run(emu, duckdb_destination, collections=WITH_ACTIVITIES)
    assert_ok_with(changed)
    assert counts(emu) == {**no_change_counts(emu), FOLDER_RETRIEVES: 1, ONE_VERSION: 2}
    assert requests_of(changed)["journey_activities"] == 2
    assert_equals_emulator(duckdb_destination, emu, ["journey_activities", "folders"])


def assert_ok_with(result: SyncResult) -> None:
    assert result.fatal is None, result.fatal
    assert outcome(result) == dict.fromkeys(WITH_ACTIVITIES), outcome(result)
