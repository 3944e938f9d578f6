"""What a run assays, apart from pytest: its options, each spec's targets, and the work
that creates (or builds) and probes one spec on one target.

Shared by the pytest plugin and `envassay check`, which starts this work before it has
even imported pytest (see runner.py): a warm run's probes then overlap pytest's own
start-up instead of following it.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envassay.errors import UserError
from envassay.run.options import RUN_OPTIONS, Option
from envassay.spec.config import Config, GpuMode, find_pyproject, load_config

if TYPE_CHECKING:
    from envassay.lock.status import LockStatus
    from envassay.progress import Progress
    from envassay.run.assay import Assay
    from envassay.run.session import AssaySession
    from envassay.spec.environment import EnvSpec


@dataclass(frozen=True)
class RunOptions:
    """What the command line says about every env of a run (pytest's --envassay-* options,
    `envassay check`'s own)."""

    targets: tuple[str, ...] = ()  # explicit ones; else docker for ``image``, else configured
    backend: str | None = None
    gpu: GpuMode = "auto"
    image: str | None = None
    builder_image: str | None = None
    runtime_image: str | None = None
    creator: str | None = None
    recreate: bool = False  # make each native env again, even when the store has it

    @classmethod
    def from_values(cls, value: Callable[[Option], Any]) -> RunOptions:
        """From each declared option's value (``value(option)``: the plugin's, the CLI's)."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        given: dict[str, Any] = {}
        for option in RUN_OPTIONS:
            if option.field in fields:
                got = value(option)
                if option.kind == "append":
                    got = tuple(got or ())
                elif option.kind == "flag":
                    got = bool(got)
                given[option.field] = got
        return cls(**given)

    def forward(self) -> list[str]:
        """The plugin's argv for these options (as `envassay check` hands them to pytest)."""
        return [
            arg
            for option in RUN_OPTIONS
            if option.field in self.__dataclass_fields__
            for arg in option.forward(getattr(self, option.field))
        ]


def project_config(directory: Path) -> Config:
    """The [tool.envassay] that governs the specs in ``directory`` (or the working
    directory): its pyproject.toml is read once, whichever directory under it asks; a
    file changed since (another size, time or inode) is read again."""
    directory = directory.resolve()
    pyproject = find_pyproject(directory)
    if pyproject is None:
        return _config_at(directory, None)
    info = pyproject.stat()
    return _config_at(pyproject.parent, (info.st_ino, info.st_size, info.st_mtime_ns))


@functools.lru_cache(maxsize=32)
def _config_at(root: Path, version: tuple[int, int, int] | None) -> Config:
    return load_config(root)


def targets_for(options: RunOptions, directory: Path) -> list[str]:
    """--target, else docker alone for --image, else the configured ones."""
    if options.targets:
        return list(dict.fromkeys(options.targets))
    if options.image:
        return ["docker"]
    try:
        return list(project_config(directory).targets)
    except UserError:
        return ["native"]


def submit(
    session: AssaySession,
    options: RunOptions,
    paths: Iterable[Path],
    only: Collection[str] = (),
) -> None:
    """Start every target (those in ``only`` when given) of every spec in ``paths``, in
    order (already started: left be)."""
    for path in paths:
        for target_name in targets_for(options, path.parent):
            if only and target_name not in only:
                continue
            work = functools.partial(assay_path, options, path, target_name, session)
            session.submit(path, target_name, work)


def assay_path(options: RunOptions, path: Path, target_name: str, session: AssaySession) -> Assay:
    """A target's work in the background: read the spec (once for the session: its other
    targets and the plugin's collector take the same), then as :func:`assay_spec`."""
    spec = session.spec(path)
    progress = session.progress(f"{spec.name}/{target_name}")
    return assay_spec(options, spec, target_name, progress, session=session)


def assay_spec(
    options: RunOptions,
    spec: EnvSpec,
    target_name: str,
    progress: Progress | None,
    *,
    session: AssaySession | None = None,
) -> Assay:
    """Create (or build) and probe ``spec`` on the target ``target_name``, and judge it.

    ``progress``: where a background run's lines go; None: this process's stderr.
    ``session``: the run's, whose one read of the spec's lock every target takes.
    """
    # Deferred: start-up cost; the first env's work starts before these load.
    from envassay.run.assay import assay_native

    config = project_config(spec.path.parent)
    read_lock_status = (
        functools.partial(session.lock_status, spec, config) if session is not None else None
    )
    if options.gpu != config.gpu_mode:
        config = dataclasses.replace(config, gpu_mode=options.gpu)
    if target_name == "docker":
        return _assay_docker(options, spec, config, progress, read_lock_status)
    return assay_native(
        spec,
        config,
        backend=options.backend,
        progress=progress or _line,
        recreate=options.recreate,
        read_lock_status=read_lock_status,
    )


def _assay_docker(
    options: RunOptions,
    spec: EnvSpec,
    config: Config,
    progress: Progress | None,
    read_lock_status: Callable[[], LockStatus] | None,
) -> Assay:
    # Deferred: start-up cost; the first env's work starts before these load.
    from envassay.progress import ProgressLine
    from envassay.run.container import DockerOptions, assay_docker_or_skip

    docker = DockerOptions(
        image=options.image,
        builder_image=options.builder_image,
        runtime_image=options.runtime_image,
        creator=options.creator,
    )
    if progress is not None:
        return assay_docker_or_skip(
            spec, config, docker, progress=progress, read_lock_status=read_lock_status
        )
    # Build output: one live line on a terminal, every line otherwise (the log has all).
    line = ProgressLine(sys.stderr)
    try:
        return assay_docker_or_skip(
            spec, config, docker, progress=line, read_lock_status=read_lock_status
        )
    finally:
        line.close()


def _line(message: str) -> None:
    sys.stderr.write(f"envassay: {message}\n")
