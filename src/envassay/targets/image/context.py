"""The build context of a plan: the Dockerfiles and create.sh from ``assets/``, the spec
as the builder reads it, the lock as conda reads it, copies of local channels and pip
paths, and the build arguments (credentials as ``${VAR}``, never in the context)."""

from __future__ import annotations

import base64
import os
import shlex
import shutil
import urllib.parse
from pathlib import Path

import yaml

from envassay import redact
from envassay.activation import RESERVED, UNSET
from envassay.errors import UserError
from envassay.lock.format import read_lock
from envassay.spec.environment import EnvSpec
from envassay.targets.image.options import USER_NAME, USER_UID
from envassay.targets.image.plan import ImagePlan, _asset, _channel_dir
from envassay.yamlload import read_yaml


def assemble_context(plan: ImagePlan, dest: Path, wheel_cache: Path) -> dict[str, str]:
    """Write the build context into ``dest``; return the build arguments."""
    ctx = dest / "envassay"
    (ctx / "env").mkdir(parents=True)
    variables = image_variables(plan.spec)
    (dest / "Dockerfile").write_text(with_variables(_asset("Dockerfile"), variables))
    (dest / "Dockerfile.buildkit").write_text(
        with_variables(_asset("Dockerfile.buildkit"), variables)
    )
    (dest / ".dockerignore").write_text(_asset("dockerignore"))
    (ctx / "create.sh").write_text(_asset("create.sh"))
    (ctx / "finish.py").write_text(_asset("finish.py"))
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
        **{_variable_arg(i): value for i, value in enumerate(variables.values())},
    }


# Where the final stage takes the spec's variables (before it becomes the image's user).
VARIABLES_MARK = "# envassay: the spec's variables\n"


def image_variables(spec: EnvSpec) -> dict[str, str]:
    """The spec's variables an activated env would have (conda's rules, activation.py):
    the image sets them, as it sets PATH, so `docker run IMAGE python` sees them."""
    return {k: v for k, v in spec.variables.items() if k not in RESERVED and v != UNSET}


def with_variables(dockerfile: str, variables: dict[str, str]) -> str:
    """``dockerfile`` with an ``ENV`` of ``variables`` at its mark. Each value comes in as
    a build argument, never as Dockerfile text: a value cannot add an instruction."""
    if not variables:
        return dockerfile
    names = [_variable_arg(i) for i in range(len(variables))]
    lines = f"ARG {' '.join(names)}\nENV " + " \\\n    ".join(
        f'{name}="${{{arg}}}"' for name, arg in zip(variables, names, strict=True)
    )
    return dockerfile.replace(VARIABLES_MARK, VARIABLES_MARK + lines + "\n", 1)


def _variable_arg(index: int) -> str:
    return f"ENVASSAY_VARIABLE_{index}"


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
