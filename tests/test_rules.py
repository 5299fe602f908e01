"""docs/rules.md cannot drift: every test it names exists, every operative article has its row, every row of an
implemented article names its tests, and no row says its tests are still pending."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.conftest import REPO

RULES = REPO / "docs" / "rules.md"
# The operative articles of the measures (the seed) every one of which must have a row.
OPERATIVE = (5, 9, 12, 13, 14, 15, 16, 17, 19, 20, 21, 22, 23, 24, 27, 28)

REFERENCE = re.compile(r"`(tests/[\w/.-]+?)(?:::(\w+))?`")
# A row written before the tests that prove it were merged: `(pending)`, `(pending: issue 14 workflow)`.
PENDING = re.compile(r"\(pending\b[^)]*\)")
ROW = re.compile(r"^\| Art (\d+)\b", re.MULTILINE)
# Below this heading the articles not implemented are listed with why: their rows name no test.
NOT_IMPLEMENTED = "### Articles the platform does not implement"


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_")
    }


def problems(text: str, repo: Path = REPO) -> list[str]:
    """What is wrong with a rules document ``text``: references to tests or files that do not exist, pending markers
    in place of tests, operative articles without a row, rows of implemented articles naming no test."""
    found: list[str] = []
    names: dict[Path, set[str]] = {}
    for path_text, name in REFERENCE.findall(text):
        path = repo / path_text
        if not path.is_file():
            found.append(f"{path_text}: no such file")
            continue
        if name:
            if path not in names:
                names[path] = _test_names(path)
            if name not in names[path]:
                found.append(f"{path_text}::{name}: no such test")
    found += [f"{marker}: name the tests that prove the row" for marker in PENDING.findall(text)]
    rows = [int(n) for n in ROW.findall(text)]
    found += [f"Art {n}: no row" for n in OPERATIVE if n not in rows]
    for line in text.partition(NOT_IMPLEMENTED)[0].splitlines():
        if ROW.match(line) and not REFERENCE.search(line):
            found.append(f"{line.split('|')[1].strip()}: names no test")
    return found


def test_every_test_docs_rules_names_exists_and_every_operative_article_has_a_row():
    assert problems(RULES.read_text(encoding="utf-8")) == []


def test_the_check_finds_a_missing_test_a_missing_file_a_pending_marker_and_a_missing_article():
    text = RULES.read_text(encoding="utf-8")
    broken = (
        text.replace("test_a_refusal_needs_a_reason`", "test_a_refusal_needs_no_reason`", 1)
        .replace("`tests/cases/share-types.toml`", "`tests/cases/no-such-cases.toml`", 1)
        .replace(
            "`tests/test_catalog_guide.py::test_org_codes",
            "(pending: issue 14 guide), `tests/test_catalog_guide.py::test_org_codes",
            1,
        )
        .replace("| Art 21 |", "| Article twenty-one |", 1)
    )
    assert problems(broken) == [
        "tests/cases/no-such-cases.toml: no such file",
        "tests/test_applications.py::test_a_refusal_needs_no_reason: no such test",
        "(pending: issue 14 guide): name the tests that prove the row",
        "Art 21: no row",
    ]


def test_a_row_without_a_test_is_found_even_with_a_pending_marker():
    row = "| Art 5 | share types | decided | — | none yet |\n"
    assert "Art 5: names no test" in problems(row)
    pending = problems(row.replace("none yet", "(pending)"))
    assert "(pending): name the tests that prove the row" in pending and "Art 5: names no test" in pending
