"""`envassay check`: the same run as `nox -s envs`, through pytest and the plugin, without nox.

The envs' work (create, probe, judge) starts before pytest is even imported, in the
background (see session.py): a warm run's first probes overlap pytest's start-up
(about 0.4 s here), and pytest's collectors then take the results in order.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from envassay import redact
from envassay.errors import EXIT_CHECK_FAILED, EXIT_OK, EXIT_USER_ERROR, UserError
from envassay.run.noxargs import AUTOLOAD, pytest_flags
from envassay.run.options import JOBS, REPORT_JSON, REPORT_MD
from envassay.run.session import AssaySession, SessionHandoff
from envassay.run.work import RunOptions, project_config, submit
from envassay.spec.config import GpuMode

if TYPE_CHECKING:
    import pytest

PYTEST_OK, PYTEST_FAILED = 0, 1  # pytest.ExitCode.OK and TESTS_FAILED


def run_checks(
    specs: Sequence[Path],
    *,
    backend: str | None = None,
    junitxml: Path | None = None,
    pytest_args: Sequence[str] = (),
    targets: Sequence[str] = (),
    image: str | None = None,
    builder_image: str | None = None,
    runtime_image: str | None = None,
    creator: str | None = None,
    gpu: GpuMode = "auto",
    jobs: int = 1,
    report_md: Path | None = None,
    report_json: Path | None = None,
    recreate: bool = False,
) -> int:
    """Run every check on ``specs`` (default: the configured ones); 0 pass, 1 fail, 2 bad input.

    ``targets`` (default: configured) and ``image`` (check that image, build nothing)
    choose where; an explicit docker target with no engine is exit 2, in one line.
    ``gpu`` (auto, require, skip) overrides each env's GPU policy for this run.
    ``jobs``: how many env targets are created and probed at once. ``report_md`` and
    ``report_json``: where the run's reports go ($GITHUB_STEP_SUMMARY gets the Markdown too).
    """
    config = project_config(Path.cwd())  # read once: the work's lookups reuse it
    paths = [Path(p) for p in specs] or config.spec_paths()
    if not paths:
        raise UserError(f"no specs found (looked for {list(config.specs)} under {config.root})")
    for path in paths:
        if not path.is_file():
            raise UserError("spec not found", where=path)
    # pytest reads every argument as a node id, split at "::": a spec whose path holds
    # "::" cannot be handed to it. It is bad input alone; the other specs are checked.
    unaddressable = [
        UserError("pytest cannot address a spec whose path holds '::'", where=p, hint="rename it")
        for p in paths
        if "::" in str(p)
    ]
    paths = [p for p in paths if "::" not in str(p)]
    if not paths:
        raise unaddressable[0]
    if "docker" in targets or image:
        # Deferred: the Docker SDK loads only when a docker target is used (start-up cost).
        from envassay.docker import shared_engine

        shared_engine()  # EngineUnavailable: which socket, and how to start an engine
    options = RunOptions(
        targets=tuple(targets),
        backend=backend,
        gpu=gpu,
        image=image,
        builder_image=builder_image,
        runtime_image=runtime_image,
        creator=creator,
        recreate=recreate,
    )
    # What pytest's plugin is told: the same options, each forwarded as declared.
    args = [*pytest_flags(config.root), *options.forward()]
    args += [*JOBS.forward(jobs), *REPORT_MD.forward(report_md), *REPORT_JSON.forward(report_json)]
    if junitxml:
        args += ["--junitxml", str(junitxml)]
    session = AssaySession(jobs=jobs, root=config.root)
    # pytest's -q: quiet from the first line (the work starts before pytest parses it).
    session.quiet = any(arg == "--quiet" or arg.startswith("-q") for arg in pytest_args)
    session.open_stderr()
    for error in unaddressable:
        print(f"envassay: error: {error.render()}", file=sys.stderr)
        where = Path(error.where or "")
        session.record_error(where, "spec", where.stem, error.render())
    try:
        submit(session, options, paths)
        argv = [*args, *pytest_args, *map(str, paths)]
        code = run_pytest(argv, plugins=[SessionHandoff(session)])
    finally:
        session.close()  # pytest's unconfigure closed it already, unless pytest never ran
    if session.report_error is not None:  # a report that could not be written
        raise session.report_error
    if code in (PYTEST_OK, PYTEST_FAILED) and session.bad_input:
        # Every env was still checked and reported; a spec that is bad input (unreadable,
        # unsolvable, an unreachable channel) keeps its exit code, 2, above failures' 1.
        return EXIT_USER_ERROR
    if code == PYTEST_OK:
        return EXIT_OK
    if code == PYTEST_FAILED:
        return EXIT_CHECK_FAILED
    # Usage errors, a run with no items and pytest's other exits are the user's to fix.
    return EXIT_USER_ERROR


class _InterruptWatch:
    """Tells a real Ctrl-C from pytest's other INTERRUPTED exits (collection errors)."""

    interrupted = False

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        import pytest

        # Collection errors end the session with Session.Interrupted, a KeyboardInterrupt too.
        self.interrupted = not isinstance(excinfo.value, pytest.Session.Interrupted)


def run_pytest(args: Sequence[str], plugins: Sequence[object] = ()) -> int:
    """pytest in this process with no auto-loaded third-party plugins (see
    noxargs.AUTOLOAD); ``args`` start with :func:`envassay.run.noxargs.pytest_flags`, which
    loads envassay's plugin. Returns pytest's exit code; a real Ctrl-C, which pytest
    also returns as INTERRUPTED, is raised again once pytest has ended the run's
    commands. Used by `envassay check` and by the noxfile's env sessions."""
    import pytest

    watch = _InterruptWatch()
    previous = os.environ.get(AUTOLOAD)
    os.environ[AUTOLOAD] = "1"
    try:
        with redact.masked_output():  # nox's env sessions print through here too
            code = int(pytest.main(list(args), plugins=[watch, *plugins]))
    finally:
        if previous is None:
            os.environ.pop(AUTOLOAD, None)
        else:
            os.environ[AUTOLOAD] = previous
    if watch.interrupted:
        raise KeyboardInterrupt
    return code
