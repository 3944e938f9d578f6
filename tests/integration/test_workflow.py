"""The GitHub Actions workflows pass actionlint, and envs.yml is wired as documented.

Where actionlint comes from: tests/actionlint.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.actionlint import Linter, find_linter

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
ENVS_WORKFLOW = WORKFLOWS / "envs.yml"


@pytest.fixture(scope="session")
def actionlint() -> Linter:
    return find_linter()


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
    plan = next(s for s in jobs["plan"]["steps"] if s.get("uses") == "./")  # action.yml
    assert plan["with"]["mode"] == "matrix"
    assert "github.base_ref" in plan["with"]["changed-since"]
    assert jobs["plan"]["outputs"]["matrix"] == f"${{{{ steps.{plan['id']}.outputs.matrix }}}}"
    assert jobs["plan"]["outputs"]["jobs"] == f"${{{{ steps.{plan['id']}.outputs.jobs }}}}"

    check = jobs["check"]
    assert check["needs"] == "plan"
    assert check["if"] == "needs.plan.outputs.jobs != '0'"
    assert check["runs-on"] == "${{ matrix.runs-on }}"
    assert check["strategy"]["matrix"] == "${{ fromJSON(needs.plan.outputs.matrix) }}"
    assert check["strategy"]["fail-fast"] is False
    steps = check["steps"]
    envassay = next(s for s in steps if s.get("uses") == "./")
    assert envassay["with"]["specs"] == "${{ matrix.spec }}"
    assert envassay["with"]["targets"] == "${{ matrix.target }}"
    reports = [envassay["with"][k] for k in ("junitxml", "report-md", "report-json")]
    assert all(r.startswith("reports/") for r in reports), reports
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert steps.index(upload) > steps.index(envassay)
    assert upload["if"] == "always()"
    assert upload["with"]["name"] == "${{ matrix.artifact }}"
    assert upload["with"]["path"] == "reports/"

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
