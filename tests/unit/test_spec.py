"""EnvSpec against real parsing: every MatchSpec form, pip line kinds, hashing, bad input."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from envassay.errors import SpecError
from envassay.spec.environment import load_spec, parse_pip_line, requirement_lines
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
        ("dependencies:\n  - 3.11\n", "must be a string"),
        ("dependencies: [numpy]\ndependencies: [scipy]\n", "duplicate key"),
        ("channels: [file:///nonexistent/channel]\ndependencies: [numpy]\n", "does not exist"),
        ("channels: ['bad channel!']\ndependencies: [numpy]\n", "neither a channel name"),
        ("dependencies: !!python/object:os.system [x]\n", "not allowed"),
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
        ("names: x\ndependencies: [numpy]\n", "'names' (did you mean 'name'?)"),
    ],
)
def test_a_near_miss_of_a_known_key_is_ignored_with_a_guess(
    tmp_path: Path, text: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """conda warns and ignores it; so does envassay, naming the key it was probably meant
    to be."""
    path = tmp_path / "env.yml"
    path.write_text(text)
    spec = load_spec(path)
    assert spec.channels == () and spec.name == "env"
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "text",
    [
        "name: x\n",  # no dependencies
        "dependencies: []\n",
        "dependencies:\n",
        "variables: {A: b}\ndependencies: []\n",
    ],
)
def test_no_or_empty_dependencies_is_an_empty_env(tmp_path: Path, text: str) -> None:
    spec = load_spec(write(tmp_path, text))
    assert spec.conda == () and spec.pip == () and spec.solve_specs == []


@pytest.mark.parametrize(
    "prefix",
    [
        "C:\\Users\\me\\miniconda3\\envs\\x",
        "~/anaconda3/envs/x",
        "$HOME/.conda/envs/x",
        "your_path_to/anaconda3/envs/x",
        "/opt/../env",
    ],
)
def test_any_prefix_is_read_and_never_used(tmp_path: Path, prefix: str) -> None:
    path = write(tmp_path, f"dependencies: [numpy]\nprefix: '{prefix}'\n")
    assert load_spec(path).prefix == prefix


@pytest.mark.parametrize("name", ["/scratch/envs/x", "C:\\envs\\x", "../x"])
def test_a_name_holding_a_path_is_a_label(tmp_path: Path, name: str) -> None:
    """`conda env export` writes an env's path as its name when it lives elsewhere."""
    spec = load_spec(write(tmp_path, f"name: '{name}'\ndependencies: [numpy]\n"))
    assert spec.name == name
    assert "/" not in path_label(spec.name) and "\\" not in path_label(spec.name)


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("tensorflow=2.15", "not PEP 508"),
        ("requests>>2", "not PEP 508"),
        ("--weird-flag", "not an option of pip's requirements files"),
    ],
)
def test_a_pip_line_pip_will_refuse_is_read_and_left_to_pip(
    tmp_path: Path, line: str, why: str, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = load_spec(write(tmp_path, f"dependencies:\n  - pip:\n    - '{line}'\n"))
    [req] = spec.pip
    assert (req.text, req.kind, req.line) == (line, "pip-decides", 3)
    assert why in req.specifier
    assert "pip will refuse" in capsys.readouterr().err


def test_pip_options_after_a_requirement_belong_to_it(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, "dependencies:\n  - pip:\n    - dipy --only-binary dipy\n"))
    [req] = spec.pip
    assert (req.kind, req.name, req.text) == ("requirement", "dipy", "dipy --only-binary dipy")


def test_a_missing_requirements_file_is_read_and_left_to_pip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = load_spec(write(tmp_path, "dependencies:\n  - pip:\n    - -r file:requirements.txt\n"))
    [req] = spec.pip
    assert req.kind == "requirements-file"
    assert spec.meaning()["pip_files"] == {req.text: None}
    assert "pip will not find the requirements file" in capsys.readouterr().err


def test_comment_and_blank_pip_lines_are_skipped_as_pip_skips_them(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, "dependencies:\n  - pip:\n    - '# a note'\n    - six\n"))
    assert [r.text for r in spec.pip] == ["six"]


def test_an_empty_pip_section_still_adds_pip_as_conda_does(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, "dependencies:\n  - numpy\n  - pip:\n"))
    assert spec.solve_specs == ["numpy", "pip"]


def test_two_pip_sections_are_refused(tmp_path: Path) -> None:
    """conda's dict.update keeps only the last: the first one's packages would vanish."""
    text = "dependencies:\n  - pip: [six]\n  - numpy\n  - pip: [attrs]\n"
    with pytest.raises(SpecError, match="second `pip:` section"):
        load_spec(write(tmp_path, text))


def test_unknown_installer_sections_are_read_and_installed_from_by_nobody(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """conda 26 reads `- npm: [...]` and micromamba's `- sel(linux): gdb` and installs
    nothing from them; envassay reads them, says so, and solves the rest."""
    text = "dependencies:\n  - numpy\n  - npm: [left-pad]\n  - sel(linux): gdb\n"
    spec = load_spec(write(tmp_path, text))
    assert spec.other_installers == (("npm", 3), ("sel(linux)", 4))
    assert spec.solve_specs == ["numpy"]
    assert (
        "env.yml:3: nothing is installed from the `npm:`, `sel(linux):`" in capsys.readouterr().err
    )


@pytest.mark.parametrize(
    ("text", "name", "version"),
    [
        ("nbconvert[execute]!=6.0.0,!=6.0.1", "nbconvert", "!=6.0.0,!=6.0.1"),
        ("black[jupyter]", "black", None),
        ("black[jupyter]>=22", "black", ">=22"),
    ],
)
def test_a_bracket_without_pairs_is_dropped_as_conda_drops_it(
    tmp_path: Path, text: str, name: str, version: str | None
) -> None:
    from rattler import MatchSpec

    [dep] = load_spec(write(tmp_path, f"dependencies: ['{text}']\n")).conda
    spec = MatchSpec(dep.normalized)
    assert dep.name == name
    assert (str(spec.version) if spec.version else None) == version


def test_a_utf16_file_is_read_as_conda_reads_it(tmp_path: Path) -> None:
    """PowerShell's `conda env export > environment.yml` writes UTF-16 with a BOM."""
    path = tmp_path / "env.yml"
    path.write_bytes("name: x\r\ndependencies:\r\n  - numpy=1.26\r\n".encode("utf-16"))
    spec = load_spec(path)
    assert (spec.name, [d.name for d in spec.conda]) == ("x", ["numpy"])


def test_a_file_url_requirements_file_is_the_local_file(tmp_path: Path) -> None:
    """pip reads `-r file:requirements.txt` as the path; conda's own test spec uses it."""
    (tmp_path / "requirements.txt").write_text("six\n")
    spec = load_spec(write(tmp_path, "dependencies:\n  - pip:\n    - -r file:requirements.txt\n"))
    [req] = spec.pip
    assert spec.meaning()["pip_files"][req.text] is not None
    assert requirement_lines(spec) == [f"-r {tmp_path / 'requirements.txt'}"]
