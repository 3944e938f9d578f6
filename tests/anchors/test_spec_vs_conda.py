"""`envassay spec` against conda's own environment-file reader, on public files (issue 15).

The corpus (tests/anchors/specs/, sources in tests/anchors/README.md) is conda's, micromamba's
and conda-lock's own test environments. For every file the real conda accepts, envassay
must read the same conda dependencies (compared as conda's MatchSpec sees them: name,
version, build, channel), the same pip lines (verbatim, in order), channels and variables,
and the same name. Where envassay refuses a file conda accepts, the file is listed below
with the reason; every other refusal fails the test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from envassay.command import run
from envassay.errors import EnvassayError
from envassay.spec import load_spec
from tests.realconda import RealConda, params, real_conda_from

HERE = Path(__file__).resolve().parent
SPECS = sorted((HERE / "specs").glob("*.yml"))

# Files conda's reader accepts and envassay refuses, and why that is right (or not yet fixed).
REFUSED: dict[str, str] = {
    # conda warns "is invalid and will be ignored" for every unknown top-level key, and so
    # does envassay, except for a near miss of a key it reads (`names`, `chanels`,
    # `prefis` here): a typo that would silently drop the channels or name the author
    # meant. Refused with "did you mean".
    "conda-test--conda-conda--invalid-keys.yml": "did you mean",
    # Certain to fail to create: the `-r` file it names is not in the corpus (pip cannot
    # read it), and an `npm:` installer section no conda installs from an env file.
    "conda-test--conda-conda--advanced-pip.yml": "cannot be read",
    "conda-test--conda-conda--environment-unknown-installer.yml": "may only be `pip:`",
    # No packages at all: conda would make an empty prefix; there is nothing to assay.
    "conda-test--conda-conda--just-vars.yml": "is empty",
    "conda-test--conda-conda--missing-required-keys.yml": "no `dependencies:`",
}


# conda 24 drops a `https://host:port::pkg` channel prefix (its MatchSpec takes the channel
# as empty); conda 26 and envassay (rattler) keep it. Compared against the newer conda only.
OLD_CONDA_READS_LESS = {("conda-test--conda-conda--environment-host-port.yml", 24)}


# `name=>X` (a real spec's `ninja=>1.10.2`): conda reads `>X*`, greater than its
# VersionOrder("X*"), which admits X and X's pre-releases (X.dev, Xa0); rattler refuses the
# form, and envassay reads it `>=X`: the same versions but X's pre-releases.
# file -> (package, conda's version, envassay's version)
PRERELEASES_DIFFER = {
    "project--PDillis-stylegan3-fun--ml-research.yml": ("ninja", ">1.10.2*", ">=1.10.2"),
}

REFUSALS: dict[str, str] = {}  # file name -> envassay's error, filled by ours()


def test_the_corpus_is_there() -> None:
    assert len(SPECS) >= 44
    assert set(REFUSED) <= {p.name for p in SPECS}


def ours(path: Path) -> dict[str, object] | None:
    try:
        spec = load_spec(path)
    except EnvassayError as exc:
        REFUSALS[path.name] = str(exc)
        return None
    data = spec.to_dict()
    data["pip_texts"] = [r.text for r in spec.pip]
    data["conda"] = [d.normalized for d in spec.conda] + (["pip"] if data["pip_added"] else [])
    return data


@pytest.fixture(params=params())
def conda(request: pytest.FixtureRequest) -> RealConda:
    return real_conda_from(request.param)


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
        if not conda_view["conda_ok"]:
            continue  # conda refuses it: nothing to compare
        if mine is None:
            error = REFUSALS[path.name]
            reason = REFUSED.get(path.name)
            if reason is None or reason not in error:
                problems.append(f"{path.name}: envassay refuses a file conda reads: {error}")
            continue
        if path.name in REFUSED:
            problems.append(f"{path.name}: listed as refused, but envassay now reads it")
        got = {
            "conda": conda_view["ours_conda"],
            "pip": mine["pip_texts"],
            "channels": [_channel(c) for c in mine["channels"]],
            "variables": mine["variables"],
        }
        want = {k: conda_view[k] for k in got}
        want["channels"] = [_channel(c) for c in want["channels"]]
        if conda_view["name"]:
            got["name"], want["name"] = mine["name"], conda_view["name"]
        if path.name in PRERELEASES_DIFFER:
            name, theirs_version, ours_version = PRERELEASES_DIFFER[path.name]
            for view, version in ((got, ours_version), (want, theirs_version)):
                [entry] = [e for e in view["conda"] if e[0] == name]
                assert entry[1] == version, (path.name, entry)
                view["conda"] = [e for e in view["conda"] if e[0] != name]
        if (path.name, conda.major) in OLD_CONDA_READS_LESS:
            got["conda"] = want["conda"]  # checked against the newer conda, listed above
        for key in got:
            if got[key] != want[key]:
                problems.append(f"{path.name}: {key}: envassay {got[key]!r}, conda {want[key]!r}")
    assert not problems, "\n".join(problems)


def _channel(text: str) -> str:
    return text.rstrip("/")
