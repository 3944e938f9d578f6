"""`envassay envs list|prune` over a real store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Project
from tests.integration.envassay_cli import envassay

pytestmark = pytest.mark.channel


def test_list_and_prune(project: Project, tmp_path: Path) -> None:
    env = {"ENVASSAY_HOME": str(tmp_path / "store"), "PATH": "/usr/bin:/bin"}
    kept = project.spec("kept", ["python=3.11", "six"])
    gone = project.spec("gone", ["python=3.11", "idna"])
    for spec in (kept, gone):
        assert envassay("create", spec, env=env, cwd=project.root).ok
    (tmp_path / "store" / "envs" / "not-ours").mkdir()  # a folder envassay did not make

    listed = json.loads(envassay("envs", "list", "--json", env=env, cwd=project.root).stdout)
    assert sorted((e.get("name", ""), e["complete"]) for e in listed) == [
        ("", False),
        ("gone", True),
        ("kept", True),
    ]
    text = envassay("envs", "list", env=env, cwd=project.root).stdout
    assert "FOREIGN" in text and "MB" in text

    gone.unlink()
    pruned = envassay("envs", "prune", env=env, cwd=project.root)
    assert pruned.ok and "1 environment(s) removed" in pruned.stdout
    assert "refused not-ours: not made by envassay" in pruned.stdout
    (tmp_path / "store" / "envs" / "not-ours").rmdir()
    listed = json.loads(envassay("envs", "list", "--json", env=env, cwd=project.root).stdout)
    assert [e["name"] for e in listed] == ["kept"]

    assert (
        "1 environment(s) removed"
        in envassay("envs", "prune", "--all", env=env, cwd=project.root).stdout
    )
