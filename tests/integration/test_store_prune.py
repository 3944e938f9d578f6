"""`envassay envs list|prune` over everything the store holds, with a real store and a real
Docker engine: the images envassay built (and only those), build logs, caches.

The engine is shared: every image this test makes has a name of its own (a random suffix),
and only those are removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from filelock import FileLock

from envassay.docker import Engine
from envassay.store import EnvStore, StoreLayout
from tests.conftest import Project
from tests.integration.envassay_cli import check, envassay

pytestmark = [pytest.mark.docker, pytest.mark.channel, pytest.mark.slow]


@pytest.fixture
def own_images(engine: Engine) -> Iterator[list[str]]:
    """Tags this test made: removed at the end, whatever happened."""
    made: list[str] = []
    yield made
    for ref in made:
        engine.remove_image(ref, force=False)


def full(env: dict[str, str], cwd: Path) -> dict[str, object]:
    listed = envassay("envs", "list", "--json", "--full", env=env, cwd=cwd)
    assert listed.ok, listed.describe()
    data = json.loads(listed.stdout)
    assert isinstance(data, dict)
    return data


def test_images_logs_and_caches_listed_and_pruned_only_envassays(
    project: Project,
    base_image: str,
    engine: Engine,
    tmp_path: Path,
    own_images: list[str],
) -> None:
    store = tmp_path / "store"
    env = {**os.environ, "ENVASSAY_HOME": str(store)}
    env.pop("GITHUB_STEP_SUMMARY", None)
    name = f"prune{uuid.uuid4().hex[:8]}"
    project.settings(f'[tool.envassay.envs.{name}]\nbuilder-image = "{base_image}"')
    spec = project.spec(name, ["python=3.11"])
    built = envassay("build", spec, "--json", env=env, cwd=project.root)
    assert built.ok, built.describe()
    ref, image_id = json.loads(built.stdout)["ref"], json.loads(built.stdout)["id"]
    own_images.append(ref)
    digest = ref.rpartition(":")[2]
    layout = StoreLayout(store.resolve())
    log = layout.build_log(name, digest)

    # Listed: the image as recorded (tag and id), its build log, the caches, with sizes.
    data = full(env, project.root)
    images = {i["ref"]: i for i in data["images"]}  # type: ignore[union-attr]
    assert images[ref]["id"] == image_id and images[ref]["spec"] == str(spec)
    assert Path(images[ref]["project"]).resolve() == project.root.resolve()
    assert [entry["path"] for entry in data["logs"]] == [str(log)]  # type: ignore[union-attr]
    cache_names = {c["name"] for c in data["caches"]}  # type: ignore[union-attr]
    assert "wheels" in cache_names
    text = envassay("envs", "list", env=env, cwd=project.root).stdout
    assert ref in text and image_id[7:19] in text and "build logs: 1" in text and "MB" in text
    # `envs list --json` stays the list of environments (nothing created here).
    assert json.loads(envassay("envs", "list", "--json", env=env, cwd=project.root).stdout) == []

    # A check holds a lease on its image while it runs (the file is there after it).
    code, items, output = check(project, env, "--target", "docker", spec)
    assert code == 0, output
    assert items["create[docker]"][0] == "passed" and f"building {ref}" not in output
    assert layout.lease(StoreLayout.image_key(digest)).is_file()

    # Another tag on the same image is someone else's: it survives the prune.
    extra = f"envassay-test/prune-extra-{uuid.uuid4().hex[:8]}:1"
    engine.tag(ref, extra)
    own_images.append(extra)
    # A forged record naming an image envassay did not build (no envassay labels).
    foreign = f"envassay-test/prune-foreign-{uuid.uuid4().hex[:8]}:1"
    engine.tag(base_image, foreign)
    own_images.append(foreign)
    with layout.images_log.open("a") as records:
        records.write(json.dumps({"ref": foreign, "spec": str(spec), "at": 0}) + "\n")

    # Without --images no image is touched; with it, the one today's spec uses is kept.
    pruned = envassay("envs", "prune", env=env, cwd=project.root)
    assert pruned.ok and "image" not in pruned.stdout, pruned.stdout
    pruned = envassay("envs", "prune", "--images", env=env, cwd=project.root)
    assert pruned.ok, pruned.describe()
    assert "0 image(s) removed" in pruned.stdout and engine.image(ref) is not None
    assert f"refused {foreign}: the tag now names an image envassay did not build" in (
        pruned.stdout
    )

    # Another project's prune leaves this project's images alone.
    other = tmp_path / "other"
    other.mkdir()
    (other / "pyproject.toml").write_text("[tool.envassay]\n")
    pruned = envassay("envs", "prune", "--images", "--all", env=env, cwd=other)
    assert pruned.ok and "0 image(s) removed; 2 of other projects kept" in pruned.stdout, (
        pruned.stdout
    )

    # In use (a check's lease held): kept, and said so.
    lease = EnvStore(store).lease(StoreLayout.image_key(digest))
    try:
        pruned = envassay("envs", "prune", "--images", "--all", env=env, cwd=project.root)
    finally:
        lease.release()
    assert f"kept {ref}: in use" in pruned.stdout and engine.image(ref) is not None

    # Free: removed by its tag, with its log and its record; the other tags stay.
    pruned = envassay("envs", "prune", "--images", "--all", env=env, cwd=project.root)
    assert pruned.ok and f"removed image {ref}" in pruned.stdout, pruned.stdout
    assert "1 image(s) removed" in pruned.stdout
    assert engine.image(ref) is None and not log.exists()
    kept = engine.image(extra)
    assert kept is not None and kept.id == image_id
    assert engine.image(foreign) is not None and engine.image(base_image) is not None
    assert [i["ref"] for i in full(env, project.root)["images"]] == [foreign]  # type: ignore[union-attr]

    # Logs by age; caches only on --caches, and not while a builder holds its lock.
    layout.logs.mkdir(exist_ok=True)
    (layout.logs / f"build-x-{digest}.log").write_text("an old failed build")
    pruned = envassay("envs", "prune", "--logs", "0", env=env, cwd=project.root)
    assert "1 build log(s) older than 0 day(s) removed" in pruned.stdout, pruned.stdout
    assert envassay("envs", "prune", "--logs", "-1", env=env, cwd=project.root).returncode == 2
    with FileLock(layout.lock(StoreLayout.image_key("f" * 16))):
        pruned = envassay("envs", "prune", "--caches", env=env, cwd=project.root)
    assert "caches kept: 1 build(s) running now" in pruned.stdout, pruned.stdout
    assert layout.cache.wheels.is_dir()
    pruned = envassay("envs", "prune", "--caches", env=env, cwd=project.root)
    assert "removed cache wheels" in pruned.stdout, pruned.stdout
    assert not layout.cache.wheels.exists()
    assert full(env, project.root)["caches"] == []
    with contextlib.suppress(FileNotFoundError):
        assert not [p for p in layout.cache.root.iterdir() if p.name.startswith(".trash-")]
