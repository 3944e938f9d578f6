"""Interruption: a real `envassay create` (local channel, a pip: section) killed with
SIGKILL or interrupted with Ctrl-C at many points, and Ctrl-C during `envassay check`
and `nox -s envs`.

Every process a run starts inherits a unique ENVASSAY_TEST_TAG, so what it leaves
running is found in /proc, whatever session or process group it is in.

- kill -9 hits the envassay process alone (as the OOM killer or a CI runner does);
  its children are in their own sessions, so only PR_SET_PDEATHSIG can end them.
- Ctrl-C is SIGINT to envassay's process group, as a terminal sends it.

After each: no process of the run is left (none writing into the prefix); a Ctrl-C'd
run has said so and left no half-made env; the next `create` never uses a half-made
env (a file planted in it is gone), recreates it and succeeds.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from envassay.store import MARKER, EnvStore
from envassay_testing import LocalChannel
from envassay_testing.wheels import make_wheel
from tests.reliability.harness import (
    Sandbox,
    kill_tagged,
    processes_with_tag,
    run_bounded,
    wait_for_no_processes,
)

pytestmark = [pytest.mark.channel, pytest.mark.slow]

PROMPT_SECONDS = 10.0  # a Ctrl-C'd run must be gone within this
SENTINEL = "planted-in-a-half-made-env"


@dataclass(frozen=True)
class Point:
    """When to interrupt: after ``delay`` seconds, or once a child matching ``phase``
    is running; how: ``kill9`` (the envassay process alone) or ``sigint`` (its group)."""

    how: str
    delay: float = 0.0
    phase: str | None = None

    @property
    def id(self) -> str:
        return f"{self.how}-{self.phase or f'{self.delay:.2f}s'}"


# The create below takes ~2-4 s warm: solve + link (rattler worker), compileall, pip.
DELAYS = (0.1, 0.3, 0.6, 1.0, 1.5, 2.1, 2.8)
PHASES = {
    "worker": "envassay.rattler_worker",
    "compileall": "-m compileall",
    "pip": "-m pip install",
}
POINTS = [Point(how, delay=d) for d in DELAYS for how in ("kill9", "sigint")] + [
    Point(how, phase=phase) for phase in PHASES for how in ("kill9", "sigint")
]
assert len(POINTS) >= 20


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory, test_channel: LocalChannel) -> Sandbox:
    """One sandbox for the module: the package cache stays warm between the points."""
    box = Sandbox(tmp_path_factory.mktemp("interrupt"))
    wheels = box.root / "wheels"
    make_wheel(wheels, "extra-tool", "1.0", files={"extra_tool.py": "VALUE = 42\n"})
    (box.project / "pyproject.toml").write_text("[tool.envassay]\n")
    (box.project / "envs" / "victim.yml").write_text(
        f"name: victim\nchannels: [{test_channel.url}]\ndependencies:\n"
        '  - "python=3.11"\n  - numpy\n  - pyyaml\n  - beautifulsoup4\n  - pip:\n'
        f'    - "--no-index"\n    - "--find-links {wheels}"\n    - "extra-tool==1.0"\n'
    )
    return box


@pytest.fixture
def tagged(box: Sandbox) -> Iterator[Sandbox]:
    """The sandbox with a fresh tag per test; whatever a failed test left is ended."""
    box.tag = os.urandom(8).hex()
    try:
        yield box
    finally:
        kill_tagged(box.tag)


def start(box: Sandbox, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    log = box.root / "interrupted.log"
    with log.open("wb") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "envassay", *args],
            cwd=box.project,
            env=env or box.env(),
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a shell's foreground job
        )


def wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def child_running(tag: str, needle: str) -> bool:
    return any(needle in cmd for _, cmd in processes_with_tag(tag))


def interrupt(proc: subprocess.Popen[bytes], how: str) -> None:
    if how == "kill9":
        os.kill(proc.pid, signal.SIGKILL)  # the envassay process only
    else:
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the terminal's foreground group


def recover(box: Sandbox) -> tuple[str, Path]:
    """The next `create`, to completion: what it said and the prefix."""
    result = run_bounded(
        [sys.executable, "-m", "envassay", "create", "envs/victim.yml"],
        env=box.env(),
        cwd=box.project,
        timeout=180,
        memory_mb=4096,
    )
    assert result.returncode == 0 and not result.timed_out, result.describe()
    line = result.stdout.strip().splitlines()[-1]
    return line, Path(line.rsplit(": ", 1)[1])


@pytest.mark.parametrize("point", POINTS, ids=lambda p: p.id)
def test_interrupted_create_is_cleaned_up_and_the_next_run_succeeds(
    tagged: Sandbox, point: Point
) -> None:
    box = tagged
    store = EnvStore(box.store)
    created_before = len(store.creations())
    # Without it every point after the first would link the pycs: no compileall to hit.
    shutil.rmtree(box.store / "cache" / "pyc", ignore_errors=True)
    proc = start(box, "create", "envs/victim.yml")
    try:
        if point.phase is not None:
            seen = wait_for(lambda: child_running(box.tag, PHASES[point.phase or ""]), 60)
            assert seen, f"{point.phase} never ran: {(box.root / 'interrupted.log').read_text()}"
        else:
            time.sleep(point.delay)
        sent = time.monotonic()
        interrupt(proc, point.how)
        code = proc.wait(timeout=60)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = (box.root / "interrupted.log").read_text()
    finished = code == 0  # it may have completed before the signal came

    # Nothing the run started is still running: no worker, compileall or pip in the prefix.
    left = wait_for_no_processes(box.tag, within=2.0)
    assert not left, f"left running after {point.id}: {left}"

    if point.how == "sigint" and not finished:
        assert took < PROMPT_SECONDS, f"Ctrl-C took {took:.1f}s: {output}"
        if "Fatal Python error: init_import_site" in output:
            # The interpreter itself was still starting (importing site): no envassay
            # code had run, and Python ends with its own words. Nothing was begun.
            assert code != 0 and not list(store.entries()), output
        else:
            # 130, or -SIGINT when the signal lands again while envassay is already
            # leaving (seen once in ~20 runs at 0.30 s); a shell shows 130 for both.
            assert code in (130, -signal.SIGINT), output
            assert "envassay: interrupted" in output and "Traceback" not in output, output
        # Ctrl-C keeps nothing half-made.
        assert all(e.complete for e in store.entries()), list(store.entries())
    elif point.how == "kill9" and not finished:
        assert code == -signal.SIGKILL, output

    half_made = [e for e in store.entries() if not e.complete]
    for entry in half_made:  # whatever is in a half-made env must never be used
        (entry.prefix / SENTINEL).write_text("a previous creator died here\n")
    complete_before = {e.key for e in store.entries() if e.complete}

    said, prefix = recover(box)
    if complete_before:
        assert said.startswith("reused victim"), said
    else:
        assert said.startswith("created victim"), said
        assert len(store.creations()) == created_before + 1 + (1 if finished else 0)
        assert json.loads((prefix / MARKER).read_text())["pid"] != proc.pid
    assert not (prefix / SENTINEL).exists()
    assert [e.complete for e in store.entries()] == [True]
    check = run_bounded(
        [prefix / "bin" / "python", "-c", "import numpy, yaml, bs4, extra_tool"],
        env=box.env(),
        cwd=box.root,
        timeout=60,
        memory_mb=4096,
    )
    assert check.returncode == 0, check.describe()

    for entry in store.entries():  # the next point starts from an empty store again
        store.remove(entry)


@pytest.mark.parametrize("how", ["run", "stream"])
def test_a_killed_envassay_takes_its_commands_with_it(tagged: Sandbox, how: str) -> None:
    """command.run/stream children (pip, compileall, probes, tools) are in sessions of
    their own; when envassay is killed by SIGKILL they must die with it, even when they
    write nothing (a silent child never notices a closed pipe)."""
    box = tagged
    script = (
        "import sys\n"
        "from envassay import command\n"
        # split, so that only the child's command line says time.sleep(120)
        "silent = [sys.executable, '-c', 'import time; time.sle' + 'ep(120)']\n"
        f"command.{how}(silent" + (", on_stderr_line=print)" if how == "stream" else ")")
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], env=box.env(), cwd=box.root, start_new_session=True
    )
    try:
        assert wait_for(lambda: child_running(box.tag, "time.sleep(120)"), 30)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)
        left = wait_for_no_processes(box.tag, within=2.0)
        assert not left, f"outlived a killed envassay: {left}"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


# ------------------------------------------------------------------------ Ctrl-C in checks


def hanging_project(box: Sandbox, channel: LocalChannel) -> None:
    """An env whose `brokenhang` import hangs for an hour: the probe is busy when Ctrl-C
    comes."""
    (box.project / "pyproject.toml").write_text(
        "[tool.envassay]\n[tool.envassay.envs.hang]\nimport-timeout = 3000\n"
    )
    (box.project / "envs" / "hang.yml").write_text(
        f"name: hang\nchannels: [{channel.url}]\ndependencies: [python=3.11, brokenhang]\n"
    )


def ctrl_c_while_probing(
    box: Sandbox, argv: list[str], presses: int = 1, gap: float = 0.05
) -> tuple[int, float, str]:
    """Start ``argv``, wait for the probe's import child, send Ctrl-C (``presses`` times,
    ``gap`` seconds apart); (exit, seconds, output)."""
    log = box.root / "ctrl-c.log"
    with log.open("wb") as handle:
        proc = subprocess.Popen(
            argv,
            cwd=box.project,
            env=box.env(),
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        # The probe imports brokenhang in a child of the env's own python.
        busy = wait_for(lambda: child_running(box.tag, "/envs/hang-"), 240)
        assert busy, log.read_text()
        time.sleep(1.0)  # well inside the hanging import
        sent = time.monotonic()
        for press in range(presses):
            if press:
                time.sleep(gap)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGINT)
        code = proc.wait(timeout=60)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return code, took, log.read_text()


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_ctrl_c_during_envassay_check_is_prompt_and_leaves_no_children(
    tagged: Sandbox, test_channel: LocalChannel, jobs: str
) -> None:
    box = tagged
    hanging_project(box, test_channel)
    shutil.copyfile(box.project / "envs" / "hang.yml", box.project / "envs" / "hang2.yml")
    code, took, output = ctrl_c_while_probing(
        box,
        [sys.executable, "-m", "envassay", "check", "-j", jobs, "envs/hang.yml", "envs/hang2.yml"],
    )
    assert took < PROMPT_SECONDS, f"{took:.1f}s\n{output}"
    assert code == 130, output
    assert "envassay: interrupted; nothing half-made is kept" in output.splitlines(), output
    assert "Traceback" not in output, output
    assert not wait_for_no_processes(box.tag, within=5.0)


def test_a_second_ctrl_c_does_not_cut_the_clean_up_short(
    tagged: Sandbox, test_channel: LocalChannel
) -> None:
    """An impatient user presses Ctrl-C three times: envassay still ends with its message
    and 130 (not by the signal), promptly, leaving nothing running."""
    box = tagged
    hanging_project(box, test_channel)
    argv = [sys.executable, "-m", "envassay", "check", "envs/hang.yml"]
    code, took, output = ctrl_c_while_probing(box, argv, presses=20, gap=0.01)
    assert took < PROMPT_SECONDS, f"{took:.1f}s\n{output}"
    assert code == 130, output
    assert "envassay: interrupted; nothing half-made is kept" in output.splitlines(), output
    assert "Traceback" not in output, output
    assert not wait_for_no_processes(box.tag, within=5.0)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_killed_envassay_check_takes_its_probes_with_it(
    tagged: Sandbox, test_channel: LocalChannel, jobs: str
) -> None:
    """The probe runs without command.py's guard process (it guards itself, for speed):
    kill -9 of envassay mid-import must still end the probe and its import child."""
    box = tagged
    hanging_project(box, test_channel)
    proc = start(box, "check", "-j", jobs, "envs/hang.yml")
    try:
        busy = wait_for(lambda: child_running(box.tag, "/envs/hang-"), 240)
        assert busy, (box.root / "interrupted.log").read_text()
        time.sleep(0.5)
        probes = [cmd for _, cmd in processes_with_tag(box.tag) if "/envs/hang-" in cmd]
        assert len(probes) >= 2, probes  # the probe and its import child
        os.kill(proc.pid, signal.SIGKILL)  # envassay alone, as the OOM killer does
        proc.wait(timeout=10)
        left = wait_for_no_processes(box.tag, within=5.0)
        assert not left, f"outlived a killed envassay: {left}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.skipif(shutil.which("nox") is None, reason="nox is not installed")
def test_ctrl_c_during_nox_envs_is_prompt_and_leaves_no_children(
    tagged: Sandbox, test_channel: LocalChannel
) -> None:
    box = tagged
    hanging_project(box, test_channel)
    noxfile = Path(__file__).resolve().parents[2] / "noxfile.py"
    shutil.copyfile(noxfile, box.project / "noxfile.py")  # the project's own, on this project
    nox = shutil.which("nox")
    assert nox is not None
    code, took, output = ctrl_c_while_probing(
        box, [nox, "-f", str(box.project / "noxfile.py"), "-s", "envs(env='hang')"]
    )
    assert took < PROMPT_SECONDS, f"{took:.1f}s\n{output}"
    assert code != 0, output
    assert "KeyboardInterrupt" in output or "Interrupted" in output, output
    assert not wait_for_no_processes(box.tag, within=5.0)
