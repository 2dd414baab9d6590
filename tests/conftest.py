"""Shared fixtures: an emulator on a real socket and a plain httpx client talking to it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

# Airflow is installed for the recipes' tests; without this, dlt asks Airflow's (absent)
# metadata database for its settings on every pipeline the tests make (about 2 s each, and a
# logged error). The command line sets the same when it starts (cli.configure_runtime).
os.environ.setdefault("PROVIDERS__ENABLE_AIRFLOW_SECRETS", "false")

from sfmc_source.emulator import Emulator, EmulatorConfig, Sizes

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
PARTNER = "http://exacttarget.com/wsdl/partnerAPI"


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on: bound, then closed."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``sfmc-source ARGS`` in its own process, with exactly ``env``."""
    return subprocess.run(
        [sys.executable, "-m", "sfmc_source", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def emulator_factory() -> Iterator[Callable[..., Emulator]]:
    """Start emulators with any config; all are stopped after the test."""
    started: list[Emulator] = []

    def start(config: EmulatorConfig | None = None, **config_fields: Any) -> Emulator:
        emulator = Emulator(config or EmulatorConfig(**config_fields)).start()
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


@pytest.fixture
def emulator(emulator_factory: Callable[..., Emulator]) -> Emulator:
    return emulator_factory(sizes=Sizes())


class TokenClock:
    """The clock the emulator's auth host expires tokens by, moved only by the test: a token
    ages by exactly what the test says, however slow the machine."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def token_clock(monkeypatch: pytest.MonkeyPatch) -> TokenClock:
    clock = TokenClock()
    monkeypatch.setattr("sfmc_source.emulator.auth.time", clock)
    return clock


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


class Session:
    """A token plus the instance URLs it came with: what a client holds after authenticating."""

    def __init__(self, http: httpx.Client, emulator: Emulator, **token_body: Any) -> None:
        self.http = http
        self.emulator = emulator
        body = {
            "grant_type": "client_credentials",
            "client_id": emulator.config.client_id,
            "client_secret": emulator.config.client_secret,
            **token_body,
        }
        response = http.post(f"{emulator.auth_url}/v2/token", json=body)
        assert response.status_code == 200, response.text
        self.token: dict[str, Any] = response.json()
        self.access_token: str = self.token["access_token"]

    def rest(self, path: str, **params: Any) -> httpx.Response:
        return self.http.get(
            self.token["rest_instance_url"] + path.lstrip("/"),
            params=params,
            headers={"Authorization": f"Bearer {self.access_token}"},
        )

    def soap(self, action: str, body: str, token: str | None = None) -> httpx.Response:
        envelope = (
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<s:Envelope xmlns:s="{SOAP_ENV}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            '<s:Header><fueloauth xmlns="http://exacttarget.com">'
            f"{token or self.access_token}</fueloauth>"
            f"</s:Header><s:Body>{body}</s:Body></s:Envelope>"
        )
        return self.http.post(
            self.token["soap_instance_url"] + "Service.asmx",
            content=envelope.encode(),
            headers={"SOAPAction": action, "Content-Type": "text/xml; charset=utf-8"},
        )

    def retrieve(
        self,
        object_type: str,
        properties: list[str],
        filter_xml: str = "",
        batch_size: int | None = None,
        continue_request: str | None = None,
    ) -> httpx.Response:
        if continue_request:
            inner = f"<ContinueRequest>{continue_request}</ContinueRequest>"
        else:
            props = "".join(f"<Properties>{p}</Properties>" for p in properties)
            options = (
                f"<Options><BatchSize>{batch_size}</BatchSize></Options>" if batch_size else ""
            )
            inner = f"<ObjectType>{object_type}</ObjectType>{props}{filter_xml}{options}"
        return self.soap(
            "Retrieve",
            f'<RetrieveRequestMsg xmlns="{PARTNER}"><RetrieveRequest>'
            f"{inner}</RetrieveRequest></RetrieveRequestMsg>",
        )


@pytest.fixture
def session(http: httpx.Client, emulator: Emulator) -> Session:
    return Session(http, emulator)
