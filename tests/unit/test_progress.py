"""Updates within a phase: on a terminal's live line only; a log gets whole lines."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from envassay.progress import UPDATE, ProgressLine, split_update, update
from envassay.run.session import AssaySession


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_an_update_is_marked_and_read_back() -> None:
    assert split_update(update("fetching 1/3")) == (True, "fetching 1/3")
    assert split_update("fetched 3") == (False, "fetched 3")


def test_a_log_leaves_updates_out_and_keeps_phases() -> None:
    log = io.StringIO()
    line = ProgressLine(log, live=False)
    line(update("fetching packages: 1/3, 1.0 MB"))
    line("fetched 3 package(s)")
    assert log.getvalue() == "fetched 3 package(s)\n"


def test_a_terminal_shows_updates_on_its_live_line() -> None:
    terminal = io.StringIO()
    line = ProgressLine(terminal, live=True)
    line(update("fetching packages: 1/3, 1.0 MB"))
    assert terminal.getvalue() == "\rfetching packages: 1/3, 1.0 MB"
    assert UPDATE not in terminal.getvalue()


def test_the_check_sessions_sink_does_the_same(tmp_path: Path) -> None:
    for stream, shown in ((io.StringIO(), False), (_Terminal(), True)):
        session = AssaySession(root=tmp_path)
        session._stream = stream
        write = session.progress("env/native")
        write(update("linking: 2/5 package(s)"))
        write("linked in 0.10s")
        text = stream.getvalue()
        assert ("linking: 2/5" in text) is shown
        assert "envassay: linked in 0.10s" in text and UPDATE not in text


def test_the_worker_keeps_the_mark_at_its_lines_start(capsys: pytest.CaptureFixture[str]) -> None:
    """The rattler worker writes the mark without importing it (a test holds them equal)."""
    from envassay import rattler_worker

    rattler_worker._progress(update("fetching packages: 1/2, 0.5 MB"))
    rattler_worker._progress("fetched 2 package(s)")
    err = capsys.readouterr().err
    assert (
        err == f"{UPDATE}[rattler] fetching packages: 1/2, 0.5 MB\n[rattler] fetched 2 package(s)\n"
    )
