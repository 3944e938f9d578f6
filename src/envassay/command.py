"""The one place envassay starts a subprocess."""

from __future__ import annotations

import contextlib
import errno
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from envassay import redact

# For a child that guards itself (the probe, the rattler worker) instead of running under
# _GUARD: the pid of the envassay process it must die with. A child that reads it after
# envassay has already died sees another parent, and leaves at once.
GUARD_VARIABLE = "ENVASSAY_GUARD_PARENT"


def self_guarded_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's) with :data:`GUARD_VARIABLE` set to this process."""
    return {**(os.environ if env is None else env), GUARD_VARIABLE: str(os.getpid())}


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
    # Bounded runs (run(limit=...)): something the command started still held its output
    # after it exited (that output was not read), and how many bytes were cut.
    outlived: bool = False
    stdout_cut: int = 0
    stderr_cut: int = 0

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def describe(self) -> str:
        """A short account of a failure: the command line and the tail of its output."""
        tail = (self.stderr.strip() or self.stdout.strip())[-2000:]
        status = "timed out" if self.timed_out else f"exit {self.returncode}"
        # What envassay repeats of a tool's words passes the one mask (credentials in URLs).
        return redact.mask(f"`{' '.join(self.args)}` ({status}): {tail}")


class Capture:
    """What is kept of an output stream of any size: its first and last ``limit // 2``
    bytes, and how many were cut between them (said where they were cut)."""

    def __init__(self, limit: int) -> None:
        self.half = max(limit // 2, 1)
        self.head = bytearray()
        self.tail = bytearray()
        self.cut = 0

    def feed(self, data: bytes) -> None:
        room = self.half - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if not data:
            return
        self.tail += data
        excess = len(self.tail) - self.half
        if excess > 0:
            self.cut += excess
            del self.tail[:excess]

    def text(self) -> str:
        marker = f"\n[envassay: {self.cut} bytes of output cut here]\n" if self.cut else ""
        return (bytes(self.head).decode("utf-8", "replace") + marker) + bytes(self.tail).decode(
            "utf-8", "replace"
        )


# What a bounded run keeps of stderr at most: enough to say what went wrong.
_STDERR_LIMIT = 1024 * 1024
# How long a bounded run's output is still read after the command exited: what it wrote
# before exiting is in the pipe already; a writer still there after this is not it.
_DRAIN_SECONDS = 1.0
# A bounded run that times out is asked to end (SIGTERM: a guarded child ends what it
# started) before it is killed.
_TERM_GRACE_SECONDS = 2.0


def run(
    args: Sequence[str | os.PathLike[str]],
    *,
    input: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    timeout: float | None = None,
    die_with_parent: bool = True,
    limit: int | None = None,
) -> CommandResult:
    """Run ``args`` to completion, capturing text output; never raises on a non-zero exit.

    A timeout kills the whole process group so no grandchild outlives it. An exception
    here (Ctrl-C) kills it too; and with ``die_with_parent`` (the default; Linux) the
    child is killed when this process dies, even by SIGKILL: a killed `create` leaves
    no pip writing into a prefix that the next creator removes.

    With ``limit`` (bytes per stream) the output is bounded in memory (:class:`Capture`)
    and read only until the command exits (see :data:`_DRAIN_SECONDS`).
    """
    argv = tuple(str(a) for a in args)
    with _spawn(argv, env, cwd, die_with_parent, stdin=input is not None) as proc, _tracked(proc):
        if limit is not None:
            try:
                return _run_bounded(argv, proc, input, timeout, limit)
            except BaseException:
                _kill_group(proc)
                raise
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


def _run_bounded(
    argv: tuple[str, ...],
    proc: subprocess.Popen[str],
    input: str | None,
    timeout: float | None,
    limit: int,
) -> CommandResult:
    """:func:`run` for a command whose output may be huge or hostile."""
    assert proc.stdout is not None and proc.stderr is not None
    captures = (Capture(limit), Capture(min(limit, _STDERR_LIMIT)))
    stop = threading.Event()
    readers = [
        threading.Thread(target=_pump, args=(stream.fileno(), capture, stop), daemon=True)
        for stream, capture in zip((proc.stdout, proc.stderr), captures, strict=True)
    ]
    for reader in readers:
        reader.start()
    if proc.stdin is not None:
        with contextlib.suppress(BrokenPipeError, OSError):
            proc.stdin.write(input or "")
            proc.stdin.close()
    timed_out = False
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(_TERM_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            proc.wait()
    deadline = time.monotonic() + _DRAIN_SECONDS
    for reader in readers:
        reader.join(max(deadline - time.monotonic(), 0.0))
    outlived = any(reader.is_alive() for reader in readers)
    stop.set()
    for reader in readers:
        reader.join()
    out, err = (c.text() for c in captures)
    cuts = [c.cut for c in captures]
    return CommandResult(argv, proc.returncode, out, err, timed_out, outlived, *cuts)


def _pump(fd: int, capture: Capture, stop: threading.Event) -> None:
    """Feed ``fd`` into ``capture`` until EOF or ``stop``."""
    while not stop.is_set():
        ready, _, _ = select.select([fd], [], [], 0.1)
        if not ready:
            continue
        try:
            data = os.read(fd, 65536)
        except OSError:
            return
        if not data:
            return
        capture.feed(data)


def _spawn(
    argv: tuple[str, ...],
    env: Mapping[str, str] | None,
    cwd: str | Path | None,
    die_with_parent: bool,
    *,
    stdin: bool,
) -> subprocess.Popen[str]:
    """``argv`` started with text pipes, in a session of its own (so that its whole
    process group can be killed), under the guard unless ``die_with_parent`` is False."""
    return subprocess.Popen(
        _launched(argv, env, cwd, die_with_parent),
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(env) if env is not None else None,
        cwd=cwd,
        start_new_session=True,
    )


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
    die_with_parent: bool = True,
) -> CommandResult:
    """Like :func:`run`, but hand each stderr line to ``on_stderr_line`` as it arrives.

    Used for long-running children (creates) whose progress the user should see live;
    ``on_stdout_line`` sees stdout's lines too. ``die_with_parent`` (the default; Linux):
    the child is killed when this process dies, even by SIGKILL, so a killed creator
    leaves no tool writing into a prefix that the next creator removes.
    """
    started = start(args, env=env, cwd=cwd, die_with_parent=die_with_parent)
    return started.stream(input=input, on_stderr_line=on_stderr_line, on_stdout_line=on_stdout_line)


def start(
    args: Sequence[str | os.PathLike[str]],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    die_with_parent: bool = True,
) -> Started:
    """Start ``args`` now and give it its input later (:meth:`Started.stream`): a child
    whose own start-up (an interpreter, its imports) can overlap the caller's work.
    Its stdin is a pipe, which it may read (and wait on) at once."""
    argv = tuple(str(a) for a in args)
    proc = _spawn(argv, env, cwd, die_with_parent, stdin=True)
    with _RUNNING_LOCK:
        _RUNNING.add(proc)
    return Started(argv, proc)


class Started:
    """A command :func:`start` started: stream it to its end once, or abandon it."""

    def __init__(self, argv: tuple[str, ...], proc: subprocess.Popen[str]) -> None:
        self.argv = argv
        self._proc = proc

    def stream(
        self,
        *,
        input: str | None = None,
        on_stderr_line: Callable[[str], None],
        on_stdout_line: Callable[[str], None] | None = None,
    ) -> CommandResult:
        """Write ``input`` and close stdin, then read to the end as :func:`stream` does."""
        proc = self._proc
        assert proc.stderr is not None
        err_lines: list[str] = []
        out: list[str] = []
        try:
            reader = threading.Thread(
                target=lambda: out.append(_feed_and_read(proc, input or "", on_stdout_line))
            )
            reader.start()
            for line in proc.stderr:
                err_lines.append(line)
                on_stderr_line(line.rstrip("\n"))
            reader.join()
            proc.wait()
        except BaseException:
            _kill_group(proc)
            raise
        finally:
            self._close()
        return CommandResult(self.argv, proc.returncode, "".join(out), "".join(err_lines))

    def abandon(self) -> None:
        """Not needed after all: kill its process group and reap it."""
        _kill_group(self._proc)
        self._close()

    def _close(self) -> None:
        with contextlib.suppress(OSError):
            self._proc.__exit__(None, None, None)  # closes the pipes, waits for it
        with _RUNNING_LOCK:
            _RUNNING.discard(self._proc)


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


# The guard a command runs under (Linux): it asks for SIGTERM when envassay dies (even by
# SIGKILL), runs the command in its own process group (stdin/stdout/stderr are the same
# pipes) and, on that signal, kills the whole group: the command and everything it
# started (compileall's and pip's workers too), which PR_SET_PDEATHSIG alone would miss.
# It is also a child subreaper: what the command leaves behind (a daemon that left the
# group with setsid, a build backend's server) is adopted, and killed when the command
# ends, so nothing a command starts outlives it.
# It exits as the command did (a signal is re-raised), so callers see no difference.
_GUARD = """\
import os, signal, sys
def _children():
    me, found = os.getpid(), set()
    for tid in os.listdir(f"/proc/{me}/task"):
        with open(f"/proc/{me}/task/{tid}/children") as f:
            found.update(int(p) for p in f.read().split())
    return found
def _descendants():
    try:
        for _ in range(10000):
            found = _children()
            if not found:
                return
            for p in found:
                try:
                    os.kill(p, signal.SIGKILL)
                    os.waitpid(p, 0)
                except OSError:
                    pass
    except OSError:
        pass
def _end(*_):
    _descendants()
    os.killpg(0, signal.SIGKILL)
signal.signal(signal.SIGTERM, _end)
import ctypes
ctypes.CDLL(None).prctl(1, signal.SIGTERM)
ctypes.CDLL(None).prctl(36, 1)
if os.getppid() != int(sys.argv[1]):
    _end()
pid = os.posix_spawn(sys.argv[2], sys.argv[3:], os.environ,
                     setsigdef=(signal.SIGPIPE, signal.SIGXFSZ, signal.SIGTERM))
while True:
    try:
        status = os.waitpid(pid, 0)[1]
        break
    except InterruptedError:
        continue
_descendants()
code = os.waitstatus_to_exitcode(status)
if code < 0:
    signal.signal(-code, signal.SIG_DFL)
    os.kill(os.getpid(), -code)
os._exit(code)
"""


def _launched(
    argv: tuple[str, ...],
    env: Mapping[str, str] | None,
    cwd: str | Path | None,
    die_with_parent: bool,
) -> tuple[str, ...]:
    """What Popen starts: ``argv`` itself, or ``argv`` under the guard (see _GUARD).

    The executable is looked up here, so a missing one raises FileNotFoundError in the
    caller exactly as Popen would.
    """
    if not die_with_parent or not sys.platform.startswith("linux"):
        return argv
    return (
        sys.executable,
        "-I",
        "-S",
        "-c",
        _GUARD,
        str(os.getpid()),
        _which(argv[0], env, cwd),
        *argv,
    )


def _which(program: str, env: Mapping[str, str] | None, cwd: str | Path | None) -> str:
    if os.sep in program:
        path = Path(cwd or ".") / program if not os.path.isabs(program) else Path(program)
        if not path.is_file():
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)
        if not os.access(path, os.X_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), program)
        return str(path.absolute())
    search = (env if env is not None else os.environ).get("PATH", os.defpath)
    found = shutil.which(program, path=search)
    if found is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)
    return str(Path(found).absolute())
