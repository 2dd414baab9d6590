"""An auth host that cannot be reached: the first request of a run, so a wrong subdomain or
auth URL fails at once with the credentials' exit code; transient faults are still retried."""

from __future__ import annotations

import ipaddress
import os
import time
from pathlib import Path

import httpx
import pytest

from sfmc_source.client import Credentials, RetryPolicy, SfmcClient
from sfmc_source.errors import AuthenticationError
from tests.conftest import cli, free_port


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SFMC_", "DLT_"))}
    env.update(extra)
    return env


@pytest.mark.parametrize("command", ["sync", "check"])
def test_an_auth_host_refusing_connections_fails_at_once_with_exit_3(
    tmp_path: Path, command: str
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    env = clean_env(SFMC_CLIENT_ID="a", SFMC_CLIENT_SECRET="b", DLT_DATA_DIR=str(tmp_path))
    env["SFMC_DESTINATION"] = f"duckdb:///{tmp_path}/w.duckdb"
    started = time.monotonic()
    result = cli(env, command, "--auth-url", url, timeout=60)
    assert time.monotonic() - started < 10
    assert result.returncode == 3, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert f"cannot reach the auth host {url} (" in output
    assert "check SFMC_SUBDOMAIN (--subdomain) or SFMC_AUTH_URL (--auth-url)" in output
    assert not (tmp_path / "w.duckdb").exists()


def _resolver_is_local() -> bool:
    try:
        lines = Path("/etc/resolv.conf").read_text().splitlines()
    except OSError:
        return False
    servers = [line.split()[1] for line in lines if line.startswith("nameserver ")]
    return all(ipaddress.ip_address(s.split("%")[0]).is_loopback for s in servers)


@pytest.mark.skipif(
    not _resolver_is_local(), reason="resolving a name could reach a DNS server off this machine"
)
def test_an_auth_host_that_does_not_resolve_fails_at_once_with_exit_3(tmp_path: Path) -> None:
    env = clean_env(SFMC_CLIENT_ID="a", SFMC_CLIENT_SECRET="b", DLT_DATA_DIR=str(tmp_path))
    env["SFMC_DESTINATION"] = f"duckdb:///{tmp_path}/w.duckdb"
    started = time.monotonic()
    result = cli(env, "sync", "--auth-url", "https://nonexistent.invalid", timeout=60)
    assert time.monotonic() - started < 10
    assert result.returncode == 3
    assert "cannot reach the auth host https://nonexistent.invalid (" in result.stderr


def _token_transport(outcomes: list[Exception | int]) -> httpx.MockTransport:
    """The auth host as a script: each token request takes the next outcome."""

    def answer(request: httpx.Request) -> httpx.Response:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        if outcome != 200:
            return httpx.Response(outcome)
        body = {
            "access_token": "t" * 20,
            "expires_in": 1,  # due at once: every token() asks again
            "rest_instance_url": "http://rest/",
            "soap_instance_url": "http://soap/",
        }
        return httpx.Response(200, json=body)

    return httpx.MockTransport(answer)


@pytest.mark.parametrize(
    ("outcomes", "requests"),
    [
        pytest.param([503, 200], 2, id="5xx"),
        pytest.param([httpx.ConnectTimeout("slow"), 200], 2, id="connect-timeout"),
        pytest.param([httpx.ReadError("reset"), 200], 2, id="reset"),
    ],
)
def test_a_first_token_request_still_retries_transient_faults(
    outcomes: list[Exception | int], requests: int
) -> None:
    creds = Credentials("a", "b", "http://auth")
    retry = RetryPolicy(tries=3, base_delay=0.001)
    with SfmcClient(creds, retry=retry, transport=_token_transport(outcomes)) as client:
        client.auth.token()
    assert client.requests == requests


def test_only_a_later_token_request_retries_a_refused_connection() -> None:
    refused = httpx.ConnectError("[Errno 111] Connection refused")
    creds = Credentials("a", "b", "http://auth")
    retry = RetryPolicy(tries=3, base_delay=0.001)
    transport = _token_transport([refused, 200, refused, 200])
    with SfmcClient(creds, retry=retry, transport=transport) as client:
        with pytest.raises(AuthenticationError, match="cannot reach the auth host http://auth"):
            client.auth.token()
        assert client.requests == 1
        first = client.auth.token()
        assert client.auth.token(stale=first)  # the host answered before: a refusal is a blip
        assert client.requests == 4
