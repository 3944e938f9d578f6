"""Container images of an env: plan, build context, content-hash tag, build-or-reuse, facts.

An image is built from ``assets/Dockerfile`` (multi-stage: a miniconda-family
builder creates the env at a fixed prefix from the lock or the spec; a runtime
stage copies the prefix and runs as a non-root user). Its tag is
``envassay/NAME:HASH``, the hash covering everything that decides what the image
contains: the spec's meaning, the lock, local channels' repodata, the Dockerfile
and the build arguments. An existing tag is never rebuilt. Every Docker call
goes through :mod:`envassay.docker`.
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shlex
import shutil
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from envassay import __version__, redact
from envassay.command import run
from envassay.docker import Engine, ImageBuildError, ImageInfo, shared_engine
from envassay.errors import EnvassayError, UserError
from envassay.lock.format import read_lock
from envassay.lock.status import LockStatus, lock_for_create
from envassay.spec.config import CREATORS, Config, EnvSettings
from envassay.spec.environment import EnvSpec
from envassay.spec.gpu import expectation
from envassay.spec.resolve import resolve_channels
from envassay.store import StoreLayout, build_once
from envassay.store.images import ImageRecord, record_build
from envassay.store.images import builds as store_builds
from envassay.store_layout import CONTEXT_PREFIX
from envassay.targets import first_found
from envassay.yamlload import read_yaml

Progress = Callable[[str], None]

DEFAULT_BUILDER_IMAGE = "continuumio/miniconda3:24.7.1-0"
DEFAULT_RUNTIME_IMAGE = "debian:bookworm-20240722-slim"
ENV_PREFIX = "/opt/env"
USER_NAME = "envassay"
USER_UID = "1000"
# Label keys envassay writes and reads.
LABEL_SPEC_NAME = "io.envassay.spec.name"
LABEL_SPEC_HASH = "io.envassay.spec.hash"
LABEL_LOCK_HASH = "io.envassay.lock.hash"
LABEL_PREFIX = "io.envassay.prefix"
OCI_LABELS = (
    "org.opencontainers.image.source",
    "org.opencontainers.image.revision",
    "org.opencontainers.image.created",
)
_ARCH_SUBDIRS = {
    "x86_64": "linux-64",
    "amd64": "linux-64",
    "aarch64": "linux-aarch64",
    "arm64": "linux-aarch64",
    "ppc64le": "linux-ppc64le",
}


class ImageError(EnvassayError):
    """An image could not be prepared for a reason that is not the user's input."""


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class ImageOptions:
    """How to build: the images, the creator and the fixed prefix."""

    builder_image: str = DEFAULT_BUILDER_IMAGE
    runtime_image: str = DEFAULT_RUNTIME_IMAGE
    creator: str = "conda"
    prefix: str = ENV_PREFIX


def creator_for(builder_image: str) -> str:
    """The creator a builder image implies: its own tool for the miniconda family, else envassay."""
    name = builder_image.rsplit("/", 1)[-1].lower()
    if "micromamba" in name:
        return "micromamba"
    if "miniforge" in name or "mambaforge" in name:
        return "mamba"
    if "miniconda" in name or "anaconda" in name:
        return "conda"
    return "envassay"


def resolve_options(
    settings: EnvSettings,
    *,
    builder_image: str | None = None,
    runtime_image: str | None = None,
    creator: str | None = None,
) -> ImageOptions:
    """Command-line values win over `[tool.envassay.envs.NAME]`, which wins over defaults."""
    builder = builder_image or settings.builder_image or DEFAULT_BUILDER_IMAGE
    chosen = creator or creator_for(builder)
    if chosen not in CREATORS:
        raise UserError(f"Expected creator one of {list(CREATORS)}, but got {chosen!r}")
    # An envassay-created env may lean on the builder's system libraries: run it there.
    default_runtime = builder if chosen == "envassay" else DEFAULT_RUNTIME_IMAGE
    runtime = runtime_image or settings.runtime_image or default_runtime
    return ImageOptions(builder, runtime, chosen)


def expects_gpu(spec: EnvSpec, settings: EnvSettings) -> bool:
    """Whether the env wants a GPU (the same expectation as the gpu[...] checks)."""

    return expectation(spec, settings).level != "none"


def host_has_gpu() -> bool:
    return Path("/dev/nvidiactl").exists() or shutil.which("nvidia-smi") is not None


# --------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class ImagePlan:
    """Everything a build needs, and the content hash that names its image."""

    spec: EnvSpec
    options: ImageOptions
    platform: str
    channels: tuple[str, ...]
    lock_path: Path | None
    lock_hash: str
    digest: str
    inputs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"envassay/{repository_name(self.spec.name)}:{self.digest[:16]}"


def repository_name(name: str) -> str:
    """A spec name as a Docker repository path component (lowercase, [a-z0-9._-])."""
    cleaned = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("._-")
    return cleaned or "env"


def usable_lock(
    spec: EnvSpec, config: Config, platform: str, status: LockStatus | None = None
) -> tuple[Path | None, str]:
    """The lock a build installs (a fresh one, with ``platform``) and its digest; else (None, "").

    As for native creates: a stale or missing lock means the spec is solved; a fresh
    lock without ``platform`` is the user's to fix (LockError, exit 2). ``status``: the
    spec's lock status when the caller has read it already (it is not read again).
    """
    status = lock_for_create(spec, config, platform, status)
    if status.fresh and status.lock is not None:
        return status.lock_path, status.lock.digest(platform)
    return None, ""


def engine_platform(engine: Engine) -> str:
    arch = engine.architecture()
    return _ARCH_SUBDIRS.get(arch, f"linux-{arch}")


def plan_image(
    spec: EnvSpec,
    config: Config,
    options: ImageOptions,
    platform: str,
    status: LockStatus | None = None,
) -> ImagePlan:
    """Decide the build (no Docker call, no copying): inputs and the content hash."""
    channels = resolve_channels(spec, config)
    lock, locked = usable_lock(spec, config, platform, status)
    assets = {name: _sha256(_asset(name).encode()) for name in _ASSETS}
    inputs: dict[str, Any] = {
        "assets": assets,
        "spec": spec.content_hash,
        "lock": locked,
        # Keyed by meaning: a rotated password or token is the same image.
        "channels": {redact.neutral(url): _channel_digest(url, platform) for url in channels},
        "args": {
            "BUILDER_IMAGE": options.builder_image,
            "RUNTIME_IMAGE": options.runtime_image,
            "CREATOR": options.creator,
            "ENV_PREFIX": options.prefix,
            "USER_NAME": USER_NAME,
            "USER_UID": USER_UID,
        },
        "platform": platform,
    }
    if options.creator == "envassay":
        inputs["tool"] = {"envassay": __version__, "py-rattler": _version("py-rattler")}
    digest = _sha256(json.dumps(inputs, sort_keys=True).encode())
    return ImagePlan(spec, options, platform, channels, lock, locked, digest, inputs)


_ASSETS = ("Dockerfile", "dockerignore", "create.sh")


def _asset(name: str) -> str:
    return files("envassay.assets").joinpath(name).read_text(encoding="utf-8")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return ""


def _channel_dir(url: str) -> Path | None:
    return Path(url[len("file://") :]) if url.startswith("file://") else None


def _channel_digest(url: str, platform: str) -> str:
    """For a local channel, the hash of its repodata (what a solve can see); else ''."""
    local = _channel_dir(url)
    if local is None:
        return ""
    digest = hashlib.sha256()
    for subdir in ("noarch", platform):
        repodata = local / subdir / "repodata.json"
        digest.update(repodata.read_bytes() if repodata.is_file() else b"-")
    return digest.hexdigest()


# --------------------------------------------------------------------------- context


def assemble_context(plan: ImagePlan, dest: Path, wheel_cache: Path) -> dict[str, str]:
    """Write the build context into ``dest``; return the build arguments."""
    ctx = dest / "envassay"
    (ctx / "env").mkdir(parents=True)
    (dest / "Dockerfile").write_text(_asset("Dockerfile"))
    (dest / ".dockerignore").write_text(_asset("dockerignore"))
    (ctx / "create.sh").write_text(_asset("create.sh"))
    secrets: dict[str, str] = {}  # the ${VAR}s the context names instead of a credential
    (ctx / "env" / "environment.yml").write_text(_context_spec(plan, ctx, secrets))
    # The channels a conda >= 26 gets as `--override-channels -c ...` (create.sh).
    (ctx / "env" / "channels.txt").write_text(
        "".join(f"{redact.placeholders(url, taken=secrets)}\n" for url in plan.channels)
    )
    channel_urls = list(plan.channels)
    if plan.lock_path is not None:
        shutil.copyfile(plan.lock_path, ctx / "env" / "environment.conda-lock.yml")
        explicit, pip_lines, lock_channels = _explicit_files(plan, ctx)
        (ctx / "env" / "explicit.txt").write_text(explicit)
        (ctx / "env" / "pip-lock.txt").write_text(pip_lines)
        channel_urls += [c for c in lock_channels if c not in channel_urls]
    _copy_channels(channel_urls, ctx)
    if plan.options.creator == "envassay":
        # Deferred: only a build needs the wheelhouse (zipfile, importlib.metadata).
        from envassay.targets.wheelhouse import tool_wheels

        tool_wheels(ctx / "wheels", wheel_cache)
    return {
        "BUILDER_IMAGE": plan.options.builder_image,
        "RUNTIME_IMAGE": plan.options.runtime_image,
        "CREATOR": plan.options.creator,
        "ENV_PREFIX": plan.options.prefix,
        "USER_NAME": USER_NAME,
        "USER_UID": USER_UID,
        "SPEC_NAME": plan.spec.name,
        "SPEC_HASH": plan.spec.content_hash,
        "LOCK_HASH": plan.lock_hash,
        "ENVASSAY_SECRETS": _builder_secrets(plan, secrets),
    }


def _builder_secrets(plan: ImagePlan, values: dict[str, str]) -> str:
    """The credentials the context's spec names as ``${VAR}``, for the builder stage only
    (a build argument that create.sh reads; the context holds no secret)."""
    texts = [*plan.channels, *(r.text for r in plan.spec.pip if r.kind == "option")]
    for name in redact.placeholder_names("\n".join(texts)):  # the user's own ${VAR}s
        if name not in os.environ:
            raise UserError(f"the spec names ${{{name}}}, which is not set", where=plan.spec.path)
        values[name] = os.environ[name]
    if values and plan.options.creator != "envassay":
        raise UserError(
            f"channel or index credentials reach the builder only with creator envassay, "
            f"not {plan.options.creator}",
            where=plan.spec.path,
            hint="build with --creator envassay, or put the credentials in the builder "
            "image's own conda config",
        )
    # Percent-encoded (the same credential to every tool): pip expands ${VAR} before it
    # splits a line, and would read a raw quote, ';' or '#' in a value as syntax.
    lines = "".join(
        f"export {name}={shlex.quote(redact.encode_credential(value))}\n"
        for name, value in values.items()
    )
    return base64.b64encode(lines.encode()).decode() if lines else ""


def _context_spec(plan: ImagePlan, ctx: Path, secrets: dict[str, str]) -> str:
    """The spec as the builder reads it: resolved channels, no `prefix:`, local pip paths copied."""
    spec = plan.spec
    data, _lines = read_yaml(spec.path)  # as the spec was read: UTF-16 too
    data["name"] = spec.name
    # The channels are the host's effective ones (the host's condarc already applied):
    # `nodefaults` keeps the builder's rc channels out. conda, mamba and envassay read it
    # so (create.sh gives conda >= 26 the channels instead); micromamba as a channel name.
    nodefaults = spec.nodefaults or plan.options.creator in ("conda", "mamba", "envassay")
    # Credentials as ${VAR} (what ENVASSAY_SECRETS sets): the context holds none.
    channels = [redact.placeholders(url, taken=secrets) for url in plan.channels]
    data["channels"] = [*channels, *(["nodefaults"] if nodefaults else [])]
    data.pop("prefix", None)
    # An installer section other than pip: (`- npm: [...]`) installs nothing, as conda 26
    # reads it; an older conda in the builder would stop at it.
    data["dependencies"] = [
        {"pip": item["pip"]} if isinstance(item, dict) else item
        for item in data.get("dependencies") or []
        if not isinstance(item, dict) or "pip" in item
    ]
    for item in data["dependencies"]:
        if isinstance(item, dict) and isinstance(item.get("pip"), list):
            lines = [_context_pip_line(str(line), spec, ctx) for line in item["pip"]]
            # An index's password as ${VAR}: pip expands it (create.sh exports it).
            item["pip"] = [redact.placeholders(line, taken=secrets) for line in lines]
    return yaml.safe_dump(data, sort_keys=False)


def _context_pip_line(line: str, spec: EnvSpec, ctx: Path) -> str:
    """Local paths in the pip: section are copied into the context and renamed there."""
    text = line.strip()
    head, _, rest = text.partition(" ")
    if head in ("-r", "--requirement", "-e", "--editable"):
        raise UserError(
            f"pip line {text!r} refers to a local file that a container build cannot see",
            where=spec.path,
            hint="use a package name, a URL, or a wheel path",
        )
    if head in ("--find-links", "-f") and rest and "://" not in rest:
        return f"{head} {_copy_pip_path(rest.strip(), spec, ctx)}"
    if head.startswith("--find-links=") and "://" not in head:
        return f"--find-links {_copy_pip_path(head.split('=', 1)[1], spec, ctx)}"
    if text.startswith((".", "/", "~")):
        return _copy_pip_path(text, spec, ctx)
    return text


def _copy_pip_path(target: str, spec: EnvSpec, ctx: Path) -> str:
    source = (spec.path.parent / Path(target).expanduser()).resolve()
    if not source.exists():
        raise UserError(f"pip path {target} does not exist", where=spec.path)
    pip_dir = ctx / "pip"
    index = len(list(pip_dir.iterdir())) if pip_dir.is_dir() else 0
    dest = pip_dir / str(index) / source.name
    dest.parent.mkdir(parents=True)
    if source.is_dir():
        shutil.copytree(source, dest)
    else:
        shutil.copy2(source, dest)
    return f"/envassay-ctx/pip/{index}/{source.name}"


def _explicit_files(plan: ImagePlan, ctx: Path) -> tuple[str, str, list[str]]:
    """The lock as conda/mamba read it: an @EXPLICIT list, and pinned pip URLs (a local
    ``file://`` one is copied into the context, which the builder can see)."""

    assert plan.lock_path is not None
    lock = read_lock(plan.lock_path)
    explicit = ["@EXPLICIT"]
    pip_lines: list[str] = []
    channels: list[str] = []
    for package in lock.packages_for(plan.platform):
        if package.manager == "conda":
            explicit.append(f"{package.url}#{package.md5}" if package.md5 else package.url)
            if package.channel and package.channel not in channels:
                channels.append(package.channel)
        else:
            suffix = f"#sha256={package.sha256}" if package.sha256 else ""
            url = package.url.split("#", 1)[0]
            if url.startswith("file://"):
                local = urllib.parse.unquote(url[len("file://") :])
                url = "file://" + _copy_pip_path(local, plan.spec, ctx)
            pip_lines.append(f"{package.name} @ {url}{suffix}")
    return "\n".join(explicit) + "\n", "".join(f"{line}\n" for line in pip_lines), channels


def _copy_channels(urls: list[str], ctx: Path) -> None:
    """Copy local channels into the context; create.sh mounts them at their host paths."""
    lines = []
    for index, url in enumerate(u for u in urls if u.startswith("file://")):
        source = _channel_dir(url)
        assert source is not None
        name = f"c{index}"
        shutil.copytree(
            source.resolve(),
            ctx / "channels" / name,
            ignore=shutil.ignore_patterns(".tmp", ".cache", "*.lock", ".envassay-*"),
            copy_function=_link_or_copy,
        )
        lines.append(f"{name}\t{source}\n")
    if lines:
        (ctx / "channels.txt").write_text("".join(lines))


def _link_or_copy(src: str, dst: str) -> None:
    try:
        Path(dst).hardlink_to(src)
    except OSError:
        shutil.copy2(src, dst)


# --------------------------------------------------------------------------- building


@dataclass(frozen=True)
class ImageResult:
    """An image ready to run: built now, or reused because its tag existed."""

    ref: str
    reused: bool
    seconds: float
    info: ImageInfo
    log_path: Path | None = None


def ensure_image(
    plan: ImagePlan,
    store_root: Path,
    *,
    engine: Engine | None = None,
    progress: Progress = lambda _line: None,
    project: Path | None = None,
) -> ImageResult:
    """Return the image for ``plan``, building it only when its tag does not exist.
    ``project``: the project it is built for, in the store's record of the build."""
    engine = engine or shared_engine()
    started = time.perf_counter()
    ref = plan.ref
    layout = StoreLayout.at(store_root)

    def reused() -> ImageResult | None:
        info = engine.image(ref)
        return None if info is None else ImageResult(ref, True, time.perf_counter() - started, info)

    return build_once(
        layout.lock(StoreLayout.image_key(plan.digest)),
        reused,
        lambda: _make_image(plan, layout, engine, progress, started, project),
    )


def _make_image(
    plan: ImagePlan,
    layout: StoreLayout,
    engine: Engine,
    progress: Progress,
    started: float,
    project: Path | None,
) -> ImageResult:
    ref = plan.ref
    log_path = layout.build_log(repository_name(plan.spec.name), plan.digest)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=CONTEXT_PREFIX, dir=layout.contexts) as tmp:
        context = Path(tmp)
        buildargs = assemble_context(plan, context, layout.cache.wheels)
        buildargs.update(_provenance(plan))
        progress(f"building {ref} from {plan.options.builder_image} ({plan.options.creator})")
        try:
            result = engine.build(
                context, ref, buildargs=buildargs, on_line=progress, log_path=log_path
            )
        except ImageBuildError as exc:
            raise _input_error(exc, plan) or exc from None
    info = engine.image(ref)
    if info is None:
        raise ImageError(f"the build of {ref} finished but the engine has no such image")
    seconds = time.perf_counter() - started
    record_build(layout, ImageRecord.built(ref, info.id, plan.spec.path, project, seconds))
    progress(f"built {ref} in {seconds:.1f}s (build {result.seconds:.1f}s)")
    return ImageResult(ref, False, seconds, info, log_path)


def _input_error(exc: ImageBuildError, plan: ImagePlan) -> UserError | None:
    """A failed build that is the user's to fix, as natively (exit 2, one line): a base
    image that is neither here nor pullable, or a create that says the spec's channel or
    index cannot be read or the spec cannot be solved (create.sh exits 2 for those)."""
    log = f"; full build log: {exc.log}" if exc.log else ""
    if exc.base_image:
        return UserError(
            f"image build failed at {exc.step}: {exc.error}",
            where=plan.spec.path,
            hint=f"build or load the image, or name another with --builder-image / "
            f"--runtime-image{log}",
            details=exc.output,
        )
    if exc.exit_code == 2 and "create.sh" in exc.step:
        return UserError(
            f"image build failed at {_step_label(exc.step)} (create.sh): {exc.cause}",
            where=plan.spec.path,
            hint=f"as natively: fix the spec or its channels{log}",
            details="\n".join(_tool_lines(exc.output)[-40:]),
        )
    return None


def _step_label(step: str) -> str:
    """ "Step 6/17" (classic builder) or "[builder 4/4]" (BuildKit) of a step's line."""
    match = re.match(r"(Step \d+/\d+|\[[^\]]+\])", step)
    return match.group(1) if match else step


def _tool_lines(output: str) -> list[str]:
    """A step's output without the engine's own lines (containers made and removed)."""
    return [
        line
        for line in output.splitlines()
        if not line.startswith((" ---> ", "Removing intermediate container"))
    ]


def _provenance(plan: ImagePlan) -> dict[str, str]:
    """OCI source, revision and created: metadata, not part of the content hash."""
    root = plan.spec.path.parent
    revision = run(["git", "-C", root, "rev-parse", "HEAD"], timeout=10)
    remote = run(["git", "-C", root, "remote", "get-url", "origin"], timeout=10)
    toplevel = run(["git", "-C", root, "rev-parse", "--show-toplevel"], timeout=10)
    if remote.ok and remote.stdout.strip():
        source = remote.stdout.strip()
    elif toplevel.ok and toplevel.stdout.strip():
        source = Path(toplevel.stdout.strip()).as_uri()
    else:
        source = root.resolve().as_uri()
    return {
        "SOURCE": source,
        "REVISION": revision.stdout.strip() if revision.ok else "unknown",
        "CREATED": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def builds(store_root: Path) -> list[dict[str, Any]]:
    """Every image build the store recorded (reuses record nothing)."""
    return store_builds(StoreLayout.at(store_root))


# --------------------------------------------------------------------------- facts


@dataclass(frozen=True)
class PlainRun:
    """``docker run IMAGE python -c ...`` as a user would type it: who ran, which python."""

    ok: bool
    error: str = ""
    uid: int | None = None
    user: str = ""
    home: str = ""
    prefix: str = ""
    executable: str = ""


@dataclass(frozen=True)
class ImageFacts:
    """What the image checks judge: its config, a plain run, and a filesystem scan."""

    ref: str
    info: ImageInfo
    prefix: str
    plain: PlainRun
    scan: Mapping[str, Any] | None
    scan_error: str = ""


_PLAIN_SCRIPT = (
    "import json, os, sys, getpass; "
    "print(json.dumps({'uid': os.getuid(), 'user': getpass.getuser(), "
    "'home': os.path.expanduser('~'), 'prefix': sys.prefix, 'executable': sys.executable}))"
)


def env_prefix(info: ImageInfo) -> str:
    """Where the image's env lives: envassay's label, else CONDA_PREFIX, else ''."""
    return info.labels.get(LABEL_PREFIX) or info.env.get("CONDA_PREFIX", "")


def image_pythons(info: ImageInfo) -> tuple[str, ...]:
    """The interpreters to judge, first found wins: the env's, else the image's ``python``
    on its PATH (what its users run), else ``python3`` (Debian's python3 package installs
    no ``python``; a venv, a conda env or a python image has both)."""
    prefix = env_prefix(info)
    return (f"{prefix}/bin/python",) if prefix else ("python", "python3")


def gather_facts(
    engine: Engine, ref: str, info: ImageInfo, timeout: float = 120, *, keep: Path | None = None
) -> ImageFacts:
    """Run the plain `python -c` and the root scan side by side; both containers are removed.

    With ``keep`` (a directory), the facts of an image whose runs both succeeded are kept
    there under its id, and read back instead of running them again: an image id names
    its filesystem and its config, and the scripts are part of the key. Failures are
    never kept (a broken image, or an engine fault, is judged afresh each time).
    """
    path = _kept_facts_path(keep, info) if keep is not None else None
    if path is not None and (kept := _read_kept_facts(path)) is not None:
        return ImageFacts(ref, info, env_prefix(info), *kept)
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        plain_future = pool.submit(_plain_run, engine, ref, timeout)
        scan_future = pool.submit(_scan, engine, ref, info, timeout)
        plain = plain_future.result()
        scan, scan_error = scan_future.result()
    if path is not None and plain.ok and scan is not None:
        _keep_facts(path, plain, scan)
    return ImageFacts(ref, info, env_prefix(info), plain, scan, scan_error)


# Bumped when what is kept changes meaning (PlainRun's fields, how the scan is read).
_KEPT_FACTS_FORMAT = 1


def _scan_request(info: ImageInfo) -> str:
    return json.dumps({"user": info.user, "home": info.env.get("HOME", "")})


def _kept_facts_path(keep: Path, info: ImageInfo) -> Path | None:
    """Where the facts of ``info``'s image are kept: named by the image id, the scripts
    that gather them and their arguments. None for an image without an id."""
    if not info.id:
        return None
    key = {
        "format": _KEPT_FACTS_FORMAT,
        "image": info.id,
        "plain": _PLAIN_SCRIPT,
        "scan": _sha256(_asset("imagefacts.py").encode()),
        "request": _scan_request(info),
        "python": list(image_pythons(info)),
    }
    return keep / f"{_sha256(json.dumps(key, sort_keys=True).encode())[:32]}.json"


def _read_kept_facts(path: Path) -> tuple[PlainRun, dict[str, Any]] | None:
    """The kept (plain run, scan) at ``path``; None when there is none or it is unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        plain = PlainRun(**data["plain"])
        scan = data["scan"]
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if not plain.ok or not isinstance(scan, dict):
        return None
    return plain, scan


def _keep_facts(path: Path, plain: PlainRun, scan: Mapping[str, Any]) -> None:
    """Write the facts whole (a temporary file renamed over the path); a store that cannot
    be written only means the next check gathers them again."""
    data = json.dumps({"plain": dataclasses.asdict(plain), "scan": dict(scan)})
    temporary: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(data)
        os.replace(temporary, path)
    except OSError:
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)


def _plain_run(engine: Engine, ref: str, timeout: float) -> PlainRun:
    result = engine.run(ref, ["python", "-c", _PLAIN_SCRIPT], timeout=timeout)
    if not result.ok:
        return PlainRun(False, error=result.describe())
    try:
        data = json.loads(result.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        return PlainRun(False, error=f"unexpected output: {result.stdout[-300:]!r}")
    return PlainRun(
        True,
        uid=int(data["uid"]),
        user=str(data["user"]),
        home=str(data["home"]),
        prefix=str(data["prefix"]),
        executable=str(data["executable"]),
    )


def _scan(
    engine: Engine, ref: str, info: ImageInfo, timeout: float
) -> tuple[dict[str, Any] | None, str]:
    """The filesystem scan, as root (to see /root) with the env's python as entrypoint."""
    _, result = first_found(
        lambda python: engine.run(
            ref,
            ["-", _scan_request(info)],
            stdin=_asset("imagefacts.py"),
            user="0",
            entrypoint=[python],
            timeout=timeout,
        ),
        image_pythons(info),
    )
    if not result.ok:
        return None, result.describe()
    try:
        return dict(json.loads(result.stdout)), ""
    except json.JSONDecodeError:
        return None, f"unexpected output: {result.stdout[-300:]!r}"
