"""A package in both the conda part and the pip: section: named at `spec` time."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.version import Version

from envassay.spec.both import in_both
from envassay.spec.environment import load_spec

VERSIONS = st.lists(st.integers(0, 30), min_size=1, max_size=3).map(
    lambda parts: ".".join(map(str, parts))
)


def spec_of(tmp_path: Path, conda: str, pip: str) -> Path:
    path = tmp_path / "both.yml"
    path.write_text(f'dependencies:\n  - "{conda}"\n  - pip\n  - pip:\n    - "{pip}"\n')
    return path


@pytest.mark.parametrize(
    ("conda", "pip", "contradict"),
    [
        ("pyyaml=6.0.1", "pyyaml==6.0.2", True),
        ("pyyaml=6.0", "pyyaml==6.0.2", False),  # conda's 6.0 is 6.0.*
        ("PyYAML>=6", "pyyaml<7", False),
        ("six>1", "six<2", False),  # 1.1 satisfies both
        ("six 1.16.*", "six>=1.17", True),
        ("six", "six==1.17.0", False),  # conda's version is unknown until solved
        ("six=1.16", "six", False),
    ],
)
def test_in_both(tmp_path: Path, conda: str, pip: str, contradict: bool) -> None:
    (found,) = in_both(load_spec(spec_of(tmp_path, conda, pip)))
    assert found.contradict is contradict
    assert found.conda.text == conda and found.pip.text == pip
    assert ("contradict" in found.describe()) is contradict


def test_different_packages_are_not_in_both(tmp_path: Path) -> None:
    assert in_both(load_spec(spec_of(tmp_path, "pyyaml=6.0.1", "six==1.17.0"))) == []


@settings(max_examples=60, deadline=None)
@given(a=VERSIONS, b=VERSIONS)
def test_exact_pins_contradict_exactly_when_the_versions_differ(
    tmp_path_factory: pytest.TempPathFactory, a: str, b: str
) -> None:
    tmp = tmp_path_factory.mktemp("both")
    (found,) = in_both(load_spec(spec_of(tmp, f"pkg =={a}", f"pkg=={b}")))
    assert found.contradict is (Version(a) != Version(b))


@settings(max_examples=60, deadline=None)
@given(a=VERSIONS, b=VERSIONS)
def test_ranges_contradict_exactly_when_they_do_not_meet(
    tmp_path_factory: pytest.TempPathFactory, a: str, b: str
) -> None:
    tmp = tmp_path_factory.mktemp("both")
    (found,) = in_both(load_spec(spec_of(tmp, f"pkg >={a}", f"pkg<{b}")))
    assert found.contradict is (Version(b) <= Version(a))


OPERATORS = st.sampled_from(["==", ">=", "<=", ">", "<", "!=", "~=", "=", ""])
WORDS = st.text(alphabet="0123456789.*abrcdevpost+!", min_size=1, max_size=12)


@settings(max_examples=150, deadline=None)
@given(conda_op=OPERATORS, conda_v=WORDS, pip_op=OPERATORS, pip_v=WORDS)
def test_any_pair_of_lines_is_judged_without_raising(
    tmp_path_factory: pytest.TempPathFactory, conda_op: str, conda_v: str, pip_op: str, pip_v: str
) -> None:
    """Whatever versions a spec's lines hold, `envassay spec` names the pair or the line
    is refused where it is read; judging the pair never raises."""
    from envassay.errors import EnvassayError

    tmp = tmp_path_factory.mktemp("both")
    try:
        spec = load_spec(spec_of(tmp, f"pkg {conda_op}{conda_v}", f"pkg{pip_op}{pip_v}"))
    except EnvassayError:
        return
    for found in in_both(spec):
        assert isinstance(found.contradict, bool)
        assert found.describe()
