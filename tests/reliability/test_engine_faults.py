"""Engine faults: no engine at all (a socket that refuses, one that never answers, one
that answers garbage), an engine that stops mid-build, an image whose python crashes.

Docker items fail or skip with the cause; native items are not affected; no container
is left behind. Tests that need a real engine are marked ``docker`` and follow the
docker tests' convention: without an engine they skip, except under CI=true, where
that is a failure. The engine is never stopped: "stopping" it is a proxy socket in
front of it that cuts every connection and disappears.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from envassay.docker import Engine, engine_address
from tests.conftest import Project
from tests.integration.envassay_cli import envassay
from tests.reliability.harness import EngineProxy, junit_by_target

pytestmark = pytest.mark.channel
NATIVE_OK = ("create[native]", "import[pyyaml]", "health[conda]")


def check(
    project: Project, env: dict[str, str], *args: str | Path
) -> tuple[int, dict[tuple[str, str], tuple[str, str]], str, float]:
    """`envassay check ARGS`: exit code, (target, item) -> (outcome, message), output, seconds."""
    xml = project.root / f"junit-{uuid.uuid4().hex[:8]}.xml"
    started = time.monotonic()
    result = envassay("check", *args, "--junitxml", xml, env=env, cwd=project.root)
    seconds = time.monotonic() - started
    outcomes = junit_by_target(xml) if xml.exists() else {}
    return result.returncode, outcomes, result.stdout + result.stderr, seconds


# --------------------------------------------------------------------- no engine answers


@contextlib.contextmanager
def fake_engine(path: Path, kind: str) -> Iterator[None]:
    """A unix socket that refuses (bound, not listening), hangs (listens, never
    answers) or answers garbage (a reply that is not HTTP, then closes)."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    stop = threading.Event()
    held: list[socket.socket] = []
    if kind != "refused":
        server.listen(8)

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            if kind == "hung":
                held.append(conn)  # read nothing, answer nothing
            else:
                with contextlib.suppress(OSError):
                    conn.recv(65536)
                    conn.sendall(b"SSH-2.0-not-an-engine\r\n")
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    if kind != "refused":
        thread.start()
    try:
        yield
    finally:
        stop.set()
        if thread.is_alive():
            thread.join(timeout=5)
        for conn in held:
            conn.close()
        server.close()


@pytest.mark.parametrize("kind", ["refused", "hung", "garbage"])
def test_no_engine_answering_skips_docker_and_native_is_unaffected(
    project: Project, envassay_env: dict[str, str], kind: str
) -> None:
    sock = project.root / "engine.sock"
    env = envassay_env | {"DOCKER_HOST": f"unix://{sock}"}
    spec = project.spec("noengine", ["python=3.11", "pyyaml"])
    project.settings('targets = ["native", "docker"]')
    with fake_engine(sock, kind):
        code, items, output, seconds = check(project, env, spec)
        assert code == 0, output
        outcome, message = items["docker", "create[docker]"]
        assert outcome == "skipped" and f"no Docker engine answers at unix://{sock}" in message
        for name in NATIVE_OK:
            assert items["native", name][0] == "passed", (name, items)
        assert "Traceback" not in output
        assert seconds < 180, seconds  # a hung engine costs its connect timeout, no more

        # Asked for explicitly, docker without an engine is one line, exit 2.
        result = envassay("check", "--target", "docker", spec, env=env, cwd=project.root)
        assert result.returncode == 2, result.describe()
        (line,) = result.stderr.strip().splitlines()
        assert f"no Docker engine answers at unix://{sock}" in line, line


# --------------------------------------------------------------------- a real engine


@pytest.mark.docker
def test_engine_stopped_mid_build_fails_docker_with_the_cause(
    project: Project, envassay_env: dict[str, str], engine: Engine, base_image: str
) -> None:
    upstream = engine_address().removeprefix("unix://")
    if not engine_address().startswith("unix://"):
        pytest.skip(f"the proxy needs a unix socket engine, not {engine_address()}")
    # A fresh name (a new image tag; a comment does not change the content hash): its
    # image cannot exist, so a build starts.
    name = f"midbuild-{uuid.uuid4().hex[:12]}"
    spec = project.spec(name, ["python=3.11", "pyyaml", "six"])
    project.settings(
        'targets = ["native", "docker"]\n'
        f'[tool.envassay.envs.{name}]\nbuilder-image = "{base_image}"'
    )
    proxy = EngineProxy(project.root / "proxy.sock", upstream, cut_after=b"Step 3/")
    try:
        # The classic builder's stream, cut at its third step (the BuildKit CLI's build
        # speaks a session protocol this proxy does not parse).
        env = envassay_env | {"DOCKER_HOST": proxy.address, "ENVASSAY_BUILDKIT": "0"}
        code, items, output, _ = check(project, env, spec)
    finally:
        proxy.stop()
    assert proxy.cut.is_set(), "the build never reached its third step"
    assert code == 1, output
    outcome, message = items["docker", "create[docker]"]
    assert outcome == "failure", output
    assert f"the Docker engine at {proxy.address} stopped answering" in message, message
    for name in NATIVE_OK:
        assert items["native", name][0] == "passed", (name, items)
    assert "Traceback" not in output, output


@pytest.mark.docker
def test_image_whose_python_crashes_fails_docker_items_with_the_signal(
    project: Project,
    envassay_env: dict[str, str],
    engine: Engine,
    base_image: str,
    tmp_path: Path,
) -> None:
    context = tmp_path / "crashing"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f"FROM {base_image}\n"
        # `python` segfaults for real (a signal sent to PID 1 would be ignored)
        "RUN printf '#!/bin/sh\\nexec /opt/conda/bin/python3 -c \"import ctypes;"
        " ctypes.string_at(0)\"\\n' > /usr/local/bin/python && chmod 755 /usr/local/bin/python\n"
        "ENV PATH=/usr/local/bin:/usr/bin:/bin\n"
        "USER 1000\n"
    )
    ref = f"envassay-test/crashing-python:{uuid.uuid4().hex[:8]}"
    engine.build(context, ref)
    spec = project.spec("crashing", ["python=3.11", "pyyaml"])
    try:
        code, items, output, _ = check(
            project, envassay_env, "--target", "native", "--target", "docker", "--image", ref, spec
        )
    finally:
        engine.remove_image(ref)
    assert code == 1, output
    outcome, message = items["docker", "probe[docker]"]
    assert outcome == "failure", items
    assert "exited 139 (killed by signal SIGSEGV)" in message, message
    for name in ("image[entrypoint]", "image[clean]"):  # they need the python too
        outcome, message = items["docker", name]
        assert outcome == "failure" and "exit 139" in message, (name, message)
    for name in NATIVE_OK:
        assert items["native", name][0] == "passed", (name, items)
    assert "Traceback" not in output, output


@pytest.mark.docker
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_ctrl_c_while_containers_run_is_prompt_and_removes_them(
    project: Project,
    envassay_env: dict[str, str],
    engine: Engine,
    base_image: str,
    tmp_path: Path,
    jobs: str,
) -> None:
    """An image whose python hangs at start: the probe and the image checks' containers
    are all running when Ctrl-C comes; the run ends within seconds and removes them."""
    import signal
    import subprocess
    import sys

    context = tmp_path / "hanging"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f"FROM {base_image}\n"
        # a .pth line runs at every start (Debian's own sitecustomize would shadow one)
        'RUN python -c "import pathlib, site; pathlib.Path(site.getsitepackages()[0],'
        " 'zz-hang.pth').write_text('import time; time.sleep(3600)')\"\n"
        "USER 1000\n"
    )
    ref = f"envassay-test/hanging-python:{uuid.uuid4().hex[:8]}"
    engine.build(context, ref)
    spec = project.spec("hanging", ["python=3.11", "pyyaml"])
    ours = {"label": "io.envassay.run"}
    try:
        with (tmp_path / "check.log").open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "envassay", "check", "-j", jobs, "--image", ref, spec],
                cwd=project.root,
                env=envassay_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:  # the probe and both image-check runs
                running = [
                    c for c in engine.api.containers(filters=ours) if ref in str(c.get("Image"))
                ]
                if len(running) >= 3:
                    break
                time.sleep(0.2)
            assert len(running) >= 3, (tmp_path / "check.log").read_text()
            sent = time.monotonic()
            os.killpg(proc.pid, signal.SIGINT)
            code = proc.wait(timeout=120)
            took = time.monotonic() - sent
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        output = (tmp_path / "check.log").read_text()
        assert took < 15, f"Ctrl-C took {took:.1f}s\n{output}"
        assert code == 130, output
        assert "envassay: interrupted; nothing half-made is kept" in output, output
        left = [
            c for c in engine.api.containers(all=True, filters=ours) if ref in str(c.get("Image"))
        ]
        assert not left, left
    finally:
        for c in engine.api.containers(all=True, filters=ours):
            if ref in str(c.get("Image")):
                engine.api.remove_container(c["Id"], force=True)
        engine.remove_image(ref)
