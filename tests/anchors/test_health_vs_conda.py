"""`health[conda]` against the real conda's own view of the same prefix (issue 15).

The base env is made by the real conda itself (``conda create`` from the local test
channel, offline); each case is a copy of it (files hard-linked, ``conda-meta`` copied)
whose records the test edits as a broken install or a hand-edited prefix would leave
them. Then, on the same prefix:

- ``conda list --explicit --md5`` (every version): the records conda sees are the
  records envassay's probe reads (same package URLs);
- ``conda doctor -v -p PREFIX`` consistency (conda 25.11 and later; older condas have
  no such check): the same verdict as envassay's probe + health[conda], and the same
  packages named. conda matches a dependency on a virtual package against the
  machine's own (``__glibc``, ``__unix``, ...); envassay now does the same, from the
  target's probe.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from envassay.checks import check_conda_health
from envassay.command import run
from envassay.probe import ProbeReport, ProbeRequest, run_probe
from envassay.targets import NativeTarget
from envassay_testing import LocalChannel
from tests.realconda import RealConda

pytestmark = [pytest.mark.channel, pytest.mark.slow]

# case -> record name -> edit: None deletes the record, "corrupt" leaves it unreadable;
# a dict sets fields (the file renamed after them, as conda names it, unless "keep-name"),
# and its "depends+" key appends to the record's depends.
Edits = Mapping[str, "Mapping[str, Any] | str | None"]
CASES: dict[str, Edits] = {
    "as-created": {},
    "missing-dependency": {"idna": None},
    "wrong-version": {"idna": {"version": "1.0"}},
    # conda ignores a record not named NAME-VERSION-BUILD.json (so idna is missing).
    "misnamed-record": {"idna": {"version": "1.0", "keep-name": True}},
    # conda refuses the prefix (CorruptedEnvironmentError); envassay fails health[conda].
    "corrupt-record": {"idna": "corrupt"},
    "exact-version-and-build": {"requests": {"depends+": ["idna 3.7 py_0"]}},
    "build-string-unmet": {"requests": {"depends+": ["idna 3.7 py_1"]}},
    "build-glob-unmet": {"numpy": {"depends+": ["python 3.11.* *_cpython"]}},
    "build-number-met": {"numpy": {"depends+": ["python[build_number=0]"]}},
    "build-number-unmet": {"numpy": {"depends+": ["python[build_number='>=5']"]}},
    "version-alternatives": {"requests": {"depends+": ["idna >=4|<3.8"]}},
    "constrains-held": {"numpy": {"constrains": ["requests >=2,<3"]}},
    "constrains-violated": {"numpy": {"constrains": ["requests <2"]}},
    "constrains-on-absent-package": {"numpy": {"constrains": ["scipy <0"]}},
    "virtual-unix": {"numpy": {"depends+": ["__unix"]}},
    "virtual-glibc-met": {"numpy": {"depends+": ["__glibc >=2.17,<3.0.a0"]}},
    "virtual-glibc-unmet": {"numpy": {"depends+": ["__glibc >=99"]}},
    "virtual-osx-on-linux": {"numpy": {"depends+": ["__osx >=11"]}},
    "several-broken": {"idna": None, "numpy": {"constrains": ["requests <2"]}},
}
# Where envassay and conda differ on purpose. A dependency on __cuda is the GPU check's
# question (gpu[...] items, with the env's GPU policy): a CPU-only CI runner must be able
# to assay a CUDA env without health[conda] failing. conda, on a machine without a
# driver, calls the record inconsistent ("missing __cuda"); on one with a new enough
# driver, consistent. envassay does not judge __cuda in health[conda].
DIFFERENCES: dict[str, Edits] = {"virtual-cuda": {"numpy": {"depends+": ["__cuda >=12"]}}}

BASE_PACKAGES = ("python", "requests", "numpy")


@pytest.fixture(scope="session")
def base_prefixes() -> dict[Path, Path]:
    """conda executable -> the env that conda made (once per session)."""
    return {}


def conda_env(conda: RealConda, pkgs: Path) -> dict[str, str]:
    env = conda.environ(os.environ, pkgs)
    env.pop("REQUESTS_CA_BUNDLE", None)  # conda 25.x's doctor would try it over the network
    return env


def base_prefix(
    conda: RealConda, made: dict[Path, Path], root: Path, channel: LocalChannel
) -> Path:
    if conda.path not in made:
        prefix = root / f"base-{conda.version}"
        result = run(
            [
                str(conda.path),
                "create",
                "-q",
                "-y",
                "-p",
                str(prefix),
                "--offline",
                "--override-channels",
                "-c",
                channel.url,
                *BASE_PACKAGES,
            ],
            env=conda_env(conda, root / "pkgs"),
            timeout=600,
        )
        assert result.ok, result.describe()
        made[conda.path] = prefix
    return made[conda.path]


def edited_copy(base: Path, dest: Path, edits: Edits) -> Path:
    """``base`` copied to ``dest`` (hard links; conda-meta copied), its records edited."""
    top_meta = shutil.ignore_patterns("conda-meta")
    shutil.copytree(
        base,
        dest,
        symlinks=True,
        copy_function=os.link,
        ignore=lambda folder, names: top_meta(folder, names) if Path(folder) == base else set(),
    )
    shutil.copytree(base / "conda-meta", dest / "conda-meta")
    records = {json.loads(p.read_text())["name"]: p for p in dest.glob("conda-meta/*.json")}
    for name, edit in edits.items():
        path = records[name]
        if edit is None or edit == "corrupt":
            path.unlink()
            if edit == "corrupt":
                path.write_text('{"name": "idna", "version": ')
            continue
        assert isinstance(edit, Mapping)
        record = json.loads(path.read_text())
        for key, value in edit.items():
            if key == "depends+":
                record["depends"] = [*record.get("depends", []), *value]
            elif key != "keep-name":
                record[key] = value
        if not edit.get("keep-name"):
            path.unlink()
            path = path.with_name("{name}-{version}-{build}.json".format(**record))
        path.write_text(json.dumps(record))
    return dest


def conda_doctor(conda: RealConda, prefix: Path, env: dict[str, str]) -> tuple[bool, set[str]]:
    """conda's consistency verdict and the packages it names."""
    result = run([str(conda.path), "doctor", "-v", "-p", str(prefix)], env=env, timeout=300)
    output = result.stdout
    if "The environment is consistent." in output:
        return True, set()
    _head, marker, rest = output.partition("The environment is not consistent.")
    assert marker, f"conda doctor said nothing about consistency: {result.describe()}"
    # The verbose report is YAML (package -> missing / inconsistent) up to the next check.
    block = re.split(r"^(?:✅|❌)", rest, maxsplit=1, flags=re.MULTILINE)[0]
    return False, set(yaml.safe_load(block) or {})


def has_consistency_check(conda: RealConda) -> bool:
    return (conda.major, int(conda.version.split(".")[1])) >= (25, 11)


def conda_explicit_urls(conda: RealConda, prefix: Path, env: dict[str, str]) -> set[str] | None:
    """The package URLs conda lists for ``prefix``; None when conda calls it corrupted."""
    result = run(
        [str(conda.path), "list", "--explicit", "--md5", "-p", str(prefix)], env=env, timeout=300
    )
    if not result.ok and "CorruptedEnvironmentError" in result.stdout + result.stderr:
        return None
    assert result.ok, result.describe()
    return {
        line.split("#", 1)[0] for line in result.stdout.splitlines() if "://" in line.split("#")[0]
    }


def envassay_health(report: ProbeReport) -> tuple[bool, set[str]]:
    result = check_conda_health(report)
    problems = result.details.get("problems", []) if result.details else []
    # A problem starts with the record's name, or with an unreadable record's file.
    names = {re.sub(r"^conda-meta/(.+)-[^-]+-[^-]+\.json:$", r"\1", p.split()[0]) for p in problems}
    return result.outcome == "passed", names


def compare(
    conda: RealConda, case: str, edits: Edits, root: Path, made: dict[Path, Path], ch: LocalChannel
) -> tuple[tuple[bool, set[str]] | None, tuple[bool, set[str]]]:
    prefix = edited_copy(
        base_prefix(conda, made, root, ch), root / f"{conda.version}-{case}", edits
    )
    env = conda_env(conda, root / "pkgs")
    report = run_probe(NativeTarget(prefix), ProbeRequest())
    ours = envassay_health(report)
    listed = conda_explicit_urls(conda, prefix, env)
    if listed is None:
        # conda refuses the prefix, naming the file; envassay fails health[conda] naming
        # it too (and, as well, what depends on the record it could not read).
        assert not ours[0] and set(edits) <= ours[1], ours
        return None, ours
    assert {r.url for r in report.conda_records if r.url} == listed, "conda sees other records"
    theirs = conda_doctor(conda, prefix, env) if has_consistency_check(conda) else None
    return theirs, ours


def test_the_cases_cover_both_verdicts() -> None:
    # A comparison whose cases all pass (or all fail) would not tell the checks apart.
    assert {"as-created", "missing-dependency", "constrains-violated"} <= set(CASES)


Verdict = tuple[bool, set[str]]


@pytest.fixture
def assay_case(
    conda: RealConda,
    base_prefixes: dict[Path, Path],
    tmp_path_factory: pytest.TempPathFactory,
    test_channel: LocalChannel,
) -> Callable[[str, Edits], tuple[Verdict | None, Verdict]]:
    """The case's (conda's verdict or None where it has no such check, envassay's)."""
    root = tmp_path_factory.getbasetemp() / "health-vs-conda"
    root.mkdir(exist_ok=True)
    return lambda case, edits: compare(conda, case, edits, root, base_prefixes, test_channel)


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_verdict_as_conda(
    case: str, assay_case: Callable[[str, Edits], tuple[Verdict | None, Verdict]]
) -> None:
    theirs, ours = assay_case(case, CASES[case])
    if theirs is not None:
        assert ours == theirs, f"envassay says {ours}, conda doctor says {theirs}"


@pytest.mark.parametrize("case", sorted(DIFFERENCES))
def test_listed_differences_are_as_described(
    case: str, assay_case: Callable[[str, Edits], tuple[Verdict | None, Verdict]]
) -> None:
    theirs, ours = assay_case(case, DIFFERENCES[case])
    assert ours == (True, set())  # __cuda is left to the GPU check
    if theirs is not None and not theirs[0]:
        assert theirs[1] == {"numpy"}  # conda: missing __cuda on a machine without a driver
