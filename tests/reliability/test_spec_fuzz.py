"""Property: whatever a spec file holds, the loader returns an EnvSpec or raises SpecError.

Random YAML documents (built from spec-shaped values and dumped with PyYAML, so they
are valid YAML of every shape), random text and random bytes go through ``load_spec``
and ``read_spec_header``; anything else escaping (a TypeError, a RecursionError, a Rust
panic from a MatchSpec, a crash) fails the test.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from envassay.errors import SpecError
from envassay.spec.environment import KNOWN_KEYS, EnvSpec, load_spec, read_spec_header

SETTINGS = settings(
    max_examples=300,
    database=None,  # nothing written into the working tree
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Text that looks like what specs hold: names, versions, operators, channels, pip syntax.
_ALPHABET = "abcdefghijklmnopqrstuvwxyzABC0123456789 .-_=<>!~*,:;/[]'\"@#&|()+^${}\\\t\n\x00\x7f"
words = st.one_of(
    st.sampled_from(
        [
            "python",
            "numpy",
            "numpy>=1.24,<2",
            "python=3.11",
            "pip",
            "conda-forge",
            "nodefaults",
            "./channel",
            "file:///nonexistent",
            "-r requirements.txt",
            "--index-url https://example.invalid/simple",
            "-e ./pkg",
            "git+https://example.invalid/x.git#egg=x",
            "requests>=2 ; python_version < '3.12'",
            "linux-64",
            "pytorch::pytorch=2.0=*cuda*",
            "..",
            "/etc",
            "",
        ]
    ),
    st.text(alphabet=_ALPHABET, max_size=30),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    words,
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(
            st.one_of(words, st.sampled_from(["pip", *KNOWN_KEYS]), st.integers(), st.none()),
            children,
            max_size=5,
        ),
    ),
    max_leaves=25,
)
documents = st.one_of(
    values,
    st.fixed_dictionaries(
        {},
        optional={key: values for key in KNOWN_KEYS}
        | {
            "dependencies": st.one_of(
                values, st.lists(st.one_of(words, st.fixed_dictionaries({"pip": values})))
            )
        },
    ),
)


def check(path: Path) -> None:
    try:
        spec = load_spec(path)
    except SpecError as exc:
        assert str(exc) and "\n" not in exc.render()
    else:
        assert isinstance(spec, EnvSpec)
        assert len(spec.content_hash) == 64
    with contextlib.suppress(SpecError):
        read_spec_header(path)


def write(data: bytes) -> Path:
    handle = tempfile.NamedTemporaryFile(suffix=".yml", delete=False)  # noqa: SIM115
    with handle:
        handle.write(data)
    return Path(handle.name)


def run_on(data: bytes) -> None:
    path = write(data)
    try:
        check(path)
    finally:
        path.unlink()


@SETTINGS
@given(documents)
# What it found before (kept, so a regression is always caught):
@example({"dependencies": 1})  # read_spec_header iterated an int: a TypeError
@example({"dependencies": True, "name": "x"})
@example({"variables": {1: "x"}, "dependencies": ["numpy"]})
@example({"name": 5, "dependencies": ["numpy"]})
def test_random_yaml_documents(document: Any) -> None:
    run_on(yaml.safe_dump(document, allow_unicode=True, sort_keys=False).encode())


@SETTINGS
@given(st.text(alphabet=_ALPHABET + "&*!|>%?`", max_size=300))
def test_random_text(text: str) -> None:
    run_on(text.encode())


@SETTINGS
@given(st.binary(max_size=300))
def test_random_bytes(data: bytes) -> None:
    run_on(data)


@SETTINGS
@given(
    st.lists(
        st.sampled_from(["[", "]", "{", "}", "- ", ": ", "&a ", "*a ", "!!", "\n", " ", "x"]),
        max_size=200,
    )
)
def test_random_yaml_punctuation(pieces: list[str]) -> None:
    run_on("".join(pieces).encode())
