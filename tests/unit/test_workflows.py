"""The backends workflow parses, and runs the suite with each real tool it installs."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from envassay.command import run

WORKFLOW = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "backends.yml"


def load() -> dict[Any, Any]:
    data = yaml.safe_load(WORKFLOW.read_text())
    assert isinstance(data, dict)
    return data


def steps(job: dict[str, Any]) -> tuple[list[str], str]:
    uses = [step["uses"].split("@")[0] for step in job["steps"] if "uses" in step]
    runs = "\n".join(step.get("run", "") for step in job["steps"])
    return uses, runs


def test_each_job_installs_its_tool_and_requires_it() -> None:
    jobs = load()["jobs"]
    expected = {
        "micromamba": "mamba-org/setup-micromamba",
        "conda": "conda-incubator/setup-miniconda",
    }
    assert set(jobs) == set(expected)
    for name, action in expected.items():
        uses, runs = steps(jobs[name])
        assert action in uses and "actions/checkout" in uses
        required = [
            step["env"]["ENVASSAY_TEST_REQUIRE_TOOLS"]
            for step in jobs[name]["steps"]
            if "ENVASSAY_TEST_REQUIRE_TOOLS" in step.get("env", {})
        ]
        assert required and name in required[0].split(",")
        assert '-m nox -s tests -- -p no:cacheprovider -m "not docker"' in runs
        assert f"--backend {name}" in runs


@pytest.mark.skipif(shutil.which("actionlint") is None, reason="no actionlint executable on PATH")
def test_actionlint_is_happy() -> None:
    result = run(["actionlint", WORKFLOW])
    assert result.ok, result.describe()
