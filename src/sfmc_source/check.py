"""``sfmc-source check``: do the credentials work, and does the package have each permission?

Each permission the collections need (the seed's table, then the engagement data's) is proven
by the cheapest request that needs it: one campaign, one journey, a one-row SOAP Retrieve of
List, of Send and of SentEvent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sfmc_source import soap
from sfmc_source.auth import TOKEN_PLACEHOLDER
from sfmc_source.client import SfmcClient
from sfmc_source.errors import AuthenticationError, PermissionDenied, SfmcError
from sfmc_source.specs import CONTACTS, EMAIL, HUB, JOURNEYS, TRACKING

CREDENTIALS = "Credentials and subdomain"


@dataclass(frozen=True)
class Finding:
    what: str
    ok: bool
    detail: str


def _campaigns(client: SfmcClient) -> None:
    client.get_json("hub/v1/campaigns", {"$page": 1, "$pageSize": 1}, "check")


def _journeys(client: SfmcClient) -> None:
    client.get_json("interaction/v1/interactions", {"$page": 1, "$pageSize": 1}, "check")


def _one_row(object_type: str, key: str = "ID") -> Callable[[SfmcClient], None]:
    def probe(client: SfmcClient) -> None:
        envelope = soap.retrieve_envelope(TOKEN_PLACEHOLDER, object_type, [key], batch_size=1)
        what = f"SOAP Retrieve of {object_type}"
        content = client.soap_call("Retrieve", envelope, what, "check")
        page = soap.parse_retrieve(content, [key], object_type=object_type)
        soap.raise_for_status(page, object_type)

    return probe


PROBES: tuple[tuple[str, Callable[[SfmcClient], None]], ...] = (
    (JOURNEYS, _journeys),
    (CONTACTS, _one_row("List")),
    (HUB, _campaigns),
    (EMAIL, _one_row("Send")),
    (TRACKING, _one_row("SentEvent", "SendID")),
)


def run_check(client: SfmcClient) -> list[Finding]:
    """One finding for the credentials, then one per permission (not tried if they fail)."""
    try:
        client.auth.token()
    except AuthenticationError as exc:
        return [Finding(CREDENTIALS, False, str(exc))]
    findings = [Finding(CREDENTIALS, True, "a token was issued")]
    for permission, probe in PROBES:
        try:
            probe(client)
        except PermissionDenied:
            detail = f"missing: enable {permission} in Installed Packages"
            findings.append(Finding(permission, False, detail))
        except SfmcError as exc:
            findings.append(Finding(permission, False, f"could not check: {exc}"))
        else:
            findings.append(Finding(permission, True, "ok"))
    return findings


def exit_code(findings: list[Finding]) -> int:
    if not findings[0].ok:
        return 3
    return 0 if all(f.ok for f in findings) else 1
