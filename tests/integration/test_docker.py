"""The docker target for real: images built from specs against the local channel, the suite
run inside them, image hygiene checks, and what happens without an engine.

Builds use a local base image (debootstrap + docker import, cached) as the builder and
runtime, with envassay's own rattler backend as the creator: no registry is reachable.
"""

from __future__ import annotations

import json
import os
import re
import sys
import uuid
from pathlib import Path

import pytest

from envassay.command import run
from envassay.docker import Engine
from envassay.targets.image import builds
from tests.conftest import Project
from tests.integration.envassay_cli import envassay, junit_messages, junit_outcomes

GOOD = ["python=3.11", "numpy>=1.24,<2", "pyyaml", "beautifulsoup4", "nopython"]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def docker_project(project: Project, base_image: str) -> Project:
    project.settings(f'[tool.envassay.envs.good]\nbuilder-image = "{base_image}"')
    return project


def check(
    project: Project, env: dict[str, str], *args: str | Path
) -> tuple[int, dict[str, tuple[str, str]], str]:
    xml = project.root / f"junit-{uuid.uuid4().hex[:8]}.xml"
    result = envassay("check", *args, "--junitxml", xml, env=env, cwd=project.root)
    outcomes = junit_outcomes(xml) if xml.exists() else {}
    for name, message in (junit_messages(xml) if xml.exists() else {}).items():
        if name in outcomes:
            outcomes[name] = (outcomes[name][0], message)
    return result.returncode, outcomes, result.stdout + result.stderr


def derive(engine: Engine, base: str, lines: list[str], tmp_path: Path) -> str:
    """An image made from ``base`` by a few Dockerfile lines (a variant someone might ship)."""
    context = tmp_path / f"variant-{uuid.uuid4().hex[:8]}"
    context.mkdir()
    (context / "Dockerfile").write_text("\n".join([f"FROM {base}", *lines]) + "\n")
    tag = f"envassay-test/variant:{context.name}"
    engine.build(context, tag)
    return tag


# --------------------------------------------------------------------------- tests


@pytest.mark.docker
@pytest.mark.channel
@pytest.mark.slow
def test_image_built_suite_passes_inside_and_second_run_builds_nothing(
    docker_project: Project,
    envassay_env: dict[str, str],
    store_home: Path,
    engine: Engine,
    base_image: str,
) -> None:
    spec = docker_project.spec("good", GOOD)
    code, items, output = check(docker_project, envassay_env, "--target", "docker", spec)
    assert code == 0, output
    created = items["create[docker]"]
    assert created[0] == "passed"
    ref = created[1].rsplit(": ", 1)[1]  # "built in 31.2s: envassay/good:HASH" (or "reused")
    assert ref.startswith("envassay/good:")
    if created[1].startswith("built"):  # (an earlier run may have left the image behind)
        assert f"building {ref}" in output and re.search(r"(\]| :) RUN ", output)  # streamed
    for name in ("import[numpy]", "import[pyyaml]", "import[beautifulsoup4]", "health[pip]"):
        assert items[name][0] == "passed", (name, items[name])
    assert items["pin[numpy>=1.24,<2]"][0] == "passed"
    assert items["import[nopython]"][0] == "skipped"
    for name in ("image[user]", "image[clean]", "image[entrypoint]", "image[labels]"):
        assert items[name][0] == "passed", (name, items[name])
    size = items["image[size]"]
    assert size[0] == "skipped" and "size-budget-mb" in size[1]

    info = engine.image(ref)
    assert info is not None and info.user == "1000"
    assert info.labels["io.envassay.spec.name"] == "good"
    built_before = len(builds(store_home))

    # Second run: same spec, same Dockerfile, same args -> the tag exists -> no build.
    code, items, output = check(docker_project, envassay_env, "--target", "docker", spec)
    assert code == 0, output
    assert items["create[docker]"] == ("passed", f"reused (no build): {ref}")
    assert not re.search(r"(\]| :) RUN ", output) and "building envassay/" not in output
    assert len(builds(store_home)) == built_before
    again = engine.image(ref)
    assert again is not None and again.id == info.id and again.created == info.created

    # A size budget is a setting, not part of the image: judged without a rebuild.
    docker_project.settings(
        f'[tool.envassay.envs.good]\nbuilder-image = "{base_image}"\nsize-budget-mb = 1'
    )
    code, items, output = check(docker_project, envassay_env, "--target", "docker", spec)
    assert code == 1, output
    outcome, message = items["image[size]"]
    assert outcome == "failure" and "over its budget of 1 MB" in message
    assert len(builds(store_home)) == built_before


@pytest.mark.docker
@pytest.mark.channel
@pytest.mark.slow
def test_broken_package_fails_its_item_inside_the_container(
    docker_project: Project, envassay_env: dict[str, str], base_image: str, engine: Engine
) -> None:
    docker_project.settings(
        f'[tool.envassay.envs.dbroken]\nbuilder-image = "{base_image}"\nimport-timeout = 10'
    )
    spec = docker_project.spec("dbroken", ["python=3.11", "brokenraise", "pyyaml"])
    code, items, output = check(docker_project, envassay_env, "--target", "docker", spec)
    assert code == 1, output
    outcome, message = items["import[brokenraise]"]
    assert outcome == "failure" and "brokenraise is broken on purpose" in message
    failures = sorted(name for name, (o, _) in items.items() if o == "failure")
    assert failures == ["import[brokenraise]"], items
    assert items["import[pyyaml]"][0] == "passed"


@pytest.mark.docker
@pytest.mark.channel
@pytest.mark.slow
def test_image_variants_fail_user_and_clean_and_check_image_builds_nothing(
    docker_project: Project,
    envassay_env: dict[str, str],
    store_home: Path,
    engine: Engine,
    tmp_path: Path,
) -> None:
    spec = docker_project.spec("good", GOOD)
    built = envassay("build", spec, "--json", env=envassay_env, cwd=docker_project.root)
    assert built.ok, built.describe()
    ref = json.loads(built.stdout)["ref"]
    count = len(builds(store_home))

    # `check --image`: an image built separately, under a name envassay did not choose.
    separate = f"envassay-test/separate:{uuid.uuid4().hex[:8]}"
    engine.tag(ref, separate)
    root = derive(engine, ref, ["USER root"], tmp_path)
    dirty = derive(
        engine,
        ref,
        [
            "USER root",
            "RUN mkdir -p /root/.cache/pip/http /opt/conda/pkgs/leftover-1.0-0/info"
            " && head -c 2000000 /dev/urandom > /root/.cache/pip/http/blob"
            " && echo '{}' > /opt/conda/pkgs/leftover-1.0-0/info/index.json"
            " && head -c 3000 /dev/urandom > /opt/conda/pkgs/leftover-1.0-0.conda"
            " && head -c 1500000 /dev/urandom > /tmp/scratch.bin",
            "USER 1000",
        ],
        tmp_path,
    )
    try:
        code, items, output = check(docker_project, envassay_env, "--image", separate, spec)
        assert code == 0, output
        assert "create[docker]" not in items  # nothing built, nothing reused: just checked
        assert items["import[numpy]"][0] == "passed"
        assert items["image[labels]"][0] == "passed"
        assert len(builds(store_home)) == count

        code, items, output = check(docker_project, envassay_env, "--image", root, spec)
        assert code == 1, output
        outcome, message = items["image[user]"]
        assert outcome == "failure" and "runs as root (uid 0)" in message
        assert items["image[clean]"][0] == "passed"
        assert items["import[numpy]"][0] == "passed"  # the suite itself still passes

        code, items, output = check(docker_project, envassay_env, "--image", dirty, spec)
        assert code == 1, output
        outcome, message = items["image[clean]"]
        assert outcome == "failure", message
        assert "pip cache left at /root/.cache/pip" in message
        assert "conda package cache left at /opt/conda/pkgs" in message
        assert "/tmp holds 1.5 MB" in message
        assert items["image[user]"][0] == "passed"
        failures = sorted(name for name, (o, _) in items.items() if o == "failure")
        assert failures == ["image[clean]"], items

        probe = envassay("probe", f"docker://{separate}", "--json", env=envassay_env, cwd=tmp_path)
        assert probe.ok, probe.describe()
        assert json.loads(probe.stdout)["interpreter"]["prefix"] == "/opt/env"
    finally:
        for tag in (separate, root, dirty):
            engine.remove_image(tag)
    assert len(builds(store_home)) == count


@pytest.mark.docker
@pytest.mark.channel
@pytest.mark.parametrize("builder", ["buildkit", "classic"])
def test_failing_build_names_its_step_and_shows_its_output(
    docker_project: Project,
    envassay_env: dict[str, str],
    base_image: str,
    engine: Engine,
    builder: str,
) -> None:
    from envassay.docker import buildkit_cli

    if builder == "buildkit" and buildkit_cli() is None:
        pytest.skip("no docker CLI with BuildKit here")
    envassay_env = envassay_env | {"ENVASSAY_BUILDKIT": "1" if builder == "buildkit" else "0"}
    docker_project.settings(f'[tool.envassay.envs.unsolvable]\nbuilder-image = "{base_image}"')
    spec = docker_project.spec("unsolvable", ["python=3.11", "no-such-package-anywhere"])
    code, items, output = check(docker_project, envassay_env, "--target", "docker", spec)
    assert code == 2, output  # unsolvable is bad input, natively and in the builder alike
    outcome, message = items["create"]  # bad input: the env's own item, as natively
    assert outcome == "failure"
    # BuildKit builds in one stage (the create is the runtime stage's step), classic in two.
    label = "[runtime " if builder == "buildkit" else "Step "
    assert f"image build failed at {label}" in message and "(create.sh)" in message
    assert "no-such-package-anywhere" in message  # the solver's own words, from the step
    assert "full build log:" in message
    assert "Traceback" not in output
    # A log (no terminal): one line per phase; the tools' chatter is in the build log only.
    assert "envassay-create: [" in output and f"{label.strip()}" in output
    assert "Removing intermediate container" not in output and " ---> Running" not in output


@pytest.mark.docker
@pytest.mark.channel
def test_one_stage_build_falls_back_to_two_stages_where_the_builder_conda_cannot_run(
    docker_project: Project, envassay_env: dict[str, str], base_image: str, engine: Engine
) -> None:
    """BuildKit, creator conda, a builder without conda at /opt/conda: create.sh exits 3
    before creating anything, and the two-stage build follows (which then names the
    builder's missing conda: exit 1, a failed create item)."""
    from envassay.docker import buildkit_cli

    if buildkit_cli() is None:
        pytest.skip("no docker CLI with BuildKit here")
    envassay_env = envassay_env | {"ENVASSAY_BUILDKIT": "1"}
    docker_project.settings(
        f'[tool.envassay.envs.noconda]\nbuilder-image = "{base_image}"\n'
        f'runtime-image = "{base_image}"'
    )
    spec = docker_project.spec("noconda", ["python=3.11"])
    code, items, output = check(
        docker_project, envassay_env, "--target", "docker", "--creator", "conda", spec
    )
    assert code == 1, output
    assert "cannot create in the runtime image" in output, output
    assert "building in two stages" in output, output
    outcome, message = items["create[docker]"]
    assert outcome == "failure" and "[builder " in message, message
    assert "conda is not on PATH in the builder image" in message, message


@pytest.mark.docker
@pytest.mark.channel
def test_build_progress_on_a_terminal_is_one_live_line_and_quiet_with_q(
    docker_project: Project, envassay_env: dict[str, str], base_image: str, engine: Engine
) -> None:
    import pty
    import select
    import subprocess

    docker_project.settings(f'[tool.envassay.envs.live]\nbuilder-image = "{base_image}"')
    spec = docker_project.spec("live", ["python=3.11", f"no-such-package-{uuid.uuid4().hex[:6]}"])

    def on_a_terminal(*args: str | Path) -> str:
        leader, follower = pty.openpty()
        argv = [sys.executable, "-m", "envassay", "check", "--target", "docker", spec, *args]
        child = subprocess.Popen(
            argv, stdin=follower, stdout=follower, stderr=follower,
            env=envassay_env | {"COLUMNS": "100", "TERM": "xterm"}, cwd=docker_project.root,
        )  # fmt: skip
        os.close(follower)
        out = b""
        while True:
            ready, _, _ = select.select([leader], [], [], 300)
            try:
                chunk = os.read(leader, 65536) if ready else b""
            except OSError:  # the child closed the terminal
                chunk = b""
            if not chunk:
                break
            out += chunk
        os.close(leader)
        assert child.wait(60) == 2
        return out.decode(errors="replace")

    screen = on_a_terminal()
    # The live line: drawn on the row below pytest's and erased; no build step gets a row.
    assert "\x1b[K" in screen and "envassay-create: [" in screen
    rows = [row.split("\r")[-1] for row in screen.split("\n")]
    assert not [row for row in rows if row.startswith(("Step ", "envassay: Step", " ---> "))]
    assert not [row for row in screen.split("\n") if "collecting" in row and "envassay:" in row]
    # -q: no progress at all; the verdict still says why.
    quiet = on_a_terminal("--", "-q")
    assert "\x1b[K" not in quiet and "\x1b[A" not in quiet
    assert "no-such-package-" in quiet


@pytest.mark.docker
@pytest.mark.channel
def test_pip_failure_in_the_builder_names_its_real_cause(
    docker_project: Project, envassay_env: dict[str, str], engine: Engine
) -> None:
    """pip says "(from versions: none)"; the cause (a TLS failure here) is only in its
    retry warnings: the failure text and the saved build log both carry it."""
    import http.server
    import threading

    # A plain-HTTP server addressed as https: every TLS handshake with it fails.
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        # (localhost: pip's truststore cannot check an IP address's hostname at all)
        index = f"https://localhost:{server.server_address[1]}/simple"
        spec = docker_project.spec(
            "good", ["python=3.11", "pip"], pip=[f"--index-url {index}", "tinyx"]
        )
        code, items, output = check(docker_project, envassay_env, "--target", "docker", spec)
    finally:
        server.shutdown()
        server.server_close()
    assert code == 2, output  # as natively: pip could not resolve the pip: section
    outcome, message = items["create"]
    assert outcome == "failure", message
    assert "from versions: none" in message or "No matching distribution" in message
    assert "pip warned: " in message and "SSL" in message, message
    log = Path(message.split("full build log: ")[1].split(")")[0].split(";")[0].strip())
    text = log.read_text()
    assert "pip warned: " in text and "SSL" in text


@pytest.mark.docker
@pytest.mark.channel
def test_missing_base_image_is_one_line_and_exit_2(
    docker_project: Project, envassay_env: dict[str, str], engine: Engine
) -> None:
    missing = f"envassay-test.invalid/none:{uuid.uuid4().hex[:8]}"
    spec = docker_project.spec("nobase", ["python=3.11"])
    for args in (["--builder-image", missing], ["--runtime-image", missing]):
        code, items, output = check(docker_project, envassay_env, "--target", "docker", *args, spec)
        assert code == 2, output
        outcome, message = items["create"]
        assert outcome == "failure"
        assert "image build failed at " in message and " FROM " in message, message
        assert "--builder-image" in message and "\n" not in message
        assert "Traceback" not in output
    build = envassay(
        "build", "--builder-image", missing, spec, env=envassay_env, cwd=docker_project.root
    )
    assert build.returncode == 2, build.describe()
    errors = [line for line in build.stderr.splitlines() if "error" in line.lower()]
    assert errors[-1].startswith("envassay: error: ") and " FROM " in errors[-1], build.stderr


@pytest.mark.channel
def test_without_an_engine_docker_is_skipped_or_a_one_line_error(
    project: Project, envassay_env: dict[str, str]
) -> None:
    socket = project.root / "no-engine" / "docker.sock"
    env = envassay_env | {"DOCKER_HOST": f"unix://{socket}"}
    spec = project.spec("offline", ["python=3.11", "pyyaml"])

    for args in (["--target", "docker"], ["--image", "envassay/whatever:1"]):
        result = envassay("check", *args, spec, env=env, cwd=project.root)
        assert result.returncode == 2, result.describe()
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert f"no Docker engine answers at unix://{socket}" in lines[0]
        assert "dockerd" in lines[0] and "Traceback" not in result.stderr

    plain = run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--envassay-target=docker",
            spec,
        ],
        env=env,
        cwd=project.root,
        timeout=300,
    )
    assert plain.returncode == 4 and f"unix://{socket}" in plain.stderr, plain.describe()

    # Docker as a configured target: skipped with the reason; native is not affected.
    project.settings('targets = ["native", "docker"]')
    code, items, output = check(project, env, spec)
    assert code == 0, output
    outcome, message = items["create[docker]"]
    assert outcome == "skipped" and f"unix://{socket}" in message
    assert items["create[native]"][0] == "passed"
    assert items["import[pyyaml]"][0] == "passed"


@pytest.mark.docker
@pytest.mark.channel
@pytest.mark.slow
def test_locked_spec_builds_from_its_lock_and_labels_say_which(
    docker_project: Project, envassay_env: dict[str, str], engine: Engine
) -> None:
    spec = docker_project.spec("good", GOOD)
    unlocked = envassay("build", spec, "--json", env=envassay_env, cwd=docker_project.root)
    assert unlocked.ok, unlocked.describe()
    unlocked_ref = json.loads(unlocked.stdout)["ref"]
    locked = envassay("lock", spec, env=envassay_env, cwd=docker_project.root)
    assert locked.ok, locked.describe()
    lock_file = spec.with_name("good.conda-lock.yml")
    assert lock_file.is_file()

    code, items, output = check(docker_project, envassay_env, "--target", "docker", spec)
    assert code == 0, output
    created = items["create[docker]"][1]
    assert "from good.conda-lock.yml" in created
    ref = created.rsplit(": ", 1)[1]
    assert ref != unlocked_ref  # the lock is part of the content hash
    assert items["lock[fresh]"][0] == "passed"
    outcome, message = items["lock[match]"]
    assert outcome == "passed" and "exactly as good.conda-lock.yml" in message
    assert items["image[labels]"][0] == "passed"

    from envassay.lock.format import read_lock

    info = engine.image(ref)
    assert info is not None
    digest = read_lock(lock_file).digest("linux-64")
    assert info.labels["io.envassay.lock.hash"] == digest

    # The image built before the lock existed does not carry it: image[labels] says so.
    code, items, output = check(docker_project, envassay_env, "--image", unlocked_ref, spec)
    assert code == 1, output
    outcome, message = items["image[labels]"]
    assert outcome == "failure" and "io.envassay.lock.hash" in message
