"""conda, mamba and micromamba as backends: one class, three flavours.

The tool creates the prefix (solve, link, and the spec's pip: section as it
does it itself); envassay writes its input files, runs it (command lines:
:mod:`envassay.create.backends.commands`), and turns its failures into envassay's
errors. The env store (build at the final path, marker last, lock) is the same
as for every backend.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from envassay import command, credentials, redact
from envassay.create.backends import commands, conda_auth, conda_cache
from envassay.create.backends.base import CreateRequest, CreateResult
from envassay.create.backends.commands import Invocation
from envassay.create.backends.linked import check_linked
from envassay.create.backends.pip_stage import install_locked_pip, install_pip_section
from envassay.create.backends.tools import Flavour, Tool, search, tool_version
from envassay.errors import CreateError, EnvassayError, SolveError, UserError
from envassay.lock.format import LockedEnv, LockedPackage
from envassay.progress import Progress
from envassay.spec.environment import EnvSpec, requirement_lines
from envassay.store import path_label

PIP_NOTE = "added `pip` to the conda dependencies for the pip: section, as conda does"


class CondaBackend:
    """A conda-family CLI: ``conda``, ``mamba`` or ``micromamba``."""

    def __init__(self, flavour: Flavour, path: Path) -> None:
        self.name: str = flavour
        self.flavour = flavour
        self.path = path
        self._tool: Tool | None = None

    @classmethod
    def find(cls, flavour: Flavour, environ: Mapping[str, str] | None = None) -> CondaBackend:
        """The backend for ``flavour``; ToolMissing (exit 2) when it is not installed.

        Starts nothing: the version is asked only when an env is really created, so a
        warm run that reuses every env from the store costs no `conda --version`.
        """
        found = search(flavour, environ)
        if found.found is None:
            raise found.missing_error()
        return cls(flavour, found.found)

    @property
    def tool(self) -> Tool:
        if self._tool is None:
            self._tool = Tool(self.flavour, self.path, tool_version(self.path))
        return self._tool

    def create(self, request: CreateRequest, progress: Progress) -> CreateResult:
        spec, prefix = request.spec, request.prefix
        notes = [f"created by {self.tool.describe()}"]
        if spec.has_pip_section and not spec.declares_pip:
            notes.append(PIP_NOTE)
            progress(PIP_NOTE)
        _remove_if_empty(prefix)  # micromamba refuses a "non-conda folder" at the prefix
        pkgs = conda_cache.private_pkgs_dir(request.cache_dir, self.name, request.channels)
        channels, tokens = conda_auth.split_token_users(request.channels)
        request = dataclasses.replace(request, channels=channels)
        with (
            tempfile.TemporaryDirectory(prefix=f"envassay-{self.name}-") as tmp,
            conda_auth.netrc_environ(tokens, os.environ) as netrc,
        ):
            invocation, inputs = self.plan(request, Path(tmp))
            env = {**invocation.env, **netrc}
            if pkgs is not None:  # credentialed channels: conda's records stay in the store
                env[conda_cache.PKGS_VARIABLE] = str(pkgs)
            invocation = dataclasses.replace(invocation, env=env)
            progress(f"running {self.tool.describe()}: {shlex.join(invocation.argv)}")
            started = time.perf_counter()
            try:
                result = run_tool(invocation, self.name, progress)
            finally:
                if pkgs is not None:
                    conda_cache.scrub(pkgs)
            seconds = time.perf_counter() - started
            if not result.ok:
                raise tool_failure(self.tool, invocation, result, inputs, request)
        if not (prefix / "conda-meta").is_dir():
            text = transcript(self.tool, invocation, result, inputs)
            raise CreateError(f"{self.tool.describe()} exited 0 but made no env: {prefix}\n{text}")
        check_linked(prefix, self.tool.describe())  # the tool linked unchecked: look now
        conda_cache.scrub_prefix(prefix)
        pip_seconds = self.pip_after(request, progress, notes)
        return CreateResult(
            records=installed_records(prefix),
            link_seconds=seconds,
            pip_seconds=pip_seconds,
            notes=notes,
        )

    def plan(self, request: CreateRequest, tmp: Path) -> tuple[Invocation, dict[Path, str]]:
        """The tool run for ``request`` and the input files written for it (path -> text)."""
        spec, locked, tool = request.spec, request.locked, self.tool
        if locked is None:
            # Not named after the spec: micromamba reads any `*-lock.yml` as a conda-lock file.
            env_file = tmp / "environment.yml"
            channels = commands.file_channels(tool, request.channels, request.file_channels)
            text = environment_file(spec, channels)
            # Credentials as ${VAR} (conda expands them in the file, pip in the requirements
            # conda writes for it): the temporary file holds no secret.
            text, hidden = redact.hide(text)
            env_file.write_text(text, encoding="utf-8")
            invocation = commands.create_from_spec(
                tool, request.prefix, env_file, request.channels, spec.path.parent.resolve()
            )
            if hidden:
                invocation = dataclasses.replace(invocation, env={**invocation.env, **hidden})
            inputs = {env_file: text}
            by_name = tool.style == "conda" and not commands.spec_via_create(tool)
            if by_name and (condarc := channel_names_condarc(spec, invocation)):
                path = tmp / "condarc"  # conda reads $CONDARC only under this name
                path.write_text(condarc, encoding="utf-8")
                env = {**invocation.env, "CONDARC": str(path)}
                invocation = dataclasses.replace(invocation, env=env)
                inputs[path] = condarc
            return invocation, inputs
        lock_dir = locked.lock_path.parent.resolve()
        if tool.style == "libmamba":
            lock_file = locked.lock_path.resolve()
            return commands.create_from_lock(tool, request.prefix, lock_file, lock_dir), {}
        explicit = tmp / f"{path_label(spec.name)}-{locked.platform}.explicit.txt"
        text = explicit_file(locked, request.channels)
        explicit.write_text(text, encoding="utf-8")
        return commands.create_from_explicit(tool, request.prefix, explicit, lock_dir), {
            explicit: text
        }

    def pip_after(self, request: CreateRequest, progress: Progress, notes: list[str]) -> float:
        """What the tool left to envassay: a lock's pip entries (conda style), or the
        spec's pip: section when the lock could not resolve it for this platform."""
        locked = request.locked
        if locked is None:
            return 0.0  # the tool ran the pip: section itself, as it does for environment.yml
        if not locked.pip_resolved:
            notes.append(
                f"the lock's pip: part could not be resolved for {locked.platform}; "
                "installed the pip: section from the spec instead"
            )
            progress(notes[-1])
            return install_pip_section(request.spec, request.prefix, progress)
        if self.tool.style == "conda":
            return install_locked_pip(request.spec, locked.pip, request.prefix, progress)
        return 0.0  # micromamba installed the lock's pip entries itself


def run_tool(invocation: Invocation, name: str, progress: Progress) -> command.CommandResult:
    """Run the tool with its output shown live, killed if envassay dies."""

    def show(line: str) -> None:
        if line.strip():
            progress(f"[{name}] {line.rstrip()}")

    return command.stream(
        invocation.argv,
        env=invocation.environ(),
        cwd=invocation.cwd,
        on_stderr_line=show,
        on_stdout_line=show,
        die_with_parent=True,
    )


# ------------------------------------------------------------------ input files


def environment_file(spec: EnvSpec, channels: Sequence[str]) -> str:
    """The spec as the tool gets it: ``channels``, its own dependency lines, ``pip``
    added when the pip: section needs it, and every path made absolute."""
    dependencies: list[Any] = [dep.text for dep in spec.conda]
    if spec.has_pip_section and not spec.declares_pip:
        dependencies.append("pip")
    if spec.pip:
        dependencies.append({"pip": pip_lines(spec)})
    data: dict[str, Any] = {"channels": list(channels), "dependencies": dependencies}
    if spec.variables:
        data["variables"] = dict(spec.variables)
    header = f"# Generated by envassay from {spec.path}; paths made absolute.\n"
    return header + yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=1000)


PATH_OPTIONS = ("--find-links", "-f", "--constraint", "-c")


def channel_names_condarc(spec: EnvSpec, invocation: Invocation) -> str | None:
    """A .condarc that maps each ``URL::pkg`` channel's name back to its URL, or None.

    ``conda env create`` before 26 keeps only the name of a ``URL::pkg`` channel and
    looks it up under ``channel_alias``; ``custom_channels`` (name -> the URL's parent)
    sends it back to the URL. conda reads $CONDARC besides its other rc files, so the
    user's own settings still apply; a $CONDARC the user set is left alone (None).
    """
    if "CONDARC" in invocation.environ():
        return None
    custom: dict[str, str] = {}
    for dep in spec.conda:
        channel, sep, _ = dep.text.rpartition("::")
        if sep and "://" in channel:
            parent, _, name = channel.rstrip("/").rpartition("/")
            custom.setdefault(name, parent)
    if not custom:
        return None
    return yaml.safe_dump({"custom_channels": custom}, sort_keys=True)


def pip_lines(spec: EnvSpec) -> list[str]:
    """The pip: section with every path absolute: the tool runs pip from its own directory."""
    lines = []
    for req, line in zip(spec.pip, requirement_lines(spec), strict=True):
        lines.append(_absolute_option(line, spec.path.parent) if req.kind == "option" else line)
    return lines


def _absolute_option(line: str, base: Path) -> str:
    """``--find-links ./wheels`` / ``--find-links=./wheels`` -> an absolute path."""
    sep = "=" if "=" in line.split(None, 1)[0] else " "
    flag, _, value = line.partition(sep)
    value = value.strip()
    if flag not in PATH_OPTIONS or not value or "://" in value:
        return line
    return f"{flag}{sep}{(base / Path(value).expanduser()).resolve()}"


def explicit_file(locked: LockedEnv, channels: Sequence[str] = ()) -> str:
    """An ``@EXPLICIT`` file of the lock's conda packages for its platform, dependencies
    first, each with its md5 (conda checks it): what `conda-lock render` would write.
    A private channel's package URLs get its credentials back (conda expands no ${VAR}
    there): the file lives only in the run's private temporary directory."""
    lines = [
        f"# Generated by envassay from {locked.lock_path.name}: its conda packages for "
        f"{locked.platform}.",
        "# Its pip entries are installed afterwards, as `conda-lock install` does.",
        f"# platform: {locked.platform}",
        "@EXPLICIT",
    ]
    for package in dependency_order(locked.conda):
        url = credentials.attach(package.url, channels)
        lines.append(f"{url}#{package.md5}" if package.md5 else url)
    return "\n".join(lines) + "\n"


def dependency_order(packages: Iterable[LockedPackage]) -> list[LockedPackage]:
    """Packages sorted so that each comes after what it depends on (by name; cycles cut)."""
    by_name = {p.name: p for p in packages}
    order: list[LockedPackage] = []
    done: set[str] = set()

    def visit(name: str, stack: set[str]) -> None:
        if name in done or name in stack or name not in by_name:
            return
        stack.add(name)
        for dependency in sorted(by_name[name].dependencies):
            visit(dependency, stack)
        done.add(name)
        order.append(by_name[name])

    for name in sorted(by_name):
        visit(name, set())
    return order


# ------------------------------------------------------------------ results


def installed_records(prefix: Path) -> list[dict[str, str]]:
    """The records the tool wrote to ``conda-meta/``, in CreateResult's shape."""
    records = []
    for path in sorted((prefix / "conda-meta").glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(data, dict):
            records.append(
                {k: str(data.get(k) or "") for k in ("name", "version", "build", "channel", "url")}
            )
    return records


def _remove_if_empty(prefix: Path) -> None:
    if prefix.is_dir() and not any(prefix.iterdir()):
        prefix.rmdir()


# ------------------------------------------------------------------ failures

# What each kind of failure looks like in the tools' output, first match wins. Recorded
# outputs these come from are kept in tests/fake_tools.py (RECORDED_FAILURES).
FAILURES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "integrity",
        (
            "ChecksumMismatchError",
            "sum doesn't match expectation",
            "size doesn't match expectation",
        ),
    ),
    (
        "channel",
        (
            "CondaHTTPError",
            "UnavailableInvalidChannel",
            "Could not resolve host",
            "Couldn't resolve host",
            "Multi-download failed",
            "Download error",
            "Failed to connect",
        ),
    ),
    (
        "pip",
        (
            "Could not find a version that satisfies the requirement",
            "No matching distribution found",
            "ResolutionImpossible",
        ),
    ),
    (
        "solve",
        (
            "LibMambaUnsatisfiableError",
            "PackagesNotFoundError",
            "PackagesNotFoundInChannelsError",  # conda >= 25
            "PackagesNotFoundInPrefixError",
            "ResolvePackageNotFound",
            "UnsatisfiableError",
            "SpecsConfigurationConflictError",
            "Could not solve for environment specs",
            "Encountered problems while solving",
            "nothing provides",
            "does not exist (perhaps",
        ),
    ),
)
SUMMARY_LINES = 8
SUMMARY_CHARS = 700


def classify(output: str) -> tuple[str, str]:
    """(kind, the lines that say it) for a failed run's output; kind "other" if unknown."""
    lines = output.splitlines()
    for kind, markers in FAILURES:
        for index, line in enumerate(lines):
            if any(marker in line for marker in markers):
                return kind, _summary(lines[index : index + SUMMARY_LINES])
    return "other", _summary(lines[-SUMMARY_LINES:])


def _summary(lines: Sequence[str]) -> str:
    text = " | ".join(line.strip() for line in lines if line.strip())
    return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 3] + "..."


def tool_failure(
    tool: Tool,
    invocation: Invocation,
    result: command.CommandResult,
    inputs: Mapping[Path, str],
    request: CreateRequest,
) -> EnvassayError:
    """The error for a failed run: the same kinds and exit codes as the rattler backend,
    with everything the tool printed attached (shown before the one-line message)."""
    details = transcript(tool, invocation, result, inputs)
    kind, summary = classify(result.stdout + "\n" + result.stderr)
    who = f"{tool.flavour} {tool.version}"
    where = request.locked.lock_path if request.locked else request.spec.path
    if kind == "integrity":
        return UserError(
            f"a package failed its hash check ({who}): {summary}",
            where=where,
            hint="the file changed after the lock was written; re-lock or fix the channel",
            details=details,
        )
    if kind == "channel":
        return UserError(
            f"{who} cannot read {_channels_named(result, request.channels)}: {summary}",
            where=where,
            hint="check the channel, or point at a mirror in the tool's own config "
            "(.condarc / .mambarc)",
            details=details,
        )
    if kind == "pip":
        return SolveError(
            f"pip could not resolve the pip: section ({who}): {summary}",
            where=request.spec.path,
            details=details,
        )
    if kind == "solve":
        return SolveError(f"cannot solve ({who}): {summary}", where=where, details=details)
    return CreateError(f"{tool.describe()} failed (exit {result.returncode}): {summary}\n{details}")


# A URL the tool says it failed to read: `<URL>` (conda's CondaHTTPError and
# UnavailableInvalidChannel), and the channel it belongs to once the subdir and the
# repodata file are cut off.
_FAILED_URL = re.compile(r"<([a-z][a-z0-9+.-]*://[^<>\s]+)>")
_REPODATA_TAIL = re.compile(r"/(?:noarch|[a-z0-9]+-[a-z0-9_]+)/[^/]*repodata[^/]*$")


def failed_channels(output: str) -> list[str]:
    """The channels whose repodata the tool's output says it could not read, in order."""
    found: list[str] = []
    for url in _FAILED_URL.findall(output):
        channel = _REPODATA_TAIL.sub("", url).rstrip("/")
        if channel not in found:
            found.append(channel)
    return found


def _channels_named(result: command.CommandResult, channels: Sequence[str]) -> str:
    """Which channel failed: the one the tool names when it does (said plainly when it is
    not one of the spec's, as conda 26's `nodefaults` was), else all of them."""
    failed = failed_channels(result.stdout + "\n" + result.stderr)
    if not failed:
        return f"the channel(s) {', '.join(channels)}"
    ours = {c.rstrip("/") for c in channels}
    named = [c if c in ours else f"{c} (not one of the spec's channels)" for c in failed]
    return f"the channel {', '.join(named)}"


def transcript(
    tool: Tool,
    invocation: Invocation,
    result: command.CommandResult,
    inputs: Mapping[Path, str],
) -> str:
    """The run as it happened: command line, directory, variables, stdout, stderr, inputs."""
    variables = " ".join(f"{k}={v}" for k, v in invocation.env.items())
    lines = [
        f"{tool.describe()} exited {result.returncode}:",
        f"$ {shlex.join(invocation.argv)}",
        f"  (in {invocation.cwd}; with {variables})",
    ]
    for title, text in (("stdout", result.stdout), ("stderr", result.stderr)):
        lines += [f"--- {title} ---", text.rstrip() or "(empty)"]
    for path, text in inputs.items():
        lines += [f"--- {path.name} (written by envassay for this run) ---", text.rstrip()]
    return "\n".join(lines)
