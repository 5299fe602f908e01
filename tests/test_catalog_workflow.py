"""The catalog kept by its departments (Art 12-15): one department's load or submission never touches another's;
submit → review (with the conformance findings, per field) → publish or return; retire, and a retired resource's
grants stop; every change a catalog version with author, time, reason and a field-level diff; every step a process
record; who may do what (attacks)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import connect, copy_var
from tests.test_cli import govshare, govshare_in_process

REPO = Path(__file__).resolve().parent.parent
DEMO_CATALOG = REPO / "catalog" / "demo"


def published(folder: Path) -> dict[str, str]:
    """Resource code -> provider of every published resource of the catalog in force."""
    with connect(folder / "var" / "platform.db") as conn:
        (document,) = conn.execute("SELECT document FROM catalog_versions ORDER BY version DESC LIMIT 1").fetchone()
    return {r["code"]: r["provider"] for r in json.loads(document)["resources"] if r["status"] == "published"}


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("catalog-workflow")
    built = govshare(folder, "demo")
    assert built.returncode == 0, built.stderr
    return folder


@pytest.fixture
def own_folder(demo_folder, tmp_path) -> Path:
    copy_var(demo_folder / "var", tmp_path / "var")
    return tmp_path


def department_file(tmp_path: Path, department: str, old: str = "", new: str = "") -> Path:
    text = (DEMO_CATALOG / f"{department}.toml").read_text(encoding="utf-8")
    if old:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = tmp_path / f"{department}-edited.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_loading_one_department_leaves_every_other_published(own_folder, tmp_path):
    before = published(own_folder)
    assert len(set(before.values())) > 1

    run = govshare_in_process(own_folder, "catalog", "load", str(department_file(tmp_path, "land")))

    assert run.returncode == 0, run.stderr
    assert published(own_folder) == before
