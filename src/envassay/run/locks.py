"""`envassay lock`, `envassay lock --check` and `envassay drift`."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO, TypeVar

from envassay import redact
from envassay.errors import EXIT_CHECK_FAILED, EXIT_OK, EXIT_USER_ERROR, UserError
from envassay.lock.format import LockError, lock_path_for
from envassay.lock.status import LockStatus, lock_status
from envassay.progress import ProgressLine
from envassay.spec.config import Config, load_config
from envassay.spec.environment import EnvSpec, load_spec
from envassay.spec.platforms import validate_platforms
from envassay.spec.resolve import lock_platforms

if TYPE_CHECKING:
    from envassay.lock.drift import Drift

T = TypeVar("T")


def spec_paths(specs: Sequence[Path], config: Config) -> list[Path]:
    """The specs named, else every configured one; a missing file is the user's error."""
    paths = [Path(p) for p in specs] or [_relative(p) for p in config.spec_paths()]
    if not paths:
        raise UserError(f"no specs found (looked for {list(config.specs)} under {config.root})")
    for path in paths:
        if not path.is_file():
            raise UserError("spec not found", where=path)
    return paths


def _relative(path: Path) -> Path:
    """``envs/x.yml`` rather than ``/abs/project/envs/x.yml`` when under the cwd."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def check_locks(specs: Sequence[Path], *, out: TextIO = sys.stdout) -> int:
    """Stale-lock drift without solving: exit 1 naming each stale or missing lock."""
    config = load_config()
    started = time.perf_counter()
    statuses, unreadable = [], 0
    for path in spec_paths(specs, config):
        try:
            statuses.append(lock_status(path, config))
        except UserError as exc:  # this spec's (or its lock's) error; the others go on
            _spec_error(exc, path, ())
            unreadable += 1
    bad = [s for s in statuses if not s.fresh]
    for status in bad:
        print(status.describe(), file=out)
    seconds = time.perf_counter() - started
    if bad:
        print(f"{len(bad)} of {len(statuses)} lock(s) stale or missing ({seconds:.2f}s)", file=out)
    else:
        print(f"{len(statuses)} lock(s) fresh ({seconds:.2f}s)", file=out)
    if unreadable:
        return EXIT_USER_ERROR
    return EXIT_CHECK_FAILED if bad else EXIT_OK


def write_locks(
    specs: Sequence[Path],
    *,
    platforms: Sequence[str] = (),
    force: bool = False,
    out: TextIO = sys.stdout,
) -> int:
    """Solve each spec for its platforms and write ``envs/NAME.conda-lock.yml``; a spec
    that fails is named (with its platforms) and the others are still locked (exit 2)."""
    config = load_config()
    requested = validate_platforms(platforms)
    failed = 0
    for path in spec_paths(specs, config):
        try:
            _write_lock(path, config, requested, force, out)
        except UserError as exc:  # this spec's error; the others are still locked
            _spec_error(exc, path, requested)
            failed += 1
    return EXIT_USER_ERROR if failed else EXIT_OK


def _write_lock(
    path: Path, config: Config, requested: Sequence[str], force: bool, out: TextIO
) -> None:
    # Deferred: start-up cost; `lock --check` neither solves nor diffs (pip, the store).
    from envassay.lock.solve import header_for, make_lock

    spec = load_spec(path)
    wanted = lock_platforms(spec, config, requested)
    status = _status_or_unreadable(path, config, spec)
    if (
        status is not None
        and status.fresh
        and status.lock is not None
        and not force
        and set(wanted) == set(status.lock.platforms)
    ):
        print(f"{status.lock_path} is fresh; not re-solved (--force re-solves)", file=out)
        return
    progress = ProgressLine()
    try:
        result = _named(make_lock, path, wanted)(spec, config, wanted, progress)
    finally:
        progress.close()
    lock_path = lock_path_for(path)
    result.lock.write(lock_path, header_for(path, config.root))
    for warning in result.warnings:
        print(f"envassay: warning: {warning}", file=sys.stderr)
    counts = ", ".join(
        f"{p}: {len(result.lock.packages_for(p, 'conda'))} conda"
        + (f" + {len(pip)} pip" if (pip := result.lock.packages_for(p, "pip")) else "")
        for p in wanted
    )
    print(f"locked {path} -> {lock_path} ({counts}) in {result.seconds:.1f}s", file=out)


def _named(func: Callable[..., T], path: Path, platforms: Sequence[str]) -> Callable[..., T]:
    """``func``, whose user errors name the spec and the platforms solved when they name
    no place, or no platform, of their own."""

    def call(*args: object) -> T:
        try:
            return func(*args)
        except UserError as exc:
            if exc.where is None:
                exc.where = str(path)
            if not any(p in exc.message for p in platforms):
                exc.message = f"for {', '.join(platforms)}: {exc.message}"
            exc.args = (exc.render(),)
            raise

    return call


def _spec_error(exc: UserError, path: Path, platforms: Sequence[str]) -> None:
    """One line on stderr for a spec that failed, naming it (and the platforms asked)."""
    text = exc.render()
    if str(path) not in text and path.name not in text:
        text = f"{path}: {text}"
    if platforms and not any(p in text for p in platforms):
        text = f"{text} [{', '.join(platforms)}]"
    if exc.details:
        print(exc.details, file=sys.stderr)
    print(f"envassay: error: {redact.mask(text)}", file=sys.stderr)


def _status_or_unreadable(path: Path, config: Config, spec: EnvSpec) -> LockStatus | None:
    """An unreadable lock is simply replaced by `envassay lock` (the spec as read, not read
    again)."""
    try:
        return lock_status(path, config, spec)
    except LockError as exc:
        print(f"envassay: replacing an unreadable lock: {exc.render()}", file=sys.stderr)
        return None


def report_drift(
    specs: Sequence[Path],
    *,
    fail: bool = False,
    markdown: Path | None = None,
    out: TextIO = sys.stdout,
) -> int:
    """Upstream drift: solve today, diff with each lock; exit 1 with --fail when anything moved."""
    # Deferred: start-up cost; `lock --check` neither solves nor diffs (pip, the store).
    from envassay.lock.drift import render_drift_markdown, render_drift_text

    config = load_config()
    explicit = bool(specs)
    results = []
    failed = 0
    for path in spec_paths(specs, config):
        if not explicit and not lock_path_for(path).is_file():
            print(f"{path}: no lock; skipped (`envassay lock {path}` writes one)", file=out)
            continue
        progress = ProgressLine()
        try:
            result = _drift_one(path, config, progress)
        except UserError as exc:  # this spec's error; the others are still compared
            _spec_error(exc, path, ())
            failed += 1
            continue
        finally:
            progress.close()
        results.append(result)
        print(render_drift_text(result), file=out)
        for warning in result.warnings:
            print(f"envassay: warning: {warning}", file=sys.stderr)
    if markdown is not None:
        markdown.write_text(redact.mask(render_drift_markdown(results)), encoding="utf-8")
        print(f"wrote {markdown}", file=out)
    moved = [r for r in results if r.moved]
    if failed:
        return EXIT_USER_ERROR
    if moved and fail:
        return EXIT_CHECK_FAILED
    return EXIT_OK


def _drift_one(path: Path, config: Config, progress: ProgressLine) -> Drift:
    """Today's solve of one spec against its lock; errors name the spec and platforms."""
    # Deferred: start-up cost; `lock --check` neither solves nor diffs (pip, the store).
    from envassay.lock.drift import drift

    spec = _named(load_spec, path, ())(path)
    status = lock_status(path, config, spec)
    platforms = status.lock.platforms if status.lock is not None else ()
    return _named(drift, path, platforms)(spec, config, progress)
