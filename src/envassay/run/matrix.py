"""CI matrix: one job per env x target x platform, with what the job needs to run.

`envassay matrix` prints it for GitHub Actions (``{"include": [...]}`` for
``strategy.matrix``), GitLab CI (``parallel: matrix:``) or as a plain JSON list.
Each entry names the nox session to run (``envs(env='ai')`` natively,
``docker(env='ai')`` in a container), the runner label (``[tool.envassay]
runner``/``runners``; ``gpu-runner`` for envs whose GPU policy is ``required``),
and an artifact name for its reports.

``--changed-since REF`` keeps only what ``git diff --name-only REF`` touches: an
env whose spec or lock changed gets all its entries; a change under ``docker/``
(the Dockerfile) selects every env's docker entries.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from envassay.command import run
from envassay.errors import UserError
from envassay.lock.format import lock_path_for
from envassay.spec.config import TARGETS, Config
from envassay.spec.environment import load_spec
from envassay.spec.platforms import validate_platforms
from envassay.spec.resolve import configured_platforms

FORMATS = ("json", "github", "gitlab")
# The platform a CI job checks when nothing configures platforms: the usual hosted runner.
DEFAULT_PLATFORM = "linux-64"
# Hosted runner labels per platform; `runner` replaces linux-64's, `runners` any of them.
DEFAULT_RUNNERS = {
    "linux-64": "ubuntu-latest",
    "linux-aarch64": "ubuntu-24.04-arm",
    "osx-64": "macos-13",
    "osx-arm64": "macos-latest",
    "win-64": "windows-latest",
}
DOCKER_DIR = "docker"
SESSIONS = {"native": "envs", "docker": "docker"}


@dataclass(frozen=True)
class MatrixEntry:
    """One CI job: check ``env`` on ``target`` for ``platform`` on runner ``runs_on``."""

    env: str  # the nox parameter: the spec file's stem
    spec: str  # relative to the project root, with forward slashes
    target: str
    platform: str
    runs_on: str
    gpu: bool

    @property
    def name(self) -> str:
        return f"{self.env} / {self.target} / {self.platform}"

    @property
    def session(self) -> str:
        return f"{SESSIONS[self.target]}(env='{self.env}')"

    @property
    def artifact(self) -> str:
        return f"envassay-{self.env}-{self.target}-{self.platform}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "env": self.env,
            "spec": self.spec,
            "target": self.target,
            "platform": self.platform,
            "session": self.session,
            "runs-on": self.runs_on,
            "gpu": self.gpu,
            "artifact": self.artifact,
        }


@dataclass(frozen=True)
class Changes:
    """What `git diff --name-only REF` listed, as project-relative POSIX paths."""

    paths: frozenset[str]

    def touches_env(self, spec: str, lock: str) -> bool:
        return spec in self.paths or lock in self.paths

    @property
    def touches_docker(self) -> bool:
        return any(p == DOCKER_DIR or p.startswith(f"{DOCKER_DIR}/") for p in self.paths)


def plan_matrix(
    config: Config,
    specs: Sequence[Path] = (),
    *,
    targets: Sequence[str] = (),
    platforms: Sequence[str] = (),
    changes: Changes | None = None,
) -> list[MatrixEntry]:
    """The entries for ``specs`` (default: the configured ones), env by env.

    ``targets``: default both (docker only for linux platforms); ``platforms``:
    default each env's configured platforms, else linux-64; ``changes``: keep only
    what they touch (None: keep everything).
    """

    paths = [Path(p) for p in specs] or config.spec_paths()
    wanted_targets = tuple(dict.fromkeys(targets)) or TARGETS
    for target in wanted_targets:
        if target not in TARGETS:
            raise UserError(f"unknown target {target!r}; expected one of {list(TARGETS)}")
    entries: list[MatrixEntry] = []
    for path in paths:
        if not path.is_file():
            raise UserError("spec not found", where=path)
        spec = load_spec(path)
        settings = config.env(spec.name)
        rel = _relative(path, config.root)
        env_platforms = validate_platforms(
            platforms
            or configured_platforms(spec.platforms, config, spec.name)
            or (DEFAULT_PLATFORM,)
        )
        gpu = settings.gpu == "required"
        for target in wanted_targets:
            if changes is not None and not _selected(changes, rel, path, target, config.root):
                continue
            for platform in env_platforms:
                if target == "docker" and not platform.startswith("linux-"):
                    continue  # images are Linux images
                runs_on = _runner(config, platform, gpu, spec.name)
                entries.append(MatrixEntry(path.stem, rel, target, platform, runs_on, gpu))
    return entries


def _selected(changes: Changes, rel: str, path: Path, target: str, root: Path) -> bool:
    if changes.touches_env(rel, _relative(lock_path_for(path), root)):
        return True
    return target == "docker" and changes.touches_docker


def _runner(config: Config, platform: str, gpu: bool, env: str) -> str:
    if gpu:
        if config.gpu_runner is None:
            raise UserError(
                f'env {env!r} requires a GPU (gpu = "required"), but no GPU runner is set',
                hint='set [tool.envassay] gpu-runner = "LABEL" (e.g. a self-hosted GPU runner)',
            )
        return config.gpu_runner
    if platform in config.runners:
        return config.runners[platform]
    if platform == "linux-64":
        return config.runner
    if platform in DEFAULT_RUNNERS:
        return DEFAULT_RUNNERS[platform]
    raise UserError(
        f"no runner label for platform {platform}",
        hint=f'set [tool.envassay] runners = {{ "{platform}" = "LABEL" }}',
    )


def _relative(path: Path, root: Path) -> str:
    resolved = path.resolve()
    try:
        return resolved.relative_to(root.resolve()).as_posix()
    except ValueError:
        return resolved.as_posix()


def changed_since(root: Path, ref: str) -> Changes:
    """Files changed between ``ref`` and the working tree, relative to ``root``."""

    try:
        result = run(["git", "diff", "--name-only", "--relative", ref, "--"], cwd=root)
    except FileNotFoundError:
        raise UserError("--changed-since needs git, which is not installed") from None
    if not result.ok:
        said = result.stderr.strip() or result.stdout.strip() or f"exit {result.returncode}"
        raise UserError(
            f"`git diff --name-only {ref}` failed in {root}: {said.splitlines()[0]}",
            hint="give a commit, branch or tag git knows (in CI: fetch it first)",
        )
    return Changes(frozenset(line.strip() for line in result.stdout.splitlines() if line.strip()))


# --- output -------------------------------------------------------------------------------


def render(entries: Iterable[MatrixEntry], fmt: str) -> str:
    """The matrix as ``fmt``: json (a list), github (``{"include": [...]}``, one line for
    $GITHUB_OUTPUT) or gitlab (``parallel: matrix:`` YAML, variables in capitals)."""
    docs = [entry.to_dict() for entry in entries]
    if fmt == "json":
        return json.dumps(docs, indent=2)
    if fmt == "github":
        return json.dumps({"include": docs}, separators=(",", ":"))
    if fmt == "gitlab":
        variables = [
            {
                key.upper().replace("-", "_"): str(value).lower()
                if isinstance(value, bool)
                else str(value)
                for key, value in doc.items()
            }
            for doc in docs
        ]
        return yaml.safe_dump(
            {"parallel": {"matrix": variables}}, sort_keys=False, width=1000
        ).rstrip()
    raise UserError(f"unknown format {fmt!r}; expected one of {list(FORMATS)}")
