"""`envassay spec` against conda's own environment-file reader, on public files (issues 15, 29).

The corpus is specs/ (conda's, micromamba's and conda-lock's own test environments and a
few projects; sources in tests/anchors/README.md) and corpus/ (290 public environment files
from 206 repositories; MANIFEST.json). Every file is read by envassay and, in one process
per real conda, by conda's reader (conda_reader.py). Where conda refuses a file, envassay
must refuse it too; where conda reads it, envassay must read the same conda dependencies
(compared as conda's MatchSpec sees them: name, version, build, channel), the same pip
lines (as pip reads them), channels, variables, name, prefix and installer sections.
The deliberate differences are listed below, with the reason (and in README).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from envassay.command import run
from envassay.errors import EnvassayError
from envassay.spec.environment import load_spec
from tests.realconda import (
    DEFAULT_VARIABLE,
    MATRIX_VARIABLE,
    RealConda,
    params,
    real_conda_from,
)

HERE = Path(__file__).resolve().parent
SPECS = sorted((HERE / "specs").glob("*.yml")) + sorted((HERE / "corpus").glob("*.yml"))

# Files conda's reader accepts and envassay refuses, and why that is right. Each is a
# deliberate difference listed in README (spec reading).
REFUSED: dict[str, str] = {
    # A CircleCI file: `dependencies:` is a mapping (`override: [...]`), whose keys conda
    # iterates as MatchSpecs (a package named `override`). Reading it so would make every
    # check lie about an env nobody meant.
    "0043.yml": "`dependencies` must be a list",
}


# condas before 26 drop a `https://host:port::pkg` channel prefix (their MatchSpec takes
# the channel as empty); conda 26 and envassay (rattler) keep it. Compared with conda 26.
OLD_CONDA_READS_LESS = {
    "conda-test--conda-conda--environment-host-port.yml",
    "0146.yml",  # `https://104.17.92.24:443::flask=1.0.2`
}


def prereleases_differ(ours: list[str], theirs: list[str]) -> bool:
    """`name=>X` (`ninja=>1.10.2`, `rdkit=>2019.09.1`): conda reads `>X*`, greater than its
    VersionOrder("X*"), which admits X and X's pre-releases (X.dev, Xa0); rattler refuses
    the form, and envassay reads it `>=X`: the same versions but X's pre-releases."""
    return (
        ours[0] == theirs[0]
        and ours[1].startswith(">=")
        and theirs[1] == f">{ours[1][2:]}*"
        and ours[2:] == theirs[2:]
    )


REFUSALS: dict[str, str] = {}  # file name -> envassay's error, filled by ours()


def test_the_corpus_is_there() -> None:
    assert len(SPECS) >= 300
    assert set(REFUSED) <= {p.name for p in SPECS}
    manifest = json.loads((HERE / "corpus" / "MANIFEST.json").read_text())
    assert sorted(manifest) == sorted(p.name for p in SPECS if p.parent.name == "corpus")
    repos = {e["repo"] for e in manifest.values()} | {_source_repo(p) for p in SPECS}
    assert len(repos - {None}) >= 200


def ours(path: Path) -> dict[str, object] | None:
    try:
        spec = load_spec(path)
    except EnvassayError as exc:
        REFUSALS[str(path)] = str(exc)
        return None
    data = spec.to_dict()
    data["pip_texts"] = [r.text for r in spec.pip]
    data["conda"] = [d.normalized for d in spec.conda] + (["pip"] if data["pip_added"] else [])
    return data


# Every conda of the version matrix where it is set (`.ci/run` sets all five), else the
# default pair: reading 335 files costs each conda one interpreter start and a few seconds.
CONDAS = MATRIX_VARIABLE if os.environ.get(MATRIX_VARIABLE) else DEFAULT_VARIABLE


@pytest.fixture(params=params(CONDAS))
def conda(request: pytest.FixtureRequest) -> RealConda:
    return real_conda_from(request.param, CONDAS)


def test_spec_reads_as_conda_reads(conda: RealConda, tmp_path: Path) -> None:
    views = {str(p): ours(p) for p in SPECS}
    given = tmp_path / "ours.json"
    given.write_text(json.dumps(views, default=str))
    out = tmp_path / "conda.json"
    python = conda.path.parent / "python"
    result = run([python, HERE / "conda_reader.py", out, given], timeout=300)
    assert result.ok, result.describe()
    theirs = json.loads(out.read_text())

    problems = []
    for path in SPECS:
        mine, conda_view = views[str(path)], theirs[str(path)]
        error = REFUSALS.get(str(path), "")
        reason = REFUSED.get(path.name)
        if not conda_view["conda_ok"]:
            if mine is not None:
                problems.append(
                    f"{path.name}: conda refuses ({conda_view['error']}), envassay reads"
                )
            continue
        if mine is None:
            if reason is None or reason not in error:
                problems.append(f"{path.name}: envassay refuses a file conda reads: {error}")
            continue
        if reason is not None:
            problems.append(f"{path.name}: listed as refused, but envassay now reads it")
        old = path.name in OLD_CONDA_READS_LESS and conda.major < 26
        problems += [f"{path.name}: {p}" for p in compare(mine, conda_view, old_conda=old)]
    assert not problems, "\n".join(problems)


def compare(mine: dict[str, Any], conda_view: dict[str, Any], old_conda: bool = False) -> list[str]:
    """What envassay read and conda's reader did not, key by key, in conda's terms."""
    got = {
        "conda": conda_view["ours_conda"],
        "pip": mine["pip_texts"],
        "channels": list(dict.fromkeys(_channel(c) for c in mine["channels"])),
        "variables": mine["variables"],
        "installers": sorted(mine["other_installers"]),
        "prefix": mine["prefix"],
    }
    want = {k: conda_view[k] for k in got}
    if want["prefix"] is not None:
        want["prefix"] = str(want["prefix"])  # `prefix: 42`: any scalar, kept as text
    want["channels"] = list(dict.fromkeys(_channel(c) for c in want["channels"]))
    want["pip"] = pip_reads(want["pip"])
    if conda_view["name"] is not None:
        got["name"], want["name"] = mine["name"], str(conda_view["name"])
    for o in list(got["conda"]):
        for t in want["conda"]:
            if prereleases_differ(o, t):
                got["conda"].remove(o)
                want["conda"].remove(t)
                break
    if old_conda:
        got["conda"] = want["conda"]  # checked against the newer conda, listed above
    return [f"{key}: {_difference(got[key], want[key])}" for key in got if got[key] != want[key]]


def pip_reads(lines: list[str]) -> list[str]:
    """conda writes the `pip:` lines into a requirements file as they are; pip drops a
    comment (`#` at the start or after whitespace) and blank lines, and reads `-r=f` as
    `-r f`. The lines as pip reads them, to compare with envassay's."""
    result = []
    for line in lines:
        text = re.sub(r"(^|\s+)#.*$", "", str(line)).strip()
        flag, equals, value = text.partition(" ")[0].partition("=")
        if equals and flag in ("-r", "--requirement", "-e", "--editable"):
            text = f"{flag} {value} {text.partition(' ')[2]}".strip()
        if text:
            result.append(text)
    return result


def _source_repo(path: Path) -> str | None:
    """The repository a specs/ file names in its `# source:` header."""
    first = path.read_text(errors="replace").splitlines()[:2]
    for line in first:
        if line.startswith("# source:"):
            words = line.split()
            return words[2] if len(words) > 2 and "/" in words[2] else None
    return None


def _channel(text: str) -> str:
    return text.rstrip("/")


def _difference(ours: object, theirs: object) -> str:
    """What only envassay read and what only conda read, for lists; else both whole."""
    if isinstance(ours, list) and isinstance(theirs, list):
        only_ours = [x for x in ours if x not in theirs]
        only_theirs = [x for x in theirs if x not in ours]
        if only_ours or only_theirs:
            return f"only envassay {only_ours!r}, only conda {only_theirs!r}"
    return f"envassay {ours!r}, conda {theirs!r}"
