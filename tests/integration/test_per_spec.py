"""One run, every verdict: a spec that cannot be read, solved or created fails as its own
items and every other env is still checked and reported; a run asked for some specs
creates only those."""

from __future__ import annotations

import json
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from envassay.command import run
from envassay.run.noxargs import pytest_flags
from tests.conftest import Project
from tests.integration.envassay_cli import check, envassay

pytestmark = pytest.mark.channel


def _outcomes(path: Path) -> dict[str, tuple[str, str]]:
    """``classname::name`` -> (outcome, message) from pytest's JUnit XML."""
    outcomes: dict[str, tuple[str, str]] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            if (node := case.find(tag)) is not None:
                outcome, message = tag, node.get("message", "") or (node.text or "")
        outcomes[f"{case.get('classname')}::{case.get('name')}"] = (outcome, message)
    return outcomes


def _store_names(store: Path) -> list[str]:
    """The envs a store ever created (its creation log keeps those removed since)."""
    log = store / "created.jsonl"
    lines = log.read_text().splitlines() if log.is_file() else []
    return sorted(json.loads(line)["key"].split("-")[0] for line in lines)


def test_a_bad_spec_fails_alone_and_every_other_env_is_reported(
    project: Project, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    summary = tmp_path / "summary.md"
    env = {
        "ENVASSAY_HOME": str(store),
        "PATH": "/usr/bin:/bin",
        "GITHUB_STEP_SUMMARY": str(summary),
    }
    project.spec("one", ["python=3.11", "six"])
    project.spec("two", ["python=3.11", "idna"])
    (project.root / "envs" / "unreachable.yml").write_text(
        "name: unreachable\nchannels: [file:///nonexistent/channel]\ndependencies: [python=3.11]\n"
    )
    project.spec("unsolvable", ["python=3.11", "nosuchpackage"])
    (project.root / "envs" / "unreadable.yml").write_text("name: [unreadable\n")
    md, js = tmp_path / "r.md", tmp_path / "r.json"

    code, _, output = check(project, env, "--report-md", str(md), "--report-json", str(js))
    outcomes = _outcomes(project.root / "junit.xml")

    assert code == 2, output  # a bad spec is bad input, even when the others pass
    assert "Interrupted" not in output and "Traceback" not in output
    assert outcomes["envs.one.yml.native::import[six]"][0] == "passed"
    assert outcomes["envs.two.yml.native::import[idna]"][0] == "passed"
    bad = {n: o for n, o in outcomes.items() if o[0] in ("failure", "error")}
    messages = " | ".join(message for _, message in bad.values())
    for spec in ("unreachable.yml", "unsolvable.yml", "unreadable.yml"):
        assert spec in messages, (spec, bad)
    assert len(bad) == 3, bad
    report = json.loads(js.read_text())
    runs = {r["env"]: r for r in report["runs"]}
    assert set(runs) == {"one", "two", "unreachable", "unsolvable", "unreadable"}
    assert runs["one"]["ok"] and runs["two"]["ok"]
    assert "nonexistent" in runs["unreachable"]["error"]
    assert "nosuchpackage" in runs["unsolvable"]["error"]
    for text in (md.read_text(), summary.read_text(), output):
        for name in ("one", "two", "unreachable", "unsolvable", "unreadable"):
            assert name in text


def test_failing_envs_without_bad_input_exit_1(project: Project, tmp_path: Path) -> None:
    env = {"ENVASSAY_HOME": str(tmp_path / "store"), "PATH": "/usr/bin:/bin"}
    project.spec("fine", ["python=3.11", "six"])
    project.spec("broken", ["python=3.11", "brokenraise"])
    code, outcomes, output = check(project, env)
    assert code == 1, output
    assert outcomes["import[six]"][0] == "passed"


def test_checking_one_spec_creates_only_that_env(project: Project, tmp_path: Path) -> None:
    project.spec("one", ["python=3.11", "six"])
    project.spec("two", ["python=3.11", "idna"])
    project.spec("three", ["python=3.11", "attrs"])

    store = tmp_path / "cli-store"
    env = {"ENVASSAY_HOME": str(store), "PATH": "/usr/bin:/bin"}
    code, _, output = check(project, env, "envs/one.yml")
    assert code == 0, output
    assert _store_names(store) == ["one"], output
    assert "attrs" not in output and "idna" not in output

    # What nox's per-env sessions and a pytest node id run: pytest with the plugin.
    for number, arg in enumerate(["envs/two.yml", "envs/two.yml::native::import[idna]"]):
        store = tmp_path / f"pytest-store-{number}"
        result = run(
            [sys.executable, "-m", "pytest", *pytest_flags(project.root), arg],
            env={**env, "ENVASSAY_HOME": str(store), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
            cwd=project.root,
            timeout=600,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert _store_names(store) == ["two"], result.stdout + result.stderr

    # nox's per-env session, for real: this repository's noxfile in the project.
    shutil.copy(Path(__file__).parents[2] / "noxfile.py", project.root / "noxfile.py")
    store = tmp_path / "nox-store"
    result = run(
        [sys.executable, "-m", "nox", "-s", "envs(env='three')"],
        env={**env, "ENVASSAY_HOME": str(store)},
        cwd=project.root,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert _store_names(store) == ["three"], result.stdout + result.stderr


def test_lock_goes_on_past_a_failing_spec_naming_spec_and_platform(
    project: Project, tmp_path: Path
) -> None:
    env = {"ENVASSAY_HOME": str(tmp_path / "store"), "PATH": "/usr/bin:/bin"}
    project.spec("aaa", ["python=3.11", "nosuchpackage"])
    good = project.spec("good", ["python=3.11", "six"])

    result = envassay("lock", env=env, cwd=project.root)
    assert result.returncode == 2, result.stdout + result.stderr
    assert good.with_name("good.conda-lock.yml").is_file()  # solved after the bad one
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert any("aaa.yml" in line and "linux-64" in line for line in errors), result.stderr
    assert "Traceback" not in result.stderr

    # The test channel has no osx-arm64 python: the error names the spec and platform.
    result = envassay("lock", "--platform", "osx-arm64", "envs/good.yml", env=env, cwd=project.root)
    assert result.returncode == 2
    assert "good.yml" in result.stderr and "osx-arm64" in result.stderr, result.stderr

    # lock --check: an unreadable lock is named, the other locks are still judged.
    (project.root / "envs" / "aaa.conda-lock.yml").write_text("version: 1\nmetadata: [x\n")
    result = envassay("lock", "--check", env=env, cwd=project.root)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "aaa.conda-lock.yml" in result.stderr and "1 lock(s) fresh" in result.stdout

    # drift over both: the good one is reported, the bad one named with its platform.
    (project.root / "envs" / "aaa.conda-lock.yml").write_text(
        good.with_name("good.conda-lock.yml").read_text()
    )
    result = envassay("drift", env=env, cwd=project.root)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "good" in result.stdout
    assert any("aaa.yml" in line and "linux-64" in line for line in result.stderr.splitlines())


def test_an_unwritable_report_path_is_one_line(project: Project, tmp_path: Path) -> None:
    env = {"ENVASSAY_HOME": str(tmp_path / "store"), "PATH": "/usr/bin:/bin"}
    project.spec("one", ["python=3.11", "six"])
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = envassay(
        "check", "--report-md", blocker / "r.md", "envs/one.yml", env=env, cwd=project.root
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "r.md" in result.stderr


def test_a_bad_specs_text_reaches_no_terminal_or_log_raw(project: Project, tmp_path: Path) -> None:
    """A bad spec's own text (an unsolvable name holding a terminal escape and a workflow
    command) fails its item made visible: no raw ESC, no line that starts a command."""
    env = {"ENVASSAY_HOME": str(tmp_path / "store"), "PATH": "/usr/bin:/bin"}
    (project.root / "envs" / "hostile.yml").write_text(
        "name: hostile\n"
        f"channels: [{project.channel.url}]\n"
        'dependencies: ["python=3.11", "nosuch\\e]0;pwned\\a", "x\\n::error title=forged::boom"]\n'
    )
    code, outcomes, output = check(project, env)
    junit = (project.root / "junit.xml").read_text()
    assert code == 2, output
    assert outcomes, output
    for text in (output, junit):
        assert "\x1b" not in text and "\x07" not in text
        assert not any(line.lstrip().startswith("::error") for line in text.splitlines())


def test_a_spec_file_name_reaches_no_terminal_or_log_raw(project: Project, tmp_path: Path) -> None:
    """pytest prints node ids as they are: a spec file named with a terminal escape, a
    newline and a bidi override is shown escaped (-v, JUnit). pytest cannot address a
    name that holds "::" at all: that spec alone is bad input, in one line."""
    env = {"ENVASSAY_HOME": str(tmp_path / "store"), "PATH": "/usr/bin:/bin"}
    envs = project.root / "envs"
    (envs / "bad\x1b]0;pwned\x07\nx\u202e.yml").write_text("name: [unreadable\n")
    (envs / "two\n::error title=forged::boom.yml").write_text("name: [unreadable\n")
    project.spec("good", ["python=3.11", "six"])
    code, outcomes, output = check(project, env, "--", "-v")
    junit = (project.root / "junit.xml").read_text()
    assert code == 2, output
    assert "bad\\x1b]0;pwned\\x07\\nx\\u202e" in junit  # its node id, escaped
    assert outcomes["spec"][0] == "failure"
    assert outcomes["import[six]"][0] == "passed", outcomes  # the good env is checked
    assert "pytest cannot address a spec whose path holds '::'" in output
    for text in (output, junit):
        for char in ("\x1b", "\x07", "\u202e"):
            assert char not in text, repr(char)
        assert not any(line.lstrip().startswith("::error") for line in text.splitlines())
