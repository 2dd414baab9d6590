"""The emulator's Email and TriggeredSendDefinition as docs/sfmc-api.md#email and
docs/sfmc-api.md#triggeredsenddefinition record them, read off a real socket with lxml."""

from __future__ import annotations

from lxml import etree

from sfmc_source.timefmt import format_system_time
from tests.conftest import Session
from tests.emulator.test_soap import (
    NS,
    XSI_NIL,
    filter_xml,
    local,
    result_elements,
    simple,
    status,
)

TSD = "TriggeredSendDefinition"


def children(element: etree._Element) -> list[tuple[str, bool]]:
    """Each child's tag, and whether it is nil."""
    return [(local(child), child.get(XSI_NIL) == "true") for child in element]


def test_a_definition_names_its_email_in_a_reference_with_nil_partner_key_and_object_id(
    session: Session,
) -> None:
    response = session.retrieve(TSD, ["ObjectID", "Email.ID", "List.ID", "TestEmailAddr"])
    assert status(response) == "OK"
    stored = session.emulator.app.unit().triggered_sends
    elements = result_elements(response)
    assert len(elements) == len(stored)
    for result in elements:
        row = stored[result.findtext("p:ObjectID", namespaces=NS) or ""].fields
        email = result.find("p:Email", NS)
        assert email is not None
        assert children(email) == [("PartnerKey", True), ("ID", False), ("ObjectID", True)]
        assert email.findtext("p:ID", namespaces=NS) == str(row["Email.ID"])
        # a null List.ID leaves <List> out; TestEmailAddr comes as a pair
        assert (result.find("p:List", NS) is None) == (row["List.ID"] is None)
        pair = result.find("p:PartnerProperties", NS)
        assert pair is not None and pair.findtext("p:Name", namespaces=NS) == "TestEmailAddr"
        assert (pair.findtext("p:Value", namespaces=NS) or "") == row["TestEmailAddr"]
        assert result.find("p:ID", NS) is None


def test_an_email_has_a_nil_object_id_and_filters_on_modified_date(session: Session) -> None:
    emails = session.emulator.app.unit().emails
    modified = sorted(r.fields["ModifiedDate"] for r in emails.values())
    since = modified[len(modified) // 2]
    where = filter_xml(
        simple("ModifiedDate", "greaterThanOrEqual", format_system_time(since), date=True)
    )

    response = session.retrieve("Email", ["ID", "ModifiedDate"], where)

    assert status(response) == "OK"
    found = result_elements(response)
    ids = sorted(int(r.findtext("p:ID", namespaces=NS) or "") for r in found)
    assert ids == sorted(i for i, r in emails.items() if r.fields["ModifiedDate"] >= since)
    for result in found:
        object_id = result.find("p:ObjectID", NS)
        assert object_id is not None and object_id.get(XSI_NIL) == "true"


def test_a_deleted_definition_is_a_tombstone_unless_purged(session: Session) -> None:
    mutate, unit = session.emulator.app.mutate, session.emulator.app.unit()
    tombstone, purged = sorted(unit.triggered_sends)[:2]
    mutate.delete("triggered_sends", tombstone)
    mutate.delete("triggered_sends", purged, purge=True)

    response = session.retrieve(TSD, ["ObjectID", "TriggeredSendStatus"])

    rows = {
        r.findtext("p:ObjectID", namespaces=NS): r.findtext("p:TriggeredSendStatus", namespaces=NS)
        for r in result_elements(response)
    }
    assert rows[tombstone] == "Deleted"
    assert purged not in rows
