"""One env on the docker target: build or reuse its image, probe inside, check, check the image.

The probe runs in the image through :class:`envassay.targets.DockerTarget` and is
judged by the same checks as a native env; the image checks run side by side
with it (their containers start while the probe's is running). An image's facts
are kept in the store under its id, so a warm check of an unchanged image runs
one container: the probe's.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from envassay.checks import failed, passed, skipped
from envassay.checks.image import image_checks
from envassay.checks.lock import check_lock_fresh
from envassay.docker import (
    Engine,
    EngineUnavailable,
    ImageInfo,
    engine_address,
    kill_running,
    shared_engine,
)
from envassay.errors import EnvassayError, UserError
from envassay.lock.status import LockStatus, lock_status
from envassay.progress import Progress
from envassay.run.assay import Assay, probe_and_check
from envassay.spec.config import Config
from envassay.spec.environment import EnvSpec
from envassay.store import EnvStore, Lease, StoreError, StoreLayout
from envassay.targets import DockerTarget
from envassay.targets.image import (
    engine_platform,
    ensure_image,
    expects_gpu,
    gather_facts,
    host_has_gpu,
    image_pythons,
    plan_image,
    resolve_options,
    usable_lock,
)


@dataclass(frozen=True)
class DockerOptions:
    """What the command line says about the docker target."""

    image: str | None = None  # check this existing image; build nothing
    builder_image: str | None = None
    runtime_image: str | None = None
    creator: str | None = None


def assay_docker(
    spec: EnvSpec,
    config: Config,
    options: DockerOptions = DockerOptions(),
    *,
    engine: Engine | None = None,
    progress: Progress = print,
    read_lock_status: Callable[[], LockStatus] | None = None,
) -> Assay:
    """Build or reuse the env's image (or take ``options.image``) and run every check in it.
    ``read_lock_status``: the run's one read of the spec's lock status (default: read here).

    Raises EngineUnavailable when no engine answers and UserError for bad input.
    """
    engine = engine or shared_engine()
    store = EnvStore(config.store_path())
    with contextlib.ExitStack() as held:
        return _assay_docker(spec, config, options, engine, progress, read_lock_status, store, held)


def _assay_docker(
    spec: EnvSpec,
    config: Config,
    options: DockerOptions,
    engine: Engine,
    progress: Progress,
    read_lock_status: Callable[[], LockStatus] | None,
    store: EnvStore,
    held: contextlib.ExitStack,
) -> Assay:
    settings = config.env(spec.name)
    assay = Assay(spec, "docker")
    assay.platform = platform = engine_platform(engine)
    # An unreadable lock: exit 2.
    assay.lock_status = (
        read_lock_status() if read_lock_status is not None else lock_status(spec.path, config, spec)
    )
    expected_lock = usable_lock(spec, config, platform, assay.lock_status)[1] or None
    if options.image is None:
        image_options = resolve_options(
            settings,
            builder_image=options.builder_image,
            runtime_image=options.runtime_image,
            creator=options.creator,
        )
        plan = plan_image(spec, config, image_options, platform, assay.lock_status)
        # Held until the checks are done: `envs prune --images` skips an image in use.
        held.callback(_image_lease(store, plan.digest).release)
        try:
            built = ensure_image(
                plan, store.root, engine=engine, progress=progress, project=config.root
            )
        except UserError:
            raise
        except EnvassayError as exc:
            assay.results.append(failed("create", "docker", str(exc)))
            assay.results.append(check_lock_fresh(assay.lock_status))
            return assay
        how = "reused (no build)" if built.reused else f"built in {built.seconds:.1f}s"
        if plan.lock_path is not None:
            how += f" from {plan.lock_path.name}"
        assay.results.append(passed("create", "docker", f"{how}: {built.ref}"))
        ref, info = built.ref, built.info
    else:
        ref, info = options.image, existing_image(engine, options.image)
    assay.results.append(check_lock_fresh(assay.lock_status))
    first, *fallback = image_pythons(info)
    gpus = expects_gpu(spec, settings) and host_has_gpu()
    target = DockerTarget(ref, python=first, gpus=gpus, fallback=tuple(fallback))
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        kept = store.cache.image_facts
        facts = pool.submit(gather_facts, engine, ref, info, keep=kept)
        try:
            probe_and_check(assay, target, settings)
            assay.results.extend(image_checks(facts.result(), spec, settings, expected_lock))
        except BaseException:  # Ctrl-C: the image checks' containers must not be waited for
            kill_running()
            raise
    return assay


def _image_lease(store: EnvStore, digest: str) -> Lease:
    """A shared lease on the image envassay builds for ``digest``; an unusable store (which
    only the kept facts would have used) holds none."""
    try:
        return store.lease(StoreLayout.image_key(digest))
    except StoreError:
        return Lease(None)


def existing_image(engine: Engine, ref: str) -> ImageInfo:
    info = engine.image(ref)
    if info is None:
        raise UserError(
            f"image {ref} is not in the engine at {engine_address()}",
            hint="build it (`envassay build SPEC`) or load it (`docker load`, `docker pull`)",
        )
    return info


def assay_docker_or_skip(
    spec: EnvSpec,
    config: Config,
    options: DockerOptions,
    *,
    progress: Progress = print,
    read_lock_status: Callable[[], LockStatus] | None = None,
) -> Assay:
    """As :func:`assay_docker`, but a missing engine skips the target with the reason."""
    try:
        return assay_docker(
            spec, config, options, progress=progress, read_lock_status=read_lock_status
        )
    except EngineUnavailable as exc:
        return Assay(spec, "docker", [skipped("create", "docker", exc.render())])
