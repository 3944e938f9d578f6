"""Run the real `envassay` command in a child process, as a user would."""

from __future__ import annotations

import os
import sys
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path

from envassay.command import CommandResult, run
from tests.conftest import Project


def envassay(*args: str | Path, env: Mapping[str, str], cwd: Path) -> CommandResult:
    return run([sys.executable, "-m", "envassay", *args], env=env, cwd=cwd, timeout=600)


def check(
    project: Project, env: Mapping[str, str], *args: str | Path
) -> tuple[int, dict[str, tuple[str, str]], str]:
    """`envassay check ARGS` in the project: exit code, item name -> (outcome, message) from
    its JUnit XML (empty when it wrote none), and everything it printed."""
    xml = project.root / "junit.xml"
    xml.unlink(missing_ok=True)
    result = envassay("check", *args, "--junitxml", xml, env=env, cwd=project.root)
    outcomes = junit_outcomes(xml) if xml.exists() else {}
    return result.returncode, outcomes, result.stdout + result.stderr


def pip_install(prefix: Path, *args: str | Path) -> CommandResult:
    """`pip install ARGS` with an env's own python: someone changing the env by hand."""
    return run([prefix / "bin" / "python", "-m", "pip", "install", *args])


def junit_outcomes(path: Path) -> dict[str, tuple[str, str]]:
    """item name -> (outcome, message) from pytest's JUnit XML."""
    outcomes: dict[str, tuple[str, str]] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                outcome, message = tag, node.get("message", "") or (node.text or "")
        outcomes[case.get("name", "")] = (outcome, message)
    return outcomes


def junit_messages(path: Path) -> dict[str, str]:
    """item name -> envassay's whole message: the `envassay` user property in the JUnit XML
    (newer pytest versions cut a failure's `message` attribute to its first lines)."""
    messages = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        for prop in case.iter("property"):
            if prop.get("name") == "envassay":
                messages[case.get("name", "")] = prop.get("value", "")
    return messages


def process_alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie, not yet reaped by init, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ", 1)[1].startswith("Z"))
