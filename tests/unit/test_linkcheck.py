"""linkcheck against the kernel: the same symlinks and paths made on disk, resolved by realpath.

The oracle is the filesystem itself: each generated package set is built in a
scratch prefix (directories, symlinks), and a path lands outside when
``os.path.realpath`` of it (as the linker's open would follow it) leaves the prefix.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from envassay.create.backends.linked import check_linked
from envassay.errors import CreateError
from envassay.linkcheck import Entry, Escape, check

NAMES = st.sampled_from(["a", "b", "lnk", "..", "."])
RELATIVE = st.lists(NAMES, min_size=1, max_size=5).map("/".join)


def _outside(prefix: Path, path: str) -> bool:
    real = os.path.realpath(prefix / path)
    return not (real == str(prefix) or real.startswith(str(prefix) + os.sep))


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    links=st.lists(st.tuples(RELATIVE, RELATIVE), max_size=3),
    path=RELATIVE,
)
def test_a_path_is_refused_exactly_when_the_kernel_puts_it_outside(
    tmp_path: Path, links: list[tuple[str, str]], path: str
) -> None:
    root = tmp_path / "case"
    shutil.rmtree(root, ignore_errors=True)
    prefix = root / "p" / "q" / "prefix"  # room above it, so that `..` lands somewhere real
    prefix.mkdir(parents=True)
    made: list[Entry] = []
    for where, target in links:
        place = os.path.normpath(prefix / where)
        if not place.startswith(str(prefix) + os.sep) or os.path.lexists(place):
            continue  # a symlink the linker could not make (or that escapes by its place)
        if _outside(prefix, os.path.dirname(os.path.relpath(place, prefix))):
            continue  # making its directory would write outside: no scratch is left behind
        try:
            os.makedirs(os.path.dirname(place), exist_ok=True)
            os.symlink(target, place)
        except OSError:
            continue
        made.append(Entry("pkg", os.path.relpath(place, prefix), target))
    every = [*made, Entry("pkg", path)]
    assume(any(p not in ("", ".") for p in path.split("/")))  # "." is no file to write
    assume(not any(_loops(prefix, e.path) for e in every))  # refused by us, left by realpath
    refused = False
    try:
        check(prefix, every)
    except Escape as escape:
        assume("loop" not in escape.why)  # a cycle through a missing directory: ENOENT there
        refused = True
    assert refused == any(_outside(prefix, e.path) for e in every), (made, path)


def _loops(prefix: Path, path: str) -> bool:
    try:
        os.stat(prefix / path)
    except OSError as exc:
        return exc.errno == errno.ELOOP
    return False


def test_the_issues_symlink_then_climb_is_refused(tmp_path: Path) -> None:
    deep = "/".join(f"d{i}" for i in range(16))
    climb = "lnk/" + "../" * 19 + "etc/passwd"
    entries = [Entry("evil", f"{deep}/keep"), Entry("evil", "lnk", deep), Entry("evil", climb)]
    with pytest.raises(Escape, match=r"package evil would write 'lnk/\.\./.*etc/passwd'"):
        check(tmp_path, entries)


@pytest.mark.parametrize(
    "entries",
    [
        [Entry("x", "/etc/passwd")],
        [Entry("x", "../x")],
        [Entry("x", "a/../../x")],
        [Entry("x", "esc", "/etc")],
        [Entry("x", "esc", "../..")],
        [Entry("x", "a", "b"), Entry("x", "b", "a"), Entry("x", "a/f")],  # a loop
        [Entry("x", "d/up", ".."), Entry("x", "d/up/../f")],  # up from the prefix itself
    ],
)
def test_refused(tmp_path: Path, entries: list[Entry]) -> None:
    with pytest.raises(Escape):
        check(tmp_path, entries)


def test_symlinks_already_in_the_prefix_count(tmp_path: Path) -> None:
    (tmp_path / "old").symlink_to("/tmp")
    with pytest.raises(Escape, match="'old/f'"):
        check(tmp_path, [Entry("x", "old/f")])


@pytest.mark.parametrize(
    "entries",
    [
        [Entry("x", "lib/libx.so", "libx.so.1"), Entry("x", "lib/libx.so.1")],
        [Entry("x", "share/lib", "../lib"), Entry("x", "share/lib/f")],
        [Entry("x", "d/up", ".."), Entry("x", "d/up/f")],
    ],
)
def test_inside_is_allowed(tmp_path: Path, entries: list[Entry]) -> None:
    check(tmp_path, entries)


def test_an_absolute_symlink_into_the_prefix_is_allowed(tmp_path: Path) -> None:
    check(tmp_path, [Entry("x", "bin/py", str(tmp_path / "bin" / "python3.11"))])


# --------------------------------------------------------------------------- after a CLI linked


def _record(prefix: Path, name: str, files: list[str]) -> None:
    meta = prefix / "conda-meta"
    meta.mkdir(parents=True, exist_ok=True)
    record = {"name": name, "version": "1.0", "build": "h0_0", "files": files}
    (meta / f"{name}-1.0-h0_0.json").write_text(json.dumps(record))


def test_what_a_cli_linked_outside_fails_the_create(tmp_path: Path) -> None:
    """conda 26.7.1 links a `..` paths.json entry outside the prefix (measured): the
    record it writes names the path, and the create fails on it."""
    prefix = tmp_path / "env"
    _record(prefix, "good", ["lib/libx.so"])
    _record(prefix, "evil", ["../../pkgs-x/evilx-1.0-h0_0/payload"])
    with pytest.raises(CreateError, match=r"evil-1\.0-h0_0 wrote '\.\./\.\./pkgs-x/.*outside"):
        check_linked(prefix, "conda 26.7.1")


def test_a_symlink_a_cli_linked_is_followed(tmp_path: Path) -> None:
    prefix = tmp_path / "env"
    _record(prefix, "evil", ["esc", "esc/pwned"])
    (prefix / "esc").symlink_to(tmp_path)
    with pytest.raises(CreateError, match="unsafe package linked by conda"):
        check_linked(prefix, "conda 26.7.1")


def test_what_stays_inside_passes(tmp_path: Path) -> None:
    prefix = tmp_path / "env"
    _record(prefix, "good", ["lib/libx.so", "lib/libx.so.1", "share/x/../y"])
    (prefix / "lib").mkdir()
    (prefix / "lib" / "libx.so").symlink_to("libx.so.1")
    check_linked(prefix, "conda 26.7.1")
