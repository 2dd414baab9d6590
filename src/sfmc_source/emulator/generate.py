"""Deterministic data for the emulator: realistic shapes, nasty values.

The same seed and sizes always give the same tenant. Values include what breaks connectors:
unicode and emoji, quotes, SQL-looking text, empty strings, nulls and missing keys, long
descriptions, numeric-looking strings, both documented shapes of goal ``arguments`` and
journeys without ``stats`` (docs/sfmc-api.md#goals, docs/sfmc-api.md#journeys).
"""

from __future__ import annotations

import copy
import random
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sfmc_source.emulator.data import BusinessUnit, Fields, Row
from sfmc_source.emulator.engagement import add_engagement
from sfmc_source.timefmt import NEVER, SYSTEM_TIME


@dataclass(frozen=True)
class Sizes:
    """How much data each business unit holds."""

    campaigns: int = 60
    assets_per_campaign: int = 3
    lists: int = 300
    journeys: int = 20
    versions_per_journey: int = 2
    goals_per_version: int = 2
    exits_per_version: int = 1
    subscribers: int = 100
    sends: int = 5
    recipients_per_send: int = 40
    emails: int = 20
    triggered_sends: int = 8


SCALES = {
    # A few rows of each collection: what start-up and a run's fixed costs take.
    "tiny": Sizes(
        campaigns=3,
        assets_per_campaign=2,
        lists=5,
        journeys=2,
        subscribers=10,
        sends=2,
        recipients_per_send=5,
        emails=3,
        triggered_sends=2,
    ),
    "small": Sizes(),
    "medium": Sizes(
        campaigns=1_000,
        assets_per_campaign=4,
        lists=20_000,
        journeys=300,
        versions_per_journey=3,
        subscribers=2_000,
        sends=20,
        recipients_per_send=500,
    ),
    "large": Sizes(
        campaigns=5_000,
        assets_per_campaign=5,
        lists=200_000,
        journeys=2_000,
        versions_per_journey=3,
        subscribers=20_000,
        sends=50,
        recipients_per_send=2_000,
    ),
    # One unit with a million tracking events (of which 650,000 SentEvents) and little else.
    "events": Sizes(
        campaigns=10,
        lists=20,
        journeys=5,
        subscribers=10_000,
        sends=270,
        recipients_per_send=2_500,
    ),
}


def sizes_for(scale: str) -> Sizes:
    """``tiny``, ``small``, ``medium``, ``large``, ``events`` or a whole number N: N times
    ``small``."""
    if scale in SCALES:
        return SCALES[scale]
    factor = int(scale)
    if factor < 0:
        raise ValueError("scale must be tiny, small, medium, large, events or a whole number ≥ 0")
    base = SCALES["small"]
    return replace(
        base,
        campaigns=base.campaigns * factor,
        lists=base.lists * factor,
        journeys=base.journeys * factor,
        subscribers=base.subscribers * factor,
        sends=base.sends * factor,
        emails=base.emails * factor,
        triggered_sends=base.triggered_sends * factor,
    )


NASTY = (
    "Spring Sale 🌸🌸",
    "Ünïcödé — “curly quotes” ‘single’ «guillemets»",
    'O\'Reilly "double" `back`',
    "Robert'); DROP TABLE campaigns;--",
    "1; SELECT * FROM lists WHERE 1=1",
    "",
    "  leading and trailing spaces  ",
    "line one\nline two\r\nline three",
    "日本語のキャンペーン",
    "مرحبا بالعالم",
    "<b>not html</b> & not &amp; an entity",
    "tab\tseparated\tvalue",
    "NULL",
    "null",
    "0042",
    "1e3",
    "true",
    "\\back\\slash\\",
    "💌" * 40,
    "Zalgo z̷̢a̵l̶g̸o̴",
)
ASSET_TYPES = (
    "EMAIL",
    "CMS_ASSET",
    "AUTOMATION_DEFINITION",
    "calendar_event",
    "TRIGGERED",
    "list",
    "group",
    "data_extension",
    "sendable_custom_object",
    "landing_page",
    "sms_message",
    "push_message",
)
# Asset types SFMC names by ``objectID`` (a GUID) and sends without an ``itemID``.
BY_OBJECT_ID = ("AUTOMATION_DEFINITION", "TRIGGERED")
LIST_TYPES = ("Public", "Private", "SalesForce", "GlobalUnsubscribe", "Master")
LIST_CLASSES = ("ExactTargetList", "PublicationList", "SuppressionList")
ZERO_GUID = "00000000-0000-0000-0000-000000000000"
# Instants are kept in UTC: aware datetimes sharing one tzinfo compare fast in filters.
EPOCH = datetime(2023, 1, 1, tzinfo=SYSTEM_TIME).astimezone(UTC)
HISTORY_END = datetime(2026, 6, 30, tzinfo=SYSTEM_TIME).astimezone(UTC)


def generate_unit(seed: int, mid: int, sizes: Sizes) -> BusinessUnit:
    """The data of one business unit, the same for the same seed, MID and sizes."""
    rng = random.Random(f"{seed}:{mid}")
    unit = BusinessUnit(mid=mid)
    asset_id = 0
    for i in range(sizes.campaigns):
        campaign = _campaign(rng, 1_000 + i)
        unit.campaigns[campaign["id"]] = Row(campaign)
        assets = []
        for _ in range(_around(rng, sizes.assets_per_campaign)):
            asset_id += 1
            assets.append(Row(_asset(rng, asset_id, campaign)))
        unit.assets[campaign["id"]] = assets
    for i in range(sizes.lists):
        row = _all_subscribers(rng, mid) if i == 0 else _list(rng, 2_000 + i, mid)
        unit.lists[row["ID"]] = Row(row)
    for i in range(sizes.journeys):
        versions: list[Row] = []
        count = max(1 if rng.random() < 0.1 else sizes.versions_per_journey, 1)
        for version in range(1, count + 1):
            versions.append(_journey_version(rng, i, versions, sizes, latest=version == count))
        unit.journeys[versions[0].fields["id"]] = versions
    categories = sorted({row.fields["Category"] for row in unit.lists.values()})
    for folder in _folders(random.Random(f"{seed}:{mid}:folders"), mid, categories):
        unit.folders[folder["ID"]] = Row(folder)
    add_emails(unit, random.Random(f"{seed}:{mid}:emails"), sizes)
    engagement = random.Random(f"{seed}:{mid}:engagement")
    add_engagement(
        unit,
        engagement,
        sizes.subscribers,
        sizes.sends,
        sizes.recipients_per_send,
        HISTORY_END - timedelta(days=730),
        HISTORY_END,
    )
    return unit


def new_journey_version(versions: list[Row], now: datetime, fields: Fields) -> Row:
    """The next version of a journey (or its first), created and modified now."""
    if versions:
        base = copy.deepcopy(versions[-1].fields)
        base.update(
            version=base["version"] + 1,
            definitionId=str(uuid.uuid4()),
            status="Draft",
            lastPublishedDate=NEVER,
        )
    else:
        journey_id = fields.get("id") or str(uuid.uuid4())
        base = {
            "id": journey_id,
            "key": f"journey-{journey_id[:8]}",
            "name": "New journey",
            "description": "",
            "version": 1,
            "workflowApiVersion": 1.0,
            "goals": [],
            "exits": [],
            "notifiers": [],
            "entryMode": "MultipleEntries",
            "definitionType": "Multistep",
            "channel": "email",
            "defaults": {},
            "metaData": {},
            "executionMode": "Production",
            "categoryId": 1,
            "status": "Draft",
            "definitionId": journey_id,
            "scheduledStatus": "Draft",
            "lastPublishedDate": NEVER,
        }
    return Row({**base, "createdDate": now, "modifiedDate": now, **fields})


def _around(rng: random.Random, mean: int) -> int:
    return rng.randint(max(mean - 2, 0), mean + 2) if mean else 0


def _instant(
    rng: random.Random, after: datetime | None = None, whole_seconds: bool = False
) -> datetime:
    """A moment between ``after`` (or the epoch) and the end of the generated history; one
    after ``after`` falls in the first eighth of the time left, so edits follow creation and
    no pile of rows shares the last instant."""
    start = after or EPOCH
    left = int((HISTORY_END - start).total_seconds())
    seconds = rng.randrange(max(left // (8 if after else 1), 1))
    millis = 0 if whole_seconds else rng.choice((0, rng.randrange(1_000), rng.randrange(100) * 10))
    return min(start + timedelta(seconds=seconds, milliseconds=millis), HISTORY_END)


def _guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _text(rng: random.Random, plain: str, nasty_rate: float = 0.15) -> str:
    return rng.choice(NASTY) if rng.random() < nasty_rate else plain


def _maybe(
    rng: random.Random,
    fields: Fields,
    key: str,
    value: Any,
    *,
    null: float = 0.05,
    missing: float = 0.05,
) -> None:
    """Set ``key`` to ``value``, or to null, or leave it out: all three happen in SFMC."""
    roll = rng.random()
    if roll < missing:
        return
    fields[key] = None if roll < missing + null else value


def _campaign(rng: random.Random, number: int) -> Fields:
    created = _instant(rng, whole_seconds=rng.random() < 0.7)
    modified = created - timedelta(seconds=1) if rng.random() < 0.05 else _instant(rng, created)
    fields: Fields = {
        "id": str(number),
        "createdDate": created,
        "modifiedDate": modified,
        "name": _text(
            rng, f"Campaign {number} {rng.choice(('Q1', 'Spring', 'Black Friday', 'Welcome'))}"
        ),
    }
    description = rng.choice(("Primary campaign", "", "x" * 512, "Notes: " + "lorem ipsum " * 20))
    _maybe(rng, fields, "description", _text(rng, description))
    _maybe(
        rng, fields, "campaignCode", rng.choice((f"c{number}", f"{number:06d}", "", "spring2019"))
    )
    _maybe(rng, fields, "color", f"{rng.randrange(0x1000000):06x}")
    _maybe(rng, fields, "favorite", rng.random() < 0.2, null=0.0, missing=0.03)
    return fields


def _asset(rng: random.Random, number: int, campaign: Fields) -> Fields:
    kind = rng.choice(ASSET_TYPES)
    item: int | str = (
        _guid(rng) if kind == "CMS_ASSET" and rng.random() < 0.5 else rng.randrange(1, 10**7)
    )
    created = _instant(rng, campaign["createdDate"])
    # An objectID is drawn from the number its itemID would have been: nothing else changes.
    by_object = kind in BY_OBJECT_ID
    named = {"objectID": _guid(random.Random(item))} if by_object else {"itemID": item}
    return {
        "id": str(number),
        "campaignId": int(campaign["id"]),
        "type": kind,
        **named,
        "createdDate": created,
    }


def _client(rng: random.Random, mid: int) -> Fields:
    fields: Fields = {
        "Client.ID": mid,
        "Client.PartnerClientKey": None,
        "Client.CreatedBy": rng.randrange(1, 10**6),
        "Client.ModifiedBy": rng.randrange(1, 10**6),
        "Client.EnterpriseID": 500_000_000 + mid % 1_000,
        "Client.CustomerKey": None,
        "Client.UserID": rng.randrange(1, 10**6),
        "Client.PartnerUserKey": None,
    }
    if rng.random() < 0.1:
        fields["Client.PartnerClientKey"] = _text(rng, f"partner-{rng.randrange(100)}", 0.3)
        fields["Client.CustomerKey"] = f"user-key-{rng.randrange(1000)}"
        fields["Client.PartnerUserKey"] = f"puk-{rng.randrange(1000)}"
    return fields


def _list(rng: random.Random, number: int, mid: int) -> Fields:
    created = _instant(rng)
    fields: Fields = {
        "ID": number,
        "ObjectID": _guid(rng),
        "PartnerKey": None,
        "CreatedDate": created,
        "ModifiedDate": _instant(rng, created),
        "CustomerKey": rng.choice((f"list-{number}", "", None, _guid(rng))),
        "ListName": _text(rng, f"Newsletter {number}"),
        "Description": _text(rng, rng.choice(("", "Weekly news", "y" * 1_000)), 0.2),
        "Category": rng.randrange(100, 10_000),
        "Type": rng.choice(LIST_TYPES),
        "ListClassification": rng.choice(LIST_CLASSES),
    }
    if rng.random() < 0.03:
        fields["ObjectID"] = None
    return {**fields, **_client(rng, mid)}


def _all_subscribers(rng: random.Random, mid: int) -> Fields:
    fields = _list(rng, 1_000, mid)
    category = fields["Category"]
    fields.update(
        ListName="All Subscribers",
        CustomerKey=f"All Subscribers - {category}",
        Description="Contains all subscribers",
        Type="Private",
        ListClassification="ExactTargetList",
    )
    return fields


def _journey_version(
    rng: random.Random, number: int, versions: list[Row], sizes: Sizes, *, latest: bool
) -> Row:
    version = len(versions) + 1
    if versions:
        first = versions[0].fields
        journey_id, key, name = first["id"], first["key"], first["name"]
        created = _instant(rng, versions[-1].fields["modifiedDate"])
    else:
        journey_id, created = _guid(rng), _instant(rng)
        key = rng.choice((f"journey-{number}", f"{number:05d}", _guid(rng), f"Journey_{number}_✉"))
        name = _text(rng, f"Welcome Journey {number}")
    status = rng.choice(("Published", "Draft", "ScheduledToPublish")) if latest else "Stopped"
    modified = _instant(rng, created)
    fields: Fields = {
        "id": journey_id,
        "key": key,
        "name": name,
        "lastPublishedDate": NEVER if status == "Draft" else modified,
        "description": _text(rng, rng.choice(("", "Onboarding flow", "z" * 600)), 0.2),
        "version": version,
        "workflowApiVersion": rng.choice((1, 1.0)),
        "createdDate": created,
        "modifiedDate": modified,
        "goals": _goals(rng, sizes.goals_per_version, is_exit=False),
        "exits": _goals(rng, sizes.exits_per_version, is_exit=True),
        "notifiers": [],
        "entryMode": rng.choice(
            ("MultipleEntries", "OnceAndDone", "SingleEntryAcrossAllVersions", "NotSet")
        ),
        "definitionType": rng.choice(("Multistep", "Multistep", "Quicksend", "Transactional")),
        "channel": rng.choice(("email", "")),
        "defaults": _defaults(rng),
        "metaData": {"isScheduleSet": rng.random() < 0.5},
        "executionMode": "Production",
        "categoryId": rng.randrange(10_000, 999_999),
        "status": status,
        "definitionId": journey_id if version == 1 else _guid(rng),
        "scheduledStatus": "Draft",
        # their own generator, so the rest of the tenant stays as it was
        "activities": _activities(random.Random(f"{journey_id}:{version}"), _guid(rng), _guid(rng)),
        "triggers": [{"id": _guid(rng), "key": "TRIGGER", "type": "EmailAudience"}],
    }
    if rng.random() < 0.8:
        current = rng.randrange(0, 100_000)
        fields["stats"] = {
            "currentPopulation": current,
            "cumulativePopulation": current + rng.randrange(0, 100_000),
            "metGoal": rng.randrange(0, 1_000),
            "metExitCriteria": rng.randrange(0, 100),
            "goalPerformance": round(rng.random() * 100, rng.choice((0, 1, 4))),
        }
    return Row(fields)


# Activity types as recorded (upper case) and as the docs' samples spell them
# (docs/sfmc-api.md#journey-activities).
ACTIVITY_TYPES = (
    "EMAILV2", "EMAILV2", "WAIT", "MULTICRITERIADECISION", "UPDATECONTACTDATA", "Wait",
    "EngagementDecision",
)  # fmt: skip
NO_THROTTLE = "1/1/0001 12:00:00 AM"


def _activities(rng: random.Random, *ids: str) -> list[Fields]:
    """A version's activities, a path of them (some versions have none); every key but
    ``key`` is sometimes missing."""
    kinds = [rng.choice(ACTIVITY_TYPES) for _ in range(rng.choice((0, 1, 2, 2, 3, 4)))]
    keys = [f"{kind.upper()}-{n}" for n, kind in enumerate(kinds, 1)]
    found = []
    for n, kind in enumerate(kinds):
        following = keys[n + 1] if n + 1 < len(keys) else None
        activity: Fields = {
            "id": ids[n] if n < len(ids) else _guid(rng),
            "key": keys[n],
            "name": _text(rng, rng.choice(("", f"Step {n + 1}")), 0.2),
            "description": "",
            "type": kind,
            "outcomes": _outcomes(rng, kind, following),
            "arguments": {},
            "configurationArguments": _configuration(rng, kind),
            "metaData": {"isConfigured": rng.random() < 0.9, "uiType": kind.upper()},
        }
        for optional in ("name", "description", "arguments", "metaData"):
            if rng.random() < 0.1:
                del activity[optional]
        found.append(activity)
    return found


def _outcomes(rng: random.Random, kind: str, following: str | None) -> list[Fields]:
    paths = 2 if kind == "MULTICRITERIADECISION" else 1
    outcomes = []
    for n in range(paths):
        outcome: Fields = {"key": _guid(rng), "arguments": {}, "metaData": {"invalid": False}}
        if paths > 1:
            outcome["metaData"] = {"label": f"Path {n + 1}", "skipI18n": True}
        if following is not None:
            outcome["next"] = following  # several outcomes to one step: a join
        outcomes.append(outcome)
    return outcomes


def _configuration(rng: random.Random, kind: str) -> Fields:
    if kind == "EMAILV2":
        config: Fields = {
            "applicationExtensionKey": "jb-email-activity",
            "isModified": False,
            "triggeredSendKey": f"ts-{rng.randrange(10_000)}",
            "triggeredSend": {
                "emailId": rng.randrange(1, 10**6),
                "emailSubject": _text(rng, "Welcome", 0.3),
                "priority": 4,
                "throttleOpens": NO_THROTTLE,
                "created": {"name": "", "date": ""},
            },
        }
        if rng.random() < 0.7:  # present once the journey was activated
            config["triggeredSendId"] = _guid(rng)
        return config
    if kind.upper() == "WAIT":
        return {"waitDuration": rng.randrange(1, 30), "waitUnit": rng.choice(("DAYS", "HOURS"))}
    if kind == "MULTICRITERIADECISION":
        return {"criteria": {"path-1": "<FilterDefinition/>"}, "schemaVersionId": "252"}
    if kind == "EngagementDecision":
        return {"refActivityCustomerKey": "EMAILV2-1", "statsTypeId": 2, "statusUrlId": 0}
    return {}


# Root folders: one per content type, as SFMC makes them (system ones have a CustomerKey and
# cannot be edited); mixed-case types as recorded (docs/sfmc-api.md#datafolder).
ROOT_FOLDERS = (
    (1, "my lists", "list", "", False),
    (2, "Data Extensions", "dataextension", "dataextension_default", False),
    (3, "my emails", "email", "", False),
    (4, "Shared Data Extensions", "shared_dataextension", "shared_dataextension_default", False),
    (5, "Hidden", "Hidden", "", False),
    (6, "Scripts", "SSJSActivity", "", True),
    (7, "Journeys", "journey", "", False),
)


def _folders(rng: random.Random, mid: int, list_categories: list[int]) -> list[Fields]:
    """The unit's folders: the roots, a folder for each list ``Category`` (nested under the
    list root or under one another) and a few folders of other types."""
    folders = [
        _folder(rng, mid, fid, name, kind, 0, key=key, editable=editable)
        for fid, name, kind, key, editable in ROOT_FOLDERS
    ]
    parents = {kind: [fid] for fid, _, kind, _, _ in ROOT_FOLDERS}
    for fid in list_categories:
        parent = rng.choice(parents["list"])
        folders.append(_folder(rng, mid, fid, f"Lists {fid}", "list", parent))
        parents["list"].append(fid)
    for fid in range(20_001, 20_013):
        kind = rng.choice(("dataextension", "email", "Hidden", "SSJSActivity"))
        parent = rng.choice(parents[kind])
        folders.append(_folder(rng, mid, fid, f"Folder {fid}", kind, parent))
        parents[kind].append(fid)
    return folders


def _folder(
    rng: random.Random,
    mid: int,
    fid: int,
    name: str,
    kind: str,
    parent: int,
    key: str = "",
    editable: bool = True,
) -> Fields:
    created = _instant(rng)
    return {
        "ID": fid,
        "Name": _text(rng, name),
        "Description": rng.choice(("", "", "Shared with the team")),
        "ContentType": kind,
        "ParentFolder.ID": parent,
        "IsActive": True,
        "IsEditable": editable,
        "AllowChildren": rng.random() < 0.95,
        "CustomerKey": key,
        "ObjectID": None,
        "CreatedDate": created,
        "ModifiedDate": _instant(rng, created),
        "Client.ID": mid,
    }


def _defaults(rng: random.Random) -> Fields:
    defaults: Fields = {}
    if rng.random() < 0.8:
        defaults["email"] = rng.choice(
            (
                ["{{Contact.Default.Email}}"],
                ['{{Event.DEAudience-1234."Email"}}', "{{Contact.Default.Email}}"],
            )
        )
    if rng.random() < 0.6:
        defaults["properties"] = {
            "analyticsTracking": {
                "enabled": rng.random() < 0.5,
                "analyticsType": rng.choice(("google", "adobe")),
                "urlDomainsToTrack": [],
            }
        }
    else:
        defaults["properties"] = {}
    return defaults


SCHEMA_ARGUMENTS = {
    "conditionOutcome": ("Boolean", False, "Out", False),
    "startActivityKey": ("Text", True, "In", False),
    "dequeueReason": ("Text", True, "In", False),
    "lastExecutedActivityKey": ("Text", True, "In", False),
    "filterResult": ("Boolean", True, "In", True),
}


def _goals(rng: random.Random, mean: int, *, is_exit: bool) -> list[Fields]:
    count = rng.randint(0, mean) if mean else 0
    prefix = "EXIT" if is_exit else "GOAL"
    return [_goal(rng, f"{prefix}-{n}" if n else prefix, is_exit) for n in range(count)]


def _goal(rng: random.Random, key: str, is_exit: bool) -> Fields:
    if rng.random() < 0.5:
        arguments: Fields = {
            "serializedObjectType": 11,
            "eventDefinitionId": _guid(rng),
            "eventDefinitionKey": f"ContactEvent-{_guid(rng)}",
            "dataExtensionId": _guid(rng),
        }
    else:
        arguments = {
            "startActivityKey": "{{Context.StartActivityKey}}",
            "dequeueReason": "{{Context.DequeueReason}}",
            "lastExecutedActivityKey": "{{Context.LastExecutedActivityKey}}",
            "filterResult": "true",
        }
    criteria = (
        '<FilterDefinition><ConditionSet Operator="AND" ConditionSetName="Individual '
        'Filter Grouping"><Condition Operator="IsNotNull"/></ConditionSet></FilterDefinition>'
    )
    goal: Fields = {
        "id": _guid(rng),
        "key": key,
        "name": _text(rng, "New Subscriber"),
        "description": _text(rng, "got a paid subscription"),
        "type": rng.choice(("ContactEvent", "Event", "ContactDecision")),
        "outcomes": [],
        "arguments": arguments,
        "configurationArguments": {
            "filterDefinitionId": rng.choice((ZERO_GUID, _guid(rng))),
            "criteria": rng.choice((criteria, "")),
            "schemaVersionId": rng.choice((218, "218", rng.randrange(1, 999))),
        },
        "metaData": _goal_metadata(rng, is_exit),
    }
    if rng.random() < 0.85:
        goal["schema"] = {
            "arguments": {
                name: {
                    "dataType": data_type,
                    "isNullable": nullable,
                    "direction": direction,
                    "readOnly": read_only,
                    "access": "Hidden",
                }
                for name, (data_type, nullable, direction, read_only) in SCHEMA_ARGUMENTS.items()
            }
        }
    for optional in ("description", "configurationArguments"):
        if rng.random() < 0.05:
            del goal[optional]
    return goal


def _goal_metadata(rng: random.Random, is_exit: bool) -> Fields:
    metadata: Fields = {
        "isExitCriteria": is_exit,
        "conversionUnit": rng.choice(("percentage", "wholenumber")),
        "conversionValue": str(rng.choice((30, 5, 100, 12.5))),
        "eventDefinitionId": _guid(rng).upper(),
        "eventDefinitionKey": f"ContactEvent-{_guid(rng)}",
        "configurationDescription": _text(rng, "SubscriberKey IsNotNull"),
        "chainType": rng.choice(("none", "None")),
        "configurationRequired": rng.random() < 0.3,
        "iconUrl": "/events/images/icon_journeyBuilder-event-person-blue.svg",
        "title": rng.choice(("", "Goal title")),
    }
    for key in ("conversionUnit", "eventDefinitionKey", "title", "chainType"):
        if rng.random() < 0.05:
            del metadata[key]
    return metadata


# ---- classic emails and triggered send definitions (docs/sfmc-api.md#email) ----------------

EMAIL_TYPES = ("Normal", "Text Only", "HTML", "Text", "normal")  # compared case-insensitively
EMAIL_STATUSES = ("New", "Active", "Inactive")
CHARACTER_SETS = ("utf-8", "iso-8859-1", "us-ascii", "")
CONTENT_CHECKS = ("Not Checked", "Checked", "Passed", "Failed")
TRIGGERED_SEND_STATUSES = ("New", "Inactive", "Active", "Canceled", "Deleted", "Moved")
PRIORITIES = ("4", "3", "5", "Medium")
SEND_CLASSIFICATIONS = ("Default Commercial", "Default Transactional", "transactional-ü")


def add_emails(unit: BusinessUnit, rng: random.Random, sizes: Sizes) -> None:
    """Classic emails, then triggered send definitions sending them (or a Content Builder
    email's legacy id, which no classic email has) to a list or, mostly, none."""
    for i in range(sizes.emails):
        row = _email(rng, 3_000 + i)
        unit.emails[row["ID"]] = Row(row)
    email_ids, list_ids = list(unit.emails), list(unit.lists)
    for i in range(sizes.triggered_sends):
        row = _triggered_send(rng, i, email_ids, list_ids)
        unit.triggered_sends[row["ObjectID"]] = Row(row)


def email_body(rng: random.Random, number: int) -> str:
    """An HTML document with personalisation strings, entities and, now and then, size."""
    repeat = rng.choices((1, 20, 1_000), weights=(70, 28, 2))[0]
    filler = "<tr><td>Ünïcödé offer 🌸 &amp; more</td></tr>" * repeat
    return (
        f"<html><head><title>{number}</title></head><body>%%First Name%%, "
        f"{rng.choice(NASTY)}<table>{filler}</table>\r\n<![CDATA[ raw ]]></body></html>"
    )


def _email(rng: random.Random, number: int) -> Fields:
    created = _instant(rng)
    fields: Fields = {
        "ID": number,
        "PartnerKey": "",  # empty, not nil, on Email
        "ObjectID": None,
        "CreatedDate": created,
        "ModifiedDate": _instant(rng, created),
        "CustomerKey": rng.choice((_guid(rng), f"email-{number}", "")),
        "Name": _text(rng, f"Email {number}"),
        "Folder": "my emails",
        "CategoryID": rng.randrange(100, 10_000),
        "HTMLBody": email_body(rng, number),
        "TextBody": rng.choice(("", "", f"Hello %%First Name%%\nEmail {number}")),
        "Subject": _text(rng, f"Offers for you {number}"),
        "IsActive": rng.random() < 0.8,
        "IsHTMLPaste": rng.random() < 0.5,
        "Status": rng.choice(EMAIL_STATUSES),
        "EmailType": rng.choice(EMAIL_TYPES),
        "CharacterSet": rng.choice(CHARACTER_SETS),
        "HasDynamicSubjectLine": rng.random() < 0.2,
        "ContentCheckStatus": rng.choice(CONTENT_CHECKS),
        "PreHeader": "",
    }
    for key in ("TextBody", "CategoryID", "Subject", "CharacterSet", "HTMLBody"):
        if rng.random() < 0.05:
            fields[key] = None
    return fields


def _triggered_send(
    rng: random.Random, number: int, email_ids: list[int], list_ids: list[int]
) -> Fields:
    created = _instant(rng, whole_seconds=True)
    legacy_id = rng.randrange(100_000, 999_999)  # a Content Builder email's
    fields: Fields = {
        "ObjectID": _guid(rng),
        "CreatedDate": created,
        "ModifiedDate": rng.choice((created, _instant(rng, created))),
        "CustomerKey": rng.choice((f"ts-{number}", _guid(rng)[:36], "")),
        "TestEmailAddr": rng.choice(("", "qa@example.com")),
        "IsPlatformObject": False,
        "Name": _text(rng, f"Triggered send {number}"),
        "Description": _text(rng, rng.choice(("", "Welcome email"))),
        "Keyword": "",
        "CategoryID": rng.randrange(100, 10_000),
        "SendClassification.CustomerKey": rng.choice(SEND_CLASSIFICATIONS),
        "SendClassification.ObjectID": _guid(rng),
        "FromName": "Example",
        "FromAddress": "news@example.com",
        "TriggeredSendType": "Continuous",
        "TriggeredSendStatus": rng.choice(TRIGGERED_SEND_STATUSES),
        "Email.ID": rng.choice(email_ids) if email_ids and rng.random() < 0.7 else legacy_id,
        "List.ID": rng.choice(list_ids) if list_ids and rng.random() < 0.2 else None,
        "EmailSubject": _text(rng, "Welcome"),
        "Priority": rng.choice(PRIORITIES),
    }
    if rng.random() < 0.1:
        fields["SendClassification.CustomerKey"] = None
    return fields
