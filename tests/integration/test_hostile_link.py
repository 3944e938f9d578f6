"""Hostile packages at link: nothing is written outside the prefix (rattler backend).

Each package is built as a real conda archive in a local channel; `envassay create`
must refuse it before linking, naming the package and the path, and leave the
victim directory (outside the prefix and the store) untouched.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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


def _hostile(kind: str, channel: Path, victim: Path) -> None:
    payload = PackageFile("payload", b"PAYLOAD\n")
    if kind == "climbing-path":  # paths.json names a path with `..` components
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
    index_channel(channel)


@pytest.mark.parametrize(
    "kind", ["climbing-path", "symlink-then-climb", "absolute-symlink", "relative-symlink-up"]
)
def test_package_that_writes_outside_the_prefix_is_refused(
    kind: str, tmp_path: Path, envassay_env: dict[str, str]
) -> None:
    root = tmp_path / "project"
    root.mkdir()
    victim = tmp_path / "victim"
    victim.mkdir()
    channel = new_channel(tmp_path / "channel")
    _hostile(kind, channel, victim)
    spec = root / "evil.yml"
    spec.write_text(f"name: evil\nchannels: [{channel.as_uri()}]\ndependencies: [evil]\n")
    prefix = root / "env"
    result = envassay("create", spec, "--prefix", prefix, env=envassay_env, cwd=root)
    assert not result.ok
    assert "unsafe package: package evil-1.0-h0_0.tar.bz2" in result.stderr or (
        "unsafe package: package base-1.0-h0_0.tar.bz2" in result.stderr
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
