"""docs/ops-guide-traceability.md references only tests that exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCUMENT = ROOT / "docs" / "ops-guide-traceability.md"


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_")
    }


def test_every_referenced_test_exists() -> None:
    references = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", DOCUMENT.read_text())
    assert len(references) >= 40
    missing = [
        f"{path}::{name}"
        for path, name in references
        if not (ROOT / path).is_file() or name not in _test_names(ROOT / path)
    ]
    assert missing == [], f"docs/ops-guide-traceability.md references tests that do not exist: {missing}"


def test_the_readme_links_the_traceability_document_not_the_outside_guide() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "(docs/ops-guide-traceability.md)" in readme
    assert "../shared/" not in readme
