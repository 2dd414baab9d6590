"""The documents code cites are in the repository, and so is every heading it cites.

A citation is ``docs/<file>.md``, ``docs/<file>.md#<anchor>`` or ``README.md#<anchor>`` in
any file under src, tests, bench or recipes. An anchor is a heading as GitHub renders it:
lower-case, punctuation dropped, spaces turned into hyphens, ``-1``, ``-2`` ... on repeats.
Citations of documents outside the repository (``sfmc-api.md §…``, ``PRODUCT.md``) fail.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CITED_FROM = ("src", "tests", "bench", "recipes")
CITATION = re.compile(r"(?<![\w/.-])((?:docs/[\w-]+\.md)|README\.md)(?:#([\w-]+))?")
OUTSIDE = re.compile(r"(?<![\w/])(?:sfmc-api\.md|PRODUCT\.md)|§")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading's text."""
    text = re.sub(r"`([^`]*)`", r"\1", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(document: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    fenced = False
    for line in document.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        match = None if fenced else HEADING.match(line)
        if match:
            base = anchor(match.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def sources() -> list[Path]:
    return sorted(
        path
        for top in CITED_FROM
        if (ROOT / top).is_dir()
        for path in (ROOT / top).rglob("*")
        if path.is_file()
        and path.suffix in (".py", ".md", ".toml", ".service", ".timer", ".txt")
        and ".egg-info" not in str(path)
        and "__pycache__" not in path.parts
    )


def citations() -> list[tuple[str, int, str, str | None]]:
    found = []
    for path in sources():
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, 1):
            for match in CITATION.finditer(line):
                where = f"{path.relative_to(ROOT)}:{number}"
                found.append((where, number, match.group(1), match.group(2)))
    return found


def test_the_code_cites_the_repository_docs() -> None:
    assert any(cited.startswith("docs/") for _, _, cited, _ in citations())


@pytest.mark.parametrize(("where", "line", "document", "heading"), citations())
def test_a_citation_names_a_document_and_heading_that_exist(
    where: str, line: int, document: str, heading: str | None
) -> None:
    path = ROOT / document
    assert path.is_file(), f"{where} cites {document}, which is not in the repository"
    if heading is not None:
        assert heading in anchors(path), f"{where} cites {document}#{heading}: no such heading"


def test_no_citation_points_outside_the_repository() -> None:
    here = Path(__file__).resolve()
    outside = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sources()
        if path != here
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if OUTSIDE.search(CITATION.sub("", line))
    ]
    assert not outside, "citations of documents outside the repository:\n" + "\n".join(outside)


def test_anchors_follow_github() -> None:
    assert anchor("SOAP paging") == "soap-paging"
    assert anchor("DataExtension and DataExtensionField") == "dataextension-and-dataextensionfield"
    assert anchor("Token lifetime and refresh") == "token-lifetime-and-refresh"
    assert anchor("The `event_key`, explained!") == "the-event_key-explained"
