"""The one place envassay calls py-rattler's solver and installer.

These functions run inside a worker process (see ``rattler_worker.py``):
processes that exit right after a rattler ``await`` crash in a few per cent of
runs (PyO3 finalisation, see shared/notes/py-rattler.md), so the worker controls
its own exit and the main process never awaits rattler itself.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import tarfile
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlparse

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

from envassay import credentials, linkcheck
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


async def records_from_lock(entries: Sequence[Mapping[str, Any]]) -> list[Any]:
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
        path = local_path(to_mirror(entry["url"]))
        if path is not None:
            digests = verify_archive(path, entry)
            record = await RepoDataRecord.from_package_archive(path)
            record.url = entry["url"]
            record.channel = entry["channel"]
            record.md5 = bytes.fromhex(digests["md5"])
        else:
            record = _record_from_entry(entry)
        records.append(record)
    return records


def _record_from_entry(entry: Mapping[str, Any]) -> Any:
    subdir = entry["subdir"]
    depends = list(entry["depends"])
    noarch: Literal["python", "generic"] | None = None
    if subdir == "noarch":
        names = {d.split()[0] for d in depends}
        noarch = "python" if "python" in names else "generic"
    package = PackageRecord(
        name=entry["name"],
        version=entry["version"],
        build=BuildString(entry["build"]),
        build_number=0,  # unknown from a lock; it only orders builds in a solve
        subdir=subdir,
        noarch=noarch,
        depends=depends,
        md5=bytes.fromhex(entry["md5"]) if entry.get("md5") else None,
        sha256=bytes.fromhex(entry["sha256"]) if entry.get("sha256") else None,
    )
    return RepoDataRecord(package, entry["filename"], entry["url"], entry["channel"])


def local_path(url: str) -> Path | None:
    """The file behind a ``file://`` URL, else None."""
    parsed = urlparse(url)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else None


def verify_archive(path: Path, entry: Mapping[str, Any]) -> dict[str, str]:
    """Raise an 'integrity' failure unless ``path`` has the lock's sha256 and md5;
    return both digests of ``path``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RattlerFailure(
            "integrity", f"{entry['filename']}: cannot read {path}: {exc.strerror}"
        ) from None
    digests = {algo: hashlib.new(algo, data).hexdigest() for algo in ("sha256", "md5")}
    for algo, actual in digests.items():
        expected = entry.get(algo)
        if expected and actual != expected.lower():
            raise RattlerFailure(
                "integrity",
                f"{entry['filename']}: {algo} mismatch: the lock says {expected}, "
                f"{path} has {actual}",
            )
    return digests


async def install(records: list[Any], prefix: Path, cache_dir: Path, specs: Sequence[str]) -> None:
    """Link ``records`` into the absolute ``prefix``; link scripts never run.

    Every path the packages will write is checked to stay inside the prefix first
    (:mod:`envassay.linkcheck`): rattler's linker does not check.
    """
    for record in records:  # a file:// mirror is read in place (see file_mirrors)
        record.url = to_mirror(str(record.url))
    try:
        await check_link_paths(records, prefix, cache_dir)
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
        )
    except Exception as exc:
        raise classify(exc, []) from None
    finally:
        _unmirror(records)


async def check_link_paths(records: Sequence[Any], prefix: Path, cache_dir: Path) -> None:
    """Raise an 'unsafe' failure when a package would write outside ``prefix``.

    Each archive is unpacked (by rattler's own extractor, which skips tar members that
    climb) into a scratch directory and its ``info/paths.json`` read with the symlinks
    the payload holds. An archive checked before (by sha256) is not unpacked again.
    """
    entries: list[linkcheck.Entry] = []
    checked = CacheLayout(cache_dir).link_checked
    for record in records:
        key = _archive_key(record)
        marker = checked / key if key else None
        if marker is not None and marker.is_file():
            entries.extend(_entries_from_json(str(record.file_name), marker.read_text()))
            continue
        listed = await _package_entries(record, cache_dir)
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


async def _package_entries(record: Any, cache_dir: Path) -> list[linkcheck.Entry]:
    """The paths one package will write (and its symlinks' targets), from its archive."""
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
        return list(_listed_entries(package, unpacked))


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


def _listed_entries(package: str, unpacked: Path) -> Iterator[linkcheck.Entry]:
    """``info/paths.json`` (else ``info/files``), each path with its symlink target if any."""
    info = unpacked / "info"
    if (info / "paths.json").is_file():
        raw = json.loads((info / "paths.json").read_text(encoding="utf-8"))
        paths = [str(p["_path"]) for p in raw.get("paths", [])]
    elif (info / "files").is_file():
        paths = [line for line in (info / "files").read_text().splitlines() if line.strip()]
    else:
        paths = []
    for path in paths:
        source = os.path.join(unpacked, path)
        link = os.readlink(source) if os.path.islink(source) else None
        yield linkcheck.Entry(package, path, link)


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


def record_full(record: Any) -> dict[str, Any]:
    """Everything a lock entry needs from a solved record."""
    return {
        **record_summary(record),
        "subdir": str(record.subdir),
        "depends": list(record.depends),
        "md5": record.md5.hex() if record.md5 else None,
        "sha256": record.sha256.hex() if record.sha256 else None,
        "filename": str(record.file_name),
    }


def record_summary(record: Any) -> dict[str, str]:
    """The identifying fields of a solved record, for reports and logs."""
    return {
        "name": record.name.normalized,
        "version": str(record.version),
        "build": str(record.build),
        "channel": str(record.channel or ""),
        "url": str(record.url),
    }
