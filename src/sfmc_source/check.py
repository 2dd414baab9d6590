"""``sfmc-source check``: do the credentials work, and does the package have each permission?

Each permission the selected collections need is proven by the cheapest request that needs
it, derived from the first spec row that needs it: one item of a REST listing (a campaign, a
journey) or a one-row SOAP Retrieve of one property (of List, Send, SentEvent). Then the
destination: reachable, and writable in the schema (a table created and rolled back), as
``dbt debug`` checks a connection.
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
from sfmc_source.specs import COLLECTIONS, Collection, Rest, Soap, selected

CREDENTIALS = "Credentials and subdomain"
DESTINATION = "Destination"


@dataclass(frozen=True)
class Finding:
    what: str
    ok: bool
    detail: str


def probe(collection: Collection) -> Callable[[SfmcClient], None]:
    """The cheapest request that needs ``collection``'s permission: one item of its REST
    listing, or a one-row Retrieve of one property of its SOAP object."""
    source = collection.source
    if isinstance(source, Rest):
        return lambda client: _one_item(client, source.path)
    assert isinstance(source, Soap)
    return lambda client: _one_row(client, source.object, collection.probe_property)


def _one_item(client: SfmcClient, path: str) -> None:
    client.get_json(path, {"$page": 1, "$pageSize": 1}, "check")


def _one_row(client: SfmcClient, object_type: str, key: str) -> None:
    envelope = soap.retrieve_envelope(TOKEN_PLACEHOLDER, object_type, [key], batch_size=1)
    what = f"SOAP Retrieve of {object_type}"
    content = client.soap_call("Retrieve", envelope, what, "check")
    page = soap.parse_retrieve(content, [key], object_type=object_type)
    soap.raise_for_status(page, object_type)


def probes() -> dict[str, Callable[[SfmcClient], None]]:
    """Each permission the collections need, in the order the rows first need it, proven by
    the first root collection that needs it (whose request takes no parent's id)."""
    found: dict[str, Callable[[SfmcClient], None]] = {}
    for collection in COLLECTIONS.values():
        if collection.permission not in found and collection.parent is None:
            found[collection.permission] = probe(collection)
    return found


def run_check(client: SfmcClient, collections: Sequence[str] | None = None) -> list[Finding]:
    """One finding for the credentials, then one per permission the collections (all by
    default) need, not tried if the credentials fail."""
    needed = {COLLECTIONS[name].permission for name in selected(collections)}
    try:
        client.auth.token()
    except AuthenticationError as exc:
        return [Finding(CREDENTIALS, False, str(exc))]
    findings = [Finding(CREDENTIALS, True, "a token was issued")]
    for permission, prove in probes().items():
        if permission not in needed:
            continue
        try:
            prove(client)
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
