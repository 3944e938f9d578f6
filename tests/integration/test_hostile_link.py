"""Hostile packages at link: nothing is written outside the prefix (rattler backend).

Each package is built as a real conda archive in a local channel; `envassay create`
must refuse it before linking, naming the package and the path, and leave the
victim directory (outside the prefix and the store) untouched.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import io
import json
import os
import struct
import tarfile
import threading
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import zstandard

from envassay_testing import PackageFile, index_channel, new_channel, write_package
from tests.integration.envassay_cli import envassay

pytestmark = pytest.mark.channel

DEEP = "/".join(f"d{i}" for i in range(16))


def _index(name: str, depends: list[str]) -> dict[str, object]:
    return {
        "name": name,
        "version": "1.0",
        "build": "h0_0",
        "build_number": 0,
        "depends": depends,
        "subdir": "noarch",
        "noarch": "generic",
        "license": "MIT",
    }


def _climb(to: Path) -> str:
    """A relative path that climbs from any prefix to the absolute ``to``."""
    return "../" * 64 + str(to).lstrip("/")


def to_conda(tar_bz2: Path) -> Path:
    """The same package as a ``.conda`` (a zip of ``info-*.tar.zst`` and ``pkg-*.tar.zst``,
    as conda-package-handling writes it), member for member; the ``.tar.bz2`` is removed."""
    stem = tar_bz2.name.removesuffix(".tar.bz2")
    info, pkg = io.BytesIO(), io.BytesIO()
    with (
        tarfile.open(tar_bz2, "r:bz2") as src,
        tarfile.open(fileobj=info, mode="w") as info_tar,
        tarfile.open(fileobj=pkg, mode="w") as pkg_tar,
    ):
        for member in src:
            data = src.extractfile(member) if member.isfile() else None
            (info_tar if member.name.startswith("info/") else pkg_tar).addfile(member, data)
    out = tar_bz2.with_name(stem + ".conda")
    zstd = zstandard.ZstdCompressor()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("metadata.json", json.dumps({"conda_pkg_format_version": 2}))
        archive.writestr(f"pkg-{stem}.tar.zst", zstd.compress(pkg.getvalue()))
        archive.writestr(f"info-{stem}.tar.zst", zstd.compress(info.getvalue()))
    tar_bz2.unlink()
    return out


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *_args: object) -> None:
        pass


@contextlib.contextmanager
def served(directory: Path) -> Iterator[str]:
    """``directory`` over HTTP on 127.0.0.1: packages rattler downloads, not reads in place."""
    handler = functools.partial(_Quiet, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _hostile(kind: str, channel: Path, victim: Path, suffix: str = ".tar.bz2") -> None:
    payload = PackageFile("payload", b"PAYLOAD\n")
    if kind == "climbing-member":  # a tar member that climbs, not listed in paths.json
        member = PackageFile(_climb(victim / "pwned"), b"PAYLOAD\n")
        write_package(channel, _index("evil", []), [payload, member], listed=[payload])
    elif kind == "climbing-path":  # paths.json names a path with `..` components
        write_package(
            channel, _index("evil", []), [payload], listed=[PackageFile(_climb(victim / "pwned"))]
        )
    elif kind == "symlink-then-climb":  # the issue's: a deep symlink, then `lnk/../../..`
        files = [PackageFile(f"{DEEP}/keep", b"k"), PackageFile("lnk", link_target=DEEP), payload]
        listed = [*files[:2], PackageFile("lnk/" + _climb(victim / "pwned"))]
        write_package(channel, _index("evil", []), files, listed=listed)
    elif kind == "absolute-symlink":  # a dependency's symlink, another package's file through it
        write_package(channel, _index("base", []), [PackageFile("esc", link_target=str(victim))])
        write_package(channel, _index("evil", ["base"]), [PackageFile("esc/pwned", b"PAYLOAD\n")])
    elif kind == "relative-symlink-up":  # a symlink that climbs, a file written through it
        up = PackageFile("a/b/up", link_target="../../../" + victim.name)
        write_package(channel, _index("base", []), [up])
        write_package(channel, _index("evil", ["base"]), [PackageFile("a/b/up/pwned", b"x")])
    if suffix == ".conda":
        for archive in list(channel.glob("*/*.tar.bz2")):
            to_conda(archive)
    index_channel(channel)


@pytest.mark.parametrize("suffix", [".tar.bz2", ".conda"])
@pytest.mark.parametrize(
    "kind", ["climbing-path", "symlink-then-climb", "absolute-symlink", "relative-symlink-up"]
)
def test_package_that_writes_outside_the_prefix_is_refused(
    kind: str, suffix: str, tmp_path: Path, envassay_env: dict[str, str]
) -> None:
    root = tmp_path / "project"
    root.mkdir()
    victim = tmp_path / "victim"
    victim.mkdir()
    channel = new_channel(tmp_path / "channel")
    _hostile(kind, channel, victim, suffix)
    spec = root / "evil.yml"
    spec.write_text(f"name: evil\nchannels: [{channel.as_uri()}]\ndependencies: [evil]\n")
    prefix = root / "env"
    result = envassay("create", spec, "--prefix", prefix, env=envassay_env, cwd=root)
    assert not result.ok
    assert f"unsafe package: package evil-1.0-h0_0{suffix}" in result.stderr or (
        f"unsafe package: package base-1.0-h0_0{suffix}" in result.stderr
    ), result.stderr
    assert "outside the prefix" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(os.walk(victim)) == [(str(victim), [], [])]  # nothing created there
    assert not (prefix / "conda-meta").exists()  # nothing linked at all


def test_packages_that_stay_inside_still_link(tmp_path: Path, envassay_env: dict[str, str]) -> None:
    """Symlinks inside the prefix (relative, absolute to the prefix, `..` that stays in)
    are what real packages hold: they link as before."""
    root = tmp_path / "project"
    root.mkdir()
    channel = new_channel(tmp_path / "channel")
    files = [
        PackageFile("lib/libx.so.1", b"\x7fELF"),
        PackageFile("lib/libx.so", link_target="libx.so.1"),
        PackageFile("share/x/lib", link_target="../../lib"),
        PackageFile(f"{DEEP}/keep", b"k"),
        PackageFile("lnk", link_target=DEEP),
    ]
    write_package(channel, _index("good", []), files)
    index_channel(channel)
    spec = root / "good.yml"
    spec.write_text(f"name: good\nchannels: [{channel.as_uri()}]\ndependencies: [good]\n")
    prefix = root / "env"
    result = envassay("create", spec, "--prefix", prefix, env=envassay_env, cwd=root)
    assert result.ok, result.describe()
    assert (prefix / "share/x/lib/libx.so").read_bytes() == b"\x7fELF"


@pytest.mark.parametrize("suffix", [".tar.bz2", ".conda"])
def test_a_climbing_tar_member_lands_nowhere(
    suffix: str, tmp_path: Path, envassay_env: dict[str, str]
) -> None:
    """A member whose name climbs, unlisted in paths.json: unpacked by rattler's extractor
    (into the package cache, before the check) it is written nowhere outside."""
    root = tmp_path / "project"
    root.mkdir()
    victim = tmp_path / "victim"
    victim.mkdir()
    channel = new_channel(tmp_path / "channel")
    _hostile("climbing-member", channel, victim, suffix)
    spec = root / "evil.yml"
    spec.write_text(f"name: evil\nchannels: [{channel.as_uri()}]\ndependencies: [evil]\n")
    prefix = root / "env"
    result = envassay("create", spec, "--prefix", prefix, env=envassay_env, cwd=root)
    assert "Traceback" not in result.stderr
    assert list(os.walk(victim)) == [(str(victim), [], [])]
    if result.ok:  # the member was skipped: only what paths.json lists is linked
        assert (prefix / "payload").read_bytes() == b"PAYLOAD\n"


@pytest.mark.parametrize("suffix", [".tar.bz2", ".conda"])
def test_the_checked_unpacking_is_the_one_linked(
    suffix: str, tmp_path: Path, envassay_env: dict[str, str]
) -> None:
    """A package is unpacked once, for the check, into the entry of rattler's package cache
    (revision 1 and the archive's sha256 in its lock, as rattler writes them); rattler
    accepts it and links it as it is: unpacking it again would make revision 2."""
    root = tmp_path / "project"
    root.mkdir()
    name = f"once{uuid.uuid4().hex[:10]}"
    channel = new_channel(tmp_path / "channel")
    files = [
        PackageFile("share/once/data", b"d\n"),
        PackageFile("share/once/ln", link_target="data"),
    ]
    archive = write_package(channel, _index(name, []), files)
    if suffix == ".conda":
        archive = to_conda(archive)
    index_channel(channel)
    spec = root / "once.yml"
    spec.write_text(f"name: once\nchannels: [{channel.as_uri()}]\ndependencies: [{name}]\n")
    prefix = root / "env"
    result = envassay("create", spec, "--prefix", prefix, env=envassay_env, cwd=root)
    assert result.ok, result.describe()
    assert os.readlink(prefix / "share/once/ln") == "data"
    entry = Path(envassay_env["ENVASSAY_HOME"]) / "cache" / "pkgs" / f"{name}-1.0-h0_0"
    sha256 = hashlib.sha256(archive.read_bytes()).digest()
    assert entry.with_name(entry.name + ".lock").read_bytes() == struct.pack(">Q", 1) + sha256
    data = entry / "share/once/data"
    assert os.stat(data).st_ino == os.stat(prefix / "share/once/data").st_ino  # hard-linked


@pytest.mark.parametrize("suffix", [".tar.bz2", ".conda"])
def test_downloaded_packages_are_checked_and_linked(
    suffix: str, tmp_path: Path, envassay_env: dict[str, str]
) -> None:
    """The same over HTTP: a hostile package is refused, a good one links, each downloaded
    and unpacked once."""
    root = tmp_path / "project"
    root.mkdir()
    victim = tmp_path / "victim"
    victim.mkdir()
    channel = new_channel(tmp_path / "channel")
    _hostile("symlink-then-climb", channel, victim, suffix)
    name = f"good{uuid.uuid4().hex[:10]}"
    write_package(channel, _index(name, []), [PackageFile("share/good/data", b"g\n")])
    if suffix == ".conda":
        to_conda(next(channel.glob(f"*/{name}-*.tar.bz2")))
    index_channel(channel)
    with served(channel) as url:
        results = {}
        for package in ("evil", name):
            spec = root / f"{package}.yml"
            spec.write_text(f"name: x\nchannels: [{url}]\ndependencies: [{package}]\n")
            prefix = root / package
            results[package] = envassay(
                "create", spec, "--prefix", prefix, env=envassay_env, cwd=root
            )
    assert not results["evil"].ok
    assert f"unsafe package: package evil-1.0-h0_0{suffix}" in results["evil"].stderr
    assert list(os.walk(victim)) == [(str(victim), [], [])]
    assert results[name].ok, results[name].describe()
    assert (root / name / "share/good/data").read_bytes() == b"g\n"
    lock = Path(envassay_env["ENVASSAY_HOME"]) / "cache" / "pkgs" / f"{name}-1.0-h0_0.lock"
    assert lock.read_bytes()[:8] == struct.pack(">Q", 1)  # rattler did not unpack it again
