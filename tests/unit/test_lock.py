"""lock.unsolved_reasons: is a lock envassay did not write a solution of the spec?"""

from __future__ import annotations

from pathlib import Path

import pytest

from envassay.lock import unsolved_reasons
from envassay.lockfile import LockedPackage, LockFile, LockMetadata
from envassay.spec import load_spec

CHANNEL = "file:///channel"


def conda(name: str, version: str, build: str = "0", **deps: str) -> LockedPackage:
    url = f"{CHANNEL}/noarch/{name}-{version}-{build}.tar.bz2"
    return LockedPackage(name, version, "conda", "linux-64", url, md5="0" * 32, dependencies=deps)


def pip(name: str, version: str, **deps: str) -> LockedPackage:
    url = f"file:///wheels/{name}-{version}-py3-none-any.whl"
    return LockedPackage(name, version, "pip", "linux-64", url, sha256="0" * 64, dependencies=deps)


def lock_of(*packages: LockedPackage) -> LockFile:
    meta = LockMetadata({"linux-64": "theirs"}, (CHANNEL,), ("linux-64",), ("env.yml",))
    return LockFile(meta, packages)


BASE = (
    conda("python", "3.11.7", "h0", __glibc=">=2.17"),
    conda("requests", "2.32.3", "py_0", python="", idna="<4"),
    conda("idna", "3.7", "py_0", python=""),
)


def reasons(tmp_path: Path, deps: str, *packages: LockedPackage) -> list[str]:
    path = tmp_path / "env.yml"
    path.write_text(f"channels: [local]\ndependencies:\n{deps}")
    return unsolved_reasons(load_spec(path), lock_of(*packages))


def test_a_lock_that_solves_the_spec_has_no_reasons(tmp_path: Path) -> None:
    deps = "  - python=3.11\n  - channel::requests>=2\n  - __glibc>=2.17\n"
    assert reasons(tmp_path, deps, *BASE) == []


@pytest.mark.parametrize(
    ("deps", "expected"),
    [
        (
            "  - python=3.12\n  - requests\n",
            "the spec asks for python=3.12, the lock has 3.11.7 h0",
        ),
        ("  - python\n  - requests\n  - six\n", "the spec asks for six, the lock has nothing"),
        ("  - python\n", "the lock holds idna, requests, which the spec no longer needs"),
        (
            "  - python\n  - requests=*=py_1\n",
            "the spec asks for requests=*=py_1, the lock has 2.32.3 py_0",
        ),
        (
            "  - python\n  - other::requests\n",
            f"the spec asks for other::requests, the lock has it from {CHANNEL}",
        ),
    ],
)
def test_a_lock_that_does_not_is_stale_saying_why(tmp_path: Path, deps: str, expected: str) -> None:
    assert reasons(tmp_path, deps, *BASE) == [f"linux-64: {expected}"]


PIP = (*BASE, conda("pip", "24.2", "py_0", python=""), pip("Local_Wheel", "1.0", dep=">=1"))


def test_pip_requirements_and_their_closure(tmp_path: Path) -> None:
    section = "  - python\n  - requests\n  - pip:\n    - --no-index\n    - local-wheel==1.0\n"
    assert reasons(tmp_path, section, *PIP, pip("dep", "1.5")) == []
    assert reasons(tmp_path, section, *PIP, pip("dep", "1.5"), pip("extra", "1")) == [
        "linux-64: the lock holds extra, which the spec no longer needs"
    ]
    newer = section.replace("==1.0", ">=2")
    assert reasons(tmp_path, newer, *PIP, pip("dep", "1.5")) == [
        "linux-64: the spec asks for pip local-wheel>=2, the lock has 1.0"
    ]
    # pip itself is asked for by a pip: section, as conda-lock and conda add it.
    assert reasons(tmp_path, section, *BASE, pip("local-wheel", "1.0")) == [
        "linux-64: the spec asks for pip, the lock has nothing"
    ]


def test_a_marker_or_a_path_leaves_the_pip_closure_unjudged(tmp_path: Path) -> None:
    marked = "  - python\n  - requests\n  - pip:\n    - \"other; sys_platform == 'win32'\"\n"
    assert reasons(tmp_path, marked, *PIP) == []
    path = "  - python\n  - requests\n  - pip:\n    - ./local/project\n"
    assert reasons(tmp_path, path, *PIP) == []
