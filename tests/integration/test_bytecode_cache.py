"""The pyc cache in real creates: each noarch: python package is compiled once per
interpreter, and later envs of the same packages link its .pyc files in."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from envassay.command import run
from tests.conftest import Project
from tests.integration.envassay_cli import envassay

pytestmark = pytest.mark.channel

SP = "lib/python3.11/site-packages"
PIP_INIT = f"{SP}/pip/__pycache__/__init__.cpython-311.pyc"


@pytest.fixture
def own_store(envassay_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """A store (and so a pyc cache) of this test's own."""
    return {**envassay_env, "ENVASSAY_HOME": str(tmp_path / "store")}


def create(project: Project, env: dict[str, str], name: str, deps: list[str]) -> tuple[Path, str]:
    result = envassay("create", project.spec(name, deps), env=env, cwd=project.root)
    assert result.ok, result.describe()
    return Path(result.stdout.strip().rsplit(": ", 1)[1]), result.stderr


def entries(env: dict[str, str]) -> list[Path]:
    """Every entry of the store's pyc cache (temporary and trash directories too)."""
    return sorted(p for p in Path(env["ENVASSAY_HOME"]).glob("cache/pyc/v1/*/*") if p.is_dir())


def assert_imports_use_the_pycs(prefix: Path, modules: str) -> None:
    """Importing ``modules`` with PYTHONDONTWRITEBYTECODE=1 loads every site-packages module
    from a pyc the interpreter accepted (`python -v`: "X.pyc matches X.py"), none from
    source; and each pyc on disk is a checked-hash one of its source as it is now."""
    result = run(
        [prefix / "bin" / "python", "-v", "-c", f"import {modules}"],
        env={"PYTHONDONTWRITEBYTECODE": "1", "PATH": "/usr/bin:/bin"},
    )
    assert result.ok, result.describe()
    loaded = [line for line in result.stderr.splitlines() if f"/{SP}/" in line]
    from_source = [
        line for line in loaded if line.startswith("# code object from") and line.endswith(".py")
    ]
    assert from_source == []
    for module in modules.split(", "):
        top = module.split(".")[0]
        assert any(f"/{top}" in line and " matches " in line for line in loaded), module
    for pyc in (prefix / SP).rglob("*.pyc"):
        source = pyc.parent.parent / (pyc.name.split(".")[0] + ".py")
        header = pyc.read_bytes()[:16]
        assert int.from_bytes(header[4:8], "little") == 0b11, pyc
        assert header[8:] == importlib.util.source_hash(source.read_bytes()), pyc


def test_a_second_env_of_the_same_packages_links_their_pycs(
    project: Project, own_store: dict[str, str]
) -> None:
    first, said = create(project, own_store, "first", ["python=3.11", "pip", "six"])
    assert "compiling bytecode" in said
    assert {p.name.split("-")[0] for p in entries(own_store)} == {"pip", "six"}
    assert all((p / "manifest.json").is_file() for p in entries(own_store))

    second, said = create(project, own_store, "second", ["python=3.11", "pip", "six>=1"])
    assert second != first
    assert "compiling bytecode" not in said  # no interpreter was started to compile
    assert "bytecode: linked" in said and "of 2 package(s)" in said
    pyc = (second / PIP_INIT).stat()
    assert pyc.st_ino == (first / PIP_INIT).stat().st_ino and pyc.st_nlink == 3  # + the cache
    assert_imports_use_the_pycs(second, "six, pip._internal.cli.main")


def test_another_version_gets_its_own_entry(project: Project, own_store: dict[str, str]) -> None:
    one, _ = create(project, own_store, "one", ["python=3.11", "oldpkg=1.0"])
    two, said = create(project, own_store, "two", ["python=3.11", "oldpkg=2.0"])
    assert "compiling bytecode" in said
    assert [p.name.split("-")[1] for p in entries(own_store)] == ["1.0", "2.0"]
    for prefix in (one, two):
        assert_imports_use_the_pycs(prefix, "oldpkg")


def test_concurrent_creators_share_the_cache_safely(
    project: Project, own_store: dict[str, str]
) -> None:
    specs = [
        project.spec(name, ["python=3.11", "pip", "requests", six])
        for name, six in [("left", "six>=1"), ("right", "six<2")]
    ]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "envassay", "create", str(spec)],
            cwd=project.root,
            env=own_store,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for spec in specs
    ]
    outputs = [proc.communicate(timeout=600) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    names = [p.name for p in entries(own_store)]
    assert not [name for name in names if name.startswith(".")]  # no temporary left over
    assert {name.split("-")[0] for name in names} >= {"pip", "requests", "six", "urllib3"}
    assert all((p / "manifest.json").is_file() for p in entries(own_store))
    for out, _ in outputs:
        assert_imports_use_the_pycs(Path(out.strip().rsplit(": ", 1)[1]), "six, requests, pip")
    third, said = create(project, own_store, "third", ["python=3.11", "pip", "requests", "six"])
    assert "compiling bytecode" not in said
    assert_imports_use_the_pycs(third, "six, requests")
