"""Container images without an engine: options, the content hash, the build context,
the image checks as pure functions, and the Docker helpers that need no daemon."""

from __future__ import annotations

import dataclasses
import json
import struct
import zipfile
from pathlib import Path

import pytest
import yaml

from envassay.checks.image import image_checks
from envassay.command import CommandResult
from envassay.docker import ImageInfo, _build_error, _Demux, connect, engine_address
from envassay.errors import ConfigError, UserError
from envassay.spec.config import Config, EnvSettings, parse_config
from envassay.spec.environment import EnvSpec, load_spec
from envassay.targets.image import (
    DEFAULT_BUILDER_IMAGE,
    DEFAULT_RUNTIME_IMAGE,
    ImageFacts,
    ImageOptions,
    PlainRun,
    assemble_context,
    creator_for,
    gather_facts,
    plan_image,
    repository_name,
    resolve_options,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def channel(tmp_path: Path) -> Path:
    """A local channel directory (empty repodata is enough: nothing is solved here)."""
    path = tmp_path / "chan"
    for subdir in ("noarch", "linux-64"):
        (path / subdir).mkdir(parents=True)
        (path / subdir / "repodata.json").write_text(json.dumps({"packages": {}}))
    return path


def write_spec(tmp_path: Path, channel: Path, body: str, name: str = "demo") -> EnvSpec:
    (tmp_path / "envs").mkdir(exist_ok=True)
    path = tmp_path / "envs" / f"{name}.yml"
    path.write_text(f"name: {name}\nchannels: [{channel.as_uri()}]\n{body}")
    return load_spec(path)


DEPS = "dependencies:\n  - python=3.11\n  - numpy\n"


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize(
    ("image", "creator"),
    [
        ("continuumio/miniconda3:24.7.1-0", "conda"),
        ("condaforge/miniforge3:24.3.0-0", "mamba"),
        ("mambaorg/micromamba:1.5.8", "micromamba"),
        ("python:3.12-slim", "envassay"),
        ("envassay-test/bookworm-python:abc", "envassay"),
    ],
)
def test_creator_follows_the_builder_image(image: str, creator: str) -> None:
    assert creator_for(image) == creator


def test_options_command_line_over_env_settings_over_defaults() -> None:
    assert resolve_options(EnvSettings()) == ImageOptions(
        DEFAULT_BUILDER_IMAGE, DEFAULT_RUNTIME_IMAGE, "conda"
    )
    settings = EnvSettings(builder_image="python:3.12", runtime_image=None)
    chosen = resolve_options(settings)
    # envassay creates it; the env may use the builder's libraries, so it also runs there.
    assert (chosen.creator, chosen.runtime_image) == ("envassay", "python:3.12")
    cli = resolve_options(settings, builder_image="mambaorg/micromamba:2", runtime_image="r:1")
    assert (cli.builder_image, cli.runtime_image, cli.creator) == (
        "mambaorg/micromamba:2",
        "r:1",
        "micromamba",
    )
    with pytest.raises(UserError, match="creator"):
        resolve_options(settings, creator="pip")


def test_repository_names_are_valid_docker_names() -> None:
    assert repository_name("My_Env+cuda") == "my_env-cuda"
    assert repository_name("...") == "env"


def test_config_targets() -> None:
    config = parse_config({"targets": ["native", "docker"]}, root=Path("/p"))
    assert config.targets == ("native", "docker")
    assert parse_config({}, root=Path("/p")).targets == ("native",)
    with pytest.raises(ConfigError, match="targets"):
        parse_config({"targets": ["k8s"]}, root=Path("/p"))


# --------------------------------------------------------------------------- content hash


def test_tag_hash_follows_meaning_and_build_inputs_not_formatting(
    tmp_path: Path, channel: Path
) -> None:
    config = Config(root=tmp_path)
    options = ImageOptions("b:1", "r:1", "conda")
    base = plan_image(write_spec(tmp_path, channel, DEPS), config, options, "linux-64")
    assert base.ref == f"envassay/demo:{base.digest[:16]}"

    reordered = "# a comment\ndependencies:\n  - numpy\n  - python=3.11\n"
    same = plan_image(write_spec(tmp_path, channel, reordered), config, options, "linux-64")
    assert same.digest == base.digest

    spec = write_spec(tmp_path, channel, DEPS)
    others = [
        plan_image(spec, config, ImageOptions("b:2", "r:1", "conda"), "linux-64"),
        plan_image(spec, config, ImageOptions("b:1", "r:2", "conda"), "linux-64"),
        plan_image(spec, config, ImageOptions("b:1", "r:1", "mamba"), "linux-64"),
        plan_image(spec, config, options, "linux-aarch64"),
        plan_image(write_spec(tmp_path, channel, DEPS + "  - six\n"), config, options, "linux-64"),
    ]
    assert len({p.digest for p in others} | {base.digest}) == len(others) + 1

    # A rebuilt local channel can solve differently: its repodata is part of the hash.
    (channel / "noarch" / "repodata.json").write_text(json.dumps({"packages": {"x": {}}}))
    assert plan_image(spec, config, options, "linux-64").digest != base.digest


# --------------------------------------------------------------------------- context


def test_context_carries_spec_channel_and_local_pip_paths(tmp_path: Path, channel: Path) -> None:
    wheels = tmp_path / "envs" / "wheels"
    wheels.mkdir(parents=True)
    (wheels / "tool-1.0-py3-none-any.whl").write_bytes(b"wheel")
    body = (
        "prefix: /somewhere/else\n"
        + DEPS
        + "  - pip:\n    - --no-index\n    - --find-links ./wheels\n    - tool==1.0\n"
    )
    spec = write_spec(tmp_path, channel, body)
    plan = plan_image(spec, Config(root=tmp_path), ImageOptions("b", "r", "conda"), "linux-64")
    context = tmp_path / "ctx"
    context.mkdir()
    args = assemble_context(plan, context, tmp_path / "wheelcache")

    for name in ("Dockerfile", "Dockerfile.buildkit"):
        assert (context / name).read_text() == (ROOT / "docker" / name).read_text()
    assert (context / ".dockerignore").is_file()
    assert (context / "envassay" / "finish.py").is_file()
    written = yaml.safe_load((context / "envassay" / "env" / "environment.yml").read_text())
    assert written["name"] == "demo" and "prefix" not in written
    # As on the host (mounted there), and never conda's default channels: `nodefaults` for
    # conda < 26's env create, the channels alone for conda >= 26's create.
    assert written["channels"] == [channel.as_uri(), "nodefaults"]
    channels = (context / "envassay" / "env" / "channels.txt").read_text()
    assert channels == f"{channel.as_uri()}\n"
    pip = written["dependencies"][-1]["pip"]
    assert pip[1] == "--find-links /envassay-ctx/pip/0/wheels"
    assert (context / "envassay" / "pip" / "0" / "wheels" / "tool-1.0-py3-none-any.whl").is_file()
    mapping = (context / "envassay" / "channels.txt").read_text()
    assert mapping == f"c0\t{channel}\n"
    assert (context / "envassay" / "channels" / "c0" / "noarch" / "repodata.json").is_file()
    assert not (context / "envassay" / "wheels").exists()  # conda creates: no envassay wheels
    assert args["SPEC_HASH"] == spec.content_hash and args["LOCK_HASH"] == ""
    assert args["CREATOR"] == "conda" and args["ENV_PREFIX"] == "/opt/env"


def test_context_spec_is_read_as_the_host_reads_it(tmp_path: Path, channel: Path) -> None:
    """A UTF-16 spec (PowerShell's `conda env export`) with an `npm:` section: the builder
    gets UTF-8 YAML without the section, which conda 26 installs nothing from (an older
    conda in the builder would stop at it)."""
    body = DEPS + "  - npm: [left-pad]\n  - pip: [tool==1.0]\n"
    path = write_spec(tmp_path, channel, body).path
    path.write_bytes(path.read_text().encode("utf-16"))
    spec = load_spec(path)
    plan = plan_image(spec, Config(root=tmp_path), ImageOptions("b", "r", "conda"), "linux-64")
    context = tmp_path / "ctx"
    context.mkdir()
    assemble_context(plan, context, tmp_path / "wheelcache")
    written = yaml.safe_load((context / "envassay" / "env" / "environment.yml").read_text())
    assert {"pip": ["tool==1.0"]} in written["dependencies"]
    assert not [d for d in written["dependencies"] if isinstance(d, dict) and "npm" in d]


def test_context_refuses_pip_lines_a_build_cannot_see(tmp_path: Path, channel: Path) -> None:
    (tmp_path / "envs").mkdir()
    (tmp_path / "envs" / "req.txt").write_text("six\n")
    spec = write_spec(tmp_path, channel, DEPS + "  - pip:\n    - -r req.txt\n")
    plan = plan_image(spec, Config(root=tmp_path), ImageOptions("b", "r", "conda"), "linux-64")
    (tmp_path / "ctx").mkdir()
    with pytest.raises(UserError, match="cannot see"):
        assemble_context(plan, tmp_path / "ctx", tmp_path / "wheelcache")


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.buildkit"])
def test_dockerfile_takes_every_variable_as_a_build_arg(name: str) -> None:
    text = (ROOT / "docker" / name).read_text()
    for arg in ("BUILDER_IMAGE", "RUNTIME_IMAGE", "CREATOR", "ENV_PREFIX", "USER_UID", "LOCK_HASH"):
        assert f"ARG {arg}" in text or f" {arg}=" in text or f" {arg} " in text, arg
    assert "FROM ${BUILDER_IMAGE} AS builder" in text and "FROM ${RUNTIME_IMAGE}" in text
    assert "USER ${USER_UID}" in text and "org.opencontainers.image.revision" in text
    # A credential reaches the two-stage build's builder stage only (direct_build).
    assert ("ENVASSAY_SECRETS" in text) == (name == "Dockerfile")
    registry = "docker" + ".io"  # no registry host name anywhere in what we ship
    for path in (ROOT / "src" / "envassay" / "assets").iterdir():
        if path.is_file():
            assert registry not in path.read_text(), path


# --------------------------------------------------------------------------- image checks


def facts(
    *,
    user: str = "1000",
    uid: int = 1000,
    prefix: str = "/opt/env",
    caches: list[dict[str, object]] | None = None,
    tmp_bytes: int = 0,
    labels: dict[str, str] | None = None,
    size: int = 300_000_000,
    plain_ok: bool = True,
) -> ImageFacts:
    info = ImageInfo(
        id="sha256:x",
        tags=("t:1",),
        size=size,
        user=user,
        labels=labels if labels is not None else {},
        env={},
        entrypoint=(),
        cmd=("python",),
        created="",
        architecture="amd64",
    )
    plain = (
        PlainRun(True, uid=uid, user="u", home="/home/u", prefix=prefix, executable=f"{prefix}/x")
        if plain_ok
        else PlainRun(False, error="exec: python: not found")
    )
    scan = {
        "caches": caches or [],
        "dirs": [
            {"path": "/tmp", "exists": True, "bytes": tmp_bytes, "largest": [["/tmp/a", 9]]},
            {"path": "/home/u", "exists": True, "bytes": 10, "largest": []},
        ],
    }
    return ImageFacts("t:1", info, "/opt/env", plain, scan)


def verdicts(f: ImageFacts, spec: EnvSpec, lock: str | None = None, **settings: object) -> dict:
    results = image_checks(f, spec, EnvSettings(**settings), lock)  # type: ignore[arg-type]
    return {r.name: (r.outcome, r.message) for r in results}


def labels_for(spec: EnvSpec, lock: str = "") -> dict[str, str]:
    return {
        "org.opencontainers.image.source": "file:///src",
        "org.opencontainers.image.revision": "abc",
        "org.opencontainers.image.created": "2026-01-01T00:00:00Z",
        "io.envassay.spec.name": spec.name,
        "io.envassay.spec.hash": spec.content_hash,
        "io.envassay.lock.hash": lock,
    }


def test_image_checks_pass_on_a_clean_image(tmp_path: Path, channel: Path) -> None:
    spec = write_spec(tmp_path, channel, DEPS)
    got = verdicts(facts(labels=labels_for(spec)), spec, size_budget_mb=400)
    assert {k: v[0] for k, v in got.items()} == {
        "image[user]": "passed",
        "image[clean]": "passed",
        "image[entrypoint]": "passed",
        "image[labels]": "passed",
        "image[size]": "passed",
    }
    assert "size-budget-mb" in verdicts(facts(labels=labels_for(spec)), spec)["image[size]"][1]


def test_image_checks_name_what_is_wrong(tmp_path: Path, channel: Path) -> None:
    spec = write_spec(tmp_path, channel, DEPS)
    root = verdicts(facts(user="", uid=0, labels=labels_for(spec)), spec)["image[user]"]
    assert root[0] == "failed" and "runs as root (uid 0)" in root[1]
    no_python = verdicts(facts(user="", plain_ok=False, labels=labels_for(spec)), spec)
    assert no_python["image[user]"][0] == "failed"
    assert "python: not found" in no_python["image[entrypoint]"][1]

    cache = {"path": "/root/.cache/pip", "kind": "pip cache", "bytes": 2_000_000, "files": 3}
    dirty = verdicts(facts(caches=[cache], tmp_bytes=5_000_000, labels=labels_for(spec)), spec)
    outcome, message = dirty["image[clean]"]
    assert outcome == "failed"
    assert "pip cache left at /root/.cache/pip: 2.0 MB in 3 file(s)" in message
    assert "/tmp holds 5.0 MB" in message

    elsewhere = verdicts(facts(prefix="/usr", labels=labels_for(spec)), spec)["image[entrypoint]"]
    assert elsewhere[0] == "failed" and "not the env at /opt/env" in elsewhere[1]

    other = verdicts(facts(labels=labels_for(spec, lock="aaa")), spec, lock="bbb")["image[labels]"]
    assert other[0] == "failed" and "built from another lock" in other[1]
    missing = verdicts(facts(labels={}), spec)["image[labels]"]
    assert missing[0] == "failed" and "org.opencontainers.image.source" in missing[1]
    stale = dict(labels_for(spec), **{"io.envassay.spec.hash": "0" * 64})
    assert "another spec" in verdicts(facts(labels=stale), spec)["image[labels]"][1]

    big = verdicts(facts(size=500_000_000, labels=labels_for(spec)), spec, size_budget_mb=400)
    assert big["image[size]"] == ("failed", "the image is 500.0 MB, over its budget of 400 MB")


class FactsEngine:
    """Answers the plain run and the image scan as a healthy image would; counts the runs."""

    def __init__(self, plain_code: int = 0) -> None:
        self.plain_code = plain_code
        self.runs: list[tuple[str, ...]] = []

    def run(self, image: str, command: list[str], **_options: object) -> CommandResult:
        self.runs.append(tuple(command))
        if command[0] == "python":  # the plain `python -c`
            plain = {"uid": 1000, "user": "u", "home": "/home/u", "prefix": "/opt/env"}
            out = json.dumps(plain | {"executable": "/opt/env/bin/python"})
            return CommandResult(("docker",), self.plain_code, out, "boom")
        scan = {"uid": 0, "caches": [], "dirs": [{"path": "/tmp", "exists": True, "bytes": 1}]}
        return CommandResult(("docker",), 0, json.dumps(scan), "")


def test_image_facts_are_kept_by_image_id_and_failures_are_not(tmp_path: Path) -> None:
    info = facts().info
    keep = tmp_path / "image-facts"
    engine = FactsEngine()
    first = gather_facts(engine, "t:1", info, keep=keep)  # type: ignore[arg-type]
    assert len(engine.runs) == 2 and len(list(keep.iterdir())) == 1
    again = gather_facts(engine, "t:1", info, keep=keep)  # type: ignore[arg-type]
    assert len(engine.runs) == 2  # read back: no container
    assert (again.plain, again.scan, again.prefix) == (first.plain, first.scan, first.prefix)
    assert again.plain.ok and again.plain.uid == 1000

    other = dataclasses.replace(info, id="sha256:y")  # another image: gathered afresh
    gather_facts(engine, "t:2", other, keep=keep)  # type: ignore[arg-type]
    assert len(engine.runs) == 4 and len(list(keep.iterdir())) == 2

    for path in keep.iterdir():  # an unreadable kept file is gathered (and kept) again
        path.write_text("{not json")
    gather_facts(engine, "t:1", info, keep=keep)  # type: ignore[arg-type]
    assert len(engine.runs) == 6
    gather_facts(engine, "t:1", info, keep=keep)  # type: ignore[arg-type]
    assert len(engine.runs) == 6

    broken = FactsEngine(plain_code=139)  # a failed run is judged afresh every time
    fresh = tmp_path / "fresh"
    for _ in range(2):
        failed = gather_facts(broken, "t:1", info, keep=fresh)  # type: ignore[arg-type]
        assert not failed.plain.ok and "exit 139" in failed.plain.error
    assert len(broken.runs) == 4 and not list(fresh.glob("*.json"))


# --------------------------------------------------------------------------- docker helpers


def test_demux_splits_stdout_and_stderr_frames() -> None:
    def frame(kind: int, data: bytes) -> bytes:
        return struct.pack(">BxxxL", kind, len(data)) + data

    stream = frame(1, b"out1 ") + frame(2, b"err") + frame(1, b"out2")
    for size in (1, 3, 7, len(stream)):  # frames split anywhere across reads
        demux = _Demux(1024)
        for start in range(0, len(stream), size):
            demux.feed(stream[start : start + size])
        assert (demux.out.text(), demux.err.text()) == ("out1 out2", "err")


def test_demux_keeps_head_and_tail_of_a_flood() -> None:
    demux = _Demux(100)
    demux.feed(struct.pack(">BxxxL", 2, 10_000) + b"a" * 50 + b"b" * 9_900 + b"c" * 50)
    assert demux.err.text() == "a" * 50 + "\n[envassay: 9900 bytes of output cut here]\n" + "c" * 50


def test_build_error_names_the_step_and_shows_its_output(tmp_path: Path) -> None:
    error = _build_error(
        "envassay/x:1",
        "Step 6/17 : RUN sh /envassay-ctx/create.sh",
        ["solving", "cannot solve: no candidates for nothing-here"],
        "The command '/bin/sh -c sh /envassay-ctx/create.sh' returned a non-zero code: 1",
        tmp_path / "build.log",
    )
    text = str(error)
    assert text.startswith("docker build of envassay/x:1 failed at Step 6/17 : RUN")
    assert "  | cannot solve: no candidates for nothing-here" in text
    assert f"full build log: {tmp_path / 'build.log'}" in text


def test_no_engine_is_one_line_naming_the_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    socket = tmp_path / "missing.sock"
    monkeypatch.setenv("DOCKER_HOST", f"unix://{socket}")
    assert engine_address() == f"unix://{socket}"
    with pytest.raises(UserError) as caught:
        connect()
    text = caught.value.render()
    assert f"no Docker engine answers at unix://{socket}" in text
    assert "\n" not in text and "dockerd" in text


# --------------------------------------------------------------------------- wheels


def test_installed_distributions_repack_into_valid_wheels(tmp_path: Path) -> None:
    from importlib.metadata import distribution

    from envassay.targets.wheelhouse import envassay_wheel, repack_installed

    target = tmp_path / "pyyaml.whl"
    repack_installed(distribution("pyyaml"), target, pure=True)
    with zipfile.ZipFile(target) as archive:
        names = archive.namelist()
        record = archive.read(next(n for n in names if n.endswith("RECORD"))).decode()
        wheel = archive.read(next(n for n in names if n.endswith("/WHEEL"))).decode()
    assert "yaml/__init__.py" in names
    assert not [n for n in names if n.endswith(".so") or n.endswith(".pyc")]
    assert "Tag: py3-none-any" in wheel and "Root-Is-Purelib: true" in wheel
    assert all(line.count(",") == 2 for line in record.splitlines())

    ours = envassay_wheel(tmp_path)
    with zipfile.ZipFile(ours) as archive:
        names = archive.namelist()
    assert "envassay/assets/Dockerfile" in names and "envassay/cli.py" in names
    assert "envassay-" in ours.name and any(n.endswith("entry_points.txt") for n in names)


def test_gpu_is_requested_when_the_env_expects_one(tmp_path: Path, channel: Path) -> None:
    from envassay.targets.image import expects_gpu

    plain = write_spec(tmp_path, channel, DEPS)
    cuda = write_spec(tmp_path, channel, DEPS + "  - cudatoolkit=11.8\n", name="cuda")
    assert not expects_gpu(plain, EnvSettings())
    assert expects_gpu(plain, EnvSettings(gpu="optional"))
    assert expects_gpu(plain, EnvSettings(gpu="required"))
    assert expects_gpu(cuda, EnvSettings())
    assert not expects_gpu(cuda, EnvSettings(gpu="none"))
