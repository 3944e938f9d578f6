"""action.yml, the composite GitHub Action: well formed, linted, and run for real.

- Structure (no linter reads action metadata): every `inputs.X` it uses is declared and
  every declared input is used; every run step sets its shell and takes inputs through
  env, never spliced into the script; every `steps.ID.outputs.NAME` names an earlier
  step, which writes NAME; the outputs name existing steps. A workflow that `uses: ./`
  passes only declared inputs and reads only declared outputs.
- actionlint: the action's steps wrapped as a reusable workflow (its inputs as
  `workflow_call` inputs, so `inputs.X` is typed), README's example workflow, and this
  repository's workflows.
- Run: its steps' scripts run by bash as a runner runs them (`bash --noprofile --norc -eo
  pipefail`), with $GITHUB_OUTPUT, $GITHUB_STEP_SUMMARY and $RUNNER_TEMP, the expressions
  evaluated by a small evaluator that refuses what it does not know; envassay installed
  from this checkout as the action installs it, on projects over the local test channel.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from envassay.command import run
from tests.actionlint import Linter, find_linter

ROOT = Path(__file__).resolve().parents[2]
ACTION = ROOT / "action.yml"
WORKFLOWS = ROOT / ".github" / "workflows"
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.S)
INPUT_REF = re.compile(r"\binputs\.([A-Za-z0-9_-]+)")
STEP_REF = re.compile(r"\bsteps\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)")


def load_action() -> dict[str, Any]:
    action: dict[str, Any] = yaml.safe_load(ACTION.read_text())
    return action


def readme_workflow() -> str:
    """The workflow README's "Use it in your CI" shows (its first yaml block there)."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Use it in your CI") :]
    start = section.index("```yaml\n") + len("```yaml\n")
    return section[start : section.index("\n```", start)] + "\n"


def expressions(node: Any, key: str = "") -> Iterator[str]:
    """Every expression in ``node``: inside `${{ }}`, and each whole `if:` value."""
    if isinstance(node, Mapping):
        for k, v in node.items():
            yield from expressions(v, str(k))
    elif isinstance(node, list):
        for v in node:
            yield from expressions(v, key)
    elif isinstance(node, str):
        found = EXPRESSION.findall(node)
        yield from found
        if key == "if" and not found:
            yield node


def action_problems(action: Mapping[str, Any]) -> list[str]:
    problems = []
    runs = action.get("runs", {})
    if runs.get("using") != "composite":
        problems.append(f"runs.using is {runs.get('using')!r}, not composite")
    declared = dict(action.get("inputs", {}))
    steps = list(runs.get("steps", []))
    by_id = {step["id"]: step for step in steps if "id" in step}
    if len(by_id) != sum("id" in step for step in steps):
        problems.append("two steps share an id")
    used: set[str] = set()
    earlier: set[str] = set()
    for number, step in enumerate(steps, 1):
        where = f"step {number} ({step.get('id') or step.get('name') or step.get('uses')})"
        if ("run" in step) == ("uses" in step):
            problems.append(f"{where}: needs exactly one of run and uses")
        if "run" in step and "shell" not in step:
            problems.append(f"{where}: a run step without shell")
        if "${{" in step.get("run", ""):
            problems.append(f"{where}: an expression spliced into the script; pass it in env")
        for expression in expressions(step):
            for name in INPUT_REF.findall(expression):
                used.add(name)
                if name not in declared:
                    problems.append(f"{where}: inputs.{name} is not declared")
            for step_id, output in STEP_REF.findall(expression):
                if step_id not in earlier:
                    problems.append(f"{where}: steps.{step_id} is not an earlier step")
                elif not _writes(by_id[step_id], output):
                    problems.append(f"{where}: step {step_id} does not write {output}")
        earlier |= {step["id"]} if "id" in step else set()
    for name, output in action.get("outputs", {}).items():
        refs = STEP_REF.findall(str(output.get("value", "")))
        if not refs:
            problems.append(f"output {name}: its value names no step's output")
        for step_id, value in refs:
            if step_id not in by_id:
                problems.append(f"output {name}: steps.{step_id} is not a step")
            elif not _writes(by_id[step_id], value):
                problems.append(f"output {name}: step {step_id} does not write {value}")
    for name, spec in declared.items():
        if name not in used:
            problems.append(f"input {name} is declared but never used")
        if not spec.get("description"):
            problems.append(f"input {name} has no description")
    return problems


def _writes(step: Mapping[str, Any], output: str) -> bool:
    """A run step writes ``output`` to $GITHUB_OUTPUT; another action's outputs are its own."""
    script = step.get("run")
    if script is None:
        return True
    return "GITHUB_OUTPUT" in script and re.search(rf"""(^|[\s"']){re.escape(output)}=""", script)


def workflow_problems(workflow: Mapping[str, Any], action: Mapping[str, Any]) -> list[str]:
    """What a workflow's `uses: ./` steps pass and read, against action.yml."""
    problems = []
    inputs, outputs = action["inputs"], action["outputs"]
    for job_name, job in workflow["jobs"].items():
        local = {s["id"] for s in job.get("steps", []) if s.get("uses") == "./" and "id" in s}
        for step in job.get("steps", []):
            if step.get("uses") != "./":
                continue
            given = step.get("with", {})
            problems += [f"{job_name}: with {k}: not an input" for k in given if k not in inputs]
            for name, spec in inputs.items():
                if spec.get("required") and "default" not in spec and name not in given:
                    problems.append(f"{job_name}: required input {name} not given")
        for expression in expressions(job):
            for step_id, output in STEP_REF.findall(expression):
                if step_id in local and output not in outputs:
                    problems.append(f"{job_name}: steps.{step_id}.outputs.{output}: no such output")
    return problems


def load_workflow(text: str) -> dict[str, Any]:
    doc: dict[Any, Any] = yaml.safe_load(text)
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as True
    return doc


def wrapped(action: Mapping[str, Any]) -> str:
    """The action's steps as a reusable workflow, which actionlint can read."""
    inputs = {
        name: {"type": "string", "required": bool(spec.get("required")), "default": spec["default"]}
        for name, spec in action["inputs"].items()
    }
    outputs = {name: spec["value"] for name, spec in action["outputs"].items()}
    workflow = {
        "name": "action.yml, wrapped",
        "on": {
            "workflow_call": {
                "inputs": inputs,
                "outputs": {n: {"value": f"${{{{ jobs.action.outputs.{n} }}}}"} for n in outputs},
            }
        },
        "jobs": {
            "action": {
                "runs-on": "ubuntu-latest",
                "outputs": outputs,
                "steps": action["runs"]["steps"],
            }
        },
    }
    return yaml.safe_dump(workflow, sort_keys=False)


@pytest.fixture(scope="session")
def actionlint() -> Linter:
    return find_linter()


def test_the_action_is_well_formed() -> None:
    action = load_action()
    assert action_problems(action) == []
    assert {"mode", "specs", "targets", "gpu", "junitxml", "report-md", "report-json"} <= set(
        action["inputs"]
    )
    assert {"envassay-version", "changed-since"} <= set(action["inputs"])
    assert {"junitxml", "report-md", "report-json", "matrix", "jobs"} <= set(action["outputs"])
    steps = action["runs"]["steps"]
    # Uploads nothing; the step summary is envassay's own (the plugin appends its report).
    assert not any("upload-artifact" in s.get("uses", "") for s in steps)
    check = next(s for s in steps if s.get("id") == "check")
    assert "GITHUB_STEP_SUMMARY" not in check["run"]


def test_the_checker_catches_a_broken_action() -> None:
    broken = copy.deepcopy(load_action())
    steps = broken["runs"]["steps"]
    check = next(s for s in steps if s.get("id") == "check")
    del check["shell"]
    check["env"]["GPU"] = "${{ inputs.gpus }}"
    check["run"] += 'echo "${{ inputs.gpu }}"\n'
    broken["outputs"]["report-md"]["value"] = "${{ steps.chek.outputs.report-md }}"
    broken["outputs"]["jobs"]["value"] = "${{ steps.matrix.outputs.job-count }}"
    broken["inputs"]["unused"] = {"description": "nothing reads it", "default": ""}
    problems = "\n".join(action_problems(broken))
    for expected in (
        "step 5 (check): a run step without shell",
        "step 5 (check): inputs.gpus is not declared",
        "step 5 (check): an expression spliced into the script",
        "output report-md: steps.chek is not a step",
        "output jobs: step matrix does not write job-count",
        "input unused is declared but never used",
    ):
        assert expected in problems, problems


def test_workflows_using_the_action_pass_what_it_declares() -> None:
    action = load_action()
    users = {"envs.yml": (WORKFLOWS / "envs.yml").read_text(), "README": readme_workflow()}
    for name, text in users.items():
        assert "uses: ./" in text or "/envassay@" in text, name
        local = text.replace("uses: OWNER/envassay@v1", "uses: ./")
        assert workflow_problems(load_workflow(local), action) == [], name
    broken = (
        users["envs.yml"]
        .replace("specs: ${{", "spec: ${{")
        .replace("steps.plan.outputs.jobs", "steps.plan.outputs.job-count")
    )
    assert sorted(workflow_problems(load_workflow(broken), action)) == [
        "check: with spec: not an input",
        "plan: steps.plan.outputs.job-count: no such output",
    ]


def test_the_action_and_its_users_pass_actionlint(actionlint: Linter, tmp_path: Path) -> None:
    action = tmp_path / "action-wrapped.yml"
    action.write_text(wrapped(load_action()))
    example = tmp_path / "readme-example.yml"
    example.write_text(readme_workflow())
    assert actionlint([action, example, *sorted(WORKFLOWS.glob("*.yml"))]) == []


def test_actionlint_catches_a_broken_action(actionlint: Linter, tmp_path: Path) -> None:
    text = wrapped(load_action())
    broken = tmp_path / "broken.yml"
    broken.write_text(
        text.replace("inputs.report-json", "inputs.report-jsn").replace(
            "github.action_path", "github.actionpath"
        )
    )
    problems = actionlint([broken])
    assert any('property "report-jsn" is not defined' in p for p in problems), problems
    assert any('property "actionpath" is not defined' in p for p in problems), problems


# --- the action run for real -------------------------------------------------------------


def evaluate(expression: str, context: Mapping[str, Any]) -> Any:
    """The expressions action.yml uses: a.b.c lookups, 'strings', ==, != and ||."""
    expression = expression.strip()
    if "||" in expression:
        left, right = expression.split("||", 1)
        return evaluate(left, context) or evaluate(right, context)
    for op in ("==", "!="):
        if op in expression:
            left, right = expression.split(op, 1)
            same = evaluate(left, context) == evaluate(right, context)
            return same if op == "==" else not same
    if re.fullmatch(r"'[^']*'", expression):
        return expression[1:-1]
    if not re.fullmatch(r"[A-Za-z_][\w-]*(\.[\w-]+)+", expression):
        raise AssertionError(f"the test's evaluator does not know {expression!r}: extend it")
    value: Any = context
    for part in expression.split("."):
        value = value.get(part, "") if isinstance(value, Mapping) else ""
    return value


def substitute(text: str, context: Mapping[str, Any]) -> str:
    return EXPRESSION.sub(lambda m: str(evaluate(m.group(1), context)), text)


@dataclass
class ActionRun:
    returncode: int
    outputs: dict[str, str]
    summary: str
    log: str


def run_action(
    inputs: Mapping[str, str], workspace: Path, runner_temp: Path, env: Mapping[str, str]
) -> ActionRun:
    """Run action.yml's steps as a runner would, in ``workspace``."""
    action = load_action()
    given = {name: spec.get("default", "") for name, spec in action["inputs"].items()}
    assert set(inputs) <= set(given), set(inputs) - set(given)
    given.update(inputs)
    github = {"action_path": env["GITHUB_ACTION_PATH"]}
    context: dict[str, Any] = {"inputs": given, "steps": {}, "github": github}
    summary = runner_temp / "summary.md"
    summary.write_text("")
    log, returncode = [], 0
    for number, step in enumerate(action["runs"]["steps"], 1):
        if "if" in step and not evaluate(substitute(step["if"], context), context):
            continue
        assert "run" in step, f"step {number} uses {step['uses']}: give its inputs so it is skipped"
        output = runner_temp / f"output-{number}"
        output.write_text("")
        script = runner_temp / f"step-{number}.sh"
        script.write_text(step["run"])
        step_env = {k: substitute(str(v), context) for k, v in step.get("env", {}).items()}
        step_env |= {
            "GITHUB_OUTPUT": str(output),
            "GITHUB_STEP_SUMMARY": str(summary),
            "RUNNER_TEMP": str(runner_temp),
        }
        cwd = workspace / substitute(step.get("working-directory", "."), context)
        argv = ["bash", "--noprofile", "--norc", "-eo", "pipefail", script]
        result = run(argv, env={**env, **step_env}, cwd=cwd, timeout=900)
        log.append(result.describe())
        returncode = result.returncode
        outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if line)
        if "id" in step:
            context["steps"][step["id"]] = {"outputs": outputs}
        if returncode != 0:  # the later steps are skipped; the outputs are still set
            break
    values = {name: substitute(spec["value"], context) for name, spec in action["outputs"].items()}
    return ActionRun(returncode, values, summary.read_text(), "\n".join(log))


@pytest.fixture(scope="module")
def runner_temp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One $RUNNER_TEMP for the module's runs, as one job's steps share one."""
    return tmp_path_factory.mktemp("runner-temp")


@pytest.fixture(scope="module")
def action_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The action's files as a checkout of it has them (pip's in-tree build then writes
    its build/ there, not into this working tree)."""
    dest = tmp_path_factory.mktemp("action")
    listed = run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=ROOT, timeout=60)
    if not listed.ok:  # not a git checkout: the tree as it is
        shutil.copytree(ROOT, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".*"))
        return dest
    for name in filter(None, listed.stdout.split("\0")):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


@pytest.mark.channel
@pytest.mark.slow
def test_the_action_runs_check_and_matrix(
    project: Any, runner_temp: Path, action_path: Path, envassay_env: dict[str, str]
) -> None:
    project.spec("good", ["python=3.11", "pyyaml"])
    bad = project.spec("bad", ["python=3.11", "brokenraise"])
    env = {**envassay_env, "PATH": f"{Path(sys.executable).parent}:{envassay_env['PATH']}"}
    env["GITHUB_ACTION_PATH"] = str(action_path)  # what a runner sets for the action's steps
    workspace = project.root

    matrix = run_action({"mode": "matrix", "targets": "native"}, workspace, runner_temp, env)
    assert matrix.returncode == 0, matrix.log
    direct = run(
        [sys.executable, "-m", "envassay", "matrix", "--format", "github", "--target", "native"],
        env=env,
        cwd=workspace,
        timeout=120,
    )
    assert json.loads(matrix.outputs["matrix"]) == json.loads(direct.stdout)
    assert matrix.outputs["jobs"] == "2"
    assert "### envassay matrix: 2 job(s)" in matrix.summary
    assert "- good / native / linux-64 on `ubuntu-latest`" in matrix.summary
    venv = runner_temp / "envassay-action-venv"
    assert (venv / ".requirement").read_text() == str(action_path)  # the action's own copy

    installed = (venv / ".requirement").stat().st_mtime_ns
    check = run_action({"specs": "envs/good.yml"}, workspace, runner_temp, env)
    assert check.returncode == 0, check.log
    assert (venv / ".requirement").stat().st_mtime_ns == installed  # the job's venv, reused
    reports = {k: Path(check.outputs[k]) for k in ("junitxml", "report-md", "report-json")}
    assert reports["report-md"] == workspace / "envassay-reports" / "report.md"
    assert all(path.is_file() for path in reports.values()), reports
    assert json.loads(reports["report-json"].read_text())["runs"][0]["env"] == "good"
    # The report is in the summary once: envassay wrote it, the action did not again.
    assert check.summary.count(reports["report-md"].read_text()) == 1

    failed = run_action(
        {"specs": str(bad), "report-md": "", "junitxml": "out/j.xml"},
        workspace,
        runner_temp,
        env,
    )
    assert failed.returncode == 1, failed.log
    assert failed.outputs["junitxml"] == str(workspace / "out" / "j.xml")  # named, failed or not
    assert "brokenraise is broken on purpose" in (workspace / "out" / "j.xml").read_text()
    assert failed.outputs["report-md"] == ""

    wrong = run_action({"mode": "plan"}, workspace, runner_temp, env)
    assert wrong.returncode == 2
    assert "::error title=envassay::input mode is 'plan'; use check or matrix" in wrong.log
