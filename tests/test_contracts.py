"""The import contracts of README's Layout table (tests/contracts.py): the repository keeps them, and each kind of
breach in a small made-up repository is caught."""

from __future__ import annotations

from pathlib import Path

from tests.contracts import REPO, check

TABLE = """# made up

## Layout

| folder | what lives there | may import |
|---|---|---|
| `base/` | foundations | nothing of ours |
| `low/` | reads things | `base` |
| `mid/` | decides | `low.masks`, `base` |
| `top/` | the rest | everything below `app.py` |
| `app.py` | wiring | everything |
"""


def _repo(tmp_path: Path, files: dict[str, str], table: str = TABLE) -> Path:
    (tmp_path / "README.md").write_text(table, encoding="utf-8")
    docstrings = {
        "base": "nothing of ours",
        "low": "``base``",
        "mid": "``low.masks``, ``base``",
        "top": "everything below ``app.py``",
    }
    for package, said in docstrings.items():
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text(f'"""A package. May import {said}."""\n', encoding="utf-8")
    (tmp_path / "low" / "masks.py").write_text("import base\n", encoding="utf-8")
    (tmp_path / "low" / "sql.py").write_text("from base import config\n", encoding="utf-8")
    (tmp_path / "base" / "config.py").write_text("import json\n", encoding="utf-8")
    (tmp_path / "app.py").write_text("import top\nimport mid\n", encoding="utf-8")
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path


def test_the_repository_keeps_readmes_layout_table():
    assert check(REPO) == []


def test_a_repository_that_keeps_the_table_passes(tmp_path):
    repo = _repo(
        tmp_path,
        {
            "mid/decide.py": "from low.masks import x\nfrom base.config import y\n",
            "top/run.py": "import mid.decide\nfrom low import sql\n",
        },
    )
    assert check(repo) == []


def test_an_import_the_row_does_not_list_is_a_breach_wherever_it_is_written(tmp_path):
    repo = _repo(
        tmp_path,
        {
            "base/config.py": "def later():\n    from low import sql\n",  # lazy, inside a function
            "low/sql.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import mid\n",
        },
    )
    problems = check(repo)
    assert any(p.startswith("base/config.py:2: base imports low.sql") for p in problems), problems
    assert any(p.startswith("low/sql.py:3: low imports mid") for p in problems), problems


def test_a_named_module_allows_that_module_only(tmp_path):
    repo = _repo(tmp_path, {"mid/decide.py": "from low import masks\nfrom low import sql\nimport low\n"})
    problems = check(repo)
    assert [p.split(": ", 1)[0] for p in problems] == ["mid/decide.py:2", "mid/decide.py:3"], problems
    assert "mid imports low.sql" in problems[0]
    assert "mid imports low," in problems[1]


def test_relative_imports_are_resolved(tmp_path):
    repo = _repo(
        tmp_path, {"base/deep/__init__.py": "", "base/deep/x.py": "from ... import top\nfrom .. import config\n"}
    )
    problems = check(repo)
    assert len(problems) == 1, problems
    assert problems[0].startswith("base/deep/x.py:1: base imports top,")


def test_a_package_with_no_row_is_a_breach(tmp_path):
    repo = _repo(tmp_path, {"extra/__init__.py": "", "extra/x.py": "import base\n"})
    assert check(repo) == ["extra: a top-level package or module with no row in README's Layout table"]


def test_imports_going_round_are_a_breach_even_where_each_is_allowed(tmp_path):
    table = TABLE + "| `tool.py` | a script | everything |\n"
    repo = _repo(tmp_path, {"tool.py": "import app\n", "app.py": "import tool\n"}, table)
    assert check(repo) == ["imports between packages form a cycle: app → tool → app"]


def test_a_table_whose_entries_go_round_is_a_breach(tmp_path):
    table = TABLE.replace("| `base/` | foundations | nothing of ours |", "| `base/` | foundations | `mid` |")
    repo = _repo(tmp_path, {"base/__init__.py": '"""May import ``mid``."""\n'}, table)
    assert check(repo) == ["README's Layout table lets dependencies go round: base → mid → base"]


def test_a_docstring_that_says_otherwise_is_a_breach(tmp_path):
    repo = _repo(
        tmp_path,
        {
            "low/__init__.py": '"""Reads things. May import ``base`` and ``mid``."""\n',
            "mid/__init__.py": '"""Decides; imports what it needs."""\n',
        },
    )
    problems = check(repo)
    assert len(problems) == 2, problems
    assert problems[0].startswith("low/__init__.py: says it may import")
    assert problems[1].startswith("mid/__init__.py: the docstring does not say 'May import")
