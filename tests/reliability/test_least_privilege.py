"""Least privilege: link scripts never run; a spec's `prefix:` is never where anything is
created; probe containers get no network, no capabilities, no setuid gains, and are
removed; images envassay builds run as a non-root user.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from envassay.create.backends.conda import environment_file
from envassay.docker import Engine, engine_address
from envassay.spec.environment import load_spec
from envassay.store import EnvStore
from envassay.testing import index_channel, make_generic_package, new_channel
from tests.integration.envassay_cli import envassay
from tests.reliability.harness import EngineProxy

ASSETS = Path(__file__).resolve().parents[2] / "src" / "envassay" / "assets"


def link_script_channel(tmp_path: Path, marker: Path) -> Path:
    """A channel with `linkpwn`: a package whose post-link and pre-unlink scripts would
    write ``marker`` (and a file into the prefix) if anything ran them."""
    channel = new_channel(tmp_path / "channel")
    script = f'#!/bin/sh\necho ran > "{marker}"\necho ran > "$PREFIX/ran-a-link-script"\n'
    make_generic_package(
        channel,
        "linkpwn",
        "1.0",
        files={
            "bin/.linkpwn-post-link.sh": script,
            "bin/.linkpwn-pre-unlink.sh": script,
            "share/linkpwn/README": "a package with link scripts\n",
        },
    )
    index_channel(channel)
    return channel


def test_link_scripts_never_run(tmp_path: Path, envassay_env: dict[str, str]) -> None:
    marker = tmp_path / "LINK-SCRIPT-RAN"
    channel = link_script_channel(tmp_path, marker)
    spec = tmp_path / "linkpwn.yml"
    spec.write_text(f"name: linkpwn\nchannels: [{channel.as_uri()}]\ndependencies: [linkpwn]\n")
    env = envassay_env | {"ENVASSAY_HOME": str(tmp_path / "store")}

    in_store = envassay("create", spec, env=env, cwd=tmp_path)
    assert in_store.ok, in_store.describe()
    prefix = Path(in_store.stdout.strip().rsplit(": ", 1)[1])
    at_prefix = tmp_path / "at-prefix"
    explicit = envassay("create", spec, "--prefix", at_prefix, env=env, cwd=tmp_path)
    assert explicit.ok, explicit.describe()

    for where in (prefix, at_prefix):
        assert (where / "bin" / ".linkpwn-post-link.sh").is_file()  # linked, never run
        assert (where / "share" / "linkpwn" / "README").is_file()
        assert not (where / "ran-a-link-script").exists()
    assert not marker.exists(), marker.read_text()


@pytest.mark.channel
def test_a_spec_prefix_is_never_a_create_location(
    tmp_path: Path, envassay_env: dict[str, str]
) -> None:
    marker = tmp_path / "LINK-SCRIPT-RAN"
    channel = link_script_channel(tmp_path, marker)
    elsewhere = tmp_path / "elsewhere" / "env"
    spec = tmp_path / "prefixed.yml"
    spec.write_text(
        f"name: prefixed\nchannels: [{channel.as_uri()}]\ndependencies: [linkpwn]\n"
        f"prefix: {elsewhere}\n"  # what `conda env export` writes
    )
    env = envassay_env | {"ENVASSAY_HOME": str(tmp_path / "store")}
    shown = envassay("spec", spec, "--json", env=env, cwd=tmp_path)
    assert shown.ok and json.loads(shown.stdout)["prefix"] == str(elsewhere), shown.describe()

    created = envassay("create", spec, env=env, cwd=tmp_path)
    assert created.ok, created.describe()
    prefix = Path(created.stdout.strip().rsplit(": ", 1)[1])
    assert prefix.parent == (tmp_path / "store" / "envs").resolve()
    assert not elsewhere.exists() and not elsewhere.parent.exists()
    assert [e.prefix for e in EnvStore(tmp_path / "store").entries()] == [prefix]

    # The conda/mamba/micromamba backends get an environment file without it, too.
    written = yaml.safe_load(environment_file(load_spec(spec), [channel.as_uri()]))
    assert "prefix" not in written and str(elsewhere) not in json.dumps(written)


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.buildkit"])
def test_images_are_built_to_run_as_a_non_root_user(name: str) -> None:
    """The runtime stage of each Dockerfile ends as USER ${USER_UID}, 1000 by default
    (tests/integration/test_docker.py checks built images: Config.User 1000, image[user])."""
    from envassay.targets.image import USER_UID

    dockerfile = (ASSETS / name).read_text()
    runtime = dockerfile[dockerfile.rindex("\nFROM ") :]
    users = re.findall(r"(?m)^USER\s+(\S+)", runtime)
    assert users and users[-1] == "${USER_UID}", users
    assert USER_UID not in ("0", "root") and int(USER_UID) >= 1000


# --------------------------------------------------------------------- probe containers


@pytest.mark.docker
@pytest.mark.channel
def test_probe_containers_have_no_network_no_capabilities_and_are_removed(
    tmp_path: Path, envassay_env: dict[str, str], engine: Engine
) -> None:
    from envassay.testing.baseimage import ensure_base_image

    if not engine_address().startswith("unix://"):
        pytest.skip(f"the recording proxy needs a unix socket engine, not {engine_address()}")
    base = ensure_base_image(engine).ref
    # What a container envassay starts can see: only the loopback interface.
    seen = engine.run(
        base, ["python", "-c", "import socket; print([n for _, n in socket.if_nameindex()])"]
    )
    assert seen.ok and seen.stdout.strip() == "['lo']", seen.describe()

    (tmp_path / "pyproject.toml").write_text("[tool.envassay]\n")
    spec = tmp_path / "probed.yml"
    spec.write_text("name: probed\nchannels: [conda-forge]\ndependencies: [python, pyyaml]\n")
    proxy = EngineProxy(tmp_path / "proxy.sock", engine_address().removeprefix("unix://"))
    try:
        # A store of its own: image facts kept by an earlier test's check of the same
        # base image would spare two of the three containers this test inspects.
        store = str(tmp_path / "store")
        env = envassay_env | {"DOCKER_HOST": proxy.address, "ENVASSAY_HOME": store}
        # An existing image, checked: the probe and the image checks run in containers.
        result = envassay("check", "--image", base, spec, env=env, cwd=tmp_path)
        assert result.returncode in (0, 1) and "Traceback" not in result.stdout, result.describe()
    finally:
        proxy.stop()
    calls = proxy.calls()
    creates = [json.loads(body) for _, path, body in calls if "/containers/create" in path]
    assert len(creates) >= 3, [(m, p) for m, p, _ in calls]  # the probe, a plain run, the scan
    for config in creates:
        host = config["HostConfig"]
        assert host["NetworkMode"] == "none" and config["NetworkDisabled"] is True, config
        assert not host.get("Privileged") and not host.get("CapAdd"), config
        assert "no-new-privileges" in host["SecurityOpt"], config
        assert config["Labels"] == {"io.envassay.run": "1"}, config
        if config.get("User") not in ("0", "root"):  # the image scan reads as root
            assert host["CapDrop"] == ["ALL"], config
    removals = [p for m, p, _ in calls if m == "DELETE" and re.search(r"/containers/[^/?]+", p)]
    assert len(removals) == len(creates), removals
    assert all("force=True" in p or "force=true" in p for p in removals), removals
