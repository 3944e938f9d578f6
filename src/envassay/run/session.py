"""What one pytest session of envassay items keeps: the assays (run ahead, in the
background, up to ``jobs`` at once), what ran, and the reports written at the end.

The expensive part of a target is creating the env and probing it — subprocesses —
so threads suffice to run several at once. The plugin submits every (spec, target)
it knows of when the session starts (and any other as its spec file is collected);
each target's collector then waits for its own result, so items are still made and
reported in collection order, one whole report at a time. Even with ``jobs == 1``
the work runs ahead in one background thread: the next env is probed while pytest
makes and reports the items of the last one. The store's file locks make
concurrent creates safe.
"""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TextIO, TypeVar, cast

from envassay import __version__, redact
from envassay.checks import CheckResult
from envassay.command import kill_running
from envassay.errors import UserError
from envassay.progress import Progress, split_update
from envassay.run.options import parse_jobs as parse_jobs  # its home before run/options.py
from envassay.run.report import TargetRun, dumps, render_markdown, to_json

if TYPE_CHECKING:
    from envassay.lock.status import LockStatus
    from envassay.run.assay import Assay
    from envassay.spec.config import Config
    from envassay.spec.environment import EnvSpec

T = TypeVar("T")

STEP_SUMMARY = "GITHUB_STEP_SUMMARY"


Work = Callable[[], "Assay"]


class _Once(Generic[T]):
    """One input's single read (a spec, a lock's status), whichever thread asks first; its
    UserError is kept and raised to every asker."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value: T | None = None
        self._error: UserError | None = None

    def get(self, read: Callable[[], T]) -> T:
        with self._lock:
            if self._value is None and self._error is None:
                try:
                    self._value = read()
                except UserError as exc:
                    self._error = exc
        if self._error is not None:
            raise self._error
        assert self._value is not None
        return self._value


@dataclass
class _Entry:
    """One (spec, target) as it is being gathered."""

    env: str
    spec: str
    target: str
    platform: str | None = None
    results: list[CheckResult] = field(default_factory=list)
    assay: Assay | None = None
    error: str | None = None
    bad_input: bool = False  # the error is the user's to fix (a UserError)
    seconds: float | None = None

    def run(self) -> TargetRun:
        report = self.assay.report if self.assay else None
        imports = report.imports if report else ()
        interpreter = report.interpreter if report else None
        return TargetRun(
            env=self.env,
            spec=self.spec,
            target=self.target,
            platform=self.platform,
            results=tuple(self.results),
            imports=imports,
            error=self.error,
            seconds=self.seconds,
            interpreter=interpreter.describe(len(report.conda_records))
            if report and interpreter
            else None,
        )


class SessionHandoff:
    """Given to pytest as a plugin object by `envassay check`, which made the session and
    started its work before pytest ran: the envassay plugin then uses this session."""

    def __init__(self, session: AssaySession) -> None:
        self.session = session


class AssaySession:
    """Assays by (spec path, target), in collection order, and what became of them."""

    def __init__(self, *, jobs: int = 1, root: Path | None = None) -> None:
        self.jobs = max(1, jobs)
        self.root = root
        self._entries: dict[tuple[Path, str], _Entry] = {}
        self._futures: dict[tuple[Path, str], concurrent.futures.Future[tuple[Assay, float]]] = {}
        # Every future ever submitted: one being waited for is no longer in _futures.
        self._submitted: list[concurrent.futures.Future[tuple[Assay, float]]] = []
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._stream: TextIO | None = None
        self.written: list[str] = []
        self.report_error: UserError | None = None  # a report file that could not be written
        self.quiet = False  # pytest's -q: no progress lines
        # Where pytest's terminal writer is on its current line (0: at a line's start);
        # set by the plugin. Progress never starts on pytest's line (`collecting ...`).
        self.terminal_column: Callable[[], int] = lambda: 0
        self._live_shown = False
        self._live_text = ""
        # In a log: pytest's column when a progress line last broke pytest's open line
        # (`collecting ...`); while pytest writes nothing more, the next line needs no break.
        self._broken_at = 0
        self._reads: dict[tuple[str, Path], _Once[Any]] = {}

    def _once(self, kind: str, path: Path, read: Callable[[], T]) -> T:
        with self._lock:
            once = self._reads.setdefault((kind, path.resolve()), _Once())
        return cast(T, once.get(read))

    def spec(self, path: Path) -> EnvSpec:
        """The spec at ``path``, read once in this session: the work started before pytest
        and the plugin's collector share one read (and its UserError, raised to both)."""
        # Deferred: start-up cost; the first env's work starts before this loads.
        from envassay.spec.environment import load_spec

        return self._once("spec", path, lambda: load_spec(path))

    def lock_status(self, spec: EnvSpec, config: Config) -> LockStatus:
        """The spec's lock status, its lock read once in this session for all its targets."""
        # Deferred: start-up cost; the first env's work starts before this loads.
        from envassay.lock.status import lock_status

        return self._once("lock", spec.path, lambda: lock_status(spec.path, config, spec))

    # --- running assays -------------------------------------------------------------------

    @property
    def parallel(self) -> bool:
        """More than one env target at once (their progress lines are labelled)."""
        return self.jobs > 1

    def submit(self, path: Path, target: str, work: Work) -> None:
        """Start ``work`` for (path, target) in the pool, unless it is already there."""
        key = (path.resolve(), target)
        with self._lock:
            if key in self._futures:
                return
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(
                    max_workers=self.jobs, thread_name_prefix="envassay"
                )
            self._futures[key] = self._pool.submit(_timed, work)
            self._submitted.append(self._futures[key])

    def assay(self, path: Path, target: str, env: str, work: Work) -> Assay:
        """The assay of (path, target): the submitted one when there is one, else run now.

        Exceptions (a UserError for bad input) propagate to the caller; they are also
        recorded for the report.
        """
        key = (path.resolve(), target)
        entry = self._entry(key, env)
        future = self._futures.pop(key, None)
        try:
            try:
                assay, seconds = future.result() if future is not None else _timed(work)
            finally:
                self.clear_progress()
        except Exception as exc:
            entry.error = _one_line(exc)
            entry.bad_input = isinstance(exc, UserError)
            raise
        entry.assay, entry.seconds, entry.platform = assay, seconds, assay.platform
        return assay

    def progress(self, label: str) -> Progress:
        """A progress sink for one target run in the background: whole lines, never
        captured by pytest (they go to a copy of the real stderr), labelled when several
        targets run at once."""
        prefix = f"envassay: [{label}] " if self.parallel else "envassay: "

        def write(message: str) -> None:
            transient, message = split_update(message)
            message = message.strip()
            if not message or self.quiet:
                return
            with self._lock:
                stream = self._stderr()
                column = self.terminal_column()
                if transient and not _isatty(stream):
                    return  # a log gets the phase's closing line, not each update
                if _isatty(stream):
                    # One live line, on the row below pytest's, the cursor put back where
                    # pytest left it (relative moves: right also when the screen scrolls).
                    width = shutil.get_terminal_size().columns - 1
                    text = f"{prefix}{message}"[:width]
                    stream.write(f"\n\r\x1b[K{text}\x1b[A\r{_right(column)}")
                    self._live_shown, self._live_text = True, text
                else:  # a log: whole lines, one per phase, never glued to pytest's
                    lead = "\n" if column and column != self._broken_at else ""
                    self._broken_at = column
                    stream.write(f"{lead}{prefix}{message}\n")
                stream.flush()

        return write

    def around_terminal_write(self, write: Callable[[], None]) -> None:
        """Run pytest's own ``write`` with the live line out of its way, then redraw it."""
        with self._lock:
            shown = self._live_shown
        if not shown:
            write()
            return
        self.clear_progress()
        write()
        with self._lock:
            stream = self._stderr()
            stream.write(f"\n\r\x1b[K{self._live_text}\x1b[A\r{_right(self.terminal_column())}")
            stream.flush()
            self._live_shown = True

    def clear_progress(self) -> None:
        """Erase the live line (a target's work ended): pytest's next line goes there."""
        with self._lock:
            if not self._live_shown:
                return
            self._live_shown = False
            stream = self._stderr()
            stream.write(f"\n\r\x1b[K\x1b[A\r{_right(self.terminal_column())}")
            stream.flush()

    def _stderr(self) -> TextIO:
        if self._stream is None:
            try:
                fd = os.dup(sys.__stderr__.fileno())  # type: ignore[union-attr]
                real = open(fd, "w", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115
                self._stream = cast(TextIO, redact.MaskingStream(real))
            except (AttributeError, OSError, ValueError):
                self._stream = sys.stderr
        return self._stream

    def open_stderr(self) -> None:
        """Copy the real stderr now, before pytest's capture can stand in for it."""
        self._stderr()

    def close(self) -> None:
        """End the pool. Work nobody collected (an interrupted or aborted run) is cancelled,
        and the commands it is running are killed, so that the run ends now."""
        if self._pool is not None:
            if any(not future.done() for future in self._submitted):
                for future in self._futures.values():
                    future.cancel()
                kill_running()
                if (docker := sys.modules.get("envassay.docker")) is not None:
                    docker.kill_running()  # the containers it is running, likewise
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._stream is not None and self._stream is not sys.stderr:
            self._stream.close()
        self._stream = None

    # --- what ran -------------------------------------------------------------------------

    def record_result(self, path: Path, target: str, env: str, result: CheckResult) -> None:
        self._entry((path.resolve(), target), env).results.append(result)

    def record_error(self, path: Path, target: str, env: str, message: str) -> None:
        """``message``: why the env is bad input (its spec cannot be read)."""
        entry = self._entry((path.resolve(), target), env)
        entry.error, entry.bad_input = message, True

    @property
    def bad_input(self) -> bool:
        """Whether some env's spec was bad input (the run's exit code is then 2)."""
        return any(entry.bad_input for entry in self._entries.values())

    def runs(self) -> list[TargetRun]:
        """What ran, in collection order; targets none of whose items ran are left out."""
        return [e.run() for e in self._entries.values() if e.results or e.error]

    def _entry(self, key: tuple[Path, str], env: str) -> _Entry:
        with self._lock:
            if key not in self._entries:
                self._entries[key] = _Entry(env, self._display(key[0]), key[1])
            return self._entries[key]

    def _display(self, path: Path) -> str:
        if self.root is not None:
            try:
                return path.relative_to(self.root.resolve()).as_posix()
            except ValueError:
                pass
        return str(path)

    # --- reports --------------------------------------------------------------------------

    def write_reports(
        self, markdown: Path | None, json_path: Path | None, *, environ: dict[str, str]
    ) -> list[str]:
        """Markdown to ``markdown`` and appended to $GITHUB_STEP_SUMMARY; JSON to ``json_path``.

        Nothing is written when no envassay target ran (the plugin is inert then).
        Returns a line per file written. A file that cannot be written ends the writing:
        ``report_error`` says which and why (one line, exit 2).
        """
        try:
            return self._write_reports(markdown, json_path, environ=environ)
        except UserError as exc:
            self.report_error = exc
            return self.written

    def _write_reports(
        self, markdown: Path | None, json_path: Path | None, *, environ: dict[str, str]
    ) -> list[str]:
        runs = self.runs()
        if not runs:
            return []
        written = self.written = []
        text = redact.mask(render_markdown(runs))
        if markdown is not None:
            _write(markdown, text)
            written.append(f"Markdown report: {markdown}")
        if summary := environ.get(STEP_SUMMARY):
            _write(Path(summary), text + "\n", append=True)
            written.append(f"Markdown report appended to ${STEP_SUMMARY} ({summary})")
        if json_path is not None:
            created = datetime.now(timezone.utc).isoformat(timespec="seconds")
            document = to_json(runs, envassay_version=__version__, created=created)
            _write(json_path, redact.mask(dumps(document)))
            written.append(f"JSON report: {json_path}")
        return written


def _write(path: Path, text: str, *, append: bool = False) -> None:
    """Write a report file; one that cannot be written is the user's to fix (a path)."""
    try:
        if not append:
            path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a" if append else "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        raise UserError(
            f"cannot write the report: {exc.strerror or exc}",
            where=path,
            hint="choose a writable path",
        ) from None


def _timed(work: Work) -> tuple[Assay, float]:
    started = time.perf_counter()
    assay = work()
    return assay, time.perf_counter() - started


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, UserError):
        return exc.render()
    return f"{type(exc).__name__}: {exc}"


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _right(columns: int) -> str:
    return f"\x1b[{columns}C" if columns > 0 else ""
