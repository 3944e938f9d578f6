"""Reports of a real run with known failures: Markdown, JSON, $GITHUB_STEP_SUMMARY, the
terminal table, and `-j 2` giving exactly the verdicts of `-j 1`."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from envassay.command import CommandResult
from tests.conftest import Project
from tests.integration.envassay_cli import envassay

pytestmark = pytest.mark.channel

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "report.schema.json"


def junit_items(path: Path) -> dict[tuple[str, str], str]:
    """(env, item name) -> outcome, from pytest's JUnit XML (classname: envs.NAME.yml.TARGET)."""
    items = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome = next(
            (tag for tag in ("failure", "error", "skipped") if case.find(tag) is not None),
            "passed",
        )
        env = case.get("classname", "").split(".")[1]
        items[(env, case.get("name", ""))] = outcome
    return items


def run_check(
    project: Project, env: dict[str, str], label: str, *args: str
) -> tuple[CommandResult, dict[tuple[str, str], str], Path]:
    out = project.root / label
    out.mkdir()
    result = envassay(
        "check",
        "--junitxml",
        out / "junit.xml",
        "--report-md",
        out / "report.md",
        "--report-json",
        out / "report.json",
        *args,
        env=env,
        cwd=project.root,
    )
    assert (out / "junit.xml").is_file(), result.describe()
    return result, junit_items(out / "junit.xml"), out


def test_reports_of_a_run_with_known_failures(
    project: Project, envassay_env: dict[str, str]
) -> None:
    project.spec("rgood", ["python=3.11", "numpy", "pyyaml"])
    project.spec("rbroken", ["python=3.11", "brokenraise", "needsmissing", "pyyaml"])
    drifted = project.spec("rdrifted", ["python=3.11", "six"])
    # The drifted env: locked, created, then a conda package removed by hand.
    locked = envassay("lock", drifted, env=envassay_env, cwd=project.root)
    assert locked.ok, locked.describe()
    created = envassay("create", drifted, env=envassay_env, cwd=project.root)
    assert created.ok, created.describe()
    prefix = Path(created.stdout.strip().rsplit(": ", 1)[1])
    six = next((prefix / "conda-meta").glob("six-*.json"))
    for path in json.loads(six.read_text())["files"]:
        (prefix / path).unlink(missing_ok=True)
    six.unlink()

    summary = project.root / "step-summary.md"
    summary.write_text("## an earlier step\n")
    env = {**envassay_env, "GITHUB_STEP_SUMMARY": str(summary)}
    result, items, out = run_check(project, env, "parallel", "-j", "2")
    assert result.returncode == 1, result.describe()
    failures = sorted(key for key, outcome in items.items() if outcome == "failure")
    assert failures == [
        ("rbroken", "health[pip]"),
        ("rbroken", "import[brokenraise]"),
        ("rdrifted", "import[six]"),
        ("rdrifted", "lock[match]"),
        ("rdrifted", "pin[six]"),
    ]

    # Markdown: counts per env and target, failures as expected vs found, the drift table.
    markdown = (out / "report.md").read_text()
    assert markdown.startswith("## envassay report: checks FAILED")
    rows = [line for line in markdown.splitlines() if line.startswith("| r")]
    assert any(r.startswith("| rbroken | native | linux-64 | FAIL |") for r in rows), rows
    assert any(r.startswith("| rgood | native | linux-64 | pass |") for r in rows), rows
    assert (
        "| rbroken | native | `import[brokenraise]` | every module of the package imports "
        "| import brokenraise failed: ImportError: brokenraise is broken on purpose |" in markdown
    )
    assert "| rbroken | native | `health[pip]` | every requirement is met |" in markdown
    assert "notinstalled-dist" in markdown
    assert "### Drift: rdrifted · native (installed ≠ lock)" in markdown
    drift_row = next(line for line in markdown.splitlines() if line.startswith("| six | conda |"))
    assert drift_row.endswith("| (none) |")
    assert "<summary>rgood · native:" in markdown and "| `numpy` | numpy |" in markdown
    # The same Markdown, appended to the step summary.
    assert summary.read_text() == "## an earlier step\n" + markdown + "\n"

    # JSON: valid against its schema, and the same failures.
    document = json.loads((out / "report.json").read_text())
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(document, json.loads(SCHEMA.read_text()))
    assert document["ok"] is False
    runs = {run["env"]: run for run in document["runs"]}
    assert set(runs) == {"rgood", "rbroken", "rdrifted"}
    failed = sorted(
        (run["env"], c["name"])
        for run in document["runs"]
        for c in run["checks"]
        if c["outcome"] == "failed"
    )
    assert failed == failures
    assert runs["rdrifted"]["drift"][0]["package"] == "six"
    assert runs["rdrifted"]["drift"][0]["installed"] == "(none)"
    assert runs["rbroken"]["spec"] == "envs/rbroken.yml"
    assert document["summary"]["failed"] == 5
    assert sum(len(run["checks"]) for run in document["runs"]) == len(items)

    # The terminal table at the end of the run.
    output = result.stdout
    table = output[output.index("envassay summary") :].splitlines()
    assert any(line.split()[:2] == ["rbroken", "native"] and "FAILED" in line for line in table)
    assert any(line.split()[:2] == ["rgood", "native"] and line.endswith("ok") for line in table)
    # Parallel progress: whole lines, each labelled with its env and target.
    progress = [line for line in result.stderr.splitlines() if line.startswith("envassay: ")]
    assert progress, result.stderr
    assert all(line.startswith("envassay: [r") for line in progress), progress

    # -j 1 (now reusing every env) gives exactly the same verdicts.
    serial, serial_items, _ = run_check(project, envassay_env, "serial")
    assert serial.returncode == 1
    assert serial_items == items
