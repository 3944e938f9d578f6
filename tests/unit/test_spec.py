"""EnvSpec against real parsing: every MatchSpec form, pip line kinds, hashing, bad input."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from envassay.errors import SpecError
from envassay.spec import load_spec, parse_pip_line
from envassay.store import path_label


def write(tmp_path: Path, text: str, name: str = "env.yml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize(
    ("text", "normalized", "name", "channel"),
    [
        ("numpy", "numpy", "numpy", None),
        ("numpy=1.26", "numpy 1.26.*", "numpy", None),
        ("numpy==1.26.4", "numpy ==1.26.4", "numpy", None),
        ("numpy>=1.24,<2", "numpy >=1.24,<2", "numpy", None),
        ("numpy 1.26.*", "numpy 1.26.*", "numpy", None),
        ("pytorch::pytorch=2.0", "pytorch::pytorch 2.0.*", "pytorch", "pytorch"),
        ("pytorch=2.0=*cuda*", "pytorch ==2.0 *cuda*", "pytorch", None),
        ("numpy[version='>=1.24']", "numpy >=1.24", "numpy", None),
        ("Scikit-Learn >=1.3", "scikit-learn >=1.3", "scikit-learn", None),
    ],
)
def test_conda_matchspec_forms(
    tmp_path: Path, text: str, normalized: str, name: str, channel: str | None
) -> None:
    spec = load_spec(write(tmp_path, f'dependencies:\n  - "{text}"\n'))
    (dep,) = spec.conda
    assert (dep.text, dep.normalized, dep.name, dep.channel) == (text, normalized, name, channel)


def test_full_spec(tmp_path: Path) -> None:
    (tmp_path / "ch").mkdir()
    (tmp_path / "extra.txt").write_text("six\n")
    path = write(
        tmp_path,
        """\
        name: ai
        channels:
          - conda-forge
          - ./ch
          - nodefaults
        dependencies:
          - python=3.11
          - pip:
            - requests>=2.31
            - "tomli; python_version < '3.11'"
            - -r extra.txt
            - --index-url https://mirror.invalid/simple
            - --extra-index-url https://mirror2.invalid/simple
            - -e ./src/mypkg
            - git+https://example.invalid/x.git#egg=xpkg
            - mypkg @ https://example.invalid/mypkg-1.0-py3-none-any.whl
        variables:
          OMP_NUM_THREADS: 1
        prefix: /opt/env
        """,
    )
    spec = load_spec(path)
    assert spec.name == "ai"
    assert spec.channels == ("conda-forge", (tmp_path / "ch").as_uri())
    assert spec.nodefaults
    kinds = [(r.kind, r.name) for r in spec.pip]
    assert kinds == [
        ("requirement", "requests"),
        ("requirement", "tomli"),
        ("requirements-file", None),
        ("option", None),
        ("option", None),
        ("editable", None),
        ("url", "xpkg"),
        ("url", "mypkg"),
    ]
    assert spec.pip[1].marker == 'python_version < "3.11"'
    assert spec.variables == {"OMP_NUM_THREADS": "1"}
    assert spec.prefix == "/opt/env"
    assert spec.solve_specs == ["python 3.11.*", "pip"]  # pip added, as conda does


def test_name_defaults_to_file_stem(tmp_path: Path) -> None:
    assert load_spec(write(tmp_path, "dependencies: [python]\n", "train.yaml")).name == "train"


def test_hash_ignores_formatting_comments_and_order(tmp_path: Path) -> None:
    a = load_spec(write(tmp_path, "channels: [c]\ndependencies: [numpy=1.26, python]\n", "a.yml"))
    b = load_spec(
        write(
            tmp_path,
            """\
            # a comment
            channels:
              - c
            dependencies:
              - python      # the interpreter
              - "numpy 1.26.*"
            """,
            "b.yml",
        )
    )
    assert a.content_hash == b.content_hash
    c = load_spec(write(tmp_path, "channels: [c]\ndependencies: [numpy=1.25, python]\n", "c.yml"))
    assert c.content_hash != a.content_hash


def test_hash_follows_requirements_file_content(tmp_path: Path) -> None:
    req = tmp_path / "r.txt"
    req.write_text("six\n")
    path = write(tmp_path, "dependencies:\n  - pip:\n    - -r r.txt\n")
    before = load_spec(path).content_hash
    req.write_text("six==1.16\n")
    assert load_spec(path).content_hash != before


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty file"),
        ("- a\n- b\n", "expected a mapping"),
        ("dependencies: numpy\n", "`dependencies` must be a list"),
        ("dependencies:\n  - numpy\n\t- scipy\n", "tabs"),
        ("dependencies: [numpy>=>1]\n", "invalid conda MatchSpec 'numpy>=>1'"),
        ("dependencies:\n  - pip:\n    - 'requests>>2'\n", "invalid pip requirement"),
        ("dependencies:\n  - pip:\n    - --weird-flag\n", "unsupported pip option"),
        ("dependencies:\n  - pip:\n    - -r missing.txt\n", "cannot be read"),
        ("dependencies:\n  - 3.11\n", "must be a string"),
        ("dependencies: [numpy]\ndependencies: [scipy]\n", "duplicate key"),
        ("name: ../evil\ndependencies: [numpy]\n", "not a valid environment name"),
        ("name: a/b\ndependencies: [numpy]\n", "not a valid environment name"),
        ("channels: [file:///nonexistent/channel]\ndependencies: [numpy]\n", "does not exist"),
        ("channels: ['bad channel!']\ndependencies: [numpy]\n", "neither a channel name"),
        ("dependencies: [numpy]\nchannel: [x]\n", "unknown key(s) 'channel'"),
        ("dependencies: !!python/object:os.system [x]\n", "not allowed"),
        ("dependencies: []\n", "is empty"),
        ("name: x\n", "no `dependencies:`"),
        ("dependencies:\n  - {pip: [six], conda: [x]}\n", "may only be `pip:`"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path: Path, text: str, fragment: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    message = info.value.render()
    assert fragment in message
    assert str(path) in message
    assert "\n" not in message


def test_yaml_error_names_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "dependencies:\n  - numpy\n  - [unclosed\n")
    with pytest.raises(SpecError, match=rf"{path}:\d+:\d+: not valid YAML"):
        load_spec(path)


def test_invalid_matchspec_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "dependencies:\n  - numpy\n  - 'scipy>=>1'\n")
    with pytest.raises(SpecError, match=rf"{path}:3: invalid conda MatchSpec"):
        load_spec(path)


def test_billion_laughs_is_refused_quickly(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    lines.append("dependencies: *a8")
    path = write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(SpecError, match="alias expansion bomb"):
        load_spec(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="file not found"):
        load_spec(tmp_path / "nope.yml")


@pytest.mark.parametrize(
    ("line", "kind", "name"),
    [
        # pip's rules for a requirements-file line (pip/_internal/req/constructors.py).
        ("submodules/diff-gaussian-rasterization", "path", None),  # a path separator
        ("./pkg", "path", None),
        ("../sibling", "path", None),
        (".", "path", None),
        ("dist/pkg-1.0-py3-none-any.whl", "path", None),
        ("pkg-1.0.tar.gz", "path", None),  # an archive name: a file to pip, present or not
        ("pkg @ https://example.invalid/pkg-1.0-py3-none-any.whl", "url", "pkg"),
        ("pkg @ file:///opt/wheels/pkg-1.0-py3-none-any.whl", "url", "pkg"),
        ("git+https://example.invalid/x/y.git#egg=Foo_Bar", "url", "foo-bar"),
        ("requests>=2  # why we pin", "requirement", "requests"),
        ("numpy==1.26.4 --hash=sha256:" + "0" * 64, "requirement", "numpy"),
        ("a.b", "requirement", "a-b"),
        ("-e .", "editable", None),
        ("--editable=git+https://example.invalid/x.git#egg=x", "editable", "x"),
        ("--index-url https://example.invalid/simple", "option", None),
        ("--extra-index-url=https://example.invalid/simple", "option", None),
        ("--require-hashes", "option", None),
    ],
)
def test_pip_lines_are_read_as_pip_reads_them(line: str, kind: str, name: str | None) -> None:
    req = parse_pip_line(line, Path("env.yml"))
    assert (req.kind, req.name) == (kind, name)


def test_requirement_file_forms_are_one(tmp_path: Path) -> None:
    (tmp_path / "req.txt").write_text("requests\n")
    spaced = load_spec(write(tmp_path, "dependencies:\n  - pip:\n    - -r req.txt\n"))
    joined = load_spec(write(tmp_path, "dependencies:\n  - pip:\n    - --requirement=req.txt\n"))
    assert joined.pip[0].text == "--requirement req.txt"
    assert spaced.meaning()["pip_files"] != {}
    assert joined.meaning()["pip_files"] == {
        "--requirement req.txt": spaced.meaning()["pip_files"]["-r req.txt"]
    }


@pytest.mark.parametrize("name", ["test env with spaces", "a..b", "team:ml #1", "ünïcode"])
def test_a_name_is_a_label(tmp_path: Path, name: str) -> None:
    spec = load_spec(write(tmp_path, f"name: {name!r}\ndependencies: [numpy]\n"))
    assert spec.name == name
    assert "/" not in path_label(name) and " " not in path_label(name)


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        # A real spec's `ninja=>1.10.2`: conda reads `ninja >1.10.2*`, which matches 1.10.2.
        ("ninja=>1.10.2", "ninja >=1.10.2"),
        ("ninja=<2", "ninja <2"),
        ("ninja=1.2", "ninja 1.2.*"),
    ],
)
def test_equals_then_operator_reads_as_conda_reads(
    tmp_path: Path, text: str, normalized: str
) -> None:
    path = tmp_path / "env.yml"
    path.write_text(f"dependencies: [{text!r}]\n")
    assert [d.normalized for d in load_spec(path).conda] == [normalized]


def test_unknown_keys_are_ignored_with_a_warning_as_conda_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "env.yml"
    path.write_text("category: main\nselectors: {}\ndependencies: [numpy]\n")
    assert load_spec(path).ignored_keys == ("category", "selectors")
    load_spec(path)  # read again: warned once
    err = capsys.readouterr().err
    assert err.count("ignoring unknown key(s) 'category', 'selectors', as conda does") == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("chanels: [x]\ndependencies: [numpy]\n", "'chanels' (did you mean 'channels'?)"),
        ("dependancies: [numpy]\n", "'dependancies' (did you mean 'dependencies'?)"),
    ],
)
def test_a_near_miss_of_a_known_key_is_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "env.yml"
    path.write_text(text)
    with pytest.raises(SpecError, match=re.escape(message)):
        load_spec(path)
