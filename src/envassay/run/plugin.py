"""pytest plugin: each spec file becomes a collector, each check a pytest item.

`pytest envs/ai.yml` collects ``envs/ai.yml::native::import[numpy]``,
``::pin[numpy >=1.24,<2]``, ``::health[pip]``... Specs are collected when
named on the command line or matched by `[tool.envassay] specs`; any other
YAML file is left alone, so the plugin is inert in ordinary test runs.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from envassay import redact
from envassay.checks import CheckResult
from envassay.cleantext import visible, visible_line
from envassay.errors import UserError
from envassay.run.options import JOBS, REPORT_JSON, REPORT_MD, RUN_OPTIONS
from envassay.run.options import parse_jobs as parse_jobs  # --envassay-jobs's reading
from envassay.run.report import terminal_table
from envassay.run.session import AssaySession, SessionHandoff
from envassay.run.work import RunOptions, assay_spec, project_config, submit, targets_for
from envassay.spec.config import LOCK_SUFFIX
from envassay.spec.environment import EnvSpec

SPEC_SUFFIXES = (".yml", ".yaml")
_SESSION = pytest.StashKey[AssaySession]()
_OPTIONS = pytest.StashKey[RunOptions]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("envassay", "envassay: smoke-test conda environments")
    for option in RUN_OPTIONS:
        option.add_to_plugin(group)


def pytest_configure(config: pytest.Config) -> None:
    jobs = config.getoption(JOBS.plugin_dest, 1) or 1
    if jobs < 1:
        raise pytest.UsageError(f"--envassay-jobs must be at least 1, got {jobs}")
    handed = [p for p in config.pluginmanager.get_plugins() if isinstance(p, SessionHandoff)]
    session = handed[0].session if handed else AssaySession(jobs=jobs, root=config.rootpath)
    session.open_stderr()
    session.quiet = session.quiet or config.option.verbose < 0
    config.stash[_SESSION] = session


def _share_terminal(config: pytest.Config, session: AssaySession) -> None:
    """Progress and pytest's lines share the terminal: the session learns where pytest's
    line ends, and a live progress line steps aside while pytest writes."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    writer = getattr(reporter, "_tw", None)
    if writer is None or not hasattr(writer, "width_of_current_line"):
        return
    session.terminal_column = lambda: int(writer.width_of_current_line)
    original = writer.write

    def write(msg: str, **markup: bool) -> None:
        session.around_terminal_write(lambda: original(msg, **markup))

    writer.write = write


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(_SESSION, None)
    if session is not None:
        session.close()


def _session(config: pytest.Config) -> AssaySession:
    return config.stash[_SESSION]


def pytest_sessionstart(session: pytest.Session) -> None:
    """An explicitly requested docker target needs an engine: say so once, up front."""
    _share_terminal(session.config, _session(session.config))  # the reporter exists now
    options = session.config.option
    if "docker" in (options.envassay_target or []) or options.envassay_image:
        # Deferred: the Docker SDK loads only when a docker target is used (start-up cost).
        from envassay.docker import engine_reason

        reason = engine_reason()
        if reason is not None:
            raise pytest.UsageError(reason)
    # The specs named on the command line start now, in order, before collection and
    # while pytest makes and reports the items of those before them.
    for arg in session.config.args:
        path = Path(arg.split("::")[0])
        if _looks_like_spec(path) and path.is_file():
            _submit(session.config, path)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if not _looks_like_spec(file_path) or not _is_spec(file_path, parent.config):
        return None
    # A spec found in a directory that was asked for starts now. pytest also offers the
    # siblings of a file it was asked for, and keeps only that file: they start nothing.
    _submit(parent.config, file_path)
    node = SpecFile.from_parent(parent, path=file_path)
    if (nodeid := visible_line(node.nodeid)) != node.nodeid:
        # pytest prints node ids as they are: a file name's control characters would
        # reach the terminal and the CI log raw.
        node = SpecFile.from_parent(
            parent, path=file_path, name=visible_line(node.name), nodeid=nodeid
        )
    return node


def _looks_like_spec(path: Path) -> bool:
    return path.suffix in SPEC_SUFFIXES and not path.name.endswith(LOCK_SUFFIX)


def _submit(config: pytest.Config, path: Path) -> None:
    """Start creating and probing ``path`` on each of its targets the command line asks
    for (each target's collector waits for its own); one already started is left alone."""
    if (only := _requested_targets(config, path)) is not None:
        submit(_session(config), _options(config), [path], only=only)


def _requested_targets(config: pytest.Config, path: Path) -> frozenset[str] | None:
    """The targets of ``path`` its arguments select: every one (empty set) for the file
    or a directory above it, those named by node ids (``x.yml::native``); None: not asked."""
    path = path.resolve()
    named: set[str] = set()
    every = False
    for arg in config.args or [str(config.invocation_params.dir)]:
        where, _, rest = arg.partition("::")
        asked = Path(where).resolve()
        if asked == path:
            target_name = rest.split("::")[0]
            every = every or not target_name
            named.add(target_name)
        elif path.is_relative_to(asked) and asked.is_dir():
            every = True
    if every:
        return frozenset()
    return frozenset(named) if named else None


def _is_spec(path: Path, config: pytest.Config) -> bool:
    explicit = {Path(arg.split("::")[0]).resolve() for arg in config.args}
    return path.resolve() in explicit or path.resolve() in _configured_specs(path.parent)


@functools.lru_cache(maxsize=32)
def _configured_specs(directory: Path) -> frozenset[Path]:
    try:
        return frozenset(p.resolve() for p in project_config(directory).spec_paths())
    except UserError:
        return frozenset()


class SpecFile(pytest.File):
    """An environment.yml: one child per target."""

    spec: EnvSpec | None = None
    error: UserError | None = None  # the spec cannot be read: each target fails with it

    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        try:
            self.spec = _session(self.config).spec(self.path)  # as the started work read it
        except UserError as exc:
            self.error = exc
        for target_name in _targets(self.config, self.path.parent):
            yield TargetCollector.from_parent(self, name=target_name)

    @property
    def env_name(self) -> str:
        return self.spec.name if self.spec is not None else self.path.stem


def _targets(config: pytest.Config, directory: Path) -> list[str]:
    return targets_for(_options(config), directory)


def _options(config: pytest.Config) -> RunOptions:
    """The run's --envassay-* options, read once."""
    options = config.stash.get(_OPTIONS, None)
    if options is None:
        options = config.stash[_OPTIONS] = RunOptions.from_values(
            lambda option: config.getoption(option.plugin_dest)
        )
    return options


class TargetCollector(pytest.Collector):
    """Creates and probes the env on one target; its items are the verdicts."""

    def collect(self) -> Iterator[pytest.Item]:
        parent = self.parent
        assert isinstance(parent, SpecFile)
        session = _session(self.config)
        if parent.spec is None:  # unreadable: this env's one item fails, the run goes on
            error = parent.error or UserError("cannot be read", where=parent.path)
            session.record_error(parent.path, self.name, parent.env_name, error.render())
            yield BadInputItem.from_parent(self, name="spec", error=error)
            return
        work = functools.partial(assay_spec, _options(self.config), parent.spec, self.name, None)
        try:
            assay = session.assay(parent.path, self.name, parent.spec.name, work)
        except UserError as exc:  # cannot be solved or created: likewise
            yield BadInputItem.from_parent(self, name="create", error=exc)
            return
        for result in assay.results:
            # A module name comes from a package's metadata: untrusted, printed by pytest.
            yield CheckItem.from_parent(self, name=visible_line(result.name), result=result)


class CheckFailed(Exception):
    """A check's verdict was 'failed'; its message says expected vs found."""


class _VerdictItem(pytest.Item):
    """An item whose failure is a verdict: shown as ``NAME: message``, no traceback."""

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> str:
        if isinstance(excinfo.value, CheckFailed):
            return f"{self.name}: {excinfo.value}"  # a CheckItem is named by its result
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"{self.parent.name if self.parent else ''}::{self.name}"


class BadInputItem(_VerdictItem):
    """The one item of an env whose spec cannot be read, solved or created: it fails with
    the error, naming the spec; the run's other envs are checked as usual."""

    def __init__(self, *, error: UserError, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        details = f"{error.details}\n" if error.details else ""  # e.g. what micromamba printed
        # JUnit XML keeps this text as pytest gets it: masked here, not by the stream.
        # Spec-derived text (names, a tool's output): no escape or workflow command passes.
        self.message = visible(redact.mask(details + error.render()))
        self.user_properties.append(("envassay", self.message))

    def runtest(self) -> None:
        raise CheckFailed(self.message)


class CheckItem(_VerdictItem):
    """One verdict, e.g. import[numpy]."""

    def __init__(self, *, result: CheckResult, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.result = result
        self.user_properties.append(("envassay", result.message))

    def runtest(self) -> None:
        if self.result.outcome == "skipped":
            pytest.skip(self.result.message)
        if self.result.outcome == "failed":
            raise CheckFailed(self.result.message)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Each check item that ran goes into the run's reports under its spec and target."""
    report = yield
    if isinstance(item, CheckItem) and call.when == "call":
        collector = item.parent
        spec_file = collector.parent if collector is not None else None
        if isinstance(collector, TargetCollector) and isinstance(spec_file, SpecFile):
            _session(item.config).record_result(
                spec_file.path, collector.name, spec_file.env_name, item.result
            )
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Write the Markdown and JSON reports (and $GITHUB_STEP_SUMMARY) of what ran."""
    config = session.config
    state = _session(config)
    state.write_reports(
        config.getoption(REPORT_MD.plugin_dest),
        config.getoption(REPORT_JSON.plugin_dest),
        environ=dict(os.environ),
    )
    if state.report_error is not None:  # one line at the end (terminal summary), exit 2
        session.exitstatus = pytest.ExitCode.USAGE_ERROR


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """A table at the end of the run: per env and target, passed/failed/skipped."""

    state = _session(config)
    if state.report_error is not None:
        terminalreporter.write_line(f"envassay: error: {state.report_error.render()}")
    runs = state.runs()
    if not runs:
        return
    terminalreporter.write_sep("=", "envassay summary")
    for line in terminal_table(runs):
        terminalreporter.write_line(line)
    for line in state.written:
        terminalreporter.write_line(line)
