"""Long work visible: a real `envassay create` (cold package cache) shows its phases, as
updates on a terminal's live line and as one closing line per phase in a log."""

from __future__ import annotations

import itertools
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from envassay.progress import UPDATE
from envassay_testing.wheels import make_wheel
from tests.conftest import Project
from tests.integration.envassay_cli import envassay

pytestmark = pytest.mark.channel

PHASES = ("[rattler] solving", "[rattler] fetched ", "[rattler] linked in", "pip installed in")


def _spec(project: Project, tmp_path: Path) -> Path:
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "shown-tool", "1.0", files={"shown_tool.py": "X = 1\n"})
    return project.spec(
        "shown",
        ["python=3.11", "numpy>=1.24,<2", "six"],
        pip=["--no-index", f"--find-links {wheels}", "shown-tool==1.0"],
    )


def test_a_log_gets_one_line_per_phase(
    project: Project, envassay_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**envassay_env, "ENVASSAY_HOME": str(tmp_path / "home")}  # nothing cached
    result = envassay("create", _spec(project, tmp_path), env=env, cwd=project.root)
    assert result.ok, result.describe()
    for phase in PHASES:
        assert result.stderr.count(phase) == 1, (phase, result.stderr)
    fetched = next(x for x in result.stderr.splitlines() if "[rattler] fetched " in x)
    assert " MB) in " in fetched and "0 already cached" in fetched
    assert UPDATE not in result.stderr
    updates = ("[rattler] fetching packages:", "[rattler] linking:", "pip: ")
    for line in result.stderr.splitlines():  # a terminal's, not a log's
        assert not line.startswith(updates), line


def test_a_terminal_sees_the_updates_on_its_live_line(
    project: Project, envassay_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**envassay_env, "ENVASSAY_HOME": str(tmp_path / "home")}
    spec = _spec(project, tmp_path)
    main, terminal = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "envassay", "create", str(spec)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=terminal,
        cwd=project.root,
        env=env,
    )
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(main)
    assert proc.wait(timeout=600) == 0, shown.decode(errors="replace")
    text = shown.decode(errors="replace")
    assert "\r[rattler] fetching packages: 1/" in text  # the first update is always shown
    assert "\r[rattler] linking: " in text
    assert "\rpip: " in text  # pip's own lines (Looking in links, Processing, Installing...)
    assert "\\x1e" not in text and UPDATE not in text


def test_a_check_log_has_one_line_per_phase_and_no_blank_lines_between(
    project: Project, envassay_env: dict[str, str], tmp_path: Path
) -> None:
    """As a CI log holds it (stdout and stderr in one file): the phases break pytest's
    open `collecting ...` line once, then follow each other line by line."""
    env = {**envassay_env, "ENVASSAY_HOME": str(tmp_path / "home")}
    spec = _spec(project, tmp_path)
    log = subprocess.run(
        [sys.executable, "-m", "envassay", "check", spec, "--", "-v"],  # `collecting ...`
        env=env,
        cwd=project.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
    ).stdout
    lines = log.splitlines()
    shown = [i for i, line in enumerate(lines) if line.startswith("envassay: ")]
    assert len(shown) >= len(PHASES), log
    assert not [line for line in lines if "collecting" in line and "envassay:" in line], log
    for before, after in itertools.pairwise(shown):
        assert all(lines[i].strip() for i in range(before + 1, after)), log  # no blank line
