"""What the store holds besides its envs, with sizes, and the pruning of logs and caches
(`envassay envs list|prune`). Symlinks are never followed: one is counted as 0 bytes and
never removed through."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from envassay.store_layout import CONTEXT_PREFIX, UNPACK_PREFIX, StoreLayout


@dataclass(frozen=True)
class Item:
    """A log file or a cache area: its name, where, how big, when last changed."""

    name: str
    path: Path
    size: int
    mtime: float


def tree_size(path: Path) -> int:
    """The bytes of ``path`` and, for a real folder, everything under it (lstat: hard
    links count once per name, symlinks are not followed)."""
    try:
        if path.is_symlink() or not path.is_dir():
            return path.lstat().st_size if path.is_file() and not path.is_symlink() else 0
    except OSError:
        return 0
    total = 0
    for root, dirs, files in os.walk(path):  # os.walk does not descend into symlinks
        for name in (*files, *dirs):
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def _item(name: str, path: Path) -> Item:
    try:
        mtime = path.lstat().st_mtime
    except OSError:
        mtime = 0.0
    return Item(name, path, tree_size(path), mtime)


def build_logs(layout: StoreLayout) -> list[Item]:
    """The image build logs (regular files named ``build-*.log``)."""
    if not layout.logs.is_dir() or layout.logs.is_symlink():
        return []
    found = (p for p in layout.logs.glob("build-*.log") if p.is_file() and not p.is_symlink())
    return [_item(p.name, p) for p in sorted(found)]


def caches(layout: StoreLayout) -> list[Item]:
    """Each cache area present."""
    return [_item(n, p) for n, p in layout.cache.areas().items() if os.path.lexists(p)]


def old_logs(layout: StoreLayout, days: float) -> list[Item]:
    cutoff = time.time() - days * 86400
    return [log for log in build_logs(layout) if log.mtime < cutoff]


def remove_logs(logs: Iterable[Item]) -> int:
    removed = 0
    for log in logs:
        if not log.path.is_symlink():
            with contextlib.suppress(FileNotFoundError):
                log.path.unlink()
                removed += 1
    return removed


def builders_running(layout: StoreLayout) -> list[str]:
    """The keys whose builder holds its lock now (an env or image being made)."""
    busy = []
    locks = sorted(layout.locks.glob("*.lock")) if layout.locks.is_dir() else []
    for lock in locks:
        try:
            fd = os.open(lock, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            busy.append(lock.name[: -len(".lock")])
        finally:
            os.close(fd)  # drops the flock if it was taken
    return busy


def remove_cache(layout: StoreLayout, item: Item) -> bool:
    """Move a cache area aside (atomically), then delete it; a symlink is refused (False).
    What envs hard-linked from it stays theirs."""
    if item.path.is_symlink():
        return False
    try:
        trash = Path(tempfile.mkdtemp(prefix=".trash-", dir=layout.cache.root))
        os.rename(item.path, trash / item.name)
    except FileNotFoundError:
        return True
    shutil.rmtree(trash, ignore_errors=True)
    return True


def remove_stale_contexts(layout: StoreLayout, older_than: float = 3600.0) -> int:
    """Delete the scratch folders killed work left: build contexts of image builds
    (``envassay-context-*``) and packages half unpacked into the package cache
    (``.envassay-unpack-*``), once older than ``older_than`` seconds (work in progress is
    younger)."""
    removed = 0
    cutoff = time.time() - older_than
    found = [
        *(layout.contexts.glob(f"{CONTEXT_PREFIX}*") if layout.contexts.is_dir() else ()),
        *(layout.cache.pkgs.glob(f"{UNPACK_PREFIX}*") if layout.cache.pkgs.is_dir() else ()),
    ]
    for context in sorted(found):
        with contextlib.suppress(OSError):
            if context.is_symlink() or not context.is_dir() or context.lstat().st_mtime > cutoff:
                continue
            shutil.rmtree(context)
            removed += 1
    return removed


def belongs_to(project: str | None, spec: object, root: Path) -> bool:
    """Whether an entry was made for the project at ``root``: its recorded project, else
    (entries made before the store recorded projects) whether its spec lies under ``root``."""
    if project:
        return Path(project) == root
    return isinstance(spec, str) and bool(spec) and Path(spec).resolve().is_relative_to(root)
