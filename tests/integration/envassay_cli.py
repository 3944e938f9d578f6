"""Run the real `envassay` command in a child process, as a user would."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path

from envassay.command import CommandResult, run


def envassay(*args: str | Path, env: Mapping[str, str], cwd: Path) -> CommandResult:
    return run([sys.executable, "-m", "envassay", *args], env=env, cwd=cwd, timeout=600)


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
