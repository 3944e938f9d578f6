"""Upstream moved (lock <-> today's solve): the spec solved again today against its
channels, diffed with the lock, and how that is shown (text, Markdown)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from envassay.lock.diff import Change, diff_entries, entries_of, render_table, summarize
from envassay.lock.format import LockError
from envassay.lock.solve import make_lock
from envassay.lock.status import lock_status
from envassay.progress import Progress
from envassay.spec.config import Config
from envassay.spec.environment import EnvSpec


@dataclass(frozen=True)
class Drift:
    """Lock <-> today's solve for one spec, per platform."""

    spec_path: Path
    lock_path: Path
    changes: Mapping[str, list[Change]]
    stale: bool = False
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def moved(self) -> bool:
        return any(self.changes.values())


def drift(spec: EnvSpec, config: Config, progress: Progress = lambda _line: None) -> Drift:
    """Solve ``spec`` today for the lock's platforms and diff it with the lock."""
    status = lock_status(spec.path, config, spec)
    if status.lock is None:
        raise LockError(
            "no lock to compare today's solve with",
            where=status.lock_path,
            hint=f"run `envassay lock {spec.path}` first",
        )
    lock = status.lock
    today = make_lock(spec, config, lock.platforms, progress)
    changes = {
        p: diff_entries(entries_of(lock.packages_for(p)), entries_of(today.lock.packages_for(p)))
        for p in lock.platforms
    }
    return Drift(spec.path, status.lock_path, changes, not status.fresh, today.warnings)


def render_drift_text(result: Drift) -> str:
    lines = []
    stale = " (the lock is stale too: run `envassay lock`)" if result.stale else ""
    for platform, changes in result.changes.items():
        if not changes:
            lines.append(f"{result.spec_path} [{platform}]: nothing moved upstream{stale}")
            continue
        lines.append(
            f"{result.spec_path} [{platform}]: upstream moved: {summarize(changes)}{stale}"
        )
        lines.append(render_table(changes, "locked", "today"))
    return "\n".join(lines)


def render_drift_markdown(results: Sequence[Drift]) -> str:
    """Markdown for an issue or a PR comment: one table per env and platform."""
    moved = sum(1 for r in results if r.moved)
    out = ["## envassay drift", ""]
    out.append(
        f"{moved} of {len(results)} environment(s) moved upstream since they were locked."
        if moved
        else f"Nothing moved upstream in {len(results)} locked environment(s)."
    )
    for result in results:
        for platform, changes in result.changes.items():
            out += ["", f"### `{result.spec_path}` ({platform})", ""]
            if result.stale:
                out += ["> The lock is also stale (the spec changed since it was written).", ""]
            if not changes:
                out.append("Nothing moved.")
                continue
            out += ["| package | locked | today |", "|---|---|---|"]
            for change in changes:
                left, right = change.cells(("(not locked)", "(gone)"))
                label = change.name if change.manager == "conda" else f"{change.name} (pip)"
                out.append(f"| {label} | {left} | {right} |")
        for warning in result.warnings:
            out += ["", f"> {warning}"]
    return "\n".join(out) + "\n"
