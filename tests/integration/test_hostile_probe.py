"""Hostile packages at import: the check survives them and the host is not harmed.

Each is a real `noarch: python` conda package in a local channel, imported by the
real probe through `envassay check`: a module that leaves a daemon (double fork and
setsid, its standard streams closed), one that prints 300 MB, one whose error holds
GitHub workflow commands and terminal escapes, and one that writes forged results
for the module after it into every file descriptor it has.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from envassay.command import run
from envassay.docker import Engine
from envassay_testing import (
    LocalChannel,
    index_channel,
    make_noarch_python_package,
    new_channel,
)
from tests.conftest import envassay_environ
from tests.integration.envassay_cli import junit_outcomes

pytestmark = [pytest.mark.channel, pytest.mark.slow]

DAEMON = """
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        with open(os.path.join(os.environ.get("EVIL_DIR", "/tmp"), "daemon.pid"), "w") as f:
            f.write(str(os.getpid()))
        time.sleep(300)
    os._exit(0)
os.wait()
"""

FLOOD = """
import sys
line = "x" * (1024 * 1024 - 1) + "\\n"
for _ in range(300):
    sys.stdout.write(line)
sys.stdout.flush()
"""

INJECT = (
    "raise ImportError('evilerror failed\\n::error title=owned::injected\\n"
    "::stop-commands::t0k3n\\n  ::add-mask::x\\n##[error]old form\\n"
    "\\x1b]0;retitled\\x07\\x1b[2J\\rcarriage \\u202eeurt')\n"
)

FORGE = """
import os
forged = b"OK evilforge 0.0\\nSTART evilvictim\\nOK evilvictim 0.0\\n"
for fd in range(3, 256):
    try:
        os.write(fd, forged)
    except OSError:
        pass
print('{"probe_version": 2, "imports": []}')
os._exit(0)
"""

VICTIM = "raise ImportError('evilvictim is really broken')\n"

MODULES = {
    "evildaemon": DAEMON,
    "evilflood": FLOOD,
    "evilerror": INJECT,
    "evilforge": FORGE,
    "evilvictim": VICTIM,
}

# Measures the peak RSS of `envassay check` (its largest waited-for descendant).
RSS_WRAPPER = """
import resource, subprocess, sys
code = subprocess.run(sys.argv[1:]).returncode
print("maxrss_kib", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""


@dataclass(frozen=True)
class Checked:
    code: int
    output: str
    items: dict[str, tuple[str, str]]
    junit: str
    markdown: str
    summary: str
    maxrss_kib: int
    evil_dir: Path


def _hostile_project(root: Path, test_channel: LocalChannel) -> tuple[Path, Path]:
    """A project whose one spec pulls in every hostile package; (spec, project root)."""
    channel = new_channel(root / "channel")
    for name, code in MODULES.items():
        files = {f"{name}/__init__.py": code}
        make_noarch_python_package(channel, name, "1.0", files=files, depends=["python"])
    index_channel(channel)
    project = root / "project"
    (project / "envs").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[tool.envassay]\n")
    deps = "".join(f"  - {name}\n" for name in MODULES)
    spec = project / "envs" / "hostile.yml"
    spec.write_text(
        f"name: hostile\nchannels: [{channel.as_uri()}, {test_channel.url}]\n"
        f"dependencies:\n  - python=3.11\n{deps}"
    )
    return spec, project


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory, test_channel: LocalChannel) -> Checked:
    root = tmp_path_factory.mktemp("hostile")
    spec, project = _hostile_project(root, test_channel)
    evil_dir = root / "evil"
    evil_dir.mkdir()
    summary = root / "step-summary.md"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(
        ENVASSAY_HOME=str(root / "store"),
        EVIL_DIR=str(evil_dir),
        GITHUB_STEP_SUMMARY=str(summary),
    )
    junit, markdown = project / "junit.xml", project / "report.md"
    argv = [sys.executable, "-m", "envassay", "check", spec, "--junitxml", junit]
    result = run(
        [sys.executable, "-c", RSS_WRAPPER, *argv, "--report-md", markdown],
        env=env,
        cwd=project,
        timeout=600,
    )
    rss = re.search(r"maxrss_kib (\d+)", result.stderr)
    assert rss, result.describe()
    return Checked(
        code=result.returncode,
        output=result.stdout + result.stderr[: rss.start()],
        items=junit_outcomes(junit) if junit.exists() else {},
        junit=junit.read_text() if junit.exists() else "",
        markdown=markdown.read_text() if markdown.exists() else "",
        summary=summary.read_text() if summary.exists() else "",
        maxrss_kib=int(rss.group(1)),
        evil_dir=evil_dir,
    )


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_daemon_started_at_import_does_not_outlive_the_check(checked: Checked) -> None:
    pid = int((checked.evil_dir / "daemon.pid").read_text())
    try:
        assert not _alive(pid), "the daemon an import started is still running"
    finally:
        with contextlib.suppress(OSError):
            os.kill(pid, 9)
    assert checked.items["import[evildaemon]"][0] == "passed"


def test_a_flood_of_output_does_not_follow_into_memory(checked: Checked) -> None:
    assert checked.items["import[evilflood]"][0] == "passed"
    # 300 MB printed; before the bound the check peaked near 950 MB.
    assert checked.maxrss_kib < 300 * 1024, checked.maxrss_kib


def test_forged_results_are_not_taken(checked: Checked) -> None:
    assert checked.items["import[evilvictim]"][0] == "failure", checked.items
    assert "evilvictim is really broken" in checked.items["import[evilvictim]"][1]
    assert checked.items["import[evilforge]"][0] == "failure"


@pytest.mark.parametrize("surface", ["output", "junit", "markdown", "summary"])
def test_no_workflow_command_or_escape_reaches_a_log(checked: Checked, surface: str) -> None:
    text = getattr(checked, surface)
    assert "evilerror failed" in text  # the error is shown...
    for line in text.splitlines():  # ...but no line can start a workflow command
        assert not line.lstrip().startswith("::"), line
        assert "##[" not in line, line
    for char in ("\x1b", "\x07", "\r", "\u202e"):
        assert char not in text, repr(char)
    assert checked.items["import[evilerror]"][0] == "failure"


def test_the_check_itself_ends_with_the_failures(checked: Checked) -> None:
    assert checked.code == 1, checked.output[-3000:]


@pytest.mark.docker
def test_in_the_docker_target_the_same_packages_harm_nothing(
    tmp_path: Path, test_channel: LocalChannel, base_image: str, engine: Engine
) -> None:
    """The container ends what the imports started (the engine fixture: no container
    left); the flood is bounded on the way out of the container; no forgery is taken."""
    spec, project = _hostile_project(tmp_path, test_channel)
    (project / "pyproject.toml").write_text(
        f'[tool.envassay.envs.hostile]\nbuilder-image = "{base_image}"\n'
    )
    env = envassay_environ(tmp_path / "store")
    junit = project / "junit.xml"
    argv = [sys.executable, "-m", "envassay", "check", "--target", "docker", spec]
    result = run([*argv, "--junitxml", junit], env=env, cwd=project, timeout=900)
    items = junit_outcomes(junit)
    assert result.returncode == 1, result.describe()
    assert items["import[evildaemon]"][0] == "passed", items
    assert items["import[evilflood]"][0] == "passed", items
    assert items["import[evilvictim]"][0] == "failure", items
    output = result.stdout + result.stderr + junit.read_text()
    assert "evilerror failed" in output
    assert "\x1b" not in output
    assert not any(line.lstrip().startswith("::") for line in output.splitlines())
