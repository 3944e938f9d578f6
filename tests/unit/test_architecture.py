"""The layers of docs/architecture.md hold: import-linter's contracts (pyproject
[tool.importlinter], run by `nox -s lint`) pass on the tree, and fail on a copy of it
with one import that goes the wrong way, closes a cycle or makes a check gather facts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("importlinter")

ROOT = Path(__file__).resolve().parents[2]
LINT = "import sys; from importlinter.cli import lint_imports as l; sys.exit(l(no_cache=True))"


def lint(root: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports over the package under ``root / "src"``, with the project's contracts."""
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    return subprocess.run(
        [sys.executable, "-c", LINT], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )


def copy_with(tmp_path: Path, module: str, line: str) -> Path:
    """A copy of src/ (envassay and envassay_testing) and pyproject.toml with ``line`` added
    to ``module``."""
    for package in ("envassay", "envassay_testing"):
        shutil.copytree(ROOT / "src" / package, tmp_path / "src" / package)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    path = tmp_path / "src" / "envassay" / module
    path.write_text(path.read_text() + f"\n{line}\n")
    return tmp_path


def test_the_tree_keeps_the_contracts() -> None:
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


def test_an_earlier_stage_importing_a_later_one_breaks_the_layers(tmp_path: Path) -> None:
    # The parse stage reaching into the run stage (as spec.py once reached into lock.py).
    root = copy_with(tmp_path, "spec/config.py", "from envassay.run import session  # noqa")
    result = lint(root)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "later stages import earlier ones and the base, never the reverse BROKEN" in (
        result.stdout
    )
    assert "envassay.spec.config -> envassay.run.session" in result.stdout


def test_envassay_importing_its_test_support_breaks_the_layers(tmp_path: Path) -> None:
    # envassay_testing is not shipped: an import of it from envassay would fail when installed.
    root = copy_with(tmp_path, "cli.py", "from envassay_testing import channel  # noqa")
    result = lint(root)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "envassay.cli -> envassay_testing.channel" in result.stdout


def test_an_import_that_closes_a_cycle_breaks_acyclic(tmp_path: Path) -> None:
    # session imports report; report importing session closes a cycle inside run/.
    root = copy_with(tmp_path, "run/report.py", "from envassay.run import session  # noqa")
    result = lint(root)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "no import cycle between the modules of any package BROKEN" in result.stdout
    assert "later stages import earlier ones and the base, never the reverse KEPT" in (
        result.stdout
    )


def test_a_check_running_a_command_breaks_pure_checks(tmp_path: Path) -> None:
    # A check gathering facts itself (as checks/gpu.py once ran the GPU probe).
    root = copy_with(tmp_path, "checks/gpu.py", "from envassay import command  # noqa")
    result = lint(root)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "checks take facts and return data" in result.stdout
    assert "envassay.checks.gpu -> envassay.command" in result.stdout
