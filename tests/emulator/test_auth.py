"""The token endpoint and how REST treats tokens: docs/sfmc-api.md#auth and
docs/sfmc-api.md#rest-errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from sfmc_source.emulator import Emulator, EmulatorConfig, Sizes
from tests.conftest import Session, TokenClock

TINY = Sizes(campaigns=3, lists=3, journeys=2)


def token_request(http: httpx.Client, emulator: Emulator, **changes: Any) -> httpx.Response:
    body = {
        "grant_type": "client_credentials",
        "client_id": emulator.config.client_id,
        "client_secret": emulator.config.client_secret,
        **changes,
    }
    return http.post(
        f"{emulator.auth_url}/v2/token", json={k: v for k, v in body.items() if v is not None}
    )


def test_token_response_has_the_documented_fields(http: httpx.Client, emulator: Emulator) -> None:
    response = token_request(http, emulator)
    assert response.status_code == 200
    token = response.json()
    assert set(token) == {
        "access_token",
        "token_type",
        "expires_in",
        "scope",
        "soap_instance_url",
        "rest_instance_url",
    }
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 1079
    assert token["access_token"].startswith("eyJ") and token["access_token"].count(".") == 2
    assert len(token["access_token"]) > 400
    scopes = token["scope"].split()
    assert scopes[0] == "offline"
    assert {"journeys_read", "list_and_subscribers_read", "campaign_read"} <= set(scopes)
    assert token["rest_instance_url"] == f"{emulator.auth_url}/rest/"
    assert token["soap_instance_url"] == f"{emulator.auth_url}/soap/"


def test_each_token_request_is_logged_and_gets_a_new_token(
    http: httpx.Client, emulator: Emulator
) -> None:
    first = token_request(http, emulator).json()["access_token"]
    second = token_request(http, emulator).json()["access_token"]
    assert first != second
    assert emulator.app.log.token_requests == 2


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"client_secret": "wrong"}, id="wrong-secret"),
        pytest.param({"client_id": "wrong"}, id="wrong-id"),
        pytest.param({"client_secret": None}, id="no-secret"),
    ],
)
def test_wrong_credentials_get_401_invalid_client(
    http: httpx.Client, emulator: Emulator, changes: dict[str, Any]
) -> None:
    response = token_request(http, emulator, **changes)
    assert response.status_code == 401
    body = response.json()
    assert body["error"] == "invalid_client"
    assert body["error_description"].startswith("Client authentication failed.")
    assert body["error_uri"] == "https://developer.salesforce.com/docs"


def test_a_disabled_package_rejects_even_the_right_credentials(
    http: httpx.Client, emulator_factory: Callable[..., Emulator]
) -> None:
    emulator = emulator_factory(sizes=TINY, package_enabled=False)
    assert token_request(http, emulator).json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    ("changes", "status", "error"),
    [
        pytest.param({"grant_type": "password"}, 400, "unsupported_grant_type", id="grant-type"),
        pytest.param({"account_id": 999}, 400, "invalid_grant", id="unknown-account"),
        pytest.param({"scope": "email_write"}, 400, "invalid_scope", id="ungranted-scope"),
    ],
)
def test_other_oauth_errors(
    http: httpx.Client, emulator: Emulator, changes: dict[str, Any], status: int, error: str
) -> None:
    response = token_request(http, emulator, **changes)
    assert (response.status_code, response.json()["error"]) == (status, error)


def test_a_body_that_is_not_json_is_a_400(http: httpx.Client, emulator: Emulator) -> None:
    response = http.post(f"{emulator.auth_url}/v2/token", content=b"grant_type=client_credentials")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize("as_text", [False, True], ids=["int", "numeric-string"])
def test_account_id_chooses_the_business_unit(
    http: httpx.Client, emulator_factory: Callable[..., Emulator], as_text: bool
) -> None:
    emulator = emulator_factory(sizes=TINY, business_units=3)
    second = emulator.config.mids[1]
    session = Session(http, emulator, account_id=str(second) if as_text else second)
    served = {item["name"] for item in session.rest("hub/v1/campaigns").json()["items"]}
    expected = {row.fields.get("name") for row in emulator.app.unit(second).campaigns.values()}
    default = {row.fields.get("name") for row in emulator.app.unit().campaigns.values()}
    assert served == expected
    assert served != default


def test_an_empty_scope_gives_a_token_with_no_scopes(
    http: httpx.Client, emulator: Emulator
) -> None:
    session = Session(http, emulator, scope="")
    assert (
        session.token["scope"] == "offline documents_and_images_read saved_content_read "
        "automations_read automations_execute audiences_read webhooks_read"
    )
    assert session.rest("hub/v1/campaigns").status_code == 403


def test_a_narrower_scope_is_honoured(http: httpx.Client, emulator: Emulator) -> None:
    session = Session(http, emulator, scope="campaign_read")
    assert session.rest("hub/v1/campaigns").status_code == 200
    assert session.rest("interaction/v1/interactions").status_code == 403


def test_an_expired_token_gets_401_not_authorized(
    http: httpx.Client, emulator_factory: Callable[..., Emulator], token_clock: TokenClock
) -> None:
    emulator = emulator_factory(sizes=TINY, token_ttl=1)
    session = Session(http, emulator)
    assert session.token["expires_in"] == 1
    assert session.rest("hub/v1/campaigns").status_code == 200
    token_clock.now += 1.1
    response = session.rest("hub/v1/campaigns")
    assert response.status_code == 401
    assert response.json() == {
        "message": "Not Authorized",
        "errorcode": 0,
        "documentation": "https://developer.salesforce.com/docs/atlas.en-us.mc-apis.meta/mc-apis/error-handling.htm",
    }


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="missing"),
        pytest.param("Bearer nonsense", id="unknown"),
        pytest.param("Basic abc", id="wrong-scheme"),
    ],
)
def test_rest_without_a_valid_token_is_401(
    http: httpx.Client, session: Session, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = http.get(session.token["rest_instance_url"] + "hub/v1/campaigns", headers=headers)
    assert response.status_code == 401
    assert response.json()["errorcode"] == 0


def test_rest_paths_live_under_the_rest_instance_url_only(
    http: httpx.Client, session: Session
) -> None:
    hand_built = http.get(
        f"{session.emulator.auth_url}/hub/v1/campaigns",
        headers={"Authorization": f"Bearer {session.access_token}"},
    )
    assert hand_built.status_code == 404
    assert session.rest("hub/v1/campaigns").status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(
            "errorcode", "Insufficient Privileges to complete this action.", id="with-errorcode"
        ),
        pytest.param(
            "message", "Insufficient privileges to complete this action.", id="message-only"
        ),
    ],
)
def test_a_missing_scope_gets_403_in_either_documented_shape(
    http: httpx.Client, emulator_factory: Callable[..., Emulator], body: str, message: str
) -> None:
    emulator = emulator_factory(sizes=TINY, scopes=("campaign_read",), forbidden_body=body)
    response = Session(http, emulator).rest("interaction/v1/interactions")
    assert response.status_code == 403
    assert response.json()["message"] == message
    assert ("errorcode" in response.json()) == (body == "errorcode")
    if body == "errorcode":
        assert response.json()["errorcode"] == 20002


def test_credentials_are_derived_from_the_seed() -> None:
    assert EmulatorConfig(seed=3).client_id == EmulatorConfig(seed=3).client_id
    assert EmulatorConfig(seed=3).client_secret != EmulatorConfig(seed=4).client_secret
    assert len(EmulatorConfig().subdomain) == 28
    assert EmulatorConfig().subdomain.startswith("mc")
