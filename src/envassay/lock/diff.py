"""Package diffs: locked, installed or solved today, as entries, changes and tables."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from envassay.lock.format import LockedPackage


@dataclass(frozen=True)
class Entry:
    """One package as a diff sees it: locked, installed or solved today."""

    manager: str
    name: str
    version: str
    build: str = ""
    channel: str = ""

    def text(self, with_channel: bool = False) -> str:
        base = f"{self.version} {self.build}".strip()
        return f"{base} ({self.channel})" if with_channel and self.channel else base


@dataclass(frozen=True)
class Change:
    """One difference: ``left`` only (removed), ``right`` only (added) or both (changed)."""

    manager: str
    name: str
    left: Entry | None
    right: Entry | None

    @property
    def kind(self) -> str:
        if self.left is None:
            return "added"
        if self.right is None:
            return "removed"
        return "changed"

    def cells(self, missing: tuple[str, str] = ("(none)", "(none)")) -> tuple[str, str]:
        """The two sides as text; the channel is shown when it is what changed."""
        channel = (
            self.left is not None
            and self.right is not None
            and _channel(self.left.channel) != _channel(self.right.channel)
        )
        left = self.left.text(channel) if self.left else missing[0]
        right = self.right.text(channel) if self.right else missing[1]
        return left, right


def entries_of(packages: Iterable[LockedPackage]) -> list[Entry]:
    return [
        Entry(p.manager, p.name, p.version, p.build, p.channel if p.manager == "conda" else "")
        for p in packages
    ]


def diff_entries(left: Iterable[Entry], right: Iterable[Entry]) -> list[Change]:
    """What differs between two package sets: presence, version, build, channel."""
    lhs = {(e.manager, e.name): e for e in left}
    rhs = {(e.manager, e.name): e for e in right}
    changes = []
    for key in sorted(set(lhs) | set(rhs)):
        a, b = lhs.get(key), rhs.get(key)
        if a is not None and b is not None and _same(a, b):
            continue
        changes.append(Change(key[0], key[1], a, b))
    return changes


def _same(a: Entry, b: Entry) -> bool:
    return (a.version, a.build, _channel(a.channel)) == (b.version, b.build, _channel(b.channel))


def _channel(url: str) -> str:
    return url.rstrip("/")


def render_table(changes: Sequence[Change], left: str, right: str) -> str:
    """A fixed-width text table: package, manager, left, right."""
    missing = (f"(not {left})", f"(not {right})" if right != "today" else "(gone)")
    rows = [("package", "manager", left, right)]
    rows += [(c.name, c.manager, *c.cells(missing)) for c in changes]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(
        "  " + "  ".join(cell.ljust(widths[i]) if i < 3 else cell for i, cell in enumerate(r))
        for r in rows
    )


def summarize(changes: Sequence[Change]) -> str:
    counts = {k: sum(1 for c in changes if c.kind == k) for k in ("added", "removed", "changed")}
    return ", ".join(f"{n} {k}" for k, n in counts.items() if n)
