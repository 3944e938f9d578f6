"""Helpers for the reliability tests: run the real CLI in a sandbox, bounded in time and
memory, with every file write it makes outside the sandbox recorded; find processes a
run left behind.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Runs `envassay` (python -m envassay ARGS) with an audit hook that records, in the file
# named by $ENVASSAY_AUDIT_LOG, every write-like operation on a path outside the roots in
# $ENVASSAY_AUDIT_ALLOWED (os.pathsep-separated). Subprocesses are recorded too.
_AUDITED = r"""
import os, sys
log_path = os.environ.pop("ENVASSAY_AUDIT_LOG")
allowed = tuple(p for p in os.environ.pop("ENVASSAY_AUDIT_ALLOWED").split(os.pathsep) if p)
log = open(log_path, "a", buffering=1)
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
PATH_EVENTS = {"os.mkdir", "os.rename", "os.remove", "os.rmdir", "os.symlink", "os.link",
               "os.truncate", "os.chmod", "os.chown", "os.utime", "shutil.rmtree",
               "shutil.copyfile", "shutil.move"}
def outside(path):
    if isinstance(path, int):
        return None
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    path = os.path.abspath(os.fspath(path))
    if path in ("/dev/null", "/dev/tty") or path.startswith(allowed):
        return None
    return path
def hook(event, args):
    try:
        if event == "open":
            path, mode, flags = args
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & WRITE_FLAGS)
            where = outside(path) if writes else None
            if where:
                log.write(f"open {mode or flags} {where}\n")
        elif event in PATH_EVENTS:
            for arg in args[:2]:
                if isinstance(arg, (str, bytes, os.PathLike)) and (where := outside(arg)):
                    log.write(f"{event} {where}\n")
        elif event == "subprocess.Popen":
            log.write(f"subprocess {args[1]!r}\n")
    except Exception:
        pass
sys.addaudithook(hook)
sys.argv = ["envassay", *sys.argv[1:]]
import runpy
runpy.run_module("envassay", run_name="__main__", alter_sys=True)
"""


@dataclass(frozen=True)
class Bounded:
    """How a bounded run ended."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    max_rss_mb: float
    timed_out: bool
    audit: tuple[str, ...] = ()

    def describe(self) -> str:
        shown = [a if len(a) < 200 else "<script>" for a in self.args]
        return (
            f"`{' '.join(shown)}` exit {self.returncode} in {self.seconds:.1f}s, "
            f"max RSS {self.max_rss_mb:.0f} MB, timed out: {self.timed_out}\n"
            f"--- stdout\n{self.stdout[-3000:]}\n--- stderr\n{self.stderr[-3000:]}\n"
            f"--- audit\n" + "\n".join(self.audit)
        )


class Sandbox:
    """A temporary world for one run: HOME, XDG dirs, TMPDIR, the store and a project."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.home = self.root / "home"
        self.tmp = self.root / "tmp"
        self.store = self.root / "store"
        self.project = self.root / "project"
        for path in (self.home, self.tmp, self.project / "envs"):
            path.mkdir(parents=True, exist_ok=True)
        self.tag = uuid.uuid4().hex

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        keep = ("PATH", "LANG", "LC_ALL", "SYSTEMROOT")
        env = {k: v for k, v in os.environ.items() if k in keep}
        env.update(
            HOME=str(self.home),
            XDG_CACHE_HOME=str(self.home / ".cache"),
            XDG_CONFIG_HOME=str(self.home / ".config"),
            XDG_DATA_HOME=str(self.home / ".local" / "share"),
            TMPDIR=str(self.tmp),
            ENVASSAY_HOME=str(self.store),
            PYTHONDONTWRITEBYTECODE="1",
            # Every process this run starts inherits it: leftovers are found by it.
            ENVASSAY_TEST_TAG=self.tag,
        )
        env.update(extra or {})
        return env


def run_envassay_audited(
    sandbox: Sandbox,
    args: Sequence[str | Path],
    *,
    timeout: float = 60,
    memory_mb: int = 2048,
    extra_env: Mapping[str, str] | None = None,
) -> Bounded:
    """`python -m envassay ARGS` in ``sandbox.project``, bounded and audited."""
    log = sandbox.root / f"audit-{uuid.uuid4().hex[:8]}.log"
    env = sandbox.env(extra_env)
    env["ENVASSAY_AUDIT_LOG"] = str(log)
    env["ENVASSAY_AUDIT_ALLOWED"] = str(sandbox.root)
    result = run_bounded(
        [sys.executable, "-c", _AUDITED, *map(str, args)],
        env=env,
        cwd=sandbox.project,
        timeout=timeout,
        memory_mb=memory_mb,
    )
    audit = tuple(log.read_text().splitlines()) if log.exists() else ()
    log.unlink(missing_ok=True)
    return Bounded(
        result.args,
        result.returncode,
        result.stdout,
        result.stderr,
        result.seconds,
        result.max_rss_mb,
        result.timed_out,
        audit,
    )


def run_bounded(
    args: Sequence[str | Path],
    *,
    env: Mapping[str, str],
    cwd: Path,
    timeout: float,
    memory_mb: int,
) -> Bounded:
    """Run ``args`` with an address-space limit and a wall-clock limit (the whole process
    group is killed when it is reached); report its own peak RSS (from wait4)."""
    limit = memory_mb * 1024 * 1024

    def limits() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    argv = tuple(str(a) for a in args)
    started = time.monotonic()
    proc = subprocess.Popen(
        argv,
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=limits,
    )
    out: list[bytes] = []
    err: list[bytes] = []
    assert proc.stdout is not None and proc.stderr is not None
    readers = [
        threading.Thread(target=lambda: out.append(proc.stdout.read())),  # type: ignore[union-attr]
        threading.Thread(target=lambda: err.append(proc.stderr.read())),  # type: ignore[union-attr]
    ]
    for reader in readers:
        reader.start()
    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    timer = threading.Timer(timeout, kill)
    timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    for reader in readers:
        reader.join(timeout=10)
    proc.stdout.close()
    proc.stderr.close()
    seconds = time.monotonic() - started
    with contextlib.suppress(ProcessLookupError):  # nothing of the group may outlive it
        os.killpg(proc.pid, signal.SIGKILL)
    return Bounded(
        argv,
        proc.returncode,
        b"".join(out).decode("utf-8", "replace"),
        b"".join(err).decode("utf-8", "replace"),
        seconds,
        usage.ru_maxrss / 1024,  # kilobytes on Linux
        timed_out.is_set(),
    )


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` with its size and mtime, for before/after comparisons."""
    listing: dict[str, tuple[int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            with contextlib.suppress(FileNotFoundError):
                info = path.lstat()
                listing[str(path.relative_to(root))] = (info.st_size, info.st_mtime_ns)
    return listing


def processes_with_tag(tag: str) -> list[tuple[int, str]]:
    """Live processes (not zombies) whose environment carries ENVASSAY_TEST_TAG=tag."""
    needle = f"ENVASSAY_TEST_TAG={tag}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if state != "Z":
            found.append((int(entry.name), cmdline.strip()))
    return found


def wait_for_no_processes(tag: str, within: float = 5.0) -> list[tuple[int, str]]:
    """Processes with ``tag`` still alive after ``within`` seconds (empty when none)."""
    deadline = time.monotonic() + within
    while True:
        left = processes_with_tag(tag)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def kill_tagged(tag: str) -> None:
    """Clean up after a failed test: end what it left (only processes carrying its tag)."""
    for pid, _ in processes_with_tag(tag):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


class EngineProxy:
    """A unix socket in front of a real Docker engine that can "stop" it for envassay:
    once a response from the engine contains ``cut_after`` (e.g. b"Step 2/" of a build),
    every connection is cut and the socket goes away, as when dockerd is stopped
    mid-build; the engine itself keeps running for everyone else."""

    def __init__(self, path: Path, upstream: str, cut_after: bytes | None = None) -> None:
        import socket

        self.path = path
        self.upstream = upstream
        self.cut_after = cut_after
        self.cut = threading.Event()
        self.requests: list[bytes] = []
        self._sent: dict[int, bytearray] = {}  # what each client connection sent
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(path))
        self._server.listen(16)
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"unix://{self.path}"

    def _accept(self) -> None:
        import socket

        while not self.cut.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.upstream)
            with self._lock:
                self._conns += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, source: Any, dest: Any, from_client: bool) -> None:
        try:
            while not self.cut.is_set():
                data = source.recv(65536)
                if not data:
                    break
                if from_client:
                    self.requests.append(data.split(b"\r\n", 1)[0])
                    self._sent.setdefault(id(source), bytearray()).extend(data)
                elif self.cut_after is not None and self.cut_after in data:
                    self.stop()
                    return
                dest.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dest.shutdown(2)

    def calls(self) -> list[tuple[str, str, bytes]]:
        """Every API call seen: (method, path, body), per connection in order; a
        connection upgraded to a raw stream (attach) is followed no further."""
        import re

        found = []
        for raw in list(self._sent.values()):
            data = bytes(raw)
            while match := re.match(rb"([A-Z]+) (\S+) HTTP/1\.1\r\n", data):
                head_end = data.find(b"\r\n\r\n")
                if head_end < 0:
                    break
                head = data[:head_end].decode("latin-1")
                length = re.search(r"(?im)^content-length:\s*(\d+)", head)
                size = int(length.group(1)) if length else 0
                body = data[head_end + 4 : head_end + 4 + size]
                found.append((match.group(1).decode(), match.group(2).decode(), body))
                if re.search(r"(?im)^upgrade:", head):
                    break
                data = data[head_end + 4 + size :]
        return found

    def stop(self) -> None:
        """The engine "stops": every connection is cut, the socket is gone."""
        self.cut.set()
        with contextlib.suppress(OSError):
            self._server.close()
        with self._lock:
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(2)
                with contextlib.suppress(OSError):
                    conn.close()
        with contextlib.suppress(OSError):
            self.path.unlink()


def junit_by_target(path: Path) -> dict[tuple[str, str], tuple[str, str]]:
    """(target, item name) -> (outcome, message), from pytest's JUnit XML.

    The same item name (import[numpy]) appears once per target; the target is the last
    part of the testcase's classname (``envs.x.yml.docker``).
    """
    import xml.etree.ElementTree as ET

    outcomes: dict[tuple[str, str], tuple[str, str]] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        target = case.get("classname", "").rsplit(".", 1)[-1]
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                outcome, message = tag, node.get("message", "") or (node.text or "")
        outcomes[(target, case.get("name", ""))] = (outcome, message)
    return outcomes
