"""The content-addressed env store (paths: :mod:`envassay.store_layout`).

Each environment lives at ``<store>/envs/<key>``, where the key is made of the
lock (or spec) hash, the backend and the platform. conda prefixes embed their
own path in text files, so an env cannot be built elsewhere and renamed into
place; instead it is built at its final path and becomes valid only when the
completion marker is written, last and atomically. A file lock per key
serialises creators; a prefix without a marker is half-made, never used, and
removed by the next creator.

The store touches only its own: an owner record (``owners/<key>.json``, written before
a build starts, naming the project) says envassay made an entry, and an entry without
one (nor a completion marker) is foreign: never removed, never built into; a symlink at
an entry is never followed. Whoever uses an env (create, the checks' probe) holds a
shared lease on it (``leases/<key>``, flock), so prune can tell an env in use and skip
it. An OSError of the store's own (a read-only store, a full disk, ENVASSAY_HOME naming
a file) is a StoreError: one line, exit 2.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envassay import redact
from envassay.errors import UNUSABLE, UserError
from envassay.store import journal
from envassay.store.once import build_once
from envassay.store_layout import CacheLayout, StoreLayout

MARKER = ".envassay-complete.json"
LABEL_MAX = 64  # a name's share of a key: keys (and ``<key>.lock``) stay far below 255 bytes
NO_SPACE = ("No space left on device", "Disk quota exceeded", "os error 28", "os error 122")


class StoreError(UserError):
    """The store cannot be used as asked (unwritable, full, or an entry not its own)."""


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
    """A spec name as one path component: a name is a label and may hold spaces or ':'.
    A long one is cut and told apart by a hash of the whole (a file name has 255 bytes)."""
    label = re.sub(r"[^A-Za-z0-9._+-]+", "-", name).strip("-.") or "env"
    if len(label) > LABEL_MAX:
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        label = f"{label[: LABEL_MAX - 9].rstrip('-.')}-{digest}"
    return label


@dataclass(frozen=True)
class StoreEntry:
    """An entry under ``envs/``: an env envassay made (complete or not), or something
    else (``kind`` "symlink" or "foreign"), which the store never removes."""

    key: str
    prefix: Path
    complete: bool
    meta: dict[str, Any]
    kind: str = "env"  # "env" | "symlink" | "foreign"

    @property
    def project(self) -> str | None:
        """The project root the env was made for, when known."""
        project = self.meta.get("project")
        return project if isinstance(project, str) else None

    def size_bytes(self) -> int:
        if self.kind == "symlink":
            return 0
        return sum(p.lstat().st_size for p in self.prefix.rglob("*") if not p.is_symlink())


class Lease:
    """A shared flock on an entry's lease file: the env is in use until released."""

    def __init__(self, fd: int | None) -> None:
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


@dataclass(frozen=True)
class Ensured:
    """The result of :meth:`EnvStore.ensure`."""

    prefix: Path
    reused: bool
    seconds: float
    meta: dict[str, Any]
    lease: Lease = field(default_factory=lambda: Lease(None))  # release when done with it


class EnvStore:
    """Prefixes under ``root/envs``, package caches under ``root/cache`` (paths: the
    store's :class:`StoreLayout`)."""

    def __init__(self, root: Path) -> None:
        self.layout = StoreLayout.at(root)
        self.root = self.layout.root

    @property
    def cache_dir(self) -> Path:
        return self.layout.cache.root

    @property
    def cache(self) -> CacheLayout:
        return self.layout.cache

    def prefix_for(self, key: StoreKey) -> Path:
        return self.layout.prefix(str(key))

    def lookup(self, key: StoreKey) -> Path | None:
        """The prefix for ``key`` if it is complete (never through a symlink), else None."""
        prefix = self.prefix_for(key)
        return prefix if not prefix.is_symlink() and (prefix / MARKER).is_file() else None

    def lease(self, key: StoreKey | str) -> Lease:
        """Take a shared lease on ``key`` (waits while a prune removes it). On a read-only
        store nothing can be removed, so none is needed: its envs are still usable."""
        try:
            fd = os.open(self.layout.lease(str(key)), os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as exc:
            if exc.errno == errno.EROFS or _read_only(self.root):
                return Lease(None)
            fd = self._open_lease(str(key))
        try:
            _flock(fd, exclusive=False, wait=True)
        except BaseException:
            os.close(fd)
            raise
        return Lease(fd)

    def ensure(
        self,
        key: StoreKey,
        build: Callable[[Path], dict[str, Any]],
        info: dict[str, Any],
        *,
        force: bool = False,
    ) -> Ensured:
        """Return the complete prefix for ``key``, calling ``build(prefix)`` only when needed
        (always with ``force``: the env is made again). The caller gets a lease on it."""
        started = time.perf_counter()
        lease = self.lease(key)
        try:
            ensured = self._ensure(key, build, info, force, started)
        except BaseException:
            lease.release()
            raise
        return Ensured(ensured.prefix, ensured.reused, ensured.seconds, ensured.meta, lease)

    def _ensure(
        self,
        key: StoreKey,
        build: Callable[[Path], dict[str, Any]],
        info: dict[str, Any],
        force: bool,
        started: float,
    ) -> Ensured:
        def reused() -> Ensured | None:
            if force or (prefix := self.lookup(key)) is None:
                return None
            return Ensured(prefix, True, time.perf_counter() - started, _read_marker(prefix))

        def made() -> Ensured:
            prefix = self.prefix_for(key)
            self._refuse_foreign(prefix)
            _remove(prefix)  # half-made by an interrupted creator, or --force
            prefix.parent.mkdir(parents=True, exist_ok=True)
            self._write_owner(str(key), info)
            try:
                details = build(prefix)
            except BaseException as exc:
                _remove(prefix)
                if _no_space(exc):
                    raise self._error(f"no space left on device ({exc})") from None
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

        with self._unusable_is_user_error():
            return build_once(self.layout.lock(str(key)), reused, made)

    def entries(self) -> Iterator[StoreEntry]:
        """Every entry under ``envs/``: envs complete or half-made, symlinks, foreign ones."""
        envs = self.layout.envs
        if not envs.is_dir():
            return
        for prefix in sorted(envs.iterdir()):
            if prefix.is_symlink():
                yield StoreEntry(prefix.name, prefix, False, {}, "symlink")
                continue
            if not prefix.is_dir():
                continue
            complete = (prefix / MARKER).is_file()
            owner = self._read_owner(prefix.name)
            meta = {**owner, **(_read_marker(prefix) if complete else {})}
            kind = "env" if complete or owner else "foreign"
            yield StoreEntry(prefix.name, prefix, complete, meta, kind)

    def remove(self, entry: StoreEntry) -> bool:
        """Delete one env envassay made, unless it is in use (False then). Its lease is
        held exclusively and its creator's lock taken, so nobody is using or making it."""
        if entry.kind != "env":
            raise self._error(f"{entry.prefix} is a {entry.kind} entry; not removed")
        from filelock import FileLock

        with self._unusable_is_user_error():
            fd = self._open_lease(entry.key)
            try:
                if not _flock(fd, exclusive=True, wait=False):
                    return False
                self.layout.locks.mkdir(parents=True, exist_ok=True)
                with FileLock(self.layout.lock(entry.key)):
                    if entry.prefix.is_symlink():  # swapped since it was listed
                        raise self._error(f"{entry.prefix} is a symlink entry; not removed")
                    _remove(entry.prefix)
                    self.layout.owner(entry.key).unlink(missing_ok=True)
            finally:
                os.close(fd)
        return True

    @contextlib.contextmanager
    def exclusive(self, key: str) -> Iterator[bool]:
        """Hold ``key``'s lease exclusively while the block runs; False (held by nobody)
        when someone uses it now. What prune takes before removing an image."""
        fd = self._open_lease(key)
        try:
            yield _flock(fd, exclusive=True, wait=False)
        finally:
            os.close(fd)

    def _open_lease(self, key: str) -> int:
        with self._unusable_is_user_error():
            self.layout.leases.mkdir(parents=True, exist_ok=True)
            path = self.layout.lease(key)
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)

    def _refuse_foreign(self, prefix: Path) -> None:
        """A symlink, or a folder envassay did not make, at an entry is left alone."""
        if prefix.is_symlink():
            raise self._error(
                f"store entry {prefix} is a symlink; refusing to follow it",
                hint="remove it yourself",
            )
        if prefix.exists() and not (prefix / MARKER).exists() and not self._read_owner(prefix.name):
            raise self._error(
                f"store entry {prefix} was not made by envassay; refusing to replace it",
                hint="move it away",
            )

    def _write_owner(self, key: str, info: dict[str, Any]) -> None:
        self.layout.owners.mkdir(parents=True, exist_ok=True)
        record = {**info, "started": time.time(), "pid": os.getpid()}
        path = self.layout.owner(key)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(redact.mask(json.dumps(record, default=str)))
        os.replace(tmp, path)

    def _read_owner(self, key: str) -> dict[str, Any]:
        path = self.layout.owner(key)
        try:
            data = json.loads(path.read_text()) if not path.is_symlink() else {}
        except (OSError, json.JSONDecodeError):
            return {}
        return data if isinstance(data, dict) else {}

    def _error(self, message: str, hint: str = "") -> StoreError:
        return StoreError(
            message,
            where=self.root,
            hint=hint or "set ENVASSAY_HOME or [tool.envassay] store to a writable folder",
        )

    @contextlib.contextmanager
    def _unusable_is_user_error(self) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            if exc.errno not in UNUSABLE:
                raise
            where = f"{exc.filename}: " if exc.filename else ""
            raise self._error(f"cannot use the env store: {where}{exc.strerror}") from None

    def creations(self) -> list[dict[str, Any]]:
        """The store's append-only record of every environment it created."""
        return journal.read(self.layout.created_log)

    def _log_creation(self, meta: dict[str, Any]) -> None:
        keys = ("key", "seconds", "created", "pid")
        journal.append(self.layout.created_log, {k: meta[k] for k in keys})


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
    if path.is_symlink():  # never followed; the callers refuse symlinked entries first
        return
    # The processes of a creator just killed (SIGKILL is not instant: a compileall
    # worker finishes its mkdir or write as it dies) can add to the folder while it is
    # removed: again, until it is gone or two seconds have passed.
    deadline = time.monotonic() + 2.0
    while path.exists():
        shutil.rmtree(path, ignore_errors=True)
        if not path.exists() or time.monotonic() > deadline:
            return
        time.sleep(0.05)


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _flock(fd: int, *, exclusive: bool, wait: bool) -> bool:
    """flock ``fd``; False when ``wait`` is off and someone else holds it."""
    import fcntl

    mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | (0 if wait else fcntl.LOCK_NB)
    try:
        fcntl.flock(fd, mode)
    except BlockingIOError:
        return False
    return True


def _no_space(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return any(text in str(exc) for text in NO_SPACE)
