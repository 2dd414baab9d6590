"""The emulator as an in-process httpx transport, for tests that need no sockets."""

from __future__ import annotations

import httpx
import pytest

from sfmc_source.emulator import EmulatorApp, EmulatorConfig, EmulatorTransport, Faults, Sizes


def test_the_transport_serves_the_same_api_without_sockets() -> None:
    app = EmulatorApp(EmulatorConfig(sizes=Sizes(campaigns=3, lists=1, journeys=1)))
    with httpx.Client(transport=EmulatorTransport(app)) as client:
        token = client.post(
            "http://sfmc-emulator.invalid/v2/token",
            json={
                "grant_type": "client_credentials",
                "client_id": app.config.client_id,
                "client_secret": app.config.client_secret,
            },
        ).json()
        assert token["rest_instance_url"] == "http://sfmc-emulator.invalid/rest/"
        body = client.get(
            token["rest_instance_url"] + "hub/v1/campaigns",
            params={"$pageSize": 2},
            headers={"Authorization": f"Bearer {token['access_token']}"},
        ).json()
    assert (body["count"], len(body["items"])) == (3, 2)
    assert app.log.count("GET /hub/v1/campaigns") == 1


def test_a_reset_is_a_read_error() -> None:
    app = EmulatorApp(
        EmulatorConfig(sizes=Sizes(campaigns=1, lists=1, journeys=1), faults=Faults(reset_every=1))
    )
    with httpx.Client(transport=EmulatorTransport(app)) as client, pytest.raises(httpx.ReadError):
        client.get("http://sfmc-emulator.invalid/rest/hub/v1/campaigns")
