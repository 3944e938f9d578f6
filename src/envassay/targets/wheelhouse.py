"""Wheels of envassay and what `envassay create` needs, repacked from this interpreter.

A container build with the ``envassay`` creator installs envassay offline
(``pip install --no-index``) in the builder stage, so the build context must
carry every wheel it needs. They are made from the installed distributions,
not downloaded: nothing but this machine is needed, and the versions are the
ones the host runs. ``pyyaml`` is repacked without its C extension (it falls
back to pure Python), and ``py-rattler`` is an abi3 wheel, so the set installs
on any CPython >= 3.10 on the same platform.

Only what ``envassay create`` imports is shipped; envassay itself is installed
with ``--no-deps`` (its pytest, nox and docker dependencies are not needed to
create an environment).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import importlib.metadata as metadata
import io
import re
import zipfile
from collections.abc import Iterable
from pathlib import Path

import envassay
from envassay.store import build_once

# What `envassay create` imports at run time, besides envassay itself.
CREATE_DEPENDENCIES = ("py-rattler", "pyyaml", "packaging", "filelock", "platformdirs", "tomli")
# Pure-Python fallbacks exist for these distributions' extension modules.
PURE_FALLBACK = {"pyyaml"}
# A fixed timestamp makes repacked wheels byte-identical from run to run.
_ZIP_DATE = (2020, 1, 1, 0, 0, 0)
_SKIP_DIST_INFO = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json", "direct_url"}


class WheelhouseError(Exception):
    """A distribution that must be shipped is not installed."""


def tool_wheels(dest: Path, cache_dir: Path) -> list[Path]:
    """Write envassay's wheel and its create-time dependencies' wheels into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    wheels = [envassay_wheel(dest)]
    cache_dir.mkdir(parents=True, exist_ok=True)
    for name in CREATE_DEPENDENCIES:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            if name == "tomli":
                continue  # only needed on Python 3.10; absent where the host is 3.11+
            raise WheelhouseError(f"{name} is not installed; cannot ship it to a builder") from None
        wheels.append(_cached_repack(dist, name, dest, cache_dir))
    return wheels


def _cached_repack(dist: metadata.Distribution, name: str, dest: Path, cache: Path) -> Path:
    pure = name in PURE_FALLBACK
    filename = wheel_filename(dist, pure=pure)
    cached = cache / filename

    def repack() -> Path:
        tmp = cached.with_suffix(".part")
        repack_installed(dist, tmp, pure=pure)
        return tmp.replace(cached)

    build_once(cache / f"{filename}.lock", lambda: cached if cached.is_file() else None, repack)
    target = dest / filename
    try:
        target.hardlink_to(cached)
    except OSError:
        target.write_bytes(cached.read_bytes())
    return target


def wheel_filename(dist: metadata.Distribution, *, pure: bool = False) -> str:
    name = re.sub(r"[-_.]+", "_", dist.metadata["Name"])
    tag = "py3-none-any" if pure else _first_tag(dist)
    return f"{name}-{dist.version}-{tag}.whl"


def _first_tag(dist: metadata.Distribution) -> str:
    for line in (dist.read_text("WHEEL") or "").splitlines():
        if line.startswith("Tag:"):
            return line.split(":", 1)[1].strip()
    return "py3-none-any"


def repack_installed(dist: metadata.Distribution, target: Path, *, pure: bool = False) -> None:
    """Zip an installed distribution's files (from its RECORD) back into a wheel."""
    files: list[tuple[str, bytes]] = []
    info_dir = ""
    for entry in dist.files or []:
        rel = str(entry)
        parts = entry.parts
        if rel.startswith("..") or "__pycache__" in parts or rel.endswith(".pyc"):
            continue
        if parts[0].endswith(".dist-info"):
            info_dir = parts[0]
            if parts[-1] in _SKIP_DIST_INFO:
                continue
            if parts[-1] == "WHEEL" and pure:
                files.append((rel, _pure_wheel_file()))
                continue
        elif pure and rel.endswith((".so", ".pyd")):
            continue
        files.append((rel, Path(str(dist.locate_file(entry))).read_bytes()))
    if not info_dir:
        raise WheelhouseError(f"{dist.metadata['Name']} has no dist-info in its RECORD")
    _write_wheel(target, files, info_dir)


def envassay_wheel(dest: Path) -> Path:
    """A wheel of the envassay package this process runs (editable installs included)."""

    dist = metadata.distribution("envassay")
    package = Path(envassay.__file__).parent
    info_dir = f"envassay-{dist.version}.dist-info"
    files: list[tuple[str, bytes]] = []
    for path in sorted(package.rglob("*")):
        rel = path.relative_to(package.parent)
        if path.is_dir() or "__pycache__" in rel.parts or path.suffix == ".pyc":
            continue
        files.append((rel.as_posix(), path.read_bytes()))
    files.append((f"{info_dir}/METADATA", (dist.read_text("METADATA") or "").encode()))
    files.append((f"{info_dir}/WHEEL", _pure_wheel_file()))
    entry_points = dist.read_text("entry_points.txt")
    if entry_points:
        files.append((f"{info_dir}/entry_points.txt", entry_points.encode()))
    target = dest / f"envassay-{dist.version}-py3-none-any.whl"
    _write_wheel(target, files, info_dir)
    return target


def _pure_wheel_file() -> bytes:
    return b"Wheel-Version: 1.0\nGenerator: envassay\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def _write_wheel(target: Path, files: Iterable[tuple[str, bytes]], info_dir: str) -> None:
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for rel, data in files:
            info = zipfile.ZipInfo(rel, date_time=_ZIP_DATE)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            writer.writerow([rel, f"sha256={digest.decode()}", len(data)])
        writer.writerow([f"{info_dir}/RECORD", "", ""])
        info = zipfile.ZipInfo(f"{info_dir}/RECORD", date_time=_ZIP_DATE)
        info.external_attr = 0o644 << 16
        archive.writestr(info, record.getvalue())
