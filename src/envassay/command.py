"""The one place envassay starts a subprocess."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# Children running now, so that an interrupted parallel run can end them (kill_running).
_RUNNING: set[subprocess.Popen[str]] = set()
_RUNNING_LOCK = threading.Lock()


@contextlib.contextmanager
def _tracked(proc: subprocess.Popen[str]) -> Iterator[None]:
    with _RUNNING_LOCK:
        _RUNNING.add(proc)
    try:
        yield
    finally:
        with _RUNNING_LOCK:
            _RUNNING.discard(proc)


def kill_running() -> int:
    """Kill the process group of every command still running (from any thread); their
    callers then see a failed command. Returns how many there were."""
    with _RUNNING_LOCK:
        running = list(_RUNNING)
    for proc in running:
        _kill_group(proc)
    return len(running)


@dataclass(frozen=True)
class CommandResult:
    """What a finished command left behind."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def describe(self) -> str:
        """A short account of a failure: the command line and the tail of its output."""
        tail = (self.stderr.strip() or self.stdout.strip())[-2000:]
        status = "timed out" if self.timed_out else f"exit {self.returncode}"
        return f"`{' '.join(self.args)}` ({status}): {tail}"


def run(
    args: Sequence[str | os.PathLike[str]],
    *,
    input: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    timeout: float | None = None,
) -> CommandResult:
    """Run ``args`` to completion, capturing text output; never raises on a non-zero exit.

    A timeout kills the whole process group so no grandchild outlives it.
    """
    argv = tuple(str(a) for a in args)
    with (
        subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        ) as proc,
        _tracked(proc),
    ):
        try:
            out, err = proc.communicate(input=input, timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            out, err = proc.communicate()
            return CommandResult(argv, proc.returncode, out, err, timed_out=True)
        except BaseException:
            _kill_group(proc)
            raise
    return CommandResult(argv, proc.returncode, out, err)


def _kill_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, 9)


def stream(
    args: Sequence[str | os.PathLike[str]],
    *,
    input: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    on_stderr_line: Callable[[str], None],
    on_stdout_line: Callable[[str], None] | None = None,
    die_with_parent: bool = False,
) -> CommandResult:
    """Like :func:`run`, but hand each stderr line to ``on_stderr_line`` as it arrives.

    Used for long-running children (creates) whose progress the user should see live;
    ``on_stdout_line`` sees stdout's lines too. ``die_with_parent`` (Linux): the child
    is killed when this process dies, even by SIGKILL, so a killed creator leaves no
    tool writing into a prefix that the next creator removes.
    """
    argv = tuple(str(a) for a in args)
    err_lines: list[str] = []
    with (
        subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_death_signal() if die_with_parent else None,
        ) as proc,
        _tracked(proc),
    ):
        assert proc.stderr is not None
        out: list[str] = []
        reader = threading.Thread(
            target=lambda: out.append(_feed_and_read(proc, input, on_stdout_line))
        )
        reader.start()
        try:
            for line in proc.stderr:
                err_lines.append(line)
                on_stderr_line(line.rstrip("\n"))
            reader.join()
            proc.wait()
        except BaseException:
            _kill_group(proc)
            raise
    return CommandResult(argv, proc.returncode, "".join(out), "".join(err_lines))


def _feed_and_read(
    proc: subprocess.Popen[str], input: str | None, on_line: Callable[[str], None] | None = None
) -> str:
    assert proc.stdout is not None
    if input is not None and proc.stdin is not None:
        try:
            proc.stdin.write(input)
            proc.stdin.close()
        except BrokenPipeError:
            pass
    if on_line is None:
        return proc.stdout.read()
    lines: list[str] = []
    for line in proc.stdout:
        lines.append(line)
        on_line(line.rstrip("\n"))
    return "".join(lines)


def _death_signal() -> Callable[[], None] | None:
    """A preexec_fn asking Linux to SIGKILL the child when its parent dies.

    prctl is looked up here, before the fork, so the child only makes one C call.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    pr_set_pdeathsig = 1
    return lambda: prctl(pr_set_pdeathsig, signal.SIGKILL)
