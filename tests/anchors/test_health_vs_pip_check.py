"""`health[pip]` against `pip check`, run on the same environments (issue 15).

Each case is a real venv (no pip inside it) whose site-packages the test writes; `pip
--python VENV check` (the pip that runs the tests) and envassay's probe + health[pip]
then look at the same interpreter. The verdicts must be the same and, where pip names
distributions, envassay names the same ones. pip reads metadata with importlib.metadata
(its default from Python 3.11) or pkg_resources (its default below 3.11, still selectable
with _PIP_USE_IMPORTLIB_METADATA=0 in pip 26); both are run where both exist.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from envassay.checks import check_pip_health
from envassay.probe import ProbeRequest, run_probe
from envassay.targets import NativeTarget

Dist = tuple[str, str, list[str]]  # dist-info directory name, Name, then METADATA lines


def meta(name: str, version: str, *requires: str) -> Dist:
    lines = [f"Requires-Dist: {r}" for r in requires]
    return (f"{name}-{version}.dist-info", name, [f"Version: {version}", *lines])


# case -> dists in site-packages, and dists in a second sys.path entry (after site-packages)
CASES: dict[str, tuple[list[Dist], list[Dist]]] = {
    "healthy": ([meta("a", "1.0", "b>=1"), meta("b", "1.2")], []),
    "unmet": ([meta("a", "1.0", "missing-dist>=1")], []),
    "wrong-version": ([meta("a", "1.0", "b<1"), meta("b", "1.2")], []),
    "false-marker": ([meta("a", "1.0", 'c; python_version < "3"')], []),
    "true-marker-unmet": ([meta("a", "1.0", 'c; sys_platform == "' + sys.platform + '"')], []),
    "extra-only": ([meta("a", "1.0", 'c; extra == "test"')], []),
    "extras-on-requirement": ([meta("a", "1.0", "b[fast]>=1"), meta("b", "1.2")], []),
    "prerelease-satisfies": ([meta("a", "1.0", "b>=1"), meta("b", "2.0rc1")], []),
    "url-requirement": (
        [meta("a", "1.0", "b @ https://example.invalid/b.whl"), meta("b", "1")],
        [],
    ),
    "malformed-requires-dist": ([meta("a", "1.0", "foo bar baz")], []),
    "folded-requires-dist": (
        [("a-1.0.dist-info", "a", ["Version: 1.0", "Requires-Dist:", "  b>=1"]), meta("b", "1")],
        [],
    ),
    "folded-requires-dist-unmet": (
        [("a-1.0.dist-info", "a", ["Version: 1.0", "Requires-Dist:", "\tb>=2"]), meta("b", "1")],
        [],
    ),
    "normalised-names": ([meta("a", "1.0", "foo-bar-baz>=1"), meta("Foo_Bar.baz", "1.0")], []),
    "duplicate-first-wins": (
        [meta("a", "1.0", "b>=1"), meta("b", "1.0")],
        [meta("b", "0.1"), meta("a", "0.5", "missing-dist")],
    ),
    "missing-metadata-required": (
        [meta("a", "1.0", "b"), ("b-1.0.dist-info", "", [])],
        [],
    ),
}
# pip's two metadata readers disagree on an empty `Requires-Dist:` (whl2conda writes one):
# pkg_resources skips it (healthy), importlib.metadata reports a parse error. envassay
# follows the first: the line requires nothing. Compared with the pkg_resources reader only.
EMPTY = {"empty-requires-dist": ([meta("a", "1.0", ""), meta("b", "1")], [])}


def make_env(root: Path, first: list[Dist], second: list[Dist]) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", root], check=True)
    [site] = root.glob("lib/python*/site-packages")
    extra = root / "extra-path"
    extra.mkdir()
    (site / "zz-extra.pth").write_text(f"{extra}\n")
    for where, dists in ((site, first), (extra, second)):
        for directory, name, lines in dists:
            info = where / directory
            info.mkdir()
            if name:
                header = ["Metadata-Version: 2.1", f"Name: {name}", *lines]
                (info / "METADATA").write_text("\n".join(header) + "\n\n")
    return root


def pip_check(prefix: Path, reader: str) -> tuple[bool, set[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "_PIP_"))}
    env["PYTHONNOUSERSITE"] = "1"
    if reader == "pkg_resources":
        env["_PIP_USE_IMPORTLIB_METADATA"] = "0"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "--python", prefix / "bin" / "python", "check"],
        capture_output=True,
        text=True,
        env=env,
    )
    output = result.stdout + result.stderr
    names = set()
    for pattern in (
        r"^(\S+) \S+ requires ",
        r"^(\S+) \S+ has requirement ",
        r"Error parsing (?:dependencies|requirements) (?:of|for) ([^:\s]+)",
    ):
        names |= {canonicalize_name(m) for m in re.findall(pattern, output, re.MULTILINE)}
    return result.returncode == 0, names


def envassay_health(prefix: Path) -> tuple[bool, set[str]]:
    report = run_probe(NativeTarget(prefix), ProbeRequest())
    result = check_pip_health(report)
    problems = result.details.get("problems", []) if result.details else []
    return result.outcome == "passed", {canonicalize_name(p.split()[0]) for p in problems}


@cache
def pkg_resources_reader_works() -> bool:
    probe = subprocess.run(
        [sys.executable, "-c", "import pip._internal.metadata.pkg_resources"],
        capture_output=True,
    )
    return probe.returncode == 0


# pip 26's importlib reader counts a `*.dist-info` without METADATA as installed (named by
# its directory), so a requirement on it is met; pip 23-25, and pip 26's pkg_resources reader,
# skip it ("not installed"), as envassay does. Kept in view: there, pip says healthy, we not.
PIP_26_DIFFERS = {"missing-metadata-required"}


def pip_major() -> int:
    import pip

    return int(pip.__version__.split(".")[0])


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_verdict_as_pip_check(case: str, tmp_path: Path) -> None:
    prefix = make_env(tmp_path / "env", *CASES[case])
    ours = envassay_health(prefix)
    readers = ["importlib"] + (["pkg_resources"] if pkg_resources_reader_works() else [])
    for reader in readers:
        if case in PIP_26_DIFFERS and pip_major() >= 26 and reader == "importlib":
            assert (pip_check(prefix, reader), ours) == ((True, set()), (False, {"a"}))
        else:
            assert pip_check(prefix, reader) == ours, (case, reader)


@pytest.mark.parametrize("case", sorted(EMPTY))
def test_empty_requires_dist_as_pip_pkg_resources(case: str, tmp_path: Path) -> None:
    if not pkg_resources_reader_works():
        pytest.skip("this pip has no pkg_resources metadata reader")
    prefix = make_env(tmp_path / "env", *EMPTY[case])
    assert envassay_health(prefix) == (True, set())
    assert pip_check(prefix, "pkg_resources") == (True, set())
    assert pip_check(prefix, "importlib") == (False, {"a"})  # the disagreement, kept in view
