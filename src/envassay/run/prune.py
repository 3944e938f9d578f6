"""`envassay envs prune --images`: the images envassay built, removed from the engine.

Only an image the store recorded building (``images.jsonl``), whose tag still names the
image id recorded (or, in a record older than ids, still carries envassay's labels) is
removed, by its tag and without force: an image another tag also names keeps that tag,
and one a container uses is kept. An image a check is using (its lease, held shared by
the docker target) is skipped. By default only this project's images that no current
spec's image plan names go; ``everything`` takes this project's all, ``all_projects``
widens to every project on the store. An image's build log goes with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from envassay.docker import DockerError, Engine
from envassay.errors import EnvassayError, UserError
from envassay.progress import Progress
from envassay.spec.config import Config
from envassay.spec.environment import load_spec
from envassay.store import EnvStore, StoreLayout
from envassay.store.images import ImageRecord, forget, image_records
from envassay.store.inventory import belongs_to
from envassay.targets.image import (
    LABEL_SPEC_HASH,
    engine_platform,
    plan_image,
    resolve_options,
)


@dataclass
class Pruned:
    """What a prune of images did."""

    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # in use, or the engine refused
    others: int = 0  # other projects' images, left alone


def current_refs(config: Config, engine: Engine) -> set[str]:
    """The tags today's specs would build with their configured options (a broken spec
    keeps nothing alive)."""
    platform = engine_platform(engine)
    refs = set()
    for path in config.spec_paths():
        try:
            spec = load_spec(path)
            options = resolve_options(config.env(spec.name))
            refs.add(plan_image(spec, config, options, platform).ref)  # as `envassay build`
        except (UserError, EnvassayError):
            continue
    return refs


def prune_images(
    store: EnvStore,
    config: Config,
    engine: Engine,
    *,
    everything: bool,
    all_projects: bool,
    say: Progress,
) -> Pruned:
    keep = set() if everything else current_refs(config, engine)
    pruned = Pruned()
    gone: set[str] = set()
    for record in image_records(store.layout):
        if not all_projects and not belongs_to(record.project, record.spec, config.root):
            pruned.others += 1
            continue
        if record.ref in keep:
            continue
        info = engine.image(record.ref)
        if info is None:  # removed by someone else: only the record and log remain
            gone.add(record.ref)
            _remove_log(store.layout, record)
            continue
        if (record.id and info.id != record.id) or not info.labels.get(LABEL_SPEC_HASH):
            say(f"refused {record.ref}: the tag now names an image envassay did not build")
            continue
        with store.exclusive(StoreLayout.image_key(_digest(record))) as free:
            if not free:
                pruned.kept.append(record.ref)
                say(f"kept {record.ref}: in use (a check holds it)")
                continue
            try:
                engine.remove_image(record.ref, force=False)
            except DockerError as exc:
                pruned.kept.append(record.ref)
                say(f"kept {record.ref}: {exc}")
                continue
        gone.add(record.ref)
        _remove_log(store.layout, record)
        pruned.removed.append(record.ref)
        say(f"removed image {record.ref}")
    forget(store.layout, gone)
    return pruned


def _digest(record: ImageRecord) -> str:
    return record.ref.rpartition(":")[2]


def _remove_log(layout: StoreLayout, record: ImageRecord) -> None:
    repository = record.ref.rpartition(":")[0]
    label = repository.rpartition("/")[2]
    log = layout.build_log(label, _digest(record))
    if log.is_file() and not log.is_symlink():
        log.unlink(missing_ok=True)
