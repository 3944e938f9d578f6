"""What ships: the wheel and the sdist built from this tree hold the envassay package (with
its assets) and none of the test support (src/envassay_testing), which only a clone's
editable install provides."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD_SDIST = "from setuptools import build_meta as b; import sys; b.build_sdist(sys.argv[1])"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of what setuptools reads (a build writes build/ and egg-info beside it)."""
    copy = tmp_path_factory.mktemp("tree")
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(ROOT / "src", copy / "src", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, copy / name)
    return copy


def _built(directory: Path, pattern: str) -> Path:
    (path,) = directory.glob(pattern)
    return path


def _assert_ships_envassay_only(names: list[str]) -> None:
    assert any(name.endswith("envassay/cli.py") for name in names), names
    assert any(name.endswith("envassay/py.typed") for name in names), names
    assert any(name.endswith("envassay/assets/create.sh") for name in names), names
    assert not [name for name in names if "envassay_testing" in name]
    assert not [name for name in names if "/testing/" in name]


def test_the_wheel_holds_envassay_and_no_test_support(tree: Path, tmp_path: Path) -> None:
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run([*pip, "--wheel-dir", str(tmp_path), str(tree)], check=True, timeout=300)
    with zipfile.ZipFile(_built(tmp_path, "envassay-*.whl")) as wheel:
        names = wheel.namelist()
        top_level = next(n for n in names if n.endswith(".dist-info/top_level.txt"))
        assert wheel.read(top_level).decode().split() == ["envassay"]
    _assert_ships_envassay_only(names)


def test_the_sdist_holds_envassay_and_no_test_support(tree: Path, tmp_path: Path) -> None:
    argv = [sys.executable, "-c", BUILD_SDIST, str(tmp_path)]
    subprocess.run(argv, cwd=tree, check=True, timeout=300, capture_output=True)
    with tarfile.open(_built(tmp_path, "envassay-*.tar.gz")) as sdist:
        names = sdist.getnames()
    _assert_ships_envassay_only(names)
