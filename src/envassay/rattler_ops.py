"""The one place envassay calls py-rattler's solver and installer.

These functions run inside a worker process (see ``rattler_worker.py``):
processes that exit right after a rattler ``await`` crash in a few per cent of
runs (PyO3 finalisation, see shared/notes/py-rattler.md), so the worker controls
its own exit and the main process never awaits rattler itself.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import os
import re
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import rattler
from rattler import (
    BuildString,
    ChannelPriority,
    Gateway,
    GenericVirtualPackage,
    MatchSpec,
    PackageName,
    PackageRecord,
    RepoDataRecord,
    Subdir,
    Version,
    VirtualPackage,
    VirtualPackageOverrides,
)
from rattler.install import InstallerReporter

from envassay import credentials, linkcheck, package_fetch
from envassay.package_fetch import local_path
from envassay.progress import update
from envassay.rattler_protocol import Linked, Package
from envassay.store_layout import CacheLayout


@dataclass(frozen=True)
class RattlerFailure(Exception):
    """A rattler error, classified: 'solve' and 'channel' are the user's to fix."""

    kind: str
    message: str


@functools.cache
def user_config() -> Any:
    """The user's rattler/pixi configuration (mirrors, auth, proxies), as nox's backend loads it."""
    try:
        return rattler.Config.load_from_default_locations("rattler")
    except Exception as exc:
        paths = ", ".join(str(p) for p, _ in rattler.Config.config_search_paths("rattler"))
        raise RattlerFailure("config", f"cannot load rattler config ({paths}): {exc}") from None


@functools.cache
def client() -> Any:
    return rattler.Client.from_config(user_config())


@functools.cache
def file_mirrors() -> tuple[tuple[str, str], ...]:
    """(channel prefix, its first ``file://`` mirror), longest prefix first, from the user's
    rattler config. rattler's mirror layer fetches over HTTP only ("URL scheme is not
    allowed"), so envassay reads a channel from its file:// mirror itself; records and
    locks keep the channel's own URL."""
    pairs = []
    for prefix, targets in (user_config().mirrors or {}).items():
        local = next((str(t) for t in targets if str(t).startswith("file://")), None)
        if local is not None:
            pairs.append((str(prefix).rstrip("/") + "/", local.rstrip("/") + "/"))
    return tuple(sorted(pairs, key=lambda pair: -len(pair[0])))


def to_mirror(url: str) -> str:
    """``url`` under its file:// mirror, when the user's rattler config has one."""
    return _swap(url, [(prefix, local) for prefix, local in file_mirrors()])


def from_mirror(url: str) -> str:
    """The channel's own URL for a URL under its file:// mirror."""
    return _swap(url, [(local, prefix) for prefix, local in file_mirrors()])


def _swap(url: str, pairs: Sequence[tuple[str, str]]) -> str:
    for old, new in pairs:
        if url + "/" == old:  # the channel itself, written without its trailing slash
            return new.rstrip("/")
        if url.startswith(old):
            return new + url[len(old) :]
    return url


def _unmirror(records: Sequence[Any]) -> None:
    for record in records:
        record.url = from_mirror(str(record.url))
        if record.channel:
            record.channel = from_mirror(str(record.channel))


def gateway(cache_dir: Path) -> Gateway:
    return Gateway(cache_dir=CacheLayout(cache_dir).repodata, client=client())


def virtual_packages() -> list[VirtualPackage]:
    """This machine's virtual packages; CONDA_OVERRIDE_CUDA / _GLIBC apply as in conda."""
    return VirtualPackage.detect(VirtualPackageOverrides.from_env())


def generic_virtual_packages(triples: Sequence[Sequence[str]]) -> list[GenericVirtualPackage]:
    """``[name, version, build]`` triples (see ``lock.virtual_packages_for``) as rattler objects."""
    return [
        GenericVirtualPackage(PackageName(name), Version(version), BuildString(build))
        for name, version, build in triples
    ]


async def solve(
    channels: Sequence[str],
    specs: Sequence[str],
    cache_dir: Path,
    platform: str | None = None,
    virtual: Sequence[Sequence[str]] | None = None,
    priority: str = "strict",
) -> list[Any]:
    """Solve ``specs`` against ``channels`` for ``platform`` (default: this machine).

    ``virtual`` replaces this machine's virtual packages (a lock for another platform).
    ``priority``: conda's channel_priority; rattler knows strict and disabled, so
    conda's flexible (its default) is solved strictly.
    """
    target = Subdir(platform) if platform else Subdir.current()
    machine: Sequence[Any] = (
        virtual_packages() if virtual is None else generic_virtual_packages(virtual)
    )
    try:
        records = await rattler.solve(
            sources=[to_mirror(c) for c in channels],
            specs=[MatchSpec(s) for s in specs],
            gateway=gateway(cache_dir),
            platforms=[target, Subdir("noarch")],
            virtual_packages=machine,
            channel_priority=(
                ChannelPriority.Disabled if priority == "disabled" else ChannelPriority.Strict
            ),
        )
    except Exception as exc:
        raise classify(exc, channels) from None
    _unmirror(records)
    return records


def host_virtual_packages() -> list[list[str]]:
    """This machine's virtual packages as ``[name, version, build]`` triples."""
    result = []
    for package in virtual_packages():
        generic = package.into_generic()
        result.append([generic.name.normalized, str(generic.version), str(generic.build_string)])
    return result


async def records_from_lock(entries: Sequence[Package]) -> list[Any]:
    """RepoDataRecords for locked conda packages, each archive's hash checked first.

    rattler checks the hash of what it downloads, but a ``file://`` package is
    read in place without any check, so envassay hashes local archives itself
    before anything is linked. A local archive also gives the full record
    (noarch kind, build number, constrains) that the lock format does not carry;
    rattler reads no md5 from an archive, so the one hashed here goes into the
    record (conda-meta), as conda writes it: `conda list --explicit --md5` needs it.
    """
    records = []
    for entry in entries:
        path = local_path(to_mirror(entry.url))
        if path is not None:
            digests = verify_archive(path, entry)
            record = await RepoDataRecord.from_package_archive(path)
            record.url = entry.url
            record.channel = entry.channel
            record.md5 = bytes.fromhex(digests["md5"])
        else:
            record = _record_from_entry(entry)
        records.append(record)
    return records


def _record_from_entry(entry: Package) -> Any:
    subdir = entry.subdir
    depends = list(entry.depends)
    noarch: Literal["python", "generic"] | None = None
    if subdir == "noarch":
        names = {d.split()[0] for d in depends}
        noarch = "python" if "python" in names else "generic"
    package = PackageRecord(
        name=entry.name,
        version=entry.version,
        build=BuildString(entry.build),
        build_number=0,  # unknown from a lock; it only orders builds in a solve
        subdir=subdir,
        noarch=noarch,
        depends=depends,
        md5=bytes.fromhex(entry.md5) if entry.md5 else None,
        sha256=bytes.fromhex(entry.sha256) if entry.sha256 else None,
    )
    return RepoDataRecord(package, entry.filename, entry.url, entry.channel)


def verify_archive(path: Path, entry: Package) -> dict[str, str]:
    """Raise an 'integrity' failure unless ``path`` has the lock's sha256 and md5;
    return both digests of ``path``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RattlerFailure(
            "integrity", f"{entry.filename}: cannot read {path}: {exc.strerror}"
        ) from None
    digests = {algo: hashlib.new(algo, data).hexdigest() for algo in ("sha256", "md5")}
    for algo, actual in digests.items():
        expected = entry.sha256 if algo == "sha256" else entry.md5
        if expected and actual != expected.lower():
            raise RattlerFailure(
                "integrity",
                f"{entry.filename}: {algo} mismatch: the lock says {expected}, {path} has {actual}",
            )
    return digests


async def install(
    records: list[Any],
    prefix: Path,
    cache_dir: Path,
    specs: Sequence[str],
    progress: Callable[[str], None] | None = None,
) -> None:
    """Link ``records`` into the absolute ``prefix``; link scripts never run.

    Every path the packages will write is checked to stay inside the prefix first
    (:mod:`envassay.linkcheck`): rattler's linker does not check.
    """
    for record in records:  # a file:// mirror is read in place (see file_mirrors)
        record.url = to_mirror(str(record.url))
    try:
        await check_link_paths(records, prefix, cache_dir, progress)
    except BaseException:
        _unmirror(records)
        raise
    try:
        await rattler.install(
            records,
            target_prefix=str(prefix.resolve()),
            cache_dir=CacheLayout(cache_dir).pkgs,
            show_progress=False,
            execute_link_scripts=False,
            client=client(),
            # py-rattler hands this to its FFI as is, which wants the inner object.
            requested_specs=[MatchSpec(s)._match_spec for s in specs],
            reporter=None if progress is None else _LinkReporter(len(records), progress),  # type: ignore[abstract]
        )
    except Exception as exc:
        raise classify(exc, []) from None
    finally:
        _unmirror(records)


class _LinkReporter(InstallerReporter):
    """rattler's install, as updates: packages linked so far, bytes of what it downloads
    itself (the link check has fetched the rest: :mod:`envassay.package_fetch`)."""

    def __init__(self, total: int, progress: Callable[[str], None]) -> None:
        self.total = total
        self.progress = progress
        self.linked = 0
        self.downloaded: dict[int, int] = {}
        self._shown = 0.0

    def on_download_progress(self, download_idx: int, progress: int, total: int | None) -> None:
        self.downloaded[download_idx] = progress
        self._show()

    def on_link_complete(self, index: int) -> None:
        self.linked += 1
        self._show()

    def _show(self) -> None:
        now = time.monotonic()
        if now - self._shown < 0.5:
            return
        self._shown = now
        fetched = sum(self.downloaded.values())
        more = f", downloaded {fetched / 1e6:.1f} MB" if fetched else ""
        self.progress(update(f"linking: {self.linked}/{self.total} package(s){more}"))


async def check_link_paths(
    records: Sequence[Any],
    prefix: Path,
    cache_dir: Path,
    progress: Callable[[str], None] | None = None,
) -> None:
    """Raise an 'unsafe' failure when a package would write outside ``prefix``.

    A package rattler has not unpacked yet is unpacked here, once, by rattler's own
    extractor (which skips tar members that climb), straight into rattler's package
    cache (:mod:`envassay.package_fetch`): its ``info/paths.json`` and the symlinks it
    holds are read there, and rattler then links that very directory instead of
    unpacking the archive a second time. An archive checked before (by its identity) is
    not read again; one whose cache entry exists without a remembered listing is read as
    a stream (a ``.conda`` unpacked into a scratch directory).
    """
    entries: list[linkcheck.Entry] = []
    checked = CacheLayout(cache_dir).link_checked
    todo: list[tuple[Any, Path | None]] = []
    for record in records:
        key = _archive_key(record)
        marker = checked / key if key else None
        if marker is not None and marker.is_file():
            entries.extend(_entries_from_json(str(record.file_name), marker.read_text()))
        else:
            todo.append((record, marker))
    # The largest first: unpacking is CPU work, and a large archive started last would
    # leave the other cores idle while it finishes (rattler starts them all at once).
    todo.sort(key=lambda item: package_fetch.archive_size(item[0]), reverse=True)
    fetch = package_fetch.Fetcher(CacheLayout(cache_dir).pkgs, client(), len(todo), progress)
    listings = await asyncio.gather(*(_package_entries(r, cache_dir, fetch) for r, _ in todo))
    fetch.done()
    for (_, marker), listed in zip(todo, listings, strict=True):
        entries.extend(listed)
        if marker is not None:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(json.dumps([[e.path, e.link] for e in listed]))
    try:
        linkcheck.check(prefix, entries)
    except linkcheck.Escape as escape:
        raise RattlerFailure("unsafe", str(escape)) from None


def _archive_key(record: Any) -> str | None:
    """What a package's listing is remembered by: a local archive's own identity (path,
    inode, size, mtime: rattler reads it in place, unchecked; hashing every archive of
    every create would cost more than the check), else the record's sha256 (rattler
    checks what it downloads against it)."""
    path = local_path(str(record.url))
    if path is not None:
        try:
            st = path.stat()
        except OSError:
            return None
        identity = f"{path.resolve()}\0{st.st_ino}\0{st.st_size}\0{st.st_mtime_ns}"
        return "local-" + hashlib.sha256(identity.encode()).hexdigest()
    return record.sha256.hex() if record.sha256 else None


def _entries_from_json(package: str, text: str) -> list[linkcheck.Entry]:
    return [linkcheck.Entry(package, path, link) for path, link in json.loads(text)]


async def _package_entries(
    record: Any, cache_dir: Path, fetch: package_fetch.Fetcher
) -> list[linkcheck.Entry]:
    """The paths one package will write (and its symlinks' targets), from its archive."""
    try:
        listed = await fetch.entries(record)
    except package_fetch.FetchFailure as failure:
        raise RattlerFailure(failure.kind, failure.message) from None
    except Exception as exc:  # a download that failed
        raise classify(exc, []) from None
    if listed is not None:  # unpacked into rattler's cache, where it will be linked from
        return listed
    return await _archive_entries(record, cache_dir)


async def _archive_entries(record: Any, cache_dir: Path) -> list[linkcheck.Entry]:
    """:func:`_package_entries` for a package already in rattler's cache but not remembered:
    its archive read again (the cache entry may come from another archive of that name)."""
    from rattler.package_streaming import download_to_path, extract

    package = str(record.file_name)
    scratch = CacheLayout(cache_dir).link_check
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch) as work:
        archive = local_path(str(record.url))
        if archive is None:
            archive = Path(work) / package
            await download_to_path(client(), str(record.url), archive)
        if archive.name.endswith(".tar.bz2"):  # read as a stream: nothing written to disk
            return _tar_entries(package, archive)
        unpacked = Path(work) / "pkg"
        extract(archive, unpacked)
        return package_fetch.listed_entries(package, unpacked)


def _tar_entries(package: str, archive: Path) -> list[linkcheck.Entry]:
    """:func:`_listed_entries` of a ``.tar.bz2``, read in one pass without unpacking."""
    listing: dict[str, bytes] = {}
    links: dict[str, str] = {}
    with tarfile.open(archive, "r:bz2") as tar:
        for member in tar:
            name = os.path.normpath(member.name)
            if name in ("info/paths.json", "info/files"):
                handle = tar.extractfile(member)
                listing[name] = handle.read() if handle is not None else b""
            elif member.issym():
                links[name] = member.linkname
    if "info/paths.json" in listing:
        raw = json.loads(listing["info/paths.json"])
        paths = [str(p["_path"]) for p in raw.get("paths", [])]
    else:
        paths = [line for line in listing.get("info/files", b"").decode().splitlines() if line]
    return [linkcheck.Entry(package, p, links.get(os.path.normpath(p))) for p in paths]


def classify(exc: Exception, channels: Sequence[str]) -> RattlerFailure:
    """Turn a rattler exception into a failure whose kind decides the exit code."""
    name = type(exc).__name__
    text = " ".join(str(exc).split())
    if name == "SolverError":
        return RattlerFailure("solve", text)
    if "hash mismatch" in text.lower():  # rattler checks what it downloads against the record
        return RattlerFailure("integrity", text)
    if name in {"FetchRepoDataError", "GatewayError", "InvalidChannelError"}:
        listed = ", ".join(credentials.shown(c) for c in channels)
        if re.search(r"\b(401|403)\b", text):  # the server refused the credentials
            return RattlerFailure("auth", f"channel(s) {listed} refused the credentials: {text}")
        return RattlerFailure("channel", f"cannot read channel(s) {listed}: {text}")
    return RattlerFailure("other", f"{name}: {text}")


def record_full(record: Any) -> Package:
    """Everything a lock entry needs from a solved record."""
    summary = record_summary(record)
    return Package(
        name=summary.name,
        version=summary.version,
        build=summary.build,
        channel=summary.channel,
        url=summary.url,
        subdir=str(record.subdir),
        depends=list(record.depends),
        md5=record.md5.hex() if record.md5 else None,
        sha256=record.sha256.hex() if record.sha256 else None,
        filename=str(record.file_name),
    )


def record_summary(record: Any) -> Linked:
    """The identifying fields of a solved record, for reports and logs."""
    return Linked(
        name=record.name.normalized,
        version=str(record.version),
        build=str(record.build),
        channel=str(record.channel or ""),
        url=str(record.url),
    )
