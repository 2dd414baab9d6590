"""The SFMC client against the emulator over real sockets: tokens, retries, typed errors, paging."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from sfmc_source.client import Credentials, RetryPolicy, SfmcClient
from sfmc_source.emulator import Emulator, RestOptions, Sizes
from sfmc_source.errors import (
    AuthenticationError,
    PermissionDenied,
    RequestRejected,
    ResponseError,
    TransientError,
)
from sfmc_source.paging import rest_pages, soap_pages
from tests.conftest import TokenClock

FAST = RetryPolicy(tries=4, base_delay=0.001, max_delay=0.01)
SIZES = Sizes(campaigns=120, lists=30, journeys=4)


@pytest.fixture
def connect(emulator_factory: Callable[..., Emulator]) -> Iterator[Callable[..., SfmcClient]]:
    clients: list[SfmcClient] = []

    def make(retry: RetryPolicy = FAST, secret: str | None = None, **config: Any) -> SfmcClient:
        config.setdefault("sizes", SIZES)
        emulator = emulator_factory(**config)
        creds = Credentials(
            emulator.config.client_id, secret or emulator.config.client_secret, emulator.auth_url
        )
        client = SfmcClient(creds, retry=retry, timeout=5)
        client.emulator = emulator  # type: ignore[attr-defined]
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def emulator_of(client: SfmcClient) -> Emulator:
    emulator: Emulator = client.emulator  # type: ignore[attr-defined]
    return emulator


def test_one_token_serves_many_requests(connect: Callable[..., SfmcClient]) -> None:
    client = connect()
    for _ in range(5):
        client.get_json("hub/v1/campaigns")
    list(soap_pages(client, "List", ["ID"]))
    assert emulator_of(client).app.log.token_requests == 1
    assert client.auth.token_requests == 1


def test_the_token_is_renewed_before_it_expires(
    connect: Callable[..., SfmcClient], token_clock: TokenClock
) -> None:
    client = connect(token_ttl=1)
    client.get_json("hub/v1/campaigns")
    time.sleep(0.8)  # the client renews by its own clock, after three quarters of the lifetime
    token_clock.now += 0.8  # and the emulator's token has aged as much, not more
    client.get_json("hub/v1/campaigns")
    log = emulator_of(client).app.log
    assert log.token_requests == 2
    assert log.count(status=401) == 0


@pytest.mark.parametrize("api", ["rest", "soap"])
def test_a_rejected_token_is_refreshed_once_and_the_call_retried(
    connect: Callable[..., SfmcClient], token_clock: TokenClock, api: str
) -> None:
    client = connect(token_lifetime=0.2)
    call = {
        "rest": lambda: client.get_json("hub/v1/campaigns"),
        "soap": lambda: list(soap_pages(client, "List", ["ID"])),
    }[api]
    call()
    token_clock.now += 0.3
    call()
    log = emulator_of(client).app.log
    assert log.token_requests == 2
    assert log.count(status=401 if api == "rest" else 500) == 1


def test_a_token_rejected_twice_is_an_authentication_error(
    connect: Callable[..., SfmcClient],
) -> None:
    client = connect(token_lifetime=0.0)
    with pytest.raises(AuthenticationError, match="rejected the access token"):
        client.get_json("hub/v1/campaigns")
    assert emulator_of(client).app.log.token_requests == 2


def test_wrong_credentials_name_the_settings_and_never_the_secret(
    connect: Callable[..., SfmcClient],
) -> None:
    client = connect(secret="hunter2-wrong")
    with pytest.raises(AuthenticationError) as caught:
        client.get_json("hub/v1/campaigns")
    message = str(caught.value)
    assert "invalid_client" in message and "SFMC_CLIENT_SECRET" in message
    assert "hunter2" not in message and "hunter2" not in repr(client.credentials)


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param({"rate_limit_every": 2, "retry_after": 0}, id="429"),
        pytest.param({"server_error_every": 2}, id="5xx"),
        pytest.param({"reset_every": 2}, id="reset"),
    ],
)
def test_transient_failures_are_retried(
    connect: Callable[..., SfmcClient], fault: dict[str, int]
) -> None:
    client = connect()
    for name, value in fault.items():
        setattr(emulator_of(client).app.faults, name, value)
    pages = list(rest_pages(client, "hub/v1/campaigns", {}, "campaigns"))
    assert sum(len(p) for p in pages) == 120
    assert sum(len(p) for p in soap_pages(client, "List", ["ID"])) == 30
    assert client.retries >= 2


def test_retry_after_is_honoured(
    connect: Callable[..., SfmcClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []
    monkeypatch.setattr("sfmc_source.client.time.sleep", slept.append)
    client = connect()
    emulator_of(client).app.faults.rate_limit_every = 2
    emulator_of(client).app.faults.retry_after = 7
    client.get_json("hub/v1/campaigns")
    client.get_json("hub/v1/campaigns")
    assert slept == [7.0]


def test_backoff_is_exponential_with_jitter_and_bounded() -> None:
    policy = RetryPolicy(tries=6, base_delay=1.0, max_delay=8.0)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 8.0)]:
        delays = [policy.delay(attempt, None) for _ in range(200)]
        assert min(delays) >= 0 and max(delays) <= ceiling
        assert max(delays) > ceiling / 2
    assert policy.delay(1, 1_000) == 300.0


def test_retries_are_bounded(connect: Callable[..., SfmcClient]) -> None:
    client = connect()
    emulator_of(client).app.faults.server_error_every = 1
    with pytest.raises(
        TransientError, match=r"GET hub/v1/campaigns still failing after 4 tries: HTTP 500"
    ):
        client.get_json("hub/v1/campaigns")
    assert emulator_of(client).app.log.count("GET /hub/v1/campaigns") == 4


def test_a_stalled_response_times_out_and_is_retried(connect: Callable[..., SfmcClient]) -> None:
    client = connect()
    client.http.timeout = httpx.Timeout(0.2)
    emulator_of(client).app.faults.stall_every = 3
    emulator_of(client).app.faults.stall_seconds = 1
    for _ in range(3):
        client.get_json("hub/v1/campaigns")
    assert client.retries == 1


@pytest.mark.parametrize(
    ("path", "error", "text"),
    [
        pytest.param(
            "hub/v1/campaigns/424242",
            RequestRejected,
            "HTTP 400 Campaign ID is invalid (errorcode 10000)",
            id="400",
        ),
        pytest.param(
            "interaction/v1/interactions/nope", RequestRejected, "HTTP 404 Not Found", id="404"
        ),
    ],
)
def test_client_errors_are_not_retried(
    connect: Callable[..., SfmcClient], path: str, error: type[Exception], text: str
) -> None:
    client = connect()
    with pytest.raises(error, match=re.escape(text)):
        client.get_json(path)
    assert client.retries == 0


@pytest.mark.parametrize("status", [200, 202, 203])
def test_every_2xx_with_a_json_body_is_a_successful_get(
    connect: Callable[..., SfmcClient], status: int
) -> None:
    # SFMC's docs print "HTTP/1.1 202 Accepted" above their campaign and asset examples.
    client = connect(rest=RestOptions(success_status=status))
    pages = list(rest_pages(client, "hub/v1/campaigns", {}, "campaigns"))
    assert sum(len(p) for p in pages) == 120
    assets = client.get_json("hub/v1/campaigns/1000/assets")
    assert assets["count"] == len(emulator_of(client).app.unit().assets["1000"])
    log = emulator_of(client).app.log
    assert log.count("GET /hub/v1/campaigns", status) == 3
    assert log.count("GET /hub/v1/campaigns/{id}/assets", status) == 1
    assert client.retries == 0


def test_a_2xx_without_a_json_body_is_a_malformed_response(
    connect: Callable[..., SfmcClient],
) -> None:
    client = connect(rest=RestOptions(success_status=202))
    emulator_of(client).app.faults.malformed = {"campaigns": 1}
    with pytest.raises(ResponseError, match="malformed JSON"):
        client.get_json("hub/v1/campaigns")


def test_a_missing_scope_is_permission_denied(connect: Callable[..., SfmcClient]) -> None:
    client = connect(scopes=("campaign_read",))
    with pytest.raises(PermissionDenied, match="HTTP 403"):
        client.get_json("interaction/v1/interactions")
    with pytest.raises(PermissionDenied, match="API Permission Failed"):
        list(soap_pages(client, "List", ["ID"]))


def test_malformed_json_is_a_response_error(connect: Callable[..., SfmcClient]) -> None:
    client = connect()
    emulator_of(client).app.faults.malformed = {"campaigns": 1}
    with pytest.raises(ResponseError, match="GET hub/v1/campaigns: malformed JSON"):
        client.get_json("hub/v1/campaigns")


def test_requests_are_counted_per_label(connect: Callable[..., SfmcClient]) -> None:
    client = connect()
    list(rest_pages(client, "hub/v1/campaigns", {}, "campaigns"))
    list(soap_pages(client, "List", ["ID"], label="lists"))
    assert client.requests_by == {"token": 1, "campaigns": 3, "lists": 1}
    assert client.requests == 5


def test_paging_trusts_count_not_the_echoed_page_size(connect: Callable[..., SfmcClient]) -> None:
    client = connect(
        rest=RestOptions(page_size_echo="requested"),
        sizes=Sizes(campaigns=0, lists=1, journeys=40, versions_per_journey=3),
    )
    params = {"mostRecentVersionOnly": "false"}
    rows = [
        item
        for page in rest_pages(client, "interaction/v1/interactions", params, "i")
        for item in page
    ]
    versions = sum(len(v) for v in emulator_of(client).app.unit().journeys.values())
    assert len(rows) == versions
    assert len({(r["id"], r["version"]) for r in rows}) == versions


@pytest.mark.parametrize("envelope", ["items", "entities", "list"])
def test_paging_reads_every_documented_envelope(
    connect: Callable[..., SfmcClient], envelope: str
) -> None:
    client = connect(rest=RestOptions(assets_envelope=envelope))
    expected = len(emulator_of(client).app.unit().assets["1000"])
    pages = list(rest_pages(client, "hub/v1/campaigns/1000/assets", {}, "a"))
    assert sum(len(p) for p in pages) == expected


def repeating_server(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/v2/token":
        return httpx.Response(
            200,
            json={
                "access_token": "t",
                "expires_in": 1079,
                "scope": "offline",
                "rest_instance_url": "http://fake.invalid/rest/",
                "soap_instance_url": "http://fake.invalid/soap/",
            },
        )
    return httpx.Response(
        200,
        json={
            "count": 500,
            "page": 1,
            "pageSize": 50,
            "links": {},
            "items": [{"id": "1"}, {"id": "2"}],
        },
    )


def test_a_page_that_repeats_the_previous_one_is_an_error_not_a_loop() -> None:
    creds = Credentials("id", "secret", "http://fake.invalid")
    transport = httpx.MockTransport(repeating_server)
    with (
        SfmcClient(creds, retry=FAST, transport=transport) as client,
        pytest.raises(ResponseError, match="page 2 repeats page 1"),
    ):
        list(rest_pages(client, "hub/v1/campaigns", {}, "campaigns"))


def test_for_subdomain_builds_the_tenant_auth_url() -> None:
    creds = Credentials.for_subdomain("id", "secret", "mc563885gzs27c5t9-63k636ttgm")
    assert creds.auth_url == "https://mc563885gzs27c5t9-63k636ttgm.auth.marketingcloudapis.com"
    assert "secret" not in repr(creds)
