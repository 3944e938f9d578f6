"""Where a package's files would land: every path stays inside the prefix, or nothing is linked.

A linker joins each ``info/paths.json`` path onto the prefix and writes there;
py-rattler 0.28 does so without checking, and a ``_path`` with ``..`` components
(alone, or after a symlink that another entry made) lands outside the prefix.
So every path a package set will write is resolved here first, component by
component as the kernel would, following the symlinks the packages themselves
make and those already in the prefix; each must stay inside. Pure: the caller
lists the entries (from the archive, or an extracted package directory).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

# As the kernel's limit on symlinks followed in one lookup (ELOOP).
_MAX_HOPS = 40


@dataclass(frozen=True)
class Entry:
    """One path a package will write, relative to the prefix; ``link`` when it is a symlink."""

    package: str
    path: str
    link: str | None = None


@dataclass(frozen=True)
class Escape(Exception):
    """A package path that resolves outside the prefix."""

    package: str
    path: str
    why: str

    def __str__(self) -> str:
        return f"package {self.package} would write {self.path!r} {self.why}; nothing was linked"


def check(prefix: Path, entries: Sequence[Entry]) -> None:
    """Raise :class:`Escape` for the first entry that would land outside ``prefix``.

    Every symlink of the set counts as present for every path (whatever order the
    linker takes), as do the symlinks already in the prefix.
    """
    tree = _Tree(Path(os.path.realpath(prefix)), [e for e in entries if e.link is not None])
    for entry in entries:
        parts = _parts(entry)
        parent = tree.resolve(parts[:-1], entry)
        if entry.link is None:
            tree.resolve((*parent, parts[-1]), entry)
            continue
        target = entry.link
        if os.path.isabs(target):
            tree.inside_absolute(target, entry, "through its symlink target")
        else:
            tree.resolve((*parent, *_split(target)), entry, "through its symlink target")


def _parts(entry: Entry) -> tuple[str, ...]:
    if not entry.path or os.path.isabs(entry.path) or entry.path.startswith("\\"):
        raise Escape(entry.package, entry.path, "(not a path relative to the prefix)")
    parts = _split(entry.path)
    if not parts:
        raise Escape(entry.package, entry.path, "(not a path relative to the prefix)")
    return parts


def _split(path: str) -> tuple[str, ...]:
    return tuple(p for p in path.replace("\\", "/").split("/") if p not in ("", "."))


class _Tree:
    """The prefix as the linker leaves it: the set's symlinks, keyed by where they land."""

    def __init__(self, prefix: Path, links: Iterable[Entry]) -> None:
        self.prefix = prefix
        self.links: dict[tuple[str, ...], str] = {}
        self._disk: dict[tuple[str, ...], str | None] = {}
        links = list(links)
        # A symlink's own place may lie under another symlink: key each by its resolved
        # parent, repeated until the keys settle (each round can only uncover more).
        for _ in range(len(links) + 1):
            keyed: dict[tuple[str, ...], str] = {}
            for entry in links:
                parts = _parts(entry)
                assert entry.link is not None
                place = (*self.resolve(parts[:-1], entry), parts[-1])
                keyed[place] = entry.link
            if keyed == self.links:
                return
            self.links = keyed

    def resolve(self, parts: Sequence[str], entry: Entry, how: str = "") -> tuple[str, ...]:
        """``parts`` resolved to a real place inside the prefix (symlinks followed), or Escape."""
        done: list[str] = []
        todo = list(parts)
        hops = 0
        while todo:
            part = todo.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if not done:
                    raise Escape(entry.package, entry.path, self._outside(how))
                done.pop()
                continue
            target = self._link(done, part)
            if target is None:
                done.append(part)
                continue
            hops += 1
            if hops > _MAX_HOPS:
                raise Escape(entry.package, entry.path, "(a symlink loop)")
            if os.path.isabs(target):
                done = list(self.inside_absolute(target, entry, how))
            else:
                todo[:0] = _split(target)
        return tuple(done)

    def inside_absolute(self, target: str, entry: Entry, how: str) -> tuple[str, ...]:
        """An absolute symlink target is fine only when it names a place in the prefix."""
        try:
            rest = Path(os.path.normpath(target)).relative_to(self.prefix)
        except ValueError:
            raise Escape(entry.package, entry.path, self._outside(how, target)) from None
        return self.resolve(_split(rest.as_posix()), entry, how)

    def _link(self, done: Sequence[str], part: str) -> str | None:
        key = (*done, part)
        if key in self.links:
            return self.links[key]
        if key not in self._disk:  # the same directories come up for every file below them
            on_disk = os.path.join(self.prefix, *key)
            self._disk[key] = os.readlink(on_disk) if os.path.islink(on_disk) else None
        return self._disk[key]

    def _outside(self, how: str, target: str | None = None) -> str:
        where = f" ({target})" if target else ""
        return f"{how}{where} outside the prefix {self.prefix}".lstrip()
