"""Import contracts generated from the README's "Layout" table: the table is the only place they are written.

Run by ``make lint`` (``python tests/contracts.py``); ``tests/test_contracts.py`` shows it catches what it claims to.
Each row of the table names folders or modules and what they may import. The check, over every ``.py`` file's AST
(top-level, lazy, ``TYPE_CHECKING`` and relative imports alike):

1. every top-level package or module of the repository has a row;
2. every import of another row's code is one the row's "may import" cell lists: a backticked name allows that
   module and everything below it (``connectors.masking`` allows that module, not ``connectors``); "nothing of
   ours" and "—" allow nothing; "everything" allows all; "everything below `X`" allows every row above X's row;
3. dependencies point one way: neither the imports between packages nor the table's own entries form a cycle;
4. each package's docstring (``__init__.py``) says "May import" followed by exactly the names of its row.
"""

from __future__ import annotations

import ast
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SKIP_DIRS = {".venv", "node_modules", "build", ".git", "var", "__pycache__"}
NOTHING = {"nothing of ours", "—", "-"}
_TOKEN = re.compile(r"`+([^`]+)`+")  # `name` in Markdown, ``name`` in docstrings


@dataclass
class Row:
    units: list[str]  # top-level package or module names the row is about (``server.py`` → ``server``)
    cell: str
    everything: bool = False
    allowed: set[str] = field(default_factory=set)  # dotted module names (a name allows what is below it)


def _unit(token: str) -> str:
    return token.removesuffix("/").removesuffix(".py").replace("/", ".")


def parse_allowed(cell: str) -> tuple[bool, set[str] | None]:
    """(everything, names) of a "may import" cell; names None for "everything below `X`" (resolved by row)."""
    text = cell.strip()
    if text in NOTHING:
        return False, set()
    if text.startswith("everything below"):
        return False, None
    if text == "everything":
        return True, set()
    names = {_unit(token) for token in _TOKEN.findall(text)}
    if not names:
        raise ValueError(f"a 'may import' cell names nothing the contracts can check: {cell!r}")
    return False, names


def parse_table(readme: str) -> list[Row]:
    """The rows of the first table after the "## Layout" heading, "may import" column resolved."""
    section = readme.split("\n## Layout\n", 1)
    if len(section) != 2:
        raise ValueError("README has no '## Layout' section")
    lines = [line.strip() for line in section[1].splitlines()]
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table.append([cell.strip() for cell in line.strip("|").split("|")])
    header, body = [cell.lower() for cell in table[0]], table[2:]
    folder, may = header.index("folder"), header.index("may import")
    rows = [Row([_unit(t) for t in _TOKEN.findall(cells[folder])], cells[may]) for cells in body]
    for row in rows:
        everything, names = parse_allowed(row.cell)
        if names is None:
            target = _unit(_TOKEN.findall(row.cell)[0])
            above = next(i for i, other in enumerate(rows) if target in other.units)
            names = {unit for other in rows[:above] for unit in other.units if other is not row}
        row.everything, row.allowed = everything, names
    return rows


def python_units(repo: Path) -> dict[str, list[Path]]:
    """Top-level package/module name → its .py files (a folder holding .py files is one unit)."""
    units: dict[str, list[Path]] = {}
    for folder, dirs, files in os.walk(repo):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))  # not node_modules' trees
        for file in sorted(f for f in files if f.endswith(".py")):
            path = Path(folder) / file
            units.setdefault(path.relative_to(repo).parts[0].removesuffix(".py"), []).append(path)
    return units


def module_name(repo: Path, path: Path) -> str:
    parts = list(path.relative_to(repo).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(repo: Path, path: Path, modules: set[str]) -> list[tuple[int, str]]:
    """(line, imported module) for every import in the file, relative ones resolved, ``from X import Y`` taken
    as ``X.Y`` where that is a module of the repository."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    own = module_name(repo, path)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".") if package else []
                anchor = anchor[: len(anchor) - (node.level - 1)] if node.level > 1 else anchor
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                candidate = f"{base}.{alias.name}" if base else alias.name
                found.append((node.lineno, candidate if candidate in modules else base))
    return found


def _allows(row: Row, module: str) -> bool:
    return row.everything or any(module == name or module.startswith(name + ".") for name in row.allowed)


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def _docstring_problem(repo: Path, unit: str, row: Row) -> str | None:
    init = repo / unit / "__init__.py"
    if not init.exists():
        return None
    doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
    match = re.search(r"May import\s+(.*?)(?:;|\.\s*$|\.\s+[A-Z]|\n\n|$)", doc, re.S)
    if not match:
        return f"{unit}/__init__.py: the docstring does not say 'May import …' (README: {row.cell})"
    said = " ".join(match.group(1).split())
    if said.startswith("everything below") or row.cell.startswith("everything below"):
        agrees = all(text.startswith("everything below") for text in (said, row.cell)) and (
            _TOKEN.findall(said)[:1] == _TOKEN.findall(row.cell)[:1]
        )
    else:
        try:
            agrees = parse_allowed(said) == (row.everything, row.allowed)
        except ValueError:
            agrees = False
    return None if agrees else f"{unit}/__init__.py: says it may import {said!r}, README's Layout table {row.cell!r}"


def check(repo: Path = REPO) -> list[str]:
    """Every breach of the contracts, as ``file:line: message`` lines; empty when the code keeps them."""
    rows = parse_table((repo / "README.md").read_text(encoding="utf-8"))
    row_of = {unit: row for row in rows for unit in row.units}
    units = python_units(repo)
    modules = {module_name(repo, path) for paths in units.values() for path in paths}
    problems = [
        f"{unit}: a top-level package or module with no row in README's Layout table"
        for unit in units
        if unit not in row_of
    ]
    actual: dict[str, set[str]] = {}
    for unit, paths in units.items():
        row = row_of.get(unit)
        for path in paths:
            for line, target in imports_of(repo, path, modules):
                other = target.split(".")[0]
                if other == unit or other not in units:  # its own code, or not ours
                    continue
                actual.setdefault(unit, set()).add(other)
                if row is not None and not _allows(row, target):
                    problems.append(
                        f"{path.relative_to(repo)}:{line}: {unit} imports {target}, which README's "
                        f"Layout table does not allow ({row.cell})"
                    )
        if row is not None and (problem := _docstring_problem(repo, unit, row)):
            problems.append(problem)
    if cycle := _cycle(actual):
        problems.append("imports between packages form a cycle: " + " → ".join(cycle))
    declared = {
        unit: {name.split(".")[0] for name in row.allowed} - {unit}
        for row in rows
        if not row.everything
        for unit in row.units
    }
    if cycle := _cycle(declared):
        problems.append("README's Layout table lets dependencies go round: " + " → ".join(cycle))
    return problems


def main() -> int:
    problems = check()
    for problem in problems:
        print(problem)
    if problems:
        print(f"contracts: {len(problems)} breach(es) of README's Layout table", file=sys.stderr)
        return 1
    print("contracts: every import keeps README's Layout table")
    return 0


if __name__ == "__main__":
    sys.exit(main())
