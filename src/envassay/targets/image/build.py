"""Build an image, or reuse it when its tag exists: one stage with BuildKit where it
applies (``Dockerfile.buildkit``), else two (``Dockerfile``); a failure that is the
user's to fix becomes one line (exit 2). Its lock, log, context and record: the store's
(:mod:`envassay.store`: ``build_once``, the layout, ``images.jsonl``)."""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from envassay.command import run
from envassay.docker import (
    BuildResult,
    Engine,
    ImageBuildError,
    buildkit_cli,
    shared_engine,
)
from envassay.errors import EnvassayError, UserError
from envassay.imagedata import ImageInfo
from envassay.progress import Progress
from envassay.store import StoreLayout, build_once
from envassay.store.images import ImageRecord, record_build
from envassay.store.images import builds as store_builds
from envassay.store_layout import CONTEXT_PREFIX
from envassay.targets.image.context import assemble_context
from envassay.targets.image.plan import ImagePlan, repository_name


class ImageError(EnvassayError):
    """An image could not be prepared for a reason that is not the user's input."""


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
        direct = direct_build(plan, secrets=bool(buildargs["ENVASSAY_SECRETS"]))
        progress(f"building {ref} from {plan.options.builder_image} ({plan.options.creator})")
        try:
            result = _build(engine, context, ref, buildargs, direct, progress, log_path)
        except ImageBuildError as exc:
            raise _input_error(exc, plan) or exc from None
    info = engine.image(ref)
    if info is None:
        raise ImageError(f"the build of {ref} finished but the engine has no such image")
    seconds = time.perf_counter() - started
    record_build(layout, ImageRecord.built(ref, info.id, plan.spec.path, project, seconds))
    progress(f"built {ref} in {seconds:.1f}s (build {result.seconds:.1f}s)")
    return ImageResult(ref, False, seconds, info, log_path)


def _build(
    engine: Engine,
    context: Path,
    ref: str,
    buildargs: dict[str, str],
    direct: bool,
    progress: Progress,
    log_path: Path,
) -> BuildResult:
    """The one-stage build where ``direct`` says it applies, else (or when the builder's
    conda turns out not to run in the runtime image) the two-stage build."""
    if direct:
        try:
            return engine.build(
                context,
                ref,
                buildargs=_without_secrets(buildargs),
                dockerfile="Dockerfile.buildkit",
                on_line=progress,
                log_path=log_path,
            )
        except ImageBuildError as exc:
            if not _cannot_direct(exc):
                raise
            progress(f"{exc.cause}: building in two stages")
    return engine.build(context, ref, buildargs=buildargs, on_line=progress, log_path=log_path)


def direct_build(plan: ImagePlan, *, secrets: bool) -> bool:
    """Whether to build in one stage with BuildKit (``Dockerfile.buildkit``): with creator
    conda (the builder's, run from its root) or envassay (run by the runtime's python).
    create.sh exits 3 where that cannot run in the runtime image; the two-stage build
    follows. Not with credentials for the create (a build argument of the runtime stage
    would show in the image's history), nor with mamba or micromamba."""
    if buildkit_cli() is None or secrets:
        return False
    return plan.options.creator in ("conda", "envassay")


def _without_secrets(buildargs: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in buildargs.items() if k != "ENVASSAY_SECRETS"}


def _cannot_direct(exc: ImageBuildError) -> bool:
    """Whether a one-stage build failed because the builder's tool cannot run in the
    runtime image (create.sh exits 3 before it creates anything)."""
    return exc.exit_code == 3 and "create.sh" in exc.step


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
