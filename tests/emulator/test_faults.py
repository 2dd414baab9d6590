"""Fault knobs: latency (per API, per SOAP row), throttling, server errors, connection resets,
malformed pages."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from sfmc_source.emulator import Emulator, Faults, Sizes
from tests.conftest import Session

SIZES = Sizes(campaigns=120, lists=10, journeys=3)


@pytest.fixture
def faulty(http: httpx.Client, emulator_factory: Callable[..., Emulator]) -> Session:
    return Session(http, emulator_factory(sizes=SIZES))


def statuses(session: Session, count: int) -> list[int]:
    return [session.rest("hub/v1/campaigns").status_code for _ in range(count)]


def test_every_nth_request_is_throttled_with_retry_after(faulty: Session) -> None:
    faulty.emulator.app.faults.rate_limit_every = 3
    faulty.emulator.app.faults.retry_after = 7
    responses = [faulty.rest("hub/v1/campaigns") for _ in range(6)]
    assert [r.status_code for r in responses] == [200, 200, 429, 200, 200, 429]
    throttled = responses[2]
    assert throttled.headers["Retry-After"] == "7"
    assert throttled.json() == {
        "message": "Rate limit exceeded",
        "errorcode": 50100,
        "retryAfter": 7,
        "documentation": "https://developer.salesforce.com/docs/atlas.en-us.mc-apis.meta/mc-apis/error-handling.htm",
    }


def test_a_blocked_account_gets_50200(faulty: Session) -> None:
    faulty.emulator.app.faults.rate_limit_every = 1
    faulty.emulator.app.faults.blocked = True
    response = faulty.rest("hub/v1/campaigns")
    assert (response.status_code, response.json()["errorcode"]) == (429, 50200)


def test_token_requests_do_not_count_toward_fault_counters(
    http: httpx.Client, emulator_factory: Callable[..., Emulator]
) -> None:
    emulator = emulator_factory(sizes=SIZES, faults=Faults(rate_limit_every=2))
    session = Session(http, emulator)
    Session(http, emulator)
    assert statuses(session, 2) == [200, 429]


@pytest.mark.parametrize("status", [500, 502, 503])
def test_every_mth_request_is_a_server_error(faulty: Session, status: int) -> None:
    faulty.emulator.app.faults.server_error_every = 2
    faulty.emulator.app.faults.server_error_status = status
    assert statuses(faulty, 4) == [200, status, 200, status]


def test_a_reset_drops_the_connection_and_the_next_request_works(faulty: Session) -> None:
    faulty.emulator.app.faults.reset_every = 2
    assert faulty.rest("hub/v1/campaigns").status_code == 200
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        faulty.rest("hub/v1/campaigns")
    assert faulty.rest("hub/v1/campaigns").status_code == 200
    assert faulty.emulator.app.log.by_status()[0] == 1


def test_resets_win_over_throttling_which_wins_over_server_errors(faulty: Session) -> None:
    faults = faulty.emulator.app.faults
    faults.reset_every, faults.rate_limit_every, faults.server_error_every = 6, 3, 2
    seen = []
    for _ in range(6):
        try:
            seen.append(faulty.rest("hub/v1/campaigns").status_code)
        except httpx.TransportError:
            seen.append(0)
    assert seen == [200, 500, 429, 500, 200, 0]


@pytest.mark.parametrize(
    ("resource", "path", "page"),
    [
        pytest.param("campaigns", "hub/v1/campaigns", 2, id="campaigns-page-2"),
        pytest.param("interactions", "interaction/v1/interactions", 1, id="interactions-page-1"),
        pytest.param("campaign_assets", "hub/v1/campaigns/1000/assets", 1, id="assets"),
    ],
)
def test_malformed_page_is_cut_short_and_other_pages_parse(
    faulty: Session, resource: str, path: str, page: int
) -> None:
    faulty.emulator.app.faults.malformed = {resource: page}
    bad = faulty.rest(path, **{"$page": page})
    assert bad.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(bad.content)
    faulty.rest(path, **{"$page": page + 1}).json()
    faulty.emulator.app.faults.malformed = {}
    faulty.rest(path, **{"$page": page}).json()


@pytest.mark.parametrize(
    ("resource", "path"),
    [
        pytest.param("campaigns", "hub/v1/campaigns", id="campaigns"),
        pytest.param("interactions", "interaction/v1/interactions", id="interactions"),
    ],
)
def test_a_repeating_page_opens_with_the_first_item_of_the_page_before(
    faulty: Session, resource: str, path: str
) -> None:
    params = {"mostRecentVersionOnly": "false", "$pageSize": 2}
    clean = [faulty.rest(path, **params, **{"$page": p}).json() for p in (1, 2, 3)]
    faulty.emulator.app.faults.repeat = {resource: 2}
    pages = [faulty.rest(path, **params, **{"$page": p}).json() for p in (1, 2, 3)]
    assert pages[1]["items"] == [clean[0]["items"][0], clean[1]["items"][1]]
    assert (pages[0], pages[2]) == (clean[0], clean[2])
    assert pages[1]["count"] == clean[1]["count"]


def test_latency_is_added_to_every_request(faulty: Session) -> None:
    faulty.emulator.app.faults.latency_ms = 150
    started = time.perf_counter()
    faulty.rest("hub/v1/campaigns")
    assert time.perf_counter() - started >= 0.15


def timed(call: Callable[[], httpx.Response]) -> float:
    started = time.perf_counter()
    assert call().status_code == 200
    return time.perf_counter() - started


def request_id(response: httpx.Response) -> str:
    return response.text.split("<RequestID>", 1)[1].split("</RequestID>", 1)[0]


def test_soap_has_its_own_latency_and_a_cost_per_row_returned(faulty: Session) -> None:
    faults = faulty.emulator.app.faults
    faults.latency_ms, faults.soap_latency_ms, faults.soap_row_ms = 20, 100, 20
    assert timed(lambda: faulty.rest("hub/v1/campaigns")) >= 0.02
    first = faulty.retrieve("List", ["ID"], batch_size=4)
    assert timed(lambda: faulty.retrieve("List", ["ID"], batch_size=1)) >= 0.1 + 0.02
    assert timed(lambda: faulty.retrieve("List", ["ID"], batch_size=4)) >= 0.1 + 4 * 0.02
    more = faulty.retrieve("", [], continue_request=request_id(first))
    soap = [e for e in faulty.emulator.app.log.entries if e.api == "SOAP"]
    assert [(e.rows, e.latency_ms) for e in soap] == [(4, 180), (1, 120), (4, 180), (4, 180)]
    assert soap[0].chain == soap[3].chain == request_id(more)
    assert len({e.chain for e in soap}) == 3


def test_the_log_sums_latency_along_the_longest_chain_of_pages(faulty: Session) -> None:
    faulty.emulator.app.faults.latency_ms = 10
    for page in (1, 2, 3):
        faulty.rest("hub/v1/campaigns", **{"$page": page, "$pageSize": 2})
    faulty.rest("hub/v1/campaigns", **{"$page": 1, "$pageSize": 5})
    faulty.rest("hub/v1/campaigns/1000")
    latency = faulty.emulator.app.log.latency()
    # five requests (the token came before the latency); three pages of one listing in a row
    assert latency == {"total": 50, "longest_chain": 30}


def test_pages_asked_for_at_once_are_not_a_chain(faulty: Session) -> None:
    faulty.emulator.app.faults.latency_ms = 200
    with ThreadPoolExecutor(3) as pool:
        pages = pool.map(lambda page: faulty.rest("hub/v1/campaigns", **{"$page": page}), (1, 2, 3))
        assert [response.status_code for response in pages] == [200] * 3
    assert faulty.emulator.app.log.latency()["longest_chain"] < 600


def test_a_stalled_request_trips_a_client_timeout_and_the_next_one_is_answered(
    faulty: Session,
) -> None:
    faulty.emulator.app.faults.stall_every = 1
    faulty.emulator.app.faults.stall_seconds = 0.5
    with pytest.raises(httpx.ReadTimeout):
        faulty.http.get(
            faulty.token["rest_instance_url"] + "hub/v1/campaigns",
            headers={"Authorization": f"Bearer {faulty.access_token}"},
            timeout=0.1,
        )
    faulty.emulator.app.faults.stall_every = 0
    assert faulty.rest("hub/v1/campaigns").status_code == 200
