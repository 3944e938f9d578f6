"""Generated environment files read by envassay and by conda 26.7.1's own reader.

Hypothesis draws spec variants (keys, near-miss keys, channel forms, MatchSpec forms with
brackets and channels, pip lines with options, URLs, paths and `-r` files, `prefix:`
values, no or empty dependencies, unknown installer sections, YAML that conda's loader
accepts: flow and block style, `---`, comments, CRLF, a byte order mark, UTF-16). All
drawn files are read by one conda process (batched: one interpreter start, not one per
file), and for each the two readers must agree: both refuse, or both read the same
conda dependencies, pip lines, channels, variables, name, prefix and installer sections
(compared as in test_spec_vs_conda). The deliberate differences listed in README are
not drawn, or are drawn and expected (DELIBERATE below).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envassay.command import run
from tests.anchors.test_spec_vs_conda import HERE, REFUSALS, compare, conda, ours  # noqa: F401
from tests.realconda import RealConda

EXAMPLES = 400

names = st.sampled_from(
    ["numpy", "scipy", "python", "pytorch-cuda", "ca-certificates", "r-base", "_libgcc_mutex"]
)
versions = st.sampled_from(["1.26", "1.26.4", "2022.07.19", "3.000", "1.0rc1", "2.*", "0.12.01"])
builds = st.sampled_from(["py311h1234567_0", "h77eed37_0", "cuda*", "0"])
channel_prefixes = st.sampled_from(
    ["", "conda-forge::", "pytorch::", "bioconda::", "conda-forge/linux-64::"]
)


@st.composite
def matchspecs(draw: st.DrawFn) -> str:
    name = draw(names)
    version = draw(versions)
    form = draw(st.integers(0, 11))
    body = [
        name,
        f"{name}={version}",
        f"{name}=={version}",
        f"{name}>={version},<3",
        f"{name} {version}",
        f"{name}={version}={draw(builds)}",
        f"{name} {version} {draw(builds)}",
        f"{name}[version='>={version}']",
        f"{name}[build={draw(builds)}]",
        f"{name}[extra]",  # a pip-style extra: conda drops the bracket
        f"{name}[extra]!={version}",
        f"{name}=>{version.rstrip('*.')}",
    ][form]
    return draw(channel_prefixes) + body


pip_lines = st.one_of(
    st.sampled_from(
        [
            "requests",
            "requests>=2.31",
            "requests[socks]==2.31.0; python_version >= '3.8'",
            "tensorflow=2.15",  # pip refuses it at create; conda and envassay read it
            "dipy --only-binary dipy",
            "six==1.16.0 --hash=sha256:" + "0" * 64,
            "-r requirements.txt",
            "-r file:requirements.txt",
            "--requirement=missing.txt",
            "-e .",
            "-e git+https://example.org/a/b.git#egg=b",
            "git+https://example.org/a/b.git@v1#egg=b",
            "https://example.org/pkg-1.0-py3-none-any.whl",
            "pkg @ https://example.org/pkg-1.0.tar.gz",
            "./local/path",
            "--index-url https://example.org/simple",
            "--extra-index-url=https://example.org/simple",
            "--find-links ./wheels",
            "--pre",
            "--install-option=--prefix=/",
            "numpy  # a comment",
            "# only a comment",
        ]
    ),
)

channels = st.sampled_from(
    [
        "conda-forge",
        "defaults",
        "nodefaults",
        "pytorch",
        "conda-forge/label/dev",
        "https://example.org/channel",
        "https://example.org/channel/",
        "http://10.0.0.1:8080/conda/",
    ]
)

prefixes = st.sampled_from(
    [
        "/opt/conda/envs/x",
        "~/anaconda3/envs/x",
        "C:\\Users\\me\\miniconda3\\envs\\x",
        "$HOME/.conda/envs/x",
        "relative/envs/x",
    ]
)

env_names = st.one_of(
    st.sampled_from(["x", "my env", "/scratch/envs/x", "C:\\envs\\x", "ml-2024"]),
    st.from_regex(r"[A-Za-z][A-Za-z0-9_.-]{0,12}", fullmatch=True),
)


@st.composite
def dependencies(draw: st.DrawFn) -> Any:
    shape = draw(st.sampled_from(["list", "list", "list", "empty", "null"]))
    if shape == "empty":
        return []
    if shape == "null":
        return None
    items: list[Any] = draw(st.lists(matchspecs(), max_size=6))
    if draw(st.booleans()):
        items.append({"pip": draw(st.lists(pip_lines, max_size=5))})
    if draw(st.integers(0, 4)) == 0:
        items.append(draw(st.sampled_from([{"npm": ["left-pad"]}, {"sel(linux)": "gdb"}])))
    return items


@st.composite
def spec_data(draw: st.DrawFn) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if draw(st.booleans()):
        data["name"] = draw(env_names)
    if draw(st.booleans()):
        data["channels"] = draw(st.lists(channels, max_size=4))
    if draw(st.integers(0, 5)) > 0:
        data["dependencies"] = draw(dependencies())
    if draw(st.integers(0, 3)) == 0:
        data["variables"] = draw(
            st.dictionaries(
                st.from_regex(r"[A-Z][A-Z0-9_]{0,8}", fullmatch=True),
                st.sampled_from(["1", "a b", "/opt/x", "yes"]),
                max_size=3,
            )
        )
    if draw(st.integers(0, 3)) == 0:
        data["prefix"] = draw(prefixes)
    for key in draw(st.lists(st.sampled_from(["names", "chanels", "category", "x"]), max_size=2)):
        data[key] = "ignored"
    return data


# YAML conda's loader (ruamel, YAML 1.2, round-trip) reads, written by hand: 1.1-only
# booleans (`yes`, `on` are strings in 1.2), anchors, merge keys, directives, comments.
# Files conda reads and envassay refuses on purpose (README, spec reading): the error
# fragment each must give. Drawn below, so that each stays a refusal and stays listed.
DELIBERATE = {
    "dependencies:\n  override:\n    - make\n": "`dependencies` must be a list",
    "dependencies: numpy\n": "`dependencies` must be a list",
    "dependencies:\n  - pip: [six]\n  - pip: [attrs]\n": "second `pip:` section",
    "dependencies:\n  - numpy\n  - conda: [scipy]\n": "a `conda:` mapping",
    "platforms: [linux-64, wasm-99]\ndependencies: [numpy]\n": "unknown platform",
    "variables: {my-var: x}\ndependencies: [numpy]\n": "not an environment variable name",
}

RAW_YAML = [
    "name: yes\ndependencies:\n  - numpy\n",
    "dependencies:\n  - on\n  - numpy\n",
    "name: off\ndependencies: [y, n]\n",
    "base: &base\n  - numpy\ndependencies: *base\n",
    "variables:\n  <<: {A: '1'}\n  B: '2'\ndependencies: [numpy]\n",
    "dependencies:\n- numpy\n- pip:\n  - six\n",
    "dependencies: [numpy, {pip: [six]}]\n",
    "name: x\ndependencies:\n  - numpy\n  # trailing comment\n",
    "%YAML 1.2\n---\ndependencies: [numpy]\n",
    "dependencies:\n  - numpy=1.0  # pinned\n",
    "dependencies:\n  - 'numpy >=1.0'\n  - \"scipy\"\n",
    "dependencies:\n  - python=3.10\n  - 3.11\n",
    "dependencies:\n  - numpy\n...\n",
    "dependencies:\n  - pip:\n    - six\n  - pip\n",
    "dependencies:\n  - pip: []\n",
    "dependencies:\n  - pip:\n",
    "name:\ndependencies: [numpy]\n",
    "variables:\ndependencies: [numpy]\n",
    "variables: {A: 1, B: 1.5, C: true, D: null, E: ''}\ndependencies: [numpy]\n",
    "dependencies: [numpy]\nprefix: 42\n",
    "name: 2024\ndependencies: [numpy]\n",
]


@st.composite
def spec_files(draw: st.DrawFn) -> bytes:
    """One spec as bytes, in one of the YAML forms conda's loader accepts."""
    if draw(st.integers(0, 5)) == 0:
        return draw(st.sampled_from(RAW_YAML + sorted(DELIBERATE))).encode()
    data = draw(spec_data())
    text = yaml.safe_dump(data, default_flow_style=draw(st.sampled_from([False, None])))
    if draw(st.booleans()):
        text = "# a comment\n---\n" + text
    if draw(st.integers(0, 4)) == 0:
        text = text.replace("\n", "\r\n")
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8", "utf-8-sig", "utf-16"]))
    return text.encode(encoding)


@pytest.mark.timeout(600)
def test_generated_specs_read_as_conda_reads(conda: RealConda, tmp_path: Path) -> None:  # noqa: F811
    if conda.major < 26:
        # conda 24 fails (TypeError) on `dependencies:` with no value, which conda 26 reads
        # as an empty env; envassay follows the newer reader. The corpus runs on both.
        pytest.skip(f"compared with conda 26's reader; this is conda {conda.version}")
    drawn: list[bytes] = []

    @settings(
        max_examples=EXAMPLES,
        database=None,
        derandomize=True,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(spec_files())
    def draw(raw: bytes) -> None:
        drawn.append(raw)

    draw()
    drawn += [text.encode() for text in RAW_YAML + sorted(DELIBERATE)]  # each at least once
    paths = []
    for i, raw in enumerate(dict.fromkeys(drawn)):
        folder = tmp_path / f"{i:04d}"
        folder.mkdir()
        (folder / "requirements.txt").write_text("six\n")
        path = folder / "environment.yml"
        path.write_bytes(raw)
        paths.append(path)
    assert len(paths) >= EXAMPLES // 2, len(paths)  # distinct files, all read in one run
    views = {str(p): ours(p) for p in paths}
    given_file = tmp_path / "ours.json"
    given_file.write_text(json.dumps(views, default=str))
    out = tmp_path / "conda.json"
    result = run(
        [conda.path.parent / "python", HERE / "conda_reader.py", out, given_file], timeout=300
    )
    assert result.ok, result.describe()
    theirs = json.loads(out.read_text())

    problems: list[tuple[int, str]] = []
    for path in paths:
        mine, conda_view = views[str(path)], theirs[str(path)]
        raw = path.read_bytes()
        text = f"{path.parent.name} {raw[:400]!r}"
        if raw.decode(errors="replace") in DELIBERATE and not conda_view["conda_ok"]:
            problems.append((len(raw), f"{text}: listed as read by conda, but conda refuses"))
        if not conda_view["conda_ok"]:
            if mine is not None:
                problems.append(
                    (len(raw), f"{text}: conda refuses ({conda_view['error']}), envassay reads")
                )
        elif mine is None:
            error = REFUSALS[str(path)]
            expected = DELIBERATE.get(raw.decode(errors="replace"))
            if expected is None or expected not in error:
                problems.append((len(raw), f"{text}: envassay refuses: {error}"))
        elif raw.decode(errors="replace") in DELIBERATE:
            problems.append((len(raw), f"{text}: listed as refused, but envassay reads it"))
        else:
            problems += [(len(raw), f"{text}: {p}") for p in compare(mine, conda_view)]
    problems.sort()
    assert not problems, f"{len(problems)} disagreements, smallest first:\n" + "\n".join(
        p for _n, p in problems[:20]
    )
