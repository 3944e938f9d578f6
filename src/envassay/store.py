"""The content-addressed env store.

Each environment lives at ``<store>/envs/<key>``, where the key is made of the
lock (or spec) hash, the backend and the platform. conda prefixes embed their
own path in text files, so an env cannot be built elsewhere and renamed into
place; instead it is built at its final path and becomes valid only when the
completion marker is written, last and atomically. A file lock per key
serialises creators; a prefix without a marker is half-made, never used, and
removed by the next creator.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envassay import redact

MARKER = ".envassay-complete.json"


@dataclass(frozen=True)
class StoreKey:
    """What makes two environments the same: content hash, backend, platform."""

    name: str
    digest: str
    backend: str
    platform: str

    def __str__(self) -> str:
        return f"{path_label(self.name)}-{self.digest[:16]}-{self.backend}-{self.platform}"


def path_label(name: str) -> str:
    """A spec name as one path component: a name is a label and may hold spaces or ':'."""
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", name).strip("-.") or "env"


@dataclass(frozen=True)
class StoreEntry:
    """An environment in the store, complete or not."""

    key: str
    prefix: Path
    complete: bool
    meta: dict[str, Any]

    def size_bytes(self) -> int:
        return sum(p.lstat().st_size for p in self.prefix.rglob("*") if not p.is_symlink())


@dataclass(frozen=True)
class Ensured:
    """The result of :meth:`EnvStore.ensure`."""

    prefix: Path
    reused: bool
    seconds: float
    meta: dict[str, Any]


class EnvStore:
    """Prefixes under ``root/envs``, package caches under ``root/cache``."""

    def __init__(self, root: Path) -> None:
        self.root = root.expanduser().resolve()

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    def prefix_for(self, key: StoreKey) -> Path:
        return self.root / "envs" / str(key)

    def lookup(self, key: StoreKey) -> Path | None:
        """The prefix for ``key`` if it is complete, else None."""
        prefix = self.prefix_for(key)
        return prefix if (prefix / MARKER).is_file() else None

    def ensure(
        self, key: StoreKey, build: Callable[[Path], dict[str, Any]], info: dict[str, Any]
    ) -> Ensured:
        """Return the complete prefix for ``key``, calling ``build(prefix)`` only when needed."""
        started = time.perf_counter()
        if (prefix := self.lookup(key)) is not None:
            return Ensured(prefix, True, time.perf_counter() - started, _read_marker(prefix))
        (self.root / "locks").mkdir(parents=True, exist_ok=True)
        # Imported here: a reused env (every warm run) needs no lock, and filelock's
        # import costs 15-40 ms of each run.
        from filelock import FileLock

        with FileLock(self.root / "locks" / f"{key}.lock"):
            # Another process may have finished it while we waited for the lock.
            if (prefix := self.lookup(key)) is not None:
                return Ensured(prefix, True, time.perf_counter() - started, _read_marker(prefix))
            prefix = self.prefix_for(key)
            _remove(prefix)  # half-made by an interrupted creator
            prefix.parent.mkdir(parents=True, exist_ok=True)
            try:
                details = build(prefix)
            except BaseException:
                _remove(prefix)
                raise
            seconds = time.perf_counter() - started
            meta = {
                **info,
                **details,
                "key": str(key),
                "seconds": round(seconds, 3),
                "created": time.time(),
                "pid": os.getpid(),
            }
            _write_marker(prefix, meta)
            self._log_creation(meta)
        return Ensured(prefix, False, seconds, meta)

    def entries(self) -> Iterator[StoreEntry]:
        """Every prefix in the store, complete or half-made."""
        envs = self.root / "envs"
        if not envs.is_dir():
            return
        for prefix in sorted(p for p in envs.iterdir() if p.is_dir()):
            complete = (prefix / MARKER).is_file()
            meta = _read_marker(prefix) if complete else {}
            yield StoreEntry(prefix.name, prefix, complete, meta)

    def remove(self, entry: StoreEntry) -> None:
        """Delete one entry, holding its lock so no creator is mid-way."""
        from filelock import FileLock

        (self.root / "locks").mkdir(parents=True, exist_ok=True)
        with FileLock(self.root / "locks" / f"{entry.key}.lock"):
            _remove(entry.prefix)

    def creations(self) -> list[dict[str, Any]]:
        """The store's append-only record of every environment it created."""
        log = self.root / "created.jsonl"
        if not log.is_file():
            return []
        return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]

    def _log_creation(self, meta: dict[str, Any]) -> None:
        # One short O_APPEND write per line keeps concurrent writers from interleaving.
        line = json.dumps({k: meta[k] for k in ("key", "seconds", "created", "pid")})
        line = redact.mask(line) + "\n"
        fd = os.open(self.root / "created.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)


def _write_marker(prefix: Path, meta: dict[str, Any]) -> None:
    tmp = prefix / f"{MARKER}.tmp"
    tmp.write_text(redact.mask(json.dumps(meta, indent=1, default=str)))
    os.replace(tmp, prefix / MARKER)


def _read_marker(prefix: Path) -> dict[str, Any]:
    try:
        data = json.loads((prefix / MARKER).read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _remove(path: Path) -> None:
    if path.exists() or path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
