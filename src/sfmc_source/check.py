"""``sfmc-source check``: do the credentials work, and does the package have each permission?

Each permission the selected collections need (the seed's table, then the engagement data's)
is proven by the cheapest request that needs it: one campaign, one journey, a one-row SOAP
Retrieve of List, of Send and of SentEvent. Then the destination: reachable, and writable in
the schema (a table created and rolled back), as ``dbt debug`` checks a connection.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sfmc_source import soap
from sfmc_source.auth import TOKEN_PLACEHOLDER
from sfmc_source.client import SfmcClient
from sfmc_source.destination import Warehouse
from sfmc_source.errors import AuthenticationError, PermissionDenied, SfmcError, root_cause
from sfmc_source.redaction import redact
from sfmc_source.specs import COLLECTIONS, CONTACTS, EMAIL, HUB, JOURNEYS, TRACKING, selected

CREDENTIALS = "Credentials and subdomain"
DESTINATION = "Destination"


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


def run_check(client: SfmcClient, collections: Sequence[str] | None = None) -> list[Finding]:
    """One finding for the credentials, then one per permission the collections (all by
    default) need, not tried if the credentials fail."""
    needed = {COLLECTIONS[name].permission for name in selected(collections)}
    try:
        client.auth.token()
    except AuthenticationError as exc:
        return [Finding(CREDENTIALS, False, str(exc))]
    findings = [Finding(CREDENTIALS, True, "a token was issued")]
    for permission, probe in PROBES:
        if permission not in needed:
            continue
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


def check_destination(warehouse: Warehouse, schema: str) -> Finding:
    """Can a sync write there? Creates the schema and a table in a transaction it rolls back,
    as a sync would; a DuckDB file not made yet only needs a directory to be made in."""
    where = f"{warehouse.display}, schema {schema}"
    try:
        warehouse.require_directory()
        warehouse.check_names(schema)
        if warehouse.path is not None and not warehouse.path.exists():
            if not os.access(warehouse.path.parent, os.W_OK):
                return Finding(DESTINATION, False, f"{where}: cannot create files in its directory")
            return Finding(DESTINATION, True, f"{where}: the first sync creates the file")
        with warehouse.sql(schema) as query:
            for statement in _WRITE_PROBE:
                query(statement.format(schema=schema))
    except Exception as exc:
        detail = str(exc) if isinstance(exc, SfmcError) else root_cause(exc)
        return Finding(DESTINATION, False, redact(f"{where}: {detail}", warehouse.secrets()))
    return Finding(DESTINATION, True, f"{where}: reachable and writable")


_WRITE_PROBE = (
    "BEGIN",
    'CREATE SCHEMA IF NOT EXISTS "{schema}"',
    'CREATE TABLE "{schema}"."_sfmc_source_check" (checked INTEGER)',
    "ROLLBACK",
)


def exit_code(findings: list[Finding]) -> int:
    if not findings[0].ok:
        return 3
    return 0 if all(f.ok for f in findings) else 1
