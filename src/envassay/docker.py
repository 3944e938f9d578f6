"""The one place envassay talks to a Docker engine (through the Python Docker SDK).

Everything else asks :class:`Engine` for what it needs: whether an image
exists and what its config says, a build from a prepared context, a container
run with a script on stdin, a rootfs import. Containers are always removed,
also when a run times out or is interrupted.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envassay import command, redact
from envassay.command import Capture, CommandResult
from envassay.errors import EnvassayError, UserError

# What `docker image inspect` says, as data (the image checks read it without an engine).
from envassay.imagedata import ImageInfo as ImageInfo

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LAYER = re.compile(r"^ ---> ([0-9a-f]{12,64})$")
# The lines of a build that say which phase it is in: the image's steps that take time
# (FROM, COPY, RUN), create.sh's and envassay's own lines, errors.
_PHASE = re.compile(
    r"^(Step \d+/\d+ : (FROM|COPY|RUN) |\[([\w-]+ +)?\d+/\d+\] (FROM|COPY|RUN) |envassay-create: "
    r"|\[rattler\] |pip installing|compiling bytecode|ERROR|exporting to image)"
)
# "returned a non-zero code: 2" (classic builder), "exit code: 2" (BuildKit).
_EXIT_CODE = re.compile(r"(?:non-zero code|exit code): (\d+)")
# Every container envassay starts carries this label, so leftovers are easy to find.
CONTAINER_LABEL = "io.envassay.run"
# Connecting and the version handshake; builds and runs set their own limits.
_CONNECT_TIMEOUT = 10
_API_TIMEOUT = 600


# Containers running now (id -> engine), so that an interrupted run can end them all,
# whichever thread is waiting on each (kill_running).
_RUNNING: dict[str, Engine] = {}
_RUNNING_LOCK = threading.Lock()


def kill_running() -> int:
    """Kill every container envassay is running now; each run then ends and removes its
    container as usual. Returns how many there were."""
    with _RUNNING_LOCK:
        running = list(_RUNNING.items())
    for container, engine in running:
        with contextlib.suppress(Exception):
            engine.api.kill(container)
    return len(running)


class EngineUnavailable(UserError):
    """No Docker engine answers where we looked."""


class DockerError(EnvassayError):
    """The engine answered, but an operation failed (not the user's input)."""


class ImageBuildError(EnvassayError):
    """`docker build` failed; the message names the failing step and shows its output."""

    def __init__(
        self,
        message: str,
        *,
        step: str = "",
        output: str = "",
        log: Path | None = None,
        error: str = "",
    ):
        self.step = step
        self.output = output
        self.log = log
        self.error = error  # what the engine said
        super().__init__(message)

    @property
    def exit_code(self) -> int | None:
        """The failing RUN's exit status, as the engine reports it (None: not a RUN)."""
        match = _EXIT_CODE.search(self.error)
        return int(match.group(1)) if match else None

    @property
    def base_image(self) -> bool:
        """Whether a FROM failed: its image is not here and cannot be pulled (an engine
        lost during the FROM is a build failure, not a missing image)."""
        return (
            " FROM " in self.step
            and "stopped answering" not in self.error
            and not any(_LAYER.match(line) for line in self.output.splitlines())
        )

    @property
    def cause(self) -> str:
        """The step's own last word on why it failed: create.sh's error line, else the
        step's last output line, else the engine's message."""
        lines = [line.strip() for line in self.output.splitlines() if line.strip()]
        for line in reversed(lines):
            if line.startswith("envassay-create: error: "):
                return line[len("envassay-create: error: ") :]
        return lines[-1] if lines and not self.base_image else self.error


def engine_address() -> str:
    """Where the SDK will look for an engine: $DOCKER_HOST, else the default socket."""
    return os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET


def unavailable(reason: str) -> EngineUnavailable:
    return EngineUnavailable(
        f"no Docker engine answers at {engine_address()} ({reason})",
        hint="start one (`sudo systemctl start docker`, or `sudo dockerd &`), "
        "or point DOCKER_HOST at a running engine",
    )


@dataclass(frozen=True)
class BuildResult:
    """A finished build: the image id and the whole log."""

    image_id: str
    log: list[str] = field(default_factory=list)
    seconds: float = 0.0


class Engine:
    """A connected Docker engine. Use :func:`connect`."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.api = client.api
        self._architecture: str | None = None

    # --- facts --------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        return dict(self.api.info())

    def architecture(self) -> str:
        """The engine's machine (`uname -m` there): asked once per connection, not per env
        (`GET /info` is one of the engine's slower answers, ~10 ms)."""
        if self._architecture is None:
            self._architecture = str(self.info().get("Architecture", "x86_64"))
        return self._architecture

    def image(self, ref: str) -> ImageInfo | None:
        """The image ``ref`` (tag or id) if the engine has it, else None."""
        import docker.errors

        try:
            return ImageInfo.from_inspect(self.api.inspect_image(ref))
        except docker.errors.ImageNotFound:
            return None
        except docker.errors.APIError as exc:
            if getattr(exc, "status_code", None) == 404:
                return None
            raise DockerError(f"cannot inspect image {ref}: {exc.explanation or exc}") from None
        except _lost_connection() as exc:
            raise DockerError(f"cannot inspect image {ref}: {_gone(exc)}") from None

    def containers(self) -> list[dict[str, Any]]:
        """Every container, running or not (for leak checks)."""
        return [dict(c) for c in self.api.containers(all=True)]

    def gpu_runtime(self) -> bool:
        """Whether the engine can hand GPUs to containers (the NVIDIA runtime is registered)."""
        runtimes = self.info().get("Runtimes") or {}
        return "nvidia" in runtimes

    # --- changes ------------------------------------------------------------

    def tag(self, image: str, ref: str) -> None:
        repository, _, tag = ref.rpartition(":")
        if not repository or "/" in tag:
            repository, tag = ref, "latest"
        self.api.tag(image, repository, tag)

    def remove_image(self, ref: str, *, force: bool = True) -> None:
        """Remove the tag ``ref`` (the image too when no other tag names it). Without
        ``force``, an image a container uses is kept: a DockerError says why."""
        import docker.errors

        try:
            self.api.remove_image(ref, force=force)
        except (docker.errors.ImageNotFound, docker.errors.NotFound):
            return
        except docker.errors.APIError as exc:
            if force:
                raise
            raise DockerError(f"cannot remove {ref}: {exc.explanation or exc}") from None

    def import_rootfs(self, tarball: Path, ref: str, changes: Sequence[str] = ()) -> str:
        """`docker import` a root filesystem tarball as ``ref``; return the image id."""
        repository, _, tag = ref.rpartition(":")
        self.api.import_image_from_file(
            str(tarball), repository=repository, tag=tag, changes=list(changes)
        )
        info = self.image(ref)
        if info is None:
            raise DockerError(f"docker import of {tarball} did not produce {ref}")
        return info.id

    def build(
        self,
        context: Path,
        tag: str,
        *,
        buildargs: Mapping[str, str] | None = None,
        dockerfile: str = "Dockerfile",
        on_line: Callable[[str], None] = lambda _line: None,
        log_path: Path | None = None,
        timeout: float = 3600,
    ) -> BuildResult:
        """Build ``context`` into ``tag`` (host network for downloads, intermediates removed).

        Each output line goes to ``on_line`` and to ``log_path``. A failure raises
        :class:`ImageBuildError` naming the failing step, with that step's output.
        The untagged images a build leaves behind (earlier stages of a multi-stage
        build, the steps before a failure: hundreds of MB each) are removed.
        """
        import docker.errors

        cli = buildkit_cli()
        if cli is not None:
            return self._build_buildkit(
                cli, context, tag, buildargs or {}, dockerfile, on_line, log_path, timeout
            )
        started = time.perf_counter()
        log: list[str] = []
        step = ""
        step_lines: list[str] = []
        image_id = ""
        last_layer = ""  # the image the latest finished step produced
        leftovers: list[str] = []  # the last image of each stage but the final one
        log_file = log_path.open("w", encoding="utf-8") if log_path else None

        def emit(line: str) -> None:
            log.append(line)
            if log_file:
                log_file.write(redact.mask(line) + "\n")
                log_file.flush()
            if is_phase(line):  # the tools' own chatter is in the log only
                on_line(line)

        try:
            stream = self.api.build(
                path=str(context),
                tag=tag,
                dockerfile=dockerfile,
                buildargs=dict(buildargs or {}),
                network_mode="host",
                rm=True,
                forcerm=True,
                pull=False,
                decode=True,
                timeout=timeout,
            )
            for chunk in stream:
                if "stream" in chunk:
                    for line in _ANSI.sub("", str(chunk["stream"])).splitlines():
                        if not line.strip():
                            continue
                        if line.startswith("Step "):
                            step, step_lines = line, []
                            if " : FROM " in line and last_layer:
                                leftovers.append(last_layer)
                        else:
                            step_lines.append(line)
                            if match := _LAYER.match(line):
                                last_layer = match.group(1)
                        emit(line)
                elif "aux" in chunk and isinstance(chunk["aux"], dict):
                    image_id = str(chunk["aux"].get("ID", image_id))
                elif "error" in chunk:
                    error = str(chunk.get("error", "")).strip()
                    emit(f"ERROR: {error}")
                    self._remove_untagged([*leftovers, last_layer])
                    raise _build_error(tag, step, step_lines, error, log_path)
                elif "status" in chunk:
                    emit(str(chunk["status"]))
        except docker.errors.APIError as exc:
            message = str(exc.explanation or exc).strip()
            emit(f"ERROR: {message}")
            self._remove_untagged([*leftovers, last_layer])
            raise _build_error(tag, step, step_lines, message, log_path) from None
        except _lost_connection() as exc:  # the engine stopped (or was stopped) mid-build
            message = _gone(exc)
            emit(f"ERROR: {message}")
            raise _build_error(tag, step, step_lines, message, log_path) from None
        finally:
            if log_file:
                log_file.close()
        self._remove_untagged(leftovers)
        if not image_id:
            info = self.image(tag)
            if info is None:
                raise _build_error(tag, step, step_lines, "no image was produced", log_path)
            image_id = info.id
        return BuildResult(image_id, log, time.perf_counter() - started)

    def _build_buildkit(
        self,
        cli: Sequence[str],
        context: Path,
        tag: str,
        buildargs: Mapping[str, str],
        dockerfile: str,
        on_line: Callable[[str], None],
        log_path: Path | None,
        timeout: float,
    ) -> BuildResult:
        """As :meth:`build`, through a docker CLI with BuildKit: no container and no commit
        per instruction, stages in parallel. The arguments' values travel in the CLI's
        environment (``--build-arg NAME``), never on its command line."""
        started = time.perf_counter()
        log: list[str] = []
        parsed = _PlainProgress()
        argv = [
            *cli,
            "--progress=plain",
            "--network=host",
            "--file",
            str(context / dockerfile),
            "--tag",
            tag,
        ]
        env = {**os.environ, "DOCKER_BUILDKIT": "1", "DOCKER_CLI_HINTS": "false"}
        for name, value in buildargs.items():
            argv += ["--build-arg", name]
            env[name] = value
        argv.append(str(context))
        with contextlib.ExitStack() as stack:
            log_file = (
                stack.enter_context(log_path.open("w", encoding="utf-8")) if log_path else None
            )

            def take(raw: str) -> None:
                line = parsed.feed(_ANSI.sub("", raw.rstrip("\n")))
                if line is None:
                    return
                log.append(line)
                if log_file:
                    log_file.write(redact.mask(line) + "\n")
                    log_file.flush()
                if is_phase(line):
                    on_line(line)

            result = command.stream(argv, env=env, on_stderr_line=take, on_stdout_line=take)
        if not result.ok:
            step, lines, error = parsed.failure(result.returncode)
            raise _build_error(tag, step, lines, error, log_path)
        info = self.image(tag)
        if info is None:
            raise _build_error(tag, "", [], "no image was produced", log_path)
        return BuildResult(info.id, log, time.perf_counter() - started)

    def _remove_untagged(self, images: Sequence[str]) -> None:
        """Remove each image that no tag and no other image uses (with its untagged parents)."""
        import docker.errors

        for image in images:
            if not image:
                continue
            with contextlib.suppress(docker.errors.APIError):
                # `rmi ID` would untag and delete a tagged image (a FROM): only untagged ones.
                if not self.api.inspect_image(image).get("RepoTags"):
                    self.api.remove_image(image)  # refused while another image builds on it

    # --- running ------------------------------------------------------------

    def run(
        self,
        image: str,
        command: Sequence[str],
        *,
        stdin: str | None = None,
        timeout: float = 600,
        network: str = "none",
        user: str | None = None,
        entrypoint: Sequence[str] | None = None,
        environment: Mapping[str, str] | None = None,
        gpus: bool = False,
        limit: int | None = None,
    ) -> CommandResult:
        """`docker run --rm -i --network NETWORK IMAGE COMMAND` with ``stdin`` piped in.

        Returns exit status and output like :func:`envassay.command.run`. On timeout
        the container is killed; the container is removed in every case. Each output
        stream keeps at most ``limit`` bytes (default :data:`_OUTPUT_LIMIT`; head and
        tail, see :class:`envassay.command.Capture`).
        """
        import docker.errors
        from docker.types import DeviceRequest

        argv = ("docker", "run", "--rm", "-i", "--network", network, image, *command)
        # Least privilege: no network (unless asked), no setuid gains, and no capabilities,
        # except for an explicit root run (the image scan reads every user's files).
        privileged_scan = user in ("0", "root")
        host_config = self.api.create_host_config(
            network_mode=network,
            device_requests=[DeviceRequest(count=-1, capabilities=[["gpu"]])] if gpus else None,
            cap_drop=None if privileged_scan else ["ALL"],
            security_opt=["no-new-privileges"],
        )
        name = f"envassay-{uuid.uuid4().hex[:12]}"
        try:
            created = self.api.create_container(
                image,
                command=list(command),
                name=name,
                stdin_open=stdin is not None,
                user=user,
                entrypoint=list(entrypoint) if entrypoint is not None else None,
                environment=dict(environment) if environment else None,
                labels={CONTAINER_LABEL: "1"},
                host_config=host_config,
                network_disabled=network == "none",
            )
        except docker.errors.ImageNotFound:
            raise UserError(f"image {image} is not in the engine at {engine_address()}") from None
        except docker.errors.APIError as exc:
            raise DockerError(f"cannot create a container from {image}: {_explain(exc)}") from None
        except _lost_connection() as exc:  # as docker run says it: exit 125, the cause
            return CommandResult(argv, 125, "", f"cannot create a container: {_gone(exc)}\n")
        container = created["Id"]
        with _RUNNING_LOCK:
            _RUNNING[container] = self
        try:
            result = self._attach_and_run(container, argv, stdin, timeout, limit or _OUTPUT_LIMIT)
        except _lost_connection() as exc:
            result = CommandResult(argv, 125, "", f"the container's run was cut: {_gone(exc)}\n")
        finally:
            lost = (docker.errors.NotFound, docker.errors.APIError, *_lost_connection())
            with contextlib.suppress(*lost):
                self.api.remove_container(container, force=True)
            with _RUNNING_LOCK:
                _RUNNING.pop(container, None)
        if gpus and result.returncode == 127 and "device driver" in result.stderr:
            # The host has GPUs but the engine cannot hand them out (no NVIDIA toolkit).
            again = self.run(
                image,
                command,
                stdin=stdin,
                timeout=timeout,
                network=network,
                user=user,
                entrypoint=entrypoint,
                environment=environment,
            )
            note = f"envassay: GPUs not passed to the container: {result.stderr.strip()}\n"
            return CommandResult(
                again.args, again.returncode, again.stdout, note + again.stderr, again.timed_out
            )
        return result

    def _attach_and_run(
        self, container: str, argv: tuple[str, ...], stdin: str | None, timeout: float, limit: int
    ) -> CommandResult:
        import docker.errors

        deadline = time.monotonic() + timeout
        params = {"stdout": 1, "stderr": 1, "stream": 1, "stdin": 1 if stdin is not None else 0}
        attached = self.api.attach_socket(container, params=params)
        raw = _raw_socket(attached)
        try:
            try:
                self.api.start(container)
            except docker.errors.APIError as exc:
                return CommandResult(argv, 127, "", f"cannot start container: {_explain(exc)}")
            raw.settimeout(max(deadline - time.monotonic(), 0.1))
            if stdin is not None:
                raw.sendall(stdin.encode())
                raw.shutdown(socket.SHUT_WR)
            streams = _Demux(limit)
            timed_out = _read_until_eof(raw, deadline, streams.feed)
        finally:
            with contextlib.suppress(OSError):
                attached.close()
            with contextlib.suppress(OSError):
                raw.close()  # closing the SocketIO alone leaves the socket open (a leak)
        stdout, stderr = streams.out.text(), streams.err.text()
        if timed_out:
            with contextlib.suppress(docker.errors.APIError):
                self.api.kill(container)
            return CommandResult(argv, -9, stdout, stderr, timed_out=True)
        remaining = max(deadline - time.monotonic(), 1.0)
        status = self.api.wait(container, timeout=remaining)
        code = int(status.get("StatusCode", -1))
        error = (status.get("Error") or {}).get("Message") if isinstance(status, dict) else None
        if error:
            stderr = f"{stderr}{error}\n"
        return CommandResult(
            argv, code, stdout, stderr, stdout_cut=streams.out.cut, stderr_cut=streams.err.cut
        )


def connect() -> Engine:
    """The engine at $DOCKER_HOST (or the default socket); EngineUnavailable if none answers."""
    try:
        import docker.errors
        from docker.client import DockerClient
    except ImportError:  # pragma: no cover - docker is a dependency
        raise unavailable("the Python package `docker` is not installed") from None
    address = engine_address()
    if address.startswith("unix://"):
        # Knock first: the SDK leaks its socket when a unix socket refuses or is missing.
        reason = _knock(address[len("unix://") :])
        if reason:
            raise unavailable(reason)
    try:
        client = DockerClient.from_env(timeout=_CONNECT_TIMEOUT)
        client.api.ping()
    except docker.errors.DockerException as exc:
        raise unavailable(_short_reason(exc)) from None
    except Exception as exc:  # requests/urllib3 errors when the socket exists but is dead
        raise unavailable(_short_reason(exc)) from None
    client.api.timeout = _API_TIMEOUT
    return Engine(client)


_ENGINE: Engine | None = None


def shared_engine() -> Engine:
    """One connected engine per process (connecting costs a version handshake)."""
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = connect()
    return _ENGINE


def engine_reason() -> str | None:
    """None when an engine answers, else the one-line reason it does not."""
    try:
        shared_engine()
    except EngineUnavailable as exc:
        return exc.render()
    return None


# --- helpers ------------------------------------------------------------------


def _lost_connection() -> tuple[type[BaseException], ...]:
    """What the SDK raises when the engine goes away under it (stopped, crashed, or its
    socket removed): requests' and urllib3's errors, http.client's, a reset socket."""
    import http.client

    import requests.exceptions
    import urllib3.exceptions

    return (
        requests.exceptions.RequestException,
        urllib3.exceptions.HTTPError,
        http.client.HTTPException,
        ConnectionError,
        TimeoutError,
    )


def _gone(exc: BaseException) -> str:
    return f"the Docker engine at {engine_address()} stopped answering ({_short_reason(exc)})"


def _short_reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    for marker in ("FileNotFoundError", "ConnectionRefusedError", "PermissionError"):
        if marker in text:
            return {
                "FileNotFoundError": "the socket does not exist",
                "ConnectionRefusedError": "connection refused",
                "PermissionError": "permission denied on the socket",
            }[marker]
    return text[:200] or type(exc).__name__


def _knock(path: str) -> str:
    """Why the unix socket at ``path`` does not accept a connection ('' when it does)."""
    if not os.path.exists(path):
        return "the socket does not exist"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(_CONNECT_TIMEOUT)
        try:
            probe.connect(path)
        except PermissionError:
            return "permission denied on the socket"
        except OSError as exc:
            return exc.strerror or type(exc).__name__
    return ""


def _explain(exc: Any) -> str:
    return " ".join(str(getattr(exc, "explanation", None) or exc).split())


def _raw_socket(attached: Any) -> socket.socket:
    """The real socket under what attach_socket returns (a SocketIO over a unix socket)."""
    raw = getattr(attached, "_sock", attached)
    if not isinstance(raw, socket.socket):
        raise DockerError(f"unexpected attach socket type {type(raw).__name__}")
    return raw


def _read_until_eof(raw: socket.socket, deadline: float, feed: Callable[[bytes], None]) -> bool:
    """Hand what ``raw`` sends to ``feed`` until EOF; True when ``deadline`` came first."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return True
        raw.settimeout(left)
        try:
            chunk = raw.recv(65536)
        except TimeoutError:
            return True
        if not chunk:
            return False
        feed(chunk)


# What a container run keeps of each stream unless told: a container's output is untrusted.
_OUTPUT_LIMIT = 64 * 1024 * 1024


class _Demux:
    """Docker's multiplexed stream (8-byte frame headers) split, as it arrives, into
    bounded stdout and stderr captures."""

    def __init__(self, limit: int) -> None:
        self.out, self.err = Capture(limit), Capture(limit)
        self._pending = b""
        self._left = 0  # payload bytes still due to the current frame
        self._into = self.out

    def feed(self, data: bytes) -> None:
        data = self._pending + data
        self._pending = b""
        while data:
            if self._left:
                taken, data = data[: self._left], data[self._left :]
                self._into.feed(taken)
                self._left -= len(taken)
                continue
            if len(data) < 8:
                self._pending = data
                return
            kind, self._left = struct.unpack(">BxxxL", data[:8])
            self._into = self.err if kind == 2 else self.out
            data = data[8:]


def buildkit_cli() -> tuple[str, ...] | None:
    """A docker CLI that builds with BuildKit, as argv up to the context; None: build with
    the SDK (the classic builder). ``ENVASSAY_BUILDKIT=0`` asks for the classic builder.

    `docker buildx build --load` where buildx is installed, else a CLI from 18.09 to 22
    (their `docker build` has BuildKit built in, with DOCKER_BUILDKIT=1); the docker on
    PATH first, then Debian's /usr/bin/docker.
    """
    global _BUILDKIT
    if os.environ.get("ENVASSAY_BUILDKIT", "").strip() in ("0", "false", "no"):
        return None
    if _BUILDKIT is None:
        _BUILDKIT = (_find_buildkit_cli(),)
    return _BUILDKIT[0]


_BUILDKIT: tuple[tuple[str, ...] | None] | None = None


def _find_buildkit_cli() -> tuple[str, ...] | None:
    import shutil

    candidates = [shutil.which("docker"), "/usr/bin/docker"]
    for cli in dict.fromkeys(c for c in candidates if c and os.access(c, os.X_OK)):
        if command.run([cli, "buildx", "version"], timeout=15).ok:
            return (cli, "buildx", "build", "--load")
        version = command.run([cli, "--version"], timeout=15)
        match = re.search(r"version (\d+)\.(\d+)", version.stdout)
        if version.ok and match and (18, 9) <= (int(match[1]), int(match[2])) < (23, 0):
            return (cli, "build")
    return None


class _PlainProgress:
    """Reads BuildKit's ``--progress=plain`` lines: each vertex (a step) by number, its
    name and output; gives back the lines worth keeping (names, output, errors)."""

    _HEAD = re.compile(r"^#(\d+) \[([^\]]+)\] (.*)$")
    _EXPORT = re.compile(r"^#(\d+) (exporting to image)$")  # its DONE time is worth logging
    _OUT = re.compile(r"^#(\d+) \d+\.\d+ (.*)$")
    _ERROR = re.compile(r"^#(\d+) ERROR: (.*)$")
    _META = re.compile(r"^load metadata for (\S+)")
    _DONE = re.compile(r"^#(\d+) DONE (\d+\.\d+s)$")

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.output: dict[str, list[str]] = {}
        self.errors: dict[str, str] = {}
        self.failed = ""
        self.tail: list[str] = []  # what follows the vertices: the CLI's summary

    def feed(self, line: str) -> str | None:
        if match := self._HEAD.match(line):
            number, name = match[1], f"[{match[2]}] {match[3]}"
            if self.names.get(number) == name:
                return None
            self.names[number] = name
            return name
        if (match := self._EXPORT.match(line)) and match[1] not in self.names:
            self.names[match[1]] = match[2]
            return match[2]
        if match := self._OUT.match(line):
            self.output.setdefault(match[1], []).append(match[2])
            return match[2]
        if match := self._ERROR.match(line):
            self.errors[match[1]], self.failed = match[2], match[1]
            return f"ERROR: {match[2]}"
        if (match := self._DONE.match(line)) and match[1] in self.names:
            return f"done in {match[2]}: {self.names[match[1]]}"  # the log's timings
        if line.startswith("#") or not line.strip():
            return None  # CACHED, digests, transfer counters
        self.tail.append(line)
        return line

    def failure(self, returncode: int) -> tuple[str, list[str], str]:
        """(the failed step, its output, the error) once the CLI exited ``returncode``."""
        name = self.names.get(self.failed, "")
        if meta := self._META.match(name.split("] ", 1)[-1] if name else ""):
            name = f"[{name[1:].split(']', 1)[0]}] FROM {meta[1]}"  # a base image
        error = self.errors.get(self.failed) or next(
            (line for line in reversed(self.tail) if line.strip() and line != "------"),
            f"docker build exited {returncode}",
        )
        return name, self.output.get(self.failed, []), error


def is_phase(line: str) -> bool:
    """Whether a build output line starts a phase (shown as progress; all go to the log)."""
    return bool(_PHASE.match(line))


def _build_error(
    tag: str, step: str, lines: list[str], error: str, log_path: Path | None
) -> ImageBuildError:
    shown = "\n".join(f"  | {line}" for line in lines[-40:]) or "  | (no output)"
    where = f" at {step}" if step else ""
    log = f"\nfull build log: {log_path}" if log_path else ""
    message = f"docker build of {tag} failed{where}: {error}\n{shown}{log}"
    return ImageBuildError(message, step=step, output="\n".join(lines), log=log_path, error=error)
