"""The README's table of contents lists every section, with anchors that GitHub generates."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def github_anchor(heading: str) -> str:
    """GitHub's heading id: lower case, punctuation dropped (hyphens and underscores kept), spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def headings(text: str) -> list[tuple[int, str]]:
    found, in_code = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and (match := re.match(r"(#{2,3}) (.+)", line)):
            found.append((len(match.group(1)), match.group(2)))
    return found


def test_table_of_contents_links_every_section():
    text = README.read_text()
    contents = text[text.index("## Contents") : text.index("\n## ", text.index("## Contents") + 1)]
    links = re.findall(r"\]\(#([^)]+)\)", contents)
    sections = [github_anchor(title) for level, title in headings(text) if level == 2 and title != "Contents"]
    assert [link for link in links if link in sections] == sections, (
        "README: the table of contents under `## Contents` must link every `## ` section in order"
    )
    anchors = {github_anchor(title) for _, title in headings(text)}
    assert set(links) <= anchors, f"README: contents links to missing sections {sorted(set(links) - anchors)}"
