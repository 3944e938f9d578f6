"""Effective channels: envassay against real conda (24.7.1 and 26.7.1 under `.ci/run`).

conda's own answer comes from conda's own code: `conda env create` runs in conda's
interpreter up to the solver, whose constructor (tests/conda_channels_oracle.py) prints
the channels it was handed and exits, so nothing is fetched. envassay's answer is
`envassay spec --json`'s effective channels. Both read the same condarc files and
variables (a throwaway HOME, $CONDARC, CONDA_*), with $CONDA_EXE naming that conda (its
root condarc and built-ins apply). One real create per case class: `conda env create`
and `envassay create` against the local file:// test channel must both make the env.

Deliberate difference pinned here: conda >= 26 hands `nodefaults` to the solver as a
channel name (it fetches `<channel_alias>/nodefaults` and fails); envassay keeps its
documented meaning, no rc channels (README: channels).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from envassay.command import run
from envassay.spec.channels import effective_channels
from envassay.spec.condarc import Sourced, load_condarc
from envassay_testing import LocalChannel, index_channel, make_generic_package, new_channel
from tests.integration.envassay_cli import envassay
from tests.realconda import RealConda

pytestmark = [pytest.mark.channel, pytest.mark.slow]

ORACLE = Path(__file__).resolve().parent.parent / "conda_channels_oracle.py"
BATCH = ORACLE.with_name("conda_channels_batch.py")
CLOSED = "http://127.0.0.1:9"  # the discard port: a fetch that slips through goes nowhere


@pytest.fixture(scope="session")
def pkgs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("conda-pkgs")


class Case:
    """A project, a HOME and the variables both tools see."""

    def __init__(self, root: Path, conda: RealConda, pkgs: Path, channel: LocalChannel) -> None:
        self.root, self.conda, self.channel = root, conda, channel
        (root / "home").mkdir(parents=True)
        (root / "pyproject.toml").write_text("[tool.envassay]\n")
        self.env = conda.environ(os.environ, pkgs)
        self.env.pop("CONDARC", None)
        self.env.pop("CONDA_CHANNELS", None)
        self.env["HOME"] = str(root / "home")
        self.env["ENVASSAY_HOME"] = str(root / "store")
        self.env.pop("XDG_CONFIG_HOME", None)

    def write(self, name: str, text: str) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.replace("CHANNEL", self.channel.url))
        return path

    def conda_channels(self, spec: Path) -> list[str]:
        python = self.conda.path.parent / "python"
        argv = [python, ORACLE, "env", "create", "-p", self.root / "oracle-prefix", "-f", spec]
        result = run(argv, env=self.env, cwd=self.root, timeout=300)
        for line in result.stdout.splitlines():
            if line.startswith("ORACLE "):
                return list(json.loads(line[len("ORACLE ") :])["urls"])
        raise AssertionError(f"conda reached no solver: {result.describe()}")

    def envassay_channels(self, spec: Path) -> list[str]:
        result = envassay("spec", "--json", spec, env=self.env, cwd=self.root)
        assert result.returncode == 0, result.stdout + result.stderr
        data = json.loads(result.stdout)
        assert data["channels_error"] is None, data["channels_error"]
        return [c["url"] for c in data["effective_channels"]]

    def both_create(self, spec: Path) -> None:
        """A real create by each: conda env create, and envassay create (rattler)."""
        prefix = self.root / f"conda-{spec.stem}"
        argv = [self.conda.path, "env", "create", "-p", prefix, "-f", spec]
        made = run(argv, env=self.env, cwd=self.root, timeout=600)
        assert made.ok and (prefix / "conda-meta").is_dir(), made.describe()
        mine = self.root / f"envassay-{spec.stem}"
        result = envassay("create", spec, "--prefix", mine, env=self.env, cwd=self.root)
        assert result.returncode == 0, result.stdout + result.stderr
        assert (mine / "conda-meta").is_dir()


@pytest.fixture
def case(tmp_path: Path, conda: RealConda, pkgs_dir: Path, test_channel: LocalChannel) -> Case:
    return Case(tmp_path, conda, pkgs_dir, test_channel)


SPEC = "name: {name}\n{channels}dependencies: [python=3.11, six]\n"


def spec(case: Case, name: str, channels: str) -> Path:
    return case.write(f"envs/{name}.yml", SPEC.format(name=name, channels=channels))


def agree(case: Case, path: Path) -> list[str]:
    theirs, mine = case.conda_channels(path), case.envassay_channels(path)
    assert mine == theirs, f"conda {case.conda.version}: {theirs}; envassay: {mine}"
    return mine


def test_defaults_with_default_channels_set(case: Case) -> None:
    rc = case.write("rc/condarc", "default_channels: [CHANNEL]\nchannels: []\n")
    case.env["CONDARC"] = str(rc)
    path = spec(case, "defaults", "channels: [defaults]\n")
    assert agree(case, path) == [case.channel.url]
    case.both_create(path)


def test_defaults_without_default_channels_is_conda_builtin(case: Case) -> None:
    case.env["CONDA_CHANNEL_ALIAS"] = CLOSED
    path = spec(case, "builtin", "channels: [CHANNEL, defaults]\n")
    urls = agree(case, path)
    assert urls[0] == case.channel.url and len(urls) == 3  # + pkgs/main, pkgs/r


def test_default_channels_from_the_environment(case: Case) -> None:
    case.env["CONDA_DEFAULT_CHANNELS"] = case.channel.url
    case.env["CONDA_CHANNELS"] = "defaults"
    path = spec(case, "envvars", "")
    assert agree(case, path) == [case.channel.url]


def test_no_channels_key_gets_the_rc_channels(case: Case) -> None:
    case.write("home/.condarc", "channels: [CHANNEL]\n")
    path = spec(case, "nokey", "")
    assert agree(case, path) == [case.channel.url]
    case.both_create(path)


def test_rc_channels_are_appended_without_nodefaults(case: Case) -> None:
    case.write("home/.config/conda/condarc", f"channels: [{CLOSED}/extra]\n")
    path = spec(case, "appended", "channels: [CHANNEL]\n")
    assert agree(case, path) == [case.channel.url, f"{CLOSED}/extra"]


def test_nodefaults(case: Case) -> None:
    case.env["CONDA_CHANNEL_ALIAS"] = CLOSED
    case.write("home/.condarc", f"channels: [{CLOSED}/extra]\n")
    path = spec(case, "nodefaults", "channels: [CHANNEL, nodefaults]\n")
    mine, theirs = case.envassay_channels(path), case.conda_channels(path)
    assert mine == [case.channel.url]
    if case.conda.major >= 26:  # the deliberate difference (module docstring)
        assert theirs == [case.channel.url, f"{CLOSED}/nodefaults", f"{CLOSED}/extra"]
        argv = [case.conda.path, "env", "create", "-p", case.root / "c", "-f", path]
        made = run(argv, env=case.env, cwd=case.root, timeout=600)
        # it fetches `nodefaults` and the rc channel (whichever fails first is named)
        assert not made.ok and "CondaHTTPError" in made.stdout + made.stderr, made.describe()
        mine = envassay("create", path, "--prefix", case.root / "e", env=case.env, cwd=case.root)
        assert mine.returncode == 0, mine.stdout + mine.stderr
    else:
        assert theirs == mine
        case.both_create(path)


def test_channel_alias(case: Case) -> None:
    parent, name = case.channel.url.rsplit("/", 1)
    case.write("rc/.condarc", f"channel_alias: {parent}\nchannels: []\n")
    case.env["CONDARC"] = str(case.root / "rc/.condarc")
    path = spec(case, "alias", f"channels: [{name}]\n")
    assert agree(case, path) == [case.channel.url]
    case.both_create(path)


def test_custom_channels(case: Case) -> None:
    parent, name = case.channel.url.rsplit("/", 1)
    case.env["CONDA_CHANNEL_ALIAS"] = CLOSED
    case.write("home/.condarc", f"custom_channels:\n  {name}: {parent}\nchannels: []\n")
    path = spec(case, "custom", f"channels: [{name}]\n")
    assert agree(case, path) == [case.channel.url]
    case.both_create(path)


def test_custom_multichannels(case: Case) -> None:
    """A custom multichannel is its members; `defaults` among them replaces
    default_channels from conda 26 on (before, the reserved name kept them)."""
    case.write(
        "home/.condarc",
        f"custom_multichannels:\n  both: [CHANNEL, {CLOSED}/second]\n"
        f"  defaults: [{CLOSED}/multi]\ndefault_channels: [CHANNEL]\nchannels: []\n",
    )
    urls = agree(case, spec(case, "multi", "channels: [both, defaults]\n"))
    defaults = f"{CLOSED}/multi" if case.conda.major >= 26 else case.channel.url
    assert urls == list(dict.fromkeys([case.channel.url, f"{CLOSED}/second", defaults]))


@pytest.mark.parametrize(
    ("filename", "read"),
    [("condarc", True), (".condarc", True), ("rc.yaml", True), ("my.condarc", False)],
)
def test_condarc_is_read_only_under_conda_s_names(case: Case, filename: str, read: bool) -> None:
    case.env["CONDA_CHANNEL_ALIAS"] = CLOSED
    rc = case.write(f"rc/{filename}", f"channels: [{CLOSED}/from-rc]\n")
    case.env["CONDARC"] = str(rc)
    urls = agree(case, spec(case, "condarc2", "channels: [CHANNEL]\n"))
    assert (f"{CLOSED}/from-rc" in urls) is read


@pytest.fixture(scope="session")
def two_channels(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """`pri 1.0` in the first channel; `pri 2.0` and `needsnew` (needs `pri >=2`) in
    the second."""
    root = tmp_path_factory.mktemp("priority")
    first, second = new_channel(root / "first"), new_channel(root / "second")
    make_generic_package(first, "pri", "1.0")
    make_generic_package(second, "pri", "2.0")
    make_generic_package(second, "needsnew", "1.0", depends=["pri >=2"])
    index_channel(first)
    index_channel(second)
    return first, second


# (dependencies, channel_priority, conda creates, envassay creates). rattler's strict
# holds each match spec to the highest channel with a *matching* package: `pri>=2` alone
# comes from the second channel (conda's strict refuses: the first has the name), while
# `pri` + `needsnew` holds `pri` to the first (conda's flexible takes 2.0 from the second).
PRIORITY_CASES = [
    ("['pri>=2']", "flexible", True, True),
    ("['pri>=2']", "strict", False, True),
    ("['pri>=2']", "disabled", True, True),
    ("[pri, needsnew]", "flexible", True, False),
    ("[pri, needsnew]", "strict", False, False),
    ("[pri, needsnew]", "disabled", True, True),
]


@pytest.mark.parametrize(("deps", "priority", "conda_creates", "envassay_creates"), PRIORITY_CASES)
def test_channel_priority(
    case: Case,
    two_channels: tuple[Path, Path],
    deps: str,
    priority: str,
    conda_creates: bool,
    envassay_creates: bool,
) -> None:
    """What conda and envassay make of each channel_priority (README: channels, where the
    two differences are listed)."""
    first, second = (p.as_uri() for p in two_channels)
    rc = case.write("rc/condarc", f"channels: []\nchannel_priority: {priority}\n")
    case.env["CONDARC"] = str(rc)
    path = case.write(
        "envs/pri.yml", f"name: pri\nchannels: [{first}, {second}]\ndependencies: {deps}\n"
    )
    assert agree(case, path) == [first, second]
    prefix = case.root / "conda-pri"
    argv = [case.conda.path, "env", "create", "-p", prefix, "-f", path]
    made = run(argv, env=case.env, cwd=case.root, timeout=600)
    assert made.ok is conda_creates, made.describe()
    mine = case.root / "envassay-pri"
    result = envassay("create", path, "--prefix", mine, env=case.env, cwd=case.root)
    assert (result.returncode == 0) is envassay_creates, result.stdout + result.stderr
    if not envassay_creates:
        last = result.stderr.strip().splitlines()[-1]
        assert result.returncode == 2 and "cannot solve" in last, last
        assert ("conda may solve this" in last) is (priority == "flexible"), last
    locked = envassay("lock", path, env=case.env, cwd=case.root)  # the same solve, for a lock
    assert (locked.returncode == 0) is envassay_creates, locked.stdout + locked.stderr
    if not envassay_creates:
        last = locked.stderr.strip().splitlines()[-1]
        assert ("conda may solve this" in last) is (priority == "flexible"), last


def test_file_mode_keeps_only_the_spec_s_channels(case: Case) -> None:
    """`[tool.envassay] channels = "file"`: what conda adds from the rc is left out."""
    case.write("home/.condarc", f"channels: [{CLOSED}/extra]\n")
    path = spec(case, "filemode", "channels: [CHANNEL]\n")
    assert case.conda_channels(path) == [case.channel.url, f"{CLOSED}/extra"]
    case.write("pyproject.toml", '[tool.envassay]\nchannels = "file"\n')
    assert case.envassay_channels(path) == [case.channel.url]


def test_spec_says_where_each_channel_came_from(case: Case) -> None:
    rc = case.write("rc/condarc", "default_channels: [CHANNEL]\nchannels: [defaults]\n")
    case.env["CONDARC"] = str(rc)
    path = spec(case, "sources", "")
    shown = envassay("spec", path, env=case.env, cwd=case.root)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    [line] = [x for x in shown.stdout.splitlines() if x.strip().startswith(case.channel.url)]
    assert f"defaults: {rc} (channels); {rc} (default_channels)" in line, line


# Generated settings and channel lists, evaluated by conda's own context and channel
# model in one process per batch (tests/conda_channels_batch.py) and by envassay.
HOSTS = st.sampled_from(
    ["http://alias.local", "https://h.local/base", "file:///srv/conda", "http://alias.local/s/"]
)
NAMES = st.sampled_from(
    ["conda-forge", "team", "team/sub", "a/b", "a/b/c", "pkgs/main", "pkgs/pro", "both", "team/"]
)
CHANNELS = st.one_of(
    NAMES, st.just("defaults"), st.builds("{}/x/".format, HOSTS), st.builds("{}y".format, HOSTS)
)
MEMBERS = st.lists(st.one_of(NAMES.filter(lambda n: n != "both"), HOSTS), min_size=1, max_size=2)
RC = st.fixed_dictionaries(
    {},
    optional={
        "channel_alias": HOSTS,
        "channels": st.lists(CHANNELS, max_size=3),
        "default_channels": st.lists(st.one_of(NAMES, st.builds("{}/d".format, HOSTS)), max_size=3),
        "custom_channels": st.dictionaries(
            st.sampled_from(["team", "a", "a/b"]), HOSTS, max_size=2
        ),
        "custom_multichannels": st.dictionaries(st.just("both"), MEMBERS, max_size=1),
    },
)
CASES = st.lists(
    st.tuples(RC, st.lists(st.one_of(CHANNELS, st.just("nodefaults")), max_size=4)),
    min_size=40,
    max_size=40,
)


@settings(
    max_examples=5,
    deadline=None,
    phases=[Phase.generate],  # each example is a conda process: no shrinking
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(cases=CASES)
def test_generated_settings_expand_as_conda_expands_them(
    case: Case, cases: list[tuple[dict[str, object], list[str]]]
) -> None:
    """40 generated (condarc, channels) pairs per example, 5 examples per conda (200)."""
    if case.conda.major >= 26:  # conda 26 reads `nodefaults` as a channel (tested above)
        cases = [(rc, [c for c in chans if c != "nodefaults"]) for rc, chans in cases]
    batch = []
    for i, (rc, channels) in enumerate(cases):
        path = case.root / "batch" / str(i) / "condarc"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(rc))
        batch.append({"rc": str(path), "channels": channels})
    source = case.root / "batch" / "cases.json"
    source.write_text(json.dumps(batch))
    python = case.conda.path.parent / "python"
    result = run([python, BATCH, source], env=case.env, cwd=case.root, timeout=300)
    assert result.ok, result.describe()
    for item, (rc, channels), expected in zip(batch, cases, json.loads(result.stdout), strict=True):
        loaded = load_condarc({**case.env, "CONDARC": item["rc"]})
        written = [Sourced(c, "spec") for c in channels if c != "nodefaults"]
        mine = effective_channels(written, "nodefaults" in channels, loaded)
        assert [c.url for c in mine] == expected, json.dumps([rc, channels])
