"""Fetch and unpack packages into rattler's package cache before anything is linked.

The link check (:func:`envassay.rattler_ops.check_link_paths`) must see every path and
symlink a package holds before rattler links any of them. Reading an archive for that
and letting rattler unpack it again decompressed every package twice (a ``.tar.bz2``
in Python: half of a cold create). So a package not yet in the cache is downloaded
(its sha256 checked against the record, as rattler does) and unpacked here, once, by
rattler's own extractor, straight into the cache entry rattler would make
(``<pkgs>/<name>-<version>-<build>`` and its ``.lock``: a big-endian revision, then the
sha256); rattler finds it there, validates it as any cached package and links it.
What is read for the check is what is linked. Should rattler not accept the entry, it
unpacks the same archive again: slower, never unchecked.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import struct
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from envassay import linkcheck
from envassay.progress import update
from envassay.store_layout import UNPACK_PREFIX

# A cache entry's name must stay one plain path component under the cache.
_SAFE_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+!-]*")
_SUFFIXES = (".conda", ".tar.bz2")
_DOWNLOADS = 16
# Progress lines at most this often (seconds); a terminal's live line needs no more.
_EVERY = 0.5


@dataclass(frozen=True)
class FetchFailure(Exception):
    """A download that failed or did not match its record."""

    kind: str
    message: str


def cache_key(record: Any) -> str | None:
    """The directory rattler's package cache keeps ``record`` in, if it is a plain name."""
    key = f"{record.name.normalized}-{record.version}-{record.build}"
    return key if _SAFE_KEY.fullmatch(key) and ".." not in key else None


def local_path(url: str) -> Path | None:
    """The file behind a ``file://`` URL, else None."""
    parsed = urlparse(url)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else None


def archive_size(record: Any) -> int:
    """The archive's size in bytes: a local file's own, else the record's (0: unknown)."""
    path = local_path(str(record.url))
    if path is not None:
        with contextlib.suppress(OSError):
            return path.stat().st_size
    return int(record.size or 0)


class Fetcher:
    """Unpacks a create's uncached packages side by side, reporting bytes and packages."""

    def __init__(
        self,
        pkgs: Path,
        client: Any,
        total: int,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.pkgs = pkgs
        self.client = client
        self.total = total
        self.progress = progress
        self.done_packages = 0
        self.fetched = 0  # packages fetched and unpacked here (the others were cached)
        self.bytes = 0
        self.started = time.monotonic()
        self._shown = 0.0
        # Unpacking is CPU work (bz2, zstd): a few at once; downloads wait on the network,
        # more of them at once, overlapping the unpacking.
        self._slots = asyncio.Semaphore(min(8, (os.cpu_count() or 2) + 2))
        self._downloads = asyncio.Semaphore(_DOWNLOADS)

    async def entries(self, record: Any) -> list[linkcheck.Entry] | None:
        """Unpack ``record`` into the cache and return what it will write; None when it
        is cached already (or has no plain cache name): the caller reads its archive."""
        key = cache_key(record)
        try:
            if key is None or os.path.lexists(self.pkgs / key):
                return None
            return await self._unpack(record, key)
        finally:
            self.done_packages += 1
            self._report()

    async def _unpack(self, record: Any, key: str) -> list[linkcheck.Entry]:
        from rattler.package_streaming import extract

        self.pkgs.mkdir(parents=True, exist_ok=True)
        package = str(record.file_name)
        with tempfile.TemporaryDirectory(dir=self.pkgs, prefix=UNPACK_PREFIX) as work:
            archive = local_path(str(record.url))
            if archive is None:  # named for its format: the extractor goes by the suffix
                suffix = next((x for x in _SUFFIXES if package.endswith(x)), "")
                async with self._downloads:
                    archive = await self._download(record, Path(work) / f"archive{suffix}")
            else:
                self.bytes += archive.stat().st_size
            unpacked = Path(work) / "pkg"
            async with self._slots:
                await asyncio.to_thread(extract, archive, unpacked)
            listed = listed_entries(package, unpacked)
            _publish(unpacked, self.pkgs / key, record.sha256)
        self.fetched += 1
        return listed

    async def _download(self, record: Any, dest: Path) -> Path:
        from rattler.package_streaming import download_to_writer

        sink = _Sink(dest, self)
        try:
            await download_to_writer(self.client, str(record.url), sink)
        finally:
            sink.close()
        expected = record.sha256.hex() if record.sha256 else None
        if expected and sink.sha256.hexdigest() != expected:
            raise FetchFailure(
                "integrity",
                f"{record.file_name}: hash mismatch: the record's sha256 is {expected}, "
                f"the download's {sink.sha256.hexdigest()}",
            )
        return dest

    def _report(self) -> None:
        now = time.monotonic()
        if self.progress is None or now - self._shown < _EVERY:
            return
        self._shown = now
        self.progress(
            update(
                f"fetching packages: {self.done_packages}/{self.total}, {self.bytes / 1e6:.1f} MB"
            )
        )

    def done(self) -> None:
        """One closing line: how many packages were fetched, how large, how long."""
        if self.progress is not None and self.total:
            seconds = time.monotonic() - self.started
            self.progress(
                f"fetched {self.fetched} package(s) ({self.bytes / 1e6:.1f} MB) in "
                f"{seconds:.2f}s; {self.total - self.fetched} already cached"
            )


class _Sink:
    """Where a download's chunks go: the file, its hash, the byte count shown."""

    def __init__(self, path: Path, fetcher: Fetcher) -> None:
        self._file = path.open("wb")
        self._fetcher = fetcher
        self.sha256 = hashlib.sha256()

    def write(self, chunk: bytes) -> None:
        self._file.write(chunk)
        self.sha256.update(chunk)
        self._fetcher.bytes += len(chunk)
        self._fetcher._report()

    def close(self) -> None:
        self._file.close()


def _publish(unpacked: Path, entry: Path, sha256: bytes | None) -> None:
    """Move an unpacked package into its cache entry, with the lock rattler reads."""
    lock = entry.with_name(entry.name + ".lock")
    try:  # a lock already there is rattler's (or another run's): left as it is
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "wb") as handle:
            handle.write(struct.pack(">Q", 1) + (sha256 or b""))
    with contextlib.suppress(OSError):  # another run published it first: that one is linked
        os.rename(unpacked, entry)


def listed_entries(package: str, unpacked: Path) -> list[linkcheck.Entry]:
    """``info/paths.json`` (else ``info/files``) of an unpacked package, each path with its
    symlink's target if it is one; symlinks are found without following any."""
    info = unpacked / "info"
    if (info / "paths.json").is_file():
        raw = json.loads((info / "paths.json").read_text(encoding="utf-8"))
        paths = [str(p["_path"]) for p in raw.get("paths", [])]
    elif (info / "files").is_file():
        paths = [line for line in (info / "files").read_text().splitlines() if line.strip()]
    else:
        paths = []
    links = _symlinks(unpacked)
    return [linkcheck.Entry(package, p, links.get(os.path.normpath(p))) for p in paths]


def _symlinks(root: Path) -> dict[str, str]:
    """Every symlink under ``root`` (relative path -> target), no link followed."""
    found: dict[str, str] = {}
    stack = [""]
    while stack:
        rel = stack.pop()
        with os.scandir(os.path.join(root, rel)) as listing:
            for item in listing:
                path = os.path.join(rel, item.name)
                if item.is_symlink():
                    found[path] = os.readlink(item.path)
                elif item.is_dir(follow_symlinks=False):
                    stack.append(path)
    return found
